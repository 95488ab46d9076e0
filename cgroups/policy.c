/* cgroups/policy.c — Lambda-style sizing: a function buys memory, and CPU follows it. The
 * formulas are in cgroups.h next to struct em_cg_policy; this file only computes, it never
 * touches the kernel. */
#include "cgroups/cgroups.h"
#include "common/err.h"

#include <errno.h>
#include <inttypes.h>
#include <unistd.h>

void em_cg_policy_default(struct em_cg_policy *p)
{
	p->ref_mb_per_vcpu = 1769;
	p->period_us = 100000;
	p->host_cpus = 0;
	p->min_mb = 128;
	p->max_mb = 10240;
}

static uint64_t div_ceil(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

int em_cg_policy_apply(const struct em_cg_policy *p, uint64_t memory_mb, struct em_cg_limits *l,
		       struct em_err *err)
{
	uint64_t cpus = p->host_cpus;
	uint64_t weight, quota;

	if (!p->ref_mb_per_vcpu || !p->max_mb || p->period_us < 1000 || p->period_us > 1000000 ||
	    p->min_mb > p->max_mb)
		return em_err_msg(err, EINVAL, "cpu policy: ref_mb_per_vcpu, max_mb must be > 0, "
				  "period_us within 1000..1000000, min_mb <= max_mb");
	if (memory_mb < p->min_mb || memory_mb > p->max_mb)
		return em_err_msg(err, EINVAL, "memory size %" PRIu64 " MB: must be within %" PRIu64
				  "..%" PRIu64 " MB", memory_mb, p->min_mb, p->max_mb);
	if (!cpus) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		cpus = n > 0 ? (uint64_t)n : 1;
	}
	weight = div_ceil(memory_mb * 10000, p->max_mb);
	if (weight < 1)
		weight = 1;
	if (weight > 10000)
		weight = 10000;
	quota = div_ceil(memory_mb * p->period_us, p->ref_mb_per_vcpu);
	if (quota < 1000)
		quota = 1000;          /* the kernel refuses quotas below 1 ms */
	if (quota > cpus * p->period_us)
		quota = cpus * p->period_us;

	l->memory_max.set = true;
	l->memory_max.v = (int64_t)(memory_mb << 20);
	l->swap_max.set = true;
	l->swap_max.v = 0;
	l->cpu_weight.set = true;
	l->cpu_weight.v = weight;
	l->cpu_max.set = true;
	l->cpu_max.quota_us = (int64_t)quota;
	l->cpu_max.period_us = p->period_us;
	return 0;
}
