/* tests/runtime/test_netns_pool.c — create/run take a ready network namespace from
 * <root>/netns-pool instead of creating one: each container gets its own (never one another
 * had), with lo up, and run refills the pool after the container started. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct bundle b;
static struct run_result r;

static void fini(void)
{
	struct run_result rr;

	ember(&b, &rr, ARGS("netns-pool", "destroy"));
	bundle_fini(&b);
}

TestSuite(netns_pool, .fini = fini, .timeout = 60);

/* the pool's entries are named ember-<inode> */
static bool in_pool(const char *ino)
{
	char dir[300], name[64];
	struct dirent *de;
	bool found = false;

	snprintf(dir, sizeof(dir), "%s/netns-pool", b.root);
	snprintf(name, sizeof(name), "ember-%s", ino);
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	while ((de = readdir(d)))
		found |= !strcmp(de->d_name, name);
	closedir(d);
	return found;
}

Test(netns_pool, containers_take_distinct_pooled_namespaces_and_run_refills)
{
	char first[64];

	bundle_init(&b, ARGS("sh", "-c", "readlink /proc/self/ns/net; cat /sys/class/net/lo/flags"));
	bundle_write(&b);
	ember(&b, &r, ARGS("netns-pool", "fill", "2"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "created 2, ready 2\n");

	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	unsigned long ino = 0, flags = 0;
	cr_assert_eq(sscanf(r.out, "net:[%lu]\n0x%lx", &ino, &flags), 2, "%s", r.out);
	cr_assert(flags & 1, "lo is up in a pooled namespace: %s", r.out);
	snprintf(first, sizeof(first), "%lu", ino);
	cr_assert(!in_pool(first), "the namespace left the pool for good");
	assert_no_leak(&b, "c1");

	ember(&b, &r, ARGS("netns-pool", "status"));
	cr_assert_str_eq(r.out, "ready 2\n", "run refilled the pool");

	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	unsigned long ino2 = 0;
	cr_assert_eq(sscanf(r.out, "net:[%lu]", &ino2), 1);
	cr_assert_neq(ino, ino2, "a second container never gets the first one's namespace");
	assert_no_leak(&b, "c1");

	ember(&b, &r, ARGS("netns-pool", "destroy"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	while (fgets(line, sizeof(line), f))
		cr_assert_null(strstr(line, b.root), "pool mount left: %s", line);
	fclose(f);
}

Test(netns_pool, an_empty_pool_falls_back_to_a_new_namespace)
{
	bundle_init(&b, ARGS("readlink", "/proc/self/ns/net"));
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "net:["), "%s", r.out);
	assert_no_leak(&b, "c1");
}
