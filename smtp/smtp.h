/*
 * smtp.h - the SMTP and LMTP client's internal interfaces (one program, two
 * protocols; the master.cf service name or argv[0] "lmtp" picks LMTP).
 *
 * smtp.c        the service: request, destination, sessions, reports, cache
 * smtp_addr.c   nexthop forms and the server address list (MX, A/AAAA, self)
 * smtp_connect.c  connecting to an address or a unix socket under a timeout
 * smtp_proto.c  the conversation: greeting, EHLO/LHLO, MAIL/RCPT/DATA, QUIT
 * smtp_body.c   content out: CRLF, dot-stuffing, line limits, 8bit -> QP
 * smtp_tls.c    TLS policy per destination, handshakes, certificate checks
 * smtp_sasl.c   SMTP AUTH settings, credentials and the SASL client handle
 *
 * Nothing here writes queue state (qmgr does); every read from a server has a
 * per-stage timeout, every reply is bounded in line length and line count.
 */
#ifndef PETREL_SMTP_H
#define PETREL_SMTP_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "deliver_request.h"
#include "strbuf.h"

#define SMTP_HOST_MAX   255
#define SMTP_ADDR_MAX   112             /* an IPv6 address, or a unix socket path (108) */
#define SMTP_RELAY_MAX  (SMTP_HOST_MAX + SMTP_ADDR_MAX + 16 + 108)
#define SMTP_ADDR_LIST_MAX 100          /* addresses collected for one destination */
#define SMTP_REPLY_LINE_MAX 2048        /* longer reply lines are cut */
#define SMTP_REPLY_LINES_MAX 1000       /* lines in one multi-line reply */
#define SMTP_PIPELINE_BATCH 100         /* commands written before reading replies */

/* The per-protocol settings: smtp_* or lmtp_* parameters, in milliseconds. */
struct smtp_params {
    int lmtp;
    const char *proto;                  /* "SMTP" or "LMTP" for log text */
    const char *helo_name;
    int connect_ms, helo_ms, mail_ms, rcpt_ms, data_init_ms, data_xfer_ms, data_done_ms,
        quit_ms, rset_ms, starttls_ms;
    const char *default_port;
};

extern struct smtp_params smtp_par;

/* One server address to try. */
struct smtp_addr {
    struct sockaddr_storage sa;
    socklen_t salen;
    char host[SMTP_HOST_MAX + 1];       /* MX or host name; the path for unix */
    char addr[SMTP_ADDR_MAX];           /* printable address or the socket path */
    unsigned pref;
    int is_unix;
};

struct smtp_addr_list {
    struct smtp_addr a[SMTP_ADDR_LIST_MAX];
    int count;
};

/* The outcome of building a list when it is not a list: every recipient of the
 * request gets it. */
struct smtp_fail {
    int status;                         /* DELIVER_DEFER or DELIVER_BOUNCE */
    char dsn[16];
    struct strbuf text;
};

/* smtp_addr.c: resolves nexthop (or the recipient domain when empty) to the
 * addresses to try, at most smtp_mx_address_limit. 0, or -1 with fail set. */
int smtp_addr_resolve(const char *nexthop, const char *rcpt_domain,
                      struct smtp_addr_list *list, struct smtp_fail *fail);
void smtp_addr_init(void);

/* smtp_connect.c: connects within timeout_ms; the descriptor, or -1 with the
 * reason ("Connection refused", "Connection timed out") in why. */
int smtp_connect(const struct smtp_addr *a, int timeout_ms, struct strbuf *why);

/* The server features EHLO/LHLO announced. */
#define SMTP_FEAT_ESMTP         (1u << 0)
#define SMTP_FEAT_PIPELINING    (1u << 1)
#define SMTP_FEAT_SIZE          (1u << 2)
#define SMTP_FEAT_8BITMIME      (1u << 3)
#define SMTP_FEAT_SMTPUTF8      (1u << 4)
#define SMTP_FEAT_DSN           (1u << 5)
#define SMTP_FEAT_ENHANCED      (1u << 6)
#define SMTP_FEAT_CHUNKING      (1u << 7)
#define SMTP_FEAT_BINARYMIME    (1u << 8)
#define SMTP_FEAT_STARTTLS      (1u << 9)
#define SMTP_FEAT_AUTH          (1u << 10)
#define SMTP_SASL_MECHS_MAX     1024    /* the AUTH mechanisms a server lists */

struct stream;

/* An open session to one server: what the cache keeps. */
struct smtp_session {
    struct stream *stream;
    int fd;
    char host[SMTP_HOST_MAX + 1];
    char addr[SMTP_ADDR_MAX];
    char relay[SMTP_RELAY_MAX];         /* "host[addr]:port" for the log */
    char dest[3328];                    /* transport, nexthop, TLS policy (cache key) */
    unsigned features;
    long long size_limit;               /* SIZE announced, 0 when none */
    char sasl_mechs[SMTP_SASL_MECHS_MAX];   /* AUTH mechanisms announced */
    time_t opened;
    int reused;                         /* transactions before this one */
    int is_unix;                        /* a unix-domain socket (no SNI) */
    int is_wrapper;                     /* TLS from the first byte */
    int tls;                            /* the stream speaks TLS */
    int no_cache;                       /* never kept for another request */
};

/* TLS security levels, weakest first (dane/dane-only map to may/encrypt). */
enum { SMTP_TLS_NONE, SMTP_TLS_MAY, SMTP_TLS_ENCRYPT, SMTP_TLS_VERIFY, SMTP_TLS_SECURE };

/* The TLS policy of one delivery request (smtp_tls.c). */
struct smtp_tls_policy {
    int level;
    int invalid;                        /* the policy lookup failed: defer */
    char nexthop[SMTP_HOST_MAX + 1];    /* the nexthop's host, for matching */
    char protocols[256];
    char grade[32];
    char exclude[512];
    char match[1024];                   /* verify/secure: names and strategies */
    char sni[SMTP_HOST_MAX + 1];        /* "", "hostname", "nexthop" or a name */
};

/* Per-request delivery state shared by smtp.c and smtp_proto.c. */
struct smtp_state {
    struct deliver_request *req;
    int conn_fd;                        /* to qmgr */
    unsigned char *done;                /* per recipient: reported */
    int pending;                        /* recipients not yet reported */
    int qmgr_gone;
    int final;                          /* the last server we will try */
    /* The last soft failure, for recipients still pending at the end. */
    char last_dsn[16];
    struct strbuf last_why;
    char last_relay[SMTP_RELAY_MAX];
    struct smtp_tls_policy tls;
    int tls_plain;                      /* this attempt: no TLS (retry after failure) */
    int tls_retry_plain;                /* set by a failed "may" handshake or TLS session */
};

/* Reports recipient i (once); keeps going when qmgr went away. */
void smtp_report(struct smtp_state *st, int i, enum deliver_status status, const char *dsn,
                 const char *relay, const char *text);

/* smtp_proto.c */
enum smtp_sess_result {
    SMTP_SESS_OK,                       /* transaction done, session usable */
    SMTP_SESS_DONE_CLOSE,               /* transaction done, session must close */
    SMTP_SESS_FAIL,                     /* session failed; pending recipients remain */
    SMTP_SESS_STALE,                    /* a reused session failed before any reply mattered */
};

/* Greeting and EHLO/HELO (or LHLO) on a fresh connection. 0, or -1 with
 * last_why/last_dsn set in st (a 5xx that must bounce sets *hard). */
int smtp_proto_hello(struct smtp_state *st, struct smtp_session *s, int *hard);
/* One mail transaction for every pending recipient. */
enum smtp_sess_result smtp_proto_mail(struct smtp_state *st, struct smtp_session *s);
/* QUIT and close (no wait for the reply: smtp_skip_quit_response). */
void smtp_proto_quit(struct smtp_session *s);
/* Closes without QUIT (after an error). */
void smtp_session_close(struct smtp_session *s);

/* smtp_tls.c */
struct tls_ctx;
void smtp_tls_init(void);
/* As root: the contexts of the main.cf settings (key files readable by root). */
void smtp_tls_preload(int lmtp);
const char *smtp_tls_level_name(int level);
/* The request's policy from the global level and smtp_tls_policy_maps; -1
 * (warned, p->invalid set) when the table failed or the entry is invalid. */
int smtp_tls_policy_find(const char *nexthop, const char *rcpt_domain,
                         struct smtp_tls_policy *p);
/* A string naming everything that decides how a session was secured. */
void smtp_tls_policy_key(const struct smtp_tls_policy *p, char *buf, size_t size);
/* The OpenSSL context for the policy, made once; NULL when unusable (warned). */
struct tls_ctx *smtp_tls_context(const struct smtp_tls_policy *p);
/* Handshake and certificate checks by st->tls. 0, or -1 with st->last_why
 * (and st->tls_retry_plain when a plain-text retry is allowed). */
int smtp_tls_start(struct smtp_state *st, struct smtp_session *s, struct tls_ctx *ctx);
/* Whether a failed opportunistic TLS attempt may be retried in plain text. */
int smtp_tls_plain_retry_ok(const struct smtp_state *st, const struct smtp_session *s);
/* smtp_sasl.c */
struct xsasl_client;
void smtp_sasl_init(void);
/* Whether this client authenticates (smtp_sasl_auth_enable or lmtp_sasl_auth_enable). */
int smtp_sasl_enabled(void);
/* The credentials for this server: 1 with *user and *pass (the caller frees
 * them), 0 when none are listed, -1 when the table lookup failed. */
int smtp_sasl_lookup(const struct smtp_state *st, const struct smtp_session *s, char **user,
                     char **pass);
/* smtp_sasl_auth_soft_bounce (lmtp_): whether a server's 5xx to AUTH defers. */
int smtp_sasl_soft_bounce(void);
/* The offered mechanisms that smtp_sasl_mechanism_filter lets through. */
void smtp_sasl_filter(const char *offered, struct strbuf *out);
struct xsasl_client *smtp_sasl_client(const struct smtp_session *s, const char *user,
                                      const char *pass, struct strbuf *err);

/* smtp_body.c: writes the message content as DATA content: CRLF line ends,
 * dot-stuffed, lines cut at smtp_line_length_limit, and with downgrade set,
 * 8-bit MIME parts re-encoded as quoted-printable. Does not write the final
 * ".". 0, or -1 when reading the queue file failed (errno) or the stream
 * write side failed. */
int smtp_body_send(struct stream *out, const struct deliver_request *req, int downgrade,
                   struct strbuf *why);

#endif
