/*
 * cleanup_client.c - handing a message to the cleanup service (cleanup_client.h).
 * The protocol (docs/ipc.md, "cleanup") costs two round trips per message:
 * "open" waits for the queue ID, "finish" for the verdict. Envelope items and
 * content in between are batched into "batch" frames of about 64 KiB that get
 * no reply, so a small message crosses the socket in two frames each way.
 * Never blocks without a timeout: every send has the connect timeout, the
 * verdict ten times that. Any I/O or protocol error closes the connection and
 * makes the current message fail (the caller answers 4xx); the next
 * cleanup_open connects again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "cleanup_client.h"
#include "ipc.h"
#include "milter.h"
#include "msg.h"
#include "mymalloc.h"
#include "qid.h"

#define CLEANUP_BATCH_BYTES  (64 * 1024)        /* content and envelope per frame */
#define CLEANUP_BATCH_ITEMS  1000               /* list elements per frame */
#define CLEANUP_REPLY_FRAME  (16 * 1024)        /* largest reply we accept */
#define CLEANUP_WRITE_FAIL   "451 4.3.0 Error: queue file write error"

struct cleanup_client {
    char *endpoint;             /* NULL: private/cleanup, then public/cleanup */
    int fd;                     /* -1 when not connected */
    int timeout_ms;
    int in_message;             /* between open and finish/abort */
    int failed;                 /* the current message is lost (errno value) */
    int content_started;        /* envelope calls are over */
    int sender_sent;
    int final_flags;            /* HOLD/DISCARD to send with finish */
    char qid[QID_BUFSIZE];
    struct attr_msg *out;       /* the batch being built */
    struct attr_msg *in;        /* replies */
    size_t out_bytes, out_items;
    struct strbuf content;      /* content not yet in the batch */
};

static int cleanup_connect_fd(const char *endpoint, int timeout_ms)
{
    int fd;

    if (endpoint != NULL)
        return ipc_connect_path(endpoint, timeout_ms);
    /* master.cf's "cleanup unix n" puts the socket in public/ (Postfix's layout);
     * a site that made it private has it in private/. */
    fd = ipc_connect(IPC_CLASS_PRIVATE, "cleanup", timeout_ms);
    if (fd < 0 && (errno == ENOENT || errno == ECONNREFUSED))
        fd = ipc_connect(IPC_CLASS_PUBLIC, "cleanup", timeout_ms);
    return fd;
}

struct cleanup_client *cleanup_connect(const char *endpoint, int timeout_ms,
                                       struct strbuf *why)
{
    struct cleanup_client *c;
    int fd;

    if (timeout_ms <= 0)
        msg_panic("cleanup_connect: timeout %d", timeout_ms);
    if ((fd = cleanup_connect_fd(endpoint, timeout_ms)) < 0) {
        if (why)
            strbuf_printf(why, "connect to %s: %s", endpoint ? endpoint : "cleanup service",
                          strerror(errno));
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->endpoint = endpoint ? xstrdup(endpoint) : NULL;
    c->fd = fd;
    c->timeout_ms = timeout_ms;
    c->out = attr_msg_new();
    c->in = attr_msg_new();
    strbuf_init(&c->content, 4096, CLEANUP_BATCH_BYTES);
    return c;
}

static void cleanup_close_fd(struct cleanup_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

void cleanup_disconnect(struct cleanup_client **cp)
{
    struct cleanup_client *c = *cp;

    if (c == NULL)
        return;
    cleanup_close_fd(c);
    attr_msg_free(&c->out);
    attr_msg_free(&c->in);
    strbuf_release(&c->content);
    free(c->endpoint);
    xfree(cp);
}

/* The connection is out of step: drop it, lose the message. Always -1. */
static int cleanup_fail(struct cleanup_client *c, int err)
{
    if (!c->failed)
        msg_warn("cleanup service %s: %s", c->endpoint ? c->endpoint : "cleanup",
                 strerror(err));
    c->failed = err ? err : EPROTO;
    cleanup_close_fd(c);
    errno = c->failed;
    return -1;
}

static void cleanup_batch_reset(struct cleanup_client *c)
{
    attr_msg_reset(c->out);
    c->out_bytes = c->out_items = 0;
}

/* Sends the batch as a frame of the given request (content first moved in). */
static int cleanup_send(struct cleanup_client *c, const char *request)
{
    if (c->content.len > 0) {
        if (attr_add_data(c->out, "data", c->content.data, c->content.len) < 0)
            return cleanup_fail(c, errno);
        strbuf_reset(&c->content);
    }
    if (attr_put_str(c->out, "request", request) < 0 || ipc_send(c->fd, c->out, c->timeout_ms) < 0)
        return cleanup_fail(c, errno);
    cleanup_batch_reset(c);
    return 0;
}

/* Accounts for one envelope item; sends the batch when it is full. */
static int cleanup_item(struct cleanup_client *c, int put_result, size_t bytes)
{
    if (put_result < 0)
        return cleanup_fail(c, errno);
    c->out_bytes += bytes;
    c->out_items += 1;
    if (c->out_bytes >= CLEANUP_BATCH_BYTES || c->out_items >= CLEANUP_BATCH_ITEMS)
        return cleanup_send(c, "batch");
    return 0;
}

/* Common checks of the envelope calls. */
static int cleanup_envelope_ok(struct cleanup_client *c)
{
    if (!c->in_message)
        msg_panic("cleanup client: envelope call outside a message");
    if (c->failed) {
        errno = c->failed;
        return 0;
    }
    if (c->content_started) {
        /* The header promises "before the content"; anything else is our bug,
         * but losing the message is safer than queueing a wrong one. */
        msg_warn("cleanup client: envelope data after content");
        cleanup_fail(c, EINVAL);
        return 0;
    }
    return 1;
}

int cleanup_open(struct cleanup_client *c, int flags, struct strbuf *why)
{
    return cleanup_open_at(c, flags, NULL, why);
}

int cleanup_open_at(struct cleanup_client *c, int flags, const struct timeval *arrival,
                    struct strbuf *why)
{
    const char *qid, *reason;
    char tbuf[64];
    uint32_t status;

    if (c->in_message)
        msg_panic("cleanup_open: a message is already open");
    c->failed = c->content_started = c->sender_sent = c->final_flags = 0;
    c->qid[0] = 0;
    cleanup_batch_reset(c);
    strbuf_reset(&c->content);
    if (c->fd < 0 && (c->fd = cleanup_connect_fd(c->endpoint, c->timeout_ms)) < 0) {
        if (why)
            strbuf_printf(why, "451 4.3.0 Error: cleanup service unavailable: %s",
                          strerror(errno));
        return -1;
    }
    if (attr_put_str(c->out, "request", "open") < 0
        || attr_put_u32(c->out, "flags", (uint32_t) flags) < 0
        || (arrival && (snprintf(tbuf, sizeof(tbuf), "%lld.%06ld", (long long) arrival->tv_sec,
                                 (long) arrival->tv_usec),
                        attr_put_str(c->out, "arrival_time", tbuf) < 0))
        || ipc_send(c->fd, c->out, c->timeout_ms) < 0
        || ipc_recv(c->fd, c->in, CLEANUP_REPLY_FRAME, c->timeout_ms) < 0
        || attr_get_u32(c->in, "status", &status) < 0) {
        cleanup_fail(c, errno);
        cleanup_batch_reset(c);
        if (why)
            strbuf_printf(why, "451 4.3.0 Error: cleanup service: %s", strerror(c->failed));
        return -1;
    }
    cleanup_batch_reset(c);
    if (status != IPC_STATUS_OK) {
        if (attr_opt_str(c->in, "reason", &reason, NULL) != 1)
            reason = "451 4.3.0 Error: queue file write error";
        if (why)
            strbuf_set(why, reason);
        errno = EAGAIN;
        return -1;
    }
    if (attr_get_str(c->in, "queue_id", &qid, NULL) < 0 || !qid_valid(qid)) {
        cleanup_fail(c, EPROTO);
        if (why)
            strbuf_set(why, "451 4.3.0 Error: cleanup service: bad reply");
        return -1;
    }
    strcpy(c->qid, qid);
    c->in_message = 1;
    return 0;
}

const char *cleanup_queue_id(const struct cleanup_client *c)
{
    return c->qid;
}

int cleanup_attr(struct cleanup_client *c, const char *name, const char *value)
{
    char *pair;
    int r;

    if (!cleanup_envelope_ok(c))
        return -1;
    if (name[0] == 0 || strchr(name, '=') != NULL) {
        errno = EINVAL;
        return -1;                      /* refused, the message goes on */
    }
    pair = xmalloc(strlen(name) + strlen(value) + 2);
    sprintf(pair, "%s=%s", name, value);
    r = attr_add_str(c->out, "attr", pair);
    free(pair);
    return cleanup_item(c, r, strlen(name) + strlen(value) + 16);
}

int cleanup_sender(struct cleanup_client *c, const char *sender)
{
    if (!cleanup_envelope_ok(c))
        return -1;
    if (c->sender_sent)
        msg_panic("cleanup_sender: called twice for one message");
    c->sender_sent = 1;
    return cleanup_item(c, attr_put_str(c->out, "sender", sender), strlen(sender) + 16);
}

int cleanup_recipient(struct cleanup_client *c, const char *recipient, const char *orcpt,
                      int notify)
{
    int r;

    if (!cleanup_envelope_ok(c))
        return -1;
    r = attr_add_str(c->out, "rcpt", recipient);
    if (r == 0)
        r = attr_add_str(c->out, "orig_rcpt", orcpt ? orcpt : "");
    if (r == 0)
        r = attr_add_u32(c->out, "dsn_notify", (uint32_t) notify);
    return cleanup_item(c, r, strlen(recipient) + (orcpt ? strlen(orcpt) : 0) + 48);
}

int cleanup_write(struct cleanup_client *c, const void *data, size_t len)
{
    const char *p = data;

    if (!c->in_message)
        msg_panic("cleanup_write: outside a message");
    if (c->failed) {
        errno = c->failed;
        return -1;
    }
    c->content_started = 1;
    while (len > 0) {
        size_t room = CLEANUP_BATCH_BYTES - c->content.len, n = len < room ? len : room;

        if (strbuf_append(&c->content, p, n) < 0)
            msg_panic("cleanup_write: content buffer arithmetic");
        p += n;
        len -= n;
        if (c->content.len + c->out_bytes >= CLEANUP_BATCH_BYTES && cleanup_send(c, "batch") < 0)
            return -1;
    }
    return 0;
}

static void cleanup_result_set(struct cleanup_result *res, enum cleanup_status status,
                               const char *reply)
{
    res->status = status;
    snprintf(res->reply, sizeof(res->reply), "%s", reply);
}

void cleanup_add_flags(struct cleanup_client *c, int flags)
{
    if (!c->in_message)
        msg_panic("cleanup_add_flags: outside a message");
    c->final_flags |= flags & (CLEANUP_FLAG_HOLD | CLEANUP_FLAG_DISCARD);
}

int cleanup_milters(struct cleanup_client *c, struct milters *ms)
{
    if (!c->in_message)
        msg_panic("cleanup_milters: outside a message");
    if (c->failed) {
        errno = c->failed;
        return -1;
    }
    if (milters_export(ms, c->out) < 0)
        return cleanup_fail(c, errno);
    return 0;
}

int cleanup_finish(struct cleanup_client *c, struct cleanup_result *res)
{
    const char *reason = NULL, *mfailed = NULL, *mrest = NULL;
    const void *lines = NULL;
    size_t lines_len = 0;
    uint32_t status, held = 0, discarded = 0;
    int wait_ms = c->timeout_ms > INT32_MAX / 10 ? INT32_MAX : c->timeout_ms * 10;

    if (!c->in_message)
        msg_panic("cleanup_finish: outside a message");
    c->in_message = 0;
    memset(res, 0, sizeof(*res));
    cleanup_result_set(res, CLEANUP_DEFER, CLEANUP_WRITE_FAIL);
    if (c->failed) {
        errno = c->failed;
        return -1;
    }
    if (c->final_flags && attr_put_u32(c->out, "add_flags", (uint32_t) c->final_flags) < 0)
        return cleanup_fail(c, errno);
    if (cleanup_send(c, "finish") < 0)
        return -1;
    if (ipc_recv(c->fd, c->in, CLEANUP_REPLY_FRAME, wait_ms) < 0
        || attr_get_u32(c->in, "status", &status) < 0
        || attr_opt_u32(c->in, "held", &held) < 0
        || attr_opt_u32(c->in, "discarded", &discarded) < 0
        || attr_opt_str(c->in, "reason", &reason, NULL) < 0
        || attr_opt_data(c->in, "reply_lines", &lines, &lines_len) < 0
        || attr_opt_str(c->in, "milter_failed", &mfailed, NULL) < 0
        || attr_opt_str(c->in, "milter_at_rest", &mrest, NULL) < 0)
        return cleanup_fail(c, errno);
    if (mfailed)
        snprintf(res->milter_failed, sizeof(res->milter_failed), "%s", mfailed);
    if (mrest)
        snprintf(res->milter_at_rest, sizeof(res->milter_at_rest), "%s", mrest);
    if (status == IPC_STATUS_OK) {
        char ok[128];

        snprintf(ok, sizeof(ok), "250 2.0.0 Ok: queued as %s", c->qid);
        cleanup_result_set(res, CLEANUP_OK, ok);
    } else if (reason != NULL && reason[0] != 0) {
        cleanup_result_set(res, status == IPC_STATUS_REJECT ? CLEANUP_REJECT : CLEANUP_DEFER,
                           reason);
    } else if (status == IPC_STATUS_REJECT) {
        cleanup_result_set(res, CLEANUP_REJECT, "550 5.7.1 message content rejected");
    }
    /* A reply whose code class disagrees with its status is a defer: never
     * let a "2xx" text turn a failure into an acceptance, or a 4xx into a 5xx. */
    if (res->status == CLEANUP_REJECT && res->reply[0] != '5')
        cleanup_result_set(res, CLEANUP_DEFER, CLEANUP_WRITE_FAIL);
    if (res->status == CLEANUP_DEFER && res->reply[0] != '4')
        cleanup_result_set(res, CLEANUP_DEFER, CLEANUP_WRITE_FAIL);
    /* The lines must agree with the one-line reply's code, and fit whole. */
    if (lines && res->status != CLEANUP_OK && lines_len < sizeof(res->reply_lines)
        && lines_len >= 3 && memcmp(lines, res->reply, 3) == 0
        && memchr(lines, 0, lines_len) == NULL) {
        memcpy(res->reply_lines, lines, lines_len);
        res->reply_lines[lines_len] = 0;
    }
    res->held = held != 0;
    res->discarded = discarded != 0;
    return 0;
}

void cleanup_abort(struct cleanup_client *c)
{
    if (!c->in_message)
        return;
    c->in_message = 0;
    if (c->failed || c->fd < 0)
        return;
    cleanup_batch_reset(c);
    strbuf_reset(&c->content);
    (void) cleanup_send(c, "abort");
}
