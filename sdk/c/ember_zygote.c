/* sdk/c/ember_zygote.c — see ember_zygote.h. libc only: it is also a shared object for Python. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ember_zygote.h"
#include "ember_proto.h"
#include "ember_wire.h"
#include "ember_snap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#ifndef MQUEUE_MAGIC
#define MQUEUE_MAGIC 0x19800202 /* include/uapi/linux/magic.h since 6.x; ipc/mqueue.c before */
#endif
#include <sys/syscall.h>
#include <unistd.h>

static int send_all(int fd, const void *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p = (const char *)p + n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_frame(int fd, uint16_t type, uint64_t id, const void *payload, size_t len)
{
	unsigned char hdr[EMBER_PROTO_HDR_LEN];

	ember_frame_hdr(hdr, type, id, len);
	if (send_all(fd, hdr, sizeof(hdr)) < 0)
		return -1;
	return len ? send_all(fd, payload, len) : 0;
}

/* The template's answer: errno and message. */
static int send_forked(int chan, uint64_t id, int e, const char *msg)
{
	char buf[512];
	size_t n = strlen(msg);

	if (n > sizeof(buf) - 4)
		n = sizeof(buf) - 4;
	ember_put_le((unsigned char *)buf, (uint32_t)e, 4);
	memcpy(buf + 4, msg, n);
	return send_frame(chan, EMBER_FORKED, id, buf, n + 4);
}

/* ------------------------------------------------------------------ the child */

/* A setup step of the child failed: tell the host on the new channel (the template's log is not
 * the instance's) and end. The host counts it as a failed start and falls back to a cold one. */
static _Noreturn void child_fail(int chan, const char *fmt, ...)
{
	char msg[300], json[400];
	size_t j = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j = (size_t)snprintf(json, sizeof(json), "{\"errorType\":\"Zygote.SetupFailed\","
			     "\"errorMessage\":\"");
	for (const char *p = msg; *p && j < sizeof(json) - 4; p++)
		if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
			json[j++] = *p;
	json[j++] = '"';
	json[j++] = '}';
	send_frame(chan, EMBER_INIT_ERROR, 0, json, j);
	_exit(1);
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Its own /proc: the template's shows the template's pid namespace (every sibling instance).
 * Then the masks the runtime put on the template's /proc, again. */
static void child_proc(int chan, const char *paths, size_t len)
{
	const unsigned long pflags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	if (mount("proc", "/proc", "proc", pflags, NULL) < 0)
		child_fail(chan, "mount its own /proc: %s", strerror(errno));
	for (size_t off = 0; off < len;) {
		const char *e = paths + off;
		size_t l = strnlen(e, len - off);
		const char *path = e + 1;

		off += l + 1;
		if (l < 2 || path[0] != '/')
			continue;
		if (e[0] == 'm') {
			int r = is_dir(path)
				? mount("tmpfs", path, "tmpfs", MS_RDONLY | pflags, "size=0")
				: mount("/dev/null", path, NULL, MS_BIND, NULL);
			if (r < 0 && errno != ENOENT)
				child_fail(chan, "mask %s: %s", path, strerror(errno));
		} else if (e[0] == 'r') {
			if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
				if (errno == ENOENT)
					continue;
				child_fail(chan, "read-only %s: %s", path, strerror(errno));
			}
			if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | pflags,
				  NULL) < 0)
				child_fail(chan, "read-only %s: %s", path, strerror(errno));
		}
	}
}

/* /dev/shm and /dev/mqueue, if the template has them, are the template's filesystems: shared and
 * writable between every fork. Each instance gets fresh ones (the mqueue one of its own ipc
 * namespace), as a cold instance does. */
static void child_ipc_mounts(int chan)
{
	const unsigned long f = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	struct statfs sf;

	if (statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC &&
	    mount("shm", "/dev/shm", "tmpfs", f, "mode=1777,size=65536k") < 0)
		child_fail(chan, "mount its own /dev/shm: %s", strerror(errno));
	if (statfs("/dev/mqueue", &sf) == 0 && sf.f_type == MQUEUE_MAGIC &&
	    mount("mqueue", "/dev/mqueue", "mqueue", f, NULL) < 0)
		child_fail(chan, "mount its own /dev/mqueue: %s", strerror(errno));
}

static void child_caps(int chan, uint64_t keep)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	d[0].effective = d[0].permitted = (uint32_t)keep;
	d[1].effective = d[1].permitted = (uint32_t)(keep >> 32);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		child_fail(chan, "clear ambient capabilities: %s", strerror(errno));
	if (syscall(SYS_capset, &h, d) < 0)
		child_fail(chan, "drop capabilities: %s", strerror(errno));
}

/* Runs in the new process: everything that makes it an instance of its own. */
static void child_setup(int chan, const int *fds, const struct ember_fork_req *req,
			const char *paths)
{
	int newchan = fds[EMBER_FORK_FD_CHANNEL];
	struct sigaction sa = { .sa_handler = SIG_DFL };
	char opts[64];

	sigaction(SIGCHLD, &sa, NULL);
	if (setns(fds[EMBER_FORK_FD_NETNS], CLONE_NEWNET) < 0)
		child_fail(newchan, "join its network namespace: %s", strerror(errno));
	/* nothing mounted here may reach the template's mount namespace */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(newchan, "make its mounts private: %s", strerror(errno));
	child_proc(newchan, paths, req->paths_len);
	child_ipc_mounts(newchan);
	snprintf(opts, sizeof(opts), "mode=1777,size=%um", req->tmp_mb ? req->tmp_mb : 64);
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		child_fail(newchan, "mount its own /tmp: %s", strerror(errno));
	if (dup2(fds[EMBER_FORK_FD_LOG], STDOUT_FILENO) < 0 ||
	    dup2(fds[EMBER_FORK_FD_LOG], STDERR_FILENO) < 0 ||
	    dup3(newchan, chan, O_CLOEXEC) < 0)
		child_fail(newchan, "take its stdout, stderr and channel: %s", strerror(errno));
	for (int i = 0; i < EMBER_FORK_NFDS; i++)
		if (fds[i] >= 0 && fds[i] != chan && fds[i] > STDERR_FILENO)
			close(fds[i]);
	child_caps(chan, req->keep_caps);
}

/* ------------------------------------------------------------------ the template */

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define HUGE_2M (2ull << 20)

long long ember_zygote_prepare(void)
{
	char line[512];
	long long huge = -1;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;
		char perms[8], path[256] = "";
		int n = sscanf(line, "%llx-%llx %7s %*s %*s %*s %255s", &lo, &hi, perms, path);

		if (n < 3 || perms[1] != 'w' || perms[3] != 'p' ||
		    (path[0] && strcmp(path, "[heap]")))
			continue;
		lo = (lo + HUGE_2M - 1) & ~(HUGE_2M - 1);
		hi &= ~(HUGE_2M - 1);
		if (hi <= lo)
			continue;
		/* collapse what is there; no MADV_HUGEPAGE, so that later faults (the template's
		 * and its children's new allocations) stay 4K: a 2 MB page to clear and perhaps
		 * compact for a small allocation made forks of small Python templates slower */
		madvise((void *)(uintptr_t)lo, hi - lo, MADV_COLLAPSE);
	}
	fclose(f);
	f = fopen("/proc/self/smaps_rollup", "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %lld kB", &huge) == 1) {
			huge <<= 10;
			break;
		}
	if (f)
		fclose(f);
	return huge;
}

/* Read the payload and its fds. */
static int read_request(int chan, uint64_t len, struct ember_fork_req *req, char **paths,
			int *fds, char *why, size_t cap)
{
	unsigned char *buf;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * EMBER_FORK_NFDS)];
	} cm;
	size_t got = 0;
	int nfds = 0;

	if (len < sizeof(*req) || len > sizeof(*req) + EMBER_FORK_MAX_PATHS) {
		snprintf(why, cap, "FORK payload of %llu bytes", (unsigned long long)len);
		return -EPROTO;
	}
	buf = malloc(len + 1);
	if (!buf) {
		snprintf(why, cap, "no memory for a FORK request");
		return -ENOMEM;
	}
	while (got < len) {
		struct iovec iov = { buf + got, len - got };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (!nfds) {
			m.msg_control = cm.b;
			m.msg_controllen = sizeof(cm.b);
		}
		n = recvmsg(chan, &m, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			why[0] = '\0'; /* the channel broke: not a fork failure */
			return n < 0 ? -errno : -EPIPE;
		}
		for (struct cmsghdr *c = m.msg_controllen ? CMSG_FIRSTHDR(&m) : NULL; c;
		     c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
				if (nfds > EMBER_FORK_NFDS)
					nfds = EMBER_FORK_NFDS;
				memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)nfds);
			}
		}
		got += (size_t)n;
	}
	req->tmp_mb = (uint32_t)ember_get_le(buf, 4);
	req->paths_len = (uint32_t)ember_get_le(buf + 4, 4);
	req->keep_caps = ember_get_le(buf + 8, 8);
	if (req->paths_len != len - sizeof(*req) || nfds < EMBER_FORK_FD_CGROUP) {
		free(buf);
		snprintf(why, cap, "FORK request: %d fds, paths of %u bytes in %llu", nfds,
			 req->paths_len, (unsigned long long)len);
		return -EPROTO;
	}
	memmove(buf, buf + sizeof(*req), req->paths_len);
	buf[req->paths_len] = '\0';
	*paths = (char *)buf;
	return nfds;
}

int ember_zygote_fork(int chan, uint64_t id, uint64_t payload_len, char *why, size_t why_cap)
{
	int fds[EMBER_FORK_NFDS] = { -1, -1, -1, -1 };
	struct ember_fork_req req = { 0 };
	struct clone_args ca;
	char *paths = NULL;
	long pid;
	int nfds, e;

	why[0] = '\0';
	nfds = read_request(chan, payload_len, &req, &paths, fds, why, why_cap);
	if (nfds < 0) {
		e = nfds;
		if (why[0] && send_forked(chan, id, -e, why) < 0)
			why[0] = '\0';
		for (int i = 0; i < EMBER_FORK_NFDS; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return e;
	}
	/* the template reaps nobody: exited instances go at once (the host learns their status
	 * from its pidfd), and a zombie never holds a pid or a cgroup */
	if (signal(SIGCHLD, SIG_IGN) == SIG_ERR) {
		e = -errno;
		goto fail;
	}
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
	ca.exit_signal = SIGCHLD;
	if (nfds > EMBER_FORK_FD_CGROUP) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)fds[EMBER_FORK_FD_CGROUP];
	}
	pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0) {
		e = -errno;
		snprintf(why, why_cap, "clone3: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		child_setup(chan, fds, &req, paths);
		free(paths);
		return 0;
	}
	for (int i = 0; i < EMBER_FORK_NFDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(paths);
	if (send_forked(chan, id, 0, "") < 0) {
		why[0] = '\0';
		return -EPIPE;
	}
	return (int)pid;
fail:
	if (!why[0])
		snprintf(why, why_cap, "fork: %s", strerror(-e));
	for (int i = 0; i < EMBER_FORK_NFDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(paths);
	if (send_forked(chan, id, -e, why) < 0)
		why[0] = '\0';
	return e;
}

int ember_zygote_serve(int chan, uint16_t *type, uint64_t *id, uint64_t *len, char *why,
		       size_t why_cap)
{
	for (;;) {
		unsigned char h[EMBER_PROTO_HDR_LEN];
		int r = ember_read_exact(chan, h, sizeof(h));

		why[0] = '\0';
		if (r < 0)
			return r;
		if (ember_get_le(h, 4) != EMBER_PROTO_MAGIC || ember_get_le(h + 4, 2) != EMBER_PROTO_VERSION ||
		    ember_get_le(h + 16, 8) > EMBER_PROTO_MAX_PAYLOAD) {
			snprintf(why, why_cap, "bad frame header (magic %#010llx, version %llu)",
				 (unsigned long long)ember_get_le(h, 4), (unsigned long long)ember_get_le(h + 4, 2));
			return -EPROTO;
		}
		*type = (uint16_t)ember_get_le(h + 6, 2);
		*id = ember_get_le(h + 8, 8);
		*len = ember_get_le(h + 16, 8);
		if (*type == EMBER_SNAPSHOT) {
			if (*len) {
				snprintf(why, why_cap, "SNAPSHOT %llu has a %llu byte payload "
					 "(none expected)", (unsigned long long)*id,
					 (unsigned long long)*len);
				return -EPROTO;
			}
			r = ember_snap_handle(chan, *id, why, why_cap);
			if (r == 1)
				return EMBER_ZYGOTE_RESTORED;
			if (r < 0)
				return r;
			if (why[0]) /* refused: the host was told */
				fprintf(stderr, "ember_zygote: snapshot refused: %s\n", why);
			continue;
		}
		if (*type != EMBER_FORK)
			return 1;
		r = ember_zygote_fork(chan, *id, *len, why, why_cap);
		if (r == 0)
			return 0;
		if (r < 0 && !why[0])
			return r; /* the channel broke */
		if (r < 0)
			fprintf(stderr, "ember_zygote: fork failed: %s\n", why);
	}
}
