/* runtime/rlimits.c — see rlimits.h. */
#include "runtime/rlimits.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/err.h"
#include "runtime/oci.h"

static const char *name_of(const struct em_oci_rlimit *r, char buf[32])
{
	if (r->type)
		return r->type;
	snprintf(buf, 32, "resource %d", r->resource);
	return buf;
}

static const char *value_str(uint64_t v, char buf[24])
{
	if (v == RLIM_INFINITY)
		return "unlimited";
	snprintf(buf, 24, "%" PRIu64, v);
	return buf;
}

/* Is CAP_SYS_RESOURCE in our effective set? (capable() in the kernel asks the same of the
 * initial user namespace; if ember itself runs in a user namespace the child still fails, and
 * em_rlimits_error explains it then.) */
static bool have_sys_resource(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = { 0 };

	if (syscall(SYS_capget, &hdr, d) < 0)
		return true; /* cannot tell: let the kernel decide in the child */
	return d[CAP_TO_INDEX(CAP_SYS_RESOURCE)].effective & CAP_TO_MASK(CAP_SYS_RESOURCE);
}

/* Explain why the kernel refuses (or, check_only, would refuse) entry i; with check_only, 0 when
 * it would not. */
static int explain(const struct em_oci_rlimit *r, size_t i, int code, bool check_only,
		   struct em_err *err)
{
	char nb[32], sb[24], hb[24], cb[24];
	const char *name = name_of(r, nb);
	struct rlimit cur;

	if (r->soft > r->hard)
		return em_err_msg(err, EINVAL, "process.rlimits[%zu]: %s soft limit %s is above its "
				  "hard limit %s", i, name, value_str(r->soft, sb),
				  value_str(r->hard, hb));
	if (getrlimit((__rlimit_resource_t)r->resource, &cur) == 0 && r->hard > cur.rlim_max &&
	    (check_only ? !have_sys_resource() : code == EPERM))
		return em_err_msg(err, EPERM, "process.rlimits[%zu]: %s hard limit %s is "
				  "above the current hard limit %s, and raising it needs "
				  "CAP_SYS_RESOURCE, which ember lacks", i, name,
				  value_str(r->hard, hb), value_str(cur.rlim_max, cb));
	if (check_only)
		return 0;
	return em_err_set(err, code, "process.rlimits[%zu]: set %s to soft %s hard %s", i, name,
			  value_str(r->soft, sb), value_str(r->hard, hb));
}

int em_rlimits_check(const struct em_oci_rlimit *v, size_t n, struct em_err *err)
{
	for (size_t i = 0; i < n; i++) {
		int rc = explain(&v[i], i, 0, true, err);

		if (rc < 0)
			return rc;
	}
	return 0;
}

int em_rlimits_apply(const struct em_oci_rlimit *v, size_t n, int *failed_index)
{
	*failed_index = -1;
	for (size_t i = 0; i < n; i++) {
		struct rlimit lim = { .rlim_cur = v[i].soft, .rlim_max = v[i].hard };

		/* glibc's prlimit is the bare prlimit64 system call */
		if (prlimit(0, (__rlimit_resource_t)v[i].resource, &lim, NULL) < 0) {
			*failed_index = (int)i;
			return -errno;
		}
	}
	return 0;
}

int em_rlimits_error(const struct em_oci_rlimit *v, size_t n, int failed_index, int code,
		     struct em_err *err)
{
	if (failed_index < 0 || (size_t)failed_index >= n)
		return em_err_set(err, code, "process.rlimits: set rlimits");
	return explain(&v[failed_index], (size_t)failed_index, code, false, err);
}
