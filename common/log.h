/* common/log.h — leveled logging to one fd, as text or as runc-style JSON lines
 * ({"level":"error","msg":"...","time":"..."}), the format containerd's shim parses from --log.
 * A logger is an object passed to whoever logs: there is no process-wide logger, so two hosts or
 * sandboxes in one process can log to different places. A NULL logger drops everything. */
#ifndef EMBER_COMMON_LOG_H
#define EMBER_COMMON_LOG_H

#include <stdbool.h>

enum em_log_level { EM_LOG_ERROR, EM_LOG_WARN, EM_LOG_INFO, EM_LOG_DEBUG };
enum em_log_format { EM_LOG_TEXT, EM_LOG_JSON };

struct em_log {
	int fd;                    /* where lines go; -1 drops them */
	bool owns_fd;              /* close fd in em_log_close */
	enum em_log_level level;   /* lines above this level are dropped */
	enum em_log_format format;
};

struct em_err;

/* Log to an already open fd (not closed by em_log_close). */
void em_log_init_fd(struct em_log *log, int fd, enum em_log_level level, enum em_log_format format);
/* Log to a file, appended (created 0600). */
int em_log_open(struct em_log *log, const char *path, enum em_log_level level,
		enum em_log_format format, struct em_err *err);
void em_log_close(struct em_log *log);

/* Parse "text"/"json" and "error"/"warn"/"info"/"debug". */
int em_log_parse_format(const char *s, enum em_log_format *out);
int em_log_parse_level(const char *s, enum em_log_level *out);

void em_logf(const struct em_log *log, enum em_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define em_error(log, ...) em_logf((log), EM_LOG_ERROR, __VA_ARGS__)
#define em_warn(log, ...) em_logf((log), EM_LOG_WARN, __VA_ARGS__)
#define em_info(log, ...) em_logf((log), EM_LOG_INFO, __VA_ARGS__)
#define em_debug(log, ...) em_logf((log), EM_LOG_DEBUG, __VA_ARGS__)

#endif
