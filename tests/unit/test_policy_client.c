/*
 * test_policy_client.c - the SMTPD policy protocol client: the reply parser
 * (complete, split at every byte, CRLF, ignored attributes, every malformed
 * form, the size limits and limit+1), service specifications with and
 * without braces, and requests against a server in a child process on a
 * UNIX-domain socket: the exact request bytes, control bytes in values,
 * connection reuse, request_limit, max_idle (with a test clock), a server
 * that closes between requests, extra bytes after a reply, a silent server
 * (timeout) and a refused connection (try_limit, default action).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "params.h"
#include "policy_client.h"
#include "strbuf.h"

/*
 * The reply parser.
 */

static const struct {
    const char *in;
    int want;                   /* 1 complete, 0 more, -1 malformed */
    const char *action;
    size_t used;
} parse_cases[] = {
    {"action=OK\n\n", 1, "OK", 11},
    {"action=REJECT no way\n\n", 1, "REJECT no way", 22},
    {"action=DUNNO\r\n\r\n", 1, "DUNNO", 16},
    {"foo=bar\naction=OK\nbaz=\n\n", 1, "OK", 24},
    {"ACTION=HOLD\n\n", 1, "HOLD", 13},
    {"action=a=b=c\n\nmore", 1, "a=b=c", 14},
    {"", 0, "", 0},
    {"action=OK", 0, "", 0},
    {"action=OK\n", 0, "", 0},
    {"action=OK\r\n\r", 0, "", 0},
    {"\n", -1, NULL, 0},
    {"foo=bar\n\n", -1, NULL, 0},
    {"action\n\n", -1, NULL, 0},
    {"=OK\n\n", -1, NULL, 0},
    {"action=\n\n", -1, NULL, 0},
    {"action=OK\naction=REJECT\n\n", -1, NULL, 0},
    {"garbage\n", -1, NULL, 0},
};

static void test_parse_table(void **unused)
{
    struct strbuf action, why;
    size_t i, used;
    int r;

    (void) unused;
    strbuf_init(&action, 64, POLICY_ACTION_MAX + 1);
    strbuf_init(&why, 64, 4096);
    for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        r = policy_reply_parse(parse_cases[i].in, strlen(parse_cases[i].in), &used, &action,
                               &why);
        if (r != parse_cases[i].want)
            fail_msg("case %zu \"%s\": got %d (%s), want %d", i, parse_cases[i].in, r, why.data,
                     parse_cases[i].want);
        if (r == 1) {
            assert_string_equal(action.data, parse_cases[i].action);
            assert_int_equal(used, parse_cases[i].used);
        }
        if (r < 0)
            assert_true(why.len > 0);
    }
    strbuf_release(&action);
    strbuf_release(&why);
}

/* A reply is incomplete at every shorter prefix and complete at its full length. */
static void test_parse_every_split(void **unused)
{
    const char *in = "x=1\r\naction=DEFER_IF_PERMIT try later\r\ny=2\n\n";
    struct strbuf action, why;
    size_t n, used, len = strlen(in);

    (void) unused;
    strbuf_init(&action, 64, POLICY_ACTION_MAX + 1);
    strbuf_init(&why, 64, 4096);
    for (n = 0; n < len; n++)
        if (policy_reply_parse(in, n, &used, &action, &why) != 0)
            fail_msg("prefix of %zu bytes: not \"need more\" (%s)", n, why.data);
    assert_int_equal(policy_reply_parse(in, len, &used, &action, &why), 1);
    assert_string_equal(action.data, "DEFER_IF_PERMIT try later");
    assert_int_equal(used, len);
    strbuf_release(&action);
    strbuf_release(&why);
}

static void test_parse_nul_and_limits(void **unused)
{
    struct strbuf action, why;
    char *buf = malloc(POLICY_REPLY_MAX + 16);
    size_t used, n;

    (void) unused;
    strbuf_init(&action, 64, POLICY_ACTION_MAX + 1);
    strbuf_init(&why, 64, 4096);
    assert_int_equal(policy_reply_parse("action=O\0K\n\n", 12, &used, &action, &why), -1);
    assert_non_null(strstr(why.data, "NUL"));

    /* An action of exactly POLICY_ACTION_MAX bytes, and one byte more. */
    memcpy(buf, "action=", 7);
    memset(buf + 7, 'a', POLICY_ACTION_MAX);
    memcpy(buf + 7 + POLICY_ACTION_MAX, "\n\n", 2);
    n = 7 + POLICY_ACTION_MAX + 2;
    assert_int_equal(policy_reply_parse(buf, n, &used, &action, &why), 1);
    assert_int_equal(action.len, POLICY_ACTION_MAX);
    memset(buf + 7, 'a', POLICY_ACTION_MAX + 1);
    memcpy(buf + 8 + POLICY_ACTION_MAX, "\n\n", 2);
    assert_int_equal(policy_reply_parse(buf, n + 1, &used, &action, &why), -1);

    /* Ignored attributes up to the reply limit: one byte short, then the limit. */
    memset(buf, 'x', POLICY_REPLY_MAX);
    buf[0] = 'y';
    buf[1] = '=';
    assert_int_equal(policy_reply_parse(buf, POLICY_REPLY_MAX - 1, &used, &action, &why), 0);
    assert_int_equal(policy_reply_parse(buf, POLICY_REPLY_MAX, &used, &action, &why), -1);
    free(buf);
    strbuf_release(&action);
    strbuf_release(&why);
}

/*
 * Specifications.
 */

static void test_open_specs(void **unused)
{
    static const struct {
        const char *spec;
        int ok;
        const char *endpoint, *def, *ctx;
    } cases[] = {
        {"inet:127.0.0.1:9998", 1, "inet:127.0.0.1:9998", "451 4.3.5 Server configuration "
         "problem", ""},
        {"inet:[::1]:10023", 1, "inet:[::1]:10023", NULL, ""},
        {"unix:private/policy", 1, "unix:private/policy", NULL, ""},
        {"{ inet:localhost:9998, timeout=10s, default_action=DUNNO }", 1,
         "inet:localhost:9998", "DUNNO", ""},
        {"{unix:/run/p, {default_action = 450 4.7.1 Try later}, policy_context=x,"
         " max_idle=5s, max_ttl=1m, request_limit=3, try_limit=1, retry_delay=2s}", 1,
         "unix:/run/p", "450 4.7.1 Try later", "x"},
        {"tcp:127.0.0.1:1", 0, NULL, NULL, NULL},
        {"inet:127.0.0.1", 0, NULL, NULL, NULL},
        {"inet:127.0.0.1:", 0, NULL, NULL, NULL},
        {"inet:[::1:5", 0, NULL, NULL, NULL},
        {"unix:", 0, NULL, NULL, NULL},
        {"{ inet:h:1, timeout=0 }", 0, NULL, NULL, NULL},
        {"{ inet:h:1, try_limit=0 }", 0, NULL, NULL, NULL},
        {"{ inet:h:1, request_limit=-1 }", 0, NULL, NULL, NULL},
        {"{ inet:h:1, colour=red }", 0, NULL, NULL, NULL},
        {"{ inet:h:1, default_action= }", 0, NULL, NULL, NULL},
        {"{ inet:h:1, timeout }", 0, NULL, NULL, NULL},
        {"{ inet:h:1", 0, NULL, NULL, NULL},
        {"{ }", 0, NULL, NULL, NULL},
    };
    struct policy_client *pc;
    struct strbuf err;
    size_t i;

    (void) unused;
    strbuf_init(&err, 64, 4096);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strbuf_reset(&err);
        pc = policy_client_open(cases[i].spec, &err);
        if ((pc != NULL) != cases[i].ok)
            fail_msg("\"%s\": got %s (%s)", cases[i].spec, pc ? "ok" : "error", err.data);
        if (pc == NULL) {
            assert_true(err.len > 0);
            continue;
        }
        assert_string_equal(policy_client_endpoint(pc), cases[i].endpoint);
        if (cases[i].def)
            assert_string_equal(policy_client_default_action(pc), cases[i].def);
        assert_string_equal(policy_client_context(pc), cases[i].ctx);
        policy_client_free(&pc);
        assert_null(pc);
    }
    policy_client_free(&pc);
    strbuf_release(&err);
}

/*
 * Requests against a scripted server in a child process. The child accepts
 * connections one at a time; for each request (bytes up to "\n\n") it writes
 * "<connection number> <length>\n<bytes>" to the report pipe and then acts
 * on the next letter of its script: 'o' answers action=OK, 'c' answers and
 * closes, 'x' answers with a second reply behind the first, 's' says nothing
 * and waits for the client to close.
 */

struct server {
    pid_t pid;
    int report;                 /* read end */
    char path[108];
    char dir[64];
};

static void server_child(int lfd, int report, const char *script)
{
    int conn = 0, fd;
    char buf[8192];
    size_t len;
    ssize_t n;
    struct pollfd p;

    alarm(20);
    while (*script) {
        p.fd = lfd;
        p.events = POLLIN;
        if (poll(&p, 1, 10000) <= 0 || (fd = accept(lfd, NULL, NULL)) < 0)
            _exit(1);
        conn++;
        len = 0;
        while (*script) {
            char *end;

            while ((end = memmem(buf, len, "\n\n", 2)) == NULL) {
                if (len == sizeof(buf) || (n = read(fd, buf + len, sizeof(buf) - len)) <= 0)
                    goto next_conn;
                len += (size_t) n;
            }
            {
                size_t req = (size_t) (end - buf) + 2;
                char head[64];
                int h = snprintf(head, sizeof(head), "%d %zu\n", conn, req);

                if (write(report, head, (size_t) h) != h || write(report, buf, req) != (ssize_t) req)
                    _exit(1);
                memmove(buf, buf + req, len - req);
                len -= req;
            }
            switch (*script++) {
            case 'o':
                if (write(fd, "action=OK\n\n", 11) != 11)
                    _exit(1);
                break;
            case 'c':
                if (write(fd, "action=OK\n\n", 11) != 11)
                    _exit(1);
                goto next_conn;
            case 'x':
                if (write(fd, "action=OK\n\naction=REJECT\n\n", 26) != 26)
                    _exit(1);
                break;
            case 's':
                while (read(fd, buf, sizeof(buf)) > 0)
                    ;
                goto next_conn;
            }
        }
      next_conn:
        close(fd);
    }
    _exit(0);
}

static void server_start(struct server *srv, const char *script)
{
    struct sockaddr_un sun;
    int lfd, pfd[2];

    strcpy(srv->dir, "/tmp/test_policy.XXXXXX");
    assert_non_null(mkdtemp(srv->dir));
    snprintf(srv->path, sizeof(srv->path), "%s/s", srv->dir);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, srv->path);
    assert_true((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *) &sun, sizeof(sun)), 0);
    assert_int_equal(listen(lfd, 8), 0);
    assert_int_equal(pipe(pfd), 0);
    if ((srv->pid = fork()) == 0) {
        close(pfd[0]);
        server_child(lfd, pfd[1], script);
    }
    assert_true(srv->pid > 0);
    close(lfd);
    close(pfd[1]);
    srv->report = pfd[0];
}

/* Everything the server reported, after the client is gone. */
static char *server_finish(struct server *srv, int *status)
{
    size_t cap = 65536, len = 0;
    char *out = malloc(cap + 1);
    ssize_t n;

    while (len < cap && (n = read(srv->report, out + len, cap - len)) > 0)
        len += (size_t) n;
    out[len] = 0;
    close(srv->report);
    assert_int_equal(waitpid(srv->pid, status, 0), srv->pid);
    unlink(srv->path);
    rmdir(srv->dir);
    return out;
}

static struct policy_client *client_for(const struct server *srv, const char *settings)
{
    char spec[512];
    struct strbuf err;
    struct policy_client *pc;

    snprintf(spec, sizeof(spec), "{ unix:%s, try_limit=1, timeout=2s%s }", srv->path, settings);
    strbuf_init(&err, 64, 4096);
    pc = policy_client_open(spec, &err);
    if (pc == NULL)
        fail_msg("open %s: %s", spec, err.data);
    strbuf_release(&err);
    return pc;
}

static int ask(struct policy_client *pc, const char *recipient, struct strbuf *action,
               struct strbuf *why)
{
    const struct policy_attr attrs[] = {
        {"request", "smtpd_access_policy"},
        {"recipient", recipient},
        {"sender", NULL},
    };

    return policy_client_request(pc, attrs, 3, action, why);
}

static void test_request_bytes_and_reuse(void **unused)
{
    struct server srv;
    struct policy_client *pc;
    struct strbuf action, why;
    char *got;
    int status;

    (void) unused;
    server_start(&srv, "ooo");
    pc = client_for(&srv, "");
    strbuf_init(&action, 64, POLICY_ACTION_MAX + 1);
    strbuf_init(&why, 64, 4096);
    assert_int_equal(ask(pc, "a@example.com", &action, &why), 0);
    assert_string_equal(action.data, "OK");
    assert_int_equal(ask(pc, "b\r\nrecipient=evil@x\n\n", &action, &why), 0);
    assert_int_equal(ask(pc, "c@example.com", &action, &why), 0);
    policy_client_free(&pc);
    got = server_finish(&srv, &status);
    assert_string_equal(got,
                        "1 61\nrequest=smtpd_access_policy\nrecipient=a@example.com\nsender=\n\n"
                        "1 69\nrequest=smtpd_access_policy\nrecipient=b??recipient=evil@x??\n"
                        "sender=\n\n"
                        "1 61\nrequest=smtpd_access_policy\nrecipient=c@example.com\nsender=\n\n");
    assert_int_equal(status, 0);
    free(got);
    strbuf_release(&action);
    strbuf_release(&why);
}

static void test_request_limit(void **unused)
{
    struct server srv;
    struct policy_client *pc;
    struct strbuf action, why;
    char *got;
    int status;

    (void) unused;
    server_start(&srv, "ooo");
    pc = client_for(&srv, ", request_limit=2");
    strbuf_init(&action, 64, POLICY_ACTION_MAX + 1);
    strbuf_init(&why, 64, 4096);
    assert_int_equal(ask(pc, "a", &action, &why), 0);
    assert_int_equal(ask(pc, "b", &action, &why), 0);
    assert_int_equal(ask(pc, "c", &action, &why), 0);
    policy_client_free(&pc);
    got = server_finish(&srv, &status);
    assert_non_null(strstr(got, "recipient=b"));
    assert_non_null(strstr(got, "\n\n2 "));            /* third request: connection 2 */
    assert_null(strstr(strstr(got, "recipient=b"), "\n\n1 "));
    free(got);
    strbuf_release(&action);
    strbuf_release(&why);
}

static time_t fake_now;

static time_t fake_clock(void)
{
    return fake_now;
}

static void test_max_idle_and_ttl(void **unused)
{
    struct server srv;
    struct policy_client *pc;
    struct strbuf action, why;
    char *got;
    int status;

    (void) unused;
    fake_now = 1000;
    policy_client_set_clock(fake_clock);
    server_start(&srv, "oooo");
    pc = client_for(&srv, ", max_idle=10s, max_ttl=25s");
    strbuf_init(&action, 64, POLICY_ACTION_MAX + 1);
    strbuf_init(&why, 64, 4096);
    assert_int_equal(ask(pc, "a", &action, &why), 0);      /* conn 1 at 1000 */
    fake_now += 9;
    assert_int_equal(ask(pc, "b", &action, &why), 0);      /* idle 9s: conn 1 */
    fake_now += 10;
    assert_int_equal(ask(pc, "c", &action, &why), 0);      /* idle 10s: conn 2 at 1019 */
    fake_now += 9;
    assert_int_equal(ask(pc, "d", &action, &why), 0);      /* idle 9s, age 9s: conn 2 */
    policy_client_free(&pc);
    policy_client_set_clock(NULL);
    got = server_finish(&srv, &status);
    assert_non_null(strstr(got, "1 49\nrequest=smtpd_access_policy\nrecipient=b\n"));
    assert_non_null(strstr(got, "2 49\nrequest=smtpd_access_policy\nrecipient=c\n"));
    assert_non_null(strstr(got, "2 49\nrequest=smtpd_access_policy\nrecipient=d\n"));
    free(got);

    /* max_ttl: a busy connection is still replaced when it gets old. */
    fake_now = 1000;
    policy_client_set_clock(fake_clock);
    server_start(&srv, "ooo");
    pc = client_for(&srv, ", max_idle=10s, max_ttl=15s");
    assert_int_equal(ask(pc, "a", &action, &why), 0);
    fake_now += 8;
    assert_int_equal(ask(pc, "b", &action, &why), 0);
    fake_now += 8;
    assert_int_equal(ask(pc, "c", &action, &why), 0);      /* age 16s: conn 2 */
    policy_client_free(&pc);
    policy_client_set_clock(NULL);
    got = server_finish(&srv, &status);
    assert_non_null(strstr(got, "1 49\nrequest=smtpd_access_policy\nrecipient=b\n"));
    assert_non_null(strstr(got, "2 49\nrequest=smtpd_access_policy\nrecipient=c\n"));
    free(got);
    strbuf_release(&action);
    strbuf_release(&why);
}

/* A server that closed, or sent a second reply, is not asked over the old connection. */
static void test_closed_and_extra(void **unused)
{
    struct server srv;
    struct policy_client *pc;
    struct strbuf action, why;
    char *got;
    int status;

    (void) unused;
    server_start(&srv, "cxoo");
    pc = client_for(&srv, "");
    strbuf_init(&action, 64, POLICY_ACTION_MAX + 1);
    strbuf_init(&why, 64, 4096);
    assert_int_equal(ask(pc, "a", &action, &why), 0);
    assert_int_equal(ask(pc, "b", &action, &why), 0);      /* conn 1 was closed: conn 2 */
    assert_string_equal(action.data, "OK");
    assert_int_equal(ask(pc, "c", &action, &why), 0);      /* extra bytes: conn 3 */
    assert_string_equal(action.data, "OK");
    assert_int_equal(ask(pc, "d", &action, &why), 0);      /* conn 3 again */
    policy_client_free(&pc);
    got = server_finish(&srv, &status);
    assert_non_null(strstr(got, "1 49\nrequest=smtpd_access_policy\nrecipient=a\n"));
    assert_non_null(strstr(got, "2 49\nrequest=smtpd_access_policy\nrecipient=b\n"));
    assert_non_null(strstr(got, "3 49\nrequest=smtpd_access_policy\nrecipient=c\n"));
    assert_non_null(strstr(got, "3 49\nrequest=smtpd_access_policy\nrecipient=d\n"));
    free(got);
    strbuf_release(&action);
    strbuf_release(&why);
}

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_timeout_and_refused(void **unused)
{
    struct server srv;
    struct policy_client *pc;
    struct strbuf action, why, err;
    long long t0;
    char *got;
    int status;

    (void) unused;
    server_start(&srv, "so");
    pc = client_for(&srv, ", timeout=1s");
    strbuf_init(&action, 64, POLICY_ACTION_MAX + 1);
    strbuf_init(&why, 64, 4096);
    t0 = mono_ms();
    assert_int_equal(ask(pc, "a", &action, &why), -1);
    assert_true(mono_ms() - t0 >= 900 && mono_ms() - t0 < 3000);
    assert_string_equal(why.data, "read: timeout");
    assert_int_equal(action.len, 0);
    assert_int_equal(ask(pc, "b", &action, &why), 0);      /* a fresh connection */
    policy_client_free(&pc);
    got = server_finish(&srv, &status);
    assert_non_null(strstr(got, "2 49\nrequest=smtpd_access_policy\nrecipient=b\n"));
    free(got);

    /* Nothing listens: each of try_limit attempts fails, retry_delay apart. */
    strbuf_init(&err, 64, 4096);
    pc = policy_client_open("{ unix:/nonexistent/policy, try_limit=2, retry_delay=1s,"
                            " default_action=DUNNO }", &err);
    assert_non_null(pc);
    t0 = mono_ms();
    assert_int_equal(ask(pc, "a", &action, &why), -1);
    assert_true(mono_ms() - t0 >= 900);
    assert_string_equal(why.data, "connect: No such file or directory");
    assert_string_equal(policy_client_default_action(pc), "DUNNO");
    policy_client_free(&pc);
    strbuf_release(&err);
    strbuf_release(&action);
    strbuf_release(&why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_every_split),
        cmocka_unit_test(test_parse_nul_and_limits),
        cmocka_unit_test(test_open_specs),
        cmocka_unit_test(test_request_bytes_and_reuse),
        cmocka_unit_test(test_request_limit),
        cmocka_unit_test(test_max_idle_and_ttl),
        cmocka_unit_test(test_closed_and_extra),
        cmocka_unit_test(test_timeout_and_refused),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
