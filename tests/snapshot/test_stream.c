/* tests/snapshot/test_stream.c — the writer's streamed regions (em_snap_writer_region_begin,
 * _pages in chunks, _end), as em_snap_dump uses them for regions too big for one buffer, give the
 * same image as whole regions; and the stream refuses misuse without breaking the image. */
#include <inttypes.h>

#include "helpers.h"

static struct tmpl t;

static void setup(void)
{
	tdir_init();
	tmpl_init(&t);
}

static void teardown(void)
{
	tmpl_fini(&t);
	tdir_fini();
}

TestSuite(stream, .init = setup, .fini = teardown, .timeout = 60);

/* Bits [from, from + n) of a region bitmap as a chunk's bitmap (bit 0 = page from). */
static void chunk_bits(const uint64_t *absent, uint64_t from, uint64_t n, uint64_t *out)
{
	memset(out, 0, (n + 63) / 64 * 8);
	for (uint64_t k = 0; absent && k < n; k++)
		if (absent[(from + k) / 64] >> ((from + k) % 64) & 1)
			out[k / 64] |= 1ull << (k % 64);
}

/* The same regions as write_tmpl, streamed in chunks of `chunk` pages. */
static void write_streamed(const char *path, uint64_t chunk)
{
	struct em_snap_writer *w;
	struct em_err err = { 0 };
	uint32_t exe;
	uint64_t bits[16];

	cr_assert_eq(em_snap_writer_open(path, &w, &err), 0, "%s", err.msg);
	fill_meta(em_snap_writer_meta(w), &t);
	cr_assert_eq(em_snap_writer_add_file(w, t.exe, NULL, &exe, &err), 0, "%s", err.msg);
	const uint64_t *absent[NREGIONS] = { t.absent0, NULL, NULL, t.absent3, NULL };
	for (int i = 0; i < NREGIONS; i++) {
		struct em_snap_region_spec r = {
			.start = t.start[i], .end = t.start[i] + (uint64_t)t.pages[i] * PG,
			.prot = PROT_READ | PROT_WRITE, .flags = EM_SNAP_R_PRIVATE | EM_SNAP_R_ANON,
			.file = EM_SNAP_NONE,
		};
		if (i == 4) {
			r.flags = EM_SNAP_R_PRIVATE;
			r.file = exe;
			r.file_off = 2 * PG;
		}
		struct em_snap_region out;
		cr_assert_eq(em_snap_writer_region_begin(w, &r, &err), 0, "%s", err.msg);
		for (uint64_t k = 0; k < t.pages[i]; k += chunk) {
			uint64_t n = t.pages[i] - k < chunk ? t.pages[i] - k : chunk;
			chunk_bits(absent[i], k, n, bits);
			const char *mem = i == 3 ? NULL : (char *)(uintptr_t)t.start[i] + k * PG;
			cr_assert_eq(em_snap_writer_region_pages(w, mem, n, bits, &err), 0,
				     "region %d pages %" PRIu64 ": %s", i, k, err.msg);
		}
		cr_assert_eq(em_snap_writer_region_end(w, &out, &err), 0, "%s", err.msg);
		cr_assert_eq(out.nr_stored, tmpl_stored(&t, i), "region %d stored %u", i, out.nr_stored);
		cr_assert_eq(out.nr_stored + out.nr_zero + out.nr_absent, t.pages[i]);
	}
	cr_assert_eq(em_snap_writer_commit(w, &err), 0, "%s", err.msg);
	em_snap_writer_free(w);
}

static void *slurp(const char *path, uint64_t off, uint64_t len)
{
	void *b = malloc(len);

	cr_assert_not_null(b);
	file_read(path, b, len, (off_t)off);
	return b;
}

Test(stream, chunks_of_any_size_give_the_same_pages)
{
	struct em_err err = { 0 };
	char whole[160], streamed[160];

	snprintf(whole, sizeof(whole), "%s/whole.img", tdir);
	snprintf(streamed, sizeof(streamed), "%s/streamed.img", tdir);
	write_tmpl(&t, whole);
	struct em_snap_header hw = read_header(whole);
	void *dw = slurp(whole, hw.data_off, hw.data_size);

	uint64_t chunks[] = { 1, 5, 64, 100000 };
	for (size_t c = 0; c < EM_ARRAY_SIZE(chunks); c++) {
		write_streamed(streamed, chunks[c]);
		struct em_snap_header hs = read_header(streamed);
		cr_assert_eq(hs.data_size, hw.data_size, "chunk %" PRIu64, chunks[c]);
		void *ds = slurp(streamed, hs.data_off, hs.data_size);
		cr_assert_eq(memcmp(ds, dw, hw.data_size), 0, "page data differs, chunk %" PRIu64,
			     chunks[c]);
		free(ds);

		struct em_snap_image *a, *b;
		cr_assert_eq(em_snap_open(whole, NULL, &a, &err), 0, "%s", err.msg);
		cr_assert_eq(em_snap_open(streamed, NULL, &b, &err), 0, "%s", err.msg);
		cr_assert_eq(em_snap_region_count(a), em_snap_region_count(b));
		for (uint32_t i = 0; i < em_snap_region_count(a); i++) {
			const struct em_snap_region *ra = em_snap_region(a, i), *rb = em_snap_region(b, i);
			cr_assert(ra->start == rb->start && ra->end == rb->end &&
				  ra->nr_stored == rb->nr_stored && ra->nr_zero == rb->nr_zero &&
				  ra->nr_absent == rb->nr_absent && ra->data_off == rb->data_off,
				  "region %u differs, chunk %" PRIu64, i, chunks[c]);
			cr_assert_eq(memcmp(em_snap_region_pages(a, i), em_snap_region_pages(b, i),
					    (ra->end - ra->start) / PG * sizeof(struct em_snap_page)), 0,
				     "page map of region %u differs, chunk %" PRIu64, i, chunks[c]);
		}
		em_snap_close(a);
		em_snap_close(b);
	}
	free(dw);
}

Test(stream, misuse_is_refused)
{
	struct em_snap_writer *w;
	struct em_err err = { 0 };
	char path[160];
	uint64_t none = 0;

	snprintf(path, sizeof(path), "%s/misuse.img", tdir);
	cr_assert_eq(em_snap_writer_open(path, &w, &err), 0, "%s", err.msg);
	fill_meta(em_snap_writer_meta(w), &t);
	cr_assert_eq(em_snap_writer_region_pages(w, NULL, 1, NULL, &err), -EINVAL);
	cr_assert(strstr(err.msg, "no region begun"), "%s", err.msg);

	struct em_snap_region_spec r = {
		.start = t.start[1], .end = t.start[1] + 4 * PG, .prot = PROT_READ,
		.flags = EM_SNAP_R_PRIVATE | EM_SNAP_R_ANON, .file = EM_SNAP_NONE,
	};
	cr_assert_eq(em_snap_writer_region_begin(w, &r, &err), 0, "%s", err.msg);
	/* a second region, or a commit, while one streams */
	cr_assert_eq(em_snap_writer_region_begin(w, &r, &err), -EINVAL);
	cr_assert(strstr(err.msg, "still streaming"), "%s", err.msg);
	cr_assert_eq(em_snap_writer_commit(w, &err), -EINVAL);
	cr_assert(strstr(err.msg, "still streaming"), "%s", err.msg);
	/* more pages than the region has */
	cr_assert_eq(em_snap_writer_region_pages(w, (void *)(uintptr_t)t.start[1], 5, &none, &err),
		     -EINVAL);
	cr_assert(strstr(err.msg, "5 pages given, 4 left"), "%s", err.msg);
	/* present pages without memory */
	cr_assert_eq(em_snap_writer_region_pages(w, NULL, 1, &none, &err), -EINVAL);
	cr_assert(strstr(err.msg, "no memory given for present page 0"), "%s", err.msg);
	cr_assert_eq(em_snap_writer_region_pages(w, (void *)(uintptr_t)t.start[1], 2, &none, &err), 0,
		     "%s", err.msg);
	/* ended early: refused, and the image cannot be committed any more */
	cr_assert_eq(em_snap_writer_region_end(w, NULL, &err), -EINVAL);
	cr_assert(strstr(err.msg, "ended after 2 of its 4 pages"), "%s", err.msg);
	em_snap_writer_free(w);
	cr_assert_eq(count_entries(tdir), 0, "an uncommitted image left files in %s", tdir);
}
