/* tests/sdk/test_zygote_sdk.c — the SDKs' side of FORK that needs no template around it: a FORK
 * an instance cannot carry out is answered with FORKED and an errno, and the instance keeps
 * serving. (Real forks need a template's user namespace: tests/host/test_zygote.c.) */
#include "tests/sdk/inst.h"
#include "sdk/c/ember_proto.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define META "{\"requestId\":\"r-1\",\"function\":\"probe\",\"version\":1,\"memoryMb\":128}"

static struct inst in;

static void fini(void)
{
	inst_close(&in);
	inst_wait(&in, 5000);
}

TestSuite(zygote_sdk, .fini = fini, .timeout = 60);

/* A FORK without its fds; expect FORKED(id) with errno `want` and a message containing `why`,
 * then an INVOKE still answered. */
static void fork_refused(int want, const char *why, const char *invoke_body, uint16_t type)
{
	struct ember_fork_req req = { .tmp_mb = 16, .paths_len = 0, .keep_caps = 0 };
	char *p;
	int32_t e;

	cr_assert_eq(inst_send(&in, EMBER_FORK, 9, &req, sizeof(req)), 0);
	p = inst_expect(&in, EMBER_FORKED, 9);
	memcpy(&e, p, sizeof(e));
	cr_expect_eq(e, want, "errno %d: %s", e, p + 4);
	cr_expect(strstr(p + 4, why) != NULL, "message: %s", p + 4);
	free(p);
	cr_assert_eq(inst_invoke(&in, 10, META, invoke_body, strlen(invoke_body)), 0);
	p = inst_expect(&in, type, 10);
	free(p);
}

Test(zygote_sdk, c_answers_a_fork_without_fds_and_keeps_serving)
{
	const char *argv[] = { t_example_bin("probe"), NULL };

	inst_spawn(&in, argv, NULL, NULL, true);
	inst_expect_ready(&in, "c");
	fork_refused(EPROTO, "0 fds", "echo still here", EMBER_RESULT);
}

Test(zygote_sdk, python_without_the_fork_core_refuses_with_enosys)
{
	const char *env[] = { "EMBER_ZYGOTE_LIB=/nonexistent/libember_zygote.so", NULL };

	inst_spawn_py(&in, "handlers.echo", env, true);
	inst_expect_ready(&in, "python");
	fork_refused(ENOSYS, "no fork core", "x", EMBER_RESULT);
}

Test(zygote_sdk, python_with_the_fork_core_answers_a_fork_without_fds)
{
	char lib[512];
	const char *env[] = { lib, NULL };

	snprintf(lib, sizeof(lib), "EMBER_ZYGOTE_LIB=%s/build/lib/libember_zygote.so", EMBER_SRCDIR);
	inst_spawn_py(&in, "handlers.echo", env, true);
	inst_expect_ready(&in, "python");
	fork_refused(EPROTO, "0 fds", "x", EMBER_RESULT);
}
