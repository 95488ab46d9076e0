/* runtime/host/host.c — see host.h. The registry of functions and their versions, the dispatch
 * of invocations to instances, and the spawner thread that keeps pre-made sandboxes ready and
 * reaps idle instances.
 *
 * Locking: one mutex (h->lock) guards the registry, every list of instances and every counter.
 * It is never held across a system call that can wait on an instance (start, invoke, freeze,
 * destroy): a thread takes an instance off a list under the lock and owns it until it puts it
 * back. Versions are reference-counted: an invocation holds its version, so a redeploy or a
 * remove retires a version without pulling it from under an invocation.
 *
 * Why parking happens on one thread: a sandbox keeps the parent-death SIGKILL (so a host that
 * dies leaves no instance running), and Linux delivers it when the *thread* that created the
 * child exits. The API serves each connection on its own, short-lived thread; the spawner lives
 * as long as the host. */
#include "runtime/host/host.h"
#include "bpf/billing_api.h"
#include "cgroups/cgroups.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "netns/netns.h"
#include "runtime/host/fnconfig.h"
#include "runtime/host/instance.h"
#include "runtime/host/ledger.h"
#include "runtime/host/metrics.h"
#include "runtime/host/snapshot.h"
#include "runtime/host/template.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define INIT_TIMEOUT_MIN_MS 10000u  /* Lambda gives init 10 s whatever the function's timeout */
#define PIDS_MAX 1024               /* processes + threads per instance, as Lambda */
#define NETNS_POOL 4
/* Root of a template's user namespace is this uid (+ the template's number) outside: ids no
 * account on a Debian host has (useradd stops at 60000, systemd's dynamic users at 65519). */
#define TMPL_UID_BASE 2113929216u

struct version {
	struct function *fn;
	uint32_t version;
	struct em_fn_spec spec;
	struct em_oci_config oci;
	char bundle[4096];
	struct em_cg_limits limits;
	struct em_inst_cfg icfg;
	struct em_inst *idle;           /* frozen, most recently used first */
	struct em_inst *parked;         /* pre-made sandboxes */
	struct em_inst *busy;           /* running an invocation (owned by its invoking thread) */
	unsigned n_idle, n_parked, n_busy, n_starting;
	unsigned waiters;               /* invocations waiting for a parked sandbox */
	unsigned cold_running;          /* cold starts under way: the pool refills after them, so
					   a refill's clone does not take the CPU from the start */
	int refs;                       /* invocations + the registry (while current) */
	bool live;                      /* current version of a deployed function */
	bool committed;                 /* deploy finished (the pool may be filled) */
	uint64_t park_fail_gen;         /* bumped on each failed park; park_err says why */
	struct em_err park_err;
	uint64_t park_backoff_ns;       /* no background park before this time after a failure */
	/* the zygote template (template.h); parks of a version with one make fork slots */
	struct em_tmpl *tmpl;
	bool tmpl_making;               /* parked, initialising or finishing: tmpl_new */
	struct em_tmpl *tmpl_new;
	enum { TMPL_NONE, TMPL_INIT, TMPL_INITED, TMPL_FAILED } tmpl_phase;
	struct em_err tmpl_new_err;     /* TMPL_FAILED: why */
	bool tmpl_wanted;               /* a deploy waits for it (provisioned), before going live */
	unsigned cold_done;             /* cold starts finished: "auto" makes a template after one */
	unsigned tmpl_failures;         /* in a row: the next try backs off 1 s << failures */
	uint64_t tmpl_backoff_ns;
	uint64_t tmpl_fail_gen;         /* bumped on each failed template (deploy waits on it) */
	struct em_err tmpl_err;
	/* its snapshot image (snapshot.h), when spec.snapshot is not "off" */
	char snap_path[1200];
	bool snap_exists;               /* the image is there: templates are restored from it */
	bool snap_trusted;              /* this host wrote it, or restored it with its pages checked:
					   later restores skip the page checksums */
	bool tmpl_restoring;            /* tmpl_new is being restored from the image */
	struct em_hsnap_stats snap_stats; /* the last dump */
	struct em_err snap_err;         /* the last dump's or restore's failure */
	uint64_t snap_fail_gen;
	struct version *next;           /* h->versions */
};

struct function {
	char name[EM_FN_NAME_MAX + 1];
	struct version *cur;
	uint32_t last_version;
	unsigned inflight;
	bool removed;
	struct function *next;
};

struct em_host {
	char run_dir[1024], data_dir[1024], cg_parent[256];
	uint64_t capacity_mb;
	uint32_t idle_ttl_ms, pool_size;
	size_t max_payload;
	struct em_log *log;

	pthread_mutex_t lock;
	pthread_cond_t cond;            /* anything changed: parked sandbox, in-flight count */
	pthread_cond_t spawn_cond;      /* work for the spawner */
	pthread_t spawner;
	bool spawner_started, stopping;
	unsigned tmpl_threads;          /* templates' inits under way (tmpl_init_main) */

	struct function *fns;
	struct version *versions;       /* every version not yet freed */
	uint64_t used_mb;               /* memory of instances that exist (starting, busy, idle) */
	uint64_t seq;
	uint64_t req_seq;               /* invocation ids on the channel (atomic) */
	unsigned inflight;

	int lock_fd;
	struct em_cg_root *cg;
	struct em_cg_policy policy;
	struct em_netns_pool *netns;
	/* bridge mode, made at the first deploy that asks for it: a bridge in a namespace of the
	 * host's own (never the machine's), instances reach each other and the bridge only */
	int node_nsfd;
	struct em_netns_bridge *bridge;
	struct em_netns_pool *netns_bridge;
	struct em_bill *bill;
	struct em_ledger *ledger;
	struct em_metrics *metrics;
};

/* ------------------------------------------------------------------ helpers */

static struct function *find_fn(struct em_host *h, const char *name)
{
	for (struct function *f = h->fns; f; f = f->next)
		if (!f->removed && !strcmp(f->name, name))
			return f;
	return NULL;
}

static void push(struct em_inst **list, struct em_inst *in)
{
	in->next = *list;
	*list = in;
}

static struct em_inst *pop(struct em_inst **list)
{
	struct em_inst *in = *list;

	if (in)
		*list = in->next;
	return in;
}

/* Destroy a chain of instances (outside the lock). */
static void destroy_chain(struct em_inst *in)
{
	while (in) {
		struct em_inst *next = in->next;
		em_inst_destroy(in);
		in = next;
	}
}

/* Under the lock: a version stops being current. Its idle and parked instances are handed to
 * the caller for destruction; busy ones are destroyed when their invocation ends. */
static struct em_inst *retire_locked(struct em_host *h, struct version *v)
{
	struct em_inst *out = NULL, *in;

	v->live = false;
	while ((in = pop(&v->idle))) {
		h->used_mb -= in->memory_mb;
		v->n_idle--;
		push(&out, in);
	}
	while ((in = pop(&v->parked))) {
		v->n_parked--;
		push(&out, in);
	}
	if (v->tmpl) {
		/* its busy instances hold it until they end; the parked slots are in `out` */
		h->used_mb -= v->spec.memory_mb;
		em_tmpl_retire(v->tmpl);
		v->tmpl = NULL;
	}
	return out;
}

/* Under the lock: v's template died or failed a fork. Drop it (new parks are cold again, the
 * spawner makes another after a back-off); its parked slots are handed back for destruction. */
static struct em_inst *tmpl_broken_locked(struct em_host *h, struct version *v,
					  struct em_tmpl *t, const char *why)
{
	struct em_inst *out = NULL, **p = &v->parked;

	if (!t || v->tmpl != t)
		return NULL;
	em_warn(h->log, "function %s version %u: template %s %s; new instances start cold until "
		"it is re-made", v->spec.name, v->version, em_tmpl_name(t), why);
	while (*p) {
		struct em_inst *in = *p;
		if (in->tmpl == t) {
			*p = in->next;
			v->n_parked--;
			push(&out, in);
		} else {
			p = &in->next;
		}
	}
	h->used_mb -= v->spec.memory_mb;
	v->tmpl = NULL;
	v->tmpl_failures++;
	v->tmpl_backoff_ns = em_now_ns() + (1000000000ull << (v->tmpl_failures < 6 ?
							       v->tmpl_failures : 6));
	em_tmpl_retire(t);
	return out;
}

static void version_free(struct version *v)
{
	em_tmpl_retire(v->tmpl);
	em_fn_spec_free(&v->spec);
	em_oci_config_free(&v->oci);
	em_cg_limits_free(&v->limits);
	free(v);
}

/* Under the lock: drop a reference; the last one frees a retired version. */
static void version_put_locked(struct em_host *h, struct version *v)
{
	if (--v->refs > 0 || v->live)
		return;
	for (struct version **p = &h->versions; *p; p = &(*p)->next)
		if (*p == v) {
			*p = v->next;
			break;
		}
	version_free(v);
}

static void request_id(char out[40])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		memset(b, 0, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* UUID v4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

static int64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int em_host_err_status(int errnum, const char **error_type)
{
	static const struct { int code, status; const char *type; } map[] = {
		{ ENOENT, 404, "ResourceNotFound" },
		{ EINVAL, 400, "InvalidParameterValue" },
		{ EEXIST, 409, "Conflict" },
		{ EBUSY, 409, "Conflict" },
		{ EAGAIN, 429, "TooManyRequests" },
		{ ENOSPC, 503, "InsufficientCapacity" },
		{ E2BIG, 413, "RequestTooLarge" },
		{ ESHUTDOWN, 503, "ServiceUnavailable" },
	};

	if (errnum < 0)
		errnum = -errnum;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].code == errnum) {
			if (error_type)
				*error_type = map[i].type;
			return map[i].status;
		}
	if (error_type)
		*error_type = "ServiceError";
	return 500;
}

/* ------------------------------------------------------------------ the spawner */

/* Under the lock: is v's template being restored from its image? Its invocations then wait for
 * it (a restore takes tens of milliseconds; a cold start pays the whole init), and no cold
 * sandbox is parked for them. */
static bool restoring(const struct version *v)
{
	return v->tmpl_making && v->tmpl_restoring;
}

/* Under the lock: a version that invocations (or a deploy) wait for a parked sandbox of, NULL if
 * none. The spawner serves these first, then templates (tmpl_target), then pools (refill_target). */
static struct version *spawn_target(struct em_host *h)
{
	for (struct version *v = h->versions; v; v = v->next)
		if (v->waiters > v->n_parked + v->n_starting && !restoring(v))
			return v;
	return NULL;
}

/* Under the lock: a version that should get a template now. */
static struct version *tmpl_target(struct em_host *h, uint64_t now)
{
	for (struct version *v = h->versions; v; v = v->next)
		if ((v->live || v->tmpl_wanted) && !v->tmpl && !v->tmpl_making &&
		    v->spec.tmpl != EM_FN_TMPL_OFF &&
		    (v->spec.tmpl == EM_FN_TMPL_PROVISIONED || v->cold_done || v->snap_exists) &&
		    now >= v->tmpl_backoff_ns &&
		    (v->tmpl_wanted || h->used_mb + v->spec.memory_mb <= h->capacity_mb))
			return v;
	return NULL;
}

/* Under the lock: a version whose pool of parked sandboxes is short. */
static struct version *refill_target(struct em_host *h, uint64_t now)
{
	for (struct version *v = h->versions; v; v = v->next)
		if (v->live && v->committed && v->n_parked + v->n_starting < h->pool_size &&
		    now >= v->park_backoff_ns && !v->cold_running && !restoring(v))
			return v;
	return NULL;
}

/* Under the lock: idle instances past their TTL. */
static struct em_inst *expired_locked(struct em_host *h, uint64_t now)
{
	struct em_inst *out = NULL;
	uint64_t ttl = (uint64_t)h->idle_ttl_ms * 1000000ull;

	for (struct version *v = h->versions; v; v = v->next) {
		struct em_inst **p = &v->idle;

		while (*p) {
			struct em_inst *in = *p;
			if (now - in->last_used_ns >= ttl) {
				*p = in->next;
				v->n_idle--;
				h->used_mb -= in->memory_mb;
				push(&out, in);
			} else {
				p = &in->next;
			}
		}
	}
	return out;
}

static struct em_inst *make_room_locked(struct em_host *h, uint64_t mb, const struct version *keep,
				       bool *ok);

/* ---- templates: park (here), init (a thread of its own), finish (here) */

struct tmpl_job {
	struct em_host *h;
	struct version *v;
	struct em_tmpl *t;
	uint32_t timeout_ms;
};

static void *tmpl_init_main(void *arg)
{
	struct tmpl_job *j = arg;
	struct em_host *h = j->h;
	struct version *v = j->v;
	struct em_err err = { 0 }, serr = { 0 };
	struct em_hsnap_stats st = { 0 };
	int ret = em_tmpl_init(j->t, j->timeout_ms, &err), sret = 1;

	/* a template made by its init is dumped before it serves: forks wait for the dump anyway
	 * (the template holds still during it), and the image is what spares the next init */
	if (ret == 0 && !em_tmpl_restored(j->t) && v->spec.snapshot != EM_FN_SNAP_OFF) {
		sret = em_tmpl_snapshot(j->t, v->snap_path, &st, &serr);
		if (sret < 0 && v->spec.snapshot == EM_FN_SNAP_PROVISIONED) {
			ret = sret; /* the deploy promised an image */
			err = serr;
		}
	}
	pthread_mutex_lock(&h->lock);
	if (sret == 0) {
		v->snap_exists = true;
		v->snap_trusted = true;
		v->snap_stats = st;
		em_info(h->log, "function %s version %u: snapshot %s: %.1f MB (%llu pages stored, "
			"%llu zero, %llu untouched), dumped in %.1f ms", v->spec.name, v->version,
			v->snap_path, (double)st.bytes / 1048576.0, (unsigned long long)st.stored,
			(unsigned long long)st.zero, (unsigned long long)st.absent,
			st.state_ms + st.dump_ms);
	} else if (sret < 0) {
		v->snap_err = serr;
		v->snap_fail_gen++;
		em_warn(h->log, "function %s version %u: no snapshot: %s", v->spec.name,
			v->version, serr.msg);
	}
	v->tmpl_phase = ret == 0 ? TMPL_INITED : TMPL_FAILED;
	if (ret < 0)
		v->tmpl_new_err = err;
	h->tmpl_threads--;
	pthread_cond_signal(&h->spawn_cond);
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	free(j);
	return NULL;
}

/* Under the lock: a restore from v's image failed (the image was refused: another kernel or
 * binary, corrupted, truncated; or the restored template died). The image goes, so that the next
 * template runs the init and, with the policy, is dumped afresh; the message keeps the reason. */
static void snapshot_refused_locked(struct em_host *h, struct version *v, const struct em_err *err)
{
	em_warn(h->log, "function %s version %u: restore from %s failed, the image is removed and "
		"the next template runs the init: %s", v->spec.name, v->version, v->snap_path,
		err->msg);
	if (unlink(v->snap_path) < 0 && errno != ENOENT)
		em_warn(h->log, "remove %s: %s", v->snap_path, strerror(errno));
	v->snap_exists = false;
	v->snap_trusted = false;
	v->snap_err = *err;
	v->snap_fail_gen++;
}

/* Under the lock: a template could not be made. A refused restore (the image is gone now) is no
 * failure of the function: the next template runs the init at once, and a deploy waiting for a
 * template keeps waiting for that one. */
static void tmpl_failed_locked(struct em_host *h, struct version *v, const struct em_err *err,
			       bool refused_restore)
{
	h->used_mb -= v->spec.memory_mb;
	if (refused_restore) {
		v->tmpl_backoff_ns = 0;
		return;
	}
	em_warn(h->log, "function %s version %u: no template: %s", v->spec.name, v->version,
		err->msg);
	v->tmpl_err = *err;
	v->tmpl_fail_gen++;
	v->tmpl_failures++;
	v->tmpl_backoff_ns = em_now_ns() +
		(1000000000ull << (v->tmpl_failures < 6 ? v->tmpl_failures : 6));
}

/* Under the lock: park v's template and start its init on a thread of its own. */
static void tmpl_begin_locked(struct em_host *h, struct version *v)
{
	uint64_t seq = ++h->seq;
	struct em_tmpl_cfg tc = {
		.icfg = &v->icfg, .spec = &v->spec, .inst_oci = &v->oci, .host_netns = h->netns,
		.bridge = v->spec.network == EM_FN_NET_BRIDGE ? h->bridge : NULL,
		.uid = TMPL_UID_BASE + (uid_t)seq, .netns_pool = h->pool_size ? h->pool_size : 1,
		.image = v->snap_exists ? v->snap_path : NULL, .restore = v->spec.restore,
		/* an image found on disk (a restart) has its pages checked once, as it is read */
		.verify = !v->snap_trusted,
	};
	struct tmpl_job *j = calloc(1, sizeof(*j));
	struct em_tmpl *t = NULL;
	struct em_err err = { 0 };
	pthread_attr_t attr;
	pthread_t th;
	int ret;

	v->refs++;      /* until tmpl_end_locked */
	v->tmpl_making = true;
	v->tmpl_restoring = tc.image != NULL;
	if (v->tmpl_wanted) {
		/* a provisioned deploy waits for it: idle instances make room, as for a cold start */
		bool fits;
		struct em_inst *evicted = make_room_locked(h, v->spec.memory_mb, v, &fits);

		if (evicted) {
			pthread_mutex_unlock(&h->lock);
			destroy_chain(evicted);
			pthread_mutex_lock(&h->lock);
		}
	}
	h->used_mb += v->spec.memory_mb;
	if (!j) {
		ret = em_err_set(&err, ENOMEM, "template of %s", v->spec.name);
	} else if (h->used_mb > h->capacity_mb) {
		ret = em_err_msg(&err, ENOSPC, "no capacity for a %u MB template: %" PRIu64 " of %"
				 PRIu64 " MB are in use", v->spec.memory_mb,
				 h->used_mb - v->spec.memory_mb, h->capacity_mb);
	} else {
		pthread_mutex_unlock(&h->lock);
		ret = em_tmpl_park(&tc, seq, &t, &err);
		pthread_mutex_lock(&h->lock);
		if (ret < 0 && v->tmpl_restoring && !h->stopping)
			snapshot_refused_locked(h, v, &err);
	}
	if (ret == 0) {
		*j = (struct tmpl_job){ .h = h, .v = v, .t = t,
					.timeout_ms = v->spec.timeout_ms > INIT_TIMEOUT_MIN_MS ?
						v->spec.timeout_ms : INIT_TIMEOUT_MIN_MS };
		v->tmpl_new = t;
		v->tmpl_phase = TMPL_INIT;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ret = pthread_create(&th, &attr, tmpl_init_main, j);
		pthread_attr_destroy(&attr);
		if (ret == 0) {
			h->tmpl_threads++;
			return;
		}
		em_err_set(&err, ret, "template of %s: start its init thread", v->spec.name);
		v->tmpl_new = NULL;
		v->tmpl_phase = TMPL_NONE;
		ret = -ret;
	}
	free(j);
	v->tmpl_making = false;
	v->tmpl_restoring = false;
	tmpl_failed_locked(h, v, &err, tc.image && !v->snap_exists && !h->stopping);
	pthread_mutex_unlock(&h->lock);
	em_tmpl_retire(t);
	pthread_mutex_lock(&h->lock);
	version_put_locked(h, v);
	pthread_cond_broadcast(&h->cond);
}

/* Under the lock: a version whose template's init has ended. */
static struct version *tmpl_inited_locked(struct em_host *h)
{
	for (struct version *v = h->versions; v; v = v->next)
		if (v->tmpl_new && v->tmpl_phase >= TMPL_INITED)
			return v;
	return NULL;
}

/* Under the lock: finish (the pool of its network namespaces) and install v's new template,
 * or give it up. */
static void tmpl_end_locked(struct em_host *h, struct version *v)
{
	struct em_tmpl *t = v->tmpl_new, *drop = NULL;
	struct em_err err = v->tmpl_new_err;
	struct em_inst *cold = NULL, *in;
	int ret = v->tmpl_phase == TMPL_INITED ? 0 : -1;

	v->tmpl_new = NULL;
	v->tmpl_phase = TMPL_NONE;
	if (ret == 0 && !h->stopping) {
		pthread_mutex_unlock(&h->lock);
		ret = em_tmpl_finish(t, &err);
		pthread_mutex_lock(&h->lock);
	} else if (ret == 0) {
		ret = em_err_msg(&err, ESHUTDOWN, "the host is shutting down");
	}
	v->tmpl_making = false;
	if (ret < 0 && v->tmpl_restoring && !h->stopping)
		snapshot_refused_locked(h, v, &err);
	v->tmpl_restoring = false;
	if (ret < 0) {
		tmpl_failed_locked(h, v, &err, em_tmpl_restored(t) && !v->snap_exists &&
						!h->stopping);
		drop = t;
	} else if ((v->live || v->tmpl_wanted) && !h->stopping) {
		v->tmpl = t;
		v->tmpl_failures = 0;
		if (em_tmpl_restored(t) && v->spec.restore != EM_FN_RESTORE_LAZY)
			v->snap_trusted = true; /* its pages were all checked (a lazy one's as served) */
		/* the pool becomes fork slots: the cold sandboxes parked so far pay the init again */
		while ((in = pop(&v->parked))) {
			v->n_parked--;
			push(&cold, in);
		}
	} else {
		h->used_mb -= v->spec.memory_mb;
		drop = t; /* retired meanwhile: never used */
	}
	version_put_locked(h, v);
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	destroy_chain(cold);
	em_tmpl_retire(drop);
	pthread_mutex_lock(&h->lock);
}

static void *spawner_main(void *arg)
{
	struct em_host *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		uint64_t now = em_now_ns();
		struct version *v = spawn_target(h), *tv = NULL;
		struct em_inst *expired = expired_locked(h, now);

		for (struct version *d = h->versions; d && !expired; d = d->next)
			if (d->tmpl && !em_tmpl_alive(d->tmpl))
				expired = tmpl_broken_locked(h, d, d->tmpl, "died");
		if (!v && !expired && !(tv = tmpl_target(h, now)))
			v = refill_target(h, now);
		if (tv) {
			tmpl_begin_locked(h, tv);
			continue;
		}
		if ((tv = tmpl_inited_locked(h))) {
			tmpl_end_locked(h, tv);
			continue;
		}
		if (expired) {
			pthread_mutex_unlock(&h->lock);
			for (struct em_inst *in = expired; in; in = in->next)
				em_debug(h->log, "instance %s: idle for %u ms, reaped", in->name,
					 h->idle_ttl_ms);
			destroy_chain(expired);
			pthread_mutex_lock(&h->lock);
			continue;
		}
		if (v) {
			struct em_inst *in = NULL;
			struct em_err err = { 0 };
			uint64_t seq = ++h->seq;
			int ret;

			struct em_tmpl *t = v->tmpl ? em_tmpl_ref(v->tmpl) : NULL;

			v->refs++;
			v->n_starting++;
			pthread_mutex_unlock(&h->lock);
			ret = t ? em_tmpl_prepare(t, seq, &in, &err) : em_inst_park(&v->icfg, seq, &in, &err);
			em_tmpl_retire(t);
			pthread_mutex_lock(&h->lock);
			v->n_starting--;
			if (ret < 0) {
				em_warn(h->log, "%s", err.msg);
				v->park_err = err;
				v->park_fail_gen++;
				v->park_backoff_ns = em_now_ns() + 1000000000ull;
				/* nobody would take what the waiters wait for: wake them with the error */
			} else if (v->live || v->waiters) {
				push(&v->parked, in);
				v->n_parked++;
			} else {
				pthread_mutex_unlock(&h->lock);
				em_inst_destroy(in);
				pthread_mutex_lock(&h->lock);
			}
			version_put_locked(h, v);
			pthread_cond_broadcast(&h->cond);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&h->spawn_cond, &h->lock, &ts);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* Under the lock: wait for a parked sandbox of v. Fails with the spawner's error if a park
 * fails meanwhile. */
static bool has_fork_slot(const struct em_inst *in)
{
	for (; in; in = in->next)
		if (in->forked)
			return true;
	return false;
}

static int take_parked_locked(struct em_host *h, struct version *v, struct em_inst **out,
			      struct em_err *err)
{
	uint64_t gen = v->park_fail_gen;

	v->waiters++;
	pthread_cond_signal(&h->spawn_cond);
	while ((!v->parked || (restoring(v) && !has_fork_slot(v->parked))) && !h->stopping &&
	       v->park_fail_gen == gen)
		pthread_cond_wait(&h->cond, &h->lock);
	v->waiters--;
	if (v->parked) {
		/* a fork slot first: cold sandboxes parked while there was no template pay the
		 * function's init again */
		struct em_inst **p = &v->parked;

		while (*p && !(*p)->forked)
			p = &(*p)->next;
		if (!*p)
			p = &v->parked;
		*out = *p;
		*p = (*out)->next;
		v->n_parked--;
		return 0;
	}
	if (h->stopping)
		return em_err_msg(err, ESHUTDOWN, "the host is shutting down");
	/* the host failed to make a sandbox: a service error, whatever the errno was */
	*err = v->park_err;
	err->code = EIO;
	return -EIO;
}

/* ------------------------------------------------------------------ deploy and remove */

static void list_instances(json_t *a, const struct em_inst *in, const char *state)
{
	for (; in; in = in->next)
		json_array_append_new(a, json_pack("{s:s,s:s,s:i,s:i}", "id", in->name, "state", state,
						   "pid", (json_int_t)in->pid, "invocations",
						   (json_int_t)in->invocations));
}

static json_t *describe_locked(const struct function *f)
{
	const struct version *v = f->cur;
	json_t *list = json_array();

	/* the ids are the instances' cgroup names below the host's parent: what an operator
	 * looks for in /sys/fs/cgroup */
	list_instances(list, v->busy, "busy");
	list_instances(list, v->idle, "idle");
	list_instances(list, v->parked, "parked");
	json_t *tmpl = v->tmpl ?
		json_pack("{s:s,s:s,s:i,s:f,s:b}", "state", "ready", "id", em_tmpl_name(v->tmpl),
			  "pid", (json_int_t)em_tmpl_pid(v->tmpl), "initMs",
			  (double)em_tmpl_init_ns(v->tmpl) / 1e6, "restored",
			  em_tmpl_restored(v->tmpl)) :
		json_pack("{s:s,s:s?}", "state", v->tmpl_making ? v->tmpl_restoring ? "restoring" :
			  "making" : v->spec.tmpl == EM_FN_TMPL_OFF ? "off" : "none", "lastError",
			  v->tmpl_fail_gen ? v->tmpl_err.msg : NULL);
	json_t *snap = json_pack("{s:s,s:s,s:s,s:s?,s:s?}", "policy",
				 em_fn_snapshot_name(v->spec.snapshot), "restore",
				 em_fn_restore_name(v->spec.restore), "state",
				 v->spec.snapshot == EM_FN_SNAP_OFF ? "off" :
				 v->snap_exists ? "ready" : "none", "image",
				 v->snap_exists ? v->snap_path : NULL, "lastError",
				 v->snap_fail_gen ? v->snap_err.msg : NULL);
	if (v->snap_exists && v->snap_stats.bytes) {
		json_object_set_new(snap, "bytes", json_integer((json_int_t)v->snap_stats.bytes));
		json_object_set_new(snap, "dumpMs", json_real(v->snap_stats.state_ms +
							      v->snap_stats.dump_ms));
	}
	return json_pack("{s:s,s:i,s:o,s:{s:i,s:i,s:i,s:i},s:o,s:o,s:o}", "name", f->name, "version",
			 (json_int_t)v->version, "config", em_fn_spec_to_json(&v->spec), "instances",
			 "idle", (json_int_t)v->n_idle, "busy", (json_int_t)v->n_busy, "parked",
			 (json_int_t)v->n_parked, "starting", (json_int_t)v->n_starting,
			 "instanceList", list, "template", tmpl, "snapshot", snap);
}

static uint64_t reserved_mb_locked(struct em_host *h, const char *except)
{
	uint64_t sum = 0;

	for (struct function *f = h->fns; f; f = f->next)
		if (!f->removed && strcmp(f->name, except))
			sum += (uint64_t)f->cur->spec.concurrency * f->cur->spec.memory_mb;
	return sum;
}

static int version_new(struct em_host *h, const struct em_fn_spec *spec, uint32_t number,
		       struct version **out, struct em_err *err)
{
	struct version *v = calloc(1, sizeof(*v));
	int ret;

	if (!v)
		return em_err_set(err, ENOMEM, "deploy %s", spec->name);
	v->version = number;
	ret = em_fn_spec_copy(&v->spec, spec, err);
	if (ret == 0)
		ret = em_fn_oci_config(&v->spec, number, &v->oci, v->bundle, err);
	if (ret == 0)
		ret = em_cg_policy_apply(&h->policy, v->spec.memory_mb, &v->limits, err);
	if (ret < 0) {
		version_free(v);
		return ret < 0 && err->code == 0 ? -EINVAL : ret;
	}
	v->limits.pids_max.set = true;
	v->limits.pids_max.v = PIDS_MAX;
	v->icfg = (struct em_inst_cfg){
		.oci = &v->oci, .bundle = v->bundle, .fn = v->spec.name, .version = number,
		.memory_mb = v->spec.memory_mb, .limits = &v->limits, .cg_root = h->cg,
		.netns = v->spec.network == EM_FN_NET_BRIDGE ? h->netns_bridge : h->netns,
		.bill = h->bill, .log = h->log,
	};
	em_hsnap_path(h->data_dir, v->spec.name, number, v->snap_path, sizeof(v->snap_path));
	/* a restarted host finds the images its versions were dumped to */
	v->snap_exists = v->spec.snapshot != EM_FN_SNAP_OFF && access(v->snap_path, F_OK) == 0;
	*out = v;
	return 0;
}

/* Bridge mode on first use: a node namespace holding the bridge emb0 (10.88.0.0/24), and a pool
 * of namespaces attached to it. */
static int bridge_up(struct em_host *h, struct em_err *err)
{
	struct em_netns_bridge_cfg bc = { .node_nsfd = -1 };
	struct em_netns_pool_cfg pc = { .size = NETNS_POOL, .mode = EM_NETNS_BRIDGE };
	int ret = 0;

	pthread_mutex_lock(&h->lock);
	if (h->netns_bridge)
		goto out;
	h->node_nsfd = em_netns_new_fd(err);
	if (h->node_nsfd < 0) {
		ret = h->node_nsfd;
		goto out;
	}
	bc.node_nsfd = h->node_nsfd;
	ret = em_netns_bridge_open(&bc, &h->bridge, err);
	if (ret == 0) {
		pc.bridge = h->bridge;
		ret = em_netns_pool_new(&pc, &h->netns_bridge, err);
	}
	if (ret < 0) {
		if (h->bridge)
			em_netns_bridge_close(h->bridge, true);
		h->bridge = NULL;
		close(h->node_nsfd);
		h->node_nsfd = -1;
		em_err_prefix(err, "network \"bridge\": ");
	}
out:
	pthread_mutex_unlock(&h->lock);
	return ret;
}

/* Under the lock: v stops being the function's version for good (redeploy, remove): its image
 * goes (a running template does not need it; a lazy one keeps its open file). */
static void drop_image_locked(struct em_host *h, struct version *v)
{
	if (unlink(v->snap_path) == 0)
		em_info(h->log, "function %s version %u: removed its snapshot %s", v->spec.name,
			v->version, v->snap_path);
	else if (errno != ENOENT)
		em_warn(h->log, "remove %s: %s", v->snap_path, strerror(errno));
	v->snap_exists = false;
	v->snap_trusted = false;
}

/* Deploy with a given version number (restart: the persisted one) or the next one (0). */
static int deploy(struct em_host *h, const struct em_fn_spec *spec, uint32_t number, json_t **out,
		  struct em_err *err)
{
	struct version *v = NULL;
	struct function *f;
	struct em_inst *old = NULL;
	const struct em_err *fail = NULL;
	uint64_t gen;
	bool ok;
	int ret;

	if (spec->network == EM_FN_NET_BRIDGE && (ret = bridge_up(h, err)) < 0)
		return ret;
	if (spec->memory_mb > h->capacity_mb)
		return em_err_msg(err, ENOSPC, "deploy %s: memoryMb %u exceeds the node's capacity "
				  "for instances (%" PRIu64 " MB)", spec->name, spec->memory_mb,
				  h->capacity_mb);
	pthread_mutex_lock(&h->lock);
	f = find_fn(h, spec->name);
	uint32_t next = number ? number : (f ? f->last_version + 1 : 1);
	uint64_t others = reserved_mb_locked(h, spec->name);
	uint64_t mine = (uint64_t)spec->concurrency * spec->memory_mb;
	pthread_mutex_unlock(&h->lock);
	if (others + mine > h->capacity_mb)
		return em_err_msg(err, ENOSPC, "deploy %s: reserved concurrency %u x %u MB = %" PRIu64
				  " MB does not fit: %" PRIu64 " MB of the node's %" PRIu64
				  " MB are reserved by other functions", spec->name,
				  spec->concurrency, spec->memory_mb, mine, others, h->capacity_mb);

	ret = version_new(h, spec, next, &v, err);
	if (ret < 0)
		return ret;

	/* Make the first sandbox before the version goes live: a bundle that cannot start (no
	 * such program, a mount that fails) is refused here, not at its first invocation. */
	pthread_mutex_lock(&h->lock);
	if (h->stopping) {
		pthread_mutex_unlock(&h->lock);
		version_free(v);
		return em_err_msg(err, ESHUTDOWN, "the host is shutting down");
	}
	v->refs = 1;
	v->next = h->versions;
	h->versions = v;
	if (v->spec.tmpl == EM_FN_TMPL_PROVISIONED) {
		/* the template is the deploy's proof that the bundle starts (its init ran) */
		uint64_t tgen = v->tmpl_fail_gen;

		v->tmpl_wanted = true;
		pthread_cond_signal(&h->spawn_cond);
		while (!v->tmpl && !h->stopping && v->tmpl_fail_gen == tgen)
			pthread_cond_wait(&h->cond, &h->lock);
		v->tmpl_wanted = false;
		ok = v->tmpl != NULL;
		if (!ok)
			fail = &v->tmpl_err;
	} else {
		gen = v->park_fail_gen;
		v->waiters++;
		pthread_cond_signal(&h->spawn_cond);
		while (!v->parked && !h->stopping && v->park_fail_gen == gen)
			pthread_cond_wait(&h->cond, &h->lock);
		v->waiters--;
		ok = v->parked != NULL;
		if (!ok)
			fail = &v->park_err;
	}
	if (!ok) {
		struct em_inst *made = NULL;

		if (h->stopping) {
			ret = em_err_msg(err, ESHUTDOWN, "the host is shutting down");
		} else {
			*err = *fail;
			em_err_prefix(err, "deploy %s", spec->name);
			ret = -EINVAL;
			err->code = EINVAL;
		}
		made = retire_locked(h, v);
		version_put_locked(h, v);
		pthread_mutex_unlock(&h->lock);
		destroy_chain(made);
		return ret;
	}

	f = find_fn(h, spec->name);
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f) {
			old = retire_locked(h, v);
			version_put_locked(h, v);
			pthread_mutex_unlock(&h->lock);
			destroy_chain(old);
			return em_err_set(err, ENOMEM, "deploy %s", spec->name);
		}
		snprintf(f->name, sizeof(f->name), "%s", spec->name);
		f->next = h->fns;
		h->fns = f;
	} else {
		struct version *prev = f->cur;
		drop_image_locked(h, prev);
		old = retire_locked(h, prev);
		version_put_locked(h, prev);
	}
	v->fn = f;
	v->live = true;
	v->committed = true;
	f->cur = v;
	f->last_version = v->version;
	if (out)
		*out = describe_locked(f);
	pthread_cond_signal(&h->spawn_cond);
	pthread_mutex_unlock(&h->lock);
	destroy_chain(old);

	if (h->ledger && !number) {
		json_auto_t *j = em_fn_spec_to_json(&v->spec);
		cleanup_free char *text = json_dumps(j, JSON_COMPACT);
		struct em_err lerr = { 0 };

		if (!text || em_ledger_fn_put(h->ledger, spec->name, v->version, text, &lerr) < 0)
			em_warn(h->log, "deploy %s: not persisted: %s", spec->name,
				text ? lerr.msg : "out of memory");
	}
	em_info(h->log, "deployed %s version %u (%u MB, timeout %u ms)", spec->name, v->version,
		spec->memory_mb, spec->timeout_ms);
	return 0;
}

int em_host_deploy(struct em_host *h, const struct em_fn_spec *spec, json_t **out,
		   struct em_err *err)
{
	return deploy(h, spec, 0, out, err);
}

int em_host_remove(struct em_host *h, const char *name, struct em_err *err)
{
	struct function *f;
	struct em_inst *old;

	pthread_mutex_lock(&h->lock);
	f = find_fn(h, name);
	if (!f) {
		pthread_mutex_unlock(&h->lock);
		return em_err_msg(err, ENOENT, "function %s does not exist", name);
	}
	f->removed = true; /* new invocations: 404 from now on */
	while (f->inflight)
		pthread_cond_wait(&h->cond, &h->lock);
	drop_image_locked(h, f->cur);
	old = retire_locked(h, f->cur);
	version_put_locked(h, f->cur);
	for (struct function **p = &h->fns; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	pthread_mutex_unlock(&h->lock);
	free(f);
	destroy_chain(old);
	if (h->ledger) {
		struct em_err lerr = { 0 };
		if (em_ledger_fn_del(h->ledger, name, &lerr) < 0)
			em_warn(h->log, "remove %s: %s", name, lerr.msg);
	}
	em_info(h->log, "removed %s", name);
	return 0;
}

json_t *em_host_list(struct em_host *h)
{
	json_t *a = json_array();

	pthread_mutex_lock(&h->lock);
	for (struct function *f = h->fns; f; f = f->next)
		if (!f->removed)
			json_array_append_new(a, describe_locked(f));
	pthread_mutex_unlock(&h->lock);
	return a;
}

int em_host_show(struct em_host *h, const char *name, json_t **out, struct em_err *err)
{
	struct function *f;

	pthread_mutex_lock(&h->lock);
	f = find_fn(h, name);
	if (f)
		*out = describe_locked(f);
	pthread_mutex_unlock(&h->lock);
	return f ? 0 : em_err_msg(err, ENOENT, "function %s does not exist", name);
}

/* ------------------------------------------------------------------ snapshots on request */

int em_host_snapshot(struct em_host *h, const char *name, json_t **out, struct em_err *err)
{
	struct em_hsnap_stats st = { 0 };
	struct function *f;
	struct version *v;
	struct em_tmpl *t = NULL;
	int ret;

	pthread_mutex_lock(&h->lock);
	f = find_fn(h, name);
	v = f ? f->cur : NULL;
	if (!v)
		ret = em_err_msg(err, ENOENT, "function %s does not exist", name);
	else if (v->spec.snapshot == EM_FN_SNAP_OFF)
		ret = em_err_msg(err, EBUSY, "snapshot %s: its snapshot policy is \"off\" (deploy it "
				 "with \"snapshot\": \"auto\")", name);
	else if (!v->tmpl)
		ret = em_err_msg(err, EBUSY, "snapshot %s: it has no ready template to dump (the "
				 "template is %s)", name, v->tmpl_making ? "being made" : "not made yet");
	else
		ret = 0;
	if (ret == 0) {
		t = em_tmpl_ref(v->tmpl);
		v->refs++;
	}
	pthread_mutex_unlock(&h->lock);
	if (ret < 0)
		return ret;
	ret = em_tmpl_snapshot(t, v->snap_path, &st, err);
	em_tmpl_retire(t);
	pthread_mutex_lock(&h->lock);
	if (ret == 0) {
		v->snap_exists = true;
		v->snap_trusted = true;
		v->snap_stats = st;
		*out = json_pack("{s:s,s:i,s:s,s:I,s:I,s:I,s:I,s:f,s:f}", "function", name, "version",
				 (json_int_t)v->version, "image", v->snap_path, "bytes",
				 (json_int_t)st.bytes, "pagesStored", (json_int_t)st.stored,
				 "pagesZero", (json_int_t)st.zero, "pagesUntouched",
				 (json_int_t)st.absent, "stateMs", st.state_ms, "dumpMs", st.dump_ms);
	} else {
		v->snap_err = *err;
		v->snap_fail_gen++;
	}
	version_put_locked(h, v);
	pthread_mutex_unlock(&h->lock);
	if (ret == 0)
		em_info(h->log, "function %s: snapshot %s on request (%.1f MB, %.1f ms)", name,
			v->snap_path, (double)st.bytes / 1048576.0, st.state_ms + st.dump_ms);
	return ret;
}

int em_host_restore(struct em_host *h, const char *name, json_t **out, struct em_err *err)
{
	struct em_inst *slots = NULL;
	struct function *f;
	struct version *v;
	uint64_t gen;
	int ret = 0;

	pthread_mutex_lock(&h->lock);
	f = find_fn(h, name);
	v = f ? f->cur : NULL;
	if (!v)
		ret = em_err_msg(err, ENOENT, "function %s does not exist", name);
	else if (!v->snap_exists)
		ret = em_err_msg(err, EBUSY, "restore %s: version %u has no snapshot image%s", name,
				 v->version, v->spec.snapshot == EM_FN_SNAP_OFF ?
				 " (its snapshot policy is \"off\")" : "");
	else if (v->tmpl_making)
		ret = em_err_msg(err, EBUSY, "restore %s: a template is being made", name);
	if (ret < 0) {
		pthread_mutex_unlock(&h->lock);
		return ret;
	}
	v->refs++;
	if (v->tmpl) {
		/* the live template goes as if it had died, without the back-off */
		slots = tmpl_broken_locked(h, v, v->tmpl, "is replaced by a restore on request");
		v->tmpl_failures = 0;
		v->tmpl_backoff_ns = 0;
	}
	gen = v->tmpl_fail_gen;
	v->tmpl_wanted = true;
	pthread_cond_signal(&h->spawn_cond);
	pthread_mutex_unlock(&h->lock);
	destroy_chain(slots);
	pthread_mutex_lock(&h->lock);
	while (!v->tmpl && !h->stopping && v->tmpl_fail_gen == gen)
		pthread_cond_wait(&h->cond, &h->lock);
	v->tmpl_wanted = false;
	if (v->tmpl && em_tmpl_restored(v->tmpl)) {
		*out = json_pack("{s:s,s:i,s:s,s:s,s:i,s:f}", "function", name, "version",
				 (json_int_t)v->version, "image", v->snap_path, "template",
				 em_tmpl_name(v->tmpl), "pid", (json_int_t)em_tmpl_pid(v->tmpl),
				 "restoreMs", (double)em_tmpl_init_ns(v->tmpl) / 1e6);
	} else if (h->stopping) {
		ret = em_err_msg(err, ESHUTDOWN, "the host is shutting down");
	} else {
		*err = v->tmpl_fail_gen != gen ? v->tmpl_err : v->snap_err;
		em_err_prefix(err, "restore %s: ", name);
		ret = -EIO;
		err->code = EIO;
	}
	version_put_locked(h, v);
	pthread_mutex_unlock(&h->lock);
	return ret;
}

static int known(struct em_host *h, const char *name, struct em_err *err)
{
	bool ok;

	pthread_mutex_lock(&h->lock);
	ok = find_fn(h, name) != NULL;
	pthread_mutex_unlock(&h->lock);
	return ok ? 0 : em_err_msg(err, ENOENT, "function %s does not exist", name);
}

int em_host_logs(struct em_host *h, const char *name, const char *request_id, unsigned limit,
		 json_t **out, struct em_err *err)
{
	int ret = known(h, name, err);

	if (ret == 0)
		ret = em_ledger_logs(h->ledger, name, request_id, limit, out, err);
	return ret;
}

int em_host_invocations(struct em_host *h, const char *name, unsigned limit, json_t **out,
			struct em_err *err)
{
	int ret = known(h, name, err);

	if (ret == 0)
		ret = em_ledger_query(h->ledger, name, limit, out, err);
	return ret;
}

char *em_host_metrics(struct em_host *h)
{
	struct em_metrics_gauge g[64 * 3 + 8];
	char labels[64 * 3][160];
	size_t n = 0, nl = 0;
	unsigned idle = 0, busy = 0, parked = 0, starting = 0;
	struct em_netns_pool_stats ns;
	char *text;

	pthread_mutex_lock(&h->lock);
	for (struct function *f = h->fns; f && nl + 3 <= 64 * 3; f = f->next) {
		struct version *v = f->cur;
		const char *st[3] = { "idle", "busy", "parked" };
		unsigned val[3] = { v->n_idle, v->n_busy, v->n_parked };

		for (int i = 0; i < 3; i++) {
			snprintf(labels[nl], sizeof(labels[nl]), "function=\"%s\",state=\"%s\"", f->name,
				 st[i]);
			g[n++] = (struct em_metrics_gauge){ "ember_function_instances",
				"Instances of a function by state", labels[nl++], val[i] };
		}
	}
	for (struct version *v = h->versions; v; v = v->next) {
		idle += v->n_idle;
		busy += v->n_busy;
		parked += v->n_parked;
		starting += v->n_starting;
	}
	g[n++] = (struct em_metrics_gauge){ "ember_instances", "Instances on this host by state",
					    "state=\"idle\"", idle };
	g[n++] = (struct em_metrics_gauge){ "ember_instances", "Instances on this host by state",
					    "state=\"busy\"", busy };
	g[n++] = (struct em_metrics_gauge){ "ember_instances", "Instances on this host by state",
					    "state=\"parked\"", parked };
	g[n++] = (struct em_metrics_gauge){ "ember_memory_used_megabytes",
		"Memory of the instances that exist", NULL, (double)h->used_mb };
	g[n++] = (struct em_metrics_gauge){ "ember_memory_capacity_megabytes",
		"Memory the host may give instances", NULL, (double)h->capacity_mb };
	g[n++] = (struct em_metrics_gauge){ "ember_invocations_in_flight",
		"Invocations running now", NULL, h->inflight };
	pthread_mutex_unlock(&h->lock);
	em_netns_pool_stats(h->netns, &ns);
	g[n++] = (struct em_metrics_gauge){ "ember_netns_pool_ready",
		"Network namespaces ready in the pool", NULL, ns.ready };
	g[n++] = (struct em_metrics_gauge){ "ember_netns_pool_misses_total",
		"Acquires that found the network namespace pool empty", NULL, (double)ns.misses };
	text = em_metrics_render(h->metrics, g, n);
	return text;
}

/* ------------------------------------------------------------------ invoke */

static const char *start_name(enum em_bill_start s)
{
	switch (s) {
	case EM_BILL_START_WARM: return "warm";
	case EM_BILL_START_ZYGOTE: return "zygote";
	case EM_BILL_START_RESTORE: return "restore";
	default: return "cold";
	}
}

static void set_error(struct em_invoke_result *res, int status, const char *type, const char *msg,
		      const char *fn_json)
{
	json_auto_t *j = json_pack("{s:s,s:s}", "errorType", type, "errorMessage", msg);

	if (fn_json) {
		json_auto_t *fj = json_loads(fn_json, 0, NULL);
		json_t *t = json_object_get(fj, "errorType"), *m = json_object_get(fj, "errorMessage");
		if (t)
			json_object_set(j, "functionErrorType", t);
		if (m)
			json_object_set(j, "functionErrorMessage", m);
	}
	res->status = status;
	res->error_type = type;
	free(res->body);
	res->body = json_dumps(j, JSON_COMPACT);
	res->len = res->body ? strlen(res->body) : 0;
}

/* Under the lock: make room for `mb` more by reaping idle instances (least recently used
 * first), then templates that no instance uses (never `keep`'s: the version that asks). A
 * template goes the way a dead one does: new instances start cold, and "auto" makes it again
 * when there is room. Returns the chain to destroy; *ok says whether it fits now. */
static struct em_inst *make_room_locked(struct em_host *h, uint64_t mb, const struct version *keep,
				       bool *ok)
{
	struct em_inst *out = NULL;

	while (h->used_mb + mb > h->capacity_mb) {
		struct version *vb = NULL;
		struct em_inst **pb = NULL;

		for (struct version *v = h->versions; v; v = v->next)
			for (struct em_inst **p = &v->idle; *p; p = &(*p)->next)
				if (!pb || (*p)->last_used_ns < (*pb)->last_used_ns) {
					pb = p;
					vb = v;
				}
		if (pb) {
			struct em_inst *in = *pb;
			*pb = in->next;
			vb->n_idle--;
			h->used_mb -= in->memory_mb;
			push(&out, in);
			continue;
		}
		for (struct version *v = h->versions; v && !vb; v = v->next)
			if (v != keep && v->tmpl && !v->n_busy && !v->n_idle)
				vb = v;
		if (!vb)
			break;
		struct em_inst *slots = tmpl_broken_locked(h, vb, vb->tmpl, "evicted to make room");
		while (slots) {
			struct em_inst *next = slots->next;
			push(&out, slots);
			slots = next;
		}
	}
	*ok = h->used_mb + mb <= h->capacity_mb;
	return out;
}

/* A fork from the template failed (*in is the dead slot, busy): drop the template and start
 * this invocation cold instead. On success *in is a parked cold sandbox (or a slot of a template
 * re-made meanwhile, then already started) and *start says which. */
static int zygote_fallback(struct em_host *h, struct version *v, struct em_inst **in,
			   enum em_bill_start *start, struct em_err *err, struct em_err *ierr)
{
	struct em_inst *old = *in, *slots, *fresh = NULL;
	int ret;

	pthread_mutex_lock(&h->lock);
	slots = tmpl_broken_locked(h, v, old->tmpl, ierr->msg);
	for (struct em_inst **p = &v->busy; *p; p = &(*p)->next)
		if (*p == old) {
			*p = old->next;
			break;
		}
	ret = take_parked_locked(h, v, &fresh, err);
	if (ret == 0)
		push(&v->busy, fresh);
	else
		push(&v->busy, old); /* the caller's error path takes it off */
	pthread_mutex_unlock(&h->lock);
	destroy_chain(slots);
	if (ret < 0) {
		*ierr = *err;
		return ret;
	}
	em_inst_destroy(old);
	*in = fresh;
	*start = fresh->forked ? EM_BILL_START_ZYGOTE : EM_BILL_START_COLD;
	if (*start == EM_BILL_START_ZYGOTE)
		ret = em_tmpl_start(fresh->tmpl, fresh, INIT_TIMEOUT_MIN_MS, ierr);
	return ret;
}

int em_host_invoke(struct em_host *h, const char *name, const void *body, size_t len,
		   struct em_invoke_result *res, struct em_err *err)
{
	uint64_t t0 = em_now_ns(), tm[8] = { 0 }; /* phase ends, for the debug log */
	int64_t arrival_ms = realtime_ms();
	struct em_inst *in = NULL, *evicted = NULL;
	struct function *f;
	struct version *v;
	enum em_bill_start start;
	struct em_bill_record rec;
	struct em_inst_reply reply = { 0 };
	const char *outcome = "ok";
	cleanup_free char *log = NULL;
	size_t log_len = 0;
	bool fits, alive = false;
	int ret;

	memset(res, 0, sizeof(*res));
	memset(&rec, 0, sizeof(rec));
	if (len > h->max_payload)
		return em_err_msg(err, E2BIG, "invoke %s: the payload is %zu bytes, over the limit of "
				  "%zu bytes", name, len, h->max_payload);

	pthread_mutex_lock(&h->lock);
	if (h->stopping) {
		pthread_mutex_unlock(&h->lock);
		return em_err_msg(err, ESHUTDOWN, "the host is shutting down");
	}
	f = find_fn(h, name);
	if (!f) {
		pthread_mutex_unlock(&h->lock);
		return em_err_msg(err, ENOENT, "function %s does not exist", name);
	}
	v = f->cur;
	if (v->spec.concurrency && f->inflight >= v->spec.concurrency) {
		pthread_mutex_unlock(&h->lock);
		return em_err_msg(err, EAGAIN, "function %s: %u invocations in flight, its reserved "
				  "concurrency is %u", name, f->inflight, v->spec.concurrency);
	}
	v->refs++;
	f->inflight++;
	h->inflight++;
	in = pop(&v->idle);
	if (in) {
		v->n_idle--;
		start = EM_BILL_START_WARM;
	} else {
		start = EM_BILL_START_COLD;
		evicted = make_room_locked(h, v->spec.memory_mb, v, &fits);
		if (!fits) {
			ret = em_err_msg(err, ENOSPC, "invoke %s: no capacity for another %u MB "
					 "instance: %" PRIu64 " of %" PRIu64 " MB are in use by busy "
					 "instances", name, v->spec.memory_mb, h->used_mb,
					 h->capacity_mb);
			goto fail_locked;
		}
		h->used_mb += v->spec.memory_mb;
		ret = take_parked_locked(h, v, &in, err);
		if (ret < 0) {
			h->used_mb -= v->spec.memory_mb;
			em_err_prefix(err, "invoke %s: ", name);
			goto fail_locked;
		}
		if (in->forked)
			start = em_tmpl_claim_restore(in->tmpl) ? EM_BILL_START_RESTORE :
								  EM_BILL_START_ZYGOTE;
		v->cold_running++;
	}
	v->n_busy++;
	push(&v->busy, in);
	pthread_mutex_unlock(&h->lock);
	destroy_chain(evicted);
	evicted = NULL;

	tm[0] = em_now_ns();
	request_id(res->request_id);
	res->start = start_name(start);
	if (start == EM_BILL_START_WARM) {
		ret = em_inst_thaw(in, err);
		if (ret < 0) {
			em_warn(h->log, "instance %s: %s", in->name, err->msg);
			set_error(res, 500, "ServiceError", err->msg, NULL);
			outcome = "crash";
			goto done;
		}
	} else {
		uint32_t init_to = v->spec.timeout_ms > INIT_TIMEOUT_MIN_MS ? v->spec.timeout_ms :
									       INIT_TIMEOUT_MIN_MS;
		struct em_err ierr = { 0 };

		if ((start == EM_BILL_START_ZYGOTE || start == EM_BILL_START_RESTORE) &&
		    (ret = em_tmpl_start(in->tmpl, in, init_to, &ierr)) < 0)
			ret = zygote_fallback(h, v, &in, &start, err, &ierr);
		/* the first instance of a restored template paid for the restore: its start is
		 * the restore plus the fork */
		if (ret == 0 && start == EM_BILL_START_RESTORE)
			in->init_ns += em_tmpl_init_ns(in->tmpl);
		if (start == EM_BILL_START_COLD)
			ret = em_inst_start(in, init_to, &ierr);
		res->start = start_name(start);
		res->init_ms = (double)in->init_ns / 1e6;
		if (ret < 0) {
			set_error(res, 502, "Function.InitError", ierr.msg, NULL);
			outcome = "init_error";
			goto done;
		}
	}

	/* dispatch: the billing window brackets exactly the request's time in the instance */
	{
		char meta[512];
		struct em_bill_window_opts wo = { .start = start,
						  .init_ns = start != EM_BILL_START_WARM ? in->init_ns : 0 };
		uint64_t deadline = em_now_ns() + (uint64_t)v->spec.timeout_ms * 1000000ull;
		struct em_err berr = { 0 };
		bool window = false;

		snprintf(meta, sizeof(meta), "{\"requestId\":\"%s\",\"function\":\"%s\",\"version\":%u,"
			 "\"memoryMb\":%u,\"deadlineMs\":%" PRId64 "}", res->request_id, name,
			 v->version, v->spec.memory_mb, realtime_ms() + v->spec.timeout_ms);
		tm[1] = em_now_ns();
		if (h->bill) {
			if (em_bill_window_open(h->bill, in->cgid, &wo, &berr) == 0)
				window = true;
			else
				em_warn(h->log, "instance %s: billing: %s", in->name, berr.msg);
		}
		tm[2] = em_now_ns();
		ret = em_inst_invoke(in, __atomic_add_fetch(&h->req_seq, 1, __ATOMIC_RELAXED), meta, body, len, deadline, &reply,
				     err);
		tm[3] = em_now_ns();
		if (window && em_bill_window_close(h->bill, in->cgid, &rec, &berr) < 0)
			em_warn(h->log, "instance %s: billing: %s", in->name, berr.msg);
		if (ret < 0) {
			set_error(res, 500, "ServiceError", err->msg, NULL);
			outcome = "crash";
			goto done;
		}
	}
	switch (reply.outcome) {
	case EM_OUT_OK:
		res->status = 200;
		res->body = reply.body;
		res->len = reply.len;
		reply.body = NULL;
		alive = true;
		break;
	case EM_OUT_ERROR: {
		json_auto_t *fj = json_loads(reply.body ? reply.body : "", 0, NULL);
		const char *m = json_string_value(json_object_get(fj, "errorMessage"));
		const char *t = json_string_value(json_object_get(fj, "errorType"));
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s: %s", t ? t : "Error", m ? m : "");
		set_error(res, 502, "Function.Error", msg, reply.body);
		outcome = "error";
		alive = true;
		break;
	}
	case EM_OUT_TIMEOUT: {
		char msg[128];

		snprintf(msg, sizeof(msg), "timed out after %u ms", v->spec.timeout_ms);
		set_error(res, 504, "Function.Timeout", msg, NULL);
		outcome = "timeout";
		break;
	}
	case EM_OUT_DIED: {
		char why[256], msg[320];

		em_inst_describe_end(in, why, sizeof(why));
		if (in->end == EM_INST_OOM) {
			set_error(res, 502, "Function.OutOfMemory", why, NULL);
			outcome = "oom";
		} else {
			snprintf(msg, sizeof(msg), "the function %s", why);
			set_error(res, 502, "Function.Crashed", msg, NULL);
			outcome = "crash";
		}
		break;
	}
	}
	if (alive && start == EM_BILL_START_RESTORE)
		em_tmpl_first_served(in->tmpl);
	if (rec.cgid) {
		res->duration_ms = (double)rec.wall_ns / 1e6;
		res->billed_ms = rec.billed_ms;
		res->cpu_ms = (double)rec.cpu_ns / 1e6;
		res->max_memory_mb = (rec.mem_peak_bytes + (1 << 20) - 1) >> 20;
	} else {
		/* without billing: the host's own measure of the request in the instance */
		res->duration_ms = (double)(em_now_ns() - t0) / 1e6;
		res->billed_ms = (uint64_t)ceil(res->duration_ms);
	}

done:
	free(reply.body);
	tm[4] = em_now_ns();
	log = em_inst_take_log(in, &log_len);
	if (alive) {
		struct em_err ferr = { 0 };
		if (em_inst_freeze(in, &ferr) < 0) {
			em_warn(h->log, "instance %s: %s", in->name, ferr.msg);
			alive = false;
		}
	}
	pthread_mutex_lock(&h->lock);
	v->n_busy--;
	for (struct em_inst **p = &v->busy; *p; p = &(*p)->next)
		if (*p == in) {
			*p = in->next;
			break;
		}
	if (alive && v->live && !h->stopping) {
		push(&v->idle, in);
		v->n_idle++;
		in = NULL;
	} else {
		h->used_mb -= in->memory_mb;
	}
	f->inflight--;
	h->inflight--;
	if (start != EM_BILL_START_WARM) {
		if (start == EM_BILL_START_COLD && alive)
			v->cold_done++; /* "auto" templates are made after this */
		v->cold_running--;
		pthread_cond_signal(&h->spawn_cond); /* refill the pool now */
	}
	version_put_locked(h, v);
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	em_inst_destroy(in);

	tm[5] = em_now_ns();
	uint64_t latency = em_now_ns() - t0;
	if (h->ledger) {
		struct em_ledger_rec lr = {
			.request_id = res->request_id, .function = name, .version = v->version,
			.time_ms = arrival_ms, .start = res->start, .outcome = outcome,
			.error_type = res->error_type, .init_ns = start != EM_BILL_START_WARM ?
				(uint64_t)(res->init_ms * 1e6) : 0,
			.wall_ns = rec.cgid ? rec.wall_ns : (uint64_t)(res->duration_ms * 1e6),
			.cpu_ns = rec.cpu_ns, .billed_ms = res->billed_ms,
			.memory_mb = v->spec.memory_mb, .mem_peak_bytes = rec.mem_peak_bytes,
			.mb_ms = (uint64_t)v->spec.memory_mb * res->billed_ms, .latency_ns = latency,
			.bill_flags = rec.flags, .log = log, .log_len = log_len,
		};
		struct em_err lerr = { 0 };
		if (em_ledger_add(h->ledger, &lr, &lerr) < 0)
			em_error(h->log, "invoke %s %s: billing record not stored: %s", name,
				 res->request_id, lerr.msg);
	}
	em_metrics_invocation(h->metrics, name, res->start, outcome, (double)latency / 1e9,
			      res->init_ms / 1e3, res->billed_ms, res->cpu_ms / 1e3);
	tm[6] = em_now_ns();
	/* where the time went: dispatch, start (thaw or exec+init), window open, in the instance,
	 * window close, freeze+put back, ledger+metrics */
	em_debug(h->log, "invoke %s %s: %s %s %.3f ms (dispatch %.3f start %.3f open %.3f run %.3f "
		 "close %.3f freeze %.3f record %.3f)", name, res->request_id, res->start, outcome,
		 (double)(tm[6] - t0) / 1e6, (double)(tm[0] - t0) / 1e6,
		 tm[1] ? (double)(tm[1] - tm[0]) / 1e6 : 0, tm[2] ? (double)(tm[2] - tm[1]) / 1e6 : 0,
		 tm[3] ? (double)(tm[3] - tm[2]) / 1e6 : 0, tm[4] && tm[3] ? (double)(tm[4] - tm[3]) / 1e6 : 0,
		 tm[4] ? (double)(tm[5] - tm[4]) / 1e6 : 0, (double)(tm[6] - tm[5]) / 1e6);
	return 0;

fail_locked:
	f->inflight--;
	h->inflight--;
	version_put_locked(h, v);
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	destroy_chain(evicted);
	return ret;
}

void em_invoke_result_free(struct em_invoke_result *res)
{
	free(res->body);
	res->body = NULL;
}

/* ------------------------------------------------------------------ start and stop */

static uint64_t default_capacity_mb(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	uint64_t mb = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz >> 20 : 4096;

	return mb > 2048 ? mb - 1024 : mb / 2;
}

/* Only one host per run directory: the lock file holds the owner's pid. */
static int take_lock(struct em_host *h, struct em_err *err)
{
	char path[1100], pid[32];

	snprintf(path, sizeof(path), "%s/serve.lock", h->run_dir);
	h->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (h->lock_fd < 0)
		return em_err_set(err, errno, "open %s", path);
	if (flock(h->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t n = pread(h->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		return em_err_msg(err, EBUSY, "another ember serve (pid %s) holds %s",
				  n > 0 ? pid : "?", path);
	}
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(h->lock_fd, 0) < 0 || pwrite(h->lock_fd, pid, (size_t)n, 0) != n)
		return em_err_set(err, errno, "write %s", path);
	return 0;
}

/* Re-deploy what the ledger says was deployed (the host restarted). */
static void restore_functions(struct em_host *h)
{
	json_auto_t *all = NULL;
	struct em_err err = { 0 };
	size_t i;
	json_t *e;

	if (em_ledger_fn_all(h->ledger, &all, &err) < 0) {
		em_error(h->log, "deployed functions not restored: %s", err.msg);
		return;
	}
	size_t n_keep = json_array_size(all), k = 0;
	char **keep = calloc(n_keep + 1, sizeof(char *));

	json_array_foreach(all, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		json_t *sj = json_object_get(e, "spec");
		uint32_t version = (uint32_t)json_integer_value(json_object_get(e, "version"));
		struct em_fn_spec spec;

		/* a function that fails to come back now keeps its image for the next start */
		if (keep && name && asprintf(&keep[k], "%s-v%u.img", name, version ? version : 1) > 0)
			k++;

		memset(&spec, 0, sizeof(spec));
		memset(&err, 0, sizeof(err));
		if (!name || !sj || em_fn_spec_from_json(name, sj, &spec, &err) < 0 ||
		    deploy(h, &spec, version ? version : 1, NULL, &err) < 0)
			em_error(h->log, "function %s not restored: %s", name ? name : "?",
				 err.code ? err.msg : "bad record");
		em_fn_spec_free(&spec);
	}
	if (keep)
		em_hsnap_sweep(h->data_dir, keep, k, h->log);
	for (size_t j = 0; keep && j < k; j++)
		free(keep[j]);
	free(keep);
}

int em_host_new(const struct em_host_cfg *cfg, struct em_host **out, struct em_err *err)
{
	struct em_host *h = calloc(1, sizeof(*h));
	struct em_netns_pool_cfg ncfg = { .size = NETNS_POOL, .mode = EM_NETNS_NONE };
	char path[1200];
	int ret;

	if (!h)
		return em_err_set(err, ENOMEM, "host");
	h->lock_fd = -1;
	h->node_nsfd = -1;
	snprintf(h->run_dir, sizeof(h->run_dir), "%s", cfg->run_dir ? cfg->run_dir : "/run/ember/serve");
	snprintf(h->data_dir, sizeof(h->data_dir), "%s", cfg->data_dir ? cfg->data_dir : "/var/lib/ember");
	snprintf(h->cg_parent, sizeof(h->cg_parent), "%s",
		 cfg->cgroup_parent ? cfg->cgroup_parent : "ember-serve");
	h->capacity_mb = cfg->capacity_mb ? cfg->capacity_mb : default_capacity_mb();
	h->idle_ttl_ms = cfg->idle_ttl_ms ? cfg->idle_ttl_ms : 600000;
	h->pool_size = cfg->pool_size ? cfg->pool_size : 1;
	h->max_payload = cfg->max_payload ? cfg->max_payload : 6u * 1024 * 1024;
	h->log = cfg->log;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	pthread_cond_init(&h->spawn_cond, NULL);
	em_cg_policy_default(&h->policy);

	if ((ret = em_mkdir_p(h->run_dir, 0700, err)) < 0 ||
	    (ret = em_mkdir_p(h->data_dir, 0700, err)) < 0 || (ret = take_lock(h, err)) < 0 ||
	    (ret = em_hsnap_dir(h->data_dir, err)) < 0)
		goto fail;
	ret = em_cg_root_open(&h->cg, h->cg_parent, h->log, err);
	if (ret < 0)
		goto fail;
	/* a previous host that was killed left its instances: none of them is ours to keep */
	ret = em_cg_reap_children(h->cg, err);
	if (ret < 0)
		goto fail;
	if (ret > 0)
		em_warn(h->log, "removed %d instance cgroup%s a previous host left behind", ret,
			ret > 1 ? "s" : "");
	ret = em_netns_pool_new(&ncfg, &h->netns, err);
	if (ret < 0)
		goto fail;
	if (!cfg->no_billing) {
		struct em_bill_opts bo = { .log = h->log };
		ret = em_bill_open(&h->bill, &bo, err);
		if (ret < 0) {
			em_err_prefix(err, "billing (run with --no-billing to serve without it): ");
			goto fail;
		}
	} else {
		em_warn(h->log, "billing is off (--no-billing): durations are the host's, no CPU time");
	}
	snprintf(path, sizeof(path), "%s/ledger.db", h->data_dir);
	ret = em_ledger_open(path, &h->ledger, err);
	if (ret < 0)
		goto fail;
	h->metrics = em_metrics_new();
	if (!h->metrics) {
		ret = em_err_set(err, ENOMEM, "metrics");
		goto fail;
	}
	ret = pthread_create(&h->spawner, NULL, spawner_main, h);
	if (ret) {
		ret = em_err_set(err, ret, "start the spawner thread");
		goto fail;
	}
	h->spawner_started = true;
	restore_functions(h);
	*out = h;
	return 0;
fail:
	em_host_free(h);
	return ret < 0 ? ret : -EINVAL;
}

void em_host_stop(struct em_host *h)
{
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_cond_broadcast(&h->cond);
	pthread_cond_broadcast(&h->spawn_cond);
	pthread_mutex_unlock(&h->lock);
}

void em_host_free(struct em_host *h)
{
	struct em_inst *all = NULL;
	struct em_err err = { 0 };

	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_cond_broadcast(&h->cond);
	pthread_cond_broadcast(&h->spawn_cond);
	while (h->inflight)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
	if (h->spawner_started)
		pthread_join(h->spawner, NULL);
	/* the spawner starts no template any more; an init under way would hold the shutdown for
	 * seconds: end it, wait for its thread, then let the template go */
	pthread_mutex_lock(&h->lock);
	for (struct version *v = h->versions; v; v = v->next)
		if (v->tmpl_new && v->tmpl_phase == TMPL_INIT)
			em_tmpl_abort(v->tmpl_new);
	while (h->tmpl_threads)
		pthread_cond_wait(&h->cond, &h->lock);
	/* tmpl_end_locked may free v (a retired version's last reference): start over after each */
	for (struct version *v = h->versions; v;) {
		if (v->tmpl_new) {
			tmpl_end_locked(h, v);
			v = h->versions;
			continue;
		}
		v = v->next;
	}
	pthread_mutex_unlock(&h->lock);

	pthread_mutex_lock(&h->lock);
	while (h->fns) {
		struct function *f = h->fns;
		struct em_inst *old = retire_locked(h, f->cur);

		while (old) {
			struct em_inst *next = old->next;
			push(&all, old);
			old = next;
		}
		version_put_locked(h, f->cur);
		h->fns = f->next;
		free(f);
	}
	while (h->versions) { /* retired, with no invocation left */
		struct version *v = h->versions;
		h->versions = v->next;
		version_free(v);
	}
	pthread_mutex_unlock(&h->lock);
	destroy_chain(all);

	if (h->netns)
		em_netns_pool_destroy(h->netns);
	if (h->netns_bridge)
		em_netns_pool_destroy(h->netns_bridge);
	if (h->bridge)
		em_netns_bridge_close(h->bridge, true);
	if (h->node_nsfd >= 0)
		close(h->node_nsfd);
	if (h->cg) {
		if (em_cg_reap_children(h->cg, &err) < 0)
			em_warn(h->log, "%s", err.msg);
		em_cg_root_close(h->cg);
	}
	em_bill_close(h->bill);
	if (h->ledger)
		em_ledger_close(h->ledger);
	if (h->metrics)
		em_metrics_free(h->metrics);
	if (h->lock_fd >= 0)
		close(h->lock_fd);
	pthread_cond_destroy(&h->spawn_cond);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
