/* tests/runtime/test_failures.c — bad input and failing setup steps: each error names the field,
 * file or step and the reason, the exit status is non-zero, and nothing is left behind. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct bundle b;
static struct run_result r;

static void fini(void)
{
	bundle_fini(&b);
}

TestSuite(failures, .fini = fini, .timeout = 60);

static void run_fails_with(const char *needle)
{
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_neq(r.status, 0, "expected a failure; stdout: %s", r.out);
	cr_assert(strstr(r.err, needle), "stderr does not say \"%s\": %s", needle, r.err);
	assert_no_leak(&b, "c1");
}

Test(failures, unknown_namespace_names_the_json_path)
{
	bundle_init(&b, ARGS("true"));
	json_array_append_new(json_object_get(cfg_obj(&b, "linux"), "namespaces"),
			      json_pack("{s:s}", "type", "foo"));
	run_fails_with("unknown namespace \"foo\"");
	cr_assert(strstr(r.err, "config.json"), "%s", r.err);
}

Test(failures, missing_config)
{
	bundle_init(&b, ARGS("true"));
	ember(&b, &r, ARGS("run", "--bundle", "/nonexistent-ember-bundle", "c1"));
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "/nonexistent-ember-bundle"), "%s", r.err);
	assert_no_leak(&b, "c1");
}

Test(failures, missing_program_names_it)
{
	bundle_init(&b, ARGS("no-such-program"));
	run_fails_with("find \"no-such-program\" in the container's PATH: ENOENT");
}

Test(failures, missing_cwd_names_the_step)
{
	bundle_init(&b, ARGS("true"));
	json_object_set_new(cfg_obj(&b, "process"), "cwd", json_string("/no/such/dir"));
	run_fails_with("chdir to process.cwd /no/such/dir: ENOENT");
}

Test(failures, bind_source_missing)
{
	bundle_init(&b, ARGS("true"));
	json_array_append_new(json_object_get(b.cfg, "mounts"),
			      json_pack("{s:s, s:s, s:[s]}", "destination", "/mnt", "source",
					"/nonexistent-ember-src", "options", "bind"));
	run_fails_with("/nonexistent-ember-src");
}

Test(failures, bad_mount_type_names_the_step)
{
	bundle_init(&b, ARGS("true"));
	json_array_append_new(json_object_get(b.cfg, "mounts"),
			      json_pack("{s:s, s:s, s:s}", "destination", "/mnt", "type",
					"nosuchfs", "source", "x"));
	run_fails_with("mount nosuchfs on /mnt: ENODEV");
}

Test(failures, duplicate_id)
{
	bundle_init(&b, ARGS("sleep", "30"));
	bundle_write(&b);
	ember(&b, &r, ARGS("create", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	ember(&b, &r, ARGS("create", "c1"));
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "container \"c1\" already exists"), "%s", r.err);
	ember(&b, &r, ARGS("delete", "--force", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_no_leak(&b, "c1");
}

Test(failures, invalid_id)
{
	bundle_init(&b, ARGS("true"));
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "../x"));
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "invalid container id"), "%s", r.err);
}

Test(failures, commands_on_a_missing_container)
{
	static const char *const cmds[] = { "start", "state", "kill", "delete", "pause" };

	bundle_init(&b, ARGS("true"));
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		ember(&b, &r, ARGS(cmds[i], "nope"));
		cr_assert_neq(r.status, 0, "%s", cmds[i]);
		cr_assert(strstr(r.err, "container \"nope\" does not exist"), "%s: %s", cmds[i], r.err);
	}
	ember(&b, &r, ARGS("delete", "--force", "nope"));
	cr_assert_eq(r.status, 0, "delete --force of a missing container succeeds, as runc's");
}

Test(failures, systemd_cgroup_is_refused_clearly)
{
	bundle_init(&b, ARGS("true"));
	bundle_write(&b);
	ember(&b, &r, ARGS("--systemd-cgroup", "run", "c1"));
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "--systemd-cgroup is not supported"), "%s", r.err);
}

Test(failures, json_log_carries_the_error)
{
	char log[300], cmdlog[350];

	bundle_init(&b, ARGS("no-such-program"));
	bundle_write(&b);
	snprintf(log, sizeof(log), "%s/log.json", b.dir);
	snprintf(cmdlog, sizeof(cmdlog), "%s", log);
	ember(&b, &r, ARGS("--log", cmdlog, "--log-format", "json", "run", "c1"));
	cr_assert_neq(r.status, 0);
	json_error_t jerr;
	json_t *j = json_load_file(log, JSON_DISABLE_EOF_CHECK, &jerr);
	cr_assert_not_null(j, "%s", jerr.text);
	cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "error");
	cr_assert(strstr(json_string_value(json_object_get(j, "msg")), "no-such-program"));
	json_decref(j);
	assert_no_leak(&b, "c1");
}
