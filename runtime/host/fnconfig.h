/* runtime/host/fnconfig.h — the OCI config a function's instances run with: the deployed
 * bundle's config.json (or ember's default spec around a rootfs + command), with what the host
 * decides itself put over it:
 *   - namespaces: new pid, mount, uts, ipc; network from the host's pool (joined by fd); no
 *     user, cgroup or time namespace (the bundle's entries for those are dropped);
 *   - the root filesystem read-only (instances of a function share it: nothing writable may be
 *     shared) and a fresh tmpfs on /tmp of the function's size, mode 1777, per instance;
 *   - process.noNewPrivileges, the function's environment and the channel's variables
 *     (EMBER_CHANNEL_FD=3, EMBER_FUNCTION, EMBER_FUNCTION_VERSION, EMBER_MEMORY_MB);
 *   - no linux.resources / cgroupsPath (the host sets limits from the memory size itself,
 *     cgroups/policy.c) and no hooks (an OCI hook would run on the host for every instance).
 * Paths in the result are absolute (root.path resolved against the bundle). */
#ifndef EMBER_RUNTIME_HOST_FNCONFIG_H
#define EMBER_RUNTIME_HOST_FNCONFIG_H

#include <stdint.h>
#include <sys/types.h>

#include "runtime/host/fnspec.h"
#include "runtime/oci.h"

struct em_err;

int em_fn_oci_config(const struct em_fn_spec *spec, uint32_t version, struct em_oci_config *cfg,
		     char bundle_dir[4096], struct em_err *err);

/* The config of the function's zygote template (template.h): the instance config above, plus
 *   - a user namespace of its own: root inside is `uid`:`uid` outside (one id, unprivileged), so
 *     whatever the function's init does, it holds no privilege over the host;
 *   - CAP_SYS_ADMIN in that namespace (bounding, permitted, effective): what clone3 of new
 *     pid/mount/uts/ipc namespaces, setns into the instance's network namespace and the instance's
 *     own /proc and /tmp mounts need. Forked instances drop it (sdk/c/ember_zygote.c);
 *   - no /sys: sysfs can only be mounted by the owner of the network namespace, and the template's
 *     comes from the host's pool (its masked /sys paths go with it);
 *   - EMBER_TEMPLATE=1, so the SDK gets ready to fork before READY. */
int em_fn_template_config(const struct em_fn_spec *spec, uint32_t version, uid_t uid,
			  struct em_oci_config *cfg, char bundle_dir[4096], struct em_err *err);

#endif
