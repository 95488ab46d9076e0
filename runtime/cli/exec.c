/* runtime/cli/exec.c — `ember exec`: runc's options; the command and its arguments follow the
 * container id and are never parsed as ours ("exec c1 sh -c ..."). */
#include "runtime/cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_user(const char *s, struct em_exec_opts *o, struct em_err *err)
{
	char *end;
	unsigned long uid = strtoul(s, &end, 10), gid = 0;

	if (end == s || (*end && *end != ':'))
		return em_err_msg(err, EINVAL, "--user: expected UID[:GID], got \"%s\"", s);
	if (*end == ':') {
		const char *g = end + 1;
		gid = strtoul(g, &end, 10);
		if (end == g || *end)
			return em_err_msg(err, EINVAL, "--user: expected UID[:GID], got \"%s\"", s);
	}
	o->has_user = true;
	o->uid = (uid_t)uid;
	o->gid = (gid_t)gid;
	return 0;
}

static int push(char ***v, size_t *n, char *s, struct em_err *err)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(char *));

	if (!nv)
		return em_err_set(err, ENOMEM, "exec options");
	nv[(*n)++] = s;
	*v = nv;
	return 0;
}

int cmd_exec(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	static const struct option opts[] = {
		{ "process", required_argument, NULL, 'p' },
		{ "tty", no_argument, NULL, 't' },
		{ "detach", no_argument, NULL, 'd' },
		{ "pid-file", required_argument, NULL, 'P' },
		{ "console-socket", required_argument, NULL, 'C' },
		{ "cwd", required_argument, NULL, 'w' },
		{ "env", required_argument, NULL, 'e' },
		{ "user", required_argument, NULL, 'u' },
		{ "additional-gids", required_argument, NULL, 'g' },
		{ "cap", required_argument, NULL, 'c' },
		{ "no-new-privs", no_argument, NULL, 'n' },
		{ "preserve-fds", required_argument, NULL, 'F' },
		{ 0 },
	};
	struct em_exec_opts o = { 0 };
	int c, code = 0, ret = 0;

	while (ret == 0 && (c = getopt_long(argc, argv, "+p:tdw:e:u:g:c:", opts, NULL)) != -1) {
		switch (c) {
		case 'p': o.process_file = optarg; break;
		case 't': o.tty = true; break;
		case 'd': o.detach = true; break;
		case 'P': o.pid_file = optarg; break;
		case 'C': o.console_socket = optarg; break;
		case 'w': o.cwd = optarg; break;
		case 'e': ret = push(&o.env, &o.n_env, optarg, err); break;
		case 'u': ret = parse_user(optarg, &o, err); break;
		case 'c': ret = push(&o.caps, &o.n_caps, optarg, err); break;
		case 'n': o.no_new_privs = true; break;
		case 'g': {
			gid_t *ng = realloc(o.additional_gids, (o.n_additional_gids + 1) * sizeof(gid_t));
			if (!ng) {
				ret = em_err_set(err, ENOMEM, "exec options");
				break;
			}
			o.additional_gids = ng;
			ng[o.n_additional_gids++] = (gid_t)strtoul(optarg, NULL, 10);
			break;
		}
		case 'F': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 0 || n > 1024)
				ret = em_err_msg(err, EINVAL, "--preserve-fds: expected 0..1024, got \"%s\"",
						 optarg);
			o.preserve_fds = (int)n;
			break;
		}
		default:
			ret = em_err_msg(err, EINVAL, "invalid option (see --help)");
		}
	}
	if (ret == 0 && optind >= argc)
		ret = em_err_msg(err, EINVAL, "missing the container id");
	if (ret == 0 && !o.process_file && optind + 1 >= argc)
		ret = em_err_msg(err, EINVAL, "missing the command to run (or --process FILE)");
	if (ret == 0 && o.process_file && optind + 1 < argc)
		ret = em_err_msg(err, EINVAL, "--process and a command line are exclusive");
	if (ret == 0) {
		o.args = argv + optind + 1;
		o.n_args = (size_t)(argc - optind - 1);
		ret = em_container_exec(&cli->rt, argv[optind], &o, &code, err);
	}
	free(o.env);
	free(o.caps);
	free(o.additional_gids);
	if (ret < 0)
		return ret;
	return o.detach ? 0 : CLI_EXIT_STATUS(code);
}
