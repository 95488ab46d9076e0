/* tests/common/test_log.c — text and runc-style JSON log lines, levels. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static void read_pipe(int fd, char *buf, size_t cap)
{
	ssize_t n = read(fd, buf, cap - 1);

	cr_assert_gt(n, 0);
	buf[n] = '\0';
}

Test(log, json_line_is_what_containerd_parses)
{
	int p[2];
	struct em_log log;
	char buf[1024];
	json_error_t jerr;

	cr_assert_eq(pipe(p), 0);
	em_log_init_fd(&log, p[1], EM_LOG_INFO, EM_LOG_JSON);
	em_error(&log, "container \"c1\": %s", "boom\n");
	read_pipe(p[0], buf, sizeof(buf));
	json_t *j = json_loads(buf, 0, &jerr);
	cr_assert_not_null(j, "%s: %s", buf, jerr.text);
	cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "error");
	cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), "container \"c1\": boom\n");
	cr_assert_not_null(json_object_get(j, "time"));
	json_decref(j);
	close(p[0]);
	close(p[1]);
}

Test(log, levels_filter_and_null_logger_is_silent)
{
	int p[2];
	struct em_log log;
	char buf[256];

	em_warn(NULL, "dropped");
	cr_assert_eq(pipe(p), 0);
	em_log_init_fd(&log, p[1], EM_LOG_WARN, EM_LOG_TEXT);
	em_debug(&log, "not shown");
	em_warn(&log, "shown");
	read_pipe(p[0], buf, sizeof(buf));
	cr_assert(strstr(buf, "warning: shown\n"), "%s", buf);
	cr_assert_null(strstr(buf, "not shown"));
	close(p[0]);
	close(p[1]);
}
