/* tools/bench/peers.h — the runtimes the benchmarks compare ember with: `crun run` and
 * `runc run` of a bundle (bench-run: `ember run` against them; bench-host: the function host
 * against one peer run per invocation, as a naive control plane would run a function). Each
 * runtime gets its own state root (--root); crun may need a private mount namespace on a hybrid
 * cgroup host (peers.c says why). bench-run drives ember's CLI through the same struct. */
#ifndef EMBER_TOOLS_BENCH_PEERS_H
#define EMBER_TOOLS_BENCH_PEERS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct peer_rt {
	const char *name;          /* "crun", "runc" */
	char path[PATH_MAX];       /* empty: not installed */
	char root[PATH_MAX];       /* --root: a directory of this run's own under /run */
	char config[320];          /* how it ran, for the report */
	int mntns;                 /* >= 0: exec it in this mount namespace */
	char cg2_controllers[256]; /* crun on a hybrid host: cgroup2's controllers ("" otherwise) */
	int mntns_err;             /* ... and why the namespace could not be made (0 if it was) */
};

/* Find the peer's binary (root's sbin and bin directories first, then $PATH) and prepare how it
 * runs; root is its --root (removed by peer_cleanup_root). Returns false if the peer is not
 * installed. */
bool peer_init(struct peer_rt *rt, const char *name, const char *root);
void peer_fini(struct peer_rt *rt);

/* vfork+exec of argv (in the runtime's mount namespace if it has one) with stdio on
 * in/out/errfd. Returns the pid or -errno. */
pid_t peer_spawn(const struct peer_rt *rt, char *const argv[], int in, int out, int errfd);
/* waitpid, EINTR retried. Returns the wait status or -errno. */
int peer_wait(pid_t pid);

/* dst/config.json: src's config.json with the rootfs made absolute and these limits added
 * (memory in MB, a CPU quota per 100 ms period in µs, pids). Returns 0 or -errno. */
int peer_make_bundle(const char *src, const char *dst, unsigned memory_mb, unsigned cpu_quota_us,
		     unsigned pids);

/* `<peer> --root R run --bundle B ID` with stdin from payload_file, stderr on errfd; stdout
 * read to EOF into out (at most cap-1 bytes kept, NUL-terminated) before the exit status is
 * collected. Returns the wait status or -errno; *us: fork to reaped, in µs. */
int peer_run(const struct peer_rt *rt, const char *bundle, const char *payload_file,
	     const char *id, int errfd, char *out, size_t cap, size_t *outlen, double *us);
/* `<peer> --root R delete --force ID`, quietly. */
void peer_delete(const struct peer_rt *rt, const char *id);
/* "exit 1", "signal 9", "spawn: ENOENT"... for a peer_run status. */
void peer_describe_status(int st, char *buf, size_t len);

/* Delete every container left in the peer's root whose id starts with prefix, then remove the
 * root. Returns how many there were. */
unsigned peer_cleanup_root(const struct peer_rt *rt, const char *prefix);
/* Remove the cgroups a peer left that are named exactly after one of ids, at the root of each
 * hierarchy or below this process's own cgroup there. Returns how many directories went. */
unsigned peer_sweep_cgroups(char *const *ids, size_t n_ids);

#endif
