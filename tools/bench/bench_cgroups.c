/* tools/bench/bench_cgroups.c — what ember's cgroups cost and whether CPU follows memory:
 *   - create (Lambda policy limits for 512 MB) / attach a live process / destroy, and the sum,
 *     on the backend this host has (v2, v1, or hybrid = v1 + unified companion);
 *   - placing a new child: fork + em_cg_attach vs clone3(CLONE_INTO_CGROUP) (+ attach on hybrid);
 *   - freeze + thaw of a one-process cgroup (the warm path), em_cg_stats and em_cg_pids reads;
 *   - CPU shares: 128 MB vs 512 MB spinning on one pinned CPU (quota+weight, weight only), and a
 *     885 MB function alone; exact ratios, expected 1:4 and 0.5 CPU.
 * Runs below the parent "ember-bench-<pid>", removed at the end. Usage: bench-cgroups [runs]. */
#include "cgroups/cgroups.h"
#include "common/err.h"
#include "tools/bench/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static struct em_cg_root *root;

static void die(const char *what, const struct em_err *err)
{
	fprintf(stderr, "bench-cgroups: %s: %s\n", what, err->msg);
	if (root) {
		struct em_err e;

		em_cg_gc(root, &e);
		em_cg_root_remove(root, &e);
	}
	exit(1);
}

/* a child that waits for one byte on fd, then exits */
static pid_t held_child(int *release_fd)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0) {
		perror("pipe");
		exit(1);
	}
	pid = fork();
	if (pid == 0) {
		close(p[1]);
		if (read(p[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[0]);
	*release_fd = p[1];
	return pid;
}

static void release(int fd, pid_t pid)
{
	if (write(fd, "x", 1) < 0)
		perror("write");
	close(fd);
	waitpid(pid, NULL, 0);
}

static void bench_lifecycle(int runs)
{
	struct bench_samples create = { 0 }, attach = { 0 }, destroy = { 0 }, total = { 0 };
	struct em_cg_policy pol;
	struct em_cg_limits l = { 0 };
	struct em_err err = { 0 };
	char name[64];

	em_cg_policy_default(&pol);
	if (em_cg_policy_apply(&pol, 512, &l, &err) < 0)
		die("policy", &err);
	l.pids_max.set = true;
	l.pids_max.v = 64;
	for (int i = 0; i < runs; i++) {
		struct em_cg *cg;
		int fd;
		pid_t pid;
		double t0, t1, t2, t3, t4, t5;

		/* the child is forked after create: right after a fork, the parent pays a
		 * copy-on-write fault (~15 µs here) for every page it writes, which is not the
		 * cgroup's cost */
		snprintf(name, sizeof(name), "sb-%d", i);
		t0 = bench_now_us();
		if (em_cg_create(root, name, &l, &cg, &err) < 0)
			die("create", &err);
		t1 = bench_now_us();
		pid = held_child(&fd);
		usleep(1000);
		t2 = bench_now_us();
		if (em_cg_attach(cg, pid, &err) < 0)
			die("attach", &err);
		t3 = bench_now_us();
		release(fd, pid);
		t4 = bench_now_us();
		if (em_cg_destroy(cg, false, &err) < 0)
			die("destroy", &err);
		t5 = bench_now_us();
		bench_add(&create, t1 - t0);
		bench_add(&attach, t3 - t2);
		bench_add(&destroy, t5 - t4);
		bench_add(&total, (t1 - t0) + (t3 - t2) + (t5 - t4));
	}
	bench_report("cgroup create (512 MB policy limits)", &create, "us");
	bench_report("cgroup attach (live process)", &attach, "us");
	bench_report("cgroup destroy (empty)", &destroy, "us");
	bench_report("cgroup create+attach+destroy", &total, "us");
	bench_free(&create);
	bench_free(&attach);
	bench_free(&destroy);
	bench_free(&total);
}

static void bench_placement(int runs)
{
	struct bench_samples forked = { 0 }, cloned = { 0 };
	struct em_err err = { 0 };
	struct em_cg *cg;
	int cfd;

	if (em_cg_create(root, "place", NULL, &cg, &err) < 0)
		die("create", &err);
	for (int i = 0; i < runs; i++) {
		/* fork, then attach from the parent while the child waits */
		int fd;
		double t0 = bench_now_us();
		pid_t pid = held_child(&fd);

		if (em_cg_attach(cg, pid, &err) < 0)
			die("attach", &err);
		bench_add(&forked, bench_now_us() - t0);
		release(fd, pid);
	}
	bench_report("fork + em_cg_attach", &forked, "us");
	cfd = em_cg_clone_fd(cg, &err);
	if (cfd < 0) {
		printf("# clone3(CLONE_INTO_CGROUP): %s\n", err.msg);
	} else {
		for (int i = 0; i < runs; i++) {
			struct clone_args args = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD,
						   .cgroup = (uint64_t)cfd };
			int p[2];
			char c;
			double t0 = bench_now_us();
			pid_t pid;

			if (pipe2(p, O_CLOEXEC) < 0)
				exit(1);
			pid = syscall(SYS_clone3, &args, sizeof(args));
			if (pid == 0) {
				close(p[1]);
				if (read(p[0], &c, 1) < 0)
					_exit(1);
				_exit(0);
			}
			if (pid < 0) {
				perror("clone3");
				exit(1);
			}
			close(p[0]);
			if (em_cg_needs_attach(cg) && em_cg_attach(cg, pid, &err) < 0)
				die("attach", &err);
			bench_add(&cloned, bench_now_us() - t0);
			release(p[1], pid);
		}
		bench_report_vs(em_cg_needs_attach(cg) ? "clone3(CLONE_INTO_CGROUP) + attach (hybrid)"
						       : "clone3(CLONE_INTO_CGROUP)",
				&cloned, "us", "fork+attach", &forked);
		close(cfd);
	}
	if (em_cg_destroy(cg, true, &err) < 0)
		die("destroy", &err);
	bench_free(&forked);
	bench_free(&cloned);
}

static void bench_reads(int runs)
{
	struct bench_samples stats = { 0 }, pids = { 0 }, frz = { 0 }, thw = { 0 };
	struct em_err err = { 0 };
	struct em_cg *cg;
	struct em_cg_limits l = { 0 };
	struct em_cg_policy pol;
	int fd;
	pid_t pid = held_child(&fd);

	em_cg_policy_default(&pol);
	if (em_cg_policy_apply(&pol, 512, &l, &err) < 0)
		die("policy", &err);
	if (em_cg_create(root, "reads", &l, &cg, &err) < 0 || em_cg_attach(cg, pid, &err) < 0)
		die("create", &err);
	for (int i = 0; i < runs * 4; i++) {
		struct em_cg_stats st;
		pid_t *v = NULL;
		size_t n;
		double t0 = bench_now_us();

		if (em_cg_stats(cg, &st, &err) < 0)
			die("stats", &err);
		bench_add(&stats, bench_now_us() - t0);
		t0 = bench_now_us();
		if (em_cg_pids(cg, &v, &n, &err) < 0)
			die("pids", &err);
		bench_add(&pids, bench_now_us() - t0);
		free(v);
	}
	for (int i = 0; i < runs; i++) {
		double t0 = bench_now_us(), t1;

		if (em_cg_freeze(cg, &err) < 0)
			die("freeze", &err);
		t1 = bench_now_us();
		if (em_cg_thaw(cg, &err) < 0)
			die("thaw", &err);
		bench_add(&frz, t1 - t0);
		bench_add(&thw, bench_now_us() - t1);
	}
	bench_report("em_cg_stats (all counters)", &stats, "us");
	bench_report("em_cg_pids", &pids, "us");
	bench_report("freeze (1 process, until FROZEN)", &frz, "us");
	bench_report("thaw (1 process, until THAWED)", &thw, "us");
	release(fd, pid);
	if (em_cg_destroy(cg, true, &err) < 0)
		die("destroy", &err);
	bench_free(&stats);
	bench_free(&pids);
	bench_free(&frz);
	bench_free(&thw);
}

static pid_t spinner(struct em_cg *cg)
{
	struct em_err err = { 0 };
	pid_t pid = fork();

	if (pid == 0) {
		volatile unsigned long x = 0;

		for (;;)
			x++;
	}
	if (em_cg_attach(cg, pid, &err) < 0)
		die("attach", &err);
	return pid;
}

static uint64_t cpu_ns(struct em_cg *cg)
{
	struct em_err err = { 0 };
	struct em_cg_stats st;

	if (em_cg_stats(cg, &st, &err) < 0)
		die("stats", &err);
	return st.cpu_usage_ns;
}

static struct em_cg *function(const char *name, uint64_t mb, const char *cpus, bool quota)
{
	struct em_err err = { 0 };
	struct em_cg_policy pol;
	struct em_cg_limits l = { 0 };
	struct em_cg *cg;

	em_cg_policy_default(&pol);
	if (em_cg_policy_apply(&pol, mb, &l, &err) < 0)
		die("policy", &err);
	if (!quota)
		l.cpu_max.quota_us = -1;
	l.cpuset_cpus = (char *)cpus;
	if (em_cg_create(root, name, &l, &cg, &err) < 0)
		die("create", &err);
	return cg;
}

/* spin in every cgroup for secs; fill used[] with CPU seconds */
static void run_spinners(struct em_cg **cgs, int n, int per_cg, double secs, double *used)
{
	struct em_err err = { 0 };
	uint64_t start[4];
	pid_t pids[8];
	int np = 0;

	for (int i = 0; i < n; i++)
		for (int j = 0; j < per_cg; j++)
			pids[np++] = spinner(cgs[i]);
	usleep(300000);
	for (int i = 0; i < n; i++)
		start[i] = cpu_ns(cgs[i]);
	usleep((useconds_t)(secs * 1e6));
	for (int i = 0; i < n; i++)
		used[i] = (cpu_ns(cgs[i]) - start[i]) / 1e9;
	for (int i = 0; i < np; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
	for (int i = 0; i < n; i++)
		if (em_cg_destroy(cgs[i], true, &err) < 0)
			die("destroy", &err);
}

static void bench_shares(double secs)
{
	struct em_cg *cgs[2];
	double used[2];

	cgs[0] = function("f128q", 128, "0", true);
	cgs[1] = function("f512q", 512, "0", true);
	run_spinners(cgs, 2, 1, secs, used);
	printf("%-44s 128 MB %.3f s, 512 MB %.3f s of CPU in %.0f s  ratio=1:%.2f (expect 1:4)\n",
	       "cpu share, one pinned CPU, quota+weight", used[0], used[1], secs, used[1] / used[0]);

	cgs[0] = function("f128w", 128, "0", false);
	cgs[1] = function("f512w", 512, "0", false);
	run_spinners(cgs, 2, 1, secs, used);
	printf("%-44s 128 MB %.3f s, 512 MB %.3f s of CPU in %.0f s  ratio=1:%.2f (expect 1:4)\n",
	       "cpu share, one pinned CPU, weight only", used[0], used[1], secs, used[1] / used[0]);

	cgs[0] = function("f885", 885, NULL, true);
	run_spinners(cgs, 1, 2, secs, used);
	printf("%-44s %.3f CPUs with 2 spinners (expect 0.500: quota 50029/100000)\n",
	       "cpu of a 885 MB function alone", used[0] / secs);
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 200;
	struct em_err err = { 0 };
	char parent[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(parent, sizeof(parent), "ember-bench-%d", (int)getpid());
	if (em_cg_root_open(&root, parent, NULL, &err) < 0)
		die("open cgroup root", &err);
	bench_machine_note();
	printf("# cgroup backend: %s%s\n", em_cg_mode_name(em_cg_root_mode(root)),
	       em_cg_root_mode(root) == EM_CG_HYBRID
		       ? " (v1 controllers, 8 hierarchies, + a unified-hierarchy companion per cgroup)"
		       : "");
	bench_lifecycle(runs);
	bench_placement(runs);
	bench_reads(runs);
	bench_shares(5.0);
	if (em_cg_gc(root, &err) < 0 || em_cg_root_remove(root, &err) < 0)
		die("cleanup", &err);
	em_cg_root_close(root);
	return 0;
}
