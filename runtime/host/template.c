/* runtime/host/template.c — see template.h. */
#include "runtime/host/template.h"
#include "cgroups/cgroups.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "netns/netns.h"
#include "runtime/host/fnconfig.h"
#include "runtime/host/fnspec.h"
#include "runtime/host/instance.h"
#include "runtime/host/snapshot.h"
#include "runtime/oci_json.h"
#include "sdk/c/ember_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct em_tmpl {
	struct em_inst *inst;           /* the template process (an instance in its userns) */
	struct em_cg *dir;              /* z<seq>-<fn>: its subtree */
	struct em_netns_pool *pool;     /* its instances' namespaces, owned by its userns */
	struct em_netns_pool_cfg pool_cfg;
	struct em_oci_config oci;       /* the template config */
	char bundle[4096];
	struct em_inst_cfg icfg;        /* the template's own (its cgroup, the host's netns) */
	const struct em_inst_cfg *inst_icfg;
	char dir_path[128], t_path[160];
	uid_t uid;
	struct ember_fork_req req;      /* what every FORK says */
	char *paths;
	pthread_mutex_t lock;           /* one FORK at a time on its channel */
	int refs;                       /* the owner + each slot (atomic) */
	struct em_log *log;
	/* made from a snapshot image (em_tmpl_cfg.image) */
	bool restored;
	bool restore_claimed;           /* the first fork reported "restore" (atomic) */
	enum em_fn_restore restore;
	bool verify;
	char image[4096];
	struct em_hsnap_lazy *lazy;     /* lazy restores: the server of its page faults */
};

/* The masked and read-only paths of the instance config below /proc, as FORK carries them. */
static int fork_paths(struct em_tmpl *t, const struct em_oci_config *oci)
{
	const struct em_strv *lists[2] = { &oci->linux_.masked_paths,
					   &oci->linux_.readonly_paths };
	size_t len = 0, cap = 1;

	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < lists[k]->n; i++)
			cap += strlen(lists[k]->v[i]) + 2;
	t->paths = malloc(cap);
	if (!t->paths)
		return -ENOMEM;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < lists[k]->n; i++) {
			const char *p = lists[k]->v[i];
			if (strncmp(p, "/proc/", 6) || len + strlen(p) + 2 > EMBER_FORK_MAX_PATHS)
				continue;
			len += (size_t)sprintf(t->paths + len, "%c%s", k ? 'r' : 'm', p) + 1;
		}
	t->req.paths_len = (uint32_t)len;
	return 0;
}

static void tmpl_free(struct em_tmpl *t)
{
	struct em_err err = { 0 };

	if (t->inst)
		em_inst_destroy(t->inst);
	em_hsnap_lazy_stop(t->lazy); /* after the process: no fault is left to serve */
	if (t->pool)
		em_netns_pool_destroy(t->pool);
	if (t->dir && em_cg_destroy(t->dir, true, &err) < 0) {
		em_warn(t->log, "template %s: %s", t->dir_path, err.msg);
		em_cg_close(t->dir);
	}
	em_oci_config_free(&t->oci);
	free(t->paths);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void unref(void *arg)
{
	struct em_tmpl *t = arg;

	if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
		tmpl_free(t);
}

/* Park a sandbox that executes the restorer on the image: the template config, with the
 * restorer as its program and the image, the restorer and (lazy) /dev/userfaultfd as fds 4-6. */
static int restore_park(struct em_tmpl *t, const struct em_tmpl_cfg *cfg, uint64_t seq,
			struct em_err *err)
{
	struct em_hsnap_restore r;
	int ret;

	ret = em_hsnap_restore_prepare(cfg->image, cfg->restore, cfg->verify, &r, err);
	if (ret < 0)
		return em_err_prefix(err, "template %s: ", t->dir_path);
	oci_strv_free(&t->oci.process.args);
	t->oci.process.args.v = r.argv;
	t->oci.process.args.n = r.argc;
	r.argv = NULL;
	t->icfg.extra_fds = r.fds;
	t->icfg.n_extra_fds = EM_HSNAP_RESTORE_NFDS;
	ret = em_inst_park(&t->icfg, seq, &t->inst, err);
	t->icfg.extra_fds = NULL;
	t->icfg.n_extra_fds = 0;
	em_hsnap_restore_release(&r);
	if (ret < 0)
		return ret;
	t->restored = true;
	t->restore = cfg->restore;
	t->verify = cfg->verify;
	snprintf(t->image, sizeof(t->image), "%s", cfg->image);
	return 0;
}

int em_tmpl_park(const struct em_tmpl_cfg *cfg, uint64_t seq, struct em_tmpl **out,
		 struct em_err *err)
{
	const struct em_inst_cfg *ic = cfg->icfg;
	struct em_tmpl *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return em_err_set(err, ENOMEM, "template of %s", ic->fn);
	pthread_mutex_init(&t->lock, NULL);
	t->refs = 1;
	t->uid = cfg->uid;
	t->log = ic->log;
	t->inst_icfg = ic;
	t->pool_cfg = (struct em_netns_pool_cfg){ .size = cfg->netns_pool,
						  .mode = cfg->bridge ? EM_NETNS_BRIDGE :
									EM_NETNS_NONE,
						  .bridge = cfg->bridge, .in_userns = true };
	snprintf(t->dir_path, sizeof(t->dir_path), "z%llu-%s", (unsigned long long)seq, ic->fn);
	snprintf(t->t_path, sizeof(t->t_path), "%s/t", t->dir_path);
	t->req.tmp_mb = cfg->spec->tmp_mb ? cfg->spec->tmp_mb : EM_FN_TMP_DEFAULT_MB;
	t->req.keep_caps = cfg->inst_oci->process.caps[EM_CAP_PERMITTED];
	if (fork_paths(t, cfg->inst_oci) < 0) {
		ret = em_err_set(err, ENOMEM, "template of %s", ic->fn);
		goto fail;
	}
	ret = em_fn_template_config(cfg->spec, ic->version, cfg->uid, &t->oci, t->bundle, err);
	if (ret < 0)
		goto fail;
	ret = em_cg_create(ic->cg_root, t->dir_path, NULL, &t->dir, err);
	if (ret == 0)
		ret = em_cg_delegate_procs(t->dir, cfg->uid, cfg->uid, err);
	if (ret < 0) {
		em_err_prefix(err, "template %s: ", t->dir_path);
		goto fail;
	}
	t->icfg = *ic;
	t->icfg.oci = &t->oci;
	t->icfg.bundle = t->bundle;
	t->icfg.netns = cfg->host_netns;
	t->icfg.bill = NULL; /* nobody is billed for a template's time */
	t->icfg.cg_path = t->t_path;
	if (cfg->image) {
		ret = restore_park(t, cfg, seq, err);
		if (ret < 0)
			goto fail;
		*out = t;
		return 0;
	}
	ret = em_inst_park(&t->icfg, seq, &t->inst, err);
	if (ret < 0)
		goto fail;
	*out = t;
	return 0;
fail:
	tmpl_free(t);
	return ret;
}

/* A lazy restore's userfaultfd: the host's half (snapshot.h), then the restorer goes on. */
static int serve_uffd(void *arg, int uffd, struct em_err *err)
{
	struct em_tmpl *t = arg;

	if (t->restore != EM_FN_RESTORE_LAZY)
		return em_err_msg(err, EPROTO, "a %s restore sent a userfaultfd",
				  em_fn_restore_name(t->restore));
	return em_hsnap_lazy_start(t->image, uffd, t->verify, &t->lazy, err);
}

int em_tmpl_init(struct em_tmpl *t, uint32_t timeout_ms, struct em_err *err)
{
	size_t l = 0;
	char *text;
	int ret;

	if (!t->restored) {
		ret = em_inst_start(t->inst, timeout_ms, err);
	} else {
		struct em_inst_uffd_cb cb = { .fn = serve_uffd, .arg = t };

		ret = em_inst_start_restored(t->inst, timeout_ms, &cb, err);
		if (ret == 0 && t->restore == EM_FN_RESTORE_LAZY && !t->lazy)
			ret = em_err_msg(err, EPROTO, "the lazy restorer sent no userfaultfd");
		if (ret < 0)
			em_err_prefix(err, "restore from %s: ", t->image);
	}

	text = em_inst_take_log(t->inst, &l);
	if (l)
		em_debug(t->log, "template %s: init said: %.*s", t->dir_path, (int)l, text);
	free(text);
	return ret < 0 ? em_err_prefix(err, "template %s: ", t->dir_path) : 0;
}

int em_tmpl_finish(struct em_tmpl *t, struct em_err *err)
{
	char path[64];
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)t->inst->pid);
	t->pool_cfg.userns_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (t->pool_cfg.userns_fd < 0)
		return em_err_set(err, errno, "template %s: open %s", t->dir_path, path);
	ret = em_netns_pool_new(&t->pool_cfg, &t->pool, err);
	close(t->pool_cfg.userns_fd);
	t->pool_cfg.userns_fd = -1;
	if (ret < 0)
		return em_err_prefix(err, "template %s: network namespaces: ", t->dir_path);
	em_info(t->log, "template %s: ready (pid %d, uid %u, %s %.1f ms)", t->dir_path,
		(int)t->inst->pid, (unsigned)t->uid, t->restored ? "restored from its image in" :
		"init", (double)t->inst->init_ns / 1e6);
	return 0;
}

void em_tmpl_abort(struct em_tmpl *t)
{
	pid_t pid = t->inst ? t->inst->pid : -1;

	if (pid > 0)
		kill(pid, SIGKILL); /* still our child, not reaped: the pid is its own */
}

int em_tmpl_prepare(struct em_tmpl *t, uint64_t seq, struct em_inst **out, struct em_err *err)
{
	char path[192];
	int ret;

	snprintf(path, sizeof(path), "%s/i%llu", t->dir_path, (unsigned long long)seq);
	ret = em_inst_prepare_fork(t->inst_icfg, path, t->uid, t->pool, seq, out, err);
	if (ret < 0)
		return ret;
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
	(*out)->tmpl = t;
	(*out)->release = unref;
	(*out)->release_arg = t;
	return 0;
}

int em_tmpl_start(struct em_tmpl *t, struct em_inst *in, uint32_t timeout_ms, struct em_err *err)
{
	return em_inst_start_forked(in, t->inst, &t->lock, &t->req, t->paths, timeout_ms, err);
}

int em_tmpl_snapshot(struct em_tmpl *t, const char *path, struct em_hsnap_stats *st,
		     struct em_err *err)
{
	int ret;

	pthread_mutex_lock(&t->lock);
	ret = em_hsnap_dump(t->inst, path, st, err);
	pthread_mutex_unlock(&t->lock);
	if (ret < 0)
		return em_err_prefix(err, "template %s: snapshot: ", t->dir_path);
	return 0;
}

bool em_tmpl_restored(const struct em_tmpl *t)
{
	return t->restored;
}

bool em_tmpl_claim_restore(struct em_tmpl *t)
{
	return t->restored && !__atomic_exchange_n(&t->restore_claimed, true, __ATOMIC_ACQ_REL);
}

void em_tmpl_first_served(struct em_tmpl *t)
{
	struct em_err err = { 0 };

	if (t->lazy && em_hsnap_lazy_save_ws(t->lazy, &err) < 0)
		em_warn(t->log, "template %s: working set not recorded: %s", t->dir_path, err.msg);
}

bool em_tmpl_alive(struct em_tmpl *t)
{
	struct pollfd p = { .fd = t->inst->pidfd, .events = POLLIN };

	return t->inst->state == EM_INST_READY && poll(&p, 1, 0) == 0;
}

pid_t em_tmpl_pid(const struct em_tmpl *t)
{
	return t->inst->pid;
}

uint64_t em_tmpl_init_ns(const struct em_tmpl *t)
{
	return t->inst->init_ns;
}

const char *em_tmpl_name(const struct em_tmpl *t)
{
	return t->dir_path;
}

struct em_tmpl *em_tmpl_ref(struct em_tmpl *t)
{
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
	return t;
}

void em_tmpl_retire(struct em_tmpl *t)
{
	if (t)
		unref(t);
}
