/* runtime/cli/fn.c — `ember fn deploy|invoke|ls|rm|logs|invocations`: a client of `ember serve`'s
 * API (runtime/host/API.md) over its socket.
 *
 * Exit status: 0 ok; 1 the function failed (invoke: its error JSON on stderr); 2 anything else
 * (bad usage, no server, an API error: `ember fn invoke: <errorType>: <errorMessage>`). */
#include "runtime/cli/cli.h"
#include "common/cleanup.h"
#include "runtime/host/api.h"
#include "runtime/host/client.h"
#include "runtime/host/fnspec.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FN_EXIT_FUNCTION CLI_EXIT_STATUS(1)
#define FN_EXIT_ERROR CLI_EXIT_STATUS(2)

struct fn {
	struct cli *cli;
	const char *cmd;                 /* "fn" (NULL), or "snapshot": for messages */
	const char *sub;                 /* "invoke", for messages */
	const char *socket;
	struct em_client *client;
	bool json;                       /* --json: print the API's JSON as is */
};

static int fail(struct fn *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct fn *f, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ember %s %s: %s\n", f->cmd ? f->cmd : "fn", f->sub, msg);
	if (f->cli->log_to_file)
		em_error(&f->cli->log, "%s %s: %s", f->cmd ? f->cmd : "fn", f->sub, msg);
	return FN_EXIT_ERROR;
}

/* An API error: the body's errorType and errorMessage, or what came instead. */
static int api_fail(struct fn *f, const struct em_client_resp *r)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "errorType"));
	const char *msg = json_string_value(json_object_get(j, "errorMessage"));
	int ret;

	if (type && msg)
		ret = fail(f, "%s: %s", type, msg);
	else
		ret = fail(f, "HTTP %d %s: %.*s", r->status, r->reason, (int)(r->len > 200 ? 200 : r->len),
			   r->body);
	json_decref(j);
	return ret;
}

/* One request; 0, or an exit status (the failure is printed). */
static int call(struct fn *f, const char *method, const char *path, const char *ctype,
		const void *body, size_t len, struct em_client_resp *r)
{
	struct em_err err = { 0 };
	char addr[PATH_MAX];

	if (!f->client) {
		/* a bare file name is a socket in the current directory, not HOST:PORT */
		snprintf(addr, sizeof(addr), "%s%s",
			 strchr(f->socket, '/') || strchr(f->socket, ':') ? "" : "./", f->socket);
		if (em_client_open(addr, &f->client, &err) < 0)
			return fail(f, "%s (is `ember serve` running? --socket says where)", err.msg);
	}
	if (em_client_request(f->client, method, path, ctype, body, len, r, &err) < 0)
		return fail(f, "%s", err.msg);
	return 0;
}

static int check_name(struct fn *f, const char *name)
{
	if (!em_fn_name_valid(name))
		return fail(f, "invalid function name \"%s\" (1 to %d characters of A-Z a-z 0-9 _ -)",
			    name, EM_FN_NAME_MAX);
	return 0;
}

static int parse_limit(struct fn *f, const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s < '0' || *s > '9' || *end || v < 1 || v > 10000)
		return fail(f, "--limit: expected an integer from 1 to 10000, got \"%s\"", s);
	*out = (unsigned)v;
	return 0;
}

/* --- deploy */

/* A number option goes as a JSON integer if it is one, else as given: the host's validation
 * then says what is wrong with it, in the same words as for any other client. */
static json_t *number_or_string(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	return *s && !*end && !errno ? json_integer(v) : json_string(s);
}

/* Relative paths are the caller's: the server resolves nothing against its own directory. */
static json_t *abs_path(const char *p)
{
	char buf[PATH_MAX], cwd[PATH_MAX];

	if (p[0] == '/')
		return json_string(p);
	if (realpath(p, buf))
		return json_string(buf);
	if (!getcwd(cwd, sizeof(cwd)))
		return json_string(p);
	snprintf(buf, sizeof(buf), "%s/%s", cwd, p);
	return json_string(buf);
}

static int fn_deploy(struct fn *f, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bundle", required_argument, NULL, 'b' },
		{ "rootfs", required_argument, NULL, 'r' },
		{ "memory", required_argument, NULL, 'm' },
		{ "timeout", required_argument, NULL, 't' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "tmp-mb", required_argument, NULL, 'T' },
		{ "network", required_argument, NULL, 'n' },
		{ "template", required_argument, NULL, 'z' },
		{ "snapshot", required_argument, NULL, 'S' },
		{ "restore", required_argument, NULL, 'R' },
		{ "env", required_argument, NULL, 'e' },
		{ "socket", required_argument, NULL, 's' },
		{ 0 },
	};
	json_t *body = json_object(), *env = json_object();
	struct em_client_resp r;
	const char *rootfs = NULL;
	int c, ret = 0, dd;

	/* the command follows "--": options before it only */
	for (dd = 1; dd < argc && strcmp(argv[dd], "--"); dd++)
		;
	while (ret == 0 && (c = getopt_long(dd, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			json_object_set_new(body, "bundle", abs_path(optarg));
			break;
		case 'r':
			rootfs = optarg;
			json_object_set_new(body, "rootfs", abs_path(optarg));
			break;
		case 'm':
			json_object_set_new(body, "memoryMb", number_or_string(optarg));
			break;
		case 't':
			json_object_set_new(body, "timeoutMs", number_or_string(optarg));
			break;
		case 'c':
			json_object_set_new(body, "concurrency", number_or_string(optarg));
			break;
		case 'T':
			json_object_set_new(body, "tmpMb", number_or_string(optarg));
			break;
		case 'n':
			json_object_set_new(body, "network", json_string(optarg));
			break;
		case 'z':
			json_object_set_new(body, "template", json_string(optarg));
			break;
		case 'S':
			json_object_set_new(body, "snapshot", json_string(optarg));
			break;
		case 'R':
			json_object_set_new(body, "restore", json_string(optarg));
			break;
		case 'e': {
			const char *eq = strchr(optarg, '=');

			if (!eq || eq == optarg) {
				ret = fail(f, "--env: expected NAME=VALUE, got \"%s\"", optarg);
				break;
			}
			char key[256];
			snprintf(key, sizeof(key), "%.*s", (int)(eq - optarg), optarg);
			json_object_set_new(env, key, json_string(eq + 1));
			break;
		}
		case 's':
			f->socket = optarg;
			break;
		default:
			ret = fail(f, "invalid option (see ember fn --help)");
		}
	}
	if (ret == 0 && optind >= dd)
		ret = fail(f, "missing the function name");
	else if (ret == 0 && optind < dd - 1)
		ret = fail(f, "unexpected argument \"%s\" (a command goes after --)", argv[optind + 1]);
	if (ret == 0 && rootfs && dd >= argc - 1)
		ret = fail(f, "--rootfs needs the command after --: --rootfs DIR -- CMD [ARG...]");
	if (ret == 0 && !rootfs && dd < argc)
		ret = fail(f, "a command after -- needs --rootfs (a bundle has its own)");
	if (ret == 0)
		ret = check_name(f, argv[optind]);
	if (ret) {
		json_decref(body);
		json_decref(env);
		return ret;
	}
	if (rootfs) {
		json_t *cmd = json_array();

		for (int i = dd + 1; i < argc; i++)
			json_array_append_new(cmd, json_string(argv[i]));
		json_object_set_new(body, "command", cmd);
	}
	if (json_object_size(env))
		json_object_set_new(body, "environment", env);
	else
		json_decref(env);

	char path[128], *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text)
		return fail(f, "out of memory");
	snprintf(path, sizeof(path), "/v1/functions/%s", argv[optind]);
	ret = call(f, "PUT", path, "application/json", text, strlen(text), &r);
	free(text);
	if (ret)
		return ret;
	if (r.status != 200 && r.status != 201)
		return api_fail(f, &r);
	printf("%.*s", (int)r.len, r.body);
	return 0;
}

/* --- invoke */

static int read_stdin(struct fn *f, char **out, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *b = malloc(cap);

	for (;;) {
		if (!b)
			return fail(f, "read stdin: out of memory");
		ssize_t r = read(STDIN_FILENO, b + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(b);
			return fail(f, "read stdin: %s", strerror(errno));
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap) {
			char *nb = realloc(b, cap *= 2);

			if (!nb)
				free(b);
			b = nb;
		}
	}
	*out = b;
	*len = n;
	return 0;
}

static int fn_invoke(struct fn *f, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "socket", required_argument, NULL, 's' },
		{ 0 },
	};
	cleanup_free char *data = NULL;
	struct em_client_resp r;
	bool verbose = false;
	const char *body = "";
	size_t len = 0;
	int c, ret;

	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		if (c == 'v')
			verbose = true;
		else if (c == 's')
			f->socket = optarg;
		else
			return fail(f, "invalid option (see ember fn --help)");
	}
	if (argc - optind < 1)
		return fail(f, "missing the function name");
	if (argc - optind > 2)
		return fail(f, "unexpected argument \"%s\"", argv[optind + 2]);
	if ((ret = check_name(f, argv[optind])))
		return ret;
	if (argc - optind == 2) {
		if (!strcmp(argv[optind + 1], "-")) {
			if ((ret = read_stdin(f, &data, &len)))
				return ret;
			body = data;
		} else {
			body = argv[optind + 1];
			len = strlen(body);
		}
	}
	char path[128];
	snprintf(path, sizeof(path), "/v1/functions/%s/invoke", argv[optind]);
	if ((ret = call(f, "POST", path, NULL, body, len, &r)))
		return ret;
	if (verbose) {
		fprintf(stderr, "HTTP/1.1 %d %s\n", r.status, r.reason);
		for (size_t i = 0; i < em_client_header_count(f->client); i++) {
			const char *k, *v;

			em_client_header_at(f->client, i, &k, &v);
			fprintf(stderr, "%s: %s\n", k, v);
		}
	}
	if (r.status == 200) {
		if (fwrite(r.body, 1, r.len, stdout) != r.len || fflush(stdout) != 0)
			return fail(f, "write the output: %s", strerror(errno));
		return 0;
	}
	if (em_client_header(f->client, "Ember-Function-Error")) {
		/* the function failed, not the API: its error JSON, as the host gave it */
		fwrite(r.body, 1, r.len, stderr);
		if (!r.len || r.body[r.len - 1] != '\n')
			fputc('\n', stderr);
		return FN_EXIT_FUNCTION;
	}
	return api_fail(f, &r);
}

/* --- ls, rm */

static int no_args(struct fn *f, int argc, char **argv, int want, const char *what)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			f->socket = optarg;
		else if (c == 'j')
			f->json = true;
		else
			return fail(f, "invalid option (see ember fn --help)");
	}
	if (argc - optind < want)
		return fail(f, "missing %s", what);
	if (argc - optind > want)
		return fail(f, "unexpected argument \"%s\"", argv[optind + want]);
	return want ? check_name(f, argv[optind]) : 0;
}

/* A field of a function's description: top level, or under "config" (the spec's keys). */
static json_t *desc_get(json_t *d, const char *key)
{
	json_t *v = json_object_get(d, key);

	return v ? v : json_object_get(json_object_get(d, "config"), key);
}

/* The instance count, whatever shape the host gives it: a number, an array, or an object of
 * counts (by state). */
static long long count_of(json_t *v)
{
	const char *k;
	json_t *x;
	long long n = 0;

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_array(v))
		return (long long)json_array_size(v);
	if (json_is_object(v)) {
		json_object_foreach(v, k, x)
			if (json_is_integer(x))
				n += json_integer_value(x);
		return n;
	}
	return -1;
}

static int fn_ls(struct fn *f, int argc, char **argv)
{
	struct em_client_resp r;
	json_t *j, *d;
	size_t i;
	int ret = no_args(f, argc, argv, 0, NULL);

	if (ret || (ret = call(f, "GET", "/v1/functions", NULL, NULL, 0, &r)))
		return ret;
	if (r.status != 200)
		return api_fail(f, &r);
	if (f->json) {
		printf("%.*s", (int)r.len, r.body);
		return 0;
	}
	j = json_loadb(r.body, r.len, 0, NULL);
	if (!json_is_array(j)) {
		json_decref(j);
		return fail(f, "unexpected answer: %.200s", r.body);
	}
	printf("%-32s %-8s %-8s %-9s %-11s %-9s %s\n", "NAME", "VERSION", "MEMORY", "TIMEOUT",
	       "CONCURRENCY", "INSTANCES", "TEMPLATE");
	json_array_foreach(j, i, d) {
		char mem[32] = "-", tmo[32] = "-", conc[32] = "-", inst[32] = "-", ver[32] = "-";
		json_t *t = json_object_get(d, "template");
		const char *tstate = json_string_value(json_object_get(t, "state")) ?: "-";
		char tmpl[64];
		json_t *v;
		long long n;

		if ((v = desc_get(d, "version")) && json_is_integer(v))
			snprintf(ver, sizeof(ver), "%lld", json_integer_value(v));
		if ((v = desc_get(d, "memoryMb")) && json_is_integer(v))
			snprintf(mem, sizeof(mem), "%lldMB", json_integer_value(v));
		if ((v = desc_get(d, "timeoutMs")) && json_is_integer(v))
			snprintf(tmo, sizeof(tmo), "%lldms", json_integer_value(v));
		if ((v = desc_get(d, "concurrency")) && json_is_integer(v) && json_integer_value(v))
			snprintf(conc, sizeof(conc), "%lld", json_integer_value(v));
		if ((n = count_of(desc_get(d, "instances"))) >= 0)
			snprintf(inst, sizeof(inst), "%lld", n);
		/* "ready (pid N)": the process an operator looks for; "none" until one is made */
		if (json_is_integer(json_object_get(t, "pid")))
			snprintf(tmpl, sizeof(tmpl), "%s (pid %lld)", tstate,
				 json_integer_value(json_object_get(t, "pid")));
		else
			snprintf(tmpl, sizeof(tmpl), "%s", tstate);
		printf("%-32s %-8s %-8s %-9s %-11s %-9s %s\n",
		       json_string_value(json_object_get(d, "name")) ?: "?", ver, mem, tmo, conc, inst,
		       tmpl);
	}
	json_decref(j);
	return 0;
}

static int fn_rm(struct fn *f, int argc, char **argv)
{
	struct em_client_resp r;
	char path[128];
	int ret = no_args(f, argc, argv, 1, "the function name");

	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/v1/functions/%s", argv[optind]);
	if ((ret = call(f, "DELETE", path, NULL, NULL, 0, &r)))
		return ret;
	return r.status == 204 || r.status == 200 ? 0 : api_fail(f, &r);
}

/* --- logs, invocations */

/* Query-string encoding: unreserved characters as is, the rest %XX. */
static void url_encode(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s && n + 4 < cap; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			out[n++] = (char)ch;
		} else {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	out[n] = '\0';
}

/* A record's time: milliseconds since the epoch shown as UTC, or a string as is. */
static void fmt_time(json_t *v, char *buf, size_t cap)
{
	if (json_is_integer(v)) {
		long long ms = json_integer_value(v);
		time_t t = (time_t)(ms / 1000);
		struct tm tm;

		gmtime_r(&t, &tm);
		size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(buf + n, cap - n, ".%03lldZ", ms % 1000);
	} else {
		snprintf(buf, cap, "%s", json_string_value(v) ?: "-");
	}
}

static int query_opts(struct fn *f, int argc, char **argv, const char **request_id,
		      unsigned *limit)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "limit", required_argument, NULL, 'n' },
		{ "request-id", required_argument, NULL, 'r' },
		{ 0 },
	};
	int c, ret;

	while ((c = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		if (c == 's')
			f->socket = optarg;
		else if (c == 'j')
			f->json = true;
		else if (c == 'n' && (ret = parse_limit(f, optarg, limit)))
			return ret;
		else if (c == 'r' && request_id)
			*request_id = optarg;
		else if (c != 'n')
			return fail(f, "invalid option (see ember fn --help)");
	}
	if (argc - optind < 1)
		return fail(f, "missing the function name");
	if (argc - optind > 1)
		return fail(f, "unexpected argument \"%s\"", argv[optind + 1]);
	return check_name(f, argv[optind]);
}

/* GET a query route; *out: its array (NULL with --json: printed as is). */
static int get_records(struct fn *f, const char *path, json_t **out)
{
	struct em_client_resp r;
	int ret = call(f, "GET", path, NULL, NULL, 0, &r);

	if (ret)
		return ret;
	if (r.status != 200)
		return api_fail(f, &r);
	if (f->json) {
		printf("%.*s", (int)r.len, r.body);
		*out = NULL;
		return 0;
	}
	*out = json_loadb(r.body, r.len, 0, NULL);
	if (!json_is_array(*out)) {
		json_decref(*out);
		return fail(f, "unexpected answer: %.200s", r.body);
	}
	return 0;
}

static int fn_logs(struct fn *f, int argc, char **argv)
{
	const char *request_id = NULL;
	unsigned limit = 0;
	char path[512], enc[256];
	json_t *a, *e;
	int ret = query_opts(f, argc, argv, &request_id, &limit);

	if (ret)
		return ret;
	int n = snprintf(path, sizeof(path), "/v1/functions/%s/logs", argv[optind]);
	if (request_id) {
		url_encode(enc, sizeof(enc), request_id);
		n += snprintf(path + n, sizeof(path) - (size_t)n, "?requestId=%s", enc);
	}
	if (limit)
		snprintf(path + n, sizeof(path) - (size_t)n, "%slimit=%u", request_id ? "&" : "?",
			 limit);
	if ((ret = get_records(f, path, &a)) || !a)
		return ret;
	/* the API gives newest first; a log reads oldest first */
	for (size_t i = json_array_size(a); i-- > 0;) {
		char when[64];
		const char *log;
		size_t len;

		e = json_array_get(a, i);
		fmt_time(json_object_get(e, "time"), when, sizeof(when));
		log = json_string_value(json_object_get(e, "log")) ?: "";
		len = json_string_length(json_object_get(e, "log"));
		printf("--- %s %s\n", json_string_value(json_object_get(e, "requestId")) ?: "-", when);
		fwrite(log, 1, len, stdout);
		if (len && log[len - 1] != '\n')
			putchar('\n');
	}
	json_decref(a);
	return 0;
}

static void fmt_num(json_t *v, char *buf, size_t cap)
{
	if (json_is_integer(v))
		snprintf(buf, cap, "%lld", json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, cap, "%.3f", json_real_value(v));
	else
		snprintf(buf, cap, "-");
}

static int fn_invocations(struct fn *f, int argc, char **argv)
{
	unsigned limit = 0;
	char path[256];
	json_t *a, *e;
	size_t i;
	int ret = query_opts(f, argc, argv, NULL, &limit);

	if (ret)
		return ret;
	int n = snprintf(path, sizeof(path), "/v1/functions/%s/invocations", argv[optind]);
	if (limit)
		snprintf(path + n, sizeof(path) - (size_t)n, "?limit=%u", limit);
	if ((ret = get_records(f, path, &a)) || !a)
		return ret;
	printf("%-36s %-24s %-7s %-8s %-10s %-11s %-9s %-9s %s\n", "REQUEST ID", "TIME", "START",
	       "OUTCOME", "INIT MS", "DURATION MS", "BILLED MS", "CPU MS", "MAX MEM MB");
	json_array_foreach(a, i, e) {
		char when[64], init[32], dur[32], billed[32], cpu[32], mem[32];

		fmt_time(json_object_get(e, "time"), when, sizeof(when));
		fmt_num(json_object_get(e, "initMs"), init, sizeof(init));
		fmt_num(json_object_get(e, "durationMs"), dur, sizeof(dur));
		fmt_num(json_object_get(e, "billedMs"), billed, sizeof(billed));
		fmt_num(json_object_get(e, "cpuMs"), cpu, sizeof(cpu));
		fmt_num(json_object_get(e, "maxMemoryMb"), mem, sizeof(mem));
		printf("%-36s %-24s %-7s %-8s %-10s %-11s %-9s %-9s %s\n",
		       json_string_value(json_object_get(e, "requestId")) ?: "-", when,
		       json_string_value(json_object_get(e, "start")) ?: "-",
		       json_string_value(json_object_get(e, "outcome")) ?: "-", init, dur, billed,
		       cpu, mem);
	}
	json_decref(a);
	return 0;
}

/* --- snapshots: `ember snapshot create|restore NAME` */

int cmd_fn_snapshot(struct cli *cli, const char *what, int argc, char **argv)
{
	static const struct option opts[] = { { "socket", required_argument, NULL, 's' },
					      { "json", no_argument, NULL, 'j' }, { 0 } };
	struct fn f = { .cli = cli, .cmd = "snapshot", .sub = what,
			.socket = EM_API_SOCKET_DEFAULT };
	bool create = !strcmp(what, "create");
	struct em_client_resp r;
	char path[128];
	json_t *j;
	int c, ret = 0;

	optind = 0;
	while (ret == 0 && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			f.socket = optarg;
		else if (c == 'j')
			f.json = true;
		else
			ret = fail(&f, "invalid option (usage: ember snapshot %s NAME [--socket PATH] "
				   "[--json])", what);
	}
	if (ret == 0 && optind != argc - 1)
		ret = fail(&f, "expected one function name (usage: ember snapshot %s NAME)", what);
	if (ret == 0)
		ret = check_name(&f, argv[optind]);
	if (ret == 0) {
		snprintf(path, sizeof(path), "/v1/functions/%s/%s", argv[optind],
			 create ? "snapshot" : "restore");
		ret = call(&f, "POST", path, NULL, NULL, 0, &r);
	}
	if (ret == 0 && r.status != 200)
		ret = api_fail(&f, &r);
	if (ret == 0 && f.json) {
		printf("%.*s\n", (int)r.len, r.body);
	} else if (ret == 0) {
		j = json_loadb(r.body, r.len, 0, NULL);
		if (create)
			printf("%s version %lld: %s, %.1f MB (%lld pages stored, %lld zero, %lld "
			       "untouched), %.1f ms\n", argv[optind],
			       json_integer_value(json_object_get(j, "version")),
			       json_string_value(json_object_get(j, "image")),
			       (double)json_integer_value(json_object_get(j, "bytes")) / 1048576.0,
			       json_integer_value(json_object_get(j, "pagesStored")),
			       json_integer_value(json_object_get(j, "pagesZero")),
			       json_integer_value(json_object_get(j, "pagesUntouched")),
			       json_number_value(json_object_get(j, "stateMs")) +
			       json_number_value(json_object_get(j, "dumpMs")));
		else
			printf("%s version %lld: template %s (pid %lld) restored from %s in %.1f ms\n",
			       argv[optind], json_integer_value(json_object_get(j, "version")),
			       json_string_value(json_object_get(j, "template")),
			       json_integer_value(json_object_get(j, "pid")),
			       json_string_value(json_object_get(j, "image")),
			       json_number_value(json_object_get(j, "restoreMs")));
		json_decref(j);
	}
	em_client_close(f.client);
	return ret;
}

/* --- dispatch */

static const struct {
	const char *name, *usage;
	int (*run)(struct fn *, int, char **);
} subs[] = {
	{ "deploy", "NAME (--bundle DIR | --rootfs DIR -- CMD [ARG...]) [--memory MB] "
		    "[--timeout MS] [--concurrency N] [--tmp-mb N] [--network none|bridge] "
		    "[--template auto|provisioned|off] [--snapshot off|auto|provisioned] "
		    "[--restore mmap|eager|lazy] "
		    "[--env K=V]...", fn_deploy },
	{ "invoke", "NAME [DATA|-] [--verbose]", fn_invoke },
	{ "ls", "[--json]", fn_ls },
	{ "rm", "NAME", fn_rm },
	{ "logs", "NAME [--request-id ID] [--limit N] [--json]", fn_logs },
	{ "invocations", "NAME [--limit N] [--json]", fn_invocations },
};

static void fn_usage(FILE *out)
{
	fprintf(out, "usage:\n");
	for (size_t i = 0; i < EM_ARRAY_SIZE(subs); i++)
		fprintf(out, "  ember fn %s %s\n", subs[i].name, subs[i].usage);
	fprintf(out, "every command takes --socket PATH (default %s, or 127.0.0.1:PORT)\n"
		     "exit status: 0 ok, 1 the function failed, 2 any other error\n",
		EM_API_SOCKET_DEFAULT);
}

int cmd_fn(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	struct fn f = { .cli = cli, .socket = EM_API_SOCKET_DEFAULT };
	int ret;

	(void)err;
	if (argc < 2) {
		fn_usage(stderr);
		return FN_EXIT_ERROR;
	}
	for (size_t i = 0; i < EM_ARRAY_SIZE(subs); i++) {
		if (strcmp(argv[1], subs[i].name))
			continue;
		f.sub = subs[i].name;
		if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			printf("usage: ember fn %s %s [--socket PATH]\n", subs[i].name, subs[i].usage);
			return 0;
		}
		/* 0, not 1: GNU getopt then starts over and permutes (options may follow the
		 * name), where main's parse left it stopping at the first argument */
		optind = 0;
		ret = subs[i].run(&f, argc - 1, argv + 1);
		em_client_close(f.client);
		return ret;
	}
	fprintf(stderr, "ember fn: unknown command \"%s\"\n", argv[1]);
	fn_usage(stderr);
	return FN_EXIT_ERROR;
}
