/* common/fs.c — see fs.h. */
#include "common/fs.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int em_read_file_at(int dirfd, const char *path, char **out, size_t *len, struct em_err *err)
{
	cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	cleanup_free char *buf = NULL;
	size_t cap = 4096, n = 0;

	if (fd < 0)
		return em_err_set(err, errno, "open %s", path);
	buf = malloc(cap);
	if (!buf)
		return em_err_set(err, ENOMEM, "read %s", path);
	for (;;) {
		ssize_t r;

		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				return em_err_set(err, ENOMEM, "read %s", path);
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return em_err_set(err, errno, "read %s", path);
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	*out = take_ptr(buf);
	return 0;
}

ssize_t em_read_small_at(int dirfd, const char *path, char *buf, size_t cap, struct em_err *err)
{
	cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return em_err_set(err, errno, "open %s", path);
	do
		r = read(fd, buf, cap - 1);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return em_err_set(err, errno, "read %s", path);
	buf[r] = '\0';
	return r;
}

int em_read_u64_at(int dirfd, const char *path, uint64_t *out, struct em_err *err)
{
	char buf[64], *end;
	ssize_t r = em_read_small_at(dirfd, path, buf, sizeof(buf), err);

	if (r < 0)
		return (int)r;
	if (!strncmp(buf, "max", 3)) {
		*out = UINT64_MAX;
		return 0;
	}
	errno = 0;
	*out = strtoull(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n'))
		return em_err_msg(err, EINVAL, "%s: not a number: \"%.20s\"", path, buf);
	return 0;
}

int em_write_at(int dirfd, const char *path, const char *data, size_t len, struct em_err *err)
{
	cleanup_close int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC);
	ssize_t w;

	if (fd < 0)
		return em_err_set(err, errno, "open %s", path);
	do
		w = write(fd, data, len);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return em_err_set(err, errno, "write \"%.*s\" to %s", (int)(len > 64 ? 64 : len), data,
				  path);
	if ((size_t)w != len)
		return em_err_msg(err, EIO, "short write to %s", path);
	return 0;
}

int em_write_str_at(int dirfd, const char *path, const char *s, struct em_err *err)
{
	return em_write_at(dirfd, path, s, strlen(s), err);
}

int em_create_file_at(int dirfd, const char *path, mode_t mode, const char *data, size_t len,
		      struct em_err *err)
{
	cleanup_close int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0)
		return em_err_set(err, errno, "create %s", path);
	while (len) {
		ssize_t w = write(fd, data, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return em_err_set(err, errno, "write %s", path);
		}
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

int em_replace_file_at(int dirfd, const char *path, mode_t mode, const char *data, size_t len,
		       struct em_err *err)
{
	char tmp[4096];
	int ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return em_err_msg(err, ENAMETOOLONG, "%s: path too long", path);
	ret = em_create_file_at(dirfd, tmp, mode, data, len, err);
	if (ret < 0)
		return ret;
	if (renameat(dirfd, tmp, dirfd, path) < 0) {
		ret = em_err_set(err, errno, "rename %s to %s", tmp, path);
		unlinkat(dirfd, tmp, 0);
		return ret;
	}
	return 0;
}

int em_mkdir_p(const char *path, mode_t mode, struct em_err *err)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return em_err_msg(err, EINVAL, "mkdir: bad path \"%s\"", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return em_err_set(err, errno, "mkdir %s", buf);
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

static int rm_children(int dfd, dev_t dev, const char *what, struct em_err *err)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int ret = 0;

	if (!d) {
		close(dfd);
		return em_err_set(err, errno, "open directory %s", what);
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			ret = em_err_set(err, errno, "stat %s/%s", what, de->d_name);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev) {
				ret = em_err_msg(err, EBUSY, "%s/%s is a mount point; not removing it",
						 what, de->d_name);
				break;
			}
			int cfd = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0) {
				ret = em_err_set(err, errno, "open %s/%s", what, de->d_name);
				break;
			}
			ret = rm_children(cfd, dev, de->d_name, err);
			if (ret < 0)
				break;
			if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
				ret = em_err_set(err, errno, "rmdir %s/%s", what, de->d_name);
				break;
			}
		} else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
			ret = em_err_set(err, errno, "unlink %s/%s", what, de->d_name);
			break;
		}
	}
	closedir(d);
	return ret;
}

int em_rm_rf_at(int dirfd, const char *path, struct em_err *err)
{
	struct stat st, parent;
	int fd, ret;

	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : em_err_set(err, errno, "stat %s", path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, path, 0) < 0 && errno != ENOENT)
			return em_err_set(err, errno, "unlink %s", path);
		return 0;
	}
	/* path itself being a mount point (a leaked bind mount) is refused too */
	char up[4096];
	if (snprintf(up, sizeof(up), "%s/..", path) < (int)sizeof(up) &&
	    fstatat(dirfd, up, &parent, 0) == 0 && parent.st_dev != st.st_dev)
		return em_err_msg(err, EBUSY, "%s is a mount point; not removing it", path);
	fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return em_err_set(err, errno, "open %s", path);
	ret = rm_children(fd, st.st_dev, path, err);
	if (ret < 0)
		return ret;
	if (unlinkat(dirfd, path, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return em_err_set(err, errno, "rmdir %s", path);
	return 0;
}

int em_path_join(char *buf, size_t cap, const char *a, const char *b)
{
	size_t la = strlen(a);
	int n;

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	if (la == 1 && a[0] == '/')
		n = snprintf(buf, cap, "/%s", b);
	else
		n = snprintf(buf, cap, "%.*s%s%s", (int)la, a, *b ? "/" : "", b);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}
