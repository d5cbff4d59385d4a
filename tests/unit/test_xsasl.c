/*
 * test_xsasl.c - the SASL layer over the real Cyrus library: security option
 * parsing, the mechanisms a server offers under its options, PLAIN with right
 * and wrong passwords, malformed base64, and whole CRAM-MD5 and LOGIN
 * exchanges between an xsasl client and an xsasl server in one process.
 * The user database is a sasldb made by saslpasswd2 (sasl2-bin) in a fresh
 * directory; the tests are skipped when saslpasswd2 is not installed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <sasl/saslutil.h>

#include "strbuf.h"
#include "xsasl.h"

#define HOST "mx.unit.test"

static char test_dir[] = "/tmp/petrel-xsasl-XXXXXX";
static int test_ready;

static int setup(void **state)
{
    char cmd[512], path[256];
    FILE *f;

    (void) state;
    if (access("/usr/sbin/saslpasswd2", X_OK) != 0 || mkdtemp(test_dir) == NULL)
        return 0;
    snprintf(cmd, sizeof(cmd), "echo -n 'open sesame' | /usr/sbin/saslpasswd2 -c -p -f "
             "%s/sasldb2 -u %s alice", test_dir, HOST);
    if (system(cmd) != 0)
        return 0;
    snprintf(path, sizeof(path), "%s/petrel-unit.conf", test_dir);
    if ((f = fopen(path, "w")) == NULL)
        return 0;
    fprintf(f, "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s/sasldb2\n"
            "mech_list: PLAIN LOGIN CRAM-MD5\n", test_dir);
    fclose(f);
    test_ready = 1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];

    (void) state;
    if (test_dir[sizeof(test_dir) - 7] != 'X') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

static void need_cyrus(void)
{
    static int inited;
    struct strbuf err;

    if (!test_ready)
        skip();
    if (inited)
        return;
    strbuf_init(&err, 64, 1024);
    assert_int_equal(xsasl_server_init("petrel-unit", test_dir, &err), 0);
    assert_int_equal(xsasl_client_init(test_dir, &err), 0);
    strbuf_release(&err);
    inited = 1;
}

static struct xsasl_server *server(const char *security)
{
    struct xsasl_server_args a = {"smtp", HOST, NULL, "127.0.0.1", 25, "127.0.0.1", 40000,
                                  security};
    struct strbuf err;
    struct xsasl_server *srv;

    strbuf_init(&err, 64, 1024);
    srv = xsasl_server_create(&a, &err);
    assert_non_null(srv);
    strbuf_release(&err);
    return srv;
}

static const char *b64(const char *data, unsigned len)
{
    static char out[512];
    unsigned n;

    assert_int_equal(sasl_encode64(data, len, out, sizeof(out), &n), SASL_OK);
    return out;
}

/* base64 of a string literal, NULs included */
#define B64(lit) b64((lit), sizeof(lit) - 1)

static void test_security_options(void **state)
{
    struct strbuf err;
    unsigned flags;

    (void) state;
    strbuf_init(&err, 64, 1024);
    assert_int_equal(xsasl_security_parse("", &flags, &err), 0);
    assert_int_equal(flags, 0);
    assert_int_equal(xsasl_security_parse("noanonymous, noplaintext", &flags, &err), 0);
    assert_int_equal(flags, SASL_SEC_NOANONYMOUS | SASL_SEC_NOPLAINTEXT);
    assert_int_equal(xsasl_security_parse(" NoActive\tnodictionary,mutual_auth forward_secrecy",
                                          &flags, &err), 0);
    assert_int_equal(flags, SASL_SEC_NOACTIVE | SASL_SEC_NODICTIONARY | SASL_SEC_MUTUAL_AUTH
                     | SASL_SEC_FORWARD_SECRECY);
    assert_int_equal(xsasl_security_parse("noanonymous, nosuch", &flags, &err), -1);
    assert_string_equal(err.data, "unknown SASL security option \"nosuch\"");
    strbuf_release(&err);
}

static void test_mechanisms(void **state)
{
    struct xsasl_server *srv;

    (void) state;
    need_cyrus();
    srv = server("noanonymous");
    assert_non_null(strstr(xsasl_server_mechanisms(srv), "PLAIN"));
    assert_non_null(strstr(xsasl_server_mechanisms(srv), "LOGIN"));
    assert_non_null(strstr(xsasl_server_mechanisms(srv), "CRAM-MD5"));
    assert_int_equal(xsasl_server_offers(srv, "plain"), 1);
    assert_int_equal(xsasl_server_offers(srv, "PLAI"), 0);
    assert_int_equal(xsasl_server_offers(srv, "ANONYMOUS"), 0);
    xsasl_server_free(&srv);
    assert_null(srv);
    srv = server("noanonymous, noplaintext");
    assert_string_equal(xsasl_server_mechanisms(srv), "CRAM-MD5");
    assert_int_equal(xsasl_server_offers(srv, "PLAIN"), 0);
    xsasl_server_free(&srv);
}

static void test_plain(void **state)
{
    struct xsasl_server *srv;
    struct strbuf reply;

    (void) state;
    need_cyrus();
    strbuf_init(&reply, 64, XSASL_TEXT_MAX + 1);
    srv = server("noanonymous");
    assert_int_equal(xsasl_server_first(srv, "PLAIN", B64("\0alice\0open sesame"), &reply),
                     XSASL_DONE);
    assert_string_equal(xsasl_server_username(srv), "alice");
    xsasl_server_free(&srv);

    srv = server("noanonymous");
    assert_int_equal(xsasl_server_first(srv, "PLAIN", B64("\0alice\0open says me"), &reply),
                     XSASL_FAIL);
    assert_string_equal(reply.data, "authentication failure");
    xsasl_server_free(&srv);

    /* An unknown user reads like a wrong password. */
    srv = server("noanonymous");
    assert_int_equal(xsasl_server_first(srv, "PLAIN", B64("\0mallory\0x"), &reply),
                     XSASL_FAIL);
    assert_string_equal(reply.data, "authentication failure");
    xsasl_server_free(&srv);

    /* No initial response: an empty challenge, then the response. */
    srv = server("noanonymous");
    assert_int_equal(xsasl_server_first(srv, "PLAIN", NULL, &reply), XSASL_MORE);
    assert_string_equal(reply.data, "");
    assert_int_equal(xsasl_server_next(srv, B64("\0alice\0open sesame"), &reply),
                     XSASL_DONE);
    xsasl_server_free(&srv);

    srv = server("noanonymous");
    assert_int_equal(xsasl_server_first(srv, "PLAIN", "not*base64", &reply), XSASL_FORM);
    xsasl_server_free(&srv);
    srv = server("noanonymous");
    assert_int_equal(xsasl_server_first(srv, "PLAIN", NULL, &reply), XSASL_MORE);
    assert_int_equal(xsasl_server_next(srv, "@@@@", &reply), XSASL_FORM);
    xsasl_server_free(&srv);
    strbuf_release(&reply);
}

/* A whole exchange between the two sides; returns the server's last status. */
static enum xsasl_status exchange(const char *client_mechs, const char *password,
                                  const char **mech_used)
{
    struct xsasl_server *srv = server("noanonymous");
    struct xsasl_client *cl;
    struct strbuf to_server, to_client, err;
    enum xsasl_status st;
    int steps = 0;

    strbuf_init(&to_server, 64, XSASL_TEXT_MAX + 1);
    strbuf_init(&to_client, 64, XSASL_TEXT_MAX + 1);
    strbuf_init(&err, 64, 1024);
    cl = xsasl_client_create("smtp", HOST, "noanonymous", "alice", password, &err);
    assert_non_null(cl);
    assert_int_equal(xsasl_client_first(cl, client_mechs, mech_used, &to_server), XSASL_DONE);
    st = xsasl_server_first(srv, *mech_used, to_server.len ? to_server.data : NULL,
                            &to_client);
    while (st == XSASL_MORE && steps++ < 10) {
        assert_int_equal(xsasl_client_next(cl, to_client.data, &to_server), XSASL_DONE);
        st = xsasl_server_next(srv, to_server.data, &to_client);
    }
    if (st == XSASL_DONE)
        assert_string_equal(xsasl_server_username(srv), "alice");
    xsasl_client_free(&cl);
    xsasl_server_free(&srv);
    strbuf_release(&to_server);
    strbuf_release(&to_client);
    strbuf_release(&err);
    return st;
}

static void test_client_server(void **state)
{
    const char *mech;

    (void) state;
    need_cyrus();
    assert_int_equal(exchange("CRAM-MD5", "open sesame", &mech), XSASL_DONE);
    assert_string_equal(mech, "CRAM-MD5");
    assert_int_equal(exchange("CRAM-MD5", "wrong", &mech), XSASL_FAIL);
    assert_int_equal(exchange("LOGIN", "open sesame", &mech), XSASL_DONE);
    assert_string_equal(mech, "LOGIN");
    assert_int_equal(exchange("PLAIN", "open sesame", &mech), XSASL_DONE);
    assert_string_equal(mech, "PLAIN");
}

static void test_client_errors(void **state)
{
    struct xsasl_client *cl;
    struct strbuf out, err;
    const char *mech;

    (void) state;
    need_cyrus();
    strbuf_init(&out, 64, XSASL_TEXT_MAX + 1);
    strbuf_init(&err, 64, 1024);
    /* noplaintext leaves nothing of "PLAIN LOGIN" that the library may use. */
    cl = xsasl_client_create("smtp", HOST, "noplaintext", "alice", "pw", &err);
    assert_non_null(cl);
    assert_int_equal(xsasl_client_first(cl, "PLAIN LOGIN", &mech, &out), XSASL_FAIL);
    assert_true(out.len > 0);
    xsasl_client_free(&cl);
    cl = xsasl_client_create("smtp", HOST, "noanonymous", "alice", "pw", &err);
    assert_int_equal(xsasl_client_first(cl, "CRAM-MD5", &mech, &out), XSASL_DONE);
    assert_int_equal(xsasl_client_next(cl, "%%%", &out), XSASL_FORM);
    xsasl_client_free(&cl);
    assert_null(xsasl_client_create("smtp", HOST, "bogus", "alice", "pw", &err));
    strbuf_release(&out);
    strbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_security_options),
        cmocka_unit_test(test_mechanisms),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_client_server),
        cmocka_unit_test(test_client_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
