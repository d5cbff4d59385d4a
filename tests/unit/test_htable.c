/*
 * test_htable.c - the open-addressing hash table: insert, duplicates, find,
 * remove with backward shift (every survivor still found), walk, growth.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "htable.h"

static void test_empty_table(void **state)
{
    struct htable *ht = htable_new(0);
    void *v = (void *) 1;

    assert_null(htable_find(ht, ""));
    assert_int_equal(htable_lookup(ht, "x", &v), 0);
    assert_int_equal(htable_remove(ht, "x", NULL), 0);
    assert_int_equal(htable_count(ht), 0);
    htable_free(&ht, NULL);
    assert_null(ht);
    htable_free(&ht, NULL);
}

static void test_insert_duplicate_keeps_first(void **state)
{
    struct htable *ht = htable_new(4);
    void *old = NULL;

    assert_int_equal(htable_insert(ht, "k", "first", NULL), 0);
    assert_int_equal(htable_insert(ht, "k", "second", &old), 1);
    assert_string_equal(old, "first");
    assert_string_equal(htable_find(ht, "k"), "first");
    assert_int_equal(htable_insert(ht, "", "empty key", NULL), 0);
    assert_string_equal(htable_find(ht, ""), "empty key");
    assert_int_equal(htable_count(ht), 2);
    htable_free(&ht, NULL);
}

static int count_walk(const char *key, void *value, void *ctx)
{
    (void) key;
    (void) value;
    (*(size_t *) ctx)++;
    return 0;
}

static void test_many_keys_grow_remove(void **state)
{
    struct htable *ht = htable_new(0);
    char key[32];
    size_t i, walked = 0;
    void *v;

    for (i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "key%zu", i);
        assert_int_equal(htable_insert(ht, key, (void *) (uintptr_t) (i + 1), NULL), 0);
    }
    assert_int_equal(htable_count(ht), 20000);
    /* Remove every third key; the rest must survive the backward shifts. */
    for (i = 0; i < 20000; i += 3) {
        snprintf(key, sizeof(key), "key%zu", i);
        assert_int_equal(htable_remove(ht, key, &v), 1);
        assert_int_equal((uintptr_t) v, i + 1);
    }
    for (i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "key%zu", i);
        if (i % 3 == 0)
            assert_null(htable_find(ht, key));
        else
            assert_int_equal((uintptr_t) htable_find(ht, key), i + 1);
    }
    assert_int_equal(htable_walk(ht, count_walk, &walked), 0);
    assert_int_equal(walked, htable_count(ht));
    assert_int_equal(walked, 20000 - 6667);
    htable_free(&ht, NULL);
}

static int stop_walk(const char *key, void *value, void *ctx)
{
    (void) key;
    (void) value;
    (void) ctx;
    return 7;
}

static void free_counted(void *value)
{
    free(value);
}

static void test_walk_stops_and_free_values(void **state)
{
    struct htable *ht = htable_new(0);

    htable_insert(ht, "a", strdup("1"), NULL);
    htable_insert(ht, "b", strdup("2"), NULL);
    assert_int_equal(htable_walk(ht, stop_walk, NULL), 7);
    htable_free(&ht, free_counted);     /* leak checkers see the values go */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_insert_duplicate_keeps_first),
        cmocka_unit_test(test_many_keys_grow_remove),
        cmocka_unit_test(test_walk_stops_and_free_values),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
