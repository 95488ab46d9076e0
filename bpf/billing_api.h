/* bpf/billing_api.h — ember's per-invocation billing, measured in the kernel (public API).
 * (Not named bpf/bpf.h: with -I. that would shadow libbpf's <bpf/bpf.h>.)
 *
 *   em_bill_open      open the BPF object, set its rodata, load, attach to sched_switch
 *   em_bill_track     start accounting one cgroup (by its unified-hierarchy id)
 *   em_bill_window_open / em_bill_window_close   one billing window per cgroup -> a record
 *   em_bill_untrack, em_bill_close
 *
 * What is measured. CPU time: the sched_switch program charges every run of every task of a
 * tracked cgroup (threads, children, anything in the cgroup) to that cgroup, per CPU, as the
 * scheduler's own account of the run (se.sum_exec_runtime: what rusage and the cgroup's counters
 * are made of, so the three agree to the nanosecond once runs are complete); a window's cpu_ns is
 * the charged time between its two ends, plus the part of runs still on a CPU at either end (timed
 * with CLOCK_MONOTONIC, which on a VM also counts time the hypervisor stole; instances are idle at
 * both ends of a billing window, so this part is normally zero). Some switches reach no tracepoint
 * consumer (the return of a task that a hidden host task preempted): a second program, on
 * sched_stat_runtime, finds such a run within a scheduler tick and charges it from its start; a
 * reading inside that tick counts the run from the next one on.
 *
 * Wall time. The host opens the window right before it hands the request to the instance and
 * closes it once the response has arrived (open_ns/close_ns, host_wall_ns: CLOCK_MONOTONIC at the
 * calls, the clock of bpf_ktime_get_ns()). What is billed, wall_ns, is narrower and comes from the
 * kernel's switch events of the instance itself: from the first time one of its tasks gets a CPU
 * after the open (it woke up with the request) to the end of its last run before the close (it
 * wrote the response and blocked for the next request; or the close itself if a task is still on
 * a CPU). So neither the host's dispatch nor its own wake-up on the response is billed, nor the
 * instance's wait for a CPU before it first runs; throttling and waits in between are. Limits:
 * a task that keeps running after writing the response (a background thread) extends wall_ns up
 * to the close; a task already on a CPU at the open starts it at the open. The next step is a
 * syscall-exit hook on the instance's channel socket writing the exact receive/send times into
 * the same window.
 *
 * The cgroup's own counters are read at both ends too: its CPU usage (v1 cpuacct.usage, or v2
 * cpu.stat usage_usec) cross-checks cpu_ns, its quota throttling (cpu.stat) gives throttled_ns,
 * its memory peak (v1 memory.max_usage_in_bytes reset at open; v2 memory.peak, per window from 6.12)
 * gives mem_peak_bytes. These come from the paths in struct em_bill_cg; when the cgroups library
 * hands out struct em_cg, the same reads go through em_cg_stats.
 *
 * Threads: every call takes the em_bill's mutex; one em_bill serves a whole host.
 *
 * libbpf's log: libbpf has one print callback per process. em_bill_open installs ember's and
 * points it at opts->log (when given), so with two em_bill in one process libbpf's messages go to
 * the logger of the last one opened (em_bill_libbpf_log changes that). ember's own messages
 * (cross-check warnings) always go to the em_bill's own logger.
 */
#ifndef EMBER_BPF_BILLING_API_H
#define EMBER_BPF_BILLING_API_H

#include <stdbool.h>
#include <stdint.h>

#include "bpf/billing.h"

struct em_err;
struct em_log;
struct em_bill;

struct em_bill_opts {
	uint32_t max_cgroups;     /* cgroups tracked at once; 0 = 4096 */
	uint32_t granularity_ms;  /* billing granularity; 0 = 1 ms (Lambda since Dec 2020) */
	uint32_t cross_tol_pct;   /* cross-check tolerance: max(pct of cpu_ns, tol_ns); 0 = 2 % */
	uint64_t cross_tol_ns;    /* 0 = 10 ms: the cgroup's counters lag a running task by up to
				   * a scheduler tick (4 ms at HZ=250) at each end of the window */
	bool force_raw_tp;        /* skip tp_btf, load the raw_tp program (tests, old kernels) */
	uint32_t table_groups;    /* tests: 4-way groups of the program's cgroup table (a power
				   * of two); 0 = max_cgroups rounded up. Cgroups beyond a full group
				   * go to a hash map, which costs their tasks a hash lookup */
	const char *btf_path;     /* kernel BTF for CO-RE; NULL = /sys/kernel/btf/vmlinux */
	struct em_log *log;       /* cross-check warnings; libbpf's messages (see above); NULL = drop */
};

/* A cgroup to track. Paths are directories; NULL = that counter is not available. */
struct em_bill_cg {
	uint64_t cgid;            /* unified cgroup id; 0 = the inode number of `unified` */
	const char *unified;      /* v2 (or hybrid unified) dir: cpu.stat, memory.peak on v2 */
	const char *cpuacct;      /* v1 cpuacct dir: cpuacct.usage (preferred over v2 usage_usec) */
	const char *cpu;          /* v1 cpu dir: cpu.stat throttled_time (else v2 cpu.stat) */
	const char *memory;       /* v1 memory dir: memory.max_usage_in_bytes (else v2 memory.peak) */
	uint64_t memory_mb;       /* configured memory, for GB-seconds */
};

/* What the host knows about the start that led to this window. */
struct em_bill_window_opts {
	enum em_bill_start start;
	uint64_t init_ns;         /* init time, for cold and restore starts; 0 otherwise */
};

struct em_bill_stats {
	uint64_t windows;         /* closed windows */
	uint64_t cpu_mismatches;  /* of which cpu_ns vs cgroup usage beyond the tolerance */
	uint64_t cpu_ns;          /* sum of cpu_ns over closed windows */
	uint64_t cg_cpu_ns;       /* sum of cg_cpu_ns over closed windows that had it */
	uint32_t tracked;         /* cgroups tracked now */
	uint32_t nr_cpus;
	const char *attach;       /* "tp_btf/sched_switch" or "raw_tp/sched_switch" */
};

/* Open, set rodata, load and attach. Failures name the step: kernel BTF missing, permission
 * (root or CAP_BPF+CAP_PERFMON), verifier, attach. Running without billing is the caller's
 * decision, and only when its operator asked for it. */
int em_bill_open(struct em_bill **out, const struct em_bill_opts *opts, struct em_err *err);
/* Detach and free; open windows are dropped. NULL is fine. */
void em_bill_close(struct em_bill *b);

/* Start accounting a cgroup: from now on its tasks' runs are charged. -EEXIST if tracked,
 * -ENOSPC if max_cgroups are tracked. Add the cgroup before its tasks run for the first window to
 * include their first run. */
int em_bill_track(struct em_bill *b, const struct em_bill_cg *cg, struct em_err *err);
/* Stop accounting (an open window is dropped). The slot is reused only once no CPU is still
 * running a task charged to it. */
int em_bill_untrack(struct em_bill *b, uint64_t cgid, struct em_err *err);

/* Open a window now. -EBUSY if one is open for the cgroup, -ENOENT if it is not tracked. */
int em_bill_window_open(struct em_bill *b, uint64_t cgid, const struct em_bill_window_opts *wo,
			struct em_err *err);
/* Close the window now and fill the record; cross-checks cpu_ns against the cgroup's own usage
 * (a warning on the logger beyond the tolerance, EM_BILL_F_CPU_MISMATCH in the record). */
int em_bill_window_close(struct em_bill *b, uint64_t cgid, struct em_bill_record *rec,
			 struct em_err *err);
/* The open window's record so far, without closing it (no cross-check). */
int em_bill_window_read(struct em_bill *b, uint64_t cgid, struct em_bill_record *rec,
			struct em_err *err);

/* All CPU time charged to a tracked cgroup since em_bill_track, runs in progress included. */
int em_bill_cpu_total(struct em_bill *b, uint64_t cgid, uint64_t *cpu_ns, struct em_err *err);

void em_bill_get_stats(struct em_bill *b, struct em_bill_stats *st);

/* The attached programs' counters from the kernel: invocations and total run time (counted only
 * while BPF run-time stats are enabled: the kernel.bpf_stats_enabled sysctl, or an fd from
 * bpf_enable_stats(BPF_STATS_RUN_TIME) held open) of the sched_switch program and of the
 * sched_stat_runtime one (it finds the switches the first never sees, see billing.bpf.c), and
 * invocations of either skipped by the kernel's recursion guard (always counted; should stay 0). */
struct em_bill_prog_stats {
	uint64_t run_cnt, run_time_ns;                 /* sched_switch */
	uint64_t runtime_run_cnt, runtime_run_time_ns; /* sched_stat_runtime */
	uint64_t recursion_misses;
};
int em_bill_prog_stats(struct em_bill *b, struct em_bill_prog_stats *ps, struct em_err *err);

/* The unified cgroup id of a cgroup directory (what bpf_get_current_cgroup_id() returns). */
int em_bill_cgid_of_path(const char *path, uint64_t *cgid, struct em_err *err);

/* Where libbpf's messages go (process-wide, see above); NULL drops them. */
void em_bill_libbpf_log(struct em_log *log);

/* Lambda's GB-seconds of a record: memory in GB (1024 MB) times billed seconds. */
static inline double em_bill_gb_seconds(const struct em_bill_record *r)
{
	return (double)r->mb_ms / 1024.0 / 1000.0;
}

const char *em_bill_start_name(enum em_bill_start s);

#endif
