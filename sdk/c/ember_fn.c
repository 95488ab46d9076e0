/* sdk/c/ember_fn.c — the instance side of ember's protocol (sdk/PROTOCOL.md) for C functions:
 * the channel's frames, the INVOKE metadata (a minimal JSON reader for the few keys we need, so
 * the SDK depends on libc alone), the invocation loop with its ready point, and the one-shot mode.
 *
 * This runs inside a function instance, not in the host: it is the process's main loop, so it may
 * end the process (ember_fn_main returns the exit status) and keeps its few pieces of state (the
 * init error, the reusable buffers) per process. */
#include "ember_fn.h"
#include "ember_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Buffers up to this size are kept between invocations (most requests are small and their pages
 * stay faulted in); a larger one is freed after its invocation, so an idle instance, frozen or
 * forked at the ready point, does not carry a stale multi-megabyte body. */
#define KEEP_BUF_MAX (1u << 20)

/* ---- growable byte buffer */

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t more)
{
	size_t need, cap;
	char *p;

	if (more > EMBER_PROTO_MAX_PAYLOAD || b->len > EMBER_PROTO_MAX_PAYLOAD - more) {
		errno = E2BIG;
		return -1;
	}
	need = b->len + more + 1; /* room for a terminating NUL */
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -1; /* errno = ENOMEM */
	b->p = p;
	b->cap = cap;
	return 0;
}

static int buf_add(struct buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) < 0)
		return -1;
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

static int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return -1;
	if (buf_reserve(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

static int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	*b = (struct buf){ 0 };
}

/* Empty the buffer for the next use; give its memory back if it grew large. */
static void buf_recycle(struct buf *b)
{
	if (b->cap > KEEP_BUF_MAX)
		buf_free(b);
	b->len = 0;
}

static char *vformat(const char *fmt, va_list ap)
{
	struct buf b = { 0 };

	if (buf_vprintf(&b, fmt, ap) < 0 || buf_add(&b, "", 0) < 0) {
		buf_free(&b);
		return NULL;
	}
	return b.p;
}

/* ---- JSON out: strings escaped, and invalid UTF-8 replaced by U+FFFD (the host's JSON parser
 * refuses invalid UTF-8, and an error message may quote any bytes) */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and code points past U+10FFFF are not UTF-8 */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static int json_add_str(struct buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);

	if (buf_add(b, "\"", 1) < 0)
		return -1;
	while (n) {
		size_t k = utf8_seq(s, n);
		int r;

		if (k == 0) {
			r = buf_add(b, "\\ufffd", 6);
			k = 1;
		} else if (*s == '"' || *s == '\\') {
			char esc[2] = { '\\', (char)*s };
			r = buf_add(b, esc, 2);
		} else if (*s == '\n') {
			r = buf_add(b, "\\n", 2);
		} else if (*s == '\t') {
			r = buf_add(b, "\\t", 2);
		} else if (*s < 0x20 || *s == 0x7f) {
			r = buf_printf(b, "\\u%04x", *s);
		} else {
			r = buf_add(b, s, k);
		}
		if (r < 0)
			return -1;
		s += k;
		n -= k;
	}
	return buf_add(b, "\"", 1);
}

/* {"errorType": type, "errorMessage": msg} into b (emptied first). */
static int error_json(struct buf *b, const char *type, const char *msg)
{
	b->len = 0;
	if (buf_add(b, "{\"errorType\":", 13) < 0 || json_add_str(b, type) < 0 ||
	    buf_add(b, ",\"errorMessage\":", 16) < 0 || json_add_str(b, msg) < 0 ||
	    buf_add(b, "}", 1) < 0)
		return -1;
	return 0;
}

/* ---- JSON in: the INVOKE metadata. An object whose keys we pick; any other value is skipped
 * (validated, not kept). Strict JSON: the host writes it with a JSON library. */

struct meta {
	char *request_id;
	char *function;
	uint32_t version;
	uint32_t memory_mb;
	int64_t deadline_ms;
};

static void meta_free(struct meta *m)
{
	free(m->request_id);
	free(m->function);
	*m = (struct meta){ 0 };
}

struct jr {
	const char *p, *end;
	int depth;
};

#define JSON_MAX_DEPTH 64

static void jr_ws(struct jr *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool jr_lit(struct jr *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n))
		return false;
	j->p += n;
	return true;
}

static int hex4(const char *p, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static int add_utf8(struct buf *b, uint32_t cp)
{
	unsigned char u[4];
	size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
	static const unsigned char lead[5] = { 0, 0x00, 0xc0, 0xe0, 0xf0 };

	for (size_t i = n - 1; i > 0; i--, cp >>= 6)
		u[i] = (unsigned char)(0x80 | (cp & 0x3f));
	u[0] = (unsigned char)(lead[n] | cp);
	return buf_add(b, u, n);
}

/* A string at j->p (on its opening quote). out: the decoded string (malloc'd), or NULL to skip. */
static int jr_string(struct jr *j, char **out)
{
	struct buf b = { 0 };

	if (j->p >= j->end || *j->p != '"')
		return -1;
	j->p++;
	while (j->p < j->end && *j->p != '"') {
		unsigned char c = (unsigned char)*j->p;
		const char *run = j->p;
		int r = 0;

		if (c < 0x20)
			goto bad;
		if (c != '\\') {
			while (j->p < j->end && *j->p != '"' && *j->p != '\\' &&
			       (unsigned char)*j->p >= 0x20)
				j->p++;
			if (out && buf_add(&b, run, (size_t)(j->p - run)) < 0)
				goto bad;
			continue;
		}
		if (j->end - j->p < 2)
			goto bad;
		char e = j->p[1];
		j->p += 2;
		if (e == 'u') {
			uint32_t cp, lo;

			if (j->end - j->p < 4 || hex4(j->p, &cp) < 0)
				goto bad;
			j->p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && j->end - j->p >= 6 && j->p[0] == '\\' &&
			    j->p[1] == 'u' && hex4(j->p + 2, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				j->p += 6;
			} else if (cp >= 0xd800 && cp <= 0xdfff) {
				cp = 0xfffd; /* a lone surrogate */
			}
			if (out)
				r = add_utf8(&b, cp);
		} else {
			const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
			const char *k = strchr(from, e);

			if (!e || !k)
				goto bad;
			if (out)
				r = buf_add(&b, &to[k - from], 1);
		}
		if (r < 0)
			goto bad;
	}
	if (j->p >= j->end)
		goto bad;
	j->p++;
	if (out) {
		if (buf_add(&b, "", 0) < 0)
			goto bad;
		*out = b.p;
	}
	return 0;
bad:
	buf_free(&b);
	return -1;
}

/* A number; *out gets its integer part (clamped to int64). */
static int jr_number(struct jr *j, int64_t *out)
{
	const char *s = j->p;
	char tok[64];
	bool integral = true;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p >= j->end || *j->p < '0' || *j->p > '9')
		return -1;
	while (j->p < j->end && ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || *j->p == 'e' ||
				 *j->p == 'E' || *j->p == '+' || *j->p == '-')) {
		if (*j->p == '.' || *j->p == 'e' || *j->p == 'E')
			integral = false;
		j->p++;
	}
	if ((size_t)(j->p - s) >= sizeof(tok))
		return -1;
	memcpy(tok, s, (size_t)(j->p - s));
	tok[j->p - s] = '\0';
	char *endp;
	errno = 0;
	if (integral) {
		long long v = strtoll(tok, &endp, 10);
		*out = v; /* ERANGE clamps to LLONG_MIN/MAX */
	} else {
		double d = strtod(tok, &endp);
		*out = d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : (int64_t)d;
	}
	return *endp ? -1 : 0;
}

static int jr_value(struct jr *j);

static int jr_container(struct jr *j, char open, char close)
{
	if (++j->depth > JSON_MAX_DEPTH)
		return -1;
	j->p++; /* the opening bracket */
	jr_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		if (open == '{') {
			if (jr_string(j, NULL) < 0)
				return -1;
			jr_ws(j);
			if (j->p >= j->end || *j->p++ != ':')
				return -1;
		}
		if (jr_value(j) < 0)
			return -1;
		jr_ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p == ',') {
			j->p++;
			jr_ws(j);
			continue;
		}
		if (*j->p++ != close)
			return -1;
		j->depth--;
		return 0;
	}
}

/* Skip one value of any type (checking its syntax). */
static int jr_value(struct jr *j)
{
	int64_t n;

	jr_ws(j);
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '"': return jr_string(j, NULL);
	case '{': return jr_container(j, '{', '}');
	case '[': return jr_container(j, '[', ']');
	case 't': return jr_lit(j, "true") ? 0 : -1;
	case 'f': return jr_lit(j, "false") ? 0 : -1;
	case 'n': return jr_lit(j, "null") ? 0 : -1;
	default: return jr_number(j, &n);
	}
}

/* A key we keep: a string (or null: left unset) into *s. */
static int jr_take_string(struct jr *j, char **s)
{
	if (jr_lit(j, "null"))
		return 0;
	free(*s);
	*s = NULL;
	return jr_string(j, s);
}

/* A key we keep: a number (or null) into *v, clamped to [min, max]. */
static int jr_take_int(struct jr *j, int64_t *v, int64_t min, int64_t max)
{
	if (jr_lit(j, "null"))
		return 0;
	if (jr_number(j, v) < 0)
		return -1;
	*v = *v < min ? min : *v > max ? max : *v;
	return 0;
}

static int parse_meta(const char *p, size_t len, struct meta *m)
{
	struct jr j = { .p = p, .end = p + len };

	*m = (struct meta){ 0 };
	jr_ws(&j);
	if (j.p >= j.end || *j.p != '{')
		return -1;
	j.p++;
	jr_ws(&j);
	if (j.p < j.end && *j.p == '}') {
		j.p++;
		goto done;
	}
	for (;;) {
		char *key = NULL;
		int64_t v;
		int r;

		if (jr_string(&j, &key) < 0)
			goto bad;
		jr_ws(&j);
		if (j.p >= j.end || *j.p++ != ':') {
			free(key);
			goto bad;
		}
		jr_ws(&j);
		if (!strcmp(key, "requestId")) {
			r = jr_take_string(&j, &m->request_id);
		} else if (!strcmp(key, "function")) {
			r = jr_take_string(&j, &m->function);
		} else if (!strcmp(key, "version")) {
			v = m->version;
			r = jr_take_int(&j, &v, 0, UINT32_MAX);
			m->version = (uint32_t)v;
		} else if (!strcmp(key, "memoryMb")) {
			v = m->memory_mb;
			r = jr_take_int(&j, &v, 0, UINT32_MAX);
			m->memory_mb = (uint32_t)v;
		} else if (!strcmp(key, "deadlineMs")) {
			r = jr_take_int(&j, &m->deadline_ms, 0, INT64_MAX);
		} else {
			r = jr_value(&j);
		}
		free(key);
		if (r < 0)
			goto bad;
		jr_ws(&j);
		if (j.p >= j.end)
			goto bad;
		if (*j.p == ',') {
			j.p++;
			jr_ws(&j);
			continue;
		}
		if (*j.p++ != '}')
			goto bad;
		break;
	}
done:
	jr_ws(&j);
	if (j.p != j.end)
		goto bad;
	return 0;
bad:
	meta_free(m);
	return -1;
}

/* ---- the response and errors the function reports */

struct ember_fn_response {
	struct buf out;
	int write_errno;      /* an append failed (ENOMEM, E2BIG) */
	char *err_type;       /* ember_fn_error was called */
	char *err_msg;
};

int ember_fn_write(struct ember_fn_response *resp, const void *data, size_t len)
{
	if (buf_add(&resp->out, data, len) < 0) {
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
	r = buf_vprintf(&resp->out, fmt, ap);
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
	*msg_out = vformat(fmt, ap);
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
	buf_recycle(&resp->out);
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
static int run_init(const struct ember_fn *fn, struct buf *out)
{
	int r;

	if (!fn->init)
		return 0;
	r = fn->init(fn->ctx);
	if (r == 0)
		return 0;
	char dflt[64];
	snprintf(dflt, sizeof(dflt), "init returned %d", r);
	if (error_json(out, init_err.type ? init_err.type : "InitError",
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
		if (error_json(&resp->out, resp->err_type, resp->err_msg ? resp->err_msg : "") < 0)
			resp->write_errno = ENOMEM;
	} else if (resp->write_errno) {
		type = EMBER_ERROR;
	} else if (r != 0) {
		type = EMBER_ERROR;
		snprintf(msg, sizeof(msg), "handler returned %d", r);
		if (error_json(&resp->out, "HandlerError", msg) < 0)
			resp->write_errno = ENOMEM;
	}
	if (resp->write_errno) {
		/* the response could not be built; the error JSON is small enough to fit now that
		 * the large buffer is gone */
		buf_free(&resp->out);
		snprintf(msg, sizeof(msg), "could not build the response: %s",
			 strerror(resp->write_errno));
		if (error_json(&resp->out, "Runtime.ResponseError", msg) < 0)
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

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
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

	put_le(hdr, EMBER_PROTO_MAGIC, 4);
	put_le(hdr + 4, EMBER_PROTO_VERSION, 2);
	put_le(hdr + 6, type, 2);
	put_le(hdr + 8, id, 8);
	put_le(hdr + 16, len, 8);
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
 * buffers freed. The host freezes the instance's cgroup here; a zygote template (a later protocol
 * version: frame types 16-31) will fork new instances from here, and ember_fn.after_fork will run
 * in the child before it reads on. Until then a frame of those types is a protocol error, like
 * any type an instance does not expect. */
static int wait_for_request(struct channel *ch, struct frame *f)
{
	int r = read_header(ch, f);

	if (r != CH_OK)
		return r;
	if (f->type != EMBER_INVOKE) {
		snprintf(ch->why, sizeof(ch->why), "unexpected frame type %u from the host", f->type);
		return CH_ERR;
	}
	return CH_OK;
}

/* Read one INVOKE payload (f->len bytes) into req (+ m holding its metadata). */
static int read_invoke(struct channel *ch, const struct frame *f, struct buf *in,
		       struct ember_fn_request *req, struct meta *m)
{
	size_t got;
	int r;

	if (f->len < 4) {
		snprintf(ch->why, sizeof(ch->why), "INVOKE payload of %llu bytes has no metadata length",
			 (unsigned long long)f->len);
		return CH_ERR;
	}
	in->len = 0;
	if (buf_reserve(in, f->len) < 0) {
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
	if (parse_meta(in->p + 4, meta_len, m) < 0) {
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
	struct buf in = { 0 }, out = { 0 };
	struct frame f;
	int type, so_type, r;
	socklen_t sl = sizeof(so_type);

	ch.is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &so_type, &sl) == 0;
	if (run_init(fn, &out) < 0) {
		fflush(stdout);
		fflush(stderr);
		r = send_frame(&ch, EMBER_INIT_ERROR, 0, out.p, out.len);
		buf_free(&out);
		if (r == CH_ERR)
			protocol_error(&ch);
		return 1;
	}
	fflush(stdout);
	fflush(stderr);
	if (buf_printf(&out, "{\"sdk\":\"c\",\"pid\":%d}", (int)getpid()) < 0)
		out.len = 0; /* the payload may be empty */
	r = send_frame(&ch, EMBER_READY, 0, out.p, out.len);
	buf_free(&out);

	while (r == CH_OK) {
		struct ember_fn_request req = { .ctx = fn->ctx };
		struct meta m;

		r = wait_for_request(&ch, &f);
		if (r != CH_OK)
			break;
		r = read_invoke(&ch, &f, &in, &req, &m);
		if (r != CH_OK)
			break;
		type = run_handler(fn, &req, &resp);
		meta_free(&m);
		buf_recycle(&in);
		r = send_frame(&ch, (uint16_t)type, f.id, resp.out.p, resp.out.len);
		response_reset(&resp);
	}
	buf_free(&in);
	response_reset(&resp);
	buf_free(&resp.out);
	return r == CH_EOF ? 0 : protocol_error(&ch);
}

/* One-shot mode: the body from stdin, the answer on stdout (or the error JSON on stderr). */
static int run_once(int argc, char **argv, const struct ember_fn *fn)
{
	struct ember_fn_response resp = { 0 };
	struct buf in = { 0 }, out = { 0 };
	const char *name = argc > 0 && argv[0] ? argv[0] : "";
	const char *slash = strrchr(name, '/');
	int status = 0;

	if (run_init(fn, &out) < 0) {
		fflush(stdout);
		fprintf(stderr, "%s\n", out.p ? out.p : "");
		buf_free(&out);
		return 1;
	}
	for (;;) {
		ssize_t n;

		if (buf_reserve(&in, 65536) < 0) {
			fprintf(stderr, "ember_fn: request body: %s\n", strerror(errno));
			buf_free(&in);
			return 2;
		}
		n = read(STDIN_FILENO, in.p + in.len, in.cap - in.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "ember_fn: read the request body from stdin: %s\n",
				strerror(errno));
			buf_free(&in);
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
	buf_free(&in);
	response_reset(&resp);
	buf_free(&resp.out);
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
