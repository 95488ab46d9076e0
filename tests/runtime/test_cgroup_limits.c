/* tests/runtime/test_cgroup_limits.c — OCI linux.resources → em_cg_limits: runc's conversions,
 * ember's no-swap default, errors that name the OCI field, warnings for what is ignored. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "runtime/cgroup_limits.h"

static struct em_oci_resources res(void)
{
	struct em_oci_resources r;

	memset(&r, 0, sizeof(r));
	r.present = true;
	return r;
}

static int convert(const struct em_oci_resources *r, struct em_cg_limits *l, struct em_err *err,
		   char *warnings, size_t cap)
{
	struct em_log log;
	int fd = memfd_create("log", MFD_CLOEXEC), ret;
	ssize_t n;

	cr_assert(fd >= 0);
	em_log_init_fd(&log, fd, EM_LOG_DEBUG, EM_LOG_TEXT);
	ret = em_rt_cg_limits_from_oci(r, l, &log, err);
	n = pread(fd, warnings, cap - 1, 0);
	warnings[n > 0 ? n : 0] = '\0';
	close(fd);
	return ret;
}

#define OK(r, l)                                                                          \
	do {                                                                              \
		struct em_err e_ = { 0 };                                                 \
		char w_[1024];                                                            \
		cr_assert_eq(convert(&(r), &(l), &e_, w_, sizeof(w_)), 0, "%s", e_.msg);  \
	} while (0)

Test(cg_limits_oci, absent_resources_set_nothing)
{
	struct em_oci_resources r = res();
	struct em_cg_limits l, zero;

	r.present = false;
	r.memory.limit = (struct em_opt_i64){ true, 1 << 20 };
	OK(r, l);
	memset(&zero, 0, sizeof(zero));
	cr_assert_eq(memcmp(&l, &zero, sizeof(l)), 0);
}

Test(cg_limits_oci, memory_limit_and_no_swap_by_default)
{
	struct em_oci_resources r = res();
	struct em_cg_limits l;

	r.memory.limit = (struct em_opt_i64){ true, 256 << 20 };
	OK(r, l);
	cr_assert(l.memory_max.set);
	cr_assert_eq(l.memory_max.v, 256 << 20);
	cr_assert(l.swap_max.set);
	cr_assert_eq(l.swap_max.v, 0);
	em_cg_limits_free(&l);
}

Test(cg_limits_oci, swap_is_memory_plus_swap)
{
	struct em_oci_resources r = res();
	struct em_cg_limits l;

	r.memory.limit = (struct em_opt_i64){ true, 256 << 20 };
	r.memory.swap = (struct em_opt_i64){ true, 384 << 20 };
	OK(r, l);
	cr_assert_eq(l.swap_max.v, 128 << 20);
	r.memory.swap.v = -1;
	OK(r, l);
	cr_assert_eq(l.swap_max.v, -1);
}

Test(cg_limits_oci, swap_below_limit_names_the_field)
{
	struct em_oci_resources r = res();
	struct em_cg_limits l;
	struct em_err err = { 0 };
	char w[256];

	r.memory.limit = (struct em_opt_i64){ true, 200 };
	r.memory.swap = (struct em_opt_i64){ true, 100 };
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), -EINVAL);
	cr_assert_str_eq(err.msg, "linux.resources.memory.swap: 100 is less than memory.limit 200 "
				  "(swap is memory+swap)");
	em_cg_limits_free(&l);
	r.memory.limit.set = false;
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), -EINVAL);
	cr_assert(strstr(err.msg, "linux.resources.memory.swap:"), "%s", err.msg);
}

Test(cg_limits_oci, bad_memory_limit_names_the_field)
{
	struct em_oci_resources r = res();
	struct em_cg_limits l;
	struct em_err err = { 0 };
	char w[256];

	r.memory.limit = (struct em_opt_i64){ true, -5 };
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), -EINVAL);
	cr_assert(!strncmp(err.msg, "linux.resources.memory.limit: ", 30), "%s", err.msg);
	r.memory.limit.v = -1; /* unlimited is fine, and then no swap default applies */
	OK(r, l);
	cr_assert_eq(l.memory_max.v, -1);
	cr_assert_not(l.swap_max.set);
}

Test(cg_limits_oci, memory_other_fields)
{
	struct em_oci_resources r = res();
	struct em_cg_limits l;
	struct em_err err = { 0 };
	char w[1024];

	r.memory.reservation = (struct em_opt_i64){ true, 64 << 20 };
	r.memory.swappiness = (struct em_opt_u64){ true, 30 };
	r.memory.disable_oom_killer = (struct em_opt_bool){ true, true };
	r.memory.kernel = (struct em_opt_i64){ true, 1 << 20 };
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), 0, "%s", err.msg);
	cr_assert_eq(l.memory_low.v, 64 << 20);
	cr_assert_eq(l.swappiness.v, 30);
	cr_assert(l.oom_kill_disable.set && l.oom_kill_disable.v);
	cr_assert(strstr(w, "linux.resources.memory.kernel"), "warnings: %s", w);
	r.memory.swappiness.v = 101;
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), -EINVAL);
	cr_assert(strstr(err.msg, "linux.resources.memory.swappiness"), "%s", err.msg);
	r.memory.swappiness.v = UINT64_MAX; /* -1 from some clients: not set */
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), 0, "%s", err.msg);
	cr_assert_not(l.swappiness.set);
}

Test(cg_limits_oci, shares_to_weight_as_runc)
{
	cr_assert_eq(em_rt_cg_shares_to_weight(0), 0);
	cr_assert_eq(em_rt_cg_shares_to_weight(2), 1);
	cr_assert_eq(em_rt_cg_shares_to_weight(1024), 39);   /* runc: 1 + (1022*9999)/262142 */
	cr_assert_eq(em_rt_cg_shares_to_weight(262144), 10000);
	cr_assert_eq(em_rt_cg_shares_to_weight(1), 1);
	cr_assert_eq(em_rt_cg_shares_to_weight(1000000), 10000);

	struct em_oci_resources r = res();
	struct em_cg_limits l;

	r.cpu.shares = (struct em_opt_u64){ true, 512 };
	OK(r, l);
	cr_assert(l.cpu_weight.set);
	cr_assert_eq(l.cpu_weight.v, 20);
}

Test(cg_limits_oci, quota_and_period)
{
	struct em_oci_resources r = res();
	struct em_cg_limits l;

	r.cpu.quota = (struct em_opt_i64){ true, 50000 };
	r.cpu.period = (struct em_opt_u64){ true, 100000 };
	OK(r, l);
	cr_assert(l.cpu_max.set);
	cr_assert_eq(l.cpu_max.quota_us, 50000);
	cr_assert_eq(l.cpu_max.period_us, 100000);
	/* a period alone: "max PERIOD", as runc */
	r.cpu.quota.set = false;
	OK(r, l);
	cr_assert_eq(l.cpu_max.quota_us, -1);
	cr_assert_eq(l.cpu_max.period_us, 100000);
	/* a quota alone keeps the current period */
	r.cpu.quota = (struct em_opt_i64){ true, 20000 };
	r.cpu.period.set = false;
	OK(r, l);
	cr_assert_eq(l.cpu_max.quota_us, 20000);
	cr_assert_eq(l.cpu_max.period_us, 0);
}

Test(cg_limits_oci, realtime_is_an_error)
{
	struct em_oci_resources r = res();
	struct em_cg_limits l;
	struct em_err err = { 0 };
	char w[256];

	r.cpu.realtime_runtime = (struct em_opt_i64){ true, 950000 };
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), -ENOTSUP);
	cr_assert(!strncmp(err.msg, "linux.resources.cpu.realtimeRuntime: ", 37), "%s", err.msg);
}

Test(cg_limits_oci, cpuset_idle_burst)
{
	struct em_oci_resources r = res();
	struct em_cg_limits l;
	struct em_err err = { 0 };
	char w[256];

	r.cpu.cpus = "0-1";
	r.cpu.mems = "0";
	r.cpu.idle = (struct em_opt_i64){ true, 1 };
	r.cpu.burst = (struct em_opt_u64){ true, 5000 };
	OK(r, l);
	cr_assert_str_eq(l.cpuset_cpus, "0-1");
	cr_assert_str_eq(l.cpuset_mems, "0");
	cr_assert(l.cpu_idle.v);
	cr_assert_eq(l.cpu_burst_us.v, 5000);
	cr_assert_neq((void *)l.cpuset_cpus, (void *)r.cpu.cpus, "copied, not borrowed");
	em_cg_limits_free(&l);
	cr_assert_null(l.cpuset_cpus);
	r.cpu.idle.v = 2;
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), -EINVAL);
	cr_assert(strstr(err.msg, "linux.resources.cpu.idle"), "%s", err.msg);
	em_cg_limits_free(&l);
}

Test(cg_limits_oci, pids)
{
	struct em_oci_resources r = res();
	struct em_cg_limits l;

	r.pids.limit = (struct em_opt_i64){ true, 64 };
	OK(r, l);
	cr_assert_eq(l.pids_max.v, 64);
	r.pids.limit.v = -1;
	OK(r, l);
	cr_assert_eq(l.pids_max.v, -1);
	r.pids.limit.v = 0;
	OK(r, l);
	cr_assert_not(l.pids_max.set);
}

Test(cg_limits_oci, block_io)
{
	struct em_oci_resources r = res();
	struct em_oci_throttle rb[] = { { 8, 0, 1048576 } }, wi[] = { { 8, 0, 100 }, { 8, 16, 50 } };
	struct em_cg_limits l;
	struct em_err err = { 0 };
	char w[1024];

	r.block_io.weight = (struct em_opt_u64){ true, 500 };
	r.block_io.throttle_read_bps = rb;
	r.block_io.n_throttle_read_bps = 1;
	r.block_io.throttle_write_iops = wi;
	r.block_io.n_throttle_write_iops = 2;
	r.block_io.leaf_weight = (struct em_opt_u64){ true, 10 };
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), 0, "%s", err.msg);
	cr_assert_eq(l.io_weight.v, 1 + 490 * 9999 / 990);
	cr_assert_eq(l.n_io_max, 2);
	cr_assert_eq(l.io_max[0].major, 8);
	cr_assert_eq(l.io_max[0].minor, 0);
	cr_assert_eq(l.io_max[0].rbps, 1048576);
	cr_assert_eq(l.io_max[0].wiops, 100);
	cr_assert_eq(l.io_max[0].wbps, UINT64_MAX);
	cr_assert_eq(l.io_max[1].minor, 16);
	cr_assert_eq(l.io_max[1].wiops, 50);
	cr_assert_eq(l.io_max[1].rbps, UINT64_MAX);
	cr_assert(strstr(w, "linux.resources.blockIO.leafWeight"), "%s", w);
	em_cg_limits_free(&l);
	r.block_io.weight.v = 5;
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), -EINVAL);
	cr_assert(strstr(err.msg, "linux.resources.blockIO.weight: 5"), "%s", err.msg);
	em_cg_limits_free(&l);
}

Test(cg_limits_oci, devices_in_order)
{
	struct em_oci_resources r = res();
	struct em_oci_device_rule d[] = {
		{ false, 'a', -1, -1, "rwm" },
		{ true, 'c', 1, 3, NULL },
		{ true, 'c', 136, -1, "rw" },
	};
	struct em_cg_limits l;
	struct em_err err = { 0 };
	char w[256];

	r.devices = d;
	r.n_devices = 3;
	OK(r, l);
	cr_assert_eq(l.n_devices, 3);
	cr_assert_not(l.devices[0].allow);
	cr_assert_eq(l.devices[0].type, 'a');
	cr_assert_eq(l.devices[1].major, 1);
	cr_assert_str_eq(l.devices[1].access, "rwm");
	cr_assert_eq(l.devices[2].minor, -1);
	cr_assert_str_eq(l.devices[2].access, "rw");
	em_cg_limits_free(&l);
	d[2].access = "rwx";
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), -EINVAL);
	cr_assert(strstr(err.msg, "linux.resources.devices[2].access"), "%s", err.msg);
	em_cg_limits_free(&l);
}

Test(cg_limits_oci, unified_and_ignored_fields)
{
	struct em_oci_resources r = res();
	struct em_oci_kv kv[] = { { "memory.high", "1000000" }, { "../cgroup.procs", "1" } };
	struct em_oci_hugepage hp = { "2MB", 1 << 21 };
	struct em_cg_limits l;
	struct em_err err = { 0 };
	char w[1024];

	r.unified.v = kv;
	r.unified.n = 1;
	r.hugepage_limits = &hp;
	r.n_hugepage_limits = 1;
	r.network.class_id = (struct em_opt_u64){ true, 0x100001 };
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), 0, "%s", err.msg);
	cr_assert_eq(l.n_raw, 1);
	cr_assert_str_eq(l.raw[0].file, "memory.high");
	cr_assert_str_eq(l.raw[0].value, "1000000");
	cr_assert(strstr(w, "linux.resources.hugepageLimits"), "%s", w);
	cr_assert(strstr(w, "linux.resources.network"), "%s", w);
	em_cg_limits_free(&l);
	r.unified.n = 2;
	cr_assert_eq(convert(&r, &l, &err, w, sizeof(w)), -EINVAL);
	cr_assert(strstr(err.msg, "linux.resources.unified.\"../cgroup.procs\""), "%s", err.msg);
	em_cg_limits_free(&l);
}
