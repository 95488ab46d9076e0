/* common/fs.h — small file helpers used by every area: whole-file reads and writes relative to
 * a directory fd, mkdir -p, recursive removal that never crosses a mount, atomic replace. */
#ifndef EMBER_COMMON_FS_H
#define EMBER_COMMON_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct em_err;

/* Read a whole file (dirfd may be AT_FDCWD) into a malloc'd, NUL-terminated buffer. */
int em_read_file_at(int dirfd, const char *path, char **out, size_t *len, struct em_err *err);
/* Read a small file into buf (NUL-terminated, trailing newline kept); returns bytes read. */
ssize_t em_read_small_at(int dirfd, const char *path, char *buf, size_t cap, struct em_err *err);
/* Read a file holding one unsigned decimal number ("max" is reported as UINT64_MAX). */
int em_read_u64_at(int dirfd, const char *path, uint64_t *out, struct em_err *err);

/* Write data to an existing file (kernel interface files: cgroup knobs, /proc/PID/uid_map). */
int em_write_at(int dirfd, const char *path, const char *data, size_t len, struct em_err *err);
int em_write_str_at(int dirfd, const char *path, const char *s, struct em_err *err);
/* Create or truncate a regular file with mode and write data. */
int em_create_file_at(int dirfd, const char *path, mode_t mode, const char *data, size_t len,
		      struct em_err *err);
/* Write to path.tmp, fsync-free rename over path: readers see the old or the new file, never half. */
int em_replace_file_at(int dirfd, const char *path, mode_t mode, const char *data, size_t len,
		       struct em_err *err);

/* mkdir -p; existing directories are fine. */
int em_mkdir_p(const char *path, mode_t mode, struct em_err *err);
/* Remove path and everything below it. Never follows symlinks and never descends into another
 * mount (a bind mount left inside a state dir must not take the host's files with it): such an
 * entry fails the removal with EBUSY. A missing path is fine. */
int em_rm_rf_at(int dirfd, const char *path, struct em_err *err);

/* Join a and b with exactly one '/' into buf; -ENAMETOOLONG if it does not fit. */
int em_path_join(char *buf, size_t cap, const char *a, const char *b);

#endif
