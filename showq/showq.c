/*
 * showq.c - the showq service: the queue listing for users who may not read
 * the queue (mailq, sendmail -bp and petrel queue list run by anyone).
 *
 * SUMMARY
 *	A SINGLE-mode worker on the daemon skeleton, listening on public/showq
 *	and running as mail_owner. Each connection sends one "list" request
 *	(format and filters, docs/ipc.md "showq"); the answer is the listing of
 *	util/queue_list.c, streamed in pieces of at most 64 KiB as the queue is
 *	walked, then an end frame.
 *
 * SECURITY
 *	Reachable by every member of setgid_group (the set-gid petrel-showq
 *	helper), so it reveals only what mailq shows: envelope sender, pending
 *	recipients, sizes, times and deferral reasons, never message content or
 *	client attributes. It never changes the queue. A malformed request
 *	(unknown attribute, bad filter) gets an error frame and nothing else.
 *
 * DIAGNOSTICS
 *	Problems are logged; the client hears "status" 1 with a reason.
 *
 * PARAMETERS
 *	queue_directory, hash_queue_depth, hash_queue_names, ipc_timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "ipc.h"
#include "msg.h"
#include "params.h"
#include "queue_list.h"
#include "server.h"
#include "showq_client.h"
#include "strbuf.h"

#define SHOWQ_REQUEST_TIMEOUT_MS   (10 * 1000)

struct showq_out {
    int fd;
    int timeout_ms;
    int failed;
    struct strbuf buf;
    struct attr_msg *frame;
    struct queue_listing listing;
};

static int showq_flush(struct showq_out *o)
{
    size_t off = 0, n;

    while (!o->failed && off < o->buf.len) {
        n = o->buf.len - off > SHOWQ_CHUNK ? SHOWQ_CHUNK : o->buf.len - off;
        attr_msg_reset(o->frame);
        attr_put_data(o->frame, "data", o->buf.data + off, n);
        if (ipc_send(o->fd, o->frame, o->timeout_ms) < 0) {
            msg_warn("send listing: %m");
            o->failed = 1;
        }
        off += n;
    }
    strbuf_reset(&o->buf);
    return o->failed ? -1 : 0;
}

static int showq_message(const struct queue_msg *m, void *ctx)
{
    struct showq_out *o = ctx;

    queue_listing_add(&o->listing, m);
    if (o->buf.len >= SHOWQ_CHUNK)
        return showq_flush(o) < 0;
    return 0;
}

static void showq_end(int fd, int status, const char *reason, int timeout_ms)
{
    struct attr_msg *m = attr_msg_new();

    attr_put_u32(m, "end", 1);
    attr_put_u32(m, "status", (uint32_t) status);
    if (reason)
        attr_put_str(m, "reason", reason);
    if (ipc_send(fd, m, timeout_ms) < 0)
        msg_warn("send end of listing: %m");
    attr_msg_free(&m);
}

/* Reads the request and builds the filter; NULL with why on a bad request. */
static struct queue_filter *showq_request(int fd, int *json, struct strbuf *why)
{
    struct attr_msg *m = attr_msg_new();
    struct queue_filter *f = NULL;
    struct attr_iter it;
    const char *s, *eq;
    char name[32];
    size_t len;
    ssize_t n;

    if (ipc_recv(fd, m, SHOWQ_MAX_FRAME, SHOWQ_REQUEST_TIMEOUT_MS) < 0) {
        strbuf_printf(why, "receive request: %s", strerror(errno ? errno : EPIPE));
        goto out;
    }
    if (attr_get_str(m, "request", &s, &len) < 0 || strcmp(s, "list") != 0) {
        strbuf_set(why, "unknown request");
        goto out;
    }
    if (attr_get_str(m, "format", &s, &len) < 0
        || (strcmp(s, "json") != 0 && strcmp(s, "classic") != 0)) {
        strbuf_set(why, "bad or missing format");
        goto out;
    }
    *json = strcmp(s, "json") == 0;
    f = queue_filter_new();
    if ((n = attr_iter_init(&it, m, "filter")) < 0 || n > SHOWQ_MAX_FILTERS) {
        strbuf_set(why, "bad filter list");
        goto bad;
    }
    while (n-- > 0) {
        if (attr_iter_str(&it, &s, &len) < 0 || len > SHOWQ_FILTER_MAX
            || (eq = strchr(s, '=')) == NULL || eq == s || (size_t) (eq - s) >= sizeof(name)) {
            strbuf_set(why, "malformed filter");
            goto bad;
        }
        memcpy(name, s, (size_t) (eq - s));
        name[eq - s] = '\0';
        if (queue_filter_add(f, name, eq + 1, why) < 0)
            goto bad;
    }
    if (attr_check_consumed(m) < 0) {
        strbuf_printf(why, "%s", attr_msg_reason(m));
        goto bad;
    }
    goto out;
bad:
    queue_filter_free(&f);
out:
    attr_msg_free(&m);
    return f;
}

static void showq_service(int fd, const struct server_ctx *ctx)
{
    struct showq_out o;
    struct queue_scan_stats st;
    struct queue_filter *f;
    struct strbuf why;
    int json = 0, rc;

    (void) ctx;
    strbuf_init(&why, 128, 4096);
    memset(&o, 0, sizeof(o));
    o.fd = fd;
    o.timeout_ms = var_ipc_timeout > 0 && var_ipc_timeout < 3600 ? (int) var_ipc_timeout * 1000
        : 3600 * 1000;
    if ((f = showq_request(fd, &json, &why)) == NULL) {
        msg_warn("bad showq request: %s", why.data);
        showq_end(fd, IPC_STATUS_BADREQ, why.data, o.timeout_ms);
        strbuf_release(&why);
        return;
    }
    o.frame = attr_msg_new();
    strbuf_init(&o.buf, SHOWQ_CHUNK + 8192, STRBUF_UNLIMITED);
    o.listing.json = json;
    o.listing.out = &o.buf;
    rc = queue_list_scan(AT_FDCWD, f, showq_message, &o, &st, &why);
    if (o.failed) {
        /* The client went away; nothing more to say. */
    } else if (rc < 0) {
        msg_warn("%s", why.data);
        strbuf_reset(&o.buf);
        showq_end(fd, IPC_STATUS_DEFER, why.data, o.timeout_ms);
    } else {
        queue_listing_end(&o.listing);
        if (showq_flush(&o) == 0)
            showq_end(fd, IPC_STATUS_OK, NULL, o.timeout_ms);
    }
    if (st.unreadable)
        msg_warn("%lu queue files could not be read and are not listed", st.unreadable);
    attr_msg_free(&o.frame);
    strbuf_release(&o.buf);
    queue_filter_free(&f);
    strbuf_release(&why);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_SINGLE,
        .service = showq_service,
    };

    server_main(argc, argv, &ops);
}
