/* tests/snapshot/helpers.h — a scratch directory per test (removed in the suite's fini), a
 * template-like set of memory regions to write (data, zero and absent pages, a file-backed one),
 * and byte patches of an image file that re-seal its checksums so that only the check under test
 * can refuse it. */
#ifndef EMBER_TESTS_SNAPSHOT_HELPERS_H
#define EMBER_TESTS_SNAPSHOT_HELPERS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "snapshot/image.h"

#define PG EM_SNAP_PAGE_SIZE

static char tdir[64];
static char image[128];

static inline void tdir_init(void)
{
	strcpy(tdir, "/tmp/ember-test-snapshot-XXXXXX");
	cr_assert_not_null(mkdtemp(tdir));
	snprintf(image, sizeof(image), "%s/tmpl.img", tdir);
}

static inline void tdir_fini(void)
{
	struct em_err err = { 0 };

	if (tdir[0])
		em_rm_rf_at(AT_FDCWD, tdir, &err);
	cr_assert_eq(access(tdir, F_OK), -1, "scratch dir %s left behind", tdir);
}

static inline int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* A template's memory: one mapping carved into regions with gaps between them. */
#define R0_PAGES 64    /* anon: data, zero every 4th page, absent where k % 7 == 3 */
#define R1_PAGES 512   /* [heap], 2 MB: data in the first half, zero in the second */
#define R2_PAGES 1     /* one zero page */
#define R3_PAGES 8     /* all absent: no memory given */
#define R4_PAGES 16    /* file-backed private (the test binary), every page data */
#define NREGIONS 5

struct tmpl {
	char *base;                     /* the mapping */
	size_t len;
	uint64_t start[NREGIONS];
	uint32_t pages[NREGIONS];
	uint64_t absent0[1];            /* R0_PAGES bits */
	uint64_t absent3[1];
	uint8_t build_id[EM_SNAP_BUILD_ID_MAX];
	size_t build_id_len;
	char release[EM_SNAP_RELEASE_MAX];
	char exe[4096];
	struct stat exe_st;
};

static inline void fill_page(char *p, uint32_t region, uint32_t k)
{
	for (size_t i = 0; i < PG; i++)
		p[i] = (char)(region * 131 + k * 31 + i * 7 + 1);
	p[0] = 1; /* never all zero */
}

static inline bool r0_absent(uint32_t k) { return k % 7 == 3; }
static inline bool r0_zero(uint32_t k) { return !r0_absent(k) && k % 4 == 0; }

static inline void tmpl_init(struct tmpl *t)
{
	static const uint32_t pages[NREGIONS] = { R0_PAGES, R1_PAGES, R2_PAGES, R3_PAGES, R4_PAGES };
	size_t off = 0;

	memset(t, 0, sizeof(*t));
	for (int i = 0; i < NREGIONS; i++)
		off += (pages[i] + 2) * PG; /* a 2-page gap after each */
	t->len = off;
	t->base = mmap(NULL, t->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(t->base, MAP_FAILED);
	off = 0;
	for (int i = 0; i < NREGIONS; i++) {
		t->start[i] = (uint64_t)(uintptr_t)(t->base + off);
		t->pages[i] = pages[i];
		off += (pages[i] + 2) * PG;
	}
	for (uint32_t k = 0; k < R0_PAGES; k++) {
		if (r0_absent(k))
			t->absent0[0] |= 1ull << k;
		else if (!r0_zero(k))
			fill_page((char *)(uintptr_t)t->start[0] + k * PG, 0, k);
	}
	for (uint32_t k = 0; k < R1_PAGES / 2; k++)
		fill_page((char *)(uintptr_t)t->start[1] + k * PG, 1, k);
	t->absent3[0] = 0xff;
	for (uint32_t k = 0; k < R4_PAGES; k++)
		fill_page((char *)(uintptr_t)t->start[4] + k * PG, 4, k);

	struct em_err err = { 0 };
	cr_assert_eq(em_snap_build_id("/proc/self/exe", t->build_id, sizeof(t->build_id),
				      &t->build_id_len, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_kernel_release(t->release, sizeof(t->release), &err), 0, "%s", err.msg);
	ssize_t n = readlink("/proc/self/exe", t->exe, sizeof(t->exe) - 1);
	cr_assert_gt(n, 0);
	t->exe[n] = '\0';
	cr_assert_eq(stat(t->exe, &t->exe_st), 0);
}

static inline void tmpl_fini(struct tmpl *t)
{
	if (t->base)
		munmap(t->base, t->len);
}

static inline uint32_t tmpl_stored(const struct tmpl *t, int region)
{
	uint32_t n = 0;

	if (region == 0)
		for (uint32_t k = 0; k < R0_PAGES; k++)
			n += !r0_absent(k) && !r0_zero(k);
	(void)t;
	return region == 0 ? n : region == 1 ? R1_PAGES / 2 : region == 4 ? R4_PAGES : 0;
}

/* The metadata a dumper would record, with recognizable values. */
static inline void fill_meta(struct em_snap_meta *m, const struct tmpl *t)
{
	memcpy(m->build_id, t->build_id, t->build_id_len);
	m->build_id_len = (uint32_t)t->build_id_len;
	strcpy(m->kernel_release, t->release);
	m->ctx_size = 700;
	for (int i = 0; i < 700; i++)
		m->ctx[i] = (uint8_t)(i * 13 + 5);
	m->fs_base = 0x7f0000001234;
	m->gs_base = 0;
	m->mm = (struct em_snap_mm){
		.start_code = 0x400000, .end_code = 0x401000, .start_data = 0x402000,
		.end_data = 0x403000, .start_brk = 0x500000, .brk = 0x521000,
		.start_stack = 0x7ffd00000000, .arg_start = 0x7ffd00001000, .arg_end = 0x7ffd00001100,
		.env_start = 0x7ffd00001100, .env_end = 0x7ffd00002000,
	};
	/* the process's own auxv: what PR_SET_MM_MAP would be given */
	int fd = open("/proc/self/auxv", O_RDONLY);
	cr_assert_geq(fd, 0);
	ssize_t n = read(fd, m->mm.auxv, sizeof(m->mm.auxv));
	close(fd);
	cr_assert_gt(n, 0);
	m->mm.auxv_size = (uint32_t)(n - n % 16);
	m->sigmask = 1ull << (10 - 1) | 1ull << (12 - 1);
}

/* Write the template's image at path; every piece of metadata set. */
static inline void write_tmpl(const struct tmpl *t, const char *path)
{
	struct em_snap_writer *w;
	struct em_err err = { 0 };
	uint32_t exe;

	cr_assert_eq(em_snap_writer_open(path, &w, &err), 0, "%s", err.msg);
	fill_meta(em_snap_writer_meta(w), t);
	cr_assert_eq(em_snap_writer_add_file(w, t->exe, NULL, &exe, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_writer_set_exe(w, exe, &err), 0, "%s", err.msg);
	struct em_snap_fd fds[] = {
		{ .fd = 0, .kind = EM_SNAP_FD_CHR, .status_flags = O_RDONLY, .file = EM_SNAP_NONE },
		{ .fd = 1, .kind = EM_SNAP_FD_PIPE, .status_flags = O_WRONLY, .file = EM_SNAP_NONE },
		{ .fd = 7, .kind = EM_SNAP_FD_FILE, .fd_flags = FD_CLOEXEC, .status_flags = O_RDONLY,
		  .pos = 4242, .file = exe },
	};
	const char *desc[] = { "/dev/null", "pipe:[1234]", t->exe };
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(em_snap_writer_add_fd(w, &fds[i], desc[i], &err), 0, "%s", err.msg);
	struct em_snap_sigaction sa = { .handler = 0x401234, .flags = 0x04000004, /* SA_RESTORER|SA_SIGINFO */
					.restorer = 0x405678, .mask = 1ull << 1 };
	cr_assert_eq(em_snap_writer_set_sigaction(w, 2, &sa, &err), 0, "%s", err.msg);
	sa = (struct em_snap_sigaction){ .handler = 1 }; /* SIG_IGN */
	cr_assert_eq(em_snap_writer_set_sigaction(w, 13, &sa, &err), 0, "%s", err.msg);

	struct em_snap_region_spec r[NREGIONS] = {
		{ .prot = PROT_READ | PROT_WRITE, .flags = EM_SNAP_R_PRIVATE | EM_SNAP_R_ANON,
		  .absent = t->absent0 },
		{ .prot = PROT_READ | PROT_WRITE,
		  .flags = EM_SNAP_R_PRIVATE | EM_SNAP_R_ANON | EM_SNAP_R_HEAP | EM_SNAP_R_HUGEPAGE,
		  .name = "[heap]" },
		{ .prot = PROT_READ, .flags = EM_SNAP_R_PRIVATE | EM_SNAP_R_ANON, .name = "zero" },
		{ .prot = PROT_READ | PROT_WRITE,
		  .flags = EM_SNAP_R_PRIVATE | EM_SNAP_R_ANON | EM_SNAP_R_STACK | EM_SNAP_R_GROWSDOWN,
		  .name = "[stack]", .absent = t->absent3 },
		{ .prot = PROT_READ | PROT_WRITE, .flags = EM_SNAP_R_PRIVATE, .file = exe,
		  .file_off = 2 * PG },
	};
	for (int i = 0; i < NREGIONS; i++) {
		r[i].start = t->start[i];
		r[i].end = t->start[i] + (uint64_t)t->pages[i] * PG;
		if (i != 4)
			r[i].file = EM_SNAP_NONE;
		r[i].mem = i == 3 ? NULL : (const void *)(uintptr_t)t->start[i];
		cr_assert_eq(em_snap_writer_add_region(w, &r[i], &err), 0, "region %d: %s", i, err.msg);
	}
	cr_assert_eq(em_snap_writer_commit(w, &err), 0, "%s", err.msg);
	em_snap_writer_free(w);
}

/* --- patching an image file ---------------------------------------------------------------- */

static inline void file_read(const char *path, void *buf, size_t len, off_t off)
{
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static inline void file_write(const char *path, const void *buf, size_t len, off_t off)
{
	int fd = open(path, O_WRONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static inline void flip_byte(const char *path, off_t off)
{
	unsigned char b;

	file_read(path, &b, 1, off);
	b ^= 0x5a;
	file_write(path, &b, 1, off);
}

static inline struct em_snap_header read_header(const char *path)
{
	struct em_snap_header h;

	file_read(path, &h, sizeof(h), 0);
	return h;
}

/* Write h back with its checksum recomputed. */
static inline void reseal_header(const char *path, struct em_snap_header h)
{
	h.header_crc = 0;
	h.header_crc = em_snap_crc32c(0, &h, sizeof(h));
	file_write(path, &h, sizeof(h), 0);
}

/* Read the metadata, let edit change it, write it back with both checksums recomputed. */
static inline void edit_meta(const char *path, void (*edit)(char *meta, size_t len))
{
	struct em_snap_header h = read_header(path);
	char *m = malloc(h.meta_size);

	cr_assert_not_null(m);
	file_read(path, m, h.meta_size, (off_t)h.meta_off);
	edit(m, h.meta_size);
	file_write(path, m, h.meta_size, (off_t)h.meta_off);
	h.meta_crc = em_snap_crc32c(0, m, h.meta_size);
	free(m);
	reseal_header(path, h);
}

static inline struct em_snap_region *meta_region(char *meta, uint32_t i)
{
	struct em_snap_meta *m = (struct em_snap_meta *)meta;

	return (struct em_snap_region *)(meta + m->regions.off) + i;
}

/* em_snap_open must refuse path with a message containing `what` and return `code`. */
#define assert_refused(path, expect, code, what)                                               \
	do {                                                                                    \
		struct em_snap_image *_img = NULL;                                              \
		struct em_err _err = { 0 };                                                     \
		int _ret = em_snap_open((path), (expect), &_img, &_err);                        \
		cr_assert_eq(_ret, -(code), "expected -%d (%s), got %d: %s", (code), (what),   \
			     _ret, _err.msg);                                                   \
		cr_assert_null(_img);                                                           \
		cr_assert(strstr(_err.msg, (what)), "message \"%s\" lacks \"%s\"", _err.msg,    \
			  (what));                                                              \
		cr_assert(strstr(_err.msg, (path)), "message names the image: %s", _err.msg);   \
	} while (0)

#endif
