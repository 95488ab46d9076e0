/* runtime/oci_linux.c — the `linux` section of config.json: namespaces, id mappings, time
 * offsets, devices, resources, sysctl, seccomp, propagation, masked/read-only paths,
 * personality. Checks that only need this section live here; those that also need the top level
 * (hostname, sysctls against namespaces) are in oci.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "runtime/oci.h"
#include "runtime/oci_json.h"

/* Allocate the array of `v` (which must be an array) and call each(elem, path, &arr[i]). */
#define PARSE_ARRAY(v, path, arr, n, each, err)                                               \
	({                                                                                     \
		int _r = oci_want_array((v), (path), (err));                                   \
		if (_r == 0)                                                                   \
			_r = oci_alloc((void **)&(arr), json_array_size(v), sizeof(*(arr)),     \
				       (path), (err));                                         \
		for (size_t _i = 0; _r == 0 && _i < json_array_size(v); _i++) {                \
			(n) = _i + 1;                                                          \
			_r = each(json_array_get((v), _i), oci_idx((path), _i).s, &(arr)[_i],  \
				  (err));                                                      \
		}                                                                              \
		_r;                                                                            \
	})

static int one_of(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

/* ---- namespaces, mappings, time offsets */

static int parse_ns(const json_t *v, const char *path, struct em_oci_namespace *ns,
		    struct em_err *err)
{
	cleanup_free char *type = NULL;
	int t, r = oci_want_object(v, path, err);

	if (r == 0)
		r = oci_get_str(v, path, "type", true, &type, err);
	if (r < 0)
		return r;
	t = em_ns_type_from_name(type);
	if (t < 0)
		return em_err_msg(err, EINVAL, "%s.type: unknown namespace \"%s\"", path, type);
	ns->type = t;
	r = oci_get_str(v, path, "path", false, &ns->path, err);
	if (r == 0 && ns->path && !*ns->path) {
		free(ns->path); /* runc treats "" as "create a new one" */
		ns->path = NULL;
	}
	if (r == 0 && ns->path)
		r = oci_check_abs(ns->path, oci_key(path, "path").s, err);
	return r;
}

static int parse_namespaces(const json_t *v, const char *path, struct em_oci_linux *lx,
			    struct em_err *err)
{
	int r = PARSE_ARRAY(v, path, lx->namespaces, lx->n_namespaces, parse_ns, err);

	for (size_t i = 0; r == 0 && i < lx->n_namespaces; i++)
		for (size_t k = 0; k < i; k++)
			if (lx->namespaces[k].type == lx->namespaces[i].type)
				return em_err_msg(err, EINVAL,
						  "%s.type: duplicate namespace \"%s\"",
						  oci_idx(path, i).s,
						  em_ns_type_name(lx->namespaces[i].type));
	return r;
}

static const struct em_oci_namespace *find_ns(const struct em_oci_linux *lx, enum em_ns_type t)
{
	for (size_t i = 0; i < lx->n_namespaces; i++)
		if (lx->namespaces[i].type == t)
			return &lx->namespaces[i];
	return NULL;
}

static int check_user_ns(const struct em_oci_linux *lx, const char *path, struct em_err *err)
{
	const struct em_oci_namespace *user = find_ns(lx, EM_NS_USER);

	/* runc: "User namespace mappings specified, but USER namespace isn't enabled" */
	if (!user && lx->n_uid_mappings)
		return em_err_msg(err, EINVAL,
				  "%s.uidMappings: needs a user namespace (linux.namespaces has no \"user\")",
				  path);
	if (!user && lx->n_gid_mappings)
		return em_err_msg(err, EINVAL,
				  "%s.gidMappings: needs a user namespace (linux.namespaces has no \"user\")",
				  path);
	/* a new user namespace without maps leaves every id unmapped: nothing could setuid */
	if (user && !user->path && !lx->n_uid_mappings)
		return em_err_msg(err, EINVAL, "%s.uidMappings: required with a new user namespace",
				  path);
	if (user && !user->path && !lx->n_gid_mappings)
		return em_err_msg(err, EINVAL, "%s.gidMappings: required with a new user namespace",
				  path);
	return 0;
}

static int parse_offset(const json_t *v, const char *path, struct em_oci_time_offset *o,
			struct em_err *err)
{
	int r = oci_want_object(v, path, err);
	json_t *f;

	if (r == 0 && (f = oci_field(v, "secs")))
		r = oci_as_i64(f, oci_key(path, "secs").s, INT64_MIN, INT64_MAX, &o->secs, err);
	if (r == 0)
		r = oci_get_u32(v, path, "nanosecs", false, 999999999, &o->nanosecs, err);
	o->set = r == 0;
	return r;
}

static int parse_time_offsets(const json_t *v, const char *path, struct em_oci_linux *lx,
			      struct em_err *err)
{
	const struct em_oci_namespace *ns = find_ns(lx, EM_NS_TIME);
	json_t *f;
	int r = oci_want_object(v, path, err);

	if (r < 0)
		return r;
	if ((f = oci_field(v, "monotonic")))
		r = parse_offset(f, oci_key(path, "monotonic").s, &lx->time_monotonic, err);
	if (r == 0 && (f = oci_field(v, "boottime")))
		r = parse_offset(f, oci_key(path, "boottime").s, &lx->time_boottime, err);
	if (r < 0)
		return r;
	/* offsets can be written only before the first process enters the namespace */
	if ((lx->time_monotonic.set || lx->time_boottime.set) && (!ns || ns->path))
		return em_err_msg(err, EINVAL, "%s: needs a new time namespace", path);
	return 0;
}

/* ---- devices */

#define DEV_MAJOR_MAX 4095     /* 12 bits of major in the kernel's dev_t */
#define DEV_MINOR_MAX 1048575  /* 20 bits of minor */

static int parse_device(const json_t *v, const char *path, struct em_oci_device *d,
			struct em_err *err)
{
	cleanup_free char *type = NULL;
	json_t *f;
	int r = oci_want_object(v, path, err);

	if (r == 0)
		r = oci_get_str(v, path, "type", true, &type, err);
	if (r < 0)
		return r;
	if (strlen(type) != 1 || !strchr("cubp", type[0]))
		return em_err_msg(err, EINVAL,
				  "%s.type: unknown device type \"%s\" (want c, u, b or p)", path,
				  type);
	d->type = type[0];
	r = oci_get_str(v, path, "path", true, &d->path, err);
	if (r == 0)
		r = oci_check_abs(d->path, oci_key(path, "path").s, err);
	if (r < 0)
		return r;
	d->major = d->minor = -1;
	if ((f = oci_field(v, "major")))
		r = oci_as_i64(f, oci_key(path, "major").s, 0, DEV_MAJOR_MAX, &d->major, err);
	else if (d->type != 'p')
		r = em_err_msg(err, EINVAL, "%s.major: required for a \"%c\" device", path, d->type);
	if (r < 0)
		return r;
	if ((f = oci_field(v, "minor")))
		r = oci_as_i64(f, oci_key(path, "minor").s, 0, DEV_MINOR_MAX, &d->minor, err);
	else if (d->type != 'p')
		r = em_err_msg(err, EINVAL, "%s.minor: required for a \"%c\" device", path, d->type);
	if (r == 0)
		r = oci_get_opt_u64(v, path, "fileMode", UINT32_MAX, &d->file_mode, err);
	if (r == 0 && d->file_mode.set) {
		/* some writers include the S_IFMT type bits; keep the permission bits only */
		if (d->file_mode.v & ~(uint64_t)(07777 | S_IFMT))
			return em_err_msg(err, EINVAL, "%s.fileMode: not a file mode: %#llo", path,
					  (unsigned long long)d->file_mode.v);
		d->file_mode.v &= 07777;
	}
	if (r == 0)
		r = oci_get_opt_u64(v, path, "uid", UINT32_MAX - 1, &d->uid, err);
	if (r == 0)
		r = oci_get_opt_u64(v, path, "gid", UINT32_MAX - 1, &d->gid, err);
	return r;
}

/* ---- resources */

static int parse_dev_rule(const json_t *v, const char *path, struct em_oci_device_rule *d,
			  struct em_err *err)
{
	cleanup_free char *type = NULL;
	json_t *f;
	int r = oci_want_object(v, path, err);

	if (r < 0)
		return r;
	if (!(f = oci_field(v, "allow")))
		return em_err_msg(err, EINVAL, "%s.allow: required", path);
	r = oci_as_bool(f, oci_key(path, "allow").s, &d->allow, err);
	if (r == 0)
		r = oci_get_str(v, path, "type", false, &type, err);
	if (r < 0)
		return r;
	d->type = 'a';
	if (type) {
		if (strlen(type) != 1 || !strchr("acb", type[0]))
			return em_err_msg(err, EINVAL,
					  "%s.type: unknown device type \"%s\" (want a, c or b)",
					  path, type);
		d->type = type[0];
	}
	d->major = d->minor = -1;
	if ((f = oci_field(v, "major")))
		r = oci_as_i64(f, oci_key(path, "major").s, -1, DEV_MAJOR_MAX, &d->major, err);
	if (r == 0 && (f = oci_field(v, "minor")))
		r = oci_as_i64(f, oci_key(path, "minor").s, -1, DEV_MINOR_MAX, &d->minor, err);
	if (r == 0)
		r = oci_get_str(v, path, "access", false, &d->access, err);
	if (r < 0)
		return r;
	if (!d->access) {
		d->access = strdup("rwm");
		if (!d->access)
			return em_err_set(err, ENOMEM, "%s", path);
	} else if (!*d->access || strspn(d->access, "rwm") != strlen(d->access)) {
		return em_err_msg(err, EINVAL, "%s.access: must be letters of \"rwm\", got \"%s\"",
				  path, d->access);
	}
	return 0;
}

static int parse_memory(const json_t *v, const char *path, struct em_oci_resources *res,
			struct em_err *err)
{
	int r = oci_want_object(v, path, err);

	/* -1 is "unlimited" for every memory limit */
	if (r == 0)
		r = oci_get_opt_i64(v, path, "limit", -1, INT64_MAX, &res->memory.limit, err);
	if (r == 0)
		r = oci_get_opt_i64(v, path, "reservation", -1, INT64_MAX, &res->memory.reservation,
				    err);
	if (r == 0)
		r = oci_get_opt_i64(v, path, "swap", -1, INT64_MAX, &res->memory.swap, err);
	if (r == 0)
		r = oci_get_opt_i64(v, path, "kernel", -1, INT64_MAX, &res->memory.kernel, err);
	if (r == 0)
		r = oci_get_opt_i64(v, path, "kernelTCP", -1, INT64_MAX, &res->memory.kernel_tcp,
				    err);
	if (r == 0)
		r = oci_get_opt_u64(v, path, "swappiness", 100, &res->memory.swappiness, err);
	if (r == 0)
		r = oci_get_opt_bool(v, path, "disableOOMKiller", &res->memory.disable_oom_killer,
				     err);
	if (r == 0)
		r = oci_get_opt_bool(v, path, "useHierarchy", &res->memory.use_hierarchy, err);
	if (r == 0)
		r = oci_get_opt_bool(v, path, "checkBeforeUpdate", &res->memory.check_before_update,
				     err);
	return r;
}

/* A cpuset list: "0-3,8,10-11". */
static int check_cpuset(const char *s, const char *path, struct em_err *err)
{
	if (strspn(s, "0123456789,-") != strlen(s))
		return em_err_msg(err, EINVAL, "%s: not a cpu/node list: \"%s\"", path, s);
	return 0;
}

static int parse_cpu(const json_t *v, const char *path, struct em_oci_resources *res,
		     struct em_err *err)
{
	int r = oci_want_object(v, path, err);

	if (r == 0)
		r = oci_get_opt_u64(v, path, "shares", UINT64_MAX, &res->cpu.shares, err);
	if (r == 0)
		r = oci_get_opt_i64(v, path, "quota", -1, INT64_MAX, &res->cpu.quota, err);
	if (r == 0)
		r = oci_get_opt_u64(v, path, "burst", UINT64_MAX, &res->cpu.burst, err);
	if (r == 0)
		r = oci_get_opt_u64(v, path, "period", UINT64_MAX, &res->cpu.period, err);
	if (r == 0)
		r = oci_get_opt_i64(v, path, "realtimeRuntime", -1, INT64_MAX,
				    &res->cpu.realtime_runtime, err);
	if (r == 0)
		r = oci_get_opt_u64(v, path, "realtimePeriod", UINT64_MAX,
				    &res->cpu.realtime_period, err);
	if (r == 0)
		r = oci_get_opt_i64(v, path, "idle", 0, 1, &res->cpu.idle, err);
	if (r == 0)
		r = oci_get_str(v, path, "cpus", false, &res->cpu.cpus, err);
	if (r == 0 && res->cpu.cpus)
		r = check_cpuset(res->cpu.cpus, oci_key(path, "cpus").s, err);
	if (r == 0)
		r = oci_get_str(v, path, "mems", false, &res->cpu.mems, err);
	if (r == 0 && res->cpu.mems)
		r = check_cpuset(res->cpu.mems, oci_key(path, "mems").s, err);
	return r;
}

static int parse_major_minor(const json_t *v, const char *path, int64_t *major, int64_t *minor,
			     struct em_err *err)
{
	json_t *f;
	int r = oci_want_object(v, path, err);

	if (r < 0)
		return r;
	if (!(f = oci_field(v, "major")))
		return em_err_msg(err, EINVAL, "%s.major: required", path);
	r = oci_as_i64(f, oci_key(path, "major").s, 0, DEV_MAJOR_MAX, major, err);
	if (r < 0)
		return r;
	if (!(f = oci_field(v, "minor")))
		return em_err_msg(err, EINVAL, "%s.minor: required", path);
	return oci_as_i64(f, oci_key(path, "minor").s, 0, DEV_MINOR_MAX, minor, err);
}

/* blkio weights: 10..1000 (cgroup v1 blkio.weight; v2 io.weight is converted from it) */
#define WEIGHT_MIN 10
#define WEIGHT_MAX 1000

static int get_weight(const json_t *v, const char *path, const char *key, struct em_opt_u64 *out,
		      struct em_err *err)
{
	int r = oci_get_opt_u64(v, path, key, WEIGHT_MAX, out, err);

	/* 0 means "not set" to runc */
	if (r == 0 && out->set && out->v != 0 && out->v < WEIGHT_MIN)
		r = em_err_msg(err, EINVAL, "%s: must be between %d and %d, got %llu",
			       oci_key(path, key).s, WEIGHT_MIN, WEIGHT_MAX,
			       (unsigned long long)out->v);
	return r;
}

static int parse_weight_device(const json_t *v, const char *path, struct em_oci_weight_device *w,
			       struct em_err *err)
{
	int r = parse_major_minor(v, path, &w->major, &w->minor, err);

	if (r == 0)
		r = get_weight(v, path, "weight", &w->weight, err);
	if (r == 0)
		r = get_weight(v, path, "leafWeight", &w->leaf_weight, err);
	return r;
}

static int parse_throttle(const json_t *v, const char *path, struct em_oci_throttle *t,
			  struct em_err *err)
{
	json_t *f;
	int r = parse_major_minor(v, path, &t->major, &t->minor, err);

	if (r < 0)
		return r;
	if (!(f = oci_field(v, "rate")))
		return em_err_msg(err, EINVAL, "%s.rate: required", path);
	return oci_as_u64(f, oci_key(path, "rate").s, UINT64_MAX, &t->rate, err);
}

static int parse_block_io(const json_t *v, const char *path, struct em_oci_resources *res,
			  struct em_err *err)
{
	struct { const char *key; struct em_oci_throttle **arr; size_t *n; } th[] = {
		{ "throttleReadBpsDevice", &res->block_io.throttle_read_bps,
		  &res->block_io.n_throttle_read_bps },
		{ "throttleWriteBpsDevice", &res->block_io.throttle_write_bps,
		  &res->block_io.n_throttle_write_bps },
		{ "throttleReadIOPSDevice", &res->block_io.throttle_read_iops,
		  &res->block_io.n_throttle_read_iops },
		{ "throttleWriteIOPSDevice", &res->block_io.throttle_write_iops,
		  &res->block_io.n_throttle_write_iops },
	};
	json_t *f;
	int r = oci_want_object(v, path, err);

	if (r == 0)
		r = get_weight(v, path, "weight", &res->block_io.weight, err);
	if (r == 0)
		r = get_weight(v, path, "leafWeight", &res->block_io.leaf_weight, err);
	if (r == 0 && (f = oci_field(v, "weightDevice")))
		r = PARSE_ARRAY(f, oci_key(path, "weightDevice").s, res->block_io.weight_device,
				res->block_io.n_weight_device, parse_weight_device, err);
	for (size_t i = 0; r == 0 && i < EM_ARRAY_SIZE(th); i++)
		if ((f = oci_field(v, th[i].key)))
			r = PARSE_ARRAY(f, oci_key(path, th[i].key).s, *th[i].arr, *th[i].n,
					parse_throttle, err);
	return r;
}

static int parse_hugepage(const json_t *v, const char *path, struct em_oci_hugepage *h,
			  struct em_err *err)
{
	json_t *f;
	int r = oci_want_object(v, path, err);

	if (r == 0)
		r = oci_get_str(v, path, "pageSize", true, &h->page_size, err);
	if (r < 0)
		return r;
	/* "2MB", "1GB", "64KB": it becomes part of a cgroup file name */
	size_t digits = strspn(h->page_size, "0123456789");

	if (digits == 0 || (strcmp(h->page_size + digits, "KB") != 0 &&
			    strcmp(h->page_size + digits, "MB") != 0 &&
			    strcmp(h->page_size + digits, "GB") != 0))
		return em_err_msg(err, EINVAL, "%s.pageSize: not a page size like \"2MB\": \"%s\"",
				  path, h->page_size);
	if (!(f = oci_field(v, "limit")))
		return em_err_msg(err, EINVAL, "%s.limit: required", path);
	return oci_as_u64(f, oci_key(path, "limit").s, UINT64_MAX, &h->limit, err);
}

static int parse_net_prio(const json_t *v, const char *path, struct em_oci_net_prio *p,
			  struct em_err *err)
{
	int r = oci_want_object(v, path, err);

	if (r == 0)
		r = oci_get_str(v, path, "name", true, &p->name, err);
	if (r == 0)
		r = oci_get_u32(v, path, "priority", true, UINT32_MAX, &p->priority, err);
	return r;
}

static int parse_resources(const json_t *v, const char *path, struct em_oci_resources *res,
			   struct em_err *err)
{
	json_t *f;
	int r = oci_want_object(v, path, err);

	res->present = true;
	if (r == 0 && (f = oci_field(v, "devices")))
		r = PARSE_ARRAY(f, oci_key(path, "devices").s, res->devices, res->n_devices,
				parse_dev_rule, err);
	if (r == 0 && (f = oci_field(v, "memory")))
		r = parse_memory(f, oci_key(path, "memory").s, res, err);
	if (r == 0 && (f = oci_field(v, "cpu")))
		r = parse_cpu(f, oci_key(path, "cpu").s, res, err);
	if (r == 0 && (f = oci_field(v, "pids"))) {
		struct oci_path pp = oci_key(path, "pids");

		r = oci_want_object(f, pp.s, err);
		if (r == 0)
			r = oci_get_opt_i64(f, pp.s, "limit", -1, INT64_MAX, &res->pids.limit, err);
	}
	if (r == 0 && (f = oci_field(v, "blockIO")))
		r = parse_block_io(f, oci_key(path, "blockIO").s, res, err);
	if (r == 0 && (f = oci_field(v, "hugepageLimits")))
		r = PARSE_ARRAY(f, oci_key(path, "hugepageLimits").s, res->hugepage_limits,
				res->n_hugepage_limits, parse_hugepage, err);
	if (r == 0 && (f = oci_field(v, "network"))) {
		struct oci_path np = oci_key(path, "network");
		json_t *pr;

		r = oci_want_object(f, np.s, err);
		if (r == 0)
			r = oci_get_opt_u64(f, np.s, "classID", UINT32_MAX, &res->network.class_id,
					    err);
		if (r == 0 && (pr = oci_field(f, "priorities")))
			r = PARSE_ARRAY(pr, oci_key(np.s, "priorities").s, res->network.priorities,
					res->network.n_priorities, parse_net_prio, err);
	}
	if (r == 0)
		r = oci_get_kvv(v, path, "unified", &res->unified, err);
	/* unified keys are file names in the container's cgroup directory: never a path */
	for (size_t i = 0; r == 0 && i < res->unified.n; i++) {
		const char *k = res->unified.v[i].key;

		if (!*k || strchr(k, '/') || strcmp(k, ".") == 0 || strcmp(k, "..") == 0)
			r = em_err_msg(err, EINVAL, "%s.unified: not a cgroup file name: \"%s\"",
				       path, k);
	}
	return r;
}

/* ---- seccomp */

static const char *const seccomp_actions[] = {
	"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
	"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
};

static const char *const seccomp_arches[] = {
	"SCMP_ARCH_X86",     "SCMP_ARCH_X86_64",  "SCMP_ARCH_X32",        "SCMP_ARCH_ARM",
	"SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",    "SCMP_ARCH_MIPS64",     "SCMP_ARCH_MIPS64N32",
	"SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
	"SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",       "SCMP_ARCH_S390X",
	"SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",   "SCMP_ARCH_LOONGARCH64",
	"SCMP_ARCH_M68K",    "SCMP_ARCH_SH",      "SCMP_ARCH_SHEB",
};

static const char *const seccomp_flags[] = {
	"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
	"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
};

/* in enum em_seccomp_op order */
static const char *const seccomp_ops[] = {
	"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
	"SCMP_CMP_MASKED_EQ",
};

/* errno values a filter can return: above 4095 the C library would not see an error */
#define ERRNO_MAX 4095

static int check_action(const char *a, const char *path, struct em_err *err)
{
	if (one_of(a, seccomp_actions, EM_ARRAY_SIZE(seccomp_actions)) < 0)
		return em_err_msg(err, EINVAL, "%s: unknown seccomp action \"%s\"", path, a);
	return 0;
}

static int parse_seccomp_arg(const json_t *v, const char *path, struct em_oci_seccomp_arg *a,
			     struct em_err *err)
{
	cleanup_free char *op = NULL;
	json_t *f;
	int o, r = oci_want_object(v, path, err);

	if (r == 0)
		r = oci_get_u32(v, path, "index", true, UINT32_MAX, &a->index, err);
	if (r < 0)
		return r;
	if (a->index > 5) /* a system call has at most six arguments */
		return em_err_msg(err, EINVAL, "%s.index: must be between 0 and 5, got %u", path,
				  a->index);
	if (!(f = oci_field(v, "value")))
		return em_err_msg(err, EINVAL, "%s.value: required", path);
	r = oci_as_u64(f, oci_key(path, "value").s, UINT64_MAX, &a->value, err);
	if (r == 0 && (f = oci_field(v, "valueTwo")))
		r = oci_as_u64(f, oci_key(path, "valueTwo").s, UINT64_MAX, &a->value_two, err);
	if (r == 0)
		r = oci_get_str(v, path, "op", true, &op, err);
	if (r < 0)
		return r;
	o = one_of(op, seccomp_ops, EM_ARRAY_SIZE(seccomp_ops));
	if (o < 0)
		return em_err_msg(err, EINVAL, "%s.op: unknown seccomp operator \"%s\"", path, op);
	a->op = o;
	return 0;
}

static int parse_seccomp_rule(const json_t *v, const char *path, struct em_oci_seccomp_rule *s,
			      struct em_err *err)
{
	struct oci_path np = oci_key(path, "names");
	json_t *f;
	int r = oci_want_object(v, path, err);

	if (r < 0)
		return r;
	f = oci_field(v, "names");
	if (!f || !json_is_array(f) || json_array_size(f) == 0)
		return em_err_msg(err, EINVAL, "%s: must be a non-empty array of strings", np.s);
	r = oci_as_strv(f, np.s, &s->names, err);
	for (size_t i = 0; r == 0 && i < s->names.n; i++)
		if (!*s->names.v[i])
			r = em_err_msg(err, EINVAL, "%s: empty system call name",
				       oci_idx(np.s, i).s);
	if (r == 0)
		r = oci_get_str(v, path, "action", true, &s->action, err);
	if (r == 0)
		r = check_action(s->action, oci_key(path, "action").s, err);
	if (r == 0)
		r = oci_get_opt_u64(v, path, "errnoRet", ERRNO_MAX, &s->errno_ret, err);
	if (r == 0 && (f = oci_field(v, "args")))
		r = PARSE_ARRAY(f, oci_key(path, "args").s, s->args, s->n_args, parse_seccomp_arg,
				err);
	return r;
}

static int check_names(const struct em_strv *v, const char *path, const char *what,
		       const char *const *names, size_t n, struct em_err *err)
{
	for (size_t i = 0; i < v->n; i++)
		if (one_of(v->v[i], names, n) < 0)
			return em_err_msg(err, EINVAL, "%s: unknown seccomp %s \"%s\"",
					  oci_idx(path, i).s, what, v->v[i]);
	return 0;
}

static int parse_seccomp(const json_t *v, const char *path, struct em_oci_linux *lx,
			 struct em_err *err)
{
	struct em_oci_seccomp *sc;
	bool notify;
	json_t *f;
	int r = oci_want_object(v, path, err);

	if (r < 0)
		return r;
	sc = lx->seccomp = calloc(1, sizeof(*sc));
	if (!sc)
		return em_err_set(err, ENOMEM, "%s", path);
	r = oci_get_str(v, path, "defaultAction", true, &sc->default_action, err);
	if (r == 0)
		r = check_action(sc->default_action, oci_key(path, "defaultAction").s, err);
	if (r == 0)
		r = oci_get_opt_u64(v, path, "defaultErrnoRet", ERRNO_MAX, &sc->default_errno_ret,
				    err);
	if (r == 0)
		r = oci_get_strv(v, path, "architectures", &sc->architectures, err);
	if (r == 0)
		r = check_names(&sc->architectures, oci_key(path, "architectures").s,
				"architecture", seccomp_arches, EM_ARRAY_SIZE(seccomp_arches), err);
	if (r == 0)
		r = oci_get_strv(v, path, "flags", &sc->flags, err);
	if (r == 0)
		r = check_names(&sc->flags, oci_key(path, "flags").s, "flag", seccomp_flags,
				EM_ARRAY_SIZE(seccomp_flags), err);
	if (r == 0)
		r = oci_get_str(v, path, "listenerPath", false, &sc->listener_path, err);
	if (r == 0 && sc->listener_path)
		r = oci_check_abs(sc->listener_path, oci_key(path, "listenerPath").s, err);
	if (r == 0)
		r = oci_get_str(v, path, "listenerMetadata", false, &sc->listener_metadata, err);
	if (r == 0 && (f = oci_field(v, "syscalls")))
		r = PARSE_ARRAY(f, oci_key(path, "syscalls").s, sc->syscalls, sc->n_syscalls,
				parse_seccomp_rule, err);
	if (r < 0)
		return r;
	/* the notify fd goes to the listener; as a default it would also catch the syscalls the
	 * runtime needs to send it there (runc refuses it too) */
	if (strcmp(sc->default_action, "SCMP_ACT_NOTIFY") == 0)
		return em_err_msg(err, EINVAL, "%s.defaultAction: SCMP_ACT_NOTIFY cannot be the default",
				  path);
	notify = false;
	for (size_t i = 0; i < sc->n_syscalls; i++)
		notify |= strcmp(sc->syscalls[i].action, "SCMP_ACT_NOTIFY") == 0;
	if (notify && !sc->listener_path)
		return em_err_msg(err, EINVAL, "%s.listenerPath: required with SCMP_ACT_NOTIFY",
				  path);
	return 0;
}

/* ---- the section */

static int parse_abs_paths(const json_t *v, const char *base, const char *key,
			   struct em_strv *out, struct em_err *err)
{
	int r = oci_get_strv(v, base, key, out, err);

	for (size_t i = 0; r == 0 && i < out->n; i++)
		r = oci_check_abs(out->v[i], oci_idx(oci_key(base, key).s, i).s, err);
	return r;
}

static int parse_personality(const json_t *v, const char *path, struct em_oci_linux *lx,
			     struct em_err *err)
{
	static const char *const domains[] = { "LINUX", "LINUX32" };
	int r = oci_want_object(v, path, err);

	if (r == 0)
		r = oci_get_str(v, path, "domain", true, &lx->personality.domain, err);
	if (r < 0)
		return r;
	if (one_of(lx->personality.domain, domains, EM_ARRAY_SIZE(domains)) < 0)
		return em_err_msg(err, EINVAL, "%s.domain: unknown personality \"%s\"", path,
				  lx->personality.domain);
	r = oci_get_strv(v, path, "flags", &lx->personality.flags, err);
	lx->personality.set = r == 0;
	return r;
}

int oci_parse_linux(const json_t *v, const char *path, struct em_oci_linux *lx,
		    struct em_err *err)
{
	static const char *const propagations[] = { "private", "rprivate", "slave", "rslave",
						    "shared", "rshared", "unbindable",
						    "runbindable" };
	json_t *f;
	int r = oci_want_object(v, path, err);

	/* namespaces first: the mapping and offset checks below look them up */
	if (r == 0 && (f = oci_field(v, "namespaces")))
		r = parse_namespaces(f, oci_key(path, "namespaces").s, lx, err);
	if (r == 0 && (f = oci_field(v, "uidMappings")))
		r = oci_as_idmaps(f, oci_key(path, "uidMappings").s, &lx->uid_mappings,
				  &lx->n_uid_mappings, err);
	if (r == 0 && (f = oci_field(v, "gidMappings")))
		r = oci_as_idmaps(f, oci_key(path, "gidMappings").s, &lx->gid_mappings,
				  &lx->n_gid_mappings, err);
	if (r == 0)
		r = check_user_ns(lx, path, err);
	if (r == 0 && (f = oci_field(v, "timeOffsets")))
		r = parse_time_offsets(f, oci_key(path, "timeOffsets").s, lx, err);
	if (r == 0 && (f = oci_field(v, "devices")))
		r = PARSE_ARRAY(f, oci_key(path, "devices").s, lx->devices, lx->n_devices,
				parse_device, err);
	if (r == 0)
		r = oci_get_str(v, path, "cgroupsPath", false, &lx->cgroups_path, err);
	if (r == 0 && (f = oci_field(v, "resources")))
		r = parse_resources(f, oci_key(path, "resources").s, &lx->resources, err);
	if (r == 0)
		r = oci_get_kvv(v, path, "sysctl", &lx->sysctl, err);
	if (r == 0 && (f = oci_field(v, "seccomp")))
		r = parse_seccomp(f, oci_key(path, "seccomp").s, lx, err);
	if (r == 0)
		r = oci_get_str(v, path, "rootfsPropagation", false, &lx->rootfs_propagation, err);
	if (r == 0 && lx->rootfs_propagation &&
	    one_of(lx->rootfs_propagation, propagations, EM_ARRAY_SIZE(propagations)) < 0)
		r = em_err_msg(err, EINVAL, "%s.rootfsPropagation: unknown propagation \"%s\"",
			       path, lx->rootfs_propagation);
	if (r == 0)
		r = parse_abs_paths(v, path, "maskedPaths", &lx->masked_paths, err);
	if (r == 0)
		r = parse_abs_paths(v, path, "readonlyPaths", &lx->readonly_paths, err);
	if (r == 0)
		r = oci_get_str(v, path, "mountLabel", false, &lx->mount_label, err);
	if (r == 0 && (f = oci_field(v, "personality")))
		r = parse_personality(f, oci_key(path, "personality").s, lx, err);
	return r;
}

void oci_linux_free(struct em_oci_linux *lx)
{
	struct em_oci_resources *res = &lx->resources;

	for (size_t i = 0; i < lx->n_namespaces; i++)
		free(lx->namespaces[i].path);
	free(lx->namespaces);
	free(lx->uid_mappings);
	free(lx->gid_mappings);
	for (size_t i = 0; i < lx->n_devices; i++)
		free(lx->devices[i].path);
	free(lx->devices);
	free(lx->cgroups_path);

	for (size_t i = 0; i < res->n_devices; i++)
		free(res->devices[i].access);
	free(res->devices);
	free(res->cpu.cpus);
	free(res->cpu.mems);
	free(res->block_io.weight_device);
	free(res->block_io.throttle_read_bps);
	free(res->block_io.throttle_write_bps);
	free(res->block_io.throttle_read_iops);
	free(res->block_io.throttle_write_iops);
	for (size_t i = 0; i < res->n_hugepage_limits; i++)
		free(res->hugepage_limits[i].page_size);
	free(res->hugepage_limits);
	for (size_t i = 0; i < res->network.n_priorities; i++)
		free(res->network.priorities[i].name);
	free(res->network.priorities);
	oci_kvv_free(&res->unified);

	oci_kvv_free(&lx->sysctl);
	if (lx->seccomp) {
		struct em_oci_seccomp *sc = lx->seccomp;

		free(sc->default_action);
		oci_strv_free(&sc->architectures);
		oci_strv_free(&sc->flags);
		free(sc->listener_path);
		free(sc->listener_metadata);
		for (size_t i = 0; i < sc->n_syscalls; i++) {
			oci_strv_free(&sc->syscalls[i].names);
			free(sc->syscalls[i].action);
			free(sc->syscalls[i].args);
		}
		free(sc->syscalls);
		free(sc);
	}
	free(lx->rootfs_propagation);
	oci_strv_free(&lx->masked_paths);
	oci_strv_free(&lx->readonly_paths);
	free(lx->mount_label);
	free(lx->personality.domain);
	oci_strv_free(&lx->personality.flags);
	memset(lx, 0, sizeof(*lx));
}
