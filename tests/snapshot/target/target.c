/* tests/snapshot/target/target.c — a template for the restore tests (tests/snapshot/test_restore.c),
 * built static and dynamic (PIE) by snapshot/build.mk. It holds state a restore must bring back:
 * SNAP_HEAP_MB of brk heap and 4 MiB of mmap filled with a pattern (some pages zeroed, some never
 * touched), a private file mapping with one page written (copied on write), SNAP_FILE open on
 * fd 7 at offset 12345, a SIGUSR1 handler and a counter. It speaks ember's frames on fd 3: READY
 * at start (and after a resume), SNAPSHOT (ember_snap_handle), and INVOKE with a one-word command
 * as its payload, answered with RESULT text. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sdk/c/ember_proto.h"
#include "sdk/c/ember_snap.h"

#define CHAN 3
#define PG 4096
#define MAP_LEN (4u << 20)

static uint64_t *heap;
static size_t heap_len;
static uint64_t *anon;
static char *filemap;
static uint64_t *thp;           /* 4 MiB asked for THP (MADV_HUGEPAGE), written whole */
static volatile sig_atomic_t signals;
static unsigned counter;
static void *brk_at_init;

static void on_usr1(int sig)
{
	(void)sig;
	signals++;
}

static void die(const char *what)
{
	dprintf(2, "snapshot-target: %s: %s\n", what, strerror(errno));
	_exit(2);
}

static int read_exact(void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t r = read(CHAN, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static void send_frame(uint16_t type, uint64_t id, const void *p, size_t len)
{
	struct ember_frame_hdr h = { .magic = EMBER_PROTO_MAGIC, .version = EMBER_PROTO_VERSION,
				     .type = type, .id = id, .len = len };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)p, len } };

	if (writev(CHAN, iov, 2) != (ssize_t)(sizeof(h) + len))
		die("send a frame");
}

/* the pattern of word i of a buffer seeded s; every 16th page of the heap is zero */
static uint64_t word(uint64_t s, size_t i)
{
	return (i + 1) * 0x9e3779b97f4a7c15ull ^ s;
}

static uint64_t checksum(void)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < heap_len / 8; i++)
		sum = sum * 31 + heap[i];
	for (size_t i = 0; i < MAP_LEN / 8; i++)
		sum = sum * 31 + anon[i];
	for (size_t i = 0; i < 2 * PG; i++)
		sum = sum * 31 + (unsigned char)filemap[i];
	for (size_t i = 0; i < MAP_LEN / 8; i++)
		sum = sum * 31 + thp[i];
	return sum;
}

static void init(void)
{
	const char *mb = getenv("SNAP_HEAP_MB"), *file = getenv("SNAP_FILE");

	/* every allocation from brk, so that the heap is [heap] (and, static, holds the TCB's
	 * neighbours) */
	mallopt(M_MMAP_MAX, 0);
	heap_len = (size_t)(mb ? atoi(mb) : 200) << 20;
	heap = malloc(heap_len);
	if (!heap)
		die("malloc the heap");
	for (size_t i = 0; i < heap_len / 8; i++)
		heap[i] = word(1, i);
	/* every 16th whole page zero again (malloc's block is not page-aligned) */
	char *first = (char *)(((uintptr_t)heap + PG - 1) & ~(uintptr_t)(PG - 1));
	for (char *pg = first; pg + PG <= (char *)heap + heap_len; pg += 16 * PG)
		memset(pg, 0, PG);

	anon = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		die("mmap");
	/* the first half written, the second never touched (absent: reads zero); no THP here, or
	 * the first write's fault would make the whole 2 MiB present */
	madvise(anon, MAP_LEN, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < MAP_LEN / 16; i++)
		anon[i] = word(2, i);

	/* 2 MiB aligned inside 6 MiB, so that THP can back it */
	char *t6 = mmap(NULL, MAP_LEN + (2u << 20), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t6 == MAP_FAILED)
		die("mmap for THP");
	thp = (uint64_t *)(((uintptr_t)t6 + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
	madvise(thp, MAP_LEN, MADV_HUGEPAGE);
	for (size_t i = 0; i < MAP_LEN / 8; i++)
		thp[i] = word(3, i);

	int fd = open(file, O_RDWR);
	if (fd < 0)
		die(file);
	filemap = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (filemap == MAP_FAILED)
		die("mmap the file");
	memcpy(filemap + PG, "copied on write", 16); /* page 1 private, page 0 the file's */
	if (lseek(fd, 12345, SEEK_SET) < 0 || dup2(fd, 7) < 0)
		die("seek and dup the file");
	close(fd);

	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigaction(SIGUSR1, &sa, NULL);
	brk_at_init = sbrk(0);

	/* what a dump must refuse, on request */
	if (getenv("SNAP_SHARED")) {
		char *sh = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (sh == MAP_FAILED)
			die("mmap shared");
		sh[0] = 1;
	}
	if (getenv("SNAP_PIPE")) {
		int p[2];
		if (pipe(p) < 0 || dup2(p[0], 9) < 0)
			die("pipe");
		close(p[0]);
		close(p[1]);
	}
}

static void answer(uint64_t id, const char *cmd)
{
	char out[4200];

	if (!strcmp(cmd, "sum"))
		snprintf(out, sizeof(out), "%016" PRIx64, checksum());
	else if (!strcmp(cmd, "count"))
		snprintf(out, sizeof(out), "%u", ++counter);
	else if (!strcmp(cmd, "pos"))
		snprintf(out, sizeof(out), "%lld", (long long)lseek(7, 0, SEEK_CUR));
	else if (!strcmp(cmd, "signals"))
		snprintf(out, sizeof(out), "%d", (int)signals);
	else if (!strcmp(cmd, "brk"))
		snprintf(out, sizeof(out), "%p %p", brk_at_init, sbrk(0));
	else if (!strcmp(cmd, "grow")) { /* brk still works after a restore */
		char *p = malloc(8 << 20);
		if (p)
			memset(p, 0x5a, 8 << 20);
		snprintf(out, sizeof(out), "%d", p && p[(8 << 20) - 1] == 0x5a);
	} else if (!strcmp(cmd, "exe")) {
		ssize_t n = readlink("/proc/self/exe", out, sizeof(out) - 1);
		out[n < 0 ? 0 : n] = '\0';
	} else if (!strcmp(cmd, "file")) /* the file's own page, then the private copy */
		snprintf(out, sizeof(out), "%.8s|%.15s", filemap, filemap + PG);
	else if (!strcmp(cmd, "thp"))
		snprintf(out, sizeof(out), "%p", (void *)thp);
	else if (!strcmp(cmd, "pid"))
		snprintf(out, sizeof(out), "%d", (int)getpid());
	else
		snprintf(out, sizeof(out), "unknown command %s", cmd);
	send_frame(EMBER_RESULT, id, out, strlen(out));
}

int main(void)
{
	char why[512];

	init();
	send_frame(EMBER_READY, 0, "{\"sdk\":\"c\"}", 11);
	for (;;) {
		struct ember_frame_hdr h;
		char cmd[256];

		if (read_exact(&h, sizeof(h)) < 0)
			return 0; /* the host went away */
		if (h.type == EMBER_SNAPSHOT) {
			int r = ember_snap_handle(CHAN, h.id, why, sizeof(why));
			if (r < 0) {
				dprintf(2, "snapshot-target: %s\n", why);
				return 1;
			}
			if (r == 1)
				send_frame(EMBER_READY, 0, "{\"sdk\":\"c\",\"restored\":true}", 27);
			continue;
		}
		if (h.type != EMBER_INVOKE || h.len >= sizeof(cmd) || read_exact(cmd, h.len) < 0)
			return 3;
		cmd[h.len] = '\0';
		answer(h.id, cmd);
	}
}
