/* tests/host/test_ledger.c — the host's ledger against a real sqlite file: exact round trips,
 * order and limits, the log cut, survival of a kill -9 of the writer, functions, and errors that
 * name the file. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "runtime/host/ledger.h"

#define LOG_MAX (64 * 1024)
#define MARKER "\xe2\x80\xa6[cut "

static char dir[] = "/tmp/ember-test-ledger-XXXXXX";
static char db[256];

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/ledger.db", dir);
}

static void teardown(void)
{
	struct em_err err;

	em_rm_rf_at(AT_FDCWD, dir, &err);
}

TestSuite(ledger, .init = setup, .fini = teardown);

static struct em_ledger *open_ok(void)
{
	struct em_err err = { 0 };
	struct em_ledger *l = NULL;

	cr_assert_eq(em_ledger_open(db, &l, &err), 0, "%s", err.msg);
	cr_assert_not_null(l);
	return l;
}

static struct em_ledger_rec rec(const char *id, const char *fn, int64_t time_ms)
{
	return (struct em_ledger_rec){
		.request_id = id, .function = fn, .version = 1, .time_ms = time_ms,
		.start = "warm", .outcome = "ok", .log = "", .log_len = 0,
	};
}

static void add_ok(struct em_ledger *l, const struct em_ledger_rec *r)
{
	struct em_err err = { 0 };

	cr_assert_eq(em_ledger_add(l, r, &err), 0, "%s", err.msg);
}

static json_t *query_ok(struct em_ledger *l, const char *fn, unsigned limit)
{
	struct em_err err = { 0 };
	json_t *a = NULL;

	cr_assert_eq(em_ledger_query(l, fn, limit, &a, &err), 0, "%s", err.msg);
	cr_assert(json_is_array(a));
	return a;
}

static json_t *logs_ok(struct em_ledger *l, const char *fn, const char *id, unsigned limit)
{
	struct em_err err = { 0 };
	json_t *a = NULL;

	cr_assert_eq(em_ledger_logs(l, fn, id, limit, &a, &err), 0, "%s", err.msg);
	cr_assert(json_is_array(a));
	return a;
}

static const char *str_at(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	cr_assert(json_is_string(v), "%s is not a string", k);
	return json_string_value(v);
}

static json_int_t int_at(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	cr_assert(json_is_integer(v), "%s is not an integer", k);
	return json_integer_value(v);
}

static double real_at(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	cr_assert(json_is_real(v), "%s is not a real", k);
	return json_real_value(v);
}

Test(ledger, add_query_round_trip_exact)
{
	struct em_ledger *l = open_ok();
	struct em_ledger_rec r = {
		.request_id = "9f1c2d3e-0000-4000-8000-000000000001",
		.function = "thumbnail",
		.version = 7,
		.time_ms = 1700000000123,
		.start = "cold",
		.outcome = "error",
		.error_type = "Function.Error",
		.init_ns = 1234567,          /* 1.2346 ms: rounds to 1.235 */
		.wall_ns = 45678401,         /* 45.6784: rounds to 45.678 */
		.cpu_ns = 12345000,
		.billed_ms = 46,
		.memory_mb = 256,
		.mem_peak_bytes = 25 * 1048576 + 1, /* a byte into the 26th MB */
		.mb_ms = 11776,
		.latency_ns = 50000000,
		.bill_flags = 0x9,
		.log = "START\nboom\n",
		.log_len = 11,
	};
	json_t *a, *o;

	add_ok(l, &r);
	a = query_ok(l, "thumbnail", 0);
	cr_assert_eq(json_array_size(a), 1);
	o = json_array_get(a, 0);
	cr_assert_str_eq(str_at(o, "requestId"), r.request_id);
	cr_assert_str_eq(str_at(o, "function"), "thumbnail");
	cr_assert_eq(int_at(o, "version"), 7);
	cr_assert_eq(int_at(o, "time"), 1700000000123);
	cr_assert_str_eq(str_at(o, "start"), "cold");
	cr_assert_str_eq(str_at(o, "outcome"), "error");
	cr_assert_str_eq(str_at(o, "errorType"), "Function.Error");
	cr_assert_eq(real_at(o, "initMs"), 1.235);
	cr_assert_eq(real_at(o, "durationMs"), 45.678);
	cr_assert_eq(real_at(o, "cpuMs"), 12.345);
	cr_assert_eq(real_at(o, "latencyMs"), 50.0);
	cr_assert_eq(int_at(o, "billedMs"), 46);
	cr_assert_eq(int_at(o, "memoryMb"), 256);
	cr_assert_eq(int_at(o, "maxMemoryMb"), 26);
	cr_assert_eq(int_at(o, "mbMs"), 11776);
	cr_assert_eq(int_at(o, "flags"), 9);
	cr_assert_eq(json_object_size(o), 16, "unexpected keys: %zu", json_object_size(o));

	/* the values are the doubles nearest the 3-decimal ms: dumped with 15 significant digits
	 * (plenty for 15 minutes in ms), the JSON text shows exactly those 3 decimals */
	char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	cr_assert(strstr(text, "\"initMs\":1.235,"), "%s", text);
	cr_assert(strstr(text, "\"durationMs\":45.678,"), "%s", text);
	free(text);
	json_decref(a);

	a = logs_ok(l, "thumbnail", r.request_id, 0);
	cr_assert_eq(json_array_size(a), 1);
	o = json_array_get(a, 0);
	cr_assert_str_eq(str_at(o, "requestId"), r.request_id);
	cr_assert_eq(int_at(o, "time"), 1700000000123);
	cr_assert_str_eq(str_at(o, "log"), "START\nboom\n");
	json_decref(a);

	/* ok: errorType is null; another function sees nothing of thumbnail's */
	struct em_ledger_rec ok = rec("req-ok", "thumbnail", 1700000000200);
	add_ok(l, &ok);
	a = query_ok(l, "thumbnail", 1);
	cr_assert(json_is_null(json_object_get(json_array_get(a, 0), "errorType")));
	json_decref(a);
	a = query_ok(l, "other", 0);
	cr_assert_eq(json_array_size(a), 0);
	json_decref(a);
	a = logs_ok(l, "other", r.request_id, 0);
	cr_assert_eq(json_array_size(a), 0, "a request of thumbnail shown under other");
	json_decref(a);
	em_ledger_close(l);
}

Test(ledger, newest_first_and_limit)
{
	struct em_ledger *l = open_ok();
	/* arrival times out of insertion order, two equal: equal ones show the later insert first */
	static const struct { const char *id; int64_t t; } in[] = {
		{ "r1", 1000 }, { "r2", 3000 }, { "r3", 2000 }, { "r4", 3000 }, { "r5", 500 },
	};
	static const char *const want[] = { "r4", "r2", "r3", "r1", "r5" };
	json_t *a;

	for (size_t i = 0; i < 5; i++) {
		struct em_ledger_rec r = rec(in[i].id, "f", in[i].t);
		add_ok(l, &r);
		if (i < 2) { /* another function's records in between */
			r = rec(i ? "g-2" : "g-1", "g", 99999);
			add_ok(l, &r);
		}
	}
	a = query_ok(l, "f", 0);
	cr_assert_eq(json_array_size(a), 5);
	for (size_t i = 0; i < 5; i++)
		cr_assert_str_eq(str_at(json_array_get(a, i), "requestId"), want[i], "row %zu", i);
	json_decref(a);

	a = query_ok(l, "f", 3);
	cr_assert_eq(json_array_size(a), 3);
	for (size_t i = 0; i < 3; i++)
		cr_assert_str_eq(str_at(json_array_get(a, i), "requestId"), want[i]);
	json_decref(a);

	a = logs_ok(l, "f", NULL, 2);
	cr_assert_eq(json_array_size(a), 2);
	cr_assert_str_eq(str_at(json_array_get(a, 0), "requestId"), "r4");
	cr_assert_str_eq(str_at(json_array_get(a, 1), "requestId"), "r2");
	json_decref(a);

	a = query_ok(l, "g", 0);
	cr_assert_eq(json_array_size(a), 2);
	json_decref(a);
	em_ledger_close(l);
}

Test(ledger, limit_zero_is_100)
{
	struct em_ledger *l = open_ok();
	char id[32];
	json_t *a;

	for (int i = 0; i < 130; i++) {
		snprintf(id, sizeof(id), "req-%03d", i);
		struct em_ledger_rec r = rec(id, "f", 1000 + i);
		add_ok(l, &r);
	}
	a = query_ok(l, "f", 0);
	cr_assert_eq(json_array_size(a), 100);
	cr_assert_str_eq(str_at(json_array_get(a, 0), "requestId"), "req-129");
	cr_assert_str_eq(str_at(json_array_get(a, 99), "requestId"), "req-030");
	json_decref(a);
	a = query_ok(l, "f", 1000);
	cr_assert_eq(json_array_size(a), 130);
	json_decref(a);
	em_ledger_close(l);
}

Test(ledger, duplicate_request_id_is_eexist)
{
	struct em_ledger *l = open_ok();
	struct em_ledger_rec r = rec("dup-1", "f", 1);
	struct em_err err = { 0 };

	add_ok(l, &r);
	cr_assert_eq(em_ledger_add(l, &r, &err), -EEXIST);
	cr_assert(strstr(err.msg, "dup-1") && strstr(err.msg, db), "%s", err.msg);
	/* the statement is usable again after the failure */
	r.request_id = "dup-2";
	add_ok(l, &r);
	json_t *a = query_ok(l, "f", 0);
	cr_assert_eq(json_array_size(a), 2);
	json_decref(a);
	em_ledger_close(l);
}

/* The stored log of a record, as the JSON shows it (malloc'd). */
static char *stored_log(struct em_ledger *l, const char *id, size_t *len)
{
	json_t *a = logs_ok(l, "f", id, 0);
	json_t *v;
	char *s;

	cr_assert_eq(json_array_size(a), 1);
	v = json_object_get(json_array_get(a, 0), "log");
	cr_assert(json_is_string(v));
	*len = json_string_length(v);
	s = malloc(*len + 1);
	memcpy(s, json_string_value(v), *len + 1);
	json_decref(a);
	return s;
}

Test(ledger, log_cut_at_64k_with_marker)
{
	struct em_ledger *l = open_ok();
	/* "a" then "€" (3 bytes) over and over: the half-way cut falls inside a character */
	size_t n = 1 + 3 * 40000, len, head, tail, cut;
	char *big = malloc(n), *s, *m, *end;

	big[0] = 'a';
	for (size_t i = 1; i < n; i += 3)
		memcpy(big + i, "\xe2\x82\xac", 3);
	big[n - 3] = 'E', big[n - 2] = 'N', big[n - 1] = 'D'; /* a recognisable end */
	struct em_ledger_rec r = rec("big", "f", 1);
	r.log = big;
	r.log_len = n;
	add_ok(l, &r);

	s = stored_log(l, "big", &len);
	cr_assert_leq(len, LOG_MAX);
	cr_assert_geq(len, LOG_MAX - 64, "cut far below 64 KB: %zu", len);
	m = strstr(s, MARKER);
	cr_assert_not_null(m, "no marker");
	cr_assert_null(strstr(m + 1, MARKER), "two markers");
	cut = strtoul(m + strlen(MARKER), &end, 10);
	cr_assert_eq(strncmp(end, " bytes]", 7), 0, "%.40s", m);
	head = (size_t)(m - s);
	tail = len - (size_t)(end + 7 - s);
	/* the head is the log's start, the tail its end, and N counts exactly what is between */
	cr_assert_eq(memcmp(s, big, head), 0);
	cr_assert_eq(memcmp(end + 7, big + n - tail, tail), 0);
	cr_assert_eq(head + cut + tail, n, "head %zu + cut %zu + tail %zu != %zu", head, cut, tail,
		     n);
	/* cut on character boundaries: the head is "a" and whole "€"s, the tail whole ones too */
	cr_assert_eq((head - 1) % 3, 0, "head %zu splits a character", head);
	cr_assert_eq(tail % 3, 0, "tail %zu splits a character", tail);
	cr_assert_str_eq(s + len - 3, "END");
	free(s);

	/* exactly 64 KB is kept whole */
	memset(big, 'x', LOG_MAX);
	r.request_id = "exact";
	r.log_len = LOG_MAX;
	add_ok(l, &r);
	s = stored_log(l, "exact", &len);
	cr_assert_eq(len, LOG_MAX);
	cr_assert_null(strstr(s, MARKER));
	free(s);
	free(big);
	em_ledger_close(l);
}

Test(ledger, log_bytes_that_are_not_utf8)
{
	struct em_ledger *l = open_ok();
	static const char raw[] = "ok \xff\xfe then \xc3\xa9 and a NUL \0 end";
	struct em_ledger_rec r = rec("bin", "f", 1);
	size_t len;
	char *s;

	r.log = raw;
	r.log_len = sizeof(raw) - 1;
	add_ok(l, &r);
	s = stored_log(l, "bin", &len);
	static const char want[] = "ok \xef\xbf\xbd\xef\xbf\xbd then \xc3\xa9 and a NUL \0 end";
	cr_assert_eq(len, sizeof(want) - 1, "%zu", len);
	cr_assert_eq(memcmp(s, want, len), 0);
	free(s);
	em_ledger_close(l);
}

/* A writer that dies by SIGKILL right after its commits: nothing of it runs after the adds (no
 * close, no checkpoint, no atexit). */
Test(ledger, committed_records_survive_kill9_of_the_writer)
{
	char wal[300];
	struct stat st;
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct em_err err = { 0 };
		struct em_ledger *l;
		char id[32];

		if (em_ledger_open(db, &l, &err) < 0)
			_exit(2);
		for (int i = 0; i < 50; i++) {
			snprintf(id, sizeof(id), "killed-%02d", i);
			struct em_ledger_rec r = rec(id, "f", 1000 + i);
			r.billed_ms = (uint64_t)i;
			r.log = "last words";
			r.log_len = 10;
			if (em_ledger_add(l, &r, &err) < 0)
				_exit(3);
		}
		raise(SIGKILL);
		_exit(4);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "writer status %#x", status);

	/* the records are in the WAL, not yet in the database: the reopen must recover them */
	snprintf(wal, sizeof(wal), "%s-wal", db);
	cr_assert_eq(stat(wal, &st), 0, "no WAL after the kill");
	cr_assert_gt(st.st_size, 0);

	struct em_ledger *l = open_ok();
	json_t *a = query_ok(l, "f", 0);
	cr_assert_eq(json_array_size(a), 50);
	cr_assert_str_eq(str_at(json_array_get(a, 0), "requestId"), "killed-49");
	cr_assert_eq(int_at(json_array_get(a, 0), "billedMs"), 49);
	cr_assert_str_eq(str_at(json_array_get(a, 49), "requestId"), "killed-00");
	json_decref(a);
	a = logs_ok(l, "f", "killed-49", 0);
	cr_assert_str_eq(str_at(json_array_get(a, 0), "log"), "last words");
	json_decref(a);
	em_ledger_close(l);
}

/* Checkpoints run on the ledger's own thread; a stream of adds faster than it must still not
 * grow the WAL without bound (the commit checkpoints itself from ~16 MB). */
Test(ledger, wal_stays_bounded_under_sustained_adds)
{
	struct em_ledger *l = open_ok();
	size_t n = 60 * 1024, max_wal = 0;
	char *big = malloc(n), wal[300], id[32];
	struct stat st;

	memset(big, 'w', n);
	snprintf(wal, sizeof(wal), "%s-wal", db);
	for (int i = 0; i < 800; i++) {
		snprintf(id, sizeof(id), "w-%d", i);
		struct em_ledger_rec r = rec(id, "f", i);
		r.log = big;
		r.log_len = n;
		add_ok(l, &r);
		cr_assert_eq(stat(wal, &st), 0);
		if ((size_t)st.st_size > max_wal)
			max_wal = (size_t)st.st_size;
	}
	/* 800 adds wrote ~50 MB of frames; 4000 pages of 4 KB and their headers, one add over */
	cr_assert_lt(max_wal, 18u << 20, "WAL grew to %zu bytes", max_wal);
	free(big);
	json_t *a = query_ok(l, "f", 1000);
	cr_assert_eq(json_array_size(a), 800);
	json_decref(a);
	em_ledger_close(l);
}

struct adder {
	struct em_ledger *l;
	int t;
	int failed;
};

static void *add_many(void *p)
{
	struct adder *a = p;
	struct em_err err = { 0 };
	char id[32];

	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "t%d-%d", a->t, i);
		struct em_ledger_rec r = rec(id, "f", i);
		if (em_ledger_add(a->l, &r, &err) < 0)
			a->failed++;
	}
	return NULL;
}

Test(ledger, adds_from_threads)
{
	struct em_ledger *l = open_ok();
	struct adder ad[4];
	pthread_t th[4];

	for (int t = 0; t < 4; t++) {
		ad[t] = (struct adder){ .l = l, .t = t };
		cr_assert_eq(pthread_create(&th[t], NULL, add_many, &ad[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		cr_assert_eq(ad[t].failed, 0);
	}
	json_t *a = query_ok(l, "f", 10000);
	cr_assert_eq(json_array_size(a), 800);
	json_decref(a);
	em_ledger_close(l);
}

Test(ledger, functions_put_del_all)
{
	struct em_ledger *l = open_ok();
	struct em_err err = { 0 };
	json_t *a, *o;

	cr_assert_eq(em_ledger_fn_put(l, "b", 1, "{\"memoryMb\":128}", &err), 0, "%s", err.msg);
	cr_assert_eq(em_ledger_fn_put(l, "a", 1, "{\"memoryMb\":256}", &err), 0, "%s", err.msg);
	cr_assert_eq(em_ledger_fn_put(l, "a", 2, "{\"memoryMb\":512,\"command\":[\"x\"]}", &err), 0,
		     "%s", err.msg);
	cr_assert_eq(em_ledger_fn_all(l, &a, &err), 0, "%s", err.msg);
	cr_assert_eq(json_array_size(a), 2);
	o = json_array_get(a, 0);
	cr_assert_str_eq(str_at(o, "name"), "a");
	cr_assert_eq(int_at(o, "version"), 2);
	cr_assert(json_is_object(json_object_get(o, "spec")), "spec is not an object");
	cr_assert_eq(int_at(json_object_get(o, "spec"), "memoryMb"), 512);
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(json_object_get(o, "spec"), "command"), 0)),
			 "x");
	o = json_array_get(a, 1);
	cr_assert_str_eq(str_at(o, "name"), "b");
	cr_assert_eq(int_at(o, "version"), 1);
	json_decref(a);

	cr_assert_eq(em_ledger_fn_del(l, "a", &err), 0, "%s", err.msg);
	cr_assert_eq(em_ledger_fn_del(l, "a", &err), -ENOENT);
	cr_assert(strstr(err.msg, "function a") && strstr(err.msg, db), "%s", err.msg);
	cr_assert_eq(em_ledger_fn_put(l, "c", 1, "{not json", &err), -EINVAL);
	cr_assert(strstr(err.msg, "function c") && strstr(err.msg, db), "%s", err.msg);
	em_ledger_close(l);

	/* and it is all there after a restart */
	l = open_ok();
	cr_assert_eq(em_ledger_fn_all(l, &a, &err), 0, "%s", err.msg);
	cr_assert_eq(json_array_size(a), 1);
	cr_assert_str_eq(str_at(json_array_get(a, 0), "name"), "b");
	json_decref(a);
	em_ledger_close(l);
}

Test(ledger, file_is_private_and_schema_versioned)
{
	struct em_ledger *l = open_ok();
	struct stat st;
	sqlite3 *h;
	sqlite3_stmt *q;

	em_ledger_close(l);
	cr_assert_eq(stat(db, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(q, 0), 1);
	sqlite3_finalize(q);
	cr_assert_eq(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	sqlite3_close(h);
	/* a second open of an existing ledger checks, and keeps, what is there */
	l = open_ok();
	em_ledger_close(l);
}

Test(ledger, newer_schema_refused_naming_the_file)
{
	struct em_ledger *l = open_ok();
	struct em_err err = { 0 };
	sqlite3 *h;

	em_ledger_close(l);
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, "PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	l = NULL;
	cr_assert_eq(em_ledger_open(db, &l, &err), -ENOTSUP);
	cr_assert_null(l);
	cr_assert(strstr(err.msg, db), "%s", err.msg);
	cr_assert(strstr(err.msg, "schema version 2 is newer"), "%s", err.msg);
}

Test(ledger, bad_path_error_names_the_path)
{
	struct em_ledger *l = NULL;
	struct em_err err = { 0 };
	char path[300];

	snprintf(path, sizeof(path), "%s/no/such/dir/ledger.db", dir);
	cr_assert_eq(em_ledger_open(path, &l, &err), -ENOENT);
	cr_assert_null(l);
	cr_assert(strstr(err.msg, path), "%s", err.msg);
}

Test(ledger, not_a_database_error_names_the_file)
{
	struct em_ledger *l = NULL;
	struct em_err err = { 0 };
	int fd = open(db, O_WRONLY | O_CREAT, 0600);
	char junk[4096];

	memset(junk, 'z', sizeof(junk));
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	cr_assert_lt(em_ledger_open(db, &l, &err), 0);
	cr_assert_null(l);
	cr_assert(strstr(err.msg, db), "%s", err.msg);
	cr_assert(strstr(err.msg, "file is not a database"), "%s", err.msg);
}
