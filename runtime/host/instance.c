/* runtime/host/instance.c — see instance.h. */
#include "runtime/host/instance.h"
#include "bpf/billing_api.h"
#include "cgroups/cgroups.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "netns/netns.h"
#include "runtime/billing.h"
#include "runtime/plan.h"
#include "sdk/c/ember_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

/* <linux/pidfd.h> of Linux 6.15 (Debian 12's headers predate it). */
struct em_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
	uint32_t coredump_mask, spare1;
};
#define EM_PIDFD_INFO_PID 1ull
#define EM_PIDFD_INFO_EXIT 8ull
#define EM_PIDFD_GET_INFO _IOWR(0xFF, 11, struct em_pidfd_info)

/* Per invocation the host keeps this much of an instance's output; the rest is counted. */
#define LOG_KEEP (64u * 1024)

uint64_t em_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int attach_cb(void *data, pid_t pid, struct em_err *err)
{
	struct em_inst *in = data;

	return em_cg_attach(in->cg, pid, err);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* What every instance has before its process: its cgroup (limits applied; cgroup.procs delegated
 * to *delegate if given), billing, a network namespace, the channel and the log pipe. The
 * process's ends of the channel and the pipe go to chan_child / log_child. */
static int inst_alloc(const struct em_inst_cfg *cfg, uint64_t seq, const char *cg_path,
		      struct em_netns_pool *netns, const uid_t *delegate, struct em_inst **out,
		      int *chan_child, int *log_child, struct em_err *err)
{
	struct em_inst *in = calloc(1, sizeof(*in));
	int sp[2], lp[2], ret;

	*out = NULL;
	if (!in)
		return em_err_set(err, ENOMEM, "instance of %s", cfg->fn);
	in->seq = seq;
	in->pid = -1;
	in->pidfd = in->chan = in->logfd = -1;
	in->fork_fds[0] = in->fork_fds[1] = -1;
	in->sb.sync_fd = -1;
	in->memory_mb = cfg->memory_mb;
	in->hlog = cfg->log;
	if (cg_path)
		snprintf(in->name, sizeof(in->name), "%s", cg_path);
	else
		snprintf(in->name, sizeof(in->name), "i%llu-%s", (unsigned long long)seq, cfg->fn);
	*out = in;

	ret = em_cg_create(cfg->cg_root, in->name, cfg->limits, &in->cg, err);
	if (ret < 0)
		return em_err_prefix(err, "instance %s: ", in->name);
	in->cgid = em_cg_id(in->cg);
	if (delegate && (ret = em_cg_delegate_procs(in->cg, *delegate, *delegate, err)) < 0)
		return em_err_prefix(err, "instance %s: ", in->name);
	if (cfg->bill) {
		struct em_rt_bill_paths paths;
		struct em_bill_cg bc;

		em_rt_bill_cg(cfg->cg_root, in->cg, cfg->memory_mb, &paths, &bc);
		ret = em_bill_track(cfg->bill, &bc, err);
		if (ret < 0)
			return em_err_prefix(err, "instance %s: billing: ", in->name);
		in->bill = cfg->bill;
	}
	ret = em_netns_pool_acquire(netns, &in->ns, err);
	if (ret < 0)
		return em_err_prefix(err, "instance %s: network namespace: ", in->name);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return em_err_set(err, errno, "instance %s: channel socketpair", in->name);
	in->chan = sp[0];
	*chan_child = sp[1];
	if (pipe2(lp, O_CLOEXEC) < 0)
		return em_err_set(err, errno, "instance %s: log pipe", in->name);
	in->logfd = lp[0];
	*log_child = lp[1];
	if (set_nonblock(in->chan) < 0 || set_nonblock(in->logfd) < 0)
		return em_err_set(err, errno, "instance %s: non-blocking channel", in->name);
	return 0;
}

int em_inst_park(const struct em_inst_cfg *cfg, uint64_t seq, struct em_inst **out,
		 struct em_err *err)
{
	struct em_inst *in = NULL;
	cleanup_close int chan_child = -1, log_child = -1, devnull = -1;
	struct em_plan plan;
	struct em_sandbox_io io;
	struct em_sandbox_hooks hooks = { .attach = attach_cb };
	int ret;

	memset(&plan, 0, sizeof(plan));
	ret = inst_alloc(cfg, seq, cfg->cg_path, cfg->netns, NULL, &in, &chan_child, &log_child,
			 err);
	if (ret < 0)
		goto fail;
	hooks.data = in;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0) {
		ret = em_err_set(err, errno, "open /dev/null");
		goto fail;
	}
	struct em_plan_opts po = { .bundle = cfg->bundle, .cgroup_rel = em_cg_path(in->cg),
				   .netns_fd = in->ns->fd, .log = cfg->log };
	ret = em_plan_build(cfg->oci, &cfg->oci->process, &po, &plan, err);
	if (ret < 0) {
		em_err_prefix(err, "function %s: ", cfg->fn);
		goto fail;
	}
	io = (struct em_sandbox_io){ .sync_fd = -1, .stub_fd = -1, .fifo_fd = -1,
				     .console_sock = -1, .proc_fd = -1, .remap_fds = true,
				     .map_fds = { devnull, log_child, log_child, chan_child },
				     .n_map_fds = 4, .host_owned = true };
	for (int i = 0; i < cfg->n_extra_fds && io.n_map_fds < EM_SANDBOX_MAP_FDS; i++)
		io.map_fds[io.n_map_fds++] = cfg->extra_fds[i];
	ret = em_sandbox_start(&plan, &io, &hooks, &in->sb, cfg->log, err);
	if (io.stub_fd >= 0)
		close(io.stub_fd);
	if (io.proc_fd >= 0)
		close(io.proc_fd);
	em_plan_free(&plan);
	if (ret < 0) {
		em_err_prefix(err, "function %s: sandbox: ", cfg->fn);
		goto fail;
	}
	in->pid = in->sb.pid;
	in->pidfd = (int)syscall(SYS_pidfd_open, in->pid, 0);
	if (in->pidfd < 0) {
		ret = em_err_set(err, errno, "pidfd_open of instance %s", in->name);
		goto fail;
	}
	in->state = EM_INST_PARKED;
	*out = in;
	return 0;
fail:
	em_inst_destroy(in);
	return ret;
}

int em_inst_prepare_fork(const struct em_inst_cfg *cfg, const char *cg_path, uid_t uid,
			 struct em_netns_pool *netns, uint64_t seq, struct em_inst **out,
			 struct em_err *err)
{
	struct em_inst *in = NULL;
	int one = 1, chan_child = -1, log_child = -1, ret;

	ret = inst_alloc(cfg, seq, cg_path, netns, &uid, &in, &chan_child, &log_child, err);
	if (in) {
		in->fork_fds[0] = chan_child;
		in->fork_fds[1] = log_child;
	}
	if (ret < 0)
		goto fail;
	in->forked = true;
	/* the READY of whoever holds the other end comes with a pidfd of its sender */
	if (setsockopt(in->chan, SOL_SOCKET, SO_PASSPIDFD, &one, sizeof(one)) < 0) {
		ret = em_err_set(err, errno, "instance %s: SO_PASSPIDFD (Linux >= 6.5)", in->name);
		goto fail;
	}
	in->state = EM_INST_PARKED;
	*out = in;
	return 0;
fail:
	em_inst_destroy(in);
	return ret;
}

/* ------------------------------------------------------------------ output capture */

static void drain_log(struct em_inst *in)
{
	char buf[16384];
	ssize_t n;

	while ((n = read(in->logfd, buf, sizeof(buf))) > 0) {
		size_t keep = 0;

		if (in->log_len < LOG_KEEP) {
			keep = (size_t)n < LOG_KEEP - in->log_len ? (size_t)n : LOG_KEEP - in->log_len;
			if (in->log_len + keep + 1 > in->log_cap) {
				size_t cap = in->log_cap ? in->log_cap * 2 : 4096;
				while (cap < in->log_len + keep + 1)
					cap *= 2;
				char *p = realloc(in->log, cap);
				if (!p) {
					keep = 0;
				} else {
					in->log = p;
					in->log_cap = cap;
				}
			}
			memcpy(in->log + in->log_len, buf, keep);
			in->log_len += keep;
		}
		in->log_dropped += (size_t)n - keep;
	}
}

char *em_inst_take_log(struct em_inst *in, size_t *len)
{
	char *s;

	drain_log(in);
	if (in->log_dropped) {
		char tail[64];
		int n = snprintf(tail, sizeof(tail), "\n...[%zu bytes more not kept]\n", in->log_dropped);
		s = malloc(in->log_len + (size_t)n + 1);
		if (s) {
			memcpy(s, in->log ? in->log : "", in->log_len);
			memcpy(s + in->log_len, tail, (size_t)n + 1);
			*len = in->log_len + (size_t)n;
		}
	} else {
		s = malloc(in->log_len + 1);
		if (s) {
			memcpy(s, in->log ? in->log : "", in->log_len);
			s[in->log_len] = '\0';
			*len = in->log_len;
		}
	}
	if (!s)
		*len = 0;
	in->log_len = 0;
	in->log_dropped = 0;
	return s;
}

/* ------------------------------------------------------------------ death */

/* A forked instance is its template's child, not ours, and the template reaps it at once
 * (SIGCHLD ignored): its status comes from its pidfd (PIDFD_INFO_EXIT, Linux >= 6.15), which the
 * kernel fills when the process is released. Waits for that (it is dying or dead: the caller
 * killed it or saw its pidfd readable), at most a second. */
static void forked_status(struct em_inst *in, siginfo_t *si)
{
	struct em_pidfd_info info;
	uint64_t until = em_now_ns() + 1000000000ull;

	do {
		struct pollfd p = { .fd = in->pidfd, .events = POLLIN };

		memset(&info, 0, sizeof(info));
		info.mask = EM_PIDFD_INFO_EXIT;
		poll(&p, 1, 10);
		if (ioctl(in->pidfd, EM_PIDFD_GET_INFO, &info) < 0 && errno != ESRCH)
			break;
		if (info.mask & EM_PIDFD_INFO_EXIT) {
			si->si_code = WIFEXITED(info.exit_code) ? CLD_EXITED : CLD_KILLED;
			si->si_status = WIFEXITED(info.exit_code) ? WEXITSTATUS(info.exit_code)
								  : WTERMSIG(info.exit_code);
			return;
		}
	} while (em_now_ns() < until);
	em_warn(in->hlog, "instance %s: exit status unknown (pidfd: %s)", in->name,
		info.mask & EM_PIDFD_INFO_EXIT ? "?" : "no exit information");
	si->si_code = CLD_KILLED;
	si->si_status = SIGKILL;
}

/* The process is gone (or must be): reap it and find out how it ended. */
static void reap(struct em_inst *in, bool killed_by_us)
{
	siginfo_t si;
	struct em_cg_stats st;

	if (in->pid <= 0)
		return;
	memset(&si, 0, sizeof(si));
	if (in->forked)
		forked_status(in, &si);
	else
		while (waitid((idtype_t)P_PIDFD, (id_t)in->pidfd, &si, WEXITED) < 0 &&
		       errno == EINTR)
			;
	in->pid = -1;
	in->state = EM_INST_DEAD;
	if (in->end != EM_INST_ALIVE)
		return; /* already classified (protocol violation, timeout) */
	if (killed_by_us) {
		in->end = EM_INST_KILLED;
		return;
	}
	if (si.si_code == CLD_EXITED) {
		in->end = EM_INST_EXITED;
		in->end_value = si.si_status;
	} else {
		in->end = EM_INST_SIGNALED;
		in->end_value = si.si_status;
	}
	/* the OOM killer sends SIGKILL; the cgroup counted it */
	if (in->end == EM_INST_SIGNALED && si.si_status == SIGKILL &&
	    em_cg_stats(in->cg, &st, NULL) == 0 && st.oom_kill_events > 0)
		in->end = EM_INST_OOM;
}

static void kill_now(struct em_inst *in)
{
	struct em_err err = { 0 };

	if (in->pid <= 0)
		return;
	if (em_cg_kill(in->cg, SIGKILL, &err) < 0) {
		em_warn(in->hlog, "instance %s: %s", in->name, err.msg);
		kill(in->pid, SIGKILL);
	}
	in->frozen = false;
}

void em_inst_describe_end(const struct em_inst *in, char *buf, size_t cap)
{
	switch (in->end) {
	case EM_INST_EXITED:
		snprintf(buf, cap, "exited with status %d", in->end_value);
		break;
	case EM_INST_SIGNALED:
		snprintf(buf, cap, "killed by SIG%s", sigabbrev_np(in->end_value) ?: "?");
		break;
	case EM_INST_OOM:
		snprintf(buf, cap, "out of memory (the function's limit is %u MB)", in->memory_mb);
		break;
	case EM_INST_PROTOCOL:
		snprintf(buf, cap, "broke the instance protocol (sdk/PROTOCOL.md)");
		break;
	case EM_INST_KILLED:
		snprintf(buf, cap, "killed by the host");
		break;
	default:
		snprintf(buf, cap, "running");
	}
}

/* ------------------------------------------------------------------ frames */

enum wait_res { W_FRAME = 1, W_TIMEOUT = 0, W_DIED = -1, W_BAD = -2 };

/* Wait for events until deadline: log output is drained, the process's death noticed. With
 * want_out, also until chan is writable. */
static enum wait_res wait_io(struct em_inst *in, bool want_out, uint64_t deadline_ns)
{
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = in->chan, .events = want_out ? POLLOUT : POLLIN },
			{ .fd = in->logfd, .events = POLLIN },
			{ .fd = in->pidfd, .events = POLLIN },
		};
		uint64_t now = em_now_ns();
		int ms, n;

		if (now >= deadline_ns)
			return W_TIMEOUT;
		ms = (int)((deadline_ns - now + 999999) / 1000000);
		n = poll(p, 3, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return W_DIED;
		if (p[1].revents)
			drain_log(in);
		if (p[0].revents & (want_out ? POLLOUT : POLLIN))
			return W_FRAME;
		if (p[0].revents & (POLLHUP | POLLERR))
			return W_DIED;
		if (p[2].revents)
			return W_DIED;
	}
}

static enum wait_res read_full(struct em_inst *in, void *buf, size_t n, uint64_t deadline_ns)
{
	char *p = buf;

	while (n) {
		ssize_t r = read(in->chan, p, n);

		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (r == 0)
			return W_DIED;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return W_DIED;
		enum wait_res w = wait_io(in, false, deadline_ns);
		if (w != W_FRAME)
			return w;
	}
	return W_FRAME;
}

static enum wait_res read_frame(struct em_inst *in, struct ember_frame_hdr *h, char **payload,
				uint64_t deadline_ns)
{
	enum wait_res w = read_full(in, h, sizeof(*h), deadline_ns);

	*payload = NULL;
	if (w != W_FRAME)
		return w;
	if (h->magic != EMBER_PROTO_MAGIC || h->version != EMBER_PROTO_VERSION ||
	    h->len > EMBER_PROTO_MAX_PAYLOAD)
		return W_BAD;
	*payload = malloc(h->len + 1);
	if (!*payload)
		return W_BAD;
	w = read_full(in, *payload, h->len, deadline_ns);
	if (w != W_FRAME) {
		free(*payload);
		*payload = NULL;
		return w;
	}
	(*payload)[h->len] = '\0';
	return W_FRAME;
}

static enum wait_res write_all(struct em_inst *in, struct iovec *iov, int n, uint64_t deadline_ns)
{
	while (n > 0) {
		ssize_t r = writev(in->chan, iov, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return W_DIED;
			enum wait_res w = wait_io(in, true, deadline_ns);
			if (w != W_FRAME)
				return w;
			continue;
		}
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return W_FRAME;
}

/* ------------------------------------------------------------------ start and invoke */

/* A reply's JSON {"errorType","errorMessage"} as one line for messages. */
static void error_text(const char *json, char *buf, size_t cap)
{
	json_auto_t *j = json_loads(json, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "errorType"));
	const char *msg = json_string_value(json_object_get(j, "errorMessage"));

	if (type || msg)
		snprintf(buf, cap, "%s: %s", type ? type : "Error", msg ? msg : "");
	else
		snprintf(buf, cap, "%.200s", json);
}

/* The restorer's EMBER_SNAPSHOT_UFFD header and the userfaultfd riding on it, if that is what
 * comes first (lazy restores); anything else is left unread. 1: got it, 0: another frame. */
static enum wait_res read_uffd_frame(struct em_inst *in, int *uffd, bool *got, uint64_t deadline_ns)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct ember_frame_hdr h;
	struct iovec iov = { &h, sizeof(h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
			    .msg_controllen = sizeof(cm.b) };
	ssize_t n;

	*got = false;
	for (;;) {
		n = recv(in->chan, &h, sizeof(h), MSG_PEEK);
		if (n == (ssize_t)sizeof(h))
			break;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return W_DIED;
		enum wait_res w = wait_io(in, false, deadline_ns);
		if (w != W_FRAME)
			return w;
	}
	if (h.magic != EMBER_PROTO_MAGIC || h.type != EMBER_SNAPSHOT_UFFD)
		return W_FRAME;
	n = recvmsg(in->chan, &m, MSG_CMSG_CLOEXEC);
	if (n != (ssize_t)sizeof(h) || h.len)
		return W_BAD;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(uffd, CMSG_DATA(c), sizeof(int));
	if (*uffd < 0)
		return W_BAD;
	*got = true;
	return W_FRAME;
}

static int start(struct em_inst *in, uint32_t timeout_ms, const struct em_inst_uffd_cb *cb,
		 struct em_err *err)
{
	uint64_t t0 = em_now_ns(), deadline = t0 + (uint64_t)timeout_ms * 1000000ull;
	struct ember_frame_hdr h;
	cleanup_free char *payload = NULL;
	char why[256];
	enum wait_res w;
	int ret;

	ret = em_sandbox_go(&in->sb, err);
	if (ret == 0)
		ret = em_sandbox_wait_exec(&in->sb, err);
	if (ret < 0) {
		kill_now(in);
		reap(in, true);
		return em_err_prefix(err, "start instance %s: ", in->name);
	}
	in->state = EM_INST_READY;
	uint64_t t_exec = em_now_ns();
	w = W_FRAME;
	if (cb) {
		struct em_err cerr = { 0 };
		int uffd = -1;
		bool got;

		w = read_uffd_frame(in, &uffd, &got, deadline);
		if (w == W_FRAME && got) {
			/* the host's part of a lazy restore, then the restorer may go on */
			int32_t status = 0;
			struct ember_frame_hdr rh = { .magic = EMBER_PROTO_MAGIC,
						      .version = EMBER_PROTO_VERSION,
						      .type = EMBER_SNAPSHOT_UFFD,
						      .len = sizeof(status) };
			struct iovec iov[2] = { { &rh, sizeof(rh) }, { &status, sizeof(status) } };

			ret = cb->fn(cb->arg, uffd, &cerr);
			close(uffd);
			status = ret < 0 ? (int32_t)cerr.code : 0;
			em_debug(in->hlog, "instance %s: userfaultfd after %.3f ms, %s", in->name,
				 (double)(em_now_ns() - t0) / 1e6, ret < 0 ? cerr.msg : "served");
			if (write_all(in, iov, 2, deadline) != W_FRAME && ret == 0)
				w = W_DIED;
			if (ret < 0) {
				kill_now(in);
				reap(in, true);
				*err = cerr;
				return ret;
			}
		}
	}
	if (w == W_FRAME)
		w = read_frame(in, &h, &payload, deadline);
	if (w == W_FRAME && h.type == EMBER_READY && cb &&
	    !strstr(payload, "\"restored\":true")) {
		kill_now(in);
		reap(in, true);
		return em_err_msg(err, EPROTO, "the restored process sent READY without "
				  "\"restored\":true: it did not resume from its image");
	}
	if (w == W_FRAME && h.type == EMBER_READY) {
		in->init_ns = em_now_ns() - t0;
		em_debug(in->hlog, "instance %s: exec after %.3f ms, READY after %.3f ms", in->name,
			 (double)(t_exec - t0) / 1e6, (double)in->init_ns / 1e6);
		return 0;
	}
	if (w == W_FRAME && h.type == EMBER_INIT_ERROR) {
		error_text(payload, why, sizeof(why));
		kill_now(in);
		reap(in, true);
		return em_err_msg(err, ECANCELED, "init failed: %s", why);
	}
	if (w == W_TIMEOUT) {
		kill_now(in);
		reap(in, true);
		return em_err_msg(err, ETIMEDOUT, "init timed out after %u ms", timeout_ms);
	}
	if (w == W_FRAME || w == W_BAD) {
		in->end = EM_INST_PROTOCOL;
		kill_now(in);
		reap(in, true);
		return em_err_msg(err, EPROTO, "the instance sent %s instead of READY",
				  w == W_BAD ? "a malformed frame" : "an unexpected frame");
	}
	/* died during init */
	reap(in, false);
	em_inst_describe_end(in, why, sizeof(why));
	return em_err_msg(err, ECHILD, "the function %s during init", why);
}

int em_inst_start(struct em_inst *in, uint32_t timeout_ms, struct em_err *err)
{
	return start(in, timeout_ms, NULL, err);
}

int em_inst_start_restored(struct em_inst *in, uint32_t timeout_ms,
			   const struct em_inst_uffd_cb *cb, struct em_err *err)
{
	return start(in, timeout_ms, cb, err);
}

/* ------------------------------------------------------------------ snapshots */

int em_inst_snapshot_state(struct em_inst *in, uint64_t id, uint32_t timeout_ms, char **payload,
			   size_t *len, struct em_err *err)
{
	uint64_t deadline = em_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct ember_frame_hdr h = { .magic = EMBER_PROTO_MAGIC, .version = EMBER_PROTO_VERSION,
				     .type = EMBER_SNAPSHOT, .id = id };
	struct iovec iov = { &h, sizeof(h) };
	enum wait_res w = write_all(in, &iov, 1, deadline);

	*payload = NULL;
	*len = 0;
	if (w == W_FRAME)
		w = read_frame(in, &h, payload, deadline);
	if (w == W_FRAME && (h.type != EMBER_SNAPSHOT_STATE || h.id != id)) {
		free(*payload);
		*payload = NULL;
		return em_err_msg(err, EPROTO, "instance %s answered SNAPSHOT with frame type %u "
				  "(id %llu) instead of SNAPSHOT_STATE", in->name, h.type,
				  (unsigned long long)h.id);
	}
	if (w == W_TIMEOUT)
		return em_err_msg(err, ETIMEDOUT, "instance %s: no SNAPSHOT_STATE within %u ms",
				  in->name, timeout_ms);
	if (w != W_FRAME)
		return em_err_msg(err, EPIPE, "instance %s: the channel ended during SNAPSHOT",
				  in->name);
	*len = h.len;
	return 0;
}

int em_inst_snapshot_done(struct em_inst *in, uint64_t id, int32_t status, uint32_t timeout_ms,
			  struct em_err *err)
{
	uint64_t deadline = em_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct ember_frame_hdr h = { .magic = EMBER_PROTO_MAGIC, .version = EMBER_PROTO_VERSION,
				     .type = EMBER_SNAPSHOT_DONE, .id = id, .len = sizeof(status) };
	struct iovec iov[2] = { { &h, sizeof(h) }, { &status, sizeof(status) } };

	if (write_all(in, iov, 2, deadline) != W_FRAME)
		return em_err_msg(err, EPIPE, "instance %s: the channel ended before SNAPSHOT_DONE",
				  in->name);
	return 0;
}

/* ------------------------------------------------------------------ forked instances */

/* Send the FORK payload with the slot's fds (one sendmsg: they ride on its first byte). */
static enum wait_res send_fork(struct em_inst *tmpl, const unsigned char *buf, size_t len,
			       const int *fds, int nfds, uint64_t deadline_ns)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * EMBER_FORK_NFDS)];
	} cm;
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
			    .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	ssize_t n;

	memset(cm.b, 0, sizeof(cm.b));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	for (;;) {
		n = sendmsg(tmpl->chan, &m, MSG_NOSIGNAL);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return W_DIED;
		enum wait_res w = wait_io(tmpl, true, deadline_ns);
		if (w != W_FRAME)
			return w;
	}
	if ((size_t)n == len)
		return W_FRAME;
	struct iovec rest = { (void *)(buf + n), len - (size_t)n };
	return write_all(tmpl, &rest, 1, deadline_ns);
}

/* The first header from a forked instance, and the pidfd the kernel attached to it. */
static enum wait_res read_ready_header(struct em_inst *in, struct ember_frame_hdr *h, int *pidfd,
				       uint64_t deadline_ns)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int)) * 2];
	} cm;
	struct iovec iov = { h, sizeof(*h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
			    .msg_controllen = sizeof(cm.b) };
	ssize_t n;

	*pidfd = -1;
	for (;;) {
		n = recvmsg(in->chan, &m, MSG_CMSG_CLOEXEC);
		if (n > 0)
			break;
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			return W_DIED;
		if (errno == EAGAIN) {
			enum wait_res w = wait_io(in, false, deadline_ns);
			if (w != W_FRAME)
				return w;
		}
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_PIDFD)
			memcpy(pidfd, CMSG_DATA(c), sizeof(int));
		else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			return W_BAD; /* an instance sends no fds */
	if ((size_t)n < sizeof(*h))
		return read_full(in, (char *)h + n, sizeof(*h) - (size_t)n, deadline_ns);
	return W_FRAME;
}

/* The pid (in our namespace) a pidfd refers to. */
static pid_t pidfd_pid(int pidfd)
{
	char path[64], line[128];
	FILE *f;
	pid_t pid = -1;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Pid: %d", &pid) == 1)
			break;
	fclose(f);
	return pid;
}

int em_inst_start_forked(struct em_inst *in, struct em_inst *tmpl, void *tmpl_lock,
			 const struct ember_fork_req *req, const char *paths, uint32_t timeout_ms,
			 struct em_err *err)
{
	uint64_t t0 = em_now_ns(), deadline = t0 + (uint64_t)timeout_ms * 1000000ull;
	uint64_t id = in->seq; /* host-wide unique: FORKED must echo it */
	size_t plen = req->paths_len, len = sizeof(*req) + plen;
	cleanup_free unsigned char *buf = malloc(len);
	cleanup_free char *payload = NULL;
	int fds[EMBER_FORK_NFDS], nfds = 3, cgfd = -1, pidfd = -1;
	struct ember_frame_hdr h = { .magic = EMBER_PROTO_MAGIC, .version = EMBER_PROTO_VERSION,
				     .type = EMBER_FORK, .id = id, .len = len };
	struct iovec iov = { &h, sizeof(h) };
	char why[256];
	enum wait_res w;
	int ret = 0;

	if (!buf)
		return em_err_set(err, ENOMEM, "fork instance %s", in->name);
	/* the wire is little-endian; so is every machine ember builds for (x86-64, arm64) */
	memcpy(buf, req, sizeof(*req));
	memcpy(buf + sizeof(*req), paths, plen);
	cgfd = em_cg_clone_fd(in->cg, NULL);
	fds[EMBER_FORK_FD_CHANNEL] = in->fork_fds[0];
	fds[EMBER_FORK_FD_LOG] = in->fork_fds[1];
	fds[EMBER_FORK_FD_NETNS] = in->ns->fd;
	if (cgfd >= 0) {
		fds[EMBER_FORK_FD_CGROUP] = cgfd;
		nfds = 4;
	}

	pthread_mutex_lock(tmpl_lock);
	w = tmpl->state == EM_INST_READY ? write_all(tmpl, &iov, 1, deadline) : W_DIED;
	if (w == W_FRAME)
		w = send_fork(tmpl, buf, len, fds, nfds, deadline);
	if (w == W_FRAME) {
		w = read_frame(tmpl, &h, &payload, deadline);
		if (w == W_FRAME && (h.type != EMBER_FORKED || h.id != id || h.len < 4))
			w = W_BAD;
	}
	pthread_mutex_unlock(tmpl_lock);
	uint64_t t_forked = em_now_ns();
	if (cgfd >= 0)
		close(cgfd);
	for (int i = 0; i < 2; i++) {
		close(in->fork_fds[i]);
		in->fork_fds[i] = -1;
	}
	if (w != W_FRAME)
		return em_err_msg(err, ENOTCONN, "fork instance %s: the template %s", in->name,
				  w == W_TIMEOUT ? "did not answer in time" :
				  w == W_BAD ? "broke the protocol" : "is gone");
	int32_t e;
	memcpy(&e, payload, sizeof(e));
	if (e != 0)
		return em_err_msg(err, e > 0 ? e : EIO, "fork instance %s: the template could not "
				  "fork: %.*s", in->name, (int)(h.len - 4), payload + 4);
	free(payload);
	payload = NULL;

	/* the child: READY (or INIT_ERROR if its set-up or after_fork failed) */
	w = read_ready_header(in, &h, &pidfd, deadline);
	if (w == W_FRAME && (h.magic != EMBER_PROTO_MAGIC || h.version != EMBER_PROTO_VERSION ||
			     h.len > 4096))
		w = W_BAD;
	if (w == W_FRAME && (payload = malloc(h.len + 1)) == NULL)
		w = W_BAD;
	if (w == W_FRAME) {
		w = read_full(in, payload, h.len, deadline);
		if (w == W_FRAME)
			payload[h.len] = '\0';
	}
	if (pidfd >= 0) {
		in->pidfd = pidfd;
		in->pid = pidfd_pid(pidfd);
	}
	if (w == W_FRAME && in->pid <= 0)
		w = W_BAD;
	if (w != W_FRAME || h.type != EMBER_READY) {
		if (w == W_FRAME && h.type == EMBER_INIT_ERROR) {
			error_text(payload, why, sizeof(why));
			ret = em_err_msg(err, ECANCELED, "forked instance %s: %s", in->name, why);
		} else {
			ret = em_err_msg(err, w == W_TIMEOUT ? ETIMEDOUT : EPROTO,
					 "forked instance %s: %s", in->name,
					 w == W_TIMEOUT ? "no READY in time" :
					 w == W_DIED ? "ended before READY" : "bad READY");
		}
		in->state = EM_INST_READY; /* a process exists (or did): kill and reap it */
		kill_now(in);
		if (in->pid > 0)
			reap(in, true);
		return ret;
	}
	in->state = EM_INST_READY;
	uint64_t t_ready = em_now_ns();
	/* hybrid: CLONE_INTO_CGROUP placed it in the unified hierarchy only (billing is right from
	 * its first instruction); the v1 controllers see it from here, before it runs the function */
	if (em_cg_needs_attach(in->cg) && (ret = em_cg_attach(in->cg, in->pid, err)) < 0) {
		kill_now(in);
		reap(in, true);
		return em_err_prefix(err, "forked instance %s: ", in->name);
	}
	in->init_ns = em_now_ns() - t0;
	em_debug(in->hlog, "instance %s: forked, READY after %.3f ms (FORKED %.3f, READY %.3f, "
		 "v1 attach %.3f)", in->name, (double)in->init_ns / 1e6,
		 (double)(t_forked - t0) / 1e6, (double)(t_ready - t_forked) / 1e6,
		 (double)(em_now_ns() - t_ready) / 1e6);
	return 0;
}

int em_inst_invoke(struct em_inst *in, uint64_t id, const char *meta, const void *body, size_t len,
		   uint64_t deadline_ns, struct em_inst_reply *r, struct em_err *err)
{
	uint32_t mlen = (uint32_t)strlen(meta);
	struct ember_frame_hdr h = {
		.magic = EMBER_PROTO_MAGIC, .version = EMBER_PROTO_VERSION, .type = EMBER_INVOKE,
		.id = id, .len = sizeof(mlen) + mlen + len,
	};
	struct iovec iov[4] = {
		{ &h, sizeof(h) }, { &mlen, sizeof(mlen) }, { (void *)meta, mlen },
		{ (void *)body, len },
	};
	char *payload = NULL;
	enum wait_res w;

	(void)err;
	memset(r, 0, sizeof(*r));
	w = write_all(in, iov, len ? 4 : 3, deadline_ns);
	if (w == W_FRAME)
		w = read_frame(in, &h, &payload, deadline_ns);
	if (w == W_FRAME && h.id == id && (h.type == EMBER_RESULT || h.type == EMBER_ERROR)) {
		/* the SDK flushed stdout/stderr before answering: the pipe holds all of it */
		drain_log(in);
		r->outcome = h.type == EMBER_RESULT ? EM_OUT_OK : EM_OUT_ERROR;
		r->body = payload;
		r->len = h.len;
		in->invocations++;
		in->last_used_ns = em_now_ns();
		return 0;
	}
	free(payload);
	if (w == W_TIMEOUT) {
		r->outcome = EM_OUT_TIMEOUT;
		kill_now(in);
		reap(in, true);
		return 0;
	}
	if (w == W_FRAME || w == W_BAD) {
		in->end = EM_INST_PROTOCOL;
		kill_now(in);
		reap(in, true);
	} else {
		/* the channel broke or the process ended: whatever is left of it goes */
		kill_now(in);
		reap(in, false);
	}
	drain_log(in);
	r->outcome = EM_OUT_DIED;
	return 0;
}

int em_inst_freeze(struct em_inst *in, struct em_err *err)
{
	int ret = em_cg_freeze(in->cg, err);

	if (ret == 0)
		in->frozen = true;
	return ret;
}

int em_inst_thaw(struct em_inst *in, struct em_err *err)
{
	int ret = em_cg_thaw(in->cg, err);

	if (ret == 0)
		in->frozen = false;
	return ret;
}

void em_inst_destroy(struct em_inst *in)
{
	struct em_err err = { 0 };

	if (!in)
		return;
	em_sandbox_release(&in->sb);
	if (in->pid > 0) {
		kill_now(in);
		reap(in, true);
	}
	if (in->bill && in->cgid)
		em_bill_untrack(in->bill, in->cgid, NULL);
	if (in->cg) {
		if (em_cg_destroy(in->cg, true, &err) < 0) {
			em_warn(in->hlog, "instance %s: %s", in->name, err.msg);
			em_cg_close(in->cg);
		}
	}
	if (in->ns)
		em_netns_release(in->ns);
	if (in->pidfd >= 0)
		close(in->pidfd);
	if (in->chan >= 0)
		close(in->chan);
	if (in->logfd >= 0)
		close(in->logfd);
	for (int i = 0; i < 2; i++)
		if (in->fork_fds[i] >= 0)
			close(in->fork_fds[i]);
	free(in->log);
	if (in->release)
		in->release(in->release_arg);
	free(in);
}
