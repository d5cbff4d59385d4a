/*
 * test_aliases.c - the aliases(5) split (names, quoting, values, errors) and
 * building a hash: table from an aliases source with continuation lines,
 * comments and mixed-case names.
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

#include "aliases.h"
#include "dict.h"
#include "mymalloc.h"

static void test_split(void **state)
{
    static const struct {
        const char *in;
        int status;
        const char *key, *value;        /* or the error text for status -1 */
    } cases[] = {
        {"root: admin", 0, "root", "admin"},
        {"root:admin", 0, "root", "admin"},
        {"Postmaster :  root  ", 0, "Postmaster", "root"},
        {"list: a, b,  c", 0, "list", "a, b,  c"},
        {"prog: \"|/usr/bin/x -y\"", 0, "prog", "\"|/usr/bin/x -y\""},
        {"\"john doe\": jd", 0, "john doe", "jd"},
        {"\"a\\\"b\": x", 0, "a\"b", "x"},
        {"inc: :include:/etc/list", 0, "inc", ":include:/etc/list"},
        {"a:b:c", 0, "a", "b:c"},
        {"", -1, NULL, "no colon"},
        {"root admin", -1, NULL, "white space in the name"},
        {"root", -1, NULL, "no colon"},
        {": admin", -1, NULL, "empty alias name"},
        {"\"\": admin", -1, NULL, "empty alias name"},
        {"root:", -1, NULL, "empty value"},
        {"root:    ", -1, NULL, "empty value"},
        {"\"open: x", -1, NULL, "unterminated"},
        {"\"x\\", -1, NULL, "backslash"},
        {"\"x\" y: z", -1, NULL, "no colon after the quoted name"},
    };
    struct strbuf why;
    size_t i;
    char *line, *key, *value;

    strbuf_init(&why, 64, 4096);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        line = xstrdup(cases[i].in);
        strbuf_reset(&why);
        key = value = NULL;
        int got = aliases_split(line, &key, &value, &why);
        if (got != cases[i].status)
            fail_msg("case %zu \"%s\": got %d (%s), want %d", i, cases[i].in, got, why.data,
                     cases[i].status);
        if (got == 0) {
            assert_string_equal(key, cases[i].key);
            assert_string_equal(value, cases[i].value);
        } else if (strstr(why.data, cases[i].value) == NULL) {
            fail_msg("case %zu \"%s\": reason \"%s\" lacks \"%s\"", i, cases[i].in, why.data,
                     cases[i].value);
        }
        free(line);
    }
    strbuf_release(&why);
}

static void test_build(void **state)
{
    char dir[] = "/tmp/test_aliases.XXXXXX", path[128], spec[160];
    struct strbuf err;
    struct dict *d;
    FILE *fp;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/aliases", dir);
    assert_non_null(fp = fopen(path, "w"));
    fputs("# system aliases\n"
          "MAILER-DAEMON: postmaster\n"
          "postmaster: root\n"
          "staff: alice,\n"
          "  bob,\n"
          "\tcarol\n"
          "\n"
          "# a comment between\n"
          "\"Help Desk\": alice\n", fp);
    assert_int_equal(fclose(fp), 0);
    strbuf_init(&err, 64, 65536);
    snprintf(spec, sizeof(spec), "hash:%s", path);
    assert_int_equal(aliases_build_all(spec, &err), 1);
    assert_non_null(d = dict_open(spec, DICT_FLAG_FOLD_KEY, &err));
    assert_string_equal(dict_get(d, "MAILER-DAEMON"), "postmaster");
    assert_string_equal(dict_get(d, "mailer-daemon"), "postmaster");
    assert_string_equal(dict_get(d, "staff"), "alice,  bob,\tcarol");
    assert_string_equal(dict_get(d, "help desk"), "alice");
    assert_null(dict_get(d, "nobody"));
    dict_close(&d);

    /* A malformed line fails the build and names file and line; the old table stays. */
    assert_non_null(fp = fopen(path, "w"));
    fputs("root: admin\nbroken line\n", fp);
    assert_int_equal(fclose(fp), 0);
    strbuf_reset(&err);
    assert_int_equal(aliases_build_all(spec, &err), -1);
    assert_non_null(strstr(err.data, ":2: need name:value pair"));
    assert_non_null(d = dict_open(spec, DICT_FLAG_FOLD_KEY, &err));
    assert_string_equal(dict_get(d, "postmaster"), "root");
    dict_close(&d);

    /* Not a type:name entry. */
    strbuf_reset(&err);
    assert_int_equal(aliases_build_all("/etc/aliases", &err), -1);
    assert_non_null(strstr(err.data, "type:name"));

    snprintf(spec, sizeof(spec), "rm -rf '%s'", dir);
    assert_int_equal(system(spec), 0);
    strbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_build),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
