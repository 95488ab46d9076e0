/* tests/netns/test_pooldir.c — the cross-process pool under a directory: fill, claim (concurrent
 * claimers never share a namespace), empty pool, and destroy leaving no mount and no file. */
#include <criterion/criterion.h>
#include <net/if.h>
#include <pthread.h>
#include <stdlib.h>

#include "helpers.h"

static char dir[64];
static int fds0, threads0;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ember-test-netnspool-%d", getpid());
	fds0 = count_fds();
	threads0 = count_threads();
}

static void teardown(void)
{
	struct em_err err = { 0 };

	em_netns_pool_dir_destroy(dir, &err);
}

TestSuite(pooldir, .init = setup, .fini = teardown, .timeout = 60);

Test(pooldir, fill_claim_destroy)
{
	struct em_err err = { 0 };
	struct em_netns *ns;

	cr_assert_eq(em_netns_pool_dir_init(dir, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_dir_init(dir, &err), 0, "idempotent: %s", err.msg);
	cr_assert_eq(count_mounts("ember-netns-pool"), 1, "one pool tmpfs");
	cr_assert_eq(em_netns_pool_dir_fill(dir, 4, &err), 4, "%s", err.msg);
	cr_assert_eq(em_netns_pool_dir_count(dir, &err), 4);
	cr_assert_eq(count_mounts(dir), 5, "pool mount and 4 entries in mountinfo");
	cr_assert_eq(count_fds(), fds0, "entries are held by mounts, not by fds");
	cr_assert_eq(em_netns_pool_dir_fill(dir, 4, &err), 0, "already full");

	cr_assert_eq(em_netns_pool_dir_claim(dir, &ns, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_dir_count(dir, &err), 3);
	cr_assert_eq(count_mounts(dir), 4, "the claimed entry is unmounted");
	char path[128];
	snprintf(path, sizeof(path), "%s/ember-%llu", dir, (unsigned long long)ns->ino);
	cr_assert_eq(access(path, F_OK), -1, "and removed");
	struct link_q q = { .name = "lo", .prefix = "" };
	cr_assert_eq(query_links(ns->fd, &q), 0);
	cr_assert(q.flags & IFF_UP, "claimed namespace has lo up");
	cr_assert_eq(q.count, 1);
	em_netns_release(ns);

	cr_assert_eq(em_netns_pool_dir_destroy(dir, &err), 0, "%s", err.msg);
	cr_assert_eq(count_mounts(dir), 0, "no mount left");
	cr_assert_eq(count_mounts("ember-netns-pool"), 0);
	cr_assert_eq(access(dir, F_OK), -1, "dir removed");
	cr_assert_eq(count_fds(), fds0);
}

Test(pooldir, empty_is_enoent)
{
	struct em_err err = { 0 };
	struct em_netns *ns;

	cr_assert_eq(em_netns_pool_dir_init(dir, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_dir_claim(dir, &ns, &err), -ENOENT);
	cr_assert(strstr(err.msg, "empty"), "%s", err.msg);
}

#define CLAIMERS 4
#define ENTRIES 12
struct claimer {
	struct em_netns *ns[ENTRIES];
	int n;
};

static void *claim_all(void *p)
{
	struct claimer *c = p;
	struct em_err err = { 0 };
	struct em_netns *ns;

	/* each held until the end, so inode numbers cannot be recycled under the check */
	while (em_netns_pool_dir_claim(dir, &ns, &err) == 0)
		c->ns[c->n++] = ns;
	return NULL;
}

Test(pooldir, concurrent_claimers_never_share)
{
	struct em_err err = { 0 };
	struct claimer c[CLAIMERS] = { 0 };
	pthread_t t[CLAIMERS];
	uint64_t all[ENTRIES];
	int total = 0;

	cr_assert_eq(em_netns_pool_dir_init(dir, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_dir_fill(dir, ENTRIES, &err), ENTRIES, "%s", err.msg);
	int fds_full = count_fds();
	for (int i = 0; i < CLAIMERS; i++)
		pthread_create(&t[i], NULL, claim_all, &c[i]);
	for (int i = 0; i < CLAIMERS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < CLAIMERS; i++)
		for (int j = 0; j < c[i].n; j++)
			all[total++] = c[i].ns[j]->ino;
	cr_assert_eq(total, ENTRIES, "every entry claimed exactly once in total");
	for (int i = 0; i < total; i++)
		for (int j = 0; j < i; j++)
			cr_assert_neq(all[i], all[j], "namespace %llu claimed twice",
				      (unsigned long long)all[i]);
	cr_assert_eq(count_fds(), fds_full + ENTRIES, "losers closed their fds");
	cr_assert_eq(em_netns_pool_dir_count(dir, &err), 0);
	for (int i = 0; i < CLAIMERS; i++)
		for (int j = 0; j < c[i].n; j++)
			em_netns_release(c[i].ns[j]);
	cr_assert_eq(count_fds(), fds_full);
	cr_assert_eq(count_threads(), threads0);
}
