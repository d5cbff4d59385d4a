/*
 * fuzz_sasl.c - what a peer sends in SMTP AUTH, against the real parsers:
 * the AUTH command argument (smtp_cmd_parse_auth), then the lines of an
 * exchange given to a Cyrus SASL server (client responses) or to a Cyrus
 * SASL client (server challenges), base64 decoding included.
 * Byte 0 picks the side and the client's mechanism; the rest is lines split
 * at '\n'. The server's user database does not exist: every login fails,
 * which is the path an attacker can reach.
 * Invariants: a parsed mechanism is 1..SMTP_CMD_MECH_MAX of A-Z 0-9 - _; a
 * challenge or response produced is base64 text; a failure has a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msg.h"
#include "smtp_cmd.h"
#include "strbuf.h"
#include "xsasl.h"

static int fuzz_ready;

/* Cyrus SASL's LOGIN server plugin (liblogin.so) loses a small allocation of
 * its own on some malformed exchanges (found by this target, reported by LSan
 * with only the plugin on the stack). The memory is never handed to Petrel,
 * and a session's process ends after max_use sessions, so it is not this
 * target's finding. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:liblogin.so\n";
}

static void fuzz_init(void)
{
    static char dir[] = "/tmp/petrel-fuzz-sasl-XXXXXX";
    char path[sizeof(dir) + 32];
    struct strbuf err;
    FILE *f;

    msg_use_stderr(0);
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(path, sizeof(path), "%s/fuzz.conf", dir);
    if ((f = fopen(path, "w")) == NULL)
        abort();
    fprintf(f, "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
            "sasldb_path: %s/missing-sasldb2\nmech_list: PLAIN LOGIN CRAM-MD5\n", dir);
    fclose(f);
    strbuf_init(&err, 64, 1024);
    if (xsasl_server_init("fuzz", dir, &err) < 0 || xsasl_client_init(dir, &err) < 0)
        abort();
    strbuf_release(&err);
    fuzz_ready = 1;
}

static void fuzz_check_base64(const struct strbuf *b)
{
    size_t i;

    for (i = 0; i < b->len; i++) {
        char c = b->data[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '+' || c == '/' || c == '='))
            abort();
    }
}

/* The next line of data[*pos..size) as a NUL-terminated copy, or NULL. */
static char *fuzz_line(const uint8_t *data, size_t size, size_t *pos)
{
    const uint8_t *start = data + *pos, *nl;
    size_t n;
    char *line;

    if (*pos >= size)
        return NULL;
    nl = memchr(start, '\n', size - *pos);
    n = nl ? (size_t) (nl - start) : size - *pos;
    *pos += n + (nl != NULL);
    line = malloc(n + 1);
    memcpy(line, start, n);
    line[n] = '\0';
    return line;
}

static void fuzz_server(const uint8_t *data, size_t size, size_t pos)
{
    static const struct xsasl_server_args args = {
        "smtp", "mx.fuzz.test", NULL, "127.0.0.1", 25, "127.0.0.1", 4000, "noanonymous"};
    char mech[SMTP_CMD_MECH_MAX + 1], *line;
    struct strbuf init, reply, err;
    struct xsasl_server *srv;
    enum xsasl_status st;
    int have_init, rounds = 0;
    size_t i;

    if ((line = fuzz_line(data, size, &pos)) == NULL)
        return;
    strbuf_init(&init, 64, XSASL_TEXT_MAX);
    strbuf_init(&reply, 64, XSASL_TEXT_MAX + 1);
    strbuf_init(&err, 64, 1024);
    if (smtp_cmd_parse_auth(line, strlen(line), mech, &init, &have_init) < 0)
        goto done;
    if (strlen(mech) == 0 || strlen(mech) > SMTP_CMD_MECH_MAX)
        abort();
    for (i = 0; mech[i]; i++)
        if (!((mech[i] >= 'A' && mech[i] <= 'Z') || (mech[i] >= '0' && mech[i] <= '9')
              || mech[i] == '-' || mech[i] == '_'))
            abort();
    if ((srv = xsasl_server_create(&args, &err)) == NULL)
        abort();
    if (xsasl_server_offers(srv, mech)) {
        st = xsasl_server_first(srv, mech, have_init ? init.data : NULL, &reply);
        while (st == XSASL_MORE && rounds++ < 8) {
            char *resp;

            fuzz_check_base64(&reply);
            if ((resp = fuzz_line(data, size, &pos)) == NULL)
                break;
            st = xsasl_server_next(srv, resp, &reply);
            free(resp);
        }
        if ((st == XSASL_FAIL || st == XSASL_TEMP || st == XSASL_FORM) && reply.len == 0)
            abort();
        (void) xsasl_server_username(srv);
    }
    xsasl_server_free(&srv);
done:
    free(line);
    strbuf_release(&init);
    strbuf_release(&reply);
    strbuf_release(&err);
}

static void fuzz_client(const uint8_t *data, size_t size, size_t pos, int which)
{
    static const char *const mechs[] = {"CRAM-MD5", "LOGIN", "PLAIN", "CRAM-MD5 LOGIN PLAIN"};
    struct strbuf out, err;
    struct xsasl_client *cl;
    const char *mech;
    char *challenge;
    int rounds = 0;

    strbuf_init(&out, 64, XSASL_TEXT_MAX + 1);
    strbuf_init(&err, 64, 1024);
    if ((cl = xsasl_client_create("smtp", "mx.fuzz.test", "noanonymous", "user", "secret",
                                  &err)) == NULL)
        abort();
    if (xsasl_client_first(cl, mechs[which & 3], &mech, &out) == XSASL_DONE) {
        fuzz_check_base64(&out);
        while (rounds++ < 8 && (challenge = fuzz_line(data, size, &pos)) != NULL) {
            enum xsasl_status st = xsasl_client_next(cl, challenge, &out);

            free(challenge);
            if (st != XSASL_DONE) {
                if (out.len == 0)
                    abort();
                break;
            }
            fuzz_check_base64(&out);
        }
    }
    xsasl_client_free(&cl);
    strbuf_release(&out);
    strbuf_release(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_ready)
        fuzz_init();
    if (size < 1)
        return 0;
    if (data[0] & 0x80)
        fuzz_client(data, size, 1, data[0]);
    else
        fuzz_server(data, size, 1);
    return 0;
}
