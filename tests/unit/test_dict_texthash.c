/*
 * test_dict_texthash.c - texthash:, inline: and static: tables: found, not
 * found, case folding, first of duplicates, errors with line numbers, empty
 * input, unreadable files.
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

struct lookup_case {
    const char *key;
    const char *want;           /* NULL: not found */
};

static void check_lookups(struct dict *d, const struct lookup_case *cases, size_t n)
{
    const char *got;
    size_t i;

    for (i = 0; i < n; i++) {
        got = dict_get(d, cases[i].key);
        if (cases[i].want == NULL) {
            if (got != NULL)
                fail_msg("%s: key \"%s\": got \"%s\", want not found", dict_spec(d),
                         cases[i].key, got);
        } else if (got == NULL || strcmp(got, cases[i].want) != 0) {
            fail_msg("%s: key \"%s\": got \"%s\", want \"%s\"", dict_spec(d), cases[i].key,
                     got ? got : "(not found)", cases[i].want);
        }
        assert_int_equal(dict_error(d), DICT_ERR_NONE);
    }
}

static void test_texthash_file(void **state)
{
    static const struct lookup_case folded[] = {
        {"alice", "alice@example.com"}, {"ALICE", "alice@example.com"},
        {"bob", "first"}, {"carol", "one  two"}, {"dave", NULL}, {"", NULL},
        {"#comment", NULL},
    };
    static const struct lookup_case exact[] = {
        {"alice", "alice@example.com"}, {"ALICE", NULL},
    };
    struct strbuf err;
    struct dict *d;

    dict_test_write("map", "# users\nAlice alice@example.com\nbob first\nbob second\n"
                    "carol one\n  two\n");
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    d = dict_open("texthash:map", DICT_FLAG_FOLD_KEY, &err);
    assert_non_null(d);
    assert_true(dict_flags(d) & DICT_FLAG_FIXED);
    check_lookups(d, folded, sizeof(folded) / sizeof(folded[0]));
    dict_close(&d);
    d = dict_open("texthash:map", 0, &err);
    check_lookups(d, exact, sizeof(exact) / sizeof(exact[0]));
    dict_close(&d);
    assert_null(d);
    strbuf_release(&err);
}

static void test_texthash_errors(void **state)
{
    static const struct {
        const char *text;
        const char *err;
    } cases[] = {
        {"a b\nc\n", "bad:2: expected format: key whitespace value"},
        {"a b\n\n\n  x\nnovalue\n", "bad:5: expected format: key whitespace value"},
        {" a b\n", "bad:1: continuation line (it begins with white space) without a line "
         "before it"},
    };
    struct strbuf err;
    struct dict *d;
    size_t i;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strbuf_reset(&err);
        d = dict_texthash_open_buf("bad", cases[i].text, strlen(cases[i].text), 0, &err);
        assert_null(d);
        assert_string_equal(err.data, cases[i].err);
    }
    strbuf_reset(&err);
    d = dict_open("texthash:/nonexistent/map", 0, &err);
    assert_null(d);
    assert_string_equal(err.data, "open /nonexistent/map: No such file or directory");
    strbuf_reset(&err);
    assert_null(dict_open("texthash:.", 0, &err));
    assert_string_equal(err.data, ".: not a regular file");
    /* An empty file is an empty table, not an error. */
    d = dict_texthash_open_buf("empty", "", 0, 0, &err);
    assert_non_null(d);
    assert_null(dict_get(d, "x"));
    assert_int_equal(dict_error(d), DICT_ERR_NONE);
    dict_close(&d);
    strbuf_release(&err);
}

static void test_inline(void **state)
{
    static const struct lookup_case cases[] = {
        {"key1", "value1"}, {"KEY2", "value2"}, {"key3", "value with spaces, and comma"},
        {"key4", ""}, {"k5", "{x y}"}, {"value1", NULL},
    };
    static const struct {
        const char *spec;
        const char *err;
    } bad[] = {
        {"inline:key=value", "inline:key=value: expected inline:{ key=value, ... }"},
        {"inline:{ a=b", "inline:{ a=b: expected inline:{ key=value, ... }"},
        {"inline:{ }", "inline:{ }: empty table"},
        {"inline:{ a=b, c }", "inline:{ a=b, c }: missing \"=\" in \"c\"; expected key=value"},
        {"inline:{ =b }", "inline:{ =b }: empty key before \"=b\""},
        {"inline:{ a=b, { c=d }", "inline:{ a=b, { c=d }: unbalanced braces"},
        {"inline:{ a=b, { c=d } } }", "inline:{ a=b, { c=d } } }: unbalanced braces"},
    };
    struct strbuf err;
    struct dict *d;
    size_t i;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    d = dict_open("inline:{ key1=value1, Key2=value2,{ key3 = value with spaces, and comma }"
                  " key4= k5={x y} key1=dup }", DICT_FLAG_FOLD_KEY, &err);
    assert_non_null(d);
    check_lookups(d, cases, sizeof(cases) / sizeof(cases[0]));
    dict_close(&d);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strbuf_reset(&err);
        assert_null(dict_open(bad[i].spec, 0, &err));
        assert_string_equal(err.data, bad[i].err);
    }
    strbuf_release(&err);
}

static void test_static(void **state)
{
    struct strbuf err;
    struct dict *d;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    d = dict_open("static:OK", 0, &err);
    assert_string_equal(dict_get(d, "anything"), "OK");
    assert_string_equal(dict_get(d, ""), "OK");
    dict_close(&d);
    d = dict_open("static:{ 550 5.7.1 go away }", DICT_FLAG_FOLD_KEY, &err);
    assert_string_equal(dict_get(d, "X"), "550 5.7.1 go away");
    dict_close(&d);
    d = dict_open("static:", 0, &err);
    assert_string_equal(dict_get(d, "x"), "");
    dict_close(&d);
    assert_null(dict_open("static:{ open", 0, &err));
    assert_string_equal(err.data, "static:{ open: missing \"}\" at the end of the value");
    strbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_texthash_file),
        cmocka_unit_test(test_texthash_errors),
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_static),
    };

    dict_test_chdir_scratch();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
