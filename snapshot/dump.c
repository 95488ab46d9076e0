/* snapshot/dump.c — see dump.h. Plan, then execute: the template's maps text is matched line by
 * line to /proc/PID/maps and every refusal (threads, shared mappings, fds) is decided before the
 * image is started; then each mapping streams into the writer in chunks: its pagemap entries say
 * which pages exist, only those are read (reading an absent page would fault it in, and a
 * private file page that was never written comes from the file on restore). */
#include "snapshot/dump.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAGE EM_SNAP_PAGE_SIZE
#define CHUNK_DEFAULT (8u << 20)
#define IOV_BATCH 1024

/* pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst) */
#define PM_PRESENT (1ull << 63)
#define PM_SWAP (1ull << 62)
#define PM_FILE (1ull << 61) /* file page or shared anon: not copied on write */

struct vma {
	uint64_t start, end, off;
	char perms[5];
	uint64_t ino;
	char *path;             /* the template's view; "" when anonymous */
	uint64_t thp_kb;        /* AnonHugePages from smaps */
	bool thp_advised;       /* VmFlags hg: MADV_HUGEPAGE */
};

struct vmas {
	struct vma *v;
	size_t n;
	char *text;             /* backing store of the paths */
};

static void vmas_free(struct vmas *m)
{
	free(m->v);
	free(m->text);
}

/* Parse maps text (len bytes, NUL not required) into m; paths point into a copy of the text. */
static int parse_maps(const char *what, const char *text, size_t len, struct vmas *m,
		      struct em_err *err)
{
	size_t cap = 0, lineno = 0;

	m->v = NULL;
	m->n = 0;
	m->text = malloc(len + 1);
	if (!m->text)
		return em_err_set(err, ENOMEM, "%s: copy", what);
	memcpy(m->text, text, len);
	m->text[len] = '\0';
	for (char *line = m->text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		if (!*line)
			continue;
		if (m->n == cap) {
			cap = cap ? cap * 2 : 64;
			struct vma *v = realloc(m->v, cap * sizeof(*v));
			if (!v)
				return em_err_set(err, ENOMEM, "%s: parse", what);
			m->v = v;
		}
		struct vma *v = &m->v[m->n];
		unsigned dmaj, dmin;
		int pos = 0;

		memset(v, 0, sizeof(*v));
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 " %n", &v->start,
			   &v->end, v->perms, &v->off, &dmaj, &dmin, &v->ino, &pos) < 7 || pos == 0)
			return em_err_msg(err, EINVAL, "%s: line %zu is not a maps line: \"%.80s\"", what,
					  lineno, line);
		v->path = line + pos;
		while (*v->path == ' ')
			v->path++;
		m->n++;
	}
	return 0;
}

/* AnonHugePages of each mapping, from /proc/PID/smaps, into the matching vma of m. */
static int read_thp(pid_t pid, struct vmas *m, struct em_err *err)
{
	char path[64];
	cleanup_free char *text = NULL;
	size_t len, i = 0;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	ret = em_read_file_at(AT_FDCWD, path, &text, &len, err);
	if (ret < 0)
		return ret;
	struct vma *cur = NULL;
	for (char *line = text, *next; line && *line; line = next) {
		uint64_t start, end, kb;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " ", &start, &end) == 2 && strchr(line, '-') &&
		    isxdigit((unsigned char)line[0]) && strchr(line, ' ') > strchr(line, '-')) {
			cur = NULL;
			for (; i < m->n && m->v[i].start < start; i++)
				;
			if (i < m->n && m->v[i].start == start)
				cur = &m->v[i];
		} else if (cur && sscanf(line, "AnonHugePages: %" SCNu64 " kB", &kb) == 1) {
			cur->thp_kb = kb;
		} else if (cur && !strncmp(line, "VmFlags:", 8)) {
			/* "hg": madvise(MADV_HUGEPAGE) asked for THP, even if none is there yet */
			cur->thp_advised = strstr(line, " hg") != NULL;
		}
	}
	return 0;
}

static bool is_special(const char *path)
{
	return !strcmp(path, "[vdso]") || !strcmp(path, "[vvar]") || !strcmp(path, "[vvar_vclock]");
}

static bool is_file(const struct vma *host)
{
	return host->ino != 0;
}

/* Everything that refuses a dump, decided before the image is started. */
static int check_threads(pid_t pid, uint32_t told, struct em_err *err)
{
	char path[64];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	cleanup_closedir DIR *d = opendir(path);
	if (!d)
		return em_err_set(err, errno, "template %d: open %s", pid, path);
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (n != 1 || told != 1)
		return em_err_msg(err, EBUSY, "template %d has %d threads (it said %u): a snapshot "
				  "needs a single-threaded template", pid, n, told);
	return 0;
}

static int check_vma(pid_t pid, const struct vma *t, const struct vma *h, struct em_err *err)
{
	const char *name = *t->path ? t->path : "anonymous";

	/* a read-only shared mapping of a file (glibc's gconv-modules.cache in Python) holds
	 * nothing of the template's own: it is mapped again from the file */
	if (h->perms[3] == 's' && (h->perms[1] == 'w' || !is_file(h)))
		return em_err_msg(err, ENOTSUP, "template %d: mapping %#" PRIx64 "-%#" PRIx64 " %s (%s) is "
				  "shared (MAP_SHARED) and %s: a snapshot stores private memory only "
				  "(and maps read-only shared files again)", pid, t->start, t->end,
				  t->perms, name, is_file(h) ? "writable" : "not a file");
	if (is_file(h) && strstr(t->path, " (deleted)"))
		return em_err_msg(err, ENOTSUP, "template %d: mapping %#" PRIx64 "-%#" PRIx64 " maps %s: "
				  "a deleted file cannot be mapped again on restore", pid, t->start,
				  t->end, t->path);
	if (is_file(h) && t->path[0] != '/')
		return em_err_msg(err, ENOTSUP, "template %d: mapping %#" PRIx64 "-%#" PRIx64 " maps "
				  "\"%s\", not a path", pid, t->start, t->end, t->path);
	return 0;
}

/* The template's path for fd n from its "<fd> <path>" lines, or NULL. */
static const char *fd_line(const char *lines, size_t len, int n, char *buf, size_t cap)
{
	const char *p = lines, *end = lines + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		char *sp;
		long fd = strtol(p, &sp, 10);

		if (sp > p && sp < le && *sp == ' ' && fd == n) {
			size_t l = (size_t)(le - sp - 1);
			if (l >= cap)
				l = cap - 1;
			memcpy(buf, sp + 1, l);
			buf[l] = '\0';
			return buf;
		}
		p = le + 1;
	}
	return NULL;
}

static uint32_t fd_kind(const struct stat *st, const char *link)
{
	switch (st->st_mode & S_IFMT) {
	case S_IFREG: return EM_SNAP_FD_FILE;
	case S_IFDIR: return EM_SNAP_FD_DIR;
	case S_IFCHR: return EM_SNAP_FD_CHR;
	case S_IFIFO: return EM_SNAP_FD_PIPE;
	case S_IFSOCK: return EM_SNAP_FD_SOCKET;
	}
	return strncmp(link, "anon_inode:", 11) ? EM_SNAP_FD_OTHER : EM_SNAP_FD_ANON;
}

/* Record every open fd; refuse one above 3 that a restore could not reopen by path. */
static int dump_fds(struct em_snap_writer *w, const struct em_snap_dump_in *in, struct em_err *err)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/fd", in->pid);
	cleanup_closedir DIR *d = opendir(path);
	if (!d)
		return em_err_set(err, errno, "template %d: open %s", in->pid, path);
	for (struct dirent *e; (e = readdir(d));) {
		char p[128], link[4096], tview[4096], info[512];
		struct stat st;
		int ret;

		if (e->d_name[0] == '.')
			continue;
		int n = atoi(e->d_name);
		snprintf(p, sizeof(p), "/proc/%d/fd/%d", in->pid, n);
		ssize_t l = readlink(p, link, sizeof(link) - 1);
		if (l < 0)
			return em_err_set(err, errno, "template %d: readlink %s", in->pid, p);
		link[l] = '\0';
		if (stat(p, &st) < 0)
			return em_err_set(err, errno, "template %d: stat fd %d (%s)", in->pid, n, link);
		struct em_snap_fd f = { .fd = n, .kind = fd_kind(&st, link), .file = EM_SNAP_NONE };
		const char *tpath = fd_line(in->fds, in->fds_len, n, tview, sizeof(tview));
		bool reopen = f.kind == EM_SNAP_FD_FILE || f.kind == EM_SNAP_FD_DIR;

		if (n > 3 && !reopen)
			return em_err_msg(err, ENOTSUP, "template %d: fd %d is %s (%s): a restore reopens "
					  "fds above 3 by path, so only regular files and directories "
					  "can be open there", in->pid, n,
					  f.kind == EM_SNAP_FD_CHR ? "a character device" :
					  f.kind == EM_SNAP_FD_PIPE ? "a pipe" :
					  f.kind == EM_SNAP_FD_SOCKET ? "a socket" :
					  f.kind == EM_SNAP_FD_ANON ? "an anonymous inode" : "not a file",
					  tpath ? tpath : link);
		if (n > 3 && !tpath)
			return em_err_msg(err, EINVAL, "template %d: fd %d (%s) is missing from the "
					  "template's fd lines", in->pid, n, link);
		if (n > 3 && (tpath[0] != '/' || strstr(tpath, " (deleted)")))
			return em_err_msg(err, ENOTSUP, "template %d: fd %d is \"%s\": not a path a "
					  "restore can reopen", in->pid, n, tpath);

		/* fdinfo: "pos:\t<dec>" and "flags:\t<octal>" (O_CLOEXEC among them) */
		snprintf(p, sizeof(p), "/proc/%d/fdinfo/%d", in->pid, n);
		cleanup_close int ifd = open(p, O_RDONLY | O_CLOEXEC);
		if (ifd < 0)
			return em_err_set(err, errno, "template %d: open %s", in->pid, p);
		ssize_t il = read(ifd, info, sizeof(info) - 1);
		if (il < 0)
			return em_err_set(err, errno, "template %d: read %s", in->pid, p);
		info[il] = '\0';
		unsigned long long pos = 0;
		unsigned flags = 0;
		char *q = strstr(info, "pos:");
		if (q)
			pos = strtoull(q + 4, NULL, 10);
		q = strstr(info, "flags:");
		if (q)
			flags = (unsigned)strtoul(q + 6, NULL, 8);
		f.pos = pos;
		f.fd_flags = flags & O_CLOEXEC ? FD_CLOEXEC : 0;
		f.status_flags = flags & ~(unsigned)O_CLOEXEC;
		/* 0-3 are ember's own (stdin, the log, the channel): a restore gets new ones, so
		 * their identity is not the template's to check */
		if (reopen && tpath && n > 3) {
			ret = em_snap_writer_add_file(w, tpath, &st, &f.file, err);
			if (ret < 0)
				return em_err_prefix(err, "template %d: fd %d: ", in->pid, n);
		}
		ret = em_snap_writer_add_fd(w, &f, tpath ? tpath : link, err);
		if (ret < 0)
			return em_err_prefix(err, "template %d: fd %d: ", in->pid, n);
	}
	return 0;
}

/* mm fields from /proc/PID/stat (proc(5) field numbers), auxv from /proc/PID/auxv */
static int dump_mm(pid_t pid, struct em_snap_mm *mm, struct em_err *err)
{
	char path[64];
	cleanup_free char *text = NULL;
	size_t len;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	ret = em_read_file_at(AT_FDCWD, path, &text, &len, err);
	if (ret < 0)
		return ret;
	char *p = strrchr(text, ')');
	if (!p)
		return em_err_msg(err, EINVAL, "%s: no ')'", path);
	uint64_t f[53] = { 0 };
	int field = 3;
	for (char *tok = strtok(p + 1, " \n"); tok && field < 53; tok = strtok(NULL, " \n"), field++)
		f[field] = strtoull(tok, NULL, 10);
	if (field < 52)
		return em_err_msg(err, EINVAL, "%s: %d fields, expected at least 51", path, field - 1);
	mm->start_code = f[26];
	mm->end_code = f[27];
	mm->start_stack = f[28];
	mm->start_data = f[45];
	mm->end_data = f[46];
	mm->start_brk = f[47];
	mm->arg_start = f[48];
	mm->arg_end = f[49];
	mm->env_start = f[50];
	mm->env_end = f[51];
	if (!mm->start_code && !mm->start_stack)
		return em_err_msg(err, EPERM, "%s: mm fields hidden (no ptrace access to %d?)", path,
				  pid);

	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return em_err_set(err, errno, "open %s", path);
	ssize_t n = read(fd, mm->auxv, sizeof(mm->auxv));
	if (n < 0)
		return em_err_set(err, errno, "read %s", path);
	mm->auxv_size = (uint32_t)(n - n % 16);
	return 0;
}

struct reader {
	pid_t pid;
	int pagemap_fd, mem_fd;
	size_t chunk;           /* bytes */
	char *buf;
	uint64_t *pm;
	uint64_t *absent;
};

/* Read the runs of pages to store (absent bit clear) of [addr, addr + n pages) into buf. */
static int read_pages(struct reader *r, uint64_t addr, uint64_t n, bool readable,
		      struct em_err *err)
{
	struct iovec local[IOV_BATCH], remote[IOV_BATCH];
	uint64_t k = 0;

	while (k < n) {
		int cnt = 0;
		size_t want = 0;

		while (k < n && cnt < IOV_BATCH) {
			if (r->absent[k / 64] >> (k % 64) & 1) {
				k++;
				continue;
			}
			uint64_t s = k;
			while (k < n && !(r->absent[k / 64] >> (k % 64) & 1))
				k++;
			local[cnt] = (struct iovec){ r->buf + s * PAGE, (k - s) * PAGE };
			remote[cnt] = (struct iovec){ (void *)(uintptr_t)(addr + s * PAGE), (k - s) * PAGE };
			want += (k - s) * PAGE;
			cnt++;
		}
		for (int i = 0; i < cnt; i++) {
			/* process_vm_readv cannot read a page the template cannot (PROT_NONE, write
			 * only): /proc/PID/mem reads with FOLL_FORCE */
			if (!readable) {
				ssize_t got = pread(r->mem_fd, local[i].iov_base, local[i].iov_len,
						    (off_t)(uintptr_t)remote[i].iov_base);
				if (got != (ssize_t)local[i].iov_len)
					return em_err_set(err, got < 0 ? errno : EIO, "read %zu bytes at "
							  "%p of template %d through /proc/PID/mem",
							  local[i].iov_len, remote[i].iov_base, r->pid);
			}
		}
		if (!readable)
			continue;
		int first = 0;
		while (want) {
			ssize_t got = process_vm_readv(r->pid, local + first, (unsigned long)(cnt - first),
						       remote + first, (unsigned long)(cnt - first), 0);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				return em_err_set(err, got < 0 ? errno : EIO, "process_vm_readv of %zu bytes "
						  "at %p of template %d", want, remote[first].iov_base,
						  r->pid);
			want -= (size_t)got;
			/* partial: advance both vectors past what was read */
			while (got > 0 && first < cnt) {
				size_t l = local[first].iov_len;
				if ((size_t)got >= l) {
					got -= (ssize_t)l;
					first++;
				} else {
					local[first].iov_base = (char *)local[first].iov_base + got;
					local[first].iov_len -= (size_t)got;
					remote[first].iov_base = (char *)remote[first].iov_base + got;
					remote[first].iov_len -= (size_t)got;
					got = 0;
				}
			}
		}
	}
	return 0;
}

static int dump_region(struct em_snap_writer *w, struct reader *r, const struct vma *t,
		       const struct vma *h, struct em_snap_dump_stats *st, struct em_err *err)
{
	char what[4200];
	int ret;

	snprintf(what, sizeof(what), "template %d: mapping %#" PRIx64 "-%#" PRIx64 " %s %s", r->pid,
		 t->start, t->end, t->perms, *t->path ? t->path : "(anonymous)");
	struct em_snap_region_spec spec = {
		.start = t->start, .end = t->end,
		.prot = (t->perms[0] == 'r' ? PROT_READ : 0) | (t->perms[1] == 'w' ? PROT_WRITE : 0) |
			(t->perms[2] == 'x' ? PROT_EXEC : 0),
		.flags = h->perms[3] == 's' ? 0 : EM_SNAP_R_PRIVATE, .file = EM_SNAP_NONE,
	};
	bool special = is_special(t->path), file = is_file(h) && !special;
	bool shared = h->perms[3] == 's'; /* read-only file (check_vma): nothing stored */

	if (file) {
		char mf[96];
		struct stat sb;

		/* the identity of the file as mapped (the host's view of the template's file),
		 * recorded under the template's path: the restore opens it there */
		snprintf(mf, sizeof(mf), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, r->pid, t->start,
			 t->end);
		if (stat(mf, &sb) < 0)
			return em_err_set(err, errno, "%s: stat %s", what, mf);
		ret = em_snap_writer_add_file(w, t->path, &sb, &spec.file, err);
		if (ret < 0)
			return em_err_prefix(err, "%s: ", what);
		spec.file_off = t->off;
	} else {
		spec.flags |= EM_SNAP_R_ANON;
		if (!strcmp(t->path, "[heap]"))
			spec.flags |= EM_SNAP_R_HEAP;
		else if (!strcmp(t->path, "[stack]"))
			spec.flags |= EM_SNAP_R_STACK | EM_SNAP_R_GROWSDOWN;
		if (*t->path)
			spec.name = t->path;
		if (t->thp_kb || t->thp_advised)
			spec.flags |= EM_SNAP_R_HUGEPAGE;
	}
	ret = em_snap_writer_region_begin(w, &spec, err);
	if (ret < 0)
		return em_err_prefix(err, "template %d: ", r->pid);

	uint64_t npages = (t->end - t->start) / PAGE, per = r->chunk / PAGE;
	for (uint64_t k = 0; k < npages; k += per) {
		uint64_t n = npages - k < per ? npages - k : per;
		uint64_t addr = t->start + k * PAGE;
		bool any = false;

		memset(r->absent, 0, (per + 63) / 64 * 8);
		if (special || shared) {
			/* the restorer moves its own vdso/vvar here, or maps the file again: no
			 * content */
			memset(r->absent, 0xff, (per + 63) / 64 * 8);
		} else {
			ssize_t got = pread(r->pagemap_fd, r->pm, n * 8, (off_t)(addr / PAGE * 8));
			if (got != (ssize_t)(n * 8))
				return em_err_set(err, got < 0 ? errno : EIO, "%s: read its pagemap",
						  what);
			for (uint64_t i = 0; i < n; i++) {
				uint64_t e = r->pm[i];
				bool store = file ? (e & PM_PRESENT && !(e & PM_FILE)) || e & PM_SWAP
						  : (e & (PM_PRESENT | PM_SWAP)) != 0;
				if (!store)
					r->absent[i / 64] |= 1ull << (i % 64);
				any |= store;
			}
		}
		if (any) {
			ret = read_pages(r, addr, n, spec.prot & PROT_READ, err);
			if (ret < 0)
				return em_err_prefix(err, "%s: ", what);
		}
		ret = em_snap_writer_region_pages(w, any ? r->buf : NULL, n, r->absent, err);
		if (ret < 0)
			return em_err_prefix(err, "template %d: ", r->pid);
	}
	struct em_snap_region out;
	ret = em_snap_writer_region_end(w, &out, err);
	if (ret < 0)
		return em_err_prefix(err, "template %d: ", r->pid);
	st->regions++;
	st->pages_stored += out.nr_stored;
	st->pages_zero += out.nr_zero;
	st->pages_absent += out.nr_absent;
	st->bytes_stored += (uint64_t)out.nr_stored * PAGE;
	return 0;
}

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void writer_freep(struct em_snap_writer **w)
{
	em_snap_writer_free(*w);
}

int em_snap_dump(const struct em_snap_dump_in *in, const char *path,
		 const struct em_snap_dump_opts *o, struct em_snap_dump_stats *st_out,
		 struct em_err *err)
{
	struct em_snap_dump_stats st = { 0 };
	uint64_t t0 = now_ns();
	struct vmas tv = { 0 }, hv = { 0 };
	__attribute__((cleanup(writer_freep))) struct em_snap_writer *w = NULL;
	struct reader r = { .pid = in->pid, .pagemap_fd = -1, .mem_fd = -1 };
	cleanup_free char *host_maps = NULL, *exe = NULL;
	char p[64];
	size_t len;
	int ret;

	r.chunk = o && o->chunk ? o->chunk : CHUNK_DEFAULT;
	if (r.chunk % PAGE)
		return em_err_msg(err, EINVAL, "dump chunk %zu: not a multiple of 4096", r.chunk);

	/* plan: every refusal before the image is started */
	ret = check_threads(in->pid, in->threads, err);
	if (ret < 0)
		return ret;
	ret = parse_maps("the template's maps", in->maps, in->maps_len, &tv, err);
	/* The SDK sends STATE from a shared scratch mapping and unmaps it right after (its maps text
	 * already leaves it out): until it has, /proc shows one mapping more. Wait for that, up to a
	 * second; a template that is not blocked on its channel would never settle. */
	snprintf(p, sizeof(p), "/proc/%d/maps", in->pid);
	for (int tries = 0; ret == 0; tries++) {
		free(host_maps);
		host_maps = NULL;
		vmas_free(&hv);
		hv = (struct vmas){ 0 };
		ret = em_read_file_at(AT_FDCWD, p, &host_maps, &len, err);
		if (ret == 0)
			ret = parse_maps(p, host_maps, len, &hv, err);
		if (ret < 0 || hv.n == tv.n || tries == 200)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 5000000 }, NULL);
	}
	if (ret == 0 && tv.n != hv.n)
		ret = em_err_msg(err, EINVAL, "template %d: its maps have %zu lines, %s has %zu (did it "
				 "move while parked?)", in->pid, tv.n, p, hv.n);
	for (size_t i = 0; ret == 0 && i < tv.n; i++) {
		if (tv.v[i].start != hv.v[i].start || tv.v[i].end != hv.v[i].end ||
		    strcmp(tv.v[i].perms, hv.v[i].perms))
			ret = em_err_msg(err, EINVAL, "template %d: its maps line %zu (%#" PRIx64 "-%#"
					 PRIx64 " %s) does not match %s (%#" PRIx64 "-%#" PRIx64 " %s)",
					 in->pid, i + 1, tv.v[i].start, tv.v[i].end, tv.v[i].perms, p,
					 hv.v[i].start, hv.v[i].end, hv.v[i].perms);
		else
			ret = check_vma(in->pid, &tv.v[i], &hv.v[i], err);
	}
	if (ret == 0)
		ret = read_thp(in->pid, &tv, err);
	exe = dupn(in->exe, in->exe_len);
	if (ret == 0 && (!exe || exe[0] != '/'))
		ret = em_err_msg(err, EINVAL, "template %d: its exe \"%s\" is not a path", in->pid,
				 exe ? exe : "");

	/* execute */
	if (ret == 0) {
		snprintf(p, sizeof(p), "/proc/%d/pagemap", in->pid);
		r.pagemap_fd = open(p, O_RDONLY | O_CLOEXEC);
		if (r.pagemap_fd < 0)
			ret = em_err_set(err, errno, "open %s", p);
	}
	if (ret == 0) {
		snprintf(p, sizeof(p), "/proc/%d/mem", in->pid);
		r.mem_fd = open(p, O_RDONLY | O_CLOEXEC);
		if (r.mem_fd < 0)
			ret = em_err_set(err, errno, "open %s", p);
	}
	if (ret == 0) {
		r.buf = malloc(r.chunk);
		r.pm = malloc(r.chunk / PAGE * 8);
		r.absent = malloc((r.chunk / PAGE + 63) / 64 * 8);
		if (!r.buf || !r.pm || !r.absent)
			ret = em_err_set(err, ENOMEM, "dump buffers of %zu bytes", r.chunk);
	}
	if (ret == 0)
		ret = em_snap_writer_open(path, &w, err);
	if (ret == 0) {
		struct em_snap_meta *m = em_snap_writer_meta(w);
		struct em_snap_ctx ctx = {
			.version = EM_SNAP_CTX_VERSION, .size = sizeof(ctx), .regs = in->regs,
			.rseq_addr = in->rseq_addr, .rseq_len = in->rseq_len, .rseq_sig = in->rseq_sig,
		};
		size_t idlen = 0;
		struct stat sb;
		uint32_t exe_file;

		memcpy(m->ctx, &ctx, sizeof(ctx));
		m->ctx_size = sizeof(ctx);
		m->fs_base = in->fs_base;
		m->gs_base = in->gs_base;
		m->sigmask = in->sigmask;
		snprintf(p, sizeof(p), "/proc/%d/exe", in->pid);
		ret = em_snap_build_id(p, m->build_id, sizeof(m->build_id), &idlen, err);
		m->build_id_len = (uint32_t)idlen;
		if (ret == 0)
			ret = em_snap_kernel_release(m->kernel_release, sizeof(m->kernel_release), err);
		if (ret == 0)
			ret = dump_mm(in->pid, &m->mm, err);
		if (ret == 0 && stat(p, &sb) < 0)
			ret = em_err_set(err, errno, "template %d: stat %s (%s)", in->pid, p, exe);
		if (ret == 0)
			ret = em_snap_writer_add_file(w, exe, &sb, &exe_file, err);
		if (ret == 0)
			ret = em_snap_writer_set_exe(w, exe_file, err);
		/* brk: the end of [heap] (the kernel's brk, page-aligned), or start_brk when the
		 * template never grew its heap */
		m->mm.brk = m->mm.start_brk;
		for (size_t i = 0; ret == 0 && i < tv.n; i++)
			if (!strcmp(tv.v[i].path, "[heap]"))
				m->mm.brk = tv.v[i].end;
	}
	for (int s = 1; ret == 0 && s <= EM_SNAP_NSIG; s++)
		ret = em_snap_writer_set_sigaction(w, s, &in->sigactions[s - 1], err);
	if (ret == 0)
		ret = dump_fds(w, in, err);
	for (size_t i = 0; ret == 0 && i < tv.n; i++) {
		if (!strcmp(tv.v[i].path, "[vsyscall]"))
			continue; /* fixed by the kernel in every process (or absent): nothing to restore */
		ret = dump_region(w, &r, &tv.v[i], &hv.v[i], &st, err);
	}
	if (ret == 0)
		ret = em_snap_writer_commit(w, err);
	if (ret == 0) {
		struct stat sb;
		if (stat(path, &sb) == 0)
			st.image_bytes = (uint64_t)sb.st_size;
	}
	vmas_free(&tv);
	vmas_free(&hv);
	free(r.buf);
	free(r.pm);
	free(r.absent);
	if (r.pagemap_fd >= 0)
		close(r.pagemap_fd);
	if (r.mem_fd >= 0)
		close(r.mem_fd);
	st.ns = now_ns() - t0;
	if (st_out)
		*st_out = st;
	if (ret < 0)
		return em_err_prefix(err, "dump to %s: ", path);
	return 0;
}
