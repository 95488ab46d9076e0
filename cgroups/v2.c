/* cgroups/v2.c — the unified-hierarchy backend (pure cgroup v2 hosts: ember's first target).
 * One directory per cgroup; controllers are enabled level by level through
 * cgroup.subtree_control; freeze, kill and "populated" are core files (kernel >= 5.14 for
 * cgroup.kill, 5.2 for cgroup.freeze, 5.19 for memory.peak). */
#include "cgroups/backend.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct { unsigned bit; const char *name; } v2_ctrl_names[] = {
	{ V2_CPU, "cpu" }, { V2_MEMORY, "memory" }, { V2_PIDS, "pids" }, { V2_IO, "io" },
	{ V2_CPUSET, "cpuset" },
};

static bool has_word(const char *text, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = text; (p = strstr(p, w)); p += n)
		if ((p == text || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
	return false;
}

/* Enable ember's controllers in parent's cgroup.subtree_control so `dir` gets their files.
 * Written only when something is missing: the write fails with EBUSY on a populated non-root
 * parent (the no-internal-process rule), which never holds for ember's own levels. */
static int enable_ctrls(int parent_fd, int dir_fd, const char *path, void *arg,
			struct em_err *err)
{
	const struct em_cg_root *root = arg;
	char cur[512], want[128] = "";

	(void)dir_fd;
	if (em_read_small_at(parent_fd, "cgroup.subtree_control", cur, sizeof(cur), err) < 0)
		return em_err_prefix(err, "parent of cgroup %s", path);
	for (size_t i = 0; i < EM_ARRAY_SIZE(v2_ctrl_names); i++) {
		if (!(root->v2_ctrls & v2_ctrl_names[i].bit) || has_word(cur, v2_ctrl_names[i].name))
			continue;
		strcat(want, want[0] ? " +" : "+");
		strcat(want, v2_ctrl_names[i].name);
	}
	if (!want[0])
		return 0;
	if (em_write_str_at(parent_fd, "cgroup.subtree_control", want, err) == 0)
		return 0;
	/* all at once failed: one by one, so one refused controller (a host that keeps cpuset
	 * for itself, say) does not cost the others; a limit that needs the missing one then
	 * fails on its own file */
	for (char *tok = strtok(want, " "); tok; tok = strtok(NULL, " ")) {
		if (em_write_str_at(parent_fd, "cgroup.subtree_control", tok, err) < 0)
			em_warn(root->log, "cgroup %s: cannot enable controller %s in its parent: %s",
				path, tok + 1, err ? err->msg : "refused");
	}
	return 0;
}

static int v2_root_init(struct em_cg_root *root, struct em_err *err)
{
	char avail[512];
	int fd;

	root->unified_fd = open(EM_CG_FS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root->unified_fd < 0)
		return em_err_set(err, errno, "open %s", EM_CG_FS);
	if (em_read_small_at(root->unified_fd, "cgroup.controllers", avail, sizeof(avail), err) < 0)
		return em_err_prefix(err, "cgroup2 at %s", EM_CG_FS);
	for (size_t i = 0; i < EM_ARRAY_SIZE(v2_ctrl_names); i++)
		if (has_word(avail, v2_ctrl_names[i].name))
			root->v2_ctrls |= v2_ctrl_names[i].bit;
	fd = em_cg_mkdir_p(root->unified_fd, root->parent, false, enable_ctrls, root, err);
	if (fd < 0)
		return em_err_prefix(err, "create ember's parent cgroup %s", root->parent);
	close(fd);
	return 0;
}

static int v2_root_remove(struct em_cg_root *root, struct em_err *err)
{
	return em_cg_rmdir(root->unified_fd, root->parent, err);
}

static int v2_make(struct em_cg *cg, bool create, struct em_err *err)
{
	int fd;

	if (create)
		fd = em_cg_mkdir_p(cg->root->unified_fd, cg->path, true, enable_ctrls, cg->root, err);
	else
		fd = em_cg_open_dir(cg->root->unified_fd, cg->path, err);
	if (fd < 0)
		return fd;
	cg->unified_fd = fd;
	return 0;
}

static int need(struct em_cg *cg, unsigned bit, const char *what, struct em_err *err)
{
	if (cg->root->v2_ctrls & bit)
		return 0;
	return em_err_msg(err, ENOTSUP, "%s: the controller is not available in this cgroup2 "
			  "hierarchy (see %s/cgroup.controllers)", what, EM_CG_FS);
}

#define W(file, ...) em_cg_writef(cg->unified_fd, cg->path, file, err, __VA_ARGS__)

static int write_max(struct em_cg *cg, const char *file, int64_t v, struct em_err *err)
{
	return v < 0 ? W(file, "max") : W(file, "%" PRId64, v);
}

static int v2_apply(struct em_cg *cg, const struct em_cg_limits *l, struct em_err *err)
{
	struct em_log *log = cg->root->log;
	int ret = 0;

	if (l->memory_max.set || l->memory_high.set || l->memory_low.set || l->swap_max.set ||
	    l->oom_group.set)
		if ((ret = need(cg, V2_MEMORY, "memory limits", err)) < 0)
			return ret;
	if (l->memory_max.set && (ret = write_max(cg, "memory.max", l->memory_max.v, err)) < 0)
		return ret;
	if (l->memory_high.set && (ret = write_max(cg, "memory.high", l->memory_high.v, err)) < 0)
		return ret;
	if (l->memory_low.set && (ret = write_max(cg, "memory.low", l->memory_low.v, err)) < 0)
		return ret;
	if (l->swap_max.set) {
		if (faccessat(cg->unified_fd, "memory.swap.max", F_OK, 0) < 0)
			em_warn(log, "cgroup %s: no memory.swap.max (swap accounting is off): swap "
				"limit ignored", cg->path);
		else if ((ret = write_max(cg, "memory.swap.max", l->swap_max.v, err)) < 0)
			return ret;
	}
	if (l->oom_group.set && (ret = W("memory.oom.group", "%d", l->oom_group.v)) < 0)
		return ret;
	if (l->swappiness.set)
		em_warn(log, "cgroup %s: memory swappiness is not supported on cgroup v2, ignored",
			cg->path);
	if (l->oom_kill_disable.set && l->oom_kill_disable.v)
		em_warn(log, "cgroup %s: disabling the OOM killer is not supported on cgroup v2, "
			"ignored", cg->path);

	if (l->pids_max.set) {
		if ((ret = need(cg, V2_PIDS, "pids limit", err)) < 0 ||
		    (ret = write_max(cg, "pids.max", l->pids_max.v, err)) < 0)
			return ret;
	}

	if (l->cpu_weight.set || l->cpu_max.set || l->cpu_burst_us.set || l->cpu_idle.set)
		if ((ret = need(cg, V2_CPU, "cpu limits", err)) < 0)
			return ret;
	if (l->cpu_weight.set && (ret = W("cpu.weight", "%" PRIu64, l->cpu_weight.v)) < 0)
		return ret;
	if (l->cpu_max.set) {
		char quota[32];

		if (l->cpu_max.quota_us < 0)
			strcpy(quota, "max");
		else
			snprintf(quota, sizeof(quota), "%" PRId64, l->cpu_max.quota_us);
		/* "quota" alone keeps the current period */
		ret = l->cpu_max.period_us ? W("cpu.max", "%s %" PRIu64, quota, l->cpu_max.period_us)
					   : W("cpu.max", "%s", quota);
		if (ret < 0)
			return ret;
	}
	if (l->cpu_burst_us.set && (ret = W("cpu.max.burst", "%" PRIu64, l->cpu_burst_us.v)) < 0)
		return ret;
	if (l->cpu_idle.set && (ret = W("cpu.idle", "%d", l->cpu_idle.v)) < 0)
		return ret;

	if (l->cpuset_cpus || l->cpuset_mems)
		if ((ret = need(cg, V2_CPUSET, "cpuset", err)) < 0)
			return ret;
	if (l->cpuset_cpus && (ret = W("cpuset.cpus", "%s", l->cpuset_cpus)) < 0)
		return ret;
	if (l->cpuset_mems && (ret = W("cpuset.mems", "%s", l->cpuset_mems)) < 0)
		return ret;

	if (l->io_weight.set || l->n_io_max)
		if ((ret = need(cg, V2_IO, "io limits", err)) < 0)
			return ret;
	if (l->io_weight.set) {
		if (faccessat(cg->unified_fd, "io.weight", F_OK, 0) < 0)
			em_warn(log, "cgroup %s: no io.weight (no proportional io scheduler): io weight "
				"ignored", cg->path);
		else if ((ret = W("io.weight", "default %" PRIu64, l->io_weight.v)) < 0)
			return ret;
	}
	for (size_t i = 0; i < l->n_io_max; i++) {
		const struct em_cg_io_max *m = &l->io_max[i];
		char line[256];
		int n = snprintf(line, sizeof(line), "%" PRId64 ":%" PRId64, m->major, m->minor);
		const struct { const char *k; uint64_t v; } f[] = {
			{ "rbps", m->rbps }, { "wbps", m->wbps }, { "riops", m->riops },
			{ "wiops", m->wiops },
		};

		for (size_t j = 0; j < EM_ARRAY_SIZE(f); j++)
			n += f[j].v == UINT64_MAX
				     ? snprintf(line + n, sizeof(line) - n, " %s=max", f[j].k)
				     : snprintf(line + n, sizeof(line) - n, " %s=%" PRIu64, f[j].k, f[j].v);
		if ((ret = W("io.max", "%s", line)) < 0)
			return ret;
	}

	if (l->n_devices && (ret = em_cg_bpf_devices(cg->unified_fd, l->devices, l->n_devices,
						     err)) < 0)
		return ret;

	for (size_t i = 0; i < l->n_raw; i++) {
		if (strchr(l->raw[i].file, '/'))
			return em_err_msg(err, EINVAL, "\"%s\" is not a cgroup file name",
					  l->raw[i].file);
		if ((ret = W(l->raw[i].file, "%s", l->raw[i].value)) < 0)
			return ret;
	}
	return 0;
}

static int v2_attach(struct em_cg *cg, pid_t pid, struct em_err *err)
{
	return W("cgroup.procs", "%d", (int)pid);
}

struct events_want { struct em_cg *cg; const char *key; uint64_t v; };

static int events_is(void *arg, struct em_err *err)
{
	struct events_want *w = arg;
	char buf[256];
	uint64_t v;

	int ret = em_cg_read(w->cg->unified_fd, w->cg->path, "cgroup.events", buf, sizeof(buf), err);

	if (ret < 0)
		return ret;
	return em_cg_kv(buf, w->key, &v) && v == w->v;
}

static int v2_set_frozen(struct em_cg *cg, bool frozen, struct em_err *err)
{
	struct events_want w = { cg, "frozen", frozen };
	int ret = W("cgroup.freeze", "%d", frozen);

	if (ret < 0)
		return ret;
	return em_cg_wait(events_is, &w, frozen ? "cgroup.events frozen 1" : "cgroup.events frozen 0",
			  err);
}

static int v2_frozen(struct em_cg *cg, bool *frozen, struct em_err *err)
{
	struct events_want w = { cg, "frozen", 1 };
	int r = events_is(&w, err);

	if (r < 0)
		return r;
	*frozen = r;
	return 0;
}

static int v2_kill_all(struct em_cg *cg, struct em_err *err)
{
	struct events_want w = { cg, "populated", 0 };
	int ret = W("cgroup.kill", "1");

	if (ret == -ENOENT) {
		/* before 5.14: signal what is there, repeatedly, until nothing is left */
		for (int round = 0; round < 100; round++) {
			cleanup_free pid_t *pids = NULL;
			size_t n = 0;

			if ((ret = em_cg_pids(cg, &pids, &n, err)) < 0)
				return ret;
			if (!n)
				break;
			for (size_t i = 0; i < n; i++)
				kill(pids[i], SIGKILL);
			em_cg_sleep_ms(10);
		}
	} else if (ret < 0) {
		return ret;
	}
	return em_cg_wait(events_is, &w, "cgroup.events populated 0", err);
}

static int read_kv_file(struct em_cg *cg, const char *file, char *buf, size_t cap,
			struct em_err *err)
{
	ssize_t r = em_read_small_at(cg->unified_fd, file, buf, cap, err);

	if (r >= 0)
		return 1;
	if (r == -ENOENT) /* controller not enabled here */
		return 0;
	return (int)r;
}

static int read_opt_u64(struct em_cg *cg, const char *file, uint64_t *v, bool *present,
			struct em_err *err)
{
	int ret = em_read_u64_at(cg->unified_fd, file, v, err);

	if (present)
		*present = ret == 0;
	if (ret == -ENOENT)
		return 0;
	return ret < 0 ? ret : 0;
}

static int v2_stats(struct em_cg *cg, struct em_cg_stats *st, struct em_err *err)
{
	char buf[1024];
	uint64_t v;
	int r;

	if ((r = read_kv_file(cg, "cpu.stat", buf, sizeof(buf), err)) < 0)
		return r;
	if (r) {
		/* the kernel counts in µs here: exact ×1000, no rounding added */
		if (em_cg_kv(buf, "usage_usec", &v))
			st->cpu_usage_ns = v * 1000;
		if (em_cg_kv(buf, "user_usec", &v))
			st->cpu_user_ns = v * 1000;
		if (em_cg_kv(buf, "system_usec", &v))
			st->cpu_system_ns = v * 1000;
		em_cg_kv(buf, "nr_periods", &st->cpu_nr_periods);
		em_cg_kv(buf, "nr_throttled", &st->cpu_nr_throttled);
		if (em_cg_kv(buf, "throttled_usec", &v))
			st->cpu_throttled_ns = v * 1000;
	}
	if ((r = read_opt_u64(cg, "memory.current", &st->memory_current, NULL, err)) < 0 ||
	    (r = read_opt_u64(cg, "memory.peak", &st->memory_peak, &st->has_memory_peak, err)) < 0 ||
	    (r = read_opt_u64(cg, "memory.max", &st->memory_max, NULL, err)) < 0 ||
	    (r = read_opt_u64(cg, "memory.swap.current", &st->swap_current, NULL, err)) < 0 ||
	    (r = read_opt_u64(cg, "pids.current", &st->pids_current, NULL, err)) < 0 ||
	    (r = read_opt_u64(cg, "pids.max", &st->pids_max, NULL, err)) < 0)
		return r;
	if ((r = read_kv_file(cg, "memory.events", buf, sizeof(buf), err)) < 0)
		return r;
	if (r) {
		em_cg_kv(buf, "oom", &st->oom_events);
		em_cg_kv(buf, "oom_kill", &st->oom_kill_events);
	}
	return 0;
}

static int v2_remove(struct em_cg *cg, struct em_err *err)
{
	return em_cg_rmdir(cg->root->unified_fd, cg->path, err);
}

const struct em_cg_ops em_cg_v2_ops = {
	.name = "v2",
	.root_init = v2_root_init,
	.root_remove = v2_root_remove,
	.make = v2_make,
	.apply = v2_apply,
	.attach = v2_attach,
	.set_frozen = v2_set_frozen,
	.frozen = v2_frozen,
	.kill_all = v2_kill_all,
	.stats = v2_stats,
	.remove = v2_remove,
	.clone_into_complete = true,
};
