/* netns/pool.c — the in-process pool of ready namespaces and its refill thread.
 *
 * One mutex guards two lists: `ready` (configured namespaces, popped by acquire in O(1)) and `dead`
 * (released ones, waiting to be destroyed). The refill thread destroys what is dead first (that
 * frees bridge addresses and the kernel's memory), trims to the target size, then creates until the
 * pool is full; creation and destruction run outside the lock, so acquire never waits behind them.
 * Creation happens on the refill thread itself (see netns.h: unshare is per thread), with every
 * signal blocked there so the host's signal handling is unaffected.
 *
 * A pool owned by a user namespace (cfg.in_userns) creates through its helper process instead; the
 * helper's code is at the end of this file, as it is a part of the pool (spawned, respawned and
 * ended by the refill thread) rather than a concept of its own. */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <linux/sched.h> /* struct clone_args, CLONE_PIDFD */
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "netns/nl.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define THREAD_NS "/proc/thread-self/ns/net"

struct em_netns_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;         /* the refill thread waits on it */
	pthread_cond_t changed;      /* em_netns_pool_wait waits on it */
	struct em_netns *ready, *dead;
	unsigned n_ready, n_dead, target;
	unsigned outstanding;        /* acquired, not yet released */
	bool stop, thread_started;
	bool orphaned;               /* destroyed while namespaces were out: the last release frees */
	pthread_t thread;
	struct em_netns_bridge *br;  /* NULL in mode NONE */
	struct em_netns_pool_stats st;
	int last_ret;                /* last background failure, with its message */
	struct em_err last_err;

	/* in_userns pools (see netns.h). The helper_sock/pidfd/pid fields change under both
	 * helper_lock and lock, so either lock is enough to read them. */
	int userns_fd;               /* -1: namespaces owned by the host's own user namespace */
	uint64_t userns_ino;         /* names it in errors: user:[ino] */
	pthread_mutex_t helper_lock; /* one request in flight; held while spawning and ending it */
	int helper_sock, helper_pidfd;
	pid_t helper_pid;
	bool helper_tried;           /* the refill thread's first spawn is over (pool_new waits) */
	int helper_first_ret;        /* its result */
};

static int helper_ensure(struct em_netns_pool *pool, struct em_err *err);
static int helper_request(struct em_netns_pool *pool, int *out, struct em_err *err);
static void helper_stop(struct em_netns_pool *pool);

static void push(struct em_netns **list, struct em_netns *ns)
{
	ns->next = *list;
	*list = ns;
}

static struct em_netns *pop(struct em_netns **list)
{
	struct em_netns *ns = *list;

	if (ns) {
		*list = ns->next;
		ns->next = NULL;
	}
	return ns;
}

static void deadline_after(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* A namespace from the helper, owned by the pool's user namespace, lo already up. Bridge mode is
 * configured from here, on the received fd, exactly as for a namespace of an ordinary pool that is
 * attached later: root in the host's user namespace has CAP_NET_ADMIN over the namespace (its owner
 * is a descendant) and over the node namespace (its own). */
static int create_in_userns(struct em_netns_pool *pool, struct em_netns *ns, struct em_err *err)
{
	cleanup_close int fd = -1;
	int ret;

	memset(ns, 0, sizeof(*ns));
	ns->fd = -1;
	ret = helper_request(pool, &fd, err);
	if (ret == 0 && pool->br)
		ret = em_netns_bridge_attach(pool->br, fd, &ns->veth, err);
	if (ret < 0) {
		em_err_prefix(err, "create network namespace");
		return ret; /* fd's cleanup drops the last reference: the kernel destroys it */
	}
	ns->fd = take_fd(&fd);
	ns->ino = em_netns_fd_ino(ns->fd);
	ns->mode = pool->br ? EM_NETNS_BRIDGE : EM_NETNS_NONE;
	ns->bridge = pool->br;
	return 0;
}

/* refill: called by the refill thread, which (re)spawns a missing helper; a caller's thread must
 * not (the helper's parent-death signal follows the thread that cloned it). */
static int create_one(struct em_netns_pool *pool, bool refill, struct em_netns **out,
		      struct em_err *err)
{
	struct em_netns *ns = malloc(sizeof(*ns));
	int ret;

	if (!ns)
		return em_err_set(err, ENOMEM, "allocate network namespace");
	if (pool->userns_fd < 0) {
		ret = ns_create_on_this_thread(pool->br, ns, err);
	} else {
		ret = refill ? helper_ensure(pool, err) : 0;
		if (ret == 0)
			ret = create_in_userns(pool, ns, err);
	}
	if (ret < 0) {
		free(ns);
		return ret;
	}
	ns->pool = pool;
	*out = ns;
	return 0;
}

static void *refill_thread(void *p)
{
	struct em_netns_pool *pool = p;
	long backoff_ms = 0;

	if (pool->userns_fd >= 0) {
		/* The first spawn, whose result em_netns_pool_new waits for. */
		struct em_err err = { 0 };
		int ret = helper_ensure(pool, &err);

		pthread_mutex_lock(&pool->lock);
		pool->helper_tried = true;
		pool->helper_first_ret = ret;
		if (ret < 0) {
			pool->st.failures++;
			pool->last_ret = ret;
			pool->last_err = err;
			backoff_ms = 100;
		}
		pthread_cond_broadcast(&pool->changed);
		pthread_mutex_unlock(&pool->lock);
	}
	pthread_mutex_lock(&pool->lock);
	while (!pool->stop) {
		if (pool->dead) {
			struct em_netns *list = pool->dead, *ns;
			unsigned n = 0;

			pool->dead = NULL;
			pthread_mutex_unlock(&pool->lock);
			while ((ns = pop(&list))) {
				ns_destroy(ns);
				n++;
			}
			pthread_mutex_lock(&pool->lock);
			pool->n_dead -= n;
			pool->st.destroyed += n;
			pthread_cond_broadcast(&pool->changed);
			continue;
		}
		if (pool->n_ready > pool->target) {
			struct em_netns *ns = pop(&pool->ready);

			pool->n_ready--;
			pthread_mutex_unlock(&pool->lock);
			ns_destroy(ns);
			pthread_mutex_lock(&pool->lock);
			pool->st.destroyed++;
			pthread_cond_broadcast(&pool->changed);
			continue;
		}
		if (pool->n_ready < pool->target && !backoff_ms) {
			struct em_err err = { 0 };
			struct em_netns *ns = NULL;
			int ret;

			pthread_mutex_unlock(&pool->lock);
			ret = create_one(pool, true, &ns, &err);
			pthread_mutex_lock(&pool->lock);
			if (ret < 0) {
				pool->st.failures++;
				pool->last_ret = ret;
				pool->last_err = err;
				backoff_ms = 100;
			} else {
				push(&pool->ready, ns);
				pool->n_ready++;
				pool->st.created++;
			}
			pthread_cond_broadcast(&pool->changed);
			continue;
		}
		if (backoff_ms) {
			/* A failing creation (out of memory, a full subnet) is retried slowly rather
			 * than in a loop that burns a core; releases and stop still wake us. */
			struct timespec ts;

			deadline_after(&ts, backoff_ms);
			if (pthread_cond_timedwait(&pool->work, &pool->lock, &ts) == ETIMEDOUT)
				backoff_ms = 0;
			else if (backoff_ms < 5000)
				backoff_ms *= 2;
			continue;
		}
		pthread_cond_wait(&pool->work, &pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	/* Before this thread exits: its exit would SIGKILL the helper (parent-death signal); end it
	 * the orderly way and reap it here. */
	if (pool->userns_fd >= 0)
		helper_stop(pool);
	return NULL;
}

static const char *nstype_name(int type)
{
	switch (type) {
	case CLONE_NEWNET: return "network";
	case CLONE_NEWNS: return "mount";
	case CLONE_NEWUTS: return "uts";
	case CLONE_NEWIPC: return "ipc";
	case CLONE_NEWPID: return "pid";
	case CLONE_NEWCGROUP: return "cgroup";
	case CLONE_NEWTIME: return "time";
	default: return "unknown";
	}
}

/* Check cfg's user namespace fd and dup it into *out; *out = -1 if it is the host's own user
 * namespace, whose namespaces the refill thread makes without a helper. */
static int userns_take(const struct em_netns_pool_cfg *cfg, int *out, uint64_t *ino,
		       struct em_err *err)
{
	struct stat st, self;
	int type;

	if (cfg->userns_fd < 0)
		return em_err_msg(err, EINVAL, "network namespace pool: in_userns without a user "
				  "namespace fd (userns_fd %d)", cfg->userns_fd);
	type = ioctl(cfg->userns_fd, NS_GET_NSTYPE);
	if (type < 0)
		return em_err_set(err, errno, "network namespace pool: userns_fd %d is not a "
				  "namespace fd (NS_GET_NSTYPE)", cfg->userns_fd);
	if (type != CLONE_NEWUSER)
		return em_err_msg(err, EINVAL, "network namespace pool: userns_fd %d is a %s namespace, "
				  "not a user namespace", cfg->userns_fd, nstype_name(type));
	if (fstat(cfg->userns_fd, &st) < 0)
		return em_err_set(err, errno, "network namespace pool: stat userns_fd %d",
				  cfg->userns_fd);
	*ino = st.st_ino;
	if (stat("/proc/self/ns/user", &self) == 0 && self.st_ino == st.st_ino &&
	    self.st_dev == st.st_dev) {
		*out = -1;
		return 0;
	}
	*out = fcntl(cfg->userns_fd, F_DUPFD_CLOEXEC, 3);
	if (*out < 0)
		return em_err_set(err, errno, "network namespace pool: dup userns_fd %d",
				  cfg->userns_fd);
	return 0;
}

int em_netns_pool_new(const struct em_netns_pool_cfg *cfg, struct em_netns_pool **out,
		      struct em_err *err)
{
	struct em_netns_pool *pool;
	pthread_condattr_t ca;
	sigset_t all, old;
	int ret;

	if (cfg->mode != EM_NETNS_NONE && cfg->mode != EM_NETNS_BRIDGE)
		return em_err_msg(err, EINVAL, "network namespace pool: mode must be none or bridge");
	if (cfg->mode == EM_NETNS_BRIDGE && !cfg->bridge)
		return em_err_msg(err, EINVAL, "network namespace pool: bridge mode without a bridge");
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return em_err_set(err, ENOMEM, "allocate network namespace pool");
	pool->userns_fd = pool->helper_sock = pool->helper_pidfd = -1;
	if (cfg->in_userns) {
		ret = userns_take(cfg, &pool->userns_fd, &pool->userns_ino, err);
		if (ret < 0) {
			free(pool);
			return ret;
		}
	}
	pthread_mutex_init(&pool->lock, NULL);
	pthread_mutex_init(&pool->helper_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->work, &ca);
	pthread_cond_init(&pool->changed, &ca);
	pthread_condattr_destroy(&ca);
	pool->target = cfg->size ? cfg->size : 8;
	pool->br = cfg->mode == EM_NETNS_BRIDGE ? cfg->bridge : NULL;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&pool->thread, NULL, refill_thread, pool);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		em_netns_pool_destroy(pool);
		return em_err_set(err, ret, "start network namespace refill thread");
	}
	pool->thread_started = true;
	if (pool->userns_fd >= 0) {
		pthread_mutex_lock(&pool->lock);
		while (!pool->helper_tried)
			pthread_cond_wait(&pool->changed, &pool->lock);
		ret = pool->helper_first_ret;
		if (ret < 0 && err)
			*err = pool->last_err;
		pthread_mutex_unlock(&pool->lock);
		if (ret < 0) {
			em_netns_pool_destroy(pool);
			return ret;
		}
	}
	*out = pool;
	return 0;
}

int em_netns_pool_acquire(struct em_netns_pool *pool, struct em_netns **out, struct em_err *err)
{
	struct em_netns *ns;
	int ret;

	pthread_mutex_lock(&pool->lock);
	ns = pop(&pool->ready);
	if (ns) {
		pool->n_ready--;
		pool->st.hits++;
		pool->outstanding++;
		pthread_mutex_unlock(&pool->lock);
		/* Signalled after unlocking: the woken refill thread must not preempt us only to
		 * block on the mutex we still hold. */
		pthread_cond_signal(&pool->work);
		*out = ns;
		return 0;
	}
	pool->st.misses++;
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);

	/* Empty: create on the caller's thread rather than wait for the refill thread, which may be
	 * busy destroying; the miss is in the stats. */
	ret = create_one(pool, false, &ns, err);
	if (ret < 0) {
		em_err_prefix(err, "network namespace pool empty");
		return ret;
	}
	pthread_mutex_lock(&pool->lock);
	pool->st.created++;
	pool->outstanding++;
	pthread_mutex_unlock(&pool->lock);
	*out = ns;
	return 0;
}

static void pool_free(struct em_netns_pool *pool)
{
	pthread_cond_destroy(&pool->work);
	pthread_cond_destroy(&pool->changed);
	pthread_mutex_destroy(&pool->helper_lock);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

void pool_release(struct em_netns_pool *pool, struct em_netns *ns)
{
	bool last;

	pthread_mutex_lock(&pool->lock);
	pool->outstanding--;
	if (!pool->orphaned) {
		push(&pool->dead, ns);
		pool->n_dead++;
		pthread_cond_signal(&pool->work);
		pthread_mutex_unlock(&pool->lock);
		return;
	}
	/* The pool is gone (no thread): destroy here; the last namespace out frees the pool. */
	last = pool->outstanding == 0;
	pthread_mutex_unlock(&pool->lock);
	ns_destroy(ns);
	if (last)
		pool_free(pool);
}

int em_netns_pool_wait(struct em_netns_pool *pool, unsigned ready, int timeout_ms,
		       struct em_err *err)
{
	struct timespec ts;
	int ret = 0;

	deadline_after(&ts, timeout_ms);
	pthread_mutex_lock(&pool->lock);
	while (pool->n_ready < ready || pool->n_dead) {
		if (pthread_cond_timedwait(&pool->changed, &pool->lock, &ts) == ETIMEDOUT) {
			if (pool->last_ret) {
				if (err)
					*err = pool->last_err;
				em_err_prefix(err, "refill network namespace pool");
				ret = pool->last_ret;
			} else {
				ret = em_err_msg(err, ETIMEDOUT,
						 "network namespace pool: %u of %u ready after %d ms",
						 pool->n_ready, ready, timeout_ms);
			}
			break;
		}
	}
	pthread_mutex_unlock(&pool->lock);
	return ret;
}

void em_netns_pool_stats(struct em_netns_pool *pool, struct em_netns_pool_stats *out)
{
	pthread_mutex_lock(&pool->lock);
	*out = pool->st;
	out->ready = pool->n_ready;
	out->pending_destroy = pool->n_dead;
	out->helper_pid = pool->helper_pid;
	pthread_mutex_unlock(&pool->lock);
}

void em_netns_pool_resize(struct em_netns_pool *pool, unsigned size)
{
	pthread_mutex_lock(&pool->lock);
	pool->target = size;
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

void em_netns_pool_destroy(struct em_netns_pool *pool)
{
	struct em_netns *ns;
	bool orphan;

	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	/* The refill thread may be waiting for the helper: this ends the wait (and the helper, on
	 * EOF). shutdown rather than close: the fd stays the refill thread's to close. */
	if (pool->helper_sock >= 0)
		shutdown(pool->helper_sock, SHUT_RDWR);
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	if (pool->thread_started)
		pthread_join(pool->thread, NULL);
	if (pool->userns_fd >= 0) {
		close(pool->userns_fd);
		pool->userns_fd = -1;
	}
	while ((ns = pop(&pool->dead)))
		ns_destroy(ns);
	while ((ns = pop(&pool->ready)))
		ns_destroy(ns);
	pthread_mutex_lock(&pool->lock);
	orphan = pool->outstanding > 0;
	pool->orphaned = orphan;
	pthread_mutex_unlock(&pool->lock);
	if (!orphan)
		pool_free(pool);
}

/* ---- the helper process of a pool owned by a user namespace (see netns.h) ----
 *
 * Protocol over a SOCK_SEQPACKET socketpair: the pool sends one byte per namespace wanted; the
 * helper answers each with a struct helper_reply, plus the namespace's fd (SCM_RIGHTS) on success.
 * Its first message (STEP_OK) says it is inside the user namespace and ready. EOF on its socket
 * ends it. */

enum helper_step {
	STEP_OK = 0,
	STEP_CLOSE_FDS,
	STEP_ENTER_USERNS,
	STEP_PARK,
	STEP_UNSHARE,
	STEP_LO_UP,
	STEP_OPEN_NS,
	STEP_RETURN,
};

static const char *const helper_steps[] = {
	[STEP_OK] = "ok",
	[STEP_CLOSE_FDS] = "close the host's fds",
	[STEP_ENTER_USERNS] = "enter the user namespace",
	[STEP_PARK] = "create its parking network namespace",
	[STEP_UNSHARE] = "unshare a network namespace",
	[STEP_LO_UP] = "set lo up",
	[STEP_OPEN_NS] = "open " THREAD_NS,
	[STEP_RETURN] = "return to its parking network namespace",
};

struct helper_reply {
	int32_t step;                /* STEP_OK, or the step that failed */
	int32_t code;                /* its errno */
};

/* ---- in the helper: a clone of a multi-threaded host, so async-signal-safe calls only (system
 * calls, mem*, str*): no malloc, no stdio, no libnl, nothing that takes a lock another thread of
 * the host may have held at the clone. Every signal is blocked, so none of the host's handlers can
 * run here; SIGKILL still ends it. */

static void helper_send(int sock, int step, int code, int fd)
{
	struct helper_reply r = { .step = step, .code = code };
	struct iovec iov = { .iov_base = &r, .iov_len = sizeof(r) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	/* A failure (EPIPE: the pool is going away) shows as EOF at the next read. */
	sendmsg(sock, &mh, MSG_NOSIGNAL);
}

static __attribute__((noreturn)) void helper_fail(int sock, int step)
{
	helper_send(sock, step, errno, -1);
	_exit(1);
}

/* Close every fd but a and b: nothing of the host's (its sockets, sandboxes' fds, the pool's
 * namespaces, other pools' helper sockets) may live on in the helper. */
static int close_all_but(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	if (lo > 0 && syscall(SYS_close_range, 0U, (unsigned)lo - 1, 0U) < 0)
		return -1;
	if (hi > lo + 1 && syscall(SYS_close_range, (unsigned)lo + 1, (unsigned)hi - 1, 0U) < 0)
		return -1;
	return (int)syscall(SYS_close_range, (unsigned)hi + 1, ~0U, 0U);
}

static void helper_make_one(int sock, int park)
{
	struct ifreq ifr;
	int step = STEP_OK, code = 0, s, fd = -1;

	if (unshare(CLONE_NEWNET) < 0) {
		helper_send(sock, STEP_UNSHARE, errno, -1);
		return;
	}
	/* lo is all a new namespace holds. SIOCSIFFLAGS is enough to set it up: the kernel then
	 * gives it 127.0.0.1/8 and ::1 itself, as it does when netlink sets IFF_UP. */
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		step = STEP_LO_UP;
		code = errno;
	} else {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
			step = STEP_LO_UP;
			code = errno;
		}
	}
	if (s >= 0)
		close(s);
	if (step == STEP_OK) {
		fd = open(THREAD_NS, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			step = STEP_OPEN_NS;
			code = errno;
		}
	}
	/* Back to the parking namespace whatever happened: the helper must not keep a namespace it
	 * handed out alive after the pool released it. Failing that (short of ENOMEM it cannot: the
	 * parking namespace is the helper's own), it ends rather than stay. */
	if (setns(park, CLONE_NEWNET) < 0)
		helper_fail(sock, STEP_RETURN); /* fd goes with the helper */
	helper_send(sock, step, code, fd);
	if (fd >= 0)
		close(fd);
}

static __attribute__((noreturn)) void helper_main(int sock, int userns_fd, pid_t host)
{
	uint64_t all = ~0ULL;
	int park;
	char req;

	/* The refill thread's mask is full but for glibc's two internal signals, which
	 * pthread_sigmask never blocks; the raw call blocks them as well. */
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof(all));
	if (close_all_but(sock, userns_fd) < 0)
		helper_fail(sock, STEP_CLOSE_FDS);
	/* Single-threaded and with an fs_struct of its own (no CLONE_FS): setns into a user namespace
	 * is allowed, and gives every capability in it and none outside. */
	if (setns(userns_fd, CLONE_NEWUSER) < 0)
		helper_fail(sock, STEP_ENTER_USERNS);
	close(userns_fd);
	/* After setns, not before: the credential change may clear the parent-death signal (it does
	 * when the user namespace's owner is not our euid). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != host)
		_exit(1); /* the host died before the line above: nobody to serve */
	/* Not dumpable: a process that is root in the user namespace (a sandbox) could otherwise
	 * ptrace the helper — whose credentials are in that user namespace — and with it read the
	 * host's memory image, pass fake namespaces to the pool, or use the helper's fsuid 0 on the
	 * host's files. Non-dumpable, ptrace needs CAP_SYS_PTRACE where the mm was made: the host's
	 * user namespace. */
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_NAME, "ember-netns");
	if (unshare(CLONE_NEWNET) < 0)
		helper_fail(sock, STEP_PARK);
	park = open(THREAD_NS, O_RDONLY | O_CLOEXEC);
	if (park < 0)
		helper_fail(sock, STEP_PARK);
	helper_send(sock, STEP_OK, 0, -1);
	for (;;) {
		ssize_t n = recv(sock, &req, 1, 0);

		if (n == 0)
			_exit(0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		helper_make_one(sock, park);
	}
}

/* ---- in the host ---- */

static pid_t clone_helper(int *pidfd)
{
	/* exit_signal 0: no SIGCHLD for the host, and a host's waitpid(-1) (without __WALL) cannot
	 * reap the helper from under us; it is reaped through its pidfd with __WALL. No exec follows
	 * that would reset the exit signal. */
	struct clone_args ca = {
		.flags = CLONE_PIDFD,
		.pidfd = (uint64_t)(uintptr_t)pidfd,
		.exit_signal = 0,
	};
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));

	/* clone3 refused (ENOSYS: an old seccomp profile): clone with CLONE_PIDFD puts the pidfd
	 * where the parent tid would go, the third argument */
	if (pid < 0 && errno == ENOSYS)
		pid = (pid_t)syscall(SYS_clone, (unsigned long)CLONE_PIDFD, 0UL, pidfd, 0UL, 0UL);
	return pid;
}

/* Wait for the helper's next reply; an fd passed with it lands in *fd. Returns 0, -EPIPE when the
 * helper is gone (EOF on its socket, or it exited without answering), or another -errno. The
 * pidfd is watched too: a copy of the helper's socket end leaked into a process the host forked
 * at the wrong moment would keep the EOF from ever coming. */
static int helper_recv(int sock, int pidfd, struct helper_reply *r, int *fd)
{
	struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
	struct iovec iov = { .iov_base = r, .iov_len = sizeof(*r) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	ssize_t n;

	*fd = -1;
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[0].revents)
			break;
		if (p[1].revents)
			return -EPIPE;
	}
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? -EPIPE : -errno;
	if (n == 0)
		return -EPIPE;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	if (n != sizeof(*r) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || r->step < 0 ||
	    (size_t)r->step >= EM_ARRAY_SIZE(helper_steps)) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -EPROTO;
	}
	return 0;
}

/* Under helper_lock. End the helper: EOF on its socket (shutdown, so that a copy of the socket
 * leaked into a forked child cannot keep it open), a second to exit, then SIGKILL through its
 * pidfd (never a pid that may have been recycled); reap it. how (may be NULL) says how it ended. */
static void helper_end(struct em_netns_pool *pool, char *how, size_t len)
{
	struct pollfd p;
	siginfo_t si;
	int sock, pidfd, ret;

	pthread_mutex_lock(&pool->lock);
	sock = pool->helper_sock;
	pidfd = pool->helper_pidfd;
	pool->helper_sock = pool->helper_pidfd = -1;
	pool->helper_pid = 0;
	pthread_mutex_unlock(&pool->lock);
	if (how)
		snprintf(how, len, "status unknown");
	if (sock >= 0) {
		shutdown(sock, SHUT_RDWR);
		close(sock);
	}
	if (pidfd < 0)
		return;
	p = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	while ((ret = poll(&p, 1, 1000)) < 0 && errno == EINTR)
		;
	if (ret == 0) /* stuck (in the kernel?): it must not outlive the pool */
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	memset(&si, 0, sizeof(si));
	while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | __WALL) < 0 && errno == EINTR)
		;
	if (how && si.si_pid) {
		if (si.si_code == CLD_EXITED)
			snprintf(how, len, "exited with status %d", si.si_status);
		else
			snprintf(how, len, "killed by signal %d", si.si_status);
	}
	close(pidfd);
}

/* Under helper_lock. */
static int helper_spawn(struct em_netns_pool *pool, struct em_err *err)
{
	struct helper_reply r = { 0 };
	int sv[2], pidfd = -1, fd = -1, ret;
	pid_t host = getpid(), pid;
	char how[64];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return em_err_set(err, errno, "network namespace helper: socketpair");
	pid = clone_helper(&pidfd);
	if (pid == 0)
		helper_main(sv[1], pool->userns_fd, host);
	close(sv[1]);
	if (pid < 0) {
		ret = em_err_set(err, errno, "network namespace helper: clone the host");
		close(sv[0]);
		return ret;
	}
	/* Published before the wait, so that em_netns_pool_destroy can interrupt it. */
	pthread_mutex_lock(&pool->lock);
	pool->helper_sock = sv[0];
	pool->helper_pidfd = pidfd;
	pool->helper_pid = pid;
	pthread_mutex_unlock(&pool->lock);

	ret = helper_recv(sv[0], pidfd, &r, &fd);
	if (fd >= 0) {
		close(fd);
		ret = -EPROTO;
	}
	if (ret == 0 && r.code == 0)
		return 0;
	helper_end(pool, how, sizeof(how));
	if (ret < 0)
		return em_err_msg(err, -ret, "network namespace helper (pid %d) for user namespace "
				  "user:[%llu]: %s before it was ready (%s)", (int)pid,
				  (unsigned long long)pool->userns_ino,
				  ret == -EPIPE ? "gone" : "bad reply", how);
	return em_err_set(err, r.code, "network namespace helper (pid %d) for user namespace "
			  "user:[%llu]: %s", (int)pid, (unsigned long long)pool->userns_ino,
			  helper_steps[r.step]);
}

/* The refill thread's: spawn the helper if it is not running (first time, or it died). */
static int helper_ensure(struct em_netns_pool *pool, struct em_err *err)
{
	int ret = 0;

	pthread_mutex_lock(&pool->helper_lock);
	if (pool->helper_sock < 0)
		ret = helper_spawn(pool, err);
	pthread_mutex_unlock(&pool->helper_lock);
	return ret;
}

static void helper_stop(struct em_netns_pool *pool)
{
	pthread_mutex_lock(&pool->helper_lock);
	helper_end(pool, NULL, 0);
	pthread_mutex_unlock(&pool->helper_lock);
}

/* One namespace from the helper: its fd in *out. Any thread; requests are serialised. */
static int helper_request(struct em_netns_pool *pool, int *out, struct em_err *err)
{
	unsigned long long uino = (unsigned long long)pool->userns_ino;
	struct helper_reply r = { 0 };
	int fd = -1, ret;
	char how[64];
	pid_t pid;

	pthread_mutex_lock(&pool->helper_lock);
	pid = pool->helper_pid;
	if (pool->helper_sock < 0) {
		pthread_mutex_unlock(&pool->helper_lock);
		return em_err_msg(err, ESRCH, "network namespace helper for user namespace user:[%llu] "
				  "not running (the refill thread starts it again)", uino);
	}
	if (send(pool->helper_sock, "n", 1, MSG_NOSIGNAL) < 0)
		ret = errno == ECONNRESET ? -EPIPE : -errno;
	else
		ret = helper_recv(pool->helper_sock, pool->helper_pidfd, &r, &fd);
	if (ret < 0) {
		/* Gone, or out of step with us: end it; the refill thread starts a new one. */
		helper_end(pool, how, sizeof(how));
		pthread_mutex_unlock(&pool->helper_lock);
		if (ret == -EPIPE)
			return em_err_msg(err, EPIPE, "network namespace helper (pid %d) for user "
					  "namespace user:[%llu] is gone (%s)", (int)pid, uino, how);
		return em_err_set(err, -ret, "network namespace helper (pid %d) for user namespace "
				  "user:[%llu]: request", (int)pid, uino);
	}
	pthread_mutex_unlock(&pool->helper_lock);
	if (r.code)
		return em_err_set(err, r.code, "network namespace helper (pid %d) in user namespace "
				  "user:[%llu]: %s", (int)pid, uino, helper_steps[r.step]);
	if (fd < 0)
		return em_err_msg(err, EPROTO, "network namespace helper (pid %d) for user namespace "
				  "user:[%llu]: a reply without a namespace", (int)pid, uino);
	*out = fd;
	return 0;
}
