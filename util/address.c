/*
 * address.c - RFC 5321 path and mailbox syntax; the external (quoted) form.
 *
 * DESCRIPTION
 *	The parser follows RFC 5321 section 4.1.2: a Path is "<" [A-d-l ":"]
 *	Mailbox ">", a Mailbox is Local-part "@" (Domain / address-literal),
 *	a Local-part a Dot-string or a Quoted-string. With SMTPUTF8 (RFC 6531)
 *	atext, qtext and sub-domains also take UTF-8 characters, which must be
 *	well formed (RFC 3629: no overlong forms, no surrogates, nothing above
 *	U+10FFFF). Like Postfix it accepts a mailbox without a domain
 *	("<postmaster>", RFC 5321 section 4.1.1.3); a later stage qualifies it.
 *	A source route is checked for syntax and dropped. Address literals are
 *	[IPv4] and [IPv6:...]; general address literals are refused, as is a
 *	domain whose last label is numeric (an IP address without brackets).
 *
 *	Limits are in wire octets: local part ADDRESS_MAX_LOCAL, domain
 *	ADDRESS_MAX_DOMAIN, labels 63, the whole path ADDRESS_MAX_PATH.
 *
 * NEVER
 *	Never reads text past len or a string past its NUL; never scans
 *	backwards; never produces an internal form that does not parse back to
 *	itself through address_quote.
 *
 * DIAGNOSTICS
 *	Syntax errors return -1 with a short reason in why (for an SMTP reply
 *	after "501 5.1.7" or "553 5.1.3"); out is then unspecified.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "address.h"

#define ADDRESS_MAX_LABEL 63

static const char address_atext_ascii[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~";

struct address_scan {
    const unsigned char *s;
    size_t len;
    size_t pos;
    int flags;
    struct strbuf *why;
    int overflow;               /* out could not take a byte */
};

static void address_put(struct address_scan *a, struct strbuf *out, const void *data,
                        size_t len)
{
    if (strbuf_append(out, data, len) < 0)
        a->overflow = 1;
}

static int address_fail(struct address_scan *a, const char *reason)
{
    if (a->why) {
        strbuf_reset(a->why);
        strbuf_puts(a->why, reason);
    }
    return -1;
}

/* Length of the well-formed UTF-8 multi-byte character at s[0..len), or 0. */
static size_t address_utf8_len(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    size_t n, i;
    uint32_t cp;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (len < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff
        || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A UTF-8 character at the cursor: its length, 0 if none here, -1 if not allowed. */
static int address_scan_utf8(struct address_scan *a, size_t *n)
{
    if (a->s[a->pos] < 0x80)
        return 0;
    if (!(a->flags & ADDRESS_FLAG_SMTPUTF8))
        return address_fail(a, "8-bit characters in an address need SMTPUTF8");
    if ((*n = address_utf8_len(a->s + a->pos, a->len - a->pos)) == 0)
        return address_fail(a, "malformed UTF-8 in an address");
    return 1;
}

static int address_is_atext(int c)
{
    return c != 0 && c < 0x80 && strchr(address_atext_ascii, c) != 0;
}

static int address_is_letdig(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ------------------------------------------------------------ local part */

/* Dot-string = Atom *("." Atom). */
static int address_dot_string(struct address_scan *a, struct strbuf *out)
{
    size_t start = a->pos, n;
    int prev_dot = 1, u;

    while (a->pos < a->len) {
        int c = a->s[a->pos];

        if (c == '.') {
            if (prev_dot)
                return address_fail(a, "empty part in the local part");
            prev_dot = 1;
            a->pos++;
        } else if (address_is_atext(c)) {
            prev_dot = 0;
            a->pos++;
        } else if ((u = address_scan_utf8(a, &n)) != 0) {
            if (u < 0)
                return -1;
            prev_dot = 0;
            a->pos += n;
        } else {
            break;
        }
        if (a->pos - start > ADDRESS_MAX_LOCAL)
            return address_fail(a, "local part longer than 64 bytes");
    }
    if (a->pos == start)
        return address_fail(a, "empty local part");
    if (prev_dot)
        return address_fail(a, "local part ends in a dot");
    address_put(a, out, a->s + start, a->pos - start);
    return 0;
}

/* Quoted-string = DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE, unquoted into out. */
static int address_quoted_string(struct address_scan *a, struct strbuf *out)
{
    size_t start = a->pos, n;
    int u;

    a->pos++;                   /* the opening quote */
    for (;;) {
        int c;

        /* The limit counts wire octets, quotes and backslashes included. */
        if (a->pos - start > ADDRESS_MAX_LOCAL)
            return address_fail(a, "local part longer than 64 bytes");
        if (a->pos >= a->len)
            return address_fail(a, "unterminated quoted string");
        c = a->s[a->pos];
        if (c == '"') {
            a->pos++;
            if (a->pos - start > ADDRESS_MAX_LOCAL)
                return address_fail(a, "local part longer than 64 bytes");
            return 0;
        }
        if (c == '\\') {
            if (a->pos + 1 >= a->len || a->s[a->pos + 1] < 32 || a->s[a->pos + 1] > 126)
                return address_fail(a, "bad quoted pair in the local part");
            address_put(a, out, a->s + a->pos + 1, 1);
            a->pos += 2;
        } else if (c >= 32 && c <= 126) {
            address_put(a, out, a->s + a->pos, 1);
            a->pos++;
        } else if ((u = address_scan_utf8(a, &n)) > 0) {
            address_put(a, out, a->s + a->pos, n);
            a->pos += n;
        } else {
            return u < 0 ? -1 : address_fail(a, "control character in the local part");
        }
    }
}

/* ------------------------------------------------------------ domains */

static int address_ipv4(const unsigned char *s, size_t len)
{
    size_t i = 0, digits;
    int part, value;

    for (part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= len || s[i] != '.')
                return 0;
            i++;
        }
        for (digits = 0, value = 0; i < len && s[i] >= '0' && s[i] <= '9' && digits < 3;
             digits++, i++)
            value = value * 10 + (s[i] - '0');
        if (digits == 0 || value > 255)
            return 0;
    }
    return i == len;
}

/* address-literal = "[" ( IPv4-address-literal / IPv6-address-literal ) "]" */
static int address_literal(struct address_scan *a, struct strbuf *out)
{
    const unsigned char *s = a->s + a->pos, *end;
    size_t room = a->len - a->pos, len;
    char v6[64];

    end = memchr(s, ']', room > ADDRESS_MAX_DOMAIN ? ADDRESS_MAX_DOMAIN : room);
    if (end == 0)
        return address_fail(a, "unterminated address literal");
    len = (size_t) (end - s) + 1;
    if (len > 7 && strncasecmp((const char *) s + 1, "IPv6:", 5) == 0) {
        if (len - 7 >= sizeof(v6) || len - 7 == 0)
            return address_fail(a, "bad IPv6 address literal");
        memcpy(v6, s + 6, len - 7);
        v6[len - 7] = 0;
        if (strspn(v6, "0123456789abcdefABCDEF:.") != len - 7
            || inet_pton(AF_INET6, v6, &(struct in6_addr) {{{0}}}) != 1)
            return address_fail(a, "bad IPv6 address literal");
    } else if (!address_ipv4(s + 1, len - 2)) {
        return address_fail(a, "bad address literal");
    }
    address_put(a, out, s, len);
    a->pos += len;
    return 0;
}

/* Domain = sub-domain *("." sub-domain), Let-dig [Ldh-str] each, or an address literal. */
static int address_domain_scan(struct address_scan *a, struct strbuf *out)
{
    size_t start = a->pos, label = a->pos, last_label = a->pos, n;
    int prev = '.', numeric = 1, u;

    if (a->pos < a->len && a->s[a->pos] == '[')
        return address_literal(a, out);
    while (a->pos < a->len) {
        int c = a->s[a->pos];

        if (c == '.') {
            if (prev == '.')
                return address_fail(a, "empty label in the domain");
            if (prev == '-')
                return address_fail(a, "domain label ends in a hyphen");
            prev = '.';
            a->pos++;
            label = last_label = a->pos;
            numeric = 1;
            continue;
        }
        if (address_is_letdig(c) || (c == '-' && prev != '.')) {
            numeric &= c >= '0' && c <= '9';
            prev = c;
            a->pos++;
        } else if ((u = address_scan_utf8(a, &n)) != 0) {
            if (u < 0)
                return -1;
            numeric = 0;
            prev = 'a';
            a->pos += n;
        } else if (c == '-') {
            return address_fail(a, "domain label starts with a hyphen");
        } else {
            break;
        }
        if (a->pos - label > ADDRESS_MAX_LABEL)
            return address_fail(a, "domain label longer than 63 bytes");
        if (a->pos - start > ADDRESS_MAX_DOMAIN)
            return address_fail(a, "domain longer than 255 bytes");
    }
    if (a->pos == start)
        return address_fail(a, "empty domain");
    if (prev == '.')
        return address_fail(a, "domain ends in a dot");
    if (prev == '-')
        return address_fail(a, "domain label ends in a hyphen");
    if (numeric)
        return address_fail(a, a->pos - last_label == a->pos - start
                            ? "numeric domain" : "IP address must be in [brackets]");
    address_put(a, out, a->s + start, a->pos - start);
    return 0;
}

/* ------------------------------------------------------------ paths */

/* A-d-l = At-domain *( "," At-domain ) ":"; checked, then dropped. */
static int address_route(struct address_scan *a, struct strbuf *scratch)
{
    for (;;) {
        if (a->pos > ADDRESS_MAX_PATH)
            return address_fail(a, "address longer than 512 bytes");
        a->pos++;               /* the '@' */
        strbuf_reset(scratch);
        if (address_domain_scan(a, scratch) < 0)
            return -1;
        if (a->pos >= a->len)
            return address_fail(a, "unterminated source route");
        if (a->s[a->pos] == ':') {
            a->pos++;
            return 0;
        }
        if (a->s[a->pos] != ',' || a->pos + 1 >= a->len || a->s[a->pos + 1] != '@')
            return address_fail(a, "bad source route");
        a->pos++;
    }
}

/* Mailbox = Local-part ["@" Domain], into out in internal form. */
static int address_mailbox(struct address_scan *a, struct strbuf *out)
{
    size_t local_len;
    int quoted = a->pos < a->len && a->s[a->pos] == '"';

    if (a->pos >= a->len)
        return address_fail(a, "empty address");
    if ((quoted ? address_quoted_string(a, out) : address_dot_string(a, out)) < 0)
        return -1;
    local_len = out->len;
    /* "" would be the null sender, ""@domain the "@domain" catch-all table key. */
    if (local_len == 0)
        return address_fail(a, "empty local part");
    if (a->pos < a->len && a->s[a->pos] == '@') {
        a->pos++;
        address_put(a, out, "@", 1);
        return address_domain_scan(a, out);
    }
    /* Without a domain, an '@' in a quoted local part would read as a domain later. */
    if (memchr(out->data, '@', local_len))
        return address_fail(a, "quoted '@' in an address without a domain");
    return 0;
}

int address_parse_path(const char *text, size_t len, int flags, struct strbuf *out,
                       size_t *used, struct strbuf *why)
{
    struct address_scan a = {(const unsigned char *) text, len, 0, flags, why, 0};
    struct strbuf scratch;
    int ret = -1;

    strbuf_reset(out);
    strbuf_init(&scratch, 64, ADDRESS_MAX_DOMAIN + 1);
    if (a.len > 0 && a.s[0] == '<') {
        a.pos = 1;
        if (a.pos < a.len && a.s[a.pos] == '>') {
            if (!(flags & ADDRESS_FLAG_EMPTY_OK)) {
                address_fail(&a, "empty address not allowed here");
                goto out;
            }
            a.pos++;
            ret = 0;
            goto out;
        }
        if (a.pos < a.len && a.s[a.pos] == '@' && address_route(&a, &scratch) < 0)
            goto out;
        if (address_mailbox(&a, out) < 0)
            goto out;
        if (a.pos >= a.len || a.s[a.pos] != '>') {
            address_fail(&a, a.pos >= a.len ? "missing \">\"" : "bad character in address");
            goto out;
        }
        a.pos++;
    } else if (flags & ADDRESS_FLAG_NO_BRACKETS_OK) {
        if (address_mailbox(&a, out) < 0)
            goto out;
        if (a.pos < a.len && a.s[a.pos] != ' ' && a.s[a.pos] != '\t') {
            address_fail(&a, "bad character in address");
            goto out;
        }
    } else {
        address_fail(&a, "missing \"<\"");
        goto out;
    }
    if (a.pos > ADDRESS_MAX_PATH) {
        address_fail(&a, "address longer than 512 bytes");
        goto out;
    }
    if (a.overflow) {
        address_fail(&a, "address too long for its buffer");
        goto out;
    }
    ret = 0;
out:
    strbuf_release(&scratch);
    if (ret == 0 && used)
        *used = a.pos;
    if (ret < 0)
        strbuf_reset(out);
    return ret;
}

/* ------------------------------------------------------------ quoting */

/* Whether a local part can go out unquoted as a Dot-string. */
static int address_dot_string_ok(const char *s, size_t len)
{
    size_t i;
    int prev_dot = 1;

    if (len == 0)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];

        if (c == '.') {
            if (prev_dot)
                return 0;
            prev_dot = 1;
        } else if (address_is_atext(c) || c >= 0x80) {
            prev_dot = 0;
        } else {
            return 0;
        }
    }
    return !prev_dot;
}

void address_quote(const char *internal, struct strbuf *out)
{
    const char *at = strrchr(internal, '@');
    size_t local_len = at ? (size_t) (at - internal) : strlen(internal), i;

    if (*internal == 0)
        return;                 /* the null sender: the caller adds "<>" */
    if (address_dot_string_ok(internal, local_len)) {
        strbuf_append(out, internal, local_len);
    } else {
        strbuf_putc(out, '"');
        for (i = 0; i < local_len; i++) {
            char c = internal[i];

            /* Only '"' and '\\' need a backslash (RFC 5321 quoted-pairSMTP). */
            if (c == '"' || c == '\\')
                strbuf_putc(out, '\\');
            strbuf_putc(out, c);
        }
        strbuf_putc(out, '"');
    }
    if (at)
        strbuf_puts(out, at);
}

/* ------------------------------------------------------------ helpers */

const char *address_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return at ? at + 1 : 0;
}

int address_domain_valid(const char *domain, int flags)
{
    struct address_scan a = {(const unsigned char *) domain, 0, 0, flags, 0, 0};
    struct strbuf scratch;
    int ok;

    a.len = strnlen(domain, ADDRESS_MAX_DOMAIN + 1);
    if (a.len > ADDRESS_MAX_DOMAIN)
        return 0;
    strbuf_init(&scratch, 64, ADDRESS_MAX_DOMAIN + 1);
    ok = address_domain_scan(&a, &scratch) == 0 && a.pos == a.len;
    strbuf_release(&scratch);
    return ok;
}

int address_domain_fqdn(const char *domain)
{
    return domain[0] == '[' || strchr(domain, '.') != 0;
}

/* Postfix keeps owner-list and list-request whole when '-' is a delimiter. */
static int address_split_exempt(const char *local, size_t len, const char *delims)
{
    return strchr(delims, '-') != 0
        && ((len > 6 && strncasecmp(local, "owner-", 6) == 0)
            || (len > 8 && strncasecmp(local + len - 8, "-request", 8) == 0));
}

int address_split_extension(const char *addr, const char *delims, struct strbuf *base,
                            struct strbuf *ext)
{
    const char *at = strrchr(addr, '@');
    size_t local_len = at ? (size_t) (at - addr) : strlen(addr), cut;

    strbuf_reset(base);
    strbuf_reset(ext);
    if (delims == 0 || *delims == 0 || local_len == 0
        || address_split_exempt(addr, local_len, delims)) {
        strbuf_puts(base, addr);
        return 0;
    }
    /* The first character is never a delimiter: "+foo" is a name, not an extension. */
    cut = 1 + strcspn(addr + 1, delims);
    if (cut >= local_len) {
        strbuf_puts(base, addr);
        return 0;
    }
    strbuf_append(base, addr, cut);
    if (at)
        strbuf_puts(base, at);
    strbuf_append(ext, addr + cut + 1, local_len - cut - 1);
    return 1;
}

int address_has_8bit(const char *text)
{
    for (; *text; text++)
        if ((unsigned char) *text >= 0x80)
            return 1;
    return 0;
}
