/* tests/sdk/inst.c — see inst.h. */
#include "inst.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef EMBER_SRCDIR
#error "EMBER_SRCDIR (the source tree) comes from sdk/build.mk"
#endif

static char build_dir[PATH_MAX];

static const char *build(void)
{
	if (!build_dir[0]) {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

		cr_assert_gt(n, 0);
		exe[n] = '\0';
		*strrchr(exe, '/') = '\0'; /* build/tests */
		*strrchr(exe, '/') = '\0'; /* build */
		snprintf(build_dir, sizeof(build_dir), "%s", exe);
	}
	return build_dir;
}

const char *t_example_bin(const char *name)
{
	static char p[4][PATH_MAX];
	static int i;
	char *s = p[i++ % 4];

	snprintf(s, PATH_MAX, "%s/examples/%s/rootfs/var/task/%s", build(), name, name);
	cr_assert_eq(access(s, X_OK), 0, "%s: not built (make examples)", s);
	return s;
}

const char *t_bundle(const char *name)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/examples/%s", build(), name);
	return p;
}

const char *t_ember(void)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/ember", build());
	return p;
}

const char *t_py_sdk(void) { return EMBER_SRCDIR "/sdk/python/ember_fn.py"; }
const char *t_py_dir(void) { return EMBER_SRCDIR "/tests/sdk/py"; }

/* ---- the instances this test process started, for inst_reap_all */

#define MAX_LIVE 64
static struct {
	pid_t pid;
	int fds[3];
	bool reaped;
} live[MAX_LIVE];
static int n_live;

static int slot_of(pid_t pid)
{
	for (int i = 0; i < n_live; i++)
		if (live[i].pid == pid)
			return i;
	return -1;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void inst_reap_all(void)
{
	for (int i = 0; i < n_live; i++) {
		if (!live[i].reaped) {
			kill(live[i].pid, SIGKILL);
			while (waitpid(live[i].pid, NULL, 0) < 0 && errno == EINTR)
				;
			live[i].reaped = true;
		}
		for (int k = 0; k < 3; k++)
			close_fd(&live[i].fds[k]);
	}
	n_live = 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void inst_spawn(struct inst *in, const char *const *argv, const char *const *env, const char *cwd,
		bool channel)
{
	int sp[2], o[2], e[2];
	const char *envp[64];
	size_t n = 0;
	pid_t parent = getpid();

	/* a write to an instance that died must be an EPIPE the test sees, not our death */
	signal(SIGPIPE, SIG_IGN);
	envp[n++] = "PATH=/usr/bin:/bin";
	envp[n++] = "PYTHONDONTWRITEBYTECODE=1"; /* no __pycache__ in the source tree */
	if (channel)
		envp[n++] = "EMBER_CHANNEL_FD=3";
	for (; env && *env && n < 63; env++)
		envp[n++] = *env;
	envp[n] = NULL;
	if (channel)
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	else
		cr_assert_eq(pipe2(sp, O_CLOEXEC), 0); /* sp[0]: its stdin, sp[1]: ours */
	cr_assert_eq(pipe2(o, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(e, O_CLOEXEC), 0);
	cr_assert_lt(n_live, MAX_LIVE);

	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* the instance must not outlive a test that failed half-way */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		int null = open("/dev/null", O_RDONLY);
		int child_chan = channel ? sp[1] : sp[0];
		/* out of the way of 0-3 first, so no dup2 below overwrites a source */
		int fin = fcntl(channel ? null : child_chan, F_DUPFD, 10);
		int fout = fcntl(o[1], F_DUPFD, 10), ferr = fcntl(e[1], F_DUPFD, 10);
		int fch = channel ? fcntl(child_chan, F_DUPFD, 10) : -1;
		if (fin < 0 || fout < 0 || ferr < 0 || dup2(fin, 0) < 0 || dup2(fout, 1) < 0 ||
		    dup2(ferr, 2) < 0 || (channel && dup2(fch, 3) < 0))
			_exit(125);
		syscall(SYS_close_range, channel ? 4u : 3u, ~0u, 0u);
		if (cwd && chdir(cwd) < 0)
			_exit(124);
		execve(argv[0], (char *const *)argv, (char *const *)envp);
		_exit(127);
	}
	close(channel ? sp[1] : sp[0]);
	close(o[1]);
	close(e[1]);
	*in = (struct inst){ .pid = pid, .chan = channel ? sp[0] : sp[1], .out = o[0], .err = e[0] };
	live[n_live].pid = pid;
	live[n_live].fds[0] = in->chan;
	live[n_live].fds[1] = in->out;
	live[n_live].fds[2] = in->err;
	live[n_live].reaped = false;
	n_live++;
}

void inst_spawn_py(struct inst *in, const char *handler, const char *const *env, bool channel)
{
	const char *argv[] = { PYTHON, t_py_sdk(), handler, NULL };

	inst_spawn(in, argv, env, t_py_dir(), channel);
}

int inst_send_raw(struct inst *in, const void *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(in->chan, (const char *)p + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(in->chan, (const char *)p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

int inst_send(struct inst *in, uint16_t type, uint64_t id, const void *payload, size_t len)
{
	struct ember_frame_hdr h = {
		.magic = EMBER_PROTO_MAGIC, .version = EMBER_PROTO_VERSION, .type = type, .id = id,
		.len = len,
	};
	/* one buffer, one send: an instance that refuses the header closes the channel before it
	 * reads a payload, and a second send would then race with that */
	char *p = malloc(sizeof(h) + len);
	int r;

	cr_assert_not_null(p);
	memcpy(p, &h, sizeof(h));
	if (len)
		memcpy(p + sizeof(h), payload, len);
	r = inst_send_raw(in, p, sizeof(h) + len);
	free(p);
	return r;
}

int inst_invoke(struct inst *in, uint64_t id, const char *meta, const void *body, size_t len)
{
	uint32_t mlen = (uint32_t)strlen(meta);
	char *p = malloc(4 + mlen + len);
	int r;

	cr_assert_not_null(p);
	memcpy(p, &mlen, 4); /* little-endian, as the machine */
	memcpy(p + 4, meta, mlen);
	if (len)
		memcpy(p + 4 + mlen, body, len);
	r = inst_send(in, EMBER_INVOKE, id, p, 4 + mlen + len);
	free(p);
	return r;
}

/* Read len bytes by the deadline; the count read (< len: EOF). Asserts on timeout. */
static size_t read_by(int fd, void *buf, size_t len, uint64_t deadline)
{
	size_t done = 0;

	while (done < len) {
		uint64_t now = now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };

		cr_assert_lt(now, deadline, "no frame from the instance in time (%zu of %zu bytes)",
			     done, len);
		int r = poll(&p, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		cr_assert_geq(r, 0);
		if (r == 0)
			continue;
		ssize_t n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0 && errno == ECONNRESET)
			n = 0;
		cr_assert_geq(n, 0, "read: %s", strerror(errno));
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return done;
}

int inst_recv(struct inst *in, struct frame *f, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	size_t n = read_by(in->chan, &f->h, sizeof(f->h), deadline);

	f->payload = NULL;
	if (n == 0)
		return 0;
	cr_assert_eq(n, sizeof(f->h), "the channel ended inside a header");
	cr_assert_eq(f->h.magic, EMBER_PROTO_MAGIC, "magic %#x", f->h.magic);
	cr_assert_eq(f->h.version, EMBER_PROTO_VERSION);
	cr_assert_leq(f->h.len, EMBER_PROTO_MAX_PAYLOAD);
	f->payload = malloc(f->h.len + 1);
	cr_assert_not_null(f->payload);
	n = read_by(in->chan, f->payload, f->h.len, deadline);
	cr_assert_eq(n, f->h.len, "the channel ended inside a payload");
	f->payload[f->h.len] = '\0';
	return 1;
}

void frame_free(struct frame *f)
{
	free(f->payload);
	f->payload = NULL;
}

char *inst_expect(struct inst *in, uint16_t type, uint64_t id)
{
	struct frame f;
	char err[4096];

	if (!inst_recv(in, &f, INST_TIMEOUT_MS)) {
		inst_read_now(in->err, err, sizeof(err));
		cr_assert_fail("EOF instead of frame type %u; stderr: %s", type, err);
	}
	if (f.h.type != type)
		cr_assert_fail("frame type %u (payload %.300s), expected %u", f.h.type, f.payload, type);
	cr_assert_eq(f.h.id, id, "frame id %llu, expected %llu", (unsigned long long)f.h.id,
		     (unsigned long long)id);
	return f.payload;
}

void inst_expect_ready(struct inst *in, const char *sdk)
{
	char want[128];
	char *p = inst_expect(in, EMBER_READY, 0);

	snprintf(want, sizeof(want), "{\"sdk\":\"%s\",\"pid\":%d}", sdk, (int)in->pid);
	cr_assert_str_eq(p, want);
	free(p);
}

void inst_close(struct inst *in)
{
	int s = slot_of(in->pid);

	close_fd(&in->chan);
	if (s >= 0)
		live[s].fds[0] = -1;
}

int inst_wait(struct inst *in, int timeout_ms)
{
	int s = slot_of(in->pid), pidfd = (int)syscall(SYS_pidfd_open, in->pid, 0);
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	cr_assert_geq(pidfd, 0, "pidfd_open: %s", strerror(errno));
	int r;
	while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	close(pidfd);
	if (r == 0) {
		kill(in->pid, SIGKILL);
		waitpid(in->pid, NULL, 0);
		in->reaped = true;
		if (s >= 0)
			live[s].reaped = true;
		cr_assert_fail("instance %d did not exit within %d ms", (int)in->pid, timeout_ms);
	}
	cr_assert_eq(waitpid(in->pid, &in->status, 0), in->pid);
	in->reaped = true;
	if (s >= 0)
		live[s].reaped = true;
	return in->status;
}

size_t inst_read_now(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (len + 1 < cap && poll(&p, 1, 0) == 1) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return len;
}

size_t inst_read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len + 1 < cap && ((n = read(fd, buf + len, cap - 1 - len)) > 0 ||
				 (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	buf[len] = '\0';
	return len;
}

int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int term_signal(int status)
{
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

/* The ready point: between invocations the instance is one thread blocked in a read of the
 * channel (fd 3): what a cgroup freeze or a future zygote fork relies on. syscalls: the read
 * calls allowed, as /proc/PID/syscall numbers them (x86-64: read 0, readv 19). */
void assert_blocked_reading_the_channel(pid_t pid, const char *const *syscalls)
{
	char path[64], line[256] = "", nr[16] = "", arg0[32] = "";
	bool blocked = false;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	/* it may still be on its way into the read */
	for (int i = 0; i < 300 && !blocked; i++) {
		FILE *f = fopen(path, "r");

		cr_assert_not_null(f);
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		fclose(f);
		if (sscanf(line, "%15s %31s", nr, arg0) == 2 && !strcmp(arg0, "0x3"))
			for (const char *const *s = syscalls; *s; s++)
				blocked |= !strcmp(nr, *s);
		if (!blocked)
			usleep(10000);
	}
	cr_assert(blocked, "not blocked in a read of fd 3: /proc/%d/syscall = %s", (int)pid, line);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	int threads = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &threads) == 1)
			break;
	fclose(f);
	cr_assert_eq(threads, 1, "%d threads", threads);
}
