/*
 * smtp_proto.c - the SMTP (RFC 5321) and LMTP (RFC 2033) conversation.
 *
 * Greeting, then EHLO (HELO when EHLO is refused) or LHLO; the features
 * announced decide the transaction: with PIPELINING, MAIL, the RCPTs and DATA
 * go out in batches of SMTP_PIPELINE_BATCH commands before the replies are
 * read; SIZE is announced and checked before MAIL; 8-bit mail goes with
 * BODY=8BITMIME, or downgraded to quoted-printable for a server without
 * 8BITMIME; SMTPUTF8 mail goes only to servers offering it (else 5.6.7); the
 * DSN parameters (RET, ENVID, NOTIFY, ORCPT) are passed on when DSN is offered.
 * Each reply is read under its stage's timeout (smtp_helo_timeout,
 * smtp_mail_timeout, smtp_rcpt_timeout, smtp_data_init_timeout,
 * smtp_data_xfer_timeout per write of content, smtp_data_done_timeout; the
 * lmtp_* ones for LMTP). LMTP gets one reply per accepted recipient after
 * the end of data.
 *
 * STARTTLS (smtp_tls.c decides and runs the handshake): after EHLO/LHLO when
 * the server offers it and the request's TLS level is "may" or above, then
 * EHLO/LHLO again under TLS; from "encrypt" up a server that does not offer
 * it or refuses it gets no mail. In wrapper mode TLS starts before the
 * greeting.
 *
 * Outcomes per recipient: 2xx sent, 5xx bounced, 4xx deferred when this is
 * the last server to try, else left for the next server (as are recipients
 * whose session broke).
 *
 * Must never: send a command holding CR, LF or another control character,
 * send the final "." after content that could not be read completely, or read
 * a reply without a bound (line length and count are limited).
 * Failure: recipients are reported (or left pending) with the server's reply
 * or the reason the session broke.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "address.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "smtp.h"
#include "smtp_cmd.h"
#include "stream.h"
#include "xsasl.h"

struct smtp_resp {
    int code;
    char dsn[16];
    struct strbuf text;                 /* the reply, lines joined by spaces */
    struct strbuf lines;                /* the raw lines, each ended by "\n" */
};

enum smtp_io { SMTP_IO_OK, SMTP_IO_BROKEN, SMTP_IO_MALFORMED };

static void smtp_resp_init(struct smtp_resp *r)
{
    r->code = 0;
    r->dsn[0] = 0;
    strbuf_init(&r->text, 256, DELIVER_TEXT_MAX);
    strbuf_init(&r->lines, 256, 64 * 1024);
}

static void smtp_resp_free(struct smtp_resp *r)
{
    strbuf_release(&r->text);
    strbuf_release(&r->lines);
}

/* The enhanced status code at p when its class is cls, into dsn. */
static int smtp_resp_dsn(const char *p, int cls, char *dsn, size_t size)
{
    const char *q = p;
    int parts = 0, digits;

    if (*q - '0' != cls || q[1] != '.')
        return 0;
    while (parts < 3) {
        for (digits = 0; isdigit((unsigned char) *q) && digits < 4; digits++)
            q++;
        if (digits == 0 || digits > 3)
            return 0;
        parts++;
        if (parts < 3) {
            if (*q != '.')
                return 0;
            q++;
        }
    }
    if (*q != 0 && *q != ' ')
        return 0;
    snprintf(dsn, size, "%.*s", (int) (q - p), p);
    return 1;
}

/* Reads one (multi-line) reply under timeout_ms. */
static enum smtp_io smtp_resp_read(struct smtp_session *s, int timeout_ms, struct smtp_resp *r)
{
    int nlines = 0;

    r->code = 0;
    r->dsn[0] = 0;
    strbuf_reset(&r->text);
    strbuf_reset(&r->lines);
    stream_set_timeout(s->stream, timeout_ms > 0 ? timeout_ms : 1);
    for (;;) {
        const char *line;
        enum stream_eol eol;
        ssize_t n = stream_read_line(s->stream, &line, SMTP_REPLY_LINE_MAX, &eol);
        int code, more;
        size_t i;

        if (n < 0 || eol == STREAM_EOL_NONE)
            return SMTP_IO_BROKEN;
        if (eol == STREAM_EOL_LIMIT) {
            /* Drop the rest of an over-long line, within the same bounds. */
            enum stream_eol e2;
            const char *rest;
            int pieces = 0;

            do {
                if (stream_read_line(s->stream, &rest, SMTP_REPLY_LINE_MAX, &e2) < 0
                    || e2 == STREAM_EOL_NONE)
                    return SMTP_IO_BROKEN;
            } while (e2 == STREAM_EOL_LIMIT && ++pieces < 64);
            if (e2 == STREAM_EOL_LIMIT)
                return SMTP_IO_MALFORMED;
        }
        if (n < 3 || !isdigit((unsigned char) line[0]) || !isdigit((unsigned char) line[1])
            || !isdigit((unsigned char) line[2]) || (n > 3 && line[3] != ' ' && line[3] != '-'))
            return SMTP_IO_MALFORMED;
        code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (code < 200 || code > 599 || (nlines > 0 && code != r->code))
            return SMTP_IO_MALFORMED;
        more = n > 3 && line[3] == '-';
        r->code = code;
        (void) strbuf_append(&r->lines, line, (size_t) n);
        (void) strbuf_putc(&r->lines, '\n');
        if (nlines == 0) {
            if (n > 4)
                (void) smtp_resp_dsn(line + 4, code / 100, r->dsn, sizeof(r->dsn));
            (void) strbuf_append(&r->text, line, (size_t) n);
        } else if (n > 4) {
            const char *t = line + 4;

            /* Continuation lines repeat the code and often the enhanced code. */
            if (r->dsn[0] && strncmp(t, r->dsn, strlen(r->dsn)) == 0 && t[strlen(r->dsn)] == ' ')
                t += strlen(r->dsn) + 1;
            (void) strbuf_putc(&r->text, ' ');
            (void) strbuf_append(&r->text, t, (size_t) (line + n - t));
        }
        /* Control characters in a reply never reach the log or the DSN. */
        for (i = 0; i < r->text.len; i++)
            if ((unsigned char) r->text.data[i] < ' ' || r->text.data[i] == 0x7f)
                r->text.data[i] = ' ';
        if (!more)
            break;
        if (++nlines >= SMTP_REPLY_LINES_MAX)
            return SMTP_IO_MALFORMED;
    }
    if (r->dsn[0] == 0)
        snprintf(r->dsn, sizeof(r->dsn), "%d.0.0", r->code / 100);
    return SMTP_IO_OK;
}

/* "host[addr]" for texts (the relay without the port). */
static const char *smtp_hostaddr(const struct smtp_session *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s[%s]", s->host, s->addr);
    return buf;
}

/* Why a session broke, in Postfix's words, into st->last_why (4.4.2). */
static void smtp_broken(struct smtp_state *st, struct smtp_session *s, enum smtp_io io,
                        const char *while_doing)
{
    char ha[SMTP_RELAY_MAX];

    smtp_hostaddr(s, ha, sizeof(ha));
    strbuf_reset(&st->last_why);
    snprintf(st->last_dsn, sizeof(st->last_dsn), "4.4.2");
    snprintf(st->last_relay, sizeof(st->last_relay), "%s", s->relay);
    if (io == SMTP_IO_MALFORMED)
        strbuf_printf(&st->last_why, "host %s sent a malformed reply while %s", ha, while_doing);
    else if (stream_status(s->stream, STREAM_DIR_READ) == STREAM_TIMEOUT
             || stream_status(s->stream, STREAM_DIR_WRITE) == STREAM_TIMEOUT)
        strbuf_printf(&st->last_why, "conversation with %s timed out while %s", ha, while_doing);
    else
        strbuf_printf(&st->last_why, "lost connection with %s while %s", ha, while_doing);
    /* Opportunistic TLS broke: the recipients wait for a plain-text retry
     * of this server instead of being deferred here. */
    if (io != SMTP_IO_MALFORMED && s->tls && st->pending > 0 && smtp_tls_plain_retry_ok(st, s)) {
        st->tls_retry_plain = 1;
        st->final = 0;
    }
}

/* A recipient's soft failure: deferred at the last server, else left for the
 * next one with the reason remembered. */
static void smtp_soft(struct smtp_state *st, struct smtp_session *s, int i, const char *dsn,
                      const char *text)
{
    if (st->done[i])
        return;
    if (st->final) {
        smtp_report(st, i, DELIVER_DEFER, dsn, s->relay, text);
        return;
    }
    snprintf(st->last_dsn, sizeof(st->last_dsn), "%s", dsn);
    strbuf_set(&st->last_why, text);
    snprintf(st->last_relay, sizeof(st->last_relay), "%s", s->relay);
}

/* A server reply that failed recipient i: bounce for 5xx, soft for 4xx. */
static void smtp_reply_fail(struct smtp_state *st, struct smtp_session *s, int i,
                            const struct smtp_resp *r, const char *cmd)
{
    struct strbuf text;
    char ha[SMTP_RELAY_MAX];

    if (st->done[i])
        return;
    strbuf_init(&text, 256, DELIVER_TEXT_MAX);
    strbuf_printf(&text, "host %s said: %s (in reply to %s command)",
                  smtp_hostaddr(s, ha, sizeof(ha)), r->text.data, cmd);
    if (r->code / 100 == 5)
        smtp_report(st, i, DELIVER_BOUNCE, r->dsn, s->relay, text.data);
    else
        smtp_soft(st, s, i, r->dsn, text.data);
    strbuf_release(&text);
}

static void smtp_parse_features(struct smtp_session *s, const struct smtp_resp *r)
{
    const char *p = r->lines.data, *end = r->lines.data + r->lines.len;
    int first = 1;

    s->features = SMTP_FEAT_ESMTP;
    s->size_limit = 0;
    s->sasl_mechs[0] = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t) (end - p)), *kw = p + 4;
        char word[32];
        size_t n = 0;

        if (eol == NULL)
            break;
        if (!first && eol - p > 4) {
            while (kw < eol && *kw != ' ' && *kw != '=' && n + 1 < sizeof(word))
                word[n++] = (char) toupper((unsigned char) *kw++);
            word[n] = 0;
            if (strcmp(word, "PIPELINING") == 0)
                s->features |= SMTP_FEAT_PIPELINING;
            else if (strcmp(word, "8BITMIME") == 0)
                s->features |= SMTP_FEAT_8BITMIME;
            else if (strcmp(word, "SMTPUTF8") == 0)
                s->features |= SMTP_FEAT_SMTPUTF8;
            else if (strcmp(word, "DSN") == 0)
                s->features |= SMTP_FEAT_DSN;
            else if (strcmp(word, "ENHANCEDSTATUSCODES") == 0)
                s->features |= SMTP_FEAT_ENHANCED;
            else if (strcmp(word, "CHUNKING") == 0)
                s->features |= SMTP_FEAT_CHUNKING;
            else if (strcmp(word, "BINARYMIME") == 0)
                s->features |= SMTP_FEAT_BINARYMIME;
            else if (strcmp(word, "STARTTLS") == 0)
                s->features |= SMTP_FEAT_STARTTLS;
            else if (strcmp(word, "AUTH") == 0) {
                /* "AUTH mechs" or the old "AUTH=mechs"; several lines add up. */
                size_t have = strlen(s->sasl_mechs);
                char *m;

                s->features |= SMTP_FEAT_AUTH;
                if (kw < eol)
                    snprintf(s->sasl_mechs + have, sizeof(s->sasl_mechs) - have, "%s%.*s",
                             have ? " " : "", (int) (eol - kw - 1), kw + 1);
                /* The list may reach the log: no control characters. */
                for (m = s->sasl_mechs + have; *m; m++)
                    if ((unsigned char) *m < ' ' || *m == 0x7f)
                        *m = ' ';
            } else if (strcmp(word, "SIZE") == 0) {
                s->features |= SMTP_FEAT_SIZE;
                if (kw < eol && *kw == ' ')
                    s->size_limit = strtoll(kw + 1, NULL, 10);
                if (s->size_limit < 0)
                    s->size_limit = 0;
            }
        }
        first = 0;
        p = eol + 1;
    }
}

/* Writes one command line; flushes when asked. */
static int smtp_send(struct smtp_session *s, const char *cmd, int flush)
{
    if (stream_puts(s->stream, cmd) < 0 || stream_write(s->stream, "\r\n", 2) < 0)
        return -1;
    return flush ? stream_flush(s->stream) : 0;
}

static void smtp_hello_fail(struct smtp_state *st, struct smtp_session *s, const char *dsn,
                            const char *text)
{
    strbuf_set(&st->last_why, text);
    snprintf(st->last_dsn, sizeof(st->last_dsn), "%s", dsn);
    snprintf(st->last_relay, sizeof(st->last_relay), "%s", s->relay);
}

/* EHLO (HELO when EHLO is refused) or LHLO, and the features it announces. */
static int smtp_hello_exchange(struct smtp_state *st, struct smtp_session *s, int esmtp,
                               int *hard, struct smtp_resp *r)
{
    char cmd[SMTP_HOST_MAX + 16], ha[SMTP_RELAY_MAX];
    enum smtp_io io = SMTP_IO_OK;

    smtp_hostaddr(s, ha, sizeof(ha));
    snprintf(cmd, sizeof(cmd), "%s %s", smtp_par.lmtp ? "LHLO" : esmtp ? "EHLO" : "HELO",
             smtp_par.helo_name);
    if (smtp_send(s, cmd, 1) < 0 || (io = smtp_resp_read(s, smtp_par.helo_ms, r)) != SMTP_IO_OK) {
        smtp_broken(st, s, io == SMTP_IO_MALFORMED ? io : SMTP_IO_BROKEN,
                    "performing the EHLO handshake");
        return -1;
    }
    if (r->code / 100 != 2 && esmtp && !smtp_par.lmtp && !s->tls) {
        esmtp = 0;
        snprintf(cmd, sizeof(cmd), "HELO %s", smtp_par.helo_name);
        if (smtp_send(s, cmd, 1) < 0
            || (io = smtp_resp_read(s, smtp_par.helo_ms, r)) != SMTP_IO_OK) {
            smtp_broken(st, s, io == SMTP_IO_MALFORMED ? io : SMTP_IO_BROKEN,
                        "performing the HELO handshake");
            return -1;
        }
    }
    if (r->code / 100 != 2) {
        strbuf_reset(&st->last_why);
        strbuf_printf(&st->last_why, "host %s refused to talk to me: %s (in reply to %s command)",
                      ha, r->text.data, smtp_par.lmtp ? "LHLO" : esmtp ? "EHLO" : "HELO");
        snprintf(st->last_dsn, sizeof(st->last_dsn), "%s", r->dsn);
        snprintf(st->last_relay, sizeof(st->last_relay), "%s", s->relay);
        *hard = r->code / 100 == 5;
        return -1;
    }
    if (esmtp)
        smtp_parse_features(s, r);
    else
        s->features = 0;
    return 0;
}

/*
 * STARTTLS by the request's TLS policy, after the first EHLO/LHLO: sent when
 * offered at "may" and above, required from "encrypt" up; after the
 * handshake EHLO/LHLO again, as the features may differ under TLS.
 */
static int smtp_starttls(struct smtp_state *st, struct smtp_session *s, int *hard,
                         struct smtp_resp *r)
{
    int level = st->tls_plain ? SMTP_TLS_NONE : st->tls.level;
    struct tls_ctx *ctx = NULL;
    struct strbuf text;
    char ha[SMTP_RELAY_MAX];
    enum smtp_io io = SMTP_IO_OK;

    if (s->tls)
        return 0;
    smtp_hostaddr(s, ha, sizeof(ha));
    if ((s->features & SMTP_FEAT_STARTTLS) && var_smtp_tls_note_starttls_offer
        && level == SMTP_TLS_NONE)
        msg_info("Host offered STARTTLS: [%s]", s->host);
    if (level >= SMTP_TLS_MAY && (s->features & SMTP_FEAT_STARTTLS)
        && (ctx = smtp_tls_context(&st->tls)) != NULL) {
        if (smtp_send(s, "STARTTLS", 1) < 0
            || (io = smtp_resp_read(s, smtp_par.starttls_ms, r)) != SMTP_IO_OK) {
            smtp_broken(st, s, io == SMTP_IO_MALFORMED ? io : SMTP_IO_BROKEN,
                        "receiving the STARTTLS response");
            return -1;
        }
        if (r->code / 100 == 2) {
            if (smtp_tls_start(st, s, ctx) < 0)
                return -1;
            return smtp_hello_exchange(st, s, 1, hard, r);
        }
        s->features &= ~SMTP_FEAT_STARTTLS;
        if (level >= SMTP_TLS_ENCRYPT) {
            strbuf_init(&text, 256, DELIVER_TEXT_MAX);
            strbuf_printf(&text, "TLS is required, but host %s refused to start TLS: %s", ha,
                          r->text.data);
            smtp_hello_fail(st, s, r->dsn, text.data);
            strbuf_release(&text);
            *hard = r->code / 100 == 5;
            return -1;
        }
        /* Else on in plain text. */
    }
    if (level >= SMTP_TLS_ENCRYPT) {
        strbuf_init(&text, 256, DELIVER_TEXT_MAX);
        if (!(s->features & SMTP_FEAT_STARTTLS)) {
            strbuf_printf(&text, "TLS is required, but was not offered by host %s", ha);
            smtp_hello_fail(st, s, "4.7.4", text.data);
        } else {
            smtp_hello_fail(st, s, "4.7.5", "TLS is required, but our TLS engine is unavailable");
        }
        strbuf_release(&text);
        return -1;
    }
    return 0;
}

/* A SASL failure for every pending recipient: a soft error, so that the mail
 * waits while the password is fixed (a server's 5xx is made 4xx here; the
 * caller undoes that when smtp_sasl_auth_soft_bounce = no). */
static int smtp_sasl_fail(struct smtp_state *st, struct smtp_session *s, const char *dsn,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int smtp_sasl_fail(struct smtp_state *st, struct smtp_session *s, const char *dsn,
                          const char *fmt, ...)
{
    va_list ap;

    strbuf_reset(&st->last_why);
    va_start(ap, fmt);
    (void) strbuf_vprintf(&st->last_why, fmt, ap);
    va_end(ap);
    snprintf(st->last_dsn, sizeof(st->last_dsn), "%s", dsn);
    st->last_dsn[0] = '4';
    snprintf(st->last_relay, sizeof(st->last_relay), "%s", s->relay);
    return -1;
}

/*
 * RFC 4954 AUTH after EHLO, when the server offers it and the password table
 * lists this server; without credentials the mail goes unauthenticated, as
 * Postfix does. 0, or -1 with last_why set (the session is then closed; *hard
 * when a 5xx must bounce).
 */
static int smtp_sasl_login(struct smtp_state *st, struct smtp_session *s, int *hard)
{
    struct strbuf mechs, out, cmd;
    struct smtp_resp r;
    struct xsasl_client *cl = NULL;
    char *user = NULL, *pass = NULL, ha[SMTP_RELAY_MAX];
    const char *mech = NULL;
    enum xsasl_status xs;
    enum smtp_io io = SMTP_IO_BROKEN;
    int found, steps = 0, ret = -1, deferred_initial = 0;

    smtp_hostaddr(s, ha, sizeof(ha));
    if ((found = smtp_sasl_lookup(st, s, &user, &pass)) < 0)
        return smtp_sasl_fail(st, s, "4.3.0", "%s_sasl_password_maps lookup error",
                              smtp_par.lmtp ? "lmtp" : "smtp");
    if (found == 0) {
        s->features &= ~SMTP_FEAT_AUTH;
        return 0;
    }
    strbuf_init(&mechs, 64, SMTP_SASL_MECHS_MAX);
    strbuf_init(&out, 256, XSASL_TEXT_MAX + 1);
    strbuf_init(&cmd, 256, XSASL_TEXT_MAX + 64);
    smtp_resp_init(&r);
    smtp_sasl_filter(s->sasl_mechs, &mechs);
    if (mechs.len == 0) {
        if (*s->sasl_mechs == 0)
            msg_warn("%s offered null AUTH mechanism list", s->relay);
        else
            msg_warn("%s offered no supported AUTH mechanisms: '%s'", s->relay, s->sasl_mechs);
        smtp_sasl_fail(st, s, "4.7.0", "SASL authentication failed: server %s offered no "
                       "compatible authentication mechanisms for this type of connection "
                       "security", ha);
        goto done;
    }
    if ((cl = smtp_sasl_client(s, user, pass, &out)) == NULL) {
        msg_warn("%s", out.data);
        smtp_sasl_fail(st, s, "4.7.0", "SASL authentication failed; cannot authenticate to "
                       "server %s: %s", ha, out.data);
        goto done;
    }
    if (xsasl_client_first(cl, mechs.data, &mech, &out) != XSASL_DONE || mech == NULL) {
        smtp_sasl_fail(st, s, "4.7.0", "SASL authentication failed; cannot authenticate to "
                       "server %s: %s", ha, out.data);
        goto done;
    }
    /* RFC 4954 section 4: no initial response that would make the line too long. */
    if (out.len > 0 && strlen(mech) + out.len + 8 <= 512) {
        strbuf_printf(&cmd, "AUTH %s %s", mech, out.data);
        strbuf_reset(&out);
    } else {
        strbuf_printf(&cmd, "AUTH %s", mech);
        deferred_initial = out.len > 0;
    }
    for (;;) {
        if (smtp_send(s, cmd.data, 1) < 0
            || (io = smtp_resp_read(s, smtp_par.helo_ms, &r)) != SMTP_IO_OK) {
            smtp_broken(st, s, io == SMTP_IO_MALFORMED ? io : SMTP_IO_BROKEN,
                        "performing the AUTH handshake");
            goto done;
        }
        if (r.code != 334)
            break;
        if (++steps > 100) {
            smtp_sasl_fail(st, s, "4.3.0", "SASL authentication failed; authentication "
                           "protocol loop with server %s", ha);
            goto done;
        }
        strbuf_reset(&cmd);
        if (deferred_initial) {
            /* The initial response goes now; the server's challenge must be empty. */
            if (r.lines.len > 5 && r.lines.data[4] != '\n') {
                smtp_sasl_fail(st, s, "4.7.0", "SASL authentication failed; non-empty "
                               "initial %s challenge from server %s", mech, ha);
                goto done;
            }
            strbuf_puts(&cmd, out.data);
            deferred_initial = 0;
            continue;
        }
        /* The challenge: the first line after "334 ", without the newline. */
        {
            const char *ch = r.lines.len > 4 ? r.lines.data + 4 : "";
            size_t n = strcspn(ch, "\n");
            char *challenge = xstrndup(ch, n);

            xs = xsasl_client_next(cl, challenge, &out);
            free(challenge);
        }
        if (xs != XSASL_DONE) {
            smtp_sasl_fail(st, s, "4.7.0", "SASL authentication failed; cannot authenticate "
                           "to server %s: %s", ha, out.data);
            goto done;
        }
        strbuf_puts(&cmd, out.data);
    }
    if (r.code / 100 != 2) {
        smtp_sasl_fail(st, s, r.dsn, "SASL authentication failed; server %s said: %s", ha,
                       r.text.data);
        if (r.code / 100 == 5 && !smtp_sasl_soft_bounce()) {
            st->last_dsn[0] = '5';
            *hard = 1;
        }
        goto done;
    }
    ret = 0;

done:
    xsasl_client_free(&cl);
    if (pass) {
        memset(pass, 0, strlen(pass));
        free(pass);
    }
    free(user);
    strbuf_release(&mechs);
    strbuf_release(&out);
    strbuf_release(&cmd);
    smtp_resp_free(&r);
    return ret;
}

int smtp_proto_hello(struct smtp_state *st, struct smtp_session *s, int *hard)
{
    struct smtp_resp r;
    char ha[SMTP_RELAY_MAX];
    enum smtp_io io;
    int esmtp = 1;

    *hard = 0;
    smtp_resp_init(&r);
    smtp_hostaddr(s, ha, sizeof(ha));
    if (s->is_wrapper) {
        struct tls_ctx *ctx = smtp_tls_context(&st->tls);

        if (ctx == NULL) {
            smtp_hello_fail(st, s, "4.7.5", "TLS is required, but our TLS engine is unavailable");
            goto fail;
        }
        if (smtp_tls_start(st, s, ctx) < 0)
            goto fail;
    }
    if ((io = smtp_resp_read(s, smtp_par.helo_ms, &r)) != SMTP_IO_OK) {
        smtp_broken(st, s, io, "receiving the initial server greeting");
        goto fail;
    }
    if (r.code / 100 != 2) {
        /* smtp_skip_5xx_greeting: a server greeting 5xx is skipped, not believed. */
        strbuf_reset(&st->last_why);
        strbuf_printf(&st->last_why, "host %s refused to talk to me: %s", ha, r.text.data);
        snprintf(st->last_dsn, sizeof(st->last_dsn), "%s", r.dsn);
        st->last_dsn[0] = '4';
        if (r.code / 100 == 5 && !var_smtp_skip_5xx_greeting) {
            st->last_dsn[0] = '5';
            *hard = 1;
        }
        snprintf(st->last_relay, sizeof(st->last_relay), "%s", s->relay);
        goto fail;
    }
    if (!smtp_par.lmtp && !var_smtp_always_send_ehlo && strstr(r.text.data, "ESMTP") == NULL)
        esmtp = 0;
    if (smtp_hello_exchange(st, s, esmtp, hard, &r) < 0 || smtp_starttls(st, s, hard, &r) < 0)
        goto fail;
    smtp_resp_free(&r);
    if (smtp_sasl_enabled() && (s->features & SMTP_FEAT_AUTH))
        return smtp_sasl_login(st, s, hard);
    return 0;

fail:
    smtp_resp_free(&r);
    return -1;
}

/* The quoted address for a command, refused when it holds a control byte. */
static int smtp_quote(const char *internal, struct strbuf *out)
{
    size_t i;

    strbuf_reset(out);
    if (*internal)
        address_quote(internal, out);
    for (i = 0; i < out->len; i++)
        if ((unsigned char) out->data[i] < ' ' || out->data[i] == 0x7f)
            return -1;
    return 0;
}

enum smtp_cmd_kind { CMD_MAIL, CMD_RCPT, CMD_DATA };

struct smtp_txn {
    int *rcpt;                          /* request indices of the recipients sent */
    int nrcpt;
    int *accepted;                      /* indices accepted by RCPT, in order */
    int nacc;
    int mail_ok;
    struct smtp_resp mail_resp;
    int mail_failed;
    int data_354;
    int data_sent;                      /* DATA was written */
};

static void smtp_build_mail(const struct smtp_state *st, const struct smtp_session *s,
                            int utf8, struct strbuf *cmd)
{
    const struct deliver_request *req = st->req;
    struct strbuf q;

    strbuf_init(&q, 128, 4096);
    (void) smtp_quote(req->sender, &q);
    strbuf_reset(cmd);
    strbuf_printf(cmd, "MAIL FROM:<%s>", q.data);
    if (s->features & SMTP_FEAT_SIZE)
        strbuf_printf(cmd, " SIZE=%lld", (long long) req->content_length);
    if ((req->flags & DELIVER_FLAG_8BIT) && (s->features & SMTP_FEAT_8BITMIME))
        strbuf_puts(cmd, " BODY=8BITMIME");
    if (utf8)
        strbuf_puts(cmd, " SMTPUTF8");
    if (s->features & SMTP_FEAT_DSN) {
        if (req->dsn_ret && *req->dsn_ret)
            strbuf_printf(cmd, " RET=%s", req->dsn_ret);
        if (req->dsn_envid && *req->dsn_envid) {
            strbuf_puts(cmd, " ENVID=");
            smtp_xtext_encode(req->dsn_envid, cmd);
        }
    }
    strbuf_release(&q);
}

static int smtp_build_rcpt(const struct smtp_state *st, const struct smtp_session *s, int i,
                           struct strbuf *cmd)
{
    const struct deliver_rcpt *rc = &st->req->rcpt[i];
    struct strbuf q;
    int rcode;

    strbuf_init(&q, 128, 4096);
    rcode = smtp_quote(rc->address, &q);
    strbuf_reset(cmd);
    strbuf_printf(cmd, "RCPT TO:<%s>", q.data);
    if ((s->features & SMTP_FEAT_DSN) && rc->notify) {
        static const struct {
            int bit;
            const char *name;
        } bits[] = {{SMTP_NOTIFY_SUCCESS, "SUCCESS"}, {SMTP_NOTIFY_FAILURE, "FAILURE"},
                    {SMTP_NOTIFY_DELAY, "DELAY"}};
        size_t b;
        int any = 0;

        strbuf_puts(cmd, " NOTIFY=");
        if (rc->notify & SMTP_NOTIFY_NEVER) {
            strbuf_puts(cmd, "NEVER");
        } else {
            for (b = 0; b < sizeof(bits) / sizeof(bits[0]); b++)
                if (rc->notify & bits[b].bit) {
                    strbuf_printf(cmd, "%s%s", any++ ? "," : "", bits[b].name);
                }
        }
    }
    if ((s->features & SMTP_FEAT_DSN) && rc->dsn_orcpt && *rc->dsn_orcpt) {
        const char *semi = strchr(rc->dsn_orcpt, ';');

        if (semi && semi > rc->dsn_orcpt) {
            strbuf_printf(cmd, " ORCPT=%.*s;", (int) (semi - rc->dsn_orcpt), rc->dsn_orcpt);
            smtp_xtext_encode(semi + 1, cmd);
        }
    }
    strbuf_release(&q);
    return rcode;
}

/* Reads the reply to command k of the transaction and applies it. */
static enum smtp_io smtp_txn_reply(struct smtp_state *st, struct smtp_session *s,
                                   struct smtp_txn *t, enum smtp_cmd_kind kind, int idx,
                                   struct smtp_resp *r)
{
    enum smtp_io io;

    switch (kind) {
    case CMD_MAIL:
        if ((io = smtp_resp_read(s, smtp_par.mail_ms, &t->mail_resp)) != SMTP_IO_OK)
            return io;
        t->mail_ok = t->mail_resp.code / 100 == 2;
        t->mail_failed = !t->mail_ok;
        return SMTP_IO_OK;
    case CMD_RCPT:
        if ((io = smtp_resp_read(s, smtp_par.rcpt_ms, r)) != SMTP_IO_OK)
            return io;
        if (t->mail_failed)
            return SMTP_IO_OK;          /* the MAIL reply decides */
        if (r->code / 100 == 2)
            t->accepted[t->nacc++] = idx;
        else
            smtp_reply_fail(st, s, idx, r, "RCPT TO");
        return SMTP_IO_OK;
    case CMD_DATA:
        if ((io = smtp_resp_read(s, smtp_par.data_init_ms, r)) != SMTP_IO_OK)
            return io;
        t->data_354 = r->code == 354;
        if (!t->data_354 && !t->mail_failed) {
            int j;

            for (j = 0; j < t->nacc; j++)
                smtp_reply_fail(st, s, t->accepted[j], r, "DATA");
            t->nacc = 0;
        }
        return SMTP_IO_OK;
    }
    return SMTP_IO_MALFORMED;
}

/* Every recipient of the transaction that has no outcome yet gets the broken
 * session's reason (soft). */
static void smtp_txn_broken(struct smtp_state *st, struct smtp_session *s, struct smtp_txn *t)
{
    struct strbuf why;
    char dsn[sizeof(st->last_dsn)];
    int j;

    /* Copies: smtp_soft writes the reason it is given back into st. */
    memcpy(dsn, st->last_dsn, sizeof(dsn));
    strbuf_init(&why, 256, DELIVER_TEXT_MAX);
    strbuf_set(&why, st->last_why.data);
    for (j = 0; j < t->nrcpt; j++)
        smtp_soft(st, s, t->rcpt[j], dsn, why.data);
    strbuf_release(&why);
}

/* The end of data: one reply (SMTP) or one per accepted recipient (LMTP). */
static enum smtp_io smtp_txn_finish(struct smtp_state *st, struct smtp_session *s,
                                    struct smtp_txn *t, struct smtp_resp *r)
{
    int j;

    for (j = 0; j < t->nacc; j++) {
        enum smtp_io io;
        int i = t->accepted[j];

        if (j == 0 || smtp_par.lmtp) {
            if ((io = smtp_resp_read(s, smtp_par.data_done_ms, r)) != SMTP_IO_OK) {
                /* Recipients already answered keep their outcome. */
                return io;
            }
        }
        if (r->code / 100 == 2)
            smtp_report(st, i, DELIVER_SENT, r->dsn, s->relay, r->text.data);
        else
            smtp_reply_fail(st, s, i, r, "end of DATA");
    }
    return SMTP_IO_OK;
}

/* Recipients that cannot go to this server at all (SMTPUTF8, SIZE, binary). */
static int smtp_txn_precheck(struct smtp_state *st, struct smtp_session *s, int *utf8)
{
    const struct deliver_request *req = st->req;
    char ha[SMTP_RELAY_MAX];
    struct strbuf text;
    const char *dsn = NULL;
    int i, needs_utf8 = 0;

    strbuf_init(&text, 256, DELIVER_TEXT_MAX);
    smtp_hostaddr(s, ha, sizeof(ha));
    if (req->flags & DELIVER_FLAG_SMTPUTF8) {
        needs_utf8 = address_has_8bit(req->sender);
        for (i = 0; i < req->rcpt_count && !needs_utf8; i++)
            needs_utf8 = !st->done[i] && address_has_8bit(req->rcpt[i].address);
    }
    *utf8 = (req->flags & DELIVER_FLAG_SMTPUTF8) && (s->features & SMTP_FEAT_SMTPUTF8);
    if (needs_utf8 && !(s->features & SMTP_FEAT_SMTPUTF8)) {
        dsn = "5.6.7";
        strbuf_printf(&text, "SMTPUTF8 is required, but was not offered by host %s", ha);
    } else if ((s->features & SMTP_FEAT_SIZE) && s->size_limit > 0
               && req->content_length > s->size_limit) {
        dsn = "5.3.4";
        strbuf_printf(&text, "message size %lld exceeds size limit %lld of server %s",
                      (long long) req->content_length, s->size_limit, ha);
    } else if ((req->flags & DELIVER_FLAG_BINARYMIME)) {
        dsn = "5.6.3";
        strbuf_printf(&text, "message has binary content that cannot be sent to host %s "
                      "without BDAT", ha);
    }
    if (dsn) {
        for (i = 0; i < req->rcpt_count; i++)
            if (!st->done[i])
                smtp_report(st, i, DELIVER_BOUNCE, dsn, s->relay, text.data);
    }
    strbuf_release(&text);
    return dsn ? -1 : 0;
}

enum smtp_sess_result smtp_proto_mail(struct smtp_state *st, struct smtp_session *s)
{
    const struct deliver_request *req = st->req;
    struct smtp_txn t;
    struct smtp_resp r;
    struct strbuf cmd, why;
    enum smtp_cmd_kind *kinds;
    int *idx, ncmd = 0, i, k, utf8, batch, downgrade, verify = req->flags & DELIVER_FLAG_VERIFY;
    enum smtp_sess_result result = SMTP_SESS_OK;
    enum smtp_io io = SMTP_IO_OK;
    int any_reply = 0;

    if (smtp_txn_precheck(st, s, &utf8) < 0)
        return SMTP_SESS_OK;
    memset(&t, 0, sizeof(t));
    t.rcpt = calloc((size_t) req->rcpt_count + 1, sizeof(int));
    t.accepted = calloc((size_t) req->rcpt_count + 1, sizeof(int));
    kinds = calloc((size_t) req->rcpt_count + 2, sizeof(*kinds));
    idx = calloc((size_t) req->rcpt_count + 2, sizeof(int));
    if (t.rcpt == NULL || t.accepted == NULL || kinds == NULL || idx == NULL)
        msg_fatal("out of memory");
    smtp_resp_init(&r);
    smtp_resp_init(&t.mail_resp);
    strbuf_init(&cmd, 256, 64 * 1024);
    strbuf_init(&why, 256, 4096);

    kinds[ncmd++] = CMD_MAIL;
    for (i = 0; i < req->rcpt_count; i++) {
        struct strbuf q;

        if (st->done[i])
            continue;
        strbuf_init(&q, 64, 4096);
        if (smtp_quote(req->rcpt[i].address, &q) < 0) {
            smtp_report(st, i, DELIVER_BOUNCE, "5.1.3", s->relay,
                        "bad address syntax: control character in recipient");
            strbuf_release(&q);
            continue;
        }
        strbuf_release(&q);
        t.rcpt[t.nrcpt++] = i;
        kinds[ncmd] = CMD_RCPT;
        idx[ncmd++] = i;
    }
    if (t.nrcpt == 0)
        goto out;
    if (!verify)
        kinds[ncmd++] = CMD_DATA;
    batch = (s->features & SMTP_FEAT_PIPELINING) ? SMTP_PIPELINE_BATCH : 1;

    /* Write a batch of commands, then read its replies, until all are done. */
    for (k = 0; k < ncmd && io == SMTP_IO_OK;) {
        int end = k + batch < ncmd ? k + batch : ncmd, j;
        const char *stage = "sending MAIL FROM";

        for (j = k; j < end; j++) {
            if (kinds[j] == CMD_MAIL)
                smtp_build_mail(st, s, utf8, &cmd);
            else if (kinds[j] == CMD_RCPT)
                (void) smtp_build_rcpt(st, s, idx[j], &cmd);
            else
                strbuf_set(&cmd, "DATA");
            if (smtp_send(s, cmd.data, 0) < 0)
                break;
            if (kinds[j] == CMD_DATA)
                t.data_sent = 1;
        }
        stream_set_timeout(s->stream, smtp_par.mail_ms);
        if (j < end || stream_flush(s->stream) < 0) {
            io = SMTP_IO_BROKEN;
            if (s->reused && !any_reply) {
                result = SMTP_SESS_STALE;
                goto out;
            }
            smtp_broken(st, s, io, kinds[k] == CMD_MAIL ? "sending MAIL FROM" : "sending RCPT TO");
            break;
        }
        for (j = k; j < end; j++) {
            stage = kinds[j] == CMD_MAIL ? "sending MAIL FROM"
                : kinds[j] == CMD_RCPT ? "sending RCPT TO" : "sending DATA command";
            if ((io = smtp_txn_reply(st, s, &t, kinds[j], idx[j], &r)) != SMTP_IO_OK)
                break;
            any_reply = 1;
            /* A reused session the server gave up on: start over elsewhere. */
            if (kinds[j] == CMD_MAIL && s->reused && t.mail_resp.code == 421) {
                io = SMTP_IO_BROKEN;
                break;
            }
        }
        if (io != SMTP_IO_OK) {
            if (s->reused && (!any_reply || (t.mail_failed && t.mail_resp.code == 421))) {
                result = SMTP_SESS_STALE;
                goto out;
            }
            smtp_broken(st, s, io, stage);
            break;
        }
        k = end;
    }
    if (io != SMTP_IO_OK) {
        smtp_txn_broken(st, s, &t);
        result = SMTP_SESS_FAIL;
        goto out;
    }
    if (t.mail_failed) {
        for (i = 0; i < t.nrcpt; i++)
            smtp_reply_fail(st, s, t.rcpt[i], &t.mail_resp, "MAIL FROM");
        result = t.mail_resp.code == 421 ? SMTP_SESS_FAIL : SMTP_SESS_DONE_CLOSE;
        goto out;
    }
    if (verify) {
        for (i = 0; i < t.nacc; i++)
            smtp_report(st, t.accepted[i], DELIVER_SENT, "2.1.5", s->relay,
                        "deliverable address");
        (void) smtp_send(s, "RSET", 1);
        if (smtp_resp_read(s, smtp_par.rset_ms, &r) != SMTP_IO_OK || r.code / 100 != 2)
            result = SMTP_SESS_DONE_CLOSE;
        goto out;
    }
    if (!t.data_354) {
        result = SMTP_SESS_DONE_CLOSE;
        goto out;
    }
    /* 354: the content, or a lone "." when every recipient was refused. */
    stream_set_timeout(s->stream, smtp_par.data_xfer_ms);
    if (t.nacc > 0) {
        int downgrade_ok = !var_disable_mime_output_conversion;

        downgrade = (req->flags & DELIVER_FLAG_8BIT) && !(s->features & SMTP_FEAT_8BITMIME)
            && downgrade_ok;
        if (smtp_body_send(s->stream, req, downgrade, &why) < 0) {
            if (stream_status(s->stream, STREAM_DIR_WRITE) == STREAM_OK) {
                /* The queue file failed us: never end the data, drop the session. */
                for (i = 0; i < t.nacc; i++)
                    smtp_report(st, t.accepted[i], DELIVER_DEFER, "4.3.0", s->relay, why.data);
                result = SMTP_SESS_FAIL;
                goto out;
            }
            smtp_broken(st, s, SMTP_IO_BROKEN, "sending message body");
            smtp_txn_broken(st, s, &t);
            result = SMTP_SESS_FAIL;
            goto out;
        }
    }
    if (stream_write(s->stream, ".\r\n", 3) < 0 || stream_flush(s->stream) < 0) {
        smtp_broken(st, s, SMTP_IO_BROKEN, "sending message body");
        smtp_txn_broken(st, s, &t);
        result = SMTP_SESS_FAIL;
        goto out;
    }
    if (t.nacc == 0) {
        if (smtp_resp_read(s, smtp_par.data_done_ms, &r) != SMTP_IO_OK)
            result = SMTP_SESS_FAIL;
        goto out;
    }
    if ((io = smtp_txn_finish(st, s, &t, &r)) != SMTP_IO_OK) {
        smtp_broken(st, s, io, "sending end of data -- message may be sent more than once");
        smtp_txn_broken(st, s, &t);
        result = SMTP_SESS_FAIL;
    }

out:
    smtp_resp_free(&r);
    smtp_resp_free(&t.mail_resp);
    strbuf_release(&cmd);
    strbuf_release(&why);
    free(t.rcpt);
    free(t.accepted);
    free(kinds);
    free(idx);
    return result;
}

void smtp_session_close(struct smtp_session *s)
{
    if (s->stream)
        (void) stream_close(&s->stream);
    s->fd = -1;
}

void smtp_proto_quit(struct smtp_session *s)
{
    if (s->stream == NULL)
        return;
    stream_set_timeout(s->stream, smtp_par.quit_ms > 0 ? smtp_par.quit_ms : 1);
    /* Under TLS the close_notify still has to go out after QUIT. */
    if (smtp_send(s, "QUIT", 1) == 0 && !s->tls)
        (void) shutdown(stream_fd(s->stream), SHUT_WR);
    smtp_session_close(s);
}
