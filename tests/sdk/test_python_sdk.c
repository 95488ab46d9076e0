/* tests/sdk/test_python_sdk.c — the Python SDK (sdk/python/ember_fn.py, from the source tree)
 * under the real /usr/bin/python3, driven over a socketpair as the host drives it, with the
 * handlers of tests/sdk/py/: READY, results of every return type, the context, exceptions,
 * import failures, exit statuses, protocol errors, the ready point, output ordering, one-shot. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "inst.h"

#define ENV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define META "{\"requestId\":\"r-1\",\"function\":\"pyfn\",\"version\":3,\"memoryMb\":256}"

static struct inst in;
static char buf[1 << 16];

TestSuite(python_sdk, .fini = inst_reap_all, .timeout = 60);

static void start(const char *handler)
{
	inst_spawn_py(&in, handler, NULL, true);
}

static char *call(uint64_t id, const char *body, uint16_t type)
{
	cr_assert_eq(inst_invoke(&in, id, META, body, strlen(body)), 0);
	return inst_expect(&in, type, id);
}

static void expect_call(uint64_t id, const char *body, uint16_t type, const char *want)
{
	char *p = call(id, body, type);

	cr_assert_str_eq(p, want);
	free(p);
}

/* Wait for the exit status code; buf gets what the instance wrote to stderr. */
static void expect_exit(int code)
{
	int st = inst_wait(&in, INST_TIMEOUT_MS);

	inst_read_all(in.err, buf, sizeof(buf));
	cr_assert_eq(exit_code(st), code, "status %#x (signal %d), expected exit %d; stderr: %s", st,
		     term_signal(st), code, buf);
}

static void stop(void)
{
	inst_close(&in);
	expect_exit(0);
}

Test(python_sdk, ready_names_the_sdk_and_the_pid)
{
	start("handlers.echo");
	inst_expect_ready(&in, "python");
	stop();
}

Test(python_sdk, return_values_become_the_response)
{
	start("handlers.echo");
	inst_expect_ready(&in, "python");
	expect_call(1, "raw bytes", EMBER_RESULT, "raw bytes");
	stop();

	start("handlers.text");
	inst_expect_ready(&in, "python");
	expect_call(2, "w", EMBER_RESULT, "h\xc3\xa9llo w"); /* str: UTF-8 */
	stop();

	start("handlers.as_dict");
	inst_expect_ready(&in, "python");
	expect_call(3, "b", EMBER_RESULT, "{\"n\":1,\"list\":[1,\"two\",null,true],\"body\":\"b\"}");
	stop();

	start("handlers.none");
	inst_expect_ready(&in, "python");
	expect_call(4, "", EMBER_RESULT, "null");
	stop();
}

Test(python_sdk, a_six_megabyte_body_round_trips_byte_for_byte)
{
	size_t len = 6u << 20;
	char *body = malloc(len);
	struct frame f;

	cr_assert_not_null(body);
	cr_assert_eq(getrandom(body, len, 0), (ssize_t)len);
	start("handlers.echo");
	inst_expect_ready(&in, "python");
	cr_assert_eq(inst_invoke(&in, 8, META, body, len), 0);
	cr_assert_eq(inst_recv(&in, &f, INST_TIMEOUT_MS), 1);
	cr_assert_eq(f.h.type, EMBER_RESULT, "type %u: %.200s", f.h.type, f.payload);
	cr_assert_eq(f.h.id, 8);
	cr_assert_eq(f.h.len, len);
	cr_assert_eq(memcmp(f.payload, body, len), 0);
	frame_free(&f);
	free(body);
	expect_call(9, "small", EMBER_RESULT, "small");
	stop();
}

Test(python_sdk, the_context_carries_the_metadata)
{
	struct timespec now;
	json_error_t jerr;
	char meta[512];

	clock_gettime(CLOCK_REALTIME, &now);
	long long deadline = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 + 3000;
	snprintf(meta, sizeof(meta), "{\"requestId\":\"c0ffee\",\"function\":\"f\\u00e9\",\"version\":7,"
		 "\"memoryMb\":512,\"deadlineMs\":%lld,\"unknown\":[{}]}", deadline);
	start("handlers.context");
	inst_expect_ready(&in, "python");
	cr_assert_eq(inst_invoke(&in, 31, meta, "ev", 2), 0);
	char *p = inst_expect(&in, EMBER_RESULT, 31);
	json_t *j = json_loads(p, 0, &jerr);
	cr_assert_not_null(j, "%s: %s", p, jerr.text);
	cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "bytes");
	cr_assert_str_eq(json_string_value(json_object_get(j, "request_id")), "c0ffee");
	cr_assert_str_eq(json_string_value(json_object_get(j, "aws_request_id")), "c0ffee");
	cr_assert_str_eq(json_string_value(json_object_get(j, "function_name")), "f\xc3\xa9");
	cr_assert_eq(json_integer_value(json_object_get(j, "function_version")), 7);
	cr_assert_eq(json_integer_value(json_object_get(j, "memory_limit_in_mb")), 512);
	cr_assert_eq(json_integer_value(json_object_get(j, "deadline_ms")), deadline);
	cr_assert_float_eq(json_real_value(json_object_get(j, "deadline")), deadline / 1000.0, 1e-3);
	cr_assert_eq(json_integer_value(json_object_get(j, "invoke_id")), 31);
	json_int_t rem = json_integer_value(json_object_get(j, "remaining"));
	cr_assert(rem > 0 && rem <= 3000, "remaining %lld", (long long)rem);
	json_decref(j);
	free(p);

	/* no metadata: empty strings, zeros, no deadline (sys.maxsize) */
	cr_assert_eq(inst_invoke(&in, 32, "{}", "", 0), 0);
	p = inst_expect(&in, EMBER_RESULT, 32);
	cr_assert_str_eq(p, "{\"type\":\"bytes\",\"request_id\":\"\",\"aws_request_id\":\"\","
			    "\"function_name\":\"\",\"function_version\":0,\"memory_limit_in_mb\":0,"
			    "\"deadline_ms\":0,\"deadline\":null,\"invoke_id\":32,"
			    "\"remaining\":9223372036854775807}");
	free(p);
	stop();
}

Test(python_sdk, init_runs_once_and_state_persists_across_invocations)
{
	char want[128];

	start("handlers.state");
	inst_expect_ready(&in, "python");
	for (int i = 1; i <= 3; i++) {
		snprintf(want, sizeof(want), "{\"init_pid\":%d,\"pid\":%d,\"calls\":%d}", (int)in.pid,
			 (int)in.pid, i);
		expect_call((uint64_t)i, "", EMBER_RESULT, want);
	}
	stop();
}

Test(python_sdk, an_exception_is_an_error_frame_named_by_its_class)
{
	start("handlers.fail");
	inst_expect_ready(&in, "python");
	expect_call(1, "k\xc3\xa9y", EMBER_ERROR,
		    "{\"errorType\":\"NotFound\",\"errorMessage\":\"no such key: k\\u00e9y\"}");
	/* the traceback went to stderr, flushed before the answer */
	inst_read_now(in.err, buf, sizeof(buf));
	cr_assert(strstr(buf, "Traceback (most recent call last):"), "stderr: %s", buf);
	cr_assert(strstr(buf, "handlers.NotFound: no such key"), "stderr: %s", buf);
	/* and it serves on */
	expect_call(2, "x", EMBER_ERROR,
		    "{\"errorType\":\"NotFound\",\"errorMessage\":\"no such key: x\"}");
	stop();

	start("handlers.keyerror");
	inst_expect_ready(&in, "python");
	expect_call(3, "", EMBER_ERROR, "{\"errorType\":\"KeyError\",\"errorMessage\":\"'k'\"}");
	stop();

	start("handlers.unserialisable");
	inst_expect_ready(&in, "python");
	char *p = call(4, "", EMBER_ERROR);
	cr_assert(!strncmp(p, "{\"errorType\":\"TypeError\",\"errorMessage\":\"Object of type object "
			      "is not JSON serializable\"}", 200), "%s", p);
	free(p);
	stop();
}

/* An import failure: INIT_ERROR naming the exception's class, then exit 1. */
static void expect_init_error(const char *handler, const char *want)
{
	struct frame f;

	start(handler);
	char *p = inst_expect(&in, EMBER_INIT_ERROR, 0);
	cr_assert_str_eq(p, want);
	free(p);
	cr_assert_eq(inst_recv(&in, &f, INST_TIMEOUT_MS), 0, "nothing after INIT_ERROR");
	expect_exit(1);
}

Test(python_sdk, an_import_failure_is_an_init_error_with_the_exception_type)
{
	expect_init_error("broken_import.handler",
			  "{\"errorType\":\"ModelError\",\"errorMessage\":"
			  "\"cannot load the model: weights.bin is missing\"}");
	cr_assert(strstr(buf, "Traceback"), "stderr: %s", buf);
	inst_read_all(in.out, buf, sizeof(buf));
	cr_assert_str_eq(buf, "loading the model\n");

	expect_init_error("no_such_module.handler",
			  "{\"errorType\":\"ModuleNotFoundError\",\"errorMessage\":"
			  "\"No module named 'no_such_module'\"}");
	expect_init_error("handlers.no_such_function",
			  "{\"errorType\":\"AttributeError\",\"errorMessage\":"
			  "\"module 'handlers' has no function 'no_such_function'\"}");
	expect_init_error("handlers.not_callable",
			  "{\"errorType\":\"TypeError\",\"errorMessage\":"
			  "\"handlers.not_callable is not callable\"}");
	expect_init_error("exits_at_import.handler",
			  "{\"errorType\":\"SystemExit\",\"errorMessage\":\"3\"}");
	expect_init_error("nodots", "{\"errorType\":\"ValueError\",\"errorMessage\":"
				    "\"handler 'nodots' is not MODULE.FUNCTION\"}");
	start("bad_syntax.handler");
	char *p = inst_expect(&in, EMBER_INIT_ERROR, 0);
	cr_assert(!strncmp(p, "{\"errorType\":\"SyntaxError\",\"errorMessage\":\"expected ':'", 54),
		  "%s", p);
	free(p);
	expect_exit(1);
}

Test(python_sdk, handler_output_is_in_the_pipes_before_the_result_arrives)
{
	start("handlers.log");
	inst_expect_ready(&in, "python");
	expect_call(1, "line one", EMBER_RESULT, "logged");
	/* sys.stdout on a pipe is block-buffered: only the SDK's flush puts the line there now */
	inst_read_now(in.out, buf, sizeof(buf));
	cr_assert_str_eq(buf, "line one\n");
	inst_read_now(in.err, buf, sizeof(buf));
	cr_assert_str_eq(buf, "line one\n");
	stop();
}

Test(python_sdk, between_invocations_it_is_one_thread_blocked_reading_the_channel)
{
	start("handlers.echo");
	inst_expect_ready(&in, "python");
	/* os.readv: readv(2), syscall 19 on x86-64 */
	assert_blocked_reading_the_channel(in.pid, ENV("0", "19"));
	expect_call(1, "x", EMBER_RESULT, "x");
	assert_blocked_reading_the_channel(in.pid, ENV("0", "19"));
	stop();
}

Test(python_sdk, the_sdk_takes_the_channel_from_the_environment_and_from_exec)
{
	start("handlers.env");
	inst_expect_ready(&in, "python");
	expect_call(1, "EMBER_CHANNEL_FD", EMBER_RESULT, "null");
	expect_call(2, "PATH", EMBER_RESULT, "/usr/bin:/bin");
	stop();
	start("handlers.channel_inheritable");
	inst_expect_ready(&in, "python");
	expect_call(3, "", EMBER_RESULT, "false");
	stop();
}

Test(python_sdk, sys_exit_in_the_handler_is_the_instance_exit_status)
{
	struct frame f;

	start("handlers.exit");
	inst_expect_ready(&in, "python");
	cr_assert_eq(inst_invoke(&in, 1, META, "9", 1), 0);
	cr_assert_eq(inst_recv(&in, &f, INST_TIMEOUT_MS), 0, "EOF, no answer");
	expect_exit(9);
}

static void expect_protocol_error(const char *why)
{
	expect_exit(2);
	cr_assert(strstr(buf, "ember_fn: protocol error: "), "stderr: %s", buf);
	cr_assert(strstr(buf, why), "stderr: %s", buf);
}

Test(python_sdk, a_bad_magic_exits_2)
{
	struct ember_frame_hdr h = { .magic = 0xdeadbeef, .version = 1, .type = EMBER_INVOKE };

	start("handlers.echo");
	inst_expect_ready(&in, "python");
	cr_assert_eq(inst_send_raw(&in, &h, sizeof(h)), 0);
	expect_protocol_error("bad frame magic 0xdeadbeef");
}

Test(python_sdk, a_frame_over_the_limit_exits_2_without_waiting_for_its_payload)
{
	struct ember_frame_hdr h = { .magic = EMBER_PROTO_MAGIC, .version = 1, .type = EMBER_INVOKE,
				     .id = 1, .len = 1ull << 40 };

	start("handlers.echo");
	inst_expect_ready(&in, "python");
	cr_assert_eq(inst_send_raw(&in, &h, sizeof(h)), 0);
	expect_protocol_error("frame of 1099511627776 bytes is over the 67108864 byte limit");
}

Test(python_sdk, unexpected_frames_and_bad_metadata_exit_2)
{
	start("handlers.echo");
	inst_expect_ready(&in, "python");
	cr_assert_eq(inst_send(&in, EMBER_RESULT, 1, "x", 1), 0);
	expect_protocol_error("unexpected frame type 3 from the host");

	start("handlers.echo");
	inst_expect_ready(&in, "python");
	cr_assert_eq(inst_invoke(&in, 5, "[1,2]", "x", 1), 0);
	expect_protocol_error("INVOKE 5: metadata is not a JSON object");

	start("handlers.echo");
	inst_expect_ready(&in, "python");
	cr_assert_eq(inst_send(&in, EMBER_INVOKE, 6, "\x01\x00", 2), 0);
	expect_protocol_error("INVOKE payload of 2 bytes has no metadata length");
}

Test(python_sdk, eof_on_the_channel_exits_0)
{
	start("handlers.echo");
	inst_expect_ready(&in, "python");
	expect_call(1, "x", EMBER_RESULT, "x");
	inst_close(&in);
	expect_exit(0);
	cr_assert_str_eq(buf, "");
}

/* The checksum init-heavy-python must give for TABLE_MB=4 and these entries ("" = one per 4 KiB
 * page), computed here by python3's hashlib directly, not through the example. */
static void shake_checksum(const char *indices, char *out, size_t cap)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), PYTHON " -c 'import hashlib; "
		 "t = hashlib.shake_256(b\"ember init-heavy\").digest(4 << 20); n = len(t) // 8; "
		 "ix = [int(w) %% n for w in \"%s\".split()] or range(0, n, 512); "
		 "print(\"%%016x\" %% (sum(int.from_bytes(t[8*i:8*i+8], \"little\") "
		 "for i in ix) & (2**64 - 1)))'", indices);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_not_null(fgets(out, (int)cap, p));
	out[strcspn(out, "\n")] = '\0';
	cr_assert_eq(pclose(p), 0);
}

Test(python_sdk, init_heavy_answers_from_the_table_its_import_built)
{
	const char *argv[] = { PYTHON, t_py_sdk(), "handler.handler", NULL };
	char dir[4096], sum[64], want[256];

	snprintf(dir, sizeof(dir), "%s/examples/init-heavy-python", EMBER_SRCDIR);
	inst_spawn(&in, argv, ENV("TABLE_MB=4"), dir, true);
	inst_expect_ready(&in, "python");
	shake_checksum("0 1 2 524288 1000000", sum, sizeof(sum));
	snprintf(want, sizeof(want), "{\"tableMb\":4,\"entries\":5,\"checksum\":\"%s\"}", sum);
	expect_call(1, "0 1 2 524288 1000000", EMBER_RESULT, want);
	shake_checksum("", sum, sizeof(sum));
	snprintf(want, sizeof(want), "{\"tableMb\":4,\"entries\":1024,\"checksum\":\"%s\"}", sum);
	expect_call(2, "", EMBER_RESULT, want);
	expect_call(3, "1 -2", EMBER_ERROR, "{\"errorType\":\"BadRequest\",\"errorMessage\":"
		    "\"payload: entry indices separated by blanks, or nothing\"}");
	stop();
	cr_assert(strstr(buf, "init-heavy-python: built a 4 MB table in "), "stderr: %s", buf);
}

/* ---- one-shot mode */

static void oneshot(const char *handler, const char *body, int code, char *out, char *err)
{
	inst_spawn_py(&in, handler, NULL, false);
	cr_assert_eq(inst_send_raw(&in, body, strlen(body)), 0);
	inst_close(&in);
	int st = inst_wait(&in, INST_TIMEOUT_MS);
	inst_read_all(in.out, out, 8192);
	inst_read_all(in.err, err, 8192);
	cr_assert_eq(exit_code(st), code, "status %#x; stderr: %s", st, err);
}

Test(python_sdk, one_shot_reads_stdin_and_answers_on_stdout)
{
	char out[8192], err[8192];

	oneshot("handlers.as_dict", "body", 0, out, err);
	cr_assert_str_eq(out, "{\"n\":1,\"list\":[1,\"two\",null,true],\"body\":\"body\"}");
	cr_assert_str_eq(err, "");
	oneshot("handlers.context", "", 0, out, err);
	cr_assert(strstr(out, "\"request_id\":\"oneshot\""), "%s", out);
	cr_assert(strstr(out, "\"function_name\":\"handlers.context\""), "%s", out);
}

Test(python_sdk, one_shot_failures_exit_1_with_the_error_json_on_stderr)
{
	char out[8192], err[8192];

	oneshot("handlers.fail", "k", 1, out, err);
	cr_assert_str_eq(out, "");
	const char *want = "{\"errorType\":\"NotFound\",\"errorMessage\":\"no such key: k\"}\n";
	size_t el = strlen(err), wl = strlen(want);
	cr_assert(el >= wl && !strcmp(err + el - wl, want), "stderr: %s", err);
	oneshot("broken_import.handler", "", 1, out, err);
	cr_assert_str_eq(out, "loading the model\n");
	cr_assert(strstr(err, "{\"errorType\":\"ModelError\""), "stderr: %s", err);
}
