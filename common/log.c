/* common/log.c — see log.h. One write(2) per line so concurrent writers to an O_APPEND file
 * never interleave within a line. */
#include "common/log.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = { "error", "warning", "info", "debug" };

void em_log_init_fd(struct em_log *log, int fd, enum em_log_level level, enum em_log_format format)
{
	log->fd = fd;
	log->owns_fd = false;
	log->level = level;
	log->format = format;
}

int em_log_open(struct em_log *log, const char *path, enum em_log_level level,
		enum em_log_format format, struct em_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0)
		return em_err_set(err, errno, "open log file %s", path);
	em_log_init_fd(log, fd, level, format);
	log->owns_fd = true;
	return 0;
}

void em_log_close(struct em_log *log)
{
	if (log->owns_fd && log->fd >= 0)
		close(log->fd);
	log->fd = -1;
	log->owns_fd = false;
}

int em_log_parse_format(const char *s, enum em_log_format *out)
{
	if (!strcmp(s, "text"))
		*out = EM_LOG_TEXT;
	else if (!strcmp(s, "json"))
		*out = EM_LOG_JSON;
	else
		return -EINVAL;
	return 0;
}

int em_log_parse_level(const char *s, enum em_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (!strcmp(s, level_names[i]) || (i == EM_LOG_WARN && !strcmp(s, "warn"))) {
			*out = (enum em_log_level)i;
			return 0;
		}
	return -EINVAL;
}

/* Append s to buf as JSON string content (without quotes); returns the new length. */
static size_t json_escape(char *buf, size_t len, size_t cap, const char *s)
{
	for (; *s && len + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[len++] = '\\';
			buf[len++] = (char)c;
		} else if (c < 0x20) {
			len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
		} else {
			buf[len++] = (char)c;
		}
	}
	return len;
}

void em_logf(const struct em_log *log, enum em_log_level level, const char *fmt, ...)
{
	char msg[4096], line[8192], ts[40];
	struct timespec now;
	struct tm tm;
	size_t len;
	va_list ap;

	if (!log || log->fd < 0 || level > log->level)
		return;
	int saved = errno;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	len = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + len, sizeof(ts) - len, ".%09ldZ", now.tv_nsec);

	if (log->format == EM_LOG_JSON) {
		len = (size_t)snprintf(line, sizeof(line), "{\"level\":\"%s\",\"msg\":\"",
				       level_names[level]);
		len = json_escape(line, len, sizeof(line) - 40, msg);
		len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"time\":\"%s\"}\n", ts);
	} else {
		len = (size_t)snprintf(line, sizeof(line), "%s %s: %s\n", ts, level_names[level], msg);
	}
	if (len >= sizeof(line))
		len = sizeof(line) - 1;
	if (write(log->fd, line, len) < 0) {
		/* nowhere left to report a failing log write */
	}
	errno = saved;
}
