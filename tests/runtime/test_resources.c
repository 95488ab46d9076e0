/* tests/runtime/test_resources.c — linux.resources through the CLI: limits land in the kernel's
 * cgroup files at create, `update` changes them, `events --stats` reports the cgroup,
 * `kill --all` reaches every process. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct bundle b;
static struct run_result r;

static void fini(void)
{
	struct run_result rr;

	ember(&b, &rr, ARGS("delete", "--force", "c1"));
	bundle_fini(&b);
}

TestSuite(resources, .fini = fini, .timeout = 60);

/* The value of a cgroup file of c1: the v1 name on this hybrid host, the v2 name otherwise. */
static long long cg_file(const char *v1, const char *v2)
{
	char path[512], buf[64] = "";
	FILE *f;

	/* v1 files live in /sys/fs/cgroup/<controller>/<parent>/c1/<file> */
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%.*s/%s/c1/%s", (int)(strchr(v1, '/') - v1), v1,
		 t_cgroup_parent(), strchr(v1, '/') + 1);
	f = fopen(path, "r");
	if (!f) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/c1/%s", t_cgroup_parent(), v2);
		f = fopen(path, "r");
	}
	cr_assert_not_null(f, "%s", path);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	return strtoll(buf, NULL, 10);
}

Test(resources, limits_update_stats_and_kill_all)
{
	bundle_init(&b, ARGS("sh", "-c", "sleep 60 & sleep 60"));
	json_object_set_new(cfg_obj(&b, "linux.resources.memory"), "limit",
			    json_integer(64LL << 20));
	json_object_set_new(cfg_obj(&b, "linux.resources.pids"), "limit", json_integer(32));
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "--detach", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(cg_file("memory/memory.limit_in_bytes", "memory.max"), 64LL << 20);
	cr_assert_eq(cg_file("pids/pids.max", "pids.max"), 32);

	ember(&b, &r, ARGS("update", "--memory", "134217728", "--pids-limit", "64", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(cg_file("memory/memory.limit_in_bytes", "memory.max"), 128LL << 20);
	cr_assert_eq(cg_file("pids/pids.max", "pids.max"), 64);

	ember(&b, &r, ARGS("update", "--memory", "abc", "c1"));
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "--memory: expected an integer"), "%s", r.err);

	ember(&b, &r, ARGS("events", "--stats", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	json_t *ev = json_loads(r.out, 0, NULL);
	cr_assert_not_null(ev, "%s", r.out);
	json_t *data = json_object_get(ev, "data");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(data, "pids"), "current")), 2,
		     "sh (exec'd into the last sleep) and the background sleep: %s", r.out);
	json_t *usage = json_object_get(json_object_get(data, "memory"), "usage");
	cr_assert_eq(json_integer_value(json_object_get(usage, "limit")) >> 20, 128, "%s", r.out);
	json_decref(ev);

	ember(&b, &r, ARGS("kill", "--all", "c1", "KILL"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	for (int i = 0; i < 100; i++) {
		ember(&b, &r, ARGS("state", "c1"));
		if (strstr(r.out, "stopped"))
			break;
		usleep(20000);
	}
	cr_assert(strstr(r.out, "\"stopped\""), "%s", r.out);
	ember(&b, &r, ARGS("delete", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_no_leak(&b, "c1");
}

Test(resources, an_impossible_limit_is_refused_and_leaves_nothing)
{
	bundle_init(&b, ARGS("true"));
	json_object_set_new(cfg_obj(&b, "linux.resources.memory"), "limit", json_integer(200));
	json_object_set_new(cfg_obj(&b, "linux.resources.memory"), "swap", json_integer(100));
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "linux.resources.memory.swap"), "%s", r.err);
	assert_no_leak(&b, "c1");
}
