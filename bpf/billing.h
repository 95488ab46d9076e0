/* bpf/billing.h — what the billing BPF programs (billing.bpf.c) and their loader (billing.c)
 * share: map value layouts, and the billing record handed to the host. Fixed-width types only,
 * so the layout is the same for the BPF target and for user space.
 *
 * How CPU time is kept (see billing.bpf.c for the program):
 *  - `cgtab` (mmap-able array of 64-byte groups, a power of two >= max_cgroups): unified cgroup id
 *    -> slot, 4 ways per group, the group chosen by a multiplicative hash of the id. A task whose
 *    cgroup is not in it costs the sched_switch program one cache line and four compares. A group
 *    that is full sends its further cgroups to `tracked` (hash, same key) and says so in its
 *    first entry's flags: only cgroups hashing to such a group pay a hash lookup.
 *  - `acct` (mmap-able array, max_cgroups x nr_cpus entries): struct em_bill_cpu_acct, one per
 *    (tracked cgroup slot, CPU). Only the program running on that CPU writes an entry, so no
 *    atomics are needed; user space reads it through the mmap under the entry's seqcount.
 *  - `cur` (per-CPU array, 1 entry): which slot the task now on this CPU is charged to, and the
 *    CPU's clock calibration (see billing.bpf.c: switch times come from the run queue's clock).
 *  - `win` (mmap-able array, max_cgroups): the time the slot's current window was armed, so the
 *    program can note the first run of the instance after it (the start of wall_ns).
 *  - `tasks` (task storage): per task of a tracked cgroup, its se.sum_exec_runtime at its last
 *    switch-out. A switch-out charges the task's runtime since then, so a run whose switch-in
 *    event the program never saw is still charged in full. Such runs do happen: some switches
 *    reach no sched_switch consumer (on this VM, every switch out of the guest agent's threads, so
 *    the return of a task the agent preempted); the sched_stat_runtime program finds such a run
 *    within a scheduler tick and charges it from then on as if its switch-in had been seen.
 * A slot's CPU time only ever grows; a billing window is the difference of two readings, each of
 * which also counts the time of tasks that are on a CPU at that instant (run_ts != 0).
 *
 * A completed run is charged the task's own se.sum_exec_runtime delta (the scheduler's accounting,
 * what rusage, schedstat and the cgroup's cpuacct/cpu.stat are made of): on hosts whose sched_clock
 * is not CLOCK_MONOTONIC-stable (kvm-clock without the stable bit, like this VM) it differs from
 * the switch timestamps by up to a tick per run, and steal time is not billed. Only the part of a run
 * still in progress at a reading is estimated from CLOCK_MONOTONIC.
 */
#ifndef EMBER_BPF_BILLING_H
#define EMBER_BPF_BILLING_H

#ifndef __bpf__
#include <stdint.h> /* for the BPF target, vmlinux.h defines uint64_t and uint32_t */
#endif

#define EM_BILL_CACHELINE 64

/* Value of the `tracked` hash map (the cgroups whose `cgtab` group was full). */
struct em_bill_slot {
	uint32_t idx;  /* row in `acct` */
	uint32_t pad;
};

/* `cgtab`: one cache line per group. Written by user space only (under its lock): idx before cgid
 * on insert, cgid = 0 on removal; the program checks a hit against `win[idx].cgid`, so a read
 * racing with a change can only miss, never charge another cgroup. */
#define EM_BILL_CG_WAYS 4
#define EM_BILL_CG_OVERFLOW (1u << 0) /* e[0].flags: some cgroups of this group are in `tracked` */
#define EM_BILL_CG_HASH 0x9E3779B97F4A7C15ull
struct em_bill_cg_ent {
	uint64_t cgid;      /* 0 = free */
	uint32_t idx;       /* row in `acct`, `win` */
	uint32_t flags;     /* e[0] only: EM_BILL_CG_OVERFLOW */
};
struct em_bill_cg_group {
	struct em_bill_cg_ent e[EM_BILL_CG_WAYS];
};

/* The group of a cgroup id: the top bits of a multiplicative (Fibonacci) hash, masked to ngroups
 * (a power of two) — the same function in the program and the loader. */
static inline uint32_t em_bill_cg_group_of(uint64_t cgid, uint32_t mask)
{
	return (uint32_t)((cgid * EM_BILL_CG_HASH) >> 32) & mask;
}

/* One (slot, CPU) accounting entry; written only by the program on that CPU. */
struct em_bill_cpu_acct {
	uint64_t seq;       /* odd while the program updates the entry (seqcount) */
	uint64_t cpu_ns;    /* CPU time charged to the slot on this CPU, completed runs only */
	uint64_t run_ts;    /* bpf_ktime_get_ns() when a task of the slot got this CPU (or was found
			     * on it, its switch-in missed); 0 = none now */
	uint64_t run_base;  /* that task's se.sum_exec_runtime then */
	uint64_t last_ts;   /* time of the last update: a reader at time t needs last_ts <= t */
	uint64_t first_ts;  /* first switch-in at or after the slot's window was armed */
	uint64_t nr_switch; /* times a task of the slot was switched in on this CPU */
	uint64_t nr_missed; /* runs of its tasks whose switch-in the program did not see (found at
			     * their switch-out, or running by the sched_stat_runtime program) */
};

/* Value of the `win` array (mmap-able, written by user space). */
struct em_bill_win {
	uint64_t arm_ts;    /* when the slot's window opened, CLOCK_MONOTONIC; 0 = no window */
	uint64_t gen;       /* which tracking of a cgroup owns the slot now; 0 = free */
	uint64_t cgid;      /* the cgroup the slot tracks now; 0 = free */
};

/* Value of the per-CPU `cur` array: the task now on this CPU and the slot it is charged to. */
struct em_bill_cur {
	uint32_t idx;       /* row in `acct`, valid if charging != 0 */
	uint32_t charging;
	uint64_t task;      /* the task_struct switched in last (checked at its switch-out) */
	uint64_t gen;       /* the slot's gen then */
	uint64_t cgid;
	uint64_t run_base;  /* its se.sum_exec_runtime then */
	/* clock calibration: CLOCK_MONOTONIC = rq clock + off (see billing.bpf.c) */
	uint64_t cal_rq;    /* rq clock at the last bpf_ktime_get_ns() read; 0 = none yet */
	uint64_t off;       /* CLOCK_MONOTONIC - rq clock, smallest recent value */
	uint64_t idle_task; /* this CPU's idle task, once seen: leaving idle drops the calibration */
};

/* Task storage of every task that ran in a tracked cgroup: its sum_exec_runtime at its last
 * switch-out, so the next switch-out charges everything since — also a run whose switch-in the
 * program did not see. */
struct em_bill_task {
	uint64_t last_sum;
	uint64_t cgid;
	uint64_t gen;       /* the slot's gen; 0 = forget */
	uint32_t idx;
	uint32_t pad;
};

/* How the instance that served the window was started. */
enum em_bill_start {
	EM_BILL_START_UNKNOWN = 0,
	EM_BILL_START_COLD = 1,    /* fresh sandbox, exec, init */
	EM_BILL_START_WARM = 2,    /* idle instance thawed */
	EM_BILL_START_ZYGOTE = 3,  /* forked from a live template */
	EM_BILL_START_RESTORE = 4, /* template restored from a snapshot, then forked */
};

/* em_bill_record.flags */
#define EM_BILL_F_CG_CPU         (1u << 0) /* cg_cpu_ns holds the cgroup's own usage delta */
#define EM_BILL_F_CPU_MISMATCH   (1u << 1) /* cpu_ns and cg_cpu_ns differ beyond the tolerance */
#define EM_BILL_F_THROTTLE       (1u << 2) /* throttled_ns / nr_throttled are known */
#define EM_BILL_F_MEM_PEAK       (1u << 3) /* mem_peak_bytes is known */
#define EM_BILL_F_MEM_PEAK_LIFE  (1u << 4) /* ... but covers the cgroup's life, not the window
					    * (cgroup v2 before 6.12 cannot reset memory.peak) */
#define EM_BILL_F_NO_RUN         (1u << 5) /* no task of the cgroup ran in the window: wall 0 */
#define EM_BILL_F_IN_FLIGHT      (1u << 6) /* a task was on a CPU at the open or the close: that
					    * part of cpu_ns is timed by CLOCK_MONOTONIC */

/* One closed (or, from em_bill_window_read, still open) billing window of one cgroup.
 * Times are nanoseconds; timestamps are CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns(). */
struct em_bill_record {
	uint64_t cgid;            /* unified-hierarchy cgroup id */
	uint64_t open_ns;         /* the host opened the window (CLOCK_MONOTONIC) */
	uint64_t close_ns;        /* the host closed (or read) it */
	uint64_t start_ns;        /* the instance's first run in the window (it got the request) */
	uint64_t end_ns;          /* its last run ended (it sent the response and went idle) */
	uint64_t wall_ns;         /* end_ns - start_ns: what is billed */
	uint64_t host_wall_ns;    /* close_ns - open_ns: with the host's wake-ups and queueing */
	uint64_t cpu_ns;          /* on-CPU time of every task of the cgroup in the window (BPF) */
	uint64_t cg_cpu_ns;       /* the cgroup's own CPU usage delta (cross-check), see flags */
	uint64_t throttled_ns;    /* time the cgroup spent throttled by its CPU quota in the window */
	uint64_t nr_throttled;    /* quota periods in which it was throttled */
	uint64_t nr_switch;       /* context switches into tasks of the cgroup in the window */
	uint64_t nr_missed;       /* runs whose switch-in was not seen, charged once found (at their
				   * switch-out, or within a scheduler tick while they run) */
	uint64_t billed_ms;       /* wall rounded up to the granularity, in ms */
	uint64_t memory_mb;       /* configured memory the GB-seconds are computed from */
	uint64_t mb_ms;           /* memory_mb * billed_ms: GB-s = mb_ms / 1024 / 1000 (exact integer) */
	uint64_t init_ns;         /* init time of the start that preceded the window (cold/restore) */
	uint64_t mem_peak_bytes;  /* peak memory of the cgroup, see flags */
	uint32_t start;           /* enum em_bill_start */
	uint32_t flags;           /* EM_BILL_F_* */
};

#endif
