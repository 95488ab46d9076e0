/* runtime/cli/serve.c — `ember serve`: the function host (runtime/host/host.h) behind its HTTP
 * API (api.h), until SIGTERM or SIGINT; then the API stops (requests in flight finish) and the
 * host drains and removes everything it made. */
#include "runtime/cli/cli.h"
#include "common/fs.h"
#include "runtime/host/api.h"
#include "runtime/host/host.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out,
		     struct em_err *err)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || *end || end == s || *s == '-' || *out > max)
		return em_err_msg(err, EINVAL, "--%s: expected an integer from 0 to %llu, got \"%s\"",
				  opt, (unsigned long long)max, s);
	return 0;
}

int cmd_serve(struct cli *cli, int argc, char **argv, struct em_err *err)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "cgroup-parent", required_argument, NULL, 'g' },
		{ "capacity-mb", required_argument, NULL, 'c' },
		{ "idle-ttl-ms", required_argument, NULL, 't' },
		{ "pool-size", required_argument, NULL, 'p' },
		{ "max-payload", required_argument, NULL, 'm' },
		{ "no-billing", no_argument, NULL, 'B' },
		{ 0 },
	};
	struct em_host_cfg hc = { .log = &cli->log };
	struct em_api_cfg ac = { .log = &cli->log };
	char sock[PATH_MAX];
	struct em_host *h = NULL;
	struct em_api *api = NULL;
	sigset_t stop, old;
	uint64_t v;
	int c, sig, ret = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1 && ret == 0) {
		switch (c) {
		case 's':
			ac.socket_path = optarg;
			break;
		case 'l':
			ac.listen = optarg;
			break;
		case 'r':
			hc.run_dir = optarg;
			break;
		case 'd':
			hc.data_dir = optarg;
			break;
		case 'g':
			hc.cgroup_parent = optarg;
			break;
		case 'c':
			ret = parse_u64("capacity-mb", optarg, UINT64_MAX >> 20, &hc.capacity_mb, err);
			break;
		case 't':
			ret = parse_u64("idle-ttl-ms", optarg, UINT32_MAX, &v, err);
			hc.idle_ttl_ms = (uint32_t)v;
			break;
		case 'p':
			ret = parse_u64("pool-size", optarg, 1024, &v, err);
			hc.pool_size = (uint32_t)v;
			break;
		case 'm':
			ret = parse_u64("max-payload", optarg, (uint64_t)1 << 30, &v, err);
			hc.max_payload = ac.max_payload = (size_t)v;
			break;
		case 'B':
			hc.no_billing = true;
			break;
		default:
			return em_err_msg(err, EINVAL, "invalid option (see --help)");
		}
	}
	if (ret == 0)
		ret = cli_positional(argc, argv, optind, 0, "no arguments", err);
	if (ret == 0 && ac.listen) {
		/* refused before the host makes anything */
		struct sockaddr_storage sa;
		unsigned salen;

		ret = em_api_parse_listen(ac.listen, &sa, &salen, err);
	}
	if (ret < 0)
		return ret;
	/* the API and the host agree on one limit: the API refuses early what the host would */
	if (!hc.max_payload)
		hc.max_payload = ac.max_payload = EM_API_MAX_PAYLOAD_DEFAULT;
	/* the socket lives in the run directory unless placed elsewhere */
	if (!ac.socket_path) {
		if (em_path_join(sock, sizeof(sock), hc.run_dir ? hc.run_dir : EM_API_RUN_DIR_DEFAULT,
				 EM_API_SOCKET_NAME) < 0)
			return em_err_msg(err, ENAMETOOLONG, "--run-dir: path too long");
		ac.socket_path = sock;
	}
	/* a server says where it listens and when it stops: info unless --debug asked for more */
	if (cli->log.level < EM_LOG_INFO)
		cli->log.level = EM_LOG_INFO;

	/* Block the stop signals before any thread exists, so every thread the host and the API
	 * start inherits the mask and only sigwait() below takes them. (Sandboxes reset their
	 * mask before exec: runtime/child.c.) A client that goes away mid-response must not kill
	 * the host: SIGPIPE is ignored, writes get EPIPE. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	signal(SIGPIPE, SIG_IGN);

	ret = em_host_new(&hc, &h, err);
	if (ret == 0)
		ret = em_api_start(h, &ac, &api, err);
	if (ret < 0) {
		if (h)
			em_host_free(h);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return em_err_prefix(err, "serve");
	}
	if (em_api_tcp_port(api))
		em_info(&cli->log, "serving on %s and %s (port %u)", em_api_socket_path(api),
			ac.listen, em_api_tcp_port(api));
	else
		em_info(&cli->log, "serving on %s", em_api_socket_path(api));

	while (sigwait(&stop, &sig) != 0)
		;
	em_info(&cli->log, "%s: stopping (requests in flight finish first)", sigabbrev_np(sig));
	em_host_stop(h);   /* waiters for a sandbox give up, so the API's requests can end */
	em_api_stop(api);
	em_host_free(h);
	em_info(&cli->log, "stopped");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}
