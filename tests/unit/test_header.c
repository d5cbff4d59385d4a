/*
 * test_header.c - RFC 5322 headers: name recognition, logical header assembly
 * with folding, the size limit, limit+1 and a split at every byte, the end of
 * headers (empty line or body line), known names, and address-list extraction
 * (display names, comments, quoted strings, groups, routes, token limit).
 * Expected results are written out by hand from RFC 5322's grammar.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "header.h"
#include "strbuf.h"

static void test_name_len(void **state)
{
    static const struct {
        const char *line;
        size_t want;
    } cases[] = {
        {"Subject: hi", 7},
        {"Subject:", 7},
        {"Subject :x", 7},              /* obsolete white space before the colon */
        {"X-A\t\t: y", 3},
        {": no name", 0},
        {"No colon here", 0},
        {"Sub ject: x", 0},
        {" Subject: x", 0},
        {"", 0},
        {"a:", 1},
        {"\x80x: y", 0},                /* 8-bit is not ftext */
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t got = header_name_len(cases[i].line, strlen(cases[i].line));

        if (got != cases[i].want)
            fail_msg("%s: got %zu want %zu", cases[i].line, got, cases[i].want);
    }
    /* The length bounds the scan: the colon past it does not count. */
    assert_int_equal(header_name_len("Subject: x", 7), 0);
}

static void test_lookup_and_split(void **state)
{
    const struct header_info *h;
    struct header_field f;
    const char *hdr = "Message-Id :  <a@b>\n\tmore";

    h = header_lookup("message-id", 10);
    assert_non_null(h);
    assert_int_equal(h->id, HEADER_MESSAGE_ID);
    assert_non_null(header_lookup("BCC", 3));
    assert_int_equal(header_lookup("Bcc", 3)->flags & HEADER_FLAG_RECIPIENT,
                     HEADER_FLAG_RECIPIENT);
    assert_int_equal(header_lookup("Resent-From", 11)->flags,
                     HEADER_FLAG_SENDER | HEADER_FLAG_RESENT);
    assert_null(header_lookup("Bc", 2));
    assert_null(header_lookup("X-Spam", 6));

    assert_int_equal(header_split(hdr, strlen(hdr), &f), 0);
    assert_int_equal(f.name_len, 10);
    assert_memory_equal(f.name, "Message-Id", 10);
    assert_int_equal(f.value_len, strlen("<a@b>\n\tmore"));
    assert_memory_equal(f.value, "<a@b>\n\tmore", f.value_len);
    assert_int_equal(header_split("Empty:", 6, &f), 0);
    assert_int_equal(f.value_len, 0);
    assert_int_equal(header_split("body text", 9, &f), -1);
}

/* Collects emitted headers as "text|truncated;" for comparison. */
static void collect(void *ctx, const char *text, size_t len, int truncated)
{
    struct strbuf *out = ctx;

    assert_int_equal(strbuf_append(out, text, len), 0);
    assert_int_equal(strbuf_printf(out, "|%d;", truncated), 0);
}

/* Feeds text (LF-terminated lines) and returns how the headers ended. */
static enum header_result feed(struct header_parser *p, const char *text, size_t *body_at)
{
    const char *line = text, *nl;
    enum header_result r = HEADER_MORE;

    while (*line && (nl = strchr(line, '\n')) != NULL) {
        r = header_parser_line(p, line, (size_t) (nl - line), 0);
        if (r != HEADER_MORE) {
            *body_at = (size_t) (r == HEADER_END ? nl + 1 - text : line - text);
            return r;
        }
        line = nl + 1;
    }
    header_parser_end(p);
    *body_at = (size_t) (line - text);
    return r;
}

static void test_parser_cases(void **state)
{
    static const struct {
        const char *in;
        enum header_result end;
        const char *want;
        size_t body_at;
    } cases[] = {
        {"A: 1\nB: 2\n\nbody\n", HEADER_END, "A: 1|0;B: 2|0;", 11},
        {"A: 1\n\tfolded\n  twice\nB: 2\n\n", HEADER_END, "A: 1\n\tfolded\n  twice|0;B: 2|0;", 27},
        {"A: 1\nnot a header\n", HEADER_BODY, "A: 1|0;", 5},
        {" leading space\n", HEADER_BODY, "", 0},
        {"\nbody\n", HEADER_END, "", 1},
        {"A: 1\n", HEADER_MORE, "A: 1|0;", 5},
        {"", HEADER_MORE, "", 0},
    };
    struct strbuf out;
    size_t i, body_at;

    strbuf_init(&out, 64, 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct header_parser *p = header_parser_new(1000, collect, &out);
        enum header_result r;

        strbuf_reset(&out);
        r = feed(p, cases[i].in, &body_at);
        if (r != cases[i].end || strcmp(out.data, cases[i].want) != 0
            || body_at != cases[i].body_at)
            fail_msg("case %zu: got end %d \"%s\" body at %zu, want %d \"%s\" %zu", i, r,
                     out.data, body_at, cases[i].end, cases[i].want, cases[i].body_at);
        header_parser_free(&p);
        assert_null(p);
    }
    strbuf_release(&out);
}

static void test_parser_limit(void **state)
{
    struct strbuf out;
    struct header_parser *p;
    size_t body_at;

    strbuf_init(&out, 64, 0);
    /* Exactly at the limit (10 bytes): kept whole. */
    p = header_parser_new(10, collect, &out);
    assert_int_equal(feed(p, "Subj: 1234\n\n", &body_at), HEADER_END);
    assert_string_equal(out.data, "Subj: 1234|0;");
    /* One byte over: the excess is dropped and flagged, the parser goes on. */
    header_parser_reset(p);
    strbuf_reset(&out);
    assert_int_equal(feed(p, "Subj: 12345\nB: 1\n\n", &body_at), HEADER_END);
    assert_string_equal(out.data, "Subj: 1234|1;B: 1|0;");
    /* Continuation lines past the limit are dropped too. */
    header_parser_reset(p);
    strbuf_reset(&out);
    assert_int_equal(feed(p, "S: 1\n 2345678\n more\n\n", &body_at), HEADER_END);
    assert_string_equal(out.data, "S: 1\n 2345|1;");
    assert_int_equal(header_parser_count(p), 1);
    header_parser_free(&p);
    strbuf_release(&out);
}

/* The same input cut into pieces at every byte gives the same headers. The
 * first piece of a physical line must hold its name and colon (header.h). */
static void test_parser_split_every_byte(void **state)
{
    const char *in = "From: a@b\nSubject: x\n y\n\nbody";
    const char *want = "From: a@b|0;Subject: x\n y|0;";
    size_t inlen = strlen(in), cut;
    struct strbuf out;

    strbuf_init(&out, 64, 0);
    for (cut = 1; cut < inlen; cut++) {
        struct header_parser *p = header_parser_new(100, collect, &out);
        enum header_result r = HEADER_MORE;
        size_t pos = 0;

        strbuf_reset(&out);
        /* Physical lines, each delivered in pieces of at most cut bytes. */
        while (pos < inlen && r == HEADER_MORE) {
            const char *nl = memchr(in + pos, '\n', inlen - pos);
            size_t end = nl ? (size_t) (nl - in) : inlen, at = pos;

            const char *colon = memchr(in + pos, ':', end - pos);
            size_t first = colon ? (size_t) (colon - in) + 1 - pos : 0;

            do {
                size_t step = at == pos && first > cut ? first : cut;
                size_t n = end - at > step ? step : end - at;
                int partial = at + n < end;

                r = header_parser_line(p, in + at, n, partial);
                at += n;
            } while (at < end && r == HEADER_MORE);
            pos = end + 1;
        }
        assert_int_equal(r, HEADER_END);
        if (strcmp(out.data, want) != 0)
            fail_msg("cut %zu: got \"%s\"", cut, out.data);
        header_parser_free(&p);
    }
    strbuf_release(&out);
}

static int add_addr(void *ctx, const char *addr)
{
    struct strbuf *out = ctx;

    assert_int_equal(strbuf_printf(out, "%s;", addr), 0);
    return 0;
}

static void test_addr_list(void **state)
{
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"a@b.c", "a@b.c;"},
        {"a@b.c, d@e.f", "a@b.c;d@e.f;"},
        {"John Doe <john@example.com>", "john@example.com;"},
        {"\"Doe, John\" <john@example.com>, x@y", "john@example.com;x@y;"},
        {"\"john doe\"@example.com", "john doe@example.com;"},
        {"\"a\\\"b\"@c", "a\"b@c;"},
        {"a@b (comment, with (nested) parts), c@d", "a@b;c@d;"},
        {"(leading) a (inner) @ (x) b.c", "a@b.c;"},
        {"Group: a@b, c@d;, e@f", "a@b;c@d;e@f;"},
        {"undisclosed-recipients:;", ""},
        {"<@r1.net,@r2.net:user@dom>", "user@dom;"},
        {"<user@[10.0.0.1]>", "user@[10.0.0.1];"},
        {"user", "user;"},
        {"<>, , ,a@b", "a@b;"},
        {"A <a@b> trailing words, c@d", "a@b;c@d;"},
        {"a@b,\n\tc@d", "a@b;c@d;"},
        {"(unterminated comment a@b", ""},
        {"\"unterminated a@b", "unterminated a@b;"},
        {"", ""},
    };
    struct strbuf out;
    size_t i;

    strbuf_init(&out, 64, 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strbuf_reset(&out);
        header_addr_list(cases[i].in, strlen(cases[i].in), 1000, 512, add_addr, &out);
        if (strcmp(out.data, cases[i].want) != 0)
            fail_msg("\"%s\": got \"%s\" want \"%s\"", cases[i].in, out.data, cases[i].want);
    }
    strbuf_release(&out);
}

static void test_addr_limits(void **state)
{
    struct strbuf out;
    const char *list = "a@b, c@d, e@f";         /* 11 tokens: 3 addresses x 3, 2 commas */

    strbuf_init(&out, 64, 0);
    assert_int_equal(header_addr_list(list, strlen(list), 11, 512, add_addr, &out), 3);
    assert_string_equal(out.data, "a@b;c@d;e@f;");
    /* One token short: the cut-off address is not reported. */
    strbuf_reset(&out);
    assert_int_equal(header_addr_list(list, strlen(list), 10, 512, add_addr, &out), 2);
    assert_string_equal(out.data, "a@b;c@d;");
    /* Address length: 5 bytes fit a limit of 5, not of 4. */
    strbuf_reset(&out);
    assert_int_equal(header_addr_list("ab@cd, x@y", 10, 100, 5, add_addr, &out), 2);
    strbuf_reset(&out);
    assert_int_equal(header_addr_list("ab@cd, x@y", 10, 100, 4, add_addr, &out), 1);
    assert_string_equal(out.data, "x@y;");
    /* An embedded NUL never reaches the callback as a shortened address. */
    strbuf_reset(&out);
    assert_int_equal(header_addr_list("\"a\0b\"@c, d@e", 12, 100, 100, add_addr, &out), 1);
    assert_string_equal(out.data, "d@e;");
    strbuf_release(&out);
}

static int stop_first(void *ctx, const char *addr)
{
    (*(int *) ctx)++;
    return 1;
}

static void test_addr_stop(void **state)
{
    int calls = 0;

    assert_int_equal(header_addr_list("a@b, c@d", 8, 100, 100, stop_first, &calls), 1);
    assert_int_equal(calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_len),
        cmocka_unit_test(test_lookup_and_split),
        cmocka_unit_test(test_parser_cases),
        cmocka_unit_test(test_parser_limit),
        cmocka_unit_test(test_parser_split_every_byte),
        cmocka_unit_test(test_addr_list),
        cmocka_unit_test(test_addr_limits),
        cmocka_unit_test(test_addr_stop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
