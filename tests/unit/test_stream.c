/*
 * test_stream.c - the buffered stream: line terminators and limits with the
 * input split at every byte, timeouts against a silent peer, the deadline
 * and minimum data rate, sticky per-direction errors, writes to a peer that
 * stopped reading, pipelining and STARTTLS discards, swapping the I/O layer.
 * Peers are real socketpairs, pipes and files; every wait has a timeout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
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
#include <sys/wait.h>
#include <cmocka.h>

#include "stream.h"

/* A memory source that can cut its data at one position or trickle it. */
struct mem_src {
    const char *data;
    size_t len;
    size_t pos;
    size_t split;               /* a read never crosses this offset */
    size_t max_chunk;           /* 0: no limit */
};

static ssize_t mem_read(void *ctx, int fd, void *buf, size_t len)
{
    struct mem_src *m = ctx;
    size_t n = m->len - m->pos;

    if (m->pos < m->split && m->pos + n > m->split)
        n = m->split - m->pos;
    if (m->max_chunk && n > m->max_chunk)
        n = m->max_chunk;
    if (n > len)
        n = len;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (ssize_t) n;
}

static ssize_t mem_write(void *ctx, int fd, const void *buf, size_t len)
{
    errno = EBADF;
    return -1;
}

static const struct stream_io mem_io = {.read = mem_read, .write = mem_write};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *eol_name(enum stream_eol eol)
{
    static const char *const names[] = {"NONE", "CRLF", "LF", "CR", "LIMIT"};

    return eol <= STREAM_EOL_LIMIT ? names[eol] : "?";
}

/* Runs fn in a child and asserts that it panicked (abort). */
static void assert_panics(void (*fn)(void))
{
    pid_t pid;
    int status;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);

        dup2(devnull, 2);
        fn();
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* ---------------------------------------------------------------- lines */

struct want_line {
    const char *text;
    enum stream_eol eol;
};

struct line_case {
    const char *name;
    const char *input;
    size_t input_len;           /* 0: strlen(input) */
    size_t limit;
    struct want_line want[8];   /* ends at text == NULL */
};

static const struct line_case line_cases[] = {
    {"empty input", "", 0, 100, {{NULL, 0}}},
    {"every terminator", "abc\r\nde\nfg\rh\r\r\n\nxyz", 0, 100,
     {{"abc", STREAM_EOL_CRLF}, {"de", STREAM_EOL_LF}, {"fg", STREAM_EOL_CR},
      {"h", STREAM_EOL_CR}, {"", STREAM_EOL_CRLF}, {"", STREAM_EOL_LF},
      {"xyz", STREAM_EOL_NONE}, {NULL, 0}}},
    {"CR at end of input", "ab\r", 0, 100, {{"ab", STREAM_EOL_CR}, {NULL, 0}}},
    {"LF then CR", "a\n\rb", 0, 100,
     {{"a", STREAM_EOL_LF}, {"", STREAM_EOL_CR}, {"b", STREAM_EOL_NONE}, {NULL, 0}}},
    {"CR CR LF", "\r\r\n", 0, 100, {{"", STREAM_EOL_CR}, {"", STREAM_EOL_CRLF}, {NULL, 0}}},
    {"smuggled dot", "x\n.\n\r\n.\r\n", 0, 100,
     {{"x", STREAM_EOL_LF}, {".", STREAM_EOL_LF}, {"", STREAM_EOL_CRLF},
      {".", STREAM_EOL_CRLF}, {NULL, 0}}},
    {"limit, CRLF", "12345\r\n", 0, 5, {{"12345", STREAM_EOL_CRLF}, {NULL, 0}}},
    {"limit, LF", "12345\n", 0, 5, {{"12345", STREAM_EOL_LF}, {NULL, 0}}},
    {"limit, CR at end", "12345\r", 0, 5, {{"12345", STREAM_EOL_CR}, {NULL, 0}}},
    {"limit, CR then data", "12345\rX", 0, 5,
     {{"12345", STREAM_EOL_CR}, {"X", STREAM_EOL_NONE}, {NULL, 0}}},
    {"limit, no terminator", "12345", 0, 5, {{"12345", STREAM_EOL_NONE}, {NULL, 0}}},
    {"limit+1, CRLF", "123456\r\n", 0, 5,
     {{"12345", STREAM_EOL_LIMIT}, {"6", STREAM_EOL_CRLF}, {NULL, 0}}},
    {"limit+1, no terminator", "123456", 0, 5,
     {{"12345", STREAM_EOL_LIMIT}, {"6", STREAM_EOL_NONE}, {NULL, 0}}},
    {"limit-1, CRLF", "1234\r\n", 0, 5, {{"1234", STREAM_EOL_CRLF}, {NULL, 0}}},
    {"three pieces", "aaaaaaaaaaa\r\nb\n", 0, 4,
     {{"aaaa", STREAM_EOL_LIMIT}, {"aaaa", STREAM_EOL_LIMIT}, {"aaa", STREAM_EOL_CRLF},
      {"b", STREAM_EOL_LF}, {NULL, 0}}},
    {"limit 1", "ab\r\n\r\n", 0, 1,
     {{"a", STREAM_EOL_LIMIT}, {"b", STREAM_EOL_CRLF}, {"", STREAM_EOL_CRLF}, {NULL, 0}}},
    {"NUL inside a line", "a\0b\r\n", 5, 100, {{"a\0b", STREAM_EOL_CRLF}, {NULL, 0}}},
};

/* Reads every line of one case from src and compares with the table. */
static void check_lines(const struct line_case *c, struct mem_src *src, const char *how)
{
    struct stream *s = stream_open_io(-1, &mem_io, src, 0);
    const struct want_line *w;
    const char *line;
    enum stream_eol eol;
    ssize_t n;
    size_t want_len;
    int i;

    for (i = 0, w = c->want; w->text; i++, w++) {
        n = stream_read_line(s, &line, c->limit, &eol);
        want_len = strlen(w->text);
        if (c->input_len && i == 0)
            want_len = 3;       /* the NUL case: "a\0b" */
        if (n != (ssize_t) want_len || memcmp(line, w->text, want_len) != 0
            || eol != w->eol || line[n] != '\0')
            fail_msg("%s, %s, line %d: got %zd \"%.*s\" %s, want \"%s\" %s", c->name, how, i,
                     n, n > 0 ? (int) n : 0, n > 0 ? line : "", eol_name(eol), w->text,
                     eol_name(w->eol));
    }
    n = stream_read_line(s, &line, c->limit, &eol);
    if (n != -1 || stream_status(s, STREAM_DIR_READ) != STREAM_EOF)
        fail_msg("%s, %s: got %zd at the end, want -1 and EOF", c->name, how, n);
    assert_int_equal(stream_close(&s), 0);
}

static void test_lines_split_at_every_byte(void **state)
{
    const struct line_case *c;
    struct mem_src src;
    char how[64];
    size_t split;

    for (c = line_cases; c < line_cases + sizeof(line_cases) / sizeof(line_cases[0]); c++) {
        size_t len = c->input_len ? c->input_len : strlen(c->input);

        for (split = 0; split <= len; split++) {
            src = (struct mem_src) {c->input, len, 0, split, 0};
            snprintf(how, sizeof(how), "split at %zu", split);
            check_lines(c, &src, how);
        }
        src = (struct mem_src) {c->input, len, 0, 0, 1};
        check_lines(c, &src, "one byte per read");
    }
}

/* The same cases over a real pipe, written in two parts. */
static void test_lines_over_pipe(void **state)
{
    const struct line_case *c;
    const struct want_line *w;
    const char *line;
    enum stream_eol eol;
    struct stream *s;
    int p[2];

    for (c = line_cases; c < line_cases + sizeof(line_cases) / sizeof(line_cases[0]); c++) {
        size_t len = c->input_len ? c->input_len : strlen(c->input);

        assert_int_equal(pipe(p), 0);
        assert_int_equal(write(p[1], c->input, len / 2), (ssize_t) (len / 2));
        assert_int_equal(write(p[1], c->input + len / 2, len - len / 2), (ssize_t) (len - len / 2));
        close(p[1]);
        s = stream_fdopen(p[0], 0);
        stream_set_timeout(s, 2000);
        for (w = c->want; w->text; w++) {
            assert_true(stream_read_line(s, &line, c->limit, &eol) >= 0);
            assert_int_equal(eol, w->eol);
        }
        assert_int_equal(stream_read_line(s, &line, c->limit, &eol), -1);
        assert_int_equal(stream_status(s, STREAM_DIR_READ), STREAM_EOF);
        stream_close(&s);
    }
}

/* A limit larger than the initial buffer: the line still comes whole. */
static void test_line_limit_larger_than_buffer(void **state)
{
    size_t limit = 3 * STREAM_BUFSIZE, len = limit + 5;
    char *input = malloc(len);
    struct mem_src src = {input, len, 0, STREAM_BUFSIZE / 2, 0};
    struct stream *s = stream_open_io(-1, &mem_io, &src, 0);
    const char *line;
    enum stream_eol eol;

    memset(input, 'x', len);
    memcpy(input + limit - 2, "\r\nyy\r\nz", 7);   /* limit-2 bytes, "yy", "z" */
    assert_int_equal(stream_read_line(s, &line, limit, &eol), (ssize_t) (limit - 2));
    assert_int_equal(eol, STREAM_EOL_CRLF);
    assert_int_equal(stream_read_line(s, &line, limit, &eol), 2);
    assert_int_equal(eol, STREAM_EOL_CRLF);
    assert_int_equal(stream_read_line(s, &line, limit, &eol), 1);
    assert_int_equal(eol, STREAM_EOL_NONE);
    stream_close(&s);

    memset(input, 'x', len);    /* limit + 5 bytes, no terminator */
    src = (struct mem_src) {input, len, 0, 0, 1000};
    s = stream_open_io(-1, &mem_io, &src, 0);
    assert_int_equal(stream_read_line(s, &line, limit, &eol), (ssize_t) limit);
    assert_int_equal(eol, STREAM_EOL_LIMIT);
    assert_int_equal(stream_read_line(s, &line, limit, &eol), 5);
    assert_int_equal(eol, STREAM_EOL_NONE);
    stream_close(&s);
    free(input);
}

static void panic_limit_zero(void)
{
    struct mem_src src = {"a\n", 2, 0, 0, 0};
    struct stream *s = stream_open_io(-1, &mem_io, &src, 0);
    const char *line;
    enum stream_eol eol;

    stream_read_line(s, &line, 0, &eol);
}

static void panic_limit_too_big(void)
{
    struct mem_src src = {"a\n", 2, 0, 0, 0};
    struct stream *s = stream_open_io(-1, &mem_io, &src, 0);
    const char *line;
    enum stream_eol eol;

    stream_read_line(s, &line, STREAM_LINE_MAX + 1, &eol);
}

static void test_bad_limits_panic(void **state)
{
    assert_panics(panic_limit_zero);
    assert_panics(panic_limit_too_big);
}

/* ------------------------------------------------------------- clocks */

static void test_read_timeout_silent_peer(void **state)
{
    struct stream *s;
    const char *line;
    enum stream_eol eol;
    int64_t t0, dt;
    int sv[2];
    char buf[64];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    s = stream_fdopen(sv[0], 0);
    stream_set_timeout(s, 150);
    assert_int_equal(write(sv[1], "partial", 7), 7);
    t0 = now_ms();
    /* A partial line and then silence: the data is handed out as NONE. */
    assert_int_equal(stream_read_line(s, &line, 100, &eol), 7);
    assert_int_equal(eol, STREAM_EOL_NONE);
    dt = now_ms() - t0;
    assert_true(dt >= 140 && dt < 2000);
    assert_int_equal(stream_status(s, STREAM_DIR_READ), STREAM_TIMEOUT);
    assert_string_equal(stream_strerror(s, STREAM_DIR_READ), "timeout");

    /* Sticky: later reads fail at once, even when data has arrived or is buffered. */
    assert_int_equal(write(sv[1], "more\r\n", 6), 6);
    t0 = now_ms();
    assert_int_equal(stream_read_line(s, &line, 100, &eol), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(stream_read(s, buf, sizeof(buf)), -1);
    assert_true(now_ms() - t0 < 100);

    /* The write side still works: the server can say 421. */
    assert_int_equal(stream_status(s, STREAM_DIR_WRITE), STREAM_OK);
    assert_int_equal(stream_puts(s, "421 timeout\r\n"), 0);
    assert_int_equal(stream_flush(s), 0);
    assert_int_equal(read(sv[1], buf, sizeof(buf)), 13);
    assert_memory_equal(buf, "421 timeout\r\n", 13);
    assert_int_equal(stream_close(&s), 0);
    close(sv[1]);
}

static void test_wait_timeout_marks_both(void **state)
{
    struct stream *s;
    const char *line;
    enum stream_eol eol;
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    s = stream_fdopen(sv[0], 0);
    stream_set_timeout(s, 100);
    assert_int_equal(write(sv[1], "l1\r\nl2\r\n", 8), 8);
    assert_int_equal(stream_read_line(s, &line, 100, &eol), 2);
    assert_int_equal(stream_pending(s), 4);
    assert_int_equal(stream_wait(s, POLLIN), -1);
    assert_int_equal(stream_status(s, STREAM_DIR_READ), STREAM_TIMEOUT);
    assert_int_equal(stream_status(s, STREAM_DIR_WRITE), STREAM_TIMEOUT);
    assert_int_equal(stream_puts(s, "x"), -1);
    /* The buffered "l2" is not handed out after the timeout. */
    assert_int_equal(stream_read_line(s, &line, 100, &eol), -1);
    stream_close(&s);
    close(sv[1]);
}

/* Child: sends count bytes, one every 50 ms, then CRLF. */
static pid_t start_trickle(int fd, int count)
{
    pid_t pid = fork();
    int i;

    assert_true(pid >= 0);
    if (pid == 0) {
        for (i = 0; i < count; i++) {
            if (write(fd, "x", 1) != 1)
                _exit(1);
            usleep(50 * 1000);
        }
        (void) write(fd, "\r\n", 2);
        _exit(0);
    }
    return pid;
}

static void stop_child(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, 0, 0);
}

static void test_deadline_min_rate(void **state)
{
    struct stream *s;
    const char *line;
    enum stream_eol eol;
    int64_t t0, dt;
    ssize_t n;
    pid_t pid;
    int sv[2];

    /* 20 bytes per second against a 100 bytes/s minimum: cut off. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    s = stream_fdopen(sv[0], 0);
    stream_set_timeout(s, 2000);
    stream_set_deadline(s, 300, 100);
    t0 = now_ms();
    pid = start_trickle(sv[1], 20);
    n = stream_read_line(s, &line, 1000, &eol);
    dt = now_ms() - t0;
    stop_child(pid);
    assert_int_equal(eol, STREAM_EOL_NONE);
    assert_true(n > 0 && n < 20);
    assert_int_equal(stream_status(s, STREAM_DIR_READ), STREAM_TIMEOUT);
    assert_true(dt >= 280 && dt < 1500);
    stream_close(&s);
    close(sv[1]);

    /* The same trickle against a 10 bytes/s minimum earns enough time. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    s = stream_fdopen(sv[0], 0);
    stream_set_timeout(s, 2000);
    stream_set_deadline(s, 300, 10);
    pid = start_trickle(sv[1], 20);
    n = stream_read_line(s, &line, 1000, &eol);
    stop_child(pid);
    assert_int_equal(n, 20);
    assert_int_equal(eol, STREAM_EOL_CRLF);
    assert_int_equal(stream_status(s, STREAM_DIR_READ), STREAM_OK);

    /* Without earning (rate 0) the budget is a hard limit. */
    stream_set_deadline(s, 200, 0);
    pid = start_trickle(sv[1], 20);
    t0 = now_ms();
    n = stream_read_line(s, &line, 1000, &eol);
    dt = now_ms() - t0;
    stop_child(pid);
    assert_int_equal(stream_status(s, STREAM_DIR_READ), STREAM_TIMEOUT);
    assert_true(dt >= 180 && dt < 1000);
    stream_close(&s);
    close(sv[1]);
}

static void test_write_to_peer_that_stops_reading(void **state)
{
    static char chunk[65536];
    struct stream *s;
    int64_t t0;
    size_t total = 0;
    int sv[2], ret = 0;

    memset(chunk, 'm', sizeof(chunk));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    s = stream_fdopen(sv[0], 0);
    stream_set_timeout(s, 200);
    t0 = now_ms();
    while (total < 256u * 1024 * 1024 && (ret = stream_write(s, chunk, sizeof(chunk))) == 0)
        total += sizeof(chunk);
    assert_int_equal(ret, -1);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(stream_status(s, STREAM_DIR_WRITE), STREAM_TIMEOUT);
    assert_int_equal(stream_status(s, STREAM_DIR_READ), STREAM_OK);
    /* Sticky and immediate. */
    t0 = now_ms();
    assert_int_equal(stream_puts(s, "x"), -1);
    assert_int_equal(stream_flush(s), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(now_ms() - t0 < 100);
    assert_int_equal(stream_close(&s), -1);
    assert_int_equal(errno, ETIMEDOUT);
    close(sv[1]);

    /* Same with a pipe, and with a small buffered write that only flush sends. */
    assert_int_equal(pipe(sv), 0);
    s = stream_fdopen(sv[1], 0);
    stream_set_timeout(s, 200);
    for (total = 0; total < 1024 * 1024 && stream_write(s, chunk, 1000) == 0; total += 1000)
        ;
    if (stream_status(s, STREAM_DIR_WRITE) == STREAM_OK)
        assert_int_equal(stream_flush(s), -1);
    assert_int_equal(stream_status(s, STREAM_DIR_WRITE), STREAM_TIMEOUT);
    assert_int_equal(stream_close(&s), -1);
    close(sv[0]);
}

static void test_write_to_closed_peer(void **state)
{
    void (*old)(int);
    struct stream *s;
    int sv[2];

    /* Socket: EPIPE is reported without a SIGPIPE killing us. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    s = stream_fdopen(sv[0], 0);
    assert_int_equal(stream_puts(s, "250 ok\r\n"), 0);
    assert_int_equal(stream_flush(s), -1);
    assert_int_equal(stream_status(s, STREAM_DIR_WRITE), STREAM_ERROR);
    assert_int_equal(stream_errno(s, STREAM_DIR_WRITE), EPIPE);
    assert_string_equal(stream_strerror(s, STREAM_DIR_WRITE), strerror(EPIPE));
    stream_close(&s);

    /* Pipe: the same once SIGPIPE is ignored, as daemons do. */
    old = signal(SIGPIPE, SIG_IGN);
    assert_int_equal(pipe(sv), 0);
    close(sv[0]);
    s = stream_fdopen(sv[1], 0);
    assert_int_equal(stream_puts(s, "x"), 0);
    assert_int_equal(stream_flush(s), -1);
    assert_int_equal(stream_errno(s, STREAM_DIR_WRITE), EPIPE);
    stream_close(&s);
    signal(SIGPIPE, old);
}

/* ------------------------------------------------------ reads, writes */

static void test_read_exact_and_eof(void **state)
{
    struct stream *s;
    char buf[32];
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    s = stream_fdopen(sv[0], 0);
    stream_set_timeout(s, 1000);
    assert_int_equal(write(sv[1], "0123456789", 10), 10);
    assert_int_equal(stream_read_exact(s, buf, 4), 0);
    assert_memory_equal(buf, "0123", 4);
    assert_int_equal(stream_pending(s), 6);
    assert_int_equal(stream_read(s, buf, sizeof(buf)), 6);
    assert_memory_equal(buf, "456789", 6);
    assert_int_equal(stream_read_exact(s, buf, 0), 0);
    /* EOF in the middle of an exact read. */
    assert_int_equal(write(sv[1], "ab", 2), 2);
    close(sv[1]);
    assert_int_equal(stream_read_exact(s, buf, 5), -1);
    assert_int_equal(stream_status(s, STREAM_DIR_READ), STREAM_EOF);
    assert_int_equal(stream_read(s, buf, sizeof(buf)), 0);
    stream_close(&s);
}

/* A client that sends ahead, then STARTTLS with injected plaintext. */
static void test_pending_and_discard(void **state)
{
    static const char input[] = "EHLO x\r\nSTARTTLS\r\nMAIL FROM:<evil>\r\n";
    struct stream *s;
    char peek[64];
    const char *line;
    enum stream_eol eol;
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    s = stream_fdopen(sv[0], 0);
    stream_set_timeout(s, 1000);
    assert_int_equal(stream_input_ready(s), 0);
    assert_int_equal(write(sv[1], input, sizeof(input) - 1), (ssize_t) sizeof(input) - 1);
    assert_int_equal(stream_input_ready(s), 1);         /* in the kernel, not buffered */
    assert_int_equal(stream_pending(s), 0);
    assert_int_equal(stream_read_line(s, &line, 512, &eol), 6);
    assert_int_equal(stream_pending(s), sizeof(input) - 1 - 8);
    assert_int_equal(stream_input_ready(s), 1);
    assert_int_equal(stream_read_line(s, &line, 512, &eol), 8);
    assert_string_equal(line, "STARTTLS");
    /* Peeking (for the log) copies without consuming, the NUL over the line end
     * notwithstanding, and never more than asked. */
    memset(peek, 0, sizeof(peek));
    assert_int_equal(stream_peek_input(s, peek, 4), 4);
    assert_memory_equal(peek, "MAIL", 4);
    assert_int_equal(stream_peek_input(s, peek, sizeof(peek)), strlen("MAIL FROM:<evil>\r\n"));
    assert_memory_equal(peek, "MAIL FROM:<evil>\r\n", strlen("MAIL FROM:<evil>\r\n"));
    assert_int_equal(stream_pending(s), strlen("MAIL FROM:<evil>\r\n"));
    assert_int_equal(stream_discard_input(s), strlen("MAIL FROM:<evil>\r\n"));
    assert_int_equal(stream_peek_input(s, peek, sizeof(peek)), 0);
    assert_int_equal(stream_pending(s), 0);
    assert_int_equal(stream_input_ready(s), 0);
    assert_int_equal(stream_discard_input(s), 0);
    stream_close(&s);
    close(sv[1]);
}

/* A toy layer that XORs every byte: proves all later bytes go through it. */
static ssize_t xor_read(void *ctx, int fd, void *buf, size_t len)
{
    unsigned char *p = buf;
    ssize_t n = read(fd, buf, len), i;

    if (n < 0 && errno == EAGAIN)
        return STREAM_IO_WANT_READ;
    for (i = 0; i < n; i++)
        p[i] ^= *(unsigned char *) ctx;
    return n;
}

static ssize_t xor_write(void *ctx, int fd, const void *buf, size_t len)
{
    unsigned char tmp[256];
    size_t i;
    ssize_t n;

    if (len > sizeof(tmp))
        len = sizeof(tmp);
    for (i = 0; i < len; i++)
        tmp[i] = ((const unsigned char *) buf)[i] ^ *(unsigned char *) ctx;
    n = write(fd, tmp, len);
    if (n < 0 && errno == EAGAIN)
        return STREAM_IO_WANT_WRITE;
    return n;
}

static int xor_closed;

static int xor_close(void *ctx, int fd)
{
    xor_closed++;
    return 0;
}

static const struct stream_io xor_io = {.read = xor_read, .write = xor_write, .close = xor_close};

static void test_set_io_after_discard(void **state)
{
    unsigned char key = 0x55;
    char wire[16];
    struct stream *s;
    const char *line;
    enum stream_eol eol;
    int sv[2], i;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    s = stream_fdopen(sv[0], 0);
    stream_set_timeout(s, 1000);
    assert_int_equal(write(sv[1], "STARTTLS\r\nRSET\r\n", 16), 16);
    assert_int_equal(stream_read_line(s, &line, 512, &eol), 8);
    assert_int_equal(stream_puts(s, "220 go\r\n"), 0);
    assert_int_equal(stream_flush(s), 0);
    assert_int_equal(stream_discard_input(s), 6);
    stream_set_io(s, &xor_io, &key);
    for (i = 0; i < 6; i++)
        wire[i] = (char) ("EHLO\r\n"[i] ^ key);
    assert_int_equal(write(sv[1], wire, 6), 6);
    assert_int_equal(stream_read_line(s, &line, 512, &eol), 4);
    assert_string_equal(line, "EHLO");
    assert_int_equal(stream_puts(s, "250 ok\r\n"), 0);
    assert_int_equal(stream_flush(s), 0);
    assert_int_equal(read(sv[1], wire, sizeof(wire)), 8 + 8);    /* "220 go" plain, then XORed */
    assert_memory_equal(wire, "220 go\r\n", 8);
    for (i = 0; i < 8; i++)
        assert_int_equal(wire[8 + i] ^ key, "250 ok\r\n"[i]);
    xor_closed = 0;
    assert_int_equal(stream_close(&s), 0);
    assert_int_equal(xor_closed, 1);
    close(sv[1]);
}

static void panic_set_io_with_input(void)
{
    unsigned char key = 1;
    struct stream *s;
    const char *line;
    enum stream_eol eol;
    int sv[2];

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    s = stream_fdopen(sv[0], 0);
    stream_set_timeout(s, 1000);
    (void) write(sv[1], "STARTTLS\r\nRSET\r\n", 16);
    stream_read_line(s, &line, 512, &eol);
    stream_set_io(s, &xor_io, &key);        /* "RSET" still buffered */
}

static void panic_set_io_with_output(void)
{
    unsigned char key = 1;
    struct stream *s;
    int sv[2];

    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    s = stream_fdopen(sv[0], 0);
    stream_puts(s, "220 go\r\n");
    stream_set_io(s, &xor_io, &key);
}

static void panic_zero_timeout(void)
{
    struct stream *s = stream_fdopen(0, STREAM_F_NOCLOSE);

    stream_set_timeout(s, 0);
}

static void test_misuse_panics(void **state)
{
    assert_panics(panic_set_io_with_input);
    assert_panics(panic_set_io_with_output);
    assert_panics(panic_zero_timeout);
}

static void test_printf_writev_large(void **state)
{
    static char big[3 * STREAM_BUFSIZE + 7], got[8 * STREAM_BUFSIZE];
    struct iovec iov[3] = {{"a", 1}, {"", 0}, {"bc\r\n", 4}};
    struct stream *s;
    size_t want_len, got_len = 0;
    ssize_t n;
    int p[2];

    memset(big, 'z', sizeof(big) - 1);
    assert_int_equal(pipe(p), 0);
    s = stream_fdopen(p[1], 0);
    stream_set_timeout(s, 1000);
    assert_int_equal(stream_printf(s, "%d %s\r\n", 250, "2.0.0 Ok"), 0);
    assert_int_equal(stream_unflushed(s), 14);
    assert_int_equal(stream_printf(s, "[%s]", big), 0);
    assert_int_equal(stream_writev(s, iov, 3), 0);
    assert_int_equal(stream_write(s, big, sizeof(big) - 1), 0);
    assert_int_equal(stream_close(&s), 0);
    want_len = 14 + 2 + 2 * (sizeof(big) - 1) + 5;
    while ((n = read(p[0], got + got_len, sizeof(got) - got_len)) > 0)
        got_len += (size_t) n;
    close(p[0]);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, "250 2.0.0 Ok\r\n[", 15);
    assert_memory_equal(got + 15, big, sizeof(big) - 1);
    assert_memory_equal(got + 15 + sizeof(big) - 1, "]abc\r\n", 6);
    assert_memory_equal(got + 21 + sizeof(big) - 1, big, sizeof(big) - 1);
}

static void test_regular_file_and_flags(void **state)
{
    char name[] = "test_stream.XXXXXX";
    struct stream *s;
    const char *line;
    enum stream_eol eol;
    int fd;

    assert_true((fd = mkstemp(name)) >= 0);
    s = stream_fdopen(fd, STREAM_F_NOCLOSE);
    assert_int_equal(stream_puts(s, "one\r\ntwo\nthree"), 0);
    assert_int_equal(stream_close(&s), 0);
    /* The descriptor stayed open and got its blocking mode back. */
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    s = stream_fdopen(fd, 0);
    assert_int_equal(stream_read_line(s, &line, 10, &eol), 3);
    assert_int_equal(eol, STREAM_EOL_CRLF);
    assert_int_equal(stream_read_line(s, &line, 10, &eol), 3);
    assert_int_equal(eol, STREAM_EOL_LF);
    assert_int_equal(stream_read_line(s, &line, 10, &eol), 5);
    assert_int_equal(eol, STREAM_EOL_NONE);
    assert_int_equal(stream_read_line(s, &line, 10, &eol), -1);
    assert_int_equal(stream_close(&s), 0);
    assert_int_equal(fcntl(fd, F_GETFD), -1);   /* closed this time */
    unlink(name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_split_at_every_byte),
        cmocka_unit_test(test_lines_over_pipe),
        cmocka_unit_test(test_line_limit_larger_than_buffer),
        cmocka_unit_test(test_bad_limits_panic),
        cmocka_unit_test(test_read_timeout_silent_peer),
        cmocka_unit_test(test_wait_timeout_marks_both),
        cmocka_unit_test(test_deadline_min_rate),
        cmocka_unit_test(test_write_to_peer_that_stops_reading),
        cmocka_unit_test(test_write_to_closed_peer),
        cmocka_unit_test(test_read_exact_and_eof),
        cmocka_unit_test(test_pending_and_discard),
        cmocka_unit_test(test_set_io_after_discard),
        cmocka_unit_test(test_misuse_panics),
        cmocka_unit_test(test_printf_writev_large),
        cmocka_unit_test(test_regular_file_and_flags),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
