/* runtime/oci_json.h — private to the OCI parser (oci.c, oci_linux.c): JSON paths for error
 * messages ("linux.namespaces[2].type") and typed accessors over jansson values that fail with
 * "<path>: expected a string, got number" and friends. Not part of the runtime's public API. */
#ifndef EMBER_RUNTIME_OCI_JSON_H
#define EMBER_RUNTIME_OCI_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/oci.h"

struct em_err;

/* A JSON path, built on the stack as the parser descends; long paths are cut, which only shortens
 * a message. */
struct oci_path { char s[256]; };

struct oci_path oci_key(const char *base, const char *key);   /* base.key, or key if base is "" */
struct oci_path oci_idx(const char *base, size_t i);          /* base[i] */

/* Decode a document. Integers above INT64_MAX (RLIM_INFINITY written as 18446744073709551615 by
 * Go tools) do not fit jansson's json_int_t; they are carried through as marked strings that
 * oci_as_u64() understands. A syntax error reads "line L, column C: <reason>". */
json_t *oci_decode(const char *text, size_t len, struct em_err *err);

/* "string", "number", "object", "array", "boolean", "null". */
const char *oci_type_name(const json_t *v);

/* The member `key` of obj, or NULL when it is absent or JSON null (Go's decoder, which runc
 * uses, treats null as absent too). */
json_t *oci_field(const json_t *obj, const char *key);

/* Value converters: the value must be present; `path` names it in errors. */
int oci_want_object(const json_t *v, const char *path, struct em_err *err);
int oci_want_array(const json_t *v, const char *path, struct em_err *err);
int oci_as_str(const json_t *v, const char *path, char **out, struct em_err *err);
int oci_as_bool(const json_t *v, const char *path, bool *out, struct em_err *err);
int oci_as_i64(const json_t *v, const char *path, int64_t min, int64_t max, int64_t *out,
	       struct em_err *err);
int oci_as_u64(const json_t *v, const char *path, uint64_t max, uint64_t *out,
	       struct em_err *err);
int oci_as_strv(const json_t *v, const char *path, struct em_strv *out, struct em_err *err);
int oci_as_kvv(const json_t *v, const char *path, struct em_oci_kvv *out, struct em_err *err);

/* Keyed getters: member `key` of obj, whose path is `base`. Absent members leave *out untouched
 * (or fail with "<path>: required" where `required` is asked for). */
int oci_get_str(const json_t *obj, const char *base, const char *key, bool required, char **out,
		struct em_err *err);
int oci_get_bool(const json_t *obj, const char *base, const char *key, bool *out,
		 struct em_err *err);
int oci_get_opt_bool(const json_t *obj, const char *base, const char *key,
		     struct em_opt_bool *out, struct em_err *err);
int oci_get_opt_i64(const json_t *obj, const char *base, const char *key, int64_t min,
		    int64_t max, struct em_opt_i64 *out, struct em_err *err);
int oci_get_opt_u64(const json_t *obj, const char *base, const char *key, uint64_t max,
		    struct em_opt_u64 *out, struct em_err *err);
int oci_get_u32(const json_t *obj, const char *base, const char *key, bool required,
		uint32_t max, uint32_t *out, struct em_err *err);
int oci_get_strv(const json_t *obj, const char *base, const char *key, struct em_strv *out,
		 struct em_err *err);
int oci_get_kvv(const json_t *obj, const char *base, const char *key, struct em_oci_kvv *out,
		struct em_err *err);

/* "<path>: must be an absolute path, got \"tmp\"" unless s starts with '/'. */
int oci_check_abs(const char *s, const char *path, struct em_err *err);

/* Allocate an array of n zeroed elements; n == 0 gives NULL. */
int oci_alloc(void **out, size_t n, size_t size, const char *path, struct em_err *err);

/* idmaps ({containerID, hostID, size}) shared by linux.{uid,gid}Mappings and mounts[]. */
int oci_as_idmaps(const json_t *v, const char *path, struct em_oci_idmap **out, size_t *n,
		  struct em_err *err);

void oci_strv_free(struct em_strv *v);
void oci_kvv_free(struct em_oci_kvv *v);

/* oci_linux.c */
int oci_parse_linux(const json_t *v, const char *path, struct em_oci_linux *lx,
		    struct em_err *err);
void oci_linux_free(struct em_oci_linux *lx);

#endif
