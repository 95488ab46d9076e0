/* tests/cgroups/test_policy.c — the Lambda-style memory→CPU formula, as pure arithmetic. */
#include <criterion/criterion.h>
#include <errno.h>
#include <unistd.h>

#include "cgroups/cgroups.h"
#include "common/err.h"

static struct em_cg_limits sized(uint64_t mb, unsigned cpus)
{
	struct em_err err = { 0 };
	struct em_cg_policy p;
	struct em_cg_limits l = { 0 };

	em_cg_policy_default(&p);
	p.host_cpus = cpus;
	cr_assert_eq(em_cg_policy_apply(&p, mb, &l, &err), 0, "%s", err.msg);
	return l;
}

Test(cg_policy, defaults)
{
	struct em_cg_policy p;

	em_cg_policy_default(&p);
	cr_assert_eq(p.ref_mb_per_vcpu, 1769);
	cr_assert_eq(p.period_us, 100000);
	cr_assert_eq(p.min_mb, 128);
	cr_assert_eq(p.max_mb, 10240);
}

Test(cg_policy, memory_and_no_swap)
{
	struct em_cg_limits l = sized(512, 2);

	cr_assert(l.memory_max.set);
	cr_assert_eq(l.memory_max.v, 512LL << 20);
	cr_assert(l.swap_max.set);
	cr_assert_eq(l.swap_max.v, 0);
	cr_assert_not(l.pids_max.set);
}

Test(cg_policy, weight_proportional_to_memory)
{
	cr_assert_eq(sized(128, 2).cpu_weight.v, 125);
	cr_assert_eq(sized(512, 2).cpu_weight.v, 500);
	cr_assert_eq(sized(1769, 2).cpu_weight.v, 1728); /* ceil(1769*10000/10240) */
	cr_assert_eq(sized(10240, 2).cpu_weight.v, 10000);
	cr_assert_eq(sized(512, 2).cpu_weight.v, 4 * sized(128, 2).cpu_weight.v);
}

Test(cg_policy, quota_follows_memory)
{
	struct em_cg_limits l = sized(1769, 64);

	cr_assert(l.cpu_max.set);
	cr_assert_eq(l.cpu_max.period_us, 100000);
	cr_assert_eq(l.cpu_max.quota_us, 100000);              /* 1769 MB = one vCPU */
	cr_assert_eq(sized(885, 64).cpu_max.quota_us, 50029);  /* ceil(885e5/1769): half */
	cr_assert_eq(sized(128, 64).cpu_max.quota_us, 7236);
	cr_assert_eq(sized(3538, 64).cpu_max.quota_us, 200000);
	cr_assert_eq(sized(10240, 64).cpu_max.quota_us, 578859);
}

Test(cg_policy, quota_capped_at_host_cpus)
{
	cr_assert_eq(sized(10240, 2).cpu_max.quota_us, 200000);
	cr_assert_eq(sized(10240, 1).cpu_max.quota_us, 100000);
	cr_assert_eq(sized(3000, 1).cpu_max.quota_us, 100000);
}

Test(cg_policy, host_cpus_detected)
{
	struct em_cg_limits l = sized(10240, 0);
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	cr_assert_eq(l.cpu_max.quota_us, (n >= 6 ? 578859 : n * 100000));
}

Test(cg_policy, other_reference_and_period)
{
	struct em_err err = { 0 };
	struct em_cg_policy p;
	struct em_cg_limits l = { 0 };

	em_cg_policy_default(&p);
	p.ref_mb_per_vcpu = 1024;
	p.period_us = 50000;
	p.host_cpus = 8;
	cr_assert_eq(em_cg_policy_apply(&p, 2048, &l, &err), 0, "%s", err.msg);
	cr_assert_eq(l.cpu_max.quota_us, 100000);
	cr_assert_eq(l.cpu_max.period_us, 50000);
}

Test(cg_policy, minimum_quota_is_one_ms)
{
	struct em_err err = { 0 };
	struct em_cg_policy p;
	struct em_cg_limits l = { 0 };

	em_cg_policy_default(&p);
	p.min_mb = 1;
	p.host_cpus = 2;
	cr_assert_eq(em_cg_policy_apply(&p, 1, &l, &err), 0, "%s", err.msg);
	cr_assert_eq(l.cpu_max.quota_us, 1000);
	cr_assert_eq(l.cpu_weight.v, 1);
}

Test(cg_policy, out_of_range_is_einval)
{
	struct em_err err = { 0 };
	struct em_cg_policy p;
	struct em_cg_limits l = { 0 };

	em_cg_policy_default(&p);
	cr_assert_eq(em_cg_policy_apply(&p, 127, &l, &err), -EINVAL);
	cr_assert(strstr(err.msg, "128..10240"), "%s", err.msg);
	cr_assert_eq(em_cg_policy_apply(&p, 10241, &l, &err), -EINVAL);
	cr_assert_not(l.memory_max.set, "nothing filled on error");
	p.ref_mb_per_vcpu = 0;
	cr_assert_eq(em_cg_policy_apply(&p, 512, &l, &err), -EINVAL);
}
