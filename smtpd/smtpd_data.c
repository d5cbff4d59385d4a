/*
 * smtpd_data.c - message content: DATA (dot-stuffed lines up to CRLF.CRLF) and
 * BDAT chunks (RFC 3030), the Received: header, size limits, and the end of the
 * message with the verdicts of the restrictions and of cleanup.
 * Only CRLF "." CRLF ends DATA: a bare LF or bare CR never does, whatever
 * smtpd_forbid_bare_newline says, so no payload can smuggle a second message
 * (CVE-2023-51764). Content reaches the sink with LF line ends. Reads run under
 * smtpd_timeout plus an earned deadline (smtpd_min_data_rate). An oversized or
 * rejected message is read to its end and dropped; the reply comes after that.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "smtpd.h"
#include "stats.h"
#include "stream.h"

#define SMTPD_DATA_PIECE    8192        /* content line pieces */
#define SMTPD_BDAT_PIECE    65536

/* --- the sink, with size accounting ---------------------------------------- */

static int smtpd_too_big(const struct smtpd_session *s)
{
    return var_message_size_limit > 0 && s->act_size > var_message_size_limit;
}

/* Content bytes go on only while the message can still be accepted. */
static void smtpd_content(struct smtpd_session *s, const void *data, size_t len)
{
    s->act_size += (long long) len;
    if (len == 0 || s->sink == NULL || s->sink_error || smtpd_too_big(s))
        return;
    if (smtpd_sink_write(s, data, len) < 0)
        s->sink_error = 1;
    else
        s->last_lf = ((const char *) data)[len - 1] == '\n';
}

/* RFC 5322 date, as Postfix's mail_date(): "Tue, 02 Jan 2024 10:00:00 +0100 (CET)". */
static void smtpd_date(char *buf, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;

    localtime_r(&now, &tm);
    if (strftime(buf, size, "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm) == 0)
        snprintf(buf, size, "Thu, 01 Jan 1970 00:00:00 +0000 (UTC)");
}

/* "(Authenticated sender: NAME)" with NAME made safe inside a comment:
 * parentheses, backslashes and control characters would end or break it. */
static void smtpd_auth_comment(struct strbuf *h, const char *name)
{
    const char *p;

    (void) strbuf_puts(h, "\t(Authenticated sender: ");
    for (p = name; *p && p - name < 256; p++) {
        unsigned char c = (unsigned char) *p;

        (void) strbuf_putc(h, c < 0x20 || c == 0x7f || c == '(' || c == ')' || c == '\\'
                           ? '?' : c);
    }
    (void) strbuf_puts(h, ")\n");
}

/* PREPEND lines from the restrictions, then our Received: header. */
static void smtpd_data_headers(struct smtpd_session *s)
{
    struct strbuf h, rcpt;
    char date[64];
    const char *qid = smtpd_sink_queue_id(s);

    strbuf_init(&h, 512, 64 * 1024);
    strbuf_init(&rcpt, 64, 2 * ADDRESS_MAX_PATH);
    if (s->prepend.len > 0) {
        (void) strbuf_append(&h, s->prepend.data, s->prepend.len);
        if (h.data[h.len - 1] != '\n')
            (void) strbuf_putc(&h, '\n');
    }
    smtpd_date(date, sizeof(date));
    (void) strbuf_printf(&h, "Received: from %s (%s [%s%s])\n",
                         s->helo_name ? s->helo_name : s->name, s->name,
                         strchr(s->addr, ':') ? "IPv6:" : "", s->addr);
    smtpd_tls_received(s, &h);
    if (var_smtpd_sasl_authenticated_header && s->sasl_username)
        smtpd_auth_comment(&h, s->sasl_username);
    if (s->standalone)
        (void) strbuf_printf(&h, "\tby %s (%s, from userid %ld) with %s",
                             var_myhostname, var_mail_name, (long) getuid(), s->protocol);
    else
        (void) strbuf_printf(&h, "\tby %s (%s) with %s", var_myhostname, var_mail_name,
                             smtpd_received_protocol(s));
    if (qid && *qid)
        (void) strbuf_printf(&h, " id %s", qid);
    if (s->rcpt_count == 1 && s->first_rcpt) {
        address_quote(s->first_rcpt, &rcpt);
        (void) strbuf_printf(&h, "\n\tfor <%s>; %s\n", rcpt.data, date);
    } else {
        (void) strbuf_printf(&h, "; %s\n", date);
    }
    /* The header counts toward the size like Postfix's does. */
    smtpd_content(s, h.data, h.len);
    strbuf_release(&h);
    strbuf_release(&rcpt);
}

/* --- the end of a message -------------------------------------------------- */

/* Decides and answers; 0 when the message was queued. */
static int smtpd_message_end(struct smtpd_session *s, int bdat)
{
    struct strbuf qid, reply;
    int ret = -1;

    s->where = "END-OF-MESSAGE";
    strbuf_init(&qid, 32, 256);
    strbuf_init(&reply, 128, 8192);        /* a milter reply may have many lines */
    if (smtpd_too_big(s)) {
        smtpd_reply(s, "552 5.3.4 Message size exceeds fixed limit");
    } else if (var_message_total_size_limit > 0 && s->rcpt_count > 0
               && s->act_size > var_message_total_size_limit / s->rcpt_count) {
        smtpd_reply(s, "552 5.3.4 Error: message size times recipients exceeds "
                    "total size limit");
    } else if (s->sink == NULL || s->sink_error) {
        msg_warn("%s: queue file write error", s->sink ? smtpd_sink_queue_id(s) : "NOQUEUE");
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
    } else if ((s->check.message_size = s->act_size),
               smtpd_session_check(s, SMTPD_CHECK_END_OF_DATA) != 0) {
        /* the restriction's reply has been sent */
    } else {
        if (!s->last_lf)
            smtpd_content(s, "\n", 1);
        if (s->check.discard) {
            /* DISCARD after the file was opened: accept and throw away. */
            (void) strbuf_puts(&qid, smtpd_sink_queue_id(s));
            smtpd_sink_abort(s);
            ret = 0;
        } else if (smtpd_sink_finish(s, &qid, &reply) == 0) {
            ret = 0;
        } else {
            smtpd_reply_text(s, reply.data);
        }
        if (ret == 0) {
            /* A delivered message forgives earlier errors (Postfix). */
            s->error_count = 0;
            s->junk_cmds = 0;
            if (!s->standalone)
                stats_count(STATS_MESSAGES_RECEIVED, 1);
            if (bdat)
                smtpd_reply(s, "250 2.0.0 Ok: %lld bytes queued as %s", s->act_size, qid.data);
            else
                smtpd_reply(s, "250 2.0.0 Ok: queued as %s", qid.data);
        }
    }
    strbuf_release(&qid);
    strbuf_release(&reply);
    smtpd_transaction_reset(s);
    return ret;
}

/* --- DATA ------------------------------------------------------------------ */

int smtpd_data_receive(struct smtpd_session *s)
{
    enum stream_eol eol;
    const char *line;
    ssize_t n;
    int at_bol = 1;                     /* the next piece starts a line */
    int after_crlf = 1;                 /* ... and the line before ended in CRLF */
    int bare = 0;                       /* 'L' or 'C': a bare LF/CR, in reject mode */
    int ret;

    smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    if (stream_flush(s->client) < 0) {
        smtpd_session_lost(s);
        return -1;
    }
    s->where = "DATA";
    s->sink_error = 0;
    smtpd_data_headers(s);
    stream_set_deadline(s->client, (int) (var_smtpd_timeout * 1000),
                        (int) var_smtpd_min_data_rate);
    for (;;) {
        n = stream_read_line(s->client, &line, SMTPD_DATA_PIECE, &eol);
        if (n < 0 || eol == STREAM_EOL_NONE) {
            stream_clear_deadline(s->client);
            smtpd_session_lost(s);
            smtpd_transaction_reset(s);
            return -1;
        }
        /* The one end of data: "." alone on a line, CRLF before and after. */
        if (at_bol && after_crlf && eol == STREAM_EOL_CRLF && n == 1 && line[0] == '.')
            break;
        if (at_bol && after_crlf && n > 0 && line[0] == '.') {
            line++;                     /* RFC 5321 section 4.5.2 */
            n--;
        }
        if (bare == 0)
            smtpd_content(s, line, (size_t) n);
        switch (eol) {
        case STREAM_EOL_CRLF:
            if (bare == 0)
                smtpd_content(s, "\n", 1);
            at_bol = after_crlf = 1;
            break;
        case STREAM_EOL_LIMIT:
            at_bol = 0;
            break;
        case STREAM_EOL_LF:
            if (s->bare_mode == SMTPD_BARE_REJECT) {
                bare = bare ? bare : 'L';
            } else {
                smtpd_content(s, "\n", 1);
            }
            at_bol = 1;
            after_crlf = 0;
            break;
        case STREAM_EOL_CR:
        default:
            /* A bare CR is data in the middle of a line, never a line end. */
            if (s->bare_mode == SMTPD_BARE_REJECT)
                bare = bare ? bare : 'C';
            else
                smtpd_content(s, "\r", 1);
            at_bol = 0;
            after_crlf = 0;
            break;
        }
    }
    stream_clear_deadline(s->client);
    if (bare) {
        const char *what = bare == 'L' ? "LF" : "CR";

        s->where = "END-OF-MESSAGE";
        msg_info("%s: reject: bare <%s> received from %s",
                 s->sink ? smtpd_sink_queue_id(s) : "NOQUEUE", what, s->namaddr);
        smtpd_transaction_reset(s);
        smtpd_reply(s, "550 5.5.2 Error: bare <%s> received", what);
        s->hangup = 1;
        return -1;
    }
    ret = smtpd_message_end(s, 0);
    return ret;
}

/* --- BDAT ------------------------------------------------------------------ */

int smtpd_bdat_skip(struct smtpd_session *s, long long count)
{
    char buf[8192];

    while (count > 0) {
        size_t want = count > (long long) sizeof(buf) ? sizeof(buf) : (size_t) count;
        ssize_t n = stream_read(s->client, buf, want);

        if (n <= 0)
            return -1;
        count -= n;
        s->act_size += n;
    }
    return 0;
}

/* "BDAT count [LAST]": count is 1*DIGIT (RFC 3030 section 2). */
static int smtpd_bdat_args(const struct smtp_cmd *cmd, long long *count, int *last)
{
    size_t i = 0;
    long long v = 0;

    while (i < cmd->arg_len && cmd->arg[i] >= '0' && cmd->arg[i] <= '9') {
        if (v > (1LL << 50))
            return -1;
        v = v * 10 + (cmd->arg[i++] - '0');
    }
    if (i == 0)
        return -1;
    *count = v;
    *last = 0;
    if (i == cmd->arg_len)
        return 0;
    while (i < cmd->arg_len && (cmd->arg[i] == ' ' || cmd->arg[i] == '\t'))
        i++;
    if (cmd->arg_len - i == 4 && strncasecmp(cmd->arg + i, "LAST", 4) == 0) {
        *last = 1;
        return 0;
    }
    return -1;
}

/* Content of a chunk: CRLF becomes LF, also when a chunk ends between CR and LF. */
static void smtpd_bdat_content(struct smtpd_session *s, const char *p, size_t len)
{
    size_t i, start = 0;

    if (len == 0)
        return;
    if (s->bdat_cr) {
        s->bdat_cr = 0;
        if (p[0] != '\n')
            smtpd_content(s, "\r", 1);
    }
    for (i = 0; i < len; i++) {
        if (p[i] != '\r')
            continue;
        if (i + 1 == len) {
            smtpd_content(s, p + start, i - start);
            s->bdat_cr = 1;
            return;
        }
        if (p[i + 1] == '\n') {
            smtpd_content(s, p + start, i - start);
            start = i + 1;              /* the LF stays */
        }
    }
    smtpd_content(s, p + start, len - start);
}

/* Skips a chunk we will not use and answers; hangs up if it cannot be read. */
static int smtpd_bdat_refuse(struct smtpd_session *s, long long count, int last,
                             const char *reply)
{
    int rc;

    stream_set_deadline(s->client, (int) (var_smtpd_timeout * 1000),
                        (int) var_smtpd_min_data_rate);
    rc = smtpd_bdat_skip(s, count);
    stream_clear_deadline(s->client);
    if (rc < 0) {
        smtpd_session_lost(s);
        smtpd_transaction_reset(s);
        return -1;
    }
    if (reply)
        smtpd_reply(s, "%s", reply);
    if (last)
        smtpd_transaction_reset(s);
    return -1;
}

int smtpd_bdat_receive(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    static char *buf;
    long long count, left;
    int last;

    if (smtpd_bdat_args(cmd, &count, &last) < 0) {
        /* Without a byte count the rest of the input cannot be parsed. */
        smtpd_reply(s, "501 5.5.4 Syntax: BDAT count [LAST]");
        s->hangup = 1;
        return -1;
    }
    s->where = "BDAT";
    if (s->state != SMTPD_STATE_RCPT && s->state != SMTPD_STATE_BDAT) {
        return smtpd_bdat_refuse(s, count, 0, s->state == SMTPD_STATE_MAIL && s->rcpt_tried
                                 ? "554 5.5.1 Error: no valid recipients"
                                 : s->have_mail ? "503 5.5.1 Error: need RCPT command"
                                 : "503 5.5.1 Error: need MAIL command");
    }
    if (s->bdat_failed) {
        return smtpd_bdat_refuse(s, count, last, "554 5.5.1 Error: BDAT message "
                                 "already rejected");
    }
    if (!s->bdat_started) {
        s->bdat_started = 1;
        s->sink_error = 0;
        s->bdat_cr = 0;
        if (smtpd_session_check(s, SMTPD_CHECK_DATA) != 0 || smtpd_milter_data(s) != 0) {
            /* The reply is out; the chunk still has to be read. */
            s->bdat_failed = 1;
            smtpd_enter_state(s, SMTPD_STATE_BDAT);
            return smtpd_bdat_refuse(s, count, last, NULL);
        }
        smtpd_data_headers(s);
        smtpd_enter_state(s, SMTPD_STATE_BDAT);
    }
    if (buf == NULL)
        buf = xmalloc(SMTPD_BDAT_PIECE);
    stream_set_deadline(s->client, (int) (var_smtpd_timeout * 1000),
                        (int) var_smtpd_min_data_rate);
    for (left = count; left > 0;) {
        size_t want = left > SMTPD_BDAT_PIECE ? SMTPD_BDAT_PIECE : (size_t) left;
        ssize_t n = stream_read(s->client, buf, want);

        if (n <= 0) {
            stream_clear_deadline(s->client);
            smtpd_session_lost(s);
            smtpd_transaction_reset(s);
            return -1;
        }
        smtpd_bdat_content(s, buf, (size_t) n);
        left -= n;
    }
    stream_clear_deadline(s->client);
    if (smtpd_too_big(s) && !last) {
        /* RFC 3030 section 2: the message fails now; later chunks are skipped. */
        s->bdat_failed = 1;
        smtpd_reply(s, "552 5.3.4 Message size exceeds fixed limit");
        return -1;
    }
    if (!last) {
        smtpd_reply(s, "250 2.0.0 Ok: %lld bytes", count);
        return 0;
    }
    if (s->bdat_cr) {
        s->bdat_cr = 0;
        smtpd_content(s, "\r", 1);
    }
    return smtpd_message_end(s, 1);
}
