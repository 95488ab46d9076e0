/* common/err.h — ember's error type: a positive errno code plus a message that names the object
 * and the step. Fallible functions return 0 or -code and fill a struct em_err; context is added on
 * the way up with em_err_prefix(). The library never prints. */
#ifndef EMBER_COMMON_ERR_H
#define EMBER_COMMON_ERR_H

#include <stdarg.h>

#define EM_ERR_MSG_MAX 1024

struct em_err {
	int code;                    /* positive errno; 0 when no error was recorded */
	char msg[EM_ERR_MSG_MAX];
};

/* Record a failure of a system call: the message gets ": ENAME (strerror)" appended.
 * Returns -code (never 0: a code of 0 is recorded as EIO). */
int em_err_set(struct em_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record a failure that is not a system call's (validation, protocol): the message is used as is. */
int em_err_msg(struct em_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Put context in front of an existing message: "create container c1: " + msg. Returns -err->code. */
int em_err_prefix(struct em_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void em_err_clear(struct em_err *err);

/* "EPERM", "ENOENT", ...; "E<number>" for codes glibc does not name. */
const char *em_errno_name(int code, char buf[16]);

#endif
