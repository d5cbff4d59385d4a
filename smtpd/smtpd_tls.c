/*
 * smtpd_tls.c - TLS in the SMTP server: the level and the one TLS context of
 * the process, STARTTLS (RFC 3207), wrapper mode (SMTPS), and the facts that
 * the log, Received:, milters and policy servers see.
 *
 * LEVELS
 *	smtpd_tls_security_level: empty or none (no STARTTLS), may (offer it),
 *	encrypt (offer and require it: before TLS only HELO, EHLO, STARTTLS,
 *	NOOP, HELP and QUIT are allowed, the rest get 530). verify, secure and
 *	the other client-side levels are taken as encrypt with a warning, as
 *	Postfix does. smtpd_tls_wrappermode = yes means TLS from the first byte
 *	and implies encrypt. A level that requires TLS also implies
 *	smtpd_tls_auth_only.
 *
 * BROKEN CONFIGURATION
 *	A context that cannot be made (a missing or bad certificate, key or CA
 *	file, an unknown protocol or cipher grade) is a warning that names the
 *	file; STARTTLS is then not offered and gets 454. At encrypt the commands
 *	that need TLS get "454 4.7.0 TLS not available due to local problem"
 *	(Postfix answers 530 there, which makes senders bounce mail over a local
 *	problem; 454 makes them retry). In wrapper mode the connection is
 *	dropped with Postfix's warning.
 *
 * NEVER
 *	Never reads plaintext that arrived before the handshake as a command
 *	(CVE-2011-0411: it is logged and discarded), never keeps HELO/EHLO or a
 *	transaction across STARTTLS, never sends a plaintext reply after a
 *	failed handshake, and never waits longer than smtpd_starttls_timeout
 *	for the handshake.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "smtpd.h"
#include "stream.h"
#include "tls.h"

enum smtpd_tls_level {
    SMTPD_TLS_NONE,
    SMTPD_TLS_MAY,
    SMTPD_TLS_ENCRYPT,
};

static enum smtpd_tls_level smtpd_tls_level;
static struct tls_ctx *smtpd_tls_ctx;
static int smtpd_tls_ask_ccert;         /* the context requests client certificates */

static enum smtpd_tls_level smtpd_tls_level_parse(const char *v)
{
    static const char *const stronger[] = {"fingerprint", "verify", "secure", "dane",
                                           "dane-only", NULL};
    int i;

    if (v == NULL || *v == 0 || strcasecmp(v, "none") == 0)
        return SMTPD_TLS_NONE;
    if (strcasecmp(v, "may") == 0)
        return SMTPD_TLS_MAY;
    if (strcasecmp(v, "encrypt") == 0)
        return SMTPD_TLS_ENCRYPT;
    for (i = 0; stronger[i]; i++)
        if (strcasecmp(v, stronger[i]) == 0) {
            msg_warn("smtpd_tls_security_level: unsupported TLS level \"%s\", "
                     "using \"encrypt\"", v);
            return SMTPD_TLS_ENCRYPT;
        }
    msg_fatal("Invalid TLS level \"%s\" (smtpd_tls_security_level: none, may or encrypt)", v);
}

void smtpd_tls_init(void)
{
    struct tls_ctx_opts o;
    struct strbuf why, exclude;
    int required;

    smtpd_tls_level = var_smtpd_tls_wrappermode ? SMTPD_TLS_ENCRYPT
        : smtpd_tls_level_parse(var_smtpd_tls_security_level);
    if (smtpd_tls_level == SMTPD_TLS_NONE)
        return;
    required = smtpd_tls_level == SMTPD_TLS_ENCRYPT;
    if (required)
        var_smtpd_tls_auth_only = 1;
    if (var_smtpd_tls_req_ccert && !required)
        msg_warn("Can't require client certs unless TLS is required");
    smtpd_tls_ask_ccert = var_smtpd_tls_ask_ccert || (required && var_smtpd_tls_req_ccert);

    strbuf_init(&exclude, 64, 4096);
    strbuf_puts(&exclude, var_smtpd_tls_exclude_ciphers ? var_smtpd_tls_exclude_ciphers : "");
    if (required && var_smtpd_tls_mandatory_exclude_ciphers
        && *var_smtpd_tls_mandatory_exclude_ciphers)
        strbuf_printf(&exclude, "%s%s", exclude.len ? " " : "",
                      var_smtpd_tls_mandatory_exclude_ciphers);
    if (smtpd_tls_ask_ccert)            /* anonymous ciphers cannot carry one */
        strbuf_printf(&exclude, "%saNULL", exclude.len ? " " : "");
    memset(&o, 0, sizeof(o));
    o.server = 1;
    o.cert_file = var_smtpd_tls_cert_file;
    o.key_file = var_smtpd_tls_key_file;
    o.ca_file = var_smtpd_tls_CAfile;
    o.ca_path = var_smtpd_tls_CApath;
    o.protocols = required ? var_smtpd_tls_mandatory_protocols : var_smtpd_tls_protocols;
    o.cipher_grade = required ? var_smtpd_tls_mandatory_ciphers : var_smtpd_tls_ciphers;
    o.exclude = exclude.data;
    o.ask_ccert = smtpd_tls_ask_ccert;
    o.verify_depth = (int) var_smtpd_tls_ccert_verifydepth;
    strbuf_init(&why, 128, 4096);
    if (var_smtpd_tls_loglevel >= 2)
        msg_info("initializing the server-side TLS engine");
    if ((smtpd_tls_ctx = tls_ctx_create(&o, &why)) == NULL)
        msg_warn("%s: disabling TLS support", why.data);
    strbuf_release(&why);
    strbuf_release(&exclude);
}

int smtpd_tls_can_offer(void)
{
    return smtpd_tls_ctx != NULL && smtpd_tls_level != SMTPD_TLS_NONE
        && !var_smtpd_tls_wrappermode;
}

int smtpd_tls_wrappermode(const struct smtpd_session *s)
{
    return !s->standalone && var_smtpd_tls_wrappermode;
}

const char *smtpd_tls_required_reply(const struct smtpd_session *s)
{
    if (s->standalone || s->tls || smtpd_tls_level != SMTPD_TLS_ENCRYPT)
        return NULL;
    if (smtpd_tls_ctx == NULL)
        return "454 4.7.0 TLS not available due to local problem";
    return "530 5.7.0 Must issue a STARTTLS command first";
}

/* --- after the handshake ---------------------------------------------------- */

/* xtext (RFC 3461), as Postfix encodes certificate names for policy servers. */
static char *smtpd_tls_xtext(const char *in)
{
    struct strbuf out;
    const unsigned char *p;

    strbuf_init(&out, 64, 4096);
    for (p = (const unsigned char *) in; *p; p++) {
        if (*p < '!' || *p > '~' || *p == '+' || *p == '=')
            strbuf_printf(&out, "+%02X", *p);
        else
            strbuf_putc(&out, (char) *p);
    }
    return out.data;                    /* the caller frees it */
}

/* Makes the facts available and logs the connection as Postfix does. */
static void smtpd_tls_established(struct smtpd_session *s, struct tls_conn *c)
{
    int alg_bits = 0, bits = tls_conn_cipher_bits(c, &alg_bits);
    int cert = tls_conn_peer_cert(c), trusted = tls_conn_peer_verified(c);

    s->tls = c;
    s->check.encryption_protocol = tls_conn_protocol(c);
    s->check.encryption_cipher = tls_conn_cipher(c);
    s->check.encryption_keysize = bits;
    xfree(&s->tls_ccert_subject);
    xfree(&s->tls_ccert_issuer);
    if (trusted && *tls_conn_peer_subject(c))
        s->tls_ccert_subject = smtpd_tls_xtext(tls_conn_peer_subject(c));
    if (trusted && *tls_conn_peer_issuer(c))
        s->tls_ccert_issuer = smtpd_tls_xtext(tls_conn_peer_issuer(c));
    s->check.ccert_subject = s->tls_ccert_subject;
    s->check.ccert_issuer = s->tls_ccert_issuer;
    if (cert && var_smtpd_tls_loglevel >= 2)
        msg_info("%s: subject_CN=%s, issuer=%s", s->namaddr, tls_conn_peer_subject(c),
                 tls_conn_peer_issuer(c));
    if (cert && !trusted && var_smtpd_tls_loglevel >= 2)
        msg_info("%s: certificate verification failed: %s", s->namaddr,
                 tls_conn_verify_error(c));
    if (var_smtpd_tls_loglevel >= 1)
        msg_info("%s TLS connection established from %s: %s with cipher %s (%d/%d bits)",
                 !cert ? "Anonymous" : trusted ? "Trusted" : "Untrusted", s->namaddr,
                 tls_conn_protocol(c), tls_conn_cipher(c), bits, alg_bits);
}

/*
 * The handshake under smtpd_starttls_timeout. 0 with s->tls set, or -1 after
 * logging why; the connection is then unusable and the session must end
 * without another word to the client.
 */
static int smtpd_tls_handshake(struct smtpd_session *s)
{
    struct strbuf why;
    struct tls_conn *c;
    const char *reason;

    if (var_smtpd_tls_loglevel >= 2)
        msg_info("setting up TLS connection from %s", s->namaddr);
    strbuf_init(&why, 128, 4096);
    c = tls_server_start(smtpd_tls_ctx, s->client, (int) (var_smtpd_starttls_timeout * 1000),
                         &why);
    if (c == NULL) {
        reason = why.data;
        if (strncmp(reason, "SSL_accept error: ", 18) == 0)
            reason += 18;
        else if (stream_status(s->client, STREAM_DIR_READ) == STREAM_TIMEOUT
                 || stream_status(s->client, STREAM_DIR_WRITE) == STREAM_TIMEOUT)
            reason = "Connection timed out";
        else if (stream_status(s->client, STREAM_DIR_READ) == STREAM_EOF)
            reason = "lost connection";
        msg_info("SSL_accept error from %s: %s", s->namaddr, reason);
        msg_info("lost connection after %s from %s", s->where, s->namaddr);
        strbuf_release(&why);
        s->hangup = 1;
        return -1;
    }
    strbuf_release(&why);
    smtpd_tls_established(s, c);
    return 0;
}

/*
 * smtpd_tls_req_ccert at encrypt: a client without a trusted certificate is
 * told so (after the handshake the channel works, so 421 can be sent).
 */
static int smtpd_tls_check_ccert(struct smtpd_session *s)
{
    const char *why;

    if (!(var_smtpd_tls_req_ccert && smtpd_tls_level == SMTPD_TLS_ENCRYPT)
        || tls_conn_peer_verified(s->tls))
        return 0;
    why = tls_conn_peer_cert(s->tls) ? "Client certificate not trusted"
        : "No client certificate presented";
    msg_info("NOQUEUE: abort: TLS from %s: %s", s->namaddr, why);
    if (!smtpd_tls_wrappermode(s)) {
        const char *line;
        enum stream_eol eol;

        /* Postfix reads the next command (EHLO, presumably) first. */
        stream_set_timeout(s->client, (int) (var_smtpd_timeout * 1000));
        (void) stream_read_line(s->client, &line, 4096, &eol);
    }
    smtpd_reply(s, "421 4.7.1 %s Error: %s", var_myhostname, why);
    s->hangup = 1;
    return -1;
}

int smtpd_tls_wrapper_start(struct smtpd_session *s)
{
    if (!smtpd_tls_wrappermode(s))
        return 0;
    if (smtpd_tls_ctx == NULL) {
        msg_warn("Wrapper-mode request dropped from %s for service %s."
                 " TLS context initialization failed. For details see"
                 " earlier warnings in your logs.", s->namaddr, s->service);
        s->hangup = 1;
        return -1;
    }
    if (smtpd_tls_handshake(s) < 0 || smtpd_tls_check_ccert(s) < 0)
        return -1;
    return 0;
}

int smtpd_starttls_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    size_t dropped;

    if (cmd->arg_len > 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: STARTTLS");
        return -1;
    }
    if (s->tls) {
        smtpd_reply(s, "554 5.5.1 Error: TLS already active");
        return -1;
    }
    if (s->standalone || smtpd_tls_level == SMTPD_TLS_NONE || var_smtpd_tls_wrappermode) {
        smtpd_reply(s, "502 5.5.1 Error: command not implemented");
        return -1;
    }
    if (smtpd_tls_ctx == NULL) {
        /* RFC 3207 section 4 */
        smtpd_reply(s, "454 4.7.0 TLS not available due to local problem");
        return -1;
    }
    if (!(s->ext_offered & SMTPD_EXT_STARTTLS)) {
        /* smtpd_discard_ehlo_keywords */
        smtpd_reply(s, "502 5.5.1 Error: command not implemented");
        return -1;
    }
    if (s->helo_name == NULL || strcmp(s->protocol, "ESMTP") != 0) {
        /* STARTTLS is an ESMTP extension: it exists only after EHLO. */
        smtpd_reply(s, "503 5.5.1 Error: send EHLO first");
        return -1;
    }
    /* RFC 3207 section 4.2: nothing may follow STARTTLS before the handshake. */
    (void) smtpd_flag_ill_pipelining(s);
    smtpd_reply(s, "220 2.0.0 Ready to start TLS");
    if (stream_flush(s->client) < 0) {
        msg_info("lost connection after %s from %s", s->where, s->namaddr);
        s->hangup = 1;
        return -1;
    }
    /* CVE-2011-0411: plaintext sent ahead must never count as a TLS command. */
    if ((dropped = stream_discard_input(s->client)) > 0 && msg_verbose)
        msg_info("%s: discarded %zu bytes of plaintext sent after STARTTLS",
                 s->namaddr, dropped);

    /* Back to the state after the greeting: the client must EHLO again, and
     * AUTH again (RFC 3207 section 4.2). */
    smtpd_transaction_reset(s);
    smtpd_sasl_session_end(s);
    xfree(&s->helo_name);
    s->check.helo_name = NULL;
    s->protocol = "SMTP";
    s->ext = 0;
    smtpd_enter_state(s, SMTPD_STATE_GREETED);
    if (smtpd_tls_handshake(s) < 0)
        return -1;
    (void) smtpd_tls_check_ccert(s);
    return 0;
}

/* --- what others see ------------------------------------------------------- */

/* Text for inside a header comment: no parentheses, backslashes or controls. */
static void smtpd_tls_comment_text(struct strbuf *h, const char *text)
{
    const unsigned char *p;

    for (p = (const unsigned char *) text; *p && p - (const unsigned char *) text < 256; p++)
        strbuf_putc(h, *p < 0x20 || *p == 0x7f || *p == '(' || *p == ')' || *p == '\\'
                    || *p == '"' ? '?' : (char) *p);
}

void smtpd_tls_received(const struct smtpd_session *s, struct strbuf *h)
{
    int alg_bits = 0, bits;

    if (!var_smtpd_tls_received_header || s->tls == NULL)
        return;
    bits = tls_conn_cipher_bits(s->tls, &alg_bits);
    strbuf_printf(h, "\t(using %s with cipher %s (%d/%d bits))\n", tls_conn_protocol(s->tls),
                  tls_conn_cipher(s->tls), bits, alg_bits);
    if (tls_conn_peer_cert(s->tls)) {
        strbuf_puts(h, "\t(Client CN \"");
        smtpd_tls_comment_text(h, tls_conn_peer_subject(s->tls));
        strbuf_puts(h, "\", Issuer \"");
        smtpd_tls_comment_text(h, tls_conn_peer_issuer(s->tls));
        strbuf_printf(h, "\" (%s))\n", tls_conn_peer_verified(s->tls) ? "verified OK"
                      : "not verified");
    } else if (smtpd_tls_ask_ccert) {
        strbuf_puts(h, "\t(Client did not present a certificate)\n");
    } else {
        strbuf_puts(h, "\t(No client certificate requested)\n");
    }
}

const char *smtpd_tls_macro(struct smtpd_session *s, const char *name, struct strbuf *buf)
{
    const char *v;

    if (s->tls == NULL)
        return NULL;
    if (strcmp(name, "{tls_version}") == 0)
        return tls_conn_protocol(s->tls);
    if (strcmp(name, "{cipher}") == 0)
        return tls_conn_cipher(s->tls);
    if (strcmp(name, "{cipher_bits}") == 0) {
        strbuf_reset(buf);
        strbuf_printf(buf, "%d", tls_conn_cipher_bits(s->tls, NULL));
        return buf->data;
    }
    /* As Postfix: the names of a trusted certificate only. */
    if (strcmp(name, "{cert_subject}") == 0)
        v = tls_conn_peer_subject(s->tls);
    else if (strcmp(name, "{cert_issuer}") == 0)
        v = tls_conn_peer_issuer(s->tls);
    else
        return NULL;
    return tls_conn_peer_verified(s->tls) && *v ? v : NULL;
}
