/*
 * resolve.h - address rewriting and resolution: the one library that smtpd,
 * cleanup, qmgr and "sendmail -bv" use to decide what an address means, so they
 * never disagree (Postfix's trivial-rewrite, as a library instead of a daemon:
 * one process hop less per message).
 *
 * Rewriting (resolve_rewrite) turns what a user or a client wrote into the
 * canonical internal form: "user" gets "@$myorigin" (append_at_myorigin), "user@host"
 * gets ".$mydomain" (append_dot_mydomain), "a!b!user" becomes "user@b" style
 * (swap_bangpath), "user%domain@ourhost" becomes "user@domain" (allow_percent_hack).
 *
 * Resolution (resolve_addr) classifies the domain of a canonical address and picks
 * the delivery channel, in Postfix's order:
 *   local        the domain is in mydestination, or is [an address literal] of
 *                inet_interfaces / proxy_interfaces: local_transport, nexthop $myhostname
 *   alias        virtual_alias_domains: no mailbox exists here; cleanup expands
 *                virtual_alias_maps, unknown users are rejected
 *   virtual      virtual_mailbox_domains: virtual_transport
 *   relay        relay_domains: relay_transport, relayhost or the domain
 *   default      everything else: default_transport, relayhost or the domain
 * then transport_maps (full address, then domain, then parent domains per
 * parent_domain_matches_subdomains, then "*") override transport and/or nexthop.
 * "error:text" and "discard:text" transports are reported as such.
 *
 * Tables are opened once by resolve_init (after config_load); lookups that fail
 * temporarily set RESOLVE_FLAG_FAIL: the caller must defer (4xx), never guess.
 * Never writes anything; never blocks except inside table lookups.
 */
#ifndef PETREL_RESOLVE_H
#define PETREL_RESOLVE_H

#include "strbuf.h"

enum resolve_class {
    RESOLVE_CLASS_LOCAL,
    RESOLVE_CLASS_ALIAS,
    RESOLVE_CLASS_VIRTUAL,
    RESOLVE_CLASS_RELAY,
    RESOLVE_CLASS_DEFAULT,
};

#define RESOLVE_FLAG_FAIL       (1 << 0)    /* a table lookup failed: defer */
#define RESOLVE_FLAG_ERROR      (1 << 1)    /* malformed address (nexthop holds why) */
#define RESOLVE_FLAG_ROUTED     (1 << 2)    /* sender-specified routing (user@a@b, %, !) */
#define RESOLVE_FLAG_ERROR_TRANSPORT (1 << 3)   /* transport is "error" */
#define RESOLVE_FLAG_DISCARD    (1 << 4)    /* transport is "discard" */

struct resolve_reply {
    enum resolve_class cls;
    int flags;
    struct strbuf transport;    /* e.g. "local", "virtual", "smtp", "lmtp", "error" */
    struct strbuf nexthop;      /* e.g. "example.com", "[10.0.0.1]:25", "unix:/path" */
    struct strbuf recipient;    /* the canonical address the agent delivers to */
};

/* Opens the tables (transport_maps, relay_domains tables, virtual domain tables);
 * administrator errors are fatal with the main.cf location. Call once per process. */
void resolve_init(void);

void resolve_reply_init(struct resolve_reply *reply);
void resolve_reply_free(struct resolve_reply *reply);

/* Canonical form of addr (internal form, see address.h) into out. */
void resolve_rewrite(const char *addr, struct strbuf *out);

/* Resolves a canonical address; returns 0, or -1 with RESOLVE_FLAG_FAIL or
 * RESOLVE_FLAG_ERROR set in reply->flags. */
int resolve_addr(const char *addr, struct resolve_reply *reply);

/* The class of a domain alone (for smtpd relay checks); -1 when a table failed. */
int resolve_domain_class(const char *domain);

/* Convenience for the class test: local, alias, virtual or relay (1), default (0),
 * table failure (-1). */
int resolve_is_our_domain(const char *domain);

/* Human-readable name of a class: "local", "alias", "virtual", "relay", "default". */
const char *resolve_class_name(enum resolve_class cls);

#endif
