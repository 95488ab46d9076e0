/* tests/cgroups/test_kill.c — kill empties the cgroup (fork-happy processes included), other
 * signals reach every process, destroy refuses a busy cgroup and force works. */
#include "helpers.h"

TestSuite(cg_kill, .init = t_setup, .fini = t_teardown, .timeout = 120);

/* keeps forking short-lived children: a kill by iteration must still win */
static int forker(long unused)
{
	(void)unused;
	for (;;) {
		pid_t p = fork();

		if (p == 0) {
			usleep(1000);
			_exit(0);
		}
		if (p > 0)
			waitpid(p, NULL, 0);
	}
	return 0;
}

static int term_fd = -1;
static void on_term(int s)
{
	(void)s;
	if (write(term_fd, "T", 1) < 0)
		_exit(3);
	_exit(0);
}

static int wait_term(long unused)
{
	(void)unused;
	signal(SIGTERM, on_term);
	for (;;)
		pause();
	return 0;
}

Test(cg_kill, sigkill_empties)
{
	struct em_err err = { 0 };
	struct em_cg *cg = t_create("ember-test-kill", NULL);
	pid_t a, b, c;
	pid_t *pids = NULL;
	size_t n = 0;

	a = t_spawn(cg, t_spin_forever, 0);
	b = t_spawn(cg, forker, 0);
	c = t_spawn(cg, t_sleep_forever, 0);
	cr_assert_eq(em_cg_pids(cg, &pids, &n, &err), 0, "%s", err.msg);
	cr_assert_geq(n, 3);
	free(pids);
	cr_assert_eq(em_cg_kill(cg, SIGKILL, &err), 0, "%s", err.msg);
	cr_assert_eq(em_cg_pids(cg, &pids, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 0, "%zu processes left", n);
	free(pids);
	cr_assert_str_eq(t_knob(cg, "memory", "cgroup.procs", "cgroup.procs"), "");
	cr_assert_eq(WTERMSIG(t_reap(a)), SIGKILL);
	cr_assert_eq(WTERMSIG(t_reap(b)), SIGKILL);
	cr_assert_eq(WTERMSIG(t_reap(c)), SIGKILL);
}

Test(cg_kill, sigterm_reaches_everyone)
{
	struct em_err err = { 0 };
	struct em_cg *cg = t_create("ember-test-term", NULL);
	int p[2];
	char buf[8];
	ssize_t got = 0;

	cr_assert_eq(pipe(p), 0);
	term_fd = p[1];
	t_spawn(cg, wait_term, 0);
	t_spawn(cg, wait_term, 0);
	close(p[1]);
	usleep(100000); /* let both install their handler */
	cr_assert_eq(em_cg_kill(cg, SIGTERM, &err), 0, "%s", err.msg);
	while (got < 2) {
		ssize_t r = read(p[0], buf + got, sizeof(buf) - got);

		cr_assert_gt(r, 0);
		got += r;
	}
	close(p[0]);
	cr_assert_eq(got, 2);
}

Test(cg_kill, destroy_refuses_busy_force_works)
{
	struct em_err err = { 0 };
	struct em_cg *cg = t_create("ember-test-busy", NULL);
	char path[256];
	pid_t pid = t_spawn(cg, t_sleep_forever, 0);

	cr_assert_eq(em_cg_destroy(cg, false, &err), -EBUSY);
	cr_assert(strstr(err.msg, "ember-test-busy"), "the error names the cgroup: %s", err.msg);
	cr_log_info("refusal as reported: %s", err.msg);
	cr_assert_eq(kill(pid, 0), 0, "a refused destroy must not kill");
	cr_assert_eq(em_cg_destroy(cg, true, &err), 0, "%s", err.msg);
	t_forget(cg);
	cr_assert_eq(WTERMSIG(t_reap(pid)), SIGKILL);
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s%s/ember-test-busy", t_is_v2() ? "" : "memory/",
		 t_parent);
	cr_assert_neq(access(path, F_OK), 0, "%s still exists", path);
	if (em_cg_root_mode(t_root) == EM_CG_HYBRID) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/unified/%s/ember-test-busy", t_parent);
		cr_assert_neq(access(path, F_OK), 0, "%s still exists", path);
	}
}

Test(cg_kill, destroy_frozen_with_force)
{
	struct em_err err = { 0 };
	struct em_cg *cg = t_create("ember-test-fzk", NULL);
	pid_t pid = t_spawn(cg, t_spin_forever, 0);

	cr_assert_eq(em_cg_freeze(cg, &err), 0, "%s", err.msg);
	cr_assert_eq(em_cg_destroy(cg, true, &err), 0, "%s", err.msg);
	t_forget(cg);
	cr_assert_eq(WTERMSIG(t_reap(pid)), SIGKILL);
}
