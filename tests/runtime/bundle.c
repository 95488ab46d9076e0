/* tests/runtime/bundle.c — see bundle.h. */
#include "bundle.h"
#include "cgroups/cgroups.h"
#include "common/err.h"
#include "runtime/oci.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char build_dir[PATH_MAX];

static const char *build(void)
{
	if (!build_dir[0]) {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

		cr_assert_gt(n, 0);
		exe[n] = '\0';
		*strrchr(exe, '/') = '\0'; /* build/tests */
		*strrchr(exe, '/') = '\0'; /* build */
		snprintf(build_dir, sizeof(build_dir), "%s", exe);
	}
	return build_dir;
}

const char *t_ember(void)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/ember", build());
	return p;
}

const char *t_rootfs(void)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/rootfs", build());
	return p;
}

const char *t_cgroup_parent(void)
{
	static char name[64];

	if (!name[0])
		snprintf(name, sizeof(name), "ember-test-rt-%d", getpid());
	return name;
}

void bundle_init(struct bundle *b, const char *const *args)
{
	json_error_t jerr;
	char *spec = em_oci_default_spec(false, 0, 0);

	t_cgroup_parent(); /* fixed now, before any fork of the test */
	snprintf(b->dir, sizeof(b->dir), "/tmp/ember-test-bundle-XXXXXX");
	cr_assert_not_null(mkdtemp(b->dir));
	chmod(b->dir, 0755); /* a user namespace's root must be able to reach the rootfs */
	snprintf(b->root, sizeof(b->root), "/run/ember-test-XXXXXX");
	cr_assert_not_null(mkdtemp(b->root));
	cr_assert_not_null(spec);
	b->cfg = json_loads(spec, 0, &jerr);
	free(spec);
	cr_assert_not_null(b->cfg, "default spec: %s", jerr.text);
	/* a private rootfs per bundle (hard links: cheap), so a leaked container process is
	 * recognisable by its root directory */
	char cmd[PATH_MAX * 2];
	snprintf(cmd, sizeof(cmd), "cp -al '%s' '%s/rootfs'", t_rootfs(), b->dir);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	json_object_set_new(cfg_obj(b, "root"), "path", json_string("rootfs"));
	json_object_set_new(cfg_obj(b, "process"), "terminal", json_false());
	if (args)
		cfg_set_args(b, args);
}

void bundle_write(struct bundle *b)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/config.json", b->dir);
	cr_assert_eq(json_dump_file(b->cfg, path, JSON_INDENT(2)), 0);
}

static void rm_tree(const char *path)
{
	char cmd[PATH_MAX + 32];

	/* test dirs only, made by mkdtemp above */
	snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system '%s'", path);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", path);
}

void bundle_fini(struct bundle *b)
{
	DIR *d = opendir(b->root);
	struct dirent *de;
	int left = 0;

	if (d) {
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				left++;
		closedir(d);
	}
	rm_tree(b->dir);
	rm_tree(b->root);
	json_decref(b->cfg);
	cr_expect_eq(left, 0, "ember left %d entries in its state root", left);
	/* the per-test cgroup parent (and its freezer anchor) goes too; it fails if a container's
	 * cgroup was left inside */
	struct em_cg_root *cg = NULL;
	struct em_err err;
	if (em_cg_root_open(&cg, t_cgroup_parent(), NULL, &err) == 0) {
		cr_expect_eq(em_cg_root_remove(cg, &err), 0, "cgroup parent: %s", err.msg);
		em_cg_root_close(cg);
	}
}

json_t *cfg_obj(struct bundle *b, const char *path)
{
	char buf[256], *save = NULL;
	json_t *o = b->cfg;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
		json_t *n = json_object_get(o, k);

		if (!n) {
			n = json_object();
			json_object_set_new(o, k, n);
		}
		o = n;
	}
	return o;
}

void cfg_set_args(struct bundle *b, const char *const *args)
{
	json_t *a = json_array();

	for (; *args; args++)
		json_array_append_new(a, json_string(*args));
	json_object_set_new(cfg_obj(b, "process"), "args", a);
}

void cfg_drop_ns(struct bundle *b, const char *type)
{
	json_t *ns = json_object_get(cfg_obj(b, "linux"), "namespaces");
	size_t i;
	json_t *v;

	json_array_foreach(ns, i, v) {
		if (!strcmp(json_string_value(json_object_get(v, "type")), type)) {
			json_array_remove(ns, i);
			return;
		}
	}
}

static void drain(int fd, char *buf, size_t cap, size_t *len)
{
	ssize_t n;

	while ((n = read(fd, buf + *len, cap - 1 - *len)) > 0)
		*len += (size_t)n;
	buf[*len] = '\0';
}

void ember_fd3(struct bundle *b, struct run_result *r, const char *const *args, int fd3)
{
	int out[2], err[2];
	const char *argv[64];
	size_t n = 0, ol = 0, el = 0;
	pid_t pid;

	argv[n++] = t_ember();
	argv[n++] = "--root";
	argv[n++] = b->root;
	argv[n++] = "--cgroup-parent";
	argv[n++] = t_cgroup_parent();
	for (; *args && n < 63; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		if (fd3 >= 0)
			dup2(fd3, 3);
		if (chdir(b->dir) < 0)
			_exit(126);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	/* Read until ember exits, not until the pipes close: a created container's process holds
	 * them as its stdio (as the client's fifos with containerd). */
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	int st;
	bool exited = false;
	while (!exited) {
		struct pollfd p[2] = { { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 } };
		pid_t w;

		poll(p, 2, 20);
		drain(out[0], r->out, sizeof(r->out), &ol);
		drain(err[0], r->err, sizeof(r->err), &el);
		w = waitpid(pid, &st, WNOHANG);
		cr_assert_geq(w, 0);
		exited = w == pid;
	}
	drain(out[0], r->out, sizeof(r->out), &ol);
	drain(err[0], r->err, sizeof(r->err), &el);
	r->out[ol] = '\0';
	r->err[el] = '\0';
	close(out[0]);
	close(err[0]);
	r->status = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

void ember(struct bundle *b, struct run_result *r, const char *const *args)
{
	ember_fd3(b, r, args, -1);
}

void assert_no_leak(struct bundle *b, const char *id)
{
	static const char *const hier[] = { "memory", "cpu", "pids", "freezer", "unified", "" };
	char path[PATH_MAX], line[4096];
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", b->root, id);
	cr_expect_neq(stat(path, &st), 0, "state dir %s left behind", path);
	for (size_t i = 0; i < sizeof(hier) / sizeof(hier[0]); i++) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s%s%s/%s", hier[i],
			 hier[i][0] ? "/" : "", t_cgroup_parent(), id);
		cr_expect_neq(stat(path, &st), 0, "cgroup %s left behind", path);
	}
	f = fopen("/proc/self/mountinfo", "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		cr_expect_null(strstr(line, b->dir), "mount left behind: %s", line);
	fclose(f);
	/* no process has its root in this bundle's rootfs (compared by inode: a readlink of
	 * /proc/PID/root is relative to that process's own mount namespace) */
	struct stat rootst;
	snprintf(path, sizeof(path), "%s/rootfs", b->dir);
	cr_assert_eq(stat(path, &rootst), 0);
	DIR *d = opendir("/proc");
	struct dirent *de;
	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		char link[300];
		struct stat pst;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(link, sizeof(link), "/proc/%s/root", de->d_name);
		if (stat(link, &pst) < 0)
			continue;
		cr_expect(pst.st_dev != rootst.st_dev || pst.st_ino != rootst.st_ino,
			  "process %s left behind in the container's rootfs", de->d_name);
	}
	closedir(d);
}

char *first_line(char *s)
{
	char *nl = strchr(s, '\n');

	if (nl)
		*nl = '\0';
	return s;
}
