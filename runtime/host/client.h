/* runtime/host/client.h — a small HTTP/1.1 client for the host's API (api.h), used by the CLI,
 * the tests and the benchmarks. One connection (unix socket, or TCP to a loopback address) kept
 * alive and reused for every request; it is re-made only when the server closed it. Requests
 * carry a Content-Length body; responses may use Content-Length, chunked transfer coding, or run
 * to the end of the connection. A request allocates nothing once the buffers have grown to the
 * size of the largest response: the response (status, headers, body) lives in the client and is
 * valid until the next request.
 *
 * A client is one connection: use one per thread. */
#ifndef EMBER_RUNTIME_HOST_CLIENT_H
#define EMBER_RUNTIME_HOST_CLIENT_H

#include <stddef.h>

struct em_err;
struct em_client;

/* addr: a unix socket path (anything containing a '/'), or "IP:PORT" / "[IPv6]:PORT" /
 * "localhost:PORT". Connects at once, so a host that is not there is reported here. */
int em_client_open(const char *addr, struct em_client **out, struct em_err *err);
void em_client_close(struct em_client *c);

/* A limit for each wait on the server (connect, send, every read); 0 (the default) = none. An
 * invocation can legitimately take its function's whole timeout (up to 900 s). */
void em_client_set_timeout(struct em_client *c, unsigned ms);

struct em_client_resp {
	int status;                   /* 200, 404, ... */
	const char *reason;           /* "OK" */
	const char *body;             /* NUL-terminated (the NUL is not counted in len) */
	size_t len;
};

/* Send one request and read its whole response. path includes the query ("/v1/x?limit=3").
 * content_type may be NULL (none sent); body/len is sent with a Content-Length (also 0 for PUT
 * and POST). A request on a reused connection that the server had already closed (idle
 * timeout: the send fails or the connection ends before one byte of a response) is sent once
 * more on a new connection. Returns 0 for any HTTP status; <0 only for transport failures. */
int em_client_request(struct em_client *c, const char *method, const char *path,
		      const char *content_type, const void *body, size_t len,
		      struct em_client_resp *resp, struct em_err *err);

/* The last response's headers: a value by name (case-insensitive; the first if repeated), or
 * NULL; or every header in the order received. */
const char *em_client_header(const struct em_client *c, const char *name);
size_t em_client_header_count(const struct em_client *c);
void em_client_header_at(const struct em_client *c, size_t i, const char **name,
			 const char **value);

/* How many connections this client made (1 as long as keep-alive held). */
unsigned em_client_connects(const struct em_client *c);

#endif
