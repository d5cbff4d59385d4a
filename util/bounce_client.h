/*
 * bounce_client.h - asking the bounce service for a delivery status notification.
 *
 * qmgr calls this when a message has recipients in its bounce/ log (failures),
 * when a deferred message passes delay_warning_time (delay warning from the
 * defer/ log), or when recipients that asked NOTIFY=SUCCESS were delivered (the
 * trace/ log). The bounce service (private/bounce) reads the queue file and the
 * log, writes an RFC 3464 multipart/report message, and submits it through
 * cleanup with the null sender (to the original sender; a failed bounce goes to
 * bounce_notice_recipient as a double bounce; nothing is ever sent to <>), and
 * answers only after cleanup committed it. Notices to postmaster per
 * notify_classes are sent by the same request. On success the caller removes the
 * log it asked about; on failure it keeps the log and asks again later.
 *
 * Never blocks without a timeout.
 */
#ifndef PETREL_BOUNCE_CLIENT_H
#define PETREL_BOUNCE_CLIENT_H

#include "strbuf.h"

enum bounce_kind {
    BOUNCE_FAILED,              /* from the bounce/ log: "Undelivered Mail Returned to Sender" */
    BOUNCE_DELAYED,             /* from the defer/ log: "Delayed Mail (still being retried)" */
    BOUNCE_SUCCESS,             /* from the trace/ log: "Successful Mail Delivery Report" */
};

/* Asks the service at endpoint (NULL: "private/bounce", relative to the queue
 * directory) for one notification about message qid in queue queue_name.
 * Returns 0 when the DSN was queued (its queue ID in dsn_qid when not NULL; empty
 * when nothing had to be sent, e.g. the sender was <> and it is not a double
 * bounce), -1 with why otherwise. */
int bounce_request(const char *endpoint, enum bounce_kind kind, const char *queue_name,
                   const char *qid, int timeout_ms, struct strbuf *dsn_qid, struct strbuf *why);

#endif
