/* runtime/rlimits.h — process.rlimits, checked in the parent and applied in the sandbox child.
 *
 * The kernel's rules (kernel/sys.c, do_prlimit): soft must not exceed hard (EINVAL), and raising
 * a hard limit above the current one needs CAP_SYS_RESOURCE in the initial user namespace
 * (EPERM) — a new user namespace does not give it. Root on the development machine lacks
 * CAP_SYS_RESOURCE, so there the hard limits it inherited (nofile 20000) are a ceiling. */
#ifndef EMBER_RUNTIME_RLIMITS_H
#define EMBER_RUNTIME_RLIMITS_H

#include <stddef.h>

struct em_oci_rlimit;
struct em_err;

/* Parent side, before clone(): reject what the kernel is sure to refuse, with the field and the
 * reason: `process.rlimits[1]: RLIMIT_NOFILE hard limit 30000 is above the current hard limit
 * 20000, and raising it needs CAP_SYS_RESOURCE, which ember lacks`. */
int em_rlimits_check(const struct em_oci_rlimit *v, size_t n, struct em_err *err);

/* Child side: set each limit on the calling process with prlimit(0, ...), in order.
 * Async-signal-safe; returns 0 or -errno with *failed_index set to the entry that failed. */
int em_rlimits_apply(const struct em_oci_rlimit *v, size_t n, int *failed_index);

/* Parent side, after the child reported (failed_index, -rc): the error to show, naming the
 * entry and, for EPERM/EINVAL, the rule the kernel applied. Returns -code. */
int em_rlimits_error(const struct em_oci_rlimit *v, size_t n, int failed_index, int code,
		     struct em_err *err);

#endif
