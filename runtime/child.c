/* runtime/child.c — the sandbox child: executes a plan (plan.h) and reports the first failing
 * step to the parent (sync.h). Only async-signal-safe calls: this code may run in a process
 * forked from a multi-threaded host, where another thread could have held a malloc lock.
 * Strings for error steps are assembled by hand into a fixed buffer for the same reason.
 *
 * Order, and why:
 *  1. (stage 1 only) join namespaces by fd, create the user namespace and wait for its id maps,
 *     unshare the rest, write time offsets, fork the container's init (CLONE_PARENT).
 *  2. wait for GO: the parent has put us in the cgroup (and mapped our ids), so nothing below
 *     runs, allocates or forks outside the limits.
 *  3. mounts under the rootfs, resolved with RESOLVE_IN_ROOT so a symlink in an untrusted rootfs
 *     can never redirect a mount to the host; devices; sysctls; createContainer hooks; then
 *     pivot_root and detach the old root; masked and read-only paths; read-only root.
 *  4. process: console, rlimits, oom score, seccomp while CAP_SYS_ADMIN is still held (when
 *     no_new_privs is off), ids and capabilities, cwd; report CREATED; wait for `start` on the
 *     exec fifo; startContainer hooks; no_new_privs + seccomp (as late as possible, so the
 *     filter need not allow ember's own setup calls); exec through the sealed stub. */
#include "runtime/sandbox.h"
#include "runtime/caps.h"
#include "runtime/console.h"
#include "runtime/hooks.h"
#include "runtime/rlimits.h"
#include "runtime/seccomp.h"
#include "runtime/sync.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

struct child {
	const struct em_plan *p;
	const struct em_sandbox_io *io;
	struct em_sync_msg msg;       /* the step being executed, sent as is on failure */
	int rootfd;
	char state_json[65536];       /* for createContainer/startContainer hooks */
};

/* ---------------------------------------------------------------- step text */

static void step(struct child *c, const char *a, const char *b, const char *d)
{
	size_t n = 0, cap = sizeof(c->msg.step) - 1;
	const char *parts[3] = { a, b, d };

	for (int i = 0; i < 3; i++)
		for (const char *s = parts[i]; s && *s && n < cap; s++)
			c->msg.step[n++] = *s;
	c->msg.step[n] = '\0';
}

static char *utoa(unsigned long v, char *end)
{
	*--end = '\0';
	do
		*--end = (char)('0' + v % 10);
	while (v /= 10);
	return end;
}

static void fd_path(char buf[32], int fd)
{
	char num[24];
	const char *s = utoa((unsigned long)fd, num + sizeof(num));
	size_t n = 14;

	memcpy(buf, "/proc/self/fd/", 14);
	while (*s)
		buf[n++] = *s++;
	buf[n] = '\0';
}

static __attribute__((noreturn)) void fail(struct child *c, int code)
{
	c->msg.type = EM_SYNC_ERROR;
	c->msg.err = code > 0 ? code : (code < 0 ? -code : EIO);
	send(c->io->sync_fd, &c->msg, sizeof(c->msg), MSG_NOSIGNAL);
	_exit(1);
}

#define CHECK(c, expr)                          \
	do {                                    \
		if ((expr) < 0)                 \
			fail((c), errno);       \
	} while (0)

/* for our own functions, which return -errno */
#define CHECK_RET(c, expr)                      \
	do {                                    \
		int _r = (expr);                \
		if (_r < 0)                     \
			fail((c), -_r);         \
	} while (0)

static void send_msg(struct child *c, uint32_t type, int64_t value)
{
	struct em_sync_msg m = { .type = type, .value = value };

	if (send(c->io->sync_fd, &m, sizeof(m), MSG_NOSIGNAL) < 0)
		_exit(1); /* the parent is gone: nobody to report to */
}

/* Wait for one message from the parent; anything but `want` ends the child. */
/* The id changes go straight to the kernel. glibc's setgroups/setresuid/setresgid broadcast the
 * change to every thread of the process it knows of (__nptl_setxid) and wait for each; a child
 * cloned from a multi-threaded host (the function host) inherits that thread list, but not the
 * threads, and waits forever. The child is single-threaded: the raw call is the whole story. */
static int raw_setgroups(size_t n, const gid_t *g)
{
	return (int)syscall(SYS_setgroups, n, g);
}

static int raw_setresgid(gid_t r, gid_t e, gid_t s)
{
	return (int)syscall(SYS_setresgid, r, e, s);
}

static int raw_setresuid(uid_t r, uid_t e, uid_t s)
{
	return (int)syscall(SYS_setresuid, r, e, s);
}

static void wait_msg(struct child *c, uint32_t want)
{
	struct em_sync_msg m;
	ssize_t n;

	do
		n = recv(c->io->sync_fd, &m, sizeof(m), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(m) || m.type != want)
		_exit(1); /* parent failed or died and will report it itself */
}

/* ---------------------------------------------------------------- secure paths in the rootfs */

static int open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};

	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

/* mkdir -p of `path` inside the rootfs (the last component a file if `file`); returns an O_PATH
 * fd of it. Every component is resolved inside the root, so symlinks cannot lead outside. */
static int mkpath_in_root(int rootfd, const char *path, bool file, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);
	int parent = -1;

	if (len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	parent = open_in_root(rootfd, "/", O_PATH);
	if (parent < 0)
		return -1;
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		bool last = buf[i] == '\0';
		if (!last && buf[i + 1] == '\0')
			last = true; /* trailing slash */
		char saved = buf[i];
		buf[i] = '\0';
		int fd = open_in_root(rootfd, buf, O_PATH);
		if (fd < 0 && errno == ENOENT) {
			const char *name = strrchr(buf, '/') + 1;
			int r;

			if (last && file) {
				r = openat(parent, name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
				if (r >= 0)
					close(r);
			} else {
				r = mkdirat(parent, name, mode);
			}
			if (r < 0 && errno != EEXIST) {
				close(parent);
				return -1;
			}
			fd = open_in_root(rootfd, buf, O_PATH);
		}
		if (fd < 0) {
			if (parent >= 0)
				close(parent);
			return -1;
		}
		buf[i] = saved;
		if (parent >= 0)
			close(parent);
		if (last)
			return fd;
		/* reopen as a directory we can mkdirat in (an O_PATH fd works for *at calls) */
		parent = fd;
	}
	if (parent >= 0)
		return parent;
	return open_in_root(rootfd, "/", O_PATH);
}

/* Flags a remount must keep: in a user namespace they are locked, and dropping them is EPERM. */
static unsigned long locked_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;

	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

/* ---------------------------------------------------------------- mounts */

static void do_bind(struct child *c, const char *src, const char *target, bool rec, bool file,
		    unsigned long flags, unsigned long prop)
{
	char fdp[32];
	int fd;

	step(c, "create mount point ", target, NULL);
	fd = mkpath_in_root(c->rootfd, target, file, 0755);
	if (fd < 0)
		fail(c, errno);
	fd_path(fdp, fd);
	step(c, "bind mount ", src, " into the container");
	if (mount(src, fdp, NULL, MS_BIND | (rec ? MS_REC : 0), NULL) < 0)
		fail(c, errno);
	close(fd);
	flags &= ~(unsigned long)MS_REMOUNT;
	if (flags || prop) {
		/* reopen: the fd must now name the new mount, not what it covers */
		fd = open_in_root(c->rootfd, target, O_PATH);
		if (fd < 0)
			fail(c, errno);
		fd_path(fdp, fd);
		if (flags) {
			step(c, "remount bind mount ", target, " with its options");
			if (mount(NULL, fdp, NULL, MS_BIND | MS_REMOUNT | flags | locked_flags(fdp),
				  NULL) < 0)
				fail(c, errno);
		}
		if (prop) {
			step(c, "set propagation of ", target, NULL);
			CHECK(c, mount(NULL, fdp, NULL, prop, NULL));
		}
		close(fd);
	}
}

/* Remove "gid=N" from a devpts option string in place (a user namespace may not map gid 5). */
static void strip_gid(char *data)
{
	char *g = strstr(data, "gid=");

	if (!g)
		return;
	char *end = strchr(g, ',');
	if (end)
		memmove(g, end + 1, strlen(end + 1) + 1);
	else if (g > data)
		g[-1] = '\0';
	else
		*g = '\0';
}

static void do_mount(struct child *c, const struct em_plan_mount *m)
{
	char fdp[32], data[4096];
	int fd;

	step(c, "create mount point ", m->target, NULL);
	fd = mkpath_in_root(c->rootfd, m->target, false, 0755);
	if (fd < 0)
		fail(c, errno);
	fd_path(fdp, fd);
	step(c, "mount ", m->fstype, NULL);
	step(c, c->msg.step, " on ", m->target);
	data[0] = '\0';
	if (m->data)
		strncpy(data, m->data, sizeof(data) - 1);
	data[sizeof(data) - 1] = '\0';
	if (mount(m->source, fdp, m->fstype, m->flags, data[0] ? data : NULL) < 0) {
		int e = errno;

		if (e == EINVAL && !strcmp(m->fstype, "devpts") && strstr(data, "gid=")) {
			strip_gid(data);
			if (mount(m->source, fdp, m->fstype, m->flags, data) == 0)
				goto mounted;
		}
		if (e == EPERM && !strcmp(m->fstype, "sysfs") && c->p->bind_devices) {
			/* sysfs needs a network namespace owned by our user namespace; like runc,
			 * fall back to the host's /sys, read-only */
			close(fd);
			do_bind(c, "/sys", m->target, true, false, m->flags | MS_RDONLY, 0);
			return;
		}
		errno = e;
		fail(c, e);
	}
mounted:
	close(fd);
	if (m->propagation) {
		fd = open_in_root(c->rootfd, m->target, O_PATH);
		if (fd < 0)
			fail(c, errno);
		fd_path(fdp, fd);
		step(c, "set propagation of ", m->target, NULL);
		CHECK(c, mount(NULL, fdp, NULL, m->propagation, NULL));
		close(fd);
	}
}

/* Expose the host's cgroup hierarchies at m->target: fresh cgroupfs mounts when the container has
 * its own cgroup namespace (they then show only its subtree), else binds of its own cgroups. */
static void do_cgroup_mount(struct child *c, const struct em_plan_mount *m)
{
	const struct em_plan *p = c->p;
	char sub[4096];

	if (p->n_cgroup_fs == 1 && !p->cgroup_fs[0].name[0]) { /* pure v2 host */
		const struct em_plan_cgroup_fs *h = &p->cgroup_fs[0];
		if (p->cgroupns) {
			struct em_plan_mount mm = *m;
			mm.fstype = "cgroup2";
			mm.source = "cgroup2";
			mm.data = NULL;
			do_mount(c, &mm);
		} else {
			do_bind(c, h->host_dir, m->target, false, false, m->flags, 0);
		}
		return;
	}
	struct em_plan_mount tm = { .kind = EM_PM_MOUNT, .source = "tmpfs", .target = m->target,
				    .fstype = "tmpfs", .data = "mode=755",
				    .flags = m->flags & ~(unsigned long)MS_RDONLY };
	do_mount(c, &tm);
	for (size_t i = 0; i < p->n_cgroup_fs; i++) {
		const struct em_plan_cgroup_fs *h = &p->cgroup_fs[i];
		size_t tl = strlen(m->target);

		if (tl + strlen(h->name) + 2 > sizeof(sub))
			fail(c, ENAMETOOLONG);
		memcpy(sub, m->target, tl);
		sub[tl] = '/';
		strcpy(sub + tl + 1, h->name);
		if (p->cgroupns) {
			struct em_plan_mount cm = { .kind = EM_PM_MOUNT, .source = "cgroup", .target = sub,
						    .fstype = h->fstype, .data = h->options,
						    .flags = m->flags };
			do_mount(c, &cm);
		} else {
			do_bind(c, h->host_dir, sub, false, false, m->flags, 0);
		}
	}
	if (m->flags & MS_RDONLY) {
		int fd = open_in_root(c->rootfd, m->target, O_PATH);
		char fdp[32];

		if (fd < 0)
			fail(c, errno);
		fd_path(fdp, fd);
		step(c, "make ", m->target, " read-only");
		CHECK(c, mount(NULL, fdp, NULL, MS_REMOUNT | MS_RDONLY | (m->flags & ~0UL), "mode=755"));
		close(fd);
	}
}

static void make_devices(struct child *c)
{
	const struct em_plan *p = c->p;

	for (size_t i = 0; i < p->n_devices; i++) {
		const struct em_plan_device *d = &p->devices[i];
		const char *slash = strrchr(d->path, '/');
		char dir[4096];
		size_t dl = (size_t)(slash - d->path);

		if (p->bind_devices) {
			/* mknod is not allowed in a user namespace: bind the host's node */
			do_bind(c, d->path, d->path, false, true, 0, 0);
			continue;
		}
		memcpy(dir, d->path, dl);
		dir[dl ? dl : 1] = '\0';
		if (!dl)
			dir[0] = '/';
		step(c, "create device ", d->path, NULL);
		int dfd = mkpath_in_root(c->rootfd, dir, false, 0755);
		if (dfd < 0)
			fail(c, errno);
		int real = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(dfd);
		if (real < 0)
			fail(c, errno);
		unlinkat(real, slash + 1, 0);
		if (mknodat(real, slash + 1, d->mode, d->rdev) < 0)
			fail(c, errno);
		if (fchownat(real, slash + 1, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
			fail(c, errno);
		close(real);
	}
	/* the standard links, as runc makes them */
	static const char *const links[][2] = {
		{ "/proc/self/fd", "fd" },     { "/proc/self/fd/0", "stdin" },
		{ "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
		{ "pts/ptmx", "ptmx" },
	};
	int dev = open_in_root(c->rootfd, "/dev", O_RDONLY | O_DIRECTORY);
	if (dev < 0)
		return; /* no /dev at all: nothing to link */
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		struct stat st;

		/* /dev/ptmx: replace a node with the link only when a devpts instance is there */
		if (!strcmp(links[i][1], "ptmx")) {
			if (fstatat(dev, "pts/ptmx", &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			unlinkat(dev, "ptmx", 0);
		}
		step(c, "create symlink /dev/", links[i][1], NULL);
		if (symlinkat(links[i][0], dev, links[i][1]) < 0 && errno != EEXIST)
			fail(c, errno);
	}
	close(dev);
}

static void write_file(struct child *c, const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		fail(c, errno);
	if (write(fd, data, len) < 0)
		fail(c, errno);
	close(fd);
}

static void set_oom_score_adj(struct child *c, int v)
{
	char num[24], *s = utoa((unsigned long)(v < 0 ? -v : v), num + sizeof(num));

	if (v < 0)
		*--s = '-';
	step(c, "write /proc/self/oom_score_adj (process.oomScoreAdj)", NULL, NULL);
	write_file(c, "/proc/self/oom_score_adj", s, strlen(s));
}

static void setup_rootfs(struct child *c)
{
	const struct em_plan *p = c->p;

	/* nothing we mount may propagate back to the host */
	step(c, "make the mount namespace a slave of the host", NULL, NULL);
	CHECK(c, mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL));
	step(c, "bind the rootfs ", p->rootfs, " onto itself");
	CHECK(c, mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL));
	step(c, "open rootfs ", p->rootfs, NULL);
	c->rootfd = open(p->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->rootfd < 0)
		fail(c, errno);

	for (size_t i = 0; i < p->n_mounts; i++) {
		const struct em_plan_mount *m = &p->mounts[i];

		if (m->kind == EM_PM_BIND)
			do_bind(c, m->source, m->target, m->recursive, m->file_target, m->flags,
				m->propagation);
		else if (m->kind == EM_PM_CGROUP)
			do_cgroup_mount(c, m);
		else
			do_mount(c, m);
	}
	make_devices(c);
}

static void pivot(struct child *c)
{
	const struct em_plan *p = c->p;

	step(c, "pivot_root into ", p->rootfs, NULL);
	CHECK(c, fchdir(c->rootfd));
	CHECK(c, (int)syscall(SYS_pivot_root, ".", "."));
	/* the old root is now stacked under the new one at "."; detach it without letting the
	 * unmount propagate anywhere */
	step(c, "detach the old root after pivot_root into ", p->rootfs, NULL);
	CHECK(c, mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL));
	CHECK(c, umount2(".", MNT_DETACH));
	CHECK(c, chdir("/"));
	close(c->rootfd);
	c->rootfd = -1;

	for (size_t i = 0; i < p->n_masked; i++) {
		struct stat st;

		if (stat(p->masked[i], &st) < 0) {
			if (errno == ENOENT)
				continue;
			step(c, "mask ", p->masked[i], NULL);
			fail(c, errno);
		}
		step(c, "mask ", p->masked[i], NULL);
		if (S_ISDIR(st.st_mode))
			CHECK(c, mount("tmpfs", p->masked[i], "tmpfs", MS_RDONLY, "size=0k"));
		else
			CHECK(c, mount("/dev/null", p->masked[i], NULL, MS_BIND, NULL));
	}
	for (size_t i = 0; i < p->n_readonly; i++) {
		step(c, "make ", p->readonly[i], " read-only");
		if (mount(p->readonly[i], p->readonly[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			fail(c, errno);
		}
		CHECK(c, mount(NULL, p->readonly[i], NULL,
			       MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | locked_flags(p->readonly[i]),
			       NULL));
	}
	if (p->root_readonly) {
		step(c, "make the root filesystem read-only", NULL, NULL);
		CHECK(c, mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags("/"),
			       NULL));
	}
	if (p->root_propagation) {
		step(c, "set the rootfs propagation", NULL, NULL);
		CHECK(c, mount(NULL, "/", NULL, p->root_propagation, NULL));
	}
}

/* ---------------------------------------------------------------- process */

static void run_hooks(struct child *c, enum em_hook_kind kind)
{
	struct em_err err;

	if (!c->p->hooks || !c->p->hooks->n[kind])
		return;
	if (em_hooks_run(c->p->hooks, kind, c->state_json, NULL, &err) < 0) {
		step(c, err.msg, NULL, NULL);
		fail(c, err.code);
	}
}

/* Find argv[0] in PATH as seen inside the container (execvp is not async-signal-safe). */
static void find_program(struct child *c, char *out, size_t cap)
{
	const char *prog = c->p->argv[0];
	const char *s = c->p->path_env;

	if (strchr(prog, '/')) {
		strncpy(out, prog, cap - 1);
		out[cap - 1] = '\0';
		return;
	}
	int first_err = ENOENT;
	while (s && *s) {
		const char *e = strchr(s, ':');
		size_t dl = e ? (size_t)(e - s) : strlen(s);
		size_t pl = strlen(prog);

		if (dl + pl + 2 <= cap) {
			memcpy(out, dl ? s : ".", dl ? dl : 1);
			size_t n = dl ? dl : 1;
			out[n++] = '/';
			memcpy(out + n, prog, pl + 1);
			struct stat st;
			if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
				if (access(out, X_OK) == 0)
					return;
				first_err = EACCES;
			}
		}
		s = e ? e + 1 : NULL;
	}
	step(c, "find \"", prog, "\" in the container's PATH");
	fail(c, first_err);
}

static void set_ids_and_caps(struct child *c)
{
	const struct em_plan *p = c->p;
	int bad = -1;

	step(c, "keep capabilities across the change of user", NULL, NULL);
	CHECK_RET(c, em_caps_keep_on_setuid(true));
	step(c, "drop bounding capabilities", NULL, NULL);
	CHECK_RET(c, em_caps_drop_bounding(p->caps[EM_CAP_BOUNDING], p->last_cap, &bad));
	if (p->set_groups) {
		step(c, "setgroups (process.user.additionalGids)", NULL, NULL);
		CHECK(c, raw_setgroups(p->n_groups, p->groups));
	}
	step(c, "setresgid (process.user.gid)", NULL, NULL);
	CHECK(c, raw_setresgid(p->gid, p->gid, p->gid));
	step(c, "setresuid (process.user.uid)", NULL, NULL);
	CHECK(c, raw_setresuid(p->uid, p->uid, p->uid));
	step(c, "set capabilities (process.capabilities)", NULL, NULL);
	CHECK_RET(c, em_caps_set(p->caps[EM_CAP_EFFECTIVE], p->caps[EM_CAP_PERMITTED],
				 p->caps[EM_CAP_INHERITABLE], &bad));
	step(c, "raise ambient capabilities (process.capabilities.ambient)", NULL, NULL);
	int r = em_caps_set_ambient(p->caps[EM_CAP_AMBIENT], p->last_cap, &bad);
	if (r < 0) {
		if (bad >= 0 && em_cap_name(bad))
			step(c, "raise ambient capability ", em_cap_name(bad), NULL);
		fail(c, -r);
	}
	CHECK_RET(c, em_caps_keep_on_setuid(false));
}

static __attribute__((noreturn)) void run_process(struct child *c)
{
	const struct em_plan *p = c->p;
	const struct em_sandbox_io *io = c->io;
	char prog[4096];
	int bad = -1;

	if (p->terminal) {
		const char *what = NULL;
		int r;

		if (io->console_sock < 0) {
			step(c, "process.terminal is true but no console socket was given", NULL, NULL);
			fail(c, EINVAL);
		}
		r = em_console_child_setup(io->console_sock, p->console_rows, p->console_cols, &what);
		if (r < 0) {
			step(c, "set up the terminal: ", what, NULL);
			fail(c, -r);
		}
		close(io->console_sock);
	}
	if (p->n_rlimits) {
		step(c, "set rlimits (process.rlimits)", NULL, NULL);
		int r = em_rlimits_apply(p->rlimits, p->n_rlimits, &bad);
		if (r < 0) {
			if (bad >= 0)
				step(c, "set ", p->rlimits[bad].type, " (process.rlimits)");
			fail(c, -r);
		}
	}
	if (p->has_io_priority) {
		step(c, "set the I/O priority (process.ioPriority)", NULL, NULL);
		CHECK(c, (int)syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, p->io_priority));
	}
	if (p->has_seccomp && !p->no_new_privs) {
		step(c, "load the seccomp filter (linux.seccomp)", NULL, NULL);
		int r = em_seccomp_load(&p->seccomp);
		if (r < 0)
			fail(c, -r);
	}
	set_ids_and_caps(c);
	umask(p->set_umask ? p->umask : 022);
	step(c, "chdir to process.cwd ", p->cwd, NULL);
	CHECK(c, chdir(p->cwd));

	send_msg(c, EM_SYNC_CREATED, 0);
	wait_msg(c, EM_SYNC_DETACH);
	/* from here on the container outlives its creator; say so before the creator may exit,
	 * or its exit could still deliver the parent-death SIGKILL set during setup. A host's
	 * instance does not: it dies with the host, and waits parked for its turn. */
	if (!io->host_owned)
		prctl(PR_SET_PDEATHSIG, 0);
	send_msg(c, EM_SYNC_DETACHED, 0);
	if (io->fifo_fd >= 0) {
		char fdp[32];
		int fd;

		/* blocks until `ember start` opens the fifo for reading; reopened through the host's
		 * /proc kept open across pivot_root (the container may have no /proc) */
		fd_path(fdp, io->fifo_fd);
		step(c, "wait for start on exec.fifo", NULL, NULL);
		do
			fd = openat(io->proc_fd, fdp + 6, O_WRONLY | O_CLOEXEC);
		while (fd < 0 && errno == EINTR);
		if (fd < 0)
			fail(c, errno);
		if (write(fd, "0", 1) != 1)
			fail(c, errno);
		close(fd);
		close(io->fifo_fd);
	}
	if (io->proc_fd >= 0)
		close(io->proc_fd);
	run_hooks(c, EM_HOOK_START_CONTAINER);
	if (p->no_new_privs) {
		step(c, "set no_new_privs (process.noNewPrivileges)", NULL, NULL);
		CHECK(c, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	}
	if (p->has_seccomp && p->no_new_privs) {
		step(c, "load the seccomp filter (linux.seccomp)", NULL, NULL);
		int r = em_seccomp_load(&p->seccomp);
		if (r < 0)
			fail(c, -r);
	}
	find_program(c, prog, sizeof(prog));
	/* the program starts with no signal blocked, whatever ember's caller had blocked */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* Every fd the process should not inherit closes at exec; the sync socket stays open across
	 * the stub so it can report a failed exec, and the stub makes it close-on-exec itself. */
	step(c, "close inherited descriptors", NULL, NULL);
	CHECK(c, (int)syscall(SYS_close_range, 3 + io->preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC));
	CHECK(c, fcntl(io->sync_fd, F_SETFD, 0));

	size_t argc = 0;
	while (p->argv[argc])
		argc++;
	char *argv[argc + 4];
	char fdnum[24];
	/* a host's sandbox parks inside the stub, after this exec: the copy of the (large,
	 * multi-threaded) host's address space is torn down now, while parking, not on the cold
	 * start's path (5-7 ms on this VM) */
	argv[0] = io->host_owned ? "ember-exec-wait" : "ember-exec";
	argv[1] = utoa((unsigned long)io->sync_fd, fdnum + sizeof(fdnum));
	argv[2] = prog;
	for (size_t i = 0; i <= argc; i++)
		argv[3 + i] = p->argv[i];
	step(c, "exec ", prog, " (through ember's exec stub)");
	syscall(SYS_execveat, io->stub_fd, "", argv, p->envp, AT_EMPTY_PATH);
	fail(c, errno);
}

/* ---------------------------------------------------------------- stage 1 */

static const int join_order[] = { EM_NS_USER, EM_NS_IPC, EM_NS_UTS, EM_NS_NET, EM_NS_PID,
				  EM_NS_CGROUP, EM_NS_TIME, EM_NS_MOUNT };

static void join_namespaces(struct child *c, bool include_user)
{
	for (size_t i = 0; i < sizeof(join_order) / sizeof(join_order[0]); i++) {
		int t = join_order[i];

		if (c->p->join_fds[t] < 0 || (t == EM_NS_USER && !include_user))
			continue;
		step(c, "join the ", em_ns_type_name(t), " namespace");
		CHECK(c, setns(c->p->join_fds[t], 0));
	}
}

/* Join and unshare, then fork the container's init as a sibling (CLONE_PARENT); stage 1 exits,
 * stage 2 (the init) returns. */
static void stage1(struct child *c)
{
	const struct em_plan *p = c->p;
	int flags = p->unshare_flags;

	join_namespaces(c, true);
	if (flags & CLONE_NEWUSER) {
		step(c, "create the user namespace", NULL, NULL);
		CHECK(c, unshare(CLONE_NEWUSER));
		send_msg(c, EM_SYNC_NEED_IDMAP, 0);
		wait_msg(c, EM_SYNC_GO);
		/* become root of the new namespace, as mapped */
		step(c, "become root in the user namespace", NULL, NULL);
		CHECK(c, raw_setresgid(0, 0, 0));
		CHECK(c, raw_setresuid(0, 0, 0));
		flags &= ~CLONE_NEWUSER;
	}
	if (flags) {
		step(c, "create the container's namespaces", NULL, NULL);
		CHECK(c, unshare(flags));
	}
	if (p->timens_offsets) {
		step(c, "set time namespace offsets (linux.timeOffsets)", NULL, NULL);
		write_file(c, "/proc/self/timens_offsets", p->timens_offsets,
			   strlen(p->timens_offsets));
	}
	step(c, "fork the container's init", NULL, NULL);
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		fail(c, errno);
	if (pid == 0)
		return; /* stage 2 continues in em_child_main */
	send_msg(c, EM_SYNC_STAGE2_PID, pid);
	_exit(0);
}

/* Close every descriptor the child did not get on purpose: the parent may hold others (the
 * state directory's lock, a host's sockets) that must not live on in the container's init. */
static void close_other_fds(const struct em_plan *p, const struct em_sandbox_io *io)
{
	int keep[EM_NS_COUNT + 8];
	size_t n = 0;

	keep[n++] = io->sync_fd;
	keep[n++] = io->stub_fd;
	keep[n++] = io->fifo_fd;
	keep[n++] = io->console_sock;
	keep[n++] = io->proc_fd;
	for (int t = 0; t < EM_NS_COUNT; t++)
		keep[n++] = p->join_fds[t];
	/* insertion sort: a handful of numbers */
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && keep[k - 1] > keep[k]; k--) {
			int t = keep[k];
			keep[k] = keep[k - 1];
			keep[k - 1] = t;
		}
	unsigned int from = 3 + (unsigned int)(io->preserve_fds > 0 ? io->preserve_fds : 0);
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < 0 || (unsigned int)keep[i] < from)
			continue;
		if ((unsigned int)keep[i] > from)
			syscall(SYS_close_range, from, (unsigned int)keep[i] - 1, 0);
		from = (unsigned int)keep[i] + 1;
	}
	syscall(SYS_close_range, from, ~0U, 0);
}

void em_child_main(const struct em_plan *plan, const struct em_sandbox_io *io, bool two_stage)
{
	static struct child cs; /* our own copy of memory: static is private to this child */
	struct child *c = &cs;

	c->p = plan;
	c->io = io;
	c->rootfd = -1;
	if (io->remap_fds) {
		/* the sources sit above 3 (sandbox.c): no dup2 here clobbers another's source */
		for (int i = 0; i < io->n_map_fds; i++) {
			if (io->map_fds[i] >= 0)
				dup2(io->map_fds[i], i);
			else
				close(i);
		}
	}
	close_other_fds(plan, io);
	/* no one in the container may ptrace us or open our /proc files while we hold the host's
	 * descriptors; the exec resets this for the container's program */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	wait_msg(c, EM_SYNC_GO);
	if (two_stage) {
		stage1(c);
		/* stage 2: the container's init */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	} else {
		join_namespaces(c, false);
		if (plan->new_userns) {
			/* the maps are written: become root of the new namespace, as mapped */
			step(c, "become root in the user namespace", NULL, NULL);
			CHECK(c, raw_setresgid(0, 0, 0));
			CHECK(c, raw_setresuid(0, 0, 0));
		}
	}
	if (plan->setup_rootfs) {
		if (plan->hostname) {
			step(c, "sethostname ", plan->hostname, NULL);
			CHECK(c, sethostname(plan->hostname, strlen(plan->hostname)));
		}
		if (plan->domainname) {
			step(c, "setdomainname ", plan->domainname, NULL);
			CHECK(c, setdomainname(plan->domainname, strlen(plan->domainname)));
		}
		setup_rootfs(c);
		for (size_t i = 0; i < plan->n_sysctls; i++) {
			step(c, "write sysctl ", plan->sysctls[i].path + 10, NULL);
			write_file(c, plan->sysctls[i].path, plan->sysctls[i].value,
				   strlen(plan->sysctls[i].value));
		}
	}
	/* through the /proc we still see: before pivot_root it is the host's, for exec the
	 * container's (its mount namespace was joined) */
	if (plan->set_oom_score_adj)
		set_oom_score_adj(c, plan->oom_score_adj);
	if (plan->needs_create_runtime) {
		ssize_t n;

		send_msg(c, EM_SYNC_CREATE_RUNTIME, 0);
		wait_msg(c, EM_SYNC_GO);
		/* the state JSON for the hooks we run ourselves follows as one message */
		n = recv(io->sync_fd, c->state_json, sizeof(c->state_json) - 1, 0);
		if (n < 0)
			_exit(1);
		c->state_json[n] = '\0';
	}
	if (plan->setup_rootfs) {
		if (plan->run_create_container_hooks)
			run_hooks(c, EM_HOOK_CREATE_CONTAINER);
		pivot(c);
	}
	run_process(c);
}
