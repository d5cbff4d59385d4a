/*
 * smtpd.h - what the files of the SMTP server share: the session, its states,
 * and the entry points of each part (smtpd_session.c runs the command loop,
 * smtpd_cmds.c holds the commands, smtpd_data.c reads DATA and BDAT content,
 * smtpd_sink.c hands messages to cleanup or, stand-alone, to petrel-drop,
 * smtpd_peer.c finds out who the client is, smtpd_tls.c runs STARTTLS and
 * wrapper mode, smtpd_sasl.c does SMTP AUTH).
 * Private to smtpd/; nothing here is an interface of other programs.
 */
#ifndef PETREL_SMTPD_H
#define PETREL_SMTPD_H

#include <stddef.h>

#include "cleanup_client.h"
#include "smtp_cmd.h"
#include "smtpd_check.h"
#include "strbuf.h"

struct stream;
struct smtpd_sink;
struct milters;

/* The SMTP conversation states (RFC 5321 section 4.1.4). */
enum smtpd_state {
    SMTPD_STATE_GREETED,        /* 220 sent, no HELO/EHLO yet */
    SMTPD_STATE_HELO,           /* ready for MAIL */
    SMTPD_STATE_MAIL,           /* MAIL accepted, no recipient yet */
    SMTPD_STATE_RCPT,           /* at least one recipient accepted */
    SMTPD_STATE_BDAT,           /* between BDAT chunks */
    SMTPD_STATE_COUNT,
};

#define SMTPD_ST(x)     (1u << SMTPD_STATE_##x)
#define SMTPD_ST_ANY    ((1u << SMTPD_STATE_COUNT) - 1)

/* EHLO keywords that the client may use (after smtpd_discard_ehlo_keywords). */
#define SMTPD_EXT_PIPELINING    (1 << 0)
#define SMTPD_EXT_SIZE          (1 << 1)
#define SMTPD_EXT_VRFY          (1 << 2)
#define SMTPD_EXT_ETRN          (1 << 3)
#define SMTPD_EXT_ENHANCED      (1 << 4)
#define SMTPD_EXT_8BITMIME      (1 << 5)
#define SMTPD_EXT_BINARYMIME    (1 << 6)
#define SMTPD_EXT_DSN           (1 << 7)
#define SMTPD_EXT_SMTPUTF8      (1 << 8)
#define SMTPD_EXT_CHUNKING      (1 << 9)
#define SMTPD_EXT_AUTH          (1 << 10)   /* when smtpd_sasl_auth_enable, too */
#define SMTPD_EXT_STARTTLS      (1 << 11)   /* when a TLS context could be made */

/* smtpd_forbid_bare_newline, as it applies to this client. */
enum smtpd_bare_mode {
    SMTPD_BARE_REJECT,          /* 550 and hang up */
    SMTPD_BARE_NORMALIZE,       /* a bare LF ends a line, never the message */
};

#define SMTPD_NAME_MAX  256
#define SMTPD_ADDR_MAX  64
#define SMTPD_HELO_MAX  255     /* longest HELO argument kept */
#define SMTPD_CMD_SLOTS 24      /* per-command counters (table entries + unknown) */

struct tls_conn;
struct xsasl_server;

struct smtpd_session {
    struct stream *client;
    int standalone;             /* "sendmail -bs": no restrictions, maildrop sink */
    const char *service;

    /* Who the client is. */
    char name[SMTPD_NAME_MAX];  /* verified name or "unknown" */
    char addr[SMTPD_ADDR_MAX];  /* printable address */
    int port;
    char reverse_name[SMTPD_NAME_MAX];  /* the PTR name, verified or not, or "unknown" */
    char server_addr[SMTPD_ADDR_MAX];   /* our end of the connection, or "" */
    int server_port;
    char namaddr[SMTPD_NAME_MAX + SMTPD_ADDR_MAX + 16];     /* "name[addr]" for logs */
    enum smtpd_bare_mode bare_mode;

    /* Conversation. */
    enum smtpd_state state;
    const char *where;          /* "CONNECT", a verb, "END-OF-MESSAGE" */
    char *helo_name;
    const char *protocol;       /* "SMTP" or "ESMTP" */
    int ext;                    /* SMTPD_EXT_* usable after EHLO */
    int ext_offered;            /* SMTPD_EXT_* configured (before EHLO) */
    int error_count;
    int junk_cmds;
    int ill_pipelining;         /* logged once per session */
    int hangup;                 /* end the session after this reply */
    const char *reason;         /* why the session ended abnormally, for the log */
    char *access_denied;        /* client restriction verdict, for every command */
    int cmd_total[SMTPD_CMD_SLOTS];
    int cmd_ok[SMTPD_CMD_SLOTS];

    /* The mail transaction. */
    int have_mail;
    struct smtp_mail_args mail;
    int rcpt_count;             /* accepted recipients */
    int rcpt_tried;             /* RCPT commands in this transaction */
    char *first_rcpt;           /* for "for <...>" in Received: */
    struct smtpd_sink *sink;
    long long act_size;         /* content bytes received so far */
    int bdat_started;
    int bdat_failed;            /* a chunk failed: the rest of the message is skipped */
    int bdat_too_big;
    int bdat_cr;                /* the last chunk ended in CR: maybe half a CRLF */
    int sink_error;             /* writing content to the sink failed */
    int last_lf;                /* the content written so far ends in LF */

    /* Restrictions engine state; smtpd owns the strings it points to. */
    struct smtpd_check_state check;
    struct strbuf prepend;
    struct strbuf warnings;

    /* TLS after STARTTLS (or from the start in wrapper mode), else NULL. */
    struct tls_conn *tls;
    char *tls_ccert_subject;    /* xtext-encoded client CN when trusted, for policy */
    char *tls_ccert_issuer;

    /* Cleanup service connection, kept for the session. */
    struct cleanup_client *cleanup;

    /* smtpd_milters, connected for the session (smtpd_milter.c). */
    struct milters *milters;
    struct strbuf milter_macro;     /* scratch for a macro value */
    int milter_msg;                 /* MAIL was sent: ABORT at reset */
    const char *milter_rcpt;        /* {rcpt_addr} during RCPT */
    const char *milter_rcpt_reply;  /* {rcpt_host}: Petrel's rejection */
    int milter_rcpt_rejected;

    /* SMTP AUTH (smtpd_sasl.c); sasl_username is NULL until AUTH succeeded. */
    struct xsasl_server *sasl;
    int sasl_tls;               /* sasl was made with the TLS security options */
    int sasl_used;              /* an exchange ran on sasl: the next one needs a new handle */
    char *sasl_method;
    char *sasl_username;
    char *sasl_sender;          /* this transaction's MAIL FROM AUTH=, as xtext (Postfix) */
    struct strbuf sasl_reply;

    struct strbuf buf;          /* scratch for replies */
};

/* smtpd_session.c */
void smtpd_session_run(struct smtpd_session *s);
void smtpd_session_init(struct smtpd_session *s, struct stream *client, int standalone,
                        const char *service);
void smtpd_session_free(struct smtpd_session *s);
/* Sends one reply line (format without CRLF); counts nothing, sleeps after
 * smtpd_soft_error_limit errors when the reply is 4xx/5xx. */
void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Sends a reply that came from elsewhere (restrictions, cleanup) verbatim. */
void smtpd_reply_text(struct smtpd_session *s, const char *text);
/* The "with" protocol of Received: (RFC 3848): ESMTP plus S for TLS, A for AUTH. */
const char *smtpd_received_protocol(const struct smtpd_session *s);
/* Whether the client sent input ahead that it must not have (logs "improper
 * command pipelining after X" once per session); 1 if so. */
int smtpd_flag_ill_pipelining(struct smtpd_session *s);
/* Logs "timeout after X" / "lost connection after X" and marks the hangup. */
void smtpd_session_lost(struct smtpd_session *s);
/* Ends the mail transaction: aborts an open message, forgets sender and recipients. */
void smtpd_transaction_reset(struct smtpd_session *s);
void smtpd_enter_state(struct smtpd_session *s, enum smtpd_state to);
/* Runs a restriction stage (never in stand-alone mode); returns 0 to go on,
 * else sends the verdict and returns -1. */
int smtpd_session_check(struct smtpd_session *s, enum smtpd_check_stage stage);

/* smtpd_cmds.c: the command table. */
struct smtpd_cmd {
    const char *name;
    unsigned states;            /* SMTPD_ST() mask where the command may run */
    unsigned flags;             /* SMTPD_CMD_F_* */
    int ext;                    /* SMTPD_EXT_* needed, or 0 */
    int (*check)(struct smtpd_session *s, const struct smtp_cmd *cmd);
    int (*proceed)(struct smtpd_session *s, const struct smtp_cmd *cmd);
};

#define SMTPD_CMD_F_JUNK        (1 << 0)    /* counts toward smtpd_junk_command_limit */
#define SMTPD_CMD_F_LAST        (1 << 1)    /* must be last in a PIPELINING group */
#define SMTPD_CMD_F_UNIMPL      (1 << 2)    /* known, answered 502 */
#define SMTPD_CMD_F_CHUNK       (1 << 3)    /* its data follows at once (BDAT) */
#define SMTPD_CMD_F_PRE_TLS     (1 << 4)    /* allowed before STARTTLS when TLS is required */

extern const struct smtpd_cmd smtpd_cmd_table[];
/* The 503 reply for a command in a state where it is not allowed. */
const char *smtpd_cmd_state_error(const struct smtpd_session *s, const struct smtpd_cmd *c);

/* The SMTPD_EXT_* this server offers (smtpd_discard_ehlo_keywords applied). */
int smtpd_ehlo_offered(void);

/* smtpd_data.c */
int smtpd_data_receive(struct smtpd_session *s);
int smtpd_bdat_receive(struct smtpd_session *s, const struct smtp_cmd *cmd);
/* Reads and drops count bytes of a BDAT chunk that will not be used. */
int smtpd_bdat_skip(struct smtpd_session *s, long long count);

/* smtpd_sink.c */
int smtpd_sink_open(struct smtpd_session *s, struct strbuf *why);
int smtpd_sink_recipient(struct smtpd_session *s, const char *rcpt, const char *orcpt,
                         int notify);
/* Before the first content byte: applies a HOLD decided after the open. 0, or
 * -1 with the reply in why (the message is then gone). */
int smtpd_sink_write(struct smtpd_session *s, const void *data, size_t len);
const char *smtpd_sink_queue_id(const struct smtpd_session *s);
/* Ends the message: returns 0 when it is queued (durably), with its ID in
 * queue_id; else -1 with the reply for the client in reply. */
int smtpd_sink_finish(struct smtpd_session *s, struct strbuf *queue_id, struct strbuf *reply);
void smtpd_sink_abort(struct smtpd_session *s);
void smtpd_sink_disconnect(struct smtpd_session *s);

/* smtpd_milter.c: each returns 0 to go on, else -1 after sending the reply. */
void smtpd_milter_init(void);
int smtpd_milter_connect(struct smtpd_session *s);
int smtpd_milter_helo(struct smtpd_session *s);
int smtpd_milter_mail(struct smtpd_session *s, const struct smtp_cmd *cmd);
/* rejected: Petrel's own reply to a refused recipient, for filters that
 * negotiated SMFIP_RCPT_REJ; NULL for an accepted one. */
int smtpd_milter_rcpt(struct smtpd_session *s, const struct smtp_cmd *cmd, const char *rcpt,
                      const char *rejected);
int smtpd_milter_data(struct smtpd_session *s);
int smtpd_milter_unknown(struct smtpd_session *s, const char *line, size_t len);
void smtpd_milter_abort(struct smtpd_session *s);
/* After cleanup's verdict; failed lists the milters cleanup saw fail,
 * at_rest those whose end of message it left at rest (QUIT_NC may follow). */
void smtpd_milter_message_done(struct smtpd_session *s, const char *failed,
                               const char *at_rest);
int smtpd_milter_want_content(const struct smtpd_session *s);
void smtpd_milter_end(struct smtpd_session *s);

/* smtpd_tls.c */
/* Once per process, as root (keys may be readable by root only): the level
 * and the TLS context. A context that cannot be made is a warning. */
void smtpd_tls_init(void);
/* Whether EHLO may list STARTTLS in this process (a context exists). */
int smtpd_tls_can_offer(void);
/* Before TLS when TLS is required: the reply for a command that is not
 * allowed yet, else NULL. */
const char *smtpd_tls_required_reply(const struct smtpd_session *s);
/* Wrapper mode (SMTPS): the handshake before the greeting. 0, or -1 when
 * the session must end (logged). No-op when not in wrapper mode. */
int smtpd_tls_wrapper_start(struct smtpd_session *s);
int smtpd_tls_wrappermode(const struct smtpd_session *s);
int smtpd_starttls_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd);
/* The Received: comment lines after "Received: from ..." (smtpd_tls_received_header). */
void smtpd_tls_received(const struct smtpd_session *s, struct strbuf *h);
/* {tls_version}, {cipher}, {cipher_bits}, {cert_subject}, {cert_issuer}: the
 * value, or NULL when not encrypted (or no trusted certificate). */
const char *smtpd_tls_macro(struct smtpd_session *s, const char *name, struct strbuf *buf);
/* smtpd_sasl.c */
/* Once per process (smtpd_sasl_auth_enable): the SASL library and the tables. */
void smtpd_sasl_init(void);
/* Whether the session may use AUTH at all (enabled, not stand-alone). */
int smtpd_sasl_enabled(const struct smtpd_session *s);
/* The mechanisms to announce in EHLO, or NULL for no AUTH keyword. */
const char *smtpd_sasl_ehlo_mechanisms(struct smtpd_session *s);
int smtpd_auth_proceed(struct smtpd_session *s, const struct smtp_cmd *cmd);
/* Forgets the login and the SASL handle: at the end of the session, and
 * after STARTTLS (RFC 3207 section 4.2: the client must authenticate again). */
void smtpd_sasl_session_end(struct smtpd_session *s);

/* smtpd_peer.c */
void smtpd_peer_init(void);
void smtpd_peer_lookup(struct smtpd_session *s, int fd);
/* The local identity of stand-alone mode. */
void smtpd_peer_local(struct smtpd_session *s);

#endif
