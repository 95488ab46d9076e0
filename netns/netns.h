/* netns/netns.h — network namespaces for sandboxes, kept off the invocation path.
 *
 * A new network namespace costs ~0.5 ms to create here (and ~1.5 ms of CPU with its asynchronous
 * teardown); joining a ready one costs ~2 µs. So ember keeps a pool of ready namespaces, held by
 * fd, and refills it in the background.
 *
 * Modes (per sandbox):
 *   EM_NETNS_NONE    only `lo`, up (the default for functions: no network unless asked);
 *   EM_NETNS_BRIDGE  `lo` plus a veth pair: `eth0` inside with an address from the bridge's subnet
 *                    and a default route via the bridge, its peer `emv…` enslaved to an ember bridge
 *                    `emb…` that lives in a "node" namespace — never the machine's own namespace
 *                    (em_netns_bridge_open refuses the root namespace);
 *   EM_NETNS_JOIN    an existing namespace named by path (OCI linux.namespaces[].path): ember only
 *                    holds an fd to it and never changes or destroys it.
 * Outbound NAT is not provided: no nftables library is installed (libnftables/libnftnl), and NAT out
 * of the node namespace would need a link and forwarding in the machine's own namespace, which ember
 * must not touch. The node namespace's owner (the host operator) wires it to the outside.
 *
 * Reuse or destroy: a namespace is never handed to a second function, and never reset either.
 * After em_netns_release() it is destroyed asynchronously by the pool thread (the node-side veth is
 * deleted — which removes the pair at once, so its address is free again — then the last fd is
 * closed and the kernel's cleanup_net worker does the rest). A reset cannot be shown complete: a
 * namespace holds far more than addresses and routes — sockets whose fds may live on in leaked
 * processes, the abstract unix-socket namespace, conntrack entries, nftables/xfrm/tc state and
 * per-namespace sysctls a privileged function may have changed, neighbour caches, ... — and any
 * one of them left behind leaks data between invocations. Destroy-and-refill costs CPU off the
 * invocation path only.
 *
 * Creation without disturbing the caller: the creating thread (the pool's refill thread, or the
 * caller's thread on a pool miss) saves an fd of its own namespace, unshare(CLONE_NEWNET)s — which
 * is per thread, so other threads of a multi-threaded host are not affected — opens
 * /proc/thread-self/ns/net, configures the namespace through netlink sockets created while inside
 * it (a netlink socket stays bound to the namespace it was created in), then setns()es back.
 * A refill *thread* rather than a helper process: the namespace fd is then already in the host's
 * fd table (no SCM_RIGHTS hop), there is no fork of a large host (~0.5 ms plus copy-on-write
 * faults, 10-20x dearer on this VM), and the pool lock protects shared state directly.
 * The pool is usable from any number of threads. Its fds are O_CLOEXEC, but a child forked
 * without exec (a zygote's instances) inherits them and would keep released namespaces alive
 * (never reused: only their teardown is delayed); fork such children from a process without a
 * pool, or close the pool's fds in them.
 *
 * Pools owned by a user namespace (em_netns_pool_cfg.in_userns) — for zygote templates. A zygote
 * template runs in its own user namespace (root inside, an unprivileged uid outside), and the
 * instances forked from it join a ready namespace with setns(fd, CLONE_NEWNET). The kernel allows
 * that only with CAP_SYS_ADMIN in the user namespace that *owns* the network namespace, and a
 * namespace is owned by the user namespace of the task that creates it: namespaces made by the
 * host's threads (owned by the host's user namespace) are out of the instances' reach (EPERM).
 * So such a pool's namespaces must be created by a task inside the template's user namespace, and
 * a multi-threaded process cannot setns() into a user namespace (EINVAL). Each such pool therefore
 * has one helper process, "ember-netns": a clone of the host made by the pool's refill thread (so
 * PR_SET_PDEATHSIG kills it with that thread, i.e. with the pool or the host), single-threaded,
 * which setns()es into the user namespace (gaining every capability there, none outside), and per
 * request from the pool unshare(CLONE_NEWNET)s, sets lo up, and sends the namespace's fd back over
 * a socketpair (SCM_RIGHTS); it then returns to a "parking" namespace of its own, so it never keeps
 * a namespace it handed out alive. Bridge mode is configured by the pool thread in the host, as
 * for other pools: root in the host's user namespace is privileged over every descendant user
 * namespace, so the host enters the namespace with setns and creates the veth pair (node side in
 * the node namespace, which stays owned by the host's user namespace). The helper is respawned by
 * the refill thread if it dies, and em_netns_pool_destroy ends it (EOF on its socket) and reaps it.
 * Its cost: one clone of the host per pool (and per respawn): page tables are copied (~0.3 ms for
 * a small process, ~8 ms with 512 MB resident on this VM), and the helper keeps the host's memory
 * image of that moment copy-on-write, so each page the host writes later is copied once (a fault
 * and up to that much memory again) — create such pools early, while the host is small. Then
 * setns into the user namespace (~0.3 ms) and the parking namespace: em_netns_pool_new returns
 * ~2 ms later for a small host. One process and one parking namespace per pool. Per namespace,
 * creation inside a child user namespace costs what it costs on a thread (~0.2-0.4 ms here), plus
 * a request/reply round trip (two context switches, an fd passed; ~0.1-0.2 ms). Requests are
 * serialised: a miss on a caller's thread may wait behind a creation of the refill thread.
 * A namespace owned by the host's own user namespace needs no helper: a pool given that one is an
 * ordinary pool.
 *
 * For short-lived processes (the `ember` OCI CLI) em_netns_pool_dir_* keep ready namespaces
 * bind-mounted under a state directory (e.g. /run/ember/netns-pool/ember-<pid>-<n>); a claim opens
 * an entry and unmounts it: umount2 succeeds for exactly one claimer, so the claim is lock-free.
 */
#ifndef EMBER_NETNS_NETNS_H
#define EMBER_NETNS_NETNS_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct em_err;
struct em_netns_pool;
struct em_netns_bridge;

enum em_netns_mode {
	EM_NETNS_NONE = 0,
	EM_NETNS_BRIDGE,
	EM_NETNS_JOIN,
};

/* The veth side of a bridge-mode namespace. */
struct em_netns_veth {
	char ifname[IF_NAMESIZE];    /* inside the sandbox, "eth0" unless asked otherwise */
	char peer[IF_NAMESIZE];      /* in the node namespace, "emv<pid><n>" */
	int peer_ifindex;            /* in the node namespace */
	struct in_addr addr;         /* the sandbox's address */
	struct in_addr gateway;      /* the bridge's address */
	unsigned prefixlen;
};

/* A namespace handed to a sandbox. Fields are read-only for the holder. */
struct em_netns {
	int fd;                      /* O_CLOEXEC fd of the namespace: setns(fd, CLONE_NEWNET) */
	uint64_t ino;                /* nsfs inode number: the namespace's identity */
	enum em_netns_mode mode;
	struct em_netns_veth veth;   /* EM_NETNS_BRIDGE only */
	char path[256];              /* bind mount made by em_netns_mount(); "" if none */
	/* private */
	struct em_netns_pool *pool;  /* the pool it came from, NULL if not pooled */
	struct em_netns_bridge *bridge;
	struct em_netns *next;       /* pool lists */
};

/* ---- single namespaces (no pool) ---- */

/* Create a namespace in mode NONE (lo up) synchronously on the calling thread (which ends up back in
 * its own namespace). *out is malloc'd; free it with em_netns_release(). */
int em_netns_create(struct em_netns **out, struct em_err *err);
/* Open an existing namespace by path (mode JOIN); checks that it is a network namespace. */
int em_netns_join_path(const char *path, struct em_netns **out, struct em_err *err);
/* Bind-mount the namespace at <dir>/ember-<ino> when a path is needed (OCI hooks, `ip netns`-style
 * tools). Undone when the namespace is released. dir must exist. */
int em_netns_mount(struct em_netns *ns, const char *dir, struct em_err *err);
/* Give a namespace back. Pooled namespaces are queued for asynchronous destruction (O(1) for the
 * caller); others are destroyed (or, for JOIN, just closed) here. NULL is fine. */
void em_netns_release(struct em_netns *ns);

/* Helpers that tests and the runtime share. */
/* nsfs inode of a namespace fd, or 0 on error. */
uint64_t em_netns_fd_ino(int fd);
/* Run fn(arg) on a fresh thread setns'd into nsfd, return fn's result (or a -errno of the setup). */
int em_netns_run_in(int nsfd, int (*fn)(void *arg), void *arg, struct em_err *err);
/* Create a bare namespace (nothing configured, lo down) for use as a node namespace; returns its fd. */
int em_netns_new_fd(struct em_err *err);

/* ---- bridge ("node" namespace) ---- */

struct em_netns_bridge_cfg {
	int node_nsfd;               /* namespace that holds the bridge; never the machine's own */
	const char *name;            /* bridge name, must start with "emb"; default "emb0" */
	const char *subnet;          /* IPv4 CIDR, prefix 8..30; the bridge takes the first host
				      * address; default "10.88.0.0/24" */
	const char *sandbox_ifname;  /* name of the veth end inside sandboxes; default "eth0" */
};

/* Create the bridge in the node namespace (or take the existing one of that name), give it the
 * subnet's first address and bring it up. The node fd is dup'd. */
int em_netns_bridge_open(const struct em_netns_bridge_cfg *cfg, struct em_netns_bridge **out,
			 struct em_err *err);
/* Close; delete_bridge also removes the bridge from the node namespace. Every namespace attached
 * to it must have been released (and the pools using it destroyed) first. */
void em_netns_bridge_close(struct em_netns_bridge *br, bool delete_bridge);
/* Attach a namespace to the bridge: veth pair, address, default route (what the pool does for
 * bridge mode; usable for a joined namespace too). */
int em_netns_bridge_attach(struct em_netns_bridge *br, int nsfd, struct em_netns_veth *out,
			   struct em_err *err);
/* Delete the veth pair (from the node side) and free its address. */
int em_netns_bridge_detach(struct em_netns_bridge *br, const struct em_netns_veth *veth,
			   struct em_err *err);
/* The bridge's ifindex in the node namespace and its address. */
int em_netns_bridge_ifindex(const struct em_netns_bridge *br);
struct in_addr em_netns_bridge_addr(const struct em_netns_bridge *br);

/* ---- pool of ready namespaces (in-process, multi-threaded host) ---- */

struct em_netns_pool_cfg {
	unsigned size;               /* ready namespaces to keep; default 8 */
	enum em_netns_mode mode;     /* NONE or BRIDGE */
	struct em_netns_bridge *bridge; /* BRIDGE mode: borrowed, must outlive the pool */
	int userns_fd;               /* >= 0 with in_userns: namespaces are created owned by this user
				      * namespace (an fd of /proc/<pid>/ns/user; the pool dups it). The
				      * host needs CAP_SYS_ADMIN over it (root in an ancestor user
				      * namespace). See "Pools owned by a user namespace" above. */
	bool in_userns;              /* set to use userns_fd (a zero-initialised cfg keeps namespaces
				      * owned by the host's user namespace: fd 0 is a valid fd) */
};

struct em_netns_pool_stats {
	uint64_t hits;               /* acquires served from the pool */
	uint64_t misses;             /* acquires that found it empty and created on the caller's path */
	uint64_t created;            /* namespaces created (refill and misses) */
	uint64_t destroyed;          /* namespaces destroyed after release (or at pool destroy) */
	uint64_t failures;           /* background creations that failed (last error kept) */
	unsigned ready;              /* in the pool now */
	unsigned pending_destroy;    /* released, not yet destroyed */
	pid_t helper_pid;            /* an in_userns pool's helper process while one runs, else 0 */
};

/* Start the pool and its refill thread; it fills in the background (see em_netns_pool_wait). With
 * in_userns, it also checks that userns_fd is a user namespace and returns once the helper process
 * has entered it (or with the helper's error). */
int em_netns_pool_new(const struct em_netns_pool_cfg *cfg, struct em_netns_pool **out,
		      struct em_err *err);
/* Take a ready namespace: O(1) under a mutex. If the pool is empty, creates one on the calling
 * thread (counted as a miss). */
int em_netns_pool_acquire(struct em_netns_pool *pool, struct em_netns **out, struct em_err *err);
/* Wait until at least `ready` namespaces are ready and nothing is pending destruction, or timeout.
 * Returns 0, -ETIMEDOUT, or the refill thread's last error. For tests, benchmarks, warm-up. */
int em_netns_pool_wait(struct em_netns_pool *pool, unsigned ready, int timeout_ms,
		       struct em_err *err);
void em_netns_pool_stats(struct em_netns_pool *pool, struct em_netns_pool_stats *out);
/* Change the target size; the refill thread grows or trims the pool. */
void em_netns_pool_resize(struct em_netns_pool *pool, unsigned size);
/* Stop the thread and destroy every ready and pending namespace. Namespaces still held by callers
 * stay valid: each is destroyed synchronously by its em_netns_release(), and the last one frees
 * the pool. */
void em_netns_pool_destroy(struct em_netns_pool *pool);

/* ---- pool of namespaces bind-mounted under a directory (across processes, mode NONE) ---- */

/* Make dir (mkdir -p) a shared mount of itself, like `ip netns` does for /run/netns, so that an
 * entry unmounted here is unmounted in every mount namespace that copied it. Idempotent. */
int em_netns_pool_dir_init(const char *dir, struct em_err *err);
/* Create entries until dir holds `target` ready ones; returns how many were created. Meant to run
 * off the critical path (after `ember run` has started its container, or from a timer). */
int em_netns_pool_dir_fill(const char *dir, unsigned target, struct em_err *err);
/* Claim one entry: open it, then unmount it — umount2 succeeds for one claimer only, so concurrent
 * claimers never get the same namespace — then unlink it. -ENOENT if the dir holds none. The result
 * is an unpooled NONE-mode namespace owned by the caller. */
int em_netns_pool_dir_claim(const char *dir, struct em_netns **out, struct em_err *err);
/* Number of ready entries. */
int em_netns_pool_dir_count(const char *dir, struct em_err *err);
/* Unmount and remove every entry and the dir's own mount, then the dir. */
int em_netns_pool_dir_destroy(const char *dir, struct em_err *err);

#endif
