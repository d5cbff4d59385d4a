/*
 * forward.c - re-injecting a recipient's expansion as new mail (Postfix's
 * local/forward.c and indirect.c): remote addresses from aliases and
 * .forward files, and local members of owned lists and include files, are
 * collected per envelope sender and, when the recipient is done, handed to
 * cleanup as one new message per sender, with "Delivered-To: RECIPIENT" put
 * first (prepend_delivered_header "forward") so that a loop comes back here
 * and bounces.
 * Never forwards one address twice for one recipient, or changes the
 * content otherwise. Failure: a cleanup problem defers the recipient (the
 * whole recipient is tried again later), a rejection bounces it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup_client.h"
#include "local.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "strbuf.h"

#define FORWARD_TIMEOUT_MS      30000

struct forward_item {
    char *address;
    char *orcpt;
    int notify;
};

struct forward_batch {
    char *sender;
    struct forward_item *items;
    int count;
    int cap;
    struct forward_batch *next;
};

void forward_append(struct local_state st)
{
    struct local_request *rq = st.rq;
    struct forward_batch *b;
    char *lower = xstrdup(st.address);
    size_t i;
    int seen;

    for (i = 0; lower[i]; i++)
        lower[i] = (char) tolower((unsigned char) lower[i]);
    seen = local_dup_seen(rq, "forward-to", lower);
    free(lower);
    if (seen)
        return;
    if (LOCAL_VERIFY(&st)) {
        local_result(&st, DELIVER_SENT, "2.0.0", "forwards to %s", st.address);
        return;
    }
    for (b = rq->forwards; b; b = b->next)
        if (strcmp(b->sender, st.sender) == 0)
            break;
    if (b == NULL) {
        b = xcalloc(1, sizeof(*b));
        b->sender = xstrdup(st.sender);
        b->next = rq->forwards;
        rq->forwards = b;
    }
    if (b->count == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->items = xreallocarray(b->items, (size_t) b->cap, sizeof(*b->items));
    }
    b->items[b->count].address = xstrdup(st.address);
    b->items[b->count].orcpt = xstrdup(st.orcpt ? st.orcpt : "");
    b->items[b->count].notify = st.notify;
    b->count++;
}

/* The DSN code in a cleanup reply such as "550 5.7.1 text", else dflt. */
static const char *forward_reply_dsn(const char *reply, char dsn[8], const char *dflt)
{
    size_t n;

    if (strlen(reply) > 4 && reply[4] == dflt[0] && reply[5] == '.'
        && (n = strspn(reply + 4, "0123456789.")) >= 5 && n < 8) {
        memcpy(dsn, reply + 4, n);
        dsn[n] = 0;
        return dsn;
    }
    return dflt;
}

static void forward_send(struct local_request *rq, struct forward_batch *b,
                         const struct local_state *st)
{
    const struct deliver_request *req = rq->req;
    struct cleanup_client *c;
    struct cleanup_result res;
    struct strbuf why, head;
    char buf[65536], dsn[8];
    off_t pos = 0;
    ssize_t n;
    int flags = 0, i, bad = 0;

    strbuf_init(&why, 128, STRBUF_UNLIMITED);
    strbuf_init(&head, 128, STRBUF_UNLIMITED);
    if ((c = cleanup_connect(NULL, FORWARD_TIMEOUT_MS, &why)) == NULL) {
        local_result(st, DELIVER_DEFER, "4.3.0", "cannot forward mail: %s", why.data);
        goto out;
    }
    if (req->flags & DELIVER_FLAG_8BIT)
        flags |= CLEANUP_FLAG_8BITMIME;
    if (req->flags & DELIVER_FLAG_SMTPUTF8)
        flags |= CLEANUP_FLAG_SMTPUTF8;
    if (req->flags & DELIVER_FLAG_BINARYMIME)
        flags |= CLEANUP_FLAG_BINARYMIME;
    if (cleanup_open(c, flags, &why) < 0) {
        local_result(st, DELIVER_DEFER, "4.3.0", "cannot forward mail: %s", why.data);
        goto out;
    }
    bad |= cleanup_sender(c, b->sender) < 0;
    /* A list owner's copy is new mail: the original's DSN request stays behind. */
    if (strcmp(b->sender, req->sender) == 0) {
        if (req->dsn_envid[0])
            bad |= cleanup_attr(c, "dsn_envid", req->dsn_envid) < 0;
        if (req->dsn_ret[0])
            bad |= cleanup_attr(c, "dsn_ret", req->dsn_ret) < 0;
    }
    for (i = 0; i < b->count; i++)
        bad |= cleanup_recipient(c, b->items[i].address, b->items[i].orcpt,
                                 b->items[i].notify) < 0;
    if (local_delivered_mask & LOCAL_DELIVERED_FORWARD) {
        /* Only Delivered-To: travels; X-Original-To: is for mailboxes. */
        local_delivered_header(rq, &head);
        bad |= cleanup_write(c, head.data, head.len) < 0;
    }
    while (!bad && (n = deliver_content_read(req, &pos, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            cleanup_abort(c);
            local_result(st, DELIVER_DEFER, "4.3.0", "cannot forward mail: queue file read error");
            goto out;
        }
        bad |= cleanup_write(c, buf, (size_t) n) < 0;
    }
    if (bad || cleanup_finish(c, &res) < 0) {
        cleanup_abort(c);
        local_result(st, DELIVER_DEFER, "4.3.0", "cannot forward mail: lost connection to cleanup");
        goto out;
    }
    if (res.status == CLEANUP_OK)
        local_result(st, DELIVER_SENT, "2.0.0", "forwarded as %s", cleanup_queue_id(c));
    else if (res.status == CLEANUP_REJECT)
        local_result(st, DELIVER_BOUNCE, forward_reply_dsn(res.reply, dsn, "5.0.0"),
                     "cannot forward mail: %s", res.reply);
    else
        local_result(st, DELIVER_DEFER, forward_reply_dsn(res.reply, dsn, "4.0.0"),
                     "cannot forward mail: %s", res.reply);
  out:
    cleanup_disconnect(&c);
    strbuf_release(&why);
    strbuf_release(&head);
}

void forward_finish(struct local_request *rq)
{
    struct forward_batch *b, *next;
    struct local_state st;
    int i;

    memset(&st, 0, sizeof(st));
    st.address = rq->top;
    st.sender = rq->req->sender;
    st.rq = rq;
    for (b = rq->forwards; b; b = next) {
        next = b->next;
        forward_send(rq, b, &st);
        for (i = 0; i < b->count; i++) {
            free(b->items[i].address);
            free(b->items[i].orcpt);
        }
        free(b->items);
        free(b->sender);
        free(b);
    }
    rq->forwards = NULL;
}
