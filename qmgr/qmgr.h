/*
 * qmgr.h - the queue manager's own structures, shared by qmgr.c (triggers and
 * queue scans), qmgr_message.c (one message in the active queue) and
 * qmgr_deliver.c (transports, destinations, agent connections).
 *
 * Ownership: a message owns its recipients and entries' recipient index lists;
 * an entry (a batch of one message's recipients for one destination) lives on
 * its destination's list until an agent takes it, then on its delivery; a
 * message leaves memory only when no entry of it is left anywhere.
 */
#ifndef PETREL_QMGR_H
#define PETREL_QMGR_H

#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#include "deliver_request.h"
#include "events.h"
#include "qid.h"

/* Recipient states during one pass of a message through the active queue. */
enum qmgr_rcpt_state {
    QMGR_RCPT_TODO,             /* waiting for (or in) a delivery */
    QMGR_RCPT_FINAL,            /* sent or bounced: marked done in the queue file */
    QMGR_RCPT_DEFERRED,         /* try again later (still an R record) */
};

struct qmgr_rcpt {
    char *address;              /* internal form, as in the R record */
    char *dsn_orcpt;            /* O record, "" when absent */
    char *orig_rcpt;            /* address from an rfc822 ORCPT, "" when none */
    int notify;                 /* N record bits */
    off_t offset;               /* of the R record */
    enum qmgr_rcpt_state state;
    char *dsn;                  /* last deferral status and reason, for expiry */
    char *reason;
};

struct qmgr_message {
    char qid[QID_BUFSIZE];
    char *path;                 /* "active/B/.../QID" */
    int rw_fd;                  /* for marking recipients done */
    int ro_fd;                  /* what the agents get */
    struct timeval arrival;     /* T record (or the queue ID's time) */
    struct timeval active;      /* when this pass began */
    char *sender;
    char *dsn_envid, *dsn_ret, *client_name, *client_addr;
    off_t content_offset, content_length;
    unsigned flags;             /* DELIVER_FLAG_* */
    int priority;               /* MT-PRIORITY, -9..9, 0 when absent */
    int warned;                 /* a delay warning was sent (file mode bit) */
    int total_rcpt;             /* R and D records, for the log */
    int nrcpt;
    struct qmgr_rcpt *rcpt;     /* the pending (R) recipients of this pass */
    int entries;                /* entries of this message not yet finished */
    int bounced, traced;        /* records appended to bounce/ and trace/ this pass */
    struct qmgr_message *next;  /* in the list of active messages */
};

struct qmgr_transport;

/* transport:nexthop, with its concurrency window. */
struct qmgr_dest {
    char *key;                  /* "transport:nexthop" */
    char *nexthop;
    struct qmgr_transport *tp;
    struct qmgr_entry *head, *tail;     /* waiting entries, by priority then arrival */
    int waiting;                /* entries on the list */
    int busy;                   /* deliveries in flight */
    double window;              /* concurrency window (slow start, feedback) */
    double fail_cohorts;
    time_t dead_until;          /* throttled: new entries are deferred */
    char *dead_dsn, *dead_reason;
    int queued;                 /* on the transport's round-robin queue */
    struct qmgr_dest *rr_next;
};

struct qmgr_transport {
    char *name;
    int rcpt_limit;             /* <transport>_destination_recipient_limit */
    int dest_limit;             /* <transport>_destination_concurrency_limit, 0: none */
    int initial;                /* <transport>_initial_destination_concurrency */
    int cohort_limit;           /* ..._concurrency_failed_cohort_limit */
    int process_limit;          /* master.cf maxproc, or default_process_limit */
    int busy;
    time_t dead_until;          /* the agent could not be reached */
    struct qmgr_dest *rr_head, *rr_tail;        /* destinations to serve, in turn */
    struct qmgr_transport *next;
};

struct qmgr_entry {
    struct qmgr_message *msg;
    struct qmgr_dest *dest;
    int count;
    int *idx;                   /* indexes into msg->rcpt */
    struct qmgr_entry *next;
};

/* qmgr.c: shared state. */
extern struct events *qmgr_events;
extern int qmgr_active_count;   /* messages in memory */
extern long qmgr_rcpt_count;    /* their pending recipients */
void qmgr_room_freed(void);     /* a message left memory: admit more */
time_t qmgr_now(void);

/* qmgr_message.c */
/* Takes queue file qid from queue (incoming, deferred, active) into the active
 * queue; 1 taken, 0 skipped (vanished, incomplete, not yet due), -1 bad (moved away). */
int qmgr_message_activate(const char *queue, const char *qid);
/* The outcome of one recipient (from an agent or qmgr itself). */
void qmgr_message_result(struct qmgr_message *msg, int rcpt_index, enum deliver_status st,
                         const char *dsn, const char *relay, const char *reason, int logged);
/* One entry of the message is finished. */
void qmgr_message_entry_done(struct qmgr_message *msg);

/* qmgr_deliver.c */
void qmgr_deliver_read_mastercf(void);
void qmgr_deliver_init(void);
/* Queues recipients idx[0..count) of msg, all resolved to transport:nexthop, as
 * entries of at most the transport's recipient limit. */
void qmgr_deliver_queue(struct qmgr_message *msg, const char *transport, const char *nexthop,
                        const int *idx, int count);
/* Starts deliveries as far as windows and limits allow. */
void qmgr_deliver_run(void);

#endif
