/*
 * dsn_report.h - composing an RFC 3464 delivery status notification: the
 * whole message text (headers, a human-readable part, the
 * message/delivery-status part and the returned message or its headers) as
 * the bounce service hands it to cleanup.
 *
 * Pure: no I/O, no clock, no configuration; everything comes in the notice,
 * so the output is a function of its input (tests rely on that). Lines end in
 * LF (queue file convention); no output line is longer than
 * DSN_REPORT_LINE_MAX, whatever the input: long reasons are folded, and
 * control characters in any value are written as spaces, so a value can
 * never start a header or a MIME part. The MIME boundary is chosen so that
 * it does not occur in the returned message.
 */
#ifndef PETREL_DSN_REPORT_H
#define PETREL_DSN_REPORT_H

#include <stddef.h>
#include <time.h>

#include "strbuf.h"

#define DSN_REPORT_LINE_MAX 998         /* RFC 5322 section 2.1.1, without CRLF */

enum dsn_report_kind {
    DSN_REPORT_FAILED,          /* "Undelivered Mail Returned to Sender" */
    DSN_REPORT_DELAYED,         /* "Delayed Mail (still being retried)" */
    DSN_REPORT_SUCCESS,         /* "Successful Mail Delivery Report" */
};

struct dsn_report_rcpt {
    const char *address;        /* internal form */
    const char *orig_rcpt;      /* before aliasing, "" when the same */
    const char *dsn_orcpt;      /* "rfc822;user@example.com" as received, or "" */
    const char *action;         /* "failed", "delayed", "delivered", "relayed", "expanded" */
    const char *status;         /* "5.1.1" */
    const char *relay;          /* "mx.example.com[192.0.2.1]:25", "local", "none", "" */
    const char *reason;
    time_t time;                /* of the attempt; 0: unknown */
};

struct dsn_report {
    enum dsn_report_kind kind;
    int postmaster_copy;        /* notice to postmaster: own subject, no boilerplate */
    const char *myhostname;
    const char *mail_name;      /* "Petrel": X-Petrel-Queue-ID, X-Petrel-Sender */
    const char *to;             /* the notice's recipient (To: header), internal form */
    const char *queue_id;       /* of the message reported on */
    const char *new_queue_id;   /* of the notice: Message-ID, boundary */
    const char *sender;         /* of the message reported on, "" for <> */
    const char *envid;          /* DSN ENVID or "" */
    const char *orig_msgid;     /* Message-ID of the original, "" when none */
    time_t arrival;             /* of the original; 0: unknown */
    time_t now;                 /* Date:, Message-ID */
    long long delay_warning_time;       /* seconds, for the delay text */
    long long maximal_queue_lifetime;   /* seconds: Will-Retry-Until, delay text */
    int smtputf8;               /* the original asked for SMTPUTF8: message/global-* types */
    int eightbit;               /* the original has 8-bit content */
    const struct dsn_report_rcpt *rcpt;
    size_t rcpt_count;
    size_t rcpt_omitted;        /* recipients left out of the report (a limit) */
    const char *original;       /* NULL: unavailable; else the message or its headers */
    size_t original_len;
    int headers_only;           /* original holds the headers only */
};

/* Replaces out with the notice. Returns 1 when the text has 8-bit bytes (the
 * submission must then say 8BITMIME), else 0. */
int dsn_report_compose(const struct dsn_report *r, struct strbuf *out);

/* The RFC 5322 date of t in local time, "Tue, 14 Nov 2023 22:13:20 +0000 (UTC)";
 * appends to out. */
void dsn_report_date(time_t t, struct strbuf *out);

#endif
