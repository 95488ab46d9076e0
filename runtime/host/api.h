/* runtime/host/api.h — the function host's HTTP/1.1 JSON API (libmicrohttpd), the layer between
 * the control plane and struct em_host: routing, bodies, status codes, the error JSON. The routes
 * are documented in runtime/host/API.md.
 *
 * It listens on a unix socket (mode 0660: the socket's group is who may deploy and invoke) and,
 * if asked, on TCP at a loopback address: the API has no authentication, so it is never offered
 * beyond the machine. Each connection is served on its own thread (an invocation blocks in
 * em_host_invoke for as long as the function runs) and kept alive between requests. */
#ifndef EMBER_RUNTIME_HOST_API_H
#define EMBER_RUNTIME_HOST_API_H

#include <stddef.h>
#include <stdint.h>

struct em_err;
struct em_log;
struct em_host;
struct em_api;

/* The host's run directory and the socket in it: where `ember serve` listens and where the
 * `ember fn` commands look, unless told otherwise. */
#define EM_API_RUN_DIR_DEFAULT "/run/ember/serve"
#define EM_API_SOCKET_NAME "ember.sock"
#define EM_API_SOCKET_DEFAULT EM_API_RUN_DIR_DEFAULT "/" EM_API_SOCKET_NAME
/* The request body limit when none is configured (as struct em_host_cfg.max_payload's). */
#define EM_API_MAX_PAYLOAD_DEFAULT ((size_t)6 * 1024 * 1024)

struct em_api_cfg {
	const char *socket_path;   /* NULL: EM_API_SOCKET_DEFAULT; its directory is created */
	const char *listen;        /* "127.0.0.1:PORT", "[::1]:PORT" or NULL; port 0 picks one */
	size_t max_payload;        /* request bodies above this get 413; 0: the default */
	unsigned idle_timeout_s;   /* an idle keep-alive connection is closed after this; 0 = 120 */
	struct em_log *log;        /* access log at debug, failures at warn; NULL: none */
};

/* Bind and listen (a stale socket file left by a dead server is replaced; a live server's is
 * refused with EADDRINUSE), then serve until em_api_stop. */
int em_api_start(struct em_host *h, const struct em_api_cfg *cfg, struct em_api **out,
		 struct em_err *err);
/* Stop accepting, wait for the requests in flight (an invocation to its end), close every
 * connection, remove the socket file. */
void em_api_stop(struct em_api *api);

/* Where it listens: the socket path, and the TCP port (0 when not on TCP). */
const char *em_api_socket_path(const struct em_api *api);
uint16_t em_api_tcp_port(const struct em_api *api);

/* Is this "ADDR:PORT" a loopback address the API may listen on? Fills sa (a sockaddr_storage)
 * and its length; the message says why not. */
int em_api_parse_listen(const char *listen, void *sa, unsigned *salen, struct em_err *err);

#endif
