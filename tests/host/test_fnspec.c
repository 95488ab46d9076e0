/* tests/host/test_fnspec.c — the deploy body: every validation rule with its exact message, the
 * defaults, the round trip through em_fn_spec_to_json, copy and free. Bundles and rootfs are
 * real directories under a temp dir (the existence checks look at the file system). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "runtime/host/fnspec.h"

static char dir[] = "/tmp/ember-test-fnspec-XXXXXX";
static char bundle[128], rootfs[128], nocfg[128], file[128];

static void setup(void)
{
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(bundle, sizeof(bundle), "%s/bundle", dir);
	snprintf(rootfs, sizeof(rootfs), "%s/bundle/rootfs", dir);
	snprintf(nocfg, sizeof(nocfg), "%s/nocfg", dir);
	snprintf(file, sizeof(file), "%s/file", dir);
	cr_assert_eq(mkdir(bundle, 0755), 0);
	cr_assert_eq(mkdir(rootfs, 0755), 0);
	cr_assert_eq(mkdir(nocfg, 0755), 0);
	char cfg[160];
	snprintf(cfg, sizeof(cfg), "%s/config.json", bundle);
	cr_assert_not_null(f = fopen(cfg, "w"));
	fputs("{}", f);
	fclose(f);
	cr_assert_not_null(f = fopen(file, "w"));
	fclose(f);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd)) {
	}
}

TestSuite(fnspec, .init = setup, .fini = teardown);

/* Parse text (with %B for the bundle path, %R for the rootfs); expect failure with exactly msg. */
static char *subst(const char *text)
{
	static char out[4096];
	size_t n = 0;

	for (const char *p = text; *p && n < sizeof(out) - 200; p++) {
		if (p[0] == '%' && (p[1] == 'B' || p[1] == 'R' || p[1] == 'N' || p[1] == 'F')) {
			const char *v = p[1] == 'B' ? bundle : p[1] == 'R' ? rootfs : p[1] == 'N' ? nocfg
											     : file;
			n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", v);
			p++;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
	return out;
}

static int parse(const char *name, const char *text, struct em_fn_spec *spec, struct em_err *err)
{
	json_error_t je;
	json_t *j = json_loads(subst(text), JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);

	cr_assert_not_null(j, "bad JSON in the test: %s: %s", text, je.text);
	int ret = em_fn_spec_from_json(name, j, spec, err);
	json_decref(j);
	return ret;
}

static void refused(const char *text, const char *msg)
{
	struct em_fn_spec spec;
	struct em_err err = { 0 };
	char want[1024];

	snprintf(want, sizeof(want), "%s", subst(msg));
	cr_assert_eq(parse("f", text, &spec, &err), -EINVAL, "accepted: %s", subst(text));
	cr_expect_eq(err.code, EINVAL);
	cr_expect_str_eq(err.msg, want, "for %s", subst(text));
	/* a failed parse leaves nothing to free */
	cr_expect_null(spec.bundle);
	cr_expect_null(spec.rootfs);
	cr_expect_null(spec.command);
	cr_expect_null(spec.env);
}

static void accepted(const char *text, struct em_fn_spec *spec)
{
	struct em_err err = { 0 };

	cr_assert_eq(parse("f", text, spec, &err), 0, "%s: %s", subst(text), err.msg);
}

Test(fnspec, names)
{
	char n64[65], n65[66];
	memset(n64, 'x', 64);
	n64[64] = '\0';
	memset(n65, 'y', 65);
	n65[65] = '\0';
	const char *ok[] = { "a", "A-z_0-9", "hello-world", n64 };
	const char *bad[] = { "", "a.b", "a/b", "a b", "\xc3\xa4", n65 };
	for (size_t i = 0; i < 4; i++)
		cr_expect(em_fn_name_valid(ok[i]), "%s", ok[i]);
	for (size_t i = 0; i < 6; i++)
		cr_expect(!em_fn_name_valid(bad[i]), "%s", bad[i]);
	cr_expect(!em_fn_name_valid(NULL));

	struct em_fn_spec spec;
	struct em_err err = { 0 };
	cr_assert_eq(parse("a.b", "{\"bundle\": \"%B\"}", &spec, &err), -EINVAL);
	cr_expect_str_eq(err.msg, "name: must be 1 to 64 characters of A-Z a-z 0-9 _ - (got \"a.b\")");
	cr_assert_eq(parse(bad[5], "{\"bundle\": \"%B\"}", &spec, &err), -EINVAL);
	cr_assert_eq(parse(ok[3], "{\"bundle\": \"%B\"}", &spec, &err), 0, "%s", err.msg);
	cr_expect_str_eq(spec.name, ok[3]);
	em_fn_spec_free(&spec);
}

Test(fnspec, defaults_with_a_bundle)
{
	struct em_fn_spec spec;

	accepted("{\"bundle\": \"%B\"}", &spec);
	cr_expect_str_eq(spec.name, "f");
	cr_expect_str_eq(spec.bundle, bundle);
	cr_expect_null(spec.rootfs);
	cr_expect_eq(spec.n_command, 0);
	cr_expect_eq(spec.memory_mb, 128);
	cr_expect_eq(spec.timeout_ms, 3000);
	cr_expect_eq(spec.concurrency, 0);
	cr_expect_eq(spec.tmp_mb, 512);
	cr_expect_eq(spec.network, EM_FN_NET_NONE);
	cr_expect_eq(spec.n_env, 0);
	em_fn_spec_free(&spec);
	cr_expect_null(spec.bundle);
	em_fn_spec_free(&spec); /* twice is harmless */
}

Test(fnspec, every_field_set)
{
	struct em_fn_spec spec;

	accepted("{\"rootfs\": \"%R\", \"command\": [\"/bin/fn\", \"--flag\", \"\"],"
		 " \"memoryMb\": 10240, \"timeoutMs\": 900000, \"concurrency\": 1000, \"tmpMb\": 10240,"
		 " \"network\": \"bridge\", \"environment\": {\"A\": \"1\", \"_b2\": \"x=y\", \"E\": \"\"}}",
		 &spec);
	cr_expect_str_eq(spec.rootfs, rootfs);
	cr_expect_null(spec.bundle);
	cr_assert_eq(spec.n_command, 3);
	cr_expect_str_eq(spec.command[0], "/bin/fn");
	cr_expect_str_eq(spec.command[1], "--flag");
	cr_expect_str_eq(spec.command[2], "");
	cr_expect_null(spec.command[3], "command is NULL-terminated");
	cr_expect_eq(spec.memory_mb, 10240);
	cr_expect_eq(spec.timeout_ms, 900000);
	cr_expect_eq(spec.concurrency, 1000);
	cr_expect_eq(spec.tmp_mb, 10240);
	cr_expect_eq(spec.network, EM_FN_NET_BRIDGE);
	cr_assert_eq(spec.n_env, 3);
	cr_expect_str_eq(spec.env[0], "A=1");
	cr_expect_str_eq(spec.env[1], "_b2=x=y");
	cr_expect_str_eq(spec.env[2], "E=");
	cr_expect_null(spec.env[3]);
	em_fn_spec_free(&spec);
}

/* null is "not given": the default applies (a client merging objects unsets a key so) */
Test(fnspec, null_is_absent)
{
	struct em_fn_spec spec;

	accepted("{\"bundle\": null, \"rootfs\": \"%R\", \"command\": [\"/x\"], \"memoryMb\": null,"
		 " \"timeoutMs\": null, \"concurrency\": null, \"tmpMb\": null, \"network\": null,"
		 " \"environment\": null}", &spec);
	cr_expect_null(spec.bundle);
	cr_expect_str_eq(spec.rootfs, rootfs);
	cr_expect_eq(spec.memory_mb, 128);
	cr_expect_eq(spec.timeout_ms, 3000);
	cr_expect_eq(spec.tmp_mb, 512);
	cr_expect_eq(spec.n_env, 0);
	em_fn_spec_free(&spec);
	refused("{\"bundle\": null}", "bundle: missing (give either bundle, or rootfs and command)");
	refused("{\"bundle\": \"%B\", \"memroyMb\": null}",
		"memroyMb: unknown key (known: bundle, rootfs, command, memoryMb, timeoutMs, "
		"environment, concurrency, tmpMb, network, template, snapshot, restore)");
}

Test(fnspec, lower_bounds)
{
	struct em_fn_spec spec;

	accepted("{\"bundle\": \"%B\", \"memoryMb\": 128, \"timeoutMs\": 1, \"concurrency\": 0,"
		 " \"tmpMb\": 1, \"network\": \"none\"}", &spec);
	cr_expect_eq(spec.memory_mb, 128);
	cr_expect_eq(spec.timeout_ms, 1);
	cr_expect_eq(spec.concurrency, 0);
	cr_expect_eq(spec.tmp_mb, 1);
	cr_expect_eq(spec.network, EM_FN_NET_NONE);
	em_fn_spec_free(&spec);
}

Test(fnspec, memory)
{
	refused("{\"bundle\": \"%B\", \"memoryMb\": 127}",
		"memoryMb: must be an integer from 128 to 10240 in MB (got 127)");
	refused("{\"bundle\": \"%B\", \"memoryMb\": 10241}",
		"memoryMb: must be an integer from 128 to 10240 in MB (got 10241)");
	refused("{\"bundle\": \"%B\", \"memoryMb\": \"abc\"}",
		"memoryMb: must be an integer from 128 to 10240 in MB (got \"abc\")");
	refused("{\"bundle\": \"%B\", \"memoryMb\": \"256\"}",
		"memoryMb: must be an integer from 128 to 10240 in MB (got \"256\")");
	refused("{\"bundle\": \"%B\", \"memoryMb\": 128.5}",
		"memoryMb: must be an integer from 128 to 10240 in MB (got 128.5)");
	refused("{\"bundle\": \"%B\", \"memoryMb\": 256.0}",
		"memoryMb: must be an integer from 128 to 10240 in MB (got 256.0)");
	refused("{\"bundle\": \"%B\", \"memoryMb\": -256}",
		"memoryMb: must be an integer from 128 to 10240 in MB (got -256)");
	refused("{\"bundle\": \"%B\", \"memoryMb\": 4294967424}",
		"memoryMb: must be an integer from 128 to 10240 in MB (got 4294967424)");
	refused("{\"bundle\": \"%B\", \"memoryMb\": true}",
		"memoryMb: must be an integer from 128 to 10240 in MB (got true)");
}

Test(fnspec, timeout_concurrency_tmp)
{
	refused("{\"bundle\": \"%B\", \"timeoutMs\": 0}",
		"timeoutMs: must be an integer from 1 to 900000 in ms (got 0)");
	refused("{\"bundle\": \"%B\", \"timeoutMs\": 900001}",
		"timeoutMs: must be an integer from 1 to 900000 in ms (got 900001)");
	refused("{\"bundle\": \"%B\", \"timeoutMs\": \"3s\"}",
		"timeoutMs: must be an integer from 1 to 900000 in ms (got \"3s\")");
	refused("{\"bundle\": \"%B\", \"concurrency\": -1}",
		"concurrency: must be an integer from 0 to 1000 (got -1)");
	refused("{\"bundle\": \"%B\", \"concurrency\": 1001}",
		"concurrency: must be an integer from 0 to 1000 (got 1001)");
	refused("{\"bundle\": \"%B\", \"concurrency\": 1.5}",
		"concurrency: must be an integer from 0 to 1000 (got 1.5)");
	refused("{\"bundle\": \"%B\", \"tmpMb\": 0}",
		"tmpMb: must be an integer from 1 to 10240 in MB (got 0)");
	refused("{\"bundle\": \"%B\", \"tmpMb\": 10241}",
		"tmpMb: must be an integer from 1 to 10240 in MB (got 10241)");
	refused("{\"bundle\": \"%B\", \"tmpMb\": [512]}",
		"tmpMb: must be an integer from 1 to 10240 in MB (got [512])");
}

Test(fnspec, network)
{
	refused("{\"bundle\": \"%B\", \"network\": \"host\"}",
		"network: must be \"none\" or \"bridge\" (got \"host\")");
	refused("{\"bundle\": \"%B\", \"network\": \"None\"}",
		"network: must be \"none\" or \"bridge\" (got \"None\")");
	refused("{\"bundle\": \"%B\", \"network\": 0}",
		"network: must be \"none\" or \"bridge\" (got 0)");
}

Test(fnspec, environment)
{
	refused("{\"bundle\": \"%B\", \"environment\": [\"A=1\"]}",
		"environment: must be an object of strings (got [\"A=1\"])");
	refused("{\"bundle\": \"%B\", \"environment\": {\"A\": 1}}",
		"environment.A: must be a string (got 1)");
	refused("{\"bundle\": \"%B\", \"environment\": {\"A\": null}}",
		"environment.A: must be a string (got null)");
	refused("{\"bundle\": \"%B\", \"environment\": {\"A=B\": \"1\"}}",
		"environment: variable name \"A=B\" must not contain '='");
	refused("{\"bundle\": \"%B\", \"environment\": {\"\": \"1\"}}",
		"environment: a variable name must not be empty");
	refused("{\"bundle\": \"%B\", \"environment\": {\"1A\": \"1\"}}",
		"environment: \"1A\" is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)");
	refused("{\"bundle\": \"%B\", \"environment\": {\"A-B\": \"1\"}}",
		"environment: \"A-B\" is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)");
	refused("{\"bundle\": \"%B\", \"environment\": {\"A\": \"x\\u0000y\"}}",
		"environment.A: must be a string (got \"x\\u0000y\")");
}

Test(fnspec, bundle)
{
	refused("{\"bundle\": \"relative/dir\"}", "bundle: must be an absolute path (got \"relative/dir\")");
	refused("{\"bundle\": 5}", "bundle: must be an absolute path (got 5)");
	refused("{\"bundle\": \"\"}", "bundle: must be an absolute path (got \"\")");
	refused("{\"bundle\": \"/nonexistent-ember-x\"}",
		"bundle: /nonexistent-ember-x: ENOENT (No such file or directory)");
	refused("{\"bundle\": \"%F\"}", "bundle: %F: not a directory");
	refused("{\"bundle\": \"%N\"}", "bundle: %N/config.json: ENOENT (No such file or directory)");

	/* a trailing slash is fine and kept as given */
	struct em_fn_spec spec;
	char text[256];
	snprintf(text, sizeof(text), "{\"bundle\": \"%s/\"}", bundle);
	accepted(text, &spec);
	cr_expect_eq(strncmp(spec.bundle, bundle, strlen(bundle)), 0);
	em_fn_spec_free(&spec);
}

Test(fnspec, rootfs_and_command)
{
	refused("{\"rootfs\": \"%R\"}", "command: missing (required with rootfs)");
	refused("{\"command\": [\"/x\"]}", "rootfs: missing (required with command)");
	refused("{\"rootfs\": \"rootfs\", \"command\": [\"/x\"]}",
		"rootfs: must be an absolute path (got \"rootfs\")");
	refused("{\"rootfs\": \"/nonexistent-ember-x\", \"command\": [\"/x\"]}",
		"rootfs: /nonexistent-ember-x: ENOENT (No such file or directory)");
	refused("{\"rootfs\": \"%F\", \"command\": [\"/x\"]}", "rootfs: %F: not a directory");
	refused("{\"rootfs\": \"%R\", \"command\": []}",
		"command: must be a non-empty array of strings (got [])");
	refused("{\"rootfs\": \"%R\", \"command\": \"/bin/sh -c x\"}",
		"command: must be a non-empty array of strings (got \"/bin/sh -c x\")");
	refused("{\"rootfs\": \"%R\", \"command\": [\"/x\", 3]}", "command[1]: must be a string (got 3)");
	refused("{\"rootfs\": \"%R\", \"command\": [\"\"]}", "command[0]: must not be empty");
}

Test(fnspec, exactly_one_kind_of_code)
{
	refused("{}", "bundle: missing (give either bundle, or rootfs and command)");
	refused("{\"memoryMb\": 256}", "bundle: missing (give either bundle, or rootfs and command)");
	refused("{\"bundle\": \"%B\", \"rootfs\": \"%R\", \"command\": [\"/x\"]}",
		"bundle: cannot be combined with rootfs (give either bundle, or rootfs and command)");
	refused("{\"bundle\": \"%B\", \"command\": [\"/x\"]}",
		"bundle: cannot be combined with command (give either bundle, or rootfs and command)");
}

Test(fnspec, snapshot_and_restore)
{
	struct em_fn_spec spec;

	accepted("{\"bundle\": \"%B\"}", &spec);
	cr_expect_eq(spec.snapshot, EM_FN_SNAP_OFF);
	cr_expect_eq(spec.restore, EM_FN_RESTORE_MMAP);
	em_fn_spec_free(&spec);
	/* a provisioned image needs a template made at deploy: it becomes provisioned too */
	accepted("{\"bundle\": \"%B\", \"snapshot\": \"provisioned\", \"restore\": \"lazy\"}",
		 &spec);
	cr_expect_eq(spec.snapshot, EM_FN_SNAP_PROVISIONED);
	cr_expect_eq(spec.tmpl, EM_FN_TMPL_PROVISIONED);
	cr_expect_eq(spec.restore, EM_FN_RESTORE_LAZY);
	em_fn_spec_free(&spec);
	accepted("{\"bundle\": \"%B\", \"snapshot\": \"auto\", \"restore\": \"eager\"}", &spec);
	cr_expect_eq(spec.snapshot, EM_FN_SNAP_AUTO);
	cr_expect_eq(spec.tmpl, EM_FN_TMPL_AUTO);
	cr_expect_eq(spec.restore, EM_FN_RESTORE_EAGER);
	em_fn_spec_free(&spec);
	refused("{\"bundle\": \"%B\", \"snapshot\": \"always\"}",
		"snapshot: must be \"off\", \"auto\" or \"provisioned\" (got \"always\")");
	refused("{\"bundle\": \"%B\", \"restore\": 1}",
		"restore: must be \"mmap\", \"eager\" or \"lazy\" (got 1)");
	refused("{\"bundle\": \"%B\", \"snapshot\": \"auto\", \"template\": \"off\"}",
		"snapshot: \"auto\" needs a template, and template is \"off\"");
}

Test(fnspec, unknown_keys_and_bad_bodies)
{
	refused("{\"bundle\": \"%B\", \"memroyMb\": 256}",
		"memroyMb: unknown key (known: bundle, rootfs, command, memoryMb, timeoutMs, "
		"environment, concurrency, tmpMb, network, template, snapshot, restore)");
	/* the typo is reported even when something else is wrong too */
	refused("{\"MemoryMb\": 1}",
		"MemoryMb: unknown key (known: bundle, rootfs, command, memoryMb, timeoutMs, "
		"environment, concurrency, tmpMb, network, template, snapshot, restore)");
	refused("[1, 2]", "body: must be a JSON object (got [1,2])");
	refused("\"x\"", "body: must be a JSON object (got \"x\")");
	/* a long value is shown cut */
	refused("{\"bundle\": \"%B\", \"network\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
		"network: must be \"none\" or \"bridge\" (got \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...)");
}

Test(fnspec, to_json_round_trip)
{
	struct em_fn_spec a, b;
	struct em_err err = { 0 };
	json_t *j, *k;

	accepted("{\"rootfs\": \"%R\", \"command\": [\"/bin/fn\", \"a b\"], \"memoryMb\": 256,"
		 " \"environment\": {\"Z\": \"1\", \"A\": \"=\"}, \"network\": \"bridge\"}", &a);
	j = em_fn_spec_to_json(&a);
	cr_assert_not_null(j);
	char *s = json_dumps(j, JSON_COMPACT);
	char want[512];
	snprintf(want, sizeof(want),
		 "{\"rootfs\":\"%s\",\"command\":[\"/bin/fn\",\"a b\"],\"memoryMb\":256,"
		 "\"timeoutMs\":3000,\"environment\":{\"Z\":\"1\",\"A\":\"=\"},\"concurrency\":0,"
		 "\"tmpMb\":512,\"network\":\"bridge\",\"template\":\"auto\",\"snapshot\":\"off\","
		 "\"restore\":\"mmap\"}", rootfs);
	cr_expect_str_eq(s, want);
	free(s);
	/* what to_json gives parses back to the same spec */
	cr_assert_eq(em_fn_spec_from_json("f", j, &b, &err), 0, "%s", err.msg);
	k = em_fn_spec_to_json(&b);
	cr_expect(json_equal(j, k));
	json_decref(j);
	json_decref(k);
	em_fn_spec_free(&a);
	em_fn_spec_free(&b);

	accepted("{\"bundle\": \"%B\"}", &a);
	j = em_fn_spec_to_json(&a);
	cr_expect_str_eq(json_string_value(json_object_get(j, "bundle")), bundle);
	cr_expect_null(json_object_get(j, "rootfs"));
	cr_expect_null(json_object_get(j, "command"));
	cr_expect_eq(json_object_size(json_object_get(j, "environment")), 0);
	json_decref(j);
	em_fn_spec_free(&a);
}

Test(fnspec, copy_is_deep)
{
	struct em_fn_spec a, b;
	struct em_err err = { 0 };

	accepted("{\"rootfs\": \"%R\", \"command\": [\"/bin/fn\"], \"environment\": {\"A\": \"1\"},"
		 " \"memoryMb\": 512}", &a);
	cr_assert_eq(em_fn_spec_copy(&b, &a, &err), 0, "%s", err.msg);
	cr_expect_str_eq(b.name, "f");
	cr_expect_neq(b.rootfs, a.rootfs);
	cr_expect_str_eq(b.rootfs, a.rootfs);
	cr_expect_neq(b.command, a.command);
	cr_expect_neq(b.command[0], a.command[0]);
	cr_expect_str_eq(b.command[0], "/bin/fn");
	cr_expect_null(b.command[1]);
	cr_expect_str_eq(b.env[0], "A=1");
	cr_expect_eq(b.memory_mb, 512);
	em_fn_spec_free(&a);
	/* b survives a's free */
	cr_expect_str_eq(b.command[0], "/bin/fn");
	cr_expect_str_eq(b.env[0], "A=1");
	em_fn_spec_free(&b);
}
