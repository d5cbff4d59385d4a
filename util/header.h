/*
 * header.h - RFC 5322 message headers: recognising, assembling, naming and
 * taking addresses out of them.
 *
 * SUMMARY
 *	cleanup (and later milters and bounce) read a message one physical line
 *	at a time. header_parser joins a header and its folded continuation
 *	lines into one logical header, bounded by header_size_limit (the excess
 *	is discarded, as Postfix does), and says where the headers end: at an
 *	empty line, or at the first line that is neither a header nor a
 *	continuation (that line is body). header_lookup names the headers Petrel
 *	treats specially; header_addr_list extracts the addresses of an
 *	address-list value (To, Cc, Bcc, From: display names, comments, quoted
 *	strings, groups, obsolete routes) for "sendmail -t", bounded by
 *	header_address_token_limit.
 *
 * NEVER
 *	Never reads past the length it is given (text may hold NULs), never
 *	stores more than its limit, never recurses on input (comment nesting is
 *	a counter with a limit).
 *
 * DIAGNOSTICS
 *	Nothing here fails on bad input: malformed text gives fewer addresses,
 *	an over-long header is truncated and flagged. Invalid arguments (a
 *	limit of 0) are caller bugs and panic.
 */
#ifndef PETREL_HEADER_H
#define PETREL_HEADER_H

#include <stddef.h>

#include "strbuf.h"

/* Headers with a meaning to Petrel; everything else is HEADER_OTHER. */
enum header_id {
    HEADER_OTHER = 0,
    HEADER_APPARENTLY_TO,
    HEADER_BCC,
    HEADER_CC,
    HEADER_CONTENT_TRANSFER_ENCODING,
    HEADER_CONTENT_TYPE,
    HEADER_DATE,
    HEADER_DELIVERED_TO,
    HEADER_ERRORS_TO,
    HEADER_FROM,
    HEADER_MESSAGE_ID,
    HEADER_MIME_VERSION,
    HEADER_RECEIVED,
    HEADER_REPLY_TO,
    HEADER_RESENT_BCC,
    HEADER_RESENT_CC,
    HEADER_RESENT_DATE,
    HEADER_RESENT_FROM,
    HEADER_RESENT_MESSAGE_ID,
    HEADER_RESENT_SENDER,
    HEADER_RESENT_TO,
    HEADER_RETURN_PATH,
    HEADER_RETURN_RECEIPT_TO,
    HEADER_SENDER,
    HEADER_SUBJECT,
    HEADER_TO,
    HEADER_X_ORIGINAL_TO,
};

/* header_info flags. */
#define HEADER_FLAG_SENDER     (1 << 0)         /* holds sender addresses */
#define HEADER_FLAG_RECIPIENT  (1 << 1)         /* holds recipient addresses */
#define HEADER_FLAG_RESENT     (1 << 2)         /* a Resent- header */

struct header_info {
    const char *name;           /* canonical spelling, e.g. "Message-ID" */
    enum header_id id;
    int flags;
};

/*
 * If line[0..len) starts a header, returns the length of its name (the
 * characters before optional white space and the colon; RFC 5322 ftext is
 * %d33-57 / %d59-126); otherwise 0.
 */
size_t header_name_len(const char *line, size_t len);

/* Whether line continues the previous header (starts with SP or HT). */
int header_is_continuation(const char *line, size_t len);

/* The known header named name[0..len), compared without case, or NULL. */
const struct header_info *header_lookup(const char *name, size_t len);

/*
 * Splits a logical header "Name: value" (continuation line breaks kept) into
 * the name (without trailing white space) and the value (after the colon and
 * any white space). Returns 0, or -1 when hdr is not a header.
 */
struct header_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int header_split(const char *hdr, size_t len, struct header_field *field);

/*
 * Joining physical lines into logical headers.
 *	header_parser_line() takes one physical line without its LF; partial is
 *	non-zero when the line is cut (a piece of a longer line: the next call
 *	continues the same physical line; the first piece of a line must hold
 *	at least the header name and its colon, or the line is taken as body,
 *	as Postfix does for a name longer than a record). It returns
 *	  HEADER_MORE     the line belongs to the headers (stored or discarded);
 *	  HEADER_END      the line is empty: headers are over, the line consumed;
 *	  HEADER_BODY     the line is not a header: headers are over and this
 *	                  line is the first line of the body (not consumed).
 *	Whenever a logical header is complete, emit(ctx, text, len, truncated)
 *	receives it (continuation line breaks as "\n", no final LF); truncated is
 *	1 when bytes past the size limit were dropped. header_parser_end()
 *	delivers a pending header at end of input. After HEADER_END or
 *	HEADER_BODY the parser only accepts header_parser_reset().
 */
enum header_result {
    HEADER_MORE,
    HEADER_END,
    HEADER_BODY,
};

typedef void (*header_emit_fn)(void *ctx, const char *text, size_t len, int truncated);

struct header_parser;

struct header_parser *header_parser_new(size_t size_limit, header_emit_fn emit, void *ctx);
void header_parser_free(struct header_parser **pp);
void header_parser_reset(struct header_parser *p);
enum header_result header_parser_line(struct header_parser *p, const char *line, size_t len,
                                      int partial);
void header_parser_end(struct header_parser *p);
/* Logical headers emitted since the last reset. */
size_t header_parser_count(const struct header_parser *p);

/*
 * Extracts the addresses of an RFC 5322 address-list (a header value) in
 * internal form: local part unquoted, display names, comments, group names
 * and source routes dropped, e.g.
 *	"Doe, John" <"john doe"@example.com>, Group: a@b.c, <@r.net:d@e.f>;
 *	-> john doe@example.com, a@b.c, d@e.f
 * At most token_limit tokens are examined (header_address_token_limit); the
 * rest of the value is ignored. Addresses longer than max_addr bytes are
 * skipped. For each address, fn(ctx, addr) is called; a non-zero return
 * stops the walk. Returns the number of addresses reported.
 */
typedef int (*header_addr_fn)(void *ctx, const char *addr);

size_t header_addr_list(const char *value, size_t len, size_t token_limit, size_t max_addr,
                        header_addr_fn fn, void *ctx);

#endif
