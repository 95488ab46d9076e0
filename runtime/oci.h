/* runtime/oci.h — an OCI runtime-spec (1.0-1.2, Linux) config.json, parsed and validated into
 * plain C structs. Parsing only reads and checks: nothing here touches the kernel. Every error
 * names the JSON path and the reason, e.g. `linux.namespaces[2].type: unknown namespace "foo"`.
 * Unknown fields are ignored (the spec says so); wrong types and impossible values are errors.
 * All memory belongs to the struct em_oci_config and is released by em_oci_config_free(). */
#ifndef EMBER_RUNTIME_OCI_H
#define EMBER_RUNTIME_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct em_err;

/* Optional scalars: `set` says whether the field was present. */
struct em_opt_i64 { bool set; int64_t v; };
struct em_opt_u64 { bool set; uint64_t v; };
struct em_opt_bool { bool set; bool v; };

struct em_strv { char **v; size_t n; };           /* a JSON array of strings */

struct em_oci_kv { char *key; char *value; };
struct em_oci_kvv { struct em_oci_kv *v; size_t n; }; /* a JSON object of strings, in file order */

struct em_oci_root { char *path; bool readonly; };

struct em_oci_idmap { uint32_t container_id, host_id, size; };

struct em_oci_mount {
	char *destination;          /* absolute inside the container (relative accepted, made absolute) */
	char *source;               /* NULL if absent */
	char *type;                 /* NULL if absent (then a bind mount if options say bind/rbind) */
	struct em_strv options;
	struct em_oci_idmap *uid_mappings; size_t n_uid_mappings;   /* idmapped mounts (1.1) */
	struct em_oci_idmap *gid_mappings; size_t n_gid_mappings;
};

struct em_oci_rlimit { int resource; char *type; uint64_t soft, hard; }; /* resource: RLIMIT_* */

enum em_cap_set { EM_CAP_BOUNDING, EM_CAP_EFFECTIVE, EM_CAP_INHERITABLE, EM_CAP_PERMITTED,
		  EM_CAP_AMBIENT, EM_CAP_NSETS };

struct em_oci_user {
	uint32_t uid, gid;
	struct em_opt_u64 umask;
	uint32_t *additional_gids; size_t n_additional_gids;
	char *username;             /* Windows only; ignored */
};

struct em_oci_process {
	bool terminal;
	struct { bool set; uint32_t height, width; } console_size;
	char *cwd;                  /* required, absolute */
	struct em_strv env;         /* "KEY=value" */
	struct em_strv args;        /* required for create/run/exec, at least one */
	struct em_oci_user user;
	/* capability sets as bit masks (bit n = capability n); `caps_set[i]` says whether that set
	 * was given at all (absent sets are empty, as runc treats them) */
	uint64_t caps[EM_CAP_NSETS];
	bool caps_set[EM_CAP_NSETS];
	struct em_oci_rlimit *rlimits; size_t n_rlimits;
	bool no_new_privileges;
	struct em_opt_i64 oom_score_adj;   /* -1000..1000 */
	char *apparmor_profile, *selinux_label; /* accepted; ember has no LSM support (warned) */
	struct { bool set; int class_; int priority; } io_priority;
};

enum em_ns_type { EM_NS_PID, EM_NS_NET, EM_NS_MOUNT, EM_NS_IPC, EM_NS_UTS, EM_NS_USER,
		  EM_NS_CGROUP, EM_NS_TIME, EM_NS_COUNT };

struct em_oci_namespace {
	enum em_ns_type type;
	char *path;                 /* NULL: create a new one; else join this one */
};

struct em_oci_device {
	char type;                  /* 'c', 'u', 'b' or 'p' */
	char *path;
	int64_t major, minor;       /* -1 when absent (allowed only for 'p') */
	struct em_opt_u64 file_mode; /* permission bits; default 0666 */
	struct em_opt_u64 uid, gid;
};

struct em_oci_device_rule {     /* linux.resources.devices[] */
	bool allow;
	char type;                  /* 'a', 'c', 'b'; 'a' when absent */
	int64_t major, minor;       /* -1 = wildcard */
	char *access;               /* subset of "rwm"; "rwm" when absent */
};

struct em_oci_throttle { int64_t major, minor; uint64_t rate; };
struct em_oci_weight_device { int64_t major, minor; struct em_opt_u64 weight, leaf_weight; };
struct em_oci_hugepage { char *page_size; uint64_t limit; };
struct em_oci_net_prio { char *name; uint32_t priority; };

struct em_oci_resources {
	struct em_oci_device_rule *devices; size_t n_devices;
	struct {
		struct em_opt_i64 limit, reservation, swap, kernel, kernel_tcp;
		struct em_opt_u64 swappiness;
		struct em_opt_bool disable_oom_killer, use_hierarchy, check_before_update;
	} memory;
	struct {
		struct em_opt_u64 shares, period, realtime_period, burst;
		struct em_opt_i64 quota, realtime_runtime, idle;
		char *cpus, *mems;      /* cpuset lists, NULL if absent */
	} cpu;
	struct { struct em_opt_i64 limit; } pids;
	struct {
		struct em_opt_u64 weight, leaf_weight;
		struct em_oci_weight_device *weight_device; size_t n_weight_device;
		struct em_oci_throttle *throttle_read_bps, *throttle_write_bps,
				       *throttle_read_iops, *throttle_write_iops;
		size_t n_throttle_read_bps, n_throttle_write_bps,
		       n_throttle_read_iops, n_throttle_write_iops;
	} block_io;
	struct em_oci_hugepage *hugepage_limits; size_t n_hugepage_limits;
	struct {
		struct em_opt_u64 class_id;
		struct em_oci_net_prio *priorities; size_t n_priorities;
	} network;
	struct em_oci_kvv unified;  /* cgroup v2 "file": "value" */
	bool present;               /* linux.resources was given */
};

enum em_seccomp_op { EM_SCMP_NE, EM_SCMP_LT, EM_SCMP_LE, EM_SCMP_EQ, EM_SCMP_GE, EM_SCMP_GT,
		     EM_SCMP_MASKED_EQ };

struct em_oci_seccomp_arg { uint32_t index; uint64_t value, value_two; enum em_seccomp_op op; };

/* Actions are kept as the spec's names ("SCMP_ACT_ERRNO", ...) validated against this list:
 * SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO,
 * SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY. */
struct em_oci_seccomp_rule {
	struct em_strv names;
	char *action;
	struct em_opt_u64 errno_ret;
	struct em_oci_seccomp_arg *args; size_t n_args;
};

struct em_oci_seccomp {
	char *default_action;
	struct em_opt_u64 default_errno_ret;
	struct em_strv architectures;   /* "SCMP_ARCH_X86_64", ... */
	struct em_strv flags;           /* "SECCOMP_FILTER_FLAG_LOG", ... */
	char *listener_path, *listener_metadata;
	struct em_oci_seccomp_rule *syscalls; size_t n_syscalls;
};

struct em_oci_hook {
	char *path;                     /* absolute */
	struct em_strv args, env;
	struct em_opt_i64 timeout;      /* seconds, > 0 */
};

enum em_hook_kind { EM_HOOK_PRESTART, EM_HOOK_CREATE_RUNTIME, EM_HOOK_CREATE_CONTAINER,
		    EM_HOOK_START_CONTAINER, EM_HOOK_POSTSTART, EM_HOOK_POSTSTOP, EM_HOOK_NKINDS };

struct em_oci_hooks { struct em_oci_hook *v[EM_HOOK_NKINDS]; size_t n[EM_HOOK_NKINDS]; };

struct em_oci_time_offset { bool set; int64_t secs; uint32_t nanosecs; };

struct em_oci_linux {
	struct em_oci_namespace *namespaces; size_t n_namespaces;
	struct em_oci_idmap *uid_mappings; size_t n_uid_mappings;
	struct em_oci_idmap *gid_mappings; size_t n_gid_mappings;
	struct em_oci_time_offset time_monotonic, time_boottime;
	struct em_oci_device *devices; size_t n_devices;
	char *cgroups_path;             /* NULL if absent */
	struct em_oci_resources resources;
	struct em_oci_kvv sysctl;
	struct em_oci_seccomp *seccomp; /* NULL if absent */
	char *rootfs_propagation;       /* NULL or one of private, rprivate, slave, rslave, shared,
					   rshared, unbindable, runbindable */
	struct em_strv masked_paths, readonly_paths;
	char *mount_label;
	struct { bool set; char *domain; struct em_strv flags; } personality;
};

struct em_oci_config {
	char *oci_version;
	struct em_oci_root root;
	struct em_oci_mount *mounts; size_t n_mounts;
	struct em_oci_process process;
	bool has_process;
	char *hostname, *domainname;    /* NULL if absent */
	struct em_oci_hooks hooks;
	struct em_oci_kvv annotations;
	struct em_oci_linux linux_;
	bool has_linux;
};

/* Parse a config.json text / file. On error *cfg is left zeroed (nothing to free). */
int em_oci_parse(const char *json, size_t len, struct em_oci_config *cfg, struct em_err *err);
int em_oci_load(const char *path, struct em_oci_config *cfg, struct em_err *err);
void em_oci_config_free(struct em_oci_config *cfg);

/* Parse a process.json (what `exec --process` takes): the same rules as config.json's process. */
int em_oci_parse_process(const char *json, size_t len, struct em_oci_process *proc,
			 struct em_err *err);
void em_oci_process_free(struct em_oci_process *proc);

/* Lookups shared with the sandbox and CLI. */
const char *em_ns_type_name(enum em_ns_type t);          /* "pid", "network", ... */
int em_ns_type_from_name(const char *name);              /* -1 if unknown */
int em_cap_from_name(const char *name);                  /* "CAP_SYS_ADMIN" -> 21; -1 if unknown */
const char *em_cap_name(int cap);                        /* NULL if unknown */
int em_cap_last(void);                                   /* highest capability the table knows */
int em_rlimit_from_name(const char *name);               /* "RLIMIT_NOFILE" -> 7; -1 if unknown */
const char *em_hook_kind_name(enum em_hook_kind k);      /* "prestart", "createRuntime", ... */

/* Find the namespace entry of a type, NULL if the config does not list it. */
const struct em_oci_namespace *em_oci_find_ns(const struct em_oci_config *cfg, enum em_ns_type t);

/* The default config `ember spec` writes (runc's, adapted); rootless adds a user namespace with
 * the caller's ids mapped and drops what an unprivileged user cannot do. Returns malloc'd JSON. */
char *em_oci_default_spec(bool rootless, uid_t uid, gid_t gid);

#endif
