/* runtime/host/api.c — see api.h; the routes are in API.md.
 *
 * libmicrohttpd calls handle() for every request: first when the headers are in (the route and
 * the method are checked then, and a Content-Length over the limit is refused before a byte of
 * the body is read), then once per piece of the body, then once with no data, when the request
 * is dispatched to the host. A response queued before the body is read makes libmicrohttpd
 * close the connection after it instead of reading the body. Once the body is being read,
 * libmicrohttpd 0.9.75 takes no response until its end: a body that grows past the limit
 * (chunked, no Content-Length to refuse early) is dropped as it arrives, and answered 413 at its
 * end; one that keeps coming, past twice the limit, has its connection closed. */
#include "runtime/host/api.h"
#include "runtime/host/host.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct em_api {
	struct em_host *h;
	struct em_log *log;
	size_t max_payload;
	struct MHD_Daemon *unix_d, *tcp_d;
	int unix_fd, tcp_fd;            /* the listening sockets (MHD uses them, we close them) */
	char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t sock_dev;                 /* the socket file we made: removed only if still ours */
	ino_t sock_ino;
	uint16_t tcp_port;
};

enum method { M_GET = 1, M_HEAD = 2, M_PUT = 4, M_DELETE = 8, M_POST = 16 };
enum route { R_HEALTH, R_METRICS, R_FUNCTIONS, R_FUNCTION, R_INVOKE, R_INVOCATIONS, R_LOGS,
	     R_SNAPSHOT, R_RESTORE };

/* One request: lives from its headers to MHD's completion callback. */
struct req {
	enum route route;
	enum method method;
	char name[EM_FN_NAME_MAX + 1];
	bool wants_body;
	bool answered;                  /* a response is queued: the rest of the body is not ours */
	bool too_large;                 /* the body passed the limit: what follows is dropped */
	char *body;
	size_t len, cap, dropped;
	int status;                     /* for the access log */
	size_t resp_len;
	char request_id[40];
	struct timespec t0;             /* the access log's, only when it is on */
	char line[160];                 /* "GET /v1/functions", for the access log */
};

/* --- responses */

static bool debug_on(const struct em_api *api)
{
	return api->log && api->log->fd >= 0 && api->log->level >= EM_LOG_DEBUG;
}

/* Queue a response built from a malloc'd buffer (taken) or a static one. */
static enum MHD_Result send_buf(struct MHD_Connection *c, struct req *r, int status,
				const char *content_type, char *buf, size_t len, bool owned,
				const char *const *headers)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, len ? buf : (void *)"",
					       owned && len ? MHD_RESPMEM_MUST_FREE
							    : MHD_RESPMEM_PERSISTENT);
	if (owned && !len)
		free(buf);
	if (!resp) {
		if (owned && len)
			free(buf);
		return MHD_NO;
	}
	if (content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	for (; headers && headers[0]; headers += 2)
		MHD_add_response_header(resp, headers[0], headers[1]);
	/* answered before the body was read: the connection cannot be reused (the rest of the
	 * body would be taken for the next request), so say that it closes */
	if (r->wants_body && !r->answered)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	r->status = status;
	r->resp_len = len;
	return ret;
}

/* A JSON response (j is taken), with a newline for terminals. */
static enum MHD_Result send_json(struct MHD_Connection *c, struct req *r, int status, json_t *j,
				 const char *const *headers)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	size_t n;

	json_decref(j);
	if (!s)
		return MHD_NO;
	n = strlen(s);
	char *t = realloc(s, n + 2);
	if (!t) {
		free(s);
		return MHD_NO;
	}
	t[n] = '\n';
	t[n + 1] = '\0';
	return send_buf(c, r, status, "application/json", t, n + 1, true, headers);
}

static enum MHD_Result send_error_h(struct MHD_Connection *c, struct req *r, int status,
				    const char *type, const char *msg, const char *const *headers)
{
	return send_json(c, r, status, json_pack("{s:s, s:s}", "errorType", type, "errorMessage",
						 msg), headers);
}

static enum MHD_Result send_error(struct MHD_Connection *c, struct req *r, int status,
				  const char *type, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error(struct MHD_Connection *c, struct req *r, int status,
				  const char *type, const char *fmt, ...)
{
	char msg[EM_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return send_error_h(c, r, status, type, msg, NULL);
}

static enum MHD_Result send_host_err(struct MHD_Connection *c, struct req *r,
				     const struct em_err *err)
{
	const char *type;
	int status = em_host_err_status(err->code, &type);

	return send_error_h(c, r, status, type, err->msg[0] ? err->msg : "failed", NULL);
}

static enum MHD_Result send_too_large(struct em_api *api, struct MHD_Connection *c,
				      struct req *r)
{
	return send_error(c, r, 413, "RequestTooLarge",
			  "request body larger than the limit of %zu bytes", api->max_payload);
}

/* --- routing */

static enum method parse_method(const char *m)
{
	static const struct { const char *name; enum method m; } v[] = {
		{ "GET", M_GET }, { "HEAD", M_HEAD }, { "PUT", M_PUT },
		{ "DELETE", M_DELETE }, { "POST", M_POST },
	};

	for (size_t i = 0; i < EM_ARRAY_SIZE(v); i++)
		if (!strcmp(m, v[i].name))
			return v[i].m;
	return 0;
}

static void allow_header(unsigned mask, char *buf, size_t cap)
{
	static const char *const names[] = { "GET", "HEAD", "PUT", "DELETE", "POST" };
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < EM_ARRAY_SIZE(names); i++)
		if (mask & (1u << i))
			n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", names[i]);
}

/* Match the path; returns the methods it allows (0: no such route). The function name is
 * copied, possibly cut: it is checked by the caller. */
static unsigned match(const char *url, struct req *r, bool *name_ok, int *name_len)
{
	const char *fn = "/v1/functions/", *rest, *slash;
	size_t n;

	*name_ok = true;
	*name_len = 0;
	if (!strcmp(url, "/v1/health"))
		return r->route = R_HEALTH, M_GET | M_HEAD;
	if (!strcmp(url, "/metrics"))
		return r->route = R_METRICS, M_GET | M_HEAD;
	if (!strcmp(url, "/v1/functions"))
		return r->route = R_FUNCTIONS, M_GET | M_HEAD;
	if (strncmp(url, fn, strlen(fn)))
		return 0;
	rest = url + strlen(fn);
	slash = strchr(rest, '/');
	n = slash ? (size_t)(slash - rest) : strlen(rest);
	if (n == 0)
		return 0;
	snprintf(r->name, sizeof(r->name), "%.*s", (int)n, rest);
	*name_ok = n <= EM_FN_NAME_MAX && em_fn_name_valid(r->name);
	*name_len = n > 80 ? 80 : (int)n;
	if (!slash)
		return r->route = R_FUNCTION, M_GET | M_HEAD | M_PUT | M_DELETE;
	if (!strcmp(slash, "/invoke"))
		return r->route = R_INVOKE, M_POST;
	if (!strcmp(slash, "/invocations"))
		return r->route = R_INVOCATIONS, M_GET | M_HEAD;
	if (!strcmp(slash, "/logs"))
		return r->route = R_LOGS, M_GET | M_HEAD;
	if (!strcmp(slash, "/snapshot"))
		return r->route = R_SNAPSHOT, M_POST;
	if (!strcmp(slash, "/restore"))
		return r->route = R_RESTORE, M_POST;
	return 0;
}

/* ?limit=N: 0 (the host's default) when absent. */
static int query_limit(struct MHD_Connection *c, unsigned *out, char *msg, size_t cap)
{
	const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
	char *end;
	unsigned long v;

	*out = 0;
	if (!s)
		return 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || v < 1 || v > 10000) {
		snprintf(msg, cap, "limit: must be an integer from 1 to 10000 (got \"%.40s\")", s);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/* --- the routes */

static enum MHD_Result do_deploy(struct em_api *api, struct MHD_Connection *c, struct req *r)
{
	struct em_err err = { 0 };
	struct em_fn_spec spec;
	json_error_t je;
	json_t *body, *desc = NULL;
	int ret;

	body = json_loadb(r->body ? r->body : "", r->len, JSON_REJECT_DUPLICATES, &je);
	if (!body)
		return send_error(c, r, 400, "InvalidRequestContent",
				  "body: invalid JSON at line %d column %d: %s", je.line, je.column,
				  je.text);
	ret = em_fn_spec_from_json(r->name, body, &spec, &err);
	json_decref(body);
	if (ret < 0)
		return send_host_err(c, r, &err);
	/* 200 for a first deploy and a redeploy alike: PUT is create-or-replace, and the
	 * description's "version" tells which it was */
	ret = em_host_deploy(api->h, &spec, &desc, &err);
	em_fn_spec_free(&spec);
	if (ret < 0)
		return send_host_err(c, r, &err);
	return send_json(c, r, 200, desc, NULL);
}

static enum MHD_Result do_invoke(struct em_api *api, struct MHD_Connection *c, struct req *r)
{
	struct em_invoke_result res = { 0 };
	struct em_err err = { 0 };
	char init[32], dur[32], billed[32], cpu[32], mem[32];
	int ret;

	ret = em_host_invoke(api->h, r->name, r->body ? r->body : "", r->len, &res, &err);
	if (ret < 0)
		return send_host_err(c, r, &err);
	snprintf(r->request_id, sizeof(r->request_id), "%s", res.request_id);
	snprintf(init, sizeof(init), "%.3f", res.init_ms);
	snprintf(dur, sizeof(dur), "%.3f", res.duration_ms);
	snprintf(billed, sizeof(billed), "%" PRIu64, res.billed_ms);
	snprintf(cpu, sizeof(cpu), "%.3f", res.cpu_ms);
	snprintf(mem, sizeof(mem), "%" PRIu64, res.max_memory_mb);
	bool fn_failed = res.error_type && !strncmp(res.error_type, "Function.", 9);
	const char *headers[] = {
		"Ember-Request-Id", res.request_id,
		"Ember-Start", res.start ? res.start : "",
		"Ember-Init-Ms", init,
		"Ember-Duration-Ms", dur,
		"Ember-Billed-Ms", billed,
		"Ember-Cpu-Ms", cpu,
		"Ember-Max-Memory-Mb", mem,
		/* a function's failure is told apart from the API's by this (as Lambda's
		 * X-Amz-Function-Error) */
		fn_failed ? "Ember-Function-Error" : NULL, res.error_type,
		NULL,
	};
	int status = res.status ? res.status : 200;
	enum MHD_Result mr = send_buf(c, r, status,
				      res.error_type ? "application/json" : "application/octet-stream",
				      res.body, res.len, true, headers);
	res.body = NULL; /* taken by send_buf */
	em_invoke_result_free(&res);
	return mr;
}

static enum MHD_Result do_query(struct em_api *api, struct MHD_Connection *c, struct req *r)
{
	struct em_err err = { 0 };
	char msg[128];
	unsigned limit;
	json_t *out = NULL;
	int ret;

	if (query_limit(c, &limit, msg, sizeof(msg)) < 0)
		return send_error(c, r, 400, "InvalidParameterValue", "%s", msg);
	if (r->route == R_LOGS)
		ret = em_host_logs(api->h, r->name,
				   MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "requestId"),
				   limit, &out, &err);
	else
		ret = em_host_invocations(api->h, r->name, limit, &out, &err);
	if (ret < 0)
		return send_host_err(c, r, &err);
	return send_json(c, r, 200, out, NULL);
}

static enum MHD_Result dispatch(struct em_api *api, struct MHD_Connection *c, struct req *r)
{
	struct em_err err = { 0 };
	json_t *out = NULL;

	switch (r->route) {
	case R_HEALTH:
		return send_json(c, r, 200, json_pack("{s:s}", "status", "ok"), NULL);
	case R_METRICS: {
		char *m = em_host_metrics(api->h);

		if (!m)
			return send_error(c, r, 500, "ServiceError", "metrics: out of memory");
		return send_buf(c, r, 200, "text/plain; version=0.0.4", m, strlen(m), true, NULL);
	}
	case R_FUNCTIONS:
		out = em_host_list(api->h);
		if (!out)
			return send_error(c, r, 500, "ServiceError", "list functions: out of memory");
		return send_json(c, r, 200, out, NULL);
	case R_FUNCTION:
		if (r->method == M_PUT)
			return do_deploy(api, c, r);
		if (r->method == M_DELETE) {
			if (em_host_remove(api->h, r->name, &err) < 0)
				return send_host_err(c, r, &err);
			return send_buf(c, r, 204, NULL, NULL, 0, false, NULL);
		}
		if (em_host_show(api->h, r->name, &out, &err) < 0)
			return send_host_err(c, r, &err);
		return send_json(c, r, 200, out, NULL);
	case R_INVOKE:
		return do_invoke(api, c, r);
	case R_INVOCATIONS:
	case R_LOGS:
		return do_query(api, c, r);
	case R_SNAPSHOT:
	case R_RESTORE:
		if ((r->route == R_SNAPSHOT ? em_host_snapshot : em_host_restore)(api->h, r->name,
										    &out, &err) < 0)
			return send_host_err(c, r, &err);
		return send_json(c, r, 200, out, NULL);
	}
	return send_error(c, r, 500, "ServiceError", "unhandled route");
}

/* The first call for a request: its headers are in, its body not yet. Answers at once what
 * needs no body (a wrong route, method or name; a body declared too large). */
static enum MHD_Result start(struct em_api *api, struct MHD_Connection *c, struct req *r,
			     const char *url, const char *method)
{
	bool name_ok;
	int name_len;
	unsigned allowed = match(url, r, &name_ok, &name_len);
	char allow[64];

	if (!allowed)
		return send_error(c, r, 404, "NotFound", "no route for %s %.200s", method, url);
	if (!(allowed & r->method)) {
		char msg[300];

		allow_header(allowed, allow, sizeof(allow));
		snprintf(msg, sizeof(msg), "%s is not allowed on %.200s (allowed: %s)", method, url,
			 allow);
		return send_error_h(c, r, 405, "MethodNotAllowed", msg,
				    (const char *const[]){ "Allow", allow, NULL });
	}
	if (!name_ok)
		return send_error(c, r, 400, "InvalidParameterValue",
				  "name: must be 1 to %d characters of A-Z a-z 0-9 _ - (got \"%.*s\")",
				  EM_FN_NAME_MAX, name_len, url + strlen("/v1/functions/"));
	if (r->wants_body) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							      MHD_HTTP_HEADER_CONTENT_LENGTH);

		if (cl && strtoull(cl, NULL, 10) > api->max_payload)
			return send_too_large(api, c, r);
	}
	return MHD_YES; /* read the body (MHD answers "Expect: 100-continue" now) */
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct em_api *api = cls;
	struct req *r = *con_cls;
	enum MHD_Result ret;

	(void)version;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*con_cls = r;
		if (debug_on(api)) {
			clock_gettime(CLOCK_MONOTONIC, &r->t0);
			snprintf(r->line, sizeof(r->line), "%s %s", method, url);
		}
		r->method = parse_method(method);
		r->wants_body = r->method == M_PUT || r->method == M_POST;
		/* A request without a body is answered on the last call: answered now, MHD would
		 * close the connection (it cannot know that no body follows). */
		if (!r->wants_body)
			return MHD_YES;
		ret = start(api, c, r, url, method);
		r->answered = r->status != 0;
		return ret;
	}
	if (*upload_size) {
		size_t n = *upload_size;

		*upload_size = 0;
		if (r->answered || !r->wants_body)
			return MHD_YES; /* not ours to keep */
		if (r->too_large || r->len + n > api->max_payload) {
			/* keep nothing of it (see the top) */
			free(r->body);
			r->body = NULL;
			r->too_large = true;
			r->dropped += r->len + n;
			r->len = r->cap = 0;
			return r->dropped > 2 * api->max_payload ? MHD_NO : MHD_YES;
		}
		if (r->len + n > r->cap) {
			const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
								      MHD_HTTP_HEADER_CONTENT_LENGTH);
			size_t cap = cl ? strtoull(cl, NULL, 10) : 0; /* one allocation if told */

			if (cap < r->len + n)
				cap = r->cap * 2 > r->len + n ? r->cap * 2 : r->len + n + 4096;
			if (cap > api->max_payload)
				cap = api->max_payload;
			char *b = realloc(r->body, cap);
			if (!b)
				return MHD_NO;
			r->body = b;
			r->cap = cap;
		}
		memcpy(r->body + r->len, upload, n);
		r->len += n;
		return MHD_YES;
	}
	if (r->answered)
		return MHD_YES;
	if (r->too_large) {
		ret = send_too_large(api, c, r);
		r->answered = true;
		return ret;
	}
	r->answered = true;
	if (!r->wants_body && ((ret = start(api, c, r, url, method)) != MHD_YES || r->status))
		return ret;
	return dispatch(api, c, r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct em_api *api = cls;
	struct req *r = *con_cls;

	(void)c;
	if (!r)
		return;
	if (debug_on(api) && r->line[0]) {
		struct timespec t1;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		em_debug(api->log, "api: %s %d, %zu bytes in, %zu out, %.3f ms%s%s%s", r->line,
			 r->status, r->len, r->resp_len,
			 (double)(t1.tv_sec - r->t0.tv_sec) * 1e3 +
				 (double)(t1.tv_nsec - r->t0.tv_nsec) / 1e6,
			 r->request_id[0] ? ", request " : "", r->request_id,
			 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection lost)");
	}
	free(r->body);
	free(r);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct em_api *api = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	em_warn(api->log, "api: libmicrohttpd: %s", msg);
}

/* --- listening */

/* Bind the unix socket. A file already there is a socket left by a server that died (nobody
 * accepts on it: replaced) or a live server's (refused), or something else (refused). */
static int listen_unix(struct em_api *api, const char *path, struct em_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)], *slash;
	struct stat st;
	int ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return em_err_msg(err, ENAMETOOLONG, "socket %s: path longer than %zu bytes", path,
				  sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		ret = em_mkdir_p(dir, 0755, err);
		if (ret < 0)
			return em_err_prefix(err, "socket %s", path);
	}
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return em_err_set(err, errno, "socket %s", path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EADDRINUSE)
			return em_err_set(err, errno, "bind socket %s", path);
		if (lstat(path, &st) < 0)
			return em_err_set(err, errno, "socket %s", path);
		if (!S_ISSOCK(st.st_mode))
			return em_err_msg(err, EEXIST, "socket %s: exists and is not a socket", path);
		cleanup_close int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return em_err_set(err, errno, "socket %s: probe", path);
		if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return em_err_msg(err, EADDRINUSE,
					  "socket %s: another server is listening on it", path);
		if (errno != ECONNREFUSED)
			return em_err_set(err, errno, "socket %s: probe for a live server", path);
		/* stale: its server is gone */
		if (unlink(path) < 0 && errno != ENOENT)
			return em_err_set(err, errno, "remove stale socket %s", path);
		em_info(api->log, "api: removed the stale socket %s", path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return em_err_set(err, errno, "bind socket %s", path);
	}
	/* The mode is set between bind and listen: until listen, a connect is refused, so no
	 * client ever reaches the socket while it has the umask's mode. */
	if (chmod(path, 0660) < 0 || stat(path, &st) < 0) {
		ret = em_err_set(err, errno, "chmod 0660 socket %s", path);
		unlink(path);
		return ret;
	}
	if (listen(fd, 512) < 0) {
		ret = em_err_set(err, errno, "listen on socket %s", path);
		unlink(path);
		return ret;
	}
	snprintf(api->socket_path, sizeof(api->socket_path), "%s", path);
	api->sock_dev = st.st_dev;
	api->sock_ino = st.st_ino;
	api->unix_fd = take_fd(&fd);
	return 0;
}

int em_api_parse_listen(const char *listen, void *sap, unsigned *salen, struct em_err *err)
{
	struct sockaddr_storage *sa = sap;
	const char *colon = strrchr(listen, ':');
	char host[64], *end;
	long port;

	memset(sa, 0, sizeof(*sa));
	if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host))
		return em_err_msg(err, EINVAL, "listen %s: expected ADDRESS:PORT (127.0.0.1:8080)",
				  listen);
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return em_err_msg(err, EINVAL, "listen %s: port must be 0 to 65535", listen);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;

		host[strlen(host) - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1)
			return em_err_msg(err, EINVAL, "listen %s: not an IPv6 address", listen);
		if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			goto not_loopback;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*salen = sizeof(*in6);
		return 0;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)sa;
	if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
		return em_err_msg(err, EINVAL, "listen %s: expected a numeric address", listen);
	if ((ntohl(in->sin_addr.s_addr) >> 24) != 127)
		goto not_loopback;
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	*salen = sizeof(*in);
	return 0;
not_loopback:
	/* the API has no authentication: whoever reaches it can run code on this machine */
	return em_err_msg(err, EINVAL, "listen %s: not a loopback address (the API has no "
			  "authentication; only 127.0.0.0/8 or [::1])", listen);
}

static int listen_tcp(struct em_api *api, const char *listen_at, struct em_err *err)
{
	struct sockaddr_storage sa;
	unsigned salen;
	socklen_t l = sizeof(sa);
	int one = 1, ret;

	ret = em_api_parse_listen(listen_at, &sa, &salen, err);
	if (ret < 0)
		return ret;
	cleanup_close int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return em_err_set(err, errno, "listen %s: socket", listen_at);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, salen) < 0)
		return em_err_set(err, errno, "listen %s: bind", listen_at);
	if (listen(fd, 512) < 0)
		return em_err_set(err, errno, "listen %s", listen_at);
	if (getsockname(fd, (struct sockaddr *)&sa, &l) < 0)
		return em_err_set(err, errno, "listen %s: getsockname", listen_at);
	api->tcp_port = ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *)&sa)->sin_port
						      : ((struct sockaddr_in6 *)&sa)->sin6_port);
	api->tcp_fd = take_fd(&fd);
	return 0;
}

static struct MHD_Daemon *start_daemon(struct em_api *api, int fd, unsigned idle_s)
{
	/* thread per connection: an invocation blocks its thread in em_host_invoke for as long
	 * as the function runs, without holding up any other connection; ITC lets stop quiesce */
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_TURBO | MHD_USE_ERROR_LOG;

	return MHD_start_daemon(flags, 0, NULL, NULL, handle, api,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api,
				MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_COMPLETED, completed, api,
				MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
				MHD_OPTION_CONNECTION_LIMIT, 1000u,
				MHD_OPTION_END);
}

int em_api_start(struct em_host *h, const struct em_api_cfg *cfg, struct em_api **out,
		 struct em_err *err)
{
	struct em_api *api = calloc(1, sizeof(*api));
	const char *path = cfg->socket_path ? cfg->socket_path : EM_API_SOCKET_DEFAULT;
	unsigned idle = cfg->idle_timeout_s ? cfg->idle_timeout_s : 120;
	int ret;

	if (!api)
		return em_err_msg(err, ENOMEM, "api: out of memory");
	api->h = h;
	api->log = cfg->log;
	api->max_payload = cfg->max_payload ? cfg->max_payload : EM_API_MAX_PAYLOAD_DEFAULT;
	api->unix_fd = api->tcp_fd = -1;
	ret = listen_unix(api, path, err);
	if (ret == 0 && cfg->listen)
		ret = listen_tcp(api, cfg->listen, err);
	if (ret == 0 && !(api->unix_d = start_daemon(api, api->unix_fd, idle)))
		ret = em_err_msg(err, EIO, "api: start the HTTP server on %s (libmicrohttpd refused; "
				 "see the log)", path);
	if (ret == 0 && api->tcp_fd >= 0 && !(api->tcp_d = start_daemon(api, api->tcp_fd, idle)))
		ret = em_err_msg(err, EIO, "api: start the HTTP server on %s (libmicrohttpd refused; "
				 "see the log)", cfg->listen);
	if (ret < 0) {
		em_api_stop(api);
		return ret;
	}
	*out = api;
	return 0;
}

static void stop_daemon(struct MHD_Daemon *d, int *fd)
{
	if (d) {
		/* stop accepting first; MHD_stop_daemon then closes every connection and joins
		 * their threads (an invocation in flight runs to its end) */
		MHD_socket q = MHD_quiesce_daemon(d);

		MHD_stop_daemon(d);
		if (q == MHD_INVALID_SOCKET)
			*fd = -1; /* MHD closed it */
	}
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void em_api_stop(struct em_api *api)
{
	struct stat st;

	if (!api)
		return;
	/* the socket file goes first so new clients fail at once; only ours (a server started
	 * since on the same path owns what is there now) */
	if (api->socket_path[0] && lstat(api->socket_path, &st) == 0 &&
	    st.st_dev == api->sock_dev && st.st_ino == api->sock_ino)
		unlink(api->socket_path);
	stop_daemon(api->unix_d, &api->unix_fd);
	stop_daemon(api->tcp_d, &api->tcp_fd);
	free(api);
}

const char *em_api_socket_path(const struct em_api *api)
{
	return api->socket_path;
}

uint16_t em_api_tcp_port(const struct em_api *api)
{
	return api->tcp_port;
}

/* --- libmicrohttpd without TLS
 *
 * Debian 12's libmicrohttpd.a is built with HTTPS: it refers to the GnuTLS functions below, and
 * its constructor (MHD_init) calls gnutls_global_init() in every process that links it. GnuTLS
 * cannot be linked statically from Debian's packages (there is no libp11-kit.a nor
 * libunistring.a), and the ember binary is static (runtime/build.mk): the references were left
 * at address 0 and every ember command crashed before main(). The API never asks for TLS (no
 * MHD_USE_TLS: it serves a unix socket and loopback only), and without it libmicrohttpd calls
 * nothing of GnuTLS but global init and deinit. So these stand-ins satisfy the linker: init and
 * deinit succeed and do nothing, the rest fail with GNUTLS_E_UNIMPLEMENTED_FEATURE. In a
 * dynamically linked program that links api.o they take the place of libgnutls's for
 * libmicrohttpd, to the same effect. */
#define GNUTLS_E_UNIMPLEMENTED_FEATURE (-1250)
#define NO_TLS(name)          \
	int name(void);       \
	int name(void)        \
	{                     \
		return GNUTLS_E_UNIMPLEMENTED_FEATURE; \
	}
int gnutls_global_init(void);
int gnutls_global_init(void)
{
	return 0;
}
void gnutls_global_deinit(void);
void gnutls_global_deinit(void)
{
}
void *gnutls_session_get_ptr(void);
void *gnutls_session_get_ptr(void)
{
	return NULL;
}
const char *gnutls_strerror(int code);
const char *gnutls_strerror(int code)
{
	(void)code;
	return "TLS is not built into ember's HTTP server";
}
void *(*gnutls_malloc)(size_t) = malloc;
NO_TLS(gnutls_alpn_set_protocols)
NO_TLS(gnutls_bye)
NO_TLS(gnutls_certificate_allocate_credentials)
NO_TLS(gnutls_certificate_free_credentials)
NO_TLS(gnutls_certificate_server_set_request)
NO_TLS(gnutls_certificate_set_dh_params)
NO_TLS(gnutls_certificate_set_retrieve_function2)
NO_TLS(gnutls_certificate_set_retrieve_function3)
NO_TLS(gnutls_certificate_set_x509_key_mem)
NO_TLS(gnutls_certificate_set_x509_key_mem2)
NO_TLS(gnutls_certificate_set_x509_trust_mem)
NO_TLS(gnutls_cipher_get)
NO_TLS(gnutls_credentials_set)
NO_TLS(gnutls_deinit)
NO_TLS(gnutls_dh_params_deinit)
NO_TLS(gnutls_dh_params_import_pkcs3)
NO_TLS(gnutls_dh_params_init)
NO_TLS(gnutls_handshake)
NO_TLS(gnutls_init)
NO_TLS(gnutls_priority_deinit)
NO_TLS(gnutls_priority_init)
NO_TLS(gnutls_priority_set)
NO_TLS(gnutls_protocol_get_version)
NO_TLS(gnutls_psk_allocate_server_credentials)
NO_TLS(gnutls_psk_free_server_credentials)
NO_TLS(gnutls_psk_set_server_credentials_function)
NO_TLS(gnutls_record_check_pending)
NO_TLS(gnutls_record_get_direction)
NO_TLS(gnutls_record_recv)
NO_TLS(gnutls_record_send)
NO_TLS(gnutls_session_set_ptr)
NO_TLS(gnutls_transport_set_int2)
