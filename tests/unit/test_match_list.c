/*
 * test_match_list.c - host, domain and address lists: every pattern form,
 * negation, parent-domain styles, files, tables (found, missing, failing,
 * unavailable), networks of both families, and the errors of bad patterns.
 * Table-driven; each failure reports the list, the input, got and want.
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

#include "config.h"
#include "dict.h"
#include "dict_impl.h"
#include "match_list.h"
#include "params.h"
#include "strbuf.h"

static char test_dir[] = "/tmp/test_match_list.XXXXXX";

static void write_file(const char *name, const char *text)
{
    char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* "fail:" finds nothing and reports a temporary failure for every key. */
static const char *fail_get(struct dict *d, const char *key)
{
    (void) key;
    d->error = DICT_ERR_RETRY;
    return NULL;
}

static struct dict *fail_open(const char *spec, const char *name, int flags, struct strbuf *err)
{
    struct dict *d;

    (void) name;
    (void) err;
    d = dict_alloc(sizeof(*d), spec, flags | DICT_FLAG_FIXED);
    d->get = fail_get;
    return d;
}

static int setup(void **state)
{
    (void) state;
    assert_non_null(mkdtemp(test_dir));
    write_file("main.cf", "");
    config_set_dir(test_dir);
    config_load();
    dict_register("fail", fail_open, NULL);
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];

    (void) state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", test_dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

struct host_case {
    const char *param;
    enum match_list_kind kind;
    const char *list;
    const char *name;           /* domain or host name; NULL for none */
    const char *addr;           /* NULL for none */
    int want;
};

static int run_case(const struct host_case *c, struct match_list *l)
{
    switch (c->kind) {
    case MATCH_LIST_DOMAIN:
        return match_list_domain(l, c->name);
    case MATCH_LIST_ADDR:
        return match_list_addr(l, c->addr);
    case MATCH_LIST_STRING:
        return match_list_string(l, c->name);
    case MATCH_LIST_NAMADR:
    default:
        return match_list_host(l, c->name, c->addr);
    }
}

static void run_cases(const struct host_case *cases, size_t n)
{
    struct strbuf err;
    size_t i;

    strbuf_init(&err, 128, STRBUF_UNLIMITED);
    for (i = 0; i < n; i++) {
        const struct host_case *c = cases + i;
        struct match_list *l;
        int got;

        strbuf_reset(&err);
        l = match_list_open(c->param, c->kind, c->list, &err);
        if (l == NULL)
            fail_msg("case %zu: \"%s\": open failed: %s", i, c->list, err.data);
        got = run_case(c, l);
        if (got != c->want)
            fail_msg("case %zu: %s = \"%s\" with name=%s addr=%s: got %d, want %d", i, c->param,
                     c->list, c->name ? c->name : "(null)", c->addr ? c->addr : "(null)", got,
                     c->want);
        match_list_free(&l);
        assert_null(l);
    }
    strbuf_release(&err);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_domains(void **state)
{
    /* relay_domains is in the default parent_domain_matches_subdomains, mydestination is not. */
    static const struct host_case cases[] = {
        {"mydestination", MATCH_LIST_DOMAIN, "example.com", "example.com", NULL, 1},
        {"mydestination", MATCH_LIST_DOMAIN, "example.com", "EXAMPLE.Com", NULL, 1},
        {"mydestination", MATCH_LIST_DOMAIN, "example.com", "example.com.", NULL, 1},
        {"mydestination", MATCH_LIST_DOMAIN, "Example.COM.", "example.com", NULL, 1},
        {"mydestination", MATCH_LIST_DOMAIN, "example.com", "a.example.com", NULL, 0},
        {"mydestination", MATCH_LIST_DOMAIN, "example.com", "xexample.com", NULL, 0},
        {"mydestination", MATCH_LIST_DOMAIN, ".example.com", "a.example.com", NULL, 1},
        {"mydestination", MATCH_LIST_DOMAIN, ".example.com", "example.com", NULL, 0},
        {"relay_domains", MATCH_LIST_DOMAIN, "example.com", "a.b.example.com", NULL, 1},
        {"relay_domains", MATCH_LIST_DOMAIN, "example.com", "badexample.com", NULL, 0},
        {"relay_domains", MATCH_LIST_DOMAIN, "example.com", "com", NULL, 0},
        {"relay_domains", MATCH_LIST_DOMAIN, "", "example.com", NULL, 0},
        {"relay_domains", MATCH_LIST_DOMAIN, "a.org,, b.org  c.org", "c.org", NULL, 1},
        {"relay_domains", MATCH_LIST_DOMAIN, "a.org\tb.org", "b.org", NULL, 1},
        {"relay_domains", MATCH_LIST_DOMAIN, "example.com", "", NULL, 0},
        {"relay_domains", MATCH_LIST_DOMAIN, "example.com", NULL, NULL, 0},
        /* Negation: the first match decides, a negated one says no. */
        {"relay_domains", MATCH_LIST_DOMAIN, "!bad.example.com, example.com",
         "bad.example.com", NULL, 0},
        {"relay_domains", MATCH_LIST_DOMAIN, "!bad.example.com, example.com",
         "x.bad.example.com", NULL, 0},
        {"relay_domains", MATCH_LIST_DOMAIN, "!bad.example.com, example.com",
         "good.example.com", NULL, 1},
        {"relay_domains", MATCH_LIST_DOMAIN, "example.com, !bad.example.com",
         "bad.example.com", NULL, 1},
        {"relay_domains", MATCH_LIST_DOMAIN, "!!example.com", "example.com", NULL, 1},
        /* Address literals match address patterns. */
        {"mydestination", MATCH_LIST_DOMAIN, "[192.0.2.1]", "[192.0.2.1]", NULL, 1},
        {"mydestination", MATCH_LIST_DOMAIN, "192.0.2.0/24", "[192.0.2.7]", NULL, 1},
        {"mydestination", MATCH_LIST_DOMAIN, "[2001:db8::1]", "[IPv6:2001:DB8::1]", NULL, 1},
        /* Tables: the name, then parents (style of the parameter), fixed tables only. */
        {"mydestination", MATCH_LIST_DOMAIN, "inline:{ example.org=x }", "example.org", NULL, 1},
        {"mydestination", MATCH_LIST_DOMAIN, "inline:{ example.org=x }", "EXAMPLE.ORG", NULL, 1},
        {"mydestination", MATCH_LIST_DOMAIN, "inline:{ example.org=x }", "a.example.org", NULL, 0},
        {"mydestination", MATCH_LIST_DOMAIN, "inline:{ .example.org=x }", "a.example.org", NULL, 1},
        {"relay_domains", MATCH_LIST_DOMAIN, "inline:{ example.org=x }", "a.example.org", NULL, 1},
        {"relay_domains", MATCH_LIST_DOMAIN, "!inline:{ a.example.org=x }, example.org",
         "a.example.org", NULL, 0},
        {"relay_domains", MATCH_LIST_DOMAIN, "proxy:inline:{ example.org=x }", "example.org",
         NULL, 1},
        /* Lookup failures are failures, not "no match"... */
        {"relay_domains", MATCH_LIST_DOMAIN, "fail:x, example.com", "example.com", NULL, -1},
        {"relay_domains", MATCH_LIST_DOMAIN, "hash:/nonexistent/table", "example.com", NULL, -1},
        /* ...unless an earlier pattern already decided. */
        {"relay_domains", MATCH_LIST_DOMAIN, "example.com, fail:x", "example.com", NULL, 1},
    };

    (void) state;
    run_cases(cases, N(cases));
}

static void test_addresses(void **state)
{
#define nets "127.0.0.0/8 [::1]/128 192.0.2.5, [2001:db8::]/32 10.1.0.0/16"
    static const struct host_case cases[] = {
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "127.1.2.3", 1},
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "::ffff:127.0.0.1", 1},
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "::1", 1},
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "::2", 0},
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "2001:db8:1::5", 1},
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "2001:db9::", 0},
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "192.0.2.5", 1},
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "192.0.2.6", 0},
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "10.1.255.255", 1},
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "10.2.0.0", 0},
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "128.0.0.1", 0},
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "not-an-address", 0},
        {"mynetworks", MATCH_LIST_ADDR, nets, NULL, "", 0},
        {"mynetworks", MATCH_LIST_ADDR, "[::ffff:127.0.0.0]/104", NULL, "127.9.9.9", 1},
        {"mynetworks", MATCH_LIST_ADDR, "0.0.0.0/0", NULL, "203.0.113.9", 1},
        {"mynetworks", MATCH_LIST_ADDR, "0.0.0.0/0", NULL, "2001:db8::1", 0},
        {"mynetworks", MATCH_LIST_ADDR, "[::]/0", NULL, "2001:db8::1", 1},
        {"mynetworks", MATCH_LIST_ADDR, "192.0.2.1/32", NULL, "192.0.2.1", 1},
        {"mynetworks", MATCH_LIST_ADDR, "!192.0.2.1 192.0.2.0/24", NULL, "192.0.2.1", 0},
        {"mynetworks", MATCH_LIST_ADDR, "!192.0.2.1 192.0.2.0/24", NULL, "192.0.2.2", 1},
        {"mynetworks", MATCH_LIST_ADDR, "inline:{ 10.9.8.7=ok }", NULL, "10.9.8.7", 1},
        {"mynetworks", MATCH_LIST_ADDR, "inline:{ 10.9.8.7=ok }", NULL, "10.9.8.6", 0},
        {"mynetworks", MATCH_LIST_ADDR, "fail:x", NULL, "10.9.8.6", -1},
        /* Host lists: names (parent style for debug_peer_list) and addresses. */
        {"debug_peer_list", MATCH_LIST_NAMADR, "example.com, 10.0.0.0/8", "mail.example.com",
         "192.0.2.1", 1},
        {"debug_peer_list", MATCH_LIST_NAMADR, "example.com, 10.0.0.0/8", "unknown",
         "10.1.1.1", 1},
        {"debug_peer_list", MATCH_LIST_NAMADR, "example.com, 10.0.0.0/8", "x.org", "11.0.0.1", 0},
        {"debug_peer_list", MATCH_LIST_NAMADR, "unknown", "unknown", "11.0.0.1", 0},
        {"debug_peer_list", MATCH_LIST_NAMADR, "inline:{ 11.0.0.1=x }", "x.org", "11.0.0.1", 1},
        {"debug_peer_list", MATCH_LIST_NAMADR, "inline:{ x.org=x }", "X.org", "11.0.0.1", 1},
        {"smtpd_client_event_limit_exceptions", MATCH_LIST_NAMADR, "example.com",
         "a.example.com", "1.2.3.4", 0},
        /* Plain words. */
        {"smtpd_log_access_permit_actions", MATCH_LIST_STRING, "permit_mynetworks, Foo",
         "foo", NULL, 1},
        {"smtpd_log_access_permit_actions", MATCH_LIST_STRING, "permit_mynetworks",
         "permit", NULL, 0},
        {"smtpd_log_access_permit_actions", MATCH_LIST_STRING, "a.b", "x.a.b", NULL, 0},
    };

    (void) state;
    run_cases(cases, N(cases));
}

static void test_bad_patterns(void **state)
{
    static const struct {
        enum match_list_kind kind;
        const char *list;
        const char *want;       /* substring of the error */
    } cases[] = {
        {MATCH_LIST_ADDR, "10.0.0.1/8", "non-null host address bits"},
        {MATCH_LIST_ADDR, "10.0.0.0/33", "bad net/mask"},
        {MATCH_LIST_ADDR, "10.0.0.0/", "bad net/mask"},
        {MATCH_LIST_ADDR, "10.0.0.0/-1", "bad net/mask"},
        {MATCH_LIST_ADDR, "10.0.0.0/8x", "bad net/mask"},
        {MATCH_LIST_ADDR, "[2001:db8::1]/32", "non-null host address bits"},
        {MATCH_LIST_ADDR, "[2001:db8::]/129", "bad net/mask"},
        {MATCH_LIST_ADDR, "example.com", "only addresses and networks"},
        {MATCH_LIST_ADDR, "[not.an.address]", "bad address pattern"},
        {MATCH_LIST_DOMAIN, "nosuchtype:/x", "unsupported dictionary type \"nosuchtype\""},
        {MATCH_LIST_DOMAIN, "inline:{ a=b", "unbalanced"},
        {MATCH_LIST_DOMAIN, "!", "empty pattern"},
        {MATCH_LIST_DOMAIN, "proxy:x", "bad table name"},
        {MATCH_LIST_DOMAIN, "proxy:proxy:inline:{a=b}", "bad table name"},
        {MATCH_LIST_DOMAIN, "/nonexistent/patterns", "open /nonexistent/patterns"},
    };
    struct strbuf err;
    size_t i;

    (void) state;
    strbuf_init(&err, 128, STRBUF_UNLIMITED);
    for (i = 0; i < N(cases); i++) {
        struct match_list *l;

        strbuf_reset(&err);
        l = match_list_open("mynetworks", cases[i].kind, cases[i].list, &err);
        if (l != NULL)
            fail_msg("\"%s\": opened, want error \"%s\"", cases[i].list, cases[i].want);
        if (strstr(err.data, cases[i].want) == NULL || strncmp(err.data, "mynetworks: ", 12))
            fail_msg("\"%s\": got error \"%s\", want \"%s\"", cases[i].list, err.data,
                     cases[i].want);
    }
    strbuf_release(&err);
}

static void test_files(void **state)
{
    char list[1024];
    struct strbuf err;
    struct match_list *l;

    (void) state;
    strbuf_init(&err, 128, STRBUF_UNLIMITED);
    write_file("domains", "# relay these\n!bad.example.com   # not this one\n"
               "example.com, example.net\n\nother.org\n");
    snprintf(list, sizeof(list), "first.org %s/domains last.org", test_dir);
    l = match_list_open("mydestination", MATCH_LIST_DOMAIN, list, &err);
    assert_non_null(l);
    assert_int_equal(match_list_domain(l, "first.org"), 1);
    assert_int_equal(match_list_domain(l, "example.net"), 1);
    assert_int_equal(match_list_domain(l, "other.org"), 1);
    assert_int_equal(match_list_domain(l, "bad.example.com"), 0);
    assert_int_equal(match_list_domain(l, "last.org"), 1);
    assert_int_equal(match_list_domain(l, "relay"), 0);
    match_list_free(&l);

    /* "!/file" inverts every pattern of the file, "!" inside it inverts back. */
    snprintf(list, sizeof(list), "!%s/domains, .", test_dir);
    l = match_list_open("mydestination", MATCH_LIST_DOMAIN, list, &err);
    assert_non_null(l);
    assert_int_equal(match_list_domain(l, "example.com"), 0);
    assert_int_equal(match_list_domain(l, "bad.example.com"), 1);
    match_list_free(&l);

    /* A file that includes itself stops at the depth limit. */
    snprintf(list, sizeof(list), "%s/loop", test_dir);
    write_file("loop", list);
    l = match_list_open("mydestination", MATCH_LIST_DOMAIN, list, &err);
    assert_null(l);
    assert_non_null(strstr(err.data, "nested more than"));

    strbuf_reset(&err);
    write_file("nets", "10.0.0.0/8\n!192.168.1.1\n192.168.0.0/16\n");
    snprintf(list, sizeof(list), "%s/nets", test_dir);
    l = match_list_open("mynetworks", MATCH_LIST_ADDR, list, &err);
    assert_non_null(l);
    assert_int_equal(match_list_addr(l, "10.20.30.40"), 1);
    assert_int_equal(match_list_addr(l, "192.168.1.1"), 0);
    assert_int_equal(match_list_addr(l, "192.168.1.2"), 1);
    match_list_free(&l);
    match_list_free(&l);        /* NULL is fine */

    /* A pattern table sees the full name only, never the parent domains. */
    write_file("re", "/^mail\\./ x\n");
    snprintf(list, sizeof(list), "regexp:%s/re", test_dir);
    l = match_list_open("relay_domains", MATCH_LIST_DOMAIN, list, &err);
    assert_non_null(l);
    assert_int_equal(match_list_domain(l, "mail.example.org"), 1);
    assert_int_equal(match_list_domain(l, "a.mail.example.org"), 0);
    match_list_free(&l);
    strbuf_release(&err);
}

static void test_parent_style_and_words(void **state)
{
    char text[] = "a, {b c} ,,d\te";
    char unbalanced[] = "a {b";
    char *cp = text, *w;
    const char *want[] = {"a", "{b c}", "d", "e"};
    size_t i = 0;
    int bad;

    (void) state;
    assert_int_equal(match_list_parent_style("relay_domains"), 1);
    assert_int_equal(match_list_parent_style("smtpd_access_maps"), 1);
    assert_int_equal(match_list_parent_style("mydestination"), 0);
    assert_int_equal(match_list_parent_style("relay"), 0);
    while ((w = match_list_next_word(&cp, &bad)) != NULL) {
        assert_true(i < N(want));
        assert_string_equal(w, want[i]);
        i++;
    }
    assert_int_equal(i, N(want));
    assert_int_equal(bad, 0);
    cp = unbalanced;
    assert_string_equal(match_list_next_word(&cp, &bad), "a");
    assert_null(match_list_next_word(&cp, &bad));
    assert_int_equal(bad, 1);
}

static void test_parse_addr(void **state)
{
    unsigned char a[16];
    int fam;

    (void) state;
    assert_int_equal(match_list_parse_addr("1.2.3.4", &fam, a), 0);
    assert_int_equal(fam, 4);
    assert_int_equal(a[0], 1);
    assert_int_equal(a[3], 4);
    assert_int_equal(match_list_parse_addr("[IPv6:::ffff:1.2.3.4]", &fam, a), 0);
    assert_int_equal(fam, 4);
    assert_int_equal(a[3], 4);
    assert_int_equal(match_list_parse_addr("[2001:db8::1]", &fam, a), 0);
    assert_int_equal(fam, 6);
    assert_int_equal(a[15], 1);
    assert_int_equal(match_list_parse_addr("1.2.3", &fam, a), -1);
    assert_int_equal(match_list_parse_addr("[]", &fam, a), -1);
    assert_int_equal(match_list_parse_addr("", &fam, a), -1);
    assert_int_equal(match_list_parse_addr("[1.2.3.4", &fam, a), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_parent_style_and_words),
        cmocka_unit_test(test_parse_addr),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
