/* runtime/oci_spec.c — the config.json `ember spec` writes: runc's default (libcontainer/specconv
 * Example()), with ember's hostname and a cgroup namespace always, and runc's ToRootless()
 * changes for --rootless. Field order follows runc's output so the two diff cleanly. */
#include <jansson.h>
#include <stdlib.h>

#include "common/cleanup.h"
#include "runtime/oci.h"

#define OCI_VERSION "1.2.0"

/* A JSON array of the NULL-terminated strings; with drop_ids, without "uid=" / "gid=" options
 * (a rootless user may not pick the owner of a devpts instance). */
static json_t *strarr(const char *const *v, bool drop_ids)
{
	json_t *a = json_array();

	for (; a && *v; v++) {
		if (drop_ids && ((*v)[0] == 'u' || (*v)[0] == 'g') && (*v)[1] == 'i' &&
		    (*v)[2] == 'd' && (*v)[3] == '=')
			continue;
		if (json_array_append_new(a, json_string(*v)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

#define STRS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static json_t *mount(const char *dest, const char *type, const char *src,
		     const char *const *opts, bool rootless)
{
	if (!opts)
		return json_pack("{s:s, s:s, s:s}", "destination", dest, "type", type, "source",
				 src);
	return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", src,
			 "options", strarr(opts, rootless));
}

static json_t *mounts(bool rootless)
{
	json_t *sys;

	/* sysfs cannot be mounted by a user namespace that does not own the network namespace:
	 * bind the host's read-only instead (runc does the same) */
	if (rootless)
		sys = mount("/sys", "none", "/sys", STRS("rbind", "nosuid", "noexec", "nodev", "ro"),
			    rootless);
	else
		sys = mount("/sys", "sysfs", "sysfs", STRS("nosuid", "noexec", "nodev", "ro"),
			    rootless);
	return json_pack(
		"[o, o, o, o, o, o, o]", mount("/proc", "proc", "proc", NULL, rootless),
		mount("/dev", "tmpfs", "tmpfs",
		      STRS("nosuid", "strictatime", "mode=755", "size=65536k"), rootless),
		mount("/dev/pts", "devpts", "devpts",
		      STRS("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
		      rootless),
		mount("/dev/shm", "tmpfs", "shm",
		      STRS("nosuid", "noexec", "nodev", "mode=1777", "size=65536k"), rootless),
		mount("/dev/mqueue", "mqueue", "mqueue", STRS("nosuid", "noexec", "nodev"), rootless),
		sys,
		mount("/sys/fs/cgroup", "cgroup", "cgroup",
		      STRS("nosuid", "noexec", "nodev", "relatime", "ro"), rootless));
}

static json_t *namespaces(bool rootless)
{
	static const char *const root_ns[] = { "pid", "network", "ipc", "uts", "mount", "cgroup" };
	static const char *const rootless_ns[] = { "pid", "ipc", "uts", "mount", "cgroup", "user" };
	const char *const *names = rootless ? rootless_ns : root_ns;
	json_t *a = json_array();

	for (size_t i = 0; a && i < EM_ARRAY_SIZE(root_ns); i++) {
		if (json_array_append_new(a, json_pack("{s:s}", "type", names[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *process(void)
{
	const char *const *caps = STRS("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE");

	return json_pack(
		"{s:b, s:{s:i, s:i}, s:o, s:o, s:s, s:{s:o, s:o, s:o}, s:[{s:s, s:i, s:i}], "
		"s:b}",
		"terminal", 1, "user", "uid", 0, "gid", 0, "args", strarr(STRS("sh"), false), "env",
		strarr(STRS("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			    "TERM=xterm"),
		       false),
		"cwd", "/", "capabilities", "bounding", strarr(caps, false), "effective",
		strarr(caps, false), "permitted", strarr(caps, false), "rlimits", "type",
		"RLIMIT_NOFILE", "hard", 1024, "soft", 1024, "noNewPrivileges", 1);
}

static json_t *linux_section(bool rootless, uid_t uid, gid_t gid)
{
	json_t *masked = strarr(STRS("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
				     "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
				     "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
				     "/sys/devices/virtual/tpm"),
				false);
	json_t *ro = strarr(STRS("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
				 "/proc/sysrq-trigger"),
			    false);

	/* rootless: the caller's ids become root inside; no cgroup settings (runc's ToRootless) */
	if (rootless)
		return json_pack("{s:[{s:I, s:I, s:i}], s:[{s:I, s:I, s:i}], s:o, s:o, s:o}",
				 "uidMappings", "containerID", (json_int_t)0, "hostID",
				 (json_int_t)uid, "size", 1, "gidMappings", "containerID",
				 (json_int_t)0, "hostID", (json_int_t)gid, "size", 1, "namespaces",
				 namespaces(true), "maskedPaths", masked, "readonlyPaths", ro);
	return json_pack("{s:{s:[{s:b, s:s}]}, s:o, s:o, s:o}", "resources", "devices", "allow",
			 0, "access", "rwm", "namespaces", namespaces(false), "maskedPaths", masked,
			 "readonlyPaths", ro);
}

char *em_oci_default_spec(bool rootless, uid_t uid, gid_t gid)
{
	json_auto_t *spec = json_pack(
		"{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o}", "ociVersion", OCI_VERSION, "process",
		process(), "root", "path", "rootfs", "readonly", 1, "hostname", "ember", "mounts",
		mounts(rootless), "linux", linux_section(rootless, uid, gid));

	if (!spec)
		return NULL;
	return json_dumps(spec, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
}
