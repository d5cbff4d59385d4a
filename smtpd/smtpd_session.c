/*
 * smtpd_session.c - one SMTP session: greeting, the command loop with its
 * state machine, pipelining discipline, error counting and tarpit, timeouts,
 * and the Postfix-shaped connect/disconnect log lines.
 * Every read is bounded by smtpd_timeout and line_length_limit; an over-long
 * command is skipped, not stored. A bare LF or CR ends a command only as
 * smtpd_forbid_bare_newline allows. Every state change passes
 * smtpd_enter_state. Never answers 250 for a message that is not on disk (that
 * is smtpd_sink's job); a broken client connection ends the session with an
 * open message aborted.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "smtpd.h"
#include "stats.h"
#include "stream.h"

static int smtpd_unknown_slot(void);

static const char *const smtpd_state_names[SMTPD_STATE_COUNT] = {
    "GREETED", "HELO", "MAIL", "RCPT", "BDAT",
};

void smtpd_enter_state(struct smtpd_session *s, enum smtpd_state to)
{
    if (msg_verbose && s->state != to)
        msg_info("%s: state %s -> %s", s->namaddr, smtpd_state_names[s->state],
                 smtpd_state_names[to]);
    s->state = to;
}

void smtpd_session_init(struct smtpd_session *s, struct stream *client, int standalone,
                        const char *service)
{
    memset(s, 0, sizeof(*s));
    s->client = client;
    s->standalone = standalone;
    s->service = service;
    s->state = SMTPD_STATE_GREETED;
    s->where = "CONNECT";
    s->protocol = "SMTP";
    smtp_mail_args_init(&s->mail);
    strbuf_init(&s->prepend, 256, 64 * 1024);
    strbuf_init(&s->warnings, 64, 64 * 1024);
    strbuf_init(&s->buf, 512, 64 * 1024);
    s->check.prepend = &s->prepend;
    s->check.warnings = &s->warnings;
}

void smtpd_session_free(struct smtpd_session *s)
{
    smtpd_transaction_reset(s);
    smtpd_sink_disconnect(s);
    smtpd_sasl_session_end(s);
    smtp_mail_args_free(&s->mail);
    strbuf_release(&s->prepend);
    strbuf_release(&s->warnings);
    strbuf_release(&s->buf);
    xfree(&s->helo_name);
    xfree(&s->access_denied);
    xfree(&s->tls_ccert_subject);
    xfree(&s->tls_ccert_issuer);
}

const char *smtpd_received_protocol(const struct smtpd_session *s)
{
    int tls = s->tls != NULL, auth = s->check.sasl_username != NULL;

    /* RFC 3848 defines ESMTPS, ESMTPA and ESMTPSA for ESMTP only. */
    if (strcmp(s->protocol, "ESMTP") != 0)
        return s->protocol;
    return tls && auth ? "ESMTPSA" : tls ? "ESMTPS" : auth ? "ESMTPA" : "ESMTP";
}

/* --- replies --------------------------------------------------------------- */

/* RFC 2034: "X.Y.Z " after the code goes when the client may not see it. */
static const char *smtpd_strip_enhanced(const char *text, struct strbuf *out)
{
    const char *p = text + 4;
    size_t i = 0;
    int dots = 0;

    if (strlen(text) < 4 || (text[3] != ' ' && text[3] != '-') || !(p[0] >= '2' && p[0] <= '5'))
        return text;
    while (p[i] && (p[i] == '.' || (p[i] >= '0' && p[i] <= '9')) && i < 12)
        dots += p[i++] == '.';
    if (dots != 2 || p[i] != ' ')
        return text;
    strbuf_reset(out);
    (void) strbuf_append(out, text, 4);
    (void) strbuf_puts(out, p + i + 1);
    return out->data;
}

void smtpd_reply_text(struct smtpd_session *s, const char *text)
{
    const char *line = text, *eol;
    struct strbuf tmp, plain;

    /* Slow down clients that make many errors (Postfix smtpd_chat.c). */
    if ((text[0] == '4' || text[0] == '5') && s->error_count >= var_smtpd_soft_error_limit
        && var_smtpd_error_sleep_time > 0) {
        (void) stream_flush(s->client);
        sleep((unsigned) var_smtpd_error_sleep_time);
    }
    /* A reply of several lines (a milter's) comes CRLF-separated. */
    do {
        size_t n = (eol = strstr(line, "\r\n")) ? (size_t) (eol - line) : strlen(line);

        if (s->ext_offered & SMTPD_EXT_ENHANCED) {
            (void) stream_printf(s->client, "%.*s\r\n", (int) n, line);
        } else {
            strbuf_init(&tmp, 128, 64 * 1024);
            strbuf_init(&plain, 128, 64 * 1024);
            strbuf_append(&tmp, line, n);
            (void) stream_printf(s->client, "%s\r\n", smtpd_strip_enhanced(tmp.data, &plain));
            strbuf_release(&tmp);
            strbuf_release(&plain);
        }
        line = eol ? eol + 2 : NULL;
    } while (line && *line);
    if (msg_verbose)
        msg_info("> %s: %s", s->namaddr, text);
}

void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
{
    va_list ap;

    strbuf_reset(&s->buf);
    va_start(ap, fmt);
    (void) strbuf_vprintf(&s->buf, fmt, ap);
    va_end(ap);
    smtpd_reply_text(s, s->buf.data);
}

/* --- restrictions ---------------------------------------------------------- */

int smtpd_session_check(struct smtpd_session *s, enum smtpd_check_stage stage)
{
    struct smtpd_check_result res;

    if (s->standalone)
        return 0;                       /* Postfix: no access restrictions for -bs */
    s->check.helo_name = s->helo_name;
    s->check.protocol = s->protocol;
    s->check.sender = s->have_mail ? s->mail.address.data : NULL;
    s->check.queue_id = s->sink ? smtpd_sink_queue_id(s) : NULL;
    s->check.recipient_count = s->rcpt_count;
    s->check.pipelining_violation = s->ill_pipelining;
    memset(&res, 0, sizeof(res));
    if (smtpd_check(&s->check, stage, &res) == 0 && res.code == 0)
        return 0;
    if (res.code == 0 || res.reply[0] == '\0') {
        /* The engine failed without a verdict: never "permit" by accident. */
        smtpd_reply(s, "451 4.3.5 Server configuration problem");
        return -1;
    }
    strbuf_set(&s->buf, res.reply);     /* for the caller (milter RCPT_REJ macros) */
    smtpd_reply_text(s, res.reply);
    if (strncmp(res.reply, "421", 3) == 0)
        s->hangup = 1;
    return -1;
}

/* --- the transaction ------------------------------------------------------- */

void smtpd_transaction_reset(struct smtpd_session *s)
{
    smtpd_milter_abort(s);
    if (s->sink)
        smtpd_sink_abort(s);
    s->have_mail = 0;
    smtp_mail_args_free(&s->mail);
    smtp_mail_args_init(&s->mail);
    s->rcpt_count = 0;
    s->rcpt_tried = 0;
    xfree(&s->first_rcpt);
    s->act_size = 0;
    s->bdat_started = s->bdat_failed = s->bdat_too_big = 0;
    s->check.sender = NULL;
    s->check.sasl_sender = NULL;
    xfree(&s->sasl_sender);
    s->check.recipient = NULL;
    s->check.queue_id = NULL;
    s->check.message_size = 0;
    strbuf_reset(&s->prepend);
    if (!s->standalone)
        smtpd_check_reset_transaction(&s->check);
    s->check.hold = s->check.discard = 0;
    if (s->state != SMTPD_STATE_GREETED)
        smtpd_enter_state(s, s->helo_name ? SMTPD_STATE_HELO : SMTPD_STATE_GREETED);
}

/* --- logging --------------------------------------------------------------- */

void smtpd_session_lost(struct smtpd_session *s)
{
    enum stream_status st = stream_status(s->client, STREAM_DIR_READ);
    char size[48] = "";

    if (strcmp(s->where, "DATA") == 0 || strcmp(s->where, "BDAT") == 0)
        snprintf(size, sizeof(size), " (%lld bytes)", s->act_size);
    if (st == STREAM_TIMEOUT) {
        msg_info("timeout after %s%s from %s", s->where, size, s->namaddr);
        smtpd_reply(s, "421 4.4.2 %s Error: timeout exceeded", var_myhostname);
    } else {
        msg_info("lost connection after %s%s from %s", s->where, size, s->namaddr);
    }
    s->hangup = 1;
}

static void smtpd_log_disconnect(struct smtpd_session *s)
{
    struct strbuf line;
    int i, ok = 0, total = 0;

    strbuf_init(&line, 256, 4096);
    (void) strbuf_printf(&line, "disconnect from %s", s->namaddr);
    for (i = 0; i < SMTPD_CMD_SLOTS; i++) {
        const char *name = smtpd_cmd_table[i].name ? smtpd_cmd_table[i].name : "unknown";
        char lower[24];
        size_t j;

        if (s->cmd_total[i] > 0) {
            for (j = 0; name[j] && j < sizeof(lower) - 1; j++)
                lower[j] = (char) (name[j] | 0x20);
            lower[j] = '\0';
            if (s->cmd_ok[i] == s->cmd_total[i])
                (void) strbuf_printf(&line, " %s=%d", lower, s->cmd_ok[i]);
            else
                (void) strbuf_printf(&line, " %s=%d/%d", lower, s->cmd_ok[i], s->cmd_total[i]);
            ok += s->cmd_ok[i];
            total += s->cmd_total[i];
        }
        if (smtpd_cmd_table[i].name == NULL)
            break;
    }
    if (ok == total)
        (void) strbuf_printf(&line, " commands=%d", ok);
    else
        (void) strbuf_printf(&line, " commands=%d/%d", ok, total);
    msg_info("%s", line.data);
    strbuf_release(&line);
}

/* --- pipelining ------------------------------------------------------------ */

/*
 * RFC 2920: input may be sent ahead only after EHLO offered PIPELINING, and
 * never after a command that ends a group (EHLO, DATA, VRFY, NOOP, QUIT...).
 * Returns 1 when the client broke the rule (logged once per session).
 */
int smtpd_flag_ill_pipelining(struct smtpd_session *s)
{
    char peek[100], text[101];
    ssize_t n = 0, i;

    if (!stream_input_ready(s->client))
        return 0;
    /* What the log shows: buffered input, or plaintext still at the socket
     * (under TLS the socket holds records, not commands). */
    if (stream_pending(s->client) > 0)
        n = (ssize_t) stream_peek_input(s->client, peek, sizeof(peek));
    else if (s->tls == NULL)
        n = recv(stream_fd(s->client), peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT);
    for (i = 0; i < n; i++)
        text[i] = (peek[i] >= 0x20 && peek[i] < 0x7f) ? peek[i] : '?';
    text[n > 0 ? n : 0] = '\0';
    if (!s->ill_pipelining)
        msg_info("improper command pipelining after %s from %s: %s", s->where, s->namaddr,
                 text);
    s->ill_pipelining = 1;
    return 1;
}

/* --- the command loop ------------------------------------------------------ */

/* A header-like first word ("Subject:") or a web proxy request: not SMTP at all. */
static int smtpd_non_smtp(const char *line, size_t len)
{
    static const char *const web[] = {"GET ", "POST ", "CONNECT ", NULL};
    size_t i;

    for (i = 0; web[i]; i++)
        if (len >= strlen(web[i]) && strncasecmp(line, web[i], strlen(web[i])) == 0)
            return 1;
    for (i = 0; i < len && i < 64; i++) {
        unsigned char c = (unsigned char) line[i];

        if (c == ':')
            return i > 0;
        if (c <= ' ' || c >= 0x7f)
            return 0;
    }
    return 0;
}

/*
 * Reads one command line into line/len. Returns 1 for a line, 0 when the line
 * was handled here (too long, bare newline), -1 when the client is gone.
 */
static int smtpd_read_command(struct smtpd_session *s, const char **line, size_t *len)
{
    size_t limit = var_line_length_limit > 0 && var_line_length_limit < STREAM_LINE_MAX
        ? (size_t) var_line_length_limit : STREAM_LINE_MAX;
    enum stream_eol eol;
    ssize_t n;
    int pieces = 0;

    n = stream_read_line(s->client, line, limit, &eol);
    if (n < 0 || eol == STREAM_EOL_NONE) {
        smtpd_session_lost(s);
        return -1;
    }
    if (eol == STREAM_EOL_LIMIT) {
        /* Skip the rest of the over-long line without storing it. */
        do {
            n = stream_read_line(s->client, line, limit, &eol);
            if (n < 0 || eol == STREAM_EOL_NONE) {
                smtpd_session_lost(s);
                return -1;
            }
        } while (eol == STREAM_EOL_LIMIT && ++pieces < 1000000);
        smtpd_reply(s, "500 5.5.0 Error: line too long");
        s->error_count++;
        s->cmd_total[smtpd_unknown_slot()]++;
        return 0;
    }
    if ((eol == STREAM_EOL_LF || eol == STREAM_EOL_CR) && s->bare_mode == SMTPD_BARE_REJECT) {
        msg_info("reject: bare <%s> received from %s", eol == STREAM_EOL_LF ? "LF" : "CR",
                 s->namaddr);
        smtpd_reply(s, "550 5.5.2 Error: bare <%s> received", eol == STREAM_EOL_LF ? "LF" : "CR");
        s->hangup = 1;
        return 0;
    }
    *len = (size_t) n;
    return 1;
}

static int smtpd_unknown_slot(void)
{
    int i;

    for (i = 0; smtpd_cmd_table[i].name; i++)
        ;
    return i;
}

static const struct smtpd_cmd *smtpd_cmd_find(const char *verb, int *slot)
{
    int i;

    for (i = 0; smtpd_cmd_table[i].name; i++) {
        if (strcmp(smtpd_cmd_table[i].name, verb) == 0) {
            *slot = i;
            return &smtpd_cmd_table[i];
        }
    }
    *slot = i;                          /* the "unknown" slot */
    return NULL;
}

static void smtpd_unknown(struct smtpd_session *s, int slot, const char *reply)
{
    s->where = "UNKNOWN";
    s->cmd_total[slot]++;
    smtpd_reply(s, "%s", reply);
    s->error_count++;
}

/* Runs one command; returns 0 when it succeeded. */
static int smtpd_run_command(struct smtpd_session *s, const struct smtpd_cmd *c,
                             const struct smtp_cmd *cmd)
{
    if (c->flags & SMTPD_CMD_F_UNIMPL) {
        smtpd_reply(s, "502 5.5.1 Error: command not implemented");
        return -1;
    }
    if (!(c->states & (1u << s->state))) {
        smtpd_reply(s, "%s", smtpd_cmd_state_error(s, c));
        return -1;
    }
    if (c->check && c->check(s, cmd) != 0)
        return -1;
    return c->proceed(s, cmd);
}

static void smtpd_command_loop(struct smtpd_session *s)
{
    const char *line, *tls_refusal;
    size_t len;
    int slot, r;

    while (!s->hangup) {
        struct smtp_cmd cmd;
        const struct smtpd_cmd *c;

        if (s->error_count >= var_smtpd_hard_error_limit) {
            msg_info("too many errors after %s from %s", s->where, s->namaddr);
            smtpd_reply(s, "421 4.7.0 %s Error: too many errors", var_myhostname);
            break;
        }
        /* Replies wait while pipelined commands are buffered (RFC 2920). */
        if (stream_pending(s->client) == 0 && stream_flush(s->client) < 0) {
            msg_info("lost connection after %s from %s", s->where, s->namaddr);
            break;
        }
        stream_set_timeout(s->client, (int) (var_smtpd_timeout * 1000));
        if ((r = smtpd_read_command(s, &line, &len)) < 0)
            break;
        if (r == 0)
            continue;
        if (msg_verbose)
            msg_info("< %s: %.*s", s->namaddr, (int) (len > 200 ? 200 : len), line);
        if (smtpd_non_smtp(line, len)) {
            msg_warn("non-SMTP command from %s: %.100s", s->namaddr, line);
            smtpd_reply(s, "221 2.7.0 Error: I can break rules, too. Goodbye.");
            break;
        }
        if (smtp_cmd_split(line, len, &cmd) < 0) {
            smtpd_unknown(s, smtpd_unknown_slot(), "500 5.5.2 Error: bad syntax");
            continue;
        }
        c = smtpd_cmd_find(cmd.verb, &slot);
        if (c == NULL || (c->ext && !(s->ext_offered & c->ext))) {
            if (smtpd_milter_unknown(s, line, len) == 0)
                smtpd_unknown(s, slot, "500 5.5.2 Error: command not recognized");
            else
                s->cmd_total[slot]++, s->error_count++;
            continue;
        }
        s->cmd_total[slot]++;
        if (s->access_denied && strcmp(c->name, "QUIT") != 0) {
            smtpd_reply(s, "503 5.7.0 Error: access denied for %s", s->namaddr);
            s->error_count++;
            continue;
        }
        if (!(c->flags & SMTPD_CMD_F_PRE_TLS) && (tls_refusal = smtpd_tls_required_reply(s))) {
            smtpd_reply(s, "%s", tls_refusal);
            s->error_count++;
            continue;
        }
        s->where = c->name;
        /* The bytes of a BDAT chunk follow its command by definition (RFC 3030). */
        if (!s->standalone && !(c->flags & SMTPD_CMD_F_CHUNK)
            && (!(s->ext & SMTPD_EXT_PIPELINING) || (c->flags & SMTPD_CMD_F_LAST))
            && !s->ill_pipelining && smtpd_flag_ill_pipelining(s)
            && var_smtpd_forbid_unauth_pipelining) {
            smtpd_reply(s, "554 5.5.0 Error: SMTP protocol synchronization");
            break;
        }
        if (smtpd_run_command(s, c, &cmd) == 0)
            s->cmd_ok[slot]++;
        else
            s->error_count++;
        if ((c->flags & SMTPD_CMD_F_JUNK) && s->junk_cmds++ > var_smtpd_junk_command_limit)
            s->error_count++;
        if (strcmp(c->name, "QUIT") == 0)
            break;
    }
}

void smtpd_session_run(struct smtpd_session *s)
{
    msg_info("connect from %s", s->namaddr);
    if (!s->standalone) {
        stats_set_service(s->service);
        stats_count(STATS_CONNECTIONS, 1);
    }
    stream_set_timeout(s->client, (int) (var_smtpd_timeout * 1000));
    s->check.client_name = s->name;
    s->check.client_addr = s->addr;
    s->check.client_port = s->port;
    s->check.reverse_client_name = s->reverse_name;
    s->check.server_addr = s->server_addr;
    s->check.server_port = s->server_port;
    if (!s->standalone)
        smtpd_check_session_begin(&s->check);

    /* A client that talks before the greeting is an early talker (spam bots);
     * in wrapper mode the client speaks first, and TLS comes before anything. */
    if (smtpd_tls_wrapper_start(s) < 0) {
        /* logged; no reply can reach the client */
    } else if (!s->standalone && !smtpd_tls_wrappermode(s) && smtpd_flag_ill_pipelining(s)
               && var_smtpd_forbid_unauth_pipelining) {
        smtpd_reply(s, "554 5.5.0 Error: SMTP protocol synchronization");
    } else {
        struct smtpd_check_result res;

        memset(&res, 0, sizeof(res));
        if (!s->standalone && (smtpd_check(&s->check, SMTPD_CHECK_CONNECT, &res) != 0
                               || res.code != 0)) {
            if (res.reply[0] == '\0')
                snprintf(res.reply, sizeof(res.reply), "451 4.3.5 Server configuration problem");
            s->access_denied = xstrdup(res.reply);
            smtpd_reply_text(s, res.reply);
            s->error_count++;
            if (strncmp(res.reply, "421", 3) == 0)
                s->hangup = 1;
        } else if (smtpd_milter_connect(s) == 0) {
            smtpd_reply(s, "220 %s", var_smtpd_banner);
        }
        smtpd_command_loop(s);
    }
    (void) stream_flush(s->client);
    smtpd_transaction_reset(s);
    smtpd_milter_end(s);
    if (!s->standalone)
        smtpd_check_session_end(&s->check);
    smtpd_log_disconnect(s);
}
