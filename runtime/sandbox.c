/* runtime/sandbox.c — the parent side of starting a sandbox (see sandbox.h). */
#include "runtime/sandbox.h"
#include "runtime/execstub.h"
#include "runtime/sync.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Move *fd to a number >= min (above the fds the container inherits), close-on-exec.
 * -1 stays -1. */
static int fd_above(int *fd, int min, struct em_err *err)
{
	int n;

	if (*fd < 0 || *fd >= min)
		return 0;
	n = fcntl(*fd, F_DUPFD_CLOEXEC, min);
	if (n < 0)
		return em_err_set(err, errno, "move descriptor %d above %d", *fd, min);
	close(*fd);
	*fd = n;
	return 0;
}

static int send_type(int fd, uint32_t type, struct em_err *err)
{
	struct em_sync_msg m = { .type = type };

	if (send(fd, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m))
		return em_err_set(err, errno ? errno : EPIPE, "signal the container's init");
	return 0;
}

/* Receive one message; returns 0 with m->type == 0 on EOF. */
static int recv_msg(int fd, struct em_sync_msg *m, struct em_err *err)
{
	ssize_t n;

	do
		n = recv(fd, m, sizeof(*m), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return em_err_set(err, errno, "read from the container's init");
	if (n == 0) {
		m->type = 0;
		return 0;
	}
	if (n != (ssize_t)sizeof(*m))
		return em_err_msg(err, EPROTO, "short message from the container's init");
	m->step[sizeof(m->step) - 1] = '\0';
	return 0;
}

static int write_idmaps(const struct em_plan *p, pid_t pid, struct em_err *err)
{
	char dir[64];
	cleanup_close int dfd = -1;
	int ret;

	snprintf(dir, sizeof(dir), "/proc/%d", pid);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return em_err_set(err, errno, "open %s", dir);
	if (p->deny_setgroups) {
		ret = em_write_str_at(dfd, "setgroups", "deny", err);
		if (ret < 0)
			return ret;
	}
	ret = em_write_at(dfd, "uid_map", p->uid_map.text, p->uid_map.len, err);
	if (ret < 0)
		return em_err_prefix(err, "linux.uidMappings");
	ret = em_write_at(dfd, "gid_map", p->gid_map.text, p->gid_map.len, err);
	if (ret < 0)
		return em_err_prefix(err, "linux.gidMappings");
	return 0;
}

static void reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* The child died without a word: say how. */
static int child_died(pid_t pid, struct em_err *err)
{
	int status;

	if (waitpid(pid, &status, 0) == pid) {
		if (WIFSIGNALED(status))
			return em_err_msg(err, ECHILD,
					  "the container's init was killed by SIG%s during setup",
					  sigabbrev_np(WTERMSIG(status)) ?: "?");
		return em_err_msg(err, ECHILD,
				  "the container's init exited with status %d during setup",
				  WEXITSTATUS(status));
	}
	return em_err_msg(err, ECHILD, "the container's init died during setup");
}

int em_sandbox_start(const struct em_plan *plan, struct em_sandbox_io *io,
		     const struct em_sandbox_hooks *hooks, struct em_sandbox *sb, struct em_log *log,
		     struct em_err *err)
{
	int n_map = io->n_map_fds > 0 && io->n_map_fds <= EM_SANDBOX_MAP_FDS ? io->n_map_fds : 4;
	int min = io->remap_fds ? n_map : 3 + (io->preserve_fds > 0 ? io->preserve_fds : 0);
	cleanup_close int parent_fd = -1, child_fd = -1, stub_fd = -1, proc_fd = -1;
	cleanup_close int m0 = -1, m1 = -1, m2 = -1, m3 = -1, m4 = -1, m5 = -1, m6 = -1, m7 = -1;
	int *mapped[EM_SANDBOX_MAP_FDS] = { &m0, &m1, &m2, &m3, &m4, &m5, &m6, &m7 };
	struct em_sync_msg msg;
	pid_t pid, stage1 = -1;
	int sp[2], ret;

	sb->pid = -1;
	sb->sync_fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return em_err_set(err, errno, "socketpair for the container's init");
	parent_fd = sp[0];
	child_fd = sp[1];
	stub_fd = em_execstub_memfd(err);
	if (stub_fd < 0)
		return stub_fd;
	if (io->fifo_fd >= 0) {
		proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (proc_fd < 0)
			return em_err_set(err, errno, "open /proc");
	}
	/* nothing the child needs may sit where --preserve-fds passes the caller's descriptors */
	if ((ret = fd_above(&child_fd, min, err)) < 0 || (ret = fd_above(&stub_fd, min, err)) < 0 ||
	    (ret = fd_above(&proc_fd, min, err)) < 0 ||
	    (ret = fd_above(&io->fifo_fd, min, err)) < 0 ||
	    (ret = fd_above(&io->console_sock, min, err)) < 0)
		return ret;
	/* the fds to remap must not sit where the child puts them (dup2 onto 0..n in any order) */
	for (int i = 0; io->remap_fds && i < n_map; i++) {
		if (io->map_fds[i] < 0)
			continue;
		*mapped[i] = fcntl(io->map_fds[i], F_DUPFD_CLOEXEC, min);
		if (*mapped[i] < 0)
			return em_err_set(err, errno, "move descriptor %d above %d", io->map_fds[i], min);
	}
	struct em_sandbox_io cio = *io;
	if (io->remap_fds) {
		for (int i = 0; i < n_map; i++)
			cio.map_fds[i] = *mapped[i];
		cio.n_map_fds = n_map;
		cio.preserve_fds = n_map - 3;
	}
	io->sync_fd = child_fd;
	io->stub_fd = take_fd(&stub_fd);   /* the caller closes it (it may reuse it) */
	io->proc_fd = take_fd(&proc_fd);

	pid = (pid_t)syscall(SYS_clone, (plan->two_stage ? 0 : plan->clone_flags) | SIGCHLD, 0, 0, 0,
			     0);
	if (pid < 0)
		return em_err_set(err, errno, "clone the container's init");
	if (pid == 0) {
		close(parent_fd);
		cio.sync_fd = io->sync_fd;
		cio.stub_fd = io->stub_fd;
		cio.proc_fd = io->proc_fd;
		em_child_main(plan, &cio, plan->two_stage);
	}
	close(take_fd(&child_fd));
	io->sync_fd = -1;
	if (io->host_owned) {
		/* a host must not wait forever on a sandbox that hangs in its setup */
		struct timeval tv = { .tv_sec = 30 };
		setsockopt(parent_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	if (plan->two_stage)
		stage1 = pid;

	if (hooks && hooks->attach) {
		ret = hooks->attach(hooks->data, pid, err);
		if (ret < 0)
			goto fail;
	}
	if (plan->new_userns && !plan->two_stage) {
		ret = write_idmaps(plan, pid, err);
		if (ret < 0)
			goto fail;
	}
	ret = send_type(parent_fd, EM_SYNC_GO, err);
	if (ret < 0)
		goto fail;

	for (;;) {
		ret = recv_msg(parent_fd, &msg, err);
		if (ret < 0)
			goto fail;
		switch (msg.type) {
		case 0:
			if (stage1 > 0 && pid == stage1) {
				ret = child_died(stage1, err);
				stage1 = pid = -1;
			} else {
				ret = child_died(pid, err);
				pid = -1;
			}
			goto fail;
		case EM_SYNC_ERROR:
			ret = em_err_set(err, msg.err, "%s", msg.step);
			goto fail;
		case EM_SYNC_NEED_IDMAP:
			ret = write_idmaps(plan, stage1, err);
			if (ret == 0)
				ret = send_type(parent_fd, EM_SYNC_GO, err);
			if (ret < 0)
				goto fail;
			break;
		case EM_SYNC_STAGE2_PID:
			pid = (pid_t)msg.value;
			while (waitpid(stage1, NULL, 0) < 0 && errno == EINTR)
				;
			stage1 = -1;
			break;
		case EM_SYNC_CREATE_RUNTIME: {
			cleanup_free char *json = NULL;

			if (hooks && hooks->create_runtime) {
				ret = hooks->create_runtime(hooks->data, pid, &json, err);
				if (ret < 0)
					goto fail;
			}
			ret = send_type(parent_fd, EM_SYNC_GO, err);
			if (ret < 0)
				goto fail;
			const char *s = json ? json : "{}";
			if (send(parent_fd, s, strlen(s), MSG_NOSIGNAL) < 0) {
				ret = em_err_set(err, errno, "send the state to the container's init");
				goto fail;
			}
			break;
		}
		case EM_SYNC_CREATED:
			if (hooks && hooks->created) {
				ret = hooks->created(hooks->data, pid, err);
				if (ret < 0)
					goto fail;
			}
			ret = send_type(parent_fd, EM_SYNC_DETACH, err);
			if (ret == 0)
				ret = recv_msg(parent_fd, &msg, err);
			if (ret == 0 && msg.type != EM_SYNC_DETACHED)
				ret = msg.type == EM_SYNC_ERROR
					      ? em_err_set(err, msg.err, "%s", msg.step)
					      : em_err_msg(err, EPROTO,
							   "the container's init did not confirm it is detached");
			if (ret < 0)
				goto fail;
			sb->pid = pid;
			sb->sync_fd = take_fd(&parent_fd);
			return 0;
		default:
			ret = em_err_msg(err, EPROTO, "unexpected message %u from the container's init",
					 msg.type);
			goto fail;
		}
	}
fail:
	em_debug(log, "sandbox setup failed: %s", err->msg);
	reap(stage1);
	if (pid != stage1)
		reap(pid);
	return ret;
}

int em_sandbox_go(struct em_sandbox *sb, struct em_err *err)
{
	return send_type(sb->sync_fd, EM_SYNC_GO, err);
}

int em_sandbox_wait_exec(struct em_sandbox *sb, struct em_err *err)
{
	struct em_sync_msg msg;
	int ret = recv_msg(sb->sync_fd, &msg, err);

	close(sb->sync_fd);
	sb->sync_fd = -1;
	if (ret < 0)
		return ret;
	if (msg.type == EM_SYNC_ERROR) {
		ret = em_err_set(err, msg.err, "%s", msg.step);
		reap(sb->pid);
		sb->pid = -1;
		return ret;
	}
	return 0; /* EOF: the program is running */
}

void em_sandbox_release(struct em_sandbox *sb)
{
	if (sb->sync_fd >= 0)
		close(sb->sync_fd);
	sb->sync_fd = -1;
}
