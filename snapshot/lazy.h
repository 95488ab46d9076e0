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
 * The restorer side (em_snap_map_private, em_snap_uffd_open, em_snap_uffd_register) is plain libc
 * with no allocation, for the static restorer; the host side (em_snap_lazy_*) owns a thread.
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
 * Optional: POISON (Linux 6.6) lets the server answer a page that fails its checksum with a
 * poisoned entry, so the faulting access gets SIGBUS (a syscall EFAULT) instead of waiting forever
 * or reading wrong bytes. */
#define EM_SNAP_UFFD_REQUIRED ((uint64_t)((1u << 1) | (1u << 2) | (1u << 3) | (1u << 6)))
#define EM_SNAP_UFFD_POISON ((uint64_t)(1u << 14)) /* UFFD_FEATURE_POISON */

/* Create a userfaultfd through dev_fd (an open fd of /dev/userfaultfd, from the host) with
 * USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK (the host polls it; the flags are the file's, so
 * they hold in the host too and in every fork's userfaultfd), and handshake UFFDIO_API with
 * EM_SNAP_UFFD_REQUIRED | extra (extra: e.g. EM_SNAP_UFFD_POISON; an optional feature the kernel
 * lacks is dropped, a required one is an error). *features (may be NULL) gets what the kernel
 * granted. Returns the fd (>= 0) or -errno. */
int em_snap_uffd_open(int dev_fd, uint64_t extra, uint64_t *features, struct em_err *err);

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
 * registration alive. *nr_registered, *nr_filled (may be NULL) get the counts. */
int em_snap_uffd_register(int uffd, const struct em_snap_image *img, uint32_t *nr_registered,
			  uint32_t *nr_filled, struct em_err *err);

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

/* A run of pages of one region in the working set. */
struct em_snap_ws_run {
	uint32_t region, page, npages, reserved;
};

/* Read and check path against img (magic, version, CRC, the image it was recorded for, runs in
 * range): *runs (malloc'd, the caller frees) and *nr. -ENOENT when there is none. */
int em_snap_ws_load(const struct em_snap_image *img, const char *path, struct em_snap_ws_run **runs,
		    uint32_t *nr, struct em_err *err);

#endif
