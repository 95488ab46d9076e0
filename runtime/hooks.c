/* runtime/hooks.c — OCI lifecycle hooks; see hooks.h for the contract.
 *
 * One hook = one child made with clone3(CLONE_PIDFD, exit_signal 0), watched with poll() on its
 * pidfd and on its stdout/stderr pipes, reaped with waitid(P_PIDFD, __WALL). No SIGCHLD, no
 * process-wide state, no allocation: this runs in a long-lived multithreaded host as well as in a
 * single-threaded sandbox child that has already pivoted into the container's rootfs. */
#include "runtime/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h> /* struct clone_args, CLONE_PIDFD */
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#define F_GETPIPE_SZ 1032
#endif

/* What the child reports through its close-on-exec status pipe when it fails before the hook's
 * program runs; a successful execve closes the pipe and the parent reads EOF. */
enum child_step { STEP_STDIO = 1, STEP_CLOSE_FDS, STEP_EXEC };
struct child_report {
	int32_t step;
	int32_t err;
};

static const char *step_name(int step)
{
	switch (step) {
	case STEP_STDIO: return "set up stdio";
	case STEP_CLOSE_FDS: return "close inherited fds";
	case STEP_EXEC: return "exec";
	default: return "start";
	}
}

/* The fds the child needs, all >= 4 so that the dup2()s onto 0-3 never clobber one another
 * (the caller may run with 0-2 closed, so pipe2() can hand out 0, 1 or 2). */
struct child_fds {
	int in, out, err, report;
};

static __attribute__((noreturn)) void child_fail(int report_fd, int step)
{
	struct child_report r = { .step = step, .err = errno };

	if (write(report_fd, &r, sizeof(r)) < 0) {
		/* the parent then sees EOF and an exit status of 127 */
	}
	_exit(127);
}

/* Runs in the cloned child: only async-signal-safe calls until execve. */
static __attribute__((noreturn)) void hook_child(struct child_fds f, const char *path,
						 char *const argv[], char *const envp[])
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;

	/* The parent blocked every signal around clone3 so that none of the host's handlers can run
	 * in this copy of it. Dispositions set to SIG_IGN survive execve, and so does the mask: reset
	 * both so the hook starts as a freshly exec'd program would (SIGPIPE default, nothing
	 * blocked). glibc refuses its internal signals with EINVAL; that is fine. */
	for (int s = 1; s < _NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &dfl, NULL);
	/* glibc's own signals (32, 33) are refused by sigaction(); an ignored one inherited from
	 * whoever started ember would survive the exec: reset them with the raw system call */
	for (int s = 32; s < SIGRTMIN; s++) {
		struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } k = { 0 };

		syscall(SYS_rt_sigaction, s, &k, NULL, sizeof(k.mask));
	}

	/* Its own process group, so a timeout kills whatever the hook started too. */
	setpgid(0, 0);

	int *fds[] = { &f.in, &f.out, &f.err, &f.report };
	for (size_t i = 0; i < EM_ARRAY_SIZE(fds); i++) {
		if (*fds[i] < 4) {
			int n = fcntl(*fds[i], F_DUPFD_CLOEXEC, 4);
			if (n < 0)
				child_fail(f.report, STEP_STDIO);
			*fds[i] = n;
		}
	}
	/* dup2 clears close-on-exec on 0-2; the report pipe stays close-on-exec at fd 3. */
	if (dup2(f.in, 0) < 0 || dup2(f.out, 1) < 0 || dup2(f.err, 2) < 0 ||
	    dup3(f.report, 3, O_CLOEXEC) < 0)
		child_fail(f.report, STEP_STDIO);
	/* Nothing of the runtime's (state dir fds, sockets, the container's fds) may leak into a
	 * hook: close everything above the report pipe. */
	if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0)
		child_fail(3, STEP_CLOSE_FDS);

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(path, argv, envp);
	child_fail(3, STEP_EXEC);
}

static pid_t clone_pidfd(int *pidfd)
{
	/* exit_signal SIGCHLD: execve resets any other exit_signal to SIGCHLD anyway (de_thread),
	 * so a "clone child" trick cannot hide the hook from a host's waitpid(-1). */
	struct clone_args ca = {
		.flags = CLONE_PIDFD,
		.pidfd = (uint64_t)(uintptr_t)pidfd,
		.exit_signal = SIGCHLD,
	};

	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));

	/* clone3 refused (ENOSYS: an old seccomp profile around us): clone with CLONE_PIDFD puts
	 * the pidfd where the parent tid would go — the third argument on every architecture */
	if (pid < 0 && errno == ENOSYS)
		pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_PIDFD | SIGCHLD), 0UL, pidfd,
				     0UL, 0UL);
	return pid;
}

/* A bounded capture of one output pipe; what does not fit is read and dropped. */
struct capture {
	int fd;
	size_t len;
	bool truncated;
	char buf[EM_HOOK_OUTPUT_MAX + 1];
};

/* Read what is available (the fd is non-blocking). At most `budget` reads, so a descendant of an
 * exited hook that keeps writing cannot hold us here. EOF or an error closes the capture. */
static void capture_read(struct capture *c, int budget)
{
	char scratch[1024];

	while (c->fd >= 0 && budget-- > 0) {
		char *dst = c->buf + c->len;
		size_t room = EM_HOOK_OUTPUT_MAX - c->len;
		ssize_t n;

		if (room == 0) {
			dst = scratch;
			room = sizeof(scratch);
		}
		n = read(c->fd, dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(take_fd(&c->fd));
			return;
		}
		if (dst == scratch)
			c->truncated = true;
		else
			c->len += (size_t)n;
	}
}

/* The capture as text for a message: trailing whitespace dropped, NUL-terminated. */
static const char *capture_text(struct capture *c)
{
	while (c->len > 0 && (c->buf[c->len - 1] == '\n' || c->buf[c->len - 1] == '\r' ||
			      c->buf[c->len - 1] == ' ' || c->buf[c->len - 1] == '\t'))
		c->len--;
	c->buf[c->len] = '\0';
	for (size_t i = 0; i < c->len; i++)
		if (c->buf[i] == '\0')
			c->buf[i] = ' ';
	return c->buf;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fill the hook's stdin pipe with the whole state before the hook starts: then the hook may read
 * it or not, and exit whenever it likes, without the runtime ever writing to a pipe nobody reads
 * (which would raise SIGPIPE in the host). The state is small; the pipe grows if needed. */
static int fill_stdin(int wfd, const char *state, const char *what, struct em_err *err)
{
	size_t len = state ? strlen(state) : 0, off = 0;
	int cap = fcntl(wfd, F_GETPIPE_SZ);

	if (cap >= 0 && (size_t)cap < len) {
		cap = len > INT32_MAX ? -1 : fcntl(wfd, F_SETPIPE_SZ, (int)len);
		if (cap < 0 || (size_t)cap < len)
			return em_err_msg(err, EFBIG, "%s: state JSON of %zu bytes does not fit a pipe",
					  what, len);
	}
	while (off < len) {
		ssize_t n = write(wfd, state + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return em_err_set(err, errno, "%s: write state to stdin pipe", what);
		off += (size_t)n;
	}
	return 0;
}

/* The four pipes of one hook run; [0] is the read end. All close-on-exec. */
struct hook_pipes {
	int in[2], out[2], err[2], report[2];
};

static void hook_pipes_close(struct hook_pipes *p)
{
	int *all[] = { &p->in[0], &p->in[1], &p->out[0], &p->out[1],
		       &p->err[0], &p->err[1], &p->report[0], &p->report[1] };

	for (size_t i = 0; i < EM_ARRAY_SIZE(all); i++)
		em_closep(all[i]);
}

static int hook_pipes_open(struct hook_pipes *p, const char *what, struct em_err *err)
{
	if (pipe2(p->in, O_CLOEXEC) < 0 || pipe2(p->out, O_CLOEXEC) < 0 ||
	    pipe2(p->err, O_CLOEXEC) < 0 || pipe2(p->report, O_CLOEXEC) < 0)
		return em_err_set(err, errno, "%s: create pipes", what);
	/* the runtime's read ends are polled; the hook's ends stay blocking */
	if (fcntl(p->out[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(p->err[0], F_SETFL, O_NONBLOCK) < 0)
		return em_err_set(err, errno, "%s: make output pipes non-blocking", what);
	return 0;
}

/* PIDFD_GET_INFO (Linux 6.15+): the exit status of a process even after someone else reaped it.
 * Defined here because Debian 12's kernel headers predate it. */
struct pidfd_exit_info {
	uint64_t mask, cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;          /* a wait status, as waitpid() gives */
};
#define EM_PIDFD_GET_INFO _IOWR(0xFF, 11, struct pidfd_exit_info)
#define EM_PIDFD_INFO_EXIT (1ULL << 3)
#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP (1U << 2)
#endif

static void kill_hook(pid_t pid, int pidfd)
{
	/* The whole group (the hook's descendants too), then the hook itself in case it moved to
	 * a group of its own. The parent set the group before any timeout could fire, so the
	 * group is the hook's and never the runtime's own. Without PIDFD_SIGNAL_PROCESS_GROUP
	 * (before Linux 6.9) kill(-pid) is used, only while the hook is provably unreaped: until
	 * then neither its pid nor its group id can be reused. */
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, PIDFD_SIGNAL_PROCESS_GROUP) < 0 &&
	    errno == EINVAL && syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0)
		kill(-pid, SIGKILL);
	syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}

/* Reap the hook and return its wait status in *status. If the host reaped it first (SIGCHLD set
 * to SIG_IGN, or a SIGCHLD handler calling waitpid(-1)), take the status from the pidfd; that
 * needs Linux 6.15, before it the status is lost (-ECHILD). */
static int reap(int pidfd, int *status)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | __WALL) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != ECHILD)
			return -errno;
		/* reaped by someone else: release_task() records the status before the task
		 * leaves the children list, but a concurrent reaper may not be there yet */
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		poll(&p, 1, -1);
		for (int i = 0; i < 100; i++) {
			struct pidfd_exit_info info = { .mask = EM_PIDFD_INFO_EXIT };
			if (ioctl(pidfd, EM_PIDFD_GET_INFO, &info) < 0)
				return -ECHILD;
			if (info.mask & EM_PIDFD_INFO_EXIT) {
				*status = info.exit_code;
				return 0;
			}
			usleep(1000);
		}
		return -ECHILD;
	}
	switch (si.si_code) {
	case CLD_EXITED: *status = W_EXITCODE(si.si_status, 0); break;
	case CLD_DUMPED: *status = si.si_status | WCOREFLAG; break;
	default: *status = si.si_status; break;
	}
	return 0;
}

/* Build the message for a hook that ran and did not exit 0. */
static int status_error(const char *what, int status, struct capture *out, struct capture *errc,
			struct em_err *err)
{
	char desc[96];
	const char *e = capture_text(errc), *o = capture_text(out);
	const char *sep_e = *e ? ": " : "";

	if (WIFEXITED(status)) {
		snprintf(desc, sizeof(desc), "exited with status %d", WEXITSTATUS(status));
	} else {
		const char *abbrev = sigabbrev_np(WTERMSIG(status));
		char sig[24];
		if (abbrev)
			snprintf(sig, sizeof(sig), "SIG%s", abbrev);
		else
			snprintf(sig, sizeof(sig), "%d", WTERMSIG(status));
		snprintf(desc, sizeof(desc), "killed by signal %s%s", sig,
			 WCOREDUMP(status) ? " (core dumped)" : "");
	}
	if (*o)
		return em_err_msg(err, ECHILD, "%s: %s%s%s%s (stdout: %s%s)", what, desc, sep_e, e,
				  errc->truncated ? "..." : "", o, out->truncated ? "..." : "");
	return em_err_msg(err, ECHILD, "%s: %s%s%s%s", what, desc, sep_e, e,
			  errc->truncated ? "..." : "");
}

/* Watch a started hook until it exits or times out, then reap it and judge the result. */
static int watch_hook(const struct em_oci_hook *h, const char *what, pid_t pid, int pidfd,
		      struct hook_pipes *p, struct em_log *log, struct em_err *err)
{
	struct capture out = { .fd = take_fd(&p->out[0]) }, errc = { .fd = take_fd(&p->err[0]) };
	/* a timeout too large to add up is no timeout (the parser only checks that it is > 0) */
	int64_t deadline = h->timeout.set && h->timeout.v > 0 && h->timeout.v < INT64_MAX / 2000
				   ? now_ms() + h->timeout.v * 1000
				   : -1;
	bool timed_out = false;
	int r, status = 0;

	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = pidfd, .events = POLLIN },
			{ .fd = out.fd, .events = POLLIN },
			{ .fd = errc.fd, .events = POLLIN },
		};
		int wait_ms = -1;

		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left <= 0) {
				timed_out = true;
				break;
			}
			wait_ms = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		int n = poll(pfd, EM_ARRAY_SIZE(pfd), wait_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* cannot watch it any more: do not leave it running unwatched */
			r = em_err_set(err, errno, "%s: poll", what);
			kill_hook(pid, pidfd);
			reap(pidfd, &status);
			goto out;
		}
		if (pfd[1].revents)
			capture_read(&out, 16);
		if (pfd[2].revents)
			capture_read(&errc, 16);
		if (pfd[0].revents)
			break;
	}
	if (timed_out)
		kill_hook(pid, pidfd);
	/* What the hook wrote before exiting is in the pipes; a descendant that still holds them
	 * open does not keep us waiting for EOF. */
	capture_read(&out, 64);
	capture_read(&errc, 64);
	r = reap(pidfd, &status);
	if (r == -ECHILD) {
		r = em_err_msg(err, ECHILD, "%s: exit status lost: the process was reaped by "
			       "someone else (SIGCHLD ignored or reaped by a handler) on a kernel "
			       "without PIDFD_INFO_EXIT", what);
		goto out;
	}
	if (r < 0) {
		r = em_err_set(err, -r, "%s: wait", what);
		goto out;
	}
	if (timed_out) {
		r = em_err_msg(err, ETIMEDOUT, "%s: timed out after %lld s", what,
			       (long long)h->timeout.v);
		goto out;
	}

	struct child_report rp;
	ssize_t n;
	do
		n = read(p->report[0], &rp, sizeof(rp));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(rp)) {
		r = em_err_set(err, rp.err, "%s: %s", what, step_name(rp.step));
		goto out;
	}
	if (status != 0) {
		r = status_error(what, status, &out, &errc, err);
		goto out;
	}
	if (out.len || errc.len)
		em_debug(log, "%s: stdout: %s; stderr: %s", what, capture_text(&out),
			 capture_text(&errc));
	r = 0;
out:
	em_closep(&out.fd);
	em_closep(&errc.fd);
	return r;
}

int em_hook_run(const struct em_oci_hook *h, enum em_hook_kind kind, size_t index,
		const char *state_json, struct em_log *log, struct em_err *err)
{
	const char *kind_name = kind < EM_HOOK_NKINDS ? em_hook_kind_name(kind) : "unknown";
	char what[512];

	if (!h || !h->path)
		return em_err_msg(err, EINVAL, "%s hook [%zu]: no path", kind_name, index);
	snprintf(what, sizeof(what), "%s hook [%zu] %s", kind_name, index, h->path);
	if (h->args.n > EM_HOOK_MAX_STRINGS || h->env.n > EM_HOOK_MAX_STRINGS)
		return em_err_msg(err, E2BIG, "%s: more than %d args or env entries", what,
				  EM_HOOK_MAX_STRINGS);

	/* argv and envp on the stack: no allocation, so this is usable in a child of a
	 * multithreaded process too. */
	char *argv[h->args.n ? h->args.n + 1 : 2];
	char *envp[h->env.n + 1];
	if (h->args.n) {
		memcpy(argv, h->args.v, h->args.n * sizeof(char *));
		argv[h->args.n] = NULL;
	} else {
		argv[0] = h->path;
		argv[1] = NULL;
	}
	if (h->env.n)
		memcpy(envp, h->env.v, h->env.n * sizeof(char *));
	envp[h->env.n] = NULL;

	__attribute__((cleanup(hook_pipes_close))) struct hook_pipes p = {
		{ -1, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 }
	};
	int r = hook_pipes_open(&p, what, err);
	if (r < 0)
		return r;
	r = fill_stdin(p.in[1], state_json, what, err);
	if (r < 0)
		return r;
	em_closep(&p.in[1]);

	em_debug(log, "%s: running", what);

	sigset_t all, old;
	int pidfd = -1;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone_pidfd(&pidfd);
	if (pid == 0) {
		struct child_fds f = { .in = p.in[0], .out = p.out[1], .err = p.err[1],
				       .report = p.report[1] };
		hook_child(f, h->path, argv, envp);
	}
	int clone_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return em_err_set(err, clone_errno, "%s: clone3", what);

	cleanup_close int pidfd_owned = pidfd;
	/* The child makes its own group too; doing it here as well means the group exists before
	 * any kill_hook() (whichever runs first wins; EACCES once the child has exec'd). */
	setpgid(pid, pid);
	/* only the hook holds the write ends now: EOF when it (and its descendants) are done */
	em_closep(&p.in[0]);
	em_closep(&p.out[1]);
	em_closep(&p.err[1]);
	em_closep(&p.report[1]);
	return watch_hook(h, what, pid, pidfd_owned, &p, log, err);
}

int em_hooks_run(const struct em_oci_hooks *hooks, enum em_hook_kind kind, const char *state_json,
		 struct em_log *log, struct em_err *err)
{
	if (kind >= EM_HOOK_NKINDS)
		return em_err_msg(err, EINVAL, "unknown hook kind %d", (int)kind);
	if (!hooks)
		return 0;

	/* Spec: poststart and poststop failures are warnings; the others abort the container. */
	bool fatal = kind != EM_HOOK_POSTSTART && kind != EM_HOOK_POSTSTOP;

	for (size_t i = 0; i < hooks->n[kind]; i++) {
		struct em_err warn = { 0 };
		int r = em_hook_run(&hooks->v[kind][i], kind, i, state_json, log,
				    fatal ? err : &warn);
		if (r < 0 && fatal)
			return r;
		if (r < 0)
			em_warn(log, "%s", warn.msg);
	}
	return 0;
}
