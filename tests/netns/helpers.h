/* tests/netns/helpers.h — what the kernel holds, read back for the netns tests: link flags and
 * addresses over netlink inside a namespace, TCP reachability from a thread setns'd into a
 * namespace, and the process's own fds, threads and mounts (nothing may be left behind). */
#ifndef EMBER_TESTS_NETNS_HELPERS_H
#define EMBER_TESTS_NETNS_HELPERS_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "netns/netns.h"

static inline int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - (strcmp(path, "/proc/self/fd") == 0); /* the DIR's own fd */
}
static inline int count_fds(void) { return count_dir("/proc/self/fd"); }

/* Threads of this process, not counting exiting ones: pthread_join returns as soon as the kernel
 * clears the thread's tid (in exit_mm), a moment before the thread leaves /proc/self/task. By then
 * it has (or is about to have) no mm, which its statm shows as a size of 0: such a thread is gone
 * for the tests' purpose. A short wait covers the instructions between the two. */
static inline int count_live_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[64], buf[64];
		ssize_t l;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/statm", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone since readdir */
		l = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[l > 0 ? l : 0] = 0;
		n += l > 0 && buf[0] != '0';
	}
	closedir(d);
	return n;
}

static inline int count_threads(void)
{
	int n = count_live_threads(), prev = -1;

	/* Settled: two equal counts 1 ms apart (an exiting thread drops its mm within that). */
	for (int i = 0; i < 50 && n != prev; i++) {
		usleep(1000);
		prev = n;
		n = count_live_threads();
	}
	return n;
}

/* Lines of /proc/self/mountinfo that mention needle. */
static inline int count_mounts(const char *needle)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

struct link_q {
	const char *name;
	const char *prefix;          /* count links whose name starts with it */
	unsigned flags;
	int ifindex, master, count;
	struct in_addr addr;         /* find this IPv4 address on the link */
	unsigned prefixlen;
	int addr_found;
};

static int link_query(void *p)
{
	struct link_q *q = p;
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *links = NULL, *addrs = NULL;
	int ret = -1;

	if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0)
		goto out;
	if (rtnl_link_alloc_cache(sk, AF_UNSPEC, &links) < 0 ||
	    rtnl_addr_alloc_cache(sk, &addrs) < 0)
		goto out;
	q->count = 0;
	for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *n = rtnl_link_get_name(l);
		if (q->prefix && strncmp(n, q->prefix, strlen(q->prefix)) == 0)
			q->count++;
		if (q->name && strcmp(n, q->name) == 0) {
			q->flags = rtnl_link_get_flags(l);
			q->ifindex = rtnl_link_get_ifindex(l);
			q->master = rtnl_link_get_master(l);
		}
	}
	for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct nl_addr *l = rtnl_addr_get_local(a);
		if (q->ifindex && rtnl_addr_get_ifindex(a) == q->ifindex && l &&
		    nl_addr_get_family(l) == AF_INET &&
		    memcmp(nl_addr_get_binary_addr(l), &q->addr, 4) == 0) {
			q->addr_found = 1;
			q->prefixlen = rtnl_addr_get_prefixlen(a);
		}
	}
	ret = 0;
out:
	if (links)
		nl_cache_free(links);
	if (addrs)
		nl_cache_free(addrs);
	if (sk)
		nl_socket_free(sk);
	return ret;
}

/* Query in nsfd's namespace (-1: the calling thread's own). */
static inline int query_links(int nsfd, struct link_q *q)
{
	struct em_err err = { 0 };

	return nsfd < 0 ? link_query(q) : em_netns_run_in(nsfd, link_query, q, &err);
}

struct tcp_q {
	struct in_addr addr;
	int port;
	int fd;                      /* listener out / result socket */
	int result;                  /* 0 connected, else errno */
	int timeout_ms;
};

static int tcp_listen_fn(void *p)
{
	struct tcp_q *q = p;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = q->addr };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		q->result = errno;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	q->fd = fd;
	q->port = ntohs(sa.sin_port);
	return 0;
}

static int tcp_connect_fn(void *p)
{
	struct tcp_q *q = p;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = q->addr,
				  .sin_port = htons(q->port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(q->result);

	q->fd = -1;
	if (fd < 0)
		return q->result = errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		q->result = 0;
	} else if (errno != EINPROGRESS) {
		q->result = errno;
	} else if (poll(&pfd, 1, q->timeout_ms) == 0) {
		q->result = ETIMEDOUT;
	} else {
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &q->result, &len);
	}
	if (q->result == 0)
		q->fd = fd;
	else
		close(fd);
	return 0;
}

/* A listener on addr (port chosen by the kernel) in nsfd's namespace: returns the listening fd. */
static inline int tcp_listen_in(int nsfd, struct in_addr addr, int *port)
{
	struct tcp_q q = { .addr = addr, .fd = -1 };
	struct em_err err = { 0 };

	if (em_netns_run_in(nsfd, tcp_listen_fn, &q, &err) < 0)
		return -1;
	*port = q.port;
	return q.fd;
}

/* Connect from nsfd's namespace; returns 0 or the errno. A connected socket is closed. */
static inline int tcp_connect_from(int nsfd, struct in_addr addr, int port, int timeout_ms)
{
	struct tcp_q q = { .addr = addr, .port = port, .timeout_ms = timeout_ms };
	struct em_err err = { 0 };

	if (em_netns_run_in(nsfd, tcp_connect_fn, &q, &err) < 0)
		return EIO;
	if (q.fd >= 0)
		close(q.fd);
	return q.result;
}

static inline struct in_addr ip4(const char *s)
{
	struct in_addr a = { 0 };

	inet_pton(AF_INET, s, &a);
	return a;
}

#endif
