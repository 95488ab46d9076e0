/* runtime/cli/inspect.c — list, ps, events, spec, features: commands that read and print. */
#include "runtime/cli/cli.h"
#include "cgroups/cgroups.h"
#include "common/cleanup.h"
#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_format(const char *s, bool *json, struct em_err *err)
{
	if (!strcmp(s, "json"))
		*json = true;
	else if (!strcmp(s, "table"))
		*json = false;
	else
		return em_err_msg(err, EINVAL, "--format: expected table or json, got \"%s\"", s);
	return 0;
}

int cmd_list(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	static const struct option opts[] = { { "format", required_argument, NULL, 'f' },
					      { "quiet", no_argument, NULL, 'q' }, { 0 } };
	bool json = false, quiet = false;
	struct em_list_entry *v = NULL;
	size_t n = 0;
	int c, ret;

	while ((c = getopt_long(argc, argv, "f:q", opts, NULL)) != -1) {
		if (c == 'f') {
			ret = parse_format(optarg, &json, err);
			if (ret < 0)
				return ret;
		} else if (c == 'q') {
			quiet = true;
		} else {
			return em_err_msg(err, EINVAL, "invalid option (see --help)");
		}
	}
	ret = cli_positional(argc, argv, optind, 0, "no arguments", err);
	if (ret == 0)
		ret = em_container_list(&cli->rt, &v, &n, err);
	if (ret < 0)
		return ret;
	if (json) {
		json_t *a = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(
				a, json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "ociVersion", "1.2.0",
					     "pid", (json_int_t)(v[i].status == EM_ST_STOPPED ? 0 : v[i].st.pid),
					     "status", em_status_name(v[i].status), "bundle", v[i].st.bundle,
					     "rootfs", v[i].st.rootfs, "created", v[i].st.created, "id",
					     v[i].st.id));
		char *s = json_dumps(a, JSON_PRESERVE_ORDER);
		printf("%s\n", s ? s : "[]");
		free(s);
		json_decref(a);
	} else if (quiet) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", v[i].st.id);
	} else {
		printf("%-20s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
		       "OWNER");
		for (size_t i = 0; i < n; i++)
			printf("%-20s %-8d %-10s %-40s %-32s %u\n", v[i].st.id,
			       v[i].status == EM_ST_STOPPED ? 0 : v[i].st.pid,
			       em_status_name(v[i].status), v[i].st.bundle, v[i].st.created,
			       v[i].st.owner);
	}
	free(v);
	return 0;
}

int cmd_ps(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	static const struct option opts[] = { { "format", required_argument, NULL, 'f' }, { 0 } };
	bool json = false;
	pid_t *pids = NULL;
	size_t n = 0;
	int c, ret;

	while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
		if (c != 'f')
			return em_err_msg(err, EINVAL, "invalid option (see --help)");
		ret = parse_format(optarg, &json, err);
		if (ret < 0)
			return ret;
	}
	ret = cli_positional(argc, argv, optind, 1, "the container id", err);
	if (ret == 0)
		ret = em_container_pids(&cli->rt, argv[optind], &pids, &n, err);
	if (ret < 0)
		return ret;
	if (json) {
		printf("[");
		for (size_t i = 0; i < n; i++)
			printf("%s%d", i ? "," : "", pids[i]);
		printf("]\n");
	} else {
		printf("%-8s %s\n", "PID", "CMD");
		for (size_t i = 0; i < n; i++) {
			char path[64], *cmd = NULL;
			size_t len = 0;
			struct em_err e2;

			snprintf(path, sizeof(path), "/proc/%d/cmdline", pids[i]);
			if (em_read_file_at(AT_FDCWD, path, &cmd, &len, &e2) == 0)
				for (size_t k = 0; k + 1 < len; k++)
					if (!cmd[k])
						cmd[k] = ' ';
			printf("%-8d %s\n", pids[i], cmd ? cmd : "?");
			free(cmd);
		}
	}
	free(pids);
	return 0;
}

static json_t *stats_json(const char *id, const struct em_cg_stats *s)
{
	return json_pack(
		"{s:s, s:s, s:{s:{s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}}, s:{s:{s:I, s:I, s:I}, s:I, s:I}, s:{s:I, s:I}}}",
		"type", "stats", "id", id, "data", "cpu", "usage", "total",
		(json_int_t)s->cpu_usage_ns, "user", (json_int_t)s->cpu_user_ns, "kernel",
		(json_int_t)s->cpu_system_ns, "throttling", "periods", (json_int_t)s->cpu_nr_periods,
		"throttledPeriods", (json_int_t)s->cpu_nr_throttled, "throttledTime",
		(json_int_t)s->cpu_throttled_ns, "memory", "usage", "usage",
		(json_int_t)s->memory_current, "max", (json_int_t)s->memory_peak, "limit",
		(json_int_t)s->memory_max, "oomEvents", (json_int_t)s->oom_events, "oomKillEvents",
		(json_int_t)s->oom_kill_events, "pids", "current", (json_int_t)s->pids_current,
		"limit", (json_int_t)s->pids_max);
}

int cmd_events(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	static const struct option opts[] = { { "stats", no_argument, NULL, 's' },
					      { "interval", required_argument, NULL, 'i' }, { 0 } };
	bool once = false;
	long interval = 5;
	int c, ret;

	while ((c = getopt_long(argc, argv, "si:", opts, NULL)) != -1) {
		if (c == 's') {
			once = true;
		} else if (c == 'i') {
			char *end;
			interval = strtol(optarg, &end, 10);
			if ((*end && strcmp(end, "s")) || interval <= 0)
				return em_err_msg(err, EINVAL, "--interval: expected seconds, got \"%s\"",
						  optarg);
		} else {
			return em_err_msg(err, EINVAL, "invalid option (see --help)");
		}
	}
	ret = cli_positional(argc, argv, optind, 1, "the container id", err);
	if (ret < 0)
		return ret;
	for (;;) {
		struct em_cg_stats s = { 0 };

		ret = em_container_stats(&cli->rt, argv[optind], &s, err);
		if (ret < 0)
			return ret;
		json_t *j = stats_json(argv[optind], &s);
		char *text = json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT);
		printf("%s\n", text ? text : "{}");
		fflush(stdout);
		free(text);
		json_decref(j);
		if (once)
			return 0;
		sleep((unsigned)interval);
	}
}

int cmd_spec(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	static const struct option opts[] = { { "bundle", required_argument, NULL, 'b' },
					      { "rootless", no_argument, NULL, 'r' }, { 0 } };
	const char *bundle = ".";
	bool rootless = false;
	char path[PATH_MAX];
	struct stat st;
	int c, ret;

	(void)cli;
	while ((c = getopt_long(argc, argv, "b:", opts, NULL)) != -1) {
		if (c == 'b')
			bundle = optarg;
		else if (c == 'r')
			rootless = true;
		else
			return em_err_msg(err, EINVAL, "invalid option (see --help)");
	}
	ret = cli_positional(argc, argv, optind, 0, "no arguments", err);
	if (ret < 0)
		return ret;
	if (em_path_join(path, sizeof(path), bundle, "config.json") < 0)
		return em_err_msg(err, ENAMETOOLONG, "--bundle: too long");
	if (stat(path, &st) == 0)
		return em_err_msg(err, EEXIST, "%s exists: remove it first", path);
	cleanup_free char *json = em_oci_default_spec(rootless, getuid(), getgid());
	if (!json)
		return em_err_msg(err, ENOMEM, "build the default spec");
	size_t len = strlen(json);
	json[len] = '\0';
	ret = em_create_file_at(AT_FDCWD, path, 0644, json, len, err);
	if (ret == 0 && write(STDOUT_FILENO, "", 0) < 0)
		ret = 0;
	return ret;
}

int cmd_features(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	json_t *ns = json_array(), *caps = json_array(), *hooks = json_array(), *mopts = json_array();
	static const char *const mount_options[] = {
		"ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "sync", "async",
		"dirsync", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime",
		"relatime", "norelatime", "strictatime", "nostrictatime", "bind", "rbind",
		"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable",
		"runbindable", "tmpcopyup", "remount", "silent", "loud",
	};
	static const char *const actions[] = { "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
					       "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
					       "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP" };
	static const char *const ops[] = { "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
					   "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
					   "SCMP_CMP_NE" };
	json_t *jact = json_array(), *jops = json_array();

	(void)cli;
	if (cli_positional(argc, argv, 1, 0, "no arguments", err) < 0)
		return -err->code;
	for (int t = 0; t < EM_NS_COUNT; t++)
		json_array_append_new(ns, json_string(em_ns_type_name((enum em_ns_type)t)));
	for (int cap = 0; cap <= em_cap_last(); cap++)
		json_array_append_new(caps, json_string(em_cap_name(cap)));
	for (int k = 0; k < EM_HOOK_NKINDS; k++)
		json_array_append_new(hooks, json_string(em_hook_kind_name((enum em_hook_kind)k)));
	for (size_t i = 0; i < sizeof(mount_options) / sizeof(mount_options[0]); i++)
		json_array_append_new(mopts, json_string(mount_options[i]));
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		json_array_append_new(jact, json_string(actions[i]));
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		json_array_append_new(jops, json_string(ops[i]));
	json_t *j = json_pack(
		"{s:s, s:s, s:o, s:o, s:{s:o, s:o, s:{s:b, s:b, s:b}, s:{s:b, s:o, s:o, s:[s]}, s:{s:b}, s:{s:b}}, s:{s:s}}",
		"ociVersionMin", "1.0.0", "ociVersionMax", "1.2.0", "hooks", hooks, "mountOptions",
		mopts, "linux", "namespaces", ns, "capabilities", caps, "cgroup", "v1", 1, "v2", 1,
		"systemd", 0, "seccomp", "enabled", 1, "actions", jact, "operators", jops, "archs",
		"SCMP_ARCH_X86_64", "apparmor", "enabled", 0, "selinux", "enabled", 0, "annotations",
		"org.opencontainers.runtime-spec.features", "ember");
	char *s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_INDENT(2));
	json_decref(j);
	if (!s)
		return em_err_msg(err, ENOMEM, "encode features");
	printf("%s\n", s);
	free(s);
	return 0;
}
