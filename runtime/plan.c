/* runtime/plan.c — build the sandbox plan from a validated OCI config (see plan.h). Everything
 * that can fail for a reason other than the kernel saying no fails here, before clone(), with a
 * message naming the config field. */
#include "runtime/plan.h"
#include "runtime/caps.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const int ns_clone_flag[EM_NS_COUNT] = {
	[EM_NS_PID] = CLONE_NEWPID,       [EM_NS_NET] = CLONE_NEWNET,
	[EM_NS_MOUNT] = CLONE_NEWNS,      [EM_NS_IPC] = CLONE_NEWIPC,
	[EM_NS_UTS] = CLONE_NEWUTS,       [EM_NS_USER] = CLONE_NEWUSER,
	[EM_NS_CGROUP] = CLONE_NEWCGROUP, [EM_NS_TIME] = CLONE_NEWTIME,
};

/* /proc/PID/ns/<name> for each type */
static const char *const ns_proc_name[EM_NS_COUNT] = {
	[EM_NS_PID] = "pid",    [EM_NS_NET] = "net",       [EM_NS_MOUNT] = "mnt",
	[EM_NS_IPC] = "ipc",    [EM_NS_UTS] = "uts",       [EM_NS_USER] = "user",
	[EM_NS_CGROUP] = "cgroup", [EM_NS_TIME] = "time",
};

static char *xstrdup(const char *s, struct em_err *err, int *ret)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*ret = em_err_set(err, ENOMEM, "plan");
	return d;
}

/* ---------------------------------------------------------------- mount options */

static const struct {
	const char *name;
	bool clear;
	unsigned long flag;
} mount_flags[] = {
	{ "ro", false, MS_RDONLY },        { "rw", true, MS_RDONLY },
	{ "nosuid", false, MS_NOSUID },    { "suid", true, MS_NOSUID },
	{ "nodev", false, MS_NODEV },      { "dev", true, MS_NODEV },
	{ "noexec", false, MS_NOEXEC },    { "exec", true, MS_NOEXEC },
	{ "sync", false, MS_SYNCHRONOUS }, { "async", true, MS_SYNCHRONOUS },
	{ "dirsync", false, MS_DIRSYNC },  { "mand", false, MS_MANDLOCK },
	{ "nomand", true, MS_MANDLOCK },   { "noatime", false, MS_NOATIME },
	{ "atime", true, MS_NOATIME },     { "nodiratime", false, MS_NODIRATIME },
	{ "diratime", true, MS_NODIRATIME }, { "relatime", false, MS_RELATIME },
	{ "norelatime", true, MS_RELATIME }, { "strictatime", false, MS_STRICTATIME },
	{ "nostrictatime", true, MS_STRICTATIME }, { "silent", false, MS_SILENT },
	{ "loud", true, MS_SILENT },       { "remount", false, MS_REMOUNT },
};

static const struct {
	const char *name;
	unsigned long flags;
} propagation_names[] = {
	{ "private", MS_PRIVATE },   { "rprivate", MS_PRIVATE | MS_REC },
	{ "shared", MS_SHARED },     { "rshared", MS_SHARED | MS_REC },
	{ "slave", MS_SLAVE },       { "rslave", MS_SLAVE | MS_REC },
	{ "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
};

static unsigned long propagation_from_name(const char *name)
{
	for (size_t i = 0; i < EM_ARRAY_SIZE(propagation_names); i++)
		if (!strcmp(name, propagation_names[i].name))
			return propagation_names[i].flags;
	return 0;
}

int em_plan_parse_mount_options(const struct em_strv *opts, struct em_plan_mount *m,
				const char *field, struct em_err *err)
{
	char data[4096] = "";
	size_t dlen = 0;

	for (size_t i = 0; i < opts->n; i++) {
		const char *o = opts->v[i];
		bool done = false;

		for (size_t k = 0; k < EM_ARRAY_SIZE(mount_flags) && !done; k++)
			if (!strcmp(o, mount_flags[k].name)) {
				if (mount_flags[k].clear)
					m->flags &= ~mount_flags[k].flag;
				else
					m->flags |= mount_flags[k].flag;
				done = true;
			}
		if (done)
			continue;
		if (!strcmp(o, "bind") || !strcmp(o, "rbind")) {
			m->kind = EM_PM_BIND;
			m->recursive = o[0] == 'r';
			continue;
		}
		unsigned long prop = propagation_from_name(o);
		if (prop) {
			m->propagation = prop;
			continue;
		}
		if (!strcmp(o, "tmpcopyup"))
			continue; /* runc-specific tmpfs copy-up; ember mounts tmpfs empty */
		if (!strcmp(o, "idmap") || !strcmp(o, "ridmap") ||
		    (o[0] == 'r' && (!strcmp(o + 1, "ro") || !strcmp(o + 1, "rw") ||
				     !strcmp(o + 1, "nosuid") || !strcmp(o + 1, "noexec") ||
				     !strcmp(o + 1, "nodev") || !strcmp(o + 1, "noatime"))))
			return em_err_msg(err, EOPNOTSUPP,
					  "%s.options[%zu]: mount option \"%s\" is not supported by ember",
					  field, i, o);
		size_t ol = strlen(o);
		if (dlen + ol + 2 > sizeof(data))
			return em_err_msg(err, E2BIG, "%s.options: too long", field);
		if (dlen)
			data[dlen++] = ',';
		memcpy(data + dlen, o, ol + 1);
		dlen += ol;
	}
	if (dlen) {
		m->data = strdup(data);
		if (!m->data)
			return em_err_set(err, ENOMEM, "%s.options", field);
	}
	return 0;
}

/* ---------------------------------------------------------------- cgroup filesystems */

/* The cgroup hierarchies mounted directly below /sys/fs/cgroup on this host, from mountinfo. */
static int plan_cgroup_fs(struct em_plan *p, const char *cgroup_rel, struct em_err *err)
{
	cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int ret = 0;

	if (!f)
		return em_err_set(err, errno, "open /proc/self/mountinfo");
	while (fgets(line, sizeof(line), f)) {
		char *fields[12] = { 0 }, *save = NULL, *tok, *sep;
		size_t nf = 0;

		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		for (tok = strtok_r(line, " ", &save); tok && nf < 6; tok = strtok_r(NULL, " ", &save))
			fields[nf++] = tok;
		char *fstype = strtok_r(sep + 3, " ", &save);
		strtok_r(NULL, " ", &save); /* source */
		char *super = strtok_r(NULL, " \n", &save);
		if (nf < 5 || !fstype || !super)
			continue;
		const char *mp = fields[4];
		bool v2 = !strcmp(fstype, "cgroup2");
		if (!v2 && strcmp(fstype, "cgroup"))
			continue;
		if (strncmp(mp, "/sys/fs/cgroup", 14) || (mp[14] && (mp[14] != '/' || strchr(mp + 15, '/'))))
			continue;

		struct em_plan_cgroup_fs *n = realloc(p->cgroup_fs, (p->n_cgroup_fs + 1) * sizeof(*n));
		if (!n)
			return em_err_set(err, ENOMEM, "plan cgroup mounts");
		p->cgroup_fs = n;
		struct em_plan_cgroup_fs *c = &p->cgroup_fs[p->n_cgroup_fs++];
		memset(c, 0, sizeof(*c));
		c->name = xstrdup(mp[14] ? mp + 15 : "", err, &ret);
		c->fstype = xstrdup(fstype, err, &ret);
		if (!v2) {
			/* superoptions "rw,cpu,cpuacct": the subsystems are what is not rw/ro */
			char opts[512] = "";
			char *s2 = NULL;
			for (tok = strtok_r(super, ",", &s2); tok; tok = strtok_r(NULL, ",", &s2)) {
				if (!strcmp(tok, "rw") || !strcmp(tok, "ro"))
					continue;
				if (opts[0])
					strncat(opts, ",", sizeof(opts) - strlen(opts) - 1);
				strncat(opts, tok, sizeof(opts) - strlen(opts) - 1);
			}
			c->options = xstrdup(opts, err, &ret);
		}
		char host[4096];
		snprintf(host, sizeof(host), "%s/%s", mp, cgroup_rel ? cgroup_rel : "");
		c->host_dir = xstrdup(host, err, &ret);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---------------------------------------------------------------- devices */

static const struct {
	const char *path;
	unsigned maj, min;
} default_devices[] = {
	{ "/dev/null", 1, 3 }, { "/dev/zero", 1, 5 },    { "/dev/full", 1, 7 },
	{ "/dev/random", 1, 8 }, { "/dev/urandom", 1, 9 }, { "/dev/tty", 5, 0 },
};

static int add_device(struct em_plan *p, const char *path, mode_t mode, dev_t rdev, uid_t uid,
		      gid_t gid, struct em_err *err)
{
	int ret = 0;

	for (size_t i = 0; i < p->n_devices; i++)
		if (!strcmp(p->devices[i].path, path)) { /* the config overrides a default */
			p->devices[i].mode = mode;
			p->devices[i].rdev = rdev;
			p->devices[i].uid = uid;
			p->devices[i].gid = gid;
			return 0;
		}
	struct em_plan_device *n = realloc(p->devices, (p->n_devices + 1) * sizeof(*n));
	if (!n)
		return em_err_set(err, ENOMEM, "plan devices");
	p->devices = n;
	n[p->n_devices] = (struct em_plan_device){
		.path = xstrdup(path, err, &ret), .mode = mode, .rdev = rdev, .uid = uid, .gid = gid,
	};
	if (ret < 0)
		return ret;
	p->n_devices++;
	return 0;
}

static int plan_devices(struct em_plan *p, const struct em_oci_linux *l, struct em_err *err)
{
	int ret;

	for (size_t i = 0; i < EM_ARRAY_SIZE(default_devices); i++) {
		ret = add_device(p, default_devices[i].path, S_IFCHR | 0666,
				 makedev(default_devices[i].maj, default_devices[i].min), 0, 0, err);
		if (ret < 0)
			return ret;
	}
	for (size_t i = 0; i < l->n_devices; i++) {
		const struct em_oci_device *d = &l->devices[i];
		mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
		mode_t perm = d->file_mode.set ? (mode_t)(d->file_mode.v & 07777) : 0666;
		dev_t rdev = d->type == 'p' ? 0 : makedev((unsigned)d->major, (unsigned)d->minor);

		ret = add_device(p, d->path, type | perm, rdev, d->uid.set ? (uid_t)d->uid.v : 0,
				 d->gid.set ? (gid_t)d->gid.v : 0, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---------------------------------------------------------------- helpers */

static int strv_dup(char ***out, size_t *n_out, const struct em_strv *in, struct em_err *err)
{
	char **v = calloc(in->n + 1, sizeof(char *));

	if (!v)
		return em_err_set(err, ENOMEM, "plan");
	for (size_t i = 0; i < in->n; i++) {
		v[i] = strdup(in->v[i]);
		if (!v[i]) {
			for (size_t k = 0; k < i; k++)
				free(v[k]);
			free(v);
			return em_err_set(err, ENOMEM, "plan");
		}
	}
	*out = v;
	if (n_out)
		*n_out = in->n;
	return 0;
}

static void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static int idmap_text(struct em_plan_idmap_file *f, const struct em_oci_idmap *m, size_t n,
		      struct em_err *err)
{
	char buf[4096];
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", m[i].container_id,
				 m[i].host_id, m[i].size);
		if (w < 0 || (size_t)w >= sizeof(buf) - len)
			return em_err_msg(err, E2BIG, "linux.uidMappings/gidMappings: too many entries");
		len += (size_t)w;
	}
	f->text = strndup(buf, len);
	if (!f->text)
		return em_err_set(err, ENOMEM, "plan id maps");
	f->len = len;
	return 0;
}

/* A sysctl key "net.ipv4.ip_forward" becomes "/proc/sys/net/ipv4/ip_forward". */
static int plan_sysctls(struct em_plan *p, const struct em_oci_kvv *s, struct em_err *err)
{
	if (!s->n)
		return 0;
	p->sysctls = calloc(s->n, sizeof(*p->sysctls));
	if (!p->sysctls)
		return em_err_set(err, ENOMEM, "plan sysctls");
	for (size_t i = 0; i < s->n; i++) {
		char path[4096];
		int n = snprintf(path, sizeof(path), "/proc/sys/%s", s->v[i].key);

		if (strstr(s->v[i].key, "..") || strchr(s->v[i].key, '/') || n >= (int)sizeof(path))
			return em_err_msg(err, EINVAL, "linux.sysctl: invalid key \"%s\"", s->v[i].key);
		for (char *c = path + 10; *c; c++)
			if (*c == '.')
				*c = '/';
		p->sysctls[i].path = strdup(path);
		p->sysctls[i].value = strdup(s->v[i].value);
		p->n_sysctls++;
		if (!p->sysctls[i].path || !p->sysctls[i].value)
			return em_err_set(err, ENOMEM, "plan sysctls");
	}
	return 0;
}

static int plan_mounts(struct em_plan *p, const struct em_oci_config *cfg, const char *bundle,
		       struct em_err *err)
{
	int ret = 0;

	p->mounts = calloc(cfg->n_mounts ? cfg->n_mounts : 1, sizeof(*p->mounts));
	if (!p->mounts)
		return em_err_set(err, ENOMEM, "plan mounts");
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const struct em_oci_mount *om = &cfg->mounts[i];
		struct em_plan_mount *m = &p->mounts[p->n_mounts++];
		char field[64];

		snprintf(field, sizeof(field), "mounts[%zu]", i);
		m->kind = EM_PM_MOUNT;
		if (om->type && !strcmp(om->type, "bind"))
			m->kind = EM_PM_BIND;
		ret = em_plan_parse_mount_options(&om->options, m, field, err);
		if (ret < 0)
			return ret;
		if (om->n_uid_mappings || om->n_gid_mappings)
			return em_err_msg(err, EOPNOTSUPP,
					  "%s: idmapped mounts are not supported by ember", field);
		m->target = xstrdup(om->destination, err, &ret);
		m->fstype = xstrdup(om->type, err, &ret);
		if (ret < 0)
			return ret;
		if (m->kind == EM_PM_BIND) {
			char src[4096];
			struct stat st;

			if (!om->source)
				return em_err_msg(err, EINVAL, "%s.source: required for a bind mount",
						  field);
			/* a relative bind source is relative to the bundle, as runc does */
			if (om->source[0] != '/') {
				if (em_path_join(src, sizeof(src), bundle, om->source) < 0)
					return em_err_msg(err, ENAMETOOLONG, "%s.source: too long", field);
			} else {
				snprintf(src, sizeof(src), "%s", om->source);
			}
			if (stat(src, &st) < 0)
				return em_err_set(err, errno, "%s.source: bind source %s", field, src);
			m->file_target = !S_ISDIR(st.st_mode);
			m->source = xstrdup(src, err, &ret);
		} else if (om->type && (!strcmp(om->type, "cgroup") || !strcmp(om->type, "cgroup2"))) {
			m->kind = EM_PM_CGROUP;
			m->source = xstrdup(om->source ? om->source : "cgroup", err, &ret);
		} else {
			if (!om->type)
				return em_err_msg(err, EINVAL,
						  "%s.type: required unless the options say bind or rbind",
						  field);
			m->source = xstrdup(om->source ? om->source : om->type, err, &ret);
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---------------------------------------------------------------- namespaces */

static int plan_namespaces(struct em_plan *p, const struct em_oci_config *cfg,
			   const struct em_plan_opts *opts, struct em_err *err)
{
	const struct em_oci_linux *l = &cfg->linux_;
	bool any_join = false;

	for (int t = 0; t < EM_NS_COUNT; t++)
		p->join_fds[t] = -1;
	for (size_t i = 0; i < l->n_namespaces; i++) {
		const struct em_oci_namespace *ns = &l->namespaces[i];
		char path[64];
		const char *open_path = ns->path;

		if (opts->for_exec) {
			/* exec joins every namespace the container has, whether created or joined */
			snprintf(path, sizeof(path), "/proc/%d/ns/%s", opts->join_pid,
				 ns_proc_name[ns->type]);
			open_path = path;
		}
		if (!open_path && ns->type == EM_NS_NET && opts->netns_fd >= 0) {
			/* a namespace from the pool stands in for a new one (see container.c) */
			p->join_fds[EM_NS_NET] = fcntl(opts->netns_fd, F_DUPFD_CLOEXEC, 3);
			if (p->join_fds[EM_NS_NET] < 0)
				return em_err_set(err, errno, "take the pooled network namespace");
			any_join = true;
			continue;
		}
		if (!open_path) {
			if (ns->type == EM_NS_USER)
				p->new_userns = true;
			p->clone_flags |= ns_clone_flag[ns->type];
			continue;
		}
		p->join_fds[ns->type] = open(open_path, O_RDONLY | O_CLOEXEC);
		if (p->join_fds[ns->type] < 0)
			return em_err_set(err, errno, "linux.namespaces[%zu]: open %s namespace %s", i,
					  em_ns_type_name(ns->type), open_path);
		any_join = true;
	}
	if (opts->for_exec) {
		p->two_stage = true; /* joining a pid namespace only affects children */
		return 0;
	}
	/* Creating a time namespace with offsets, joining a pid or user namespace, or joining
	 * anything while also creating a user namespace needs a first process that joins and
	 * unshares, then forks the container's init (see sandbox.c). */
	if (p->timens_offsets || p->join_fds[EM_NS_PID] >= 0 || p->join_fds[EM_NS_USER] >= 0 ||
	    (p->new_userns && any_join)) {
		p->two_stage = true;
		p->unshare_flags = p->clone_flags;
		p->clone_flags = 0;
	}
	return 0;
}

/* ---------------------------------------------------------------- process */

static int plan_process(struct em_plan *p, const struct em_oci_process *proc, struct em_err *err)
{
	int ret = 0;

	if (!proc->args.n)
		return em_err_msg(err, EINVAL, "process.args: at least one argument is required");
	ret = strv_dup(&p->argv, NULL, &proc->args, err);
	if (ret < 0)
		return ret;
	ret = strv_dup(&p->envp, NULL, &proc->env, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < proc->env.n; i++)
		if (!strncmp(proc->env.v[i], "PATH=", 5))
			p->path_env = xstrdup(proc->env.v[i] + 5, err, &ret);
	if (!p->path_env)
		p->path_env = xstrdup("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				      err, &ret);
	p->cwd = xstrdup(proc->cwd ? proc->cwd : "/", err, &ret);
	if (ret < 0)
		return ret;
	p->uid = proc->user.uid;
	p->gid = proc->user.gid;
	if (proc->user.n_additional_gids) {
		p->groups = calloc(proc->user.n_additional_gids, sizeof(gid_t));
		if (!p->groups)
			return em_err_set(err, ENOMEM, "plan");
		for (size_t i = 0; i < proc->user.n_additional_gids; i++)
			p->groups[i] = proc->user.additional_gids[i];
		p->n_groups = proc->user.n_additional_gids;
	}
	p->set_groups = !p->deny_setgroups;
	p->set_umask = proc->user.umask.set;
	p->umask = (mode_t)(proc->user.umask.v & 0777);
	memcpy(p->caps, proc->caps, sizeof(p->caps));
	ret = em_caps_last_cap(&p->last_cap, err);
	if (ret < 0)
		return ret;
	p->rlimits = proc->rlimits;
	p->n_rlimits = proc->n_rlimits;
	p->no_new_privs = proc->no_new_privileges;
	p->set_oom_score_adj = proc->oom_score_adj.set;
	p->oom_score_adj = (int)proc->oom_score_adj.v;
	p->terminal = proc->terminal;
	if (proc->console_size.set) {
		p->console_rows = (unsigned short)proc->console_size.height;
		p->console_cols = (unsigned short)proc->console_size.width;
	}
	if (proc->io_priority.set) {
		p->has_io_priority = true;
		p->io_priority = (proc->io_priority.class_ << 13) | proc->io_priority.priority;
	}
	return 0;
}

int em_plan_build(const struct em_oci_config *cfg, const struct em_oci_process *proc,
		  const struct em_plan_opts *opts, struct em_plan *p, struct em_err *err)
{
	const struct em_oci_linux *l = &cfg->linux_;
	int ret = 0;

	memset(p, 0, sizeof(*p));
	for (int t = 0; t < EM_NS_COUNT; t++)
		p->join_fds[t] = -1;
	if (!proc)
		proc = &cfg->process;

	if (!opts->for_exec && (l->time_monotonic.set || l->time_boottime.set)) {
		char buf[256];

		snprintf(buf, sizeof(buf), "monotonic %lld %u\nboottime %lld %u\n",
			 (long long)l->time_monotonic.secs, l->time_monotonic.nanosecs,
			 (long long)l->time_boottime.secs, l->time_boottime.nanosecs);
		p->timens_offsets = xstrdup(buf, err, &ret);
		if (ret < 0)
			goto fail;
	}
	ret = plan_namespaces(p, cfg, opts, err);
	if (ret < 0)
		goto fail;

	if (!opts->for_exec) {
		if (p->new_userns) {
			ret = idmap_text(&p->uid_map, l->uid_mappings, l->n_uid_mappings, err);
			if (ret == 0)
				ret = idmap_text(&p->gid_map, l->gid_mappings, l->n_gid_mappings, err);
			if (ret < 0)
				goto fail;
			/* as runc: with a single gid mapped (rootless), setgroups must be denied */
			p->deny_setgroups = l->n_gid_mappings == 1 && l->gid_mappings[0].size == 1 &&
					    l->gid_mappings[0].host_id != 0;
		}
		if (!(p->clone_flags & CLONE_NEWNS) && !(p->unshare_flags & CLONE_NEWNS)) {
			ret = em_err_msg(err, EINVAL,
					 "linux.namespaces: a new mount namespace is required");
			goto fail;
		}
		p->setup_rootfs = true;
		char root[4096];
		if (cfg->root.path[0] == '/')
			snprintf(root, sizeof(root), "%s", cfg->root.path);
		else if (em_path_join(root, sizeof(root), opts->bundle, cfg->root.path) < 0) {
			ret = em_err_msg(err, ENAMETOOLONG, "root.path: too long");
			goto fail;
		}
		char *real = realpath(root, NULL);
		if (!real) {
			ret = em_err_set(err, errno, "root.path: %s", root);
			goto fail;
		}
		p->rootfs = real;
		struct stat st;
		if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
			ret = em_err_msg(err, ENOTDIR, "root.path: %s is not a directory", real);
			goto fail;
		}
		p->root_readonly = cfg->root.readonly;
		if (l->rootfs_propagation)
			p->root_propagation = propagation_from_name(l->rootfs_propagation);
		p->cgroupns = (p->clone_flags | p->unshare_flags) & CLONE_NEWCGROUP;
		p->bind_devices = p->new_userns || p->join_fds[EM_NS_USER] >= 0;
		ret = plan_mounts(p, cfg, opts->bundle, err);
		if (ret < 0)
			goto fail;
		for (size_t i = 0; i < p->n_mounts; i++)
			if (p->mounts[i].kind == EM_PM_CGROUP) {
				ret = plan_cgroup_fs(p, opts->cgroup_rel, err);
				if (ret < 0)
					goto fail;
				break;
			}
		ret = plan_devices(p, l, err);
		if (ret < 0)
			goto fail;
		ret = strv_dup(&p->masked, &p->n_masked, &l->masked_paths, err);
		if (ret == 0)
			ret = strv_dup(&p->readonly, &p->n_readonly, &l->readonly_paths, err);
		if (ret < 0)
			goto fail;
		p->hostname = xstrdup(cfg->hostname, err, &ret);
		p->domainname = xstrdup(cfg->domainname, err, &ret);
		if (ret < 0)
			goto fail;
		ret = plan_sysctls(p, &l->sysctl, err);
		if (ret < 0)
			goto fail;
		p->run_create_container_hooks = true;
	}
	p->hooks = &cfg->hooks;
	if (!opts->for_exec)
		p->needs_create_runtime = cfg->hooks.n[EM_HOOK_PRESTART] ||
					  cfg->hooks.n[EM_HOOK_CREATE_RUNTIME] ||
					  cfg->hooks.n[EM_HOOK_CREATE_CONTAINER] ||
					  cfg->hooks.n[EM_HOOK_START_CONTAINER];

	ret = plan_process(p, proc, err);
	if (ret < 0)
		goto fail;
	if (l->seccomp) {
		ret = em_seccomp_compile(l->seccomp, opts->log, &p->seccomp, err);
		if (ret < 0)
			goto fail;
		p->has_seccomp = true;
	}
	if (proc->apparmor_profile && *proc->apparmor_profile)
		em_warn(opts->log, "process.apparmorProfile: ember has no AppArmor support; ignored");
	if (proc->selinux_label && *proc->selinux_label)
		em_warn(opts->log, "process.selinuxLabel: ember has no SELinux support; ignored");
	return 0;
fail:
	em_plan_free(p);
	return ret;
}

void em_plan_free(struct em_plan *p)
{
	for (int t = 0; t < EM_NS_COUNT; t++)
		if (p->join_fds[t] >= 0)
			close(p->join_fds[t]);
	free(p->uid_map.text);
	free(p->gid_map.text);
	free(p->timens_offsets);
	free(p->rootfs);
	for (size_t i = 0; i < p->n_mounts; i++) {
		free(p->mounts[i].source);
		free(p->mounts[i].target);
		free(p->mounts[i].fstype);
		free(p->mounts[i].data);
	}
	free(p->mounts);
	for (size_t i = 0; i < p->n_cgroup_fs; i++) {
		free(p->cgroup_fs[i].name);
		free(p->cgroup_fs[i].fstype);
		free(p->cgroup_fs[i].options);
		free(p->cgroup_fs[i].host_dir);
	}
	free(p->cgroup_fs);
	for (size_t i = 0; i < p->n_devices; i++)
		free(p->devices[i].path);
	free(p->devices);
	strv_free(p->masked);
	strv_free(p->readonly);
	free(p->hostname);
	free(p->domainname);
	for (size_t i = 0; i < p->n_sysctls; i++) {
		free(p->sysctls[i].path);
		free(p->sysctls[i].value);
	}
	free(p->sysctls);
	strv_free(p->argv);
	strv_free(p->envp);
	free(p->path_env);
	free(p->cwd);
	free(p->groups);
	if (p->has_seccomp)
		em_seccomp_prog_free(&p->seccomp);
	memset(p, 0, sizeof(*p));
	for (int t = 0; t < EM_NS_COUNT; t++)
		p->join_fds[t] = -1;
}
