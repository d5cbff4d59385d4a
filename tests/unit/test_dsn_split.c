/*
 * test_dsn_split.c - enhanced status codes at the start of a reason text:
 * valid codes taken, everything else falls back to the default, the rest of
 * the text after the code and its white space; a bad default panics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "dsn_split.h"

static void test_split_table(void **state)
{
    static const struct {
        const char *text, *def, *dsn, *rest;
    } cases[] = {
        {"5.1.1 User unknown", "5.0.0", "5.1.1", "User unknown"},
        {"  4.7.1\tTry later  ", "5.0.0", "4.7.1", "Try later  "},
        {"2.0.0", "5.0.0", "2.0.0", ""},
        {"5.123.456 x", "4.0.0", "5.123.456", "x"},
        {"5.1234.1 x", "5.0.0", "5.0.0", "5.1234.1 x"},   /* 4 digits */
        {"5.1.1x text", "5.0.0", "5.0.0", "5.1.1x text"}, /* not followed by space */
        {"3.1.1 text", "5.0.0", "5.0.0", "3.1.1 text"},   /* no such class */
        {"5.1 text", "5.0.0", "5.0.0", "5.1 text"},
        {"5..1 text", "5.0.0", "5.0.0", "5..1 text"},
        {"example.com", "2.0.0", "2.0.0", "example.com"},
        {"", "4.0.0", "4.0.0", ""},
        {"   ", "4.0.0", "4.0.0", ""},
    };
    char dsn[DSN_SPLIT_SIZE];
    const char *rest;
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(dsn, 'X', sizeof(dsn));
        dsn_split(cases[i].text, cases[i].def, dsn, &rest);
        if (strcmp(dsn, cases[i].dsn) != 0 || strcmp(rest, cases[i].rest) != 0)
            fail_msg("\"%s\": got %s \"%s\", want %s \"%s\"", cases[i].text, dsn, rest,
                     cases[i].dsn, cases[i].rest);
    }
}

static void test_valid_lengths(void **state)
{
    (void) state;
    assert_int_equal(dsn_valid("5.1.1"), 5);
    assert_int_equal(dsn_valid("4.999.999 x"), 9);
    assert_int_equal(dsn_valid("4.9999.9"), 0);
    assert_int_equal(dsn_valid(""), 0);
    assert_int_equal(dsn_valid("5"), 0);
    assert_int_equal(dsn_valid("5."), 0);
    assert_int_equal(dsn_valid("5.1."), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_table),
        cmocka_unit_test(test_valid_lengths),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
