/* runtime/host/metrics.c — the host's Prometheus metrics (see metrics.h): a hash table of series,
 * each keyed by its family and raw label values, updated under one mutex; rendered as the text
 * exposition format 0.0.4 from a copy taken under the mutex, so a scrape never holds up the
 * invocations that update it.
 *
 * A series lives until the host exits: a removed function's counters stay as they were, which
 * is what Prometheus expects of a counter (a series that vanishes and comes back from zero reads
 * as a reset), and functions are few. */
#include "runtime/host/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

/* Latency buckets in seconds, from 100 µs (a warm invocation) to 10 s. */
static const double BUCKETS[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
				  0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10 };
#define NBUCKETS EM_ARRAY_SIZE(BUCKETS)
#define MAX_LABELS 3

enum family {
	F_INVOCATIONS,
	F_DURATION,
	F_BILLED,
	F_CPU,
	F_INIT,
	F_N,
};

static const struct family_desc {
	const char *name;
	const char *help;
	bool histogram;
	unsigned nlabels;
	const char *labels[MAX_LABELS];
} FAMILIES[F_N] = {
	[F_INVOCATIONS] = { "ember_invocations_total", "Finished invocations.", false, 3,
			    { "function", "start", "outcome" } },
	[F_DURATION] = { "ember_invocation_duration_seconds",
			 "End-to-end latency of an invocation inside the host, request in to "
			 "response out.",
			 true, 2, { "function", "start" } },
	[F_BILLED] = { "ember_billed_milliseconds_total", "Billed duration.", false, 1,
		       { "function" } },
	[F_CPU] = { "ember_cpu_seconds_total", "CPU time used by invocations.", false, 1,
		    { "function" } },
	[F_INIT] = { "ember_init_duration_seconds",
		     "Init duration of the instance that served a cold start.", true, 1,
		     { "function" } },
};

struct series {
	struct series *next;         /* hash chain */
	uint64_t hash;
	enum family fam;
	char *lv[MAX_LABELS];        /* raw label values; escaped when rendered */
	double sum;                  /* a counter's value, a histogram's sum */
	uint64_t count;              /* a histogram's count */
	uint64_t bucket[NBUCKETS];   /* a histogram's observations per bucket, not cumulative */
};

struct em_metrics {
	pthread_mutex_t lock;
	struct series **tab;
	size_t tab_size;             /* a power of two */
	size_t n;
};

struct em_metrics *em_metrics_new(void)
{
	struct em_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->tab_size = 64;
	m->tab = calloc(m->tab_size, sizeof(*m->tab));
	if (!m->tab) {
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void series_free(struct series *s)
{
	for (unsigned i = 0; i < MAX_LABELS; i++)
		free(s->lv[i]);
	free(s);
}

void em_metrics_free(struct em_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->tab_size; i++) {
		struct series *s = m->tab[i], *next;

		for (; s; s = next) {
			next = s->next;
			series_free(s);
		}
	}
	free(m->tab);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* FNV-1a over the family and the label values, each ended by its NUL. */
static uint64_t series_hash(enum family fam, const char *const *lv)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = (h ^ (uint64_t)fam) * 0x100000001b3ull;
	for (unsigned i = 0; i < FAMILIES[fam].nlabels; i++) {
		for (const unsigned char *p = (const unsigned char *)lv[i]; *p; p++)
			h = (h ^ *p) * 0x100000001b3ull;
		h = (h ^ 0xff) * 0x100000001b3ull; /* 0xff never occurs in UTF-8 */
	}
	return h;
}

static bool series_match(const struct series *s, uint64_t h, enum family fam,
			 const char *const *lv)
{
	if (s->hash != h || s->fam != fam)
		return false;
	for (unsigned i = 0; i < FAMILIES[fam].nlabels; i++)
		if (strcmp(s->lv[i], lv[i]) != 0)
			return false;
	return true;
}

/* Double the table at a load of 1; on failure keep the old one (chains just grow longer). */
static void tab_grow(struct em_metrics *m)
{
	size_t size = m->tab_size * 2;
	struct series **tab = calloc(size, sizeof(*tab));

	if (!tab)
		return;
	for (size_t i = 0; i < m->tab_size; i++) {
		struct series *s = m->tab[i], *next;

		for (; s; s = next) {
			next = s->next;
			s->next = tab[s->hash & (size - 1)];
			tab[s->hash & (size - 1)] = s;
		}
	}
	free(m->tab);
	m->tab = tab;
	m->tab_size = size;
}

/* The series of fam{lv}, made on first use; NULL only when out of memory. Lock held. */
static struct series *series_get(struct em_metrics *m, enum family fam, const char *const *lv)
{
	uint64_t h = series_hash(fam, lv);
	struct series *s;

	for (s = m->tab[h & (m->tab_size - 1)]; s; s = s->next)
		if (series_match(s, h, fam, lv))
			return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->hash = h;
	s->fam = fam;
	for (unsigned i = 0; i < FAMILIES[fam].nlabels; i++) {
		s->lv[i] = strdup(lv[i]);
		if (!s->lv[i]) {
			series_free(s);
			return NULL;
		}
	}
	if (m->n >= m->tab_size)
		tab_grow(m);
	s->next = m->tab[h & (m->tab_size - 1)];
	m->tab[h & (m->tab_size - 1)] = s;
	m->n++;
	return s;
}

/* A sample the host could not measure (NaN) or that went backwards must not poison a sum for the
 * rest of the host's life: it counts as 0. */
static double sane(double v)
{
	return isfinite(v) && v > 0 ? v : 0;
}

static void counter_add(struct em_metrics *m, enum family fam, const char *const *lv, double v)
{
	struct series *s = series_get(m, fam, lv);

	/* out of memory: the sample is dropped; the invocation itself must not fail for metrics */
	if (s)
		s->sum += v;
}

static void observe(struct em_metrics *m, enum family fam, const char *const *lv, double v)
{
	struct series *s = series_get(m, fam, lv);
	size_t i;

	if (!s)
		return;
	for (i = 0; i < NBUCKETS && v > BUCKETS[i]; i++)
		;
	if (i < NBUCKETS) /* above the last bound: only +Inf, which is the count */
		s->bucket[i]++;
	s->count++;
	s->sum += v;
}

void em_metrics_invocation(struct em_metrics *m, const char *function, const char *start,
			   const char *outcome, double latency_s, double init_s, uint64_t billed_ms,
			   double cpu_s)
{
	const char *fn_start_outcome[] = { function ? function : "", start ? start : "",
					   outcome ? outcome : "" };

	if (!m)
		return;
	init_s = sane(init_s);
	pthread_mutex_lock(&m->lock);
	counter_add(m, F_INVOCATIONS, fn_start_outcome, 1);
	observe(m, F_DURATION, fn_start_outcome, sane(latency_s));
	counter_add(m, F_BILLED, fn_start_outcome, (double)billed_ms);
	counter_add(m, F_CPU, fn_start_outcome, sane(cpu_s));
	if (init_s > 0)
		observe(m, F_INIT, fn_start_outcome, init_s);
	pthread_mutex_unlock(&m->lock);
}

/* --- rendering */

/* A value as Go's ParseFloat reads it, in the fewest digits that give the same double back. */
static void put_value(FILE *f, double v)
{
	char buf[32];

	if (isnan(v)) {
		fputs("NaN", f);
		return;
	}
	if (isinf(v)) {
		fputs(v > 0 ? "+Inf" : "-Inf", f);
		return;
	}
	snprintf(buf, sizeof(buf), "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, sizeof(buf), "%.17g", v);
	fputs(buf, f);
}

/* Escape for a label value (\\, \", \n) or, without quotes, for HELP text (\\, \n). */
static void put_escaped(FILE *f, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (*s == '"' && quote)
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

/* HELP (left out when there is no text: the format allows it), then TYPE. */
static void put_header(FILE *f, const char *name, const char *help, const char *type)
{
	if (help) {
		fprintf(f, "# HELP %s ", name);
		put_escaped(f, help, false);
		fputc('\n', f);
	}
	fprintf(f, "# TYPE %s %s\n", name, type);
}

/* name{labels[,le="x"]} value */
static void put_sample(FILE *f, const char *name, const struct series *s, const char *le,
		       double v)
{
	const struct family_desc *d = &FAMILIES[s->fam];

	fputs(name, f);
	if (d->nlabels || le) {
		fputc('{', f);
		for (unsigned i = 0; i < d->nlabels; i++) {
			fprintf(f, "%s%s=\"", i ? "," : "", d->labels[i]);
			put_escaped(f, s->lv[i], true);
			fputc('"', f);
		}
		if (le)
			fprintf(f, "%sle=\"%s\"", d->nlabels ? "," : "", le);
		fputc('}', f);
	}
	fputc(' ', f);
	put_value(f, v);
	fputc('\n', f);
}

static void put_series(FILE *f, const struct series *s)
{
	const struct family_desc *d = &FAMILIES[s->fam];
	char name[128], le[32];
	uint64_t cum = 0;

	if (!d->histogram) {
		put_sample(f, d->name, s, NULL, s->sum);
		return;
	}
	snprintf(name, sizeof(name), "%s_bucket", d->name);
	for (size_t i = 0; i < NBUCKETS; i++) {
		cum += s->bucket[i];
		snprintf(le, sizeof(le), "%.15g", BUCKETS[i]);
		put_sample(f, name, s, le, (double)cum);
	}
	put_sample(f, name, s, "+Inf", (double)s->count);
	snprintf(name, sizeof(name), "%s_sum", d->name);
	put_sample(f, name, s, NULL, s->sum);
	snprintf(name, sizeof(name), "%s_count", d->name);
	put_sample(f, name, s, NULL, (double)s->count);
}

/* Family, then label values: a stable order, so two scrapes diff line by line. */
static int series_cmp(const void *a, const void *b)
{
	const struct series *x = a, *y = b;
	int c;

	if (x->fam != y->fam)
		return (int)x->fam - (int)y->fam;
	for (unsigned i = 0; i < FAMILIES[x->fam].nlabels; i++) {
		c = strcmp(x->lv[i], y->lv[i]);
		if (c)
			return c;
	}
	return 0;
}

/* Gauges grouped by name (in name order), samples of one name in the order given. */
static int gauge_cmp(const void *a, const void *b)
{
	const struct em_metrics_gauge *x = *(const struct em_metrics_gauge *const *)a;
	const struct em_metrics_gauge *y = *(const struct em_metrics_gauge *const *)b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x > y) - (x < y);
}

static void put_gauges(FILE *f, const struct em_metrics_gauge *g, size_t n)
{
	cleanup_free const struct em_metrics_gauge **order = NULL;
	size_t k = 0;

	if (!n)
		return;
	order = malloc(n * sizeof(*order));
	if (!order) {
		fputs("# out of memory: gauges left out\n", f);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (g[i].name)
			order[k++] = &g[i];
	qsort(order, k, sizeof(*order), gauge_cmp);
	for (size_t i = 0; i < k;) {
		const char *name = order[i]->name, *help = NULL;
		size_t j;

		/* the group's HELP: the first sample of the name that has one */
		for (j = i; j < k && strcmp(order[j]->name, name) == 0; j++)
			if (!help)
				help = order[j]->help;
		put_header(f, name, help, "gauge");
		for (; i < j; i++) {
			if (order[i]->labels && *order[i]->labels)
				fprintf(f, "%s{%s} ", name, order[i]->labels);
			else
				fprintf(f, "%s ", name);
			put_value(f, order[i]->value);
			fputc('\n', f);
		}
	}
}

char *em_metrics_render(struct em_metrics *m, const struct em_metrics_gauge *g, size_t n)
{
	cleanup_free struct series *snap = NULL;
	char *buf = NULL;
	size_t len = 0, k = 0;
	FILE *f;

	/* A copy of every series under the lock. The label strings are shared, not copied: a series
	 * is never freed or changed in its labels before em_metrics_free. */
	if (m) {
		pthread_mutex_lock(&m->lock);
		snap = malloc((m->n ? m->n : 1) * sizeof(*snap));
		if (snap)
			for (size_t i = 0; i < m->tab_size; i++)
				for (struct series *s = m->tab[i]; s; s = s->next)
					snap[k++] = *s;
		pthread_mutex_unlock(&m->lock);
		if (!snap)
			return NULL;
	}
	if (k)
		qsort(snap, k, sizeof(*snap), series_cmp);

	f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; i < k; i++) {
		const struct family_desc *d = &FAMILIES[snap[i].fam];

		if (i == 0 || snap[i].fam != snap[i - 1].fam)
			put_header(f, d->name, d->help, d->histogram ? "histogram" : "counter");
		put_series(f, &snap[i]);
	}
	put_gauges(f, g, n);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
