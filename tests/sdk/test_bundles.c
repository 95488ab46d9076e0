/* tests/sdk/test_bundles.c — the example bundles `make` built (build/examples/NAME) run as they
 * are, once (no channel: stdin -> stdout), under `ember run` and `runc run`: the config.json
 * mkbundle.py wrote is valid for both, the rootfs holds what the function needs (the Python ones:
 * the host's /usr, read-only), and the sandbox is what the config says (pid 1, only lo, a
 * writable /tmp on a read-only root). Each run gets its own state root, checked empty after. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroups/cgroups.h"
#include "common/err.h"
#include "inst.h"

static struct inst in;
static char cg_parent[64];

/* ember's runs go below a cgroup parent of this test's, removed at the end (ember keeps its
 * parent, with the freezer anchor, for the next container). */
static void fini(void)
{
	struct em_cg_root *root;
	struct em_err err = { 0 };

	inst_reap_all();
	if (cg_parent[0] && em_cg_root_open(&root, cg_parent, NULL, &err) == 0) {
		em_cg_root_remove(root, &err);
		em_cg_root_close(root);
	}
}

TestSuite(bundles, .fini = fini, .timeout = 120);

static const char *runc_path(void)
{
	static const char *const paths[] = { "/usr/sbin/runc", "/usr/bin/runc", NULL };

	for (const char *const *p = paths; *p; p++)
		if (access(*p, X_OK) == 0)
			return *p;
	return NULL;
}

/* Run bundle NAME once under runtime (an ember- or runc-style CLI) with body on stdin; the exit
 * code, stdout in out. */
static int run_bundle(const char *runtime, const char *name, const char *body, char *out,
		      size_t cap)
{
	char root[64] = "/run/ember-test-sdk-XXXXXX", id[64], err[8192];
	static int seq;
	DIR *d;
	struct dirent *de;
	int left = 0;

	cr_assert_not_null(mkdtemp(root));
	snprintf(id, sizeof(id), "sdk-%d-%d", (int)getpid(), seq++);
	snprintf(cg_parent, sizeof(cg_parent), "ember-test-sdk-%d", (int)getpid());
	const char *argv[12];
	size_t a = 0;
	argv[a++] = runtime;
	argv[a++] = "--root";
	argv[a++] = root;
	if (strstr(runtime, "ember")) {
		argv[a++] = "--cgroup-parent";
		argv[a++] = cg_parent;
	}
	argv[a++] = "run";
	argv[a++] = "--bundle";
	argv[a++] = t_bundle(name);
	argv[a++] = id;
	argv[a] = NULL;
	inst_spawn(&in, argv, NULL, NULL, false);
	cr_assert_eq(inst_send_raw(&in, body, strlen(body)), 0);
	inst_close(&in);
	int st = inst_wait(&in, 60000);
	inst_read_all(in.out, out, cap);
	inst_read_all(in.err, err, sizeof(err));
	/* the runtime removed what it made for the container */
	d = opendir(root);
	cr_assert_not_null(d);
	while ((de = readdir(d)))
		left += de->d_name[0] != '.';
	closedir(d);
	rmdir(root);
	cr_expect_eq(left, 0, "%s left state behind in %s", runtime, root);
	cr_assert_neq(exit_code(st), -1, "%s run %s: status %#x; stderr: %s", runtime, name, st, err);
	if (exit_code(st) != 0)
		cr_log_info("%s run %s: exit %d; stderr: %s", runtime, name, exit_code(st), err);
	return exit_code(st);
}

static void expect_run(const char *runtime, const char *name, const char *body, const char *want)
{
	char out[8192];

	cr_assert_eq(run_bundle(runtime, name, body, out, sizeof(out)), 0, "%s run %s", runtime, name);
	cr_assert_str_eq(out, want, "%s run %s", runtime, name);
}

/* The probe's view of the sandbox, the same under any runtime. */
static void expect_sandbox(const char *runtime)
{
	char out[8192];

	cr_assert_eq(run_bundle(runtime, "probe", "pid", out, sizeof(out)), 0);
	const char *pid1 = "{\"pid\":1,\"ppid\":0,";
	cr_assert(!strncmp(out, pid1, strlen(pid1)), "%s: %s", runtime, out);
	expect_run(runtime, "probe", "net", "{\"connect\":\"ENETUNREACH\",\"interfaces\":[\"lo\"]}");
	expect_run(runtime, "probe", "tmp 2", "{\"requestedMb\":2,\"written\":2097152,\"error\":null}");
	expect_run(runtime, "probe", "env PATH", "/usr/local/bin:/usr/bin:/bin");
	cr_assert_eq(run_bundle(runtime, "probe", "env EMBER_CHANNEL_FD", out, sizeof(out)), 1,
		     "no channel in a bundle run by hand");
}

/* entry i of init-heavy-c's table */
static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* entries 0 and 1 of init-heavy-python's table: the first 16 bytes of its SHAKE-256 stream
 * (an XOF's prefix does not depend on the length asked for), computed here by python3's hashlib */
static uint64_t shake_first_two(void)
{
	FILE *p = popen(PYTHON " -c 'import hashlib; t = hashlib.shake_256(b\"ember init-heavy\")"
			".digest(16); print(int.from_bytes(t[:8], \"little\") + "
			"int.from_bytes(t[8:], \"little\") & (2**64 - 1))'", "r");
	unsigned long long v = 0;

	cr_assert_not_null(p);
	cr_assert_eq(fscanf(p, "%llu", &v), 1);
	cr_assert_eq(pclose(p), 0);
	return v;
}

Test(bundles, every_example_runs_once_under_ember)
{
	char out[8192], want[128];

	expect_run(t_ember(), "hello-c", "world", "hello, world");
	expect_run(t_ember(), "hello-python", "world", "hello, world");
	cr_assert_eq(run_bundle(t_ember(), "spin", "5", out, sizeof(out)), 0);
	const char *spun = "{\"spinMs\":5,\"cpuMs\":";
	cr_assert(!strncmp(out, spun, strlen(spun)), "%s", out);
	/* the default 256 MB tables */
	snprintf(want, sizeof(want), "{\"tableMb\":256,\"entries\":2,\"checksum\":\"%016llx\"}",
		 (unsigned long long)(splitmix64(0) + splitmix64(1)));
	expect_run(t_ember(), "init-heavy-c", "0 1", want);
	snprintf(want, sizeof(want), "{\"tableMb\":256,\"entries\":2,\"checksum\":\"%016llx\"}",
		 (unsigned long long)shake_first_two());
	expect_run(t_ember(), "init-heavy-python", "0 1", want);
	/* a failing handler: exit 1, the answer on stderr */
	cr_assert_eq(run_bundle(t_ember(), "probe", "error x", out, sizeof(out)), 1);
	cr_assert_str_eq(out, "");
}

Test(bundles, the_sandbox_is_what_the_config_says_under_ember)
{
	expect_sandbox(t_ember());
}

Test(bundles, the_bundles_run_under_runc)
{
	const char *runc = runc_path();

	if (!runc)
		cr_skip_test("runc is not installed");
	expect_run(runc, "hello-c", "world", "hello, world");
	expect_run(runc, "hello-python", "world", "hello, world");
	expect_sandbox(runc);
}
