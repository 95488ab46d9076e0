/* netns/bridge.c — the ember bridge in a node namespace, and veth pairs from sandboxes to it.
 * The bridge object owns a netlink socket bound to the node namespace (serialised by its lock, as a
 * libnl socket is not thread-safe) and the subnet's address allocator. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netlink/errno.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "netns/nl.h"

struct em_netns_bridge {
	pthread_mutex_t lock;        /* guards sk, used[], cursor, seq */
	int node_fd;
	struct nl_sock *sk;          /* bound to the node namespace */
	char name[IF_NAMESIZE];
	char sandbox_ifname[IF_NAMESIZE];
	int ifindex;
	uint32_t net;                /* host order */
	unsigned prefixlen;
	uint32_t nhosts;             /* usable host offsets 1..nhosts; offset 1 is the bridge */
	uint8_t *used;               /* one byte per offset: simple, subnets are small */
	uint32_t cursor;             /* allocation goes round: a freed address is reused last */
	uint32_t seq;                /* veth names */
};

static struct in_addr host_addr(const struct em_netns_bridge *br, uint32_t off)
{
	struct in_addr a = { .s_addr = htonl(br->net + off) };

	return a;
}

int em_netns_bridge_ifindex(const struct em_netns_bridge *br)
{
	return br->ifindex;
}

struct in_addr em_netns_bridge_addr(const struct em_netns_bridge *br)
{
	return host_addr(br, 1);
}

static int parse_subnet(const char *s, uint32_t *net, unsigned *plen, struct em_err *err)
{
	char buf[32], *slash, *end;
	struct in_addr a;
	unsigned long p;

	if (strlen(s) >= sizeof(buf))
		return em_err_msg(err, EINVAL, "subnet %s: not an IPv4 CIDR", s);
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash)
		return em_err_msg(err, EINVAL, "subnet %s: no prefix length", s);
	*slash = 0;
	errno = 0;
	p = strtoul(slash + 1, &end, 10);
	if (inet_pton(AF_INET, buf, &a) != 1 || *end || errno || p < 8 || p > 30)
		return em_err_msg(err, EINVAL, "subnet %s: want a.b.c.d/p with p in 8..30", s);
	*plen = p;
	*net = ntohl(a.s_addr) & (0xffffffffu << (32 - p));
	return 0;
}

/* The machine's own namespace — init's, and the one this process runs in — is never touched. */
static int refuse_own_ns(int nsfd, struct em_err *err)
{
	static const char *const own[] = { "/proc/1/ns/net", "/proc/self/ns/net" };
	struct stat node, st;

	if (fstat(nsfd, &node) < 0)
		return em_err_set(err, errno, "stat node network namespace");
	for (size_t i = 0; i < EM_ARRAY_SIZE(own); i++)
		if (stat(own[i], &st) == 0 && st.st_ino == node.st_ino && st.st_dev == node.st_dev)
			return em_err_msg(err, EPERM,
					  "node network namespace is the machine's own (%s): refused",
					  own[i]);
	return 0;
}

static int bridge_setup(struct em_netns_bridge *br, struct em_err *err)
{
	struct rtnl_link *link = rtnl_link_bridge_alloc();
	int ret;

	if (!link)
		return em_err_set(err, ENOMEM, "allocate bridge %s", br->name);
	rtnl_link_set_name(link, br->name);
	ret = rtnl_link_add(br->sk, link, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(link);
	if (ret < 0 && ret != -NLE_EXIST)
		return nl_fail(err, ret, "create bridge %s", br->name);
	ret = nl_link_ifindex(br->sk, "bridge", br->name, err);
	if (ret < 0)
		return ret;
	br->ifindex = ret;
	ret = nl_addr_add(br->sk, br->ifindex, host_addr(br, 1), br->prefixlen, br->name, err);
	if (ret < 0 && ret != -EEXIST)
		return ret;
	return nl_link_up(br->sk, br->ifindex, 0, "bridge", br->name, err);
}

int em_netns_bridge_open(const struct em_netns_bridge_cfg *cfg, struct em_netns_bridge **out,
			 struct em_err *err)
{
	const char *name = cfg->name ? cfg->name : "emb0";
	const char *subnet = cfg->subnet ? cfg->subnet : "10.88.0.0/24";
	const char *inside = cfg->sandbox_ifname ? cfg->sandbox_ifname : "eth0";
	struct em_netns_bridge *br;
	int ret;

	if (strncmp(name, "emb", 3) || strlen(name) >= IF_NAMESIZE)
		return em_err_msg(err, EINVAL, "bridge name %s: want emb<...>, at most %d chars", name,
				  IF_NAMESIZE - 1);
	if (!*inside || strlen(inside) >= IF_NAMESIZE)
		return em_err_msg(err, EINVAL, "sandbox interface name %s: bad length", inside);
	ret = refuse_own_ns(cfg->node_nsfd, err);
	if (ret < 0)
		return ret;
	br = calloc(1, sizeof(*br));
	if (!br)
		return em_err_set(err, ENOMEM, "allocate bridge %s", name);
	pthread_mutex_init(&br->lock, NULL);
	br->node_fd = -1;
	snprintf(br->name, sizeof(br->name), "%s", name);
	snprintf(br->sandbox_ifname, sizeof(br->sandbox_ifname), "%s", inside);
	ret = parse_subnet(subnet, &br->net, &br->prefixlen, err);
	if (ret < 0)
		goto fail;
	br->nhosts = (1u << (32 - br->prefixlen)) - 2;
	br->used = calloc(br->nhosts + 1, 1);
	if (!br->used) {
		ret = em_err_set(err, ENOMEM, "allocate address map for %s", subnet);
		goto fail;
	}
	br->used[1] = 1;
	br->cursor = 1;
	br->node_fd = fcntl(cfg->node_nsfd, F_DUPFD_CLOEXEC, 3);
	if (br->node_fd < 0) {
		ret = em_err_set(err, errno, "dup node namespace fd");
		goto fail;
	}
	ret = nl_open_in(br->node_fd, &br->sk, err);
	if (ret < 0)
		goto fail;
	ret = bridge_setup(br, err);
	if (ret < 0)
		goto fail;
	*out = br;
	return 0;
fail:
	em_err_prefix(err, "open bridge %s", name);
	em_netns_bridge_close(br, false);
	return ret;
}

void em_netns_bridge_close(struct em_netns_bridge *br, bool delete_bridge)
{
	if (!br)
		return;
	if (delete_bridge && br->sk && br->ifindex > 0)
		nl_link_del(br->sk, br->ifindex, "bridge", br->name, NULL);
	if (br->sk)
		nl_socket_free(br->sk);
	if (br->node_fd >= 0)
		close(br->node_fd);
	pthread_mutex_destroy(&br->lock);
	free(br->used);
	free(br);
}

/* Under br->lock. */
static uint32_t addr_alloc(struct em_netns_bridge *br)
{
	for (uint32_t i = 0; i < br->nhosts; i++) {
		uint32_t off = (br->cursor + i) % br->nhosts + 1;
		if (!br->used[off]) {
			br->used[off] = 1;
			br->cursor = off;
			return off;
		}
	}
	return 0;
}

static void addr_free(struct em_netns_bridge *br, struct in_addr a)
{
	uint32_t off = ntohl(a.s_addr) - br->net;

	pthread_mutex_lock(&br->lock);
	if (off > 1 && off <= br->nhosts)
		br->used[off] = 0;
	pthread_mutex_unlock(&br->lock);
}

/* Create the pair from inside the sandbox, with the peer created directly in the node namespace
 * (IFLA_NET_NS_FD on the peer): the peer never appears in the namespace ember runs in. */
static int veth_add(struct nl_sock *inside, const char *ifname, const char *peer, int node_fd,
		    struct em_err *err)
{
	struct rtnl_link *link = rtnl_link_veth_alloc(), *p;
	int ret;

	if (!link)
		return em_err_set(err, ENOMEM, "allocate veth %s", peer);
	rtnl_link_set_name(link, ifname);
	p = rtnl_link_veth_get_peer(link);
	rtnl_link_set_name(p, peer);
	rtnl_link_set_ns_fd(p, node_fd);
	rtnl_link_put(p);
	ret = rtnl_link_add(inside, link, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(link);
	if (ret < 0)
		return nl_fail(err, ret, "create veth %s (peer of %s)", peer, ifname);
	return 0;
}

int bridge_attach_from_inside(struct em_netns_bridge *br, struct nl_sock *inside,
			      struct em_netns_veth *out, struct em_err *err)
{
	struct em_netns_veth v = { 0 };
	uint32_t off;
	int ret, ifindex;

	snprintf(v.ifname, sizeof(v.ifname), "%s", br->sandbox_ifname);
	v.prefixlen = br->prefixlen;
	v.gateway = host_addr(br, 1);
	pthread_mutex_lock(&br->lock);
	off = addr_alloc(br);
	pthread_mutex_unlock(&br->lock);
	if (!off)
		return em_err_msg(err, EADDRNOTAVAIL, "bridge %s: no free address left", br->name);
	v.addr = host_addr(br, off);

	/* A name left by a dead process with our pid is possible: try the next sequence number. */
	for (int tries = 0;; tries++) {
		pthread_mutex_lock(&br->lock);
		uint32_t seq = br->seq++;
		pthread_mutex_unlock(&br->lock);
		snprintf(v.peer, sizeof(v.peer), "emv%06x%06x", (unsigned)getpid() & 0xffffff,
			 seq & 0xffffff);
		ret = veth_add(inside, v.ifname, v.peer, br->node_fd, err);
		if (ret != -EEXIST || tries == 8)
			break;
		if (nl_link_ifindex(inside, "veth", v.ifname, NULL) > 0)
			break; /* the clash is inside the sandbox: a new peer name will not help */
	}
	if (ret < 0)
		goto fail_addr;

	pthread_mutex_lock(&br->lock);
	ret = nl_link_ifindex(br->sk, "veth", v.peer, err);
	if (ret > 0) {
		v.peer_ifindex = ret;
		ret = nl_link_up(br->sk, v.peer_ifindex, br->ifindex, "veth", v.peer, err);
	}
	pthread_mutex_unlock(&br->lock);
	if (ret < 0)
		goto fail_veth;

	ifindex = nl_link_ifindex(inside, "veth", v.ifname, err);
	if (ifindex < 0) {
		ret = ifindex;
		goto fail_veth;
	}
	ret = nl_addr_add(inside, ifindex, v.addr, v.prefixlen, v.ifname, err);
	if (ret == 0)
		ret = nl_link_up(inside, ifindex, 0, "veth", v.ifname, err);
	if (ret == 0)
		ret = nl_route_default(inside, ifindex, v.gateway, v.ifname, err);
	if (ret < 0)
		goto fail_veth;
	*out = v;
	return 0;

fail_veth:
	/* Deleting the sandbox end removes the pair (whichever end, the peer goes too). */
	{
		int idx = nl_link_ifindex(inside, "veth", v.ifname, NULL);
		if (idx > 0)
			nl_link_del(inside, idx, "veth", v.ifname, NULL);
	}
fail_addr:
	addr_free(br, v.addr);
	em_err_prefix(err, "attach to bridge %s", br->name);
	return ret;
}

int em_netns_bridge_attach(struct em_netns_bridge *br, int nsfd, struct em_netns_veth *out,
			   struct em_err *err)
{
	cleanup_nlsock struct nl_sock *sk = NULL;
	int ret = nl_open_in(nsfd, &sk, err);

	if (ret < 0)
		return ret;
	return bridge_attach_from_inside(br, sk, out, err);
}

int em_netns_bridge_detach(struct em_netns_bridge *br, const struct em_netns_veth *veth,
			   struct em_err *err)
{
	struct rtnl_link *link = NULL;
	int ret;

	pthread_mutex_lock(&br->lock);
	/* Check the name behind the ifindex first: never delete another interface that took a
	 * recycled index after our pair vanished some other way. */
	ret = rtnl_link_get_kernel(br->sk, veth->peer_ifindex, NULL, &link);
	if (ret == 0) {
		if (strcmp(rtnl_link_get_name(link), veth->peer) == 0)
			ret = nl_link_del(br->sk, veth->peer_ifindex, "veth", veth->peer, err);
		rtnl_link_put(link);
	} else if (ret == -NLE_NODEV || ret == -NLE_OBJ_NOTFOUND) {
		ret = 0; /* already gone with its namespace */
	} else {
		ret = nl_fail(err, ret, "look up veth %s", veth->peer);
	}
	pthread_mutex_unlock(&br->lock);
	addr_free(br, veth->addr);
	return ret;
}
