/*
 * dsn_report.c - the text of a delivery status notification (RFC 3464
 * multipart/report; RFC 3462 report type; RFC 6533 types for SMTPUTF8 mail).
 *
 * SUMMARY
 *	One multipart/report; report-type=delivery-status message in three
 *	parts: a text/plain notification in the style administrators know from
 *	Postfix ("This is the mail system at host ..."), the
 *	message/delivery-status fields (per message: Reporting-MTA,
 *	Original-Envelope-Id, X-<mail_name>-Queue-ID, X-<mail_name>-Sender,
 *	Arrival-Date; per recipient: Final-Recipient, Original-Recipient,
 *	Action, Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date,
 *	Will-Retry-Until), and the returned message (message/rfc822) or its
 *	headers (text/rfc822-headers).
 *
 * NEVER
 *	Never writes a line of its own longer than DSN_REPORT_LINE_MAX (reasons
 *	are folded at white space near 78 columns, cut hard only past 900);
 *	never lets a control character from a value into the output (written as
 *	a space), so a reason cannot add a header or end a part; never picks a
 *	boundary that occurs in the returned message. The returned message is
 *	copied as it is.
 *
 * DIAGNOSTICS
 *	None: the output is built in memory and cannot fail.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "address.h"
#include "dsn_report.h"
#include "strbuf.h"

#define DSN_WRAP_WIDTH  78              /* soft limit for folded lines */
#define DSN_WRAP_HARD   900             /* a word longer than this is cut */
#define DSN_INDENT      "    "
#define DSN_BOUNDARY_MAX 70             /* RFC 2046 section 5.1.1 */
#define DSN_BOUNDARY_TRIES 100

/* --- Small writers ------------------------------------------------------- */

/* Appends s with control characters written as spaces. */
static void dsn_put_clean(struct strbuf *out, const char *s)
{
    const unsigned char *p;

    for (p = (const unsigned char *) (s ? s : ""); *p; p++)
        (void) strbuf_putc(out, *p < 0x20 || *p == 0x7f ? ' ' : *p);
}

/*
 * Appends text as lines of about DSN_WRAP_WIDTH columns: breaks at a space,
 * continuation lines indented, so that in a header the result is a valid
 * folded field (RFC 5322 section 2.2.3) and in the notification it reads as
 * one indented paragraph. text must be clean (no control characters).
 */
static void dsn_put_wrapped(struct strbuf *out, const char *text)
{
    size_t len = strlen(text), start = 0;

    while (start < len) {
        size_t room = (start == 0 ? DSN_WRAP_WIDTH : DSN_WRAP_WIDTH - strlen(DSN_INDENT));
        size_t end, brk;

        if (len - start <= room) {
            end = len;
            brk = len;
        } else {
            /* The last space within the width; failing that the first space
             * after it, but never a line past DSN_WRAP_HARD. */
            for (brk = start + room; brk > start && text[brk] != ' '; brk--)
                ;
            if (brk == start) {
                for (brk = start + room; brk < len && brk - start < DSN_WRAP_HARD
                     && text[brk] != ' '; brk++)
                    ;
            }
            end = brk;
        }
        if (start > 0)
            (void) strbuf_puts(out, "\n" DSN_INDENT);
        (void) strbuf_append(out, text + start, end - start);
        start = brk;
        while (start < len && text[start] == ' ')
            start++;
    }
    (void) strbuf_putc(out, '\n');
}

/* Formats a clean copy of the arguments, then appends it wrapped. */
static void dsn_put_field(struct strbuf *out, struct strbuf *tmp, const char *name,
                          const char *type, const char *value)
{
    strbuf_reset(tmp);
    (void) strbuf_printf(tmp, "%s: ", name);
    if (type)
        (void) strbuf_printf(tmp, "%s; ", type);
    dsn_put_clean(tmp, value);
    dsn_put_wrapped(out, tmp->data);
}

static const char *const dsn_days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const dsn_months[] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

void dsn_report_date(time_t t, struct strbuf *out)
{
    struct tm tm;
    long off;

    localtime_r(&t, &tm);
    off = tm.tm_gmtoff / 60;
    (void) strbuf_printf(out, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld (%s)",
                         dsn_days[tm.tm_wday % 7], tm.tm_mday, dsn_months[tm.tm_mon % 12],
                         tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
                         (off < 0 ? -off : off) % 60, tm.tm_zone ? tm.tm_zone : "UTC");
}

/* "4 hour(s)", "30 minute(s)", "2 day(s)": the largest unit that divides. */
static void dsn_put_duration(struct strbuf *out, long long secs)
{
    if (secs >= 86400 && secs % 86400 == 0)
        (void) strbuf_printf(out, "%lld day(s)", secs / 86400);
    else if (secs >= 3600 && secs % 3600 == 0)
        (void) strbuf_printf(out, "%lld hour(s)", secs / 3600);
    else if (secs >= 60 && secs % 60 == 0)
        (void) strbuf_printf(out, "%lld minute(s)", secs / 60);
    else
        (void) strbuf_printf(out, "%lld second(s)", secs);
}

static int dsn_has_8bit(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if ((unsigned char) s[i] & 0x80)
            return 1;
    return 0;
}

/* "utf-8" for an address only SMTPUTF8 can carry (RFC 6533), else "rfc822". */
static const char *dsn_addr_type(const struct dsn_report *r, const char *addr)
{
    return r->smtputf8 && address_has_8bit(addr) ? "utf-8" : "rfc822";
}

/* --- The relay and the diagnostic ---------------------------------------- */

/* The host name of "host[addr]:port" (a remote MTA), or 0 when relay is not one. */
static int dsn_remote_host(const char *relay, struct strbuf *host)
{
    const char *br = relay ? strchr(relay, '[') : 0;

    strbuf_reset(host);
    if (br == 0 || br == relay || strchr(br, ']') == 0)
        return 0;
    (void) strbuf_append(host, relay, (size_t) (br - relay));
    return 1;
}

/* Writes "TYPE; TEXT" for Diagnostic-Code (RFC 3464 section 2.3.6): an SMTP
 * reply when the reason holds one, x-unix for a command's exit, otherwise
 * our own type. */
static void dsn_put_diagnostic(struct strbuf *out, struct strbuf *tmp,
                               const struct dsn_report *r, const struct dsn_report_rcpt *rc)
{
    const char *reason = rc->reason ? rc->reason : "";
    const char *said = strstr(reason, " said: ");
    struct strbuf type;
    size_t n;

    strbuf_init(&type, 32, 256);
    strbuf_reset(tmp);
    (void) strbuf_puts(tmp, "Diagnostic-Code: ");
    if (said && dsn_remote_host(rc->relay, &type) && said[7] >= '2' && said[7] <= '5') {
        /* "host x[1.2.3.4] said: 550 ... (in reply to RCPT TO command)" */
        const char *text = said + 7, *tail = strstr(text, " (in reply to ");

        n = tail ? (size_t) (tail - text) : strlen(text);
        (void) strbuf_puts(tmp, "smtp; ");
        strbuf_reset(&type);
        (void) strbuf_append(&type, text, n);
        dsn_put_clean(tmp, type.data);
    } else if (reason[0] >= '2' && reason[0] <= '5' && reason[1] >= '0' && reason[1] <= '9'
               && reason[2] >= '0' && reason[2] <= '9' && (reason[3] == ' ' || reason[3] == '-')) {
        (void) strbuf_puts(tmp, "smtp; ");
        dsn_put_clean(tmp, reason);
    } else if (strncasecmp(reason, "command ", 8) == 0) {
        (void) strbuf_puts(tmp, "x-unix; ");
        dsn_put_clean(tmp, reason);
    } else {
        (void) strbuf_printf(tmp, "X-%s; ", r->mail_name);
        dsn_put_clean(tmp, reason);
    }
    dsn_put_wrapped(out, tmp->data);
    strbuf_release(&type);
}

/* --- The parts ----------------------------------------------------------- */

static void dsn_put_boilerplate(struct strbuf *out, const struct dsn_report *r)
{
    (void) strbuf_printf(out, "This is the mail system at host %s.\n\n", r->myhostname);
    if (r->postmaster_copy) {
        (void) strbuf_puts(out, "A copy of a delivery report, for the postmaster, about a\n");
        (void) strbuf_puts(out, "message from <");
        dsn_put_clean(out, r->sender);
        (void) strbuf_printf(out, "> (queue ID %s).\n\n", r->queue_id);
        (void) strbuf_puts(out, "                   The mail system\n");
        return;
    }
    switch (r->kind) {
    case DSN_REPORT_FAILED:
        (void) strbuf_puts(out,
                           "I'm sorry to have to tell you that your message could not be\n"
                           "delivered to one or more recipients. It is attached below.\n\n"
                           "For further help, please write to postmaster, and include\n"
                           "this report; you may remove your own text from the attached\n"
                           "message.\n\n");
        break;
    case DSN_REPORT_DELAYED:
        (void) strbuf_puts(out,
                           "#################################################################\n"
                           "# THIS IS A WARNING ONLY.  THERE IS NO NEED TO RESEND YOUR MAIL. #\n"
                           "#################################################################\n\n"
                           "Your message could not be delivered for more than ");
        dsn_put_duration(out, r->delay_warning_time);
        (void) strbuf_puts(out, ".\nIt will be retried until it is ");
        dsn_put_duration(out, r->maximal_queue_lifetime);
        (void) strbuf_puts(out, " old.\n\n"
                           "For further help, please write to postmaster, and include\n"
                           "this report; you may remove your own text from the attached\n"
                           "message headers.\n\n");
        break;
    case DSN_REPORT_SUCCESS:
        (void) strbuf_puts(out,
                           "Your message was delivered to the destination(s) listed\n"
                           "below. Where it was put into a mailbox you will hear nothing\n"
                           "further; elsewhere, other systems may still report delivery\n"
                           "problems.\n\n");
        break;
    }
    (void) strbuf_puts(out, "                   The mail system\n");
}

/* "<rcpt> (expanded from <orig>): reason", one indented paragraph each. */
static void dsn_put_human_rcpts(struct strbuf *out, struct strbuf *tmp,
                                const struct dsn_report *r)
{
    size_t i;

    for (i = 0; i < r->rcpt_count; i++) {
        const struct dsn_report_rcpt *rc = r->rcpt + i;

        strbuf_reset(tmp);
        (void) strbuf_puts(tmp, "<");
        dsn_put_clean(tmp, rc->address);
        (void) strbuf_puts(tmp, ">");
        if (rc->orig_rcpt && *rc->orig_rcpt && strcasecmp(rc->orig_rcpt, rc->address) != 0) {
            (void) strbuf_puts(tmp, " (expanded from <");
            dsn_put_clean(tmp, rc->orig_rcpt);
            (void) strbuf_puts(tmp, ">)");
        }
        (void) strbuf_puts(tmp, ": ");
        if (r->kind == DSN_REPORT_SUCCESS && rc->relay && *rc->relay) {
            (void) strbuf_puts(tmp, "delivery via ");
            dsn_put_clean(tmp, rc->relay);
            (void) strbuf_puts(tmp, ": ");
        }
        dsn_put_clean(tmp, rc->reason);
        (void) strbuf_putc(out, '\n');
        dsn_put_wrapped(out, tmp->data);
    }
    if (r->rcpt_omitted > 0)
        (void) strbuf_printf(out, "\n(%zu more recipients are not listed here)\n",
                             r->rcpt_omitted);
}

static void dsn_put_status(struct strbuf *out, struct strbuf *tmp, const struct dsn_report *r)
{
    struct strbuf host;
    size_t i;

    strbuf_init(&host, 64, 0);
    dsn_put_field(out, tmp, "Reporting-MTA", "dns", r->myhostname);
    if (r->envid && *r->envid)
        dsn_put_field(out, tmp, "Original-Envelope-Id", 0, r->envid);
    strbuf_reset(&host);
    (void) strbuf_printf(&host, "X-%s-Queue-ID", r->mail_name);
    dsn_put_field(out, tmp, host.data, 0, r->queue_id);
    if (r->sender && *r->sender) {
        strbuf_reset(&host);
        (void) strbuf_printf(&host, "X-%s-Sender", r->mail_name);
        dsn_put_field(out, tmp, host.data, dsn_addr_type(r, r->sender), r->sender);
    }
    if (r->arrival > 0) {
        (void) strbuf_puts(out, "Arrival-Date: ");
        dsn_report_date(r->arrival, out);
        (void) strbuf_putc(out, '\n');
    }
    for (i = 0; i < r->rcpt_count; i++) {
        const struct dsn_report_rcpt *rc = r->rcpt + i;

        (void) strbuf_putc(out, '\n');
        dsn_put_field(out, tmp, "Final-Recipient", dsn_addr_type(r, rc->address), rc->address);
        if (rc->dsn_orcpt && *rc->dsn_orcpt)
            dsn_put_field(out, tmp, "Original-Recipient", 0, rc->dsn_orcpt);
        else if (rc->orig_rcpt && *rc->orig_rcpt)
            dsn_put_field(out, tmp, "Original-Recipient", dsn_addr_type(r, rc->orig_rcpt),
                          rc->orig_rcpt);
        /* A failure report says failed even for a recipient that expired while
         * it was only ever deferred (Postfix does the same). */
        dsn_put_field(out, tmp, "Action", 0, r->kind == DSN_REPORT_FAILED ? "failed"
                      : rc->action);
        dsn_put_field(out, tmp, "Status", 0, rc->status);
        if (dsn_remote_host(rc->relay, &host))
            dsn_put_field(out, tmp, "Remote-MTA", "dns", host.data);
        dsn_put_diagnostic(out, tmp, r, rc);
        if (rc->time > 0) {
            (void) strbuf_puts(out, "Last-Attempt-Date: ");
            dsn_report_date(rc->time, out);
            (void) strbuf_putc(out, '\n');
        }
        if (r->kind == DSN_REPORT_DELAYED && r->arrival > 0) {
            (void) strbuf_puts(out, "Will-Retry-Until: ");
            dsn_report_date(r->arrival + (time_t) r->maximal_queue_lifetime, out);
            (void) strbuf_putc(out, '\n');
        }
    }
    strbuf_release(&host);
}

/* "NEWID.NOW/HOST", lengthened until the returned message does not hold it. */
static void dsn_boundary(const struct dsn_report *r, struct strbuf *b)
{
    int tries;

    for (tries = 0; tries < DSN_BOUNDARY_TRIES; tries++) {
        strbuf_reset(b);
        (void) strbuf_printf(b, "%s.%lld/", r->new_queue_id, (long long) r->now);
        if (tries > 0)
            (void) strbuf_printf(b, "%d.", tries);
        (void) strbuf_puts(b, r->myhostname);
        /* Only bchars (RFC 2046): anything else in a host name is replaced. */
        for (size_t i = 0; i < b->len; i++) {
            unsigned char c = (unsigned char) b->data[i];

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || strchr("'()+_,-./:=?", c)))
                b->data[i] = '_';
        }
        if (b->len > DSN_BOUNDARY_MAX)
            strbuf_truncate(b, DSN_BOUNDARY_MAX);
        if (r->original == 0 || memmem(r->original, r->original_len, b->data, b->len) == 0)
            return;
    }
}

static void dsn_put_original(struct strbuf *out, const struct dsn_report *r, const char *b)
{
    int undelivered = r->kind != DSN_REPORT_SUCCESS;

    (void) strbuf_printf(out, "\n--%s\n", b);
    (void) strbuf_printf(out, "Content-Description: %s%s\n", undelivered ? "Undelivered " : "",
                         r->headers_only ? "Message Headers" : "Message");
    if (r->smtputf8)
        (void) strbuf_printf(out, "Content-Type: message/%s\n",
                             r->headers_only ? "global-headers" : "global");
    else
        (void) strbuf_printf(out, "Content-Type: %s\n",
                             r->headers_only ? "text/rfc822-headers" : "message/rfc822");
    if (r->eightbit || (r->original && dsn_has_8bit(r->original, r->original_len)))
        (void) strbuf_puts(out, "Content-Transfer-Encoding: 8bit\n");
    (void) strbuf_putc(out, '\n');
    if (r->original == 0) {
        (void) strbuf_puts(out, DSN_INDENT "(the message is no longer available)\n");
    } else {
        (void) strbuf_puts(out, "Return-Path: <");
        dsn_put_clean(out, r->sender);
        (void) strbuf_puts(out, ">\n");
        (void) strbuf_append(out, r->original, r->original_len);
        if (r->original_len > 0 && r->original[r->original_len - 1] != '\n')
            (void) strbuf_putc(out, '\n');
    }
    (void) strbuf_printf(out, "\n--%s--\n", b);
}

static const char *dsn_subject(const struct dsn_report *r)
{
    switch (r->kind) {
    case DSN_REPORT_FAILED:
        return r->postmaster_copy ? "Postmaster Copy: Undelivered Mail"
            : "Undelivered Mail Returned to Sender";
    case DSN_REPORT_DELAYED:
        return r->postmaster_copy ? "Postmaster Warning: Delayed Mail"
            : "Delayed Mail (still being retried)";
    case DSN_REPORT_SUCCESS:
        break;
    }
    return "Successful Mail Delivery Report";
}

int dsn_report_compose(const struct dsn_report *r, struct strbuf *out)
{
    struct strbuf human, status, tmp, b;
    struct tm gmt;
    int human8, body8;

    strbuf_init(&human, 1024, 0);
    strbuf_init(&status, 1024, 0);
    strbuf_init(&tmp, 256, 0);
    strbuf_init(&b, 128, 0);
    dsn_put_boilerplate(&human, r);
    dsn_put_human_rcpts(&human, &tmp, r);
    dsn_put_status(&status, &tmp, r);
    dsn_boundary(r, &b);
    human8 = dsn_has_8bit(human.data, human.len);
    body8 = human8 || dsn_has_8bit(status.data, status.len) || r->eightbit
        || (r->original && dsn_has_8bit(r->original, r->original_len));

    strbuf_reset(out);
    (void) strbuf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\n", r->myhostname);
    (void) strbuf_printf(out, "Subject: %s\n", dsn_subject(r));
    strbuf_reset(&tmp);
    address_quote(r->to, &tmp);
    (void) strbuf_puts(out, "To: ");
    dsn_put_clean(out, tmp.data);
    (void) strbuf_putc(out, '\n');
    if (r->orig_msgid && *r->orig_msgid) {
        dsn_put_field(out, &tmp, "References", 0, r->orig_msgid);
        dsn_put_field(out, &tmp, "In-Reply-To", 0, r->orig_msgid);
    }
    /* RFC 3834: a report to the sender answers its message; a postmaster copy
     * is generated on our own account. */
    (void) strbuf_printf(out, "Auto-Submitted: %s\n",
                         r->postmaster_copy ? "auto-generated" : "auto-replied");
    (void) strbuf_puts(out, "Date: ");
    dsn_report_date(r->now, out);
    gmtime_r(&r->now, &gmt);
    (void) strbuf_printf(out, "\nMessage-ID: <%04d%02d%02d%02d%02d%02d.%s@%s>\n",
                         gmt.tm_year + 1900, gmt.tm_mon + 1, gmt.tm_mday, gmt.tm_hour,
                         gmt.tm_min, gmt.tm_sec, r->new_queue_id, r->myhostname);
    (void) strbuf_puts(out, "MIME-Version: 1.0\n"
                       "Content-Type: multipart/report; report-type=delivery-status;\n");
    (void) strbuf_printf(out, "\tboundary=\"%s\"\n", b.data);
    if (body8)
        (void) strbuf_puts(out, "Content-Transfer-Encoding: 8bit\n");
    (void) strbuf_puts(out, "\nThis is a MIME-encapsulated message.\n");

    (void) strbuf_printf(out, "\n--%s\n", b.data);
    (void) strbuf_puts(out, "Content-Description: Notification\n");
    (void) strbuf_printf(out, "Content-Type: text/plain; charset=%s\n",
                         human8 ? "utf-8" : "us-ascii");
    if (human8)
        (void) strbuf_puts(out, "Content-Transfer-Encoding: 8bit\n");
    (void) strbuf_putc(out, '\n');
    (void) strbuf_append(out, human.data, human.len);

    (void) strbuf_printf(out, "\n--%s\n", b.data);
    (void) strbuf_puts(out, "Content-Description: Delivery report\n");
    (void) strbuf_printf(out, "Content-Type: message/%sdelivery-status\n",
                         r->smtputf8 ? "global-" : "");
    if (r->smtputf8 && dsn_has_8bit(status.data, status.len))
        (void) strbuf_puts(out, "Content-Transfer-Encoding: 8bit\n");
    (void) strbuf_putc(out, '\n');
    (void) strbuf_append(out, status.data, status.len);

    dsn_put_original(out, r, b.data);
    strbuf_release(&human);
    strbuf_release(&status);
    strbuf_release(&tmp);
    strbuf_release(&b);
    return body8;
}
