/* snapshot/restore/main.c — ember-restore's phase 1 (snapshot/restorer.h has the contract): parse
 * the options, open and verify the image, check that the sandbox holds the very files the image
 * maps or keeps open, and plan phase 2; all with libc on the original stack. Every refusal is an
 * EMBER_INIT_ERROR on the channel naming the check, and exit 1. */
#include "snapshot/restore/restore.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sdk/c/ember_proto.h"

/* Phase 2's stack: the original stack is unmapped with the rest of the old address space. */
static char scratch_stack[1 << 20] __attribute__((aligned(64)));
static struct plan plan;

uint64_t restore_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* JSON string body of s into out (cap bytes), escaped. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s && n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	return n;
}

noreturn void restore_fail(const char *check, const char *fmt, ...)
{
	/* static: phase 2 may fail deep in its scratch stack; one failure per process */
	static char msg[2048], esc[4200], json[4400];
	struct ember_frame_hdr h = { .magic = EMBER_PROTO_MAGIC, .version = EMBER_PROTO_VERSION,
				     .type = EMBER_INIT_ERROR };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_escape(esc, sizeof(esc), msg);
	int n = snprintf(json, sizeof(json), "{\"errorType\":\"Restore.%s\",\"errorMessage\":\"%s\"}",
			 check, esc);
	h.len = (uint64_t)n;
	struct iovec iov[2] = { { &h, sizeof(h) }, { json, (size_t)n } };
	if (writev(CHANNEL_FD, iov, 2) < 0) {
		/* the host is gone: the log is all there is */
	}
	dprintf(2, "ember-restore: Restore.%s: %s\n", check, msg);
	_exit(1);
}

static void usage_fail(const char *arg)
{
	restore_fail("Usage", "unknown argument \"%s\" (options: --image-fd=N --mode=eager|mmap|lazy "
		     "--direct --verify --uffd-dev-fd=N --thp=auto|always|never --no-io-uring --timing)", arg);
}

static void parse_args(struct plan *p, int argc, char **argv)
{
	p->image_fd = 4;
	p->uffd_dev_fd = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strncmp(a, "--image-fd=", 11))
			p->image_fd = atoi(a + 11);
		else if (!strcmp(a, "--mode=eager"))
			p->mode = MODE_EAGER;
		else if (!strcmp(a, "--mode=mmap"))
			p->mode = MODE_MMAP;
		else if (!strcmp(a, "--mode=lazy"))
			p->mode = MODE_LAZY;
		else if (!strcmp(a, "--direct"))
			p->direct = true;
		else if (!strcmp(a, "--verify"))
			p->verify = true;
		else if (!strcmp(a, "--no-io-uring"))
			p->no_uring = true;
		else if (!strcmp(a, "--timing"))
			p->timing = true;
		else if (!strncmp(a, "--uffd-dev-fd=", 14))
			p->uffd_dev_fd = atoi(a + 14);
		else if (!strcmp(a, "--thp=auto"))
			p->thp = THP_AUTO;
		else if (!strcmp(a, "--thp=always"))
			p->thp = THP_ALWAYS;
		else if (!strcmp(a, "--thp=never"))
			p->thp = THP_NEVER;
		else
			usage_fail(a);
	}
	if (p->mode == MODE_LAZY && p->uffd_dev_fd < 0)
		restore_fail("Usage", "--mode=lazy needs --uffd-dev-fd (the host's open /dev/userfaultfd)");
}

static void check_image(struct plan *p)
{
	struct em_err err = { 0 };
	char release[EM_SNAP_RELEASE_MAX];
	struct em_snap_expect expect = { 0 };
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", p->image_fd);
	p->image_path = strdup(path);
	if (em_snap_kernel_release(release, sizeof(release), &err) < 0)
		restore_fail("Kernel", "%s", err.msg);
	expect.kernel_release = release;
	/* by fd: the image is root's, mode 0600, and the sandbox's uid may not open it again */
	int fd = fcntl(p->image_fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		restore_fail("Image", "image on fd %d: %s", p->image_fd, strerror(errno));
	int ret = em_snap_open_fd(fd, path, &expect, &p->img, &err);
	if (ret == -ESTALE)
		restore_fail("Kernel", "%s", err.msg);
	if (ret < 0)
		restore_fail("Image", "image on fd %d: %s", p->image_fd, err.msg);

	const struct em_snap_meta *m = em_snap_meta(p->img);
	if (m->arch != 62)
		restore_fail("Image", "image on fd %d: arch %u, this restorer is x86-64", p->image_fd,
			     m->arch);
	if (m->ctx_size != sizeof(struct em_snap_ctx))
		restore_fail("Image", "image on fd %d: register context of %u bytes, expected %zu",
			     p->image_fd, m->ctx_size, sizeof(struct em_snap_ctx));
	memcpy(&p->ctx, m->ctx, sizeof(p->ctx));
	if (p->ctx.version != EM_SNAP_CTX_VERSION || p->ctx.size != sizeof(p->ctx))
		restore_fail("Image", "image on fd %d: register context version %u (%u bytes), this "
			     "restorer reads %d", p->image_fd, p->ctx.version, p->ctx.size,
			     EM_SNAP_CTX_VERSION);
	if (m->exe_file == EM_SNAP_NONE)
		restore_fail("Image", "image on fd %d: names no executable", p->image_fd);
	p->exe = strdup(em_snap_string(p->img, em_snap_file(p->img, m->exe_file)->path));
	p->mm = m->mm;
	p->fs_base = m->fs_base;
	p->gs_base = m->gs_base;
	p->sigmask = m->sigmask;
}

/* The executable in the sandbox must be the binary the image was dumped from. */
static void check_build_id(struct plan *p)
{
	const struct em_snap_meta *m = em_snap_meta(p->img);
	uint8_t id[EM_SNAP_BUILD_ID_MAX];
	size_t len = 0;
	struct em_err err = { 0 };
	char hex_img[2 * EM_SNAP_BUILD_ID_MAX + 1], hex_exe[2 * EM_SNAP_BUILD_ID_MAX + 1];

	if (em_snap_build_id(p->exe, id, sizeof(id), &len, &err) < 0)
		restore_fail("BuildId", "executable %s: %s", p->exe, err.msg);
	if (len == m->build_id_len && !memcmp(id, m->build_id, len))
		return;
	for (size_t i = 0; i < len; i++)
		snprintf(hex_exe + 2 * i, 3, "%02x", id[i]);
	hex_exe[2 * len] = '\0';
	for (uint32_t i = 0; i < m->build_id_len && i < EM_SNAP_BUILD_ID_MAX; i++)
		snprintf(hex_img + 2 * i, 3, "%02x", m->build_id[i]);
	hex_img[2 * m->build_id_len] = '\0';
	restore_fail("BuildId", "executable %s has build id %s, the image was dumped from build id %s "
		     "(another binary)", p->exe, hex_exe, hex_img);
}

/* Every file a region maps or an fd holds: the file of the dump, by size and modification time.
 * Device and inode are not required: the same bundle copied with its times (to another node,
 * another directory) holds the same files, and the executable is checked by its build id too. */
static void check_files(struct plan *p)
{
	for (uint32_t i = 0; i < em_snap_file_count(p->img); i++) {
		const struct em_snap_file *f = em_snap_file(p->img, i);
		const char *path = em_snap_string(p->img, f->path);
		struct stat st;

		if (stat(path, &st) < 0)
			restore_fail("FileIdentity", "file %u %s: stat: %s", i, path, strerror(errno));
		if ((uint64_t)st.st_size != f->size || st.st_mtim.tv_sec != f->mtime_sec ||
		    (uint32_t)st.st_mtim.tv_nsec != f->mtime_nsec)
			restore_fail("FileIdentity", "file %u %s changed since the dump: size %lld mtime "
				     "%lld.%09ld, the image recorded size %llu mtime %lld.%09u", i, path,
				     (long long)st.st_size, (long long)st.st_mtim.tv_sec,
				     st.st_mtim.tv_nsec, (unsigned long long)f->size,
				     (long long)f->mtime_sec, f->mtime_nsec);
	}
}

static bool is_special_name(const char *n)
{
	return !strcmp(n, "[vdso]") || !strcmp(n, "[vvar]") || !strcmp(n, "[vvar_vclock]");
}

/* Our own vdso/vvar (from /proc/self/maps) and where the image had them: same names, same sizes,
 * same distances between them (the vdso's code reaches vvar at a fixed offset). */
static void plan_specials(struct plan *p)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];

	if (!f)
		restore_fail("Vdso", "open /proc/self/maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		char name[64] = "";

		if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %63s", &s, &e, name) < 2 ||
		    !is_special_name(name))
			continue;
		if (p->nspecial == (int)(sizeof(p->special) / sizeof(p->special[0])))
			break;
		struct special *sp = &p->special[p->nspecial++];
		snprintf(sp->name, sizeof(sp->name), "%s", name);
		sp->start = s;
		sp->end = e;
	}
	fclose(f);
	for (int i = 0; i < p->nspecial; i++) {
		struct special *sp = &p->special[i];
		bool found = false;

		for (uint32_t r = 0; r < em_snap_region_count(p->img); r++) {
			const struct em_snap_region *reg = em_snap_region(p->img, r);

			if (strcmp(em_snap_string(p->img, reg->name), sp->name))
				continue;
			if (reg->end - reg->start != sp->end - sp->start)
				restore_fail("Vdso", "the image's %s is %llu bytes, this kernel's %llu",
					     sp->name, (unsigned long long)(reg->end - reg->start),
					     (unsigned long long)(sp->end - sp->start));
			sp->to = reg->start;
			found = true;
		}
		if (!found)
			restore_fail("Vdso", "the image has no %s, this kernel maps one", sp->name);
		if (i && sp->to - p->special[0].to != sp->start - p->special[0].start)
			restore_fail("Vdso", "the image's %s lies at another distance from its %s than "
				     "this kernel's", sp->name, p->special[0].name);
	}
}

static void check_layout(struct plan *p)
{
	for (uint32_t i = 0; i < em_snap_region_count(p->img); i++) {
		const struct em_snap_region *r = em_snap_region(p->img, i);

		if (r->start < RESTORER_END && r->end > RESTORER_BASE)
			restore_fail("Layout", "region %u (%#llx-%#llx %s) overlaps the restorer's own "
				     "range %#llx-%#llx", i, (unsigned long long)r->start,
				     (unsigned long long)r->end, em_snap_string(p->img, r->name),
				     RESTORER_BASE, RESTORER_END);
	}
}

/* fds and signal dispositions, copied out of the image: phase 2 closes it before reopening fds
 * (its fd number may be one of the template's). */
static void plan_fds(struct plan *p)
{
	uint32_t n = em_snap_fd_count(p->img);

	p->fds = calloc(n ? n : 1, sizeof(*p->fds));
	if (!p->fds)
		restore_fail("Resources", "no memory for %u fds", n);
	for (uint32_t i = 0; i < n; i++) {
		const struct em_snap_fd *f = em_snap_fd_entry(p->img, i);

		if (f->fd <= CHANNEL_FD)
			continue; /* 0-3 are the host's: kept as given */
		if (f->kind != EM_SNAP_FD_FILE && f->kind != EM_SNAP_FD_DIR)
			restore_fail("Fds", "fd %d (%s) is of kind %u: only files and directories can be "
				     "reopened", f->fd, em_snap_string(p->img, f->desc), f->kind);
		p->fds[p->nfds++] = (struct restore_fd){
			.fd = f->fd, .flags = f->status_flags, .fd_flags = f->fd_flags, .pos = f->pos,
			.path = strdup(em_snap_string(p->img, f->desc)),
		};
	}
	for (int s = 1; s <= EM_SNAP_NSIG; s++)
		p->sig[s - 1] = *em_snap_sigaction(p->img, s);
}

static void phase2(void *arg)
{
	restore_phase2(arg);
}

int main(int argc, char **argv)
{
	plan.t0 = restore_now_ns();
	/* every allocation from the brk heap, inside our reserved range: phase 2 unmaps all else */
	mallopt(M_MMAP_MAX, 0);
	parse_args(&plan, argc, argv);
	check_image(&plan);
	check_build_id(&plan);
	check_files(&plan);
	check_layout(&plan);
	plan_specials(&plan);
	plan_fds(&plan);
	restore_on_stack(&plan, phase2, scratch_stack + sizeof(scratch_stack));
}
