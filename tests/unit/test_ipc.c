/*
 * test_ipc.c - frames over real Unix-domain sockets: descriptor passing
 * (SCM_RIGHTS) kept with its own frame, close-on-exec, the whole-frame
 * deadline against silent and trickling peers, peers that close mid-frame,
 * oversize frames refused from the header, short writes, the event-loop forms
 * and one-shot calls to private/NAME. Every wait is bounded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "attr.h"
#include "ipc.h"

#define WAIT_MS 5000            /* upper bound for anything that should be quick */

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static int has_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);

    return flags >= 0 && (flags & FD_CLOEXEC);
}

/* Reads what a pipe holds within WAIT_MS; returns bytes, 0 on EOF, -1 on timeout. */
static ssize_t read_within(int fd, char *buf, size_t size)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};

    if (poll(&pfd, 1, WAIT_MS) != 1)
        return -1;
    return read(fd, buf, size);
}

static void write_all(int fd, const void *data, size_t len)
{
    assert_int_equal(write(fd, data, len), (ssize_t) len);
}

/* Encodes a simple frame for tests that write raw bytes. */
static size_t encode(struct attr_msg *m, const char *value, const void **data)
{
    const int *fds;
    size_t len, nfds;

    attr_msg_reset(m);
    assert_int_equal(attr_put_str(m, "request", value), 0);
    assert_int_equal(attr_msg_frame(m, data, &len, &fds, &nfds), 0);
    return len;
}

static void reap(pid_t pid)
{
    int status;

    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
}

/* ---- tests ---- */

static void test_fd_passing_round_trip(void **state)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    int sv[2], p[2], fd = -1;
    const char *s;
    char buf[16];

    pair(sv);
    assert_int_equal(pipe(p), 0);
    attr_put_str(out, "request", "deliver");
    attr_put_fd(out, "content", p[1]);
    assert_int_equal(ipc_send(sv[0], out, WAIT_MS), 0);
    close(p[1]);
    assert_int_equal(ipc_recv(sv[1], in, 0, WAIT_MS), 0);
    assert_int_equal(attr_get_str(in, "request", &s, NULL), 0);
    assert_string_equal(s, "deliver");
    assert_int_equal(attr_get_fd(in, "content", &fd), 0);
    assert_true(has_cloexec(fd));
    write_all(fd, "hello", 5);
    close(fd);
    assert_int_equal(read_within(p[0], buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);
    /* The last writer is gone, so the pipe now reads EOF: no copy leaked. */
    assert_int_equal(read_within(p[0], buf, sizeof(buf)), 0);
    close(p[0]);
    close(sv[0]);
    close(sv[1]);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

/* Frames queued back to back each bring their own descriptors. */
static void test_fds_stay_with_their_frame(void **state)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    int sv[2], p[3][2], i, fd;
    char buf[8], tag;

    pair(sv);
    for (i = 0; i < 3; i++) {
        assert_int_equal(pipe(p[i]), 0);
        attr_msg_reset(out);
        attr_put_u32(out, "n", (uint32_t) i);
        if (i != 1)             /* the middle frame carries none */
            attr_put_fd(out, "fd", p[i][1]);
        assert_int_equal(ipc_send(sv[0], out, WAIT_MS), 0);
        close(p[i][1]);
    }
    for (i = 0; i < 3; i++) {
        uint32_t n;

        assert_int_equal(ipc_recv(sv[1], in, 0, WAIT_MS), 0);
        assert_int_equal(attr_get_u32(in, "n", &n), 0);
        assert_int_equal(n, i);
        if (i == 1) {
            assert_int_equal(attr_opt_fd(in, "fd", &fd), 0);
            continue;
        }
        assert_int_equal(attr_get_fd(in, "fd", &fd), 0);
        tag = (char) ('0' + i);
        write_all(fd, &tag, 1);
        close(fd);
    }
    for (i = 0; i < 3; i += 2) {
        assert_int_equal(read_within(p[i][0], buf, sizeof(buf)), 1);
        assert_int_equal(buf[0], '0' + i);
        close(p[i][0]);
    }
    close(p[1][0]);
    close(sv[0]);
    close(sv[1]);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

static void test_unclaimed_fd_is_closed(void **state)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    int sv[2], p[2];
    char buf[4];

    pair(sv);
    assert_int_equal(pipe(p), 0);
    attr_put_fd(out, "fd", p[1]);
    assert_int_equal(ipc_send(sv[0], out, WAIT_MS), 0);
    close(p[1]);
    assert_int_equal(ipc_recv(sv[1], in, 0, WAIT_MS), 0);
    attr_msg_reset(in);
    assert_int_equal(read_within(p[0], buf, sizeof(buf)), 0);
    close(p[0]);
    close(sv[0]);
    close(sv[1]);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

static void test_silent_peer_times_out(void **state)
{
    struct attr_msg *in = attr_msg_new();
    long t0, dt;
    int sv[2];

    pair(sv);
    t0 = now_ms();
    assert_int_equal(ipc_recv(sv[1], in, 0, 200), -1);
    dt = now_ms() - t0;
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(dt >= 190 && dt < 2000);
    close(sv[0]);
    close(sv[1]);
    attr_msg_free(&in);
}

/* A peer sending a byte every 50 ms is never idle, yet the frame deadline holds. */
static void test_trickling_peer_hits_the_deadline(void **state)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    const unsigned char *data;
    long t0, dt;
    size_t len, i;
    int sv[2];
    pid_t pid;

    pair(sv);
    len = encode(out, "a value long enough to take two seconds", (const void **) &data);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[1]);
        for (i = 0; i < len; i++) {
            if (write(sv[0], data + i, 1) != 1)
                _exit(1);
            poll(NULL, 0, 50);
        }
        _exit(0);
    }
    close(sv[0]);
    t0 = now_ms();
    assert_int_equal(ipc_recv(sv[1], in, 0, 300), -1);
    dt = now_ms() - t0;
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(dt >= 290 && dt < 1500);
    reap(pid);
    close(sv[1]);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

static void test_peer_closes_mid_frame_and_between_frames(void **state)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    const void *data;
    size_t len;
    int sv[2];

    pair(sv);
    len = encode(out, "x", &data);
    write_all(sv[0], data, len - 3);
    close(sv[0]);
    assert_int_equal(ipc_recv(sv[1], in, 0, WAIT_MS), -1);
    assert_int_equal(errno, ECONNRESET);
    close(sv[1]);

    pair(sv);
    write_all(sv[0], data, 5);          /* inside the header */
    close(sv[0]);
    assert_int_equal(ipc_recv(sv[1], in, 0, WAIT_MS), -1);
    assert_int_equal(errno, ECONNRESET);
    close(sv[1]);

    pair(sv);
    write_all(sv[0], data, len);
    close(sv[0]);
    assert_int_equal(ipc_recv(sv[1], in, 0, WAIT_MS), 0);
    assert_int_equal(ipc_recv(sv[1], in, 0, WAIT_MS), -1);
    assert_int_equal(errno, EPIPE);
    close(sv[1]);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

static void test_oversize_frame_refused_from_header(void **state)
{
    static const unsigned char header[8] = {0xA7, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff};
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    const void *data;
    size_t len;
    long t0;
    int sv[2];

    pair(sv);
    write_all(sv[0], header, sizeof(header));
    t0 = now_ms();
    /* The peer stays connected: the refusal must not wait for the payload. */
    assert_int_equal(ipc_recv(sv[1], in, 0, WAIT_MS), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_true(now_ms() - t0 < 1000);
    close(sv[0]);
    close(sv[1]);

    /* The per-call limit: exactly the frame size passes, one less fails. */
    pair(sv);
    len = encode(out, "0123456789", &data);
    write_all(sv[0], data, len);
    write_all(sv[0], data, len);
    assert_int_equal(ipc_recv(sv[1], in, len, WAIT_MS), 0);
    assert_int_equal(ipc_recv(sv[1], in, len - 1, WAIT_MS), -1);
    assert_int_equal(errno, EMSGSIZE);
    close(sv[0]);
    close(sv[1]);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

static void test_bad_frame_is_eproto(void **state)
{
    static const unsigned char frame[] = {0xA7, 1, 0, 0, 0, 0, 0, 3, 9, 1, 'a'};
    struct attr_msg *in = attr_msg_new();
    int sv[2];

    pair(sv);
    write_all(sv[0], frame, sizeof(frame));
    assert_int_equal(ipc_recv(sv[1], in, 0, WAIT_MS), -1);
    assert_int_equal(errno, EPROTO);
    close(sv[0]);
    close(sv[1]);
    attr_msg_free(&in);
}

/* Larger than the socket buffer: the sender makes short writes, the receiver several reads. */
static void test_large_frame_with_short_writes(void **state)
{
    struct attr_limits lim = {.max_frame = 4 * 1024 * 1024};
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    size_t size = 3 * 1024 * 1024, i, len;
    unsigned char *big = malloc(size);
    const unsigned char *got;
    int sv[2];
    pid_t pid;

    assert_non_null(big);
    for (i = 0; i < size; i++)
        big[i] = (unsigned char) (i * 7 + i / 251);
    attr_msg_set_limits(out, &lim);
    attr_msg_set_limits(in, &lim);
    assert_int_equal(attr_put_data(out, "content", big, size), 0);
    pair(sv);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[1]);
        _exit(ipc_send(sv[0], out, WAIT_MS) == 0 ? 0 : 1);
    }
    close(sv[0]);
    assert_int_equal(ipc_recv(sv[1], in, 0, WAIT_MS), 0);
    assert_int_equal(attr_get_data(in, "content", (const void **) &got, &len), 0);
    assert_int_equal(len, size);
    assert_memory_equal(got, big, size);
    {
        int status;

        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    close(sv[1]);
    free(big);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

static void test_send_times_out_and_survives_closed_peer(void **state)
{
    struct attr_limits lim = {.max_frame = 4 * 1024 * 1024};
    struct attr_msg *out = attr_msg_new();
    size_t size = 3 * 1024 * 1024;
    char *big = calloc(1, size);
    long t0, dt;
    int sv[2];

    assert_non_null(big);
    attr_msg_set_limits(out, &lim);
    attr_put_data(out, "content", big, size);
    pair(sv);
    t0 = now_ms();
    assert_int_equal(ipc_send(sv[0], out, 200), -1);
    dt = now_ms() - t0;
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(dt >= 190 && dt < 2000);
    close(sv[0]);

    /* Without MSG_NOSIGNAL this would kill the test with SIGPIPE. */
    pair(sv);
    close(sv[1]);
    assert_int_equal(ipc_send(sv[0], out, WAIT_MS), -1);
    assert_int_equal(errno, EPIPE);
    close(sv[0]);

    /* A builder failure is reported and nothing is sent. */
    attr_msg_reset(out);
    assert_int_equal(attr_put_str(out, "bad", "a\nb"), -1);
    pair(sv);
    assert_int_equal(ipc_send(sv[0], out, WAIT_MS), -1);
    assert_int_equal(errno, EINVAL);
    {
        struct pollfd pfd = {.fd = sv[1], .events = POLLIN};

        assert_int_equal(poll(&pfd, 1, 0), 0);
    }
    close(sv[0]);
    close(sv[1]);
    free(big);
    attr_msg_free(&out);
}

static void test_nonblocking_forms(void **state)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    const void *data;
    const char *s;
    size_t len, offset = 0;
    int sv[2];

    pair(sv);
    len = encode(out, "incremental", &data);
    assert_int_equal(ipc_recv_nb(sv[1], in), 0);
    write_all(sv[0], data, 3);
    assert_int_equal(ipc_recv_nb(sv[1], in), 0);
    write_all(sv[0], (const char *) data + 3, 10);
    assert_int_equal(ipc_recv_nb(sv[1], in), 0);
    write_all(sv[0], (const char *) data + 13, len - 13);
    assert_int_equal(ipc_recv_nb(sv[1], in), 1);
    assert_int_equal(attr_get_str(in, "request", &s, NULL), 0);
    assert_string_equal(s, "incremental");

    attr_msg_reset(in);
    assert_int_equal(ipc_send_nb(sv[0], out, &offset), 1);
    assert_int_equal(offset, len);
    assert_int_equal(ipc_recv_nb(sv[1], in), 1);
    close(sv[0]);
    close(sv[1]);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

/* A tiny service: answers one request with status 0 and the request echoed. */
static void serve_one(int lfd)
{
    struct attr_msg *req = attr_msg_new(), *resp = attr_msg_new();
    const char *s;
    int fd;

    if ((fd = ipc_accept(lfd, WAIT_MS)) < 0 || !has_cloexec(fd)
        || ipc_recv(fd, req, 0, WAIT_MS) < 0 || attr_get_str(req, "request", &s, NULL) < 0
        || attr_check_consumed(req) < 0)
        _exit(1);
    attr_put_u32(resp, "status", IPC_STATUS_OK);
    attr_put_str(resp, "echo", s);
    _exit(ipc_send(fd, resp, WAIT_MS) < 0 ? 1 : 0);
}

static void test_call_and_connect_by_service_name(void **state)
{
    char dir[] = "test_ipc.XXXXXX", cwd[4096];
    struct attr_msg *req = attr_msg_new(), *resp = attr_msg_new();
    const char *s;
    uint32_t status;
    int lfd, fd, st;
    pid_t pid;

    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(mkdir("private", 0700), 0);
    lfd = ipc_listen("private/echo", 5);
    assert_true(lfd >= 0);
    assert_true(has_cloexec(lfd));
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        serve_one(lfd);
    attr_put_str(req, "request", "ping");
    assert_int_equal(ipc_call(IPC_CLASS_PRIVATE, "echo", req, resp, 0, WAIT_MS), 0);
    assert_int_equal(attr_get_u32(resp, "status", &status), 0);
    assert_int_equal(status, IPC_STATUS_OK);
    assert_int_equal(attr_get_str(resp, "echo", &s, NULL), 0);
    assert_string_equal(s, "ping");
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    fd = ipc_connect(IPC_CLASS_PRIVATE, "echo", WAIT_MS);
    assert_true(fd >= 0);
    assert_true(has_cloexec(fd));
    close(fd);
    close(lfd);

    /* Nobody listens any more: a stale socket refuses, a missing one is absent. */
    assert_int_equal(ipc_connect(IPC_CLASS_PRIVATE, "echo", WAIT_MS), -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_int_equal(ipc_call(IPC_CLASS_PUBLIC, "nothing", req, resp, 0, WAIT_MS), -1);
    assert_int_equal(errno, ENOENT);
    /* ipc_listen replaces the stale socket, but never a regular file. */
    lfd = ipc_listen("private/echo", 5);
    assert_true(lfd >= 0);
    close(lfd);
    close(open("private/file", O_CREAT | O_WRONLY, 0600));
    assert_int_equal(ipc_listen("private/file", 5), -1);
    assert_int_equal(errno, EADDRINUSE);
    assert_int_equal(access("private/file", F_OK), 0);

    unlink("private/echo");
    unlink("private/file");
    rmdir("private");
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rmdir(dir), 0);
    attr_msg_free(&req);
    attr_msg_free(&resp);
}

static void test_bad_service_names(void **state)
{
    static const char *const bad[] = {
        "", "../echo", "a/b", ".hidden", "sp ace", "nl\n",
        "a2345678901234567890123456789012345678901234567890123456789012345",
    };
    char longpath[200];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_int_equal(ipc_connect(IPC_CLASS_PUBLIC, bad[i], 100), -1);
        if (errno != EINVAL)
            fail_msg("service \"%s\": errno %d, want EINVAL", bad[i], errno);
    }
    memset(longpath, 'x', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(ipc_connect_path(longpath, 100), -1);
    assert_int_equal(errno, ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_passing_round_trip),
        cmocka_unit_test(test_fds_stay_with_their_frame),
        cmocka_unit_test(test_unclaimed_fd_is_closed),
        cmocka_unit_test(test_silent_peer_times_out),
        cmocka_unit_test(test_trickling_peer_hits_the_deadline),
        cmocka_unit_test(test_peer_closes_mid_frame_and_between_frames),
        cmocka_unit_test(test_oversize_frame_refused_from_header),
        cmocka_unit_test(test_bad_frame_is_eproto),
        cmocka_unit_test(test_large_frame_with_short_writes),
        cmocka_unit_test(test_send_times_out_and_survives_closed_peer),
        cmocka_unit_test(test_nonblocking_forms),
        cmocka_unit_test(test_call_and_connect_by_service_name),
        cmocka_unit_test(test_bad_service_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
