/*
 * test_tls.c - the TLS layer: the protocols syntax, contexts that refuse bad
 * files, and real handshakes between a server and a client context over a
 * socketpair (the server in a child process): lines through the stream,
 * protocol and cipher facts, chain verification with and without the CA,
 * name matching, a peer that never answers the handshake (timeout), and
 * plaintext buffered before the handshake (refused).
 * Certificates are made here with OpenSSL; every wait has a timeout.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "stream.h"
#include "tls.h"

static char dir[64], ca_pem[128], cert_pem[128], key_pem[128], other_pem[128];

/* Writes a certificate for cn (with subjectAltName san) signed by issuer. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
                       EVP_PKEY *issuer_key, int ca)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long) (cn[0] + 1000 * ca));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    if (ca) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (san) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
    X509_NAME_free(name);
    return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *key)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    if (x)
        PEM_write_X509(fp, x);
    if (key)
        PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
}

static int setup_certs(void **state)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
    X509 *ca, *leaf, *other;

    snprintf(dir, sizeof(dir), "/tmp/test_tls.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", dir);
    snprintf(cert_pem, sizeof(cert_pem), "%s/cert.pem", dir);
    snprintf(key_pem, sizeof(key_pem), "%s/key.pem", dir);
    snprintf(other_pem, sizeof(other_pem), "%s/other.pem", dir);
    ca = make_cert(ca_key, "Test CA", NULL, NULL, NULL, 1);
    leaf = make_cert(key, "mx.example.test", "DNS:mx.example.test,DNS:*.relay.example.test",
                     ca, ca_key, 0);
    other = make_cert(key, "other", NULL, NULL, NULL, 0);
    write_pem(ca_pem, ca, NULL);
    write_pem(cert_pem, leaf, NULL);
    write_pem(key_pem, NULL, key);
    write_pem(other_pem, other, NULL);
    X509_free(ca);
    X509_free(leaf);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int teardown_certs(void **state)
{
    unlink(ca_pem);
    unlink(cert_pem);
    unlink(key_pem);
    unlink(other_pem);
    rmdir(dir);
    return 0;
}

static void test_protocols_syntax(void **state)
{
    static const struct {
        const char *spec;
        int min, max;                   /* 0: refused */
    } cases[] = {
        {"", TLS1_2_VERSION, TLS1_3_VERSION},
        {">=TLSv1.2", TLS1_2_VERSION, TLS1_3_VERSION},
        {"!SSLv2, !SSLv3", TLS1_VERSION, TLS1_3_VERSION},
        {"!SSLv2:!SSLv3:!TLSv1:!TLSv1.1", TLS1_2_VERSION, TLS1_3_VERSION},
        {"<=TLSv1.2", SSL3_VERSION, TLS1_2_VERSION},
        {">=TLSv1.1 <=TLSv1.2", TLS1_1_VERSION, TLS1_2_VERSION},
        {"TLSv1.3", TLS1_3_VERSION, TLS1_3_VERSION},
        {"TLSv1.2 TLSv1.3 !TLSv1.3", TLS1_2_VERSION, TLS1_2_VERSION},
        {"!TLSv1.4", 0, 0},
        {">=TLSv1.3 <=TLSv1.2", 0, 0},
        {"SSLv2", 0, 0},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct strbuf why;
        int minv = -1, maxv = -1, r;

        strbuf_init(&why, 64, 4096);
        r = tls_protocols_parse(cases[i].spec, &minv, &maxv, &why);
        if (cases[i].min == 0) {
            if (r == 0)
                fail_msg("\"%s\" accepted", cases[i].spec);
            if (why.len == 0)
                fail_msg("\"%s\": no reason", cases[i].spec);
        } else if (r != 0 || minv != cases[i].min || maxv != cases[i].max) {
            fail_msg("\"%s\": got %d %x..%x (%s)", cases[i].spec, r, minv, maxv, why.data);
        }
        strbuf_release(&why);
    }
}

static void test_contexts_refuse_bad_settings(void **state)
{
    struct tls_ctx_opts o = {.server = 1, .cert_file = cert_pem, .key_file = key_pem};
    struct strbuf why;
    struct tls_ctx *c;

    strbuf_init(&why, 64, 4096);
    assert_non_null(c = tls_ctx_create(&o, &why));
    tls_ctx_free(&c);
    o.key_file = ca_pem;                /* no key there */
    assert_null(tls_ctx_create(&o, &why));
    assert_non_null(strstr(why.data, "private key"));
    strbuf_reset(&why);
    o.key_file = key_pem;
    o.cert_file = "/nonexistent/cert.pem";
    assert_null(tls_ctx_create(&o, &why));
    assert_non_null(strstr(why.data, "/nonexistent/cert.pem"));
    strbuf_reset(&why);
    o.cert_file = "";
    assert_null(tls_ctx_create(&o, &why));
    strbuf_reset(&why);
    o.cert_file = cert_pem;
    o.cipher_grade = "super";
    assert_null(tls_ctx_create(&o, &why));
    assert_non_null(strstr(why.data, "cipher grade"));
    strbuf_release(&why);
}

/* The server side: handshake, then echo one line with a prefix, then close. */
static void serve(int fd, const char *cert, int answer)
{
    struct tls_ctx_opts o = {.server = 1, .cert_file = cert, .key_file = key_pem};
    struct strbuf why;
    struct tls_ctx *ctx;
    struct stream *s;
    const char *line;
    enum stream_eol eol;
    ssize_t n;

    strbuf_init(&why, 64, 4096);
    if (!answer) {
        sleep(3);
        _exit(0);
    }
    if ((ctx = tls_ctx_create(&o, &why)) == NULL)
        _exit(2);
    s = stream_fdopen(fd, 0);
    stream_set_timeout(s, 5000);
    if (tls_server_start(ctx, s, 5000, &why) == NULL)
        _exit(3);
    if ((n = stream_read_line(s, &line, 1000, &eol)) < 0)
        _exit(4);
    stream_printf(s, "echo %.*s\r\n", (int) n, line);
    if (stream_flush(s) < 0)
        _exit(5);
    stream_close(&s);
    tls_ctx_free(&ctx);
    _exit(0);
}

struct client_result {
    int ok;
    char line[128], protocol[32], subject[128];
    int verified, matches_mx, matches_relay, matches_other, bits;
};

static void run_pair(const char *server_cert, const char *ca, int answer,
                     struct client_result *res, struct strbuf *why)
{
    struct tls_ctx_opts o = {.server = 0, .ca_file = ca};
    struct tls_ctx *ctx;
    struct tls_conn *c;
    struct stream *s;
    const char *line;
    enum stream_eol eol;
    int sv[2], status;
    pid_t pid;
    ssize_t n;

    memset(res, 0, sizeof(*res));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if ((pid = fork()) == 0) {
        close(sv[0]);
        serve(sv[1], server_cert, answer);
    }
    close(sv[1]);
    assert_non_null(ctx = tls_ctx_create(&o, why));
    s = stream_fdopen(sv[0], 0);
    stream_set_timeout(s, 5000);
    if ((c = tls_client_start(ctx, s, "mx.example.test", answer ? 5000 : 500, why)) != NULL) {
        res->ok = 1;
        snprintf(res->protocol, sizeof(res->protocol), "%s", tls_conn_protocol(c));
        snprintf(res->subject, sizeof(res->subject), "%s", tls_conn_peer_subject(c));
        res->verified = tls_conn_peer_verified(c);
        res->matches_mx = tls_conn_peer_matches(c, "mx.example.test");
        res->matches_relay = tls_conn_peer_matches(c, "a.relay.example.test");
        res->matches_other = tls_conn_peer_matches(c, "example.test");
        res->bits = tls_conn_cipher_bits(c, NULL);
        stream_printf(s, "hello over tls\r\n");
        if (stream_flush(s) == 0 && (n = stream_read_line(s, &line, 1000, &eol)) >= 0)
            snprintf(res->line, sizeof(res->line), "%.*s", (int) n, line);
    }
    stream_close(&s);
    tls_ctx_free(&ctx);
    if (!answer)
        kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (answer && res->ok)
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_handshake_verified(void **state)
{
    struct client_result r;
    struct strbuf why;

    strbuf_init(&why, 64, 4096);
    run_pair(cert_pem, ca_pem, 1, &r, &why);
    if (!r.ok)
        fail_msg("handshake: %s", why.data);
    assert_string_equal(r.line, "echo hello over tls");
    assert_string_equal(r.protocol, "TLSv1.3");
    assert_string_equal(r.subject, "mx.example.test");
    assert_true(r.verified);
    assert_true(r.matches_mx);
    assert_true(r.matches_relay);
    assert_false(r.matches_other);
    assert_true(r.bits >= 128);
    strbuf_release(&why);
}

static void test_handshake_unverified(void **state)
{
    struct client_result r;
    struct strbuf why;

    strbuf_init(&why, 64, 4096);
    /* Without the CA the chain does not verify, yet the session works. */
    run_pair(cert_pem, other_pem, 1, &r, &why);
    assert_true(r.ok);
    assert_false(r.verified);
    assert_true(r.matches_mx);
    assert_string_equal(r.line, "echo hello over tls");
    strbuf_release(&why);
}

static void test_handshake_timeout(void **state)
{
    struct client_result r;
    struct strbuf why;

    strbuf_init(&why, 64, 4096);
    run_pair(cert_pem, ca_pem, 0, &r, &why);
    assert_false(r.ok);
    assert_string_equal(why.data, "timeout");
    strbuf_release(&why);
}

/* The client side for the server tests: handshake (with a certificate when
 * cert is given), send one line, wait for the server to close. */
static void connect_as_client(int fd, const char *cert)
{
    struct tls_ctx_opts o = {.server = 0, .cert_file = cert, .key_file = cert ? key_pem : NULL};
    struct strbuf why;
    struct tls_ctx *ctx;
    struct stream *s;
    const char *line;
    enum stream_eol eol;

    strbuf_init(&why, 64, 4096);
    if ((ctx = tls_ctx_create(&o, &why)) == NULL)
        _exit(2);
    s = stream_fdopen(fd, 0);
    stream_set_timeout(s, 5000);
    if (tls_client_start(ctx, s, "mx.example.test", 5000, &why) == NULL)
        _exit(3);
    stream_printf(s, "hello\r\n");
    if (stream_flush(s) < 0)
        _exit(4);
    (void) stream_read_line(s, &line, 100, &eol);
    stream_close(&s);
    tls_ctx_free(&ctx);
    _exit(0);
}

/* Server with ask_ccert: returns present + 2 * verified, or -1. */
static int server_sees_client_cert(const char *client_cert, const char *ca, char *subject,
                                   size_t len)
{
    struct tls_ctx_opts o = {.server = 1, .cert_file = cert_pem, .key_file = key_pem,
        .ca_file = ca, .ask_ccert = 1, .verify_depth = 5};
    struct strbuf why;
    struct tls_ctx *ctx;
    struct tls_conn *c;
    struct stream *s;
    const char *line;
    enum stream_eol eol;
    int sv[2], status, ret = -1;
    pid_t pid;

    strbuf_init(&why, 64, 4096);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if ((pid = fork()) == 0) {
        close(sv[0]);
        connect_as_client(sv[1], client_cert);
    }
    close(sv[1]);
    assert_non_null(ctx = tls_ctx_create(&o, &why));
    s = stream_fdopen(sv[0], 0);
    stream_set_timeout(s, 5000);
    if ((c = tls_server_start(ctx, s, 5000, &why)) != NULL) {
        ret = tls_conn_peer_cert(c) + 2 * tls_conn_peer_verified(c);
        snprintf(subject, len, "%s", tls_conn_peer_subject(c));
        assert_true(stream_read_line(s, &line, 100, &eol) == 5);
    }
    stream_close(&s);
    tls_ctx_free(&ctx);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 0);
    strbuf_release(&why);
    return ret;
}

static void test_server_asks_for_client_certificate(void **state)
{
    char subject[128];

    /* Verified against the CA file; not verified without the CA, yet admitted;
     * a client without a certificate is admitted too. */
    assert_int_equal(server_sees_client_cert(cert_pem, ca_pem, subject, sizeof(subject)), 3);
    assert_string_equal(subject, "mx.example.test");
    assert_int_equal(server_sees_client_cert(cert_pem, other_pem, subject, sizeof(subject)), 1);
    assert_int_equal(server_sees_client_cert(NULL, ca_pem, subject, sizeof(subject)), 0);
    assert_string_equal(subject, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocols_syntax),
        cmocka_unit_test(test_contexts_refuse_bad_settings),
        cmocka_unit_test(test_handshake_verified),
        cmocka_unit_test(test_handshake_unverified),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_server_asks_for_client_certificate),
    };

    return cmocka_run_group_tests(tests, setup_certs, teardown_certs);
}
