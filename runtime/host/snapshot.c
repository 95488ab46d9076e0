/* runtime/host/snapshot.c — see snapshot.h. */
#include "runtime/host/snapshot.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "runtime/host/instance.h"
#include "sdk/c/ember_proto.h"
#include "snapshot/dump.h"
#include "snapshot/image.h"
#include "snapshot/lazy.h"
#include "snapshot/restorer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_TIMEOUT_MS 5000u  /* the template answers SNAPSHOT from its parked loop at once */

void em_hsnap_path(const char *data_dir, const char *fn, uint32_t version, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/snapshots/%s-v%u.img", data_dir, fn, version);
}

int em_hsnap_dir(const char *data_dir, struct em_err *err)
{
	char path[1200];

	snprintf(path, sizeof(path), "%s/snapshots", data_dir);
	return em_mkdir_p(path, 0700, err);
}

int em_hsnap_sweep(const char *data_dir, char *const *keep, size_t n, struct em_log *log)
{
	char dir[1200], path[1600];
	struct dirent *e;
	int removed = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/snapshots", data_dir);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		bool wanted = e->d_name[0] == '.';

		for (size_t i = 0; i < n && !wanted; i++) {
			size_t l = strlen(keep[i]);
			wanted = !strncmp(e->d_name, keep[i], l) &&
				 (!e->d_name[l] || !strcmp(e->d_name + l, ".ws"));
		}
		if (wanted)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) == 0) {
			removed++;
			em_info(log, "removed %s: no deployed version has it", path);
		} else {
			em_warn(log, "remove %s: %s", path, strerror(errno));
		}
	}
	closedir(d);
	return removed;
}

/* The SDK's wire state into the dumper's input (snapshot/ does not include the SDK's headers;
 * the layouts are pinned on both sides). */
static int state_in(const char *payload, size_t len, pid_t pid, struct em_snap_dump_in *in,
		    struct em_err *err)
{
	struct ember_snap_state st;

	if (len < sizeof(st))
		return em_err_msg(err, EPROTO, "SNAPSHOT_STATE is %zu bytes, shorter than its "
				  "%zu-byte header", len, sizeof(st));
	memcpy(&st, payload, sizeof(st));
	if (st.error) {
		size_t l = st.maps_len < len - sizeof(st) ? st.maps_len : len - sizeof(st);
		return em_err_msg(err, st.error < 0 ? -st.error : st.error,
				  "the template refused: %.*s", (int)(l > 400 ? 400 : l),
				  payload + sizeof(st));
	}
	if ((uint64_t)st.maps_len + st.fds_len + st.exe_len != len - sizeof(st))
		return em_err_msg(err, EPROTO, "SNAPSHOT_STATE: its texts (%u + %u + %u bytes) do "
				  "not fill its %zu-byte payload", st.maps_len, st.fds_len,
				  st.exe_len, len);
	_Static_assert(sizeof(struct ember_snap_regs) == sizeof(struct em_snap_regs),
		       "the SDK's and the image's registers");
	_Static_assert(sizeof(struct ember_snap_sigaction) == sizeof(struct em_snap_sigaction),
		       "the SDK's and the image's sigactions");
	memset(in, 0, sizeof(*in));
	in->pid = pid;
	in->threads = st.threads;
	memcpy(&in->regs, &st.regs, sizeof(in->regs));
	in->fs_base = st.fs_base;
	in->gs_base = st.gs_base;
	in->sigmask = st.sigmask;
	in->rseq_addr = st.rseq_addr;
	in->rseq_len = st.rseq_len;
	in->rseq_sig = st.rseq_sig;
	memcpy(in->sigactions, st.sigactions, sizeof(in->sigactions));
	in->maps = payload + sizeof(st);
	in->maps_len = st.maps_len;
	in->fds = in->maps + st.maps_len;
	in->fds_len = st.fds_len;
	in->exe = in->fds + st.fds_len;
	in->exe_len = st.exe_len;
	return 0;
}

int em_hsnap_dump(struct em_inst *tmpl, const char *path, struct em_hsnap_stats *out,
		  struct em_err *err)
{
	uint64_t t0 = em_now_ns(), t1;
	uint64_t id = t0; /* only tells one SNAPSHOT from the next on this channel */
	cleanup_free char *payload = NULL;
	struct em_snap_dump_stats ds = { 0 };
	struct em_snap_dump_in in;
	struct em_err derr = { 0 };
	size_t len;
	int ret, dret;

	memset(out, 0, sizeof(*out));
	ret = em_inst_snapshot_state(tmpl, id, STATE_TIMEOUT_MS, &payload, &len, err);
	if (ret < 0)
		return ret;
	t1 = em_now_ns();
	ret = state_in(payload, len, tmpl->pid, &in, err);
	if (ret < 0) {
		struct ember_snap_state st;

		/* a refusing template does not wait for DONE; any other does */
		memcpy(&st, payload, len < sizeof(st) ? len : sizeof(st));
		if (len < sizeof(st) || !st.error)
			em_inst_snapshot_done(tmpl, id, -ret, STATE_TIMEOUT_MS, &derr);
		return ret;
	}
	dret = em_snap_dump(&in, path, NULL, &ds, err);
	/* the template carries on whether or not the image was written */
	ret = em_inst_snapshot_done(tmpl, id, dret < 0 ? -dret : 0, STATE_TIMEOUT_MS, &derr);
	if (dret < 0)
		return dret;
	if (ret < 0) {
		*err = derr;
		return ret;
	}
	out->bytes = ds.image_bytes;
	out->stored = ds.pages_stored;
	out->zero = ds.pages_zero;
	out->absent = ds.pages_absent;
	out->state_ms = (double)(t1 - t0) / 1e6;
	out->dump_ms = (double)(em_now_ns() - t1) / 1e6;
	return 0;
}

/* ------------------------------------------------------------------ restore */

static int add_arg(struct em_hsnap_restore *r, const char *a)
{
	char **v = realloc(r->argv, (r->argc + 2) * sizeof(char *));

	if (!v)
		return -ENOMEM;
	r->argv = v;
	v[r->argc] = strdup(a);
	if (!v[r->argc])
		return -ENOMEM;
	v[++r->argc] = NULL;
	return 0;
}

int em_hsnap_restore_prepare(const char *image, enum em_fn_restore mode, bool verify,
			     struct em_hsnap_restore *r, struct em_err *err)
{
	struct em_snap_image *img = NULL;
	struct em_snap_expect ex = { 0 };
	char release[EM_SNAP_RELEASE_MAX], mode_arg[32];
	int ret;

	memset(r, 0, sizeof(*r));
	for (int i = 0; i < EM_HSNAP_RESTORE_NFDS; i++)
		r->fds[i] = -1;
	/* refuse what this host can tell is wrong before any sandbox exists: a damaged header or
	 * metadata, another kernel. The restorer checks the files (binary, libraries) in the
	 * sandbox's own view and, asked to, the pages. */
	ret = em_snap_kernel_release(release, sizeof(release), err);
	if (ret < 0)
		return ret;
	ex.kernel_release = release;
	ret = em_snap_open(image, &ex, &img, err);
	if (ret < 0)
		return ret;
	/* a private mapping hands the image's pages to the process unseen: check them here (it
	 * also brings them into the page cache the mapping then reads) */
	if (verify && mode == EM_FN_RESTORE_MMAP)
		ret = em_snap_verify_data(img, err);
	em_snap_close(img);
	if (ret < 0)
		return ret;
	r->fds[0] = open(image, O_RDONLY | O_CLOEXEC);
	if (r->fds[0] < 0) {
		ret = em_err_set(err, errno, "open %s", image);
		goto fail;
	}
	r->fds[1] = em_snap_restorer_memfd(err);
	if (r->fds[1] < 0) {
		ret = r->fds[1];
		goto fail;
	}
	if (mode == EM_FN_RESTORE_LAZY) {
		r->fds[2] = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (r->fds[2] < 0) {
			ret = em_err_set(err, errno, "open /dev/userfaultfd (lazy restores need it: "
					 "Linux >= 6.1)");
			goto fail;
		}
	}
	snprintf(mode_arg, sizeof(mode_arg), "--mode=%s", em_fn_restore_name(mode));
	if (add_arg(r, "/proc/self/fd/5") < 0 || add_arg(r, "--image-fd=4") < 0 ||
	    add_arg(r, mode_arg) < 0 ||
	    /* its phase times go to the template's log: `ember serve --debug` shows them */
	    add_arg(r, "--timing") < 0 ||
	    (mode == EM_FN_RESTORE_LAZY && add_arg(r, "--uffd-dev-fd=6") < 0) ||
	    (verify && mode == EM_FN_RESTORE_EAGER && add_arg(r, "--verify") < 0)) {
		ret = em_err_set(err, ENOMEM, "restore from %s", image);
		goto fail;
	}
	return 0;
fail:
	em_hsnap_restore_release(r);
	return ret;
}

void em_hsnap_restore_release(struct em_hsnap_restore *r)
{
	for (size_t i = 0; r->argv && i < r->argc; i++)
		free(r->argv[i]);
	free(r->argv);
	r->argv = NULL;
	r->argc = 0;
	for (int i = 0; i < EM_HSNAP_RESTORE_NFDS; i++)
		if (r->fds[i] >= 0) {
			close(r->fds[i]);
			r->fds[i] = -1;
		}
}

/* ------------------------------------------------------------------ lazy */

struct em_hsnap_lazy {
	struct em_snap_image *img;
	struct em_snap_lazy *srv;
};

int em_hsnap_lazy_start(const char *image, int uffd, bool verify, struct em_hsnap_lazy **out,
			struct em_err *err)
{
	struct em_hsnap_lazy *l = calloc(1, sizeof(*l));
	struct em_snap_lazy_opts o = { .ws = EM_SNAP_WS_AUTO, .verify = verify };
	int fd, ret;

	*out = NULL;
	if (!l)
		return em_err_set(err, ENOMEM, "lazy restore from %s", image);
	ret = em_snap_open(image, NULL, &l->img, err);
	if (ret < 0)
		goto fail;
	fd = fcntl(uffd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		ret = em_err_set(err, errno, "lazy restore from %s: dup the userfaultfd", image);
		goto fail;
	}
	/* the handshake and the registration are ours: the sandbox may not ask for EVENT_FORK */
	{
		cleanup_close int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		uint32_t nreg = 0;

		if (dev < 0)
			ret = em_err_set(err, errno, "open /dev/userfaultfd");
		else if ((ret = em_snap_uffd_api(fd, dev, 0, NULL, err)) == 0)
			ret = em_snap_uffd_register_anon(fd, l->img, &nreg, err);
		if (ret < 0) {
			close(fd);
			goto fail;
		}
	}
	ret = em_snap_lazy_start(l->img, fd, &o, &l->srv, err); /* takes fd */
	if (ret < 0)
		goto fail;
	*out = l;
	return 0;
fail:
	em_snap_close(l->img);
	free(l);
	return ret;
}

int em_hsnap_lazy_save_ws(struct em_hsnap_lazy *l, struct em_err *err)
{
	int ret;

	if (!l)
		return 0;
	ret = em_snap_lazy_save_ws(l->srv, err);
	return ret == -EINVAL ? 0 : ret; /* prefetching a recorded set: nothing to record */
}

void em_hsnap_lazy_stop(struct em_hsnap_lazy *l)
{
	struct em_err err = { 0 };

	if (!l)
		return;
	em_snap_lazy_stop(l->srv, &err);
	em_snap_close(l->img);
	free(l);
}
