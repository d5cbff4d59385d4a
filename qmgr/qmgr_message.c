/*
 * qmgr_message.c - one message's pass through the active queue: taking the
 * queue file into active/, reading its envelope, resolving and grouping its
 * pending recipients, recording each outcome, and at the end removing the file,
 * asking the bounce service for DSNs, or moving the file to deferred/ with its
 * next retry time as the file's mtime (Postfix's convention).
 *
 * Outcomes: sent and bounced recipients are marked done in the queue file
 * (fsynced) after their bounce/ or trace/ record is durable; deferred ones get a
 * defer/ record. A message past maximal_queue_lifetime (bounce_queue_lifetime
 * for mail from <>) bounces every recipient still deferred; one past
 * delay_warning_time gets one delay DSN, remembered as the group-execute bit of
 * the queue file's mode (QMGR_MODE_WARNED).
 *
 * NEVER
 *	Never crashes on a queue file: a malformed one goes to corrupt/ with a log
 *	line, a vanished one is dropped quietly, one that cannot be read for
 *	now goes to deferred/. Never removes a file whose bounce could not be
 *	queued: its log stays and the file is retried. Never leaves logs behind
 *	for a file an administrator deleted during the pass (its link count is
 *	then 0 at the end of the pass).
 *
 * PARAMETERS
 *	maximal_queue_lifetime, bounce_queue_lifetime, delay_warning_time,
 *	minimal_backoff_time, maximal_backoff_time, hash_queue_depth, ipc_timeout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounce_client.h"
#include "cleanup_client.h"
#include "htable.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qfile.h"
#include "qmgr.h"
#include "queue_path.h"
#include "resolve.h"
#include "safe_file.h"
#include "status_log.h"
#include "strbuf.h"

#define QMGR_MODE_WARNED    S_IXGRP         /* a delay warning went out */
#define QMGR_BOUNCE_TIMEOUT (100 * 1000)    /* ms for the bounce service to queue a DSN */
#define QMGR_ATTR_MAX       4096

static struct qmgr_message *qmgr_messages;

/* --- moving files between queues ----------------------------------------- */

/* Renames queue file qid from one queue to another, creating the bucket. 0 or -1. */
static int qmgr_move(const char *from, const char *to, const char *qid, struct strbuf *newpath)
{
    struct strbuf src, dir;
    int rc;

    strbuf_init(&src, 64, 4096);
    strbuf_init(&dir, 64, 4096);
    queue_path(&src, from, qid, queue_path_depth(from));
    queue_path(newpath, to, qid, queue_path_depth(to));
    rc = rename(src.data, newpath->data);
    if (rc < 0 && errno == ENOENT && access(src.data, F_OK) == 0) {
        queue_path_dir(&dir, to, qid, queue_path_depth(to));
        if (safe_file_mkdirs(AT_FDCWD, dir.data, 0700, NULL) == 0)
            rc = rename(src.data, newpath->data);
    }
    strbuf_release(&src);
    strbuf_release(&dir);
    return rc;
}

static void qmgr_corrupt(const char *queue, const char *qid, const char *why)
{
    struct strbuf to;

    strbuf_init(&to, 64, 4096);
    msg_warn("%s: %s: corrupt queue file: %s; moved to corrupt/", qid, queue, why);
    if (qmgr_move(queue, "corrupt", qid, &to) < 0 && errno != ENOENT)
        msg_warn("%s: move to corrupt/: %m", qid);
    strbuf_release(&to);
}

/* --- reading ------------------------------------------------------------- */

static void qmgr_message_free(struct qmgr_message *m)
{
    int i;

    for (i = 0; i < m->nrcpt; i++) {
        free(m->rcpt[i].address);
        free(m->rcpt[i].dsn_orcpt);
        free(m->rcpt[i].orig_rcpt);
        free(m->rcpt[i].dsn);
        free(m->rcpt[i].reason);
    }
    free(m->rcpt);
    if (m->rw_fd >= 0)
        close(m->rw_fd);
    if (m->ro_fd >= 0)
        close(m->ro_fd);
    free(m->path);
    free(m->sender);
    free(m->dsn_envid);
    free(m->dsn_ret);
    free(m->client_name);
    free(m->client_addr);
    free(m);
}

/* "rfc822;user@example.com" gives the original recipient for the log line. */
static char *qmgr_orig_from_orcpt(const char *orcpt)
{
    if (strncasecmp(orcpt, "rfc822;", 7) == 0 && orcpt[7] && strchr(orcpt + 7, '+') == NULL)
        return xstrdup(orcpt + 7);
    return xstrdup("");
}

static void qmgr_message_attr(struct qmgr_message *m, const char *data)
{
    const char *eq = strchr(data, '=');
    size_t n;

    if (eq == NULL || strlen(eq + 1) > QMGR_ATTR_MAX)
        return;
    n = (size_t) (eq - data);
#define ATTR_IS(name) (n == sizeof(name) - 1 && strncmp(data, name, n) == 0)
    if (ATTR_IS("dsn_envid")) {
        free(m->dsn_envid);
        m->dsn_envid = xstrdup(eq + 1);
    } else if (ATTR_IS("dsn_ret")) {
        free(m->dsn_ret);
        m->dsn_ret = xstrdup(eq + 1);
    } else if (ATTR_IS("client_name")) {
        free(m->client_name);
        m->client_name = xstrdup(eq + 1);
    } else if (ATTR_IS("client_address")) {
        free(m->client_addr);
        m->client_addr = xstrdup(eq + 1);
    } else if (ATTR_IS("mt_priority")) {
        char *end;
        long p = strtol(eq + 1, &end, 10);

        if (*end == 0 && end != eq + 1 && p >= -9 && p <= 9)
            m->priority = (int) p;
    }
#undef ATTR_IS
}

/* Reads the envelope; 0, or -1 with why (malformed). */
static int qmgr_message_read(struct qmgr_message *m, struct qfile_reader *r, struct strbuf *why)
{
    struct qfile_record rec;
    char *orcpt = NULL;
    int notify = 0, cap = 0, rc;
    unsigned qf;

    while ((rc = qfile_next(r, &rec)) == 1) {
        switch (rec.type) {
        case QREC_TIME: {
            char *dot;

            m->arrival.tv_sec = (time_t) strtoll(rec.data, &dot, 10);
            m->arrival.tv_usec = (suseconds_t) strtol(dot + 1, NULL, 10);
            break;
        }
        case QREC_ATTR:
            qmgr_message_attr(m, rec.data);
            break;
        case QREC_SENDER:
            free(m->sender);
            m->sender = xstrdup(rec.data);
            break;
        case QREC_ORCPT:
            free(orcpt);
            orcpt = xstrdup(rec.data);
            break;
        case QREC_NOTIFY:
            notify = atoi(rec.data) & 0xff;
            break;
        case QREC_RCPT: {
            struct qmgr_rcpt *rc_;

            if (m->nrcpt == cap) {
                cap = cap ? cap * 2 : 8;
                m->rcpt = xreallocarray(m->rcpt, (size_t) cap, sizeof(*m->rcpt));
            }
            rc_ = m->rcpt + m->nrcpt++;
            memset(rc_, 0, sizeof(*rc_));
            rc_->address = xstrdup(rec.data);
            rc_->dsn_orcpt = orcpt ? orcpt : xstrdup("");
            rc_->orig_rcpt = qmgr_orig_from_orcpt(rc_->dsn_orcpt);
            rc_->notify = notify;
            rc_->offset = rec.offset;
            orcpt = NULL;
            notify = 0;
            break;
        }
        case QREC_DONE:
            free(orcpt);
            orcpt = NULL;
            notify = 0;
            break;
        default:
            break;              /* size, content */
        }
    }
    free(orcpt);
    if (rc < 0) {
        strbuf_set(why, qfile_reason(r));
        return -1;
    }
    if (m->sender == NULL) {
        strbuf_set(why, "no sender");
        return -1;
    }
    m->content_offset = (off_t) qfile_content_offset(r);
    m->content_length = (off_t) qfile_content_length(r);
    qf = qfile_flags(r);
    m->flags = ((qf & QFILE_FLAG_8BIT) ? DELIVER_FLAG_8BIT : 0)
        | ((qf & QFILE_FLAG_SMTPUTF8) ? DELIVER_FLAG_SMTPUTF8 : 0)
        | ((qf & QFILE_FLAG_BINARYMIME) ? DELIVER_FLAG_BINARYMIME : 0);
    if (m->arrival.tv_sec == 0)
        (void) qid_time(m->qid, &m->arrival);
    return 0;
}

/* --- resolving and grouping ---------------------------------------------- */

struct qmgr_group {
    char *transport, *nexthop;
    int *idx, n, cap;
};

static int qmgr_group_flush(const char *key, void *value, void *ctx)
{
    struct qmgr_group *g = value;

    (void) key;
    qmgr_deliver_queue(ctx, g->transport, g->nexthop, g->idx, g->n);
    return 0;
}

static void qmgr_group_free(void *value)
{
    struct qmgr_group *g = value;

    free(g->transport);
    free(g->nexthop);
    free(g->idx);
    free(g);
}

static void qmgr_message_resolve(struct qmgr_message *m)
{
    struct htable *groups = htable_new(8);
    struct resolve_reply reply;
    struct strbuf key;
    int i;

    resolve_reply_init(&reply);
    strbuf_init(&key, 128, STRBUF_UNLIMITED);
    for (i = 0; i < m->nrcpt; i++) {
        struct qmgr_group *g;

        if (resolve_addr(m->rcpt[i].address, &reply) < 0) {
            if (reply.flags & RESOLVE_FLAG_FAIL)
                qmgr_message_result(m, i, DELIVER_DEFER, "4.3.0", "none",
                                    "address resolver failure", 0);
            else
                qmgr_message_result(m, i, DELIVER_BOUNCE, "5.1.3", "none",
                                    reply.nexthop.len ? reply.nexthop.data
                                    : "bad address syntax", 0);
            continue;
        }
        strbuf_reset(&key);
        strbuf_printf(&key, "%s:%s", reply.transport.data, reply.nexthop.data);
        if ((g = htable_find(groups, key.data)) == NULL) {
            g = xcalloc(1, sizeof(*g));
            g->transport = xstrdup(reply.transport.data);
            g->nexthop = xstrdup(reply.nexthop.data);
            if (htable_insert(groups, key.data, g, NULL) < 0)
                msg_panic("qmgr: group table full");
        }
        if (g->n == g->cap) {
            g->cap = g->cap ? g->cap * 2 : 4;
            g->idx = xreallocarray(g->idx, (size_t) g->cap, sizeof(*g->idx));
        }
        g->idx[g->n++] = i;
    }
    (void) htable_walk(groups, qmgr_group_flush, m);
    htable_free(&groups, qmgr_group_free);
    strbuf_release(&key);
    resolve_reply_free(&reply);
}

/* --- activation ---------------------------------------------------------- */

static int qmgr_transient(int err)
{
    return err == EIO || err == EMFILE || err == ENFILE || err == ENOMEM || err == EAGAIN
        || err == EINTR;
}

int qmgr_message_activate(const char *queue, const char *qid)
{
    struct qmgr_message *m;
    struct qfile_reader *r;
    struct strbuf path, why;
    struct stat st;

    strbuf_init(&path, 64, 4096);
    strbuf_init(&why, 128, 4096);
    if (strcmp(queue, "active") != 0) {
        queue_path(&path, queue, qid, queue_path_depth(queue));
        if (lstat(path.data, &st) < 0 || !qfile_is_complete(st.st_mode)
            || qmgr_move(queue, "active", qid, &path) < 0) {
            strbuf_release(&path);
            strbuf_release(&why);
            return 0;           /* gone, or still being written */
        }
    } else {
        queue_path(&path, "active", qid, queue_path_depth("active"));
    }
    if ((r = qfile_open(AT_FDCWD, path.data, O_RDWR, &why)) == NULL) {
        int err = errno;

        if (err == ENOENT) {
            /* Deleted by an administrator meanwhile: nothing to do. */
        } else if (qmgr_transient(err)) {
            msg_warn("%s: %s; trying again later", qid, why.data);
            (void) qmgr_move("active", "deferred", qid, &path);
        } else {
            qmgr_corrupt("active", qid, why.data);
        }
        strbuf_release(&path);
        strbuf_release(&why);
        return err == ENOENT ? 0 : -1;
    }
    m = xcalloc(1, sizeof(*m));
    m->rw_fd = m->ro_fd = -1;
    snprintf(m->qid, sizeof(m->qid), "%s", qid);
    if (qmgr_message_read(m, r, &why) < 0) {
        int err = errno;

        qfile_close(&r);
        qmgr_message_free(m);
        if (qmgr_transient(err) && err != EINVAL) {
            msg_warn("%s: read: %s; trying again later", qid, why.data);
            (void) qmgr_move("active", "deferred", qid, &path);
        } else {
            qmgr_corrupt("active", qid, why.data);
        }
        strbuf_release(&path);
        strbuf_release(&why);
        return -1;
    }
    m->total_rcpt = (int) qfile_rcpt_count(r);
    m->rw_fd = fcntl(qfile_reader_fd(r), F_DUPFD_CLOEXEC, 0);
    m->ro_fd = open(path.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    qfile_close(&r);
    strbuf_release(&why);
    if (m->rw_fd < 0 || m->ro_fd < 0) {
        msg_warn("%s: open: %m; trying again later", qid);
        qmgr_message_free(m);
        (void) qmgr_move("active", "deferred", qid, &path);
        strbuf_release(&path);
        return 0;
    }
    if (fstat(m->rw_fd, &st) == 0)
        m->warned = (st.st_mode & QMGR_MODE_WARNED) != 0;
    m->path = xstrdup(path.data);
    strbuf_release(&path);
    gettimeofday(&m->active, NULL);
    msg_info("%s: from=<%s>, size=%lld, nrcpt=%d (queue active)", m->qid, m->sender,
             (long long) m->content_length, m->total_rcpt);
    /* The defer log tells about the last attempt only. */
    (void) status_log_remove(AT_FDCWD, STATUS_LOG_DEFER, m->qid,
                             queue_path_depth(STATUS_LOG_DEFER), NULL);
    m->next = qmgr_messages;
    qmgr_messages = m;
    qmgr_active_count++;
    qmgr_rcpt_count += m->nrcpt;
    /* One reference for the setup, so that results during it cannot finish it. */
    m->entries = 1;
    qmgr_message_resolve(m);
    qmgr_message_entry_done(m);
    return 1;
}

/* --- outcomes ------------------------------------------------------------ */

static void qmgr_request_view(struct qmgr_message *m, struct deliver_request *req,
                              struct deliver_rcpt *one, int i)
{
    memset(req, 0, sizeof(*req));
    one->address = m->rcpt[i].address;
    one->orig_rcpt = m->rcpt[i].orig_rcpt;
    one->dsn_orcpt = m->rcpt[i].dsn_orcpt;
    one->notify = m->rcpt[i].notify;
    one->offset = m->rcpt[i].offset;
    req->queue_id = m->qid;
    req->arrival = m->arrival;
    req->active = m->active;
    req->rcpt = one;
    req->rcpt_count = 1;
}

static int qmgr_log_append(struct qmgr_message *m, int i, const char *log, const char *action,
                           const char *dsn, const char *relay, const char *reason)
{
    struct status_entry e;
    struct strbuf why;
    int rc;

    memset(&e, 0, sizeof(e));
    e.time = qmgr_now();
    e.recipient = m->rcpt[i].address;
    e.orig_rcpt = m->rcpt[i].orig_rcpt;
    e.dsn_orcpt = m->rcpt[i].dsn_orcpt;
    e.notify = m->rcpt[i].notify;
    e.offset = m->rcpt[i].offset;
    e.status = dsn;
    e.action = action;
    e.relay = relay;
    e.reason = reason;
    strbuf_init(&why, 128, 4096);
    rc = status_log_append(AT_FDCWD, log, m->qid, queue_path_depth(log), &e, &why);
    if (rc < 0)
        msg_warn("%s: %s", m->qid, why.data);
    strbuf_release(&why);
    return rc;
}

static void qmgr_rcpt_defer(struct qmgr_message *m, int i, const char *dsn, const char *relay,
                            const char *reason)
{
    struct qmgr_rcpt *r = m->rcpt + i;

    (void) qmgr_log_append(m, i, STATUS_LOG_DEFER, "delayed", dsn, relay, reason);
    r->state = QMGR_RCPT_DEFERRED;
    free(r->dsn);
    free(r->reason);
    r->dsn = xstrdup(dsn);
    r->reason = xstrdup(reason);
}

static void qmgr_rcpt_done(struct qmgr_message *m, int i)
{
    if (qfile_mark_done(m->rw_fd, m->rcpt[i].offset) < 0)
        msg_warn("%s: mark recipient %s done: %m", m->qid, m->rcpt[i].address);
    m->rcpt[i].state = QMGR_RCPT_FINAL;
}

void qmgr_message_result(struct qmgr_message *m, int i, enum deliver_status st,
                         const char *dsn, const char *relay, const char *reason, int logged)
{
    char soft_dsn[16];

    if (i < 0 || i >= m->nrcpt)
        msg_panic("qmgr_message_result: recipient %d of %d", i, m->nrcpt);
    if (m->rcpt[i].state != QMGR_RCPT_TODO) {
        msg_warn("%s: second outcome for %s ignored", m->qid, m->rcpt[i].address);
        return;
    }
    /* soft_bounce covers qmgr's own bounces too (agents' are softened in deliver_report). */
    if (st == DELIVER_BOUNCE && var_soft_bounce) {
        snprintf(soft_dsn, sizeof(soft_dsn), "4%s", dsn + 1);
        dsn = soft_dsn;
        st = DELIVER_DEFER;
    }
    if (!logged) {
        struct deliver_request req;
        struct deliver_rcpt one;
        struct strbuf line;
        struct timeval now;

        qmgr_request_view(m, &req, &one, i);
        strbuf_init(&line, 256, STRBUF_UNLIMITED);
        gettimeofday(&now, NULL);
        deliver_log_format(&line, &req, 0, st, dsn, relay, reason, &now);
        msg_info("%s", line.data);
        strbuf_release(&line);
    }
    switch (st) {
    case DELIVER_SENT:
        if ((m->rcpt[i].notify & CLEANUP_NOTIFY_SUCCESS)
            && qmgr_log_append(m, i, STATUS_LOG_TRACE, "delivered", dsn, relay, reason) == 0)
            m->traced++;
        qmgr_rcpt_done(m, i);
        break;
    case DELIVER_BOUNCE:
        /* The bounce record must be durable before the recipient is done. */
        if (qmgr_log_append(m, i, STATUS_LOG_BOUNCE, "failed", dsn, relay, reason) < 0) {
            qmgr_rcpt_defer(m, i, "4.3.0", relay, "cannot record the bounce; will retry");
            break;
        }
        m->bounced++;
        qmgr_rcpt_done(m, i);
        break;
    case DELIVER_DEFER:
        qmgr_rcpt_defer(m, i, dsn, relay, reason);
        break;
    }
}

/* --- the end of a pass --------------------------------------------------- */

static int qmgr_log_any(const struct status_entry *e, void *ctx)
{
    (void) e;
    (void) ctx;
    return 1;
}

static int qmgr_log_exists(const char *qid, const char *log)
{
    return status_log_read(AT_FDCWD, log, qid, queue_path_depth(log), qmgr_log_any, NULL,
                           NULL) > 0;
}

/* Asks for one DSN; on success removes the log it was made from (but the defer log). */
static int qmgr_notify(struct qmgr_message *m, enum bounce_kind kind, const char *log)
{
    struct strbuf why;
    int rc;

    strbuf_init(&why, 128, 4096);
    rc = bounce_request(NULL, kind, "active", m->qid, QMGR_BOUNCE_TIMEOUT, NULL, &why);
    if (rc < 0)
        msg_warn("%s: %s notification not sent: %s; will retry", m->qid,
                 kind == BOUNCE_FAILED ? "non-delivery" : kind == BOUNCE_DELAYED ? "delay"
                 : "success", why.data);
    else if (kind != BOUNCE_DELAYED)
        (void) status_log_remove(AT_FDCWD, log, m->qid, queue_path_depth(log), NULL);
    strbuf_release(&why);
    return rc;
}

/* Past its lifetime: every deferred recipient bounces with its last reason;
 * with soft_bounce nothing bounces and the mail stays queued (Postfix). */
static void qmgr_message_expire(struct qmgr_message *m)
{
    int i;

    if (var_soft_bounce)
        return;
    for (i = 0; i < m->nrcpt; i++) {
        struct qmgr_rcpt *r = m->rcpt + i;
        char dsn[16];

        if (r->state == QMGR_RCPT_FINAL)
            continue;
        snprintf(dsn, sizeof(dsn), "5%s", r->dsn && r->dsn[0] == '4' ? r->dsn + 1 : ".4.7");
        if (qmgr_log_append(m, i, STATUS_LOG_BOUNCE, "failed", dsn, "none",
                            r->reason ? r->reason : "message expired") < 0)
            continue;
        m->bounced++;
        qmgr_rcpt_done(m, i);
    }
    msg_info("%s: from=<%s>, status=expired, returned to sender", m->qid, m->sender);
}

static void qmgr_message_defer_file(struct qmgr_message *m, time_t now)
{
    struct strbuf path;
    struct timespec ts[2];
    long long delay = (long long) (now - m->arrival.tv_sec);

    /* Postfix's back-off: the time already spent in the queue, within limits. */
    if (delay > var_maximal_backoff_time)
        delay = var_maximal_backoff_time;
    if (delay < var_minimal_backoff_time)
        delay = var_minimal_backoff_time;
    ts[0].tv_sec = ts[1].tv_sec = now + (time_t) delay;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    if (futimens(m->rw_fd, ts) < 0)
        msg_warn("%s: set retry time: %m", m->qid);
    strbuf_init(&path, 64, 4096);
    if (qmgr_move("active", "deferred", m->qid, &path) < 0 && errno != ENOENT)
        msg_warn("%s: move to deferred/: %m", m->qid);
    strbuf_release(&path);
}

static void qmgr_message_remove(struct qmgr_message *m)
{
    if (unlink(m->path) < 0 && errno != ENOENT) {
        msg_warn("%s: remove %s: %m", m->qid, m->path);
        return;
    }
    (void) status_log_remove(AT_FDCWD, STATUS_LOG_DEFER, m->qid,
                             queue_path_depth(STATUS_LOG_DEFER), NULL);
    (void) status_log_remove(AT_FDCWD, STATUS_LOG_BOUNCE, m->qid,
                             queue_path_depth(STATUS_LOG_BOUNCE), NULL);
    (void) status_log_remove(AT_FDCWD, STATUS_LOG_TRACE, m->qid,
                             queue_path_depth(STATUS_LOG_TRACE), NULL);
    msg_info("%s: removed", m->qid);
}

/* Whether an administrator deleted the file during this pass (petrel queue
 * delete): no name links to it any more. A file moved meanwhile (hold) still
 * has its name elsewhere and keeps its logs. */
static int qmgr_message_deleted(struct qmgr_message *m)
{
    struct stat st;

    return fstat(m->rw_fd, &st) == 0 && st.st_nlink == 0;
}

/* A deleted message gets no DSN; the logs this pass wrote for it would be
 * orphans, so they go too. */
static void qmgr_message_forget(struct qmgr_message *m)
{
    (void) status_log_remove(AT_FDCWD, STATUS_LOG_DEFER, m->qid,
                             queue_path_depth(STATUS_LOG_DEFER), NULL);
    (void) status_log_remove(AT_FDCWD, STATUS_LOG_BOUNCE, m->qid,
                             queue_path_depth(STATUS_LOG_BOUNCE), NULL);
    (void) status_log_remove(AT_FDCWD, STATUS_LOG_TRACE, m->qid,
                             queue_path_depth(STATUS_LOG_TRACE), NULL);
    msg_info("%s: deleted by the administrator during delivery; its logs removed", m->qid);
}

static void qmgr_message_finish(struct qmgr_message *m)
{
    time_t now = qmgr_now();
    long long lifetime = m->sender[0] ? var_maximal_queue_lifetime : var_bounce_queue_lifetime;
    int deferred = 0, keep = 0, i;
    struct qmgr_message **pp;

    if (qmgr_message_deleted(m)) {
        qmgr_message_forget(m);
        goto done;
    }
    for (i = 0; i < m->nrcpt; i++)
        if (m->rcpt[i].state != QMGR_RCPT_FINAL)
            deferred++;
    if (deferred && m->arrival.tv_sec < now - lifetime) {
        qmgr_message_expire(m);
        deferred = 0;
        for (i = 0; i < m->nrcpt; i++)
            if (m->rcpt[i].state != QMGR_RCPT_FINAL)
                deferred++;
    }
    if ((m->bounced || qmgr_log_exists(m->qid, STATUS_LOG_BOUNCE))
        && qmgr_notify(m, BOUNCE_FAILED, STATUS_LOG_BOUNCE) < 0)
        keep = 1;
    if ((m->traced || qmgr_log_exists(m->qid, STATUS_LOG_TRACE))
        && qmgr_notify(m, BOUNCE_SUCCESS, STATUS_LOG_TRACE) < 0)
        keep = 1;
    if (deferred && var_delay_warning_time > 0 && !m->warned
        && now - m->arrival.tv_sec >= var_delay_warning_time
        && qmgr_notify(m, BOUNCE_DELAYED, STATUS_LOG_DEFER) == 0) {
        struct stat st;

        if (fstat(m->rw_fd, &st) == 0
            && fchmod(m->rw_fd, (st.st_mode & 07777) | QMGR_MODE_WARNED) == 0)
            m->warned = 1;
        (void) safe_file_sync(m->rw_fd);
    }
    if (deferred || keep)
        qmgr_message_defer_file(m, now);
    else
        qmgr_message_remove(m);
done:
    for (pp = &qmgr_messages; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    qmgr_active_count--;
    qmgr_rcpt_count -= m->nrcpt;
    qmgr_message_free(m);
    qmgr_room_freed();
}

void qmgr_message_entry_done(struct qmgr_message *m)
{
    if (--m->entries == 0)
        qmgr_message_finish(m);
}
