/*
 * tls.c - TLS contexts, handshakes and the stream I/O layer (tls.h).
 *
 * NEVER
 *	Never blocks: the descriptor stays non-blocking and every wait goes
 *	through stream_wait under the stream's clock. Never trusts a handshake
 *	that did not complete, and never leaves OpenSSL's error queue to the
 *	next caller (it is cleared before each call that reads it).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "msg.h"
#include "mymalloc.h"
#include "tls.h"

struct tls_ctx {
    SSL_CTX *ssl_ctx;
    int server;
    int holes;                  /* SSL_OP_NO_* for versions excluded inside min..max */
};

struct tls_conn {
    SSL *ssl;
    X509 *peer;
    char subject[256], issuer[256];
    long verify_result;
};

/* --- Protocols -------------------------------------------------------------------- */

static const struct {
    const char *name;
    int version;
    long no_option;
} tls_versions[] = {
    {"SSLv2", 0, 0},                    /* gone from OpenSSL: accepted, never used */
    {"SSLv3", SSL3_VERSION, SSL_OP_NO_SSLv3},
    {"TLSv1", TLS1_VERSION, SSL_OP_NO_TLSv1},
    {"TLSv1.1", TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
    {"TLSv1.2", TLS1_2_VERSION, SSL_OP_NO_TLSv1_2},
    {"TLSv1.3", TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
};

#define TLS_NVERSIONS (sizeof(tls_versions) / sizeof(tls_versions[0]))

static int tls_version_index(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < TLS_NVERSIONS; i++)
        if (strlen(tls_versions[i].name) == len
            && strncasecmp(tls_versions[i].name, name, len) == 0)
            return (int) i;
    return -1;
}

/* The allowed versions as a bit mask over tls_versions (SSLv2 never). */
static int tls_protocols_mask(const char *spec, unsigned *allowed, struct strbuf *why)
{
    unsigned all = ((1u << TLS_NVERSIONS) - 1) & ~1u, named = 0, mask = all;
    const char *p = spec ? spec : "";
    int any_named = 0;

    if (p[strspn(p, ", :\t")] == 0)
        p = ">=TLSv1.2";
    while (*p) {
        size_t n;
        int op = 0, i;

        p += strspn(p, ", :\t");
        if ((n = strcspn(p, ", :\t")) == 0)
            break;
        if (p[0] == '!')
            op = '!';
        else if (n > 2 && (strncmp(p, ">=", 2) == 0 || strncmp(p, "<=", 2) == 0))
            op = p[0];
        if ((i = tls_version_index(p + (op == '!' ? 1 : op ? 2 : 0),
                                   n - (op == '!' ? 1 : op ? 2 : 0))) < 0) {
            strbuf_printf(why, "unknown TLS protocol \"%.*s\" (SSLv3, TLSv1, TLSv1.1, TLSv1.2, "
                          "TLSv1.3, with ! to exclude or >= and <= for a range)",
                          (int) (n > 64 ? 64 : n), p);
            return -1;
        }
        if (op == '!')
            mask &= ~(1u << i);
        else if (op == '>')
            mask &= ~((1u << i) - 1);
        else if (op == '<')
            mask &= (2u << i) - 1;
        else {
            named |= 1u << i;
            any_named = 1;
        }
        p += n;
    }
    if (any_named)
        mask &= named;
    if ((mask & all) == 0) {
        strbuf_printf(why, "\"%.200s\" leaves no TLS protocol version", spec);
        return -1;
    }
    *allowed = mask & all;
    return 0;
}

int tls_protocols_parse(const char *spec, int *min_version, int *max_version,
                        struct strbuf *why)
{
    unsigned mask;
    size_t i;

    if (tls_protocols_mask(spec, &mask, why) < 0)
        return -1;
    *min_version = *max_version = 0;
    for (i = 0; i < TLS_NVERSIONS; i++)
        if (mask & (1u << i)) {
            if (*min_version == 0)
                *min_version = tls_versions[i].version;
            *max_version = tls_versions[i].version;
        }
    return 0;
}

/* --- Contexts ------------------------------------------------------------------------ */

static void tls_why_openssl(struct strbuf *why, const char *what, const char *arg)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    ERR_error_string_n(e, buf, sizeof(buf));
    strbuf_printf(why, "%s%s%s: %s", what, arg ? " " : "", arg ? arg : "",
                  e ? buf : "unknown TLS library problem");
    ERR_clear_error();
}

static const char *tls_grade_ciphers(const char *grade)
{
    if (grade == NULL || *grade == 0 || strcasecmp(grade, "medium") == 0)
        return "HIGH:MEDIUM:!aNULL:!eNULL:!MD5:!RC4:!3DES:@STRENGTH";
    if (strcasecmp(grade, "high") == 0)
        return "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES:@STRENGTH";
    if (strcasecmp(grade, "low") == 0 || strcasecmp(grade, "export") == 0)
        return "HIGH:MEDIUM:LOW:!aNULL:!eNULL:@STRENGTH";
    if (strcasecmp(grade, "null") == 0)
        return "eNULL:!aNULL";
    return NULL;
}

/* Lets every handshake go on; SSL_get_verify_result keeps what went wrong. */
static int tls_verify_record(int ok, X509_STORE_CTX *store)
{
    (void) ok;
    (void) store;
    return 1;
}

struct tls_ctx *tls_ctx_create(const struct tls_ctx_opts *o, struct strbuf *why)
{
    struct tls_ctx *tc;
    struct strbuf ciphers;
    const char *grade, *p;
    unsigned mask;
    int minv = 0, maxv = 0;
    size_t i;

    if (tls_protocols_mask(o->protocols, &mask, why) < 0)
        return NULL;
    if ((grade = tls_grade_ciphers(o->cipher_grade)) == NULL) {
        strbuf_printf(why, "unknown cipher grade \"%s\" (high, medium, low, export, null)",
                      o->cipher_grade);
        return NULL;
    }
    tc = xcalloc(1, sizeof(*tc));
    tc->server = o->server;
    ERR_clear_error();
    tc->ssl_ctx = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
    if (tc->ssl_ctx == NULL) {
        tls_why_openssl(why, "cannot create a TLS context", NULL);
        goto bad;
    }
    for (i = 0; i < TLS_NVERSIONS; i++)
        if (mask & (1u << i)) {
            if (minv == 0)
                minv = tls_versions[i].version;
            maxv = tls_versions[i].version;
        }
    for (i = 0; i < TLS_NVERSIONS; i++)
        if (tls_versions[i].version >= minv && tls_versions[i].version <= maxv
            && !(mask & (1u << i)))
            tc->holes |= (int) tls_versions[i].no_option;
    if (!SSL_CTX_set_min_proto_version(tc->ssl_ctx, minv)
        || !SSL_CTX_set_max_proto_version(tc->ssl_ctx, maxv)) {
        tls_why_openssl(why, "cannot set the TLS protocol range", o->protocols);
        goto bad;
    }
    SSL_CTX_set_options(tc->ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                        | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF
                        | (unsigned long) tc->holes);
    SSL_CTX_set_mode(tc->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                     | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    strbuf_init(&ciphers, 128, 4096);
    strbuf_puts(&ciphers, grade);
    for (p = o->exclude ? o->exclude : ""; *p;) {
        size_t n;

        p += strspn(p, ", :\t");
        if ((n = strcspn(p, ", :\t")) == 0)
            break;
        strbuf_printf(&ciphers, ":!%.*s", (int) n, p);
        p += n;
    }
    if (!SSL_CTX_set_cipher_list(tc->ssl_ctx, ciphers.data)) {
        tls_why_openssl(why, "no usable cipher in", ciphers.data);
        strbuf_release(&ciphers);
        goto bad;
    }
    strbuf_release(&ciphers);
    if (o->cert_file && *o->cert_file) {
        const char *key = o->key_file && *o->key_file ? o->key_file : o->cert_file;

        if (SSL_CTX_use_certificate_chain_file(tc->ssl_ctx, o->cert_file) != 1) {
            tls_why_openssl(why, "cannot load the certificate chain from", o->cert_file);
            goto bad;
        }
        if (SSL_CTX_use_PrivateKey_file(tc->ssl_ctx, key, SSL_FILETYPE_PEM) != 1) {
            tls_why_openssl(why, "cannot load the private key from", key);
            goto bad;
        }
        if (SSL_CTX_check_private_key(tc->ssl_ctx) != 1) {
            tls_why_openssl(why, "the private key does not match the certificate in",
                            o->cert_file);
            goto bad;
        }
    } else if (o->server) {
        strbuf_set(why, "no server certificate (smtpd_tls_cert_file is empty)");
        goto bad;
    }
    if ((o->ca_file && *o->ca_file) || (o->ca_path && *o->ca_path)) {
        if (SSL_CTX_load_verify_locations(tc->ssl_ctx, o->ca_file && *o->ca_file ? o->ca_file
                                          : NULL, o->ca_path && *o->ca_path ? o->ca_path
                                          : NULL) != 1) {
            tls_why_openssl(why, "cannot load trust anchors from",
                            o->ca_file && *o->ca_file ? o->ca_file : o->ca_path);
            goto bad;
        }
    } else if (!o->server) {
        (void) SSL_CTX_set_default_verify_paths(tc->ssl_ctx);
        ERR_clear_error();
    }
    /* The decision is the caller's (security levels): record, never abort. */
    if (o->server && o->ask_ccert) {
        SSL_CTX_set_verify(tc->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE,
                           tls_verify_record);
        if (o->ca_file && *o->ca_file) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);

            if (names)
                SSL_CTX_set_client_CA_list(tc->ssl_ctx, names);
            ERR_clear_error();
        }
    } else {
        SSL_CTX_set_verify(tc->ssl_ctx, SSL_VERIFY_NONE, NULL);
    }
    if (o->verify_depth > 0)
        SSL_CTX_set_verify_depth(tc->ssl_ctx, o->verify_depth);
    if (o->server)
        (void) SSL_CTX_set_session_id_context(tc->ssl_ctx, (const unsigned char *) "petrel", 6);
    return tc;
bad:
    tls_ctx_free(&tc);
    return NULL;
}

void tls_ctx_free(struct tls_ctx **ctxp)
{
    struct tls_ctx *tc = *ctxp;

    if (tc == NULL)
        return;
    SSL_CTX_free(tc->ssl_ctx);
    free(tc);
    *ctxp = NULL;
}

/* --- The I/O layer ------------------------------------------------------------------ */

static ssize_t tls_io_result(struct tls_conn *c, int ok, size_t n)
{
    if (ok == 1)
        return (ssize_t) n;
    switch (SSL_get_error(c->ssl, 0)) {
    case SSL_ERROR_WANT_READ:
        return STREAM_IO_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return STREAM_IO_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0)
            errno = ECONNRESET;
        ERR_clear_error();
        return -1;
    default:
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

static ssize_t tls_io_read(void *ctx, int fd, void *buf, size_t len)
{
    struct tls_conn *c = ctx;
    size_t n = 0;
    int ok;

    ERR_clear_error();
    errno = 0;
    ok = SSL_read_ex(c->ssl, buf, len, &n);
    return tls_io_result(c, ok, n);
}

static ssize_t tls_io_write(void *ctx, int fd, const void *buf, size_t len)
{
    struct tls_conn *c = ctx;
    size_t n = 0;
    int ok;

    ERR_clear_error();
    errno = 0;
    ok = SSL_write_ex(c->ssl, buf, len, &n);
    return tls_io_result(c, ok, n);
}

static size_t tls_io_pending(void *ctx)
{
    struct tls_conn *c = ctx;

    return (size_t) SSL_pending(c->ssl);
}

static void tls_conn_free(struct tls_conn *c)
{
    X509_free(c->peer);
    SSL_free(c->ssl);
    free(c);
}

static int tls_io_close(void *ctx, int fd)
{
    struct tls_conn *c = ctx;

    /* close_notify, without waiting for the peer's. */
    ERR_clear_error();
    if (SSL_is_init_finished(c->ssl))
        (void) SSL_shutdown(c->ssl);
    ERR_clear_error();
    tls_conn_free(c);
    return 0;
}

static const struct stream_io tls_stream_io = {
    .read = tls_io_read,
    .write = tls_io_write,
    .pending = tls_io_pending,
    .close = tls_io_close,
};

/* --- Handshakes ---------------------------------------------------------------------- */

static void tls_name_cn(X509_NAME *name, char *buf, size_t len)
{
    buf[0] = 0;
    if (name == NULL || X509_NAME_get_text_by_NID(name, NID_commonName, buf, (int) len) < 0)
        buf[0] = 0;
}

static struct tls_conn *tls_start(struct tls_ctx *tc, struct stream *s, const char *servername,
                                  int timeout_ms, struct strbuf *why)
{
    struct tls_conn *c = xcalloc(1, sizeof(*c));
    int saved = stream_timeout(s), r;

    if (stream_pending(s) > 0)
        msg_panic("tls_start: plaintext input still buffered");
    if ((c->ssl = SSL_new(tc->ssl_ctx)) == NULL || !SSL_set_fd(c->ssl, stream_fd(s))) {
        tls_why_openssl(why, "cannot start TLS", NULL);
        goto bad;
    }
    if (!tc->server && servername && *servername) {
        (void) SSL_set_tlsext_host_name(c->ssl, servername);
        ERR_clear_error();
    }
    stream_set_timeout(s, timeout_ms > 0 ? timeout_ms : saved);
    for (;;) {
        ERR_clear_error();
        errno = 0;
        if ((r = tc->server ? SSL_accept(c->ssl) : SSL_connect(c->ssl)) == 1)
            break;
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_READ:
            if (stream_wait(s, POLLIN) == 0)
                continue;
            strbuf_printf(why, "%s", stream_strerror(s, STREAM_DIR_READ));
            goto bad_restore;
        case SSL_ERROR_WANT_WRITE:
            if (stream_wait(s, POLLOUT) == 0)
                continue;
            strbuf_printf(why, "%s", stream_strerror(s, STREAM_DIR_WRITE));
            goto bad_restore;
        case SSL_ERROR_SYSCALL:
            if (ERR_peek_error() == 0) {
                strbuf_set(why, errno ? strerror(errno) : "lost connection");
                goto bad_restore;
            }
            /* FALLTHROUGH */
        default:
            tls_why_openssl(why, tc->server ? "SSL_accept error" : "SSL_connect error", NULL);
            goto bad_restore;
        }
    }
    stream_set_timeout(s, saved);
    c->peer = SSL_get1_peer_certificate(c->ssl);
    if (c->peer) {
        tls_name_cn(X509_get_subject_name(c->peer), c->subject, sizeof(c->subject));
        tls_name_cn(X509_get_issuer_name(c->peer), c->issuer, sizeof(c->issuer));
    }
    c->verify_result = c->peer ? SSL_get_verify_result(c->ssl) : X509_V_ERR_UNSPECIFIED;
    stream_set_io(s, &tls_stream_io, c);
    return c;
bad_restore:
    stream_set_timeout(s, saved);
bad:
    ERR_clear_error();
    if (c->ssl)
        SSL_free(c->ssl);
    free(c);
    return NULL;
}

struct tls_conn *tls_server_start(struct tls_ctx *ctx, struct stream *s, int timeout_ms,
                                  struct strbuf *why)
{
    if (!ctx->server)
        msg_panic("tls_server_start: client context");
    return tls_start(ctx, s, NULL, timeout_ms, why);
}

struct tls_conn *tls_client_start(struct tls_ctx *ctx, struct stream *s, const char *servername,
                                  int timeout_ms, struct strbuf *why)
{
    if (ctx->server)
        msg_panic("tls_client_start: server context");
    return tls_start(ctx, s, servername, timeout_ms, why);
}

/* --- Facts ---------------------------------------------------------------------------- */

const char *tls_conn_protocol(const struct tls_conn *c)
{
    return SSL_get_version(c->ssl);
}

const char *tls_conn_cipher(const struct tls_conn *c)
{
    const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);

    return ci ? SSL_CIPHER_get_name(ci) : "none";
}

int tls_conn_cipher_bits(const struct tls_conn *c, int *alg_bits)
{
    const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);
    int alg = 0, bits = ci ? SSL_CIPHER_get_bits(ci, &alg) : 0;

    if (alg_bits)
        *alg_bits = alg;
    return bits;
}

int tls_conn_peer_cert(const struct tls_conn *c)
{
    return c->peer != NULL;
}

const char *tls_conn_peer_subject(const struct tls_conn *c)
{
    return c->subject;
}

const char *tls_conn_peer_issuer(const struct tls_conn *c)
{
    return c->issuer;
}

int tls_conn_peer_verified(const struct tls_conn *c)
{
    return c->peer != NULL && c->verify_result == X509_V_OK;
}

const char *tls_conn_verify_error(const struct tls_conn *c)
{
    if (c->peer == NULL)
        return "no certificate";
    return c->verify_result == X509_V_OK ? "" : X509_verify_cert_error_string(c->verify_result);
}

int tls_conn_peer_matches(const struct tls_conn *c, const char *name)
{
    int r;

    if (c->peer == NULL || name == NULL || *name == 0)
        return 0;
    r = X509_check_host(c->peer, name, 0, 0, NULL);
    ERR_clear_error();
    return r == 1;
}
