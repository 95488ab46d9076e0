/* runtime/seccomp.h — an OCI `linux.seccomp` section compiled to a classic-BPF program in the
 * parent, and loaded by the sandbox child with one raw seccomp(2) call.
 *
 * Why two halves: libseccomp allocates, and the child runs after clone() where only
 * async-signal-safe calls are allowed (a multi-threaded host may have forked it). So the
 * parent compiles once (em_seccomp_compile: libseccomp builds the filter, exports the BPF into
 * a memfd, we read it back), and the child only hands the ready program to the kernel
 * (em_seccomp_load). A compiled program can also be cached and reused for every instance of a
 * function, which keeps libseccomp off the invocation path.
 *
 * What the loader does not do, on purpose: it does not set no_new_privs (the sandbox does, as
 * the config says), and it does not care about the caller's capabilities. Without
 * no_new_privs the kernel wants CAP_SYS_ADMIN for SECCOMP_SET_MODE_FILTER, so the sandbox loads
 * the filter before dropping capabilities in that case (as runc does), and as late as
 * possible (just before exec) when no_new_privs is set. */
#ifndef EMBER_RUNTIME_SECCOMP_H
#define EMBER_RUNTIME_SECCOMP_H

#include <linux/filter.h>

struct em_oci_seccomp;
struct em_err;
struct em_log;

struct em_seccomp_prog {
	struct sock_filter *insns;  /* malloc'd; NULL when empty */
	unsigned short len;         /* instructions (the kernel takes at most BPF_MAXINSNS) */
	unsigned int flags;         /* SECCOMP_FILTER_FLAG_* for seccomp(2) */
};

/* Compile s into *out (zeroed on error). Follows runc's semantics: the native architecture is
 * always in the filter and listed ones are added; a rule whose action equals the default action
 * is dropped; args with the same index in one rule become separate rules (OR), otherwise all
 * conditions of a rule must hold (AND); SCMP_CMP_MASKED_EQ takes `value` as the mask and
 * `valueTwo` as the datum; ERRNO and TRACE default to EPERM. Syscall names this architecture
 * does not know are skipped with a warning on log (may be NULL). seccomp notify
 * (SCMP_ACT_NOTIFY, listenerPath) is not supported and is an error. Errors name the OCI field:
 * `linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"`. */
int em_seccomp_compile(const struct em_oci_seccomp *s, struct em_log *log,
		       struct em_seccomp_prog *out, struct em_err *err);

/* Install p on the calling thread. Async-signal-safe (one raw syscall, no allocation).
 * Returns 0 or -errno. */
int em_seccomp_load(const struct em_seccomp_prog *p);

/* Release the program; safe on a zeroed or already freed one. */
void em_seccomp_prog_free(struct em_seccomp_prog *p);

#endif
