/* runtime/cli/main.c — `ember [global options] <command> ...`: global options (runc's), then
 * dispatch to a command. */
#include "runtime/cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EMBER_VERSION "0.1.0"

static const struct cli_cmd commands[] = {
	{ "create", "[--bundle DIR] [--pid-file FILE] [--console-socket SOCK] [--preserve-fds N] <id>",
	  "create a container (its process waits for start)", cmd_create },
	{ "start", "<id>", "start the process of a created container", cmd_start },
	{ "run", "[--bundle DIR] [--detach] [--keep] [--bill FILE|-] [--pid-file FILE] [--console-socket SOCK] [--preserve-fds N] <id>",
	  "create and start a container; in the foreground, exit with its status", cmd_run },
	{ "state", "<id>", "print the OCI state of a container", cmd_state },
	{ "kill", "[--all] <id> [SIGNAL]", "send a signal (default SIGTERM) to the container's process",
	  cmd_kill },
	{ "delete", "[--force] <id>", "delete a stopped (or, with --force, any) container", cmd_delete },
	{ "list", "[--format table|json] [--quiet]", "list containers", cmd_list },
	{ "ps", "[--format table|json] <id>", "list the processes of a container", cmd_ps },
	{ "exec", "[--process FILE | [options] <id> <command> [args...]]",
	  "run a process in a running container", cmd_exec },
	{ "pause", "<id>", "freeze every process of a container", cmd_pause },
	{ "resume", "<id>", "thaw a paused container", cmd_resume },
	{ "update", "[--resources FILE|-] [--memory B] [--cpu-quota N] ... <id>",
	  "change a container's resource limits", cmd_update },
	{ "events", "[--stats] [--interval S] <id>", "print resource usage of a container", cmd_events },
	{ "spec", "[--bundle DIR] [--rootless]", "write a default config.json", cmd_spec },
	{ "features", "", "print the OCI features this runtime supports", cmd_features },
	{ "netns-pool", "fill N | status | destroy",
	  "keep ready network namespaces for create/run (ember's own)", cmd_netns_pool },
	{ "serve", "[--socket PATH] [--listen 127.0.0.1:PORT] [--run-dir D] [--data-dir D] "
		   "[--cgroup-parent P] [--capacity-mb N] [--idle-ttl-ms N] [--pool-size N] "
		   "[--max-payload BYTES] [--no-billing]",
	  "run the function host and its HTTP API until SIGTERM", cmd_serve },
	{ "fn", "deploy|invoke|ls|rm|logs|invocations ... (`ember fn` lists them)",
	  "deploy and invoke functions on a running `ember serve`", cmd_fn },
	{ "snapshot", "create NAME | restore NAME | inspect IMAGE | verify [--exe FILE] "
		      "[--this-kernel] IMAGE",
	  "dump or restore a function's template (through `ember serve`); print or fully check "
	  "an image", cmd_snapshot },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ember [--root DIR] [--log FILE] [--log-format text|json] [--debug]\n"
		   "             [--cgroup-parent NAME] <command> ...\n\n"
		   "ember is an OCI runtime (runc-compatible) and a serverless function host.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n`ember <command> --help` shows a command's options.\n");
}

void cli_error(struct cli *cli, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cli->log_to_file)
		em_error(&cli->log, "%s", msg);
	fprintf(stderr, "%s: %s\n", cli->prog, msg);
}

int cli_positional(int argc, char **argv, int optind, int n, const char *what, struct em_err *err)
{
	(void)argv;
	if (argc - optind < n)
		return em_err_msg(err, EINVAL, "missing %s", what);
	if (argc - optind > n)
		return em_err_msg(err, EINVAL, "unexpected argument \"%s\" (expected %s)",
				  argv[optind + n], what);
	return 0;
}

int cli_parse_signal(const char *s, int *sig, struct em_err *err)
{
	char *end;
	long n = strtol(s, &end, 10);

	if (*s && !*end) {
		if (n <= 0 || n > SIGRTMAX)
			return em_err_msg(err, EINVAL, "invalid signal %s", s);
		*sig = (int)n;
		return 0;
	}
	const char *bare = strncasecmp(s, "SIG", 3) ? s : s + 3;
	for (int i = 1; i < 32; i++) {
		const char *name = sigabbrev_np(i);

		if (name && !strcasecmp(name, bare)) {
			*sig = i;
			return 0;
		}
	}
	return em_err_msg(err, EINVAL, "unknown signal \"%s\"", s);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "log", required_argument, NULL, 'l' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'd' },
		{ "systemd-cgroup", no_argument, NULL, 's' },
		{ "cgroup-parent", required_argument, NULL, 'g' },
		{ "rootless", required_argument, NULL, 'R' },
		{ "criu", required_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cli cli = { .prog = "ember" };
	enum em_log_format fmt = EM_LOG_TEXT;
	enum em_log_level level = EM_LOG_WARN;
	const char *log_path = NULL;
	bool systemd = false;
	struct em_err err = { 0 };
	int c, ret;

	cli.rt.root = "/run/ember";
	cli.rt.cgroup_parent = "ember";
	/* '+': stop at the command; its options are its own */
	while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			cli.rt.root = optarg;
			break;
		case 'l':
			log_path = optarg;
			break;
		case 'f':
			if (em_log_parse_format(optarg, &fmt) < 0) {
				fprintf(stderr, "ember: --log-format: expected text or json, got \"%s\"\n",
					optarg);
				return 1;
			}
			break;
		case 'd':
			level = EM_LOG_DEBUG;
			break;
		case 's':
			systemd = true;
			break;
		case 'g':
			cli.rt.cgroup_parent = optarg; /* ember's own: where its cgroups live */
			break;
		case 'R':
		case 'C':
			break; /* accepted for runc compatibility; ember needs neither */
		case 'v':
			printf("ember version %s\nspec: 1.2.0\n", EMBER_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (log_path) {
		if (em_log_open(&cli.log, log_path, level, fmt, &err) < 0) {
			fprintf(stderr, "ember: %s\n", err.msg);
			return 1;
		}
		cli.log_to_file = true;
	} else {
		em_log_init_fd(&cli.log, STDERR_FILENO, level, fmt);
	}
	cli.rt.log = &cli.log;
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	const char *name = argv[optind];
	const struct cli_cmd *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			cmd = &commands[i];
	if (!cmd) {
		cli_error(&cli, "unknown command \"%s\" (see ember --help)", name);
		return 1;
	}
	if (systemd) {
		cli_error(&cli, "--systemd-cgroup is not supported: ember manages cgroupfs directly");
		return 1;
	}
	argc -= optind;
	argv += optind;
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: ember %s %s\n\n%s\n", cmd->name, cmd->usage, cmd->summary);
		return 0;
	}
	optind = 1;
	ret = cmd->run(&cli, argc, argv, &err);
	em_runtime_close(&cli.rt);
	if (ret >= 1000)
		ret -= 1000; /* the container's exit status */
	else if (ret < 0) {
		cli_error(&cli, "%s", err.msg[0] ? err.msg : "failed");
		ret = 1;
	}
	em_log_close(&cli.log);
	return ret;
}
