/* sdk/c/ember_zygote.h — the template side of a zygote fork (sdk/PROTOCOL.md, "Templates").
 *
 * A template is an initialised instance parked at the SDK's ready point, inside a user namespace
 * of its own in which it holds CAP_SYS_ADMIN. When the host sends EMBER_FORK, the SDK calls
 * ember_zygote_fork(), which clone3()s a child straight into new pid/mount/uts/ipc namespaces and
 * (where the kernel allows) into the instance's cgroup, and makes the child a fresh instance:
 *   - joins the network namespace the host sent (from a pool owned by the template's userns);
 *   - mounts its own /proc (its pid namespace's), re-applies the masked and read-only paths,
 *     and mounts its own empty tmpfs on /tmp;
 *   - takes the host's channel as its channel fd and the host's log pipe as stdout and stderr;
 *   - drops every capability the function does not have (CAP_SYS_ADMIN above all), for good
 *     (no_new_privs is inherited, so an exec cannot bring them back);
 *   - restores SIGCHLD (the template ignores it so its exited children are reaped at once).
 * Everything else — the function's initialised memory, its open files — it inherits copy-on-write.
 * The caller then re-seeds what must differ per instance and sends READY on the channel.
 *
 * Shared by both SDKs: linked into libember_fn.a, and built as libember_zygote.so, which the
 * Python SDK calls through ctypes between PyOS_BeforeFork and PyOS_AfterFork_*.
 * The template must be single-threaded: the child gets only the calling thread. */
#ifndef EMBER_ZYGOTE_H
#define EMBER_ZYGOTE_H

#include <stddef.h>
#include <stdint.h>

/* Get a template's memory ready to be forked, once, before its READY: its large private
 * anonymous regions (the heap, big allocations: >= 2 MB) are collapsed into transparent huge
 * pages now (MADV_COLLAPSE, Linux >= 6.1; the regions are not marked MADV_HUGEPAGE, so later
 * small allocations do not each clear a 2 MB page), so each fork copies one page-table entry per
 * 2 MB instead of 512 (tools/forkbench: clone3 of a 256 MB template ~4x faster).
 * Best effort: regions the kernel declines stay as they are. Returns the bytes now backed by
 * huge pages (AnonHugePages), or -1 if that cannot be read. */
long long ember_zygote_prepare(void);

/* Handle one EMBER_FORK whose header has been read from `chan` (its payload, payload_len bytes,
 * and fds follow). `id` is the header's id (echoed in EMBER_FORKED).
 *  > 0: in the template: the child's pid (in the template's pid namespace); FORKED was sent.
 *  = 0: in the child: it is the new instance; `chan` is now its channel (same number).
 *  < 0: in the template: -errno. If *why is set the fork itself failed (FORKED carried it, the
 *       template carries on); if it is empty, the channel to the host failed (stop).
 * In the child a failed setup step sends INIT_ERROR on the new channel and _exit(1)s. */
int ember_zygote_fork(int chan, uint64_t id, uint64_t payload_len, char *why, size_t why_cap);

/* For an SDK whose ready point is not in C (Python): wait for frames on `chan` and serve every
 * EMBER_FORK here, so the template runs none of its own code per fork (no interpreter work, no
 * copy-on-write faults of its heap after the first fork), and every EMBER_SNAPSHOT (the dump is
 * made while the template blocks in here, ember_snap.h).
 *  = 0: in a new child (as ember_zygote_fork); the caller runs its after-fork work and READY.
 *  = 1: another frame arrived: *type, *id, *len are its header; its payload is still unread.
 *  = 2: restored: this process was rebuilt from a snapshot taken in here and resumed; `chan` is
 *       the host's new channel. The caller re-seeds what must differ (as after a fork), sends
 *       READY with "restored":true and calls this again (it is still a template).
 *  < 0: -errno: the channel ended (-EPIPE) or failed, or a bad header (-EPROTO; why says). */
#define EMBER_ZYGOTE_RESTORED 2
int ember_zygote_serve(int chan, uint16_t *type, uint64_t *id, uint64_t *len, char *why,
		       size_t why_cap);

#endif
