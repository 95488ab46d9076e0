/* runtime/host/host.h — the function host behind `ember serve`: deployed functions, their
 * instances (sandboxes running a function through the SDK protocol, sdk/PROTOCOL.md), pre-made
 * sandboxes, invocation dispatch, billing, the ledger and the metrics. The HTTP API (api.h) is a
 * thin layer over this; tests drive it directly too.
 *
 * Errors. Every call that can fail takes a struct em_err and returns a negative errno; the API
 * layer maps the errno to a status and an errorType (em_host_err_status):
 *   ENOENT 404 ResourceNotFound     EINVAL 400 InvalidParameterValue   EEXIST/EBUSY 409 Conflict
 *   EAGAIN 429 TooManyRequests      ENOSPC 503 InsufficientCapacity    E2BIG 413 RequestTooLarge
 *   ESHUTDOWN 503 ServiceUnavailable   anything else 500 ServiceError
 * A function's own failure is not a call failure: em_host_invoke returns 0 and describes it in
 * the result (status 502/504 and a Function.* errorType).
 *
 * Threads: every call is safe from any thread (the API serves each connection on its own). */
#ifndef EMBER_RUNTIME_HOST_HOST_H
#define EMBER_RUNTIME_HOST_HOST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/host/fnspec.h"

struct em_err;
struct em_log;
struct em_host;

struct em_host_cfg {
	const char *run_dir;          /* runtime state (lock, default socket); default /run/ember/serve */
	const char *data_dir;         /* durable state (ledger, deployed functions); default
				       * /var/lib/ember */
	const char *cgroup_parent;    /* default "ember-serve" */
	uint64_t capacity_mb;         /* memory for instances; 0 = MemTotal minus 1 GiB */
	uint32_t idle_ttl_ms;         /* idle instances are reaped after this; 0 = 600000 */
	uint32_t pool_size;           /* pre-made sandboxes per function version; 0 = 1 */
	size_t max_payload;           /* request body limit; 0 = 6 MB */
	bool no_billing;              /* run without BPF billing: only when the operator asks */
	struct em_log *log;
};

int em_host_new(const struct em_host_cfg *cfg, struct em_host **out, struct em_err *err);
/* Begin the shutdown: new invocations and deploys get ESHUTDOWN, invocations waiting for a
 * sandbox give up; running ones go on. Call before stopping the API (which waits for its
 * requests), then em_host_free. */
void em_host_stop(struct em_host *h);
/* Stop accepting invocations, wait for in-flight ones (up to their timeout), kill every instance,
 * remove every cgroup and namespace the host made, free. */
void em_host_free(struct em_host *h);

/* Deploy (create or replace) a function: a redeploy makes a new version; in-flight invocations
 * finish on the old one. *out: the function's description (as GET shows it). */
int em_host_deploy(struct em_host *h, const struct em_fn_spec *spec, json_t **out,
		   struct em_err *err);
/* Remove: new invocations get 404 at once; returns after in-flight ones finished. */
int em_host_remove(struct em_host *h, const char *name, struct em_err *err);
/* JSON array of every function / one function's description. */
json_t *em_host_list(struct em_host *h);
int em_host_show(struct em_host *h, const char *name, json_t **out, struct em_err *err);

/* Logs of a function's invocations, newest first (request_id: only that one; NULL: all). */
int em_host_logs(struct em_host *h, const char *name, const char *request_id, unsigned limit,
		 json_t **out, struct em_err *err);
/* Billing records of a function's invocations, newest first. */
int em_host_invocations(struct em_host *h, const char *name, unsigned limit, json_t **out,
			struct em_err *err);
/* Prometheus text exposition (malloc'd). */
char *em_host_metrics(struct em_host *h);

/* Snapshots on an operator's request (`ember snapshot create|restore FN`; runtime/host/snapshot.h):
 * dump the function's ready template to its version's image now (replacing it); or replace its
 * template with one restored from the image and wait for it. EBUSY: no template / no image /
 * policy off, with the reason in err. */
int em_host_snapshot(struct em_host *h, const char *name, json_t **out, struct em_err *err);
int em_host_restore(struct em_host *h, const char *name, json_t **out, struct em_err *err);

struct em_invoke_result {
	int status;                   /* HTTP status: 200, or 502/504 for a function failure */
	const char *error_type;       /* NULL on success; "Function.Error", "Function.Timeout", ... */
	char *body;                   /* the function's output, or the error JSON (malloc'd) */
	size_t len;
	char request_id[40];
	const char *start;            /* "cold", "warm", "zygote", "restore" */
	double init_ms;               /* init of the instance that served it, 0 for a warm start */
	double duration_ms;           /* billed wall time (BPF), unrounded */
	uint64_t billed_ms;
	double cpu_ms;
	uint64_t max_memory_mb;
};

/* Run one invocation. Returns <0 only when it could not be dispatched (unknown function, over
 * the concurrency cap, over capacity, payload too large, shutting down). */
int em_host_invoke(struct em_host *h, const char *name, const void *body, size_t len,
		   struct em_invoke_result *res, struct em_err *err);
void em_invoke_result_free(struct em_invoke_result *res);

/* The HTTP status and errorType for a failed call's errno (see the top). */
int em_host_err_status(int errnum, const char **error_type);

#endif
