/* tests/host/test_snapshot.c — template snapshots end to end (issue 8): the real `ember serve`,
 * functions deployed with a snapshot policy, a host restart, and what the kernel and the disk then
 * hold: the image under the data directory, a template restored from it (its memory, its
 * process), instances forked from it answering as the original did, limits and billing on them;
 * and images the host must refuse (corrupted, truncated, another version, another binary), after
 * which it falls back to the init and leaves nothing behind. */
#include "tests/host/serve.h"
#include "common/err.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

TestSuite(snapshot, .init = up, .fini = down, .timeout = 300);

static json_t *fn_get(const char *fn)
{
	char path[128];
	json_t *d;

	snprintf(path, sizeof(path), "/v1/functions/%s", fn);
	d = get_json(&S, path, NULL);
	cr_assert_not_null(d, "GET %s", path);
	return d;
}

/* The function's snapshot.<key> (static buffer; "" if absent). */
static const char *snap_field(const char *fn, const char *key)
{
	static char buf[1024];
	json_t *d = fn_get(fn);

	snprintf(buf, sizeof(buf), "%s",
		 json_string_value(json_object_get(json_object_get(d, "snapshot"), key)) ?: "");
	json_decref(d);
	return buf;
}

/* The ready template's pid (0: none) and whether it was restored. */
static int tmpl(const char *fn, bool *restored)
{
	json_t *d = fn_get(fn), *t = json_object_get(d, "template");
	int pid = 0;

	if (!strcmp(json_string_value(json_object_get(t, "state")) ?: "", "ready")) {
		pid = (int)json_integer_value(json_object_get(t, "pid"));
		if (restored)
			*restored = json_is_true(json_object_get(t, "restored"));
	}
	json_decref(d);
	return pid;
}

static void image_path(const char *fn, unsigned version, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/snapshots/%s-v%u.img", S.data_dir, fn, version);
}

struct call { int status; char start[16]; double init_ms; char *body; };

/* One invocation on a connection of its own; the body strdup'd. */
static struct call call(const char *fn, const char *payload)
{
	struct em_client *c;
	struct em_client_resp r;
	struct em_err err = { 0 };
	struct call out = { 0 };
	char path[128];

	cr_assert_eq(em_client_open(S.sock, &c, &err), 0, "%s", err.msg);
	snprintf(path, sizeof(path), "/v1/functions/%s/invoke", fn);
	cr_assert_eq(em_client_request(c, "POST", path, NULL, payload, strlen(payload), &r, &err), 0,
		     "%s", err.msg);
	out.status = r.status;
	snprintf(out.start, sizeof(out.start), "%s", em_client_header(c, "Ember-Start") ?: "");
	out.init_ms = atof(em_client_header(c, "Ember-Init-Ms") ?: "0");
	out.body = strdup(r.body);
	em_client_close(c);
	return out;
}

struct bg { const char *fn, *payload; struct call r; };

static void *bg_call(void *arg)
{
	struct bg *b = arg;

	b->r = call(b->fn, b->payload);
	return NULL;
}

/* n invocations at once (n instances). */
static void call_n(const char *fn, const char *payload, int n, struct bg *out)
{
	pthread_t th[4];

	for (int i = 0; i < n; i++) {
		out[i] = (struct bg){ .fn = fn, .payload = payload };
		pthread_create(&th[i], NULL, bg_call, &out[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

static void restart(void)
{
	serve_stop(&S, true);
	serve_start(&S);
}

/* kB of a /proc/PID/status field. */
static unsigned long long status_kb(int pid, const char *key)
{
	char p[64], line[256];
	unsigned long long v = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/status", pid);
	f = fopen(p, "re");
	cr_assert_not_null(f, "open %s", p);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			v = strtoull(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

/* Bytes of pid's address space mapped from the file at path (its /proc/PID/maps, read here: paths
 * in this process's view). */
static unsigned long long mapped_from(int pid, const char *path)
{
	char p[64], line[1024];
	unsigned long long sum = 0, a, b;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/maps", pid);
	f = fopen(p, "re");
	cr_assert_not_null(f, "open %s", p);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		size_t l = strlen(line), pl = strlen(path);
		if (l > pl && !strcmp(line + l - pl, path) && sscanf(line, "%llx-%llx", &a, &b) == 2)
			sum += b - a;
	}
	fclose(f);
	return sum;
}

/* The function's last invocation record (ledger) field, as text. */
static const char *last_record(const char *fn, const char *key)
{
	static char buf[128];
	char path[128];
	json_t *a, *o;

	snprintf(path, sizeof(path), "/v1/functions/%s/invocations?limit=1", fn);
	a = get_json(&S, path, NULL);
	o = json_is_array(a) ? json_array_get(a, 0) : json_object_get(a, "invocations") ?
		json_array_get(json_object_get(a, "invocations"), 0) : NULL;
	cr_assert_not_null(o, "no invocation record for %s", fn);
	json_t *v = json_object_get(o, key);
	if (json_is_string(v))
		snprintf(buf, sizeof(buf), "%s", json_string_value(v));
	else if (json_is_number(v))
		snprintf(buf, sizeof(buf), "%g", json_number_value(v));
	else
		buf[0] = '\0';
	json_decref(a);
	return buf;
}

/* Deploy, check the image, call once (zygote), restart, call again: it must be a restore that
 * answers the same; returns the restored template's pid. */
static int restore_roundtrip(const char *fn, const char *example_name, unsigned mb,
			     const char *extra, const char *payload, char **answer)
{
	struct em_client_resp r;
	struct call a, b;
	struct stat st;
	char img[512];
	bool restored = false;
	int pid;

	cr_assert_eq(deploy(&S, fn, example_name, mb, extra, &r), 200, "%s", r.body);
	cr_assert_str_eq(snap_field(fn, "state"), "ready", "no image after a provisioned deploy: %s",
			 snap_field(fn, "lastError"));
	image_path(fn, 1, img, sizeof(img));
	cr_assert_str_eq(snap_field(fn, "image"), img);
	cr_assert_eq(stat(img, &st), 0, "%s: %s", img, strerror(errno));
	cr_expect_eq(st.st_mode & 0777, 0600, "image mode %o", st.st_mode & 0777);
	a = call(fn, payload);
	cr_assert_eq(a.status, 200, "%s", a.body);
	cr_expect_str_eq(a.start, "zygote");

	restart();
	b = call(fn, payload);
	cr_assert_eq(b.status, 200, "%s", b.body);
	cr_expect_str_eq(b.start, "restore", "the first invocation after a restart: %s", b.start);
	cr_expect_str_eq(b.body, a.body, "the restored template answers differently");
	cr_expect_gt(b.init_ms, 0.0);
	pid = tmpl(fn, &restored);
	cr_assert_gt(pid, 0, "no template after the restore");
	cr_expect(restored, "the template was not restored from the image");
	/* billed like any instance: the record of the restore's invocation has its time and CPU */
	cr_expect_str_eq(last_record(fn, "start"), "restore");
	cr_expect_gt(atof(last_record(fn, "billedMs")), 0.0, "billedMs %s",
		     last_record(fn, "billedMs"));
	*answer = a.body;
	free(b.body);
	return pid;
}

Test(snapshot, c_template_with_256_mb_restores_after_a_host_restart)
{
	char *answer, cg[512];
	struct call c;
	int pid;

	pid = restore_roundtrip("snc", "init-heavy-c", 1024,
				"{\"snapshot\":\"provisioned\",\"restore\":\"eager\","
				"\"environment\":{\"TABLE_MB\":\"256\"}}", "", &answer);
	/* eager: the table is in the restored template's anonymous memory, not recomputed */
	cr_expect_geq(status_kb(pid, "RssAnon"), 250ull * 1024, "RssAnon %llu kB",
		      status_kb(pid, "RssAnon"));
	/* its instances keep the function's limits */
	snprintf(cg, sizeof(cg), "%s", inst_cg(&S, "memory", "snc", "idle", NULL) ?: "");
	cr_assert(cg[0], "no idle instance after the restore's invocation");
	cr_expect_eq(read_ull(cg, "memory.limit_in_bytes"), 1024ull << 20);
	/* later instances fork from the restored template */
	c = call("snc", "1 2 3");
	cr_expect_eq(c.status, 200, "%s", c.body);
	cr_expect(!strcmp(c.start, "warm") || !strcmp(c.start, "zygote"), "%s", c.start);
	free(c.body);
	free(answer);
}

Test(snapshot, python_template_restores_after_a_host_restart)
{
	char *answer;
	int pid;

	char img[512];

	pid = restore_roundtrip("snp", "init-heavy-python", 1024,
				"{\"snapshot\":\"provisioned\",\"environment\":{\"TABLE_MB\":\"192\"}}",
				"", &answer);
	/* mmap (the default): the table is a private mapping of the image, not recomputed */
	image_path("snp", 1, img, sizeof(img));
	cr_expect_geq(mapped_from(pid, img), 190ull << 20, "%llu bytes of %s mapped",
		      mapped_from(pid, img), img);
	free(answer);
}

/* Instances of restored templates draw their own random numbers: two at once from one restore,
 * and one from each of two restores of the same image. */
static void random_differs(const char *example_name, const char *cmd)
{
	struct em_client_resp r;
	struct bg b[2];
	struct call again;
	char *first;

	cr_assert_eq(deploy(&S, "snr", example_name, 256, "{\"snapshot\":\"provisioned\"}", &r), 200,
		     "%s", r.body);
	restart();
	call_n("snr", cmd, 2, b);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(b[i].r.status, 200, "%s", b[i].r.body);
	cr_expect(!strcmp(b[0].r.start, "restore") || !strcmp(b[1].r.start, "restore"),
		  "%s %s", b[0].r.start, b[1].r.start);
	cr_expect_str_neq(b[0].r.body, b[1].r.body, "two instances of a restored template drew the "
			  "same number: %s", b[0].r.body);
	first = b[0].r.body;
	free(b[1].r.body);
	restart();
	again = call("snr", cmd);
	cr_assert_eq(again.status, 200, "%s", again.body);
	cr_expect_str_eq(again.start, "restore");
	cr_expect_str_neq(again.body, first, "two restores of one image drew the same number");
	free(again.body);
	free(first);
}

Test(snapshot, c_restored_instances_draw_different_random_numbers)
{
	random_differs("probe", "prng");
}

Test(snapshot, python_restored_instances_draw_different_random_numbers)
{
	random_differs("probe-python", "rand");
}

/* Damage the image of fn version 1 while the host is down; the restart must refuse it, make the
 * template by init, answer, dump a fresh image and leave nothing of the failed restore. */
static void refused(const char *fn, void (*damage)(const char *img), const char *why)
{
	struct em_client_resp r;
	char img[512];
	struct call c;
	bool restored = true;

	cr_assert_eq(deploy(&S, fn, "probe", 256, "{\"snapshot\":\"provisioned\"}", &r), 200, "%s",
		     r.body);
	image_path(fn, 1, img, sizeof(img));
	serve_stop(&S, true);
	damage(img);
	serve_start(&S);
	c = call(fn, "pid");
	cr_assert_eq(c.status, 200, "%s", c.body);
	cr_expect_str_neq(c.start, "restore", "a %s image was restored", why);
	free(c.body);
	cr_expect(strstr(snap_field(fn, "lastError"), why) != NULL,
		  "the refusal does not say \"%s\": %s", why, snap_field(fn, "lastError"));
	/* the template was made by its init and dumped again */
	for (int i = 0; i < 100 && !tmpl(fn, &restored); i++)
		sleep_ms(100);
	cr_expect_gt(tmpl(fn, &restored), 0);
	cr_expect(!restored);
	cr_expect_str_eq(snap_field(fn, "state"), "ready", "no fresh image after the refusal");
	/* serve_down (fini) checks that no cgroup or process of the refused restore is left */
}

static void flip_metadata(const char *img)
{
	int fd = open(img, O_RDWR);
	struct stat st;
	unsigned char b;

	cr_assert_geq(fd, 0);
	fstat(fd, &st);
	cr_assert_eq(pread(fd, &b, 1, st.st_size - 100), 1);
	b ^= 0x40;
	cr_assert_eq(pwrite(fd, &b, 1, st.st_size - 100), 1);
	close(fd);
}

/* A byte of the page data: only the page checksums can tell (the host checks them on the first
 * restore of an image it did not write itself). */
static void flip_page_data(const char *img)
{
	int fd = open(img, O_RDWR);
	unsigned char b;

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &b, 1, 4096 + 1000), 1);
	b ^= 0x01;
	cr_assert_eq(pwrite(fd, &b, 1, 4096 + 1000), 1);
	close(fd);
}

static void truncate_half(const char *img)
{
	struct stat st;

	cr_assert_eq(stat(img, &st), 0);
	cr_assert_eq(truncate(img, st.st_size / 2), 0);
}

static void other_version(const char *img)
{
	int fd = open(img, O_RDWR);
	uint32_t v = 99;

	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, &v, sizeof(v), 8), (ssize_t)sizeof(v)); /* header.version */
	close(fd);
}

Test(snapshot, a_corrupted_image_is_refused_and_the_init_runs)
{
	refused("snx", flip_metadata, "checksum");
}

Test(snapshot, a_corrupted_page_is_refused_on_the_first_restore_after_a_restart)
{
	refused("snd", flip_page_data, "data checksum mismatch");
}

Test(snapshot, a_truncated_image_is_refused)
{
	refused("snt", truncate_half, "truncated");
}

Test(snapshot, an_image_of_another_format_version_is_refused)
{
	refused("snv", other_version, "version");
}

/* An image of another binary (copied over this function's) is refused by the restorer, in the
 * sandbox, by the executable's build id. */
Test(snapshot, an_image_of_another_binary_is_refused)
{
	struct em_client_resp r;
	char mine[512], other[512], cmd[1200];
	struct call c;

	cr_assert_eq(deploy(&S, "snb1", "probe", 256, "{\"snapshot\":\"provisioned\"}", &r), 200,
		     "%s", r.body);
	cr_assert_eq(deploy(&S, "snb2", "hello-c", 128, "{\"snapshot\":\"provisioned\"}", &r), 200,
		     "%s", r.body);
	image_path("snb1", 1, mine, sizeof(mine));
	image_path("snb2", 1, other, sizeof(other));
	serve_stop(&S, true);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", other, mine);
	cr_assert_eq(system(cmd), 0);
	serve_start(&S);
	c = call("snb1", "pid");
	cr_assert_eq(c.status, 200, "%s", c.body);
	cr_expect_str_neq(c.start, "restore");
	free(c.body);
	cr_expect(strstr(snap_field("snb1", "lastError"), "Restore.BuildId") != NULL, "%s",
		  snap_field("snb1", "lastError"));
}

/* Scale-out: the image of one copy of a bundle restores a function deployed from another copy
 * (other inodes, the same files and times: what another node holds). Only a changed file counts. */
Test(snapshot, an_image_restores_from_another_copy_of_the_bundle)
{
	struct em_client_resp r;
	char copy[64] = "/tmp/ember-test-bundle-XXXXXX", cmd[1400], mine[512], theirs[512];
	struct call c;
	bool restored = false;

	cr_assert_not_null(mkdtemp(copy));
	snprintf(cmd, sizeof(cmd), "cp -a '%s/.' '%s/'", example("probe"), copy);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	cr_assert_eq(deploy(&S, "snn1", "probe", 256, "{\"snapshot\":\"provisioned\"}", &r), 200,
		     "%s", r.body);
	json_t *j = json_pack("{s:s,s:i,s:s}", "bundle", copy, "memoryMb", 256, "snapshot",
			      "provisioned");
	char *body = json_dumps(j, JSON_COMPACT);
	struct em_err err = { 0 };
	json_decref(j);
	cr_assert_eq(em_client_request(S.c, "PUT", "/v1/functions/snn2", "application/json", body,
				       strlen(body), &r, &err), 0, "%s", err.msg);
	free(body);
	cr_assert_eq(r.status, 200, "%s", r.body);
	image_path("snn1", 1, theirs, sizeof(theirs));
	image_path("snn2", 1, mine, sizeof(mine));
	serve_stop(&S, true);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", theirs, mine);
	cr_assert_eq(system(cmd), 0);
	serve_start(&S);
	c = call("snn2", "pid");
	cr_expect_eq(c.status, 200, "%s", c.body);
	cr_expect_str_eq(c.start, "restore", "the other copy's image was not used: %s",
			 snap_field("snn2", "lastError"));
	free(c.body);
	cr_expect_gt(tmpl("snn2", &restored), 0);
	cr_expect(restored);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", copy);
	cr_expect_eq(system(cmd), 0);
}

Test(snapshot, lazy_restore_answers_and_records_its_working_set)
{
	char *answer, img[512], ws[600];
	struct call c;

	restore_roundtrip("snl", "init-heavy-c", 512,
			  "{\"snapshot\":\"provisioned\",\"restore\":\"lazy\","
			  "\"environment\":{\"TABLE_MB\":\"128\"}}", "", &answer);
	image_path("snl", 1, img, sizeof(img));
	snprintf(ws, sizeof(ws), "%s.ws", img);
	cr_expect_eq(access(ws, F_OK), 0, "no working set recorded after the first lazy restore");
	/* the next restore prefetches it and answers the same */
	restart();
	c = call("snl", "");
	cr_assert_eq(c.status, 200, "%s", c.body);
	cr_expect_str_eq(c.start, "restore");
	cr_expect_str_eq(c.body, answer);
	free(c.body);
	free(answer);
}

Test(snapshot, mmap_restore_answers)
{
	char *answer;

	restore_roundtrip("snm", "init-heavy-c", 512,
			  "{\"snapshot\":\"provisioned\",\"restore\":\"mmap\","
			  "\"environment\":{\"TABLE_MB\":\"128\"}}", "", &answer);
	free(answer);
}

/* Run `ember snapshot WHAT NAME --socket ...`: its exit status, its output (stdout and stderr). */
static int snapshot_cli(const char *what, const char *fn, char *out, size_t cap)
{
	char cmd[1024];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "%s snapshot %s %s --socket %s 2>&1", ember_bin(), what, fn,
		 S.sock);
	p = popen(cmd, "r");
	cr_assert_not_null(p, "%s", cmd);
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	return WEXITSTATUS(pclose(p));
}

/* `ember snapshot create|restore NAME`, as an operator runs them. */
Test(snapshot, cli_creates_and_restores)
{
	struct em_client_resp r;
	char out[2048];
	bool restored = false;
	int old;

	cr_assert_eq(deploy(&S, "sncli", "probe", 256, "{\"snapshot\":\"auto\",\"template\":"
			    "\"provisioned\"}", &r), 200, "%s", r.body);
	old = tmpl("sncli", NULL);
	cr_expect_eq(snapshot_cli("create", "sncli", out, sizeof(out)), 0, "%s", out);
	cr_expect(strstr(out, "sncli-v1.img") != NULL, "%s", out);

	cr_expect_eq(snapshot_cli("restore", "sncli", out, sizeof(out)), 0, "%s", out);
	cr_expect(strstr(out, "restored from") != NULL, "%s", out);
	cr_expect_neq(tmpl("sncli", &restored), old, "the template was not replaced");
	cr_expect(restored);
	/* the old template process is gone */
	cr_expect(kill(old, 0) < 0 && errno == ESRCH, "template %d is still there", old);

	/* a function without a snapshot policy: a clear error, exit 2 */
	cr_assert_eq(deploy(&S, "snoff", "hello-c", 128, NULL, &r), 200, "%s", r.body);
	cr_expect_eq(snapshot_cli("create", "snoff", out, sizeof(out)), 2, "%s", out);
	cr_expect(strstr(out, "snapshot policy is \"off\"") != NULL, "%s", out);
}

Test(snapshot, bad_policies_are_refused_by_name)
{
	struct em_client_resp r;

	cr_expect_eq(deploy(&S, "snbad", "hello-c", 128, "{\"snapshot\":\"sometimes\"}", &r), 400);
	cr_expect(strstr(r.body, "snapshot: must be") != NULL, "%s", r.body);
	cr_expect_eq(deploy(&S, "snbad", "hello-c", 128, "{\"restore\":\"fast\"}", &r), 400);
	cr_expect(strstr(r.body, "restore: must be") != NULL, "%s", r.body);
	cr_expect_eq(deploy(&S, "snbad", "hello-c", 128,
			    "{\"snapshot\":\"auto\",\"template\":\"off\"}", &r), 400);
	cr_expect(strstr(r.body, "needs a template") != NULL, "%s", r.body);
}

/* A redeploy drops the old version's image; a remove drops the current one. */
Test(snapshot, images_go_with_their_version)
{
	struct em_client_resp r;
	char v1[512], v2[512], path[128];
	struct em_err err = { 0 };

	cr_assert_eq(deploy(&S, "sng", "hello-c", 128, "{\"snapshot\":\"provisioned\"}", &r), 200,
		     "%s", r.body);
	image_path("sng", 1, v1, sizeof(v1));
	cr_expect_eq(access(v1, F_OK), 0);
	cr_assert_eq(deploy(&S, "sng", "hello-c", 128, "{\"snapshot\":\"provisioned\"}", &r), 200,
		     "%s", r.body);
	image_path("sng", 2, v2, sizeof(v2));
	cr_expect_eq(access(v2, F_OK), 0);
	cr_expect_eq(access(v1, F_OK), -1, "version 1's image outlived its version");
	snprintf(path, sizeof(path), "/v1/functions/sng");
	cr_assert_eq(em_client_request(S.c, "DELETE", path, NULL, NULL, 0, &r, &err), 0, "%s",
		     err.msg);
	cr_expect_eq(r.status, 204);
	cr_expect_eq(access(v2, F_OK), -1, "the image outlived its function");
}

/* What a crashed host leaves in snapshots/ (a version's image it never removed, a dump it died
 * in) goes at the next start; a deployed version's image and working set stay. */
Test(snapshot, a_restart_sweeps_images_no_version_has)
{
	struct em_client_resp r;
	char img[512], ws[600], ghost[600], half[600];

	cr_assert_eq(deploy(&S, "sns", "hello-c", 128, "{\"snapshot\":\"provisioned\"}", &r), 200,
		     "%s", r.body);
	image_path("sns", 1, img, sizeof(img));
	snprintf(ws, sizeof(ws), "%s.ws", img);
	snprintf(ghost, sizeof(ghost), "%s/snapshots/gone-v7.img", S.data_dir);
	snprintf(half, sizeof(half), "%s.Xa1b2c", img);
	serve_stop(&S, true);
	for (const char *p2[] = { ws, ghost, half, NULL }, **p = p2; *p; p++) {
		FILE *f = fopen(*p, "w");
		cr_assert_not_null(f, "%s", *p);
		fclose(f);
	}
	serve_start(&S);
	cr_expect_eq(access(img, F_OK), 0, "the deployed version's image was removed");
	cr_expect_eq(access(ws, F_OK), 0, "its working set was removed");
	cr_expect_eq(access(ghost, F_OK), -1, "an image no version has is still there");
	cr_expect_eq(access(half, F_OK), -1, "a half-written image is still there");
}
