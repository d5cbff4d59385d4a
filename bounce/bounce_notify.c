/*
 * bounce_notify.c - one delivery status notification: read the message's
 * queue file and its status log, pick the recipients the report covers,
 * compose the report (util/dsn_report.h) and queue it through cleanup.
 *
 * WHO GETS WHAT (as Postfix's bounce(8))
 *	A report goes to the original sender from the null sender <>, listing
 *	the recipients whose DSN NOTIFY asks for it (no NOTIFY: failures and
 *	delays; NOTIFY=NEVER: nothing). When the original sender is <> the
 *	message was itself a notification: a failure is then a double bounce
 *	and goes, with every recipient and the whole message, to
 *	2bounce_notice_recipient, when notify_classes has "2bounce" (our
 *	default) or "bounce"; otherwise it is dropped (logged). Nothing is ever
 *	sent to <>.
 *	Notices to postmaster come from double_bounce_sender@$myhostname; a
 *	failed notice from that sender is dropped ("undeliverable postmaster
 *	notification discarded"), so notices can never loop. With "bounce" in
 *	notify_classes a failure report also sends the headers of the message
 *	to bounce_notice_recipient; with "delay", a delay warning sends them to
 *	delay_notice_recipient. These copies are not critical: when one fails
 *	it is logged and the request still succeeds.
 *
 * NEVER
 *	Never changes the queue file or the log (qmgr removes the log when the
 *	request succeeds); never answers OK before cleanup has made the notice
 *	durable; never reads more of the message than bounce_size_limit (a
 *	larger message is returned as its headers).
 *
 * DIAGNOSTICS
 *	A queue file or log that cannot be read, or a cleanup failure, answers
 *	DEFER with the reason (qmgr asks again later); a malformed queue file
 *	answers REJECT.
 *
 * PARAMETERS
 *	myhostname, mail_name, bounce_size_limit, notify_classes,
 *	bounce_notice_recipient, 2bounce_notice_recipient,
 *	delay_notice_recipient, double_bounce_sender, delay_warning_time,
 *	maximal_queue_lifetime, hash_queue_depth, hash_queue_names,
 *	ipc_timeout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "cleanup_client.h"
#include "dsn_report.h"
#include "ipc.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qfile.h"
#include "queue_path.h"
#include "status_log.h"
#include "strbuf.h"

#define BOUNCE_MAX_RCPT         10000   /* listed in one report; the rest are counted */
#define BOUNCE_MAX_LOG_RECORDS  (4 * BOUNCE_MAX_RCPT)   /* read from one log */
#define BOUNCE_HEADER_MIN       65536   /* headers read even under a small bounce_size_limit */
#define BOUNCE_MSGID_MAX        998

/* What the queue file tells about the message. */
struct bounce_msg {
    struct qfile_reader *r;
    char *sender;
    char *envid;
    char *ret;                  /* "FULL", "HDRS" or "" */
    time_t arrival;
    unsigned qflags;
    uint64_t content_offset;
    uint64_t content_length;
};

/* The log's records, one per recipient (the last record of each wins). */
struct bounce_rcpts {
    struct dsn_report_rcpt *rcpt;
    int *notify;
    long long *offset;
    size_t count;
    size_t cap;
    long records;
};

static struct cleanup_client *bounce_cleanup;

/* --- Configuration --------------------------------------------------------- */

/* Whether notify_classes names class (case does not matter, as in Postfix). */
static int bounce_notify_class(const char *class)
{
    const char *p = var_notify_classes;
    size_t clen = strlen(class);

    while (*p) {
        size_t n;

        p += strspn(p, ", \t\r\n");
        n = strcspn(p, ", \t\r\n");
        if (n == clen && strncasecmp(p, class, n) == 0)
            return 1;
        p += n;
    }
    return 0;
}

static int bounce_timeout_ms(void)
{
    return (int) (var_ipc_timeout * 1000 > 0x7fffffff ? 0x7fffffff : var_ipc_timeout * 1000);
}

/* double_bounce_sender@$myhostname: the sender of notices to postmaster. */
static void bounce_double_bounce_addr(struct strbuf *out)
{
    strbuf_reset(out);
    (void) strbuf_printf(out, "%s@%s", var_double_bounce_sender, var_myhostname);
}

/* --- The queue file --------------------------------------------------------- */

static void bounce_msg_free(struct bounce_msg *m)
{
    qfile_close(&m->r);
    xfree(&m->sender);
    xfree(&m->envid);
    xfree(&m->ret);
}

/* Opens the queue file and reads its envelope; IPC status. */
static int bounce_msg_open(const char *queue_name, const char *qid, struct bounce_msg *m,
                           struct strbuf *why)
{
    struct qfile_record rec;
    struct strbuf path;
    int status;

    memset(m, 0, sizeof(*m));
    strbuf_init(&path, 64, 0);
    queue_path(&path, queue_name, qid, queue_path_depth(queue_name));
    m->r = qfile_open(AT_FDCWD, path.data, O_RDONLY, why);
    strbuf_release(&path);
    if (m->r == NULL)
        return IPC_STATUS_DEFER;
    while ((status = qfile_next(m->r, &rec)) > 0) {
        switch (rec.type) {
        case QREC_SENDER:
            m->sender = xstrdup(rec.data);
            break;
        case QREC_TIME:
            m->arrival = (time_t) strtoll(rec.data, NULL, 10);
            break;
        case QREC_ATTR:
            if (strncmp(rec.data, "dsn_envid=", 10) == 0 && m->envid == NULL)
                m->envid = xstrdup(rec.data + 10);
            else if (strncmp(rec.data, "dsn_ret=", 8) == 0 && m->ret == NULL)
                m->ret = xstrdup(rec.data + 8);
            break;
        }
    }
    if (status < 0) {
        strbuf_reset(why);
        (void) strbuf_printf(why, "%s: malformed queue file: %s", qid, qfile_reason(m->r));
        return IPC_STATUS_REJECT;
    }
    if (m->sender == NULL)
        m->sender = xstrdup("");
    if (m->envid == NULL)
        m->envid = xstrdup("");
    if (m->ret == NULL)
        m->ret = xstrdup("");
    m->qflags = qfile_flags(m->r);
    m->content_offset = qfile_content_offset(m->r);
    m->content_length = qfile_content_length(m->r);
    return IPC_STATUS_OK;
}

/* Reads up to len bytes of content into out (replacing it); 0 or -1. */
static int bounce_msg_content(const struct bounce_msg *m, size_t len, struct strbuf *out)
{
    int fd = qfile_reader_fd(m->r);
    size_t got = 0;

    strbuf_reset(out);
    if (len > m->content_length)
        len = (size_t) m->content_length;
    if (strbuf_reserve(out, len) < 0)
        return -1;
    while (got < len) {
        ssize_t n = pread(fd, out->data + got, len - got, (off_t) (m->content_offset + got));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t) n;
    }
    out->len = got;
    out->data[got] = '\0';
    return 0;
}

/* Cuts content down to its header block (the lines before the first empty one). */
static void bounce_headers_only(struct strbuf *content)
{
    const char *end;

    if (content->len > 0 && content->data[0] == '\n') {
        strbuf_truncate(content, 0);
        return;
    }
    if ((end = memmem(content->data, content->len, "\n\n", 2)) != NULL) {
        strbuf_truncate(content, (size_t) (end - content->data) + 1);
        return;
    }
    /* No end of headers within what was read: keep whole lines only. */
    while (content->len > 0 && content->data[content->len - 1] != '\n')
        content->len--;
    content->data[content->len] = '\0';
}

/* The Message-ID of a header block, for References: and In-Reply-To:. */
static void bounce_find_msgid(const struct strbuf *headers, struct strbuf *msgid)
{
    const char *p = headers->data, *end = headers->data + headers->len;

    strbuf_reset(msgid);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p);

        if (len > 11 && strncasecmp(p, "Message-ID:", 11) == 0) {
            const char *v = p + 11;
            size_t n = len - 11;

            while (n > 0 && (*v == ' ' || *v == '\t'))
                v++, n--;
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r'))
                n--;
            if (n > 0 && n <= BOUNCE_MSGID_MAX && memchr(v, '\0', n) == NULL)
                (void) strbuf_append(msgid, v, n);
            return;
        }
        p += len + 1;
    }
}

/* --- The status log --------------------------------------------------------- */

static void bounce_rcpts_free(struct bounce_rcpts *rs)
{
    size_t i;

    for (i = 0; i < rs->count; i++) {
        struct dsn_report_rcpt *r = rs->rcpt + i;

        free((char *) r->address);
        free((char *) r->orig_rcpt);
        free((char *) r->dsn_orcpt);
        free((char *) r->action);
        free((char *) r->status);
        free((char *) r->relay);
        free((char *) r->reason);
    }
    free(rs->rcpt);
    free(rs->notify);
    free(rs->offset);
    memset(rs, 0, sizeof(*rs));
}

static void bounce_rcpt_set(struct dsn_report_rcpt *r, const struct status_entry *e)
{
    free((char *) r->action);
    free((char *) r->status);
    free((char *) r->relay);
    free((char *) r->reason);
    r->action = xstrdup(e->action);
    r->status = xstrdup(e->status);
    r->relay = xstrdup(e->relay);
    r->reason = xstrdup(e->reason);
    r->time = e->time;
}

/* status_log_read callback: one record per recipient, identified by its
 * queue file offset; a later record (a later attempt) replaces an earlier. */
static int bounce_rcpts_add(const struct status_entry *e, void *ctx)
{
    struct bounce_rcpts *rs = ctx;
    struct dsn_report_rcpt *r;
    size_t i;

    if (++rs->records > BOUNCE_MAX_LOG_RECORDS)
        return 1;
    /* Recent records are the likely duplicates: look from the end. */
    for (i = rs->count; i > 0; i--) {
        if (rs->offset[i - 1] == (long long) e->offset
            && strcmp(rs->rcpt[i - 1].address, e->recipient) == 0) {
            bounce_rcpt_set(rs->rcpt + i - 1, e);
            rs->notify[i - 1] = e->notify;
            return 0;
        }
    }
    if (rs->count == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 16;
        rs->rcpt = xreallocarray(rs->rcpt, rs->cap, sizeof(*rs->rcpt));
        rs->notify = xreallocarray(rs->notify, rs->cap, sizeof(*rs->notify));
        rs->offset = xreallocarray(rs->offset, rs->cap, sizeof(*rs->offset));
    }
    r = rs->rcpt + rs->count;
    memset(r, 0, sizeof(*r));
    r->address = xstrdup(e->recipient);
    r->orig_rcpt = xstrdup(e->orig_rcpt);
    r->dsn_orcpt = xstrdup(e->dsn_orcpt);
    bounce_rcpt_set(r, e);
    rs->notify[rs->count] = e->notify;
    rs->offset[rs->count] = (long long) e->offset;
    rs->count++;
    return 0;
}

/* Whether a recipient's NOTIFY asks for this kind of report (RFC 3461
 * section 4.1; no NOTIFY means failures and delays, as in Postfix). */
static int bounce_wanted(enum bounce_kind kind, int notify)
{
    switch (kind) {
    case BOUNCE_FAILED:
        return notify == 0 || (notify & CLEANUP_NOTIFY_FAILURE);
    case BOUNCE_DELAYED:
        return notify == 0 || (notify & CLEANUP_NOTIFY_DELAY);
    case BOUNCE_SUCCESS:
        return (notify & CLEANUP_NOTIFY_SUCCESS) != 0;
    }
    return 0;
}

/* --- Submission -------------------------------------------------------------- */

void bounce_notify_disconnect(void)
{
    cleanup_disconnect(&bounce_cleanup);
}

/* One notice through cleanup: open (for the new queue ID the text needs),
 * envelope, text, finish. Returns 0 with the ID in new_qid, or -1 with why. */
static int bounce_submit(struct dsn_report *report, const char *qid, const char *env_sender,
                         struct strbuf *new_qid, struct strbuf *why)
{
    struct cleanup_result res;
    struct strbuf text;
    int flags, eightbit;

    if (bounce_cleanup == NULL
        && (bounce_cleanup = cleanup_connect(NULL, bounce_timeout_ms(), why)) == NULL)
        return -1;
    /* The text decides whether the notice is 8-bit, and the text needs the
     * new queue ID; compose once with a placeholder to learn the flag. */
    strbuf_init(&text, 4096, 0);
    report->new_queue_id = "0";
    eightbit = dsn_report_compose(report, &text);
    flags = eightbit ? CLEANUP_FLAG_8BITMIME : 0;
    if (eightbit && report->smtputf8)
        flags |= CLEANUP_FLAG_SMTPUTF8;
    if (cleanup_open(bounce_cleanup, flags, why) < 0) {
        bounce_notify_disconnect();
        strbuf_release(&text);
        return -1;
    }
    strbuf_set(new_qid, cleanup_queue_id(bounce_cleanup));
    report->new_queue_id = new_qid->data;
    (void) dsn_report_compose(report, &text);
    if (cleanup_attr(bounce_cleanup, "log_ident", qid) < 0
        || cleanup_sender(bounce_cleanup, env_sender) < 0
        || cleanup_recipient(bounce_cleanup, report->to, "", 0) < 0
        || cleanup_write(bounce_cleanup, text.data, text.len) < 0) {
        strbuf_set(why, "sending the notice to cleanup failed");
        cleanup_abort(bounce_cleanup);
        bounce_notify_disconnect();
        strbuf_release(&text);
        return -1;
    }
    strbuf_release(&text);
    memset(&res, 0, sizeof(res));
    if (cleanup_finish(bounce_cleanup, &res) < 0) {
        strbuf_set(why, res.reply[0] ? res.reply : "no answer from cleanup");
        bounce_notify_disconnect();
        return -1;
    }
    if (res.status != CLEANUP_OK) {
        strbuf_reset(why);
        (void) strbuf_printf(why, "cleanup: %s", res.reply);
        return -1;
    }
    return 0;
}

/* --- One request ------------------------------------------------------------- */

struct bounce_job {
    enum bounce_kind kind;
    const char *qid;
    struct bounce_msg msg;
    struct bounce_rcpts all;
    struct strbuf headers;      /* the message's header block */
    struct strbuf full;         /* the whole message, when it fits bounce_size_limit */
    int have_full;
    struct strbuf msgid;
};

/* Fills a report with the recipients that pass the filter (everyone for
 * postmaster), up to BOUNCE_MAX_RCPT; returns how many it lists. */
static size_t bounce_select(struct bounce_job *j, int postmaster, struct dsn_report_rcpt *sel,
                            size_t *omitted)
{
    size_t i, n = 0;

    *omitted = 0;
    for (i = 0; i < j->all.count; i++) {
        if (!postmaster && !bounce_wanted(j->kind, j->all.notify[i]))
            continue;
        if (n < BOUNCE_MAX_RCPT)
            sel[n++] = j->all.rcpt[i];
        else
            (*omitted)++;
    }
    return n;
}

/* Composes and queues one notice to to from env_sender; returns the number of
 * recipients it listed (0: nothing sent), or -1 with why. */
static int bounce_one(struct bounce_job *j, const char *to, const char *env_sender,
                      int postmaster, int headers_only, struct strbuf *new_qid,
                      struct strbuf *why)
{
    struct dsn_report report;
    struct dsn_report_rcpt *sel;
    size_t n, omitted;
    int ret;

    sel = xcalloc(j->all.count ? j->all.count : 1, sizeof(*sel));
    n = bounce_select(j, postmaster, sel, &omitted);
    if (n == 0) {
        free(sel);
        return 0;
    }
    memset(&report, 0, sizeof(report));
    report.kind = j->kind == BOUNCE_FAILED ? DSN_REPORT_FAILED
        : j->kind == BOUNCE_DELAYED ? DSN_REPORT_DELAYED : DSN_REPORT_SUCCESS;
    report.postmaster_copy = postmaster;
    report.myhostname = var_myhostname;
    report.mail_name = var_mail_name;
    report.to = to;
    report.queue_id = j->qid;
    report.sender = j->msg.sender;
    report.envid = j->msg.envid;
    report.orig_msgid = j->msgid.data;
    report.arrival = j->msg.arrival;
    report.now = time(NULL);
    report.delay_warning_time = var_delay_warning_time;
    report.maximal_queue_lifetime = var_maximal_queue_lifetime;
    report.smtputf8 = (j->msg.qflags & QFILE_FLAG_SMTPUTF8) != 0;
    report.eightbit = (j->msg.qflags & (QFILE_FLAG_8BIT | QFILE_FLAG_BINARYMIME)) != 0;
    report.rcpt = sel;
    report.rcpt_count = n;
    report.rcpt_omitted = omitted;
    if (headers_only || !j->have_full) {
        report.original = j->headers.data;
        report.original_len = j->headers.len;
        report.headers_only = 1;
    } else {
        report.original = j->full.data;
        report.original_len = j->full.len;
    }
    ret = bounce_submit(&report, j->qid, env_sender, new_qid, why) < 0 ? -1 : (int) n;
    free(sel);
    return ret;
}

/* Reads the log and the message content the notices need; IPC status. */
static int bounce_job_load(struct bounce_job *j, const char *queue_name, struct strbuf *why)
{
    const char *log = j->kind == BOUNCE_FAILED ? STATUS_LOG_BOUNCE
        : j->kind == BOUNCE_DELAYED ? STATUS_LOG_DEFER : STATUS_LOG_TRACE;
    size_t limit = (size_t) var_bounce_size_limit;
    size_t hlimit = limit > BOUNCE_HEADER_MIN ? limit : BOUNCE_HEADER_MIN;
    int status;

    if ((status = bounce_msg_open(queue_name, j->qid, &j->msg, why)) != IPC_STATUS_OK)
        return status;
    if (status_log_read(AT_FDCWD, log, j->qid, queue_path_depth(log), bounce_rcpts_add,
                        &j->all, why) < 0)
        return IPC_STATUS_DEFER;
    if (j->all.records > BOUNCE_MAX_LOG_RECORDS)
        msg_warn("%s: %s log has over %d records; the rest are not reported", j->qid, log,
                 BOUNCE_MAX_LOG_RECORDS);
    if (j->all.count == 0)
        return IPC_STATUS_OK;
    if (bounce_msg_content(&j->msg, hlimit, &j->headers) < 0) {
        strbuf_reset(why);
        (void) strbuf_printf(why, "%s: read error in the queue file: %s", j->qid,
                             strerror(errno ? errno : EIO));
        return IPC_STATUS_DEFER;
    }
    bounce_headers_only(&j->headers);
    bounce_find_msgid(&j->headers, &j->msgid);
    /* Postfix: a message over bounce_size_limit is returned as its headers,
     * never cut, so the MIME structure of the report stays whole. */
    if (j->msg.content_length <= limit) {
        if (bounce_msg_content(&j->msg, limit, &j->full) < 0) {
            strbuf_reset(why);
            (void) strbuf_printf(why, "%s: read error in the queue file: %s", j->qid,
                                 strerror(errno ? errno : EIO));
            return IPC_STATUS_DEFER;
        }
        j->have_full = 1;
    }
    return IPC_STATUS_OK;
}

static void bounce_job_free(struct bounce_job *j)
{
    bounce_msg_free(&j->msg);
    bounce_rcpts_free(&j->all);
    strbuf_release(&j->headers);
    strbuf_release(&j->full);
    strbuf_release(&j->msgid);
}

/* A notice to postmaster that is not critical: failure is only logged. */
static void bounce_postmaster_copy(struct bounce_job *j, const char *to, const char *what,
                                   const char *dbl)
{
    struct strbuf id, why;
    int n;

    strbuf_init(&id, 32, 0);
    strbuf_init(&why, 128, 0);
    n = bounce_one(j, to, dbl, 1, 1, &id, &why);
    if (n > 0)
        msg_info("%s: postmaster %s notification: %s", j->qid, what, id.data);
    else if (n < 0)
        msg_warn("%s: postmaster notification failed: %s", j->qid, why.data);
    strbuf_release(&id);
    strbuf_release(&why);
}

int bounce_notify(enum bounce_kind kind, const char *queue_name, const char *qid,
                  struct strbuf *dsn_qid, struct strbuf *why)
{
    static const char *const what[] = {"non-delivery", "delay", "delivery status"};
    struct bounce_job j;
    struct strbuf dbl;
    int status, n;

    memset(&j, 0, sizeof(j));
    j.kind = kind;
    j.qid = qid;
    strbuf_init(&j.headers, 4096, 0);
    strbuf_init(&j.full, 4096, 0);
    strbuf_init(&j.msgid, 64, BOUNCE_MSGID_MAX);
    strbuf_init(&dbl, 64, 0);
    strbuf_reset(dsn_qid);
    bounce_double_bounce_addr(&dbl);
    if ((status = bounce_job_load(&j, queue_name, why)) != IPC_STATUS_OK
        || j.all.count == 0)
        goto out;

    if (strcasecmp(j.msg.sender, dbl.data) == 0) {
        /* A notice to postmaster failed: never a third notice. */
        if (kind == BOUNCE_FAILED)
            msg_warn("%s: undeliverable postmaster notification discarded", qid);
    } else if (*j.msg.sender == '\0') {
        /* A notification failed (or is delayed): never anything to <>. */
        if (kind == BOUNCE_SUCCESS) {
            /* Nobody asked: a notification carries no NOTIFY=SUCCESS. */
        } else if (!bounce_notify_class("2bounce") && !bounce_notify_class("bounce")) {
            if (kind == BOUNCE_FAILED)
                msg_info("%s: undeliverable notification discarded "
                         "(notify_classes has neither 2bounce nor bounce)", qid);
        } else {
            n = bounce_one(&j, var_2bounce_notice_recipient, dbl.data, 1,
                           kind == BOUNCE_DELAYED, dsn_qid, why);
            if (n < 0) {
                msg_warn("%s: postmaster notification failed: %s", qid, why->data);
                status = IPC_STATUS_DEFER;
            } else if (n > 0)
                msg_info("%s: postmaster %s notification: %s", qid, what[kind], dsn_qid->data);
        }
    } else {
        /* RET=HDRS, or a delay warning: the headers; otherwise the message. */
        int headers_only = kind == BOUNCE_DELAYED || strcasecmp(j.msg.ret, "HDRS") == 0;

        n = bounce_one(&j, j.msg.sender, "", 0, headers_only, dsn_qid, why);
        if (n < 0) {
            msg_warn("%s: sender notification failed to %s: %s", qid, j.msg.sender, why->data);
            status = IPC_STATUS_DEFER;
            goto out;
        }
        if (n > 0)
            msg_info("%s: sender %s notification: %s", qid, what[kind], dsn_qid->data);
        if (kind == BOUNCE_FAILED && bounce_notify_class("bounce"))
            bounce_postmaster_copy(&j, var_bounce_notice_recipient, what[kind], dbl.data);
        else if (kind == BOUNCE_DELAYED && bounce_notify_class("delay"))
            bounce_postmaster_copy(&j, var_delay_notice_recipient, what[kind], dbl.data);
    }
out:
    if (status != IPC_STATUS_OK)
        strbuf_reset(dsn_qid);
    bounce_job_free(&j);
    strbuf_release(&dbl);
    return status;
}
