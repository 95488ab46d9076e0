/* tests/cgroups/test_devices.c — device rules hold, by behaviour: v1 devices controller, or on
 * v2 the BPF_CGROUP_DEVICE program ember compiles from the rules. A process in the cgroup opens
 * what the rules allow and gets EPERM for the rest; an update replaces the rules. */
#include "helpers.h"

#include <sys/sysmacros.h>

TestSuite(cg_devices, .init = t_setup, .fini = t_teardown, .timeout = 60);

static int result_fd = -1;

/* open path (read, write), report 0 or errno */
static int try_open(long which)
{
	const char *path = which == 0 ? "/dev/null" : "/dev/zero";
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int e = fd < 0 ? errno : 0;

	if (write(result_fd, &e, sizeof(e)) != sizeof(e))
		return 3;
	return 0;
}

/* mknod a char device in a fresh tmp dir, report 0 or errno */
static int try_mknod(long minor)
{
	char dir[] = "/tmp/ember-test-dev-XXXXXX", path[64];
	int e;

	if (!mkdtemp(dir))
		return 3;
	snprintf(path, sizeof(path), "%s/node", dir);
	e = mknod(path, S_IFCHR | 0600, makedev(1, (unsigned)minor)) < 0 ? errno : 0;
	unlink(path);
	rmdir(dir);
	if (write(result_fd, &e, sizeof(e)) != sizeof(e))
		return 3;
	return 0;
}

static int run_in(struct em_cg *cg, int (*fn)(long), long arg)
{
	int p[2], e = -1;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	result_fd = p[1];
	pid = t_spawn(cg, fn, arg);
	close(p[1]);
	cr_assert_eq(read(p[0], &e, sizeof(e)), sizeof(e));
	close(p[0]);
	cr_assert_eq(t_reap(pid), 0);
	return e;
}

Test(cg_devices, deny_all_but_null)
{
	struct em_err err = { 0 };
	struct em_cg_device_rule rules[] = {
		{ .allow = false, .type = 'a', .major = -1, .minor = -1, .access = "rwm" },
		{ .allow = true, .type = 'c', .major = 1, .minor = 3, .access = "rw" },
		{ .allow = true, .type = 'c', .major = 1, .minor = 5, .access = "m" },
	};
	struct em_cg_limits l = { .devices = rules, .n_devices = 3 };
	struct em_cg *cg = t_create("ember-test-dev", &l);

	cr_assert_eq(run_in(cg, try_open, 0), 0, "/dev/null must open");
	cr_assert_eq(run_in(cg, try_open, 1), EPERM, "/dev/zero must be refused");
	/* access letters are honoured: 1:3 is rw without m, 1:5 is m only */
	cr_assert_eq(run_in(cg, try_mknod, 3), EPERM);
	cr_assert_eq(run_in(cg, try_mknod, 5), 0);
	/* outside the cgroup nothing changed */
	cr_assert_eq(run_in(NULL, try_open, 1), 0);

	/* update: /dev/zero allowed too (the old rules are replaced, not stacked) */
	struct em_cg_device_rule more[] = {
		rules[0], rules[1],
		{ .allow = true, .type = 'c', .major = 1, .minor = 5, .access = "rwm" },
	};
	struct em_cg_limits u = { .devices = more, .n_devices = 3 };
	cr_assert_eq(em_cg_update(cg, &u, &err), 0, "%s", err.msg);
	cr_assert_eq(run_in(cg, try_open, 1), 0, "/dev/zero must open after the update");
	cr_assert_eq(run_in(cg, try_open, 0), 0);
}

Test(cg_devices, last_matching_rule_wins)
{
	struct em_cg_device_rule rules[] = {
		{ .allow = true, .type = 'c', .major = 1, .minor = -1, .access = "rwm" },
		{ .allow = false, .type = 'c', .major = 1, .minor = 5, .access = "rwm" },
	};
	struct em_cg_limits l = { .devices = rules, .n_devices = 2 };
	struct em_cg *cg = t_create("ember-test-dev2", &l);

	cr_assert_eq(run_in(cg, try_open, 0), 0);
	cr_assert_eq(run_in(cg, try_open, 1), EPERM);
}
