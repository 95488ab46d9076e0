/* runtime/cli/cli.h — the ember command line: global options, the command table, helpers the
 * command files share. Commands parse their own options and call one library function; only
 * main() exits. */
#ifndef EMBER_CLI_H
#define EMBER_CLI_H

#include <stdbool.h>

#include "common/err.h"
#include "common/log.h"
#include "runtime/container.h"

struct cli {
	struct em_runtime rt;
	struct em_log log;       /* --log (default: stderr) */
	bool log_to_file;
	const char *prog;
};

struct cli_cmd {
	const char *name;
	const char *usage;       /* "[options] <container-id>" */
	const char *summary;
	int (*run)(struct cli *cli, int argc, char **argv, struct em_err *err);
};

/* Exit statuses: 0 ok; 1 failure (runc's); the container's own status for run/exec. */

/* Report an error the way runc does: on stderr, and as an error line in --log (containerd reads
 * the last one from the JSON log file). */
void cli_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Expect exactly `n` positional arguments after option parsing, naming them in the message. */
int cli_positional(int argc, char **argv, int optind, int n, const char *what, struct em_err *err);

int cli_parse_signal(const char *s, int *sig, struct em_err *err);

/* the command implementations (lifecycle.c, inspect.c, exec.c, manage.c) */
int cmd_create(struct cli *, int, char **, struct em_err *);
int cmd_start(struct cli *, int, char **, struct em_err *);
int cmd_run(struct cli *, int, char **, struct em_err *);
int cmd_state(struct cli *, int, char **, struct em_err *);
int cmd_kill(struct cli *, int, char **, struct em_err *);
int cmd_delete(struct cli *, int, char **, struct em_err *);
int cmd_list(struct cli *, int, char **, struct em_err *);
int cmd_ps(struct cli *, int, char **, struct em_err *);
int cmd_exec(struct cli *, int, char **, struct em_err *);
int cmd_pause(struct cli *, int, char **, struct em_err *);
int cmd_resume(struct cli *, int, char **, struct em_err *);
int cmd_update(struct cli *, int, char **, struct em_err *);
int cmd_events(struct cli *, int, char **, struct em_err *);
int cmd_spec(struct cli *, int, char **, struct em_err *);
int cmd_features(struct cli *, int, char **, struct em_err *);
int cmd_netns_pool(struct cli *, int, char **, struct em_err *);
/* the function host (serve.c) and its client (fn.c) */
int cmd_serve(struct cli *, int, char **, struct em_err *);
int cmd_fn(struct cli *, int, char **, struct em_err *);
/* template snapshot images (snapshot.c) */
int cmd_snapshot(struct cli *, int, char **, struct em_err *);
/* `ember snapshot create|restore NAME`: the host's API, like `ember fn` (fn.c); an exit status. */
int cmd_fn_snapshot(struct cli *cli, const char *what, int argc, char **argv);

/* run/exec return the process's exit status this way (it is not an error) */
#define CLI_EXIT_STATUS(code) (1000 + (code))

#endif
