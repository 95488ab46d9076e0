// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* bpf/billing.bpf.c — per-cgroup on-CPU time from sched_switch, for billing windows.
 *
 * On every context switch on a CPU (`cur`: the task switched in last on this CPU, and the slot it
 * is charged to):
 *  1. the task leaving the CPU: if `cur` says it is the one switched in last, nothing to find out:
 *     untracked, it costs nothing more; charged to a slot, its run closes:
 *     acct[slot][cpu].cpu_ns += prev->se.sum_exec_runtime - its value at the task's previous
 *     switch-out (task storage; the scheduler's own account, updated by put_prev_task/dequeue
 *     before this tracepoint fires), or at this run's switch-in for a task's first run. If `cur`
 *     names another task, a switch event was missed: the stale run is closed without a charge
 *     (its task's next switch-out charges it, from its storage) and the leaving task, if it has
 *     storage of a slot still tracking its cgroup, is charged its runtime since its last switch-out;
 *  2. look the incoming task's unified cgroup id up in `cgtab` (one cache line) — the only work an
 *     untracked task costs — and if found, open a run: run_ts = now, run_base =
 *     next->se.sum_exec_runtime, and first_ts = now if this is the slot's first run since its
 *     window was armed.
 * The cgroup is the one the task is in when it gets the CPU; a task that moves itself to another
 * cgroup while running is charged to the old one until its next switch (ember moves tasks while
 * they are stopped or before exec, so this does not arise for sandboxes).
 *
 * Switches the program never sees. Some context switches reach no sched_switch consumer at all (no
 * program, no ftrace instance): on this VM every switch *out of* the guest agent's threads
 * (process_api's tokio-rt-worker, nice -10) is missing, while the switch into them is there. So
 * when the agent preempts a sandbox's task, the program sees the task leave (its run closes) but
 * not come back: until its next seen switch-out, a reading would not know it runs, and a window
 * opened or read meanwhile lost that run (a 50 ms spin billed 25 ms, or 0). The second program,
 * on sched_stat_runtime, closes that gap: the scheduler accounts the CPU's current task's runtime
 * at every tick and at every wake-up or dequeue on its run queue (update_curr), and if that task
 * is not the one `cur` saw switching in, the switch was missed: the stale run is dropped as in 1.,
 * and a task of a tracked cgroup has its runtime up to now charged (se.sum_exec_runtime, fresh:
 * update_curr has just added to it) and a run opened from now, timed by an exact clock read. A
 * missed switch-in is thus found within a scheduler tick (4 ms at HZ=250) and nothing of the run
 * is lost; only a reading inside that tick does not count it yet (the next one does). That
 * program runs about once per context switch (ping-pong: 1.0 invocations per switch); its common
 * case is a per-CPU lookup and a compare (the task is the one switched in last), or two (the
 * update was for another CPU's run queue, from a wake-up on this one).
 *
 * Time. CPU time is the scheduler's own (sum_exec_runtime); timestamps (run_ts, last_ts, the
 * window's first_ts) are CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns() and of the reader. On
 * this nested VM that read costs 100-250 ns (kvm-clock without the stable bit: every read of any
 * CPU does a cmpxchg on one global word), more than all the rest of the program. So a switch is
 * timed with the run queue's clock instead, which __schedule() has just updated for this very
 * switch (rq->clock: sched_clock_cpu(), what sum_exec_runtime is computed from, steal time
 * included), mapped to CLOCK_MONOTONIC by a per-CPU offset: on switches between two tasks, each
 * CPU reads bpf_ktime_get_ns() at most once per CAL_NS of rq clock (and at every window's first
 * run), and keeps the smallest offset seen recently, because a read that comes late after the
 * rq clock's update (a vCPU stall) overstates it; the offset may grow only by 1/1024 of the time
 * elapsed (NTP slews by at most 500 ppm), and is taken afresh after CAL_RESET_NS. A switch out of
 * idle is read exactly (the rq clock was updated by the waker, and resyncs at idle exit: tens of
 * µs off on this VM) and drops the CPU's calibration; neither it nor a switch into idle (the rq
 * clock predates the new-idle balance) calibrates: the offset in use always comes from the
 * current busy period of the CPU. So a busy CPU reads the clock about once per millisecond, and the time of
 * a switch is the moment the scheduler took it (rq clock update): within a microsecond of the
 * read at the tracepoint (measured on this VM under ping-pong: 98% within 256 ns), later only
 * when the vCPU stalled inside __schedule; after a wake-up that preempted the CPU's task the
 * scheduler skips the update, and the switch is stamped with the wake-up (for an instance that
 * answers and blocks: the response's write). With a busy task preempted and resumed, stamps up to
 * 70 µs ahead of a read at the same switch were also seen (billing tests): an error of the part of
 * a run in progress at a reading, never of a completed run. Times of one acct entry never go back.
 * A kernel whose tasks have no se.cfs_rq (no CONFIG_FAIR_GROUP_SCHED) reads bpf_ktime_get_ns() at
 * each switch.
 *
 * Two copies of each program, one of each is loaded: tp_btf (BTF-typed arguments, plain loads,
 * cheapest) and raw_tp (the fallback for kernels that cannot attach tp_btf; reads go through
 * bpf_probe_read_kernel). Both read next->cgroups->dfl_cgrp->kn->id and
 * task->se.cfs_rq->rq->clock with CO-RE relocations, fields that are stable from 5.5 to 6.18 at
 * least, and task_struct.se.sum_exec_runtime and se.prev_sum_exec_runtime (older still).
 * sched_stat_runtime's first argument is the task on every kernel (6.8 dropped the third,
 * vruntime), the only one read.
 *
 * Memory ordering: user space reads acct entries through an mmap while this program writes them,
 * under a seqcount. Compiler barriers keep the stores in program order; the x86-64 JIT emits plain
 * stores and x86 keeps stores ordered (TSO), which is what the seqcount needs. ember builds for
 * x86-64 only (-D__TARGET_ARCH_x86); a weakly ordered architecture would need
 * smp_store_release-style stores here.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bpf/billing.h"

/* Set by the loader before load (rodata): the JIT sees constants. */
const volatile __u32 nr_cpus = 1;    /* libbpf_num_possible_cpus() */
const volatile __u32 cg_mask = 0;    /* cgtab groups - 1 (a power of two minus one) */

#define CAL_NS (1000ull * 1000)             /* rq clock between two clock reads of a CPU */
#define CAL_RESET_NS (16ull * 1000 * 1000)  /* older calibration: take the new offset as is */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);                 /* em_bill_cg_group_of(cgid) */
	__type(value, struct em_bill_cg_group);
	__uint(max_entries, 1);             /* set by the loader: cg_mask + 1 */
} cgtab SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);                 /* unified cgroup id */
	__type(value, struct em_bill_slot);
	__uint(max_entries, 1);             /* set by the loader: max_cgroups */
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);                 /* slot * nr_cpus + cpu */
	__type(value, struct em_bill_cpu_acct);
	__uint(max_entries, 1);             /* set by the loader: max_cgroups * nr_cpus */
} acct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);                 /* slot */
	__type(value, struct em_bill_win);
	__uint(max_entries, 1);             /* set by the loader: max_cgroups */
} win SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct em_bill_task);
} tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct em_bill_cur);
	__uint(max_entries, 1);
} cur SEC(".maps");

#define barrier() asm volatile("" ::: "memory")

static __always_inline struct em_bill_cpu_acct *acct_entry(__u32 idx, __u32 cpu)
{
	__u32 key = idx * nr_cpus + cpu;

	return bpf_map_lookup_elem(&acct, &key);
}

/* The slot tracking cgroup `cgid` now, and its `win` entry; NULL if untracked. */
static __always_inline struct em_bill_win *slot_of(__u64 cgid, __u32 *idx)
{
	__u32 g = em_bill_cg_group_of(cgid, cg_mask);
	struct em_bill_cg_group *grp = bpf_map_lookup_elem(&cgtab, &g);
	struct em_bill_slot *slot;
	struct em_bill_win *w;
	__u32 i;

	if (!grp)
		return NULL;
	if (grp->e[0].cgid == cgid)
		i = grp->e[0].idx;
	else if (grp->e[1].cgid == cgid)
		i = grp->e[1].idx;
	else if (grp->e[2].cgid == cgid)
		i = grp->e[2].idx;
	else if (grp->e[3].cgid == cgid)
		i = grp->e[3].idx;
	else if (!(grp->e[0].flags & EM_BILL_CG_OVERFLOW))
		return NULL; /* untracked: done */
	else if ((slot = bpf_map_lookup_elem(&tracked, &cgid)))
		i = slot->idx;
	else
		return NULL;
	barrier();
	w = bpf_map_lookup_elem(&win, &i);
	/* a table entry read while user space changed it names a slot that is not this cgroup's */
	if (!w || w->cgid != cgid || !cgid)
		return NULL;
	*idx = i;
	return w;
}

/* raw: read through bpf_probe_read_kernel (raw_tp) rather than plain BTF loads (tp_btf); a
 * constant at each call site, so each program keeps only its own kind of read. */
static __always_inline __u64 task_sum_exec(struct task_struct *t, bool raw)
{
	return raw ? BPF_CORE_READ(t, se.sum_exec_runtime) : t->se.sum_exec_runtime;
}

static __always_inline __u64 task_cgid(struct task_struct *t, bool raw)
{
	return raw ? BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id) : t->cgroups->dfl_cgrp->kn->id;
}

/* se.sum_exec_runtime when the task was last picked to run (set_next_entity): the start of its
 * current run in the scheduler's account. */
static __always_inline __u64 task_run_start(struct task_struct *t, bool raw)
{
	return raw ? BPF_CORE_READ(t, se.prev_sum_exec_runtime) : t->se.prev_sum_exec_runtime;
}

static __always_inline int task_pid(struct task_struct *t, bool raw)
{
	return raw ? BPF_CORE_READ(t, pid) : t->pid;
}

/* The clock of the run queue of task t (on this CPU), 0 if it cannot be read. */
static __always_inline __u64 task_rq_clock(struct task_struct *t, bool raw)
{
	if (!bpf_core_field_exists(t->se.cfs_rq) || !bpf_core_field_exists(struct cfs_rq, rq))
		return 0;
	return raw ? BPF_CORE_READ(t, se.cfs_rq, rq, clock) : t->se.cfs_rq->rq->clock;
}

/* Now, CLOCK_MONOTONIC: the rq clock through this CPU's offset, or a clock read (see the top).
 * `idle`: the CPU leaves or enters idle at this switch, when the rq clock may have been updated
 * long before (by the waker's CPU; before a new-idle balance): such a switch is timed, but does
 * not calibrate; one that leaves idle is read exactly (the rq clock resyncs at idle exit). */
static __always_inline __u64 clock_now(struct em_bill_cur *c, struct task_struct *prev,
				       struct task_struct *next, bool raw, bool exact)
{
	__u64 rq = task_rq_clock(prev, raw), now, since, off;
	int idle = c->idle_task ? (c->idle_task == (__u64)prev ? 1 : c->idle_task == (__u64)next ? -1 : 0) :
		   /* not learnt yet (see on_switch): the idle task has pid 0 */
		   !task_pid(prev, raw) ? 1 : !task_pid(next, raw) ? -1 : 0;

	if (!rq)
		return bpf_ktime_get_ns();
	since = rq - c->cal_rq; /* rq clocks only go forward, per CPU */
	if (!exact && idle <= 0 && c->cal_rq && since < CAL_NS)
		return rq + c->off;
	now = bpf_ktime_get_ns();
	if (idle)
		return now;
	off = now - rq;
	/* smallest recent offset: a late read overstates it; let it grow by at most since / 1024 */
	if (c->cal_rq && since < CAL_RESET_NS && (__s64)(off - (c->off + (since >> 10))) > 0)
		off = c->off + (since >> 10);
	c->off = off;
	c->cal_rq = rq;
	return exact ? now : rq + off;
}

/* An entry's times never go back: a stamp from the rq clock may come out a little before an exact
 * read made just before it (see the top). */
static __always_inline __u64 mono_max(__u64 now, __u64 last)
{
	return now > last ? now : last;
}

/* The switch-out of the task we charged for on this CPU. `t`: its task storage (may be NULL). */
static __always_inline void run_end(struct em_bill_cur *c, __u32 cpu, __u64 now, __u64 sum_exec,
				    struct em_bill_task *t)
{
	struct em_bill_cpu_acct *a = acct_entry(c->idx, cpu);
	__u64 delta = 0;

	if (!a)
		return;
	if (t && t->gen == c->gen && t->idx == c->idx && sum_exec >= t->last_sum)
		delta = sum_exec - t->last_sum;    /* since its last switch-out: all its runs */
	else if (sum_exec >= c->run_base)
		delta = sum_exec - c->run_base;    /* first switch-out: this run */
	now = mono_max(now, a->last_ts);
	a->seq++;
	barrier();
	a->cpu_ns += delta;
	a->run_ts = 0;
	a->last_ts = now;
	barrier();
	a->seq++;
	if (t) {
		t->last_sum = sum_exec;
		t->cgid = c->cgid;
		t->idx = c->idx;
		t->gen = c->gen;
	}
}

/* A run we were charging whose switch-out was not seen: close it without a charge (its task's
 * next seen switch-out charges everything since its last one, from its storage). */
static __always_inline void run_drop(struct em_bill_cur *c, __u32 cpu, __u64 now)
{
	struct em_bill_cpu_acct *a = acct_entry(c->idx, cpu);

	if (!a)
		return;
	now = mono_max(now, a->last_ts);
	a->seq++;
	barrier();
	a->run_ts = 0;
	a->last_ts = now;
	a->nr_missed++;
	barrier();
	a->seq++;
}

/* A task of a tracked cgroup leaves a CPU we were not charging it on: its switch-in was not seen.
 * Charge its runtime since its last switch-out, if it is still in the cgroup of that slot. */
static __always_inline void run_missed(struct em_bill_cur *c, struct task_struct *prev,
				       struct task_struct *next, struct em_bill_task *t, __u32 cpu,
				       bool raw)
{
	struct em_bill_win *w = bpf_map_lookup_elem(&win, &t->idx);
	__u64 cgid = task_cgid(prev, raw), sum_exec = task_sum_exec(prev, raw);
	struct em_bill_cpu_acct *a;
	__u64 now, delta, arm;

	if (!w || w->gen != t->gen || cgid != t->cgid) {
		t->gen = 0; /* left the cgroup, or the cgroup is no longer tracked */
		return;
	}
	a = acct_entry(t->idx, cpu);
	if (!a || sum_exec <= t->last_sum)
		return;
	delta = sum_exec - t->last_sum;
	now = mono_max(clock_now(c, prev, next, raw, false), a->last_ts);
	arm = w->arm_ts;
	a->seq++;
	barrier();
	a->cpu_ns += delta;
	a->last_ts = now;
	if (arm && a->first_ts < arm) /* the run began about delta ago */
		a->first_ts = now - delta > arm ? now - delta : arm;
	a->nr_missed++;
	barrier();
	a->seq++;
	t->last_sum = sum_exec;
}

static __always_inline void run_begin(struct em_bill_cur *c, __u32 idx, struct em_bill_win *w,
				      __u32 cpu, __u64 now, struct task_struct *prev,
				      struct task_struct *next, bool raw)
{
	struct em_bill_cpu_acct *a = acct_entry(idx, cpu);
	__u64 arm = w->arm_ts, sum_exec = task_sum_exec(next, raw);

	if (!a)
		return;
	if (arm && a->first_ts < arm) {
		/* the slot's first run in the window on this CPU: the start of wall_ns, read exactly */
		now = clock_now(c, prev, next, raw, true);
		if (now < arm)
			now = arm;
	} else if (!now) {
		now = clock_now(c, prev, next, raw, false);
	}
	now = mono_max(now, a->last_ts);
	a->seq++;
	barrier();
	a->run_ts = now;
	a->run_base = sum_exec;
	a->last_ts = now;
	if (arm && a->first_ts < arm)
		a->first_ts = now;
	a->nr_switch++;
	barrier();
	a->seq++;
	c->idx = idx;
	c->gen = w->gen;
	c->cgid = w->cgid;
	c->run_base = sum_exec;
	c->charging = 1;
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next, bool raw)
{
	__u64 next_cgid = task_cgid(next, raw), now = 0;
	struct em_bill_task *t;
	struct em_bill_win *w;
	struct em_bill_cur *c;
	__u32 zero = 0, cpu, idx;

	c = bpf_map_lookup_elem(&cur, &zero);
	if (!c)
		return 0;
	cpu = bpf_get_smp_processor_id(); /* inlined by the JIT on x86-64 */
	if (!c->idle_task) {
		/* learn this CPU's idle task (pid 0) once: a compare per switch from then on */
		if (!task_pid(prev, raw))
			c->idle_task = (__u64)prev;
		else if (!task_pid(next, raw))
			c->idle_task = (__u64)next;
	}
	if (c->idle_task == (__u64)prev)
		c->cal_rq = 0; /* out of idle: the rq clock resynced, calibrate afresh */
	if (c->task == (__u64)prev) {
		/* the task we saw switching in: untracked (nothing to do) or charged */
		if (c->charging) {
			now = clock_now(c, prev, next, raw, false);
			/* prev is the current task: bpf_get_current_task_btf() gives it as a BTF
			 * pointer, which task storage takes, from both programs */
			t = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0,
						 BPF_LOCAL_STORAGE_GET_F_CREATE);
			run_end(c, cpu, now, task_sum_exec(prev, raw), t);
		}
	} else {
		/* a switch event was missed (or this is the first one since the load) */
		if (c->charging)
			run_drop(c, cpu, clock_now(c, prev, next, raw, false));
		/* NULL at once for a task that never ran in a tracked cgroup */
		t = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0, 0);
		if (t && t->gen)
			run_missed(c, prev, next, t, cpu, raw);
	}
	c->charging = 0;
	c->task = (__u64)next;

	w = slot_of(next_cgid, &idx);
	if (w)
		run_begin(c, idx, w, cpu, now, prev, next, raw);
	return 0;
}

/* Task p, the current task of this CPU, is running, but the program did not see its switch-in (see
 * the top): charge what it ran since its last seen switch-out (all of its current run, and any
 * earlier run whose switches were all missed) and open a run from now, as run_begin would have. */
static __always_inline void run_recover(struct em_bill_cur *c, __u32 idx, struct em_bill_win *w,
					__u32 cpu, struct task_struct *p, bool raw)
{
	struct em_bill_cpu_acct *a = acct_entry(idx, cpu);
	__u64 sum_exec = task_sum_exec(p, raw), start = task_run_start(p, raw), arm = w->arm_ts;
	__u64 now = bpf_ktime_get_ns(), delta, first;
	struct em_bill_task *t;

	if (!a)
		return;
	if (start > sum_exec)
		start = sum_exec;
	/* p is the current task: bpf_get_current_task_btf() is p as a BTF pointer */
	t = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (t && t->gen == w->gen && t->idx == idx && t->cgid == w->cgid && t->last_sum <= sum_exec)
		delta = sum_exec - t->last_sum;  /* since its last switch-out */
	else
		delta = sum_exec - start;        /* new to the slot: this run */
	/* the run began about (sum_exec - start) ago: the start of wall_ns if it is the window's first */
	first = now - (sum_exec - start);
	if (first < arm)
		first = arm;
	now = mono_max(now, a->last_ts);
	if (first > now)
		first = now;
	a->seq++;
	barrier();
	a->cpu_ns += delta;
	a->run_ts = now;
	a->run_base = sum_exec;
	a->last_ts = now;
	if (arm && a->first_ts < arm)
		a->first_ts = first;
	a->nr_missed++;
	barrier();
	a->seq++;
	if (t) {
		t->last_sum = sum_exec;
		t->cgid = w->cgid;
		t->idx = idx;
		t->gen = w->gen;
	}
	c->idx = idx;
	c->gen = w->gen;
	c->cgid = w->cgid;
	c->run_base = sum_exec;
	c->charging = 1;
}

/* sched_stat_runtime: the scheduler charged runtime to task p (update_curr), p running on this
 * CPU or, from a wake-up here, on another CPU's run queue. */
static __always_inline int on_runtime(struct task_struct *p, bool raw)
{
	struct em_bill_cur *c;
	struct em_bill_win *w;
	__u32 zero = 0, cpu, idx;

	c = bpf_map_lookup_elem(&cur, &zero);
	if (!c || c->task == (__u64)p)
		return 0; /* the task we saw switching in: all is known */
	if ((__u64)p != bpf_get_current_task())
		return 0; /* another CPU's current task */
	/* p runs here and its switch-in was missed */
	cpu = bpf_get_smp_processor_id();
	if (c->charging)
		run_drop(c, cpu, bpf_ktime_get_ns());
	c->charging = 0;
	c->task = (__u64)p;
	w = slot_of(task_cgid(p, raw), &idx);
	if (w)
		run_recover(c, idx, w, cpu, p, raw);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(em_bill_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, false);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(em_bill_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, true);
}

SEC("tp_btf/sched_stat_runtime")
int BPF_PROG(em_bill_runtime_btf, struct task_struct *p)
{
	return on_runtime(p, false);
}

SEC("raw_tp/sched_stat_runtime")
int BPF_PROG(em_bill_runtime_raw, struct task_struct *p)
{
	return on_runtime(p, true);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
