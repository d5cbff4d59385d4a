/*
 * tls.h - TLS for Petrel's SMTP server and client, on OpenSSL.
 *
 * SUMMARY
 *	A tls_ctx is one configured OpenSSL context (certificate, key, CA,
 *	protocols, cipher grade), made once per process. tls_server_start and
 *	tls_client_start run the handshake on an existing stream (after
 *	STARTTLS, or at once in wrapper mode) under the stream's clock, then
 *	replace the stream's I/O layer, so every caller keeps reading lines and
 *	writing replies as before. The stream owns the tls_conn from then on:
 *	stream_close sends close_notify (without waiting) and frees it.
 *
 * DEFAULTS
 *	Modern: TLS 1.2 and 1.3 only unless the protocols setting widens it,
 *	no compression, no renegotiation, the server's cipher preference.
 *	Protocols take Postfix's syntax: ">=TLSv1.2", "<=TLSv1.3", or
 *	exclusions "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1" (separated by commas,
 *	colons or spaces); a plain list "TLSv1.2 TLSv1.3" names what is allowed.
 *	Cipher grades are Postfix's: high, medium (the default), low, export,
 *	null; "exclude" ciphers are removed from the grade's list.
 *
 * VERIFICATION
 *	The client never aborts a handshake over the server's certificate: it
 *	records whether the chain verified against its CA file/path (or the
 *	system's store) and whether a name matched, so the caller decides by
 *	its security level (may, encrypt, verify, secure).
 *
 * NEVER
 *	Never waits without the stream's bound, never reads plaintext that
 *	was buffered before the handshake (stream_set_io refuses), never
 *	raises SIGPIPE, and never lets a certificate problem at "may" stop mail.
 */
#ifndef PETREL_TLS_H
#define PETREL_TLS_H

#include "strbuf.h"
#include "stream.h"

struct tls_ctx;
struct tls_conn;

struct tls_ctx_opts {
    int server;                 /* 1: accept, 0: connect */
    const char *cert_file;      /* PEM chain (the certificate first); may be empty */
    const char *key_file;       /* PEM key; empty: in cert_file */
    const char *ca_file;        /* trust anchors; empty: the system's (client) */
    const char *ca_path;
    const char *protocols;      /* Postfix syntax; empty: >=TLSv1.2 */
    const char *cipher_grade;   /* high, medium, low, export, null; empty: medium */
    const char *exclude;        /* tls_*_exclude_ciphers: OpenSSL names to remove */
    int ask_ccert;              /* server: request a client certificate (recorded, never
                                 * required; ca_file names the CAs suggested to it) */
    int verify_depth;           /* longest peer chain verified; 0: OpenSSL's default */
};

/* NULL with the reason (file, OpenSSL's text) when a setting cannot be used. */
struct tls_ctx *tls_ctx_create(const struct tls_ctx_opts *opts, struct strbuf *why);
void tls_ctx_free(struct tls_ctx **ctxp);

/*
 * Runs the handshake on s within timeout_ms; on success the stream speaks TLS
 * and the connection is returned (owned by the stream). NULL with the reason
 * when it fails (the stream is then unusable). The caller must have discarded
 * buffered input and flushed output. servername: SNI for the client, or NULL.
 */
struct tls_conn *tls_server_start(struct tls_ctx *ctx, struct stream *s, int timeout_ms,
                                  struct strbuf *why);
struct tls_conn *tls_client_start(struct tls_ctx *ctx, struct stream *s, const char *servername,
                                  int timeout_ms, struct strbuf *why);

/* Facts about an established connection. */
const char *tls_conn_protocol(const struct tls_conn *c);       /* "TLSv1.3" */
const char *tls_conn_cipher(const struct tls_conn *c);         /* "TLS_AES_256_GCM_SHA384" */
int tls_conn_cipher_bits(const struct tls_conn *c, int *alg_bits);
/* The peer's certificate: present, subject and issuer CN (or ""), chain verified. */
int tls_conn_peer_cert(const struct tls_conn *c);
const char *tls_conn_peer_subject(const struct tls_conn *c);
const char *tls_conn_peer_issuer(const struct tls_conn *c);
int tls_conn_peer_verified(const struct tls_conn *c);
/* Why the chain did not verify ("unable to get local issuer certificate"), or "". */
const char *tls_conn_verify_error(const struct tls_conn *c);
/* Whether the peer certificate matches a DNS name (wildcards as RFC 6125);
 * a name starting with "." matches any subdomain of it. */
int tls_conn_peer_matches(const struct tls_conn *c, const char *name);

/* Parses a protocols setting into OpenSSL min/max versions; -1 with why. */
int tls_protocols_parse(const char *spec, int *min_version, int *max_version,
                        struct strbuf *why);

#endif
