/* snapshot/lazy_util.h — private to snapshot/lazy.c and snapshot/lazy_server.c: the userfaultfd
 * definitions Debian 12's headers lack, and the small helpers both halves use. */
#ifndef EMBER_SNAPSHOT_LAZY_UTIL_H
#define EMBER_SNAPSHOT_LAZY_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snapshot/image.h"
#include "snapshot/lazy.h"

#define PAGE EM_SNAP_PAGE_SIZE

/* Linux 6.6; Debian 12's headers predate them */
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFDIO_POISON
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, 0x08, struct uffdio_poison)
#endif
_Static_assert(EM_SNAP_UFFD_REQUIRED == (UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
					 UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP),
	       "lazy.h's feature bits");
_Static_assert(EM_SNAP_UFFD_POISON == UFFD_FEATURE_POISON, "lazy.h's poison bit");

static inline const char *region_desc(const struct em_snap_image *img, uint32_t i, char *buf,
				      size_t cap)
{
	const struct em_snap_region *r = em_snap_region(img, i);
	const char *name = em_snap_string(img, r->name);

	if (!*name && r->file != EM_SNAP_NONE)
		name = em_snap_string(img, em_snap_file(img, r->file)->path);
	snprintf(buf, cap, "region %u (%#" PRIx64 "-%#" PRIx64 " %c%c%c%s%s)", i, r->start, r->end,
		 r->prot & PROT_READ ? 'r' : '-', r->prot & PROT_WRITE ? 'w' : '-',
		 r->prot & PROT_EXEC ? 'x' : '-', *name ? " " : "", name);
	return buf;
}

static inline uint32_t region_pages(const struct em_snap_region *r)
{
	return (uint32_t)((r->end - r->start) / PAGE);
}

/* one implementation for the whole area: the reader's */
static inline int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	return em_snap_pread_full(fd, buf, len, off);
}
#endif
