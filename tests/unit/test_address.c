/*
 * test_address.c - RFC 5321 path parsing, table-driven: valid paths and their
 * internal form and consumed length, invalid ones and their reason, every
 * limit at its value and one over, UTF-8 with and without SMTPUTF8, quoting
 * round trips, and the domain and extension helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "address.h"
#include "strbuf.h"

#define U8 ADDRESS_FLAG_SMTPUTF8
#define EMPTY ADDRESS_FLAG_EMPTY_OK
#define BARE ADDRESS_FLAG_NO_BRACKETS_OK

struct good {
    const char *text;
    int flags;
    const char *internal;
    size_t used;                /* 0: all of text */
};

static const struct good good[] = {
    {"<user@example.com>", 0, "user@example.com", 0},
    {"<User.Name+tag@Sub.Example.COM>", 0, "User.Name+tag@Sub.Example.COM", 0},
    {"<!#$%&'*+-/=?^_`{|}~@example.com>", 0, "!#$%&'*+-/=?^_`{|}~@example.com", 0},
    {"<a@b.c> SIZE=100", 0, "a@b.c", 7},
    {"<>", EMPTY, "", 0},
    {"<> BODY=8BITMIME", EMPTY, "", 2},
    {"<postmaster>", 0, "postmaster", 0},
    {"<\"john doe\"@example.com>", 0, "john doe@example.com", 0},
    {"<\"a\\\"b\\\\c\"@example.com>", 0, "a\"b\\c@example.com", 0},
    {"<\"\\a\"@example.com>", 0, "a@example.com", 0},
    {"<\"a@b\"@example.com>", 0, "a@b@example.com", 0},
    {"<\"a..b.\"@example.com>", 0, "a..b.@example.com", 0},
    {"<@relay.example,@[192.0.2.1]:user@example.com>", 0, "user@example.com", 0},
    {"<user@[192.0.2.1]>", 0, "user@[192.0.2.1]", 0},
    {"<user@[IPv6:2001:db8::1]>", 0, "user@[IPv6:2001:db8::1]", 0},
    {"<user@[ipv6:::ffff:192.0.2.1]>", 0, "user@[ipv6:::ffff:192.0.2.1]", 0},
    {"<user@x-y.3com.example>", 0, "user@x-y.3com.example", 0},
    {"<user@localhost>", 0, "user@localhost", 0},
    {"user@example.com", BARE, "user@example.com", 0},
    {"user@example.com SIZE=1", BARE, "user@example.com", 16},
    {"<user@example.com>", BARE, "user@example.com", 0},
    {"<δοκιμή@παράδειγμα.δοκιμή>", U8, "δοκιμή@παράδειγμα.δοκιμή", 0},
    {"<\"ü x\"@example.com>", U8, "ü x@example.com", 0},
    {"<\xf0\x9f\x93\xa7@example.com>", U8, "\xf0\x9f\x93\xa7@example.com", 0},
};

struct bad {
    const char *text;
    int flags;
    const char *reason;         /* a substring of the reason */
};

static const struct bad bad[] = {
    {"", 0, "missing \"<\""},
    {"", BARE, "empty address"},
    {"user@example.com", 0, "missing \"<\""},
    {"<>", 0, "empty address not allowed"},
    {"<user@example.com", 0, "missing \">\""},
    {"<user@example.com x>", 0, "bad character"},
    {"<user@@example.com>", 0, "empty domain"},
    {"<user@>", 0, "empty domain"},
    {"<@example.com>", 0, "source route"},
    {"<@example.com:>", 0, "empty local part"},
    {"<\"\"@example.com>", 0, "empty local part"},
    {"<\"\">", 0, "empty local part"},
    {"<\"a@b\">", 0, "quoted '@'"},
    {"<.user@example.com>", 0, "empty part"},
    {"<user.@example.com>", 0, "ends in a dot"},
    {"<us..er@example.com>", 0, "empty part"},
    {"<us er@example.com>", 0, "bad character"},
    {"<us\\er@example.com>", 0, "bad character"},
    {"<\"unterminated@example.com>", 0, "unterminated"},
    {"<\"a\\\x01\"@example.com>", 0, "quoted pair"},
    {"<\"a\tb\"@example.com>", 0, "control character"},
    {"<user@example..com>", 0, "empty label"},
    {"<user@example.com.>", 0, "ends in a dot"},
    {"<user@-example.com>", 0, "starts with a hyphen"},
    {"<user@example-.com>", 0, "ends in a hyphen"},
    {"<user@exam_ple.com>", 0, "bad character"},
    {"<user@192.0.2.1>", 0, "brackets"},
    {"<user@12345>", 0, "numeric domain"},
    {"<user@[192.0.2.256]>", 0, "address literal"},
    {"<user@[192.0.2]>", 0, "address literal"},
    {"<user@[1.2.3.4.5]>", 0, "address literal"},
    {"<user@[]>", 0, "address literal"},
    {"<user@[IPv6:2001:db8::g]>", 0, "IPv6"},
    {"<user@[IPv6:]>", 0, "address literal"},
    {"<user@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, "IPv6"},
    {"<user@[tag:general]>", 0, "address literal"},
    {"<user@[192.0.2.1>", 0, "unterminated address literal"},
    {"<@a.example,b.example:user@example.com>", 0, "source route"},
    {"<@a.example,@b.example user@example.com>", 0, "source route"},
    {"<@a.example", 0, "unterminated source route"},
    {"<üser@example.com>", 0, "SMTPUTF8"},
    {"<user@exämple.com>", 0, "SMTPUTF8"},
    {"<\"ü\"@example.com>", 0, "SMTPUTF8"},
    {"<\xc0\xaf@example.com>", U8, "malformed UTF-8"},            /* overlong '/' */
    {"<\xed\xa0\x80@example.com>", U8, "malformed UTF-8"},        /* surrogate */
    {"<\xf4\x90\x80\x80@example.com>", U8, "malformed UTF-8"},    /* > U+10FFFF */
    {"<\xe2\x82@example.com>", U8, "malformed UTF-8"},            /* cut short */
    {"<\x80@example.com>", U8, "malformed UTF-8"},
    {"a@b.c>", BARE, "bad character"},
};

static void parse_ok(const struct good *g)
{
    struct strbuf out, why;
    size_t used = 12345, want = g->used ? g->used : strlen(g->text);

    strbuf_init(&out, 64, 1024);
    strbuf_init(&why, 64, 1024);
    if (address_parse_path(g->text, strlen(g->text), g->flags, &out, &used, &why) < 0)
        fail_msg("%s: got error \"%s\", want \"%s\"", g->text, why.data, g->internal);
    if (strcmp(out.data, g->internal) != 0 || used != want)
        fail_msg("%s: got \"%s\" used %zu, want \"%s\" used %zu", g->text, out.data, used,
                 g->internal, want);
    strbuf_release(&out);
    strbuf_release(&why);
}

static void parse_bad(const char *text, size_t len, int flags, const char *reason)
{
    struct strbuf out, why;
    size_t used = 12345;

    strbuf_init(&out, 64, 1024);
    strbuf_init(&why, 64, 1024);
    strbuf_set(&out, "stale");
    if (address_parse_path(text, len, flags, &out, &used, &why) == 0)
        fail_msg("%.80s: got \"%s\", want error \"%s\"", text, out.data, reason);
    if (strstr(why.data, reason) == 0)
        fail_msg("%.80s: got reason \"%s\", want \"%s\"", text, why.data, reason);
    assert_int_equal(used, 12345);
    assert_string_equal(out.data, "");
    strbuf_release(&out);
    strbuf_release(&why);
}

static void test_valid_paths(void **state)
{
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        parse_ok(&good[i]);
}

static void test_invalid_paths(void **state)
{
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        parse_bad(bad[i].text, strlen(bad[i].text), bad[i].flags, bad[i].reason);
}

/* Every proper prefix of a valid path fails; nothing past len is read. */
static void test_prefixes_fail(void **state)
{
    const char *text = "<@r.example:\"a b\"@[IPv6:2001:db8::1]>";
    struct strbuf out, why;
    size_t cut, used;
    char *copy;

    (void) state;
    strbuf_init(&out, 64, 1024);
    strbuf_init(&why, 64, 1024);
    for (cut = 0; cut < strlen(text); cut++) {
        copy = malloc(cut ? cut : 1);
        memcpy(copy, text, cut);
        if (address_parse_path(copy, cut, 0, &out, &used, &why) == 0)
            fail_msg("prefix of %zu bytes accepted as \"%s\"", cut, out.data);
        free(copy);
    }
    strbuf_release(&out);
    strbuf_release(&why);
}

/* Builds "<" local "@" domain ">" with the given part lengths. */
static char *make_path(size_t local, size_t label, size_t labels)
{
    struct strbuf sb;
    char *p;
    size_t i;

    strbuf_init(&sb, 64, STRBUF_UNLIMITED);
    strbuf_putc(&sb, '<');
    for (i = 0; i < local; i++)
        strbuf_putc(&sb, 'l');
    strbuf_putc(&sb, '@');
    for (i = 0; i < labels; i++) {
        size_t k;

        if (i)
            strbuf_putc(&sb, '.');
        for (k = 0; k < label; k++)
            strbuf_putc(&sb, 'd');
    }
    strbuf_putc(&sb, '>');
    p = strbuf_steal(&sb);
    strbuf_release(&sb);
    return p;
}

/* Builds "<@r...,@r...:a@b.c>" of exactly total bytes, labels at most 45 bytes. */
static char *make_route_path(size_t total)
{
    struct strbuf sb;
    char *p;
    size_t need = total - 1 - strlen(":a@b.c>"), k;

    strbuf_init(&sb, 600, STRBUF_UNLIMITED);
    strbuf_putc(&sb, '<');
    strbuf_putc(&sb, '@');
    for (k = 0; k < 40; k++)
        strbuf_putc(&sb, 'r');
    need -= 41;
    while (need >= 48) {
        strbuf_puts(&sb, ",@");
        for (k = 0; k < 40; k++)
            strbuf_putc(&sb, 'r');
        need -= 42;
    }
    strbuf_puts(&sb, ",@");
    for (k = 0; k < need - 2; k++)
        strbuf_putc(&sb, 'r');
    strbuf_puts(&sb, ":a@b.c>");
    assert_int_equal(sb.len, total);
    p = strbuf_steal(&sb);
    strbuf_release(&sb);
    return p;
}

static void test_limits(void **state)
{
    struct good g = {0, 0, 0, 0};
    struct strbuf route;
    char *p, *want;
    size_t i;

    (void) state;
    /* Local part: 64 bytes, then 65. */
    p = make_path(ADDRESS_MAX_LOCAL, 3, 2);
    g.text = p;
    want = strndup(p + 1, strlen(p) - 2);
    g.internal = want;
    parse_ok(&g);
    free(p);
    free(want);
    p = make_path(ADDRESS_MAX_LOCAL + 1, 3, 2);
    parse_bad(p, strlen(p), 0, "local part longer than 64");
    free(p);
    /* A quoted local part counts its quotes: 62 inside, then 63. */
    parse_ok(&(struct good) {"<\"" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
             "\"@x.example>", 0,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x.example", 0});
    parse_bad("<\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"@x.example>",
              77, 0, "local part longer than 64");
    /* Label: 63, then 64. */
    p = make_path(1, 63, 2);
    g.text = p;
    want = strndup(p + 1, strlen(p) - 2);
    g.internal = want;
    parse_ok(&g);
    free(p);
    free(want);
    p = make_path(1, 64, 2);
    parse_bad(p, strlen(p), 0, "label longer than 63");
    free(p);
    /* Domain: 255 (four labels of 63 and 3 dots), then 256. */
    p = make_path(1, 63, 4);
    assert_int_equal(strlen(p), 1 + 1 + 1 + 255 + 1);
    g.text = p;
    want = strndup(p + 1, strlen(p) - 2);
    g.internal = want;
    parse_ok(&g);
    free(p);
    free(want);
    p = make_path(1, 63, 4);
    p = realloc(p, strlen(p) + 3);
    memmove(p + strlen(p) - 1, "d>", 3);  /* the last label becomes 64 bytes */
    parse_bad(p, strlen(p), 0, "longer than");
    free(p);
    p = make_path(1, 62, 5);
    parse_bad(p, strlen(p), 0, "domain longer than 255");
    free(p);
    /* Path: 512 bytes with a source route, then 513. */
    strbuf_init(&route, 600, STRBUF_UNLIMITED);
    strbuf_puts(&route, "<@");
    for (i = 0; i < 512 - strlen("<@") - strlen(":a@b.c>"); i++)
        strbuf_putc(&route, 'r');
    strbuf_puts(&route, ":a@b.c>");
    assert_int_equal(route.len, 512);
    parse_bad(route.data, route.len, 0, "label longer");  /* one long label: too long */
    p = make_route_path(512);
    g.text = p;
    g.internal = "a@b.c";
    parse_ok(&g);
    free(p);
    p = make_route_path(513);
    parse_bad(p, strlen(p), 0, "longer than 512");
    free(p);
    /* A very long route is refused without scanning it all. */
    strbuf_reset(&route);
    for (i = 0; i < 100000; i++)
        strbuf_puts(&route, i ? ",@r" : "<@r");
    parse_bad(route.data, route.len, 0, "longer than 512");
    strbuf_release(&route);
}

static void test_output_limit(void **state)
{
    struct strbuf out, why;
    size_t used;

    (void) state;
    strbuf_init(&out, 4, 8);
    strbuf_init(&why, 64, 1024);
    assert_int_equal(address_parse_path("<user@example.com>", 18, 0, &out, &used, &why), -1);
    assert_non_null(strstr(why.data, "buffer"));
    assert_int_equal(address_parse_path("<a@b.cd>", 8, 0, &out, &used, &why), 0);
    assert_string_equal(out.data, "a@b.cd");
    strbuf_release(&out);
    strbuf_release(&why);
}

struct quote {
    const char *internal;
    const char *external;
};

static const struct quote quotes[] = {
    {"user@example.com", "user@example.com"},
    {"john doe@example.com", "\"john doe\"@example.com"},
    {"a\"b\\c@example.com", "\"a\\\"b\\\\c\"@example.com"},
    {"a@b@example.com", "\"a@b\"@example.com"},
    {".a@example.com", "\".a\"@example.com"},
    {"a.@example.com", "\"a.\"@example.com"},
    {"a..b@example.com", "\"a..b\"@example.com"},
    {"a.b@example.com", "a.b@example.com"},
    {"postmaster", "postmaster"},
    {"x y", "\"x y\""},
    {"ü@example.com", "ü@example.com"},
    {"", ""},
};

static void test_quote_round_trip(void **state)
{
    struct strbuf ext, path, back, why;
    size_t i, used;

    (void) state;
    strbuf_init(&ext, 64, 1024);
    strbuf_init(&path, 64, 1024);
    strbuf_init(&back, 64, 1024);
    strbuf_init(&why, 64, 1024);
    for (i = 0; i < sizeof(quotes) / sizeof(quotes[0]); i++) {
        strbuf_set(&ext, "prefix:");
        address_quote(quotes[i].internal, &ext);
        if (strcmp(ext.data + 7, quotes[i].external) != 0)
            fail_msg("quote \"%s\": got %s, want %s", quotes[i].internal, ext.data + 7,
                     quotes[i].external);
        strbuf_reset(&path);
        strbuf_printf(&path, "<%s>", ext.data + 7);
        if (address_parse_path(path.data, path.len, U8 | EMPTY, &back, &used, &why) < 0)
            fail_msg("%s: %s", path.data, why.data);
        assert_string_equal(back.data, quotes[i].internal);
        assert_int_equal(used, path.len);
    }
    /* And every valid path of the table survives parse, quote, parse. */
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(address_parse_path(good[i].text, strlen(good[i].text), good[i].flags,
                                            &back, &used, &why), 0);
        strbuf_set(&path, "<");
        address_quote(back.data, &path);
        strbuf_putc(&path, '>');
        assert_int_equal(address_parse_path(path.data, path.len, good[i].flags | EMPTY,
                                            &ext, &used, &why), 0);
        assert_string_equal(ext.data, back.data);
    }
    strbuf_release(&ext);
    strbuf_release(&path);
    strbuf_release(&back);
    strbuf_release(&why);
}

static void test_domain_helpers(void **state)
{
    static const struct {
        const char *domain;
        int flags, valid, fqdn;
    } t[] = {
        {"example.com", 0, 1, 1},
        {"localhost", 0, 1, 0},
        {"[192.0.2.1]", 0, 1, 1},
        {"[IPv6:::1]", 0, 1, 1},
        {"[192.0.2.1]x", 0, 0, 1},
        {"", 0, 0, 0},
        {"exa mple.com", 0, 0, 1},
        {"example.com.", 0, 0, 1},
        {"παράδειγμα.δοκιμή", 0, 0, 1},
        {"παράδειγμα.δοκιμή", U8, 1, 1},
        {"1.2.3.4", 0, 0, 1},
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (address_domain_valid(t[i].domain, t[i].flags) != t[i].valid)
            fail_msg("address_domain_valid(%s): want %d", t[i].domain, t[i].valid);
        if (address_domain_fqdn(t[i].domain) != t[i].fqdn)
            fail_msg("address_domain_fqdn(%s): want %d", t[i].domain, t[i].fqdn);
    }
    assert_string_equal(address_domain("a@b@c.example"), "c.example");
    assert_null(address_domain("postmaster"));
    assert_true(address_has_8bit("a\x80"));
    assert_false(address_has_8bit("plain ascii ~"));
}

static void test_split_extension(void **state)
{
    static const struct {
        const char *addr, *delims;
        int split;
        const char *base, *ext;
    } t[] = {
        {"user+ext@example.com", "+", 1, "user@example.com", "ext"},
        {"user-ext+more@example.com", "+-", 1, "user@example.com", "ext+more"},
        {"user+@example.com", "+", 1, "user@example.com", ""},
        {"user@example.com", "+", 0, "user@example.com", ""},
        {"+user@example.com", "+", 0, "+user@example.com", ""},
        {"user+ext", "+", 1, "user", "ext"},
        {"owner-list@example.com", "-", 0, "owner-list@example.com", ""},
        {"list-request@example.com", "-", 0, "list-request@example.com", ""},
        {"owner-list@example.com", "+", 0, "owner-list@example.com", ""},
        {"a-b@example.com", "-", 1, "a@example.com", "b"},
        {"user+ext@example.com", "", 0, "user+ext@example.com", ""},
        {"us@er+x@example.com", "+", 1, "us@er@example.com", "x"},
    };
    struct strbuf base, ext;
    size_t i;

    (void) state;
    strbuf_init(&base, 64, 1024);
    strbuf_init(&ext, 64, 1024);
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int got = address_split_extension(t[i].addr, t[i].delims, &base, &ext);

        if (got != t[i].split || strcmp(base.data, t[i].base) || strcmp(ext.data, t[i].ext))
            fail_msg("split(%s, %s): got %d %s %s, want %d %s %s", t[i].addr, t[i].delims,
                     got, base.data, ext.data, t[i].split, t[i].base, t[i].ext);
    }
    assert_int_equal(address_split_extension("a+b@c", 0, &base, &ext), 0);
    strbuf_release(&base);
    strbuf_release(&ext);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_paths),
        cmocka_unit_test(test_invalid_paths),
        cmocka_unit_test(test_prefixes_fail),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_output_limit),
        cmocka_unit_test(test_quote_round_trip),
        cmocka_unit_test(test_domain_helpers),
        cmocka_unit_test(test_split_extension),
    };

    return cmocka_run_group_tests(tests, 0, 0);
}
