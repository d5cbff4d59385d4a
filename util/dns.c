/*
 * dns.c - MX, A and AAAA lookups for the SMTP client (API in dns.h).
 *
 * Queries go through libresolv's res_nquery (retransmission, TCP fallback on
 * truncation, ID matching), with the server list replaced by dns_servers when
 * that is set, as Petrel's one knob for split-horizon sites and tests. The
 * answer is parsed here, not by ns_parse, so that the parser is one bounded
 * function with a fuzz target (tests/fuzz/fuzz_dns.c).
 *
 * Must never: read outside the reply, follow more than DNS_MAX_JUMPS
 * compression pointers in one name, keep more records than asked, or call a
 * transient failure permanent. Failure: DNS_RETRY / DNS_FAIL with a reason.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <netdb.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "match_list.h"
#include "msg.h"
#include "mymalloc.h"

#define DNS_HDR_LEN     12
#define DNS_MAX_JUMPS   32      /* compression pointers followed in one name */
#define DNS_MAX_QUESTIONS 4

struct dns_resolver {
    struct __res_state rs;
};

/* Reads a name at *pos; writes it in lower case to out (NULL: skip) and moves
 * *pos past its encoding in place. 0, or -1 when malformed. */
static int dns_name_read(const unsigned char *msg, size_t len, size_t *pos, char *out)
{
    size_t p = *pos, outlen = 0, end = 0;
    int jumps = 0, jumped = 0;

    for (;;) {
        unsigned c;

        if (p >= len)
            return -1;
        c = msg[p];
        if ((c & 0xc0) == 0xc0) {
            if (p + 1 >= len || ++jumps > DNS_MAX_JUMPS)
                return -1;
            if (!jumped)
                end = p + 2;
            jumped = 1;
            p = ((c & 0x3f) << 8) | msg[p + 1];
            continue;
        }
        if (c & 0xc0)
            return -1;                  /* 0x40 / 0x80 label types are obsolete */
        if (c == 0) {
            if (!jumped)
                end = p + 1;
            break;
        }
        if (p + 1 + c > len)
            return -1;
        if (out) {
            size_t i;

            if (outlen + (outlen ? 1 : 0) + c > DNS_NAME_MAX)
                return -1;
            if (outlen)
                out[outlen++] = '.';
            for (i = 0; i < c; i++) {
                unsigned char ch = msg[p + 1 + i];

                /* A dot or a control character inside a label cannot be a host name. */
                if (ch == '.' || ch <= ' ' || ch == 0x7f)
                    return -1;
                out[outlen++] = (char) (ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            }
        }
        p += 1 + c;
    }
    if (out)
        out[outlen] = 0;
    *pos = end;
    return 0;
}

static unsigned dns_get16(const unsigned char *p)
{
    return (unsigned) p[0] << 8 | p[1];
}

static unsigned dns_get32(const unsigned char *p)
{
    return (unsigned) p[0] << 24 | (unsigned) p[1] << 16 | (unsigned) p[2] << 8 | p[3];
}

/* Fills one record from rdata; 1 kept, 0 skipped (not ours), -1 malformed. */
static int dns_rr_fill(const unsigned char *msg, size_t len, size_t rdpos, size_t rdlen,
                       int type, struct dns_rr *rr)
{
    size_t pos;

    memset(rr, 0, sizeof(*rr));
    rr->type = type;
    switch (type) {
    case DNS_TYPE_A:
    case DNS_TYPE_AAAA:
        if (rdlen != (type == DNS_TYPE_A ? 4u : 16u))
            return -1;
        memcpy(rr->addr, msg + rdpos, rdlen);
        rr->addr_len = (int) rdlen;
        return 1;
    case DNS_TYPE_MX:
        if (rdlen < 3)
            return -1;
        rr->pref = dns_get16(msg + rdpos);
        pos = rdpos + 2;
        if (dns_name_read(msg, len, &pos, rr->name) < 0 || pos > rdpos + rdlen)
            return -1;
        return 1;
    case DNS_TYPE_CNAME:
        pos = rdpos;
        if (dns_name_read(msg, len, &pos, rr->name) < 0 || pos > rdpos + rdlen)
            return -1;
        return 1;
    default:
        return 0;
    }
}

enum dns_status dns_reply_parse(const unsigned char *msg, size_t len, int qtype,
                                struct dns_rr *rr, int max, int *count, struct strbuf *why)
{
    unsigned flags, qd, an, i, rcode;
    size_t pos = DNS_HDR_LEN;

    *count = 0;
    if (len < DNS_HDR_LEN) {
        strbuf_set(why, "reply shorter than a DNS header");
        return DNS_FAIL;
    }
    flags = dns_get16(msg + 2);
    qd = dns_get16(msg + 4);
    an = dns_get16(msg + 6);
    rcode = flags & 0xf;
    if (!(flags & 0x8000)) {
        strbuf_set(why, "not a DNS reply");
        return DNS_FAIL;
    }
    if (rcode == 3) {
        strbuf_set(why, "Host not found");
        return DNS_NOTFOUND;
    }
    if (rcode != 0) {
        strbuf_reset(why);
        strbuf_printf(why, "Host not found, try again (rcode %u)", rcode);
        return DNS_RETRY;
    }
    if (qd > DNS_MAX_QUESTIONS) {
        strbuf_set(why, "malformed reply: too many questions");
        return DNS_FAIL;
    }
    for (i = 0; i < qd; i++) {
        if (dns_name_read(msg, len, &pos, NULL) < 0 || pos + 4 > len) {
            strbuf_set(why, "malformed reply: bad question");
            return DNS_FAIL;
        }
        pos += 4;
    }
    for (i = 0; i < an; i++) {
        unsigned type, cls, ttl;
        size_t rdlen;
        int r;

        if (dns_name_read(msg, len, &pos, NULL) < 0 || pos + 10 > len) {
            strbuf_set(why, "malformed reply: bad answer record");
            *count = 0;
            return DNS_FAIL;
        }
        type = dns_get16(msg + pos);
        cls = dns_get16(msg + pos + 2);
        ttl = dns_get32(msg + pos + 4);
        rdlen = dns_get16(msg + pos + 8);
        pos += 10;
        if (rdlen > len - pos) {
            strbuf_set(why, "malformed reply: record data past the end");
            *count = 0;
            return DNS_FAIL;
        }
        if ((int) type == qtype && cls == 1 && *count < max) {
            if ((r = dns_rr_fill(msg, len, pos, rdlen, (int) type, rr + *count)) < 0) {
                strbuf_set(why, "malformed reply: bad record data");
                *count = 0;
                return DNS_FAIL;
            }
            if (r > 0)
                rr[(*count)++].ttl = ttl;
        }
        pos += rdlen;
    }
    if (*count == 0) {
        strbuf_set(why, "No data of that type");
        return DNS_NODATA;
    }
    strbuf_reset(why);
    return DNS_OK;
}

/* Replaces the resolver's servers by the dns_servers list (IPv4 ip[:port]). */
static int dns_set_servers(struct dns_resolver *r, const char *servers, struct strbuf *why)
{
    char *copy, *cp, *w;
    int bad, n = 0;

    copy = cp = xstrdup(servers);
    while ((w = match_list_next_word(&cp, &bad)) != NULL) {
        struct sockaddr_in sin;
        char host[64];
        const char *colon = strrchr(w, ':');
        char *end;
        long port = 53;

        if (n >= MAXNS) {
            msg_warn("dns_servers: ignoring \"%s\": at most %d servers are used", w, MAXNS);
            continue;
        }
        memset(&sin, 0, sizeof(sin));
        snprintf(host, sizeof(host), "%.*s", (int) (colon ? colon - w : (long) strlen(w)), w);
        if (colon) {
            port = strtol(colon + 1, &end, 10);
            if (*end != 0)
                port = -1;
        }
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 || port <= 0 || port > 65535) {
            msg_warn("dns_servers: ignoring \"%s\": not an IPv4 address with an optional port", w);
            continue;
        }
        sin.sin_family = AF_INET;
        sin.sin_port = htons((unsigned short) port);
        r->rs.nsaddr_list[n++] = sin;
    }
    free(copy);
    if (n == 0) {
        strbuf_set(why, "dns_servers names no usable server");
        return -1;
    }
    r->rs.nscount = n;
    return 0;
}

struct dns_resolver *dns_open(const char *servers, int timeout_s, int tries, struct strbuf *why)
{
    struct dns_resolver *r = xcalloc(1, sizeof(*r));

    if (res_ninit(&r->rs) != 0) {
        strbuf_set(why, "resolver initialisation failed");
        free(r);
        return NULL;
    }
    if (servers && *servers && dns_set_servers(r, servers, why) < 0) {
        res_nclose(&r->rs);
        free(r);
        return NULL;
    }
    r->rs.retrans = timeout_s > 0 ? timeout_s : 5;
    r->rs.retry = tries > 0 ? tries : 2;
    r->rs.options &= ~(unsigned long) (RES_DNSRCH | RES_DEFNAMES);
    return r;
}

void dns_close(struct dns_resolver **rp)
{
    if (*rp == NULL)
        return;
    res_nclose(&(*rp)->rs);
    free(*rp);
    *rp = NULL;
}

enum dns_status dns_lookup(struct dns_resolver *r, const char *name, int type,
                           struct dns_rr *rr, int max, int *count, struct strbuf *why)
{
    unsigned char *answer;
    enum dns_status st;
    int len;

    *count = 0;
    if (*name == 0 || strlen(name) > DNS_NAME_MAX) {
        strbuf_set(why, "malformed domain name");
        return DNS_FAIL;
    }
    answer = xmalloc(DNS_REPLY_MAX);
    len = res_nquery(&r->rs, name, ns_c_in, type, answer, DNS_REPLY_MAX);
    if (len > 0) {
        st = dns_reply_parse(answer, (size_t) (len > DNS_REPLY_MAX ? DNS_REPLY_MAX : len),
                             type, rr, max, count, why);
    } else {
        switch (r->rs.res_h_errno) {
        case HOST_NOT_FOUND:
            strbuf_set(why, "Host not found");
            st = DNS_NOTFOUND;
            break;
        case NO_DATA:
            strbuf_set(why, "No data of that type");
            st = DNS_NODATA;
            break;
        default:
            /* SERVFAIL, timeouts, REFUSED, FORMERR: a fault on the way, not an answer. */
            strbuf_set(why, "Host not found, try again");
            st = DNS_RETRY;
            break;
        }
    }
    free(answer);
    return st;
}

static int dns_mx_cmp(const void *a, const void *b)
{
    const struct dns_rr *x = a, *y = b;

    return x->pref < y->pref ? -1 : x->pref > y->pref;
}

void dns_mx_sort(struct dns_rr *rr, int n)
{
    int i, j;

    if (n < 2)
        return;
    qsort(rr, (size_t) n, sizeof(*rr), dns_mx_cmp);
    for (i = 0; i < n; i = j) {
        int k;

        for (j = i + 1; j < n && rr[j].pref == rr[i].pref; j++)
            ;
        for (k = j - 1; k > i; k--) {
            int pick = i + (int) arc4random_uniform((unsigned) (k - i + 1));
            struct dns_rr tmp = rr[k];

            rr[k] = rr[pick];
            rr[pick] = tmp;
        }
    }
}

int dns_mx_is_null(const struct dns_rr *rr, int n)
{
    return n == 1 && rr[0].type == DNS_TYPE_MX && rr[0].name[0] == 0;
}

const char *dns_addr_str(const struct dns_rr *rr, char *buf, size_t size)
{
    if (inet_ntop(rr->addr_len == 4 ? AF_INET : AF_INET6, rr->addr, buf, (socklen_t) size) == NULL)
        snprintf(buf, size, "?");
    return buf;
}
