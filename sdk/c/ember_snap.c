/* sdk/c/ember_snap.c — see ember_snap.h: the template's capture point and its answer to
 * EMBER_SNAPSHOT. libc only (it is also in libember_zygote.so, for Python).
 *
 * Everything between the capture and the wait for SNAPSHOT_DONE ends up in the image, so this
 * code allocates nothing from the heap (no malloc lock may be held, no free list may be
 * half-updated when the host reads the memory) and maps nothing: the state lives on the stack and
 * the texts are streamed into the channel (see "the texts"). Directory listings use getdents64
 * (readdir mallocs) and numbers are formatted by hand. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ember_snap.h"
#include "ember_proto.h"
#include "ember_wire.h"

#include <asm/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* ------------------------------------------------------------------ the capture */

_Static_assert(__builtin_offsetof(struct ember_snap_regs, rsp) == 48, "regs layout (asm)");
_Static_assert(__builtin_offsetof(struct ember_snap_regs, rip) == 56, "regs layout (asm)");
_Static_assert(__builtin_offsetof(struct ember_snap_regs, mxcsr) == 64, "regs layout (asm)");
_Static_assert(__builtin_offsetof(struct ember_snap_regs, fpucw) == 68, "regs layout (asm)");

#if defined(__CET__) && (__CET__ & 1)
#define SNAP_ENDBR "endbr64\n\t"
#else
#define SNAP_ENDBR ""
#endif

/* setjmp without the signal mask and without glibc's pointer mangling (the restorer is not
 * glibc and must read these as they are). At entry (%rsp) is the return address, so the caller's
 * stack pointer after the return is %rsp + 8. */
__asm__(".text\n\t"
	".globl ember_snap_capture\n\t"
	".type ember_snap_capture, @function\n\t"
	".p2align 4\n"
	"ember_snap_capture:\n\t"
	".cfi_startproc\n\t"
	SNAP_ENDBR
	"movq %rbx, 0(%rdi)\n\t"
	"movq %rbp, 8(%rdi)\n\t"
	"movq %r12, 16(%rdi)\n\t"
	"movq %r13, 24(%rdi)\n\t"
	"movq %r14, 32(%rdi)\n\t"
	"movq %r15, 40(%rdi)\n\t"
	"leaq 8(%rsp), %rax\n\t"
	"movq %rax, 48(%rdi)\n\t"
	"movq (%rsp), %rax\n\t"
	"movq %rax, 56(%rdi)\n\t"
	"stmxcsr 64(%rdi)\n\t"
	"fnstcw 68(%rdi)\n\t"
	"movw $0, 70(%rdi)\n\t"
	"xorl %eax, %eax\n\t"
	"ret\n\t"
	".cfi_endproc\n\t"
	".size ember_snap_capture, .-ember_snap_capture\n\t"
	".previous");

/* ------------------------------------------------------------------ small raw helpers */

/* Decimal, into p (at least 21 bytes); returns the length. */
static size_t fmt_u64(char *p, uint64_t v)
{
	char t[24];
	size_t n = 0;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		p[i] = t[n - 1 - i];
	return n;
}

/* Send all iovecs (a stream socket may take part of them). MSG_NOSIGNAL: a host that went away
 * is -EPIPE, not a SIGPIPE. */
static int send_iov(int fd, struct iovec *iov, int n)
{
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };

	while (m.msg_iovlen) {
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == ECONNRESET ? -EPIPE : -errno;
		while (m.msg_iovlen && (size_t)w >= m.msg_iov->iov_len) {
			w -= (ssize_t)m.msg_iov->iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen) {
			m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + w;
			m.msg_iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Call fn for each entry of an open directory but "." and ".."; returns 0 or -errno. */
static int each_dirent(int dfd, int (*fn)(const char *name, void *arg), void *arg)
{
	char buf[4096] __attribute__((aligned(8)));

	for (;;) {
		long n = syscall(SYS_getdents64, dfd, buf, sizeof(buf));

		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);

			off += d->d_reclen;
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
				continue;
			int r = fn(d->d_name, arg);
			if (r < 0)
				return r;
		}
	}
}

static int count_one(const char *name, void *arg)
{
	(void)name;
	(*(unsigned *)arg)++;
	return 0;
}

/* Tasks in /proc/self/task, or -errno. */
static long count_threads(void)
{
	unsigned n = 0;
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = each_dirent(fd, count_one, &n);
	close(fd);
	return r < 0 ? r : (long)n;
}

/* ------------------------------------------------------------------ the texts */

/* The texts are streamed into the channel, not built in memory: a buffer for them would be a
 * mapping that the maps text would have to describe and the host would find gone (or still
 * there) when it looks. So each text is produced twice, the same way: once to count its bytes
 * (the frame's length goes first), once to send them through a small buffer on the stack.
 * Nothing is mapped or unmapped in between, so both passes read the same /proc/self/maps, and
 * that is the layout the host dumps: after the last byte the template only returns into its read
 * of the channel, writing nothing but stack below the capture frame (dead after a resume). */
struct out {
	int chan;
	bool sending;          /* false: only count */
	uint64_t len;          /* bytes produced */
	uint64_t budget;       /* sending: the counted length of the text being sent */
	size_t used;
	int err;               /* a failed send: -errno */
	char buf[4096];
};

static void out_flush(struct out *o)
{
	struct iovec iov = { o->buf, o->used };

	if (o->used && !o->err)
		o->err = send_iov(o->chan, &iov, 1);
	o->used = 0;
}

/* Produce n bytes; when sending, never more than the counted length. */
static void out_add(struct out *o, const char *p, size_t n)
{
	if (o->sending && n > o->budget - o->len)
		n = (size_t)(o->budget - o->len);
	o->len += n;
	if (!o->sending)
		return;
	while (n) {
		size_t k = sizeof(o->buf) - o->used < n ? sizeof(o->buf) - o->used : n;

		memcpy(o->buf + o->used, p, k);
		o->used += k;
		p += k;
		n -= k;
		if (o->used == sizeof(o->buf))
			out_flush(o);
	}
}

struct fd_walk {
	struct out *o;
	int dirfd;            /* the listing's own fd: not the template's */
};

static int fd_line(const char *name, void *arg)
{
	struct fd_walk *w = arg;
	char path[32] = "/proc/self/fd/", num[24];
	char target[4096];
	uint64_t fd = 0;
	size_t l;
	ssize_t t;

	for (const char *c = name; *c; c++) {
		if (*c < '0' || *c > '9')
			return 0;
		fd = fd * 10 + (uint64_t)(*c - '0');
	}
	if ((int)fd == w->dirfd)
		return 0;
	l = fmt_u64(num, fd);
	memcpy(path + 14, num, l);
	path[14 + l] = '\0';
	t = readlink(path, target, sizeof(target));
	if (t < 0)
		return -errno;
	num[l++] = ' ';
	out_add(w->o, num, l);
	out_add(w->o, target, (size_t)t);
	out_add(w->o, "\n", 1);
	return 0;
}

static int fds_text(struct out *o, char *why, size_t cap)
{
	struct fd_walk w = { .o = o };
	int r;

	w.dirfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.dirfd < 0) {
		snprintf(why, cap, "open /proc/self/fd: %s", strerror(errno));
		return -errno;
	}
	r = each_dirent(w.dirfd, fd_line, &w);
	close(w.dirfd);
	if (r < 0)
		snprintf(why, cap, "list /proc/self/fd: %s", strerror(-r));
	return r;
}

static int maps_text(struct out *o, char *why, size_t cap)
{
	char chunk[4096];
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, cap, "open /proc/self/maps: %s", strerror(errno));
		return -errno;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			snprintf(why, cap, "read /proc/self/maps: %s", strerror(e));
			return -e;
		}
		if (n == 0)
			break;
		out_add(o, chunk, (size_t)n);
	}
	close(fd);
	return 0;
}

static int exe_text(struct out *o, char *why, size_t cap)
{
	char exe[4096];
	ssize_t t = readlink("/proc/self/exe", exe, sizeof(exe));

	if (t < 0) {
		snprintf(why, cap, "readlink /proc/self/exe: %s", strerror(errno));
		return -errno;
	}
	out_add(o, exe, (size_t)t);
	return 0;
}

typedef int (*text_fn)(struct out *o, char *why, size_t cap);
static const text_fn texts[3] = { maps_text, fds_text, exe_text }; /* the payload's order */

/* Count the texts' lengths (maps, fds, exe). */
static int count_texts(uint32_t lens[3], char *why, size_t cap)
{
	for (int i = 0; i < 3; i++) {
		struct out o = { .chan = -1 };
		int r = texts[i](&o, why, cap);

		if (r < 0)
			return r;
		if (o.len > EMBER_PROTO_MAX_PAYLOAD)
			return -E2BIG;
		lens[i] = (uint32_t)o.len;
	}
	return 0;
}

/* Send them, each exactly as long as counted (padded with newlines should it have shrunk, which
 * nothing here can make happen: the frame stays whole, and why says so). -errno if the channel
 * failed. */
static int send_texts(int chan, const uint32_t lens[3], char *why, size_t cap)
{
	for (int i = 0; i < 3; i++) {
		struct out o = { .chan = chan, .sending = true, .budget = lens[i] };
		int r = texts[i](&o, why, cap);

		if (r < 0 || o.len != lens[i]) {
			if (r == 0)
				snprintf(why, cap, "snapshot text %d changed between its count and its "
					 "send (%llu of %u bytes)", i, (unsigned long long)o.len, lens[i]);
			while (o.len < lens[i])
				out_add(&o, "\n", 1);
		}
		out_flush(&o);
		if (o.err)
			return o.err;
	}
	return 0;
}

/* ------------------------------------------------------------------ the state */

/* glibc >= 2.35 registers an rseq area per thread and says where (sys/rseq.h); weak, so a libc
 * without them links and reports no rseq. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
#define SNAP_RSEQ_SIG 0x53053053u

/* The rseq registration as the kernel holds it. __rseq_size is the feature size, which is not
 * always the length glibc registered: Debian 12's glibc 2.36 says 20 and registers 32 (the
 * kernel takes no less than 32; glibc >= 2.40 registers max(__rseq_size, 32)). Asking rseq() to
 * register what is already registered answers EBUSY for the same area and length, EINVAL for
 * another: a probe that changes nothing (if it did register, nothing was, and it is undone). */
static void rseq_state(struct ember_snap_state *st, uint64_t addr, unsigned size)
{
	unsigned lens[2] = { size < 32 ? 32 : size, size };

	for (int i = 0; i < 2; i++) {
		long r = syscall(SYS_rseq, addr, lens[i], 0, SNAP_RSEQ_SIG);

		if (r == 0) { /* nothing was registered: undo ours, report none */
			syscall(SYS_rseq, addr, lens[i], 1 /* RSEQ_FLAG_UNREGISTER */,
				SNAP_RSEQ_SIG);
			return;
		}
		if (errno == EBUSY) {
			st->rseq_addr = addr;
			st->rseq_len = lens[i];
			st->rseq_sig = SNAP_RSEQ_SIG;
			return;
		}
	}
}

/* What only the process can read about itself: thread pointer, signal state, rseq. */
static int fill_kernel_state(struct ember_snap_state *st, char *why, size_t cap)
{
	unsigned long fs = 0, gs = 0;

	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) < 0 ||
	    syscall(SYS_arch_prctl, ARCH_GET_GS, &gs) < 0) {
		snprintf(why, cap, "arch_prctl(ARCH_GET_FS/GS): %s", strerror(errno));
		return -errno;
	}
	st->fs_base = fs;
	st->gs_base = gs;
	if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &st->sigmask, sizeof(uint64_t)) < 0) {
		snprintf(why, cap, "rt_sigprocmask: %s", strerror(errno));
		return -errno;
	}
	/* raw: glibc's sigaction hides its own signals 32 and 33 (SIGCANCEL, SIGSETXID), and a
	 * restore must put back what the kernel holds */
	for (int sig = 1; sig <= EMBER_SNAP_NSIG; sig++)
		if (syscall(SYS_rt_sigaction, sig, NULL, &st->sigactions[sig - 1],
			    sizeof(uint64_t)) < 0) {
			snprintf(why, cap, "rt_sigaction(%d): %s", sig, strerror(errno));
			return -errno;
		}
	if (&__rseq_size && &__rseq_offset && __rseq_size > 0)
		rseq_state(st, fs + (uint64_t)__rseq_offset, __rseq_size);
	return 0;
}

/* The thread's kernel-side links into glibc's thread descriptor, which a new task does not have:
 * clear_child_tid (set_tid_address; glibc points it at struct pthread's `tid`, which it also
 * fills with the tid that pthread_kill, raise and abort signal) and the robust futex list head.
 * Recorded before the capture (they are part of the image), re-made after a resume. */
static struct {
	pid_t tid;             /* the dumped thread's */
	pid_t *tid_addr;       /* its clear_child_tid: &pd->tid */
	void *robust_head;
	size_t robust_len;
} snap_links;

/* glibc 2.x on x86-64: struct pthread's tid, from the thread pointer (libthread_db and old
 * raise() read %fs:0x2d0); used only if the kernel cannot say (PR_GET_TID_ADDRESS needs
 * CONFIG_CHECKPOINT_RESTORE). */
#define GLIBC_TID_OFFSET 0x2d0

static void record_links(void)
{
	unsigned long fs = 0;

	memset(&snap_links, 0, sizeof(snap_links));
	snap_links.tid = (pid_t)syscall(SYS_gettid);
	if (prctl(PR_GET_TID_ADDRESS, &snap_links.tid_addr, 0, 0, 0) < 0 &&
	    syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) == 0 && fs)
		snap_links.tid_addr = (pid_t *)(fs + GLIBC_TID_OFFSET);
	if (syscall(SYS_get_robust_list, 0, &snap_links.robust_head, &snap_links.robust_len) < 0)
		snap_links.robust_head = NULL;
}

/* After a resume: this task's clear_child_tid and robust list point into our descriptor again,
 * and glibc's cached tid is the new one (written only where it holds the dumped tid, so a libc
 * with another layout is left alone). */
static void remake_links(void)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);

	if (snap_links.tid_addr) {
		syscall(SYS_set_tid_address, snap_links.tid_addr);
		if (*snap_links.tid_addr == snap_links.tid)
			*snap_links.tid_addr = tid;
	}
	if (snap_links.robust_head)
		syscall(SYS_set_robust_list, snap_links.robust_head, snap_links.robust_len);
}

/* Refuse the dump: STATE with the error and the message in why (in maps_len), no wait.
 * 0 (the caller carries on, why says what was refused), or -errno if the channel failed (why
 * then says that). */
static int refuse(int chan, uint64_t id, struct ember_snap_state *st, int e, char *why,
		  size_t cap)
{
	unsigned char h[EMBER_PROTO_HDR_LEN];
	size_t l = strlen(why);
	struct iovec iov[3] = {
		{ h, sizeof(h) }, { st, sizeof(*st) }, { why, l },
	};

	st->error = e;
	st->maps_len = (uint32_t)l;
	st->fds_len = st->exe_len = 0;
	ember_frame_hdr(h, EMBER_SNAPSHOT_STATE, id, sizeof(*st) + l);
	int r = send_iov(chan, iov, 3);
	if (r < 0)
		snprintf(why, cap, "send SNAPSHOT_STATE (refused, %s) on fd %d: %s", strerror(e),
			 chan, strerror(-r));
	return r;
}

/* Block until SNAPSHOT_DONE: the host reads our memory meanwhile. */
static int wait_done(int chan, uint64_t id, char *why, size_t cap)
{
	unsigned char h[EMBER_PROTO_HDR_LEN], skip[256];
	uint64_t len;
	int r = ember_read_exact(chan, h, sizeof(h));

	if (r < 0) {
		snprintf(why, cap, "wait for SNAPSHOT_DONE on fd %d: %s", chan,
			 r == -EPIPE ? "the channel ended" : strerror(-r));
		return r;
	}
	len = ember_get_le(h + 16, 8);
	if (ember_get_le(h, 4) != EMBER_PROTO_MAGIC || ember_get_le(h + 4, 2) != EMBER_PROTO_VERSION ||
	    ember_get_le(h + 6, 2) != EMBER_SNAPSHOT_DONE || ember_get_le(h + 8, 8) != id ||
	    len > EMBER_PROTO_MAX_PAYLOAD) {
		snprintf(why, cap, "expected SNAPSHOT_DONE %llu on fd %d, got frame type %llu id %llu "
			 "(magic %#010llx, %llu bytes)", (unsigned long long)id, chan,
			 (unsigned long long)ember_get_le(h + 6, 2), (unsigned long long)ember_get_le(h + 8, 8),
			 (unsigned long long)ember_get_le(h, 4), (unsigned long long)len);
		return -EPROTO;
	}
	while (len) { /* the status is informative */
		size_t n = len < sizeof(skip) ? (size_t)len : sizeof(skip);

		r = ember_read_exact(chan, skip, n);
		if (r < 0) {
			snprintf(why, cap, "read SNAPSHOT_DONE's payload on fd %d: %s", chan,
				 r == -EPIPE ? "the channel ended" : strerror(-r));
			return r;
		}
		len -= n;
	}
	return 0;
}

int ember_snap_handle(int chan, uint64_t id, char *why, size_t why_cap)
{
	struct ember_snap_state st;
	unsigned char h[EMBER_PROTO_HDR_LEN];
	uint32_t lens[3];
	long threads;
	int r;

	why[0] = '\0';
	memset(&st, 0, sizeof(st));
	threads = count_threads();
	if (threads < 0) {
		snprintf(why, why_cap, "count the template's threads in /proc/self/task: %s",
			 strerror((int)-threads));
		return refuse(chan, id, &st, (int)-threads, why, why_cap);
	}
	st.threads = (uint32_t)threads;
	if (threads != 1) {
		snprintf(why, why_cap, "the template has %ld threads; a snapshot needs exactly one "
			 "(start no thread before the ready point)", threads);
		return refuse(chan, id, &st, EBUSY, why, why_cap);
	}
	record_links();

	/* Like setjmp: a restored process comes back here with 1; locals written after this line
	 * are then whatever they were at the dump, so the resumed path reads none of them. */
	if (ember_snap_capture(&st.regs) == 1) {
		remake_links();
		return 1;
	}

	r = fill_kernel_state(&st, why, why_cap);
	if (r == 0)
		r = count_texts(lens, why, why_cap);
	if (r == 0 && sizeof(st) + (uint64_t)lens[0] + lens[1] + lens[2] > EMBER_PROTO_MAX_PAYLOAD)
		r = -E2BIG;
	if (r == -E2BIG)
		snprintf(why, why_cap, "the snapshot texts (maps, fds, exe) are over the %u byte "
			 "frame limit", EMBER_PROTO_MAX_PAYLOAD);
	if (r < 0)
		return refuse(chan, id, &st, -r, why, why_cap);
	st.maps_len = lens[0];
	st.fds_len = lens[1];
	st.exe_len = lens[2];

	struct iovec iov[2] = { { h, sizeof(h) }, { &st, sizeof(st) } };
	ember_frame_hdr(h, EMBER_SNAPSHOT_STATE, id, sizeof(st) + (uint64_t)lens[0] + lens[1] + lens[2]);
	r = send_iov(chan, iov, 2);
	if (r == 0)
		r = send_texts(chan, lens, why, why_cap);
	if (r < 0) {
		snprintf(why, why_cap, "send SNAPSHOT_STATE on fd %d: %s", chan, strerror(-r));
		return r;
	}
	/* from here until DONE the memory must hold still: nothing but this read */
	r = wait_done(chan, id, why, why_cap);
	return r;
}
