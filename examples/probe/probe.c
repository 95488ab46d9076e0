/* examples/probe — a test function: the payload is a command that makes the handler misbehave
 * or report what the sandbox looks like from inside (`help` lists them). The host's and the
 * SDK's tests use it to produce every kind of failure and to check every limit.
 *
 * Payload: COMMAND [ARG]; the answer is text or JSON (below). Init is steered by the environment:
 *   PROBE_INIT_FAIL=MSG      init fails: INIT_ERROR {"errorType":"ProbeInitError",
 *                            "errorMessage":MSG}
 *   PROBE_INIT_EXIT=N        init calls exit(N) (an instance dying before READY)
 *   PROBE_INIT_SLEEP_MS=N    init takes N ms longer
 *   PROBE_INIT_LOG=TEXT      init prints TEXT on stdout and stderr */
#include "ember_fn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MB (1ul << 20)

/* The user-space generator of `prng`: seeded in init, so instances forked from one template
 * would repeat its sequence unless after_fork re-seeds it (which it does). */
static uint64_t prng_state;

static int seed_prng(void *ctx)
{
	(void)ctx;
	if (getrandom(&prng_state, sizeof(prng_state), 0) != sizeof(prng_state))
		return ember_fn_init_error("ProbeInitError", "getrandom: %s", strerror(errno));
	prng_state |= 1; /* xorshift needs a non-zero state */
	return 0;
}

static uint64_t prng_next(void)
{
	prng_state ^= prng_state << 13;
	prng_state ^= prng_state >> 7;
	prng_state ^= prng_state << 17;
	return prng_state;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int init(void *ctx)
{
	const char *v;

	if ((v = getenv("PROBE_INIT_LOG"))) {
		printf("%s\n", v);
		fprintf(stderr, "%s\n", v);
	}
	if ((v = getenv("PROBE_INIT_SLEEP_MS")))
		sleep_ms(atol(v));
	if ((v = getenv("PROBE_INIT_EXIT"))) {
		fflush(stdout);
		exit(atoi(v));
	}
	if ((v = getenv("PROBE_INIT_FAIL")))
		return ember_fn_init_error("ProbeInitError", "%s", v);
	return seed_prng(ctx);
}

/* ---- helpers for the answers */

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

/* A JSON string (escaped) into the response. */
static void put_str(struct ember_fn_response *r, const char *s)
{
	ember_fn_write(r, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			ember_fn_printf(r, "\\%c", c);
		else if (c < 0x20)
			ember_fn_printf(r, "\\u%04x", c);
		else
			ember_fn_write(r, s, 1);
	}
	ember_fn_write(r, "\"", 1);
}

/* An errno as a JSON value: null for 0, else its name. */
static void put_errno(struct ember_fn_response *r, int e)
{
	if (e)
		put_str(r, errname(e));
	else
		ember_fn_write(r, "null", 4);
}

/* Read a small file into buf (NUL-terminated); "" if it cannot be read. */
static void read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, cap - 1);

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

/* The value of "Key:\t..." in a /proc status-like text, up to the end of its line. */
static void status_field(const char *text, const char *key, char *out, size_t cap)
{
	const char *p = strstr(text, key);
	size_t n = 0;

	out[0] = '\0';
	if (!p)
		return;
	p += strlen(key);
	while (*p == ':' || *p == '\t' || *p == ' ')
		p++;
	while (p[n] && p[n] != '\n' && n + 1 < cap)
		n++;
	memcpy(out, p, n);
	out[n] = '\0';
}

static long arg_long(const char *arg, long dflt)
{
	char *end;
	long v;

	if (!arg || !*arg)
		return dflt;
	v = strtol(arg, &end, 10);
	return end == arg ? dflt : v;
}

/* ---- the commands: arg is the rest of the payload after the command and one blank (or NULL);
 * arg_len its length (the payload may hold NULs: echo is binary-safe) */

struct cmd {
	const char *name, *usage;
	int (*run)(const struct ember_fn_request *req, struct ember_fn_response *r, const char *arg,
		   size_t arg_len);
};

static int cmd_crash(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		     size_t l)
{
	/* both volatile: the compiler can neither know p is NULL (and emit a trap instead) nor
	 * drop the store; the kernel sees a real fault and sends SIGSEGV, which kills even a pid
	 * namespace's init (a signal raised by the process itself would not: see signal) */
	volatile int *volatile p = NULL;

	(void)q, (void)r, (void)a, (void)l;
	fflush(stdout);
	*p = 1;
	return 0;
}

static int cmd_signal(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		      size_t l)
{
	(void)q, (void)l;
	fflush(stdout);
	raise((int)arg_long(a, SIGABRT));
	return ember_fn_printf(r, "still alive after signal %ld", arg_long(a, SIGABRT));
}

static int cmd_exit(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		    size_t l)
{
	(void)q, (void)r, (void)l;
	exit((int)arg_long(a, 0)); /* exit, not _exit: stdio is flushed as a real program's would be */
}

static int cmd_error(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		     size_t l)
{
	(void)q, (void)l;
	return ember_fn_error(r, "ProbeError", "%s", a && *a ? a : "the payload asked for an error");
}

/* The handler returns N without calling ember_fn_error: the SDK's own HandlerError. */
static int cmd_return(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		      size_t l)
{
	(void)q, (void)l;
	ember_fn_printf(r, "this output is dropped");
	return (int)arg_long(a, 1);
}

static int cmd_sleep(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		     size_t l)
{
	long ms = arg_long(a, 1000);

	(void)q, (void)l;
	sleep_ms(ms);
	return ember_fn_printf(r, "slept %ld ms", ms);
}

/* Allocate and touch 1 MB blocks until ARG MB (no ARG: until the kernel kills the process). */
static int cmd_oom(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		   size_t l)
{
	long limit = arg_long(a, -1), n = 0;
	char **blocks = NULL;
	int err = 0;

	(void)q, (void)l;
	while (limit < 0 || n < limit) {
		char **nb = realloc(blocks, (size_t)(n + 1) * sizeof(*blocks));
		char *b = nb ? malloc(MB) : NULL;

		if (nb)
			blocks = nb;
		if (!b) {
			err = ENOMEM;
			break;
		}
		memset(b, 0x5a, MB); /* touch every page: that is what the memory limit counts */
		blocks[n++] = b;
	}
	ember_fn_printf(r, "{\"allocatedMb\":%ld,\"error\":", n);
	put_errno(r, err);
	ember_fn_write(r, "}", 1);
	while (n > 0)
		free(blocks[--n]);
	free(blocks);
	return 0;
}

/* Start ARG processes that wait for us; report how many forks succeeded, then reap them all. */
static int cmd_fork(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		    size_t l)
{
	long want = arg_long(a, 1), got = 0;
	pid_t *pids = calloc((size_t)(want > 0 ? want : 1), sizeof(pid_t));
	int gate[2], err = 0;

	(void)q, (void)l;
	if (!pids || pipe2(gate, O_CLOEXEC) < 0) {
		free(pids);
		return ember_fn_error(r, "ProbeError", "fork setup: %s", strerror(errno));
	}
	fflush(NULL); /* children must not repeat buffered output */
	for (; got < want; got++) {
		pid_t pid = fork();

		if (pid < 0) {
			err = errno;
			break;
		}
		if (pid == 0) {
			char c;

			close(gate[1]);
			while (read(gate[0], &c, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		pids[got] = pid;
	}
	close(gate[1]); /* EOF releases every child */
	close(gate[0]);
	for (long i = 0; i < got; i++)
		while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
	free(pids);
	ember_fn_printf(r, "{\"requested\":%ld,\"forked\":%ld,\"error\":", want, got);
	put_errno(r, err);
	return ember_fn_write(r, "}", 1);
}

/* Write ARG MB to a file in /tmp; report the bytes written and the error that stopped it. */
static int cmd_tmp(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		   size_t l)
{
	long want = arg_long(a, 1);
	char path[64], *block = malloc(MB);
	uint64_t written = 0;
	int fd, err = 0;

	(void)q, (void)l;
	snprintf(path, sizeof(path), "/tmp/probe-%d", (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !block) {
		err = fd < 0 ? errno : ENOMEM;
	} else {
		memset(block, 0xa5, MB);
		for (long i = 0; i < want && !err; i++) {
			size_t off = 0;

			while (off < MB) {
				ssize_t n = write(fd, block + off, MB - off);

				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					err = n < 0 ? errno : EIO;
					break;
				}
				off += (size_t)n;
				written += (uint64_t)n;
			}
		}
		/* a disk-backed /tmp may only say ENOSPC at writeback */
		if (!err && fsync(fd) < 0 && errno != EINVAL)
			err = errno;
	}
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	free(block);
	ember_fn_printf(r, "{\"requestedMb\":%ld,\"written\":%" PRIu64 ",\"error\":", want, written);
	put_errno(r, err);
	return ember_fn_write(r, "}", 1);
}

/* A TCP connection to 1.1.1.1:53 (1 s at most) and the network interfaces present. */
static int cmd_net(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		   size_t l)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err = 0;

	(void)q, (void)a, (void)l;
	inet_pton(AF_INET, "1.1.1.1", &sa.sin_addr);
	if (fd < 0) {
		err = errno;
	} else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
		if (err == EINPROGRESS) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			socklen_t sl = sizeof(err);

			if (poll(&p, 1, 1000) == 0)
				err = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
				err = errno;
		}
	}
	if (fd >= 0)
		close(fd);
	ember_fn_write(r, "{\"connect\":", 11);
	if (err)
		put_str(r, errname(err));
	else
		put_str(r, "ok");
	ember_fn_write(r, ",\"interfaces\":[", 15);
	struct if_nameindex *ifs = if_nameindex();
	for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
		if (i != ifs)
			ember_fn_write(r, ",", 1);
		put_str(r, i->if_name);
	}
	if (ifs)
		if_freenameindex(ifs);
	return ember_fn_write(r, "]}", 2);
}

static void put_hex(struct ember_fn_response *r, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ember_fn_printf(r, "%02x", b[i]);
}

static int cmd_rand(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		    size_t l)
{
	unsigned char b[16];

	(void)q, (void)a, (void)l;
	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		return ember_fn_error(r, "ProbeError", "getrandom: %s", strerror(errno));
	put_hex(r, b, sizeof(b));
	return 0;
}

static int cmd_prng(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		    size_t l)
{
	uint64_t v[2] = { prng_next(), prng_next() };

	(void)q, (void)a, (void)l;
	return ember_fn_printf(r, "%016" PRIx64 "%016" PRIx64, v[0], v[1]);
}

static int cmd_echo(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		    size_t l)
{
	(void)q;
	return ember_fn_write(r, a ? a : "", a ? l : 0);
}

static int cmd_log(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		   size_t l)
{
	(void)q, (void)l;
	/* stdio, not write(2): stdout is a pipe and fully buffered, so this only reaches the host
	 * before the answer because the SDK flushes */
	printf("%s\n", a ? a : "");
	fprintf(stderr, "%s\n", a ? a : "");
	return ember_fn_printf(r, "logged");
}

/* ARG bytes of output on stdout (log volume). */
static int cmd_stdout(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		      size_t l)
{
	long n = arg_long(a, 1024);

	(void)q, (void)l;
	for (long i = 0; i < n; i++)
		putchar(i % 64 == 63 ? '\n' : 'o');
	return ember_fn_printf(r, "wrote %ld bytes to stdout", n);
}

/* A response of ARG bytes ("x" repeated). */
static int cmd_big(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		   size_t l)
{
	long n = arg_long(a, 1024);
	char chunk[4096];

	(void)q, (void)l;
	memset(chunk, 'x', sizeof(chunk));
	for (long left = n; left > 0; left -= (long)sizeof(chunk))
		if (ember_fn_write(r, chunk, left < (long)sizeof(chunk) ? (size_t)left : sizeof(chunk)))
			return -1;
	return 0;
}

static int cmd_env(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		   size_t l)
{
	const char *v = a ? getenv(a) : NULL;

	(void)q, (void)l;
	if (!v)
		return ember_fn_error(r, "EnvNotSet", "%s is not set", a ? a : "(no name)");
	return ember_fn_write(r, v, strlen(v));
}

/* pid, ppid, and the inode of each namespace the process is in. */
static int cmd_pid(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		   size_t l)
{
	static const char *const ns[] = { "cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts" };

	(void)q, (void)a, (void)l;
	ember_fn_printf(r, "{\"pid\":%d,\"ppid\":%d,\"ns\":{", (int)getpid(), (int)getppid());
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		char path[64], link[64];
		ssize_t n;
		const char *open_br;

		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns[i]);
		n = readlink(path, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = '\0';
		open_br = strchr(link, '[');
		ember_fn_printf(r, "%s\"%s\":%s", i ? "," : "", ns[i], open_br ? "" : "null");
		if (open_br)
			ember_fn_printf(r, "%llu", strtoull(open_br + 1, NULL, 10));
	}
	return ember_fn_write(r, "}}", 2);
}

/* The CPUs the process may run on, and its cgroups. */
static int cmd_cpuset(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		      size_t l)
{
	char status[8192], cg[4096], allowed[256];
	cpu_set_t set;

	(void)q, (void)a, (void)l;
	read_file("/proc/self/status", status, sizeof(status));
	read_file("/proc/self/cgroup", cg, sizeof(cg));
	status_field(status, "Cpus_allowed_list", allowed, sizeof(allowed));
	ember_fn_printf(r, "{\"nproc\":%d,\"online\":%ld,\"allowed\":",
			sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : -1,
			sysconf(_SC_NPROCESSORS_ONLN));
	put_str(r, allowed);
	ember_fn_write(r, ",\"cgroup\":", 10);
	put_str(r, cg);
	return ember_fn_write(r, "}", 1);
}

/* uid/gid, capabilities, no_new_privs, seccomp mode, as the kernel reports them. */
static int cmd_id(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		  size_t l)
{
	static const char *const keys[] = { "Uid", "Gid", "CapEff", "CapBnd", "NoNewPrivs", "Seccomp" };
	char status[8192], v[256];

	(void)q, (void)a, (void)l;
	read_file("/proc/self/status", status, sizeof(status));
	ember_fn_write(r, "{", 1);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char key[32];

		snprintf(key, sizeof(key), "\n%s:", keys[i]);
		status_field(status, key, v, sizeof(v));
		ember_fn_printf(r, "%s\"%s\":", i ? "," : "", keys[i]);
		put_str(r, v);
	}
	return ember_fn_write(r, "}", 1);
}

static int cmd_limits(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		      size_t l)
{
	static const struct { const char *name; int res; } lim[] = {
		{ "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC }, { "as", RLIMIT_AS },
		{ "fsize", RLIMIT_FSIZE }, { "core", RLIMIT_CORE }, { "stack", RLIMIT_STACK },
	};

	(void)q, (void)a, (void)l;
	ember_fn_write(r, "{", 1);
	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		struct rlimit rl;

		getrlimit(lim[i].res, &rl);
		ember_fn_printf(r, "%s\"%s\":[%lld,%lld]", i ? "," : "", lim[i].name,
				rl.rlim_cur == RLIM_INFINITY ? -1LL : (long long)rl.rlim_cur,
				rl.rlim_max == RLIM_INFINITY ? -1LL : (long long)rl.rlim_max);
	}
	return ember_fn_write(r, "}", 1);
}

/* Resident memory now and at its peak (kB, from /proc/self/status). */
static int cmd_mem(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		   size_t l)
{
	char status[8192], rss[64], hwm[64];

	(void)q, (void)a, (void)l;
	read_file("/proc/self/status", status, sizeof(status));
	status_field(status, "VmRSS", rss, sizeof(rss));
	status_field(status, "VmHWM", hwm, sizeof(hwm));
	return ember_fn_printf(r, "{\"rssKb\":%ld,\"hwmKb\":%ld}", atol(rss), atol(hwm));
}

/* What the SDK handed the handler: the invocation's metadata. */
static int cmd_ctx(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		   size_t l)
{
	(void)a, (void)l;
	ember_fn_printf(r, "{\"id\":%" PRIu64 ",\"requestId\":", q->id);
	put_str(r, q->request_id);
	ember_fn_write(r, ",\"function\":", 12);
	put_str(r, q->function);
	return ember_fn_printf(r, ",\"version\":%u,\"memoryMb\":%u,\"deadlineMs\":%" PRId64
			       ",\"remainingMs\":%" PRId64 ",\"bodyLen\":%zu}",
			       q->version, q->memory_mb, q->deadline_ms, ember_fn_remaining_ms(q),
			       q->len);
}

static int cmd_help(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		    size_t l);

static const struct cmd cmds[] = {
	{ "crash", "die of SIGSEGV (a real fault)", cmd_crash },
	{ "signal", "N: raise signal N (default SIGABRT; as a pid namespace's init, a signal it has "
		    "no handler for is ignored)", cmd_signal },
	{ "exit", "N: exit(N) in the handler", cmd_exit },
	{ "error", "[MSG]: fail with ERROR ProbeError", cmd_error },
	{ "return", "N: the handler returns N (ERROR HandlerError unless N is 0)", cmd_return },
	{ "sleep", "MS: sleep, then answer", cmd_sleep },
	{ "oom", "[MB]: allocate and touch 1 MB blocks (until killed, or MB)", cmd_oom },
	{ "fork", "N: try to start N processes; {requested,forked,error}", cmd_fork },
	{ "tmp", "MB: write MB to /tmp; {requestedMb,written,error}", cmd_tmp },
	{ "net", "connect to 1.1.1.1:53, list interfaces; {connect,interfaces}", cmd_net },
	{ "rand", "16 bytes from getrandom, hex", cmd_rand },
	{ "prng", "16 bytes of a user-space generator seeded at init, hex", cmd_prng },
	{ "echo", "TEXT: answer TEXT (binary-safe)", cmd_echo },
	{ "log", "TEXT: print TEXT on stdout and stderr, answer \"logged\"", cmd_log },
	{ "stdout", "N: print N bytes on stdout", cmd_stdout },
	{ "big", "N: answer N bytes", cmd_big },
	{ "env", "NAME: answer the variable's value (ERROR EnvNotSet if unset)", cmd_env },
	{ "pid", "pid, ppid, namespace inodes", cmd_pid },
	{ "cpuset", "CPUs allowed, cgroups", cmd_cpuset },
	{ "id", "uid, gid, capabilities, no_new_privs, seccomp", cmd_id },
	{ "limits", "rlimits [soft,hard], -1 = unlimited", cmd_limits },
	{ "mem", "resident memory now and at peak", cmd_mem },
	{ "ctx", "the invocation metadata the SDK passed", cmd_ctx },
	{ "help", "this list", cmd_help },
};

static int cmd_help(const struct ember_fn_request *q, struct ember_fn_response *r, const char *a,
		    size_t l)
{
	(void)q, (void)a, (void)l;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		ember_fn_printf(r, "%-8s %s\n", cmds[i].name, cmds[i].usage);
	return 0;
}

static int handler(const struct ember_fn_request *req, struct ember_fn_response *resp)
{
	const struct cmd *c = NULL;
	size_t n = 0, len = req->len, arg_len = 0;
	const char *arg = NULL;
	char argbuf[4096];

	while (n < len && req->body[n] != ' ' && req->body[n] != '\n')
		n++;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]) && !c; i++)
		if (strlen(cmds[i].name) == n && !strncmp(req->body, cmds[i].name, n))
			c = &cmds[i];
	if (!c)
		return ember_fn_error(resp, "UnknownCommand", "unknown command \"%.*s\" (try help)",
				      (int)n, req->body);
	/* `echo pid | ember run ...` sends a trailing newline: not part of a command's argument
	 * (except echo's, which answers its argument byte for byte) */
	if (c->run != cmd_echo && len > n && req->body[len - 1] == '\n')
		len--;
	if (n < len) {
		arg = req->body + n + 1;
		arg_len = len - n - 1;
	}
	/* the others take text: a NUL-terminated copy */
	if (arg && c->run != cmd_echo) {
		snprintf(argbuf, sizeof(argbuf), "%.*s", (int)arg_len, arg);
		arg = argbuf;
		arg_len = strlen(argbuf);
	}
	return c->run(req, resp, arg, arg_len);
}

int main(int argc, char **argv)
{
	static const struct ember_fn fn = { .init = init, .handler = handler, .after_fork = seed_prng };

	return ember_fn_main(argc, argv, &fn);
}
