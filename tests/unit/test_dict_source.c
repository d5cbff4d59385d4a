/*
 * test_dict_source.c - table source files: logical lines, comments,
 * continuation, line numbers in errors, the line length limit, the postmap
 * key/value split.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dict.h"
#include "dict_impl.h"
#include "mymalloc.h"

/* Joins all logical lines as "LINENO:text|"; returns the status of the last read. */
static int read_all(const char *text, size_t len, struct strbuf *out, struct strbuf *err)
{
    struct dict_source src;
    int status;

    dict_source_init(&src, "t", text, len);
    while ((status = dict_source_next(&src, err)) > 0)
        strbuf_printf(out, "%lu:%s|", src.lineno, src.line.data);
    dict_source_release(&src);
    return status;
}

static void test_logical_lines(void **state)
{
    static const struct {
        const char *in;
        int status;
        const char *want;
    } cases[] = {
        {"", 0, ""},
        {"\n\n   \n# only a comment\n", 0, ""},
        {"a b\nc d", 0, "1:a b|2:c d|"},
        {"a b\n  more\n\tand more   \nnext 1\n", 0, "1:a b  more\tand more|4:next 1|"},
        {"a b\n# comment inside\n  cont\n", 0, "1:a b  cont|"},
        {"a b\n\n  cont after blank\n", 0, "1:a b  cont after blank|"},
        {"a b\r\nc d\r\n", 0, "1:a b|2:c d|"},
        {"   # indented comment\nk v\n", 0, "2:k v|"},
        {"  starts indented\n", -1, ""},
        {"k v\nx\0y\n", -1, "1:k v|"},
    };
    struct strbuf out, err;
    size_t i;

    strbuf_init(&out, 0, STRBUF_UNLIMITED);
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].in);

        if (i == 9)
            len = 9;            /* the case with a NUL byte */
        strbuf_reset(&out);
        strbuf_reset(&err);
        assert_int_equal(read_all(cases[i].in, len, &out, &err), cases[i].status);
        assert_string_equal(out.data, cases[i].want);
    }
    strbuf_reset(&err);
    read_all("\n\n  bad\n", 8, &out, &err);
    assert_string_equal(err.data, "t:3: continuation line (it begins with white space) "
                        "without a line before it");
    strbuf_reset(&err);
    read_all("k v\nx\0y\n", 9, &out, &err);
    assert_string_equal(err.data, "t:2: NUL byte in table source");
    strbuf_release(&out);
    strbuf_release(&err);
}

static void test_line_limit(void **state)
{
    char *text = xmalloc(DICT_LINE_MAX + 8);
    struct strbuf out, err;

    strbuf_init(&out, 0, STRBUF_UNLIMITED);
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    /* Exactly the limit: accepted. */
    memset(text, 'k', DICT_LINE_MAX);
    text[DICT_LINE_MAX] = '\n';
    assert_int_equal(read_all(text, DICT_LINE_MAX + 1, &out, &err), 0);
    assert_int_equal(out.len, DICT_LINE_MAX + 3);
    /* One more byte, split over a continuation line: refused with the line number. */
    strbuf_reset(&out);
    memcpy(text, "\nk", 2);
    text[DICT_LINE_MAX - 1] = '\n';
    text[DICT_LINE_MAX] = ' ';
    memcpy(text + DICT_LINE_MAX + 1, "vv", 2);
    assert_int_equal(read_all(text, DICT_LINE_MAX + 3, &out, &err), -1);
    assert_string_equal(err.data, "t:2: line longer than 1048576 bytes");
    free(text);
    strbuf_release(&out);
    strbuf_release(&err);
}

static int collect(void *ctx, const struct dict_source *src, const char *key,
                   const char *value, struct strbuf *err)
{
    (void) err;
    strbuf_printf(ctx, "%lu[%s]=[%s]", src->lineno, key, value);
    return 0;
}

static void test_pairs(void **state)
{
    const char *text = "Key1   value one  \n# x\nKEY2\tv2\n  continued\n";
    struct strbuf out, err;

    strbuf_init(&out, 0, STRBUF_UNLIMITED);
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    assert_int_equal(dict_source_parse_pairs("f", text, strlen(text), NULL, 1, collect, &out,
                                             &err), 0);
    assert_string_equal(out.data, "1[key1]=[value one]3[key2]=[v2  continued]");
    strbuf_reset(&out);
    assert_int_equal(dict_source_parse_pairs("f", text, strlen(text), NULL, 0, collect, &out,
                                             &err), 0);
    assert_string_equal(out.data, "1[Key1]=[value one]3[KEY2]=[v2  continued]");
    text = "a b\n\nlonely\n";
    assert_int_equal(dict_source_parse_pairs("f", text, strlen(text), NULL, 1, collect, &out,
                                             &err), -1);
    assert_string_equal(err.data, "f:3: expected format: key whitespace value");
    strbuf_release(&out);
    strbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logical_lines),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_pairs),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
