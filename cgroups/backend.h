/* cgroups/backend.h — internal: the ops table the v2 and v1 backends fill, the root and cgroup
 * structs they share, and the small file helpers of cgroups.c. Not installed, not for other areas. */
#ifndef EMBER_CGROUPS_BACKEND_H
#define EMBER_CGROUPS_BACKEND_H

#include "cgroups/cgroups.h"

#include <stdarg.h>
#include <stddef.h>

#define EM_CG_FS "/sys/fs/cgroup"
#define EM_CG_MAX_HIER 16
/* v1: an empty cgroup kept frozen below the parent in the freezer hierarchy (see v1.c); gc
 * leaves it alone, em_cg_root_remove removes it. */
#define EM_CG_FREEZER_ANCHOR "ember-freezer-anchor"
/* How long freeze/thaw/kill wait for the kernel (TCG VMs are slow: be generous). */
#define EM_CG_WAIT_MS 20000

/* v1 controllers ember uses; each maps to one hierarchy (co-mounted ones share it). */
enum em_cg_ctrl { CTRL_CPU, CTRL_CPUACCT, CTRL_CPUSET, CTRL_MEMORY, CTRL_PIDS, CTRL_FREEZER,
		  CTRL_BLKIO, CTRL_DEVICES, CTRL_N };
extern const char *const em_cg_ctrl_names[CTRL_N];

struct em_cg_ops {
	const char *name;
	/* open the hierarchies, create the parent in each */
	int (*root_init)(struct em_cg_root *root, struct em_err *err);
	int (*root_remove)(struct em_cg_root *root, struct em_err *err);
	/* make (create=true: mkdir, EEXIST if present) or open the directories of cg->path */
	int (*make)(struct em_cg *cg, bool create, struct em_err *err);
	int (*apply)(struct em_cg *cg, const struct em_cg_limits *l, struct em_err *err);
	int (*attach)(struct em_cg *cg, pid_t pid, struct em_err *err);
	int (*set_frozen)(struct em_cg *cg, bool frozen, struct em_err *err);
	int (*frozen)(struct em_cg *cg, bool *frozen, struct em_err *err);
	/* SIGKILL everything and wait until empty */
	int (*kill_all)(struct em_cg *cg, struct em_err *err);
	int (*stats)(struct em_cg *cg, struct em_cg_stats *st, struct em_err *err);
	/* rmdir in every hierarchy (the cgroup is empty) */
	int (*remove)(struct em_cg *cg, struct em_err *err);
	bool clone_into_complete;   /* a CLONE_INTO_CGROUP child is fully placed */
};

extern const struct em_cg_ops em_cg_v2_ops, em_cg_v1_ops;

struct em_cg_root {
	enum em_cg_mode mode;
	const struct em_cg_ops *ops;
	struct em_log *log;
	char *parent;                    /* "ember", relative to every hierarchy's root */
	int unified_fd;                  /* root of the cgroup2 mount; -1 on pure v1 */
	int hier_fd[EM_CG_MAX_HIER];     /* v1: root of each distinct hierarchy ember uses */
	size_t n_hier;
	int ctrl_hier[CTRL_N];           /* v1: controller -> index in hier_fd, -1 if not mounted */
	unsigned v2_ctrls;               /* v2: controllers enabled for ember's cgroups (bit mask) */
};

struct em_cg {
	struct em_cg_root *root;
	char *path;                      /* relative to the hierarchy roots */
	int unified_fd;                  /* the cgroup's directory in the cgroup2 mount, or -1 */
	int hier_fd[EM_CG_MAX_HIER];     /* v1: the cgroup's directory per hierarchy, or -1 */
	uint64_t id;
};

/* v2 controller bits (v2_ctrls) */
enum { V2_CPU = 1, V2_MEMORY = 2, V2_PIDS = 4, V2_IO = 8, V2_CPUSET = 16, V2_HUGETLB = 32 };

/* v2 device rules: compile them into a BPF_CGROUP_DEVICE program and attach it to the cgroup
 * directory cgfd, replacing the device programs attached there before (devices_bpf.c). */
int em_cg_bpf_devices(int cgfd, const struct em_cg_device_rule *rules, size_t n,
		      struct em_err *err);

/* --- helpers (cgroups.c) */
/* Write a formatted value to knob `file` of cgroup directory dfd; errors name the cgroup. */
int em_cg_writef(int dfd, const char *cgpath, const char *file, struct em_err *err,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Read a knob into buf (NUL-terminated); errors name the cgroup. */
int em_cg_read(int dfd, const char *cgpath, const char *file, char *buf, size_t cap,
	       struct em_err *err);
int em_cg_read_u64(int dfd, const char *cgpath, const char *file, uint64_t *v,
		   struct em_err *err);
/* Find "key N" in a flat-keyed file's text; false if the key is absent. */
bool em_cg_kv(const char *text, const char *key, uint64_t *v);
/* Append the pids of cgroup.procs of dfd to *pids (malloc'd array). */
int em_cg_read_procs(int dfd, const char *cgpath, pid_t **pids, size_t *n, struct em_err *err);
/* mkdir every missing component of path below rootfd; for each level, new or not, call
 * hook(parent, dir) (may be NULL; it must be idempotent). create_leaf: the last component must not exist yet (EEXIST). Returns the
 * leaf's O_DIRECTORY fd. */
typedef int (*em_cg_level_hook)(int parent_fd, int dir_fd, const char *path, void *arg,
				struct em_err *err);
int em_cg_mkdir_p(int rootfd, const char *path, bool create_leaf, em_cg_level_hook hook,
		  void *arg, struct em_err *err);
int em_cg_open_dir(int rootfd, const char *path, struct em_err *err);   /* -ENOENT if absent */
/* rmdir path below rootfd, retrying EBUSY briefly (a killed task may still be leaving);
 * a missing directory is fine. */
int em_cg_rmdir(int rootfd, const char *path, struct em_err *err);
/* rmdir every empty cgroup below path (not path itself), deepest first; counts removals. */
int em_cg_rmdir_tree(int rootfd, const char *path, int *removed, struct em_err *err);
/* Wait up to EM_CG_WAIT_MS until pred(arg) is true (>0); pred returns <0 on error. */
int em_cg_wait(int (*pred)(void *arg, struct em_err *err), void *arg, const char *what,
	       struct em_err *err);
void em_cg_sleep_ms(unsigned ms);

#endif
