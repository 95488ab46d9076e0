/* runtime/host/instance.h — one function instance: a sandbox (runtime/sandbox.h) in its own
 * cgroup with the function's limits, a network namespace from the pool, a channel speaking the
 * instance protocol (sdk/PROTOCOL.md) and a pipe that carries its stdout and stderr.
 *
 * Life: em_inst_park (pre-made: everything up to the exec is done, the sandbox waits) ->
 * em_inst_start (exec, the function's init, READY) -> em_inst_invoke, em_inst_freeze / em_inst_thaw
 * between invocations -> em_inst_destroy. One thread uses an instance at a time (the host's
 * locking guarantees it); parking is done by the host's spawner thread, because the sandbox's
 * parent-death signal belongs to the thread that created it. */
#ifndef EMBER_RUNTIME_HOST_INSTANCE_H
#define EMBER_RUNTIME_HOST_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/oci.h"
#include "runtime/sandbox.h"

struct em_err;
struct em_log;
struct em_cg;
struct em_cg_root;
struct em_cg_limits;
struct em_bill;
struct em_netns;
struct em_netns_pool;
struct em_tmpl;

/* What every instance of one function version shares (owned by the host). */
struct em_inst_cfg {
	const struct em_oci_config *oci;   /* fnconfig.h */
	const char *bundle;                /* absolute directory the config came from */
	const char *fn;                    /* function name (for messages and cgroup names) */
	uint32_t version;
	uint32_t memory_mb;
	const struct em_cg_limits *limits; /* cgroups/policy.c from memory_mb, plus pids */
	struct em_cg_root *cg_root;
	struct em_netns_pool *netns;       /* where its network namespace comes from */
	struct em_bill *bill;              /* NULL: the host runs without billing */
	struct em_log *log;
	const char *cg_path;               /* NULL: "i<seq>-<fn>" below the host's parent; else this
					      path (a template's, template.h) */
	const int *extra_fds;              /* passed as fds 4, 5, ... (-1: that number closed): a
					      restore's image and restorer (snapshot.h) */
	int n_extra_fds;
};

enum em_inst_state { EM_INST_PARKED, EM_INST_READY, EM_INST_DEAD };

/* How an instance ended, when it did (em_inst_reason). */
enum em_inst_end {
	EM_INST_ALIVE = 0,
	EM_INST_EXITED,      /* exited with status */
	EM_INST_SIGNALED,    /* killed by a signal other than the OOM killer's */
	EM_INST_OOM,         /* the cgroup's OOM killer killed a task */
	EM_INST_PROTOCOL,    /* broke the protocol (bad frame); the host killed it */
	EM_INST_KILLED,      /* killed by the host (timeout, shutdown) */
};

struct em_inst {
	uint64_t seq;                      /* host-wide number, in the cgroup's name */
	enum em_inst_state state;
	pid_t pid;                         /* the sandbox's init: the function's process */
	int pidfd;
	int chan;                          /* host end of the channel, O_NONBLOCK */
	int logfd;                         /* read end of the stdout/stderr pipe, O_NONBLOCK */
	struct em_sandbox sb;
	struct em_cg *cg;
	uint64_t cgid;
	struct em_netns *ns;
	uint32_t memory_mb;
	uint64_t init_ns;                  /* exec to READY */
	uint64_t last_used_ns;             /* CLOCK_MONOTONIC at the end of its last invocation */
	uint64_t invocations;
	bool frozen;
	enum em_inst_end end;
	int end_value;                     /* exit status or signal */
	uint64_t oom_kills0;               /* the cgroup's OOM kills when it started */
	/* the stdout/stderr of the current invocation (or the init, for the first) */
	char *log; size_t log_len, log_cap, log_dropped;
	struct em_bill *bill;
	struct em_log *hlog;
	char name[128];                    /* cgroup path: "i<seq>-<fn>", "z<t>-<fn>/i<seq>" */
	/* forked from a template (em_inst_prepare_fork): not the host's child, so its end is read
	 * from its pidfd (PIDFD_GET_INFO), and its fds wait here until the FORK carries them */
	bool forked;
	int fork_fds[2];                   /* its channel and log ends, until forked */
	struct em_tmpl *tmpl;              /* the template it is (to be) forked from */
	void (*release)(void *arg);        /* called when destroyed (the template's reference) */
	void *release_arg;
	struct em_inst *next;              /* the host's lists */
};

/* Make a parked sandbox for cfg: cgroup (limits applied before any process enters, tracked for
 * billing), network namespace, channel and log pipe, then everything up to the exec. */
int em_inst_park(const struct em_inst_cfg *cfg, uint64_t seq, struct em_inst **out,
		 struct em_err *err);

/* A slot for an instance forked from a template (template.h): its cgroup at cg_path (limits
 * applied; cgroup.procs delegated to `uid`, the template's), billing tracked, a network namespace
 * from `netns` (owned by the template's user namespace), channel and log pipe. State PARKED
 * with no process; em_inst_start_forked fills it. */
int em_inst_prepare_fork(const struct em_inst_cfg *cfg, const char *cg_path, uid_t uid,
			 struct em_netns_pool *netns, uint64_t seq, struct em_inst **out,
			 struct em_err *err);

/* Fork the slot's process from template `tmpl` (an instance parked at its ready point in its
 * user namespace): EMBER_FORK with the slot's fds and `req` (+ paths), the template's FORKED, then
 * the new instance's READY, whose sender the kernel names (SCM_PIDFD). On a hybrid host the
 * instance is then moved into the v1 hierarchies. `tmpl_lock` serialises the template's channel.
 * On failure the slot is dead (destroy it); err says why, and ENOTCONN if the template itself is
 * gone. in->init_ns is the whole fork, FORK to READY. */
struct ember_fork_req;
int em_inst_start_forked(struct em_inst *in, struct em_inst *tmpl, void *tmpl_lock,
			 const struct ember_fork_req *req, const char *paths, uint32_t timeout_ms,
			 struct em_err *err);

/* Let a parked instance exec and run the function's init until READY, at most timeout_ms.
 * On failure the instance is dead (destroy it); err says why ("init failed: ..." with the
 * function's INIT_ERROR, "exited with status 1 during init", "init timed out after N ms"). */
int em_inst_start(struct em_inst *in, uint32_t timeout_ms, struct em_err *err);
/* The same for a parked sandbox that executes a snapshot's restorer (runtime/host/snapshot.h):
 * the restored template's READY must say "restored":true. A lazy restore first sends its
 * userfaultfd (EMBER_SNAPSHOT_UFFD): cb->fn gets it (to duplicate: it is closed after) and makes
 * it served; its status is the restorer's answer, and a failure ends the start with its error. */
struct em_inst_uffd_cb {
	int (*fn)(void *arg, int uffd, struct em_err *err);
	void *arg;
};
int em_inst_start_restored(struct em_inst *in, uint32_t timeout_ms,
			   const struct em_inst_uffd_cb *cb, struct em_err *err);

/* A template's dump (sdk/PROTOCOL.md, "Snapshots"): send EMBER_SNAPSHOT and read its
 * SNAPSHOT_STATE (*payload malloc'd, NUL-terminated after len bytes). The template then holds
 * still until em_inst_snapshot_done. The caller serialises the template's channel. */
int em_inst_snapshot_state(struct em_inst *in, uint64_t id, uint32_t timeout_ms, char **payload,
			   size_t *len, struct em_err *err);
int em_inst_snapshot_done(struct em_inst *in, uint64_t id, int32_t status, uint32_t timeout_ms,
			  struct em_err *err);

enum em_inst_outcome { EM_OUT_OK, EM_OUT_ERROR, EM_OUT_TIMEOUT, EM_OUT_DIED };

struct em_inst_reply {
	enum em_inst_outcome outcome;
	char *body; size_t len;            /* RESULT payload, ERROR JSON (malloc'd) */
};

/* Send one request and wait for its answer until deadline_ns (CLOCK_MONOTONIC). A timeout kills
 * the instance (EM_OUT_TIMEOUT); EM_OUT_DIED: em_inst_end tells how. Returns <0 only for a
 * failure of the host itself (memory). */
int em_inst_invoke(struct em_inst *in, uint64_t id, const char *meta, const void *body, size_t len,
		   uint64_t deadline_ns, struct em_inst_reply *r, struct em_err *err);

int em_inst_freeze(struct em_inst *in, struct em_err *err);
int em_inst_thaw(struct em_inst *in, struct em_err *err);

/* Take the log captured since the last take (malloc'd, NUL-terminated; *len set). */
char *em_inst_take_log(struct em_inst *in, size_t *len);

/* Describe how a dead instance ended: "exited with status 3", "killed by SIGSEGV",
 * "out of memory (the cgroup's limit is 128 MB)". */
void em_inst_describe_end(const struct em_inst *in, char *buf, size_t cap);

/* Kill everything in its cgroup, reap, remove the cgroup, give the namespace back, free. */
void em_inst_destroy(struct em_inst *in);

uint64_t em_now_ns(void);   /* CLOCK_MONOTONIC */

#endif
