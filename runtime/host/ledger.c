/* runtime/host/ledger.c — the host's durable store: one sqlite3 connection in WAL mode, its
 * prepared statements, and one mutex that serialises them (see ledger.h); plus a thread with a
 * connection of its own that only checkpoints.
 *
 * Durability. The requirement is that a record the host committed survives a crash of the host
 * process (kill -9, a segfault, the OOM killer): journal_mode=WAL with synchronous=NORMAL gives
 * exactly that. A commit appends the transaction to the -wal file with write() before
 * sqlite3_step() returns, so it is in the kernel's page cache and outlives the process; the
 * database stays consistent after a power loss too, only the last commits may be gone then.
 * synchronous=FULL would add an fsync of the WAL to every commit, i.e. to every invocation's
 * path: an fsync per invocation costs more than a warm invocation does. tools/ledger-bench
 * measures it next to the add: ~0.2 ms on this VM's virtio disk against ~30 µs for the whole
 * add, a millisecond or more on a disk without a volatile write cache; all to protect against
 * a power loss that takes the invocations themselves with it. With NORMAL only checkpoints
 * fsync.
 *
 * Checkpoints. sqlite's automatic checkpoint runs inside the commit that crosses the threshold:
 * one invocation in a few hundred (one in ~60 with big logs) would pay the copy of ~4 MB and its
 * fsync, 13-19 ms measured (p99 of adds with big logs), on its path. So the automatic one is off and a thread of the ledger,
 * on a second connection of its own, runs a PASSIVE checkpoint when a commit reports the WAL at
 * CKPT_PAGES: a passive checkpoint never takes the writer's lock, so adds go on meanwhile, and
 * the writer starts the WAL over once the checkpoint has caught up. Under a sustained stream of
 * adds it may never catch up (copying to the database and its fsync are no faster than
 * appending to the WAL): from CKPT_HARD_PAGES the commit checkpoints itself, as sqlite would,
 * which bounds the WAL (~16 MB) at the price of that one add.
 *
 * Logs. An invocation keeps at most EM_LEDGER_LOG_MAX bytes of its output: its start and its end
 * with "…[cut N bytes]" between them (the start says what the function was doing, the end how it
 * failed: the stack trace of a crash, the last lines before a timeout). Cuts fall on UTF-8
 * character boundaries; bytes that are not UTF-8 are shown as U+FFFD in the JSON, which must be
 * UTF-8, but stored as the function wrote them. */
#include "runtime/host/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"

#define LEDGER_SCHEMA_VERSION 1
#define EM_LEDGER_LOG_MAX (64 * 1024)
#define LEDGER_DEFAULT_LIMIT 100
/* A writer waits this long for another connection's lock (sqlite3 CLI, a backup) before the
 * commit fails with EBUSY: long enough for a backup step, short enough not to hang an invocation. */
#define LEDGER_BUSY_TIMEOUT_MS 5000
/* sqlite's own default threshold for an automatic checkpoint (pages of 4 KB) */
#define CKPT_PAGES 1000
#define CKPT_HARD_PAGES 4000

static const char SCHEMA[] =
	"CREATE TABLE invocations ("
	" id INTEGER PRIMARY KEY,"
	" request_id TEXT NOT NULL UNIQUE,"
	" function TEXT NOT NULL,"
	" version INTEGER NOT NULL,"
	" time_ms INTEGER NOT NULL,"
	" start TEXT NOT NULL,"
	" outcome TEXT NOT NULL,"
	" error_type TEXT,"
	" init_ns INTEGER NOT NULL,"
	" wall_ns INTEGER NOT NULL,"
	" cpu_ns INTEGER NOT NULL,"
	" billed_ms INTEGER NOT NULL,"
	" memory_mb INTEGER NOT NULL,"
	" mem_peak_bytes INTEGER NOT NULL,"
	" mb_ms INTEGER NOT NULL,"
	" latency_ns INTEGER NOT NULL,"
	" bill_flags INTEGER NOT NULL,"
	" log TEXT NOT NULL);"
	/* newest first per function: the index holds the rowid too, which breaks ties of time_ms
	 * in insertion order, so both ORDER BY terms are served by one backward index scan */
	"CREATE INDEX invocations_function_time ON invocations (function, time_ms);"
	"CREATE TABLE functions ("
	" name TEXT PRIMARY KEY,"
	" version INTEGER NOT NULL,"
	" spec TEXT NOT NULL);";

#define INVOCATION_COLS \
	"request_id, function, version, time_ms, start, outcome, error_type, init_ns, wall_ns, " \
	"cpu_ns, billed_ms, memory_mb, mem_peak_bytes, mb_ms, latency_ns, bill_flags"

enum stmt_id {
	ST_ADD,
	ST_QUERY,
	ST_LOGS,
	ST_LOGS_ONE,
	ST_FN_PUT,
	ST_FN_DEL,
	ST_FN_ALL,
	ST_N,
};

static const char *const STMT_SQL[ST_N] = {
	[ST_ADD] = "INSERT INTO invocations (" INVOCATION_COLS ", log) "
		   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
	[ST_QUERY] = "SELECT " INVOCATION_COLS " FROM invocations WHERE function = ?1 "
		     "ORDER BY time_ms DESC, id DESC LIMIT ?2",
	[ST_LOGS] = "SELECT request_id, time_ms, log FROM invocations WHERE function = ?1 "
		    "ORDER BY time_ms DESC, id DESC LIMIT ?2",
	[ST_LOGS_ONE] = "SELECT request_id, time_ms, log FROM invocations "
			"WHERE function = ?1 AND request_id = ?2",
	[ST_FN_PUT] = "INSERT INTO functions (name, version, spec) VALUES (?1, ?2, ?3) "
		      "ON CONFLICT (name) DO UPDATE SET version = excluded.version, spec = excluded.spec",
	[ST_FN_DEL] = "DELETE FROM functions WHERE name = ?1",
	[ST_FN_ALL] = "SELECT name, version, spec FROM functions ORDER BY name",
};

struct em_ledger {
	pthread_mutex_t lock;        /* the connection, its statements and cut_buf */
	sqlite3 *db;
	sqlite3_stmt *st[ST_N];
	char *path;
	char cut_buf[EM_LEDGER_LOG_MAX]; /* a cut log, bound while the lock is held */

	/* the checkpointer: its connection, and the hand-over from the commit that asks for it
	 * (never taken with ckpt_lock held, so the two locks cannot deadlock) */
	sqlite3 *ckpt_db;
	pthread_t ckpt_thread;
	bool ckpt_started;
	pthread_mutex_t ckpt_lock;
	pthread_cond_t ckpt_cond;
	bool ckpt_wanted, ckpt_stop;
};

/* sqlite's result code as an errno: what the host maps to an HTTP status. */
static int sqlite_errno(sqlite3 *db, int rc)
{
	int sys;

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return EBUSY;
	case SQLITE_NOMEM:
		return ENOMEM;
	case SQLITE_READONLY:
		return EROFS;
	case SQLITE_FULL:
		return ENOSPC;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return EACCES;
	case SQLITE_CONSTRAINT:
		return EEXIST;
	case SQLITE_TOOBIG:
		return E2BIG;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return EUCLEAN;
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
		sys = db ? sqlite3_system_errno(db) : 0;
		return sys > 0 ? sys : EIO;
	default:
		return EIO;
	}
}

/* "ledger <path>: <step>: <sqlite's message>", the code from sqlite_errno(). */
static int __attribute__((format(printf, 5, 6)))
db_err(struct em_err *err, sqlite3 *db, const char *path, int rc, const char *fmt, ...)
{
	char step[512];
	va_list ap;
	int code = sqlite_errno(db, rc);

	va_start(ap, fmt);
	vsnprintf(step, sizeof(step), fmt, ap);
	va_end(ap);
	return em_err_msg(err, code, "ledger %s: %s: %s", path, step,
			  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* --- UTF-8 */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not one: the same rules as
 * jansson's (no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool utf8_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* A JSON string of s[0..n): as is when it is UTF-8, else with each bad byte as U+FFFD. */
static json_t *json_text(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	cleanup_free char *buf = NULL;
	size_t i = 0, o = 0, k;
	json_t *j = json_stringn(s, n);

	if (j)
		return j;
	buf = malloc(n * 3 + 1); /* a bad byte becomes three */
	if (!buf)
		return NULL;
	while (i < n) {
		k = utf8_seq(u + i, n - i);
		if (k) {
			memcpy(buf + o, s + i, k);
			o += k;
			i += k;
		} else {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	return json_stringn(buf, o);
}

static json_t *json_col_text(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	if (!s)
		return json_null();
	return json_text(s, (size_t)sqlite3_column_bytes(st, col));
}

/* --- open, schema */

static int exec(struct em_ledger *l, const char *sql, const char *step, struct em_err *err)
{
	int rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return db_err(err, l->db, l->path, rc, "%s", step);
	return 0;
}

/* One row, one integer or text column: for the PRAGMAs that answer. */
static int query_one(struct em_ledger *l, const char *sql, int64_t *num, char *text,
		     size_t text_size, struct em_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return db_err(err, l->db, l->path, rc, "%s", sql);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		int r = db_err(err, l->db, l->path, rc == SQLITE_DONE ? SQLITE_ERROR : rc, "%s",
			       sql);
		sqlite3_finalize(st);
		return r;
	}
	if (num)
		*num = sqlite3_column_int64(st, 0);
	if (text) {
		const char *s = (const char *)sqlite3_column_text(st, 0);
		snprintf(text, text_size, "%s", s ? s : "");
	}
	sqlite3_finalize(st);
	return 0;
}

/* Create the schema in a fresh file, check it in an existing one. In one IMMEDIATE transaction,
 * so two hosts opening a new file at once cannot both create it. */
static int schema_init(struct em_ledger *l, struct em_err *err)
{
	char sql[64];
	int64_t ver;
	int ret;

	ret = exec(l, "BEGIN IMMEDIATE", "begin the schema check", err);
	if (ret < 0)
		return ret;
	ret = query_one(l, "PRAGMA user_version", &ver, NULL, 0, err);
	if (ret < 0)
		goto rollback;
	if (ver > LEDGER_SCHEMA_VERSION) {
		/* a newer ember wrote it: its records may mean what this one cannot know */
		ret = em_err_msg(err, ENOTSUP,
				 "ledger %s: schema version %" PRId64 " is newer than this ember's "
				 "(%d): it was written by a newer ember; refusing to open it",
				 l->path, ver, LEDGER_SCHEMA_VERSION);
		goto rollback;
	}
	if (ver < 0) {
		ret = em_err_msg(err, EUCLEAN, "ledger %s: schema version %" PRId64 " is invalid",
				 l->path, ver);
		goto rollback;
	}
	if (ver == 0) {
		/* version 0: a new file, unless something else made tables in it */
		int64_t tables;

		ret = query_one(l, "SELECT count(*) FROM sqlite_schema", &tables, NULL, 0, err);
		if (ret < 0)
			goto rollback;
		if (tables) {
			ret = em_err_msg(err, EUCLEAN,
					 "ledger %s: holds %" PRId64 " tables but no ledger schema "
					 "version: not an ember ledger",
					 l->path, tables);
			goto rollback;
		}
		ret = exec(l, SCHEMA, "create the schema", err);
		if (ret < 0)
			goto rollback;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", LEDGER_SCHEMA_VERSION);
		ret = exec(l, sql, "set the schema version", err);
		if (ret < 0)
			goto rollback;
	}
	return exec(l, "COMMIT", "commit the schema", err);
rollback:
	sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

/* --- the checkpointer */

/* After every commit of the main connection, its lock held: the WAL now has `pages`. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct em_ledger *l = arg;

	if (pages >= CKPT_HARD_PAGES) {
		/* the commit's lock is released; the ledger's mutex keeps other adds out, so this
		 * copies every frame and the next add starts the WAL over (BUSY: the thread is in
		 * a checkpoint right now, the next commit tries again) */
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	} else if (pages >= CKPT_PAGES) {
		pthread_mutex_lock(&l->ckpt_lock);
		l->ckpt_wanted = true;
		pthread_cond_signal(&l->ckpt_cond);
		pthread_mutex_unlock(&l->ckpt_lock);
	}
	return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
	struct em_ledger *l = arg;

	pthread_mutex_lock(&l->ckpt_lock);
	for (;;) {
		while (!l->ckpt_wanted && !l->ckpt_stop)
			pthread_cond_wait(&l->ckpt_cond, &l->ckpt_lock);
		if (l->ckpt_stop)
			break;
		l->ckpt_wanted = false;
		pthread_mutex_unlock(&l->ckpt_lock);
		/* a failure (a reader holding old pages, EBUSY) is retried at the next commit,
		 * which finds the WAL still over the threshold */
		sqlite3_wal_checkpoint_v2(l->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&l->ckpt_lock);
	}
	pthread_mutex_unlock(&l->ckpt_lock);
	return NULL;
}

static int ckpt_start(struct em_ledger *l, struct em_err *err)
{
	int rc = sqlite3_open_v2(l->path, &l->ckpt_db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
				 NULL);

	if (rc != SQLITE_OK)
		return db_err(err, l->ckpt_db, l->path, rc, "open the checkpoint connection");
	sqlite3_busy_timeout(l->ckpt_db, LEDGER_BUSY_TIMEOUT_MS);
	rc = pthread_create(&l->ckpt_thread, NULL, ckpt_main, l);
	if (rc)
		return em_err_set(err, rc, "ledger %s: start the checkpoint thread", l->path);
	l->ckpt_started = true;
	/* replaces sqlite's automatic checkpoint, which is a wal hook too */
	sqlite3_wal_hook(l->db, wal_hook, l);
	return 0;
}

static void ckpt_stop(struct em_ledger *l)
{
	if (l->ckpt_started) {
		pthread_mutex_lock(&l->ckpt_lock);
		l->ckpt_stop = true;
		pthread_cond_signal(&l->ckpt_cond);
		pthread_mutex_unlock(&l->ckpt_lock);
		pthread_join(l->ckpt_thread, NULL);
		l->ckpt_started = false;
	}
	sqlite3_close(l->ckpt_db);
	l->ckpt_db = NULL;
}

void em_ledger_close(struct em_ledger *l)
{
	if (!l)
		return;
	ckpt_stop(l);
	for (int i = 0; i < ST_N; i++)
		sqlite3_finalize(l->st[i]);
	/* the last connection to close checkpoints the WAL and removes it */
	sqlite3_close(l->db);
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->ckpt_lock);
	pthread_cond_destroy(&l->ckpt_cond);
	free(l->path);
	free(l);
}

int em_ledger_open(const char *path, struct em_ledger **out, struct em_err *err)
{
	struct em_ledger *l;
	char mode[16];
	int fd, rc, ret;

	*out = NULL;
	/* Create the file ourselves: sqlite would make it 0644 (less the umask), but the logs of
	 * functions may hold their secrets. The -wal and -shm files take the database's mode. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return em_err_set(err, errno, "ledger %s: open", path);
	close(fd);

	l = calloc(1, sizeof(*l));
	if (!l)
		return em_err_set(err, ENOMEM, "ledger %s: allocate", path);
	l->path = strdup(path);
	if (!l->path) {
		free(l);
		return em_err_set(err, ENOMEM, "ledger %s: allocate", path);
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->ckpt_lock, NULL);
	pthread_cond_init(&l->ckpt_cond, NULL);

	/* NOMUTEX: l->lock serialises every use of the connection already */
	rc = sqlite3_open_v2(path, &l->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
			     NULL);
	if (rc != SQLITE_OK) {
		ret = db_err(err, l->db, path, rc, "open");
		goto fail;
	}
	sqlite3_extended_result_codes(l->db, 1);
	rc = sqlite3_busy_timeout(l->db, LEDGER_BUSY_TIMEOUT_MS);
	if (rc != SQLITE_OK) {
		ret = db_err(err, l->db, path, rc, "set the busy timeout");
		goto fail;
	}
	/* also the first read of the file: "file is not a database" shows here */
	ret = query_one(l, "PRAGMA journal_mode = WAL", NULL, mode, sizeof(mode), err);
	if (ret < 0)
		goto fail;
	if (strcmp(mode, "wal") != 0) {
		ret = em_err_msg(err, ENOTSUP,
				 "ledger %s: journal mode is %s, not wal (is the file on a "
				 "filesystem without shared memory mappings?)",
				 path, mode);
		goto fail;
	}
	/* NORMAL, not FULL: see the top of this file */
	ret = exec(l, "PRAGMA synchronous = NORMAL", "set synchronous=NORMAL", err);
	if (ret < 0)
		goto fail;
	ret = schema_init(l, err);
	if (ret < 0)
		goto fail;
	for (int i = 0; i < ST_N; i++) {
		rc = sqlite3_prepare_v3(l->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &l->st[i],
					NULL);
		if (rc != SQLITE_OK) {
			ret = db_err(err, l->db, path, rc, "prepare %s", STMT_SQL[i]);
			goto fail;
		}
	}
	ret = ckpt_start(l, err);
	if (ret < 0)
		goto fail;
	*out = l;
	return 0;
fail:
	em_ledger_close(l);
	return ret;
}

/* --- invocations */

/* The log to store: as is up to EM_LEDGER_LOG_MAX, else its head and tail around the marker,
 * built in l->cut_buf (lock held). */
static void log_cut(struct em_ledger *l, const char *log, size_t len, const char **out,
		    size_t *out_len)
{
	const unsigned char *u = (const unsigned char *)log;
	char marker[64];
	size_t keep, head, tail_at, tail, mlen;

	if (len <= EM_LEDGER_LOG_MAX) {
		*out = log;
		*out_len = len;
		return;
	}
	/* room for the longest marker; the kept bytes split half and half */
	keep = EM_LEDGER_LOG_MAX - sizeof(marker);
	head = keep / 2;
	tail_at = len - (keep - head);
	/* never split a character: a head ends, a tail starts, before a non-continuation byte
	 * (at most 3 steps in UTF-8; bytes that are not UTF-8 need no care) */
	for (int i = 0; i < 3 && head > 0 && utf8_cont(u[head]); i++)
		head--;
	for (int i = 0; i < 3 && tail_at < len && utf8_cont(u[tail_at]); i++)
		tail_at++;
	tail = len - tail_at;
	mlen = (size_t)snprintf(marker, sizeof(marker), "\xe2\x80\xa6[cut %zu bytes]",
				len - head - tail);
	memcpy(l->cut_buf, log, head);
	memcpy(l->cut_buf + head, marker, mlen);
	memcpy(l->cut_buf + head + mlen, log + tail_at, tail);
	*out = l->cut_buf;
	*out_len = head + mlen + tail;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Bound values are int64: a uint64 above INT64_MAX (no real count gets there) reads back the
 * same through the cast in row_json(). */
static int bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
	return sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

/* Run a bound statement that returns no rows, then make it ready for the next use. */
static int step_done(sqlite3_stmt *st, int *rc_out)
{
	int rc = sqlite3_step(st);

	*rc_out = rc;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int em_ledger_add(struct em_ledger *l, const struct em_ledger_rec *r, struct em_err *err)
{
	const char *log;
	size_t log_len;
	int rc = SQLITE_OK, ret = 0;

	if (!r->request_id || !r->function || !r->start || !r->outcome)
		return em_err_msg(err, EINVAL,
				  "ledger %s: add a record: requestId, function, start and outcome "
				  "are required",
				  l->path);
	pthread_mutex_lock(&l->lock);
	sqlite3_stmt *st = l->st[ST_ADD];
	log_cut(l, r->log ? r->log : "", r->log ? r->log_len : 0, &log, &log_len);
	if ((rc = bind_text(st, 1, r->request_id)) || (rc = bind_text(st, 2, r->function)) ||
	    (rc = sqlite3_bind_int64(st, 3, r->version)) ||
	    (rc = sqlite3_bind_int64(st, 4, r->time_ms)) || (rc = bind_text(st, 5, r->start)) ||
	    (rc = bind_text(st, 6, r->outcome)) || (rc = bind_text(st, 7, r->error_type)) ||
	    (rc = bind_u64(st, 8, r->init_ns)) || (rc = bind_u64(st, 9, r->wall_ns)) ||
	    (rc = bind_u64(st, 10, r->cpu_ns)) || (rc = bind_u64(st, 11, r->billed_ms)) ||
	    (rc = bind_u64(st, 12, r->memory_mb)) || (rc = bind_u64(st, 13, r->mem_peak_bytes)) ||
	    (rc = bind_u64(st, 14, r->mb_ms)) || (rc = bind_u64(st, 15, r->latency_ns)) ||
	    (rc = sqlite3_bind_int64(st, 16, r->bill_flags)) ||
	    (rc = sqlite3_bind_text64(st, 17, log, log_len, SQLITE_STATIC, SQLITE_UTF8))) {
		ret = db_err(err, l->db, l->path, rc, "add request %s: bind", r->request_id);
		sqlite3_clear_bindings(st);
	} else if (step_done(st, &rc) < 0) {
		if ((rc & 0xff) == SQLITE_CONSTRAINT)
			ret = em_err_msg(err, EEXIST,
					 "ledger %s: add request %s: a record of this request "
					 "exists already",
					 l->path, r->request_id);
		else
			ret = db_err(err, l->db, l->path, rc, "add request %s", r->request_id);
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

/* ns as ms with 3 decimals, rounded to the µs (what a reader can use). The value is the double
 * nearest that decimal; jansson prints reals with 17 significant digits unless told otherwise, so
 * the text reads "1.235", not "1.2350000000000001", when dumped with JSON_REAL_PRECISION(15). */
static json_t *json_ms(int64_t ns)
{
	return json_real((double)(((uint64_t)ns + 500) / 1000) / 1000.0);
}

/* Set k = v in o, taking v; false when v is NULL (out of memory) or the set failed. */
static bool set(json_t *o, const char *k, json_t *v)
{
	return v && json_object_set_new(o, k, v) == 0;
}

static json_t *row_json(sqlite3_stmt *st)
{
	json_t *o = json_object();
	uint64_t peak = (uint64_t)sqlite3_column_int64(st, 12);

	if (!o)
		return NULL;
	if (set(o, "requestId", json_col_text(st, 0)) && set(o, "function", json_col_text(st, 1)) &&
	    set(o, "version", json_integer(sqlite3_column_int64(st, 2))) &&
	    set(o, "time", json_integer(sqlite3_column_int64(st, 3))) &&
	    set(o, "start", json_col_text(st, 4)) && set(o, "outcome", json_col_text(st, 5)) &&
	    set(o, "errorType", json_col_text(st, 6)) &&
	    set(o, "initMs", json_ms(sqlite3_column_int64(st, 7))) &&
	    set(o, "durationMs", json_ms(sqlite3_column_int64(st, 8))) &&
	    set(o, "billedMs", json_integer(sqlite3_column_int64(st, 10))) &&
	    set(o, "cpuMs", json_ms(sqlite3_column_int64(st, 9))) &&
	    set(o, "memoryMb", json_integer(sqlite3_column_int64(st, 11))) &&
	    /* as Lambda's "Max Memory Used": whole MB, rounded up */
	    set(o, "maxMemoryMb", json_integer((json_int_t)((peak + (1 << 20) - 1) >> 20))) &&
	    set(o, "mbMs", json_integer(sqlite3_column_int64(st, 13))) &&
	    set(o, "latencyMs", json_ms(sqlite3_column_int64(st, 14))) &&
	    set(o, "flags", json_integer(sqlite3_column_int64(st, 15))))
		return o;
	json_decref(o);
	return NULL;
}

static json_t *log_row_json(sqlite3_stmt *st)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (set(o, "requestId", json_col_text(st, 0)) &&
	    set(o, "time", json_integer(sqlite3_column_int64(st, 1))) &&
	    set(o, "log", json_col_text(st, 2)))
		return o;
	json_decref(o);
	return NULL;
}

/* Step a bound SELECT into a JSON array, one object per row; resets the statement. Lock held. */
static int rows_json(struct em_ledger *l, sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *),
		     const char *what, json_t **out, struct em_err *err)
{
	json_t *arr = json_array();
	int rc, ret = 0;

	if (!arr) {
		ret = em_err_set(err, ENOMEM, "ledger %s: %s", l->path, what);
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = row(st);

		if (!o || json_array_append_new(arr, o) < 0) {
			ret = em_err_set(err, ENOMEM, "ledger %s: %s", l->path, what);
			goto out;
		}
	}
	if (rc != SQLITE_DONE)
		ret = db_err(err, l->db, l->path, rc, "%s", what);
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (ret < 0)
		json_decref(arr);
	else
		*out = arr;
	return ret;
}

static int64_t limit_or_default(unsigned limit)
{
	return limit ? limit : LEDGER_DEFAULT_LIMIT;
}

int em_ledger_query(struct em_ledger *l, const char *function, unsigned limit, json_t **out,
		    struct em_err *err)
{
	char what[128];
	int rc, ret;

	*out = NULL;
	snprintf(what, sizeof(what), "query invocations of %s", function);
	pthread_mutex_lock(&l->lock);
	sqlite3_stmt *st = l->st[ST_QUERY];
	if ((rc = bind_text(st, 1, function)) ||
	    (rc = sqlite3_bind_int64(st, 2, limit_or_default(limit)))) {
		sqlite3_clear_bindings(st);
		ret = db_err(err, l->db, l->path, rc, "%s: bind", what);
	} else {
		ret = rows_json(l, st, row_json, what, out, err);
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

int em_ledger_logs(struct em_ledger *l, const char *function, const char *request_id,
		   unsigned limit, json_t **out, struct em_err *err)
{
	char what[192];
	sqlite3_stmt *st;
	int rc, ret;

	*out = NULL;
	if (request_id)
		snprintf(what, sizeof(what), "query the log of %s request %s", function, request_id);
	else
		snprintf(what, sizeof(what), "query logs of %s", function);
	pthread_mutex_lock(&l->lock);
	/* one request: an empty array when it is not there (the caller says 404) */
	st = l->st[request_id ? ST_LOGS_ONE : ST_LOGS];
	if ((rc = bind_text(st, 1, function)) ||
	    (rc = request_id ? bind_text(st, 2, request_id)
			     : sqlite3_bind_int64(st, 2, limit_or_default(limit)))) {
		sqlite3_clear_bindings(st);
		ret = db_err(err, l->db, l->path, rc, "%s: bind", what);
	} else {
		ret = rows_json(l, st, log_row_json, what, out, err);
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

/* --- functions */

int em_ledger_fn_put(struct em_ledger *l, const char *name, uint32_t version, const char *spec_json,
		     struct em_err *err)
{
	json_error_t jerr;
	json_t *spec = json_loads(spec_json, JSON_REJECT_DUPLICATES, &jerr);
	int rc, ret = 0;

	/* a spec that does not parse would make the function impossible to restore at start */
	if (!spec)
		return em_err_msg(err, EINVAL, "ledger %s: put function %s: spec is not JSON: %s",
				  l->path, name, jerr.text);
	json_decref(spec);
	pthread_mutex_lock(&l->lock);
	sqlite3_stmt *st = l->st[ST_FN_PUT];
	if ((rc = bind_text(st, 1, name)) || (rc = sqlite3_bind_int64(st, 2, version)) ||
	    (rc = bind_text(st, 3, spec_json))) {
		sqlite3_clear_bindings(st);
		ret = db_err(err, l->db, l->path, rc, "put function %s: bind", name);
	} else if (step_done(st, &rc) < 0) {
		ret = db_err(err, l->db, l->path, rc, "put function %s", name);
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

int em_ledger_fn_del(struct em_ledger *l, const char *name, struct em_err *err)
{
	int rc, ret = 0;

	pthread_mutex_lock(&l->lock);
	sqlite3_stmt *st = l->st[ST_FN_DEL];
	if ((rc = bind_text(st, 1, name))) {
		sqlite3_clear_bindings(st);
		ret = db_err(err, l->db, l->path, rc, "delete function %s: bind", name);
	} else if (step_done(st, &rc) < 0) {
		ret = db_err(err, l->db, l->path, rc, "delete function %s", name);
	} else if (sqlite3_changes(l->db) == 0) {
		ret = em_err_msg(err, ENOENT, "ledger %s: delete function %s: no such function",
				 l->path, name);
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

static json_t *fn_row_json(sqlite3_stmt *st)
{
	const char *text = (const char *)sqlite3_column_text(st, 2);
	json_t *o = json_object();
	json_t *spec;

	if (!o)
		return NULL;
	/* checked at put; a row that does not parse now (edited by hand) shows its text */
	spec = text ? json_loads(text, 0, NULL) : NULL;
	if (!spec)
		spec = json_col_text(st, 2);
	if (set(o, "name", json_col_text(st, 0)) &&
	    set(o, "version", json_integer(sqlite3_column_int64(st, 1)))) {
		if (set(o, "spec", spec)) /* takes spec, also when it fails */
			return o;
	} else {
		json_decref(spec);
	}
	json_decref(o);
	return NULL;
}

int em_ledger_fn_all(struct em_ledger *l, json_t **out, struct em_err *err)
{
	int ret;

	*out = NULL;
	pthread_mutex_lock(&l->lock);
	ret = rows_json(l, l->st[ST_FN_ALL], fn_row_json, "list functions", out, err);
	pthread_mutex_unlock(&l->lock);
	return ret;
}
