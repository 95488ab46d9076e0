/* runtime/container.c — create, start, run, delete, exec: the lifecycle (see container.h). */
#include "runtime/container.h"
#include "runtime/billing.h"
#include "runtime/cgroup_limits.h"
#include "runtime/console.h"
#include "runtime/hooks.h"
#include "runtime/plan.h"
#include "runtime/sandbox.h"
#include "netns/netns.h"
#include "cgroups/cgroups.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void em_runtime_close(struct em_runtime *rt)
{
	if (rt->cg)
		em_cg_root_close(rt->cg);
	rt->cg = NULL;
}

static int cg_root(struct em_runtime *rt, struct em_cg_root **out, struct em_err *err)
{
	if (!rt->cg) {
		int ret = em_cg_root_open(&rt->cg, rt->cgroup_parent ? rt->cgroup_parent : "ember",
					  rt->log, err);
		if (ret < 0)
			return em_err_prefix(err, "open the cgroup hierarchy");
	}
	*out = rt->cg;
	return 0;
}

int em_write_pid_file(const char *path, pid_t pid, struct em_err *err)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", pid);

	return em_replace_file_at(AT_FDCWD, path, 0644, buf, (size_t)n, err);
}

static void now_rfc3339(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%09ldZ", ts.tv_nsec);
}

static char *annotations_json(const struct em_oci_config *cfg)
{
	json_t *o = json_object();
	char *s;

	for (size_t i = 0; i < cfg->annotations.n; i++)
		json_object_set_new(o, cfg->annotations.v[i].key,
				    json_string(cfg->annotations.v[i].value));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

/* ---------------------------------------------------------------- a container being made */

struct ctr {
	struct em_runtime *rt;
	struct em_oci_config cfg;
	bool cfg_loaded;
	struct em_state_dir sd;
	struct em_state st;
	struct em_cg *cg;
	const char *pid_file;
	struct em_log *log;
	struct em_rt_bill *bill;     /* run --bill: opens its window as the init is set up */
	bool netns_claimed;          /* took a namespace from the pool (run refills it) */
};

static int load_config_into_state(struct ctr *c, const char *bundle, struct em_err *err)
{
	cleanup_free char *text = NULL;
	char path[PATH_MAX];
	size_t len;
	int ret;

	if (em_path_join(path, sizeof(path), bundle, "config.json") < 0)
		return em_err_msg(err, ENAMETOOLONG, "bundle path too long");
	ret = em_read_file_at(AT_FDCWD, path, &text, &len, err);
	if (ret < 0)
		return ret;
	ret = em_oci_parse(text, len, &c->cfg, err);
	if (ret < 0)
		return em_err_prefix(err, "%s", path);
	c->cfg_loaded = true;
	if (!c->cfg.has_process)
		return em_err_msg(err, EINVAL, "%s: process: required to create a container", path);
	if (c->sd.dfd >= 0)
		return em_create_file_at(c->sd.dfd, "config.json", 0600, text, len, err);
	return 0;
}

static int load_saved_config(struct em_state_dir *sd, struct em_oci_config *cfg, struct em_err *err)
{
	cleanup_free char *text = NULL;
	size_t len;
	int ret = em_read_file_at(sd->dfd, "config.json", &text, &len, err);

	if (ret < 0)
		return ret;
	ret = em_oci_parse(text, len, cfg, err);
	if (ret < 0)
		return em_err_prefix(err, "%s/config.json", sd->path);
	return 0;
}

static char *state_json_of(struct ctr *c, enum em_status status)
{
	cleanup_free char *ann = annotations_json(&c->cfg);

	return em_state_json(&c->st, status, ann);
}

static int sb_attach(void *data, pid_t pid, struct em_err *err)
{
	struct ctr *c = data;

	return c->cg ? em_cg_attach(c->cg, pid, err) : 0;
}

static int sb_create_runtime(void *data, pid_t pid, char **state_json, struct em_err *err)
{
	struct ctr *c = data;
	char *json;
	int ret;

	c->st.pid = pid;
	json = state_json_of(c, EM_ST_CREATING);
	if (!json)
		return em_err_msg(err, ENOMEM, "encode the container state");
	ret = em_hooks_run(&c->cfg.hooks, EM_HOOK_PRESTART, json, c->log, err);
	if (ret == 0)
		ret = em_hooks_run(&c->cfg.hooks, EM_HOOK_CREATE_RUNTIME, json, c->log, err);
	if (ret < 0) {
		free(json);
		return ret;
	}
	*state_json = json;
	return 0;
}

static int sb_created(void *data, pid_t pid, struct em_err *err)
{
	struct ctr *c = data;
	int ret;

	c->st.pid = pid;
	c->st.start_time = em_proc_start_time(pid);
	if (c->bill) {
		const struct em_opt_i64 *mem = &c->cfg.linux_.resources.memory.limit;

		ret = em_rt_bill_begin(c->bill, c->rt->cg, c->cg,
				       mem->set && mem->v > 0 ? (uint64_t)mem->v >> 20 : 0, err);
		if (ret < 0)
			return ret;
	}
	ret = em_state_write(&c->sd, &c->st, err);
	if (ret == 0 && c->pid_file)
		ret = em_write_pid_file(c->pid_file, pid, err);
	return ret;
}

/* Undo a failed create: the process (already reaped by the sandbox), cgroup, state dir. */
static void ctr_abort(struct ctr *c)
{
	struct em_err e2;

	if (c->cg) {
		/* destroy closes the handle when it succeeds */
		if (em_cg_destroy(c->cg, true, &e2) < 0) {
			em_warn(c->log, "clean up after failed create: %s", e2.msg);
			em_cg_close(c->cg);
		}
		c->cg = NULL;
	}
	if (c->sd.dfd >= 0) {
		if (em_state_remove(&c->sd, &e2) < 0)
			em_warn(c->log, "clean up after failed create: %s", e2.msg);
		em_state_close(&c->sd);
	}
}

static void ctr_free(struct ctr *c)
{
	if (c->cg)
		em_cg_close(c->cg);
	c->cg = NULL;
	em_state_close(&c->sd);
	if (c->cfg_loaded)
		em_oci_config_free(&c->cfg);
	c->cfg_loaded = false;
}

/* ---------------------------------------------------------------- network namespace pool */

/* Ready network namespaces for the CLI live bind-mounted under <root>/netns-pool (netns/):
 * claiming one costs ~20 µs where creating one costs ~0.3-0.5 ms plus its asynchronous
 * teardown. Used when the config asks for a new network namespace and no user namespace (a
 * pooled namespace belongs to the host's user namespace). An empty or absent pool falls back
 * to creating one. A pooled namespace has `lo` up; a fresh one has it down. */
static void pool_dir(const struct em_runtime *rt, char *buf, size_t cap)
{
	em_path_join(buf, cap, rt->root, "netns-pool");
}

static bool wants_pooled_netns(const struct em_oci_config *cfg)
{
	const struct em_oci_namespace *net = em_oci_find_ns(cfg, EM_NS_NET);
	const struct em_oci_namespace *user = em_oci_find_ns(cfg, EM_NS_USER);

	return net && !net->path && !user;
}

static struct em_netns *claim_netns(struct ctr *c)
{
	char dir[4096];
	struct em_netns *ns = NULL;
	struct em_err e2;
	int ret;

	if (!wants_pooled_netns(&c->cfg))
		return NULL;
	pool_dir(c->rt, dir, sizeof(dir));
	ret = em_netns_pool_dir_claim(dir, &ns, &e2);
	if (ret < 0) {
		if (ret != -ENOENT)
			em_debug(c->log, "network namespace pool: %s", e2.msg);
		return NULL;
	}
	c->netns_claimed = true;
	return ns;
}

/* Put back what run took, after the container started: off its critical path. */
static void refill_netns(struct ctr *c)
{
	char dir[4096];
	struct em_err e2;
	int n;

	if (!c->netns_claimed)
		return;
	pool_dir(c->rt, dir, sizeof(dir));
	n = em_netns_pool_dir_count(dir, &e2);
	if (n >= 0 && em_netns_pool_dir_fill(dir, (unsigned)n + 1, &e2) < 0)
		em_warn(c->log, "refill the network namespace pool: %s", e2.msg);
}

/* As runc: after the config's device rules, the devices every container gets (and those it
 * lists in linux.devices) are allowed, so a "deny all" rule cannot break /dev/null; later rules
 * win. mknod of any node is allowed: what exists is decided by the device list, not by mknod. */
static int allow_container_devices(struct em_cg_limits *l, const struct em_oci_linux *lx,
				   struct em_err *err)
{
	static const struct { char type; int64_t major, minor; const char *access; } std[] = {
		{ 'c', -1, -1, "m" },  { 'b', -1, -1, "m" },  { 'c', 1, 3, "rwm" }, { 'c', 1, 5, "rwm" },
		{ 'c', 1, 7, "rwm" },  { 'c', 1, 8, "rwm" },  { 'c', 1, 9, "rwm" }, { 'c', 5, 0, "rwm" },
		{ 'c', 5, 2, "rwm" },  { 'c', 136, -1, "rwm" },
	};
	size_t add = EM_ARRAY_SIZE(std) + lx->n_devices;
	struct em_cg_device_rule *v;

	if (!l->n_devices)
		return 0; /* no rule restricts devices: nothing to re-allow */
	v = realloc(l->devices, (l->n_devices + add) * sizeof(*v));
	if (!v)
		return em_err_set(err, ENOMEM, "device rules");
	l->devices = v;
	for (size_t i = 0; i < EM_ARRAY_SIZE(std); i++) {
		struct em_cg_device_rule *r = &v[l->n_devices++];

		*r = (struct em_cg_device_rule){ .allow = true, .type = std[i].type,
						 .major = std[i].major, .minor = std[i].minor };
		snprintf(r->access, sizeof(r->access), "%s", std[i].access);
	}
	for (size_t i = 0; i < lx->n_devices; i++) {
		const struct em_oci_device *d = &lx->devices[i];
		struct em_cg_device_rule *r;

		if (d->type == 'p')
			continue;
		r = &v[l->n_devices++];
		*r = (struct em_cg_device_rule){ .allow = true, .type = d->type == 'u' ? 'c' : d->type,
						 .major = d->major, .minor = d->minor };
		snprintf(r->access, sizeof(r->access), "rwm");
	}
	return 0;
}

static int make_cgroup(struct ctr *c, struct em_err *err)
{
	struct em_cg_limits limits = { 0 };
	struct em_cg_root *root = NULL;
	const char *path = c->cfg.linux_.cgroups_path ? c->cfg.linux_.cgroups_path : c->st.id;
	int ret;

	if (strchr(path, ':'))
		return em_err_msg(err, EOPNOTSUPP,
				  "linux.cgroupsPath \"%s\": systemd cgroup paths (slice:prefix:name) are not supported by ember",
				  path);
	ret = cg_root(c->rt, &root, err);
	if (ret < 0)
		return ret;
	ret = em_rt_cg_limits_from_oci(&c->cfg.linux_.resources, &limits, c->log, err);
	if (ret == 0)
		ret = allow_container_devices(&limits, &c->cfg.linux_, err);
	if (ret < 0) {
		em_cg_limits_free(&limits);
		return ret;
	}
	ret = em_cg_create(root, path, &limits, &c->cg, err);
	em_cg_limits_free(&limits);
	if (ret < 0)
		return em_err_prefix(err, "create cgroup for container \"%s\"", c->st.id);
	snprintf(c->st.cgroup, sizeof(c->st.cgroup), "%s", path);
	return 0;
}

struct create_io {
	int console_sock;        /* connected --console-socket, or -1 */
	int proxy_sock;          /* run in the foreground: our end, receives the pty master */
	int proxy_peer;          /* ... and the end the init sends it to, if it wants a terminal */
};

/* Everything up to a set-up init. With wait_start, the init then blocks on exec.fifo. */
static int ctr_create(struct ctr *c, const char *id, const struct em_create_opts *o,
		      bool wait_start, struct create_io *cio, struct em_sandbox *sb, struct em_err *err)
{
	char bundle[PATH_MAX];
	struct em_plan plan;
	struct em_sandbox_io io = { .fifo_fd = -1, .console_sock = -1, .proc_fd = -1 };
	cleanup_close int fifo = -1;
	int ret;

	if (!realpath(o->bundle ? o->bundle : ".", bundle))
		return em_err_set(err, errno, "bundle %s", o->bundle ? o->bundle : ".");
	ret = em_state_create(c->rt->root, id, &c->sd, err);
	if (ret < 0)
		return ret;
	snprintf(c->st.id, sizeof(c->st.id), "%s", id);
	snprintf(c->st.bundle, sizeof(c->st.bundle), "%s", bundle);
	now_rfc3339(c->st.created, sizeof(c->st.created));
	c->st.owner = getuid();
	ret = load_config_into_state(c, bundle, err);
	if (ret < 0)
		goto fail;
	if (c->cfg.root.path[0] == '/')
		snprintf(c->st.rootfs, sizeof(c->st.rootfs), "%s", c->cfg.root.path);
	else
		em_path_join(c->st.rootfs, sizeof(c->st.rootfs), bundle, c->cfg.root.path);
	ret = em_state_write(&c->sd, &c->st, err);
	if (ret < 0)
		goto fail;

	if (c->cfg.process.terminal && cio->console_sock < 0 && cio->proxy_peer >= 0)
		cio->console_sock = take_fd(&cio->proxy_peer);
	if (c->cfg.process.terminal && cio->console_sock < 0) {
		ret = em_err_msg(err, EINVAL,
				 "process.terminal is true: --console-socket is required when the container is created detached");
		goto fail;
	}
	if (!c->cfg.process.terminal && cio->console_sock >= 0) {
		ret = em_err_msg(err, EINVAL,
				 "--console-socket given but process.terminal is false");
		goto fail;
	}
	ret = make_cgroup(c, err);
	if (ret < 0)
		goto fail;
	if (wait_start) {
		if (mkfifoat(c->sd.dfd, "exec.fifo", 0600) < 0) {
			ret = em_err_set(err, errno, "create %s/exec.fifo", c->sd.path);
			goto fail;
		}
		fifo = openat(c->sd.dfd, "exec.fifo", O_PATH | O_CLOEXEC);
		if (fifo < 0) {
			ret = em_err_set(err, errno, "open %s/exec.fifo", c->sd.path);
			goto fail;
		}
	}
	struct em_netns *netns = claim_netns(c);
	struct em_plan_opts popts = {
		.bundle = bundle, .cgroup_rel = em_cg_path(c->cg), .log = c->log,
		.netns_fd = netns ? netns->fd : -1,
	};
	ret = em_plan_build(&c->cfg, NULL, &popts, &plan, err);
	if (netns)
		em_netns_release(netns); /* the plan holds its own descriptor */
	if (ret < 0)
		goto fail;
	io.fifo_fd = take_fd(&fifo);
	io.console_sock = cio->console_sock;
	io.preserve_fds = o->preserve_fds;
	struct em_sandbox_hooks hooks = {
		.attach = sb_attach, .create_runtime = sb_create_runtime, .created = sb_created,
		.data = c,
	};
	ret = em_sandbox_start(&plan, &io, &hooks, sb, c->log, err);
	em_plan_free(&plan);
	if (io.fifo_fd >= 0)
		close(io.fifo_fd);
	cio->console_sock = io.console_sock; /* it may have moved above the preserved fds */
	if (io.stub_fd >= 0)
		close(io.stub_fd);
	if (io.proc_fd >= 0)
		close(io.proc_fd);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	em_err_prefix(err, "create container \"%s\"", id);
	ctr_abort(c);
	return -err->code;
}

int em_container_create(struct em_runtime *rt, const char *id, const struct em_create_opts *o,
			struct em_err *err)
{
	struct ctr c = { .rt = rt, .sd = { .dfd = -1 }, .pid_file = o->pid_file, .log = rt->log };
	struct create_io cio = { .console_sock = -1, .proxy_sock = -1, .proxy_peer = -1 };
	struct em_sandbox sb;
	int ret;

	if (o->console_socket) {
		ret = em_console_socket_connect(o->console_socket, &cio.console_sock, err);
		if (ret < 0)
			return ret;
	}
	ret = ctr_create(&c, id, o, true, &cio, &sb, err);
	if (cio.console_sock >= 0)
		close(cio.console_sock);
	if (ret == 0)
		em_sandbox_release(&sb);
	ctr_free(&c);
	return ret;
}

/* ---------------------------------------------------------------- start */

/* Open the fifo without blocking, then wait for the init's byte while checking it lives. */
static int release_init(struct em_state_dir *sd, const struct em_state *st, struct em_err *err)
{
	cleanup_close int fd = openat(sd->dfd, "exec.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	char b;

	if (fd < 0)
		return em_err_set(err, errno, "open %s/exec.fifo", sd->path);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, 100);

		if (r < 0 && errno != EINTR)
			return em_err_set(err, errno, "wait for the container's init");
		if (r > 0) {
			ssize_t n = read(fd, &b, 1);

			if (n == 1)
				break;
			if (n < 0 && errno != EAGAIN)
				return em_err_set(err, errno, "read exec.fifo");
		}
		if (!em_state_pid_alive(st))
			return em_err_msg(err, ESRCH,
					  "the container's init exited before it was started");
	}
	unlinkat(sd->dfd, "exec.fifo", 0);
	return 0;
}

static void run_poststart(struct ctr *c)
{
	struct em_err e2;
	cleanup_free char *json = state_json_of(c, EM_ST_RUNNING);

	if (json && c->cfg.hooks.n[EM_HOOK_POSTSTART])
		em_hooks_run(&c->cfg.hooks, EM_HOOK_POSTSTART, json, c->log, &e2);
}

int em_container_start(struct em_runtime *rt, const char *id, struct em_err *err)
{
	struct ctr c = { .rt = rt, .sd = { .dfd = -1 }, .log = rt->log };
	int ret;

	ret = em_state_open(rt->root, id, &c.sd, err);
	if (ret < 0)
		return ret;
	ret = em_state_read(&c.sd, &c.st, err);
	if (ret == 0)
		ret = load_saved_config(&c.sd, &c.cfg, err);
	if (ret < 0)
		goto out;
	c.cfg_loaded = true;
	enum em_status s = em_state_status(&c.sd, &c.st);
	if (s != EM_ST_CREATED) {
		ret = em_err_msg(err, EINVAL, "cannot start container \"%s\": it is %s, not created",
				 id, em_status_name(s));
		goto out;
	}
	ret = release_init(&c.sd, &c.st, err);
	if (ret < 0) {
		em_err_prefix(err, "start container \"%s\"", id);
		goto out;
	}
	run_poststart(&c);
out:
	ctr_free(&c);
	return ret;
}

/* ---------------------------------------------------------------- delete */

/* SIGKILL the init and wait until it is gone (it may not be our child: poll a pidfd). */
static int kill_and_wait(const struct em_state *st, struct em_err *err)
{
	int pfd = (int)syscall(SYS_pidfd_open, st->pid, 0);

	if (pfd < 0)
		return errno == ESRCH ? 0 : em_err_set(err, errno, "pidfd_open %d", st->pid);
	if (!em_state_pid_alive(st)) {
		close(pfd);
		return 0;
	}
	if (syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) {
		int ret = em_err_set(err, errno, "kill the init of container \"%s\"", st->id);
		close(pfd);
		return ret;
	}
	struct pollfd p = { .fd = pfd, .events = POLLIN };
	int r = poll(&p, 1, 10000);
	close(pfd);
	if (r == 0)
		return em_err_msg(err, ETIMEDOUT, "the init of container \"%s\" (pid %d) did not die",
				  st->id, st->pid);
	/* our own child (run, exec): reap it so no zombie stays behind */
	waitpid(st->pid, NULL, WNOHANG);
	return 0;
}

static int ctr_destroy(struct ctr *c, struct em_err *err)
{
	struct em_cg_root *root = NULL;
	int ret;

	if (c->st.cgroup[0] && cg_root(c->rt, &root, err) == 0) {
		ret = em_cg_open(root, c->st.cgroup, &c->cg, err);
		if (ret == 0) {
			ret = em_cg_destroy(c->cg, true, err);
			if (ret < 0)
				return em_err_prefix(err, "delete container \"%s\"", c->st.id);
			c->cg = NULL; /* destroy closed it */
		} else if (ret != -ENOENT) {
			return em_err_prefix(err, "delete container \"%s\"", c->st.id);
		}
	}
	if (c->cfg_loaded && c->cfg.hooks.n[EM_HOOK_POSTSTOP]) {
		cleanup_free char *json = state_json_of(c, EM_ST_STOPPED);
		struct em_err e2;

		if (json)
			em_hooks_run(&c->cfg.hooks, EM_HOOK_POSTSTOP, json, c->log, &e2);
	}
	ret = em_state_remove(&c->sd, err);
	if (ret < 0)
		return em_err_prefix(err, "delete container \"%s\"", c->st.id);
	return 0;
}

int em_container_delete(struct em_runtime *rt, const char *id, bool force, struct em_err *err)
{
	struct ctr c = { .rt = rt, .sd = { .dfd = -1 }, .log = rt->log };
	int ret;

	ret = em_state_open(rt->root, id, &c.sd, err);
	if (ret == -ENOENT && force)
		return 0; /* runc: delete --force of a missing container succeeds */
	if (ret < 0)
		return ret;
	if (em_state_read(&c.sd, &c.st, err) < 0) {
		/* a half-written state dir (crash during create): force removes it */
		if (!force)
			goto out_err;
		em_err_clear(err);
	}
	struct em_err cfg_err;
	if (load_saved_config(&c.sd, &c.cfg, &cfg_err) == 0)
		c.cfg_loaded = true;
	enum em_status s = em_state_status(&c.sd, &c.st);
	if (s == EM_ST_RUNNING && !force) {
		ret = em_err_msg(err, EBUSY,
				 "cannot delete container \"%s\": it is running (stop it first, or use --force)",
				 id);
		goto out;
	}
	if (s == EM_ST_RUNNING || s == EM_ST_CREATED) {
		ret = kill_and_wait(&c.st, err);
		if (ret < 0)
			goto out;
	}
	ret = ctr_destroy(&c, err);
out:
	ctr_free(&c);
	return ret;
out_err:
	ret = -err->code;
	goto out;
}

/* ---------------------------------------------------------------- run */

static int exit_code_of(int status)
{
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* A terminal in the foreground (run/exec without --console-socket): receive the pty master the
 * init sends and copy it to and from our own stdio until the container exits. */
struct fg_console {
	struct em_console_proxy *proxy;
	int master;
};

static int fg_console_start(struct fg_console *fc, int sock, struct em_err *err)
{
	int ret = em_console_recv(sock, &fc->master, err);

	if (ret == 0)
		ret = em_console_proxy_start(&fc->proxy, fc->master, STDIN_FILENO, STDOUT_FILENO, err);
	return ret;
}

static void fg_console_stop(struct fg_console *fc)
{
	if (fc->proxy)
		em_console_proxy_stop(fc->proxy); /* copies out the last output first */
	if (fc->master >= 0)
		close(fc->master);
	fc->proxy = NULL;
	fc->master = -1;
}

/* Wait for our child `pid`, forwarding the signals a user sends to `ember run` (as runc does). */
static int wait_forwarding(pid_t pid, int *exit_code, struct em_err *err)
{
	sigset_t set, old;
	cleanup_close int sfd = -1;
	int status;

	sigemptyset(&set);
	for (int s = 1; s < 32; s++)
		if (s != SIGKILL && s != SIGSTOP && s != SIGCHLD && s != SIGSEGV && s != SIGBUS &&
		    s != SIGFPE && s != SIGILL && s != SIGTTIN && s != SIGTTOU && s != SIGTSTP &&
		    s != SIGPIPE)
			sigaddset(&set, s);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return em_err_set(err, errno, "signalfd");
	}
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			sigprocmask(SIG_SETMASK, &old, NULL);
			return em_err_set(err, errno, "wait for the container's process");
		}
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) && si.ssi_signo != SIGCHLD)
			kill(pid, (int)si.ssi_signo);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	*exit_code = exit_code_of(status);
	return 0;
}

int em_container_run(struct em_runtime *rt, const char *id, const struct em_create_opts *o,
		     int *exit_code, struct em_err *err)
{
	struct ctr c = { .rt = rt, .sd = { .dfd = -1 }, .pid_file = o->pid_file, .log = rt->log };
	struct create_io cio = { .console_sock = -1, .proxy_sock = -1, .proxy_peer = -1 };
	struct fg_console fgc = { .proxy = NULL, .master = -1 };
	struct em_sandbox sb;
	int ret;

	*exit_code = 0;
	if (o->bill_path) {
		if (o->detach)
			return em_err_msg(err, EINVAL, "--bill needs the foreground (not --detach)");
		ret = em_rt_bill_open(&c.bill, rt->log, err);
		if (ret < 0)
			return ret;
	}
	if (o->console_socket) {
		ret = em_console_socket_connect(o->console_socket, &cio.console_sock, err);
		if (ret < 0)
			goto out;
	} else if (!o->detach) {
		/* if the config asks for a terminal, be our own console socket and proxy the pty */
		int sp[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
			ret = em_err_set(err, errno, "socketpair for the console");
			goto out;
		}
		cio.proxy_sock = sp[0];
		cio.proxy_peer = sp[1];
	}
	ret = ctr_create(&c, id, o, false, &cio, &sb, err);
	if (cio.console_sock >= 0)
		close(cio.console_sock);
	if (cio.proxy_peer >= 0)
		close(cio.proxy_peer);
	if (ret < 0)
		goto out;
	if (c.cfg.process.terminal && cio.proxy_sock >= 0) {
		ret = fg_console_start(&fgc, cio.proxy_sock, err);
		if (ret < 0) {
			em_sandbox_release(&sb);
			goto fail_destroy;
		}
	}
	ret = em_sandbox_wait_exec(&sb, err);
	if (ret < 0)
		goto fail_destroy;
	run_poststart(&c);
	refill_netns(&c);
	if (o->detach)
		goto out;
	/* do not hold the container's lock while it runs: kill, state, exec must work */
	em_state_close(&c.sd);
	ret = wait_forwarding(sb.pid, exit_code, err);
	if (c.bill && ret == 0)
		ret = em_rt_bill_end(c.bill, id, o->bill_path, err);
	fg_console_stop(&fgc);
	if (!o->keep && em_state_open(rt->root, id, &c.sd, err) == 0) {
		int r2 = ctr_destroy(&c, err);
		if (ret == 0)
			ret = r2;
	}
	goto out;
fail_destroy:
	em_err_prefix(err, "run container \"%s\"", id);
	{
		struct em_err e2;

		fg_console_stop(&fgc);
		kill_and_wait(&c.st, &e2);
		ctr_destroy(&c, &e2);
	}
out:
	if (cio.proxy_sock >= 0)
		close(cio.proxy_sock);
	em_rt_bill_close(c.bill);
	ctr_free(&c);
	return ret;
}

/* ---------------------------------------------------------------- the rest of the commands */

/* Open, lock and read a container; the caller calls ctr_free. */
static int ctr_open(struct em_runtime *rt, const char *id, struct ctr *c, bool need_cgroup,
		    struct em_err *err)
{
	struct em_cg_root *root = NULL;
	int ret;

	*c = (struct ctr){ .rt = rt, .sd = { .dfd = -1 }, .log = rt->log };
	ret = em_state_open(rt->root, id, &c->sd, err);
	if (ret < 0)
		return ret;
	ret = em_state_read(&c->sd, &c->st, err);
	if (ret < 0)
		return ret;
	if (load_saved_config(&c->sd, &c->cfg, err) == 0)
		c->cfg_loaded = true;
	else
		em_err_clear(err);
	if (need_cgroup) {
		if (!c->st.cgroup[0])
			return em_err_msg(err, ENOENT, "container \"%s\" has no cgroup", id);
		ret = cg_root(rt, &root, err);
		if (ret == 0)
			ret = em_cg_open(root, c->st.cgroup, &c->cg, err);
		if (ret < 0)
			return em_err_prefix(err, "container \"%s\"", id);
	}
	return 0;
}

static enum em_status ctr_status(struct ctr *c)
{
	enum em_status s = em_state_status(&c->sd, &c->st);
	bool frozen = false;
	struct em_err e2;

	if (s == EM_ST_RUNNING && c->cg && em_cg_frozen(c->cg, &frozen, &e2) == 0 && frozen)
		return EM_ST_PAUSED;
	return s;
}

int em_container_state(struct em_runtime *rt, const char *id, char **json, struct em_err *err)
{
	struct ctr c;
	int ret = ctr_open(rt, id, &c, false, err);

	if (ret == 0) {
		struct em_cg_root *root = NULL;
		struct em_err e2;

		if (c.st.cgroup[0] && cg_root(rt, &root, &e2) == 0)
			em_cg_open(root, c.st.cgroup, &c.cg, &e2);
		*json = state_json_of(&c, ctr_status(&c));
		if (!*json)
			ret = em_err_msg(err, ENOMEM, "encode the state of \"%s\"", id);
	}
	ctr_free(&c);
	return ret;
}

int em_container_kill(struct em_runtime *rt, const char *id, int sig, bool all, struct em_err *err)
{
	struct ctr c;
	int ret = ctr_open(rt, id, &c, all, err);

	if (ret < 0)
		goto out;
	enum em_status s = em_state_status(&c.sd, &c.st);
	if (s == EM_ST_STOPPED || s == EM_ST_CREATING) {
		ret = em_err_msg(err, ESRCH, "cannot kill container \"%s\": it is not running", id);
		goto out;
	}
	if (all) {
		ret = em_cg_kill(c.cg, sig, err);
		goto out;
	}
	/* a pidfd pins the process we checked: no signal can reach a recycled pid */
	int pfd = (int)syscall(SYS_pidfd_open, c.st.pid, 0);
	if (pfd < 0 || !em_state_pid_alive(&c.st)) {
		ret = em_err_msg(err, ESRCH, "cannot kill container \"%s\": it is not running", id);
		if (pfd >= 0)
			close(pfd);
		goto out;
	}
	if (syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) < 0)
		ret = em_err_set(err, errno, "send signal %d to container \"%s\"", sig, id);
	close(pfd);
out:
	ctr_free(&c);
	return ret;
}

static int pause_resume(struct em_runtime *rt, const char *id, bool pause, struct em_err *err)
{
	struct ctr c;
	int ret = ctr_open(rt, id, &c, true, err);

	if (ret == 0) {
		enum em_status s = ctr_status(&c);

		if (pause && s != EM_ST_RUNNING)
			ret = em_err_msg(err, EINVAL, "cannot pause container \"%s\": it is %s", id,
					 em_status_name(s));
		else if (!pause && s != EM_ST_PAUSED)
			ret = em_err_msg(err, EINVAL, "cannot resume container \"%s\": it is %s", id,
					 em_status_name(s));
		else
			ret = pause ? em_cg_freeze(c.cg, err) : em_cg_thaw(c.cg, err);
	}
	ctr_free(&c);
	return ret;
}

int em_container_pause(struct em_runtime *rt, const char *id, struct em_err *err)
{
	return pause_resume(rt, id, true, err);
}

int em_container_resume(struct em_runtime *rt, const char *id, struct em_err *err)
{
	return pause_resume(rt, id, false, err);
}

int em_container_pids(struct em_runtime *rt, const char *id, pid_t **pids, size_t *n,
		      struct em_err *err)
{
	struct ctr c;
	int ret = ctr_open(rt, id, &c, true, err);

	if (ret == 0)
		ret = em_cg_pids(c.cg, pids, n, err);
	ctr_free(&c);
	return ret;
}

int em_container_stats(struct em_runtime *rt, const char *id, struct em_cg_stats *st,
		       struct em_err *err)
{
	struct ctr c;
	int ret = ctr_open(rt, id, &c, true, err);

	if (ret == 0)
		ret = em_cg_stats(c.cg, st, err);
	ctr_free(&c);
	return ret;
}

int em_container_update(struct em_runtime *rt, const char *id, const struct em_oci_resources *r,
			struct em_err *err)
{
	struct em_cg_limits limits = { 0 };
	struct ctr c;
	int ret = ctr_open(rt, id, &c, true, err);

	if (ret == 0)
		ret = em_rt_cg_limits_from_oci(r, &limits, rt->log, err);
	if (ret == 0)
		ret = em_cg_update(c.cg, &limits, err);
	if (ret < 0)
		em_err_prefix(err, "update container \"%s\"", id);
	em_cg_limits_free(&limits);
	ctr_free(&c);
	return ret;
}

int em_container_list(struct em_runtime *rt, struct em_list_entry **out, size_t *n,
		      struct em_err *err)
{
	char **ids = NULL;
	size_t nids = 0, cnt = 0;
	struct em_list_entry *v;
	int ret = em_state_list(rt->root, &ids, &nids, err);

	*out = NULL;
	*n = 0;
	if (ret < 0)
		return ret;
	v = calloc(nids ? nids : 1, sizeof(*v));
	if (!v) {
		ret = em_err_set(err, ENOMEM, "list containers");
		goto out;
	}
	for (size_t i = 0; i < nids; i++) {
		struct ctr c;
		struct em_err e2;

		if (ctr_open(rt, ids[i], &c, false, &e2) == 0) {
			struct em_cg_root *root = NULL;

			if (c.st.cgroup[0] && cg_root(rt, &root, &e2) == 0)
				em_cg_open(root, c.st.cgroup, &c.cg, &e2);
			v[cnt].st = c.st;
			v[cnt].status = ctr_status(&c);
			cnt++;
		}
		ctr_free(&c);
	}
	*out = v;
	*n = cnt;
out:
	for (size_t i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	return ret;
}

/* ---------------------------------------------------------------- exec */

/* The process to exec: process.json, or the container's process with the CLI's changes. */
static int exec_process(const struct ctr *c, const struct em_exec_opts *o,
			struct em_oci_process *proc, struct em_err *err)
{
	cleanup_free char *text = NULL;
	json_t *j = NULL;
	size_t len;
	int ret;

	if (o->process_file) {
		ret = em_read_file_at(AT_FDCWD, o->process_file, &text, &len, err);
		if (ret < 0)
			return ret;
		ret = em_oci_parse_process(text, len, proc, err);
		return ret < 0 ? em_err_prefix(err, "%s", o->process_file) : 0;
	}
	if (!o->n_args)
		return em_err_msg(err, EINVAL, "exec: a command to run is required");
	/* start from the container's own process, as runc does: env, user, caps, rlimits */
	const struct em_oci_process *base = &c->cfg.process;
	json_t *args = json_array(), *env = json_array();
	for (size_t i = 0; i < o->n_args; i++)
		json_array_append_new(args, json_string(o->args[i]));
	for (size_t i = 0; i < base->env.n; i++)
		json_array_append_new(env, json_string(base->env.v[i]));
	for (size_t i = 0; i < o->n_env; i++)
		json_array_append_new(env, json_string(o->env[i]));
	json_t *caps = json_object();
	static const char *const set_names[EM_CAP_NSETS] = { "bounding", "effective",
							       "inheritable", "permitted",
							       "ambient" };
	for (int s = 0; s < EM_CAP_NSETS; s++) {
		json_t *a = json_array();

		for (int cap = 0; cap <= em_cap_last(); cap++)
			if (base->caps[s] & (1ULL << cap))
				json_array_append_new(a, json_string(em_cap_name(cap)));
		if (s != EM_CAP_INHERITABLE && s != EM_CAP_AMBIENT)
			for (size_t i = 0; i < o->n_caps; i++)
				json_array_append_new(a, json_string(o->caps[i]));
		json_object_set_new(caps, set_names[s], a);
	}
	json_t *gids = json_array();
	const gid_t *ag = o->has_user ? o->additional_gids : NULL;
	size_t nag = o->has_user ? o->n_additional_gids : 0;
	if (!o->has_user)
		for (size_t i = 0; i < base->user.n_additional_gids; i++)
			json_array_append_new(gids, json_integer(base->user.additional_gids[i]));
	for (size_t i = 0; i < nag; i++)
		json_array_append_new(gids, json_integer(ag[i]));
	json_t *rl = json_array();
	for (size_t i = 0; i < base->n_rlimits; i++)
		json_array_append_new(rl, json_pack("{s:s, s:I, s:I}", "type", base->rlimits[i].type,
						    "soft", (json_int_t)base->rlimits[i].soft,
						    "hard", (json_int_t)base->rlimits[i].hard));
	j = json_pack("{s:b, s:s, s:o, s:o, s:{s:I, s:I, s:o}, s:o, s:o, s:b}", "terminal",
		      o->tty, "cwd", o->cwd ? o->cwd : (base->cwd ? base->cwd : "/"), "args", args,
		      "env", env, "user", "uid", (json_int_t)(o->has_user ? o->uid : base->user.uid),
		      "gid", (json_int_t)(o->has_user ? o->gid : base->user.gid), "additionalGids",
		      gids, "capabilities", caps, "rlimits", rl, "noNewPrivileges",
		      o->no_new_privs || base->no_new_privileges);
	if (!j)
		return em_err_msg(err, ENOMEM, "build the exec process");
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return em_err_msg(err, ENOMEM, "build the exec process");
	ret = em_oci_parse_process(text, strlen(text), proc, err);
	return ret < 0 ? em_err_prefix(err, "exec") : 0;
}

static int exec_attach(void *data, pid_t pid, struct em_err *err)
{
	struct ctr *c = data;

	return em_cg_attach(c->cg, pid, err);
}

static int exec_created(void *data, pid_t pid, struct em_err *err)
{
	const char *pid_file = ((struct ctr *)data)->pid_file;

	return pid_file ? em_write_pid_file(pid_file, pid, err) : 0;
}

int em_container_exec(struct em_runtime *rt, const char *id, const struct em_exec_opts *o,
		      int *exit_code, struct em_err *err)
{
	struct em_oci_process proc = { 0 };
	struct fg_console fgc = { .proxy = NULL, .master = -1 };
	struct em_sandbox_io io = { .fifo_fd = -1, .console_sock = -1, .proc_fd = -1 };
	cleanup_close int proxy_sock = -1;
	bool have_proc = false;
	struct em_plan plan;
	struct em_sandbox sb;
	struct ctr c;
	int ret;

	*exit_code = 0;
	ret = ctr_open(rt, id, &c, true, err);
	if (ret < 0)
		goto out;
	c.pid_file = o->pid_file;
	if (!c.cfg_loaded) {
		ret = em_err_msg(err, EIO, "container \"%s\": its saved config is unreadable", id);
		goto out;
	}
	enum em_status s = em_state_status(&c.sd, &c.st);
	if (s != EM_ST_RUNNING && s != EM_ST_CREATED) {
		ret = em_err_msg(err, EINVAL, "cannot exec in container \"%s\": it is %s", id,
				 em_status_name(s));
		goto out;
	}
	ret = exec_process(&c, o, &proc, err);
	if (ret < 0)
		goto out;
	have_proc = true;
	if (proc.terminal) {
		if (o->console_socket) {
			ret = em_console_socket_connect(o->console_socket, &io.console_sock, err);
		} else if (!o->detach) {
			int sp[2];

			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
				ret = em_err_set(err, errno, "socketpair for the console");
			else {
				proxy_sock = sp[0];
				io.console_sock = sp[1];
			}
		} else {
			ret = em_err_msg(err, EINVAL,
					 "exec with a terminal and --detach needs --console-socket");
		}
		if (ret < 0)
			goto out;
	}
	struct em_plan_opts popts = { .bundle = c.st.bundle, .for_exec = true, .join_pid = c.st.pid,
				      .netns_fd = -1, .log = rt->log };
	ret = em_plan_build(&c.cfg, &proc, &popts, &plan, err);
	if (ret < 0)
		goto out;
	io.preserve_fds = o->preserve_fds;
	struct em_sandbox_hooks hooks = { .attach = exec_attach, .created = exec_created,
					  .data = &c };
	/* the lock is not held while the process runs */
	em_state_close(&c.sd);
	ret = em_sandbox_start(&plan, &io, &hooks, &sb, rt->log, err);
	em_plan_free(&plan);
	if (io.console_sock >= 0)
		close(io.console_sock);
	if (io.stub_fd >= 0)
		close(io.stub_fd);
	if (ret < 0)
		goto out;
	if (proxy_sock >= 0) {
		ret = fg_console_start(&fgc, proxy_sock, err);
		if (ret < 0) {
			em_sandbox_release(&sb);
			kill(sb.pid, SIGKILL);
			waitpid(sb.pid, NULL, 0);
			goto out;
		}
	}
	ret = em_sandbox_wait_exec(&sb, err);
	if (ret < 0 || o->detach)
		goto out;
	ret = wait_forwarding(sb.pid, exit_code, err);
out:
	fg_console_stop(&fgc);
	if (ret < 0)
		em_err_prefix(err, "exec in container \"%s\"", id);
	if (have_proc)
		em_oci_process_free(&proc);
	ctr_free(&c);
	return ret;
}
