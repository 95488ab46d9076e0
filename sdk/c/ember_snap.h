/* sdk/c/ember_snap.h — the template side of a snapshot (sdk/PROTOCOL.md, "Snapshots";
 * snapshot/FORMAT.md): how a template parked at its ready point lets the host dump it, and where a
 * restored copy of it resumes.
 *
 * The dump is cooperative and done from outside: on EMBER_SNAPSHOT the template captures its
 * registers here (like setjmp), tells the host what only it can see (registers, thread pointer,
 * signal dispositions and mask, glibc's rseq area, its /proc/self/maps, fds and exe in its own
 * mount namespace's paths) and then blocks reading its channel until EMBER_SNAPSHOT_DONE, so its
 * memory holds still while the host reads it (/proc/PID/mem, pagemap) and writes the image.
 * A restorer (snapshot/restore/) later rebuilds that memory in a fresh sandbox and jumps back into
 * the capture with 1: the process continues as a template resumed from the image, on the channel
 * number it had (the host's new channel is put there).
 *
 * Requirement: the template is single-threaded when it is dumped (a restore recreates one thread);
 * the handler checks /proc/self/task and refuses with EBUSY otherwise.
 *
 * Shared by both SDKs: linked into libember_fn.a and into libember_zygote.so (Python, through
 * ember_zygote_serve). */
#ifndef EMBER_SNAP_H
#define EMBER_SNAP_H

#include <stddef.h>
#include <stdint.h>

#include "ember_proto.h"

/* Capture the callee-saved registers, the stack pointer and the return address, like setjmp:
 * returns 0 now, and 1 when a restorer resumes a restored process here. As with setjmp, locals of
 * the caller changed after the call are indeterminate after a resume: keep the call's result in a
 * fresh variable and re-read what matters. */
int ember_snap_capture(struct ember_snap_regs *r) __attribute__((returns_twice));

/* Handle one EMBER_SNAPSHOT whose header (id) has been read from `chan` (it has no payload).
 * After a resume it first re-makes what links the new task to glibc's thread descriptor, as
 * recorded before the dump: clear_child_tid (set_tid_address), the robust futex list, and glibc's
 * cached tid (which raise/abort/pthread_kill use), set to the new thread's. Returns:
 *  = 0: the host dumped this template (or the template refused: SNAPSHOT_STATE carried the
 *       error, and why says it); carry on parking;
 *  = 1: this is a restored process, resumed here: `chan` is the host's new channel. The caller
 *       re-seeds what must differ (random state) and sends READY with "restored":true;
 *  < 0: -errno: the channel failed (why says it); stop. */
int ember_snap_handle(int chan, uint64_t id, char *why, size_t why_cap);

#endif
