/*
 * milter.h - the milter client: Petrel as the MTA side of the Sendmail
 * milter protocol (versions 2 to 6), as Postfix's milter8 client.
 *
 * A list of milters comes from smtpd_milters or non_smtpd_milters: each
 * element is a socket (unix:/path, inet:host:port, inet6:host:port) or a
 * braced group with per-milter settings, e.g.
 *	{ inet:127.0.0.1:8891, connect_timeout=5s, default_action=accept }
 * (connect_timeout, command_timeout, content_timeout, default_action,
 * protocol). Milters run in list order; the first verdict that is not
 * "continue" wins.
 *
 * Events return NULL to go on, or a verdict string (Postfix's convention):
 *	"4xx ..." / "5xx ..."	an SMTP reply (possibly several CRLF-separated lines)
 *	"D"			discard the message
 *	"H reason"		quarantine: the message goes to the hold queue
 *	"S"			shutdown: "421" and end the session
 * The string stays valid until the next event on the same list.
 *
 * Envelope events (connect, helo, mail, rcpt, data, unknown, abort, quit)
 * run in smtpd; content events (headers, body, end of message with the
 * modifications) run where the queue file is written (cleanup), which gets
 * the connections with milters_export/milters_import over the cleanup
 * protocol. Every byte from a filter is untrusted (milter_proto.c); every
 * wait is bounded by the milter's timeouts; a filter that fails, times out,
 * sends garbage or closes the socket is logged with its name and the stage,
 * is closed, and gives its default action from then on.
 */
#ifndef PETREL_MILTER_H
#define PETREL_MILTER_H

#include <stddef.h>

#include "attr.h"
#include "strbuf.h"

struct milters;

/* Looks up a macro value ("j", "{client_addr}"); NULL when not available. */
typedef const char *(*milter_macro_fn)(void *ctx, const char *name);

/*
 * Applies the modifications a filter asks for at the end of the message.
 * Each returns 0, or -1 with a reason (then the filter's default action
 * applies). Header index counts from 1 among headers of that name
 * (change/delete) or over all headers (insert; 0 is the top).
 */
struct milter_edit_ops {
    int (*add_header)(void *ctx, const char *name, const char *value);
    int (*ins_header)(void *ctx, size_t index, const char *name, const char *value);
    int (*chg_header)(void *ctx, size_t index, const char *name, const char *value);
    int (*add_rcpt)(void *ctx, const char *rcpt, const char *args);
    int (*del_rcpt)(void *ctx, const char *rcpt);
    int (*chg_from)(void *ctx, const char *sender, const char *args);
    /* Replacement body, chunk after chunk (LF line ends); first is 1 for
     * the first chunk of this filter's replacement. */
    int (*repl_body)(void *ctx, const char *data, size_t len, int first);
};

/*
 * Parses a milter list (the value of smtpd_milters); NULL with a reason for
 * a syntax error (an administrator error: callers make it fatal). An empty
 * list gives NULL with why empty. Nothing is connected yet.
 */
struct milters *milters_create(const char *spec, struct strbuf *why);
void milters_free(struct milters **msp);
void milters_set_macros(struct milters *ms, milter_macro_fn fn, void *ctx);
/* A name for log lines of the current message ("QUEUEID"), or NULL. */
void milters_set_log_id(struct milters *ms, const char *id);
size_t milters_count(const struct milters *ms);

/* Connects and negotiates every milter; one that fails gets its default action. */
const char *milter_connect_event(struct milters *ms, const char *client_name,
                                 const char *client_addr, int port);
const char *milter_helo_event(struct milters *ms, const char *helo);
/* argv: the address in <>, then the ESMTP parameters; NULL-terminated. */
const char *milter_mail_event(struct milters *ms, const char *const *argv);
/* rejected: the recipient was refused by Petrel; sent only to filters
 * that negotiated SMFIP_RCPT_REJ (and never their verdict taken). */
const char *milter_rcpt_event(struct milters *ms, const char *const *argv, int rejected);
const char *milter_data_event(struct milters *ms);
const char *milter_unknown_event(struct milters *ms, const char *command);
/* Content. header: name and value as received (value after the colon,
 * folding kept with LF). */
const char *milter_header_event(struct milters *ms, const char *name, size_t name_len,
                                const char *value, size_t value_len);
const char *milter_eoh_event(struct milters *ms);
/* Body bytes with LF line ends; sent with CRLF, chunked. */
const char *milter_body_event(struct milters *ms, const char *data, size_t len);
const char *milter_eom_event(struct milters *ms, const struct milter_edit_ops *ops,
                             void *ctx);
/* Whether any milter still wants the message content (not accepted, not
 * NOHDRS+NOBODY+no EOM interest). */
int milters_want_content(const struct milters *ms);

/* Per-filter message pass (cleanup runs the content stages one filter at a
 * time so each sees the previous one's changes, as Postfix does). */
size_t milters_message_count(const struct milters *ms);
/* Selects filter i (0-based) for the content events, or all when (size_t) -1. */
void milters_select(struct milters *ms, size_t i);

/* RSET or an MTA-side rejection of the transaction. */
void milter_abort_event(struct milters *ms);
/* End of the session: QUIT to every milter, sockets closed; with
 * milter_connection_reuse, a version 6 filter that takes the CONNECT stage
 * and whose last command was end of message (or UNKNOWN) answered
 * "continue" gets QUIT_NC instead, and its
 * connection is kept for the next session of this process (the next
 * milter_connect_event on a list naming it starts there with CONNECT). */
void milter_quit_event(struct milters *ms);

/*
 * Hands the connections to another process: adds the milters' state and
 * descriptors (still owned by ms) to a frame. milters_import rebuilds a list
 * from such a frame (taking the descriptors); NULL when the frame has no
 * milters, or with a reason when it is malformed. milters_import_consumed
 * marks the attributes read.
 */
int milters_export(struct milters *ms, struct attr_msg *msg);
struct milters *milters_import(struct attr_msg *msg, struct strbuf *why);
/* After import: names of milters that failed in this process, for the log
 * and for the exporter to stop using them ("1,3"), or "" when none. */
const char *milters_failed_list(struct milters *ms);
/* Marks milters by index list ("1,3") as failed: their connection is out of step. */
void milters_mark_failed(struct milters *ms, const char *list);
/* After import: the milters whose conversation ended at rest here (end of
 * message answered "continue"), "" when none; the exporter marks them, so
 * that its QUIT may keep their connections (milter_quit_event). */
const char *milters_at_rest_list(struct milters *ms);
void milters_mark_at_rest(struct milters *ms, const char *list);

/* Checks of configuration values, for start-up and "petrel check". */
int milter_default_action_valid(const char *name);
/* milter_macro_defaults: "name=value" or "{ name = value }" entries, used
 * when a macro has no value; 0 with the reason in why when malformed. */
int milter_macro_defaults_valid(const char *spec, struct strbuf *why);

#endif
