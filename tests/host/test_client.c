/* tests/host/test_client.c — the API client's HTTP/1.1 framing against a small scripted server
 * in the test (a thread on a unix socket, or TCP loopback): keep-alive reuse of one connection,
 * Content-Length and chunked responses, bodies of megabytes, headers by name, the server closing
 * connections (announced or not), interim and bodiless responses, broken responses, timeouts. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "runtime/host/client.h"

#define MB (1024 * 1024)

/* --- the server: one connection at a time, requests answered by path */

struct srv {
	int lfd;
	bool tcp;
	char path[108];
	unsigned short port;
	pthread_t thread;
	atomic_int accepts, requests;
	atomic_bool stop;
	pthread_mutex_t lock;
	char head[8192];            /* the last request's head and body */
	char *body;
	size_t body_len;
};

static struct srv S;
static char dir[] = "/tmp/ember-test-client-XXXXXX";

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i % 251);
}

static bool is_pattern(const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)b[i] != pattern(i))
			return false;
	return true;
}

static bool write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		c += w;
		n -= (size_t)w;
	}
	return true;
}

static bool say(int fd, const char *s)
{
	return write_all(fd, s, strlen(s));
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Answer one request; false: close the connection. */
static bool answer(int fd, const char *method, const char *path, const char *body, size_t len)
{
	char h[512];

	if (!strcmp(path, "/ok") && !strcmp(method, "HEAD"))
		return say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
	if (!strcmp(path, "/ok"))
		return say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: a\r\n\r\nhello");
	if (!strcmp(path, "/echo")) {
		snprintf(h, sizeof(h), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
		return say(fd, h) && write_all(fd, body, len);
	}
	if (!strcmp(path, "/headers"))
		return say(fd, "HTTP/1.1 201 Created Here\r\nX-One: 1\r\nx-MIXED-case:   padded value  \r\n"
			       "X-Dup: first\r\nX-Dup: second\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n");
	if (!strcmp(path, "/chunked"))
		/* lower-case hex, a chunk extension, a trailer */
		return say(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-After: yes\r\n\r\n"
			       "5\r\nhello\r\n1;ext=1\r\n,\r\nA \r\n wide worl\r\n1\r\nd\r\n"
			       "0\r\nX-Trailer: t\r\n\r\n");
	if (!strncmp(path, "/big-chunked/", 13) || !strncmp(path, "/big/", 5)) {
		bool chunked = path[4] == '-';
		size_t n = strtoull(strrchr(path, '/') + 1, NULL, 10), off = 0, step = 1;
		char *b = malloc(n);

		for (size_t i = 0; i < n; i++)
			b[i] = (char)pattern(i);
		snprintf(h, sizeof(h), chunked ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
					       : "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
		bool ok = say(fd, h);
		if (!chunked)
			ok = ok && write_all(fd, b, n);
		/* chunks of growing, uneven sizes: 1, 4, 13, ... bytes up to ~300 KB */
		while (chunked && ok && off < n) {
			size_t c = step < n - off ? step : n - off;

			snprintf(h, sizeof(h), "%zx\r\n", c);
			ok = say(fd, h) && write_all(fd, b + off, c) && say(fd, "\r\n");
			off += c;
			step = step * 3 + 1 > 300000 ? 1 : step * 3 + 1;
		}
		if (chunked && ok)
			ok = say(fd, "0\r\n\r\n");
		free(b);
		return ok;
	}
	if (!strcmp(path, "/close")) {
		say(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nby");
		return false;
	}
	if (!strcmp(path, "/silent-close")) {
		/* answered, then closed without saying so: as a server's idle timeout does later */
		say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
		return false;
	}
	if (!strcmp(path, "/no-answer"))
		return false;
	if (!strcmp(path, "/eof")) {
		say(fd, "HTTP/1.1 200 OK\r\n\r\nuntil the end");
		return false;
	}
	if (!strcmp(path, "/http10")) {
		say(fd, "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold");
		return false;
	}
	if (!strcmp(path, "/204"))
		return say(fd, "HTTP/1.1 204 No Content\r\nX-Z: z\r\n\r\n");
	if (!strcmp(path, "/continue"))
		return say(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"
			       "real");
	if (!strcmp(path, "/trickle")) {
		const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";

		for (const char *p = r; *p; p++) {
			if (!write_all(fd, p, 1))
				return false;
			if (p - r < 20 || p[1] == '\0')
				sleep_ms(1);
		}
		return true;
	}
	if (!strcmp(path, "/garbage"))
		return say(fd, "SMTP/1.0 220 hello\r\n\r\n");
	if (!strcmp(path, "/short")) {
		say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
		return false;
	}
	if (!strcmp(path, "/bad-chunk"))
		return say(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n");
	if (!strcmp(path, "/hang")) {
		sleep_ms(1500);
		return say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	}
	return say(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
}

/* Read and answer requests on one connection until either side closes it. */
static void serve_conn(int fd)
{
	size_t cap = 65536, have = 0;
	char *buf = malloc(cap);

	for (;;) {
		char *eoh;

		while (!(eoh = memmem(buf, have, "\r\n\r\n", 4))) {
			if (have == cap)
				buf = realloc(buf, cap *= 2);
			ssize_t n = read(fd, buf + have, cap - have);

			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		size_t hlen = (size_t)(eoh - buf) + 4, len = 0;
		char *cl = memmem(buf, hlen, "Content-Length: ", 16);

		if (cl)
			len = strtoull(cl + 16, NULL, 10);
		while (have < hlen + len) {
			if (hlen + len > cap)
				buf = realloc(buf, cap = hlen + len);
			ssize_t n = read(fd, buf + have, cap - have);

			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		char method[16] = "", path[256] = "";
		sscanf(buf, "%15s %255s", method, path);
		if (strchr(path, '?'))
			*strchr(path, '?') = '\0';
		pthread_mutex_lock(&S.lock);
		snprintf(S.head, sizeof(S.head), "%.*s", (int)hlen, buf);
		free(S.body);
		S.body = malloc(len + 1);
		memcpy(S.body, buf + hlen, len);
		S.body_len = len;
		pthread_mutex_unlock(&S.lock);
		S.requests++;
		bool keep = answer(fd, method, path, buf + hlen, len);
		memmove(buf, buf + hlen + len, have - hlen - len);
		have -= hlen + len;
		if (!keep)
			break;
	}
out:
	free(buf);
	close(fd);
}

static void *server(void *arg)
{
	(void)arg;
	while (!S.stop) {
		int fd = accept(S.lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		S.accepts++;
		serve_conn(fd);
	}
	return NULL;
}

static void start_server(bool tcp)
{
	S.tcp = tcp;
	S.lfd = socket(tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(S.lfd, 0);
	if (tcp) {
		struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t l = sizeof(in);

		cr_assert_eq(bind(S.lfd, (struct sockaddr *)&in, sizeof(in)), 0, "%s", strerror(errno));
		cr_assert_eq(getsockname(S.lfd, (struct sockaddr *)&in, &l), 0);
		S.port = ntohs(in.sin_port);
	} else {
		struct sockaddr_un un = { .sun_family = AF_UNIX };

		snprintf(S.path, sizeof(S.path), "%s/api.sock", dir);
		strcpy(un.sun_path, S.path);
		cr_assert_eq(bind(S.lfd, (struct sockaddr *)&un, sizeof(un)), 0, "%s", strerror(errno));
	}
	cr_assert_eq(listen(S.lfd, 16), 0);
	pthread_create(&S.thread, NULL, server, NULL);
}

static void setup(void)
{
	memset(&S, 0, sizeof(S));
	pthread_mutex_init(&S.lock, NULL);
	cr_assert_not_null(mkdtemp(dir));
	start_server(false);
}

static void teardown(void)
{
	char cmd[128];

	S.stop = true;
	shutdown(S.lfd, SHUT_RDWR); /* wakes accept() (Linux) */
	pthread_join(S.thread, NULL);
	close(S.lfd);
	free(S.body);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd)) {
	}
}

TestSuite(client, .init = setup, .fini = teardown, .timeout = 30);

static struct em_client *open_client(void)
{
	struct em_client *c;
	struct em_err err = { 0 };
	char addr[64];

	if (S.tcp)
		snprintf(addr, sizeof(addr), "127.0.0.1:%u", S.port);
	cr_assert_eq(em_client_open(S.tcp ? addr : S.path, &c, &err), 0, "%s", err.msg);
	return c;
}

static void req(struct em_client *c, const char *method, const char *path, const void *body,
		size_t len, struct em_client_resp *r)
{
	struct em_err err = { 0 };

	cr_assert_eq(em_client_request(c, method, path, NULL, body, len, r, &err), 0, "%s %s: %s",
		     method, path, err.msg);
}

/* The head of the last request the server read. */
static const char *last_head(void)
{
	static char h[8192];

	pthread_mutex_lock(&S.lock);
	memcpy(h, S.head, sizeof(h));
	pthread_mutex_unlock(&S.lock);
	return h;
}

/* --- tests */

Test(client, keep_alive_reuses_one_connection)
{
	struct em_client *c = open_client();
	struct em_client_resp r;

	for (int i = 0; i < 200; i++) {
		req(c, i % 2 ? "GET" : "POST", "/ok", "x", i % 2 ? 0 : 1, &r);
		cr_assert_eq(r.status, 200);
		cr_assert_eq(r.len, 5);
		cr_assert_str_eq(r.body, "hello");
	}
	cr_expect_eq(em_client_connects(c), 1);
	cr_expect_eq(S.accepts, 1, "the server accepted %d connections", (int)S.accepts);
	cr_expect_eq(S.requests, 200);
	em_client_close(c);
}

Test(client, request_framing)
{
	struct em_client *c = open_client();
	struct em_client_resp r;
	struct em_err err = { 0 };

	cr_assert_eq(em_client_request(c, "PUT", "/echo?x=1&y=%20", "application/json", "{\"a\":1}",
				       7, &r, &err), 0, "%s", err.msg);
	cr_expect_str_eq(r.body, "{\"a\":1}");
	cr_expect_str_eq(last_head(), "PUT /echo?x=1&y=%20 HTTP/1.1\r\nHost: localhost\r\n"
				      "Content-Type: application/json\r\nContent-Length: 7\r\n\r\n");
	/* no body: no Content-Length on GET, an explicit 0 on POST and PUT */
	req(c, "GET", "/echo", NULL, 0, &r);
	cr_expect_str_eq(last_head(), "GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n");
	cr_expect_eq(r.len, 0);
	cr_expect_str_eq(r.body, "");
	req(c, "POST", "/echo", NULL, 0, &r);
	cr_expect_str_eq(last_head(), "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
	/* binary bodies pass untouched, NULs included */
	req(c, "POST", "/echo", "a\0b\r\n\r\nc", 8, &r);
	cr_expect_eq(r.len, 8);
	cr_expect_eq(memcmp(r.body, "a\0b\r\n\r\nc", 8), 0);
	cr_expect_eq(S.accepts, 1);
	em_client_close(c);
}

Test(client, chunked_response)
{
	struct em_client *c = open_client();
	struct em_client_resp r;

	req(c, "GET", "/chunked", NULL, 0, &r);
	cr_expect_eq(r.status, 200);
	cr_expect_eq(r.len, strlen("hello, wide world"));
	cr_expect_str_eq(r.body, "hello, wide world");
	cr_expect_str_eq(em_client_header(c, "X-After"), "yes");
	cr_expect_null(em_client_header(c, "X-Trailer"), "trailers are not headers");
	/* the trailers were consumed: the connection is reusable */
	req(c, "GET", "/ok", NULL, 0, &r);
	cr_expect_str_eq(r.body, "hello");
	req(c, "GET", "/trickle", NULL, 0, &r);
	cr_expect_str_eq(r.body, "abc");
	req(c, "GET", "/ok", NULL, 0, &r);
	cr_expect_eq(S.accepts, 1);
	cr_expect_eq(em_client_connects(c), 1);
	em_client_close(c);
}

Test(client, large_bodies)
{
	struct em_client *c = open_client();
	struct em_client_resp r;
	size_t n = 8 * MB + 17;
	char *b = malloc(n), path[64];

	for (size_t i = 0; i < n; i++)
		b[i] = (char)pattern(i);
	req(c, "POST", "/echo", b, n, &r);
	cr_assert_eq(r.len, n);
	cr_expect(is_pattern(r.body, n), "an echoed 8 MB body differs");
	cr_expect_eq(S.body_len, n);

	snprintf(path, sizeof(path), "/big/%zu", n);
	req(c, "GET", path, NULL, 0, &r);
	cr_assert_eq(r.len, n);
	cr_expect(is_pattern(r.body, n));
	cr_expect_eq(r.body[n], '\0', "bodies are NUL-terminated");

	snprintf(path, sizeof(path), "/big-chunked/%zu", n);
	req(c, "GET", path, NULL, 0, &r);
	cr_assert_eq(r.len, n);
	cr_expect(is_pattern(r.body, n), "a chunked 8 MB body decodes wrong");
	cr_expect_eq(r.body[n], '\0');

	/* a small response after large ones: the buffers are reused, the framing is fresh */
	req(c, "GET", "/ok", NULL, 0, &r);
	cr_expect_str_eq(r.body, "hello");
	cr_expect_eq(S.accepts, 1);
	free(b);
	em_client_close(c);
}

Test(client, headers_by_name)
{
	struct em_client *c = open_client();
	struct em_client_resp r;
	const char *k, *v;

	req(c, "GET", "/headers", NULL, 0, &r);
	cr_expect_eq(r.status, 201);
	cr_expect_str_eq(r.reason, "Created Here");
	cr_expect_str_eq(em_client_header(c, "x-one"), "1");
	cr_expect_str_eq(em_client_header(c, "X-ONE"), "1");
	cr_expect_str_eq(em_client_header(c, "X-Mixed-Case"), "padded value");
	cr_expect_str_eq(em_client_header(c, "x-dup"), "first");
	cr_expect_str_eq(em_client_header(c, "X-Empty"), "");
	cr_expect_null(em_client_header(c, "X-Missing"));
	cr_expect_null(em_client_header(c, "X-On"), "a prefix is not a match");
	cr_assert_eq(em_client_header_count(c), 6);
	em_client_header_at(c, 0, &k, &v);
	cr_expect_str_eq(k, "X-One");
	em_client_header_at(c, 3, &k, &v);
	cr_expect_str_eq(k, "X-Dup");
	cr_expect_str_eq(v, "second");
	em_client_header_at(c, 6, &k, &v);
	cr_expect_null(k);
	cr_expect_null(v);
	/* the next response replaces them */
	req(c, "GET", "/ok", NULL, 0, &r);
	cr_expect_null(em_client_header(c, "X-One"));
	cr_expect_str_eq(em_client_header(c, "x-test"), "a");
	cr_expect_str_eq(r.reason, "OK");
	em_client_close(c);
}

Test(client, announced_close_then_a_new_connection)
{
	struct em_client *c = open_client();
	struct em_client_resp r;

	req(c, "GET", "/close", NULL, 0, &r);
	cr_expect_str_eq(r.body, "by");
	req(c, "GET", "/ok", NULL, 0, &r);
	cr_expect_str_eq(r.body, "hello");
	cr_expect_eq(em_client_connects(c), 2);
	req(c, "GET", "/http10", NULL, 0, &r);
	cr_expect_str_eq(r.body, "old");
	req(c, "GET", "/eof", NULL, 0, &r);
	cr_expect_str_eq(r.body, "until the end", "a body without a length runs to the end");
	req(c, "GET", "/ok", NULL, 0, &r);
	cr_expect_eq(em_client_connects(c), 4);
	cr_expect_eq(S.accepts, 4);
	em_client_close(c);
}

/* A server that closed a kept-alive connection (its idle timeout) never saw the next request:
 * the client sends it again on a new connection, once. */
Test(client, silently_closed_connection_is_retried_once)
{
	struct em_client *c = open_client();
	struct em_client_resp r;
	struct em_err err = { 0 };

	req(c, "GET", "/silent-close", NULL, 0, &r);
	cr_expect_str_eq(r.body, "ok");
	sleep_ms(50); /* the server's close has arrived */
	req(c, "POST", "/echo", "again", 5, &r);
	cr_expect_str_eq(r.body, "again");
	cr_expect_eq(em_client_connects(c), 2);
	cr_expect_eq(S.accepts, 2);
	int before = S.requests;

	/* on a fresh connection, no answer is an error, not a retry */
	em_client_close(c);
	c = open_client();
	cr_expect_eq(em_client_request(c, "POST", "/no-answer", NULL, "x", 1, &r, &err), -ECONNRESET);
	cr_expect(strstr(err.msg, "POST /no-answer: ") == err.msg &&
		  strstr(err.msg, "api.sock closed the connection without a response"), "%s", err.msg);
	cr_expect_eq(S.requests, before + 1, "a request without an answer was sent again");
	em_client_close(c);
}

Test(client, interim_and_bodiless_responses)
{
	struct em_client *c = open_client();
	struct em_client_resp r;

	req(c, "GET", "/continue", NULL, 0, &r);
	cr_expect_eq(r.status, 200, "a 100 Continue is skipped");
	cr_expect_str_eq(r.body, "real");
	req(c, "DELETE", "/204", NULL, 0, &r);
	cr_expect_eq(r.status, 204);
	cr_expect_eq(r.len, 0);
	cr_expect_str_eq(em_client_header(c, "X-Z"), "z");
	req(c, "HEAD", "/ok", NULL, 0, &r);
	cr_expect_eq(r.status, 200);
	cr_expect_eq(r.len, 0, "HEAD has no body, whatever Content-Length says");
	cr_expect_str_eq(em_client_header(c, "Content-Length"), "5");
	req(c, "GET", "/ok", NULL, 0, &r);
	cr_expect_str_eq(r.body, "hello");
	cr_expect_eq(S.accepts, 1);
	em_client_close(c);
}

Test(client, broken_responses_are_errors)
{
	struct em_client *c = open_client();
	struct em_client_resp r;
	struct em_err err = { 0 };

	cr_expect_eq(em_client_request(c, "GET", "/garbage", NULL, NULL, 0, &r, &err), -EPROTO);
	cr_expect(strstr(err.msg, "not an HTTP/1.x status line") != NULL, "%s", err.msg);
	cr_expect_eq(em_client_request(c, "GET", "/short", NULL, NULL, 0, &r, &err), -EPROTO);
	cr_expect(strstr(err.msg, "in the middle of a response") != NULL, "%s", err.msg);
	cr_expect_eq(em_client_request(c, "GET", "/bad-chunk", NULL, NULL, 0, &r, &err), -EPROTO);
	cr_expect(strstr(err.msg, "bad chunk size \"zz\"") != NULL, "%s", err.msg);
	/* after a broken response the client starts over on a new connection */
	req(c, "GET", "/ok", NULL, 0, &r);
	cr_expect_str_eq(r.body, "hello");
	em_client_close(c);
}

Test(client, timeout)
{
	struct em_client *c = open_client();
	struct em_client_resp r;
	struct em_err err = { 0 };
	struct timespec t0, t1;

	em_client_set_timeout(c, 200);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_expect_eq(em_client_request(c, "GET", "/hang", NULL, NULL, 0, &r, &err), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	cr_expect(ms >= 190 && ms < 1000, "timed out after %.0f ms", ms);
	cr_expect(strstr(err.msg, "no answer within 200 ms") != NULL, "%s", err.msg);
	em_client_close(c);
}

Test(client, bad_addresses)
{
	struct em_client *c;
	struct em_err err = { 0 };
	char path[160];

	snprintf(path, sizeof(path), "%s/nothing.sock", dir);
	cr_expect_eq(em_client_open(path, &c, &err), -ENOENT);
	cr_expect(strstr(err.msg, "connect to ") && strstr(err.msg, "ENOENT"), "%s", err.msg);
	cr_expect_eq(em_client_open("example.com:80", &c, &err), -EINVAL);
	cr_expect_eq(em_client_open("127.0.0.1:0", &c, &err), -EINVAL);
	cr_expect_eq(em_client_open("127.0.0.1", &c, &err), -EINVAL);
	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	cr_expect_eq(em_client_open(path, &c, &err), -ENAMETOOLONG);
}

Test(client, tcp_loopback)
{
	struct em_client *c;
	struct em_client_resp r;
	struct em_err err = { 0 };
	char addr[64];

	/* a second server, on TCP */
	teardown();
	memset(&S, 0, sizeof(S));
	pthread_mutex_init(&S.lock, NULL);
	strcpy(dir, "/tmp/ember-test-client-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	start_server(true);
	c = open_client();
	for (int i = 0; i < 50; i++) {
		req(c, "POST", "/echo", "tcp", 3, &r);
		cr_assert_str_eq(r.body, "tcp");
	}
	req(c, "GET", "/chunked", NULL, 0, &r);
	cr_expect_str_eq(r.body, "hello, wide world");
	cr_expect_eq(em_client_connects(c), 1);
	cr_expect_eq(S.accepts, 1);
	em_client_close(c);
	snprintf(addr, sizeof(addr), "localhost:%u", S.port);
	cr_assert_eq(em_client_open(addr, &c, &err), 0, "%s", err.msg);
	req(c, "GET", "/ok", NULL, 0, &r);
	cr_expect_str_eq(r.body, "hello");
	em_client_close(c);
}
