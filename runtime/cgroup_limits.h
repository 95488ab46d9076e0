/* runtime/cgroup_limits.h — OCI linux.resources → struct em_cg_limits, the way runc and crun
 * read the fields, checked before anything touches the kernel. Errors and warnings name the OCI
 * field: `linux.resources.memory.swap: 100 is less than memory.limit 200 (swap is memory+swap)`.
 *
 * Conversions (runc/crun semantics unless said otherwise):
 *  - memory.limit: bytes, -1 = unlimited, 0 = not set. memory.reservation → memory_low.
 *  - memory.swap is memory+swap in OCI: swap_max = swap - limit; -1 = unlimited swap; 0 = not
 *    set. ember's default when a limit is set and swap is not: no swap (swap_max = 0), so a
 *    function cannot outgrow its memory through swap.
 *  - memory.kernel, memory.kernelTCP: deprecated by the kernel, warned and ignored.
 *  - cpu.shares → cpu_weight = 1 + ((shares - 2) × 9999) / 262142 (shares clamped to
 *    2..262144; 0 = not set). cpu.quota/period → cpu_max (quota ≤ 0 with a period: no quota,
 *    as runc writes "max PERIOD"). cpu.realtime*: an error (ember has no RT group scheduling).
 *  - pids.limit: > 0 the limit, -1 (or any negative) unlimited, 0 not set.
 *  - blockIO.weight (10..1000) → io_weight = 1 + (weight - 10) × 9999 / 990 (crun's mapping);
 *    throttle* → io_max per device; leafWeight, weightDevice: warned and ignored.
 *  - hugepageLimits, network (net_cls/net_prio): warned and ignored.
 *  - unified: raw file=value pairs (a key must be a plain file name).
 *  - devices: rules in order; type a/c/b, access a subset of "rwm".
 * `out` is filled from zero; free it with em_cg_limits_free (also on error). */
#ifndef EMBER_RUNTIME_CGROUP_LIMITS_H
#define EMBER_RUNTIME_CGROUP_LIMITS_H

#include "cgroups/cgroups.h"
#include "runtime/oci.h"

struct em_err;
struct em_log;

int em_rt_cg_limits_from_oci(const struct em_oci_resources *r, struct em_cg_limits *out,
			     struct em_log *log, struct em_err *err);

/* cpu.shares (v1 scale 2..262144) to cpu.weight (v2 scale 1..10000); 0 stays 0 (not set). */
uint64_t em_rt_cg_shares_to_weight(uint64_t shares);

#endif
