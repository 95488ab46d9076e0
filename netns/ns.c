/* netns/ns.c — one network namespace: create (on the calling thread, which comes back), join by
 * path, bind-mount when a path is needed, destroy; and running code inside a namespace. */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "netns/nl.h"

#define THREAD_NS "/proc/thread-self/ns/net"

uint64_t em_netns_fd_ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* unshare(CLONE_NEWNET) affects only the calling thread, so this is safe in a multi-threaded host;
 * the thread is back in its own namespace on return, whatever happened. configure (may be NULL)
 * runs inside the new namespace. On success *out is an fd of the new namespace. */
static int with_new_ns(int *out, int (*configure)(void *arg, struct em_err *err), void *arg,
		       struct em_err *err)
{
	cleanup_close int self = open(THREAD_NS, O_RDONLY | O_CLOEXEC);
	cleanup_close int fd = -1;
	int ret = 0;

	if (self < 0)
		return em_err_set(err, errno, "open " THREAD_NS);
	if (unshare(CLONE_NEWNET) < 0)
		return em_err_set(err, errno, "unshare network namespace");
	fd = open(THREAD_NS, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		ret = em_err_set(err, errno, "open new " THREAD_NS);
	if (ret == 0 && configure)
		ret = configure(arg, err);
	if (setns(self, CLONE_NEWNET) < 0) {
		/* Never leave a caller's thread in a sandbox namespace silently. */
		return em_err_set(err, errno, "return to the thread's own network namespace");
	}
	if (ret < 0)
		return ret; /* fd's cleanup drops the last reference: the kernel destroys it */
	*out = take_fd(&fd);
	return 0;
}

int em_netns_new_fd(struct em_err *err)
{
	int fd = -1, ret = with_new_ns(&fd, NULL, NULL, err);

	return ret < 0 ? ret : fd;
}

struct configure_arg {
	struct em_netns_bridge *br;
	struct em_netns *ns;
};

static int configure_here(void *p, struct em_err *err)
{
	struct configure_arg *a = p;
	cleanup_nlsock struct nl_sock *sk = NULL;
	int ret = nl_open_here(&sk, err);

	if (ret < 0)
		return ret;
	/* lo is always ifindex 1 in a new namespace (created first by loopback_net_init). */
	ret = nl_link_up(sk, 1, 0, "loopback", "lo", err);
	if (ret < 0)
		return ret;
	if (a->br)
		return bridge_attach_from_inside(a->br, sk, &a->ns->veth, err);
	return 0;
}

int ns_create_on_this_thread(struct em_netns_bridge *br, struct em_netns *ns, struct em_err *err)
{
	struct configure_arg a = { .br = br, .ns = ns };
	int fd = -1, ret;

	memset(ns, 0, sizeof(*ns));
	ns->fd = -1;
	ret = with_new_ns(&fd, configure_here, &a, err);
	if (ret < 0) {
		em_err_prefix(err, "create network namespace");
		return ret;
	}
	ns->fd = fd;
	ns->ino = em_netns_fd_ino(fd);
	ns->mode = br ? EM_NETNS_BRIDGE : EM_NETNS_NONE;
	ns->bridge = br;
	return 0;
}

int em_netns_create(struct em_netns **out, struct em_err *err)
{
	struct em_netns *ns = malloc(sizeof(*ns));
	int ret;

	if (!ns)
		return em_err_set(err, ENOMEM, "allocate network namespace");
	ret = ns_create_on_this_thread(NULL, ns, err);
	if (ret < 0) {
		free(ns);
		return ret;
	}
	*out = ns;
	return 0;
}

int em_netns_join_path(const char *path, struct em_netns **out, struct em_err *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct em_netns *ns;
	int type;

	if (fd < 0)
		return em_err_set(err, errno, "open network namespace %s", path);
	type = ioctl(fd, NS_GET_NSTYPE);
	if (type < 0)
		return em_err_set(err, errno, "%s is not a namespace", path);
	if (type != CLONE_NEWNET)
		return em_err_msg(err, EINVAL, "%s is not a network namespace", path);
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return em_err_set(err, ENOMEM, "allocate network namespace");
	ns->fd = take_fd(&fd);
	ns->ino = em_netns_fd_ino(ns->fd);
	ns->mode = EM_NETNS_JOIN;
	*out = ns;
	return 0;
}

int em_netns_mount(struct em_netns *ns, const char *dir, struct em_err *err)
{
	char path[sizeof(ns->path)], src[64];
	int fd;

	if (ns->path[0])
		return 0;
	snprintf(path, sizeof(path), "%s/ember-%llu", dir, (unsigned long long)ns->ino);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0)
		return em_err_set(err, errno, "create mount point %s", path);
	close(fd);
	snprintf(src, sizeof(src), "/proc/self/fd/%d", ns->fd);
	if (mount(src, path, NULL, MS_BIND, NULL) < 0) {
		int e = errno;
		unlink(path);
		return em_err_set(err, e, "bind-mount network namespace on %s", path);
	}
	memcpy(ns->path, path, sizeof(path));
	return 0;
}

void ns_destroy(struct em_netns *ns)
{
	if (ns->mode == EM_NETNS_BRIDGE && ns->bridge && ns->veth.peer_ifindex > 0) {
		/* Deleting the node-side end removes the pair now, not whenever the kernel's
		 * cleanup_net gets to the namespace: the address is then safe to hand out again. */
		em_netns_bridge_detach(ns->bridge, &ns->veth, NULL);
	}
	if (ns->path[0]) {
		/* MNT_DETACH: a tool may still hold the path open; the namespace lives on in it
		 * until then, never in our mount table. */
		umount2(ns->path, MNT_DETACH | UMOUNT_NOFOLLOW);
		unlink(ns->path);
	}
	if (ns->fd >= 0)
		close(ns->fd);
	free(ns);
}

void em_netns_release(struct em_netns *ns)
{
	if (!ns)
		return;
	if (ns->pool)
		pool_release(ns->pool, ns);
	else
		ns_destroy(ns);
}

struct run_in {
	int nsfd;
	int (*fn)(void *);
	void *arg;
	int ret;
	int setns_errno;
};

static void *run_in_thread(void *p)
{
	struct run_in *r = p;

	if (setns(r->nsfd, CLONE_NEWNET) < 0) {
		r->setns_errno = errno;
		return NULL;
	}
	r->ret = r->fn(r->arg);
	return NULL;
}

int em_netns_run_in(int nsfd, int (*fn)(void *arg), void *arg, struct em_err *err)
{
	struct run_in r = { .nsfd = nsfd, .fn = fn, .arg = arg };
	pthread_t t;
	int ret = pthread_create(&t, NULL, run_in_thread, &r);

	if (ret)
		return em_err_set(err, ret, "start a thread for the network namespace");
	pthread_join(t, NULL);
	if (r.setns_errno)
		return em_err_set(err, r.setns_errno, "enter network namespace");
	return r.ret;
}
