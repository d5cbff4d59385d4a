/*
 * smtpd_milter.c - smtpd's side of smtpd_milters: the envelope stages
 * (CONNECT, HELO, MAIL, RCPT, DATA, UNKNOWN, ABORT at RSET, QUIT) and the
 * macros with their real values. The content stages run in cleanup, which
 * gets the milter connections with the finish request (smtpd_sink.c,
 * docs/ipc.md "cleanup"), as in Postfix, where the queue file is written.
 *
 * Verdicts: an SMTP reply from a filter (reject, tempfail, REPLYCODE,
 * several lines included) is sent as the reply to the command; "421"
 * ends the session; DISCARD marks the transaction for discarding and
 * QUARANTINE (a failed filter with default_action=quarantine) for the
 * hold queue, both applied by cleanup when the message is committed.
 * Never used in stand-alone mode (sendmail -bs goes through pickup, where
 * non_smtpd_milters apply). A milter list that does not parse is an
 * administrator error: smtpd stops at start-up with the reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "smtpd.h"

#define SMTPD_MILTER_ARGS 64

static int smtpd_milter_configured;

void smtpd_milter_init(void)
{
    struct strbuf why;
    struct milters *ms;

    if (var_smtpd_milters == NULL || var_smtpd_milters[strspn(var_smtpd_milters, ", \t\r\n")] == 0)
        return;
    if (!milter_default_action_valid(var_milter_default_action))
        msg_fatal("milter_default_action = %s: expected accept, reject, tempfail, quarantine "
                  "or shutdown", var_milter_default_action);
    if (var_milter_protocol[0] < '2' || var_milter_protocol[0] > '6' || var_milter_protocol[1])
        msg_fatal("milter_protocol = %s: expected 2 to 6", var_milter_protocol);
    strbuf_init(&why, 128, 4096);
    if ((ms = milters_create(var_smtpd_milters, &why)) == NULL)
        msg_fatal("smtpd_milters = %s: %s", var_smtpd_milters, why.data);
    milters_free(&ms);
    strbuf_release(&why);
    smtpd_milter_configured = 1;
}

static const char *smtpd_milter_macro(void *ctx, const char *name)
{
    struct smtpd_session *s = ctx;

    if (strcmp(name, "j") == 0)
        return var_myhostname;
    if (strcmp(name, "{daemon_name}") == 0)
        return var_milter_macro_daemon_name;
    if (strcmp(name, "v") == 0)
        return var_milter_macro_v;
    if (strcmp(name, "_") == 0) {
        strbuf_reset(&s->milter_macro);
        strbuf_printf(&s->milter_macro, "%s [%s]", s->name, s->addr);
        return s->milter_macro.data;
    }
    if (strcmp(name, "{client_addr}") == 0)
        return s->addr;
    if (strcmp(name, "{client_name}") == 0 || strcmp(name, "{client_ptr}") == 0)
        return s->name;
    if (strcmp(name, "{client_port}") == 0) {
        strbuf_reset(&s->milter_macro);
        strbuf_printf(&s->milter_macro, "%d", s->port);
        return s->milter_macro.data;
    }
    if (strcmp(name, "{client_connections}") == 0)
        return NULL;
    if (strcmp(name, "i") == 0)
        return s->sink ? smtpd_sink_queue_id(s) : NULL;
    if (strcmp(name, "{mail_addr}") == 0)
        return s->have_mail ? s->mail.address.data : NULL;
    if (strcmp(name, "{mail_mailer}") == 0)
        return s->have_mail ? "smtp" : NULL;
    if (strcmp(name, "{rcpt_mailer}") == 0)
        return s->milter_rcpt ? (s->milter_rcpt_rejected ? "error" : "smtp") : NULL;
    if (s->milter_rcpt_rejected && (strcmp(name, "{rcpt_host}") == 0
                                    || strcmp(name, "{rcpt_addr}") == 0)) {
        /* As Postfix: "554 5.7.1 <u@x>: Relay access denied" gives {rcpt_host}
         * "5.7.1" and {rcpt_addr} "<u@x>: Relay access denied". */
        const char *r = s->milter_rcpt_reply, *dsn = strlen(r) > 4 ? r + 4 : "";
        size_t n = strcspn(dsn, " ");

        strbuf_reset(&s->milter_macro);
        if (strcmp(name, "{rcpt_host}") == 0) {
            if (n > 0 && dsn[0] >= '2' && dsn[0] <= '5' && dsn[1] == '.')
                strbuf_append(&s->milter_macro, dsn, n);
            else
                strbuf_append(&s->milter_macro, r, strnlen(r, 3));
        } else {
            strbuf_puts(&s->milter_macro, dsn[0] >= '2' && dsn[0] <= '5' && dsn[1] == '.'
                        ? dsn + n + (dsn[n] == ' ') : dsn);
        }
        return s->milter_macro.data;
    }
    if (strcmp(name, "{rcpt_addr}") == 0)
        return s->milter_rcpt;
    if (strcmp(name, "{auth_authen}") == 0)
        return s->check.sasl_username;
    if (strcmp(name, "{auth_type}") == 0)
        return s->check.sasl_method;
    if (strcmp(name, "{auth_author}") == 0)
        return s->check.sasl_sender;
    /* {tls_version}, {cipher} ...: not sent (rather than sent empty) without TLS. */
    return smtpd_tls_macro(s, name, &s->milter_macro);
}

/* Relays a verdict; returns 0 when the command may go on. */
static int smtpd_milter_verdict(struct smtpd_session *s, const char *v, const char *stage)
{
    if (v == NULL)
        return 0;
    if (v[0] == 'D') {
        msg_info("%s: milter-discard: %s from %s", s->sink ? smtpd_sink_queue_id(s) : "NOQUEUE",
                 stage, s->namaddr);
        s->check.discard = 1;
        return 0;
    }
    if (v[0] == 'H') {
        msg_info("%s: milter-hold: %s from %s: %s", s->sink ? smtpd_sink_queue_id(s) : "NOQUEUE",
                 stage, s->namaddr, v[1] ? v + 2 : "");
        s->check.hold = 1;
        return 0;
    }
    msg_info("%s: milter-reject: %s from %s: %s", s->sink ? smtpd_sink_queue_id(s) : "NOQUEUE",
             stage, s->namaddr, v);
    smtpd_reply_text(s, v);
    if (strncmp(v, "421", 3) == 0)
        s->hangup = 1;
    return -1;
}

int smtpd_milter_connect(struct smtpd_session *s)
{
    const char *v;
    struct strbuf why;

    if (!smtpd_milter_configured || s->standalone)
        return 0;
    strbuf_init(&why, 128, 4096);
    s->milters = milters_create(var_smtpd_milters, &why);
    strbuf_release(&why);
    if (s->milters == NULL)
        return 0;                       /* checked at start-up */
    strbuf_init(&s->milter_macro, 64, 4096);
    milters_set_macros(s->milters, smtpd_milter_macro, s);
    v = milter_connect_event(s->milters, s->name, s->addr, s->port);
    if (v == NULL || v[0] == 'H' || v[0] == 'D') {
        (void) smtpd_milter_verdict(s, v, "CONNECT");
        return 0;
    }
    msg_info("NOQUEUE: milter-reject: CONNECT from %s: %s", s->namaddr, v);
    /* As a connect restriction: the reply instead of the greeting, then every
     * command but QUIT is refused. */
    s->access_denied = xstrdup(strstr(v, "\r\n") ? "554 5.7.1 Access denied" : v);
    (void) smtpd_milter_verdict(s, v, "CONNECT");
    s->error_count++;
    return -1;
}

int smtpd_milter_helo(struct smtpd_session *s)
{
    if (s->milters == NULL)
        return 0;
    return smtpd_milter_verdict(s, milter_helo_event(s->milters, s->helo_name), "HELO");
}

/* Splits "FROM:<a> P1 P2" after the colon into argv (the path, then parameters). */
static void smtpd_milter_argv(const struct smtp_cmd *cmd, char *buf, const char **argv)
{
    size_t n = 0;
    char *p, *colon;

    memcpy(buf, cmd->arg, cmd->arg_len);
    buf[cmd->arg_len] = 0;
    p = (colon = strchr(buf, ':')) ? colon + 1 : buf;
    while (*p && n < SMTPD_MILTER_ARGS) {
        p += strspn(p, " ");
        if (*p == 0)
            break;
        argv[n++] = p;
        p += strcspn(p, " ");
        if (*p)
            *p++ = 0;
    }
    argv[n] = NULL;
}

int smtpd_milter_mail(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    const char *argv[SMTPD_MILTER_ARGS + 1];
    char *buf;
    int r;

    if (s->milters == NULL)
        return 0;
    buf = xmalloc(cmd->arg_len + 1);
    smtpd_milter_argv(cmd, buf, argv);
    if (argv[0] == NULL) {
        free(buf);
        return 0;
    }
    s->milter_msg = 1;
    r = smtpd_milter_verdict(s, milter_mail_event(s->milters, argv), "MAIL");
    free(buf);
    return r;
}

int smtpd_milter_rcpt(struct smtpd_session *s, const struct smtp_cmd *cmd, const char *rcpt,
                      const char *rejected)
{
    const char *argv[SMTPD_MILTER_ARGS + 1];
    char *buf;
    int r = 0;

    if (s->milters == NULL)
        return 0;
    buf = xmalloc(cmd->arg_len + 1);
    smtpd_milter_argv(cmd, buf, argv);
    if (argv[0] != NULL) {
        s->milter_rcpt = rcpt;
        s->milter_rcpt_rejected = rejected != NULL;
        s->milter_rcpt_reply = rejected;
        if (rejected)
            (void) milter_rcpt_event(s->milters, argv, 1);
        else
            r = smtpd_milter_verdict(s, milter_rcpt_event(s->milters, argv, 0), "RCPT");
        s->milter_rcpt = s->milter_rcpt_reply = NULL;
        s->milter_rcpt_rejected = 0;
    }
    free(buf);
    return r;
}

int smtpd_milter_data(struct smtpd_session *s)
{
    if (s->milters == NULL)
        return 0;
    return smtpd_milter_verdict(s, milter_data_event(s->milters), "DATA");
}

int smtpd_milter_unknown(struct smtpd_session *s, const char *line, size_t len)
{
    char *copy;
    const char *v;

    if (s->milters == NULL)
        return 0;
    copy = xstrndup(line, len);
    v = milter_unknown_event(s->milters, copy);
    free(copy);
    if (v == NULL || v[0] == 'D' || v[0] == 'H')
        return 0;
    return smtpd_milter_verdict(s, v, "UNKNOWN");
}

void smtpd_milter_abort(struct smtpd_session *s)
{
    if (s->milters && s->milter_msg)
        milter_abort_event(s->milters);
    s->milter_msg = 0;
}

void smtpd_milter_message_done(struct smtpd_session *s, const char *failed,
                               const char *at_rest)
{
    if (s->milters == NULL)
        return;
    if (failed && *failed)
        milters_mark_failed(s->milters, failed);
    if (at_rest && *at_rest)
        milters_mark_at_rest(s->milters, at_rest);
    s->milter_msg = 0;
}

int smtpd_milter_want_content(const struct smtpd_session *s)
{
    return s->milters != NULL && milters_want_content(s->milters);
}

void smtpd_milter_end(struct smtpd_session *s)
{
    if (s->milters == NULL)
        return;
    milter_quit_event(s->milters);
    milters_free(&s->milters);
    strbuf_release(&s->milter_macro);
}
