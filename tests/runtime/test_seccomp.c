/* tests/runtime/test_seccomp.c — OCI seccomp sections compiled in the test process and loaded
 * in a forked child, which then probes what the kernel now does with each system call and
 * writes the answers to a pipe ("mkdir=EACCES getpid=ok"). Configs are built in C, not parsed. */
#include <criterion/criterion.h>

#include "testutil.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "runtime/caps.h"
#include "runtime/oci.h"
#include "runtime/seccomp.h"

#define STRV(...) \
	{ .v = (char *[]){ __VA_ARGS__ }, .n = sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *) }
#define RULES(...)                                                        \
	.syscalls = (struct em_oci_seccomp_rule[]){ __VA_ARGS__ },        \
	.n_syscalls = sizeof((struct em_oci_seccomp_rule[]){ __VA_ARGS__ }) / \
		      sizeof(struct em_oci_seccomp_rule)
#define ARGS(...)                                                    \
	.args = (struct em_oci_seccomp_arg[]){ __VA_ARGS__ },        \
	.n_args = sizeof((struct em_oci_seccomp_arg[]){ __VA_ARGS__ }) / \
		  sizeof(struct em_oci_seccomp_arg)
#define ERRNO(e) .action = "SCMP_ACT_ERRNO", .errno_ret = { true, (e) }

/* --- child plumbing: the child writes with write(2) only, so an allowlist filter can permit
 * exactly write, exit_group and what the probe asks about. */

static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0 && write(fd, buf, (size_t)n) < 0)
		_exit(120);
}

/* "ok" or the errno name of a system call's result */
static const char *res(long r)
{
	return r >= 0 ? "ok" : strerrorname_np(errno);
}

typedef void probe_fn(int out);

/* Load prog in a forked child, run probe, return the child's wait status and its output. */
static int run_filtered(const struct em_seccomp_prog *prog, probe_fn *probe, char *out,
			size_t cap)
{
	int p[2];
	int status;
	pid_t pid;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int rc;

		close(p[0]);
		rc = em_seccomp_load(prog);
		if (rc < 0) {
			say(p[1], "load=%s", strerrorname_np(-rc));
			_exit(1);
		}
		probe(p[1]);
		_exit(0);
	}
	close(p[1]);
	t_read_all(p[0], out, cap);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static void compile_ok(const struct em_oci_seccomp *s, struct em_seccomp_prog *prog)
{
	struct em_err err = { 0 };
	int rc = em_seccomp_compile(s, NULL, prog, &err);

	cr_assert_eq(rc, 0, "compile: %s", err.msg);
	cr_assert_not_null(prog->insns);
	cr_assert_gt(prog->len, 0);
}

/* Compile, load in a child, probe; assert a clean exit and the expected output. */
static void expect_output(const struct em_oci_seccomp *s, probe_fn *probe, const char *want)
{
	struct em_seccomp_prog prog;
	char out[1024];
	int status;

	compile_ok(s, &prog);
	status = run_filtered(&prog, probe, out, sizeof(out));
	em_seccomp_prog_free(&prog);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "child status %#x, output \"%s\"", status, out);
	cr_assert_str_eq(out, want);
}

/* --- errno actions */

static void probe_mkdir_getpid(int out)
{
	char dir[64];
	long r;

	snprintf(dir, sizeof(dir), "/tmp/ember-seccomp-%d", (int)getpid());
	r = mkdir(dir, 0700);

	say(out, "mkdir=%s ", res(r));
	if (r == 0)
		rmdir(dir);
	say(out, "getpid=%s", syscall(SYS_getpid) == getpid() ? "ok" : "wrong");
}

Test(seccomp, errno_ret_denies_mkdir_with_that_errno_and_getpid_still_works)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		RULES({ .names = STRV("mkdir", "mkdirat"), ERRNO(EACCES) }),
	};

	expect_output(&s, probe_mkdir_getpid, "mkdir=EACCES getpid=ok");
}

Test(seccomp, errno_action_without_errno_ret_is_eperm)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		RULES({ .names = STRV("mkdir", "mkdirat"), .action = "SCMP_ACT_ERRNO" }),
	};

	expect_output(&s, probe_mkdir_getpid, "mkdir=EPERM getpid=ok");
}

static void probe_status(int out)
{
	char buf[4096], *line, *save;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (n <= 0)
		_exit(2);
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, "Seccomp", 7))
			say(out, "%s\n", line);
}

Test(seccomp, proc_status_shows_filter_mode_and_one_filter)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		RULES({ .names = STRV("mkdir"), ERRNO(EACCES) }),
	};

	expect_output(&s, probe_status, "Seccomp:\t2\nSeccomp_filters:\t1\n");
}

/* --- default action ERRNO with an allowlist */

static void probe_allowlist(int out)
{
	long ppid = syscall(SYS_getppid);
	const char *ppid_res = res(ppid); /* errno read before write() can change it */

	say(out, "getppid=%s getpid=%s", ppid_res, res(syscall(SYS_getpid)));
}

Test(seccomp, default_errno_with_allowlist_and_default_errno_ret)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ERRNO",
		.default_errno_ret = { true, EXDEV },
		RULES({ .names = STRV("write", "exit_group", "getpid"), .action = "SCMP_ACT_ALLOW" },
		      /* same action as the default: a no-op that libseccomp would refuse */
		      { .names = STRV("getppid"), ERRNO(EXDEV) }),
	};

	expect_output(&s, probe_allowlist, "getppid=EXDEV getpid=ok");
}

Test(seccomp, default_errno_without_errno_ret_is_eperm)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ERRNO",
		RULES({ .names = STRV("write", "exit_group", "getpid"), .action = "SCMP_ACT_ALLOW" }),
	};

	expect_output(&s, probe_allowlist, "getppid=EPERM getpid=ok");
}

/* --- argument conditions */

static void probe_personality(int out)
{
	long query = syscall(SYS_personality, 0xffffffffUL);
	const char *q = res(query);

	say(out, "query=%s set=%s", q, res(syscall(SYS_personality, (unsigned long)PER_LINUX)));
}

Test(seccomp, arg_condition_denies_only_the_matching_call)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		RULES({ .names = STRV("personality"), ERRNO(EPERM),
			ARGS({ .index = 0, .value = 0xffffffff, .op = EM_SCMP_EQ }) }),
	};

	expect_output(&s, probe_personality, "query=EPERM set=ok");
}

static const char *try_socket(int domain, int type)
{
	long fd = syscall(SYS_socket, domain, type, 0);
	const char *r = res(fd);

	if (fd >= 0)
		close((int)fd);
	return r;
}

static void probe_sockets(int out)
{
	const char *inet = try_socket(AF_INET, SOCK_STREAM);
	const char *inet_dgram = try_socket(AF_INET, SOCK_DGRAM);
	const char *inet6 = try_socket(AF_INET6, SOCK_STREAM);
	const char *unix_ = try_socket(AF_UNIX, SOCK_DGRAM);

	say(out, "inet=%s inet_dgram=%s inet6=%s unix=%s", inet, inet_dgram, inet6, unix_);
}

Test(seccomp, socket_af_inet_denied_af_unix_allowed)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		RULES({ .names = STRV("socket"), ERRNO(EACCES),
			ARGS({ .index = 0, .value = AF_INET, .op = EM_SCMP_EQ }) }),
	};

	expect_output(&s, probe_sockets, "inet=EACCES inet_dgram=EACCES inet6=ok unix=ok");
}

Test(seccomp, conditions_on_different_args_must_all_hold)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		RULES({ .names = STRV("socket"), ERRNO(EACCES),
			ARGS({ .index = 0, .value = AF_INET, .op = EM_SCMP_EQ },
			     { .index = 1, .value = SOCK_DGRAM, .op = EM_SCMP_EQ }) }),
	};

	expect_output(&s, probe_sockets, "inet=ok inet_dgram=EACCES inet6=ok unix=ok");
}

Test(seccomp, conditions_on_the_same_arg_are_alternatives_as_in_runc)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		RULES({ .names = STRV("socket"), ERRNO(EACCES),
			ARGS({ .index = 0, .value = AF_INET, .op = EM_SCMP_EQ },
			     { .index = 0, .value = AF_INET6, .op = EM_SCMP_EQ }) }),
	};

	expect_output(&s, probe_sockets, "inet=EACCES inet_dgram=EACCES inet6=EACCES unix=ok");
}

static void probe_mkdir_modes(int out)
{
	char dir[64];
	long r;

	snprintf(dir, sizeof(dir), "/tmp/ember-seccomp-%d", (int)getpid());
	r = syscall(SYS_mkdir, dir, 0777);
	say(out, "0777=%s ", res(r));
	if (r == 0)
		rmdir(dir);
	r = syscall(SYS_mkdir, dir, 0700);
	say(out, "0700=%s", res(r));
	if (r == 0)
		rmdir(dir);
}

Test(seccomp, masked_eq_takes_value_as_mask_and_value_two_as_datum)
{
	/* deny directories that others may write: (mode & 07) == 07 */
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		RULES({ .names = STRV("mkdir"), ERRNO(EACCES),
			ARGS({ .index = 1, .value = 07, .value_two = 07, .op = EM_SCMP_MASKED_EQ }) }),
	};

	expect_output(&s, probe_mkdir_modes, "0777=EACCES 0700=ok");
}

/* --- kill and trap */

static void probe_getppid(int out)
{
	syscall(SYS_getppid);
	say(out, "survived");
}

static void expect_sigsys(const char *action)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		RULES({ .names = STRV("getppid"), .action = (char *)action }),
	};
	struct em_seccomp_prog prog;
	char out[64];
	int status;

	compile_ok(&s, &prog);
	status = run_filtered(&prog, probe_getppid, out, sizeof(out));
	em_seccomp_prog_free(&prog);
	cr_assert(WIFSIGNALED(status), "%s: child status %#x, output \"%s\"", action, status, out);
	cr_assert_eq(WTERMSIG(status), SIGSYS, "%s: killed by %s", action,
		     strsignal(WTERMSIG(status)));
	cr_assert_str_eq(out, "");
}

Test(seccomp, kill_process_kills_with_sigsys)
{
	expect_sigsys("SCMP_ACT_KILL_PROCESS");
}

Test(seccomp, kill_and_kill_thread_kill_a_single_threaded_child_with_sigsys)
{
	expect_sigsys("SCMP_ACT_KILL");
	expect_sigsys("SCMP_ACT_KILL_THREAD");
}

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a seccomp SIGSYS (asm-generic/siginfo.h) */
#endif

static volatile sig_atomic_t trapped_nr = -1, trapped_code = -1;

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	trapped_nr = si->si_syscall;
	trapped_code = si->si_code;
}

static void probe_trap(int out)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };

	sigaction(SIGSYS, &sa, NULL);
	syscall(SYS_getppid);
	say(out, "nr=%d getppid=%d seccomp_code=%d", (int)trapped_nr, (int)SYS_getppid,
	    trapped_code == SYS_SECCOMP);
}

Test(seccomp, trap_delivers_sigsys_naming_the_syscall)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		RULES({ .names = STRV("getppid"), .action = "SCMP_ACT_TRAP" }),
	};
	char want[64];

	snprintf(want, sizeof(want), "nr=%d getppid=%d seccomp_code=1", (int)SYS_getppid,
		 (int)SYS_getppid);
	expect_output(&s, probe_trap, want);
}

/* --- flags, architectures, names */

Test(seccomp, filter_flags_go_to_seccomp_and_load)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		.flags = STRV("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
			      "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
		RULES({ .names = STRV("mkdir", "mkdirat"), ERRNO(EACCES) }),
	};
	struct em_seccomp_prog prog;

	compile_ok(&s, &prog);
	/* TSYNC: the child is single-threaded; WAIT_KILLABLE_RECV needs a notify listener */
	cr_assert_eq(prog.flags, SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);
	em_seccomp_prog_free(&prog);
	expect_output(&s, probe_mkdir_getpid, "mkdir=EACCES getpid=ok");
}

Test(seccomp, listed_architectures_are_added_to_the_filter)
{
	struct em_oci_seccomp native = {
		.default_action = "SCMP_ACT_ALLOW",
		RULES({ .names = STRV("mkdir"), ERRNO(EACCES) }),
	};
	struct em_oci_seccomp multi = native;
	struct em_seccomp_prog a, b;

	multi.architectures = (struct em_strv)STRV("SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
						   "SCMP_ARCH_X32");
	compile_ok(&native, &a);
	compile_ok(&multi, &b);
	/* one more arch check and rule block per added architecture */
	cr_assert_gt(b.len, a.len);
	em_seccomp_prog_free(&a);
	em_seccomp_prog_free(&b);
	expect_output(&multi, probe_mkdir_getpid, "mkdir=EACCES getpid=ok");
}

Test(seccomp, unknown_syscall_names_are_skipped_with_a_warning)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		RULES({ .names = STRV("mkdir"), ERRNO(EACCES) },
		      { .names = STRV("ember_no_such_syscall", "mkdirat"), ERRNO(EACCES) }),
	};
	int fd = memfd_create("log", MFD_CLOEXEC);
	struct em_seccomp_prog prog;
	struct em_err err = { 0 };
	struct em_log log;
	char buf[1024] = { 0 };

	cr_assert_geq(fd, 0);
	em_log_init_fd(&log, fd, EM_LOG_WARN, EM_LOG_TEXT);
	cr_assert_eq(em_seccomp_compile(&s, &log, &prog, &err), 0, "%s", err.msg);
	em_seccomp_prog_free(&prog);
	cr_assert_gt(pread(fd, buf, sizeof(buf) - 1, 0), 0);
	close(fd);
	cr_assert_not_null(strstr(buf, "linux.seccomp.syscalls[1].names[0]: unknown syscall "
				       "\"ember_no_such_syscall\" on this architecture, ignored"),
			   "log: %s", buf);
	expect_output(&s, probe_mkdir_getpid, "mkdir=EACCES getpid=ok");
}

Test(seccomp, syscalls_of_other_architectures_compile)
{
	/* socketcall and the *32 calls exist on i386 only; profiles list them anyway */
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ERRNO",
		.architectures = STRV("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"),
		RULES({ .names = STRV("socketcall", "chown32", "write", "exit_group", "getpid"),
			.action = "SCMP_ACT_ALLOW" }),
	};

	expect_output(&s, probe_allowlist, "getppid=EPERM getpid=ok");
}

/* --- errors name the field */

struct bad_case {
	struct em_oci_seccomp s;
	int code;
	const char *msg;
};

Test(seccomp, bad_configs_are_refused_with_the_field_and_reason)
{
	const struct bad_case cases[] = {
		{ { .default_action = "SCMP_ACT_FOO" }, EINVAL,
		  "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_FOO\"" },
		{ { .default_action = "SCMP_ACT_ALLOW",
		    RULES({ .names = STRV("mkdir"), ERRNO(1) },
			  { .names = STRV("rmdir"), .action = "SCMP_ACT_NOPE" }) },
		  EINVAL, "linux.seccomp.syscalls[1].action: unknown action \"SCMP_ACT_NOPE\"" },
		{ { .default_action = "SCMP_ACT_ALLOW", .architectures = STRV("SCMP_ARCH_VAX") },
		  EINVAL, "linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_VAX\"" },
		{ { .default_action = "SCMP_ACT_ALLOW", .architectures = STRV("x86_64") },
		  EINVAL, "linux.seccomp.architectures[0]: unknown architecture \"x86_64\"" },
		{ { .default_action = "SCMP_ACT_ALLOW",
		    .flags = STRV("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FOO") },
		  EINVAL, "linux.seccomp.flags[1]: unknown flag \"SECCOMP_FILTER_FLAG_FOO\"" },
		{ { .default_action = "SCMP_ACT_ALLOW", .listener_path = "/run/agent.sock",
		    RULES({ .names = STRV("mkdir"), .action = "SCMP_ACT_NOTIFY" }) },
		  ENOTSUP, "linux.seccomp.listenerPath: seccomp notify is not supported by ember" },
		{ { .default_action = "SCMP_ACT_ALLOW",
		    RULES({ .names = STRV("mkdir"), .action = "SCMP_ACT_NOTIFY" }) },
		  ENOTSUP, "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY: seccomp notify is not "
			   "supported by ember" },
		{ { .default_action = "SCMP_ACT_ALLOW",
		    RULES({ .names = STRV("mkdir"), ERRNO(1),
			    ARGS({ .index = 6, .value = 1, .op = EM_SCMP_EQ }) }) },
		  EINVAL, "linux.seccomp.syscalls[0].args[0].index: 6 is out of range (0-5)" },
		{ { .default_action = "SCMP_ACT_ALLOW",
		    RULES({ .names = STRV("mkdir"), ERRNO(70000) }) },
		  EINVAL, "linux.seccomp.syscalls[0].action: return code 70000 does not fit in 16 "
			  "bits" },
		{ { .default_action = NULL }, EINVAL, "linux.seccomp.defaultAction: missing action" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct em_seccomp_prog prog = { .len = 7 };
		struct em_err err = { 0 };
		int rc = em_seccomp_compile(&cases[i].s, NULL, &prog, &err);

		cr_expect_eq(rc, -cases[i].code, "case %zu: rc %d (%s)", i, rc, err.msg);
		cr_expect_str_eq(err.msg, cases[i].msg, "case %zu", i);
		cr_expect(prog.insns == NULL && prog.len == 0, "case %zu: output not zeroed", i);
	}
}

Test(seccomp, free_is_idempotent)
{
	struct em_oci_seccomp s = { .default_action = "SCMP_ACT_ALLOW",
				    RULES({ .names = STRV("mkdir"), ERRNO(1) }) };
	struct em_seccomp_prog prog;

	compile_ok(&s, &prog);
	em_seccomp_prog_free(&prog);
	cr_assert_null(prog.insns);
	em_seccomp_prog_free(&prog);
}

/* --- the ordering constraint the sandbox follows */

static int load_without_sys_admin(const struct em_seccomp_prog *prog, bool nnp)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uint64_t keep = 1ULL << CAP_KILL;
		int cap, rc;

		if (em_caps_set(keep, keep, 0, &cap) < 0)
			_exit(100);
		if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) < 0)
			_exit(101);
		rc = em_seccomp_load(prog);
		_exit(rc == 0 ? 0 : -rc);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "status %#x", status);
	return WEXITSTATUS(status);
}

Test(seccomp, loading_needs_no_new_privs_or_cap_sys_admin)
{
	struct em_oci_seccomp s = { .default_action = "SCMP_ACT_ALLOW",
				    RULES({ .names = STRV("mkdir"), ERRNO(1) }) };
	struct em_seccomp_prog prog;

	compile_ok(&s, &prog);
	/* why the sandbox loads before dropping capabilities unless no_new_privs is set */
	cr_expect_eq(load_without_sys_admin(&prog, false), EACCES);
	cr_expect_eq(load_without_sys_admin(&prog, true), 0);
	em_seccomp_prog_free(&prog);
}

/* --- other architectures: i386 system calls made by an x86_64 process through int $0x80 */

#if defined(__x86_64__)
static long int80(long nr, long a0)
{
	long r;

	__asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a0) : "memory");
	return r;
}

#define I386_GETPID 20
#define I386_MKDIR 39

static void probe_i386_mkdir(int out)
{
	long r = int80(I386_MKDIR, 0); /* NULL path: EFAULT if the filter lets it through */

	say(out, "i386_mkdir=%s", r < 0 ? strerrorname_np((int)-r) : "ok");
}

static bool kernel_runs_i386_syscalls(void)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(int80(I386_GETPID, 0) == getpid() ? 0 : 1);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

Test(seccomp, listed_i386_rules_apply_and_unlisted_i386_is_killed)
{
	struct em_oci_seccomp s = {
		.default_action = "SCMP_ACT_ALLOW",
		.architectures = STRV("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"),
		RULES({ .names = STRV("mkdir"), ERRNO(EACCES) }),
	};
	struct em_seccomp_prog prog;
	char out[128];
	int status;

	if (!kernel_runs_i386_syscalls())
		cr_skip("this kernel runs no i386 system calls (ia32_emulation off)");
	expect_output(&s, probe_i386_mkdir, "i386_mkdir=EACCES");

	/* native only: an i386 call is a bad architecture, which kills */
	s.architectures = (struct em_strv){ 0 };
	compile_ok(&s, &prog);
	status = run_filtered(&prog, probe_i386_mkdir, out, sizeof(out));
	em_seccomp_prog_free(&prog);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS, "status %#x, output \"%s\"",
		  status, out);
}
#endif
