/* tests/cgroups/helpers.h — shared by the cgroups tests: a per-test parent cgroup
 * ("ember-test-<pid>") opened in .init and removed in .fini with everything below it, forked
 * workloads held on a pipe until they are attached, and direct reads of the kernel's files
 * (tests check what the kernel holds, not what the library says).
 *
 * Every test suite uses `.init = t_setup, .fini = t_teardown`; t_teardown fails the test if
 * anything is left behind. */
#ifndef EMBER_TESTS_CGROUPS_HELPERS_H
#define EMBER_TESTS_CGROUPS_HELPERS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroups/cgroups.h"
#include "common/err.h"
#include "common/log.h"

#define T_MAX_CG 16
#define T_MAX_KIDS 64

static struct em_cg_root *t_root;
static struct em_log t_log;
static int t_log_fd = -1;
static char t_parent[64];
static struct em_cg *t_cgs[T_MAX_CG];
static pid_t t_kids[T_MAX_KIDS];

static inline double t_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A test that crashed never ran its .fini: its parent "ember-test-<pid>" (or "-sibling") is
 * left behind. Remove those whose pid is gone, with the library's own tools (kill what is
 * inside, gc, remove the parent). Other helpers' "ember-test-<name>-..." are not touched. */
static inline void t_remove_stale(void)
{
	const char *dir = access("/sys/fs/cgroup/pids", F_OK) == 0 ? "/sys/fs/cgroup/pids"
				  : "/sys/fs/cgroup";
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		long pid;

		if (strncmp(de->d_name, "ember-test-", 11))
			continue;
		pid = strtol(de->d_name + 11, &end, 10);
		if (end == de->d_name + 11 || (*end && strcmp(end, "-sibling")) || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		struct em_err err = { 0 };
		struct em_cg_root *r = NULL;
		char sub[512];
		DIR *c;

		if (em_cg_root_open(&r, de->d_name, NULL, &err) < 0)
			continue;
		em_cg_gc(r, &err);
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		if ((c = opendir(sub))) {
			struct dirent *ce;

			while ((ce = readdir(c))) {
				struct em_cg *cg;

				if (ce->d_type != DT_DIR || ce->d_name[0] == '.' ||
				    !strcmp(ce->d_name, "ember-freezer-anchor"))
					continue;
				if (em_cg_open(r, ce->d_name, &cg, &err) == 0 &&
				    em_cg_destroy(cg, true, &err) < 0)
					em_cg_close(cg);
			}
			closedir(c);
		}
		em_cg_gc(r, &err);
		if (em_cg_root_remove(r, &err) == 0)
			cr_log_warn("removed %s, left behind by a crashed test", de->d_name);
		em_cg_root_close(r);
	}
	closedir(d);
}

static inline void t_setup(void)
{
	struct em_err err = { 0 };

	t_remove_stale();

	/* warnings land in a memfd the tests can read back */
	t_log_fd = memfd_create("ember-test-log", MFD_CLOEXEC);
	cr_assert(t_log_fd >= 0);
	em_log_init_fd(&t_log, t_log_fd, EM_LOG_DEBUG, EM_LOG_TEXT);
	snprintf(t_parent, sizeof(t_parent), "ember-test-%d", (int)getpid());
	cr_assert_eq(em_cg_root_open(&t_root, t_parent, &t_log, &err), 0, "%s", err.msg);
}

static inline char *t_log_text(void)
{
	static char buf[8192];
	ssize_t n = pread(t_log_fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static inline struct em_cg *t_create(const char *name, const struct em_cg_limits *l)
{
	struct em_err err = { 0 };
	struct em_cg *cg = NULL;

	cr_assert_eq(em_cg_create(t_root, name, l, &cg, &err), 0, "%s", err.msg);
	for (int i = 0; i < T_MAX_CG; i++)
		if (!t_cgs[i]) {
			t_cgs[i] = cg;
			return cg;
		}
	cr_assert_fail("too many test cgroups");
	return NULL;
}

/* the test destroyed it itself */
static inline void t_forget(struct em_cg *cg)
{
	for (int i = 0; i < T_MAX_CG; i++)
		if (t_cgs[i] == cg)
			t_cgs[i] = NULL;
}

static inline void t_track(pid_t pid)
{
	for (int i = 0; i < T_MAX_KIDS; i++)
		if (!t_kids[i]) {
			t_kids[i] = pid;
			return;
		}
}

static inline int t_reap(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	for (int i = 0; i < T_MAX_KIDS; i++)
		if (t_kids[i] == pid)
			t_kids[i] = 0;
	return st;
}

/* Fork a child that waits until it is in cg (every hierarchy), then runs fn(arg) and exits
 * with its return value. */
static inline pid_t t_spawn(struct em_cg *cg, int (*fn)(long), long arg)
{
	struct em_err err = { 0 };
	int p[2];
	pid_t pid;
	char c = 0;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		/* a test that crashes runs no .fini: its workloads must not outlive it (they would
		 * also keep Criterion's output pipe open) */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			_exit(120);
		_exit(fn(arg));
	}
	t_track(pid);
	close(p[0]);
	if (cg)
		cr_assert_eq(em_cg_attach(cg, pid, &err), 0, "%s", err.msg);
	cr_assert_eq(write(p[1], &c, 1), 1);
	close(p[1]);
	return pid;
}

static inline void t_teardown(void)
{
	struct em_err err = { 0 };
	char path[256];
	int left = 0;

	if (!t_root)
		return;
	for (int i = 0; i < T_MAX_CG; i++)
		if (t_cgs[i]) {
			if (em_cg_destroy(t_cgs[i], true, &err) < 0) {
				cr_log_error("teardown: %s", err.msg);
				left++;
			}
			t_cgs[i] = NULL;
		}
	for (int i = 0; i < T_MAX_KIDS; i++)
		if (t_kids[i]) {
			kill(t_kids[i], SIGKILL);
			t_reap(t_kids[i]);
		}
	if (em_cg_gc(t_root, &err) < 0)
		cr_log_error("teardown gc: %s", err.msg);
	if (em_cg_root_remove(t_root, &err) < 0) {
		cr_log_error("teardown: %s", err.msg);
		left++;
	}
	em_cg_root_close(t_root);
	t_root = NULL;
	close(t_log_fd);
	/* nothing named after this test may be left in any hierarchy */
	static const char *const dirs[] = { "", "unified/", "cpu/", "cpuacct/", "cpuset/",
					    "memory/", "pids/", "freezer/", "blkio/", "devices/" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s%s", dirs[i], t_parent);
		if (access(path, F_OK) == 0) {
			cr_log_error("leaked cgroup %s", path);
			left++;
		}
	}
	cr_assert_eq(left, 0, "the test left %d cgroup(s) behind", left);
}

/* the kernel file of cg: v1/hybrid "/sys/fs/cgroup/<ctrl>/<path>/<v1file>", v2
 * "/sys/fs/cgroup/<path>/<v2file>" */
static inline const char *t_knob_path(struct em_cg *cg, const char *ctrl, const char *v1file,
				      const char *v2file)
{
	static char path[512];

	if (em_cg_root_mode(t_root) == EM_CG_V2)
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/%s", em_cg_path(cg), v2file);
	else
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/%s/%s", ctrl, em_cg_path(cg), v1file);
	return path;
}

static inline char *t_read(const char *path)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert(n >= 0, "read %s: %s", path, strerror(errno));
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return buf;
}

static inline char *t_knob(struct em_cg *cg, const char *ctrl, const char *v1file,
			   const char *v2file)
{
	return t_read(t_knob_path(cg, ctrl, v1file, v2file));
}

static inline bool t_is_v2(void)
{
	return em_cg_root_mode(t_root) == EM_CG_V2;
}

static inline int t_spin_forever(long unused)
{
	volatile unsigned long x = 0;

	(void)unused;
	for (;;)
		x++;
	return 0;
}

static inline int t_sleep_forever(long unused)
{
	(void)unused;
	for (;;)
		pause();
	return 0;
}

static inline uint64_t t_cpu_ns(struct em_cg *cg)
{
	struct em_err err = { 0 };
	struct em_cg_stats st;

	cr_assert_eq(em_cg_stats(cg, &st, &err), 0, "%s", err.msg);
	return st.cpu_usage_ns;
}

#endif
