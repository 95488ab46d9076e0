/* tools/bench/bench_run.c — `ember run` against `crun run` and `runc run` of the same bundle
 * (busybox rootfs, read-only, /bin/true), with and without a network namespace. The runtimes are
 * interleaved (one run of each per round, the order rotating), so a noisy neighbour on this shared
 * machine hits all three alike. Each sample is the wall time of fork+exec of the CLI until its exit
 * (CLOCK_MONOTONIC), stdio on /dev/null. Failures (non-zero exits) are counted and reported, never
 * folded into the figures.
 *
 * Peers on a hybrid cgroup host (v1 controllers + cgroup2 at /sys/fs/cgroup/unified):
 *  - crun 1.8.1 refuses every container when the cgroup2 hierarchy has a controller enabled
 *    ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"), whatever
 *    --cgroup-manager says: the check comes before the manager is consulted. This benchmark then
 *    runs crun in a private mount namespace (slave propagation: nothing leaks to the machine) where
 *    an empty tmpfs hides /sys/fs/cgroup/unified, so crun sees a v1-only host and places the
 *    container in the v1 hierarchies with its default cgroupfs manager. (crun still makes a
 *    directory and writes a cgroup.procs file per container in that tmpfs, and leaves them: 32 MB
 *    is room for thousands of runs.) The machine's mounts are not changed; the namespace and the
 *    tmpfs die with the last fd. All of this is tools/bench/peers.c, shared with bench-host.
 *  - runc handles hybrid hosts: plain `runc run`.
 *  - ember: `ember --cgroup-parent ember-bench run`.
 * A fourth line per variant, "floor", is the bare sandbox timed in this process (clone with the
 * same namespaces, pivot_root into the rootfs, exec of /bin/true): no runtime can go below it on
 * this machine, and ember's distance to it is printed. The config's ociVersion is set to 1.0.2
 * because crun 1.8.1 refuses any other ("unknown version specified"); the spec has nothing newer.
 * Everything made here is removed at the end: bundles, state roots (/run/ember-bench-<pid>-*),
 * ember's parent cgroup (through the cgroups library) and any cgroup a peer left behind that is
 * named after one of this run's container ids (nothing else is touched).
 *
 * EMBER_BENCH_RUNS sets the rounds per variant (default 50). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroups/cgroups.h"
#include "common/err.h"
#include "common/fs.h"
#include "tools/bench/peers.h"
#include "tools/bench/stats.h"

#define EMBER_CG_PARENT     "ember-bench"
#define MAX_FAIL_SHOWN      3

enum rt { RT_EMBER, RT_CRUN, RT_RUNC, N_RT };

struct variant {
	const char *name;         /* "netns", "no-netns" */
	bool netns;
	char bundle[PATH_MAX];
	struct bench_samples s[N_RT];
	unsigned fails[N_RT];
	int fail_status[N_RT][MAX_FAIL_SHOWN];
	char fail_msg[N_RT][400];
	struct bench_samples floor;   /* the minimal sandbox, see floor_run */
	unsigned floor_fails;
};

/* ember's CLI is driven like the peers: same --root, same spawn, same cleanup */
static struct peer_rt rts[N_RT] = {
	[RT_EMBER] = { .name = "ember", .mntns = -1 },
	[RT_CRUN] = { .name = "crun", .mntns = -1 },
	[RT_RUNC] = { .name = "runc", .mntns = -1 },
};
static bool usable[N_RT];       /* the warm-up run succeeded */
static char tmpdir[PATH_MAX];
static char rootfs[PATH_MAX];   /* build/rootfs, absolute */
static int devnull = -1;
/* every container id this run used, for the peer cgroup sweep */
static char **ids;
static size_t n_ids, cap_ids;

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "bench-run: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(1);
}

static void remember_id(const char *id)
{
	if (n_ids == cap_ids) {
		cap_ids = cap_ids ? cap_ids * 2 : 256;
		ids = realloc(ids, cap_ids * sizeof(*ids));
		if (!ids)
			die("%s", "out of memory");
	}
	ids[n_ids] = strdup(id);
	if (!ids[n_ids])
		die("%s", "out of memory");
	n_ids++;
}

/* fork+exec with every stdio on /dev/null (or stderr on errfd); returns the wait status or
 * -errno. */
static int run_cmd(const struct peer_rt *rt, char *const argv[], int errfd)
{
	pid_t pid = peer_spawn(rt, argv, devnull, devnull, errfd >= 0 ? errfd : devnull);

	return pid < 0 ? pid : peer_wait(pid);
}

/* argv of `<rt> [flags] run --bundle B id` */
static void run_argv(const struct peer_rt *rt, enum rt which, const char *bundle, const char *id,
		     char *argv[16])
{
	int n = 0;

	argv[n++] = (char *)rt->path;
	argv[n++] = "--root";
	argv[n++] = (char *)rt->root;
	if (which == RT_EMBER) {
		argv[n++] = "--cgroup-parent";
		argv[n++] = EMBER_CG_PARENT;
	}
	argv[n++] = "run";
	argv[n++] = "--bundle";
	argv[n++] = (char *)bundle;
	argv[n++] = (char *)id;
	argv[n] = NULL;
}

/* config.json from `ember spec`, edited: absolute read-only rootfs, no terminal, /bin/true.
 * ociVersion 1.0.2: crun 1.8.1 refuses anything but 1.0.x ("unknown version specified"), and the
 * default spec uses nothing newer. */
static void make_bundle(struct variant *v)
{
	char cfg[PATH_MAX + 16];
	char *argv[] = { rts[RT_EMBER].path, "spec", "--bundle", v->bundle, NULL };
	json_error_t jerr;
	json_t *c, *ns;

	if (mkdir(v->bundle, 0755) < 0)
		die("mkdir %s", v->bundle);
	if (run_cmd(&rts[RT_EMBER], argv, 2) != 0)
		die("ember spec --bundle %s failed", v->bundle);
	snprintf(cfg, sizeof(cfg), "%s/config.json", v->bundle);
	c = json_load_file(cfg, 0, &jerr);
	if (!c)
		die("parse %s", cfg);
	json_object_set_new(c, "ociVersion", json_string("1.0.2"));
	json_object_set_new(c, "root", json_pack("{s:s, s:b}", "path", rootfs, "readonly", 1));
	json_t *proc = json_object_get(c, "process");
	if (!proc)
		die("%s: no process", cfg);
	json_object_set_new(proc, "terminal", json_false());
	json_object_set_new(proc, "args", json_pack("[s]", "/bin/true"));
	ns = json_object_get(json_object_get(c, "linux"), "namespaces");
	if (!json_is_array(ns))
		die("%s: no linux.namespaces", cfg);
	if (!v->netns) {
		for (size_t i = 0; i < json_array_size(ns); i++) {
			const char *t = json_string_value(
				json_object_get(json_array_get(ns, i), "type"));
			if (t && !strcmp(t, "network"))
				json_array_remove(ns, i--);
		}
	}
	if (json_dump_file(c, cfg, JSON_INDENT(1)) < 0)
		die("write %s", cfg);
	json_decref(c);
}

/* crun's line in this report's words; peer_init ran it in a private mount namespace if the host
 * needs it (see the header comment). */
static void crun_config(struct peer_rt *rt)
{
	if (!rt->cg2_controllers[0])
		return;
	if (rt->mntns >= 0)
		snprintf(rt->config, sizeof(rt->config),
			 "crun (cgroupfs manager) in a private mount ns with /sys/fs/cgroup/unified "
			 "hidden (cgroup2 has controllers: %s; crun 1.8.1 refuses hybrid then)",
			 rt->cg2_controllers);
	else
		snprintf(rt->config, sizeof(rt->config),
			 "crun as is (could not hide cgroup2 with controllers %s: %s)",
			 rt->cg2_controllers, strerror(rt->mntns_err));
}

/* One untimed run per runtime: warms the page cache and, if it fails, shows why (stderr). */
static void warm_up(enum rt which, const char *bundle)
{
	struct peer_rt *rt = &rts[which];
	char id[64], log[PATH_MAX + 32], desc[64], *argv[16];
	int fd, st;

	snprintf(id, sizeof(id), "ebr%d-warm-%s", (int)getpid(), rt->name);
	remember_id(id);
	snprintf(log, sizeof(log), "%s/%s.warm.log", tmpdir, rt->name);
	fd = open(log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	run_argv(rt, which, bundle, id, argv);
	st = run_cmd(rt, argv, fd);
	usable[which] = st == 0;
	if (!usable[which]) {
		char msg[512] = "";
		ssize_t n = fd >= 0 ? pread(fd, msg, sizeof(msg) - 1, 0) : 0;
		peer_describe_status(st, desc, sizeof(desc));
		msg[n > 0 ? n : 0] = 0;
		msg[strcspn(msg, "\n")] = 0;
		printf("# warm-up: %s run failed (%s): %s\n", rt->name, desc, msg);
		peer_delete(rt, id);
	}
	if (fd >= 0)
		close(fd);
}

/* The timed runs keep stderr on /dev/null; after a runtime's first failure in a variant, run the
 * same command again (untimed, a new id) with stderr kept, so the report can say why. */
static void diagnose(struct variant *v, enum rt which, int round)
{
	struct peer_rt *rt = &rts[which];
	char id[64], log[PATH_MAX + 32], *argv[16];
	int fd, st;

	snprintf(id, sizeof(id), "ebr%d-%s-%s-%d-diag", (int)getpid(), v->name, rt->name, round);
	remember_id(id);
	snprintf(log, sizeof(log), "%s/%s.%s.diag.log", tmpdir, rt->name, v->name);
	fd = open(log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	run_argv(rt, which, v->bundle, id, argv);
	st = run_cmd(rt, argv, fd);
	if (st == 0) {
		snprintf(v->fail_msg[which], sizeof(v->fail_msg[which]),
			 "first failure at round %d; the same command run again at once succeeded", round);
	} else {
		char msg[256] = "", d[64];
		ssize_t n = fd >= 0 ? pread(fd, msg, sizeof(msg) - 1, 0) : 0;
		msg[n > 0 ? n : 0] = 0;
		msg[strcspn(msg, "\n")] = 0;
		peer_describe_status(st, d, sizeof(d));
		snprintf(v->fail_msg[which], sizeof(v->fail_msg[which]),
			 "first failure at round %d; run again: %s: %s", round, d, msg);
		peer_delete(rt, id);
	}
	if (fd >= 0)
		close(fd);
}

/* The floor: what a sandbox costs without any runtime around it. This process clones the
 * container's namespaces, the child binds the rootfs, pivot_roots into it and execs the static
 * /bin/true; no CLI exec, config, state, cgroups or /dev, /proc, /sys mounts. */
static char floor_stack[64 * 1024] __attribute__((aligned(16)));

static int floor_child(void *arg)
{
	char *argv[] = { "/bin/true", NULL }, *envp[] = { NULL };

	(void)arg;
	/* private first: the new mount namespace must not propagate the bind or the unmount back */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    chdir(rootfs) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0)
		_exit(125);
	execve(argv[0], argv, envp);
	_exit(127);
}

static int floor_run(const struct variant *v)
{
	int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP |
		    (v->netns ? CLONE_NEWNET : 0) | SIGCHLD;
	pid_t pid = clone(floor_child, floor_stack + sizeof(floor_stack), flags, NULL);

	return pid < 0 ? -errno : peer_wait(pid);
}

static void bench_variant(struct variant *v, int runs)
{
	for (int r = 0; r < runs; r++) {
		for (int k = 0; k <= N_RT; k++) {
			int slot = (r + k) % (N_RT + 1);   /* rotate who goes first */
			if (slot == N_RT) {
				double t0 = bench_now_us();
				int st = floor_run(v);
				double t = bench_now_us() - t0;
				if (st == 0)
					bench_add(&v->floor, t);
				else
					v->floor_fails++;
				continue;
			}
			enum rt which = (enum rt)slot;
			struct peer_rt *rt = &rts[which];
			char id[64], *argv[16];

			if (!rt->path[0])
				continue;
			snprintf(id, sizeof(id), "ebr%d-%s-%s-%d", (int)getpid(), v->name, rt->name,
				 r);
			remember_id(id);
			run_argv(rt, which, v->bundle, id, argv);
			double t0 = bench_now_us();
			int st = run_cmd(rt, argv, -1);
			double t = bench_now_us() - t0;
			if (st == 0) {
				bench_add(&v->s[which], t);
			} else {
				if (v->fails[which] < MAX_FAIL_SHOWN)
					v->fail_status[which][v->fails[which]] = st;
				if (!v->fails[which]++)
					diagnose(v, which, r);
				peer_delete(rt, id);
			}
		}
	}
}

static void report_variant(const struct variant *v, int runs)
{
	char name[96];
	const struct bench_samples *e = &v->s[RT_EMBER];

	printf("# %s: /bin/true, read-only busybox rootfs, %s network namespace\n", v->name,
	       v->netns ? "with a" : "without a");
	for (int i = RT_CRUN; i < N_RT; i++) {
		if (!v->s[i].n)
			continue;
		snprintf(name, sizeof(name), "run %s: %s run", v->name, rts[i].name);
		bench_report(name, &v->s[i], "us");
	}
	for (int i = RT_CRUN; i < N_RT; i++) {
		if (!v->s[i].n || !e->n)
			continue;
		snprintf(name, sizeof(name), "run %s: ember run", v->name);
		bench_report_vs(name, e, "us", rts[i].name, &v->s[i]);
	}
	if (!e->n || (!v->s[RT_CRUN].n && !v->s[RT_RUNC].n)) {
		snprintf(name, sizeof(name), "run %s: ember run", v->name);
		bench_report(name, e, "us");
	}
	if (v->floor.n) {
		snprintf(name, sizeof(name), "run %s: floor (clone+pivot_root+exec)", v->name);
		bench_report(name, &v->floor, "us");
		if (e->n)
			printf("# %s: ember run is %.1fx the floor (%.1f ms above it)\n", v->name,
			       bench_median(e) / bench_median(&v->floor),
			       (bench_median(e) - bench_median(&v->floor)) / 1000);
	}
	printf("# %s failures:", v->name);
	for (int i = 0; i < N_RT; i++) {
		if (!rts[i].path[0]) {
			printf("  %s: not installed", rts[i].name);
			continue;
		}
		printf("  %s %u/%d", rts[i].name, v->fails[i], runs);
		for (unsigned f = 0; f < v->fails[i] && f < MAX_FAIL_SHOWN; f++) {
			char d[64];
			peer_describe_status(v->fail_status[i][f], d, sizeof(d));
			printf("%s%s", f ? ", " : " (", d);
		}
		if (v->fails[i])
			printf("%s)", v->fails[i] > MAX_FAIL_SHOWN ? ", ..." : "");
	}
	printf("  floor %u/%d\n", v->floor_fails, runs);
	for (int i = 0; i < N_RT; i++)
		if (v->fail_msg[i][0])
			printf("# %s %s: %s\n", v->name, rts[i].name, v->fail_msg[i]);
	if (e->n && v->s[RT_CRUN].n) {
		double ratio = bench_median(&v->s[RT_CRUN]) / bench_median(e);
		printf("# %s goal (ember >= 10x faster than crun, median): %s (%.1fx)\n", v->name,
		       ratio >= 10 ? "met" : "NOT met", ratio);
	}
}

static void remove_tree(const char *path)
{
	struct em_err err = { 0 };

	if (em_rm_rf_at(AT_FDCWD, path, &err) < 0)
		fprintf(stderr, "bench-run: remove %s: %s\n", path, err.msg);
}

static unsigned remove_ember_parent(void)
{
	struct em_cg_root *root;
	struct em_err err = { 0 };
	int left;

	if (em_cg_root_open(&root, EMBER_CG_PARENT, NULL, &err) < 0) {
		fprintf(stderr, "bench-run: open cgroup parent %s: %s\n", EMBER_CG_PARENT, err.msg);
		return 0;
	}
	/* what ember left below its parent (a run that did not destroy its cgroup) */
	left = em_cg_gc(root, &err);
	if (left < 0)
		fprintf(stderr, "bench-run: gc %s: %s\n", EMBER_CG_PARENT, err.msg);
	if (em_cg_root_remove(root, &err) < 0)
		fprintf(stderr, "bench-run: remove cgroup parent %s: %s\n", EMBER_CG_PARENT, err.msg);
	em_cg_root_close(root);
	return left > 0 ? (unsigned)left : 0;
}

int main(void)
{
	struct variant vars[] = { { .name = "netns", .netns = true },
				  { .name = "no-netns", .netns = false } };
	char self[PATH_MAX];
	const char *env = getenv("EMBER_BENCH_RUNS");
	int runs = env ? atoi(env) : 50;
	ssize_t n;
	int rc = 0;

	if (geteuid() != 0)
		die("%s", "needs root (namespaces, cgroups, mounts)");
	if (runs < 1)
		die("EMBER_BENCH_RUNS=%s: want a positive number", env);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		die("%s", "open /dev/null");
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* build/bench/bench-run -> build/ember, build/rootfs */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		die("%s", "readlink /proc/self/exe");
	self[n] = 0;
	*strrchr(self, '/') = 0;
	*strrchr(self, '/') = 0;
	snprintf(rts[RT_EMBER].path, PATH_MAX, "%s/ember", self);
	if (access(rts[RT_EMBER].path, X_OK) < 0)
		die("%s: not built (make)", rts[RT_EMBER].path);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", self);
	char probe[PATH_MAX + 16];
	snprintf(probe, sizeof(probe), "%s/bin/true", rootfs);
	if (access(probe, X_OK) < 0)
		die("%s: not built (make rootfs)", probe);
	for (int i = 0; i < N_RT; i++) {
		char root[PATH_MAX];

		snprintf(root, sizeof(root), "/run/ember-bench-%d-%s", (int)getpid(), rts[i].name);
		if (i == RT_EMBER)
			snprintf(rts[i].root, PATH_MAX, "%s", root);
		else
			peer_init(&rts[i], rts[i].name, root);
	}
	snprintf(rts[RT_EMBER].config, sizeof(rts[RT_EMBER].config),
		 "ember --cgroup-parent " EMBER_CG_PARENT " run");
	crun_config(&rts[RT_CRUN]);

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ember-bench-run-XXXXXX");
	if (!mkdtemp(tmpdir))
		die("%s", "mkdtemp /tmp/ember-bench-run-XXXXXX");
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		snprintf(vars[i].bundle, PATH_MAX, "%s/%s", tmpdir, vars[i].name);
		make_bundle(&vars[i]);
	}

	bench_machine_note();
	printf("# %d interleaved rounds per variant (EMBER_BENCH_RUNS), order rotating; wall time of "
	       "fork+exec of the CLI to its exit\n", runs);
	for (int i = 0; i < N_RT; i++) {
		if (!rts[i].path[0]) {
			printf("# %s: not installed, skipped\n", rts[i].name);
			continue;
		}
		warm_up((enum rt)i, vars[0].bundle);
		printf("# %s: %s (%s)%s\n", rts[i].name, rts[i].config, rts[i].path,
		       usable[i] ? "" : " — warm-up failed, timed runs kept to count failures");
	}

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		bench_variant(&vars[i], runs);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		report_variant(&vars[i], runs);
		if (vars[i].fails[RT_EMBER])
			rc = 1;
	}

	/* cleanup, and say what had to be cleaned: a runtime's `run` should leave nothing */
	unsigned left[N_RT] = { 0 }, ember_cg, peer_cg;
	for (int i = 0; i < N_RT; i++)
		if (rts[i].path[0])
			left[i] = peer_cleanup_root(&rts[i], "ebr");
	ember_cg = remove_ember_parent();
	peer_cg = peer_sweep_cgroups(ids, n_ids);
	for (int i = 0; i < N_RT; i++)
		peer_fini(&rts[i]);
	remove_tree(tmpdir);
	printf("# leftovers cleaned: containers ember %u, crun %u, runc %u; ember cgroup dirs %u; "
	       "peer cgroup dirs %u\n", left[RT_EMBER], left[RT_CRUN], left[RT_RUNC], ember_cg,
	       peer_cg);
	if (left[RT_EMBER] || ember_cg)
		rc = 1;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		for (int r = 0; r < N_RT; r++)
			bench_free(&vars[i].s[r]);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		bench_free(&vars[i].floor);
	for (size_t i = 0; i < n_ids; i++)
		free(ids[i]);
	free(ids);
	return rc;
}
