/* tests/snapshot/test_restore.c — dump a live template (tests/snapshot/target/target.c, static and
 * PIE) with em_snap_dump, kill it, restore it with the embedded ember-restore, and ask the
 * restored process what it holds: its memory's checksum, its counter, its file's position and
 * private copy, its signal handler, brk, /proc/PID/exe and maps. The test plays the host: the
 * template's channel is a socketpair. Refused images (corrupted, truncated, another binary) must
 * end in EMBER_INIT_ERROR naming the check and an exited restorer. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "sdk/c/ember_proto.h"
#include "snapshot/dump.h"
#include "snapshot/lazy.h"
#include "snapshot/restorer.h"

#define HEAP_MB "200"

static char dir[64], exe[128], datafile[128], image[128];

static void setup(void)
{
	strcpy(dir, "/tmp/ember-test-restore-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	chmod(dir, 0755); /* the target reads its data file from here */
	snprintf(exe, sizeof(exe), "%s/target", dir);
	snprintf(datafile, sizeof(datafile), "%s/data", dir);
	snprintf(image, sizeof(image), "%s/target.img", dir);
	/* the data file: page 0 says "filepage", page 1 is overwritten privately by the target */
	int fd = open(datafile, O_RDWR | O_CREAT | O_TRUNC, 0644);
	char page[4096];
	memset(page, 'f', sizeof(page));
	memcpy(page, "filepage", 8);
	cr_assert_eq(write(fd, page, sizeof(page)), 4096);
	cr_assert_eq(write(fd, page, sizeof(page)), 4096);
	close(fd);
}

static void teardown(void)
{
	struct em_err err = { 0 };

	if (dir[0] && !getenv("SNAP_TEST_KEEP"))
		em_rm_rf_at(AT_FDCWD, dir, &err);
}

TestSuite(restore, .init = setup, .fini = teardown, .timeout = 120);

static int count_dir(const char *d)
{
	char cmd[160];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A %s | wc -l", d);
	f = popen(cmd, "r");
	if (f && fscanf(f, "%d", &n) != 1)
		n = -1;
	if (f)
		pclose(f);
	return n;
}

static void copy_file(const char *from, const char *to)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "cp %s %s", from, to);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- frames ---------------------------------------------------------------------------------- */

static void read_exact(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t r = read(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		cr_assert_gt(r, 0, "channel ended (%s) with %zu bytes to read", strerror(errno), len);
		p += r;
		len -= (size_t)r;
	}
}

static void send_frame(int fd, uint16_t type, uint64_t id, const void *p, size_t len)
{
	struct ember_frame_hdr h = { .magic = EMBER_PROTO_MAGIC, .version = EMBER_PROTO_VERSION,
				     .type = type, .id = id, .len = len };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)p, len } };

	cr_assert_eq(writev(fd, iov, 2), (ssize_t)(sizeof(h) + len));
}

/* A frame's type and payload (NUL-terminated, malloc'd). */
static uint16_t recv_frame(int fd, char **payload, size_t *len)
{
	struct ember_frame_hdr h;

	read_exact(fd, &h, sizeof(h));
	cr_assert_eq(h.magic, EMBER_PROTO_MAGIC);
	cr_assert_lt(h.len, 1u << 26);
	*payload = malloc(h.len + 1);
	read_exact(fd, *payload, h.len);
	(*payload)[h.len] = '\0';
	if (len)
		*len = h.len;
	return h.type;
}

/* Ask the target a command; its answer. */
static char *ask(int chan, const char *cmd)
{
	static uint64_t id = 100;
	char *out;

	send_frame(chan, EMBER_INVOKE, ++id, cmd, strlen(cmd));
	cr_assert_eq(recv_frame(chan, &out, NULL), EMBER_RESULT, "answer to %s", cmd);
	return out;
}

#define ask_eq(chan, cmd, want)                                                                \
	do {                                                                                    \
		char *_a = ask((chan), (cmd));                                                  \
		cr_assert_str_eq(_a, (want), "%s: got %s, want %s", (cmd), _a, (want));        \
		free(_a);                                                                       \
	} while (0)

/* --- the template ---------------------------------------------------------------------------- */

struct tmpl {
	pid_t pid;
	int chan;
	char sum[64], brk[64];
};

static void start_target_env(struct tmpl *t, const char *target, const char *env)
{
	int sv[2];
	char *ready;

	copy_file(target, exe);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t->pid = fork();
	cr_assert_geq(t->pid, 0);
	if (t->pid == 0) {
		dup2(sv[1], 3);
		syscall(SYS_close_range, 4, ~0u, 0); /* the test runner's pipes are not the template's */
		setenv("SNAP_HEAP_MB", HEAP_MB, 1);
		setenv("SNAP_FILE", datafile, 1);
		if (env)
			setenv(env, "1", 1);
		execl(exe, "snapshot-target", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	t->chan = sv[0];
	cr_assert_eq(recv_frame(t->chan, &ready, NULL), EMBER_READY);
	free(ready);
	char *s = ask(t->chan, "sum");
	snprintf(t->sum, sizeof(t->sum), "%s", s);
	free(s);
	s = ask(t->chan, "brk");
	snprintf(t->brk, sizeof(t->brk), "%s", s);
	free(s);
	ask_eq(t->chan, "count", "1");
}

static void stop(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

static void start_target(struct tmpl *t, const char *target)
{
	start_target_env(t, target, NULL);
}

/* SNAPSHOT, STATE translated into em_snap_dump_in, em_snap_dump, DONE; then the template dies. */
static int try_dump(struct tmpl *t, struct em_snap_dump_stats *st, struct em_err *errp)
{
	struct em_err err = { 0 };
	char *p;
	size_t len;

	send_frame(t->chan, EMBER_SNAPSHOT, 7, NULL, 0);
	cr_assert_eq(recv_frame(t->chan, &p, &len), EMBER_SNAPSHOT_STATE);
	struct ember_snap_state s;
	cr_assert_geq(len, sizeof(s));
	memcpy(&s, p, sizeof(s));
	cr_assert_eq(s.error, 0, "template refused: %.*s", (int)s.maps_len, p + sizeof(s));
	cr_assert_eq(len, sizeof(s) + s.maps_len + s.fds_len + s.exe_len);

	struct em_snap_dump_in in = {
		.pid = t->pid, .threads = s.threads, .fs_base = s.fs_base, .gs_base = s.gs_base,
		.sigmask = s.sigmask, .rseq_addr = s.rseq_addr, .rseq_len = s.rseq_len,
		.rseq_sig = s.rseq_sig,
		.maps = p + sizeof(s), .maps_len = s.maps_len,
		.fds = p + sizeof(s) + s.maps_len, .fds_len = s.fds_len,
		.exe = p + sizeof(s) + s.maps_len + s.fds_len, .exe_len = s.exe_len,
	};
	_Static_assert(sizeof(in.regs) == sizeof(s.regs), "regs layouts");
	memcpy(&in.regs, &s.regs, sizeof(in.regs));
	_Static_assert(sizeof(in.sigactions) == sizeof(s.sigactions), "sigaction layouts");
	memcpy(in.sigactions, s.sigactions, sizeof(in.sigactions));

	int ret = em_snap_dump(&in, image, NULL, st, &err);
	int32_t status = ret;
	send_frame(t->chan, EMBER_SNAPSHOT_DONE, 7, &status, sizeof(status));
	free(p);
	*errp = err;
	/* the template carries on parking: it still answers */
	ask_eq(t->chan, "count", "2");
	stop(t->pid);
	close(t->chan);
	t->pid = -1;
	return ret;
}

static void dump_target(struct tmpl *t, struct em_snap_dump_stats *st)
{
	struct em_err err = { 0 };

	cr_assert_eq(try_dump(t, st, &err), 0, "%s", err.msg);
}

/* --- the restorer ---------------------------------------------------------------------------- */

struct restored {
	pid_t pid;
	int chan;
	uint16_t first;         /* the first frame's type: READY or INIT_ERROR */
	char *payload;
	uint64_t ns;            /* fork to the first frame */
	uint64_t t0;
};

/* Run ember-restore on img in a child, fds as the contract lays them out. */
static void restore_fds(const char *img, const char *extra, int uffd_dev, struct restored *r)
{
	struct em_err err = { 0 };
	int sv[2];
	int memfd = em_snap_restorer_memfd(&err);
	int imgfd = open(img, O_RDONLY | O_CLOEXEC);

	cr_assert_geq(memfd, 0, "%s", err.msg);
	cr_assert_geq(imgfd, 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	uint64_t t0 = now_ns();
	r->pid = fork();
	cr_assert_geq(r->pid, 0);
	if (r->pid == 0) {
		int null = open("/dev/null", O_RDWR);
		/* above 6 first, so that the dups below never overwrite a source */
		int a = fcntl(sv[1], F_DUPFD, 10), b = fcntl(imgfd, F_DUPFD, 10),
		    c = fcntl(memfd, F_DUPFD, 10), n = fcntl(null, F_DUPFD, 10),
		    u = uffd_dev >= 0 ? fcntl(uffd_dev, F_DUPFD, 10) : -1;
		dup2(n, 0);
		dup2(a, 3);
		dup2(b, 4);
		dup2(c, 5);
		if (u >= 0)
			dup2(u, 6);
		syscall(SYS_close_range, u >= 0 ? 7 : 6, ~0u, 0);
		char *argv[8] = { "ember-restore", "--image-fd=4", "--mode=eager" };
		int i = 3;
		char buf[256];
		if (extra) {
			snprintf(buf, sizeof(buf), "%s", extra);
			for (char *tok = strtok(buf, " "); tok && i < 7; tok = strtok(NULL, " "))
				argv[i++] = tok;
		}
		argv[i] = NULL;
		execv("/proc/self/fd/5", argv);
		_exit(127);
	}
	close(sv[1]);
	close(imgfd);
	close(memfd);
	r->chan = sv[0];
	r->t0 = t0;
	r->payload = NULL;
}

static void restore(const char *img, const char *extra, struct restored *r)
{
	restore_fds(img, extra, -1, r);
	r->first = recv_frame(r->chan, &r->payload, NULL);
	r->ns = now_ns() - r->t0;
}

static void restored_free(struct restored *r)
{
	stop(r->pid);
	close(r->chan);
	free(r->payload);
}

/* Every region of the image is a mapping of the restored process with its range. */
static void check_maps(pid_t pid)
{
	struct em_snap_image *img;
	struct em_err err = { 0 };
	char path[64], line[512];

	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	for (uint32_t i = 0; i < em_snap_region_count(img); i++) {
		const struct em_snap_region *reg = em_snap_region(img, i);
		const char *name = em_snap_string(img, reg->name);
		FILE *f = fopen(path, "re");
		uint64_t pos = reg->start;

		cr_assert_not_null(f);
		/* mappings cover it: it may have merged with a neighbour, or (mmap mode) been split
		 * into mappings of the image and of its own backing */
		while (pos < reg->end && fgets(line, sizeof(line), f)) {
			unsigned long long s, e;
			if (sscanf(line, "%llx-%llx", &s, &e) == 2 && s <= pos && pos < e)
				pos = e;
		}
		fclose(f);
		cr_assert_geq(pos, reg->end, "region %u %#" PRIx64 "-%#" PRIx64 " %s is not mapped in "
			      "%d from %#" PRIx64, i, reg->start, reg->end, name, pid, pos);
		if (!strcmp(name, "[heap]")) {
			/* the kernel calls (the anonymous part of) it [heap] again: brk was restored */
			bool heap = false;
			f = fopen(path, "re");
			while (!heap && fgets(line, sizeof(line), f)) {
				unsigned long long s, e;
				heap = sscanf(line, "%llx-%llx", &s, &e) == 2 && strstr(line, "[heap]") &&
				       s < reg->end && e > reg->start;
			}
			fclose(f);
			cr_assert(heap, "no [heap] in %#" PRIx64 "-%#" PRIx64 " in %s", reg->start,
				  reg->end, path);
		}
	}
	em_snap_close(img);
}

/* The restored process holds what the template held at the dump. */
static void check_restored(struct tmpl *t, struct restored *r, const char *target)
{
	cr_assert_eq(r->first, EMBER_READY, "restore failed: %s", r->payload);
	cr_assert(strstr(r->payload, "\"restored\":true"), "READY says %s", r->payload);
	char *pid = ask(r->chan, "pid");
	cr_assert_eq(atoi(pid), r->pid, "the restored process is the restorer's: %s", pid);
	free(pid);
	ask_eq(r->chan, "sum", t->sum);
	ask_eq(r->chan, "count", "2");  /* 1 before the dump (the original then said 2 too) */
	ask_eq(r->chan, "pos", "12345");
	ask_eq(r->chan, "file", "filepage|copied on write");
	ask_eq(r->chan, "brk", t->brk);
	ask_eq(r->chan, "exe", exe);
	ask_eq(r->chan, "signals", "0");
	cr_assert_eq(kill(r->pid, SIGUSR1), 0);
	ask_eq(r->chan, "signals", "1");
	ask_eq(r->chan, "grow", "1");
	check_maps(r->pid);
	/* the restorer unmapped itself but for its last step's page */
	char path[64], line[512];
	uint64_t left = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", r->pid);
	FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long s, e;
		if (sscanf(line, "%llx-%llx", &s, &e) == 2 && s < EM_SNAP_RESTORER_END &&
		    e > EM_SNAP_RESTORER_BASE)
			left += e - s;
	}
	if (f)
		fclose(f);
	cr_assert_eq(left, 4096, "%" PRIu64 " bytes of the restorer are left in %d", left, r->pid);
	cr_log_info("%s: restore of a %s MB heap: exec to READY %.1f ms", target, HEAP_MB,
		    (double)r->ns / 1e6);
}

static void dump_and_restore_twice(const char *target)
{
	struct tmpl t;
	struct em_snap_dump_stats st;

	start_target(&t, target);
	dump_target(&t, &st);
	cr_assert_geq(st.pages_stored, 48000u + 512, /* 15/16 of the heap, half the mmap */ "stored %" PRIu64 " pages", st.pages_stored);
	/* the heap's every 16th page, and the mmap's untouched half that "sum" read (the zero
	 * page is mapped there now) */
	cr_assert_geq(st.pages_zero, 3190u + 512, "zero %" PRIu64 " pages", st.pages_zero);
	/* malloc's top pad at the heap's end, the stack's untouched part, the binary's text */
	cr_assert_geq(st.pages_absent, 32u, "absent %" PRIu64 " pages", st.pages_absent);
	cr_log_info("%s: dump: %u regions, %" PRIu64 " pages stored, %" PRIu64 " zero, %" PRIu64
		    " absent, %.1f ms", target, st.regions, st.pages_stored, st.pages_zero,
		    st.pages_absent, (double)st.ns / 1e6);
	for (int i = 0; i < 2; i++) {
		struct restored r;

		restore(image, NULL, &r);
		check_restored(&t, &r, target);
		restored_free(&r);
	}
}

Test(restore, static_target_twice)
{
	dump_and_restore_twice(SNAP_TARGET_DIR "/snapshot-target");
}

Test(restore, pie_target_twice)
{
	dump_and_restore_twice(SNAP_TARGET_DIR "/snapshot-target-dyn");
}

/* A refused restore: INIT_ERROR naming the check, the restorer exited 1, nothing else on the
 * channel (no process kept it open). */
static void assert_refused(const char *img, const char *check, const char *what)
{
	struct restored r;
	int status;
	char c;

	restore(img, NULL, &r);
	cr_assert_eq(r.first, EMBER_INIT_ERROR, "expected INIT_ERROR, got frame %u: %s", r.first,
		     r.payload);
	cr_assert(strstr(r.payload, check), "\"%s\" lacks %s", r.payload, check);
	cr_assert(strstr(r.payload, what), "\"%s\" lacks \"%s\"", r.payload, what);
	cr_assert_eq(waitpid(r.pid, &status, 0), r.pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "restorer status %#x", status);
	cr_assert_eq(read(r.chan, &c, 1), 0, "the channel is closed: the restorer left nothing");
	r.pid = -1;
	restored_free(&r);
}

static void file_edit(const char *from, const char *to, void (*edit)(int fd, off_t size))
{
	struct stat st;

	copy_file(from, to);
	int fd = open(to, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	edit(fd, st.st_size);
	close(fd);
}

static void flip_meta_byte(int fd, off_t size)
{
	struct em_snap_header h;
	unsigned char b;

	(void)size;
	cr_assert_eq(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	cr_assert_eq(pread(fd, &b, 1, (off_t)h.meta_off + 100), 1);
	b ^= 0x40;
	cr_assert_eq(pwrite(fd, &b, 1, (off_t)h.meta_off + 100), 1);
}

static void cut_page(int fd, off_t size)
{
	cr_assert_eq(ftruncate(fd, size - 4096), 0);
}

static void flip_data_byte(int fd, off_t size)
{
	unsigned char b;

	(void)size;
	cr_assert_eq(pread(fd, &b, 1, 4096 + 1000), 1);
	b ^= 0x40;
	cr_assert_eq(pwrite(fd, &b, 1, 4096 + 1000), 1);
}

Test(restore, refused_images_leave_nothing)
{
	struct tmpl t;
	struct em_snap_dump_stats st;
	char bad[160];

	start_target(&t, SNAP_TARGET_DIR "/snapshot-target");
	dump_target(&t, &st);

	snprintf(bad, sizeof(bad), "%s/corrupt.img", dir);
	file_edit(image, bad, flip_meta_byte);
	assert_refused(bad, "Restore.Image", "metadata checksum mismatch");

	snprintf(bad, sizeof(bad), "%s/truncated.img", dir);
	file_edit(image, bad, cut_page);
	assert_refused(bad, "Restore.Image", "truncated");

	/* a stored page that does not match its checksum: caught by --verify only */
	snprintf(bad, sizeof(bad), "%s/page.img", dir);
	file_edit(image, bad, flip_data_byte);
	struct restored r;
	restore(bad, "--verify", &r);
	cr_assert_eq(r.first, EMBER_INIT_ERROR, "got frame %u: %s", r.first, r.payload);
	cr_assert(strstr(r.payload, "Restore.PageChecksum"), "%s", r.payload);
	restored_free(&r);

	/* a file the template mapped changed since the dump */
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = 1000000000 } };
	struct stat before;
	cr_assert_eq(stat(datafile, &before), 0);
	cr_assert_eq(utimensat(AT_FDCWD, datafile, times, 0), 0);
	assert_refused(image, "Restore.FileIdentity", datafile);
	times[1] = before.st_mtim;
	cr_assert_eq(utimensat(AT_FDCWD, datafile, times, 0), 0);

	/* another binary at the executable's path */
	copy_file(SNAP_TARGET_DIR "/snapshot-target-dyn", exe);
	assert_refused(image, "Restore.BuildId", "another binary");

	/* ... and an unknown mode or option */
	copy_file(SNAP_TARGET_DIR "/snapshot-target", exe);
}

/* AnonHugePages of the mapping that starts at addr in pid, in kB; -1 if none starts there */
static long thp_kb(pid_t pid, const char *addr)
{
	char path[64], line[512];
	unsigned long long want = strtoull(addr, NULL, 16), s;
	long kb = -1;
	bool in = false;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	FILE *f = fopen(path, "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-", &s) == 1 && strchr(line, '-') && strchr(line, ' '))
			in = s <= want && strstr(line, " ") && want < strtoull(strchr(line, '-') + 1, NULL, 16);
		else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* A region the template asked THP for is HUGEPAGE in the image and THP-backed after a restore
 * with the default --thp=auto */
Test(restore, thp_where_the_template_asked)
{
	struct tmpl t;
	struct em_snap_dump_stats st;
	struct restored r;
	struct em_snap_image *img;
	struct em_err err = { 0 };

	start_target(&t, SNAP_TARGET_DIR "/snapshot-target-dyn");
	char *addr = ask(t.chan, "thp");
	if (thp_kb(t.pid, addr) <= 0)
		cr_skip("no THP for the template's MADV_HUGEPAGE region here");
	dump_target(&t, &st);
	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	uint64_t a = strtoull(addr, NULL, 16);
	bool flagged = false;
	for (uint32_t i = 0; i < em_snap_region_count(img); i++) {
		const struct em_snap_region *reg = em_snap_region(img, i);
		if (reg->start <= a && a < reg->end)
			flagged = reg->flags & EM_SNAP_R_HUGEPAGE;
	}
	em_snap_close(img);
	cr_assert(flagged, "the region at %s is not HUGEPAGE in the image", addr);
	restore(image, NULL, &r);
	check_restored(&t, &r, "dynamic, THP region");
	cr_assert_gt(thp_kb(r.pid, addr), 0, "no THP at %s after the restore", addr);
	free(addr);
	restored_free(&r);
}

/* eager without io_uring (a sandbox whose seccomp refuses it): pread, verified */
Test(restore, pread_fill)
{
	struct tmpl t;
	struct em_snap_dump_stats st;
	struct restored r;

	start_target(&t, SNAP_TARGET_DIR "/snapshot-target");
	dump_target(&t, &st);
	restore(image, "--no-io-uring --verify", &r);
	check_restored(&t, &r, "static, --no-io-uring --verify");
	char comm[64], path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", r.pid);
	FILE *f = fopen(path, "re");
	cr_assert(f && fgets(comm, sizeof(comm), f));
	fclose(f);
	cr_assert_str_eq(comm, "target\n", "comm is the executable's name");
	restored_free(&r);
}

/* mmap mode: the stored runs are private mappings of the image */
Test(restore, mmap_mode)
{
	struct tmpl t;
	struct em_snap_dump_stats st;
	struct restored r;

	start_target(&t, SNAP_TARGET_DIR "/snapshot-target");
	dump_target(&t, &st);
	restore(image, "--mode=mmap", &r);
	check_restored(&t, &r, "static, --mode=mmap");
	/* the heap's stored runs are mappings of the image file */
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "grep -c 'target.img' /proc/%d/maps | grep -qv '^0$'", r.pid);
	cr_assert_eq(system(cmd), 0, "no mapping of the image in the restored process");
	restored_free(&r);
}

/* The first frame carries an fd (SCM_RIGHTS): EMBER_SNAPSHOT_UFFD. */
static int recv_uffd(int chan)
{
	struct ember_frame_hdr h;
	struct iovec iov = { &h, sizeof(h) };
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	int fd = -1;

	cr_assert_eq(recvmsg(chan, &msg, MSG_CMSG_CLOEXEC), (ssize_t)sizeof(h));
	cr_assert_eq(h.type, EMBER_SNAPSHOT_UFFD, "first frame %u", h.type);
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	cr_assert_not_null(c, "EMBER_SNAPSHOT_UFFD without an fd");
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

/* lazy mode: the test serves the restored process's faults (snapshot/lazy.h's server) */
Test(restore, lazy_mode)
{
	struct tmpl t;
	struct em_snap_dump_stats st;
	struct restored r;
	struct em_err err = { 0 };
	struct em_snap_image *img;
	struct em_snap_lazy *srv;

	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		cr_skip("no /dev/userfaultfd: %s", strerror(errno));
	start_target(&t, SNAP_TARGET_DIR "/snapshot-target-dyn");
	dump_target(&t, &st);
	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	restore_fds(image, "--mode=lazy --uffd-dev-fd=6", dev, &r);
	int uffd = recv_uffd(r.chan);
	/* the host's half (lazy.h): the handshake (EVENT_FORK is the host's to ask for), the
	 * registration of the restorer's regions, the server, then the answer */
	uint32_t nreg = 0;
	cr_assert_eq(em_snap_uffd_api(uffd, dev, 0, NULL, &err), 0, "%s", err.msg);
	close(dev);
	cr_assert_eq(em_snap_uffd_register_anon(uffd, img, &nreg, &err), 0, "%s", err.msg);
	cr_assert_gt(nreg, 0u);
	struct em_snap_lazy_opts o = { .verify = true };
	cr_assert_eq(em_snap_lazy_start(img, uffd, &o, &srv, &err), 0, "%s", err.msg);
	struct ember_frame_hdr ans = { .magic = EMBER_PROTO_MAGIC, .version = EMBER_PROTO_VERSION,
				       .type = EMBER_SNAPSHOT_UFFD, .len = sizeof(int32_t) };
	int32_t status = 0;
	cr_assert_eq(write(r.chan, &ans, sizeof(ans)), (ssize_t)sizeof(ans));
	cr_assert_eq(write(r.chan, &status, sizeof(status)), (ssize_t)sizeof(status));
	r.first = recv_frame(r.chan, &r.payload, NULL);
	r.ns = now_ns() - r.t0;
	check_restored(&t, &r, "dynamic, --mode=lazy");
	struct em_snap_lazy_stats ls;
	em_snap_lazy_stats(srv, &ls);
	cr_assert_gt(ls.pages_copied, 40000u, "the checksum read the heap through the server: %"
		     PRIu64 " pages copied", ls.pages_copied);
	restored_free(&r);
	cr_assert_eq(em_snap_lazy_stop(srv, &err), 0, "%s", err.msg);
	em_snap_close(img);
}

/* O_DIRECT reads, every page verified, THP for every large anonymous region */
Test(restore, direct_verify_thp)
{
	struct tmpl t;
	struct em_snap_dump_stats st;
	struct restored r;

	start_target(&t, SNAP_TARGET_DIR "/snapshot-target-dyn");
	dump_target(&t, &st);
	restore(image, "--direct --verify --thp=always", &r);
	check_restored(&t, &r, "dynamic, --direct --verify --thp=always");
	/* the heap is backed by huge pages now */
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "grep -q '^AnonHugePages: *[1-9]' /proc/%d/smaps", r.pid);
	cr_assert_eq(system(cmd), 0, "no THP in the restored process");
	restored_free(&r);
}

static void assert_dump_refused(const char *env, const char *what)
{
	struct tmpl t;
	struct em_snap_dump_stats st;
	struct em_err err = { 0 };

	start_target_env(&t, SNAP_TARGET_DIR "/snapshot-target", env);
	cr_assert_lt(try_dump(&t, &st, &err), 0, "the dump of a template with %s succeeded", env);
	cr_assert(strstr(err.msg, what), "\"%s\" lacks \"%s\"", err.msg, what);
	cr_assert_eq(access(image, F_OK), -1, "a refused dump left %s", image);
	cr_assert_eq(count_dir(dir), 2, "a refused dump left a temporary file in %s", dir);
}

Test(restore, dump_refuses_shared_memory_and_pipes)
{
	assert_dump_refused("SNAP_SHARED", "shared (MAP_SHARED)");
	assert_dump_refused("SNAP_PIPE", "fd 9 is a pipe");
}

static void *sleeper(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

/* The dumper counts threads itself (the SDK does too, but the host trusts no template). */
Test(restore, dump_refuses_two_threads)
{
	struct em_err err = { 0 };
	int ready[2];
	char c;

	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		pthread_t th;
		pthread_create(&th, NULL, sleeper, NULL);
		(void)!write(ready[1], "x", 1);
		pause();
		_exit(0);
	}
	cr_assert_eq(read(ready[0], &c, 1), 1);
	char path[64], maps[65536];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	int fd = open(path, O_RDONLY);
	ssize_t n = read(fd, maps, sizeof(maps));
	close(fd);
	struct em_snap_dump_in in = { .pid = pid, .threads = 1, .maps = maps, .maps_len = (size_t)n,
				      .exe = "/x", .exe_len = 2 };
	int ret = em_snap_dump(&in, image, NULL, NULL, &err);
	stop(pid);
	cr_assert_eq(ret, -EBUSY, "%d: %s", ret, err.msg);
	cr_assert(strstr(err.msg, "has 2 threads"), "%s", err.msg);
	cr_assert_eq(access(image, F_OK), -1);
}
