/* tests/host/test_metrics.c — the Prometheus exposition, parsed back line by line: exact counter
 * values, cumulative buckets, label escaping, HELP/TYPE once per family before its samples, and
 * gauges grouped. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/host/metrics.h"

#define MAX_LINES 4096
#define MAX_LBL 4

/* One parsed line of the text format. */
struct line {
	enum { L_HELP, L_TYPE, L_SAMPLE } kind;
	char name[128];
	char text[256];              /* HELP's docstring (unescaped), TYPE's type */
	unsigned nl;
	char lk[MAX_LBL][32], lv[MAX_LBL][128]; /* label values unescaped */
	double value;
};

struct expo {
	struct line *l;
	size_t n;
};

/* Parse the exposition strictly as the 0.0.4 grammar has it; any deviation fails the test. */
static void parse(const char *text, struct expo *e)
{
	const char *p = text;

	e->l = calloc(MAX_LINES, sizeof(*e->l));
	e->n = 0;
	cr_assert(*text == '\0' || text[strlen(text) - 1] == '\n', "no final newline");
	while (*p) {
		const char *eol = strchr(p, '\n');
		struct line *l = &e->l[e->n++];
		char *end;
		size_t k;

		cr_assert_lt(e->n, MAX_LINES);
		cr_assert_not_null(eol);
		if (strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0) {
			l->kind = p[2] == 'H' ? L_HELP : L_TYPE;
			p += 7;
			k = strcspn(p, " \n");
			cr_assert_lt(k, sizeof(l->name));
			memcpy(l->name, p, k);
			p += k;
			cr_assert_eq(*p, ' ', "no text after %s", l->name);
			p++;
			for (k = 0; p < eol; p++) {
				char c = *p;
				if (c == '\\') {
					p++;
					cr_assert(*p == '\\' || *p == 'n', "bad escape in HELP");
					c = *p == 'n' ? '\n' : '\\';
				}
				cr_assert_lt(k + 1, sizeof(l->text));
				l->text[k++] = c;
			}
			p = eol + 1;
			continue;
		}
		cr_assert_neq(*p, '#', "comment line: %.60s", p);
		l->kind = L_SAMPLE;
		k = strcspn(p, "{ ");
		cr_assert_lt(k, sizeof(l->name));
		memcpy(l->name, p, k);
		p += k;
		if (*p == '{') {
			p++;
			while (*p != '}') {
				cr_assert_lt(l->nl, MAX_LBL);
				k = strcspn(p, "=");
				memcpy(l->lk[l->nl], p, k);
				p += k;
				cr_assert_eq(p[0], '=');
				cr_assert_eq(p[1], '"', "label value not quoted");
				p += 2;
				size_t o = 0;
				for (; *p != '"'; p++) {
					char c = *p;
					cr_assert_neq(c, '\n', "raw newline in a label value");
					if (c == '\\') {
						p++;
						cr_assert(*p == '\\' || *p == 'n' || *p == '"',
							  "bad escape in a label value");
						c = *p == 'n' ? '\n' : *p;
					}
					l->lv[l->nl][o++] = c;
				}
				p++;
				l->nl++;
				if (*p == ',')
					p++;
				else
					cr_assert_eq(*p, '}');
			}
			p++;
		}
		cr_assert_eq(*p, ' ', "no value for %s", l->name);
		p++;
		if (strncmp(p, "+Inf", 4) == 0) {
			l->value = INFINITY;
			end = (char *)p + 4;
		} else {
			l->value = strtod(p, &end);
		}
		cr_assert_eq(end, eol, "junk after the value of %s: %.20s", l->name, end);
		p = eol + 1;
	}
}

static const char *label(const struct line *l, const char *k)
{
	for (unsigned i = 0; i < l->nl; i++)
		if (strcmp(l->lk[i], k) == 0)
			return l->lv[i];
	return NULL;
}

/* The value of name{k1=v1,...} (the labels given must be exactly the sample's); fails if absent. */
static double value(const struct expo *e, const char *name, int nl, ...)
{
	for (size_t i = 0; i < e->n; i++) {
		const struct line *l = &e->l[i];
		va_list ap;
		bool ok;

		if (l->kind != L_SAMPLE || strcmp(l->name, name) != 0 || (int)l->nl != nl)
			continue;
		ok = true;
		va_start(ap, nl);
		for (int j = 0; j < nl; j++) {
			const char *k = va_arg(ap, const char *), *v = va_arg(ap, const char *);
			const char *got = label(l, k);
			if (!got || strcmp(got, v) != 0)
				ok = false;
		}
		va_end(ap);
		if (ok)
			return l->value;
	}
	cr_assert_fail("no sample %s with those %d labels", name, nl);
	return NAN;
}

static size_t count_samples(const struct expo *e, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < e->n; i++)
		n += e->l[i].kind == L_SAMPLE && strcmp(e->l[i].name, name) == 0;
	return n;
}

/* The family a sample belongs to: its name, less _bucket/_sum/_count for a histogram. */
static void family_of(const struct line *l, const char *hist_families[], char *out, size_t size)
{
	snprintf(out, size, "%s", l->name);
	for (const char **h = hist_families; *h; h++) {
		size_t n = strlen(*h);
		if (strncmp(l->name, *h, n) == 0 &&
		    (!strcmp(l->name + n, "_bucket") || !strcmp(l->name + n, "_sum") ||
		     !strcmp(l->name + n, "_count")))
			snprintf(out, size, "%s", *h);
	}
}

/* Every family: one TYPE (and at most one HELP), both before its samples, its samples all in
 * one run. */
static void check_families(const struct expo *e)
{
	const char *hist[] = { "ember_invocation_duration_seconds", "ember_init_duration_seconds",
			       NULL };
	char seen[64][128], cur[128] = "";
	size_t nseen = 0;

	for (size_t i = 0; i < e->n; i++) {
		const struct line *l = &e->l[i];
		char fam[128];

		if (l->kind == L_SAMPLE)
			family_of(l, hist, fam, sizeof(fam));
		else
			snprintf(fam, sizeof(fam), "%s", l->name);
		if (strcmp(fam, cur) != 0) {
			for (size_t j = 0; j < nseen; j++)
				cr_assert_str_neq(seen[j], fam, "family %s appears in two places", fam);
			cr_assert_lt(nseen, 64);
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", fam);
			snprintf(cur, sizeof(cur), "%s", fam);
			/* a family starts with its HELP (optional) and TYPE */
			cr_assert(l->kind != L_SAMPLE, "family %s has samples before its TYPE", fam);
			if (l->kind == L_HELP) {
				cr_assert_lt(i + 1, e->n);
				cr_assert_eq(e->l[i + 1].kind, L_TYPE, "HELP %s not followed by TYPE",
					     fam);
				cr_assert_str_eq(e->l[i + 1].name, fam);
			}
		} else if (l->kind == L_TYPE) {
			cr_assert(i > 0 && e->l[i - 1].kind == L_HELP, "second TYPE for %s", fam);
		} else {
			cr_assert_eq(l->kind, L_SAMPLE, "second HELP for %s", fam);
		}
	}
}

static const char *type_of(const struct expo *e, const char *fam)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->l[i].kind == L_TYPE && strcmp(e->l[i].name, fam) == 0)
			return e->l[i].text;
	return NULL;
}

static char *render(struct em_metrics *m, const struct em_metrics_gauge *g, size_t n,
		    struct expo *e)
{
	char *text = em_metrics_render(m, g, n);

	cr_assert_not_null(text);
	parse(text, e);
	check_families(e);
	return text;
}

Test(metrics, counters_exact)
{
	struct em_metrics *m = em_metrics_new();
	struct expo e;
	char *text;

	em_metrics_invocation(m, "f", "cold", "ok", 0.120, 0.080, 121, 0.05);
	em_metrics_invocation(m, "f", "warm", "ok", 0.002, 0, 3, 0.001);
	em_metrics_invocation(m, "f", "warm", "ok", 0.003, 0, 4, 0.002);
	em_metrics_invocation(m, "f", "warm", "error", 0.004, 0, 5, 0.003);
	em_metrics_invocation(m, "g", "warm", "timeout", 3.0, 0, 3000, 0.1);
	text = render(m, NULL, 0, &e);

	cr_assert_str_eq(type_of(&e, "ember_invocations_total"), "counter");
	cr_assert_str_eq(type_of(&e, "ember_billed_milliseconds_total"), "counter");
	cr_assert_str_eq(type_of(&e, "ember_cpu_seconds_total"), "counter");
	cr_assert_str_eq(type_of(&e, "ember_invocation_duration_seconds"), "histogram");
	cr_assert_str_eq(type_of(&e, "ember_init_duration_seconds"), "histogram");

	cr_assert_eq(value(&e, "ember_invocations_total", 3, "function", "f", "start", "cold",
			   "outcome", "ok"), 1);
	cr_assert_eq(value(&e, "ember_invocations_total", 3, "function", "f", "start", "warm",
			   "outcome", "ok"), 2);
	cr_assert_eq(value(&e, "ember_invocations_total", 3, "function", "f", "start", "warm",
			   "outcome", "error"), 1);
	cr_assert_eq(value(&e, "ember_invocations_total", 3, "function", "g", "start", "warm",
			   "outcome", "timeout"), 1);
	cr_assert_eq(count_samples(&e, "ember_invocations_total"), 4);
	cr_assert_eq(value(&e, "ember_billed_milliseconds_total", 1, "function", "f"), 133);
	cr_assert_eq(value(&e, "ember_billed_milliseconds_total", 1, "function", "g"), 3000);
	/* the sum printed so that it reads back as the same double */
	cr_assert_eq(value(&e, "ember_cpu_seconds_total", 1, "function", "f"),
		     0.05 + 0.001 + 0.002 + 0.003);
	cr_assert(strstr(text, "ember_cpu_seconds_total{function=\"g\"} 0.1\n"), "%s", text);
	/* init only for the cold start */
	cr_assert_eq(value(&e, "ember_init_duration_seconds_count", 1, "function", "f"), 1);
	cr_assert_eq(value(&e, "ember_init_duration_seconds_sum", 1, "function", "f"), 0.08);
	cr_assert_eq(count_samples(&e, "ember_init_duration_seconds_count"), 1);
	free(text);
	free(e.l);
	em_metrics_free(m);
}

Test(metrics, histogram_buckets_cumulative)
{
	static const char *const le[] = { "0.0001", "0.00025", "0.0005", "0.001", "0.0025",
					  "0.005",  "0.01",    "0.025",  "0.05",  "0.1",
					  "0.25",   "0.5",     "1",      "2.5",   "5",
					  "10",     "+Inf" };
	/* one observation on a bound (le is inclusive), one just above, one beyond the last */
	static const double obs[] = { 0.00005, 0.0001, 0.00011, 0.003, 0.003, 0.7, 10, 42 };
	static const double want[] = { 2, 3, 3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 7, 8 };
	struct em_metrics *m = em_metrics_new();
	struct expo e;
	double sum = 0, prev = 0;
	char *text;
	size_t idx = 0;

	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
		em_metrics_invocation(m, "h", "warm", "ok", obs[i], 0, 1, 0);
		sum += obs[i];
	}
	text = render(m, NULL, 0, &e);
	cr_assert_eq(count_samples(&e, "ember_invocation_duration_seconds_bucket"), 17);
	for (size_t i = 0; i < e.n; i++) {
		const struct line *l = &e.l[i];

		if (l->kind != L_SAMPLE || strcmp(l->name, "ember_invocation_duration_seconds_bucket"))
			continue;
		/* in order of le, the le label last, each count at least the one before */
		cr_assert_str_eq(l->lk[l->nl - 1], "le");
		cr_assert_str_eq(l->lv[l->nl - 1], le[idx], "bucket %zu", idx);
		cr_assert_eq(l->value, want[idx], "le=%s: %g, want %g", le[idx], l->value, want[idx]);
		cr_assert_geq(l->value, prev);
		prev = l->value;
		idx++;
	}
	cr_assert_eq(value(&e, "ember_invocation_duration_seconds_count", 2, "function", "h",
			   "start", "warm"), 8);
	cr_assert_eq(value(&e, "ember_invocation_duration_seconds_sum", 2, "function", "h",
			   "start", "warm"), sum);
	/* no init histogram without an init */
	cr_assert_null(type_of(&e, "ember_init_duration_seconds"));
	free(text);
	free(e.l);
	em_metrics_free(m);
}

Test(metrics, label_values_escaped)
{
	struct em_metrics *m = em_metrics_new();
	const char *nasty = "a\\b\"c\nd";
	struct expo e;
	char *text;

	em_metrics_invocation(m, nasty, "warm", "ok", 0.01, 0, 10, 0.01);
	text = render(m, NULL, 0, &e);
	cr_assert(strstr(text, "ember_billed_milliseconds_total{function=\"a\\\\b\\\"c\\nd\"} 10\n"),
		  "%s", text);
	/* and it parses back to the raw value */
	cr_assert_eq(value(&e, "ember_billed_milliseconds_total", 1, "function", nasty), 10);
	cr_assert_eq(value(&e, "ember_invocations_total", 3, "function", nasty, "start", "warm",
			   "outcome", "ok"), 1);
	free(text);
	free(e.l);
	em_metrics_free(m);
}

Test(metrics, gauges_grouped_help_type_once)
{
	struct em_metrics *m = em_metrics_new();
	const struct em_metrics_gauge g[] = {
		{ "ember_instances", "Instances by state.", "function=\"f\",state=\"idle\"", 2 },
		{ "ember_capacity_mb", "Memory for instances.\nIn MB, with a \\.", NULL, 4096 },
		{ "ember_instances", NULL, "function=\"f\",state=\"busy\"", 1 },
		{ "ember_instances", "Instances by state.", "function=\"g\",state=\"idle\"", 0 },
		{ "ember_ratio", "A fraction.", NULL, 0.25 },
	};
	struct expo e;
	char *text;

	em_metrics_invocation(m, "f", "warm", "ok", 0.01, 0, 10, 0.01);
	text = render(m, g, sizeof(g) / sizeof(g[0]), &e);
	cr_assert_str_eq(type_of(&e, "ember_instances"), "gauge");
	cr_assert_str_eq(type_of(&e, "ember_capacity_mb"), "gauge");
	cr_assert_eq(count_samples(&e, "ember_instances"), 3);
	cr_assert_eq(value(&e, "ember_instances", 2, "function", "f", "state", "idle"), 2);
	cr_assert_eq(value(&e, "ember_instances", 2, "function", "f", "state", "busy"), 1);
	cr_assert_eq(value(&e, "ember_instances", 2, "function", "g", "state", "idle"), 0);
	cr_assert_eq(value(&e, "ember_capacity_mb", 0), 4096);
	cr_assert_eq(value(&e, "ember_ratio", 0), 0.25);
	/* HELP text escaped (\\ and \n), read back whole */
	for (size_t i = 0; i < e.n; i++)
		if (e.l[i].kind == L_HELP && !strcmp(e.l[i].name, "ember_capacity_mb"))
			cr_assert_str_eq(e.l[i].text, "Memory for instances.\nIn MB, with a \\.");
	/* samples of one gauge in the order given: idle f, busy f, idle g */
	const char *p = strstr(text, "ember_instances{function=\"f\",state=\"idle\"} 2\n"
				     "ember_instances{function=\"f\",state=\"busy\"} 1\n"
				     "ember_instances{function=\"g\",state=\"idle\"} 0\n");
	cr_assert_not_null(p, "%s", text);
	/* gauges come after the counters and histograms */
	cr_assert_gt(p, strstr(text, "ember_invocations_total"));
	free(text);
	free(e.l);
	em_metrics_free(m);
}

Test(metrics, empty_and_no_gauges)
{
	struct em_metrics *m = em_metrics_new();
	char *text = em_metrics_render(m, NULL, 0);

	cr_assert_not_null(text);
	cr_assert_str_eq(text, "");
	free(text);
	em_metrics_free(m);
}

Test(metrics, bad_samples_count_as_zero)
{
	struct em_metrics *m = em_metrics_new();
	struct expo e;
	char *text;

	em_metrics_invocation(m, "f", "warm", "ok", NAN, NAN, 1, -1);
	text = render(m, NULL, 0, &e);
	cr_assert_eq(value(&e, "ember_invocation_duration_seconds_sum", 2, "function", "f", "start",
			   "warm"), 0);
	cr_assert_eq(value(&e, "ember_invocation_duration_seconds_count", 2, "function", "f",
			   "start", "warm"), 1);
	cr_assert_eq(value(&e, "ember_cpu_seconds_total", 1, "function", "f"), 0);
	free(text);
	free(e.l);
	em_metrics_free(m);
}

struct worker {
	struct em_metrics *m;
	int t;
};

static void *hammer(void *p)
{
	struct worker *w = p;
	char fn[16];

	for (int i = 0; i < 5000; i++) {
		snprintf(fn, sizeof(fn), "fn%d", i % 50); /* many series: the table grows meanwhile */
		em_metrics_invocation(w->m, fn, w->t % 2 ? "warm" : "cold", "ok", 0.001, 0, 1, 0);
	}
	return NULL;
}

static void *scrape(void *p)
{
	for (int i = 0; i < 50; i++)
		free(em_metrics_render(p, NULL, 0));
	return NULL;
}

Test(metrics, updates_from_threads)
{
	struct em_metrics *m = em_metrics_new();
	struct worker w[4];
	pthread_t th[4], sc;
	struct expo e;
	char *text, name[16];
	double total = 0;

	cr_assert_eq(pthread_create(&sc, NULL, scrape, m), 0);
	for (int t = 0; t < 4; t++) {
		w[t] = (struct worker){ m, t };
		cr_assert_eq(pthread_create(&th[t], NULL, hammer, &w[t]), 0);
	}
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	pthread_join(sc, NULL);
	text = render(m, NULL, 0, &e);
	for (int f = 0; f < 50; f++) {
		snprintf(name, sizeof(name), "fn%d", f);
		cr_assert_eq(value(&e, "ember_billed_milliseconds_total", 1, "function", name), 400);
		total += value(&e, "ember_invocations_total", 3, "function", name, "start", "warm",
			       "outcome", "ok");
	}
	cr_assert_eq(total, 10000);
	cr_assert_eq(count_samples(&e, "ember_invocations_total"), 100);
	free(text);
	free(e.l);
	em_metrics_free(m);
}
