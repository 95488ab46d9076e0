/* runtime/billing.c — see billing.h. */
#include "runtime/billing.h"
#include "bpf/billing_api.h"
#include "cgroups/cgroups.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct em_rt_bill {
	struct em_bill *bill;
	uint64_t cgid;
	struct em_rt_bill_paths paths;
};

void em_rt_bill_cg(struct em_cg_root *root, struct em_cg *cg, uint64_t memory_mb,
		   struct em_rt_bill_paths *p, struct em_bill_cg *bc)
{
	const char *rel = em_cg_path(cg);
	bool v2 = em_cg_root_mode(root) == EM_CG_V2;

	memset(bc, 0, sizeof(*bc));
	bc->cgid = em_cg_id(cg);
	bc->memory_mb = memory_mb;
	/* the cgroup files the cross-check reads: v2 keeps them all in one directory */
	snprintf(p->unified, sizeof(p->unified), "/sys/fs/cgroup/%s%s", v2 ? "" : "unified/", rel);
	bc->unified = p->unified;
	if (!v2) {
		snprintf(p->cpuacct, sizeof(p->cpuacct), "/sys/fs/cgroup/cpuacct/%s", rel);
		snprintf(p->cpu, sizeof(p->cpu), "/sys/fs/cgroup/cpu/%s", rel);
		snprintf(p->memory, sizeof(p->memory), "/sys/fs/cgroup/memory/%s", rel);
		bc->cpuacct = p->cpuacct;
		bc->cpu = p->cpu;
		bc->memory = p->memory;
	}
}

int em_rt_bill_open(struct em_rt_bill **out, struct em_log *log, struct em_err *err)
{
	struct em_rt_bill *b = calloc(1, sizeof(*b));
	struct em_bill_opts opts = { .log = log };
	int ret;

	if (!b)
		return em_err_set(err, ENOMEM, "billing");
	ret = em_bill_open(&b->bill, &opts, err);
	if (ret < 0) {
		free(b);
		return em_err_prefix(err, "--bill");
	}
	*out = b;
	return 0;
}

int em_rt_bill_begin(struct em_rt_bill *b, struct em_cg_root *root, struct em_cg *cg,
		     uint64_t memory_mb, struct em_err *err)
{
	const char *p = em_cg_path(cg);
	struct em_bill_cg bc;
	struct em_bill_window_opts wo = { .start = EM_BILL_START_COLD };
	int ret;

	em_rt_bill_cg(root, cg, memory_mb, &b->paths, &bc);
	ret = em_bill_track(b->bill, &bc, err);
	if (ret < 0)
		return em_err_prefix(err, "--bill: track cgroup %s", p);
	b->cgid = bc.cgid;
	ret = em_bill_window_open(b->bill, b->cgid, &wo, err);
	return ret < 0 ? em_err_prefix(err, "--bill: open the window") : 0;
}

int em_rt_bill_end(struct em_rt_bill *b, const char *id, const char *path, struct em_err *err)
{
	struct em_bill_record r;
	char *text;
	int ret;

	if (!b->cgid)
		return 0;
	ret = em_bill_window_close(b->bill, b->cgid, &r, err);
	em_bill_untrack(b->bill, b->cgid, NULL);
	b->cgid = 0;
	if (ret < 0)
		return em_err_prefix(err, "--bill: close the window");
	json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I}",
			      "id", id, "start", em_bill_start_name((enum em_bill_start)r.start),
			      "wall_ns", (json_int_t)r.wall_ns, "host_wall_ns",
			      (json_int_t)r.host_wall_ns, "cpu_ns", (json_int_t)r.cpu_ns,
			      "cgroup_cpu_ns", (json_int_t)r.cg_cpu_ns, "throttled_ns",
			      (json_int_t)r.throttled_ns, "billed_ms", (json_int_t)r.billed_ms,
			      "memory_mb", (json_int_t)r.memory_mb, "mem_peak_bytes",
			      (json_int_t)r.mem_peak_bytes, "gb_seconds", em_bill_gb_seconds(&r),
			      "nr_switch", (json_int_t)r.nr_switch, "flags", (json_int_t)r.flags);
	text = j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return em_err_msg(err, ENOMEM, "--bill: encode the record");
	size_t len = strlen(text);
	if (!strcmp(path, "-")) {
		fprintf(stderr, "%s\n", text);
		ret = 0;
	} else {
		char *line = malloc(len + 2);
		if (!line) {
			free(text);
			return em_err_msg(err, ENOMEM, "--bill");
		}
		memcpy(line, text, len);
		line[len] = '\n';
		ret = em_create_file_at(AT_FDCWD, path, 0644, line, len + 1, err);
		free(line);
	}
	free(text);
	return ret;
}

void em_rt_bill_close(struct em_rt_bill *b)
{
	if (!b)
		return;
	if (b->cgid)
		em_bill_untrack(b->bill, b->cgid, NULL);
	em_bill_close(b->bill);
	free(b);
}
