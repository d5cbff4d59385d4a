/*
 * dict_static.c - static:value and static:{ value with spaces }: every lookup
 * returns the value. Opening fails only on an unbalanced brace; lookups never fail.
 */
#include <stdlib.h>

#include "dict.h"
#include "dict_impl.h"
#include "mymalloc.h"

struct dict_static {
    struct dict dict;
    char *value;
};

static const char *dict_static_get(struct dict *d, const char *key)
{
    (void) key;
    return ((struct dict_static *) d)->value;
}

static void dict_static_close(struct dict *d)
{
    free(((struct dict_static *) d)->value);
}

struct dict *dict_static_open(const char *spec, const char *name, int flags, struct strbuf *err)
{
    struct dict_static *ds;
    char *copy = xstrdup(name), *text = copy;

    if (dict_unbrace(&text) < 0) {
        strbuf_printf(err, "%s: missing \"}\" at the end of the value", spec);
        free(copy);
        return NULL;
    }
    ds = (struct dict_static *) dict_alloc(sizeof(*ds), spec, flags | DICT_FLAG_FIXED);
    ds->value = xstrdup(text);
    ds->dict.get = dict_static_get;
    ds->dict.close = dict_static_close;
    free(copy);
    return &ds->dict;
}
