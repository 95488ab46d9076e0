/* tests/runtime/test_billing.c — `ember run --bill`: the BPF record of an OCI container against
 * what the workload did (busy vs sleeping), and its billing arithmetic. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "bundle.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct bundle b;
static struct run_result r;

static void fini(void)
{
	bundle_fini(&b);
}

TestSuite(billing, .fini = fini, .timeout = 60);

static json_t *run_billed(void)
{
	char path[300];
	json_error_t jerr;
	json_t *rec;

	bundle_write(&b);
	snprintf(path, sizeof(path), "%s/bill.json", b.dir);
	ember(&b, &r, ARGS("run", "--bill", path, "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_no_leak(&b, "c1");
	rec = json_load_file(path, 0, &jerr);
	cr_assert_not_null(rec, "%s", jerr.text);
	return rec;
}

static double ms(json_t *rec, const char *k)
{
	return (double)json_integer_value(json_object_get(rec, k)) / 1e6;
}

Test(billing, a_busy_container_is_billed_its_cpu)
{
	bundle_init(&b, ARGS("emtest", "spin", "100"));
	json_t *rec = run_billed();
	double cpu = ms(rec, "cpu_ns"), wall = ms(rec, "wall_ns");

	/* spin runs for 100 ms of wall time: on a busy shared machine it gets less than all of
	 * it, never more (one thread); the exact figure is checked against the cgroup below and
	 * against the workload's own clocks in tests/bpf */
	cr_assert(cpu > 20 && cpu <= wall * 1.02 + 1, "cpu %.1f ms, wall %.1f ms", cpu, wall);
	cr_assert(wall >= 99 && wall < 200, "wall %.1f ms", wall);
	/* the kernel's own counter agrees with the BPF figure */
	cr_assert_eq(json_integer_value(json_object_get(rec, "cpu_ns")),
		     json_integer_value(json_object_get(rec, "cgroup_cpu_ns")));
	/* billed = wall rounded up to 1 ms */
	json_int_t w = json_integer_value(json_object_get(rec, "wall_ns"));
	cr_assert_eq(json_integer_value(json_object_get(rec, "billed_ms")), (w + 999999) / 1000000);
	cr_assert_str_eq(json_string_value(json_object_get(rec, "start")), "cold");
	json_decref(rec);
}

Test(billing, a_sleeping_container_is_billed_wall_not_cpu)
{
	bundle_init(&b, ARGS("emtest", "sleep", "100"));
	json_t *rec = run_billed();
	double cpu = ms(rec, "cpu_ns"), wall = ms(rec, "wall_ns");

	cr_assert(cpu < 10, "cpu %.1f ms", cpu);
	cr_assert(wall >= 99 && wall < 200, "wall %.1f ms", wall);
	json_decref(rec);
}

Test(billing, gb_seconds_follow_the_memory_limit)
{
	bundle_init(&b, ARGS("true"));
	json_object_set_new(cfg_obj(&b, "linux.resources.memory"), "limit",
			    json_integer(256LL << 20));
	json_t *rec = run_billed();
	cr_assert_eq(json_integer_value(json_object_get(rec, "memory_mb")), 256);
	double billed = (double)json_integer_value(json_object_get(rec, "billed_ms"));
	double gbs = json_real_value(json_object_get(rec, "gb_seconds"));
	cr_assert_float_eq(gbs, 256.0 * billed / 1024.0 / 1000.0, 1e-9);
	json_decref(rec);
}
