/* snapshot/reader.c — opening an image (FORMAT.md): every check that does not need the page data
 * (magic, version, header checksum, sizes, metadata checksum, metadata consistency, the expected
 * build id and kernel release) runs at open, in that order, and a refusal names the check; page
 * checksums are checked on demand (em_snap_check_pages) or all at once (em_snap_verify_data). */
#include "snapshot/image.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE EM_SNAP_PAGE_SIZE
#define META_MAX (1ull << 30) /* 1 GiB of metadata is a page map of 512 GiB: refuse more */
#define VERIFY_CHUNK 256      /* pages per read in em_snap_verify_data */

struct em_snap_image {
	char *path;
	int fd;
	struct em_snap_header hdr;
	char *meta;
	const struct em_snap_meta *m;
	const struct em_snap_region *regions;
	const struct em_snap_page *pages;
	const struct em_snap_file *files;
	const struct em_snap_fd *fds;
	const struct em_snap_sigaction *sig;
	const char *strings;
};

int em_snap_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static void hex(char *out, size_t cap, const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n && 2 * i + 2 < cap; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	out[2 * i] = '\0';
}

/* "region 2 (0x7f00..-0x7f00.. rw- [heap])" */
static const char *region_desc(const struct em_snap_image *img, uint32_t i, char *buf, size_t cap)
{
	const struct em_snap_region *r = &img->regions[i];
	const char *name = em_snap_string(img, r->name);

	if (!*name && r->file != EM_SNAP_NONE)
		name = em_snap_string(img, img->files[r->file].path);
	snprintf(buf, cap, "region %u (%#" PRIx64 "-%#" PRIx64 " %c%c%c%s%s)", i, r->start, r->end,
		 r->prot & 1 ? 'r' : '-', r->prot & 2 ? 'w' : '-', r->prot & 4 ? 'x' : '-',
		 *name ? " " : "", name);
	return buf;
}

static int check_header(const struct em_snap_header *h, size_t got, uint64_t st_size,
			struct em_err *err)
{
	const size_t magic = sizeof(h->magic);

	if (got < magic && memcmp(h->magic, EM_SNAP_MAGIC, got))
		return em_err_msg(err, ENOEXEC, "not an ember snapshot image (bad magic)");
	if (got >= magic && memcmp(h->magic, EM_SNAP_MAGIC, magic))
		return em_err_msg(err, ENOEXEC, "not an ember snapshot image (bad magic)");
	if (got < magic + sizeof(h->version))
		return em_err_msg(err, EINVAL, "truncated image: %zu bytes, shorter than its header", got);
	/* the version before anything else: another version's header may be laid out differently */
	if (h->version != EM_SNAP_VERSION)
		return em_err_msg(err, EPROTONOSUPPORT, "image version %u, this ember reads %u",
				  h->version, EM_SNAP_VERSION);
	if (got < sizeof(*h))
		return em_err_msg(err, EINVAL, "truncated image: %zu bytes, shorter than its %zu-byte "
				  "header", got, sizeof(*h));
	struct em_snap_header z = *h;
	z.header_crc = 0;
	uint32_t crc = em_snap_crc32c(0, &z, sizeof(z));
	if (crc != h->header_crc)
		return em_err_msg(err, EBADMSG, "header checksum mismatch (stored %08x, computed %08x)",
				  h->header_crc, crc);
	if (h->header_size != sizeof(*h))
		return em_err_msg(err, EINVAL, "inconsistent header: size %u, version %u's is %zu",
				  h->header_size, EM_SNAP_VERSION, sizeof(*h));
	if (h->page_size != PAGE || h->flags || h->reserved[0] || h->reserved[1] || h->reserved[2])
		return em_err_msg(err, EINVAL, "inconsistent header: page size %u (expected %u), flags "
				  "%#x or reserved fields set", h->page_size, PAGE, h->flags);
	if (st_size < h->file_size)
		return em_err_msg(err, EINVAL, "truncated image: the file has %" PRIu64 " bytes, its "
				  "header says %" PRIu64, st_size, h->file_size);
	if (st_size > h->file_size)
		return em_err_msg(err, EINVAL, "inconsistent size: the file has %" PRIu64 " bytes, its "
				  "header says %" PRIu64, st_size, h->file_size);
	if (h->data_off != PAGE || h->data_size % PAGE)
		return em_err_msg(err, EINVAL, "unaligned page data: offset %" PRIu64 " (expected %u), "
				  "size %" PRIu64 " (a multiple of %u)", h->data_off, PAGE, h->data_size,
				  PAGE);
	if (h->meta_off != h->data_off + h->data_size || h->meta_size < sizeof(struct em_snap_meta) ||
	    h->meta_size > META_MAX || h->file_size != h->meta_off + h->meta_size)
		return em_err_msg(err, EINVAL, "inconsistent layout: data %" PRIu64 "+%" PRIu64
				  ", metadata %" PRIu64 "+%" PRIu64 ", file %" PRIu64, h->data_off,
				  h->data_size, h->meta_off, h->meta_size, h->file_size);
	return 0;
}

static int check_table(const struct em_snap_header *h, const struct em_snap_table *t,
		       uint32_t entsize, const char *name, struct em_err *err)
{
	if (t->entsize != entsize)
		return em_err_msg(err, EINVAL, "inconsistent metadata: %s entries of %u bytes, version "
				  "%u's are %u", name, t->entsize, EM_SNAP_VERSION, entsize);
	if (t->off % 8 || t->off < sizeof(struct em_snap_meta) || t->off > h->meta_size ||
	    (uint64_t)t->count * entsize > h->meta_size - t->off)
		return em_err_msg(err, EINVAL, "inconsistent metadata: %s table (%u at %" PRIu64
				  ") out of the metadata's %" PRIu64 " bytes", name, t->count, t->off,
				  h->meta_size);
	return 0;
}

static bool string_ok(const struct em_snap_image *img, uint32_t off, bool none_ok)
{
	return off == EM_SNAP_NONE ? none_ok : off < img->m->strings.count;
}

static int check_meta(struct em_snap_image *img, struct em_err *err)
{
	const struct em_snap_header *h = &img->hdr;
	const struct em_snap_meta *m = img->m;
	int ret;

	if ((ret = check_table(h, &m->regions, sizeof(struct em_snap_region), "region", err)) ||
	    (ret = check_table(h, &m->pages, sizeof(struct em_snap_page), "page map", err)) ||
	    (ret = check_table(h, &m->files, sizeof(struct em_snap_file), "file", err)) ||
	    (ret = check_table(h, &m->fds, sizeof(struct em_snap_fd), "fd", err)) ||
	    (ret = check_table(h, &m->sigactions, sizeof(struct em_snap_sigaction), "sigaction", err)) ||
	    (ret = check_table(h, &m->strings, 1, "string", err)))
		return ret;
	img->regions = (const void *)(img->meta + m->regions.off);
	img->pages = (const void *)(img->meta + m->pages.off);
	img->files = (const void *)(img->meta + m->files.off);
	img->fds = (const void *)(img->meta + m->fds.off);
	img->sig = (const void *)(img->meta + m->sigactions.off);
	img->strings = img->meta + m->strings.off;

	/* every string offset below the pool's size is terminated: the pool ends in a NUL */
	if (m->strings.count && img->strings[m->strings.count - 1])
		return em_err_msg(err, EINVAL, "inconsistent metadata: the string pool is not terminated");
	if (m->sigactions.count != EM_SNAP_NSIG)
		return em_err_msg(err, EINVAL, "inconsistent metadata: %u sigactions, expected %d",
				  m->sigactions.count, EM_SNAP_NSIG);
	if (m->ctx_size > EM_SNAP_CTX_MAX || m->build_id_len > EM_SNAP_BUILD_ID_MAX ||
	    m->mm.auxv_size > sizeof(m->mm.auxv) || m->mm.auxv_size % 16 ||
	    !memchr(m->kernel_release, 0, sizeof(m->kernel_release)))
		return em_err_msg(err, EINVAL, "inconsistent metadata: context %u bytes (max %d), build "
				  "id %u bytes (max %d), auxv %u bytes, or an unterminated release",
				  m->ctx_size, EM_SNAP_CTX_MAX, m->build_id_len, EM_SNAP_BUILD_ID_MAX,
				  m->mm.auxv_size);
	if (m->mm.reserved || m->reserved[0] || m->reserved[1] || m->reserved[2] || m->reserved[3])
		return em_err_msg(err, EINVAL, "inconsistent metadata: reserved fields set");
	if (m->exe_file != EM_SNAP_NONE && m->exe_file >= m->files.count)
		return em_err_msg(err, EINVAL, "inconsistent metadata: executable is file %u of %u",
				  m->exe_file, m->files.count);
	for (uint32_t i = 0; i < m->files.count; i++)
		if (!string_ok(img, img->files[i].path, false))
			return em_err_msg(err, EINVAL, "inconsistent metadata: file %u: path out of range",
					  i);
	for (uint32_t i = 0; i < m->fds.count; i++) {
		const struct em_snap_fd *f = &img->fds[i];

		if (f->fd < 0 || f->kind < EM_SNAP_FD_FILE || f->kind > EM_SNAP_FD_OTHER ||
		    !string_ok(img, f->desc, false) ||
		    (f->file != EM_SNAP_NONE && f->file >= m->files.count))
			return em_err_msg(err, EINVAL, "inconsistent metadata: fd entry %u (fd %d, kind "
					  "%u) out of range", i, f->fd, f->kind);
		for (uint32_t j = 0; j < i; j++)
			if (img->fds[j].fd == f->fd)
				return em_err_msg(err, EINVAL, "inconsistent metadata: fd %d twice", f->fd);
	}

	uint64_t page = 0, data = h->data_off;
	for (uint32_t i = 0; i < m->regions.count; i++) {
		const struct em_snap_region *r = &img->regions[i];
		char d[160];

		if (r->start % PAGE || r->end % PAGE || r->start >= r->end)
			return em_err_msg(err, EINVAL, "inconsistent metadata: region %u (%#" PRIx64 "-%#"
					  PRIx64 ") is not a non-empty page-aligned range", i, r->start,
					  r->end);
		if (!string_ok(img, r->name, true) ||
		    (r->file != EM_SNAP_NONE && r->file >= m->files.count))
			return em_err_msg(err, EINVAL, "inconsistent metadata: region %u: name or file "
					  "out of range", i);
		region_desc(img, i, d, sizeof(d));
		if (i && r->start < img->regions[i - 1].end)
			return em_err_msg(err, EINVAL, "inconsistent metadata: %s overlaps or precedes "
					  "region %u (ends at %#" PRIx64 ")", d, i - 1,
					  img->regions[i - 1].end);
		if (r->flags & ~EM_SNAP_R_KNOWN || r->prot & ~7u)
			return em_err_msg(err, EINVAL, "inconsistent metadata: %s: unknown flags %#x or "
					  "protection %#x", d, r->flags, r->prot);
		if (r->data_off % PAGE || r->file_off % PAGE)
			return em_err_msg(err, EINVAL, "inconsistent metadata: %s: data offset %#" PRIx64
					  " or file offset %#" PRIx64 " not aligned to %u", d, r->data_off,
					  r->file_off, PAGE);
		uint64_t n = (r->end - r->start) / PAGE;
		if (r->page_first != page || n > m->pages.count - page)
			return em_err_msg(err, EINVAL, "inconsistent metadata: %s: page map entries %u+%"
					  PRIu64 " out of range (expected from %" PRIu64 " of %u)", d,
					  r->page_first, n, page, m->pages.count);
		if (r->data_off != data)
			return em_err_msg(err, EINVAL, "inconsistent metadata: %s: data at %#" PRIx64
					  ", expected %#" PRIx64, d, r->data_off, data);
		const struct em_snap_page *p = &img->pages[page];
		uint32_t stored = 0, zero = 0, absent = 0;
		for (uint64_t k = 0; k < n; k++) {
			if (p[k].slot == EM_SNAP_PAGE_ABSENT || p[k].slot == EM_SNAP_PAGE_ZERO) {
				*(p[k].slot == EM_SNAP_PAGE_ZERO ? &zero : &absent) += 1;
				if (!p[k].crc)
					continue;
			} else if (p[k].slot == stored) {
				stored++;
				continue;
			}
			return em_err_msg(err, EINVAL, "inconsistent metadata: %s: page %" PRIu64
					  " has slot %#x (expected %u, zero or absent)", d, k, p[k].slot,
					  stored);
		}
		if (stored != r->nr_stored || zero != r->nr_zero || absent != r->nr_absent)
			return em_err_msg(err, EINVAL, "inconsistent metadata: %s: counts %u stored, %u "
					  "zero, %u absent; its page map has %u, %u, %u", d,
					  r->nr_stored, r->nr_zero, r->nr_absent, stored, zero, absent);
		if ((uint64_t)stored * PAGE > h->data_off + h->data_size - data)
			return em_err_msg(err, EINVAL, "inconsistent metadata: %s: %u stored pages past "
					  "the page data's end", d, stored);
		page += n;
		data += (uint64_t)stored * PAGE;
	}
	if (page != m->pages.count || data != h->data_off + h->data_size)
		return em_err_msg(err, EINVAL, "inconsistent metadata: regions cover %" PRIu64 " of %u "
				  "page map entries and %" PRIu64 " of %" PRIu64 " bytes of page data",
				  page, m->pages.count, data - h->data_off, h->data_size);
	return 0;
}

static int check_expect(const struct em_snap_image *img, const struct em_snap_expect *e,
			struct em_err *err)
{
	const struct em_snap_meta *m = img->m;

	if (!e)
		return 0;
	if (e->kernel_release && strcmp(e->kernel_release, m->kernel_release))
		return em_err_msg(err, ESTALE, "foreign image: dumped on kernel %s, this is %s",
				  m->kernel_release, e->kernel_release);
	if (e->build_id && (e->build_id_len != m->build_id_len ||
			    memcmp(e->build_id, m->build_id, m->build_id_len))) {
		char have[2 * EM_SNAP_BUILD_ID_MAX + 1], want[2 * EM_SNAP_BUILD_ID_MAX + 1];

		hex(have, sizeof(have), m->build_id, m->build_id_len);
		hex(want, sizeof(want), e->build_id,
		    e->build_id_len < EM_SNAP_BUILD_ID_MAX ? e->build_id_len : EM_SNAP_BUILD_ID_MAX);
		return em_err_msg(err, ESTALE, "foreign image: dumped for a binary with build id %s, "
				  "expected %s", *have ? have : "(none)", want);
	}
	return 0;
}

static int open_image(struct em_snap_image *img, const struct em_snap_expect *expect,
		      struct em_err *err)
{
	struct stat st;
	int ret;

	if (img->fd < 0)
		img->fd = open(img->path, O_RDONLY | O_CLOEXEC);
	if (img->fd < 0)
		return em_err_set(err, errno, "open");
	if (fstat(img->fd, &st) < 0)
		return em_err_set(err, errno, "stat");
	if (!S_ISREG(st.st_mode))
		return em_err_msg(err, EINVAL, "not a regular file");

	size_t got = (uint64_t)st.st_size < sizeof(img->hdr) ? (size_t)st.st_size : sizeof(img->hdr);
	ret = em_snap_pread_full(img->fd, &img->hdr, got, 0);
	if (ret < 0)
		return em_err_set(err, ret, "read the header");
	ret = check_header(&img->hdr, got, (uint64_t)st.st_size, err);
	if (ret < 0)
		return ret;

	img->meta = malloc(img->hdr.meta_size);
	if (!img->meta)
		return em_err_set(err, ENOMEM, "metadata of %" PRIu64 " bytes", img->hdr.meta_size);
	ret = em_snap_pread_full(img->fd, img->meta, img->hdr.meta_size, img->hdr.meta_off);
	if (ret == -ENODATA)
		return em_err_msg(err, EINVAL, "truncated image: the file ends inside its metadata");
	if (ret < 0)
		return em_err_set(err, ret, "read the metadata");
	uint32_t crc = em_snap_crc32c(0, img->meta, img->hdr.meta_size);
	if (crc != img->hdr.meta_crc)
		return em_err_msg(err, EBADMSG, "metadata checksum mismatch (stored %08x, computed %08x)",
				  img->hdr.meta_crc, crc);
	img->m = (const struct em_snap_meta *)img->meta;
	ret = check_meta(img, err);
	if (ret < 0)
		return ret;
	return check_expect(img, expect, err);
}

int em_snap_open(const char *path, const struct em_snap_expect *expect, struct em_snap_image **out,
		 struct em_err *err)
{
	struct em_snap_image *img = calloc(1, sizeof(*img));
	int ret;

	if (!img || !(img->path = strdup(path))) {
		free(img);
		return em_err_set(err, ENOMEM, "snapshot image %s", path);
	}
	img->fd = -1;
	ret = open_image(img, expect, err);
	if (ret < 0) {
		em_snap_close(img);
		return em_err_prefix(err, "snapshot image %s", path);
	}
	*out = img;
	return 0;
}

int em_snap_open_fd(int fd, const char *name, const struct em_snap_expect *expect,
		    struct em_snap_image **out, struct em_err *err)
{
	struct em_snap_image *img = calloc(1, sizeof(*img));
	int ret;

	if (!img || !(img->path = strdup(name))) {
		free(img);
		close(fd);
		return em_err_set(err, ENOMEM, "snapshot image %s", name);
	}
	img->fd = fd;
	ret = open_image(img, expect, err);
	if (ret < 0) {
		em_snap_close(img);
		return em_err_prefix(err, "snapshot image %s", name);
	}
	*out = img;
	return 0;
}

void em_snap_close(struct em_snap_image *img)
{
	if (!img)
		return;
	if (img->fd >= 0)
		close(img->fd);
	free(img->meta);
	free(img->path);
	free(img);
}

const struct em_snap_header *em_snap_header(const struct em_snap_image *img)
{
	return &img->hdr;
}

const struct em_snap_meta *em_snap_meta(const struct em_snap_image *img)
{
	return img->m;
}

const char *em_snap_path(const struct em_snap_image *img)
{
	return img->path;
}

int em_snap_fd(const struct em_snap_image *img)
{
	return img->fd;
}

uint32_t em_snap_region_count(const struct em_snap_image *img)
{
	return img->m->regions.count;
}

const struct em_snap_region *em_snap_region(const struct em_snap_image *img, uint32_t i)
{
	return i < img->m->regions.count ? &img->regions[i] : NULL;
}

const struct em_snap_page *em_snap_region_pages(const struct em_snap_image *img, uint32_t i)
{
	return i < img->m->regions.count ? &img->pages[img->regions[i].page_first] : NULL;
}

uint32_t em_snap_file_count(const struct em_snap_image *img)
{
	return img->m->files.count;
}

const struct em_snap_file *em_snap_file(const struct em_snap_image *img, uint32_t i)
{
	return i < img->m->files.count ? &img->files[i] : NULL;
}

uint32_t em_snap_fd_count(const struct em_snap_image *img)
{
	return img->m->fds.count;
}

const struct em_snap_fd *em_snap_fd_entry(const struct em_snap_image *img, uint32_t i)
{
	return i < img->m->fds.count ? &img->fds[i] : NULL;
}

const struct em_snap_sigaction *em_snap_sigaction(const struct em_snap_image *img, int signo)
{
	return signo >= 1 && signo <= EM_SNAP_NSIG ? &img->sig[signo - 1] : NULL;
}

const char *em_snap_string(const struct em_snap_image *img, uint32_t off)
{
	return off < img->m->strings.count ? img->strings + off : "";
}

static enum em_snap_page_state state_of(const struct em_snap_page *p)
{
	return p->slot == EM_SNAP_PAGE_ABSENT ? EM_SNAP_ABSENT :
	       p->slot == EM_SNAP_PAGE_ZERO   ? EM_SNAP_ZERO :
						EM_SNAP_STORED;
}

static uint32_t region_pages(const struct em_snap_region *r)
{
	return (uint32_t)((r->end - r->start) / PAGE);
}

enum em_snap_page_state em_snap_page_at(const struct em_snap_image *img, uint32_t region,
					uint32_t page, uint64_t *file_off)
{
	const struct em_snap_region *r = em_snap_region(img, region);

	if (file_off)
		*file_off = 0;
	if (!r || page >= region_pages(r))
		return EM_SNAP_ABSENT;
	const struct em_snap_page *p = &img->pages[r->page_first + page];
	enum em_snap_page_state s = state_of(p);
	if (s == EM_SNAP_STORED && file_off)
		*file_off = r->data_off + (uint64_t)p->slot * PAGE;
	return s;
}

int em_snap_next_run(const struct em_snap_image *img, uint32_t region, uint32_t *pos,
		     uint32_t max_pages, struct em_snap_run *run)
{
	const struct em_snap_region *r = em_snap_region(img, region);

	if (!r || *pos >= region_pages(r))
		return 0;
	const struct em_snap_page *p = &img->pages[r->page_first];
	uint32_t k = *pos, n = 1, total = region_pages(r);
	enum em_snap_page_state s = state_of(&p[k]);
	while (k + n < total && (!max_pages || n < max_pages) && state_of(&p[k + n]) == s)
		n++;
	*run = (struct em_snap_run){
		.vaddr = r->start + (uint64_t)k * PAGE,
		.len = (uint64_t)n * PAGE,
		.file_off = s == EM_SNAP_STORED ? r->data_off + (uint64_t)p[k].slot * PAGE : 0,
		.state = s,
		.page = k,
	};
	*pos = k + n;
	return 1;
}

int em_snap_check_pages(const struct em_snap_image *img, uint32_t region, uint32_t page,
			uint32_t npages, const void *buf, struct em_err *err)
{
	const struct em_snap_region *r = em_snap_region(img, region);
	char d[160];

	if (!r || page > region_pages(r) || npages > region_pages(r) - page)
		return em_err_msg(err, EINVAL, "snapshot image %s: pages %u+%u of region %u out of range",
				  img->path, page, npages, region);
	region_desc(img, region, d, sizeof(d));
	for (uint32_t i = 0; i < npages; i++) {
		const struct em_snap_page *p = &img->pages[r->page_first + page + i];
		uint64_t k = page + i;

		if (state_of(p) != EM_SNAP_STORED)
			return em_err_msg(err, EINVAL, "snapshot image %s: %s: page %" PRIu64 " is not "
					  "stored", img->path, d, k);
		uint32_t crc = em_snap_crc32c(0, (const char *)buf + (size_t)i * PAGE, PAGE);
		if (crc != p->crc)
			return em_err_msg(err, EBADMSG, "snapshot image %s: %s: page %" PRIu64 " at %#"
					  PRIx64 " (image offset %#" PRIx64 "): data checksum mismatch "
					  "(stored %08x, computed %08x)", img->path, d, k,
					  r->start + k * PAGE, r->data_off + (uint64_t)p->slot * PAGE,
					  p->crc, crc);
	}
	return 0;
}

int em_snap_verify_data(const struct em_snap_image *img, struct em_err *err)
{
	cleanup_free char *buf = malloc((size_t)VERIFY_CHUNK * PAGE);
	int ret;

	if (!buf)
		return em_err_set(err, ENOMEM, "snapshot image %s: verify buffer", img->path);
	posix_fadvise(img->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (uint32_t i = 0; i < em_snap_region_count(img); i++) {
		struct em_snap_run run;
		uint32_t pos = 0;

		while (em_snap_next_run(img, i, &pos, VERIFY_CHUNK, &run)) {
			if (run.state != EM_SNAP_STORED)
				continue;
			ret = em_snap_pread_full(img->fd, buf, run.len, run.file_off);
			if (ret < 0) {
				char d[160];

				region_desc(img, i, d, sizeof(d));
				if (ret == -ENODATA)
					return em_err_msg(err, EINVAL, "snapshot image %s: %s: truncated "
							  "image: the file ends inside its page data",
							  img->path, d);
				return em_err_set(err, ret, "snapshot image %s: %s: read pages at "
						  "offset %#" PRIx64, img->path, d, run.file_off);
			}
			ret = em_snap_check_pages(img, i, run.page, (uint32_t)(run.len / PAGE), buf, err);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}
