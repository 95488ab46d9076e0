/* tests/cgroups/test_cpu.c — CPU follows memory: two busy functions of 128 MB and 512 MB pinned
 * on one CPU share it about 1:4 (by quota, and by weight alone), and a 885 MB function alone gets
 * about half a CPU. The machine is shared and noisy: the bounds are generous on purpose; the
 * benchmark (bench-cgroups) reports the exact ratios. */
#include "helpers.h"

TestSuite(cg_cpu, .init = t_setup, .fini = t_teardown, .timeout = 120);

static struct em_cg *function_cg(const char *name, uint64_t mb, bool pin, bool quota)
{
	struct em_err err = { 0 };
	struct em_cg_policy pol;
	struct em_cg_limits l = { 0 };

	em_cg_policy_default(&pol);
	cr_assert_eq(em_cg_policy_apply(&pol, mb, &l, &err), 0, "%s", err.msg);
	if (!quota)
		l.cpu_max.quota_us = -1;
	if (pin)
		l.cpuset_cpus = "0";
	return t_create(name, &l);
}

/* CPU ns each cgroup used over `secs` of wall time, after a short warm-up */
static void measure(struct em_cg **cgs, size_t n, double secs, uint64_t *used)
{
	uint64_t start[4];

	usleep(200000);
	for (size_t i = 0; i < n; i++)
		start[i] = t_cpu_ns(cgs[i]);
	usleep((useconds_t)(secs * 1e6));
	for (size_t i = 0; i < n; i++)
		used[i] = t_cpu_ns(cgs[i]) - start[i];
}

static void share_one_cpu(bool quota)
{
	struct em_cg *cgs[2];
	uint64_t used[2];
	double ratio;

	cgs[0] = function_cg("ember-test-f128", 128, true, quota);
	cgs[1] = function_cg("ember-test-f512", 512, true, quota);
	t_spawn(cgs[0], t_spin_forever, 0);
	t_spawn(cgs[1], t_spin_forever, 0);
	measure(cgs, 2, 3.0, used);
	cr_assert_gt(used[0], 0, "the 128 MB function got no CPU at all");
	ratio = (double)used[1] / (double)used[0];
	cr_log_info("%s: 128 MB %.3f s, 512 MB %.3f s of CPU in 3 s: ratio 1:%.2f",
		    quota ? "quota+weight" : "weight only", used[0] / 1e9, used[1] / 1e9, ratio);
	cr_assert(ratio > 2.5 && ratio < 6.0, "512 MB : 128 MB CPU ratio %.2f, expected about 4",
		  ratio);
}

Test(cg_cpu, memory_proportional_share_by_quota)
{
	share_one_cpu(true);
}

Test(cg_cpu, memory_proportional_share_by_weight)
{
	share_one_cpu(false);
}

Test(cg_cpu, f885_alone_gets_half_a_cpu)
{
	struct em_cg *cg = function_cg("ember-test-f885", 885, false, true);
	uint64_t used;
	double share;

	/* two spinners: without the quota they would take two CPUs */
	t_spawn(cg, t_spin_forever, 0);
	t_spawn(cg, t_spin_forever, 0);
	measure(&cg, 1, 3.0, &used);
	share = used / 3e9;
	cr_log_info("885 MB alone: %.3f CPUs (quota %s)", share, t_knob(cg, "cpu", "cpu.cfs_quota_us", "cpu.max"));
	cr_assert(share > 0.3 && share < 0.6, "885 MB got %.3f CPUs, expected about 0.5", share);
	/* the kernel throttled it */
	{
		struct em_err err = { 0 };
		struct em_cg_stats st;

		cr_assert_eq(em_cg_stats(cg, &st, &err), 0, "%s", err.msg);
		cr_assert_gt(st.cpu_nr_throttled, 0);
		cr_assert_gt(st.cpu_throttled_ns, 0);
		cr_assert_geq(st.cpu_nr_periods, st.cpu_nr_throttled);
	}
}
