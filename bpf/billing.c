/* bpf/billing.c — the billing loader: open -> set rodata -> load -> attach the sched_switch
 * program (billing.bpf.c), the table of tracked cgroups, billing windows, the cross-check against
 * the cgroup's own counters. See billing_api.h for what is measured and how.
 *
 * Reading the per-CPU accounting costs no system call: the `acct` map is mmap'ed read-only and read
 * under each entry's seqcount (the program is the single writer of an entry, see billing.h), so
 * opening or closing a window is a clock read and nr_cpus cache lines, plus the cgroup file reads
 * of the cross-check.
 */
#include "bpf/billing_api.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "billing.skel.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"

#define DEFAULT_MAX_CGROUPS 4096
#define DEFAULT_TOL_PCT 2
#define DEFAULT_TOL_NS (10ull * 1000 * 1000)
#define DEFAULT_BTF "/sys/kernel/btf/vmlinux"

/* The cgroup's own counters, read at both ends of a window. */
struct cg_counters {
	bool has_cpu, has_throttle, has_peak, peak_life;
	uint64_t cpu_ns, throttled_ns, nr_throttled, peak;
};

struct cg_state {
	bool used;
	uint64_t cgid;
	int unified_fd, cpuacct_fd, cpu_fd, memory_fd;
	int peak_fd;          /* v2 memory.peak opened at window open (per-fd reset, 6.12+) */
	bool peak_reset;      /* the peak covers the window only */
	uint64_t memory_mb;
	int ent;              /* its entry in cgtab (group * EM_BILL_CG_WAYS + way); -1: in `tracked` */
	uint64_t base_cpu;    /* the slot's charged time when tracking began (slots are reused) */
	/* the open window */
	bool open;
	struct em_bill_window_opts wo;
	uint64_t open_ns, open_cpu, open_switch, open_missed;
	bool open_running;    /* a task of the cgroup was on a CPU when the window opened */
	struct cg_counters open_cg;
};

struct em_bill {
	pthread_mutex_t lock;
	struct billing *skel;
	const char *attach;
	const struct em_bill_cpu_acct *acct; /* mmap of the acct map, max_cgroups * nr_cpus entries */
	size_t acct_len;
	struct em_bill_win *win;             /* mmap of the win map, max_cgroups entries */
	size_t win_len;
	struct em_bill_cg_group *cgtab;      /* mmap of the cgtab map, cg_mask + 1 groups */
	size_t cgtab_len;
	uint32_t cg_mask;
	uint32_t *cg_ovf;                    /* per group: its cgroups in `tracked` */
	uint32_t nr_cpus, max_cgroups, gran_ms, tol_pct;
	uint64_t tol_ns;
	struct em_log *log;

	struct cg_state *cgs;     /* by slot index */
	/* cgid -> slot: open addressing, linear probing, backward-shift deletion; 2x max_cgroups */
	uint64_t *ht_key;         /* 0 = empty (no cgroup has id 0) */
	uint32_t *ht_idx;
	uint32_t ht_mask;
	/* free slots, FIFO so a freed slot is reused as late as possible */
	uint32_t *freeq;
	uint32_t fq_head, fq_len;

	struct em_bill_stats st;
	uint64_t gen;             /* last gen given to a tracking (struct em_bill_win) */
};

/* --- libbpf's log -> ember's logger (process-wide, see billing_api.h) */

static struct em_log *_Atomic libbpf_logger;
/* From the current load step of this thread, for the error message: the first warning libbpf
 * printed (it names the program and the kernel's answer) and the verifier's own complaint (the
 * last line of the program load log). */
static __thread char libbpf_first_warn[256], libbpf_verifier[256];
static __thread bool in_load_log;

static void libbpf_line(enum libbpf_print_level level, struct em_log *log, const char *line)
{
	const char *msg = strstr(line, "': ") && !strncmp(line, "prog '", 6) ? strstr(line, "': ") + 3 :
									      line;

	if (strstr(line, "-- BEGIN PROG LOAD LOG --")) {
		in_load_log = true;
		libbpf_verifier[0] = '\0';
	} else if (strstr(line, "-- END PROG LOAD LOG --")) {
		in_load_log = false;
	} else if (in_load_log && *msg && strncmp(msg, "processed ", 10) &&
		   strncmp(msg, "verification time", 17)) {
		snprintf(libbpf_verifier, sizeof(libbpf_verifier), "%s", msg);
	}
	if (level == LIBBPF_WARN && !in_load_log && !libbpf_first_warn[0] &&
	    !strstr(line, "-- END PROG LOAD LOG --"))
		snprintf(libbpf_first_warn, sizeof(libbpf_first_warn), "%s", line);
	if (log)
		em_logf(log,
			level == LIBBPF_WARN ? EM_LOG_WARN :
			level == LIBBPF_INFO ? EM_LOG_INFO : EM_LOG_DEBUG,
			"libbpf: %s", line);
}

/* libbpf hands over multi-line messages (the verifier's log is one); log them line by line. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static __thread char buf[65536];
	struct em_log *log = libbpf_logger;
	char *line, *save = NULL;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		libbpf_line(level, log, line);
	return 0;
}

void em_bill_libbpf_log(struct em_log *log)
{
	libbpf_logger = log;
	libbpf_set_print(libbpf_print);
}

const char *em_bill_start_name(enum em_bill_start s)
{
	switch (s) {
	case EM_BILL_START_COLD: return "cold";
	case EM_BILL_START_WARM: return "warm";
	case EM_BILL_START_ZYGOTE: return "zygote";
	case EM_BILL_START_RESTORE: return "restore";
	default: return "unknown";
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* bpf_ktime_get_ns()'s clock */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- cgid -> slot table */

static uint32_t ht_hash(const struct em_bill *b, uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (uint32_t)k & b->ht_mask;
}

static int ht_find(const struct em_bill *b, uint64_t cgid)
{
	for (uint32_t i = ht_hash(b, cgid);; i = (i + 1) & b->ht_mask) {
		if (b->ht_key[i] == cgid)
			return (int)b->ht_idx[i];
		if (!b->ht_key[i])
			return -1;
	}
}

static void ht_insert(struct em_bill *b, uint64_t cgid, uint32_t idx)
{
	uint32_t i = ht_hash(b, cgid);

	while (b->ht_key[i])
		i = (i + 1) & b->ht_mask;
	b->ht_key[i] = cgid;
	b->ht_idx[i] = idx;
}

static void ht_remove(struct em_bill *b, uint64_t cgid)
{
	uint32_t i = ht_hash(b, cgid);

	while (b->ht_key[i] != cgid) {
		if (!b->ht_key[i])
			return;
		i = (i + 1) & b->ht_mask;
	}
	/* backward-shift: move later entries of the probe run into the hole */
	for (uint32_t j = i;;) {
		b->ht_key[i] = 0;
		for (;;) {
			j = (j + 1) & b->ht_mask;
			if (!b->ht_key[j])
				return;
			uint32_t home = ht_hash(b, b->ht_key[j]);
			/* j's entry may move to i unless its home lies cyclically in (i, j] */
			if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
				break;
		}
		b->ht_key[i] = b->ht_key[j];
		b->ht_idx[i] = b->ht_idx[j];
		i = j;
	}
}

/* --- reading the per-CPU accounting */

/* One entry, consistently (seqcount; the writer is a BPF program running with IRQs off). */
static void acct_read(const struct em_bill_cpu_acct *a, struct em_bill_cpu_acct *out)
{
	for (;;) {
		uint64_t s1 = __atomic_load_n(&a->seq, __ATOMIC_ACQUIRE);

		if (s1 & 1)
			continue;
		out->cpu_ns = __atomic_load_n(&a->cpu_ns, __ATOMIC_RELAXED);
		out->run_ts = __atomic_load_n(&a->run_ts, __ATOMIC_RELAXED);
		out->last_ts = __atomic_load_n(&a->last_ts, __ATOMIC_RELAXED);
		out->first_ts = __atomic_load_n(&a->first_ts, __ATOMIC_RELAXED);
		out->nr_switch = __atomic_load_n(&a->nr_switch, __ATOMIC_RELAXED);
		out->nr_missed = __atomic_load_n(&a->nr_missed, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&a->seq, __ATOMIC_RELAXED) == s1)
			return;
	}
}

/* One reading of a slot, consistent as of time t. */
struct reading {
	uint64_t t;          /* CLOCK_MONOTONIC */
	uint64_t cpu;        /* CPU time charged, runs in progress counted up to t */
	uint64_t nr_switch, nr_missed;
	bool running;        /* a task of the slot is on a CPU at t */
	uint64_t last_ts;    /* the latest switch event of the slot */
	uint64_t first_ts;   /* the earliest first run at or after `arm` (UINT64_MAX: none) */
};

/* Read slot idx. Every CPU's entry must be as of t: an entry updated after t (last_ts > t) means
 * we were slow between the clock read and the reads, or the program stamped a switch a little
 * ahead of this clock (its times come from the rq clock, see billing.bpf.c: tens of µs at most);
 * read the clock again and retry, for up to 10 ms. */
static int slot_read(const struct em_bill *b, uint32_t idx, uint64_t arm, struct reading *r)
{
	uint64_t t0 = now_ns();

	for (int attempt = 0; attempt < 1000 || r->t - t0 < 10000000; attempt++) {
		bool ok = true;

		memset(r, 0, sizeof(*r));
		r->t = now_ns();
		r->first_ts = UINT64_MAX;
		for (uint32_t c = 0; c < b->nr_cpus; c++) {
			struct em_bill_cpu_acct e;

			acct_read(&b->acct[(size_t)idx * b->nr_cpus + c], &e);
			if (e.last_ts > r->t) {
				ok = false;
				break;
			}
			r->cpu += e.cpu_ns;
			if (e.run_ts) {
				r->cpu += r->t - e.run_ts;
				r->running = true;
			}
			r->nr_switch += e.nr_switch;
			r->nr_missed += e.nr_missed;
			if (e.last_ts > r->last_ts)
				r->last_ts = e.last_ts;
			if (arm && e.first_ts >= arm && e.first_ts < r->first_ts)
				r->first_ts = e.first_ts;
		}
		if (ok)
			return 0;
	}
	return -EAGAIN;
}

static bool slot_quiet(const struct em_bill *b, uint32_t idx)
{
	for (uint32_t c = 0; c < b->nr_cpus; c++) {
		struct em_bill_cpu_acct e;

		acct_read(&b->acct[(size_t)idx * b->nr_cpus + c], &e);
		if (e.run_ts)
			return false;
	}
	return true;
}

/* --- the cgroup's own counters. Reads the cgroup files directly; to be replaced by em_cg_stats
 * (cgroups/cgroups.h) once ember hands struct em_cg to the billing. */

/* Value of `key` in a "key value" per line file (cpu.stat). */
static int stat_key(int dirfd, const char *file, const char *key, uint64_t *out)
{
	char buf[4096], *p;
	size_t klen = strlen(key);
	struct em_err e;

	if (dirfd < 0 || em_read_small_at(dirfd, file, buf, sizeof(buf), &e) < 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, klen) && p[klen] == ' ') {
			*out = strtoull(p + klen + 1, NULL, 10);
			return 0;
		}
	return -1;
}

static void cg_read(struct cg_state *s, struct cg_counters *c, bool at_close)
{
	struct em_err e;
	uint64_t v;

	memset(c, 0, sizeof(*c));
	if (s->cpuacct_fd >= 0 && !em_read_u64_at(s->cpuacct_fd, "cpuacct.usage", &v, &e)) {
		c->has_cpu = true;
		c->cpu_ns = v;
	} else if (!stat_key(s->unified_fd, "cpu.stat", "usage_usec", &v)) {
		c->has_cpu = true;
		c->cpu_ns = v * 1000;
	}
	if (s->cpu_fd >= 0 && !stat_key(s->cpu_fd, "cpu.stat", "throttled_time", &c->throttled_ns) &&
	    !stat_key(s->cpu_fd, "cpu.stat", "nr_throttled", &c->nr_throttled)) {
		c->has_throttle = true;
	} else if (!stat_key(s->unified_fd, "cpu.stat", "throttled_usec", &v) &&
		   !stat_key(s->unified_fd, "cpu.stat", "nr_throttled", &c->nr_throttled)) {
		c->has_throttle = true; /* present only with the cpu controller enabled */
		c->throttled_ns = v * 1000;
	}
	if (!at_close)
		return;
	if (s->memory_fd >= 0) {
		if (!em_read_u64_at(s->memory_fd, "memory.max_usage_in_bytes", &c->peak, &e))
			c->has_peak = true;
	} else if (s->peak_fd >= 0) {
		char buf[64];
		ssize_t n = pread(s->peak_fd, buf, sizeof(buf) - 1, 0);

		if (n > 0) {
			buf[n] = '\0';
			c->peak = strtoull(buf, NULL, 10);
			c->has_peak = true;
			c->peak_life = !s->peak_reset;
		}
	}
}

/* Start the window's memory peak: v1 resets the cgroup's max_usage; v2 (6.12+) resets the peak
 * seen through one open fd of memory.peak, which we keep until the window closes. */
static void peak_start(struct cg_state *s)
{
	struct em_err e;

	s->peak_reset = false;
	if (s->memory_fd >= 0) {
		s->peak_reset = !em_write_str_at(s->memory_fd, "memory.max_usage_in_bytes", "0", &e);
		return;
	}
	if (s->unified_fd < 0)
		return;
	if (s->peak_fd < 0)
		s->peak_fd = openat(s->unified_fd, "memory.peak", O_RDWR | O_CLOEXEC);
	if (s->peak_fd < 0)
		s->peak_fd = openat(s->unified_fd, "memory.peak", O_RDONLY | O_CLOEXEC);
	if (s->peak_fd >= 0)
		s->peak_reset = write(s->peak_fd, "reset\n", 6) == 6; /* EINVAL before 6.12 */
}

/* --- open / close */

static int load_step(struct em_bill *b, bool raw, const struct em_bill_opts *opts,
		     struct em_err *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = opts->btf_path);
	const char *what = raw ? "raw_tp/sched_switch" : "tp_btf/sched_switch";
	struct billing *skel;
	int ret;

	libbpf_first_warn[0] = libbpf_verifier[0] = '\0';
	skel = billing__open_opts(&oo);
	if (!skel)
		return em_err_set(err, errno, "open BPF object billing");
	skel->rodata->nr_cpus = b->nr_cpus;
	skel->rodata->cg_mask = b->cg_mask;
	/* one kind of each program: the switch, and the catch of switches it never sees */
	bpf_program__set_autoload(raw ? skel->progs.em_bill_switch_btf : skel->progs.em_bill_switch_raw,
				  false);
	bpf_program__set_autoload(raw ? skel->progs.em_bill_runtime_btf :
					skel->progs.em_bill_runtime_raw, false);
	if ((ret = bpf_map__set_max_entries(skel->maps.tracked, b->max_cgroups)) ||
	    (ret = bpf_map__set_max_entries(skel->maps.cgtab, b->cg_mask + 1)) ||
	    (ret = bpf_map__set_max_entries(skel->maps.acct, b->max_cgroups * b->nr_cpus)) ||
	    (ret = bpf_map__set_max_entries(skel->maps.win, b->max_cgroups))) {
		billing__destroy(skel);
		return em_err_set(err, -ret, "size BPF maps for %u cgroups", b->max_cgroups);
	}

	ret = billing__load(skel);
	if (ret) {
		billing__destroy(skel);
		/* EPERM: not privileged. EACCES: the verifier rejected the program (its reason is
		 * the last line of the load log), not a permission problem. */
		if (ret == -EPERM)
			return em_err_msg(err, EPERM,
					  "load BPF program %s: permission denied (needs root, or "
					  "CAP_BPF and CAP_PERFMON)", what);
		if (libbpf_verifier[0])
			return em_err_msg(err, -ret, "load BPF program %s: rejected by the verifier: %s",
					  what, libbpf_verifier);
		return em_err_msg(err, -ret, "load BPF program %s (CO-RE relocation or kernel): %s%s%s",
				  what, strerror(-ret), libbpf_first_warn[0] ? "; libbpf: " : "",
				  libbpf_first_warn);
	}
	ret = billing__attach(skel);
	if (ret) {
		billing__destroy(skel);
		return em_err_msg(err, -ret, "attach BPF program %s: %s%s%s", what, strerror(-ret),
				  libbpf_first_warn[0] ? "; " : "", libbpf_first_warn);
	}
	b->skel = skel;
	b->attach = what;
	return 0;
}

int em_bill_open(struct em_bill **out, const struct em_bill_opts *opts, struct em_err *err)
{
	static const struct em_bill_opts defaults;
	const char *btf;
	struct em_bill *b;
	uint32_t ht_size;
	void *m;
	int ret, ncpu;

	if (!opts)
		opts = &defaults;
	btf = opts->btf_path ? opts->btf_path : DEFAULT_BTF;
	if (access(btf, R_OK)) {
		if (errno == EACCES)
			return em_err_msg(err, EPERM, "open billing: kernel BTF %s is not readable by "
					  "this user: billing needs root (or CAP_BPF and CAP_PERFMON)", btf);
		return em_err_msg(err, ENOENT, "open billing: kernel BTF %s is missing: the CO-RE "
				  "programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y (or a BTF "
				  "file for it)", btf);
	}
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return em_err_set(err, ncpu ? -ncpu : EINVAL, "open billing: count possible CPUs");
	if (opts->log)
		em_bill_libbpf_log(opts->log);
	else
		libbpf_set_print(libbpf_print);

	b = calloc(1, sizeof(*b));
	if (!b)
		return em_err_set(err, ENOMEM, "open billing");
	pthread_mutex_init(&b->lock, NULL);
	b->nr_cpus = (uint32_t)ncpu;
	b->max_cgroups = opts->max_cgroups ? opts->max_cgroups : DEFAULT_MAX_CGROUPS;
	b->gran_ms = opts->granularity_ms ? opts->granularity_ms : 1;
	b->tol_pct = opts->cross_tol_pct ? opts->cross_tol_pct : DEFAULT_TOL_PCT;
	b->tol_ns = opts->cross_tol_ns ? opts->cross_tol_ns : DEFAULT_TOL_NS;
	b->log = opts->log;
	for (ht_size = 2; ht_size < 2 * b->max_cgroups; ht_size <<= 1)
		;
	b->ht_mask = ht_size - 1;
	/* as many 4-way groups as cgroups: a quarter full at most, a full group is rare */
	for (b->cg_mask = 1; b->cg_mask < (opts->table_groups ? opts->table_groups : b->max_cgroups);
	     b->cg_mask <<= 1)
		;
	b->cg_mask--;
	b->cg_ovf = calloc(b->cg_mask + 1, sizeof(*b->cg_ovf));
	b->cgs = calloc(b->max_cgroups, sizeof(*b->cgs));
	b->ht_key = calloc(ht_size, sizeof(*b->ht_key));
	b->ht_idx = calloc(ht_size, sizeof(*b->ht_idx));
	b->freeq = calloc(b->max_cgroups, sizeof(*b->freeq));
	if (!b->cgs || !b->ht_key || !b->ht_idx || !b->freeq || !b->cg_ovf) {
		em_bill_close(b);
		return em_err_set(err, ENOMEM, "open billing: tables for %u cgroups", b->max_cgroups);
	}
	for (uint32_t i = 0; i < b->max_cgroups; i++)
		b->freeq[i] = i;
	b->fq_len = b->max_cgroups;

	ret = -EINVAL;
	if (!opts->force_raw_tp) {
		ret = load_step(b, false, opts, err);
		/* Permission problems are not cured by the other attach type. */
		if (ret && ret != -EPERM) {
			em_warn(b->log, "billing: %s; falling back to raw_tp/sched_switch", err->msg);
			em_err_clear(err);
		}
	}
	if (!b->skel && ret != -EPERM)
		ret = load_step(b, true, opts, err);
	if (!b->skel) {
		em_bill_close(b);
		return em_err_prefix(err, "open billing");
	}

	b->acct_len = (size_t)b->max_cgroups * b->nr_cpus * sizeof(struct em_bill_cpu_acct);
	m = mmap(NULL, b->acct_len, PROT_READ, MAP_SHARED, bpf_map__fd(b->skel->maps.acct), 0);
	if (m == MAP_FAILED) {
		ret = em_err_set(err, errno, "open billing: mmap the acct map (%zu bytes)", b->acct_len);
		b->acct_len = 0;
		em_bill_close(b);
		return ret;
	}
	b->acct = m;
	b->win_len = (size_t)b->max_cgroups * sizeof(struct em_bill_win);
	m = mmap(NULL, b->win_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 bpf_map__fd(b->skel->maps.win), 0);
	if (m == MAP_FAILED) {
		ret = em_err_set(err, errno, "open billing: mmap the win map (%zu bytes)", b->win_len);
		b->win_len = 0;
		em_bill_close(b);
		return ret;
	}
	b->win = m;
	b->cgtab_len = (size_t)(b->cg_mask + 1) * sizeof(struct em_bill_cg_group);
	m = mmap(NULL, b->cgtab_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 bpf_map__fd(b->skel->maps.cgtab), 0);
	if (m == MAP_FAILED) {
		ret = em_err_set(err, errno, "open billing: mmap the cgtab map (%zu bytes)",
				 b->cgtab_len);
		b->cgtab_len = 0;
		em_bill_close(b);
		return ret;
	}
	b->cgtab = m;
	b->st.nr_cpus = b->nr_cpus;
	b->st.attach = b->attach;
	*out = b;
	return 0;
}

static void cg_state_release(struct cg_state *s)
{
	int *fds[] = { &s->unified_fd, &s->cpuacct_fd, &s->cpu_fd, &s->memory_fd, &s->peak_fd };

	for (size_t i = 0; i < EM_ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	memset(s, 0, sizeof(*s));
}

void em_bill_close(struct em_bill *b)
{
	if (!b)
		return;
	if (b->cgs)
		for (uint32_t i = 0; i < b->max_cgroups; i++)
			if (b->cgs[i].used)
				cg_state_release(&b->cgs[i]);
	if (b->acct)
		munmap((void *)b->acct, b->acct_len);
	if (b->win)
		munmap(b->win, b->win_len);
	if (b->cgtab)
		munmap(b->cgtab, b->cgtab_len);
	billing__destroy(b->skel); /* detaches */
	free(b->cgs);
	free(b->ht_key);
	free(b->ht_idx);
	free(b->freeq);
	free(b->cg_ovf);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* --- tracking */

int em_bill_cgid_of_path(const char *path, uint64_t *cgid, struct em_err *err)
{
	struct stat st;

	if (stat(path, &st))
		return em_err_set(err, errno, "stat cgroup %s", path);
	if (!S_ISDIR(st.st_mode))
		return em_err_msg(err, ENOTDIR, "cgroup %s is not a directory", path);
	*cgid = st.st_ino; /* kernfs node id == inode number on 64-bit */
	return 0;
}

static int open_dir(const char *path, int *fd, struct em_err *err)
{
	*fd = -1;
	if (!path)
		return 0;
	*fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return em_err_set(err, errno, "open cgroup dir %s", path);
	return 0;
}

/* --- the program's table of tracked cgroups (cgtab, see billing.h) */

/* Put cgid -> idx in its group, or in `tracked` if the group is full. *ent: where it went. */
static int cgtab_add(struct em_bill *b, uint64_t cgid, uint32_t idx, int *ent)
{
	uint32_t g = em_bill_cg_group_of(cgid, b->cg_mask);
	struct em_bill_cg_group *grp = &b->cgtab[g];
	struct em_bill_slot v = { .idx = idx };

	for (int w = 0; w < EM_BILL_CG_WAYS; w++) {
		if (__atomic_load_n(&grp->e[w].cgid, __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&grp->e[w].idx, idx, __ATOMIC_RELAXED);
		__atomic_store_n(&grp->e[w].cgid, cgid, __ATOMIC_RELEASE);
		*ent = (int)(g * EM_BILL_CG_WAYS + (uint32_t)w);
		return 0;
	}
	if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.tracked), &cgid, &v, BPF_NOEXIST))
		return -errno;
	if (!b->cg_ovf[g]++)
		__atomic_store_n(&grp->e[0].flags, EM_BILL_CG_OVERFLOW, __ATOMIC_RELEASE);
	*ent = -1;
	return 0;
}

static int cgtab_del(struct em_bill *b, uint64_t cgid, int ent)
{
	uint32_t g = em_bill_cg_group_of(cgid, b->cg_mask);

	if (ent >= 0) {
		__atomic_store_n(&b->cgtab[ent / EM_BILL_CG_WAYS].e[ent % EM_BILL_CG_WAYS].cgid, 0,
				 __ATOMIC_RELEASE);
		return 0;
	}
	if (bpf_map_delete_elem(bpf_map__fd(b->skel->maps.tracked), &cgid) && errno != ENOENT)
		return -errno;
	if (b->cg_ovf[g] && !--b->cg_ovf[g])
		__atomic_store_n(&b->cgtab[g].e[0].flags, 0, __ATOMIC_RELEASE);
	return 0;
}

/* A free slot no CPU is still charging (see em_bill_untrack); -1 if none. */
static int slot_get(struct em_bill *b)
{
	for (uint32_t tries = 0; tries < b->fq_len; tries++) {
		uint32_t idx = b->freeq[b->fq_head];

		b->fq_head = (b->fq_head + 1) % b->max_cgroups;
		b->fq_len--;
		if (slot_quiet(b, idx))
			return (int)idx;
		b->freeq[(b->fq_head + b->fq_len) % b->max_cgroups] = idx; /* back of the queue */
		b->fq_len++;
	}
	return -1;
}

static void slot_put(struct em_bill *b, uint32_t idx)
{
	b->freeq[(b->fq_head + b->fq_len) % b->max_cgroups] = idx;
	b->fq_len++;
}

int em_bill_track(struct em_bill *b, const struct em_bill_cg *cg, struct em_err *err)
{
	struct cg_state s = { .unified_fd = -1, .cpuacct_fd = -1, .cpu_fd = -1, .memory_fd = -1,
			      .peak_fd = -1 };
	uint64_t cgid = cg->cgid;
	int ret, idx;

	if (!cgid) {
		if (!cg->unified)
			return em_err_msg(err, EINVAL, "track cgroup: neither an id nor a path");
		ret = em_bill_cgid_of_path(cg->unified, &cgid, err);
		if (ret)
			return em_err_prefix(err, "track cgroup");
	}
	if ((ret = open_dir(cg->unified, &s.unified_fd, err)) ||
	    (ret = open_dir(cg->cpuacct, &s.cpuacct_fd, err)) ||
	    (ret = open_dir(cg->cpu, &s.cpu_fd, err)) ||
	    (ret = open_dir(cg->memory, &s.memory_fd, err))) {
		cg_state_release(&s);
		return em_err_prefix(err, "track cgroup %" PRIu64, cgid);
	}
	s.used = true;
	s.cgid = cgid;
	s.memory_mb = cg->memory_mb;

	pthread_mutex_lock(&b->lock);
	if (ht_find(b, cgid) >= 0) {
		ret = em_err_msg(err, EEXIST, "track cgroup %" PRIu64 ": already tracked", cgid);
		goto fail;
	}
	idx = slot_get(b);
	if (idx < 0) {
		ret = em_err_msg(err, ENOSPC, "track cgroup %" PRIu64 ": %u cgroups tracked already "
				 "(or freed slots still running)", cgid, b->max_cgroups);
		goto fail;
	}
	/* A new gen before the cgroup goes into the map: task storage left from the slot's previous
	 * cgroup no longer matches and is never charged to this one. */
	__atomic_store_n(&b->win[idx].arm_ts, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&b->win[idx].gen, ++b->gen, __ATOMIC_RELEASE);
	/* The slot names its cgroup before the table does: the program checks a hit against it. */
	__atomic_store_n(&b->win[idx].cgid, cgid, __ATOMIC_RELEASE);
	ret = cgtab_add(b, cgid, (uint32_t)idx, &s.ent);
	if (ret) {
		__atomic_store_n(&b->win[idx].cgid, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&b->win[idx].gen, 0, __ATOMIC_RELEASE);
		slot_put(b, (uint32_t)idx);
		ret = em_err_set(err, -ret, "track cgroup %" PRIu64 ": add to the BPF map", cgid);
		goto fail;
	}
	{
		struct reading rd;

		s.base_cpu = slot_read(b, (uint32_t)idx, 0, &rd) ? 0 : rd.cpu;
	}
	b->cgs[idx] = s;
	ht_insert(b, cgid, (uint32_t)idx);
	b->st.tracked++;
	pthread_mutex_unlock(&b->lock);
	return 0;
fail:
	pthread_mutex_unlock(&b->lock);
	cg_state_release(&s);
	return ret;
}

int em_bill_untrack(struct em_bill *b, uint64_t cgid, struct em_err *err)
{
	int idx, ret = 0;

	pthread_mutex_lock(&b->lock);
	idx = ht_find(b, cgid);
	if (idx < 0) {
		ret = em_err_msg(err, ENOENT, "untrack cgroup %" PRIu64 ": not tracked", cgid);
		goto out;
	}
	/* After the delete no new run can start on the slot; a run already in progress ends at its
	 * task's next switch, and slot_get() reuses the slot only once no CPU has one. */
	ret = cgtab_del(b, cgid, b->cgs[idx].ent);
	if (ret) {
		ret = em_err_set(err, -ret, "untrack cgroup %" PRIu64 ": delete from the BPF map",
				 cgid);
		goto out;
	}
	if (b->cgs[idx].open)
		em_debug(b->log, "billing: cgroup %" PRIu64 " untracked with a window open", cgid);
	cg_state_release(&b->cgs[idx]);
	__atomic_store_n(&b->win[idx].arm_ts, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&b->win[idx].cgid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&b->win[idx].gen, 0, __ATOMIC_RELEASE);
	ht_remove(b, cgid);
	slot_put(b, (uint32_t)idx);
	b->st.tracked--;
out:
	pthread_mutex_unlock(&b->lock);
	return ret;
}

/* --- windows */

static int find_locked(struct em_bill *b, uint64_t cgid, const char *what, struct em_err *err)
{
	int idx = ht_find(b, cgid);

	if (idx < 0)
		return em_err_msg(err, ENOENT, "%s for cgroup %" PRIu64 ": not tracked", what, cgid);
	return idx;
}

int em_bill_window_open(struct em_bill *b, uint64_t cgid, const struct em_bill_window_opts *wo,
			struct em_err *err)
{
	struct cg_state *s;
	int idx, ret = 0;

	pthread_mutex_lock(&b->lock);
	idx = find_locked(b, cgid, "open billing window", err);
	if (idx < 0) {
		ret = idx;
		goto out;
	}
	s = &b->cgs[idx];
	if (s->open) {
		ret = em_err_msg(err, EBUSY, "open billing window for cgroup %" PRIu64
				 ": a window is open", cgid);
		goto out;
	}
	/* The cgroup's counters first, then arm the window for the program (from now on the first
	 * run of each CPU is noted), then our own reading. */
	peak_start(s);
	cg_read(s, &s->open_cg, false);
	s->open_ns = now_ns();
	__atomic_store_n(&b->win[idx].arm_ts, s->open_ns, __ATOMIC_RELEASE);
	{
		struct reading rd;

		ret = slot_read(b, (uint32_t)idx, 0, &rd);
		if (ret) {
			ret = em_err_msg(err, -ret, "open billing window for cgroup %" PRIu64
					 ": accounting kept changing under the reader", cgid);
			goto out;
		}
		s->open_cpu = rd.cpu;
		s->open_switch = rd.nr_switch;
		s->open_missed = rd.nr_missed;
		s->open_running = rd.running;
	}
	s->wo = wo ? *wo : (struct em_bill_window_opts){ 0 };
	s->open = true;
out:
	pthread_mutex_unlock(&b->lock);
	return ret;
}

static uint64_t delta(uint64_t a, uint64_t b)
{
	return b > a ? b - a : 0;
}

/* Fill rec for the open window of slot idx up to now; with `close`, also the cgroup's counters,
 * the cross-check, and the window ends. */
static int window_record(struct em_bill *b, int idx, bool close, struct em_bill_record *rec,
			 struct em_err *err)
{
	struct cg_state *s = &b->cgs[idx];
	struct cg_counters cc;
	struct reading rd;
	uint64_t gran_ns, start, end;
	int ret;

	ret = slot_read(b, (uint32_t)idx, s->open_ns, &rd);
	if (ret)
		return em_err_msg(err, -ret, "read billing window of cgroup %" PRIu64
				  ": accounting kept changing under the reader", s->cgid);
	cg_read(s, &cc, close);

	memset(rec, 0, sizeof(*rec));
	rec->cgid = s->cgid;
	rec->open_ns = s->open_ns;
	rec->close_ns = rd.t;
	rec->host_wall_ns = delta(s->open_ns, rd.t);
	rec->cpu_ns = delta(s->open_cpu, rd.cpu);
	rec->nr_switch = delta(s->open_switch, rd.nr_switch);
	rec->nr_missed = delta(s->open_missed, rd.nr_missed);
	/* The instance's span: from its first run after the window opened (it received the request)
	 * to the end of its last run (it sent the response and blocked for the next one), or to now
	 * if it is still running. A task already running at the open has the window from the open. */
	if (s->open_running || rd.running)
		rec->flags |= EM_BILL_F_IN_FLIGHT;
	start = s->open_running ? s->open_ns : rd.first_ts;
	end = rd.running ? rd.t : rd.last_ts;
	if (start != UINT64_MAX && end > start) {
		rec->start_ns = start;
		rec->end_ns = end;
		rec->wall_ns = end - start;
	} else {
		rec->flags |= EM_BILL_F_NO_RUN;
	}
	gran_ns = (uint64_t)b->gran_ms * 1000000ull;
	rec->billed_ms = (rec->wall_ns + gran_ns - 1) / gran_ns * b->gran_ms;
	rec->memory_mb = s->memory_mb;
	rec->mb_ms = s->memory_mb * rec->billed_ms;
	rec->start = s->wo.start;
	rec->init_ns = s->wo.init_ns;
	if (cc.has_cpu && s->open_cg.has_cpu) {
		rec->flags |= EM_BILL_F_CG_CPU;
		rec->cg_cpu_ns = delta(s->open_cg.cpu_ns, cc.cpu_ns);
	}
	if (cc.has_throttle && s->open_cg.has_throttle) {
		rec->flags |= EM_BILL_F_THROTTLE;
		rec->throttled_ns = delta(s->open_cg.throttled_ns, cc.throttled_ns);
		rec->nr_throttled = delta(s->open_cg.nr_throttled, cc.nr_throttled);
	}
	if (cc.has_peak) {
		rec->flags |= EM_BILL_F_MEM_PEAK | (cc.peak_life ? EM_BILL_F_MEM_PEAK_LIFE : 0);
		rec->mem_peak_bytes = cc.peak;
	}
	if (!close)
		return 0;

	if (rec->flags & EM_BILL_F_CG_CPU) {
		uint64_t diff = rec->cpu_ns > rec->cg_cpu_ns ? rec->cpu_ns - rec->cg_cpu_ns :
							       rec->cg_cpu_ns - rec->cpu_ns;
		uint64_t tol = rec->cpu_ns / 100 * b->tol_pct;

		if (tol < b->tol_ns)
			tol = b->tol_ns;
		if (diff > tol) {
			rec->flags |= EM_BILL_F_CPU_MISMATCH;
			b->st.cpu_mismatches++;
			em_warn(b->log, "billing: cgroup %" PRIu64 ": BPF cpu_ns %" PRIu64 " vs cgroup "
				"usage %" PRIu64 " differ by %" PRIu64 " ns (tolerance %" PRIu64 ")",
				s->cgid, rec->cpu_ns, rec->cg_cpu_ns, diff, tol);
		}
		b->st.cg_cpu_ns += rec->cg_cpu_ns;
	}
	b->st.windows++;
	b->st.cpu_ns += rec->cpu_ns;
	return 0;
}

int em_bill_window_close(struct em_bill *b, uint64_t cgid, struct em_bill_record *rec,
			 struct em_err *err)
{
	int idx, ret;

	pthread_mutex_lock(&b->lock);
	idx = ret = find_locked(b, cgid, "close billing window", err);
	if (idx >= 0 && !b->cgs[idx].open)
		ret = em_err_msg(err, ENOENT, "close billing window for cgroup %" PRIu64
				 ": no window open", cgid);
	if (ret >= 0) {
		ret = window_record(b, idx, true, rec, err);
		if (!ret) {
			b->cgs[idx].open = false;
			__atomic_store_n(&b->win[idx].arm_ts, 0, __ATOMIC_RELAXED);
		}
	}
	pthread_mutex_unlock(&b->lock);
	return ret < 0 ? ret : 0;
}

int em_bill_window_read(struct em_bill *b, uint64_t cgid, struct em_bill_record *rec,
			struct em_err *err)
{
	int idx, ret;

	pthread_mutex_lock(&b->lock);
	idx = ret = find_locked(b, cgid, "read billing window", err);
	if (idx >= 0 && !b->cgs[idx].open)
		ret = em_err_msg(err, ENOENT, "read billing window for cgroup %" PRIu64
				 ": no window open", cgid);
	if (ret >= 0)
		ret = window_record(b, idx, false, rec, err);
	pthread_mutex_unlock(&b->lock);
	return ret < 0 ? ret : 0;
}

int em_bill_cpu_total(struct em_bill *b, uint64_t cgid, uint64_t *cpu_ns, struct em_err *err)
{
	int idx, ret;

	pthread_mutex_lock(&b->lock);
	idx = ret = find_locked(b, cgid, "read CPU time", err);
	if (idx >= 0) {
		struct reading rd;

		ret = slot_read(b, (uint32_t)idx, 0, &rd);
		if (ret)
			em_err_msg(err, -ret, "read CPU time of cgroup %" PRIu64
				   ": accounting kept changing under the reader", cgid);
		else
			*cpu_ns = delta(b->cgs[idx].base_cpu, rd.cpu);
	}
	pthread_mutex_unlock(&b->lock);
	return ret < 0 ? ret : 0;
}

void em_bill_get_stats(struct em_bill *b, struct em_bill_stats *st)
{
	pthread_mutex_lock(&b->lock);
	*st = b->st;
	pthread_mutex_unlock(&b->lock);
}

static int prog_info(struct bpf_program *prog, struct bpf_prog_info *info, struct em_err *err)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), info, &len))
		return em_err_set(err, errno, "read the stats of BPF program %s",
				  bpf_program__section_name(prog));
	return 0;
}

int em_bill_prog_stats(struct em_bill *b, struct em_bill_prog_stats *ps, struct em_err *err)
{
	bool raw = !strcmp(b->attach, "raw_tp/sched_switch");
	struct bpf_prog_info sw, rt;
	int ret;

	if ((ret = prog_info(raw ? b->skel->progs.em_bill_switch_raw :
				   b->skel->progs.em_bill_switch_btf, &sw, err)) ||
	    (ret = prog_info(raw ? b->skel->progs.em_bill_runtime_raw :
				   b->skel->progs.em_bill_runtime_btf, &rt, err)))
		return ret;
	ps->run_cnt = sw.run_cnt;
	ps->run_time_ns = sw.run_time_ns;
	ps->runtime_run_cnt = rt.run_cnt;
	ps->runtime_run_time_ns = rt.run_time_ns;
	ps->recursion_misses = sw.recursion_misses + rt.recursion_misses;
	return 0;
}
