/* tests/sdk/inst.h — play ember's function host against a real instance: fork+exec a function
 * with the channel on fd 3 (EMBER_CHANNEL_FD=3, a socketpair as the host makes), stdout and stderr
 * on pipes, stdin /dev/null; then write and read frames, with deadlines, and reap it. Every
 * started instance is killed and reaped by inst_reap_all (the suites' fini), so a failed assertion
 * leaves no process behind. */
#ifndef EMBER_TESTS_SDK_INST_H
#define EMBER_TESTS_SDK_INST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sdk/c/ember_proto.h"

#define INST_TIMEOUT_MS 20000

struct inst {
	pid_t pid;
	int chan;       /* the host's end of the channel (-1 once closed) */
	int out, err;   /* read ends of the instance's stdout and stderr */
	bool reaped;
	int status;     /* waitpid status once reaped */
};

struct frame {
	struct ember_frame_hdr h;
	char *payload;  /* malloc'd, NUL-terminated (len bytes before the NUL) */
};

/* Paths: a built example's binary (inside its bundle), a built bundle, build/ember, the Python
 * SDK and the Python test handlers in the source tree. */
const char *t_example_bin(const char *name);
const char *t_bundle(const char *name);
const char *t_ember(void);
const char *t_py_sdk(void);
const char *t_py_dir(void);
#define PYTHON "/usr/bin/python3"

/* Start argv (NULL-terminated) with env (NULL-terminated "K=V" list, added to a minimal
 * environment), in cwd (NULL: ours). channel: give it EMBER_CHANNEL_FD=3 and the socket; false:
 * one-shot, stdin = a pipe whose write end inst->chan holds. */
void inst_spawn(struct inst *in, const char *const *argv, const char *const *env, const char *cwd,
		bool channel);
/* The same, started as the Python SDK running handler (MODULE.FUNCTION) from tests/sdk/py. */
void inst_spawn_py(struct inst *in, const char *handler, const char *const *env, bool channel);

/* Send a frame (whole; the socket may take a 6 MB one in pieces). Returns 0 or -errno (EPIPE
 * when the instance is gone). */
int inst_send(struct inst *in, uint16_t type, uint64_t id, const void *payload, size_t len);
/* Send raw bytes (a forged header). */
int inst_send_raw(struct inst *in, const void *p, size_t len);
/* An INVOKE: the metadata JSON and the body. */
int inst_invoke(struct inst *in, uint64_t id, const char *meta, const void *body, size_t len);
/* Receive one frame within timeout_ms. 1: a frame; 0: EOF before a header; asserts on timeout
 * or a malformed frame. */
int inst_recv(struct inst *in, struct frame *f, int timeout_ms);
void frame_free(struct frame *f);
/* Expect a frame of this type and id; returns its payload (malloc'd, NUL-terminated). */
char *inst_expect(struct inst *in, uint16_t type, uint64_t id);
/* READY, checked: {"sdk":"<sdk>","pid":<the child's pid>}. */
void inst_expect_ready(struct inst *in, const char *sdk);

/* Close the host's end of the channel (or of stdin, one-shot). */
void inst_close(struct inst *in);
/* Wait for the instance to exit, at most timeout_ms (asserts if it does not); the status. */
int inst_wait(struct inst *in, int timeout_ms);
/* Read what the instance wrote to stdout/stderr so far, without waiting (NUL-terminated). */
size_t inst_read_now(int fd, char *buf, size_t cap);
/* Read to EOF (after the instance exited). */
size_t inst_read_all(int fd, char *buf, size_t cap);

/* Kill and reap every instance still alive; close every descriptor (suite fini). */
void inst_reap_all(void);

/* Wait (briefly) until the instance is blocked in one of these read syscalls (numbers as
 * /proc/PID/syscall gives them, NULL-terminated) on fd 3, and assert it has one thread. */
void assert_blocked_reading_the_channel(pid_t pid, const char *const *syscalls);

/* The exit code if it exited (else -1); the signal if it was killed (else 0). */
int exit_code(int status);
int term_signal(int status);

#endif
