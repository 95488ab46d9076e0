/* sdk/c/ember_proto.h — the wire format between ember's function host and a function instance
 * (sdk/PROTOCOL.md explains it). Shared by the host (runtime/host/) and the C SDK; the Python SDK
 * implements the same bytes. Fixed-width little-endian fields, no padding, no pointers. */
#ifndef EMBER_PROTO_H
#define EMBER_PROTO_H

#include <stdint.h>

/* The channel: a connected AF_UNIX SOCK_STREAM socket the instance inherits. Its number is in
 * the environment variable EMBER_CHANNEL_FD (ember passes 3). */
#define EMBER_CHANNEL_ENV "EMBER_CHANNEL_FD"

#define EMBER_PROTO_MAGIC   0x31424d45u  /* "EMB1" as little-endian bytes */
#define EMBER_PROTO_VERSION 1u
#define EMBER_PROTO_HDR_LEN 24u

/* Upper bound of one frame's payload: the host's payload limit (6 MB by default) plus room for
 * the invoke metadata. A peer refuses a longer frame as a protocol error. */
#define EMBER_PROTO_MAX_PAYLOAD (64u * 1024 * 1024)

enum ember_frame_type {
	EMBER_READY = 1,       /* instance -> host: init done, waiting for requests. id 0.
				  Payload: JSON {"sdk":"c|python","pid":N} (may be empty). */
	EMBER_INVOKE = 2,      /* host -> instance: a request. id: the invocation's sequence number.
				  Payload: u32 meta_len, meta (JSON), then the request body. */
	EMBER_RESULT = 3,      /* instance -> host: the response body for invocation id */
	EMBER_ERROR = 4,       /* instance -> host: the handler failed for invocation id.
				  Payload: JSON {"errorType": "...", "errorMessage": "..."} */
	EMBER_INIT_ERROR = 5,  /* instance -> host: init failed (then the instance exits). id 0.
				  Payload: JSON as EMBER_ERROR */
	/* 16..31 are reserved for templates (zygote fork, snapshot) */
};

/* One frame: this header, then `len` payload bytes. */
struct ember_frame_hdr {
	uint32_t magic;        /* EMBER_PROTO_MAGIC */
	uint16_t version;      /* EMBER_PROTO_VERSION */
	uint16_t type;         /* enum ember_frame_type */
	uint64_t id;           /* invocation id (EMBER_INVOKE/RESULT/ERROR), else 0 */
	uint64_t len;          /* payload bytes that follow */
};

_Static_assert(sizeof(struct ember_frame_hdr) == EMBER_PROTO_HDR_LEN, "wire header is 24 bytes");

#endif
