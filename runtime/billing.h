/* runtime/billing.h — `ember run --bill FILE`: the BPF billing of bpf/ applied to one OCI
 * container, so the accounting can be used (and checked) before the function host exists.
 * The window opens when the container's init is set up, just before it executes its program,
 * and closes when the program has exited; the record is written to FILE as JSON. */
#ifndef EMBER_RUNTIME_BILLING_H
#define EMBER_RUNTIME_BILLING_H

#include <stdint.h>

struct em_err;
struct em_log;
struct em_cg;
struct em_cg_root;
struct em_rt_bill;
struct em_bill_cg;

/* The cgroup files bpf/ reads for one of ember's cgroups (what em_bill_track takes); the paths
 * live in *p, which must outlive the em_bill_track call. Shared with the function host. */
struct em_rt_bill_paths { char unified[4096], cpuacct[4096], cpu[4096], memory[4096]; };
void em_rt_bill_cg(struct em_cg_root *root, struct em_cg *cg, uint64_t memory_mb,
		   struct em_rt_bill_paths *p, struct em_bill_cg *bc);

/* Load and attach the BPF programs (tens of ms: only when billing is asked for). */
int em_rt_bill_open(struct em_rt_bill **out, struct em_log *log, struct em_err *err);
/* Track the container's cgroup and open its window. memory_mb: for GB-seconds (0 if none). */
int em_rt_bill_begin(struct em_rt_bill *b, struct em_cg_root *root, struct em_cg *cg,
		     uint64_t memory_mb, struct em_err *err);
/* Close the window and write the record as JSON to path ("-" = stderr). */
int em_rt_bill_end(struct em_rt_bill *b, const char *id, const char *path, struct em_err *err);
void em_rt_bill_close(struct em_rt_bill *b);

#endif
