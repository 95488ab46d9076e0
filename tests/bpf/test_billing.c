/* tests/bpf/test_billing.c — billing accuracy against ground truth, with real cgroups.
 *
 * Ground truth comes from the kernel's own per-task accounting as the workload sees it: each worker
 * reads its CPU clock (all threads, plus reaped children) and CLOCK_MONOTONIC when it receives the
 * request and when it is done (helpers.h). The billing window is opened before the request is
 * written and closed after the report is read, so wall_ns exceeds the workload's own span by two
 * wake-ups; the tolerances are the (cpu 2 %, wall 1 ms). Every accuracy line is printed
 * ("bpf-acc: ...") so the figures can be quoted.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpf/billing_api.h"
#include "common/err.h"
#include "common/log.h"
#include "helpers.h"

#define MS 1000000ull

static struct em_log warn_log;
/* In the test VM (qemu without KVM: every syscall and wake-up costs ~10x, and translation hiccups
 * of 10 ms happen) the work around a worker's clock reads is not negligible: there the checks
 * against the workload's own clocks only report, and what is asserted is the exact agreement with
 * the cgroup's own counters and the order of the window's ends. On a real machine everything is
 * asserted. EM_TEST_VM=1 forces VM mode. */
static bool in_vm;

static void suite_init(void)
{
	char cmdline[4096] = "";
	FILE *f = fopen("/proc/cmdline", "r");

	em_log_init_fd(&warn_log, 2, EM_LOG_WARN, EM_LOG_TEXT);
	tcg_cleanup_stale();
	if (f) {
		if (!fgets(cmdline, sizeof(cmdline), f))
			cmdline[0] = '\0';
		fclose(f);
	}
	in_vm = getenv("EM_TEST_VM") || strstr(cmdline, "ember.args="); /* tools/vm's command line */
}

TestSuite(billing, .init = suite_init, .fini = tcg_cleanup_all, .timeout = 60);

/* A check against the workload's own clocks: asserted on a real machine, reported in the VM. */
#define expect_workload(cond, ...)                                                  \
	do {                                                                        \
		if (in_vm && !(cond)) {                                             \
			fprintf(stderr, "bpf-acc: (VM) ");                          \
			fprintf(stderr, __VA_ARGS__);                               \
			fprintf(stderr, "\n");                                      \
		} else {                                                            \
			cr_expect(cond, __VA_ARGS__);                               \
		}                                                                   \
	} while (0)

static struct em_bill *bill_open(const struct em_bill_opts *o)
{
	struct em_bill_opts def = { .log = &warn_log };
	struct em_err err = { 0 };
	struct em_bill *b = NULL;

	if (!o)
		o = &def;
	cr_assert_eq(em_bill_open(&b, o, &err), 0, "%s", err.msg);
	return b;
}

static void track(struct em_bill *b, const struct tcg *c, uint64_t memory_mb)
{
	struct em_bill_cg cg;
	struct em_err err = { 0 };

	tcg_bill_cg(c, &cg, memory_mb);
	cr_assert_eq(em_bill_track(b, &cg, &err), 0, "%s", err.msg);
}

/* Start n workers of `wk` inside cgroup c (moved while they are blocked). */
static void workers_in(struct tcg *c, struct worker *ws, int n, const struct work *wk)
{
	for (int i = 0; i < n; i++) {
		worker_start(&ws[i], wk);
		if (c)
			tcg_add(c, ws[i].pid);
	}
}

struct truth {
	uint64_t cpu, span;
	uint64_t first, last;   /* CLOCK_MONOTONIC: first wake-up, last response ready */
};

static struct truth truth_of(const struct report *r, int n)
{
	struct truth t = { 0 };
	uint64_t first = UINT64_MAX, last = 0;

	for (int i = 0; i < n; i++) {
		t.cpu += r[i].cpu_done - r[i].cpu_wake;
		if (r[i].t_wake < first)
			first = r[i].t_wake;
		if (r[i].t_done > last)
			last = r[i].t_done;
	}
	t.span = last - first;
	t.first = first;
	t.last = last;
	return t;
}

/* One window around n workers' requests; returns the truth, fills rec. */
static struct truth run_window(struct em_bill *b, struct tcg *c, struct worker *ws, int n,
			       struct em_bill_record *rec)
{
	struct em_err err = { 0 };
	struct report reps[8];

	cr_assert_eq(em_bill_window_open(b, c->id, NULL, &err), 0, "%s", err.msg);
	for (int i = 0; i < n; i++)
		worker_go(&ws[i]);
	for (int i = 0; i < n; i++)
		worker_response(&ws[i]);
	cr_assert_eq(em_bill_window_close(b, c->id, rec, &err), 0, "%s", err.msg);
	for (int i = 0; i < n; i++)
		worker_finish(&ws[i], &reps[i]);
	return truth_of(reps, n);
}

static double pct(uint64_t a, uint64_t b)
{
	return b ? 100.0 * ((double)a - (double)b) / (double)b : 0;
}

static void print_acc(const char *name, const struct em_bill_record *r, const struct truth *t)
{
	fprintf(stderr,
		"bpf-acc: %-22s cpu=%8.3f ms truth=%8.3f (%+.2f%%) cgroup=%8.3f  wall=%8.3f ms "
		"span=%8.3f (%+.3f ms) host=%8.3f switches=%" PRIu64 " missed=%" PRIu64 "\n",
		name, r->cpu_ns / 1e6, t->cpu / 1e6, pct(r->cpu_ns, t->cpu), r->cg_cpu_ns / 1e6,
		r->wall_ns / 1e6, t->span / 1e6, ((double)r->wall_ns - (double)t->span) / 1e6,
		r->host_wall_ns / 1e6, r->nr_switch, r->nr_missed);
	if (getenv("EM_BILL_TEST_DEBUG"))
		fprintf(stderr, "bpf-acc:   from open: start %+.3f wake %+.3f ready %+.3f end %+.3f "
			"close %+.3f ms\n", ((double)r->start_ns - r->open_ns) / 1e6,
			((double)t->first - r->open_ns) / 1e6, ((double)t->last - r->open_ns) / 1e6,
			((double)r->end_ns - r->open_ns) / 1e6, ((double)r->close_ns - r->open_ns) / 1e6);
}

/* The cgroup's own usage is the kernel's sum of the same runs: equal once they are over (20 µs:
 * v2 counts in µs). A run still on a CPU at either end (the worker preempted right after its
 * response) is timed by the clock here, while the cgroup counts it only up to its last tick: up to
 * a tick (4 ms at HZ=250) apart then. */
static void expect_cg_exact(const struct em_bill_record *r)
{
	/* Equal in practice (the same scheduler runtime feeds both); the slack covers a thread
	 * exiting at the window's edge, whose last runtime reaches the cgroup counter a moment
	 * apart, and TCG's slowness in the VM. */
	uint64_t tol = r->flags & EM_BILL_F_IN_FLIGHT ? 5000000 : in_vm ? 1000000 : 100000;

	if (r->flags & EM_BILL_F_CG_CPU)
		cr_expect(r->cpu_ns + tol >= r->cg_cpu_ns && r->cpu_ns <= r->cg_cpu_ns + tol,
			  "cpu_ns %.3f ms vs the cgroup's usage %.3f ms (flags %#x)", r->cpu_ns / 1e6,
			  r->cg_cpu_ns / 1e6, r->flags);
}

/* Within tol_pct of the task's own loop time, or 1 ms: the window also holds the worker's work
 * around its loop (wake-up, answering), which a loaded 2-vCPU VM stretches to ~0.7 ms; for the
 * 50 ms loops 2 % is 1 ms anyway. That the BPF figure is exact is expect_cg_exact's check. */
static void expect_cpu_within(const struct em_bill_record *r, uint64_t truth, double tol_pct)
{
	double d = pct(r->cpu_ns, truth);
	uint64_t diff = r->cpu_ns > truth ? r->cpu_ns - truth : truth - r->cpu_ns;

	if (diff <= 1000000)
		d = 0;
	if (in_vm && (d > tol_pct || d < -tol_pct))
		fprintf(stderr, "bpf-acc: (VM) cpu_ns %.3f ms vs truth %.3f ms: %+.2f%%\n",
			r->cpu_ns / 1e6, truth / 1e6, d);
	else
		cr_expect(d <= tol_pct && d >= -tol_pct,
			  "cpu_ns %.3f ms vs truth %.3f ms: %+.2f%% (tol %.1f%%)", r->cpu_ns / 1e6,
			  truth / 1e6, d, tol_pct);
	expect_cg_exact(r);
}

static void expect_wall_within(const struct em_bill_record *r, uint64_t want, uint64_t tol)
{
	uint64_t d = r->wall_ns > want ? r->wall_ns - want : want - r->wall_ns;

	if (in_vm && d > tol)
		fprintf(stderr, "bpf-acc: (VM) wall_ns %.3f ms vs %.3f ms\n", r->wall_ns / 1e6,
			want / 1e6);
	else
		cr_expect_leq(d, tol, "wall_ns %.3f ms vs %.3f ms: off by %.3f ms", r->wall_ns / 1e6,
			      want / 1e6, d / 1e6);
}

/* wall_ns against the workload's own span: never shorter (the instance runs before it reads its
 * clock and after it has the response ready), never longer than the host's window, and within
 * `tol` of the span. Against the nominal duration too when the workload itself kept to it: on a
 * busy machine a 50 ms sleep may take 51 ms, and then billing 51 ms is right. */
static void expect_wall(const struct em_bill_record *r, const struct truth *t, uint64_t nominal,
			uint64_t tol)
{
	cr_expect_geq(r->wall_ns + 20000, t->span, "wall_ns %.3f ms shorter than the span %.3f ms",
		      r->wall_ns / 1e6, t->span / 1e6);
	cr_expect_leq(r->wall_ns, r->host_wall_ns, "wall_ns %.3f ms beyond the host's window %.3f",
		      r->wall_ns / 1e6, r->host_wall_ns / 1e6);
	expect_wall_within(r, t->span, tol);
	if (!nominal)
		return;
	if (t->span < nominal + 500000)
		expect_wall_within(r, nominal, tol);
	else
		fprintf(stderr, "bpf-acc: the workload itself took %.3f ms for %.0f ms (busy machine); "
			"wall checked against that\n", t->span / 1e6, nominal / 1e6);
}

Test(billing, busy_50ms)
{
	struct em_bill *b = bill_open(NULL);
	struct tcg *c = tcg_new(TCG_CPUACCT);
	struct work wk = { .kind = WORK_SPIN_WALL, .ms = 50 };
	struct em_bill_record r;
	struct worker w;
	struct truth t;

	track(b, c, 128);
	workers_in(c, &w, 1, &wk);
	t = run_window(b, c, &w, 1, &r);
	print_acc("busy 50 ms", &r, &t);
	expect_cpu_within(&r, t.cpu, 2);
	expect_wall(&r, &t, 50 * MS, 1 * MS);
	cr_expect(r.flags & EM_BILL_F_CG_CPU);
	cr_expect(!(r.flags & EM_BILL_F_CPU_MISMATCH));
	cr_expect_geq(r.cpu_ns, 40 * MS, "a 50 ms busy loop got %.3f ms of CPU", r.cpu_ns / 1e6);
	em_bill_close(b);
}

Test(billing, sleep_50ms)
{
	struct em_bill *b = bill_open(NULL);
	struct tcg *c = tcg_new(TCG_CPUACCT);
	struct work wk = { .kind = WORK_SLEEP, .ms = 50 };
	struct em_bill_record r;
	struct worker w;
	struct truth t;

	track(b, c, 128);
	workers_in(c, &w, 1, &wk);
	t = run_window(b, c, &w, 1, &r);
	print_acc("sleep 50 ms", &r, &t);
	expect_workload(r.cpu_ns < 1 * MS, "cpu_ns %.3f ms for a sleep", r.cpu_ns / 1e6);
	cr_expect_gt(r.cpu_ns, 0, "the wake-ups ran in the cgroup");
	expect_cg_exact(&r);
	expect_wall(&r, &t, 50 * MS, 1 * MS);
	em_bill_close(b);
}

Test(billing, two_children_parallel)
{
	struct em_bill *b = bill_open(NULL);
	struct tcg *c = tcg_new(TCG_CPUACCT);
	struct work wk = { .kind = WORK_SPIN_CPU, .ms = 30 };
	struct em_bill_record r;
	struct worker w[2];
	struct truth t;

	track(b, c, 128);
	workers_in(c, w, 2, &wk);
	t = run_window(b, c, w, 2, &r);
	print_acc("2 children x 30 ms", &r, &t);
	expect_cpu_within(&r, t.cpu, 2);
	expect_cpu_within(&r, 60 * MS, 2);
	/* Both run at once if two CPUs are free; on a busy shared machine they overlap less. */
	expect_wall(&r, &t, 30 * MS, 1 * MS);
	em_bill_close(b);
}

Test(billing, threads_counted)
{
	struct em_bill *b = bill_open(NULL);
	struct tcg *c = tcg_new(TCG_CPUACCT);
	struct work wk = { .kind = WORK_SPIN_CPU, .ms = 20, .threads = 3 };
	struct em_bill_record r;
	struct worker w;
	struct truth t;

	track(b, c, 128);
	workers_in(c, &w, 1, &wk);
	t = run_window(b, c, &w, 1, &r);
	print_acc("3 threads x 20 ms", &r, &t);
	{
		struct em_bill_prog_stats ps;
		struct em_err err = { 0 };

		cr_assert_eq(em_bill_prog_stats(b, &ps, &err), 0, "%s", err.msg);
		cr_expect_eq(ps.recursion_misses, 0);
		cr_expect_gt(ps.run_cnt + 1, 0);
	}
	expect_cpu_within(&r, t.cpu, 2);
	expect_cpu_within(&r, 60 * MS, 10); /* thread creation and exit are in the window too */
	expect_wall(&r, &t, 0, 1 * MS);
	em_bill_close(b);
}

Test(billing, exec_child_counted)
{
	struct em_bill *b;
	struct tcg *c;
	struct work wk = { .kind = WORK_EXEC, .ms = 30 };
	struct em_bill_record r;
	struct worker w;
	struct truth t;

	if (access(emtest_path(), X_OK))
		cr_skip_test("build/tools/emtest is not built (make rootfs)");
	b = bill_open(NULL);
	c = tcg_new(TCG_CPUACCT);
	track(b, c, 128);
	workers_in(c, &w, 1, &wk);
	t = run_window(b, c, &w, 1, &r);
	print_acc("fork+exec emtest 30 ms", &r, &t);
	expect_cpu_within(&r, t.cpu, 2);
	expect_wall(&r, &t, 0, 1 * MS);
	cr_expect_geq(r.cpu_ns, 25 * MS);
	em_bill_close(b);
}

Test(billing, quota_throttling)
{
	struct em_bill *b = bill_open(NULL);
	struct tcg *c = tcg_new(TCG_CPUACCT | TCG_CPU);
	struct work wk = { .kind = WORK_SPIN_CPU, .ms = 30 };
	struct em_bill_record r;
	struct worker w;
	struct truth t;

	/* 20 % of one CPU: 4 ms every 20 ms. */
	tcg_set_quota(c, 4000, 20000);
	track(b, c, 128);
	workers_in(c, &w, 1, &wk);
	t = run_window(b, c, &w, 1, &r);
	print_acc("30 ms under 20% quota", &r, &t);
	fprintf(stderr, "bpf-acc: %-22s throttled=%8.3f ms in %" PRIu64 " periods\n", "",
		r.throttled_ns / 1e6, r.nr_throttled);
	expect_cpu_within(&r, t.cpu, 2);
	expect_cpu_within(&r, 30 * MS, 10);
	/* The response itself may wait for the next period: up to one period past the span. */
	expect_wall(&r, &t, 0, 20 * MS + 1 * MS);
	expect_workload(r.wall_ns >= 4 * r.cpu_ns, "wall %.3f ms should grow with throttling (cpu %.3f)",
			r.wall_ns / 1e6, r.cpu_ns / 1e6);
	cr_expect(r.flags & EM_BILL_F_THROTTLE);
	cr_expect_geq(r.nr_throttled, 3);
	cr_expect_gt(r.throttled_ns, 30 * MS, "throttled %.3f ms", r.throttled_ns / 1e6);
	em_bill_close(b);
}

Test(billing, no_bleed_between_cgroups)
{
	struct em_bill *b = bill_open(NULL);
	struct tcg *busy = tcg_new(TCG_CPUACCT), *idle = tcg_new(TCG_CPUACCT);
	struct work spin = { .kind = WORK_SPIN_CPU, .ms = 40 }, nap = { .kind = WORK_SLEEP, .ms = 40 };
	struct em_bill_record rb, ri;
	struct em_err err = { 0 };
	struct report repb, repi;
	struct worker wb, wi;
	struct truth tb, ti;

	track(b, busy, 128);
	track(b, idle, 128);
	workers_in(busy, &wb, 1, &spin);
	workers_in(idle, &wi, 1, &nap);
	cr_assert_eq(em_bill_window_open(b, busy->id, NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(em_bill_window_open(b, idle->id, NULL, &err), 0, "%s", err.msg);
	worker_go(&wb);
	worker_go(&wi);
	worker_response(&wi);
	cr_assert_eq(em_bill_window_close(b, idle->id, &ri, &err), 0, "%s", err.msg);
	worker_response(&wb);
	cr_assert_eq(em_bill_window_close(b, busy->id, &rb, &err), 0, "%s", err.msg);
	worker_finish(&wb, &repb);
	worker_finish(&wi, &repi);
	tb = truth_of(&repb, 1);
	ti = truth_of(&repi, 1);
	print_acc("concurrent busy", &rb, &tb);
	print_acc("concurrent idle", &ri, &ti);
	expect_cpu_within(&rb, tb.cpu, 2);
	expect_wall(&rb, &tb, 40 * MS, 1 * MS);
	expect_wall(&ri, &ti, 40 * MS, 1 * MS);
	/* Bleeding would put (part of) the busy cgroup's 40 ms on the idle one. What the idle
	 * cgroup is charged is its own: it equals the kernel's counter for that cgroup exactly
	 * (expect_cg_exact). On a loaded machine its process's kernel-side work (wake-ups, exit)
	 * can reach ~1 ms beyond what the worker's own clock sees, so the bound is 2 ms, still
	 * twenty times below any bleed. */
	expect_workload(ri.cpu_ns < 2 * MS, "idle cgroup charged %.3f ms (its own clock: %.3f ms)",
			ri.cpu_ns / 1e6, ti.cpu / 1e6);
	expect_cg_exact(&ri);
	em_bill_close(b);
}

Test(billing, untracked_not_counted)
{
	struct em_bill *b = bill_open(NULL);
	struct tcg *tracked = tcg_new(TCG_CPUACCT), *other = tcg_new(0);
	struct work nap = { .kind = WORK_SLEEP, .ms = 40 }, spin = { .kind = WORK_SPIN_CPU, .ms = 40 };
	struct em_bill_record r;
	struct em_err err = { 0 };
	struct report rep, rep_u[2];
	struct worker w, wu[2];
	uint64_t end;

	track(b, tracked, 128);
	workers_in(tracked, &w, 1, &nap);
	workers_in(other, &wu[0], 1, &spin); /* in an untracked cgroup */
	workers_in(NULL, &wu[1], 1, &spin);  /* where the test runs */
	cr_assert_eq(em_bill_window_open(b, tracked->id, NULL, &err), 0, "%s", err.msg);
	worker_go(&w);
	worker_go(&wu[0]);
	worker_go(&wu[1]);
	end = mono_ns() + 20 * MS; /* and the test itself busy */
	while (mono_ns() < end)
		;
	worker_response(&w);
	worker_response(&wu[0]);
	worker_response(&wu[1]);
	cr_assert_eq(em_bill_window_close(b, tracked->id, &r, &err), 0, "%s", err.msg);
	for (int i = 0; i < 2; i++)
		worker_finish(&wu[i], &rep_u[i]);
	worker_finish(&w, &rep);
	fprintf(stderr, "bpf-acc: %-22s cpu=%8.3f ms (own %.3f ms; 100 ms of untracked work ran "
		"meanwhile)\n", "untracked busy around", r.cpu_ns / 1e6,
		(rep.cpu_done - rep.cpu_wake) / 1e6);
	expect_workload(r.cpu_ns < 1 * MS, "tracked sleeper charged %.3f ms", r.cpu_ns / 1e6);
	expect_cg_exact(&r);
	em_bill_close(b);
}

/* A window read while a task is on a CPU counts its run so far (no context switch needed): without
 * that, a spinning task that is never switched out would read ~0. The part of a run in progress at
 * either end of a window is timed with CLOCK_MONOTONIC, while completed runs carry the scheduler's
 * own account, which leaves out what the hypervisor stole from the vCPU (none is reported on this
 * VM). The truth here is the task's CPU clock read from another process, which the kernel brings
 * up to date only at its ticks and switches: up to a tick behind at each end. And a run whose
 * switch-in reached no tracepoint (the guest agent preempted the task: billing.bpf.c) is counted
 * from the scheduler tick that finds it, so a reading may miss up to a tick of it. Hence: within
 * 10 ms of the truth (two ticks at HZ=250, and slack), asserted on a real machine; at least half
 * of it everywhere. Before that was fixed, such runs read 25 ms or 0 of 50.
 * Above, the host's window bounds it, but for where the two clocks disagree on a run in progress
 * at the open, whose share of the window is its scheduler's account minus the open's estimate: the
 * program stamps a switch from the rq clock (seen up to 70 µs ahead of a clock read at the same
 * switch), and the scheduler charges a run from its own clock at the switch, which after a wake-up
 * is the wake-up's (seen 96 µs before the switch, out of idle). 1 ms covers both many times over
 * and still catches a run counted twice. (Billing windows open and close on an idle instance,
 * where no run is in progress.) */
Test(billing, running_task_counted_mid_window)
{
	struct em_bill *b = bill_open(NULL);
	struct tcg *c = tcg_new(0);
	struct work wk = { .kind = WORK_SPIN_WALL, .ms = 300 };
	struct em_bill_record r;
	struct em_err err = { 0 };
	uint64_t c0, c1, total;
	struct report rep;
	struct worker w;

	track(b, c, 128);
	workers_in(c, &w, 1, &wk);
	worker_go(&w);
	sleep_ms(20);
	cr_assert_eq(em_bill_window_open(b, c->id, NULL, &err), 0, "%s", err.msg);
	c0 = proc_cpu_ns(w.pid);
	sleep_ms(50);
	c1 = proc_cpu_ns(w.pid);
	cr_assert_eq(em_bill_window_read(b, c->id, &r, &err), 0, "%s", err.msg);
	fprintf(stderr, "bpf-acc: %-22s cpu=%8.3f ms truth=%8.3f (%+.2f%%) host wall=%8.3f "
		"switches=%" PRIu64 " missed=%" PRIu64 "\n", "mid-run read", r.cpu_ns / 1e6,
		(c1 - c0) / 1e6, pct(r.cpu_ns, c1 - c0), r.host_wall_ns / 1e6, r.nr_switch,
		r.nr_missed);
	cr_expect_geq(r.cpu_ns, (c1 - c0) / 2, "cpu %.3f ms vs the task's own %.3f ms",
		      r.cpu_ns / 1e6, (c1 - c0) / 1e6);
	expect_workload(r.cpu_ns + 10 * MS >= c1 - c0, "cpu %.3f ms short of the task's own %.3f ms "
			"by more than 10 ms (missed=%" PRIu64 ")", r.cpu_ns / 1e6, (c1 - c0) / 1e6,
			r.nr_missed);
	cr_expect_leq(r.cpu_ns, r.host_wall_ns + (in_vm ? 5 : 1) * MS, "cpu %.3f ms > wall %.3f ms",
		      r.cpu_ns / 1e6, r.host_wall_ns / 1e6);
	cr_assert_eq(em_bill_cpu_total(b, c->id, &total, &err), 0, "%s", err.msg);
	cr_expect_geq(total, r.cpu_ns);
	worker_response(&w);
	cr_assert_eq(em_bill_window_close(b, c->id, &r, &err), 0, "%s", err.msg);
	worker_finish(&w, &rep);
	em_bill_close(b);
}

Test(billing, raw_tp_fallback)
{
	struct em_bill_opts o = { .log = &warn_log, .force_raw_tp = true };
	struct em_bill *b = bill_open(&o);
	struct tcg *c = tcg_new(TCG_CPUACCT);
	struct work wk = { .kind = WORK_SPIN_CPU, .ms = 30 };
	struct em_bill_stats st;
	struct em_bill_record r;
	struct worker w;
	struct truth t;

	em_bill_get_stats(b, &st);
	cr_expect_str_eq(st.attach, "raw_tp/sched_switch");
	track(b, c, 128);
	workers_in(c, &w, 1, &wk);
	t = run_window(b, c, &w, 1, &r);
	print_acc("raw_tp 30 ms", &r, &t);
	expect_cpu_within(&r, t.cpu, 2);
	expect_wall(&r, &t, 0, 1 * MS);
	em_bill_close(b);
}

Test(billing, default_attach_is_tp_btf)
{
	struct em_bill *b = bill_open(NULL);
	struct em_bill_stats st;

	em_bill_get_stats(b, &st);
	cr_expect_str_eq(st.attach, "tp_btf/sched_switch");
	cr_expect_eq(st.nr_cpus, (uint32_t)sysconf(_SC_NPROCESSORS_CONF));
	em_bill_close(b);
}

Test(billing, billed_ms_and_gb_seconds)
{
	struct em_bill_opts o = { .log = &warn_log, .granularity_ms = 100 };
	struct em_bill *b1 = bill_open(NULL), *b100 = bill_open(&o);
	struct tcg *c = tcg_new(0);
	struct work wk = { .kind = WORK_SLEEP, .ms = 30 };
	struct em_bill_window_opts wo = { .start = EM_BILL_START_COLD, .init_ns = 123456789 };
	struct em_bill_cg cg;
	struct em_bill_record r1, r100;
	struct em_err err = { 0 };
	struct report rep;
	struct worker w;

	tcg_bill_cg(c, &cg, 512);
	cr_assert_eq(em_bill_track(b1, &cg, &err), 0, "%s", err.msg);
	cr_assert_eq(em_bill_track(b100, &cg, &err), 0, "%s", err.msg);
	workers_in(c, &w, 1, &wk);
	cr_assert_eq(em_bill_window_open(b1, c->id, &wo, &err), 0, "%s", err.msg);
	cr_assert_eq(em_bill_window_open(b100, c->id, NULL, &err), 0, "%s", err.msg);
	worker_go(&w);
	worker_response(&w);
	cr_assert_eq(em_bill_window_close(b1, c->id, &r1, &err), 0, "%s", err.msg);
	cr_assert_eq(em_bill_window_close(b100, c->id, &r100, &err), 0, "%s", err.msg);
	worker_finish(&w, &rep);

	cr_expect_eq(r1.billed_ms, (r1.wall_ns + MS - 1) / MS, "ceil(%" PRIu64 " ns) = %" PRIu64,
		     r1.wall_ns, r1.billed_ms);
	cr_expect_geq(r1.billed_ms, 30, "wall %" PRIu64 " host %" PRIu64 " flags %#x start-open %" PRId64 " end-open %" PRId64 " switches %" PRIu64 " missed %" PRIu64, r1.wall_ns, r1.host_wall_ns, r1.flags, (int64_t)(r1.start_ns - r1.open_ns), (int64_t)(r1.end_ns - r1.open_ns), r1.nr_switch, r1.nr_missed);
	cr_expect_eq(r100.billed_ms, 100, "30 ms at 100 ms granularity billed %" PRIu64,
		     r100.billed_ms);
	cr_expect_eq(r100.mb_ms, 512 * 100);
	cr_expect_float_eq(em_bill_gb_seconds(&r100), 0.05, 1e-9);
	cr_expect_eq(r1.memory_mb, 512);
	cr_expect_eq(r1.start, EM_BILL_START_COLD);
	cr_expect_eq(r1.init_ns, 123456789);
	cr_expect_str_eq(em_bill_start_name(r1.start), "cold");
	cr_expect_eq(r100.start, EM_BILL_START_UNKNOWN);
	em_bill_close(b1);
	em_bill_close(b100);
}

Test(billing, memory_peak)
{
	struct em_bill *b = bill_open(NULL);
	struct tcg *c = tcg_new(TCG_MEMORY);
	struct work wk = { .kind = WORK_TOUCH, .mb = 64, .ms = 5 };
	struct em_bill_record r;
	struct worker w;

	tcg_set_memory_max(c, 256ull << 20);
	track(b, c, 256);
	workers_in(c, &w, 1, &wk);
	run_window(b, c, &w, 1, &r);
	fprintf(stderr, "bpf-acc: %-22s peak=%.1f MB\n", "touch 64 MB", r.mem_peak_bytes / 1048576.0);
	cr_expect(r.flags & EM_BILL_F_MEM_PEAK);
	/* v1 resets max_usage at the open; v2 resets memory.peak per fd only from 6.12 */
	if (!tcg_pure_v2())
		cr_expect(!(r.flags & EM_BILL_F_MEM_PEAK_LIFE));
	cr_expect_geq(r.mem_peak_bytes, 64ull << 20);
	cr_expect_lt(r.mem_peak_bytes, 256ull << 20);
	em_bill_close(b);
}

/* The cross-check warns when the cgroup's own usage disagrees: point it at another cgroup's
 * counters on purpose. */
Test(billing, cross_check_warns)
{
	char path[] = "/tmp/ember-test-bpf-log-XXXXXX", buf[4096] = "";
	struct em_log log;
	struct em_bill_opts o = { .log = &log };
	struct em_bill *b;
	struct tcg *c = tcg_new(0), *decoy = tcg_new(TCG_CPUACCT);
	struct work wk = { .kind = WORK_SPIN_CPU, .ms = 30 };
	struct em_bill_stats st;
	struct em_bill_record r;
	struct em_bill_cg cg;
	struct em_err err = { 0 };
	struct worker w;
	int fd = mkstemp(path);
	ssize_t n;

	cr_assert_geq(fd, 0);
	unlink(path);
	em_log_init_fd(&log, fd, EM_LOG_WARN, EM_LOG_TEXT);
	b = bill_open(&o);
	tcg_bill_cg(c, &cg, 128);
	/* the decoy's counters stand in for the cgroup's own */
	if (tcg_pure_v2())
		cg.unified = decoy->unified;
	else
		cg.cpuacct = decoy->cpuacct;
	cr_assert_eq(em_bill_track(b, &cg, &err), 0, "%s", err.msg);
	workers_in(c, &w, 1, &wk);
	run_window(b, c, &w, 1, &r);
	cr_expect(r.flags & EM_BILL_F_CG_CPU);
	cr_expect(r.flags & EM_BILL_F_CPU_MISMATCH);
	em_bill_get_stats(b, &st);
	cr_expect_eq(st.windows, 1);
	cr_expect_eq(st.cpu_mismatches, 1);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	cr_assert_gt(n, 0, "nothing logged");
	cr_expect(strstr(buf, "differ by"), "log: %s", buf);
	em_bill_close(b);
	close(fd);
}

Test(billing, no_btf_is_a_clear_error)
{
	struct em_bill_opts o = { .btf_path = "/nonexistent/vmlinux" };
	struct em_err err = { 0 };
	struct em_bill *b = NULL;

	cr_assert_eq(em_bill_open(&b, &o, &err), -ENOENT);
	cr_expect_null(b);
	cr_expect(strstr(err.msg, "kernel BTF /nonexistent/vmlinux is missing"), "%s", err.msg);
	cr_expect(strstr(err.msg, "CONFIG_DEBUG_INFO_BTF"), "%s", err.msg);
}

Test(billing, no_permission_is_a_clear_error)
{
	int p[2];
	pid_t pid;
	char msg[1100] = "";
	int status;
	ssize_t n;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct em_err err = { 0 };
		struct em_bill *b;
		int ret;

		close(p[0]);
		/* nobody: no capabilities left */
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(2);
		ret = em_bill_open(&b, NULL, &err);
		if (write(p[1], err.msg, strlen(err.msg)) < 0)
			_exit(3);
		_exit(ret == -EPERM ? 0 : 1);
	}
	close(p[1]);
	n = read(p[0], msg, sizeof(msg) - 1);
	close(p[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x, message: %s", status,
		  n > 0 ? msg : "");
	/* 6.18 lets anyone read the kernel's BTF and refuses the load; 6.1 refuses the BTF */
	cr_expect((strstr(msg, "load BPF program") || strstr(msg, "kernel BTF")) &&
		  strstr(msg, "root") && strstr(msg, "CAP_BPF"), "message: %s", msg);
}

Test(billing, track_errors_and_slot_reuse)
{
	struct em_bill_opts o = { .log = &warn_log, .max_cgroups = 2 };
	struct em_bill *b = bill_open(&o);
	struct tcg *c1 = tcg_new(0), *c2 = tcg_new(0), *c3 = tcg_new(0);
	struct em_bill_cg cg;
	struct em_bill_record r;
	struct em_err err = { 0 };
	struct em_bill_stats st;

	track(b, c1, 128);
	tcg_bill_cg(c1, &cg, 128);
	cr_expect_eq(em_bill_track(b, &cg, &err), -EEXIST, "%s", err.msg);
	track(b, c2, 128);
	tcg_bill_cg(c3, &cg, 128);
	cg.cgid = 0; /* from the path */
	cr_expect_eq(em_bill_track(b, &cg, &err), -ENOSPC, "%s", err.msg);
	cr_expect_eq(em_bill_window_close(b, c1->id, &r, &err), -ENOENT);
	cr_expect_eq(em_bill_window_open(b, c3->id, NULL, &err), -ENOENT);
	cr_expect(strstr(err.msg, "not tracked"), "%s", err.msg);
	cr_assert_eq(em_bill_window_open(b, c1->id, NULL, &err), 0, "%s", err.msg);
	cr_expect_eq(em_bill_window_open(b, c1->id, NULL, &err), -EBUSY);
	/* churn: untrack and track again, many times over 2 slots */
	for (int i = 0; i < 50; i++) {
		struct tcg *x = i % 2 ? c3 : c1;

		cr_assert_eq(em_bill_untrack(b, x->id, &err), 0, "%s", err.msg);
		tcg_bill_cg(i % 2 ? c1 : c3, &cg, 128);
		cr_assert_eq(em_bill_track(b, &cg, &err), 0, "round %d: %s", i, err.msg);
	}
	em_bill_get_stats(b, &st);
	cr_expect_eq(st.tracked, 2);
	cr_expect_eq(em_bill_untrack(b, 42, &err), -ENOENT);
	em_bill_close(b);
}

/* The program's cgroup table has 4 ways per group; cgroups beyond a full group go to a hash map.
 * One group for 6 cgroups: 2 of them overflow, and are charged all the same, before and after
 * churn in both places. */
Test(billing, table_overflow_to_hash)
{
	struct em_bill_opts o = { .log = &warn_log, .max_cgroups = 8, .table_groups = 1 };
	struct em_bill *b = bill_open(&o);
	struct tcg *c[6];
	struct work wk = { .kind = WORK_SPIN_CPU, .ms = 20 };
	struct em_bill_record r;
	struct em_err err = { 0 };
	struct em_bill_stats st;
	struct worker w;
	struct truth t;

	for (int i = 0; i < 6; i++) {
		c[i] = tcg_new(TCG_CPUACCT);
		track(b, c[i], 128);
	}
	em_bill_get_stats(b, &st);
	cr_expect_eq(st.tracked, 6);
	for (int round = 0; round < 2; round++) {
		/* the last two tracked overflowed; the first is in the table */
		int which[] = { 5, 4, 0 };

		for (int k = 0; k < 3; k++) {
			workers_in(c[which[k]], &w, 1, &wk);
			t = run_window(b, c[which[k]], &w, 1, &r);
			print_acc(round ? "overflow, after churn" : "overflow to hash", &r, &t);
			expect_cpu_within(&r, t.cpu, 2);
			cr_expect_geq(r.cpu_ns, 15 * MS, "cgroup %d charged %.3f ms", which[k],
				      r.cpu_ns / 1e6);
		}
		/* churn: free a table way and an overflowed one, track them again (5 goes back to
		 * the table now, 0 overflows) */
		cr_assert_eq(em_bill_untrack(b, c[0]->id, &err), 0, "%s", err.msg);
		cr_assert_eq(em_bill_untrack(b, c[5]->id, &err), 0, "%s", err.msg);
		track(b, c[5], 128);
		track(b, c[0], 128);
	}
	/* an untracked cgroup that hashes to the overflowed group is not charged */
	cr_assert_eq(em_bill_untrack(b, c[4]->id, &err), 0, "%s", err.msg);
	{
		uint64_t total = 0;

		cr_expect_eq(em_bill_cpu_total(b, c[4]->id, &total, &err), -ENOENT);
	}
	em_bill_close(b);
}
