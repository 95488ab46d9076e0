/* snapshot/fill.h — the eager restore of a snapshot image's page data (issue 8): every stored page
 * of a region is read with io_uring into the region's memory, runs of stored pages (contiguous in
 * the image, FORMAT.md) in reads of up to max_read bytes, queue_depth of them in flight.
 *
 * Why io_uring, and when it pays off (tools/snapbench/bench_snapshot.c measures it):
 * - With the image in the page cache, a read is a memcpy from cached pages done inline at submit;
 *   queue depth changes nothing, and io_uring is merely a batched pread. The floor is one plain
 *   read() of the whole data into populated memory.
 * - With the image not cached (O_DIRECT, or a cold cache after boot or eviction), reads wait on the
 *   device: keeping 16-64 of them in flight is what fills the device's queue, and io_uring does
 *   that from one thread without a pool.
 * - A destination of 4 KiB pages is page-fault bound, not read bound: each first touch costs a
 *   fault (~4 ms per MB in a nested VM), whoever touches it (the copy in the kernel, or GUP
 *   pinning pages for O_DIRECT). The fast path is THP (MADV_HUGEPAGE, needs a 2 MiB aligned
 *   destination) and MADV_POPULATE_WRITE before the reads: one fault per 2 MiB, done in one call.
 * Measured (bench-snapshot, 256 MB, 2-vCPU nested VM, medians): the floor (populated THP memory,
 * one pread from the cache) 33.5 ms; THP + populate from the cache 34-39 ms at any depth (1.02x
 * the floor at qd16), 63 ms with verify; a 4K destination from the cache 886 ms (26x, faults);
 * O_DIRECT with THP + populate 81 ms at qd1, 49 ms at qd16, 48 ms at qd64; O_DIRECT into 4K pages
 * 115 ms (pinning pages faults them in without a trap each). Details: bench_snapshot.c.
 *
 * Zero and absent pages are not touched: a restore fills a fresh anonymous mapping, which reads
 * zero. populate prefaults the stored and zero pages only (both are present in the template);
 * absent pages stay absent, to fault in on demand as they did in the template. */
#ifndef EMBER_SNAPSHOT_FILL_H
#define EMBER_SNAPSHOT_FILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct em_err;
struct em_snap_image;
struct em_snap_region;

#define EM_SNAP_FILL_QD_DEFAULT 32
#define EM_SNAP_FILL_QD_MAX 4096
#define EM_SNAP_FILL_READ_DEFAULT (1u << 20)

/* Zeroed options are the defaults: queue depth 32, reads of 1 MiB, buffered, unverified, no
 * populate, no THP. */
struct em_snap_fill_opts {
	unsigned queue_depth;   /* reads in flight, 1..4096; 0: 32. 16 or more to keep a device busy */
	size_t max_read;        /* bytes per read (one SQE), a multiple of 4096; 0: 1 MiB */
	bool direct;            /* read through an O_DIRECT fd of the image (bypass the page cache);
				 * dst must be 4096-aligned */
	bool verify;            /* check each page's CRC32C once its read completed */
	bool populate;          /* MADV_POPULATE_WRITE the present (stored, zero) pages first */
	bool thp;               /* MADV_HUGEPAGE the destination first (before populate) */
};

/* Added to by each call (zero it first). */
struct em_snap_fill_stats {
	uint64_t bytes_read;
	uint64_t reads;         /* SQEs submitted, resubmitted short reads included */
	uint64_t short_reads;
	uint64_t pages_verified;
	uint64_t ns;            /* wall time of the calls, populate and madvise included */
};

/* Fill region `region` of img at dst (where the region's first byte goes: the region's own address
 * in a restore, any writable mapping of its size otherwise). Errors name the region and the step:
 * "region 2 (0x...-0x... rw- [heap]): read of 1048576 bytes at image offset 0x...: EIO"; a page
 * whose checksum does not match (verify) names the region and page (em_snap_check_pages); an image
 * that ends inside its page data (truncated after open) is -ENODATA. Every read in flight has
 * completed when the call returns, error or not. */
int em_snap_fill_region(struct em_snap_image *img, uint32_t region, void *dst,
			const struct em_snap_fill_opts *o, struct em_snap_fill_stats *st,
			struct em_err *err);

/* Fill every region with one ring (and one O_DIRECT fd): dst(arg, i, r) gives region i's
 * destination, NULL to skip it. Stops at the first error. */
int em_snap_fill_all(struct em_snap_image *img,
		     void *(*dst)(void *arg, uint32_t i, const struct em_snap_region *r), void *arg,
		     const struct em_snap_fill_opts *o, struct em_snap_fill_stats *st,
		     struct em_err *err);

#endif
