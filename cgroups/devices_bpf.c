/* cgroups/devices_bpf.c — device rules on cgroup v2: v2 has no devices controller; the kernel
 * asks a BPF_PROG_TYPE_CGROUP_DEVICE program instead (kernel >= 4.15). This file compiles the
 * rule list into such a program with plain bpf(2) calls (no libbpf: the cgroups library depends
 * on nothing but common/) and attaches it to the cgroup, replacing what ember attached before.
 *
 * Semantics, as the v1 controller and runc's emulation: rules in order, the LAST rule that
 * matches decides; nothing matches → allowed (a v1 child starts with its parent's "a *:* rwm";
 * OCI lists start with a deny-all, so in practice nothing matching means denied). A rule
 * matches when its type is 'a' or equal, its major/minor is -1 or equal, and the requested
 * access is a subset of its access string. */
#include "cgroups/backend.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), \
						 .off = (o), .imm = (i) })
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define MOV_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define AND_IMM(d, i) INSN(BPF_ALU | BPF_AND | BPF_K, d, 0, 0, i)
#define RSH_IMM(d, i) INSN(BPF_ALU | BPF_RSH | BPF_K, d, 0, 0, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static int access_bits(const char *a)
{
	int bits = 0;

	for (; *a; a++)
		bits |= *a == 'r' ? BPF_DEVCG_ACC_READ : *a == 'w' ? BPF_DEVCG_ACC_WRITE
			: *a == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
	return bits;
}

/* the program: r2 = device type, r3 = requested access, r4 = major, r5 = minor; then one block
 * per rule, last rule first, each "if no match, jump past me; else return allow" */
static struct bpf_insn *compile(const struct em_cg_device_rule *rules, size_t n, size_t *len)
{
	struct bpf_insn *p = calloc(6 + n * 8 + 2, sizeof(*p));
	size_t i = 0;

	if (!p)
		return NULL;
	p[i++] = LDX_W(BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type));
	p[i++] = AND_IMM(BPF_REG_2, 0xffff);
	p[i++] = LDX_W(BPF_REG_3, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type));
	p[i++] = RSH_IMM(BPF_REG_3, 16);
	p[i++] = LDX_W(BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major));
	p[i++] = LDX_W(BPF_REG_5, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor));
	for (size_t r = n; r-- > 0;) {
		const struct em_cg_device_rule *d = &rules[r];
		int acc = access_bits(d->access[0] ? d->access : "rwm");
		bool all_acc = acc == (BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD);
		bool any = d->type == 'a';
		/* the block's tests, then 2 instructions (r0 = verdict; exit) */
		int ntests = (!any) + (!all_acc ? 3 : 0) + (!any && d->major >= 0) +
			     (!any && d->minor >= 0);
		int left = ntests + 2;   /* instructions from here to the end of the block */

#define TEST(insn) do { p[i++] = (insn); left--; } while (0)
		if (!any)
			TEST(JNE_IMM(BPF_REG_2, d->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR,
				     left - 1));
		if (!all_acc) {
			/* requested & ~allowed must be 0 */
			TEST(MOV_REG(BPF_REG_1, BPF_REG_3));
			TEST(AND_IMM(BPF_REG_1, ~acc & 7));
			TEST(JNE_IMM(BPF_REG_1, 0, left - 1));
		}
		if (!any && d->major >= 0)
			TEST(JNE_IMM(BPF_REG_4, (int32_t)d->major, left - 1));
		if (!any && d->minor >= 0)
			TEST(JNE_IMM(BPF_REG_5, (int32_t)d->minor, left - 1));
#undef TEST
		p[i++] = MOV_IMM(BPF_REG_0, d->allow ? 1 : 0);
		p[i++] = EXIT();
		/* a rule that matches everything decides alone: earlier rules (and the default)
		 * would be unreachable code, which the verifier rejects */
		if (!ntests) {
			*len = i;
			return p;
		}
	}
	p[i++] = MOV_IMM(BPF_REG_0, 1);
	p[i++] = EXIT();
	*len = i;
	return p;
}

/* ids of the device programs attached to the cgroup itself */
static int query(int cgfd, uint32_t *ids, uint32_t *n)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.query.target_fd = (uint32_t)cgfd;
	a.query.attach_type = BPF_CGROUP_DEVICE;
	a.query.prog_ids = (uint64_t)(uintptr_t)ids;
	a.query.prog_cnt = *n;
	if (bpf(BPF_PROG_QUERY, &a) < 0)
		return -errno;
	*n = a.query.prog_cnt;
	return 0;
}

int em_cg_bpf_devices(int cgfd, const struct em_cg_device_rule *rules, size_t n,
		      struct em_err *err)
{
	uint32_t old[64], n_old = EM_ARRAY_SIZE(old);
	char log[4096] = "";
	union bpf_attr a;
	size_t len;
	struct bpf_insn *prog;
	int fd, ret;

	for (size_t i = 0; i < n; i++)
		if (rules[i].type != 'a' && rules[i].type != 'b' && rules[i].type != 'c')
			return em_err_msg(err, EINVAL, "device rule %zu: type '%c' is not a, b or c", i,
					  rules[i].type);
	if (query(cgfd, old, &n_old) < 0)
		n_old = 0;
	prog = compile(rules, n, &len);
	if (!prog)
		return em_err_set(err, ENOMEM, "compile device rules");
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = (uint32_t)len;
	a.license = (uint64_t)(uintptr_t)"GPL";
	a.log_buf = (uint64_t)(uintptr_t)log;
	a.log_size = sizeof(log);
	a.log_level = 1;
	fd = bpf(BPF_PROG_LOAD, &a);
	free(prog);
	if (fd < 0) {
		ret = em_err_set(err, errno, "load the BPF device program (%zu rules)%s%.200s", n,
				 log[0] ? ": verifier: " : "", log);
		return ret;
	}
	/* attach the new program before detaching the old ones: no window without a filter */
	memset(&a, 0, sizeof(a));
	a.target_fd = (uint32_t)cgfd;
	a.attach_bpf_fd = (uint32_t)fd;
	a.attach_type = BPF_CGROUP_DEVICE;
	a.attach_flags = BPF_F_ALLOW_MULTI;
	if (bpf(BPF_PROG_ATTACH, &a) < 0) {
		ret = em_err_set(err, errno, "attach the BPF device program");
		close(fd);
		return ret;
	}
	close(fd);
	for (uint32_t i = 0; i < n_old; i++) {
		int ofd;

		memset(&a, 0, sizeof(a));
		a.prog_id = old[i];
		ofd = bpf(BPF_PROG_GET_FD_BY_ID, &a);
		if (ofd < 0)
			continue;
		memset(&a, 0, sizeof(a));
		a.target_fd = (uint32_t)cgfd;
		a.attach_bpf_fd = (uint32_t)ofd;
		a.attach_type = BPF_CGROUP_DEVICE;
		ret = bpf(BPF_PROG_DETACH, &a) < 0 ? -errno : 0;
		close(ofd);
		if (ret < 0)
			return em_err_set(err, -ret, "detach the previous BPF device program %u", old[i]);
	}
	return 0;
}
