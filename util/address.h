/*
 * address.h - e-mail address syntax: RFC 5321 paths, quoting, domains.
 * Internal form (what queue files, tables and logs hold) has the local part
 * unquoted: "john doe"@example.com is stored as john doe@example.com, as
 * Postfix does; address_quote makes the external form again.
 * Parsers read untrusted text: every length is bounded (local part 64 bytes
 * unless SMTPUTF8 relaxes nothing here, domain 255, path 512 per RFC 5321
 * section 4.5.3.1, with the limits in this header) and nothing is scanned past
 * its end. Errors return -1 with a short reason suitable for an SMTP reply.
 */
#ifndef PETREL_ADDRESS_H
#define PETREL_ADDRESS_H

#include <stddef.h>

#include "strbuf.h"

#define ADDRESS_MAX_LOCAL       64
#define ADDRESS_MAX_DOMAIN      255
#define ADDRESS_MAX_PATH        512

#define ADDRESS_FLAG_SMTPUTF8   (1 << 0)        /* UTF-8 allowed in local part and domain */
#define ADDRESS_FLAG_EMPTY_OK   (1 << 1)        /* "<>" accepted (MAIL FROM) */
#define ADDRESS_FLAG_NO_BRACKETS_OK (1 << 2)    /* lenient: "user@domain" without < > */

/* Parses a path at text[0..len): "<>", "<local@domain>", "<@route,@route:local@domain>"
 * (the source route is ignored, RFC 5321 section 3.3). On success returns 0, puts
 * the internal form in out and the number of bytes consumed in *used. */
int address_parse_path(const char *text, size_t len, int flags, struct strbuf *out,
                       size_t *used, struct strbuf *why);

/* Appends the external (RFC 5321 quoted where needed) form of an internal address. */
void address_quote(const char *internal, struct strbuf *out);

/* The domain part (after the last '@'), or NULL when there is none. */
const char *address_domain(const char *addr);

/* Whether text is a syntactically valid domain name or [address literal]. */
int address_domain_valid(const char *domain, int flags);
/* Whether a domain is fully qualified (has a dot, or is an address literal). */
int address_domain_fqdn(const char *domain);

/* Splits "user+ext@domain" at the first character of delims in the local part:
 * base receives "user@domain", ext receives "ext"; returns 1 when split, 0 when
 * the address has no extension. */
int address_split_extension(const char *addr, const char *delims, struct strbuf *base,
                            struct strbuf *ext);

/* Whether any byte of text has the high bit set. */
int address_has_8bit(const char *text);

#endif
