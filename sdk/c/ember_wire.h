/* sdk/c/ember_wire.h — the few byte-level helpers of the channel that the SDK's C files share
 * (ember_fn.c, ember_zygote.c, ember_snap.c): little-endian fields, a frame header, an exact read.
 * Internal to the SDK (static inline: libember_fn.a and libember_zygote.so each carry them), libc
 * only, async-signal-safe. */
#ifndef EMBER_WIRE_H
#define EMBER_WIRE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "ember_proto.h"

static inline void ember_put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t ember_get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* A frame header (struct ember_frame_hdr's bytes) for type, id and a payload of len bytes. */
static inline void ember_frame_hdr(unsigned char h[EMBER_PROTO_HDR_LEN], uint16_t type,
				   uint64_t id, uint64_t len)
{
	ember_put_le(h, EMBER_PROTO_MAGIC, 4);
	ember_put_le(h + 4, EMBER_PROTO_VERSION, 2);
	ember_put_le(h + 6, type, 2);
	ember_put_le(h + 8, id, 8);
	ember_put_le(h + 16, len, 8);
}

/* Read exactly n bytes: 0, -EPIPE at EOF (before or inside; a reset connection is the host going
 * away, as EOF is), -errno. */
static inline int ember_read_exact(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);

		if (r > 0)
			got += (size_t)r;
		else if (r == 0 || errno == ECONNRESET)
			return -EPIPE;
		else if (errno != EINTR)
			return -errno;
	}
	return 0;
}

#endif
