/* runtime/execstub/stub.c — the last hop before the container's process: a tiny static program,
 * no libc, that ember copies into a sealed memfd and executes from there; it then executes the
 * container's program.
 *
 * Why (CVE-2019-5736): if the container's program is a script starting "#!/proc/self/exe" (or a
 * symlink to it), the kernel resolves /proc/self/exe while executing it — in the process doing
 * the exec. Were that ember itself, the container would end up running the host's ember binary
 * and could reopen it for writing through /proc/<pid>/exe once it exits. Executing from this
 * stub, /proc/self/exe is the sealed memfd (F_SEAL_WRITE|SHRINK|GROW|SEAL): the attacker gets a
 * copy it cannot write, and never a path to the host's binary.
 *
 * argv: ["ember-exec", "<fd>", "<path>", argv[0] of the container process, ...]. <fd> is the sync
 * socket: it is made close-on-exec so the parent sees EOF on success; on failure the stub sends
 * an EM_SYNC_ERROR message naming the path and exits 127.
 *
 * "ember-exec-wait" instead of "ember-exec": the function host's pre-made sandbox. The stub first
 * waits for an EM_SYNC_GO message on <fd> (parked: everything is set up, the host's address space
 * copy is gone, the process is a few pages) and exits quietly if the socket closes instead. */
#include <asm/unistd.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/sync.h"

static long sys3(long n, long a, long b, long c)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
			 "r"(r9) : "rcx", "r11", "memory");
	return ret;
}

static __attribute__((noreturn)) void die(int code)
{
	for (;;)
		sys3(__NR_exit_group, code, 0, 0);
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

void stub_main(long *sp) __attribute__((used, noreturn));
void stub_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	struct em_sync_msg msg;
	long fd = 0, ret;
	const char *p;
	size_t i;

	int wait = argc >= 4 && streq(argv[0], "ember-exec-wait");

	if (argc < 4 || (!wait && !streq(argv[0], "ember-exec")))
		die(126); /* not started by ember: do nothing at all */
	for (p = argv[1]; *p >= '0' && *p <= '9'; p++)
		fd = fd * 10 + (*p - '0');
	while (wait) {
		ret = sys6(__NR_recvfrom, fd, (long)&msg, sizeof(msg), 0, 0, 0);
		if (ret == -4 /* EINTR */)
			continue;
		if (ret != (long)sizeof(msg))
			die(0); /* the host let go of this sandbox */
		if (msg.type == EM_SYNC_GO)
			break;
	}
	sys3(__NR_fcntl, fd, F_SETFD, FD_CLOEXEC);
	ret = sys3(__NR_execve, (long)argv[2], (long)(argv + 3), (long)envp);

	for (i = 0; i < sizeof(msg); i++)
		((char *)&msg)[i] = 0;
	msg.type = EM_SYNC_ERROR;
	msg.err = (int32_t)-ret;
	p = "exec ";
	for (i = 0; *p; p++)
		msg.step[i++] = *p;
	for (p = argv[2]; *p && i < sizeof(msg.step) - 1; p++)
		msg.step[i++] = *p;
	sys6(__NR_sendto, fd, (long)&msg, sizeof(msg), 0x4000 /* MSG_NOSIGNAL */, 0, 0);
	die(127);
}

/* The kernel enters with the stack pointer at argc; align and hand it to C. */
__asm__(".globl _start\n"
	"_start:\n"
	"  mov %rsp, %rdi\n"
	"  and $-16, %rsp\n"
	"  call stub_main\n"
	"  hlt\n");
