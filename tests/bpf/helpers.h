/* tests/bpf/helpers.h — test cgroups and workers for the billing tests.
 *
 * Cgroups: ember-test-bpf-<pid>-<n> in the unified hierarchy (the id BPF keys on) and, as a test
 * needs them, in the v1 cpuacct (usage, the cross-check), cpu (quota, throttling) and memory (peak)
 * hierarchies of this hybrid machine. Every cgroup made is removed by tcg_cleanup_all() (the suites'
 * .fini), after killing what is left in it — only our own workers can be there.
 *
 * Workers: forked children that play a function instance. Each blocks on a request pipe; on the
 * request it reads its clocks, works, reads its clocks again, writes a one-byte response and blocks
 * until released (the test closes the window first); only then does it send its report — the
 * ground truth, from the kernel: its CPU clock and CLOCK_MONOTONIC at wake-up and after the
 * response — and exit. So neither its start, its exit nor the report falls in the window.
 */
#ifndef EMBER_TESTS_BPF_HELPERS_H
#define EMBER_TESTS_BPF_HELPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define TCG_UNIFIED (1u << 0)
#define TCG_CPUACCT (1u << 1)
#define TCG_CPU     (1u << 2)
#define TCG_MEMORY  (1u << 3)

struct tcg {
	char name[64];
	unsigned hier;       /* TCG_* it exists in */
	uint64_t id;         /* unified cgroup id */
	char unified[256], cpuacct[256], cpu[256], memory[256];
};

/* Make a test cgroup in the unified hierarchy plus the v1 ones in `hier` (hybrid host). On a
 * pure cgroup v2 host (the test VM) only the unified one exists, and TCG_CPU / TCG_MEMORY enable
 * those controllers below the root instead. Asserts on failure. */
struct tcg *tcg_new(unsigned hier);
void tcg_add(struct tcg *c, pid_t pid);                          /* into every hierarchy */
void tcg_write(struct tcg *c, unsigned hier, const char *file, const char *val);
bool tcg_pure_v2(void);
/* CPU quota and memory limit, on whichever hierarchy has the controller. */
void tcg_set_quota(struct tcg *c, unsigned quota_us, unsigned period_us);
void tcg_set_memory_max(struct tcg *c, unsigned long long bytes);
void tcg_cleanup_all(void);
void tcg_cleanup_stale(void);  /* left by runners that died */
/* The em_bill_cg description of a test cgroup. */
struct em_bill_cg;
void tcg_bill_cg(const struct tcg *c, struct em_bill_cg *out, uint64_t memory_mb);

enum work_kind {
	WORK_SPIN_CPU,   /* spin until `ms` of this thread's CPU time are used (per thread) */
	WORK_SPIN_WALL,  /* spin for `ms` of wall time */
	WORK_SLEEP,      /* nanosleep `ms` */
	WORK_EXEC,       /* fork+exec build/tools/emtest spin `ms`, wait for it */
	WORK_TOUCH,      /* touch `mb` MB, then spin `ms` of CPU */
};

struct work {
	enum work_kind kind;
	unsigned ms;
	unsigned threads;    /* WORK_SPIN_CPU: that many threads each spinning ms (0 = 1, main) */
	unsigned mb;
};

struct report {
	uint64_t t_wake, t_done;       /* CLOCK_MONOTONIC: request received, response ready */
	uint64_t cpu_wake, cpu_done;   /* process CPU clock (all threads) + reaped children */
};

struct worker {
	pid_t pid;
	int req_w, resp_r;
};

void worker_start(struct worker *w, const struct work *wk);
void worker_go(struct worker *w);              /* send the request */
void worker_response(struct worker *w);        /* wait for the response */
/* Release the worker, read its report, reap it. */
void worker_finish(struct worker *w, struct report *r);

/* build/tools/emtest from the tree, or /bin/emtest in the test VM. */
const char *emtest_path(void);

uint64_t mono_ns(void);
/* CPU time of another process now, runs in progress included (its CPU clock). */
uint64_t proc_cpu_ns(pid_t pid);
void sleep_ms(unsigned ms);

#endif
