/*
 * test_dsn_report.c - the text of delivery status notifications: headers and
 * subject per kind (and for postmaster copies); the three MIME parts with
 * their types and one boundary that opens each part and closes the whole;
 * per-recipient fields (Final-Recipient, Original-Recipient from ORCPT or
 * the original address, Action forced to failed in a failure report, Status,
 * Remote-MTA only for a remote relay, Diagnostic-Code typed smtp, x-unix or
 * X-Petrel, Last-Attempt-Date, Will-Retry-Until only in delay warnings); the
 * returned message whole or as headers (RET, SMTPUTF8 types); a reason with
 * CR/LF cannot add a header; no line we write exceeds 998 bytes; the boundary
 * never occurs in the returned message; 8-bit content is reported; dates are
 * RFC 5322.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "dsn_report.h"
#include "strbuf.h"

static const char original[] =
    "From: Sender <sender@example.org>\n"
    "To: someone@example.com\n"
    "Subject: hello\n"
    "Message-ID: <abc@example.org>\n"
    "\n"
    "body line\n";

static const char original_headers[] =
    "From: Sender <sender@example.org>\n"
    "To: someone@example.com\n";

static struct dsn_report_rcpt rcpts[] = {
    {"nobody@example.com", "", "rfc822;Nobody@example.com", "failed", "5.1.1", "local",
     "unknown user: \"nobody\"", 1700000100},
    {"far@remote.example", "alias@example.com", "", "delayed", "4.4.1",
     "mx.remote.example[192.0.2.7]:25",
     "host mx.remote.example[192.0.2.7] said: 450 4.4.1 try later (in reply to RCPT TO command)",
     1700000200},
    {"pipe@example.com", "", "", "failed", "5.3.0", "local",
     "Command died with status 1: \"/bin/false\"", 0},
};

static void base_report(struct dsn_report *r, enum dsn_report_kind kind)
{
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->myhostname = "mail.example.com";
    r->mail_name = "Petrel";
    r->to = "sender@example.org";
    r->queue_id = "4SVLCh0sf88mYg";
    r->new_queue_id = "4SVLCi0aaaaaYh";
    r->sender = "sender@example.org";
    r->envid = "";
    r->orig_msgid = "<abc@example.org>";
    r->arrival = 1700000000;
    r->now = 1700000300;
    r->delay_warning_time = 4 * 3600;
    r->maximal_queue_lifetime = 5 * 86400;
    r->rcpt = rcpts;
    r->rcpt_count = 3;
    r->original = original;
    r->original_len = strlen(original);
}

/* Whether text has a line (at a line start) that is exactly line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    const char *p = text;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
        p += 1;
    }
    return 0;
}

static int count_lines(const char *text, const char *line)
{
    size_t n = strlen(line);
    const char *p = text;
    int count = 0;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            count++;
        p += 1;
    }
    return count;
}

static void assert_has(const char *text, const char *line)
{
    if (!has_line(text, line))
        fail_msg("missing line \"%s\" in:\n%s", line, text);
}

static void assert_lacks(const char *text, const char *line)
{
    if (has_line(text, line))
        fail_msg("unexpected line \"%s\" in:\n%s", line, text);
}

/* The boundary from the top-level Content-Type. */
static void boundary_of(const char *text, char *b, size_t size)
{
    const char *p = strstr(text, "\tboundary=\"");
    const char *q;

    assert_non_null(p);
    p += 11;
    q = strchr(p, '"');
    assert_non_null(q);
    assert_true((size_t) (q - p) < size);
    memcpy(b, p, (size_t) (q - p));
    b[q - p] = '\0';
}

static void assert_structure(const char *text)
{
    char b[128], line[160];
    const char *p;

    boundary_of(text, b, sizeof(b));
    assert_true(strlen(b) <= 70);
    snprintf(line, sizeof(line), "--%s", b);
    assert_int_equal(count_lines(text, line), 3);
    snprintf(line, sizeof(line), "--%s--", b);
    assert_int_equal(count_lines(text, line), 1);
    /* The closing boundary is the last line. */
    p = text + strlen(text) - strlen(line) - 1;
    assert_memory_equal(p, line, strlen(line));
    for (p = text; *p;) {
        const char *nl = strchr(p, '\n');

        assert_non_null(nl);
        assert_true(nl - p <= DSN_REPORT_LINE_MAX);
        p = nl + 1;
    }
}

static void test_failure_report(void **state)
{
    struct dsn_report r;
    struct strbuf out;
    const char *status_part;

    (void) state;
    setenv("TZ", "UTC", 1);
    tzset();
    strbuf_init(&out, 1024, 0);
    base_report(&r, DSN_REPORT_FAILED);
    assert_int_equal(dsn_report_compose(&r, &out), 0);
    assert_structure(out.data);
    assert_has(out.data, "From: Mail Delivery System <MAILER-DAEMON@mail.example.com>");
    assert_has(out.data, "Subject: Undelivered Mail Returned to Sender");
    assert_has(out.data, "To: sender@example.org");
    assert_has(out.data, "Auto-Submitted: auto-replied");
    assert_has(out.data, "References: <abc@example.org>");
    assert_has(out.data, "In-Reply-To: <abc@example.org>");
    assert_has(out.data, "Date: Tue, 14 Nov 2023 22:18:20 +0000 (UTC)");
    assert_has(out.data, "Message-ID: <20231114221820.4SVLCi0aaaaaYh@mail.example.com>");
    assert_has(out.data, "MIME-Version: 1.0");
    assert_has(out.data, "Content-Type: multipart/report; report-type=delivery-status;");
    assert_has(out.data, "This is the mail system at host mail.example.com.");
    assert_has(out.data, "<nobody@example.com>: unknown user: \"nobody\"");
    assert_has(out.data, "<far@remote.example> (expanded from <alias@example.com>): host");
    assert_has(out.data, "Content-Type: text/plain; charset=us-ascii");
    assert_has(out.data, "Content-Type: message/delivery-status");
    assert_has(out.data, "Content-Type: message/rfc822");
    assert_has(out.data, "Content-Description: Undelivered Message");
    /* Delivery-status fields. */
    status_part = strstr(out.data, "Reporting-MTA:");
    assert_non_null(status_part);
    assert_has(status_part, "Reporting-MTA: dns; mail.example.com");
    assert_has(status_part, "X-Petrel-Queue-ID: 4SVLCh0sf88mYg");
    assert_has(status_part, "X-Petrel-Sender: rfc822; sender@example.org");
    assert_has(status_part, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000 (UTC)");
    assert_lacks(status_part, "Original-Envelope-Id: ");
    assert_has(status_part, "Final-Recipient: rfc822; nobody@example.com");
    assert_has(status_part, "Original-Recipient: rfc822;Nobody@example.com");
    assert_has(status_part, "Original-Recipient: rfc822; alias@example.com");
    assert_int_equal(count_lines(status_part, "Action: failed"), 3);
    assert_has(status_part, "Status: 5.1.1");
    assert_has(status_part, "Status: 4.4.1");
    assert_has(status_part, "Remote-MTA: dns; mx.remote.example");
    assert_int_equal(count_lines(status_part, "Remote-MTA: dns; mx.remote.example"), 1);
    assert_has(status_part, "Diagnostic-Code: X-Petrel; unknown user: \"nobody\"");
    assert_has(status_part, "Diagnostic-Code: smtp; 450 4.4.1 try later");
    assert_has(status_part, "Diagnostic-Code: x-unix; Command died with status 1: \"/bin/false\"");
    assert_has(status_part, "Last-Attempt-Date: Tue, 14 Nov 2023 22:15:00 +0000 (UTC)");
    assert_int_equal(count_lines(status_part, "Last-Attempt-Date: Tue, 14 Nov 2023 22:15:00 "
                                 "+0000 (UTC)"), 1);
    assert_null(strstr(out.data, "Will-Retry-Until:"));
    /* The message follows, whole, after a Return-Path. */
    assert_non_null(strstr(out.data, "\nReturn-Path: <sender@example.org>\n" "From: Sender"));
    assert_non_null(strstr(out.data, "\nbody line\n"));
    strbuf_release(&out);
}

static void test_delay_and_success(void **state)
{
    struct dsn_report r;
    struct strbuf out;

    (void) state;
    setenv("TZ", "UTC", 1);
    tzset();
    strbuf_init(&out, 1024, 0);
    base_report(&r, DSN_REPORT_DELAYED);
    r.rcpt = rcpts + 1;
    r.rcpt_count = 1;
    r.original = original_headers;
    r.original_len = strlen(original_headers);
    r.headers_only = 1;
    r.envid = "ENV-123";
    dsn_report_compose(&r, &out);
    assert_structure(out.data);
    assert_has(out.data, "Subject: Delayed Mail (still being retried)");
    assert_has(out.data, "Your message could not be delivered for more than 4 hour(s).");
    assert_has(out.data, "It will be retried until it is 5 day(s) old.");
    assert_has(out.data, "Action: delayed");
    assert_has(out.data, "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000 (UTC)");
    assert_has(out.data, "Original-Envelope-Id: ENV-123");
    assert_has(out.data, "Content-Type: text/rfc822-headers");
    assert_has(out.data, "Content-Description: Undelivered Message Headers");
    assert_null(strstr(out.data, "body line"));

    base_report(&r, DSN_REPORT_SUCCESS);
    r.rcpt = rcpts;
    r.rcpt_count = 1;
    rcpts[0].action = "delivered";
    rcpts[0].status = "2.0.0";
    rcpts[0].reason = "delivered to maildir";
    dsn_report_compose(&r, &out);
    rcpts[0].action = "failed";
    rcpts[0].status = "5.1.1";
    rcpts[0].reason = "unknown user: \"nobody\"";
    assert_structure(out.data);
    assert_has(out.data, "Subject: Successful Mail Delivery Report");
    assert_has(out.data, "Action: delivered");
    assert_has(out.data, "Status: 2.0.0");
    assert_has(out.data, "<nobody@example.com>: delivery via local: delivered to maildir");
    assert_has(out.data, "Content-Description: Message");
    assert_null(strstr(out.data, "Will-Retry-Until:"));
    strbuf_release(&out);
}

static void test_postmaster_copy(void **state)
{
    struct dsn_report r;
    struct strbuf out;

    (void) state;
    strbuf_init(&out, 1024, 0);
    base_report(&r, DSN_REPORT_FAILED);
    r.postmaster_copy = 1;
    r.to = "postmaster";
    r.sender = "";
    dsn_report_compose(&r, &out);
    assert_structure(out.data);
    assert_has(out.data, "Subject: Postmaster Copy: Undelivered Mail");
    assert_has(out.data, "To: postmaster");
    assert_has(out.data, "Auto-Submitted: auto-generated");
    assert_null(strstr(out.data, "X-Petrel-Sender:"));
    assert_has(out.data, "Return-Path: <>");
    base_report(&r, DSN_REPORT_DELAYED);
    r.postmaster_copy = 1;
    dsn_report_compose(&r, &out);
    assert_has(out.data, "Subject: Postmaster Warning: Delayed Mail");
    strbuf_release(&out);
}

static void test_hostile_values(void **state)
{
    struct dsn_report_rcpt evil = {"evil@example.com", "", "", "failed", "5.0.0", "none", 0, 0};
    struct strbuf out, reason, orig;
    struct dsn_report r;
    char b[128];
    int i;

    (void) state;
    strbuf_init(&out, 1024, 0);
    strbuf_init(&reason, 1024, 0);
    strbuf_init(&orig, 1024, 0);
    /* CR/LF cannot start a header or a part; long text is folded, even without spaces. */
    strbuf_puts(&reason, "bad\r\nBcc: victim@example.com\n\n--x\n");
    for (i = 0; i < 3000; i++)
        strbuf_puts(&reason, i % 500 ? "y" : " word ");
    for (i = 0; i < 3000; i++)
        strbuf_putc(&reason, 'z');
    evil.reason = reason.data;
    base_report(&r, DSN_REPORT_FAILED);
    r.rcpt = &evil;
    r.rcpt_count = 1;
    /* The returned message holds the boundary the report would pick first. */
    strbuf_printf(&orig, "Subject: x\n\n--%s.%lld/mail.example.com\n", r.new_queue_id,
                  (long long) r.now);
    r.original = orig.data;
    r.original_len = orig.len;
    dsn_report_compose(&r, &out);
    assert_structure(out.data);
    assert_lacks(out.data, "Bcc: victim@example.com");
    assert_null(strstr(out.data, "\r"));
    boundary_of(out.data, b, sizeof(b));
    assert_null(strstr(orig.data, b));
    /* Folded lines of a field start with white space. */
    assert_non_null(strstr(out.data, "Diagnostic-Code: X-Petrel; bad  Bcc: victim@example.com"));
    strbuf_release(&out);
    strbuf_release(&reason);
    strbuf_release(&orig);
}

static void test_8bit_and_smtputf8(void **state)
{
    struct dsn_report_rcpt u = {"j\xc3\xb6rg@example.com", "", "", "failed", "5.1.1", "local",
        "unknown user", 0};
    struct dsn_report r;
    struct strbuf out;

    (void) state;
    strbuf_init(&out, 1024, 0);
    base_report(&r, DSN_REPORT_FAILED);
    assert_int_equal(dsn_report_compose(&r, &out), 0);
    assert_null(strstr(out.data, "Content-Transfer-Encoding"));
    r.rcpt = &u;
    r.rcpt_count = 1;
    r.smtputf8 = 1;
    assert_int_equal(dsn_report_compose(&r, &out), 1);
    assert_structure(out.data);
    assert_has(out.data, "Content-Type: text/plain; charset=utf-8");
    assert_has(out.data, "Final-Recipient: utf-8; j\xc3\xb6rg@example.com");
    assert_has(out.data, "Content-Type: message/global-delivery-status");
    assert_has(out.data, "Content-Type: message/global");
    assert_has(out.data, "Content-Transfer-Encoding: 8bit");
    /* Without SMTPUTF8 the type stays rfc822. */
    r.smtputf8 = 0;
    assert_int_equal(dsn_report_compose(&r, &out), 1);
    assert_has(out.data, "Final-Recipient: rfc822; j\xc3\xb6rg@example.com");
    /* Unavailable message: a placeholder, the structure stays whole. */
    r.original = NULL;
    r.original_len = 0;
    dsn_report_compose(&r, &out);
    assert_structure(out.data);
    assert_has(out.data, "    (the message is no longer available)");
    strbuf_release(&out);
}

static void test_omitted_and_durations(void **state)
{
    struct dsn_report r;
    struct strbuf out;

    (void) state;
    strbuf_init(&out, 1024, 0);
    base_report(&r, DSN_REPORT_DELAYED);
    r.rcpt_omitted = 12;
    r.delay_warning_time = 90;
    r.maximal_queue_lifetime = 7200;
    dsn_report_compose(&r, &out);
    assert_has(out.data, "(12 more recipients are not listed here)");
    assert_has(out.data, "Your message could not be delivered for more than 90 second(s).");
    assert_has(out.data, "It will be retried until it is 2 hour(s) old.");
    strbuf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_report),
        cmocka_unit_test(test_delay_and_success),
        cmocka_unit_test(test_postmaster_copy),
        cmocka_unit_test(test_hostile_values),
        cmocka_unit_test(test_8bit_and_smtputf8),
        cmocka_unit_test(test_omitted_and_durations),
    };

    return cmocka_run_group_tests(tests, 0, 0);
}
