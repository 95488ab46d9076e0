/* tests/runtime/test_security.c — what a container process cannot reach: the host's ember binary
 * (CVE-2019-5736 class), the init's host descriptors; and the console socket, as runc's. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bundle.h"
#include "common/err.h"
#include "runtime/console.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct bundle b;
static struct run_result r;

static void fini(void)
{
	struct run_result rr;

	ember(&b, &rr, ARGS("delete", "--force", "c1"));
	bundle_fini(&b);
}

TestSuite(security, .fini = fini, .timeout = 60);

static void file_digest(const char *path, unsigned long *sum, off_t *size)
{
	FILE *f = fopen(path, "rb");
	int c;

	cr_assert_not_null(f);
	*sum = 5381;
	*size = 0;
	while ((c = fgetc(f)) != EOF) {
		*sum = *sum * 33 + (unsigned)c;
		(*size)++;
	}
	fclose(f);
}

/* A program that is really "#!/proc/self/exe" or a link to /proc/self/exe gets ember's sealed
 * stub (which refuses to run: 126), never the host's ember binary, which stays unchanged. */
Test(security, proc_self_exe_tricks_never_reach_the_ember_binary)
{
	unsigned long before, after;
	off_t sb, sa;
	char path[300];

	file_digest(t_ember(), &before, &sb);
	bundle_init(&b, ARGS("/evil/run"));
	snprintf(path, sizeof(path), "%s/evil", b.dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/evil/run", b.dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "#!/proc/self/exe\n");
	fclose(f);
	chmod(path, 0755);
	snprintf(path, sizeof(path), "%s/evil", b.dir);
	json_array_append_new(json_object_get(b.cfg, "mounts"),
			      json_pack("{s:s, s:s, s:[s, s]}", "destination", "/evil", "source",
					path, "options", "bind", "ro"));
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_eq(r.status, 126, "the sealed stub refused to act as the program (%d): %s",
		     r.status, r.err);
	assert_no_leak(&b, "c1");

	/* the symlink variant */
	cfg_set_args(&b, ARGS("/evil/link"));
	snprintf(path, sizeof(path), "%s/evil/link", b.dir);
	cr_assert_eq(symlink("/proc/self/exe", path), 0);
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_eq(r.status, 126, "(%d): %s", r.status, r.err);
	file_digest(t_ember(), &after, &sa);
	cr_assert_eq(before, after, "the ember binary changed");
	cr_assert_eq(sb, sa);
	assert_no_leak(&b, "c1");
}

/* While the init waits for `start` it still runs ember's code with host descriptors; it is not
 * dumpable, so nothing in the container can open its /proc files (exe, fds, memory). */
Test(security, the_waiting_init_is_not_reachable_from_the_container)
{
	bundle_init(&b, ARGS("true"));
	bundle_write(&b);
	ember(&b, &r, ARGS("create", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	ember(&b, &r, ARGS("exec", "c1", "sh", "-c",
			    "cat /proc/1/exe > /dev/null 2>&1 && echo exe-readable || echo exe-denied; "
			    "readlink /proc/1/fd/0 > /dev/null 2>&1 && echo fd-readable || echo fd-denied"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "exe-denied\nfd-denied\n");
	ember(&b, &r, ARGS("delete", "--force", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_no_leak(&b, "c1");
}

Test(security, console_socket_receives_a_pty_master)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct em_err err;
	int ls, cs, master = -1;
	char buf[256] = "";

	bundle_init(&b, ARGS("emtest", "isatty"));
	json_object_set_new(cfg_obj(&b, "process"), "terminal", json_true());
	bundle_write(&b);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/console.sock", b.dir);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(ls, (struct sockaddr *)&addr, sizeof(addr)), 0);
	cr_assert_eq(listen(ls, 1), 0);
	ember(&b, &r, ARGS("create", "--console-socket", addr.sun_path, "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	cs = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(cs, 0);
	cr_assert_eq(em_console_recv(cs, &master, &err), 0, "%s", err.msg);
	ember(&b, &r, ARGS("start", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	size_t n = 0;
	for (int i = 0; i < 100 && !strstr(buf, "\n"); i++) {
		ssize_t k = read(master, buf + n, sizeof(buf) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		buf[n] = '\0';
	}
	cr_assert(strstr(buf, "tty"), "the process's stdin is a terminal: \"%s\"", buf);
	cr_assert_null(strstr(buf, "notty"), "%s", buf);
	close(master);
	close(cs);
	close(ls);
	for (int i = 0; i < 100; i++) {
		ember(&b, &r, ARGS("state", "c1"));
		if (strstr(r.out, "stopped"))
			break;
		usleep(20000);
	}
	ember(&b, &r, ARGS("delete", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_no_leak(&b, "c1");
}

/* Without --console-socket, `run` in the foreground is its own console: it receives the pty
 * and copies the container's output to its stdout. */
Test(security, foreground_run_with_a_terminal_proxies_the_pty)
{
	bundle_init(&b, ARGS("sh", "-c", "emtest isatty; tty"));
	json_object_set_new(cfg_obj(&b, "process"), "terminal", json_true());
	bundle_write(&b);
	ember(&b, &r, ARGS("run", "c1"));
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "tty\r\n/dev/pts/0"), "\"%s\"", r.out);
	assert_no_leak(&b, "c1");
}
