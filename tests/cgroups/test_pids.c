/* tests/cgroups/test_pids.c — a fork bomb stops at pids.max. */
#include "helpers.h"

TestSuite(cg_pids, .init = t_setup, .fini = t_teardown, .timeout = 120);

static int bomb_fd = -1;

/* fork until the kernel refuses; report how many forks succeeded */
static int fork_bomb(long max)
{
	int ok = 0, err = 0;

	for (long i = 0; i < max; i++) {
		pid_t p = fork();

		if (p == 0) {
			for (;;)
				pause();
		}
		if (p < 0) {
			err = errno;
			break;
		}
		ok++;
	}
	dprintf(bomb_fd, "%d %d\n", ok, err);
	for (;;)
		pause();
	return 0;
}

Test(cg_pids, fork_bomb_stops_at_pids_max)
{
	struct em_err err = { 0 };
	struct em_cg_limits l = { 0 };
	struct em_cg_stats st;
	struct em_cg *cg;
	pid_t bomb;
	double deadline;
	int p[2], ok = -1, fork_errno = 0;
	char buf[64] = "";

	l.pids_max.set = true;
	l.pids_max.v = 16;
	cg = t_create("ember-test-bomb", &l);
	cr_assert_eq(pipe(p), 0);
	bomb_fd = p[1];
	bomb = t_spawn(cg, fork_bomb, 1000);
	close(p[1]);
	cr_assert_gt(read(p[0], buf, sizeof(buf) - 1), 0);
	close(p[0]);
	sscanf(buf, "%d %d", &ok, &fork_errno);
	/* the bomb itself is one of the 16 */
	cr_assert_eq(ok, 15, "forks that succeeded: %d", ok);
	cr_assert_eq(fork_errno, EAGAIN, "fork failed with %s", strerror(fork_errno));
	cr_assert_eq(em_cg_stats(cg, &st, &err), 0, "%s", err.msg);
	cr_assert_eq(st.pids_current, 16);
	cr_assert_eq(st.pids_max, 16);
	cr_assert_str_eq(t_knob(cg, "pids", "pids.current", "pids.current"), "16");
	/* the kernel counted the refusal */
	cr_assert(strstr(t_knob(cg, "pids", "pids.events", "pids.events"), "max "), "pids.events");
	cr_assert_str_neq(t_knob(cg, "pids", "pids.events", "pids.events"), "max 0");

	/* kill empties it, grandchildren included */
	cr_assert_eq(em_cg_kill(cg, SIGKILL, &err), 0, "%s", err.msg);
	cr_assert_str_eq(t_knob(cg, "pids", "cgroup.procs", "cgroup.procs"), "");
	/* pids.current drops when a task is reaped: ours by us, the orphans by init */
	t_reap(bomb);
	deadline = t_now_s() + 10;
	do {
		usleep(10000);
		cr_assert_eq(em_cg_stats(cg, &st, &err), 0, "%s", err.msg);
	} while (st.pids_current && t_now_s() < deadline);
	cr_assert_eq(st.pids_current, 0);
}
