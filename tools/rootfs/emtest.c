/* emtest — ember's test helper, run inside test containers (static, no dependencies).
 * Each subcommand probes one thing the kernel holds and prints it in a stable form the tests
 * parse; exit status 0 unless the probe itself could not run.
 *
 *   emtest exit N              exit with status N
 *   emtest kill SIG            kill itself with signal SIG
 *   emtest sleep MS            sleep MS milliseconds
 *   emtest spin MS             busy loop for MS milliseconds of wall time
 *   emtest ids                 "uid=U gid=G groups=A,B"
 *   emtest rlimit NAME         "soft hard" for NOFILE, NPROC, CORE, ... ("-1" = unlimited)
 *   emtest try SYSCALL         run a harmless form of SYSCALL (mkdir, getpid, chdir, socket,
 *                              uname, setpriority), print "ok" or the errno name
 *   emtest write-exe           try to open /proc/self/exe for writing; print "ok" or errno
 *   emtest isatty              "tty" if stdin is a terminal, else "notty"
 *   emtest hog MB              allocate and touch MB megabytes, then print "done"
 *   emtest forks N             fork N children that sleep; print how many forks succeeded
 *   emtest wait-signal         print "ready", wait for SIGTERM/SIGINT/SIGUSR1, print its name
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void print_result(int r)
{
	if (r == 0)
		printf("ok\n");
	else
		printf("%s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
}

static const struct {
	const char *name;
	int res;
} rlimits[] = {
	{ "CPU", RLIMIT_CPU },         { "FSIZE", RLIMIT_FSIZE },     { "DATA", RLIMIT_DATA },
	{ "STACK", RLIMIT_STACK },     { "CORE", RLIMIT_CORE },       { "RSS", RLIMIT_RSS },
	{ "NPROC", RLIMIT_NPROC },     { "NOFILE", RLIMIT_NOFILE },   { "MEMLOCK", RLIMIT_MEMLOCK },
	{ "AS", RLIMIT_AS },           { "LOCKS", RLIMIT_LOCKS },     { "SIGPENDING", RLIMIT_SIGPENDING },
	{ "MSGQUEUE", RLIMIT_MSGQUEUE }, { "NICE", RLIMIT_NICE },     { "RTPRIO", RLIMIT_RTPRIO },
	{ "RTTIME", RLIMIT_RTTIME },
};

static int got_signal;
static void on_signal(int s)
{
	got_signal = s;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	const char *arg = argc > 2 ? argv[2] : "";

	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(cmd, "exit"))
		return atoi(arg);
	if (!strcmp(cmd, "kill")) {
		signal(atoi(arg), SIG_DFL);
		kill(getpid(), atoi(arg));
		pause();
		return 0;
	}
	if (!strcmp(cmd, "sleep")) {
		long ms = atol(arg);
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		return 0;
	}
	if (!strcmp(cmd, "spin")) {
		double end = now_ms() + atof(arg);
		volatile unsigned long x = 0;

		while (now_ms() < end)
			x++;
		return 0;
	}
	if (!strcmp(cmd, "ids")) {
		gid_t groups[64];
		int n = getgroups(64, groups);

		printf("uid=%u gid=%u groups=", getuid(), getgid());
		for (int i = 0; i < n; i++)
			printf("%s%u", i ? "," : "", groups[i]);
		printf("\n");
		return 0;
	}
	if (!strcmp(cmd, "rlimit")) {
		for (size_t i = 0; i < sizeof(rlimits) / sizeof(rlimits[0]); i++) {
			struct rlimit rl;

			if (strcmp(rlimits[i].name, arg))
				continue;
			getrlimit(rlimits[i].res, &rl);
			printf("%lld %lld\n", rl.rlim_cur == RLIM_INFINITY ? -1LL : (long long)rl.rlim_cur,
			       rl.rlim_max == RLIM_INFINITY ? -1LL : (long long)rl.rlim_max);
			return 0;
		}
		fprintf(stderr, "emtest: unknown rlimit %s\n", arg);
		return 2;
	}
	if (!strcmp(cmd, "try")) {
		int r;

		errno = 0;
		if (!strcmp(arg, "mkdir")) {
			r = mkdir("/tmp/emtest-dir", 0700);
			if (r == 0)
				rmdir("/tmp/emtest-dir");
		} else if (!strcmp(arg, "getpid")) {
			r = getpid() > 0 ? 0 : -1;
		} else if (!strcmp(arg, "chdir")) {
			r = chdir("/");
		} else if (!strcmp(arg, "socket")) {
			r = socket(AF_INET, SOCK_STREAM, 0);
			if (r >= 0) {
				close(r);
				r = 0;
			}
		} else if (!strcmp(arg, "uname")) {
			struct utsname u;
			r = uname(&u);
		} else if (!strcmp(arg, "setpriority")) {
			r = setpriority(PRIO_PROCESS, 0, 1);
		} else {
			fprintf(stderr, "emtest: unknown syscall probe %s\n", arg);
			return 2;
		}
		print_result(r);
		return 0;
	}
	if (!strcmp(cmd, "write-exe")) {
		int fd = open("/proc/self/exe", O_WRONLY);
		int r = fd < 0 ? -1 : 0;

		if (fd >= 0) {
			/* a sealed or read-only executable may still open; the write is what matters */
			r = write(fd, "x", 1) == 1 ? 0 : -1;
			close(fd);
		}
		print_result(r);
		return 0;
	}
	if (!strcmp(cmd, "isatty")) {
		printf("%s\n", isatty(0) ? "tty" : "notty");
		return 0;
	}
	if (!strcmp(cmd, "hog")) {
		size_t len = (size_t)atol(arg) << 20;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			perror("emtest: mmap");
			return 1;
		}
		for (size_t off = 0; off < len; off += 4096)
			p[off] = 1;
		printf("done\n");
		return 0;
	}
	if (!strcmp(cmd, "forks")) {
		int n = atoi(arg), ok = 0;

		for (int i = 0; i < n; i++) {
			pid_t p = fork();

			if (p == 0) {
				sleep(30);
				_exit(0);
			}
			if (p < 0)
				break;
			ok++;
		}
		printf("%d\n", ok);
		signal(SIGTERM, SIG_DFL);
		kill(0, SIGKILL);
		return 0;
	}
	if (!strcmp(cmd, "wait-signal")) {
		struct sigaction sa = { .sa_handler = on_signal };

		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGUSR1, &sa, NULL);
		printf("ready\n");
		while (!got_signal)
			pause();
		printf("%s\n", sigabbrev_np(got_signal));
		return 0;
	}
	fprintf(stderr, "usage: emtest exit|kill|sleep|spin|ids|rlimit|try|write-exe|isatty|hog|forks|wait-signal ...\n");
	return 2;
}
