/* tests/runtime/test_hooks.c — OCI hooks run for real: /bin/sh hooks that record what they got
 * (stdin, argv, env, fds, signal state) into a temp dir, hooks that fail, die by signal, time out.
 * Each test checks that no fd of the runner leaked and no hook process is left. */
#include <criterion/criterion.h>

#include "testutil.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "runtime/hooks.h"
#include "tests/runtime/bundle.h"

static char dir[] = "/tmp/ember-test-hooks-XXXXXX";
static int fds_before;


static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	fds_before = t_count_fds();
}

static void teardown(void)
{
	struct em_err err = { 0 };

	cr_expect_eq(t_count_fds(), fds_before, "fds leaked: %d before, %d after", fds_before,
		     t_count_fds());
	cr_expect_eq(em_rm_rf_at(AT_FDCWD, dir, &err), 0, "%s", err.msg);
}

TestSuite(hooks, .init = setup, .fini = teardown);

/* dir/name as a static-lifetime string (a few per test). */
static char *path_in(const char *name)
{
	static char bufs[8][512];
	static int next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

/* An executable /bin/sh script in the temp dir; returns its path. */
static char *script(const char *name, const char *body)
{
	char *p = path_in(name), text[4096];
	struct em_err err = { 0 };

	snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", body);
	cr_assert_eq(em_create_file_at(AT_FDCWD, p, 0755, text, strlen(text), &err), 0, "%s",
		     err.msg);
	return p;
}

static char *slurp(const char *path)
{
	struct em_err err = { 0 };
	char *s = NULL;
	size_t len;

	cr_assert_eq(em_read_file_at(AT_FDCWD, path, &s, &len, &err), 0, "%s", err.msg);
	return s;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static pid_t read_pid(const char *path)
{
	char *s = slurp(path);
	pid_t pid = (pid_t)atoi(s);

	free(s);
	cr_assert_gt(pid, 0);
	return pid;
}

/* A pid is gone: no such process, or a zombie (dead; an orphan is reaped by whoever inherited
 * it, which is not this test's business). */
static bool pid_gone(pid_t pid)
{
	for (int i = 0; i < 200; i++) {
		char path[64], buf[256] = { 0 };
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			return true;
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			char *rp = n > 0 ? strrchr(buf, ')') : NULL;
			if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
				return true;
		}
		usleep(10000);
	}
	return false;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define STRV(...)                                                                        \
	((struct em_strv){ .v = (char *[]){ __VA_ARGS__ },                               \
			   .n = sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *) })

static const char *state = "{\"ociVersion\":\"1.2.0\",\"id\":\"c1\",\"status\":\"creating\","
			   "\"pid\":4242,\"bundle\":\"/b\",\"annotations\":{\"k\":\"v \\\"q\\\"\"}}";

Test(hooks, gets_state_on_stdin_and_exact_argv_and_env)
{
	char cmd[1024], outenv[600];
	struct em_err err = { 0 };

	snprintf(cmd, sizeof(cmd),
		 "cat > \"$OUT/stdin\"; tr '\\0' '\\n' < /proc/$$/cmdline > \"$OUT/argv\"; "
		 "tr '\\0' '\\n' < /proc/$$/environ > \"$OUT/env\"");
	snprintf(outenv, sizeof(outenv), "OUT=%s", dir);
	struct em_oci_hook h = {
		.path = "/bin/sh",
		.args = STRV("my-hook", "-c", cmd, "name0", "a b", ""),
		.env = STRV(outenv, "FOO=bar baz", "EMPTY="),
	};

	cr_assert_eq(em_hook_run(&h, EM_HOOK_CREATE_RUNTIME, 0, state, NULL, &err), 0, "%s",
		     err.msg);

	char *in = slurp(path_in("stdin")), *argv = slurp(path_in("argv")),
	     *env = slurp(path_in("env")), want[2048];
	cr_expect_str_eq(in, state);
	snprintf(want, sizeof(want), "my-hook\n-c\n%s\nname0\na b\n\n", cmd);
	cr_expect_str_eq(argv, want);
	snprintf(want, sizeof(want), "%s\nFOO=bar baz\nEMPTY=\n", outenv);
	cr_expect_str_eq(env, want);
	free(in);
	free(argv);
	free(env);
}

Test(hooks, no_args_means_argv_is_path_and_no_env_means_empty_env)
{
	struct em_err err = { 0 };
	char cmds[1024];
	struct em_oci_hook h = { .path = "/bin/sh" };

	/* /bin/sh without arguments runs its stdin: the state is the script here */
	snprintf(cmds, sizeof(cmds),
		 "tr '\\0' '\\n' < /proc/$$/cmdline > %s/argv; cat /proc/$$/environ > %s/env\n", dir,
		 dir);
	cr_assert_eq(em_hook_run(&h, EM_HOOK_PRESTART, 0, cmds, NULL, &err), 0, "%s", err.msg);

	char *argv = slurp(path_in("argv")), *env = slurp(path_in("env"));
	cr_expect_str_eq(argv, "/bin/sh\n");
	cr_expect_str_eq(env, "");
	free(argv);
	free(env);
}

Test(hooks, starts_clean_only_stdio_no_blocked_or_ignored_signals)
{
	struct em_err err = { 0 };
	char cmd[512];
	sigset_t block;

	/* a host with a leaky fd, SIGTERM blocked and SIGPIPE ignored */
	int leak = open("/dev/null", O_RDONLY);
	cr_assert_geq(leak, 0);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The shell looks at itself without forking first: a child reading /proc/<shell> races the
	 * shell's own fork bookkeeping (dash blocks every signal around fork(), holds a pipe's fds
	 * until both ends are forked, keeps a redirected fd's copy at 10+), so the signal state is
	 * read with builtins only and the fd listing is a plain command: no pipe, no redirection. */
	snprintf(cmd, sizeof(cmd),
		 "while read -r l; do case $l in SigBlk*|SigIgn*) echo \"$l\";; esac; done "
		 "< /proc/$$/status > %s/sig; "
		 "cut -d' ' -f5 /proc/$$/stat > %s/pgid; echo $$ > %s/pid; "
		 "ls /proc/$$/fd; exit 1",
		 dir, dir, dir);
	struct em_oci_hook h = { .path = "/bin/sh", .args = STRV("sh", "-c", cmd),
				 .env = STRV("PATH=/usr/bin:/bin") };
	cr_assert_eq(em_hook_run(&h, EM_HOOK_PRESTART, 0, state, NULL, &err), -ECHILD);
	cr_expect(strstr(err.msg, ": exited with status 1 (stdout: 0\n1\n2)") != NULL, "%s",
		  err.msg);

	char *sig = slurp(path_in("sig"));
	cr_expect_str_eq(sig, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
	cr_expect_eq(read_pid(path_in("pgid")), read_pid(path_in("pid")),
		     "the hook leads its own process group");
	free(sig);
	close(leak);
}

Test(hooks, failure_reports_status_and_stderr)
{
	struct em_err err = { 0 };
	char *p = script("fail", "cat >/dev/null; echo 'bad config: no foo' >&2; exit 2");
	struct em_oci_hook h = { .path = p };
	char want[1024];

	cr_assert_eq(em_hook_run(&h, EM_HOOK_CREATE_RUNTIME, 0, state, NULL, &err), -ECHILD);
	snprintf(want, sizeof(want), "createRuntime hook [0] %s: exited with status 2: "
		 "bad config: no foo", p);
	cr_expect_str_eq(err.msg, want);
}

Test(hooks, failure_message_includes_stdout_too)
{
	struct em_err err = { 0 };
	char *p = script("fail", "echo out-text; echo err-text >&2; exit 1");
	struct em_oci_hook h = { .path = p };
	char want[1024];

	cr_assert_lt(em_hook_run(&h, EM_HOOK_CREATE_CONTAINER, 3, state, NULL, &err), 0);
	snprintf(want, sizeof(want), "createContainer hook [3] %s: exited with status 1: "
		 "err-text (stdout: out-text)", p);
	cr_expect_str_eq(err.msg, want);
}

Test(hooks, huge_output_is_bounded_and_drained)
{
	struct em_err err = { 0 };
	/* 200 KB on each stream: more than a pipe holds, so the hook would block if not drained */
	char *p = script("chatty", "i=0; while [ $i -lt 2000 ]; do "
				   "echo 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
				   "xxxxxxxxxxxxxxxxxxxxxxxxxxx'; "
				   "echo 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
				   "yyyyyyyyyyyyyyyyyyyyyyyyyyy' >&2; i=$((i+1)); done; exit 7");
	struct em_oci_hook h = { .path = p };

	cr_assert_lt(em_hook_run(&h, EM_HOOK_PRESTART, 0, state, NULL, &err), 0);
	cr_expect(strstr(err.msg, ": exited with status 7: yyyy") != NULL, "%s", err.msg);
	cr_expect_eq(strlen(err.msg), EM_ERR_MSG_MAX - 1, "the message is cut, not overflowed");
}

Test(hooks, death_by_signal_is_named)
{
	struct em_err err = { 0 };
	char *p = script("sig", "kill -TERM $$");
	struct em_oci_hook h = { .path = p };
	char want[1024];

	cr_assert_eq(em_hook_run(&h, EM_HOOK_START_CONTAINER, 1, state, NULL, &err), -ECHILD);
	snprintf(want, sizeof(want), "startContainer hook [1] %s: killed by signal SIGTERM", p);
	cr_expect_str_eq(err.msg, want);
}

Test(hooks, exec_failure_names_errno)
{
	struct em_err err = { 0 };
	struct em_oci_hook missing = { .path = path_in("does-not-exist") };
	char want[1024];

	cr_assert_eq(em_hook_run(&missing, EM_HOOK_PRESTART, 0, state, NULL, &err), -ENOENT);
	snprintf(want, sizeof(want), "prestart hook [0] %s: exec: ENOENT (No such file or directory)",
		 missing.path);
	cr_expect_str_eq(err.msg, want);

	char *p = script("noexec", "exit 0");
	chmod(p, 0644);
	struct em_oci_hook noexec = { .path = p };
	cr_assert_eq(em_hook_run(&noexec, EM_HOOK_PRESTART, 0, state, NULL, &err), -EACCES,
		     "%s", err.msg);
}

Test(hooks, timeout_kills_the_hook_and_its_children)
{
	struct em_err err = { 0 };
	char body[512], want[1024];

	snprintf(body, sizeof(body),
		 "echo $$ > %s/pid; sleep 60 & echo $! > %s/child; echo started >&2; wait", dir, dir);
	char *p = script("slow", body);
	struct em_oci_hook h = { .path = p, .timeout = { .set = true, .v = 1 } };

	double t0 = now_s();
	cr_assert_eq(em_hook_run(&h, EM_HOOK_POSTSTOP, 0, state, NULL, &err), -ETIMEDOUT);
	double took = now_s() - t0;
	snprintf(want, sizeof(want), "poststop hook [0] %s: timed out after 1 s", p);
	cr_expect_str_eq(err.msg, want);
	cr_expect(took >= 0.9 && took < 3.0, "took %.2f s", took);

	pid_t hook = read_pid(path_in("pid")), child = read_pid(path_in("child"));
	cr_expect(pid_gone(hook), "hook %d still exists", hook);
	cr_expect(pid_gone(child), "hook's child %d still exists", child);
}

Test(hooks, hook_that_ignores_stdin_with_a_huge_state_is_fine)
{
	struct em_err err = { 0 };
	size_t len = 300 * 1024;
	char *big = malloc(len + 1);

	cr_assert_not_null(big);
	memset(big, 'a', len);
	big[len] = '\0';
	char *ignore = script("ignore", "exit 0");
	struct em_oci_hook h = { .path = ignore };
	cr_expect_eq(em_hook_run(&h, EM_HOOK_PRESTART, 0, big, NULL, &err), 0, "%s", err.msg);

	char body[256];
	snprintf(body, sizeof(body), "cat > %s/big", dir);
	struct em_oci_hook copy = { .path = script("copy", body) };
	cr_expect_eq(em_hook_run(&copy, EM_HOOK_PRESTART, 0, big, NULL, &err), 0, "%s", err.msg);
	char *got = slurp(path_in("big"));
	cr_expect_eq(strlen(got), len);
	cr_expect_eq(strcmp(got, big), 0);
	free(got);
	free(big);
}

Test(hooks, background_child_holding_stdout_does_not_block)
{
	struct em_err err = { 0 };
	char body[256];

	snprintf(body, sizeof(body), "sleep 30 & echo $! > %s/child; exit 0", dir);
	struct em_oci_hook h = { .path = script("bg", body) };
	double t0 = now_s();
	cr_expect_eq(em_hook_run(&h, EM_HOOK_POSTSTART, 0, state, NULL, &err), 0, "%s", err.msg);
	cr_expect_lt(now_s() - t0, 2.0);
	pid_t child = read_pid(path_in("child"));
	kill(child, SIGKILL); /* the test started it (through the hook): end it */
	cr_expect(pid_gone(child));
}

static void reap_all(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* PIDFD_INFO_EXIT (the status of a process someone else reaped) came with Linux 6.15. */
static bool kernel_has_pidfd_exit_info(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	uname(&u);
	sscanf(u.release, "%d.%d", &major, &minor);
	return major > 6 || (major == 6 && minor >= 15);
}

/* The status of the hook, or on an old kernel the honest "lost" when the host reaped it. */
static void expect_status_3_or_lost(const struct em_err *err, bool may_be_lost)
{
	if (strstr(err->msg, "exited with status 3"))
		return;
	cr_expect(may_be_lost && strstr(err->msg, "exit status lost") != NULL, "%s", err->msg);
}

Test(hooks, host_sigchld_handler_or_sig_ign_does_not_steal_the_status)
{
	struct em_err err = { 0 };
	struct em_oci_hook h = { .path = script("three", "exit 3") };
	bool old_kernel = !kernel_has_pidfd_exit_info();

	/* a host whose SIGCHLD handler reaps every child: it and the hook runner race */
	signal(SIGCHLD, reap_all);
	cr_expect_eq(em_hook_run(&h, EM_HOOK_PRESTART, 0, state, NULL, &err), -ECHILD);
	expect_status_3_or_lost(&err, old_kernel);

	/* a host that ignores SIGCHLD: the kernel reaps the hook itself */
	signal(SIGCHLD, SIG_IGN);
	cr_expect_eq(em_hook_run(&h, EM_HOOK_PRESTART, 0, state, NULL, &err), -ECHILD);
	expect_status_3_or_lost(&err, old_kernel);
	signal(SIGCHLD, SIG_DFL);
}

/* hooks of one kind: each appends its number to dir/order; "f" marks a failing one */
static struct em_oci_hook *make_hooks(const char *spec)
{
	static struct em_oci_hook hs[8];
	static char bodies[8][256];

	for (size_t i = 0; spec[i]; i++) {
		snprintf(bodies[i], sizeof(bodies[i]), "echo %zu >> %s/order; %s", i, dir,
			 spec[i] == 'f' ? "echo broken >&2; exit 1" : "exit 0");
		char name[16];
		snprintf(name, sizeof(name), "h%zu", i);
		hs[i] = (struct em_oci_hook){ .path = script(name, bodies[i]) };
	}
	return hs;
}

Test(hooks, poststop_failure_only_warns_and_later_hooks_run)
{
	struct em_err err = { 0 };
	struct em_oci_hooks hooks = { 0 };
	struct em_log log;
	int logfd = memfd_create("log", MFD_CLOEXEC);
	char buf[4096] = { 0 };

	cr_assert_geq(logfd, 0);
	em_log_init_fd(&log, logfd, EM_LOG_WARN, EM_LOG_TEXT);
	hooks.v[EM_HOOK_POSTSTOP] = make_hooks("ofo");
	hooks.n[EM_HOOK_POSTSTOP] = 3;

	cr_assert_eq(em_hooks_run(&hooks, EM_HOOK_POSTSTOP, state, &log, &err), 0);
	cr_expect_eq(err.code, 0, "a warning is not an error: %s", err.msg);
	char *order = slurp(path_in("order"));
	cr_expect_str_eq(order, "0\n1\n2\n");
	free(order);

	cr_assert_gt(pread(logfd, buf, sizeof(buf) - 1, 0), 0);
	char want[600];
	snprintf(want, sizeof(want), "poststop hook [1] %s: exited with status 1: broken\n",
		 hooks.v[EM_HOOK_POSTSTOP][1].path);
	cr_expect(strstr(buf, want) != NULL, "log: %s", buf);
	close(logfd);
}

Test(hooks, prestart_failure_stops_the_sequence)
{
	struct em_err err = { 0 };
	struct em_oci_hooks hooks = { 0 };

	hooks.v[EM_HOOK_PRESTART] = make_hooks("ofo");
	hooks.n[EM_HOOK_PRESTART] = 3;
	cr_assert_eq(em_hooks_run(&hooks, EM_HOOK_PRESTART, state, NULL, &err), -ECHILD);
	cr_expect(strncmp(err.msg, "prestart hook [1] ", 18) == 0, "%s", err.msg);
	char *order = slurp(path_in("order"));
	cr_expect_str_eq(order, "0\n1\n");
	free(order);
}

Test(hooks, only_the_requested_kind_runs_in_order)
{
	struct em_err err = { 0 };
	struct em_oci_hooks hooks = { 0 };

	hooks.v[EM_HOOK_CREATE_RUNTIME] = make_hooks("oooo");
	hooks.n[EM_HOOK_CREATE_RUNTIME] = 4;
	cr_assert_eq(em_hooks_run(&hooks, EM_HOOK_POSTSTART, state, NULL, &err), 0);
	cr_expect(!exists(path_in("order")));
	cr_assert_eq(em_hooks_run(&hooks, EM_HOOK_CREATE_RUNTIME, state, NULL, &err), 0, "%s",
		     err.msg);
	char *order = slurp(path_in("order"));
	cr_expect_str_eq(order, "0\n1\n2\n3\n");
	free(order);
	cr_expect_eq(em_hooks_run(NULL, EM_HOOK_PRESTART, state, NULL, &err), 0);
}

/* createContainer/startContainer hooks run from a single-threaded child that has already
 * entered the container's root: nothing of the host fs may be needed (here: no /proc, no
 * /bin/sh of the host, only the static busybox of the test rootfs). */
Test(hooks, runs_from_a_chrooted_single_threaded_child)
{
	char root[600], cmd[1400];

	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/bin %s/out && cp %s/bin/busybox %s/bin/busybox",
		 root, root, t_rootfs(), root);
	cr_assert_eq(system(cmd), 0, "%s", cmd);

	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct em_err err = { 0 };
		struct em_oci_hook h = {
			.path = "/bin/busybox",
			.args = STRV("sh", "-c",
				     "/bin/busybox cat > /out/state; echo $# \"$X\" > /out/info"),
			.env = STRV("X=in-root"),
			.timeout = { .set = true, .v = 10 },
		};
		if (chroot(root) < 0 || chdir("/") < 0)
			_exit(2);
		if (em_hook_run(&h, EM_HOOK_CREATE_CONTAINER, 0, state, NULL, &err) < 0) {
			dprintf(2, "%s\n", err.msg);
			_exit(1);
		}
		_exit(0);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	char *got = slurp(path_in("root/out/state")), *info = slurp(path_in("root/out/info"));
	cr_expect_str_eq(got, state);
	cr_expect_str_eq(info, "0 in-root\n");
	free(got);
	free(info);
}

/* A daemon may run with 0-2 closed: the pipes then land on 0-2 and must not clobber each
 * other in the hook. */
Test(hooks, works_with_the_callers_stdio_closed)
{
	char body[256];

	snprintf(body, sizeof(body), "cat > %s/state; echo err-text >&2; exit 4", dir);
	char *p = script("closed", body);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct em_err err = { 0 };
		struct em_oci_hook h = { .path = p };
		int keep = fcntl(2, F_DUPFD_CLOEXEC, 10);
		close(0);
		close(1);
		close(2);
		int r = em_hook_run(&h, EM_HOOK_PRESTART, 0, state, NULL, &err);
		if (r != -ECHILD || !strstr(err.msg, "exited with status 4: err-text")) {
			dprintf(keep, "r=%d %s\n", r, err.msg);
			_exit(1);
		}
		_exit(0);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	char *got = slurp(path_in("state"));
	cr_expect_str_eq(got, state);
	free(got);
}
