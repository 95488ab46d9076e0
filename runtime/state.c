/* runtime/state.c — see state.h. */
#include "runtime/state.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const status_names[] = { "creating", "created", "running", "paused", "stopped" };

const char *em_status_name(enum em_status s)
{
	return status_names[s];
}

int em_state_check_id(const char *id, struct em_err *err)
{
	size_t n = strlen(id);

	if (!n || n >= EM_ID_MAX || !strcmp(id, ".") || !strcmp(id, ".."))
		return em_err_msg(err, EINVAL, "invalid container id \"%s\"", id);
	for (const char *c = id; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '_' || *c == '+' || *c == '-' || *c == '.'))
			return em_err_msg(err, EINVAL,
					  "invalid container id \"%s\": only letters, digits, _ + - . are allowed",
					  id);
	return 0;
}

static int lock_dir(struct em_state_dir *sd, struct em_err *err)
{
	while (flock(sd->dfd, LOCK_EX) < 0)
		if (errno != EINTR)
			return em_err_set(err, errno, "lock %s", sd->path);
	return 0;
}

int em_state_create(const char *root, const char *id, struct em_state_dir *sd, struct em_err *err)
{
	int ret = em_state_check_id(id, err);

	sd->dfd = -1;
	if (ret < 0)
		return ret;
	ret = em_mkdir_p(root, 0711, err);
	if (ret < 0)
		return em_err_prefix(err, "create the runtime root");
	if (em_path_join(sd->path, sizeof(sd->path), root, id) < 0)
		return em_err_msg(err, ENAMETOOLONG, "state path for %s: too long", id);
	if (mkdir(sd->path, 0711) < 0) {
		if (errno == EEXIST)
			return em_err_msg(err, EEXIST, "container \"%s\" already exists", id);
		return em_err_set(err, errno, "create state directory %s", sd->path);
	}
	sd->dfd = open(sd->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sd->dfd < 0) {
		ret = em_err_set(err, errno, "open %s", sd->path);
		rmdir(sd->path);
		return ret;
	}
	return lock_dir(sd, err);
}

int em_state_open(const char *root, const char *id, struct em_state_dir *sd, struct em_err *err)
{
	int ret = em_state_check_id(id, err);

	sd->dfd = -1;
	if (ret < 0)
		return ret;
	if (em_path_join(sd->path, sizeof(sd->path), root, id) < 0)
		return em_err_msg(err, ENAMETOOLONG, "state path for %s: too long", id);
	sd->dfd = open(sd->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sd->dfd < 0) {
		if (errno == ENOENT)
			return em_err_msg(err, ENOENT, "container \"%s\" does not exist", id);
		return em_err_set(err, errno, "open %s", sd->path);
	}
	ret = lock_dir(sd, err);
	if (ret < 0)
		return ret;
	/* a concurrent delete may have removed it while we waited for the lock */
	struct stat st;
	if (fstatat(sd->dfd, "state.json", &st, 0) < 0 && errno == ENOENT &&
	    fstatat(sd->dfd, "config.json", &st, 0) < 0) {
		em_state_close(sd);
		return em_err_msg(err, ENOENT, "container \"%s\" does not exist", id);
	}
	return 0;
}

void em_state_close(struct em_state_dir *sd)
{
	if (sd->dfd >= 0)
		close(sd->dfd); /* releases the lock */
	sd->dfd = -1;
}

int em_state_remove(struct em_state_dir *sd, struct em_err *err)
{
	return em_rm_rf_at(AT_FDCWD, sd->path, err);
}

int em_state_write(struct em_state_dir *sd, const struct em_state *st, struct em_err *err)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:I}", "id", st->id, "bundle",
			      st->bundle, "rootfs", st->rootfs, "cgroup", st->cgroup, "pid",
			      (json_int_t)st->pid, "start_time", (json_int_t)st->start_time, "created",
			      st->created, "owner", (json_int_t)st->owner);
	char *text;
	int ret;

	if (!j)
		return em_err_msg(err, ENOMEM, "encode state of %s", st->id);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return em_err_msg(err, ENOMEM, "encode state of %s", st->id);
	ret = em_replace_file_at(sd->dfd, "state.json", 0600, text, strlen(text), err);
	free(text);
	return ret;
}

static void copy_str(char *dst, size_t cap, json_t *v)
{
	const char *s = json_string_value(v);

	snprintf(dst, cap, "%s", s ? s : "");
}

int em_state_read(struct em_state_dir *sd, struct em_state *st, struct em_err *err)
{
	cleanup_free char *text = NULL;
	json_error_t jerr;
	json_t *j;
	int ret = em_read_file_at(sd->dfd, "state.json", &text, NULL, err);

	memset(st, 0, sizeof(*st));
	if (ret < 0)
		return em_err_prefix(err, "read the state of %s", sd->path);
	j = json_loads(text, 0, &jerr);
	if (!j)
		return em_err_msg(err, EINVAL, "%s/state.json: %s", sd->path, jerr.text);
	copy_str(st->id, sizeof(st->id), json_object_get(j, "id"));
	copy_str(st->bundle, sizeof(st->bundle), json_object_get(j, "bundle"));
	copy_str(st->rootfs, sizeof(st->rootfs), json_object_get(j, "rootfs"));
	copy_str(st->cgroup, sizeof(st->cgroup), json_object_get(j, "cgroup"));
	copy_str(st->created, sizeof(st->created), json_object_get(j, "created"));
	st->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	st->start_time = (uint64_t)json_integer_value(json_object_get(j, "start_time"));
	st->owner = (uid_t)json_integer_value(json_object_get(j, "owner"));
	json_decref(j);
	return 0;
}

/* /proc/<pid>/stat: "pid (comm) S ppid ..." — comm may contain spaces and ')'; parse from the
 * last ')'. Field 3 is the state, field 22 the start time. */
static int proc_stat(pid_t pid, char *state, uint64_t *start)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -1;
	*state = p[2];
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	*start = strtoull(p, NULL, 10);
	return 0;
}

uint64_t em_proc_start_time(pid_t pid)
{
	char state;
	uint64_t start;

	return proc_stat(pid, &state, &start) == 0 ? start : 0;
}

bool em_state_pid_alive(const struct em_state *st)
{
	char state;
	uint64_t start;

	if (st->pid <= 0 || proc_stat(st->pid, &state, &start) < 0)
		return false;
	return state != 'Z' && state != 'X' && start == st->start_time;
}

enum em_status em_state_status(struct em_state_dir *sd, const struct em_state *st)
{
	struct stat sb;

	if (st->pid <= 0)
		return EM_ST_CREATING;
	if (!em_state_pid_alive(st))
		return EM_ST_STOPPED;
	if (fstatat(sd->dfd, "exec.fifo", &sb, 0) == 0)
		return EM_ST_CREATED;
	return EM_ST_RUNNING;
}

char *em_state_json(const struct em_state *st, enum em_status status, const char *annotations_json)
{
	json_t *ann = NULL;
	json_t *j;
	char *text;

	if (annotations_json)
		ann = json_loads(annotations_json, 0, NULL);
	j = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:I}", "ociVersion", "1.2.0", "id", st->id,
		      "status", em_status_name(status), "pid",
		      (json_int_t)(status == EM_ST_STOPPED ? 0 : st->pid), "bundle", st->bundle,
		      "rootfs", st->rootfs, "created", st->created, "owner", (json_int_t)st->owner);
	if (!j) {
		json_decref(ann);
		return NULL;
	}
	if (ann && json_is_object(ann) && json_object_size(ann))
		json_object_set(j, "annotations", ann);
	json_decref(ann);
	text = json_dumps(j, JSON_PRESERVE_ORDER | JSON_INDENT(2));
	json_decref(j);
	return text;
}

int em_state_list(const char *root, char ***ids, size_t *n, struct em_err *err)
{
	cleanup_closedir DIR *d = opendir(root);
	struct dirent *de;
	char **v = NULL;
	size_t cnt = 0;

	*ids = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : em_err_set(err, errno, "open %s", root);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		if (em_state_check_id(de->d_name, NULL) < 0)
			continue;
		char **nv = realloc(v, (cnt + 1) * sizeof(char *));
		if (!nv)
			goto oom;
		v = nv;
		v[cnt] = strdup(de->d_name);
		if (!v[cnt])
			goto oom;
		cnt++;
	}
	*ids = v;
	*n = cnt;
	return 0;
oom:
	for (size_t i = 0; i < cnt; i++)
		free(v[i]);
	free(v);
	return em_err_set(err, ENOMEM, "list %s", root);
}
