/* tests/runtime/test_rlimits.c — process.rlimits applied in a forked child and read back from
 * its /proc/self/limits; what the kernel refuses is reported with the entry and the reason.
 * Root on this machine lacks CAP_SYS_RESOURCE: hard limits can only go down (nofile <= 20000). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "runtime/oci.h"
#include "runtime/rlimits.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct result {
	int rc;
	int failed_index;
	char limits[4096];      /* the child's /proc/self/limits after applying */
};

/* Apply v in a forked child; return what em_rlimits_apply said and what the kernel shows. */
static void apply_in_child(const struct em_oci_rlimit *v, size_t n, struct result *r)
{
	int p[2], status;
	size_t len = 0;
	ssize_t got;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct result out = { 0 };
		int fd;

		close(p[0]);
		out.rc = em_rlimits_apply(v, n, &out.failed_index);
		fd = open("/proc/self/limits", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || read(fd, out.limits, sizeof(out.limits) - 1) <= 0)
			_exit(2);
		if (write(p[1], &out, sizeof(out)) != (ssize_t)sizeof(out))
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	while (len < sizeof(*r) && (got = read(p[0], (char *)r + len, sizeof(*r) - len)) > 0)
		len += (size_t)got;
	close(p[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	cr_assert_eq(len, sizeof(*r));
}

/* "1024 4096" for a /proc/self/limits row ("unlimited" kept as is) */
static const char *row(const struct result *r, const char *name, char *buf, size_t cap)
{
	const char *p = strstr(r->limits, name);
	char soft[32], hard[32];

	cr_assert_not_null(p, "no \"%s\" in\n%s", name, r->limits);
	cr_assert_eq(sscanf(p + strlen(name), "%31s %31s", soft, hard), 2);
	snprintf(buf, cap, "%s %s", soft, hard);
	return buf;
}

static bool have_sys_resource(void)
{
	return prctl(PR_CAPBSET_READ, (unsigned long)CAP_SYS_RESOURCE, 0UL, 0UL, 0UL) == 1;
}

Test(rlimits, applied_limits_show_in_proc_self_limits)
{
	struct em_oci_rlimit v[] = {
		{ RLIMIT_NOFILE, "RLIMIT_NOFILE", 1024, 4096 },
		{ RLIMIT_CORE, "RLIMIT_CORE", 0, 0 },
		{ RLIMIT_NPROC, "RLIMIT_NPROC", 500, 1000 },
		{ RLIMIT_STACK, "RLIMIT_STACK", 8u << 20, RLIM_INFINITY },
	};
	struct em_err err = { 0 };
	struct result r;
	char buf[80];
	struct rlimit stack;

	cr_assert_eq(getrlimit(RLIMIT_STACK, &stack), 0);
	if (stack.rlim_max != RLIM_INFINITY)
		v[3].hard = stack.rlim_max;
	cr_assert_eq(em_rlimits_check(v, N(v), &err), 0, "%s", err.msg);
	apply_in_child(v, N(v), &r);
	cr_assert_eq(r.rc, 0, "apply: %s at %d", strerrorname_np(-r.rc), r.failed_index);
	cr_assert_eq(r.failed_index, -1);
	cr_expect_str_eq(row(&r, "Max open files", buf, sizeof(buf)), "1024 4096");
	cr_expect_str_eq(row(&r, "Max core file size", buf, sizeof(buf)), "0 0");
	cr_expect_str_eq(row(&r, "Max processes", buf, sizeof(buf)), "500 1000");
	if (stack.rlim_max == RLIM_INFINITY)
		cr_expect_str_eq(row(&r, "Max stack size", buf, sizeof(buf)), "8388608 unlimited");
}

Test(rlimits, soft_above_hard_is_refused_and_reported)
{
	struct em_oci_rlimit v[] = {
		{ RLIMIT_CORE, "RLIMIT_CORE", 0, 0 },
		{ RLIMIT_NOFILE, "RLIMIT_NOFILE", 2048, 1024 },
	};
	const char *want = "process.rlimits[1]: RLIMIT_NOFILE soft limit 2048 is above its hard "
			   "limit 1024";
	struct em_err err = { 0 };
	struct result r;
	char buf[80];

	apply_in_child(v, N(v), &r);
	cr_assert_eq(r.rc, -EINVAL);
	cr_assert_eq(r.failed_index, 1);
	/* entries before the failing one were applied; the failing one changed nothing */
	cr_expect_str_eq(row(&r, "Max core file size", buf, sizeof(buf)), "0 0");
	cr_expect_str_neq(row(&r, "Max open files", buf, sizeof(buf)), "2048 1024");

	cr_assert_eq(em_rlimits_error(v, N(v), r.failed_index, -r.rc, &err), -EINVAL);
	cr_assert_str_eq(err.msg, want);
	em_err_clear(&err);
	cr_assert_eq(em_rlimits_check(v, N(v), &err), -EINVAL);
	cr_assert_str_eq(err.msg, want);
}

Test(rlimits, raising_a_hard_limit_without_cap_sys_resource_is_eperm_and_explained)
{
	struct rlimit cur;
	struct em_err err = { 0 };
	struct result r;
	char want[256];

	if (have_sys_resource())
		cr_skip("this root has CAP_SYS_RESOURCE, so hard limits can be raised");
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &cur), 0);
	cr_assert_neq(cur.rlim_max, RLIM_INFINITY);

	struct em_oci_rlimit v[] = {
		{ RLIMIT_NOFILE, "RLIMIT_NOFILE", 1024, cur.rlim_max + 1 },
	};
	snprintf(want, sizeof(want), "process.rlimits[0]: RLIMIT_NOFILE hard limit %llu is above "
		 "the current hard limit %llu, and raising it needs CAP_SYS_RESOURCE, which ember "
		 "lacks", (unsigned long long)cur.rlim_max + 1, (unsigned long long)cur.rlim_max);

	apply_in_child(v, N(v), &r);
	cr_assert_eq(r.rc, -EPERM);
	cr_assert_eq(r.failed_index, 0);
	cr_assert_eq(em_rlimits_error(v, N(v), r.failed_index, -r.rc, &err), -EPERM);
	cr_assert_str_eq(err.msg, want);
	em_err_clear(&err);
	cr_assert_eq(em_rlimits_check(v, N(v), &err), -EPERM);
	cr_assert_str_eq(err.msg, want);
}

Test(rlimits, hard_limits_can_be_lowered_and_set_to_the_current_ceiling)
{
	struct rlimit cur;
	struct em_err err = { 0 };
	struct result r;
	char buf[80], want[80];

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &cur), 0);
	struct em_oci_rlimit v[] = {
		{ RLIMIT_NOFILE, "RLIMIT_NOFILE", cur.rlim_max, cur.rlim_max }, /* the ceiling */
		{ RLIMIT_NOFILE, "RLIMIT_NOFILE", 64, 128 },                     /* then lower */
	};

	cr_assert_eq(em_rlimits_check(v, 1, &err), 0, "%s", err.msg);
	apply_in_child(v, 1, &r);
	cr_assert_eq(r.rc, 0);
	if (cur.rlim_max == RLIM_INFINITY)
		snprintf(want, sizeof(want), "unlimited unlimited");
	else
		snprintf(want, sizeof(want), "%llu %llu", (unsigned long long)cur.rlim_max,
			 (unsigned long long)cur.rlim_max);
	cr_expect_str_eq(row(&r, "Max open files", buf, sizeof(buf)), want);

	apply_in_child(v, 2, &r);
	cr_assert_eq(r.rc, 0);
	cr_expect_str_eq(row(&r, "Max open files", buf, sizeof(buf)), "64 128");
}

Test(rlimits, unknown_resource_is_reported_with_the_entry)
{
	struct em_oci_rlimit v[] = { { 99, NULL, 1, 1 } };
	struct em_err err = { 0 };
	struct result r;

	apply_in_child(v, N(v), &r);
	cr_assert_eq(r.rc, -EINVAL);
	cr_assert_eq(r.failed_index, 0);
	cr_assert_eq(em_rlimits_error(v, N(v), r.failed_index, -r.rc, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "process.rlimits[0]: set resource 99 to soft 1 hard 1: EINVAL "
				  "(Invalid argument)");
}

Test(rlimits, nothing_to_apply_is_fine)
{
	int idx = 7;

	cr_assert_eq(em_rlimits_apply(NULL, 0, &idx), 0);
	cr_assert_eq(idx, -1);
}
