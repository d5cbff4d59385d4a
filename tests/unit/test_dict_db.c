/*
 * test_dict_db.c - hash: and btree: tables through the real build code:
 * build, lookup, folding, duplicates, errors with line numbers and no
 * half-made files, delete, atomic replacement, permissions, and a
 * 100 000-key table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <cmocka.h>

#include "dict.h"
#include "dict_test.h"

static const char *const db_types[] = {"hash", "btree"};

static struct dict *open_built(const char *type, const char *file, const char *text,
                               long want_count, int flags)
{
    char spec[256];
    struct strbuf err;
    struct dict *d;

    snprintf(spec, sizeof(spec), "%s:%s", type, file);
    dict_test_write(file, text);
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    assert_int_equal(dict_build(spec, DICT_FLAG_FOLD_KEY, NULL, &err), want_count);
    d = dict_open(spec, flags, &err);
    if (d == NULL)
        fail_msg("open %s: %s", spec, err.data);
    strbuf_release(&err);
    return d;
}

static void test_build_and_lookup(void **state)
{
    size_t t;
    struct dict *d;

    for (t = 0; t < 2; t++) {
        d = open_built(db_types[t], "aliases", "# c\nPostmaster root\nbob first\nbob second\n"
                       "carol a,\n  b\nlong x\n", 4, DICT_FLAG_FOLD_KEY);
        assert_true(dict_flags(d) & DICT_FLAG_FIXED);
        assert_string_equal(dict_get(d, "postmaster"), "root");
        assert_string_equal(dict_get(d, "POSTMASTER"), "root");
        assert_string_equal(dict_get(d, "bob"), "first");
        assert_string_equal(dict_get(d, "carol"), "a,  b");
        assert_null(dict_get(d, "root"));
        assert_int_equal(dict_error(d), DICT_ERR_NONE);
        assert_null(dict_get(d, ""));
        assert_null(dict_get(d, "lon"));
        dict_close(&d);
        /* Without folding at lookup, only the lowercased stored key matches. */
        d = open_built(db_types[t], "aliases", "Postmaster root\n", 1, 0);
        assert_null(dict_get(d, "Postmaster"));
        assert_string_equal(dict_get(d, "postmaster"), "root");
        dict_close(&d);
    }
}

static void test_build_keeps_case_without_fold(void **state)
{
    struct strbuf err;
    struct dict *d;

    dict_test_write("cased", "MixedCase v\n");
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    assert_int_equal(dict_build("hash:cased", 0, NULL, &err), 1);
    d = dict_open("hash:cased", 0, &err);
    assert_string_equal(dict_get(d, "MixedCase"), "v");
    assert_null(dict_get(d, "mixedcase"));
    dict_close(&d);
    strbuf_release(&err);
}

static int count_tmp_files(void)
{
    DIR *dir = opendir(".");
    struct dirent *de;
    int n = 0;

    while ((de = readdir(dir)) != NULL)
        if (strstr(de->d_name, ".tmp."))
            n++;
    closedir(dir);
    return n;
}

static void test_build_errors(void **state)
{
    struct strbuf err;
    struct stat st;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    dict_test_write("broken", "a 1\nb 2\n\n# x\nnovalue\n");
    assert_int_equal(dict_build("hash:broken", DICT_FLAG_FOLD_KEY, NULL, &err), -1);
    assert_string_equal(err.data, "broken:5: expected format: key whitespace value");
    assert_int_equal(stat("broken.db", &st), -1);
    assert_int_equal(count_tmp_files(), 0);
    strbuf_reset(&err);
    assert_int_equal(dict_build("hash:missing", 0, NULL, &err), -1);
    assert_string_equal(err.data, "open missing: No such file or directory");
    strbuf_reset(&err);
    assert_null(dict_open("hash:missing", 0, &err));
    assert_non_null(strstr(err.data, "missing.db"));
    strbuf_reset(&err);
    assert_int_equal(dict_build("texthash:broken", 0, NULL, &err), -1);
    assert_string_equal(err.data, "texthash:broken: type texthash is read as it is and has "
                        "nothing to build");
    strbuf_release(&err);
}

static void test_empty_source(void **state)
{
    struct dict *d = open_built("hash", "empty", "", 0, 0);

    assert_null(dict_get(d, "x"));
    assert_int_equal(dict_error(d), DICT_ERR_NONE);
    dict_close(&d);
}

static void test_delete(void **state)
{
    struct strbuf err;
    struct dict *d;
    size_t t;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    for (t = 0; t < 2; t++) {
        d = open_built(db_types[t], "del", "a 1\nb 2\n", 2, DICT_FLAG_FOLD_KEY);
        /* Read-only handles refuse. */
        assert_int_equal(dict_delete(d, "a", &err), -1);
        dict_close(&d);
        d = dict_open(t ? "btree:del" : "hash:del", DICT_FLAG_FOLD_KEY | DICT_FLAG_WRITE, &err);
        assert_non_null(d);
        assert_int_equal(dict_delete(d, "A", &err), 0);
        assert_int_equal(dict_delete(d, "a", &err), 1);
        dict_close(&d);
        d = dict_open(t ? "btree:del" : "hash:del", 0, &err);
        assert_null(dict_get(d, "a"));
        assert_string_equal(dict_get(d, "b"), "2");
        dict_close(&d);
    }
    strbuf_release(&err);
}

static void test_atomic_rebuild_and_mode(void **state)
{
    struct stat before, after;
    struct strbuf err;
    struct dict *old;

    old = open_built("hash", "atomic", "k old\n", 1, 0);
    assert_int_equal(stat("atomic.db", &before), 0);
    dict_test_write("atomic", "k new\n");
    chmod("atomic", 0640);
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    assert_int_equal(dict_build("hash:atomic", DICT_FLAG_FOLD_KEY, NULL, &err), 1);
    assert_int_equal(stat("atomic.db", &after), 0);
    assert_true(before.st_ino != after.st_ino);
    assert_int_equal(after.st_mode & 0777, 0640);
    /* The handle opened before keeps reading the file it opened. */
    assert_string_equal(dict_get(old, "k"), "old");
    dict_close(&old);
    chmod("atomic", 0600);
    assert_int_equal(dict_build("hash:atomic", DICT_FLAG_FOLD_KEY, NULL, &err), 1);
    assert_int_equal(stat("atomic.db", &after), 0);
    assert_int_equal(after.st_mode & 0777, 0600);
    assert_int_equal(count_tmp_files(), 0);
    strbuf_release(&err);
}

static void test_hundred_thousand_keys(void **state)
{
    FILE *fp = fopen("big", "w");
    struct strbuf err;
    struct dict *d;
    char key[64], want[64];
    long i;

    assert_non_null(fp);
    for (i = 0; i < 100000; i++)
        fprintf(fp, "User%ld@Example.com value-%ld\n", i, i * 7);
    assert_int_equal(fclose(fp), 0);
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    assert_int_equal(dict_build("hash:big", DICT_FLAG_FOLD_KEY, NULL, &err), 100000);
    d = dict_open("hash:big", DICT_FLAG_FOLD_KEY, &err);
    assert_non_null(d);
    for (i = 0; i < 100000; i += 97) {
        snprintf(key, sizeof(key), "user%ld@example.COM", i);
        snprintf(want, sizeof(want), "value-%ld", i * 7);
        assert_string_equal(dict_get(d, key), want);
    }
    assert_string_equal(dict_get(d, "user99999@example.com"), "value-699993");
    for (i = 100000; i < 100500; i++) {
        snprintf(key, sizeof(key), "user%ld@example.com", i);
        assert_null(dict_get(d, key));
        assert_int_equal(dict_error(d), DICT_ERR_NONE);
    }
    dict_close(&d);
    strbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_lookup),
        cmocka_unit_test(test_build_keeps_case_without_fold),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_empty_source),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_atomic_rebuild_and_mode),
        cmocka_unit_test(test_hundred_thousand_keys),
    };

    dict_test_chdir_scratch();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
