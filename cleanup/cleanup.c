/*
 * cleanup.c - the cleanup daemon: turns what smtpd and pickup send into a
 * durable queue file in incoming/ (or hold/), then pokes qmgr.
 *
 * SUMMARY
 *	A SINGLE-mode worker on the daemon skeleton: one client connection per
 *	process, message after message over it (the protocol is in docs/ipc.md,
 *	"cleanup"). "open" creates the queue file and answers its queue ID;
 *	"batch" frames carry envelope and content and get no answer; "finish"
 *	processes the rest, commits the file (END record, fsync of file and
 *	directory) and only then answers OK; "abort" removes the file.
 *	Content processing is in cleanup_message.c, addresses in cleanup_addr.c.
 *
 * PARAMETERS
 *	queue_minfree, hash_queue_depth, hash_queue_names, ipc_timeout,
 *	myhostname, message_size_limit, and those of cleanup_addr.c and
 *	cleanup_message.c (header_checks, body_checks, body_checks_size_limit,
 *	header_size_limit, header_address_token_limit, hopcount_limit,
 *	always_add_missing_headers, undisclosed_recipients_header,
 *	smtpd_untrusted_strip_headers, canonical_maps, sender_canonical_maps,
 *	recipient_canonical_maps, canonical_classes, virtual_alias_maps,
 *	virtual_alias_recursion_limit, virtual_alias_expansion_limit,
 *	propagate_unmatched_extensions, always_bcc, sender_bcc_maps,
 *	recipient_bcc_maps, enable_original_recipient, recipient_delimiter).
 *
 * NEVER
 *	Never answers OK before the file and its directory are fsynced; never
 *	leaves a partial file behind after an error (qfile_abort); never trusts
 *	the client: every frame is bounded and checked, a malformed one ends
 *	the connection and removes the message in progress.
 *
 * DIAGNOSTICS
 *	Write errors answer "451 4.3.0 Error: queue file write error", a full
 *	disk or queue_minfree "452 4.3.1 Insufficient system storage"; content
 *	decisions are logged as Postfix does ("QUEUEID: reject: header ...").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* struct ucred */
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "cleanup.h"
#include "cleanup_client.h"
#include "ipc.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qid.h"
#include "queue_path.h"
#include "safe_file.h"
#include "server.h"
#include "stats.h"
#include "status_log.h"

#define CLEANUP_MAX_FRAME    (256 * 1024)       /* client batches are about 64 KiB */
#define CLEANUP_MAX_ATTRS    8192
#define CLEANUP_ATTR_VALUE_MAX 4096
#define CLEANUP_NOSPACE      "452 4.3.1 Insufficient system storage"
#define CLEANUP_WRITE_FAIL   "451 4.3.0 Error: queue file write error"
#define CLEANUP_PROTO_FAIL   "451 4.3.0 Error: internal protocol error"

/* --- Errors and logging ---------------------------------------------------- */

void cleanup_error(struct cleanup_state *st, int stat, const char *reply)
{
    /* Returning a rejected message: what rejected it must not stop its return. */
    if ((st->flags & CLEANUP_FLAG_BOUNCE) && (stat & (CLEANUP_STAT_CONT | CLEANUP_STAT_HOPS)))
        return;
    if (st->errs == 0)
        strbuf_set(&st->reason, reply);
    st->errs |= stat;
}

void cleanup_write_error(struct cleanup_state *st, int err)
{
    if (st->errs == 0)
        msg_warn("%s: queue file write error: %s", st->qid, strerror(err));
    if (err == ENOSPC || err == EDQUOT)
        cleanup_error(st, CLEANUP_STAT_NOSPACE, CLEANUP_NOSPACE);
    else
        cleanup_error(st, CLEANUP_STAT_WRITE, CLEANUP_WRITE_FAIL);
}

/*
 * A reply of several CRLF-separated lines ("550-5.7.1 a\r\n550 5.7.1 b") as
 * one line for logs and bounce text: "550 5.7.1 a b" (the code and status
 * of each later line are dropped).
 */
void cleanup_one_line(const char *v, struct strbuf *out)
{
    const char *p;

    strbuf_reset(out);
    for (p = v; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n' && isdigit((unsigned char) p[2])
            && isdigit((unsigned char) p[3]) && isdigit((unsigned char) p[4])
            && (p[5] == '-' || p[5] == ' ')) {
            const char *dsn = p + 6;
            size_t n = strspn(dsn, "0123456789.");

            strbuf_putc(out, ' ');
            p += 5;
            if (n >= 5 && dsn[n] == ' ' && (dsn[0] == '4' || dsn[0] == '5') && dsn[1] == '.')
                p += n + 1;
            continue;
        }
        strbuf_putc(out, *p == '\r' || *p == '\n' ? ' ' : *p);
    }
    if (out->len > 3 && isdigit((unsigned char) out->data[0]) && out->data[3] == '-')
        out->data[3] = ' ';
}

/* "QUEUEID: reject: header Subject: x from host[addr]; from=<s> to=<r> proto=P helo=<h>: text" */
void cleanup_log_action(struct cleanup_state *st, const char *action, const char *class,
                        const char *content, size_t len, const char *text)
{
    struct strbuf line;

    strbuf_init(&line, 256, 0);
    strbuf_printf(&line, "%s: %s: %s %.*s from %s; from=<%s>", st->qid, action, class,
                  (int) (len > 200 ? 200 : len), content, st->client.data, st->sender.data);
    if (st->first_rcpt.len > 0)
        strbuf_printf(&line, " to=<%s>", st->first_rcpt.data);
    if (st->proto.len > 0)
        strbuf_printf(&line, " proto=%s", st->proto.data);
    if (st->helo.len > 0)
        strbuf_printf(&line, " helo=<%s>", st->helo.data);
    if (text && *text)
        strbuf_printf(&line, ": %s", text);
    msg_info("%s", line.data);
    strbuf_release(&line);
}

/* --- Queue ----------------------------------------------------------------- */

/* Free bytes for unprivileged users on the queue file system, or -1. */
static long long cleanup_free_space(void)
{
    struct statvfs fs;

    if (statvfs(".", &fs) < 0)
        return -1;
    return (long long) fs.f_bavail * (long long) fs.f_frsize;
}

/* queue_minfree, plus room for the announced size (Postfix: 1.5 x size). */
static int cleanup_space_ok(long long size)
{
    long long avail = cleanup_free_space();

    if (avail < 0)
        return 1;                       /* cannot tell: the write will show */
    if (var_queue_minfree > 0 && avail < var_queue_minfree)
        return 0;
    return size <= 0 || avail - var_queue_minfree >= size + size / 2;
}

static void cleanup_trigger_qmgr(void)
{
    struct stat sb;
    char req = SERVER_TRIGGER_WAKEUP;

    /* qmgr may not run (or exist) yet: the file waits in incoming/ for it. */
    if (stat("public/qmgr", &sb) == 0)
        (void) server_trigger_send("public/qmgr", S_ISFIFO(sb.st_mode), &req, 1);
}

/* --- Per-message state ----------------------------------------------------- */

static void cleanup_state_init(struct cleanup_state *st)
{
    memset(st, 0, sizeof(*st));
    strbuf_init(&st->reason, 128, 8192);
    strbuf_init(&st->sender, 64, 0);
    strbuf_init(&st->first_rcpt, 64, 0);
    strbuf_init(&st->full_name, 64, CLEANUP_ATTR_VALUE_MAX);
    strbuf_init(&st->bounce_reason, 64, CLEANUP_ATTR_VALUE_MAX);
    strbuf_init(&st->client, 64, 2 * CLEANUP_ATTR_VALUE_MAX + 8);
    strbuf_init(&st->client_name, 64, CLEANUP_ATTR_VALUE_MAX);
    strbuf_init(&st->client_addr, 64, CLEANUP_ATTR_VALUE_MAX);
    strbuf_init(&st->proto, 16, 256);
    strbuf_init(&st->helo, 64, 1024);
    strbuf_init(&st->tmp, 256, 0);
}

/* Removes an uncommitted queue file, and the bounce records a returned
 * submission (CLEANUP_FLAG_BOUNCE) wrote for it. */
static void cleanup_abort_file(struct cleanup_state *st)
{
    if (st->bounce_logged && st->qid)
        (void) status_log_remove(AT_FDCWD, STATUS_LOG_BOUNCE, st->qid,
                                 queue_path_depth(STATUS_LOG_BOUNCE), NULL);
    st->bounce_logged = 0;
    qfile_abort(&st->w);
}

/* Ends a message: frees its parts, removes the file unless committed and freed. */
static void cleanup_state_reset(struct cleanup_state *st)
{
    size_t i;

    if (st->w)
        cleanup_abort_file(st);
    st->qid = NULL;
    for (i = 0; i < st->nlate; i++)
        free(st->late[i].addr);
    free(st->late);
    st->late = NULL;
    st->nlate = st->late_cap = 0;
    htable_free(&st->dups, NULL);
    cleanup_message_free(st);
}

static void cleanup_state_free(struct cleanup_state *st)
{
    cleanup_state_reset(st);
    header_parser_free(&st->hp);
    strbuf_release(&st->line);
    strbuf_release(&st->reason);
    strbuf_release(&st->sender);
    strbuf_release(&st->first_rcpt);
    strbuf_release(&st->full_name);
    strbuf_release(&st->bounce_reason);
    strbuf_release(&st->client);
    strbuf_release(&st->client_name);
    strbuf_release(&st->client_addr);
    strbuf_release(&st->proto);
    strbuf_release(&st->helo);
    strbuf_release(&st->tmp);
}

/* Starts a message, arriving now or (a requeue) at arrival; 0, or -1 with
 * the reply in why. */
static int cleanup_msg_open(struct cleanup_state *st, int flags, const struct timeval *arrival,
                            struct strbuf *why)
{
    struct header_parser *hp = st->hp;
    struct strbuf line = st->line, reason = st->reason, sender = st->sender,
        first = st->first_rcpt, full = st->full_name, client = st->client,
        cname = st->client_name, caddr = st->client_addr, proto = st->proto, helo = st->helo,
        tmp = st->tmp, bounce = st->bounce_reason;
    char tbuf[64];

    /* Keep the buffers, clear everything else. */
    memset(st, 0, sizeof(*st));
    st->hp = hp;
    st->line = line;
    st->reason = reason;
    st->sender = sender;
    st->first_rcpt = first;
    st->full_name = full;
    st->bounce_reason = bounce;
    st->client = client;
    st->client_name = cname;
    st->client_addr = caddr;
    st->proto = proto;
    st->helo = helo;
    st->tmp = tmp;
    strbuf_reset(&st->reason);
    strbuf_reset(&st->sender);
    strbuf_reset(&st->first_rcpt);
    strbuf_reset(&st->full_name);
    strbuf_reset(&st->bounce_reason);
    st->bounce_logged = 0;
    strbuf_set(&st->client, "local");
    strbuf_reset(&st->client_name);
    strbuf_reset(&st->client_addr);
    strbuf_reset(&st->proto);
    strbuf_reset(&st->helo);
    if (!cleanup_space_ok(0)) {
        msg_warn("not enough free space in queue file system (queue_minfree %lld)",
                 var_queue_minfree);
        strbuf_set(why, CLEANUP_NOSPACE);
        return -1;
    }
    if ((st->w = qfile_create(AT_FDCWD, "incoming", queue_path_depth("incoming"),
                              why)) == NULL) {
        int err = errno;

        msg_warn("create queue file: %s", why->data);
        strbuf_set(why, err == ENOSPC || err == EDQUOT ? CLEANUP_NOSPACE : CLEANUP_WRITE_FAIL);
        return -1;
    }
    st->qid = qfile_writer_id(st->w);
    st->flags = flags;
    st->local_context = (flags & CLEANUP_FLAG_LOCAL_SUBMIT) != 0;
    st->dups = htable_new(16);
    if (arrival)
        st->arrival = *arrival;
    else
        gettimeofday(&st->arrival, NULL);
    snprintf(tbuf, sizeof(tbuf), "%lld.%06ld", (long long) st->arrival.tv_sec,
             (long) st->arrival.tv_usec);
    if (qfile_put_str(st->w, QREC_TIME, tbuf) < 0)
        cleanup_write_error(st, errno);
    cleanup_message_begin(st);
    return 0;
}

/* --- The protocol ---------------------------------------------------------- */

static int cleanup_attr_name_ok(const char *name, size_t len)
{
    size_t i;

    if (len == 0 || len > ATTR_NAME_MAX)
        return 0;
    for (i = 0; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')
              || name[i] == '_'))
            return 0;
    return 1;
}

/* One envelope attribute "name=value"; -1 when malformed (a client bug). */
static int cleanup_envelope_attr(struct cleanup_state *st, const char *pair, size_t len)
{
    const char *eq = memchr(pair, '=', len), *value;
    size_t nlen;

    if (eq == NULL || !cleanup_attr_name_ok(pair, (size_t) (eq - pair))
        || len - (size_t) (eq - pair) - 1 > CLEANUP_ATTR_VALUE_MAX)
        return -1;
    nlen = (size_t) (eq - pair);
    value = eq + 1;
#define NAME_IS(s) (nlen == sizeof(s) - 1 && strncmp(pair, (s), nlen) == 0)
    if (NAME_IS("bounce_reason")) {
        if (!(st->flags & CLEANUP_FLAG_BOUNCE) || value[0] != '5')
            return -1;
        strbuf_set(&st->bounce_reason, value);
        return 0;                       /* a processing instruction, not stored */
    }
    if (NAME_IS("strip_untrusted")) {
        st->strip_untrusted = strcmp(value, "1") == 0 || strcmp(value, "yes") == 0;
        return 0;                       /* a processing instruction, not stored */
    }
    if (NAME_IS("size")) {
        char *end;

        st->announced_size = strtoll(value, &end, 10);
        if (*end != 0 || st->announced_size < 0)
            return -1;
        if (!st->errs && !cleanup_space_ok(st->announced_size)) {
            msg_warn("%s: not enough free space for a message of %lld bytes", st->qid,
                     st->announced_size);
            cleanup_error(st, CLEANUP_STAT_NOSPACE, CLEANUP_NOSPACE);
        }
        return 0;
    }
    if (NAME_IS("full_name"))
        strbuf_set(&st->full_name, value);
    else if (NAME_IS("client_name") || NAME_IS("client_address")) {
        strbuf_set(NAME_IS("client_name") ? &st->client_name : &st->client_addr, value);
        strbuf_reset(&st->client);
        strbuf_printf(&st->client, "%s[%s]", st->client_name.len ? st->client_name.data
                      : "unknown", st->client_addr.data);
    } else if (NAME_IS("protocol"))
        strbuf_set(&st->proto, value);
    else if (NAME_IS("helo_name"))
        strbuf_set(&st->helo, value);
    else if (NAME_IS("rewrite_context"))
        st->local_context |= strcmp(value, "local") == 0;
#undef NAME_IS
    if (!st->errs && qfile_put(st->w, QREC_ATTR, pair, len) < 0)
        cleanup_write_error(st, errno);
    return 0;
}

/* Whether the peer is the mail system itself: root, or our own mail_owner
 * (the queue tools drop to it). Only they may set a message's arrival time. */
static int cleanup_peer_trusted(int fd, uid_t *uid)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    *uid = (uid_t) -1;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
        return 0;
    *uid = cred.uid;
    return cred.uid == 0 || cred.uid == geteuid();
}

/* The optional "arrival_time" of an open request ("SECONDS.MICROSECONDS", the
 * T record's form): 1 with tv set, 0 when absent or not honoured (untrusted
 * peer, or a time in the future: the message then arrives now, with a
 * warning), -1 when malformed (a client bug). */
static int cleanup_open_arrival(struct attr_msg *in, int trusted, uid_t uid,
                                struct timeval *tv)
{
    const char *value, *p;
    char *end;
    long long sec;
    long usec = 0;
    int r;

    if ((r = attr_opt_str(in, "arrival_time", &value, NULL)) <= 0)
        return r;
    if (value[0] < '0' || value[0] > '9')
        return -1;
    errno = 0;
    sec = strtoll(value, &end, 10);
    if (errno || sec <= 0)
        return -1;
    if (*end == '.') {
        p = end + 1;
        if (*p < '0' || *p > '9' || strlen(p) > 6)
            return -1;
        usec = strtol(p, &end, 10);
    }
    if (*end != 0)
        return -1;
    if (!trusted) {
        msg_warn("arrival_time from an untrusted client (uid %ld) ignored", (long) uid);
        return 0;
    }
    if (sec > (long long) time(NULL) + 60) {
        msg_warn("arrival_time %s is in the future: ignored", value);
        return 0;
    }
    tv->tv_sec = (time_t) sec;
    tv->tv_usec = usec;
    return 1;
}

/* Envelope and content of one batch or finish frame; -1 on a protocol error. */
static int cleanup_batch(struct cleanup_state *st, struct attr_msg *m)
{
    struct attr_iter it, it_o, it_n;
    const char *s, *o, *sender;
    const void *data;
    size_t len;
    uint32_t notify, add_flags = 0;
    ssize_t n, n_o, n_n;
    int r;

    if ((n = attr_iter_init(&it, m, "attr")) < 0)
        return -1;
    while ((r = attr_iter_str(&it, &s, &len)) == 1)
        if (cleanup_envelope_attr(st, s, len) < 0)
            return -1;
    if (r < 0)
        return -1;
    if ((r = attr_opt_str(m, "sender", &sender, NULL)) < 0)
        return -1;
    if (r == 1) {
        if (st->have_sender || st->content_begun)
            return -1;
        if (!cleanup_milter_sender(st, sender))
            cleanup_addr_sender(st, sender);
    }
    n = attr_iter_init(&it, m, "rcpt");
    n_o = attr_iter_init(&it_o, m, "orig_rcpt");
    n_n = attr_iter_init(&it_n, m, "dsn_notify");
    if (n < 0 || n != n_o || n != n_n)
        return -1;
    if (n > 0 && st->content_begun)
        return -1;                      /* envelope after content */
    while ((r = attr_iter_str(&it, &s, NULL)) == 1) {
        if (attr_iter_str(&it_o, &o, NULL) != 1 || attr_iter_u32(&it_n, &notify) != 1)
            return -1;
        if (!cleanup_milter_rcpt(st, s, o, (int) (notify & 0xf)))
            cleanup_addr_recipient(st, s, o, (int) (notify & 0xf));
    }
    if (r < 0 || attr_iter_init(&it, m, "data") < 0)
        return -1;
    while ((r = attr_iter_data(&it, &data, &len)) == 1)
        cleanup_message_data(st, data, len);
    if (r < 0 || attr_opt_u32(m, "add_flags", &add_flags) < 0)
        return -1;
    st->flags |= (int) (add_flags & (CLEANUP_FLAG_HOLD | CLEANUP_FLAG_DISCARD));
    return cleanup_milter_import(st, m);
}

static int cleanup_reply(int fd, struct attr_msg *out, uint32_t status, const char *reason,
                         const char *qid, int held, int discarded)
{
    struct strbuf line;
    int several = reason && strpbrk(reason, "\r\n") != NULL;

    attr_msg_reset(out);
    /* "reason" is one line (attribute strings carry no CR/LF); a reply of
     * several lines goes whole in "reply_lines" too, for the SMTP client. */
    strbuf_init(&line, 128, 8192);
    if (several)
        cleanup_one_line(reason, &line);
    if (attr_put_u32(out, "status", status) < 0
        || (reason && attr_put_str(out, "reason", several ? line.data : reason) < 0)
        || (several && attr_put_data(out, "reply_lines", reason, strlen(reason)) < 0)
        || (qid && attr_put_str(out, "queue_id", qid) < 0)
        || (held && attr_put_u32(out, "held", 1) < 0)
        || (discarded && attr_put_u32(out, "discarded", 1) < 0)
        || cleanup_milter_reply(out) < 0)
        msg_panic("cleanup_reply: cannot build a reply");
    strbuf_release(&line);
    return ipc_send(fd, out, (int) (var_ipc_timeout * 1000 > 0x7fffffff ? 0x7fffffff
                                                                            : var_ipc_timeout * 1000));
}

/* The end of a message: commit or remove, then the verdict. */
static int cleanup_msg_finish(struct cleanup_state *st, int fd, struct attr_msg *out)
{
    struct strbuf why;
    unsigned qflags = 0;
    int held = 0, discarded = 0, r;

    cleanup_message_end(st);
    if (!st->errs && !st->have_sender)
        cleanup_error(st, CLEANUP_STAT_BAD, CLEANUP_PROTO_FAIL);
    if (!st->errs)
        cleanup_addr_finish(st);
    if (!st->errs && st->nrcpt == 0 && !(st->flags & CLEANUP_FLAG_DISCARD))
        cleanup_error(st, CLEANUP_STAT_RCPT, "550 5.1.0 Error: no recipients specified");
    if (st->errs) {
        cleanup_abort_file(st);
        if (st->reason.data[0] == '5')
            stats_count(STATS_MESSAGES_REJECTED, 1);
        r = cleanup_reply(fd, out, st->reason.data[0] == '5' ? IPC_STATUS_REJECT
                          : IPC_STATUS_DEFER, st->reason.data, NULL, 0, 0);
        cleanup_state_reset(st);
        return r;
    }
    if (st->flags & CLEANUP_FLAG_DISCARD) {
        cleanup_abort_file(st);
        discarded = 1;
    } else {
        if ((st->flags & CLEANUP_FLAG_8BITMIME) || st->eight_bit)
            qflags |= QFILE_FLAG_8BIT;
        if (st->flags & CLEANUP_FLAG_SMTPUTF8)
            qflags |= QFILE_FLAG_SMTPUTF8;
        if (st->flags & CLEANUP_FLAG_BINARYMIME)
            qflags |= QFILE_FLAG_BINARYMIME;
        strbuf_init(&why, 128, 1024);
        /* A held message becomes complete only in hold/: qmgr never sees it. */
        if ((st->flags & CLEANUP_FLAG_HOLD)
            && qfile_move(st->w, "hold", queue_path_depth("hold"), &why) == 0)
            held = 1;
        else if (st->flags & CLEANUP_FLAG_HOLD)
            msg_warn("%s: %s; the message stays in the incoming queue", st->qid, why.data);
        if (qfile_commit(st->w, qflags, &why) < 0) {
            int err = errno;

            msg_warn("%s: %s", st->qid, why.data);
            strbuf_release(&why);
            cleanup_abort_file(st);
            r = cleanup_reply(fd, out, IPC_STATUS_DEFER, err == ENOSPC || err == EDQUOT
                              ? CLEANUP_NOSPACE : CLEANUP_WRITE_FAIL, NULL, 0, 0);
            cleanup_state_reset(st);
            return r;
        }
        strbuf_release(&why);
        if (held)
            msg_info("%s: hold: message held from %s; from=<%s>", st->qid,
                     st->client.data, st->sender.data);
        qfile_writer_free(&st->w);
        if (!held)
            cleanup_trigger_qmgr();
    }
    stats_count(discarded ? STATS_MESSAGES_DISCARDED : STATS_MESSAGES_RECEIVED, 1);
    if (!discarded) {
        stats_count(STATS_RECIPIENTS_ACCEPTED, (uint64_t) st->nrcpt);
        stats_count(STATS_BYTES_RECEIVED, st->content_len);
    }
    if (held)
        stats_count(STATS_MESSAGES_HELD, 1);
    r = cleanup_reply(fd, out, IPC_STATUS_OK, NULL, NULL, held, discarded);
    cleanup_state_reset(st);
    return r;
}

static void cleanup_service(int fd, const struct server_ctx *ctx)
{
    static const struct attr_limits limits = {CLEANUP_MAX_FRAME, CLEANUP_MAX_ATTRS, 0};
    struct attr_msg *in = attr_msg_new(), *out = attr_msg_new();
    struct cleanup_state st;
    struct strbuf why;
    int timeout = (int) (var_ipc_timeout * 1000 > 0x7fffffff ? 0x7fffffff
                         : var_ipc_timeout * 1000);
    int open = 0, trusted, at;
    uid_t peer_uid;
    struct timeval arrival;

    trusted = cleanup_peer_trusted(fd, &peer_uid);
    attr_msg_set_limits(in, &limits);
    cleanup_state_init(&st);
    strbuf_init(&why, 128, 1024);
    for (;;) {
        const char *req;
        uint32_t flags;

        if (ipc_recv(fd, in, 0, timeout) < 0) {
            if (errno != EPIPE)
                msg_warn("cleanup client: receive: %s%s%s", strerror(errno),
                         errno == EPROTO ? ": " : "", errno == EPROTO ? attr_msg_reason(in) : "");
            break;
        }
        if (attr_get_str(in, "request", &req, NULL) < 0)
            goto bad;
        if (strcmp(req, "open") == 0) {
            if (open || attr_get_u32(in, "flags", &flags) < 0
                || (at = cleanup_open_arrival(in, trusted, peer_uid, &arrival)) < 0
                || attr_check_consumed(in) < 0)
                goto bad;
            strbuf_reset(&why);
            if (cleanup_msg_open(&st, (int) flags, at ? &arrival : NULL, &why) < 0) {
                if (cleanup_reply(fd, out, IPC_STATUS_DEFER, why.data, NULL, 0, 0) < 0)
                    break;
                continue;
            }
            open = 1;
            if (cleanup_reply(fd, out, IPC_STATUS_OK, NULL, st.qid, 0, 0) < 0)
                break;
        } else if (strcmp(req, "batch") == 0 || strcmp(req, "finish") == 0) {
            if (!open || cleanup_batch(&st, in) < 0 || attr_check_consumed(in) < 0)
                goto bad;
            if (req[0] == 'f') {
                open = 0;
                if (cleanup_msg_finish(&st, fd, out) < 0)
                    break;
            }
        } else if (strcmp(req, "abort") == 0) {
            if (!open)
                goto bad;
            open = 0;
            cleanup_state_reset(&st);
        } else {
            goto bad;
        }
        continue;
bad:
        msg_warn("cleanup client: protocol error%s%s -- connection closed",
                 errno == EPROTO ? ": " : "", errno == EPROTO ? attr_msg_reason(in) : "");
        break;
    }
    /* A message still open is lost with its client: nobody heard "250". */
    cleanup_state_free(&st);
    strbuf_release(&why);
    attr_msg_free(&in);
    attr_msg_free(&out);
}

static void cleanup_post_init(const struct server_ctx *ctx)
{
    cleanup_addr_init();
    cleanup_message_init();
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_SINGLE,
        .post_init = cleanup_post_init,
        .service = cleanup_service,
    };

    server_main(argc, argv, &ops);
}
