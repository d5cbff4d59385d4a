/*
 * delivered_hdr.h - the Delivered-To: lines of mailbox delivery: the headers a
 * delivery agent puts in front of a message (Return-Path:, X-Original-To:,
 * Delivered-To:, as Postfix's mail_copy), and mail loop detection from the
 * Delivered-To: headers the message already has (Postfix's delivered_hdr), for
 * the local and virtual agents.
 *
 * Reads only the primary headers of the queued content (deliver_content_read),
 * keeps at most DELIVERED_HDR_MAX values, each bounded by header_size_limit;
 * never reads past the content. A read error returns NULL with errno; the
 * caller defers the delivery.
 */
#ifndef PETREL_DELIVERED_HDR_H
#define PETREL_DELIVERED_HDR_H

#include "deliver_request.h"
#include "strbuf.h"

#define DELIVERED_HDR_MAX 1000          /* Delivered-To: values remembered */

/* delivered_hdr_prepend flags. */
#define DELIVERED_HDR_RETURN_PATH  (1 << 0)     /* Return-Path: <sender> */
#define DELIVERED_HDR_ORIG_TO      (1 << 1)     /* X-Original-To: (enable_original_recipient) */
#define DELIVERED_HDR_DELIVERED_TO (1 << 2)     /* Delivered-To: recipient */
#define DELIVERED_HDR_ALL (DELIVERED_HDR_RETURN_PATH | DELIVERED_HDR_ORIG_TO \
                           | DELIVERED_HDR_DELIVERED_TO)

struct delivered_hdr;

struct delivered_hdr *delivered_hdr_read(const struct deliver_request *req);

/* Whether address is one of the Delivered-To: values (compared without case). */
int delivered_hdr_find(const struct delivered_hdr *dh, const char *address);

void delivered_hdr_free(struct delivered_hdr **dhp);

/*
 * Replaces out with the lines to put first, each ending in LF, addresses in
 * their quoted external form: "Return-Path: <sender>" ("<>" for the null
 * sender), "X-Original-To: orig" (orig_rcpt, or rcpt when orig_rcpt is empty;
 * only when enable_original_recipient is on), "Delivered-To: rcpt".
 */
void delivered_hdr_prepend(struct strbuf *out, int flags, const char *sender,
                           const char *orig_rcpt, const char *rcpt);

#endif
