/*
 * stats.h - 64-bit counters shared by every worker process and kept across
 * restarts, for "petrel stats".
 *
 * STORAGE
 *	One file, data_directory/stats, of STATS_SLOTS fixed-size slots behind
 *	a small header, mapped MAP_SHARED by each process that counts. A slot
 *	belongs to one service (master.cf service name: "smtp",
 *	"127.0.0.1:2525", "cleanup") or one transport ("local", "smtp", ...);
 *	it is claimed once with a compare-and-swap and never given back, and
 *	its counters are incremented with atomic adds: no IPC, no lock per
 *	increment, and a crashed process loses nothing already counted.
 *	Counters only grow (Prometheus counters); they survive restarts and
 *	reboots to the extent the page cache reaches the disk (the file is not
 *	fsynced per increment: statistics, not mail).
 *
 * NEVER
 *	Never fails a caller: if the file cannot be opened or is full or of
 *	another format, counting is off for this process (one warning) and mail
 *	flows on. The reader never creates the file.
 */
#ifndef PETREL_STATS_H
#define PETREL_STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_FILE          "stats"
#define STATS_SLOTS         128
#define STATS_NAME_MAX      55
#define STATS_COUNTERS      24

enum stats_kind {
    STATS_KIND_FREE = 0,
    STATS_KIND_SERVICE = 1,
    STATS_KIND_TRANSPORT = 2,
};

/* Counters of a service slot. */
enum stats_service_counter {
    STATS_CONNECTIONS,          /* smtpd: connections accepted */
    STATS_MESSAGES_RECEIVED,    /* smtpd: 250 after DATA/BDAT; cleanup: files committed */
    STATS_RECIPIENTS_ACCEPTED,  /* smtpd: 250 to RCPT; cleanup: recipients written */
    STATS_BYTES_RECEIVED,       /* cleanup: content bytes queued */
    STATS_MESSAGES_HELD,        /* cleanup: put in hold/ */
    STATS_MESSAGES_DISCARDED,   /* cleanup: accepted and thrown away */
    STATS_MESSAGES_REJECTED,    /* cleanup: refused (content checks, limits) */
    STATS_REJECT_FIRST,         /* smtpd: rejected, one counter per class below */
};

/* Reject classes: the SMTP stage at which the restriction said no. */
enum stats_reject_class {
    STATS_REJECT_CONNECT,
    STATS_REJECT_HELO,
    STATS_REJECT_MAIL,
    STATS_REJECT_RCPT,
    STATS_REJECT_DATA,
    STATS_REJECT_END_OF_DATA,
    STATS_REJECT_ETRN,
    STATS_REJECT_VRFY,
    STATS_REJECT_OTHER,
    STATS_REJECT_CLASSES,
};

/* Counters of a transport slot. */
enum stats_transport_counter {
    STATS_DELIVERED,
    STATS_DEFERRED,
    STATS_BOUNCED,
    STATS_BYTES_DELIVERED,      /* content bytes of delivered recipients */
    STATS_CONNECTION_REUSES,    /* deliveries over a connection already open */
    STATS_TRANSPORT_COUNTERS,
};

/* Delivery status values, as in the delivery protocol (docs/ipc.md). */
#define STATS_STATUS_SENT       0
#define STATS_STATUS_DEFERRED   1
#define STATS_STATUS_BOUNCED    2

/* Names the service this process counts for (smtpd and cleanup call it once,
 * with the master.cf service name). Without it, service counts go to the
 * program name. */
void stats_set_service(const char *service);
/* Adds n to a counter of this process's service. */
void stats_count(enum stats_service_counter counter, uint64_t n);
/* One rejection; stage is the restriction stage word ("CONNECT", "EHLO", "MAIL",
 * "RCPT", "DATA", "END-OF-MESSAGE", "ETRN", "VRFY"; anything else is "other"). */
void stats_count_reject(const char *stage);
/* One recipient's delivery outcome (STATS_STATUS_*); bytes counts for sent only. */
void stats_count_delivery(const char *transport, int status, uint64_t bytes);
/* One delivery that reused an open connection. */
void stats_count_reuse(const char *transport);

/* Reading (petrel stats). */
struct stats_slot_view {
    enum stats_kind kind;
    char name[STATS_NAME_MAX + 1];
    uint64_t counter[STATS_COUNTERS];
};

/* Copies every claimed slot (at most max) out of the file at path; returns the
 * number, 0 when the file does not exist, -1 with errno on another error. */
int stats_read(const char *path, struct stats_slot_view *out, int max);
/* Counter names for output ("connections", "rejected" for the classes). */
const char *stats_service_counter_name(int counter);
const char *stats_reject_class_name(int cls);
const char *stats_transport_counter_name(int counter);
/* Test hooks: count into another file / forget the mapping. */
void stats_use_file(const char *path);
void stats_close(void);

#endif
