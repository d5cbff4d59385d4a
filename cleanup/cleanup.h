/*
 * cleanup.h - the cleanup daemon's per-message state, shared by its files
 * (cleanup.c: protocol and queue file; cleanup_addr.c: addresses;
 * cleanup_message.c: headers, body and content checks).
 * Nothing here is seen by other programs: the client side is
 * util/cleanup_client.h, the wire format docs/ipc.md ("cleanup").
 */
#ifndef PETREL_CLEANUP_H
#define PETREL_CLEANUP_H

#include <stddef.h>
#include <sys/time.h>

#include "dict.h"
#include "header.h"
#include "htable.h"
#include "qfile.h"
#include "strbuf.h"

/* Why a message is not accepted (first one wins for the reply text). */
#define CLEANUP_STAT_WRITE   (1 << 0)   /* queue file write error */
#define CLEANUP_STAT_BAD     (1 << 1)   /* protocol error from the client */
#define CLEANUP_STAT_CONT    (1 << 2)   /* content rejected (header/body checks) */
#define CLEANUP_STAT_HOPS    (1 << 3)   /* hopcount_limit */
#define CLEANUP_STAT_SIZE    (1 << 4)   /* message_size_limit */
#define CLEANUP_STAT_DEFER   (1 << 5)   /* temporary: lookup failure, alias limits */
#define CLEANUP_STAT_RCPT    (1 << 6)   /* no recipients */
#define CLEANUP_STAT_NOSPACE (1 << 7)   /* queue_minfree, ENOSPC */

/* A recipient waiting for the end of the content (sendmail -t, BCC maps). */
struct cleanup_late {
    char *addr;
    int notify;
    int bcc;                    /* from a bcc map: no recipient_bcc_maps lookup */
};

struct cleanup_state {
    struct qfile_writer *w;
    const char *qid;            /* owned by w */
    int flags;                  /* CLEANUP_FLAG_* from open, plus HOLD/DISCARD by checks */
    int errs;                   /* CLEANUP_STAT_* */
    struct strbuf reason;       /* the reply for the first error */
    struct timeval arrival;

    /* Envelope. */
    int have_sender;
    struct strbuf sender;       /* after rewriting */
    struct strbuf first_rcpt;   /* for log lines: to=<...> */
    struct strbuf full_name;
    struct strbuf client;       /* "name[addr]" or "local", for log lines */
    struct strbuf client_name, client_addr;
    struct strbuf proto, helo;
    int local_context;          /* missing headers are added */
    int strip_untrusted;
    struct strbuf bounce_reason;    /* CLEANUP_FLAG_BOUNCE: "5xx X.Y.Z text" */
    int bounce_logged;              /* bounce records written for this message */
    long long announced_size;
    size_t nrcpt;               /* R records written */
    struct htable *dups;        /* recipients written */
    struct cleanup_late *late;
    size_t nlate, late_cap;

    /* Content. */
    int content_begun;          /* QREC_CONTENT started */
    int content_ended;
    int in_headers;
    int body_seen;              /* a body line was written */
    int eight_bit;
    unsigned long long content_len;
    unsigned long long body_len;
    struct header_parser *hp;
    struct strbuf line;         /* the physical line being cut into pieces */
    unsigned long seen;         /* 1 << enum header_id of headers present */
    int resent;
    long long hops;
    int truncated_logged;
    struct cleanup_late *xtract;        /* sendmail -t recipients, To/Cc/Bcc */
    size_t nxtract, xtract_cap;
    struct cleanup_late *rxtract;       /* the same from Resent- headers */
    size_t nrxtract, rxtract_cap;
    struct strbuf tmp;          /* scratch for one header or line */

    /* Milters: content and envelope wait for them (cleanup_milter.c). */
    struct cleanup_milter *milter;
};

/* cleanup.c */
void cleanup_error(struct cleanup_state *st, int stat, const char *reply);
void cleanup_write_error(struct cleanup_state *st, int err);
void cleanup_log_action(struct cleanup_state *st, const char *action, const char *class,
                        const char *content, size_t len, const char *text);

/* cleanup_addr.c */
void cleanup_addr_init(void);
void cleanup_addr_sender(struct cleanup_state *st, const char *addr);
void cleanup_addr_recipient(struct cleanup_state *st, const char *addr, const char *orcpt,
                            int notify);
void cleanup_addr_late(struct cleanup_state *st, const char *addr, int notify, int bcc);
void cleanup_addr_finish(struct cleanup_state *st);

/* cleanup_milter.c; the _sender/_rcpt calls return 1 when they kept the item. */
struct attr_msg;
void cleanup_milter_begin(struct cleanup_state *st);
int cleanup_milter_sender(struct cleanup_state *st, const char *sender);
int cleanup_milter_rcpt(struct cleanup_state *st, const char *addr, const char *orcpt,
                        int notify);
int cleanup_milter_import(struct cleanup_state *st, struct attr_msg *m);
void cleanup_milter_spool(struct cleanup_state *st, const char *data, size_t len);
void cleanup_milter_end(struct cleanup_state *st);
int cleanup_milter_reply(struct attr_msg *out);
/* A reply of several CRLF-separated lines as one line (logs, bounce text). */
void cleanup_one_line(const char *reply, struct strbuf *out);
void cleanup_milter_free(struct cleanup_state *st);

/* cleanup_message.c */
enum cleanup_act_result {
    CLEANUP_ACT_KEEP,
    CLEANUP_ACT_DROP,
    CLEANUP_ACT_REPLACE,        /* the replacement is in st->tmp */
};
/* A header_checks/body_checks result applied to content (class "header" or
 * "body"); PREPEND writes its line to the content at once. */
enum cleanup_act_result cleanup_act(struct cleanup_state *st, const char *class,
                                    const char *content, size_t len, const char *value);
/* A checks table lookup; NULL when nothing matched (a lookup failure defers). */
const char *cleanup_check(struct cleanup_state *st, struct dict_list *maps, const char *name,
                          const char *text);
void cleanup_message_init(void);
void cleanup_message_begin(struct cleanup_state *st);
void cleanup_message_data(struct cleanup_state *st, const char *data, size_t len);
void cleanup_message_end(struct cleanup_state *st);
void cleanup_message_free(struct cleanup_state *st);

#endif
