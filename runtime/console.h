/* runtime/console.h — `process.terminal`, the way runc does it. The container's init allocates a
 * pty inside the container (its own devpts), makes the slave its controlling terminal and stdio,
 * and sends the master to whoever asked: the --console-socket listener (containerd's shim,
 * conmon), or `ember run`/`exec` in the foreground, which then proxies it to its own terminal.
 *
 * Wire format (runc's libcontainer/utils SendFile/RecvFile, so containerd's and podman's
 * receivers accept it): one sendmsg() with the pty's path as the data ("/dev/ptmx", no NUL, less
 * than 4096 bytes) and exactly one SCM_RIGHTS control message holding exactly one fd. */
#ifndef EMBER_RUNTIME_CONSOLE_H
#define EMBER_RUNTIME_CONSOLE_H

struct em_err;

/* --- container side ---------------------------------------------------------------------------
 * In the container's init, after /dev/pts is mounted (newinstance, ptmxmode=0666) and /dev/ptmx
 * exists (a symlink to pts/ptmx or the 5:2 node; if it is not a char device, /dev/pts/ptmx is
 * used), before exec: open the pty master, unlock it, open the slave through the master
 * (TIOCGPTPEER: no path lookup, so no ptsname race or /dev confusion), set the window size if
 * rows or cols is non-zero, send the master over console_sock, close it, become a session leader
 * (setsid; being one already is fine), take the slave as controlling terminal (TIOCSCTTY) and
 * make it fds 0, 1 and 2. console_sock is left open (the caller closes it).
 * Async-signal-safe: system calls only, no allocation, no stdio — fit for a cloned child of a
 * multithreaded host. Returns 0, or -errno with *failed_step set to a string literal naming the
 * step ("open /dev/ptmx", "send pty master over console socket", ...). */
int em_console_child_setup(int console_sock, unsigned short rows, unsigned short cols,
			   const char **failed_step);

/* --- runtime / client side -------------------------------------------------------------------- */

/* `--console-socket PATH`: connect to the listener (SOCK_STREAM, as runc; SOCK_SEQPACKET
 * listeners are accepted too). *fd is close-on-exec. Errors name the path. */
int em_console_socket_connect(const char *path, int *fd, struct em_err *err);

/* Receive one pty master sent the runc way (blocking). *master_fd is close-on-exec and is
 * checked to be a pty master; anything else (no fd, several fds, a non-pty) is an error. */
int em_console_recv(int sock, int *master_fd, struct em_err *err);

/* --- foreground proxy (`ember run`/`exec` with a terminal and no --console-socket) -------------
 * A thread copies in_fd -> master and master -> out_fd (buffered both ways, so a container
 * that does not read its input never stalls its output) until the master hangs up (EIO/HUP: the
 * last holder of the slave closed it) or em_console_proxy_stop() is called. If in_fd is a
 * terminal it is put in raw mode (restored by stop) and its window size is copied to the pty.
 * EOF on in_fd is passed on as the pty's EOF character (^D), as a terminal would.
 * The proxy borrows master_fd, in_fd and out_fd (it never closes them, and never changes
 * their file status flags, which the caller's shell shares); close them after stop.
 *
 * Window size changes: the proxy thread reads SIGWINCH from a signalfd and copies in_fd's new
 * size to the pty. A signalfd only sees a signal that no thread takes first, so the CALLER MUST
 * BLOCK SIGWINCH IN EVERY THREAD — block it in main() before creating any thread (threads
 * inherit the mask) — or resize forwarding is unreliable (the initial size is always copied).
 * No process-wide handler is installed. */
struct em_console_proxy;

int em_console_proxy_start(struct em_console_proxy **out, int master_fd, int in_fd, int out_fd,
			   struct em_err *err);
/* Stop the proxy: copy out what the master still holds (the container's last output), join the
 * thread, restore in_fd's terminal mode, free. NULL is fine. */
void em_console_proxy_stop(struct em_console_proxy *p);

#endif
