/*
 * smtp_cmd.c - the SMTP command line parser (see smtp_cmd.h).
 * Splits a line into verb and argument, and turns the arguments of MAIL and
 * RCPT into an internal-form address (through address_parse_path, the one
 * address parser) plus typed ESMTP parameters.
 * Must never read past len, trust a length the client implies, or accept a
 * parameter of an extension the server did not offer. Every failure leaves a
 * complete SMTP reply in why; the caller sends it unchanged.
 */
#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "smtp_cmd.h"

#define SMTP_CMD_IS_BLANK(c) ((c) == ' ' || (c) == '\t')

int smtp_cmd_split(const char *line, size_t len, struct smtp_cmd *cmd)
{
    size_t i = 0, n = 0;

    if (memchr(line, '\0', len) != NULL)
        return -1;
    while (i < len && SMTP_CMD_IS_BLANK(line[i]))
        i++;
    while (i < len && !SMTP_CMD_IS_BLANK(line[i])) {
        unsigned char c = (unsigned char) line[i];

        /* Verbs are letters (RFC 5321 section 4.1.1); "X-FOO" style too. */
        if (n >= SMTP_CMD_VERB_MAX || !(isalpha(c) || (n > 0 && (c == '-' || isdigit(c)))))
            return -1;
        cmd->verb[n++] = (char) toupper(c);
        i++;
    }
    if (n == 0)
        return -1;
    cmd->verb[n] = '\0';
    while (i < len && SMTP_CMD_IS_BLANK(line[i]))
        i++;
    cmd->arg = line + i;
    cmd->arg_len = len - i;
    while (cmd->arg_len > 0 && SMTP_CMD_IS_BLANK(cmd->arg[cmd->arg_len - 1]))
        cmd->arg_len--;
    return 0;
}

/* --- xtext (RFC 3461 section 4) ------------------------------------------- */

static int smtp_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;                          /* RFC 3461: upper-case hex only */
}

int smtp_xtext_decode(const char *text, size_t len, size_t max, struct strbuf *out)
{
    size_t i;

    strbuf_reset(out);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) text[i];

        if (c < '!' || c > '~' || c == '=')
            return -1;
        if (c == '+') {
            int hi, lo;

            if (len - i < 3 || (hi = smtp_hexval(text[i + 1])) < 0
                || (lo = smtp_hexval(text[i + 2])) < 0)
                return -1;
            c = (unsigned char) (hi * 16 + lo);
            i += 2;
            /* Decoded values travel in envelope records and IPC strings, which
             * must never carry control characters (CR, LF, NUL). */
            if (c < 0x20 || c == 0x7f)
                return -1;
        }
        if (out->len >= max || strbuf_putc(out, c) < 0)
            return -1;
    }
    return 0;
}

void smtp_xtext_encode(const char *str, struct strbuf *out)
{
    const unsigned char *p;

    for (p = (const unsigned char *) str; *p; p++) {
        if (*p < '!' || *p > '~' || *p == '+' || *p == '=')
            (void) strbuf_printf(out, "+%02X", *p);
        else
            (void) strbuf_putc(out, *p);
    }
}

/* --- shared pieces --------------------------------------------------------- */

void smtp_mail_args_init(struct smtp_mail_args *a)
{
    memset(a, 0, sizeof(*a));
    strbuf_init(&a->address, 64, ADDRESS_MAX_PATH);
    strbuf_init(&a->envid, 16, SMTP_CMD_ENVID_MAX);
    strbuf_init(&a->auth, 16, SMTP_CMD_AUTH_MAX);
    a->size = -1;
}

void smtp_mail_args_free(struct smtp_mail_args *a)
{
    strbuf_release(&a->address);
    strbuf_release(&a->envid);
    strbuf_release(&a->auth);
}

void smtp_rcpt_args_init(struct smtp_rcpt_args *a)
{
    memset(a, 0, sizeof(*a));
    strbuf_init(&a->address, 64, ADDRESS_MAX_PATH);
    strbuf_init(&a->orcpt, 64, SMTP_CMD_ORCPT_MAX + 32);
}

void smtp_rcpt_args_free(struct smtp_rcpt_args *a)
{
    strbuf_release(&a->address);
    strbuf_release(&a->orcpt);
}

/* One "KEYWORD[=VALUE]" token of the parameter list. */
struct smtp_param {
    const char *key;
    size_t key_len;
    const char *val;            /* NULL when there is no '=' */
    size_t val_len;
};

static int smtp_key_is(const struct smtp_param *p, const char *name)
{
    return p->key_len == strlen(name) && strncasecmp(p->key, name, p->key_len) == 0;
}

static int smtp_val_is(const struct smtp_param *p, const char *word)
{
    return p->val && p->val_len == strlen(word) && strncasecmp(p->val, word, p->val_len) == 0;
}

/*
 * Parses "FROM:" or "TO:" and the path that follows; on success *restp is the
 * position after the path. The path parser sees only the path's own bytes
 * (up to the first blank after it), so parameters can never be taken for
 * address text.
 */
static int smtp_parse_path(const char *arg, size_t len, const char *prefix, int flags,
                           int addr_flags, struct strbuf *addr, size_t *restp,
                           struct strbuf *why, const char *syntax, const char *bad)
{
    size_t plen = strlen(prefix), i, used = 0;
    struct strbuf reason;
    int ret;

    if (len < plen || strncasecmp(arg, prefix, plen) != 0) {
        strbuf_set(why, syntax);
        return -1;
    }
    i = plen;
    /* RFC 5321 has no blank after the colon; Postfix accepts one unless strict. */
    if (!(flags & SMTP_CMD_F_STRICT))
        while (i < len && SMTP_CMD_IS_BLANK(arg[i]))
            i++;
    if (i >= len) {
        strbuf_set(why, syntax);
        return -1;
    }
    if (arg[i] != '<' && (flags & SMTP_CMD_F_STRICT)) {
        strbuf_set(why, bad);
        return -1;
    }
    plen = len - i;
    if (arg[i] != '<') {
        /* A bare address ends at the first blank: parameters never reach it. */
        addr_flags |= ADDRESS_FLAG_NO_BRACKETS_OK;
        for (plen = 0; i + plen < len && !SMTP_CMD_IS_BLANK(arg[i + plen]); plen++)
            ;
    }
    strbuf_init(&reason, 64, 256);
    ret = address_parse_path(arg + i, plen, addr_flags, addr, &used, &reason);
    strbuf_release(&reason);
    if (ret < 0 || used == 0 || used > plen
        || (i + used < len && !SMTP_CMD_IS_BLANK(arg[i + used]))) {
        strbuf_set(why, bad);
        return -1;
    }
    *restp = i + used;
    return 0;
}

/*
 * Walks the blank-separated parameter list at text[0..len), calling fn for
 * each; stops at the first failure (fn has set why). At most
 * SMTP_CMD_PARAMS_MAX parameters.
 */
static int smtp_each_param(const char *text, size_t len,
                           int (*fn)(const struct smtp_param *, void *, struct strbuf *),
                           void *ctx, struct strbuf *why)
{
    size_t i = 0;
    int count = 0;

    /* Count first, so that a long list is refused as a whole. */
    for (i = 0; i < len; i++)
        if (!SMTP_CMD_IS_BLANK(text[i]) && (i == 0 || SMTP_CMD_IS_BLANK(text[i - 1])))
            count++;
    if (count > SMTP_CMD_PARAMS_MAX) {
        strbuf_set(why, "501 5.5.4 Error: too many parameters");
        return -1;
    }
    for (i = 0;;) {
        struct smtp_param p;
        const char *eq;
        size_t start;

        while (i < len && SMTP_CMD_IS_BLANK(text[i]))
            i++;
        if (i >= len)
            return 0;
        start = i;
        while (i < len && !SMTP_CMD_IS_BLANK(text[i]))
            i++;
        p.key = text + start;
        eq = memchr(p.key, '=', i - start);
        if (eq) {
            p.key_len = (size_t) (eq - p.key);
            p.val = eq + 1;
            p.val_len = i - start - p.key_len - 1;
        } else {
            p.key_len = i - start;
            p.val = NULL;
            p.val_len = 0;
        }
        if (p.key_len == 0) {
            strbuf_set(why, "501 5.5.4 Error: bad parameter syntax");
            return -1;
        }
        if (fn(&p, ctx, why) < 0)
            return -1;
    }
}

static int smtp_unsupported(const struct smtp_param *p, struct strbuf *why)
{
    strbuf_reset(why);
    (void) strbuf_printf(why, "555 5.5.4 Unsupported option: %.*s",
                         (int) (p->key_len > 64 ? 64 : p->key_len), p->key);
    return -1;
}

static int smtp_duplicate(const struct smtp_param *p, struct strbuf *why)
{
    strbuf_reset(why);
    (void) strbuf_printf(why, "501 5.5.4 Error: duplicate %.*s parameter",
                         (int) (p->key_len > 64 ? 64 : p->key_len), p->key);
    return -1;
}

/* --- MAIL FROM ------------------------------------------------------------ */

struct smtp_mail_ctx {
    struct smtp_mail_args *a;
    int flags;
    int seen_body, seen_ret;
};

static int smtp_parse_size(const struct smtp_param *p, long long *size)
{
    long long v = 0;
    size_t i;

    if (p->val == NULL || p->val_len == 0 || p->val_len > 20)
        return -1;
    for (i = 0; i < p->val_len; i++) {
        if (!isdigit((unsigned char) p->val[i]))
            return -1;
        if (v > (LLONG_MAX - (p->val[i] - '0')) / 10)
            return -1;
        v = v * 10 + (p->val[i] - '0');
    }
    *size = v;
    return 0;
}

static int smtp_mail_param(const struct smtp_param *p, void *vctx, struct strbuf *why)
{
    struct smtp_mail_ctx *ctx = vctx;
    struct smtp_mail_args *a = ctx->a;

    if (smtp_key_is(p, "SIZE") && (ctx->flags & SMTP_EXT_SIZE)) {
        if (a->size >= 0)
            return smtp_duplicate(p, why);
        if (smtp_parse_size(p, &a->size) < 0) {
            a->size = -1;
            strbuf_set(why, "501 5.5.4 Bad message size syntax");
            return -1;
        }
    } else if (smtp_key_is(p, "BODY") && (ctx->flags & SMTP_EXT_8BITMIME)) {
        if (ctx->seen_body++)
            return smtp_duplicate(p, why);
        if (smtp_val_is(p, "7BIT"))
            a->body = SMTP_BODY_7BIT;
        else if (smtp_val_is(p, "8BITMIME"))
            a->body = SMTP_BODY_8BITMIME;
        else if (smtp_val_is(p, "BINARYMIME") && (ctx->flags & SMTP_EXT_BINARYMIME))
            a->body = SMTP_BODY_BINARYMIME;
        else {
            strbuf_set(why, "501 5.5.4 Unsupported BODY type");
            return -1;
        }
    } else if (smtp_key_is(p, "SMTPUTF8") && (ctx->flags & SMTP_EXT_SMTPUTF8)) {
        if (a->smtputf8)
            return smtp_duplicate(p, why);
        if (p->val) {
            strbuf_set(why, "501 5.5.4 Bad SMTPUTF8 parameter syntax");
            return -1;
        }
        a->smtputf8 = 1;
    } else if (smtp_key_is(p, "RET") && (ctx->flags & SMTP_EXT_DSN)) {
        if (ctx->seen_ret++)
            return smtp_duplicate(p, why);
        if (smtp_val_is(p, "FULL"))
            a->ret = SMTP_RET_FULL;
        else if (smtp_val_is(p, "HDRS"))
            a->ret = SMTP_RET_HDRS;
        else {
            strbuf_set(why, "501 5.5.4 Bad RET parameter syntax");
            return -1;
        }
    } else if (smtp_key_is(p, "ENVID") && (ctx->flags & SMTP_EXT_DSN)) {
        if (a->have_envid)
            return smtp_duplicate(p, why);
        if (p->val == NULL || p->val_len == 0
            || smtp_xtext_decode(p->val, p->val_len, SMTP_CMD_ENVID_MAX, &a->envid) < 0) {
            strbuf_set(why, "501 5.5.4 Bad ENVID parameter syntax");
            return -1;
        }
        a->have_envid = 1;
    } else if (smtp_key_is(p, "AUTH") && (ctx->flags & SMTP_EXT_AUTH)) {
        if (a->have_auth)
            return smtp_duplicate(p, why);
        if (smtp_val_is(p, "<>"))
            strbuf_reset(&a->auth);
        else if (p->val == NULL || p->val_len == 0
                 || smtp_xtext_decode(p->val, p->val_len, SMTP_CMD_AUTH_MAX, &a->auth) < 0) {
            strbuf_set(why, "501 5.5.4 Bad AUTH parameter syntax");
            return -1;
        }
        a->have_auth = 1;
    } else if (smtp_key_is(p, "MT-PRIORITY") && (ctx->flags & SMTP_EXT_MT_PRIORITY)) {
        int neg, digit;

        if (a->have_mt_priority)
            return smtp_duplicate(p, why);
        /* RFC 6710 section 3: ["-" / "+"] DIGIT, -9 .. 9 */
        neg = p->val && p->val_len == 2 && p->val[0] == '-';
        if (p->val == NULL || p->val_len < 1 || p->val_len > 2
            || (p->val_len == 2 && p->val[0] != '-' && p->val[0] != '+')
            || !isdigit((unsigned char) p->val[p->val_len - 1])) {
            strbuf_set(why, "501 5.5.4 Bad MT-PRIORITY parameter syntax");
            return -1;
        }
        digit = p->val[p->val_len - 1] - '0';
        a->mt_priority = neg ? -digit : digit;
        a->have_mt_priority = 1;
    } else {
        return smtp_unsupported(p, why);
    }
    return 0;
}

int smtp_cmd_parse_mail(const char *arg, size_t len, int flags, struct smtp_mail_args *out,
                        struct strbuf *why)
{
    struct smtp_mail_ctx ctx = {out, flags, 0, 0};
    int addr_flags = ADDRESS_FLAG_EMPTY_OK;
    size_t rest;

    if (flags & SMTP_EXT_SMTPUTF8)
        addr_flags |= ADDRESS_FLAG_SMTPUTF8;
    if (smtp_parse_path(arg, len, "FROM:", flags, addr_flags, &out->address, &rest, why,
                        "501 5.5.4 Syntax: MAIL FROM:<address>",
                        "501 5.1.7 Bad sender address syntax") < 0)
        return -1;
    if (smtp_each_param(arg + rest, len - rest, smtp_mail_param, &ctx, why) < 0)
        return -1;
    /* RFC 6531 section 3.4: UTF-8 in the envelope only when declared. */
    if (!out->smtputf8 && address_has_8bit(out->address.data)) {
        strbuf_set(why, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
        return -1;
    }
    return 0;
}

/* --- RCPT TO -------------------------------------------------------------- */

struct smtp_rcpt_ctx {
    struct smtp_rcpt_args *a;
    int flags;
};

/* NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461 section 4.1). */
static int smtp_parse_notify(const char *v, size_t len)
{
    int mask = 0;
    size_t i = 0;

    if (len == 0)
        return -1;
    while (i <= len) {
        size_t start = i;
        int bit;

        while (i < len && v[i] != ',')
            i++;
        if (i - start == 5 && strncasecmp(v + start, "NEVER", 5) == 0)
            bit = SMTP_NOTIFY_NEVER;
        else if (i - start == 7 && strncasecmp(v + start, "SUCCESS", 7) == 0)
            bit = SMTP_NOTIFY_SUCCESS;
        else if (i - start == 7 && strncasecmp(v + start, "FAILURE", 7) == 0)
            bit = SMTP_NOTIFY_FAILURE;
        else if (i - start == 5 && strncasecmp(v + start, "DELAY", 5) == 0)
            bit = SMTP_NOTIFY_DELAY;
        else
            return -1;
        if (mask & bit)
            return -1;
        mask |= bit;
        i++;                            /* past the comma (or the end) */
    }
    if ((mask & SMTP_NOTIFY_NEVER) && mask != SMTP_NOTIFY_NEVER)
        return -1;
    return mask;
}

/* ORCPT=addr-type;xtext (RFC 3461 section 4.2); addr-type is an atom. */
static int smtp_parse_orcpt(const struct smtp_param *p, struct strbuf *out)
{
    const char *semi;
    struct strbuf addr;
    size_t tlen, i;
    int ret;

    if (p->val == NULL || (semi = memchr(p->val, ';', p->val_len)) == NULL)
        return -1;
    tlen = (size_t) (semi - p->val);
    if (tlen == 0 || tlen > 32)
        return -1;
    for (i = 0; i < tlen; i++)
        if (!(isalnum((unsigned char) p->val[i]) || p->val[i] == '-'))
            return -1;
    strbuf_init(&addr, 64, SMTP_CMD_ORCPT_MAX);
    ret = smtp_xtext_decode(semi + 1, p->val_len - tlen - 1, SMTP_CMD_ORCPT_MAX, &addr);
    if (ret == 0 && addr.len == 0)
        ret = -1;
    if (ret == 0) {
        strbuf_reset(out);
        for (i = 0; i < tlen; i++)
            (void) strbuf_putc(out, tolower((unsigned char) p->val[i]));
        if (strbuf_putc(out, ';') < 0 || strbuf_append(out, addr.data, addr.len) < 0)
            ret = -1;
    }
    strbuf_release(&addr);
    return ret;
}

static int smtp_rcpt_param(const struct smtp_param *p, void *vctx, struct strbuf *why)
{
    struct smtp_rcpt_ctx *ctx = vctx;
    struct smtp_rcpt_args *a = ctx->a;

    if (smtp_key_is(p, "NOTIFY") && (ctx->flags & SMTP_EXT_DSN)) {
        int mask;

        if (a->notify)
            return smtp_duplicate(p, why);
        if (p->val == NULL || (mask = smtp_parse_notify(p->val, p->val_len)) < 0) {
            strbuf_set(why, "501 5.5.4 Error: Bad NOTIFY parameter syntax");
            return -1;
        }
        a->notify = mask;
    } else if (smtp_key_is(p, "ORCPT") && (ctx->flags & SMTP_EXT_DSN)) {
        if (a->have_orcpt)
            return smtp_duplicate(p, why);
        if (smtp_parse_orcpt(p, &a->orcpt) < 0) {
            strbuf_set(why, "501 5.5.4 Error: Bad ORCPT parameter syntax");
            return -1;
        }
        a->have_orcpt = 1;
    } else {
        return smtp_unsupported(p, why);
    }
    return 0;
}

int smtp_cmd_parse_rcpt(const char *arg, size_t len, int flags, struct smtp_rcpt_args *out,
                        struct strbuf *why)
{
    struct smtp_rcpt_ctx ctx = {out, flags};
    /* UTF-8 is parsed always, so that an undeclared one gets the precise 553. */
    int addr_flags = ADDRESS_FLAG_SMTPUTF8;
    size_t rest;

    if (smtp_parse_path(arg, len, "TO:", flags, addr_flags, &out->address, &rest, why,
                        "501 5.5.4 Syntax: RCPT TO:<address>",
                        "501 5.1.3 Bad recipient address syntax") < 0)
        return -1;
    if (out->address.len == 0) {
        strbuf_set(why, "501 5.1.3 Bad recipient address syntax");
        return -1;
    }
    if (smtp_each_param(arg + rest, len - rest, smtp_rcpt_param, &ctx, why) < 0)
        return -1;
    if (!(flags & SMTP_EXT_SMTPUTF8) && address_has_8bit(out->address.data)) {
        strbuf_set(why, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
        return -1;
    }
    return 0;
}

/* --- AUTH ------------------------------------------------------------------ */

int smtp_cmd_parse_auth(const char *arg, size_t len, char mech[SMTP_CMD_MECH_MAX + 1],
                        struct strbuf *init, int *have_init)
{
    const char *p = arg, *end = arg + len, *w;
    size_t n, i;

    *have_init = 0;
    mech[0] = '\0';
    strbuf_reset(init);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    for (w = p; p < end && *p != ' ' && *p != '\t'; p++)
        ;
    n = (size_t) (p - w);
    if (n == 0 || n > SMTP_CMD_MECH_MAX)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char) w[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_'))
            return -1;
        mech[i] = (char) (c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
    mech[n] = '\0';
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end)
        return 0;
    for (w = p; p < end && *p != ' ' && *p != '\t'; p++)
        ;
    n = (size_t) (p - w);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    /* One word, printable: base64 or "=" (the decoder judges the rest). */
    if (p != end)
        return -1;
    for (i = 0; i < n; i++)
        if ((unsigned char) w[i] <= ' ' || (unsigned char) w[i] >= 0x7f)
            return -1;
    if (strbuf_append(init, w, n) < 0)
        return -1;
    *have_init = 1;
    return 0;
}
