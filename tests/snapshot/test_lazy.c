/* tests/snapshot/test_lazy.c — the mmap and userfaultfd restore modes (snapshot/lazy.c) against the
 * real kernel: an image written from real memory (helpers.h: stored, zero and absent pages, a
 * file-backed region) is restored in a forked child at the template's own addresses, the way the
 * restorer does it (fresh mappings, a userfaultfd made through /dev/userfaultfd, registered, sent
 * to the "host" over a socket with SCM_RIGHTS); this process runs the fault server. The child
 * checks every byte against the pattern the template was written with (not against the image),
 * through user-space reads and a kernel-side one (read(2) from a pipe into a lazy page), and the
 * kernel's view of its memory in /proc/self/smaps; it reports a failure as a message on the
 * socket. Children are killed by pid after a timeout; scratch files live in /tmp/ember-test-lazy-*. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "helpers.h"
#include "snapshot/lazy.h"

static struct tmpl t;
static int fds_before;

static void setup(void)
{
	strcpy(tdir, "/tmp/ember-test-lazy-XXXXXX");
	cr_assert_not_null(mkdtemp(tdir));
	snprintf(image, sizeof(image), "%s/tmpl.img", tdir);
	tmpl_init(&t);
	write_tmpl(&t, image);
	fds_before = count_entries("/proc/self/fd");
}

/* what a failed assertion may leave behind: a test's run in progress (below) */
static pid_t live_pid = -1;
static int live_sock = -1;
static struct em_snap_lazy *live_srv;
static struct em_snap_image *live_img;

static void teardown(void)
{
	struct em_err err = { 0 };

	if (live_pid > 0) {
		kill(live_pid, SIGKILL);
		waitpid(live_pid, NULL, 0);
	}
	if (live_sock >= 0)
		close(live_sock);
	em_snap_lazy_stop(live_srv, &err);
	if (live_img)
		em_snap_close(live_img);
	live_pid = live_sock = -1;
	live_srv = NULL;
	live_img = NULL;
	tmpl_fini(&t);
	int fds = count_entries("/proc/self/fd");
	tdir_fini(); /* first: a leaked fd must not leave the scratch dir behind too */
	cr_assert_eq(fds, fds_before, "an fd was left open");
}

TestSuite(lazy, .init = setup, .fini = teardown, .timeout = 60);

static struct em_snap_image *open_image(void)
{
	struct em_snap_image *img;
	struct em_err err = { 0 };

	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	return img;
}

/* --- the restored side (a forked child): failures go back as a message, then _exit(1) ---------- */

static int csock = -1; /* the child's end of the socket */

#define CHECK(cond, ...)                                                                       \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			char _m[1024];                                                          \
			int _n = snprintf(_m, sizeof(_m), __VA_ARGS__);                         \
			if (write(csock, _m, (size_t)_n) < 0)                                   \
				_exit(2);                                                       \
			_exit(1);                                                               \
		}                                                                               \
	} while (0)

enum mode { LAZY, MMAP };

static bool stored(uint32_t i, uint32_t k)
{
	return (i == 0 && !r0_absent(k) && !r0_zero(k)) || (i == 1 && k < R1_PAGES / 2) || i == 4;
}

/* runs of stored pages in region i, from the template's pattern */
static uint32_t stored_runs(uint32_t i)
{
	uint32_t n = 0;

	for (uint32_t k = 0; k < t.pages[i]; k++)
		n += stored(i, k) && (k == 0 || !stored(i, k - 1));
	return n;
}

/* What page k of region i held in the template (helpers.h's pattern), into buf. */
static void expected(uint32_t i, uint32_t k, char *buf)
{
	memset(buf, 0, PG);
	if (stored(i, k))
		fill_page(buf, i, k);
}

static char *page_addr(uint32_t i, uint32_t k)
{
	return (char *)(uintptr_t)t.start[i] + (size_t)k * PG;
}

static void check_page(uint32_t i, uint32_t k, const char *who)
{
	char want[PG];

	expected(i, k, want);
	CHECK(!memcmp(page_addr(i, k), want, PG), "%s: region %u page %u differs from the template",
	      who, i, k);
}

static void check_all(const char *who)
{
	for (uint32_t i = 0; i < NREGIONS; i++)
		for (uint32_t k = 0; k < t.pages[i]; k++)
			check_page(i, k, who);
}

/* A mapping's line in /proc/self/smaps: the pathname and a field's kB. */
struct smaps_entry {
	char path[512];
	long rss_kb, anon_kb;
};

static bool smaps_of(uint64_t start, struct smaps_entry *out)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[1024];
	bool in = false, found = false;

	if (!f)
		return false;
	memset(out, 0, sizeof(*out));
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char path[512] = "";
		int n = sscanf(line, "%lx-%lx %*s %*s %*s %*s %511s", &s, &e, path);

		if (n >= 2) { /* a mapping's header line; field lines start "Name:" */
			in = s == start;
			if (in) {
				found = true;
				snprintf(out->path, sizeof(out->path), "%s", path);
			}
			continue;
		}
		if (in) {
			sscanf(line, "Rss: %ld kB", &out->rss_kb);
			sscanf(line, "Anonymous: %ld kB", &out->anon_kb);
		}
	}
	fclose(f);
	return found;
}

static void send_fd(int sock, int fd)
{
	char c = 'F';
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c1 = CMSG_FIRSTHDR(&m);

	c1->cmsg_level = SOL_SOCKET;
	c1->cmsg_type = SCM_RIGHTS;
	c1->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c1), &fd, sizeof(int));
	CHECK(sendmsg(sock, &m, 0) == 1, "send the userfaultfd: %s", strerror(errno));
}

/* The restorer's part: fresh memory at the template's addresses, then per mode either private
 * mappings of the image, or a userfaultfd registered and sent to the parent. */
static void restore(struct em_snap_image *img, enum mode mode)
{
	struct em_err err = { 0 };

	CHECK(mmap(t.base, t.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		   -1, 0) == t.base, "map fresh memory at %p: %s", (void *)t.base, strerror(errno));
	int exe = open(t.exe, O_RDONLY | O_CLOEXEC);
	CHECK(exe >= 0, "open %s: %s", t.exe, strerror(errno));
	CHECK(mmap(page_addr(4, 0), (size_t)R4_PAGES * PG, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_FIXED, exe, 2 * PG) == page_addr(4, 0),
	      "map %s at region 4: %s", t.exe, strerror(errno));
	close(exe);
	if (mode == MMAP) {
		int fd = open(image, O_RDONLY | O_CLOEXEC);

		CHECK(fd >= 0, "open %s: %s", image, strerror(errno));
		for (uint32_t i = 0; i < em_snap_region_count(img); i++) {
			uint32_t n;

			CHECK(em_snap_map_private(img, i, fd, em_snap_region(img, i)->prot, &n,
						  &err) == 0, "map region %u: %s", i, err.msg);
			CHECK(n == stored_runs(i), "region %u: %u private mappings, expected %u",
			      i, n, stored_runs(i));
		}
		close(fd);
		return;
	}
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	CHECK(dev >= 0, "open /dev/userfaultfd: %s", strerror(errno));
	uint64_t features;
	int uffd = em_snap_uffd_open(dev, EM_SNAP_UFFD_POISON, &features, &err);
	CHECK(uffd >= 0, "%s", err.msg);
	close(dev);
	CHECK((features & EM_SNAP_UFFD_REQUIRED) == EM_SNAP_UFFD_REQUIRED, "features %#lx",
	      (unsigned long)features);
	uint32_t nreg, nfill;
	CHECK(em_snap_uffd_register(uffd, img, &nreg, &nfill, &err) == 0, "%s", err.msg);
	/* regions 0 and 1 have stored pages (anonymous: registered), 2 and 3 none, 4 is a
	 * file mapping (filled in place) */
	CHECK(nreg == 2 && nfill == 1, "registered %u, filled %u", nreg, nfill);
	send_fd(csock, uffd);
	close(uffd); /* the host's copy keeps the registration */
}

static void wait_go(void)
{
	char c;

	CHECK(read(csock, &c, 1) == 1, "wait for the server: %s", strerror(errno));
}

/* --- the host side ------------------------------------------------------------------------- */

struct run {
	pid_t pid;
	int sock;               /* parent's end */
	struct em_snap_lazy *srv;
	struct em_snap_image *img;
};

static int recv_fd(int sock)
{
	char c;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct pollfd p = { .fd = sock, .events = POLLIN };

	if (poll(&p, 1, 10000) != 1)
		return -ETIMEDOUT;
	ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	if (n != 1)
		return -EPROTO;
	struct cmsghdr *c1 = CMSG_FIRSTHDR(&m);
	if (!c1 || c1->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	int fd;
	memcpy(&fd, CMSG_DATA(c1), sizeof(int));
	return fd;
}

/* Fork the restored side: it restores in `mode`, waits for "go", then runs body. */
static void run_start(struct run *r, enum mode mode, void (*body)(void))
{
	int sv[2];

	r->img = open_image();
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fflush(NULL);
	r->pid = fork();
	cr_assert_geq(r->pid, 0);
	if (r->pid == 0) {
		close(sv[0]);
		csock = sv[1];
		restore(r->img, mode);
		wait_go();
		body();
		_exit(0);
	}
	close(sv[1]);
	r->sock = sv[0];
	r->srv = NULL;
	live_pid = r->pid;
	live_sock = r->sock;
	live_img = r->img;
}

static void run_serve(struct run *r, const struct em_snap_lazy_opts *o)
{
	struct em_err err = { 0 };
	int uffd = recv_fd(r->sock);

	cr_assert_geq(uffd, 0, "no userfaultfd from the restored child: %s", strerror(-uffd));
	cr_assert_eq(em_snap_lazy_start(r->img, uffd, o, &r->srv, &err), 0, "%s", err.msg);
	live_srv = r->srv;
}

static void go(struct run *r)
{
	cr_assert_eq(write(r->sock, "g", 1), 1);
}

/* Wait for the child (killed by pid after 20 s: a restore must never hang); its status, and the
 * message it left on the socket in msg. */
static int run_wait(struct run *r, char *msg, size_t cap)
{
	int status = 0;

	for (int i = 0; i < 2000; i++) {
		pid_t w = waitpid(r->pid, &status, WNOHANG);
		if (w == r->pid)
			break;
		if (i == 1999) {
			kill(r->pid, SIGKILL);
			waitpid(r->pid, &status, 0);
			break;
		}
		usleep(10000);
	}
	live_pid = -1;
	ssize_t n = recv(r->sock, msg, cap - 1, MSG_DONTWAIT);
	msg[n > 0 ? n : 0] = '\0';
	close(r->sock);
	live_sock = -1;
	return status;
}

static void assert_ok(int status, const char *msg)
{
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "restored child: %s (status %#x)",
		  *msg ? msg : "no message", status);
}

static void run_finish(struct run *r, struct em_snap_lazy_stats *st)
{
	struct em_err err = { 0 };

	int ret = 0;

	live_srv = NULL;
	live_img = NULL;
	if (r->srv) {
		if (st)
			em_snap_lazy_stats(r->srv, st);
		ret = em_snap_lazy_stop(r->srv, &err);
	}
	em_snap_close(r->img);
	cr_assert_eq(ret, 0, "server: %s", err.msg);
}

/* The whole of a plain lazy run: a restored child running body, served with o (NULL: defaults)
 * until it ends. Its wait status; msg says what it reported, st what the server counted. */
static int run_lazy(void (*body)(void), const struct em_snap_lazy_opts *o,
		    struct em_snap_lazy_stats *st, char *msg, size_t cap)
{
	struct run r;
	int status;

	run_start(&r, LAZY, body);
	run_serve(&r, o);
	go(&r);
	status = run_wait(&r, msg, cap);
	run_finish(&r, st);
	return status;
}

/* --- bodies (run in the restored child) ---------------------------------------------------- */

/* A kernel-side access first (read(2) from a pipe into an untouched lazy page: the kernel's
 * copy_to_user must wait for the page like a user access, not fail with EFAULT, and the rest of
 * the page must be the image's), then every byte, then the kernel's accounting. */
static void body_contents(void)
{
	int p[2];
	char msg[100], want[PG];

	CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
	for (int i = 0; i < 100; i++)
		msg[i] = (char)(0xa0 + i);
	CHECK(write(p[1], msg, 100) == 100, "write pipe");
	char *dst = page_addr(1, 200);
	ssize_t n = read(p[0], dst + 100, 100);
	CHECK(n == 100, "read(2) into lazy page 200 of region 1: %zd (%s)", n,
	      n < 0 ? strerror(errno) : "short");
	expected(1, 200, want);
	memcpy(want + 100, msg, 100);
	CHECK(!memcmp(dst, want, PG), "region 1 page 200 after read(2) differs");
	close(p[0]);
	close(p[1]);
	fill_page(want, 1, 200);
	memcpy(dst, want, PG); /* back to the template's bytes for check_all */
	check_all("restored");

	/* region 1: 256 stored pages copied (anonymous), 256 zero pages mapped to the shared zero
	 * page (neither resident nor anonymous) */
	struct smaps_entry e;
	CHECK(smaps_of(t.start[1], &e), "no mapping at region 1 in smaps");
	CHECK(e.anon_kb == R1_PAGES / 2 * 4 && e.rss_kb == R1_PAGES / 2 * 4,
	      "region 1: Anonymous %ld kB, Rss %ld kB; expected %d kB each (zero pages not copied)",
	      e.anon_kb, e.rss_kb, R1_PAGES / 2 * 4);
}

Test(lazy, contents_stored_zero_absent)
{
	struct em_snap_lazy_stats st;
	char msg[1024];

	int status = run_lazy(body_contents, NULL, &st, msg, sizeof(msg));
	assert_ok(status, msg);
	/* region 0: 64 pages = 4 batches; region 1: 512 pages = 32 batches, each one fault (every
	 * fault serves its whole aligned 64 KiB) */
	cr_assert_eq(st.faults, 4 + 32, "faults %lu", (unsigned long)st.faults);
	cr_assert_eq(st.pages_copied, tmpl_stored(&t, 0) + tmpl_stored(&t, 1), "copied %lu",
		     (unsigned long)st.pages_copied);
	cr_assert_eq(st.pages_copied + st.pages_zeroed, R0_PAGES + R1_PAGES, "zeroed %lu",
		     (unsigned long)st.pages_zeroed);
	cr_assert_eq(st.pages_poisoned, 0);
}

/* The restored process resumes at once after sending its userfaultfd: faults taken before the
 * host's server runs wait in the kernel, then are served. */
Test(lazy, faults_before_the_server_starts_wait)
{
	struct run r;
	struct em_snap_lazy_stats st;
	struct em_err err = { 0 };
	char msg[1024];

	run_start(&r, LAZY, body_contents);
	int uffd = recv_fd(r.sock);
	cr_assert_geq(uffd, 0, "no userfaultfd from the restored child");
	go(&r);
	usleep(200000); /* the child is blocked on its first page by now */
	int status;
	cr_assert_eq(waitpid(r.pid, &status, WNOHANG), 0, "the child ran without its pages");
	cr_assert_eq(em_snap_lazy_start(r.img, uffd, NULL, &r.srv, &err), 0, "%s", err.msg);
	live_srv = r.srv;
	status = run_wait(&r, msg, sizeof(msg));
	run_finish(&r, &st);
	assert_ok(status, msg);
	cr_assert_eq(st.faults, 4 + 32, "faults %lu", (unsigned long)st.faults);
}

/* The restored template forks before touching anything: the child's missing pages must come from
 * the image too (its own userfaultfd, EVENT_FORK), then the parent's. */
static void body_fork(void)
{
	pid_t c = fork();

	CHECK(c >= 0, "fork: %s", strerror(errno));
	if (c == 0) {
		check_all("forked child");
		_exit(0);
	}
	int status;
	CHECK(waitpid(c, &status, 0) == c, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the forked child failed (status %#x)",
	      status);
	check_all("restored parent after its child");
}

Test(lazy, fork_child_reads_the_image)
{
	struct run r;
	struct em_snap_lazy_stats st;
	char msg[1024];

	run_start(&r, LAZY, body_fork);
	run_serve(&r, NULL);
	go(&r);
	int status = run_wait(&r, msg, sizeof(msg));
	/* both processes exited: the server notices (its liveness probe) and closes their fds */
	for (int i = 0; i < 100; i++) {
		em_snap_lazy_stats(r.srv, &st);
		if (!st.processes)
			break;
		usleep(20000);
	}
	run_finish(&r, &st);
	assert_ok(status, msg);
	cr_assert_eq(st.forks, 1, "forks %lu", (unsigned long)st.forks);
	cr_assert_eq(st.faults, 2 * (4 + 32), "faults %lu: both processes fault every batch",
		     (unsigned long)st.faults);
	cr_assert_eq(st.processes, 0, "userfaultfds still open: %u", st.processes);
	cr_assert_eq(st.exits, 2, "exits %lu", (unsigned long)st.exits);
}

/* Pages the process drops (MADV_DONTNEED, as malloc trimming does) read zero afterwards, served
 * or not: the image's bytes must not come back. */
static void body_dontneed(void)
{
	static const char zero[PG];

	check_page(1, 20, "before DONTNEED"); /* served (with its batch 16-31) */
	CHECK(madvise(page_addr(1, 20), PG, MADV_DONTNEED) == 0, "madvise");
	CHECK(madvise(page_addr(1, 100), 4 * PG, MADV_DONTNEED) == 0, "madvise"); /* never served */
	CHECK(!memcmp(page_addr(1, 20), zero, PG), "served page 20 reads its image bytes after "
	      "MADV_DONTNEED");
	for (uint32_t k = 100; k < 104; k++)
		CHECK(!memcmp(page_addr(1, k), zero, PG), "unserved page %u reads its image bytes "
		      "after MADV_DONTNEED", k);
	check_page(1, 21, "neighbour of a dropped page");
	check_page(1, 99, "neighbour of a dropped range");
	check_page(1, 104, "neighbour of a dropped range");
}

Test(lazy, dropped_pages_read_zero)
{
	struct em_snap_lazy_stats st;
	char msg[1024];

	int status = run_lazy(body_dontneed, NULL, &st, msg, sizeof(msg));
	assert_ok(status, msg);
	cr_assert_geq(st.removes, 2, "REMOVE events %lu", (unsigned long)st.removes);
}

/* The working set: the pages a first restore needed are recorded and saved beside the image; a
 * second restore prefetches them before the process runs and takes no fault on them. */
static void body_ws(void)
{
	for (uint32_t k = 0; k < R0_PAGES; k++)
		check_page(0, k, "working set");
	for (uint32_t k = 64; k < 128; k++)
		check_page(1, k, "working set");
}

Test(lazy, working_set_recorded_then_prefetched)
{
	struct em_snap_lazy_opts o = { .ws = EM_SNAP_WS_AUTO };
	struct em_snap_lazy_stats st1, st2;
	char msg[1024], ws[256];
	struct run r;
	struct stat sb;

	snprintf(ws, sizeof(ws), "%s.ws", image);
	run_start(&r, LAZY, body_ws);
	run_serve(&r, &o);
	go(&r);
	int status = run_wait(&r, msg, sizeof(msg));
	struct em_err err = { 0 };
	int ret = em_snap_lazy_save_ws(r.srv, &err);
	run_finish(&r, &st1);
	assert_ok(status, msg);
	cr_assert_eq(ret, 0, "%s", err.msg);
	cr_assert_eq(st1.pages_prefetched, 0);
	cr_assert_eq(st1.faults, 4 + 4, "first run: faults %lu", (unsigned long)st1.faults);
	cr_assert_eq(st1.ws_pages, R0_PAGES + 64, "recorded %u pages", st1.ws_pages);
	cr_assert_eq(stat(ws, &sb), 0, "no sidecar %s", ws);
	cr_assert_eq(sb.st_size, 64 + 2 * 16, "sidecar of %ld bytes: header and 2 runs",
		     (long)sb.st_size);

	struct em_snap_image *img = open_image();
	struct em_snap_ws_run *runs;
	uint32_t nr;
	cr_assert_eq(em_snap_ws_load(img, ws, &runs, &nr, &err), 0, "%s", err.msg);
	cr_assert_eq(nr, 2);
	cr_assert(runs[0].region == 0 && runs[0].page == 0 && runs[0].npages == R0_PAGES);
	cr_assert(runs[1].region == 1 && runs[1].page == 64 && runs[1].npages == 64);
	free(runs);
	em_snap_close(img);

	/* second restore: prefetched before "go", so the process faults on none of it */
	run_start(&r, LAZY, body_ws);
	run_serve(&r, &o);
	for (int i = 0; i < 500; i++) {
		em_snap_lazy_stats(r.srv, &st2);
		if (st2.prefetch_done)
			break;
		usleep(10000);
	}
	cr_assert(st2.prefetch_done, "the prefetch did not finish");
	go(&r);
	status = run_wait(&r, msg, sizeof(msg));
	run_finish(&r, &st2);
	assert_ok(status, msg);
	cr_assert_eq(st2.pages_prefetched, R0_PAGES + 64, "prefetched %lu",
		     (unsigned long)st2.pages_prefetched);
	cr_assert_eq(st2.faults, 0, "second run: faults %lu", (unsigned long)st2.faults);
	cr_assert_eq(st2.ws_pages, R0_PAGES + 64);

	/* a damaged sidecar is refused, naming the check */
	img = open_image();
	flip_byte(ws, 64 + 5);
	cr_assert_eq(em_snap_ws_load(img, ws, &runs, &nr, &err), -EBADMSG, "%s", err.msg);
	cr_assert(strstr(err.msg, ws) && strstr(err.msg, "checksum mismatch"), "%s", err.msg);
	cr_assert_null(runs);
	em_snap_close(img);
}

/* mremap moves untouched lazy pages (EVENT_REMAP): at their new address they still read the
 * image's bytes (served one page at a time there), and their old neighbours are unaffected. */
static void body_mremap(void)
{
	char *dst = mmap(NULL, 32 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char want[PG];

	CHECK(dst != MAP_FAILED, "mmap: %s", strerror(errno));
	CHECK(mremap(page_addr(1, 32), 32 * PG, 32 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == dst,
	      "mremap: %s", strerror(errno));
	for (uint32_t j = 0; j < 32; j++) {
		expected(1, 32 + j, want);
		CHECK(!memcmp(dst + (size_t)j * PG, want, PG), "moved page %u (region 1 page %u) "
		      "differs from the template (%02x %02x %02x, expected %02x %02x %02x)", j, 32 + j,
		      (unsigned char)dst[j * PG], (unsigned char)dst[j * PG + 1],
		      (unsigned char)dst[j * PG + 2], (unsigned char)want[0], (unsigned char)want[1],
		      (unsigned char)want[2]);
	}
	check_page(1, 31, "below the moved range");
	check_page(1, 64, "above the moved range");
}

Test(lazy, mremap_moved_pages_read_the_image)
{
	struct em_snap_lazy_stats st;
	char msg[1024];

	int status = run_lazy(body_mremap, NULL, &st, msg, sizeof(msg));
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "restored child: %s (status %#x; "
		  "server: %lu faults, %lu events)", msg, status, (unsigned long)st.faults,
		  (unsigned long)st.removes);
	cr_assert_geq(st.removes, 1, "no REMAP event");
	cr_assert_eq(st.faults, 32 + 2, "faults %lu: one per moved page, one per neighbour batch",
		     (unsigned long)st.faults);
}

/* A stored page corrupted in the image: with verify, its process gets SIGBUS on exactly that page
 * (the server poisons it), the rest of its batch is served, and the server reports which page. */
static void body_corrupt(void)
{
	struct rlimit no_core = { 0, 0 };

	/* the SIGBUS below must not leave a core dump anywhere */
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0);
	check_page(0, 2, "good neighbour of a corrupt page");
	check_page(1, 0, "another region");
	volatile char c = *page_addr(0, 1); /* the corrupt page: SIGBUS here */
	(void)c;
	CHECK(0, "read a corrupt page without SIGBUS");
}

Test(lazy, corrupt_page_with_verify_is_sigbus)
{
	struct em_snap_lazy_opts o = { .verify = true };
	struct em_snap_lazy_stats st;
	struct em_err err = { 0 };
	char msg[1024];
	struct run r;

	/* region 0's page 1 is its first stored page (slot 0): its bytes start at data_off */
	struct em_snap_image *img = open_image();
	uint64_t off;
	cr_assert_eq(em_snap_page_at(img, 0, 1, &off), EM_SNAP_STORED);
	em_snap_close(img);
	flip_byte(image, (off_t)off + 77);

	run_start(&r, LAZY, body_corrupt);
	run_serve(&r, &o);
	go(&r);
	int status = run_wait(&r, msg, sizeof(msg));
	em_snap_lazy_stats(r.srv, &st);
	live_srv = NULL;
	live_img = NULL;
	int ret = em_snap_lazy_stop(r.srv, &err);
	em_snap_close(r.img);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS, "child: status %#x, %s",
		  status, msg);
	cr_assert_eq(st.pages_poisoned, 1);
	cr_assert_eq(ret, -EBADMSG, "stop: %d %s", ret, err.msg);
	cr_assert(strstr(err.msg, "region 0") && strstr(err.msg, "page 1 ") &&
		  strstr(err.msg, "checksum mismatch"), "message: %s", err.msg);
}

/* mmap mode: the stored runs are private file mappings of the image (file-backed, no anonymous
 * memory until written), byte-exact; writing copies the page and leaves the image alone. */
static void body_mmap(void)
{
	struct smaps_entry e;

	check_all("mapped");
	CHECK(smaps_of(t.start[1], &e), "no mapping at region 1");
	CHECK(!strcmp(e.path, image), "region 1 maps %s, not the image", e.path);
	CHECK(e.anon_kb == 0 && e.rss_kb == R1_PAGES / 2 * 4, "region 1 after reads: Anonymous "
	      "%ld kB, Rss %ld kB", e.anon_kb, e.rss_kb);
	memset(page_addr(1, 3), 0x77, PG);
	CHECK(smaps_of(t.start[1], &e) && e.anon_kb == 4, "region 1 after one write: Anonymous %ld "
	      "kB", e.anon_kb);
	/* the zero half stays the anonymous mapping */
	CHECK(smaps_of(t.start[1] + R1_PAGES / 2 * PG, &e) && !e.path[0],
	      "region 1's zero half is mapped from %s", e.path);
}

Test(lazy, mmap_private_exact_and_copy_on_write)
{
	struct run r;
	char msg[1024];
	struct em_err err = { 0 };

	run_start(&r, MMAP, body_mmap);
	go(&r);
	int status = run_wait(&r, msg, sizeof(msg));
	run_finish(&r, NULL);
	assert_ok(status, msg);
	/* the image is as written: every checksum holds, page 3 of region 1 is the template's */
	struct em_snap_image *img = open_image();
	cr_assert_eq(em_snap_verify_data(img, &err), 0, "%s", err.msg);
	uint64_t off;
	char got[PG], want[PG];
	cr_assert_eq(em_snap_page_at(img, 1, 3, &off), EM_SNAP_STORED);
	file_read(image, got, PG, (off_t)off);
	expected(1, 3, want);
	cr_assert(!memcmp(got, want, PG), "the write reached the image");
	em_snap_close(img);
}

/* The server refuses what it cannot serve correctly. */
Test(lazy, refuses_a_plain_fd)
{
	struct em_snap_image *img = open_image();
	struct em_snap_lazy *srv;
	struct em_err err = { 0 };
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	cr_assert_eq(em_snap_lazy_start(img, fd, NULL, &srv, &err), -EBADF, "%s", err.msg);
	cr_assert(strstr(err.msg, "not an initialized userfaultfd"), "%s", err.msg);
	em_snap_close(img);
}
