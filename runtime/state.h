/* runtime/state.h — a container's state directory under the runtime root (default /run/ember):
 *   <root>/<id>/state.json   what ember recorded (pid and its start time, bundle, cgroup, ...)
 *   <root>/<id>/config.json  the config the container was created with (hooks, annotations)
 *   <root>/<id>/exec.fifo    exists while the init waits for `start`
 * Commands on one container serialise on an flock of its directory: containerd may send kill
 * and delete at once. The status is never stored: it is read from the kernel each time (is the
 * pid alive with the same start time, does the fifo exist, is the cgroup frozen). */
#ifndef EMBER_RUNTIME_STATE_H
#define EMBER_RUNTIME_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct em_err;

#define EM_ID_MAX 1024

enum em_status { EM_ST_CREATING, EM_ST_CREATED, EM_ST_RUNNING, EM_ST_PAUSED, EM_ST_STOPPED };

struct em_state {
	char id[EM_ID_MAX];
	char bundle[4096];
	char rootfs[4096];
	char cgroup[4096];      /* the path given to em_cg_create/em_cg_open; "" if none */
	pid_t pid;              /* 0 before the init exists */
	uint64_t start_time;    /* /proc/<pid>/stat field 22: guards against pid reuse */
	char created[40];       /* RFC 3339, UTC */
	uid_t owner;
};

/* A locked, open state directory. */
struct em_state_dir {
	int dfd;
	char path[4096];
};

const char *em_status_name(enum em_status s);

/* runc's rule: letters, digits, '_', '+', '-', '.', not "." or "..", at most 1024 bytes. */
int em_state_check_id(const char *id, struct em_err *err);

/* Create <root>/<id> (EEXIST: "container <id> already exists") and lock it. */
int em_state_create(const char *root, const char *id, struct em_state_dir *sd, struct em_err *err);
/* Open and lock an existing one (ENOENT: "container <id> does not exist"). */
int em_state_open(const char *root, const char *id, struct em_state_dir *sd, struct em_err *err);
void em_state_close(struct em_state_dir *sd);
/* Remove the directory (it must be open and locked). */
int em_state_remove(struct em_state_dir *sd, struct em_err *err);

int em_state_write(struct em_state_dir *sd, const struct em_state *st, struct em_err *err);
int em_state_read(struct em_state_dir *sd, struct em_state *st, struct em_err *err);

/* The process's start time (jiffies since boot), 0 if it does not exist. */
uint64_t em_proc_start_time(pid_t pid);
/* Live, not a zombie, and the same process as recorded. */
bool em_state_pid_alive(const struct em_state *st);
/* created / running / stopped (paused is the caller's to detect through the cgroup). */
enum em_status em_state_status(struct em_state_dir *sd, const struct em_state *st);

/* The OCI state JSON (ociVersion, id, status, pid, bundle, annotations + runc's rootfs,
 * created, owner). annotations_json: a JSON object text or NULL. Returns malloc'd text. */
char *em_state_json(const struct em_state *st, enum em_status status, const char *annotations_json);

/* List container ids under root (malloc'd array of malloc'd strings). */
int em_state_list(const char *root, char ***ids, size_t *n, struct em_err *err);

#endif
