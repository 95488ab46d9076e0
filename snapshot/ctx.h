/* snapshot/ctx.h — the register context a dumper stores in an image's meta.ctx (FORMAT.md,
 * "Register context") and a restorer loads: where the template's ready point resumes.
 *
 * regs has exactly the layout of the SDK's struct ember_snap_regs (sdk/c/ember_proto.h), but
 * snapshot/ does not include the SDK's headers: the host translates its wire struct into this one
 * (the static assert below pins the size both share). */
#ifndef EMBER_SNAPSHOT_CTX_H
#define EMBER_SNAPSHOT_CTX_H

#include <stdint.h>

#define EM_SNAP_CTX_VERSION 1

/* What a function call preserves on x86-64 (System V), like setjmp's buffer. */
struct em_snap_regs {
	uint64_t rbx, rbp, r12, r13, r14, r15;
	uint64_t rsp;           /* the capture's caller's stack pointer once the call has returned */
	uint64_t rip;           /* the capture call's return address: the restorer jumps here, eax = 1 */
	uint32_t mxcsr;         /* SSE control and status */
	uint16_t fpucw;         /* x87 control word */
	uint16_t pad;
};

struct em_snap_ctx {
	uint32_t version;       /* EM_SNAP_CTX_VERSION */
	uint32_t size;          /* sizeof(struct em_snap_ctx): a reader refuses any other */
	struct em_snap_regs regs;
	uint64_t rseq_addr;     /* the template's registered rseq area (glibc's, in its TCB), or 0 */
	uint32_t rseq_len;      /* as registered (32 on glibc 2.36) */
	uint32_t rseq_sig;      /* RSEQ_SIG the template's code was built with: 0x53053053 */
};

_Static_assert(sizeof(struct em_snap_regs) == 72, "regs are ember_snap_regs' 72 bytes");
_Static_assert(sizeof(struct em_snap_ctx) == 96, "on-disk context size");

#endif
