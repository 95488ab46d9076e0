/* runtime/sandbox.h — start a sandboxed process from a plan (plan.h): clone it into its
 * namespaces, place it in its cgroup, map its ids, let it set itself up, and hear back either
 * "created" or the exact step that failed (`pivot_root into /b/rootfs: EINVAL (...)`).
 *
 * The parent side (sandbox.c) may allocate and log; the child side (child.c) runs only the plan's
 * operations with async-signal-safe calls. */
#ifndef EMBER_RUNTIME_SANDBOX_H
#define EMBER_RUNTIME_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>

#include "runtime/plan.h"

struct em_err;
struct em_log;
struct em_cg;

#define EM_SANDBOX_MAP_FDS 8

/* What the sandbox needs besides the plan: the descriptors the child inherits or uses. */
struct em_sandbox_io {
	int sync_fd;          /* child end of the sync socket (set by em_sandbox_start) */
	int stub_fd;          /* sealed exec stub (set by em_sandbox_start) */
	int fifo_fd;          /* O_PATH fd of exec.fifo: wait for `start`; -1: run at once */
	int console_sock;     /* connected --console-socket, or -1 */
	int preserve_fds;     /* fds 3 .. 3+n-1 pass to the process (--preserve-fds) */
	int proc_fd;          /* the host's /proc, kept across pivot_root for the fifo reopen */
	/* The function host (runtime/host/): the process gets map_fds[i] as its descriptor i
	 * (stdin, stdout, stderr, the instance channel; -1 leaves that number closed) instead of
	 * inheriting the caller's, which in a multi-threaded host are someone else's. Implies
	 * preserve_fds = 1 (fd 3 survives the exec). n_map_fds > 4 passes more (a restore: the
	 * image and the restorer, runtime/host/snapshot.h); 0 means 4. */
	bool remap_fds;
	int map_fds[EM_SANDBOX_MAP_FDS];
	int n_map_fds;
	/* The function host: the sandbox belongs to the creating thread for its whole life (it keeps
	 * the parent-death SIGKILL, so a crashed host leaves no running instance behind) and, once
	 * set up, waits parked before its exec until em_sandbox_go. */
	bool host_owned;
};

/* Called by the parent at the points where it must act for the child. */
struct em_sandbox_hooks {
	/* the child's pid is known (before it proceeds): place it in the cgroup */
	int (*attach)(void *data, pid_t pid, struct em_err *err);
	/* prestart + createRuntime hooks; returns the state JSON to hand the child for its
	 * createContainer/startContainer hooks via *state_json (malloc'd) */
	int (*create_runtime)(void *data, pid_t pid, char **state_json, struct em_err *err);
	/* the child is set up (and, with a fifo, about to wait for start): record state */
	int (*created)(void *data, pid_t pid, struct em_err *err);
	void *data;
};

struct em_sandbox {
	pid_t pid;            /* the container's process (init), as seen from the caller */
	int sync_fd;          /* parent end; EOF once the process has executed its program */
};

/* Clone and set up. On success the child is past every setup step: with a fifo it waits for
 * `start`, without one it is executing (await that with em_sandbox_wait_exec). On failure the
 * child is reaped and nothing of it remains (the caller removes its cgroup/state). */
int em_sandbox_start(const struct em_plan *plan, struct em_sandbox_io *io,
		     const struct em_sandbox_hooks *hooks, struct em_sandbox *sb, struct em_log *log,
		     struct em_err *err);

/* A host-owned sandbox (io.host_owned) is parked, set up, before its exec: let it exec now.
 * Then em_sandbox_wait_exec as for any other. Closing sb->sync_fd instead makes it exit. */
int em_sandbox_go(struct em_sandbox *sb, struct em_err *err);

/* Wait until the process has executed the container's program (the sync socket closes), or
 * report the exec failure (`exec /bin/nope: ENOENT`). Closes sb->sync_fd. */
int em_sandbox_wait_exec(struct em_sandbox *sb, struct em_err *err);

/* Detach from the process: close the sync socket without waiting. */
void em_sandbox_release(struct em_sandbox *sb);

/* The child side: never returns. Exposed for sandbox.c only. */
__attribute__((noreturn)) void em_child_main(const struct em_plan *plan,
					     const struct em_sandbox_io *io, bool stage1);

#endif
