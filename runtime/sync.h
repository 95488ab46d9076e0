/* runtime/sync.h — the messages the sandbox parent and child exchange over their SOCK_SEQPACKET
 * pair. Fixed-size, no pointers: the child writes them with one send() from async-signal-safe
 * code, and the exec stub (built without libc) writes the last one. A failure names the step
 * ("pivot_root into /b/rootfs") and carries the errno; the parent turns it into the error the
 * caller sees, so a failed setup never reads as "child exited 1". */
#ifndef EMBER_RUNTIME_SYNC_H
#define EMBER_RUNTIME_SYNC_H

#include <stdint.h>

enum em_sync_type {
	EM_SYNC_GO = 1,          /* parent -> child: continue (maps written, cgroup attached) */
	EM_SYNC_NEED_IDMAP,      /* stage 1 -> parent: write uid/gid maps for me now */
	EM_SYNC_STAGE2_PID,      /* stage 1 -> parent: the container init is this pid (value) */
	EM_SYNC_CREATE_RUNTIME,  /* child -> parent: mounts done; run prestart/createRuntime hooks */
	EM_SYNC_CREATED,         /* child -> parent: set up; waiting to be started */
	EM_SYNC_DETACH,          /* parent -> child: state recorded; survive the parent now */
	EM_SYNC_ERROR,           /* either way: step + errno (err), or a message for EM_SYNC_MSG */
	EM_SYNC_CONSOLE_SENT,    /* child -> parent: the pty master went out over the console socket */
	EM_SYNC_DETACHED,        /* child -> parent: parent-death signal cleared; the parent may exit */
};

#define EM_SYNC_STEP_MAX 480

struct em_sync_msg {
	uint32_t type;
	int32_t err;             /* positive errno for EM_SYNC_ERROR */
	int64_t value;           /* pid for EM_SYNC_STAGE2_PID */
	char step[EM_SYNC_STEP_MAX]; /* NUL-terminated; what failed, with its object */
};

#endif
