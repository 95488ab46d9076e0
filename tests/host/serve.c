/* tests/host/serve.c — see serve.h. */
#include "tests/host/serve.h"
#include "cgroups/cgroups.h"
#include "common/err.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char exe_dir[PATH_MAX];

static const char *build_dir(void)
{
	if (!exe_dir[0]) {
		ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof(exe_dir) - 1);
		cr_assert_gt(n, 0);
		exe_dir[n] = '\0';
		*strrchr(exe_dir, '/') = '\0';   /* build/tests */
		*strrchr(exe_dir, '/') = '\0';   /* build */
	}
	return exe_dir;
}

const char *example(const char *name)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/examples/%s", build_dir(), name);
	return p;
}

static bool v2(void)
{
	struct stat st;

	return stat("/sys/fs/cgroup/memory", &st) != 0;
}

void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

void serve_start(struct serve *s)
{
	static int n;
	char ember[PATH_MAX];
	const char *argv[48];
	size_t a = 0;
	struct em_err err = { 0 };

	if (!s->dir[0]) {
		snprintf(s->dir, sizeof(s->dir), "/tmp/ember-test-host-XXXXXX");
		cr_assert_not_null(mkdtemp(s->dir));
		snprintf(s->run_dir, sizeof(s->run_dir), "%s/run", s->dir);
		snprintf(s->data_dir, sizeof(s->data_dir), "%s/data", s->dir);
		snprintf(s->sock, sizeof(s->sock), "%s/ember.sock", s->run_dir);
		snprintf(s->cg_parent, sizeof(s->cg_parent), "ember-test-host-%d-%d", (int)getpid(),
			 ++n);
	}
	snprintf(ember, sizeof(ember), "%s/ember", build_dir());
	argv[a++] = ember;
	argv[a++] = "serve";
	argv[a++] = "--socket";
	argv[a++] = s->sock;
	argv[a++] = "--run-dir";
	argv[a++] = s->run_dir;
	argv[a++] = "--data-dir";
	argv[a++] = s->data_dir;
	argv[a++] = "--cgroup-parent";
	argv[a++] = s->cg_parent;
	for (size_t i = 0; i < 16 && s->extra[i]; i++)
		argv[a++] = s->extra[i];
	argv[a] = NULL;
	s->pid = fork();
	cr_assert_geq(s->pid, 0);
	if (s->pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		char logp[256];
		snprintf(logp, sizeof(logp), "%s/serve.log", s->dir);
		int lf = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 0);
		dup2(lf, 2);
		dup2(lf, 1);
		execv(ember, (char **)argv);
		_exit(127);
	}
	for (int i = 0; i < 300; i++) {
		int st;
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			char cmd[300];
			snprintf(cmd, sizeof(cmd), "cat %s/serve.log >&2", s->dir);
			if (system(cmd)) {}
			s->pid = -1;
			cr_assert_fail("ember serve exited during start-up (status %d)", st);
		}
		if (em_client_open(s->sock, &s->c, &err) == 0)
			return;
		sleep_ms(50);
	}
	cr_assert_fail("ember serve did not listen on %s within 15 s: %s", s->sock, err.msg);
}

static void reap_host(struct serve *s, int *status)
{
	for (int i = 0; i < 600; i++) {
		if (waitpid(s->pid, status, WNOHANG) == s->pid) {
			s->pid = -1;
			return;
		}
		sleep_ms(50);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, status, 0);
	s->pid = -1;
	cr_assert_fail("ember serve did not exit within 30 s of SIGTERM");
}

int inst_count(struct serve *s)
{
	char dir[256];
	DIR *d;
	struct dirent *de;
	int n = 0;

	snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s%s", v2() ? "" : "memory/", s->cg_parent);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && de->d_name[0] == 'i')
			n++;
	closedir(d);
	return n;
}

void serve_stop(struct serve *s, bool keep)
{
	int status = 0;

	if (s->c) {
		em_client_close(s->c);
		s->c = NULL;
	}
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		reap_host(s, &status);
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "ember serve ended with status 0x%x after SIGTERM", status);
		cr_expect_eq(inst_count(s), 0, "instance cgroups left after SIGTERM");
		cr_expect_eq(access(s->sock, F_OK), -1, "socket %s left after SIGTERM", s->sock);
	}
	if (!keep)
		serve_fini(s);
}

void serve_kill9(struct serve *s)
{
	int status;

	if (s->c) {
		em_client_close(s->c);
		s->c = NULL;
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
	s->pid = -1;
}

void serve_fini(struct serve *s)
{
	char cmd[256];
	struct em_cg_root *root = NULL;
	struct em_err err = { 0 };

	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = -1;
	}
	if (s->cg_parent[0] && em_cg_root_open(&root, s->cg_parent, NULL, &err) == 0) {
		em_cg_reap_children(root, &err);
		em_cg_root_remove(root, &err);
		em_cg_root_close(root);
	}
	if (s->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
		if (system(cmd)) {}
	}
	memset(s, 0, sizeof(*s));
}

int deploy(struct serve *s, const char *name, const char *ex, unsigned memory_mb,
	   const char *extra_json, struct em_client_resp *resp)
{
	json_t *j = json_pack("{s:s,s:i}", "bundle", example(ex), "memoryMb", (json_int_t)memory_mb);
	char path[256], *body;
	struct em_err err = { 0 };
	int ret;

	if (extra_json) {
		json_t *e = json_loads(extra_json, 0, NULL);
		cr_assert_not_null(e, "bad extra JSON in the test: %s", extra_json);
		json_object_update(j, e);
		json_decref(e);
	}
	body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/functions/%s", name);
	ret = em_client_request(s->c, "PUT", path, "application/json", body, strlen(body), resp, &err);
	free(body);
	cr_assert_eq(ret, 0, "PUT %s: %s", path, err.msg);
	return resp->status;
}

int invoke(struct serve *s, const char *name, const char *payload, struct em_client_resp *resp)
{
	char path[256];
	struct em_err err = { 0 };
	int ret;

	snprintf(path, sizeof(path), "/v1/functions/%s/invoke", name);
	ret = em_client_request(s->c, "POST", path, "application/octet-stream", payload,
				payload ? strlen(payload) : 0, resp, &err);
	cr_assert_eq(ret, 0, "POST %s: %s", path, err.msg);
	return resp->status;
}

json_t *get_json(struct serve *s, const char *path, int *status)
{
	struct em_client_resp r;
	struct em_err err = { 0 };

	cr_assert_eq(em_client_request(s->c, "GET", path, NULL, NULL, 0, &r, &err), 0, "GET %s: %s",
		     path, err.msg);
	if (status)
		*status = r.status;
	return json_loads(r.body, 0, NULL);
}

const char *error_type(const struct em_client_resp *r)
{
	static char buf[128];
	json_t *j = json_loads(r->body, 0, NULL);
	const char *t = json_string_value(json_object_get(j, "errorType"));

	snprintf(buf, sizeof(buf), "%s", t ? t : "(no errorType)");
	json_decref(j);
	return buf;
}

const char *inst_cg(struct serve *s, const char *ctrl, const char *fn, const char *state, int *pid)
{
	static char out[512];
	char path[256];
	json_t *d, *e;
	size_t i;
	const char *id = NULL;

	snprintf(path, sizeof(path), "/v1/functions/%s", fn);
	d = get_json(s, path, NULL);
	json_array_foreach(json_object_get(d, "instanceList"), i, e) {
		if (!strcmp(json_string_value(json_object_get(e, "state")), state)) {
			id = json_string_value(json_object_get(e, "id"));
			if (pid)
				*pid = (int)json_integer_value(json_object_get(e, "pid"));
			break;
		}
	}
	if (id) {
		if (v2())
			snprintf(out, sizeof(out), "/sys/fs/cgroup/%s/%s", s->cg_parent, id);
		else
			snprintf(out, sizeof(out), "/sys/fs/cgroup/%s/%s/%s", ctrl, s->cg_parent, id);
	}
	json_decref(d);
	return id ? out : NULL;
}

const char *read_str(const char *dir, const char *file)
{
	static char buf[4096];
	char p[600];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	f = fopen(p, "r");
	cr_assert_not_null(f, "open %s: %s", p, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return buf;
}

unsigned long long read_ull(const char *dir, const char *file)
{
	return strtoull(read_str(dir, file), NULL, 10);
}

void serve_up(struct serve *s)
{
	memset(s, 0, sizeof(*s));
	s->extra[0] = "--capacity-mb";
	s->extra[1] = "4096";
	serve_start(s);
}

void serve_down(struct serve *s)
{
	serve_stop(s, false);
}

const char *ember_bin(void)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/ember", build_dir());
	return p;
}
