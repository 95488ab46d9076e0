/* tools/bench/peers.c — see peers.h. crun and runc as bench-run and bench-host run them.
 *
 * crun 1.8.1 refuses every container on a hybrid host whose cgroup2 hierarchy has a controller
 * enabled ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"), whatever
 * --cgroup-manager says. There it runs in a private mount namespace (slave propagation: nothing
 * leaks to the machine) where an empty tmpfs hides /sys/fs/cgroup/unified, so it sees a v1-only
 * host and uses the v1 hierarchies with its cgroupfs manager; the namespace and the tmpfs die
 * with the last fd. (crun still makes a directory and writes a cgroup.procs file per container in
 * that tmpfs, and leaves them: 32 MB is room for thousands of runs.) runc handles hybrid hosts: it
 * runs as is. */
#include "tools/bench/peers.h"
#include "common/err.h"
#include "common/fs.h"
#include "tools/bench/stats.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define CGROUP_SUPER_MAGIC  0x27e0eb
#define CGROUP2_SUPER_MAGIC 0x63677270
#define CPU_PERIOD_US       100000

extern char **environ;

static bool find_exe(const char *name, char out[PATH_MAX])
{
	const char *env = getenv("PATH");
	char buf[4096];

	/* root's sbin first: runc/crun live in /usr/sbin or /usr/bin depending on the package */
	snprintf(buf, sizeof(buf), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:%s",
		 env ? env : "");
	for (char *save, *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, PATH_MAX, "%s/%s", dir, name);
		if (access(out, X_OK) == 0)
			return true;
	}
	out[0] = 0;
	return false;
}

/* crun 1.8.1 on a hybrid host whose cgroup2 has controllers (see the top of this file): a
 * private mount namespace, slave so nothing propagates back, where an empty tmpfs hides
 * /sys/fs/cgroup/unified. rt->cg2_controllers and rt->mntns_err say what happened, for a tool
 * that words rt->config its own way. */
static void crun_mntns(struct peer_rt *rt)
{
	char buf[256] = "";
	struct em_err err = { 0 };
	struct statfs sf;
	int host, e = 0;

	snprintf(rt->config, sizeof(rt->config), "plain crun run");
	if (statfs("/sys/fs/cgroup/unified", &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC)
		return;
	if (em_read_small_at(AT_FDCWD, "/sys/fs/cgroup/unified/cgroup.controllers", buf, sizeof(buf),
			     &err) <= 0 || buf[0] == '\n')
		return;   /* no controllers on cgroup2: crun takes the host as it is */
	buf[strcspn(buf, "\n")] = 0;
	snprintf(rt->cg2_controllers, sizeof(rt->cg2_controllers), "%s", buf);
	host = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (host < 0) {
		e = errno;
	} else if (unshare(CLONE_NEWNS) < 0) {
		e = errno;
		close(host);
		host = -1;
	} else {
		/* slave first: the tmpfs below must never propagate to the machine's namespace */
		if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0 ||
		    mount("tmpfs", "/sys/fs/cgroup/unified", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "size=32m,mode=755") < 0)
			e = errno;
		else
			rt->mntns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
		/* stuck in the private namespace, everything after would run with cgroup2
		 * hidden: nothing sensible is left to do */
		if (setns(host, CLONE_NEWNS) < 0) {
			fprintf(stderr, "%s: setns back to the host mount namespace: %s\n",
				program_invocation_short_name, strerror(errno));
			exit(1);
		}
		close(host);
	}
	rt->mntns_err = e;
	if (rt->mntns >= 0)
		snprintf(rt->config, sizeof(rt->config), "crun run (cgroupfs manager) in a private "
			 "mount ns with /sys/fs/cgroup/unified hidden (cgroup2 has controllers: %s)",
			 buf);
	else
		snprintf(rt->config, sizeof(rt->config), "crun run as is (could not hide cgroup2 "
			 "with controllers %s: %s)", buf, strerror(e));
}

bool peer_init(struct peer_rt *rt, const char *name, const char *root)
{
	memset(rt, 0, sizeof(*rt));
	rt->name = name;
	rt->mntns = -1;
	snprintf(rt->root, sizeof(rt->root), "%s", root);
	snprintf(rt->config, sizeof(rt->config), "plain %s run", name);
	if (!find_exe(name, rt->path))
		return false;
	if (!strcmp(name, "crun"))
		crun_mntns(rt);
	return true;
}

void peer_fini(struct peer_rt *rt)
{
	if (rt->mntns >= 0)
		close(rt->mntns);
	rt->mntns = -1;
}

/* The example's config.json with the rootfs made absolute and the host's limits. */
int peer_make_bundle(const char *src, const char *dst, unsigned memory_mb, unsigned cpu_quota_us,
		     unsigned pids)
{
	char cfg[PATH_MAX + 16], rootfs[PATH_MAX + 8];
	json_error_t jerr;
	json_t *c, *linux_, *res;
	int ret = 0;

	if (mkdir(dst, 0755) < 0)
		return -errno;
	snprintf(cfg, sizeof(cfg), "%s/config.json", src);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", src);
	c = json_load_file(cfg, 0, &jerr);
	if (!c)
		return -EINVAL;
	linux_ = json_object_get(c, "linux");
	if (!json_is_object(json_object_get(c, "root")) || !json_is_object(linux_)) {
		json_decref(c);
		return -EINVAL;
	}
	json_object_set_new(json_object_get(c, "root"), "path", json_string(rootfs));
	res = json_object_get(linux_, "resources");
	if (!json_is_object(res)) {
		res = json_object();
		json_object_set_new(linux_, "resources", res);
	}
	json_object_set_new(res, "memory", json_pack("{s:I}", "limit",
						     (json_int_t)memory_mb << 20));
	json_object_set_new(res, "cpu", json_pack("{s:I,s:I}", "quota", (json_int_t)cpu_quota_us,
						  "period", (json_int_t)CPU_PERIOD_US));
	json_object_set_new(res, "pids", json_pack("{s:I}", "limit", (json_int_t)pids));
	snprintf(cfg, sizeof(cfg), "%s/config.json", dst);
	if (json_dump_file(c, cfg, JSON_INDENT(1)) < 0)
		ret = -EIO;
	json_decref(c);
	return ret;
}

void peer_describe_status(int st, char *buf, size_t len)
{
	if (st < 0)
		snprintf(buf, len, "spawn: %s", strerror(-st));
	else if (WIFEXITED(st))
		snprintf(buf, len, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "status %#x", st);
}

/* The vfork child only makes system calls (setns, dup2, execve) before it execs or _exits. */
pid_t peer_spawn(const struct peer_rt *rt, char *const argv[], int in, int out, int errfd)
{
	/* volatile: live across vfork (-Wclobbered) */
	volatile int nsfd = rt->mntns, vin = in, vout = out, verr = errfd;
	pid_t pid = vfork();

	if (pid == 0) {
		if (nsfd >= 0 && setns(nsfd, CLONE_NEWNS) < 0)
			_exit(126);
		if (dup2(vin, 0) < 0 || dup2(vout, 1) < 0 || dup2(verr, 2) < 0)
			_exit(126);
		execve(argv[0], argv, environ);
		_exit(127);
	}
	return pid < 0 ? -errno : pid;
}

int peer_wait(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return status;
}

int peer_run(const struct peer_rt *rt, const char *bundle, const char *payload_file,
	     const char *id, int errfd, char *out, size_t cap, size_t *outlen, double *us)
{
	char *argv[] = { (char *)rt->path, "--root", (char *)rt->root, "run", "--bundle",
			 (char *)bundle, (char *)id, NULL };
	int pipefd[2], in, status;
	size_t n = 0;
	double t0;
	pid_t pid;

	in = open(payload_file, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		int e = errno;
		close(in);
		return -e;
	}
	t0 = bench_now_us();
	pid = peer_spawn(rt, argv, in, pipefd[1], errfd);
	close(in);
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		return pid;
	}
	for (;;) {
		char sink[4096];
		ssize_t r = n + 1 < cap ? read(pipefd[0], out + n, cap - 1 - n) :
					  read(pipefd[0], sink, sizeof(sink));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (n + 1 < cap)
			n += (size_t)r;
	}
	close(pipefd[0]);
	status = peer_wait(pid);
	*us = bench_now_us() - t0;
	out[n] = 0;
	*outlen = n;
	return status;
}

void peer_delete(const struct peer_rt *rt, const char *id)
{
	char *argv[] = { (char *)rt->path, "--root", (char *)rt->root, "delete", "--force",
			 (char *)id, NULL };
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	pid_t pid;

	if (devnull < 0)
		return;
	pid = peer_spawn(rt, argv, devnull, devnull, devnull);
	close(devnull);
	if (pid > 0)
		peer_wait(pid);
}

unsigned peer_cleanup_root(const struct peer_rt *rt, const char *prefix)
{
	struct em_err err = { 0 };
	unsigned left = 0;
	DIR *d;

	if (!rt->path[0] || !rt->root[0])
		return 0;
	d = opendir(rt->root);
	if (d) {
		struct dirent *de;

		while ((de = readdir(d))) {
			if (de->d_type != DT_DIR || strncmp(de->d_name, prefix, strlen(prefix)))
				continue;
			left++;
			peer_delete(rt, de->d_name);
		}
		closedir(d);
	}
	if (em_rm_rf_at(AT_FDCWD, rt->root, &err) < 0 && err.code != ENOENT)
		fprintf(stderr, "%s: remove %s: %s\n", program_invocation_short_name, rt->root,
			err.msg);
	return left;
}

/* The paths this process sits at in each v1 hierarchy (runc puts a container below its own
 * cgroup where it is not at the root). */
static size_t own_cgroup_paths(char out[][PATH_MAX], size_t max)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[PATH_MAX + 64];
	size_t n = 0;

	if (!f)
		return 0;
	while (n < max && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');
		bool dup = false;

		p = p ? strchr(p + 1, ':') : NULL;
		if (!p)
			continue;
		p++;
		p[strcspn(p, "\n")] = 0;
		if (!strcmp(p, "/"))
			continue;
		for (size_t i = 0; i < n; i++)
			dup |= !strcmp(out[i], p);
		if (!dup)
			snprintf(out[n++], PATH_MAX, "%s", p);
	}
	fclose(f);
	return n;
}

unsigned peer_sweep_cgroups(char *const *ids, size_t n_ids)
{
	char own[16][PATH_MAX], hier[PATH_MAX + 256], p[3 * PATH_MAX];
	size_t n_own = own_cgroup_paths(own, 16);
	unsigned removed = 0;
	struct dirent *de;
	struct statfs sf;
	DIR *d = opendir("/sys/fs/cgroup");

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(hier, sizeof(hier), "/sys/fs/cgroup/%s", de->d_name);
		if (statfs(hier, &sf) < 0 ||
		    (sf.f_type != CGROUP_SUPER_MAGIC && sf.f_type != CGROUP2_SUPER_MAGIC))
			continue;
		for (size_t i = 0; i < n_ids; i++)
			for (size_t o = 0; o <= n_own; o++) {
				snprintf(p, sizeof(p), "%s%s/%s", hier, o < n_own ? own[o] : "",
					 ids[i]);
				if (rmdir(p) == 0)
					removed++;
			}
	}
	closedir(d);
	return removed;
}

