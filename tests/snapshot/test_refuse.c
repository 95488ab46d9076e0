/* tests/snapshot/test_refuse.c — every way an image can be wrong is refused, by the check that
 * owns it and with a message that names it: bad magic, another version, a flipped byte in the
 * header, metadata or page data, truncation anywhere, inconsistent metadata (re-sealed so only the
 * consistency check can see it), another binary, another kernel. */
#include <errno.h>

#include "helpers.h"

static struct tmpl t;

static void setup(void)
{
	tdir_init();
	tmpl_init(&t);
	write_tmpl(&t, image);
}

static void teardown(void)
{
	tmpl_fini(&t);
	tdir_fini();
}

TestSuite(refuse, .init = setup, .fini = teardown, .timeout = 60);

Test(refuse, bad_magic)
{
	flip_byte(image, 3);
	assert_refused(image, NULL, ENOEXEC, "not an ember snapshot image");
}

Test(refuse, not_an_image_at_all)
{
	char other[160];

	snprintf(other, sizeof(other), "%s/elf", tdir);
	int in = open("/bin/true", O_RDONLY), out = open(other, O_CREAT | O_WRONLY, 0600);
	char buf[8192];
	ssize_t n = read(in, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	cr_assert_eq(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
	assert_refused(other, NULL, ENOEXEC, "not an ember snapshot image (bad magic)");
	assert_refused(tdir, NULL, EINVAL, "not a regular file");
	snprintf(other, sizeof(other), "%s/missing", tdir);
	assert_refused(other, NULL, ENOENT, "open");
}

Test(refuse, another_version)
{
	struct em_snap_header h = read_header(image);

	h.version = 2;
	file_write(image, &h, sizeof(h), 0);
	assert_refused(image, NULL, EPROTONOSUPPORT, "image version 2, this ember reads 1");
	/* with its checksum made right, the version check still catches it (and only it can) */
	reseal_header(image, h);
	assert_refused(image, NULL, EPROTONOSUPPORT, "image version 2, this ember reads 1");
}

Test(refuse, flipped_byte_in_the_header)
{
	const struct em_snap_header h = read_header(image);
	/* every byte after the version: sizes, offsets, checksums, reserved */
	for (off_t off = 12; off < (off_t)sizeof(h); off++) {
		file_write(image, &h, sizeof(h), 0);
		flip_byte(image, off);
		assert_refused(image, NULL, EBADMSG, "header checksum mismatch");
	}
	file_write(image, &h, sizeof(h), 0);
	struct em_snap_image *img;
	struct em_err err = { 0 };
	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "restored: %s", err.msg);
	em_snap_close(img);
}

Test(refuse, flipped_byte_in_the_metadata)
{
	const struct em_snap_header h = read_header(image);
	const off_t at[] = { 0, 100, 1000, 1900, (off_t)h.meta_size / 2, (off_t)h.meta_size - 1 };

	for (size_t i = 0; i < EM_ARRAY_SIZE(at); i++) {
		flip_byte(image, (off_t)h.meta_off + at[i]);
		assert_refused(image, NULL, EBADMSG, "metadata checksum mismatch");
		flip_byte(image, (off_t)h.meta_off + at[i]);
	}
}

Test(refuse, flipped_byte_in_page_data_fails_that_region)
{
	struct em_snap_image *img;
	struct em_err err = { 0 };
	uint64_t off;

	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_page_at(img, 1, 100, &off), EM_SNAP_STORED);
	flip_byte(image, (off_t)off + 1234);
	/* opening does not read page data: a restore checks what it reads, verify checks all */
	cr_assert_eq(em_snap_verify_data(img, &err), -EBADMSG);
	cr_assert(strstr(err.msg, "region 1 ("), "names the region: %s", err.msg);
	cr_assert(strstr(err.msg, "[heap]"), "%s", err.msg);
	cr_assert(strstr(err.msg, "page 100 "), "names the page: %s", err.msg);
	cr_assert(strstr(err.msg, "data checksum mismatch"), "%s", err.msg);
	cr_assert(strstr(err.msg, image), "%s", err.msg);

	char *page = malloc(PG);
	file_read(image, page, PG, (off_t)off);
	cr_assert_eq(em_snap_check_pages(img, 1, 100, 1, page, &err), -EBADMSG, "on demand too");
	file_read(image, page, PG, (off_t)off - PG);
	cr_assert_eq(em_snap_check_pages(img, 1, 99, 1, page, &err), 0, "its neighbour is fine: %s",
		     err.msg);
	free(page);
	em_snap_close(img);

	/* the last byte of the page data, in the last region's last page */
	flip_byte(image, (off_t)off + 1234);
	const struct em_snap_header h = read_header(image);
	flip_byte(image, (off_t)(h.data_off + h.data_size - 1));
	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_verify_data(img, &err), -EBADMSG);
	cr_assert(strstr(err.msg, "region 4 ("), "%s", err.msg);
	cr_assert(strstr(err.msg, "page 15 "), "%s", err.msg);
	em_snap_close(img);
}

Test(refuse, truncated_anywhere)
{
	const struct em_snap_header h = read_header(image);
	/* descending: truncate(2) to a larger size would extend the file with zeros */
	const off_t at[] = { (off_t)h.file_size - 1, (off_t)h.meta_off + 100, (off_t)h.meta_off,
			     PG + 3 * PG, PG, (off_t)sizeof(h), 50, 10, 4, 0 };

	for (size_t i = 0; i < EM_ARRAY_SIZE(at); i++) {
		cr_assert_eq(truncate(image, at[i]), 0);
		assert_refused(image, NULL, EINVAL, "truncated image");
	}
}

Test(refuse, truncated_after_open_is_caught_by_verify)
{
	struct em_snap_image *img;
	struct em_err err = { 0 };

	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	cr_assert_eq(truncate(image, PG + 10 * PG), 0);
	cr_assert_eq(em_snap_verify_data(img, &err), -EINVAL);
	cr_assert(strstr(err.msg, "truncated"), "%s", err.msg);
	em_snap_close(img);
}

Test(refuse, bytes_appended)
{
	int fd = open(image, O_WRONLY | O_APPEND);

	cr_assert_eq(write(fd, "x", 1), 1);
	close(fd);
	assert_refused(image, NULL, EINVAL, "inconsistent size");
}

Test(refuse, another_binary)
{
	uint8_t other[EM_SNAP_BUILD_ID_MAX];

	memcpy(other, t.build_id, t.build_id_len);
	other[5] ^= 1;
	struct em_snap_expect e = { .build_id = other, .build_id_len = t.build_id_len };
	assert_refused(image, &e, ESTALE, "foreign image: dumped for a binary with build id");
	e.build_id_len = t.build_id_len - 1; /* a prefix is not the same id */
	memcpy(other, t.build_id, t.build_id_len);
	assert_refused(image, &e, ESTALE, "foreign image");
}

Test(refuse, another_kernel)
{
	struct em_snap_expect e = { .kernel_release = "6.1.0-99-amd64" };
	char want[160];

	snprintf(want, sizeof(want), "foreign image: dumped on kernel %s, this is 6.1.0-99-amd64",
		 t.release);
	assert_refused(image, &e, ESTALE, want);
	/* both right: opens */
	struct em_snap_image *img;
	struct em_err err = { 0 };
	e = (struct em_snap_expect){ t.build_id, t.build_id_len, t.release };
	cr_assert_eq(em_snap_open(image, &e, &img, &err), 0, "%s", err.msg);
	em_snap_close(img);
}

/* --- inconsistent metadata, re-sealed: only the consistency check can refuse these --------- */

static void overlap(char *m, size_t len)
{
	(void)len;
	meta_region(m, 1)->start = meta_region(m, 0)->end - PG;
}

static void unaligned_data(char *m, size_t len)
{
	(void)len;
	meta_region(m, 1)->data_off += 512;
}

static void page_map_out_of_range(char *m, size_t len)
{
	(void)len;
	meta_region(m, 4)->page_first += 1;
}

static void bad_slot(char *m, size_t len)
{
	struct em_snap_meta *meta = (struct em_snap_meta *)m;
	struct em_snap_page *p = (struct em_snap_page *)(m + meta->pages.off);

	(void)len;
	p[meta_region(m, 1)->page_first + 3].slot = 100000;
}

static void bad_counts(char *m, size_t len)
{
	(void)len;
	meta_region(m, 0)->nr_zero++;
}

static void table_out_of_range(char *m, size_t len)
{
	((struct em_snap_meta *)m)->fds.count = (uint32_t)len;
}

static void bad_entsize(char *m, size_t len)
{
	(void)len;
	((struct em_snap_meta *)m)->regions.entsize = 72;
}

static void string_out_of_range(char *m, size_t len)
{
	(void)len;
	meta_region(m, 1)->name = 1u << 20;
}

static void unterminated_release(char *m, size_t len)
{
	(void)len;
	memset(((struct em_snap_meta *)m)->kernel_release, 'x', EM_SNAP_RELEASE_MAX);
}

static void data_shifted(char *m, size_t len)
{
	(void)len;
	/* region 1's first zero page becomes a stored one (counts kept right): the regions after it
	 * no longer start their data where the image says */
	struct em_snap_meta *meta = (struct em_snap_meta *)m;
	struct em_snap_page *p = (struct em_snap_page *)(m + meta->pages.off);
	struct em_snap_region *r = meta_region(m, 1);
	p[r->page_first + r->nr_stored].slot = r->nr_stored;
	r->nr_stored++;
	r->nr_zero--;
}

Test(refuse, inconsistent_metadata)
{
	const struct {
		void (*edit)(char *, size_t);
		const char *what;
	} cases[] = {
		{ overlap, "overlaps or precedes region 0" },
		{ unaligned_data, "not aligned to 4096" },
		{ page_map_out_of_range, "page map entries" },
		{ bad_slot, "page 3 has slot 0x186a0" },
		{ bad_counts, "counts" },
		{ table_out_of_range, "fd table" },
		{ bad_entsize, "region entries of 72 bytes" },
		{ string_out_of_range, "name or file out of range" },
		{ unterminated_release, "unterminated release" },
		{ data_shifted, "region 2 (" },
	};
	const struct em_snap_header h = read_header(image);
	char *orig = malloc(h.meta_size);

	file_read(image, orig, h.meta_size, (off_t)h.meta_off);
	for (size_t i = 0; i < EM_ARRAY_SIZE(cases); i++) {
		file_write(image, orig, h.meta_size, (off_t)h.meta_off);
		edit_meta(image, cases[i].edit);
		assert_refused(image, NULL, EINVAL, "inconsistent metadata");
		assert_refused(image, NULL, EINVAL, cases[i].what);
	}
	free(orig);
}

Test(refuse, inconsistent_header_layout)
{
	struct em_snap_header h = read_header(image), o = h;

	h.data_off = PG + 512;
	reseal_header(image, h);
	assert_refused(image, NULL, EINVAL, "unaligned page data");
	h = o;
	h.data_size -= PG;
	h.meta_off -= PG;
	h.file_size -= PG; /* consistent sizes, but the file is a page longer */
	reseal_header(image, h);
	assert_refused(image, NULL, EINVAL, "inconsistent size");
	h = o;
	h.meta_off += PG;
	reseal_header(image, h);
	assert_refused(image, NULL, EINVAL, "inconsistent layout");
	h = o;
	h.header_size = 128;
	reseal_header(image, h);
	assert_refused(image, NULL, EINVAL, "inconsistent header: size 128");
	h = o;
	h.page_size = 65536;
	reseal_header(image, h);
	assert_refused(image, NULL, EINVAL, "page size 65536");
}
