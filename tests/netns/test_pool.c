/* tests/netns/test_pool.c — the pool of ready namespaces against the real kernel: fill, acquire,
 * release, refill, misses; lo up with 127.0.0.1 reachable inside; never a namespace twice; joined
 * and bind-mounted namespaces; nothing left behind (fds, threads, mounts). */
#include <criterion/criterion.h>
#include <net/if.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "helpers.h"

static int fds0, threads0;

static void setup(void)
{
	fds0 = count_fds();
	threads0 = count_threads();
}

/* Everything a test made is gone: fds (namespaces are held by fd), the refill thread, mounts. */
static void assert_clean(void)
{
	cr_assert_eq(count_fds(), fds0, "fds left: %d, had %d", count_fds(), fds0);
	cr_assert_eq(count_threads(), threads0, "threads left");
	cr_assert_eq(count_mounts("/tmp/ember-test-netns-"), 0, "ember mounts left");
}

TestSuite(pool, .init = setup, .timeout = 60);

static uint64_t thread_ns_ino(void)
{
	struct stat st;

	return stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

/* Does any fd of this process refer to namespace ino? */
static int fd_holds_ns(uint64_t ino)
{
	char want[64], path[64], link[64];
	int n = 0;

	snprintf(want, sizeof(want), "net:[%llu]", (unsigned long long)ino);
	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ssize_t l = readlink(path, link, sizeof(link) - 1);
		if (l > 0) {
			link[l] = 0;
			n += strcmp(link, want) == 0;
		}
	}
	return n;
}

Test(pool, fill_acquire_release_refill)
{
	struct em_netns_pool_cfg cfg = { .size = 4 };
	struct em_netns_pool *pool;
	struct em_netns_pool_stats st;
	struct em_netns *ns[4];
	struct em_err err = { 0 };

	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), 0, "%s", err.msg);
	cr_assert_eq(count_threads(), threads0 + 1, "one refill thread");
	cr_assert_eq(em_netns_pool_wait(pool, 4, 10000, &err), 0, "%s", err.msg);
	em_netns_pool_stats(pool, &st);
	cr_assert_eq(st.ready, 4);
	cr_assert_eq(st.created, 4);
	cr_assert_eq(count_fds(), fds0 + 4, "the pool holds one fd per namespace");

	for (int i = 0; i < 4; i++) {
		cr_assert_eq(em_netns_pool_acquire(pool, &ns[i], &err), 0, "%s", err.msg);
		cr_assert_eq(ns[i]->mode, EM_NETNS_NONE);
		cr_assert_neq(ns[i]->ino, thread_ns_ino());
	}
	/* The refill thread brings it back to 4 while we hold 4. */
	cr_assert_eq(em_netns_pool_wait(pool, 4, 10000, &err), 0, "%s", err.msg);
	em_netns_pool_stats(pool, &st);
	cr_assert_eq(st.hits, 4);
	cr_assert_eq(st.misses, 0);
	cr_assert_eq(st.created, 8);
	cr_assert_eq(st.destroyed, 0);

	for (int i = 0; i < 4; i++)
		em_netns_release(ns[i]);
	cr_assert_eq(em_netns_pool_wait(pool, 4, 10000, &err), 0, "%s", err.msg);
	em_netns_pool_stats(pool, &st);
	cr_assert_eq(st.destroyed, 4);
	cr_assert_eq(st.pending_destroy, 0);
	cr_assert_eq(count_fds(), fds0 + 4, "released namespaces' fds are closed");

	em_netns_pool_resize(pool, 1);
	for (int i = 0; i < 100; i++) {
		em_netns_pool_stats(pool, &st);
		if (st.ready == 1)
			break;
		usleep(10000);
	}
	cr_assert_eq(st.ready, 1, "trimmed to the new size");
	cr_assert_eq(st.destroyed, 7);

	em_netns_pool_destroy(pool);
	assert_clean();
}

Test(pool, empty_pool_is_a_miss)
{
	struct em_netns_pool_cfg cfg = { .size = 1 };
	struct em_netns_pool *pool;
	struct em_netns_pool_stats st;
	struct em_netns *a, *b;
	struct em_err err = { 0 };
	uint64_t self = thread_ns_ino();

	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_wait(pool, 1, 10000, &err), 0, "%s", err.msg);
	/* Size 0: the ready one is trimmed and nothing is made again, so the pool is surely empty. */
	em_netns_pool_resize(pool, 0);
	for (int i = 0; i < 500; i++) {
		em_netns_pool_stats(pool, &st);
		if (st.destroyed == 1)
			break;
		usleep(10000);
	}
	cr_assert_eq(st.ready, 0);
	cr_assert_eq(em_netns_pool_acquire(pool, &a, &err), 0, "%s", err.msg);
	em_netns_pool_stats(pool, &st);
	cr_assert_eq(st.misses, 1, "empty pool: a miss");
	cr_assert_eq(st.hits, 0);
	cr_assert_eq(st.created, 2, "made on the caller's path");
	cr_assert_eq(thread_ns_ino(), self, "a miss creates on the caller's thread and comes back");

	em_netns_pool_resize(pool, 1);
	cr_assert_eq(em_netns_pool_wait(pool, 1, 10000, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_acquire(pool, &b, &err), 0, "%s", err.msg);
	em_netns_pool_stats(pool, &st);
	cr_assert_eq(st.hits, 1);
	cr_assert_eq(st.misses, 1);
	cr_assert_neq(a->ino, b->ino);
	em_netns_release(a);
	em_netns_release(b);
	em_netns_pool_destroy(pool);
	assert_clean();
}

static int lo_echo(void *p)
{
	(void)p;
	struct tcp_q l = { .addr = ip4("127.0.0.1"), .fd = -1 };
	char c = 'x', r = 0;

	if (tcp_listen_fn(&l) < 0)
		return -1;
	struct tcp_q c1 = { .addr = l.addr, .port = l.port, .timeout_ms = 2000 };
	tcp_connect_fn(&c1);
	int ok = c1.result == 0;
	if (ok) {
		int s = accept4(l.fd, NULL, NULL, SOCK_CLOEXEC);
		ok = s >= 0 && write(c1.fd, &c, 1) == 1 && read(s, &r, 1) == 1 && r == 'x';
		if (s >= 0)
			close(s);
		close(c1.fd);
	}
	close(l.fd);
	return ok ? 0 : -1;
}

Test(pool, lo_up_and_reachable_inside)
{
	struct em_netns_pool_cfg cfg = { .size = 1 };
	struct em_netns_pool *pool;
	struct em_netns *ns;
	struct em_err err = { 0 };
	struct link_q q = { .name = "lo", .prefix = "", .addr = ip4("127.0.0.1") };

	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_acquire(pool, &ns, &err), 0, "%s", err.msg);
	cr_assert_eq(query_links(ns->fd, &q), 0);
	cr_assert_eq(q.count, 1, "mode none: lo only, found %d links", q.count);
	cr_assert(q.flags & IFF_UP, "lo is up (flags %#x)", q.flags);
	cr_assert(q.flags & IFF_LOOPBACK);
	cr_assert(q.addr_found, "127.0.0.1 on lo");
	cr_assert_eq(q.prefixlen, 8);
	cr_assert_eq(em_netns_run_in(ns->fd, lo_echo, NULL, &err), 0, "TCP over lo inside");
	em_netns_release(ns);
	em_netns_pool_destroy(pool);
	assert_clean();
}

Test(pool, never_handed_out_twice)
{
	struct em_netns_pool_cfg cfg = { .size = 2 };
	struct em_netns_pool *pool;
	struct em_err err = { 0 };
	enum { N = 12 };
	uint64_t inos[N];
	int held[N];

	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), 0, "%s", err.msg);
	for (int i = 0; i < N; i++) {
		struct em_netns *ns;
		cr_assert_eq(em_netns_pool_acquire(pool, &ns, &err), 0, "%s", err.msg);
		inos[i] = ns->ino;
		/* Keep each namespace alive past its release, so its inode number cannot be recycled
		 * by the kernel: a repeat below would then be a real reuse. */
		held[i] = dup(ns->fd);
		em_netns_release(ns);
		cr_assert_eq(em_netns_pool_wait(pool, 0, 10000, &err), 0, "%s", err.msg);
		cr_assert_eq(fd_holds_ns(inos[i]), 1, "the pool holds no fd of a released namespace");
		for (int j = 0; j < i; j++)
			cr_assert_neq(inos[i], inos[j], "namespace %llu handed out twice",
				      (unsigned long long)inos[i]);
	}
	for (int i = 0; i < N; i++)
		close(held[i]);
	em_netns_pool_destroy(pool);
	assert_clean();
}

Test(pool, create_join_and_mount)
{
	char dir[] = "/tmp/ember-test-netns-XXXXXX";
	struct em_netns *ns, *joined;
	struct em_err err = { 0 };
	uint64_t self = thread_ns_ino();

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(em_netns_create(&ns, &err), 0, "%s", err.msg);
	cr_assert_eq(thread_ns_ino(), self, "the caller's thread is back in its namespace");
	cr_assert_neq(ns->ino, self);
	cr_assert_eq(em_netns_mount(ns, dir, &err), 0, "%s", err.msg);
	cr_assert_eq(count_mounts(ns->path), 1, "bind mount %s in mountinfo", ns->path);
	cr_assert_eq(em_netns_join_path(ns->path, &joined, &err), 0, "%s", err.msg);
	cr_assert_eq(joined->mode, EM_NETNS_JOIN);
	cr_assert_eq(joined->ino, ns->ino, "the path names the same namespace");
	em_netns_release(joined);

	char path[sizeof(ns->path)];
	strcpy(path, ns->path);
	em_netns_release(ns);
	cr_assert_eq(count_mounts(path), 0, "released: unmounted");
	cr_assert_eq(access(path, F_OK), -1, "released: mount point removed");

	cr_assert_eq(em_netns_join_path("/proc/self/ns/uts", &joined, &err), -EINVAL);
	cr_assert(strstr(err.msg, "not a network namespace"), "%s", err.msg);
	cr_assert_eq(em_netns_join_path("/nonexistent/ns", &joined, &err), -ENOENT);
	cr_assert_eq(rmdir(dir), 0);
	assert_clean();
}

Test(pool, destroyed_while_a_namespace_is_out)
{
	struct em_netns_pool_cfg cfg = { .size = 2 };
	struct em_netns_pool *pool;
	struct em_netns *ns;
	struct em_err err = { 0 };

	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_acquire(pool, &ns, &err), 0, "%s", err.msg);
	em_netns_pool_destroy(pool);
	cr_assert_eq(count_threads(), threads0, "refill thread stopped");
	cr_assert_eq(count_fds(), fds0 + 1, "only the namespace still out is held");
	struct link_q q = { .name = "lo" };
	cr_assert_eq(query_links(ns->fd, &q), 0);
	cr_assert(q.flags & IFF_UP, "still usable");
	em_netns_release(ns); /* destroys it and frees the pool */
	assert_clean();
}

#define WORKERS 4
#define PER_WORKER 25
struct worker {
	struct em_netns_pool *pool;
	uint64_t ino[PER_WORKER];
	int held[PER_WORKER];
	int failed;
};

static void *acquire_release_loop(void *p)
{
	struct worker *w = p;
	struct em_err err = { 0 };

	for (int i = 0; i < PER_WORKER; i++) {
		struct em_netns *ns;
		if (em_netns_pool_acquire(w->pool, &ns, &err) < 0) {
			w->failed = 1;
			return NULL;
		}
		w->ino[i] = ns->ino;
		w->held[i] = dup(ns->fd); /* keeps the inode number from being recycled */
		em_netns_release(ns);
	}
	return NULL;
}

Test(pool, concurrent_acquirers_get_distinct_namespaces)
{
	struct em_netns_pool_cfg cfg = { .size = 4 };
	struct em_netns_pool_stats st;
	struct worker w[WORKERS] = { 0 };
	pthread_t t[WORKERS];
	struct em_err err = { 0 };

	cr_assert_eq(em_netns_pool_new(&cfg, &w[0].pool, &err), 0, "%s", err.msg);
	for (int i = 0; i < WORKERS; i++) {
		w[i].pool = w[0].pool;
		pthread_create(&t[i], NULL, acquire_release_loop, &w[i]);
	}
	for (int i = 0; i < WORKERS; i++) {
		pthread_join(t[i], NULL);
		cr_assert_not(w[i].failed);
	}
	for (int i = 0; i < WORKERS * PER_WORKER; i++)
		for (int j = 0; j < i; j++)
			cr_assert_neq(w[i / PER_WORKER].ino[i % PER_WORKER],
				      w[j / PER_WORKER].ino[j % PER_WORKER], "a namespace handed out twice");
	cr_assert_eq(em_netns_pool_wait(w[0].pool, 0, 10000, &err), 0, "%s", err.msg);
	em_netns_pool_stats(w[0].pool, &st);
	cr_assert_eq(st.hits + st.misses, WORKERS * PER_WORKER);
	cr_assert_eq(st.destroyed, WORKERS * PER_WORKER);
	cr_log_info("concurrent: hits=%llu misses=%llu", (unsigned long long)st.hits,
		    (unsigned long long)st.misses);
	for (int i = 0; i < WORKERS; i++)
		for (int j = 0; j < PER_WORKER; j++)
			close(w[i].held[j]);
	em_netns_pool_destroy(w[0].pool);
	assert_clean();
}
