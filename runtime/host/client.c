/* runtime/host/client.c — see client.h.
 *
 * One buffer holds the response: the header block (status line and header lines, NUL-terminated
 * in place; headers are kept as offsets because the buffer may move when it grows for the body),
 * then the body. A chunked body is decoded in place: chunk data is moved down over the chunk
 * framing, so the buffer never holds more than the body plus one chunk in flight. */
#include "runtime/host/client.h"
#include "common/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_HEADERS 64
#define MAX_HEADER_BLOCK (64 * 1024)
#define MAX_BODY ((size_t)1 << 30)     /* a response this large is a broken server */
#define FIRST_CAP (64 * 1024)

struct hdr {
	uint32_t name, value;           /* offsets into buf */
};

struct em_client {
	int fd;
	struct sockaddr_storage sa;
	socklen_t salen;
	char addr[128];                 /* as given, for messages */
	unsigned timeout_ms;
	unsigned connects;
	unsigned served;                /* responses read on the current connection */

	char *req;                      /* the request line and headers */
	size_t req_cap;

	char *buf;                      /* the response */
	size_t cap, have;
	uint32_t reason;
	struct hdr hdrs[MAX_HEADERS];
	size_t n_hdrs;
	size_t body_off, body_len;
};

/* A transport failure that a reused connection explains (the server closed it while idle):
 * the request is sent again on a new connection. Not an errno value. */
#define RETRYABLE 100000

static int addr_parse(struct em_client *c, const char *addr, struct em_err *err)
{
	if (strchr(addr, '/')) {
		struct sockaddr_un *un = (struct sockaddr_un *)&c->sa;

		if (strlen(addr) >= sizeof(un->sun_path))
			return em_err_msg(err, ENAMETOOLONG, "socket path %s: longer than %zu bytes",
					  addr, sizeof(un->sun_path) - 1);
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, addr);
		c->salen = sizeof(*un);
		return 0;
	}
	const char *colon = strrchr(addr, ':');
	char host[64], *end;
	long port;

	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host))
		return em_err_msg(err, EINVAL, "address %s: expected a socket path or HOST:PORT", addr);
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port <= 0 || port > 65535)
		return em_err_msg(err, EINVAL, "address %s: bad port", addr);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&c->sa;

		host[strlen(host) - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1)
			return em_err_msg(err, EINVAL, "address %s: bad IPv6 address", addr);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		c->salen = sizeof(*in6);
		return 0;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)&c->sa;
	if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
		return em_err_msg(err, EINVAL, "address %s: expected a numeric IP address or localhost",
				  addr);
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	c->salen = sizeof(*in);
	return 0;
}

static void drop_conn(struct em_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->served = 0;
}

/* Blocking I/O with the kernel's timeouts (also honoured by connect): one syscall per read on
 * the fast path, where a non-blocking socket would add a poll. */
static void apply_timeout(struct em_client *c)
{
	struct timeval tv = { .tv_sec = c->timeout_ms / 1000,
			      .tv_usec = (c->timeout_ms % 1000) * 1000 };

	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int do_connect(struct em_client *c, struct em_err *err)
{
	int one = 1;

	drop_conn(c);
	c->fd = socket(c->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return em_err_set(err, errno, "connect to %s: socket", c->addr);
	if (c->timeout_ms)
		apply_timeout(c);
	if (connect(c->fd, (struct sockaddr *)&c->sa, c->salen) < 0) {
		int e = errno == EINPROGRESS || errno == EAGAIN ? ETIMEDOUT : errno;

		drop_conn(c);
		return em_err_set(err, e, "connect to %s", c->addr);
	}
	/* requests are written in one sendmsg: no reason to wait for more (Nagle) */
	if (c->sa.ss_family != AF_UNIX)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->connects++;
	return 0;
}

int em_client_open(const char *addr, struct em_client **out, struct em_err *err)
{
	struct em_client *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return em_err_msg(err, ENOMEM, "client for %s: out of memory", addr);
	c->fd = -1;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	ret = addr_parse(c, addr, err);
	if (ret == 0)
		ret = do_connect(c, err);
	if (ret < 0) {
		em_client_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

void em_client_close(struct em_client *c)
{
	if (!c)
		return;
	drop_conn(c);
	free(c->req);
	free(c->buf);
	free(c);
}

void em_client_set_timeout(struct em_client *c, unsigned ms)
{
	c->timeout_ms = ms;
	if (c->fd >= 0)
		apply_timeout(c);
}

unsigned em_client_connects(const struct em_client *c)
{
	return c->connects;
}

static int grow(struct em_client *c, size_t need, struct em_err *err)
{
	size_t cap = c->cap ? c->cap : FIRST_CAP;
	char *b;

	if (need <= c->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	b = realloc(c->buf, cap);
	if (!b)
		return em_err_msg(err, ENOMEM, "%s: response of %zu bytes: out of memory", c->addr,
				  need);
	c->buf = b;
	c->cap = cap;
	return 0;
}

/* Read more of the response: at least one byte, as much as fits. 0 at the end of the
 * connection, else the byte count or <0. */
static ssize_t read_some(struct em_client *c, struct em_err *err)
{
	ssize_t n;
	int r;

	if (c->have == c->cap && (r = grow(c, c->cap + 1, err)) < 0)
		return r;
	do
		n = read(c->fd, c->buf + c->have, c->cap - c->have);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return em_err_msg(err, ETIMEDOUT, "read the response from %s: no answer within %u ms",
				  c->addr, c->timeout_ms);
	if (n < 0)
		return em_err_set(err, errno, "read the response from %s", c->addr);
	c->have += (size_t)n;
	return n;
}

/* Read until the buffer holds at least `need` bytes. */
static int fill(struct em_client *c, size_t need, struct em_err *err)
{
	int r = grow(c, need + 1, err);

	if (r < 0)
		return r;
	while (c->have < need) {
		ssize_t n = read_some(c, err);

		if (n < 0)
			return (int)n;
		if (n == 0)
			return em_err_msg(err, EPROTO, "%s closed the connection in the middle of a "
					  "response", c->addr);
	}
	return 0;
}

static int send_all(struct em_client *c, struct iovec *iov, int n, struct em_err *err)
{
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };

	while (m.msg_iovlen) {
		ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return em_err_msg(err, ETIMEDOUT, "send the request to %s: stalled for "
						  "%u ms", c->addr, c->timeout_ms);
			if (errno == EPIPE || errno == ECONNRESET)
				return -RETRYABLE;
			return em_err_set(err, errno, "send the request to %s", c->addr);
		}
		while (m.msg_iovlen && (size_t)w >= m.msg_iov->iov_len) {
			w -= (ssize_t)m.msg_iov->iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen) {
			m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + w;
			m.msg_iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static char *trim(char *s, char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	return s;
}

/* Read and parse a header block; 1xx interim responses are skipped. On return the block is
 * buf[0, body_off) and buf[body_off, have) is the first part of the body. */
static int read_head(struct em_client *c, int *status, struct em_err *err)
{
	size_t scanned = 0;
	char *eoh;

	for (;;) {
		eoh = c->have >= 4 ? memmem(c->buf + scanned, c->have - scanned, "\r\n\r\n", 4)
				   : NULL;
		if (eoh)
			break;
		if (c->have >= MAX_HEADER_BLOCK)
			return em_err_msg(err, EPROTO, "%s: response headers longer than %d bytes",
					  c->addr, MAX_HEADER_BLOCK);
		scanned = c->have > 3 ? c->have - 3 : 0;
		ssize_t n = read_some(c, err);

		if (n < 0)
			return n == -ECONNRESET && c->have == 0 ? -RETRYABLE : (int)n;
		if (n == 0)
			return c->have == 0 ? -RETRYABLE
					    : em_err_msg(err, EPROTO, "%s closed the connection in "
							 "the middle of a response", c->addr);
	}
	c->body_off = (size_t)(eoh - c->buf) + 4;
	eoh[2] = '\0';

	/* status line: HTTP/1.x SSS reason */
	char *line = c->buf, *nl = strstr(line, "\r\n");
	*nl = '\0';
	if (strncmp(line, "HTTP/1.", 7) || strlen(line) < 12 || line[8] != ' ' ||
	    line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' ||
	    line[11] < '0' || line[11] > '9' || (line[12] && line[12] != ' '))
		return em_err_msg(err, EPROTO, "%s: not an HTTP/1.x status line: \"%.40s\"", c->addr,
				  line);
	*status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	c->reason = line[12] ? 13 : 12;
	c->n_hdrs = 0;
	for (line = nl + 2; *line; line = nl + 2) {
		nl = strstr(line, "\r\n");
		char *colon = memchr(line, ':', (size_t)(nl - line));

		if (!colon || colon == line || c->n_hdrs == MAX_HEADERS)
			return em_err_msg(err, EPROTO, "%s: bad header line \"%.*s\"%s", c->addr,
					  (int)(nl - line > 40 ? 40 : nl - line), line,
					  colon ? " (too many headers)" : "");
		*colon = '\0';
		c->hdrs[c->n_hdrs].name = (uint32_t)(line - c->buf);
		c->hdrs[c->n_hdrs].value = (uint32_t)(trim(colon + 1, nl) - c->buf);
		c->n_hdrs++;
	}
	return 0;
}

const char *em_client_header(const struct em_client *c, const char *name)
{
	for (size_t i = 0; i < c->n_hdrs; i++)
		if (!strcasecmp(c->buf + c->hdrs[i].name, name))
			return c->buf + c->hdrs[i].value;
	return NULL;
}

size_t em_client_header_count(const struct em_client *c)
{
	return c->n_hdrs;
}

void em_client_header_at(const struct em_client *c, size_t i, const char **name,
			 const char **value)
{
	*name = i < c->n_hdrs ? c->buf + c->hdrs[i].name : NULL;
	*value = i < c->n_hdrs ? c->buf + c->hdrs[i].value : NULL;
}

/* Does a comma-separated header value list contain token? */
static bool has_token(const char *v, const char *token)
{
	size_t n = strlen(token);

	while (v && *v) {
		while (*v == ' ' || *v == ',')
			v++;
		if (!strncasecmp(v, token, n) && (v[n] == '\0' || v[n] == ',' || v[n] == ' '))
			return true;
		v = strchr(v, ',');
	}
	return false;
}

/* Decode a chunked body in place from body_off; leaves body_len. */
static int read_chunked(struct em_client *c, struct em_err *err)
{
	size_t w = c->body_off, r = c->body_off;
	int ret;

	for (;;) {
		char *eol;

		/* the chunk-size line */
		while (!(eol = memmem(c->buf + r, c->have - r, "\r\n", 2))) {
			if (c->have - r > 1024)
				return em_err_msg(err, EPROTO, "%s: chunk size line too long", c->addr);
			if ((ret = fill(c, c->have + 1, err)) < 0)
				return ret;
		}
		char *end;
		unsigned long long size = strtoull(c->buf + r, &end, 16);

		if (end == c->buf + r || (*end != '\r' && *end != ';' && *end != ' ') ||
		    size > MAX_BODY || w - c->body_off + size > MAX_BODY)
			return em_err_msg(err, EPROTO, "%s: bad chunk size \"%.*s\"", c->addr,
					  (int)((eol - (c->buf + r)) > 20 ? 20 : eol - (c->buf + r)),
					  c->buf + r);
		r = (size_t)(eol - c->buf) + 2;
		if (size == 0)
			break;
		/* before the buffer grows for this chunk, drop the framing read so far: it never
		 * holds more than the decoded body and the chunk in flight */
		if (r + size + 2 > c->cap && r > w) {
			memmove(c->buf + w, c->buf + r, c->have - r);
			c->have -= r - w;
			r = w;
		}
		if ((ret = fill(c, r + size + 2, err)) < 0)
			return ret;
		if (memcmp(c->buf + r + size, "\r\n", 2))
			return em_err_msg(err, EPROTO, "%s: chunk of %llu bytes not followed by CRLF",
					  c->addr, size);
		if (r != w)
			memmove(c->buf + w, c->buf + r, size);
		w += size;
		r += size + 2;
	}
	/* trailers (ignored) up to the empty line */
	for (;;) {
		char *eol;

		while (!(eol = memmem(c->buf + r, c->have - r, "\r\n", 2))) {
			if (c->have - r > MAX_HEADER_BLOCK)
				return em_err_msg(err, EPROTO, "%s: trailers too long", c->addr);
			if ((ret = fill(c, c->have + 1, err)) < 0)
				return ret;
		}
		size_t len = (size_t)(eol - (c->buf + r));

		r += len + 2;
		if (len == 0)
			break;
	}
	c->body_len = w - c->body_off;
	return c->have > r ? 1 : 0; /* bytes past the response: the stream cannot be trusted */
}

static int read_body(struct em_client *c, const char *method, int status, bool *close_after,
		     struct em_err *err)
{
	const char *te = em_client_header(c, "Transfer-Encoding");
	const char *cl = em_client_header(c, "Content-Length");
	int ret;

	if (!strcmp(method, "HEAD") || status == 204 || status == 304) {
		c->body_len = 0;
		if (c->have > c->body_off)
			*close_after = true;
		return 0;
	}
	if (te && strcasecmp(te, "identity")) {
		if (!has_token(te, "chunked"))
			return em_err_msg(err, EPROTO, "%s: unsupported Transfer-Encoding \"%s\"",
					  c->addr, te);
		ret = read_chunked(c, err);
		if (ret > 0)
			*close_after = true;
		return ret < 0 ? ret : 0;
	}
	if (cl) {
		char *end;
		unsigned long long n = strtoull(cl, &end, 10);

		if (*end || end == cl || n > MAX_BODY)
			return em_err_msg(err, EPROTO, "%s: bad Content-Length \"%s\"", c->addr, cl);
		if ((ret = fill(c, c->body_off + n, err)) < 0)
			return ret;
		c->body_len = n;
		if (c->have > c->body_off + n)
			*close_after = true;
		return 0;
	}
	/* neither: the body runs to the end of the connection */
	*close_after = true;
	for (;;) {
		ssize_t n = read_some(c, err);

		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		if (c->have - c->body_off > MAX_BODY)
			return em_err_msg(err, EPROTO, "%s: response body over %zu bytes", c->addr,
					  MAX_BODY);
	}
	c->body_len = c->have - c->body_off;
	return grow(c, c->have + 1, err);
}

static int request_once(struct em_client *c, const char *method, const char *path,
			const char *content_type, const void *body, size_t len,
			struct em_client_resp *resp, struct em_err *err)
{
	bool with_len = len || !strcmp(method, "PUT") || !strcmp(method, "POST") ||
			!strcmp(method, "PATCH");
	size_t need = strlen(method) + strlen(path) + (content_type ? strlen(content_type) : 0) + 128;
	int status, n, ret;

	if (c->fd < 0 && (ret = do_connect(c, err)) < 0)
		return ret;
	if (need > c->req_cap) {
		char *r = realloc(c->req, need);

		if (!r)
			return em_err_msg(err, ENOMEM, "request to %s: out of memory", c->addr);
		c->req = r;
		c->req_cap = need;
	}
	n = snprintf(c->req, c->req_cap, "%s %s HTTP/1.1\r\nHost: localhost\r\n%s%s%s", method, path,
		     content_type ? "Content-Type: " : "", content_type ? content_type : "",
		     content_type ? "\r\n" : "");
	if (with_len)
		n += snprintf(c->req + n, c->req_cap - (size_t)n, "Content-Length: %zu\r\n", len);
	n += snprintf(c->req + n, c->req_cap - (size_t)n, "\r\n");

	struct iovec iov[2] = { { c->req, (size_t)n }, { (void *)body, len } };
	ret = send_all(c, iov, len ? 2 : 1, err);
	/* The server may answer before it read the whole body (413) and close: its answer is
	 * still there to read, so a send cut short is reported only if no response follows. */
	bool send_cut = ret == -RETRYABLE;
	if (ret < 0 && !send_cut)
		return ret;

	c->have = 0;
	c->n_hdrs = 0;
	for (;;) {
		ret = read_head(c, &status, err);
		if (ret < 0 || status >= 200)
			break;
		/* 1xx: an interim response, the real one follows */
		memmove(c->buf, c->buf + c->body_off, c->have - c->body_off);
		c->have -= c->body_off;
	}
	if (ret < 0)
		return send_cut && c->have == 0 ? -RETRYABLE : ret;

	const char *conn = em_client_header(c, "Connection");
	bool close_after = send_cut || has_token(conn, "close") ||
			   (c->buf[5] == '1' && c->buf[7] == '0' && !has_token(conn, "keep-alive"));
	ret = read_body(c, method, status, &close_after, err);
	if (ret < 0)
		return ret;
	c->buf[c->body_off + c->body_len] = '\0';
	c->served++;
	if (close_after)
		drop_conn(c);
	resp->status = status;
	resp->reason = c->buf + c->reason;
	resp->body = c->buf + c->body_off;
	resp->len = c->body_len;
	return 0;
}

int em_client_request(struct em_client *c, const char *method, const char *path,
		      const char *content_type, const void *body, size_t len,
		      struct em_client_resp *resp, struct em_err *err)
{
	bool reused = c->fd >= 0 && c->served > 0;
	int ret = request_once(c, method, path, content_type, body, len, resp, err);

	/* Only a reused connection may have been closed by the server while idle, and only when
	 * nothing of a response came back: then the server never saw the request. */
	if (ret == -RETRYABLE && reused) {
		drop_conn(c);
		ret = request_once(c, method, path, content_type, body, len, resp, err);
	}
	if (ret == -RETRYABLE) {
		drop_conn(c);
		return em_err_msg(err, ECONNRESET, "%s %s: %s closed the connection without a response",
				  method, path, c->addr);
	}
	if (ret < 0) {
		drop_conn(c);
		return em_err_prefix(err, "%s %s", method, path);
	}
	return 0;
}
