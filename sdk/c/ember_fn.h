/* sdk/c/ember_fn.h — ember's C SDK: write a function as an init callback and a handler, and let
 * ember_fn_main() run it as an ember instance (sdk/PROTOCOL.md) or once from stdin.
 *
 *	static int handler(const struct ember_fn_request *req, struct ember_fn_response *resp)
 *	{
 *		if (req->len == 0)
 *			return ember_fn_error(resp, "BadRequest", "empty payload");
 *		return ember_fn_printf(resp, "hello, %.*s", (int)req->len, req->body);
 *	}
 *
 *	int main(int argc, char **argv)
 *	{
 *		static const struct ember_fn fn = { .handler = handler };
 *
 *		return ember_fn_main(argc, argv, &fn);
 *	}
 *
 * Link: cc -static -Isdk/c f.c build/lib/libember_fn.a. The library needs only libc, starts no
 * thread and installs no signal handler.
 *
 * Two modes, chosen by the environment:
 *   - instance (EMBER_CHANNEL_FD set, as ember's function host starts it): init, READY, then one
 *     invocation after another on the channel until the host closes it. Exit status: 0 when the
 *     host closed the channel, 1 when init failed (after INIT_ERROR), 2 on a protocol or channel
 *     error (a message on stderr).
 *   - one-shot (EMBER_CHANNEL_FD unset, e.g. `runc run` of the same bundle): init, the request body
 *     read from stdin to EOF, the response written to stdout; exit 0, or 1 if init or the handler
 *     failed (the error JSON {"errorType","errorMessage"} on stderr).
 *
 * The SDK takes the channel: it removes EMBER_CHANNEL_FD from the environment and marks the
 * descriptor close-on-exec, so programs the function starts neither inherit nor misread it.
 *
 * Output: stdout and stderr belong to the function (the host files them under the invocation that
 * is running); the SDK flushes both stdio streams before it answers, so everything a handler
 * printed is in the host's hands before its response is. */
#ifndef EMBER_FN_H
#define EMBER_FN_H

#include <stddef.h>
#include <stdint.h>

/* One invocation, as the handler sees it. Valid until the handler returns. */
struct ember_fn_request {
	const char *body;        /* the request body; body[len] is a '\0' the SDK adds, so a text
				    payload can be used as a C string (the body may hold NULs too) */
	size_t len;
	uint64_t id;             /* the frame's invocation id (0 in one-shot mode) */
	const char *request_id;  /* metadata "requestId" ("" if absent; "oneshot" in one-shot mode) */
	const char *function;    /* metadata "function" ("" if absent; argv[0]'s basename one-shot) */
	uint32_t version;        /* metadata "version" (0 if absent) */
	uint32_t memory_mb;      /* metadata "memoryMb" (0 if absent/one-shot) */
	int64_t deadline_ms;     /* metadata "deadlineMs": CLOCK_REALTIME ms since the epoch when
				    the host gives up; 0 = no deadline (one-shot) */
	void *ctx;               /* struct ember_fn.ctx */
};

/* Milliseconds left until req->deadline_ms (negative once it passed); INT64_MAX without one. */
int64_t ember_fn_remaining_ms(const struct ember_fn_request *req);

/* The response being built: a growable buffer (opaque). Empty at the start of each invocation. */
struct ember_fn_response;

/* Append to the response body. 0, or -1 with errno ENOMEM, or E2BIG past the frame limit
 * (EMBER_PROTO_MAX_PAYLOAD, 64 MiB; the host's own response limit is usually lower). A failed
 * append fails the invocation (the SDK answers ERROR "Runtime.ResponseError"). */
int ember_fn_write(struct ember_fn_response *resp, const void *data, size_t len);
int ember_fn_printf(struct ember_fn_response *resp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Fail the invocation: the answer becomes ERROR {"errorType": type, "errorMessage": ...}
 * whatever the handler then returns, and the output written so far is dropped. Returns -1, for
 * `return ember_fn_error(resp, "NotFound", "no key %s", k);`. The last call wins. */
int ember_fn_error(struct ember_fn_response *resp, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* For init: describe why it fails (INIT_ERROR {"errorType","errorMessage"}). Returns -1, for
 * `return ember_fn_init_error("Config", "no table: %s", strerror(errno));`. */
int ember_fn_init_error(const char *type, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct ember_fn {
	/* Optional. Runs once per instance before READY (what the host reports as init time):
	 * load configuration, build tables, open files. 0 = ready; anything else = the instance
	 * fails with INIT_ERROR (the message from ember_fn_init_error, or "init returned N") and
	 * exits 1. */
	int (*init)(void *ctx);
	/* Required. Called for each invocation, one at a time. Return 0 to answer RESULT with what
	 * was written to resp; a non-zero return, or a call to ember_fn_error, answers ERROR (the
	 * errorType "HandlerError" and "handler returned N" if ember_fn_error was not called). */
	int (*handler)(const struct ember_fn_request *req, struct ember_fn_response *resp);
	/* Zygote templates (sdk/c/ember_zygote.h): a template is an initialised instance parked at
	 * the ready point, and each new instance is a fork of it, or a copy restored from the
	 * template's snapshot (sdk/c/ember_snap.h; the restored copy then parks as a template).
	 * after_fork runs in every forked or restored instance before its READY, to re-seed what must differ between instances: user-space
	 * random generators (the SDK already re-seeds libc's rand()/random()), generated ids,
	 * per-instance temp file names, connections. Return 0, or non-zero to fail the instance
	 * (INIT_ERROR; the host then starts one cold). NULL if nothing needs re-seeding. */
	int (*after_fork)(void *ctx);
	void *ctx;               /* handed to init, after_fork and (as req->ctx) the handler */
};

/* Run the function (see the modes above). Returns the process exit status, for
 * `return ember_fn_main(argc, argv, &fn);` (the instance mode only returns when the host closed
 * the channel; on a protocol error it returns 2 too). */
int ember_fn_main(int argc, char **argv, const struct ember_fn *fn);

#endif
