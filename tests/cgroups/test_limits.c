/* tests/cgroups/test_limits.c — limits land in the kernel's files at create, update changes
 * them, unsupported ones are warned about, missing controllers are clear errors. */
#include "helpers.h"

TestSuite(cg_limits, .init = t_setup, .fini = t_teardown, .timeout = 60);

static void full_limits(struct em_cg_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->memory_max.set = true;
	l->memory_max.v = 64 << 20;
	l->swap_max.set = true;
	l->swap_max.v = 0;
	l->pids_max.set = true;
	l->pids_max.v = 42;
	l->cpu_weight.set = true;
	l->cpu_weight.v = 500;
	l->cpu_max.set = true;
	l->cpu_max.quota_us = 25000;
	l->cpu_max.period_us = 100000;
	l->cpuset_cpus = "0";
}

Test(cg_limits, create_applies_every_limit)
{
	struct em_cg_limits l;
	struct em_cg *cg;

	full_limits(&l);
	cg = t_create("ember-test-lim", &l);
	cr_assert_str_eq(t_knob(cg, "memory", "memory.limit_in_bytes", "memory.max"), "67108864");
	if (t_is_v2()) {
		cr_assert_str_eq(t_knob(cg, "", "", "memory.swap.max"), "0");
		cr_assert_str_eq(t_knob(cg, "", "", "cpu.weight"), "500");
		cr_assert_str_eq(t_knob(cg, "", "", "cpu.max"), "25000 100000");
	} else {
		/* memsw = memory + swap: no swap at all */
		cr_assert_str_eq(t_knob(cg, "memory", "memory.memsw.limit_in_bytes", ""), "67108864");
		/* weight 500 in shares, runc's inverse conversion: 2 + 499*262142/9999 */
		cr_assert_str_eq(t_knob(cg, "cpu", "cpu.shares", ""), "13084");
		cr_assert_str_eq(t_knob(cg, "cpu", "cpu.cfs_quota_us", ""), "25000");
		cr_assert_str_eq(t_knob(cg, "cpu", "cpu.cfs_period_us", ""), "100000");
	}
	cr_assert_str_eq(t_knob(cg, "pids", "pids.max", "pids.max"), "42");
	cr_assert_str_eq(t_knob(cg, "cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
}

Test(cg_limits, update_changes_the_files)
{
	struct em_err err = { 0 };
	struct em_cg_limits l, u = { 0 };
	struct em_cg *cg;

	full_limits(&l);
	cg = t_create("ember-test-upd", &l);
	/* raise memory (memsw must move first on v1), unlimit pids, drop the quota */
	u.memory_max.set = true;
	u.memory_max.v = 256 << 20;
	u.swap_max.set = true;
	u.swap_max.v = 0;
	u.pids_max.set = true;
	u.pids_max.v = -1;
	u.cpu_max.set = true;
	u.cpu_max.quota_us = -1;
	u.cpu_weight.set = true;
	u.cpu_weight.v = 100;
	cr_assert_eq(em_cg_update(cg, &u, &err), 0, "%s", err.msg);
	cr_assert_str_eq(t_knob(cg, "memory", "memory.limit_in_bytes", "memory.max"), "268435456");
	cr_assert_str_eq(t_knob(cg, "pids", "pids.max", "pids.max"), "max");
	if (t_is_v2()) {
		cr_assert_str_eq(t_knob(cg, "", "", "cpu.max"), "max 100000");
		cr_assert_str_eq(t_knob(cg, "", "", "cpu.weight"), "100");
	} else {
		cr_assert_str_eq(t_knob(cg, "memory", "memory.memsw.limit_in_bytes", ""), "268435456");
		cr_assert_str_eq(t_knob(cg, "cpu", "cpu.cfs_quota_us", ""), "-1");
		cr_assert_str_eq(t_knob(cg, "cpu", "cpu.shares", ""), "2597");
	}
	/* and down again, below the old value: the v1 order flips (memory first) */
	memset(&u, 0, sizeof(u));
	u.memory_max.set = true;
	u.memory_max.v = 32 << 20;
	u.swap_max.set = true;
	u.swap_max.v = 0;
	cr_assert_eq(em_cg_update(cg, &u, &err), 0, "%s", err.msg);
	cr_assert_str_eq(t_knob(cg, "memory", "memory.limit_in_bytes", "memory.max"), "33554432");
	/* memory alone, raised above memsw: the no-swap allowance is kept (v1: memsw moves too) */
	memset(&u, 0, sizeof(u));
	u.memory_max.set = true;
	u.memory_max.v = 512 << 20;
	cr_assert_eq(em_cg_update(cg, &u, &err), 0, "%s", err.msg);
	cr_assert_str_eq(t_knob(cg, "memory", "memory.limit_in_bytes", "memory.max"), "536870912");
	if (!t_is_v2())
		cr_assert_str_eq(t_knob(cg, "memory", "memory.memsw.limit_in_bytes", ""), "536870912");
	/* fields that are not set keep their value */
	cr_assert_str_eq(t_knob(cg, "pids", "pids.max", "pids.max"), "max");
	cr_assert_str_eq(t_knob(cg, "cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
}

Test(cg_limits, unsupported_limits_are_warned_not_applied)
{
	struct em_cg_limits l = { 0 };

	if (t_is_v2()) {
		l.swappiness.set = true;
		l.swappiness.v = 10;
	} else {
		l.memory_high.set = true;
		l.memory_high.v = 1 << 20;
	}
	t_create("ember-test-warn", &l);
	cr_assert(strstr(t_log_text(), t_is_v2() ? "swappiness" : "memory.high"), "log: %s",
		  t_log_text());
}

Test(cg_limits, bad_value_fails_create_and_leaves_nothing)
{
	struct em_err err = { 0 };
	struct em_cg_limits l = { 0 };
	struct em_cg *cg = NULL;
	char path[256];

	l.cpuset_cpus = "999999";
	cr_assert_lt(em_cg_create(t_root, "ember-test-bad", &l, &cg, &err), 0);
	cr_assert(strstr(err.msg, "ember-test-bad") && strstr(err.msg, "cpuset.cpus"), "%s", err.msg);
	cr_log_info("error as reported: %s", err.msg);
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s%s/ember-test-bad", t_is_v2() ? "" : "cpuset/",
		 t_parent);
	cr_assert_neq(access(path, F_OK), 0, "%s was left behind", path);
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s%s/ember-test-bad", t_is_v2() ? "" : "memory/",
		 t_parent);
	cr_assert_neq(access(path, F_OK), 0, "%s was left behind", path);
}

Test(cg_limits, raw_knobs_and_devices)
{
	struct em_err err = { 0 };
	struct em_cg_limits l = { 0 };
	struct em_cg_raw raw = { t_is_v2() ? "memory.high" : "memory.swappiness",
				 t_is_v2() ? "50000000" : "7" };
	struct em_cg_device_rule dev[2] = {
		{ .allow = false, .type = 'a', .major = -1, .minor = -1, .access = "rwm" },
		{ .allow = true, .type = 'c', .major = 1, .minor = 3, .access = "rwm" },
	};
	struct em_cg *cg;

	l.raw = &raw;
	l.n_raw = 1;
	l.devices = dev;
	l.n_devices = 2;
	cg = t_create("ember-test-raw", &l);
	if (t_is_v2()) {
		cr_assert_str_eq(t_knob(cg, "", "", "memory.high"), "49999872"); /* page-rounded */
		/* the device rules are a BPF program there: test_devices.c checks their effect */
	} else {
		cr_assert_str_eq(t_knob(cg, "memory", "memory.swappiness", ""), "7");
		cr_assert_str_eq(t_knob(cg, "devices", "devices.list", ""), "c 1:3 rwm");
	}
	/* a raw file name cannot escape the cgroup directory */
	struct em_cg_raw evil = { "../../memory.limit_in_bytes", "1" };
	struct em_cg_limits e = { .raw = &evil, .n_raw = 1 };
	cr_assert_eq(em_cg_update(cg, &e, &err), -EINVAL, "%s", err.msg);
}
