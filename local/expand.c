/*
 * expand.c - $name expansion of forward_path and luser_relay with the
 * recipient's attributes, as Postfix's local_expand: $name, ${name},
 * $(name), ${name?text} (text when name has a value), ${name:text} (text
 * when it has none). Names: user, home, shell, local, mailbox, domain,
 * extension, recipient, recipient_delimiter, client_address,
 * client_hostname.
 * Values (mail data) are filtered: a character outside filter becomes "_".
 * Never nests deeper than EXPAND_DEPTH or writes past the output limit.
 * Returns -1 for a syntax error or a bare reference to a name without a
 * value (the caller skips that pattern), else EXPAND_* flags.
 */
#include <stdio.h>
#include <string.h>

#include "local.h"
#include "params.h"
#include "strbuf.h"

#define EXPAND_DEPTH    4
#define EXPAND_NAME_MAX 64

/* A name's value, or NULL when it has none (empty counts as none). */
static const char *expand_value(const char *name, size_t len, const struct local_state *st,
                                const struct local_user *as, char *delim_buf, int *flags)
{
    const char *v = NULL;

#define IS(n) (len == sizeof(n) - 1 && memcmp(name, n, len) == 0)
    if (IS("user"))
        v = st->user;
    else if (IS("home"))
        v = as->home;
    else if (IS("shell"))
        v = as->shell;
    else if (IS("local") || IS("mailbox"))
        v = st->local;
    else if (IS("domain"))
        v = st->domain;
    else if (IS("extension")) {
        v = st->extension;
        *flags |= EXPAND_EXTENSION_USED;
    } else if (IS("recipient"))
        v = st->address;
    else if (IS("recipient_delimiter")) {
        delim_buf[0] = st->delim ? st->delim : *var_recipient_delimiter;
        delim_buf[1] = 0;
        v = delim_buf;
    } else if (IS("client_address"))
        v = st->rq->req->client_addr;
    else if (IS("client_hostname"))
        v = st->rq->req->client_name;
#undef IS
    return v && *v ? v : NULL;
}

static int expand_run(const char *p, size_t plen, const struct local_state *st,
                      const struct local_user *as, const char *filter, struct strbuf *out,
                      int depth, int *flags)
{
    size_t i = 0;

    if (depth > EXPAND_DEPTH)
        return -1;
    while (i < plen) {
        const char *name, *v, *text = NULL;
        size_t nlen, tlen = 0;
        char delim_buf[2], op = 0;

        if (p[i] != '$') {
            if (strbuf_putc(out, p[i++]) < 0)
                return -1;
            continue;
        }
        i++;
        if (i < plen && (p[i] == '{' || p[i] == '(')) {
            char close = p[i] == '{' ? '}' : ')';
            int level = 1;
            size_t j;

            name = p + ++i;
            nlen = strcspn(name, "?:})");
            if (i + nlen >= plen)
                return -1;
            if (name[nlen] == '?' || name[nlen] == ':') {
                op = name[nlen];
                text = name + nlen + 1;
                for (j = (size_t) (text - p); j < plen; j++) {
                    if (p[j] == '{' || p[j] == '(')
                        level++;
                    else if ((p[j] == '}' || p[j] == ')') && --level == 0)
                        break;
                }
                if (j >= plen || p[j] != close)
                    return -1;
                tlen = j - (size_t) (text - p);
                i = j + 1;
            } else {
                if (name[nlen] != close)
                    return -1;
                i += nlen + 1;
            }
        } else {
            name = p + i;
            for (nlen = 0; i + nlen < plen && (name[nlen] == '_' || (name[nlen] >= 'a' && name[nlen] <= 'z')
                                                 || (name[nlen] >= 'A' && name[nlen] <= 'Z')
                                                 || (name[nlen] >= '0' && name[nlen] <= '9'));
                 nlen++)
                continue;
            i += nlen;
        }
        if (nlen == 0 || nlen > EXPAND_NAME_MAX)
            return -1;
        v = expand_value(name, nlen, st, as, delim_buf, flags);
        if (op == '?' || op == ':') {
            if ((op == '?') == (v != NULL)
                && expand_run(text, tlen, st, as, filter, out, depth + 1, flags) < 0)
                return -1;
            continue;
        }
        if (v == NULL)
            return -1;
        for (; *v; v++)
            if (strbuf_putc(out, filter && strchr(filter, *v) == NULL ? '_' : *v) < 0)
                return -1;
    }
    return 0;
}

int expand_local(const char *pattern, const struct local_state *st,
                 const struct local_user *as, const char *filter, struct strbuf *out)
{
    int flags = 0;

    strbuf_reset(out);
    if (expand_run(pattern, strlen(pattern), st, as, filter, out, 0, &flags) < 0)
        return -1;
    return flags;
}
