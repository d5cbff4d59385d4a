/*
 * match_list.h - Postfix's host, domain and address lists (match_list(3)):
 * the values of mynetworks, mydestination, relay_domains, virtual_*_domains,
 * permit_mx_backup_networks, debug_peer_list and similar parameters.
 *
 * A list is comma and/or white space separated patterns, tried in order; the
 * first pattern that matches decides. "!pattern" turns a match into "no match"
 * (and ends the search). Patterns:
 *   /file/name      the patterns in that file (one or more a line, "#" comments);
 *                   "!/file/name" inverts every pattern read from it
 *   type:table      a lookup table (dict.h): the name (or, for host lists, the
 *                   address) is a key; "type:{ ... }" is kept whole
 *   example.com     that domain; its subdomains too when the list's parameter
 *                   is named in parent_domain_matches_subdomains
 *   .example.com    subdomains of example.com
 *   1.2.3.4 [1.2.3.4] [::1]
 *                   one address (host and address lists)
 *   10.0.0.0/8 [2001:db8::]/32 2001:db8::/32
 *                   a network; host bits must be zero (Postfix's rule)
 * Names and patterns compare case-insensitively. A table lookup that fails
 * temporarily makes the match answer -1: the caller defers, never guesses.
 * A table that cannot be opened (an unbuilt hash: file) is kept as a pattern
 * that always fails temporarily, with a warning, so mail waits instead of
 * being misrouted; an unknown table type or a bad pattern is an error.
 * Never exits; input is bounded (MATCH_LIST_MAX_PATTERNS, file nesting depth).
 */
#ifndef PETREL_MATCH_LIST_H
#define PETREL_MATCH_LIST_H

#include "strbuf.h"

enum match_list_kind {
    MATCH_LIST_DOMAIN,          /* domain_list: names and tables (mydestination) */
    MATCH_LIST_NAMADR,          /* namadr_list: host names and addresses (debug_peer_list) */
    MATCH_LIST_ADDR,            /* addr_match_list: addresses only (mynetworks) */
    MATCH_LIST_STRING,          /* string_list: plain words, tables (class names) */
};

#define MATCH_LIST_MAX_PATTERNS 100000  /* patterns in one list, files included */
#define MATCH_LIST_MAX_DEPTH    8       /* /file/name inside /file/name */

struct match_list;

/* Parses value for parameter param (used for parent-domain matching and in
 * messages). Returns NULL with "param: reason" in err on a bad pattern. */
struct match_list *match_list_open(const char *param, enum match_list_kind kind,
                                   const char *value, struct strbuf *err);
void match_list_free(struct match_list **listp);

/* 1 match, 0 no match, -1 a table lookup failed. */
int match_list_domain(struct match_list *list, const char *domain);
/* Host lists: the name (may be NULL or "unknown") and/or the printable address. */
int match_list_host(struct match_list *list, const char *name, const char *addr);
int match_list_addr(struct match_list *list, const char *addr);
int match_list_string(struct match_list *list, const char *word);

/* Whether param is listed in parent_domain_matches_subdomains. */
int match_list_parent_style(const char *param);

/* Splits the next word off a comma/space separated list, keeping "{...}"
 * groups whole; *cursor advances; returns NULL at the end, with *bad set when
 * the braces do not balance. The list text is modified (NUL-terminated words). */
char *match_list_next_word(char **cursor, int *bad);

/* Parses a printable IPv4 or IPv6 address (brackets and an "IPv6:" prefix
 * allowed) into 16 bytes; IPv4 and IPv4-mapped IPv6 give family 4. */
int match_list_parse_addr(const char *text, int *family, unsigned char addr[16]);

#endif
