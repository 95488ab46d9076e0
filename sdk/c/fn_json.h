/* sdk/c/fn_json.h — internal to the C SDK (not installed with ember_fn.h): the growable buffer
 * and the little JSON the SDK reads and writes (fn_json.c). The library is linked into the
 * function's own program: every symbol here carries the emfn_ prefix so none collides with it. */
#ifndef EMBER_FN_JSON_H
#define EMBER_FN_JSON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer, always NUL-terminated past len once anything was added. Appends fail
 * (-1, errno ENOMEM, or E2BIG past EMBER_PROTO_MAX_PAYLOAD) without changing it. */
struct emfn_buf {
	char *p;
	size_t len, cap;
};

int emfn_buf_reserve(struct emfn_buf *b, size_t more);
int emfn_buf_add(struct emfn_buf *b, const void *data, size_t len);
int emfn_buf_vprintf(struct emfn_buf *b, const char *fmt, va_list ap);
int emfn_buf_printf(struct emfn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void emfn_buf_free(struct emfn_buf *b);
/* Empty it for the next invocation; give its memory back if it grew large. */
void emfn_buf_recycle(struct emfn_buf *b);
/* A formatted string (malloc'd), or NULL. */
char *emfn_vformat(const char *fmt, va_list ap);

/* {"errorType": type, "errorMessage": msg} into b (emptied first); invalid UTF-8 in either is
 * replaced by U+FFFD. */
int emfn_error_json(struct emfn_buf *b, const char *type, const char *msg);

/* The INVOKE metadata keys the SDK passes to the handler (absent: NULL / 0). */
struct emfn_meta {
	char *request_id;
	char *function;
	uint32_t version;
	uint32_t memory_mb;
	int64_t deadline_ms;
};

/* Parse a JSON object (strict JSON; unknown keys of any type skipped). 0, or -1 if it is not. */
int emfn_parse_meta(const char *p, size_t len, struct emfn_meta *m);
void emfn_meta_free(struct emfn_meta *m);

#endif
