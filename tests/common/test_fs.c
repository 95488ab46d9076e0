/* tests/common/test_fs.c — file helpers against a real tmpfs-backed directory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"

static char dir[] = "/tmp/ember-test-fs-XXXXXX";

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	struct em_err err;

	em_rm_rf_at(AT_FDCWD, dir, &err);
}

TestSuite(fs, .init = setup, .fini = teardown);

Test(fs, write_read_roundtrip_and_u64)
{
	struct em_err err = { 0 };
	char path[256], *buf = NULL;
	size_t len;
	uint64_t v;

	snprintf(path, sizeof(path), "%s/n", dir);
	cr_assert_eq(em_create_file_at(AT_FDCWD, path, 0600, "42\n", 3, &err), 0, "%s", err.msg);
	cr_assert_eq(em_read_file_at(AT_FDCWD, path, &buf, &len, &err), 0);
	cr_assert_eq(len, 3);
	cr_assert_str_eq(buf, "42\n");
	free(buf);
	cr_assert_eq(em_read_u64_at(AT_FDCWD, path, &v, &err), 0);
	cr_assert_eq(v, 42);
	em_replace_file_at(AT_FDCWD, path, 0600, "max\n", 4, &err);
	cr_assert_eq(em_read_u64_at(AT_FDCWD, path, &v, &err), 0);
	cr_assert_eq(v, UINT64_MAX);
	em_replace_file_at(AT_FDCWD, path, 0600, "4x\n", 3, &err);
	cr_assert_eq(em_read_u64_at(AT_FDCWD, path, &v, &err), -EINVAL);
	cr_assert(strstr(err.msg, "not a number"), "%s", err.msg);
}

Test(fs, missing_file_error_names_it)
{
	struct em_err err = { 0 };
	char *buf;

	cr_assert_eq(em_read_file_at(AT_FDCWD, "/nonexistent/ember", &buf, NULL, &err), -ENOENT);
	cr_assert_str_eq(err.msg, "open /nonexistent/ember: ENOENT (No such file or directory)");
}

Test(fs, mkdir_p_and_rm_rf)
{
	struct em_err err = { 0 };
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	cr_assert_eq(em_mkdir_p(path, 0700, &err), 0, "%s", err.msg);
	cr_assert_eq(em_mkdir_p(path, 0700, &err), 0, "existing dirs are fine");
	snprintf(path, sizeof(path), "%s/a/b/c/f", dir);
	cr_assert_eq(em_create_file_at(AT_FDCWD, path, 0600, "x", 1, &err), 0);
	snprintf(path, sizeof(path), "%s/a/link", dir);
	cr_assert_eq(symlink("/etc", path), 0);
	snprintf(path, sizeof(path), "%s/a", dir);
	cr_assert_eq(em_rm_rf_at(AT_FDCWD, path, &err), 0, "%s", err.msg);
	cr_assert_eq(stat(path, &st), -1);
	cr_assert_eq(stat("/etc/passwd", &st), 0, "a symlink is never followed");
}

Test(fs, rm_rf_refuses_to_cross_a_mount)
{
	struct em_err err = { 0 };
	char path[256], sub[300];
	struct stat st;

	snprintf(path, sizeof(path), "%s/m", dir);
	snprintf(sub, sizeof(sub), "%s/m/inner", dir);
	cr_assert_eq(em_mkdir_p(sub, 0700, &err), 0);
	cr_assert_eq(mount("ember-test", sub, "tmpfs", 0, "size=1m"), 0);
	int r = em_rm_rf_at(AT_FDCWD, path, &err);
	umount2(sub, MNT_DETACH);
	cr_assert_eq(r, -EBUSY);
	cr_assert(strstr(err.msg, "mount point"), "%s", err.msg);
	cr_assert_eq(stat(sub, &st), 0);
}

Test(fs, path_join)
{
	char buf[64];

	cr_assert_eq(em_path_join(buf, sizeof(buf), "/a/", "/b"), 0);
	cr_assert_str_eq(buf, "/a/b");
	cr_assert_eq(em_path_join(buf, sizeof(buf), "/", "b"), 0);
	cr_assert_str_eq(buf, "/b");
	cr_assert_eq(em_path_join(buf, 4, "/abc", "def"), -ENAMETOOLONG);
}
