/* runtime/seccomp.c — see seccomp.h. The parent half builds the filter with libseccomp and
 * exports it as BPF; the child half is one seccomp(2) call. */
#include "runtime/seccomp.h"

#include <ctype.h>
#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "runtime/oci.h"

#define FIELD "linux.seccomp"

static inline void seccomp_releasep(scmp_filter_ctx *ctx)
{
	if (*ctx)
		seccomp_release(*ctx);
}
#define cleanup_seccomp __attribute__((cleanup(seccomp_releasep)))

/* The spec's action names. ERRNO and TRACE carry a return code (errnoRet, EPERM by default, as
 * in runc). SCMP_ACT_KILL is the thread variant, as libseccomp and runc define it. */
static const struct {
	const char *name;
	uint32_t action;
	bool takes_errno;
} actions[] = {
	{ "SCMP_ACT_KILL", SCMP_ACT_KILL, false },
	{ "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false },
	{ "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false },
	{ "SCMP_ACT_TRAP", SCMP_ACT_TRAP, false },
	{ "SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0), true },
	{ "SCMP_ACT_TRACE", SCMP_ACT_TRACE(0), true },
	{ "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false },
	{ "SCMP_ACT_LOG", SCMP_ACT_LOG, false },
	{ "SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY, false },
};

static const enum scmp_compare ops[] = {
	[EM_SCMP_NE] = SCMP_CMP_NE,           [EM_SCMP_LT] = SCMP_CMP_LT,
	[EM_SCMP_LE] = SCMP_CMP_LE,           [EM_SCMP_EQ] = SCMP_CMP_EQ,
	[EM_SCMP_GE] = SCMP_CMP_GE,           [EM_SCMP_GT] = SCMP_CMP_GT,
	[EM_SCMP_MASKED_EQ] = SCMP_CMP_MASKED_EQ,
};

#define NOTIFY_UNSUPPORTED "seccomp notify is not supported by ember"
#define MAX_ARGS 6 /* system call arguments a filter can look at */

/* Resolve an action name plus optional errnoRet; field names the action for errors. */
static int resolve_action(const char *name, const struct em_opt_u64 *errno_ret,
			  const char *field, uint32_t *out, struct em_err *err)
{
	if (!name)
		return em_err_msg(err, EINVAL, "%s: missing action", field);
	for (size_t i = 0; i < EM_ARRAY_SIZE(actions); i++) {
		if (strcmp(name, actions[i].name))
			continue;
		if (actions[i].action == SCMP_ACT_NOTIFY)
			return em_err_msg(err, ENOTSUP, "%s: %s: " NOTIFY_UNSUPPORTED, field, name);
		*out = actions[i].action;
		if (actions[i].takes_errno) {
			uint64_t code = errno_ret->set ? errno_ret->v : EPERM;

			/* SECCOMP_RET_DATA is 16 bits; the kernel caps errno values at 4095 */
			if (code > 0xffff)
				return em_err_msg(err, EINVAL, "%s: return code %llu does not fit "
						  "in 16 bits", field, (unsigned long long)code);
			*out |= (uint32_t)code;
		}
		return 0;
	}
	return em_err_msg(err, EINVAL, "%s: unknown action \"%s\"", field, name);
}

/* "SCMP_ARCH_X86_64" -> libseccomp's token; libseccomp names every OCI architecture as the
 * lower-case suffix ("x86_64", "aarch64", "mipsel64n32", ...). */
static int resolve_arch(const char *name, size_t i, uint32_t *out, struct em_err *err)
{
	static const char prefix[] = "SCMP_ARCH_";
	char buf[32];
	size_t n;

	if (strncmp(name, prefix, sizeof(prefix) - 1) ||
	    (n = strlen(name + sizeof(prefix) - 1)) == 0 || n >= sizeof(buf))
		goto unknown;
	for (size_t k = 0; k <= n; k++)
		buf[k] = (char)tolower((unsigned char)name[sizeof(prefix) - 1 + k]);
	*out = seccomp_arch_resolve_name(buf);
	if (*out)
		return 0;
unknown:
	return em_err_msg(err, EINVAL, FIELD ".architectures[%zu]: unknown architecture \"%s\"", i,
			  name);
}

/* Filter flags go to seccomp(2) as we load the exported program ourselves, so they are not
 * libseccomp attributes here. */
static int resolve_flag(const char *name, size_t i, unsigned int *flags, struct em_err *err)
{
	if (!strcmp(name, "SECCOMP_FILTER_FLAG_TSYNC")) {
		/* the sandbox child is single-threaded when it loads: nothing to synchronize */
		return 0;
	}
	if (!strcmp(name, "SECCOMP_FILTER_FLAG_LOG")) {
		*flags |= SECCOMP_FILTER_FLAG_LOG;
		return 0;
	}
	if (!strcmp(name, "SECCOMP_FILTER_FLAG_SPEC_ALLOW")) {
		*flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
		return 0;
	}
	if (!strcmp(name, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")) {
		/* It only changes how a notify listener's requests wait, and the kernel rejects
		 * it (EINVAL) without SECCOMP_FILTER_FLAG_NEW_LISTENER. Without notify support
		 * there is no listener, so it has nothing to apply to. */
		return 0;
	}
	return em_err_msg(err, EINVAL, FIELD ".flags[%zu]: unknown flag \"%s\"", i, name);
}

/* Does this kernel accept these filter flags? seccomp(2) checks flags before reading the
 * program, so a NULL program gives EFAULT when the flags are fine (libseccomp probes the same
 * way). */
static int check_flags(unsigned int flags, struct em_err *err)
{
	if (!flags)
		return 0;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL) == 0 || errno == EFAULT)
		return 0;
	return em_err_set(err, errno, FIELD ".flags: this kernel does not accept filter flags %#x",
			  flags);
}

static int add_rule(scmp_filter_ctx ctx, const struct em_oci_seccomp_rule *r, size_t ri,
		    uint32_t action, struct em_log *log, struct em_err *err)
{
	struct scmp_arg_cmp conds[MAX_ARGS];
	unsigned int per_index[MAX_ARGS] = { 0 };
	bool same_index = false;

	if (r->n_args > MAX_ARGS)
		return em_err_msg(err, EINVAL, FIELD ".syscalls[%zu].args: %zu conditions, at most "
				  "%d fit", ri, r->n_args, MAX_ARGS);
	for (size_t a = 0; a < r->n_args; a++) {
		const struct em_oci_seccomp_arg *arg = &r->args[a];

		if (arg->index >= MAX_ARGS)
			return em_err_msg(err, EINVAL, FIELD ".syscalls[%zu].args[%zu].index: %u is "
					  "out of range (0-5)", ri, a, arg->index);
		if ((unsigned)arg->op >= EM_ARRAY_SIZE(ops))
			return em_err_msg(err, EINVAL, FIELD ".syscalls[%zu].args[%zu].op: unknown "
					  "operator %d", ri, a, (int)arg->op);
		/* MASKED_EQ: datum_a is the mask, datum_b the value compared after masking */
		conds[a] = (struct scmp_arg_cmp){ .arg = arg->index, .op = ops[arg->op],
						  .datum_a = arg->value, .datum_b = arg->value_two };
		if (++per_index[arg->index] > 1)
			same_index = true;
	}

	for (size_t n = 0; n < r->names.n; n++) {
		const char *name = r->names.v[n];
		int nr = seccomp_syscall_resolve_name(name);
		int rc = 0;

		if (nr == __NR_SCMP_ERROR) {
			/* a profile lists syscalls of every kernel and arch; runc skips these too */
			em_warn(log, FIELD ".syscalls[%zu].names[%zu]: unknown syscall \"%s\" on this "
				"architecture, ignored", ri, n, name);
			continue;
		}
		if (r->n_args == 0) {
			rc = seccomp_rule_add_array(ctx, action, nr, 0, NULL);
		} else if (same_index) {
			/* libseccomp cannot AND two conditions on one argument; runc's answer
			 * (kept for compatibility) is one rule per condition, i.e. OR */
			for (size_t a = 0; a < r->n_args && rc == 0; a++)
				rc = seccomp_rule_add_array(ctx, action, nr, 1, &conds[a]);
		} else {
			rc = seccomp_rule_add_array(ctx, action, nr, (unsigned)r->n_args, conds);
		}
		if (rc < 0)
			return em_err_set(err, -rc, FIELD ".syscalls[%zu].names[%zu]: add rule for %s",
					  ri, n, name);
	}
	return 0;
}

/* libseccomp 2.5 exports only to an fd: export into a memfd and read the program back. */
static int export_bpf(scmp_filter_ctx ctx, struct em_seccomp_prog *out, struct em_err *err)
{
	cleanup_close int fd = memfd_create("ember-seccomp", MFD_CLOEXEC);
	cleanup_free struct sock_filter *insns = NULL;
	struct stat st;
	size_t size, done = 0;
	int rc;

	if (fd < 0)
		return em_err_set(err, errno, "seccomp: create memfd for the BPF program");
	rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0)
		return em_err_set(err, -rc, "seccomp: export the BPF program");
	if (fstat(fd, &st) < 0)
		return em_err_set(err, errno, "seccomp: stat the exported BPF program");
	size = (size_t)st.st_size;
	if (size == 0 || size % sizeof(struct sock_filter))
		return em_err_msg(err, EIO, "seccomp: exported BPF program has %zu bytes, not a "
				  "whole number of instructions", size);
	if (size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return em_err_msg(err, E2BIG, FIELD ": the filter compiles to %zu BPF instructions, "
				  "the kernel takes at most %d", size / sizeof(struct sock_filter),
				  BPF_MAXINSNS);
	insns = malloc(size);
	if (!insns)
		return em_err_set(err, ENOMEM, "seccomp: allocate %zu bytes for the BPF program", size);
	while (done < size) {
		ssize_t n = pread(fd, (char *)insns + done, size - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return em_err_set(err, errno, "seccomp: read the exported BPF program");
		if (n == 0)
			return em_err_msg(err, EIO, "seccomp: exported BPF program shrank while read");
		done += (size_t)n;
	}
	out->insns = take_ptr(insns);
	out->len = (unsigned short)(size / sizeof(struct sock_filter));
	return 0;
}

int em_seccomp_compile(const struct em_oci_seccomp *s, struct em_log *log,
		       struct em_seccomp_prog *out, struct em_err *err)
{
	cleanup_seccomp scmp_filter_ctx ctx = NULL;
	uint32_t def;
	unsigned int flags = 0;
	int rc;

	*out = (struct em_seccomp_prog){ 0 };
	if (s->listener_path)
		return em_err_msg(err, ENOTSUP, FIELD ".listenerPath: " NOTIFY_UNSUPPORTED);
	rc = resolve_action(s->default_action, &s->default_errno_ret, FIELD ".defaultAction", &def,
			    err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < s->flags.n; i++) {
		rc = resolve_flag(s->flags.v[i], i, &flags, err);
		if (rc < 0)
			return rc;
	}
	rc = check_flags(flags, err);
	if (rc < 0)
		return rc;

	ctx = seccomp_init(def);
	if (!ctx)
		return em_err_msg(err, EINVAL, FIELD ".defaultAction: libseccomp rejects %s "
				  "(not supported by this kernel or library?)", s->default_action);
	/* The sandbox sets no_new_privs itself when the config asks for it; the exported program
	 * never carries it anyway, but keep libseccomp's idea of the filter honest. Raw return
	 * codes make libseccomp's errors real errnos. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
		return em_err_set(err, -rc, "seccomp: clear the no_new_privs attribute");
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);

	/* the native architecture is in a new context already; add the listed ones */
	for (size_t i = 0; i < s->architectures.n; i++) {
		uint32_t arch;

		rc = resolve_arch(s->architectures.v[i], i, &arch, err);
		if (rc < 0)
			return rc;
		rc = seccomp_arch_add(ctx, arch);
		if (rc < 0 && rc != -EEXIST)
			return em_err_set(err, -rc, FIELD ".architectures[%zu]: add %s", i,
					  s->architectures.v[i]);
	}

	for (size_t i = 0; i < s->n_syscalls; i++) {
		const struct em_oci_seccomp_rule *r = &s->syscalls[i];
		char field[64];
		uint32_t action;

		snprintf(field, sizeof(field), FIELD ".syscalls[%zu].action", i);
		rc = resolve_action(r->action, &r->errno_ret, field, &action, err);
		if (rc < 0)
			return rc;
		/* libseccomp refuses a rule that repeats the default action; it is a no-op */
		if (action == def)
			continue;
		rc = add_rule(ctx, r, i, action, log, err);
		if (rc < 0)
			return rc;
	}

	rc = export_bpf(ctx, out, err);
	if (rc < 0)
		return rc;
	out->flags = flags;
	return 0;
}

int em_seccomp_load(const struct em_seccomp_prog *p)
{
	struct sock_fprog fprog = { .len = p->len, .filter = p->insns };

	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->flags, &fprog) < 0)
		return -errno;
	return 0;
}

void em_seccomp_prog_free(struct em_seccomp_prog *p)
{
	free(p->insns);
	*p = (struct em_seccomp_prog){ 0 };
}
