/* tests/cgroups/test_memory.c — a memory hog in a 64 MB sandbox is OOM-killed, the OOM is
 * counted, the peak stays at the limit, and the sandbox next to it does not notice. */
#include "helpers.h"

TestSuite(cg_memory, .init = t_setup, .fini = t_teardown, .timeout = 120);

static int hog(long mb)
{
	size_t len = (size_t)mb << 20;
	volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 2;
	for (size_t off = 0; off < len; off += 4096)
		p[off] = 1;
	return 0; /* survived: the limit did not hold */
}

static int alloc_and_sleep(long mb)
{
	size_t len = (size_t)mb << 20;
	/* volatile: the compiler must not drop stores nobody reads */
	volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 2;
	for (size_t off = 0; off < len; off += 4096)
		p[off] = 1;
	for (;;)
		pause();
	return 0;
}

Test(cg_memory, hog_is_oom_killed_and_counted)
{
	struct em_err err = { 0 };
	struct em_cg_limits l = { 0 };
	struct em_cg_stats st;
	struct em_cg *cg, *neighbour;
	pid_t pid, quiet;
	int status;

	l.memory_max.set = true;
	l.memory_max.v = 64 << 20;
	l.swap_max.set = true;
	l.swap_max.v = 0;
	cg = t_create("ember-test-hog", &l);
	neighbour = t_create("ember-test-neighbour", &l);
	quiet = t_spawn(neighbour, alloc_and_sleep, 16);

	pid = t_spawn(cg, hog, 256);
	status = t_reap(pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		  "the hog was not OOM-killed (status %#x)", status);

	cr_assert_eq(em_cg_stats(cg, &st, &err), 0, "%s", err.msg);
	cr_log_info("after OOM: oom=%" PRIu64 " oom_kill=%" PRIu64 " peak=%" PRIu64 " max=%" PRIu64,
		    st.oom_events, st.oom_kill_events, st.memory_peak, st.memory_max);
	cr_assert_geq(st.oom_kill_events, 1);
	cr_assert_geq(st.oom_events, 1);
	cr_assert_eq(st.memory_max, 64 << 20);
	cr_assert(st.has_memory_peak);
	cr_assert_leq(st.memory_peak, 64 << 20);
	cr_assert_geq(st.memory_peak, 48 << 20, "peak %" PRIu64 " too low for a hog", st.memory_peak);

	/* the neighbour is alive and was never under OOM */
	cr_assert_eq(waitpid(quiet, &status, WNOHANG), 0, "the neighbour died");
	cr_assert_eq(em_cg_stats(neighbour, &st, &err), 0, "%s", err.msg);
	cr_assert_eq(st.oom_kill_events, 0);
	cr_assert_geq(st.memory_current, 15 << 20, "neighbour memory %" PRIu64, st.memory_current);
}

Test(cg_memory, current_tracks_allocation)
{
	struct em_err err = { 0 };
	struct em_cg_stats st;
	struct em_cg *cg = t_create("ember-test-cur", NULL);
	double deadline;

	t_spawn(cg, alloc_and_sleep, 32);
	deadline = t_now_s() + 30;
	do {
		usleep(20000);
		cr_assert_eq(em_cg_stats(cg, &st, &err), 0, "%s", err.msg);
	} while (st.memory_current < (32u << 20) && t_now_s() < deadline);
	cr_assert_geq(st.memory_current, 32 << 20, "current %" PRIu64, st.memory_current);
	cr_assert_lt(st.memory_current, 64 << 20, "current %" PRIu64, st.memory_current);
	cr_assert_geq(st.memory_peak, st.memory_current);
	cr_assert_eq(st.memory_max, UINT64_MAX);
	/* the library reads the kernel's own counter */
	cr_assert_geq(strtoull(t_knob(cg, "memory", "memory.usage_in_bytes", "memory.current"), NULL, 10),
		      32 << 20);
}
