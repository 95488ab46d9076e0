/* tools/ledger-bench/bench_ledger.c — what the ledger costs on an invocation's path: one
 * em_ledger_add per invocation (a typical record, and one whose log is cut), a query of the
 * newest 100, and, for the comment in ledger.c, what synchronous=FULL would add to every commit
 * (an append and an fdatasync of the same size on the same filesystem).
 *
 * Usage: bench-ledger [dir]   (default: a new directory under /var/tmp, which is on disk where
 * /tmp may be tmpfs; the host's ledger lives on disk in its data dir) */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "runtime/host/ledger.h"
#include "tools/bench/stats.h"

#define N_ADD 10000
#define N_CUT 1000
#define N_QUERY 1000
#define N_SYNC 300

static struct em_ledger_rec typical(char *id, size_t id_size, int i, const char *log,
				    size_t log_len)
{
	snprintf(id, id_size, "5f0c3a9e-1b2c-4d3e-8f40-%012d", i);
	return (struct em_ledger_rec){
		.request_id = id, .function = "thumbnail", .version = 3,
		.time_ms = 1700000000000 + i, .start = "warm", .outcome = "ok",
		.init_ns = 0, .wall_ns = 1834000, .cpu_ns = 912000, .billed_ms = 2,
		.memory_mb = 128, .mem_peak_bytes = 23 << 20, .mb_ms = 256,
		.latency_ns = 2450000, .bill_flags = 0x9, .log = log, .log_len = log_len,
	};
}

int main(int argc, char **argv)
{
	struct bench_samples add = { 0 }, cut = { 0 }, query = { 0 }, sync = { 0 };
	char dir[256], path[300], id[64], log[600];
	static char big[200 * 1024];
	struct em_err err = { 0 };
	struct em_ledger *l;
	int ret = 1, fd;

	snprintf(dir, sizeof(dir), "%s/ember-bench-ledger-XXXXXX", argc > 1 ? argv[1] : "/var/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "bench-ledger: mkdtemp %s: %s\n", dir, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	if (em_ledger_open(path, &l, &err) < 0) {
		fprintf(stderr, "bench-ledger: %s\n", err.msg);
		goto out;
	}
	bench_machine_note();
	printf("# ledger in %s (WAL, synchronous=NORMAL)\n", dir);

	/* a typical warm invocation's log: a few lines, START/END/REPORT-sized */
	memset(log, 'l', sizeof(log));
	for (size_t i = 79; i < sizeof(log); i += 80)
		log[i] = '\n';
	for (int i = 0; i < N_ADD; i++) {
		struct em_ledger_rec r = typical(id, sizeof(id), i, log, sizeof(log));
		double t0 = bench_now_us();

		if (em_ledger_add(l, &r, &err) < 0) {
			fprintf(stderr, "bench-ledger: %s\n", err.msg);
			goto close;
		}
		bench_add(&add, bench_now_us() - t0);
	}
	bench_report("ledger add (600 B log)", &add, "us");

	memset(big, 'b', sizeof(big));
	for (int i = 0; i < N_CUT; i++) {
		struct em_ledger_rec r = typical(id, sizeof(id), N_ADD + i, big, sizeof(big));
		double t0 = bench_now_us();

		if (em_ledger_add(l, &r, &err) < 0) {
			fprintf(stderr, "bench-ledger: %s\n", err.msg);
			goto close;
		}
		bench_add(&cut, bench_now_us() - t0);
	}
	bench_report("ledger add (200 KB log, cut to 64 KB)", &cut, "us");

	for (int i = 0; i < N_QUERY; i++) {
		json_t *a;
		double t0 = bench_now_us();

		if (em_ledger_query(l, "thumbnail", 100, &a, &err) < 0) {
			fprintf(stderr, "bench-ledger: %s\n", err.msg);
			goto close;
		}
		bench_add(&query, bench_now_us() - t0);
		json_decref(a);
	}
	bench_report("ledger query newest 100 of 11k", &query, "us");

	/* What synchronous=FULL adds: the WAL fsync'd at every commit. A record-sized append and
	 * an fdatasync, on the ledger's filesystem (the lower bound of that cost: sqlite's own
	 * fsync also flushes the WAL frame's page and header). */
	snprintf(path, sizeof(path), "%s/sync-probe", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "bench-ledger: open %s: %s\n", path, strerror(errno));
		goto close;
	}
	for (int i = 0; i < N_SYNC; i++) {
		double t0 = bench_now_us();

		if (write(fd, log, sizeof(log)) != (ssize_t)sizeof(log) || fdatasync(fd) < 0) {
			fprintf(stderr, "bench-ledger: write+fdatasync %s: %s\n", path,
				strerror(errno));
			close(fd);
			goto close;
		}
		bench_add(&sync, bench_now_us() - t0);
	}
	close(fd);
	bench_report("append+fdatasync (what FULL adds per add)", &sync, "us");
	ret = 0;
close:
	em_ledger_close(l);
out:
	em_rm_rf_at(AT_FDCWD, dir, &err);
	bench_free(&add);
	bench_free(&cut);
	bench_free(&query);
	bench_free(&sync);
	return ret;
}
