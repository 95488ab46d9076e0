/* snapshot/restore/jump.c — the two places where the restorer leaves C: the switch to its scratch
 * stack, and the last step, which installs the template's thread pointer, signal mask and
 * registers and jumps to its capture point with eax = 1.
 *
 * The last step is asm with no libc call and no stack use: once fs points at the template's TCB,
 * any canary-checked function would compare the restorer's frame canary with the template's
 * (a static binary's TCB lives in its brk heap, so the two differ per exec). */
#include "snapshot/restore/restore.h"

#include <stddef.h>

_Static_assert(offsetof(struct restore_jump, gs_base) == 8, "jump layout (asm)");
_Static_assert(offsetof(struct restore_jump, sigmask) == 16, "jump layout (asm)");
_Static_assert(offsetof(struct restore_jump, regs) == 24, "jump layout (asm)");
_Static_assert(offsetof(struct em_snap_regs, rsp) == 48, "regs layout (asm)");
_Static_assert(offsetof(struct em_snap_regs, rip) == 56, "regs layout (asm)");
_Static_assert(offsetof(struct em_snap_regs, mxcsr) == 64, "regs layout (asm)");
_Static_assert(offsetof(struct em_snap_regs, fpucw) == 68, "regs layout (asm)");

/* rdi = arg, rsi = fn, rdx = top */
__asm__(".text\n\t"
	".globl restore_on_stack\n\t"
	".type restore_on_stack, @function\n"
	"restore_on_stack:\n\t"
	"mov %rdx, %rsp\n\t"
	"and $-16, %rsp\n\t"
	"xor %ebp, %ebp\n\t"
	"call *%rsi\n\t"
	"ud2\n\t"
	".size restore_on_stack, .-restore_on_stack\n");

/* rdi = struct restore_jump *; r12 holds it until its own value is loaded last.
 *
 * Once every register is loaded (rsp is the template's: nothing here uses the stack after that),
 * the restorer unmaps itself, all of 0x3e0000000000-0x3e0100000000 but this stub's own page
 * (it sits alone on a page: .balign 4096): its text, data, bss with the scratch stack and j, and
 * its brk heap with its TCB. The two munmaps take rax, rdi, rsi (and the kernel rcx, r11); rip
 * waits in r8, the bounds in r9 and r10. A signal unblocked by the mask is delivered before the
 * unmap on the scratch stack, or after it on the template's: either is mapped. */
__asm__(".section .text.restore_jump, \"ax\", @progbits\n\t"
	".balign 4096\n\t"
	".globl restore_jump\n\t"
	".type restore_jump, @function\n"
	"restore_jump:\n\t"
	"mov %rdi, %r12\n\t"
	"mov $158, %eax\n\t"            /* arch_prctl(ARCH_SET_FS, fs_base) */
	"mov $0x1002, %edi\n\t"
	"mov 0(%r12), %rsi\n\t"
	"syscall\n\t"
	"mov 8(%r12), %rsi\n\t"
	"test %rsi, %rsi\n\t"
	"jz 1f\n\t"
	"mov $158, %eax\n\t"            /* arch_prctl(ARCH_SET_GS, gs_base) */
	"mov $0x1001, %edi\n\t"
	"syscall\n"
	"1:\n\t"
	"mov $14, %eax\n\t"             /* rt_sigprocmask(SIG_SETMASK, &sigmask, NULL, 8) */
	"mov $2, %edi\n\t"
	"lea 16(%r12), %rsi\n\t"
	"xor %edx, %edx\n\t"
	"mov $8, %r10d\n\t"
	"syscall\n\t"
	"fldcw 92(%r12)\n\t"
	"ldmxcsr 88(%r12)\n\t"
	"mov 24(%r12), %rbx\n\t"
	"mov 32(%r12), %rbp\n\t"
	"mov 48(%r12), %r13\n\t"
	"mov 56(%r12), %r14\n\t"
	"mov 64(%r12), %r15\n\t"
	"mov 72(%r12), %rsp\n\t"
	"mov 80(%r12), %r8\n\t"
	"mov 40(%r12), %r12\n\t"
	"lea restore_jump(%rip), %r10\n\t" /* this page: [r10, r10 + 4096) stays */
	"movabs $" RESTORER_BASE_S ", %rdi\n\t"
	"mov %r10, %r9\n\t"
	"sub %rdi, %r9\n\t"
	"add $4096, %r10\n\t"
	"mov $11, %eax\n\t"             /* munmap(base, stub page - base) */
	"mov %r9, %rsi\n\t"
	"syscall\n\t"
	"mov $11, %eax\n\t"             /* munmap(stub page end, end - stub page end) */
	"mov %r10, %rdi\n\t"
	"movabs $" RESTORER_END_S ", %rsi\n\t"
	"sub %r10, %rsi\n\t"
	"syscall\n\t"
	"mov $1, %eax\n\t"
	"jmp *%r8\n\t"
	".size restore_jump, .-restore_jump\n\t"
	".previous\n");
