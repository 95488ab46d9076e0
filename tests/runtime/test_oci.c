/* tests/runtime/test_oci.c — the config.json / process.json parser: a table of bad configs with
 * the exact error each must give, and good configs (runc's default, rootless, a maximal and a
 * minimal one) whose parsed fields are checked one by one.
 * JSON in this file is written with single quotes, turned into double quotes before parsing. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <jansson.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "runtime/oci.h"

static char *dq(const char *s)
{
	char *d = strdup(s);

	cr_assert_not_null(d);
	for (char *p = d; *p; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

static int parse_q(const char *q, struct em_oci_config *cfg, struct em_err *err)
{
	cleanup_free char *j = dq(q);

	return em_oci_parse(j, strlen(j), cfg, err);
}

static void parse_ok(const char *q, struct em_oci_config *cfg)
{
	struct em_err err = { 0 };
	int r = parse_q(q, cfg, &err);

	cr_assert_eq(r, 0, "parse failed: %s", err.msg);
}

static bool is_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

#define HDR "'ociVersion':'1.2.0','root':{'path':'rootfs'}"
#define PROC "'args':['sh'],'cwd':'/'"
#define CFG(...) "{" HDR __VA_ARGS__ "}"
#define WITH_PROC(...) CFG(",'process':{" PROC __VA_ARGS__ "}")
#define WITH_LINUX(...) CFG(",'linux':{" __VA_ARGS__ "}")
#define RLIM(t, s, h) "{'type':'" t "','soft':" #s ",'hard':" #h "}"
#define USERNS "'namespaces':[{'type':'user'}],'uidMappings':[{'containerID':0,'hostID':1000,'size':1}],'gidMappings':[{'containerID':0,'hostID':1000,'size':1}]"
#define SECCOMP(...) WITH_LINUX("'seccomp':{'defaultAction':'SCMP_ACT_ALLOW'" __VA_ARGS__ "}")
#define RES(...) WITH_LINUX("'resources':{" __VA_ARGS__ "}")

struct bad { const char *json, *msg; };

/* clang-format off */
static struct bad bad_cases[] = {
	/* document and top level */
	{ "[]", "(root): expected an object, got array" },
	{ "{'root':{'path':'r'}}", "ociVersion: required" },
	{ "{'ociVersion':1,'root':{'path':'r'}}", "ociVersion: expected a string, got number" },
	{ "{'ociVersion':'2.0.0','root':{'path':'r'}}", "ociVersion: unsupported version \"2.0.0\" (need 1.x)" },
	{ "{'ociVersion':'1.x','root':{'path':'r'}}", "ociVersion: unsupported version \"1.x\" (need 1.x)" },
	{ "{'ociVersion':'1.2.0'}", "root: required" },
	{ "{'ociVersion':'1.2.0','root':{'readonly':true}}", "root.path: required" },
	{ "{'ociVersion':'1.2.0','root':{'path':''}}", "root.path: must not be empty" },
	{ "{'ociVersion':'1.2.0','root':{'path':'r','readonly':'yes'}}", "root.readonly: expected a boolean, got string" },
	{ "{'ociVersion':'1.2.0','root':{'path':'r'},'a':1,'a':2}", "line 1, column 51: duplicate object key near '\"a\"'" },
	{ CFG(",'hostname':18446744073709551615"), "hostname: expected a string, got number" },
	{ CFG(",'annotations':{'a':1}"), "annotations.a: expected a string, got number" },
	{ CFG(",'annotations':{'org.example/x':true}"), "annotations[\"org.example/x\"]: expected a string, got boolean" },
	{ CFG(",'process':'sh'"), "process: expected an object, got string" },
	{ CFG(",'linux':[]"), "linux: expected an object, got array" },
	/* mounts */
	{ CFG(",'mounts':{}"), "mounts: expected an array, got object" },
	{ CFG(",'mounts':[{'destination':3}]"), "mounts[0].destination: expected a string, got number" },
	{ CFG(",'mounts':[{'destination':'/a'},{'type':'tmpfs'}]"), "mounts[1].destination: required" },
	{ CFG(",'mounts':[{'destination':'.'}]"), "mounts[0].destination: \".\" is the container root itself" },
	{ CFG(",'mounts':[{'destination':'../etc'}]"), "mounts[0].destination: \"../etc\" escapes the container root" },
	{ CFG(",'mounts':[{'destination':'/a/../../etc'}]"), "mounts[0].destination: \"/a/../../etc\" escapes the container root" },
	{ CFG(",'mounts':[{'destination':'/a','options':['ro',1]}]"), "mounts[0].options[1]: expected a string, got number" },
	{ CFG(",'mounts':[{'destination':'/a','uidMappings':[{'containerID':0,'hostID':0,'size':0}],'gidMappings':[]}]"), "mounts[0].uidMappings[0].size: must be at least 1" },
	/* process */
	{ CFG(",'process':{'cwd':'/'}"), "process.args: must be a non-empty array of strings" },
	{ CFG(",'process':{'cwd':'/','args':[]}"), "process.args: must be a non-empty array of strings" },
	{ CFG(",'process':{'cwd':'/','args':'sh'}"), "process.args: must be a non-empty array of strings" },
	{ CFG(",'process':{'cwd':'/','args':[1]}"), "process.args[0]: expected a string, got number" },
	{ CFG(",'process':{'args':['sh']}"), "process.cwd: required" },
	{ CFG(",'process':{'args':['sh'],'cwd':'tmp'}"), "process.cwd: must be an absolute path, got \"tmp\"" },
	{ CFG(",'process':{'args':['sh'],'cwd':'/\\u0000x'}"), "process.cwd: contains a NUL byte" },
	{ WITH_PROC(",'env':['A=1','FOO']"), "process.env[1]: must be NAME=value, got \"FOO\"" },
	{ WITH_PROC(",'env':['=x']"), "process.env[0]: must be NAME=value, got \"=x\"" },
	{ WITH_PROC(",'terminal':1"), "process.terminal: expected a boolean, got number" },
	{ WITH_PROC(",'user':{'uid':-1,'gid':0}"), "process.user.uid: must be between 0 and 4294967294, got -1" },
	{ WITH_PROC(",'user':{'uid':0,'gid':4294967296}"), "process.user.gid: must be between 0 and 4294967294, got 4294967296" },
	{ WITH_PROC(",'user':{'uid':0,'gid':0,'umask':512}"), "process.user.umask: must be between 0 and 511, got 512" },
	{ WITH_PROC(",'user':{'uid':0,'gid':0,'additionalGids':[1,'x']}"), "process.user.additionalGids[1]: expected an integer, got string" },
	{ WITH_PROC(",'capabilities':{'bounding':['CAP_KILL','CAP_CHOWN','CAP_SYS_ADMIN','CAP_FOO']}"), "process.capabilities.bounding[3]: unknown capability \"CAP_FOO\"" },
	{ WITH_PROC(",'capabilities':{'effective':'CAP_KILL'}"), "process.capabilities.effective: expected an array of strings, got string" },
	{ WITH_PROC(",'capabilities':{'ambient':['kill']}"), "process.capabilities.ambient[0]: unknown capability \"kill\"" },
	{ WITH_PROC(",'rlimits':[" RLIM("RLIMIT_FOO", 1, 1) "]"), "process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\"" },
	{ WITH_PROC(",'rlimits':[" RLIM("RLIMIT_NOFILE", 1, 1) "," RLIM("RLIMIT_NOFILE", 2, 2) "]"), "process.rlimits[1].type: duplicate rlimit \"RLIMIT_NOFILE\"" },
	{ WITH_PROC(",'rlimits':[" RLIM("RLIMIT_NOFILE", 2048, 1024) "]"), "process.rlimits[0]: soft limit 2048 is above hard limit 1024" },
	{ WITH_PROC(",'rlimits':[{'type':'RLIMIT_CORE','soft':1}]"), "process.rlimits[0].hard: required" },
	{ WITH_PROC(",'rlimits':[" RLIM("RLIMIT_CORE", -1, 1) "]"), "process.rlimits[0].soft: must not be negative, got -1" },
	{ WITH_PROC(",'oomScoreAdj':1001"), "process.oomScoreAdj: must be between -1000 and 1000, got 1001" },
	{ WITH_PROC(",'oomScoreAdj':-1001"), "process.oomScoreAdj: must be between -1000 and 1000, got -1001" },
	{ WITH_PROC(",'oomScoreAdj':1.5"), "process.oomScoreAdj: expected an integer, got 1.5" },
	{ WITH_PROC(",'oomScoreAdj':18446744073709551615"), "process.oomScoreAdj: must be between -1000 and 1000, got 18446744073709551615" },
	{ WITH_PROC(",'noNewPrivileges':'true'"), "process.noNewPrivileges: expected a boolean, got string" },
	{ WITH_PROC(",'ioPriority':{'class':'IOPRIO_CLASS_FAST'}"), "process.ioPriority.class: unknown I/O priority class \"IOPRIO_CLASS_FAST\"" },
	{ WITH_PROC(",'ioPriority':{'class':'IOPRIO_CLASS_BE','priority':8}"), "process.ioPriority.priority: must be between 0 and 7, got 8" },
	/* hooks */
	{ CFG(",'hooks':{'prestart':[{'path':'hook'}]}"), "hooks.prestart[0].path: must be an absolute path, got \"hook\"" },
	{ CFG(",'hooks':{'poststop':[{'path':'/h','timeout':0}]}"), "hooks.poststop[0].timeout: must be positive, got 0" },
	{ CFG(",'hooks':{'createRuntime':[{'path':'/h'},{'args':['x']}]}"), "hooks.createRuntime[1].path: required" },
	{ CFG(",'hooks':{'startContainer':{'path':'/h'}}"), "hooks.startContainer: expected an array, got object" },
	/* namespaces and id mappings */
	{ WITH_LINUX("'namespaces':[{'type':'pid'},{'type':'mount'},{'type':'foo'}]"), "linux.namespaces[2].type: unknown namespace \"foo\"" },
	{ WITH_LINUX("'namespaces':[{'type':'pid'},{'type':'pid','path':'/proc/1/ns/pid'}]"), "linux.namespaces[1].type: duplicate namespace \"pid\"" },
	{ WITH_LINUX("'namespaces':[{'type':'network','path':'ns/net'}]"), "linux.namespaces[0].path: must be an absolute path, got \"ns/net\"" },
	{ WITH_LINUX("'namespaces':[{'path':'/proc/1/ns/net'}]"), "linux.namespaces[0].type: required" },
	{ WITH_LINUX("'uidMappings':[{'containerID':0,'hostID':1000,'size':1}]"), "linux.uidMappings: needs a user namespace (linux.namespaces has no \"user\")" },
	{ WITH_LINUX("'namespaces':[{'type':'user'}],'gidMappings':[{'containerID':0,'hostID':1000,'size':1}]"), "linux.uidMappings: required with a new user namespace" },
	{ WITH_LINUX("'namespaces':[{'type':'user'}],'uidMappings':[{'containerID':0,'hostID':1000,'size':0}]"), "linux.uidMappings[0].size: must be at least 1" },
	{ WITH_LINUX("'namespaces':[{'type':'user'}],'uidMappings':[{'containerID':0,'hostID':1000,'size':10},{'containerID':5,'hostID':5000,'size':1}]"), "linux.uidMappings[1]: containerID range overlaps linux.uidMappings[0]" },
	{ WITH_LINUX("'namespaces':[{'type':'user'}],'uidMappings':[{'containerID':0,'hostID':1000,'size':1}],'gidMappings':[{'containerID':0,'hostID':-1,'size':1}]"), "linux.gidMappings[0].hostID: must be between 0 and 4294967295, got -1" },
	{ WITH_LINUX("'timeOffsets':{'monotonic':{'secs':10}}"), "linux.timeOffsets: needs a new time namespace" },
	{ WITH_LINUX("'namespaces':[{'type':'time'}],'timeOffsets':{'boottime':{'secs':1,'nanosecs':1000000000}}"), "linux.timeOffsets.boottime.nanosecs: must be between 0 and 999999999, got 1000000000" },
	/* devices */
	{ WITH_LINUX("'devices':[{'type':'x','path':'/dev/x','major':1,'minor':1}]"), "linux.devices[0].type: unknown device type \"x\" (want c, u, b or p)" },
	{ WITH_LINUX("'devices':[{'type':'c','path':'/dev/null','minor':3}]"), "linux.devices[0].major: required for a \"c\" device" },
	{ WITH_LINUX("'devices':[{'type':'p','path':'/dev/fifo'},{'type':'b','path':'/dev/sda','major':8}]"), "linux.devices[1].minor: required for a \"b\" device" },
	{ WITH_LINUX("'devices':[{'type':'c','path':'dev/null','major':1,'minor':3}]"), "linux.devices[0].path: must be an absolute path, got \"dev/null\"" },
	{ WITH_LINUX("'devices':[{'type':'c','path':'/dev/x','major':5000,'minor':3}]"), "linux.devices[0].major: must be between 0 and 4095, got 5000" },
	{ WITH_LINUX("'devices':[{'type':'c','path':'/dev/x','major':1,'minor':3,'uid':-5}]"), "linux.devices[0].uid: must be between 0 and 4294967294, got -5" },
	/* hostname, sysctl: runc's namespace rules */
	{ CFG(",'hostname':'box'"), "hostname: needs a uts namespace (linux.namespaces has no \"uts\")" },
	{ CFG(",'domainname':'example.org','linux':{'namespaces':[{'type':'pid'}]}"), "domainname: needs a uts namespace (linux.namespaces has no \"uts\")" },
	{ WITH_LINUX("'sysctl':{'net.ipv4.ip_forward':'1'}"), "linux.sysctl[\"net.ipv4.ip_forward\"]: needs a network namespace (linux.namespaces has no \"network\")" },
	{ WITH_LINUX("'namespaces':[{'type':'network'}],'sysctl':{'net.ipv4.ip_forward':'1','kernel.shmmax':'1'}"), "linux.sysctl[\"kernel.shmmax\"]: needs an ipc namespace (linux.namespaces has no \"ipc\")" },
	{ WITH_LINUX("'sysctl':{'fs.mqueue.msg_max':'10'}"), "linux.sysctl[\"fs.mqueue.msg_max\"]: needs an ipc namespace (linux.namespaces has no \"ipc\")" },
	{ WITH_LINUX("'sysctl':{'kernel.domainname':'x'}"), "linux.sysctl[\"kernel.domainname\"]: needs a uts namespace (linux.namespaces has no \"uts\")" },
	{ WITH_LINUX("'namespaces':[{'type':'uts'}],'sysctl':{'kernel.hostname':'x'}"), "linux.sysctl[\"kernel.hostname\"]: not allowed, use the hostname field" },
	{ WITH_LINUX("'namespaces':[{'type':'uts'}],'sysctl':{'vm.swappiness':'0'}"), "linux.sysctl[\"vm.swappiness\"]: not in a namespace of the container (it would change the host)" },
	{ WITH_LINUX("'namespaces':[{'type':'network'}],'sysctl':{'net.ipv4/../../../kernel/core_pattern':'|/x'}"), "linux.sysctl[\"net.ipv4/../../../kernel/core_pattern\"]: not a sysctl name" },
	{ WITH_LINUX("'namespaces':[{'type':'network'}],'sysctl':{'net/./x':'1'}"), "linux.sysctl[\"net/./x\"]: not a sysctl name" },
	{ WITH_LINUX("'sysctl':{'net/ipv4/ip_forward':'1'}"), "linux.sysctl[\"net/ipv4/ip_forward\"]: needs a network namespace (linux.namespaces has no \"network\")" },
	{ WITH_LINUX("'sysctl':{'net.core.somaxconn':1024}"), "linux.sysctl[\"net.core.somaxconn\"]: expected a string, got number" },
	/* seccomp */
	{ WITH_LINUX("'seccomp':{'defaultAction':'SCMP_ACT_NOPE'}"), "linux.seccomp.defaultAction: unknown seccomp action \"SCMP_ACT_NOPE\"" },
	{ WITH_LINUX("'seccomp':{'architectures':['SCMP_ARCH_X86_64']}"), "linux.seccomp.defaultAction: required" },
	{ SECCOMP(",'architectures':['SCMP_ARCH_X86_64','SCMP_ARCH_Z80']"), "linux.seccomp.architectures[1]: unknown seccomp architecture \"SCMP_ARCH_Z80\"" },
	{ SECCOMP(",'flags':['SECCOMP_FILTER_FLAG_FAST']"), "linux.seccomp.flags[0]: unknown seccomp flag \"SECCOMP_FILTER_FLAG_FAST\"" },
	{ SECCOMP(",'syscalls':[{'names':['read'],'action':'SCMP_ACT_BOOM'}]"), "linux.seccomp.syscalls[0].action: unknown seccomp action \"SCMP_ACT_BOOM\"" },
	{ SECCOMP(",'syscalls':[{'names':[],'action':'SCMP_ACT_ERRNO'}]"), "linux.seccomp.syscalls[0].names: must be a non-empty array of strings" },
	{ SECCOMP(",'syscalls':[{'names':['read'],'action':'SCMP_ACT_ERRNO','errnoRet':5000}]"), "linux.seccomp.syscalls[0].errnoRet: must be between 0 and 4095, got 5000" },
	{ SECCOMP(",'syscalls':[{'names':['kill'],'action':'SCMP_ACT_ERRNO','args':[{'index':6,'value':1,'op':'SCMP_CMP_EQ'}]}]"), "linux.seccomp.syscalls[0].args[0].index: must be between 0 and 5, got 6" },
	{ SECCOMP(",'syscalls':[{'names':['kill'],'action':'SCMP_ACT_ERRNO','args':[{'index':1,'value':1,'op':'SCMP_CMP_APPROX'}]}]"), "linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator \"SCMP_CMP_APPROX\"" },
	{ SECCOMP(",'syscalls':[{'names':['kill'],'action':'SCMP_ACT_ERRNO','args':[{'index':1,'op':'SCMP_CMP_EQ'}]}]"), "linux.seccomp.syscalls[0].args[0].value: required" },
	{ SECCOMP(",'syscalls':[{'names':['mount'],'action':'SCMP_ACT_NOTIFY'}]"), "linux.seccomp.listenerPath: required with SCMP_ACT_NOTIFY" },
	/* other linux fields */
	{ WITH_LINUX("'rootfsPropagation':'sideways'"), "linux.rootfsPropagation: unknown propagation \"sideways\"" },
	{ WITH_LINUX("'maskedPaths':['/proc/kcore','proc/keys']"), "linux.maskedPaths[1]: must be an absolute path, got \"proc/keys\"" },
	{ WITH_LINUX("'readonlyPaths':'/proc/sys'"), "linux.readonlyPaths: expected an array of strings, got string" },
	{ WITH_LINUX("'personality':{'domain':'BSD'}"), "linux.personality.domain: unknown personality \"BSD\"" },
	/* resources */
	{ RES("'memory':{'swappiness':101}"), "linux.resources.memory.swappiness: must be between 0 and 100, got 101" },
	{ RES("'memory':{'limit':-2}"), "linux.resources.memory.limit: must be between -1 and 9223372036854775807, got -2" },
	{ RES("'devices':[{'allow':false,'access':'rwx'}]"), "linux.resources.devices[0].access: must be letters of \"rwm\", got \"rwx\"" },
	{ RES("'devices':[{'access':'rwm'}]"), "linux.resources.devices[0].allow: required" },
	{ RES("'devices':[{'allow':true,'type':'p'}]"), "linux.resources.devices[0].type: unknown device type \"p\" (want a, c or b)" },
	{ RES("'cpu':{'cpus':'0-3;reboot'}"), "linux.resources.cpu.cpus: not a cpu/node list: \"0-3;reboot\"" },
	{ RES("'pids':{'limit':'10'}"), "linux.resources.pids.limit: expected an integer, got string" },
	{ RES("'unified':{'../../memory.max':'1'}"), "linux.resources.unified: not a cgroup file name: \"../../memory.max\"" },
	{ RES("'hugepageLimits':[{'pageSize':'2XB','limit':1}]"), "linux.resources.hugepageLimits[0].pageSize: not a page size like \"2MB\": \"2XB\"" },
	{ RES("'blockIO':{'weight':5}"), "linux.resources.blockIO.weight: must be between 10 and 1000, got 5" },
	{ RES("'blockIO':{'throttleReadBpsDevice':[{'major':8,'minor':0}]}"), "linux.resources.blockIO.throttleReadBpsDevice[0].rate: required" },
	{ RES("'network':{'classID':4294967296}"), "linux.resources.network.classID: must be between 0 and 4294967295, got 4294967296" },
};
/* clang-format on */

/* Criterion may run each parameter in a fresh process image (a different PIE base), so a
 * parameter must not hold pointers: pass the index into the table instead. */
struct bad_idx { size_t i; };

ParameterizedTestParameters(oci, bad_config)
{
	static struct bad_idx idx[EM_ARRAY_SIZE(bad_cases)];

	for (size_t i = 0; i < EM_ARRAY_SIZE(idx); i++)
		idx[i].i = i;
	return cr_make_param_array(struct bad_idx, idx, EM_ARRAY_SIZE(idx));
}

ParameterizedTest(struct bad_idx *bi, oci, bad_config)
{
	const struct bad *c = &bad_cases[bi->i];
	struct em_oci_config cfg;
	struct em_err err = { 0 };
	int r = parse_q(c->json, &cfg, &err);

	cr_assert_eq(r, -EINVAL, "%s: returned %d (%s)", c->json, r, err.msg);
	cr_expect_str_eq(err.msg, c->msg, "for %s", c->json);
	cr_expect(is_zero(&cfg, sizeof(cfg)), "config not zeroed after an error");
}

Test(oci, table_is_large_enough)
{
	cr_assert_geq(EM_ARRAY_SIZE(bad_cases), 40);
}

Test(oci, a_null_error_struct_is_allowed)
{
	struct em_oci_config cfg;
	struct em_oci_process p;

	cr_expect_eq(em_oci_parse("{", 1, &cfg, NULL), -EINVAL);
	cr_expect_eq(em_oci_parse("{}", 2, &cfg, NULL), -EINVAL);
	cr_expect_eq(em_oci_parse_process("[]", 2, &p, NULL), -EINVAL);
	em_oci_config_free(NULL);
	em_oci_process_free(NULL);
}

/* ---- good configs */

static bool has_cap(uint64_t mask, const char *name)
{
	int c = em_cap_from_name(name);

	cr_assert_geq(c, 0, "%s", name);
	return mask & (UINT64_C(1) << c);
}

static const struct em_oci_mount *find_mount(const struct em_oci_config *cfg, const char *dest)
{
	for (size_t i = 0; i < cfg->n_mounts; i++)
		if (strcmp(cfg->mounts[i].destination, dest) == 0)
			return &cfg->mounts[i];
	return NULL;
}

static bool strv_has(const struct em_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i], s) == 0)
			return true;
	return false;
}

Test(oci, default_spec_parses_as_runc_writes_it)
{
	cleanup_free char *json = em_oci_default_spec(false, 0, 0);
	struct em_oci_config cfg;
	struct em_err err = { 0 };
	uint64_t want;

	cr_assert_not_null(json);
	cr_assert_eq(em_oci_parse(json, strlen(json), &cfg, &err), 0, "%s", err.msg);
	cr_expect_str_eq(cfg.oci_version, "1.2.0");
	cr_expect_str_eq(cfg.root.path, "rootfs");
	cr_expect(cfg.root.readonly);
	cr_expect_str_eq(cfg.hostname, "ember");
	cr_assert(cfg.has_process);
	cr_expect(cfg.process.terminal);
	cr_assert_eq(cfg.process.args.n, 1);
	cr_expect_str_eq(cfg.process.args.v[0], "sh");
	cr_assert_eq(cfg.process.env.n, 2);
	cr_expect_str_eq(cfg.process.env.v[1], "TERM=xterm");
	cr_expect_str_eq(cfg.process.cwd, "/");
	want = (UINT64_C(1) << 29) | (UINT64_C(1) << 5) | (UINT64_C(1) << 10);
	cr_expect_eq(cfg.process.caps[EM_CAP_BOUNDING], want);
	cr_expect_eq(cfg.process.caps[EM_CAP_EFFECTIVE], want);
	cr_expect_eq(cfg.process.caps[EM_CAP_PERMITTED], want);
	cr_expect_not(cfg.process.caps_set[EM_CAP_INHERITABLE]);
	cr_expect_not(cfg.process.caps_set[EM_CAP_AMBIENT]);
	cr_assert_eq(cfg.process.n_rlimits, 1);
	cr_expect_eq(cfg.process.rlimits[0].resource, RLIMIT_NOFILE);
	cr_expect_eq(cfg.process.rlimits[0].soft, 1024);
	cr_expect_eq(cfg.process.rlimits[0].hard, 1024);
	cr_expect(cfg.process.no_new_privileges);
	cr_expect_eq(cfg.n_mounts, 7);
	cr_assert_not_null(find_mount(&cfg, "/sys"));
	cr_expect_str_eq(find_mount(&cfg, "/sys")->type, "sysfs");
	cr_assert_not_null(find_mount(&cfg, "/dev/pts"));
	cr_expect(strv_has(&find_mount(&cfg, "/dev/pts")->options, "gid=5"));
	cr_assert_not_null(find_mount(&cfg, "/sys/fs/cgroup"));
	cr_assert(cfg.has_linux);
	cr_expect_eq(cfg.linux_.n_namespaces, 6);
	for (enum em_ns_type t = 0; t < EM_NS_COUNT; t++) {
		bool want_ns = t != EM_NS_USER && t != EM_NS_TIME;

		cr_expect_eq(em_oci_find_ns(&cfg, t) != NULL, want_ns, "%s", em_ns_type_name(t));
	}
	cr_expect_eq(cfg.linux_.masked_paths.n, 11);
	cr_expect(strv_has(&cfg.linux_.masked_paths, "/proc/kcore"));
	cr_expect_eq(cfg.linux_.readonly_paths.n, 5);
	cr_expect(strv_has(&cfg.linux_.readonly_paths, "/proc/sysrq-trigger"));
	cr_expect(cfg.linux_.resources.present);
	cr_assert_eq(cfg.linux_.resources.n_devices, 1);
	cr_expect_not(cfg.linux_.resources.devices[0].allow);
	cr_expect_eq(cfg.linux_.resources.devices[0].type, 'a');
	cr_expect_str_eq(cfg.linux_.resources.devices[0].access, "rwm");
	cr_expect_eq(cfg.linux_.n_uid_mappings, 0);
	em_oci_config_free(&cfg);
}

Test(oci, default_spec_is_pretty_printed_with_two_spaces)
{
	cleanup_free char *json = em_oci_default_spec(false, 0, 0);

	cr_assert_not_null(json);
	cr_expect(strncmp(json, "{\n  \"ociVersion\": \"1.2.0\",\n  \"process\": {\n    \"terminal\"",
			  45) == 0,
		  "%.80s", json);
}

Test(oci, rootless_spec_maps_the_caller_and_drops_what_needs_root)
{
	cleanup_free char *json = em_oci_default_spec(true, 1000, 1001);
	struct em_oci_config cfg;
	struct em_err err = { 0 };
	const struct em_oci_mount *sys;

	cr_assert_not_null(json);
	cr_assert_eq(em_oci_parse(json, strlen(json), &cfg, &err), 0, "%s", err.msg);
	cr_expect_not_null(em_oci_find_ns(&cfg, EM_NS_USER));
	cr_expect_null(em_oci_find_ns(&cfg, EM_NS_NET));
	cr_expect_not_null(em_oci_find_ns(&cfg, EM_NS_CGROUP));
	cr_assert_eq(cfg.linux_.n_uid_mappings, 1);
	cr_expect_eq(cfg.linux_.uid_mappings[0].container_id, 0);
	cr_expect_eq(cfg.linux_.uid_mappings[0].host_id, 1000);
	cr_expect_eq(cfg.linux_.uid_mappings[0].size, 1);
	cr_assert_eq(cfg.linux_.n_gid_mappings, 1);
	cr_expect_eq(cfg.linux_.gid_mappings[0].host_id, 1001);
	sys = find_mount(&cfg, "/sys");
	cr_assert_not_null(sys);
	cr_expect_str_eq(sys->source, "/sys");
	cr_expect(strv_has(&sys->options, "rbind"));
	cr_expect(strv_has(&sys->options, "ro"));
	cr_assert_not_null(find_mount(&cfg, "/dev/pts"));
	cr_expect_not(strv_has(&find_mount(&cfg, "/dev/pts")->options, "gid=5"));
	cr_expect(strv_has(&find_mount(&cfg, "/dev/pts")->options, "newinstance"));
	cr_expect_not(cfg.linux_.resources.present);
	em_oci_config_free(&cfg);
}

Test(oci, minimal_config)
{
	struct em_oci_config cfg;

	parse_ok("{'ociVersion':'1.0.0','root':{'path':'/b/rootfs'}}", &cfg);
	cr_expect_str_eq(cfg.oci_version, "1.0.0");
	cr_expect_str_eq(cfg.root.path, "/b/rootfs");
	cr_expect_not(cfg.root.readonly);
	cr_expect_not(cfg.has_process);
	cr_expect_not(cfg.has_linux);
	cr_expect_null(cfg.hostname);
	cr_expect_eq(cfg.n_mounts, 0);
	cr_expect_null(cfg.linux_.seccomp);
	cr_expect_null(em_oci_find_ns(&cfg, EM_NS_PID));
	em_oci_config_free(&cfg);
	em_oci_config_free(&cfg); /* freeing twice is harmless: free zeroes */
}

/* clang-format off */
static const char maximal[] = "{"
	"'ociVersion':'1.2.0',"
	"'root':{'path':'rootfs','readonly':true},"
	"'mounts':["
	  "{'destination':'/proc','type':'proc','source':'proc'},"
	  "{'destination':'data/./x/../y','type':'none','source':'/srv/data','options':['rbind','ro'],"
	   "'uidMappings':[{'containerID':0,'hostID':100000,'size':65536}],"
	   "'gidMappings':[{'containerID':0,'hostID':100000,'size':65536}]}],"
	"'process':{'terminal':true,'consoleSize':{'height':24,'width':80},"
	  "'user':{'uid':1000,'gid':1001,'umask':18,'additionalGids':[5,6,7],'username':'u'},"
	  "'args':['/bin/app','--flag'],'env':['PATH=/bin','EMPTY='],'cwd':'/work',"
	  "'capabilities':{'bounding':['CAP_CHOWN','CAP_CHECKPOINT_RESTORE'],'effective':['CAP_KILL'],"
	   "'inheritable':[],'permitted':['CAP_KILL','CAP_BPF'],'ambient':['CAP_NET_RAW']},"
	  "'rlimits':[{'type':'RLIMIT_NOFILE','soft':1024,'hard':4096},"
	   "{'type':'RLIMIT_CORE','soft':0,'hard':18446744073709551615}],"
	  "'noNewPrivileges':true,'oomScoreAdj':-500,'apparmorProfile':'p','selinuxLabel':'l',"
	  "'ioPriority':{'class':'IOPRIO_CLASS_IDLE','priority':7}},"
	"'hostname':'fn','domainname':'example.org',"
	"'hooks':{'prestart':[{'path':'/usr/bin/hook','args':['hook','pre'],'env':['A=b'],'timeout':5}],"
	  "'createRuntime':[{'path':'/a'},{'path':'/b'}],'createContainer':[{'path':'/c'}],"
	  "'startContainer':[{'path':'/d'}],'poststart':[{'path':'/e'}],'poststop':[{'path':'/f','timeout':1}]},"
	"'annotations':{'org.example/a':'1','b':'two'},"
	"'linux':{"
	  "'namespaces':[{'type':'pid'},{'type':'network','path':'/var/run/netns/n1'},{'type':'mount'},"
	   "{'type':'ipc'},{'type':'uts'},{'type':'user'},{'type':'cgroup'},{'type':'time','path':''}],"
	  "'uidMappings':[{'containerID':0,'hostID':100000,'size':65536}],"
	  "'gidMappings':[{'containerID':0,'hostID':200000,'size':1},{'containerID':1,'hostID':300000,'size':10}],"
	  "'timeOffsets':{'monotonic':{'secs':-3600,'nanosecs':5},'boottime':{'secs':86400}},"
	  "'devices':[{'type':'c','path':'/dev/fuse','major':10,'minor':229,'fileMode':438,'uid':0,'gid':0},"
	   "{'type':'p','path':'/dev/fifo'},{'type':'b','path':'/dev/sda','major':8,'minor':0,'fileMode':25008}],"
	  "'cgroupsPath':'/ember/fn1',"
	  "'resources':{"
	   "'devices':[{'allow':false,'access':'rwm'},{'allow':true,'type':'c','major':10,'minor':229,'access':'rw'},"
	    "{'allow':true,'type':'b','major':8,'minor':-1}],"
	   "'memory':{'limit':134217728,'reservation':67108864,'swap':268435456,'kernel':-1,'kernelTCP':1048576,"
	    "'swappiness':0,'disableOOMKiller':false,'useHierarchy':true,'checkBeforeUpdate':true},"
	   "'cpu':{'shares':1024,'quota':50000,'burst':1000,'period':100000,'realtimeRuntime':950000,"
	    "'realtimePeriod':1000000,'cpus':'0-3,8','mems':'0','idle':1},"
	   "'pids':{'limit':64},"
	   "'blockIO':{'weight':500,'leafWeight':300,'weightDevice':[{'major':8,'minor':0,'weight':600,'leafWeight':0}],"
	    "'throttleReadBpsDevice':[{'major':8,'minor':0,'rate':1048576}],"
	    "'throttleWriteBpsDevice':[{'major':8,'minor':0,'rate':2097152}],"
	    "'throttleReadIOPSDevice':[{'major':8,'minor':0,'rate':100}],"
	    "'throttleWriteIOPSDevice':[{'major':8,'minor':16,'rate':200}]},"
	   "'hugepageLimits':[{'pageSize':'2MB','limit':209715200},{'pageSize':'1GB','limit':0}],"
	   "'network':{'classID':1048577,'priorities':[{'name':'eth0','priority':500}]},"
	   "'rdma':{'mlx5_1':{'hcaHandles':3}},"
	   "'unified':{'memory.high':'100000000','io.max':'8:0 rbps=1048576'}},"
	  "'sysctl':{'net.ipv4.ip_forward':'1','kernel.shmmax':'4096','fs.mqueue.msg_max':'10','kernel.domainname':'d'},"
	  "'seccomp':{'defaultAction':'SCMP_ACT_ERRNO','defaultErrnoRet':1,"
	   "'architectures':['SCMP_ARCH_X86_64','SCMP_ARCH_X86','SCMP_ARCH_X32'],"
	   "'flags':['SECCOMP_FILTER_FLAG_LOG','SECCOMP_FILTER_FLAG_SPEC_ALLOW'],"
	   "'listenerPath':'/run/seccomp.sock','listenerMetadata':'meta',"
	   "'syscalls':[{'names':['read','write'],'action':'SCMP_ACT_ALLOW'},"
	    "{'names':['personality'],'action':'SCMP_ACT_ALLOW','args':[{'index':0,'value':0,'op':'SCMP_CMP_EQ'},"
	     "{'index':5,'value':18446744073709551615,'valueTwo':4294967295,'op':'SCMP_CMP_MASKED_EQ'}]},"
	    "{'names':['mkdir'],'action':'SCMP_ACT_ERRNO','errnoRet':38},"
	    "{'names':['mount'],'action':'SCMP_ACT_NOTIFY'}]},"
	  "'rootfsPropagation':'rslave',"
	  "'maskedPaths':['/proc/kcore'],'readonlyPaths':['/proc/sys','/proc/bus'],"
	  "'mountLabel':'system_u:object_r:container_file_t:s0',"
	  "'personality':{'domain':'LINUX32','flags':[]},"
	  "'intelRdt':{'closID':'x'}}"
	"}";
/* clang-format on */

Test(oci, maximal_config_fills_every_field)
{
	struct em_oci_config cfg;
	const struct em_oci_process *p;
	const struct em_oci_linux *lx;
	const struct em_oci_resources *res;
	const struct em_oci_seccomp *sc;

	parse_ok(maximal, &cfg);
	p = &cfg.process;
	lx = &cfg.linux_;
	res = &lx->resources;

	cr_assert_eq(cfg.n_mounts, 2);
	cr_expect_str_eq(cfg.mounts[1].destination, "/data/y");
	cr_expect_str_eq(cfg.mounts[1].source, "/srv/data");
	cr_expect_str_eq(cfg.mounts[1].type, "none");
	cr_expect_eq(cfg.mounts[1].options.n, 2);
	cr_expect_null(cfg.mounts[1].options.v[2]);
	cr_assert_eq(cfg.mounts[1].n_uid_mappings, 1);
	cr_expect_eq(cfg.mounts[1].uid_mappings[0].host_id, 100000);
	cr_expect_eq(cfg.mounts[1].gid_mappings[0].size, 65536);
	cr_expect_null(cfg.mounts[0].options.v);

	cr_assert(cfg.has_process);
	cr_expect(p->console_size.set);
	cr_expect_eq(p->console_size.height, 24);
	cr_expect_eq(p->console_size.width, 80);
	cr_expect_eq(p->user.uid, 1000);
	cr_expect_eq(p->user.gid, 1001);
	cr_expect(p->user.umask.set);
	cr_expect_eq(p->user.umask.v, 022);
	cr_assert_eq(p->user.n_additional_gids, 3);
	cr_expect_eq(p->user.additional_gids[2], 7);
	cr_expect_str_eq(p->user.username, "u");
	cr_expect_str_eq(p->args.v[1], "--flag");
	cr_expect_str_eq(p->env.v[1], "EMPTY=");
	cr_expect_str_eq(p->cwd, "/work");
	cr_expect(has_cap(p->caps[EM_CAP_BOUNDING], "CAP_CHECKPOINT_RESTORE"));
	cr_expect(has_cap(p->caps[EM_CAP_BOUNDING], "CAP_CHOWN"));
	cr_expect_eq(p->caps[EM_CAP_BOUNDING], (UINT64_C(1) << 40) | 1);
	cr_expect_eq(p->caps[EM_CAP_EFFECTIVE], UINT64_C(1) << 5);
	cr_expect(p->caps_set[EM_CAP_INHERITABLE]);
	cr_expect_eq(p->caps[EM_CAP_INHERITABLE], 0);
	cr_expect_eq(p->caps[EM_CAP_PERMITTED], (UINT64_C(1) << 5) | (UINT64_C(1) << 39));
	cr_expect_eq(p->caps[EM_CAP_AMBIENT], UINT64_C(1) << 13);
	cr_assert_eq(p->n_rlimits, 2);
	cr_expect_eq(p->rlimits[0].hard, 4096);
	cr_expect_eq(p->rlimits[1].resource, RLIMIT_CORE);
	cr_expect_str_eq(p->rlimits[1].type, "RLIMIT_CORE");
	cr_expect_eq(p->rlimits[1].hard, UINT64_MAX, "RLIM_INFINITY as Go writes it");
	cr_expect(p->no_new_privileges);
	cr_expect(p->oom_score_adj.set);
	cr_expect_eq(p->oom_score_adj.v, -500);
	cr_expect_str_eq(p->apparmor_profile, "p");
	cr_expect_str_eq(p->selinux_label, "l");
	cr_expect(p->io_priority.set);
	cr_expect_eq(p->io_priority.class_, 3);
	cr_expect_eq(p->io_priority.priority, 7);

	cr_expect_str_eq(cfg.hostname, "fn");
	cr_expect_str_eq(cfg.domainname, "example.org");
	for (int k = 0; k < EM_HOOK_NKINDS; k++)
		cr_expect_geq(cfg.hooks.n[k], 1, "%s", em_hook_kind_name(k));
	cr_expect_eq(cfg.hooks.n[EM_HOOK_CREATE_RUNTIME], 2);
	cr_expect_str_eq(cfg.hooks.v[EM_HOOK_CREATE_RUNTIME][1].path, "/b");
	cr_expect_str_eq(cfg.hooks.v[EM_HOOK_PRESTART][0].args.v[1], "pre");
	cr_expect_str_eq(cfg.hooks.v[EM_HOOK_PRESTART][0].env.v[0], "A=b");
	cr_expect_eq(cfg.hooks.v[EM_HOOK_PRESTART][0].timeout.v, 5);
	cr_expect_not(cfg.hooks.v[EM_HOOK_POSTSTART][0].timeout.set);
	cr_assert_eq(cfg.annotations.n, 2);
	cr_expect_str_eq(cfg.annotations.v[0].key, "org.example/a");
	cr_expect_str_eq(cfg.annotations.v[1].value, "two");

	cr_assert_eq(lx->n_namespaces, 8);
	cr_expect_str_eq(em_oci_find_ns(&cfg, EM_NS_NET)->path, "/var/run/netns/n1");
	cr_expect_null(em_oci_find_ns(&cfg, EM_NS_TIME)->path, "\"\" path means a new one");
	cr_expect_null(em_oci_find_ns(&cfg, EM_NS_PID)->path);
	cr_expect_eq(lx->n_gid_mappings, 2);
	cr_expect_eq(lx->gid_mappings[1].host_id, 300000);
	cr_expect(lx->time_monotonic.set);
	cr_expect_eq(lx->time_monotonic.secs, -3600);
	cr_expect_eq(lx->time_monotonic.nanosecs, 5);
	cr_expect_eq(lx->time_boottime.secs, 86400);
	cr_assert_eq(lx->n_devices, 3);
	cr_expect_eq(lx->devices[0].type, 'c');
	cr_expect_eq(lx->devices[0].major, 10);
	cr_expect_eq(lx->devices[0].minor, 229);
	cr_expect_eq(lx->devices[0].file_mode.v, 0666);
	cr_expect(lx->devices[0].uid.set);
	cr_expect_eq(lx->devices[1].major, -1);
	cr_expect_not(lx->devices[1].file_mode.set);
	cr_expect_eq(lx->devices[2].file_mode.v, 0660, "S_IFBLK bits dropped");
	cr_expect_str_eq(lx->cgroups_path, "/ember/fn1");

	cr_expect(res->present);
	cr_assert_eq(res->n_devices, 3);
	cr_expect_eq(res->devices[1].type, 'c');
	cr_expect_str_eq(res->devices[1].access, "rw");
	cr_expect_eq(res->devices[2].minor, -1);
	cr_expect_eq(res->devices[0].major, -1);
	cr_expect_eq(res->memory.limit.v, 134217728);
	cr_expect_eq(res->memory.kernel.v, -1);
	cr_expect(res->memory.swappiness.set);
	cr_expect_eq(res->memory.swappiness.v, 0);
	cr_expect(res->memory.disable_oom_killer.set);
	cr_expect_not(res->memory.disable_oom_killer.v);
	cr_expect(res->memory.check_before_update.v);
	cr_expect_eq(res->cpu.shares.v, 1024);
	cr_expect_eq(res->cpu.quota.v, 50000);
	cr_expect_eq(res->cpu.period.v, 100000);
	cr_expect_eq(res->cpu.burst.v, 1000);
	cr_expect_eq(res->cpu.realtime_runtime.v, 950000);
	cr_expect_eq(res->cpu.realtime_period.v, 1000000);
	cr_expect_eq(res->cpu.idle.v, 1);
	cr_expect_str_eq(res->cpu.cpus, "0-3,8");
	cr_expect_str_eq(res->cpu.mems, "0");
	cr_expect_eq(res->pids.limit.v, 64);
	cr_expect_eq(res->block_io.weight.v, 500);
	cr_expect_eq(res->block_io.leaf_weight.v, 300);
	cr_assert_eq(res->block_io.n_weight_device, 1);
	cr_expect_eq(res->block_io.weight_device[0].weight.v, 600);
	cr_expect(res->block_io.weight_device[0].leaf_weight.set);
	cr_expect_eq(res->block_io.throttle_read_bps[0].rate, 1048576);
	cr_expect_eq(res->block_io.throttle_write_bps[0].rate, 2097152);
	cr_expect_eq(res->block_io.throttle_read_iops[0].rate, 100);
	cr_expect_eq(res->block_io.throttle_write_iops[0].minor, 16);
	cr_assert_eq(res->n_hugepage_limits, 2);
	cr_expect_str_eq(res->hugepage_limits[1].page_size, "1GB");
	cr_expect_eq(res->hugepage_limits[0].limit, 209715200);
	cr_expect_eq(res->network.class_id.v, 1048577);
	cr_expect_str_eq(res->network.priorities[0].name, "eth0");
	cr_expect_eq(res->network.priorities[0].priority, 500);
	cr_assert_eq(res->unified.n, 2);
	cr_expect_str_eq(res->unified.v[1].key, "io.max");
	cr_expect_str_eq(res->unified.v[1].value, "8:0 rbps=1048576");

	cr_assert_eq(lx->sysctl.n, 4);
	cr_expect_str_eq(lx->sysctl.v[0].key, "net.ipv4.ip_forward");
	cr_expect_str_eq(lx->sysctl.v[0].value, "1");

	sc = lx->seccomp;
	cr_assert_not_null(sc);
	cr_expect_str_eq(sc->default_action, "SCMP_ACT_ERRNO");
	cr_expect_eq(sc->default_errno_ret.v, 1);
	cr_expect_eq(sc->architectures.n, 3);
	cr_expect_str_eq(sc->flags.v[1], "SECCOMP_FILTER_FLAG_SPEC_ALLOW");
	cr_expect_str_eq(sc->listener_path, "/run/seccomp.sock");
	cr_expect_str_eq(sc->listener_metadata, "meta");
	cr_assert_eq(sc->n_syscalls, 4);
	cr_expect_str_eq(sc->syscalls[0].names.v[1], "write");
	cr_assert_eq(sc->syscalls[1].n_args, 2);
	cr_expect_eq(sc->syscalls[1].args[0].op, EM_SCMP_EQ);
	cr_expect_eq(sc->syscalls[1].args[1].index, 5);
	cr_expect_eq(sc->syscalls[1].args[1].value, UINT64_MAX);
	cr_expect_eq(sc->syscalls[1].args[1].value_two, 4294967295u);
	cr_expect_eq(sc->syscalls[1].args[1].op, EM_SCMP_MASKED_EQ);
	cr_expect(sc->syscalls[2].errno_ret.set);
	cr_expect_eq(sc->syscalls[2].errno_ret.v, 38);
	cr_expect_not(sc->syscalls[0].errno_ret.set);

	cr_expect_str_eq(lx->rootfs_propagation, "rslave");
	cr_expect_str_eq(lx->masked_paths.v[0], "/proc/kcore");
	cr_expect_str_eq(lx->readonly_paths.v[1], "/proc/bus");
	cr_expect_str_eq(lx->mount_label, "system_u:object_r:container_file_t:s0");
	cr_expect(lx->personality.set);
	cr_expect_str_eq(lx->personality.domain, "LINUX32");
	cr_expect_eq(lx->personality.flags.n, 0);
	em_oci_config_free(&cfg);
}

Test(oci, unknown_fields_are_ignored)
{
	struct em_oci_config cfg;

	parse_ok("{'ociVersion':'1.1.0','root':{'path':'r','future':1},'vm':{'hypervisor':{}},"
		 "'windows':{'layerFolders':['x']},'solaris':{},"
		 "'process':{'args':['sh'],'cwd':'/','scheduler':{'policy':'SCHED_OTHER'},"
		 "'execCPUAffinity':{'initial':'0'},'newThing':[1,2]},"
		 "'linux':{'namespaces':[{'type':'pid','extra':true}],'newLinuxField':{},"
		 "'resources':{'memory':{'limit':1,'someday':2}}},"
		 "'mounts':[{'destination':'/x','type':'tmpfs','unknown':null}]}",
		 &cfg);
	cr_expect_str_eq(cfg.process.args.v[0], "sh");
	cr_expect_eq(cfg.linux_.n_namespaces, 1);
	cr_expect_eq(cfg.linux_.resources.memory.limit.v, 1);
	cr_expect_str_eq(cfg.mounts[0].destination, "/x");
	em_oci_config_free(&cfg);
}

Test(oci, null_means_absent)
{
	struct em_oci_config cfg;

	parse_ok("{'ociVersion':'1.0.2-dev','root':{'path':'r'},'hostname':null,'mounts':null,"
		 "'linux':{'seccomp':null,'namespaces':[{'type':'uts','path':null}]}}",
		 &cfg);
	cr_expect_null(cfg.hostname);
	cr_expect_null(cfg.linux_.seccomp);
	cr_expect_null(cfg.linux_.namespaces[0].path);
	em_oci_config_free(&cfg);
}

Test(oci, relative_mount_destinations_become_absolute)
{
	struct em_oci_config cfg;

	parse_ok(CFG(",'mounts':[{'destination':'tmp'},{'destination':'/a//b/./c/'},"
		     "{'destination':'/a/b/../c'}]"),
		 &cfg);
	cr_expect_str_eq(cfg.mounts[0].destination, "/tmp");
	cr_expect_str_eq(cfg.mounts[1].destination, "/a/b/c");
	cr_expect_str_eq(cfg.mounts[2].destination, "/a/c");
	em_oci_config_free(&cfg);
}

Test(oci, sysctls_allowed_when_their_namespace_is_there)
{
	struct em_oci_config cfg;

	/* joining an existing network namespace by path counts (runc allows it too) */
	parse_ok(WITH_LINUX("'namespaces':[{'type':'network','path':'/run/netns/x'},{'type':'ipc'},"
			    "{'type':'uts'}],'sysctl':{'net.core.somaxconn':'1024',"
			    "'kernel.msgmax':'1','kernel.sem':'1 2 3 4','kernel.domainname':'d'}"),
		 &cfg);
	cr_expect_eq(cfg.linux_.sysctl.n, 4);
	cr_expect_str_eq(cfg.linux_.sysctl.v[2].value, "1 2 3 4");
	em_oci_config_free(&cfg);
}

Test(oci, sysctl_keys_in_slash_form)
{
	struct em_oci_config cfg;

	parse_ok(WITH_LINUX("'namespaces':[{'type':'network'},{'type':'ipc'}],"
			    "'sysctl':{'net/ipv4/conf/eth0.100/forwarding':'1','kernel/shmmni':'8'}"),
		 &cfg);
	cr_expect_str_eq(cfg.linux_.sysctl.v[0].key, "net/ipv4/conf/eth0.100/forwarding");
	em_oci_config_free(&cfg);
}

Test(oci, user_namespace_joined_by_path_needs_no_mappings)
{
	struct em_oci_config cfg;

	parse_ok(WITH_LINUX("'namespaces':[{'type':'user','path':'/proc/1/ns/user'}]"), &cfg);
	cr_expect_eq(cfg.linux_.n_uid_mappings, 0);
	em_oci_config_free(&cfg);
	parse_ok(WITH_LINUX(USERNS), &cfg);
	cr_expect_eq(cfg.linux_.uid_mappings[0].host_id, 1000);
	em_oci_config_free(&cfg);
}

Test(oci, json_syntax_errors_name_line_and_column)
{
	struct em_oci_config cfg;
	struct em_err err = { 0 };
	const char *text = "{\n  \"ociVersion\": \"1.2.0\",\n  \"root\": {\"path\": \"r\"},,\n}";

	cr_assert_eq(em_oci_parse(text, strlen(text), &cfg, &err), -EINVAL);
	cr_expect_str_eq(err.msg, "line 3, column 25: string or '}' expected near ','");
	cr_assert_eq(em_oci_parse("", 0, &cfg, &err), -EINVAL);
	cr_expect(strstr(err.msg, "line 1") || strstr(err.msg, "invalid JSON"), "%s", err.msg);
	/* above UINT64_MAX there is nothing to carry: jansson's own error */
	text = "{\"ociVersion\":\"1.2.0\",\"x\":99999999999999999999999}";
	cr_assert_eq(em_oci_parse(text, strlen(text), &cfg, &err), -EINVAL);
	cr_expect_str_eq(err.msg, "line 1, column 49: too big integer");
}

Test(oci, big_integers_inside_strings_are_left_alone)
{
	struct em_oci_config cfg;

	parse_ok(CFG(",'annotations':{'n':'18446744073709551615','m':'-9 \\\" 18446744073709551615'}"),
		 &cfg);
	cr_expect_str_eq(cfg.annotations.v[0].value, "18446744073709551615");
	cr_expect_str_eq(cfg.annotations.v[1].value, "-9 \" 18446744073709551615");
	em_oci_config_free(&cfg);
}

/* ---- em_oci_load */

static void write_tmp(char dir[64], char path[128], const char *text)
{
	FILE *f;

	strcpy(dir, "/tmp/ember-oci-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, 128, "%s/config.json", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void rm_tmp(const char *dir, const char *path)
{
	unlink(path);
	rmdir(dir);
}

Test(oci, load_prefixes_errors_with_the_file)
{
	char dir[64], path[128], want[512];
	struct em_oci_config cfg;
	struct em_err err = { 0 };
	cleanup_free char *bad =
		dq(WITH_LINUX("'namespaces':[{'type':'pid'},{'type':'mount'},{'type':'foo'}]"));

	write_tmp(dir, path, bad);
	cr_expect_eq(em_oci_load(path, &cfg, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s: linux.namespaces[2].type: unknown namespace \"foo\"", path);
	cr_expect_str_eq(err.msg, want);
	cr_expect(is_zero(&cfg, sizeof(cfg)));
	rm_tmp(dir, path);

	write_tmp(dir, path, "{\n\"ociVersion\": \"1.2.0\"\n\"root\": {}\n}\n");
	cr_expect_eq(em_oci_load(path, &cfg, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s: line 3, column 6: '}' expected near '\"root\"'", path);
	cr_expect_str_eq(err.msg, want);
	rm_tmp(dir, path);
}

Test(oci, load_reads_a_good_file_and_reports_a_missing_one)
{
	char dir[64], path[128];
	struct em_oci_config cfg;
	struct em_err err = { 0 };
	cleanup_free char *spec = em_oci_default_spec(false, 0, 0);

	write_tmp(dir, path, spec);
	cr_assert_eq(em_oci_load(path, &cfg, &err), 0, "%s", err.msg);
	cr_expect_str_eq(cfg.hostname, "ember");
	em_oci_config_free(&cfg);
	rm_tmp(dir, path);

	cr_expect_eq(em_oci_load("/nonexistent/ember/config.json", &cfg, &err), -ENOENT);
	cr_expect(strstr(err.msg, "/nonexistent/ember/config.json") != NULL, "%s", err.msg);
}

/* ---- process.json (exec --process) */

Test(oci, process_json_parses_like_config_process)
{
	struct em_oci_process p;
	struct em_err err = { 0 };
	cleanup_free char *j = dq("{'terminal':false,'user':{'uid':5,'gid':6},'args':['ps','aux'],"
				  "'env':['PATH=/bin'],'cwd':'/tmp','capabilities':{'bounding':"
				  "['CAP_SYS_PTRACE']},'noNewPrivileges':true,'oomScoreAdj':10,"
				  "'rlimits':[{'type':'RLIMIT_NPROC','soft':10,'hard':20}]}");

	cr_assert_eq(em_oci_parse_process(j, strlen(j), &p, &err), 0, "%s", err.msg);
	cr_expect_eq(p.args.n, 2);
	cr_expect_str_eq(p.args.v[1], "aux");
	cr_expect_eq(p.user.uid, 5);
	cr_expect_eq(p.user.gid, 6);
	cr_expect_str_eq(p.cwd, "/tmp");
	cr_expect_eq(p.caps[EM_CAP_BOUNDING], UINT64_C(1) << 19);
	cr_expect(p.no_new_privileges);
	cr_expect_eq(p.oom_score_adj.v, 10);
	cr_expect_eq(p.rlimits[0].resource, RLIMIT_NPROC);
	em_oci_process_free(&p);
}

Test(oci, process_json_errors_use_paths_relative_to_the_file)
{
	struct em_oci_process p;
	struct em_err err = { 0 };
	static const struct bad cases[] = {
		{ "{'cwd':'/'}", "args: must be a non-empty array of strings" },
		{ "{'args':['sh'],'cwd':'rel'}", "cwd: must be an absolute path, got \"rel\"" },
		{ "{'args':['sh'],'cwd':'/','capabilities':{'bounding':['CAP_X']}}",
		  "capabilities.bounding[0]: unknown capability \"CAP_X\"" },
		{ "['sh']", "(root): expected an object, got array" },
	};

	for (size_t i = 0; i < EM_ARRAY_SIZE(cases); i++) {
		cleanup_free char *j = dq(cases[i].json);

		cr_expect_eq(em_oci_parse_process(j, strlen(j), &p, &err), -EINVAL);
		cr_expect_str_eq(err.msg, cases[i].msg);
		cr_expect(is_zero(&p, sizeof(p)));
	}
}

/* ---- name tables */

Test(oci, name_tables)
{
	cr_expect_eq(em_cap_from_name("CAP_CHOWN"), 0);
	cr_expect_eq(em_cap_from_name("CAP_SYS_ADMIN"), 21);
	cr_expect_eq(em_cap_from_name("CAP_CHECKPOINT_RESTORE"), 40);
	cr_expect_eq(em_cap_from_name("CAP_NOPE"), -1);
	cr_expect_eq(em_cap_last(), 40);
	cr_expect_str_eq(em_cap_name(38), "CAP_PERFMON");
	cr_expect_null(em_cap_name(41));
	cr_expect_null(em_cap_name(-1));
	for (int c = 0; c <= em_cap_last(); c++)
		cr_expect_eq(em_cap_from_name(em_cap_name(c)), c);
	for (int t = 0; t < EM_NS_COUNT; t++)
		cr_expect_eq(em_ns_type_from_name(em_ns_type_name(t)), t);
	cr_expect_str_eq(em_ns_type_name(EM_NS_NET), "network");
	cr_expect_eq(em_ns_type_from_name("net"), -1);
	cr_expect_eq(em_rlimit_from_name("RLIMIT_NOFILE"), RLIMIT_NOFILE);
	cr_expect_eq(em_rlimit_from_name("RLIMIT_RTTIME"), RLIMIT_RTTIME);
	cr_expect_eq(em_rlimit_from_name("NOFILE"), -1);
	cr_expect_str_eq(em_hook_kind_name(EM_HOOK_CREATE_CONTAINER), "createContainer");
	cr_expect_str_eq(em_hook_kind_name(EM_HOOK_POSTSTOP), "poststop");
	cr_expect_null(em_hook_kind_name(EM_HOOK_NKINDS));
}

/* ---- robustness: every error path frees what it built (run under ASan to see leaks) */

Test(oci, every_prefix_of_a_config_fails_cleanly)
{
	cleanup_free char *j = dq(maximal);
	size_t len = strlen(j);

	for (size_t n = 0; n < len; n++) {
		struct em_oci_config cfg;
		struct em_err err = { 0 };

		cr_assert_eq(em_oci_parse(j, n, &cfg, &err), -EINVAL, "prefix of %zu bytes", n);
		cr_assert(err.msg[0] != '\0');
		cr_assert(is_zero(&cfg, sizeof(cfg)));
	}
}

/* Replace each value of the maximal config in turn with each of a few wrong values: the parser
 * must either accept (unknown fields, optional strings that may be anything) or fail with a
 * message naming a path, and never leave anything allocated. */
static size_t mutate_all(json_t *root, json_t *node, size_t *failures)
{
	json_t *wrong[] = { json_string("x"), json_integer(-7), json_object(), json_array(),
			    json_true(), json_integer(5000000000) };
	size_t n = 0;

	if (json_is_object(node) || json_is_array(node)) {
		size_t count = json_is_object(node) ? json_object_size(node) : json_array_size(node);
		void *it = json_is_object(node) ? json_object_iter(node) : NULL;

		for (size_t i = 0; i < count; i++) {
			json_t *child = json_is_object(node) ? json_object_iter_value(it)
							     : json_array_get(node, i);
			json_incref(child);
			for (size_t w = 0; w < EM_ARRAY_SIZE(wrong); w++) {
				struct em_oci_config cfg;
				struct em_err err = { 0 };
				cleanup_free char *text = NULL;
				int r;

				if (json_is_object(node))
					json_object_iter_set(node, it, wrong[w]);
				else
					json_array_set(node, i, wrong[w]);
				text = json_dumps(root, 0);
				cr_assert_not_null(text);
				r = em_oci_parse(text, strlen(text), &cfg, &err);
				if (r < 0) {
					cr_expect_eq(r, -EINVAL, "%s", err.msg);
					cr_expect(strchr(err.msg, ':') != NULL, "%s", err.msg);
					cr_expect(is_zero(&cfg, sizeof(cfg)));
					(*failures)++;
				}
				em_oci_config_free(&cfg);
				n++;
			}
			if (json_is_object(node))
				json_object_iter_set_new(node, it, child);
			else
				json_array_set_new(node, i, child);
			n += mutate_all(root, child, failures);
			if (json_is_object(node))
				it = json_object_iter_next(node, it);
		}
	}
	for (size_t w = 0; w < EM_ARRAY_SIZE(wrong); w++)
		json_decref(wrong[w]);
	return n;
}

Test(oci, wrong_values_anywhere_fail_cleanly)
{
	cleanup_free char *j = dq(maximal);
	json_error_t jerr;
	json_t *root;
	char *big;

	/* jansson (here used to walk the document) cannot hold numbers above INT64_MAX */
	while ((big = strstr(j, "18446744073709551615")))
		memcpy(big, "          4294967295", 20);
	root = json_loads(j, 0, &jerr);
	size_t failures = 0, n;

	cr_assert_not_null(root, "%s", jerr.text);
	n = mutate_all(root, root, &failures);
	json_decref(root);
	cr_expect_gt(n, 1000);
	cr_expect_gt(failures, n / 2, "%zu of %zu mutations refused", failures, n);
}
