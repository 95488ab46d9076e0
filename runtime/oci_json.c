/* runtime/oci_json.c — JSON paths and typed accessors for the OCI parser (see oci_json.h). */
#include "runtime/oci_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/err.h"

/* A decoded integer too big for json_int_t is a string that starts with this byte, followed by
 * its decimal digits. Real strings with a NUL byte are refused by oci_as_str(), so the mark can
 * only ever be read as a number. */
#define BIG_MARK '\0'

struct oci_path oci_key(const char *base, const char *key)
{
	struct oci_path p;

	/* keys of free-form objects (sysctl, annotations, unified) have dots of their own:
	 * linux.sysctl["net.ipv4.ip_forward"] */
	if (!*key || strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
			     strlen(key))
		snprintf(p.s, sizeof(p.s), "%s[\"%s\"]", base ? base : "", key);
	else if (base && *base)
		snprintf(p.s, sizeof(p.s), "%s.%s", base, key);
	else
		snprintf(p.s, sizeof(p.s), "%s", key);
	return p;
}

struct oci_path oci_idx(const char *base, size_t i)
{
	struct oci_path p;

	snprintf(p.s, sizeof(p.s), "%s[%zu]", base, i);
	return p;
}

static bool is_big(const json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 1 && json_string_value(v)[0] == BIG_MARK;
}

const char *oci_type_name(const json_t *v)
{
	if (is_big(v))
		return "number";
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER:
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

/* Copy text, rewriting unsigned integer literals above INT64_MAX as marked strings. Everything
 * else is copied byte for byte, so jansson's line numbers stay right (columns after a rewritten
 * number on the same line move by the 8 added bytes). */
static int protect_big_ints(const char *in, size_t len, char **out, size_t *outlen)
{
	size_t cap = len + 1, n = 0;
	char *buf = malloc(cap);
	bool in_str = false, esc = false;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len;) {
		char c = in[i];

		if (in_str || !(c == '-' || (c >= '0' && c <= '9'))) {
			if (in_str) {
				if (esc)
					esc = false;
				else if (c == '\\')
					esc = true;
				else if (c == '"')
					in_str = false;
			} else if (c == '"') {
				in_str = true;
			}
			buf[n++] = c;
			i++;
			continue;
		}
		size_t j = i;
		bool digits_only = true;

		while (j < len && strchr("-+.eE0123456789", in[j]) && in[j]) {
			if (in[j] < '0' || in[j] > '9')
				digits_only = false;
			j++;
		}
		bool big = false;

		if (digits_only && j - i >= 19 && j - i <= 20) {
			char num[24];
			char *end;

			memcpy(num, in + i, j - i);
			num[j - i] = '\0';
			errno = 0;
			unsigned long long v = strtoull(num, &end, 10);
			big = errno == 0 && *end == '\0' && v > (unsigned long long)INT64_MAX;
		}
		if (big) {
			char *nb;

			cap += 8;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			memcpy(buf + n, "\"\\u0000", 7);
			n += 7;
			memcpy(buf + n, in + i, j - i);
			n += j - i;
			buf[n++] = '"';
		} else {
			memcpy(buf + n, in + i, j - i);
			n += j - i;
		}
		i = j;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}

json_t *oci_decode(const char *text, size_t len, struct em_err *err)
{
	cleanup_free char *copy = NULL;
	size_t copy_len;
	json_error_t jerr;
	json_t *root;

	if (protect_big_ints(text, len, &copy, &copy_len) < 0) {
		em_err_set(err, ENOMEM, "copy JSON text");
		return NULL;
	}
	/* Duplicate keys are refused: two parsers reading one config must not disagree on it.
	 * NULs are allowed only for the big-integer mark (oci_as_str refuses them elsewhere). */
	root = json_loadb(copy, copy_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!root) {
		if (jerr.line < 1)
			em_err_msg(err, EINVAL, "invalid JSON: %s", jerr.text);
		else
			em_err_msg(err, EINVAL, "line %d, column %d: %s", jerr.line, jerr.column,
				   jerr.text);
	}
	return root;
}

json_t *oci_field(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

static int want(const json_t *v, const char *path, const char *what, struct em_err *err)
{
	return em_err_msg(err, EINVAL, "%s: expected %s, got %s", path, what, oci_type_name(v));
}

int oci_want_object(const json_t *v, const char *path, struct em_err *err)
{
	return json_is_object(v) ? 0 : want(v, path, "an object", err);
}

int oci_want_array(const json_t *v, const char *path, struct em_err *err)
{
	return json_is_array(v) ? 0 : want(v, path, "an array", err);
}

int oci_as_str(const json_t *v, const char *path, char **out, struct em_err *err)
{
	if (!json_is_string(v) || is_big(v))
		return want(v, path, "a string", err);
	const char *s = json_string_value(v);

	if (strlen(s) != json_string_length(v))
		return em_err_msg(err, EINVAL, "%s: contains a NUL byte", path);
	free(*out);
	*out = strdup(s);
	if (!*out)
		return em_err_set(err, ENOMEM, "%s", path);
	return 0;
}

int oci_as_bool(const json_t *v, const char *path, bool *out, struct em_err *err)
{
	if (!json_is_boolean(v))
		return want(v, path, "a boolean", err);
	*out = json_is_true(v);
	return 0;
}

/* Read an integer as a sign and magnitude; "got" holds its text for messages. */
static int read_int(const json_t *v, const char *path, bool *neg, uint64_t *mag, char got[32],
		    struct em_err *err)
{
	if (is_big(v)) {
		*neg = false;
		*mag = strtoull(json_string_value(v) + 1, NULL, 10);
		snprintf(got, 32, "%" PRIu64, *mag);
		return 0;
	}
	if (json_is_real(v))
		return em_err_msg(err, EINVAL, "%s: expected an integer, got %g", path,
				  json_real_value(v));
	if (!json_is_integer(v))
		return want(v, path, "an integer", err);
	json_int_t i = json_integer_value(v);

	*neg = i < 0;
	*mag = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
	snprintf(got, 32, "%lld", (long long)i);
	return 0;
}

int oci_as_i64(const json_t *v, const char *path, int64_t min, int64_t max, int64_t *out,
	       struct em_err *err)
{
	char got[32];
	uint64_t mag;
	bool neg;
	int r = read_int(v, path, &neg, &mag, got, err);

	if (r < 0)
		return r;
	if (!neg && mag <= (uint64_t)INT64_MAX && (int64_t)mag >= min && (int64_t)mag <= max) {
		*out = (int64_t)mag;
		return 0;
	}
	if (neg) {
		int64_t s = json_integer_value(v);

		if (s >= min && s <= max) {
			*out = s;
			return 0;
		}
	}
	return em_err_msg(err, EINVAL, "%s: must be between %" PRId64 " and %" PRId64 ", got %s",
			  path, min, max, got);
}

int oci_as_u64(const json_t *v, const char *path, uint64_t max, uint64_t *out,
	       struct em_err *err)
{
	char got[32];
	uint64_t mag;
	bool neg;
	int r = read_int(v, path, &neg, &mag, got, err);

	if (r < 0)
		return r;
	if (neg && max == UINT64_MAX)
		return em_err_msg(err, EINVAL, "%s: must not be negative, got %s", path, got);
	if (neg || mag > max)
		return em_err_msg(err, EINVAL, "%s: must be between 0 and %" PRIu64 ", got %s",
				  path, max, got);
	*out = mag;
	return 0;
}

int oci_alloc(void **out, size_t n, size_t size, const char *path, struct em_err *err)
{
	*out = NULL;
	if (n == 0)
		return 0;
	*out = calloc(n, size);
	if (!*out)
		return em_err_set(err, ENOMEM, "%s", path);
	return 0;
}

int oci_as_strv(const json_t *v, const char *path, struct em_strv *out, struct em_err *err)
{
	size_t n;
	int r;

	if (!json_is_array(v))
		return want(v, path, "an array of strings", err);
	oci_strv_free(out);
	n = json_array_size(v);
	/* NULL-terminated as a bonus for execve-style callers */
	out->v = calloc(n + 1, sizeof(*out->v));
	if (!out->v)
		return em_err_set(err, ENOMEM, "%s", path);
	for (size_t i = 0; i < n; i++) {
		r = oci_as_str(json_array_get(v, i), oci_idx(path, i).s, &out->v[i], err);
		if (r < 0)
			return r;
		out->n = i + 1;
	}
	return 0;
}

int oci_as_kvv(const json_t *v, const char *path, struct em_oci_kvv *out, struct em_err *err)
{
	const char *key;
	json_t *val;
	int r;

	r = oci_want_object(v, path, err);
	if (r < 0)
		return r;
	oci_kvv_free(out);
	r = oci_alloc((void **)&out->v, json_object_size(v), sizeof(*out->v), path, err);
	if (r < 0)
		return r;
	json_object_foreach((json_t *)v, key, val) {
		struct em_oci_kv *kv = &out->v[out->n];

		kv->key = strdup(key);
		out->n++;
		if (!kv->key)
			return em_err_set(err, ENOMEM, "%s", path);
		r = oci_as_str(val, oci_key(path, key).s, &kv->value, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int oci_get_str(const json_t *obj, const char *base, const char *key, bool required, char **out,
		struct em_err *err)
{
	json_t *v = oci_field(obj, key);

	if (!v)
		return required ? em_err_msg(err, EINVAL, "%s: required", oci_key(base, key).s) : 0;
	return oci_as_str(v, oci_key(base, key).s, out, err);
}

int oci_get_bool(const json_t *obj, const char *base, const char *key, bool *out,
		 struct em_err *err)
{
	json_t *v = oci_field(obj, key);

	return v ? oci_as_bool(v, oci_key(base, key).s, out, err) : 0;
}

int oci_get_opt_bool(const json_t *obj, const char *base, const char *key,
		     struct em_opt_bool *out, struct em_err *err)
{
	json_t *v = oci_field(obj, key);
	int r;

	if (!v)
		return 0;
	r = oci_as_bool(v, oci_key(base, key).s, &out->v, err);
	out->set = r == 0;
	return r;
}

int oci_get_opt_i64(const json_t *obj, const char *base, const char *key, int64_t min,
		    int64_t max, struct em_opt_i64 *out, struct em_err *err)
{
	json_t *v = oci_field(obj, key);
	int r;

	if (!v)
		return 0;
	r = oci_as_i64(v, oci_key(base, key).s, min, max, &out->v, err);
	out->set = r == 0;
	return r;
}

int oci_get_opt_u64(const json_t *obj, const char *base, const char *key, uint64_t max,
		    struct em_opt_u64 *out, struct em_err *err)
{
	json_t *v = oci_field(obj, key);
	int r;

	if (!v)
		return 0;
	r = oci_as_u64(v, oci_key(base, key).s, max, &out->v, err);
	out->set = r == 0;
	return r;
}

int oci_get_u32(const json_t *obj, const char *base, const char *key, bool required,
		uint32_t max, uint32_t *out, struct em_err *err)
{
	json_t *v = oci_field(obj, key);
	uint64_t u;
	int r;

	if (!v)
		return required ? em_err_msg(err, EINVAL, "%s: required", oci_key(base, key).s) : 0;
	r = oci_as_u64(v, oci_key(base, key).s, max, &u, err);
	if (r == 0)
		*out = (uint32_t)u;
	return r;
}

int oci_get_strv(const json_t *obj, const char *base, const char *key, struct em_strv *out,
		 struct em_err *err)
{
	json_t *v = oci_field(obj, key);

	return v ? oci_as_strv(v, oci_key(base, key).s, out, err) : 0;
}

int oci_get_kvv(const json_t *obj, const char *base, const char *key, struct em_oci_kvv *out,
		struct em_err *err)
{
	json_t *v = oci_field(obj, key);

	return v ? oci_as_kvv(v, oci_key(base, key).s, out, err) : 0;
}

int oci_check_abs(const char *s, const char *path, struct em_err *err)
{
	if (s[0] != '/')
		return em_err_msg(err, EINVAL, "%s: must be an absolute path, got \"%s\"", path, s);
	return 0;
}

int oci_as_idmaps(const json_t *v, const char *path, struct em_oci_idmap **out, size_t *n,
		  struct em_err *err)
{
	size_t len;
	int r;

	r = oci_want_array(v, path, err);
	if (r < 0)
		return r;
	len = json_array_size(v);
	r = oci_alloc((void **)out, len, sizeof(**out), path, err);
	if (r < 0)
		return r;
	*n = len;
	for (size_t i = 0; i < len; i++) {
		struct oci_path p = oci_idx(path, i);
		json_t *m = json_array_get(v, i);
		struct em_oci_idmap *im = &(*out)[i];

		r = oci_want_object(m, p.s, err);
		if (r == 0)
			r = oci_get_u32(m, p.s, "containerID", true, UINT32_MAX, &im->container_id,
					err);
		if (r == 0)
			r = oci_get_u32(m, p.s, "hostID", true, UINT32_MAX, &im->host_id, err);
		if (r == 0)
			r = oci_get_u32(m, p.s, "size", true, UINT32_MAX, &im->size, err);
		if (r < 0)
			return r;
		if (im->size == 0)
			return em_err_msg(err, EINVAL, "%s.size: must be at least 1", p.s);
		if ((uint64_t)im->container_id + im->size > (uint64_t)UINT32_MAX + 1 ||
		    (uint64_t)im->host_id + im->size > (uint64_t)UINT32_MAX + 1)
			return em_err_msg(err, EINVAL, "%s: range goes past id 4294967295", p.s);
		/* the kernel refuses overlapping ranges in one map (user_namespaces(7)) */
		for (size_t k = 0; k < i; k++) {
			const struct em_oci_idmap *o = &(*out)[k];

			if (im->container_id < (uint64_t)o->container_id + o->size &&
			    o->container_id < (uint64_t)im->container_id + im->size)
				return em_err_msg(err, EINVAL, "%s: containerID range overlaps %s",
						  p.s, oci_idx(path, k).s);
			if (im->host_id < (uint64_t)o->host_id + o->size &&
			    o->host_id < (uint64_t)im->host_id + im->size)
				return em_err_msg(err, EINVAL, "%s: hostID range overlaps %s", p.s,
						  oci_idx(path, k).s);
		}
	}
	return 0;
}

void oci_strv_free(struct em_strv *v)
{
	if (v->v)
		for (size_t i = 0; i < v->n; i++)
			free(v->v[i]);
	free(v->v);
	v->v = NULL;
	v->n = 0;
}

void oci_kvv_free(struct em_oci_kvv *v)
{
	for (size_t i = 0; i < v->n; i++) {
		free(v->v[i].key);
		free(v->v[i].value);
	}
	free(v->v);
	v->v = NULL;
	v->n = 0;
}
