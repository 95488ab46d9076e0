/* tests/snapshot/test_fill.c — the eager fill engine (snapshot/fill.c): an image written from real
 * memory fills fresh mappings byte for byte with every option combination; a corrupted stored page
 * is caught with verify (naming region and page) and passes unnoticed without; an image truncated
 * after open is an error, not a hang; no fd or file is left behind. */
#include <errno.h>

#include "helpers.h"
#include "snapshot/fill.h"

static struct tmpl t;
static int fds_before;

static void setup(void)
{
	tdir_init();
	tmpl_init(&t);
	fds_before = count_entries("/proc/self/fd");
}

static void teardown(void)
{
	tmpl_fini(&t);
	cr_assert_eq(count_entries("/proc/self/fd"), fds_before, "an fd was left open");
	tdir_fini();
}

TestSuite(fill, .init = setup, .fini = teardown, .timeout = 120);

static char *map_region(uint32_t pages)
{
	char *p = mmap(NULL, (size_t)pages * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	return p;
}

static struct em_snap_image *open_image(void)
{
	struct em_snap_image *img;
	struct em_err err = { 0 };

	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	return img;
}

static bool resident(const char *p)
{
	unsigned char v;

	cr_assert_eq(mincore((void *)p, PG, &v), 0);
	return v & 1;
}

/* dst holds region i as the template had it: stored pages equal, zero and absent pages zero. */
static void assert_region(struct em_snap_image *img, uint32_t i, const char *dst, const char *what)
{
	static const char zero[PG];

	for (uint32_t k = 0; k < t.pages[i]; k++) {
		const char *src = (const char *)(uintptr_t)t.start[i] + (size_t)k * PG;
		enum em_snap_page_state s = em_snap_page_at(img, i, k, NULL);

		if (s == EM_SNAP_STORED)
			cr_assert(!memcmp(dst + (size_t)k * PG, src, PG), "%s: region %u page %u "
				  "differs from the source", what, i, k);
		else
			cr_assert(!memcmp(dst + (size_t)k * PG, zero, PG), "%s: region %u page %u "
				  "(%s) is not zero", what, i, k, s == EM_SNAP_ZERO ? "zero" : "absent");
	}
}

static void assert_absent_not_resident(struct em_snap_image *img, uint32_t i, const char *dst,
				       const char *what)
{
	for (uint32_t k = 0; k < t.pages[i]; k++)
		if (em_snap_page_at(img, i, k, NULL) == EM_SNAP_ABSENT)
			cr_assert(!resident(dst + (size_t)k * PG), "%s: absent page %u of region %u "
				  "was faulted in", what, k, i);
}

Test(fill, every_option_combination_restores_the_source)
{
	write_tmpl(&t, image);
	struct em_snap_image *img = open_image();
	static const unsigned qds[] = { 16, 64 };
	static const size_t reads[] = { PG, 1u << 20 };
	/* mode: 0 plain, 1 populate, 2 THP, 3 THP + populate */
	int combos = 0;

	for (int direct = 0; direct < 2; direct++)
	for (int verify = 0; verify < 2; verify++)
	for (int mode = 0; mode < 4; mode++)
	for (size_t q = 0; q < EM_ARRAY_SIZE(qds); q++)
	for (size_t m = 0; m < EM_ARRAY_SIZE(reads); m++) {
		struct em_snap_fill_opts o = {
			.queue_depth = qds[q], .max_read = reads[m], .direct = direct,
			.verify = verify, .populate = mode & 1, .thp = mode & 2,
		};
		char what[128];
		snprintf(what, sizeof(what), "direct=%d verify=%d populate=%d thp=%d qd=%u read=%zu",
			 direct, verify, mode & 1, !!(mode & 2), qds[q], reads[m]);
		for (uint32_t i = 0; i < NREGIONS; i++) {
			struct em_snap_fill_stats st = { 0 };
			struct em_err err = { 0 };
			char *dst = map_region(t.pages[i]);
			uint32_t stored = tmpl_stored(&t, (int)i);

			cr_assert_eq(em_snap_fill_region(img, i, dst, &o, &st, &err), 0, "%s: %s",
				     what, err.msg);
			/* residency first: comparing reads absent pages in (as the zero page) */
			if (!o.thp)
				assert_absent_not_resident(img, i, dst, what);
			assert_region(img, i, dst, what);
			cr_assert_eq(st.bytes_read, (uint64_t)stored * PG, "%s", what);
			cr_assert_eq(st.pages_verified, verify ? stored : 0, "%s", what);
			/* runs are cut at max_read: at least one read per max_read bytes */
			cr_assert_geq(st.reads, (st.bytes_read + reads[m] - 1) / reads[m], "%s", what);
			munmap(dst, (size_t)t.pages[i] * PG);
		}
		combos++;
	}
	cr_assert_eq(combos, 64);
	em_snap_close(img);
}

Test(fill, populate_faults_in_present_pages_only)
{
	write_tmpl(&t, image);
	struct em_snap_image *img = open_image();
	struct em_snap_fill_opts o = { .populate = true };
	struct em_err err = { 0 };
	char *dst = map_region(R0_PAGES);

	cr_assert_eq(em_snap_fill_region(img, 0, dst, &o, NULL, &err), 0, "%s", err.msg);
	for (uint32_t k = 0; k < R0_PAGES; k++)
		cr_assert_eq(resident(dst + (size_t)k * PG), !r0_absent(k),
			     "page %u (%s) resident: %d", k, r0_absent(k) ? "absent" : "present",
			     resident(dst + (size_t)k * PG));
	munmap(dst, R0_PAGES * PG);
	em_snap_close(img);
}

struct dsts {
	char *p[NREGIONS];
};

static void *dst_of(void *arg, uint32_t i, const struct em_snap_region *r)
{
	struct dsts *d = arg;

	(void)r;
	return i == 2 ? NULL : d->p[i]; /* region 2 skipped */
}

Test(fill, fill_all_uses_one_ring_for_every_region)
{
	write_tmpl(&t, image);
	struct em_snap_image *img = open_image();
	struct em_snap_fill_opts o = { .direct = true, .verify = true, .populate = true };
	struct em_snap_fill_stats st = { 0 };
	struct em_err err = { 0 };
	struct dsts d;
	uint64_t stored = 0;

	for (uint32_t i = 0; i < NREGIONS; i++) {
		d.p[i] = map_region(t.pages[i]);
		stored += tmpl_stored(&t, (int)i);
	}
	cr_assert_eq(em_snap_fill_all(img, dst_of, &d, &o, &st, &err), 0, "%s", err.msg);
	for (uint32_t i = 0; i < NREGIONS; i++)
		if (i != 2)
			assert_region(img, i, d.p[i], "fill_all");
	cr_assert_eq(st.bytes_read, stored * PG);
	cr_assert_eq(st.pages_verified, stored);
	cr_assert_gt(st.ns, 0);
	for (uint32_t i = 0; i < NREGIONS; i++)
		munmap(d.p[i], (size_t)t.pages[i] * PG);
	em_snap_close(img);
}

/* Flip one byte of region 1's ([heap]) stored page 5 in the image file. */
static void corrupt_heap_page(struct em_snap_image *img)
{
	uint64_t off;

	cr_assert_eq(em_snap_page_at(img, 1, 5, &off), EM_SNAP_STORED);
	flip_byte(image, (off_t)off + 100);
}

Test(fill, a_corrupted_page_is_caught_by_verify_only)
{
	write_tmpl(&t, image);
	struct em_snap_image *img = open_image();
	char *heap = (char *)(uintptr_t)t.start[1];

	corrupt_heap_page(img);
	for (int direct = 0; direct < 2; direct++) {
		struct em_snap_fill_opts o = { .verify = true, .direct = direct };
		struct em_err err = { 0 };
		char *dst = map_region(R1_PAGES);
		int ret = em_snap_fill_region(img, 1, dst, &o, NULL, &err);

		cr_assert_eq(ret, -EBADMSG, "direct=%d: verify must refuse, got %d: %s", direct, ret,
			     err.msg);
		cr_assert(strstr(err.msg, "region 1"), "names the region: %s", err.msg);
		cr_assert(strstr(err.msg, "[heap]"), "names the region: %s", err.msg);
		cr_assert(strstr(err.msg, "page 5 "), "names the page: %s", err.msg);
		cr_assert(strstr(err.msg, "checksum mismatch"), "%s", err.msg);
		munmap(dst, R1_PAGES * PG);

		/* without verify the same fill succeeds, and the restored page is wrong */
		o.verify = false;
		dst = map_region(R1_PAGES);
		cr_assert_eq(em_snap_fill_region(img, 1, dst, &o, NULL, &err), 0, "%s", err.msg);
		cr_assert_neq(dst[5 * PG + 100], heap[5 * PG + 100], "the flipped byte was restored");
		cr_assert(!memcmp(dst, heap, 5 * PG + 100), "pages before it are intact");
		munmap(dst, R1_PAGES * PG);
	}
	em_snap_close(img);
}

Test(fill, an_image_truncated_after_open_is_an_error_not_a_hang)
{
	write_tmpl(&t, image);
	struct em_snap_image *img = open_image();
	uint64_t off;

	/* cut the file inside region 1's page data: page 10 of the heap onwards is gone */
	cr_assert_eq(em_snap_page_at(img, 1, 10, &off), EM_SNAP_STORED);
	cr_assert_eq(truncate(image, (off_t)off), 0);
	for (int direct = 0; direct < 2; direct++)
	for (int m = 0; m < 2; m++) {
		struct em_snap_fill_opts o = { .direct = direct, .max_read = m ? 1u << 20 : PG,
					       .queue_depth = 16 };
		struct em_err err = { 0 };
		char *dst = map_region(R1_PAGES);
		int ret = em_snap_fill_region(img, 1, dst, &o, NULL, &err);

		cr_assert_eq(ret, -ENODATA, "direct=%d read=%zu: got %d: %s", direct, o.max_read,
			     ret, err.msg);
		cr_assert(strstr(err.msg, "region 1") && strstr(err.msg, "[heap]"), "%s", err.msg);
		cr_assert(strstr(err.msg, "ends inside its page data"), "%s", err.msg);
		cr_assert(strstr(err.msg, image), "names the image: %s", err.msg);
		munmap(dst, R1_PAGES * PG);
	}
	/* region 0 lies before the cut: it still fills */
	struct em_err err = { 0 };
	char *dst = map_region(R0_PAGES);
	cr_assert_eq(em_snap_fill_region(img, 0, dst, NULL, NULL, &err), 0, "%s", err.msg);
	assert_region(img, 0, dst, "before the cut");
	munmap(dst, R0_PAGES * PG);
	em_snap_close(img);
}

Test(fill, bad_options_and_destinations_are_refused)
{
	write_tmpl(&t, image);
	struct em_snap_image *img = open_image();
	struct em_err err = { 0 };
	char *dst = map_region(R0_PAGES + 1);

	struct em_snap_fill_opts o = { .max_read = 1000 };
	cr_assert_eq(em_snap_fill_region(img, 0, dst, &o, NULL, &err), -EINVAL);
	cr_assert(strstr(err.msg, "multiple of 4096"), "%s", err.msg);
	o = (struct em_snap_fill_opts){ .queue_depth = 100000 };
	cr_assert_eq(em_snap_fill_region(img, 0, dst, &o, NULL, &err), -EINVAL);
	o = (struct em_snap_fill_opts){ .direct = true };
	cr_assert_eq(em_snap_fill_region(img, 0, dst + 8, &o, NULL, &err), -EINVAL);
	cr_assert(strstr(err.msg, "4096-aligned"), "%s", err.msg);
	cr_assert_eq(em_snap_fill_region(img, NREGIONS, dst, NULL, NULL, &err), -EINVAL);
	cr_assert(strstr(err.msg, "no region 5"), "%s", err.msg);
	munmap(dst, (R0_PAGES + 1) * PG);
	em_snap_close(img);
}
