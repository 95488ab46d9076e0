/* tests/netns/test_userns_pool.c — pools whose namespaces are owned by a given user namespace (for
 * zygote templates), against the real kernel: the owner the kernel records (NS_GET_USERNS), lo up,
 * a process that is root in that user namespace can join them and cannot join an ordinary pool's,
 * bridge mode, the helper process (what it holds, its end with the pool and with the host, its
 * replacement when it dies), errors that name the problem, and nothing left behind. Each test gets
 * a fresh user namespace, made by a child that unshares and exits (the fd keeps it alive). */
#include <criterion/criterion.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "helpers.h"

/* Outside uids for the test user namespaces: high, unused by anything on the machine. */
#define OUTER_UID 2113929216u

static int userns = -1, fds0, threads0, children0;
static uint64_t userns_ino;

static uint64_t ino_of_path(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* Children of every thread of this process (a helper is a child of a pool's refill thread). */
static int count_children(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[128], buf[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t l = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		for (ssize_t i = 0; i < l; i++)
			n += buf[i] == ' '; /* "pid pid " */
	}
	closedir(d);
	return n;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : write(fd, s, strlen(s));

	if (fd >= 0)
		close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* A user namespace mapping 0 inside to `outer` outside, held by the returned fd. max_netns >= 0
 * sets its max_net_namespaces (written from inside: the limit is per user namespace). */
static void read_proc_self(const char *file, char *buf, size_t len)
{
	char path[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/%s", file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
	if (fd >= 0)
		close(fd);
}

static int make_userns(unsigned outer, int max_netns)
{
	int ready[2], go[2], fd = -1;
	char c = 0, path[64], map[64];
	pid_t pid;

	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(1);
		c = 1;
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		if (max_netns >= 0) {
			char v[16];
			snprintf(v, sizeof(v), "%d", max_netns);
			if (write_file("/proc/sys/user/max_net_namespaces", v) < 0)
				_exit(3);
		}
		c = 2;
		_exit(write(ready[1], &c, 1) == 1 ? 0 : 4);
	}
	close(ready[1]);
	close(go[0]);
	if (pid > 0 && read(ready[0], &c, 1) == 1 && c == 1) {
		snprintf(map, sizeof(map), "0 %u 1", outer);
		snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
		int ok = write_file(path, "deny") == 0;
		snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
		ok = ok && write_file(path, map) == 0;
		snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
		ok = ok && write_file(path, map) == 0;
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		if (ok)
			fd = open(path, O_RDONLY | O_CLOEXEC);
		c = 1;
		if (fd >= 0 && (write(go[1], &c, 1) != 1 || read(ready[0], &c, 1) != 1 || c != 2)) {
			close(fd);
			fd = -1;
		}
	}
	close(go[1]);
	close(ready[0]);
	if (pid > 0) {
		if (fd < 0)
			kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return fd;
}

/* The user namespace of the host's namespaces: this process's. /proc/1/ns/user may be unreadable
 * (here pid 1 is not ours to inspect), so the test checks that its own user namespace is the
 * initial one by its identity uid map instead. */
static uint64_t host_userns_ino(void)
{
	char map[128];
	unsigned a, b, n;

	read_proc_self("uid_map", map, sizeof(map));
	cr_assert(sscanf(map, "%u %u %u", &a, &b, &n) == 3 && a == 0 && b == 0 && n == 4294967295u,
		  "the tests run in the initial user namespace (uid_map %s)", map);
	return ino_of_path("/proc/self/ns/user");
}

static void setup(void)
{
	userns = make_userns(OUTER_UID + 1, -1);
	cr_assert_geq(userns, 0, "make a user namespace: %s", strerror(errno));
	userns_ino = em_netns_fd_ino(userns);
	fds0 = count_fds();
	threads0 = count_threads();
	children0 = count_children();
}

static void teardown(void)
{
	if (userns >= 0)
		close(userns);
	userns = -1;
}

/* Everything a test made is gone: fds (namespaces, the helper's socket and pidfd, the dup of the
 * user namespace), the refill thread, the helper process. */
static void assert_clean(void)
{
	cr_assert_eq(count_fds(), fds0, "fds left: %d, had %d", count_fds(), fds0);
	cr_assert_eq(count_threads(), threads0, "threads left: %d, had %d", count_threads(), threads0);
	cr_assert_eq(count_children(), children0, "child processes left: %d", count_children());
}

TestSuite(userns_pool, .init = setup, .fini = teardown, .timeout = 60);

/* nsfs inode of the user namespace that owns nsfd's namespace (NS_GET_USERNS). */
static uint64_t owner_ino(int nsfd)
{
	int fd = ioctl(nsfd, NS_GET_USERNS);
	uint64_t ino;

	if (fd < 0)
		return 0;
	ino = em_netns_fd_ino(fd);
	close(fd);
	return ino;
}

static struct em_netns_pool *new_pool(unsigned size, enum em_netns_mode mode,
				      struct em_netns_bridge *br, int userns_fd)
{
	struct em_netns_pool_cfg cfg = { .size = size, .mode = mode, .bridge = br,
					 .userns_fd = userns_fd, .in_userns = userns_fd >= 0 };
	struct em_netns_pool *pool = NULL;
	struct em_err err = { 0 };

	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), 0, "%s", err.msg);
	return pool;
}

static void read_proc(pid_t pid, const char *file, char *buf, size_t len)
{
	char path[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
	if (fd >= 0)
		close(fd);
}

/* "Key:\tvalue" of /proc/<pid>/status, as a number. */
static long proc_status(pid_t pid, const char *key)
{
	char buf[4096], *p;

	read_proc(pid, "status", buf, sizeof(buf));
	p = strstr(buf, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static int count_proc_dir(pid_t pid, const char *sub)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, sub);
	return count_dir(path);
}

Test(userns_pool, namespaces_are_owned_by_the_user_namespace)
{
	struct em_netns_pool *pool = new_pool(2, EM_NETNS_NONE, NULL, userns), *plain;
	struct em_netns_pool_stats st;
	struct em_netns *a, *b, *c;
	struct em_err err = { 0 };
	uint64_t init_userns = host_userns_ino();
	char buf[64], path[64];

	cr_assert_neq(userns_ino, init_userns);
	cr_assert_eq(em_netns_pool_wait(pool, 2, 10000, &err), 0, "%s", err.msg);
	em_netns_pool_stats(pool, &st);
	cr_assert_eq(st.ready, 2);
	cr_assert_gt(st.helper_pid, 0, "a helper process");
	cr_assert_eq(em_netns_pool_acquire(pool, &a, &err), 0, "%s", err.msg);
	cr_assert_eq(a->mode, EM_NETNS_NONE);
	cr_assert_neq(a->ino, ino_of_path("/proc/thread-self/ns/net"));
	cr_assert_eq(owner_ino(a->fd), userns_ino, "owned by the pool's user namespace");

	/* The helper: named, single-threaded, a child of this process, inside the user namespace,
	 * holding only its socket and its parking namespace, and parked in a namespace of its own
	 * (never one it handed out). */
	pid_t h = st.helper_pid;
	read_proc(h, "comm", buf, sizeof(buf));
	cr_assert_str_eq(buf, "ember-netns\n");
	cr_assert_eq(proc_status(h, "Threads:"), 1);
	cr_assert_eq(proc_status(h, "PPid:"), getpid());
	char st_buf[4096], *blk;
	read_proc(h, "status", st_buf, sizeof(st_buf));
	blk = strstr(st_buf, "SigBlk:");
	cr_assert_not_null(blk);
	cr_assert_eq(strtoull(blk + 7, NULL, 16), ~((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1))),
		     "every signal blocked in the helper (the kernel never blocks KILL and STOP): %.30s",
		     blk);
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)h);
	cr_assert_eq(ino_of_path(path), userns_ino, "the helper is in the user namespace");
	/* Counted when idle: the refill thread is replacing the namespace we took. */
	cr_assert_eq(em_netns_pool_wait(pool, 2, 10000, &err), 0, "%s", err.msg);
	int hfds = count_proc_dir(h, "fd");
	for (int i = 0; i < 100 && hfds != 2; i++) {
		usleep(1000);
		hfds = count_proc_dir(h, "fd");
	}
	cr_assert_eq(hfds, 2, "the helper holds its socket and parking ns only, has %d fds", hfds);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)h);
	int park = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(park, 0);
	cr_assert_neq(em_netns_fd_ino(park), a->ino);
	cr_assert_eq(owner_ino(park), userns_ino);
	close(park);

	/* An ordinary pool, and a pool given the host's own user namespace: owned by the initial
	 * user namespace, no helper. */
	plain = new_pool(1, EM_NETNS_NONE, NULL, -1);
	cr_assert_eq(em_netns_pool_acquire(plain, &b, &err), 0, "%s", err.msg);
	cr_assert_eq(owner_ino(b->fd), init_userns, "an ordinary pool's owner: the init user ns");
	em_netns_pool_stats(plain, &st);
	cr_assert_eq(st.helper_pid, 0);
	int own = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
	struct em_netns_pool *same = new_pool(1, EM_NETNS_NONE, NULL, own);
	close(own);
	cr_assert_eq(em_netns_pool_acquire(same, &c, &err), 0, "%s", err.msg);
	cr_assert_eq(owner_ino(c->fd), init_userns);
	em_netns_pool_stats(same, &st);
	cr_assert_eq(st.helper_pid, 0, "the host's own user namespace needs no helper");

	em_netns_release(a);
	em_netns_release(b);
	em_netns_release(c);
	em_netns_pool_destroy(pool);
	em_netns_pool_destroy(plain);
	em_netns_pool_destroy(same);
	assert_clean();
}

Test(userns_pool, lo_up_and_reachable_inside)
{
	struct em_netns_pool *pool = new_pool(1, EM_NETNS_NONE, NULL, userns);
	struct link_q q = { .name = "lo", .prefix = "", .addr = ip4("127.0.0.1") };
	struct em_netns *ns;
	struct em_err err = { 0 };
	int port, lfd;

	cr_assert_eq(em_netns_pool_acquire(pool, &ns, &err), 0, "%s", err.msg);
	cr_assert_eq(query_links(ns->fd, &q), 0);
	cr_assert_eq(q.count, 1, "mode none: lo only, found %d links", q.count);
	cr_assert(q.flags & IFF_UP, "lo is up (flags %#x)", q.flags);
	cr_assert(q.addr_found, "127.0.0.1 on lo");
	cr_assert_eq(q.prefixlen, 8);
	lfd = tcp_listen_in(ns->fd, ip4("127.0.0.1"), &port);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(tcp_connect_from(ns->fd, ip4("127.0.0.1"), port, 2000), 0, "TCP over lo inside");
	close(lfd);
	em_netns_release(ns);
	em_netns_pool_destroy(pool);
	assert_clean();
}

/* What a zygote instance does: root in the user namespace (and nothing outside), join a ready
 * namespace. Results come back through a pipe; the child makes system calls only (the test process
 * has the pools' threads). */
struct join_result {
	int enter_userns;            /* 0 or errno */
	int join_plain;              /* setns into the ordinary pool's namespace: 0 or errno */
	int join_owned;              /* setns into the user-namespace pool's: 0 or errno */
	int lo_flags;                /* lo's flags seen from inside after joining, -errno */
};

static struct join_result join_as_userns_root(int userns_fd, int owned_fd, int plain_fd)
{
	struct join_result r = { -1, -1, -1, -1 };
	int p[2];
	pid_t pid;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	if (pid == 0) {
		struct ifreq ifr = { .ifr_name = "lo" };
		int s;

		r.enter_userns = setns(userns_fd, CLONE_NEWUSER) < 0 ? errno : 0;
		r.join_plain = setns(plain_fd, CLONE_NEWNET) < 0 ? errno : 0;
		r.join_owned = setns(owned_fd, CLONE_NEWNET) < 0 ? errno : 0;
		s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		r.lo_flags = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 ? ifr.ifr_flags : -errno;
		_exit(write(p[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(p[1]);
	cr_assert_gt(pid, 0);
	cr_assert_eq(read(p[0], &r, sizeof(r)), (ssize_t)sizeof(r));
	close(p[0]);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return r;
}

Test(userns_pool, userns_root_joins_them_and_not_an_ordinary_pools)
{
	struct em_netns_pool *owned = new_pool(1, EM_NETNS_NONE, NULL, userns);
	struct em_netns_pool *plain = new_pool(1, EM_NETNS_NONE, NULL, -1);
	struct em_netns *a, *b;
	struct em_err err = { 0 };

	cr_assert_eq(em_netns_pool_acquire(owned, &a, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_acquire(plain, &b, &err), 0, "%s", err.msg);
	struct join_result r = join_as_userns_root(userns, a->fd, b->fd);
	cr_assert_eq(r.enter_userns, 0, "enter the user namespace: %s", strerror(r.enter_userns));
	cr_assert_eq(r.join_plain, EPERM, "an ordinary pool's namespace: EPERM, got %s",
		     strerror(r.join_plain));
	cr_assert_eq(r.join_owned, 0, "the pool's namespace: joined, got %s", strerror(r.join_owned));
	cr_assert_geq(r.lo_flags, 0, "lo flags inside: %s", strerror(-r.lo_flags));
	cr_assert(r.lo_flags & IFF_UP, "lo up as the instance sees it");
	em_netns_release(a);
	em_netns_release(b);
	em_netns_pool_destroy(owned);
	em_netns_pool_destroy(plain);
	assert_clean();
}

static void assert_no_em_links_in_own_ns(void)
{
	struct link_q q = { .prefix = "em" };

	cr_assert_eq(query_links(-1, &q), 0);
	cr_assert_eq(q.count, 0, "%d em* interfaces in the machine's own namespace", q.count);
}

Test(userns_pool, bridge_mode)
{
	struct em_netns_bridge_cfg bc = { .name = "embtestu0", .subnet = "10.231.9.0/24" };
	struct em_netns_bridge *br;
	struct em_netns *ns[2];
	struct em_err err = { 0 };
	int node = em_netns_new_fd(&err), port, lfd;

	cr_assert_geq(node, 0, "%s", err.msg);
	bc.node_nsfd = node;
	cr_assert_eq(em_netns_bridge_open(&bc, &br, &err), 0, "%s", err.msg);
	struct em_netns_pool *pool = new_pool(2, EM_NETNS_BRIDGE, br, userns);

	for (int i = 0; i < 2; i++) {
		cr_assert_eq(em_netns_pool_acquire(pool, &ns[i], &err), 0, "%s", err.msg);
		struct em_netns *n = ns[i];
		struct link_q in = { .name = "eth0", .prefix = "", .addr = n->veth.addr };
		struct link_q peer = { .name = n->veth.peer };
		char a[INET_ADDRSTRLEN];

		cr_assert_eq(n->mode, EM_NETNS_BRIDGE);
		cr_assert_eq(owner_ino(n->fd), userns_ino, "owned by the pool's user namespace");
		cr_assert_str_eq(n->veth.ifname, "eth0");
		inet_ntop(AF_INET, &n->veth.addr, a, sizeof(a));
		cr_assert(strncmp(a, "10.231.9.", 9) == 0 && strcmp(a, "10.231.9.1"), "address %s", a);
		cr_assert_eq(query_links(n->fd, &in), 0);
		cr_assert_eq(in.count, 2, "lo and eth0 only");
		cr_assert(in.flags & IFF_UP, "eth0 up");
		cr_assert(in.addr_found, "eth0 has %s", a);
		cr_assert_eq(in.prefixlen, 24);
		cr_assert_eq(query_links(node, &peer), 0);
		cr_assert_eq(peer.ifindex, n->veth.peer_ifindex, "peer %s in the node namespace",
			     n->veth.peer);
		cr_assert_eq(peer.master, em_netns_bridge_ifindex(br), "peer enslaved to the bridge");
		cr_assert(peer.flags & IFF_UP, "peer up");
	}
	cr_assert_eq(owner_ino(node), host_userns_ino(),
		     "the node namespace stays the host's");
	cr_assert_neq(ns[0]->veth.addr.s_addr, ns[1]->veth.addr.s_addr);

	/* sandbox -> sandbox, sandbox -> bridge */
	lfd = tcp_listen_in(ns[1]->fd, ns[1]->veth.addr, &port);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(tcp_connect_from(ns[0]->fd, ns[1]->veth.addr, port, 3000), 0, "a reaches b");
	close(lfd);
	struct in_addr gw = em_netns_bridge_addr(br);
	lfd = tcp_listen_in(node, gw, &port);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(tcp_connect_from(ns[0]->fd, gw, port, 3000), 0, "a reaches the bridge");
	close(lfd);

	em_netns_release(ns[0]);
	em_netns_release(ns[1]);
	em_netns_pool_destroy(pool);
	struct link_q q = { .prefix = "emv" };
	cr_assert_eq(query_links(node, &q), 0);
	cr_assert_eq(q.count, 0, "every veth peer deleted from the node namespace");
	assert_no_em_links_in_own_ns();
	em_netns_bridge_close(br, true);
	close(node);
	assert_clean();
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

Test(userns_pool, destroy_ends_the_helper)
{
	struct em_netns_pool *pool = new_pool(3, EM_NETNS_NONE, NULL, userns);
	struct em_netns_pool_stats st;
	struct em_netns *ns[2];
	struct em_err err = { 0 };
	struct timespec t0;

	cr_assert_eq(em_netns_pool_wait(pool, 3, 10000, &err), 0, "%s", err.msg);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(em_netns_pool_acquire(pool, &ns[i], &err), 0, "%s", err.msg);
	for (int i = 0; i < 2; i++)
		em_netns_release(ns[i]);
	cr_assert_eq(em_netns_pool_wait(pool, 3, 10000, &err), 0, "%s", err.msg);
	em_netns_pool_stats(pool, &st);
	cr_assert_eq(st.hits, 2);
	cr_assert_eq(st.created, 5);
	cr_assert_eq(st.destroyed, 2, "both released namespaces destroyed");
	cr_assert_eq(st.pending_destroy, 0);
	cr_assert_eq(st.failures, 0);
	cr_assert_eq(count_fds(), fds0 + 3 + 3, "3 namespaces, the user ns dup, socket, pidfd");
	cr_assert_eq(count_children(), children0 + 1, "one helper");

	pid_t h = st.helper_pid;
	cr_assert_gt(h, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	em_netns_pool_destroy(pool);
	double ms = ms_since(&t0);
	cr_log_info("destroy with a helper: %.2f ms", ms);
	/* Ended by EOF on its socket, not by the SIGKILL that follows a second of waiting. */
	cr_assert_lt(ms, 900, "destroy took %.0f ms", ms);
	cr_assert_eq(kill(h, 0), -1, "helper %d still exists", (int)h);
	cr_assert_eq(errno, ESRCH, "helper reaped");
	assert_clean();
}

Test(userns_pool, destroyed_while_a_namespace_is_out)
{
	struct em_netns_pool *pool = new_pool(1, EM_NETNS_NONE, NULL, userns);
	struct em_netns_pool_stats st;
	struct em_netns *ns;
	struct em_err err = { 0 };

	cr_assert_eq(em_netns_pool_acquire(pool, &ns, &err), 0, "%s", err.msg);
	em_netns_pool_stats(pool, &st);
	em_netns_pool_destroy(pool);
	cr_assert_eq(kill(st.helper_pid, 0), -1);
	cr_assert_eq(errno, ESRCH, "the helper ends with the pool");
	cr_assert_eq(count_fds(), fds0 + 1, "only the namespace still out is held");
	struct join_result r = join_as_userns_root(userns, ns->fd, ns->fd);
	cr_assert_eq(r.join_owned, 0, "still joinable: %s", strerror(r.join_owned));
	cr_assert(r.lo_flags >= 0 && (r.lo_flags & IFF_UP));
	em_netns_release(ns); /* destroys it and frees the pool */
	assert_clean();
}

Test(userns_pool, a_dead_helper_is_replaced)
{
	struct em_netns_pool *pool = new_pool(1, EM_NETNS_NONE, NULL, userns);
	struct em_netns_pool_stats st;
	struct em_netns *a, *b;
	struct em_err err = { 0 };

	cr_assert_eq(em_netns_pool_wait(pool, 1, 10000, &err), 0, "%s", err.msg);
	em_netns_pool_stats(pool, &st);
	pid_t h = st.helper_pid;
	cr_assert_gt(h, 0);
	/* Killed from outside (the OOM killer, an operator): the next request finds it gone. */
	cr_assert_eq(kill(h, SIGKILL), 0);
	cr_assert_eq(em_netns_pool_acquire(pool, &a, &err), 0, "%s", err.msg);
	cr_assert_eq(em_netns_pool_wait(pool, 1, 10000, &err), 0, "%s", err.msg);
	em_netns_pool_stats(pool, &st);
	cr_assert_gt(st.helper_pid, 0, "a new helper");
	cr_assert_neq(st.helper_pid, h, "a new helper");
	cr_assert_geq(st.failures, 1, "the request to the dead one failed");
	cr_assert_eq(kill(h, 0), -1);
	cr_assert_eq(errno, ESRCH, "the dead helper was reaped");
	cr_assert_eq(count_children(), children0 + 1, "one helper");
	cr_assert_eq(em_netns_pool_acquire(pool, &b, &err), 0, "%s", err.msg);
	cr_assert_eq(owner_ino(b->fd), userns_ino);
	em_netns_release(a);
	em_netns_release(b);
	em_netns_pool_destroy(pool);
	assert_clean();
}

/* The host dies without destroying its pool, and a forked child of the host keeps a copy of the
 * helper's socket (so no EOF reaches the helper): the parent-death signal alone must end it. This
 * process is made a subreaper so that the orphaned helper comes to it to be reaped. */
Test(userns_pool, the_helper_dies_with_the_host)
{
	int p[2];
	pid_t pids[2] = { 0, 0 }, host;

	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	host = fork();
	if (host == 0) {
		struct em_netns_pool_cfg cfg = { .size = 1, .userns_fd = userns, .in_userns = true };
		struct em_netns_pool_stats st;
		struct em_netns_pool *pool;
		struct em_err err = { 0 };

		if (em_netns_pool_new(&cfg, &pool, &err) < 0 ||
		    em_netns_pool_wait(pool, 1, 10000, &err) < 0)
			_exit(1);
		em_netns_pool_stats(pool, &st);
		pids[0] = st.helper_pid;
		pids[1] = fork();
		if (pids[1] == 0) { /* holds every fd of the host, the helper's socket too */
			for (;;)
				pause();
		}
		_exit(write(p[1], pids, sizeof(pids)) == sizeof(pids) ? 0 : 2);
	}
	close(p[1]);
	cr_assert_gt(host, 0);
	cr_assert_eq(read(p[0], pids, sizeof(pids)), (ssize_t)sizeof(pids), "the host's pool started");
	close(p[0]);
	cr_assert_eq(waitpid(host, NULL, 0), host);
	cr_assert_gt(pids[0], 0);
	cr_assert_gt(pids[1], 0);

	siginfo_t si = { 0 };
	for (int i = 0; i < 500 && si.si_pid == 0; i++) {
		cr_assert_eq(waitid(P_PID, pids[0], &si, WEXITED | WNOHANG | __WALL), 0,
			     "the helper is reparented to us: %s", strerror(errno));
		if (si.si_pid == 0)
			usleep(10000);
	}
	kill(pids[1], SIGKILL); /* the fork that held the socket */
	waitpid(pids[1], NULL, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	cr_assert_eq(si.si_pid, pids[0], "the helper ended within 5 s of its host");
	cr_assert_eq(si.si_code, CLD_KILLED);
	cr_assert_eq(si.si_status, SIGKILL, "killed by its parent-death signal");
	assert_clean();
}

Test(userns_pool, a_bad_user_namespace_fd_is_refused)
{
	struct em_netns_pool_cfg cfg = { .size = 1, .in_userns = true };
	struct em_netns_pool *pool = NULL;
	struct em_err err = { 0 };

	cfg.userns_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), -ENOTTY, "%s", err.msg);
	cr_log_info("%s", err.msg);
	cr_assert(strstr(err.msg, "is not a namespace fd"), "%s", err.msg);
	close(cfg.userns_fd);

	cfg.userns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), -EINVAL, "%s", err.msg);
	cr_log_info("%s", err.msg);
	cr_assert(strstr(err.msg, "is a network namespace, not a user namespace"), "%s", err.msg);
	close(cfg.userns_fd);

	cfg.userns_fd = -1;
	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), -EINVAL);
	cr_assert(strstr(err.msg, "in_userns without a user namespace fd"), "%s", err.msg);
	cr_assert_null(pool);
	assert_clean();
}

/* The kernel refuses namespaces (max_net_namespaces of the user namespace): the helper's failing
 * step and the kernel's code come back, at pool_new (its own parking namespace) or per creation. */
Test(userns_pool, kernel_refusals_name_the_step)
{
	struct em_netns_pool_cfg cfg = { .size = 1, .in_userns = true };
	struct em_netns_pool_stats st;
	struct em_netns_pool *pool = NULL;
	struct em_netns *ns;
	struct em_err err = { 0 };
	int none = make_userns(OUTER_UID + 2, 0), one = make_userns(OUTER_UID + 3, 1);

	cr_assert_geq(none, 0);
	cr_assert_geq(one, 0);
	fds0 += 2;

	cfg.userns_fd = none;
	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), -ENOSPC, "%s", err.msg);
	cr_log_info("%s", err.msg);
	cr_assert(strstr(err.msg, "network namespace helper (pid ") &&
		  strstr(err.msg, "create its parking network namespace") &&
		  strstr(err.msg, "ENOSPC"), "%s", err.msg);
	cr_assert_null(pool);
	assert_clean(); /* no helper, thread or fd left by the failed pool */

	/* Room for the parking namespace only. */
	cfg.userns_fd = one;
	cr_assert_eq(em_netns_pool_new(&cfg, &pool, &err), 0, "%s", err.msg);
	for (int i = 0; i < 500; i++) {
		em_netns_pool_stats(pool, &st);
		if (st.failures)
			break;
		usleep(10000);
	}
	cr_assert_geq(st.failures, 1);
	cr_assert_eq(st.ready, 0);
	cr_assert_eq(em_netns_pool_wait(pool, 1, 10, &err), -ENOSPC, "%s", err.msg);
	cr_log_info("%s", err.msg);
	cr_assert(strstr(err.msg, "unshare a network namespace") && strstr(err.msg, "ENOSPC"),
		  "%s", err.msg);
	cr_assert_eq(em_netns_pool_acquire(pool, &ns, &err), -ENOSPC, "a miss fails the same way");
	cr_assert(strstr(err.msg, "network namespace pool empty") &&
		  strstr(err.msg, "unshare a network namespace"), "%s", err.msg);
	em_netns_pool_stats(pool, &st);
	cr_assert_gt(st.helper_pid, 0, "the helper stays: a refusal is not its end");
	em_netns_pool_destroy(pool);
	close(none);
	close(one);
	fds0 -= 2;
	assert_clean();
}

/* Not a benchmark (see tools/bench): the cost of a namespace made on the caller's path (a miss),
 * by the caller's thread in an ordinary pool and through the helper in a user-namespace pool,
 * logged for comparison. Misses of the two pools alternate, so that both see the same background (the
 * kernel tears namespaces down asynchronously, and that weighs on creation). */
Test(userns_pool, miss_cost_logged)
{
	enum { N = 16 };
	struct em_netns_pool *pool[2];
	struct em_netns_pool_stats st;
	struct em_netns *ns[2][N];
	struct em_err err = { 0 };
	double sum[2] = { 0, 0 }, start_ms;
	struct timespec t0;

	pool[0] = new_pool(1, EM_NETNS_NONE, NULL, -1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pool[1] = new_pool(1, EM_NETNS_NONE, NULL, userns);
	start_ms = ms_since(&t0);
	for (int k = 0; k < 2; k++) {
		/* Empty, and kept empty: every acquire below is a miss. */
		cr_assert_eq(em_netns_pool_wait(pool[k], 1, 10000, &err), 0, "%s", err.msg);
		em_netns_pool_resize(pool[k], 0);
		for (int i = 0; i < 1000; i++) {
			em_netns_pool_stats(pool[k], &st);
			if (st.ready == 0)
				break;
			usleep(1000);
		}
		cr_assert_eq(st.ready, 0);
	}
	for (int i = 0; i < N; i++)
		for (int k = 0; k < 2; k++) {
			clock_gettime(CLOCK_MONOTONIC, &t0);
			cr_assert_eq(em_netns_pool_acquire(pool[k], &ns[k][i], &err), 0, "%s", err.msg);
			sum[k] += ms_since(&t0);
		}
	for (int k = 0; k < 2; k++) {
		em_netns_pool_stats(pool[k], &st);
		cr_assert_eq(st.misses, N);
		cr_assert_eq(owner_ino(ns[k][N - 1]->fd), k ? userns_ino : host_userns_ino());
		for (int i = 0; i < N; i++)
			em_netns_release(ns[k][i]);
		em_netns_pool_destroy(pool[k]);
	}
	cr_log_info("a namespace on the caller's path: %.3f ms by the thread, %.3f ms through the "
		    "helper (the helper's start: %.2f ms)", sum[0] / N, sum[1] / N, start_ms);
	assert_clean();
}
