/* tests/runtime/testutil.h — small helpers the unit tests of runtime/ share: counting open
 * descriptors (leak checks) and reading what a forked probe child wrote. */
#ifndef EMBER_TESTS_TESTUTIL_H
#define EMBER_TESTS_TESTUTIL_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <stddef.h>
#include <unistd.h>

static inline int t_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert_not_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Read fd to EOF into out (NUL-terminated, at most cap-1 bytes), then close it. */
static inline void t_read_all(int fd, char *out, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len + 1 < cap && (n = read(fd, out + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(fd);
}

#endif
