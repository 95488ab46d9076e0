/* snapshot/lazy.c — the restorer's half of the mmap and userfaultfd restore modes (lazy.h): private
 * mappings of an image's stored runs, and a userfaultfd made through the host's /dev/userfaultfd
 * and registered over the template's regions. Plain libc, no allocation, no threads: the static
 * restorer links this object alone (the host's fault server is lazy_server.c). */
#include "snapshot/lazy.h"
#include "snapshot/lazy_util.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* --- restorer side --------------------------------------------------------------------------- */

int em_snap_map_private(const struct em_snap_image *img, uint32_t region, int image_fd,
			uint32_t prot, uint32_t *nr_maps, struct em_err *err)
{
	struct em_snap_run run;
	uint32_t pos = 0, n = 0;
	char d[160];

	if (nr_maps)
		*nr_maps = 0;
	if (region >= em_snap_region_count(img))
		return em_err_msg(err, EINVAL, "map the image privately: no region %u (the image has "
				  "%u)", region, em_snap_region_count(img));
	while (em_snap_next_run(img, region, &pos, 0, &run)) {
		if (run.state != EM_SNAP_STORED)
			continue; /* zero and absent pages: the region's own mapping reads zero */
		void *want = (void *)(uintptr_t)run.vaddr;
		void *p = mmap(want, run.len, (int)prot, MAP_PRIVATE | MAP_FIXED, image_fd,
			       (off_t)run.file_off);
		if (p == MAP_FAILED)
			return em_err_set(err, errno, "%s: map pages %u-%u (%#" PRIx64 ", %" PRIu64
					  " bytes) privately from image offset %#" PRIx64,
					  region_desc(img, region, d, sizeof(d)), run.page,
					  run.page + (uint32_t)(run.len / PAGE) - 1, run.vaddr, run.len,
					  run.file_off);
		n++;
	}
	if (nr_maps)
		*nr_maps = n;
	return 0;
}

static int api_handshake(int fd, uint64_t features, uint64_t *got)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return -errno;
	if (got)
		*got = api.features;
	return 0;
}

int em_snap_uffd_new(int dev_fd, struct em_err *err)
{
	int fd = ioctl(dev_fd, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return em_err_set(err, errno, "userfaultfd: USERFAULTFD_IOC_NEW on fd %d "
				  "(/dev/userfaultfd)", dev_fd);
	return fd;
}

int em_snap_uffd_api(int uffd, int dev_fd, uint64_t extra, uint64_t *features,
		     struct em_err *err)
{
	uint64_t avail = 0;
	int ret;

	/* A userfaultfd takes one UFFDIO_API: ask a throwaway one what this kernel offers, so an
	 * optional feature it lacks is dropped instead of failing the real handshake. */
	{
		cleanup_close int probe = ioctl(dev_fd, USERFAULTFD_IOC_NEW, O_CLOEXEC);

		if (probe < 0)
			return em_err_set(err, errno, "userfaultfd: USERFAULTFD_IOC_NEW on fd %d "
					  "(/dev/userfaultfd)", dev_fd);
		ret = api_handshake(probe, 0, &avail);
		if (ret < 0)
			return em_err_set(err, -ret, "userfaultfd: UFFDIO_API");
	}
	if ((avail & EM_SNAP_UFFD_REQUIRED) != EM_SNAP_UFFD_REQUIRED)
		return em_err_msg(err, EOPNOTSUPP, "userfaultfd: the kernel offers features %#" PRIx64
				  ", a lazy restore needs %#" PRIx64 " (EVENT_FORK, REMAP, REMOVE, "
				  "UNMAP)", avail, (uint64_t)EM_SNAP_UFFD_REQUIRED);
	/* POISON whenever the kernel has it: it is how the server refuses a page it cannot read or
	 * check without leaving the faulting thread waiting forever */
	uint64_t want = EM_SNAP_UFFD_REQUIRED | ((extra | EM_SNAP_UFFD_POISON) & avail);
	ret = api_handshake(uffd, want, features);
	if (ret == -EPERM)
		return em_err_msg(err, EPERM, "userfaultfd: UFFDIO_API with features %#" PRIx64 ": "
				  "EPERM (EVENT_FORK needs CAP_SYS_PTRACE in the initial user "
				  "namespace: the handshake is the host's)", want);
	if (ret < 0)
		return em_err_set(err, -ret, "userfaultfd: UFFDIO_API with features %#" PRIx64, want);
	return 0;
}

int em_snap_uffd_open(int dev_fd, uint64_t extra, uint64_t *features, struct em_err *err)
{
	int ret;
	cleanup_close int fd = em_snap_uffd_new(dev_fd, err);

	if (fd < 0)
		return fd;
	ret = em_snap_uffd_api(fd, dev_fd, extra, features, err);
	if (ret < 0)
		return ret;
	return take_fd(&fd);
}

/* A file-backed private region's stored pages, read in place (lazy.h says why not registered). */
static int fill_file_region(const struct em_snap_image *img, uint32_t i, struct em_err *err)
{
	const struct em_snap_region *r = em_snap_region(img, i);
	struct em_snap_run run;
	uint32_t pos = 0;
	char d[160];
	int ret = 0;

	if (!(r->prot & PROT_WRITE) &&
	    mprotect((void *)(uintptr_t)r->start, r->end - r->start, (int)(r->prot | PROT_WRITE)) < 0)
		return em_err_set(err, errno, "%s: make it writable for its fill",
				  region_desc(img, i, d, sizeof(d)));
	while (ret == 0 && em_snap_next_run(img, i, &pos, 0, &run)) {
		if (run.state != EM_SNAP_STORED)
			continue;
		ret = pread_full(em_snap_fd(img), (void *)(uintptr_t)run.vaddr, run.len, run.file_off);
		if (ret < 0)
			em_err_set(err, ret == -ENODATA ? EINVAL : -ret, "%s: read %" PRIu64 " bytes "
				   "at image offset %#" PRIx64 " into %#" PRIx64 "%s",
				   region_desc(img, i, d, sizeof(d)), run.len, run.file_off,
				   run.vaddr, ret == -ENODATA ? ": the image ends inside its page "
				   "data" : "");
	}
	if (!(r->prot & PROT_WRITE) &&
	    mprotect((void *)(uintptr_t)r->start, r->end - r->start, (int)r->prot) < 0 && ret == 0)
		return em_err_set(err, errno, "%s: set its protection back after its fill",
				  region_desc(img, i, d, sizeof(d)));
	return ret;
}

int em_snap_uffd_fill_files(const struct em_snap_image *img, uint32_t *nr_filled,
			    struct em_err *err)
{
	uint32_t nfill = 0;
	int ret;

	for (uint32_t i = 0; i < em_snap_region_count(img); i++) {
		const struct em_snap_region *r = em_snap_region(img, i);

		if (!r->nr_stored || r->flags & EM_SNAP_R_ANON)
			continue;
		ret = fill_file_region(img, i, err);
		if (ret < 0)
			return ret;
		nfill++;
	}
	if (nr_filled)
		*nr_filled = nfill;
	return 0;
}

int em_snap_uffd_register_anon(int uffd, const struct em_snap_image *img,
			       uint32_t *nr_registered, struct em_err *err)
{
	const uint64_t need = 1ull << _UFFDIO_COPY | 1ull << _UFFDIO_ZEROPAGE | 1ull << _UFFDIO_WAKE;
	uint32_t nreg = 0;
	char d[160];

	for (uint32_t i = 0; i < em_snap_region_count(img); i++) {
		const struct em_snap_region *r = em_snap_region(img, i);

		/* all zero or absent: the fresh mapping reads zero already; file-backed: filled */
		if (!r->nr_stored || !(r->flags & EM_SNAP_R_ANON))
			continue;
		struct uffdio_register reg = {
			.range = { .start = r->start, .len = r->end - r->start },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
			return em_err_set(err, errno, "%s: UFFDIO_REGISTER (missing) on userfaultfd %d",
					  region_desc(img, i, d, sizeof(d)), uffd);
		if ((reg.ioctls & need) != need)
			return em_err_msg(err, EOPNOTSUPP, "%s: its userfaultfd registration offers "
					  "ioctls %#llx, without COPY, ZEROPAGE and WAKE",
					  region_desc(img, i, d, sizeof(d)), (unsigned long long)reg.ioctls);
		nreg++;
	}
	if (nr_registered)
		*nr_registered = nreg;
	return 0;
}

int em_snap_uffd_register(int uffd, const struct em_snap_image *img, uint32_t *nr_registered,
			  uint32_t *nr_filled, struct em_err *err)
{
	int ret = em_snap_uffd_fill_files(img, nr_filled, err);

	return ret < 0 ? ret : em_snap_uffd_register_anon(uffd, img, nr_registered, err);
}

