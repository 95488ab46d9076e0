/* runtime/hooks.h — OCI lifecycle hooks (prestart, createRuntime, createContainer,
 * startContainer, poststart, poststop): run one hook program with the container's state JSON on
 * its stdin, its exact args and env, an optional timeout, and its output captured for the error
 * message.
 *
 * Where a hook runs is the caller's choice: createRuntime/prestart/poststart/poststop from the
 * runtime (host namespaces), createContainer/startContainer from a process the sandbox child forks
 * inside the container's mount namespace. em_hook_run() works in both: it touches nothing in the
 * file system except h->path, allocates nothing (argv/envp and output buffers live on the stack,
 * sized by the hook), installs no signal handler and waits only for its own child, by pidfd
 * (clone3 CLONE_PIDFD; poll; waitid P_PIDFD). Safe from any thread of a multithreaded host.
 * If the host reaps the hook first (SIGCHLD set to SIG_IGN, or a SIGCHLD handler calling
 * waitpid(-1)), the exit status is still recovered from the pidfd on Linux 6.15+
 * (PIDFD_INFO_EXIT); on older kernels the hook then fails with "exit status lost". */
#ifndef EMBER_RUNTIME_HOOKS_H
#define EMBER_RUNTIME_HOOKS_H

#include <stddef.h>

#include "runtime/oci.h"

struct em_err;
struct em_log;

/* How much of a hook's stdout and of its stderr is kept (each) for messages; the rest is drained
 * and dropped so a chatty hook never blocks on a full pipe. */
#define EM_HOOK_OUTPUT_MAX 4096
/* A hook's args and env are limited to this many entries each (they live on the stack). */
#define EM_HOOK_MAX_STRINGS 4096

/* Run one hook and wait for it. h->args is argv exactly (args[0] is argv[0]; no args: argv is
 * [path]); h->env is the whole environment (none: empty). stdin is a pipe holding state_json and
 * then EOF (the state is written before the hook starts, so a hook that never reads it cannot
 * block or SIGPIPE the runtime); stdout and stderr are captured. The hook starts with default
 * signal dispositions, an empty signal mask, fds 0-2 only, and its own process group; a
 * h->timeout (seconds) kills that whole group with SIGKILL. The hook inherits the caller's cwd
 * (runc runs hooks from the bundle directory: chdir there first to match it).
 * Returns 0 if the hook exited with status 0, else -code with a message such as
 *   createRuntime hook [0] /usr/bin/foo: exited with status 2: <stderr text>
 *   poststop hook [1] /usr/bin/bar: timed out after 5 s
 *   prestart hook [0] /usr/bin/baz: killed by signal SIGSEGV (core dumped)
 *   prestart hook [0] /nope: exec: ENOENT (No such file or directory)
 * (ECHILD for a non-zero status or a signal, ETIMEDOUT for a timeout.) */
int em_hook_run(const struct em_oci_hook *h, enum em_hook_kind kind, size_t index,
		const char *state_json, struct em_log *log, struct em_err *err);

/* Run every hook of one kind, in order. As the OCI runtime spec says: a failing prestart,
 * createRuntime, createContainer or startContainer hook stops the sequence and its error is
 * returned (the caller then aborts the container); a failing poststart or poststop hook is logged
 * as a warning and the next one still runs, and 0 is returned. hooks may be NULL (no hooks). */
int em_hooks_run(const struct em_oci_hooks *hooks, enum em_hook_kind kind, const char *state_json,
		 struct em_log *log, struct em_err *err);

#endif
