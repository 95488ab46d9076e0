/* runtime/host/metrics.h — the host's Prometheus metrics (`GET /metrics`, text format 0.0.4):
 * counters and latency histograms updated on every invocation, gauges supplied at render time.
 * Safe from any thread (one mutex; an update is a few additions). */
#ifndef EMBER_RUNTIME_HOST_METRICS_H
#define EMBER_RUNTIME_HOST_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct em_metrics;

struct em_metrics *em_metrics_new(void);
void em_metrics_free(struct em_metrics *m);

/* One finished invocation: ember_invocations_total{function,start,outcome},
 * ember_invocation_duration_seconds histogram{function,start} (end-to-end latency in the host),
 * ember_billed_milliseconds_total{function}, ember_cpu_seconds_total{function},
 * ember_init_duration_seconds histogram{function} when init_s > 0. */
void em_metrics_invocation(struct em_metrics *m, const char *function, const char *start,
			   const char *outcome, double latency_s, double init_s, uint64_t billed_ms,
			   double cpu_s);

/* A gauge sample the host knows at render time: name{labels} value. labels: already formatted
 * `key="value",...` (escaped) or NULL. */
struct em_metrics_gauge {
	const char *name;            /* e.g. "ember_instances" */
	const char *help;
	const char *labels;
	double value;
};

/* The text exposition: counters, histograms, then the gauges (grouped by name, HELP/TYPE once). */
char *em_metrics_render(struct em_metrics *m, const struct em_metrics_gauge *g, size_t n);

#endif
