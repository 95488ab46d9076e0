/* snapshot/restore/restore.h — the restorer's own parts (ember-restore, see snapshot/restorer.h for
 * its contract): the plan phase 1 builds with libc on the original stack, and phase 2, which runs
 * on a scratch stack in the restorer's bss and rebuilds the template's address space around it. */
#ifndef EMBER_SNAPSHOT_RESTORE_H
#define EMBER_SNAPSHOT_RESTORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdnoreturn.h>

#include "snapshot/ctx.h"
#include "snapshot/image.h"
#include "snapshot/restorer.h"

/* The restorer is linked at this address (snapshot/build.mk: -Ttext-segment) and keeps itself,
 * its bss, its brk heap (randomized up to 1 GiB above its bss) and its malloc arena here; an
 * image with a region inside is refused (Restore.Layout). */
#define RESTORER_BASE EM_SNAP_RESTORER_BASE
#define RESTORER_END  EM_SNAP_RESTORER_END
#define RESTORER_BASE_S "0x3e0000000000" /* the same, for asm */
#define RESTORER_END_S  "0x3e0100000000"
/* where the vdso and vvar wait while the template's address space is cleared (inside ours) */
#define RESTORER_PARK (RESTORER_END - (64ull << 20))

#define CHANNEL_FD 3

enum restore_mode { MODE_EAGER, MODE_MMAP, MODE_LAZY };
enum thp_policy { THP_AUTO, THP_ALWAYS, THP_NEVER };

/* One of the kernel's special mappings: ours now, the image's address to move it to. */
struct special {
	char name[16];
	uint64_t start, end;    /* ours */
	uint64_t to;            /* the image's start */
};

struct restore_fd {
	int fd;
	uint32_t flags, fd_flags;
	uint64_t pos;
	char *path;
};

struct plan {
	int image_fd, uffd_dev_fd;
	enum restore_mode mode;
	enum thp_policy thp;
	bool direct, verify;
	bool no_uring;          /* --no-io-uring: the pread fill (what a sandbox without io_uring gets) */
	bool timing;            /* print phase times on stderr (the log) */
	struct em_snap_image *img;
	char *image_path;
	char *exe;              /* the template's executable, as the sandbox sees it */
	struct em_snap_ctx ctx;
	struct em_snap_mm mm;
	uint64_t fs_base, gs_base, sigmask;
	struct em_snap_sigaction sig[EM_SNAP_NSIG];
	struct restore_fd *fds;
	uint32_t nfds;
	struct special special[4];
	int nspecial;
	uint64_t t0;            /* CLOCK_MONOTONIC ns at main */
};

/* Report a failed check on the channel (EMBER_INIT_ERROR, {"errorType":"Restore.<check>",...}),
 * on stderr too, and exit 1. Usable in both phases (no allocation). */
noreturn void restore_fail(const char *check, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Phase 2, on the scratch stack: never returns (jumps into the template or fails). */
noreturn void restore_phase2(struct plan *p);

/* Run fn(arg) on the stack ending at top; fn must not return. */
noreturn void restore_on_stack(void *arg, void (*fn)(void *), void *top);

/* The template's registers and thread state, loaded by a naked stub (jump.c). */
struct restore_jump {
	uint64_t fs_base, gs_base, sigmask;
	struct em_snap_regs regs;
};
noreturn void restore_jump(const struct restore_jump *j);

uint64_t restore_now_ns(void);

#endif
