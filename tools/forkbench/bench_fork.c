/* tools/forkbench/bench_fork.c — what a zygote fork costs as a function of the template's resident
 * memory, with 4 KiB pages and with transparent huge pages.
 *
 * A zygote template (runtime/host/template.c, sdk/c/ember_zygote.c) is a process that ran the
 * function's init and then forks every new instance with clone3(CLONE_NEWPID | CLONE_NEWNS |
 * CLONE_NEWUTS | CLONE_NEWIPC). fork copies the page tables of everything the template touched
 * (one PTE per 4 KiB page, one PMD per 2 MiB huge page) and write-protects them; the instance
 * then pays a copy-on-write fault for every page it writes. This program measures those costs
 * directly, without the host around them.
 *
 * Setup: one "template" process per configuration (a baseline that touched nothing extra, and
 * each size of EMBER_BENCH_FORK_SIZES, default 16, 64 and 256 MB, in two page modes), forked from
 * this program before anything is timed:
 *   - 4K:  mmap of private anonymous memory, madvise(MADV_NOHUGEPAGE), one write per 4 KiB page;
 *   - THP: mmap 2 MiB-aligned, madvise(MADV_HUGEPAGE) (this is what THP mode "madvise" needs),
 *          one write per 4 KiB page (the first write of each 2 MiB faults in a huge page).
 * Each template reports its Rss, AnonHugePages (/proc/self/smaps_rollup: how much really got
 * huge pages) and VmPTE (/proc/self/status: its page tables; a THP mapping counts too, since the
 * kernel deposits one page table per huge PMD for a later split) before and after the rounds,
 * and how long its first touch of the memory took (faults of fresh memory, for comparison with
 * the child's copy-on-write faults).
 *
 * A round, run by a template on request and timed there (CLOCK_MONOTONIC):
 *   (a) clone3:      the clone3 call, as the zygote makes it (flags above, exit_signal SIGCHLD,
 *                    no CLONE_INTO_CGROUP; this program runs as root in the initial user
 *                    namespace, where the zygote runs as root of its own) until it returns in
 *                    the parent;
 *   (b) first byte:  from before clone3 until the child has run and written one byte to a pipe
 *                    (the parent blocked in read: includes the child's first scheduling);
 *   (c) cow 1 MB:    in the child, one write per 4 KiB page to the first 1 MB of the inherited
 *                    memory (256 copy-on-write faults; with THP, the first one also splits the
 *                    child's PMD), timed by the child and sent through the pipe;
 *   (d) exit+reap:   from the parent's read of (c) to waitpid returning: the child's exit, which
 *                    tears down its copy of the page tables and its namespaces.
 * One untimed round per template first (the first fork also write-protects the template's
 * writable PTEs, a cost later forks do not pay); then EMBER_BENCH_FORK_ROUNDS rounds (default 50,
 * or EMBER_BENCH_RUNS), interleaved across templates in an order that rotates, so noise on this
 * shared machine hits every configuration alike.
 *
 * Report: one line per figure in the format of tools/bench/stats.h (THP lines carry
 * ratio = 4K median / THP median "vs 4K": how many times faster THP is), then a table of medians
 * with THP/4K = THP median / 4K median (below 1: THP is faster). Every child is reaped by its
 * template, every template by this program (SIGKILL on this program's death: PR_SET_PDEATHSIG);
 * nothing is written to disk. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "tools/bench/stats.h"

#define MB            (1024ul * 1024ul)
#define HUGE_SZ       (2ul * MB)
#define PAGE_SZ       4096ul
#define COW_BYTES     (1ul * MB)
#define MAX_SIZES     8
#define ZYGOTE_FLAGS  (CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC)

enum page_mode { PM_BASE, PM_4K, PM_THP };
static const char *mode_name[] = { [PM_BASE] = "baseline", [PM_4K] = "4K", [PM_THP] = "THP" };

/* What a template says about itself (in kB), or why it could not be made. */
struct tmpl_info {
	int err;              /* 0 or a positive errno */
	char what[160];
	uint64_t rss_kb, thp_kb, pte_kb;
	double touch_us;      /* writing its memory the first time (page faults of fresh memory) */
};

/* One round's figures, or why it failed. */
struct round_res {
	int err;
	char what[160];
	double clone_us, first_us, cow_us, reap_us;
};

struct tmpl {
	unsigned mb;
	enum page_mode mode;
	char label[32];                  /* "256 MB THP" */
	pid_t pid;
	int cmd, res;                    /* requests to it, answers from it */
	struct tmpl_info start, end;
	struct bench_samples clone, first, cow, reap;
	unsigned fail;
	char msg[200];
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* ------------------------------------------------------------------ inside a template */

static int set_err(char *what, size_t len, int code, const char *msg)
{
	snprintf(what, len, "%s: %s", msg, strerror(code));
	return -code;
}

/* Private anonymous memory of mb MB in the page mode, every 4 KiB page written once (timed into
 * *touch_us). */
static int map_touched(unsigned mb, enum page_mode mode, char **out, double *touch_us, char *what,
		       size_t wlen)
{
	size_t len = (size_t)mb * MB, map_len = len + (mode == PM_THP ? HUGE_SZ : 0);
	char *p, *base;

	*out = NULL;
	if (!mb)
		return 0;
	p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return set_err(what, wlen, errno, "mmap");
	/* THP needs a 2 MiB-aligned range to map a huge page by one PMD; the slack before and after
	 * is given back */
	base = mode == PM_THP ? (char *)(((uintptr_t)p + HUGE_SZ - 1) & ~(HUGE_SZ - 1)) : p;
	if (base > p)
		munmap(p, (size_t)(base - p));
	if (mode == PM_THP && p + map_len > base + len)
		munmap(base + len, (size_t)(p + map_len - (base + len)));
	if (madvise(base, len, mode == PM_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) < 0)
		return set_err(what, wlen, errno, mode == PM_THP ? "madvise MADV_HUGEPAGE" :
				     "madvise MADV_NOHUGEPAGE");
	double t0 = bench_now_us();
	for (size_t off = 0; off < len; off += PAGE_SZ)
		base[off] = (char)(off / PAGE_SZ) | 1;   /* not the zero page */
	*touch_us = bench_now_us() - t0;
	*out = base;
	return 0;
}

/* "Key:   123 kB" from a /proc file, in kB; 0 if absent. */
static uint64_t proc_kb(const char *path, const char *key)
{
	cleanup_fclose FILE *f = fopen(path, "re");
	char line[256];
	size_t kl = strlen(key);

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':')
			return strtoull(line + kl + 1, NULL, 10);
	return 0;
}

static void self_info(struct tmpl_info *in)
{
	in->rss_kb = proc_kb("/proc/self/smaps_rollup", "Rss");
	in->thp_kb = proc_kb("/proc/self/smaps_rollup", "AnonHugePages");
	in->pte_kb = proc_kb("/proc/self/status", "VmPTE");
}

/* The forked child: it is running (one byte), then writes 1 MB of what it inherited, times that
 * itself, and exits. Only async-signal-safe calls: it came from a raw clone3. */
static __attribute__((noreturn)) void child_main(int fd, char *mem, size_t cow_len)
{
	char one = 1;
	double t0, us;

	if (write(fd, &one, 1) != 1)
		_exit(2);
	t0 = bench_now_us();
	for (size_t off = 0; off < cow_len; off += PAGE_SZ)
		((volatile char *)mem)[off]++;
	us = bench_now_us() - t0;
	if (write(fd, &us, sizeof(us)) != sizeof(us))
		_exit(3);
	_exit(0);
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

/* One fork as the zygote does it, timed (see the header for (a) to (d)). */
static int fork_round(char *mem, size_t cow_len, struct round_res *r)
{
	struct clone_args ca = { .flags = ZYGOTE_FLAGS, .exit_signal = SIGCHLD };
	cleanup_close int rd = -1;
	int p[2], st, ret = 0;
	double t0, t1, t2, t3, cow_us = 0;
	char one;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (pipe2(p, O_CLOEXEC) < 0) {
		r->err = errno;
		return set_err(r->what, sizeof(r->what), r->err, "pipe");
	}
	rd = p[0];
	t0 = bench_now_us();
	pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0)
		child_main(p[1], mem, cow_len);
	t1 = bench_now_us();
	close(p[1]);
	if (pid < 0) {
		r->err = errno;
		return set_err(r->what, sizeof(r->what), r->err, "clone3");
	}
	ret = read_full(rd, &one, 1);
	t2 = bench_now_us();
	if (ret == 0)
		ret = read_full(rd, &cow_us, sizeof(cow_us));
	t3 = bench_now_us();
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			r->err = errno;
			return set_err(r->what, sizeof(r->what), r->err, "waitpid");
		}
	}
	if (ret < 0) {
		r->err = -ret;
		snprintf(r->what, sizeof(r->what), "the child's pipe: %s (child status %#x)",
			 strerror(-ret), st);
		return ret;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		r->err = ECHILD;
		snprintf(r->what, sizeof(r->what), "the child ended with status %#x", st);
		return -ECHILD;
	}
	r->clone_us = t1 - t0;
	r->first_us = t2 - t0;
	r->cow_us = cow_us;
	r->reap_us = bench_now_us() - t3;
	return 0;
}

/* A template: make its memory, say what it holds, then serve rounds until told to stop ('q')
 * or its requests' pipe closes. */
static __attribute__((noreturn)) void template_main(const struct tmpl *t, int cmd, int res,
						    pid_t bench)
{
	struct tmpl_info info = { 0 };
	char *mem = NULL, c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != bench)
		_exit(1);
	signal(SIGINT, SIG_IGN);   /* this program stops it in order */
	signal(SIGTERM, SIG_IGN);
	int ret = map_touched(t->mb, t->mode, &mem, &info.touch_us, info.what, sizeof(info.what));

	if (ret < 0)
		info.err = -ret;
	self_info(&info);
	if (write(res, &info, sizeof(info)) != sizeof(info) || info.err)
		_exit(1);
	while (read_full(cmd, &c, 1) == 0 && c != 'q') {
		struct round_res r;

		if (c == 'i') {
			self_info(&info);
			if (write(res, &info, sizeof(info)) != sizeof(info))
				_exit(1);
			continue;
		}
		fork_round(mem, mem ? COW_BYTES : 0, &r);
		if (write(res, &r, sizeof(r)) != sizeof(r))
			_exit(1);
	}
	_exit(0);
}

/* ------------------------------------------------------------------ this program */

static int tmpl_spawn(struct tmpl *t, char *msg, size_t msglen)
{
	int to[2], from[2];
	pid_t bench = getpid();

	if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0) {
		snprintf(msg, msglen, "pipe: %s", strerror(errno));
		return -errno;
	}
	fflush(stdout);
	t->pid = fork();
	if (t->pid < 0) {
		snprintf(msg, msglen, "fork: %s", strerror(errno));
		return -errno;
	}
	if (t->pid == 0) {
		close(to[1]);
		close(from[0]);
		template_main(t, to[0], from[1], bench);
	}
	close(to[0]);
	close(from[1]);
	t->cmd = to[1];
	t->res = from[0];
	if (read_full(t->res, &t->start, sizeof(t->start)) < 0) {
		snprintf(msg, msglen, "template %s: no answer", t->label);
		return -EPIPE;
	}
	if (t->start.err) {
		snprintf(msg, msglen, "template %s: %s", t->label, t->start.what);
		return -t->start.err;
	}
	return 0;
}

/* Ask for one round; a failure is counted and the first one kept. record: false for the
 * untimed warm-up round. */
static bool tmpl_round(struct tmpl *t, bool record)
{
	struct round_res r;

	if (write(t->cmd, "r", 1) != 1 || read_full(t->res, &r, sizeof(r)) < 0) {
		r.err = EPIPE;
		snprintf(r.what, sizeof(r.what), "the template stopped answering");
	}
	if (r.err) {
		if (!t->fail++)
			snprintf(t->msg, sizeof(t->msg), "%s", r.what);
		return false;
	}
	if (record) {
		bench_add(&t->clone, r.clone_us);
		bench_add(&t->first, r.first_us);
		if (t->mb)
			bench_add(&t->cow, r.cow_us);
		bench_add(&t->reap, r.reap_us);
	}
	return true;
}

static void tmpl_stop(struct tmpl *t)
{
	int st;

	if (t->pid <= 0)
		return;
	if (write(t->cmd, "i", 1) != 1 || read_full(t->res, &t->end, sizeof(t->end)) < 0)
		t->end.err = EPIPE;
	if (write(t->cmd, "q", 1) != 1)
		kill(t->pid, SIGKILL);
	close(t->cmd);
	close(t->res);
	while (waitpid(t->pid, &st, 0) < 0 && errno == EINTR)
		;
	t->pid = -1;
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return def;
	n = strtol(v, &end, 10);
	if (*end || n < 1 || n > 100000) {
		fprintf(stderr, "bench-fork: %s=%s: want a number from 1 to 100000\n", name, v);
		exit(1);
	}
	return (int)n;
}

/* EMBER_BENCH_FORK_SIZES: comma-separated MB, e.g. "16,64,256". */
static size_t parse_sizes(unsigned *sizes)
{
	const char *v = getenv("EMBER_BENCH_FORK_SIZES");
	size_t n = 0;

	if (!v || !*v)
		v = "16,64,256";
	for (const char *p = v; *p && n < MAX_SIZES;) {
		char *end;
		unsigned long mb = strtoul(p, &end, 10);

		if (end == p || mb < 1 || mb > 65536 || (*end && *end != ',')) {
			fprintf(stderr, "bench-fork: EMBER_BENCH_FORK_SIZES=%s: want MB from 1 to 65536, "
				"separated by commas\n", v);
			exit(1);
		}
		sizes[n++] = (unsigned)mb;
		p = *end ? end + 1 : end;
	}
	return n;
}

static void read_line(const char *path, char *buf, size_t len)
{
	cleanup_fclose FILE *f = fopen(path, "re");

	snprintf(buf, len, "?");
	if (f && fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
}

static void header(int rounds)
{
	char thp[128], defrag[128], load[128], line[512];
	unsigned mounts = 0;
	cleanup_fclose FILE *mi = fopen("/proc/self/mountinfo", "re");

	while (mi && fgets(line, sizeof(line), mi))
		mounts += strchr(line, '\n') != NULL;
	read_line("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof(thp));
	read_line("/sys/kernel/mm/transparent_hugepage/defrag", defrag, sizeof(defrag));
	read_line("/proc/loadavg", load, sizeof(load));
	bench_machine_note();
	printf("# THP enabled: %s; defrag: %s; load average at the start: %s\n", thp, defrag, load);
	printf("# clone3(CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC, exit_signal SIGCHLD) as "
	       "root in the initial user namespace (the zygote: root of its own), no "
	       "CLONE_INTO_CGROUP; CLONE_NEWNS copies this mount namespace's %u mounts\n", mounts);
	printf("# per template: clone3 = the call until it returns in the parent; first byte = "
	       "until the child ran and wrote one byte to a pipe; cow 1MB = the child's writes to "
	       "1 MB it inherited (256 pages); exit+reap = its exit until waitpid\n");
	printf("# %d rounds per template after one untimed round, interleaved, order rotating "
	       "(EMBER_BENCH_FORK_ROUNDS)\n", rounds);
}

static void report(struct tmpl *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct tmpl *peer = NULL;
		struct { const char *what; struct bench_samples *s, *p; } rows[] = {
			{ "clone3", &t[i].clone, NULL }, { "first byte", &t[i].first, NULL },
			{ "cow 1MB", &t[i].cow, NULL }, { "exit+reap", &t[i].reap, NULL },
		};
		char name[96];

		if (t[i].mode == PM_THP)
			for (size_t k = 0; k < n; k++)
				if (t[k].mb == t[i].mb && t[k].mode == PM_4K)
					peer = &t[k];
		if (peer) {
			rows[0].p = &peer->clone;
			rows[1].p = &peer->first;
			rows[2].p = &peer->cow;
			rows[3].p = &peer->reap;
		}
		printf("# template %s: Rss %.1f MB, AnonHugePages %.1f MB, page tables %llu kB; after "
		       "the rounds: Rss %.1f MB, AnonHugePages %.1f MB, page tables %llu kB",
		       t[i].label, t[i].start.rss_kb / 1024.0, t[i].start.thp_kb / 1024.0,
		       (unsigned long long)t[i].start.pte_kb, t[i].end.rss_kb / 1024.0,
		       t[i].end.thp_kb / 1024.0, (unsigned long long)t[i].end.pte_kb);
		if (t[i].mb)
			printf("; its first touch took %.1f ms (%.1f us per MB)",
			       t[i].start.touch_us / 1000, t[i].start.touch_us / t[i].mb);
		printf("\n");
		for (size_t r = 0; r < EM_ARRAY_SIZE(rows); r++) {
			if (!rows[r].s->n)
				continue;
			snprintf(name, sizeof(name), "fork %s: %s", t[i].label, rows[r].what);
			if (rows[r].p && rows[r].p->n)
				bench_report_vs(name, rows[r].s, "us", "4K", rows[r].p);
			else
				bench_report(name, rows[r].s, "us");
		}
		if (t[i].fail)
			printf("# fork %s: %u rounds failed; first: %s\n", t[i].label, t[i].fail,
			       t[i].msg);
	}
}

static void ratio_col(const struct bench_samples *thp, const struct bench_samples *k4)
{
	double a = bench_median(thp), b = bench_median(k4);

	if (thp->n && k4->n && b > 0)
		printf(" %7.3f", a / b);
	else
		printf(" %7s", "-");
}

/* Medians side by side: per size, 4K | THP | THP/4K for each figure. */
static void summary(struct tmpl *t, size_t n)
{
	printf("# summary: medians in us; THP/4K = THP median / 4K median (below 1: THP is "
	       "faster); AnonHuge = MB the THP template really had in huge pages\n");
	printf("# %-8s %8s | %8s %8s %7s | %8s %8s %7s | %8s %8s %7s | %8s %8s %7s\n", "size",
	       "AnonHuge", "clone 4K", "THP", "THP/4K", "first 4K", "THP", "THP/4K", "cow 4K", "THP",
	       "THP/4K", "reap 4K", "THP", "THP/4K");
	for (size_t i = 0; i < n; i++) {
		struct tmpl *k4 = &t[i], *th = NULL;

		if (k4->mode == PM_BASE) {
			printf("# %-8s %8s | %8.1f %8s %7s | %8.1f %8s %7s | %8s %8s %7s | %8.1f %8s "
			       "%7s\n", "baseline", "-", bench_median(&k4->clone), "", "",
			       bench_median(&k4->first), "", "", "-", "", "", bench_median(&k4->reap),
			       "", "");
			continue;
		}
		if (k4->mode != PM_4K)
			continue;
		for (size_t k = 0; k < n; k++)
			if (t[k].mb == k4->mb && t[k].mode == PM_THP)
				th = &t[k];
		if (!th)
			continue;
		char size[16];
		snprintf(size, sizeof(size), "%u MB", k4->mb);
		printf("# %-8s %8.1f |", size, th->start.thp_kb / 1024.0);
		struct { struct bench_samples *a, *b; } cols[] = {
			{ &k4->clone, &th->clone }, { &k4->first, &th->first },
			{ &k4->cow, &th->cow }, { &k4->reap, &th->reap },
		};
		for (size_t c = 0; c < EM_ARRAY_SIZE(cols); c++) {
			printf(" %8.1f %8.1f", bench_median(cols[c].a), bench_median(cols[c].b));
			ratio_col(cols[c].b, cols[c].a);
			printf("%s", c + 1 < EM_ARRAY_SIZE(cols) ? " |" : "\n");
		}
	}
}

/* How clone3 grows with the template's memory: the largest size against the baseline. */
static void slopes(struct tmpl *t, size_t n)
{
	struct tmpl *base = NULL;

	for (size_t i = 0; i < n; i++)
		if (t[i].mode == PM_BASE)
			base = &t[i];
	if (!base || !base->clone.n)
		return;
	for (int m = PM_4K; m <= PM_THP; m++) {
		struct tmpl *big = NULL;

		for (size_t i = 0; i < n; i++)
			if (t[i].mode == (enum page_mode)m && t[i].clone.n && (!big || t[i].mb > big->mb))
				big = &t[i];
		if (!big)
			continue;
		double d = bench_median(&big->clone) - bench_median(&base->clone);
		printf("# %s: clone3 grows by %.1f us per 100 MB touched (%u MB: %.1f us, baseline "
		       "%.1f us, medians)\n", mode_name[m], d * 100 / big->mb, big->mb,
		       bench_median(&big->clone), bench_median(&base->clone));
	}
}

int main(void)
{
	unsigned sizes[MAX_SIZES];
	size_t n_sizes = parse_sizes(sizes), n = 0;
	int rounds = env_int("EMBER_BENCH_FORK_ROUNDS", env_int("EMBER_BENCH_RUNS", 50));
	struct tmpl t[1 + 2 * MAX_SIZES];
	struct sigaction sa = { .sa_handler = on_signal };
	double t_start = bench_now_us();
	unsigned fails = 0;
	char msg[256];
	int rc = 0;

	if (geteuid() != 0) {
		fprintf(stderr, "bench-fork: needs root (clone3 of new pid/mount/uts/ipc "
			"namespaces)\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	memset(t, 0, sizeof(t));
	t[n++] = (struct tmpl){ .mb = 0, .mode = PM_BASE };
	for (size_t i = 0; i < n_sizes; i++) {
		t[n++] = (struct tmpl){ .mb = sizes[i], .mode = PM_4K };
		t[n++] = (struct tmpl){ .mb = sizes[i], .mode = PM_THP };
	}
	for (size_t i = 0; i < n; i++) {
		t[i].pid = -1;
		t[i].cmd = t[i].res = -1;
		if (t[i].mode == PM_BASE)
			snprintf(t[i].label, sizeof(t[i].label), "baseline");
		else
			snprintf(t[i].label, sizeof(t[i].label), "%u MB %s", t[i].mb,
				 mode_name[t[i].mode]);
	}

	header(rounds);
	for (size_t i = 0; i < n && !interrupted; i++) {
		if (tmpl_spawn(&t[i], msg, sizeof(msg)) < 0) {
			fprintf(stderr, "bench-fork: %s\n", msg);
			rc = 1;
			goto out;
		}
		tmpl_round(&t[i], false);
	}
	for (int r = 0; r < rounds && !interrupted; r++)
		for (size_t k = 0; k < n && !interrupted; k++)
			tmpl_round(&t[(r + k) % n], true);
out:
	for (size_t i = 0; i < n; i++)
		tmpl_stop(&t[i]);
	if (!rc) {
		report(t, n);
		summary(t, n);
		slopes(t, n);
	}
	for (size_t i = 0; i < n; i++) {
		fails += t[i].fail;
		bench_free(&t[i].clone);
		bench_free(&t[i].first);
		bench_free(&t[i].cow);
		bench_free(&t[i].reap);
	}
	printf("# bench-fork took %.0f s; failed rounds: %u%s\n", (bench_now_us() - t_start) / 1e6,
	       fails, interrupted ? " (interrupted)" : "");
	return rc || fails || interrupted;
}
