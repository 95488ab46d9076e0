/* netns/nl.h — internal: libnl-route helpers shared by the netns/ sources. Every helper names the
 * interface and the step in its error and translates libnl's code with nl_geterror(). */
#ifndef EMBER_NETNS_NL_H
#define EMBER_NETNS_NL_H

#include <netinet/in.h>
#include <netlink/netlink.h>

#include "netns/netns.h"

struct em_err;

/* Record a libnl failure (nlret is a negative NLE_* code): "<msg>: <nl_geterror>", errno-ish code. */
int nl_fail(struct em_err *err, int nlret, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A NETLINK_ROUTE socket bound to the calling thread's current namespace. */
int nl_open_here(struct nl_sock **out, struct em_err *err);
/* A NETLINK_ROUTE socket bound to nsfd's namespace (the calling thread enters and comes back). */
int nl_open_in(int nsfd, struct nl_sock **out, struct em_err *err);
static inline void nl_sock_freep(struct nl_sock **s)
{
	if (*s)
		nl_socket_free(*s);
}
#define cleanup_nlsock __attribute__((cleanup(nl_sock_freep)))

/* Look an interface up by name: ifindex > 0, or a negative code. */
int nl_link_ifindex(struct nl_sock *sk, const char *kind, const char *name, struct em_err *err);
/* Set IFF_UP (and a master if master_ifindex > 0) on ifindex; kind/name only name it in errors. */
int nl_link_up(struct nl_sock *sk, int ifindex, int master_ifindex, const char *kind,
	       const char *name, struct em_err *err);
int nl_link_del(struct nl_sock *sk, int ifindex, const char *kind, const char *name,
		struct em_err *err);
int nl_addr_add(struct nl_sock *sk, int ifindex, struct in_addr a, unsigned prefixlen,
		const char *name, struct em_err *err);
int nl_route_default(struct nl_sock *sk, int ifindex, struct in_addr gw, const char *name,
		     struct em_err *err);

/* Create a namespace on the calling thread and come back: lo up, and attached to br if non-NULL.
 * Fills ns (fd, ino, mode, veth). */
int ns_create_on_this_thread(struct em_netns_bridge *br, struct em_netns *ns, struct em_err *err);
/* Destroy what ns holds (veth, bind mount, fd); never blocks on the kernel's cleanup. */
void ns_destroy(struct em_netns *ns);
/* Called by the bridge module with the new namespace's socket already open in it. */
int bridge_attach_from_inside(struct em_netns_bridge *br, struct nl_sock *inside,
			      struct em_netns_veth *out, struct em_err *err);
/* The pool's half of em_netns_release. */
void pool_release(struct em_netns_pool *pool, struct em_netns *ns);

#endif
