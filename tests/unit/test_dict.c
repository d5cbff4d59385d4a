/*
 * test_dict.c - the table API itself: spec parsing, unknown types, type
 * registration, shared handles, table lists (order, first match, retry
 * propagation, braces), unix: tables.
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
#include "dict_test.h"

/* A table type registered by the test: "fail:" always fails the lookup. */
static const char *fail_get(struct dict *d, const char *key)
{
    (void) key;
    d->error = DICT_ERR_RETRY;
    return NULL;
}

static struct dict *fail_open(const char *spec, const char *name, int flags,
                              struct strbuf *err)
{
    struct dict *d;

    (void) name;
    (void) err;
    d = dict_alloc(sizeof(*d), spec, flags | DICT_FLAG_FIXED);
    d->get = fail_get;
    return d;
}

static void test_spec_errors(void **state)
{
    struct strbuf err;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    assert_null(dict_open("nosuchtype:/x", 0, &err));
    assert_string_equal(err.data, "unsupported dictionary type: nosuchtype (supported: btree "
                        "cidr fail hash inline pcre regexp static texthash unix)");
    strbuf_reset(&err);
    assert_null(dict_open("/etc/aliases", 0, &err));
    assert_string_equal(err.data, "bad table name \"/etc/aliases\": expected type:name");
    strbuf_reset(&err);
    assert_null(dict_open(":x", 0, &err));
    assert_string_equal(err.data, "bad table name \":x\": expected type:name");
    assert_true(dict_type_known("hash"));
    assert_true(dict_type_known("fail"));
    assert_false(dict_type_known("has"));
    assert_false(dict_type_known("hash:"));
    assert_false(dict_type_known(""));
    strbuf_release(&err);
}

static void test_shared_handles(void **state)
{
    struct strbuf err;
    struct dict *a, *b, *c;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    a = dict_open_shared("inline:{ k=v }", DICT_FLAG_FOLD_KEY, &err);
    b = dict_open_shared("inline:{ k=v }", DICT_FLAG_FOLD_KEY, &err);
    c = dict_open_shared("inline:{ k=v }", 0, &err);
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    dict_close(&a);
    assert_null(a);
    assert_string_equal(dict_get(b, "K"), "v");     /* still open: one reference left */
    dict_close(&b);
    dict_close(&c);
    a = dict_open_shared("inline:{ k=v }", DICT_FLAG_FOLD_KEY, &err);
    assert_string_equal(dict_get(a, "k"), "v");
    dict_close(&a);
    assert_null(dict_open_shared("inline:{ }", 0, &err));
    strbuf_release(&err);
}

static void test_list_order_and_errors(void **state)
{
    struct strbuf err;
    struct dict_list *list;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    dict_test_write("re", "/^b/ from-regexp\n/^z/ z-regexp\n");
    list = dict_list_open("inline:{ a=1, { b = from inline } },regexp:re\n\tstatic:{ last resort }",
                          DICT_FLAG_FOLD_KEY, &err);
    if (list == NULL)
        fail_msg("%s", err.data);
    assert_int_equal(dict_list_count(list), 3);
    assert_string_equal(dict_list_get(list, "A"), "1");
    assert_string_equal(dict_list_get(list, "b"), "from inline");
    assert_string_equal(dict_list_get(list, "zz"), "z-regexp");
    assert_string_equal(dict_list_get(list, "q"), "last resort");
    /* Partial keys skip pattern tables. */
    assert_string_equal(dict_list_get_fixed(list, "zz"), "last resort");
    assert_int_equal(dict_list_error(list), DICT_ERR_NONE);
    dict_list_close(&list);
    assert_null(list);

    /* A failing table stops the search: later tables must not answer. */
    list = dict_list_open("inline:{ a=1 } fail:x static:wrong", 0, &err);
    assert_string_equal(dict_list_get(list, "a"), "1");
    assert_null(dict_list_get(list, "b"));
    assert_int_equal(dict_list_error(list), DICT_ERR_RETRY);
    assert_string_equal(dict_list_get(list, "a"), "1");
    assert_int_equal(dict_list_error(list), DICT_ERR_NONE);
    dict_list_close(&list);

    list = dict_list_open("", 0, &err);
    assert_int_equal(dict_list_count(list), 0);
    assert_null(dict_list_get(list, "a"));
    dict_list_close(&list);

    assert_null(dict_list_open("inline:{ a=1 }, hash:/nonexistent/x", 0, &err));
    assert_non_null(strstr(err.data, "/nonexistent/x.db"));
    strbuf_reset(&err);
    assert_null(dict_list_open("inline:{ a=1 ", 0, &err));
    assert_string_equal(err.data, "unbalanced \"{\" or \"}\" in table list \"inline:{ a=1 \"");
    strbuf_release(&err);
}

static void test_list_limit(void **state)
{
    struct strbuf value, err;
    struct dict_list *list;
    int i;

    strbuf_init(&value, 0, STRBUF_UNLIMITED);
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    for (i = 0; i < DICT_LIST_MAX; i++)
        strbuf_printf(&value, "static:%d ", i);
    list = dict_list_open(value.data, 0, &err);
    assert_non_null(list);
    assert_int_equal(dict_list_count(list), DICT_LIST_MAX);
    assert_string_equal(dict_list_get(list, "x"), "0");
    dict_list_close(&list);
    strbuf_puts(&value, "static:one-too-many");
    assert_null(dict_list_open(value.data, 0, &err));
    assert_non_null(strstr(err.data, "more than 256 tables"));
    strbuf_release(&value);
    strbuf_release(&err);
}

static void test_unix(void **state)
{
    struct strbuf err;
    struct dict *d;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    d = dict_open("unix:passwd.byname", 0, &err);
    assert_non_null(d);
    assert_true(strncmp(dict_get(d, "root"), "root:", 5) == 0);
    assert_non_null(strstr(dict_get(d, "root"), ":0:0:"));
    assert_null(dict_get(d, "no-such-user-petrel"));
    assert_int_equal(dict_error(d), DICT_ERR_NONE);
    dict_close(&d);
    d = dict_open("unix:group.byname", 0, &err);
    assert_true(strncmp(dict_get(d, "root"), "root:", 5) == 0);
    assert_null(dict_get(d, "no-such-group-petrel"));
    dict_close(&d);
    assert_null(dict_open("unix:shadow.byname", 0, &err));
    assert_string_equal(err.data, "unix:shadow.byname: unknown unix map (known: passwd.byname "
                        "group.byname)");
    strbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_shared_handles),
        cmocka_unit_test(test_list_order_and_errors),
        cmocka_unit_test(test_list_limit),
        cmocka_unit_test(test_unix),
    };

    dict_register("fail", fail_open, NULL);
    dict_test_chdir_scratch();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
