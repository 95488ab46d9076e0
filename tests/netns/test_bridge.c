/* tests/netns/test_bridge.c — bridge mode against the real kernel. Each test makes its own "node"
 * namespace to hold the bridge; the machine's own namespace is never changed (checked: no em*
 * interface appears in it). Sandboxes reach each other and the bridge, and nothing else. */
#include <criterion/criterion.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdlib.h>

#include "helpers.h"

static int node = -1, fds0, threads0;
static struct em_netns_bridge *br;
#define SUBNET "10.231.7.0/24"

static void setup(void)
{
	struct em_err err = { 0 };
	struct em_netns_bridge_cfg cfg = { .name = "embtest0", .subnet = SUBNET };

	fds0 = count_fds();
	threads0 = count_threads();
	node = em_netns_new_fd(&err);
	cr_assert_geq(node, 0, "%s", err.msg);
	cfg.node_nsfd = node;
	cr_assert_eq(em_netns_bridge_open(&cfg, &br, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
	em_netns_bridge_close(br, true);
	br = NULL;
	if (node >= 0)
		close(node);
	node = -1;
}

static void assert_root_untouched(void)
{
	struct link_q q = { .prefix = "em" };

	cr_assert_eq(query_links(-1, &q), 0);
	cr_assert_eq(q.count, 0, "%d em* interfaces in the machine's own namespace", q.count);
}

TestSuite(bridge, .init = setup, .fini = teardown, .timeout = 60);

Test(bridge, bridge_is_in_the_node_namespace_only)
{
	struct link_q q = { .name = "embtest0", .addr = ip4("10.231.7.1") };

	cr_assert_eq(query_links(node, &q), 0);
	cr_assert_gt(q.ifindex, 0, "bridge exists in the node namespace");
	cr_assert_eq(q.ifindex, em_netns_bridge_ifindex(br));
	cr_assert(q.flags & IFF_UP, "bridge up");
	cr_assert(q.addr_found, "bridge holds the subnet's first address");
	cr_assert_eq(q.prefixlen, 24);
	assert_root_untouched();
}

Test(bridge, refuses_the_machines_own_namespace)
{
	struct em_netns_bridge_cfg cfg = { .name = "embtest1", .subnet = SUBNET };
	struct em_netns_bridge *b2;
	struct em_err err = { 0 };

	cfg.node_nsfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	cr_assert_eq(em_netns_bridge_open(&cfg, &b2, &err), -EPERM);
	cr_assert(strstr(err.msg, "machine's own"), "%s", err.msg);
	close(cfg.node_nsfd);
	cfg.node_nsfd = node;
	cfg.name = "eth9";
	cr_assert_eq(em_netns_bridge_open(&cfg, &b2, &err), -EINVAL, "names must be emb*");
	assert_root_untouched();
}

/* Every IPv4 address of the machine's own namespace except loopback. */
static int host_addrs(struct in_addr *out, int cap)
{
	struct ifaddrs *ifa, *i;
	int n = 0;

	if (getifaddrs(&ifa) < 0)
		return 0;
	for (i = ifa; i && n < cap; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && !(i->ifa_flags & IFF_LOOPBACK))
			out[n++] = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
	freeifaddrs(ifa);
	return n;
}

static void assert_sandbox_link(struct em_netns *ns)
{
	struct link_q in = { .name = ns->veth.ifname, .prefix = "", .addr = ns->veth.addr };
	struct link_q peer = { .name = ns->veth.peer };

	cr_assert_eq(query_links(ns->fd, &in), 0);
	cr_assert_eq(in.count, 2, "lo and %s only", ns->veth.ifname);
	cr_assert(in.flags & IFF_UP, "%s up", ns->veth.ifname);
	cr_assert(in.addr_found, "%s has its address", ns->veth.ifname);
	cr_assert_eq(in.prefixlen, 24);
	cr_assert_eq(query_links(node, &peer), 0);
	cr_assert_eq(peer.ifindex, ns->veth.peer_ifindex, "peer %s in the node namespace",
		     ns->veth.peer);
	cr_assert_eq(peer.master, em_netns_bridge_ifindex(br), "peer enslaved to the bridge");
	cr_assert(peer.flags & IFF_UP, "peer up");
}

Test(bridge, sandboxes_reach_each_other_and_the_bridge_only)
{
	struct em_netns_pool_cfg cfg = { .size = 2, .mode = EM_NETNS_BRIDGE, .bridge = br };
	struct em_netns_pool *pool;
	struct em_netns *a, *b;
	struct em_err err = { 0 };
	int port, lfd;

	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_acquire(pool, &a, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_acquire(pool, &b, &err), 0, "%s", err.msg);
	cr_assert_eq(a->mode, EM_NETNS_BRIDGE);
	cr_assert_neq(a->veth.addr.s_addr, b->veth.addr.s_addr, "distinct addresses");
	assert_sandbox_link(a);
	assert_sandbox_link(b);

	/* a -> b and b -> a */
	lfd = tcp_listen_in(b->fd, b->veth.addr, &port);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(tcp_connect_from(a->fd, b->veth.addr, port, 3000), 0, "a reaches b");
	close(lfd);
	lfd = tcp_listen_in(a->fd, a->veth.addr, &port);
	cr_assert_eq(tcp_connect_from(b->fd, a->veth.addr, port, 3000), 0, "b reaches a");
	close(lfd);
	/* a -> the bridge's address in the node namespace */
	struct in_addr gw = em_netns_bridge_addr(br);
	lfd = tcp_listen_in(node, gw, &port);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(tcp_connect_from(a->fd, gw, port, 3000), 0, "a reaches the bridge");
	close(lfd);

	/* Nothing else: the machine's real addresses. ECONNREFUSED would mean a packet got there. */
	struct in_addr host[8];
	int n = host_addrs(host, 8);
	cr_assert_gt(n, 0, "the machine has a non-loopback IPv4 address to try");
	for (int i = 0; i < n; i++) {
		int r = tcp_connect_from(a->fd, host[i], 22, 1000);
		char s[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &host[i], s, sizeof(s));
		cr_log_info("connect to %s:22 from a sandbox: %s", s, strerror(r));
		cr_assert(r == ENETUNREACH || r == EHOSTUNREACH || r == ETIMEDOUT,
			  "%s from a sandbox: %s", s, strerror(r));
	}

	em_netns_release(a);
	em_netns_release(b);
	em_netns_pool_destroy(pool);

	struct link_q q = { .prefix = "emv" };
	cr_assert_eq(query_links(node, &q), 0);
	cr_assert_eq(q.count, 0, "every veth peer deleted from the node namespace");
	assert_root_untouched();
	cr_assert_eq(count_threads(), threads0);
}

Test(bridge, release_frees_the_veth_and_address)
{
	struct em_netns_pool_cfg cfg = { .size = 1, .mode = EM_NETNS_BRIDGE, .bridge = br };
	struct em_netns_pool *pool;
	struct em_netns *a;
	struct em_err err = { 0 };
	char peer[IF_NAMESIZE];

	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_wait(pool, 1, 10000, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_acquire(pool, &a, &err), 0, "%s", err.msg);
	strcpy(peer, a->veth.peer);
	em_netns_release(a);
	cr_assert_eq(em_netns_pool_wait(pool, 1, 10000, &err), 0, "%s", err.msg);
	struct link_q q = { .name = peer, .prefix = "emv" };
	cr_assert_eq(query_links(node, &q), 0);
	cr_assert_eq(q.ifindex, 0, "%s gone after release", peer);
	cr_assert_eq(q.count, 1, "only the pool's ready namespace has a veth");
	em_netns_pool_destroy(pool);
}

Test(bridge, attach_joined_namespace_and_errors_name_the_interface)
{
	struct em_netns *ns;
	struct em_netns_veth v, v2;
	struct em_err err = { 0 };

	cr_assert_eq(em_netns_create(&ns, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_bridge_attach(br, ns->fd, &v, &err), 0, "%s", err.msg);
	struct link_q q = { .name = v.ifname, .addr = v.addr };
	cr_assert_eq(query_links(ns->fd, &q), 0);
	cr_assert(q.flags & IFF_UP);
	cr_assert(q.addr_found);
	/* A second eth0 in the same namespace: netlink says EEXIST; the message says which. */
	cr_assert_eq(em_netns_bridge_attach(br, ns->fd, &v2, &err), -EEXIST);
	cr_log_info("%s", err.msg);
	cr_assert(strstr(err.msg, "eth0") && strstr(err.msg, "emv") &&
		  strstr(err.msg, "Object exists"), "%s", err.msg);
	cr_assert_eq(em_netns_bridge_detach(br, &v, &err), 0, "%s", err.msg);
	struct link_q p = { .prefix = "emv" };
	cr_assert_eq(query_links(node, &p), 0);
	cr_assert_eq(p.count, 0);
	em_netns_release(ns);
}

/* Named namespaces (`ip netns` style) under /run/netns whose name starts with ember-. */
static int named_ember_netns(void)
{
	DIR *d = opendir("/run/netns");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += strncmp(e->d_name, "ember-", 6) == 0;
	closedir(d);
	return n;
}

Test(bridge, nothing_left)
{
	teardown();
	cr_assert_eq(named_ember_netns(), 0, "no named ember namespace");
	cr_assert_eq(count_fds(), fds0, "fds: %d vs %d", count_fds(), fds0);
	assert_root_untouched();
}
