/* tests/common/test_err.c — the error type: codes, errno names, context prefixes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "common/err.h"

Test(err, set_appends_errno_name_and_returns_negative_code)
{
	struct em_err err = { 0 };
	int r = em_err_set(&err, EINVAL, "pivot_root into %s", "/b/rootfs");

	cr_assert_eq(r, -EINVAL);
	cr_assert_eq(err.code, EINVAL);
	cr_assert_str_eq(err.msg, "pivot_root into /b/rootfs: EINVAL (Invalid argument)");
}

Test(err, zero_code_never_means_success)
{
	struct em_err err = { 0 };

	cr_assert_eq(em_err_msg(&err, 0, "x"), -EIO);
	cr_assert_eq(em_err_set(&err, 0, "y"), -EIO);
}

Test(err, prefix_adds_context_and_keeps_code)
{
	struct em_err err = { 0 };

	em_err_msg(&err, ENOENT, "linux.namespaces[2].type: unknown namespace \"foo\"");
	cr_assert_eq(em_err_prefix(&err, "load %s", "/b/config.json"), -ENOENT);
	cr_assert_str_eq(err.msg,
			 "load /b/config.json: linux.namespaces[2].type: unknown namespace \"foo\"");
}

/* a prefix written with its own ": " does not double the separator */
Test(err, prefix_with_a_trailing_colon_is_joined_once)
{
	struct em_err err = { 0 };

	em_err_msg(&err, ENOSPC, "no capacity");
	em_err_prefix(&err, "deploy %s: ", "f");
	cr_assert_str_eq(err.msg, "deploy f: no capacity");
}

Test(err, unnamed_errno)
{
	char buf[16];

	cr_assert_str_eq(em_errno_name(EPERM, buf), "EPERM");
	cr_assert_str_eq(em_errno_name(4095, buf), "E4095");
}
