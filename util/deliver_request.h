/*
 * deliver_request.h - the delivery protocol between qmgr and a delivery agent
 * (local, virtual, error, discard, and later smtp and lmtp).
 *
 * qmgr connects to private/TRANSPORT (master starts the agent), sends one
 * request frame (docs/ipc.md, "delivery") that carries the queue file's
 * descriptor (SCM_RIGHTS, opened read-only by qmgr) and the recipients of this
 * delivery, all with the same transport and nexthop. The agent delivers and
 * sends one "status" frame per recipient as soon as that recipient's outcome is
 * final, then one "done" frame. qmgr alone writes the queue file (marking done
 * recipients) and the defer/bounce/trace logs (util/status_log.h); an agent
 * never writes queue state, so a crashed agent loses nothing: recipients it did
 * not report are simply deferred and tried again.
 *
 * deliver_report also writes the Postfix delivery log line, so every agent logs
 * the same way:
 *   QUEUEID: to=<rcpt>, orig_to=<orig>, relay=RELAY, delay=D, delays=a/b/c/d,
 *   dsn=X.Y.Z, status=sent|deferred|bounced (TEXT)
 * with delays a = arrival to qmgr (active), b = in qmgr until the agent had the
 * request, c = connection setup (deliver_mark_setup_done), d = transmission.
 * orig_to= appears only when the original recipient differs.
 *
 * Everything read is untrusted: counts and lengths are bounded (DELIVER_MAX_RCPT
 * per request), a malformed request is refused and logged, never trusted.
 */
#ifndef PETREL_DELIVER_REQUEST_H
#define PETREL_DELIVER_REQUEST_H

#include <sys/time.h>
#include <sys/types.h>

#include "strbuf.h"

#define DELIVER_MAX_RCPT        10000   /* recipients in one request */

/* Request flags. */
#define DELIVER_FLAG_8BIT       (1u << 0)       /* QFILE_FLAG_8BIT of the queue file */
#define DELIVER_FLAG_SMTPUTF8   (1u << 1)
#define DELIVER_FLAG_BINARYMIME (1u << 2)
#define DELIVER_FLAG_VERIFY     (1u << 3)       /* address probe: report, do not deliver */

struct deliver_rcpt {
    const char *address;        /* internal form; what the agent delivers to */
    const char *orig_rcpt;      /* address before rewriting/aliasing, or "" */
    const char *dsn_orcpt;      /* DSN ORCPT ("rfc822;x@y") or "" */
    int notify;                 /* CLEANUP_NOTIFY_* bits, 0 = not given */
    off_t offset;               /* of its R record in the queue file: its identity */
};

struct deliver_request {
    int fd;                     /* queue file, read-only; the agent must not close it */
    const char *queue_name;     /* "active" */
    const char *queue_id;
    const char *transport;      /* master.cf service name, e.g. "local" */
    const char *nexthop;        /* e.g. "example.com", "[10.0.0.1]:25", a $myhostname */
    const char *sender;         /* internal form, "" for <> */
    const char *dsn_envid;      /* "" when absent */
    const char *dsn_ret;        /* "FULL", "HDRS" or "" */
    const char *client_name;    /* of the original SMTP client, for agents that care */
    const char *client_addr;
    off_t content_offset;       /* where the message content starts in fd */
    off_t content_length;
    unsigned flags;             /* DELIVER_FLAG_* */
    struct timeval arrival;     /* queue file arrival time */
    struct timeval active;      /* when qmgr took the message into the active queue */
    struct timeval received;    /* when this agent had the request (set by read) */
    struct timeval setup_done;  /* connection setup finished (0: none) */
    int rcpt_count;
    struct deliver_rcpt *rcpt;
    void *priv;                 /* decoder state owning every string above */
};

enum deliver_status {
    DELIVER_SENT,               /* delivered (or relayed, or discarded as asked) */
    DELIVER_DEFER,              /* try again later */
    DELIVER_BOUNCE,             /* permanent failure: bounce to the sender */
};

/* --- agent side ---------------------------------------------------------- */

/* Reads one request from the qmgr connection (timeout_ms bounds the wait); 0, or
 * -1 with why on a malformed or truncated request or timeout. */
int deliver_request_read(int fd, int timeout_ms, struct deliver_request *req,
                         struct strbuf *why);

/* The agent finished connection setup (for the c part of delays=). */
void deliver_mark_setup_done(struct deliver_request *req);

/* Reports the final outcome of recipient rcpt_index (each at most once) and logs
 * the delivery line. dsn is "X.Y.Z" (its class must match status: 2 for sent, 4
 * for defer, 5 for bounce; a mismatch is a caller bug and panics), relay e.g.
 * "local", "virtual", "mx.example.com[192.0.2.1]:25", "none"; text is the reason
 * shown in parentheses ("delivered to maildir", the remote reply, ...). Returns 0,
 * or -1 when qmgr went away (the agent should stop delivering). */
int deliver_report(struct deliver_request *req, int conn_fd, int rcpt_index,
                   enum deliver_status status, const char *dsn, const char *relay,
                   const char *text);

/* Ends the request: recipients never reported are reported as deferred with
 * "4.3.0" and "delivery agent did not report a status", then the done frame. */
int deliver_done(struct deliver_request *req, int conn_fd);

void deliver_request_free(struct deliver_request *req);

/* Hands recipient rcpt_index to another transport, as Postfix's deliver_pass():
 * local's mailbox_transport and fallback_transport. Connects to
 * private/TRANSPORT, sends a request for that one recipient with the same queue
 * file descriptor and the given nexthop, waits (timeout_ms per read) for its
 * outcome and reports it as this agent's own with deliver_report (the other
 * agent has logged the delivery line; this one does not log it again).
 * Returns 0 when an outcome was reported, -1 when qmgr went away. A failure to
 * reach the other transport is reported as a deferral. */
int deliver_pass(struct deliver_request *req, int conn_fd, int rcpt_index,
                 const char *transport, const char *nexthop, int timeout_ms);

/* Reads the message content (from content_offset) into buf; returns bytes read,
 * 0 at the end of the content, -1 on I/O error. pos is the caller's cursor,
 * start it at 0. */
ssize_t deliver_content_read(const struct deliver_request *req, off_t *pos, void *buf,
                             size_t len);

/* --- qmgr side ----------------------------------------------------------- */

/* One recipient outcome as qmgr receives it. Strings valid until the next
 * deliver_status_read on the same buffer owner. */
struct deliver_result {
    int done;                   /* 1: the "done" frame (no recipient fields) */
    off_t offset;               /* identifies the recipient */
    enum deliver_status status;
    const char *dsn;
    const char *relay;
    const char *text;
};

/* Protocol limits (docs/ipc.md, "delivery"). */
#define DELIVER_REQUEST_MAX_FRAME (16 * 1024 * 1024)    /* 10000 recipients fit */
#define DELIVER_RESULT_MAX_FRAME  (64 * 1024)
#define DELIVER_TEXT_MAX          2048  /* reason text; longer is cut at report */

struct attr_msg;

/* Builds the request frame for req in msg (reset first): every field but
 * received, setup_done and priv. 0, or -1 with errno (EINVAL: a string the
 * codec refused, E2BIG: more than DELIVER_MAX_RCPT recipients). */
int deliver_request_build(struct attr_msg *msg, const struct deliver_request *req);

/* Decodes a status or done frame received in msg; strings point into msg. 0, or
 * -1 with why on a malformed frame (the connection must then be dropped). */
int deliver_result_decode(struct attr_msg *msg, struct deliver_result *res,
                          struct strbuf *why);

/* Formats the delivery log line (without the trailing newline) into out, as
 * deliver_report logs it, with "now" as the time of the outcome. A request whose
 * received time is 0 (qmgr deferring or bouncing on its own) counts the time
 * since active as qmgr latency, as Postfix does. Exposed for qmgr and tests. */
void deliver_log_format(struct strbuf *out, const struct deliver_request *req,
                        int rcpt_index, enum deliver_status status, const char *dsn,
                        const char *relay, const char *text, const struct timeval *now);

/* Formats one duration as the delay fields do (Postfix's format_tv: whole
 * seconds from 10 s up, else two significant digits, at most
 * delay_logging_resolution_limit digits after the point). */
void deliver_format_delay(struct strbuf *out, long sec, long usec, int max_digits);

#endif
