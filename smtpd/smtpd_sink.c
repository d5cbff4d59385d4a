/*
 * smtpd_sink.c - where an SMTP message goes: to the cleanup service over its
 * IPC connection (one per session, opened at the first message), or, in
 * stand-alone mode ("sendmail -bs"), into a petrel-drop submission
 * (util/maildrop.h) so that it works while the mail system is stopped.
 * Never reports success before cleanup (or petrel-drop) said the queue file is
 * durable; a lost cleanup connection becomes "451 4.3.0" and the message is not
 * queued. Envelope values are the parsed, bounded forms from util/smtp_cmd.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cleanup_client.h"
#include "maildrop.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qfile.h"
#include "smtpd.h"

#define SMTPD_CLEANUP_TIMEOUT_MS 30000  /* cleanup_finish waits ten times this */

struct smtpd_sink {
    int open;                   /* cleanup: a message is open on s->cleanup */
    int flags;                  /* CLEANUP_FLAG_* the message was opened with */
    /* cleanup: the recipients sent, to open the message again with HOLD. */
    size_t nrcpt, cap;
    char **rcpt, **orcpt;
    int *notify;
    struct maildrop *md;        /* stand-alone: the submission */
    struct qfile_writer *w;
    int content_started;
};

static const char *smtpd_sink_write_error = "451 4.3.0 Error: queue file write error";

const char *smtpd_sink_queue_id(const struct smtpd_session *s)
{
    if (s->sink == NULL || s->sink->md || s->cleanup == NULL)
        return "";
    return cleanup_queue_id(s->cleanup);
}

static int smtpd_sink_flags(const struct smtpd_session *s)
{
    int flags = 0;

    if (s->mail.body == SMTP_BODY_8BITMIME)
        flags |= CLEANUP_FLAG_8BITMIME;
    if (s->mail.body == SMTP_BODY_BINARYMIME)
        flags |= CLEANUP_FLAG_BINARYMIME;
    if (s->mail.smtputf8)
        flags |= CLEANUP_FLAG_SMTPUTF8;
    if (s->check.hold)
        flags |= CLEANUP_FLAG_HOLD;
    if (s->check.discard)
        flags |= CLEANUP_FLAG_DISCARD;
    if (smtpd_milter_want_content(s))
        flags |= CLEANUP_FLAG_MILTER;
    return flags;
}

/* "QUEUEID: client=host[addr]" and, after AUTH, Postfix's sasl_ fields. The
 * AUTH= sender is xtext, printable by construction; the check is a safety net. */
static void smtpd_sink_log_client(struct smtpd_session *s, const char *queue_id)
{
    struct strbuf sender;
    size_t i;

    if (s->check.sasl_username == NULL) {
        msg_info("%s: client=%s", queue_id, s->namaddr);
        return;
    }
    strbuf_init(&sender, 64, 1024);
    if (s->check.sasl_sender) {
        (void) strbuf_printf(&sender, ", sasl_sender=%.512s", s->check.sasl_sender);
        for (i = 0; i < sender.len; i++)
            if ((unsigned char) sender.data[i] < 0x20 || sender.data[i] == 0x7f)
                sender.data[i] = '?';
    }
    msg_info("%s: client=%s, sasl_method=%s, sasl_username=%s%s", queue_id, s->namaddr,
             s->check.sasl_method, s->check.sasl_username, sender.data);
    strbuf_release(&sender);
}

/* Envelope attributes both sinks carry (docs/queue-file.md names). */
static int smtpd_sink_envelope(struct smtpd_session *s,
                               int (*put)(void *ctx, const char *name, const char *value),
                               void *ctx)
{
    char port[16];
    int bad = 0;

    snprintf(port, sizeof(port), "%d", s->port);
    bad |= put(ctx, "client_name", s->name);
    bad |= put(ctx, "client_address", s->addr);
    bad |= put(ctx, "client_port", port);
    if (s->helo_name)
        bad |= put(ctx, "helo_name", s->helo_name);
    bad |= put(ctx, "protocol", s->protocol);
    if (s->check.sasl_username) {
        bad |= put(ctx, "sasl_method", s->check.sasl_method);
        bad |= put(ctx, "sasl_username", s->check.sasl_username);
        if (s->check.sasl_sender)
            bad |= put(ctx, "sasl_sender", s->check.sasl_sender);
    }
    bad |= put(ctx, "rewrite_context", s->standalone ? "local" : "remote");
    if (s->mail.body != SMTP_BODY_NONE)
        bad |= put(ctx, "encoding", s->mail.body == SMTP_BODY_7BIT ? "7bit"
                   : s->mail.body == SMTP_BODY_8BITMIME ? "8bit" : "binary");
    if (s->mail.have_envid)
        bad |= put(ctx, "dsn_envid", s->mail.envid.data);
    if (s->mail.ret != SMTP_RET_NONE)
        bad |= put(ctx, "dsn_ret", s->mail.ret == SMTP_RET_FULL ? "FULL" : "HDRS");
    return bad ? -1 : 0;
}

static int smtpd_put_cleanup(void *ctx, const char *name, const char *value)
{
    return cleanup_attr(ctx, name, value) < 0;
}

static int smtpd_put_qfile(void *ctx, const char *name, const char *value)
{
    return qfile_put_attr(ctx, name, value) < 0;
}

/* --- cleanup --------------------------------------------------------------- */

static int smtpd_sink_connect(struct smtpd_session *s, struct strbuf *why)
{
    char path[256];

    if (s->cleanup)
        return 0;
    /* The default service: the client library knows where master put it. */
    if (strcmp(var_cleanup_service_name, "cleanup") == 0) {
        if ((s->cleanup = cleanup_connect(NULL, SMTPD_CLEANUP_TIMEOUT_MS, why)) == NULL)
            msg_warn("%s", why->data);
        return s->cleanup ? 0 : -1;
    }
    /* Another name: like the default, private/ first, then public/ (Postfix's). */
    snprintf(path, sizeof(path), "private/%s", var_cleanup_service_name);
    if ((s->cleanup = cleanup_connect(path, SMTPD_CLEANUP_TIMEOUT_MS, why)) == NULL) {
        strbuf_reset(why);
        snprintf(path, sizeof(path), "public/%s", var_cleanup_service_name);
        if ((s->cleanup = cleanup_connect(path, SMTPD_CLEANUP_TIMEOUT_MS, why)) == NULL) {
            msg_warn("%s", why->data);
            return -1;
        }
    }
    return 0;
}

static int smtpd_sink_open_cleanup(struct smtpd_session *s, struct strbuf *why)
{
    struct strbuf err;
    int tries, ok = 0;

    strbuf_init(&err, 128, 1024);
    /* A connection kept from an earlier message may have gone stale: one retry. */
    for (tries = 0; tries < 2 && !ok; tries++) {
        strbuf_reset(&err);
        if (smtpd_sink_connect(s, &err) < 0)
            break;
        if (cleanup_open(s->cleanup, s->sink->flags = smtpd_sink_flags(s), &err) == 0)
            ok = 1;
        else
            cleanup_disconnect(&s->cleanup);
    }
    if (!ok) {
        msg_warn("%s: cannot open a queue file: %s", s->namaddr, err.data);
        strbuf_release(&err);
        strbuf_set(why, smtpd_sink_write_error);
        return -1;
    }
    strbuf_release(&err);
    smtpd_sink_log_client(s, cleanup_queue_id(s->cleanup));
    if (smtpd_sink_envelope(s, smtpd_put_cleanup, s->cleanup) < 0
        || (!s->standalone && smtpd_check_client_in_mynetworks(s->addr) != 1
            && s->check.sasl_username == NULL
            && cleanup_attr(s->cleanup, "strip_untrusted", "1") < 0)
        || cleanup_sender(s->cleanup, s->mail.address.data) < 0) {
        cleanup_abort(s->cleanup);
        cleanup_disconnect(&s->cleanup);
        strbuf_set(why, smtpd_sink_write_error);
        return -1;
    }
    return 0;
}

/* --- petrel-drop ----------------------------------------------------------- */

static int smtpd_sink_open_maildrop(struct smtpd_session *s, struct strbuf *why)
{
    struct strbuf err;

    strbuf_init(&err, 128, 1024);
    if ((s->sink->md = maildrop_open(NULL, &err)) == NULL) {
        msg_warn("cannot submit through petrel-drop: %s", err.data);
        strbuf_release(&err);
        strbuf_set(why, smtpd_sink_write_error);
        return -1;
    }
    strbuf_release(&err);
    s->sink->w = maildrop_writer(s->sink->md);
    if (smtpd_sink_envelope(s, smtpd_put_qfile, s->sink->w) < 0
        || qfile_put_str(s->sink->w, QREC_SENDER, s->mail.address.data) < 0) {
        maildrop_abort(&s->sink->md);
        strbuf_set(why, smtpd_sink_write_error);
        return -1;
    }
    return 0;
}

int smtpd_sink_open(struct smtpd_session *s, struct strbuf *why)
{
    int rc;

    s->sink = xcalloc(1, sizeof(*s->sink));
    s->last_lf = 1;
    rc = s->standalone ? smtpd_sink_open_maildrop(s, why) : smtpd_sink_open_cleanup(s, why);
    if (rc < 0) {
        xfree(&s->sink);
        return -1;
    }
    s->sink->open = 1;
    return 0;
}

static void smtpd_sink_forget(struct smtpd_sink *k)
{
    size_t i;

    for (i = 0; i < k->nrcpt; i++) {
        free(k->rcpt[i]);
        free(k->orcpt[i]);
    }
    free(k->rcpt);
    free(k->orcpt);
    free(k->notify);
}

static void smtpd_sink_remember(struct smtpd_sink *k, const char *rcpt, const char *orcpt,
                                int notify)
{
    if (k->nrcpt == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 16;
        k->rcpt = xreallocarray(k->rcpt, k->cap, sizeof(*k->rcpt));
        k->orcpt = xreallocarray(k->orcpt, k->cap, sizeof(*k->orcpt));
        k->notify = xreallocarray(k->notify, k->cap, sizeof(*k->notify));
    }
    k->rcpt[k->nrcpt] = xstrdup(rcpt);
    k->orcpt[k->nrcpt] = orcpt ? xstrdup(orcpt) : NULL;
    k->notify[k->nrcpt++] = notify;
}

int smtpd_sink_recipient(struct smtpd_session *s, const char *rcpt, const char *orcpt,
                         int notify)
{
    struct qfile_writer *w = s->sink->w;
    char num[16];

    if (!s->sink->md) {
        if (cleanup_recipient(s->cleanup, rcpt, orcpt, notify) < 0)
            return -1;
        smtpd_sink_remember(s->sink, rcpt, orcpt, notify);
        return 0;
    }
    snprintf(num, sizeof(num), "%d", notify);
    if ((orcpt && qfile_put_str(w, QREC_ORCPT, orcpt) < 0)
        || (notify && qfile_put_str(w, QREC_NOTIFY, num) < 0))
        return -1;
    return qfile_put_str(w, QREC_RCPT, rcpt);
}

int smtpd_sink_write(struct smtpd_session *s, const void *data, size_t len)
{
    if (!s->sink->md)
        return cleanup_write(s->cleanup, data, len);
    if (!s->sink->content_started) {
        if (qfile_content_begin(s->sink->w) < 0)
            return -1;
        s->sink->content_started = 1;
    }
    return qfile_content_write(s->sink->w, data, len);
}

static int smtpd_sink_finish_maildrop(struct smtpd_session *s, struct strbuf *queue_id,
                                      struct strbuf *reply)
{
    struct strbuf why;
    int status;

    if ((!s->sink->content_started && qfile_content_begin(s->sink->w) < 0)
        || qfile_content_end(s->sink->w) < 0) {
        maildrop_abort(&s->sink->md);
        strbuf_set(reply, smtpd_sink_write_error);
        return -1;
    }
    strbuf_init(&why, 128, 1024);
    status = maildrop_close(&s->sink->md, queue_id, &why);
    if (status != 0) {
        msg_warn("petrel-drop failed (status %d): %s", status, why.data);
        strbuf_set(reply, status == EX_DATAERR ? "554 5.6.0 Error: malformed message"
                   : smtpd_sink_write_error);
    }
    strbuf_release(&why);
    return status == 0 ? 0 : -1;
}

static int smtpd_sink_finish_cleanup(struct smtpd_session *s, struct strbuf *queue_id,
                                     struct strbuf *reply)
{
    struct cleanup_result res;

    memset(&res, 0, sizeof(res));
    strbuf_set(queue_id, cleanup_queue_id(s->cleanup));
    /* HOLD or DISCARD from a restriction after the file was opened. */
    cleanup_add_flags(s->cleanup, smtpd_sink_flags(s));
    /* The content stages of smtpd_milters run in cleanup, on our connections. */
    if (s->milters && (s->sink->flags & CLEANUP_FLAG_MILTER))
        (void) cleanup_milters(s->cleanup, s->milters);
    if (cleanup_finish(s->cleanup, &res) < 0) {
        msg_warn("%s: lost connection with the cleanup service", queue_id->data);
        cleanup_disconnect(&s->cleanup);
        /* Where the milter conversations stopped is unknown: none can go on. */
        smtpd_milter_message_done(s, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15", NULL);
        strbuf_set(reply, smtpd_sink_write_error);
        return -1;
    }
    smtpd_milter_message_done(s, res.milter_failed, res.milter_at_rest);
    switch (res.status) {
    case CLEANUP_OK:
        return 0;
    case CLEANUP_REJECT:
        strbuf_set(reply, res.reply[0] != '5' ? "550 5.7.1 Error: message content rejected"
                   : res.reply_lines[0] ? res.reply_lines : res.reply);
        return -1;
    case CLEANUP_DEFER:
    default:
        strbuf_set(reply, res.reply[0] != '4' ? smtpd_sink_write_error
                   : res.reply_lines[0] ? res.reply_lines : res.reply);
        return -1;
    }
}

int smtpd_sink_finish(struct smtpd_session *s, struct strbuf *queue_id, struct strbuf *reply)
{
    int rc;

    if (s->sink == NULL) {
        strbuf_set(reply, smtpd_sink_write_error);
        return -1;
    }
    rc = s->sink->md ? smtpd_sink_finish_maildrop(s, queue_id, reply)
        : smtpd_sink_finish_cleanup(s, queue_id, reply);
    smtpd_sink_forget(s->sink);
    xfree(&s->sink);
    return rc;
}

void smtpd_sink_abort(struct smtpd_session *s)
{
    if (s->sink == NULL)
        return;
    if (s->sink->md)
        maildrop_abort(&s->sink->md);
    else if (s->cleanup)
        cleanup_abort(s->cleanup);
    smtpd_sink_forget(s->sink);
    xfree(&s->sink);
}

void smtpd_sink_disconnect(struct smtpd_session *s)
{
    cleanup_disconnect(&s->cleanup);
}
