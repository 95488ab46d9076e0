/* snapshot/lazy_server.c — the host's half of a lazy restore (lazy.h): the fault server (one thread
 * per restored template, serving it and its forks) and the working-set sidecar it records and
 * prefetches (FORMAT.md, "Working set").
 *
 * The server keeps, per served process, one bit per page of the image's page map: "done", set once
 * a page was installed (or found present), or dropped by the process (MADV_DONTNEED, munmap). A
 * fault on a done page is answered with the zero page, never the image's bytes: a page the process
 * dropped must read zero, as it would have without a snapshot. A fork's child starts with a copy
 * of its parent's bits at the moment the FORK event is read (the parent's page tables were copied
 * under its mmap lock before that, and a copy into the parent that would race the fork fails with
 * EAGAIN until the event is read). */
#include "snapshot/lazy.h"
#include "snapshot/lazy_util.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool bit_get(const uint64_t *b, uint64_t i) { return b[i / 64] >> (i % 64) & 1; }
static void bit_set(uint64_t *b, uint64_t i) { b[i / 64] |= 1ull << (i % 64); }

/* --- the working-set sidecar ----------------------------------------------------------------- */

#define WS_MAGIC "EMBERWS1"
#define WS_VERSION 1
#define WS_RUNS_MAX (1u << 24)

struct ws_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;           /* 64 */
	uint32_t image_header_crc;      /* the image it was recorded for: its header_crc, */
	uint32_t image_meta_crc;        /* meta_crc */
	uint64_t image_file_size;       /* and file_size */
	uint32_t nr_runs;
	uint32_t run_size;              /* 16 */
	uint32_t nr_pages;
	uint32_t crc;                   /* CRC32C of the header with this field 0, then the runs */
	uint64_t reserved[2];
};
_Static_assert(sizeof(struct ws_header) == 64, "on-disk working-set header");
_Static_assert(sizeof(struct em_snap_ws_run) == 16, "on-disk working-set run");

static uint32_t ws_crc(const struct ws_header *h, const struct em_snap_ws_run *runs)
{
	struct ws_header c = *h;

	c.crc = 0;
	return em_snap_crc32c(em_snap_crc32c(0, &c, sizeof(c)), runs,
			      (size_t)h->nr_runs * sizeof(*runs));
}

int em_snap_ws_load(const struct em_snap_image *img, const char *path, struct em_snap_ws_run **out,
		    uint32_t *nr, struct em_err *err)
{
	const struct em_snap_header *ih = em_snap_header(img);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct ws_header h;
	int ret;

	*out = NULL;
	*nr = 0;
	if (fd < 0)
		return em_err_set(err, errno, "working set %s: open", path);
	ret = pread_full(fd, &h, sizeof(h), 0);
	if (ret < 0)
		return em_err_set(err, ret == -ENODATA ? EINVAL : -ret, "working set %s: read its "
				  "header%s", path, ret == -ENODATA ? ": truncated" : "");
	if (memcmp(h.magic, WS_MAGIC, 8))
		return em_err_msg(err, EINVAL, "working set %s: bad magic", path);
	if (h.version != WS_VERSION)
		return em_err_msg(err, EPROTONOSUPPORT, "working set %s: version %u, this ember reads "
				  "%u", path, h.version, WS_VERSION);
	if (h.header_size != sizeof(h) || h.run_size != sizeof(struct em_snap_ws_run) ||
	    h.nr_runs > WS_RUNS_MAX || h.reserved[0] || h.reserved[1])
		return em_err_msg(err, EINVAL, "working set %s: inconsistent header", path);
	if (h.image_header_crc != ih->header_crc || h.image_meta_crc != ih->meta_crc ||
	    h.image_file_size != ih->file_size)
		return em_err_msg(err, ESTALE, "working set %s: recorded for another image", path);
	cleanup_free struct em_snap_ws_run *runs = malloc((size_t)h.nr_runs * sizeof(*runs) + 1);
	if (!runs)
		return em_err_set(err, ENOMEM, "working set %s: %u runs", path, h.nr_runs);
	ret = pread_full(fd, runs, (size_t)h.nr_runs * sizeof(*runs), sizeof(h));
	if (ret < 0)
		return em_err_set(err, ret == -ENODATA ? EINVAL : -ret, "working set %s: read %u "
				  "runs%s", path, h.nr_runs, ret == -ENODATA ? ": truncated" : "");
	if (ws_crc(&h, runs) != h.crc)
		return em_err_msg(err, EBADMSG, "working set %s: checksum mismatch", path);
	uint64_t pages = 0, total = 0;
	for (uint32_t i = 0; i < em_snap_region_count(img); i++)
		total += region_pages(em_snap_region(img, i));
	cleanup_free uint64_t *seen = calloc(total / 64 + 1, sizeof(uint64_t));
	if (!seen)
		return em_err_set(err, ENOMEM, "working set %s: page bitmap", path);
	for (uint32_t i = 0; i < h.nr_runs; i++) {
		const struct em_snap_ws_run *w = &runs[i];
		const struct em_snap_region *r = em_snap_region(img, w->region);

		if (!r || !w->npages || w->reserved || w->page >= region_pages(r) ||
		    w->npages > region_pages(r) - w->page)
			return em_err_msg(err, EINVAL, "working set %s: run %u (region %u, pages %u+%u) "
					  "out of range", path, i, w->region, w->page, w->npages);
		for (uint32_t k = w->page; k < w->page + w->npages; k++) {
			if (bit_get(seen, r->page_first + k))
				return em_err_msg(err, EINVAL, "working set %s: run %u (region %u, "
						  "pages %u+%u) overlaps an earlier run", path, i,
						  w->region, w->page, w->npages);
			bit_set(seen, r->page_first + k);
		}
		pages += w->npages;
	}
	if (pages != h.nr_pages)
		return em_err_msg(err, EINVAL, "working set %s: %" PRIu64 " pages in its runs, its "
				  "header says %u", path, pages, h.nr_pages);
	*out = take_ptr(runs);
	*nr = h.nr_runs;
	return 0;
}

/* --- the fault server ------------------------------------------------------------------------ */

#define PROBE_MS 200    /* how often an idle server checks that its processes still exist */
#define MSGS 32         /* messages per read() */

/* mremap moved [from, from + len) to [to, to + len); orig is where those pages are in the image's
 * layout (from, unless from had been moved there itself) */
struct remap {
	uint64_t from, to, orig, len;
};

struct proc {
	int uffd;
	bool root;              /* the restored template (the prefetch target) */
	bool gone;
	uint64_t *done;         /* bit per page-map entry: installed, present, or dropped */
	struct remap *remaps;
	uint32_t nr_remaps;
};

struct em_snap_lazy {
	struct em_snap_image *img;
	struct em_snap_lazy_opts o;
	char ws_path[4096];
	uint64_t features;      /* the root userfaultfd's (fork children inherit them) */
	uint32_t total_pages;   /* entries of the page map */
	size_t bitmap_words;
	uint64_t probe_addr;    /* a page no region covers: liveness probes (probe_alive) */
	char *buf;              /* max(batch, prefetch) pages of image data */
	uint32_t buf_pages;
	int stop_fd;            /* eventfd: em_snap_lazy_stop */
	pthread_t thread;
	bool thread_ok;
	struct proc **procs;
	uint32_t nr_procs, cap_procs;

	bool recording;
	uint64_t *ws;           /* recorded working set, bit per page-map entry */
	struct em_snap_ws_run *rec; /* the same pages, in the order they were installed */
	uint32_t rec_nr, rec_cap;
	struct em_snap_ws_run *pf; /* loaded working set to prefetch */
	uint32_t pf_nr, pf_i, pf_page;
	uint64_t t_start;

	pthread_mutex_t lock;   /* st, err, ws (the bits) against em_snap_lazy_stats/save_ws */
	struct em_snap_lazy_stats st;
	struct em_err err;      /* the first error the server met */
};


#define STAT_ADD(s, field, n)                          \
	do {                                           \
		pthread_mutex_lock(&(s)->lock);        \
		(s)->st.field += (n);                  \
		pthread_mutex_unlock(&(s)->lock);      \
	} while (0)

/* Keep the first error; the server carries on with the rest (other pages, other processes). */
static void record_error(struct em_snap_lazy *s, const struct em_err *e)
{
	pthread_mutex_lock(&s->lock);
	if (!s->st.failed) {
		s->err = *e;
		s->st.failed = true;
	}
	pthread_mutex_unlock(&s->lock);
}

static int find_region(const struct em_snap_image *img, uint64_t addr)
{
	uint32_t lo = 0, hi = em_snap_region_count(img);

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct em_snap_region *r = em_snap_region(img, mid);

		if (addr < r->start)
			hi = mid;
		else if (addr >= r->end)
			lo = mid + 1;
		else
			return (int)mid;
	}
	return -1;
}

/* The image-layout address of addr in p (after the process's mremaps). */
static uint64_t translate(const struct proc *p, uint64_t addr)
{
	for (uint32_t i = p->nr_remaps; i-- > 0;) {
		const struct remap *m = &p->remaps[i];

		if (addr >= m->to && addr - m->to < m->len)
			return m->orig + (addr - m->to);
	}
	return addr;
}

enum fill_kind { COPY, ZERO, POISON };

/* One ioctl filling [dst, dst + npages pages) of p: COPY from src, ZEROPAGE or POISON.
 * Returns pages done (>= 0) with *eno the errno that stopped it (0 when all were done). */
static uint32_t uffd_ioctl(struct proc *p, enum fill_kind k, uint64_t dst, const char *src,
			   uint32_t npages, int *eno)
{
	uint64_t len = (uint64_t)npages * PAGE;
	int64_t got;
	int ret;

	if (k == COPY) {
		struct uffdio_copy c = { .dst = dst, .src = (uint64_t)(uintptr_t)src, .len = len };
		ret = ioctl(p->uffd, UFFDIO_COPY, &c);
		got = c.copy;
	} else if (k == ZERO) {
		struct uffdio_zeropage z = { .range = { .start = dst, .len = len } };
		ret = ioctl(p->uffd, UFFDIO_ZEROPAGE, &z);
		got = z.zeropage;
	} else {
		struct uffdio_poison z = { .range = { .start = dst, .len = len } };
		ret = ioctl(p->uffd, UFFDIO_POISON, &z);
		got = z.updated;
	}
	*eno = ret < 0 ? errno : 0;
	if (ret == 0)
		return npages;
	return got > 0 ? (uint32_t)((uint64_t)got / PAGE) : 0;
}

/* What a fill did, page by page: installed, found present, or left (stop). */
struct fill_result {
	uint32_t installed, existing;
	int eno;                /* why it stopped early: EAGAIN (mm changing), ESRCH, ENOENT, ... */
};

/* Fill npages at dst, in one ioctl when nothing is in the way. Pages present already (EEXIST: the
 * process had them before it was registered, or a prefetch and a fault met) are stepped over one
 * at a time, and the rest tried again as a batch. Stops at any other error. */
static struct fill_result fill(struct proc *p, enum fill_kind k, uint64_t dst, const char *src,
			       uint32_t npages, uint64_t *done_bits, uint64_t first_bit)
{
	struct fill_result res = { 0 };
	uint32_t i = 0;

	while (i < npages) {
		int eno;
		uint32_t n = uffd_ioctl(p, k, dst + (uint64_t)i * PAGE,
					src ? src + (size_t)i * PAGE : NULL, npages - i, &eno);

		for (uint32_t j = 0; j < n; j++)
			bit_set(done_bits, first_bit + i + j);
		res.installed += n;
		i += n;
		if (!eno)
			continue;
		if (eno == EAGAIN && n)
			continue; /* partial: go on from where it stopped */
		if (eno != EEXIST) {
			res.eno = eno;
			return res;
		}
		bit_set(done_bits, first_bit + i); /* page i is present: step over it */
		res.existing++;
		i++;
	}
	return res;
}

struct served {
	uint32_t copied, zeroed, existing, poisoned;
};

/* Add the pages of [k, k + n) that p has now and the working set lacks, in order (a fork's child
 * faulting a page its parent had faulted adds nothing). Allocation failures only shorten it. */
static void record_ws(struct em_snap_lazy *s, uint32_t ri, uint32_t k, uint32_t n,
		      const struct proc *p, uint64_t *ws)
{
	uint64_t base = em_snap_region(s->img, ri)->page_first;

	pthread_mutex_lock(&s->lock);
	for (uint32_t j = k; j < k + n; j++) {
		if (!bit_get(p->done, base + j) || bit_get(ws, base + j))
			continue;
		struct em_snap_ws_run *last = s->rec_nr ? &s->rec[s->rec_nr - 1] : NULL;
		if (last && last->region == ri && last->page + last->npages == j) {
			last->npages++;
		} else {
			if (s->rec_nr == s->rec_cap) {
				uint32_t cap = s->rec_cap ? s->rec_cap * 2 : 256;
				struct em_snap_ws_run *m = realloc(s->rec, cap * sizeof(*m));
				if (!m)
					break;
				s->rec = m;
				s->rec_cap = cap;
			}
			s->rec[s->rec_nr++] = (struct em_snap_ws_run){ .region = ri, .page = j,
								       .npages = 1 };
		}
		bit_set(ws, base + j);
	}
	pthread_mutex_unlock(&s->lock);
}

/* Install pages [from, to) of region ri into p at their addresses + delta (mremap), skipping done
 * pages: stored runs read from the image (checked when verify), zero and absent runs zeroed.
 * *stop gets the errno that stopped it (EAGAIN: retry later; ESRCH: process gone), 0 otherwise;
 * errors that concern the image (a read, a checksum) are recorded and the pages poisoned. */
static void install(struct em_snap_lazy *s, struct proc *p, uint32_t ri, uint32_t from, uint32_t to,
		    int64_t delta, struct served *sv, uint64_t *ws, int *stop)
{
	const struct em_snap_region *r = em_snap_region(s->img, ri);
	uint64_t base = r->page_first;
	char d[160];

	*stop = 0;
	for (uint32_t k = from; k < to && !*stop;) {
		uint64_t off = 0, off2 = 0;

		if (bit_get(p->done, base + k)) {
			k++;
			continue;
		}
		enum em_snap_page_state st = em_snap_page_at(s->img, ri, k, &off);
		bool stored = st == EM_SNAP_STORED;
		uint32_t n = 1;
		/* a run: same kind, not done, stored pages contiguous in the image, within buf */
		while (k + n < to && n < s->buf_pages && !bit_get(p->done, base + k + n)) {
			enum em_snap_page_state st2 = em_snap_page_at(s->img, ri, k + n, &off2);

			if ((st2 == EM_SNAP_STORED) != stored ||
			    (stored && off2 != off + (uint64_t)n * PAGE))
				break;
			n++;
		}
		uint64_t dst = (uint64_t)((int64_t)(r->start + (uint64_t)k * PAGE) + delta);
		struct fill_result fr;
		if (!stored) {
			fr = fill(p, ZERO, dst, NULL, n, p->done, base + k);
			sv->zeroed += fr.installed;
		} else {
			struct em_err e = { 0 };
			int ret = pread_full(em_snap_fd(s->img), s->buf, (size_t)n * PAGE, off);
			bool bad_run = ret < 0;

			if (ret < 0)
				em_err_set(&e, ret == -ENODATA ? EINVAL : -ret, "lazy restore: %s: read "
					   "pages %u-%u at image offset %#" PRIx64 "%s",
					   region_desc(s->img, ri, d, sizeof(d)), k, k + n - 1, off,
					   ret == -ENODATA ? ": the image ends inside its page data" : "");
			else if (s->o.verify &&
				 em_snap_check_pages(s->img, ri, k, n, s->buf, &e) < 0)
				bad_run = true;
			if (!bad_run) {
				fr = fill(p, COPY, dst, s->buf, n, p->done, base + k);
				sv->copied += fr.installed;
			} else {
				/* Copy the good pages one by one and poison the bad ones: the process
				 * gets SIGBUS (a syscall EFAULT) on exactly those, and the error is
				 * kept for em_snap_lazy_stop. */
				em_err_prefix(&e, "lazy restore, serving %#" PRIx64 ": ", dst);
				record_error(s, &e);
				fr = (struct fill_result){ 0 };
				for (uint32_t j = 0; j < n && !fr.eno; j++) {
					struct em_err e2 = { 0 };
					bool bad = ret < 0 || em_snap_check_pages(s->img, ri, k + j, 1,
										   s->buf + (size_t)j * PAGE,
										   &e2) < 0;
					struct fill_result f1 = fill(p, bad ? POISON : COPY,
								     dst + (uint64_t)j * PAGE,
								     bad ? NULL : s->buf + (size_t)j * PAGE,
								     1, p->done, base + k + j);
					if (bad)
						sv->poisoned += f1.installed;
					else
						sv->copied += f1.installed;
					fr.installed += f1.installed;
					fr.existing += f1.existing;
					fr.eno = f1.eno;
				}
			}
		}
		sv->existing += fr.existing;
		if (ws && fr.installed)
			record_ws(s, ri, k, n, p, ws);
		if (fr.eno == ENOENT) {
			/* the range is no longer registered (unmapped; its UNMAP event follows):
			 * nothing to fill there again */
			for (uint32_t j = 0; j < n; j++)
				bit_set(p->done, base + k + j);
		} else if (fr.eno) {
			*stop = fr.eno;
			if (fr.eno != EAGAIN && fr.eno != ESRCH) {
				struct em_err e = { 0 };

				em_err_set(&e, fr.eno, "lazy restore: %s: %s pages %u-%u at %#" PRIx64,
					   region_desc(s->img, ri, d, sizeof(d)),
					   stored ? "UFFDIO_COPY" : "UFFDIO_ZEROPAGE", k, k + n - 1, dst);
				record_error(s, &e);
			}
		}
		k += n;
	}
}

static void wake(struct proc *p, uint64_t addr)
{
	struct uffdio_range w = { .start = addr, .len = PAGE };

	ioctl(p->uffd, UFFDIO_WAKE, &w);
}

/* The zero page at addr alone (a page that reads zero whatever the image says); the faulting
 * thread is woken either way. Returns the errno that stops the serving, or 0. */
static int zero_one(struct proc *p, uint64_t addr, struct served *sv)
{
	uint64_t scratch[1] = { 0 };
	struct fill_result fr = fill(p, ZERO, addr, NULL, 1, scratch, 0);

	sv->zeroed = fr.installed;
	if (!fr.installed)
		wake(p, addr);
	return fr.eno;
}

/* A page fault at addr: its aligned batch, clipped to its region, from the faulting page forward
 * first (the faulting thread wakes as soon as its page's run is in), then the pages before it.
 * Why 64 KiB: one round trip (trap, wake the server, read, copy, wake) costs tens of µs in a nested
 * VM whatever its size, while copying 16 pages costs a few µs more than copying one; memory is
 * touched in runs (heaps, arrays), so the neighbours are usually the next faults. Larger batches
 * stop paying once the copy dominates and they install pages the template never touches. */
static void serve_fault(struct em_snap_lazy *s, struct proc *p, uint64_t addr)
{
	uint64_t t0 = now_ns(), orig;
	struct served sv = { 0 };
	int stop = 0, ri;

	addr &= ~(uint64_t)(PAGE - 1);
	orig = translate(p, addr);
	ri = find_region(s->img, orig);
	if (ri < 0) {
		/* registered memory outside every region: only a mremap the server missed could
		 * do it; zero is what an anonymous page outside the image reads */
		stop = zero_one(p, addr, &sv);
	} else {
		const struct em_snap_region *r = em_snap_region(s->img, (uint32_t)ri);
		uint32_t k = (uint32_t)((orig - r->start) / PAGE), total = region_pages(r);
		uint64_t bit = r->page_first + k;
		int64_t delta = (int64_t)(addr - orig);
		uint32_t w0 = k & ~(s->o.batch_pages - 1), w1 = w0 + s->o.batch_pages;

		if (delta) /* moved by mremap: the window might leave the moved range */
			w0 = k, w1 = k + 1;
		if (w1 > total)
			w1 = total;
		if (bit_get(p->done, bit)) {
			/* dropped by the process (MADV_DONTNEED) after it was served, or never to
			 * be served again: it reads zero, as without a snapshot */
			stop = zero_one(p, addr, &sv);
		} else {
			uint64_t *ws = s->recording ? s->ws : NULL;

			install(s, p, (uint32_t)ri, k, w1, delta, &sv, ws, &stop);
			if (!stop)
				install(s, p, (uint32_t)ri, w0, k, delta, &sv, ws, &stop);
			/* the faulting page was present already, or the mm is changing (a fork
			 * or a DONTNEED waits for its event to be read): wake the thread, it
			 * faults again if the page is still missing */
			if (!bit_get(p->done, bit) || stop)
				wake(p, addr);
		}
	}
	if (stop == ESRCH)
		p->gone = true;
	pthread_mutex_lock(&s->lock);
	s->st.faults++;
	s->st.pages_copied += sv.copied;
	s->st.pages_zeroed += sv.zeroed;
	s->st.pages_existing += sv.existing;
	s->st.pages_poisoned += sv.poisoned;
	s->st.fault_ns += now_ns() - t0;
	pthread_mutex_unlock(&s->lock);
}

static struct proc *proc_new(struct em_snap_lazy *s, int uffd, const struct proc *parent)
{
	struct proc *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->uffd = uffd;
	p->done = calloc(s->bitmap_words, sizeof(uint64_t));
	if (parent && parent->nr_remaps)
		p->remaps = malloc(parent->nr_remaps * sizeof(*p->remaps));
	if (!p->done || (parent && parent->nr_remaps && !p->remaps)) {
		free(p->done);
		free(p->remaps);
		free(p);
		return NULL;
	}
	if (parent) {
		memcpy(p->done, parent->done, s->bitmap_words * sizeof(uint64_t));
		if (parent->nr_remaps)
			memcpy(p->remaps, parent->remaps, parent->nr_remaps * sizeof(*p->remaps));
		p->nr_remaps = parent->nr_remaps;
	}
	return p;
}

static void proc_free(struct proc *p)
{
	if (!p)
		return;
	if (p->uffd >= 0)
		close(p->uffd);
	free(p->done);
	free(p->remaps);
	free(p);
}

static int add_proc(struct em_snap_lazy *s, struct proc *p)
{
	if (s->nr_procs == s->cap_procs) {
		uint32_t cap = s->cap_procs ? s->cap_procs * 2 : 8;
		struct proc **n = realloc(s->procs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->procs = n;
		s->cap_procs = cap;
	}
	s->procs[s->nr_procs++] = p;
	pthread_mutex_lock(&s->lock);
	s->st.processes = s->nr_procs;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static bool moved_away(const struct proc *p, uint64_t addr)
{
	for (uint32_t i = 0; i < p->nr_remaps; i++)
		if (addr >= p->remaps[i].from && addr - p->remaps[i].from < p->remaps[i].len)
			return true;
	return false;
}

/* Pages [start, end) of p were dropped (REMOVE, UNMAP) or moved away (REMAP's source): never fill
 * them from the image again. */
static void forget(struct em_snap_lazy *s, struct proc *p, uint64_t start, uint64_t end)
{
	for (uint64_t a = start & ~(uint64_t)(PAGE - 1); a < end; a += PAGE) {
		uint64_t o = translate(p, a);

		/* mremap reports the unmapping of its source range after the move (an UNMAP
		 * event): those addresses no longer hold the pages, which live on at the
		 * destination; only an address mapped there since (a translated one) counts */
		if (o == a && moved_away(p, a))
			continue;
		int ri = find_region(s->img, o);

		if (ri < 0) {
			/* skip to the next region quickly when nothing is remapped */
			if (!p->nr_remaps) {
				uint32_t i = 0;
				while (i < em_snap_region_count(s->img) &&
				       em_snap_region(s->img, i)->end <= a)
					i++;
				if (i == em_snap_region_count(s->img))
					return;
				uint64_t next = em_snap_region(s->img, i)->start;
				if (next > a)
					a = next - PAGE;
			}
			continue;
		}
		const struct em_snap_region *r = em_snap_region(s->img, (uint32_t)ri);
		bit_set(p->done, r->page_first + (o - r->start) / PAGE);
	}
}

static void handle_msg(struct em_snap_lazy *s, struct proc *p, const struct uffd_msg *m)
{
	struct em_err e = { 0 };

	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT:
		serve_fault(s, p, m->arg.pagefault.address);
		break;
	case UFFD_EVENT_FORK: {
		/* The child's userfaultfd, installed in this process by the read that returned
		 * the event: serve it like its parent, from what the parent had at the fork. */
		struct proc *c = proc_new(s, (int)m->arg.fork.ufd, p);

		if (!c || add_proc(s, c) < 0) {
			em_err_set(&e, ENOMEM, "lazy restore: adopt a fork's userfaultfd %u",
				   m->arg.fork.ufd);
			record_error(s, &e);
			if (c)
				proc_free(c);
			else
				close((int)m->arg.fork.ufd);
			break;
		}
		STAT_ADD(s, forks, 1);
		break;
	}
	case UFFD_EVENT_REMAP: {
		uint64_t from = m->arg.remap.from, to = m->arg.remap.to, len = m->arg.remap.len;
		struct remap *n = realloc(p->remaps, (p->nr_remaps + 1) * sizeof(*n));

		if (!n) {
			em_err_set(&e, ENOMEM, "lazy restore: record a mremap");
			record_error(s, &e);
			break;
		}
		p->remaps = n;
		/* record where the moved pages come from before the source is forgotten: only
		 * the new range holds them now */
		p->remaps[p->nr_remaps] = (struct remap){ .from = from, .to = to,
							  .orig = translate(p, from), .len = len };
		p->nr_remaps++;
		STAT_ADD(s, removes, 1);
		break;
	}
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		forget(s, p, m->arg.remove.start, m->arg.remove.end);
		STAT_ADD(s, removes, 1);
		break;
	default:
		em_err_msg(&e, EPROTO, "lazy restore: unexpected userfaultfd event %#x", m->event);
		record_error(s, &e);
	}
}

/* Read and handle everything pending on p's userfaultfd (non-blocking: O_NONBLOCK is the file's). */
static void drain_msgs(struct em_snap_lazy *s, struct proc *p)
{
	struct uffd_msg msgs[MSGS];

	while (!p->gone) {
		ssize_t n = read(p->uffd, msgs, sizeof(msgs));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				struct em_err e = { 0 };

				em_err_set(&e, errno, "lazy restore: read userfaultfd %d", p->uffd);
				record_error(s, &e);
				p->gone = true;
			}
			return;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++)
			handle_msg(s, p, &msgs[i]);
		if ((size_t)n < sizeof(msgs))
			return;
	}
}

/* Is p's process still there? A zero-page fill at an address no region covers: it is refused
 * with ESRCH once the process's mm is gone, and with ENOENT (nothing registered there) while it
 * lives; a userfaultfd says nothing itself when its process exits. */
static bool probe_alive(struct em_snap_lazy *s, struct proc *p)
{
	struct uffdio_zeropage z = { .range = { .start = s->probe_addr, .len = PAGE },
				     .mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE };

	if (ioctl(p->uffd, UFFDIO_ZEROPAGE, &z) == 0)
		return true; /* cannot be: the address is registered nowhere; harmless zero page */
	return errno != ESRCH;
}

static void reap(struct em_snap_lazy *s)
{
	uint32_t j = 0, gone = 0;

	for (uint32_t i = 0; i < s->nr_procs; i++) {
		if (s->procs[i]->gone) {
			proc_free(s->procs[i]);
			gone++;
		} else {
			s->procs[j++] = s->procs[i];
		}
	}
	s->nr_procs = j;
	pthread_mutex_lock(&s->lock);
	s->st.exits += gone;
	s->st.processes = j;
	pthread_mutex_unlock(&s->lock);
}

/* One prefetch step: up to prefetch_pages of the working set into the root process, in the order
 * the first restore faulted them in (the order this one will likely touch them: the prefetch stays
 * ahead of the process instead of racing it from the other end). Faults are served between
 * steps. Returns false when the prefetch is over. */
static bool prefetch_step(struct em_snap_lazy *s)
{
	struct proc *root = NULL;
	uint32_t budget = s->o.prefetch_pages;

	for (uint32_t i = 0; i < s->nr_procs; i++)
		if (s->procs[i]->root)
			root = s->procs[i];
	if (!root)
		return false;
	while (budget && s->pf_i < s->pf_nr) {
		const struct em_snap_ws_run *w = &s->pf[s->pf_i];
		uint32_t from = w->page + s->pf_page, to = w->page + w->npages;
		struct served sv = { 0 };
		int stop;

		if (to - from > budget)
			to = from + budget;
		install(s, root, w->region, from, to, 0, &sv, NULL, &stop);
		pthread_mutex_lock(&s->lock);
		s->st.pages_prefetched += sv.copied + sv.zeroed;
		s->st.pages_existing += sv.existing;
		s->st.pages_poisoned += sv.poisoned;
		pthread_mutex_unlock(&s->lock);
		if (stop == ESRCH) {
			root->gone = true;
			return false;
		}
		if (stop == EAGAIN)
			return true; /* a fork or a DONTNEED in progress: its event first, then again */
		/* other errors were recorded; the pages left fault in on demand */
		budget -= to - from;
		s->pf_page = to - w->page;
		if (s->pf_page >= w->npages) {
			s->pf_i++;
			s->pf_page = 0;
		}
	}
	return s->pf_i < s->pf_nr;
}

static void *server_main(void *arg)
{
	struct em_snap_lazy *s = arg;
	struct pollfd *pfd = NULL;
	uint32_t pfd_cap = 0;
	bool prefetching = s->pf_nr > 0;
	uint64_t last_probe = now_ns();

	for (;;) {
		if (s->nr_procs + 1 > pfd_cap) {
			struct pollfd *n = realloc(pfd, (s->nr_procs + 1) * sizeof(*n));

			if (!n) {
				struct em_err e = { 0 };

				em_err_set(&e, ENOMEM, "lazy restore: poll set");
				record_error(s, &e);
				break;
			}
			pfd = n;
			pfd_cap = s->nr_procs + 1;
		}
		uint32_t np = s->nr_procs;
		pfd[0] = (struct pollfd){ .fd = s->stop_fd, .events = POLLIN };
		for (uint32_t i = 0; i < np; i++)
			pfd[i + 1] = (struct pollfd){ .fd = s->procs[i]->uffd, .events = POLLIN };
		int n = poll(pfd, np + 1, prefetching ? 0 : PROBE_MS);
		if (n < 0 && errno != EINTR) {
			struct em_err e = { 0 };

			em_err_set(&e, errno, "lazy restore: poll");
			record_error(s, &e);
			break;
		}
		if (n > 0 && pfd[0].revents)
			break;
		for (uint32_t i = 0; n > 0 && i < np; i++) {
			if (pfd[i + 1].revents & POLLIN)
				drain_msgs(s, s->procs[i]);
			else if (pfd[i + 1].revents & (POLLERR | POLLHUP | POLLNVAL))
				s->procs[i]->gone = true;
		}
		if (prefetching) {
			prefetching = prefetch_step(s);
			if (!prefetching) {
				pthread_mutex_lock(&s->lock);
				s->st.prefetch_done = true;
				s->st.prefetch_ns = now_ns() - s->t_start;
				pthread_mutex_unlock(&s->lock);
			}
		}
		if (now_ns() - last_probe >= PROBE_MS * 1000000ull) {
			for (uint32_t i = 0; i < s->nr_procs; i++)
				if (!s->procs[i]->gone && !probe_alive(s, s->procs[i]))
					s->procs[i]->gone = true;
			last_probe = now_ns();
		}
		reap(s);
	}
	free(pfd);
	return NULL;
}

/* The features of a userfaultfd, from its fdinfo ("API:\taa:<features>:<ioctls>"). */
static int uffd_features(int uffd, uint64_t *features, struct em_err *err)
{
	char path[64], buf[512];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", uffd);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return em_err_set(err, errno, "lazy restore: open %s", path);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return em_err_set(err, errno, "lazy restore: read %s", path);
	buf[n] = '\0';
	const char *api = strstr(buf, "API:\t");
	unsigned long long a, f;
	if (!api || sscanf(api + 5, "%llx:%llx:", &a, &f) != 2)
		return em_err_msg(err, EBADF, "lazy restore: fd %d is not an initialized userfaultfd "
				  "(%s has no API line)", uffd, path);
	*features = f;
	return 0;
}

static void lazy_free(struct em_snap_lazy *s)
{
	for (uint32_t i = 0; i < s->nr_procs; i++)
		proc_free(s->procs[i]);
	free(s->procs);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->buf)
		munmap(s->buf, (size_t)s->buf_pages * PAGE);
	free(s->ws);
	free(s->rec);
	free(s->pf);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int em_snap_lazy_start(struct em_snap_image *img, int uffd, const struct em_snap_lazy_opts *o,
		       struct em_snap_lazy **out, struct em_err *err)
{
	struct em_snap_lazy *s = calloc(1, sizeof(*s));
	int ret;

	*out = NULL;
	if (!s) {
		close(uffd);
		return em_err_set(err, ENOMEM, "lazy restore: server");
	}
	s->t_start = now_ns();
	s->img = img;
	s->stop_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	if (o)
		s->o = *o;
	struct proc *root = NULL;
	if (!s->o.batch_pages)
		s->o.batch_pages = EM_SNAP_LAZY_BATCH_DEFAULT;
	if (!s->o.prefetch_pages)
		s->o.prefetch_pages = EM_SNAP_LAZY_PREFETCH_DEFAULT;
	if (s->o.batch_pages > 512 || (s->o.batch_pages & (s->o.batch_pages - 1))) {
		ret = em_err_msg(err, EINVAL, "lazy restore: batch of %u pages is not a power of two "
				 "up to 512", s->o.batch_pages);
		goto fail;
	}
	if (s->o.prefetch_pages > 4096) {
		ret = em_err_msg(err, EINVAL, "lazy restore: prefetch copies of %u pages, more than "
				 "4096", s->o.prefetch_pages);
		goto fail;
	}
	ret = uffd_features(uffd, &s->features, err);
	if (ret < 0)
		goto fail;
	if ((s->features & EM_SNAP_UFFD_REQUIRED) != EM_SNAP_UFFD_REQUIRED) {
		ret = em_err_msg(err, EINVAL, "lazy restore: userfaultfd %d has features %#" PRIx64
				 ", without EVENT_FORK, REMAP, REMOVE and UNMAP (em_snap_uffd_open "
				 "asks for them)", uffd, s->features);
		goto fail;
	}
	if (s->o.verify && !(s->features & UFFD_FEATURE_POISON)) {
		ret = em_err_msg(err, EOPNOTSUPP, "lazy restore: verify needs UFFD_FEATURE_POISON on "
				 "the userfaultfd (a page that fails its checksum could not be "
				 "refused otherwise: its process would wait for it forever)");
		goto fail;
	}
	for (uint32_t i = 0; i < em_snap_region_count(img); i++) {
		const struct em_snap_region *r = em_snap_region(img, i);
		s->total_pages = r->page_first + region_pages(r);
	}
	s->bitmap_words = s->total_pages / 64 + 1;
	/* the liveness probe's address: the first page from 64 KiB (the usual mmap_min_addr) that
	 * no region covers; regions are sorted */
	s->probe_addr = 0x10000;
	for (uint32_t i = 0; i < em_snap_region_count(img); i++) {
		const struct em_snap_region *r = em_snap_region(img, i);
		if (s->probe_addr >= r->start && s->probe_addr < r->end)
			s->probe_addr = r->end;
	}
	if (s->o.ws != EM_SNAP_WS_OFF) {
		if (s->o.ws_path)
			snprintf(s->ws_path, sizeof(s->ws_path), "%s", s->o.ws_path);
		else
			snprintf(s->ws_path, sizeof(s->ws_path), "%s.ws",
				 em_snap_path(img));
	}
	if (s->o.ws == EM_SNAP_WS_PREFETCH || s->o.ws == EM_SNAP_WS_AUTO) {
		struct em_err e = { 0 };

		ret = em_snap_ws_load(img, s->ws_path, &s->pf, &s->pf_nr, &e);
		if (ret < 0 && s->o.ws == EM_SNAP_WS_PREFETCH) {
			*err = e;
			goto fail;
		}
		for (uint32_t i = 0; i < s->pf_nr; i++)
			s->st.ws_pages += s->pf[i].npages;
		/* AUTO: none, or one that does not fit this image (recorded for an earlier
		 * image at this path): record a fresh one */
		s->recording = ret < 0;
	}
	if (s->o.ws == EM_SNAP_WS_RECORD)
		s->recording = true;
	if (s->recording && !(s->ws = calloc(s->bitmap_words, sizeof(uint64_t)))) {
		ret = em_err_set(err, ENOMEM, "lazy restore: working-set bitmap");
		goto fail;
	}
	s->buf_pages = s->o.batch_pages > s->o.prefetch_pages ? s->o.batch_pages : s->o.prefetch_pages;
	/* populated now: a fault in the server's own buffer would cost every serve a trap */
	s->buf = mmap(NULL, (size_t)s->buf_pages * PAGE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (s->buf == MAP_FAILED) {
		s->buf = NULL;
		ret = em_err_set(err, errno, "lazy restore: %u-page buffer", s->buf_pages);
		goto fail;
	}
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0) {
		ret = em_err_set(err, errno, "lazy restore: eventfd");
		goto fail;
	}
	root = proc_new(s, uffd, NULL);
	if (!root) {
		ret = em_err_set(err, ENOMEM, "lazy restore: process state");
		goto fail;
	}
	uffd = -1;
	root->root = true;
	if (add_proc(s, root) < 0) {
		proc_free(root);
		ret = em_err_set(err, ENOMEM, "lazy restore: process table");
		goto fail;
	}
	/* the thread takes no signals: they belong to the host's main loop */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&s->thread, NULL, server_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		ret = em_err_set(err, ret, "lazy restore: start the server thread");
		goto fail;
	}
	s->thread_ok = true;
	*out = s;
	return 0;
fail:
	if (uffd >= 0)
		close(uffd);
	lazy_free(s);
	return ret;
}

void em_snap_lazy_stats(struct em_snap_lazy *s, struct em_snap_lazy_stats *st)
{
	pthread_mutex_lock(&s->lock);
	*st = s->st;
	if (s->recording) {
		st->ws_pages = 0;
		for (uint32_t i = 0; i < s->rec_nr; i++)
			st->ws_pages += s->rec[i].npages;
	}
	pthread_mutex_unlock(&s->lock);
}

int em_snap_lazy_save_ws(struct em_snap_lazy *s, struct em_err *err)
{
	const struct em_snap_header *ih = em_snap_header(s->img);
	struct em_snap_ws_run *runs = NULL;
	uint32_t nr = 0, pages = 0;
	char tmp[4200];
	int ret = 0;

	if (!s->recording)
		return em_err_msg(err, EINVAL, "working set %s: this lazy restore does not record one",
				  s->ws_path[0] ? s->ws_path : "(none)");
	pthread_mutex_lock(&s->lock);
	nr = s->rec_nr;
	runs = malloc((size_t)nr * sizeof(*runs) + 1);
	if (runs)
		memcpy(runs, s->rec, (size_t)nr * sizeof(*runs));
	pthread_mutex_unlock(&s->lock);
	if (!runs)
		return em_err_set(err, ENOMEM, "working set %s: %u runs", s->ws_path, nr);
	for (uint32_t i = 0; i < nr; i++)
		pages += runs[i].npages;
	struct ws_header h = {
		.version = WS_VERSION, .header_size = sizeof(h),
		.image_header_crc = ih->header_crc, .image_meta_crc = ih->meta_crc,
		.image_file_size = ih->file_size, .nr_runs = nr,
		.run_size = sizeof(struct em_snap_ws_run), .nr_pages = pages,
	};
	memcpy(h.magic, WS_MAGIC, 8);
	h.crc = ws_crc(&h, runs);

	/* beside the image, renamed into place after fsync: a reader sees the old one or the new
	 * one, never half (the image itself is never written again) */
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->ws_path);
	cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(runs);
		return em_err_set(err, errno, "working set %s: create", tmp);
	}
	if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) ||
	    (nr && write(fd, runs, nr * sizeof(*runs)) != (ssize_t)(nr * sizeof(*runs))) ||
	    fsync(fd) < 0) {
		ret = em_err_set(err, errno ? errno : EIO, "working set %s: write %u runs", tmp, nr);
		unlink(tmp);
		free(runs);
		return ret;
	}
	free(runs);
	if (rename(tmp, s->ws_path) < 0) {
		ret = em_err_set(err, errno, "working set: rename %s to %s", tmp, s->ws_path);
		unlink(tmp);
		return ret;
	}
	return 0;
}

int em_snap_lazy_stop(struct em_snap_lazy *s, struct em_err *err)
{
	uint64_t one = 1;

	if (!s)
		return 0;
	if (s->thread_ok) {
		if (write(s->stop_fd, &one, sizeof(one)) != sizeof(one))
			/* the thread cannot be told to stop: leak it and its state rather than
			 * free memory it still uses */
			return em_err_set(err, errno, "lazy restore: signal the server to stop");
		pthread_join(s->thread, NULL);
	}
	int ret = 0;
	if (s->st.failed) {
		*err = s->err;
		ret = -s->err.code;
	}
	lazy_free(s);
	return ret;
}
