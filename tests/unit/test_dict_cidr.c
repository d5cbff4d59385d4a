/*
 * test_dict_cidr.c - cidr: tables: IPv4 and IPv6 networks, first match wins,
 * single addresses, brackets, keys that are not addresses, and every rule
 * error with its line number.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dict.h"
#include "dict_test.h"

static const char cidr_rules[] =
    "# access by client address\n"
    "192.168.1.1          host-rule\n"
    "192.168.0.0/16       net16\n"
    "192.168.1.0/24       never: shadowed by the /16 above\n"
    "10.0.0.0/8           REJECT ten\n"
    "   continued\n"
    "[2001:db8::]/32      v6 net\n"
    "::1                  v6 loopback\n"
    "0.0.0.0/0            default v4\n";

static void test_cidr_lookups(void **state)
{
    static const struct {
        const char *key;
        const char *want;
    } cases[] = {
        {"192.168.1.1", "host-rule"}, {"192.168.1.2", "net16"}, {"192.168.255.255", "net16"},
        {"10.255.0.1", "REJECT ten   continued"}, {"2001:db8:1::5", "v6 net"},
        {"2001:db9::1", NULL}, {"::1", "v6 loopback"}, {"[::1]", "v6 loopback"},
        {"::2", NULL}, {"172.16.0.1", "default v4"}, {"not-an-address", NULL},
        {"", NULL}, {"1.2.3", NULL}, {"1.2.3.4.5", NULL}, {"192.168.1.1/32", NULL},
    };
    struct strbuf err;
    struct dict *d;
    const char *got;
    size_t i;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    dict_test_write("clients", cidr_rules);
    d = dict_open("cidr:clients", DICT_FLAG_FOLD_KEY, &err);
    assert_non_null(d);
    assert_true(dict_flags(d) & DICT_FLAG_PATTERN);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        got = dict_get(d, cases[i].key);
        if ((got == NULL) != (cases[i].want == NULL)
            || (got && strcmp(got, cases[i].want) != 0))
            fail_msg("key \"%s\": got \"%s\", want \"%s\"", cases[i].key,
                     got ? got : "(none)", cases[i].want ? cases[i].want : "(none)");
        assert_int_equal(dict_error(d), DICT_ERR_NONE);
    }
    dict_close(&d);
    strbuf_release(&err);
}

static void test_cidr_errors(void **state)
{
    static const struct {
        const char *text;
        const char *err;
    } cases[] = {
        {"10.0.0.0/8 ok\n10.0.0.1/8 bad\n", "c:2: non-zero host bits in \"10.0.0.1/8\""},
        {"\n\n1.2.3.0/33 x\n", "c:3: bad network prefix length \"/33\" (0..32)"},
        {"::/129 x\n", "c:1: bad network prefix length \"/129\" (0..128)"},
        {"1.2.3.0/ x\n", "c:1: bad network prefix length \"/\" (0..32)"},
        {"1.2.3.0/2a x\n", "c:1: bad network prefix length \"/2a\" (0..32)"},
        {"1.2.3.0/99999999999999999999 x\n",
         "c:1: bad network prefix length \"/99999999999999999999\" (0..32)"},
        {"1.2.3.4\n", "c:1: expected format: key whitespace value"},
        {"a.b.c.d/8 x\n", "c:1: bad network address \"a.b.c.d\""},
        {"2001:db8::1/32 x\n", "c:1: non-zero host bits in \"2001:db8::1/32\""},
    };
    struct strbuf err;
    struct dict *d;
    const char *text;
    size_t i;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strbuf_reset(&err);
        d = dict_cidr_open_buf("c", cases[i].text, strlen(cases[i].text), 0, &err);
        assert_null(d);
        assert_string_equal(err.data, cases[i].err);
    }
    /* Limits: /0 and full-length prefixes are fine, empty input is an empty table. */
    text = "1.2.3.4/32 h\n::1/128 h6\n0.0.0.0/0 any\n::/0 any6\n";
    d = dict_cidr_open_buf("c", text, strlen(text), 0, &err);
    assert_non_null(d);
    assert_string_equal(dict_get(d, "1.2.3.4"), "h");
    assert_string_equal(dict_get(d, "8.8.8.8"), "any");
    assert_string_equal(dict_get(d, "fe80::1"), "any6");
    dict_close(&d);
    d = dict_cidr_open_buf("c", "", 0, 0, &err);
    assert_non_null(d);
    assert_null(dict_get(d, "1.2.3.4"));
    dict_close(&d);
    strbuf_reset(&err);
    assert_null(dict_open("cidr:/nonexistent", 0, &err));
    assert_string_equal(err.data, "open /nonexistent: No such file or directory");
    strbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_lookups),
        cmocka_unit_test(test_cidr_errors),
    };

    dict_test_chdir_scratch();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
