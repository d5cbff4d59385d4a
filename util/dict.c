/*
 * dict.c - the lookup table API: type registry, open, shared handles, lookups,
 * table lists.
 * Never exits on a table problem: open failures return NULL with a reason,
 * lookup failures set DICT_ERR_RETRY. Misuse by the caller (a NULL handle, a
 * type registered twice) is our bug and panics.
 */
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "dict_impl.h"
#include "htable.h"
#include "msg.h"
#include "mymalloc.h"

struct dict_type {
    const char *name;
    dict_open_fn open;
    dict_build_fn build;
};

static const struct dict_type dict_builtin[] = {
    {"btree", dict_db_open, dict_db_build},
    {"cidr", dict_cidr_open, NULL},
    {"hash", dict_db_open, dict_db_build},
    {"inline", dict_inline_open, NULL},
    {"pcre", dict_pcre_open, NULL},
    {"regexp", dict_regexp_open, NULL},
    {"static", dict_static_open, NULL},
    {"texthash", dict_texthash_open, NULL},
    {"unix", dict_unix_open, NULL},
};

#define DICT_NBUILTIN (sizeof(dict_builtin) / sizeof(dict_builtin[0]))

static struct dict_type *dict_extra;    /* registered at run time */
static size_t dict_nextra;
static struct htable *dict_cache;       /* "flags:spec" -> struct dict */

static const struct dict_type *dict_type_find(const char *type, size_t len)
{
    size_t i;

    for (i = 0; i < dict_nextra; i++)
        if (strlen(dict_extra[i].name) == len && strncmp(dict_extra[i].name, type, len) == 0)
            return dict_extra + i;
    for (i = 0; i < DICT_NBUILTIN; i++)
        if (strlen(dict_builtin[i].name) == len && strncmp(dict_builtin[i].name, type, len) == 0)
            return dict_builtin + i;
    return NULL;
}

void dict_register(const char *type, dict_open_fn open, dict_build_fn build)
{
    if (type == NULL || *type == 0 || strchr(type, ':') || open == NULL)
        msg_panic("dict_register: bad arguments");
    if (dict_type_find(type, strlen(type)))
        msg_panic("dict_register: type \"%s\" is already registered", type);
    dict_extra = xreallocarray(dict_extra, dict_nextra + 1, sizeof(*dict_extra));
    dict_extra[dict_nextra].name = xstrdup(type);
    dict_extra[dict_nextra].open = open;
    dict_extra[dict_nextra].build = build;
    dict_nextra++;
}

int dict_type_known(const char *type)
{
    return type != NULL && dict_type_find(type, strlen(type)) != NULL;
}

static int dict_name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

void dict_type_names(struct strbuf *out)
{
    size_t n = DICT_NBUILTIN + dict_nextra, i;
    const char **names = xcalloc(n, sizeof(*names));

    for (i = 0; i < DICT_NBUILTIN; i++)
        names[i] = dict_builtin[i].name;
    for (i = 0; i < dict_nextra; i++)
        names[DICT_NBUILTIN + i] = dict_extra[i].name;
    qsort(names, n, sizeof(*names), dict_name_cmp);
    for (i = 0; i < n; i++)
        strbuf_printf(out, "%s%s", i ? " " : "", names[i]);
    free(names);
}

void dict_fold(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s += 'a' - 'A';
}

char *dict_skip_space(char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\v' || *p == '\f')
        p++;
    return p;
}

struct dict *dict_alloc(size_t size, const char *spec, int flags)
{
    struct dict *d;
    const char *colon;

    if (size < sizeof(struct dict))
        msg_panic("dict_alloc: size %zu too small", size);
    d = xcalloc(1, size);
    d->spec = xstrdup(spec);
    colon = strchr(d->spec, ':');
    d->name = colon ? colon + 1 : d->spec;
    d->flags = flags;
    d->error = DICT_ERR_NONE;
    strbuf_init(&d->fold, 64, STRBUF_UNLIMITED);
    return d;
}

/* Splits "type:name"; returns the type or NULL with the reason in err. */
static const struct dict_type *dict_parse_spec(const char *spec, const char **name,
                                               struct strbuf *err)
{
    const char *colon = strchr(spec, ':');
    const struct dict_type *type;

    if (colon == NULL || colon == spec) {
        strbuf_printf(err, "bad table name \"%s\": expected type:name", spec);
        return NULL;
    }
    if ((type = dict_type_find(spec, (size_t) (colon - spec))) == NULL) {
        strbuf_printf(err, "unsupported dictionary type: %.*s (supported: ",
                      (int) (colon - spec), spec);
        dict_type_names(err);
        strbuf_puts(err, ")");
        return NULL;
    }
    *name = colon + 1;
    return type;
}

struct dict *dict_open(const char *spec, int flags, struct strbuf *err)
{
    const struct dict_type *type;
    const char *name;
    struct dict *d;

    if ((type = dict_parse_spec(spec, &name, err)) == NULL)
        return NULL;
    if ((d = type->open(spec, name, flags, err)) == NULL)
        return NULL;
    if (d->get == NULL)
        msg_panic("dict_open: type of %s has no lookup method", spec);
    return d;
}

static char *dict_cache_key(const char *spec, int flags)
{
    struct strbuf key;
    char *result;

    strbuf_init(&key, strlen(spec) + 16, STRBUF_UNLIMITED);
    strbuf_printf(&key, "%x:%s", (unsigned) flags, spec);
    result = strbuf_steal(&key);
    strbuf_release(&key);       /* steal leaves a fresh empty buffer behind */
    return result;
}

struct dict *dict_open_shared(const char *spec, int flags, struct strbuf *err)
{
    char *key = dict_cache_key(spec, flags);
    struct dict *d;

    if (dict_cache == NULL)
        dict_cache = htable_new(16);
    if ((d = htable_find(dict_cache, key)) != NULL) {
        d->refcount++;
    } else if ((d = dict_open(spec, flags, err)) != NULL) {
        d->refcount = 1;
        if (htable_insert(dict_cache, key, d, NULL) != 0)
            msg_panic("dict_open_shared: cannot cache %s", spec);
        d->cache_key = key;
        return d;
    }
    free(key);
    return d;
}

const char *dict_get(struct dict *d, const char *key)
{
    if (d == NULL || key == NULL)
        msg_panic("dict_get: null argument");
    d->error = DICT_ERR_NONE;
    if ((d->flags & DICT_FLAG_FOLD_KEY) && !(d->flags & DICT_FLAG_PATTERN)) {
        strbuf_set(&d->fold, key);
        dict_fold(d->fold.data);
        key = d->fold.data;
    }
    return d->get(d, key);
}

int dict_error(const struct dict *d)
{
    return d->error;
}

int dict_flags(const struct dict *d)
{
    return d->flags;
}

const char *dict_spec(const struct dict *d)
{
    return d->spec;
}

int dict_delete(struct dict *d, const char *key, struct strbuf *err)
{
    char *folded;
    int ret;

    if (d->del == NULL || !(d->flags & DICT_FLAG_WRITE)) {
        strbuf_printf(err, "%s: table does not support delete%s", d->spec,
                      d->del ? " unless opened for writing" : "");
        return -1;
    }
    folded = xstrdup(key);
    if (d->flags & DICT_FLAG_FOLD_KEY)
        dict_fold(folded);
    ret = d->del(d, folded, err);
    free(folded);
    return ret;
}

static void dict_destroy(struct dict *d)
{
    if (d->close)
        d->close(d);
    strbuf_release(&d->fold);
    free(d->cache_key);
    free(d->spec);
    free(d);
}

void dict_close(struct dict **dp)
{
    struct dict *d = *dp;

    if (d == NULL)
        return;
    *dp = NULL;
    if (d->refcount > 0) {
        if (--d->refcount > 0)
            return;
        if (dict_cache == NULL || htable_remove(dict_cache, d->cache_key, NULL) != 1)
            msg_panic("dict_close: %s missing from the shared cache", d->spec);
    }
    dict_destroy(d);
}

long dict_build(const char *spec, int flags, dict_split_fn split, struct strbuf *err)
{
    const struct dict_type *type;
    const char *name;

    if ((type = dict_parse_spec(spec, &name, err)) == NULL)
        return -1;
    if (type->build == NULL) {
        strbuf_printf(err, "%s: type %.*s is read as it is and has nothing to build", spec,
                      (int) (name - 1 - spec), spec);
        return -1;
    }
    return type->build(spec, name, flags, split ? split : dict_split_postmap, err);
}

/*
 * Table lists.
 */
struct dict_list {
    struct dict **dicts;
    size_t count;
    int error;
};

char *dict_token(char **cpp, const char *sep, int *bad)
{
    char *p = *cpp, *start;
    int depth = 0;

    *bad = 0;
    while (*p && strchr(sep, *p))
        p++;
    if (*p == 0) {
        *cpp = p;
        return NULL;
    }
    for (start = p; *p; p++) {
        if (*p == '{')
            depth++;
        else if (*p == '}' && --depth < 0)
            break;
        else if (depth == 0 && strchr(sep, *p))
            break;
    }
    if (depth != 0) {
        *bad = 1;
        return NULL;
    }
    if (*p)
        *p++ = 0;
    *cpp = p;
    return start;
}

struct dict_list *dict_list_open(const char *value, int flags, struct strbuf *err)
{
    struct dict_list *list = xcalloc(1, sizeof(*list));
    char *copy = xstrdup(value), *cp = copy, *spec;
    struct dict *d;
    int bad;

    while ((spec = dict_token(&cp, DICT_LIST_SEP, &bad)) != NULL) {
        if (list->count >= DICT_LIST_MAX) {
            strbuf_printf(err, "more than %d tables in \"%s\"", DICT_LIST_MAX, value);
            bad = 1;
            break;
        }
        if ((d = dict_open_shared(spec, flags, err)) == NULL) {
            bad = 1;
            break;
        }
        list->dicts = xreallocarray(list->dicts, list->count + 1, sizeof(*list->dicts));
        list->dicts[list->count++] = d;
    }
    free(copy);
    if (bad) {
        if (spec == NULL)
            strbuf_printf(err, "unbalanced \"{\" or \"}\" in table list \"%s\"", value);
        dict_list_close(&list);
        return NULL;
    }
    return list;
}

static const char *dict_list_find(struct dict_list *list, const char *key, int need_flags)
{
    const char *value;
    size_t i;

    list->error = DICT_ERR_NONE;
    for (i = 0; i < list->count; i++) {
        if ((dict_flags(list->dicts[i]) & need_flags) != need_flags)
            continue;
        if ((value = dict_get(list->dicts[i], key)) != NULL)
            return value;
        if ((list->error = dict_error(list->dicts[i])) != DICT_ERR_NONE)
            return NULL;
    }
    return NULL;
}

const char *dict_list_get(struct dict_list *list, const char *key)
{
    return dict_list_find(list, key, 0);
}

const char *dict_list_get_fixed(struct dict_list *list, const char *key)
{
    return dict_list_find(list, key, DICT_FLAG_FIXED);
}

int dict_list_error(const struct dict_list *list)
{
    return list->error;
}

size_t dict_list_count(const struct dict_list *list)
{
    return list->count;
}

void dict_list_close(struct dict_list **listp)
{
    struct dict_list *list = *listp;
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; i < list->count; i++)
        dict_close(&list->dicts[i]);
    free(list->dicts);
    free(list);
    *listp = NULL;
}

int dict_unbrace(char **text)
{
    char *p = dict_skip_space(*text), *end;

    if (*p != '{')
        return 0;
    end = p + strlen(p);
    while (end > p + 1 && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'
                           || end[-1] == '\n'))
        end--;
    if (end == p + 1 || end[-1] != '}')
        return -1;
    *--end = 0;
    while (end > p + 1 && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'
                           || end[-1] == '\n'))
        *--end = 0;
    *text = dict_skip_space(p + 1);
    return 1;
}
