/* tools/hostbench/bench_host.c — the function host (`ember serve`) end to end, next to what a
 * naive control plane does instead: `crun run` / `runc run` of the same bundle per invocation.
 *
 * What is timed: from the client's request to the full response. For ember, a POST .../invoke
 * over the host's unix socket on one kept-alive connection (runtime/host/client.h); for the peers,
 * fork+exec of `<peer> run --bundle B ID` with the payload on stdin until its stdout reached EOF
 * and it exited. Every answer is checked: ember's Ember-Start header must say what the round
 * asked for, and the peers must answer exactly what ember answered (same bundle, same payload).
 * A sample that fails a check is counted and reported, never folded into the figures.
 *
 * Per function (hello-c, hello-python, init-heavy-c, init-heavy-python), every round runs, in an
 * order that rotates so a noisy neighbour on this shared machine hits everyone alike:
 *  - ember cold: PUT the same spec again with "template": "off" (a new version; the answer comes
 *    once a pre-made sandbox is parked; untimed, reported apart), then the first invocation,
 *    which must be `cold`; the host is then left to refill its pool (untimed) and a batch of
 *    invocations of the now idle instance follows, each `warm`. "off", because the default
 *    ("auto") would make a template in the background after the cold start: a second init of
 *    the function landing in the samples that follow;
 *  - ember zygote: PUT the spec with "template": "provisioned" (untimed, reported apart: the
 *    answer comes once the template has run the function's init), wait until a fork slot is
 *    parked and nothing is starting, then time one invocation, which must be `zygote`: a new
 *    instance forked from the template (clone3 in the SDK) instead of an exec and an init; the
 *    host's refill of its fork slot is awaited (untimed) before anything else runs;
 *  - one `crun run` and one `runc run`.
 * Cold starts also record the host's Ember-Init-Ms (sandbox go to the function's READY: exec and
 * init), zygote starts theirs (FORK sent to the forked child's READY), and the template's own
 * init time as GET shows it. Then warm throughput: hello-c (template off), 2 and 4 client
 * threads, each on its own connection (opened before the first invocation), after a warm-up that
 * gives every client an idle instance.
 *
 * For init-heavy-c and init-heavy-python, restore rounds follow (snapshots, issue 8): the function
 * is deployed once per restore mode (eager, mmap, lazy) with "snapshot": "provisioned" (the
 * deploy dumps the template to an image); each round POSTs /restore (the template is replaced by
 * one restored from the image) and times one invocation, which must be `restore`.
 *
 * Goals checked at the end (medians): hello-c warm <= 300 us; hello-c cold >= 20x faster than
 * `crun run`; hello-python zygote <= 3 ms end to end; init-heavy-c and init-heavy-python zygote
 * start (Ember-Init-Ms) >= 100x faster than their cold start's (the end-to-end ratio is printed
 * next to it); init-heavy restore start (Ember-Init-Ms) >= 20x faster than cold.
 *
 * Every function gets 1,769 MB: one vCPU by the CPU-follows-memory policy (cgroups/policy.c), and
 * enough for init-heavy's 256 MB table. The peers' bundle is the example's config.json with the
 * same limits added (memory 1,769 MB, CPU quota 100 ms per 100 ms, 1,024 pids) and the rootfs made
 * absolute; nothing else changes. crun 1.8.1 runs in a private mount namespace where a tmpfs
 * hides /sys/fs/cgroup/unified (it refuses hybrid hosts whose cgroup2 has a controller: see
 * tools/bench/peers.c); runc runs as is.
 *
 * Everything made here is removed at the end: the host is stopped with SIGTERM (its exit status
 * checked: 0), its cgroup parent ember-bench-host-<pid> (the freezer anchor thawed first), the
 * temp dir /tmp/ember-bench-host-*, the peers' state roots /run/ember-bench-host-<pid>-* and any
 * cgroup a peer left named after one of this run's container ids. A host that stops answering
 * (20 s without a response) has its threads' wait channels printed and is killed by a watchdog,
 * so the bench still ends, cleans up and fails.
 *
 * Environment: EMBER_BENCH_HOST_ROUNDS (rounds for hello-*; default 30, or EMBER_BENCH_RUNS),
 * EMBER_BENCH_HOST_HEAVY_ROUNDS (init-heavy-*; default 5), EMBER_BENCH_HOST_WARM (warm
 * invocations per round; default 50), EMBER_BENCH_HOST_TPUT_MS (each throughput run; default
 * 3000, 0 skips it), EMBER_BENCH_HOST_FUNCTIONS (comma-separated subset of the four). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroups/cgroups.h"
#include "common/err.h"
#include "common/fs.h"
#include "runtime/host/client.h"
#include "tools/bench/stats.h"
#include "tools/bench/peers.h"

#define MEMORY_MB           1769u      /* one vCPU by the policy's reference point */
#define CPU_PERIOD_US       100000     /* what the policy gives 1,769 MB: a full vCPU */
#define PIDS_MAX            1024       /* as the host's instances (runtime/host/host.c) */
#define CAPACITY_MB         16384u     /* room for 4 throughput instances and a pool at 1,769 MB */
#define CLIENT_TIMEOUT_MS   60000u     /* each read; the watchdog below acts sooner */
#define HANG_LIMIT_MS       20000      /* no answer for this long: the host is stuck (the longest
					* request here, a cold init-heavy-python, takes ~2-3 s) */
#define STOP_WAIT_MS        15000      /* SIGTERM to exit; in-flight requests take <= 3 s */
#define OUT_MAX             4096
#define TPUT_WARMUP_MS      500

enum peer { P_CRUN, P_RUNC, N_PEER };
/* how a template is restored from its snapshot (the deploy's "restore") */
enum restore_mode { R_EAGER, R_MMAP, R_LAZY, N_RESTORE };
static const char *const restore_names[N_RESTORE] = { "eager", "mmap", "lazy" };


struct fn_bench {
	const char *name;          /* the example, and the function's name */
	const char *payload;
	const char *expect_prefix; /* what ember's first answer must start with */
	bool heavy;
	char bundle[PATH_MAX];     /* build/examples/NAME */
	char peer_bundle[PATH_MAX];
	char payload_file[PATH_MAX];
	char expect[OUT_MAX];      /* ember's first answer: every later one, and the peers', match */
	size_t expect_len;
	int rounds;
	struct bench_samples cold, warm, init_ms, deploy_ms, peer[N_PEER];
	/* zygote rounds: end to end, Ember-Init-Ms (the fork), the provisioned deploy, and the
	 * template's init as GET reports it */
	struct bench_samples zyg, zyg_ms, zyg_deploy_ms, tmpl_init_ms;
	/* restore rounds (init-heavy only), per restore mode: end to end (POST restore + the
	 * invocation), Ember-Init-Ms (template restore + fork), the template restore (restoreMs) */
	struct bench_samples rst[N_RESTORE], rst_ms[N_RESTORE], rst_tmpl_ms[N_RESTORE];
	unsigned cold_fail, warm_fail, zyg_fail, peer_fail[N_PEER], rst_fail[N_RESTORE];
	char cold_msg[400], warm_msg[400], zyg_msg[400], peer_msg[N_PEER][400];
	char rst_msg[N_RESTORE][400];
	bool ran;
};

struct hb {
	char build[PATH_MAX];      /* build/, found from /proc/self/exe */
	char ember[PATH_MAX + 8];
	char tmp[PATH_MAX];        /* /tmp/ember-bench-host-XXXXXX */
	char sock[PATH_MAX + 16];
	char cg_parent[64];
	pid_t host;
	struct em_client *c;
	struct peer_rt peers[N_PEER];
	int devnull;
	int warm_n;
	char **ids;                /* every peer container id used, for the cgroup sweep */
	size_t n_ids, cap_ids;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* The watchdog's view of the requests: how many are waiting on the host, and when one last
 * finished. host_hung: it gave up on the host (which it killed), so nothing more is asked. */
static atomic_int in_flight;
static atomic_llong last_progress_us;
static atomic_bool host_hung, watchdog_done;

static bool stop_now(void)
{
	return interrupted || atomic_load(&host_hung);
}

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "bench-host: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(1);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return def;
	n = strtol(v, &end, 10);
	if (*end || n < 0 || n > 1000000)
		die("%s: want a number from 0 to 1000000", name);
	return (int)n;
}

static void remember_id(struct hb *b, const char *id)
{
	if (b->n_ids == b->cap_ids) {
		b->cap_ids = b->cap_ids ? b->cap_ids * 2 : 256;
		b->ids = realloc(b->ids, b->cap_ids * sizeof(*b->ids));
		if (!b->ids)
			die("%s", "out of memory");
	}
	b->ids[b->n_ids] = strdup(id);
	if (!b->ids[b->n_ids])
		die("%s", "out of memory");
	b->n_ids++;
}

/* ------------------------------------------------------------------ the host */

/* Every request to the host goes through here, so the watchdog sees it. */
static int call(struct em_client *c, const char *method, const char *path, const char *ctype,
		const void *body, size_t len, struct em_client_resp *r, struct em_err *err)
{
	int ret;

	if (atomic_fetch_add(&in_flight, 1) == 0)
		atomic_store(&last_progress_us, (long long)bench_now_us());
	ret = em_client_request(c, method, path, ctype, body, len, r, err);
	atomic_store(&last_progress_us, (long long)bench_now_us());
	atomic_fetch_sub(&in_flight, 1);
	return ret;
}

/* What the host's threads and its children (sandboxes not yet handed over) wait on: evidence
 * for whoever debugs a host that stopped answering. */
static void dump_host_state(pid_t host)
{
	char dir[64], p[160], comm[64], wchan[64], kids[1024];
	struct em_err err = { 0 };
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)host);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		comm[0] = wchan[0] = kids[0] = 0;
		snprintf(p, sizeof(p), "%s/%s/comm", dir, de->d_name);
		em_read_small_at(AT_FDCWD, p, comm, sizeof(comm), &err);
		snprintf(p, sizeof(p), "%s/%s/wchan", dir, de->d_name);
		em_read_small_at(AT_FDCWD, p, wchan, sizeof(wchan), &err);
		snprintf(p, sizeof(p), "%s/%s/children", dir, de->d_name);
		em_read_small_at(AT_FDCWD, p, kids, sizeof(kids), &err);
		comm[strcspn(comm, "\n")] = 0;
		printf("#   host thread %s %s: waits in %s%s%s\n", de->d_name, comm, wchan,
		       kids[0] ? "; children: " : "", kids);
		for (char *save, *k = strtok_r(kids, " \n", &save); k; k = strtok_r(NULL, " \n", &save)) {
			snprintf(p, sizeof(p), "/proc/%s/wchan", k);
			wchan[0] = 0;
			em_read_small_at(AT_FDCWD, p, wchan, sizeof(wchan), &err);
			printf("#     child %s: waits in %s\n", k, wchan);
		}
	}
	if (d)
		closedir(d);
}

/* A host that stops answering must not hang the bench: after HANG_LIMIT_MS without an answer
 * (or 3 s after a Ctrl-C) the host's state is printed and the host killed, which ends every
 * waiting request; the bench then cleans up and fails. */
static void *watchdog_main(void *arg)
{
	struct hb *b = arg;
	double since_interrupt = 0;

	while (!atomic_load(&watchdog_done)) {
		double now;

		sleep_ms(200);
		now = bench_now_us();
		if (interrupted && !since_interrupt)
			since_interrupt = now;
		if (!atomic_load(&in_flight))
			continue;
		bool hung = now - (double)atomic_load(&last_progress_us) > HANG_LIMIT_MS * 1000.0;
		if (!hung && !(since_interrupt && now - since_interrupt > 3e6))
			continue;
		if (hung) {
			printf("# the host stopped answering: %d request(s) without an answer for %d s; "
			       "its state, then it is killed:\n", atomic_load(&in_flight),
			       HANG_LIMIT_MS / 1000);
			dump_host_state(b->host);
		}
		atomic_store(&host_hung, true);
		if (b->host > 0)   /* never kill(-1, ...) */
			kill(b->host, SIGKILL);
		break;
	}
	return NULL;
}

static void host_log_tail(struct hb *b)
{
	char path[PATH_MAX + 16], buf[2048];
	int fd;
	ssize_t n;
	off_t end;

	snprintf(path, sizeof(path), "%s/serve.log", b->tmp);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	n = pread(fd, buf, sizeof(buf) - 1, end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0);
	close(fd);
	if (n > 0) {
		buf[n] = 0;
		fprintf(stderr, "bench-host: the end of ember serve's log:\n%s", buf);
	}
}

/* ember serve, in its own process group (a Ctrl-C reaches this process, which stops the host
 * in order) and with a parent-death SIGTERM (this process killed: the host stops by itself). */
static void host_start(struct hb *b)
{
	char run_dir[PATH_MAX + 8], data_dir[PATH_MAX + 8], cap[32], log[PATH_MAX + 16];
	struct em_err err = { 0 };

	snprintf(run_dir, sizeof(run_dir), "%s/run", b->tmp);
	snprintf(data_dir, sizeof(data_dir), "%s/data", b->tmp);
	snprintf(log, sizeof(log), "%s/serve.log", b->tmp);
	snprintf(b->sock, sizeof(b->sock), "%s/ember.sock", b->tmp);
	snprintf(cap, sizeof(cap), "%u", CAPACITY_MB);
	char *argv[] = { b->ember, "serve", "--socket", b->sock, "--run-dir", run_dir,
			 "--data-dir", data_dir, "--cgroup-parent", b->cg_parent,
			 "--capacity-mb", cap, NULL };
	pid_t parent = getpid();

	b->host = fork();
	if (b->host < 0)
		die("fork: %s", strerror(errno));
	if (b->host == 0) {
		int lf = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(126);
		if (lf < 0 || dup2(b->devnull, 0) < 0 || dup2(lf, 1) < 0 || dup2(lf, 2) < 0)
			_exit(126);
		execv(b->ember, argv);
		_exit(127);
	}
	for (int i = 0; i < 300 && !interrupted; i++) {
		int st;

		if (waitpid(b->host, &st, WNOHANG) == b->host) {
			b->host = -1;
			host_log_tail(b);
			fprintf(stderr, "bench-host: ember serve exited during start-up (status %#x)\n", st);
			return;
		}
		if (em_client_open(b->sock, &b->c, &err) == 0) {
			em_client_set_timeout(b->c, CLIENT_TIMEOUT_MS);
			return;
		}
		sleep_ms(50);
	}
	fprintf(stderr, "bench-host: ember serve did not listen on %s within 15 s: %s\n", b->sock,
		err.msg);
}

/* SIGTERM and wait; the host must exit 0. Returns false if it did not (or the watchdog had
 * killed it). */
static bool host_stop(struct hb *b)
{
	int st = 0;
	bool ok = false;

	if (b->c) {
		em_client_close(b->c);
		b->c = NULL;
	}
	if (b->host <= 0)
		return false;
	kill(b->host, SIGTERM);
	for (int i = 0; i < STOP_WAIT_MS / 50; i++) {
		pid_t r = waitpid(b->host, &st, WNOHANG);

		if (r == b->host) {
			ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
			if (!ok && !atomic_load(&host_hung)) {
				host_log_tail(b);
				fprintf(stderr, "bench-host: ember serve ended with status %#x after "
					"SIGTERM\n", st);
			}
			b->host = -1;
			return ok;
		}
		if (r < 0 && errno != EINTR)
			break;
		sleep_ms(50);
	}
	printf("# ember serve did not exit within %d s of SIGTERM; its state, then it is killed:\n",
	       STOP_WAIT_MS / 1000);
	dump_host_state(b->host);
	kill(b->host, SIGKILL);
	waitpid(b->host, &st, 0);
	b->host = -1;
	return false;
}

/* One request on the kept-alive connection; -1 on a transport failure (message in msg). */
static int request(struct hb *b, const char *method, const char *path, const void *body,
		   size_t len, struct em_client_resp *r, char *msg, size_t msglen)
{
	struct em_err err = { 0 };

	if (!b->c) {
		snprintf(msg, msglen, "no connection to the host");
		return -1;
	}
	if (call(b->c, method, path, body ? "application/json" : NULL, body, len, r, &err) < 0) {
		snprintf(msg, msglen, "%s %s: %s", method, path, err.msg);
		return -1;
	}
	return 0;
}

/* PUT the function's spec; tmpl is its "template" setting ("off" or "provisioned"); restore, if
 * not NULL, adds "snapshot": "provisioned" with that "restore" mode. */
static int deploy_x(struct hb *b, struct fn_bench *f, const char *name, const char *tmpl,
		    const char *restore, char *msg, size_t msglen)
{
	json_t *j = json_pack("{s:s,s:i,s:s}", "bundle", f->bundle, "memoryMb",
			      (json_int_t)MEMORY_MB, "template", tmpl);

	if (restore) {
		json_object_set_new(j, "snapshot", json_string("provisioned"));
		json_object_set_new(j, "restore", json_string(restore));
	}
	char *body = json_dumps(j, JSON_COMPACT), path[128];
	struct em_client_resp r;
	int ret;

	json_decref(j);
	if (!body)
		die("%s", "out of memory");
	snprintf(path, sizeof(path), "/v1/functions/%s", name);
	ret = request(b, "PUT", path, body, strlen(body), &r, msg, msglen);
	free(body);
	if (ret == 0 && r.status != 200) {
		snprintf(msg, msglen, "PUT %s: HTTP %d: %.300s", path, r.status, r.body);
		ret = -1;
	}
	return ret;
}

static int deploy(struct hb *b, struct fn_bench *f, const char *name, const char *tmpl, char *msg,
		  size_t msglen)
{
	return deploy_x(b, f, name, tmpl, NULL, msg, msglen);
}

static void remove_fn(struct hb *b, const char *name)
{
	char path[128], msg[400];
	struct em_client_resp r;

	snprintf(path, sizeof(path), "/v1/functions/%s", name);
	if (request(b, "DELETE", path, NULL, 0, &r, msg, sizeof(msg)) < 0)
		fprintf(stderr, "bench-host: %s\n", msg);
	else if (r.status != 204)
		fprintf(stderr, "bench-host: DELETE %s: HTTP %d: %.300s\n", path, r.status, r.body);
}

/* Whether one of the version's parked instances is a fork slot of its template: listed as
 * z<N>-<name>/i<M>, pid -1 until forked (API.md). */
static bool fork_slot_parked(json_t *desc)
{
	size_t i;
	json_t *in;

	json_array_foreach(json_object_get(desc, "instanceList"), i, in) {
		const char *id = json_string_value(json_object_get(in, "id"));
		const char *st = json_string_value(json_object_get(in, "state"));

		if (id && st && !strcmp(st, "parked") && id[0] == 'z' && strchr(id, '/'))
			return true;
	}
	return false;
}

/* After a deploy or a cold start the host parks a new sandbox (or, for a version with a
 * template, prepares a fork slot) in the background: wait for it, and nothing else starting, so
 * that work does not land in the next timed sample. fork_slot: the parked one must be a fork
 * slot and the template ready; its initMs goes to *tmpl_init_ms if asked. Returns false if that
 * did not happen within ~10 s (the reason in msg). */
static bool wait_pool_full(struct hb *b, const char *name, bool fork_slot, double *tmpl_init_ms,
			   char *msg, size_t msglen)
{
	char path[128];
	struct em_client_resp r;

	snprintf(path, sizeof(path), "/v1/functions/%s", name);
	snprintf(msg, msglen, "no %s parked within 10 s", fork_slot ? "fork slot" : "sandbox");
	for (double end = bench_now_us() + 10e6; bench_now_us() < end && !stop_now();) {
		if (request(b, "GET", path, NULL, 0, &r, msg, msglen) < 0)
			return false;
		if (r.status != 200) {
			snprintf(msg, msglen, "GET %s: HTTP %d: %.300s", path, r.status, r.body);
			return false;
		}
		json_t *j = json_loadb(r.body, r.len, 0, NULL);
		json_t *in = json_object_get(j, "instances"), *t = json_object_get(j, "template");
		json_int_t parked = json_integer_value(json_object_get(in, "parked"));
		json_int_t starting = json_integer_value(json_object_get(in, "starting"));
		const char *tstate = json_string_value(json_object_get(t, "state"));
		bool done = parked >= 1 && starting == 0;

		if (done && fork_slot) {
			done = tstate && !strcmp(tstate, "ready") && fork_slot_parked(j);
			if (done && tmpl_init_ms)
				*tmpl_init_ms = json_number_value(json_object_get(t, "initMs"));
		}
		json_decref(j);
		if (done) {
			msg[0] = 0;
			return true;
		}
		sleep_ms(2);
	}
	return false;
}

/* A failed invocation's evidence: the end of what the function wrote (its init's traceback,
 * say), from the host's log of that request, added to msg. */
static void append_log_tail(struct em_client *c, const char *name, const char *rid, char *msg,
			    size_t msglen)
{
	char path[256];
	struct em_client_resp r;
	struct em_err err = { 0 };
	size_t used = strlen(msg);

	snprintf(path, sizeof(path), "/v1/functions/%s/logs?requestId=%s", name, rid);
	if (call(c, "GET", path, NULL, NULL, 0, &r, &err) < 0 || r.status != 200)
		return;
	json_t *j = json_loadb(r.body, r.len, 0, NULL);
	const char *log = json_string_value(json_object_get(json_array_get(j, 0), "log"));
	size_t len = log ? strlen(log) : 0;

	while (len && log[len - 1] == '\n')
		len--;
	if (len && used + 16 < msglen) {
		size_t room = msglen - used - 16, from = len > room ? len - room : 0;

		snprintf(msg + used, msglen - used, "; its log ends: %.*s", (int)(len - from),
			 log + from);
		for (char *p = msg + used; *p; p++)
			if (*p == '\n')
				*p = '|';
	}
	json_decref(j);
}

/* One invocation, timed end to end. Returns the time in µs, or <0 if it failed a check (the
 * reason in msg). want_start: "cold", "warm", or NULL for either. */
static double invoke(struct fn_bench *f, struct em_client *c, const char *name,
		     const char *want_start, double *init_ms, char *msg, size_t msglen)
{
	char path[128];
	struct em_client_resp r;
	struct em_err err = { 0 };
	const char *start, *init;
	double t0, t;

	snprintf(path, sizeof(path), "/v1/functions/%s/invoke", name);
	t0 = bench_now_us();
	if (call(c, "POST", path, "application/octet-stream", f->payload, strlen(f->payload), &r,
		 &err) < 0) {
		snprintf(msg, msglen, "POST %s: %s", path, err.msg);
		return -1;
	}
	t = bench_now_us() - t0;
	start = em_client_header(c, "Ember-Start");
	if (r.status != 200) {
		const char *id = em_client_header(c, "Ember-Request-Id");
		char rid[64];

		snprintf(rid, sizeof(rid), "%s", id ?: "");
		snprintf(msg, msglen, "HTTP %d (%s, %s): %.200s", r.status,
			 em_client_header(c, "Ember-Function-Error") ?: "API error", start ?: "-",
			 r.body);
		if (rid[0])
			append_log_tail(c, name, rid, msg, msglen);
		return -1;
	}
	if (want_start && (!start || strcmp(start, want_start))) {
		snprintf(msg, msglen, "Ember-Start: %s, expected %s", start ?: "(none)", want_start);
		return -1;
	}
	if (!f->expect_len) {
		if (strncmp(r.body, f->expect_prefix, strlen(f->expect_prefix)) ||
		    r.len >= sizeof(f->expect)) {
			snprintf(msg, msglen, "unexpected answer: %.300s", r.body);
			return -1;
		}
		memcpy(f->expect, r.body, r.len);
		f->expect_len = r.len;
	} else if (r.len != f->expect_len || memcmp(r.body, f->expect, r.len)) {
		snprintf(msg, msglen, "answer %.200s differs from the first one, %.200s", r.body,
			 f->expect);
		return -1;
	}
	init = em_client_header(c, "Ember-Init-Ms");
	if (init_ms)
		*init_ms = init ? strtod(init, NULL) : -1;
	return t;
}

/* One timed peer run; a failure is counted, and the first one explained (its stderr). */
static void peer_round(struct hb *b, struct fn_bench *f, enum peer p, int round)
{
	struct peer_rt *rt = &b->peers[p];
	char id[96], errp[PATH_MAX + 32], out[OUT_MAX];
	size_t outlen = 0;
	double us = 0;
	int errfd, st;

	snprintf(id, sizeof(id), "ebh%d-%s-%s-%d", (int)getpid(), f->name, rt->name, round);
	remember_id(b, id);
	snprintf(errp, sizeof(errp), "%s/%s.err", b->tmp, rt->name);
	errfd = open(errp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	st = peer_run(rt, f->peer_bundle, f->payload_file, id, errfd >= 0 ? errfd : b->devnull, out,
		      sizeof(out), &outlen, &us);
	if (st == 0 && f->expect_len && outlen == f->expect_len && !memcmp(out, f->expect, outlen)) {
		bench_add(&f->peer[p], us);
	} else {
		if (!f->peer_fail[p]++) {
			char d[64], e[256] = "";
			ssize_t n = errfd >= 0 ? pread(errfd, e, sizeof(e) - 1, 0) : 0;
			e[n > 0 ? n : 0] = 0;
			e[strcspn(e, "\n")] = 0;
			peer_describe_status(st, d, sizeof(d));
			if (st == 0)
				snprintf(f->peer_msg[p], sizeof(f->peer_msg[p]), "round %d: answered "
					 "\"%.120s\", ember answered \"%.120s\"", round, out, f->expect);
			else
				snprintf(f->peer_msg[p], sizeof(f->peer_msg[p]), "round %d: %s: %s", round,
					 d, e);
		}
		peer_delete(rt, id);   /* a failed run may leave its container */
	}
	if (errfd >= 0)
		close(errfd);
}

/* ------------------------------------------------------------------ ember's rounds */

static void ember_round(struct hb *b, struct fn_bench *f, int round)
{
	char msg[400];
	double t0, t, init = -1;

	t0 = bench_now_us();
	if (deploy(b, f, f->name, "off", msg, sizeof(msg)) < 0) {
		if (!f->cold_fail++)
			snprintf(f->cold_msg, sizeof(f->cold_msg), "round %d: redeploy: %s", round, msg);
		return;
	}
	bench_add(&f->deploy_ms, (bench_now_us() - t0) / 1000);
	t = invoke(f, b->c, f->name, "cold", &init, msg, sizeof(msg));
	if (t < 0) {
		if (!f->cold_fail++)
			snprintf(f->cold_msg, sizeof(f->cold_msg), "round %d: %s", round, msg);
		return;
	}
	bench_add(&f->cold, t);
	if (init >= 0)
		bench_add(&f->init_ms, init);
	wait_pool_full(b, f->name, false, NULL, msg, sizeof(msg));
	for (int i = 0; i < b->warm_n && !stop_now(); i++) {
		t = invoke(f, b->c, f->name, "warm", NULL, msg, sizeof(msg));
		if (t < 0) {
			if (!f->warm_fail++)
				snprintf(f->warm_msg, sizeof(f->warm_msg), "round %d: %s", round, msg);
			continue;
		}
		bench_add(&f->warm, t);
	}
}

/* A zygote start: deploy with a provisioned template (the answer comes after the template's
 * init), wait for its fork slot, time one invocation (`zygote`), then let the host prepare the
 * next slot. record: false for the warm-up, whose failure is only explained. Returns false if
 * something failed (the first failure's reason in f->zyg_msg). */
static bool zygote_round(struct hb *b, struct fn_bench *f, int round, bool record)
{
	char msg[400], what[48];
	double t0, t, init = -1, tmpl_init = -1;

	if (round < 0)
		snprintf(what, sizeof(what), "warm-up");
	else
		snprintf(what, sizeof(what), "round %d", round);
	t0 = bench_now_us();
	if (deploy(b, f, f->name, "provisioned", msg, sizeof(msg)) < 0)
		goto fail;
	if (record)
		bench_add(&f->zyg_deploy_ms, (bench_now_us() - t0) / 1000);
	if (!wait_pool_full(b, f->name, true, &tmpl_init, msg, sizeof(msg)))
		goto fail;
	if (record && tmpl_init >= 0)
		bench_add(&f->tmpl_init_ms, tmpl_init);
	t = invoke(f, b->c, f->name, "zygote", &init, msg, sizeof(msg));
	if (t < 0)
		goto fail;
	if (record) {
		bench_add(&f->zyg, t);
		if (init >= 0)
			bench_add(&f->zyg_ms, init);
	}
	/* the host prepares another fork slot now: not in the next sample */
	wait_pool_full(b, f->name, true, NULL, msg, sizeof(msg));
	return true;
fail:
	if (!record || f->zyg_fail++ == 0)   /* the warm-up's message until a round fails */
		snprintf(f->zyg_msg, sizeof(f->zyg_msg), "%s: %s", what, msg);
	return false;
}

/* A restore start: a new version deployed with a provisioned snapshot (untimed: the init and the
 * dump), then POST /restore (the host retires that template and restores a new one from the
 * image, in the page cache now: restoreMs), wait for its fork slot, then one invocation, which must
 * be `restore` (Ember-Init-Ms: the template's restore plus the fork). End to end is the POST plus
 * the invocation: no template to an answer. The fork slot's wait is not timed (a pool refill). */
static bool restore_round(struct hb *b, struct fn_bench *f, enum restore_mode m, int round,
			  bool record)
{
	char msg[400], path[160];
	struct em_client_resp r;
	double t0, t_post, t, init = -1, tmpl_ms = -1;

	/* untimed: a new version (no idle instance to answer instead), its template made by the
	 * init and dumped to the version's image by the deploy */
	snprintf(path, sizeof(path), "%s-%s", f->name, restore_names[m]);
	if (deploy_x(b, f, path, "provisioned", restore_names[m], msg, sizeof(msg)) < 0)
		goto fail;
	snprintf(path, sizeof(path), "/v1/functions/%s-%s/restore", f->name, restore_names[m]);
	t0 = bench_now_us();
	if (request(b, "POST", path, NULL, 0, &r, msg, sizeof(msg)) < 0)
		goto fail;
	t_post = bench_now_us() - t0;
	if (r.status != 200) {
		snprintf(msg, sizeof(msg), "POST %s: HTTP %d: %.300s", path, r.status, r.body);
		goto fail;
	}
	json_t *j = json_loadb(r.body, r.len, 0, NULL);
	tmpl_ms = json_number_value(json_object_get(j, "restoreMs"));
	json_decref(j);
	snprintf(path, sizeof(path), "%s-%s", f->name, restore_names[m]);
	if (!wait_pool_full(b, path, true, NULL, msg, sizeof(msg)))
		goto fail;
	t = invoke(f, b->c, path, "restore", &init, msg, sizeof(msg));
	if (t < 0)
		goto fail;
	if (record) {
		bench_add(&f->rst[m], t_post + t);
		bench_add(&f->rst_tmpl_ms[m], tmpl_ms);
		if (init >= 0)
			bench_add(&f->rst_ms[m], init);
	}
	wait_pool_full(b, path, true, NULL, msg, sizeof(msg));
	return true;
fail:
	if (!record || f->rst_fail[m]++ == 0)
		snprintf(f->rst_msg[m], sizeof(f->rst_msg[m]), "%s round %d: %s", restore_names[m],
			 round, msg);
	return false;
}

/* Restore rounds of one function, each mode under a name of its own ("<fn>-eager", ...). The
 * first round of each mode is a warm-up. Each round's image is a new version's: the lazy mode's
 * working set is not recorded yet (its prefetch is measured by bench-snapshot). */
static void bench_restores(struct hb *b, struct fn_bench *f)
{
	char name[96];

	for (int m = 0; m < N_RESTORE && !stop_now(); m++)
		restore_round(b, f, (enum restore_mode)m, -1, false);
	for (int r = 0; r < f->rounds && !stop_now(); r++)
		for (int k = 0; k < N_RESTORE && !stop_now(); k++)
			restore_round(b, f, (enum restore_mode)((r + k) % N_RESTORE), r, true);
	for (int m = 0; m < N_RESTORE && !atomic_load(&host_hung); m++) {
		snprintf(name, sizeof(name), "%s-%s", f->name, restore_names[m]);
		remove_fn(b, name);
	}
}

static void bench_fn(struct hb *b, struct fn_bench *f)
{
	char msg[400];
	double init;

	/* untimed: the first deploy, an invocation that fixes the expected answer, one zygote
	 * start and one run of each peer (page cache; one that cannot run at all says why here) */
	if (deploy(b, f, f->name, "off", msg, sizeof(msg)) < 0) {
		snprintf(f->cold_msg, sizeof(f->cold_msg), "first deploy: %s", msg);
		f->cold_fail = (unsigned)f->rounds;
		return;
	}
	if (invoke(f, b->c, f->name, "cold", &init, msg, sizeof(msg)) < 0) {
		snprintf(f->cold_msg, sizeof(f->cold_msg), "first invocation: %s", msg);
		f->cold_fail = (unsigned)f->rounds;
		remove_fn(b, f->name);
		return;
	}
	f->ran = true;
	zygote_round(b, f, -1, false);   /* a failure's message is kept, not counted */
	for (int p = 0; p < N_PEER; p++) {
		if (!b->peers[p].path[0])
			continue;
		peer_round(b, f, (enum peer)p, -1);
		if (f->peer[p].n)
			bench_free(&f->peer[p]); /* the warm-up does not count */
		else
			f->peer_fail[p] = 0;     /* ... but its message is kept */
	}
	/* slots: the peers, then ember cold (+ warm), then ember zygote */
	for (int r = 0; r < f->rounds && !stop_now(); r++) {
		for (int k = 0; k < N_PEER + 2 && !stop_now(); k++) {
			int slot = (r + k) % (N_PEER + 2);   /* rotate who goes first */

			if (slot == N_PEER)
				ember_round(b, f, r);
			else if (slot == N_PEER + 1)
				zygote_round(b, f, r, true);
			else if (b->peers[slot].path[0])
				peer_round(b, f, (enum peer)slot, r);
		}
	}
	if (!atomic_load(&host_hung))
		remove_fn(b, f->name);
	if (f->heavy && !stop_now())
		bench_restores(b, f);
}

/* ------------------------------------------------------------------ throughput */

struct tput {
	struct hb *b;
	struct fn_bench *f;
	const char *name;
	unsigned ms;
	pthread_barrier_t *bar;
	struct bench_samples lat;
	unsigned long fail;
	char msg[400];
};

static void *tput_thread(void *arg)
{
	struct tput *t = arg;
	struct em_client *c = NULL;
	struct em_err err = { 0 };
	char msg[400];
	double end;
	bool ok = em_client_open(t->b->sock, &c, &err) == 0;

	if (!ok)
		snprintf(t->msg, sizeof(t->msg), "connect: %s", err.msg);
	else
		em_client_set_timeout(c, CLIENT_TIMEOUT_MS);
	pthread_barrier_wait(t->bar);   /* every client connected */
	pthread_barrier_wait(t->bar);   /* the host settled */
	/* warm-up: the first concurrent invocations start instances (cold); keep going until
	 * every client has its own idle instance to come back to */
	end = bench_now_us() + TPUT_WARMUP_MS * 1000.0;
	while (ok && !stop_now() && bench_now_us() < end) {
		if (invoke(t->f, c, t->name, NULL, NULL, msg, sizeof(msg)) < 0) {
			snprintf(t->msg, sizeof(t->msg), "warm-up: %s", msg);
			break;
		}
	}
	pthread_barrier_wait(t->bar);   /* timed part starts */
	end = bench_now_us() + t->ms * 1000.0;
	while (ok && !stop_now() && bench_now_us() < end) {
		double us = invoke(t->f, c, t->name, "warm", NULL, msg, sizeof(msg));

		if (us < 0) {
			if (!t->fail++)
				snprintf(t->msg, sizeof(t->msg), "%s", msg);
			continue;
		}
		bench_add(&t->lat, us);
	}
	if (c)
		em_client_close(c);
	return NULL;
}

/* Returns invocations/s (0 if nothing ran). The clients connect before the first invocation
 * and the host's pool is full before they start: connection set-up stays out of the figures,
 * and the host never makes its connection threads while it clones a sandbox (a race that hangs
 * the sandbox's child in glibc's setgroups: see the report of the run that found it). */
static double throughput(struct hb *b, struct fn_bench *f, int threads, unsigned ms,
			 struct bench_samples *lat, unsigned long *fails, char *msg, size_t msglen)
{
	static const char *name = "hello-c-tput";
	struct tput t[8];
	pthread_t tid[8];
	pthread_barrier_t bar;
	double t0, secs;

	*fails = 0;
	msg[0] = 0;
	if (deploy(b, f, name, "off", msg, msglen) < 0)   /* no template made mid-run */
		return 0;
	pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		t[i] = (struct tput){ .b = b, .f = f, .name = name, .ms = ms, .bar = &bar };
		if (pthread_create(&tid[i], NULL, tput_thread, &t[i]))
			die("%s", "pthread_create");
	}
	pthread_barrier_wait(&bar);   /* connected */
	wait_pool_full(b, name, false, NULL, msg, msglen);
	msg[0] = 0;
	sleep_ms(100);
	pthread_barrier_wait(&bar);   /* warm-up starts */
	pthread_barrier_wait(&bar);   /* timed part starts */
	t0 = bench_now_us();
	for (int i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		*fails += t[i].fail;
		for (size_t k = 0; k < t[i].lat.n; k++)
			bench_add(lat, t[i].lat.v[k]);
		if (t[i].msg[0] && !msg[0])
			snprintf(msg, msglen, "%s", t[i].msg);
		bench_free(&t[i].lat);
	}
	secs = (bench_now_us() - t0) / 1e6;
	pthread_barrier_destroy(&bar);
	if (!stop_now())
		remove_fn(b, name);
	return secs > 0 ? (double)lat->n / secs : 0;
}

/* ------------------------------------------------------------------ cleanup */

/* The host's cgroup parent: what is left below it (after a clean stop: nothing but the freezer
 * anchor), the anchor thawed, then the parent removed in every hierarchy. Returns the number of
 * instance cgroups the host left, or -1 if the parent could not be removed. */
static int remove_cg_parent(struct hb *b)
{
	struct em_cg_root *root;
	struct em_err err = { 0 };
	char p[PATH_MAX + 256];
	struct dirent *de;
	int left;
	DIR *d;

	if (em_cg_root_open(&root, b->cg_parent, NULL, &err) < 0) {
		fprintf(stderr, "bench-host: open cgroup parent %s: %s\n", b->cg_parent, err.msg);
		return -1;
	}
	left = em_cg_reap_children(root, &err);
	if (left < 0)
		fprintf(stderr, "bench-host: reap below %s: %s\n", b->cg_parent, err.msg);
	/* the anchor is kept frozen on purpose (cgroups.h); an empty cgroup is thawed before it
	 * goes, so the kernel's freezer count drops with it */
	d = opendir("/sys/fs/cgroup");
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/%s/ember-freezer-anchor/freezer.state",
			 de->d_name, b->cg_parent);
		if (access(p, W_OK) == 0 && em_write_str_at(AT_FDCWD, p, "THAWED", &err) < 0)
			fprintf(stderr, "bench-host: thaw %s: %s\n", p, err.msg);
	}
	if (d)
		closedir(d);
	if (em_cg_root_remove(root, &err) < 0) {
		fprintf(stderr, "bench-host: remove cgroup parent %s: %s\n", b->cg_parent, err.msg);
		left = -1;
	}
	em_cg_root_close(root);
	return left;
}

/* ------------------------------------------------------------------ the report */

static void report_fn(struct hb *b, struct fn_bench *f)
{
	char name[96];

	printf("# %s: payload \"%s\", memory %u MB, %d rounds, %d warm invocations per round\n",
	       f->name, f->payload, MEMORY_MB, f->rounds, b->warm_n);
	for (int p = 0; p < N_PEER; p++) {
		if (!f->peer[p].n)
			continue;
		snprintf(name, sizeof(name), "%s: %s run", f->name, b->peers[p].name);
		bench_report(name, &f->peer[p], "us");
	}
	struct { const char *what; struct bench_samples *s; } rows[] = {
		{ "ember cold (pooled)", &f->cold }, { "ember zygote", &f->zyg },
		{ "ember warm", &f->warm },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bool any = false;

		snprintf(name, sizeof(name), "%s: %s", f->name, rows[i].what);
		for (int p = 0; p < N_PEER && rows[i].s->n; p++) {
			if (!f->peer[p].n)
				continue;
			bench_report_vs(name, rows[i].s, "us", b->peers[p].name, &f->peer[p]);
			any = true;
		}
		if (!any)
			bench_report(name, rows[i].s, "us");
	}
	snprintf(name, sizeof(name), "%s: ember cold Ember-Init-Ms", f->name);
	bench_report(name, &f->init_ms, "ms");
	snprintf(name, sizeof(name), "%s: ember zygote Ember-Init-Ms", f->name);
	bench_report(name, &f->zyg_ms, "ms");
	for (int m = 0; m < N_RESTORE; m++) {
		if (!f->rst[m].n)
			continue;
		snprintf(name, sizeof(name), "%s: ember restore %s (POST restore + invoke)", f->name,
			 restore_names[m]);
		bench_report_vs(name, &f->rst[m], "us", "ember cold", &f->cold);
		snprintf(name, sizeof(name), "%s: ember restore %s Ember-Init-Ms", f->name,
			 restore_names[m]);
		bench_report(name, &f->rst_ms[m], "ms");
		snprintf(name, sizeof(name), "%s: ember restore %s template (restoreMs)", f->name,
			 restore_names[m]);
		bench_report(name, &f->rst_tmpl_ms[m], "ms");
	}
	for (int m = 0; m < N_RESTORE; m++)
		if (f->rst_msg[m][0])
			printf("# %s ember restore: first failure%s (%u/%d failed): %s\n", f->name,
			       f->rst_fail[m] ? "" : " (warm-up only)", f->rst_fail[m], f->rounds,
			       f->rst_msg[m]);
	snprintf(name, sizeof(name), "%s: redeploy until parked (untimed)", f->name);
	bench_report(name, &f->deploy_ms, "ms");
	snprintf(name, sizeof(name), "%s: provisioned deploy (untimed)", f->name);
	bench_report(name, &f->zyg_deploy_ms, "ms");
	snprintf(name, sizeof(name), "%s: template init (GET initMs)", f->name);
	bench_report(name, &f->tmpl_init_ms, "ms");
	printf("# %s failures: ember cold %u/%d, zygote %u/%d, warm %u/%d", f->name, f->cold_fail,
	       f->rounds, f->zyg_fail, f->rounds, f->warm_fail, f->rounds * b->warm_n);
	for (int p = 0; p < N_PEER; p++) {
		if (b->peers[p].path[0])
			printf(", %s %u/%d", b->peers[p].name, f->peer_fail[p], f->rounds);
		else
			printf(", %s not installed", b->peers[p].name);
	}
	printf("\n");
	if (f->cold_msg[0])
		printf("# %s ember cold: first failure: %s\n", f->name, f->cold_msg);
	if (f->zyg_msg[0])
		printf("# %s ember zygote: first failure%s: %s\n", f->name,
		       f->zyg_fail ? "" : " (warm-up only)", f->zyg_msg);
	if (f->warm_msg[0])
		printf("# %s ember warm: first failure: %s\n", f->name, f->warm_msg);
	for (int p = 0; p < N_PEER; p++)
		if (f->peer_msg[p][0])
			printf("# %s %s: first failure%s: %s\n", f->name, b->peers[p].name,
			       f->peer_fail[p] ? "" : " (warm-up only)", f->peer_msg[p]);
}

/* A ratio a / b as "12.3x", or "-" when either side has no samples. */
static void print_ratio(double a, double b, int width)
{
	if (a > 0 && b > 0)
		printf(" %*.1fx", width - 1, a / b);
	else
		printf(" %*s", width, "-");
}

static void summary(struct fn_bench *fns, size_t n)
{
	printf("# summary: medians in ms, end to end unless said; memory %u MB; init: cold "
	       "Ember-Init-Ms (exec+init); zyg start: zygote Ember-Init-Ms (FORK to READY); peers: "
	       "one `run` of the same bundle per invocation\n", MEMORY_MB);
	printf("# %-18s %10s %8s %8s %9s %10s %10s %10s %9s %9s %11s\n", "function", "ember cold",
	       "init", "zygote", "zyg start", "ember warm", "crun run", "runc run", "cold/crun",
	       "cold/runc", "cold/zygote");
	for (size_t i = 0; i < n; i++) {
		struct fn_bench *f = &fns[i];
		double cold = bench_median(&f->cold), crun = bench_median(&f->peer[P_CRUN]);
		double runc = bench_median(&f->peer[P_RUNC]), zyg = bench_median(&f->zyg);

		if (!f->rounds)
			continue;
		printf("# %-18s %10.2f %8.2f %8.2f %9.3f %10.3f %10.2f %10.2f", f->name, cold / 1000,
		       bench_median(&f->init_ms), zyg / 1000, bench_median(&f->zyg_ms),
		       bench_median(&f->warm) / 1000, crun / 1000, runc / 1000);
		print_ratio(crun, cold, 9);
		print_ratio(runc, cold, 9);
		print_ratio(cold, zyg, 11);
		printf("\n");
	}
}

/* The goal of the snapshots: init-heavy restore start >= 20x faster than its cold start. */
static void restore_goals(struct fn_bench *fns, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct fn_bench *f = &fns[i];

		if (!f->heavy || !f->init_ms.n)
			continue;
		for (int m = 0; m < N_RESTORE; m++) {
			double cold = bench_median(&f->init_ms), rs = bench_median(&f->rst_ms[m]);
			double r = rs > 0 ? cold / rs : 0;

			if (!f->rst_ms[m].n)
				continue;
			printf("# goal: %s restore (%s) start >= 20x faster than its cold start "
			       "(Ember-Init-Ms medians): %s (%.0fx: %.2f ms vs %.2f ms; template "
			       "restore %.2f ms; end to end %.2f ms vs cold %.2f ms)\n", f->name,
			       restore_names[m], r >= 20 ? "met" : "NOT met", r, rs, cold,
			       bench_median(&f->rst_tmpl_ms[m]), bench_median(&f->rst[m]) / 1000,
			       bench_median(&f->cold) / 1000);
		}
	}
}

/* The goals of the zygote templates (medians). */
static void zygote_goals(struct fn_bench *fns, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct fn_bench *f = &fns[i];

		if (!strcmp(f->name, "hello-python") && f->zyg.n) {
			double z = bench_median(&f->zyg);

			printf("# goal: zygote hello-python end to end p50 <= 3 ms: %s (median %.2f ms, "
			       "p99 %.2f ms, n=%zu)\n", z <= 3000 ? "met" : "NOT met", z / 1000,
			       bench_quantile(&f->zyg, 0.99) / 1000, f->zyg.n);
		}
		if (f->heavy && f->zyg_ms.n && f->init_ms.n) {
			double cold = bench_median(&f->init_ms), zyg = bench_median(&f->zyg_ms);
			double r = zyg > 0 ? cold / zyg : 0;

			printf("# goal: %s zygote start >= 100x faster than its cold start (Ember-Init-Ms "
			       "medians): %s (%.0fx: %.3f ms vs %.2f ms; end to end %.1fx: %.2f ms vs "
			       "%.2f ms)\n", f->name, r >= 100 ? "met" : "NOT met", r, zyg, cold,
			       bench_median(&f->zyg) > 0 ? bench_median(&f->cold) / bench_median(&f->zyg)
							  : 0, bench_median(&f->zyg) / 1000,
			       bench_median(&f->cold) / 1000);
		}
	}
}

/* The machine is shared: say how busy it was (the 1, 5, 15 minute load averages). */
static void print_load(const char *when)
{
	char buf[128] = "?";
	struct em_err err = { 0 };

	if (em_read_small_at(AT_FDCWD, "/proc/loadavg", buf, sizeof(buf), &err) > 0)
		buf[strcspn(buf, "\n")] = 0;
	printf("# load average %s: %s\n", when, buf);
}

/* ------------------------------------------------------------------ main */

static bool wanted(const char *list, const char *name)
{
	size_t len = strlen(name);

	if (!list || !*list)
		return true;
	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",");
		if (l == len && !strncmp(p, name, len))
			return true;
		p += l + (p[l] == ',');
	}
	return false;
}

int main(void)
{
	struct fn_bench fns[] = {
		{ .name = "hello-c", .payload = "world", .expect_prefix = "hello, world" },
		{ .name = "hello-python", .payload = "world", .expect_prefix = "hello, world" },
		{ .name = "init-heavy-c", .payload = "0 1 2 3", .heavy = true,
		  .expect_prefix = "{\"tableMb\":256,\"entries\":4," },
		{ .name = "init-heavy-python", .payload = "0 1 2 3", .heavy = true,
		  .expect_prefix = "{\"tableMb\":256,\"entries\":4," },
	};
	const size_t n_fns = sizeof(fns) / sizeof(fns[0]);
	static const char *peer_names[N_PEER] = { [P_CRUN] = "crun", [P_RUNC] = "runc" };
	struct hb b = { .host = -1 };
	int light = env_int("EMBER_BENCH_HOST_ROUNDS", env_int("EMBER_BENCH_RUNS", 30));
	int heavy = env_int("EMBER_BENCH_HOST_HEAVY_ROUNDS", 5);
	unsigned tput_ms = (unsigned)env_int("EMBER_BENCH_HOST_TPUT_MS", 3000);
	const char *only = getenv("EMBER_BENCH_HOST_FUNCTIONS");
	struct sigaction sa = { .sa_handler = on_signal };
	double t_start = bench_now_us();
	pthread_t watchdog;
	bool watchdog_started = false;
	int rc = 0;
	ssize_t n;

	b.warm_n = env_int("EMBER_BENCH_HOST_WARM", 50);
	if (geteuid() != 0)
		die("%s", "needs root (namespaces, cgroups, mounts)");
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	b.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (b.devnull < 0)
		die("%s", "open /dev/null");

	/* build/bench/bench-host -> build/ember, build/examples */
	n = readlink("/proc/self/exe", b.build, sizeof(b.build) - 1);
	if (n <= 0)
		die("%s", "readlink /proc/self/exe");
	b.build[n] = 0;
	*strrchr(b.build, '/') = 0;
	*strrchr(b.build, '/') = 0;
	snprintf(b.ember, sizeof(b.ember), "%s/ember", b.build);
	if (access(b.ember, X_OK) < 0)
		die("%s: not built (make)", b.ember);
	for (size_t i = 0; i < n_fns; i++) {
		char cfg[PATH_MAX + 16];

		snprintf(fns[i].bundle, sizeof(fns[i].bundle), "%s/examples/%s", b.build, fns[i].name);
		snprintf(cfg, sizeof(cfg), "%s/config.json", fns[i].bundle);
		if (access(cfg, R_OK) < 0)
			die("%s: not built (make examples)", cfg);
		fns[i].rounds = wanted(only, fns[i].name) ? (fns[i].heavy ? heavy : light) : 0;
	}
	for (int p = 0; p < N_PEER; p++) {
		char root[PATH_MAX];

		snprintf(root, sizeof(root), "/run/ember-bench-host-%d-%s", (int)getpid(),
			 peer_names[p]);
		peer_init(&b.peers[p], peer_names[p], root);
	}
	snprintf(b.cg_parent, sizeof(b.cg_parent), "ember-bench-host-%d", (int)getpid());
	snprintf(b.tmp, sizeof(b.tmp), "/tmp/ember-bench-host-XXXXXX");
	if (!mkdtemp(b.tmp))
		die("%s", "mkdtemp /tmp/ember-bench-host-XXXXXX");
	chmod(b.tmp, 0755);   /* the peers' bundles are read from inside their user's view */
	for (size_t i = 0; i < n_fns; i++) {
		if (!fns[i].rounds)
			continue;
		snprintf(fns[i].peer_bundle, sizeof(fns[i].peer_bundle), "%s/peer-%s", b.tmp,
			 fns[i].name);
		if (peer_make_bundle(fns[i].bundle, fns[i].peer_bundle, MEMORY_MB, CPU_PERIOD_US,
				     PIDS_MAX) < 0)
			die("make the peers' bundle %s", fns[i].peer_bundle);
		snprintf(fns[i].payload_file, sizeof(fns[i].payload_file), "%s/payload-%s", b.tmp,
			 fns[i].name);
		struct em_err err = { 0 };
		if (em_create_file_at(AT_FDCWD, fns[i].payload_file, 0644, fns[i].payload,
				      strlen(fns[i].payload), &err) < 0)
			die("write %s", fns[i].payload_file);
	}

	bench_machine_note();
	print_load("at the start");
	printf("# ember serve (%s), --capacity-mb %u, cgroup parent %s; every function at %u MB = "
	       "one vCPU (CPU follows memory), on a kept-alive unix-socket connection\n", b.ember,
	       CAPACITY_MB, b.cg_parent, MEMORY_MB);
	printf("# timed: request to full response (ember: POST invoke; peers: fork+exec of `run` "
	       "with the payload on stdin to stdout EOF and exit); rounds interleaved, order "
	       "rotating\n");
	printf("# cold: each round PUTs the same spec with \"template\": \"off\" (a new version, "
	       "answered once a sandbox is parked) and times the first invocation (Ember-Start: "
	       "cold); warm: then %d invocations of the idle instance (Ember-Start: warm)\n",
	       b.warm_n);
	printf("# zygote: each round PUTs the spec with \"template\": \"provisioned\" (answered "
	       "once the template ran the init), waits for a parked fork slot, and times one "
	       "invocation (Ember-Start: zygote: forked from the template)\n");
	for (int p = 0; p < N_PEER; p++) {
		if (!b.peers[p].path[0])
			printf("# %s: not installed, skipped\n", b.peers[p].name);
		else
			printf("# %s: %s (%s), the example's bundle with the same limits (memory %u MB, "
			       "cpu quota %d/%d us, pids %d)\n", b.peers[p].name, b.peers[p].config,
			       b.peers[p].path, MEMORY_MB, CPU_PERIOD_US, CPU_PERIOD_US, PIDS_MAX);
	}

	host_start(&b);
	if (!b.c) {
		rc = 1;
		goto cleanup;
	}
	if (pthread_create(&watchdog, NULL, watchdog_main, &b))
		die("%s", "pthread_create");
	watchdog_started = true;
	for (size_t i = 0; i < n_fns && !stop_now(); i++) {
		if (!fns[i].rounds)
			continue;
		bench_fn(&b, &fns[i]);
		report_fn(&b, &fns[i]);
		if (fns[i].cold_fail || fns[i].warm_fail || fns[i].zyg_fail || !fns[i].ran)
			rc = 1;
		for (int m = 0; m < N_RESTORE; m++)
			if (fns[i].rst_fail[m])
				rc = 1;
	}

	if (tput_ms && fns[0].ran && !stop_now()) {
		printf("# warm throughput: hello-c, N client threads each on its own connection, %u ms "
		       "after a %d ms warm-up; %ld CPUs\n", tput_ms, TPUT_WARMUP_MS,
		       sysconf(_SC_NPROCESSORS_ONLN));
		for (int threads = 2; threads <= 4 && !stop_now(); threads += 2) {
			struct bench_samples lat = { 0 };
			unsigned long fails;
			char msg[400], name[96];
			double rate = throughput(&b, &fns[0], threads, tput_ms, &lat, &fails, msg,
						 sizeof(msg));

			snprintf(name, sizeof(name), "hello-c warm, %d clients: latency", threads);
			bench_report(name, &lat, "us");
			snprintf(name, sizeof(name), "hello-c warm, %d clients: throughput", threads);
			printf("%-44s n=%-4zu rate=%10.0f inv/s\n", name, lat.n, rate);
			if (fails || msg[0]) {
				printf("# %d clients: %lu failed; first: %s\n", threads, fails, msg);
				rc = 1;
			}
			bench_free(&lat);
		}
	}

	print_load("at the end");
	summary(fns, n_fns);
	if (fns[0].warm.n) {
		double w = bench_median(&fns[0].warm);
		printf("# goal: warm p50 <= 300 us end to end (hello-c): %s (median %.1f us, p99 %.1f "
		       "us)\n", w <= 300 ? "met" : "NOT met", w, bench_quantile(&fns[0].warm, 0.99));
	}
	if (fns[0].cold.n && fns[0].peer[P_CRUN].n) {
		double r = bench_median(&fns[0].peer[P_CRUN]) / bench_median(&fns[0].cold);
		printf("# goal: cold (pooled) hello-c >= 20x faster than `crun run` (medians): %s "
		       "(%.1fx: %.2f ms vs %.2f ms)\n", r >= 20 ? "met" : "NOT met", r,
		       bench_median(&fns[0].cold) / 1000, bench_median(&fns[0].peer[P_CRUN]) / 1000);
	}
	zygote_goals(fns, n_fns);
	restore_goals(fns, n_fns);

cleanup:
	if (watchdog_started) {
		atomic_store(&watchdog_done, true);
		pthread_join(watchdog, NULL);
	}
	bool host_ok = host_stop(&b);
	int left_cg = remove_cg_parent(&b);
	unsigned left_peer[N_PEER] = { 0 }, peer_cg;
	struct em_err err = { 0 };

	for (int p = 0; p < N_PEER; p++)
		left_peer[p] = peer_cleanup_root(&b.peers[p], "ebh");
	peer_cg = peer_sweep_cgroups(b.ids, b.n_ids);
	for (int p = 0; p < N_PEER; p++)
		peer_fini(&b.peers[p]);
	if (em_rm_rf_at(AT_FDCWD, b.tmp, &err) < 0)
		fprintf(stderr, "bench-host: remove %s: %s\n", b.tmp, err.msg);
	printf("# host stopped with SIGTERM: %s; instance cgroups it left: %d; leftovers cleaned: "
	       "containers crun %u, runc %u; peer cgroup dirs %u\n", host_ok ? "exit 0" :
	       atomic_load(&host_hung) ? "no (it had stopped answering and was killed)" : "FAILED",
	       left_cg, left_peer[P_CRUN], left_peer[P_RUNC], peer_cg);
	printf("# bench-host took %.0f s%s\n", (bench_now_us() - t_start) / 1e6,
	       interrupted ? " (interrupted)" : "");
	if (!host_ok || left_cg != 0 || interrupted)
		rc = 1;
	for (size_t i = 0; i < n_fns; i++) {
		bench_free(&fns[i].cold);
		bench_free(&fns[i].warm);
		bench_free(&fns[i].init_ms);
		bench_free(&fns[i].deploy_ms);
		bench_free(&fns[i].zyg);
		bench_free(&fns[i].zyg_ms);
		bench_free(&fns[i].zyg_deploy_ms);
		bench_free(&fns[i].tmpl_init_ms);
		for (int m = 0; m < N_RESTORE; m++) {
			bench_free(&fns[i].rst[m]);
			bench_free(&fns[i].rst_ms[m]);
			bench_free(&fns[i].rst_tmpl_ms[m]);
		}
		for (int p = 0; p < N_PEER; p++)
			bench_free(&fns[i].peer[p]);
	}
	for (size_t i = 0; i < b.n_ids; i++)
		free(b.ids[i]);
	free(b.ids);
	return rc;
}
