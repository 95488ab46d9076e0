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
	/* 16..31: templates (sdk/c/ember_zygote.h) and their snapshots */
	EMBER_FORK = 16,       /* host -> template: make a new instance. id: the host's fork number.
				  Payload: struct ember_fork_req, then its paths. The payload comes in
				  its own sendmsg carrying the new instance's fds (SCM_RIGHTS, in
				  enum ember_fork_fd order) */
	EMBER_FORKED = 17,     /* template -> host: id as in FORK. Payload: i32 errno (0: the child
				  exists and will send READY or INIT_ERROR on its own channel), then
				  a message */
	/* snapshots (sdk/c/ember_snap.h, snapshot/FORMAT.md) */
	EMBER_SNAPSHOT = 18,   /* host -> template: describe yourself for a dump. id: the host's.
				  No payload. */
	EMBER_SNAPSHOT_STATE = 19, /* template -> host: id as in SNAPSHOT. Payload: struct
				  ember_snap_state, then its texts. The template then reads nothing
				  but SNAPSHOT_DONE (its memory must hold still while the host reads
				  it through /proc) */
	EMBER_SNAPSHOT_DONE = 20, /* host -> template: the dump is over; carry on parking. id as in
				  SNAPSHOT. Payload: i32 status (0 or an errno), informative */
	EMBER_SNAPSHOT_UFFD = 21, /* restorer -> host, before the restored template's READY, lazy
				  restores only: the userfaultfd of the restored memory rides on the
				  header (SCM_RIGHTS, one fd), id 0, no payload. The host does its
				  UFFDIO_API (EVENT_FORK needs the host's privilege), registers the
				  regions, starts serving faults, and answers host -> restorer with the
				  same type, id 0, payload i32 status (0 or an errno) */
};

/* EMBER_FORK's fds, in this order. */
enum ember_fork_fd {
	EMBER_FORK_FD_CHANNEL = 0, /* the new instance's channel (it becomes the template's fd) */
	EMBER_FORK_FD_LOG,         /* its stdout and stderr */
	EMBER_FORK_FD_NETNS,       /* network namespace to join (owned by the template's userns) */
	EMBER_FORK_FD_CGROUP,      /* cgroup directory for CLONE_INTO_CGROUP (unified hierarchy) */
	EMBER_FORK_NFDS
};

#define EMBER_FORK_MAX_PATHS 4096u

/* EMBER_FORK's payload; `paths_len` bytes follow: NUL-terminated entries, a letter then an
 * absolute path below /proc: 'm' masked (hidden: /dev/null over a file, an empty read-only tmpfs
 * over a directory), 'r' read-only. The new instance mounts its own /proc and applies them, as
 * the runtime did for the template's. */
struct ember_fork_req {
	uint32_t tmp_mb;       /* size of its own /tmp (tmpfs) */
	uint32_t paths_len;
	uint64_t keep_caps;    /* capability bits it keeps (the function's own set); the template
				  also holds CAP_SYS_ADMIN in its user namespace, the instance not */
};
_Static_assert(sizeof(struct ember_fork_req) == 16, "wire fork request is 16 bytes");

/* The registers a template's ready point resumes with: what a function call preserves on
 * x86-64 (System V), like setjmp's. Captured by ember_snap_capture (sdk/c/ember_snap.h); a
 * restorer (snapshot/restore/) loads them, sets eax = 1 and jumps to rip. */
struct ember_snap_regs {
	uint64_t rbx, rbp, r12, r13, r14, r15;
	uint64_t rsp;          /* the caller's stack pointer once the capture call has returned */
	uint64_t rip;          /* the capture call's return address */
	uint32_t mxcsr;        /* SSE control and status */
	uint16_t fpucw;        /* x87 control word */
	uint16_t pad;
};
_Static_assert(sizeof(struct ember_snap_regs) == 72, "wire regs are 72 bytes");

/* The kernel's struct sigaction on x86-64 (rt_sigaction's). */
struct ember_snap_sigaction {
	uint64_t handler, flags, restorer, mask;
};

#define EMBER_SNAP_NSIG 64

/* EMBER_SNAPSHOT_STATE's payload: what the host cannot read from /proc itself (or reads only in
 * its own view: paths). maps_len bytes of the template's /proc/self/maps (paths as the template
 * sees them), then fds_len bytes of "<fd> <readlink of /proc/self/fd/N>\n" lines, then exe_len
 * bytes of readlink(/proc/self/exe) follow. If error is non-zero the template cannot be dumped:
 * maps_len bytes of a message say why (fds_len = exe_len = 0), and it carries on without waiting
 * for SNAPSHOT_DONE. */
struct ember_snap_state {
	int32_t error;         /* 0, or an errno: EBUSY (more than one thread), ENOTSUP, ... */
	uint32_t threads;      /* tasks in /proc/self/task: 1 */
	struct ember_snap_regs regs;
	uint64_t fs_base;      /* arch_prctl(ARCH_GET_FS): the thread pointer */
	uint64_t gs_base;
	uint64_t sigmask;      /* blocked signals, bit n-1 for signal n */
	uint64_t rseq_addr;    /* glibc's registered rseq area (thread pointer + __rseq_offset), or
				  0 when rseq is not registered */
	uint32_t rseq_len;     /* the length registered with the kernel (32 on Debian 12, whose
				  glibc 2.36 says __rseq_size = 20: the feature size) */
	uint32_t rseq_sig;     /* RSEQ_SIG: 0x53053053 on x86-64 */
	struct ember_snap_sigaction sigactions[EMBER_SNAP_NSIG]; /* entry n-1 for signal n */
	uint32_t maps_len, fds_len, exe_len, reserved;
};
_Static_assert(sizeof(struct ember_snap_state) == 2184, "wire snapshot state is 2184 bytes");

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
