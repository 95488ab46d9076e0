/* runtime/caps.c — see caps.h. Everything but em_caps_last_cap runs in the sandbox child:
 * raw system calls only, no allocation, no errno-name formatting. */
#include "runtime/caps.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"

#define CAP_FILE "/proc/sys/kernel/cap_last_cap"

int em_caps_last_cap(int *out, struct em_err *err)
{
	uint64_t v;
	int rc = em_read_u64_at(AT_FDCWD, CAP_FILE, &v, err);

	if (rc < 0)
		return rc;
	if (v > 63) /* the sets are 64-bit masks; a bigger number means a misread */
		return em_err_msg(err, ERANGE, "%s: %llu is above 63", CAP_FILE, (unsigned long long)v);
	*out = (int)v;
	return 0;
}

int em_caps_keep_on_setuid(bool keep)
{
	if (prctl(PR_SET_KEEPCAPS, keep ? 1UL : 0UL, 0UL, 0UL, 0UL) < 0)
		return -errno;
	return 0;
}

static inline bool has(uint64_t set, int cap)
{
	return (set >> cap) & 1;
}

int em_caps_drop_bounding(uint64_t keep, int last_cap, int *failed_cap)
{
	*failed_cap = -1;
	for (int cap = 0; cap <= last_cap && cap < 64; cap++) {
		if (has(keep, cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0UL, 0UL, 0UL) < 0) {
			/* EINVAL: the kernel does not know it (last_cap stale), nothing to drop */
			if (errno == EINVAL)
				continue;
			*failed_cap = cap;
			return -errno;
		}
	}
	return 0;
}

static int capget_self(uint64_t *eff, uint64_t *perm, uint64_t *inh)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = { 0 };

	if (syscall(SYS_capget, &hdr, d) < 0)
		return -errno;
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*perm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	*inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

static int lowest(uint64_t set)
{
	return set ? __builtin_ctzll(set) : -1;
}

/* The capability capset refused, by the kernel's rules (security/commoncap.c, cap_capset). */
static int blame_capset(uint64_t eff, uint64_t perm, uint64_t inh)
{
	uint64_t old_eff = 0, old_perm = 0, old_inh = 0, bad = 0;

	if (capget_self(&old_eff, &old_perm, &old_inh) < 0)
		return -1;
	bad |= perm & ~old_perm;        /* the permitted set can only shrink */
	bad |= eff & ~perm;             /* effective must be within the new permitted set */
	/* a new inheritable cap must be in the bounding set, and in the old permitted set unless
	 * CAP_SETPCAP is effective */
	for (int cap = 0; cap < 64; cap++) {
		if (!has(inh, cap) || has(old_inh, cap))
			continue;
		if (!has(old_eff, CAP_SETPCAP) && !has(old_perm, cap))
			bad |= 1ULL << cap;
		else if (prctl(PR_CAPBSET_READ, (unsigned long)cap, 0UL, 0UL, 0UL) != 1)
			bad |= 1ULL << cap;
	}
	return lowest(bad);
}

int em_caps_set(uint64_t eff, uint64_t perm, uint64_t inh, int *failed_cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {
		{ .effective = (uint32_t)eff, .permitted = (uint32_t)perm,
		  .inheritable = (uint32_t)inh },
		{ .effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32),
		  .inheritable = (uint32_t)(inh >> 32) },
	};

	*failed_cap = -1;
	if (syscall(SYS_capset, &hdr, d) < 0) {
		int e = errno;

		if (e == EPERM)
			*failed_cap = blame_capset(eff, perm, inh);
		return -e;
	}
	return 0;
}

int em_caps_set_ambient(uint64_t amb, int last_cap, int *failed_cap)
{
	*failed_cap = -1;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0UL, 0UL, 0UL) < 0) {
		/* kernels before 4.3 have no ambient set: fine as long as none is asked for */
		if (errno == EINVAL && amb == 0)
			return 0;
		return -errno;
	}
	for (int cap = 0; cap <= last_cap && cap < 64; cap++) {
		if (!has(amb, cap))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)cap, 0UL, 0UL) < 0) {
			*failed_cap = cap;
			return -errno;
		}
	}
	return 0;
}
