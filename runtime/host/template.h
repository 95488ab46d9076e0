/* runtime/host/template.h — a function version's zygote template: one initialised instance of the
 * function, parked at its SDK's ready point, from which new instances are forked (clone3) straight
 * into sandboxes of their own instead of paying the exec and the init again.
 *
 * Where things live (the security argument is in README.md, "Security"):
 *   - the template runs in a user namespace of its own (root inside = one unprivileged uid outside,
 *     fnconfig.h) with CAP_SYS_ADMIN there only, in its own pid/mount/uts/ipc namespaces and a
 *     network namespace from the host's pool;
 *   - cgroups: z<seq>-<fn>/ is the template's subtree, t its own leaf, i<seq> one per forked
 *     instance (the function's limits on each). The template's uid may write cgroup.procs of
 *     z<seq>-<fn> and of the instance leaves (the kernel's rule for CLONE_INTO_CGROUP: the
 *     destination and the common ancestor), so it can place processes within its own subtree and
 *     nowhere else; limits stay root's;
 *   - network namespaces of forked instances come from a pool owned by the template's user
 *     namespace (netns.h, in_userns): joining one needs CAP_SYS_ADMIN over its owner.
 * A forked instance is an em_inst like any other (frozen when idle, billed, destroyed the same
 * way); it holds a reference on its template, because it lives in a pid namespace nested in the
 * template's: the template goes only when the version is retired and its last instance is gone.
 * If the template dies anyway, its instances die with it (the kernel ends a pid namespace with its
 * init) and the host makes a new template; forks in the meantime fall back to cold starts. */
#ifndef EMBER_RUNTIME_HOST_TEMPLATE_H
#define EMBER_RUNTIME_HOST_TEMPLATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/host/fnspec.h"

struct em_err;
struct em_inst;
struct em_inst_cfg;
struct em_fn_spec;
struct em_oci_config;
struct em_netns_pool;
struct em_netns_bridge;
struct em_tmpl;

struct em_tmpl_cfg {
	const struct em_inst_cfg *icfg;        /* the version's instances (limits, billing, names) */
	const struct em_fn_spec *spec;
	const struct em_oci_config *inst_oci;  /* the instances' config: the capabilities they keep,
						  the /proc paths they mask */
	struct em_netns_pool *host_netns;      /* the template's own namespace comes from here */
	struct em_netns_bridge *bridge;        /* bridge-mode functions: its instances' pool's */
	uid_t uid;                             /* root of its user namespace, outside */
	unsigned netns_pool;                   /* ready namespaces to keep for its instances */
	const char *image;                     /* restore it from this snapshot image instead of
						  running the init (snapshot.h); NULL: init */
	enum em_fn_restore restore;            /* how (fnspec.h) */
	bool verify;                           /* check every page's checksum (eager, lazy) */
};

/* Making a template is three steps, because the init can take seconds and the host's spawner
 * thread must not wait for it, while the processes (the template's sandbox, the pool's helper)
 * must be created by that long-lived thread (their parent-death signal is its):
 *   em_tmpl_park    (spawner)  cgroup subtree, template config, the parked sandbox;
 *   em_tmpl_init    (any)      the function's init, until READY;
 *   em_tmpl_finish  (spawner)  the network namespace pool in the template's user namespace.
 * On failure of any step, em_tmpl_retire() it. em_tmpl_abort() (any thread) kills the template,
 * so that an init under way ends at once (shutdown). */
int em_tmpl_park(const struct em_tmpl_cfg *cfg, uint64_t seq, struct em_tmpl **out,
		 struct em_err *err);
/* With cfg->image, em_tmpl_park checks the image (header, metadata, this kernel) before it makes
 * anything, and the parked sandbox executes ember's restorer (snapshot/restorer.h) instead of the
 * function: em_tmpl_init then waits for the restored template's READY (and, lazy, serves its
 * page faults from the image for as long as the template lives). */
int em_tmpl_init(struct em_tmpl *t, uint32_t timeout_ms, struct em_err *err);
int em_tmpl_finish(struct em_tmpl *t, struct em_err *err);
void em_tmpl_abort(struct em_tmpl *t);

/* A slot for one forked instance (em_inst_prepare_fork below the template's subtree); it holds a
 * reference on the template until destroyed. */
int em_tmpl_prepare(struct em_tmpl *t, uint64_t seq, struct em_inst **out, struct em_err *err);

/* Fork the slot's process (em_inst_start_forked). ENOTCONN: the template is gone. */
int em_tmpl_start(struct em_tmpl *t, struct em_inst *in, uint32_t timeout_ms, struct em_err *err);

/* Dump the ready template to a snapshot image at path (snapshot.h); it carries on afterwards. */
struct em_hsnap_stats;
int em_tmpl_snapshot(struct em_tmpl *t, const char *path, struct em_hsnap_stats *st,
		     struct em_err *err);
bool em_tmpl_restored(const struct em_tmpl *t);  /* made from an image, not by init */
/* True once for a restored template: the first instance forked from it, which the host reports
 * as "restore" (it paid for the restore); later ones are "zygote". */
bool em_tmpl_claim_restore(struct em_tmpl *t);
/* The first instance of a restored template has answered: a lazy restore records the pages it
 * needed so far (the working set the next restore prefetches). */
void em_tmpl_first_served(struct em_tmpl *t);

bool em_tmpl_alive(struct em_tmpl *t);      /* its process has not exited */
pid_t em_tmpl_pid(const struct em_tmpl *t);
uint64_t em_tmpl_init_ns(const struct em_tmpl *t);
const char *em_tmpl_name(const struct em_tmpl *t);  /* its cgroup subtree, "z<seq>-<fn>" */

/* Another owner (a thread using it without the host's lock); em_tmpl_retire drops it. */
struct em_tmpl *em_tmpl_ref(struct em_tmpl *t);

/* The owner lets go; the template is destroyed (process, pool, cgroups) when its last forked
 * instance is too. NULL is fine. */
void em_tmpl_retire(struct em_tmpl *t);

#endif
