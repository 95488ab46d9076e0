/* runtime/host/fnspec.c — the deploy body of a function: parse, validate, print back, copy.
 *
 * Validation is strict on purpose: an unknown key, a fractional or quoted number, a relative path
 * are refused rather than guessed at, because a function deployed with a typo'd limit runs with a
 * default nobody asked for. Every message starts with the field (`memoryMb: ...`, `command[2]:`,
 * `environment.FOO:`) and shows the value it got. Every error is EINVAL (400 at the API), also
 * when a path is missing: a bundle that does not exist is a bad request, not a missing function.
 * A key set to null counts as not given (a client that merges objects unsets a key that way);
 * a misspelt key is refused even then. */
#include "runtime/host/fnspec.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const known_keys[] = {
	"bundle", "rootfs", "command", "memoryMb", "timeoutMs",
	"environment", "concurrency", "tmpMb", "network", "template",
	"snapshot", "restore",
};

bool em_fn_name_valid(const char *name)
{
	size_t n = 0;

	if (!name)
		return false;
	for (; name[n]; n++) {
		char c = name[n];

		if (n >= EM_FN_NAME_MAX)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

/* A POSIX portable variable name: what every shell and libc can pass on. */
static bool env_name_valid(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* The value as the client sent it, for "(got ...)"; long values are cut with "...". */
static const char *shown(const json_t *v, char *buf, size_t cap)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

	if (!s)
		return "?";
	if (strlen(s) >= cap && cap > 4)
		snprintf(buf, cap, "%.*s...", (int)(cap - 4), s);
	else
		snprintf(buf, cap, "%s", s);
	free(s);
	return buf;
}

/* body[key], with null as absent. */
static const json_t *get(const json_t *body, const char *key)
{
	const json_t *v = json_object_get(body, key);

	return json_is_null(v) ? NULL : v;
}

/* A JSON string that is also a C string (no embedded NUL, which json_string_value would cut). */
static const char *cstring(const json_t *v)
{
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

static int get_u32(const json_t *body, const char *key, uint32_t min, uint32_t max,
		   const char *unit, uint32_t def, uint32_t *out, struct em_err *err)
{
	const json_t *v = get(body, key);
	char buf[64];

	if (!v) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return em_err_msg(err, EINVAL, "%s: must be an integer from %u to %u%s%s (got %s)",
				  key, min, max, unit ? " in " : "", unit ? unit : "",
				  shown(v, buf, sizeof(buf)));
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

/* An absolute path of an existing directory; returns a malloc'd copy. */
static int get_dir(const json_t *body, const char *key, char **out, struct em_err *err)
{
	const json_t *v = get(body, key);
	const char *s = cstring(v);
	char buf[64], ename[16];
	struct stat st;

	if (!s || s[0] != '/')
		return em_err_msg(err, EINVAL, "%s: must be an absolute path (got %s)", key,
				  shown(v, buf, sizeof(buf)));
	if (strlen(s) >= PATH_MAX - sizeof("/config.json"))
		return em_err_msg(err, EINVAL, "%s: path longer than %d bytes", key,
				  (int)(PATH_MAX - sizeof("/config.json")));
	if (stat(s, &st) < 0)
		return em_err_msg(err, EINVAL, "%s: %s: %s (%s)", key, s,
				  em_errno_name(errno, ename), strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return em_err_msg(err, EINVAL, "%s: %s: not a directory", key, s);
	*out = strdup(s);
	return *out ? 0 : em_err_msg(err, ENOMEM, "%s: out of memory", key);
}

static int parse_bundle(const json_t *body, struct em_fn_spec *spec, struct em_err *err)
{
	char path[PATH_MAX], ename[16];
	struct stat st;
	int ret = get_dir(body, "bundle", &spec->bundle, err);

	if (ret < 0)
		return ret;
	/* the host reads the config when it makes an instance; a bundle without one is refused
	 * now, at deploy, not at the first invocation */
	snprintf(path, sizeof(path), "%s%sconfig.json", spec->bundle,
		 spec->bundle[strlen(spec->bundle) - 1] == '/' ? "" : "/");
	if (stat(path, &st) < 0)
		return em_err_msg(err, EINVAL, "bundle: %s: %s (%s)", path,
				  em_errno_name(errno, ename), strerror(errno));
	if (!S_ISREG(st.st_mode))
		return em_err_msg(err, EINVAL, "bundle: %s: not a regular file", path);
	return 0;
}

static int parse_command(const json_t *body, struct em_fn_spec *spec, struct em_err *err)
{
	const json_t *v = get(body, "command"), *a;
	char buf[64];
	size_t i;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return em_err_msg(err, EINVAL, "command: must be a non-empty array of strings (got %s)",
				  shown(v, buf, sizeof(buf)));
	spec->command = calloc(json_array_size(v) + 1, sizeof(char *));
	if (!spec->command)
		return em_err_msg(err, ENOMEM, "command: out of memory");
	json_array_foreach(v, i, a) {
		const char *s = cstring(a);

		if (!s)
			return em_err_msg(err, EINVAL, "command[%zu]: must be a string (got %s)", i,
					  shown(a, buf, sizeof(buf)));
		if (i == 0 && !*s)
			return em_err_msg(err, EINVAL, "command[0]: must not be empty");
		spec->command[i] = strdup(s);
		if (!spec->command[i])
			return em_err_msg(err, ENOMEM, "command: out of memory");
		spec->n_command = i + 1;
	}
	return 0;
}

static int parse_env(const json_t *body, struct em_fn_spec *spec, struct em_err *err)
{
	const json_t *env = get(body, "environment"), *v;
	const char *k;
	char buf[64];

	if (!env)
		return 0;
	if (!json_is_object(env))
		return em_err_msg(err, EINVAL, "environment: must be an object of strings (got %s)",
				  shown(env, buf, sizeof(buf)));
	spec->env = calloc(json_object_size(env) + 1, sizeof(char *));
	if (!spec->env)
		return em_err_msg(err, ENOMEM, "environment: out of memory");
	json_object_foreach((json_t *)env, k, v) {
		const char *s = cstring(v);

		if (!*k)
			return em_err_msg(err, EINVAL, "environment: a variable name must not be empty");
		if (strchr(k, '='))
			return em_err_msg(err, EINVAL,
					  "environment: variable name \"%.64s\" must not contain '='", k);
		if (!env_name_valid(k))
			return em_err_msg(err, EINVAL,
					  "environment: \"%.64s\" is not a valid variable name "
					  "([A-Za-z_][A-Za-z0-9_]*)", k);
		if (!s)
			return em_err_msg(err, EINVAL, "environment.%s: must be a string (got %s)", k,
					  shown(v, buf, sizeof(buf)));
		if (asprintf(&spec->env[spec->n_env], "%s=%s", k, s) < 0) {
			spec->env[spec->n_env] = NULL;
			return em_err_msg(err, ENOMEM, "environment: out of memory");
		}
		spec->n_env++;
	}
	return 0;
}

/* An optional string field that must be one of names (the first is the default, index 0). */
static int parse_enum(const json_t *body, const char *key, const char *const *names, size_t n,
		      size_t *out, struct em_err *err)
{
	const json_t *v = get(body, key);
	char buf[96], list[256];
	size_t i, len = 0;
	const char *s;

	*out = 0;
	if (!v)
		return 0;
	s = cstring(v);
	for (i = 0; s && i < n && strcmp(s, names[i]); i++)
		;
	if (s && i < n) {
		*out = i;
		return 0;
	}
	list[0] = 0;
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s\"%s\"",
					i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
	return em_err_msg(err, EINVAL, "%s: must be %s (got %s)", key, list,
			  shown(v, buf, sizeof(buf)));
}

static int parse(const char *name, const json_t *body, struct em_fn_spec *spec,
		 struct em_err *err)
{
	const json_t *v;
	const char *k;
	char buf[64];
	int ret;

	if (!em_fn_name_valid(name))
		return em_err_msg(err, EINVAL,
				  "name: must be 1 to %d characters of A-Z a-z 0-9 _ - (got \"%.80s\")",
				  EM_FN_NAME_MAX, name ? name : "");
	snprintf(spec->name, sizeof(spec->name), "%s", name);
	if (!json_is_object(body))
		return em_err_msg(err, EINVAL, "body: must be a JSON object (got %s)",
				  shown(body, buf, sizeof(buf)));
	/* unknown keys first: "memroyMb" must fail as a typo, not deploy 128 MB */
	json_object_foreach((json_t *)body, k, v) {
		size_t i;

		for (i = 0; i < EM_ARRAY_SIZE(known_keys); i++)
			if (!strcmp(k, known_keys[i]))
				break;
		if (i == EM_ARRAY_SIZE(known_keys))
			return em_err_msg(err, EINVAL,
					  "%.64s: unknown key (known: bundle, rootfs, command, memoryMb, "
					  "timeoutMs, environment, concurrency, tmpMb, network, "
					  "template, snapshot, restore)", k);
	}

	bool has_bundle = get(body, "bundle"), has_rootfs = get(body, "rootfs"),
	     has_command = get(body, "command");
	if (has_bundle && (has_rootfs || has_command))
		return em_err_msg(err, EINVAL, "bundle: cannot be combined with %s (give either "
				  "bundle, or rootfs and command)", has_rootfs ? "rootfs" : "command");
	if (!has_bundle && !has_rootfs && !has_command)
		return em_err_msg(err, EINVAL,
				  "bundle: missing (give either bundle, or rootfs and command)");
	if (has_rootfs && !has_command)
		return em_err_msg(err, EINVAL, "command: missing (required with rootfs)");
	if (has_command && !has_rootfs)
		return em_err_msg(err, EINVAL, "rootfs: missing (required with command)");
	if (has_bundle)
		ret = parse_bundle(body, spec, err);
	else if ((ret = get_dir(body, "rootfs", &spec->rootfs, err)) == 0)
		ret = parse_command(body, spec, err);
	if (ret < 0)
		return ret;

	if ((ret = get_u32(body, "memoryMb", EM_FN_MEMORY_MIN, EM_FN_MEMORY_MAX, "MB",
			   EM_FN_MEMORY_MIN, &spec->memory_mb, err)) < 0 ||
	    (ret = get_u32(body, "timeoutMs", 1, EM_FN_TIMEOUT_MAX_MS, "ms",
			   EM_FN_TIMEOUT_DEFAULT_MS, &spec->timeout_ms, err)) < 0 ||
	    (ret = get_u32(body, "concurrency", 0, 1000, NULL, 0, &spec->concurrency, err)) < 0 ||
	    (ret = get_u32(body, "tmpMb", 1, EM_FN_TMP_MAX_MB, "MB", EM_FN_TMP_DEFAULT_MB,
			   &spec->tmp_mb, err)) < 0)
		return ret;

	v = get(body, "network");
	if (v) {
		const char *s = cstring(v);

		if (s && !strcmp(s, "none"))
			spec->network = EM_FN_NET_NONE;
		else if (s && !strcmp(s, "bridge"))
			spec->network = EM_FN_NET_BRIDGE;
		else
			return em_err_msg(err, EINVAL, "network: must be \"none\" or \"bridge\" (got %s)",
					  shown(v, buf, sizeof(buf)));
	}
	v = get(body, "template");
	if (v) {
		static const char *const names[] = { "auto", "provisioned", "off" };
		const char *s = cstring(v);
		size_t i;

		for (i = 0; s && i < EM_ARRAY_SIZE(names) && strcmp(s, names[i]); i++)
			;
		if (!s || i == EM_ARRAY_SIZE(names))
			return em_err_msg(err, EINVAL, "template: must be \"auto\", \"provisioned\" "
					  "or \"off\" (got %s)", shown(v, buf, sizeof(buf)));
		spec->tmpl = (enum em_fn_template)i;
	}
	size_t i;
	static const char *const snap_names[] = { "off", "auto", "provisioned" };
	static const char *const restore_names[] = { "mmap", "eager", "lazy" }; /* enum order */
	ret = parse_enum(body, "snapshot", snap_names, EM_ARRAY_SIZE(snap_names), &i, err);
	if (ret < 0)
		return ret;
	spec->snapshot = (enum em_fn_snapshot)i;
	ret = parse_enum(body, "restore", restore_names, EM_ARRAY_SIZE(restore_names), &i, err);
	if (ret < 0)
		return ret;
	spec->restore = (enum em_fn_restore)i;
	if (spec->snapshot != EM_FN_SNAP_OFF && spec->tmpl == EM_FN_TMPL_OFF)
		return em_err_msg(err, EINVAL, "snapshot: \"%s\" needs a template, and template is "
				  "\"off\"", snap_names[spec->snapshot]);
	if (spec->snapshot == EM_FN_SNAP_PROVISIONED && spec->tmpl == EM_FN_TMPL_AUTO)
		spec->tmpl = EM_FN_TMPL_PROVISIONED; /* the image is made from the template at deploy */
	return parse_env(body, spec, err);
}

int em_fn_spec_from_json(const char *name, const json_t *body, struct em_fn_spec *spec,
			 struct em_err *err)
{
	int ret;

	memset(spec, 0, sizeof(*spec));
	ret = parse(name, body, spec, err);
	if (ret < 0)
		em_fn_spec_free(spec); /* the caller frees nothing after a failure */
	return ret;
}

json_t *em_fn_spec_to_json(const struct em_fn_spec *spec)
{
	json_t *o = json_object(), *env = json_object();

	if (!o || !env) {
		json_decref(o);
		json_decref(env);
		return NULL;
	}
	if (spec->bundle) {
		json_object_set_new(o, "bundle", json_string(spec->bundle));
	} else {
		json_t *cmd = json_array();

		json_object_set_new(o, "rootfs", json_string(spec->rootfs ? spec->rootfs : ""));
		for (size_t i = 0; i < spec->n_command; i++)
			json_array_append_new(cmd, json_string(spec->command[i]));
		json_object_set_new(o, "command", cmd);
	}
	json_object_set_new(o, "memoryMb", json_integer(spec->memory_mb));
	json_object_set_new(o, "timeoutMs", json_integer(spec->timeout_ms));
	for (size_t i = 0; i < spec->n_env; i++) {
		const char *eq = strchr(spec->env[i], '=');
		char key[256];

		if (!eq || (size_t)(eq - spec->env[i]) >= sizeof(key))
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)(eq - spec->env[i]), spec->env[i]);
		json_object_set_new(env, key, json_string(eq + 1));
	}
	json_object_set_new(o, "environment", env);
	json_object_set_new(o, "concurrency", json_integer(spec->concurrency));
	json_object_set_new(o, "tmpMb", json_integer(spec->tmp_mb));
	json_object_set_new(o, "network",
			    json_string(spec->network == EM_FN_NET_BRIDGE ? "bridge" : "none"));
	json_object_set_new(o, "template", json_string(em_fn_template_name(spec->tmpl)));
	json_object_set_new(o, "snapshot", json_string(em_fn_snapshot_name(spec->snapshot)));
	json_object_set_new(o, "restore", json_string(em_fn_restore_name(spec->restore)));
	return o;
}

static int copy_strv(char ***dst, size_t *dst_n, char *const *src, size_t n)
{
	*dst = NULL;
	*dst_n = 0;
	if (!src)
		return 0;
	*dst = calloc(n + 1, sizeof(char *));
	if (!*dst)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		(*dst)[i] = strdup(src[i]);
		if (!(*dst)[i])
			return -ENOMEM;
		*dst_n = i + 1;
	}
	return 0;
}

int em_fn_spec_copy(struct em_fn_spec *dst, const struct em_fn_spec *src, struct em_err *err)
{
	*dst = *src;
	dst->bundle = dst->rootfs = NULL;
	dst->command = dst->env = NULL; /* nothing of src's may be freed by a failed copy */
	dst->n_command = dst->n_env = 0;
	if ((src->bundle && !(dst->bundle = strdup(src->bundle))) ||
	    (src->rootfs && !(dst->rootfs = strdup(src->rootfs))) ||
	    copy_strv(&dst->command, &dst->n_command, src->command, src->n_command) < 0 ||
	    copy_strv(&dst->env, &dst->n_env, src->env, src->n_env) < 0) {
		em_fn_spec_free(dst);
		return em_err_msg(err, ENOMEM, "copy the spec of function %s: out of memory",
				  src->name);
	}
	return 0;
}

static void free_strv(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void em_fn_spec_free(struct em_fn_spec *spec)
{
	if (!spec)
		return;
	free(spec->bundle);
	free(spec->rootfs);
	free_strv(spec->command, spec->n_command);
	free_strv(spec->env, spec->n_env);
	spec->bundle = spec->rootfs = NULL;
	spec->command = spec->env = NULL;
	spec->n_command = spec->n_env = 0;
}

const char *em_fn_template_name(enum em_fn_template t)
{
	return t == EM_FN_TMPL_PROVISIONED ? "provisioned" : t == EM_FN_TMPL_OFF ? "off" : "auto";
}

const char *em_fn_snapshot_name(enum em_fn_snapshot s)
{
	return s == EM_FN_SNAP_PROVISIONED ? "provisioned" : s == EM_FN_SNAP_AUTO ? "auto" : "off";
}

const char *em_fn_restore_name(enum em_fn_restore r)
{
	return r == EM_FN_RESTORE_LAZY ? "lazy" : r == EM_FN_RESTORE_EAGER ? "eager" : "mmap";
}
