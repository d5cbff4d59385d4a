/*
 * match_list.c - host, domain and address lists with Postfix's semantics
 * (see match_list.h for the pattern forms).
 * Patterns are parsed once, at open: names are lowercased, addresses and
 * networks converted to bytes, tables opened (shared handles), files read.
 * Matching never allocates except inside table lookups and never exits.
 * A bad pattern fails the open with "param: reason"; a table lookup failure
 * answers -1 so the caller defers. Every loop is bounded by the pattern count
 * or the length of the name being matched.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dict.h"
#include "dict_impl.h"
#include "match_list.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "strbuf.h"

enum match_pat_type {
    MATCH_PAT_NAME,             /* a host or domain name, ".domain", or a word */
    MATCH_PAT_TABLE,            /* type:table */
    MATCH_PAT_BROKEN,           /* a table that could not be opened: always retry */
    MATCH_PAT_ADDR,             /* one address */
    MATCH_PAT_NET,              /* address/bits */
};

struct match_pat {
    enum match_pat_type type;
    int negate;
    char *text;                 /* lowercased name, or the spec of a table */
    struct dict *dict;
    int family;                 /* 4 or 6 for ADDR and NET */
    int bits;
    unsigned char addr[16];
};

struct match_list {
    char *param;
    enum match_list_kind kind;
    int parent;                 /* parent_domain_matches_subdomains lists param */
    struct match_pat *pats;
    size_t count;
};

#define MATCH_FILE_MAX  (16 * 1024 * 1024)      /* a /file/name pattern file */

char *match_list_next_word(char **cursor, int *bad)
{
    return dict_token(cursor, DICT_LIST_SEP, bad);
}

int match_list_parent_style(const char *param)
{
    char *copy, *cp, *word;
    int bad, found = 0;

    if (var_parent_domain_matches_subdomains == NULL || param == NULL)
        return 0;
    copy = cp = xstrdup(var_parent_domain_matches_subdomains);
    while (!found && (word = match_list_next_word(&cp, &bad)) != NULL)
        found = strcasecmp(word, param) == 0;
    free(copy);
    return found;
}

int match_list_parse_addr(const char *text, int *family, unsigned char addr[16])
{
    char buf[INET6_ADDRSTRLEN + 8];
    size_t len = strlen(text);
    struct in_addr a4;
    struct in6_addr a6;

    if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
        text++;
        len -= 2;
    }
    if (len >= 5 && strncasecmp(text, "IPv6:", 5) == 0) {
        text += 5;
        len -= 5;
    }
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, text, len);
    buf[len] = 0;
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        *family = 4;
        memcpy(addr, &a4, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            *family = 4;
            memcpy(addr, a6.s6_addr + 12, 4);
        } else {
            *family = 6;
            memcpy(addr, a6.s6_addr, 16);
        }
        return 0;
    }
    return -1;
}

/* Whether addr lies in net/bits (both of one family's length). */
static int match_net_contains(const unsigned char *net, int bits, const unsigned char *addr)
{
    int i;

    for (i = 0; bits > 0; i++, bits -= 8) {
        unsigned char mask = bits >= 8 ? 0xff : (unsigned char) (0xff << (8 - bits));

        if ((net[i] & mask) != (addr[i] & mask))
            return 0;
    }
    return 1;
}

/* "addr/bits", the address optionally in brackets ("[::1]/128"). */
static int match_parse_net(const char *text, struct match_pat *p, struct strbuf *why)
{
    const char *slash = strrchr(text, '/');
    char addr[INET6_ADDRSTRLEN + 16];
    char *end;
    long bits;
    int max, i;

    if ((size_t) (slash - text) >= sizeof(addr)) {
        strbuf_printf(why, "bad net/mask pattern \"%s\"", text);
        return -1;
    }
    memcpy(addr, text, (size_t) (slash - text));
    addr[slash - text] = 0;
    errno = 0;
    bits = strtol(slash + 1, &end, 10);
    if (match_list_parse_addr(addr, &p->family, p->addr) < 0 || slash[1] == 0 || *end
        || errno || !isdigit((unsigned char) slash[1])) {
        strbuf_printf(why, "bad net/mask pattern \"%s\"", text);
        return -1;
    }
    /* An IPv4-mapped network "[::ffff:127.0.0.0]/104" is the IPv4 network /8. */
    if (p->family == 4 && strchr(addr, ':'))
        bits -= 96;
    max = p->family == 4 ? 32 : 128;
    if (bits < 0 || bits > max) {
        strbuf_printf(why, "bad net/mask pattern \"%s\"", text);
        return -1;
    }
    p->bits = (int) bits;
    for (i = 0; i < max / 8; i++) {
        int b = (int) bits - i * 8;
        unsigned char mask = b >= 8 ? 0xff : b <= 0 ? 0 : (unsigned char) (0xff << (8 - b));

        if (p->addr[i] & ~mask) {
            strbuf_printf(why, "non-null host address bits in \"%s\", perhaps you should use "
                          "the network address", text);
            return -1;
        }
    }
    p->type = MATCH_PAT_NET;
    return 0;
}

static int match_parse_list(struct match_list *list, const char *value, int negate, int depth,
                            struct strbuf *why);

/* Reads a /file/name pattern file and parses its contents in place. */
static int match_parse_file(struct match_list *list, const char *path, int negate, int depth,
                            struct strbuf *why)
{
    struct strbuf text;
    char buf[8192], *line, *next, *hash;
    size_t n;
    FILE *fp;
    int ret = 0;

    if (depth >= MATCH_LIST_MAX_DEPTH) {
        strbuf_printf(why, "%s: pattern files nested more than %d deep", path,
                      MATCH_LIST_MAX_DEPTH);
        return -1;
    }
    if ((fp = fopen(path, "r")) == NULL) {
        strbuf_printf(why, "open %s: %s", path, strerror(errno));
        return -1;
    }
    strbuf_init(&text, 4096, MATCH_FILE_MAX);
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
        if (strbuf_append(&text, buf, n) < 0) {
            strbuf_printf(why, "%s: file larger than %d bytes", path, MATCH_FILE_MAX);
            ret = -1;
            break;
        }
    }
    if (ret == 0 && ferror(fp)) {
        strbuf_printf(why, "read %s: %s", path, strerror(errno));
        ret = -1;
    }
    fclose(fp);
    if (ret == 0 && memchr(text.data, 0, text.len)) {
        strbuf_printf(why, "%s: file contains a NUL byte", path);
        ret = -1;
    }
    for (line = text.data; ret == 0 && line && *line; line = next) {
        if ((next = strchr(line, '\n')) != NULL)
            *next++ = 0;
        if ((hash = strchr(line, '#')) != NULL)
            *hash = 0;
        ret = match_parse_list(list, line, negate, depth + 1, why);
    }
    strbuf_release(&text);
    return ret;
}

static struct match_pat *match_add(struct match_list *list, struct strbuf *why)
{
    struct match_pat *p;

    if (list->count >= MATCH_LIST_MAX_PATTERNS) {
        strbuf_printf(why, "more than %d patterns", MATCH_LIST_MAX_PATTERNS);
        return NULL;
    }
    list->pats = xreallocarray(list->pats, list->count + 1, sizeof(*list->pats));
    p = list->pats + list->count++;
    memset(p, 0, sizeof(*p));
    return p;
}

/* A "type:name" pattern: a known type (or proxy:) before the colon, or an
 * unknown one that is no address either ("2001:db8::1" is an address). */
static int match_is_table(const char *word)
{
    size_t n = strcspn(word, ":/[{"), i;
    char type[64], buf[INET6_ADDRSTRLEN + 16];
    unsigned char bin[16];
    int family;

    if (word[n] != ':' || n == 0 || n >= sizeof(type))
        return 0;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char) word[i]) && word[i] != '_' && word[i] != '-')
            return 0;
    memcpy(type, word, n);
    type[n] = 0;
    if (dict_type_known(type) || strcmp(type, "proxy") == 0)
        return 1;
    n = strcspn(word, "/");
    if (n < sizeof(buf)) {
        memcpy(buf, word, n);
        buf[n] = 0;
        if (match_list_parse_addr(buf, &family, bin) == 0)
            return 0;
    }
    return 1;
}

static int match_parse_table(struct match_list *list, struct match_pat *p, const char *word,
                             struct strbuf *why)
{
    char type[64];
    size_t n = strcspn(word, ":");
    struct strbuf err;

    if (n >= sizeof(type)) {
        strbuf_printf(why, "bad table name \"%s\"", word);
        return -1;
    }
    memcpy(type, word, n);
    type[n] = 0;
    /* proxy: (proxymap) is transparent here: lookups happen in this process. */
    if (strcmp(type, "proxy") == 0) {
        if (strncmp(word + n + 1, "proxy:", 6) == 0 || !strchr(word + n + 1, ':')) {
            strbuf_printf(why, "bad table name \"%s\"", word);
            return -1;
        }
        return match_parse_table(list, p, word + n + 1, why);
    }
    if (!dict_type_known(type)) {
        strbuf_printf(why, "unsupported dictionary type \"%s\" in \"%s\"", type, word);
        return -1;
    }
    p->text = xstrdup(word);
    strbuf_init(&err, 256, 64 * 1024);
    p->dict = dict_open_shared(word, DICT_FLAG_FOLD_KEY, &err);
    if (p->dict == NULL) {
        msg_warn("%s: table %s is unavailable (%s); lookups will be deferred",
                 list->param, word, err.data);
        p->type = MATCH_PAT_BROKEN;
    } else {
        p->type = MATCH_PAT_TABLE;
    }
    strbuf_release(&err);
    return 0;
}

static int match_parse_word(struct match_list *list, char *word, int negate, int depth,
                            struct strbuf *why)
{
    struct match_pat *p;
    size_t len;

    while (*word == '!') {
        negate = !negate;
        word++;
    }
    if (*word == 0) {
        strbuf_printf(why, "empty pattern after \"!\"");
        return -1;
    }
    if (*word == '/')
        return match_parse_file(list, word, negate, depth, why);
    if ((p = match_add(list, why)) == NULL)
        return -1;
    p->negate = negate;
    if (match_is_table(word))
        return match_parse_table(list, p, word, why);
    if (list->kind != MATCH_LIST_STRING) {
        if (strchr(word, '/'))
            return match_parse_net(word, p, why);
        if (match_list_parse_addr(word, &p->family, p->addr) == 0) {
            p->type = MATCH_PAT_ADDR;
            return 0;
        }
        len = strlen(word);
        if (word[0] == '[' || (len > 1 && word[len - 1] == ']')) {
            strbuf_printf(why, "bad address pattern \"%s\"", word);
            return -1;
        }
        if (list->kind == MATCH_LIST_ADDR) {
            strbuf_printf(why, "bad address pattern \"%s\": only addresses and networks "
                          "are allowed here", word);
            return -1;
        }
    }
    p->type = MATCH_PAT_NAME;
    p->text = xstrdup(word);
    dict_fold(p->text);
    /* "example.com." names the same domain as "example.com". */
    len = strlen(p->text);
    if (list->kind != MATCH_LIST_STRING && len > 1 && p->text[len - 1] == '.')
        p->text[len - 1] = 0;
    return 0;
}

static int match_parse_list(struct match_list *list, const char *value, int negate, int depth,
                            struct strbuf *why)
{
    char *copy = xstrdup(value), *cp = copy, *word;
    int bad = 0, ret = 0;

    while (ret == 0 && (word = match_list_next_word(&cp, &bad)) != NULL)
        ret = match_parse_word(list, word, negate, depth, why);
    if (ret == 0 && bad) {
        strbuf_printf(why, "unbalanced \"{\" or \"}\" in \"%s\"", value);
        ret = -1;
    }
    free(copy);
    return ret;
}

struct match_list *match_list_open(const char *param, enum match_list_kind kind,
                                   const char *value, struct strbuf *err)
{
    struct match_list *list = xcalloc(1, sizeof(*list));
    struct strbuf why;

    list->param = xstrdup(param ? param : "match list");
    list->kind = kind;
    list->parent = match_list_parent_style(param);
    strbuf_init(&why, 128, 64 * 1024);
    if (match_parse_list(list, value ? value : "", 0, 0, &why) < 0) {
        strbuf_printf(err, "%s: %s", list->param, why.data);
        strbuf_release(&why);
        match_list_free(&list);
        return NULL;
    }
    strbuf_release(&why);
    return list;
}

void match_list_free(struct match_list **listp)
{
    struct match_list *list = *listp;
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; i < list->count; i++) {
        free(list->pats[i].text);
        dict_close(&list->pats[i].dict);
    }
    free(list->pats);
    free(list->param);
    free(list);
    *listp = NULL;
}

/*
 * Matching one pattern: 1 match, 0 no match, -1 lookup failure.
 */

/* Name against a name pattern (Postfix's match_hostname without tables). */
static int match_name(const struct match_list *list, const char *name, const char *pat)
{
    size_t nlen = strlen(name), plen = strlen(pat);
    const char *tail;

    if (strcmp(name, pat) == 0)
        return 1;
    if (list->kind == MATCH_LIST_STRING || plen == 0 || nlen <= plen)
        return 0;
    tail = name + nlen - plen;
    if (pat[0] == '.')
        return strcmp(tail, pat) == 0;
    return list->parent && tail[-1] == '.' && strcmp(tail, pat) == 0;
}

/* Name against a table: the name, then its parent domains ("example.com" with
 * the parent style, ".example.com" without); parents only in fixed tables. */
static int match_name_table(const struct match_list *list, struct dict *d, const char *name)
{
    const char *entry = name, *next;

    while (*entry) {
        if (entry == name || (dict_flags(d) & DICT_FLAG_FIXED)) {
            if (dict_get(d, entry) != NULL)
                return 1;
            if (dict_error(d) != DICT_ERR_NONE)
                return -1;
        }
        if (list->kind == MATCH_LIST_STRING || (next = strchr(entry + 1, '.')) == NULL)
            break;
        entry = list->parent ? next + 1 : next;
    }
    return 0;
}

static int match_addr_pat(const struct match_pat *p, int family, const unsigned char *addr)
{
    if (family != p->family)
        return 0;
    if (p->type == MATCH_PAT_ADDR)
        return memcmp(p->addr, addr, family == 4 ? 4 : 16) == 0;
    return match_net_contains(p->addr, p->bits, addr);
}

static int match_table_key(struct dict *d, const char *key)
{
    if (dict_get(d, key) != NULL)
        return 1;
    return dict_error(d) != DICT_ERR_NONE ? -1 : 0;
}

/* The whole list; name (lowercased, may be NULL) and addr (may be NULL). */
static int match_list_run(struct match_list *list, const char *name, const char *addr)
{
    unsigned char bin[16];
    int family = 0, have_addr = 0, r;
    size_t i;

    if (addr && *addr && match_list_parse_addr(addr, &family, bin) == 0)
        have_addr = 1;
    for (i = 0; i < list->count; i++) {
        const struct match_pat *p = list->pats + i;

        r = 0;
        switch (p->type) {
        case MATCH_PAT_BROKEN:
            msg_warn("%s: table %s is unavailable", list->param, p->text);
            return -1;
        case MATCH_PAT_TABLE:
            if (name && *name)
                r = match_name_table(list, p->dict, name);
            if (r == 0 && addr && *addr)
                r = match_table_key(p->dict, addr);
            break;
        case MATCH_PAT_NAME:
            r = name && *name && match_name(list, name, p->text);
            break;
        case MATCH_PAT_ADDR:
        case MATCH_PAT_NET:
            r = have_addr && match_addr_pat(p, family, bin);
            break;
        }
        if (r < 0)
            return -1;
        if (r > 0)
            return p->negate ? 0 : 1;
    }
    return 0;
}

static int match_list_named(struct match_list *list, const char *name, const char *addr)
{
    struct strbuf folded;
    int r;
    size_t len;

    if (name == NULL)
        return match_list_run(list, NULL, addr);
    strbuf_init(&folded, 64, STRBUF_UNLIMITED);
    strbuf_set(&folded, name);
    dict_fold(folded.data);
    len = folded.len;
    if (list->kind != MATCH_LIST_STRING && len > 1 && folded.data[len - 1] == '.')
        strbuf_truncate(&folded, len - 1);
    r = match_list_run(list, folded.data, addr);
    strbuf_release(&folded);
    return r;
}

int match_list_domain(struct match_list *list, const char *domain)
{
    if (domain == NULL || *domain == 0)
        return 0;
    /* An address literal "[1.2.3.4]" is matched as an address, as in Postfix. */
    if (domain[0] == '[')
        return match_list_named(list, domain, domain);
    return match_list_named(list, domain, NULL);
}

int match_list_host(struct match_list *list, const char *name, const char *addr)
{
    if (name && strcmp(name, "unknown") == 0)
        name = NULL;
    return match_list_named(list, name, addr);
}

int match_list_addr(struct match_list *list, const char *addr)
{
    if (addr == NULL || *addr == 0)
        return 0;
    return match_list_run(list, NULL, addr);
}

int match_list_string(struct match_list *list, const char *word)
{
    if (word == NULL)
        return 0;
    return match_list_named(list, word, NULL);
}
