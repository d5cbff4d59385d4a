/*
 * smtpd_sasl.c - SMTP AUTH (RFC 4954) in the server: what EHLO announces, the
 * AUTH command and its challenge/response exchange, and the login that the
 * restrictions (permit_sasl_authenticated), the policy service, the milters,
 * the log and the Received: header then see. The SASL mechanics are
 * util/xsasl.h's; this file only speaks SMTP.
 *
 * Must never: accept AUTH in stand-alone mode, in a mail transaction, twice in
 * a session, or without TLS when smtpd_tls_auth_only is set; read a response
 * line without the smtpd_sasl_response_limit and smtpd_timeout bounds; log a
 * response; or let an exchange that failed leave a login behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "match_list.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "smtpd.h"
#include "stream.h"
#include "xsasl.h"

static struct match_list *smtpd_sasl_exceptions;
static int smtpd_sasl_ready;            /* the library is initialized */

void smtpd_sasl_init(void)
{
    struct strbuf err;
    unsigned flags;

    if (!var_smtpd_sasl_auth_enable)
        return;
    if (strcmp(var_smtpd_sasl_type, "cyrus") != 0)
        msg_fatal("smtpd_sasl_type: unsupported SASL server implementation \"%s\" "
                  "(this server supports: cyrus)", var_smtpd_sasl_type);
    strbuf_init(&err, 128, 1024);
    if (xsasl_security_parse(var_smtpd_sasl_security_options, &flags, &err) < 0)
        msg_fatal("smtpd_sasl_security_options: %s", err.data);
    if (xsasl_security_parse(var_smtpd_sasl_tls_security_options, &flags, &err) < 0)
        msg_fatal("smtpd_sasl_tls_security_options: %s", err.data);
    if (var_smtpd_sasl_exceptions_networks && *var_smtpd_sasl_exceptions_networks
        && (smtpd_sasl_exceptions = match_list_open("smtpd_sasl_exceptions_networks",
                                                    MATCH_LIST_NAMADR,
                                                    var_smtpd_sasl_exceptions_networks,
                                                    &err)) == NULL)
        msg_fatal("%s", err.data);
    if (xsasl_server_init(var_smtpd_sasl_path, var_cyrus_sasl_config_path, &err) < 0)
        msg_fatal("%s", err.data);
    strbuf_release(&err);
    smtpd_sasl_ready = 1;
}

int smtpd_sasl_enabled(const struct smtpd_session *s)
{
    return smtpd_sasl_ready && !s->standalone && (s->ext_offered & SMTPD_EXT_AUTH);
}

/* A SASL handle fit for the session's current encryption: made on first use,
 * again after STARTTLS, and again after an exchange (failed ones may not be
 * repeated on the same Cyrus handle). 0, or -1 when none can be made. */
static int smtpd_sasl_activate(struct smtpd_session *s)
{
    struct xsasl_server_args args;
    struct strbuf err;
    int tls = s->tls != NULL;

    if (s->sasl && !s->sasl_used && s->sasl_tls == tls)
        return 0;
    xsasl_server_free(&s->sasl);
    s->sasl_used = 0;
    memset(&args, 0, sizeof(args));
    args.service = var_smtpd_sasl_service;
    args.server_name = var_myhostname;
    args.realm = var_smtpd_sasl_local_domain;
    args.local_addr = s->server_addr;
    args.local_port = s->server_port;
    args.remote_addr = s->addr;
    args.remote_port = s->port;
    args.security = tls ? var_smtpd_sasl_tls_security_options : var_smtpd_sasl_security_options;
    strbuf_init(&err, 128, 1024);
    s->sasl = xsasl_server_create(&args, &err);
    if (s->sasl == NULL)
        msg_warn("%s: %s", s->namaddr, err.data);
    strbuf_release(&err);
    s->sasl_tls = tls;
    return s->sasl ? 0 : -1;
}

const char *smtpd_sasl_ehlo_mechanisms(struct smtpd_session *s)
{
    if (!smtpd_sasl_enabled(s))
        return NULL;
    if (var_smtpd_tls_auth_only && s->tls == NULL)
        return NULL;
    /* A table that fails counts as a match: AUTH is then not offered. */
    if (smtpd_sasl_exceptions
        && match_list_host(smtpd_sasl_exceptions, s->name, s->addr) != 0)
        return NULL;
    if (smtpd_sasl_activate(s) < 0 || *xsasl_server_mechanisms(s->sasl) == '\0')
        return NULL;
    return xsasl_server_mechanisms(s->sasl);
}

void smtpd_sasl_session_end(struct smtpd_session *s)
{
    xsasl_server_free(&s->sasl);
    xfree(&s->sasl_method);
    xfree(&s->sasl_username);
    xfree(&s->sasl_sender);
    s->check.sasl_method = s->check.sasl_username = s->check.sasl_sender = NULL;
    strbuf_release(&s->sasl_reply);
}

/*
 * Reads one response line into *text (NUL-terminated, owned by the caller).
 * 1 for a line, 0 when it was over the limit (answered here), -1 when the
 * client is gone (logged here).
 */
static int smtpd_sasl_read(struct smtpd_session *s, char **text)
{
    size_t limit = var_smtpd_sasl_response_limit > 0
        && var_smtpd_sasl_response_limit < STREAM_LINE_MAX
        ? (size_t) var_smtpd_sasl_response_limit : STREAM_LINE_MAX;
    enum stream_eol eol;
    const char *line;
    ssize_t n;
    int pieces = 0;

    if (stream_flush(s->client) < 0) {
        msg_info("lost connection after %s from %s", s->where, s->namaddr);
        s->hangup = 1;
        return -1;
    }
    n = stream_read_line(s->client, &line, limit, &eol);
    if (n < 0 || eol == STREAM_EOL_NONE) {
        smtpd_session_lost(s);
        return -1;
    }
    if (eol == STREAM_EOL_LIMIT) {
        do {
            n = stream_read_line(s->client, &line, limit, &eol);
            if (n < 0 || eol == STREAM_EOL_NONE) {
                smtpd_session_lost(s);
                return -1;
            }
        } while (eol == STREAM_EOL_LIMIT && ++pieces < 1000000);
        smtpd_reply(s, "500 5.5.6 SASL response limit exceeded");
        return 0;
    }
    *text = xstrndup(line, (size_t) n);
    /* A NUL is never base64: make sure the decoder sees a character that is not. */
    if (memchr(line, '\0', (size_t) n))
        (*text)[0] = '!';
    return 1;
}

static void smtpd_sasl_failed(struct smtpd_session *s, const char *mech, const char *reason)
{
    const char *user = s->sasl ? xsasl_server_username(s->sasl) : NULL;

    msg_warn("%s: SASL %s authentication failed: %s, sasl_username=%.100s", s->namaddr, mech,
             reason && *reason ? reason : "(reason unavailable)", user ? user : "(unavailable)");
}

int smtpd_auth_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    char mech[SMTP_CMD_MECH_MAX + 1], *resp = NULL;
    struct strbuf init;
    enum xsasl_status st;
    const char *user;
    int have_init;

    if (var_smtpd_helo_required && s->helo_name == NULL) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return -1;
    }
    if (!smtpd_sasl_enabled(s)) {
        smtpd_reply(s, "503 5.5.1 Error: authentication not enabled");
        return -1;
    }
    if (s->have_mail) {
        smtpd_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        return -1;
    }
    if (var_smtpd_tls_auth_only && s->tls == NULL) {
        /* RFC 4954 section 4 */
        smtpd_reply(s, "504 5.5.4 Encryption required for requested authentication mechanism");
        return -1;
    }
    if (s->sasl_username) {
        smtpd_reply(s, "503 5.5.1 Error: already authenticated");
        return -1;
    }
    strbuf_init(&init, 64, XSASL_TEXT_MAX);
    if (smtp_cmd_parse_auth(cmd->arg, cmd->arg_len, mech, &init, &have_init) < 0) {
        strbuf_release(&init);
        smtpd_reply(s, "501 5.5.4 Syntax: AUTH mechanism");
        return -1;
    }
    if (smtpd_sasl_activate(s) < 0) {
        strbuf_release(&init);
        smtpd_reply(s, "454 4.7.0 Temporary authentication failure: "
                    "server initialization failed");
        return -1;
    }
    if (!xsasl_server_offers(s->sasl, mech)) {
        strbuf_release(&init);
        smtpd_sasl_failed(s, mech, "no mechanism available");
        smtpd_reply(s, "504 5.5.4 Unrecognized authentication type");
        return -1;
    }
    s->sasl_used = 1;
    if (s->sasl_reply.cap == 0)
        strbuf_init(&s->sasl_reply, 256, XSASL_TEXT_MAX + 1);
    st = xsasl_server_first(s->sasl, mech, have_init ? init.data : NULL, &s->sasl_reply);
    strbuf_release(&init);
    while (st == XSASL_MORE) {
        smtpd_reply(s, "334 %s", s->sasl_reply.data);
        if (smtpd_sasl_read(s, &resp) <= 0)
            return -1;
        if (strcmp(resp, "*") == 0) {
            free(resp);
            msg_warn("%s: SASL %s authentication aborted", s->namaddr, mech);
            smtpd_reply(s, "501 5.7.0 Authentication aborted");
            return -1;
        }
        st = xsasl_server_next(s->sasl, resp, &s->sasl_reply);
        free(resp);
    }
    if (st == XSASL_FORM) {
        smtpd_sasl_failed(s, mech, "malformed base64 text");
        smtpd_reply(s, "501 5.5.2 Cannot decode response");
        return -1;
    }
    if (st != XSASL_DONE) {
        smtpd_sasl_failed(s, mech, s->sasl_reply.data);
        /* RFC 4954 section 6 */
        if (st == XSASL_TEMP)
            smtpd_reply(s, "454 4.7.0 Temporary authentication failure: %s", s->sasl_reply.data);
        else
            smtpd_reply(s, "535 5.7.8 Error: authentication failed: %s", s->sasl_reply.data);
        return -1;
    }
    if ((user = xsasl_server_username(s->sasl)) == NULL || *user == '\0') {
        smtpd_sasl_failed(s, mech, "no user name from the SASL library");
        smtpd_reply(s, "454 4.7.0 Temporary authentication failure: no user name");
        return -1;
    }
    s->sasl_username = xstrdup(user);
    s->sasl_method = xstrdup(mech);
    s->check.sasl_username = s->sasl_username;
    s->check.sasl_method = s->sasl_method;
    smtpd_reply(s, "235 2.7.0 Authentication successful");
    return 0;
}
