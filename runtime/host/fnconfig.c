/* runtime/host/fnconfig.c — see fnconfig.h. Works on the JSON before parsing it, so the result
 * goes through the same validating parser (oci.c) as any config.json. */
#include "runtime/host/fnconfig.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int set_namespaces(json_t *linux_)
{
	static const char *const types[] = { "pid", "mount", "uts", "ipc", "network" };
	json_t *ns = json_array();

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		json_array_append_new(ns, json_pack("{s:s}", "type", types[i]));
	return json_object_set_new(linux_, "namespaces", ns);
}

/* Drop any mount on /tmp the bundle has and add the instance's own. */
static int set_tmp(json_t *cfg, uint32_t tmp_mb)
{
	json_t *mounts = json_object_get(cfg, "mounts"), *m;
	char size[64];
	size_t i;

	if (!json_is_array(mounts)) {
		mounts = json_array();
		json_object_set_new(cfg, "mounts", mounts);
	}
	for (i = 0; i < json_array_size(mounts);) {
		const char *d = json_string_value(json_object_get(json_array_get(mounts, i),
								  "destination"));
		if (d && (!strcmp(d, "/tmp") || !strcmp(d, "/tmp/")))
			json_array_remove(mounts, i);
		else
			i++;
	}
	snprintf(size, sizeof(size), "size=%um", tmp_mb);
	m = json_pack("{s:s,s:s,s:s,s:[s,s,s,s,s]}", "destination", "/tmp", "type", "tmpfs", "source",
		      "tmpfs", "options", "nosuid", "nodev", "noexec", "mode=1777", size);
	return json_array_append_new(mounts, m);
}

static void add_env(json_t *env, const char *kv)
{
	size_t klen = strcspn(kv, "=");
	size_t i;

	/* replace an existing KEY= so the function's environment wins over the bundle's */
	for (i = 0; i < json_array_size(env); i++) {
		const char *e = json_string_value(json_array_get(env, i));
		if (e && !strncmp(e, kv, klen) && e[klen] == '=') {
			json_array_set_new(env, i, json_string(kv));
			return;
		}
	}
	json_array_append_new(env, json_string(kv));
}

/* Is `path` (absolute, in the container) an executable file? Looked up through the bind mount
 * that covers it, if one does (a Python rootfs gets /usr from the host), else in the rootfs
 * without leaving it. */
static bool executable_in(const struct em_oci_config *cfg, int rootfd, const char *path)
{
	const struct em_oci_mount *best = NULL;
	size_t best_len = 0;
	struct stat st;

	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const struct em_oci_mount *m = &cfg->mounts[i];
		size_t l = strlen(m->destination);
		bool bind = m->type && !strcmp(m->type, "bind");

		for (size_t k = 0; !bind && k < m->options.n; k++)
			bind = !strcmp(m->options.v[k], "bind") || !strcmp(m->options.v[k], "rbind");
		if (bind && m->source && l > best_len && !strncmp(path, m->destination, l) &&
		    path[l] == '/') {
			best = m;
			best_len = l;
		}
	}
	if (best) {
		char host[PATH_MAX];
		snprintf(host, sizeof(host), "%s%s", best->source, path + best_len);
		return stat(host, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
	}
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
	int fd = (int)syscall(SYS_openat2, rootfd, path + 1, &how, sizeof(how));
	bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);

	if (fd >= 0)
		close(fd);
	return ok;
}

/* The program must exist: a deploy that names a missing one is refused at once, not at the
 * first cold start (the pre-made sandbox stops just before its exec). */
static int check_program(const struct em_oci_config *cfg, struct em_err *err)
{
	const char *prog = cfg->process.args.v[0], *path = "/usr/local/sbin:/usr/local/bin:"
		"/usr/sbin:/usr/bin:/sbin:/bin";
	cleanup_close int rootfd = open(cfg->root.path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	char cand[PATH_MAX];

	if (rootfd < 0)
		return em_err_set(err, errno, "root.path %s", cfg->root.path);
	if (strchr(prog, '/')) {
		if (prog[0] == '/' ? executable_in(cfg, rootfd, prog) :
		    (snprintf(cand, sizeof(cand), "%s/%s", cfg->process.cwd, prog),
		     executable_in(cfg, rootfd, cand)))
			return 0;
		return em_err_msg(err, EINVAL, "process.args[0]: %s is not an executable file in the "
				  "rootfs %s", prog, cfg->root.path);
	}
	for (size_t i = 0; i < cfg->process.env.n; i++)
		if (!strncmp(cfg->process.env.v[i], "PATH=", 5))
			path = cfg->process.env.v[i] + 5;
	for (const char *p = path; *p;) {
		size_t l = strcspn(p, ":");
		if (l && p[0] == '/') {
			snprintf(cand, sizeof(cand), "%.*s/%s", (int)l, p, prog);
			if (executable_in(cfg, rootfd, cand))
				return 0;
		}
		p += l + (p[l] == ':');
	}
	return em_err_msg(err, EINVAL, "process.args[0]: %s is not found in PATH=%s in the rootfs %s",
			  prog, path, cfg->root.path);
}

/* The template's differences (fnconfig.h): user namespace, CAP_SYS_ADMIN, no /sys. */
static void make_template(json_t *j, json_t *linux_, json_t *env, uid_t uid)
{
	json_t *ns = json_object_get(linux_, "namespaces");
	json_t *caps = json_object_get(json_object_get(j, "process"), "capabilities");
	json_t *mounts = json_object_get(j, "mounts"), *masked;
	static const char *const sets[] = { "bounding", "effective", "permitted" };

	json_array_append_new(ns, json_pack("{s:s}", "type", "user"));
	json_object_set_new(linux_, "uidMappings", json_pack("[{s:i,s:i,s:i}]", "containerID", 0,
							      "hostID", (json_int_t)uid, "size", 1));
	json_object_set_new(linux_, "gidMappings", json_pack("[{s:i,s:i,s:i}]", "containerID", 0,
							      "hostID", (json_int_t)uid, "size", 1));
	if (!json_is_object(caps)) {
		caps = json_object();
		json_object_set_new(json_object_get(j, "process"), "capabilities", caps);
	}
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		json_t *a = json_object_get(caps, sets[i]);
		if (!json_is_array(a)) {
			a = json_array();
			json_object_set_new(caps, sets[i], a);
		}
		json_array_append_new(a, json_string("CAP_SYS_ADMIN"));
	}
	for (size_t i = 0; i < json_array_size(mounts);) {
		const char *d = json_string_value(json_object_get(json_array_get(mounts, i),
								  "destination"));
		if (d && (!strcmp(d, "/sys") || !strncmp(d, "/sys/", 5)))
			json_array_remove(mounts, i);
		else
			i++;
	}
	masked = json_object_get(linux_, "maskedPaths");
	for (size_t i = 0; i < json_array_size(masked);) {
		const char *d = json_string_value(json_array_get(masked, i));
		if (d && !strncmp(d, "/sys", 4))
			json_array_remove(masked, i);
		else
			i++;
	}
	add_env(env, "EMBER_TEMPLATE=1");
}

static int fn_config(const struct em_fn_spec *spec, uint32_t version, const uid_t *tmpl_uid,
		     struct em_oci_config *cfg, char bundle_dir[4096], struct em_err *err)
{
	json_auto_t *j = NULL;
	json_error_t je;
	json_t *root, *proc, *linux_, *env;
	cleanup_free char *text = NULL;
	char buf[PATH_MAX + 64];
	const char *rootfs;
	int ret;

	if (spec->bundle) {
		snprintf(buf, sizeof(buf), "%s/config.json", spec->bundle);
		j = json_load_file(buf, 0, &je);
		if (!j)
			return em_err_msg(err, EINVAL, "bundle: %s: line %d column %d: %s", buf,
					  je.line, je.column, je.text);
		snprintf(bundle_dir, 4096, "%s", spec->bundle);
	} else {
		cleanup_free char *def = em_oci_default_spec(false, 0, 0);

		j = def ? json_loads(def, 0, &je) : NULL;
		if (!j)
			return em_err_msg(err, ENOMEM, "make the default config for %s", spec->name);
		snprintf(bundle_dir, 4096, "%s", spec->rootfs);
	}
	if (!json_is_object(j))
		return em_err_msg(err, EINVAL, "bundle: %s/config.json: not a JSON object", bundle_dir);

	root = json_object_get(j, "root");
	if (!json_is_object(root)) {
		root = json_object();
		json_object_set_new(j, "root", root);
	}
	if (spec->rootfs) {
		json_object_set_new(root, "path", json_string(spec->rootfs));
	} else {
		rootfs = json_string_value(json_object_get(root, "path"));
		if (!rootfs)
			return em_err_msg(err, EINVAL, "bundle: %s/config.json: root.path is missing",
					  bundle_dir);
		if (rootfs[0] != '/') {
			snprintf(buf, sizeof(buf), "%s/%s", spec->bundle, rootfs);
			json_object_set_new(root, "path", json_string(buf));
		}
	}
	json_object_set_new(root, "readonly", json_true());

	proc = json_object_get(j, "process");
	if (!json_is_object(proc))
		return em_err_msg(err, EINVAL, "bundle: %s/config.json: process is missing", bundle_dir);
	if (spec->command) {
		json_t *args = json_array();
		for (size_t i = 0; i < spec->n_command; i++)
			json_array_append_new(args, json_string(spec->command[i]));
		json_object_set_new(proc, "args", args);
	}
	json_object_set_new(proc, "terminal", json_false());
	json_object_set_new(proc, "noNewPrivileges", json_true());
	env = json_object_get(proc, "env");
	if (!json_is_array(env)) {
		env = json_array();
		json_object_set_new(proc, "env", env);
	}
	for (size_t i = 0; i < spec->n_env; i++)
		add_env(env, spec->env[i]);
	add_env(env, "EMBER_CHANNEL_FD=3");
	snprintf(buf, sizeof(buf), "EMBER_FUNCTION=%s", spec->name);
	add_env(env, buf);
	snprintf(buf, sizeof(buf), "EMBER_FUNCTION_VERSION=%u", version);
	add_env(env, buf);
	snprintf(buf, sizeof(buf), "EMBER_MEMORY_MB=%u", spec->memory_mb);
	add_env(env, buf);

	linux_ = json_object_get(j, "linux");
	if (!json_is_object(linux_)) {
		linux_ = json_object();
		json_object_set_new(j, "linux", linux_);
	}
	set_namespaces(linux_);
	json_object_del(linux_, "resources");
	json_object_del(linux_, "cgroupsPath");
	json_object_del(linux_, "uidMappings");
	json_object_del(linux_, "gidMappings");
	if (tmpl_uid)
		make_template(j, linux_, env, *tmpl_uid);
	json_object_del(linux_, "timeOffsets");
	json_object_del(j, "hooks");
	set_tmp(j, spec->tmp_mb ? spec->tmp_mb : EM_FN_TMP_DEFAULT_MB);
	/* the cgroup mount of a default spec would show the host's hierarchy names; an instance has
	 * no use for it */
	{
		json_t *mounts = json_object_get(j, "mounts");
		for (size_t i = 0; i < json_array_size(mounts);) {
			const char *t = json_string_value(json_object_get(json_array_get(mounts, i),
									  "type"));
			if (t && (!strcmp(t, "cgroup") || !strcmp(t, "cgroup2")))
				json_array_remove(mounts, i);
			else
				i++;
		}
	}

	text = json_dumps(j, JSON_COMPACT);
	if (!text)
		return em_err_msg(err, ENOMEM, "serialise the config of %s", spec->name);
	ret = em_oci_parse(text, strlen(text), cfg, err);
	if (ret < 0)
		return em_err_prefix(err, "function %s: %s/config.json: ", spec->name, bundle_dir);
	ret = check_program(cfg, err);
	if (ret < 0) {
		em_oci_config_free(cfg);
		return em_err_prefix(err, "function %s: ", spec->name);
	}
	return 0;
}

int em_fn_oci_config(const struct em_fn_spec *spec, uint32_t version, struct em_oci_config *cfg,
		     char bundle_dir[4096], struct em_err *err)
{
	return fn_config(spec, version, NULL, cfg, bundle_dir, err);
}

int em_fn_template_config(const struct em_fn_spec *spec, uint32_t version, uid_t uid,
			  struct em_oci_config *cfg, char bundle_dir[4096], struct em_err *err)
{
	return fn_config(spec, version, &uid, cfg, bundle_dir, err);
}
