/* runtime/cli/lifecycle.c — create, start, run, state, kill, delete: the commands containerd and
 * podman drive, with runc's options. */
#include "runtime/cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_BUNDLE = 'b', OPT_PID_FILE = 'p', OPT_CONSOLE = 'c', OPT_PRESERVE = 'P',
       OPT_DETACH = 'd', OPT_KEEP = 'k', OPT_NO_PIVOT = 1000, OPT_NO_NEW_KEYRING, OPT_BILL };

static const struct option create_opts[] = {
	{ "bundle", required_argument, NULL, OPT_BUNDLE },
	{ "pid-file", required_argument, NULL, OPT_PID_FILE },
	{ "console-socket", required_argument, NULL, OPT_CONSOLE },
	{ "preserve-fds", required_argument, NULL, OPT_PRESERVE },
	{ "detach", no_argument, NULL, OPT_DETACH },
	{ "keep", no_argument, NULL, OPT_KEEP },
	{ "bill", required_argument, NULL, OPT_BILL },
	{ "no-pivot", no_argument, NULL, OPT_NO_PIVOT },
	{ "no-new-keyring", no_argument, NULL, OPT_NO_NEW_KEYRING },
	{ 0 },
};

static int parse_create(int argc, char **argv, struct em_create_opts *o, bool is_run,
			struct em_err *err)
{
	int c;

	while ((c = getopt_long(argc, argv, is_run ? "b:dk" : "b:", create_opts, NULL)) != -1) {
		switch (c) {
		case OPT_BUNDLE:
			o->bundle = optarg;
			break;
		case OPT_PID_FILE:
			o->pid_file = optarg;
			break;
		case OPT_CONSOLE:
			o->console_socket = optarg;
			break;
		case OPT_PRESERVE: {
			char *end;
			long n = strtol(optarg, &end, 10);

			if (*end || n < 0 || n > 1024)
				return em_err_msg(err, EINVAL, "--preserve-fds: expected 0..1024, got \"%s\"",
						  optarg);
			o->preserve_fds = (int)n;
			break;
		}
		case OPT_DETACH:
		case OPT_KEEP:
			if (!is_run)
				return em_err_msg(err, EINVAL, "unknown option for create");
			if (c == OPT_DETACH)
				o->detach = true;
			else
				o->keep = true;
			break;
		case OPT_NO_PIVOT:
			return em_err_msg(err, EOPNOTSUPP,
					  "--no-pivot is not supported: ember always uses pivot_root");
		case OPT_NO_NEW_KEYRING:
			break; /* ember never creates a session keyring */
		case OPT_BILL:
			if (!is_run)
				return em_err_msg(err, EINVAL, "--bill is an option of run");
			o->bill_path = optarg;
			break;
		default:
			return em_err_msg(err, EINVAL, "invalid option (see --help)");
		}
	}
	return cli_positional(argc, argv, optind, 1, "the container id", err);
}

int cmd_create(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	struct em_create_opts o = { 0 };
	int ret = parse_create(argc, argv, &o, false, err);

	if (ret < 0)
		return ret;
	return em_container_create(&cli->rt, argv[optind], &o, err);
}

int cmd_run(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	struct em_create_opts o = { 0 };
	int code = 0, ret = parse_create(argc, argv, &o, true, err);

	if (ret < 0)
		return ret;
	ret = em_container_run(&cli->rt, argv[optind], &o, &code, err);
	if (ret < 0)
		return ret;
	return CLI_EXIT_STATUS(code);
}

static int one_id(int argc, char **argv, struct em_err *err)
{
	static const struct option none[] = { { 0 } };

	if (getopt_long(argc, argv, "", none, NULL) != -1)
		return em_err_msg(err, EINVAL, "invalid option (see --help)");
	return cli_positional(argc, argv, optind, 1, "the container id", err);
}

int cmd_start(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	int ret = one_id(argc, argv, err);

	return ret < 0 ? ret : em_container_start(&cli->rt, argv[optind], err);
}

int cmd_state(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	char *json = NULL;
	int ret = one_id(argc, argv, err);

	if (ret == 0)
		ret = em_container_state(&cli->rt, argv[optind], &json, err);
	if (ret == 0)
		printf("%s\n", json);
	free(json);
	return ret;
}

int cmd_kill(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	static const struct option opts[] = { { "all", no_argument, NULL, 'a' }, { 0 } };
	bool all = false;
	int sig = SIGTERM, c;

	while ((c = getopt_long(argc, argv, "a", opts, NULL)) != -1) {
		if (c != 'a')
			return em_err_msg(err, EINVAL, "invalid option (see --help)");
		all = true;
	}
	if (argc - optind < 1)
		return em_err_msg(err, EINVAL, "missing the container id");
	if (argc - optind > 2)
		return em_err_msg(err, EINVAL, "unexpected argument \"%s\"", argv[optind + 2]);
	if (argc - optind == 2) {
		int ret = cli_parse_signal(argv[optind + 1], &sig, err);

		if (ret < 0)
			return ret;
	}
	return em_container_kill(&cli->rt, argv[optind], sig, all, err);
}

int cmd_delete(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	static const struct option opts[] = { { "force", no_argument, NULL, 'f' }, { 0 } };
	bool force = false;
	int c, ret;

	while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
		if (c != 'f')
			return em_err_msg(err, EINVAL, "invalid option (see --help)");
		force = true;
	}
	ret = cli_positional(argc, argv, optind, 1, "the container id", err);
	return ret < 0 ? ret : em_container_delete(&cli->rt, argv[optind], force, err);
}
