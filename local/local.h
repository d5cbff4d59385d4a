/*
 * local.h - the local delivery agent's shared state (Postfix's local(8)):
 * one struct local_request per request from qmgr, one struct local_state per
 * expansion level, passed by value so that a deeper level never changes what
 * its caller sees.
 *
 * Every delivery path reports its outcome with local_result(); the outcome of
 * a top-level recipient is the worst of its parts (a deferral beats a bounce
 * beats a success) and goes to qmgr once, when the recipient is finished.
 */
#ifndef PETREL_LOCAL_H
#define PETREL_LOCAL_H

#include <pwd.h>
#include <stddef.h>
#include <sys/types.h>

#include "deliver_request.h"
#include "strbuf.h"

#define LOCAL_NEST_LIMIT        100     /* expansion levels, as Postfix */
#define LOCAL_ACTION_LIMIT      10000   /* destinations expanded per recipient */
#define LOCAL_TABLE_VALUE_MAX   (64 * 1024)     /* alias value, .forward/:include: file */
#define LOCAL_FILE_LINE_MAX     4096    /* one line of a .forward or :include: file */
#define LOCAL_TEXT_MAX          1000    /* reason text sent to qmgr */

/* Expansion types, for allow_mail_to_commands and allow_mail_to_files. */
#define LOCAL_EXP_ALIAS         (1 << 0)
#define LOCAL_EXP_FORWARD       (1 << 1)
#define LOCAL_EXP_INCLUDE       (1 << 2)

/* prepend_delivered_header classes. */
#define LOCAL_DELIVERED_COMMAND (1 << 0)
#define LOCAL_DELIVERED_FILE    (1 << 1)
#define LOCAL_DELIVERED_FORWARD (1 << 2)

struct htable;
struct delivered_hdr;
struct forward_batch;

/* Whose rights a command or file delivery uses (Postfix's USER_ATTR). uid 0
 * means "no particular user": default_privs when running as root. */
struct local_user {
    uid_t uid;
    gid_t gid;
    const char *home;           /* NULL when unknown */
    const char *shell;
    const char *logname;        /* for initgroups; NULL: the gid alone */
};

/* Per request from qmgr and per top-level recipient. */
struct local_request {
    struct deliver_request *req;
    int conn_fd;
    int rcpt_index;
    const char *top;            /* the recipient qmgr asked for */
    struct htable *dups;        /* duplicate filter of this recipient */
    const struct delivered_hdr *loop;   /* the message's Delivered-To: values */
    long actions;               /* deliveries and forwards so far */
    int reported;               /* deliver_pass already reported it */
    /* Worst outcome so far. */
    int have;
    enum deliver_status status;
    char dsn[8];
    struct strbuf text;
    /* Addresses to re-inject through cleanup (forward.c). */
    struct forward_batch *forwards;
    /* mailbox_transport / fallback_transport for the recipient itself:
     * handed over with deliver_pass when everything else is done. */
    char *pass_transport;
    char *pass_nexthop;
};

/* One expansion level. The strings belong to the caller's frames. */
struct local_state {
    int level;
    const char *address;        /* current recipient, internal form */
    const char *local;          /* lowercased local part, extension included */
    const char *user;           /* local part without the extension */
    const char *extension;      /* NULL: none */
    const char *domain;         /* NULL: none */
    const char *unmatched;      /* extension to propagate to expansions */
    char delim;                 /* the delimiter that split the extension */
    const char *sender;         /* envelope sender, "" for <> */
    const char *owner;          /* who handles problems: NULL, an owner- alias, a user */
    const char *exp_from;       /* the alias or user being expanded */
    int exp_type;               /* LOCAL_EXP_* */
    int notify;                 /* DSN NOTIFY for forwarded copies */
    const char *orcpt;          /* DSN ORCPT for forwarded copies */
    struct local_request *rq;
};

/* Configuration decoded once (local.c). */
extern int local_cmd_mask;      /* allow_mail_to_commands */
extern int local_file_mask;     /* allow_mail_to_files */
extern int local_delivered_mask;        /* prepend_delivered_header */
extern struct local_user local_default_privs;

/* local.c */
void local_result(const struct local_state *st, enum deliver_status status, const char *dsn,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int local_dup_seen(struct local_request *rq, const char *kind, const char *key);
int local_count_action(const struct local_state *st);
/* The header lines put before the message: Return-Path:, X-Original-To:,
 * Delivered-To: (each only when asked), each ending in LF. */
void local_prepend(const struct local_state *st, int return_path, int delivered,
                   struct strbuf *out);
void local_delivered_header(const struct local_request *rq, struct strbuf *out);
int local_is_root(void);
/* Hands the recipient to "transport[:nexthop]" (mailbox_transport,
 * fallback_transport): the recipient qmgr asked for goes there with
 * deliver_pass; an expanded address is re-injected and passed on from its
 * own delivery. */
void local_pass(struct local_state st, const char *spec);
/* Whether the message header has "Delivered-To: addr" (any case). */
int local_loop_find(const struct local_request *rq, const char *addr);
/* A verification probe (sendmail -bv): say what would happen, deliver nothing. */
#define LOCAL_VERIFY(st) (((st)->rq->req->flags & DELIVER_FLAG_VERIFY) != 0)

/* recipient.c */
void recipient_deliver(struct local_state st, const struct local_user *as);
/* propagate_unmatched_extensions classes this agent acts on. */
#define RECIPIENT_PROP_ALIAS    (1 << 0)
#define RECIPIENT_PROP_FORWARD  (1 << 1)
#define RECIPIENT_PROP_INCLUDE  (1 << 2)
int recipient_prop_mask(void);

/* alias.c */
void alias_init(void);
int alias_deliver(struct local_state st, const struct local_user *as, const char *name);

/* token.c */
int token_deliver_string(struct local_state st, const struct local_user *as,
                         const char *text);
/* Every non-comment line of a file; returns the number of destinations. */
int token_deliver_file(struct local_state st, const struct local_user *as,
                       const char *path, const char *buf, size_t len);

/* include.c */
void include_deliver(struct local_state st, const struct local_user *as, const char *path);
/* Reads a .forward or :include: file with as's rights: 1 read (content,
 * owner uid), 0 no such file, -1 refused or failed (why). */
#define INCLUDE_FILE_MAX        (1024 * 1024)
int include_read_as(const struct local_user *as, const char *path, struct strbuf *content,
                    uid_t *owner, mode_t *mode, struct strbuf *why);

/* dotforward.c */
int dotforward_deliver(struct local_state st, const struct local_user *as,
                       const struct passwd *pw);

/* userbox.c */
int userbox_deliver(struct local_state st, const struct passwd *pw);
/* Writes a mailbox or file (Maildir when path ends in "/") in a child with
 * as's rights; the outcome in dsn and text. */
enum deliver_status userbox_write_as(const struct local_state *st, const struct local_user *as,
                                     const char *path, const char *prepend, off_t limit,
                                     char dsn[8], struct strbuf *text);

/* unknown.c */
void unknown_deliver(struct local_state st, const struct local_user *as);

/* command.c */
void command_deliver(struct local_state st, const struct local_user *as, const char *command);

/* file.c */
void file_deliver(struct local_state st, const struct local_user *as, const char *path);

/* forward.c */
void forward_append(struct local_state st);
void forward_finish(struct local_request *rq);

/* privs.c: run fn(arg, fd) in a child with as's rights; see the file. */
int privs_run(const struct local_user *as, int (*fn)(void *arg, int fd), void *arg,
              size_t limit, int timeout_s, struct strbuf *out, struct strbuf *why);
/* In a child process: take as's rights for good; 0 or -1. */
int privs_become(const struct local_user *as);
void privs_user_from_passwd(struct local_user *u, const struct passwd *pw);
/* The rights actually used: as itself, or default_privs for uid 0 as root. */
const struct local_user *privs_effective(const struct local_user *as);
/* Encodes and decodes a mailbox-writer style outcome over the child's pipe. */
int privs_put_outcome(int fd, enum deliver_status status, const char *dsn, const char *text);
int privs_get_outcome(const struct strbuf *in, enum deliver_status *status, char dsn[8],
                      struct strbuf *text);

/* expand.c: $name expansion for forward_path and luser_relay. */
#define EXPAND_EXTENSION_USED   (1 << 0)
int expand_local(const char *pattern, const struct local_state *st,
                 const struct local_user *as, const char *filter, struct strbuf *out);

#endif
