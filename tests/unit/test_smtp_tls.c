/*
 * test_smtp_tls.c - the SMTP client's TLS policy: the global level,
 * smtp_tls_policy_maps lookups in Postfix's order (the nexthop as given, then
 * parent domains of a plain domain as ".example.org"), the attributes of an
 * entry, the main.cf defaults per level, the invalid entries that must defer,
 * and the cache key that keeps sessions of different requirements apart.
 * Built with smtp/smtp_tls.c itself; the expected values are written out by
 * hand from Postfix's documentation of smtp_tls_policy_maps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../smtp/smtp_tls.c"

#include "config.h"
#include "dict_impl.h"

/* Defined by smtp.c in the program. */
struct smtp_params smtp_par;

static char test_dir[] = "/tmp/test_smtp_tls.XXXXXX";
static int broken_fail;

/* "broken:" fails every lookup when broken_fail is set. */
static const char *broken_get(struct dict *d, const char *key)
{
    (void) key;
    if (broken_fail)
        d->error = DICT_ERR_RETRY;
    return NULL;
}

static struct dict *broken_open(const char *spec, const char *name, int flags,
                                struct strbuf *err)
{
    struct dict *d;

    (void) name;
    (void) err;
    d = dict_alloc(sizeof(*d), spec, flags | DICT_FLAG_FIXED);
    d->get = broken_get;
    return d;
}

static const char main_cf[] =
    "smtp_tls_security_level = may\n"
    "smtp_tls_mandatory_protocols = >=TLSv1.3\n"
    "smtp_tls_protocols = >=TLSv1\n"
    "smtp_tls_ciphers = low\n"
    "smtp_tls_mandatory_ciphers = high\n"
    "smtp_tls_exclude_ciphers = RC4\n"
    "smtp_tls_mandatory_exclude_ciphers = aNULL\n"
    "smtp_tls_servername = hostname\n"
    "smtp_tls_policy_maps = inline:{\n"
    "    { [mx.example.com]:587 = verify match=a.example:b.example protocols=>=TLSv1.2 },\n"
    "    { [mx.example.com]:588 = verify match=a.example match=c.example ciphers=medium },\n"
    "    example.com=encrypt, .example.org=secure, .net=none,\n"
    "    { srv.example = may servername=sni.example exclude=CAMELLIA },\n"
    "    { none.example = none match=ignored.example },\n"
    "    { dane.example = dane-only },\n"
    "    { bad1.example = encrypt match=x.example },\n"
    "    bad2.example=bogus,\n"
    "    { bad3.example = verify protocols=TLSv1.2 protocols=TLSv1.3 },\n"
    "    { bad4.example = verify colour=blue },\n"
    "    { bad5.example = verify match= },\n"
    "    { bad6.example = verify justaword } }, broken:x\n";

static int setup(void **state)
{
    char path[256];
    FILE *fp;

    (void) state;
    assert_non_null(mkdtemp(test_dir));
    snprintf(path, sizeof(path), "%s/main.cf", test_dir);
    assert_non_null(fp = fopen(path, "w"));
    fputs(main_cf, fp);
    fclose(fp);
    config_set_dir(test_dir);
    config_load();
    dict_register("broken", broken_open, NULL);
    memset(&smtp_par, 0, sizeof(smtp_par));
    smtp_tls_init();
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void) state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", test_dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

struct policy_case {
    const char *nexthop, *rcpt_domain;
    int level;
    const char *nexthop_host, *protocols, *grade, *exclude, *match, *sni;
};

static void test_lookups_and_defaults(void **state)
{
    static const struct policy_case cases[] = {
        /* Explicit nexthops match only their own entry. */
        {"[mx.example.com]:587", "x.test", SMTP_TLS_VERIFY, "mx.example.com", ">=TLSv1.2", "high",
         "RC4 aNULL", "a.example:b.example", "hostname"},
        {"[mx.example.com]:588", "x.test", SMTP_TLS_VERIFY, "mx.example.com", ">=TLSv1.3",
         "medium", "RC4 aNULL", "a.example:c.example", "hostname"},
        {"[mx.example.com]", "x.test", SMTP_TLS_MAY, "mx.example.com", ">=TLSv1", "low", "RC4",
         "", "hostname"},
        {"example.com:2525", "x.test", SMTP_TLS_MAY, "example.com", ">=TLSv1", "low", "RC4", "",
         "hostname"},
        {"[sub.example.org]", "x.test", SMTP_TLS_MAY, "sub.example.org", ">=TLSv1", "low", "RC4",
         "", "hostname"},
        /* A domain, then its parents. */
        {"example.com", "x.test", SMTP_TLS_ENCRYPT, "example.com", ">=TLSv1.3", "high",
         "RC4 aNULL", "", "hostname"},
        {"EXAMPLE.Com", "x.test", SMTP_TLS_ENCRYPT, "example.com", ">=TLSv1.3", "high",
         "RC4 aNULL", "", "hostname"},
        {"sub.example.org", "x.test", SMTP_TLS_SECURE, "sub.example.org", ">=TLSv1.3", "high",
         "RC4 aNULL", "nexthop, dot-nexthop", "hostname"},
        {"a.b.example.org", "x.test", SMTP_TLS_SECURE, "a.b.example.org", ">=TLSv1.3", "high",
         "RC4 aNULL", "nexthop, dot-nexthop", "hostname"},
        {"example.org", "x.test", SMTP_TLS_MAY, "example.org", ">=TLSv1", "low", "RC4", "",
         "hostname"},
        {"deep.sub.example.net", "x.test", SMTP_TLS_NONE, "deep.sub.example.net", "", "", "",
         "", ""},
        /* An empty nexthop is the recipient domain. */
        {"", "example.com", SMTP_TLS_ENCRYPT, "example.com", ">=TLSv1.3", "high", "RC4 aNULL", "",
         "hostname"},
        {"", "nothing.test", SMTP_TLS_MAY, "nothing.test", ">=TLSv1", "low", "RC4", "",
         "hostname"},
        /* Attributes. */
        {"srv.example", "x.test", SMTP_TLS_MAY, "srv.example", ">=TLSv1", "low", "CAMELLIA", "",
         "sni.example"},
        {"none.example", "x.test", SMTP_TLS_NONE, "none.example", "", "", "", "", ""},
        {"dane.example", "x.test", SMTP_TLS_ENCRYPT, "dane.example", ">=TLSv1.3", "high",
         "RC4 aNULL", "", "hostname"},
        {"inet:lmtp.example:24", "x.test", SMTP_TLS_MAY, "lmtp.example", ">=TLSv1", "low", "RC4",
         "", "hostname"},
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct policy_case *c = &cases[i];
        struct smtp_tls_policy p;

        if (smtp_tls_policy_find(c->nexthop, c->rcpt_domain, &p) != 0)
            fail_msg("\"%s\": lookup failed", c->nexthop);
        if (p.level != c->level)
            fail_msg("\"%s\": level %d, want %d", c->nexthop, p.level, c->level);
        assert_string_equal(p.nexthop, c->nexthop_host);
        assert_string_equal(p.protocols, c->protocols);
        assert_string_equal(p.grade, c->grade);
        assert_string_equal(p.exclude, c->exclude);
        assert_string_equal(p.match, c->match);
        assert_string_equal(p.sni, c->sni);
        assert_int_equal(p.invalid, 0);
    }
}

static void test_invalid_entries(void **state)
{
    static const char *const bad[] = {
        "bad1.example", "bad2.example", "bad3.example", "bad4.example", "bad5.example",
        "bad6.example",
    };
    struct smtp_tls_policy p;
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (smtp_tls_policy_find(bad[i], "x.test", &p) != -1)
            fail_msg("\"%s\": accepted", bad[i]);
        assert_int_equal(p.invalid, 1);
    }
    /* Parents are looked up as ".bad1.example", never as the bare domain. */
    assert_int_equal(smtp_tls_policy_find("sub.bad1.example", "x.test", &p), 0);
    assert_int_equal(p.level, SMTP_TLS_MAY);
}

static void test_table_failure_defers(void **state)
{
    struct smtp_tls_policy p;

    (void) state;
    /* Found in the first table: the failing one is never asked. */
    broken_fail = 1;
    assert_int_equal(smtp_tls_policy_find("example.com", "x.test", &p), 0);
    assert_int_equal(p.level, SMTP_TLS_ENCRYPT);
    /* Not found there: the failure must not turn into the global level. */
    assert_int_equal(smtp_tls_policy_find("elsewhere.test", "x.test", &p), -1);
    assert_int_equal(p.invalid, 1);
    broken_fail = 0;
    assert_int_equal(smtp_tls_policy_find("elsewhere.test", "x.test", &p), 0);
    assert_int_equal(p.level, SMTP_TLS_MAY);
}

static void test_cache_key(void **state)
{
    struct smtp_tls_policy a, b;
    char ka[2048], kb[2048];

    (void) state;
    assert_int_equal(smtp_tls_policy_find("[mx.example.com]:587", "x.test", &a), 0);
    assert_int_equal(smtp_tls_policy_find("[mx.example.com]:588", "x.test", &b), 0);
    smtp_tls_policy_key(&a, ka, sizeof(ka));
    smtp_tls_policy_key(&b, kb, sizeof(kb));
    assert_string_not_equal(ka, kb);
    assert_int_equal(smtp_tls_policy_find("example.org", "x.test", &a), 0);
    assert_int_equal(smtp_tls_policy_find("other.test", "x.test", &b), 0);
    smtp_tls_policy_key(&a, ka, sizeof(ka));
    smtp_tls_policy_key(&b, kb, sizeof(kb));
    assert_string_equal(ka, kb);
    assert_string_equal(ka, "may|>=TLSv1|low|RC4||hostname");
}

static void test_level_names(void **state)
{
    (void) state;
    assert_int_equal(smtp_tls_level_find("", 0), SMTP_TLS_NONE);
    assert_int_equal(smtp_tls_level_find("NONE", 4), SMTP_TLS_NONE);
    assert_int_equal(smtp_tls_level_find("dane", 4), SMTP_TLS_MAY);
    assert_int_equal(smtp_tls_level_find("secure", 6), SMTP_TLS_SECURE);
    assert_int_equal(smtp_tls_level_find("fingerprint", 11), -1);
    assert_int_equal(smtp_tls_level_find("verif", 5), -1);
    assert_string_equal(smtp_tls_level_name(SMTP_TLS_VERIFY), "verify");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups_and_defaults),
        cmocka_unit_test(test_invalid_entries),
        cmocka_unit_test(test_table_failure_defers),
        cmocka_unit_test(test_cache_key),
        cmocka_unit_test(test_level_names),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
