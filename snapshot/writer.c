/* snapshot/writer.c — writing an image (FORMAT.md): page data streams to the file as regions are
 * added (zero pages detected here, absent pages declared by the caller), the metadata and the
 * header are written last, into a temporary file renamed over the image's path on commit. */
#include "snapshot/image.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAGE EM_SNAP_PAGE_SIZE
#define IOV_BATCH 1024 /* IOV_MAX on Linux */

struct em_snap_stream;

struct em_snap_writer {
	char *path, *tmp;
	int fd;
	bool committed;
	bool broken;             /* a page write failed: the file's data is incomplete */
	struct em_snap_meta meta;
	struct em_snap_region *regions;
	uint32_t nregions, cap_regions;
	struct em_snap_page *pages;
	uint32_t npages, cap_pages;
	struct em_snap_file *files;
	uint32_t nfiles, cap_files;
	struct em_snap_fd *fds;
	uint32_t nfds, cap_fds;
	struct em_snap_sigaction sig[EM_SNAP_NSIG];
	char *strings;
	uint32_t nstrings, cap_strings;
	uint64_t data_end;       /* image offset of the next stored page */
	struct em_snap_stream *cur; /* the region being streamed, or NULL */
};

/* Make room for `more` entries of `size` bytes in *arr (count n, capacity *cap). */
static int grow(void *arr, uint32_t *cap, uint32_t n, uint64_t more, size_t size)
{
	void **a = arr;
	uint64_t need = (uint64_t)n + more;

	if (need <= *cap)
		return 0;
	if (need > UINT32_MAX - 1)
		return -EOVERFLOW;
	uint64_t c = *cap ? *cap : 16;
	while (c < need)
		c *= 2;
	if (c > UINT32_MAX - 1)
		c = UINT32_MAX - 1;
	void *p = realloc(*a, c * size);
	if (!p)
		return -ENOMEM;
	*a = p;
	*cap = (uint32_t)c;
	return 0;
}

static int add_string(struct em_snap_writer *w, const char *s, uint32_t *off, struct em_err *err)
{
	if (!s) {
		*off = EM_SNAP_NONE;
		return 0;
	}
	size_t len = strlen(s) + 1;
	int ret = grow(&w->strings, &w->cap_strings, w->nstrings, len, 1);
	if (ret < 0)
		return em_err_set(err, ret, "add string \"%s\" to the image", s);
	memcpy(w->strings + w->nstrings, s, len);
	*off = w->nstrings;
	w->nstrings += (uint32_t)len;
	return 0;
}

int em_snap_writer_open(const char *path, struct em_snap_writer **out, struct em_err *err)
{
	struct em_snap_writer *w = calloc(1, sizeof(*w));
	struct timespec now;

	if (!w)
		return em_err_set(err, ENOMEM, "snapshot image %s", path);
	w->fd = -1;
	w->path = strdup(path);
	if (!w->path || asprintf(&w->tmp, "%s.XXXXXX", path) < 0) {
		w->tmp = NULL;
		em_snap_writer_free(w);
		return em_err_set(err, ENOMEM, "snapshot image %s", path);
	}
	w->fd = mkostemp(w->tmp, O_CLOEXEC);
	if (w->fd < 0) {
		int ret = em_err_set(err, errno, "create %s", w->tmp);

		free(w->tmp);
		w->tmp = NULL; /* nothing to remove */
		em_snap_writer_free(w);
		return ret;
	}
	w->meta.arch = EM_X86_64;
	w->meta.exe_file = EM_SNAP_NONE;
	clock_gettime(CLOCK_REALTIME, &now);
	w->meta.created_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	w->data_end = PAGE; /* the first page is the header's */
	*out = w;
	return 0;
}

struct em_snap_meta *em_snap_writer_meta(struct em_snap_writer *w)
{
	return &w->meta;
}

int em_snap_writer_add_file(struct em_snap_writer *w, const char *path, const struct stat *st,
			    uint32_t *index, struct em_err *err)
{
	struct stat sb;
	int ret;

	if (!st) {
		if (stat(path, &sb) < 0)
			return em_err_set(err, errno, "stat %s", path);
		st = &sb;
	}
	for (uint32_t i = 0; i < w->nfiles; i++) {
		const struct em_snap_file *f = &w->files[i];

		if (f->dev_major == major(st->st_dev) && f->dev_minor == minor(st->st_dev) &&
		    f->ino == st->st_ino) {
			*index = i;
			return 0;
		}
	}
	ret = grow(&w->files, &w->cap_files, w->nfiles, 1, sizeof(*w->files));
	if (ret < 0)
		return em_err_set(err, ret, "add file %s to the image", path);
	struct em_snap_file f = {
		.dev_major = major(st->st_dev),
		.dev_minor = minor(st->st_dev),
		.ino = st->st_ino,
		.size = (uint64_t)st->st_size,
		.mtime_sec = st->st_mtim.tv_sec,
		.mtime_nsec = (uint32_t)st->st_mtim.tv_nsec,
		.mode = st->st_mode,
	};
	ret = add_string(w, path, &f.path, err);
	if (ret < 0)
		return ret;
	w->files[w->nfiles] = f;
	*index = w->nfiles++;
	return 0;
}

int em_snap_writer_set_exe(struct em_snap_writer *w, uint32_t file, struct em_err *err)
{
	if (file >= w->nfiles)
		return em_err_msg(err, EINVAL, "executable: no file %u in the image", file);
	w->meta.exe_file = file;
	return 0;
}

int em_snap_writer_add_fd(struct em_snap_writer *w, const struct em_snap_fd *fd, const char *desc,
			  struct em_err *err)
{
	int ret;

	if (fd->fd < 0)
		return em_err_msg(err, EINVAL, "fd %d: not a file descriptor number", fd->fd);
	if (fd->kind < EM_SNAP_FD_FILE || fd->kind > EM_SNAP_FD_OTHER)
		return em_err_msg(err, EINVAL, "fd %d: unknown kind %u", fd->fd, fd->kind);
	if (fd->file != EM_SNAP_NONE && fd->file >= w->nfiles)
		return em_err_msg(err, EINVAL, "fd %d: no file %u in the image", fd->fd, fd->file);
	for (uint32_t i = 0; i < w->nfds; i++)
		if (w->fds[i].fd == fd->fd)
			return em_err_msg(err, EEXIST, "fd %d: already in the image", fd->fd);
	ret = grow(&w->fds, &w->cap_fds, w->nfds, 1, sizeof(*w->fds));
	if (ret < 0)
		return em_err_set(err, ret, "add fd %d to the image", fd->fd);
	struct em_snap_fd f = *fd;
	ret = add_string(w, desc ? desc : "", &f.desc, err);
	if (ret < 0)
		return ret;
	w->fds[w->nfds++] = f;
	return 0;
}

int em_snap_writer_set_sigaction(struct em_snap_writer *w, int signo,
				 const struct em_snap_sigaction *sa, struct em_err *err)
{
	if (signo < 1 || signo > EM_SNAP_NSIG)
		return em_err_msg(err, EINVAL, "signal %d: out of range 1..%d", signo, EM_SNAP_NSIG);
	w->sig[signo - 1] = *sa;
	return 0;
}

static bool page_is_zero(const void *p)
{
	const uint64_t *q = p;

	/* 64 bytes at a time: data pages mostly differ from zero within their first line */
	for (size_t i = 0; i < PAGE / 8; i += 8) {
		uint64_t acc = q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] |
			       q[i + 7];
		if (acc)
			return false;
	}
	return true;
}

/* pwritev all of iov at off, through short writes */
static int write_all(int fd, struct iovec *iov, int cnt, uint64_t off)
{
	while (cnt) {
		ssize_t n = pwritev(fd, iov, cnt, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		off += (uint64_t)n;
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

struct batch {
	struct iovec iov[IOV_BATCH];
	int cnt;
	uint64_t off;   /* image offset of iov[0] */
	uint64_t len;
};

static int batch_flush(int fd, struct batch *b)
{
	int ret = b->cnt ? write_all(fd, b->iov, b->cnt, b->off) : 0;

	b->off += b->len;
	b->cnt = 0;
	b->len = 0;
	return ret;
}

/* Queue one page; adjacent pages in memory share an iovec. */
static int batch_add(int fd, struct batch *b, const void *p)
{
	if (b->cnt && (const char *)b->iov[b->cnt - 1].iov_base + b->iov[b->cnt - 1].iov_len == p) {
		b->iov[b->cnt - 1].iov_len += PAGE;
	} else {
		if (b->cnt == IOV_BATCH) {
			int ret = batch_flush(fd, b);
			if (ret < 0)
				return ret;
		}
		b->iov[b->cnt].iov_base = (void *)p;
		b->iov[b->cnt].iov_len = PAGE;
		b->cnt++;
	}
	b->len += PAGE;
	return 0;
}

static bool page_absent(const uint64_t *bitmap, uint64_t k)
{
	return bitmap && (bitmap[k / 64] >> (k % 64) & 1);
}

/* A region being streamed (em_snap_writer_region_begin .. _end). */
struct em_snap_stream {
	struct em_snap_region reg;
	uint64_t npages, done;  /* pages in the region, pages given so far */
	struct batch b;
	char what[64];
};

int em_snap_writer_region_begin(struct em_snap_writer *w, const struct em_snap_region_spec *r,
				struct em_err *err)
{
	const struct em_snap_region *prev = w->nregions ? &w->regions[w->nregions - 1] : NULL;
	char what[64];
	int ret;

	snprintf(what, sizeof(what), "region %#" PRIx64 "-%#" PRIx64, r->start, r->end);
	if (w->broken || w->committed || w->cur)
		return em_err_msg(err, EINVAL, "%s: the image is %s", what,
				  w->committed ? "already committed" : w->cur ? "still streaming a region"
				  : "incomplete after a failed write");
	if (r->start % PAGE || r->end % PAGE || r->start >= r->end)
		return em_err_msg(err, EINVAL, "%s: not a non-empty page-aligned range", what);
	if (prev && r->start < prev->end)
		return em_err_msg(err, EINVAL, "%s: regions must be added in address order without overlap "
				  "(the previous one ends at %#" PRIx64 ")", what, prev->end);
	if (r->flags & ~EM_SNAP_R_KNOWN || r->prot & ~7u)
		return em_err_msg(err, EINVAL, "%s: unknown flags %#x or protection %#x", what, r->flags,
				  r->prot);
	if (r->file != EM_SNAP_NONE && r->file >= w->nfiles)
		return em_err_msg(err, EINVAL, "%s: no file %u in the image", what, r->file);
	if (r->file_off % PAGE)
		return em_err_msg(err, EINVAL, "%s: file offset %#" PRIx64 " not page-aligned", what,
				  r->file_off);
	uint64_t npages = (r->end - r->start) / PAGE;
	ret = grow(&w->pages, &w->cap_pages, w->npages, npages, sizeof(*w->pages));
	if (ret == 0)
		ret = grow(&w->regions, &w->cap_regions, w->nregions, 1, sizeof(*w->regions));
	if (ret < 0)
		return em_err_set(err, ret, "%s: page map", what);

	struct em_snap_stream *s = malloc(sizeof(*s));
	if (!s)
		return em_err_set(err, ENOMEM, "%s: write batch", what);
	s->reg = (struct em_snap_region){
		.start = r->start, .end = r->end, .file_off = r->file_off, .data_off = w->data_end,
		.prot = r->prot, .flags = r->flags, .file = r->file, .page_first = w->npages,
	};
	ret = add_string(w, r->name, &s->reg.name, err);
	if (ret < 0) {
		free(s);
		return ret;
	}
	s->npages = npages;
	s->done = 0;
	s->b.cnt = 0;
	s->b.len = 0;
	s->b.off = w->data_end;
	memcpy(s->what, what, sizeof(what));
	w->cur = s;
	return 0;
}

int em_snap_writer_region_pages(struct em_snap_writer *w, const void *mem, uint64_t npages,
				const uint64_t *absent, struct em_err *err)
{
	struct em_snap_stream *s = w->cur;
	int ret = 0;

	if (!s)
		return em_err_msg(err, EINVAL, "region pages given with no region begun");
	if (npages > s->npages - s->done)
		return em_err_msg(err, EINVAL, "%s: %" PRIu64 " pages given, %" PRIu64 " left", s->what,
				  npages, s->npages - s->done);
	if (!mem)
		for (uint64_t k = 0; k < npages; k++)
			if (!page_absent(absent, k))
				return em_err_msg(err, EINVAL, "%s: no memory given for present page %" PRIu64,
						  s->what, s->done + k);

	/* The batch keeps pointers into mem: it is flushed before returning (mem is the caller's). */
	struct em_snap_page *map = &w->pages[w->npages + s->done];
	for (uint64_t k = 0; k < npages; k++) {
		const char *p = (const char *)mem + k * PAGE;

		if (page_absent(absent, k)) {
			map[k] = (struct em_snap_page){ .slot = EM_SNAP_PAGE_ABSENT };
			s->reg.nr_absent++;
		} else if (page_is_zero(p)) {
			map[k] = (struct em_snap_page){ .slot = EM_SNAP_PAGE_ZERO };
			s->reg.nr_zero++;
		} else {
			map[k] = (struct em_snap_page){ .slot = s->reg.nr_stored++,
							.crc = em_snap_crc32c(0, p, PAGE) };
			ret = batch_add(w->fd, &s->b, p);
			if (ret < 0)
				break;
		}
	}
	if (ret == 0)
		ret = batch_flush(w->fd, &s->b);
	if (ret < 0) {
		w->broken = true;
		return em_err_set(err, ret, "%s: write its pages to %s", s->what, w->tmp);
	}
	s->done += npages;
	return 0;
}

int em_snap_writer_region_end(struct em_snap_writer *w, struct em_snap_region *out,
			      struct em_err *err)
{
	struct em_snap_stream *s = w->cur;

	if (!s)
		return em_err_msg(err, EINVAL, "region end with no region begun");
	if (s->done != s->npages) {
		w->broken = true;
		return em_err_msg(err, EINVAL, "%s: ended after %" PRIu64 " of its %" PRIu64 " pages",
				  s->what, s->done, s->npages);
	}
	w->npages += (uint32_t)s->npages;
	w->data_end += (uint64_t)s->reg.nr_stored * PAGE;
	w->regions[w->nregions++] = s->reg;
	if (out)
		*out = s->reg;
	w->cur = NULL;
	free(s);
	return 0;
}

int em_snap_writer_add_region(struct em_snap_writer *w, const struct em_snap_region_spec *r,
			      struct em_err *err)
{
	int ret = em_snap_writer_region_begin(w, r, err);

	if (ret == 0)
		ret = em_snap_writer_region_pages(w, r->mem, (r->end - r->start) / PAGE, r->absent, err);
	if (ret == 0)
		ret = em_snap_writer_region_end(w, NULL, err);
	else if (w->cur) {
		/* not recorded: data_end did not move, so pages already written get overwritten by
		 * the next region's (a failed write marked the image broken on its own) */
		free(w->cur);
		w->cur = NULL;
	}
	return ret;
}

/* The metadata: the fixed part, then each table 8-aligned, in the order of struct em_snap_meta. */
static int build_meta(struct em_snap_writer *w, char **out, size_t *len, struct em_err *err)
{
	struct em_snap_meta m = w->meta;
	struct {
		struct em_snap_table *t;
		const void *src;
		uint32_t count;
		uint32_t entsize;
	} tabs[] = {
		{ &m.regions, w->regions, w->nregions, sizeof(struct em_snap_region) },
		{ &m.pages, w->pages, w->npages, sizeof(struct em_snap_page) },
		{ &m.files, w->files, w->nfiles, sizeof(struct em_snap_file) },
		{ &m.fds, w->fds, w->nfds, sizeof(struct em_snap_fd) },
		{ &m.sigactions, w->sig, EM_SNAP_NSIG, sizeof(struct em_snap_sigaction) },
		{ &m.strings, w->strings, w->nstrings, 1 },
	};
	uint64_t off = sizeof(m);

	memset(m.reserved, 0, sizeof(m.reserved));
	m.mm.reserved = 0;
	for (size_t i = 0; i < EM_ARRAY_SIZE(tabs); i++) {
		off = (off + 7) & ~7ull;
		*tabs[i].t = (struct em_snap_table){ .off = off, .count = tabs[i].count,
						     .entsize = tabs[i].entsize };
		off += (uint64_t)tabs[i].count * tabs[i].entsize;
	}
	char *buf = calloc(1, off);
	if (!buf)
		return em_err_set(err, ENOMEM, "image metadata (%" PRIu64 " bytes)", off);
	memcpy(buf, &m, sizeof(m));
	for (size_t i = 0; i < EM_ARRAY_SIZE(tabs); i++)
		if (tabs[i].count)
			memcpy(buf + tabs[i].t->off, tabs[i].src,
			       (size_t)tabs[i].count * tabs[i].entsize);
	*out = buf;
	*len = off;
	return 0;
}

int em_snap_writer_commit(struct em_snap_writer *w, struct em_err *err)
{
	const struct em_snap_meta *m = &w->meta;
	int ret;

	if (w->broken || w->committed || w->cur)
		return em_err_msg(err, EINVAL, "image %s: %s", w->path,
				  w->committed ? "already committed" : w->cur ? "a region is still streaming"
				  : "incomplete after a failed write");
	if (m->ctx_size > EM_SNAP_CTX_MAX || m->build_id_len > EM_SNAP_BUILD_ID_MAX ||
	    m->mm.auxv_size > sizeof(m->mm.auxv) || m->mm.auxv_size % 16 ||
	    !memchr(m->kernel_release, 0, sizeof(m->kernel_release)))
		return em_err_msg(err, EINVAL, "image %s: metadata out of range (context %u bytes, "
				  "build id %u bytes, auxv %u bytes, or an unterminated release)",
				  w->path, m->ctx_size, m->build_id_len, m->mm.auxv_size);

	cleanup_free char *meta = NULL;
	size_t meta_len;
	ret = build_meta(w, &meta, &meta_len, err);
	if (ret < 0)
		return em_err_prefix(err, "image %s", w->path);

	cleanup_free char *page = calloc(1, PAGE);
	if (!page)
		return em_err_set(err, ENOMEM, "image %s: header", w->path);
	struct em_snap_header h = {
		.version = EM_SNAP_VERSION,
		.header_size = sizeof(h),
		.page_size = PAGE,
		.data_off = PAGE,
		.data_size = w->data_end - PAGE,
		.meta_off = w->data_end,
		.meta_size = meta_len,
		.file_size = w->data_end + meta_len,
		.meta_crc = em_snap_crc32c(0, meta, meta_len),
	};
	memcpy(h.magic, EM_SNAP_MAGIC, sizeof(h.magic));
	h.header_crc = em_snap_crc32c(0, &h, sizeof(h));
	memcpy(page, &h, sizeof(h));

	/* the header last: until it is written, the file is no image */
	struct iovec iov = { meta, meta_len };
	ret = write_all(w->fd, &iov, 1, h.meta_off);
	if (ret == 0) {
		iov = (struct iovec){ page, PAGE };
		ret = write_all(w->fd, &iov, 1, 0);
	}
	if (ret < 0)
		return em_err_set(err, ret, "write the metadata of %s", w->tmp);
	/* An image is a cache of a template's init, but a restore must not meet a renamed file whose
	 * blocks never reached the disk after a crash: sync before the rename publishes it. */
	if (fdatasync(w->fd) < 0)
		return em_err_set(err, errno, "fdatasync %s", w->tmp);
	if (fchmod(w->fd, 0600) < 0)
		return em_err_set(err, errno, "chmod %s", w->tmp);
	if (rename(w->tmp, w->path) < 0)
		return em_err_set(err, errno, "rename %s to %s", w->tmp, w->path);
	w->committed = true;
	return 0;
}

void em_snap_writer_free(struct em_snap_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp && !w->committed)
		unlink(w->tmp);
	free(w->path);
	free(w->tmp);
	free(w->regions);
	free(w->pages);
	free(w->files);
	free(w->fds);
	free(w->strings);
	free(w->cur);
	free(w);
}
