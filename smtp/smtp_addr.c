/*
 * smtp_addr.c - from a nexthop to the list of server addresses to try.
 *
 * Forms (Postfix's): "domain" and "domain:port" (MX lookup, falling back to
 * the domain's own A/AAAA when it has no MX), "[host]" and "[host]:port"
 * (no MX), "inet:host:port" and "unix:/path" (LMTP; LMTP never looks up MX).
 * An empty nexthop means the recipient's domain. MX records are sorted by
 * preference (random among equals); each host's addresses follow
 * inet_protocols and smtp_address_preference; the list is cut at
 * smtp_mx_address_limit. A null MX (RFC 7505) bounces 5.1.10 without any
 * connection; an MX list whose best host is this machine is a mail loop,
 * 5.4.6; DNS faults (SERVFAIL, timeout) defer.
 *
 * Must never: turn a transient lookup failure into a bounce, or list more
 * than SMTP_ADDR_LIST_MAX addresses. Failure: -1 with the outcome for every
 * recipient in *fail.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "match_list.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "smtp.h"

#define SMTP_SELF_MAX 64

static struct dns_resolver *smtp_dns;
static struct {
    int family;
    unsigned char addr[16];
} smtp_self[SMTP_SELF_MAX];
static int smtp_self_count;
static int smtp_want_v4 = 1, smtp_want_v6 = 1;

static void smtp_self_add(int family, const void *addr)
{
    if (smtp_self_count >= SMTP_SELF_MAX)
        return;
    smtp_self[smtp_self_count].family = family;
    memcpy(smtp_self[smtp_self_count].addr, addr, family == AF_INET ? 4 : 16);
    smtp_self_count++;
}

/* Adds the addresses of an inet_interfaces / proxy_interfaces word. */
static void smtp_self_add_word(const char *w)
{
    struct addrinfo hints = {0}, *res, *ai;
    char host[SMTP_HOST_MAX + 1];
    size_t len = strlen(w);

    if (strcmp(w, "loopback-only") == 0) {
        struct in_addr lo4;

        inet_pton(AF_INET, "127.0.0.1", &lo4);
        smtp_self_add(AF_INET, &lo4);
        smtp_self_add(AF_INET6, &in6addr_loopback);
        return;
    }
    if (len >= 2 && w[0] == '[' && w[len - 1] == ']')
        snprintf(host, sizeof(host), "%.*s", (int) len - 2, w + 1);
    else
        snprintf(host, sizeof(host), "%s", w);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0) {
        msg_warn("inet_interfaces: cannot find the address of \"%s\"", w);
        return;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET)
            smtp_self_add(AF_INET, &((struct sockaddr_in *) ai->ai_addr)->sin_addr);
        else if (ai->ai_family == AF_INET6)
            smtp_self_add(AF_INET6, &((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr);
    }
    freeaddrinfo(res);
}

static void smtp_self_add_list(const char *value)
{
    char *copy, *cp, *w;
    int bad;

    copy = cp = xstrdup(value ? value : "");
    while ((w = match_list_next_word(&cp, &bad)) != NULL)
        smtp_self_add_word(w);
    free(copy);
}

/* Which addresses are "myself", for the MX loop check (Postfix: the
 * interfaces we listen on, plus proxy_interfaces). */
void smtp_addr_init(void)
{
    const char *p = var_inet_protocols ? var_inet_protocols : "all";

    if (strstr(p, "all") == NULL) {
        smtp_want_v4 = strstr(p, "ipv4") != NULL;
        smtp_want_v6 = strstr(p, "ipv6") != NULL;
    }
    if (var_inet_interfaces == NULL || strcmp(var_inet_interfaces, "all") == 0
        || *var_inet_interfaces == 0) {
        struct ifaddrs *ifa, *i;

        if (getifaddrs(&ifa) == 0) {
            for (i = ifa; i; i = i->ifa_next) {
                if (i->ifa_addr == NULL)
                    continue;
                if (i->ifa_addr->sa_family == AF_INET)
                    smtp_self_add(AF_INET, &((struct sockaddr_in *) i->ifa_addr)->sin_addr);
                else if (i->ifa_addr->sa_family == AF_INET6)
                    smtp_self_add(AF_INET6, &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr);
            }
            freeifaddrs(ifa);
        }
    } else {
        smtp_self_add_list(var_inet_interfaces);
    }
    smtp_self_add_list(var_proxy_interfaces);
}

static int smtp_is_self(const struct smtp_addr *a)
{
    int i;

    for (i = 0; i < smtp_self_count; i++) {
        if (a->sa.ss_family == AF_INET && smtp_self[i].family == AF_INET
            && memcmp(&((const struct sockaddr_in *) &a->sa)->sin_addr, smtp_self[i].addr, 4) == 0)
            return 1;
        if (a->sa.ss_family == AF_INET6 && smtp_self[i].family == AF_INET6
            && memcmp(&((const struct sockaddr_in6 *) &a->sa)->sin6_addr, smtp_self[i].addr, 16) == 0)
            return 1;
    }
    return 0;
}

static void smtp_fail_set(struct smtp_fail *fail, int status, const char *dsn,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void smtp_fail_set(struct smtp_fail *fail, int status, const char *dsn,
                          const char *fmt, ...)
{
    va_list ap;

    fail->status = status;
    snprintf(fail->dsn, sizeof(fail->dsn), "%s", dsn);
    strbuf_reset(&fail->text);
    va_start(ap, fmt);
    strbuf_vprintf(&fail->text, fmt, ap);
    va_end(ap);
}

/* Port from a decimal number or a service name; -1 when neither. */
static int smtp_port_parse(const char *s)
{
    char *end;
    long n;
    struct servent *se;

    if (*s == 0)
        return -1;
    n = strtol(s, &end, 10);
    if (*end == 0)
        return n > 0 && n <= 65535 ? (int) n : -1;
    if ((se = getservbyname(s, "tcp")) != NULL)
        return ntohs((unsigned short) se->s_port);
    return -1;
}

/* Appends one address if it is wanted and there is room; 1 appended. */
static int smtp_addr_add(struct smtp_addr_list *list, int family, const void *addr,
                         const char *host, unsigned pref, int port)
{
    struct smtp_addr *a;

    if ((family == AF_INET && !smtp_want_v4) || (family == AF_INET6 && !smtp_want_v6))
        return 0;
    if (list->count >= SMTP_ADDR_LIST_MAX)
        return 0;
    a = &list->a[list->count];
    memset(a, 0, sizeof(*a));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *) &a->sa;

        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, addr, 4);
        sin->sin_port = htons((unsigned short) port);
        a->salen = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &a->sa;

        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, addr, 16);
        sin6->sin6_port = htons((unsigned short) port);
        a->salen = sizeof(*sin6);
    }
    inet_ntop(family, addr, a->addr, sizeof(a->addr));
    snprintf(a->host, sizeof(a->host), "%s", host);
    a->pref = pref;
    list->count++;
    return 1;
}

static int smtp_lookup_uses(const char *what)
{
    const char *v = var_smtp_host_lookup && *var_smtp_host_lookup ? var_smtp_host_lookup : "dns";

    if (var_disable_dns_lookups && strcmp(what, "native") == 0)
        return 1;
    if (var_disable_dns_lookups)
        return 0;
    return strstr(v, what) != NULL;
}

static struct dns_resolver *smtp_resolver(struct strbuf *why)
{
    if (smtp_dns == NULL)
        smtp_dns = dns_open(var_dns_servers, 5, 2, why);
    return smtp_dns;
}

/*
 * The addresses of one host name, IPv6 first when smtp_address_preference
 * says so. Returns the number appended, or -1 with st set to the worst DNS
 * outcome when there were none.
 */
static int smtp_host_addrs(struct smtp_addr_list *list, const char *host, unsigned pref,
                           int port, enum dns_status *st, struct strbuf *why)
{
    int order[2] = {DNS_TYPE_A, DNS_TYPE_AAAA}, added = 0, i, j;
    unsigned char bin[16];
    enum dns_status worst = DNS_NOTFOUND;

    if (inet_pton(AF_INET, host, bin) == 1)
        return smtp_addr_add(list, AF_INET, bin, host, pref, port) ? 1 : (*st = DNS_NODATA, -1);
    if (inet_pton(AF_INET6, host, bin) == 1)
        return smtp_addr_add(list, AF_INET6, bin, host, pref, port) ? 1 : (*st = DNS_NODATA, -1);
    if (var_smtp_address_preference && strcmp(var_smtp_address_preference, "ipv6") == 0) {
        order[0] = DNS_TYPE_AAAA;
        order[1] = DNS_TYPE_A;
    }
    if (smtp_lookup_uses("dns")) {
        struct dns_resolver *r = smtp_resolver(why);

        for (i = 0; r && i < 2; i++) {
            struct dns_rr rr[DNS_RR_MAX];
            enum dns_status s;
            int n;

            if ((order[i] == DNS_TYPE_A && !smtp_want_v4)
                || (order[i] == DNS_TYPE_AAAA && !smtp_want_v6))
                continue;
            s = dns_lookup(r, host, order[i], rr, DNS_RR_MAX, &n, why);
            if (s == DNS_OK) {
                for (j = 0; j < n; j++)
                    added += smtp_addr_add(list, order[i] == DNS_TYPE_A ? AF_INET : AF_INET6,
                                           rr[j].addr, host, pref, port);
            } else if (s == DNS_RETRY || s == DNS_FAIL) {
                worst = DNS_RETRY;
            } else if (s == DNS_NODATA && worst == DNS_NOTFOUND) {
                worst = DNS_NODATA;
            }
        }
        if (r == NULL)
            worst = DNS_RETRY;
    }
    if (added == 0 && smtp_lookup_uses("native")) {
        struct addrinfo hints = {0}, *res, *ai;
        int rc;

        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_ADDRCONFIG;
        if ((rc = getaddrinfo(host, NULL, &hints, &res)) == 0) {
            for (ai = res; ai; ai = ai->ai_next) {
                if (ai->ai_family == AF_INET)
                    added += smtp_addr_add(list, AF_INET,
                                           &((struct sockaddr_in *) ai->ai_addr)->sin_addr,
                                           host, pref, port);
                else if (ai->ai_family == AF_INET6)
                    added += smtp_addr_add(list, AF_INET6,
                                           &((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr,
                                           host, pref, port);
            }
            freeaddrinfo(res);
        } else if (rc == EAI_AGAIN) {
            worst = DNS_RETRY;
            strbuf_set(why, "Host not found, try again");
        } else if (worst != DNS_RETRY) {
            strbuf_set(why, "Host not found");
        }
    }
    if (added > 0)
        return added;
    *st = worst;
    return -1;
}

static void smtp_host_fail(struct smtp_fail *fail, const char *host, const char *type,
                           enum dns_status st, const struct strbuf *why)
{
    if (st == DNS_RETRY)
        smtp_fail_set(fail, DELIVER_DEFER, "4.4.3", "Host or domain name not found. "
                      "Name service error for name=%s type=%s: %s", host, type, why->data);
    else
        smtp_fail_set(fail, DELIVER_BOUNCE, "5.4.4", "Host or domain name not found. "
                      "Name service error for name=%s type=%s: %s", host, type,
                      why->len ? why->data : "Host not found");
}

/* The MX path: sort, null MX, addresses per MX, the self check. */
static int smtp_mx_addrs(const char *domain, int port, struct smtp_addr_list *list,
                         struct smtp_fail *fail, struct strbuf *why)
{
    struct dns_rr rr[DNS_RR_MAX];
    struct dns_resolver *r = smtp_resolver(why);
    enum dns_status st, host_st, worst = DNS_NOTFOUND;
    int n, i, j;

    if (r == NULL) {
        smtp_fail_set(fail, DELIVER_DEFER, "4.4.3", "DNS resolver unavailable: %s", why->data);
        return -1;
    }
    st = dns_lookup(r, domain, DNS_TYPE_MX, rr, DNS_RR_MAX, &n, why);
    if (st == DNS_NODATA) {
        /* No MX: the domain's own address records, as one MX of preference 0. */
        if (smtp_host_addrs(list, domain, 0, port, &host_st, why) > 0)
            return 0;
        smtp_host_fail(fail, domain, "A", host_st, why);
        return -1;
    }
    if (st == DNS_NOTFOUND) {
        smtp_host_fail(fail, domain, "MX", st, why);
        return -1;
    }
    if (st != DNS_OK) {
        smtp_host_fail(fail, domain, "MX", DNS_RETRY, why);
        return -1;
    }
    if (dns_mx_is_null(rr, n)) {
        smtp_fail_set(fail, DELIVER_BOUNCE, "5.1.10",
                      "Domain %s does not accept mail (nullMX)", domain);
        return -1;
    }
    dns_mx_sort(rr, n);
    for (i = 0; i < n; i++) {
        int before = list->count;

        if (rr[i].name[0] == 0)
            continue;                   /* a "." among real MX hosts is ignored */
        if (smtp_host_addrs(list, rr[i].name, rr[i].pref, port, &host_st, why) < 0) {
            if (host_st == DNS_RETRY)
                worst = DNS_RETRY;
            continue;
        }
        /* This MX is us: it and every MX at its preference or worse are dropped. */
        for (j = before; j < list->count; j++) {
            if (smtp_is_self(&list->a[j])) {
                unsigned pref = list->a[j].pref;
                int k, keep = 0;

                for (k = 0; k < list->count; k++)
                    if (list->a[k].pref < pref)
                        list->a[keep++] = list->a[k];
                list->count = keep;
                if (keep == 0) {
                    smtp_fail_set(fail, DELIVER_BOUNCE, "5.4.6",
                                  "mail for %s loops back to myself", domain);
                    return -1;
                }
                return 0;
            }
        }
    }
    if (list->count > 0)
        return 0;
    if (worst == DNS_RETRY || var_smtp_defer_if_no_mx_address_found)
        smtp_fail_set(fail, DELIVER_DEFER, "4.4.4",
                      "no MX host for %s has a valid address record", domain);
    else
        smtp_fail_set(fail, DELIVER_BOUNCE, "5.4.4",
                      "no MX host for %s has a valid address record", domain);
    return -1;
}

/* Splits "host:port" / "[host]:port" into host (brackets removed), whether it
 * was bracketed, and the port (default when absent). 0, or -1. */
static int smtp_split_hostport(const char *s, char *host, size_t size, int *bracket,
                               int *port, const char *default_port)
{
    const char *end, *colon = NULL;

    *bracket = 0;
    if (*s == '[') {
        if ((end = strchr(s, ']')) == NULL)
            return -1;
        *bracket = 1;
        if ((size_t) (end - s - 1) >= size)
            return -1;
        snprintf(host, size, "%.*s", (int) (end - s - 1), s + 1);
        if (end[1] == ':')
            colon = end + 1;
        else if (end[1] != 0)
            return -1;
    } else {
        colon = strrchr(s, ':');
        if ((size_t) (colon ? colon - s : (long) strlen(s)) >= size)
            return -1;
        snprintf(host, size, "%.*s", (int) (colon ? colon - s : (long) strlen(s)), s);
    }
    if (strncasecmp(host, "ipv6:", 5) == 0)
        memmove(host, host + 5, strlen(host + 5) + 1);
    *port = smtp_port_parse(colon ? colon + 1 : default_port);
    return *host && *port > 0 ? 0 : -1;
}

int smtp_addr_resolve(const char *nexthop, const char *rcpt_domain,
                      struct smtp_addr_list *list, struct smtp_fail *fail)
{
    char host[SMTP_HOST_MAX + 1];
    struct strbuf why;
    enum dns_status st;
    int bracket, port, rc = 0;
    const char *hop = nexthop && *nexthop ? nexthop : rcpt_domain ? rcpt_domain : "";

    list->count = 0;
    strbuf_init(&why, 128, 1024);
    if (strncmp(hop, "unix:", 5) == 0) {
        struct smtp_addr *a = &list->a[0];
        struct sockaddr_un *sun = (struct sockaddr_un *) &a->sa;

        memset(a, 0, sizeof(*a));
        if (hop[5] == 0 || strlen(hop + 5) >= sizeof(sun->sun_path)) {
            smtp_fail_set(fail, DELIVER_DEFER, "4.3.5", "bad socket path in nexthop %s", hop);
            rc = -1;
        } else {
            sun->sun_family = AF_UNIX;
            snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", hop + 5);
            a->salen = sizeof(*sun);
            a->is_unix = 1;
            snprintf(a->host, sizeof(a->host), "%s", var_myhostname);
            snprintf(a->addr, sizeof(a->addr), "%s", hop + 5);
            list->count = 1;
        }
        strbuf_release(&why);
        return rc;
    }
    if (strncmp(hop, "inet:", 5) == 0)
        hop += 5;
    if (*hop == 0 || smtp_split_hostport(hop, host, sizeof(host), &bracket, &port,
                                         smtp_par.default_port) < 0) {
        smtp_fail_set(fail, DELIVER_DEFER, "4.3.5", "bad nexthop \"%s\"", hop);
        strbuf_release(&why);
        return -1;
    }
    if (bracket || smtp_par.lmtp || !smtp_lookup_uses("dns")) {
        if (smtp_host_addrs(list, host, 0, port, &st, &why) < 0) {
            smtp_host_fail(fail, host, "A", st, &why);
            rc = -1;
        }
    } else {
        rc = smtp_mx_addrs(host, port, list, fail, &why);
    }
    if (rc == 0 && var_smtp_mx_address_limit > 0 && list->count > var_smtp_mx_address_limit)
        list->count = (int) var_smtp_mx_address_limit;
    strbuf_release(&why);
    return rc;
}
