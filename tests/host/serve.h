/* tests/host/serve.h — run the real `build/ember serve` as an operator does (its own run and data
 * directories and cgroup parent per test), talk to it through the API client, look at what the
 * kernel holds for its instances, and check that it leaves nothing behind. */
#ifndef EMBER_TESTS_SERVE_H
#define EMBER_TESTS_SERVE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "runtime/host/client.h"

struct serve {
	pid_t pid;
	char dir[128];           /* temp dir holding run/ and data/ */
	char run_dir[160], data_dir[160], sock[200];
	char cg_parent[64];      /* ember-test-host-<pid>-<n> */
	struct em_client *c;
	const char *extra[16];   /* extra `ember serve` flags for the next serve_start */
};

/* The suites' fixture: a fresh host with 4096 MB of capacity (serve_up), stopped and checked
 * (serve_down). */
void serve_up(struct serve *s);
void serve_down(struct serve *s);
void sleep_ms(unsigned ms);

/* Start (or restart, keeping the directories) the host and wait for its socket. */
void serve_start(struct serve *s);
/* SIGTERM, wait, assert exit 0 and nothing left: no instance cgroup, no process in the
 * parent. keep: the directories stay (for a restart). */
void serve_stop(struct serve *s, bool keep);
/* kill -9 the host (its instances are left to the next start to clean). */
void serve_kill9(struct serve *s);
/* Remove the directories and the cgroup parent. */
void serve_fini(struct serve *s);

/* PUT /v1/functions/NAME with an example bundle (build/examples/EXAMPLE); extra JSON fields
 * merged in (may be NULL). Returns the status; body in *resp. */
int deploy(struct serve *s, const char *name, const char *example, unsigned memory_mb,
	   const char *extra_json, struct em_client_resp *resp);
/* POST /v1/functions/NAME/invoke. */
int invoke(struct serve *s, const char *name, const char *payload, struct em_client_resp *resp);
/* GET path; the body parsed as JSON (NULL if not JSON). */
json_t *get_json(struct serve *s, const char *path, int *status);

/* The errorType of an error body (static buffer). */
const char *error_type(const struct em_client_resp *r);

/* The cgroup directory, in hierarchy ctrl ("memory", "freezer", ..., "unified"; ignored on a
 * pure v2 host), of the first instance of function fn in `state` ("idle", "busy", "parked") as
 * GET /v1/functions/{fn} lists them; NULL if there is none. *pid: its pid (may be NULL). */
const char *inst_cg(struct serve *s, const char *ctrl, const char *fn, const char *state, int *pid);
/* Number of instance cgroups (of any function) under the parent in the memory hierarchy. */
int inst_count(struct serve *s);
/* Read a small cgroup/proc file (static buffer, trailing newline stripped). */
const char *read_str(const char *dir, const char *file);
unsigned long long read_ull(const char *dir, const char *file);

/* Path of build/ember. */
const char *ember_bin(void);

/* Path of an example bundle. */
const char *example(const char *name);

#endif
