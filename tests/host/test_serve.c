/* tests/host/test_serve.c — the function host end to end: the real `ember serve`, the examples
 * built by make (build/examples/), the API as a control plane uses it, and what the kernel holds
 * for the instances (cgroup files, freezer state, processes). */
#include "tests/host/serve.h"
#include "common/err.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct serve S;

static void up(void)
{
	serve_up(&S);
}

static void down(void)
{
	serve_down(&S);
}

static double header_num(const char *name)
{
	const char *v = em_client_header(S.c, name);

	cr_assert_not_null(v, "no %s header", name);
	return strtod(v, NULL);
}

TestSuite(serve, .init = up, .fini = down, .timeout = 120);

Test(serve, cold_then_warm_with_headers)
{
	struct em_client_resp r;

	cr_assert_eq(deploy(&S, "hello", "hello-c", 128, NULL, &r), 200, "%s", r.body);
	cr_assert_eq(invoke(&S, "hello", "world", &r), 200, "%s", r.body);
	cr_expect(strstr(r.body, "world") != NULL, "output: %s", r.body);
	cr_expect_str_eq(em_client_header(S.c, "Ember-Start"), "cold");
	cr_expect_eq(strlen(em_client_header(S.c, "Ember-Request-Id")), 36);
	cr_expect_gt(header_num("Ember-Init-Ms"), 0);
	cr_expect_geq(header_num("Ember-Billed-Ms"), 1);
	cr_expect_geq(header_num("Ember-Billed-Ms"), header_num("Ember-Duration-Ms"));
	cr_expect_lt(header_num("Ember-Billed-Ms"), header_num("Ember-Duration-Ms") + 1);
	cr_expect_not_null(em_client_header(S.c, "Ember-Cpu-Ms"));
	cr_expect_not_null(em_client_header(S.c, "Ember-Max-Memory-Mb"));

	char id1[64];
	snprintf(id1, sizeof(id1), "%s", em_client_header(S.c, "Ember-Request-Id"));
	cr_assert_eq(invoke(&S, "hello", "again", &r), 200, "%s", r.body);
	cr_expect_str_eq(em_client_header(S.c, "Ember-Start"), "warm");
	cr_expect_str_neq(em_client_header(S.c, "Ember-Request-Id"), id1);
	cr_expect_eq(header_num("Ember-Init-Ms"), 0);
}

/* Between invocations the instance is frozen and burns no CPU; it is thawed for the next one. */
Test(serve, idle_instance_is_frozen)
{
	struct em_client_resp r;
	const char *cg;
	unsigned long long u0, u1;

	cr_assert_eq(deploy(&S, "idle", "hello-c", 128, NULL, &r), 200, "%s", r.body);
	cr_assert_eq(invoke(&S, "idle", "x", &r), 200, "%s", r.body);
	cg = inst_cg(&S, "freezer", "idle", "idle", NULL);
	cr_assert_not_null(cg, "no idle instance listed");
	cr_expect_str_eq(read_str(cg, "freezer.state"), "FROZEN");
	cg = inst_cg(&S, "cpuacct", "idle", "idle", NULL);
	u0 = read_ull(cg, "cpuacct.usage");
	sleep_ms(300);
	u1 = read_ull(cg, "cpuacct.usage");
	cr_expect_eq(u0, u1, "an idle instance used %llu ns of CPU", u1 - u0);
	cr_assert_eq(invoke(&S, "idle", "y", &r), 200, "%s", r.body);
	cr_expect_str_eq(em_client_header(S.c, "Ember-Start"), "warm");
}

/* Limits from memory: the kernel holds exactly what the policy says (cgroups/policy.c). */
Test(serve, limits_in_the_kernel)
{
	struct em_client_resp r;
	const char *cg;

	cr_assert_eq(deploy(&S, "lim", "hello-c", 885, NULL, &r), 200, "%s", r.body);
	cr_assert_eq(invoke(&S, "lim", "x", &r), 200, "%s", r.body);
	cg = inst_cg(&S, "memory", "lim", "idle", NULL);
	cr_assert_not_null(cg);
	cr_expect_eq(read_ull(cg, "memory.limit_in_bytes"), 885ull << 20);
	cg = inst_cg(&S, "cpu", "lim", "idle", NULL);
	/* 885 / 1769 of a CPU, rounded up: 50,029 us per 100,000 us period */
	cr_expect_eq(read_ull(cg, "cpu.cfs_period_us"), 100000);
	cr_expect_eq(read_ull(cg, "cpu.cfs_quota_us"), (885ull * 100000 + 1768) / 1769);
	cg = inst_cg(&S, "pids", "lim", "idle", NULL);
	cr_expect_eq(read_ull(cg, "pids.max"), 1024);
}

Test(serve, out_of_memory_is_reported_and_replaced)
{
	struct em_client_resp r;

	/* 128 MB gets 7 % of a CPU: touching 128 MB takes seconds of wall time here */
	cr_assert_eq(deploy(&S, "oom", "probe", 128, "{\"timeoutMs\": 60000}", &r), 200, "%s",
		     r.body);
	cr_assert_eq(invoke(&S, "oom", "oom", &r), 502, "%s", r.body);
	cr_expect_str_eq(error_type(&r), "Function.OutOfMemory", "%s", r.body);
	cr_expect(strstr(r.body, "128 MB") != NULL, "%s", r.body);
	cr_assert_eq(invoke(&S, "oom", "echo fine", &r), 200, "%s", r.body);
	cr_expect_str_eq(em_client_header(S.c, "Ember-Start"), "cold");
}

Test(serve, timeout_is_reported_and_replaced)
{
	struct em_client_resp r;

	cr_assert_eq(deploy(&S, "slow", "probe", 128, "{\"timeoutMs\": 300}", &r), 200, "%s", r.body);
	cr_assert_eq(invoke(&S, "slow", "sleep 5000", &r), 504, "%s", r.body);
	cr_expect_str_eq(error_type(&r), "Function.Timeout", "%s", r.body);
	cr_expect(strstr(r.body, "timed out after 300 ms") != NULL, "%s", r.body);
	cr_assert_eq(invoke(&S, "slow", "echo next", &r), 200, "%s", r.body);
	cr_expect(strstr(r.body, "next") != NULL, "%s", r.body);
}

Test(serve, crash_and_function_error)
{
	struct em_client_resp r;

	cr_assert_eq(deploy(&S, "bad", "probe", 128, NULL, &r), 200, "%s", r.body);
	cr_assert_eq(invoke(&S, "bad", "crash", &r), 502, "%s", r.body);
	cr_expect_str_eq(error_type(&r), "Function.Crashed", "%s", r.body);
	cr_expect(strstr(r.body, "SIGSEGV") != NULL, "%s", r.body);
	cr_assert_eq(invoke(&S, "bad", "exit 3", &r), 502, "%s", r.body);
	cr_expect_str_eq(error_type(&r), "Function.Crashed", "%s", r.body);
	cr_expect(strstr(r.body, "status 3") != NULL, "%s", r.body);
	cr_assert_eq(invoke(&S, "bad", "error", &r), 502, "%s", r.body);
	cr_expect_str_eq(error_type(&r), "Function.Error", "%s", r.body);
	/* a handler error does not break the instance: the next start is warm */
	cr_assert_eq(invoke(&S, "bad", "echo ok", &r), 200, "%s", r.body);
	cr_expect_str_eq(em_client_header(S.c, "Ember-Start"), "warm");
}

Test(serve, pids_tmp_and_network_limits)
{
	struct em_client_resp r;

	cr_assert_eq(deploy(&S, "lims", "probe", 1769, "{\"tmpMb\": 8, \"timeoutMs\": 30000}", &r), 200, "%s", r.body);
	json_t *j;

	cr_assert_eq(invoke(&S, "lims", "fork 1100", &r), 200, "%s", r.body);
	j = json_loads(r.body, 0, NULL);
	json_int_t forked = json_integer_value(json_object_get(j, "forked"));
	cr_expect(forked > 100 && forked < 1024, "forked %d of 1100 (pids.max 1024): %s",
		  (int)forked, r.body);
	json_decref(j);
	cr_assert_eq(invoke(&S, "lims", "tmp 16", &r), 200, "%s", r.body);
	cr_expect(strstr(r.body, "ENOSPC") != NULL, "%s", r.body);
	j = json_loads(r.body, 0, NULL);
	json_int_t written = json_integer_value(json_object_get(j, "written"));
	cr_expect(written > 7 * (1 << 20) && written <= 8 * (1 << 20), "wrote %d bytes into an 8 MB /tmp",
		  (int)written);
	json_decref(j);
	cr_assert_eq(invoke(&S, "lims", "net", &r), 200, "%s", r.body);
	j = json_loads(r.body, 0, NULL);
	json_t *ifs = json_object_get(j, "interfaces");
	cr_expect_eq(json_array_size(ifs), 1, "interfaces: %s", r.body);
	cr_expect_str_eq(json_string_value(json_array_get(ifs, 0)), "lo", "%s", r.body);
	cr_expect_not_null(json_object_get(j, "connect"));
	cr_expect(strstr(r.body, "\"connect\":\"ok\"") == NULL, "reached the outside: %s", r.body);
	json_decref(j);
}

Test(serve, api_errors)
{
	struct em_client_resp r;
	int st;
	json_t *j;

	cr_assert_eq(invoke(&S, "nope", "x", &r), 404);
	cr_expect_str_eq(error_type(&r), "ResourceNotFound");
	cr_expect_eq(deploy(&S, "m", "hello-c", 127, NULL, &r), 400, "%s", r.body);
	cr_expect(strstr(r.body, "memoryMb") != NULL, "%s", r.body);
	cr_expect_eq(deploy(&S, "m", "hello-c", 10241, NULL, &r), 400, "%s", r.body);
	cr_expect_eq(deploy(&S, "m", "hello-c", 128, "{\"memoryMb\": \"abc\"}", &r), 400, "%s", r.body);
	cr_expect_eq(deploy(&S, "m", "hello-c", 128, "{\"bundle\": \"/nonexistent\"}", &r), 400,
		     "%s", r.body);
	struct em_err err = { 0 };
	cr_assert_eq(em_client_request(S.c, "PUT", "/v1/functions/m", "application/json", "{nope",
				       5, &r, &err), 0);
	cr_expect_eq(r.status, 400);
	cr_expect_str_eq(error_type(&r), "InvalidRequestContent");
	j = get_json(&S, "/v1/functions", &st);
	cr_expect_eq(st, 200);
	cr_expect_eq(json_array_size(j), 0, "a failed deploy left a function behind");
	json_decref(j);
}

/* A bundle that cannot start is refused at deploy, naming the cause, and leaves nothing. */
Test(serve, deploy_refuses_a_bundle_that_cannot_start)
{
	struct em_client_resp r;
	char extra[512];

	snprintf(extra, sizeof(extra), "{\"bundle\": null, \"rootfs\": \"%s/rootfs\", "
		 "\"command\": [\"/no/such/program\"]}", example("hello-c"));
	cr_assert_eq(deploy(&S, "broken", "hello-c", 128, extra, &r), 400, "%s", r.body);
	cr_expect(strstr(r.body, "/no/such/program") != NULL, "%s", r.body);
	sleep_ms(200);
	cr_expect_eq(inst_count(&S), 0);
}

struct bg { struct serve *s; const char *fn, *payload; int status; char start[16]; };

static void *bg_invoke(void *arg)
{
	struct bg *b = arg;
	struct em_client *c;
	struct em_client_resp r;
	struct em_err err = { 0 };
	char path[128];

	cr_assert_eq(em_client_open(b->s->sock, &c, &err), 0, "%s", err.msg);
	snprintf(path, sizeof(path), "/v1/functions/%s/invoke", b->fn);
	cr_assert_eq(em_client_request(c, "POST", path, NULL, b->payload, strlen(b->payload), &r,
				       &err), 0, "%s", err.msg);
	b->status = r.status;
	em_client_close(c);
	return NULL;
}

Test(serve, reserved_concurrency_gives_429)
{
	struct em_client_resp r;
	struct bg b = { &S, "one", "600", 0, "" };
	pthread_t t;

	cr_assert_eq(deploy(&S, "one", "spin", 1769, "{\"concurrency\": 1}", &r), 200, "%s", r.body);
	pthread_create(&t, NULL, bg_invoke, &b);
	sleep_ms(250);
	cr_expect_eq(invoke(&S, "one", "10", &r), 429, "%s", r.body);
	cr_expect_str_eq(error_type(&r), "TooManyRequests");
	cr_expect(strstr(r.body, "concurrency") != NULL, "%s", r.body);
	pthread_join(t, NULL);
	cr_expect_eq(b.status, 200);
	cr_expect_eq(invoke(&S, "one", "10", &r), 200, "%s", r.body);
}

/* A redeploy makes a new version; an invocation in flight finishes on the old one. */
Test(serve, redeploy_keeps_in_flight_on_the_old_version)
{
	struct em_client_resp r;
	struct bg b = { &S, "re", "500", 0, "" };
	pthread_t t;
	json_t *d;

	cr_assert_eq(deploy(&S, "re", "spin", 1769, NULL, &r), 200, "%s", r.body);
	cr_assert_eq(invoke(&S, "re", "1", &r), 200, "%s", r.body);
	pthread_create(&t, NULL, bg_invoke, &b);
	sleep_ms(200);
	cr_assert_eq(deploy(&S, "re", "spin", 1770, NULL, &r), 200, "%s", r.body);
	pthread_join(t, NULL);
	cr_expect_eq(b.status, 200);
	d = get_json(&S, "/v1/functions/re", NULL);
	cr_expect_eq(json_integer_value(json_object_get(d, "version")), 2);
	json_decref(d);
	cr_assert_eq(invoke(&S, "re", "1", &r), 200, "%s", r.body);
	cr_expect_str_eq(em_client_header(S.c, "Ember-Start"), "cold");
	cr_expect_eq(read_ull(inst_cg(&S, "memory", "re", "idle", NULL), "memory.limit_in_bytes"),
		     1770ull << 20);
}

Test(serve, remove_drains_then_404)
{
	struct em_client_resp r;
	struct bg b = { &S, "rm", "400", 0, "" };
	pthread_t t;
	struct em_err err = { 0 };

	cr_assert_eq(deploy(&S, "rm", "spin", 1769, NULL, &r), 200, "%s", r.body);
	pthread_create(&t, NULL, bg_invoke, &b);
	sleep_ms(150);
	cr_assert_eq(em_client_request(S.c, "DELETE", "/v1/functions/rm", NULL, NULL, 0, &r, &err),
		     0);
	cr_expect_lt(r.status, 300, "%d %s", r.status, r.body);
	pthread_join(t, NULL);
	cr_expect_eq(b.status, 200, "the in-flight invocation did not finish");
	cr_expect_eq(invoke(&S, "rm", "1", &r), 404);
	sleep_ms(100);
	cr_expect_eq(inst_count(&S), 0);
}

/* The billing headers agree with what the function did: 200 ms on a CPU. */
Test(serve, billing_headers_match_the_work)
{
	struct em_client_resp r;

	cr_assert_eq(deploy(&S, "spin", "spin", 1769, NULL, &r), 200, "%s", r.body);
	cr_assert_eq(invoke(&S, "spin", "5", &r), 200, "%s", r.body);
	cr_assert_eq(invoke(&S, "spin", "200", &r), 200, "%s", r.body);
	double cpu = header_num("Ember-Cpu-Ms"), dur = header_num("Ember-Duration-Ms");
	cr_expect(cpu > 190 && cpu < 215, "cpu %.3f ms for 200 ms of spinning", cpu);
	cr_expect(dur >= cpu - 1 && dur < 400, "duration %.3f ms, cpu %.3f ms", dur, cpu);
	cr_expect_eq(header_num("Ember-Billed-Ms"), (double)(uint64_t)(dur + 0.999999));
}

Test(serve, logs_and_invocations_are_queryable)
{
	struct em_client_resp r;
	char id[64], path[256];
	json_t *j;
	int st;

	cr_assert_eq(deploy(&S, "lg", "probe", 128, NULL, &r), 200, "%s", r.body);
	cr_assert_eq(invoke(&S, "lg", "log marker-4711", &r), 200, "%s", r.body);
	snprintf(id, sizeof(id), "%s", em_client_header(S.c, "Ember-Request-Id"));
	snprintf(path, sizeof(path), "/v1/functions/lg/logs?requestId=%s", id);
	j = get_json(&S, path, &st);
	cr_assert_eq(st, 200);
	cr_assert_eq(json_array_size(j), 1);
	cr_expect(strstr(json_string_value(json_object_get(json_array_get(j, 0), "log")),
			 "marker-4711") != NULL);
	json_decref(j);
	j = get_json(&S, "/v1/functions/lg/invocations", &st);
	cr_assert_eq(st, 200);
	cr_assert_geq(json_array_size(j), 1);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "requestId")), id);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "start")), "cold");
	json_decref(j);

	cr_assert_eq(em_client_request(S.c, "GET", "/metrics", NULL, NULL, 0, &r, &(struct em_err){0}),
		     0);
	cr_expect(strstr(r.body, "ember_invocations_total{function=\"lg\",start=\"cold\","
				 "outcome=\"ok\"} 1") != NULL, "%s", r.body);
}

/* kill -9 of the host: the next one removes every orphan before serving; records survive. */
Test(serve, restart_after_kill9_cleans_orphans_and_keeps_records)
{
	struct em_client_resp r;
	char id[64];
	int pid = 0;
	json_t *j;

	cr_assert_eq(deploy(&S, "k9", "hello-c", 128, NULL, &r), 200, "%s", r.body);
	cr_assert_eq(invoke(&S, "k9", "x", &r), 200, "%s", r.body);
	snprintf(id, sizeof(id), "%s", em_client_header(S.c, "Ember-Request-Id"));
	cr_assert_not_null(inst_cg(&S, "memory", "k9", "idle", &pid));
	serve_kill9(&S);
	serve_start(&S);
	/* the old instance is gone, its cgroup too */
	char stat[64];
	snprintf(stat, sizeof(stat), "/proc/%d", pid);
	if (access(stat, F_OK) == 0) /* dead, maybe not yet reaped by the machine's init */
		cr_expect_eq(read_str(stat, "stat")[strcspn(read_str(stat, "stat"), ")") + 2], 'Z',
			     "instance pid %d survived the host's restart", pid);
	j = get_json(&S, "/v1/functions/k9/invocations", NULL);
	cr_assert_eq(json_array_size(j), 1, "billing records lost");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "requestId")), id);
	json_decref(j);
	/* the function is deployed again and runs */
	cr_assert_eq(invoke(&S, "k9", "y", &r), 200, "%s", r.body);
	cr_expect_str_eq(em_client_header(S.c, "Ember-Start"), "cold");
}

Test(serve, http_contract)
{
	struct em_client_resp r;
	struct em_err err = { 0 };
	size_t big = 6 * 1024 * 1024 + 1;
	char *payload = malloc(big);

	cr_assert_eq(deploy(&S, "h", "probe", 128, NULL, &r), 200, "%s", r.body);
	memset(payload, 'x', big);
	cr_assert_eq(em_client_request(S.c, "POST", "/v1/functions/h/invoke", NULL, payload, big, &r,
				       &err), 0, "%s", err.msg);
	cr_expect_eq(r.status, 413, "%d %s", r.status, r.body);
	cr_expect_str_eq(error_type(&r), "RequestTooLarge");
	/* exactly the limit passes: echo answers with the payload minus "echo " */
	memcpy(payload, "echo ", 5);
	cr_assert_eq(em_client_request(S.c, "POST", "/v1/functions/h/invoke", NULL, payload, big - 1,
				       &r, &err), 0, "%s", err.msg);
	cr_expect_eq(r.status, 200, "%d %.200s", r.status, r.body);
	cr_expect_eq(r.len, big - 1 - 5);
	free(payload);
	cr_assert_eq(em_client_request(S.c, "GET", "/v1/nothing", NULL, NULL, 0, &r, &err), 0);
	cr_expect_eq(r.status, 404);
	cr_assert_eq(em_client_request(S.c, "PATCH", "/v1/functions/h", NULL, NULL, 0, &r, &err), 0);
	cr_expect_eq(r.status, 405);
	cr_expect_not_null(em_client_header(S.c, "Allow"));
	cr_assert_eq(em_client_request(S.c, "DELETE", "/v1/functions/zz", NULL, NULL, 0, &r, &err), 0);
	cr_expect_eq(r.status, 404);
	cr_expect_str_eq(error_type(&r), "ResourceNotFound");
}

/* Bridge mode: an eth0 with an address on the host's own bridge (in a namespace of the host's,
 * never the machine's). */
Test(serve, bridge_network_mode)
{
	struct em_client_resp r;
	json_t *j, *ifs;

	cr_assert_eq(deploy(&S, "br", "probe", 128, "{\"network\": \"bridge\"}", &r), 200, "%s", r.body);
	cr_assert_eq(invoke(&S, "br", "net", &r), 200, "%s", r.body);
	j = json_loads(r.body, 0, NULL);
	ifs = json_object_get(j, "interfaces");
	cr_expect_eq(json_array_size(ifs), 2, "%s", r.body);
	cr_expect(strstr(r.body, "eth0") != NULL, "%s", r.body);
	json_decref(j);
}

/* Node memory is accounted: a reservation that cannot fit refuses the deploy, a scale-up that
 * cannot fit refuses the invocation (503), and an idle instance is reaped to make room. */
Test(serve, capacity_is_accounted)
{
	struct em_client_resp r;
	struct bg b = { &S, "big", "800", 0, "" };
	pthread_t t;

	/* the fixture's node has 4096 MB for instances */
	cr_assert_eq(deploy(&S, "res", "spin", 2500, "{\"concurrency\": 2}", &r), 503, "%s", r.body);
	cr_expect_str_eq(error_type(&r), "InsufficientCapacity");
	cr_expect(strstr(r.body, "reserved concurrency 2") != NULL, "%s", r.body);
	cr_assert_eq(deploy(&S, "big", "spin", 3000, NULL, &r), 200, "%s", r.body);
	pthread_create(&t, NULL, bg_invoke, &b);
	sleep_ms(300);
	cr_expect_eq(invoke(&S, "big", "1", &r), 503, "%s", r.body);
	cr_expect_str_eq(error_type(&r), "InsufficientCapacity");
	pthread_join(t, NULL);
	cr_expect_eq(b.status, 200);
	/* the idle 3000 MB instance is reaped for another function's cold start */
	cr_assert_eq(deploy(&S, "other", "hello-c", 2000, NULL, &r), 200, "%s", r.body);
	cr_expect_eq(invoke(&S, "other", "x", &r), 200, "%s", r.body);
	cr_expect_null(inst_cg(&S, "memory", "big", "idle", NULL), "the LRU idle instance stayed");
}

/* Idle instances are reaped after the TTL; the next start is cold again. */
Test(serve, idle_ttl_reaps)
{
	struct em_client_resp r;
	int pid = 0;

	serve_stop(&S, false);
	S.extra[0] = "--idle-ttl-ms";
	S.extra[1] = "300";
	serve_start(&S);
	cr_assert_eq(deploy(&S, "ttl", "hello-c", 128, NULL, &r), 200, "%s", r.body);
	cr_assert_eq(invoke(&S, "ttl", "x", &r), 200, "%s", r.body);
	cr_assert_not_null(inst_cg(&S, "memory", "ttl", "idle", &pid));
	sleep_ms(2500);
	cr_expect_null(inst_cg(&S, "memory", "ttl", "idle", NULL), "still idle after the TTL");
	cr_assert_eq(invoke(&S, "ttl", "y", &r), 200, "%s", r.body);
	/* a new instance: cold, or forked from the template the first cold start left */
	cr_expect_str_neq(em_client_header(S.c, "Ember-Start"), "warm");
}

struct churn { struct serve *s; volatile int stop; int requests; };

static void *connect_churn(void *arg)
{
	struct churn *ch = arg;
	struct em_client_resp r;
	struct em_err err = { 0 };

	while (!ch->stop) {
		struct em_client *c;
		/* a new connection each time: the API starts a thread per connection */
		cr_assert_eq(em_client_open(ch->s->sock, &c, &err), 0, "%s", err.msg);
		cr_assert_eq(em_client_request(c, "GET", "/v1/functions", NULL, NULL, 0, &r, &err), 0,
			     "%s", err.msg);
		em_client_close(c);
		__atomic_add_fetch(&ch->requests, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* Sandboxes are cloned from the multi-threaded host while the API starts and ends connection
 * threads: the child must not wait for a thread it did not inherit (glibc's setxid broadcast
 * did, and hung the spawner and every cold start behind it). */
Test(serve, parking_while_connections_come_and_go)
{
	struct em_client_resp r;
	struct churn ch = { &S, 0, 0 };
	pthread_t t[3];

	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, connect_churn, &ch);
	for (int i = 0; i < 15; i++) {
		cr_assert_eq(deploy(&S, "churn", "hello-c", 128, NULL, &r), 200, "%s", r.body);
		cr_assert_eq(invoke(&S, "churn", "x", &r), 200, "%s", r.body);
	}
	ch.stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	cr_expect_gt(ch.requests, 15);
}
