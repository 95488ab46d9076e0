/* tests/sdk/test_snap_sdk.c — the template's side of a snapshot (sdk/c/ember_snap.h,
 * sdk/PROTOCOL.md "Snapshots"), with this test as the host: SNAPSHOT_STATE is checked against
 * what the kernel holds for that pid (/proc/PID/{maps,fd,exe,status,syscall}, and the registers,
 * thread pointer and rseq registration through ptrace), the template is seen blocked until
 * SNAPSHOT_DONE and serving afterwards; refusals (two threads, no snapshot handler) and a broken
 * wait. The resume with 1: in-process (the captured registers loaded as the restorer's last step
 * does), and in the template itself, restored in place through ptrace and /proc/PID/mem twice from
 * one dump: READY with "restored":true, re-seeded, a template again. A restore into a new
 * process is snapshot/restore/'s test. */
#include "tests/sdk/inst.h"
#include "sdk/c/ember_proto.h"
#include "sdk/c/ember_snap.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define META "{\"requestId\":\"r-1\",\"function\":\"snap\",\"version\":1,\"memoryMb\":128}"
#define ENV(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct inst in;

TestSuite(snap_sdk, .fini = inst_reap_all, .timeout = 60);

/* ------------------------------------------------------------------ starting templates */

static char zlib_env[PATH_MAX];

static const char *zygote_lib_env(void)
{
	snprintf(zlib_env, sizeof(zlib_env), "EMBER_ZYGOTE_LIB=%s/build/lib/libember_zygote.so",
		 EMBER_SRCDIR);
	return zlib_env;
}

static void start_c_template(void)
{
	const char *argv[] = { t_example_bin("probe"), NULL };

	inst_spawn(&in, argv, ENV("EMBER_TEMPLATE=1"), NULL, true);
	inst_expect_ready(&in, "c");
}

static void start_py_template(const char *handler)
{
	inst_spawn_py(&in, handler, ENV("EMBER_TEMPLATE=1", zygote_lib_env()), true);
	inst_expect_ready(&in, "python");
}

/* ------------------------------------------------------------------ the state */

struct snap {
	struct ember_snap_state st;
	char *payload;         /* the whole frame payload (malloc'd) */
	char *maps, *fds, *exe; /* NUL-terminated copies of the texts */
};

static char *dup_text(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	cr_assert_not_null(s);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static void snap_free(struct snap *s)
{
	free(s->payload);
	free(s->maps);
	free(s->fds);
	free(s->exe);
}

/* SNAPSHOT id, and its STATE, split. */
static void snap_take(uint64_t id, struct snap *s)
{
	struct frame f;

	memset(s, 0, sizeof(*s));
	cr_assert_eq(inst_send(&in, EMBER_SNAPSHOT, id, NULL, 0), 0);
	cr_assert_eq(inst_recv(&in, &f, INST_TIMEOUT_MS), 1, "no SNAPSHOT_STATE: the template exited");
	cr_assert_eq(f.h.type, EMBER_SNAPSHOT_STATE, "frame type %u: %.300s", f.h.type, f.payload);
	cr_assert_eq(f.h.id, id, "STATE id %" PRIu64 ", SNAPSHOT's was %" PRIu64, f.h.id, id);
	cr_assert_geq(f.h.len, sizeof(s->st), "STATE of %" PRIu64 " bytes", f.h.len);
	memcpy(&s->st, f.payload, sizeof(s->st));
	cr_assert_eq(f.h.len, sizeof(s->st) + (uint64_t)s->st.maps_len + s->st.fds_len +
		     s->st.exe_len, "STATE length %" PRIu64 " vs maps %u + fds %u + exe %u", f.h.len,
		     s->st.maps_len, s->st.fds_len, s->st.exe_len);
	s->payload = f.payload;
	s->maps = dup_text(f.payload + sizeof(s->st), s->st.maps_len);
	s->fds = dup_text(f.payload + sizeof(s->st) + s->st.maps_len, s->st.fds_len);
	s->exe = dup_text(f.payload + sizeof(s->st) + s->st.maps_len + s->st.fds_len, s->st.exe_len);
}

static void snap_done(uint64_t id)
{
	int32_t status = 0;

	cr_assert_eq(inst_send(&in, EMBER_SNAPSHOT_DONE, id, &status, sizeof(status)), 0);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap + 1);
			cr_assert_not_null(buf);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* A hex field of /proc/PID/status ("SigCgt", "SigBlk", ...). */
static uint64_t status_hex(pid_t pid, const char *field)
{
	char path[64], *st, *p;
	uint64_t v;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	st = read_file(path);
	p = strstr(st, field);
	cr_assert_not_null(p, "no %s in %s", field, path);
	v = strtoull(p + strlen(field) + 2, NULL, 16);
	free(st);
	return v;
}

static long status_long(pid_t pid, const char *field)
{
	char path[64], *st, *p;
	long v;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	st = read_file(path);
	p = strstr(st, field);
	cr_assert_not_null(p, "no %s in %s", field, path);
	v = strtol(p + strlen(field) + 1, NULL, 10);
	free(st);
	return v;
}

/* The maps text is /proc/PID/maps as the kernel gives it now, line for line (the test shares
 * the template's mount namespace, so the paths are the same). */
static void check_maps(const struct snap *s)
{
	char path[64], *real;
	const char *a, *b;
	int line = 1;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)in.pid);
	real = read_file(path);
	for (a = s->maps, b = real; *a && *b && *a == *b; a++, b++)
		if (*a == '\n')
			line++;
	if (*a || *b) {
		const char *la = a, *lb = b;

		while (la > s->maps && la[-1] != '\n')
			la--;
		while (lb > real && lb[-1] != '\n')
			lb--;
		cr_assert_fail("maps line %d differs:\n  state: %.*s\n  kernel: %.*s", line,
			       (int)strcspn(la, "\n"), la, (int)strcspn(lb, "\n"), lb);
	}
	free(real);
}

/* Every fd of /proc/PID/fd has its line, with the kernel's readlink, and no other line. */
static void check_fds(const struct snap *s)
{
	char dir[64], path[96], target[PATH_MAX], want[PATH_MAX + 32];
	char *lines = malloc(strlen(s->fds) + 2); /* "\n" + the text: every line is "\n...\n" */
	int found = 0, nlines = 0;

	cr_assert_not_null(lines);
	lines[0] = '\n';
	strcpy(lines + 1, s->fds);
	for (const char *p = s->fds; *p; p++)
		nlines += *p == '\n';
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)in.pid);
	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "%s/%d", dir, fd);
		ssize_t n = readlink(path, target, sizeof(target) - 1);

		if (n < 0)
			continue;
		target[n] = '\0';
		snprintf(want, sizeof(want), "\n%d %s\n", fd, target);
		cr_expect(strstr(lines, want) != NULL, "fd %d (%s) is not in the state's fd lines:\n%s",
			  fd, target, s->fds);
		found++;
	}
	cr_expect_eq(found, nlines, "%d fds in %s, %d lines:\n%s", found, dir, nlines, s->fds);
	cr_expect(strstr(lines, "\n3 socket:[") != NULL, "the channel (fd 3) is not a socket:\n%s",
		  s->fds);
	free(lines);
}

/* One line of /proc/PID/maps holding addr; its perms and path copied out. */
static bool mapping_of(pid_t pid, uint64_t addr, char perms[8], char *pathname, size_t cap)
{
	char path[64], *maps, *save = NULL;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = read_file(path);
	for (char *l = strtok_r(maps, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		unsigned long long lo, hi;
		char p[8], name[PATH_MAX] = "";

		if (sscanf(l, "%llx-%llx %7s %*s %*s %*s %4095s", &lo, &hi, p, name) < 3)
			continue;
		if (addr >= lo && addr < hi) {
			memcpy(perms, p, 8);
			snprintf(pathname, cap, "%s", name);
			found = true;
			break;
		}
	}
	free(maps);
	return found;
}

/* The kernel's view of the stopped template: registers and the rseq registration. */
struct ptrace_rseq_conf {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size, signature, flags, pad;
};
#define PTRACE_GET_RSEQ_CONFIGURATION_ 0x420f /* Linux 5.13 */

struct kview {
	struct user_regs_struct regs;
	struct ptrace_rseq_conf rseq;
};

/* Stop it with PTRACE_INTERRUPT (its read of the channel restarts on its own afterwards: no
 * signal is delivered), read, detach. */
static void kernel_view(pid_t pid, struct kview *k)
{
	int status;

	cr_assert_eq(ptrace(PTRACE_SEIZE, pid, NULL, NULL), 0, "PTRACE_SEIZE %d: %s", (int)pid,
		     strerror(errno));
	cr_assert_eq(ptrace(PTRACE_INTERRUPT, pid, NULL, NULL), 0, "PTRACE_INTERRUPT: %s",
		     strerror(errno));
	cr_assert_eq(waitpid(pid, &status, __WALL), pid);
	cr_assert(WIFSTOPPED(status), "status %#x", status);
	cr_assert_eq(ptrace(PTRACE_GETREGS, pid, NULL, &k->regs), 0, "GETREGS: %s", strerror(errno));
	memset(&k->rseq, 0, sizeof(k->rseq));
	cr_assert_eq(ptrace((enum __ptrace_request)PTRACE_GET_RSEQ_CONFIGURATION_, pid,
			    (void *)sizeof(k->rseq), &k->rseq), (long)sizeof(k->rseq),
		     "GET_RSEQ_CONFIGURATION: %s", strerror(errno));
	cr_assert_eq(ptrace(PTRACE_DETACH, pid, NULL, NULL), 0, "DETACH: %s", strerror(errno));
}

/* Everything the state says, against the kernel. code_file: where rip must point (the exe for a
 * static C template, libember_zygote.so for Python). */
static void check_state(const struct snap *s, const char *code_file)
{
	char path[64], exe[PATH_MAX], perms[8], name[PATH_MAX];
	struct kview k;
	uint64_t cgt = 0, ign = 0;
	ssize_t n;

	cr_assert_eq(s->st.error, 0, "error %d: %s", s->st.error, s->maps);
	cr_expect_eq(s->st.threads, 1);
	cr_expect_eq(status_long(in.pid, "Threads:"), 1);
	check_maps(s);
	check_fds(s);
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)in.pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	cr_assert_gt(n, 0);
	exe[n] = '\0';
	cr_expect_str_eq(s->exe, exe);

	/* signals: every non-default handler is one the kernel reports caught or ignored */
	for (int sig = 1; sig <= EMBER_SNAP_NSIG; sig++) {
		const struct ember_snap_sigaction *a = &s->st.sigactions[sig - 1];

		if (a->handler == (uint64_t)(uintptr_t)SIG_IGN)
			ign |= 1ull << (sig - 1);
		else if (a->handler != (uint64_t)(uintptr_t)SIG_DFL) {
			cgt |= 1ull << (sig - 1);
			cr_expect(a->flags & 0x04000000 /* SA_RESTORER */ && a->restorer,
				  "signal %d: a handler without a restorer", sig);
		}
	}
	cr_expect_eq(cgt, status_hex(in.pid, "SigCgt:"), "caught %#" PRIx64 ", SigCgt %#" PRIx64,
		     cgt, status_hex(in.pid, "SigCgt:"));
	cr_expect_eq(ign, status_hex(in.pid, "SigIgn:"), "ignored %#" PRIx64 ", SigIgn %#" PRIx64,
		     ign, status_hex(in.pid, "SigIgn:"));
	cr_expect_eq(s->st.sigmask, status_hex(in.pid, "SigBlk:"));

	/* registers: the kernel's thread pointer; a stack pointer in [stack] above where the
	 * template now sleeps; rip in executable code of the file that holds the handler */
	kernel_view(in.pid, &k);
	cr_expect_eq(s->st.fs_base, k.regs.fs_base, "fs_base %#" PRIx64 ", kernel %#llx",
		     s->st.fs_base, k.regs.fs_base);
	cr_expect_eq(s->st.gs_base, k.regs.gs_base);
	cr_assert(mapping_of(in.pid, s->st.regs.rsp, perms, name, sizeof(name)),
		  "rsp %#" PRIx64 " is in no mapping", s->st.regs.rsp);
	cr_expect_str_eq(name, "[stack]", "rsp %#" PRIx64 " is in %s", s->st.regs.rsp, name);
	cr_expect_gt(s->st.regs.rsp, k.regs.rsp, "captured rsp %#" PRIx64 " below the sleeping "
		     "one %#llx", s->st.regs.rsp, k.regs.rsp);
	cr_expect_eq(s->st.regs.rsp % 8, 0);
	cr_assert(mapping_of(in.pid, s->st.regs.rip, perms, name, sizeof(name)),
		  "rip %#" PRIx64 " is in no mapping", s->st.regs.rip);
	cr_expect_eq(perms[2], 'x', "rip %#" PRIx64 " in %s %s", s->st.regs.rip, perms, name);
	cr_expect_str_eq(name, code_file, "rip %#" PRIx64 " in %s", s->st.regs.rip, name);
	cr_expect_eq(s->st.regs.mxcsr & 0xffc0, 0x1f80, "mxcsr %#x", s->st.regs.mxcsr);
	cr_expect_eq(s->st.regs.fpucw, 0x37f, "x87 control word %#x", s->st.regs.fpucw);

	/* rseq: what the kernel has registered for the task */
	cr_expect_neq(k.rseq.rseq_abi_pointer, 0, "the template has no rseq registration");
	cr_expect_eq(s->st.rseq_addr, k.rseq.rseq_abi_pointer, "rseq %#" PRIx64 ", kernel %#" PRIx64,
		     s->st.rseq_addr, k.rseq.rseq_abi_pointer);
	cr_expect_eq(s->st.rseq_len, k.rseq.rseq_abi_size, "rseq_len %u, kernel %u",
		     s->st.rseq_len, k.rseq.rseq_abi_size);
	cr_expect_eq(s->st.rseq_sig, k.rseq.signature);
}

/* ------------------------------------------------------------------ blocking and after */

/* Until DONE: one thread asleep in a read of the channel, answering nothing. */
static void check_blocked(void)
{
	char path[64], *st;
	struct pollfd p = { .fd = in.chan, .events = POLLIN };

	assert_blocked_reading_the_channel(in.pid, ENV("0"));
	snprintf(path, sizeof(path), "/proc/%d/status", (int)in.pid);
	st = read_file(path);
	cr_expect(strstr(st, "State:\tS (sleeping)") != NULL, "%s", st);
	free(st);
	cr_expect_eq(poll(&p, 1, 300), 0, "the template sent something before DONE");
}

/* After DONE: it parks again, serves a FORK (without fds: FORKED EPROTO "0 fds", its fork core
 * read it) and an INVOKE. */
static void check_serving(const char *invoke_body)
{
	struct ember_fork_req req = { .tmp_mb = 16 };
	char *p;
	int32_t e;

	cr_assert_eq(inst_send(&in, EMBER_FORK, 31, &req, sizeof(req)), 0);
	p = inst_expect(&in, EMBER_FORKED, 31);
	memcpy(&e, p, sizeof(e));
	cr_expect_eq(e, EPROTO, "FORKED errno %d: %s", e, p + 4);
	cr_expect(strstr(p + 4, "0 fds") != NULL, "FORKED message: %s", p + 4);
	free(p);
	cr_assert_eq(inst_invoke(&in, 32, META, invoke_body, strlen(invoke_body)), 0);
	p = inst_expect(&in, EMBER_RESULT, 32);
	free(p);
}

static void snapshot_round(const char *code_file, const char *invoke_body)
{
	struct snap s;

	snap_take(77, &s);
	/* the state holds as soon as it has arrived (the template may not be in its read yet) */
	check_state(&s, code_file);
	check_blocked(); /* and ptrace's interrupt left it in its read */
	snap_free(&s);
	snap_done(77);
	check_serving(invoke_body);
}

/* ------------------------------------------------------------------ tests */

Test(snap_sdk, c_template_state_matches_the_kernel_and_it_blocks_until_done)
{
	start_c_template();
	snapshot_round(t_example_bin("probe"), "echo after the dump");
}

Test(snap_sdk, c_template_can_be_dumped_again)
{
	start_c_template();
	snapshot_round(t_example_bin("probe"), "echo one");
	snapshot_round(t_example_bin("probe"), "echo two");
}

Test(snap_sdk, python_template_state_matches_the_kernel_and_it_blocks_until_done)
{
	char so[PATH_MAX];

	snprintf(so, sizeof(so), "%s/build/lib/libember_zygote.so", EMBER_SRCDIR);
	start_py_template("handlers.echo");
	snapshot_round(so, "x");
	snapshot_round(so, "y");
}

/* Python installs handlers (SIGINT caught, SIGPIPE and SIGXFSZ ignored): the state must carry
 * them as the kernel holds them. */
Test(snap_sdk, python_template_reports_its_signal_handlers)
{
	struct snap s;

	start_py_template("handlers.echo");
	snap_take(5, &s);
	cr_expect_gt(s.st.sigactions[SIGINT - 1].handler, 1, "SIGINT is not caught");
	cr_expect_eq(s.st.sigactions[SIGPIPE - 1].handler, (uint64_t)(uintptr_t)SIG_IGN);
	cr_expect_eq(status_hex(in.pid, "SigCgt:") & (1ull << (SIGINT - 1)), 1ull << (SIGINT - 1));
	snap_free(&s);
	snap_done(5);
	check_serving("z");
}

/* A maps text of some 400 KB: counted, then streamed through the handler's 4 KB stack buffer in
 * a hundred sends, and still the kernel's maps line for line. */
Test(snap_sdk, python_template_with_4000_mappings_sends_its_whole_maps)
{
	char so[PATH_MAX];
	struct snap s;

	snprintf(so, sizeof(so), "%s/build/lib/libember_zygote.so", EMBER_SRCDIR);
	start_py_template("many_maps.handler");
	snap_take(3, &s);
	cr_expect_gt(s.st.maps_len, 256 << 10, "maps text of %u bytes", s.st.maps_len);
	check_state(&s, so);
	check_blocked();
	snap_free(&s);
	snap_done(3);
	check_serving("");
}

Test(snap_sdk, python_template_with_two_threads_is_refused_with_ebusy)
{
	struct snap s;
	char *p;

	start_py_template("threaded.handler");
	cr_assert_eq(status_long(in.pid, "Threads:"), 2);
	snap_take(6, &s);
	cr_expect_eq(s.st.error, EBUSY, "error %d: %s", s.st.error, s.maps);
	cr_expect_eq(s.st.threads, 2);
	cr_expect(strstr(s.maps, "2 threads") != NULL, "message: %s", s.maps);
	cr_expect_eq(s.st.fds_len, 0);
	cr_expect_eq(s.st.exe_len, 0);
	snap_free(&s);
	/* it waits for no DONE: the next INVOKE is answered at once */
	cr_assert_eq(inst_invoke(&in, 7, META, "still", 5), 0);
	p = inst_expect(&in, EMBER_RESULT, 7);
	cr_expect_str_eq(p, "still");
	free(p);
}

Test(snap_sdk, python_without_the_snapshot_handler_refuses_with_enosys)
{
	struct snap s;
	char *p;

	inst_spawn_py(&in, "handlers.echo",
		      ENV("EMBER_TEMPLATE=1", "EMBER_ZYGOTE_LIB=/nonexistent/libember_zygote.so"),
		      true);
	inst_expect_ready(&in, "python");
	snap_take(8, &s);
	cr_expect_eq(s.st.error, ENOSYS, "error %d: %s", s.st.error, s.maps);
	cr_expect_eq(s.st.threads, 1);
	cr_expect(strstr(s.maps, "no snapshot handler") != NULL, "message: %s", s.maps);
	cr_expect_eq(s.st.fds_len + s.st.exe_len, 0);
	snap_free(&s);
	cr_assert_eq(inst_invoke(&in, 9, META, "on", 2), 0);
	p = inst_expect(&in, EMBER_RESULT, 9);
	cr_expect_str_eq(p, "on");
	free(p);
}

/* While it waits for DONE only DONE may come: anything else ends it as a protocol error. */
static void other_frame_during_the_wait(void)
{
	struct snap s;
	char err[4096];
	int status;

	snap_take(11, &s);
	snap_free(&s);
	cr_assert_eq(inst_invoke(&in, 12, META, "x", 1), 0);
	status = inst_wait(&in, 10000);
	cr_expect_eq(exit_code(status), 2, "status %#x", status);
	inst_read_all(in.err, err, sizeof(err));
	cr_expect(strstr(err, "expected SNAPSHOT_DONE 11") != NULL, "stderr: %s", err);
}

Test(snap_sdk, c_template_exits_2_on_a_frame_other_than_done_during_the_wait)
{
	start_c_template();
	other_frame_during_the_wait();
}

Test(snap_sdk, python_template_exits_2_on_a_frame_other_than_done_during_the_wait)
{
	start_py_template("handlers.echo");
	other_frame_during_the_wait();
}

/* ------------------------------------------------------------------ a resume in place */

/* A restore without a new process: while the template waits for DONE its memory is the dump, so
 * loading the captured registers into it (eax = 1, as the restorer's last step; orig_rax = -1 so
 * the interrupted read is not restarted) resumes it exactly where a restored copy resumes. To
 * restore the same dump a second time, its writable private regions are saved through
 * /proc/PID/mem first and written back (the process then waits in a later SNAPSHOT, at the same
 * depth): two "restores" of one image, in one pid. */
struct region {
	uint64_t lo, hi;
	char *data;
};

struct saved {
	struct ember_snap_regs regs;
	uint64_t fs_base;
	struct region r[256];
	int n;
};

static int open_mem(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	return fd;
}

static void save_memory(const struct snap *s, struct saved *sv)
{
	char *text = strdup(s->maps), *save = NULL;
	uint64_t total = 0;
	int mem = open_mem(in.pid);

	cr_assert_not_null(text);
	sv->regs = s->st.regs;
	sv->fs_base = s->st.fs_base;
	sv->n = 0;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		unsigned long long lo, hi;
		char perms[8];

		if (sscanf(l, "%llx-%llx %7s", &lo, &hi, perms) != 3 || perms[1] != 'w' ||
		    perms[3] != 'p')
			continue;
		cr_assert_lt(sv->n, 256, "more than 256 writable regions");
		total += hi - lo;
		cr_assert_lt(total, 1ull << 30, "over 1 GiB of writable memory to save");
		struct region *r = &sv->r[sv->n++];
		r->lo = lo;
		r->hi = hi;
		r->data = malloc(hi - lo);
		cr_assert_not_null(r->data);
		cr_assert_eq(pread(mem, r->data, hi - lo, (off_t)lo), (ssize_t)(hi - lo),
			     "read %llx-%llx of %d: %s", lo, hi, (int)in.pid, strerror(errno));
	}
	close(mem);
	free(text);
}

static void saved_free(struct saved *sv)
{
	for (int i = 0; i < sv->n; i++)
		free(sv->r[i].data);
	sv->n = 0;
}

/* Stop the waiting template, optionally write the saved memory back, load the registers, go. */
static void resume_in_place(const struct saved *sv, bool write_back)
{
	struct user_regs_struct regs;
	pid_t pid = in.pid;
	int status;

	assert_blocked_reading_the_channel(pid, ENV("0"));
	cr_assert_eq(ptrace(PTRACE_SEIZE, pid, NULL, NULL), 0, "SEIZE: %s", strerror(errno));
	cr_assert_eq(ptrace(PTRACE_INTERRUPT, pid, NULL, NULL), 0);
	cr_assert_eq(waitpid(pid, &status, __WALL), pid);
	cr_assert(WIFSTOPPED(status));
	if (write_back) {
		int mem = open_mem(pid);

		for (int i = 0; i < sv->n; i++) {
			const struct region *r = &sv->r[i];
			char perms[8], name[PATH_MAX];

			/* the region must still be there whole (a mapping of the same range) */
			cr_assert(mapping_of(pid, r->lo, perms, name, sizeof(name)),
				  "region %#" PRIx64 " is gone", r->lo);
			cr_assert(mapping_of(pid, r->hi - 1, perms, name, sizeof(name)));
			cr_assert_eq(pwrite(mem, r->data, r->hi - r->lo, (off_t)r->lo),
				     (ssize_t)(r->hi - r->lo), "write %#" PRIx64 ": %s", r->lo,
				     strerror(errno));
		}
		close(mem);
	}
	cr_assert_eq(ptrace(PTRACE_GETREGS, pid, NULL, &regs), 0);
	cr_assert_eq(regs.fs_base, sv->fs_base, "the thread pointer moved");
	regs.rbx = sv->regs.rbx;
	regs.rbp = sv->regs.rbp;
	regs.r12 = sv->regs.r12;
	regs.r13 = sv->regs.r13;
	regs.r14 = sv->regs.r14;
	regs.r15 = sv->regs.r15;
	regs.rsp = sv->regs.rsp;
	regs.rip = sv->regs.rip;
	regs.rax = 1;
	regs.orig_rax = (unsigned long long)-1;
	cr_assert_eq(ptrace(PTRACE_SETREGS, pid, NULL, &regs), 0, "SETREGS: %s", strerror(errno));
	cr_assert_eq(ptrace(PTRACE_DETACH, pid, NULL, NULL), 0);
}

static void expect_ready_restored(const char *sdk)
{
	char want[128];
	char *p = inst_expect(&in, EMBER_READY, 0);

	snprintf(want, sizeof(want), "{\"sdk\":\"%s\",\"pid\":%d,\"restored\":true}", sdk,
		 (int)in.pid);
	cr_expect_str_eq(p, want);
	free(p);
}

static char *invoke_text(uint64_t id, const char *body)
{
	cr_assert_eq(inst_invoke(&in, id, META, body, strlen(body)), 0);
	return inst_expect(&in, EMBER_RESULT, id);
}

/* Dump once; resume that dump twice (the second time with its memory written back); return
 * what `body` answers after each resume. */
static void restore_twice(const char *sdk, const char *body, char **first, char **second)
{
	struct snap s1, s2;
	struct saved *sv = calloc(1, sizeof(*sv));

	cr_assert_not_null(sv);
	void *head0 = NULL, *head1 = NULL;
	size_t len0 = 0, len1 = 0;

	snap_take(41, &s1);
	check_blocked();
	cr_assert_eq(syscall(SYS_get_robust_list, in.pid, &head0, &len0), 0);
	save_memory(&s1, sv);
	snap_free(&s1);
	resume_in_place(sv, false);
	expect_ready_restored(sdk);
	*first = invoke_text(42, body);
	/* the resume re-made it (to the same head: the same task here) */
	cr_assert_eq(syscall(SYS_get_robust_list, in.pid, &head1, &len1), 0);
	cr_expect_eq(head1, head0);
	cr_expect_eq(len1, len0);
	/* parked again, as the template: it is dumped again at the same depth */
	snap_take(43, &s2);
	check_blocked();
	cr_expect_eq(s2.st.regs.rsp, sv->regs.rsp, "not at the depth of the first dump");
	snap_free(&s2);
	resume_in_place(sv, true);
	expect_ready_restored(sdk);
	*second = invoke_text(44, body);
	saved_free(sv);
	free(sv);
}

Test(snap_sdk, c_template_resumed_twice_from_one_dump_is_re_seeded_and_stays_a_template)
{
	char *a, *b;

	start_c_template();
	restore_twice("c", "prng", &a, &b);
	cr_expect_eq(strlen(a), 32, "prng: %s", a);
	/* same memory, same generator state: only the re-seed (after_fork) tells them apart */
	cr_expect_str_neq(a, b, "both restores of one dump answered prng %s", a);
	free(a);
	free(b);
	check_serving("echo still a template");
}

Test(snap_sdk, python_template_resumed_twice_from_one_dump_is_re_seeded_and_stays_a_template)
{
	char *a, *b, want_hooks[64];

	start_py_template("reseed.handler");
	restore_twice("python", "", &a, &b);
	/* the hooks ran once in each resumed copy of the dump (in which they had run 0 times) */
	snprintf(want_hooks, sizeof(want_hooks), "\"hooks\":1,\"pid\":%d}", (int)in.pid);
	cr_expect(strstr(a, want_hooks) != NULL, "first: %s", a);
	cr_expect(strstr(b, want_hooks) != NULL, "second: %s", b);
	cr_expect_str_neq(a, b, "both restores of one dump answered %s", a);
	free(a);
	free(b);
	check_serving("");
}

/* After a resume ember_snap.c re-makes the task's links into glibc's thread descriptor from what
 * it recorded: clear_child_tid (PR_GET_TID_ADDRESS), which glibc points at its cached tid, and
 * the robust list head; without PR_GET_TID_ADDRESS it falls back to %fs:0x2d0. All of that is
 * where it thinks, in this glibc. */
Test(snap_sdk, glibc_keeps_the_thread_links_where_the_resume_remakes_them)
{
	char *tp = __builtin_thread_pointer();
	pid_t *tid_addr = NULL;
	void *head = NULL;
	size_t len = 0;

	cr_assert_eq(prctl(PR_GET_TID_ADDRESS, &tid_addr, 0, 0, 0), 0, "PR_GET_TID_ADDRESS: %s",
		     strerror(errno));
	cr_expect_eq((char *)tid_addr, tp + 0x2d0, "clear_child_tid %p, %%fs:0x2d0 is %p",
		     (void *)tid_addr, (void *)(tp + 0x2d0));
	cr_expect_eq(*tid_addr, gettid(), "glibc's tid %d, gettid() %d", (int)*tid_addr,
		     (int)gettid());
	cr_assert_eq(syscall(SYS_get_robust_list, 0, &head, &len), 0);
	cr_expect((char *)head > tp && (char *)head < tp + 4096, "robust list head %p, tp %p", head,
		  (void *)tp);
}

/* ------------------------------------------------------------------ the resume, in-process */

/* The restorer's last step, as snapshot/restore/ does it: load the captured registers, eax = 1,
 * jump to rip. */
void snap_test_resume(const struct ember_snap_regs *r) __attribute__((noreturn));
__asm__(".text\n\t"
	".globl snap_test_resume\n\t"
	".type snap_test_resume, @function\n"
	"snap_test_resume:\n\t"
	"movq 0(%rdi), %rbx\n\t"
	"movq 8(%rdi), %rbp\n\t"
	"movq 16(%rdi), %r12\n\t"
	"movq 24(%rdi), %r13\n\t"
	"movq 32(%rdi), %r14\n\t"
	"movq 40(%rdi), %r15\n\t"
	"ldmxcsr 64(%rdi)\n\t"
	"fldcw 68(%rdi)\n\t"
	"movq 48(%rdi), %rsp\n\t"
	"movl $1, %eax\n\t"
	"jmpq *56(%rdi)\n\t"
	".size snap_test_resume, .-snap_test_resume\n\t"
	".previous");

/* Calls ember_snap_capture with known values in every callee-saved register and records, in
 * seen[]: [0] its stack pointer at the call (= the caller's after the return), [1] the return
 * address, [2..7] rbx rbp r12-r15 as they are after each return, [8] the return value. On the
 * first return (0) it calls snap_test_hook(regs) from deeper in the stack, so its own frame is
 * still alive when the hook resumes it: the second return (1) goes on to its epilogue. */
int snap_test_probe(struct ember_snap_regs *regs, uint64_t *seen);
void snap_test_hook(struct ember_snap_regs *regs);
__asm__(".text\n\t"
	".globl snap_test_probe\n\t"
	".type snap_test_probe, @function\n"
	"snap_test_probe:\n\t"
	"pushq %rbx\n\t"
	"pushq %rbp\n\t"
	"pushq %r12\n\t"
	"pushq %r13\n\t"
	"pushq %r14\n\t"
	"pushq %r15\n\t"
	"subq $24, %rsp\n\t"            /* 16-byte aligned for the calls */
	"movq %rdi, 0(%rsp)\n\t"
	"movq %rsi, 8(%rsp)\n\t"
	"movq %rsp, 0(%rsi)\n\t"
	"leaq 1f(%rip), %rax\n\t"
	"movq %rax, 8(%rsi)\n\t"
	"movabsq $0x1111111111111111, %rbx\n\t"
	"movabsq $0x2222222222222222, %rbp\n\t"
	"movabsq $0x3333333333333333, %r12\n\t"
	"movabsq $0x4444444444444444, %r13\n\t"
	"movabsq $0x5555555555555555, %r14\n\t"
	"movabsq $0x6666666666666666, %r15\n\t"
	"call ember_snap_capture\n"
	"1:\n\t"
	"movq 8(%rsp), %rsi\n\t"
	"movq %rbx, 16(%rsi)\n\t"
	"movq %rbp, 24(%rsi)\n\t"
	"movq %r12, 32(%rsi)\n\t"
	"movq %r13, 40(%rsi)\n\t"
	"movq %r14, 48(%rsi)\n\t"
	"movq %r15, 56(%rsi)\n\t"
	"movl %eax, %eax\n\t"
	"movq %rax, 64(%rsi)\n\t"
	"testl %eax, %eax\n\t"
	"jnz 2f\n\t"
	"movq 0(%rsp), %rdi\n\t"
	"call snap_test_hook\n"
	"2:\n\t"
	"movq 8(%rsp), %rsi\n\t"
	"movq 64(%rsi), %rax\n\t"
	"addq $24, %rsp\n\t"
	"popq %r15\n\t"
	"popq %r14\n\t"
	"popq %r13\n\t"
	"popq %r12\n\t"
	"popq %rbp\n\t"
	"popq %rbx\n\t"
	"ret\n\t"
	".size snap_test_probe, .-snap_test_probe\n\t"
	".previous");

static volatile int hook_calls;
static struct ember_snap_regs at_hook;

void snap_test_hook(struct ember_snap_regs *regs)
{
	unsigned mxcsr = 0x1f80 | (3u << 13); /* round toward zero: the resume must undo it */

	hook_calls++;
	at_hook = *regs;
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
	snap_test_resume(regs);
}

Test(snap_sdk, capture_returns_twice_with_the_registers_it_stored)
{
	static struct ember_snap_regs regs;
	static uint64_t seen[9];
	const uint64_t want[6] = { 0x1111111111111111, 0x2222222222222222, 0x3333333333333333,
				   0x4444444444444444, 0x5555555555555555, 0x6666666666666666 };
	unsigned mxcsr_now = 0, mxcsr_before = 0;
	int r;

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr_before));
	r = snap_test_probe(&regs, seen);
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr_now));
	cr_assert_eq(hook_calls, 1, "the first return (0) did not reach the hook");
	cr_assert_eq(r, 1, "the resumed capture returned %d", r);
	/* what capture stored, as the layout of struct ember_snap_regs says */
	cr_expect_eq(at_hook.rbx, want[0]);
	cr_expect_eq(at_hook.rbp, want[1]);
	cr_expect_eq(at_hook.r12, want[2]);
	cr_expect_eq(at_hook.r13, want[3]);
	cr_expect_eq(at_hook.r14, want[4]);
	cr_expect_eq(at_hook.r15, want[5]);
	cr_expect_eq(at_hook.rsp, seen[0], "rsp %#" PRIx64 ", the caller's %#" PRIx64, at_hook.rsp,
		     seen[0]);
	cr_expect_eq(at_hook.rip, seen[1], "rip %#" PRIx64 ", the return address %#" PRIx64,
		     at_hook.rip, seen[1]);
	cr_expect_eq(at_hook.mxcsr, mxcsr_before);
	cr_expect_eq(at_hook.pad, 0);
	/* after the resume: the same registers (the hook ran with others), MXCSR restored */
	for (int i = 0; i < 6; i++)
		cr_expect_eq(seen[2 + i], want[i], "register %d after the resume: %#" PRIx64, i,
			     seen[2 + i]);
	cr_expect_eq(seen[8], 1);
	cr_expect_eq(mxcsr_now, mxcsr_before, "mxcsr %#x after the resume, %#x before", mxcsr_now,
		     mxcsr_before);
}
