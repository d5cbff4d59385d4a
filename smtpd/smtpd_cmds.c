/*
 * smtpd_cmds.c - the SMTP commands: one table of {verb, allowed states, flags,
 * check, proceed}, in the order the disconnect log lists them. A check tests
 * arguments, limits and restrictions and sends its own error reply; a proceed
 * changes the session and answers.
 * Never changes state without smtpd_enter_state, never accepts a recipient that
 * the message could not be given to, never discloses whether a VRFY address
 * exists (252), never runs ETRN in stand-alone mode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "address.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "server.h"
#include "smtpd.h"
#include "stats.h"

/* --- EHLO keywords --------------------------------------------------------- */

static const struct {
    const char *word;
    int bit;
} smtpd_ehlo_words[] = {
    {"PIPELINING", SMTPD_EXT_PIPELINING},
    {"SIZE", SMTPD_EXT_SIZE},
    {"VRFY", SMTPD_EXT_VRFY},
    {"ETRN", SMTPD_EXT_ETRN},
    {"STARTTLS", SMTPD_EXT_STARTTLS},
    {"ENHANCEDSTATUSCODES", SMTPD_EXT_ENHANCED},
    {"8BITMIME", SMTPD_EXT_8BITMIME},
    {"BINARYMIME", SMTPD_EXT_BINARYMIME},
    {"DSN", SMTPD_EXT_DSN},
    {"SMTPUTF8", SMTPD_EXT_SMTPUTF8},
    {"CHUNKING", SMTPD_EXT_CHUNKING},
};

#define SMTPD_EHLO_WORDS (sizeof(smtpd_ehlo_words) / sizeof(smtpd_ehlo_words[0]))

/* The extensions this server offers: all, minus smtpd_discard_ehlo_keywords. */
int smtpd_ehlo_offered(void)
{
    int ext = 0;
    size_t i;
    char *list, *word, *save = NULL;

    for (i = 0; i < SMTPD_EHLO_WORDS; i++)
        ext |= smtpd_ehlo_words[i].bit;
    if (var_disable_vrfy_command)
        ext &= ~SMTPD_EXT_VRFY;
    if (!var_smtputf8_enable)
        ext &= ~SMTPD_EXT_SMTPUTF8;
    if (!smtpd_tls_can_offer())
        ext &= ~SMTPD_EXT_STARTTLS;
    if (var_smtpd_sasl_auth_enable)
        ext |= SMTPD_EXT_AUTH;
    list = xstrdup(var_smtpd_discard_ehlo_keywords ? var_smtpd_discard_ehlo_keywords : "");
    for (word = strtok_r(list, ", \t\r\n", &save); word; word = strtok_r(NULL, ", \t\r\n", &save)) {
        if (strcasecmp(word, "AUTH") == 0)
            ext &= ~SMTPD_EXT_AUTH;
        for (i = 0; i < SMTPD_EHLO_WORDS; i++)
            if (strcasecmp(word, smtpd_ehlo_words[i].word) == 0)
                ext &= ~smtpd_ehlo_words[i].bit;
    }
    free(list);
    /* BINARYMIME is only usable with BDAT (RFC 3030 section 3). */
    if (!(ext & SMTPD_EXT_CHUNKING))
        ext &= ~SMTPD_EXT_BINARYMIME;
    return ext;
}

/* SMTP_EXT_* flags for the command parser from what the session offers. */
static int smtpd_parse_flags(const struct smtpd_session *s)
{
    int f = 0;

    if (s->ext_offered & SMTPD_EXT_SIZE)
        f |= SMTP_EXT_SIZE;
    if (s->ext_offered & SMTPD_EXT_8BITMIME)
        f |= SMTP_EXT_8BITMIME;
    if (s->ext_offered & SMTPD_EXT_BINARYMIME)
        f |= SMTP_EXT_BINARYMIME | SMTP_EXT_8BITMIME;
    if (s->ext_offered & SMTPD_EXT_SMTPUTF8)
        f |= SMTP_EXT_SMTPUTF8;
    if (s->ext_offered & SMTPD_EXT_DSN)
        f |= SMTP_EXT_DSN;
    if (smtpd_sasl_enabled(s))
        f |= SMTP_EXT_AUTH;             /* RFC 4954 section 5 */
    if (var_strict_rfc821_envelopes)
        f |= SMTP_CMD_F_STRICT;
    return f;
}

/* --- state errors ---------------------------------------------------------- */

const char *smtpd_cmd_state_error(const struct smtpd_session *s, const struct smtpd_cmd *c)
{
    if (s->state == SMTPD_STATE_BDAT)
        return "503 5.5.1 Error: BDAT transaction in progress";
    if (strcmp(c->name, "MAIL") == 0)
        return "503 5.5.1 Error: nested MAIL command";
    if (strcmp(c->name, "RCPT") == 0)
        return "503 5.5.1 Error: need MAIL command";
    if (strcmp(c->name, "DATA") == 0 || strcmp(c->name, "BDAT") == 0)
        return s->have_mail ? "503 5.5.1 Error: need RCPT command"
            : "503 5.5.1 Error: need MAIL command";
    if (strcmp(c->name, "ETRN") == 0)
        return "503 5.5.1 Error: MAIL transaction in progress";
    return "503 5.5.1 Error: bad sequence of commands";
}

/* --- HELO / EHLO ----------------------------------------------------------- */

static int smtpd_helo_common(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    size_t i;

    if (cmd->arg_len == 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: %s hostname", cmd->verb);
        return -1;
    }
    if (cmd->arg_len > SMTPD_HELO_MAX) {
        smtpd_reply(s, "501 5.5.4 Error: %s argument too long", cmd->verb);
        return -1;
    }
    for (i = 0; i < cmd->arg_len; i++) {
        unsigned char c = (unsigned char) cmd->arg[i];

        if (c < 0x20 || c == 0x7f) {
            smtpd_reply(s, "501 5.5.4 Error: bad %s argument syntax", cmd->verb);
            return -1;
        }
    }
    /* RFC 5321 section 4.1.4: EHLO/HELO in a transaction resets it. */
    smtpd_transaction_reset(s);
    xfree(&s->helo_name);
    s->helo_name = xstrndup(cmd->arg, cmd->arg_len);
    if (smtpd_session_check(s, SMTPD_CHECK_HELO) != 0 || smtpd_milter_helo(s) != 0) {
        xfree(&s->helo_name);
        return -1;
    }
    smtpd_enter_state(s, SMTPD_STATE_HELO);
    return 0;
}

static int smtpd_helo_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    if (smtpd_helo_common(s, cmd) != 0)
        return -1;
    s->protocol = "SMTP";
    s->ext = 0;
    smtpd_reply(s, "250 %s", var_myhostname);
    return 0;
}

/* The EHLO reply: the host name, then one keyword per line, the last with "250 ".
 * AUTH follows ETRN, as in Postfix; broken_sasl_auth_clients adds "AUTH=". */
static void smtpd_ehlo_reply(struct smtpd_session *s, int ext)
{
    const char *words[SMTPD_EHLO_WORDS + 3];
    const char *mechs = smtpd_sasl_ehlo_mechanisms(s);
    struct strbuf auth, auth_old;
    char size[40];
    size_t n = 0, i;

    strbuf_init(&auth, 64, 64 * 1024);
    strbuf_init(&auth_old, 64, 64 * 1024);
    for (i = 0; i < SMTPD_EHLO_WORDS; i++) {
        int bit = smtpd_ehlo_words[i].bit;

        if ((ext & bit) && !(bit == SMTPD_EXT_ETRN && s->standalone)) {
            if (bit == SMTPD_EXT_SIZE && var_message_size_limit > 0) {
                snprintf(size, sizeof(size), "SIZE %lld", var_message_size_limit);
                words[n++] = size;
            } else {
                words[n++] = smtpd_ehlo_words[i].word;
            }
        }
        if (bit == SMTPD_EXT_ETRN && mechs) {
            (void) strbuf_printf(&auth, "AUTH %s", mechs);
            words[n++] = auth.data;
            if (var_broken_sasl_auth_clients) {
                (void) strbuf_printf(&auth_old, "AUTH=%s", mechs);
                words[n++] = auth_old.data;
            }
        }
    }
    smtpd_reply(s, "250%c%s", n ? '-' : ' ', var_myhostname);
    for (i = 0; i < n; i++)
        smtpd_reply(s, "250%c%s", i + 1 < n ? '-' : ' ', words[i]);
    strbuf_release(&auth);
    strbuf_release(&auth_old);
}

static int smtpd_ehlo_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    int ext = s->ext_offered;

    if (s->tls)
        ext &= ~SMTPD_EXT_STARTTLS;     /* RFC 3207 section 4.2 */
    if (smtpd_helo_common(s, cmd) != 0)
        return -1;
    s->protocol = "ESMTP";
    s->ext = ext;
    smtpd_ehlo_reply(s, ext);
    return 0;
}

/* --- MAIL ------------------------------------------------------------------ */

static int smtpd_mail_check(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    if (var_smtpd_helo_required && s->helo_name == NULL) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return -1;
    }
    smtp_mail_args_free(&s->mail);
    smtp_mail_args_init(&s->mail);
    strbuf_reset(&s->buf);
    if (smtp_cmd_parse_mail(cmd->arg, cmd->arg_len, smtpd_parse_flags(s), &s->mail,
                            &s->buf) < 0) {
        smtpd_reply_text(s, s->buf.data);
        return -1;
    }
    if (var_message_size_limit > 0 && s->mail.size > var_message_size_limit) {
        smtpd_reply(s, "552 5.3.4 Message size exceeds fixed limit");
        return -1;
    }
    /* AUTH=: kept only for a client that authenticated (RFC 4954 section 5:
     * a server may ignore the parameter of anyone else); <> means no one. As
     * in Postfix, the policy service, milters and the log see it as xtext. */
    xfree(&s->sasl_sender);
    if (s->sasl_username && s->mail.have_auth && s->mail.auth.len > 0) {
        struct strbuf x;

        strbuf_init(&x, 64, 3 * SMTP_CMD_AUTH_MAX);
        smtp_xtext_encode(s->mail.auth.data, &x);
        s->sasl_sender = strbuf_steal(&x);
    }
    s->check.sasl_sender = s->sasl_sender;
    s->have_mail = 1;                   /* the restrictions see the sender */
    s->check.message_size = s->mail.size > 0 ? s->mail.size : 0;    /* SIZE=, until DATA */
    if (smtpd_session_check(s, SMTPD_CHECK_MAIL) != 0 || smtpd_milter_mail(s, cmd) != 0) {
        smtpd_milter_abort(s);
        s->have_mail = 0;
        s->check.sasl_sender = NULL;
        xfree(&s->sasl_sender);
        return -1;
    }
    return 0;
}

static int smtpd_mail_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    (void) cmd;
    s->have_mail = 1;
    s->rcpt_count = s->rcpt_tried = 0;
    smtpd_enter_state(s, SMTPD_STATE_MAIL);
    smtpd_reply(s, "250 2.1.0 Ok");
    return 0;
}

/* --- RCPT ------------------------------------------------------------------ */

static int smtpd_rcpt_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    struct smtp_rcpt_args rcpt;
    int flags = smtpd_parse_flags(s) & ~SMTP_EXT_SMTPUTF8, ret = -1;

    if (s->mail.smtputf8)
        flags |= SMTP_EXT_SMTPUTF8;
    s->rcpt_tried++;
    smtp_rcpt_args_init(&rcpt);
    strbuf_reset(&s->buf);
    if (smtp_cmd_parse_rcpt(cmd->arg, cmd->arg_len, flags, &rcpt, &s->buf) < 0) {
        smtpd_reply_text(s, s->buf.data);
        goto done;
    }
    if (s->rcpt_count >= var_smtpd_recipient_limit) {
        smtpd_reply(s, "452 4.5.3 Error: too many recipients");
        goto done;
    }
    /* message_total_size_limit: the announced size times the recipients. */
    if (var_message_total_size_limit > 0 && s->mail.size > 0
        && s->mail.size > var_message_total_size_limit / (s->rcpt_count + 1)) {
        smtpd_reply(s, "452 4.5.3 Error: message size times recipients exceeds "
                    "total size limit");
        goto done;
    }
    s->check.recipient = rcpt.address.data;
    if (smtpd_session_check(s, SMTPD_CHECK_RCPT) != 0) {
        s->check.recipient = NULL;
        (void) smtpd_milter_rcpt(s, cmd, rcpt.address.data, s->buf.data);
        goto done;
    }
    s->check.recipient = NULL;
    if (smtpd_milter_rcpt(s, cmd, rcpt.address.data, NULL) != 0)
        goto done;
    /* The queue file exists from the first valid recipient on (Postfix
     * smtpd_delay_open_until_valid_rcpt). */
    if (s->sink == NULL) {
        strbuf_reset(&s->buf);
        if (smtpd_sink_open(s, &s->buf) < 0) {
            smtpd_reply_text(s, s->buf.data);
            goto done;
        }
    }
    if (smtpd_sink_recipient(s, rcpt.address.data, rcpt.have_orcpt ? rcpt.orcpt.data : NULL,
                             rcpt.notify) < 0) {
        msg_warn("%s: cleanup connection lost while sending recipients",
                 smtpd_sink_queue_id(s));
        smtpd_sink_abort(s);
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
        s->rcpt_count = 0;
        smtpd_enter_state(s, SMTPD_STATE_MAIL);
        goto done;
    }
    if (s->rcpt_count++ == 0)
        s->first_rcpt = xstrdup(rcpt.address.data);
    smtpd_enter_state(s, SMTPD_STATE_RCPT);
    if (!s->standalone)
        stats_count(STATS_RECIPIENTS_ACCEPTED, 1);
    smtpd_reply(s, "250 2.1.5 Ok");
    ret = 0;
done:
    smtp_rcpt_args_free(&rcpt);
    return ret;
}

/* --- DATA and BDAT --------------------------------------------------------- */

static int smtpd_data_check(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    if (cmd->arg_len > 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: DATA");
        return -1;
    }
    if (s->rcpt_count == 0) {
        smtpd_reply(s, s->rcpt_tried ? "554 5.5.1 Error: no valid recipients"
                    : "503 5.5.1 Error: need RCPT command");
        return -1;
    }
    if (s->mail.body == SMTP_BODY_BINARYMIME) {
        smtpd_reply(s, "503 5.5.1 Error: BODY=BINARYMIME requires BDAT");
        return -1;
    }
    if (smtpd_session_check(s, SMTPD_CHECK_DATA) != 0)
        return -1;
    return smtpd_milter_data(s);
}

static int smtpd_data_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    (void) cmd;
    return smtpd_data_receive(s);
}

static int smtpd_bdat_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    return smtpd_bdat_receive(s, cmd);
}

/* --- RSET, NOOP, QUIT, HELP ------------------------------------------------ */

static int smtpd_rset_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    if (cmd->arg_len > 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: RSET");
        return -1;
    }
    smtpd_transaction_reset(s);
    smtpd_reply(s, "250 2.0.0 Ok");
    return 0;
}

static int smtpd_noop_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    (void) cmd;
    smtpd_reply(s, "250 2.0.0 Ok");
    return 0;
}

static int smtpd_quit_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    (void) cmd;
    smtpd_reply(s, "221 2.0.0 Bye");
    s->hangup = 1;
    return 0;
}

static int smtpd_help_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    (void) cmd;
    smtpd_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA%s RSET NOOP QUIT HELP VRFY%s",
                (s->ext_offered & SMTPD_EXT_CHUNKING) ? " BDAT" : "",
                (s->ext_offered & SMTPD_EXT_ETRN) && !s->standalone ? " ETRN" : "");
    return 0;
}

/* --- VRFY ------------------------------------------------------------------ */

static int smtpd_vrfy_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    struct strbuf addr, why;
    size_t used = 0;
    int ret = -1, flags = ADDRESS_FLAG_NO_BRACKETS_OK;

    if (var_disable_vrfy_command) {
        smtpd_reply(s, "502 5.5.1 VRFY command is disabled");
        return -1;
    }
    if (cmd->arg_len == 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: VRFY address");
        return -1;
    }
    if (s->ext_offered & SMTPD_EXT_SMTPUTF8)
        flags |= ADDRESS_FLAG_SMTPUTF8;
    strbuf_init(&addr, 64, ADDRESS_MAX_PATH);
    strbuf_init(&why, 64, 256);
    if (address_parse_path(cmd->arg, cmd->arg_len, flags, &addr, &used, &why) < 0
        || used != cmd->arg_len || addr.len == 0) {
        smtpd_reply(s, "501 5.1.3 Bad recipient address syntax");
        goto done;
    }
    s->check.recipient = addr.data;
    if (smtpd_session_check(s, SMTPD_CHECK_VRFY) == 0) {
        /* RFC 5321 section 3.5.3: 252 promises nothing about the mailbox. */
        smtpd_reply(s, "252 2.0.0 %.*s", (int) cmd->arg_len, cmd->arg);
        ret = 0;
    }
    s->check.recipient = NULL;
done:
    strbuf_release(&addr);
    strbuf_release(&why);
    return ret;
}

/* --- ETRN (RFC 1985) ------------------------------------------------------- */

static int smtpd_etrn_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    char domain[ADDRESS_MAX_DOMAIN + 1], path[256];
    const char *arg = cmd->arg;
    size_t len = cmd->arg_len;
    struct stat st;
    int ours;

    if (var_smtpd_helo_required && s->helo_name == NULL) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return -1;
    }
    if (len == 0 || memchr(arg, ' ', len) || memchr(arg, '\t', len)) {
        smtpd_reply(s, "500 5.5.4 Syntax: ETRN domain");
        return -1;
    }
    if (arg[0] == '@' || arg[0] == '#') {
        arg++;
        len--;
    }
    if (len == 0 || len > ADDRESS_MAX_DOMAIN) {
        smtpd_reply(s, "501 5.5.4 Error: invalid parameter syntax");
        return -1;
    }
    memcpy(domain, arg, len);
    domain[len] = '\0';
    if (!address_domain_valid(domain, 0)) {
        smtpd_reply(s, "501 5.5.4 Error: invalid parameter syntax");
        return -1;
    }
    if (s->standalone) {
        msg_warn("do not use ETRN in \"sendmail -bs\" mode");
        smtpd_reply(s, "458 4.3.0 Unable to queue messages");
        return -1;
    }
    s->check.etrn_domain = domain;
    if (smtpd_session_check(s, SMTPD_CHECK_ETRN) != 0) {
        s->check.etrn_domain = NULL;
        return -1;
    }
    s->check.etrn_domain = NULL;
    /* Postfix flushes only fast_flush_domains ($relay_domains): mail we queue for
     * others. A domain we do not handle has nothing to flush. */
    if ((ours = smtpd_check_is_our_domain(domain)) == 0) {
        msg_warn("reject: ETRN %.100s... from %s", domain, s->namaddr);
        smtpd_reply(s, "459 4.7.1 <%s>: service unavailable", domain);
        return -1;
    }
    snprintf(path, sizeof(path), "public/%s", var_queue_service_name);
    if (ours < 0 || stat(path, &st) < 0
        || server_trigger_send(path, S_ISFIFO(st.st_mode), "F", 1) < 0) {
        msg_warn("unable to trigger the queue manager (%s) for ETRN", path);
        smtpd_reply(s, "458 4.3.0 Unable to queue messages");
        return -1;
    }
    smtpd_reply(s, "250 2.0.0 Queuing started");
    return 0;
}

/* --- the table ------------------------------------------------------------- */

#define ST_TRANS (SMTPD_ST(MAIL) | SMTPD_ST(RCPT))
#define ST_IDLE  (SMTPD_ST(GREETED) | SMTPD_ST(HELO))
#define ST_NOBDAT (ST_IDLE | ST_TRANS)

const struct smtpd_cmd smtpd_cmd_table[] = {
    {"HELO", ST_NOBDAT, SMTPD_CMD_F_JUNK | SMTPD_CMD_F_LAST | SMTPD_CMD_F_PRE_TLS, 0, NULL,
     smtpd_helo_proceed},
    {"EHLO", ST_NOBDAT, SMTPD_CMD_F_JUNK | SMTPD_CMD_F_LAST | SMTPD_CMD_F_PRE_TLS, 0, NULL,
     smtpd_ehlo_proceed},
    /* Not F_LAST: input sent after it is discarded and logged, not refused
     * (smtpd_tls.c, CVE-2011-0411). */
    {"STARTTLS", ST_NOBDAT, SMTPD_CMD_F_PRE_TLS, 0, NULL, smtpd_starttls_proceed},
    {"AUTH", ST_NOBDAT, 0, 0, NULL, smtpd_auth_proceed},
    {"MAIL", ST_IDLE, 0, 0, smtpd_mail_check, smtpd_mail_proceed},
    {"RCPT", ST_TRANS, 0, 0, NULL, smtpd_rcpt_proceed},
    {"DATA", ST_TRANS, SMTPD_CMD_F_LAST, 0, smtpd_data_check, smtpd_data_proceed},
    /* BDAT runs in every state: a failing chunk must still be read to stay in step. */
    {"BDAT", SMTPD_ST_ANY, SMTPD_CMD_F_CHUNK, SMTPD_EXT_CHUNKING, NULL, smtpd_bdat_proceed},
    {"RSET", SMTPD_ST_ANY, SMTPD_CMD_F_JUNK, 0, NULL, smtpd_rset_proceed},
    {"NOOP", SMTPD_ST_ANY, SMTPD_CMD_F_JUNK | SMTPD_CMD_F_LAST | SMTPD_CMD_F_PRE_TLS, 0, NULL,
     smtpd_noop_proceed},
    {"VRFY", ST_NOBDAT, SMTPD_CMD_F_JUNK | SMTPD_CMD_F_LAST, 0, NULL, smtpd_vrfy_proceed},
    {"ETRN", ST_IDLE, SMTPD_CMD_F_JUNK, SMTPD_EXT_ETRN, NULL, smtpd_etrn_proceed},
    {"EXPN", SMTPD_ST_ANY, SMTPD_CMD_F_UNIMPL | SMTPD_CMD_F_LAST, 0, NULL, NULL},
    {"HELP", SMTPD_ST_ANY, SMTPD_CMD_F_JUNK | SMTPD_CMD_F_LAST | SMTPD_CMD_F_PRE_TLS, 0, NULL,
     smtpd_help_proceed},
    {"QUIT", SMTPD_ST_ANY, SMTPD_CMD_F_LAST | SMTPD_CMD_F_PRE_TLS, 0, NULL, smtpd_quit_proceed},
    {NULL, 0, 0, 0, NULL, NULL},
};
