/* snapshot/restore/phase2.c — ember-restore's phase 2, on the scratch stack in its bss: clear the
 * old address space but for the restorer itself and the kernel's vdso/vvar, move those to the
 * image's addresses, map and fill the template's regions, reopen its fds, put back its signal
 * state, rseq and mm fields, and jump (jump.c).
 *
 * The restorer's own TCB (a static binary's lives in its brk heap, in our reserved range) stays
 * valid until the jump, so libc and canary-checked code may run here; but malloc must not run
 * after PR_SET_MM_MAP (brk then belongs to the template's heap), and nothing here may touch the
 * original stack (it is unmapped). */
#include "snapshot/restore/restore.h"
#include "common/err.h"
#include "sdk/c/ember_proto.h"
#include "snapshot/fill.h"
#include "snapshot/lazy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/prctl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE EM_SNAP_PAGE_SIZE
#define MAX_VMAS 512

struct vma {
	uint64_t start, end;
	int prot;
	bool file, special, own;
	char name[32];
};

static char maps_buf[256 << 10];
static struct vma vmas[MAX_VMAS];

static void tick(struct plan *p, const char *what)
{
	if (p->timing)
		dprintf(2, "ember-restore: %-10s %8.3f ms\n", what,
			(double)(restore_now_ns() - p->t0) / 1e6);
}

static int read_vmas(void)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	int nv = 0;

	if (fd < 0)
		restore_fail("Map", "open /proc/self/maps: %s", strerror(errno));
	for (;;) {
		ssize_t r = read(fd, maps_buf + n, sizeof(maps_buf) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			restore_fail("Map", "read /proc/self/maps: %s", strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	maps_buf[n] = '\0';
	for (char *line = maps_buf, *next; line && *line && nv < MAX_VMAS; line = next) {
		unsigned long long s, e, ino;
		char perms[8], name[32] = "";

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (sscanf(line, "%llx-%llx %7s %*s %*s %llu %31s", &s, &e, perms, &ino, name) < 4)
			continue;
		struct vma *v = &vmas[nv++];
		v->start = s;
		v->end = e;
		v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
			  (perms[2] == 'x' ? PROT_EXEC : 0);
		v->file = ino != 0;
		v->special = !strcmp(name, "[vdso]") || !strcmp(name, "[vvar]") ||
			     !strcmp(name, "[vvar_vclock]") || !strcmp(name, "[vsyscall]");
		v->own = s >= RESTORER_BASE && e <= RESTORER_END;
		snprintf(v->name, sizeof(v->name), "%s", name);
	}
	return nv;
}

/* PR_SET_MM_MAP's exe_fd is refused (EBUSY) while the old exe, our memfd, is mapped: our text and
 * data become anonymous copies at the same addresses. mremap replaces a mapping atomically, so the
 * code doing it keeps running in the copy, which has the same bytes. */
static void anonymize_self(int nv)
{
	for (int i = 0; i < nv; i++) {
		struct vma *v = &vmas[i];
		size_t len = v->end - v->start;

		if (!v->own || !v->file)
			continue;
		void *tmp = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (tmp == MAP_FAILED)
			restore_fail("Map", "copy the restorer's %#llx-%#llx: mmap: %s",
				     (unsigned long long)v->start, (unsigned long long)v->end,
				     strerror(errno));
		if (v->prot & PROT_READ)
			memcpy(tmp, (void *)(uintptr_t)v->start, len);
		if (mprotect(tmp, len, v->prot) < 0 ||
		    mremap(tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(uintptr_t)v->start) ==
			    MAP_FAILED)
			restore_fail("Map", "move the restorer's copy over %#llx-%#llx: %s",
				     (unsigned long long)v->start, (unsigned long long)v->end,
				     strerror(errno));
	}
}

static void unmap_old(int nv)
{
	for (int i = 0; i < nv; i++) {
		struct vma *v = &vmas[i];

		if (v->own || v->special)
			continue;
		if (munmap((void *)(uintptr_t)v->start, v->end - v->start) < 0)
			restore_fail("Map", "unmap the old %#llx-%#llx %s: %s",
				     (unsigned long long)v->start, (unsigned long long)v->end, v->name,
				     strerror(errno));
	}
}

/* static glibc 2.36 calls the vDSO through these pointers (set at start from AT_SYSINFO_EHDR,
 * not mangled); once the vdso moves they point at nothing, and libc's clock_gettime (the fill
 * engine's timing, ours) would jump there. NULL makes glibc take the system call instead. */
extern void *_dl_vdso_clock_gettime64 __attribute__((weak));
extern void *_dl_vdso_clock_getres_time64 __attribute__((weak));
extern void *_dl_vdso_gettimeofday __attribute__((weak));
extern void *_dl_vdso_time __attribute__((weak));
extern void *_dl_vdso_getcpu __attribute__((weak));

static void forget_vdso(void)
{
	void **ptrs[] = { &_dl_vdso_clock_gettime64, &_dl_vdso_clock_getres_time64,
			  &_dl_vdso_gettimeofday, &_dl_vdso_time, &_dl_vdso_getcpu };

	for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++) {
		if (!ptrs[i])
			continue;
		/* they may sit in RELRO: our own page, made writable for this */
		uintptr_t page = (uintptr_t)ptrs[i] & ~(uintptr_t)(PAGE - 1);
		mprotect((void *)page, PAGE, PROT_READ | PROT_WRITE);
		*ptrs[i] = NULL;
	}
}

/* Park the vdso and vvar in our range first (their new places may overlap their old ones),
 * then move them to the image's addresses. The kernel follows a moved [vdso] (vdso_mremap):
 * signal returns and the vDSO's own data references keep working. */
static void move_specials(struct plan *p)
{
	uint64_t base = p->special[0].start;

	forget_vdso();

	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < p->nspecial; i++) {
			struct special *sp = &p->special[i];
			uint64_t len = sp->end - sp->start;
			uint64_t to = pass == 0 ? RESTORER_PARK + (sp->start - base) : sp->to;

			if (mremap((void *)(uintptr_t)sp->start, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
				   (void *)(uintptr_t)to) == MAP_FAILED)
				restore_fail("Vdso", "move %s %#llx-%#llx to %#llx: %s", sp->name,
					     (unsigned long long)sp->start, (unsigned long long)sp->end,
					     (unsigned long long)to, strerror(errno));
			sp->end = to + len;
			sp->start = to;
		}
}

static bool is_special(struct plan *p, const struct em_snap_region *r)
{
	const char *n = em_snap_string(p->img, r->name);

	return r->flags & EM_SNAP_R_ANON &&
	       (!strcmp(n, "[vdso]") || !strcmp(n, "[vvar]") || !strcmp(n, "[vvar_vclock]"));
}

static bool wants_thp(struct plan *p, const struct em_snap_region *r)
{
	if (!(r->flags & EM_SNAP_R_ANON) || p->thp == THP_NEVER)
		return false;
	return p->thp == THP_ALWAYS ? r->end - r->start >= (2u << 20) : r->flags & EM_SNAP_R_HUGEPAGE;
}

static const char *rname(struct plan *p, uint32_t i, char *buf, size_t cap)
{
	const struct em_snap_region *r = em_snap_region(p->img, i);
	const char *n = r->file != EM_SNAP_NONE
				? em_snap_string(p->img, em_snap_file(p->img, r->file)->path)
				: em_snap_string(p->img, r->name);

	snprintf(buf, cap, "region %u (%#llx-%#llx %s)", i, (unsigned long long)r->start,
		 (unsigned long long)r->end, *n ? n : "anonymous");
	return buf;
}

/* Map every region at its address, writable while it is filled. */
static void map_regions(struct plan *p)
{
	char what[600];

	for (uint32_t i = 0; i < em_snap_region_count(p->img); i++) {
		const struct em_snap_region *r = em_snap_region(p->img, i);
		/* a region without R_PRIVATE is a read-only shared file mapping (FORMAT.md) */
		int flags = (r->flags & EM_SNAP_R_PRIVATE ? MAP_PRIVATE : MAP_SHARED) |
			    MAP_FIXED_NOREPLACE, fd = -1;
		int prot = (int)r->prot | (r->nr_stored || r->nr_zero ? PROT_WRITE : 0);

		if (is_special(p, r))
			continue;
		if (r->flags & EM_SNAP_R_GROWSDOWN)
			flags |= MAP_GROWSDOWN;
		if (r->file == EM_SNAP_NONE) {
			flags |= MAP_ANONYMOUS;
		} else {
			const char *path = em_snap_string(p->img, em_snap_file(p->img, r->file)->path);

			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				restore_fail("Map", "%s: open %s: %s", rname(p, i, what, sizeof(what)),
					     path, strerror(errno));
		}
		void *at = mmap((void *)(uintptr_t)r->start, r->end - r->start, prot, flags, fd,
				(off_t)r->file_off);
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (at == MAP_FAILED || at != (void *)(uintptr_t)r->start)
			restore_fail("Map", "%s: mmap: %s", rname(p, i, what, sizeof(what)),
				     at == MAP_FAILED ? strerror(e) : "placed elsewhere");
		if (wants_thp(p, r) && madvise(at, r->end - r->start, MADV_HUGEPAGE) < 0)
			restore_fail("Map", "%s: MADV_HUGEPAGE: %s", rname(p, i, what, sizeof(what)),
				     strerror(errno));
	}
}

static void *fill_dst(void *arg, uint32_t i, const struct em_snap_region *r)
{
	struct plan *p = arg;

	(void)i;
	return is_special(p, r) || !r->nr_stored ? NULL : (void *)(uintptr_t)r->start;
}

/* Eager without io_uring: a sandbox's seccomp profile may refuse io_uring_setup (Docker's default
 * does). One pread per stored run (at most 1 MiB), checked if asked; the image's own fd, buffered
 * (--direct needs the ring's aligned reads and is not honoured here). */
static void fill_pread(struct plan *p)
{
	struct em_err err = { 0 };
	char what[600];
	int fd = em_snap_fd(p->img);

	for (uint32_t i = 0; i < em_snap_region_count(p->img); i++) {
		const struct em_snap_region *r = em_snap_region(p->img, i);
		struct em_snap_run run;
		uint32_t pos = 0;

		if (!fill_dst(p, i, r))
			continue;
		while (em_snap_next_run(p->img, i, &pos, 256, &run)) {
			if (run.state != EM_SNAP_STORED)
				continue;
			/* one call faults the run in (a read into unpopulated memory takes a fault
			 * per page: 2-3x slower here); failure only costs that speed */
			madvise((void *)(uintptr_t)run.vaddr, run.len, MADV_POPULATE_WRITE);
			for (uint64_t done = 0; done < run.len;) {
				ssize_t n = pread(fd, (char *)(uintptr_t)run.vaddr + done, run.len - done,
						  (off_t)(run.file_off + done));
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0)
					restore_fail("Fill", "%s: read of %llu bytes at image offset %#llx: %s",
						     rname(p, i, what, sizeof(what)),
						     (unsigned long long)(run.len - done),
						     (unsigned long long)(run.file_off + done),
						     n < 0 ? strerror(errno) : "end of file");
				done += (uint64_t)n;
			}
			if (p->verify && em_snap_check_pages(p->img, i, run.page,
							     (uint32_t)(run.len / PAGE),
							     (void *)(uintptr_t)run.vaddr, &err) < 0)
				restore_fail("PageChecksum", "%s", err.msg);
		}
	}
}

static bool have_io_uring(void)
{
	struct io_uring_params params = { 0 };
	long fd = syscall(SYS_io_uring_setup, 1, &params);

	if (fd >= 0)
		close((int)fd);
	return fd >= 0 || (errno != ENOSYS && errno != EPERM && errno != EACCES);
}

/* The mode's one step: give every region its stored pages. */
static void fill_eager(struct plan *p)
{
	struct em_snap_fill_opts o = { .direct = p->direct, .verify = p->verify, .populate = true };
	struct em_snap_fill_stats st = { 0 };
	struct em_err err = { 0 };

	if (p->no_uring || !have_io_uring()) {
		if (p->timing)
			dprintf(2, "ember-restore: no io_uring here: filling with pread\n");
		fill_pread(p);
		return;
	}
	if (em_snap_fill_all(p->img, fill_dst, p, &o, &st, &err) < 0)
		restore_fail(err.code == EBADMSG ? "PageChecksum" : "Fill", "%s", err.msg);
}

/* mmap: each region's stored runs become private mappings of the image (page cache, copy on
 * write); nothing is read now and nothing verified (FORMAT.md). */
static void fill_mmap(struct plan *p)
{
	char what[600];
	struct em_err err = { 0 };

	for (uint32_t i = 0; i < em_snap_region_count(p->img); i++) {
		const struct em_snap_region *r = em_snap_region(p->img, i);

		if (is_special(p, r) || !r->nr_stored)
			continue;
		/* writable like the rest of the region until finish_regions sets its prot */
		if (em_snap_map_private(p->img, i, em_snap_fd(p->img), r->prot | PROT_WRITE, NULL,
					&err) < 0)
			restore_fail("Fill", "%s: %s", rname(p, i, what, sizeof(what)), err.msg);
	}
}

static int read_full(int fd, void *buf, size_t n)
{
	char *b = buf;

	while (n) {
		ssize_t r = read(fd, b, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Send the userfaultfd to the host on the channel: EMBER_SNAPSHOT_UFFD, the fd on the header. */
static void send_uffd(int uffd)
{
	struct ember_frame_hdr h = { .magic = EMBER_PROTO_MAGIC, .version = EMBER_PROTO_VERSION,
				     .type = EMBER_SNAPSHOT_UFFD };
	struct iovec iov = { &h, sizeof(h) };
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	memset(u.buf, 0, sizeof(u.buf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &uffd, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(CHANNEL_FD, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(h))
		restore_fail("Uffd", "send the userfaultfd to the host on fd %d: %s", CHANNEL_FD,
			     n < 0 ? strerror(errno) : "short write");
}

/* lazy: the anonymous regions are registered with a userfaultfd the host serves from the image
 * (file-backed ones with stored pages are filled now: lazy.h says why). From here on, touching
 * the template's anonymous memory waits for the host, which has the fd once it is sent. */
static void fill_lazy(struct plan *p)
{
	struct em_err err = { 0 };
	struct ember_frame_hdr h;
	int32_t status;

	if (em_snap_uffd_fill_files(p->img, NULL, &err) < 0)
		restore_fail("Fill", "%s", err.msg);
	int uffd = em_snap_uffd_new(p->uffd_dev_fd, &err);
	if (uffd < 0)
		restore_fail("Uffd", "--uffd-dev-fd=%d: %s", p->uffd_dev_fd, err.msg);
	send_uffd(uffd);
	close(uffd);
	/* the host does the handshake (EVENT_FORK is not the sandbox's to ask for), registers our
	 * regions and starts serving them; then it answers with the same frame and a status */
	if (read_full(CHANNEL_FD, &h, sizeof(h)) < 0 || h.magic != EMBER_PROTO_MAGIC ||
	    h.type != EMBER_SNAPSHOT_UFFD || h.len != sizeof(status) ||
	    read_full(CHANNEL_FD, &status, sizeof(status)) < 0)
		restore_fail("Uffd", "no answer from the host to the userfaultfd on fd %d",
			     CHANNEL_FD);
	if (status)
		restore_fail("Uffd", "the host could not serve the userfaultfd: %s",
			     strerror(status));
}

static void fill(struct plan *p)
{
	switch (p->mode) {
	case MODE_EAGER:
		fill_eager(p);
		break;
	case MODE_MMAP:
		fill_mmap(p);
		break;
	case MODE_LAZY:
		fill_lazy(p);
		break;
	}
}

/* A zero page of a file-backed region was copied on write and then zeroed in the template: the
 * file's bytes there are not its content. Then every region gets its own protection. */
static void finish_regions(struct plan *p)
{
	char what[600];

	for (uint32_t i = 0; i < em_snap_region_count(p->img); i++) {
		const struct em_snap_region *r = em_snap_region(p->img, i);
		struct em_snap_run run;
		uint32_t pos = 0;

		if (is_special(p, r))
			continue;
		if (r->file != EM_SNAP_NONE && r->nr_zero)
			while (em_snap_next_run(p->img, i, &pos, 0, &run))
				if (run.state == EM_SNAP_ZERO)
					memset((void *)(uintptr_t)run.vaddr, 0, run.len);
		if ((r->nr_stored || r->nr_zero) && !(r->prot & PROT_WRITE) &&
		    mprotect((void *)(uintptr_t)r->start, r->end - r->start, (int)r->prot) < 0)
			restore_fail("Map", "%s: mprotect: %s", rname(p, i, what, sizeof(what)),
				     strerror(errno));
	}
}

/* fds 0-3 are the host's; every other is closed, then the template's files reopened at their
 * numbers with their flags and positions. */
static void restore_fds(struct plan *p)
{
	if (syscall(SYS_close_range, CHANNEL_FD + 1, ~0u, 0) < 0)
		restore_fail("Fds", "close fds above %d: %s", CHANNEL_FD, strerror(errno));
	for (uint32_t i = 0; i < p->nfds; i++) {
		struct restore_fd *f = &p->fds[i];
		int flags = (int)(f->flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)) |
			    O_NOCTTY | (f->fd_flags & FD_CLOEXEC ? O_CLOEXEC : 0);
		int fd = open(f->path, flags);

		if (fd < 0)
			restore_fail("Fds", "fd %d: open %s (flags %#x): %s", f->fd, f->path, f->flags,
				     strerror(errno));
		if (fd != f->fd) {
			if (dup3(fd, f->fd, f->fd_flags & FD_CLOEXEC ? O_CLOEXEC : 0) < 0)
				restore_fail("Fds", "fd %d: dup3 of %s: %s", f->fd, f->path,
					     strerror(errno));
			close(fd);
		}
		if (f->pos && lseek(f->fd, (off_t)f->pos, SEEK_SET) < 0 && errno != ESPIPE)
			restore_fail("Fds", "fd %d: seek %s to %llu: %s", f->fd, f->path,
				     (unsigned long long)f->pos, strerror(errno));
	}
}

/* Raw rt_sigaction: the recorded restorer and flags go back exactly (glibc's wrapper would put
 * its own restorer, and hides signals 32 and 33). */
static void restore_signals(struct plan *p)
{
	for (int s = 1; s <= EM_SNAP_NSIG; s++) {
		struct em_snap_sigaction *sa = &p->sig[s - 1];

		if (s == SIGKILL || s == SIGSTOP)
			continue;
		if (syscall(SYS_rt_sigaction, s, sa, NULL, 8) < 0)
			restore_fail("Signals", "rt_sigaction(%d, handler %#llx flags %#llx): %s", s,
				     (unsigned long long)sa->handler, (unsigned long long)sa->flags,
				     strerror(errno));
	}
}

extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

/* Ours out (glibc registered the restorer's TCB), the template's in: the kernel writes the cpu
 * id into the registered area on every return to user space, so ours would scribble on whatever
 * the template has at that address. glibc 2.36 registers 32 bytes and says __rseq_size = 20. */
static void restore_rseq(struct plan *p)
{
	if (&__rseq_size && &__rseq_offset && __rseq_size) {
		unsigned long fs;
		unsigned lens[2] = { 32, __rseq_size };

		syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs);
		for (int i = 0; i < 2; i++)
			if (syscall(SYS_rseq, fs + __rseq_offset, lens[i], 1 /* UNREGISTER */,
				    0x53053053) == 0)
				break;
	}
	if (p->ctx.rseq_addr &&
	    syscall(SYS_rseq, p->ctx.rseq_addr, p->ctx.rseq_len, 0, p->ctx.rseq_sig) < 0)
		restore_fail("Rseq", "register the template's rseq area %#llx (%u bytes): %s",
			     (unsigned long long)p->ctx.rseq_addr, p->ctx.rseq_len, strerror(errno));
}

/* The template's mm fields and auxv, and its executable as /proc/PID/exe. */
static void restore_mm(struct plan *p)
{
	struct prctl_mm_map m = {
		.start_code = p->mm.start_code, .end_code = p->mm.end_code,
		.start_data = p->mm.start_data, .end_data = p->mm.end_data,
		.start_brk = p->mm.start_brk, .brk = p->mm.brk, .start_stack = p->mm.start_stack,
		.arg_start = p->mm.arg_start, .arg_end = p->mm.arg_end,
		.env_start = p->mm.env_start, .env_end = p->mm.env_end,
		.auxv = (__u64 *)p->mm.auxv, .auxv_size = p->mm.auxv_size,
	};
	int fd = open(p->exe, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		restore_fail("Mm", "open the executable %s: %s", p->exe, strerror(errno));
	m.exe_fd = (uint32_t)fd;
	/* comm as an exec of the executable would have set it (the restorer's is "5") */
	const char *base = strrchr(p->exe, '/');
	prctl(PR_SET_NAME, base ? base + 1 : p->exe, 0, 0, 0);
	if (prctl(PR_SET_MM, PR_SET_MM_MAP, &m, sizeof(m), 0) < 0)
		restore_fail("Mm", "prctl(PR_SET_MM_MAP) with the image's mm fields (brk %#llx-%#llx, "
			     "exe %s): %s", (unsigned long long)m.start_brk, (unsigned long long)m.brk,
			     p->exe, strerror(errno));
	close(fd);
}

noreturn void restore_phase2(struct plan *p)
{
	static struct restore_jump j;
	sigset_t all;

	/* no signal until the template's handlers and mask are in place (the jump sets the mask) */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	tick(p, "checked");
	int nv = read_vmas();
	anonymize_self(nv);
	unmap_old(nv);
	move_specials(p);
	map_regions(p);
	tick(p, "mapped");
	fill(p);
	tick(p, "filled");
	finish_regions(p);
	em_snap_close(p->img);
	p->img = NULL;
	restore_fds(p);
	restore_signals(p);
	restore_rseq(p);
	restore_mm(p);
	tick(p, "jump");
	j.fs_base = p->fs_base;
	j.gs_base = p->gs_base;
	j.sigmask = p->sigmask;
	j.regs = p->ctx.regs;
	restore_jump(&j);
}
