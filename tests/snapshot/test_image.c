/* tests/snapshot/test_image.c — an image written from real memory reads back page by page and
 * field by field; page data is where FORMAT.md says (4096-aligned, readable with O_DIRECT); the
 * writer refuses regions out of order and leaves nothing behind when not committed. */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>

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

TestSuite(image, .init = setup, .fini = teardown, .timeout = 60);

Test(image, crc32c_known_answer)
{
	cr_assert_eq(em_snap_crc32c(0, "123456789", 9), 0xe3069283u, "CRC32C check value");
	/* continuing a checksum over pieces gives the checksum of the whole */
	cr_assert_eq(em_snap_crc32c(em_snap_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
	char big[4097];
	memset(big, 0xa5, sizeof(big));
	cr_assert_eq(em_snap_crc32c(0, big + 1, 4096),
		     em_snap_crc32c(em_snap_crc32c(0, big + 1, 3), big + 4, 4093), "unaligned start");
}

Test(image, pages_read_back_as_written)
{
	struct em_snap_image *img;
	struct em_err err = { 0 };

	write_tmpl(&t, image);
	cr_assert_eq(count_entries(tdir), 1, "only the image: no temporary file left");
	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_verify_data(img, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_region_count(img), NREGIONS);

	char *page = malloc(PG);
	uint64_t stored_total = 0;
	for (uint32_t i = 0; i < NREGIONS; i++) {
		const struct em_snap_region *r = em_snap_region(img, i);
		uint32_t stored = 0, zero = 0, absent = 0;

		cr_assert_eq(r->start, t.start[i]);
		cr_assert_eq(r->end, t.start[i] + (uint64_t)t.pages[i] * PG);
		for (uint32_t k = 0; k < t.pages[i]; k++) {
			uint64_t off;
			enum em_snap_page_state s = em_snap_page_at(img, i, k, &off);
			const char *mem = (const char *)(uintptr_t)r->start + (uint64_t)k * PG;

			switch (s) {
			case EM_SNAP_STORED:
				stored++;
				cr_assert_eq(off % PG, 0, "region %u page %u: offset %#lx aligned", i, k,
					     (unsigned long)off);
				file_read(image, page, PG, (off_t)off);
				cr_assert_eq(memcmp(page, mem, PG), 0, "region %u page %u: same bytes", i, k);
				cr_assert_eq(em_snap_check_pages(img, i, k, 1, page, &err), 0, "%s", err.msg);
				break;
			case EM_SNAP_ZERO:
				zero++;
				for (size_t b = 0; b < PG; b++)
					cr_assert_eq(mem[b], 0, "region %u page %u is zero in memory", i, k);
				cr_assert_eq(off, 0);
				break;
			case EM_SNAP_ABSENT:
				absent++;
				break;
			}
			if (i == 0)
				cr_assert_eq(s, r0_absent(k) ? EM_SNAP_ABSENT :
						r0_zero(k) ? EM_SNAP_ZERO : EM_SNAP_STORED, "page %u", k);
		}
		cr_assert_eq(stored, tmpl_stored(&t, (int)i), "region %u stored pages", i);
		cr_assert_eq(r->nr_stored, stored);
		cr_assert_eq(r->nr_zero, zero);
		cr_assert_eq(r->nr_absent, absent);
		stored_total += stored;
	}
	cr_assert_eq(em_snap_region(img, 1)->nr_zero, R1_PAGES / 2);
	cr_assert_eq(em_snap_region(img, 2)->nr_zero, 1);
	cr_assert_eq(em_snap_region(img, 3)->nr_absent, R3_PAGES);

	/* only stored pages take room: the page data is exactly them */
	const struct em_snap_header *h = em_snap_header(img);
	cr_assert_eq(h->data_off, PG);
	cr_assert_eq(h->data_size, stored_total * PG);
	struct stat st;
	cr_assert_eq(stat(image, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, h->file_size);
	cr_assert_lt(h->meta_size, 16 * 1024, "metadata stays small: %lu bytes",
		     (unsigned long)h->meta_size);
	free(page);
	em_snap_close(img);
}

Test(image, runs_cover_regions_and_stored_runs_are_contiguous)
{
	struct em_snap_image *img;
	struct em_err err = { 0 };

	write_tmpl(&t, image);
	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	for (uint32_t i = 0; i < NREGIONS; i++) {
		const struct em_snap_region *r = em_snap_region(img, i);
		struct em_snap_run run;
		uint32_t pos = 0;
		uint64_t next = r->start;

		while (em_snap_next_run(img, i, &pos, 16, &run)) {
			cr_assert_eq(run.vaddr, next, "runs are adjacent");
			cr_assert_leq(run.len, 16 * PG, "max_pages holds");
			cr_assert_eq(run.vaddr, r->start + (uint64_t)run.page * PG);
			for (uint32_t k = 0; k < run.len / PG; k++) {
				uint64_t off;

				cr_assert_eq(em_snap_page_at(img, i, run.page + k, &off), run.state);
				if (run.state == EM_SNAP_STORED)
					cr_assert_eq(off, run.file_off + (uint64_t)k * PG,
						     "a stored run is one read");
			}
			next += run.len;
		}
		cr_assert_eq(next, r->end, "region %u covered", i);
		cr_assert_eq(pos, (r->end - r->start) / PG);
	}
	/* region 1: 256 data pages then 256 zero pages: with no limit, two runs */
	struct em_snap_run run;
	uint32_t pos = 0;
	cr_assert_eq(em_snap_next_run(img, 1, &pos, 0, &run), 1);
	cr_assert_eq(run.state, EM_SNAP_STORED);
	cr_assert_eq(run.len, R1_PAGES / 2 * PG);
	cr_assert_eq(em_snap_next_run(img, 1, &pos, 0, &run), 1);
	cr_assert_eq(run.state, EM_SNAP_ZERO);
	cr_assert_eq(em_snap_next_run(img, 1, &pos, 0, &run), 0);
	cr_assert_eq(em_snap_next_run(img, NREGIONS, &pos, 0, &run), 0, "no such region");
	em_snap_close(img);
}

Test(image, metadata_round_trips)
{
	struct em_snap_image *img;
	struct em_err err = { 0 };
	struct em_snap_meta want = { 0 };

	write_tmpl(&t, image);
	fill_meta(&want, &t);
	struct em_snap_expect e = { t.build_id, t.build_id_len, t.release };
	cr_assert_eq(em_snap_open(image, &e, &img, &err), 0, "the expected binary and kernel: %s",
		     err.msg);
	const struct em_snap_meta *m = em_snap_meta(img);

	cr_assert_eq(m->arch, 62, "x86-64");
	cr_assert_eq(m->build_id_len, t.build_id_len);
	cr_assert_geq(m->build_id_len, 16, "a real build id (sha1: 20 bytes)");
	cr_assert_eq(memcmp(m->build_id, t.build_id, t.build_id_len), 0);
	cr_assert_str_eq(m->kernel_release, t.release);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	cr_assert_leq(m->created_ns, (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec);
	cr_assert_gt(m->created_ns, (uint64_t)(now.tv_sec - 60) * 1000000000ull);
	cr_assert_eq(m->ctx_size, 700);
	cr_assert_eq(memcmp(m->ctx, want.ctx, sizeof(m->ctx)), 0, "context bytes");
	cr_assert_eq(m->fs_base, 0x7f0000001234);
	cr_assert_eq(memcmp(&m->mm, &want.mm, sizeof(m->mm)), 0, "mm layout and auxv");
	cr_assert_gt(m->mm.auxv_size, 0);
	cr_assert_eq(m->sigmask, want.sigmask);

	/* the executable's identity, as stat gives it */
	cr_assert_eq(em_snap_file_count(img), 1, "the exe, shared by a region and an fd");
	const struct em_snap_file *f = em_snap_file(img, m->exe_file);
	cr_assert_not_null(f);
	cr_assert_str_eq(em_snap_string(img, f->path), t.exe);
	cr_assert_eq(f->ino, t.exe_st.st_ino);
	cr_assert_eq(f->dev_major, major(t.exe_st.st_dev));
	cr_assert_eq(f->dev_minor, minor(t.exe_st.st_dev));
	cr_assert_eq(f->size, (uint64_t)t.exe_st.st_size);
	cr_assert_eq(f->mtime_sec, t.exe_st.st_mtim.tv_sec);
	cr_assert_eq(f->mtime_nsec, (uint32_t)t.exe_st.st_mtim.tv_nsec);
	cr_assert_eq(f->mode, t.exe_st.st_mode);

	/* regions: protection, flags, names, backing */
	const struct em_snap_region *r = em_snap_region(img, 1);
	cr_assert_eq(r->prot, PROT_READ | PROT_WRITE);
	cr_assert_eq(r->flags, EM_SNAP_R_PRIVATE | EM_SNAP_R_ANON | EM_SNAP_R_HEAP | EM_SNAP_R_HUGEPAGE);
	cr_assert_str_eq(em_snap_string(img, r->name), "[heap]");
	cr_assert_eq(r->file, EM_SNAP_NONE);
	cr_assert_str_eq(em_snap_string(img, em_snap_region(img, 0)->name), "", "no name");
	cr_assert_eq(em_snap_region(img, 2)->prot, PROT_READ);
	cr_assert_eq(em_snap_region(img, 3)->flags & EM_SNAP_R_GROWSDOWN, EM_SNAP_R_GROWSDOWN);
	r = em_snap_region(img, 4);
	cr_assert_eq(r->file, m->exe_file);
	cr_assert_eq(r->file_off, 2 * PG);
	cr_assert_eq(r->flags, EM_SNAP_R_PRIVATE);

	/* fds */
	cr_assert_eq(em_snap_fd_count(img), 3);
	const struct em_snap_fd *fd = em_snap_fd_entry(img, 2);
	cr_assert_eq(fd->fd, 7);
	cr_assert_eq(fd->kind, EM_SNAP_FD_FILE);
	cr_assert_eq(fd->fd_flags, FD_CLOEXEC);
	cr_assert_eq(fd->pos, 4242);
	cr_assert_eq(fd->file, m->exe_file);
	cr_assert_str_eq(em_snap_string(img, fd->desc), t.exe);
	cr_assert_str_eq(em_snap_string(img, em_snap_fd_entry(img, 1)->desc), "pipe:[1234]");
	cr_assert_eq(em_snap_fd_entry(img, 1)->kind, EM_SNAP_FD_PIPE);
	cr_assert_eq(em_snap_fd_entry(img, 1)->file, EM_SNAP_NONE);
	cr_assert_null(em_snap_fd_entry(img, 3));

	/* signals */
	const struct em_snap_sigaction *sa = em_snap_sigaction(img, 2);
	cr_assert_eq(sa->handler, 0x401234);
	cr_assert_eq(sa->flags, 0x04000004);
	cr_assert_eq(sa->restorer, 0x405678);
	cr_assert_eq(sa->mask, 2);
	cr_assert_eq(em_snap_sigaction(img, 13)->handler, 1);
	cr_assert_eq(em_snap_sigaction(img, 64)->handler, 0, "SIG_DFL by default");
	cr_assert_null(em_snap_sigaction(img, 0));
	cr_assert_null(em_snap_sigaction(img, 65));
	em_snap_close(img);
}

Test(image, stored_pages_read_with_o_direct)
{
	struct em_snap_image *img;
	struct em_err err = { 0 };

	write_tmpl(&t, image);
	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_header(img)->data_off % PG, 0);
	cr_assert_eq(em_snap_header(img)->data_size % PG, 0);

	int fd = open(image, O_RDONLY | O_DIRECT | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open O_DIRECT: %s", strerror(errno));
	void *buf = NULL;
	cr_assert_eq(posix_memalign(&buf, PG, 16 * PG), 0);
	int reads = 0;
	for (uint32_t i = 0; i < NREGIONS; i++) {
		const struct em_snap_region *r = em_snap_region(img, i);
		struct em_snap_run run;
		uint32_t pos = 0;

		cr_assert_eq(r->data_off % PG, 0, "region %u data offset aligned", i);
		while (em_snap_next_run(img, i, &pos, 16, &run)) {
			if (run.state != EM_SNAP_STORED)
				continue;
			cr_assert_eq(run.file_off % PG, 0);
			ssize_t n = pread(fd, buf, run.len, (off_t)run.file_off);
			cr_assert_eq(n, (ssize_t)run.len, "O_DIRECT pread of %lu bytes at %#lx: %s",
				     (unsigned long)run.len, (unsigned long)run.file_off,
				     n < 0 ? strerror(errno) : "short");
			cr_assert_eq(memcmp(buf, (void *)(uintptr_t)run.vaddr, run.len), 0,
				     "region %u run at page %u", i, run.page);
			cr_assert_eq(em_snap_check_pages(img, i, run.page, (uint32_t)(run.len / PG), buf,
							 &err), 0, "%s", err.msg);
			reads++;
		}
	}
	cr_assert_gt(reads, 10);
	free(buf);
	close(fd);
	em_snap_close(img);
}

Test(image, check_pages_refuses_pages_that_are_not_stored)
{
	struct em_snap_image *img;
	struct em_err err = { 0 };
	char *page = calloc(1, PG);

	write_tmpl(&t, image);
	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_check_pages(img, 2, 0, 1, page, &err), -EINVAL, "a zero page");
	cr_assert(strstr(err.msg, "not stored"), "%s", err.msg);
	cr_assert_eq(em_snap_check_pages(img, 2, 0, 2, page, &err), -EINVAL, "past the region");
	cr_assert(strstr(err.msg, "out of range"), "%s", err.msg);
	free(page);
	em_snap_close(img);
}

Test(image, a_large_region_round_trips)
{
	/* 8 MB: more than one write batch (1024 iovecs) and one verify chunk; every other page data */
	const size_t n = 2048;
	struct em_snap_writer *w;
	struct em_snap_image *img;
	struct em_err err = { 0 };
	char *mem = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(mem, MAP_FAILED);
	for (size_t k = 0; k < n; k += 2)
		fill_page(mem + k * PG, 9, (uint32_t)k);
	cr_assert_eq(em_snap_writer_open(image, &w, &err), 0, "%s", err.msg);
	struct em_snap_region_spec r = { .start = (uintptr_t)mem, .end = (uintptr_t)mem + n * PG,
					 .prot = PROT_READ | PROT_WRITE,
					 .flags = EM_SNAP_R_PRIVATE | EM_SNAP_R_ANON,
					 .file = EM_SNAP_NONE, .mem = mem };
	cr_assert_eq(em_snap_writer_add_region(w, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_writer_commit(w, &err), 0, "%s", err.msg);
	em_snap_writer_free(w);
	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_verify_data(img, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_region(img, 0)->nr_stored, n / 2);
	cr_assert_eq(em_snap_region(img, 0)->nr_zero, n / 2);
	char *page = malloc(PG);
	for (uint32_t k = 0; k < n; k++) {
		uint64_t off;

		if (em_snap_page_at(img, 0, k, &off) != EM_SNAP_STORED)
			continue;
		file_read(image, page, PG, (off_t)off);
		cr_assert_eq(memcmp(page, mem + (size_t)k * PG, PG), 0, "page %u", k);
	}
	free(page);
	em_snap_close(img);
	munmap(mem, n * PG);
}

Test(image, writer_refuses_regions_out_of_order)
{
	struct em_snap_writer *w;
	struct em_err err = { 0 };
	struct em_snap_region_spec r = { .start = t.start[1], .end = t.start[1] + 4 * PG,
					 .prot = PROT_READ, .flags = EM_SNAP_R_PRIVATE,
					 .file = EM_SNAP_NONE,
					 .mem = (void *)(uintptr_t)t.start[1] };

	cr_assert_eq(em_snap_writer_open(image, &w, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_writer_add_region(w, &r, &err), 0, "%s", err.msg);
	r.start += 3 * PG; /* overlaps the last page */
	r.end += 3 * PG;
	cr_assert_eq(em_snap_writer_add_region(w, &r, &err), -EINVAL);
	cr_assert(strstr(err.msg, "address order without overlap"), "%s", err.msg);
	r.start = t.start[0];
	r.end = t.start[0] + PG;
	cr_assert_eq(em_snap_writer_add_region(w, &r, &err), -EINVAL, "below the previous one");
	r.start = t.start[2] + 1;
	cr_assert_eq(em_snap_writer_add_region(w, &r, &err), -EINVAL, "unaligned");
	cr_assert(strstr(err.msg, "page-aligned"), "%s", err.msg);
	r.start = t.start[2];
	r.end = t.start[2] + PG;
	r.file = 3;
	cr_assert_eq(em_snap_writer_add_region(w, &r, &err), -EINVAL, "no such file");
	r.file = EM_SNAP_NONE;
	r.mem = NULL;
	cr_assert_eq(em_snap_writer_add_region(w, &r, &err), -EINVAL, "present pages need memory");
	struct em_snap_sigaction sa = { 0 };
	cr_assert_eq(em_snap_writer_set_sigaction(w, 65, &sa, &err), -EINVAL);
	struct em_snap_fd fd = { .fd = 3, .kind = 99, .file = EM_SNAP_NONE };
	cr_assert_eq(em_snap_writer_add_fd(w, &fd, "x", &err), -EINVAL);
	em_snap_writer_free(w);
	cr_assert_eq(count_entries(tdir), 0, "an uncommitted image leaves no file");
}

Test(image, commit_replaces_an_old_image_whole)
{
	struct em_snap_image *img;
	struct em_err err = { 0 };

	{
		int fd = open(image, O_CREAT | O_WRONLY | O_TRUNC, 0600);
		cr_assert_geq(fd, 0);
		cr_assert_eq(write(fd, "old", 3), 3);
		close(fd);
	}
	assert_refused(image, NULL, ENOEXEC, "not an ember snapshot image");
	write_tmpl(&t, image);
	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	em_snap_close(img);
	cr_assert_eq(count_entries(tdir), 1);
	struct stat st;
	cr_assert_eq(stat(image, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "an image holds a template's secrets: owner only");
}

struct mem_note {
	uint8_t id[EM_SNAP_BUILD_ID_MAX];
	size_t len;
};

/* The main program's NT_GNU_BUILD_ID from its loaded PT_NOTE segments. */
static int main_build_id(struct dl_phdr_info *info, size_t size, void *data)
{
	struct mem_note *mn = data;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		size_t off = 0;

		if (ph->p_type != PT_NOTE)
			continue;
		while (off + sizeof(ElfW(Nhdr)) <= ph->p_memsz) {
			const ElfW(Nhdr) *n = (const void *)(p + off);
			size_t name = (n->n_namesz + 3) & ~3u, desc = (n->n_descsz + 3) & ~3u;

			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
			    !memcmp(p + off + sizeof(*n), "GNU", 4)) {
				memcpy(mn->id, p + off + sizeof(*n) + name, n->n_descsz);
				mn->len = n->n_descsz;
			}
			off += sizeof(*n) + name + desc;
		}
	}
	return 1; /* the first object is the main program */
}

Test(image, build_id_and_kernel_release)
{
	uint8_t id[EM_SNAP_BUILD_ID_MAX];
	size_t len = 0;
	struct em_err err = { 0 };
	char rel[EM_SNAP_RELEASE_MAX];
	struct utsname u;

	cr_assert_eq(em_snap_build_id("/proc/self/exe", id, sizeof(id), &len, &err), 0, "%s", err.msg);
	cr_assert_eq(len, 20, "GNU ld's default build id is a sha1");
	/* the same bytes as the note the loader mapped, found in memory */
	struct mem_note mn = { 0 };
	dl_iterate_phdr(main_build_id, &mn);
	cr_assert_eq(mn.len, len, "build id in memory");
	cr_assert_eq(memcmp(mn.id, id, len), 0);
	cr_assert_eq(em_snap_build_id("/bin/true", id, sizeof(id), &len, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_build_id("/proc/self/status", id, sizeof(id), &len, &err), -ENOEXEC);
	cr_assert(strstr(err.msg, "not an ELF file"), "%s", err.msg);
	cr_assert_eq(em_snap_build_id("/nonexistent", id, sizeof(id), &len, &err), -ENOENT);
	cr_assert_eq(em_snap_build_id("/proc/self/exe", id, 4, &len, &err), -EOVERFLOW);

	cr_assert_eq(em_snap_kernel_release(rel, sizeof(rel), &err), 0, "%s", err.msg);
	cr_assert_eq(uname(&u), 0);
	cr_assert_str_eq(rel, u.release);
	cr_assert_eq(em_snap_kernel_release(rel, 3, &err), -ENAMETOOLONG);
}
