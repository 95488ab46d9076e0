/* tests/snapshot/test_cli.c — `ember snapshot inspect|verify` on an image this test wrote: what
 * inspect prints, verify's exit status and the failing check's message. */
#include <errno.h>
#include <limits.h>
#include <sys/wait.h>

#include "helpers.h"

static struct tmpl t;
static char ember[PATH_MAX];

static void setup(void)
{
	tdir_init();
	tmpl_init(&t);
	write_tmpl(&t, image);
	/* build/tests/test-snapshot -> build/ember */
	snprintf(ember, sizeof(ember), "%s", t.exe);
	*strrchr(ember, '/') = '\0';
	*strrchr(ember, '/') = '\0';
	strcat(ember, "/ember");
}

static void teardown(void)
{
	tmpl_fini(&t);
	tdir_fini();
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

struct out {
	int status;
	char text[16384]; /* stdout and stderr */
};

static void run(struct out *o, const char *const *args)
{
	char path[160];
	const char *argv[16] = { ember };
	size_t n = 1;

	if (access(ember, X_OK) < 0)
		cr_skip("%s not built: `make` builds it before `make test-snapshot`", ember);
	for (; args[n - 1]; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	snprintf(path, sizeof(path), "%s/out", tdir);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(ember, (char *const *)argv);
		_exit(127);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st));
	o->status = WEXITSTATUS(st);
	int fd = open(path, O_RDONLY);
	ssize_t len = read(fd, o->text, sizeof(o->text) - 1);
	close(fd);
	unlink(path);
	o->text[len > 0 ? len : 0] = '\0';
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

Test(cli, inspect_prints_header_and_regions)
{
	struct out o;
	char want[256];

	run(&o, ARGS("snapshot", "inspect", image));
	cr_assert_eq(o.status, 0, "%s", o.text);
	cr_assert(strstr(o.text, "version      1\n"), "%s", o.text);
	snprintf(want, sizeof(want), "kernel       %s\n", t.release);
	cr_assert(strstr(o.text, want), "%s", o.text);
	cr_assert(strstr(o.text, "regions      5\n"), "%s", o.text);
	snprintf(want, sizeof(want), "%016lx-%016lx rw-p     256 stored     256 zero       0 absent  "
		 "[heap] (thp)", (unsigned long)t.start[1], (unsigned long)t.start[1] + R1_PAGES * PG);
	cr_assert(strstr(o.text, want), "%s", o.text);
	snprintf(want, sizeof(want), "pages        %u stored", tmpl_stored(&t, 0) + 256 + R4_PAGES);
	cr_assert(strstr(o.text, want), "%s", o.text);
	cr_assert(strstr(o.text, "pipe:[1234]"), "%s", o.text);
	cr_assert(strstr(o.text, "signals      2 not default"), "%s", o.text);
}

Test(cli, verify_checks_page_data_and_identity)
{
	struct out o;

	run(&o, ARGS("snapshot", "verify", "--exe", t.exe, "--this-kernel", image));
	cr_assert_eq(o.status, 0, "%s", o.text);
	cr_assert(strstr(o.text, ": ok ("), "%s", o.text);

	run(&o, ARGS("snapshot", "verify", "--exe", "/bin/true", image));
	cr_assert_eq(o.status, 1);
	cr_assert(strstr(o.text, "foreign image: dumped for a binary with build id"), "%s", o.text);

	struct em_snap_image *img;
	struct em_err err = { 0 };
	uint64_t off;
	cr_assert_eq(em_snap_open(image, NULL, &img, &err), 0, "%s", err.msg);
	cr_assert_eq(em_snap_page_at(img, 4, 7, &off), EM_SNAP_STORED);
	em_snap_close(img);
	flip_byte(image, (off_t)off + 99);
	run(&o, ARGS("snapshot", "inspect", image));
	cr_assert_eq(o.status, 0, "inspect does not read page data: %s", o.text);
	run(&o, ARGS("snapshot", "verify", image));
	cr_assert_eq(o.status, 1, "%s", o.text);
	cr_assert(strstr(o.text, "region 4 ("), "%s", o.text);
	cr_assert(strstr(o.text, "page 7 at"), "%s", o.text);
	cr_assert(strstr(o.text, "data checksum mismatch"), "%s", o.text);

	cr_assert_eq(truncate(image, 5000), 0);
	run(&o, ARGS("snapshot", "inspect", image));
	cr_assert_eq(o.status, 1);
	cr_assert(strstr(o.text, "truncated image"), "%s", o.text);
	run(&o, ARGS("snapshot", "frobnicate", image));
	cr_assert_eq(o.status, 1);
	cr_assert(strstr(o.text, "expected create, restore, inspect or verify"), "%s", o.text);
}
