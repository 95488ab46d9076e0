/* runtime/console.c — pty for `process.terminal`: the container side (allocate, send the master
 * runc's way, become the slave's session), the receiving side, and the foreground proxy thread.
 * See console.h for the contract of each. */
#include "runtime/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"

/* runc's utils.MaxNameLen: the name sent with the fd is shorter than this. */
#define CONSOLE_NAME_MAX 4096

/* ---- container side (async-signal-safe) ------------------------------------------------------ */

static int step_fail(const char **failed_step, const char *step)
{
	int e = errno ? errno : EIO;

	if (failed_step)
		*failed_step = step;
	return -e;
}

static int send_master(int sock, int master, const char *name)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;

	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &master, sizeof(int));
	for (;;) {
		/* MSG_NOSIGNAL: a listener that went away is an error, not a SIGPIPE */
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

int em_console_child_setup(int console_sock, unsigned short rows, unsigned short cols,
			   const char **failed_step)
{
	const char *ptmx = "/dev/ptmx", *open_step = "open /dev/ptmx";
	struct stat st;
	int master, slave, zero = 0;

	/* runc's /dev/ptmx is a symlink to pts/ptmx (stat follows it); a bind-mounted host node
	 * also works (the kernel finds the devpts instance next to it). Anything else — missing,
	 * a file — means the container's own instance is reached at /dev/pts/ptmx. */
	if (stat(ptmx, &st) < 0 || !S_ISCHR(st.st_mode)) {
		ptmx = "/dev/pts/ptmx";
		open_step = "open /dev/pts/ptmx";
	}
	master = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return step_fail(failed_step, open_step);
	if (ioctl(master, TIOCSPTLCK, &zero) < 0) {
		int r = step_fail(failed_step, "unlock pty (TIOCSPTLCK)");
		close(master);
		return r;
	}
	/* The slave through the master, not by name: no ptsname(), no lookup in a /dev that the
	 * container's config may have arranged differently. */
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		int r = step_fail(failed_step, "open pty slave (TIOCGPTPEER)");
		close(master);
		return r;
	}
	if (rows || cols) {
		struct winsize ws = { .ws_row = rows, .ws_col = cols };
		if (ioctl(slave, TIOCSWINSZ, &ws) < 0) {
			int r = step_fail(failed_step, "set pty window size (TIOCSWINSZ)");
			close(master);
			close(slave);
			return r;
		}
	}
	if (send_master(console_sock, master, ptmx) < 0) {
		int r = step_fail(failed_step, "send pty master over console socket");
		close(master);
		close(slave);
		return r;
	}
	/* The container must not hold its own master: the receiver's read must see EIO once the
	 * container's processes are gone. */
	close(master);

	if (setsid() < 0 && !(errno == EPERM && getsid(0) == getpid())) {
		int r = step_fail(failed_step, "setsid");
		close(slave);
		return r;
	}
	if (ioctl(slave, TIOCSCTTY, 0) < 0) {
		int r = step_fail(failed_step, "make pty slave the controlling terminal (TIOCSCTTY)");
		close(slave);
		return r;
	}
	/* dup2(fd, fd) would keep close-on-exec: move a slave that landed on 0-2 out of the way */
	if (slave <= 2) {
		int moved = fcntl(slave, F_DUPFD_CLOEXEC, 3);
		if (moved < 0) {
			int r = step_fail(failed_step, "dup2 pty slave onto stdio");
			close(slave);
			return r;
		}
		close(slave);
		slave = moved;
	}
	if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0) {
		int r = step_fail(failed_step, "dup2 pty slave onto stdio");
		close(slave);
		return r;
	}
	close(slave);
	return 0;
}

/* ---- runtime side ---------------------------------------------------------------------------- */

int em_console_socket_connect(const char *path, int *fd, struct em_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const int types[] = { SOCK_STREAM, SOCK_SEQPACKET };

	if (!path || !*path)
		return em_err_msg(err, EINVAL, "console socket: empty path");
	if (strlen(path) >= sizeof(sa.sun_path))
		return em_err_msg(err, ENAMETOOLONG,
				  "console socket %s: path longer than %zu bytes", path,
				  sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);

	for (size_t i = 0; i < EM_ARRAY_SIZE(types); i++) {
		cleanup_close int s = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
		if (s < 0)
			return em_err_set(err, errno, "console socket %s: socket", path);
		int r;
		do
			r = connect(s, (struct sockaddr *)&sa, sizeof(sa));
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			*fd = take_fd(&s);
			return 0;
		}
		/* EPROTOTYPE: the listener is not SOCK_STREAM; try SOCK_SEQPACKET */
		if (errno != EPROTOTYPE)
			return em_err_set(err, errno, "connect to console socket %s", path);
	}
	return em_err_set(err, EPROTOTYPE, "connect to console socket %s", path);
}

static void close_fds(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

int em_console_recv(int sock, int *master_fd, struct em_err *err)
{
	char name[CONSOLE_NAME_MAX];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 8)]; /* room to see (and close) extra fds */
	} u;
	struct iovec iov = { .iov_base = name, .iov_len = sizeof(name) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	int fds[8], nfds = 0;
	ssize_t n;

	memset(&u, 0, sizeof(u));
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return em_err_set(err, errno, "receive pty master from console socket");

	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && nfds < (int)EM_ARRAY_SIZE(fds); i++)
			memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		close_fds(fds, (size_t)nfds);
		return em_err_msg(err, EBADMSG, "console socket: control data truncated "
				  "(more fds than a pty master)");
	}
	if (nfds == 0) {
		if (n == 0)
			return em_err_msg(err, EPIPE, "console socket closed before a pty master "
					  "arrived");
		return em_err_msg(err, EBADMSG, "console socket: message of %zd bytes without an "
				  "fd", n);
	}
	if (nfds != 1 || n >= CONSOLE_NAME_MAX) {
		close_fds(fds, (size_t)nfds);
		return em_err_msg(err, EBADMSG, "console socket: expected one fd and a name, got %d "
				  "fds and %zd bytes", nfds, n);
	}
	/* Only a pty master answers TIOCGPTN: refuse anything else someone might send us. */
	unsigned int ptn;
	if (ioctl(fds[0], TIOCGPTN, &ptn) < 0) {
		int e = errno;
		close(fds[0]);
		return em_err_set(err, e, "console socket: received fd is not a pty master");
	}
	*master_fd = fds[0];
	return 0;
}

/* ---- foreground proxy ------------------------------------------------------------------------ */

#define PROXY_BUF 16384
/* After stop is asked: keep copying while output still comes, up to these limits. */
#define PROXY_STOP_IDLE_MS 50
#define PROXY_STOP_MAX_MS 2000
/* A write to a pipe after POLLOUT does not block if it is at most one page. */
#define PROXY_OUT_CHUNK 4096

struct pbuf {
	char d[PROXY_BUF];
	size_t off, len;
};

struct em_console_proxy {
	pthread_t thread;
	int master, in, out;
	int stop_efd;              /* written by stop */
	int size_src;              /* the terminal whose window size the pty follows; -1: none */
	int master_flags;          /* restored at stop (the master is made non-blocking) */
	bool in_raw;               /* in_fd's mode was changed: restore `saved` */
	struct termios saved;
	struct pbuf to_master, to_out; /* owned by the thread */
};

static void copy_winsize(struct em_console_proxy *p)
{
	struct winsize ws;

	if (p->size_src >= 0 && ioctl(p->size_src, TIOCGWINSZ, &ws) == 0)
		ioctl(p->master, TIOCSWINSZ, &ws);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* stdin reached EOF: tell the container the way a terminal would, with the EOF character (twice
 * if a partial line is pending: the first one only ends the line). Nothing in raw mode: there
 * is no EOF on a raw terminal. */
static void send_eof(struct em_console_proxy *p, char last)
{
	struct termios t;

	if (tcgetattr(p->master, &t) < 0 || !(t.c_lflag & ICANON))
		return;
	char eof[2] = { (char)t.c_cc[VEOF], (char)t.c_cc[VEOF] };
	size_t n = last == '\n' || last == '\0' ? 1 : 2;
	if (write(p->master, eof, n) < 0) {
		/* the container is gone or not reading: nothing more to tell it */
	}
}

/* Write what fits of b to fd; false if fd is broken (b is then dropped). */
static bool flush_some(int fd, struct pbuf *b, size_t chunk)
{
	size_t len = b->len - b->off;
	ssize_t n = write(fd, b->d + b->off, len < chunk ? len : chunk);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n < 0) {
		b->off = b->len = 0;
		return false;
	}
	b->off += (size_t)n;
	if (b->off == b->len)
		b->off = b->len = 0;
	return true;
}

static void *proxy_main(void *arg)
{
	struct em_console_proxy *p = arg;
	struct pbuf *to_master = &p->to_master, *to_out = &p->to_out;
	bool in_open = true, master_open = true, out_ok = true, eof_pending = false;
	bool stopping = false;
	int64_t stop_at = 0;
	char last_in = '\0';
	sigset_t winch;
	int sfd = -1;

	/* This thread was created with every signal blocked; SIGWINCH arrives through a signalfd
	 * (only when some terminal's size is followed). */
	if (p->size_src >= 0) {
		sigemptyset(&winch);
		sigaddset(&winch, SIGWINCH);
		sfd = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);
	}

	while (master_open || to_out->len) {
		struct pollfd pf[5] = {
			{ .fd = stopping ? -1 : p->stop_efd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = in_open && !to_master->len && !stopping ? p->in : -1, .events = POLLIN },
			/* not polled while its output waits for out_fd: a hung-up master would
			 * report POLLHUP at once, over and over */
			{ .fd = master_open && (!to_out->len || to_master->len) ? p->master : -1,
			  .events = (short)((to_out->len ? 0 : POLLIN) | (to_master->len ? POLLOUT : 0)) },
			{ .fd = to_out->len ? p->out : -1, .events = POLLOUT },
		};
		int timeout = -1;

		if (stopping) {
			int64_t left = stop_at + PROXY_STOP_MAX_MS - mono_ms();
			if (left <= 0)
				break;
			timeout = left < PROXY_STOP_IDLE_MS ? (int)left : PROXY_STOP_IDLE_MS;
		}
		int n = poll(pf, EM_ARRAY_SIZE(pf), timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n == 0 && stopping))
			break; /* stopping and idle: the container's output is all out */

		if (pf[0].revents) {
			uint64_t v;
			if (read(p->stop_efd, &v, sizeof(v)) < 0) {
				/* the eventfd cannot fail a read once readable */
			}
			stopping = true;
			stop_at = mono_ms();
		}
		if (pf[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				;
			copy_winsize(p);
		}
		if (pf[2].revents) {
			ssize_t r = read(p->in, to_master->d, sizeof(to_master->d));
			if (r > 0) {
				to_master->len = (size_t)r;
				last_in = to_master->d[r - 1];
			} else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
				in_open = false;
				eof_pending = true;
			}
		}
		if (pf[3].revents & POLLOUT && to_master->len && !flush_some(p->master, to_master,
									      PROXY_BUF))
			in_open = false; /* the container side is gone: input has nowhere to go */
		if (eof_pending && !to_master->len && master_open) {
			send_eof(p, last_in);
			eof_pending = false;
		}
		if (pf[3].revents & (POLLIN | POLLHUP | POLLERR) && !to_out->len) {
			ssize_t r = read(p->master, to_out->d, sizeof(to_out->d));
			if (r > 0)
				to_out->len = (size_t)r;
			else if (r == 0 || (errno != EINTR && errno != EAGAIN))
				master_open = false; /* EIO: the last holder of the slave closed it */
		}
		if (pf[4].revents && to_out->len) {
			if (!out_ok)
				to_out->off = to_out->len = 0;
			else
				out_ok = flush_some(p->out, to_out, PROXY_OUT_CHUNK);
		}
	}
	if (sfd >= 0)
		close(sfd);
	return NULL;
}

static void proxy_free(struct em_console_proxy *p)
{
	if (p->in_raw)
		tcsetattr(p->in, TCSANOW, &p->saved);
	if (p->master_flags >= 0)
		fcntl(p->master, F_SETFL, p->master_flags);
	em_closep(&p->stop_efd);
	free(p);
}

int em_console_proxy_start(struct em_console_proxy **out, int master_fd, int in_fd, int out_fd,
			   struct em_err *err)
{
	struct em_console_proxy *p = calloc(1, sizeof(*p));
	sigset_t all, old;
	int r;

	if (!p)
		return em_err_set(err, ENOMEM, "console proxy");
	p->master = master_fd;
	p->in = in_fd;
	p->out = out_fd;
	p->stop_efd = -1;
	p->master_flags = -1;
	p->size_src = isatty(in_fd) ? in_fd : isatty(out_fd) ? out_fd : -1;

	p->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->stop_efd < 0) {
		r = em_err_set(err, errno, "console proxy: eventfd");
		goto fail;
	}
	/* The master is ours to drive: non-blocking, so a container that does not read its input
	 * cannot stall the copy of its output (flags restored at stop). in_fd and out_fd are left
	 * alone: their file description is shared with the caller's shell. */
	p->master_flags = fcntl(master_fd, F_GETFL);
	if (p->master_flags < 0 || fcntl(master_fd, F_SETFL, p->master_flags | O_NONBLOCK) < 0) {
		r = em_err_set(err, errno, "console proxy: make pty master non-blocking");
		p->master_flags = -1;
		goto fail;
	}
	if (isatty(in_fd)) {
		struct termios raw;
		if (tcgetattr(in_fd, &p->saved) < 0) {
			r = em_err_set(err, errno, "console proxy: read terminal mode of fd %d", in_fd);
			goto fail;
		}
		raw = p->saved;
		/* raw: every key goes to the container's terminal, which does its own echo and
		 * signals (^C reaches the container as a byte, not ember as SIGINT) */
		cfmakeraw(&raw);
		if (tcsetattr(in_fd, TCSANOW, &raw) < 0) {
			r = em_err_set(err, errno, "console proxy: set raw mode on fd %d", in_fd);
			goto fail;
		}
		p->in_raw = true;
	}
	copy_winsize(p);

	/* The thread starts with every signal blocked: it handles none, and reads SIGWINCH from
	 * a signalfd instead of a process-wide handler. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&p->thread, NULL, proxy_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		r = em_err_set(err, r, "console proxy: create thread");
		goto fail;
	}
	*out = p;
	return 0;
fail:
	proxy_free(p);
	return r;
}

void em_console_proxy_stop(struct em_console_proxy *p)
{
	uint64_t one = 1;

	if (!p)
		return;
	if (write(p->stop_efd, &one, sizeof(one)) < 0) {
		/* cannot fail on an eventfd that is far from its maximum */
	}
	pthread_join(p->thread, NULL);
	proxy_free(p);
}
