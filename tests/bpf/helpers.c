/* tests/bpf/helpers.c — see helpers.h. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bpf/billing_api.h"

#define CG_ROOT "/sys/fs/cgroup"
#define MAX_TCG 16

static struct tcg tcgs[MAX_TCG];
static int n_tcg;

static const struct {
	unsigned bit;
	const char *hier;
} hiers[] = {
	{ TCG_UNIFIED, "unified" }, { TCG_CPUACCT, "cpuacct" }, { TCG_CPU, "cpu" },
	{ TCG_MEMORY, "memory" },
};

/* Pure cgroup v2: /sys/fs/cgroup is the unified hierarchy itself (the VM boots cgroup_no_v1=all). */
bool tcg_pure_v2(void)
{
	return !access(CG_ROOT "/cgroup.controllers", F_OK);
}

/* v2: make `ctrl` available below the root (the throwaway VM's own root; never on a hybrid host). */
static void v2_enable(const char *ctrl)
{
	char want[32], buf[256] = "";
	FILE *f = fopen(CG_ROOT "/cgroup.subtree_control", "r");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	if (strstr(buf, ctrl))
		return;
	snprintf(want, sizeof(want), "+%s", ctrl);
	f = fopen(CG_ROOT "/cgroup.subtree_control", "w");
	cr_assert_not_null(f, "open the root's cgroup.subtree_control: %s", strerror(errno));
	fputs(want, f);
	cr_assert_eq(fclose(f), 0, "enable %s below the root: %s", ctrl, strerror(errno));
}

static char *hier_path(struct tcg *c, unsigned bit)
{
	switch (bit) {
	case TCG_UNIFIED: return c->unified;
	case TCG_CPUACCT: return c->cpuacct;
	case TCG_CPU: return c->cpu;
	default: return c->memory;
	}
}

struct tcg *tcg_new(unsigned hier)
{
	struct tcg *c;
	struct stat st;

	cr_assert_lt(n_tcg, MAX_TCG);
	c = &tcgs[n_tcg++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "ember-test-bpf-%d-%d", getpid(), n_tcg);
	if (tcg_pure_v2()) {
		if (hier & TCG_CPU)
			v2_enable("cpu");
		if (hier & TCG_MEMORY)
			v2_enable("memory");
		char name[64];

		memcpy(name, c->name, sizeof(name));
		snprintf(c->unified, sizeof(c->unified), CG_ROOT "/%s", name);
		if (mkdir(c->unified, 0755) && errno != EEXIST)
			cr_assert_fail("mkdir %s: %s", c->unified, strerror(errno));
		c->hier = TCG_UNIFIED;
		cr_assert_eq(stat(c->unified, &st), 0);
		c->id = st.st_ino;
		return c;
	}
	hier |= TCG_UNIFIED;
	for (size_t i = 0; i < sizeof(hiers) / sizeof(hiers[0]); i++) {
		char *p = hier_path(c, hiers[i].bit);

		if (!(hier & hiers[i].bit))
			continue;
		snprintf(p, 256, CG_ROOT "/%s/%s", hiers[i].hier, c->name);
		if (mkdir(p, 0755) && errno != EEXIST)
			cr_assert_fail("mkdir %s: %s", p, strerror(errno));
		c->hier |= hiers[i].bit;
	}
	cr_assert_eq(stat(c->unified, &st), 0);
	c->id = st.st_ino;
	return c;
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

void tcg_write(struct tcg *c, unsigned hier, const char *file, const char *val)
{
	char path[512];
	int ret;

	snprintf(path, sizeof(path), "%s/%s", hier_path(c, hier), file);
	ret = write_file(path, val);
	cr_assert_eq(ret, 0, "write %s to %s: %s", val, path, strerror(-ret));
}

void tcg_add(struct tcg *c, pid_t pid)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d", pid);
	for (size_t i = 0; i < sizeof(hiers) / sizeof(hiers[0]); i++)
		if (c->hier & hiers[i].bit)
			tcg_write(c, hiers[i].bit, "cgroup.procs", buf);
}

void tcg_set_quota(struct tcg *c, unsigned quota_us, unsigned period_us)
{
	char buf[64];

	if (!(c->hier & TCG_CPU)) { /* v2 */
		snprintf(buf, sizeof(buf), "%u %u", quota_us, period_us);
		tcg_write(c, TCG_UNIFIED, "cpu.max", buf);
		return;
	}
	snprintf(buf, sizeof(buf), "%u", period_us);
	tcg_write(c, TCG_CPU, "cpu.cfs_period_us", buf);
	snprintf(buf, sizeof(buf), "%u", quota_us);
	tcg_write(c, TCG_CPU, "cpu.cfs_quota_us", buf);
}

void tcg_set_memory_max(struct tcg *c, unsigned long long bytes)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", bytes);
	if (c->hier & TCG_MEMORY)
		tcg_write(c, TCG_MEMORY, "memory.limit_in_bytes", buf);
	else
		tcg_write(c, TCG_UNIFIED, "memory.max", buf);
}

void tcg_bill_cg(const struct tcg *c, struct em_bill_cg *out, uint64_t memory_mb)
{
	memset(out, 0, sizeof(*out));
	out->cgid = c->id;
	out->unified = c->unified;
	out->cpuacct = (c->hier & TCG_CPUACCT) ? c->cpuacct : NULL;
	out->cpu = (c->hier & TCG_CPU) ? c->cpu : NULL;
	out->memory = (c->hier & TCG_MEMORY) ? c->memory : NULL;
	out->memory_mb = memory_mb;
}

/* Kill and reap what is left in a cgroup (only our workers can be there), then remove it. */
static void tcg_remove(const char *path)
{
	char procs[512], buf[4096];

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	for (int tries = 0; tries < 200; tries++) {
		FILE *f = fopen(procs, "r");
		bool any = false;

		while (f && fgets(buf, sizeof(buf), f)) {
			pid_t pid = atoi(buf);

			if (pid > 0) {
				any = true;
				kill(pid, SIGKILL);
				waitpid(pid, NULL, WNOHANG);
			}
		}
		if (f)
			fclose(f);
		if (!rmdir(path) || errno == ENOENT)
			return;
		if (!any && errno != EBUSY)
			break;
		usleep(5000);
	}
	fprintf(stderr, "test-bpf: could not remove %s: %s\n", path, strerror(errno));
}

/* Cgroups left by a runner that died (a Criterion timeout kills the test before its .fini):
 * ember-test-bpf-<pid>-<n> whose <pid> is gone. */
void tcg_cleanup_stale(void)
{
	const char *roots[] = { CG_ROOT, CG_ROOT "/unified", CG_ROOT "/cpuacct", CG_ROOT "/cpu",
				CG_ROOT "/memory" };

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		DIR *d = opendir(roots[i]);
		struct dirent *e;

		while (d && (e = readdir(d))) {
			char path[512];
			int pid;

			if (sscanf(e->d_name, "ember-test-bpf-%d-", &pid) != 1 || pid <= 0 ||
			    !kill(pid, 0) || errno != ESRCH)
				continue;
			snprintf(path, sizeof(path), "%s/%s", roots[i], e->d_name);
			tcg_remove(path);
		}
		if (d)
			closedir(d);
	}
}

void tcg_cleanup_all(void)
{
	for (int i = n_tcg - 1; i >= 0; i--)
		for (size_t h = 0; h < sizeof(hiers) / sizeof(hiers[0]); h++)
			if (tcgs[i].hier & hiers[h].bit)
				tcg_remove(hier_path(&tcgs[i], hiers[h].bit));
	n_tcg = 0;
}

const char *emtest_path(void)
{
	return access("build/tools/emtest", X_OK) && !access("/bin/emtest", X_OK) ? "/bin/emtest" :
										   "build/tools/emtest";
}

/* --- clocks */

uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t proc_cpu_ns(pid_t pid)
{
	clockid_t id;

	if (clock_getcpuclockid(pid, &id))
		return 0;
	return clock_ns(id);
}

void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* --- workers */

/* This process's CPU time plus that of its reaped children: the worker's ground truth. */
static uint64_t self_cpu_ns(void)
{
	struct rusage ru;
	uint64_t ch = 0;

	if (!getrusage(RUSAGE_CHILDREN, &ru))
		ch = ((uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ull +
		      (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec)) * 1000ull;
	return clock_ns(CLOCK_PROCESS_CPUTIME_ID) + ch;
}

static void spin_cpu(unsigned ms)
{
	uint64_t end = clock_ns(CLOCK_THREAD_CPUTIME_ID) + (uint64_t)ms * 1000000ull;

	while (clock_ns(CLOCK_THREAD_CPUTIME_ID) < end)
		;
}

static void *spin_thread(void *arg)
{
	spin_cpu((unsigned)(uintptr_t)arg);
	return NULL;
}

static void do_work(const struct work *wk)
{
	switch (wk->kind) {
	case WORK_SPIN_CPU: {
		pthread_t th[16];
		unsigned n = wk->threads ? wk->threads : 1;

		for (unsigned i = 1; i < n && i < 16; i++)
			pthread_create(&th[i], NULL, spin_thread, (void *)(uintptr_t)wk->ms);
		spin_cpu(wk->ms);
		for (unsigned i = 1; i < n && i < 16; i++)
			pthread_join(th[i], NULL);
		break;
	}
	case WORK_SPIN_WALL: {
		uint64_t end = mono_ns() + (uint64_t)wk->ms * 1000000ull;

		while (mono_ns() < end)
			;
		break;
	}
	case WORK_SLEEP:
		sleep_ms(wk->ms);
		break;
	case WORK_EXEC: {
		char ms[16];
		pid_t pid;

		snprintf(ms, sizeof(ms), "%u", wk->ms);
		pid = fork();
		if (pid == 0) {
			execl(emtest_path(), "emtest", "spin", ms, (char *)NULL);
			_exit(127);
		}
		waitpid(pid, NULL, 0);
		break;
	}
	case WORK_TOUCH: {
		size_t len = (size_t)wk->mb << 20;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p != MAP_FAILED) {
			memset(p, 1, len);
			spin_cpu(wk->ms);
			munmap(p, len);
		}
		break;
	}
	}
}

static void read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		cr_assert_gt(n, 0, "worker pipe: %s", n < 0 ? strerror(errno) : "EOF");
		got += (size_t)n;
	}
}

/* Wait until pid sleeps (in its read of the request). The billing charges a task to the cgroup it
 * was in when it got the CPU, so a worker must not be moved while it runs — as ember never moves a
 * running instance. */
/* 'S' in /proc/pid/stat shows as soon as the task has set its state, before it has left the CPU;
 * moved into a cgroup and woken then, it would run on in the new cgroup without a switch-in (the
 * program charges a task from its next switch-in: a harness race, not a billing case). Reading
 * /proc/pid/syscall of a blocked task waits until it is off its CPU (wait_task_inactive), and
 * says it is blocked in a system call (the first field is a number, not "running"). */
static bool off_cpu(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
	f = fopen(path, "r");
	if (!f)
		return true; /* no such file (CONFIG_HAVE_ARCH_TRACEHOOK off): 'S' is all we have */
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n > 0 && buf[0] >= '0' && buf[0] <= '9';
}

static void wait_blocked(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	for (int i = 0; i < 10000; i++) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = '\0';
		p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] == 'S' && off_cpu(pid))
			return;
		usleep(100);
	}
	cr_assert_fail("worker %d never blocked", pid);
}

void worker_start(struct worker *w, const struct work *wk)
{
	int req[2], resp[2];

	cr_assert_eq(pipe2(req, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(resp, O_CLOEXEC), 0);
	w->pid = fork();
	cr_assert_geq(w->pid, 0);
	if (w->pid == 0) {
		struct report r;
		char c;

		/* Keep only our own pipe ends: another worker's request pipe left open here would
		 * keep that worker from seeing its EOF. */
		if (dup2(req[0], 100) < 0 || dup2(resp[1], 101) < 0)
			_exit(1);
		req[0] = 100;
		resp[1] = 101;
		close_range(3, 99, 0);
		close_range(102, ~0u, 0);
		if (write(resp[1], "R", 1) != 1) /* about to block for the request */
			_exit(1);
		if (read(req[0], &c, 1) != 1)
			_exit(1);
		r.t_wake = mono_ns();
		r.cpu_wake = self_cpu_ns();
		do_work(wk);
		r.cpu_done = self_cpu_ns();
		r.t_done = mono_ns();
		/* Clocks first: once the response is written the test may preempt us on this CPU
		 * and close the window before we would read them. */
		if (write(resp[1], "r", 1) != 1)
			_exit(1);
		/* released once the window is closed: the report and the exit fall outside it */
		if (read(req[0], &c, 1) != 1)
			_exit(1);
		if (write(resp[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		while (read(req[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(req[0]);
	close(resp[1]);
	w->req_w = req[1];
	w->resp_r = resp[0];
	worker_response(w); /* "R" */
	wait_blocked(w->pid);
}

void worker_go(struct worker *w)
{
	cr_assert_eq(write(w->req_w, "g", 1), 1);
}

void worker_response(struct worker *w)
{
	char c;

	read_full(w->resp_r, &c, 1);
}

void worker_finish(struct worker *w, struct report *r)
{
	int status;

	cr_assert_eq(write(w->req_w, "q", 1), 1);
	read_full(w->resp_r, r, sizeof(*r));
	close(w->req_w);
	close(w->resp_r);
	cr_assert_eq(waitpid(w->pid, &status, 0), w->pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker status %#x", status);
}
