/*
 * smtpd_peer.c - who is the SMTP client: printable address and port, and a
 * host name that is used only when the reverse lookup is confirmed by a forward
 * lookup of that name (smtpd_peername_lookup); "unknown" otherwise.
 * Never trusts a reverse name that looks like an address or does not map back
 * to the client; the resolver is bounded by RES_OPTIONS (timeout, attempts) set
 * before the first lookup. Failure of any lookup gives "unknown", never an error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "msg.h"
#include "params.h"
#include "smtpd.h"

/* A slow DNS server must not hold a session for the resolver's default 5 s x 2 per
 * query (and several queries per lookup). */
#define SMTPD_RES_OPTIONS "timeout:2 attempts:1"

void smtpd_peer_init(void)
{
    (void) setenv("RES_OPTIONS", SMTPD_RES_OPTIONS, 0);
}

static void smtpd_peer_namaddr(struct smtpd_session *s)
{
    if (var_smtpd_client_port_logging && s->port > 0)
        snprintf(s->namaddr, sizeof(s->namaddr), "%s[%s]:%d", s->name, s->addr, s->port);
    else
        snprintf(s->namaddr, sizeof(s->namaddr), "%s[%s]", s->name, s->addr);
}

void smtpd_peer_local(struct smtpd_session *s)
{
    snprintf(s->name, sizeof(s->name), "localhost");
    snprintf(s->reverse_name, sizeof(s->reverse_name), "localhost");
    snprintf(s->addr, sizeof(s->addr), "127.0.0.1");
    s->port = 0;
    smtpd_peer_namaddr(s);
}

/* An IPv4-mapped IPv6 address is logged and checked as plain IPv4. */
static socklen_t smtpd_peer_unmap(struct sockaddr_storage *ss, socklen_t len)
{
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) ss;
    struct sockaddr_in s4;

    if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
        return len;
    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    s4.sin_port = s6->sin6_port;
    memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
    memcpy(ss, &s4, sizeof(s4));
    return sizeof(s4);
}

static int smtpd_peer_same(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *) a)->sin_addr,
                      &((const struct sockaddr_in *) b)->sin_addr, sizeof(struct in_addr)) == 0;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *) a)->sin6_addr,
                      &((const struct sockaddr_in6 *) b)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return 0;
}

/* Forward-confirmed reverse DNS: the name must resolve back to the client. */
static int smtpd_peer_confirm(const char *name, const struct sockaddr *sa)
{
    struct addrinfo hints, *res = NULL, *ai;
    int found = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = sa->sa_family;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(name, NULL, &hints, &res) != 0)
        return 0;
    for (ai = res; ai && !found; ai = ai->ai_next)
        found = smtpd_peer_same(ai->ai_addr, sa);
    freeaddrinfo(res);
    return found;
}

static int smtpd_peer_numeric(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* Our end of the connection, for policy servers (server_address, server_port). */
static void smtpd_peer_server(struct smtpd_session *s, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char port[16];

    s->server_addr[0] = 0;
    s->server_port = 0;
    if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0
        || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return;
    len = smtpd_peer_unmap(&ss, len);
    if (getnameinfo((struct sockaddr *) &ss, len, s->server_addr, sizeof(s->server_addr), port,
                    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        s->server_addr[0] = 0;
    else
        s->server_port = atoi(port);
}

void smtpd_peer_lookup(struct smtpd_session *s, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char port[16], host[NI_MAXHOST];

    snprintf(s->name, sizeof(s->name), "unknown");
    snprintf(s->reverse_name, sizeof(s->reverse_name), "unknown");
    smtpd_peer_server(s, fd);
    if (getpeername(fd, (struct sockaddr *) &ss, &len) < 0
        || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
        /* A local socket or a pipe: the peer is this host. */
        smtpd_peer_local(s);
        return;
    }
    len = smtpd_peer_unmap(&ss, len);
    if (getnameinfo((struct sockaddr *) &ss, len, s->addr, sizeof(s->addr), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(s->addr, sizeof(s->addr), "unknown");
        port[0] = '\0';
    }
    s->port = atoi(port);
    if (var_smtpd_peername_lookup
        && getnameinfo((struct sockaddr *) &ss, len, host, sizeof(host), NULL, 0,
                       NI_NAMEREQD) == 0
        && !smtpd_peer_numeric(host) && strlen(host) < sizeof(s->name)) {
        memcpy(s->reverse_name, host, strlen(host) + 1);    /* length checked above */
        if (smtpd_peer_confirm(host, (struct sockaddr *) &ss))
            memcpy(s->name, host, strlen(host) + 1);        /* length checked above */
        else
            msg_warn("hostname %s does not resolve to address %s", host, s->addr);
    }
    smtpd_peer_namaddr(s);
}
