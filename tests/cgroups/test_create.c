/* tests/cgroups/test_create.c — mode detection, the parent rule, paths, and a cgroup present in
 * every hierarchy (with its own unified id on hybrid hosts). */
#include "helpers.h"

#include <criterion/hooks.h>

#include <sys/statfs.h>
#include <linux/magic.h>

TestSuite(cg_create, .init = t_setup, .fini = t_teardown, .timeout = 60);

Test(cg_create, mode_matches_statfs)
{
	struct statfs fs;

	cr_assert_eq(statfs("/sys/fs/cgroup", &fs), 0);
	if (fs.f_type == CGROUP2_SUPER_MAGIC) {
		cr_assert_eq(em_cg_root_mode(t_root), EM_CG_V2);
	} else {
		struct statfs u;
		bool hybrid = statfs("/sys/fs/cgroup/unified", &u) == 0 && u.f_type == CGROUP2_SUPER_MAGIC;

		cr_assert_eq(em_cg_root_mode(t_root), hybrid ? EM_CG_HYBRID : EM_CG_V1);
	}
	cr_log_info("cgroup mode: %s", em_cg_mode_name(em_cg_root_mode(t_root)));
}

Test(cg_create, parent_must_be_ember_named)
{
	struct em_err err = { 0 };
	struct em_cg_root *r = NULL;

	cr_assert_eq(em_cg_root_open(&r, "system.slice", NULL, &err), -EINVAL);
	cr_assert(strstr(err.msg, "ember"), "%s", err.msg);
	cr_assert_eq(em_cg_root_open(&r, "/", NULL, &err), -EINVAL);
	cr_assert_null(r);
}

Test(cg_create, dotdot_refused)
{
	struct em_err err = { 0 };
	struct em_cg *cg = NULL;

	cr_assert_eq(em_cg_create(t_root, "a/../../etc", NULL, &cg, &err), -EINVAL);
	cr_assert(strstr(err.msg, ".."), "%s", err.msg);
	cr_assert_eq(em_cg_create(t_root, "", NULL, &cg, &err), -EINVAL);
}

Test(cg_create, exists_in_every_hierarchy)
{
	static const char *const v1[] = { "cpu", "cpuacct", "cpuset", "memory", "pids", "freezer" };
	struct em_cg *cg = t_create("ember-test-a", NULL);
	char want[128], path[512];
	struct stat st;

	snprintf(want, sizeof(want), "%s/ember-test-a", t_parent);
	cr_assert_str_eq(em_cg_path(cg), want);
	if (t_is_v2()) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", want);
		cr_assert_eq(stat(path, &st), 0, "%s", path);
		cr_assert_eq(em_cg_id(cg), st.st_ino);
		return;
	}
	for (size_t i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/%s", v1[i], want);
		if (access(path, F_OK) < 0) {
			snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", v1[i]);
			cr_assert_neq(access(path, F_OK), 0, "controller %s mounted, cgroup missing", v1[i]);
		}
	}
	/* cpuset: ember copied the parent's cpus and mems, so something can run there */
	cr_assert_str_neq(t_knob(cg, "cpuset", "cpuset.cpus", "cpuset.cpus"), "");
	cr_assert_str_neq(t_knob(cg, "cpuset", "cpuset.mems", "cpuset.mems"), "");
	if (em_cg_root_mode(t_root) == EM_CG_HYBRID) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/unified/%s", want);
		cr_assert_eq(stat(path, &st), 0, "%s", path);
		cr_assert_eq(em_cg_id(cg), st.st_ino, "em_cg_id is the unified directory's inode");
	} else {
		cr_assert_eq(em_cg_id(cg), 0);
	}
}

Test(cg_create, existing_is_eexist_and_open_finds_it)
{
	struct em_err err = { 0 };
	struct em_cg *cg = t_create("ember-test-b", NULL), *again = NULL, *opened = NULL;

	cr_assert_eq(em_cg_create(t_root, "ember-test-b", NULL, &again, &err), -EEXIST, "%s", err.msg);
	cr_assert(strstr(err.msg, "ember-test-b"), "%s", err.msg);
	/* the failed create must not have removed the existing cgroup */
	cr_assert_eq(em_cg_open(t_root, "ember-test-b", &opened, &err), 0, "%s", err.msg);
	cr_assert_eq(em_cg_id(opened), em_cg_id(cg));
	em_cg_close(opened);
	cr_assert_eq(em_cg_open(t_root, "ember-test-missing", &opened, &err), -ENOENT);
}

Test(cg_create, absolute_path_is_from_the_hierarchy_root)
{
	char abs[128];
	struct em_cg *cg;

	snprintf(abs, sizeof(abs), "/%s/ember-test-abs", t_parent);
	cg = t_create(abs, NULL);
	cr_assert_str_eq(em_cg_path(cg), abs + 1);
}

Test(cg_create, nested_path_below_parent)
{
	struct em_cg *cg = t_create("ember-test-n/inner", NULL);
	char want[128];

	snprintf(want, sizeof(want), "%s/ember-test-n/inner", t_parent);
	cr_assert_str_eq(em_cg_path(cg), want);
	/* the intermediate level is removed by gc in teardown */
}

/* after the last test, in the runner: what a crashed test (no .fini) left behind */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	t_remove_stale();
}
