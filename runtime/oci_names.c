/* runtime/oci_names.c — the name tables of the OCI spec: namespace types, capabilities, rlimits,
 * hook kinds. Read-only data; the parser, the sandbox and the CLI (`features`) share them. */
#include <string.h>
#include <sys/resource.h>

#include "common/cleanup.h"
#include "runtime/oci.h"

static const char *const ns_names[EM_NS_COUNT] = {
	[EM_NS_PID] = "pid",       [EM_NS_NET] = "network", [EM_NS_MOUNT] = "mount",
	[EM_NS_IPC] = "ipc",       [EM_NS_UTS] = "uts",     [EM_NS_USER] = "user",
	[EM_NS_CGROUP] = "cgroup", [EM_NS_TIME] = "time",
};

/* Index = capability number, as in linux/capability.h (CAP_CHECKPOINT_RESTORE = 40, Linux 5.9). */
static const char *const cap_names[] = {
	"CAP_CHOWN",           "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID",          "CAP_KILL",           "CAP_SETGID",          "CAP_SETUID",
	"CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",       "CAP_NET_RAW",        "CAP_IPC_LOCK",        "CAP_IPC_OWNER",
	"CAP_SYS_MODULE",      "CAP_SYS_RAWIO",      "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",       "CAP_SYS_ADMIN",      "CAP_SYS_BOOT",        "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",    "CAP_SYS_TIME",       "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
	"CAP_LEASE",           "CAP_AUDIT_WRITE",    "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",      "CAP_SYSLOG",          "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",   "CAP_AUDIT_READ",     "CAP_PERFMON",         "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

static const struct {
	const char *name;
	int resource;
} rlimits[] = {
	{ "RLIMIT_CPU", RLIMIT_CPU },           { "RLIMIT_FSIZE", RLIMIT_FSIZE },
	{ "RLIMIT_DATA", RLIMIT_DATA },         { "RLIMIT_STACK", RLIMIT_STACK },
	{ "RLIMIT_CORE", RLIMIT_CORE },         { "RLIMIT_RSS", RLIMIT_RSS },
	{ "RLIMIT_NPROC", RLIMIT_NPROC },       { "RLIMIT_NOFILE", RLIMIT_NOFILE },
	{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },   { "RLIMIT_AS", RLIMIT_AS },
	{ "RLIMIT_LOCKS", RLIMIT_LOCKS },       { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
	{ "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
	{ "RLIMIT_RTPRIO", RLIMIT_RTPRIO },     { "RLIMIT_RTTIME", RLIMIT_RTTIME },
};

static const char *const hook_names[EM_HOOK_NKINDS] = {
	[EM_HOOK_PRESTART] = "prestart",
	[EM_HOOK_CREATE_RUNTIME] = "createRuntime",
	[EM_HOOK_CREATE_CONTAINER] = "createContainer",
	[EM_HOOK_START_CONTAINER] = "startContainer",
	[EM_HOOK_POSTSTART] = "poststart",
	[EM_HOOK_POSTSTOP] = "poststop",
};

const char *em_ns_type_name(enum em_ns_type t)
{
	return (unsigned)t < EM_NS_COUNT ? ns_names[t] : NULL;
}

int em_ns_type_from_name(const char *name)
{
	for (int i = 0; i < EM_NS_COUNT; i++)
		if (strcmp(ns_names[i], name) == 0)
			return i;
	return -1;
}

int em_cap_from_name(const char *name)
{
	for (size_t i = 0; i < EM_ARRAY_SIZE(cap_names); i++)
		if (strcmp(cap_names[i], name) == 0)
			return (int)i;
	return -1;
}

const char *em_cap_name(int cap)
{
	return cap >= 0 && (size_t)cap < EM_ARRAY_SIZE(cap_names) ? cap_names[cap] : NULL;
}

int em_cap_last(void)
{
	return (int)EM_ARRAY_SIZE(cap_names) - 1;
}

int em_rlimit_from_name(const char *name)
{
	for (size_t i = 0; i < EM_ARRAY_SIZE(rlimits); i++)
		if (strcmp(rlimits[i].name, name) == 0)
			return rlimits[i].resource;
	return -1;
}

const char *em_hook_kind_name(enum em_hook_kind k)
{
	return (unsigned)k < EM_HOOK_NKINDS ? hook_names[k] : NULL;
}
