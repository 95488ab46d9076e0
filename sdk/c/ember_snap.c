/* sdk/c/ember_snap.c — see ember_snap.h: the template's capture point and its answer to
 * EMBER_SNAPSHOT. libc only (it is also in libember_zygote.so, for Python).
 *
 * Everything between the capture and the wait for SNAPSHOT_DONE ends up in the image, so this
 * code allocates nothing from the heap (no malloc lock may be held, no free list may be
 * half-updated when the host reads the memory): the state lives on the stack, the texts in a
 * scratch mapping that is unmapped again before the wait (and left out of the maps text it
 * sends, so that text is exactly the layout the host dumps). Directory listings use getdents64
 * (readdir mallocs) and numbers are formatted by hand. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ember_snap.h"
#include "ember_proto.h"

#include <asm/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
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

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

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

static void frame_hdr(unsigned char *h, uint16_t type, uint64_t id, uint64_t len)
{
	put_le(h, EMBER_PROTO_MAGIC, 4);
	put_le(h + 4, EMBER_PROTO_VERSION, 2);
	put_le(h + 6, type, 2);
	put_le(h + 8, id, 8);
	put_le(h + 16, len, 8);
}

/* Read exactly n bytes: 0, -EPIPE at EOF, -errno. */
static int read_exact(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);

		if (r > 0)
			got += (size_t)r;
		else if (r == 0 || errno == ECONNRESET)
			return -EPIPE;
		else if (errno != EINTR)
			return -errno;
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

/* The scratch the texts are built in: a shared anonymous mapping, which the kernel never merges
 * with a neighbour (each has its own shmem file), so its line in /proc/self/maps is exactly
 * [p, p + cap) and can be left out; unmapped before the wait. Never grown with mremap: a shared
 * anonymous mapping's file has the mapping's size and a grown one would SIGBUS past it. */
struct scratch {
	char *p;
	size_t len, cap;
};

static int text_add(struct scratch *s, const char *p, size_t n)
{
	if (n > s->cap - s->len)
		return -ENOSPC;
	memcpy(s->p + s->len, p, n);
	s->len += n;
	return 0;
}

struct fd_walk {
	struct scratch *s;
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
		return errno == ENOENT ? 0 : -errno; /* ENOENT: closed meanwhile (cannot happen) */
	num[l++] = ' ';
	if (text_add(w->s, num, l) < 0 || text_add(w->s, target, (size_t)t) < 0 ||
	    text_add(w->s, "\n", 1) < 0)
		return -ENOSPC;
	return 0;
}

static unsigned long parse_hex(const char **pp)
{
	unsigned long v = 0;
	const char *p = *pp;

	for (;; p++) {
		if (*p >= '0' && *p <= '9')
			v = v << 4 | (unsigned long)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			v = v << 4 | (unsigned long)(*p - 'a' + 10);
		else
			break;
	}
	*pp = p;
	return v;
}

/* Append /proc/self/maps without the scratch's own line. -ENOSPC if it does not fit. */
static int maps_text(struct scratch *s, char *why, size_t cap)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	size_t start = s->len;

	if (fd < 0) {
		snprintf(why, cap, "open /proc/self/maps: %s", strerror(errno));
		return -errno;
	}
	for (;;) {
		ssize_t n;

		if (s->len == s->cap) {
			close(fd);
			return -ENOSPC;
		}
		n = read(fd, s->p + s->len, s->cap - s->len);
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
		s->len += (size_t)n;
	}
	close(fd);
	/* drop the scratch's line (it is gone when the host looks) */
	for (size_t off = start; off < s->len;) {
		const char *line = s->p + off, *q = line;
		char *nl = memchr(line, '\n', s->len - off);
		size_t l = nl ? (size_t)(nl - line) + 1 : s->len - off;
		unsigned long lo = parse_hex(&q), hi;

		q++;
		hi = parse_hex(&q);
		if (lo == (unsigned long)s->p && hi == (unsigned long)s->p + s->cap) {
			memmove(s->p + off, s->p + off + l, s->len - off - l);
			s->len -= l;
			break;
		}
		off += l;
	}
	return 0;
}

/* fds, then exe, then maps (last: nothing is opened or mapped after it was read). Returns 0,
 * -ENOSPC (a bigger scratch is needed) or -errno (why says). */
static int build_texts(struct scratch *s, struct ember_snap_state *st, char *why, size_t cap)
{
	struct fd_walk w = { .s = s };
	char exe[4096];
	ssize_t t;
	size_t fds_end;
	int r;

	s->len = 0;
	w.dirfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.dirfd < 0) {
		snprintf(why, cap, "open /proc/self/fd: %s", strerror(errno));
		return -errno;
	}
	r = each_dirent(w.dirfd, fd_line, &w);
	close(w.dirfd);
	if (r == -ENOSPC)
		return r;
	if (r < 0) {
		snprintf(why, cap, "list /proc/self/fd: %s", strerror(-r));
		return r;
	}
	fds_end = s->len;
	t = readlink("/proc/self/exe", exe, sizeof(exe));
	if (t < 0) {
		snprintf(why, cap, "readlink /proc/self/exe: %s", strerror(errno));
		return -errno;
	}
	if (text_add(s, exe, (size_t)t) < 0)
		return -ENOSPC;
	r = maps_text(s, why, cap);
	if (r < 0)
		return r;
	st->fds_len = (uint32_t)fds_end;
	st->exe_len = (uint32_t)((size_t)t);
	st->maps_len = (uint32_t)(s->len - fds_end - (size_t)t);
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

/* glibc keeps the thread's tid in its thread descriptor (struct pthread's `tid`, at this offset
 * from the thread pointer on x86-64 since glibc 2.x; libthread_db and old raise() used
 * %fs:0x2d0); pthread_kill/raise/abort signal that tid. A restored process has a new tid. */
#define GLIBC_TID_OFFSET 0x2d0

/* The tid before the dump, to recognise the field after a resume (single-threaded: no race). */
static pid_t snap_tid;

/* After a resume: point glibc's cached tid at the new thread, but only if the field holds the
 * old tid (so a libc with another layout is left alone). */
static void fix_glibc_tid(void)
{
	unsigned long fs = 0;
	pid_t *tidp;

	if (!snap_tid || syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) < 0 || !fs)
		return;
	tidp = (pid_t *)(fs + GLIBC_TID_OFFSET);
	if (*tidp == snap_tid)
		*tidp = (pid_t)syscall(SYS_gettid);
}

/* Refuse the dump: STATE with the error and a message (in maps_len), no wait. */
static int refuse(int chan, uint64_t id, struct ember_snap_state *st, int e, char *why)
{
	unsigned char h[EMBER_PROTO_HDR_LEN];
	size_t l = strlen(why);
	struct iovec iov[3] = {
		{ h, sizeof(h) }, { st, sizeof(*st) }, { why, l },
	};

	st->error = e;
	st->maps_len = (uint32_t)l;
	st->fds_len = st->exe_len = 0;
	frame_hdr(h, EMBER_SNAPSHOT_STATE, id, sizeof(*st) + l);
	return send_iov(chan, iov, 3);
}

/* Block until SNAPSHOT_DONE: the host reads our memory meanwhile. */
static int wait_done(int chan, uint64_t id, char *why, size_t cap)
{
	unsigned char h[EMBER_PROTO_HDR_LEN], skip[256];
	uint64_t len;
	int r = read_exact(chan, h, sizeof(h));

	if (r < 0) {
		snprintf(why, cap, "wait for SNAPSHOT_DONE on fd %d: %s", chan,
			 r == -EPIPE ? "the channel ended" : strerror(-r));
		return r;
	}
	len = get_le(h + 16, 8);
	if (get_le(h, 4) != EMBER_PROTO_MAGIC || get_le(h + 4, 2) != EMBER_PROTO_VERSION ||
	    get_le(h + 6, 2) != EMBER_SNAPSHOT_DONE || get_le(h + 8, 8) != id ||
	    len > EMBER_PROTO_MAX_PAYLOAD) {
		snprintf(why, cap, "expected SNAPSHOT_DONE %llu on fd %d, got frame type %llu id %llu "
			 "(magic %#010llx, %llu bytes)", (unsigned long long)id, chan,
			 (unsigned long long)get_le(h + 6, 2), (unsigned long long)get_le(h + 8, 8),
			 (unsigned long long)get_le(h, 4), (unsigned long long)len);
		return -EPROTO;
	}
	while (len) { /* the status is informative */
		size_t n = len < sizeof(skip) ? (size_t)len : sizeof(skip);

		r = read_exact(chan, skip, n);
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
	struct scratch s = { .cap = 256 << 10 };
	unsigned char h[EMBER_PROTO_HDR_LEN];
	long threads;
	int r;

	why[0] = '\0';
	memset(&st, 0, sizeof(st));
	threads = count_threads();
	if (threads < 0) {
		snprintf(why, why_cap, "count the template's threads in /proc/self/task: %s",
			 strerror((int)-threads));
		r = refuse(chan, id, &st, (int)-threads, why);
		return r < 0 ? r : 0;
	}
	st.threads = (uint32_t)threads;
	if (threads != 1) {
		snprintf(why, why_cap, "the template has %ld threads; a snapshot needs exactly one "
			 "(start no thread before the ready point)", threads);
		r = refuse(chan, id, &st, EBUSY, why);
		return r < 0 ? r : 0;
	}
	snap_tid = (pid_t)syscall(SYS_gettid);

	/* Like setjmp: a restored process comes back here with 1; locals written after this line
	 * are then whatever they were at the dump, so the resumed path reads none of them. */
	if (ember_snap_capture(&st.regs) == 1) {
		fix_glibc_tid();
		return 1;
	}

	r = fill_kernel_state(&st, why, why_cap);
	if (r < 0) {
		r = refuse(chan, id, &st, -r, why);
		return r < 0 ? r : 0;
	}
	for (;;) {
		s.p = mmap(NULL, s.cap, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (s.p == MAP_FAILED) {
			snprintf(why, why_cap, "map %zu bytes of scratch for the snapshot texts: %s",
				 s.cap, strerror(errno));
			r = refuse(chan, id, &st, errno, why);
			return r < 0 ? r : 0;
		}
		r = build_texts(&s, &st, why, why_cap);
		if (r != -ENOSPC)
			break;
		munmap(s.p, s.cap);
		s.cap *= 4;
	}
	if (r < 0) {
		munmap(s.p, s.cap);
		r = refuse(chan, id, &st, -r, why);
		return r < 0 ? r : 0;
	}

	/* payload order: maps, fds, exe (the scratch holds fds, exe, maps) */
	struct iovec iov[4] = {
		{ h, sizeof(h) },
		{ &st, sizeof(st) },
		{ s.p + st.fds_len + st.exe_len, st.maps_len },
		{ s.p, (size_t)st.fds_len + st.exe_len },
	};
	frame_hdr(h, EMBER_SNAPSHOT_STATE, id, sizeof(st) + s.len);
	r = send_iov(chan, iov, 4);
	munmap(s.p, s.cap);
	if (r < 0) {
		snprintf(why, why_cap, "send SNAPSHOT_STATE on fd %d: %s", chan, strerror(-r));
		return r;
	}
	/* from here until DONE the memory must hold still: nothing but this read */
	return wait_done(chan, id, why, why_cap);
}
