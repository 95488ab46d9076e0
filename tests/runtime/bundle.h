/* tests/runtime/bundle.h — helpers for the runtime's integration tests: make a bundle whose
 * config starts from `ember spec` and is edited as JSON, run the real build/ember binary the way
 * containerd does, and check that nothing was left behind in the kernel. */
#ifndef EMBER_TESTS_BUNDLE_H
#define EMBER_TESTS_BUNDLE_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct bundle {
	char dir[256];           /* the bundle directory (a fresh temp dir) */
	char root[256];          /* --root for ember: a fresh state root per bundle */
	json_t *cfg;             /* config.json to write; edit it, then bundle_write() */
};

struct run_result {
	int status;              /* exit status (128+N for a signal) */
	char out[65536];
	char err[65536];
};

/* Paths of what `make` built, found next to the test binary. */
const char *t_ember(void);
const char *t_rootfs(void);
/* The cgroup parent the tests give ember (--cgroup-parent), removed after each test. */
const char *t_cgroup_parent(void);

/* A bundle running args (NULL-terminated) in build/rootfs, read-only root, no terminal. */
void bundle_init(struct bundle *b, const char *const *args);
void bundle_write(struct bundle *b);
/* Remove the bundle dir and state root (asserting ember left nothing in them). */
void bundle_fini(struct bundle *b);

/* Edit helpers: the object at a dotted path ("linux.resources"), created if missing. */
json_t *cfg_obj(struct bundle *b, const char *path);
void cfg_set_args(struct bundle *b, const char *const *args);
/* Remove the namespace of this type from linux.namespaces (e.g. "network"). */
void cfg_drop_ns(struct bundle *b, const char *type);

/* Run `ember --root <root> <args...>` (NULL-terminated), stdin from /dev/null. */
void ember(struct bundle *b, struct run_result *r, const char *const *args);
/* The same, with a fd passed as fd 3 (for --preserve-fds); -1 for none. */
void ember_fd3(struct bundle *b, struct run_result *r, const char *const *args, int fd3);

/* What ember must have removed for container `id`: state dir, cgroups, mounts, processes. */
void assert_no_leak(struct bundle *b, const char *id);

/* The first line of a command's output, stripped of its newline. */
char *first_line(char *s);

#endif
