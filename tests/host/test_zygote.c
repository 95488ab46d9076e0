/* tests/host/test_zygote.c — zygote templates end to end: the real `ember serve`, functions
 * deployed with "template": "provisioned", and what the kernel holds for the template and the
 * instances forked from it (namespaces, cgroups, user namespace, capabilities, /proc, /tmp). */
#include "tests/host/serve.h"
#include "common/err.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct serve S;

static void up(void)
{
	serve_up(&S);
}

static void down(void)
{
	serve_down(&S);
}

TestSuite(zygote, .init = up, .fini = down, .timeout = 180);

/* GET the function; its template's pid (0 if none is ready) and cgroup subtree name. */
static int tmpl_pid(const char *fn, char *id, size_t cap)
{
	char path[128];
	json_t *d, *t;
	int pid = 0;

	snprintf(path, sizeof(path), "/v1/functions/%s", fn);
	d = get_json(&S, path, NULL);
	t = json_object_get(d, "template");
	if (t && !strcmp(json_string_value(json_object_get(t, "state")) ?: "", "ready")) {
		pid = (int)json_integer_value(json_object_get(t, "pid"));
		if (id)
			snprintf(id, cap, "%s", json_string_value(json_object_get(t, "id")));
	}
	json_decref(d);
	return pid;
}

static void deploy_tmpl_x(const char *fn, const char *example_name, unsigned mb,
			  const char *extra)
{
	struct em_client_resp r;

	cr_assert_eq(deploy(&S, fn, example_name, mb, extra, &r), 200, "%s", r.body);
	cr_assert_gt(tmpl_pid(fn, NULL, 0), 0, "no template after a provisioned deploy");
}

static void deploy_tmpl(const char *fn, const char *example_name, unsigned mb)
{
	deploy_tmpl_x(fn, example_name, mb, "{\"template\":\"provisioned\"}");
}

struct bg { const char *fn, *payload; int status; char start[16]; char *body; };

static void *bg_invoke(void *arg)
{
	struct bg *b = arg;
	struct em_client *c;
	struct em_client_resp r;
	struct em_err err = { 0 };
	char path[128];

	cr_assert_eq(em_client_open(S.sock, &c, &err), 0, "%s", err.msg);
	snprintf(path, sizeof(path), "/v1/functions/%s/invoke", b->fn);
	cr_assert_eq(em_client_request(c, "POST", path, NULL, b->payload, strlen(b->payload), &r,
				       &err), 0, "%s", err.msg);
	b->status = r.status;
	snprintf(b->start, sizeof(b->start), "%s", em_client_header(c, "Ember-Start") ?: "");
	b->body = strdup(r.body);
	em_client_close(c);
	return NULL;
}

/* n invocations at once: n instances. */
static void invoke_n(const char *fn, const char *payload, int n, struct bg *out)
{
	pthread_t th[8];

	for (int i = 0; i < n; i++) {
		out[i] = (struct bg){ .fn = fn, .payload = payload };
		pthread_create(&th[i], NULL, bg_invoke, &out[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

/* The pids of the function's instances in `state`, from GET (at most cap). */
static int inst_pids(const char *fn, const char *state, int *pids, char ids[][64], int cap)
{
	char path[128];
	json_t *d, *e;
	size_t i;
	int n = 0;

	snprintf(path, sizeof(path), "/v1/functions/%s", fn);
	d = get_json(&S, path, NULL);
	json_array_foreach(json_object_get(d, "instanceList"), i, e) {
		if (n < cap && !strcmp(json_string_value(json_object_get(e, "state")), state)) {
			pids[n] = (int)json_integer_value(json_object_get(e, "pid"));
			if (ids)
				snprintf(ids[n], 64, "%s", json_string_value(json_object_get(e, "id")));
			n++;
		}
	}
	json_decref(d);
	return n;
}

static unsigned long long ns_ino(int pid, const char *ns)
{
	char p[64];
	struct stat st;

	snprintf(p, sizeof(p), "/proc/%d/ns/%s", pid, ns);
	cr_assert_eq(stat(p, &st), 0, "stat %s: %s", p, strerror(errno));
	return (unsigned long long)st.st_ino;
}

/* The inode of the user namespace that owns pid's network namespace. */
static unsigned long long netns_owner(int pid)
{
	char p[64];
	struct stat st;
	int fd, ufd;

	snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s", p);
	ufd = ioctl(fd, NS_GET_USERNS);
	cr_assert_geq(ufd, 0, "NS_GET_USERNS: %s", strerror(errno));
	fstat(ufd, &st);
	close(ufd);
	close(fd);
	return (unsigned long long)st.st_ino;
}

/* The device of the filesystem at `dir` (relative) in pid's root. */
static dev_t fs_dev(int pid, const char *dir)
{
	char p[128];
	struct stat st;

	snprintf(p, sizeof(p), "/proc/%d/root/%s", pid, dir);
	cr_assert_eq(stat(p, &st), 0, "stat %s: %s", p, strerror(errno));
	return st.st_dev;
}

/* A field of /proc/pid/status. */
static const char *status_of(int pid, const char *key)
{
	static char val[256];
	char p[64], line[512];
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	f = fopen(p, "re");
	cr_assert_not_null(f, "open %s", p);
	val[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':') {
			snprintf(val, sizeof(val), "%s", line + strlen(key) + 1);
			val[strcspn(val, "\n")] = '\0';
			break;
		}
	fclose(f);
	return val + strspn(val, " \t");
}

static bool in_cgroup(int pid, const char *ctrl, const char *suffix)
{
	char p[64], line[512];
	FILE *f;
	bool found = false;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", pid);
	f = fopen(p, "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':'), *path = c ? strchr(c + 1, ':') : NULL;
		if (!path)
			continue;
		path[strcspn(path, "\n")] = '\0';
		*path = '\0';
		if ((ctrl[0] ? strstr(c + 1, ctrl) != NULL : c[1] == '\0') &&
		    strlen(path + 1) >= strlen(suffix) &&
		    !strcmp(path + 1 + strlen(path + 1) - strlen(suffix), suffix))
			found = true;
	}
	fclose(f);
	return found;
}

Test(zygote, forked_instances_get_sandboxes_of_their_own)
{
	struct bg b[2];
	int pids[4], tpid;
	char ids[4][64], tid[64], suffix[128];

	deploy_tmpl("zp", "probe", 256);
	tpid = tmpl_pid("zp", tid, sizeof(tid));
	invoke_n("zp", "sleep 300", 2, b);
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(b[i].status, 200, "%s", b[i].body);
		cr_expect_str_eq(b[i].start, "zygote", "%s", b[i].body);
		free(b[i].body);
	}
	cr_assert_eq(inst_pids("zp", "idle", pids, ids, 4), 2);

	/* the template: its own user namespace, root inside = an unprivileged uid outside */
	cr_expect_neq(ns_ino(tpid, "user"), ns_ino(getpid(), "user"));
	cr_expect(strncmp(status_of(tpid, "Uid"), "0\t", 2) != 0, "template runs as host root");
	for (int i = 0; i < 2; i++) {
		int p = pids[i];

		cr_expect(!strncmp(ids[i], tid, strlen(tid)) && ids[i][strlen(tid)] == '/',
			  "instance %s is not below its template's subtree %s", ids[i], tid);
		/* new pid/mnt/uts/ipc namespaces: not the template's, not the sibling's */
		static const char *const nss[] = { "pid", "mnt", "uts", "ipc", "net" };
		for (size_t k = 0; k < sizeof(nss) / sizeof(nss[0]); k++) {
			cr_expect_neq(ns_ino(p, nss[k]), ns_ino(tpid, nss[k]), "%s ns = template's",
				      nss[k]);
			cr_expect_neq(ns_ino(p, nss[k]), ns_ino(pids[1 - i], nss[k]),
				      "%s ns shared between instances", nss[k]);
		}
		/* the template's user namespace, and a network namespace from its pool (owned by it) */
		cr_expect_eq(ns_ino(p, "user"), ns_ino(tpid, "user"));
		cr_expect_eq(netns_owner(p), ns_ino(tpid, "user"));
		/* pid 1 of its own pid namespace (NSpid: host, template's namespace, its own) */
		const char *nspid = status_of(p, "NSpid");
		cr_expect_str_eq(strrchr(nspid, '\t') ? strrchr(nspid, '\t') + 1 : nspid, "1",
				 "NSpid %s", nspid);
		/* its own cgroup with the function's limits, in the v1 controllers and unified */
		snprintf(suffix, sizeof(suffix), "/%s", ids[i]);
		cr_expect(in_cgroup(p, "memory", suffix), "not in its memory cgroup %s", suffix);
		cr_expect(in_cgroup(p, "", suffix), "not in its unified cgroup %s", suffix);
		cr_expect_eq(read_ull(inst_cg(&S, "memory", "zp", "idle", NULL),
				      "memory.limit_in_bytes"), 256ull << 20);
		/* no CAP_SYS_ADMIN (bit 21) left, no_new_privs */
		unsigned long long eff = strtoull(status_of(p, "CapEff"), NULL, 16);
		cr_expect_eq(eff & (1ull << 21), 0, "CapEff %llx", eff);
		cr_expect_eq(strtoull(status_of(p, "CapPrm"), NULL, 16) & (1ull << 21), 0);
		cr_expect_str_eq(status_of(p, "NoNewPrivs"), "1");
		/* its own /tmp, /dev/shm and /proc: other filesystems than the template's and the
		 * sibling's (seen through each process's root) */
		static const char *const dirs[] = { "tmp", "dev/shm", "proc", "dev/mqueue" };
		for (size_t k = 0; k < sizeof(dirs) / sizeof(dirs[0]); k++)
			cr_expect(fs_dev(p, dirs[k]) != fs_dev(tpid, dirs[k]) &&
				  fs_dev(p, dirs[k]) != fs_dev(pids[1 - i], dirs[k]),
				  "/%s is shared with the template or the sibling", dirs[k]);
	}
	/* idle instances of a forked function are frozen (the freezer saw them: v1 attach) */
	cr_expect_str_eq(read_str(inst_cg(&S, "freezer", "zp", "idle", NULL), "freezer.state"),
			 "FROZEN");
}

Test(zygote, python_instances_see_only_themselves_and_differ_in_random)
{
	struct bg b[2];
	json_t *j[2];

	deploy_tmpl("zpy", "probe-python", 256);
	/* two new instances forked at once: their first draws must differ (random re-seeds in the
	 * at-fork hook; without it both continue the template's sequence) */
	invoke_n("zpy", "rand", 2, b);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(b[i].status, 200, "%s", b[i].body);
		cr_expect_str_eq(b[i].start, "zygote");
		j[i] = json_loads(b[i].body, 0, NULL);
	}
	cr_expect_str_neq(json_string_value(json_object_get(j[0], "random")),
			  json_string_value(json_object_get(j[1], "random")),
			  "random module state shared: %s / %s", b[0].body, b[1].body);
	cr_expect_str_neq(json_string_value(json_object_get(j[0], "urandom")),
			  json_string_value(json_object_get(j[1], "urandom")));
	for (int i = 0; i < 2; i++) {
		json_decref(j[i]);
		free(b[i].body);
	}
	/* each writes a file of a random name in /tmp, then in /dev/shm: each sees its own only,
	 * none of the sibling's or the template's */
	static const char *const cmds[] = { "write", "shm" };
	for (int k = 0; k < 2; k++) {
		invoke_n("zpy", cmds[k], 2, b);
		for (int i = 0; i < 2; i++) {
			json_t *d = json_loads(b[i].body, 0, NULL);

			cr_assert_eq(b[i].status, 200, "%s", b[i].body);
			cr_expect_str_eq(b[i].start, "warm");
			cr_expect_eq(json_array_size(json_object_get(d, k ? "shm" : "tmp")), 1,
				     "%s sees more than its own file: %s", cmds[k], b[i].body);
			json_decref(d);
			free(b[i].body);
		}
	}
	invoke_n("zpy", "pid", 2, b);
	for (int i = 0; i < 2; i++) {
		j[i] = json_loads(b[i].body, 0, NULL);
		cr_assert_not_null(j[i], "%s", b[i].body);
		/* pid 1 of its namespace, forked from a template whose init ran elsewhere */
		cr_expect_eq(json_integer_value(json_object_get(j[i], "pid")), 1);
		/* its /proc shows its own pid namespace: itself only */
		cr_expect_eq(json_array_size(json_object_get(j[i], "procs")), 1, "%s", b[i].body);
		free(b[i].body);
		json_decref(j[i]);
	}
}

Test(zygote, c_instances_differ_in_their_generators)
{
	struct bg b[2];

	deploy_tmpl("zr", "probe", 128);
	invoke_n("zr", "prng", 2, b);
	cr_assert_eq(b[0].status, 200, "%s", b[0].body);
	cr_assert_eq(b[1].status, 200, "%s", b[1].body);
	cr_expect_str_eq(b[0].start, "zygote");
	cr_expect_str_eq(b[1].start, "zygote");
	/* the probe seeds its generator at init and again in after_fork */
	cr_expect_str_neq(b[0].body, b[1].body);
	free(b[0].body);
	free(b[1].body);
	invoke_n("zr", "rand", 2, b);
	cr_expect_str_neq(b[0].body, b[1].body);
	free(b[0].body);
	free(b[1].body);
}

Test(zygote, limits_hold_for_forked_instances)
{
	struct em_client_resp r;

	/* 128 MB would get 7 % of a CPU, and reaching its limit (page faults, then reclaim) takes
	 * 40-60 s of wall time here; 512 MB gets 29 % */
	deploy_tmpl_x("zl", "probe", 512, "{\"template\":\"provisioned\",\"timeoutMs\":120000}");
	cr_assert_eq(invoke(&S, "zl", "oom", &r), 502, "%s", r.body);
	cr_expect_str_eq(em_client_header(S.c, "Ember-Start"), "zygote");
	cr_expect_str_eq(error_type(&r), "Function.OutOfMemory", "%s", r.body);
	cr_expect(strstr(r.body, "512 MB") != NULL, "%s", r.body);
	cr_assert_eq(invoke(&S, "zl", "fork 1100", &r), 200, "%s", r.body);
	json_t *j = json_loads(r.body, 0, NULL);
	json_int_t forked = json_integer_value(json_object_get(j, "forked"));
	cr_expect(forked > 100 && forked < 1024, "forked %d of 1100 (pids.max 1024): %s",
		  (int)forked, r.body);
	json_decref(j);
	cr_assert_eq(invoke(&S, "zl", "crash", &r), 502, "%s", r.body);
	cr_expect_str_eq(error_type(&r), "Function.Crashed", "%s", r.body);
	cr_expect(strstr(r.body, "SIGSEGV") != NULL, "%s", r.body);
	cr_assert_eq(invoke(&S, "zl", "exit 3", &r), 502, "%s", r.body);
	cr_expect(strstr(r.body, "status 3") != NULL, "%s", r.body);
	cr_expect_gt(tmpl_pid("zl", NULL, 0), 0);
	deploy_tmpl("zt", "probe", 128);
	cr_assert_eq(invoke(&S, "zt", "sleep 5000", &r), 504, "%s", r.body);
	cr_expect_str_eq(em_client_header(S.c, "Ember-Start"), "zygote");
	/* the template outlived all of it */
	cr_expect_gt(tmpl_pid("zt", NULL, 0), 0);
}

Test(zygote, a_killed_template_falls_back_to_cold_and_is_remade)
{
	struct em_client_resp r;
	int old, now = 0;

	deploy_tmpl("zk", "probe", 128);
	old = tmpl_pid("zk", NULL, 0);
	cr_assert_eq(kill(old, SIGKILL), 0);
	cr_assert_eq(invoke(&S, "zk", "echo hi", &r), 200, "%s", r.body);
	cr_expect_str_eq(em_client_header(S.c, "Ember-Start"), "cold");
	for (int i = 0; i < 100 && (now = tmpl_pid("zk", NULL, 0)) <= 0; i++)
		sleep_ms(100);
	cr_assert_gt(now, 0, "no new template");
	cr_expect_neq(now, old);
	/* a new instance comes from the new template, once it has a slot ready */
	int pids[8];
	char ids[8][64];
	bool slot = false;
	for (int i = 0; i < 100 && !slot; i++) {
		int n = inst_pids("zk", "parked", pids, ids, 8);
		for (int k = 0; k < n; k++)
			slot |= strchr(ids[k], '/') != NULL;
		if (!slot)
			sleep_ms(100);
	}
	cr_expect(slot, "no fork slot parked");
	struct bg b[2];
	invoke_n("zk", "sleep 200", 2, b);
	cr_expect(!strcmp(b[0].start, "zygote") || !strcmp(b[1].start, "zygote"), "%s %s",
		  b[0].start, b[1].start);
	free(b[0].body);
	free(b[1].body);
}

Test(zygote, redeploy_retires_the_old_template)
{
	struct em_client_resp r;
	char old_id[64], new_id[64], dir[256];
	int old, now;

	deploy_tmpl("zd", "probe", 128);
	old = tmpl_pid("zd", old_id, sizeof(old_id));
	cr_assert_eq(invoke(&S, "zd", "echo a", &r), 200, "%s", r.body);
	deploy_tmpl("zd", "probe", 128);
	now = tmpl_pid("zd", new_id, sizeof(new_id));
	cr_expect_neq(now, old);
	cr_expect_str_neq(new_id, old_id);
	for (int i = 0; i < 50 && kill(old, 0) == 0; i++)
		sleep_ms(100);
	cr_expect_eq(kill(old, 0), -1, "old template %d still alive", old);
	snprintf(dir, sizeof(dir), "/sys/fs/cgroup/memory/%s/%s", S.cg_parent, old_id);
	cr_expect_eq(access(dir, F_OK), -1, "old template's cgroups %s remain", dir);
	cr_assert_eq(invoke(&S, "zd", "echo b", &r), 200, "%s", r.body);
}

/* What the template's uid may do with cgroups: place processes inside its own subtree, nowhere
 * else. Checked with a process of that uid (as the template's root is, outside its namespace). */
Test(zygote, the_template_uid_cannot_write_outside_its_subtree)
{
	char tid[64], other_id[64], path[512];
	int tpid, pids[2], st;
	uid_t uid;
	pid_t c;

	deploy_tmpl("zc", "probe", 128);
	cr_assert_eq(deploy(&S, "zo", "probe", 128, "{\"template\":\"off\"}", &(struct em_client_resp){ 0 }), 200);
	tpid = tmpl_pid("zc", tid, sizeof(tid));
	uid = (uid_t)strtoul(status_of(tpid, "Uid"), NULL, 10);
	cr_assert_gt(uid, 65535);
	cr_assert_eq(inst_pids("zo", "parked", pids, (char (*)[64])other_id, 1), 1);

	c = fork();
	if (c == 0) {
		char mine[512], theirs[512], top[512];
		int fd, bad = 0;

		snprintf(mine, sizeof(mine), "/sys/fs/cgroup/unified/%s/%s/cgroup.procs", S.cg_parent,
			 tid);
		snprintf(theirs, sizeof(theirs), "/sys/fs/cgroup/unified/%s/%s/cgroup.procs",
			 S.cg_parent, other_id);
		snprintf(top, sizeof(top), "/sys/fs/cgroup/unified/%s/cgroup.procs", S.cg_parent);
		if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
			_exit(10);
		/* its own subtree's top: writable (this is what CLONE_INTO_CGROUP needs) */
		fd = open(mine, O_WRONLY);
		if (fd < 0)
			bad |= 1;
		else
			close(fd);
		/* another function's cgroup, the host's parent, a limit file: not */
		if (open(theirs, O_WRONLY) >= 0 || errno != EACCES)
			bad |= 2;
		if (open(top, O_WRONLY) >= 0 || errno != EACCES)
			bad |= 4;
		snprintf(mine, sizeof(mine), "/sys/fs/cgroup/memory/%s/%s/memory.limit_in_bytes",
			 S.cg_parent, tid);
		if (open(mine, O_WRONLY) >= 0 || errno != EACCES)
			bad |= 8;
		_exit(bad);
	}
	cr_assert_eq(waitpid(c, &st, 0), c);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "uid %u: status %#x (1: own subtree "
		  "refused, 2: another cgroup allowed, 4: the parent allowed, 8: a limit allowed)",
		  (unsigned)uid, st);
	(void)path;
}

Test(zygote, template_off_and_bad_values)
{
	struct em_client_resp r;
	json_t *d;

	cr_assert_eq(deploy(&S, "zn", "hello-c", 128, "{\"template\":\"off\"}", &r), 200, "%s",
		     r.body);
	cr_assert_eq(invoke(&S, "zn", "x", &r), 200, "%s", r.body);
	sleep_ms(300);
	d = get_json(&S, "/v1/functions/zn", NULL);
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(d, "template"),
							   "state")), "off");
	json_decref(d);
	cr_assert_eq(deploy(&S, "zb", "hello-c", 128, "{\"template\":\"sometimes\"}", &r), 400);
	cr_expect(strstr(r.body, "template: must be \\\"auto\\\", \\\"provisioned\\\" or \\\"off\\\"") != NULL,
		  "%s", r.body);
}

/* A template's big heap is collapsed into transparent huge pages before its READY
 * (ember_zygote_prepare): each fork then copies one page-table entry per 2 MB. */
Test(zygote, a_template_heap_is_backed_by_huge_pages)
{
	char path[64], line[256];
	long long huge = -1;
	FILE *f;
	int tpid;

	deploy_tmpl_x("zh", "init-heavy-c", 1769, "{\"template\":\"provisioned\","
		      "\"environment\":{\"TABLE_MB\":\"32\"}}");
	tpid = tmpl_pid("zh", NULL, 0);
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", tpid);
	f = fopen(path, "re");
	cr_assert_not_null(f, "%s", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %lld kB", &huge) == 1)
			break;
	fclose(f);
	/* the 32 MB table, give or take its unaligned ends */
	cr_expect_geq(huge, 28 * 1024, "AnonHugePages %lld kB", huge);
}

/* Bridge mode: a forked instance's eth0 comes from the template's pool (owned by its user
 * namespace), attached to the host's bridge like a cold instance's. */
Test(zygote, bridge_mode_instances_get_an_eth0)
{
	struct bg b[2];
	int pids[2], tpid;

	deploy_tmpl_x("zbr", "probe", 128, "{\"template\":\"provisioned\",\"network\":\"bridge\"}");
	tpid = tmpl_pid("zbr", NULL, 0);
	invoke_n("zbr", "net", 2, b);
	for (int i = 0; i < 2; i++) {
		json_t *j = json_loads(b[i].body, 0, NULL);

		cr_assert_eq(b[i].status, 200, "%s", b[i].body);
		cr_expect_str_eq(b[i].start, "zygote");
		cr_expect_eq(json_array_size(json_object_get(j, "interfaces")), 2, "%s", b[i].body);
		cr_expect(strstr(b[i].body, "eth0") != NULL, "%s", b[i].body);
		json_decref(j);
		free(b[i].body);
	}
	cr_assert_eq(inst_pids("zbr", "idle", pids, NULL, 2), 2);
	for (int i = 0; i < 2; i++)
		cr_expect_eq(netns_owner(pids[i]), ns_ino(tpid, "user"));
}

/* A provisioned deploy makes room for its template by reaping idle instances (least recently
 * used first), as a cold start does; the template counts in the node's memory, and an unused
 * template is evicted when an invocation needs the room. */
Test(zygote, a_provisioned_template_reaps_idle_instances_for_room)
{
	struct em_client_resp r;

	/* capacity 4096 MB (up()): an idle 1769 MB instance and a 1769 MB template fill it */
	cr_assert_eq(deploy(&S, "za", "hello-c", 1769, "{\"template\":\"off\"}", &r), 200, "%s",
		     r.body);
	cr_assert_eq(invoke(&S, "za", "x", &r), 200, "%s", r.body);
	cr_assert_not_null(inst_cg(&S, "memory", "za", "idle", NULL));
	deploy_tmpl("zb2", "hello-c", 1769);
	/* no room for a third 1769 MB template next to them without the idle instance */
	deploy_tmpl("zc2", "hello-c", 1769);
	cr_expect_null(inst_cg(&S, "memory", "za", "idle", NULL), "the idle instance was kept");
	/* an instance of zc2 needs room too: zb2's unused template goes, zc2's stays */
	int zb2 = tmpl_pid("zb2", NULL, 0);
	cr_assert_eq(invoke(&S, "zc2", "x", &r), 200, "%s", r.body);
	cr_expect_str_eq(em_client_header(S.c, "Ember-Start"), "zygote");
	cr_expect_gt(tmpl_pid("zc2", NULL, 0), 0);
	cr_expect_eq(tmpl_pid("zb2", NULL, 0), 0, "zb2's template was kept");
	for (int i = 0; i < 50 && kill(zb2, 0) == 0; i++)
		sleep_ms(100);
	cr_expect_eq(kill(zb2, 0), -1, "zb2's template process %d is alive", zb2);
}

/* What an operator sees: `ember fn ls` names the template's state and process. */
Test(zygote, fn_ls_shows_the_template)
{
	char cmd[1024], line[512], want[64];
	bool seen = false;
	FILE *p;
	int tpid;

	deploy_tmpl("zls", "hello-c", 128);
	tpid = tmpl_pid("zls", NULL, 0);
	snprintf(want, sizeof(want), "ready (pid %d)", tpid);
	snprintf(cmd, sizeof(cmd), "%s fn ls --socket %s", ember_bin(), S.sock);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (fgets(line, sizeof(line), p)) {
		if (!strncmp(line, "NAME ", 5))
			cr_expect(strstr(line, "TEMPLATE") != NULL, "%s", line);
		if (!strncmp(line, "zls ", 4)) {
			seen = true;
			cr_expect(strstr(line, want) != NULL, "no \"%s\" in: %s", want, line);
		}
	}
	cr_expect_eq(pclose(p), 0);
	cr_expect(seen, "zls not listed");
}
