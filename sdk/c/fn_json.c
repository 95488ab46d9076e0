/* sdk/c/fn_json.c — the C SDK's growable buffer, the JSON it writes (error objects: escaped,
 * always valid UTF-8) and the JSON it reads (the INVOKE metadata: a minimal strict reader for the
 * few keys the SDK needs, so that it depends on libc alone). */
#include "fn_json.h"
#include "ember_proto.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buffers up to this size are kept between invocations (most requests are small and their pages
 * stay faulted in); a larger one is freed after its invocation, so an idle instance, frozen or
 * forked at the ready point, does not carry a stale multi-megabyte body. */
#define KEEP_BUF_MAX (1u << 20)

/* ---- growable byte buffer */

int emfn_buf_reserve(struct emfn_buf *b, size_t more)
{
	size_t need, cap;
	char *p;

	if (more > EMBER_PROTO_MAX_PAYLOAD || b->len > EMBER_PROTO_MAX_PAYLOAD - more) {
		errno = E2BIG;
		return -1;
	}
	need = b->len + more + 1; /* room for a terminating NUL */
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -1; /* errno = ENOMEM */
	b->p = p;
	b->cap = cap;
	return 0;
}

int emfn_buf_add(struct emfn_buf *b, const void *data, size_t len)
{
	if (emfn_buf_reserve(b, len) < 0)
		return -1;
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

int emfn_buf_vprintf(struct emfn_buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return -1;
	if (emfn_buf_reserve(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int emfn_buf_printf(struct emfn_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = emfn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

void emfn_buf_free(struct emfn_buf *b)
{
	free(b->p);
	*b = (struct emfn_buf){ 0 };
}

/* Empty the buffer for the next use; give its memory back if it grew large. */
void emfn_buf_recycle(struct emfn_buf *b)
{
	if (b->cap > KEEP_BUF_MAX)
		emfn_buf_free(b);
	b->len = 0;
}

char *emfn_vformat(const char *fmt, va_list ap)
{
	struct emfn_buf b = { 0 };

	if (emfn_buf_vprintf(&b, fmt, ap) < 0 || emfn_buf_add(&b, "", 0) < 0) {
		emfn_buf_free(&b);
		return NULL;
	}
	return b.p;
}

/* ---- JSON out: strings escaped, and invalid UTF-8 replaced by U+FFFD (the host's JSON parser
 * refuses invalid UTF-8, and an error message may quote any bytes) */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and code points past U+10FFFF are not UTF-8 */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static int json_add_str(struct emfn_buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);

	if (emfn_buf_add(b, "\"", 1) < 0)
		return -1;
	while (n) {
		size_t k = utf8_seq(s, n);
		int r;

		if (k == 0) {
			r = emfn_buf_add(b, "\\ufffd", 6);
			k = 1;
		} else if (*s == '"' || *s == '\\') {
			char esc[2] = { '\\', (char)*s };
			r = emfn_buf_add(b, esc, 2);
		} else if (*s == '\n') {
			r = emfn_buf_add(b, "\\n", 2);
		} else if (*s == '\t') {
			r = emfn_buf_add(b, "\\t", 2);
		} else if (*s < 0x20 || *s == 0x7f) {
			r = emfn_buf_printf(b, "\\u%04x", *s);
		} else {
			r = emfn_buf_add(b, s, k);
		}
		if (r < 0)
			return -1;
		s += k;
		n -= k;
	}
	return emfn_buf_add(b, "\"", 1);
}

/* {"errorType": type, "errorMessage": msg} into b (emptied first). */
int emfn_error_json(struct emfn_buf *b, const char *type, const char *msg)
{
	b->len = 0;
	if (emfn_buf_add(b, "{\"errorType\":", 13) < 0 || json_add_str(b, type) < 0 ||
	    emfn_buf_add(b, ",\"errorMessage\":", 16) < 0 || json_add_str(b, msg) < 0 ||
	    emfn_buf_add(b, "}", 1) < 0)
		return -1;
	return 0;
}

/* ---- JSON in: the INVOKE metadata. An object whose keys we pick; any other value is skipped
 * (validated, not kept). Strict JSON: the host writes it with a JSON library. */

void emfn_meta_free(struct emfn_meta *m)
{
	free(m->request_id);
	free(m->function);
	*m = (struct emfn_meta){ 0 };
}

struct jr {
	const char *p, *end;
	int depth;
};

#define JSON_MAX_DEPTH 64

static void jr_ws(struct jr *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool jr_lit(struct jr *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n))
		return false;
	j->p += n;
	return true;
}

static int hex4(const char *p, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static int add_utf8(struct emfn_buf *b, uint32_t cp)
{
	unsigned char u[4];
	size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
	static const unsigned char lead[5] = { 0, 0x00, 0xc0, 0xe0, 0xf0 };

	for (size_t i = n - 1; i > 0; i--, cp >>= 6)
		u[i] = (unsigned char)(0x80 | (cp & 0x3f));
	u[0] = (unsigned char)(lead[n] | cp);
	return emfn_buf_add(b, u, n);
}

/* A string at j->p (on its opening quote). out: the decoded string (malloc'd), or NULL to skip. */
static int jr_string(struct jr *j, char **out)
{
	struct emfn_buf b = { 0 };

	if (j->p >= j->end || *j->p != '"')
		return -1;
	j->p++;
	while (j->p < j->end && *j->p != '"') {
		unsigned char c = (unsigned char)*j->p;
		const char *run = j->p;
		int r = 0;

		if (c < 0x20)
			goto bad;
		if (c != '\\') {
			/* a run of plain characters; UTF-8 checked, as every JSON parser does (a
			 * string we hand the handler must be valid text) */
			while (j->p < j->end && *j->p != '"' && *j->p != '\\' &&
			       (unsigned char)*j->p >= 0x20) {
				size_t k = utf8_seq((const unsigned char *)j->p, (size_t)(j->end - j->p));

				if (k == 0)
					goto bad;
				j->p += k;
			}
			if (out && emfn_buf_add(&b, run, (size_t)(j->p - run)) < 0)
				goto bad;
			continue;
		}
		if (j->end - j->p < 2)
			goto bad;
		char e = j->p[1];
		j->p += 2;
		if (e == 'u') {
			uint32_t cp, lo;

			if (j->end - j->p < 4 || hex4(j->p, &cp) < 0)
				goto bad;
			j->p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && j->end - j->p >= 6 && j->p[0] == '\\' &&
			    j->p[1] == 'u' && hex4(j->p + 2, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				j->p += 6;
			} else if (cp >= 0xd800 && cp <= 0xdfff) {
				cp = 0xfffd; /* a lone surrogate */
			}
			if (out)
				r = add_utf8(&b, cp);
		} else {
			const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
			const char *k = strchr(from, e);

			if (!e || !k)
				goto bad;
			if (out)
				r = emfn_buf_add(&b, &to[k - from], 1);
		}
		if (r < 0)
			goto bad;
	}
	if (j->p >= j->end)
		goto bad;
	j->p++;
	if (out) {
		if (emfn_buf_add(&b, "", 0) < 0)
			goto bad;
		*out = b.p;
	}
	return 0;
bad:
	emfn_buf_free(&b);
	return -1;
}

static bool jr_digits(struct jr *j)
{
	const char *s = j->p;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > s;
}

/* A number (JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?); *out gets its integer
 * part, clamped to int64. */
static int jr_number(struct jr *j, int64_t *out)
{
	const char *s = j->p;
	bool integral = true;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (j->p >= j->end || *j->p < '1' || *j->p > '9' || !jr_digits(j))
		return -1;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!jr_digits(j))
			return -1;
		integral = false;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!jr_digits(j))
			return -1;
		integral = false;
	}
	/* the scan above checked the syntax; strtoll/strtod only convert (they need a string) */
	char *tok = strndup(s, (size_t)(j->p - s));
	if (!tok)
		return -1;
	if (integral) {
		*out = strtoll(tok, NULL, 10); /* out of range: clamped to LLONG_MIN/MAX */
	} else {
		double d = strtod(tok, NULL);

		*out = d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : (int64_t)d;
	}
	free(tok);
	return 0;
}

static int jr_value(struct jr *j);

static int jr_container(struct jr *j, char open, char close)
{
	if (++j->depth > JSON_MAX_DEPTH)
		return -1;
	j->p++; /* the opening bracket */
	jr_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		if (open == '{') {
			if (jr_string(j, NULL) < 0)
				return -1;
			jr_ws(j);
			if (j->p >= j->end || *j->p++ != ':')
				return -1;
		}
		if (jr_value(j) < 0)
			return -1;
		jr_ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p == ',') {
			j->p++;
			jr_ws(j);
			continue;
		}
		if (*j->p++ != close)
			return -1;
		j->depth--;
		return 0;
	}
}

/* Skip one value of any type (checking its syntax). */
static int jr_value(struct jr *j)
{
	int64_t n;

	jr_ws(j);
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '"': return jr_string(j, NULL);
	case '{': return jr_container(j, '{', '}');
	case '[': return jr_container(j, '[', ']');
	case 't': return jr_lit(j, "true") ? 0 : -1;
	case 'f': return jr_lit(j, "false") ? 0 : -1;
	case 'n': return jr_lit(j, "null") ? 0 : -1;
	default: return jr_number(j, &n);
	}
}

/* A key we keep: a string (or null: left unset) into *s. */
static int jr_take_string(struct jr *j, char **s)
{
	if (jr_lit(j, "null"))
		return 0;
	free(*s);
	*s = NULL;
	return jr_string(j, s);
}

/* A key we keep: a number (or null) into *v, clamped to [min, max]. */
static int jr_take_int(struct jr *j, int64_t *v, int64_t min, int64_t max)
{
	if (jr_lit(j, "null"))
		return 0;
	if (jr_number(j, v) < 0)
		return -1;
	*v = *v < min ? min : *v > max ? max : *v;
	return 0;
}

int emfn_parse_meta(const char *p, size_t len, struct emfn_meta *m)
{
	struct jr j = { .p = p, .end = p + len };

	*m = (struct emfn_meta){ 0 };
	jr_ws(&j);
	if (j.p >= j.end || *j.p != '{')
		return -1;
	j.p++;
	jr_ws(&j);
	if (j.p < j.end && *j.p == '}') {
		j.p++;
		goto done;
	}
	for (;;) {
		char *key = NULL;
		int64_t v;
		int r;

		if (jr_string(&j, &key) < 0)
			goto bad;
		jr_ws(&j);
		if (j.p >= j.end || *j.p++ != ':') {
			free(key);
			goto bad;
		}
		jr_ws(&j);
		if (!strcmp(key, "requestId")) {
			r = jr_take_string(&j, &m->request_id);
		} else if (!strcmp(key, "function")) {
			r = jr_take_string(&j, &m->function);
		} else if (!strcmp(key, "version")) {
			v = m->version;
			r = jr_take_int(&j, &v, 0, UINT32_MAX);
			m->version = (uint32_t)v;
		} else if (!strcmp(key, "memoryMb")) {
			v = m->memory_mb;
			r = jr_take_int(&j, &v, 0, UINT32_MAX);
			m->memory_mb = (uint32_t)v;
		} else if (!strcmp(key, "deadlineMs")) {
			r = jr_take_int(&j, &m->deadline_ms, 0, INT64_MAX);
		} else {
			r = jr_value(&j);
		}
		free(key);
		if (r < 0)
			goto bad;
		jr_ws(&j);
		if (j.p >= j.end)
			goto bad;
		if (*j.p == ',') {
			j.p++;
			jr_ws(&j);
			continue;
		}
		if (*j.p++ != '}')
			goto bad;
		break;
	}
done:
	jr_ws(&j);
	if (j.p != j.end)
		goto bad;
	return 0;
bad:
	emfn_meta_free(m);
	return -1;
}
