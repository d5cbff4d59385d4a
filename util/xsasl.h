/*
 * xsasl.h - SASL authentication for the SMTP server and client, behind a small
 * interface so that another implementation could replace Cyrus SASL (the only
 * one today, xsasl_cyrus.c: every call into libsasl2 lives there).
 *
 * Server: xsasl_server_init once per process, then one xsasl_server per
 * session (and a fresh one after a failed exchange: Cyrus does not allow a
 * handle to be reused). xsasl_server_first/next take the client's base64 text
 * and return the base64 challenge (XSASL_MORE) or the reason (other results).
 * Client: xsasl_client_init once per process, one xsasl_client per login.
 *
 * Never logs a password or a decoded response; base64 is decoded by the
 * library (sasl_decode64), never by hand; every buffer is bounded.
 */
#ifndef PETREL_XSASL_H
#define PETREL_XSASL_H

#include "strbuf.h"

enum xsasl_status {
    XSASL_DONE,                 /* authenticated (server) / ready to go on (client) */
    XSASL_MORE,                 /* reply holds the next challenge or response (base64) */
    XSASL_FAIL,                 /* authentication failed: 535 (reply holds the reason) */
    XSASL_TEMP,                 /* temporary failure: 454 */
    XSASL_FORM,                 /* the peer's text was not valid base64: 501 */
};

/* The longest base64 text accepted from a peer or produced for one. */
#define XSASL_TEXT_MAX  (64 * 1024)

/* Parses a Postfix SASL security option list ("noanonymous, noplaintext"):
 * 0 with the Cyrus flags in *flags, or -1 with the reason in err. */
int xsasl_security_parse(const char *opts, unsigned *flags, struct strbuf *err);

/* --- server ------------------------------------------------------------------- */

struct xsasl_server;

/* Once per process. app_name is the configuration file name without ".conf"
 * (smtpd_sasl_path); config_path the directories to search for it
 * (cyrus_sasl_config_path; NULL or "" for the library's default). */
int xsasl_server_init(const char *app_name, const char *config_path, struct strbuf *err);

struct xsasl_server_args {
    const char *service;        /* smtpd_sasl_service */
    const char *server_name;    /* myhostname */
    const char *realm;          /* smtpd_sasl_local_domain; NULL or "" for none */
    const char *local_addr;     /* our address and port, or NULL */
    int local_port;
    const char *remote_addr;    /* the client's address and port, or NULL */
    int remote_port;
    const char *security;       /* smtpd_sasl_(tls_)security_options */
};

struct xsasl_server *xsasl_server_create(const struct xsasl_server_args *args,
                                         struct strbuf *err);
/* The mechanisms to offer, space separated ("" when none). */
const char *xsasl_server_mechanisms(struct xsasl_server *srv);
/* Whether mech (any case) is one of the offered mechanisms. */
int xsasl_server_offers(struct xsasl_server *srv, const char *mech);
/* init is the initial response as sent (base64, "=" for an empty one), or NULL. */
enum xsasl_status xsasl_server_first(struct xsasl_server *srv, const char *mech,
                                     const char *init, struct strbuf *reply);
enum xsasl_status xsasl_server_next(struct xsasl_server *srv, const char *response,
                                    struct strbuf *reply);
/* The authenticated (or, after a failure, the attempted) login name, or NULL. */
const char *xsasl_server_username(struct xsasl_server *srv);
void xsasl_server_free(struct xsasl_server **srvp);

/* --- client ------------------------------------------------------------------- */

struct xsasl_client;

/* Once per process; config_path as for the server. */
int xsasl_client_init(const char *config_path, struct strbuf *err);

struct xsasl_client *xsasl_client_create(const char *service, const char *server_name,
                                         const char *security, const char *username,
                                         const char *password, struct strbuf *err);
/* Chooses a mechanism from the server's list (space separated) and computes
 * the initial response (base64; empty when the mechanism has none). XSASL_DONE
 * with *mech set, or XSASL_FAIL with the reason in reply. */
enum xsasl_status xsasl_client_first(struct xsasl_client *cl, const char *mechanisms,
                                     const char **mech, struct strbuf *reply);
/* Answers a base64 challenge with a base64 response: XSASL_DONE, or XSASL_FAIL
 * or XSASL_FORM with the reason in reply. */
enum xsasl_status xsasl_client_next(struct xsasl_client *cl, const char *challenge,
                                    struct strbuf *reply);
void xsasl_client_free(struct xsasl_client **clp);

#endif
