/* runtime/cli/snapshot.c — `ember snapshot create|restore NAME` (through a running `ember serve`:
 * dump a function's template to its image now, or replace its template by a restore from it;
 * fn.c) and `ember snapshot inspect|verify IMAGE`: an operator's view of a template
 * image (snapshot/FORMAT.md). inspect prints the header and a summary of the metadata after the
 * checks em_snap_open makes; verify also reads every stored page and checks its checksum, and
 * with --exe / --this-kernel refuses an image of another binary or kernel. Both exit 1 with the
 * failing check's message. */
#include "runtime/cli/cli.h"
#include "snapshot/image.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void print_hex(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}

static const char *fd_kind(uint32_t k)
{
	static const char *const names[] = { "?", "file", "dir", "chr", "pipe", "socket", "anon",
					     "other" };

	return k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

static void print_image(const struct em_snap_image *img)
{
	const struct em_snap_header *h = em_snap_header(img);
	const struct em_snap_meta *m = em_snap_meta(img);
	uint64_t stored = 0, zero = 0, absent = 0;

	printf("version      %u\n", h->version);
	printf("size         %" PRIu64 " bytes (page data %" PRIu64 " at %" PRIu64
	       ", metadata %" PRIu64 " at %" PRIu64 ")\n",
	       h->file_size, h->data_size, h->data_off, h->meta_size, h->meta_off);
	printf("build id     ");
	print_hex(m->build_id, m->build_id_len);
	printf("\nkernel       %s\n", m->kernel_release);
	if (m->exe_file != EM_SNAP_NONE)
		printf("executable   %s\n", em_snap_string(img, em_snap_file(img, m->exe_file)->path));
	printf("context      %u bytes, fs base %#" PRIx64 "\n", m->ctx_size, m->fs_base);
	printf("brk          %#" PRIx64 "-%#" PRIx64 ", stack %#" PRIx64 ", auxv %u bytes\n",
	       m->mm.start_brk, m->mm.brk, m->mm.start_stack, m->mm.auxv_size);

	printf("regions      %u\n", em_snap_region_count(img));
	for (uint32_t i = 0; i < em_snap_region_count(img); i++) {
		const struct em_snap_region *r = em_snap_region(img, i);
		const char *name = em_snap_string(img, r->name);

		if (!*name && r->file != EM_SNAP_NONE)
			name = em_snap_string(img, em_snap_file(img, r->file)->path);
		printf("  %3u %016" PRIx64 "-%016" PRIx64 " %c%c%c%c %7u stored %7u zero %7u absent  %s"
		       "%s\n", i, r->start, r->end, r->prot & 1 ? 'r' : '-', r->prot & 2 ? 'w' : '-',
		       r->prot & 4 ? 'x' : '-', r->flags & EM_SNAP_R_PRIVATE ? 'p' : 's', r->nr_stored,
		       r->nr_zero, r->nr_absent, name,
		       r->flags & EM_SNAP_R_HUGEPAGE ? " (thp)" : "");
		stored += r->nr_stored;
		zero += r->nr_zero;
		absent += r->nr_absent;
	}
	printf("pages        %" PRIu64 " stored, %" PRIu64 " zero, %" PRIu64 " absent\n", stored,
	       zero, absent);

	printf("files        %u\n", em_snap_file_count(img));
	for (uint32_t i = 0; i < em_snap_file_count(img); i++) {
		const struct em_snap_file *f = em_snap_file(img, i);

		printf("  %3u %s (dev %u:%u ino %" PRIu64 " size %" PRIu64 " mtime %" PRId64 ".%09u)\n",
		       i, em_snap_string(img, f->path), f->dev_major, f->dev_minor, f->ino, f->size,
		       f->mtime_sec, f->mtime_nsec);
	}
	printf("fds          %u\n", em_snap_fd_count(img));
	for (uint32_t i = 0; i < em_snap_fd_count(img); i++) {
		const struct em_snap_fd *f = em_snap_fd_entry(img, i);

		printf("  %3d %-6s flags %#o%s %s\n", f->fd, fd_kind(f->kind), f->status_flags,
		       f->fd_flags & 1 ? " cloexec" : "", em_snap_string(img, f->desc));
	}
	int handled = 0;
	for (int s = 1; s <= EM_SNAP_NSIG; s++)
		handled += em_snap_sigaction(img, s)->handler != 0;
	printf("signals      %d not default, blocked mask %#" PRIx64 "\n", handled, m->sigmask);
}

int cmd_snapshot(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	static const struct option opts[] = { { "exe", required_argument, NULL, 'e' },
					      { "this-kernel", no_argument, NULL, 'k' }, { 0 } };
	uint8_t build_id[EM_SNAP_BUILD_ID_MAX];
	char release[EM_SNAP_RELEASE_MAX];
	struct em_snap_expect expect = { 0 };
	struct em_snap_image *img;
	int c, ret;

	if (argc >= 2 && (!strcmp(argv[1], "create") || !strcmp(argv[1], "restore")))
		return cmd_fn_snapshot(cli, argv[1], argc - 1, argv + 1);
	if (argc < 2 || (strcmp(argv[1], "inspect") && strcmp(argv[1], "verify")))
		return em_err_msg(err, EINVAL, "expected create, restore, inspect or verify (see "
				  "ember snapshot --help)");
	bool verify = !strcmp(argv[1], "verify");
	argc--;
	argv++;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'e' && verify) {
			ret = em_snap_build_id(optarg, build_id, sizeof(build_id),
					       &expect.build_id_len, err);
			if (ret < 0)
				return ret;
			expect.build_id = build_id;
		} else if (c == 'k' && verify) {
			ret = em_snap_kernel_release(release, sizeof(release), err);
			if (ret < 0)
				return ret;
			expect.kernel_release = release;
		} else {
			return em_err_msg(err, EINVAL, "invalid option (see ember snapshot --help)");
		}
	}
	ret = cli_positional(argc, argv, optind, 1, "IMAGE", err);
	if (ret < 0)
		return ret;
	const char *path = argv[optind];
	ret = em_snap_open(path, &expect, &img, err);
	if (ret < 0)
		return ret;
	if (verify) {
		ret = em_snap_verify_data(img, err);
		if (ret == 0)
			printf("%s: ok (%" PRIu64 " bytes of page data checked)\n", path,
			       em_snap_header(img)->data_size);
	} else {
		print_image(img);
	}
	em_snap_close(img);
	return ret;
}
