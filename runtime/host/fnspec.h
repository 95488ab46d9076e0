/* runtime/host/fnspec.h — what a deploy says about a function (the body of
 * `PUT /v1/functions/{name}`), validated. Every error names the field and the reason
 * (`memoryMb: must be an integer from 128 to 10240 in MB (got 127)`). */
#ifndef EMBER_RUNTIME_HOST_FNSPEC_H
#define EMBER_RUNTIME_HOST_FNSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct em_err;

#define EM_FN_NAME_MAX 64          /* [A-Za-z0-9_-]{1,64}, as Lambda */
#define EM_FN_MEMORY_MIN 128
#define EM_FN_MEMORY_MAX 10240
#define EM_FN_TIMEOUT_DEFAULT_MS 3000
#define EM_FN_TIMEOUT_MAX_MS 900000
#define EM_FN_TMP_DEFAULT_MB 512
#define EM_FN_TMP_MAX_MB 10240

enum em_fn_network { EM_FN_NET_NONE = 0, EM_FN_NET_BRIDGE };

/* Zygote templates (template.h): "auto" makes one after the function's first cold start,
 * "provisioned" at deploy (the deploy waits for it), "off" never: every new instance starts cold. */
enum em_fn_template { EM_FN_TMPL_AUTO = 0, EM_FN_TMPL_PROVISIONED, EM_FN_TMPL_OFF };
const char *em_fn_template_name(enum em_fn_template t);

/* Snapshots of the template (runtime/host/snapshot.h): "off" (the default: an image holds the
 * function's initialised memory, secrets read at init included, on the node's disk, so an operator
 * opts in, as with Lambda SnapStart), "auto" dumps the template to the version's image once it is
 * made, "provisioned" makes template and image at deploy (the deploy fails if either fails).
 * With an image, a template that is not alive (host restart, eviction, death) is restored from it
 * instead of paying the init again. */
enum em_fn_snapshot { EM_FN_SNAP_OFF = 0, EM_FN_SNAP_AUTO, EM_FN_SNAP_PROVISIONED };
const char *em_fn_snapshot_name(enum em_fn_snapshot s);

/* How a template is restored from its image (snapshot/restorer.h): "mmap" (the default) maps the
 * image's pages privately (page cache, copy on write, faults on first touch); "eager" reads it all
 * with io_uring into transparent huge pages before the template resumes; "lazy" registers the
 * memory with userfaultfd and the host serves faults, prefetching the working set recorded on the
 * first restore. README.md, "Snapshots", has the measurements behind the default. */
enum em_fn_restore { EM_FN_RESTORE_MMAP = 0, EM_FN_RESTORE_EAGER, EM_FN_RESTORE_LAZY };
const char *em_fn_restore_name(enum em_fn_restore r);

struct em_fn_spec {
	char name[EM_FN_NAME_MAX + 1];
	/* the code: an OCI bundle (absolute directory with config.json and its rootfs), or a rootfs
	 * plus a command (the host then makes the rest of the config itself) */
	char *bundle;
	char *rootfs;
	char **command; size_t n_command;
	uint32_t memory_mb;          /* default 128 */
	uint32_t timeout_ms;         /* default 3000 */
	char **env; size_t n_env;    /* "K=V", added to the bundle's process.env */
	uint32_t concurrency;        /* reserved concurrency: at most this many at once; 0 = none set
				        (bounded by node capacity only) */
	uint32_t tmp_mb;             /* size of the writable /tmp; default 512 */
	enum em_fn_network network;  /* default none (only lo) */
	enum em_fn_template tmpl;    /* default auto */
	enum em_fn_snapshot snapshot; /* default off */
	enum em_fn_restore restore;  /* default eager */
};

/* Parse and validate a deploy body for function `name` (from the URL; checked too). JSON keys:
 * "bundle", "rootfs", "command" (array of strings), "memoryMb", "timeoutMs", "environment"
 * (object of strings), "concurrency", "tmpMb", "network" ("none"|"bridge"),
 * "template" ("auto"|"provisioned"|"off"), "snapshot" ("off"|"auto"|"provisioned"),
 * "restore" ("mmap"|"eager"|"lazy"). A snapshot needs a template. Unknown keys are an
 * error (a typo must not deploy a function with defaults). Exactly one of bundle / rootfs+command. */
int em_fn_spec_from_json(const char *name, const json_t *body, struct em_fn_spec *spec,
			 struct em_err *err);
/* The same keys back (what GET shows under "config", what the host persists). */
json_t *em_fn_spec_to_json(const struct em_fn_spec *spec);
/* Deep copy; free. */
int em_fn_spec_copy(struct em_fn_spec *dst, const struct em_fn_spec *src, struct em_err *err);
void em_fn_spec_free(struct em_fn_spec *spec);
/* Is this a valid function name? */
bool em_fn_name_valid(const char *name);

#endif
