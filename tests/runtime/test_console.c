/* tests/runtime/test_console.c — process.terminal for real: a forked child allocates a pty with
 * em_console_child_setup() and runs /bin/sh on it; the test receives the master the runc way and
 * checks what the shell saw (its tty, size, session). The proxy is driven through pipes and
 * through a second pty standing in for the user's terminal. No fd or process outlives a test. */
#include <criterion/criterion.h>

#include "testutil.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "runtime/console.h"

static int fds_before;


static void setup(void)
{
	fds_before = t_count_fds();
}

static void teardown(void)
{
	cr_expect_eq(t_count_fds(), fds_before, "fds leaked: %d before, %d after", fds_before,
		     t_count_fds());
	cr_expect_eq(waitpid(-1, NULL, WNOHANG), -1, "a child process was left behind");
}

TestSuite(console, .init = setup, .fini = teardown);

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fork a child that becomes a session leader, sets up the console on the other end of a
 * socketpair and execs /bin/sh -c script. Returns its pid; *sock is the receiving end. */
static pid_t spawn_on_console_prepared(const char *script, unsigned short rows,
				       unsigned short cols, int *sock, int (*prepare)(void))
{
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		const char *step = "?";
		close(sv[0]);
		if (prepare && prepare() < 0) {
			dprintf(2, "prepare: %s\n", strerror(errno));
			_exit(121);
		}
		setsid();
		int r = em_console_child_setup(sv[1], rows, cols, &step);
		if (r < 0) {
			dprintf(2, "console setup: %s: %s\n", step, strerror(-r));
			_exit(120);
		}
		close(sv[1]);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	*sock = sv[0];
	return pid;
}

static pid_t spawn_on_console(const char *script, unsigned short rows, unsigned short cols,
			      int *sock)
{
	return spawn_on_console_prepared(script, rows, cols, sock, NULL);
}

static int wait_exit(pid_t pid)
{
	int st;

	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Read fd until EOF/EIO or timeout; NUL-terminated. */
static size_t read_until_eio(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t len = 0;
	int64_t end = now_ms() + timeout_ms;

	while (len + 1 < cap) {
		int64_t left = end - now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return len;
}

/* Read fd until `want` shows up or timeout; true if it did. */
static bool read_until(int fd, char *buf, size_t cap, const char *want, int timeout_ms)
{
	size_t len = strlen(buf);
	int64_t end = now_ms() + timeout_ms;

	while (!strstr(buf, want) && len + 1 < cap) {
		int64_t left = end - now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return false;
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			return false;
		len += (size_t)n;
		buf[len] = '\0';
	}
	return strstr(buf, want) != NULL;
}

Test(console, child_runs_on_a_pts_of_the_requested_size_as_session_leader)
{
	struct em_err err = { 0 };
	int sock, master = -1;
	char out[4096];
	pid_t pid = spawn_on_console("tty; stty size; set -- $(cat /proc/$$/stat); "
				     "echo \"sid=$6 pid=$1 tty_nr=$7\"; "
				     "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty",
				     30, 100, &sock);

	cr_assert_eq(em_console_recv(sock, &master, &err), 0, "%s", err.msg);
	cr_expect(fcntl(master, F_GETFD) & FD_CLOEXEC);
	unsigned int ptn;
	cr_assert_eq(ioctl(master, TIOCGPTN, &ptn), 0);
	read_until_eio(master, out, sizeof(out), 5000);
	cr_expect_eq(wait_exit(pid), 0, "output: %s", out);

	char want[64];
	snprintf(want, sizeof(want), "/dev/pts/%u\r\n", ptn);
	cr_expect(strstr(out, want) != NULL, "want %s in: %s", want, out);
	cr_expect(strstr(out, "30 100\r\n") != NULL, "%s", out);
	cr_expect(strstr(out, "all-tty\r\n") != NULL, "%s", out);
	int sid = 0, spid = -1, tty_nr = 0;
	const char *s = strstr(out, "sid=");
	cr_assert_not_null(s, "%s", out);
	cr_assert_eq(sscanf(s, "sid=%d pid=%d tty_nr=%d", &sid, &spid, &tty_nr), 3);
	cr_expect_eq(sid, spid, "the shell leads its session");
	cr_expect_neq(tty_nr, 0, "the pty is the controlling terminal");
	close(master);
	close(sock);
}

/* What a container looks like: a mount namespace with its own devpts instance, and a /dev/ptmx
 * that is not a char device (here a regular file bound over it), so /dev/pts/ptmx is used. */
static int container_like_dev(void)
{
	char tmp[] = "/tmp/ember-test-ptmx-XXXXXX";
	int fd = mkstemp(tmp);

	if (fd < 0)
		return -1;
	close(fd);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620") < 0 ||
	    mount(tmp, "/dev/ptmx", NULL, MS_BIND, NULL) < 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	unlink(tmp); /* the bind mount keeps the inode; the namespace dies with the child */
	return 0;
}

Test(console, uses_dev_pts_ptmx_of_a_new_devpts_instance)
{
	struct em_err err = { 0 };
	int sock, master = -1;
	char out[4096];
	pid_t pid = spawn_on_console_prepared("tty; [ -f /dev/ptmx ] && echo ptmx-is-a-file", 0, 0,
					      &sock, container_like_dev);

	cr_assert_eq(em_console_recv(sock, &master, &err), 0, "%s", err.msg);
	read_until_eio(master, out, sizeof(out), 5000);
	cr_expect_eq(wait_exit(pid), 0, "%s", out);
	/* the first pty of a fresh instance */
	cr_expect_str_eq(out, "/dev/pts/0\r\nptmx-is-a-file\r\n");
	close(master);
	close(sock);
}

Test(console, sends_the_runc_wire_format)
{
	int sock;
	pid_t pid = spawn_on_console("exit 0", 0, 0, &sock);
	char name[4096];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { name, sizeof(name) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };

	/* what runc's utils.RecvFd (and so go-runc/containerd and conmon) insists on: a name
	 * shorter than 4096 bytes and control data of exactly CmsgSpace(4) with one fd */
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	cr_assert_eq(n, 9);
	cr_expect_eq(memcmp(name, "/dev/ptmx", 9), 0);
	cr_expect_eq(mh.msg_controllen, CMSG_SPACE(sizeof(int)));
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	cr_assert_not_null(c);
	cr_expect_eq(c->cmsg_level, SOL_SOCKET);
	cr_expect_eq(c->cmsg_type, SCM_RIGHTS);
	cr_assert_eq(c->cmsg_len, CMSG_LEN(sizeof(int)));
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	cr_expect(isatty(fd));
	cr_expect_eq(wait_exit(pid), 0);
	close(fd);
	close(sock);
}

Test(console, failed_send_names_the_step_and_leaks_nothing)
{
	int sv[2];
	const char *step = NULL;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[0]);
	/* the peer is gone: EPIPE, and no SIGPIPE kills us */
	cr_expect_eq(em_console_child_setup(sv[1], 0, 0, &step), -EPIPE);
	cr_expect_str_eq(step, "send pty master over console socket");
	close(sv[1]);
}

static void send_fds(int sock, const int *fds, int n, const char *data)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} u;
	struct iovec iov = { (void *)data, strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	memset(&u, 0, sizeof(u));
	if (n) {
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	cr_assert_geq(sendmsg(sock, &mh, MSG_NOSIGNAL), 0);
}

Test(console, recv_refuses_what_is_not_one_pty_master)
{
	struct em_err err = { 0 };
	int sv[2], p[2], master = -1;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	cr_expect_eq(em_console_recv(sv[0], &master, &err), -EPIPE);
	cr_expect_str_eq(err.msg, "console socket closed before a pty master arrived");
	close(sv[0]);

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	send_fds(sv[1], p, 1, "/dev/ptmx");
	cr_expect_eq(em_console_recv(sv[0], &master, &err), -ENOTTY);
	cr_expect(strstr(err.msg, "received fd is not a pty master") != NULL, "%s", err.msg);
	send_fds(sv[1], p, 2, "/dev/ptmx");
	cr_expect_eq(em_console_recv(sv[0], &master, &err), -EBADMSG);
	cr_expect(strstr(err.msg, "got 2 fds") != NULL, "%s", err.msg);
	send_fds(sv[1], NULL, 0, "/dev/ptmx");
	cr_expect_eq(em_console_recv(sv[0], &master, &err), -EBADMSG);
	cr_expect_eq(master, -1);
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}

static int listen_at(const char *path, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	cr_assert_geq(s, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(s, 1), 0);
	return s;
}

Test(console, socket_connect_reaches_stream_and_seqpacket_listeners)
{
	struct em_err err = { 0 };
	char path[64];
	int types[] = { SOCK_STREAM, SOCK_SEQPACKET };

	snprintf(path, sizeof(path), "/tmp/ember-test-console-%d.sock", (int)getpid());
	for (size_t i = 0; i < 2; i++) {
		int l = listen_at(path, types[i]), fd = -1, master = -1;
		cr_assert_eq(em_console_socket_connect(path, &fd, &err), 0, "%s", err.msg);
		cr_expect(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		cr_assert_geq(a, 0);

		/* a real master over it, received by the listener side */
		int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		cr_assert_geq(m, 0);
		send_fds(fd, &m, 1, "/dev/ptmx");
		cr_expect_eq(em_console_recv(a, &master, &err), 0, "%s", err.msg);
		close(master);
		close(m);
		close(a);
		close(fd);
		close(l);
	}
	unlink(path);

	int fd = -1;
	cr_expect_eq(em_console_socket_connect(path, &fd, &err), -ENOENT);
	char want[160];
	snprintf(want, sizeof(want), "connect to console socket %s: ENOENT", path);
	cr_expect(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
}

/* A container shell on a pty, proxied to pipes: returns the proxy; fills pid/master/pipes. */
struct piped {
	pid_t pid;
	int sock, master, in[2], out[2];
	struct em_console_proxy *proxy;
};

static void piped_start(struct piped *t, const char *script)
{
	struct em_err err = { 0 };

	t->pid = spawn_on_console(script, 24, 80, &t->sock);
	cr_assert_eq(em_console_recv(t->sock, &t->master, &err), 0, "%s", err.msg);
	cr_assert_eq(pipe2(t->in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(t->out, O_CLOEXEC), 0);
	cr_assert_eq(em_console_proxy_start(&t->proxy, t->master, t->in[0], t->out[1], &err), 0,
		     "%s", err.msg);
}

static void piped_end(struct piped *t)
{
	em_console_proxy_stop(t->proxy);
	close(t->master);
	close(t->sock);
	close(t->in[0]);
	close(t->out[1]);
	close(t->out[0]);
	if (t->in[1] >= 0)
		close(t->in[1]);
}

Test(console, proxy_copies_both_directions)
{
	struct piped t;
	char out[8192] = "";

	piped_start(&t, "read line; echo \"got:$line\"");
	cr_assert_eq(write(t.in[1], "hello\n", 6), 6);
	cr_expect(read_until(t.out[0], out, sizeof(out), "got:hello\r\n", 5000), "%s", out);
	cr_expect_eq(wait_exit(t.pid), 0);
	cr_expect(strstr(out, "hello\r\n") != NULL, "the pty echoes the input: %s", out);
	piped_end(&t);
}

Test(console, proxy_passes_stdin_eof_and_ends_when_the_container_does)
{
	struct piped t;
	char out[8192] = "";

	piped_start(&t, "cat; echo done");
	cr_assert_eq(write(t.in[1], "abc\npartial", 11), 11);
	close(t.in[1]);
	t.in[1] = -1;
	cr_expect(read_until(t.out[0], out, sizeof(out), "done\r\n", 5000), "%s", out);
	cr_expect_eq(wait_exit(t.pid), 0);
	/* the pty echoes all input at once, then cat copies it: the partial line reached cat
	 * (first ^D) and cat saw EOF (second ^D), so "done" followed */
	cr_expect(strstr(out, "abc\r\npartialabc\r\npartialdone\r\n") != NULL, "%s", out);
	piped_end(&t);
}

Test(console, proxy_flushes_the_last_output_and_stops_while_the_container_runs)
{
	struct piped t;
	char out[8192] = "";

	/* output that arrives before anyone reads out_fd is kept, in order */
	piped_start(&t, "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done; echo end; "
			"sleep 30");
	cr_expect(read_until(t.out[0], out, sizeof(out), "end\r\n", 5000), "%.200s", out);
	cr_expect(strstr(out, "line-0\r\nline-1\r\n") != NULL);
	cr_expect(strstr(out, "line-299\r\n") != NULL);
	int64_t t0 = now_ms();
	em_console_proxy_stop(t.proxy);
	t.proxy = NULL;
	cr_expect_lt(now_ms() - t0, 3000, "stop with a live container is bounded");
	kill(-t.pid, SIGKILL); /* the shell and its sleep: the session/group this test made */
	cr_expect_eq(wait_exit(t.pid), 128 + SIGKILL);
	piped_end(&t);
}

/* In a forked, single-threaded process (Criterion's worker has a second thread that would
 * swallow SIGWINCH): a pty stands in for the user's terminal. Returns 0 or a failure code. */
static int terminal_proxy_check(void)
{
	struct em_err err = { 0 };
	sigset_t winch;
	int sock, master = -1;
	char out[8192] = "";

	sigemptyset(&winch);
	sigaddset(&winch, SIGWINCH);
	sigprocmask(SIG_BLOCK, &winch, NULL); /* what console.h asks of the caller */

	int user_m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (user_m < 0 || grantpt(user_m) < 0 || unlockpt(user_m) < 0)
		return 10;
	int user_s = open(ptsname(user_m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	struct winsize ws = { .ws_row = 40, .ws_col = 120 };
	if (user_s < 0 || ioctl(user_s, TIOCSWINSZ, &ws) < 0)
		return 11;

	pid_t pid = spawn_on_console("stty size; read x; stty size", 0, 0, &sock);
	if (em_console_recv(sock, &master, &err) < 0)
		return 12;
	struct em_console_proxy *p;
	if (em_console_proxy_start(&p, master, user_s, user_s, &err) < 0)
		return 13;

	struct termios t;
	if (tcgetattr(user_s, &t) < 0 || (t.c_lflag & (ICANON | ECHO)))
		return 14; /* the user's terminal is raw while proxied */
	if (!read_until(user_m, out, sizeof(out), "40 120", 5000))
		return 15; /* the initial size was copied */

	ws = (struct winsize){ .ws_row = 50, .ws_col = 130 };
	ioctl(user_s, TIOCSWINSZ, &ws);
	kill(getpid(), SIGWINCH);
	struct winsize got = { 0 };
	for (int i = 0; i < 500 && got.ws_row != 50; i++) {
		ioctl(master, TIOCGWINSZ, &got);
		usleep(2000);
	}
	if (got.ws_row != 50 || got.ws_col != 130)
		return 16; /* SIGWINCH forwarded */
	if (write(user_m, "\r", 1) != 1)
		return 17;
	if (!read_until(user_m, out, sizeof(out), "50 130", 5000))
		return 18;
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 19;
	em_console_proxy_stop(p);
	if (tcgetattr(user_s, &t) < 0 || !(t.c_lflag & ICANON) || !(t.c_lflag & ECHO))
		return 20; /* restored */
	return 0;
}

Test(console, proxy_on_a_terminal_goes_raw_follows_window_size_and_restores)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(terminal_proxy_check());
	int code = wait_exit(pid);
	cr_expect_eq(code, 0, "terminal proxy check failed at step %d (see the source)", code);
}
