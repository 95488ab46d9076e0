/* snapshot/fill.c — the eager fill engine: a region's stored pages read with io_uring straight
 * into its memory (fill.h says why and when it pays off). One ring (and one O_DIRECT fd when
 * asked) per call of em_snap_fill_region or em_snap_fill_all; a fixed table of queue_depth
 * chunks, each the read of one piece of a stored run, passed through user_data. */
#include "snapshot/fill.h"
#include "snapshot/image.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE EM_SNAP_PAGE_SIZE

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* One read in flight: pages page .. page + npages - 1 of the region, done bytes of len read. */
struct chunk {
	uint32_t page, npages;
	char *dst;
	uint64_t off;
	size_t len, done;
	struct chunk *next_free;
};

struct filler {
	struct em_snap_image *img;
	struct em_snap_fill_opts o;
	struct io_uring ring;
	bool ring_ok;
	int fd;                 /* the image's fd, or our O_DIRECT one */
	int direct_set_fl;      /* >= 0: O_DIRECT was set on the image's fd; its flags before */
	int direct_fd;
	struct chunk *chunks;
	struct chunk *free;
	unsigned inflight;
	struct em_snap_fill_stats *st;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *region_desc(const struct em_snap_image *img, uint32_t i, char *buf, size_t cap)
{
	const struct em_snap_region *r = em_snap_region(img, i);
	const char *name = em_snap_string(img, r->name);

	if (!*name && r->file != EM_SNAP_NONE)
		name = em_snap_string(img, em_snap_file(img, r->file)->path);
	snprintf(buf, cap, "region %u (%#" PRIx64 "-%#" PRIx64 " %c%c%c%s%s)", i, r->start, r->end,
		 r->prot & 1 ? 'r' : '-', r->prot & 2 ? 'w' : '-', r->prot & 4 ? 'x' : '-',
		 *name ? " " : "", name);
	return buf;
}

static int filler_init(struct filler *f, struct em_snap_image *img,
		       const struct em_snap_fill_opts *o, struct em_snap_fill_stats *st,
		       struct em_err *err)
{
	int ret;

	memset(f, 0, sizeof(*f));
	f->img = img;
	f->direct_fd = -1;
	f->direct_set_fl = -1;
	f->st = st;
	if (o)
		f->o = *o;
	if (!f->o.queue_depth)
		f->o.queue_depth = EM_SNAP_FILL_QD_DEFAULT;
	if (!f->o.max_read)
		f->o.max_read = EM_SNAP_FILL_READ_DEFAULT;
	if (f->o.queue_depth > EM_SNAP_FILL_QD_MAX)
		return em_err_msg(err, EINVAL, "fill options: queue depth %u above %u",
				  f->o.queue_depth, EM_SNAP_FILL_QD_MAX);
	if (f->o.max_read % PAGE || f->o.max_read > (1u << 30))
		return em_err_msg(err, EINVAL, "fill options: read size %zu is not a multiple of %u "
				  "up to 1 GiB", f->o.max_read, PAGE);
	f->fd = em_snap_fd(img);
	if (f->o.direct) {
		/* The reader's fd is buffered (its metadata reads want the cache): reopen the same
		 * file, not the path, which may have been replaced since. Stored pages are
		 * 4096-aligned in the image and in length, which covers any logical block size up
		 * to 4096. */
		char link[64];

		snprintf(link, sizeof(link), "/proc/self/fd/%d", f->fd);
		f->direct_fd = open(link, O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (f->direct_fd < 0 && errno == EACCES) {
			/* a restorer's sandbox may not reopen the host's image: O_DIRECT on the
			 * reader's own fd for the fill (the metadata is read already), off after */
			int fl = fcntl(f->fd, F_GETFL);

			if (fl >= 0 && fcntl(f->fd, F_SETFL, fl | O_DIRECT) == 0) {
				f->direct_set_fl = fl;
				goto chunks;
			}
		}
		if (f->direct_fd < 0)
			return em_err_set(err, errno, "snapshot image %s: open with O_DIRECT",
					  em_snap_path(img));
		f->fd = f->direct_fd;
	}
chunks:
	f->chunks = calloc(f->o.queue_depth, sizeof(*f->chunks));
	if (!f->chunks)
		return em_err_set(err, ENOMEM, "fill: %u read slots", f->o.queue_depth);
	for (unsigned i = 0; i < f->o.queue_depth; i++) {
		f->chunks[i].next_free = f->free;
		f->free = &f->chunks[i];
	}
	ret = io_uring_queue_init(f->o.queue_depth, &f->ring, 0);
	if (ret < 0)
		return em_err_set(err, -ret, "fill: io_uring with %u entries", f->o.queue_depth);
	f->ring_ok = true;
	return 0;
}

static void filler_fini(struct filler *f)
{
	if (f->ring_ok)
		io_uring_queue_exit(&f->ring);
	if (f->direct_fd >= 0)
		close(f->direct_fd);
	if (f->direct_set_fl >= 0)
		fcntl(f->fd, F_SETFL, f->direct_set_fl);
	free(f->chunks);
}

static int queue_chunk(struct filler *f, struct chunk *c)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);

	if (!sqe) {
		/* the ring has queue_depth entries and at most queue_depth chunks exist: only
		 * unsubmitted SQEs can fill it; submit them and retry */
		int ret = io_uring_submit(&f->ring);
		if (ret < 0)
			return ret;
		sqe = io_uring_get_sqe(&f->ring);
		if (!sqe)
			return -EBUSY;
	}
	io_uring_prep_read(sqe, f->fd, c->dst + c->done, (unsigned)(c->len - c->done),
			   c->off + c->done);
	io_uring_sqe_set_data(sqe, c);
	f->inflight++;
	f->st->reads++;
	return 0;
}

/* Wait for every read still in flight, results ignored: after an error, no read may still be
 * writing into the destination when the caller gets control back. */
static void drain(struct filler *f)
{
	io_uring_submit(&f->ring);
	while (f->inflight) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_wait_cqe(&f->ring, &cqe);

		if (ret == -EINTR)
			continue;
		if (ret < 0)
			break; /* io_uring_queue_exit cancels and waits for the rest */
		io_uring_cqe_seen(&f->ring, cqe);
		f->inflight--;
	}
}

/* One completion: a finished chunk is verified and freed, a short one re-queued. */
static int complete(struct filler *f, uint32_t region, struct io_uring_cqe *cqe, struct em_err *err)
{
	struct chunk *c = io_uring_cqe_get_data(cqe);
	int res = cqe->res;
	char d[160];

	io_uring_cqe_seen(&f->ring, cqe);
	f->inflight--;
	if (res < 0)
		return em_err_set(err, -res, "snapshot image %s: %s: read of %zu bytes at image offset "
				  "%#" PRIx64 "%s", em_snap_path(f->img),
				  region_desc(f->img, region, d, sizeof(d)), c->len - c->done,
				  c->off + c->done, f->o.direct ? " (O_DIRECT)" : "");
	if (res == 0)
		return em_err_msg(err, ENODATA, "snapshot image %s: %s: read of %zu bytes at image "
				  "offset %#" PRIx64 ": the file ends inside its page data (truncated "
				  "after open?)", em_snap_path(f->img),
				  region_desc(f->img, region, d, sizeof(d)), c->len - c->done,
				  c->off + c->done);
	f->st->bytes_read += (uint64_t)res;
	c->done += (size_t)res;
	if (c->done < c->len) {
		f->st->short_reads++;
		return queue_chunk(f, c) < 0 ? em_err_msg(err, EBUSY, "fill: no SQE to re-queue a "
							  "short read") : 0;
	}
	if (f->o.verify) {
		int ret = em_snap_check_pages(f->img, region, c->page, c->npages, c->dst, err);
		if (ret < 0)
			return ret;
		f->st->pages_verified += c->npages;
	}
	c->next_free = f->free;
	f->free = c;
	return 0;
}

/* MADV_HUGEPAGE over the region, then MADV_POPULATE_WRITE over each span of present pages. */
static int prepare(struct filler *f, uint32_t region, char *dst, struct em_err *err)
{
	const struct em_snap_region *r = em_snap_region(f->img, region);
	char d[160];

	if (f->o.thp && madvise(dst, r->end - r->start, MADV_HUGEPAGE) < 0)
		return em_err_set(err, errno, "%s: MADV_HUGEPAGE at %p",
				  region_desc(f->img, region, d, sizeof(d)), (void *)dst);
	if (!f->o.populate)
		return 0;
	struct em_snap_run run;
	uint32_t pos = 0;
	uint64_t span_start = 0, span_end = 0; /* offsets in the region */
	for (;;) {
		int more = em_snap_next_run(f->img, region, &pos, 0, &run);
		uint64_t off = more ? run.vaddr - r->start : 0;

		if (more && run.state != EM_SNAP_ABSENT && span_end == off && span_end > span_start) {
			span_end = off + run.len; /* extend the span */
			continue;
		}
		if (span_end > span_start &&
		    madvise(dst + span_start, span_end - span_start, MADV_POPULATE_WRITE) < 0)
			return em_err_set(err, errno, "%s: MADV_POPULATE_WRITE of %" PRIu64 " bytes at %p",
					  region_desc(f->img, region, d, sizeof(d)),
					  span_end - span_start, (void *)(dst + span_start));
		if (!more)
			return 0;
		span_start = span_end = off;
		if (run.state != EM_SNAP_ABSENT)
			span_end = off + run.len;
	}
}

static int fill_one(struct filler *f, uint32_t region, void *dst, struct em_err *err)
{
	const struct em_snap_region *r = em_snap_region(f->img, region);
	uint32_t max_pages = (uint32_t)(f->o.max_read / PAGE), pos = 0;
	struct em_snap_run run;
	bool more = true;
	char d[160];
	int ret;

	if (!r)
		return em_err_msg(err, EINVAL, "fill: no region %u (the image has %u)", region,
				  em_snap_region_count(f->img));
	if (f->o.direct && (uintptr_t)dst % PAGE)
		return em_err_msg(err, EINVAL, "%s: O_DIRECT fill needs a 4096-aligned destination, "
				  "not %p", region_desc(f->img, region, d, sizeof(d)), dst);
	ret = prepare(f, region, dst, err);
	if (ret < 0)
		return ret;
	while (more || f->inflight) {
		/* queue reads while a slot is free, then submit them all and wait for one */
		while (more && f->free) {
			more = em_snap_next_run(f->img, region, &pos, max_pages, &run);
			if (!more || run.state != EM_SNAP_STORED)
				continue;
			struct chunk *c = f->free;
			f->free = c->next_free;
			*c = (struct chunk){ .page = run.page, .npages = (uint32_t)(run.len / PAGE),
					     .dst = (char *)dst + (run.vaddr - r->start),
					     .off = run.file_off, .len = run.len };
			if (queue_chunk(f, c) < 0) {
				drain(f);
				return em_err_msg(err, EBUSY, "fill: no SQE for a read");
			}
		}
		if (!f->inflight)
			break;
		ret = io_uring_submit_and_wait(&f->ring, 1);
		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			em_err_set(err, -ret, "%s: submit page reads", region_desc(f->img, region, d,
										 sizeof(d)));
			drain(f);
			return ret;
		}
		struct io_uring_cqe *cqe;
		while (f->inflight && io_uring_peek_cqe(&f->ring, &cqe) == 0) {
			ret = complete(f, region, cqe, err);
			if (ret < 0) {
				drain(f);
				return ret;
			}
		}
	}
	return 0;
}

struct one_region {
	uint32_t region;
	void *dst;
};

static void *one_dst(void *arg, uint32_t i, const struct em_snap_region *r)
{
	const struct one_region *o = arg;

	(void)r;
	return i == o->region ? o->dst : NULL;
}

int em_snap_fill_region(struct em_snap_image *img, uint32_t region, void *dst,
			const struct em_snap_fill_opts *o, struct em_snap_fill_stats *st,
			struct em_err *err)
{
	struct one_region one = { region, dst };

	if (region >= em_snap_region_count(img))
		return em_err_msg(err, EINVAL, "fill: no region %u (the image has %u)", region,
				  em_snap_region_count(img));
	return em_snap_fill_all(img, one_dst, &one, o, st, err);
}

int em_snap_fill_all(struct em_snap_image *img,
		     void *(*dst)(void *arg, uint32_t i, const struct em_snap_region *r), void *arg,
		     const struct em_snap_fill_opts *o, struct em_snap_fill_stats *st,
		     struct em_err *err)
{
	struct em_snap_fill_stats local = { 0 };
	struct filler f;
	uint64_t t0 = now_ns();
	int ret;

	if (!st)
		st = &local;
	ret = filler_init(&f, img, o, st, err);
	for (uint32_t i = 0; ret == 0 && i < em_snap_region_count(img); i++) {
		void *d = dst(arg, i, em_snap_region(img, i));

		if (d)
			ret = fill_one(&f, i, d, err);
	}
	filler_fini(&f);
	st->ns += now_ns() - t0;
	return ret;
}
