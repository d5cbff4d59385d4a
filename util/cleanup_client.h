/*
 * cleanup_client.h - handing a message to the cleanup service.
 * smtpd and pickup keep one connection to cleanup (private/cleanup, or any
 * path for tests) and send one message after another over it using the IPC
 * encoding (docs/ipc.md, "cleanup"). cleanup_open creates the queue file and
 * returns its queue ID at once, so the receiver can log it and put it in the
 * Received: header; envelope and content then stream without waiting for
 * replies; cleanup_finish waits for the verdict, which arrives only after the
 * queue file is durable (fsynced) or removed.
 * Never blocks without a timeout; a broken connection is an error the caller
 * turns into a 4xx reply (the message is then not queued).
 */
#ifndef PETREL_CLEANUP_CLIENT_H
#define PETREL_CLEANUP_CLIENT_H

#include <stddef.h>
#include <sys/time.h>

#include "strbuf.h"

/* Per-message flags for cleanup_open. */
#define CLEANUP_FLAG_LOCAL_SUBMIT  (1 << 0)     /* sendmail/pickup: always_add_missing_headers
                                                 * applies, From:/Date: added if missing */
#define CLEANUP_FLAG_EXTRACT_RCPT  (1 << 1)     /* sendmail -t: recipients from To/Cc/Bcc */
#define CLEANUP_FLAG_REMOVE_BCC    (1 << 2)     /* drop Bcc: headers (sendmail -t) */
#define CLEANUP_FLAG_HOLD          (1 << 3)     /* put the message in hold/ (access HOLD) */
#define CLEANUP_FLAG_DISCARD       (1 << 4)     /* accept, then discard (access DISCARD) */
#define CLEANUP_FLAG_NO_ALIAS      (1 << 5)     /* skip virtual_alias_maps (postsuper -r) */
#define CLEANUP_FLAG_8BITMIME      (1 << 6)     /* BODY=8BITMIME */
#define CLEANUP_FLAG_SMTPUTF8      (1 << 7)
#define CLEANUP_FLAG_BINARYMIME    (1 << 8)
#define CLEANUP_FLAG_MILTER        (1 << 9)     /* milters come with finish: cleanup
                                                 * holds the content until they ran */
#define CLEANUP_FLAG_BOUNCE        (1 << 10)    /* return a rejected local submission to
                                                 * its sender: no checks or milters, every
                                                 * recipient done with a bounce record
                                                 * (reason: attribute bounce_reason) */

/* DSN NOTIFY bits (RFC 3461) for cleanup_recipient. */
#define CLEANUP_NOTIFY_NEVER    (1 << 0)
#define CLEANUP_NOTIFY_SUCCESS  (1 << 1)
#define CLEANUP_NOTIFY_FAILURE  (1 << 2)
#define CLEANUP_NOTIFY_DELAY    (1 << 3)

enum cleanup_status {
    CLEANUP_OK,                 /* queued (or held, or discarded as asked) */
    CLEANUP_REJECT,             /* permanent: reply text starts with a 5xx code */
    CLEANUP_DEFER,              /* temporary: reply text starts with a 4xx code */
};

struct cleanup_result {
    enum cleanup_status status;
    char reply[512];            /* e.g. "550 5.7.1 message content rejected" */
    char reply_lines[4100];     /* a reply of several CRLF-separated lines (a
                                 * milter's), whole, or "" (then use reply) */
    int held;                   /* header_checks/milter/flag HOLD put it in hold/ */
    int discarded;              /* header_checks DISCARD or flag DISCARD */
    char milter_failed[64];     /* milters that failed in cleanup ("0,2"), or "" */
    char milter_at_rest[64];    /* milters at rest after end of message, or "" */
};

struct milters;

struct cleanup_client;

/* Connects to the service; endpoint NULL means "private/cleanup" relative to the
 * current directory (daemons run in queue_directory), or "public/cleanup" when
 * there is no private one (master.cf's "cleanup unix n ..." line). */
struct cleanup_client *cleanup_connect(const char *endpoint, int timeout_ms,
                                       struct strbuf *why);
void cleanup_disconnect(struct cleanup_client **cp);

/* Starts a message: cleanup creates the queue file and replies with its ID. */
int cleanup_open(struct cleanup_client *c, int flags, struct strbuf *why);
/* The same for a message that arrived earlier (petrel queue requeue keeps the
 * arrival time, as postsuper -r does). cleanup honours it only from root or
 * the mail_owner (peer credentials), else the message arrives now. */
int cleanup_open_at(struct cleanup_client *c, int flags, const struct timeval *arrival,
                    struct strbuf *why);
const char *cleanup_queue_id(const struct cleanup_client *c);

/* Envelope, in any order before the content; attribute names as in
 * docs/queue-file.md (client_name, client_address, client_port, helo_name,
 * protocol, sasl_method, sasl_username, dsn_envid, dsn_ret, submit_uid, ...). */
int cleanup_attr(struct cleanup_client *c, const char *name, const char *value);
int cleanup_sender(struct cleanup_client *c, const char *sender);
int cleanup_recipient(struct cleanup_client *c, const char *recipient, const char *orcpt,
                      int notify);
/* Content: the message as it will be stored (headers, empty line, body), lines
 * ending in LF, already dot-unstuffed. Any split into calls is allowed. */
int cleanup_write(struct cleanup_client *c, const void *data, size_t len);
/* Adds CLEANUP_FLAG_HOLD and/or CLEANUP_FLAG_DISCARD to the open message: a
 * verdict that came after cleanup_open (a later RCPT, DATA or end-of-data
 * restriction). They travel with the finish request; other bits are ignored. */
void cleanup_add_flags(struct cleanup_client *c, int flags);
/* Hands the session's milters (util/milter.h) to cleanup with the finish
 * request, for the content stages; the message must have been opened with
 * CLEANUP_FLAG_MILTER. The connections stay the caller's too. */
int cleanup_milters(struct cleanup_client *c, struct milters *ms);
/* Ends the message and waits (up to the connect timeout x 10) for the verdict. */
int cleanup_finish(struct cleanup_client *c, struct cleanup_result *res);
/* Abandons the message (RSET, client gone, rejected): the file is removed. */
void cleanup_abort(struct cleanup_client *c);

#endif
