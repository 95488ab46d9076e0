/* tests/runtime/test_lifecycle.c — create/start/state/kill/delete from separate ember processes
 * (as containerd drives it), exec into a running container, list, pause, hooks. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct bundle b;
static struct run_result r;

static void fini(void)
{
	struct run_result rr;

	ember(&b, &rr, ARGS("delete", "--force", "c1")); /* whatever a failed test left */
	bundle_fini(&b);
}

TestSuite(lifecycle, .fini = fini, .timeout = 60);

static json_t *state_of(const char *id)
{
	json_error_t jerr;
	json_t *j;

	ember(&b, &r, ARGS("state", id));
	cr_assert_eq(r.status, 0, "state: %s", r.err);
	j = json_loads(r.out, 0, &jerr);
	cr_assert_not_null(j, "state output: %s", r.out);
	return j;
}

static const char *status_of(json_t *j)
{
	return json_string_value(json_object_get(j, "status"));
}

static void ok(const char *const *args)
{
	ember(&b, &r, args);
	cr_assert_eq(r.status, 0, "ember %s %s: exit %d: %s", args[0], args[1] ? args[1] : "",
		     r.status, r.err);
}

Test(lifecycle, create_start_kill_delete_across_processes)
{
	char pidfile[300], buf[32] = "";
	json_t *st;

	bundle_init(&b, ARGS("emtest", "wait-signal"));
	bundle_write(&b);
	snprintf(pidfile, sizeof(pidfile), "%s/pid", b.dir);
	ok(ARGS("create", "--bundle", b.dir, "--pid-file", pidfile, "c1"));

	FILE *f = fopen(pidfile, "r");
	cr_assert_not_null(f, "the pid file is written when create returns");
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	st = state_of("c1");
	cr_assert_str_eq(status_of(st), "created");
	cr_assert_eq(json_integer_value(json_object_get(st, "pid")), atoi(buf));
	cr_assert_str_eq(json_string_value(json_object_get(st, "id")), "c1");
	cr_assert_str_eq(json_string_value(json_object_get(st, "bundle")), b.dir);
	json_decref(st);
	/* the init exists and is in its own pid namespace, not yet running the program */
	char link[64], ns[64], host[64];
	snprintf(link, sizeof(link), "/proc/%d/ns/pid", atoi(buf));
	ssize_t n = readlink(link, ns, sizeof(ns) - 1);
	cr_assert_gt(n, 0);
	ns[n] = '\0';
	n = readlink("/proc/self/ns/pid", host, sizeof(host) - 1);
	host[n] = '\0';
	cr_assert_str_neq(ns, host);

	ok(ARGS("start", "c1"));
	st = state_of("c1");
	cr_assert_str_eq(status_of(st), "running");
	json_decref(st);

	ok(ARGS("kill", "c1", "KILL"));
	for (int i = 0; i < 100; i++) {
		st = state_of("c1");
		bool stopped = !strcmp(status_of(st), "stopped");
		json_decref(st);
		if (stopped)
			break;
		usleep(20000);
	}
	st = state_of("c1");
	cr_assert_str_eq(status_of(st), "stopped");
	json_decref(st);
	ok(ARGS("delete", "c1"));
	assert_no_leak(&b, "c1");
	ember(&b, &r, ARGS("state", "c1"));
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "container \"c1\" does not exist"), "%s", r.err);
}

Test(lifecycle, delete_refuses_a_running_container_unless_forced)
{
	bundle_init(&b, ARGS("sleep", "60"));
	bundle_write(&b);
	ok(ARGS("run", "--detach", "c1"));
	ember(&b, &r, ARGS("delete", "c1"));
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "is running"), "%s", r.err);
	ok(ARGS("delete", "--force", "c1"));
	assert_no_leak(&b, "c1");
}

Test(lifecycle, delete_of_a_created_container_kills_its_init)
{
	bundle_init(&b, ARGS("true"));
	bundle_write(&b);
	ok(ARGS("create", "c1"));
	ok(ARGS("delete", "c1"));
	assert_no_leak(&b, "c1");
}

Test(lifecycle, exec_joins_the_containers_namespaces_and_cgroup)
{
	json_t *st;

	bundle_init(&b, ARGS("sleep", "60"));
	json_object_set_new(b.cfg, "hostname", json_string("exec-host"));
	bundle_write(&b);
	ok(ARGS("run", "--detach", "c1"));
	st = state_of("c1");
	int pid = (int)json_integer_value(json_object_get(st, "pid"));
	json_decref(st);

	ok(ARGS("exec", "c1", "sh", "-c", "hostname; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt"));
	char expect[256], l1[64], l2[64], p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/pid", pid);
	l1[readlink(p, l1, sizeof(l1) - 1)] = '\0';
	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", pid);
	l2[readlink(p, l2, sizeof(l2) - 1)] = '\0';
	snprintf(expect, sizeof(expect), "exec-host\n%s\n%s\n", l1, l2);
	cr_assert_str_eq(r.out, expect);

	ember(&b, &r, ARGS("exec", "c1", "sh", "-c", "exit 7"));
	cr_assert_eq(r.status, 7, "exec propagates the exit status: %s", r.err);

	ok(ARGS("ps", "--format", "json", "c1"));
	cr_assert(strstr(r.out, "["), "%s", r.out);
	char pidstr[16];
	snprintf(pidstr, sizeof(pidstr), "%d", pid);
	cr_assert(strstr(r.out, pidstr), "ps lists the init %d: %s", pid, r.out);

	ember(&b, &r, ARGS("exec", "c1", "/nonexistent"));
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "/nonexistent"), "%s", r.err);
	cr_assert(strstr(r.err, "ENOENT"), "%s", r.err);
	ok(ARGS("delete", "--force", "c1"));
	assert_no_leak(&b, "c1");
}

Test(lifecycle, list_shows_containers)
{
	bundle_init(&b, ARGS("sleep", "60"));
	bundle_write(&b);
	ok(ARGS("create", "c1"));
	ok(ARGS("list", "--format", "json"));
	json_t *a = json_loads(r.out, 0, NULL);
	cr_assert(json_is_array(a) && json_array_size(a) == 1, "%s", r.out);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 0), "id")), "c1");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 0), "status")),
			 "created");
	json_decref(a);
	ok(ARGS("list", "-q"));
	cr_assert_str_eq(r.out, "c1\n");
	ok(ARGS("delete", "--force", "c1"));
}

Test(lifecycle, hooks_get_the_state_on_stdin)
{
	char hook[300], out[300], cmd[700];
	json_t *hooks = json_object();

	bundle_init(&b, ARGS("true"));
	snprintf(hook, sizeof(hook), "%s/hook.sh", b.dir);
	snprintf(out, sizeof(out), "%s/hooks.log", b.dir);
	FILE *f = fopen(hook, "w");
	cr_assert_not_null(f);
	fprintf(f, "#!/bin/sh\n{ echo \"$1\"; cat; echo; } >> %s\n", out);
	fclose(f);
	chmod(hook, 0755);
	static const char *const kinds[] = { "prestart", "createRuntime", "createContainer",
					     "startContainer", "poststart", "poststop" };
	for (size_t i = 0; i < 6; i++) {
		/* startContainer runs inside the container: it needs a path that exists there */
		if (!strcmp(kinds[i], "startContainer"))
			json_object_set_new(hooks, kinds[i],
					    json_pack("[{s:s, s:[s, s, s]}]", "path", "/bin/sh", "args",
						      "sh", "-c", "cat > /dev/null"));
		else
			json_object_set_new(hooks, kinds[i],
					    json_pack("[{s:s, s:[s, s]}]", "path", hook, "args",
						      "hook.sh", kinds[i]));
	}
	json_object_set_new(b.cfg, "hooks", hooks);
	bundle_write(&b);
	ok(ARGS("run", "c1"));
	snprintf(cmd, sizeof(cmd), "grep -c '\"id\": \"c1\"' %s", out);
	FILE *p = popen(cmd, "r");
	char n[16] = "";
	cr_assert_not_null(fgets(n, sizeof(n), p));
	pclose(p);
	cr_assert_str_eq(n, "5\n", "every host-side hook saw the state");
	char *log = NULL;
	size_t len = 0;
	f = fopen(out, "r");
	cr_assert_not_null(f);
	cr_assert_gt(getdelim(&log, &len, '\0', f), 0);
	fclose(f);
	/* in order, with the status the spec gives each */
	char *pre = strstr(log, "prestart"), *cr = strstr(log, "createRuntime"),
	     *cc = strstr(log, "createContainer"), *ps = strstr(log, "poststart"),
	     *pst = strstr(log, "poststop");
	cr_assert(pre && cr && cc && ps && pst, "%s", log);
	cr_assert(pre < cr && cr < cc && cc < ps && ps < pst, "%s", log);
	cr_assert(strstr(pst, "\"status\": \"stopped\""), "%s", log);
	free(log);
	assert_no_leak(&b, "c1");
}

Test(lifecycle, a_failing_prestart_hook_aborts_and_leaves_nothing)
{
	bundle_init(&b, ARGS("true"));
	json_object_set_new(b.cfg, "hooks",
			    json_pack("{s:[{s:s, s:[s, s, s]}]}", "prestart", "path", "/bin/sh",
				      "args", "sh", "-c", "echo nope >&2; exit 3"));
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "prestart hook"), "%s", r.err);
	cr_assert(strstr(r.err, "nope"), "%s", r.err);
	assert_no_leak(&b, "c1");
}

Test(lifecycle, pause_freezes_and_resume_thaws)
{
	bundle_init(&b, ARGS("sleep", "60"));
	bundle_write(&b);
	ok(ARGS("run", "--detach", "c1"));
	ok(ARGS("pause", "c1"));
	json_t *st = state_of("c1");
	cr_assert_str_eq(status_of(st), "paused");
	json_decref(st);
	ok(ARGS("resume", "c1"));
	st = state_of("c1");
	cr_assert_str_eq(status_of(st), "running");
	json_decref(st);
	ok(ARGS("delete", "--force", "c1"));
	assert_no_leak(&b, "c1");
}
