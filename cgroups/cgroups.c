/* cgroups/cgroups.c — mode detection (once, at em_cg_root_open), path rules, dispatch to the
 * backend's ops table, and the file helpers both backends use. The only place that knows which
 * backend exists: no other file asks "is this v2?". */
#include "cgroups/backend.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

const char *const em_cg_ctrl_names[CTRL_N] = {
	[CTRL_CPU] = "cpu",         [CTRL_CPUACCT] = "cpuacct", [CTRL_CPUSET] = "cpuset",
	[CTRL_MEMORY] = "memory",   [CTRL_PIDS] = "pids",       [CTRL_FREEZER] = "freezer",
	[CTRL_BLKIO] = "blkio",     [CTRL_DEVICES] = "devices",
};

/* ------------------------------------------------------------------ helpers */

void em_cg_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int em_cg_writef(int dfd, const char *cgpath, const char *file, struct em_err *err,
		 const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return em_err_msg(err, EINVAL, "value for %s too long", file);
	(void)cgpath;
	return em_write_at(dfd, file, buf, (size_t)n, err);
}

int em_cg_read(int dfd, const char *cgpath, const char *file, char *buf, size_t cap,
	       struct em_err *err)
{
	ssize_t r = em_read_small_at(dfd, file, buf, cap, err);

	(void)cgpath;
	return r < 0 ? (int)r : 0;
}

int em_cg_read_u64(int dfd, const char *cgpath, const char *file, uint64_t *v,
		   struct em_err *err)
{
	(void)cgpath;
	return em_read_u64_at(dfd, file, v, err);
}

bool em_cg_kv(const char *text, const char *key, uint64_t *v)
{
	size_t kl = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, key, kl) && p[kl] == ' ') {
			*v = strtoull(p + kl + 1, NULL, 10);
			return true;
		}
	}
	return false;
}

int em_cg_read_procs(int dfd, const char *cgpath, pid_t **pids, size_t *n, struct em_err *err)
{
	cleanup_free char *text = NULL;
	int ret = em_read_file_at(dfd, "cgroup.procs", &text, NULL, err);

	(void)cgpath;
	if (ret < 0)
		return ret;
	for (char *p = text, *end; *p; p = end) {
		long v = strtol(p, &end, 10);
		pid_t *np;

		if (end == p)
			break;
		np = realloc(*pids, (*n + 1) * sizeof(pid_t));
		if (!np)
			return em_err_set(err, ENOMEM, "read cgroup.procs");
		*pids = np;
		(*pids)[(*n)++] = (pid_t)v;
		while (*end == '\n')
			end++;
	}
	return 0;
}

int em_cg_open_dir(int rootfd, const char *path, struct em_err *err)
{
	int fd = openat(rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return em_err_set(err, errno, "open cgroup %s", path);
	return fd;
}

/* The common case, one syscall per level saved: every ancestor exists already. */
static int mkdir_leaf_fast(int rootfd, const char *path, bool create_leaf, em_cg_level_hook hook,
			   void *arg, struct em_err *err)
{
	char parent[4096];
	const char *slash = strrchr(path, '/');
	int dir, pfd, ret;
	bool made;

	if (mkdirat(rootfd, path, 0755) == 0)
		made = true;
	else if (errno == EEXIST && !create_leaf)
		made = false;
	else if (errno == ENOENT)
		return -ENOENT;         /* an ancestor is missing: the caller goes level by level */
	else
		return em_err_set(err, errno, "mkdir cgroup %s", path);
	dir = openat(rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		ret = em_err_set(err, errno, "open cgroup %s", path);
		goto undo;
	}
	if (!hook)
		return dir;
	if (slash) {
		memcpy(parent, path, (size_t)(slash - path));
		parent[slash - path] = '\0';
		pfd = openat(rootfd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		pfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	}
	if (pfd < 0) {
		ret = em_err_set(err, errno, "open parent of cgroup %s", path);
		close(dir);
		goto undo;
	}
	ret = hook(pfd, dir, path, arg, err);
	close(pfd);
	if (ret < 0) {
		close(dir);
		goto undo;
	}
	return dir;
undo:
	if (made)
		unlinkat(rootfd, path, AT_REMOVEDIR);
	return ret;
}

int em_cg_mkdir_p(int rootfd, const char *path, bool create_leaf, em_cg_level_hook hook,
		  void *arg, struct em_err *err)
{
	char sub[4096];
	int fast = mkdir_leaf_fast(rootfd, path, create_leaf, hook, arg, err);

	if (fast != -ENOENT)
		return fast;
	cleanup_close int parent = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	size_t len = strlen(path);

	if (parent < 0)
		return em_err_set(err, errno, "dup cgroup root fd");
	if (len >= sizeof(sub))
		return em_err_msg(err, ENAMETOOLONG, "cgroup %s: path too long", path);
	for (size_t i = 0; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		bool leaf = path[i] == '\0';
		bool made = false;

		memcpy(sub, path, i);
		sub[i] = '\0';
		if (mkdirat(rootfd, sub, 0755) == 0)
			made = true;
		else if (errno != EEXIST || (leaf && create_leaf))
			return em_err_set(err, errno, "mkdir cgroup %s", sub);
		int dir = openat(rootfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dir < 0) {
			int ret = em_err_set(err, errno, "open cgroup %s", sub);

			if (made)
				unlinkat(rootfd, sub, AT_REMOVEDIR);
			return ret;
		}
		if (hook) {
			int ret = hook(parent, dir, sub, arg, err);

			if (ret < 0) {
				close(dir);
				unlinkat(rootfd, sub, AT_REMOVEDIR);
				return ret;
			}
		}
		close(parent);
		parent = dir;
	}
	return take_fd(&parent);
}

int em_cg_rmdir(int rootfd, const char *path, struct em_err *err)
{
	/* A task that was just SIGKILLed can keep its cgroup busy for a short while after it left
	 * cgroup.procs (v1 css teardown is asynchronous). Retry for up to ~2 s. */
	for (int i = 0;; i++) {
		if (unlinkat(rootfd, path, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || i >= 200)
			return em_err_set(err, errno, "rmdir cgroup %s", path);
		em_cg_sleep_ms(10);
	}
}

int em_cg_rmdir_tree(int rootfd, const char *path, int *removed, struct em_err *err)
{
	cleanup_closedir DIR *d = NULL;
	int fd = openat(rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;

	if (fd < 0)
		return errno == ENOENT ? 0 : em_err_set(err, errno, "open cgroup %s", path);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return em_err_set(err, errno, "open cgroup %s", path);
	}
	while ((de = readdir(d))) {
		char sub[4096];

		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, EM_CG_FREEZER_ANCHOR))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= (int)sizeof(sub))
			continue;
		int ret = em_cg_rmdir_tree(rootfd, sub, removed, err);
		if (ret < 0)
			return ret;
		/* EBUSY: processes or children remain: not an orphan, keep it */
		if (unlinkat(rootfd, sub, AT_REMOVEDIR) == 0)
			(*removed)++;
		else if (errno != EBUSY && errno != ENOTEMPTY && errno != ENOENT)
			return em_err_set(err, errno, "rmdir cgroup %s", sub);
	}
	return 0;
}

int em_cg_wait(int (*pred)(void *arg, struct em_err *err), void *arg, const char *what,
	       struct em_err *err)
{
	uint64_t deadline = now_ms() + EM_CG_WAIT_MS;
	/* states are usually reached within tens of µs (a task only has to be scheduled once):
	 * start polling fast, back off to 1 ms (a freeze on a function's path must not overshoot
	 * a 3 ms wait by 5 ms) */
	long delay_us = 20;

	for (;;) {
		int r = pred(arg, err);

		if (r != 0)
			return r < 0 ? r : 0;
		if (now_ms() > deadline)
			return em_err_msg(err, ETIMEDOUT, "%s: not reached after %d ms", what,
					  EM_CG_WAIT_MS);
		struct timespec ts = { 0, delay_us * 1000 };
		nanosleep(&ts, NULL);
		if (delay_us < 1000)
			delay_us *= 2;
	}
}

/* ------------------------------------------------------------------ paths */

/* "a//b/" -> "a/b"; refuses "..", "." and empty paths. */
static int normalize(const char *in, char **out, struct em_err *err)
{
	size_t len = strlen(in);
	cleanup_free char *buf = malloc(len + 1);
	size_t o = 0;

	if (!buf)
		return em_err_set(err, ENOMEM, "cgroup path %s", in);
	for (const char *p = in; *p;) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (!n)
			break;
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return em_err_msg(err, EINVAL, "cgroup path \"%s\": \".\" and \"..\" are not "
					  "allowed", in);
		if (o)
			buf[o++] = '/';
		memcpy(buf + o, p, n);
		o += n;
		p += n;
	}
	if (!o)
		return em_err_msg(err, EINVAL, "cgroup path \"%s\" is empty", in);
	buf[o] = '\0';
	*out = take_ptr(buf);
	return 0;
}

/* ------------------------------------------------------------------ root */

static int detect(enum em_cg_mode *mode, struct em_err *err)
{
	struct statfs fs;

	if (statfs(EM_CG_FS, &fs) < 0)
		return em_err_set(err, errno, "statfs %s", EM_CG_FS);
	if (fs.f_type == CGROUP2_SUPER_MAGIC) {
		*mode = EM_CG_V2;
		return 0;
	}
	if (fs.f_type != TMPFS_MAGIC)
		return em_err_msg(err, ENOTSUP, "%s is neither cgroup2 nor a tmpfs of v1 hierarchies "
				  "(f_type %#lx)", EM_CG_FS, (unsigned long)fs.f_type);
	if (statfs(EM_CG_FS "/unified", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
		*mode = EM_CG_HYBRID;
	else
		*mode = EM_CG_V1;
	return 0;
}

const char *em_cg_mode_name(enum em_cg_mode mode)
{
	switch (mode) {
	case EM_CG_V2: return "v2";
	case EM_CG_V1: return "v1";
	case EM_CG_HYBRID: return "hybrid";
	}
	return "?";
}

void em_cg_root_close(struct em_cg_root *root)
{
	if (!root)
		return;
	if (root->unified_fd >= 0)
		close(root->unified_fd);
	for (size_t i = 0; i < root->n_hier; i++)
		close(root->hier_fd[i]);
	free(root->parent);
	free(root);
}

int em_cg_root_open(struct em_cg_root **out, const char *parent, struct em_log *log,
		    struct em_err *err)
{
	struct em_cg_root *root = calloc(1, sizeof(*root));
	int ret;

	if (!root)
		return em_err_set(err, ENOMEM, "open cgroup root");
	root->unified_fd = -1;
	root->log = log;
	for (int c = 0; c < CTRL_N; c++)
		root->ctrl_hier[c] = -1;
	ret = normalize(parent ? parent : "ember", &root->parent, err);
	if (ret < 0)
		goto fail;
	/* the one rule that keeps ember away from everybody else's cgroups */
	if (strncmp(root->parent, "ember", 5)) {
		ret = em_err_msg(err, EINVAL, "cgroup parent \"%s\": its first component must start "
				 "with \"ember\"", root->parent);
		goto fail;
	}
	ret = detect(&root->mode, err);
	if (ret < 0)
		goto fail;
	root->ops = root->mode == EM_CG_V2 ? &em_cg_v2_ops : &em_cg_v1_ops;
	ret = root->ops->root_init(root, err);
	if (ret < 0)
		goto fail;
	*out = root;
	return 0;
fail:
	em_cg_root_close(root);
	return ret;
}

enum em_cg_mode em_cg_root_mode(const struct em_cg_root *root)
{
	return root->mode;
}

int em_cg_root_remove(struct em_cg_root *root, struct em_err *err)
{
	return root->ops->root_remove(root, err);
}

/* ------------------------------------------------------------------ cgroups */

void em_cg_close(struct em_cg *cg)
{
	if (!cg)
		return;
	if (cg->unified_fd >= 0)
		close(cg->unified_fd);
	for (size_t i = 0; i < EM_CG_MAX_HIER; i++)
		if (cg->hier_fd[i] >= 0)
			close(cg->hier_fd[i]);
	free(cg->path);
	free(cg);
}

static int new_cg(struct em_cg_root *root, const char *path, struct em_cg **out,
		  struct em_err *err)
{
	struct em_cg *cg = calloc(1, sizeof(*cg));
	cleanup_free char *norm = NULL;
	int ret;

	if (!cg)
		return em_err_set(err, ENOMEM, "cgroup %s", path);
	cg->root = root;
	cg->unified_fd = -1;
	for (size_t i = 0; i < EM_CG_MAX_HIER; i++)
		cg->hier_fd[i] = -1;
	ret = normalize(path, &norm, err);
	if (ret < 0) {
		em_cg_close(cg);
		return ret;
	}
	if (path[0] == '/') {
		cg->path = take_ptr(norm);
	} else if (asprintf(&cg->path, "%s/%s", root->parent, norm) < 0) {
		cg->path = NULL;
		em_cg_close(cg);
		return em_err_set(err, ENOMEM, "cgroup %s", path);
	}
	*out = cg;
	return 0;
}

static void set_id(struct em_cg *cg)
{
	struct stat st;

	if (cg->unified_fd >= 0 && fstat(cg->unified_fd, &st) == 0)
		cg->id = st.st_ino;
}

int em_cg_create(struct em_cg_root *root, const char *path, const struct em_cg_limits *limits,
		 struct em_cg **out, struct em_err *err)
{
	struct em_cg *cg;
	int ret = new_cg(root, path, &cg, err);

	if (ret < 0)
		return ret;
	/* make() takes back what it created itself when it fails */
	ret = root->ops->make(cg, true, err);
	if (ret == 0 && limits) {
		ret = root->ops->apply(cg, limits, err);
		if (ret < 0) {
			struct em_err ignored;

			/* nothing can have entered yet: the directories are ours and empty */
			root->ops->remove(cg, &ignored);
		}
	}
	if (ret < 0) {
		em_err_prefix(err, "create cgroup %s", cg->path);
		em_cg_close(cg);
		return ret;
	}
	set_id(cg);
	*out = cg;
	return 0;
}

int em_cg_open(struct em_cg_root *root, const char *path, struct em_cg **out, struct em_err *err)
{
	struct em_cg *cg;
	int ret = new_cg(root, path, &cg, err);

	if (ret < 0)
		return ret;
	ret = root->ops->make(cg, false, err);
	if (ret < 0) {
		em_cg_close(cg);
		return em_err_prefix(err, "open cgroup %s", path);
	}
	set_id(cg);
	*out = cg;
	return 0;
}

const char *em_cg_path(const struct em_cg *cg)
{
	return cg->path;
}

uint64_t em_cg_id(const struct em_cg *cg)
{
	return cg->id;
}

int em_cg_attach(struct em_cg *cg, pid_t pid, struct em_err *err)
{
	int ret = cg->root->ops->attach(cg, pid, err);

	return ret < 0 ? em_err_prefix(err, "attach pid %d to cgroup %s", (int)pid, cg->path) : 0;
}

int em_cg_clone_fd(struct em_cg *cg, struct em_err *err)
{
	int fd;

	if (cg->unified_fd < 0)
		return em_err_msg(err, EOPNOTSUPP, "cgroup %s: no unified hierarchy on this host for "
				  "CLONE_INTO_CGROUP", cg->path);
	fd = openat(cg->unified_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return em_err_set(err, errno, "cgroup %s: open for CLONE_INTO_CGROUP", cg->path);
	return fd;
}

int em_cg_delegate_procs(struct em_cg *cg, uid_t uid, gid_t gid, struct em_err *err)
{
	if (cg->unified_fd < 0)
		return em_err_msg(err, EOPNOTSUPP, "cgroup %s: no unified hierarchy on this host to "
				  "delegate", cg->path);
	if (fchownat(cg->unified_fd, "cgroup.procs", uid, gid, 0) < 0)
		return em_err_set(err, errno, "cgroup %s: chown cgroup.procs to %u:%u", cg->path,
				  (unsigned)uid, (unsigned)gid);
	return 0;
}

bool em_cg_needs_attach(const struct em_cg *cg)
{
	return !cg->root->ops->clone_into_complete;
}

int em_cg_update(struct em_cg *cg, const struct em_cg_limits *limits, struct em_err *err)
{
	int ret = cg->root->ops->apply(cg, limits, err);

	if (ret < 0)
		em_err_prefix(err, "update cgroup %s", cg->path);
	return ret;
}

int em_cg_freeze(struct em_cg *cg, struct em_err *err)
{
	int ret = cg->root->ops->set_frozen(cg, true, err);

	return ret < 0 ? em_err_prefix(err, "freeze cgroup %s", cg->path) : 0;
}

int em_cg_thaw(struct em_cg *cg, struct em_err *err)
{
	int ret = cg->root->ops->set_frozen(cg, false, err);

	return ret < 0 ? em_err_prefix(err, "thaw cgroup %s", cg->path) : 0;
}

int em_cg_frozen(struct em_cg *cg, bool *frozen, struct em_err *err)
{
	int ret = cg->root->ops->frozen(cg, frozen, err);

	return ret < 0 ? em_err_prefix(err, "read freezer state of cgroup %s", cg->path) : 0;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

int em_cg_pids(struct em_cg *cg, pid_t **pids, size_t *n, struct em_err *err)
{
	pid_t *v = NULL;
	size_t cnt = 0, u = 0;
	int ret = 0;

	if (cg->unified_fd >= 0)
		ret = em_cg_read_procs(cg->unified_fd, cg->path, &v, &cnt, err);
	for (size_t i = 0; ret == 0 && i < EM_CG_MAX_HIER; i++)
		if (cg->hier_fd[i] >= 0)
			ret = em_cg_read_procs(cg->hier_fd[i], cg->path, &v, &cnt, err);
	if (ret < 0) {
		free(v);
		return em_err_prefix(err, "list processes of cgroup %s", cg->path);
	}
	qsort(v, cnt, sizeof(pid_t), cmp_pid);
	for (size_t i = 0; i < cnt; i++)
		if (!u || v[u - 1] != v[i])
			v[u++] = v[i];
	*pids = v;
	*n = u;
	return 0;
}

int em_cg_kill(struct em_cg *cg, int sig, struct em_err *err)
{
	cleanup_free pid_t *pids = NULL;
	size_t n = 0;
	int ret;

	if (sig == SIGKILL) {
		ret = cg->root->ops->kill_all(cg, err);
		if (ret < 0)
			em_err_prefix(err, "kill cgroup %s", cg->path);
		return ret;
	}
	/* other signals: the processes may handle them, nothing to wait for */
	ret = em_cg_pids(cg, &pids, &n, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++)
		if (kill(pids[i], sig) < 0 && errno != ESRCH)
			return em_err_set(err, errno, "kill cgroup %s: pid %d, signal %d",
					  cg->path, (int)pids[i], sig);
	return 0;
}

int em_cg_stats(struct em_cg *cg, struct em_cg_stats *st, struct em_err *err)
{
	memset(st, 0, sizeof(*st));
	st->memory_max = st->pids_max = UINT64_MAX;
	int ret = cg->root->ops->stats(cg, st, err);

	return ret < 0 ? em_err_prefix(err, "read stats of cgroup %s", cg->path) : 0;
}

int em_cg_destroy(struct em_cg *cg, bool force, struct em_err *err)
{
	cleanup_free pid_t *pids = NULL;
	size_t n = 0;
	int ret = em_cg_pids(cg, &pids, &n, err);

	if (ret < 0)
		return ret;
	if (n && !force)
		return em_err_msg(err, EBUSY, "destroy cgroup %s: %zu process%s still inside "
				  "(pid %d%s); kill them or force", cg->path, n, n > 1 ? "es" : "",
				  (int)pids[0], n > 1 ? ", ..." : "");
	if (n) {
		ret = em_cg_kill(cg, SIGKILL, err);
		if (ret < 0)
			return em_err_prefix(err, "destroy cgroup %s", cg->path);
	}
	ret = cg->root->ops->remove(cg, err);
	if (ret < 0)
		return em_err_prefix(err, "destroy cgroup %s", cg->path);
	em_cg_close(cg);
	return 0;
}

int em_cg_gc(struct em_cg_root *root, struct em_err *err)
{
	int removed = 0, ret = 0;

	if (root->unified_fd >= 0)
		ret = em_cg_rmdir_tree(root->unified_fd, root->parent, &removed, err);
	for (size_t i = 0; ret == 0 && i < root->n_hier; i++)
		ret = em_cg_rmdir_tree(root->hier_fd[i], root->parent, &removed, err);
	if (ret < 0)
		return em_err_prefix(err, "gc below cgroup %s", root->parent);
	if (removed)
		em_info(root->log, "cgroup gc: removed %d empty cgroup director%s below %s", removed,
			removed > 1 ? "ies" : "y", root->parent);
	return removed;
}

/* Names of the directories below the parent in one hierarchy, added to names (no duplicates). */
static int child_names(int hier_fd, const char *parent, char ***names, size_t *n,
		       struct em_err *err)
{
	int fd = openat(hier_fd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;

	if (fd < 0)
		return errno == ENOENT ? 0 : em_err_set(err, errno, "open cgroup %s", parent);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return em_err_set(err, errno, "list cgroup %s", parent);
	}
	while ((de = readdir(d))) {
		bool dup = false;

		if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
		    !strcmp(de->d_name, "ember-freezer-anchor"))
			continue;
		for (size_t i = 0; i < *n && !dup; i++)
			dup = !strcmp((*names)[i], de->d_name);
		if (dup)
			continue;
		char **nv = realloc(*names, (*n + 1) * sizeof(*nv));
		if (!nv || !(nv[*n] = strdup(de->d_name))) {
			if (nv)
				*names = nv;
			closedir(d);
			return em_err_set(err, ENOMEM, "list cgroup %s", parent);
		}
		*names = nv;
		(*n)++;
	}
	closedir(d);
	return 0;
}

/* Kill and remove every cgroup below `rel` (relative to the parent; "" for the parent itself),
 * deepest first: a template's subtree (runtime/host/template.h) nests its instances. */
static int reap_below(struct em_cg_root *root, const char *rel, int depth, int *removed,
		      struct em_err *err)
{
	char **names = NULL, dir[PATH_MAX], sub[PATH_MAX];
	size_t n = 0;
	int ret = 0;

	if (depth > 8)
		return em_err_msg(err, ELOOP, "cgroup %s/%s: nested too deep", root->parent, rel);
	snprintf(dir, sizeof(dir), "%s%s%s", root->parent, rel[0] ? "/" : "", rel);
	if (root->unified_fd >= 0)
		ret = child_names(root->unified_fd, dir, &names, &n, err);
	for (size_t i = 0; ret == 0 && i < root->n_hier; i++)
		ret = child_names(root->hier_fd[i], dir, &names, &n, err);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		struct em_cg *cg;

		snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
		ret = reap_below(root, sub, depth + 1, removed, err);
		if (ret == 0)
			ret = em_cg_open(root, sub, &cg, err);
		if (ret == 0) {
			ret = em_cg_destroy(cg, true, err);
			if (ret < 0)
				em_cg_close(cg);
			else
				(*removed)++;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

int em_cg_reap_children(struct em_cg_root *root, struct em_err *err)
{
	int removed = 0, ret = reap_below(root, "", 0, &removed, err);

	if (ret < 0)
		return em_err_prefix(err, "reap the cgroups below %s", root->parent);
	return removed;
}

void em_cg_limits_free(struct em_cg_limits *l)
{
	if (!l)
		return;
	free(l->cpuset_cpus);
	free(l->cpuset_mems);
	free(l->io_max);
	for (size_t i = 0; i < l->n_raw; i++) {
		free(l->raw[i].file);
		free(l->raw[i].value);
	}
	free(l->raw);
	free(l->devices);
	memset(l, 0, sizeof(*l));
}
