/* runtime/container.h — the container lifecycle behind the CLI, runc-compatible: create, start,
 * run, state, kill, delete, exec, list, ps, pause, resume, update, events. Each call does what
 * one runc command does, so create and start work from separate processes (as containerd uses
 * them): everything that must outlive a call lives in the state directory (state.h), the cgroup
 * and the container's processes. Every failure removes what the call created. */
#ifndef EMBER_RUNTIME_CONTAINER_H
#define EMBER_RUNTIME_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "runtime/oci.h"
#include "runtime/state.h"

struct em_err;
struct em_log;
struct em_cg_root;
struct em_cg_stats;

struct em_runtime {
	const char *root;            /* state root, default /run/ember */
	const char *cgroup_parent;   /* default "ember" */
	struct em_log *log;
	struct em_cg_root *cg;       /* opened on first use; em_runtime_close releases it */
};

void em_runtime_close(struct em_runtime *rt);

struct em_create_opts {
	const char *bundle;          /* default: the current directory */
	const char *pid_file;
	const char *console_socket;
	int preserve_fds;
	bool detach;                 /* run only */
	bool keep;                   /* run only: keep the stopped container (runc run --keep) */
	const char *bill_path;       /* run only: write the BPF billing record here ("-": stderr) */
};

int em_container_create(struct em_runtime *rt, const char *id, const struct em_create_opts *o,
			struct em_err *err);
int em_container_start(struct em_runtime *rt, const char *id, struct em_err *err);
/* create + start; in the foreground waits and sets *exit_code (128+N for signal N). */
int em_container_run(struct em_runtime *rt, const char *id, const struct em_create_opts *o,
		     int *exit_code, struct em_err *err);

/* The OCI state JSON (malloc'd). */
int em_container_state(struct em_runtime *rt, const char *id, char **json, struct em_err *err);
int em_container_kill(struct em_runtime *rt, const char *id, int sig, bool all, struct em_err *err);
int em_container_delete(struct em_runtime *rt, const char *id, bool force, struct em_err *err);
int em_container_pause(struct em_runtime *rt, const char *id, struct em_err *err);
int em_container_resume(struct em_runtime *rt, const char *id, struct em_err *err);
int em_container_pids(struct em_runtime *rt, const char *id, pid_t **pids, size_t *n,
		      struct em_err *err);
int em_container_stats(struct em_runtime *rt, const char *id, struct em_cg_stats *st,
		       struct em_err *err);
/* Apply new limits given as an OCI linux.resources object. */
int em_container_update(struct em_runtime *rt, const char *id, const struct em_oci_resources *r,
			struct em_err *err);

struct em_list_entry {
	struct em_state st;
	enum em_status status;
};
int em_container_list(struct em_runtime *rt, struct em_list_entry **out, size_t *n,
		      struct em_err *err);

struct em_exec_opts {
	const char *process_file;    /* -p process.json; else the fields below */
	char **args; size_t n_args;
	char **env; size_t n_env;    /* appended to the container's environment */
	const char *cwd;
	bool has_user; uid_t uid; gid_t gid;
	gid_t *additional_gids; size_t n_additional_gids;
	char **caps; size_t n_caps;  /* added to every capability set */
	bool tty;
	bool no_new_privs;
	bool detach;
	const char *pid_file;
	const char *console_socket;
	int preserve_fds;
};
int em_container_exec(struct em_runtime *rt, const char *id, const struct em_exec_opts *o,
		      int *exit_code, struct em_err *err);

/* Write pid to path atomically, as runc does (containerd reads it right after create). */
int em_write_pid_file(const char *path, pid_t pid, struct em_err *err);

#endif
