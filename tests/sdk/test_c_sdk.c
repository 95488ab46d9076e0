/* tests/sdk/test_c_sdk.c — the C SDK (sdk/c/ember_fn.c) as the host meets it: the real example
 * binaries (probe, hello-c, init-heavy-c, spin from their built bundles) over a socketpair,
 * frame by frame: READY, INVOKE/RESULT/ERROR, INIT_ERROR, the exit statuses, protocol errors,
 * the ready point, output ordering, and the one-shot mode. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inst.h"

#define ENV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define META "{\"requestId\":\"r-1\",\"function\":\"probe\",\"version\":1,\"memoryMb\":128}"

static struct inst in;
static char buf[1 << 16];

TestSuite(c_sdk, .fini = inst_reap_all, .timeout = 60);

static void start(const char *example, const char *const *env)
{
	const char *argv[] = { t_example_bin(example), NULL };

	inst_spawn(&in, argv, env, NULL, true);
}

/* INVOKE body (a C string) and expect the frame type; returns the payload. */
static char *call(uint64_t id, const char *body, uint16_t type)
{
	cr_assert_eq(inst_invoke(&in, id, META, body, strlen(body)), 0);
	return inst_expect(&in, type, id);
}

/* Wait for the exit status code; buf gets what the instance wrote to stderr. */
static void expect_exit(int code)
{
	int st = inst_wait(&in, INST_TIMEOUT_MS);

	inst_read_now(in.err, buf, sizeof(buf));
	cr_assert_eq(exit_code(st), code, "status %#x (signal %d), expected exit %d; stderr: %s", st,
		     term_signal(st), code, buf);
}

Test(c_sdk, ready_names_the_sdk_and_the_pid)
{
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	inst_close(&in);
	expect_exit(0);
}

Test(c_sdk, invocations_answer_in_order_with_their_ids)
{
	start("hello-c", NULL);
	inst_expect_ready(&in, "c");
	for (uint64_t id = 1; id <= 3; id++) {
		char body[32], want[64];

		snprintf(body, sizeof(body), "world %llu", (unsigned long long)id);
		snprintf(want, sizeof(want), "hello, %s", body);
		char *p = call(id * 1000, body, EMBER_RESULT);
		cr_assert_str_eq(p, want);
		free(p);
	}
	/* an empty body is a valid request */
	cr_assert_eq(inst_invoke(&in, 9, META, "", 0), 0);
	char *p = inst_expect(&in, EMBER_RESULT, 9);
	cr_assert_str_eq(p, "hello, world");
	free(p);
	inst_close(&in);
	expect_exit(0);
}

Test(c_sdk, a_six_megabyte_body_round_trips_byte_for_byte)
{
	size_t len = 6u << 20;
	char *body = malloc(len + 5);
	struct frame f;

	cr_assert_not_null(body);
	memcpy(body, "echo ", 5);
	cr_assert_eq(getrandom(body + 5, len, 0), (ssize_t)len); /* NULs and all */
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	cr_assert_eq(inst_invoke(&in, 42, META, body, len + 5), 0);
	cr_assert_eq(inst_recv(&in, &f, INST_TIMEOUT_MS), 1);
	cr_assert_eq(f.h.type, EMBER_RESULT, "type %u: %.200s", f.h.type, f.payload);
	cr_assert_eq(f.h.id, 42);
	cr_assert_eq(f.h.len, len);
	cr_assert_eq(memcmp(f.payload, body + 5, len), 0);
	frame_free(&f);
	/* and the instance serves on after the large one (its buffer was given back, not broken) */
	char *p = call(43, "echo small", EMBER_RESULT);
	cr_assert_str_eq(p, "small");
	free(p);
	free(body);
	inst_close(&in);
	expect_exit(0);
}

Test(c_sdk, metadata_reaches_the_handler)
{
	struct timespec now;
	json_error_t jerr;

	clock_gettime(CLOCK_REALTIME, &now);
	long long deadline = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 + 5000;
	char meta[512];
	/* escapes and non-ASCII in strings, unknown keys of every JSON type, any key order */
	snprintf(meta, sizeof(meta),
		 "{\"extra\":{\"a\":[1,2.5e3,{\"b\":null}],\"t\":true,\"f\":false}, \"deadlineMs\":%lld,"
		 "\"memoryMb\":1769,\"function\":\"f\\u00e9\\\"x\\\\\",\"version\":12,"
		 "\"requestId\":\"9b1d-\\ud83d\\ude00\",\"more\":\"\\n\"}", deadline);
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	cr_assert_eq(inst_invoke(&in, 77, meta, "ctx", 3), 0);
	char *p = inst_expect(&in, EMBER_RESULT, 77);
	json_t *j = json_loads(p, 0, &jerr);
	cr_assert_not_null(j, "%s: %s", p, jerr.text);
	cr_assert_eq(json_integer_value(json_object_get(j, "id")), 77);
	cr_assert_str_eq(json_string_value(json_object_get(j, "requestId")), "9b1d-\xf0\x9f\x98\x80");
	cr_assert_str_eq(json_string_value(json_object_get(j, "function")), "f\xc3\xa9\"x\\");
	cr_assert_eq(json_integer_value(json_object_get(j, "version")), 12);
	cr_assert_eq(json_integer_value(json_object_get(j, "memoryMb")), 1769);
	cr_assert_eq(json_integer_value(json_object_get(j, "deadlineMs")), deadline);
	json_int_t rem = json_integer_value(json_object_get(j, "remainingMs"));
	cr_assert(rem > 0 && rem <= 5000, "remainingMs %lld", (long long)rem);
	cr_assert_eq(json_integer_value(json_object_get(j, "bodyLen")), 3);
	json_decref(j);
	free(p);

	/* absent keys: empty strings and zeros, no deadline */
	cr_assert_eq(inst_invoke(&in, 78, "{}", "ctx", 3), 0);
	p = inst_expect(&in, EMBER_RESULT, 78);
	cr_assert(strstr(p, "\"requestId\":\"\",\"function\":\"\",\"version\":0,\"memoryMb\":0,"
			    "\"deadlineMs\":0,\"remainingMs\":9223372036854775807"), "%s", p);
	free(p);
	inst_close(&in);
	expect_exit(0);
}

Test(c_sdk, a_handler_error_is_an_error_frame_and_the_instance_serves_on)
{
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	char *p = call(5, "error the \"disk\" is full", EMBER_ERROR);
	cr_assert_str_eq(p, "{\"errorType\":\"ProbeError\",\"errorMessage\":"
			    "\"the \\\"disk\\\" is full\"}");
	free(p);
	/* a non-zero return without ember_fn_error: the SDK names it, and drops the output */
	p = call(6, "return 3", EMBER_ERROR);
	cr_assert_str_eq(p, "{\"errorType\":\"HandlerError\",\"errorMessage\":\"handler returned 3\"}");
	free(p);
	p = call(7, "nosuch", EMBER_ERROR);
	cr_assert_str_eq(p, "{\"errorType\":\"UnknownCommand\",\"errorMessage\":"
			    "\"unknown command \\\"nosuch\\\" (try help)\"}");
	free(p);
	/* invalid UTF-8 in a message becomes U+FFFD: the host's JSON parser must accept it */
	p = call(8, "error bad \xff byte", EMBER_ERROR);
	cr_assert_str_eq(p, "{\"errorType\":\"ProbeError\",\"errorMessage\":\"bad \\ufffd byte\"}");
	free(p);
	p = call(9, "echo still here", EMBER_RESULT);
	cr_assert_str_eq(p, "still here");
	free(p);
	inst_close(&in);
	expect_exit(0);
}

Test(c_sdk, a_response_over_the_frame_limit_is_a_runtime_error)
{
	char body[64];

	snprintf(body, sizeof(body), "big %u", EMBER_PROTO_MAX_PAYLOAD + 1);
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	char *p = call(1, body, EMBER_ERROR);
	cr_assert_str_eq(p, "{\"errorType\":\"Runtime.ResponseError\",\"errorMessage\":"
			    "\"could not build the response: Argument list too long\"}");
	free(p);
	p = call(2, "big 3", EMBER_RESULT);
	cr_assert_str_eq(p, "xxx");
	free(p);
	inst_close(&in);
	expect_exit(0);
}

Test(c_sdk, init_error_is_sent_and_the_instance_exits_1)
{
	start("probe", ENV("PROBE_INIT_FAIL=no table: ENOENT"));
	char *p = inst_expect(&in, EMBER_INIT_ERROR, 0);
	cr_assert_str_eq(p, "{\"errorType\":\"ProbeInitError\",\"errorMessage\":\"no table: ENOENT\"}");
	free(p);
	expect_exit(1);
	struct frame f;
	cr_assert_eq(inst_recv(&in, &f, 1000), 0, "nothing after INIT_ERROR");
}

Test(c_sdk, init_output_is_flushed_before_ready)
{
	start("probe", ENV("PROBE_INIT_LOG=init says hi"));
	inst_expect_ready(&in, "c");
	inst_read_now(in.out, buf, sizeof(buf));
	cr_assert_str_eq(buf, "init says hi\n");
	inst_read_now(in.err, buf, sizeof(buf));
	cr_assert_str_eq(buf, "init says hi\n");
	inst_close(&in);
	expect_exit(0);
}

Test(c_sdk, death_during_init_sends_nothing)
{
	struct frame f;

	start("probe", ENV("PROBE_INIT_EXIT=7"));
	cr_assert_eq(inst_recv(&in, &f, INST_TIMEOUT_MS), 0, "EOF, no frame");
	expect_exit(7);
}

Test(c_sdk, eof_on_the_channel_exits_0)
{
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	char *p = call(1, "echo x", EMBER_RESULT);
	free(p);
	inst_close(&in);
	expect_exit(0);
}

/* The host's side of a protocol error: the instance says why on stderr and exits 2, at once. */
static void expect_protocol_error(const char *why)
{
	expect_exit(2);
	cr_assert(strstr(buf, "ember_fn: protocol error: "), "stderr: %s", buf);
	cr_assert(strstr(buf, why), "stderr: %s", buf);
}

Test(c_sdk, a_bad_magic_exits_2)
{
	struct ember_frame_hdr h = { .magic = 0x31424d46, .version = 1, .type = EMBER_INVOKE };

	start("probe", NULL);
	inst_expect_ready(&in, "c");
	cr_assert_eq(inst_send_raw(&in, &h, sizeof(h)), 0);
	expect_protocol_error("bad frame magic 0x31424d46");
}

Test(c_sdk, a_frame_over_the_limit_exits_2_without_waiting_for_its_payload)
{
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	/* the header alone: an instance that tried to read 64 MiB + 1 would hang here */
	struct ember_frame_hdr h = { .magic = EMBER_PROTO_MAGIC, .version = 1, .type = EMBER_INVOKE,
				     .id = 1, .len = EMBER_PROTO_MAX_PAYLOAD + 1ull };
	cr_assert_eq(inst_send_raw(&in, &h, sizeof(h)), 0);
	expect_protocol_error("frame of 67108865 bytes is over the 67108864 byte limit");
}

Test(c_sdk, an_unknown_version_exits_2)
{
	struct ember_frame_hdr h = { .magic = EMBER_PROTO_MAGIC, .version = 2, .type = EMBER_INVOKE };

	start("probe", NULL);
	inst_expect_ready(&in, "c");
	cr_assert_eq(inst_send_raw(&in, &h, sizeof(h)), 0);
	expect_protocol_error("unsupported protocol version 2");
}

Test(c_sdk, a_frame_type_the_instance_does_not_expect_exits_2)
{
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	/* SNAPSHOT_DONE without a SNAPSHOT: only the wait for a dump reads it (type 18, once
	 * reserved and used here, is SNAPSHOT now: tests/sdk/test_snap_sdk.c) */
	cr_assert_eq(inst_send(&in, EMBER_SNAPSHOT_DONE, 0, NULL, 0), 0);
	expect_protocol_error("unexpected frame type 20");
}

Test(c_sdk, a_metadata_length_past_the_frame_exits_2)
{
	uint32_t bad[2] = { 100, 0 };

	start("probe", NULL);
	inst_expect_ready(&in, "c");
	cr_assert_eq(inst_send(&in, EMBER_INVOKE, 3, bad, sizeof(bad)), 0);
	expect_protocol_error("INVOKE metadata length 100 exceeds the 8 byte frame");
}

Test(c_sdk, metadata_that_is_not_a_json_object_exits_2)
{
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	cr_assert_eq(inst_invoke(&in, 4, "{\"requestId\":\"r\",}", "pid", 3), 0);
	expect_protocol_error("INVOKE 4: metadata is not a JSON object");
}

Test(c_sdk, a_channel_ending_inside_a_frame_exits_2)
{
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	struct ember_frame_hdr h = { .magic = EMBER_PROTO_MAGIC, .version = 1, .type = EMBER_INVOKE,
				     .id = 1, .len = 100 };
	cr_assert_eq(inst_send_raw(&in, &h, sizeof(h)), 0);
	cr_assert_eq(inst_send_raw(&in, "\x02\0\0\0{}", 6), 0);
	inst_close(&in);
	expect_protocol_error("the channel ended inside a frame (6 of 100 bytes)");
}

Test(c_sdk, handler_output_is_in_the_pipes_before_the_result_arrives)
{
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	char *p = call(1, "log line one", EMBER_RESULT);
	cr_assert_str_eq(p, "logged");
	free(p);
	/* no waiting: stdout is a pipe, fully buffered in the function; only the SDK's flush before
	 * RESULT puts the line there by now */
	inst_read_now(in.out, buf, sizeof(buf));
	cr_assert_str_eq(buf, "line one\n");
	inst_read_now(in.err, buf, sizeof(buf));
	cr_assert_str_eq(buf, "line one\n");
	inst_close(&in);
	expect_exit(0);
}

/* The ready point (PROTOCOL.md): one thread, blocked in read(2) (syscall 0) on the channel. */
Test(c_sdk, between_invocations_it_is_one_thread_blocked_reading_the_channel)
{
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	assert_blocked_reading_the_channel(in.pid, ENV("0"));
	char *p = call(1, "echo x", EMBER_RESULT);
	free(p);
	assert_blocked_reading_the_channel(in.pid, ENV("0"));
	inst_close(&in);
	expect_exit(0);
}

Test(c_sdk, the_sdk_takes_the_channel_from_the_environment_and_from_exec)
{
	char path[64], fdinfo[512];

	start("probe", NULL);
	inst_expect_ready(&in, "c");
	char *p = call(1, "env EMBER_CHANNEL_FD", EMBER_ERROR);
	cr_assert_str_eq(p, "{\"errorType\":\"EnvNotSet\",\"errorMessage\":"
			    "\"EMBER_CHANNEL_FD is not set\"}");
	free(p);
	p = call(2, "env PATH", EMBER_RESULT);
	cr_assert_str_eq(p, "/usr/bin:/bin");
	free(p);
	/* fd 3 is close-on-exec (O_CLOEXEC is 02000000 in fdinfo's octal flags) */
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/3", (int)in.pid);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	size_t n = fread(fdinfo, 1, sizeof(fdinfo) - 1, f);
	fdinfo[n] = '\0';
	fclose(f);
	unsigned long flags = 0;
	char *fl = strstr(fdinfo, "flags:");
	cr_assert_not_null(fl);
	flags = strtoul(fl + 6, NULL, 8);
	cr_assert(flags & 02000000, "fd 3 flags %lo", flags);
	inst_close(&in);
	expect_exit(0);
}

Test(c_sdk, a_crash_in_the_handler_ends_the_instance_by_its_signal)
{
	struct frame f;

	start("probe", NULL);
	inst_expect_ready(&in, "c");
	cr_assert_eq(inst_invoke(&in, 1, META, "crash", 5), 0);
	cr_assert_eq(inst_recv(&in, &f, INST_TIMEOUT_MS), 0, "EOF, no answer");
	int st = inst_wait(&in, INST_TIMEOUT_MS);
	cr_assert_eq(term_signal(st), SIGSEGV, "status %#x", st);
}

Test(c_sdk, exit_in_the_handler_is_the_instance_exit_status)
{
	struct frame f;

	start("probe", NULL);
	inst_expect_ready(&in, "c");
	cr_assert_eq(inst_invoke(&in, 1, META, "exit 42", 7), 0);
	cr_assert_eq(inst_recv(&in, &f, INST_TIMEOUT_MS), 0, "EOF, no answer");
	expect_exit(42);
}

Test(c_sdk, fork_reports_and_reaps_its_children)
{
	start("probe", NULL);
	inst_expect_ready(&in, "c");
	char *p = call(1, "fork 5", EMBER_RESULT);
	cr_assert_str_eq(p, "{\"requested\":5,\"forked\":5,\"error\":null}");
	free(p);
	/* the children are gone: the instance is one process again */
	snprintf(buf, sizeof(buf), "/proc/%d/task/%d/children", (int)in.pid, (int)in.pid);
	FILE *f = fopen(buf, "r");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	cr_assert_eq(n, 0, "children left: %.*s", (int)n, buf);
	inst_close(&in);
	expect_exit(0);
}

/* entry i of init-heavy-c's table, computed here independently */
static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

Test(c_sdk, init_heavy_answers_from_the_table_its_init_built)
{
	size_t n = (4u << 20) / 8; /* TABLE_MB=4 */
	uint64_t sum = 0;
	char want[128];

	start("init-heavy-c", ENV("TABLE_MB=4"));
	inst_expect_ready(&in, "c");
	char *p = call(1, "0 1 2 524288 1000000", EMBER_RESULT);
	sum = splitmix64(0) + splitmix64(1) + splitmix64(2) + splitmix64(524288 % n) +
	      splitmix64(1000000 % n);
	snprintf(want, sizeof(want), "{\"tableMb\":4,\"entries\":5,\"checksum\":\"%016llx\"}",
		 (unsigned long long)sum);
	cr_assert_str_eq(p, want);
	free(p);
	sum = 0;
	for (size_t i = 0; i < n; i += 512)
		sum += splitmix64(i);
	p = call(2, "", EMBER_RESULT);
	snprintf(want, sizeof(want), "{\"tableMb\":4,\"entries\":1024,\"checksum\":\"%016llx\"}",
		 (unsigned long long)sum);
	cr_assert_str_eq(p, want);
	free(p);
	p = call(3, "12 x", EMBER_ERROR);
	cr_assert(strstr(p, "\"errorType\":\"BadRequest\""), "%s", p);
	free(p);
	inst_close(&in);
	expect_exit(0); /* buf: its stderr */
	cr_assert(strstr(buf, "init-heavy-c: built a 4 MB table in "), "stderr: %s", buf);
}

Test(c_sdk, init_heavy_refuses_a_bad_table_size_at_init)
{
	start("init-heavy-c", ENV("TABLE_MB=lots"));
	char *p = inst_expect(&in, EMBER_INIT_ERROR, 0);
	cr_assert_str_eq(p, "{\"errorType\":\"Config\",\"errorMessage\":"
			    "\"TABLE_MB=lots is not a size from 1 to 65536 MB\"}");
	free(p);
	expect_exit(1);
}

Test(c_sdk, spin_burns_the_cpu_time_it_was_asked_for)
{
	start("spin", NULL);
	inst_expect_ready(&in, "c");
	char *p = call(1, "60", EMBER_RESULT);
	double cpu = 0, wall = 0;
	cr_assert_eq(sscanf(p, "{\"spinMs\":60,\"cpuMs\":%lf,\"wallMs\":%lf}", &cpu, &wall), 2, "%s", p);
	cr_assert(cpu >= 60 && cpu < 80, "cpu %f ms", cpu);
	cr_assert_geq(wall, cpu - 1);
	free(p);
	inst_close(&in);
	expect_exit(0);
}

/* ---- one-shot mode: no EMBER_CHANNEL_FD; the body on stdin, the answer on stdout */

static void oneshot(const char *example, const char *const *env, const char *body, int code,
		    char *out, char *err)
{
	const char *argv[] = { t_example_bin(example), NULL };

	inst_spawn(&in, argv, env, NULL, false);
	cr_assert_eq(inst_send_raw(&in, body, strlen(body)), 0);
	inst_close(&in);
	int st = inst_wait(&in, INST_TIMEOUT_MS);
	inst_read_all(in.out, out, 4096);
	inst_read_all(in.err, err, 4096);
	cr_assert_eq(exit_code(st), code, "status %#x; stderr: %s", st, err);
}

Test(c_sdk, one_shot_reads_stdin_and_answers_on_stdout)
{
	char out[4096], err[4096];

	oneshot("hello-c", NULL, "world", 0, out, err);
	cr_assert_str_eq(out, "hello, world");
	cr_assert_str_eq(err, "");
	oneshot("probe", NULL, "ctx", 0, out, err);
	cr_assert_str_eq(out, "{\"id\":0,\"requestId\":\"oneshot\",\"function\":\"probe\",\"version\":0,"
			      "\"memoryMb\":0,\"deadlineMs\":0,\"remainingMs\":9223372036854775807,"
			      "\"bodyLen\":3}");
}

Test(c_sdk, one_shot_failures_exit_1_with_the_error_json_on_stderr)
{
	char out[4096], err[4096];

	oneshot("probe", NULL, "error it broke", 1, out, err);
	cr_assert_str_eq(out, "");
	cr_assert_str_eq(err, "{\"errorType\":\"ProbeError\",\"errorMessage\":\"it broke\"}\n");
	oneshot("probe", ENV("PROBE_INIT_FAIL=bad"), "pid", 1, out, err);
	cr_assert_str_eq(out, "");
	cr_assert_str_eq(err, "{\"errorType\":\"ProbeInitError\",\"errorMessage\":\"bad\"}\n");
}
