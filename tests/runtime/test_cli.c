/* tests/runtime/test_cli.c — the commands that only read or write files: spec, features, the
 * usage errors a caller gets, version. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "bundle.h"
#include "common/err.h"
#include "runtime/oci.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct bundle b;
static struct run_result r;

static void fini(void)
{
	bundle_fini(&b);
}

TestSuite(cli, .fini = fini, .timeout = 30);

Test(cli, spec_writes_a_config_that_parses_and_refuses_to_overwrite)
{
	char path[300];
	struct em_oci_config cfg;
	struct em_err err;

	bundle_init(&b, NULL);
	snprintf(path, sizeof(path), "%s/config.json", b.dir);
	remove(path);
	ember(&b, &r, ARGS("spec", "--rootless"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(em_oci_load(path, &cfg, &err), 0, "%s", err.msg);
	cr_assert_not_null(em_oci_find_ns(&cfg, EM_NS_USER), "a rootless spec has a user namespace");
	cr_assert_null(em_oci_find_ns(&cfg, EM_NS_NET));
	em_oci_config_free(&cfg);
	ember(&b, &r, ARGS("spec"));
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "exists: remove it first"), "%s", r.err);
}

Test(cli, features_lists_what_ember_supports)
{
	bundle_init(&b, NULL);
	ember(&b, &r, ARGS("features"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	json_t *j = json_loads(r.out, 0, NULL);
	cr_assert_not_null(j, "%s", r.out);
	cr_assert_str_eq(json_string_value(json_object_get(j, "ociVersionMax")), "1.2.0");
	json_t *ns = json_object_get(json_object_get(j, "linux"), "namespaces");
	cr_assert_eq(json_array_size(ns), 8);
	json_t *caps = json_object_get(json_object_get(j, "linux"), "capabilities");
	cr_assert_eq(json_array_size(caps), 41, "CAP_CHOWN .. CAP_CHECKPOINT_RESTORE");
	json_decref(j);
}

Test(cli, usage_errors_name_what_is_wrong)
{
	bundle_init(&b, NULL);
	ember(&b, &r, ARGS("frobnicate"));
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "unknown command \"frobnicate\""), "%s", r.err);
	ember(&b, &r, ARGS("kill"));
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "missing the container id"), "%s", r.err);
	ember(&b, &r, ARGS("kill", "c1", "SIGNOPE"));
	cr_assert(strstr(r.err, "unknown signal \"SIGNOPE\""), "%s", r.err);
	ember(&b, &r, ARGS("create", "--preserve-fds", "x", "c1"));
	cr_assert(strstr(r.err, "--preserve-fds: expected 0..1024"), "%s", r.err);
	ember(&b, &r, ARGS("exec", "c1"));
	cr_assert(strstr(r.err, "missing the command to run"), "%s", r.err);
	ember(&b, &r, ARGS("--log-format", "xml", "list"));
	cr_assert(strstr(r.err, "--log-format: expected text or json"), "%s", r.err);
}
