/* runtime/host/snapshot.h — the function host's side of template snapshots (issue 8): where a
 * version's image lives, how a ready template is dumped into it, and what a sandbox needs to be
 * restored from it instead of running the function's init.
 *
 * The pieces it joins:
 *   - the template's SDK describes itself on EMBER_SNAPSHOT and holds still (sdk/c/ember_snap.h);
 *   - snapshot/dump.h reads its memory through /proc and writes the image (snapshot/FORMAT.md);
 *   - snapshot/restorer.h is the program a restoring sandbox executes; it rebuilds the memory and
 *     resumes the template at its capture point;
 *   - snapshot/lazy.h serves a lazily restored template's page faults from the image.
 * Images are durable state: <data_dir>/snapshots/<function>-v<version>.img, removed with their
 * version (redeploy, remove), kept across host restarts (that is their point). */
#ifndef EMBER_RUNTIME_HOST_SNAPSHOT_H
#define EMBER_RUNTIME_HOST_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/host/fnspec.h"

struct em_err;
struct em_inst;

/* The image path of a function version: <data_dir>/snapshots/<fn>-v<version>.img. */
void em_hsnap_path(const char *data_dir, const char *fn, uint32_t version, char *buf, size_t cap);
/* Make <data_dir>/snapshots (mode 0700: images hold functions' memory). */
int em_hsnap_dir(const char *data_dir, struct em_err *err);
/* At start: remove from <data_dir>/snapshots every file that is not the image (or its working
 * set) of one of the n deployed versions named in keep ("<fn>-v<N>.img"): images of versions a
 * crashed host never got to remove, and half-written images of a dump it died in. Returns the
 * number removed. */
struct em_log;
int em_hsnap_sweep(const char *data_dir, char *const *keep, size_t n, struct em_log *log);

struct em_hsnap_stats {
	uint64_t bytes;          /* the image file */
	uint64_t stored, zero, absent; /* pages */
	double state_ms;         /* SNAPSHOT to SNAPSHOT_STATE */
	double dump_ms;          /* reading the memory and writing the image (fdatasync included) */
};

/* Dump template process `tmpl` (parked at its ready point; the caller serialises its channel) to
 * `path` (replaced atomically). The template carries on afterwards, dumped or not; err names
 * what refused (the template itself: "2 threads"; the dumper: "a shared mapping ..."). */
int em_hsnap_dump(struct em_inst *tmpl, const char *path, struct em_hsnap_stats *st,
		  struct em_err *err);

/* What a restoring sandbox gets: the program (argv[0] is /proc/self/fd/5, the restorer) and
 * fds 4-6: the image, the restorer's sealed memfd, /dev/userfaultfd (lazy; else -1). */
#define EM_HSNAP_RESTORE_NFDS 3
struct em_hsnap_restore {
	char **argv;             /* malloc'd, NULL-terminated; the caller may take it (then NULL) */
	size_t argc;
	int fds[EM_HSNAP_RESTORE_NFDS];
};

/* Check the image (header, metadata, taken on this kernel) and open what the sandbox needs. A
 * refused image is -ESTALE/-EBADMSG/... with the failed check in err: nothing was made. verify:
 * the image's page checksums are checked: here, for a private mapping (mmap; it reads the image
 * once, into the page cache the mapping then uses), by the restorer as it reads (eager), by the
 * fault server as it serves (lazy, em_hsnap_lazy_start). */
int em_hsnap_restore_prepare(const char *image, enum em_fn_restore mode, bool verify,
			     struct em_hsnap_restore *r, struct em_err *err);
void em_hsnap_restore_release(struct em_hsnap_restore *r);

/* Serve the page faults of a lazily restored template from its image (a thread of its own),
 * prefetching the working set recorded on an earlier restore and recording it on the first one.
 * uffd is duplicated. Stop once the template's process is gone (NULL is fine). */
struct em_hsnap_lazy;
int em_hsnap_lazy_start(const char *image, int uffd, bool verify, struct em_hsnap_lazy **out,
			struct em_err *err);
/* Record the working set served so far (<image>.ws), for the next restore to prefetch: the host
 * calls it once the first instance of the restored template has answered. 0 when the server
 * prefetched a recorded set instead (nothing to record). */
int em_hsnap_lazy_save_ws(struct em_hsnap_lazy *l, struct em_err *err);
void em_hsnap_lazy_stop(struct em_hsnap_lazy *l);

#endif
