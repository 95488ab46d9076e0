/* sdk/c/ember_fn.c — the instance side of ember's protocol (sdk/PROTOCOL.md) for C functions:
 * the channel's frames, the invocation loop with its ready point, the response and error API,
 * and the one-shot mode. Buffers and JSON are in fn_json.c.
 *
 * This runs inside a function instance, not in the host: it is the process's main loop, so it may
 * end the process (ember_fn_main returns the exit status) and keeps its few pieces of state (the
 * init error, the reusable buffers) per process. */
#include "ember_fn.h"
#include "ember_proto.h"
#include "ember_wire.h"
#include "ember_snap.h"
#include "ember_zygote.h"
#include "fn_json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---- the response and errors the function reports */

struct ember_fn_response {
	struct emfn_buf out;
	int write_errno;      /* an append failed (ENOMEM, E2BIG) */
	char *err_type;       /* ember_fn_error was called */
	char *err_msg;
};

int ember_fn_write(struct ember_fn_response *resp, const void *data, size_t len)
{
	if (emfn_buf_add(&resp->out, data, len) < 0) {
		if (!resp->write_errno)
			resp->write_errno = errno;
		return -1;
	}
	return 0;
}

int ember_fn_printf(struct ember_fn_response *resp, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = emfn_buf_vprintf(&resp->out, fmt, ap);
	va_end(ap);
	if (r < 0 && !resp->write_errno)
		resp->write_errno = errno ? errno : EINVAL;
	return r;
}

static void set_error(char **type_out, char **msg_out, const char *type, const char *fmt,
		      va_list ap)
{
	free(*type_out);
	free(*msg_out);
	*type_out = strdup(type && *type ? type : "Error");
	*msg_out = emfn_vformat(fmt, ap);
}

int ember_fn_error(struct ember_fn_response *resp, const char *type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_error(&resp->err_type, &resp->err_msg, type, fmt, ap);
	va_end(ap);
	/* the failure must stick even if the message could not be allocated */
	if (!resp->err_type)
		resp->err_type = strdup("Error");
	if (!resp->err_type)
		resp->write_errno = ENOMEM;
	return -1;
}

static void response_reset(struct ember_fn_response *resp)
{
	emfn_buf_recycle(&resp->out);
	resp->write_errno = 0;
	free(resp->err_type);
	free(resp->err_msg);
	resp->err_type = resp->err_msg = NULL;
}

/* The init's failure (one per process: init runs once). */
static struct {
	char *type, *msg;
} init_err;

int ember_fn_init_error(const char *type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_error(&init_err.type, &init_err.msg, type, fmt, ap);
	va_end(ap);
	return -1;
}

int64_t ember_fn_remaining_ms(const struct ember_fn_request *req)
{
	struct timespec now;

	if (!req->deadline_ms)
		return INT64_MAX;
	clock_gettime(CLOCK_REALTIME, &now);
	return req->deadline_ms - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
}

/* Run init; on failure fill out with the INIT_ERROR JSON. */
static int run_init(const struct ember_fn *fn, struct emfn_buf *out)
{
	int r;

	if (!fn->init)
		return 0;
	r = fn->init(fn->ctx);
	if (r == 0)
		return 0;
	char dflt[64];
	snprintf(dflt, sizeof(dflt), "init returned %d", r);
	if (emfn_error_json(out, init_err.type ? init_err.type : "InitError",
		       init_err.msg ? init_err.msg : dflt) < 0)
		out->len = 0;
	return -1;
}

/* Call the handler; on success out holds the body (RESULT), on failure the error JSON (ERROR).
 * Returns the frame type to answer with. stdout and stderr are flushed before this returns: what
 * the handler printed reaches the host before the answer does (PROTOCOL.md, "The channel"). */
static int run_handler(const struct ember_fn *fn, const struct ember_fn_request *req,
		       struct ember_fn_response *resp)
{
	char msg[128];
	int r = fn->handler(req, resp);
	int type = EMBER_RESULT;

	fflush(stdout);
	fflush(stderr);
	if (resp->err_type) {
		type = EMBER_ERROR;
		if (emfn_error_json(&resp->out, resp->err_type, resp->err_msg ? resp->err_msg : "") < 0)
			resp->write_errno = ENOMEM;
	} else if (resp->write_errno) {
		type = EMBER_ERROR;
	} else if (r != 0) {
		type = EMBER_ERROR;
		snprintf(msg, sizeof(msg), "handler returned %d", r);
		if (emfn_error_json(&resp->out, "HandlerError", msg) < 0)
			resp->write_errno = ENOMEM;
	}
	if (resp->write_errno) {
		/* the response could not be built; the error JSON is small enough to fit now that
		 * the large buffer is gone */
		emfn_buf_free(&resp->out);
		snprintf(msg, sizeof(msg), "could not build the response: %s",
			 strerror(resp->write_errno));
		if (emfn_error_json(&resp->out, "Runtime.ResponseError", msg) < 0)
			resp->out.len = 0;
	}
	return type;
}

/* ---- the channel */

enum { CH_OK = 0, CH_EOF = 1, CH_ERR = -1 };

struct channel {
	int fd;
	bool is_socket;
	char why[160];        /* what went wrong (CH_ERR) */
};

/* Wire integers are little-endian whatever the machine. */
static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Read exactly len bytes. CH_EOF if the channel ended before the first byte (*got = 0) or in the
 * middle (*got = what arrived). A reset connection is the host going away, as EOF is. */
static int read_full(struct channel *ch, void *p, size_t len, size_t *got)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(ch->fd, (char *)p + done, len - done);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		*got = done;
		if (n == 0 || errno == ECONNRESET)
			return CH_EOF;
		snprintf(ch->why, sizeof(ch->why), "read the channel (fd %d): %s", ch->fd,
			 strerror(errno));
		return CH_ERR;
	}
	*got = done;
	return CH_OK;
}

/* Send one frame. A socket gets MSG_NOSIGNAL: a host that went away is an EPIPE here (CH_EOF),
 * not a SIGPIPE that kills the function. */
static int send_frame(struct channel *ch, uint16_t type, uint64_t id, const void *payload,
		      size_t len)
{
	unsigned char hdr[EMBER_PROTO_HDR_LEN];
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = len },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };

	ember_frame_hdr(hdr, type, id, len);
	while (msg.msg_iovlen) {
		ssize_t n = ch->is_socket ? sendmsg(ch->fd, &msg, MSG_NOSIGNAL)
					  : writev(ch->fd, msg.msg_iov, (int)msg.msg_iovlen);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return CH_EOF;
			snprintf(ch->why, sizeof(ch->why), "write the channel (fd %d): %s", ch->fd,
				 strerror(errno));
			return CH_ERR;
		}
		/* advance past what was written (a stream socket may take part of a 6 MB frame) */
		while (msg.msg_iovlen && (size_t)n >= msg.msg_iov->iov_len) {
			n -= (ssize_t)msg.msg_iov->iov_len;
			msg.msg_iov++;
			msg.msg_iovlen--;
		}
		if (msg.msg_iovlen) {
			msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + n;
			msg.msg_iov->iov_len -= (size_t)n;
		}
	}
	return CH_OK;
}

struct frame {
	uint16_t type;
	uint64_t id;
	uint64_t len;
};

/* Read and check one frame header. */
static int read_header(struct channel *ch, struct frame *f)
{
	unsigned char h[EMBER_PROTO_HDR_LEN];
	size_t got;
	int r = read_full(ch, h, sizeof(h), &got);

	if (r == CH_EOF && got) {
		snprintf(ch->why, sizeof(ch->why), "the channel ended inside a frame header");
		return CH_ERR;
	}
	if (r != CH_OK)
		return r;
	uint32_t magic = le32(h);
	uint16_t version = le16(h + 4);
	f->type = le16(h + 6);
	f->id = le64(h + 8);
	f->len = le64(h + 16);
	if (magic != EMBER_PROTO_MAGIC) {
		snprintf(ch->why, sizeof(ch->why), "bad frame magic %#010x", magic);
		return CH_ERR;
	}
	if (version != EMBER_PROTO_VERSION) {
		snprintf(ch->why, sizeof(ch->why), "unsupported protocol version %u", version);
		return CH_ERR;
	}
	if (f->len > EMBER_PROTO_MAX_PAYLOAD) {
		snprintf(ch->why, sizeof(ch->why), "frame of %llu bytes is over the %u byte limit",
			 (unsigned long long)f->len, EMBER_PROTO_MAX_PAYLOAD);
		return CH_ERR;
	}
	return CH_OK;
}

/* THE READY POINT. Between invocations the instance is here and nowhere else: blocked in one
 * read() of the channel, on the only thread, with stdio flushed, the last answer sent and large
 * buffers freed. The host freezes the instance's cgroup here; a template forks new instances from
 * here (EMBER_FORK, ember_zygote.h), and the child goes on from here too, as a new instance; the host
 * dumps a template from here (EMBER_SNAPSHOT, ember_snap.h), and a restored copy resumes here. */
static int wait_for_request(struct channel *ch, struct frame *f)
{
	int r = read_header(ch, f);

	if (r != CH_OK)
		return r;
	if (f->type != EMBER_INVOKE && f->type != EMBER_FORK && f->type != EMBER_SNAPSHOT) {
		snprintf(ch->why, sizeof(ch->why), "unexpected frame type %u from the host", f->type);
		return CH_ERR;
	}
	return CH_OK;
}

/* In a new instance made from a template's memory — forked from it, or restored from its
 * snapshot (`how`: "forked" or "restored", READY's flag): what must differ from its template and
 * its siblings, then READY. libc's rand()/random() state is re-seeded from getrandom (a template
 * that seeded it deterministically would otherwise give every instance the same sequence); the
 * function's own state is its after_fork hook's job, which runs for both. */
static int become_new_instance(const struct ember_fn *fn, struct channel *ch, const char *how)
{
	struct emfn_buf out = { 0 };
	unsigned seed = 0;
	int r;

	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	srand(seed);
	srandom(seed);
	if (fn->after_fork && fn->after_fork(fn->ctx) != 0) {
		if (emfn_buf_printf(&out, "{\"errorType\":\"Function.AfterForkFailed\","
				    "\"errorMessage\":\"after_fork returned non-zero\"}") < 0)
			out.len = 0;
		fflush(stdout);
		fflush(stderr);
		send_frame(ch, EMBER_INIT_ERROR, 0, out.p, out.len);
		_exit(1);
	}
	fflush(stdout);
	fflush(stderr);
	if (emfn_buf_printf(&out, "{\"sdk\":\"c\",\"pid\":%d,\"%s\":true}", (int)getpid(), how) < 0)
		out.len = 0;
	r = send_frame(ch, EMBER_READY, 0, out.p, out.len);
	emfn_buf_free(&out);
	return r;
}

/* Read one INVOKE payload (f->len bytes) into req (+ m holding its metadata). */
static int read_invoke(struct channel *ch, const struct frame *f, struct emfn_buf *in,
		       struct ember_fn_request *req, struct emfn_meta *m)
{
	size_t got;
	int r;

	if (f->len < 4) {
		snprintf(ch->why, sizeof(ch->why), "INVOKE payload of %llu bytes has no metadata length",
			 (unsigned long long)f->len);
		return CH_ERR;
	}
	in->len = 0;
	if (emfn_buf_reserve(in, f->len) < 0) {
		snprintf(ch->why, sizeof(ch->why), "no memory for a %llu byte request",
			 (unsigned long long)f->len);
		return CH_ERR;
	}
	r = read_full(ch, in->p, f->len, &got);
	if (r == CH_EOF) {
		snprintf(ch->why, sizeof(ch->why), "the channel ended inside a frame (%zu of %llu bytes)",
			 got, (unsigned long long)f->len);
		return CH_ERR;
	}
	if (r != CH_OK)
		return r;
	in->len = f->len;
	in->p[in->len] = '\0';
	uint32_t meta_len = le32((const unsigned char *)in->p);
	if (meta_len > f->len - 4) {
		snprintf(ch->why, sizeof(ch->why), "INVOKE metadata length %u exceeds the %llu byte frame",
			 meta_len, (unsigned long long)f->len);
		return CH_ERR;
	}
	if (emfn_parse_meta(in->p + 4, meta_len, m) < 0) {
		snprintf(ch->why, sizeof(ch->why), "INVOKE %llu: metadata is not a JSON object",
			 (unsigned long long)f->id);
		return CH_ERR;
	}
	req->body = in->p + 4 + meta_len;
	req->len = f->len - 4 - meta_len;
	req->id = f->id;
	req->request_id = m->request_id ? m->request_id : "";
	req->function = m->function ? m->function : "";
	req->version = m->version;
	req->memory_mb = m->memory_mb;
	req->deadline_ms = m->deadline_ms;
	return CH_OK;
}

/* EMBER_SNAPSHOT at the ready point: let the host dump this process (ember_snap_handle blocks
 * until it is done), then park again; or, in a process restored from that dump, become a new
 * instance of the template (re-seeded as a fork is) and park as the template it was. */
static int snapshot(const struct ember_fn *fn, struct channel *ch, const struct frame *f)
{
	char why[256];
	int r;

	if (f->len) {
		snprintf(ch->why, sizeof(ch->why), "SNAPSHOT %llu has a %llu byte payload (none expected)",
			 (unsigned long long)f->id, (unsigned long long)f->len);
		return CH_ERR;
	}
	r = ember_snap_handle(ch->fd, f->id, why, sizeof(why));
	if (r == 1)
		return become_new_instance(fn, ch, "restored");
	if (r == 0 && why[0])
		fprintf(stderr, "ember_fn: snapshot refused: %s\n", why);
	if (r == -EPIPE)
		return CH_EOF;
	if (r < 0) {
		snprintf(ch->why, sizeof(ch->why), "snapshot: %s", why);
		return CH_ERR;
	}
	return CH_OK;
}

static int protocol_error(const struct channel *ch)
{
	fprintf(stderr, "ember_fn: protocol error: %s\n", ch->why);
	return 2;
}

/* Instance mode: init, READY, then invocations until the host closes the channel. */
static int run_instance(const struct ember_fn *fn, int fd)
{
	struct channel ch = { .fd = fd };
	struct ember_fn_response resp = { 0 };
	struct emfn_buf in = { 0 }, out = { 0 };
	struct frame f;
	int type, so_type, r;
	socklen_t sl = sizeof(so_type);

	ch.is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &so_type, &sl) == 0;
	if (run_init(fn, &out) < 0) {
		fflush(stdout);
		fflush(stderr);
		r = send_frame(&ch, EMBER_INIT_ERROR, 0, out.p, out.len);
		emfn_buf_free(&out);
		if (r == CH_ERR)
			protocol_error(&ch);
		return 1;
	}
	fflush(stdout);
	fflush(stderr);
	if (getenv("EMBER_TEMPLATE") && !strcmp(getenv("EMBER_TEMPLATE"), "1"))
		ember_zygote_prepare(); /* a template: huge pages make every fork cheaper */
	if (emfn_buf_printf(&out, "{\"sdk\":\"c\",\"pid\":%d}", (int)getpid()) < 0)
		out.len = 0; /* the payload may be empty */
	r = send_frame(&ch, EMBER_READY, 0, out.p, out.len);
	emfn_buf_free(&out);

	while (r == CH_OK) {
		struct ember_fn_request req = { .ctx = fn->ctx };
		struct emfn_meta m;

		r = wait_for_request(&ch, &f);
		if (r != CH_OK)
			break;
		if (f.type == EMBER_FORK) {
			char why[256];
			int pid = ember_zygote_fork(ch.fd, f.id, f.len, why, sizeof(why));

			if (pid == 0)
				r = become_new_instance(fn, &ch, "forked");
			else if (pid < 0 && !why[0])
				r = CH_EOF; /* the host went away mid-request */
			else if (pid < 0)
				fprintf(stderr, "ember_fn: zygote fork failed: %s\n", why);
			continue;
		}
		if (f.type == EMBER_SNAPSHOT) {
			r = snapshot(fn, &ch, &f);
			continue;
		}
		r = read_invoke(&ch, &f, &in, &req, &m);
		if (r != CH_OK)
			break;
		type = run_handler(fn, &req, &resp);
		emfn_meta_free(&m);
		emfn_buf_recycle(&in);
		r = send_frame(&ch, (uint16_t)type, f.id, resp.out.p, resp.out.len);
		response_reset(&resp);
	}
	emfn_buf_free(&in);
	response_reset(&resp);
	emfn_buf_free(&resp.out);
	return r == CH_EOF ? 0 : protocol_error(&ch);
}

/* One-shot mode: the body from stdin, the answer on stdout (or the error JSON on stderr). */
static int run_once(int argc, char **argv, const struct ember_fn *fn)
{
	struct ember_fn_response resp = { 0 };
	struct emfn_buf in = { 0 }, out = { 0 };
	const char *name = argc > 0 && argv[0] ? argv[0] : "";
	const char *slash = strrchr(name, '/');
	int status = 0;

	if (run_init(fn, &out) < 0) {
		fflush(stdout);
		fprintf(stderr, "%s\n", out.p ? out.p : "");
		emfn_buf_free(&out);
		return 1;
	}
	for (;;) {
		ssize_t n;

		if (emfn_buf_reserve(&in, 65536) < 0) {
			fprintf(stderr, "ember_fn: request body: %s\n", strerror(errno));
			emfn_buf_free(&in);
			return 2;
		}
		n = read(STDIN_FILENO, in.p + in.len, in.cap - in.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "ember_fn: read the request body from stdin: %s\n",
				strerror(errno));
			emfn_buf_free(&in);
			return 2;
		}
		if (n == 0)
			break;
		in.len += (size_t)n;
	}
	in.p[in.len] = '\0';

	struct ember_fn_request req = {
		.body = in.p, .len = in.len, .request_id = "oneshot",
		.function = slash ? slash + 1 : name, .ctx = fn->ctx,
	};
	if (run_handler(fn, &req, &resp) == EMBER_RESULT) {
		if (fwrite(resp.out.p, 1, resp.out.len, stdout) != resp.out.len || fflush(stdout)) {
			fprintf(stderr, "ember_fn: write the response to stdout: %s\n", strerror(errno));
			status = 2;
		}
	} else {
		fprintf(stderr, "%s\n", resp.out.p ? resp.out.p : "");
		status = 1;
	}
	emfn_buf_free(&in);
	response_reset(&resp);
	emfn_buf_free(&resp.out);
	return status;
}

int ember_fn_main(int argc, char **argv, const struct ember_fn *fn)
{
	const char *env = getenv(EMBER_CHANNEL_ENV);
	char *end;
	long fd;

	if (!fn || !fn->handler) {
		fprintf(stderr, "ember_fn: no handler\n");
		return 2;
	}
	if (!env)
		return run_once(argc, argv, fn);
	errno = 0;
	fd = strtol(env, &end, 10);
	if (errno || end == env || *end || fd < 0 || fd > INT_MAX ||
	    fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0) {
		fprintf(stderr, "ember_fn: %s=%s is not an open descriptor\n", EMBER_CHANNEL_ENV, env);
		return 2;
	}
	unsetenv(EMBER_CHANNEL_ENV);
	return run_instance(fn, (int)fd);
}
