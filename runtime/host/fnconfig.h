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

#include "runtime/host/fnspec.h"
#include "runtime/oci.h"

struct em_err;

int em_fn_oci_config(const struct em_fn_spec *spec, uint32_t version, struct em_oci_config *cfg,
		     char bundle_dir[4096], struct em_err *err);

#endif
