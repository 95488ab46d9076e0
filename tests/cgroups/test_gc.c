/* tests/cgroups/test_gc.c — after a crash (handles dropped, nothing destroyed) gc removes the
 * empty cgroups below the parent and keeps the populated ones; it never goes above the parent. */
#include "helpers.h"

TestSuite(cg_gc, .init = t_setup, .fini = t_teardown, .timeout = 60);

static bool exists(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s%s/%s", t_is_v2() ? "" : "pids/", t_parent, name);
	return access(path, F_OK) == 0;
}

Test(cg_gc, removes_orphans_keeps_populated)
{
	struct em_err err = { 0 };
	struct em_cg *a = NULL, *b = NULL, *live;
	struct em_cg_root *other = NULL;
	char sib[64];
	int removed;

	/* "crash": created, then the handles are simply dropped */
	cr_assert_eq(em_cg_create(t_root, "ember-test-orphan1", NULL, &a, &err), 0, "%s", err.msg);
	cr_assert_eq(em_cg_create(t_root, "ember-test-orphan2/deep", NULL, &b, &err), 0, "%s", err.msg);
	em_cg_close(a);
	em_cg_close(b);
	live = t_create("ember-test-live", NULL);
	t_spawn(live, t_sleep_forever, 0);
	/* a sibling parent next to ours must survive our gc */
	snprintf(sib, sizeof(sib), "%s-sibling", t_parent);
	cr_assert_eq(em_cg_root_open(&other, sib, NULL, &err), 0, "%s", err.msg);

	removed = em_cg_gc(t_root, &err);
	cr_assert_geq(removed, 3, "gc removed %d (%s)", removed, err.msg);
	cr_assert_not(exists("ember-test-orphan1"));
	cr_assert_not(exists("ember-test-orphan2/deep"));
	cr_assert_not(exists("ember-test-orphan2"));
	cr_assert(exists("ember-test-live"));
	cr_assert(strstr(t_log_text(), "cgroup gc: removed"), "%s", t_log_text());

	cr_assert_eq(em_cg_root_remove(other, &err), 0, "%s", err.msg);
	em_cg_root_close(other);
	/* nothing left to collect: 0 */
	cr_assert_eq(em_cg_gc(t_root, &err), 0);
}

/* A host restarted after a crash: nested cgroups (a zygote template's subtree) with processes in
 * them are killed and removed, deepest first. */
Test(cg_gc, reap_children_kills_and_removes_nested_cgroups)
{
	struct em_err err = { 0 };
	struct em_cg *t, *i;
	pid_t p1, p2;
	int removed;

	cr_assert_eq(em_cg_create(t_root, "z1-fn", NULL, &t, &err), 0, "%s", err.msg);
	em_cg_close(t);
	t = t_create("z1-fn/t", NULL);
	i = t_create("z1-fn/i2", NULL);
	p1 = t_spawn(t, t_sleep_forever, 0);
	p2 = t_spawn(i, t_sleep_forever, 0);
	t_forget(t);
	t_forget(i);
	em_cg_close(t);
	em_cg_close(i);
	removed = em_cg_reap_children(t_root, &err);
	cr_assert_eq(removed, 3, "reaped %d (%s)", removed, err.msg);
	cr_expect_not(exists("z1-fn/t"));
	cr_expect_not(exists("z1-fn"));
	t_reap(p1);
	t_reap(p2);
}

/* Delegation to a template's uid: cgroup.procs of the unified hierarchy only. */
Test(cg_gc, delegate_procs_chowns_cgroup_procs_only)
{
	struct em_err err = { 0 };
	struct em_cg *cg = t_create("ember-test-deleg", NULL);
	char path[512];
	struct stat st;

	cr_assert_eq(em_cg_delegate_procs(cg, 2113929300, 2113929300, &err), 0, "%s", err.msg);
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s%s/ember-test-deleg/cgroup.procs",
		 t_is_v2() ? "" : "unified/", t_parent);
	cr_assert_eq(stat(path, &st), 0, "%s", path);
	cr_expect_eq(st.st_uid, 2113929300);
	cr_expect_eq(st.st_gid, 2113929300);
	/* the directory (mkdir of sub-cgroups) and the limits stay root's */
	*strrchr(path, '/') = '\0';
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_uid, 0);
	snprintf(path, sizeof(path), "%s", t_knob_path(cg, "pids", "pids.max", "pids.max"));
	cr_assert_eq(stat(path, &st), 0, "%s", path);
	cr_expect_eq(st.st_uid, 0);
}
