/* tests/cgroups/test_attach.c — attach puts a process in every hierarchy (the unified companion
 * included on hybrid hosts), and clone3(CLONE_INTO_CGROUP) with em_cg_clone_fd places a child
 * in the unified cgroup from its first instruction. */
#include "helpers.h"

#include <linux/sched.h>
#include <sys/syscall.h>

TestSuite(cg_attach, .init = t_setup, .fini = t_teardown, .timeout = 60);

/* the line of /proc/PID/cgroup for a controller ("" = the unified line "0::") */
static char *proc_cgroup(pid_t pid, const char *ctrl)
{
	static char line[512];
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;

		if (!b)
			continue;
		*b = '\0';
		line[strcspn(b + 1, "\n") + (b + 1 - line)] = '\0';
		if ((!*ctrl && a[1] == '\0') || (*ctrl && !strcmp(a + 1, ctrl))) {
			fclose(f);
			return b + 1;
		}
	}
	fclose(f);
	return NULL;
}

Test(cg_attach, in_every_hierarchy)
{
	static const char *const ctrls[] = { "cpu", "cpuacct", "cpuset", "memory", "pids", "freezer" };
	struct em_cg *cg = t_create("ember-test-att", NULL);
	pid_t pid = t_spawn(cg, t_sleep_forever, 0);
	char want[256];

	snprintf(want, sizeof(want), "/%s", em_cg_path(cg));
	if (em_cg_root_mode(t_root) != EM_CG_V1)
		cr_assert_str_eq(proc_cgroup(pid, ""), want);
	if (t_is_v2())
		return;
	for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
		char *got = proc_cgroup(pid, ctrls[i]);

		if (got)
			cr_assert_str_eq(got, want, "%s: %s", ctrls[i], got);
	}
}

Test(cg_attach, clone_into_cgroup)
{
	struct em_err err = { 0 };
	struct em_cg *cg = t_create("ember-test-clone", NULL);
	struct clone_args args = { 0 };
	int fd = em_cg_clone_fd(cg, &err), p[2];
	char want[256], got[256] = "";
	pid_t pid;
	ssize_t n;

	if (em_cg_root_mode(t_root) == EM_CG_V1) {
		cr_assert_eq(fd, -EOPNOTSUPP);
		return;
	}
	cr_assert_geq(fd, 0, "%s", err.msg);
	cr_assert_eq(em_cg_needs_attach(cg), !t_is_v2());
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	args.flags = CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = (uint64_t)fd;
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid == 0) {
		/* where am I, before anything else ran */
		char buf[512];
		int f = open("/proc/self/cgroup", O_RDONLY);
		ssize_t r = f >= 0 ? read(f, buf, sizeof(buf) - 1) : -1;
		char *line;

		buf[r > 0 ? r : 0] = '\0';
		line = strstr(buf, "0::");
		if (line) {
			line[strcspn(line, "\n")] = '\0';
			if (write(p[1], line + 3, strlen(line + 3)) < 0)
				_exit(2);
		}
		_exit(0);
	}
	cr_assert_gt(pid, 0, "clone3: %s", strerror(errno));
	t_track(pid);
	close(p[1]);
	close(fd);
	n = read(p[0], got, sizeof(got) - 1);
	close(p[0]);
	cr_assert_gt(n, 0);
	got[n] = '\0';
	snprintf(want, sizeof(want), "/%s", em_cg_path(cg));
	cr_assert_str_eq(got, want);
	cr_assert_eq(t_reap(pid), 0);
}
