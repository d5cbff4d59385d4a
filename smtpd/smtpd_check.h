/*
 * smtpd_check.h - the SMTP access restrictions engine (Postfix semantics).
 * smtpd calls smtpd_check at each stage with the session's state; the engine
 * evaluates smtpd_client/helo/sender/relay/recipient/data/end_of_data/etrn
 * _restrictions in Postfix's order (with smtpd_delay_reject: client, helo and
 * sender restrictions are evaluated at RCPT time), applies access table actions,
 * logs every rejection as "QUEUEID|NOQUEUE: reject: STAGE from host[addr]:
 * REPLY; from=<..> to=<..> proto=.. helo=<..>", and returns the reply to send.
 * Table lookups that fail temporarily answer 4xx, never "permit".
 */
#ifndef SMTPD_CHECK_H
#define SMTPD_CHECK_H

#include "strbuf.h"

enum smtpd_check_stage {
    SMTPD_CHECK_CONNECT,        /* smtpd_client_restrictions */
    SMTPD_CHECK_HELO,           /* smtpd_helo_restrictions */
    SMTPD_CHECK_MAIL,           /* smtpd_sender_restrictions */
    SMTPD_CHECK_RCPT,           /* smtpd_relay_restrictions, then _recipient_ */
    SMTPD_CHECK_DATA,           /* smtpd_data_restrictions */
    SMTPD_CHECK_END_OF_DATA,    /* smtpd_end_of_data_restrictions */
    SMTPD_CHECK_ETRN,           /* smtpd_etrn_restrictions */
    SMTPD_CHECK_VRFY,           /* recipient checks for VRFY (reject_unlisted_recipient) */
};

/* What the engine sees of the session. smtpd owns every pointer. */
struct smtpd_check_state {
    const char *client_name;    /* verified name or "unknown" */
    const char *client_addr;    /* printable IP address */
    int client_port;
    const char *reverse_client_name;    /* PTR name, verified or not; NULL: as client_name */
    const char *server_addr;    /* our end of the connection; NULL or "" when unknown */
    int server_port;
    const char *helo_name;      /* NULL before HELO/EHLO */
    const char *protocol;       /* "SMTP", "ESMTP", "ESMTPS", "ESMTPA", ... */
    const char *sasl_method;    /* NULL unless authenticated */
    const char *sasl_username;  /* NULL unless authenticated */
    const char *sasl_sender;    /* MAIL FROM AUTH= (xtext) of an authenticated client, or NULL */
    const char *sender;         /* internal form; "" for <>; NULL before MAIL */
    const char *recipient;      /* the RCPT being checked (internal form) */
    const char *etrn_domain;    /* the ETRN argument */
    const char *queue_id;       /* NULL before the queue file exists */
    int recipient_count;        /* recipients accepted so far in this transaction */
    int pipelining_violation;   /* client sent ahead without PIPELINING */
    long long message_size;     /* MAIL SIZE= (0: none) until END_OF_DATA, then the real size */
    /* TLS: NULL (and 0) before the handshake. The certificate names are
     * xtext-encoded and set only for a trusted client certificate. */
    const char *encryption_protocol;    /* "TLSv1.3" */
    const char *encryption_cipher;
    int encryption_keysize;
    const char *ccert_subject;
    const char *ccert_issuer;

    /* Results that outlive one call (set by table actions; smtpd applies them). */
    int hold;                   /* HOLD: message goes to the hold queue */
    int discard;                /* DISCARD: accept and throw away */
    char hold_reason[256];
    struct strbuf *prepend;     /* PREPEND header lines, "Name: value\n" each */
    struct strbuf *warnings;    /* unused by smtpd; WARN actions are logged */

    void *engine;               /* engine-private per-session data */
};

/* The verdict of one stage. code 0 means "go on"; else the full reply line. */
struct smtpd_check_result {
    int code;                   /* 0, or the SMTP code of reply */
    char reply[512];            /* "554 5.7.1 <x@y>: Relay access denied" */
};

/* Opens the tables named in the restriction lists (after config_load, before
 * dropping privileges is fine too). Administrator errors are fatal with file:line. */
void smtpd_check_init(void);
/* Per-session setup and teardown of state->engine. */
void smtpd_check_session_begin(struct smtpd_check_state *state);
void smtpd_check_session_end(struct smtpd_check_state *state);
/* Forgets transaction results (RSET, end of message): hold, discard, prepends. */
void smtpd_check_reset_transaction(struct smtpd_check_state *state);

int smtpd_check(struct smtpd_check_state *state, enum smtpd_check_stage stage,
                struct smtpd_check_result *result);

/* Whether a domain may be relayed to / accepted for: local, virtual, relay_domains. */
int smtpd_check_is_our_domain(const char *domain);

/* Whether the client address is in mynetworks (1), not (0), or a table failed (-1).
 * smtpd uses it for smtpd_untrusted_strip_headers: mail from mynetworks or an
 * authenticated client keeps its headers. */
int smtpd_check_client_in_mynetworks(const char *client_addr);

#endif
