/* netns/nl.c — libnl-route helpers: sockets bound to a namespace, links, addresses, routes.
 * libnl objects are freed on every path; errors name the interface and carry nl_geterror(). */
#include "netns/nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/err.h"

/* libnl folds errno into its own NLE_* codes; map the ones netlink returns back to errno so callers
 * can branch on err->code (EEXIST on a name clash, ENODEV on a missing link, ...). */
static int nle_to_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_EXIST: return EEXIST;
	case NLE_OBJ_NOTFOUND: return ENOENT;
	case NLE_NODEV: return ENODEV;
	case NLE_PERM: return EPERM;
	case NLE_NOACCESS: return EACCES;
	case NLE_NOMEM: return ENOMEM;
	case NLE_BUSY: return EBUSY;
	case NLE_INVAL: return EINVAL;
	case NLE_RANGE: return ERANGE;
	case NLE_AGAIN: return EAGAIN;
	case NLE_OPNOTSUPP: return EOPNOTSUPP;
	case NLE_AF_NOSUPPORT: return EAFNOSUPPORT;
	case NLE_MSGSIZE: return EMSGSIZE;
	case NLE_NOADDR: return EADDRNOTAVAIL;
	default: return EIO;
	}
}

int nl_fail(struct em_err *err, int nlret, const char *fmt, ...)
{
	char msg[EM_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return em_err_msg(err, nle_to_errno(nlret), "%s: %s", msg, nl_geterror(nlret));
}

int nl_open_here(struct nl_sock **out, struct em_err *err)
{
	struct nl_sock *sk = nl_socket_alloc();
	int ret;

	if (!sk)
		return em_err_set(err, ENOMEM, "allocate netlink socket");
	ret = nl_connect(sk, NETLINK_ROUTE);
	if (ret < 0) {
		nl_socket_free(sk);
		return nl_fail(err, ret, "connect rtnetlink socket");
	}
	*out = sk;
	return 0;
}

int nl_open_in(int nsfd, struct nl_sock **out, struct em_err *err)
{
	cleanup_close int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int ret;

	if (self < 0)
		return em_err_set(err, errno, "open /proc/thread-self/ns/net");
	if (setns(nsfd, CLONE_NEWNET) < 0)
		return em_err_set(err, errno, "enter network namespace");
	ret = nl_open_here(out, err);
	/* Coming back cannot fail for a namespace we were in a moment ago, short of the kernel
	 * running out of memory; if it does, say so loudly rather than leave the thread elsewhere. */
	if (setns(self, CLONE_NEWNET) < 0) {
		int e = errno;
		if (ret == 0)
			nl_socket_free(*out);
		return em_err_set(err, e, "return to the thread's own network namespace");
	}
	return ret;
}

int nl_link_ifindex(struct nl_sock *sk, const char *kind, const char *name, struct em_err *err)
{
	struct rtnl_link *link = NULL;
	int ret = rtnl_link_get_kernel(sk, 0, name, &link);

	if (ret < 0)
		return nl_fail(err, ret, "look up %s %s", kind, name);
	ret = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	return ret;
}

int nl_link_up(struct nl_sock *sk, int ifindex, int master_ifindex, const char *kind,
	       const char *name, struct em_err *err)
{
	struct rtnl_link *orig = rtnl_link_alloc(), *change = rtnl_link_alloc();
	int ret = -NLE_NOMEM;

	if (!orig || !change)
		goto out;
	rtnl_link_set_ifindex(orig, ifindex);
	rtnl_link_set_flags(change, IFF_UP);
	if (master_ifindex > 0)
		rtnl_link_set_master(change, master_ifindex);
	ret = rtnl_link_change(sk, orig, change, 0);
out:
	if (orig)
		rtnl_link_put(orig);
	if (change)
		rtnl_link_put(change);
	if (ret < 0)
		return nl_fail(err, ret, master_ifindex > 0 ? "attach %s %s to bridge and set it up"
							    : "set %s %s up", kind, name);
	return 0;
}

int nl_link_del(struct nl_sock *sk, int ifindex, const char *kind, const char *name,
		struct em_err *err)
{
	struct rtnl_link *link = rtnl_link_alloc();
	int ret;

	if (!link)
		return em_err_set(err, ENOMEM, "delete %s %s", kind, name);
	rtnl_link_set_ifindex(link, ifindex);
	ret = rtnl_link_delete(sk, link);
	rtnl_link_put(link);
	if (ret < 0)
		return nl_fail(err, ret, "delete %s %s", kind, name);
	return 0;
}

static struct nl_addr *nlinet(struct in_addr a, unsigned prefixlen)
{
	struct nl_addr *na = nl_addr_build(AF_INET, &a, sizeof(a));

	if (na)
		nl_addr_set_prefixlen(na, prefixlen);
	return na;
}

int nl_addr_add(struct nl_sock *sk, int ifindex, struct in_addr a, unsigned prefixlen,
		const char *name, struct em_err *err)
{
	struct rtnl_addr *ra = rtnl_addr_alloc();
	struct nl_addr *local = nlinet(a, prefixlen);
	char buf[INET_ADDRSTRLEN];
	int ret = -NLE_NOMEM;

	if (!ra || !local)
		goto out;
	rtnl_addr_set_ifindex(ra, ifindex);
	rtnl_addr_set_family(ra, AF_INET);
	ret = rtnl_addr_set_local(ra, local);
	if (ret == 0)
		ret = rtnl_addr_add(sk, ra, 0);
out:
	if (local)
		nl_addr_put(local);
	if (ra)
		rtnl_addr_put(ra);
	if (ret < 0)
		return nl_fail(err, ret, "add address %s/%u to %s",
			       inet_ntop(AF_INET, &a, buf, sizeof(buf)), prefixlen, name);
	return 0;
}

int nl_route_default(struct nl_sock *sk, int ifindex, struct in_addr gw, const char *name,
		     struct em_err *err)
{
	struct rtnl_route *rt = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct in_addr any = { 0 };
	struct nl_addr *dst = nlinet(any, 0), *via = nlinet(gw, 32);
	int ret = -NLE_NOMEM;

	if (!rt || !nh || !dst || !via)
		goto out;
	rtnl_route_set_family(rt, AF_INET);
	rtnl_route_set_table(rt, RT_TABLE_MAIN);
	rtnl_route_set_protocol(rt, RTPROT_STATIC);
	rtnl_route_set_scope(rt, RT_SCOPE_UNIVERSE);
	rtnl_route_set_type(rt, RTN_UNICAST);
	ret = rtnl_route_set_dst(rt, dst);
	if (ret < 0)
		goto out;
	rtnl_route_nh_set_ifindex(nh, ifindex);
	rtnl_route_nh_set_gateway(nh, via);
	rtnl_route_add_nexthop(rt, nh);
	nh = NULL; /* owned by the route now */
	ret = rtnl_route_add(sk, rt, NLM_F_CREATE | NLM_F_EXCL);
out:
	if (nh)
		rtnl_route_nh_free(nh);
	if (dst)
		nl_addr_put(dst);
	if (via)
		nl_addr_put(via);
	if (rt)
		rtnl_route_put(rt);
	if (ret < 0) {
		char buf[INET_ADDRSTRLEN];
		return nl_fail(err, ret, "add default route via %s dev %s",
			       inet_ntop(AF_INET, &gw, buf, sizeof(buf)), name);
	}
	return 0;
}
