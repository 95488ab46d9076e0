/* snapshot/lazy.h — the two non-eager ways to give a restored template its memory (issue 8):
 *
 * mmap   the stored runs of a region are mapped MAP_PRIVATE from the image at their addresses:
 *        pages come from the page cache on first touch, copy on write; zero and absent pages stay
 *        in the region's anonymous mapping. Nothing is read up front, nothing is verified (the
 *        kernel faults the pages in without ember seeing them: FORMAT.md), and every instance
 *        forked from the template shares the cached pages until it writes them.
 * lazy   the restorer registers the regions with a userfaultfd and sends it to the host
 *        (EMBER_SNAPSHOT_UFFD); a host thread serves each fault from the image in batches of
 *        64 KiB, follows the template's forks (UFFD_FEATURE_EVENT_FORK: a forked instance's missing
 *        pages must still come from the image, not read as zero), records the working set of the
 *        first restore in a sidecar file (<image>.ws, FORMAT.md) and prefetches it on later ones.
 *
 * Measured (bench-snapshot "first response": from the start of the restore until a 16 MB working
 * set, 256 chunks of 64 KiB spread over a 256 MB image, has been read; 2-vCPU nested VM, kernel
 * 6.18, image cached, 20 rounds, medians): copy floor 52.9 ms, eager THP+populate 49.3 ms, mmap
 * 13.7 ms, lazy 41.0 ms (256 faults, ~150 us each round trip, ~36 us of it serving), lazy +
 * prefetch 28.7 ms (1 fault; the 16 MB prefetch takes ~19 ms), and a "4K floor" of 24.5 ms: only
 * allocating those 4096 pages with MADV_POPULATE_WRITE and reading them once. That floor is this
 * VM's: the first access to each newly mapped 4 KiB page traps to the hypervisor (~5.5 us a page:
 * reading 16 MB of freshly UFFDIO_COPY'd pages takes ~24 ms, the second read ~2 ms, a THP
 * mapping's first read ~1.4 ms), and UFFDIO_COPY can only install 4 KiB pages in anonymous memory.
 * So the 10 ms for lazy is out of reach here for any restore that maps the working set
 * with 4 KiB anonymous pages; lazy + prefetch comes within 1.2x of that floor.
 * Choosing per function: mmap when the working set is a small part of a large image on a node that
 * keeps the image cached (fastest first response; instances forked from the template share the
 * cached pages until they write; no per-page checksums, the image must never change); eager THP
 * (fill.h) when most of the image is touched anyway (every page in place at 1x the copy floor, no
 * fault later); lazy + prefetch when pages must be checked before use (verify) or must be
 * anonymous memory from the start, and for the first restore of a function, which records the
 * working set the next ones prefetch.
 *
 * The restorer side (em_snap_map_private, em_snap_uffd_open, em_snap_uffd_register; lazy.c) is
 * plain libc with no allocation, for the static restorer; the host side (em_snap_lazy_*,
 * em_snap_ws_load; lazy_server.c) owns a thread.
 *
 * Why the sandbox needs the host for lazy mode: vm.unprivileged_userfaultfd is 0 and the sandbox
 * has no CAP_SYS_PTRACE in the init user namespace, so userfaultfd(2) would only give it a
 * UFFD_USER_MODE_ONLY one, on which a kernel-side access (read(2) into a lazy page, a syscall's
 * copy_to_user) fails with EFAULT instead of waiting for the page. The host passes the restorer an
 * open fd of /dev/userfaultfd (root-only) and the restorer asks it for a full one
 * (USERFAULTFD_IOC_NEW), which the open file's credentials allow. */
#ifndef EMBER_SNAPSHOT_LAZY_H
#define EMBER_SNAPSHOT_LAZY_H

#include <stdbool.h>
#include <stdint.h>

struct em_err;
struct em_snap_image;

/* --- restorer side --------------------------------------------------------------------------- */

/* mmap mode: map the stored runs of region `region` of img MAP_PRIVATE | MAP_FIXED from image_fd
 * (an fd of the image file, any access mode that allows reading) at their addresses, with prot.
 * The region's own mapping (anonymous, or its private file mapping) must already exist: its zero
 * and absent pages stay as they are. Each run is one mapping (one VMA): a region whose stored
 * pages alternate with zero pages costs one VMA per run (vm.max_map_count is 65530). *nr_maps
 * (may be NULL) gets the number of mmap calls. Errors name the region, the run and the step. */
int em_snap_map_private(const struct em_snap_image *img, uint32_t region, int image_fd,
			uint32_t prot, uint32_t *nr_maps, struct em_err *err);

/* The userfaultfd features a lazy restore asks for. Required: a restore without them is wrong,
 * not slower:
 *   EVENT_FORK    a fork's child gets its own userfaultfd for the registered ranges; without it
 *                 the kernel drops the registration in the child and its missing pages read zero;
 *   EVENT_REMOVE  madvise(MADV_DONTNEED/REMOVE) of a registered range (malloc trimming): pages
 *                 dropped there must read zero afterwards, not the image's bytes again;
 *   EVENT_UNMAP   munmap of a registered range: the server forgets those pages for good;
 *   EVENT_REMAP   mremap moves missing pages: the server translates their new addresses.
 * Optional, asked for whenever the kernel has it: POISON (Linux 6.6) lets the server answer a page
 * that fails its checksum, or whose read fails, with a poisoned entry, so the faulting access gets
 * SIGBUS (a syscall EFAULT) instead of waiting forever or reading wrong bytes. Without it a failed
 * read leaves that page's faulting thread waiting until the server stops. */
#define EM_SNAP_UFFD_REQUIRED ((uint64_t)((1u << 1) | (1u << 2) | (1u << 3) | (1u << 6)))
#define EM_SNAP_UFFD_POISON ((uint64_t)(1u << 14)) /* UFFD_FEATURE_POISON */

/* Create a userfaultfd through dev_fd (an open fd of /dev/userfaultfd, from the host) with
 * USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK (the host polls it; the flags are the file's, so
 * they hold in the host too and in every fork's userfaultfd), and handshake UFFDIO_API with
 * EM_SNAP_UFFD_REQUIRED | extra (extra: e.g. EM_SNAP_UFFD_POISON; an optional feature the kernel
 * lacks is dropped, a required one is an error; POISON is always asked for when available).
 * *features (may be NULL) gets what the kernel granted. Returns the fd (>= 0) or -errno. */
int em_snap_uffd_open(int dev_fd, uint64_t extra, uint64_t *features, struct em_err *err);

/* The same in the two halves a sandboxed restore needs: UFFDIO_API with EVENT_FORK takes
 * CAP_SYS_PTRACE in the initial user namespace (the kernel's rule: a fork event hands the server
 * the child's memory), which a sandbox never has. So the restorer only creates the userfaultfd
 * (em_snap_uffd_new: the file's credentials allow a full one) and sends it to the host, which does
 * the handshake (em_snap_uffd_api; dev_fd: the host's own /dev/userfaultfd, for the probe) and
 * registers the restorer's regions (em_snap_uffd_register_anon: registration acts on the
 * userfaultfd's memory, whoever asks) before it lets the restorer go on. */
int em_snap_uffd_new(int dev_fd, struct em_err *err);
int em_snap_uffd_api(int uffd, int dev_fd, uint64_t extra, uint64_t *features,
		     struct em_err *err);

/* Register img's regions with uffd for a lazy restore, in UFFDIO_REGISTER_MODE_MISSING. The
 * regions must be mapped at their addresses already (as for an eager restore), untouched:
 *  - anonymous private regions with stored pages are registered whole (one VMA each: zero and
 *    absent pages fault to the server too, which answers them with the zero page in the same
 *    64 KiB batch as their stored neighbours);
 *  - anonymous regions without stored pages are left alone: they read zero as they are;
 *  - file-backed private regions with stored pages (a binary's .data, a library's relro) are
 *    filled here, eagerly, with pread: MISSING mode is refused on regular-file mappings (it is
 *    only for anonymous, shmem and hugetlbfs memory), and such regions are small. A region not
 *    writable is made writable for the fill and set back to its prot.
 * The restorer then sends uffd to the host and may close its own copy: the host's copy keeps the
 * registration alive. From here on, any access to a registered page (the restorer's own, a
 * syscall's buffer) waits until the host serves it: keep the restorer's buffers on its scratch
 * stack, send the fd first, then resume the template without waiting for the host (its first
 * faults queue until the server starts: tests/snapshot/test_lazy.c checks that).
 * *nr_registered, *nr_filled (may be NULL) get the counts. */
int em_snap_uffd_register(int uffd, const struct em_snap_image *img, uint32_t *nr_registered,
			  uint32_t *nr_filled, struct em_err *err);
/* Its two halves: the file-backed fills (in the restored process itself) and the registration of
 * the anonymous regions (any process holding uffd: the host, for a sandboxed restore). */
int em_snap_uffd_fill_files(const struct em_snap_image *img, uint32_t *nr_filled,
			    struct em_err *err);
int em_snap_uffd_register_anon(int uffd, const struct em_snap_image *img,
			       uint32_t *nr_registered, struct em_err *err);

/* --- host side: the fault server ------------------------------------------------------------- */

struct em_snap_lazy;

enum em_snap_ws_mode {
	EM_SNAP_WS_OFF = 0,     /* neither record nor prefetch */
	EM_SNAP_WS_AUTO,        /* prefetch the sidecar if it is there and valid, else record */
	EM_SNAP_WS_RECORD,      /* record (em_snap_lazy_save_ws writes it) */
	EM_SNAP_WS_PREFETCH,    /* prefetch the sidecar; a missing or invalid one is an error */
};

#define EM_SNAP_LAZY_BATCH_DEFAULT 16    /* pages: 64 KiB */
#define EM_SNAP_LAZY_PREFETCH_DEFAULT 256 /* pages: 1 MiB per UFFDIO_COPY when prefetching */

/* Zeroed options are the defaults. */
struct em_snap_lazy_opts {
	uint32_t batch_pages;   /* pages served per fault, a power of two 1..512; 0: 16 */
	uint32_t prefetch_pages; /* pages per prefetch copy, 1..4096; 0: 256 */
	bool verify;            /* check each stored page's CRC32C before it is copied */
	enum em_snap_ws_mode ws;
	const char *ws_path;    /* the sidecar; NULL: "<image path>.ws" */
};

struct em_snap_lazy_stats {
	uint64_t faults;        /* page-fault messages served */
	uint64_t pages_copied;  /* UFFDIO_COPY'd in answer to faults */
	uint64_t pages_zeroed;  /* UFFDIO_ZEROPAGE'd in answer to faults (zero and absent pages) */
	uint64_t pages_prefetched; /* installed by the prefetch (copied or zeroed) */
	uint64_t pages_existing; /* found present already (EEXIST: copied page by page around them) */
	uint64_t pages_poisoned; /* failed their checksum (verify) and were poisoned */
	uint64_t forks;         /* children's userfaultfds adopted (EVENT_FORK) */
	uint64_t exits;         /* userfaultfds closed because their process is gone */
	uint64_t removes;       /* REMOVE, UNMAP and REMAP events */
	uint64_t fault_ns;      /* time spent serving faults, message read to wake */
	uint64_t prefetch_ns;   /* from the server's start to the end of its prefetch */
	uint32_t processes;     /* userfaultfds served now */
	uint32_t ws_pages;      /* pages in the working set loaded (prefetch) or recorded so far */
	bool prefetch_done;
	bool failed;            /* the server recorded an error (em_snap_lazy_stop returns it) */
};

/* Start serving uffd (the restored template's, from em_snap_uffd_open; ownership passes to the
 * server, which closes it on failure too) from img on a new thread. img must stay open until
 * em_snap_lazy_stop. With a working set to prefetch, the prefetch starts right away on the server
 * thread, in copies of prefetch_pages, with faults served between them.
 *
 * Faults: the page is served with its aligned batch_pages window, clipped to its region; stored
 * runs are read from the image (checked when verify) and UFFDIO_COPY'd, zero and absent runs
 * UFFDIO_ZEROPAGE'd; pages present already (EEXIST) are skipped page by page; pages the process
 * dropped (MADV_DONTNEED, munmap) are never filled from the image again. A page that fails its
 * checksum is poisoned (the process gets SIGBUS on it, a syscall EFAULT) and the error kept for
 * em_snap_lazy_stop; without POISON in the uffd's features, verify is refused at start. A fork's
 * userfaultfd is served the same way; a userfaultfd whose process is gone (checked every 200 ms
 * when idle, and on ESRCH) is closed. */
int em_snap_lazy_start(struct em_snap_image *img, int uffd, const struct em_snap_lazy_opts *o,
		       struct em_snap_lazy **out, struct em_err *err);

/* A consistent copy of the counters. */
void em_snap_lazy_stats(struct em_snap_lazy *s, struct em_snap_lazy_stats *st);

/* Write the working set recorded so far (the pages installed in answer to faults, batches
 * included) to the sidecar, atomically (temporary file, fsync, rename). The host calls it once the
 * restored template has answered its first request. -EINVAL when the server does not record. */
int em_snap_lazy_save_ws(struct em_snap_lazy *s, struct em_err *err);

/* Stop the thread, close every userfaultfd, free. Call it once the restored process and its
 * forks are gone (or all their pages served): closing a userfaultfd unregisters its ranges, and
 * a page still missing then reads zero. Returns the first error the server met (a read that
 * failed, a checksum mismatch, an ioctl refused), 0 if none. NULL is fine. */
int em_snap_lazy_stop(struct em_snap_lazy *s, struct em_err *err);

/* --- the working-set sidecar (FORMAT.md, "Working set") ---------------------------------------- */

/* A run of pages of one region in the working set; a sidecar's runs are in the order the first
 * restore installed them (the order its prefetch replays), never overlapping. */
struct em_snap_ws_run {
	uint32_t region, page, npages, reserved;
};

/* Read and check path against img (magic, version, CRC, the image it was recorded for, runs in
 * range): *runs (malloc'd, the caller frees) and *nr. -ENOENT when there is none. */
int em_snap_ws_load(const struct em_snap_image *img, const char *path, struct em_snap_ws_run **runs,
		    uint32_t *nr, struct em_err *err);

#endif
