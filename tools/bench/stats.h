/* tools/bench/stats.h — shared by every benchmark: sample sets, median/p99, and the report line
 * format all of `make bench` uses, so figures from different areas read the same:
 *   <name>  n=<runs>  median=<v> <unit>  p99=<v> <unit>  [ratio=<x> vs <peer>]
 * Header-only on purpose: benchmarks are separate small programs. */
#ifndef EMBER_BENCH_STATS_H
#define EMBER_BENCH_STATS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

struct bench_samples {
	double *v;
	size_t n, cap;
};

static inline double bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static inline void bench_add(struct bench_samples *s, double v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = realloc(s->v, s->cap * sizeof(double));
		if (!s->v) {
			perror("bench: realloc");
			exit(1);
		}
	}
	s->v[s->n++] = v;
}

static inline int bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Quantile q in [0,1] by nearest rank on a sorted copy. */
static inline double bench_quantile(const struct bench_samples *s, double q)
{
	if (!s->n)
		return 0;
	double *c = malloc(s->n * sizeof(double));
	if (!c) {
		perror("bench: malloc");
		exit(1);
	}
	memcpy(c, s->v, s->n * sizeof(double));
	qsort(c, s->n, sizeof(double), bench_cmp);
	size_t i = (size_t)(q * (double)(s->n - 1) + 0.5);
	double r = c[i];
	free(c);
	return r;
}

static inline double bench_median(const struct bench_samples *s)
{
	return bench_quantile(s, 0.5);
}

static inline void bench_report(const char *name, const struct bench_samples *s, const char *unit)
{
	printf("%-44s n=%-4zu median=%10.1f %-3s p99=%10.1f %s\n", name, s->n, bench_median(s), unit,
	       bench_quantile(s, 0.99), unit);
}

/* Report s next to its peer: ratio = peer median / s median (how many times faster s is). */
static inline void bench_report_vs(const char *name, const struct bench_samples *s, const char *unit,
				   const char *peer, const struct bench_samples *p)
{
	double ms = bench_median(s), mp = bench_median(p);

	printf("%-44s n=%-4zu median=%10.1f %-3s p99=%10.1f %-3s ratio=%.1fx vs %s\n", name, s->n, ms,
	       unit, bench_quantile(s, 0.99), unit, ms > 0 ? mp / ms : 0, peer);
}

/* One line that says where the figures come from (the machine is shared and noisy). */
static inline void bench_machine_note(void)
{
	struct utsname u;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	uname(&u);
	printf("# machine: %s %s, %ld CPUs; medians and ratios are the figures to quote\n", u.sysname,
	       u.release, cpus);
}

static inline void bench_free(struct bench_samples *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

#endif
