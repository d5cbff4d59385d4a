/*
 * test_msg.c - log line shapes: the Postfix-compatible text line written to
 * maillog_file, and the JSON form with the queue ID and key=value fields.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "msg.h"

static void format(char *buf, size_t size, enum msg_level level, const char *text)
{
    assert_true(msg_format_json(buf, size, "2026-01-02T03:04:05.000006", "mx1",
                                "petrel/smtp", 42, level, text) > 0);
}

static void test_json_delivery_line(void **state)
{
    char buf[2048];

    format(buf, sizeof(buf), MSG_INFO,
           "4BTVfdPqLZ9sQ: to=<a@example.com>, relay=mx[192.0.2.1]:25, delay=0.5, "
           "delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X)");
    assert_string_equal(buf,
        "{\"time\":\"2026-01-02T03:04:05.000006\",\"host\":\"mx1\","
        "\"program\":\"petrel/smtp\",\"pid\":\"42\",\"severity\":\"info\","
        "\"queue_id\":\"4BTVfdPqLZ9sQ\","
        "\"message\":\"to=<a@example.com>, relay=mx[192.0.2.1]:25, delay=0.5, "
        "delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X)\","
        "\"to\":\"a@example.com\",\"relay\":\"mx[192.0.2.1]:25\",\"delay\":\"0.5\","
        "\"delays\":\"0.1/0/0.2/0.2\",\"dsn\":\"2.0.0\",\"status\":\"sent\","
        "\"status_detail\":\"250 2.0.0 Ok: queued as X\"}");
}

static void test_json_noqueue_and_escapes(void **state)
{
    char buf[2048];

    format(buf, sizeof(buf), MSG_WARN, "NOQUEUE: reject: RCPT from h[1.2.3.4]: 554 \"x\\y\"");
    assert_non_null(strstr(buf, "\"queue_id\":\"NOQUEUE\""));
    assert_non_null(strstr(buf, "\"severity\":\"warning\""));
    assert_non_null(strstr(buf, "554 \\\"x\\\\y\\\""));
}

static void test_json_no_queue_id_for_plain_words(void **state)
{
    char buf[2048];

    format(buf, sizeof(buf), MSG_INFO, "statistics: max connection rate 1/60s");
    assert_null(strstr(buf, "queue_id"));
    format(buf, sizeof(buf), MSG_INFO, "");
    assert_non_null(strstr(buf, "\"message\":\"\""));
}

static void test_json_overflow_fails_cleanly(void **state)
{
    char buf[64];

    assert_int_equal(msg_format_json(buf, sizeof(buf), "t", "h", "p", 1, MSG_INFO,
                                     "a fairly long message that cannot fit in the buffer"),
                     -1);
}

static void test_file_line_shape(void **state)
{
    char path[] = "/tmp/test_msg_XXXXXX";
    char line[1024];
    FILE *fp;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    close(fd);
    msg_init("/some/dir/smtpd");
    msg_use_stderr(0);
    assert_int_equal(msg_use_file(path, MSG_FORMAT_TEXT), 0);
    msg_info("ABCDEFGHJK1: client=host[10.0.0.1]");
    msg_warn("line\nwith CR\r");
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof(line), fp));
    assert_non_null(strstr(line, " petrel/smtpd["));
    assert_non_null(strstr(line, "]: ABCDEFGHJK1: client=host[10.0.0.1]\n"));
    assert_non_null(fgets(line, sizeof(line), fp));
    /* Control characters from data never split or forge a log line. */
    assert_non_null(strstr(line, "]: warning: line?with CR?\n"));
    assert_null(fgets(line, sizeof(line), fp));
    fclose(fp);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_delivery_line),
        cmocka_unit_test(test_json_noqueue_and_escapes),
        cmocka_unit_test(test_json_no_queue_id_for_plain_words),
        cmocka_unit_test(test_json_overflow_fails_cleanly),
        cmocka_unit_test(test_file_line_shape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
