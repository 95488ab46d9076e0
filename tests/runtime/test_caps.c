/* tests/runtime/test_caps.c — capability sets applied in a forked child, checked against what
 * the kernel shows in the child's /proc/self/status (CapInh/CapPrm/CapEff/CapBnd/CapAmb), and
 * across an exec as a non-root user, where only the ambient set keeps capabilities alive. */
#include <criterion/criterion.h>

#include "testutil.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "runtime/caps.h"

#define BIT(c) (1ULL << (c))
#define NOBODY 65534

struct child_ctx {
	uint64_t bnd, eff, prm, inh, amb;
	bool setuid_nobody;
	bool exec_cat;          /* print status from /bin/cat, run after the exec */
};

static int last_cap(void)
{
	struct em_err err = { 0 };
	int last = -1;

	cr_assert_eq(em_caps_last_cap(&last, &err), 0, "%s", err.msg);
	return last;
}

/* The bounding set the test process has (root here lacks CAP_SYS_RESOURCE in it). */
static uint64_t current_bounding(void)
{
	uint64_t bnd = 0;

	for (int c = 0; c <= last_cap(); c++)
		if (prctl(PR_CAPBSET_READ, (unsigned long)c, 0UL, 0UL, 0UL) == 1)
			bnd |= BIT(c);
	return bnd;
}

static void fail(int out, const char *step, int rc, int cap)
{
	dprintf(out, "FAIL %s: %s cap %d\n", step, strerrorname_np(-rc), cap);
	_exit(1);
}

/* The child, in runc's order: bounding, keepcaps, setuid, capset, ambient; then show status. */
static void child(int out, const struct child_ctx *c)
{
	int last = 0, cap, rc;
	char buf[8192];
	ssize_t n;
	int fd;

	{
		struct em_err err;

		if (em_caps_last_cap(&last, &err) < 0)
			_exit(3);
	}
	if ((rc = em_caps_drop_bounding(c->bnd, last, &cap)) < 0)
		fail(out, "drop bounding", rc, cap);
	if (c->setuid_nobody) {
		if ((rc = em_caps_keep_on_setuid(true)) < 0)
			fail(out, "keepcaps", rc, -1);
		if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			fail(out, "setuid", -errno, -1);
		if ((rc = em_caps_keep_on_setuid(false)) < 0)
			fail(out, "clear keepcaps", rc, -1);
	}
	if ((rc = em_caps_set(c->eff, c->prm, c->inh, &cap)) < 0)
		fail(out, "capset", rc, cap);
	if ((rc = em_caps_set_ambient(c->amb, last, &cap)) < 0)
		fail(out, "ambient", rc, cap);
	if (c->exec_cat) {
		dup2(out, STDOUT_FILENO);
		execl("/bin/cat", "cat", "/proc/self/status", (char *)NULL);
		fail(out, "exec", -errno, -1);
	}
	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) < 0)
			_exit(4);
}

/* Run child() forked; return its /proc/self/status (or its FAIL line). */
static void run(const struct child_ctx *c, char *out, size_t cap)
{
	int p[2], status;
	pid_t pid;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		child(p[1], c);
		_exit(0);
	}
	close(p[1]);
	t_read_all(p[0], out, cap);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x: %s", status,
		  out);
}

static uint64_t field(const char *status, const char *name)
{
	char key[32];
	const char *p;

	snprintf(key, sizeof(key), "\n%s:\t", name);
	p = strstr(status, key);
	cr_assert_not_null(p, "no %s in status", name);
	return strtoull(p + strlen(key), NULL, 16);
}

static void expect_sets(const char *status, uint64_t bnd, uint64_t eff, uint64_t prm,
			uint64_t inh, uint64_t amb)
{
	cr_expect_eq(field(status, "CapBnd"), bnd, "CapBnd %#" PRIx64 ", want %#" PRIx64,
		     field(status, "CapBnd"), bnd);
	cr_expect_eq(field(status, "CapEff"), eff, "CapEff %#" PRIx64 ", want %#" PRIx64,
		     field(status, "CapEff"), eff);
	cr_expect_eq(field(status, "CapPrm"), prm, "CapPrm %#" PRIx64 ", want %#" PRIx64,
		     field(status, "CapPrm"), prm);
	cr_expect_eq(field(status, "CapInh"), inh, "CapInh %#" PRIx64 ", want %#" PRIx64,
		     field(status, "CapInh"), inh);
	cr_expect_eq(field(status, "CapAmb"), amb, "CapAmb %#" PRIx64 ", want %#" PRIx64,
		     field(status, "CapAmb"), amb);
}

Test(caps, last_cap_matches_the_kernel)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
	int want = -1;

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &want), 1);
	fclose(f);
	cr_assert_eq(last_cap(), want);
	cr_assert_geq(want, CAP_AUDIT_READ);
}

/* runc's default set, minus nothing this machine lacks */
static const uint64_t runc_default = BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_FSETID) |
	BIT(CAP_FOWNER) | BIT(CAP_MKNOD) | BIT(CAP_NET_RAW) | BIT(CAP_SETGID) | BIT(CAP_SETUID) |
	BIT(CAP_SETFCAP) | BIT(CAP_SETPCAP) | BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_SYS_CHROOT) |
	BIT(CAP_KILL) | BIT(CAP_AUDIT_WRITE);

Test(caps, root_sets_hold_exactly_what_was_applied)
{
	struct child_ctx c = { .bnd = runc_default, .eff = runc_default, .prm = runc_default,
			       .inh = BIT(CAP_NET_RAW) | BIT(CAP_KILL), .amb = BIT(CAP_NET_RAW) };
	char status[8192];

	run(&c, status, sizeof(status));
	expect_sets(status, runc_default, runc_default, runc_default,
		    BIT(CAP_NET_RAW) | BIT(CAP_KILL), BIT(CAP_NET_RAW));
}

Test(caps, empty_sets_leave_nothing)
{
	struct child_ctx c = { 0 };
	char status[8192];

	run(&c, status, sizeof(status));
	expect_sets(status, 0, 0, 0, 0, 0);
}

Test(caps, keepcaps_keeps_the_permitted_set_across_setuid)
{
	/* capset after setuid can only work if the permitted set survived it */
	struct child_ctx c = { .bnd = runc_default, .setuid_nobody = true, .eff = BIT(CAP_KILL),
			       .prm = BIT(CAP_KILL) | BIT(CAP_CHOWN) };
	char status[8192];

	run(&c, status, sizeof(status));
	cr_assert_not_null(strstr(status, "\nUid:\t65534\t65534\t65534\t65534\n"));
	expect_sets(status, runc_default, BIT(CAP_KILL), BIT(CAP_KILL) | BIT(CAP_CHOWN), 0, 0);
}

Test(caps, ambient_caps_survive_exec_as_non_root)
{
	uint64_t keep = BIT(CAP_NET_RAW) | BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_KILL);
	struct child_ctx c = { .bnd = keep, .setuid_nobody = true, .exec_cat = true,
			       .eff = keep, .prm = keep,
			       .inh = BIT(CAP_NET_RAW) | BIT(CAP_NET_BIND_SERVICE),
			       .amb = BIT(CAP_NET_RAW) | BIT(CAP_NET_BIND_SERVICE) };
	uint64_t amb = BIT(CAP_NET_RAW) | BIT(CAP_NET_BIND_SERVICE);
	char status[8192];

	run(&c, status, sizeof(status));
	cr_assert(!strncmp(status, "Name:\tcat\n", 10), "%s", status);
	cr_assert_not_null(strstr(status, "\nUid:\t65534\t65534\t65534\t65534\n"));
	/* exec as non-root: P'(permitted) = P'(effective) = P'(ambient); CAP_KILL is gone */
	expect_sets(status, keep, amb, amb, amb, amb);
}

Test(caps, without_ambient_a_non_root_exec_loses_everything)
{
	uint64_t keep = BIT(CAP_NET_RAW) | BIT(CAP_KILL);
	struct child_ctx c = { .bnd = keep, .setuid_nobody = true, .exec_cat = true,
			       .eff = keep, .prm = keep, .inh = BIT(CAP_NET_RAW) };
	char status[8192];

	run(&c, status, sizeof(status));
	expect_sets(status, keep, 0, 0, BIT(CAP_NET_RAW), 0);
}

/* --- failures name the capability */

Test(caps, raising_ambient_outside_inheritable_names_the_cap)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int cap = -2, rc;

		if (em_caps_set(runc_default, runc_default, BIT(CAP_KILL), &cap) < 0)
			_exit(10);
		rc = em_caps_set_ambient(BIT(CAP_KILL) | BIT(CAP_NET_RAW), last_cap(), &cap);
		/* CAP_KILL (5) goes up first, CAP_NET_RAW (13) is not inheritable */
		_exit(rc == -EPERM && cap == CAP_NET_RAW ? 0 : 11);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}

Test(caps, capset_beyond_permitted_names_the_cap)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int cap = -2, rc;

		/* CAP_SYS_RESOURCE is not in this root's permitted set; CAP_KILL is */
		rc = em_caps_set(0, BIT(CAP_KILL) | BIT(CAP_SYS_RESOURCE), 0, &cap);
		if (rc != -EPERM || cap != CAP_SYS_RESOURCE)
			_exit(11);
		if (em_caps_set(BIT(CAP_KILL), BIT(CAP_KILL), 0, &cap) < 0)
			_exit(12);
		/* effective outside the new permitted set */
		rc = em_caps_set(BIT(CAP_CHOWN), 0, 0, &cap);
		_exit(rc == -EPERM && cap == CAP_CHOWN ? 0 : 13);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}

Test(caps, capset_inheritable_outside_bounding_names_the_cap)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int cap = -2, rc;

		if (em_caps_drop_bounding(runc_default, last_cap(), &cap) < 0)
			_exit(10);
		rc = em_caps_set(runc_default, runc_default, BIT(CAP_SYS_ADMIN), &cap);
		_exit(rc == -EPERM && cap == CAP_SYS_ADMIN ? 0 : 11);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}

Test(caps, dropping_bounding_without_setpcap_names_the_cap)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uint64_t no_setpcap = runc_default & ~BIT(CAP_SETPCAP);
		int cap = -2, rc;

		if (em_caps_set(no_setpcap, no_setpcap, 0, &cap) < 0)
			_exit(10);
		rc = em_caps_drop_bounding(~BIT(CAP_CHOWN), last_cap(), &cap);
		_exit(rc == -EPERM && cap == CAP_CHOWN ? 0 : 11);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}

Test(caps, bounding_bits_the_process_lacks_are_no_error)
{
	/* keeping CAP_SYS_RESOURCE that this root never had leaves the bounding set as it was */
	uint64_t bnd = current_bounding();
	struct child_ctx c = { .bnd = bnd | BIT(CAP_SYS_RESOURCE), .eff = runc_default,
			       .prm = runc_default };
	char status[8192];

	run(&c, status, sizeof(status));
	expect_sets(status, bnd, runc_default, runc_default, 0, 0);
}
