/*
 * dict_texthash.c - texthash:FILE, a postmap-format source file read into
 * memory at open; no build step.
 * Keys are lowercased at load like "petrel map build" does, so lookups with
 * DICT_FLAG_FOLD_KEY behave as with hash:. Duplicate keys: the first wins and
 * a "FILE:LINE: duplicate entry" warning is logged, as for hash:.
 * A file that cannot be read or parsed makes the open fail with the reason;
 * lookups never fail.
 */
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "dict_impl.h"
#include "htable.h"
#include "msg.h"
#include "mymalloc.h"

struct dict_texthash {
    struct dict dict;
    struct htable *table;
};

static const char *dict_texthash_get(struct dict *d, const char *key)
{
    return htable_find(((struct dict_texthash *) d)->table, key);
}

static void dict_texthash_free_value(void *value)
{
    free(value);
}

static void dict_texthash_close(struct dict *d)
{
    htable_free(&((struct dict_texthash *) d)->table, dict_texthash_free_value);
}

static int dict_texthash_add(void *ctx, const struct dict_source *src, const char *key,
                             const char *value, struct strbuf *err)
{
    struct dict_texthash *dt = ctx;
    char *copy = xstrdup(value);
    int status = htable_insert(dt->table, key, copy, NULL);

    if (status == 0)
        return 0;
    free(copy);
    if (status > 0) {
        msg_warn("%s:%lu: duplicate entry: \"%s\"", src->name, src->lineno, key);
        return 0;
    }
    dict_source_where(src, err);
    strbuf_puts(err, "too many entries");
    return -1;
}

static struct dict *dict_texthash_parse(const char *spec, const char *name, const char *buf,
                                        size_t len, int flags, struct strbuf *err)
{
    struct dict_texthash *dt;
    struct dict *d;

    dt = (struct dict_texthash *) dict_alloc(sizeof(*dt), spec, flags | DICT_FLAG_FIXED);
    dt->table = htable_new(64);
    dt->dict.get = dict_texthash_get;
    dt->dict.close = dict_texthash_close;
    if (dict_source_parse_pairs(name, buf, len, NULL, 1, dict_texthash_add, dt, err) < 0) {
        d = &dt->dict;
        dict_close(&d);
        return NULL;
    }
    return &dt->dict;
}

struct dict *dict_texthash_open(const char *spec, const char *name, int flags, struct strbuf *err)
{
    return dict_source_open_file(spec, name, flags, dict_texthash_parse, err);
}

struct dict *dict_texthash_open_buf(const char *name, const char *buf, size_t len, int flags,
                                struct strbuf *err)
{
    return dict_source_open_buf("texthash", name, buf, len, flags, dict_texthash_parse, err);
}
