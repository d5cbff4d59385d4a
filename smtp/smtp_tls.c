/*
 * smtp_tls.c - TLS policy and handshakes of the SMTP/LMTP client.
 *
 * The policy of a delivery request comes from smtp_tls_security_level
 * (lmtp_tls_security_level for LMTP), overridden per destination by
 * smtp_tls_policy_maps, looked up as Postfix does: the nexthop exactly as
 * given ("[mx.example.com]:587", or the recipient domain when the nexthop
 * is empty), and for a plain domain its parent domains as ".example.com",
 * ".com" until one matches. A policy is a level and attributes: match=
 * (colon-separated, repeatable), protocols=, ciphers=, exclude=,
 * servername=. Levels: none, may, encrypt, verify, secure; dane and
 * dane-only work as may and encrypt (no DNSSEC here).
 *
 * Handshakes run on the session's stream after STARTTLS (or at connect in
 * smtp_tls_wrappermode) with the OpenSSL context for the policy's
 * protocols and ciphers (made once per combination and kept). The
 * certificate decides only at verify and secure: the chain must verify
 * against smtp_tls_CAfile/CApath and a name must match the policy's match
 * list (hostname = the server's name, nexthop, dot-nexthop, or literal
 * names).
 *
 * Must never: send mail in plain text when the level requires TLS, accept a
 * certificate that failed the level's checks, or let a broken certificate
 * stop mail at "may". Failure: the session's outcome in the state's last
 * reason, with Postfix's texts and enhanced codes (4.7.4, 4.7.5).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dict.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "smtp.h"
#include "stream.h"
#include "tls.h"

#define SMTP_TLS_CTX_MAX 8

static struct {
    char *key;                          /* protocols, grade and exclusions */
    struct tls_ctx *ctx;                /* NULL: it could not be made */
} smtp_tls_ctxs[SMTP_TLS_CTX_MAX];
static int smtp_tls_nctx;

static int smtp_tls_global_level;
static const char *smtp_tls_global_name;
static struct dict_list *smtp_tls_policy_list;

static const struct {
    const char *name;
    int level;
} smtp_tls_levels[] = {
    {"none", SMTP_TLS_NONE},
    {"may", SMTP_TLS_MAY},
    {"dane", SMTP_TLS_MAY},             /* no DNSSEC: opportunistic */
    {"encrypt", SMTP_TLS_ENCRYPT},
    {"dane-only", SMTP_TLS_ENCRYPT},    /* no DNSSEC: TLS required, unverified */
    {"verify", SMTP_TLS_VERIFY},
    {"secure", SMTP_TLS_SECURE},
};

static int smtp_tls_level_find(const char *name, size_t len)
{
    size_t i;

    if (len == 0)
        return SMTP_TLS_NONE;
    for (i = 0; i < sizeof(smtp_tls_levels) / sizeof(smtp_tls_levels[0]); i++)
        if (strlen(smtp_tls_levels[i].name) == len
            && strncasecmp(smtp_tls_levels[i].name, name, len) == 0)
            return smtp_tls_levels[i].level;
    return -1;
}

const char *smtp_tls_level_name(int level)
{
    switch (level) {
    case SMTP_TLS_MAY:
        return "may";
    case SMTP_TLS_ENCRYPT:
        return "encrypt";
    case SMTP_TLS_VERIFY:
        return "verify";
    case SMTP_TLS_SECURE:
        return "secure";
    default:
        return "none";
    }
}

void smtp_tls_init(void)
{
    const char *name = smtp_par.lmtp ? var_lmtp_tls_security_level : var_smtp_tls_security_level;
    struct strbuf err;

    smtp_tls_global_name = smtp_par.lmtp ? "lmtp_tls_security_level" : "smtp_tls_security_level";
    if (name == NULL)
        name = "";
    if ((smtp_tls_global_level = smtp_tls_level_find(name, strlen(name))) < 0)
        msg_fatal("%s: unknown TLS security level \"%s\" (none, may, encrypt, dane, "
                  "dane-only, verify, secure)", smtp_tls_global_name, name);
    /* Wrapper mode has no plain text to fall back to. */
    if (!smtp_par.lmtp && var_smtp_tls_wrappermode && smtp_tls_global_level < SMTP_TLS_ENCRYPT) {
        msg_warn("smtp_tls_wrappermode requires \"smtp_tls_security_level = encrypt\" "
                 "(or stronger); using encrypt");
        smtp_tls_global_level = SMTP_TLS_ENCRYPT;
    }
    if (!smtp_par.lmtp && var_smtp_tls_policy_maps && *var_smtp_tls_policy_maps) {
        strbuf_init(&err, 128, 1024);
        if ((smtp_tls_policy_list = dict_list_open(var_smtp_tls_policy_maps,
                                                   DICT_FLAG_FOLD_KEY, &err)) == NULL)
            msg_fatal("smtp_tls_policy_maps: %s", err.data);
        strbuf_release(&err);
    }
}

/* --- policies -------------------------------------------------------------- */

/* The next word of a policy: up to a comma or white space, or a "{ ... }"
 * group (braces and surrounding space removed). NULL at the end. */
static char *smtp_tls_word(char **pp, int *bad)
{
    char *p = *pp, *w, *e;

    p += strspn(p, ", \t\r\n");
    if (*p == 0)
        return NULL;
    if (*p == '{') {
        if ((e = strchr(p, '}')) == NULL) {
            *bad = 1;
            return NULL;
        }
        *e = 0;
        w = p + 1 + strspn(p + 1, " \t\r\n");
        *pp = e + 1;
        for (e = w + strlen(w); e > w && isspace((unsigned char) e[-1]); e--)
            e[-1] = 0;
        return w;
    }
    w = p;
    p += strcspn(p, ", \t\r\n");
    if (*p)
        *p++ = 0;
    *pp = p;
    return w;
}

static int smtp_tls_set(char *dst, size_t size, const char *val, const char *name,
                        const char *where)
{
    if (*dst) {
        msg_warn("%s: attribute \"%s\" is specified multiple times", where, name);
        return -1;
    }
    if (*val == 0) {
        msg_warn("%s: attribute \"%s\" has empty value", where, name);
        return -1;
    }
    if (strlen(val) >= size) {
        msg_warn("%s: attribute \"%s\" is too long", where, name);
        return -1;
    }
    snprintf(dst, size, "%s", val);
    return 0;
}

/* Applies one table entry; 0, or -1 (warned) when it is invalid. */
static int smtp_tls_entry(struct smtp_tls_policy *p, const char *value, const char *where)
{
    char *copy = xstrdup(value), *cur = copy, *w, *eq, *end;
    int bad = 0, rc = -1;

    if ((w = smtp_tls_word(&cur, &bad)) == NULL) {
        msg_warn("%s: invalid empty policy", where);
        goto out;
    }
    if ((p->level = smtp_tls_level_find(w, strlen(w))) < 0) {
        msg_warn("%s: invalid security level \"%s\"", where, w);
        goto out;
    }
    while ((w = smtp_tls_word(&cur, &bad)) != NULL) {
        if (p->level == SMTP_TLS_NONE) {
            msg_warn("%s: ignoring attribute \"%s\" with TLS disabled", where, w);
            continue;
        }
        if ((eq = strchr(w, '=')) == NULL || eq == w) {
            msg_warn("%s: malformed attribute/value pair \"%s\"", where, w);
            goto out;
        }
        *eq++ = 0;
        for (end = eq - 1; end > w && isspace((unsigned char) end[-1]); end--)
            end[-1] = 0;
        eq += strspn(eq, " \t");
        if (strcasecmp(w, "match") == 0) {
            if (*eq == 0) {
                msg_warn("%s: attribute \"match\" has empty value", where);
                goto out;
            }
            if (p->level < SMTP_TLS_VERIFY) {
                msg_warn("%s: attribute \"match\" invalid at security level \"%s\"", where,
                         smtp_tls_level_name(p->level));
                goto out;
            }
            if (strlen(p->match) + strlen(eq) + 2 >= sizeof(p->match)) {
                msg_warn("%s: attribute \"match\" is too long", where);
                goto out;
            }
            if (*p->match)
                strcat(p->match, ":");
            strcat(p->match, eq);
        } else if (strcasecmp(w, "protocols") == 0) {
            if (smtp_tls_set(p->protocols, sizeof(p->protocols), eq, "protocols", where) < 0)
                goto out;
        } else if (strcasecmp(w, "ciphers") == 0) {
            if (smtp_tls_set(p->grade, sizeof(p->grade), eq, "ciphers", where) < 0)
                goto out;
        } else if (strcasecmp(w, "exclude") == 0) {
            if (smtp_tls_set(p->exclude, sizeof(p->exclude), eq, "exclude", where) < 0)
                goto out;
        } else if (strcasecmp(w, "servername") == 0) {
            if (smtp_tls_set(p->sni, sizeof(p->sni), eq, "servername", where) < 0)
                goto out;
        } else {
            msg_warn("%s: invalid attribute name: \"%s\"", where, w);
            goto out;
        }
    }
    if (bad) {
        msg_warn("%s: unbalanced \"{\" in policy", where);
        goto out;
    }
    rc = 0;
out:
    free(copy);
    return rc;
}

/* The nexthop's host for matching: without "inet:", brackets and port. */
static void smtp_tls_nexthop_domain(const char *dest, char *out, size_t size)
{
    const char *p = dest, *e;

    if (strncasecmp(p, "inet:", 5) == 0)
        p += 5;
    if (*p == '[' && (e = strchr(p, ']')) != NULL) {
        p++;
    } else if ((e = strrchr(p, ':')) == NULL) {
        e = p + strlen(p);
    }
    snprintf(out, size, "%.*s", (int) (e - p), p);
}

/* The main.cf settings for what the policy did not set: the opportunistic
 * ones at "may", the mandatory ones above. */
static void smtp_tls_defaults(struct smtp_tls_policy *p)
{
    if (*p->protocols == 0)
        snprintf(p->protocols, sizeof(p->protocols), "%s", p->level == SMTP_TLS_MAY
                 ? var_smtp_tls_protocols : var_smtp_tls_mandatory_protocols);
    if (*p->grade == 0)
        snprintf(p->grade, sizeof(p->grade), "%s", p->level == SMTP_TLS_MAY
                 ? var_smtp_tls_ciphers : var_smtp_tls_mandatory_ciphers);
    if (*p->exclude == 0) {
        const char *ex = var_smtp_tls_exclude_ciphers ? var_smtp_tls_exclude_ciphers : "";
        const char *mex = p->level > SMTP_TLS_MAY && var_smtp_tls_mandatory_exclude_ciphers
            ? var_smtp_tls_mandatory_exclude_ciphers : "";

        snprintf(p->exclude, sizeof(p->exclude), "%s%s%s", ex, *ex && *mex ? " " : "", mex);
    }
}

int smtp_tls_policy_find(const char *nexthop, const char *rcpt_domain,
                         struct smtp_tls_policy *p)
{
    const char *dest = nexthop && *nexthop ? nexthop : rcpt_domain ? rcpt_domain : "";
    const char *name, *value = NULL;
    struct strbuf where;
    size_t i;
    int dotted_name = 1;

    memset(p, 0, sizeof(*p));
    p->level = smtp_tls_global_level;
    smtp_tls_nexthop_domain(dest, p->nexthop, sizeof(p->nexthop));
    for (i = 0; i < sizeof(p->nexthop) && p->nexthop[i]; i++)
        p->nexthop[i] = (char) tolower((unsigned char) p->nexthop[i]);
    if (smtp_tls_policy_list && *dest) {
        /* Explicit nexthops ([host], host:port) match only themselves. */
        for (name = dest; *name; name++)
            if (!isalnum((unsigned char) *name) && *name != '-' && *name != '.'
                && *name != '_')
                dotted_name = 0;
        name = dest;
        do {
            value = dict_list_get(smtp_tls_policy_list, name);
            if (value == NULL && dict_list_error(smtp_tls_policy_list) != 0) {
                msg_warn("smtp_tls_policy_maps, next-hop destination \"%s\": "
                         "policy table lookup error", dest);
                p->invalid = 1;
                return -1;
            }
        } while (value == NULL && dotted_name && (name = strchr(name + 1, '.')) != NULL);
        if (value != NULL) {
            strbuf_init(&where, 128, 2048);
            strbuf_printf(&where, "smtp_tls_policy_maps, next-hop destination \"%s\"", dest);
            if (smtp_tls_entry(p, value, where.data) < 0) {
                strbuf_release(&where);
                p->invalid = 1;
                return -1;
            }
            strbuf_release(&where);
        }
    }
    if (!smtp_par.lmtp && var_smtp_tls_wrappermode && p->level < SMTP_TLS_ENCRYPT) {
        if (value != NULL)
            msg_warn("smtp_tls_policy_maps, next-hop destination \"%s\": smtp_tls_wrappermode "
                     "requires security level encrypt (or stronger); using encrypt", dest);
        p->level = SMTP_TLS_ENCRYPT;
    }
    if (p->level == SMTP_TLS_NONE)
        return 0;
    smtp_tls_defaults(p);
    if (*p->sni == 0)
        snprintf(p->sni, sizeof(p->sni), "%s", var_smtp_tls_servername);
    if (p->level >= SMTP_TLS_VERIFY && *p->match == 0)
        snprintf(p->match, sizeof(p->match), "%s", p->level == SMTP_TLS_VERIFY
                 ? var_smtp_tls_verify_cert_match : var_smtp_tls_secure_cert_match);
    return 0;
}

void smtp_tls_policy_key(const struct smtp_tls_policy *p, char *buf, size_t size)
{
    snprintf(buf, size, "%s|%s|%s|%s|%s|%s", smtp_tls_level_name(p->level), p->protocols,
             p->grade, p->exclude, p->match, p->sni);
}

/* --- contexts -------------------------------------------------------------- */

/* The context for the policy (made at first use); NULL when it cannot be. */
struct tls_ctx *smtp_tls_context(const struct smtp_tls_policy *p)
{
    struct tls_ctx_opts o;
    struct strbuf key, why;
    struct tls_ctx *ctx;
    int i;

    strbuf_init(&key, 128, 4096);
    strbuf_printf(&key, "%s|%s|%s", p->protocols, p->grade, p->exclude);
    for (i = 0; i < smtp_tls_nctx; i++)
        if (strcmp(smtp_tls_ctxs[i].key, key.data) == 0) {
            strbuf_release(&key);
            return smtp_tls_ctxs[i].ctx;
        }
    memset(&o, 0, sizeof(o));
    o.server = 0;
    o.cert_file = var_smtp_tls_cert_file;
    o.key_file = var_smtp_tls_key_file;
    o.ca_file = var_smtp_tls_CAfile;
    o.ca_path = var_smtp_tls_CApath;
    o.protocols = p->protocols;
    o.cipher_grade = p->grade;
    o.exclude = p->exclude;
    strbuf_init(&why, 256, 4096);
    if ((ctx = tls_ctx_create(&o, &why)) == NULL)
        msg_warn("cannot initialize the client-side TLS engine: %s", why.data);
    strbuf_release(&why);
    /* Sessions hold their own reference: an evicted context is safe to free. */
    if (smtp_tls_nctx == SMTP_TLS_CTX_MAX) {
        free(smtp_tls_ctxs[0].key);
        tls_ctx_free(&smtp_tls_ctxs[0].ctx);
        memmove(smtp_tls_ctxs, smtp_tls_ctxs + 1, sizeof(smtp_tls_ctxs[0]) * (SMTP_TLS_CTX_MAX - 1));
        smtp_tls_nctx--;
    }
    smtp_tls_ctxs[smtp_tls_nctx].key = xstrdup(key.data);
    smtp_tls_ctxs[smtp_tls_nctx].ctx = ctx;
    smtp_tls_nctx++;
    strbuf_release(&key);
    return ctx;
}

/*
 * As root, before the privilege drop (certificate and key files may be
 * readable by root only): the contexts of the main.cf settings, opportunistic
 * and mandatory. Contexts for per-destination protocols, ciphers or
 * exclusions are made at first use and need files mail_owner can read.
 */
void smtp_tls_preload(int lmtp)
{
    const char *name = lmtp ? var_lmtp_tls_security_level : var_smtp_tls_security_level;
    struct smtp_tls_policy p;
    int level;

    level = name ? smtp_tls_level_find(name, strlen(name)) : SMTP_TLS_NONE;
    if (level == SMTP_TLS_NONE && (lmtp || ((var_smtp_tls_policy_maps == NULL
                                              || *var_smtp_tls_policy_maps == 0)
                                             && !var_smtp_tls_wrappermode)))
        return;
    for (level = SMTP_TLS_MAY; level <= SMTP_TLS_ENCRYPT; level++) {
        memset(&p, 0, sizeof(p));
        p.level = level;
        smtp_tls_defaults(&p);
        (void) smtp_tls_context(&p);
    }
}

/* --- handshakes ------------------------------------------------------------ */

static int smtp_tls_is_ip(const char *name)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* Whether the certificate matches one name of the policy's match list. */
static int smtp_tls_matches(const struct tls_conn *c, const struct smtp_tls_policy *p,
                            const struct smtp_session *s)
{
    char *copy = xstrdup(p->match), *cur = copy, *w;
    char dot[SMTP_HOST_MAX + 2];
    int ok = 0;

    while (!ok && *(cur += strspn(cur, ", \t:")) != 0) {
        w = cur;
        cur += strcspn(cur, ", \t:");
        if (*cur)
            *cur++ = 0;
        if (strcasecmp(w, "hostname") == 0)
            ok = tls_conn_peer_matches(c, s->host);
        else if (strcasecmp(w, "nexthop") == 0)
            ok = tls_conn_peer_matches(c, p->nexthop);
        else if (strcasecmp(w, "dot-nexthop") == 0) {
            snprintf(dot, sizeof(dot), ".%s", p->nexthop);
            ok = *p->nexthop && tls_conn_peer_matches(c, dot);
        } else
            ok = tls_conn_peer_matches(c, w);
    }
    free(copy);
    return ok;
}

static void smtp_tls_fail(struct smtp_state *st, struct smtp_session *s, const char *dsn,
                          const char *text)
{
    strbuf_set(&st->last_why, text);
    snprintf(st->last_dsn, sizeof(st->last_dsn), "%s", dsn);
    snprintf(st->last_relay, sizeof(st->last_relay), "%s", s->relay);
}

/*
 * Postfix's rule for opportunistic TLS that failed (the handshake, or the
 * session under TLS by a lost connection or a timeout): the same server
 * again in plain text, but only for mail that has waited at least
 * minimal_backoff_time, so that a server with broken TLS neither holds mail
 * forever nor gets fresh mail in plain text at once.
 */
int smtp_tls_plain_retry_ok(const struct smtp_state *st, const struct smtp_session *s)
{
    const struct deliver_request *req = st->req;

    return st->tls.level == SMTP_TLS_MAY && !st->tls_plain && !s->is_wrapper
        && req->active.tv_sec - req->arrival.tv_sec >= var_minimal_backoff_time;
}

int smtp_tls_start(struct smtp_state *st, struct smtp_session *s, struct tls_ctx *ctx)
{
    const struct smtp_tls_policy *p = &st->tls;
    struct strbuf why;
    struct tls_conn *c;
    const char *sni = NULL;
    int trusted, matched = 0, usebits, algbits;

    if (strcasecmp(p->sni, "hostname") == 0)
        sni = s->host;
    else if (strcasecmp(p->sni, "nexthop") == 0)
        sni = p->nexthop;
    else if (*p->sni)
        sni = p->sni;
    if (sni && (*sni == 0 || smtp_tls_is_ip(sni) || s->is_unix))
        sni = NULL;
    if (var_smtp_tls_loglevel >= 2) {
        msg_info("setting up TLS connection to %s", s->relay);
        if (sni)
            msg_info("%s: SNI hostname: %s", s->relay, sni);
    }
    strbuf_init(&why, 256, 4096);
    /* A server that talks past its STARTTLS reply is not speaking TLS. */
    if (stream_pending(s->stream) > 0) {
        strbuf_set(&why, "the server sent data before the TLS handshake");
        c = NULL;
    } else {
        c = tls_client_start(ctx, s->stream, sni, smtp_par.starttls_ms, &why);
    }
    if (c == NULL) {
        msg_info("SSL_connect error to %s: %s", s->relay, why.data);
        strbuf_release(&why);
        if (smtp_tls_plain_retry_ok(st, s))
            st->tls_retry_plain = 1;
        smtp_tls_fail(st, s, "4.7.5", "Cannot start TLS: handshake failure");
        return -1;
    }
    strbuf_release(&why);
    s->tls = 1;
    trusted = tls_conn_peer_verified(c);
    if (p->level >= SMTP_TLS_VERIFY && trusted)
        matched = smtp_tls_matches(c, p, s);
    if (var_smtp_tls_loglevel >= 2 && tls_conn_peer_cert(c))
        msg_info("%s: subject_CN=%s, issuer_CN=%s", s->relay, tls_conn_peer_subject(c),
                 tls_conn_peer_issuer(c));
    if (var_smtp_tls_loglevel >= 1) {
        usebits = tls_conn_cipher_bits(c, &algbits);
        msg_info("%s TLS connection established to %s: %s with cipher %s (%d/%d bits)",
                 !tls_conn_peer_cert(c) ? "Anonymous" : matched ? "Verified"
                 : trusted ? "Trusted" : "Untrusted", s->relay, tls_conn_protocol(c),
                 tls_conn_cipher(c), usebits, algbits);
    }
    if (p->level < SMTP_TLS_VERIFY)
        return 0;
    if (!trusted) {
        if (var_smtp_tls_loglevel >= 1)
            msg_info("server certificate verification failed for %s: %s", s->relay,
                     tls_conn_verify_error(c));
        smtp_tls_fail(st, s, "4.7.5", "Server certificate not trusted");
        return -1;
    }
    if (!matched) {
        if (var_smtp_tls_loglevel >= 1)
            msg_info("server certificate verification failed for %s: "
                     "Server hostname does not match certificate (CN=%s, match=%s)",
                     s->relay, tls_conn_peer_subject(c), p->match);
        smtp_tls_fail(st, s, "4.7.5", "Server certificate not verified");
        return -1;
    }
    return 0;
}
