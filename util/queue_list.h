/*
 * queue_list.h - walking the mail queue for mailq, showq and "petrel queue":
 * one message at a time, filtered, in the classic mailq layout or as one JSON
 * object per line (Postfix's postqueue -j fields).
 *
 * A scan visits maildrop, active, incoming, deferred and hold (the order of
 * Postfix's showq) and their hash buckets, opens each complete queue file with
 * the queue file reader, reads its envelope (never the content), joins each
 * pending recipient with its last deferral reason from the defer/ log, and calls
 * the caller once per matching message. Memory is one message at a time, so a
 * queue of any size is listed with flat memory; nothing is sorted.
 *
 * Never changes the queue; never follows a symlink; every directory walk and
 * every per-message list is bounded. Files that vanish during the scan (delivered
 * meanwhile) are skipped silently, files the reader refuses are counted.
 */
#ifndef PETREL_QUEUE_LIST_H
#define PETREL_QUEUE_LIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#include "strbuf.h"

/* The queues a scan visits, in listing order. */
enum queue_list_queue {
    QUEUE_LIST_MAILDROP,
    QUEUE_LIST_ACTIVE,
    QUEUE_LIST_INCOMING,
    QUEUE_LIST_DEFERRED,
    QUEUE_LIST_HOLD,
    QUEUE_LIST_NQUEUES,
};

#define QUEUE_LIST_ENTRIES_MAX  (1L << 24)      /* directory entries examined per scan */
#define QUEUE_LIST_RCPT_MAX     (1L << 20)      /* recipients kept per message */
#define QUEUE_LIST_IDS_MAX      (1L << 20)      /* explicit queue IDs per filter */

/* The name of queue q ("deferred"), and the queue named name (-1 if none). */
const char *queue_list_queue_name(enum queue_list_queue q);
int queue_list_queue_find(const char *name);

struct queue_rcpt {
    const char *address;        /* internal form */
    const char *reason;         /* last deferral reason, NULL when none */
    off_t offset;               /* of its R record */
};

/* One message as a scan sees it; every pointer is valid during the callback only. */
struct queue_msg {
    enum queue_list_queue queue;
    const char *queue_name;
    char status;                /* '*' active, '!' hold, ' ' otherwise */
    const char *qid;
    const char *path;           /* relative to the queue directory: "deferred/F/QID" */
    struct timeval arrival;
    uint64_t size;              /* content bytes */
    const char *sender;         /* internal form, "" for <> */
    size_t nrcpt;               /* pending (R) recipients */
    const struct queue_rcpt *rcpt;
    int forced_expire;          /* always 0: Petrel has no postsuper -f yet */
    const char *hold_reason;    /* why a message is held (milter QUARANTINE), or NULL */
    uid_t owner;                /* file owner (the submitter, for maildrop) */
};

/* Filters: options of one kind are alternatives, different kinds must all match. */
struct queue_filter;

struct queue_filter *queue_filter_new(void);
void queue_filter_free(struct queue_filter **fp);
/* Adds one filter, by option name without dashes: "from", "to" (ADDR, @DOMAIN or
 * DOMAIN: addresses equal ignoring case, domains by suffix at a label boundary;
 * "<>" or "MAILER-DAEMON" is the null sender), "queue" (a queue name),
 * "older-than" (a duration: 90s, 30m, 2h, 2d, 1w), "reason" (an extended regular
 * expression, case-insensitive, matched against pending recipients' deferral
 * reasons), "id" (a queue ID). 0, or -1 with why for a bad value. */
int queue_filter_add(struct queue_filter *f, const char *option, const char *value,
                     struct strbuf *why);
/* Whether any filter is set (an action without IDs needs one, or ALL). */
int queue_filter_is_set(const struct queue_filter *f);
/* Whether a message matches, at time now. */
int queue_filter_match(const struct queue_filter *f, const struct queue_msg *m, time_t now);

struct queue_scan_stats {
    unsigned long examined;     /* directory entries looked at */
    unsigned long messages;     /* complete queue files read */
    unsigned long matched;      /* passed the filter (callbacks made) */
    unsigned long unreadable;   /* refused by the reader or unreadable */
    uint64_t matched_bytes;     /* content bytes of the matched messages */
};

/* Called once per matching message; a non-zero return stops the scan. */
typedef int (*queue_list_fn)(const struct queue_msg *m, void *ctx);

/* Scans the queues under queue_dirfd (filter NULL: everything). With "id"
 * filters only those IDs are looked up (no directory walk). Returns 0, 1 when
 * the callback stopped it, or -1 with why when a queue directory exists but
 * cannot be read (the caller lacks permission): nothing was listed from it. */
int queue_list_scan(int queue_dirfd, const struct queue_filter *f, queue_list_fn fn,
                    void *ctx, struct queue_scan_stats *stats, struct strbuf *why);
/* The same with flags. QUEUE_LIST_NO_REASONS: the caller does not look at
 * deferral reasons (every rcpt[].reason is NULL), so defer/ logs are read only
 * when a "reason" filter needs them; the actions use this. */
#define QUEUE_LIST_NO_REASONS   (1 << 0)
int queue_list_scan_flags(int queue_dirfd, const struct queue_filter *f, queue_list_fn fn,
                          void *ctx, struct queue_scan_stats *stats, int flags,
                          struct strbuf *why);

/* Counts the queue files of queue q (directory entries named like queue IDs,
 * without opening them); -1 with errno when the queue cannot be read. */
long queue_list_count(int queue_dirfd, enum queue_list_queue q);

/* Output. The classic layout: a heading before the first message, a blank line
 * after each, then "-- N Kbytes in M Requests." (or "Mail queue is empty"). */
void queue_format_heading(struct strbuf *out);
void queue_format_classic(const struct queue_msg *m, struct strbuf *out);
void queue_format_summary(unsigned long count, uint64_t bytes, struct strbuf *out);
/* One JSON object and a newline (fields: queue_name, queue_id, arrival_time,
 * message_size, forced_expire, sender, recipients[{address, delay_reason}]). */
void queue_format_json(const struct queue_msg *m, struct strbuf *out);
/* A listing in either form: the heading before the first classic message, the
 * summary (classic only) at the end; the caller drains out as it grows. */
struct queue_listing {
    int json;
    unsigned long count;
    uint64_t bytes;
    struct strbuf *out;
};
void queue_listing_add(struct queue_listing *l, const struct queue_msg *m);
void queue_listing_end(struct queue_listing *l);
/* Appends str as a JSON string (quoted; invalid UTF-8 becomes U+FFFD). */
void queue_json_string(struct strbuf *out, const char *str);

#endif
