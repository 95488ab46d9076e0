/* netns/pooldir.c — ready namespaces bind-mounted under a directory, for short-lived processes
 * (the `ember` OCI CLI): one invocation claims a namespace in microseconds, and a fill run off the
 * critical path replaces it.
 *
 * The directory is a small tmpfs (source "ember-netns-pool") made shared, as `ip netns` does for
 * /run/netns: an entry unmounted here is then unmounted in every mount namespace that copied it
 * (a sandbox cloned while the entry existed), so a claimed namespace is not kept alive by copies.
 * Owning the mount also lets destroy unmount it knowing it is ours.
 *
 * Entries are files "ember-<nsfs inode>" with the namespace bind-mounted on them; the inode is unique
 * among live namespaces and the mount keeps the namespace alive, so names never clash. A claim opens
 * an entry and then unmounts it: umount2 succeeds for one claimer only (the others get EINVAL and
 * move on), so no lock is needed and no namespace is handed out twice. A file that is not (or no
 * longer) a mount opens as a regular file and is skipped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "netns/nl.h"

#define POOL_FS_SOURCE "ember-netns-pool"
#define ENTRY_PREFIX "ember-"

/* Is dir the mount point of our tmpfs? Decided from mountinfo's source field, never from the path
 * alone, so destroy can never unmount a directory someone else mounted. */
static int is_pool_mount(const char *dir)
{
	cleanup_free char *real = realpath(dir, NULL);
	cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int found = 0;

	if (!real || !f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char mnt[4096], src[256];
		const char *sep = strstr(line, " - ");
		if (sscanf(line, "%*d %*d %*s %*s %4095s", mnt) != 1 || !sep ||
		    sscanf(sep, " - %*s %255s", src) != 1)
			continue;
		/* the last matching line is the mount on top */
		if (strcmp(mnt, real) == 0)
			found = strcmp(src, POOL_FS_SOURCE) == 0;
	}
	return found;
}

int em_netns_pool_dir_init(const char *dir, struct em_err *err)
{
	int ret = em_mkdir_p(dir, 0700, err);

	if (ret < 0)
		return ret;
	if (is_pool_mount(dir))
		return 0;
	if (mount(POOL_FS_SOURCE, dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0700,size=64k") < 0)
		return em_err_set(err, errno, "mount tmpfs on namespace pool %s", dir);
	if (mount(NULL, dir, NULL, MS_SHARED, NULL) < 0) {
		ret = em_err_set(err, errno, "make namespace pool %s shared", dir);
		umount2(dir, MNT_DETACH);
		return ret;
	}
	return 0;
}

static bool is_entry(const char *name)
{
	return strncmp(name, ENTRY_PREFIX, strlen(ENTRY_PREFIX)) == 0;
}

static bool is_mount_root(int dirfd, const char *name)
{
	struct statx stx;

	return statx(dirfd, name, AT_SYMLINK_NOFOLLOW, 0, &stx) == 0 &&
	       (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	       (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

int em_netns_pool_dir_count(const char *dir, struct em_err *err)
{
	cleanup_closedir DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return em_err_set(err, errno, "open namespace pool %s", dir);
	while ((e = readdir(d)))
		if (is_entry(e->d_name) && is_mount_root(dirfd(d), e->d_name))
			n++;
	return n;
}

static int add_entry(const char *dir, struct em_err *err)
{
	struct em_netns *ns;
	char path[512], src[64];
	int fd, ret = em_netns_create(&ns, err);

	if (ret < 0)
		return ret;
	snprintf(path, sizeof(path), "%s/" ENTRY_PREFIX "%llu", dir, (unsigned long long)ns->ino);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
	if (fd < 0) {
		ret = em_err_set(err, errno, "create %s", path);
		goto out;
	}
	close(fd);
	snprintf(src, sizeof(src), "/proc/self/fd/%d", ns->fd);
	if (mount(src, path, NULL, MS_BIND, NULL) < 0) {
		ret = em_err_set(err, errno, "bind-mount network namespace on %s", path);
		unlink(path);
	}
out:
	em_netns_release(ns); /* the mount holds it now */
	return ret;
}

int em_netns_pool_dir_fill(const char *dir, unsigned target, struct em_err *err)
{
	int have = em_netns_pool_dir_count(dir, err), made = 0;

	if (have < 0)
		return have;
	for (; (unsigned)have + made < target; made++) {
		int ret = add_entry(dir, err);
		if (ret < 0) {
			em_err_prefix(err, "fill namespace pool %s (%d made)", dir, made);
			return ret;
		}
	}
	return made;
}

int em_netns_pool_dir_claim(const char *dir, struct em_netns **out, struct em_err *err)
{
	cleanup_closedir DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return em_err_set(err, errno, "open namespace pool %s", dir);
	while ((e = readdir(d))) {
		cleanup_close int fd = -1;
		struct em_netns *ns;

		if (!is_entry(e->d_name))
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET)
			continue; /* claimed a moment ago, or not mounted yet */
		/* The claim itself: only one umount of this mount can succeed. */
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
			continue;
		unlinkat(dirfd(d), e->d_name, 0);
		ns = calloc(1, sizeof(*ns));
		if (!ns)
			return em_err_set(err, ENOMEM, "allocate network namespace");
		ns->fd = take_fd(&fd);
		ns->ino = em_netns_fd_ino(ns->fd);
		ns->mode = EM_NETNS_NONE;
		*out = ns;
		return 0;
	}
	return em_err_msg(err, ENOENT, "namespace pool %s is empty", dir);
}

int em_netns_pool_dir_destroy(const char *dir, struct em_err *err)
{
	cleanup_closedir DIR *d = opendir(dir);
	struct dirent *e;
	int ret = 0;

	if (!d)
		return errno == ENOENT ? 0 : em_err_set(err, errno, "open namespace pool %s", dir);
	while ((e = readdir(d))) {
		char path[512];

		if (!is_entry(e->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && !ret)
			ret = em_err_set(err, errno, "unmount %s", path);
		if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT && !ret)
			ret = em_err_set(err, errno, "remove %s", path);
	}
	if (ret < 0)
		return ret;
	if (is_pool_mount(dir) && umount2(dir, MNT_DETACH) < 0)
		return em_err_set(err, errno, "unmount namespace pool %s", dir);
	if (rmdir(dir) < 0 && errno != ENOENT)
		return em_err_set(err, errno, "remove namespace pool %s", dir);
	return 0;
}
