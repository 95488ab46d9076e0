/* tests/runtime/test_namespaces.c — joining namespaces by path, time offsets, sysctls, devices,
 * oom score: what the kernel shows inside. */
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

	ember(&b, &rr, ARGS("delete", "--force", "first"));
	bundle_fini(&b);
}

TestSuite(namespaces, .fini = fini, .timeout = 60);

static void set_ns_path(const char *type, const char *path)
{
	json_t *ns = json_object_get(cfg_obj(&b, "linux"), "namespaces");
	size_t i;
	json_t *v;

	json_array_foreach(ns, i, v)
		if (!strcmp(json_string_value(json_object_get(v, "type")), type))
			json_object_set_new(v, "path", json_string(path));
}

Test(namespaces, join_another_containers_namespaces_by_path)
{
	char path[64], pidstr[32];

	bundle_init(&b, ARGS("sleep", "60"));
	json_object_set_new(b.cfg, "hostname", json_string("first-host"));
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "--detach", "--pid-file", "pid", "first"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	snprintf(path, sizeof(path), "%s/pid", b.dir);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(pidstr, sizeof(pidstr), f));
	fclose(f);
	int pid = atoi(pidstr);

	/* the second container joins the first one's uts, net and pid namespaces */
	cfg_set_args(&b, ARGS("sh", "-c", "hostname; readlink /proc/self/ns/net; tr '\\0' ' ' < /proc/1/cmdline; echo"));
	json_object_del(b.cfg, "hostname");
	snprintf(path, sizeof(path), "/proc/%d/ns/uts", pid);
	set_ns_path("uts", path);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	set_ns_path("network", path);
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
	set_ns_path("pid", path);
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	char net[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	ssize_t n = readlink(path, net, sizeof(net) - 1);
	cr_assert_gt(n, 0);
	net[n] = '\0';
	char expect[200];
	snprintf(expect, sizeof(expect), "first-host\n%s\nsleep 60 \n", net);
	cr_assert_str_eq(r.out, expect, "same uts and net namespaces, and the first's sleep is visible: %s", r.out);
	ember(&b, &r, ARGS("delete", "--force", "first"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_no_leak(&b, "c1");
	assert_no_leak(&b, "first");
}

Test(namespaces, time_namespace_offsets)
{
	bundle_init(&b, ARGS("cut", "-d.", "-f1", "/proc/uptime"));
	json_array_append_new(json_object_get(cfg_obj(&b, "linux"), "namespaces"),
			      json_pack("{s:s}", "type", "time"));
	json_object_set_new(cfg_obj(&b, "linux"), "timeOffsets",
			    json_pack("{s:{s:i, s:i}}", "boottime", "secs", 1000000, "nanosecs", 0));
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	FILE *f = fopen("/proc/uptime", "r");
	double host;
	cr_assert_eq(fscanf(f, "%lf", &host), 1);
	fclose(f);
	long inside = atol(r.out);
	cr_assert(inside >= (long)host + 1000000 - 5 && inside <= (long)host + 1000000 + 5,
		  "uptime inside %ld, host %.0f", inside, host);
	assert_no_leak(&b, "c1");
}

Test(namespaces, sysctl_devices_and_oom_score)
{
	bundle_init(&b, ARGS("sh", "-c",
			     "cat /proc/sys/net/ipv4/ip_forward; stat -c '%F %t:%T %a' /dev/extra-null; "
			     "cat /proc/self/oom_score_adj"));
	json_object_set_new(cfg_obj(&b, "linux"), "sysctl",
			    json_pack("{s:s}", "net.ipv4.ip_forward", "1"));
	json_object_set_new(cfg_obj(&b, "linux"), "devices",
			    json_pack("[{s:s, s:s, s:i, s:i, s:i}]", "path", "/dev/extra-null", "type",
				      "c", "major", 1, "minor", 3, "fileMode", 0640));
	json_object_set_new(cfg_obj(&b, "process"), "oomScoreAdj", json_integer(500));
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "1\ncharacter special file 1:3 640\n500\n");
	/* the host's own sysctl is untouched */
	FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "r");
	char v[8] = "";
	cr_assert_not_null(fgets(v, sizeof(v), f));
	fclose(f);
	cr_assert_str_eq(v, "0\n");
	assert_no_leak(&b, "c1");
}
