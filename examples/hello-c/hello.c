/* examples/hello-c — the smallest C function: answers "hello, <payload>" ("hello, world" for an
 * empty one). No init. */
#include "ember_fn.h"

static int handler(const struct ember_fn_request *req, struct ember_fn_response *resp)
{
	if (req->len == 0)
		return ember_fn_write(resp, "hello, world", 12);
	if (ember_fn_write(resp, "hello, ", 7) < 0)
		return -1;
	return ember_fn_write(resp, req->body, req->len); /* binary-safe: the body may hold NULs */
}

int main(int argc, char **argv)
{
	static const struct ember_fn fn = { .handler = handler };

	return ember_fn_main(argc, argv, &fn);
}
