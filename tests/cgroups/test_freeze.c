/* tests/cgroups/test_freeze.c — freeze stops a busy loop (its CPU usage stops growing), thaw
 * resumes it, and the kernel's own state file agrees. */
#include "helpers.h"

TestSuite(cg_freeze, .init = t_setup, .fini = t_teardown, .timeout = 120);

Test(cg_freeze, freeze_stops_cpu_thaw_resumes)
{
	struct em_err err = { 0 };
	struct em_cg *cg = t_create("ember-test-frz", NULL);
	bool frozen = true;
	uint64_t a, b, c;

	t_spawn(cg, t_spin_forever, 0);
	t_spawn(cg, t_spin_forever, 0);
	usleep(200000);
	cr_assert_eq(em_cg_frozen(cg, &frozen, &err), 0, "%s", err.msg);
	cr_assert_not(frozen);
	cr_assert_gt(t_cpu_ns(cg), 0);

	cr_assert_eq(em_cg_freeze(cg, &err), 0, "%s", err.msg);
	cr_assert_eq(em_cg_frozen(cg, &frozen, &err), 0, "%s", err.msg);
	cr_assert(frozen);
	if (t_is_v2())
		cr_assert(strstr(t_knob(cg, "", "", "cgroup.events"), "frozen 1"));
	else
		cr_assert_str_eq(t_knob(cg, "freezer", "freezer.state", ""), "FROZEN");
	a = t_cpu_ns(cg);
	usleep(500000);
	b = t_cpu_ns(cg);
	/* frozen: not a single ms of CPU in half a second (the counters may lag by a tick) */
	cr_assert_lt(b - a, 5000000, "frozen cgroup used %" PRIu64 " ns", b - a);

	cr_assert_eq(em_cg_thaw(cg, &err), 0, "%s", err.msg);
	cr_assert_eq(em_cg_frozen(cg, &frozen, &err), 0, "%s", err.msg);
	cr_assert_not(frozen);
	usleep(500000);
	c = t_cpu_ns(cg);
	/* two spinners on a shared 2-CPU machine: at least 50 ms of the 1000 ms possible */
	cr_assert_gt(c - b, 50000000, "thawed cgroup used only %" PRIu64 " ns", c - b);
	cr_log_info("cpu over 0.5 s: frozen %" PRIu64 " ns, thawed %" PRIu64 " ns", b - a, c - b);
}

Test(cg_freeze, freeze_empty_and_twice)
{
	struct em_err err = { 0 };
	struct em_cg *cg = t_create("ember-test-frz2", NULL);
	bool frozen;

	cr_assert_eq(em_cg_freeze(cg, &err), 0, "%s", err.msg);
	cr_assert_eq(em_cg_freeze(cg, &err), 0, "%s", err.msg);
	cr_assert_eq(em_cg_frozen(cg, &frozen, &err), 0, "%s", err.msg);
	cr_assert(frozen);
	/* a process attached to a frozen cgroup freezes too; destroy(force) still works */
	t_spawn(cg, t_spin_forever, 0);
	cr_assert_eq(em_cg_thaw(cg, &err), 0, "%s", err.msg);
	cr_assert_eq(em_cg_thaw(cg, &err), 0, "%s", err.msg);
}
