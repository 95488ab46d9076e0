/* runtime/caps.h — the five capability sets of the container process, applied with raw
 * prctl/capset system calls (no libcap: the child after clone() may not allocate).
 *
 * Sets are bit masks, bit n = capability n, as in struct em_oci_process.caps. The apply
 * functions are async-signal-safe and return 0 or -errno; those that work one capability at a
 * time also say which one failed (*failed_cap, -1 when no single capability is to blame), so
 * the sandbox can report `raise ambient capability CAP_NET_RAW: EPERM`.
 *
 * The order the sandbox child uses, as runc does:
 *   em_caps_drop_bounding()        while still root: PR_CAPBSET_DROP needs CAP_SETPCAP
 *   em_caps_keep_on_setuid(true)   so setuid() to a non-root uid keeps the permitted set
 *   setgroups/setresgid/setresuid
 *   em_caps_keep_on_setuid(false)  the process must not keep them across its own setuid()s
 *   em_caps_set()                  effective, permitted, inheritable
 *   em_caps_set_ambient()          last: raising needs the cap in permitted and inheritable */
#ifndef EMBER_RUNTIME_CAPS_H
#define EMBER_RUNTIME_CAPS_H

#include <stdbool.h>
#include <stdint.h>

struct em_err;

/* Parent side: the highest capability this kernel knows (/proc/sys/kernel/cap_last_cap).
 * Bits above it in a config's masks cannot be applied; runc ignores them. */
int em_caps_last_cap(int *out, struct em_err *err);

/* PR_SET_KEEPCAPS. */
int em_caps_keep_on_setuid(bool keep);

/* Drop every capability 0..last_cap not in keep from the bounding set (PR_CAPBSET_DROP). */
int em_caps_drop_bounding(uint64_t keep, int last_cap, int *failed_cap);

/* capset(2), version 3 (64-bit sets). On EPERM, *failed_cap is the lowest capability that
 * breaks the kernel's rules (a permitted cap not held now, an effective cap not in the new
 * permitted set, an inheritable cap outside the bounding set or without CAP_SETPCAP), else -1. */
int em_caps_set(uint64_t eff, uint64_t perm, uint64_t inh, int *failed_cap);

/* Clear the ambient set, then raise each capability 0..last_cap in amb. */
int em_caps_set_ambient(uint64_t amb, int last_cap, int *failed_cap);

#endif
