/* examples/spin — burns CPU for the number of milliseconds in its payload (default 100), then
 * answers {"spinMs":N,"cpuMs":C,"wallMs":W}. The loop counts this thread's CPU time, not the
 * clock: under a CPU quota the wall time grows while the CPU time stays N, which is what the
 * billing tests compare against the BPF figures. */
#include "ember_fn.h"

#include <stdlib.h>
#include <time.h>

static double ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int handler(const struct ember_fn_request *req, struct ember_fn_response *resp)
{
	char *end;
	long n = req->len ? strtol(req->body, &end, 10) : 100;

	if (req->len && (end == req->body || n < 0 || n > 900000))
		return ember_fn_error(resp, "BadRequest", "payload must be a number of ms, 0-900000");
	double cpu0 = ms(CLOCK_THREAD_CPUTIME_ID), wall0 = ms(CLOCK_MONOTONIC);
	volatile unsigned long sink = 0;
	while (ms(CLOCK_THREAD_CPUTIME_ID) - cpu0 < (double)n)
		for (int i = 0; i < 10000; i++)
			sink += (unsigned long)i;
	return ember_fn_printf(resp, "{\"spinMs\":%ld,\"cpuMs\":%.3f,\"wallMs\":%.3f}", n,
			       ms(CLOCK_THREAD_CPUTIME_ID) - cpu0, ms(CLOCK_MONOTONIC) - wall0);
}

int main(int argc, char **argv)
{
	static const struct ember_fn fn = { .handler = handler };

	return ember_fn_main(argc, argv, &fn);
}
