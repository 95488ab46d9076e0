/* snapshot/dump.h — the host's dump of a zygote template parked at its capture point (issue 8):
 * its memory read from outside (/proc/PID/{maps,pagemap,smaps}, process_vm_readv), what only it
 * could say (registers, thread pointer, signal state, its own view of paths) taken from its
 * EMBER_SNAPSHOT_STATE, written as an image (FORMAT.md) by the streaming writer.
 *
 * The caller (the function host) runs as root outside the template's mount namespace and
 * translates the SDK's struct ember_snap_state into struct em_snap_dump_in (snapshot/ does not
 * include the SDK's headers). The template must stay blocked on its channel for the whole call. */
#ifndef EMBER_SNAPSHOT_DUMP_H
#define EMBER_SNAPSHOT_DUMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "snapshot/ctx.h"
#include "snapshot/image.h"

struct em_err;

/* What the template told about itself (EMBER_SNAPSHOT_STATE), in snapshot/'s types. Texts are not
 * NUL-terminated necessarily: their lengths are given. */
struct em_snap_dump_in {
	pid_t pid;              /* the template, as the host sees it */
	uint32_t threads;       /* as the template counted them: must be 1 (checked here again) */
	struct em_snap_regs regs;
	uint64_t fs_base, gs_base;
	uint64_t sigmask;       /* blocked signals, bit n-1 for signal n */
	uint64_t rseq_addr;     /* 0: no rseq registered */
	uint32_t rseq_len, rseq_sig;
	struct em_snap_sigaction sigactions[EM_SNAP_NSIG];
	const char *maps;       /* its /proc/self/maps: paths as the template sees them */
	size_t maps_len;
	const char *fds;        /* "<fd> <readlink of /proc/self/fd/N>\n" lines */
	size_t fds_len;
	const char *exe;        /* readlink(/proc/self/exe) */
	size_t exe_len;
};

/* Zeroed options are the defaults. */
struct em_snap_dump_opts {
	size_t chunk;           /* bytes read per process_vm_readv batch, a multiple of 4096; 0: 8 MiB */
};

struct em_snap_dump_stats {
	uint32_t regions;
	uint64_t pages_stored, pages_zero, pages_absent;
	uint64_t bytes_stored;  /* page data in the image */
	uint64_t image_bytes;   /* the image file */
	uint64_t ns;            /* wall time of the dump */
};

/* Dump template in->pid into an image at path (written beside it, renamed into place).
 * Refuses, naming what: more than one thread; a shared mapping (MAP_SHARED: /dev/shm, memfd);
 * an fd above 3 that is not a regular file or a directory; a template line that does not match
 * the process's maps. st may be NULL. */
int em_snap_dump(const struct em_snap_dump_in *in, const char *path,
		 const struct em_snap_dump_opts *o, struct em_snap_dump_stats *st, struct em_err *err);

#endif
