/*
 * test_dict_addr.c - the order of keys in address and access lookups,
 * table-driven: a recording table type logs every key it is asked, so the
 * exact sequence (and which keys pattern tables see) is what is asserted.
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

static struct strbuf trace;

/* "trace:" (fixed) and "tracepat:" (pattern) log "name(key) " and find nothing. */
static const char *trace_get(struct dict *d, const char *key)
{
    strbuf_printf(&trace, "%s(%s) ", d->flags & DICT_FLAG_PATTERN ? "P" : "F", key);
    return NULL;
}

static struct dict *trace_open(const char *spec, const char *name, int flags,
                               struct strbuf *err)
{
    struct dict *d;

    (void) name;
    (void) err;
    d = dict_alloc(sizeof(*d), spec, flags | DICT_FLAG_FIXED);
    d->get = trace_get;
    return d;
}

static struct dict *tracepat_open(const char *spec, const char *name, int flags,
                                  struct strbuf *err)
{
    struct dict *d;

    (void) name;
    (void) err;
    d = dict_alloc(sizeof(*d), spec, flags | DICT_FLAG_PATTERN);
    d->get = trace_get;
    return d;
}

static void test_address_order(void **state)
{
    static const struct {
        const char *address;
        const char *delims;
        int flags;
        const char *want;
    } cases[] = {
        {"user+ext@example.com", "+", 0,
         "F(user+ext@example.com) P(user+ext@example.com) F(user@example.com) "
         "F(@example.com) "},
        {"user+ext@example.com", "+", DICT_ADDR_LOCAL,
         "F(user+ext@example.com) P(user+ext@example.com) F(user@example.com) "
         "F(user+ext) F(user) F(@example.com) "},
        {"user@example.com", "+", DICT_ADDR_LOCAL,
         "F(user@example.com) P(user@example.com) F(user) F(@example.com) "},
        {"user-a+b@example.com", "-+", 0,
         "F(user-a+b@example.com) P(user-a+b@example.com) F(user@example.com) "
         "F(@example.com) "},
        {"user+ext@example.com", NULL, 0,
         "F(user+ext@example.com) P(user+ext@example.com) F(@example.com) "},
        {"+ext@example.com", "+", 0,
         "F(+ext@example.com) P(+ext@example.com) F(@example.com) "},
        {"owner-list@example.com", "-", 0,
         "F(owner-list@example.com) P(owner-list@example.com) F(@example.com) "},
        {"list-request@example.com", "-", 0,
         "F(list-request@example.com) P(list-request@example.com) F(@example.com) "},
        {"user+ext", "+", 0, "F(user+ext) P(user+ext) F(user) "},
        {"", "+", 0, "F() P() "},
        {"a@b@example.com", "+", 0, "F(a@b@example.com) P(a@b@example.com) F(@example.com) "},
    };
    struct strbuf err;
    struct dict_list *list;
    size_t i;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    list = dict_list_open("trace:a tracepat:b", 0, &err);
    assert_non_null(list);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strbuf_reset(&trace);
        assert_null(dict_addr_lookup(list, cases[i].address, cases[i].delims, cases[i].flags,
                                     NULL));
        if (strcmp(trace.data, cases[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].address, trace.data,
                     cases[i].want);
    }
    dict_list_close(&list);
    strbuf_release(&err);
}

static void test_domain_and_access_order(void **state)
{
    static const struct {
        int access;             /* 0: domain walk, 1: access address order */
        const char *key;
        int parent_style;
        const char *want;
    } cases[] = {
        {0, "sub.example.com", 1, "F(sub.example.com) P(sub.example.com) F(example.com) F(com) "},
        {0, "sub.example.com", 0,
         "F(sub.example.com) P(sub.example.com) F(.example.com) F(.com) "},
        {0, "com", 0, "F(com) P(com) "},
        {0, "example.com.", 1, "F(example.com.) P(example.com.) F(com.) "},
        {0, "", 1, ""},
        {1, "user+x@sub.example.com", 1,
         "F(user+x@sub.example.com) P(user+x@sub.example.com) F(user@sub.example.com) "
         "F(sub.example.com) F(example.com) F(com) F(user+x@) F(user@) "},
        {1, "user@example.com", 0,
         "F(user@example.com) P(user@example.com) F(example.com) F(.com) F(user@) "},
        {1, "user+x", 0, "F(user+x) P(user+x) F(user) "},
    };
    struct strbuf err;
    struct dict_list *list;
    size_t i;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    list = dict_list_open("trace:a, tracepat:b", 0, &err);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strbuf_reset(&trace);
        if (cases[i].access)
            assert_null(dict_addr_access_lookup(list, cases[i].key, "+",
                                                cases[i].parent_style));
        else
            assert_null(dict_addr_domain_lookup(list, cases[i].key, cases[i].parent_style));
        if (strcmp(trace.data, cases[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].key, trace.data, cases[i].want);
    }
    dict_list_close(&list);
    strbuf_release(&err);
}

static void test_values_and_extension(void **state)
{
    struct strbuf err, ext;
    struct dict_list *list;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    strbuf_init(&ext, 0, STRBUF_UNLIMITED);
    list = dict_list_open("inline:{ user@example.com=exact, bob=local-bob, "
                          "@example.com=catchall, example.org=OK }", DICT_FLAG_FOLD_KEY, &err);
    assert_string_equal(dict_addr_lookup(list, "User+Tag@Example.COM", "+", 0, &ext), "exact");
    assert_string_equal(ext.data, "+Tag");
    assert_string_equal(dict_addr_lookup(list, "user@example.com", "+", 0, &ext), "exact");
    assert_string_equal(ext.data, "");
    assert_string_equal(dict_addr_lookup(list, "bob+x@example.com", "+", DICT_ADDR_LOCAL,
                                         &ext), "local-bob");
    assert_string_equal(ext.data, "+x");
    assert_string_equal(dict_addr_lookup(list, "bob+x@example.com", "+", 0, &ext), "catchall");
    assert_string_equal(ext.data, "");
    assert_null(dict_addr_lookup(list, "bob@example.net", "+", 0, &ext));
    assert_int_equal(dict_list_error(list), DICT_ERR_NONE);
    assert_string_equal(dict_addr_domain_lookup(list, "mail.example.org", 1), "OK");
    assert_null(dict_addr_domain_lookup(list, "mail.example.org", 0));
    assert_string_equal(dict_addr_access_lookup(list, "x@a.example.org", "+", 1), "OK");
    dict_list_close(&list);

    /* An error part-way stops the search: the catch-all must not answer. */
    list = dict_list_open("trace:a fail:b inline:{ @example.com=catchall }", 0, &err);
    assert_null(dict_addr_lookup(list, "u@example.com", "+", 0, &ext));
    assert_int_equal(dict_list_error(list), DICT_ERR_RETRY);
    dict_list_close(&list);
    strbuf_release(&err);
    strbuf_release(&ext);
}

static const char *fail_get(struct dict *d, const char *key)
{
    (void) key;
    d->error = DICT_ERR_RETRY;
    return NULL;
}

static struct dict *fail_open(const char *spec, const char *name, int flags,
                              struct strbuf *err)
{
    struct dict *d = trace_open(spec, name, flags, err);

    d->get = fail_get;
    return d;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_order),
        cmocka_unit_test(test_domain_and_access_order),
        cmocka_unit_test(test_values_and_extension),
    };

    strbuf_init(&trace, 0, STRBUF_UNLIMITED);
    dict_register("trace", trace_open, NULL);
    dict_register("tracepat", tracepat_open, NULL);
    dict_register("fail", fail_open, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
