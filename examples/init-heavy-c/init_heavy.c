/* examples/init-heavy-c — a function whose init is expensive: it computes a table of TABLE_MB
 * megabytes (default 256) of 64-bit entries, entry i = splitmix64(i), which takes about a second
 * on the development VM (most of it page faults). The handler reads entries of the table: the
 * payload lists entry indices (decimal, separated by blanks; each taken modulo the table size),
 * or is empty for one entry per 4 KiB page (the whole table's pages). Answer:
 * {"tableMb":M,"entries":K,"checksum":"<hex of the 64-bit wrapping sum of the entries>"}.
 *
 * This is the function that shows what a zygote or a snapshot saves: a cold start pays the init
 * every time; a forked or restored instance has the table already.
 * TABLE_THP=1 asks for transparent huge pages for the table (MADV_HUGEPAGE). */
#include "ember_fn.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

struct table {
	uint64_t *e;
	size_t n;
	unsigned long mb;
};

/* splitmix64 (Steele, Lea, Flood 2014): a cheap, well-mixed function of the index */
static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static int init(void *ctx)
{
	struct table *t = ctx;
	const char *mb = getenv("TABLE_MB"), *thp = getenv("TABLE_THP");
	struct timespec a, b;
	char *end;

	t->mb = mb ? strtoul(mb, &end, 10) : 256;
	if (mb && (end == mb || *end || t->mb < 1 || t->mb > 65536))
		return ember_fn_init_error("Config", "TABLE_MB=%s is not a size from 1 to 65536 MB", mb);
	clock_gettime(CLOCK_MONOTONIC, &a);
	size_t bytes = (size_t)t->mb << 20;
	t->e = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->e == MAP_FAILED)
		return ember_fn_init_error("OutOfMemory", "map a %lu MB table: %s", t->mb,
					   strerror(errno));
	if (thp && !strcmp(thp, "1"))
		madvise(t->e, bytes, MADV_HUGEPAGE); /* advice: fine if the kernel declines */
	t->n = bytes / sizeof(uint64_t);
	for (size_t i = 0; i < t->n; i++)
		t->e[i] = splitmix64(i);
	clock_gettime(CLOCK_MONOTONIC, &b);
	fprintf(stderr, "init-heavy-c: built a %lu MB table in %.0f ms\n", t->mb,
		(double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
	return 0;
}

static int handler(const struct ember_fn_request *req, struct ember_fn_response *resp)
{
	const struct table *t = req->ctx;
	const char *p = req->body, *end = req->body + req->len;
	uint64_t sum = 0;
	size_t k = 0;

	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p == end) {
		for (size_t i = 0; i < t->n; i += 4096 / sizeof(uint64_t), k++)
			sum += t->e[i];
	}
	while (p < end) {
		char *q;
		unsigned long long i = strtoull(p, &q, 10);

		if (q == p || *p == '-' || (q < end && !isspace((unsigned char)*q)))
			return ember_fn_error(resp, "BadRequest",
					      "payload: entry indices separated by blanks, or nothing");
		sum += t->e[i % t->n];
		k++;
		for (p = q; p < end && isspace((unsigned char)*p); p++)
			;
	}
	return ember_fn_printf(resp, "{\"tableMb\":%lu,\"entries\":%zu,\"checksum\":\"%016" PRIx64 "\"}",
			       t->mb, k, sum);
}

int main(int argc, char **argv)
{
	static struct table table;
	static const struct ember_fn fn = { .init = init, .handler = handler, .ctx = &table };

	return ember_fn_main(argc, argv, &fn);
}
