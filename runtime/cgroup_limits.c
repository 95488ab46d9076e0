/* runtime/cgroup_limits.c — see cgroup_limits.h. Pure conversion: no kernel access. */
#include "runtime/cgroup_limits.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define F "linux.resources."

uint64_t em_rt_cg_shares_to_weight(uint64_t shares)
{
	if (!shares)
		return 0;
	if (shares < 2)
		shares = 2;
	if (shares > 262144)
		shares = 262144;
	return 1 + ((shares - 2) * 9999) / 262142;
}

static int memory(const struct em_oci_resources *r, struct em_cg_limits *l, struct em_log *log,
		  struct em_err *err)
{
	const struct em_opt_i64 *lim = &r->memory.limit, *swap = &r->memory.swap;
	bool has_limit = lim->set && lim->v != 0;

	if (lim->set && lim->v < -1)
		return em_err_msg(err, EINVAL, F "memory.limit: %" PRId64 " is neither -1 (unlimited) "
				  "nor a number of bytes", lim->v);
	if (has_limit) {
		l->memory_max.set = true;
		l->memory_max.v = lim->v;
	}
	if (swap->set && swap->v < -1)
		return em_err_msg(err, EINVAL, F "memory.swap: %" PRId64 " is neither -1 (unlimited) "
				  "nor a number of bytes", swap->v);
	if (swap->set && swap->v == -1) {
		l->swap_max.set = true;
		l->swap_max.v = -1;
	} else if (swap->set && swap->v > 0) {
		if (!has_limit || lim->v < 0)
			return em_err_msg(err, EINVAL, F "memory.swap: a swap limit needs a memory limit "
					  "(swap is memory+swap)");
		if (swap->v < lim->v)
			return em_err_msg(err, EINVAL, F "memory.swap: %" PRId64 " is less than "
					  "memory.limit %" PRId64 " (swap is memory+swap)", swap->v,
					  lim->v);
		l->swap_max.set = true;
		l->swap_max.v = swap->v - lim->v;
	} else if (has_limit && lim->v > 0) {
		/* ember's default: no swap beyond the memory limit */
		l->swap_max.set = true;
		l->swap_max.v = 0;
	}
	if (r->memory.reservation.set && r->memory.reservation.v != 0) {
		if (r->memory.reservation.v < -1)
			return em_err_msg(err, EINVAL, F "memory.reservation: %" PRId64 " is neither -1 "
					  "nor a number of bytes", r->memory.reservation.v);
		l->memory_low.set = true;
		l->memory_low.v = r->memory.reservation.v;
	}
	if (r->memory.swappiness.set && r->memory.swappiness.v != UINT64_MAX) {
		if (r->memory.swappiness.v > 100)
			return em_err_msg(err, EINVAL, F "memory.swappiness: %" PRIu64 " is not within "
					  "0..100", r->memory.swappiness.v);
		l->swappiness.set = true;
		l->swappiness.v = r->memory.swappiness.v;
	}
	if (r->memory.disable_oom_killer.set) {
		l->oom_kill_disable.set = true;
		l->oom_kill_disable.v = r->memory.disable_oom_killer.v;
	}
	if (r->memory.kernel.set)
		em_warn(log, F "memory.kernel: kernel memory limits are deprecated by the kernel, "
			"ignored");
	if (r->memory.kernel_tcp.set)
		em_warn(log, F "memory.kernelTCP: kernel TCP memory limits are deprecated, ignored");
	return 0;
}

static int cpu(const struct em_oci_resources *r, struct em_cg_limits *l, struct em_err *err)
{
	if (r->cpu.shares.set && r->cpu.shares.v) {
		l->cpu_weight.set = true;
		l->cpu_weight.v = em_rt_cg_shares_to_weight(r->cpu.shares.v);
	}
	if ((r->cpu.quota.set && r->cpu.quota.v != 0) || (r->cpu.period.set && r->cpu.period.v)) {
		if (r->cpu.quota.set && r->cpu.quota.v < -1)
			return em_err_msg(err, EINVAL, F "cpu.quota: %" PRId64 " is neither -1 nor a "
					  "number of microseconds", r->cpu.quota.v);
		l->cpu_max.set = true;
		l->cpu_max.quota_us = r->cpu.quota.set && r->cpu.quota.v > 0 ? r->cpu.quota.v : -1;
		l->cpu_max.period_us = r->cpu.period.set ? r->cpu.period.v : 0;
	}
	if (r->cpu.burst.set) {
		l->cpu_burst_us.set = true;
		l->cpu_burst_us.v = r->cpu.burst.v;
	}
	if (r->cpu.idle.set) {
		if (r->cpu.idle.v != 0 && r->cpu.idle.v != 1)
			return em_err_msg(err, EINVAL, F "cpu.idle: %" PRId64 " is neither 0 nor 1",
					  r->cpu.idle.v);
		l->cpu_idle.set = true;
		l->cpu_idle.v = r->cpu.idle.v;
	}
	if (r->cpu.realtime_runtime.set && r->cpu.realtime_runtime.v)
		return em_err_msg(err, ENOTSUP, F "cpu.realtimeRuntime: real-time group scheduling "
				  "is not supported by ember");
	if (r->cpu.realtime_period.set && r->cpu.realtime_period.v)
		return em_err_msg(err, ENOTSUP, F "cpu.realtimePeriod: real-time group scheduling "
				  "is not supported by ember");
	if (r->cpu.cpus && *r->cpu.cpus && !(l->cpuset_cpus = strdup(r->cpu.cpus)))
		return em_err_set(err, ENOMEM, F "cpu.cpus");
	if (r->cpu.mems && *r->cpu.mems && !(l->cpuset_mems = strdup(r->cpu.mems)))
		return em_err_set(err, ENOMEM, F "cpu.mems");
	return 0;
}

static struct em_cg_io_max *io_dev(struct em_cg_limits *l, int64_t major, int64_t minor,
				   struct em_err *err)
{
	struct em_cg_io_max *n;

	for (size_t i = 0; i < l->n_io_max; i++)
		if (l->io_max[i].major == major && l->io_max[i].minor == minor)
			return &l->io_max[i];
	n = realloc(l->io_max, (l->n_io_max + 1) * sizeof(*n));
	if (!n) {
		em_err_set(err, ENOMEM, F "blockIO");
		return NULL;
	}
	l->io_max = n;
	n = &l->io_max[l->n_io_max++];
	*n = (struct em_cg_io_max){ major, minor, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX };
	return n;
}

static int block_io(const struct em_oci_resources *r, struct em_cg_limits *l, struct em_log *log,
		    struct em_err *err)
{
	const struct {
		const char *name;
		const struct em_oci_throttle *v;
		size_t n;
		size_t field;
	} th[] = {
		{ "throttleReadBpsDevice", r->block_io.throttle_read_bps, r->block_io.n_throttle_read_bps,
		  offsetof(struct em_cg_io_max, rbps) },
		{ "throttleWriteBpsDevice", r->block_io.throttle_write_bps,
		  r->block_io.n_throttle_write_bps, offsetof(struct em_cg_io_max, wbps) },
		{ "throttleReadIOPSDevice", r->block_io.throttle_read_iops,
		  r->block_io.n_throttle_read_iops, offsetof(struct em_cg_io_max, riops) },
		{ "throttleWriteIOPSDevice", r->block_io.throttle_write_iops,
		  r->block_io.n_throttle_write_iops, offsetof(struct em_cg_io_max, wiops) },
	};

	if (r->block_io.weight.set && r->block_io.weight.v) {
		uint64_t w = r->block_io.weight.v;

		if (w < 10 || w > 1000)
			return em_err_msg(err, EINVAL, F "blockIO.weight: %" PRIu64 " is not within "
					  "10..1000", w);
		l->io_weight.set = true;
		l->io_weight.v = 1 + (w - 10) * 9999 / 990;
	}
	if (r->block_io.leaf_weight.set)
		em_warn(log, F "blockIO.leafWeight: not supported, ignored");
	if (r->block_io.n_weight_device)
		em_warn(log, F "blockIO.weightDevice: per-device weights are not supported, ignored");
	for (size_t t = 0; t < EM_ARRAY_SIZE(th); t++)
		for (size_t i = 0; i < th[t].n; i++) {
			const struct em_oci_throttle *d = &th[t].v[i];
			struct em_cg_io_max *m;

			if (d->major < 0 || d->minor < 0)
				return em_err_msg(err, EINVAL, F "blockIO.%s[%zu]: major and minor "
						  "must be device numbers", th[t].name, i);
			if (!(m = io_dev(l, d->major, d->minor, err)))
				return -ENOMEM;
			*(uint64_t *)((char *)m + th[t].field) = d->rate;
		}
	return 0;
}

static int devices(const struct em_oci_resources *r, struct em_cg_limits *l, struct em_err *err)
{
	if (!r->n_devices)
		return 0;
	l->devices = calloc(r->n_devices, sizeof(*l->devices));
	if (!l->devices)
		return em_err_set(err, ENOMEM, F "devices");
	for (size_t i = 0; i < r->n_devices; i++) {
		const struct em_oci_device_rule *d = &r->devices[i];
		struct em_cg_device_rule *o = &l->devices[i];
		const char *acc = d->access && *d->access ? d->access : "rwm";

		if (d->type != 'a' && d->type != 'c' && d->type != 'b')
			return em_err_msg(err, EINVAL, F "devices[%zu].type: \"%c\" is not a, c or b", i,
					  d->type);
		if (strlen(acc) > 3 || strspn(acc, "rwm") != strlen(acc))
			return em_err_msg(err, EINVAL, F "devices[%zu].access: \"%s\" is not a subset "
					  "of \"rwm\"", i, acc);
		o->allow = d->allow;
		o->type = d->type;
		o->major = d->major;
		o->minor = d->minor;
		strcpy(o->access, acc);
		l->n_devices = i + 1;
	}
	return 0;
}

static int unified(const struct em_oci_resources *r, struct em_cg_limits *l, struct em_err *err)
{
	if (!r->unified.n)
		return 0;
	l->raw = calloc(r->unified.n, sizeof(*l->raw));
	if (!l->raw)
		return em_err_set(err, ENOMEM, F "unified");
	for (size_t i = 0; i < r->unified.n; i++) {
		const struct em_oci_kv *kv = &r->unified.v[i];

		if (!*kv->key || strchr(kv->key, '/') || !strcmp(kv->key, ".") ||
		    !strcmp(kv->key, ".."))
			return em_err_msg(err, EINVAL, F "unified.\"%s\": not a cgroup file name",
					  kv->key);
		l->raw[i].file = strdup(kv->key);
		l->raw[i].value = strdup(kv->value ? kv->value : "");
		l->n_raw = i + 1;
		if (!l->raw[i].file || !l->raw[i].value)
			return em_err_set(err, ENOMEM, F "unified");
	}
	return 0;
}

int em_rt_cg_limits_from_oci(const struct em_oci_resources *r, struct em_cg_limits *out,
			     struct em_log *log, struct em_err *err)
{
	int ret;

	memset(out, 0, sizeof(*out));
	if (!r || !r->present)
		return 0;
	if ((ret = memory(r, out, log, err)) < 0 || (ret = cpu(r, out, err)) < 0 ||
	    (ret = block_io(r, out, log, err)) < 0 || (ret = devices(r, out, err)) < 0 ||
	    (ret = unified(r, out, err)) < 0)
		return ret;
	if (r->pids.limit.set && r->pids.limit.v != 0) {
		out->pids_max.set = true;
		out->pids_max.v = r->pids.limit.v < 0 ? -1 : r->pids.limit.v;
	}
	if (r->n_hugepage_limits)
		em_warn(log, F "hugepageLimits: the hugetlb controller is not managed by ember, "
			"ignored");
	if (r->network.class_id.set || r->network.n_priorities)
		em_warn(log, F "network: net_cls/net_prio are not managed by ember, ignored");
	return 0;
}
