/* tools/bench/bench_netns.c — network namespaces: acquire from the pool vs create new (mode none and
 * bridge), release cost on the caller's path, and the pool's refill rate. The bridge lives in a node
 * namespace this benchmark creates; the machine's own namespace is not changed. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "netns/netns.h"
#include "tools/bench/stats.h"

#define RUNS 200

static void die(const char *what, const struct em_err *err)
{
	fprintf(stderr, "bench-netns: %s: %s\n", what, err->msg);
	exit(1);
}

/* Acquire from a warm pool: wait for it to be full before each run, so every sample is a hit and
 * the refill thread is idle (what a host sees when the pool keeps up). */
static void bench_acquire(const char *label, struct em_netns_bridge *br, struct bench_samples *acq,
			  struct bench_samples *rel, struct bench_samples *join)
{
	struct em_netns_pool_cfg cfg = { .size = 4, .mode = br ? EM_NETNS_BRIDGE : EM_NETNS_NONE,
					 .bridge = br };
	struct em_netns_pool_stats st;
	struct em_netns_pool *pool;
	struct em_err err = { 0 };
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

	if (em_netns_pool_new(&cfg, &pool, &err) < 0)
		die("pool", &err);
	for (int i = 0; i < RUNS; i++) {
		struct em_netns *ns;
		if (em_netns_pool_wait(pool, cfg.size, 30000, &err) < 0)
			die("pool wait", &err);
		double t0 = bench_now_us();
		if (em_netns_pool_acquire(pool, &ns, &err) < 0)
			die("acquire", &err);
		double t1 = bench_now_us();
		if (join) {
			/* what a sandbox pays to enter it (then come back) */
			setns(ns->fd, CLONE_NEWNET);
			bench_add(join, bench_now_us() - t1);
			setns(self, CLONE_NEWNET);
		}
		double t2 = bench_now_us();
		em_netns_release(ns);
		bench_add(rel, bench_now_us() - t2);
		bench_add(acq, t1 - t0);
	}
	em_netns_pool_stats(pool, &st);
	printf("# pool (%s): hits=%llu misses=%llu created=%llu destroyed=%llu\n", label,
	       (unsigned long long)st.hits, (unsigned long long)st.misses,
	       (unsigned long long)st.created, (unsigned long long)st.destroyed);
	em_netns_pool_destroy(pool);
	close(self);
}

/* Create on the caller's path, as a runtime without a pool does (runc/crun: unshare in the child). */
static void bench_create(struct em_netns_bridge *br, struct bench_samples *s)
{
	struct em_err err = { 0 };

	for (int i = 0; i < RUNS; i++) {
		struct em_netns *ns;
		struct em_netns_veth v;
		double t0 = bench_now_us();
		if (em_netns_create(&ns, &err) < 0)
			die("create", &err);
		if (br && em_netns_bridge_attach(br, ns->fd, &v, &err) < 0)
			die("attach", &err);
		bench_add(s, bench_now_us() - t0);
		if (br)
			em_netns_bridge_detach(br, &v, NULL);
		em_netns_release(ns);
		usleep(500); /* let the kernel's asynchronous cleanup keep pace, as the pool's does */
	}
}

/* From empty to `size` ready: the time between consecutive namespaces becoming ready. */
static void bench_refill(const char *name, struct em_netns_bridge *br, unsigned size)
{
	struct em_netns_pool_cfg cfg = { .size = size, .mode = br ? EM_NETNS_BRIDGE : EM_NETNS_NONE,
					 .bridge = br };
	struct em_netns_pool_stats st;
	struct bench_samples gaps = { 0 };
	struct em_netns_pool *pool;
	struct em_err err = { 0 };
	double t0 = bench_now_us(), last = t0;
	unsigned seen = 0;

	if (em_netns_pool_new(&cfg, &pool, &err) < 0)
		die("pool", &err);
	while (seen < size) {
		em_netns_pool_stats(pool, &st);
		while (seen < st.ready) {
			double now = bench_now_us();
			bench_add(&gaps, (now - last) / (st.ready - seen));
			last = now;
			seen++;
		}
		if (bench_now_us() - t0 > 60e6) {
			fprintf(stderr, "bench-netns: refill stalled at %u\n", seen);
			exit(1);
		}
		usleep(50);
	}
	double total = bench_now_us() - t0;
	bench_report(name, &gaps, "us");
	printf("%-44s n=%-4u rate=%10.0f namespaces/s\n", name, size, size / (total / 1e6));
	em_netns_pool_destroy(pool);
	bench_free(&gaps);
}

/* The cross-process pool: claim from a directory of bind-mounted namespaces (what `ember run`
 * would do), against creating one. Filled in batches off the measured path; the claimed namespaces
 * are released after each batch, so their teardown does not run under the next claims. */
static void bench_dir(struct bench_samples *create)
{
	enum { BATCH = 50 };
	char dir[64];
	struct bench_samples claim = { 0 };
	struct em_err err = { 0 };
	struct em_netns *ns[BATCH];

	snprintf(dir, sizeof(dir), "/tmp/ember-bench-netnspool-%d", getpid());
	if (em_netns_pool_dir_init(dir, &err) < 0)
		die("pool dir", &err);
	for (int b = 0; b < RUNS / BATCH; b++) {
		if (em_netns_pool_dir_fill(dir, BATCH, &err) < 0)
			die("pool dir fill", &err);
		usleep(200000);
		for (int i = 0; i < BATCH; i++) {
			double t0 = bench_now_us();
			if (em_netns_pool_dir_claim(dir, &ns[i], &err) < 0)
				die("pool dir claim", &err);
			bench_add(&claim, bench_now_us() - t0);
		}
		for (int i = 0; i < BATCH; i++)
			em_netns_release(ns[i]);
	}
	if (em_netns_pool_dir_destroy(dir, &err) < 0)
		die("pool dir destroy", &err);
	bench_report_vs("netns claim from pool dir (none)", &claim, "us", "create new", create);
	bench_free(&claim);
}

int main(void)
{
	struct bench_samples acq = { 0 }, rel = { 0 }, join = { 0 }, create = { 0 };
	struct em_netns_bridge_cfg bcfg = { .name = "embbench0", .subnet = "10.231.128.0/20" };
	struct em_netns_bridge *br;
	struct em_err err = { 0 };
	int node;

	bench_machine_note();

	bench_acquire("none", NULL, &acq, &rel, &join);
	bench_create(NULL, &create);
	bench_report_vs("netns acquire from pool (none)", &acq, "us", "create new", &create);
	bench_report("netns create new (none)", &create, "us");
	bench_report("netns setns into acquired", &join, "us");
	bench_report("netns release (queue for destroy)", &rel, "us");
	bench_dir(&create);
	bench_free(&acq);
	bench_free(&rel);
	bench_free(&create);

	node = em_netns_new_fd(&err);
	if (node < 0)
		die("node namespace", &err);
	bcfg.node_nsfd = node;
	if (em_netns_bridge_open(&bcfg, &br, &err) < 0)
		die("bridge", &err);
	bench_acquire("bridge", br, &acq, &rel, NULL);
	bench_create(br, &create);
	bench_report_vs("netns acquire from pool (bridge)", &acq, "us", "create new", &create);
	bench_report("netns create new (bridge: veth+addr+route)", &create, "us");
	bench_report("netns release (bridge)", &rel, "us");

	bench_refill("netns pool refill, per namespace (none)", NULL, 64);
	bench_refill("netns pool refill, per namespace (bridge)", br, 64);

	em_netns_bridge_close(br, true);
	close(node);
	bench_free(&acq);
	bench_free(&rel);
	bench_free(&create);
	bench_free(&join);
	return 0;
}
