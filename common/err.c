/* common/err.c — see err.h. */
#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *em_errno_name(int code, char buf[16])
{
	const char *name = strerrorname_np(code);

	if (name)
		return name;
	snprintf(buf, 16, "E%d", code);
	return buf;
}

static int fix_code(int code)
{
	if (code < 0)
		code = -code;
	return code ? code : EIO;
}

int em_err_set(struct em_err *err, int code, const char *fmt, ...)
{
	char name[16];
	va_list ap;
	int n;

	code = fix_code(code);
	if (!err)
		return -code;
	err->code = code;
	va_start(ap, fmt);
	n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s (%s)", em_errno_name(code, name),
			 strerror(code));
	return -code;
}

int em_err_msg(struct em_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	code = fix_code(code);
	if (!err)
		return -code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -code;
}

int em_err_prefix(struct em_err *err, const char *fmt, ...)
{
	char prefix[EM_ERR_MSG_MAX], old[EM_ERR_MSG_MAX];
	va_list ap;

	if (!err)
		return -EIO;
	err->code = fix_code(err->code);
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* "instance %s: " and "instance %s" both give "instance x: what failed" */
	size_t n = strlen(prefix);
	while (n && (prefix[n - 1] == ' ' || prefix[n - 1] == ':'))
		prefix[--n] = '\0';
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	return -err->code;
}

void em_err_clear(struct em_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}
