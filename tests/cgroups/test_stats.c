/* tests/cgroups/test_stats.c — stats are the kernel's numbers: CPU usage grows with work and
 * splits into user and system, pids are counted, the limits read back. */
#include "helpers.h"

TestSuite(cg_stats, .init = t_setup, .fini = t_teardown, .timeout = 60);

static int spin_ms(long ms)
{
	double end = t_now_s() + ms / 1e3;
	volatile unsigned long x = 0;

	/* look at the clock rarely: under TCG clock_gettime may be a real syscall (system time) */
	while (t_now_s() < end)
		for (int i = 0; i < 100000; i++)
			x++;
	return 0;
}

static uint64_t kernel_usage_ns(struct em_cg *cg)
{
	if (t_is_v2()) {
		char *s = strstr(t_knob(cg, "", "", "cpu.stat"), "usage_usec ");

		cr_assert_not_null(s);
		return strtoull(s + 11, NULL, 10) * 1000;
	}
	return strtoull(t_knob(cg, "cpuacct", "cpuacct.usage", ""), NULL, 10);
}

Test(cg_stats, cpu_and_pids)
{
	struct em_err err = { 0 };
	struct em_cg_limits l = { 0 };
	struct em_cg_stats st;
	struct em_cg *cg;
	pid_t pid;

	l.pids_max.set = true;
	l.pids_max.v = 100;
	cg = t_create("ember-test-stats", &l);
	cr_assert_eq(em_cg_stats(cg, &st, &err), 0, "%s", err.msg);
	cr_assert_eq(st.cpu_usage_ns, 0);
	cr_assert_eq(st.pids_current, 0);
	cr_assert_eq(st.pids_max, 100);

	pid = t_spawn(cg, spin_ms, 300);
	t_spawn(cg, t_sleep_forever, 0);
	usleep(50000);
	cr_assert_eq(em_cg_stats(cg, &st, &err), 0, "%s", err.msg);
	cr_assert_eq(st.pids_current, 2);
	cr_assert_eq(t_reap(pid), 0);
	cr_assert_eq(em_cg_stats(cg, &st, &err), 0, "%s", err.msg);
	cr_log_info("cpu usage %" PRIu64 " ns (user %" PRIu64 ", system %" PRIu64 ")", st.cpu_usage_ns,
		    st.cpu_user_ns, st.cpu_system_ns);
	/* 300 ms of spinning on a shared, loaded machine: some of it, never more than 300 ms + ticks */
	cr_assert_gt(st.cpu_usage_ns, 30000000);
	cr_assert_lt(st.cpu_usage_ns, 400000000);
	/* the split into user and system is tick-based: close to, not exactly, the total */
	cr_assert_gt(st.cpu_user_ns, 0);
	cr_assert_leq(st.cpu_user_ns + st.cpu_system_ns, st.cpu_usage_ns * 11 / 10 + 20000000);
	cr_assert_geq((st.cpu_user_ns + st.cpu_system_ns) * 11 / 10 + 20000000, st.cpu_usage_ns);
	/* the kernel's own number, to the µs (v2) or ns (v1) it reports: the sleeper may still
	 * add a few ns, so the library's reading must fall between two direct reads */
	uint64_t before = kernel_usage_ns(cg), after;

	cr_assert_eq(em_cg_stats(cg, &st, &err), 0, "%s", err.msg);
	after = kernel_usage_ns(cg);
	cr_assert(before <= st.cpu_usage_ns && st.cpu_usage_ns <= after,
		  "kernel %" PRIu64 "..%" PRIu64 ", library %" PRIu64, before, after, st.cpu_usage_ns);
	cr_assert_eq(st.pids_current, 1);
}

Test(cg_stats, unlimited_reads_as_max)
{
	struct em_err err = { 0 };
	struct em_cg_stats st;
	struct em_cg *cg = t_create("ember-test-unl", NULL);

	cr_assert_eq(em_cg_stats(cg, &st, &err), 0, "%s", err.msg);
	cr_assert_eq(st.memory_max, UINT64_MAX);
	cr_assert_eq(st.pids_max, UINT64_MAX);
	cr_assert_eq(st.oom_events, 0);
	cr_assert_eq(st.oom_kill_events, 0);
	cr_assert_eq(st.cpu_nr_throttled, 0);
}
