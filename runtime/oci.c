/* runtime/oci.c — config.json and process.json into struct em_oci_config / em_oci_process
 * (see oci.h). This file owns the top level, root, mounts, process, hooks and the checks that
 * span sections (hostname and sysctls against namespaces); oci_linux.c owns `linux`. Parsing
 * is all-or-nothing: on error the output is freed and zeroed. */
#include "runtime/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "runtime/oci_json.h"

/* ---- process */

static const char *const cap_set_keys[EM_CAP_NSETS] = {
	[EM_CAP_BOUNDING] = "bounding",       [EM_CAP_EFFECTIVE] = "effective",
	[EM_CAP_INHERITABLE] = "inheritable", [EM_CAP_PERMITTED] = "permitted",
	[EM_CAP_AMBIENT] = "ambient",
};

static int parse_caps(const json_t *v, const char *path, struct em_oci_process *p,
		      struct em_err *err)
{
	int r = oci_want_object(v, path, err);

	if (r < 0)
		return r;
	for (int s = 0; s < EM_CAP_NSETS; s++) {
		struct oci_path sp = oci_key(path, cap_set_keys[s]);
		json_t *arr = oci_field(v, cap_set_keys[s]);

		if (!arr)
			continue;
		if (!json_is_array(arr))
			return em_err_msg(err, EINVAL, "%s: expected an array of strings, got %s",
					  sp.s, oci_type_name(arr));
		p->caps_set[s] = true;
		for (size_t i = 0; i < json_array_size(arr); i++) {
			struct oci_path ip = oci_idx(sp.s, i);
			json_t *e = json_array_get(arr, i);
			int cap;

			if (!json_is_string(e))
				return em_err_msg(err, EINVAL, "%s: expected a string, got %s", ip.s,
						  oci_type_name(e));
			cap = em_cap_from_name(json_string_value(e));
			if (cap < 0)
				return em_err_msg(err, EINVAL, "%s: unknown capability \"%s\"", ip.s,
						  json_string_value(e));
			p->caps[s] |= UINT64_C(1) << cap;
		}
	}
	return 0;
}

static int parse_rlimits(const json_t *v, const char *path, struct em_oci_process *p,
			 struct em_err *err)
{
	int r = oci_want_array(v, path, err);

	if (r < 0)
		return r;
	r = oci_alloc((void **)&p->rlimits, json_array_size(v), sizeof(*p->rlimits), path, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < json_array_size(v); i++) {
		struct oci_path ip = oci_idx(path, i);
		struct em_oci_rlimit *rl = &p->rlimits[i];
		json_t *e = json_array_get(v, i), *soft, *hard;

		p->n_rlimits = i + 1;
		r = oci_want_object(e, ip.s, err);
		if (r == 0)
			r = oci_get_str(e, ip.s, "type", true, &rl->type, err);
		if (r < 0)
			return r;
		rl->resource = em_rlimit_from_name(rl->type);
		if (rl->resource < 0)
			return em_err_msg(err, EINVAL, "%s.type: unknown rlimit \"%s\"", ip.s,
					  rl->type);
		for (size_t k = 0; k < i; k++)
			if (p->rlimits[k].resource == rl->resource)
				return em_err_msg(err, EINVAL, "%s.type: duplicate rlimit \"%s\"",
						  ip.s, rl->type);
		soft = oci_field(e, "soft");
		hard = oci_field(e, "hard");
		if (!soft)
			return em_err_msg(err, EINVAL, "%s.soft: required", ip.s);
		if (!hard)
			return em_err_msg(err, EINVAL, "%s.hard: required", ip.s);
		r = oci_as_u64(soft, oci_key(ip.s, "soft").s, UINT64_MAX, &rl->soft, err);
		if (r == 0)
			r = oci_as_u64(hard, oci_key(ip.s, "hard").s, UINT64_MAX, &rl->hard, err);
		if (r < 0)
			return r;
		if (rl->soft > rl->hard)
			return em_err_msg(err, EINVAL,
					  "%s: soft limit %llu is above hard limit %llu", ip.s,
					  (unsigned long long)rl->soft,
					  (unsigned long long)rl->hard);
	}
	return 0;
}

static int parse_user(const json_t *v, const char *path, struct em_oci_user *u,
		      struct em_err *err)
{
	/* (uid_t)-1 means "no change" to set*id(2): it is not an id a process can hold */
	const uint32_t id_max = UINT32_MAX - 1;
	json_t *gids;
	int r = oci_want_object(v, path, err);

	if (r == 0)
		r = oci_get_u32(v, path, "uid", false, id_max, &u->uid, err);
	if (r == 0)
		r = oci_get_u32(v, path, "gid", false, id_max, &u->gid, err);
	if (r == 0)
		r = oci_get_opt_u64(v, path, "umask", 0777, &u->umask, err);
	if (r == 0)
		r = oci_get_str(v, path, "username", false, &u->username, err);
	if (r < 0)
		return r;
	gids = oci_field(v, "additionalGids");
	if (!gids)
		return 0;
	struct oci_path gp = oci_key(path, "additionalGids");

	r = oci_want_array(gids, gp.s, err);
	if (r == 0)
		r = oci_alloc((void **)&u->additional_gids, json_array_size(gids),
			      sizeof(*u->additional_gids), gp.s, err);
	if (r < 0)
		return r;
	u->n_additional_gids = json_array_size(gids);
	for (size_t i = 0; i < u->n_additional_gids; i++) {
		uint64_t g;

		r = oci_as_u64(json_array_get(gids, i), oci_idx(gp.s, i).s, id_max, &g, err);
		if (r < 0)
			return r;
		u->additional_gids[i] = (uint32_t)g;
	}
	return 0;
}

static int parse_env(const json_t *obj, const char *base, const char *key, struct em_strv *env,
		     struct em_err *err)
{
	int r = oci_get_strv(obj, base, key, env, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < env->n; i++) {
		const char *eq = strchr(env->v[i], '=');

		/* execve would pass such an entry on, but no program can read it back as a
		 * variable; runc refuses it the same way */
		if (!eq || eq == env->v[i])
			return em_err_msg(err, EINVAL, "%s: must be NAME=value, got \"%s\"",
					  oci_idx(oci_key(base, key).s, i).s, env->v[i]);
	}
	return 0;
}

static int parse_io_priority(const json_t *v, const char *path, struct em_oci_process *p,
			     struct em_err *err)
{
	static const char *const classes[] = { "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE",
					       "IOPRIO_CLASS_IDLE" };
	cleanup_free char *cls = NULL;
	int64_t prio = 0;
	json_t *pv;
	int r = oci_want_object(v, path, err);

	if (r == 0)
		r = oci_get_str(v, path, "class", true, &cls, err);
	if (r < 0)
		return r;
	p->io_priority.class_ = 0;
	for (size_t i = 0; i < EM_ARRAY_SIZE(classes); i++)
		if (strcmp(cls, classes[i]) == 0)
			p->io_priority.class_ = (int)i + 1; /* IOPRIO_CLASS_RT = 1 ... */
	if (!p->io_priority.class_)
		return em_err_msg(err, EINVAL, "%s.class: unknown I/O priority class \"%s\"", path,
				  cls);
	pv = oci_field(v, "priority");
	if (pv) {
		r = oci_as_i64(pv, oci_key(path, "priority").s, 0, 7, &prio, err);
		if (r < 0)
			return r;
	}
	p->io_priority.priority = (int)prio;
	p->io_priority.set = true;
	return 0;
}

/* `base` is "process" in a config.json, "" in a process.json. */
static int parse_process(const json_t *v, const char *base, struct em_oci_process *p,
			 struct em_err *err)
{
	const char *self = *base ? base : "(root)";
	json_t *args, *f;
	int r = oci_want_object(v, self, err);

	if (r < 0)
		return r;
	r = oci_get_bool(v, base, "terminal", &p->terminal, err);
	if (r < 0)
		return r;
	if ((f = oci_field(v, "consoleSize"))) {
		struct oci_path cp = oci_key(base, "consoleSize");

		r = oci_want_object(f, cp.s, err);
		if (r == 0)
			r = oci_get_u32(f, cp.s, "height", true, UINT16_MAX, &p->console_size.height,
					err);
		if (r == 0)
			r = oci_get_u32(f, cp.s, "width", true, UINT16_MAX, &p->console_size.width,
					err);
		if (r < 0)
			return r;
		p->console_size.set = true;
	}

	args = oci_field(v, "args");
	if (!args || !json_is_array(args) || json_array_size(args) == 0)
		return em_err_msg(err, EINVAL, "%s: must be a non-empty array of strings",
				  oci_key(base, "args").s);
	r = oci_as_strv(args, oci_key(base, "args").s, &p->args, err);
	if (r < 0)
		return r;
	if (p->args.v[0][0] == '\0')
		return em_err_msg(err, EINVAL, "%s: the program must not be empty",
				  oci_idx(oci_key(base, "args").s, 0).s);

	r = parse_env(v, base, "env", &p->env, err);
	if (r == 0)
		r = oci_get_str(v, base, "cwd", true, &p->cwd, err);
	if (r == 0)
		r = oci_check_abs(p->cwd, oci_key(base, "cwd").s, err);
	if (r < 0)
		return r;

	if ((f = oci_field(v, "user")))
		r = parse_user(f, oci_key(base, "user").s, &p->user, err);
	if (r == 0 && (f = oci_field(v, "capabilities")))
		r = parse_caps(f, oci_key(base, "capabilities").s, p, err);
	if (r == 0 && (f = oci_field(v, "rlimits")))
		r = parse_rlimits(f, oci_key(base, "rlimits").s, p, err);
	if (r == 0)
		r = oci_get_bool(v, base, "noNewPrivileges", &p->no_new_privileges, err);
	if (r == 0)
		r = oci_get_opt_i64(v, base, "oomScoreAdj", -1000, 1000, &p->oom_score_adj, err);
	if (r == 0)
		r = oci_get_str(v, base, "apparmorProfile", false, &p->apparmor_profile, err);
	if (r == 0)
		r = oci_get_str(v, base, "selinuxLabel", false, &p->selinux_label, err);
	if (r == 0 && (f = oci_field(v, "ioPriority")))
		r = parse_io_priority(f, oci_key(base, "ioPriority").s, p, err);
	return r;
}

void em_oci_process_free(struct em_oci_process *p)
{
	if (!p)
		return;
	free(p->cwd);
	oci_strv_free(&p->env);
	oci_strv_free(&p->args);
	free(p->user.additional_gids);
	free(p->user.username);
	for (size_t i = 0; i < p->n_rlimits; i++)
		free(p->rlimits[i].type);
	free(p->rlimits);
	free(p->apparmor_profile);
	free(p->selinux_label);
	memset(p, 0, sizeof(*p));
}

/* ---- root and mounts */

static int parse_root(const json_t *v, struct em_oci_root *root, struct em_err *err)
{
	int r;

	if (!v)
		return em_err_msg(err, EINVAL, "root: required");
	r = oci_want_object(v, "root", err);
	if (r == 0)
		r = oci_get_str(v, "root", "path", true, &root->path, err);
	if (r == 0 && root->path[0] == '\0')
		r = em_err_msg(err, EINVAL, "root.path: must not be empty");
	if (r == 0)
		r = oci_get_bool(v, "root", "readonly", &root->readonly, err);
	return r;
}

/* Clean a mount destination lexically into an absolute path. runc accepts relative destinations
 * (resolved against the rootfs, with a warning), so do we; but a destination that is the root
 * itself or that climbs above it with ".." names nothing a mount may cover. */
static int clean_destination(char **dest, const char *path, struct em_err *err)
{
	size_t len = strlen(*dest);
	cleanup_free char *out = malloc(len + 2);
	size_t n = 0;
	const char *s = *dest;

	if (!out)
		return em_err_set(err, ENOMEM, "%s", path);
	while (*s) {
		const char *e = strchrnul(s, '/');
		size_t cl = (size_t)(e - s);

		if (cl == 0 || (cl == 1 && s[0] == '.')) {
			/* empty or "." component: nothing */
		} else if (cl == 2 && s[0] == '.' && s[1] == '.') {
			if (n == 0)
				return em_err_msg(err, EINVAL,
						  "%s: \"%s\" escapes the container root", path,
						  *dest);
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--; /* the '/' before the dropped component */
		} else {
			out[n++] = '/';
			memcpy(out + n, s, cl);
			n += cl;
		}
		s = *e ? e + 1 : e;
	}
	if (n == 0)
		return em_err_msg(err, EINVAL, "%s: \"%s\" is the container root itself", path,
				  *dest);
	out[n] = '\0';
	free(*dest);
	*dest = take_ptr(out);
	return 0;
}

static int parse_mount(const json_t *v, const char *path, struct em_oci_mount *m,
		       struct em_err *err)
{
	json_t *f;
	int r = oci_want_object(v, path, err);

	if (r == 0)
		r = oci_get_str(v, path, "destination", true, &m->destination, err);
	if (r == 0)
		r = clean_destination(&m->destination, oci_key(path, "destination").s, err);
	if (r == 0)
		r = oci_get_str(v, path, "source", false, &m->source, err);
	if (r == 0)
		r = oci_get_str(v, path, "type", false, &m->type, err);
	if (r == 0)
		r = oci_get_strv(v, path, "options", &m->options, err);
	if (r == 0 && (f = oci_field(v, "uidMappings")))
		r = oci_as_idmaps(f, oci_key(path, "uidMappings").s, &m->uid_mappings,
				  &m->n_uid_mappings, err);
	if (r == 0 && (f = oci_field(v, "gidMappings")))
		r = oci_as_idmaps(f, oci_key(path, "gidMappings").s, &m->gid_mappings,
				  &m->n_gid_mappings, err);
	if (r == 0 && (!m->n_uid_mappings) != (!m->n_gid_mappings))
		r = em_err_msg(err, EINVAL, "%s: uidMappings and gidMappings must be given together",
			       path);
	return r;
}

static int parse_mounts(const json_t *v, struct em_oci_config *cfg, struct em_err *err)
{
	int r = oci_want_array(v, "mounts", err);

	if (r == 0)
		r = oci_alloc((void **)&cfg->mounts, json_array_size(v), sizeof(*cfg->mounts),
			      "mounts", err);
	for (size_t i = 0; r == 0 && i < json_array_size(v); i++) {
		cfg->n_mounts = i + 1;
		r = parse_mount(json_array_get(v, i), oci_idx("mounts", i).s, &cfg->mounts[i], err);
	}
	return r;
}

/* ---- hooks */

static int parse_hook(const json_t *v, const char *path, struct em_oci_hook *h,
		      struct em_err *err)
{
	int r = oci_want_object(v, path, err);

	if (r == 0)
		r = oci_get_str(v, path, "path", true, &h->path, err);
	if (r == 0)
		r = oci_check_abs(h->path, oci_key(path, "path").s, err);
	if (r == 0)
		r = oci_get_strv(v, path, "args", &h->args, err);
	if (r == 0)
		r = parse_env(v, path, "env", &h->env, err);
	if (r == 0)
		r = oci_get_opt_i64(v, path, "timeout", INT64_MIN, INT64_MAX, &h->timeout, err);
	if (r == 0 && h->timeout.set && h->timeout.v <= 0)
		r = em_err_msg(err, EINVAL, "%s.timeout: must be positive, got %lld", path,
			       (long long)h->timeout.v);
	return r;
}

static int parse_hooks(const json_t *v, struct em_oci_hooks *hooks, struct em_err *err)
{
	int r = oci_want_object(v, "hooks", err);

	for (int k = 0; r == 0 && k < EM_HOOK_NKINDS; k++) {
		struct oci_path kp = oci_key("hooks", em_hook_kind_name(k));
		json_t *arr = oci_field(v, em_hook_kind_name(k));

		if (!arr)
			continue;
		r = oci_want_array(arr, kp.s, err);
		if (r == 0)
			r = oci_alloc((void **)&hooks->v[k], json_array_size(arr),
				      sizeof(*hooks->v[k]), kp.s, err);
		for (size_t i = 0; r == 0 && i < json_array_size(arr); i++) {
			hooks->n[k] = i + 1;
			r = parse_hook(json_array_get(arr, i), oci_idx(kp.s, i).s, &hooks->v[k][i],
				       err);
		}
	}
	return r;
}

/* ---- checks across sections */

static bool has_ns(const struct em_oci_config *cfg, enum em_ns_type t)
{
	return em_oci_find_ns(cfg, t) != NULL;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Does sysctl key k start with prefix (written with dots)? Keys may also be written with
 * slashes, as in /proc/sys ("net/ipv4/conf/eth0.100/forwarding": the slash form lets a
 * component hold a dot). */
static bool sysctl_prefix(const char *k, const char *prefix)
{
	for (; *prefix; k++, prefix++)
		if (*k != *prefix && !(*k == '/' && *prefix == '.'))
			return false;
	return true;
}

static bool sysctl_is(const char *k, const char *name)
{
	return strlen(k) == strlen(name) && sysctl_prefix(k, name);
}

/* runc's rule (libcontainer/configs/validate): a sysctl is allowed only when the namespace that
 * scopes it belongs to the container; anything else would change the host. */
static int check_sysctls(const struct em_oci_config *cfg, struct em_err *err)
{
	const struct em_oci_kvv *sc = &cfg->linux_.sysctl;

	for (size_t i = 0; i < sc->n; i++) {
		const char *k = sc->v[i].key;
		struct oci_path p = oci_key("linux.sysctl", k);

		/* the key becomes a path under /proc/sys: nothing may climb out of it */
		if (!*k || strchr("./", k[0]) || strstr(k, "..") || strstr(k, "//") ||
		    strstr(k, "/.") || strstr(k, "./"))
			return em_err_msg(err, EINVAL, "%s: not a sysctl name", p.s);
		if (sysctl_prefix(k, "kernel.msg") || sysctl_prefix(k, "kernel.sem") ||
		    sysctl_prefix(k, "kernel.shm") || sysctl_prefix(k, "fs.mqueue.")) {
			if (!has_ns(cfg, EM_NS_IPC))
				return em_err_msg(err, EINVAL,
						  "%s: needs an ipc namespace (linux.namespaces has no \"ipc\")",
						  p.s);
		} else if (sysctl_prefix(k, "net.")) {
			if (!has_ns(cfg, EM_NS_NET))
				return em_err_msg(err, EINVAL,
						  "%s: needs a network namespace (linux.namespaces has no \"network\")",
						  p.s);
		} else if (sysctl_is(k, "kernel.domainname")) {
			if (!has_ns(cfg, EM_NS_UTS))
				return em_err_msg(err, EINVAL,
						  "%s: needs a uts namespace (linux.namespaces has no \"uts\")",
						  p.s);
		} else if (sysctl_is(k, "kernel.hostname")) {
			return em_err_msg(err, EINVAL, "%s: not allowed, use the hostname field", p.s);
		} else {
			return em_err_msg(err, EINVAL,
					  "%s: not in a namespace of the container (it would change the host)",
					  p.s);
		}
	}
	return 0;
}

static int check_cross(const struct em_oci_config *cfg, struct em_err *err)
{
	/* runc: "unable to set hostname without a private UTS namespace" */
	if (cfg->hostname && *cfg->hostname && !has_ns(cfg, EM_NS_UTS))
		return em_err_msg(err, EINVAL,
				  "hostname: needs a uts namespace (linux.namespaces has no \"uts\")");
	if (cfg->domainname && *cfg->domainname && !has_ns(cfg, EM_NS_UTS))
		return em_err_msg(err, EINVAL,
				  "domainname: needs a uts namespace (linux.namespaces has no \"uts\")");
	return check_sysctls(cfg, err);
}

/* ---- top level */

static int parse_version(const json_t *root, struct em_oci_config *cfg, struct em_err *err)
{
	int r = oci_get_str(root, "", "ociVersion", true, &cfg->oci_version, err);

	if (r < 0)
		return r;
	/* 1.0.0 through 1.2.x share one schema; a 2.x would not */
	if (!starts_with(cfg->oci_version, "1.") || cfg->oci_version[2] < '0' ||
	    cfg->oci_version[2] > '9')
		return em_err_msg(err, EINVAL, "ociVersion: unsupported version \"%s\" (need 1.x)",
				  cfg->oci_version);
	return 0;
}

static int parse_config(const json_t *root, struct em_oci_config *cfg, struct em_err *err)
{
	json_t *f;
	int r = oci_want_object(root, "(root)", err);

	if (r == 0)
		r = parse_version(root, cfg, err);
	if (r == 0)
		r = parse_root(oci_field(root, "root"), &cfg->root, err);
	if (r == 0 && (f = oci_field(root, "mounts")))
		r = parse_mounts(f, cfg, err);
	if (r == 0 && (f = oci_field(root, "process"))) {
		cfg->has_process = true;
		r = parse_process(f, "process", &cfg->process, err);
	}
	if (r == 0)
		r = oci_get_str(root, "", "hostname", false, &cfg->hostname, err);
	if (r == 0)
		r = oci_get_str(root, "", "domainname", false, &cfg->domainname, err);
	if (r == 0 && (f = oci_field(root, "hooks")))
		r = parse_hooks(f, &cfg->hooks, err);
	if (r == 0)
		r = oci_get_kvv(root, "", "annotations", &cfg->annotations, err);
	if (r == 0 && (f = oci_field(root, "linux"))) {
		cfg->has_linux = true;
		r = oci_parse_linux(f, "linux", &cfg->linux_, err);
	}
	if (r == 0)
		r = check_cross(cfg, err);
	return r;
}

int em_oci_parse(const char *json, size_t len, struct em_oci_config *cfg, struct em_err *err)
{
	json_t *root;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	root = oci_decode(json, len, err);
	if (!root)
		return -(err && err->code ? err->code : EINVAL);
	r = parse_config(root, cfg, err);
	json_decref(root);
	if (r < 0)
		em_oci_config_free(cfg);
	return r;
}

int em_oci_load(const char *path, struct em_oci_config *cfg, struct em_err *err)
{
	cleanup_free char *text = NULL;
	size_t len;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	r = em_read_file_at(AT_FDCWD, path, &text, &len, err);
	if (r < 0)
		return r;
	r = em_oci_parse(text, len, cfg, err);
	if (r < 0)
		return em_err_prefix(err, "%s", path);
	return 0;
}

int em_oci_parse_process(const char *json, size_t len, struct em_oci_process *proc,
			 struct em_err *err)
{
	json_t *root;
	int r;

	memset(proc, 0, sizeof(*proc));
	root = oci_decode(json, len, err);
	if (!root)
		return -(err && err->code ? err->code : EINVAL);
	r = parse_process(root, "", proc, err);
	json_decref(root);
	if (r < 0)
		em_oci_process_free(proc);
	return r;
}

void em_oci_config_free(struct em_oci_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->oci_version);
	free(cfg->root.path);
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		struct em_oci_mount *m = &cfg->mounts[i];

		free(m->destination);
		free(m->source);
		free(m->type);
		oci_strv_free(&m->options);
		free(m->uid_mappings);
		free(m->gid_mappings);
	}
	free(cfg->mounts);
	em_oci_process_free(&cfg->process);
	free(cfg->hostname);
	free(cfg->domainname);
	for (int k = 0; k < EM_HOOK_NKINDS; k++) {
		for (size_t i = 0; i < cfg->hooks.n[k]; i++) {
			struct em_oci_hook *h = &cfg->hooks.v[k][i];

			free(h->path);
			oci_strv_free(&h->args);
			oci_strv_free(&h->env);
		}
		free(cfg->hooks.v[k]);
	}
	oci_kvv_free(&cfg->annotations);
	oci_linux_free(&cfg->linux_);
	memset(cfg, 0, sizeof(*cfg));
}

const struct em_oci_namespace *em_oci_find_ns(const struct em_oci_config *cfg, enum em_ns_type t)
{
	for (size_t i = 0; i < cfg->linux_.n_namespaces; i++)
		if (cfg->linux_.namespaces[i].type == t)
			return &cfg->linux_.namespaces[i];
	return NULL;
}
