/*
 * dict_inline.c - inline:{ key1=value1, key2=value2, { key3 = text, with comma } }
 * A table written in the parameter value itself. Elements are separated by
 * commas or white space; an element in braces may hold both, and white space
 * around its "=" is dropped. Keys are lowercased like texthash keys; the first
 * of duplicate keys wins. Syntax errors fail the open with the reason; lookups
 * never fail.
 */
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "dict_impl.h"
#include "htable.h"
#include "msg.h"
#include "mymalloc.h"

struct dict_inline {
    struct dict dict;
    struct htable *table;
};

static const char *dict_inline_get(struct dict *d, const char *key)
{
    return htable_find(((struct dict_inline *) d)->table, key);
}

static void dict_inline_free_value(void *value)
{
    free(value);
}

static void dict_inline_close(struct dict *d)
{
    htable_free(&((struct dict_inline *) d)->table, dict_inline_free_value);
}

static void dict_inline_trim(char *s)
{
    size_t len = strlen(s);

    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'
                       || s[len - 1] == '\n'))
        s[--len] = 0;
}

/* One "key=value" element; returns -1 with the reason appended to err. */
static int dict_inline_add(struct dict_inline *di, char *elem, struct strbuf *err)
{
    char *eq, *key, *value;

    if (dict_unbrace(&elem) < 0) {
        strbuf_printf(err, "%s: unbalanced braces in \"%s\"", di->dict.spec, elem);
        return -1;
    }
    if ((eq = strchr(elem, '=')) == NULL) {
        strbuf_printf(err, "%s: missing \"=\" in \"%s\"; expected key=value",
                      di->dict.spec, elem);
        return -1;
    }
    *eq = 0;
    key = dict_skip_space(elem);
    dict_inline_trim(key);
    value = dict_skip_space(eq + 1);
    if (*key == 0) {
        strbuf_printf(err, "%s: empty key before \"=%s\"", di->dict.spec, value);
        return -1;
    }
    dict_fold(key);
    value = xstrdup(value);
    if (htable_insert(di->table, key, value, NULL) != 0) {
        msg_warn("%s: duplicate entry: \"%s\"", di->dict.spec, key);
        free(value);
    }
    return 0;
}

struct dict *dict_inline_open(const char *spec, const char *name, int flags, struct strbuf *err)
{
    struct dict_inline *di;
    struct dict *d;
    char *copy = xstrdup(name), *text = copy, *elem;
    int bad = 0;

    if (dict_unbrace(&text) <= 0) {
        strbuf_printf(err, "%s: expected inline:{ key=value, ... }", spec);
        free(copy);
        return NULL;
    }
    di = (struct dict_inline *) dict_alloc(sizeof(*di), spec, flags | DICT_FLAG_FIXED);
    di->table = htable_new(16);
    di->dict.get = dict_inline_get;
    di->dict.close = dict_inline_close;
    d = &di->dict;
    while ((elem = dict_token(&text, DICT_LIST_SEP, &bad)) != NULL) {
        if (dict_inline_add(di, elem, err) < 0) {
            bad = 1;
            break;
        }
    }
    if (!bad && htable_count(di->table) == 0) {
        strbuf_printf(err, "%s: empty table", spec);
        bad = 1;
    } else if (bad && elem == NULL) {
        strbuf_printf(err, "%s: unbalanced braces", spec);
    }
    free(copy);
    if (bad)
        dict_close(&d);
    return d;
}
