/* common/cleanup.h — scope-bound cleanup for fds, allocations, FILE*, DIR*.
 * Ownership leaves a scope with take_fd() / take_ptr(). */
#ifndef EMBER_COMMON_CLEANUP_H
#define EMBER_COMMON_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void em_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno; /* close() in a cleanup must not clobber the errno being reported */
		close(*fd);
		errno = saved;
	}
}
static inline void em_freep(void *p)
{
	free(*(void **)p);
}
static inline void em_fclosep(FILE **f)
{
	if (*f) {
		int saved = errno;
		fclose(*f);
		errno = saved;
	}
}
static inline void em_closedirp(DIR **d)
{
	if (*d) {
		int saved = errno;
		closedir(*d);
		errno = saved;
	}
}

#define cleanup_close __attribute__((cleanup(em_closep)))
#define cleanup_free __attribute__((cleanup(em_freep)))
#define cleanup_fclose __attribute__((cleanup(em_fclosep)))
#define cleanup_closedir __attribute__((cleanup(em_closedirp)))

static inline int take_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

#define take_ptr(p)                                 \
	({                                          \
		__typeof__(p) _tp = (p);            \
		(p) = NULL;                         \
		_tp;                                \
	})

#define EM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
