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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

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

int em_inst_park(const struct em_inst_cfg *cfg, uint64_t seq, struct em_inst **out,
		 struct em_err *err)
{
	struct em_inst *in = calloc(1, sizeof(*in));
	cleanup_close int chan_child = -1, log_child = -1, devnull = -1;
	struct em_plan plan;
	struct em_sandbox_io io;
	struct em_sandbox_hooks hooks = { .attach = attach_cb };
	int sp[2], lp[2], ret;

	if (!in)
		return em_err_set(err, ENOMEM, "instance of %s", cfg->fn);
	memset(&plan, 0, sizeof(plan));
	in->seq = seq;
	in->pid = -1;
	in->pidfd = in->chan = in->logfd = -1;
	in->sb.sync_fd = -1;
	in->memory_mb = cfg->memory_mb;
	in->hlog = cfg->log;
	snprintf(in->name, sizeof(in->name), "i%llu-%s", (unsigned long long)seq, cfg->fn);
	hooks.data = in;

	ret = em_cg_create(cfg->cg_root, in->name, cfg->limits, &in->cg, err);
	if (ret < 0) {
		em_err_prefix(err, "instance %s: ", in->name);
		goto fail;
	}
	in->cgid = em_cg_id(in->cg);
	if (cfg->bill) {
		struct em_rt_bill_paths paths;
		struct em_bill_cg bc;

		em_rt_bill_cg(cfg->cg_root, in->cg, cfg->memory_mb, &paths, &bc);
		ret = em_bill_track(cfg->bill, &bc, err);
		if (ret < 0) {
			em_err_prefix(err, "instance %s: billing: ", in->name);
			goto fail;
		}
		in->bill = cfg->bill;
	}
	ret = em_netns_pool_acquire(cfg->netns, &in->ns, err);
	if (ret < 0) {
		em_err_prefix(err, "instance %s: network namespace: ", in->name);
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		ret = em_err_set(err, errno, "instance %s: channel socketpair", in->name);
		goto fail;
	}
	in->chan = sp[0];
	chan_child = sp[1];
	if (pipe2(lp, O_CLOEXEC) < 0) {
		ret = em_err_set(err, errno, "instance %s: log pipe", in->name);
		goto fail;
	}
	in->logfd = lp[0];
	log_child = lp[1];
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
				     .host_owned = true };
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
	if (set_nonblock(in->chan) < 0 || set_nonblock(in->logfd) < 0) {
		ret = em_err_set(err, errno, "instance %s: non-blocking channel", in->name);
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

/* The process is gone (or must be): reap it and find out how it ended. */
static void reap(struct em_inst *in, bool killed_by_us)
{
	siginfo_t si;
	struct em_cg_stats st;

	if (in->pid <= 0)
		return;
	memset(&si, 0, sizeof(si));
	while (waitid((idtype_t)P_PIDFD, (id_t)in->pidfd, &si, WEXITED) < 0 && errno == EINTR)
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

int em_inst_start(struct em_inst *in, uint32_t timeout_ms, struct em_err *err)
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
	w = read_frame(in, &h, &payload, deadline);
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
	free(in->log);
	free(in);
}
