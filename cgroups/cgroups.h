/* cgroups/cgroups.h — ember's cgroup library: one API over the v2 (unified) and v1 (legacy,
 * hybrid) hierarchies. The mode is detected once, at em_cg_root_open (statfs of /sys/fs/cgroup
 * and /sys/fs/cgroup/unified); the backend is an ops table chosen then (v2.c or v1.c).
 * Everything ember creates lives below a parent cgroup named "ember" (configurable; the first
 * component of the parent must start with "ember": the library refuses to manage anything else).
 *
 * Contract (the rest of ember relies on it):
 *  - em_cg_create applies every limit before it returns, so no process ever runs in the cgroup
 *    unlimited; attach / CLONE_INTO_CGROUP come after.
 *  - On hybrid hosts every sandbox also gets a cgroup at the same path in the unified hierarchy
 *    (no controllers there): em_cg_id() is its v2 id (the inode of that directory, what
 *    bpf_get_current_cgroup_id() returns), the key the BPF billing uses. em_cg_attach puts a
 *    process in every hierarchy, the unified one included.
 *  - em_cg_destroy fails with EBUSY naming the cgroup if processes remain, unless forced (then it
 *    kills them and waits until the cgroup is empty), and removes the cgroup in every hierarchy.
 *  - Freeze/thaw/kill wait until the kernel reports the state reached (bounded wait, ETIMEDOUT).
 *  - Limits a host cannot apply (memory_high on v1, swappiness on v2, ...) are warned about on the
 *    root's log and skipped, as runc does; limits that need a controller that is not mounted at
 *    all (memory_max without memory) are errors.
 *  - Every function is safe to call from several threads on different struct em_cg; a root is
 *    shared read-only after em_cg_root_open.
 */
#ifndef EMBER_CGROUPS_H
#define EMBER_CGROUPS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct em_err;
struct em_log;

enum em_cg_mode {
	EM_CG_V2,      /* pure unified hierarchy at /sys/fs/cgroup */
	EM_CG_V1,      /* legacy only: controllers at /sys/fs/cgroup/<controller> */
	EM_CG_HYBRID,  /* legacy controllers + cgroup2 (usually without controllers) at .../unified */
};

/* A limit field is applied only if its `set` flag is true (pointers and arrays: if non-NULL/n>0). */
struct em_cg_limits {
	struct { bool set; int64_t v; } memory_max;      /* bytes; -1 = unlimited */
	struct { bool set; int64_t v; } memory_high;     /* bytes; -1 = unlimited (v2 only) */
	struct { bool set; int64_t v; } memory_low;      /* bytes; reservation: v2 memory.low,
							    v1 memory.soft_limit_in_bytes */
	struct { bool set; int64_t v; } swap_max;        /* bytes of swap beyond memory; 0 = none,
							    -1 = unlimited. v1: memsw = memory+swap */
	struct { bool set; uint64_t v; } swappiness;     /* 0..100, v1 only */
	struct { bool set; bool v; } oom_kill_disable;   /* v1 only */
	struct { bool set; bool v; } oom_group;          /* v2 memory.oom.group: kill all on OOM */
	struct { bool set; int64_t v; } pids_max;        /* -1 = unlimited */
	struct { bool set; uint64_t v; } cpu_weight;     /* 1..10000, v2 scale (v1: converted to
							    cpu.shares = 2 + (w-1)*262142/9999) */
	struct { bool set; int64_t quota_us; uint64_t period_us; } cpu_max; /* quota -1 = none;
							    period 0 = keep the current one */
	struct { bool set; uint64_t v; } cpu_burst_us;
	struct { bool set; bool v; } cpu_idle;           /* SCHED_IDLE for the whole cgroup */
	char *cpuset_cpus, *cpuset_mems;                 /* NULL = inherit the parent's */
	struct { bool set; uint64_t v; } io_weight;      /* 1..10000 (v2 io.weight "default") */
	/* block-device throttles; a field of UINT64_MAX is left unlimited */
	struct em_cg_io_max { int64_t major, minor; uint64_t rbps, wbps, riops, wiops; }
		*io_max; size_t n_io_max;
	/* raw "file=value" pairs for anything else (OCI linux.resources.unified on v2, a v1 knob
	 * whose prefix names its controller: "memory.foo"). Written last, in order. The file must
	 * be a plain name (no '/'). */
	struct em_cg_raw { char *file, *value; } *raw; size_t n_raw;
	/* device rules in OCI order (the last matching rule decides), applied through the v1
	 * devices controller, or on v2 as a BPF_CGROUP_DEVICE program compiled from them
	 * (devices_bpf.c; an update replaces the program). */
	struct em_cg_device_rule { bool allow; char type; int64_t major, minor; char access[4]; }
		*devices; size_t n_devices;            /* type 'a','c','b'; major/minor -1 = any */
};

struct em_cg_stats {
	uint64_t cpu_usage_ns, cpu_user_ns, cpu_system_ns;  /* v2 cpu.stat (µs ×1000);
							       v1 cpuacct.usage{,_user,_sys} */
	uint64_t cpu_nr_periods, cpu_nr_throttled, cpu_throttled_ns; /* cpu.stat */
	uint64_t memory_current, memory_peak, memory_max;   /* bytes; max UINT64_MAX = none */
	uint64_t swap_current;                              /* v2 memory.swap.current;
							       v1 memsw.usage - usage */
	uint64_t oom_events, oom_kill_events;               /* v2 memory.events oom, oom_kill;
							       v1 memory.oom_control oom_kill (v1
							       counts no OOM events: both = kills) */
	uint64_t pids_current, pids_max;                    /* pids_max UINT64_MAX = none */
	bool has_memory_peak;                               /* kernel exposes peak for this cgroup */
};

struct em_cg_root;   /* the detected hierarchy + ember's parent cgroup; one per process/host */
struct em_cg;        /* one cgroup ember created (or adopted by path) */

/* Detect the mode and open ember's parent cgroup (created if missing in every hierarchy), e.g.
 * "ember" or "ember-test-123/x". `log` receives warnings (unsupported limits, cleanup) and must
 * outlive the root; may be NULL. */
int em_cg_root_open(struct em_cg_root **out, const char *parent, struct em_log *log,
		    struct em_err *err);
void em_cg_root_close(struct em_cg_root *root);
enum em_cg_mode em_cg_root_mode(const struct em_cg_root *root);
const char *em_cg_mode_name(enum em_cg_mode mode);    /* "v2", "v1", "hybrid" */
/* Remove the parent cgroup itself (every hierarchy); EBUSY if anything is left below it.
 * For tests and uninstall; a host leaves its parent in place. On v1/hybrid the parent holds one
 * empty, frozen cgroup, "ember-freezer-anchor", in the freezer hierarchy: it keeps the kernel's
 * freezer static key on, so a freeze or thaw costs ~50 µs instead of 1.3-4 ms. gc keeps it. */
int em_cg_root_remove(struct em_cg_root *root, struct em_err *err);

/* Create the cgroup at `path` with `limits` (may be NULL) applied. Relative paths go below the
 * parent; absolute ones are relative to the hierarchy root, as the OCI spec says. ".." is refused.
 * An existing cgroup is an error (EEXIST): two sandboxes never share one by accident. */
int em_cg_create(struct em_cg_root *root, const char *path, const struct em_cg_limits *limits,
		 struct em_cg **out, struct em_err *err);
/* Open an existing cgroup (for a later CLI invocation: start, kill, delete, update). */
int em_cg_open(struct em_cg_root *root, const char *path, struct em_cg **out, struct em_err *err);
void em_cg_close(struct em_cg *cg);       /* frees the handle; the cgroup stays */

const char *em_cg_path(const struct em_cg *cg);   /* relative to the hierarchy root, no '/' */
/* Move pid (a whole process) into the cgroup, in every hierarchy. */
int em_cg_attach(struct em_cg *cg, pid_t pid, struct em_err *err);
/* A new O_DIRECTORY fd (the caller closes it) of the cgroup in the unified hierarchy, for
 * clone3(CLONE_INTO_CGROUP). v2: the child is fully placed. Hybrid: the child lands in the
 * unified companion (its BPF id is right from its first instruction) but the v1 controllers do
 * not see it: the caller must em_cg_attach(child) before the child runs anything that needs the
 * limits (hold it on a pipe until then) — em_cg_needs_attach() says so. Pure v1: -EOPNOTSUPP. */
int em_cg_clone_fd(struct em_cg *cg, struct em_err *err);
/* Let `uid`/`gid` (an unprivileged process, e.g. a zygote template's user-namespace root) place
 * processes with clone3(CLONE_INTO_CGROUP) or a cgroup.procs write: chowns the cgroup.procs file
 * of this cgroup in the unified hierarchy, and nothing else. The kernel checks write access to the
 * destination's cgroup.procs *and* to the common ancestor's, so delegate the subtree's top (the
 * function's directory) and every leaf below it: the process can then move processes only
 * between cgroups of that subtree. Limit files, the directories (no mkdir) and the v1 hierarchies
 * stay root's. -EOPNOTSUPP on pure v1. */
int em_cg_delegate_procs(struct em_cg *cg, uid_t uid, gid_t gid, struct em_err *err);
/* True when a process placed with the em_cg_clone_fd fd still needs em_cg_attach (hybrid). */
bool em_cg_needs_attach(const struct em_cg *cg);
/* Apply the fields that are set; the others keep their current value. */
int em_cg_update(struct em_cg *cg, const struct em_cg_limits *limits, struct em_err *err);
int em_cg_freeze(struct em_cg *cg, struct em_err *err);   /* returns once frozen */
int em_cg_thaw(struct em_cg *cg, struct em_err *err);     /* returns once thawed */
int em_cg_frozen(struct em_cg *cg, bool *frozen, struct em_err *err);
/* Send sig to every process. SIGKILL: atomically (v2 cgroup.kill; v1 freeze-kill-thaw rounds),
 * and returns once the cgroup is empty (the caller still reaps its own children). */
int em_cg_kill(struct em_cg *cg, int sig, struct em_err *err);
/* Every process in the cgroup (union over the hierarchies), sorted; *pids is malloc'd. */
int em_cg_pids(struct em_cg *cg, pid_t **pids, size_t *n, struct em_err *err);
int em_cg_stats(struct em_cg *cg, struct em_cg_stats *st, struct em_err *err);
uint64_t em_cg_id(const struct em_cg *cg);  /* unified-hierarchy cgroup id (inode); 0 if none */
/* Remove the cgroup (all hierarchies) and close the handle on success (on failure the handle
 * stays valid). force: kill what is left first. */
int em_cg_destroy(struct em_cg *cg, bool force, struct em_err *err);

/* Remove every empty cgroup below the parent, deepest first, in every hierarchy (left over by a
 * runtime that crashed). Populated ones are kept. Call it only when no other live process uses
 * the same parent (a host at start-up, holding its state lock): a pooled, still empty cgroup of
 * a live host would be removed too. Returns the number of directories removed (one sandbox is
 * one directory per hierarchy), or -errno. */
int em_cg_gc(struct em_cg_root *root, struct em_err *err);

/* Kill the processes of every cgroup directly below the parent and remove them (every hierarchy;
 * the freezer anchor is kept). For a host at start-up, holding its state lock, after a crash
 * left its instances behind: the parent must be the host's own. Returns the number of cgroups
 * removed, or -errno. */
int em_cg_reap_children(struct em_cg_root *root, struct em_err *err);

void em_cg_limits_free(struct em_cg_limits *l);   /* frees the pointer fields, zeroes *l */

/* Lambda-style policy (policy.c): CPU follows memory.
 *   memory_max   = memory_mb MiB, swap_max = 0, pids untouched
 *   cpu_weight   = ceil(memory_mb × 10000 / max_mb)      (1..10000: proportional to memory; the
 *                  largest function gets the full v2 weight range, 128 MB vs 512 MB is 1:4)
 *   cpu_max      = quota ceil(memory_mb × period_us / ref_mb_per_vcpu) per period_us, at least
 *                  1000 µs (the kernel's minimum), capped at host_cpus × period_us
 * e.g. defaults: 1769 MB = 1 vCPU (quota 100000/100000), 885 MB = 50029/100000 ≈ half a CPU,
 * 10240 MB = 5.79 vCPUs → capped at the host's CPU count. */
struct em_cg_policy {
	uint64_t ref_mb_per_vcpu;   /* default 1769: 1,769 MB = one vCPU */
	uint64_t period_us;         /* default 100000 */
	unsigned host_cpus;         /* cap for the quota; 0 = detect (online CPUs) */
	uint64_t min_mb, max_mb;    /* accepted memory sizes; default 128 .. 10240 */
};
void em_cg_policy_default(struct em_cg_policy *p);
/* Fill memory_max, swap_max=0, cpu_weight and cpu_max for a function of `memory_mb`.
 * EINVAL (naming the bounds) outside min_mb..max_mb. */
int em_cg_policy_apply(const struct em_cg_policy *p, uint64_t memory_mb, struct em_cg_limits *l,
		       struct em_err *err);

#endif
