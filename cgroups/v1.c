/* cgroups/v1.c — the legacy backend, for v1-only and hybrid hosts. One directory per hierarchy
 * ember uses (cpu, cpuacct, cpuset, memory, pids, freezer, blkio, devices; co-mounted ones such
 * as "cpu,cpuacct" are one hierarchy), plus, on hybrid hosts, a companion directory at the same
 * path in the unified hierarchy: it has no controllers, but it gives the sandbox its own v2
 * cgroup id (BPF billing keys on it) and a target for clone3(CLONE_INTO_CGROUP). */
#include "cgroups/backend.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

/* v1 reports "no memory limit" as PAGE_COUNTER_MAX pages: LONG_MAX rounded down to a page. */
#define V1_UNLIMITED_MIN 0x7ffffffffffff000ULL

static int hier_of(const struct em_cg_root *root, enum em_cg_ctrl c)
{
	return root->ctrl_hier[c];
}

/* the cgroup's directory fd for controller c, -1 if that controller is not mounted */
static int cfd(const struct em_cg *cg, enum em_cg_ctrl c)
{
	int h = hier_of(cg->root, c);

	return h < 0 ? -1 : cg->hier_fd[h];
}

/* A new cpuset cgroup starts with empty cpus and mems (cgroup.clone_children is 0 by default,
 * and ember does not flip it): nothing could run in it. Copy the parent's. */
static int cpuset_inherit(int parent_fd, int dir_fd, const char *path, void *arg,
			  struct em_err *err)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };

	(void)arg;
	for (size_t i = 0; i < EM_ARRAY_SIZE(files); i++) {
		char cur[256], par[256];

		if (em_read_small_at(dir_fd, files[i], cur, sizeof(cur), err) < 0)
			return em_err_prefix(err, "cgroup %s", path);
		if (cur[0] && cur[0] != '\n')
			continue;
		if (em_read_small_at(parent_fd, files[i], par, sizeof(par), err) < 0)
			return em_err_prefix(err, "parent of cgroup %s", path);
		if (em_write_str_at(dir_fd, files[i], par, err) < 0)
			return em_err_prefix(err, "cgroup %s", path);
	}
	return 0;
}

static em_cg_level_hook hook_for(const struct em_cg_root *root, size_t h)
{
	return (int)h == hier_of(root, CTRL_CPUSET) ? cpuset_inherit : NULL;
}

/* The v1 freezer flips a static key (freezer_active) when the first cgroup of the system
 * freezes and when the last one thaws: kernel text patching, 1.3-4 ms per freeze or thaw on this
 * nested VM (6.18), against ~25-50 µs once the key is on. An empty cgroup kept frozen keeps it
 * on, and costs nothing else: the key only guards the freezing() check. */
static int freezer_anchor(struct em_cg_root *root, struct em_err *err)
{
	char path[4096], state[32];
	int h = hier_of(root, CTRL_FREEZER);

	if (h < 0)
		return 0;
	snprintf(path, sizeof(path), "%s/" EM_CG_FREEZER_ANCHOR, root->parent);
	if (mkdirat(root->hier_fd[h], path, 0755) < 0 && errno != EEXIST)
		return em_err_set(err, errno, "mkdir cgroup %s", path);
	int fd = openat(root->hier_fd[h], path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return em_err_set(err, errno, "open cgroup %s", path);
	int ret = em_read_small_at(fd, "freezer.state", state, sizeof(state), err);
	if (ret >= 0 && strncmp(state, "FROZEN", 6))
		ret = em_write_str_at(fd, "freezer.state", "FROZEN", err);
	close(fd);
	return ret < 0 ? em_err_prefix(err, "cgroup %s", path) : 0;
}

static int v1_root_init(struct em_cg_root *root, struct em_err *err)
{
	dev_t devs[EM_CG_MAX_HIER];
	struct statfs fs;
	int fd;

	for (int c = 0; c < CTRL_N; c++) {
		char path[128];
		struct stat st;
		size_t h;

		snprintf(path, sizeof(path), EM_CG_FS "/%s", em_cg_ctrl_names[c]);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue; /* not mounted: limits that need it fail clearly later */
		if (fstatfs(fd, &fs) < 0 || fs.f_type != CGROUP_SUPER_MAGIC || fstat(fd, &st) < 0) {
			close(fd);
			continue;
		}
		for (h = 0; h < root->n_hier && devs[h] != st.st_dev; h++)
			;
		if (h < root->n_hier) {
			close(fd); /* co-mounted with an earlier controller */
		} else {
			devs[h] = st.st_dev;
			root->hier_fd[root->n_hier++] = fd;
		}
		root->ctrl_hier[c] = (int)h;
	}
	if (!root->n_hier)
		return em_err_msg(err, ENOENT, "no cgroup v1 controller mounted below %s", EM_CG_FS);
	if (root->mode == EM_CG_HYBRID) {
		root->unified_fd = open(EM_CG_FS "/unified", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (root->unified_fd < 0)
			return em_err_set(err, errno, "open %s/unified", EM_CG_FS);
	}
	for (size_t h = 0; h < root->n_hier; h++) {
		fd = em_cg_mkdir_p(root->hier_fd[h], root->parent, false, hook_for(root, h), NULL, err);
		if (fd < 0)
			return em_err_prefix(err, "create ember's parent cgroup %s", root->parent);
		close(fd);
	}
	if (root->unified_fd >= 0) {
		fd = em_cg_mkdir_p(root->unified_fd, root->parent, false, NULL, NULL, err);
		if (fd < 0)
			return em_err_prefix(err, "create ember's parent cgroup %s (unified)", root->parent);
		close(fd);
	}
	return freezer_anchor(root, err);
}

static int v1_root_remove(struct em_cg_root *root, struct em_err *err)
{
	int ret = 0;

	if (hier_of(root, CTRL_FREEZER) >= 0) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/" EM_CG_FREEZER_ANCHOR, root->parent);
		ret = em_cg_rmdir(root->hier_fd[hier_of(root, CTRL_FREEZER)], path, err);
	}

	if (ret == 0 && root->unified_fd >= 0)
		ret = em_cg_rmdir(root->unified_fd, root->parent, err);
	for (size_t h = 0; ret == 0 && h < root->n_hier; h++)
		ret = em_cg_rmdir(root->hier_fd[h], root->parent, err);
	return ret;
}

static int v1_remove(struct em_cg *cg, struct em_err *err)
{
	int ret = 0;

	/* the unified companion last: while it exists the sandbox keeps its BPF id */
	for (size_t h = 0; ret == 0 && h < cg->root->n_hier; h++)
		ret = em_cg_rmdir(cg->root->hier_fd[h], cg->path, err);
	if (ret == 0 && cg->root->unified_fd >= 0)
		ret = em_cg_rmdir(cg->root->unified_fd, cg->path, err);
	return ret;
}

static int v1_make(struct em_cg *cg, bool create, struct em_err *err)
{
	struct em_cg_root *root = cg->root;
	bool any = false;
	int fd;

	for (size_t h = 0; h < root->n_hier; h++) {
		fd = create ? em_cg_mkdir_p(root->hier_fd[h], cg->path, true, hook_for(root, h), NULL,
					    err)
			    : openat(root->hier_fd[h], cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 && create)
			goto fail;
		if (fd >= 0)
			any = true;
		cg->hier_fd[h] = fd;
	}
	if (root->unified_fd >= 0) {
		fd = create ? em_cg_mkdir_p(root->unified_fd, cg->path, true, NULL, NULL, err)
			    : openat(root->unified_fd, cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 && create)
			goto fail;
		cg->unified_fd = fd;
	}
	if (!any)
		return em_err_set(err, ENOENT, "open cgroup %s", cg->path);
	return 0;
fail:
	/* take back the directories this call made (EEXIST: the failing one is not ours) */
	for (size_t h = 0; h < root->n_hier; h++)
		if (cg->hier_fd[h] >= 0) {
			close(cg->hier_fd[h]);
			cg->hier_fd[h] = -1;
			unlinkat(root->hier_fd[h], cg->path, AT_REMOVEDIR);
		}
	return fd;
}

#define W(ctrl, file, ...) em_cg_writef(cfd(cg, ctrl), cg->path, file, err, __VA_ARGS__)

static int need(struct em_cg *cg, enum em_cg_ctrl c, const char *what, struct em_err *err)
{
	if (cfd(cg, c) >= 0)
		return 0;
	return em_err_msg(err, ENOTSUP, "%s: the %s controller is not mounted (%s/%s)", what,
			  em_cg_ctrl_names[c], EM_CG_FS, em_cg_ctrl_names[c]);
}

static int write_limit(struct em_cg *cg, const char *file, int64_t v, struct em_err *err)
{
	return W(CTRL_MEMORY, file, "%" PRId64, v < 0 ? -1 : v);
}

/* memory.limit_in_bytes and memory.memsw.limit_in_bytes (memory + swap) must stay ordered
 * (memsw >= memory) after each write, so the order depends on the direction of the change:
 * try memory first, and on EINVAL memsw first (what runc does). */
static int apply_memory(struct em_cg *cg, const struct em_cg_limits *l, struct em_err *err)
{
	struct em_log *log = cg->root->log;
	bool has_memsw = faccessat(cfd(cg, CTRL_MEMORY), "memory.memsw.limit_in_bytes", F_OK, 0) == 0;
	int64_t mem, memsw = -1;
	int ret;

	if (!l->memory_max.set && !l->swap_max.set)
		return 0;
	if (l->memory_max.set) {
		mem = l->memory_max.v;
	} else {
		uint64_t cur;

		if ((ret = em_cg_read_u64(cfd(cg, CTRL_MEMORY), cg->path, "memory.limit_in_bytes",
					  &cur, err)) < 0)
			return ret;
		mem = cur >= V1_UNLIMITED_MIN ? -1 : (int64_t)cur;
	}
	if (l->swap_max.set && !has_memsw) {
		if (l->swap_max.v != 0)
			em_warn(log, "cgroup %s: no memory.memsw.limit_in_bytes (swap accounting is "
				"off): swap limit ignored", cg->path);
		return l->memory_max.set ? write_limit(cg, "memory.limit_in_bytes", mem, err) : 0;
	}
	if (!l->swap_max.set) {
		uint64_t old_mem, old_memsw;

		ret = write_limit(cg, "memory.limit_in_bytes", mem, err);
		if (ret != -EINVAL || !has_memsw)
			return ret;
		/* raising memory above memsw: keep the swap allowance the cgroup had */
		if ((ret = em_cg_read_u64(cfd(cg, CTRL_MEMORY), cg->path, "memory.limit_in_bytes",
					  &old_mem, err)) < 0 ||
		    (ret = em_cg_read_u64(cfd(cg, CTRL_MEMORY), cg->path,
					  "memory.memsw.limit_in_bytes", &old_memsw, err)) < 0)
			return ret;
		if (mem >= 0 && old_memsw < V1_UNLIMITED_MIN)
			memsw = mem + (int64_t)(old_memsw - old_mem);
		if ((ret = write_limit(cg, "memory.memsw.limit_in_bytes", memsw, err)) < 0)
			return ret;
		return write_limit(cg, "memory.limit_in_bytes", mem, err);
	}
	if (mem >= 0 && l->swap_max.v >= 0)
		memsw = mem + l->swap_max.v;
	ret = write_limit(cg, "memory.limit_in_bytes", mem, err);
	if (ret == -EINVAL) {
		if ((ret = write_limit(cg, "memory.memsw.limit_in_bytes", memsw, err)) < 0)
			return ret;
		return write_limit(cg, "memory.limit_in_bytes", mem, err);
	}
	if (ret < 0)
		return ret;
	return write_limit(cg, "memory.memsw.limit_in_bytes", memsw, err);
}

/* the inverse of runc's shares->weight conversion, so that OCI shares survive a round trip */
static uint64_t weight_to_shares(uint64_t w)
{
	if (w < 1)
		w = 1;
	if (w > 10000)
		w = 10000;
	return 2 + ((w - 1) * 262142) / 9999;
}

static int v1_apply(struct em_cg *cg, const struct em_cg_limits *l, struct em_err *err)
{
	struct em_log *log = cg->root->log;
	int ret;

	if (l->memory_max.set || l->memory_low.set || l->swap_max.set || l->swappiness.set ||
	    l->oom_kill_disable.set)
		if ((ret = need(cg, CTRL_MEMORY, "memory limits", err)) < 0)
			return ret;
	if ((ret = apply_memory(cg, l, err)) < 0)
		return ret;
	if (l->memory_low.set &&
	    (ret = write_limit(cg, "memory.soft_limit_in_bytes", l->memory_low.v, err)) < 0)
		return ret;
	if (l->swappiness.set &&
	    (ret = W(CTRL_MEMORY, "memory.swappiness", "%" PRIu64, l->swappiness.v)) < 0)
		return ret;
	if (l->oom_kill_disable.set &&
	    (ret = W(CTRL_MEMORY, "memory.oom_control", "%d", l->oom_kill_disable.v)) < 0)
		return ret;
	if (l->memory_high.set && l->memory_high.v >= 0)
		em_warn(log, "cgroup %s: memory.high is not supported on cgroup v1, ignored", cg->path);
	if (l->oom_group.set && l->oom_group.v)
		em_warn(log, "cgroup %s: memory.oom.group is not supported on cgroup v1, ignored",
			cg->path);

	if (l->pids_max.set) {
		if ((ret = need(cg, CTRL_PIDS, "pids limit", err)) < 0)
			return ret;
		ret = l->pids_max.v < 0 ? W(CTRL_PIDS, "pids.max", "max")
					: W(CTRL_PIDS, "pids.max", "%" PRId64, l->pids_max.v);
		if (ret < 0)
			return ret;
	}

	if (l->cpu_weight.set || l->cpu_max.set || l->cpu_burst_us.set || l->cpu_idle.set)
		if ((ret = need(cg, CTRL_CPU, "cpu limits", err)) < 0)
			return ret;
	if (l->cpu_weight.set &&
	    (ret = W(CTRL_CPU, "cpu.shares", "%" PRIu64, weight_to_shares(l->cpu_weight.v))) < 0)
		return ret;
	if (l->cpu_max.set) {
		/* the period first: the kernel checks the quota against it */
		if (l->cpu_max.period_us &&
		    (ret = W(CTRL_CPU, "cpu.cfs_period_us", "%" PRIu64, l->cpu_max.period_us)) < 0)
			return ret;
		if ((ret = W(CTRL_CPU, "cpu.cfs_quota_us", "%" PRId64,
			     l->cpu_max.quota_us < 0 ? -1 : l->cpu_max.quota_us)) < 0)
			return ret;
	}
	if (l->cpu_burst_us.set &&
	    (ret = W(CTRL_CPU, "cpu.cfs_burst_us", "%" PRIu64, l->cpu_burst_us.v)) < 0)
		return ret;
	if (l->cpu_idle.set && (ret = W(CTRL_CPU, "cpu.idle", "%d", l->cpu_idle.v)) < 0)
		return ret;

	if (l->cpuset_cpus || l->cpuset_mems)
		if ((ret = need(cg, CTRL_CPUSET, "cpuset", err)) < 0)
			return ret;
	if (l->cpuset_cpus && (ret = W(CTRL_CPUSET, "cpuset.cpus", "%s", l->cpuset_cpus)) < 0)
		return ret;
	if (l->cpuset_mems && (ret = W(CTRL_CPUSET, "cpuset.mems", "%s", l->cpuset_mems)) < 0)
		return ret;

	if (l->io_weight.set || l->n_io_max)
		if ((ret = need(cg, CTRL_BLKIO, "block io limits", err)) < 0)
			return ret;
	if (l->io_weight.set) {
		/* v1 blkio.weight is 10..1000; io_weight is the v2 1..10000 scale */
		uint64_t w = 10 + (l->io_weight.v - 1) * 990 / 9999;
		const char *file = faccessat(cfd(cg, CTRL_BLKIO), "blkio.weight", F_OK, 0) == 0
					   ? "blkio.weight"
				   : faccessat(cfd(cg, CTRL_BLKIO), "blkio.bfq.weight", F_OK, 0) == 0
					   ? "blkio.bfq.weight"
					   : NULL;

		if (!file)
			em_warn(log, "cgroup %s: no blkio.weight (no proportional io scheduler): io "
				"weight ignored", cg->path);
		else if ((ret = W(CTRL_BLKIO, file, "%" PRIu64, w)) < 0)
			return ret;
	}
	for (size_t i = 0; i < l->n_io_max; i++) {
		const struct em_cg_io_max *m = &l->io_max[i];
		const struct { const char *file; uint64_t v; } f[] = {
			{ "blkio.throttle.read_bps_device", m->rbps },
			{ "blkio.throttle.write_bps_device", m->wbps },
			{ "blkio.throttle.read_iops_device", m->riops },
			{ "blkio.throttle.write_iops_device", m->wiops },
		};

		for (size_t j = 0; j < EM_ARRAY_SIZE(f); j++)
			if (f[j].v != UINT64_MAX &&
			    (ret = W(CTRL_BLKIO, f[j].file, "%" PRId64 ":%" PRId64 " %" PRIu64, m->major,
				     m->minor, f[j].v)) < 0)
				return ret;
	}

	if (l->n_devices && (ret = need(cg, CTRL_DEVICES, "device rules", err)) < 0)
		return ret;
	for (size_t i = 0; i < l->n_devices; i++) {
		const struct em_cg_device_rule *d = &l->devices[i];
		const char *file = d->allow ? "devices.allow" : "devices.deny";
		char maj[24], min[24];

		if (d->type == 'a') {
			ret = W(CTRL_DEVICES, file, "a");
		} else {
			if (d->major < 0)
				strcpy(maj, "*");
			else
				snprintf(maj, sizeof(maj), "%" PRId64, d->major);
			if (d->minor < 0)
				strcpy(min, "*");
			else
				snprintf(min, sizeof(min), "%" PRId64, d->minor);
			ret = W(CTRL_DEVICES, file, "%c %s:%s %s", d->type, maj, min,
				d->access[0] ? d->access : "rwm");
		}
		if (ret < 0)
			return ret;
	}

	for (size_t i = 0; i < l->n_raw; i++) {
		const char *file = l->raw[i].file;
		size_t n = strcspn(file, ".");
		int c;

		if (strchr(file, '/'))
			return em_err_msg(err, EINVAL, "\"%s\" is not a cgroup file name", file);
		for (c = 0; c < CTRL_N; c++)
			if (strlen(em_cg_ctrl_names[c]) == n && !strncmp(file, em_cg_ctrl_names[c], n))
				break;
		if (c == CTRL_N || cfd(cg, c) < 0)
			return em_err_msg(err, ENOTSUP, "%s: no mounted cgroup v1 controller owns "
					  "this file", file);
		if ((ret = W(c, file, "%s", l->raw[i].value)) < 0)
			return ret;
	}
	return 0;
}

static int v1_attach(struct em_cg *cg, pid_t pid, struct em_err *err)
{
	/* the unified companion first: the BPF id is right as soon as the controllers apply */
	if (cg->unified_fd >= 0) {
		int ret = em_cg_writef(cg->unified_fd, cg->path, "cgroup.procs", err, "%d", (int)pid);

		if (ret < 0)
			return em_err_prefix(err, "unified hierarchy");
	}
	for (size_t h = 0; h < cg->root->n_hier; h++) {
		if (cg->hier_fd[h] < 0)
			continue;
		int ret = em_cg_writef(cg->hier_fd[h], cg->path, "cgroup.procs", err, "%d", (int)pid);

		if (ret < 0)
			return ret;
	}
	return 0;
}

struct freezer_want { struct em_cg *cg; const char *state; unsigned polls; };

static int freezer_is(void *arg, struct em_err *err)
{
	struct freezer_want *w = arg;
	char buf[64];
	int ret = em_cg_read(cfd(w->cg, CTRL_FREEZER), w->cg->path, "freezer.state", buf,
			     sizeof(buf), err);

	if (ret < 0)
		return ret;
	if (!strncmp(buf, w->state, strlen(w->state)))
		return 1;
	/* FREEZING can stall on a task that was busy in the kernel: asking again retries it.
	 * Not on every poll: a write costs ~1.3 ms on this kernel (it flips a static key). */
	if (++w->polls % 8)
		return 0;
	ret = em_write_str_at(cfd(w->cg, CTRL_FREEZER), "freezer.state", w->state, err);
	return ret < 0 ? ret : 0;
}

static int v1_set_frozen(struct em_cg *cg, bool frozen, struct em_err *err)
{
	struct freezer_want w = { cg, frozen ? "FROZEN" : "THAWED", 0 };
	int ret;

	if ((ret = need(cg, CTRL_FREEZER, "freezer", err)) < 0)
		return ret;
	if ((ret = W(CTRL_FREEZER, "freezer.state", "%s", w.state)) < 0)
		return ret;
	return em_cg_wait(freezer_is, &w, frozen ? "freezer.state FROZEN" : "freezer.state THAWED",
			  err);
}

static int v1_frozen(struct em_cg *cg, bool *frozen, struct em_err *err)
{
	char buf[64];
	int ret;

	if ((ret = need(cg, CTRL_FREEZER, "freezer state", err)) < 0)
		return ret;
	if ((ret = em_cg_read(cfd(cg, CTRL_FREEZER), cg->path, "freezer.state", buf, sizeof(buf),
			      err)) < 0)
		return ret;
	*frozen = !strncmp(buf, "FROZEN", 6);
	return 0;
}

static int is_empty(void *arg, struct em_err *err)
{
	cleanup_free pid_t *pids = NULL;
	size_t n = 0;
	int ret = em_cg_pids(arg, &pids, &n, err);

	return ret < 0 ? ret : n == 0;
}

/* v1 has no cgroup.kill: freeze (so nothing forks behind our back), SIGKILL every process,
 * thaw (a frozen task cannot die), and repeat until nothing is left. On hybrid hosts the
 * companion's cgroup.kill also catches a process that was cloned into it and not attached yet. */
static int v1_kill_all(struct em_cg *cg, struct em_err *err)
{
	bool use_freezer = cfd(cg, CTRL_FREEZER) >= 0;
	int ret;

	if (cg->unified_fd >= 0) {
		ret = em_cg_writef(cg->unified_fd, cg->path, "cgroup.kill", err, "1");
		if (ret < 0 && ret != -ENOENT)
			return ret;
	}
	for (int round = 0; round < 50; round++) {
		cleanup_free pid_t *pids = NULL;
		size_t n = 0;

		if (use_freezer && (ret = v1_set_frozen(cg, true, err)) < 0)
			return ret;
		if ((ret = em_cg_pids(cg, &pids, &n, err)) < 0)
			return ret;
		for (size_t i = 0; i < n; i++)
			if (kill(pids[i], SIGKILL) < 0 && errno != ESRCH)
				return em_err_set(err, errno, "kill pid %d", (int)pids[i]);
		if (use_freezer && (ret = v1_set_frozen(cg, false, err)) < 0)
			return ret;
		if (!n)
			return 0;
		/* a killed task leaves cgroup.procs once it has exited */
		ret = em_cg_wait(is_empty, cg, "empty cgroup.procs", err);
		if (ret == 0)
			return 0;
		if (ret != -ETIMEDOUT)
			return ret;
	}
	return em_err_msg(err, ETIMEDOUT, "processes keep appearing after SIGKILL");
}

static int read_opt(struct em_cg *cg, enum em_cg_ctrl c, const char *file, uint64_t *v,
		    bool *present, struct em_err *err)
{
	int ret;

	if (present)
		*present = false;
	if (cfd(cg, c) < 0)
		return 0;
	ret = em_read_u64_at(cfd(cg, c), file, v, err);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (present)
		*present = true;
	return 0;
}

static int v1_stats(struct em_cg *cg, struct em_cg_stats *st, struct em_err *err)
{
	char buf[1024];
	uint64_t memsw = 0;
	bool has_memsw;
	int r;

	/* cpuacct counts in ns; cpuacct.usage_user/_sys exist since 4.x */
	if ((r = read_opt(cg, CTRL_CPUACCT, "cpuacct.usage", &st->cpu_usage_ns, NULL, err)) < 0 ||
	    (r = read_opt(cg, CTRL_CPUACCT, "cpuacct.usage_user", &st->cpu_user_ns, NULL, err)) < 0 ||
	    (r = read_opt(cg, CTRL_CPUACCT, "cpuacct.usage_sys", &st->cpu_system_ns, NULL, err)) < 0)
		return r;
	if (cfd(cg, CTRL_CPU) >= 0) {
		if ((r = em_cg_read(cfd(cg, CTRL_CPU), cg->path, "cpu.stat", buf, sizeof(buf),
				    err)) < 0)
			return r;
		em_cg_kv(buf, "nr_periods", &st->cpu_nr_periods);
		em_cg_kv(buf, "nr_throttled", &st->cpu_nr_throttled);
		em_cg_kv(buf, "throttled_time", &st->cpu_throttled_ns); /* ns in v1 */
	}
	if ((r = read_opt(cg, CTRL_MEMORY, "memory.usage_in_bytes", &st->memory_current, NULL,
			  err)) < 0 ||
	    (r = read_opt(cg, CTRL_MEMORY, "memory.max_usage_in_bytes", &st->memory_peak,
			  &st->has_memory_peak, err)) < 0 ||
	    (r = read_opt(cg, CTRL_MEMORY, "memory.limit_in_bytes", &st->memory_max, NULL, err)) < 0 ||
	    (r = read_opt(cg, CTRL_MEMORY, "memory.memsw.usage_in_bytes", &memsw, &has_memsw,
			  err)) < 0 ||
	    (r = read_opt(cg, CTRL_PIDS, "pids.current", &st->pids_current, NULL, err)) < 0 ||
	    (r = read_opt(cg, CTRL_PIDS, "pids.max", &st->pids_max, NULL, err)) < 0)
		return r;
	if (st->memory_max >= V1_UNLIMITED_MIN)
		st->memory_max = UINT64_MAX;
	if (has_memsw && memsw > st->memory_current)
		st->swap_current = memsw - st->memory_current;
	if (cfd(cg, CTRL_MEMORY) >= 0) {
		if ((r = em_cg_read(cfd(cg, CTRL_MEMORY), cg->path, "memory.oom_control", buf,
				    sizeof(buf), err)) < 0)
			return r;
		/* "oom_kill N" since 4.13; v1 keeps no count of OOM situations without a kill */
		em_cg_kv(buf, "oom_kill", &st->oom_kill_events);
		st->oom_events = st->oom_kill_events;
	}
	return 0;
}

const struct em_cg_ops em_cg_v1_ops = {
	.name = "v1",
	.root_init = v1_root_init,
	.root_remove = v1_root_remove,
	.make = v1_make,
	.apply = v1_apply,
	.attach = v1_attach,
	.set_frozen = v1_set_frozen,
	.frozen = v1_frozen,
	.kill_all = v1_kill_all,
	.stats = v1_stats,
	.remove = v1_remove,
	.clone_into_complete = false,
};
