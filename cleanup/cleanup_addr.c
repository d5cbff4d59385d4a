/*
 * cleanup_addr.c - envelope addresses in cleanup: rewriting to the canonical
 * form (util/resolve.h), canonical_maps / sender_canonical_maps /
 * recipient_canonical_maps, virtual_alias_maps expansion, always_bcc /
 * sender_bcc_maps / recipient_bcc_maps, duplicate removal, and the sender and
 * recipient records of the queue file.
 * Postfix semantics: canonical lookups repeat up to 10 times until an address
 * maps to itself; virtual alias expansion is recursive, bounded by
 * virtual_alias_recursion_limit and virtual_alias_expansion_limit, and an
 * address that expands to itself stays as a recipient; BCC recipients get
 * NOTIFY=NEVER. A table that fails defers the message (4xx), never guesses.
 * Never writes a recipient twice; never grows lists past their limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "address.h"
#include "cleanup.h"
#include "cleanup_client.h"
#include "dict.h"
#include "header.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "queue_path.h"
#include "resolve.h"
#include "status_log.h"
#include "dsn_split.h"

#define CLEANUP_CANON_LOOPS   10        /* Postfix cleanup_map11 MAX_RECURSION */
#define CLEANUP_ADDR_MAX      ADDRESS_MAX_PATH
#define CLEANUP_RCPT_MAX      ((size_t) QFILE_MAX_RECORDS / 4)  /* O, N, R per recipient */
#define CLEANUP_LATE_MAX      ((size_t) 100000)

static struct dict_list *cleanup_canon, *cleanup_send_canon, *cleanup_rcpt_canon;
static struct dict_list *cleanup_virtual, *cleanup_send_bcc, *cleanup_rcpt_bcc;
static int cleanup_canon_sender, cleanup_canon_rcpt;
static int cleanup_prop_canon, cleanup_prop_virtual;

/* Whether a comma/space separated list holds word (case-insensitive). */
static int cleanup_list_has(const char *list, const char *word)
{
    size_t wlen = strlen(word);
    const char *p = list;

    while (*p) {
        size_t n;

        p += strspn(p, ", \t\r\n");
        n = strcspn(p, ", \t\r\n");
        if (n == wlen && strncasecmp(p, word, n) == 0)
            return 1;
        p += n;
    }
    return 0;
}

static struct dict_list *cleanup_maps_open(const char *name, const char *value)
{
    struct strbuf err;
    struct dict_list *list;

    if (value == NULL || value[strspn(value, ", \t")] == 0)
        return NULL;
    strbuf_init(&err, 128, 4096);
    if ((list = dict_list_open(value, DICT_FLAG_FOLD_KEY, &err)) == NULL)
        msg_fatal("%s = %s: %s", name, value, err.data);
    strbuf_release(&err);
    return list;
}

void cleanup_addr_init(void)
{
    resolve_init();
    cleanup_canon = cleanup_maps_open("canonical_maps", var_canonical_maps);
    cleanup_send_canon = cleanup_maps_open("sender_canonical_maps", var_sender_canonical_maps);
    cleanup_rcpt_canon = cleanup_maps_open("recipient_canonical_maps",
                                           var_recipient_canonical_maps);
    cleanup_virtual = cleanup_maps_open("virtual_alias_maps", var_virtual_alias_maps);
    cleanup_send_bcc = cleanup_maps_open("sender_bcc_maps", var_sender_bcc_maps);
    cleanup_rcpt_bcc = cleanup_maps_open("recipient_bcc_maps", var_recipient_bcc_maps);
    cleanup_canon_sender = cleanup_list_has(var_canonical_classes, "envelope_sender");
    cleanup_canon_rcpt = cleanup_list_has(var_canonical_classes, "envelope_recipient");
    cleanup_prop_canon = cleanup_list_has(var_propagate_unmatched_extensions, "canonical");
    cleanup_prop_virtual = cleanup_list_has(var_propagate_unmatched_extensions, "virtual");
}

/* Lookups in the local-part form only for our own (local) domains (dict.h). */
static int cleanup_lookup_flags(const char *addr)
{
    const char *domain = address_domain(addr);

    if (domain == NULL)
        return DICT_ADDR_LOCAL;
    return resolve_domain_class(domain) == RESOLVE_CLASS_LOCAL ? DICT_ADDR_LOCAL : 0;
}

/* "user@dom" + "+ext" -> "user+ext@dom". */
static void cleanup_add_extension(struct strbuf *addr, const char *ext)
{
    const char *at = strrchr(addr->data, '@');
    struct strbuf out;

    if (ext[0] == 0)
        return;
    strbuf_init(&out, addr->len + strlen(ext) + 1, 0);
    if (at == NULL) {
        strbuf_puts(&out, addr->data);
        strbuf_puts(&out, ext);
    } else {
        strbuf_append(&out, addr->data, (size_t) (at - addr->data));
        strbuf_puts(&out, ext);
        strbuf_puts(&out, at);
    }
    strbuf_set(addr, out.data);
    strbuf_release(&out);
}

/* Collects the addresses of a table value ("a@b, c@d"). */
struct cleanup_vec {
    char **v;
    size_t n, cap;
};

static int cleanup_vec_add(void *ctx, const char *addr)
{
    struct cleanup_vec *vec = ctx;

    if (vec->n == vec->cap) {
        vec->cap = vec->cap ? vec->cap * 2 : 8;
        vec->v = xreallocarray(vec->v, vec->cap, sizeof(*vec->v));
    }
    vec->v[vec->n++] = xstrdup(addr);
    return 0;
}

static void cleanup_vec_free(struct cleanup_vec *vec)
{
    size_t i;

    for (i = 0; i < vec->n; i++)
        free(vec->v[i]);
    free(vec->v);
    vec->v = NULL;
    vec->n = vec->cap = 0;
}

/* Splits a table result into addresses; white space separates too (virtual(5)). */
static void cleanup_value_split(const char *value, struct cleanup_vec *vec)
{
    size_t len = strlen(value), i = 0;

    while (i < len) {
        size_t start, quoted = 0;

        while (i < len && strchr(", \t", value[i]))
            i++;
        start = i;
        while (i < len && (quoted || !strchr(", \t", value[i]))) {
            if (value[i] == '"')
                quoted = !quoted;
            else if (value[i] == '\\' && i + 1 < len)
                i++;
            i++;
        }
        if (i > start)
            (void) header_addr_list(value + start, i - start, var_header_address_token_limit,
                                    CLEANUP_ADDR_MAX, cleanup_vec_add, vec);
    }
}

/* A failed lookup: the message must wait, never be delivered on a guess. */
static void cleanup_map_failed(struct cleanup_state *st, const char *map, const char *addr)
{
    msg_warn("%s: %s map lookup problem for %s -- message not accepted", st->qid, map, addr);
    cleanup_error(st, CLEANUP_STAT_DEFER, "451 4.3.0 Error: temporary lookup failure");
}

/* canonical-style 1:1 mapping, repeated until the address maps to itself. */
static void cleanup_map11(struct cleanup_state *st, struct dict_list *maps, const char *name,
                          struct strbuf *addr)
{
    struct strbuf ext;
    int count;

    if (maps == NULL)
        return;
    strbuf_init(&ext, 32, 256);
    for (count = 0; count < CLEANUP_CANON_LOOPS; count++) {
        struct cleanup_vec vec = {0};
        const char *value;

        strbuf_reset(&ext);
        value = dict_addr_lookup(maps, addr->data, var_recipient_delimiter,
                                 cleanup_lookup_flags(addr->data), cleanup_prop_canon ? &ext : NULL);
        if (value == NULL) {
            if (dict_list_error(maps) != DICT_ERR_NONE)
                cleanup_map_failed(st, name, addr->data);
            break;
        }
        cleanup_value_split(value, &vec);
        if (vec.n == 0) {
            cleanup_vec_free(&vec);
            break;
        }
        if (vec.n > 1)
            msg_warn("%s: %s map entry for %s has %zu addresses; using the first", st->qid,
                     name, addr->data, vec.n);
        if (strcasecmp(vec.v[0], addr->data) == 0) {
            cleanup_vec_free(&vec);
            break;
        }
        resolve_rewrite(vec.v[0], addr);
        cleanup_add_extension(addr, ext.data);
        cleanup_vec_free(&vec);
    }
    strbuf_release(&ext);
}

void cleanup_addr_sender(struct cleanup_state *st, const char *addr)
{
    strbuf_reset(&st->sender);
    if (addr[0] != 0) {
        resolve_rewrite(addr, &st->sender);
        if (cleanup_canon_sender) {
            cleanup_map11(st, cleanup_send_canon, "sender_canonical_maps", &st->sender);
            cleanup_map11(st, cleanup_canon, "canonical_maps", &st->sender);
        }
    }
    st->have_sender = 1;
    if (qfile_put_str(st->w, QREC_SENDER, st->sender.data) < 0)
        cleanup_write_error(st, errno);
}

/* CLEANUP_FLAG_BOUNCE: the recipient is done at once and its bounce record is
 * the rejection, so qmgr has nothing to deliver and only asks the bounce service
 * to return the message. The record is durable before the queue file is. */
static int cleanup_addr_bounce_record(struct cleanup_state *st, const char *addr,
                                      const char *orcpt, int notify)
{
    struct status_entry e;
    struct strbuf why;
    char dsn[DSN_SPLIT_SIZE];
    const char *text = st->bounce_reason.data;
    int rc;

    if (strlen(text) > 4 && text[3] == ' ')
        text += 4;                      /* the SMTP code; the enhanced code follows */
    memset(&e, 0, sizeof(e));
    dsn_split(text, "5.0.0", dsn, &e.reason);
    if (dsn[0] != '5')
        strcpy(dsn, "5.0.0");
    e.time = time(NULL);
    e.recipient = addr;
    e.orig_rcpt = "";
    e.dsn_orcpt = orcpt;
    e.notify = notify;
    e.status = dsn;
    e.action = "failed";
    e.relay = "none";
    strbuf_init(&why, 128, 1024);
    rc = status_log_append(AT_FDCWD, STATUS_LOG_BOUNCE, st->qid,
                           queue_path_depth(STATUS_LOG_BOUNCE), &e, &why);
    if (rc < 0)
        msg_warn("%s: %s", st->qid, why.data);
    else
        st->bounce_logged = 1;
    strbuf_release(&why);
    return rc;
}

/* Writes one final recipient unless it is a duplicate. */
static void cleanup_out_recipient(struct cleanup_state *st, const char *addr, const char *orcpt,
                                  int notify)
{
    char nbuf[16];
    int r;

    if (st->errs)
        return;
    if ((r = htable_insert(st->dups, addr, st, NULL)) == 1)
        return;                         /* duplicate_filter: already a recipient */
    if (r < 0 || st->nrcpt >= CLEANUP_RCPT_MAX) {
        msg_warn("%s: too many recipients -- message not accepted", st->qid);
        cleanup_error(st, CLEANUP_STAT_DEFER, "452 4.5.3 Error: too many recipients");
        return;
    }
    if (st->first_rcpt.len == 0)
        strbuf_set(&st->first_rcpt, addr);
    if (orcpt[0] && qfile_put_str(st->w, QREC_ORCPT, orcpt) < 0)
        goto fail;
    if (notify) {
        snprintf(nbuf, sizeof(nbuf), "%d", notify);
        if (qfile_put_str(st->w, QREC_NOTIFY, nbuf) < 0)
            goto fail;
    }
    if (st->flags & CLEANUP_FLAG_BOUNCE) {
        if (cleanup_addr_bounce_record(st, addr, orcpt, notify) < 0
            || qfile_put_str(st->w, QREC_DONE, addr) < 0)
            goto fail;
    } else if (qfile_put_str(st->w, QREC_RCPT, addr) < 0) {
        goto fail;
    }
    st->nrcpt++;
    return;
fail:
    cleanup_write_error(st, errno);
}

/* Virtual alias expansion (Postfix cleanup_map1n_internal), then output. */
static void cleanup_virtual_expand(struct cleanup_state *st, const char *addr, const char *orcpt,
                                   int notify)
{
    struct cleanup_vec todo = {0};
    struct htable *been_here;
    struct strbuf ext, tmp;
    size_t arg, i;

    if (cleanup_virtual == NULL || (st->flags & CLEANUP_FLAG_NO_ALIAS)) {
        cleanup_out_recipient(st, addr, orcpt, notify);
        return;
    }
    been_here = htable_new(16);
    strbuf_init(&ext, 32, 256);
    strbuf_init(&tmp, 64, 0);
    cleanup_vec_add(&todo, addr);
    for (arg = 0; arg < todo.n && !st->errs; arg++) {
        long long count;

        if ((long long) todo.n > var_virtual_alias_expansion_limit) {
            msg_warn("%s: unreasonable virtual_alias_maps map expansion size for %s -- "
                     "message not accepted", st->qid, addr);
            cleanup_error(st, CLEANUP_STAT_DEFER,
                          "451 4.3.0 Error: virtual alias expansion limit exceeded");
            break;
        }
        for (count = 0;; count++) {
            struct cleanup_vec vec = {0};
            const char *value;
            char *saved;

            if (htable_find(been_here, todo.v[arg]) != NULL)
                break;                  /* expanded into itself: it stays */
            if (count >= var_virtual_alias_recursion_limit) {
                msg_warn("%s: unreasonable virtual_alias_maps map nesting for %s -- "
                         "message not accepted", st->qid, addr);
                cleanup_error(st, CLEANUP_STAT_DEFER,
                              "451 4.3.0 Error: virtual alias recursion limit exceeded");
                break;
            }
            strbuf_reset(&ext);
            value = dict_addr_lookup(cleanup_virtual, todo.v[arg], var_recipient_delimiter,
                                     cleanup_lookup_flags(todo.v[arg]),
                                     cleanup_prop_virtual ? &ext : NULL);
            if (value == NULL) {
                if (dict_list_error(cleanup_virtual) != DICT_ERR_NONE)
                    cleanup_map_failed(st, "virtual_alias_maps", todo.v[arg]);
                break;
            }
            cleanup_value_split(value, &vec);
            if (vec.n == 0) {
                cleanup_vec_free(&vec);
                break;
            }
            saved = xstrdup(todo.v[arg]);
            for (i = 0; i < vec.n; i++) {
                resolve_rewrite(vec.v[i], &tmp);
                cleanup_add_extension(&tmp, ext.data);
                if (i == 0) {
                    free(todo.v[arg]);
                    todo.v[arg] = xstrdup(tmp.data);
                } else {
                    cleanup_vec_add(&todo, tmp.data);
                }
                /* An address may expand into itself once: then it is final. */
                if (strcasecmp(saved, tmp.data) == 0)
                    (void) htable_insert(been_here, saved, been_here, NULL);
            }
            free(saved);
            cleanup_vec_free(&vec);
            if ((long long) todo.n > var_virtual_alias_expansion_limit)
                break;                  /* reported by the outer loop */
        }
    }
    if ((long long) todo.n > var_virtual_alias_expansion_limit && !st->errs) {
        msg_warn("%s: unreasonable virtual_alias_maps map expansion size for %s -- "
                 "message not accepted", st->qid, addr);
        cleanup_error(st, CLEANUP_STAT_DEFER,
                      "451 4.3.0 Error: virtual alias expansion limit exceeded");
    }
    for (i = 0; i < todo.n && !st->errs; i++)
        cleanup_out_recipient(st, todo.v[i], orcpt, notify);
    cleanup_vec_free(&todo);
    htable_free(&been_here, NULL);
    strbuf_release(&ext);
    strbuf_release(&tmp);
}

/* Rewriting and canonical mapping of one recipient into out. */
static void cleanup_rcpt_canonical(struct cleanup_state *st, const char *addr, struct strbuf *out)
{
    resolve_rewrite(addr, out);
    if (cleanup_canon_rcpt) {
        cleanup_map11(st, cleanup_rcpt_canon, "recipient_canonical_maps", out);
        cleanup_map11(st, cleanup_canon, "canonical_maps", out);
    }
}

static void cleanup_addr_process(struct cleanup_state *st, const char *addr, const char *orcpt,
                                 int notify, int bcc)
{
    struct strbuf canon, orig;
    const char *value;

    if (st->errs)
        return;
    if (addr[0] == 0 || strlen(addr) > CLEANUP_ADDR_MAX) {
        msg_warn("%s: ignoring recipient <%.100s>: empty or too long", st->qid, addr);
        return;
    }
    strbuf_init(&canon, 64, 0);
    strbuf_init(&orig, 64, 0);
    cleanup_rcpt_canonical(st, addr, &canon);
    /* Without a DSN ORCPT the address as received is the original recipient
     * (Postfix's orig_rcpt, enable_original_recipient), when it changed. */
    if (orcpt[0] == 0 && var_enable_original_recipient && strcmp(canon.data, addr) != 0)
        strbuf_printf(&orig, "rfc822;%s", addr);
    else
        strbuf_set(&orig, orcpt);
    if (!bcc && cleanup_rcpt_bcc && !st->errs && !(st->flags & CLEANUP_FLAG_BOUNCE)) {
        value = dict_addr_lookup(cleanup_rcpt_bcc, canon.data, var_recipient_delimiter,
                                 cleanup_lookup_flags(canon.data), NULL);
        if (value != NULL) {
            struct cleanup_vec vec = {0};
            size_t i;

            cleanup_value_split(value, &vec);
            for (i = 0; i < vec.n; i++)
                cleanup_addr_late(st, vec.v[i], CLEANUP_NOTIFY_NEVER, 1);
            cleanup_vec_free(&vec);
        } else if (dict_list_error(cleanup_rcpt_bcc) != DICT_ERR_NONE) {
            cleanup_map_failed(st, "recipient_bcc_maps", canon.data);
        }
    }
    if (!st->errs)
        cleanup_virtual_expand(st, canon.data, orig.data, notify);
    strbuf_release(&canon);
    strbuf_release(&orig);
}

void cleanup_addr_recipient(struct cleanup_state *st, const char *addr, const char *orcpt,
                            int notify)
{
    cleanup_addr_process(st, addr, orcpt, notify, 0);
}

void cleanup_addr_late(struct cleanup_state *st, const char *addr, int notify, int bcc)
{
    if (st->nlate >= CLEANUP_LATE_MAX) {
        if (!st->errs)
            msg_warn("%s: too many extracted recipients -- message not accepted", st->qid);
        cleanup_error(st, CLEANUP_STAT_DEFER, "452 4.5.3 Error: too many recipients");
        return;
    }
    if (st->nlate == st->late_cap) {
        st->late_cap = st->late_cap ? st->late_cap * 2 : 16;
        st->late = xreallocarray(st->late, st->late_cap, sizeof(*st->late));
    }
    st->late[st->nlate].addr = xstrdup(addr);
    st->late[st->nlate].notify = notify;
    st->late[st->nlate].bcc = bcc;
    st->nlate++;
}

/* After the content: extracted recipients and BCC copies, in Postfix's order. */
void cleanup_addr_finish(struct cleanup_state *st)
{
    size_t i;

    /* The list grows while we walk it (recipient_bcc_maps of extracted recipients). */
    for (i = 0; i < st->nlate && !st->errs; i++)
        cleanup_addr_process(st, st->late[i].addr, "", st->late[i].notify, st->late[i].bcc);
    if (st->errs)
        return;
    if (st->flags & CLEANUP_FLAG_BOUNCE)
        return;                         /* a returned message gets no copies */
    if (var_always_bcc[0] != 0 && st->nrcpt > 0)
        cleanup_addr_process(st, var_always_bcc, "", CLEANUP_NOTIFY_NEVER, 1);
    if (cleanup_send_bcc && st->sender.len > 0 && st->nrcpt > 0 && !st->errs) {
        const char *value = dict_addr_lookup(cleanup_send_bcc, st->sender.data,
                                             var_recipient_delimiter,
                                             cleanup_lookup_flags(st->sender.data), NULL);

        if (value != NULL) {
            struct cleanup_vec vec = {0};

            cleanup_value_split(value, &vec);
            for (i = 0; i < vec.n && !st->errs; i++)
                cleanup_addr_process(st, vec.v[i], "", CLEANUP_NOTIFY_NEVER, 1);
            cleanup_vec_free(&vec);
        } else if (dict_list_error(cleanup_send_bcc) != DICT_ERR_NONE) {
            cleanup_map_failed(st, "sender_bcc_maps", st->sender.data);
        }
    }
}
