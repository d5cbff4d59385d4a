/*
 * status_log.h - per-message logs of recipient outcomes: queue_directory/defer/
 * (why each recipient is still waiting: read by mailq and for delay warnings),
 * bounce/ (permanent failures: read by the bounce service to write the DSN) and
 * trace/ (deliveries whose sender asked for NOTIFY=SUCCESS). Each log is a file
 * named by the queue ID in the same hashed buckets as the queues
 * (util/queue_path.h), appended one record per line by qmgr, the only writer.
 *
 * A record is a line of space-separated name=value fields whose values are
 * xtext-encoded (RFC 3461 section 4: bytes outside 0x21..0x7e, "+" and "=" as
 * "+HH"), so mail data can never break a line or forge a field:
 *   time=SECONDS recipient=ADDR orig_rcpt=ADDR dsn_orcpt=ORCPT notify=N offset=N
 *   status=X.Y.Z action=failed|delayed|delivered|relayed|expanded relay=TEXT reason=TEXT
 * Readers skip fields they do not know and lines they cannot parse (with a
 * warning), so a damaged log never stops a bounce or a listing.
 *
 * Appends are one write() on an O_APPEND descriptor followed by fdatasync, so a
 * crash leaves whole records; a torn last line is skipped by readers.
 */
#ifndef PETREL_STATUS_LOG_H
#define PETREL_STATUS_LOG_H

#include <sys/types.h>
#include <time.h>

#include "strbuf.h"

#define STATUS_LOG_DEFER    "defer"
#define STATUS_LOG_BOUNCE   "bounce"
#define STATUS_LOG_TRACE    "trace"

#define STATUS_LOG_MAX_LINE 8192        /* a longer record is cut at write, skipped at read */

struct status_entry {
    time_t time;
    const char *recipient;      /* internal form */
    const char *orig_rcpt;      /* "" when the same */
    const char *dsn_orcpt;      /* "" when absent */
    int notify;                 /* CLEANUP_NOTIFY_* bits */
    off_t offset;               /* of the recipient's R record */
    const char *status;         /* "4.2.2" */
    const char *action;         /* "failed", "delayed", "delivered", "relayed", "expanded" */
    const char *relay;          /* "mx.example.com[192.0.2.1]:25", "local", "none" */
    const char *reason;         /* the diagnostic text */
};

/* Appends one record to log (STATUS_LOG_*) of queue ID qid, creating the file
 * (mode 0600) and bucket directories as needed; 0, or -1 with why. */
int status_log_append(int queue_dirfd, const char *log, const char *qid, int depth,
                      const struct status_entry *entry, struct strbuf *why);

/* Calls fn for every parseable record in order (strings valid during the call);
 * returns the number of records, 0 when the log does not exist, -1 with why on
 * an I/O error. fn returning non-zero stops the walk. */
typedef int (*status_log_fn)(const struct status_entry *entry, void *ctx);
long status_log_read(int queue_dirfd, const char *log, const char *qid, int depth,
                     status_log_fn fn, void *ctx, struct strbuf *why);

/* Removes the log (a missing log is not an error); 0 or -1 with why. */
int status_log_remove(int queue_dirfd, const char *log, const char *qid, int depth,
                      struct strbuf *why);

/* Encodes one record line (without LF) / parses one; exposed for tests and fuzzing.
 * parse returns 0 and fills entry with pointers into scratch, -1 on a malformed line. */
void status_log_format(const struct status_entry *entry, struct strbuf *line);
int status_log_parse(const char *line, size_t len, struct status_entry *entry,
                     struct strbuf *scratch);

#endif
