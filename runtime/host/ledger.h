/* runtime/host/ledger.h — the host's durable store (sqlite3, WAL): every invocation's billing
 * record and log, and the deployed functions, so both survive a crash of the host (kill -9) and
 * its restart. One connection, serialised by a mutex; safe from any thread. */
#ifndef EMBER_RUNTIME_HOST_LEDGER_H
#define EMBER_RUNTIME_HOST_LEDGER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct em_err;
struct em_ledger;

struct em_ledger_rec {
	const char *request_id;
	const char *function;
	uint32_t version;
	int64_t time_ms;             /* CLOCK_REALTIME ms at the request's arrival */
	const char *start;           /* "cold" | "warm" | "zygote" | "restore" */
	const char *outcome;         /* "ok" | "error" | "timeout" | "oom" | "crash" | "init_error" */
	const char *error_type;      /* NULL when ok */
	uint64_t init_ns, wall_ns, cpu_ns, billed_ms, memory_mb, mem_peak_bytes, mb_ms;
	uint64_t latency_ns;         /* end to end inside the host: request in to response out */
	uint32_t bill_flags;         /* EM_BILL_F_* */
	const char *log; size_t log_len;   /* the invocation's stdout+stderr (may be cut, see .c) */
};

/* Open (create) the database at path; the schema is created or checked. */
int em_ledger_open(const char *path, struct em_ledger **out, struct em_err *err);
void em_ledger_close(struct em_ledger *l);

int em_ledger_add(struct em_ledger *l, const struct em_ledger_rec *r, struct em_err *err);
/* Records of a function, newest first, at most limit (0 = 100): a JSON array of objects with
 * the fields above in camelCase (requestId, function, version, time, start, outcome, errorType,
 * initMs, durationMs, billedMs, cpuMs, memoryMb, maxMemoryMb, mbMs, latencyMs, flags). */
int em_ledger_query(struct em_ledger *l, const char *function, unsigned limit, json_t **out,
		    struct em_err *err);
/* Logs, newest first: [{requestId, time, log}], one request if request_id is not NULL. */
int em_ledger_logs(struct em_ledger *l, const char *function, const char *request_id,
		   unsigned limit, json_t **out, struct em_err *err);

/* Deployed functions: the spec JSON (em_fn_spec_to_json) of the current version. */
int em_ledger_fn_put(struct em_ledger *l, const char *name, uint32_t version, const char *spec_json,
		     struct em_err *err);
int em_ledger_fn_del(struct em_ledger *l, const char *name, struct em_err *err);
/* [{name, version, spec}] for every deployed function. */
int em_ledger_fn_all(struct em_ledger *l, json_t **out, struct em_err *err);

#endif
