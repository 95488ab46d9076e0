/* cgroups/cgroups.h — ember's cgroup library: one API over the v2 (unified) and v1 (legacy,
 * hybrid) hierarchies. The mode is detected once (em_cg_detect); the backend is an ops table
 * chosen then. Everything ember creates lives below a parent cgroup named "ember" (configurable).
 *
 * Contract (the rest of ember relies on it):
 *  - em_cg_create applies every limit before it returns, so no process ever runs in the cgroup
 *    unlimited; attach / CLONE_INTO_CGROUP come after.
 *  - On hybrid hosts every sandbox also gets a cgroup at the same path in the unified hierarchy
 *    (no controllers there): em_cg_id() is its v2 id, the key the BPF billing uses.
 *  - em_cg_destroy fails with EBUSY naming the cgroup if processes remain, unless forced (then it
 *    kills them and waits until the cgroup is empty).
 */
#ifndef EMBER_CGROUPS_H
#define EMBER_CGROUPS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct em_err;
struct em_log;

enum em_cg_mode { EM_CG_V2, EM_CG_V1, EM_CG_HYBRID };

/* A limit field is applied only if its `set` flag is true. */
struct em_cg_limits {
	struct { bool set; int64_t v; } memory_max;      /* bytes; -1 = unlimited */
	struct { bool set; int64_t v; } memory_high;     /* bytes; -1 = unlimited (v2 only) */
	struct { bool set; int64_t v; } memory_low;      /* bytes; reservation */
	struct { bool set; int64_t v; } swap_max;        /* bytes of swap beyond memory; 0 = none */
	struct { bool set; uint64_t v; } swappiness;     /* v1 */
	struct { bool set; bool v; } oom_kill_disable;   /* v1 */
	struct { bool set; int64_t v; } pids_max;        /* -1 = unlimited */
	struct { bool set; uint64_t v; } cpu_weight;     /* 1..10000, v2 scale */
	struct { bool set; int64_t quota_us; uint64_t period_us; } cpu_max; /* quota -1 = none */
	struct { bool set; uint64_t v; } cpu_burst_us;
	struct { bool set; bool v; } cpu_idle;           /* v2 cpu.idle */
	char *cpuset_cpus, *cpuset_mems;                 /* NULL = inherit */
	struct { bool set; uint64_t v; } io_weight;      /* 1..10000 (v2 scale) */
	/* raw "file=value" pairs for anything else (OCI linux.resources.unified, v1 passthrough) */
	struct { char *file, *value; } *raw; size_t n_raw;
	/* device rules, applied through the devices controller (v1) or a BPF device program (v2) */
	struct em_cg_device_rule { bool allow; char type; int64_t major, minor; char access[4]; }
		*devices; size_t n_devices;
};

struct em_cg_stats {
	uint64_t cpu_usage_ns, cpu_user_ns, cpu_system_ns;
	uint64_t cpu_nr_periods, cpu_nr_throttled, cpu_throttled_ns;
	uint64_t memory_current, memory_peak, memory_max;   /* bytes; max UINT64_MAX = none */
	uint64_t swap_current;
	uint64_t oom_events, oom_kill_events;
	uint64_t pids_current, pids_max;                    /* pids_max UINT64_MAX = none */
	bool has_memory_peak;                               /* kernel exposes peak for this cgroup */
};

struct em_cg_root;   /* the detected hierarchy + ember's parent cgroup; one per process/host */
struct em_cg;        /* one cgroup ember created (or adopted by path) */

/* Detect the mode and open ember's parent cgroup (created if missing, e.g. "ember").
 * `log` receives warnings (unsupported limits, cleanup); may be NULL. */
int em_cg_root_open(struct em_cg_root **out, const char *parent, struct em_log *log,
		    struct em_err *err);
void em_cg_root_close(struct em_cg_root *root);
enum em_cg_mode em_cg_root_mode(const struct em_cg_root *root);

/* Create the cgroup at `path` (relative paths go below the parent; absolute ones are relative
 * to the hierarchy root, as the OCI spec says) with `limits` applied. */
int em_cg_create(struct em_cg_root *root, const char *path, const struct em_cg_limits *limits,
		 struct em_cg **out, struct em_err *err);
/* Open an existing cgroup (for a later CLI invocation: start, kill, delete, update). */
int em_cg_open(struct em_cg_root *root, const char *path, struct em_cg **out, struct em_err *err);
void em_cg_close(struct em_cg *cg);       /* frees the handle; the cgroup stays */

const char *em_cg_path(const struct em_cg *cg);
int em_cg_attach(struct em_cg *cg, pid_t pid, struct em_err *err);
/* An O_DIRECTORY fd of the unified-hierarchy cgroup for clone3(CLONE_INTO_CGROUP); -EOPNOTSUPP
 * when the v1 controllers make it pointless (the process must still be attached to them). */
int em_cg_clone_fd(struct em_cg *cg, struct em_err *err);
int em_cg_update(struct em_cg *cg, const struct em_cg_limits *limits, struct em_err *err);
int em_cg_freeze(struct em_cg *cg, struct em_err *err);   /* returns once frozen */
int em_cg_thaw(struct em_cg *cg, struct em_err *err);
int em_cg_frozen(struct em_cg *cg, bool *frozen, struct em_err *err);
int em_cg_kill(struct em_cg *cg, int sig, struct em_err *err);  /* every process */
int em_cg_pids(struct em_cg *cg, pid_t **pids, size_t *n, struct em_err *err);
int em_cg_stats(struct em_cg *cg, struct em_cg_stats *st, struct em_err *err);
uint64_t em_cg_id(const struct em_cg *cg);  /* unified-hierarchy cgroup id (inode); 0 if none */
/* Remove the cgroup (all hierarchies). force: kill what is left first. */
int em_cg_destroy(struct em_cg *cg, bool force, struct em_err *err);

/* Remove ember cgroups below the parent whose processes are all gone (after a crash). */
int em_cg_gc(struct em_cg_root *root, struct em_err *err);

void em_cg_limits_free(struct em_cg_limits *l);

/* Lambda-style policy (policy.c): CPU follows memory. */
struct em_cg_policy {
	uint64_t ref_mb_per_vcpu;   /* default 1769: 1,769 MB = one vCPU */
	uint64_t period_us;         /* default 100000 */
	unsigned host_cpus;         /* cap for the quota; 0 = detect */
};
void em_cg_policy_default(struct em_cg_policy *p);
/* Fill memory_max, swap_max=0, cpu_weight and cpu_max for a function of `memory_mb`. */
int em_cg_policy_apply(const struct em_cg_policy *p, uint64_t memory_mb, struct em_cg_limits *l,
		       struct em_err *err);

#endif
