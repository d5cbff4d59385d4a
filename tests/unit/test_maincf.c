/*
 * test_maincf.c - the main.cf text layer: logical lines, line numbers, syntax
 * errors, and edits that keep comments and order.
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

#include "maincf.h"
#include "strbuf.h"

static struct maincf *parse(const char *text, struct strbuf *err, int *errors)
{
    *errors = 0;
    strbuf_reset(err);
    return maincf_parse_text("main.cf", text, strlen(text), err, errors);
}

static void test_entries_and_lines(void **state)
{
    struct strbuf err;
    struct maincf *cf;
    int errors;

    strbuf_init(&err, 64, STRBUF_UNLIMITED);
    cf = parse("# c\n\na = 1\nb=two  words  \n  # in between\n\tmore\r\nc =\n", &err, &errors);
    assert_int_equal(errors, 0);
    assert_int_equal(maincf_count(cf), 3);
    assert_string_equal(maincf_get(cf, 0)->name, "a");
    assert_int_equal(maincf_get(cf, 0)->line, 3);
    assert_string_equal(maincf_get(cf, 1)->value, "two  words more");
    assert_int_equal(maincf_get(cf, 1)->line, 4);
    assert_string_equal(maincf_get(cf, 2)->value, "");
    assert_null(maincf_get(cf, 3));
    maincf_free(&cf);
    assert_null(cf);
    cf = parse("", &err, &errors);
    assert_int_equal(maincf_count(cf), 0);
    maincf_free(&cf);
    cf = parse("a = 1\na = 2", &err, &errors);
    assert_string_equal(maincf_find(cf, "a")->value, "2");
    assert_int_equal(maincf_find(cf, "a")->line, 2);
    assert_null(maincf_find(cf, "b"));
    maincf_free(&cf);
    strbuf_release(&err);
}

static void test_syntax_errors(void **state)
{
    static const struct {
        const char *text, *want;
        size_t good;
    } cases[] = {
        {"ok = 1\nno equals here\n", "main.cf:2: missing '=' after parameter name", 1},
        {"ok = 1\nname\n  = on next line\n", "", 2},
        {" lead = 1\n", "main.cf:1: line starts with white space", 0},
        {"= 1\n", "main.cf:1: missing parameter name", 0},
        {"a b = 1\n", "main.cf:1: bad parameter name \"a b\"", 0},
        {"x = 1\n\nbad-name = 2\n  more\n", "main.cf:3: bad parameter name", 1},
        {"x = 1\n\0y = 2\n", "main.cf:2: NUL character", 0},
    };
    struct strbuf err;
    struct maincf *cf;
    int errors;
    size_t i;

    strbuf_init(&err, 64, STRBUF_UNLIMITED);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].text);

        if (i == 6)
            len = 13;
        errors = 0;
        strbuf_reset(&err);
        cf = maincf_parse_text("main.cf", cases[i].text, len, &err, &errors);
        if (strstr(err.data, cases[i].want) == NULL || (cases[i].want[0] != 0) != (errors > 0))
            fail_msg("case %zu: got \"%s\" (%d errors), want \"%s\"", i, err.data, errors, cases[i].want);
        assert_int_equal(maincf_count(cf), cases[i].good);
        maincf_free(&cf);
    }
    strbuf_release(&err);
}

static void test_logical_line_limit(void **state)
{
    struct strbuf err, text;
    struct maincf *cf;
    int errors = 0;

    strbuf_init(&err, 64, STRBUF_UNLIMITED);
    strbuf_init(&text, 1024, STRBUF_UNLIMITED);
    strbuf_puts(&text, "a = ");
    while (text.len < MAINCF_MAX_LOGICAL)
        strbuf_puts(&text, "xxxxxxxx");
    strbuf_puts(&text, "\nb = 1\n");
    cf = maincf_parse_text("main.cf", text.data, text.len, &err, &errors);
    assert_int_equal(errors, 1);
    assert_non_null(strstr(err.data, "main.cf:1: line longer than"));
    assert_int_equal(maincf_count(cf), 1);
    maincf_free(&cf);
    strbuf_release(&text);
    strbuf_release(&err);
}

static void test_edit_keeps_comments(void **state)
{
    static const char text[] = "# top\na = 1\n# about b\nb = old\n   continued\n# end\nb = again\n";
    struct strbuf err, out;
    struct maincf *cf;
    int errors;

    strbuf_init(&err, 64, STRBUF_UNLIMITED);
    strbuf_init(&out, 64, STRBUF_UNLIMITED);
    cf = parse(text, &err, &errors);
    assert_int_equal(maincf_set(cf, "b", "new value"), 0);
    assert_int_equal(maincf_set(cf, "c", "3"), 0);
    assert_int_equal(maincf_set(cf, "a", "one"), 0);
    assert_int_equal(maincf_set(cf, "d", "x\ny"), -1);
    maincf_format(cf, &out);
    assert_string_equal(out.data, "# top\na = one\n# about b\n# end\nb = new value\nc = 3\n");
    assert_string_equal(maincf_find(cf, "b")->value, "new value");
    assert_int_equal(maincf_remove(cf, "a"), 1);
    assert_int_equal(maincf_remove(cf, "zz"), 0);
    strbuf_reset(&out);
    maincf_format(cf, &out);
    assert_string_equal(out.data, "# top\n# about b\n# end\nb = new value\nc = 3\n");
    maincf_free(&cf);
    strbuf_release(&err);
    strbuf_release(&out);
}

static void test_write_atomic(void **state)
{
    char dir[] = "/tmp/test_maincf.XXXXXX", path[128], buf[256];
    struct strbuf err;
    struct maincf *cf;
    int errors = 0;
    FILE *fp;
    size_t n;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/main.cf", dir);
    strbuf_init(&err, 64, STRBUF_UNLIMITED);
    cf = maincf_read(path, &err, &errors);       /* missing: empty */
    assert_non_null(cf);
    assert_int_equal(maincf_count(cf), 0);
    maincf_set(cf, "myorigin", "example.com");
    assert_int_equal(maincf_write(cf, path), 0);
    maincf_free(&cf);
    fp = fopen(path, "r");
    assert_non_null(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = 0;
    fclose(fp);
    assert_string_equal(buf, "myorigin = example.com\n");
    cf = maincf_read(path, &err, &errors);
    assert_string_equal(maincf_find(cf, "myorigin")->value, "example.com");
    snprintf(path, sizeof(path), "%s/nodir/main.cf", dir);
    assert_int_equal(maincf_write(cf, path), -1);
    maincf_free(&cf);
    snprintf(path, sizeof(path), "%s/main.cf", dir);
    unlink(path);
    rmdir(dir);
    strbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_and_lines),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_logical_line_limit),
        cmocka_unit_test(test_edit_keeps_comments),
        cmocka_unit_test(test_write_atomic),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
