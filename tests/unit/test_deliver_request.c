/*
 * test_deliver_request.c - the delivery protocol over real sockets: a request
 * built by the qmgr side arrives whole at the agent side with its queue file
 * descriptor; per-recipient status and done frames come back and decode;
 * truncated, oversized and inconsistent requests are refused; the delivery log
 * line has Postfix's shape and the delays= arithmetic; deliver_pass hands a
 * recipient to another transport and passes its outcome on. Every wait is bounded.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "attr.h"
#include "deliver_request.h"
#include "ipc.h"
#include "params.h"
#include "strbuf.h"

#define WAIT_MS 5000
#define QID "4SVLCh0sf88mYg"
#define CONTENT "Subject: hi\n\nbody line\n"

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* A regular file of 1000 bytes whose content part is CONTENT at offset 100. */
static int queue_file(void)
{
    char buf[1000];
    int fd = memfd_create("qf", MFD_CLOEXEC);

    assert_true(fd >= 0);
    memset(buf, 'x', sizeof(buf));
    memcpy(buf + 100, CONTENT, strlen(CONTENT));
    assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
    return fd;
}

static struct deliver_rcpt rcpts[3] = {
    {"alice@example.com", "", "rfc822;alice@example.com", 6, 40},
    {"bob@example.com", "b@example.com", "", 0, 60},
    {"carol@example.com", "", "", 2, 80},
};

static void fill_request(struct deliver_request *req, int fd)
{
    memset(req, 0, sizeof(*req));
    req->fd = fd;
    req->queue_name = "active";
    req->queue_id = QID;
    req->transport = "local";
    req->nexthop = "mail.example.com";
    req->sender = "sender@example.org";
    req->dsn_envid = "env1";
    req->dsn_ret = "HDRS";
    req->client_name = "client.example.org";
    req->client_addr = "192.0.2.7";
    req->content_offset = 100;
    req->content_length = (off_t) strlen(CONTENT);
    req->flags = DELIVER_FLAG_8BIT;
    req->arrival.tv_sec = 1000;
    req->arrival.tv_usec = 250000;
    req->active.tv_sec = 1001;
    req->rcpt_count = 3;
    req->rcpt = rcpts;
}

static void send_request(int sock, const struct deliver_request *req)
{
    struct attr_msg *m = attr_msg_new();

    assert_int_equal(deliver_request_build(m, req), 0);
    assert_int_equal(ipc_send(sock, m, WAIT_MS), 0);
    attr_msg_free(&m);
}

static void read_result(int sock, struct attr_msg *m, struct deliver_result *res)
{
    struct strbuf why;

    strbuf_init(&why, 64, STRBUF_UNLIMITED);
    assert_int_equal(ipc_recv(sock, m, DELIVER_RESULT_MAX_FRAME, WAIT_MS), 0);
    if (deliver_result_decode(m, res, &why) < 0)
        fail_msg("decode: %s", why.data);
    strbuf_release(&why);
}

static void test_round_trip(void **state)
{
    struct deliver_request out, in;
    struct deliver_result res;
    struct attr_msg *m = attr_msg_new();
    struct strbuf why;
    char buf[256];
    off_t pos = 0;
    ssize_t n;
    int sv[2], qf = queue_file();

    (void) state;
    pair(sv);
    strbuf_init(&why, 64, STRBUF_UNLIMITED);
    fill_request(&out, qf);
    send_request(sv[0], &out);
    close(qf);                  /* the agent has its own descriptor now */
    if (deliver_request_read(sv[1], WAIT_MS, &in, &why) < 0)
        fail_msg("read: %s", why.data);
    assert_string_equal(in.queue_name, "active");
    assert_string_equal(in.queue_id, QID);
    assert_string_equal(in.transport, "local");
    assert_string_equal(in.nexthop, "mail.example.com");
    assert_string_equal(in.sender, "sender@example.org");
    assert_string_equal(in.dsn_envid, "env1");
    assert_string_equal(in.dsn_ret, "HDRS");
    assert_string_equal(in.client_name, "client.example.org");
    assert_string_equal(in.client_addr, "192.0.2.7");
    assert_int_equal(in.flags, DELIVER_FLAG_8BIT);
    assert_int_equal(in.arrival.tv_sec, 1000);
    assert_int_equal(in.arrival.tv_usec, 250000);
    assert_int_equal(in.active.tv_sec, 1001);
    assert_true(in.received.tv_sec > 0);
    assert_int_equal(in.rcpt_count, 3);
    assert_string_equal(in.rcpt[0].address, "alice@example.com");
    assert_string_equal(in.rcpt[0].dsn_orcpt, "rfc822;alice@example.com");
    assert_int_equal(in.rcpt[0].notify, 6);
    assert_string_equal(in.rcpt[1].orig_rcpt, "b@example.com");
    assert_int_equal(in.rcpt[2].offset, 80);

    /* The descriptor that travelled reads the content, in pieces. */
    n = deliver_content_read(&in, &pos, buf, 5);
    assert_int_equal(n, 5);
    n = deliver_content_read(&in, &pos, buf + 5, sizeof(buf) - 5);
    assert_int_equal(n, (ssize_t) strlen(CONTENT) - 5);
    assert_memory_equal(buf, CONTENT, strlen(CONTENT));
    assert_int_equal(deliver_content_read(&in, &pos, buf, sizeof(buf)), 0);

    /* Outcomes: one each; the unreported third is deferred by deliver_done. */
    assert_int_equal(deliver_report(&in, sv[1], 1, DELIVER_BOUNCE, "5.1.1", "local",
                                     "unknown user: \"bob\"\r\nforged: line"), 0);
    assert_int_equal(deliver_report(&in, sv[1], 0, DELIVER_SENT, "2.0.0", "local",
                                     "delivered to maildir"), 0);
    assert_int_equal(deliver_done(&in, sv[1]), 0);

    read_result(sv[0], m, &res);
    assert_int_equal(res.done, 0);
    assert_int_equal(res.offset, 60);
    assert_int_equal(res.status, DELIVER_BOUNCE);
    assert_string_equal(res.dsn, "5.1.1");
    assert_string_equal(res.relay, "local");
    /* CR and LF from the text never reach the peer. */
    assert_string_equal(res.text, "unknown user: \"bob\"  forged: line");
    read_result(sv[0], m, &res);
    assert_int_equal(res.offset, 40);
    assert_int_equal(res.status, DELIVER_SENT);
    read_result(sv[0], m, &res);
    assert_int_equal(res.offset, 80);
    assert_int_equal(res.status, DELIVER_DEFER);
    assert_string_equal(res.dsn, "4.3.0");
    assert_string_equal(res.text, "delivery agent did not report a status");
    read_result(sv[0], m, &res);
    assert_int_equal(res.done, 1);

    deliver_request_free(&in);
    assert_int_equal(in.fd, -1);
    attr_msg_free(&m);
    strbuf_release(&why);
    close(sv[0]);
    close(sv[1]);
}

/* The agent side refuses what it reads; expect_substr is in the reason. */
static void expect_refused(int sock, const char *expect_substr)
{
    struct deliver_request in;
    struct strbuf why;

    strbuf_init(&why, 64, STRBUF_UNLIMITED);
    assert_int_equal(deliver_request_read(sock, 1000, &in, &why), -1);
    if (strstr(why.data, expect_substr) == NULL)
        fail_msg("reason \"%s\" lacks \"%s\"", why.data, expect_substr);
    assert_int_equal(in.fd, -1);
    assert_null(in.priv);
    strbuf_release(&why);
}

static void test_truncated(void **state)
{
    struct deliver_request out;
    struct attr_msg *m = attr_msg_new();
    const void *data;
    const int *fds;
    size_t len, nfds;
    int sv[2], qf = queue_file();

    (void) state;
    pair(sv);
    fill_request(&out, qf);
    assert_int_equal(deliver_request_build(m, &out), 0);
    assert_int_equal(attr_msg_frame(m, &data, &len, &fds, &nfds), 0);
    /* Half a frame, then the peer hangs up. */
    assert_int_equal(write(sv[0], data, len / 2), (ssize_t) (len / 2));
    close(sv[0]);
    expect_refused(sv[1], "read delivery request");
    close(sv[1]);

    /* Silence: the timeout ends the wait. */
    pair(sv);
    expect_refused(sv[1], "timed out");
    close(sv[0]);
    close(sv[1]);
    attr_msg_free(&m);
    close(qf);
}

static void test_oversized(void **state)
{
    unsigned char hdr[8] = {0xA7, 1, 0, 0, 0, 0, 0, 0};
    uint32_t big = DELIVER_REQUEST_MAX_FRAME + 1;
    int sv[2];

    (void) state;
    pair(sv);
    hdr[4] = (unsigned char) (big >> 24);
    hdr[5] = (unsigned char) (big >> 16);
    hdr[6] = (unsigned char) (big >> 8);
    hdr[7] = (unsigned char) big;
    assert_int_equal(write(sv[0], hdr, sizeof(hdr)), sizeof(hdr));
    expect_refused(sv[1], "read delivery request");
    close(sv[0]);
    close(sv[1]);
}

static void test_inconsistent(void **state)
{
    struct deliver_request out;
    struct deliver_rcpt bad;
    int sv[2], qf = queue_file();

    (void) state;
    /* Content beyond the end of the queue file. */
    pair(sv);
    fill_request(&out, qf);
    out.content_length = 5000;
    send_request(sv[0], &out);
    expect_refused(sv[1], "outside the queue file");
    close(sv[0]);
    close(sv[1]);

    /* A recipient offset past the end of the file. */
    pair(sv);
    fill_request(&out, qf);
    bad = rcpts[0];
    bad.offset = 1000;
    out.rcpt = &bad;
    out.rcpt_count = 1;
    send_request(sv[0], &out);
    expect_refused(sv[1], "recipient 1 is malformed");
    close(sv[0]);
    close(sv[1]);

    /* Parallel lists of different lengths, built by hand. */
    {
        struct attr_msg *m = attr_msg_new();

        pair(sv);
        fill_request(&out, qf);
        out.rcpt_count = 1;
        assert_int_equal(deliver_request_build(m, &out), 0);
        attr_add_str(m, "rcpt", "extra@example.com");
        assert_int_equal(ipc_send(sv[0], m, WAIT_MS), 0);
        expect_refused(sv[1], "lists differ");
        close(sv[0]);
        close(sv[1]);
        attr_msg_free(&m);
    }

    /* An unknown attribute is refused, not ignored. */
    {
        struct attr_msg *m = attr_msg_new();

        pair(sv);
        fill_request(&out, qf);
        assert_int_equal(deliver_request_build(m, &out), 0);
        attr_put_str(m, "surprise", "1");
        assert_int_equal(ipc_send(sv[0], m, WAIT_MS), 0);
        expect_refused(sv[1], "surprise");
        close(sv[0]);
        close(sv[1]);
        attr_msg_free(&m);
    }

    /* No recipients at all cannot even be built. */
    {
        struct attr_msg *m = attr_msg_new();

        fill_request(&out, qf);
        out.rcpt_count = 0;
        assert_int_equal(deliver_request_build(m, &out), -1);
        assert_int_equal(errno, E2BIG);
        attr_msg_free(&m);
    }
    close(qf);
}

/* Decodes the frame built in m as a receiver would see it. */
static int decode_built(struct attr_msg *m, struct deliver_result *res, struct strbuf *why)
{
    struct attr_msg *rx = attr_msg_new();
    const void *data;
    const int *fds;
    size_t len, nfds;
    int rc;

    assert_int_equal(attr_msg_frame(m, &data, &len, &fds, &nfds), 0);
    assert_int_equal(attr_decode(rx, data, len), 0);
    rc = deliver_result_decode(rx, res, why);
    attr_msg_free(&rx);         /* only the verdict is looked at */
    return rc;
}

static void test_result_refused(void **state)
{
    struct attr_msg *m = attr_msg_new();
    struct deliver_result res;
    struct strbuf why;

    (void) state;
    strbuf_init(&why, 64, STRBUF_UNLIMITED);
    /* A "sent" with a 5.x.x status. */
    attr_put_u32(m, "status", IPC_STATUS_OK);
    attr_put_i64(m, "offset", 40);
    attr_put_str(m, "dsn", "5.1.1");
    attr_put_str(m, "relay", "local");
    attr_put_str(m, "reason", "x");
    assert_int_equal(decode_built(m, &res, &why), -1);
    assert_non_null(strstr(why.data, "bad dsn"));
    /* A status frame without an offset. */
    attr_msg_reset(m);
    strbuf_reset(&why);
    attr_put_u32(m, "status", IPC_STATUS_DEFER);
    attr_put_str(m, "dsn", "4.0.0");
    attr_put_str(m, "relay", "local");
    attr_put_str(m, "reason", "x");
    assert_int_equal(decode_built(m, &res, &why), -1);
    /* An unknown status code. */
    attr_msg_reset(m);
    attr_put_u32(m, "status", 7);
    attr_put_i64(m, "offset", 40);
    attr_put_str(m, "dsn", "4.0.0");
    attr_put_str(m, "relay", "local");
    attr_put_str(m, "reason", "x");
    assert_int_equal(decode_built(m, &res, &why), -1);
    attr_msg_free(&m);
    strbuf_release(&why);
}

static void test_format_delay(void **state)
{
    static const struct {
        long sec, usec;
        int digits;
        const char *want;
    } cases[] = {
        {0, 0, 2, "0"},
        {0, 4000, 2, "0"},
        {0, 12345, 2, "0.01"},
        {0, 123456, 2, "0.12"},
        {0, 100000, 2, "0.1"},
        {1, 234567, 2, "1.2"},
        {1, 0, 2, "1"},
        {9, 960000, 2, "10"},
        {12, 345678, 2, "12"},
        {123, 0, 2, "123"},
        {4153, 900000, 2, "4154"},
        {0, 600000, 0, "1"},
        {0, 1234, 6, "0.0012"},
        {-5, 0, 2, "0"},
    };
    struct strbuf out;
    size_t i;

    (void) state;
    strbuf_init(&out, 32, STRBUF_UNLIMITED);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strbuf_reset(&out);
        deliver_format_delay(&out, cases[i].sec, cases[i].usec, cases[i].digits);
        if (strcmp(out.data, cases[i].want) != 0)
            fail_msg("%ld.%06ld/%d: got \"%s\", want \"%s\"", cases[i].sec, cases[i].usec,
                     cases[i].digits, out.data, cases[i].want);
    }
    strbuf_release(&out);
}

static void test_log_line(void **state)
{
    struct deliver_request req;
    struct strbuf line;
    struct timeval now = {1003, 240000};
    struct deliver_rcpt r[2] = {
        {"alice@example.com", "", "", 0, 40},
        {"john smith@example.com", "js@example.com", "", 0, 60},
    };

    (void) state;
    var_delay_logging_resolution_limit = 2;
    strbuf_init(&line, 128, STRBUF_UNLIMITED);
    memset(&req, 0, sizeof(req));
    req.queue_id = QID;
    req.rcpt = r;
    req.rcpt_count = 2;
    req.arrival = (struct timeval) {1000, 0};
    req.active = (struct timeval) {1000, 500000};
    req.received = (struct timeval) {1001, 0};
    deliver_log_format(&line, &req, 0, DELIVER_SENT, "2.0.0", "local",
                       "delivered to maildir", &now);
    assert_string_equal(line.data, QID ": to=<alice@example.com>, relay=local, delay=3.2, "
                        "delays=0.5/0.5/0/2.2, dsn=2.0.0, status=sent (delivered to maildir)");

    /* Connection setup splits c from d; orig_to appears when it differs; quoting. */
    req.setup_done = (struct timeval) {1001, 30000};
    deliver_log_format(&line, &req, 1, DELIVER_DEFER, "4.4.1", "mx.example.com[192.0.2.1]:25",
                       "connect timed out", &now);
    assert_string_equal(line.data, QID ": to=<\"john smith\"@example.com>, "
                        "orig_to=<js@example.com>, relay=mx.example.com[192.0.2.1]:25, "
                        "delay=3.2, delays=0.5/0.5/0.03/2.2, dsn=4.4.1, "
                        "status=deferred (connect timed out)");

    /* The same original recipient in another case is not an orig_to. */
    r[0].orig_rcpt = "Alice@Example.com";
    memset(&req.setup_done, 0, sizeof(req.setup_done));
    deliver_log_format(&line, &req, 0, DELIVER_BOUNCE, "5.1.1", "local", "unknown", &now);
    assert_null(strstr(line.data, "orig_to"));
    assert_non_null(strstr(line.data, "status=bounced (unknown)"));

    /* No agent (qmgr's own verdict): the time since active is qmgr's. */
    memset(&req.received, 0, sizeof(req.received));
    deliver_log_format(&line, &req, 0, DELIVER_BOUNCE, "5.4.7", "none", "message expired",
                       &now);
    assert_non_null(strstr(line.data, "delay=3.2, delays=0.5/2.7/0/0, dsn=5.4.7"));

    /* A clock that went back gives zeros, never negative delays. */
    req.received = (struct timeval) {999, 0};
    deliver_log_format(&line, &req, 0, DELIVER_SENT, "2.0.0", "local", "ok", &now);
    assert_non_null(strstr(line.data, "delays=0.5/0/0/4.2,"));
    strbuf_release(&line);
}

/* A wrong DSN class is a caller bug: the process aborts. */
static void test_report_mismatch_panics(void **state)
{
    struct deliver_request out, in;
    struct strbuf why;
    int sv[2], status, qf = queue_file();
    pid_t pid;

    (void) state;
    pair(sv);
    fill_request(&out, qf);
    send_request(sv[0], &out);
    strbuf_init(&why, 64, STRBUF_UNLIMITED);
    assert_int_equal(deliver_request_read(sv[1], WAIT_MS, &in, &why), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);

        dup2(devnull, 2);
        signal(SIGABRT, SIG_DFL);
        (void) deliver_report(&in, sv[1], 0, DELIVER_SENT, "5.0.0", "local", "x");
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    deliver_request_free(&in);
    strbuf_release(&why);
    close(sv[0]);
    close(sv[1]);
    close(qf);
}

/* deliver_pass: a second agent on private/relay bounces the recipient; the first
 * agent reports that outcome to qmgr. A missing transport is a deferral. */
static void test_pass(void **state)
{
    char dir[] = "/tmp/test_deliver_XXXXXX";
    struct deliver_request out, in;
    struct deliver_result res;
    struct attr_msg *m = attr_msg_new();
    struct strbuf why;
    int sv[2], lfd, status, qf = queue_file();
    char cwd[4096];
    pid_t pid;

    (void) state;
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(mkdir("private", 0700), 0);
    lfd = ipc_listen("private/relay", 4);
    assert_true(lfd >= 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct deliver_request r2;
        struct strbuf w;
        int c = ipc_accept(lfd, WAIT_MS);

        strbuf_init(&w, 64, STRBUF_UNLIMITED);
        if (c < 0 || deliver_request_read(c, WAIT_MS, &r2, &w) < 0)
            _exit(2);
        if (r2.rcpt_count != 1 || strcmp(r2.rcpt[0].address, "bob@example.com") != 0
            || strcmp(r2.nexthop, "lmtp.example.com") != 0
            || strcmp(r2.transport, "relay") != 0)
            _exit(3);
        if (deliver_report(&r2, c, 0, DELIVER_BOUNCE, "5.2.2", "lmtp.example.com",
                           "mailbox full") < 0 || deliver_done(&r2, c) < 0)
            _exit(4);
        _exit(0);
    }
    close(lfd);
    pair(sv);
    fill_request(&out, qf);
    send_request(sv[0], &out);
    strbuf_init(&why, 64, STRBUF_UNLIMITED);
    assert_int_equal(deliver_request_read(sv[1], WAIT_MS, &in, &why), 0);
    assert_int_equal(deliver_pass(&in, sv[1], 1, "relay", "lmtp.example.com", WAIT_MS), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    read_result(sv[0], m, &res);
    assert_int_equal(res.offset, 60);
    assert_int_equal(res.status, DELIVER_BOUNCE);
    assert_string_equal(res.dsn, "5.2.2");
    assert_string_equal(res.relay, "lmtp.example.com");
    assert_string_equal(res.text, "mailbox full");

    /* Nobody listens on private/nothing: a deferral, not a loss. */
    assert_int_equal(deliver_pass(&in, sv[1], 0, "nothing", "x", 500), 0);
    read_result(sv[0], m, &res);
    assert_int_equal(res.offset, 40);
    assert_int_equal(res.status, DELIVER_DEFER);
    assert_string_equal(res.dsn, "4.3.0");
    assert_string_equal(res.text, "mail transport unavailable");

    deliver_request_free(&in);
    attr_msg_free(&m);
    strbuf_release(&why);
    close(sv[0]);
    close(sv[1]);
    close(qf);
    unlink("private/relay");
    rmdir("private");
    assert_int_equal(chdir(cwd), 0);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_inconsistent),
        cmocka_unit_test(test_result_refused),
        cmocka_unit_test(test_format_delay),
        cmocka_unit_test(test_log_line),
        cmocka_unit_test(test_report_mismatch_panics),
        cmocka_unit_test(test_pass),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
