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
