/*
 * dict_cidr.c - cidr:FILE, "network/prefix result" rules for IPv4 and IPv6
 * client addresses; the first matching rule wins.
 * A rule without "/prefix" matches that one address. An address in brackets
 * ("[::1]/128") is accepted. A network with host bits set, a prefix out of
 * range or a missing result fails the open with "FILE:LINE: message", so a
 * typo cannot silently widen or narrow an access rule. A lookup key that is
 * not an IP address matches nothing; lookups never fail.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "dict_impl.h"
#include "mymalloc.h"

struct dict_cidr_rule {
    int family;                 /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;            /* bits */
    char *result;
};

struct dict_cidr {
    struct dict dict;
    struct dict_cidr_rule *rules;
    size_t count;
};

/* Parses an address, optionally in brackets; returns its byte length or 0. */
static size_t dict_cidr_parse_addr(char *text, int *family, unsigned char *addr)
{
    size_t len = strlen(text);

    if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
        text[len - 1] = 0;
        text++;
    }
    if (strchr(text, ':')) {
        *family = AF_INET6;
        return inet_pton(AF_INET6, text, addr) == 1 ? 16 : 0;
    }
    *family = AF_INET;
    return inet_pton(AF_INET, text, addr) == 1 ? 4 : 0;
}

static int dict_cidr_match(const struct dict_cidr_rule *rule, int family,
                           const unsigned char *addr)
{
    unsigned whole = rule->prefix / 8, rest = rule->prefix % 8;
    unsigned char mask;

    if (family != rule->family)
        return 0;
    if (memcmp(addr, rule->addr, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    mask = (unsigned char) (0xff << (8 - rest));
    return (addr[whole] & mask) == rule->addr[whole];
}

static const char *dict_cidr_get(struct dict *d, const char *key)
{
    struct dict_cidr *dc = (struct dict_cidr *) d;
    unsigned char addr[16];
    char buf[INET6_ADDRSTRLEN + 3];
    int family;
    size_t i;

    if (strlen(key) >= sizeof(buf))
        return NULL;
    strcpy(buf, key);
    if (dict_cidr_parse_addr(buf, &family, addr) == 0)
        return NULL;
    for (i = 0; i < dc->count; i++)
        if (dict_cidr_match(dc->rules + i, family, addr))
            return dc->rules[i].result;
    return NULL;
}

static void dict_cidr_close(struct dict *d)
{
    struct dict_cidr *dc = (struct dict_cidr *) d;
    size_t i;

    for (i = 0; i < dc->count; i++)
        free(dc->rules[i].result);
    free(dc->rules);
}

/* Parses "prefix" digits; returns -1 unless 0 <= value <= max. */
static int dict_cidr_prefix(const char *text, unsigned max)
{
    unsigned value = 0;

    if (*text == 0)
        return -1;
    for (; *text; text++) {
        if (*text < '0' || *text > '9')
            return -1;
        value = value * 10 + (unsigned) (*text - '0');
        if (value > max)
            return -1;
    }
    return (int) value;
}

/* Parses one rule line in place; returns -1 with the message in why. */
static int dict_cidr_parse_rule(char *line, struct dict_cidr_rule *rule, struct strbuf *why)
{
    char *net, *result, *slash;
    size_t alen;
    int prefix;
    unsigned i;

    if (dict_split_postmap(line, &net, &result, why) < 0)
        return -1;
    if (*result == 0) {
        strbuf_puts(why, "missing result after the network");
        return -1;
    }
    if ((slash = strchr(net, '/')) != NULL)
        *slash = 0;
    if ((alen = dict_cidr_parse_addr(net, &rule->family, rule->addr)) == 0) {
        strbuf_printf(why, "bad network address \"%s\"", net);
        return -1;
    }
    if (slash == NULL) {
        prefix = (int) alen * 8;
    } else if ((prefix = dict_cidr_prefix(slash + 1, (unsigned) alen * 8)) < 0) {
        strbuf_printf(why, "bad network prefix length \"/%s\" (0..%zu)", slash + 1, alen * 8);
        return -1;
    }
    rule->prefix = (unsigned) prefix;
    for (i = rule->prefix; i < alen * 8; i++) {
        if (rule->addr[i / 8] & (0x80 >> (i % 8))) {
            strbuf_printf(why, "non-zero host bits in \"%s/%d\"", net, prefix);
            return -1;
        }
    }
    rule->result = xstrdup(result);
    return 0;
}

static struct dict *dict_cidr_parse(const char *spec, const char *name, const char *buf, size_t len,
                             int flags, struct strbuf *err)
{
    struct dict_cidr *dc;
    struct dict *d;
    struct dict_source src;
    struct strbuf why;
    int status;

    dc = (struct dict_cidr *) dict_alloc(sizeof(*dc), spec, flags | DICT_FLAG_PATTERN);
    dc->dict.get = dict_cidr_get;
    dc->dict.close = dict_cidr_close;
    d = &dc->dict;
    strbuf_init(&why, 64, STRBUF_UNLIMITED);
    dict_source_init(&src, name, buf, len);
    while ((status = dict_source_next(&src, err)) > 0) {
        dc->rules = xreallocarray(dc->rules, dc->count + 1, sizeof(*dc->rules));
        if (dict_cidr_parse_rule(src.line.data, dc->rules + dc->count, &why) < 0) {
            dict_source_where(&src, err);
            strbuf_append(err, why.data, why.len);
            status = -1;
            break;
        }
        dc->count++;
    }
    dict_source_release(&src);
    strbuf_release(&why);
    if (status < 0)
        dict_close(&d);
    return d;
}

struct dict *dict_cidr_open(const char *spec, const char *name, int flags, struct strbuf *err)
{
    return dict_source_open_file(spec, name, flags, dict_cidr_parse, err);
}

struct dict *dict_cidr_open_buf(const char *name, const char *buf, size_t len, int flags,
                                struct strbuf *err)
{
    return dict_source_open_buf("cidr", name, buf, len, flags, dict_cidr_parse, err);
}
