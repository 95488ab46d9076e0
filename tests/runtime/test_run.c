/* tests/runtime/test_run.c — `ember run` of a bundle: what the kernel shows inside the container
 * (pid 1, hostname, mounts, read-only root, masked paths, capabilities, ids, rlimits, seccomp),
 * exit codes and signals, and that nothing is left afterwards. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundle.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct bundle b;
static struct run_result r;

static void fini(void)
{
	bundle_fini(&b);
}

TestSuite(run, .fini = fini, .timeout = 60);

/* Run the bundle as container "c1", expect `status`, and check nothing remains. */
static void run_expect(int status)
{
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_eq(r.status, status, "exit %d, expected %d; stderr: %s", r.status, status, r.err);
	assert_no_leak(&b, "c1");
}

Test(run, the_process_is_pid_1_and_its_exit_code_propagates)
{
	bundle_init(&b, ARGS("sh", "-c", "echo pid=$$; exit 42"));
	run_expect(42);
	cr_assert_str_eq(first_line(r.out), "pid=1");
}

/* The init of a pid namespace ignores signals it has no handler for when they come from inside,
 * so the kill comes from outside, as a user's `ember kill` would. */
Test(run, death_by_signal_is_128_plus_signal)
{
	bundle_init(&b, ARGS("sleep", "60"));
	bundle_write(&b);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct run_result rr;

		ember(&b, &rr, ARGS("run", "c1"));
		_exit(rr.status);
	}
	for (int i = 0; i < 200; i++) {
		ember(&b, &r, ARGS("state", "c1"));
		if (strstr(r.out, "running"))
			break;
		usleep(20000);
	}
	ember(&b, &r, ARGS("kill", "c1", "SIGKILL"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert_eq(WEXITSTATUS(st), 137);
	assert_no_leak(&b, "c1");
}

Test(run, hostname_and_domainname)
{
	bundle_init(&b, ARGS("sh", "-c", "hostname; cat /proc/sys/kernel/domainname"));
	json_object_set_new(b.cfg, "hostname", json_string("ember-h1"));
	json_object_set_new(b.cfg, "domainname", json_string("example.org"));
	run_expect(0);
	cr_assert_str_eq(r.out, "ember-h1\nexample.org\n");
}

Test(run, root_is_read_only_and_tmpfs_is_writable)
{
	bundle_init(&b, ARGS("sh", "-c", "touch /x 2>&1; touch /dev/shm/y && echo shm-ok"));
	run_expect(0);
	cr_assert(strstr(r.out, "Read-only file system"), "%s", r.out);
	cr_assert(strstr(r.out, "shm-ok"), "%s", r.out);
}

Test(run, mount_table_inside)
{
	bundle_init(&b, ARGS("cat", "/proc/self/mounts"));
	run_expect(0);
	/* "/" is the bind of the rootfs (ro), proc on /proc, tmpfs on /dev, devpts, mqueue, sysfs */
	cr_assert(strstr(r.out, " / "), "%s", r.out);
	cr_assert(strstr(r.out, "proc /proc proc "), "%s", r.out);
	cr_assert(strstr(r.out, "tmpfs /dev tmpfs "), "%s", r.out);
	cr_assert(strstr(r.out, "devpts /dev/pts devpts "), "%s", r.out);
	cr_assert(strstr(r.out, "mqueue /dev/mqueue mqueue "), "%s", r.out);
	cr_assert(strstr(r.out, "sysfs /sys sysfs "), "%s", r.out);
	/* nothing of the host's mounts is visible */
	cr_assert_null(strstr(r.out, "/work"), "%s", r.out);
}

Test(run, masked_and_readonly_paths)
{
	bundle_init(&b, ARGS("sh", "-c",
			     "wc -c < /proc/keys; ls /sys/firmware | wc -l; "
			     "echo 1 > /proc/sys/kernel/panic 2>/dev/null && echo writable || echo ro"));
	run_expect(0);
	/* /proc/keys is /dev/null (0 bytes), /sys/firmware an empty tmpfs, /proc/sys read-only */
	cr_assert_str_eq(r.out, "0\n0\nro\n");
}

Test(run, capabilities_are_the_configured_sets)
{
	bundle_init(&b, ARGS("grep", "^Cap", "/proc/self/status"));
	run_expect(0);
	/* runc's default: AUDIT_WRITE(29), KILL(5), NET_BIND_SERVICE(10) */
	cr_assert(strstr(r.out, "CapEff:\t0000000020000420"), "%s", r.out);
	cr_assert(strstr(r.out, "CapBnd:\t0000000020000420"), "%s", r.out);
	cr_assert(strstr(r.out, "CapPrm:\t0000000020000420"), "%s", r.out);
	cr_assert(strstr(r.out, "CapAmb:\t0000000000000000"), "%s", r.out);
}

Test(run, no_new_privs_is_set)
{
	bundle_init(&b, ARGS("grep", "NoNewPrivs", "/proc/self/status"));
	run_expect(0);
	cr_assert(strstr(r.out, "NoNewPrivs:\t1"), "%s", r.out);
}

Test(run, user_groups_and_rlimits)
{
	bundle_init(&b, ARGS("sh", "-c", "emtest ids; emtest rlimit NOFILE"));
	json_t *user = cfg_obj(&b, "process.user");
	json_object_set_new(user, "uid", json_integer(1000));
	json_object_set_new(user, "gid", json_integer(1000));
	json_object_set_new(user, "additionalGids", json_pack("[i]", 29));
	json_object_set_new(cfg_obj(&b, "process"), "rlimits",
			    json_pack("[{s:s, s:i, s:i}]", "type", "RLIMIT_NOFILE", "soft", 512,
				      "hard", 768));
	run_expect(0);
	cr_assert_str_eq(r.out, "uid=1000 gid=1000 groups=29\n512 768\n");
}

Test(run, seccomp_denies_with_the_configured_errno)
{
	bundle_init(&b, ARGS("sh", "-c", "emtest try mkdir; emtest try getpid"));
	json_t *sc = json_pack("{s:s, s:[s], s:[{s:[s], s:s, s:i}]}", "defaultAction",
			       "SCMP_ACT_ALLOW", "architectures", "SCMP_ARCH_X86_64", "syscalls",
			       "names", "mkdir", "action", "SCMP_ACT_ERRNO", "errnoRet", 13);
	json_object_set_new(cfg_obj(&b, "linux"), "seccomp", sc);
	json_t *mounts = json_object_get(b.cfg, "mounts");
	json_array_append_new(mounts, json_pack("{s:s, s:s, s:s}", "destination", "/tmp", "type",
						"tmpfs", "source", "tmpfs"));
	run_expect(0);
	cr_assert_str_eq(r.out, "EACCES\nok\n");
}

Test(run, seccomp_status_in_the_kernel)
{
	bundle_init(&b, ARGS("grep", "^Seccomp:", "/proc/self/status"));
	json_object_set_new(cfg_obj(&b, "linux"), "seccomp",
			    json_pack("{s:s}", "defaultAction", "SCMP_ACT_ALLOW"));
	run_expect(0);
	cr_assert_str_eq(r.out, "Seccomp:\t2\n");
}

Test(run, user_namespace_mappings)
{
	bundle_init(&b, ARGS("sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; emtest ids"));
	json_t *ns = json_object_get(cfg_obj(&b, "linux"), "namespaces");
	json_array_append_new(ns, json_pack("{s:s}", "type", "user"));
	json_object_set_new(cfg_obj(&b, "linux"), "uidMappings",
			    json_pack("[{s:i, s:i, s:i}]", "containerID", 0, "hostID", 100000,
				      "size", 65536));
	json_object_set_new(cfg_obj(&b, "linux"), "gidMappings",
			    json_pack("[{s:i, s:i, s:i}]", "containerID", 0, "hostID", 100000,
				      "size", 65536));
	run_expect(0);
	cr_assert(strstr(r.out, "         0     100000      65536\n"), "%s", r.out);
	cr_assert(strstr(r.out, "uid=0 gid=0"), "%s", r.out);
}

Test(run, environment_and_cwd)
{
	bundle_init(&b, ARGS("sh", "-c", "pwd; echo $EMBER_TEST"));
	json_t *env = json_object_get(cfg_obj(&b, "process"), "env");
	json_array_append_new(env, json_string("EMBER_TEST=hello world"));
	json_object_set_new(cfg_obj(&b, "process"), "cwd", json_string("/etc"));
	run_expect(0);
	cr_assert_str_eq(r.out, "/etc\nhello world\n");
}

Test(run, own_namespaces_differ_from_the_host)
{
	char host[64];
	ssize_t n;

	bundle_init(&b, ARGS("sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/mnt"));
	run_expect(0);
	n = readlink("/proc/self/ns/net", host, sizeof(host) - 1);
	cr_assert_gt(n, 0);
	host[n] = '\0';
	cr_assert_null(strstr(r.out, host), "same net namespace as the host: %s", r.out);
}

Test(run, preserve_fds_passes_fd_3)
{
	char path[300];
	FILE *f;

	bundle_init(&b, ARGS("sh", "-c", "echo via-fd3 >&3"));
	snprintf(path, sizeof(path), "%s/out", b.dir);
	f = fopen(path, "w+");
	cr_assert_not_null(f);
	bundle_write(&b);
	ember_fd3(&b, &r, ARGS("run", "--preserve-fds", "1", "c1"), fileno(f));
	cr_assert_eq(r.status, 0, "%s", r.err);
	char buf[64] = "";
	rewind(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_assert_str_eq(buf, "via-fd3\n");
	assert_no_leak(&b, "c1");
}
