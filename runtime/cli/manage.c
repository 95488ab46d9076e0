/* runtime/cli/manage.c — pause, resume, update: commands that change a running container. */
#include "runtime/cli/cli.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "netns/netns.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int id_only(int argc, char **argv, struct em_err *err)
{
	static const struct option none[] = { { 0 } };

	if (getopt_long(argc, argv, "", none, NULL) != -1)
		return em_err_msg(err, EINVAL, "invalid option (see --help)");
	return cli_positional(argc, argv, optind, 1, "the container id", err);
}

int cmd_pause(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	int ret = id_only(argc, argv, err);

	return ret < 0 ? ret : em_container_pause(&cli->rt, argv[optind], err);
}

int cmd_resume(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	int ret = id_only(argc, argv, err);

	return ret < 0 ? ret : em_container_resume(&cli->rt, argv[optind], err);
}

static int parse_i64(const char *opt, const char *s, int64_t *out, struct em_err *err)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	if (errno || *end || end == s)
		return em_err_msg(err, EINVAL, "--%s: expected an integer, got \"%s\"", opt, s);
	return 0;
}

/* The resources to apply: --resources FILE (an OCI linux.resources object, "-" for stdin) and
 * runc's single-value flags, which win over the file. Parsed by the OCI parser, wrapped in a
 * minimal config, so update validates exactly as create does. */
int cmd_update(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	static const struct option opts[] = {
		{ "resources", required_argument, NULL, 'r' },
		{ "memory", required_argument, NULL, 'm' },
		{ "memory-reservation", required_argument, NULL, 'R' },
		{ "memory-swap", required_argument, NULL, 'w' },
		{ "cpu-shares", required_argument, NULL, 's' },
		{ "cpu-quota", required_argument, NULL, 'q' },
		{ "cpu-period", required_argument, NULL, 'p' },
		{ "cpuset-cpus", required_argument, NULL, 'c' },
		{ "cpuset-mems", required_argument, NULL, 'M' },
		{ "pids-limit", required_argument, NULL, 'P' },
		{ 0 },
	};
	cleanup_free char *file = NULL;
	json_t *flags = json_object();
	struct em_oci_config cfg;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, "r:", opts, NULL)) != -1 && ret == 0) {
		int64_t v = 0;
		const struct option *o = NULL;

		for (const struct option *k = opts; k->name; k++)
			if (k->val == c)
				o = k;
		if (!o) {
			ret = em_err_msg(err, EINVAL, "invalid option (see --help)");
			break;
		}
		if (c == 'r') {
			size_t len;

			ret = em_read_file_at(AT_FDCWD, !strcmp(optarg, "-") ? "/dev/stdin" : optarg,
					      &file, &len, err);
			continue;
		}
		if (c == 'c' || c == 'M') {
			json_object_set_new(flags, o->name, json_string(optarg));
			continue;
		}
		ret = parse_i64(o->name, optarg, &v, err);
		if (ret == 0)
			json_object_set_new(flags, o->name, json_integer(v));
	}
	if (ret == 0)
		ret = cli_positional(argc, argv, optind, 1, "the container id", err);
	if (ret < 0) {
		json_decref(flags);
		return ret;
	}
	json_error_t jerr;
	json_t *res = file ? json_loads(file, 0, &jerr) : json_object();
	if (!res || !json_is_object(res)) {
		json_decref(flags);
		json_decref(res);
		return em_err_msg(err, EINVAL, "--resources: not a JSON object%s%s",
				  res ? "" : ": ", res ? "" : jerr.text);
	}
	json_t *mem = json_object_get(res, "memory"), *cpu = json_object_get(res, "cpu"),
	       *pids = json_object_get(res, "pids");
	if (!mem)
		json_object_set_new(res, "memory", mem = json_object());
	if (!cpu)
		json_object_set_new(res, "cpu", cpu = json_object());
	static const struct { const char *flag, *section, *field; } map[] = {
		{ "memory", "memory", "limit" },      { "memory-reservation", "memory", "reservation" },
		{ "memory-swap", "memory", "swap" },  { "cpu-shares", "cpu", "shares" },
		{ "cpu-quota", "cpu", "quota" },      { "cpu-period", "cpu", "period" },
		{ "cpuset-cpus", "cpu", "cpus" },     { "cpuset-mems", "cpu", "mems" },
		{ "pids-limit", "pids", "limit" },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		json_t *v = json_object_get(flags, map[i].flag);

		if (!v)
			continue;
		if (!strcmp(map[i].section, "pids") && !pids)
			json_object_set_new(res, "pids", pids = json_object());
		json_object_set(json_object_get(res, map[i].section), map[i].field, v);
	}
	json_decref(flags);
	json_t *wrap = json_pack("{s:s, s:{s:s}, s:{s:o}}", "ociVersion", "1.2.0", "root", "path",
				 "/", "linux", "resources", res);
	char *text = json_dumps(wrap, JSON_COMPACT);
	json_decref(wrap);
	if (!text)
		return em_err_msg(err, ENOMEM, "encode resources");
	ret = em_oci_parse(text, strlen(text), &cfg, err);
	free(text);
	if (ret < 0)
		return em_err_prefix(err, "update");
	ret = em_container_update(&cli->rt, argv[optind], &cfg.linux_.resources, err);
	em_oci_config_free(&cfg);
	return ret;
}

/* `ember netns-pool fill N | status | destroy`: the ready network namespaces create/run take
 * instead of creating one (under <root>/netns-pool; see runtime/container.c). */
int cmd_netns_pool(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	char dir[4096];
	int ret;

	if (argc < 2)
		return em_err_msg(err, EINVAL, "missing the action: fill N, status or destroy");
	em_path_join(dir, sizeof(dir), cli->rt.root, "netns-pool");
	if (!strcmp(argv[1], "fill")) {
		char *end;
		long n = argc == 3 ? strtol(argv[2], &end, 10) : -1;

		if (argc != 3 || *end || n < 0 || n > 4096)
			return em_err_msg(err, EINVAL, "fill: expected a count 0..4096");
		ret = em_netns_pool_dir_init(dir, err);
		if (ret == 0)
			ret = em_netns_pool_dir_fill(dir, (unsigned)n, err);
		if (ret < 0)
			return ret;
		printf("created %d, ready %d\n", ret, em_netns_pool_dir_count(dir, err));
		return 0;
	}
	if (!strcmp(argv[1], "status") && argc == 2) {
		ret = em_netns_pool_dir_count(dir, err);
		if (ret == -ENOENT)
			ret = 0;
		if (ret < 0)
			return ret;
		printf("ready %d\n", ret);
		return 0;
	}
	if (!strcmp(argv[1], "destroy") && argc == 2)
		return em_netns_pool_dir_destroy(dir, err);
	return em_err_msg(err, EINVAL, "unknown action \"%s\" (fill N, status, destroy)", argv[1]);
}
