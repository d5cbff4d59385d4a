/*
 * smtp_sasl.c - the client side of SMTP AUTH: the settings (smtp_sasl_* or,
 * for LMTP, lmtp_sasl_*), the password table, the mechanism filter and the
 * SASL client handle. The AUTH exchange itself is in smtp_proto.c.
 *
 * Credentials are looked up as Postfix does: first the server's host name,
 * then the nexthop as the request names it ("[host]:port", "domain"); the
 * value is "username:password" (the password may hold colons).
 * Must never: log a password, or treat a table that failed as "no password"
 * (that would send the mail unauthenticated): the caller defers instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dict.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "smtp.h"
#include "xsasl.h"

static struct dict_list *smtp_sasl_passwd;
static const char *smtp_sasl_filter_list;
static const char *smtp_sasl_security, *smtp_sasl_tls_security;
static const char *smtp_sasl_prefix;   /* "smtp" or "lmtp", for parameter names */
static int smtp_sasl_soft;

int smtp_sasl_soft_bounce(void)
{
    return smtp_sasl_soft;
}

int smtp_sasl_enabled(void)
{
    return smtp_sasl_passwd != NULL;
}

void smtp_sasl_init(void)
{
    const char *maps;
    struct strbuf err;
    unsigned flags;
    int enable;

    smtp_sasl_prefix = smtp_par.lmtp ? "lmtp" : "smtp";
    enable = smtp_par.lmtp ? var_lmtp_sasl_auth_enable : var_smtp_sasl_auth_enable;
    maps = smtp_par.lmtp ? var_lmtp_sasl_password_maps : var_smtp_sasl_password_maps;
    smtp_sasl_filter_list = smtp_par.lmtp ? var_lmtp_sasl_mechanism_filter
        : var_smtp_sasl_mechanism_filter;
    smtp_sasl_security = smtp_par.lmtp ? var_lmtp_sasl_security_options
        : var_smtp_sasl_security_options;
    smtp_sasl_tls_security = smtp_par.lmtp ? var_lmtp_sasl_tls_security_options
        : var_smtp_sasl_tls_security_options;
    smtp_sasl_soft = smtp_par.lmtp ? var_lmtp_sasl_auth_soft_bounce
        : var_smtp_sasl_auth_soft_bounce;
    if (!enable)
        return;
    if (strcmp(var_smtp_sasl_type, "cyrus") != 0)
        msg_fatal("smtp_sasl_type: unsupported SASL client implementation \"%s\" "
                  "(this client supports: cyrus)", var_smtp_sasl_type);
    if (maps == NULL || *maps == '\0')
        msg_fatal("specify a password table via the `%s_sasl_password_maps' "
                  "configuration parameter", smtp_sasl_prefix);
    strbuf_init(&err, 128, 1024);
    if (xsasl_security_parse(smtp_sasl_security, &flags, &err) < 0)
        msg_fatal("%s_sasl_security_options: %s", smtp_sasl_prefix, err.data);
    if (xsasl_security_parse(smtp_sasl_tls_security, &flags, &err) < 0)
        msg_fatal("%s_sasl_tls_security_options: %s", smtp_sasl_prefix, err.data);
    if ((smtp_sasl_passwd = dict_list_open(maps, DICT_FLAG_FOLD_KEY, &err)) == NULL)
        msg_fatal("%s_sasl_password_maps: %s", smtp_sasl_prefix, err.data);
    if (xsasl_client_init(var_cyrus_sasl_config_path, &err) < 0)
        msg_fatal("%s", err.data);
    strbuf_release(&err);
}

int smtp_sasl_lookup(const struct smtp_state *st, const struct smtp_session *s, char **user,
                     char **pass)
{
    const char *keys[2], *value = NULL;
    char *colon;
    int i;

    *user = *pass = NULL;
    keys[0] = s->host;
    keys[1] = st->req->nexthop;
    for (i = 0; i < 2 && value == NULL; i++) {
        if (keys[i] == NULL || *keys[i] == '\0')
            continue;
        value = dict_list_get(smtp_sasl_passwd, keys[i]);
        if (value == NULL && dict_list_error(smtp_sasl_passwd) != DICT_ERR_NONE) {
            msg_warn("%s: %s_sasl_password_maps lookup error", st->req->queue_id,
                     smtp_sasl_prefix);
            return -1;
        }
        if (value && msg_verbose)
            msg_info("SASL credentials found for key %s", keys[i]);
    }
    if (value == NULL)
        return 0;
    *user = xstrdup(value);
    if ((colon = strchr(*user, ':')) != NULL)
        *colon++ = '\0';
    *pass = xstrdup(colon ? colon : "");
    return 1;
}

/* Whether mech passes smtp_sasl_mechanism_filter (empty: every mechanism). */
static int smtp_sasl_allowed(const char *mech, size_t len)
{
    const char *p = smtp_sasl_filter_list;

    if (p == NULL || *p == '\0')
        return 1;
    while (*p) {
        size_t w;

        p += strspn(p, ", \t");
        w = strcspn(p, ", \t");
        if (w == len && strncasecmp(p, mech, len) == 0)
            return 1;
        p += w;
    }
    return 0;
}

void smtp_sasl_filter(const char *offered, struct strbuf *out)
{
    const char *p = offered;

    strbuf_reset(out);
    while (*p) {
        size_t w;

        p += strspn(p, " \t");
        w = strcspn(p, " \t");
        if (w > 0 && smtp_sasl_allowed(p, w)) {
            if (out->len > 0)
                (void) strbuf_putc(out, ' ');
            (void) strbuf_append(out, p, w);
        }
        p += w;
    }
}

struct xsasl_client *smtp_sasl_client(const struct smtp_session *s, const char *user,
                                      const char *pass, struct strbuf *err)
{
    /* In a TLS session smtp_sasl_tls_security_options applies instead. */
    return xsasl_client_create(smtp_sasl_prefix, s->host, s->tls ? smtp_sasl_tls_security
                               : smtp_sasl_security, user, pass, err);
}
