/*
 * resolve.c - address rewriting and resolution (see resolve.h for the rules):
 * Postfix's trivial-rewrite as a library, so smtpd, cleanup and qmgr agree.
 * Tables are opened once by resolve_init; a table that fails a lookup makes
 * resolve_addr return -1 with RESOLVE_FLAG_FAIL (the caller defers).
 * Never writes anything; never exits after resolve_init (which is fatal on
 * administrator errors, with the main.cf location). Addresses are untrusted:
 * every loop is bounded (RESOLVE_MAX_ROUTING rounds, the address length).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "dict.h"
#include "dict_impl.h"
#include "match_list.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "resolve.h"
#include "strbuf.h"

#define RESOLVE_MAX_ROUTING 10  /* user@a@b%c stripping rounds */
#define RESOLVE_ADDR_MAX    4096        /* longer addresses are malformed */

static struct match_list *resolve_mydest;
static struct match_list *resolve_relay_domains;
static struct match_list *resolve_alias_domains;
static struct match_list *resolve_mailbox_domains;
static struct match_list *resolve_interfaces;   /* inet_interfaces + proxy_interfaces */
static struct dict_list *resolve_transport_maps;
static int resolve_ready;

static struct match_list *resolve_open_list(const char *param, const char *value)
{
    struct match_list *l;
    struct strbuf err, where;

    strbuf_init(&err, 128, 64 * 1024);
    if ((l = match_list_open(param, MATCH_LIST_DOMAIN, value ? value : "", &err)) == NULL) {
        strbuf_init(&where, 64, 4096);
        config_location(param, &where);
        msg_fatal("%s: %s", where.data, err.data);
    }
    strbuf_release(&err);
    return l;
}

/* The addresses mail arrives at: inet_interfaces ("all": every interface
 * address, loopback included) plus proxy_interfaces, as an address list. */
static char *resolve_interface_addrs(void)
{
    struct strbuf out;
    char *ifaces;
    struct ifaddrs *ifs = NULL, *ifa;
    char buf[INET6_ADDRSTRLEN];
    const char *list = var_inet_interfaces ? var_inet_interfaces : "all";

    strbuf_init(&out, 128, STRBUF_UNLIMITED);
    if (strcasecmp(list, "all") == 0 || strcasecmp(list, "loopback-only") == 0) {
        int loop_only = strcasecmp(list, "loopback-only") == 0;

        strbuf_puts(&out, "127.0.0.1 ::1");
        if (!loop_only && getifaddrs(&ifs) == 0) {
            for (ifa = ifs; ifa; ifa = ifa->ifa_next) {
                const void *a;

                if (ifa->ifa_addr == NULL)
                    continue;
                if (ifa->ifa_addr->sa_family == AF_INET)
                    a = &((struct sockaddr_in *) ifa->ifa_addr)->sin_addr;
                else if (ifa->ifa_addr->sa_family == AF_INET6)
                    a = &((struct sockaddr_in6 *) ifa->ifa_addr)->sin6_addr;
                else
                    continue;
                if (inet_ntop(ifa->ifa_addr->sa_family, a, buf, sizeof(buf)))
                    strbuf_printf(&out, " %s", buf);
            }
            freeifaddrs(ifs);
        }
    } else {
        /* Host names in inet_interfaces are not resolved here: only literal
         * addresses can appear in an [address] domain anyway. */
        char *copy = xstrdup(list), *cp = copy, *w;
        unsigned char bin[16];
        int bad, fam;

        while ((w = match_list_next_word(&cp, &bad)) != NULL)
            if (match_list_parse_addr(w, &fam, bin) == 0)
                strbuf_printf(&out, " %s", w);
            else if (strcasecmp(w, "localhost") == 0)
                strbuf_puts(&out, " 127.0.0.1 ::1");
        free(copy);
    }
    if (var_proxy_interfaces && *var_proxy_interfaces) {
        char *copy = xstrdup(var_proxy_interfaces), *cp = copy, *w;
        unsigned char bin[16];
        int bad, fam;

        while ((w = match_list_next_word(&cp, &bad)) != NULL)
            if (match_list_parse_addr(w, &fam, bin) == 0)
                strbuf_printf(&out, " %s", w);
        free(copy);
    }
    ifaces = strbuf_steal(&out);
    strbuf_release(&out);       /* steal leaves a fresh empty buffer behind */
    return ifaces;
}

void resolve_init(void)
{
    struct strbuf err, where;
    char *ifaces;

    if (resolve_ready)
        return;
    resolve_mydest = resolve_open_list("mydestination", var_mydestination);
    resolve_relay_domains = resolve_open_list("relay_domains", var_relay_domains);
    resolve_alias_domains = resolve_open_list("virtual_alias_domains", var_virtual_alias_domains);
    resolve_mailbox_domains = resolve_open_list("virtual_mailbox_domains",
                                                var_virtual_mailbox_domains);
    ifaces = resolve_interface_addrs();
    resolve_interfaces = resolve_open_list("inet_interfaces", ifaces);
    free(ifaces);
    if (var_transport_maps && *var_transport_maps) {
        strbuf_init(&err, 128, 64 * 1024);
        resolve_transport_maps = dict_list_open(var_transport_maps, DICT_FLAG_FOLD_KEY, &err);
        if (resolve_transport_maps == NULL) {
            strbuf_init(&where, 64, 4096);
            config_location("transport_maps", &where);
            msg_fatal("%s: parameter transport_maps: %s", where.data, err.data);
        }
        strbuf_release(&err);
    }
    resolve_ready = 1;
}

void resolve_reply_init(struct resolve_reply *reply)
{
    reply->cls = RESOLVE_CLASS_DEFAULT;
    reply->flags = 0;
    strbuf_init(&reply->transport, 32, 4096);
    strbuf_init(&reply->nexthop, 64, 8192);
    strbuf_init(&reply->recipient, 64, RESOLVE_ADDR_MAX * 2);
}

void resolve_reply_free(struct resolve_reply *reply)
{
    strbuf_release(&reply->transport);
    strbuf_release(&reply->nexthop);
    strbuf_release(&reply->recipient);
}

const char *resolve_class_name(enum resolve_class cls)
{
    switch (cls) {
    case RESOLVE_CLASS_LOCAL:
        return "local";
    case RESOLVE_CLASS_ALIAS:
        return "alias";
    case RESOLVE_CLASS_VIRTUAL:
        return "virtual";
    case RESOLVE_CLASS_RELAY:
        return "relay";
    case RESOLVE_CLASS_DEFAULT:
        return "default";
    }
    return "default";
}

static void resolve_need_init(void)
{
    if (!resolve_ready)
        msg_panic("resolve: resolve_init() was not called");
}

/* Whether a domain is one of ours for local delivery: mydestination, or an
 * [address] literal of an interface we receive mail on. 1, 0, or -1. */
static int resolve_is_local(const char *domain)
{
    int r;

    if (domain[0] == '[') {
        unsigned char bin[16];
        int fam;

        if (match_list_parse_addr(domain, &fam, bin) < 0)
            return 0;
        if ((r = match_list_domain(resolve_interfaces, domain)) != 0)
            return r;
    }
    return match_list_domain(resolve_mydest, domain);
}

int resolve_domain_class(const char *domain)
{
    int r;

    resolve_need_init();
    if ((r = resolve_is_local(domain)) != 0)
        return r < 0 ? -1 : RESOLVE_CLASS_LOCAL;
    if ((r = match_list_domain(resolve_alias_domains, domain)) != 0)
        return r < 0 ? -1 : RESOLVE_CLASS_ALIAS;
    if ((r = match_list_domain(resolve_mailbox_domains, domain)) != 0)
        return r < 0 ? -1 : RESOLVE_CLASS_VIRTUAL;
    if ((r = match_list_domain(resolve_relay_domains, domain)) != 0)
        return r < 0 ? -1 : RESOLVE_CLASS_RELAY;
    return RESOLVE_CLASS_DEFAULT;
}

int resolve_is_our_domain(const char *domain)
{
    int cls = resolve_domain_class(domain);

    return cls < 0 ? -1 : cls != RESOLVE_CLASS_DEFAULT;
}

/*
 * Rewriting.
 */

/* Removes trailing dots of the domain part (user@example.com. names example.com). */
static void resolve_strip_dots(struct strbuf *a)
{
    const char *at = strrchr(a->data, '@');

    if (at == NULL)
        return;
    while (a->len > (size_t) (at - a->data) + 1 && a->data[a->len - 1] == '.')
        strbuf_truncate(a, a->len - 1);
}

void resolve_rewrite(const char *addr, struct strbuf *out)
{
    struct strbuf a;
    const char *at, *bang, *pct;

    strbuf_reset(out);
    strbuf_init(&a, 64, RESOLVE_ADDR_MAX * 2);
    if (strlen(addr) > RESOLVE_ADDR_MAX || strbuf_set(&a, addr) < 0 || *addr == 0) {
        strbuf_set(out, addr);
        strbuf_release(&a);
        return;
    }
    resolve_strip_dots(&a);
    at = strrchr(a.data, '@');
    /* site!user becomes user@site (the first bang: a!b!user is b!user@a). */
    if (at == NULL && var_swap_bangpath && (bang = strchr(a.data, '!')) != NULL
        && bang > a.data && bang[1]) {
        struct strbuf t;

        strbuf_init(&t, a.len + 2, RESOLVE_ADDR_MAX * 2);
        strbuf_printf(&t, "%s@%.*s", bang + 1, (int) (bang - a.data), a.data);
        strbuf_set(&a, t.data);
        strbuf_release(&t);
        at = strrchr(a.data, '@');
    }
    /* user%domain becomes user@domain; with an @ only when the domain is ours
     * (user%domain@ourhost), the rest of that case is resolve_addr's. */
    if (var_allow_percent_hack && (pct = strrchr(a.data, '%')) != NULL
        && (at == NULL || pct < at)) {
        int ours = 1;

        if (at) {
            if (resolve_ready) {
                ours = resolve_is_local(at + 1) > 0;
            } else {
                ours = 0;
            }
        }
        if (ours) {
            if (at)
                strbuf_truncate(&a, (size_t) (at - a.data));
            a.data[pct - a.data] = '@';
            at = strrchr(a.data, '@');
        }
    }
    if (at == NULL && var_append_at_myorigin && var_myorigin && *var_myorigin) {
        strbuf_putc(&a, '@');
        strbuf_puts(&a, var_myorigin);
    } else if (at && var_append_dot_mydomain && var_mydomain && *var_mydomain && at[1]
               && at[1] != '[' && strchr(at + 1, '.') == NULL) {
        strbuf_putc(&a, '.');
        strbuf_puts(&a, var_mydomain);
    }
    strbuf_set(out, a.data);
    strbuf_release(&a);
}

/*
 * Resolution.
 */

/* Splits "transport:nexthop" (either part may be empty) into reply. */
static void resolve_set_channel(struct resolve_reply *reply, const char *value,
                                const char *default_nexthop)
{
    const char *colon = strchr(value, ':');

    if (colon == NULL) {
        strbuf_set(&reply->transport, value);
        strbuf_set(&reply->nexthop, default_nexthop);
    } else {
        strbuf_reset(&reply->transport);
        strbuf_append(&reply->transport, value, (size_t) (colon - value));
        strbuf_set(&reply->nexthop, colon[1] ? colon + 1 : default_nexthop);
    }
}

/* The transport(5) rules for one table result. */
static void resolve_apply_transport(struct resolve_reply *reply, const char *value,
                                    const char *domain)
{
    const char *colon = strchr(value, ':');
    size_t tlen = colon ? (size_t) (colon - value) : strlen(value);
    const char *nexthop = colon ? colon + 1 : "";

    if (tlen == 0) {
        /* ":nexthop" keeps the transport; ":" changes nothing. */
        if (*nexthop)
            strbuf_set(&reply->nexthop, nexthop);
        return;
    }
    if (*nexthop) {
        strbuf_reset(&reply->transport);
        strbuf_append(&reply->transport, value, tlen);
        strbuf_set(&reply->nexthop, nexthop);
    } else if (reply->transport.len != tlen || strncmp(reply->transport.data, value, tlen)) {
        /* Another transport without a next hop goes to the recipient domain. */
        strbuf_reset(&reply->transport);
        strbuf_append(&reply->transport, value, tlen);
        strbuf_set(&reply->nexthop, domain);
    }
}

/* transport_maps: address (with and without extension), domain, parents, "*".
 * Returns 0, or -1 when a table failed. */
static int resolve_transport_lookup(struct resolve_reply *reply, const char *addr,
                                    const char *domain)
{
    struct strbuf ext;
    const char *value;
    int parent = match_list_parent_style("transport_maps");

    if (resolve_transport_maps == NULL)
        return 0;
    strbuf_init(&ext, 32, 4096);
    value = dict_addr_lookup(resolve_transport_maps, addr, var_recipient_delimiter, 0, &ext);
    strbuf_release(&ext);
    /* dict_addr_lookup's "@domain" form is not a transport(5) key: redo by domain. */
    if (value == NULL && dict_list_error(resolve_transport_maps) == DICT_ERR_NONE)
        value = dict_addr_domain_lookup(resolve_transport_maps, domain, parent);
    if (value == NULL && dict_list_error(resolve_transport_maps) == DICT_ERR_NONE)
        value = dict_list_get_fixed(resolve_transport_maps, "*");
    if (dict_list_error(resolve_transport_maps) != DICT_ERR_NONE)
        return -1;
    if (value)
        resolve_apply_transport(reply, value, domain);
    return 0;
}

static void resolve_flag_transport(struct resolve_reply *reply)
{
    if (strcmp(reply->transport.data, "error") == 0)
        reply->flags |= RESOLVE_FLAG_ERROR_TRANSPORT;
    else if (strcmp(reply->transport.data, "discard") == 0)
        reply->flags |= RESOLVE_FLAG_DISCARD;
}

/* A domain we can route to: labels of letters, digits, '-', '_' (UTF-8
 * passes), or an address literal. */
static int resolve_domain_ok(const char *domain)
{
    unsigned char bin[16];
    int fam;
    const char *p;

    if (*domain == 0 || strlen(domain) > 255)
        return 0;
    if (*domain == '[')
        return match_list_parse_addr(domain, &fam, bin) == 0;
    for (p = domain; *p; p++) {
        unsigned char c = (unsigned char) *p;

        if (c == '.' ? (p == domain || p[1] == '.') : !(isalnum(c) || c == '-' || c == '_'
                                                         || c >= 0x80))
            return 0;
    }
    return 1;
}

/* The last '%' of the local part local[0..len), when the percent hack is on. */
static char *resolve_last_percent(char *local, size_t len)
{
    if (!var_allow_percent_hack)
        return NULL;
    while (len > 0)
        if (local[--len] == '%')
            return local + len;
    return NULL;
}

int resolve_addr(const char *addr, struct resolve_reply *reply)
{
    struct strbuf a, domain;
    const char *at;
    char *pct;
    int cls = RESOLVE_CLASS_DEFAULT, round, r;

    resolve_need_init();
    reply->cls = RESOLVE_CLASS_DEFAULT;
    reply->flags = 0;
    strbuf_reset(&reply->transport);
    strbuf_reset(&reply->nexthop);
    strbuf_reset(&reply->recipient);
    if (strlen(addr) > RESOLVE_ADDR_MAX) {
        reply->flags |= RESOLVE_FLAG_ERROR;
        strbuf_set(&reply->nexthop, "5.1.3 address too long");
        return -1;
    }
    strbuf_init(&a, 64, RESOLVE_ADDR_MAX * 2);
    strbuf_init(&domain, 64, RESOLVE_ADDR_MAX * 2);
    /* The null address is the mailer-daemon here. */
    strbuf_set(&a, *addr ? addr : var_empty_address_recipient);
    resolve_strip_dots(&a);

    /* Strip our own domains off the end; a routed local part continues. */
    for (round = 0; round < RESOLVE_MAX_ROUTING; round++) {
        at = strrchr(a.data, '@');
        if (at == NULL) {
            cls = RESOLVE_CLASS_LOCAL;
            strbuf_set(&domain, var_myhostname);
            break;
        }
        if (at[1] == 0 && !var_resolve_null_domain) {
            strbuf_truncate(&a, a.len - 1);
            continue;
        }
        strbuf_set(&domain, at + 1);
        dict_fold(domain.data);
        if ((r = resolve_is_local(domain.data)) < 0)
            goto fail;
        if (r == 0) {
            if (strchr(a.data, '@') != at || (var_allow_percent_hack && memchr(a.data, '%',
                                                                                (size_t) (at - a.data)))
                || (var_swap_bangpath && memchr(a.data, '!', (size_t) (at - a.data))))
                reply->flags |= RESOLVE_FLAG_ROUTED;
            if ((cls = resolve_domain_class(domain.data)) < 0)
                goto fail;
            break;
        }
        /* Ours: is there more routing inside the local part? */
        if (memchr(a.data, '@', (size_t) (at - a.data)) != NULL) {
            strbuf_truncate(&a, (size_t) (at - a.data));
            reply->flags |= RESOLVE_FLAG_ROUTED;
            continue;
        }
        if ((pct = resolve_last_percent(a.data, (size_t) (at - a.data))) != NULL) {
            strbuf_truncate(&a, (size_t) (at - a.data));
            *pct = '@';
            reply->flags |= RESOLVE_FLAG_ROUTED;
            continue;
        }
        cls = RESOLVE_CLASS_LOCAL;
        break;
    }
    if (round >= RESOLVE_MAX_ROUTING) {
        reply->flags |= RESOLVE_FLAG_ERROR;
        strbuf_set(&reply->nexthop, "5.1.3 too many routing steps in address");
        goto bad;
    }
    if (cls == RESOLVE_CLASS_LOCAL && strchr(a.data, '@') == NULL) {
        strbuf_putc(&a, '@');
        strbuf_puts(&a, domain.data);
    }
    if (!resolve_domain_ok(domain.data)) {
        reply->flags |= RESOLVE_FLAG_ERROR;
        strbuf_set(&reply->nexthop, "5.1.2 bad address syntax");
        strbuf_set(&reply->transport, "error");
        strbuf_set(&reply->recipient, a.data);
        goto bad;
    }
    strbuf_set(&reply->recipient, a.data);
    reply->cls = (enum resolve_class) cls;
    switch (cls) {
    case RESOLVE_CLASS_LOCAL:
        resolve_set_channel(reply, var_local_transport, var_myhostname);
        break;
    case RESOLVE_CLASS_ALIAS:
        /* cleanup expanded virtual_alias_maps already: what is left is unknown. */
        strbuf_set(&reply->transport, "error");
        strbuf_printf(&reply->nexthop, "5.1.1 User unknown%s",
                      var_show_user_unknown_table_name ? " in virtual alias table" : "");
        break;
    case RESOLVE_CLASS_VIRTUAL:
        resolve_set_channel(reply, var_virtual_transport, var_myhostname);
        break;
    case RESOLVE_CLASS_RELAY:
        resolve_set_channel(reply, var_relay_transport,
                            *var_relayhost ? var_relayhost : domain.data);
        break;
    default:
        resolve_set_channel(reply, var_default_transport,
                            *var_relayhost ? var_relayhost : domain.data);
        break;
    }
    if (cls != RESOLVE_CLASS_ALIAS && resolve_transport_lookup(reply, a.data, domain.data) < 0)
        goto fail;
    resolve_flag_transport(reply);
    strbuf_release(&a);
    strbuf_release(&domain);
    return 0;

fail:
    reply->flags |= RESOLVE_FLAG_FAIL;
    strbuf_set(&reply->recipient, a.data);
bad:
    strbuf_release(&a);
    strbuf_release(&domain);
    return -1;
}
