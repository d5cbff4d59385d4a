/*
 * dns.h - DNS lookups for mail routing: MX, A, AAAA through the system's
 * resolver library (libresolv res_nquery), pointed at dns_servers when set.
 *
 * The reply parser (dns_reply_parse) is our own, bounded and fuzzed: every
 * name, pointer chain, count and record length is checked against the reply
 * before it is read, and at most the caller's array of records is kept.
 * Lookups never block without a bound (retrans x retry from dns_open); a
 * server that fails or times out is DNS_RETRY, so the caller defers mail
 * rather than bounce it on a transient fault.
 */
#ifndef PETREL_DNS_H
#define PETREL_DNS_H

#include <stddef.h>

#include "strbuf.h"

#define DNS_NAME_MAX    255     /* presentation form without the final dot */
#define DNS_REPLY_MAX   65535   /* largest reply read (TCP) */
#define DNS_RR_MAX      64      /* records kept from one answer */

#define DNS_TYPE_A      1
#define DNS_TYPE_CNAME  5
#define DNS_TYPE_MX     15
#define DNS_TYPE_AAAA   28

enum dns_status {
    DNS_OK,                     /* records of the type were found */
    DNS_NOTFOUND,               /* NXDOMAIN: the name does not exist */
    DNS_NODATA,                 /* the name exists, no record of that type */
    DNS_RETRY,                  /* SERVFAIL, timeout, refused: try again later */
    DNS_FAIL,                   /* a malformed reply or name: permanent */
};

struct dns_rr {
    int type;                   /* DNS_TYPE_* */
    unsigned ttl;
    unsigned pref;              /* MX preference */
    char name[DNS_NAME_MAX + 1];/* MX exchange or CNAME target, lower case; "" = root */
    unsigned char addr[16];     /* A (4 bytes) or AAAA (16 bytes) */
    int addr_len;
};

/*
 * Parses a reply to a query of qtype: keeps up to max answer records of that
 * type and class IN in rr (*count of them), whatever their owner name (CNAME
 * chains are followed by the server). The status comes from the RCODE and
 * the records: NOERROR with none is DNS_NODATA. why says what was wrong.
 */
enum dns_status dns_reply_parse(const unsigned char *msg, size_t len, int qtype,
                                struct dns_rr *rr, int max, int *count, struct strbuf *why);

/* A resolver handle. servers: the dns_servers value (ip[:port] list, IPv4,
 * at most 3; empty: /etc/resolv.conf); timeout_s per try, tries per query.
 * NULL with why when the resolver cannot be initialised. */
struct dns_resolver;
struct dns_resolver *dns_open(const char *servers, int timeout_s, int tries,
                              struct strbuf *why);
void dns_close(struct dns_resolver **rp);

/* Looks name up (no search list: the name is taken as absolute). */
enum dns_status dns_lookup(struct dns_resolver *r, const char *name, int type,
                           struct dns_rr *rr, int max, int *count, struct strbuf *why);

/* Sorts MX records by preference, in random order among equal preferences
 * (RFC 5321 section 5.1). */
void dns_mx_sort(struct dns_rr *rr, int n);

/* 1 when the MX set is a null MX (RFC 7505: one record, exchange "."). */
int dns_mx_is_null(const struct dns_rr *rr, int n);

/* A textual address for an A/AAAA record into buf (at least 46 bytes). */
const char *dns_addr_str(const struct dns_rr *rr, char *buf, size_t size);

#endif
