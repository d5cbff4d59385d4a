/*
 * dict_addr.c - looking up addresses and domains in table lists in Postfix's
 * order (see dict.h for the exact sequence of keys).
 * Pattern tables see only the complete address or domain, never a partial
 * key, so a regexp cannot be surprised by "@domain". Any lookup error stops
 * the sequence at once and is reported through dict_list_error(): a later,
 * less specific key must not answer for a table that could not be read.
 * The address is never modified and never trusted: loops are bounded by its
 * length.
 */
#include <string.h>
#include <strings.h>

#include "dict.h"
#include "dict_impl.h"
#include "strbuf.h"

/* Where the extension starts in local[0..len), or len when there is none. */
static size_t dict_addr_ext_pos(const char *local, size_t len, const char *delims)
{
    size_t pos;

    if (delims == NULL || *delims == 0 || len == 0)
        return len;
    /* Mailing-list conventions: owner-list and list-request are names, not extensions. */
    if (strchr(delims, '-') && ((len > 6 && strncasecmp(local, "owner-", 6) == 0)
                                || (len > 8 && strncasecmp(local + len - 8, "-request", 8) == 0)))
        return len;
    for (pos = 0; pos < len && strchr(delims, local[pos]) == NULL; pos++)
         /* void */ ;
    return pos == 0 ? len : pos;
}

/* The value for key from every table (all) or the fixed ones. */
static const char *dict_addr_try(struct dict_list *list, struct strbuf *key, int all)
{
    return all ? dict_list_get(list, key->data) : dict_list_get_fixed(list, key->data);
}

/* Tells whether the search is over: a match, or an error. */
#define DICT_ADDR_DONE(list, v) ((v) != NULL || dict_list_error(list) != DICT_ERR_NONE)

static const char *dict_addr_walk(struct dict_list *list, const char *domain, int parent_style,
                                  int first_all, struct strbuf *key)
{
    const char *name = domain, *next, *value;
    int all = first_all;

    while (*name && strcmp(name, ".") != 0) {
        strbuf_set(key, name);
        value = dict_addr_try(list, key, all);
        if (DICT_ADDR_DONE(list, value))
            return value;
        if ((next = strchr(name + 1, '.')) == NULL)
            break;
        name = parent_style ? next + 1 : next;
        all = 0;
    }
    return NULL;
}

const char *dict_addr_domain_lookup(struct dict_list *list, const char *domain, int parent_style)
{
    struct strbuf key;
    const char *value;

    strbuf_init(&key, 64, STRBUF_UNLIMITED);
    value = dict_addr_walk(list, domain, parent_style, 1, &key);
    strbuf_release(&key);
    return value;
}

struct dict_addr_parts {
    const char *local;          /* the address itself */
    size_t local_len;
    size_t ext_pos;             /* == local_len: no extension */
    const char *domain;         /* NULL: no "@" */
};

static void dict_addr_split(const char *address, const char *delims, struct dict_addr_parts *p)
{
    const char *at = strrchr(address, '@');

    p->local = address;
    p->local_len = at ? (size_t) (at - address) : strlen(address);
    p->domain = at ? at + 1 : NULL;
    p->ext_pos = dict_addr_ext_pos(address, p->local_len, delims);
}

/* key = local part (len bytes) + suffix + domain (either may be NULL). */
static void dict_addr_key(struct strbuf *key, const struct dict_addr_parts *p, size_t len,
                          const char *suffix, const char *domain)
{
    strbuf_reset(key);
    strbuf_append(key, p->local, len);
    if (suffix)
        strbuf_puts(key, suffix);
    if (domain)
        strbuf_puts(key, domain);
}

/* On a match without the extension, hands the extension to the caller. */
static void dict_addr_set_ext(struct strbuf *ext, const struct dict_addr_parts *p)
{
    if (ext)
        strbuf_append(ext, p->local + p->ext_pos, p->local_len - p->ext_pos);
}

const char *dict_addr_lookup(struct dict_list *list, const char *address, const char *delims,
                             int flags, struct strbuf *ext)
{
    struct dict_addr_parts p;
    struct strbuf key;
    const char *value;
    int has_ext;

    if (ext)
        strbuf_reset(ext);
    dict_addr_split(address, delims, &p);
    has_ext = p.ext_pos < p.local_len;
    strbuf_init(&key, 64, STRBUF_UNLIMITED);
    strbuf_set(&key, address);
    value = dict_addr_try(list, &key, 1);
    if (DICT_ADDR_DONE(list, value))
        goto out;
    if (has_ext && p.domain) {
        dict_addr_key(&key, &p, p.ext_pos, "@", p.domain);
        if (DICT_ADDR_DONE(list, value = dict_addr_try(list, &key, 0))) {
            if (value)
                dict_addr_set_ext(ext, &p);
            goto out;
        }
    }
    if ((flags & DICT_ADDR_LOCAL) || p.domain == NULL) {
        if (p.domain) {
            dict_addr_key(&key, &p, p.local_len, NULL, NULL);
            if (DICT_ADDR_DONE(list, value = dict_addr_try(list, &key, 0)))
                goto out;
        }
        if (has_ext) {
            dict_addr_key(&key, &p, p.ext_pos, NULL, NULL);
            if (DICT_ADDR_DONE(list, value = dict_addr_try(list, &key, 0))) {
                if (value)
                    dict_addr_set_ext(ext, &p);
                goto out;
            }
        }
    }
    if (p.domain) {
        dict_addr_key(&key, &p, 0, "@", p.domain);
        value = dict_addr_try(list, &key, 0);
    }
out:
    strbuf_release(&key);
    return value;
}

const char *dict_addr_access_lookup(struct dict_list *list, const char *address,
                                    const char *delims, int parent_style)
{
    struct dict_addr_parts p;
    struct strbuf key;
    const char *value;
    int has_ext;

    dict_addr_split(address, delims, &p);
    has_ext = p.ext_pos < p.local_len;
    strbuf_init(&key, 64, STRBUF_UNLIMITED);
    strbuf_set(&key, address);
    value = dict_addr_try(list, &key, 1);
    if (DICT_ADDR_DONE(list, value))
        goto out;
    if (has_ext) {
        dict_addr_key(&key, &p, p.ext_pos, p.domain ? "@" : NULL, p.domain);
        if (DICT_ADDR_DONE(list, value = dict_addr_try(list, &key, 0)))
            goto out;
    }
    if (p.domain == NULL)
        goto out;
    if (DICT_ADDR_DONE(list, value = dict_addr_walk(list, p.domain, parent_style, 0, &key)))
        goto out;
    dict_addr_key(&key, &p, p.local_len, "@", NULL);
    if (DICT_ADDR_DONE(list, value = dict_addr_try(list, &key, 0)) || !has_ext)
        goto out;
    dict_addr_key(&key, &p, p.ext_pos, "@", NULL);
    value = dict_addr_try(list, &key, 0);
out:
    strbuf_release(&key);
    return value;
}
