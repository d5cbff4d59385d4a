/*
 * test_queue_list.c - the queue walker's pure parts: filters (addresses
 * case-insensitive, domains by suffix at a label boundary, the null sender,
 * queues, age, reason regex, IDs, bad values), the classic and JSON formats,
 * JSON string escaping with invalid UTF-8.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "queue_list.h"
#include "strbuf.h"

static struct queue_rcpt rcpts[2] = {
    {"u@Mail.Example.COM", "connect to mx: Connection refused", 100},
    {"v@other.net", NULL, 200},
};

static struct queue_msg sample(void)
{
    struct queue_msg m;

    memset(&m, 0, sizeof(m));
    m.queue = QUEUE_LIST_DEFERRED;
    m.queue_name = "deferred";
    m.status = ' ';
    m.qid = "4SVLCh0sf88mYg";
    m.arrival.tv_sec = 1000000;
    m.size = 1234;
    m.sender = "Alice@Example.org";
    m.nrcpt = 2;
    m.rcpt = rcpts;
    return m;
}

static int match(const char *opt, const char *value, const struct queue_msg *m, time_t now)
{
    struct queue_filter *f = queue_filter_new();
    struct strbuf why;
    int r;

    strbuf_init(&why, 64, 4096);
    assert_int_equal(queue_filter_add(f, opt, value, &why), 0);
    assert_true(queue_filter_is_set(f));
    r = queue_filter_match(f, m, now);
    queue_filter_free(&f);
    assert_null(f);
    strbuf_release(&why);
    return r;
}

static void test_filters(void **state)
{
    struct queue_msg m = sample();
    static const struct {
        const char *opt, *value;
        int want;
    } cases[] = {
        {"from", "alice@example.ORG", 1}, {"from", "example.org", 1}, {"from", "@example.org", 1},
        {"from", "xample.org", 0}, {"from", "org", 1}, {"from", "<>", 0},
        {"from", "bob@example.org", 0}, {"to", "example.com", 1}, {"to", "MAIL.example.com", 1},
        {"to", "ail.example.com", 0}, {"to", "v@OTHER.net", 1}, {"to", "w@other.net", 0},
        {"queue", "deferred", 1}, {"queue", "hold", 0}, {"older-than", "10s", 1},
        {"older-than", "2d", 0}, {"reason", "refused", 1}, {"reason", "^connect TO", 1},
        {"reason", "timed out", 0}, {"id", "4SVLCh0sf88mYg", 1}, {"id", "4SVLCh0sf88mYh", 0},
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = match(cases[i].opt, cases[i].value, &m, 1000000 + 86400);

        if (got != cases[i].want)
            fail_msg("--%s %s: got %d, want %d", cases[i].opt, cases[i].value, got, cases[i].want);
    }
    m.sender = "";
    assert_true(match("from", "<>", &m, 0));
    assert_true(match("from", "mailer-daemon", &m, 0));
    assert_true(queue_filter_match(NULL, &m, 0));
}

static void test_bad_filters(void **state)
{
    struct queue_filter *f = queue_filter_new();
    struct strbuf why;
    static const char *const bad[][2] = {
        {"queue", "nowhere"}, {"older-than", "2x"}, {"older-than", "-1d"}, {"reason", "("},
        {"id", "x"}, {"from", ""}, {"to", "a b"}, {"colour", "red"},
    };
    size_t i;

    (void) state;
    strbuf_init(&why, 64, 4096);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strbuf_reset(&why);
        if (queue_filter_add(f, bad[i][0], bad[i][1], &why) != -1)
            fail_msg("--%s '%s' accepted", bad[i][0], bad[i][1]);
        assert_true(why.len > 0);
    }
    assert_false(queue_filter_is_set(f));
    queue_filter_free(&f);
    strbuf_release(&why);
}

static void test_classic_format(void **state)
{
    struct queue_msg m = sample();
    struct queue_listing l = {0, 0, 0, NULL};
    struct strbuf out;
    char *line2;

    (void) state;
    strbuf_init(&out, 256, STRBUF_UNLIMITED);
    l.out = &out;
    queue_listing_add(&l, &m);
    queue_listing_end(&l);
    assert_true(strncmp(out.data, "-Queue ID-   -Size- ----Arrival Time---- "
                        "-Sender/Recipient-------\n4SVLCh0sf88mYg     1234 ", 81) == 0);
    line2 = strchr(strchr(out.data, '\n') + 1, '\n') + 1;
    /* The reason is right-aligned so that it ends in column 78. */
    assert_int_equal(strchr(line2, '\n') - line2, 78);
    assert_true(strstr(out.data, "\n                                         u@Mail.Example.COM\n"
                       "                                         v@other.net\n\n"
                       "-- 2 Kbytes in 1 Request.\n") != NULL);
    strbuf_reset(&out);
    queue_format_summary(0, 0, &out);
    assert_string_equal(out.data, "Mail queue is empty\n");
    strbuf_release(&out);
}

static void test_json_format(void **state)
{
    struct queue_msg m = sample();
    struct strbuf out;

    (void) state;
    strbuf_init(&out, 256, STRBUF_UNLIMITED);
    queue_format_json(&m, &out);
    assert_string_equal(out.data, "{\"queue_name\": \"deferred\", \"queue_id\": \"4SVLCh0sf88mYg\","
                        " \"arrival_time\": 1000000, \"message_size\": 1234, \"forced_expire\":"
                        " false, \"sender\": \"Alice@Example.org\", \"recipients\": [{\"address\":"
                        " \"u@Mail.Example.COM\", \"delay_reason\": \"connect to mx: Connection"
                        " refused\"}, {\"address\": \"v@other.net\"}]}\n");
    strbuf_reset(&out);
    queue_json_string(&out, "a\"b\\c\n\x01\xc3\xa9\xff\xe2\x82");
    assert_string_equal(out.data, "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\\ufffd\\ufffd\\ufffd\"");
    strbuf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_bad_filters),
        cmocka_unit_test(test_classic_format),
        cmocka_unit_test(test_json_format),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
