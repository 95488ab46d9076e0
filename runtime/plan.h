/* runtime/plan.h — *plan, then execute*. em_plan_build() turns a validated OCI config into the
 * exact list of operations the sandbox child will perform, before anything is cloned: every
 * path is resolved, every mount option parsed, every device number computed, the seccomp filter
 * compiled, namespace paths opened. The child (child.c) then only executes the plan with
 * async-signal-safe system calls and reports the first failing step; nothing in it allocates or
 * parses, so it is as safe to run from a multi-threaded host as from the CLI. */
#ifndef EMBER_RUNTIME_PLAN_H
#define EMBER_RUNTIME_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/oci.h"
#include "runtime/seccomp.h"

struct em_err;
struct em_log;

enum em_plan_mount_kind {
	EM_PM_MOUNT,       /* mount(source, target, fstype, flags, data) */
	EM_PM_BIND,        /* bind (recursive if rbind), then remount with flags if any */
	EM_PM_CGROUP,      /* the cgroup filesystem(s) of this host, namespaced if cgroupns */
};

struct em_plan_mount {
	enum em_plan_mount_kind kind;
	char *source;            /* bind: absolute host path; mount: fs source ("proc", "tmpfs") */
	char *target;            /* absolute path inside the container */
	char *fstype;
	char *data;              /* fs-specific options, comma-joined; NULL if none */
	unsigned long flags;     /* MS_RDONLY, MS_NOSUID, ... (not MS_BIND/propagation) */
	unsigned long propagation; /* MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE [|MS_REC]; 0 */
	bool recursive;          /* rbind */
	bool file_target;        /* bind of a non-directory: the mount point is a file */
};

struct em_plan_cgroup_fs {   /* one hierarchy to expose at <cgroup mount target>/<name> */
	char *name;              /* "memory", "cpu,cpuacct", "unified"; "" = the target itself (v2) */
	char *fstype;            /* "cgroup" or "cgroup2" */
	char *options;           /* v1 subsystem options ("memory"), NULL for cgroup2 */
	char *host_dir;          /* the container's cgroup on the host (for a bind without cgroupns) */
};

struct em_plan_device {
	char *path;              /* absolute inside the container */
	mode_t mode;             /* S_IFCHR/S_IFBLK/S_IFIFO | permissions */
	dev_t rdev;
	uid_t uid;
	gid_t gid;
};

struct em_plan_sysctl { char *path; char *value; };   /* "/proc/sys/net/ipv4/ip_forward" */

struct em_plan_idmap_file { char *text; size_t len; }; /* a uid_map/gid_map body */

struct em_plan {
	/* namespaces */
	int clone_flags;                 /* CLONE_NEW* created by the child's birth */
	int unshare_flags;               /* two-stage: created by stage 1 before forking stage 2 */
	bool two_stage;
	int join_fds[EM_NS_COUNT];       /* setns targets opened by the parent; -1 if not joined */
	bool new_userns;
	struct em_plan_idmap_file uid_map, gid_map;
	bool deny_setgroups;             /* write "deny" to setgroups before gid_map (rootless) */
	char *timens_offsets;            /* "monotonic S N\nboottime S N\n", NULL if none */

	/* filesystem (absent for exec) */
	bool setup_rootfs;
	char *rootfs;                    /* absolute host path */
	bool root_readonly;
	unsigned long root_propagation;  /* applied to "/" after pivot_root; 0 = keep rslave */
	struct em_plan_mount *mounts; size_t n_mounts;
	struct em_plan_cgroup_fs *cgroup_fs; size_t n_cgroup_fs;
	bool cgroupns;                   /* a new cgroup namespace: mount cgroupfs fresh */
	struct em_plan_device *devices; size_t n_devices;
	bool bind_devices;               /* user namespace: mknod is not allowed, bind host nodes */
	char **masked; size_t n_masked;
	char **readonly; size_t n_readonly;
	char *hostname, *domainname;
	struct em_plan_sysctl *sysctls; size_t n_sysctls;

	/* process */
	char **argv;                     /* NULL-terminated */
	char **envp;                     /* NULL-terminated */
	char *path_env;                  /* PATH for finding argv[0]; default if unset */
	char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t *groups; size_t n_groups;
	bool set_groups;                 /* false in a user namespace with setgroups denied */
	bool set_umask;
	mode_t umask;
	uint64_t caps[EM_CAP_NSETS];
	int last_cap;
	struct em_oci_rlimit *rlimits; size_t n_rlimits;  /* points into the config */
	bool no_new_privs;
	bool set_oom_score_adj;
	int oom_score_adj;
	bool has_seccomp;
	struct em_seccomp_prog seccomp;
	bool terminal;
	unsigned short console_rows, console_cols;
	bool has_io_priority;
	int io_priority;                 /* ioprio_set value (class << 13 | data) */

	/* hooks run from inside the container (createContainer, startContainer) */
	const struct em_oci_hooks *hooks;
	bool run_create_container_hooks; /* false for exec */
	bool needs_create_runtime;       /* stop after mounts for the parent's hooks + state JSON */
};

struct em_plan_opts {
	const char *bundle;              /* absolute bundle directory */
	const char *cgroup_rel;          /* the container's cgroup path inside each hierarchy */
	bool for_exec;                   /* joining a running container: no rootfs, join its ns */
	pid_t join_pid;                  /* for exec: the container's init */
	int netns_fd;                    /* a ready network namespace (from the pool) to join
					    instead of creating one; -1: none */
	struct em_log *log;              /* warnings (unsupported fields) */
};

int em_plan_build(const struct em_oci_config *cfg, const struct em_oci_process *proc,
		  const struct em_plan_opts *opts, struct em_plan *plan, struct em_err *err);
void em_plan_free(struct em_plan *plan);

/* Parse an OCI mount's options into flags/propagation/data/bind (exposed for tests). */
int em_plan_parse_mount_options(const struct em_strv *opts, struct em_plan_mount *m,
				const char *field, struct em_err *err);

#endif
