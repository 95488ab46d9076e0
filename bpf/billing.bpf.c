// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* bpf/billing.bpf.c — per-cgroup on-CPU time from sched_switch, for billing windows.
 *
 * On every context switch on a CPU:
 *  1. if the task leaving the CPU was charged to a tracked cgroup (per-CPU `cur`), close its run:
 *     acct[slot][cpu].cpu_ns += prev->se.sum_exec_runtime - its value at the task's previous
 *     switch-out (task storage; the scheduler's own account, updated by put_prev_task/dequeue
 *     before this tracepoint fires). If this CPU was not charging, but the task has storage (it
 *     ran in a tracked cgroup before), its switch-in was missed: charge the same delta;
 *  2. look the incoming task's unified cgroup id up in `tracked` — the only work an untracked
 *     task costs — and if found, open a run: run_ts = now, run_base = next->se.sum_exec_runtime,
 *     and first_ts = now if this is the slot's first run since its window was armed.
 * The cgroup is the one the task is in when it gets the CPU; a task that moves itself to another
 * cgroup while running is charged to the old one until its next switch (ember moves tasks while
 * they are stopped or before exec, so this does not arise for sandboxes).
 *
 * Two copies of the program, one is loaded: tp_btf (BTF-typed arguments, plain loads, cheapest)
 * and raw_tp (the fallback for kernels that cannot attach tp_btf; reads go through
 * bpf_probe_read_kernel). Both read next->cgroups->dfl_cgrp->kn->id with CO-RE relocations, fields
 * that are stable from 5.5 to 6.18 at least, and task_struct.se.sum_exec_runtime (older still).
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

/* The switch-out of a task we charged for on this CPU. `t`: its task storage (may be NULL). */
static __always_inline void run_end(struct em_bill_cur *c, __u32 cpu, __u64 now, __u64 sum_exec,
				    bool same, struct em_bill_task *t)
{
	struct em_bill_cpu_acct *a = acct_entry(c->idx, cpu);
	__u64 delta = 0;

	if (!a)
		return;
	if (same && t && t->gen == c->gen && t->idx == c->idx && sum_exec >= t->last_sum)
		delta = sum_exec - t->last_sum;    /* since its last switch-out: all its runs */
	else if (same && sum_exec >= a->run_base)
		delta = sum_exec - a->run_base;    /* first switch-out: this run */
	else if (a->run_ts && now > a->run_ts) /* not the task we charged: use the timestamps */
		delta = now - a->run_ts;
	a->seq++;
	barrier();
	a->cpu_ns += delta;
	a->run_ts = 0;
	a->last_ts = now;
	barrier();
	a->seq++;
	if (same && t) {
		t->last_sum = sum_exec;
		t->cgid = c->cgid;
		t->idx = c->idx;
		t->gen = c->gen;
	}
}

/* A task of a tracked cgroup leaves a CPU we were not charging: its switch-in was not seen. Charge
 * its runtime since its last switch-out, if it is still in the cgroup of that slot. */
static __always_inline void run_missed(struct em_bill_task *t, __u64 cgid, __u32 cpu,
				       __u64 sum_exec)
{
	struct em_bill_win *w = bpf_map_lookup_elem(&win, &t->idx);
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
	now = bpf_ktime_get_ns();
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

static __always_inline int run_begin(__u32 idx, __u32 cpu, __u64 now, __u64 sum_exec,
				     struct em_bill_cur *c)
{
	struct em_bill_cpu_acct *a = acct_entry(idx, cpu);
	struct em_bill_win *w = bpf_map_lookup_elem(&win, &idx);
	__u64 arm = w ? w->arm_ts : 0;

	if (!a)
		return -1;
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
	c->gen = w ? w->gen : 0;
	return 0;
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

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next, bool raw)
{
	/* prev is the current task: its storage is reachable the same way from both programs */
	struct task_struct *me = bpf_get_current_task_btf();
	__u64 next_cgid = task_cgid(next, raw);
	struct em_bill_slot *slot;
	struct em_bill_task *t;
	struct em_bill_cur *c;
	__u32 zero = 0, cpu;
	__u64 now = 0;

	c = bpf_map_lookup_elem(&cur, &zero);
	if (!c)
		return 0;
	cpu = bpf_get_smp_processor_id(); /* inlined by the JIT on x86-64 */
	if (c->charging) {
		now = bpf_ktime_get_ns();
		t = bpf_task_storage_get(&tasks, me, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		run_end(c, cpu, now, task_sum_exec(prev, raw), c->task == (__u64)prev, t);
		c->charging = 0;
	} else {
		/* NULL at once for a task that never ran in a tracked cgroup */
		t = bpf_task_storage_get(&tasks, me, 0, 0);
		if (t && t->gen)
			run_missed(t, task_cgid(prev, raw), cpu, task_sum_exec(prev, raw));
	}

	slot = bpf_map_lookup_elem(&tracked, &next_cgid);
	if (!slot)
		return 0; /* untracked: done */

	if (!now)
		now = bpf_ktime_get_ns();
	if (run_begin(slot->idx, cpu, now, task_sum_exec(next, raw), c))
		return 0;
	c->idx = slot->idx;
	c->task = (__u64)next;
	c->cgid = next_cgid;
	c->charging = 1;
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

char LICENSE[] SEC("license") = "Dual BSD/GPL";
