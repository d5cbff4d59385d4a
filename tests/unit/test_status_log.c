/*
 * test_status_log.c - the defer/bounce/trace logs: a record survives format
 * and parse with every kind of value (spaces, "+", "=", 8-bit, empty fields);
 * control characters come back as spaces, never as CR or LF; a long reason is
 * cut so the line fits STATUS_LOG_MAX_LINE and still parses; malformed lines
 * (missing or repeated fields, bad xtext, escapes to control characters, bad
 * numbers, status or action) are refused and unknown fields are skipped; logs
 * appended in flat and hashed queues read back in order with the bytes on
 * disk as documented; a torn last line, a garbage line and an overlong line
 * are skipped while the rest is read; a missing log reads as empty and
 * removes without error; symlinks are refused; a walk stops when asked;
 * an unknown log name panics.
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
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "msg.h"
#include "qid.h"
#include "queue_path.h"
#include "status_log.h"
#include "strbuf.h"

struct fixture {
    char dir[64];
    int dirfd;
    char qid[QID_BUFSIZE];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct timeval tv = {1700000000, 123456};

    strcpy(f->dir, "test_status_log.XXXXXX");
    if (mkdtemp(f->dir) == 0 || (f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY)) < 0
        || mkdirat(f->dirfd, "defer", 0700) < 0 || mkdirat(f->dirfd, "bounce", 0700) < 0
        || mkdirat(f->dirfd, "trace", 0700) < 0 || qid_format(f->qid, &tv, 4242) < 0)
        return -1;
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    close(f->dirfd);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static struct status_entry entry(const char *rcpt, const char *reason)
{
    struct status_entry e = {
        .time = 1700000001,
        .recipient = rcpt,
        .orig_rcpt = "",
        .dsn_orcpt = "",
        .notify = 0,
        .offset = 123,
        .status = "5.1.1",
        .action = "failed",
        .relay = "local",
        .reason = reason,
    };
    return e;
}

static void assert_same(const struct status_entry *got, const struct status_entry *want)
{
    assert_int_equal(got->time, want->time);
    assert_string_equal(got->recipient, want->recipient);
    assert_string_equal(got->orig_rcpt, want->orig_rcpt);
    assert_string_equal(got->dsn_orcpt, want->dsn_orcpt);
    assert_int_equal(got->notify, want->notify);
    assert_int_equal(got->offset, want->offset);
    assert_string_equal(got->status, want->status);
    assert_string_equal(got->action, want->action);
    assert_string_equal(got->relay, want->relay);
    assert_string_equal(got->reason, want->reason);
}

static int parse_str(const char *line, struct status_entry *e, struct strbuf *scratch)
{
    return status_log_parse(line, strlen(line), e, scratch);
}

static void test_round_trip(void **state)
{
    static const struct status_entry cases[] = {
        {1, "user@example.com", "", "", 0, 0, "2.0.0", "delivered", "local", "delivered to maildir"},
        {1700000000, "\"odd user\"@example.com", "alias@example.com", "rfc822;a+b=c@x.example",
         15, 9223372036854775807LL, "4.4.1", "delayed", "mx.example.com[192.0.2.1]:25",
         "connect to mx.example.com[192.0.2.1]:25: Connection refused"},
        {0, "u\xc3\xa9@example.com", "", "", 2, 1, "5.7.1", "relayed", "none",
         "550 5.7.1 <u@x>: Recipient address rejected: 100% = sure + more"},
        {5, "x@y", "", "", 4, 77, "5.0.0", "expanded", "", ""},
        {5, "x@y", "", "", 8, 77, "2.1.5", "failed", "", "=+=+ ++ =="},
    };
    struct strbuf line, scratch;
    struct status_entry got;
    size_t i;

    (void) state;
    strbuf_init(&line, 16, 0);
    strbuf_init(&scratch, 16, 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        status_log_format(&cases[i], &line);
        assert_null(memchr(line.data, '\n', line.len));
        assert_int_equal(parse_str(line.data, &got, &scratch), 0);
        assert_same(&got, &cases[i]);
    }
    strbuf_release(&line);
    strbuf_release(&scratch);
}

static void test_bytes_of_a_line(void **state)
{
    struct status_entry e = entry("a b@example.com", "no such user: a+b=c");
    struct strbuf line;

    (void) state;
    strbuf_init(&line, 16, 0);
    e.orig_rcpt = "o@example.com";
    e.notify = 6;
    status_log_format(&e, &line);
    assert_string_equal(line.data,
                        "time=1700000001 recipient=a+20b@example.com orig_rcpt=o@example.com "
                        "dsn_orcpt= notify=6 offset=123 status=5.1.1 action=failed relay=local "
                        "reason=no+20such+20user:+20a+2Bb+3Dc");
    strbuf_release(&line);
}

static void test_control_characters_become_spaces(void **state)
{
    struct status_entry e = entry("x@y", "line one\r\nBcc: forged\tend\x7f");
    struct strbuf line, scratch;
    struct status_entry got;

    (void) state;
    strbuf_init(&line, 16, 0);
    strbuf_init(&scratch, 16, 0);
    status_log_format(&e, &line);
    assert_int_equal(parse_str(line.data, &got, &scratch), 0);
    assert_string_equal(got.reason, "line one  Bcc: forged end ");
    strbuf_release(&line);
    strbuf_release(&scratch);
}

static void test_long_reason_is_cut(void **state)
{
    struct strbuf line, scratch, reason;
    struct status_entry e, got;
    size_t n;

    (void) state;
    strbuf_init(&line, 16, 0);
    strbuf_init(&scratch, 16, 0);
    strbuf_init(&reason, 16, 0);
    /* Each length puts the cut at a different place in a "+HH" escape. */
    for (n = STATUS_LOG_MAX_LINE - 200; n < STATUS_LOG_MAX_LINE + 50; n++) {
        strbuf_reset(&reason);
        while (reason.len < n)
            strbuf_puts(&reason, reason.len % 3 ? "a" : " ");
        e = entry("x@y", reason.data);
        status_log_format(&e, &line);
        assert_true(line.len <= STATUS_LOG_MAX_LINE - 1);
        assert_int_equal(parse_str(line.data, &got, &scratch), 0);
        assert_true(strlen(got.reason) <= n);
        assert_memory_equal(got.reason, reason.data, strlen(got.reason));
    }
    /* Short reasons are never cut. */
    e = entry("x@y", "short");
    status_log_format(&e, &line);
    assert_int_equal(parse_str(line.data, &got, &scratch), 0);
    assert_string_equal(got.reason, "short");
    strbuf_release(&line);
    strbuf_release(&scratch);
    strbuf_release(&reason);
}

static void test_line_limit(void **state)
{
    struct strbuf line, scratch;
    struct status_entry e = entry("x@y", "r"), got;

    (void) state;
    strbuf_init(&line, 16, 0);
    strbuf_init(&scratch, 16, 0);
    status_log_format(&e, &line);
    /* Pad with an unknown field up to the limit: MAX_LINE - 1 bytes parse... */
    strbuf_puts(&line, " x_pad=");
    while (line.len < STATUS_LOG_MAX_LINE - 1)
        strbuf_putc(&line, 'p');
    assert_int_equal(status_log_parse(line.data, line.len, &got, &scratch), 0);
    assert_string_equal(got.reason, "r");
    /* ... one more does not. */
    strbuf_putc(&line, 'p');
    assert_int_equal(status_log_parse(line.data, line.len, &got, &scratch), -1);
    strbuf_release(&line);
    strbuf_release(&scratch);
}

static void test_malformed_lines(void **state)
{
    static const char *const good =
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed reason=r";
    static const char *const bad[] = {
        "",
        "garbage",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed",     /* no reason */
        "time=1 offset=2 status=5.1.1 action=failed reason=r",          /* no recipient */
        "recipient=x@y offset=2 status=5.1.1 action=failed reason=r",   /* no time */
        "time=1 recipient=x@y status=5.1.1 action=failed reason=r",     /* no offset */
        "time=1 recipient=x@y offset=2 action=failed reason=r",         /* no status */
        "time=1 recipient=x@y offset=2 status=5.1.1 reason=r",          /* no action */
        "time=1 recipient= offset=2 status=5.1.1 action=failed reason=r",
        "time=1 recipient=x@y recipient=z@y offset=2 status=5.1.1 action=failed reason=r",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed reason=r reason=s",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed reason=a+0Ab",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed reason=a+0Db",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed reason=a+00b",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed reason=a+4",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed reason=a+4g",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed reason=a+4a",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed reason=a=b",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed reason=\x80",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed reason=r =v",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=failed reason=r novalue",
        "time=-1 recipient=x@y offset=2 status=5.1.1 action=failed reason=r",
        "time=1x recipient=x@y offset=2 status=5.1.1 action=failed reason=r",
        "time= recipient=x@y offset=2 status=5.1.1 action=failed reason=r",
        "time=99999999999999999999 recipient=x@y offset=2 status=5.1.1 action=failed reason=r",
        "time=1 recipient=x@y offset=9223372036854775808 status=5.1.1 action=failed reason=r",
        "time=1 recipient=x@y offset=2 notify=16 status=5.1.1 action=failed reason=r",
        "time=1 recipient=x@y offset=2 status=3.1.1 action=failed reason=r",
        "time=1 recipient=x@y offset=2 status=5.1 action=failed reason=r",
        "time=1 recipient=x@y offset=2 status=5.1.1234 action=failed reason=r",
        "time=1 recipient=x@y offset=2 status=5..1 action=failed reason=r",
        "time=1 recipient=x@y offset=2 status=5.1.1x action=failed reason=r",
        "time=1 recipient=x@y offset=2 status=5.1.1 action=bounced reason=r",
        "time=1 recipient=x@y offset=2 status=5.1.1 action= reason=r",
    };
    struct strbuf scratch;
    struct status_entry got;
    size_t i;

    (void) state;
    strbuf_init(&scratch, 16, 0);
    assert_int_equal(parse_str(good, &got, &scratch), 0);
    assert_string_equal(got.orig_rcpt, "");
    assert_string_equal(got.relay, "");
    assert_int_equal(got.notify, 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse_str(bad[i], &got, &scratch) != -1)
            fail_msg("accepted: \"%s\"", bad[i]);
    /* Unknown fields and extra blanks are skipped. */
    assert_int_equal(parse_str("  future=+41  time=1 recipient=x@y offset=2 status=5.1.1 "
                               "action=failed  reason=r  later=1 ", &got, &scratch), 0);
    assert_string_equal(got.recipient, "x@y");
    assert_string_equal(got.reason, "r");
    /* A line is given by length: bytes after it are not read. */
    assert_int_equal(status_log_parse(good, strlen(good) - 1, &got, &scratch), 0);
    assert_string_equal(got.reason, "");
    strbuf_release(&scratch);
}

struct collect {
    int count;
    int stop_after;
    char rcpt[64][64];
    char reason[64][64];
};

static int collect_fn(const struct status_entry *e, void *ctx)
{
    struct collect *c = ctx;

    if (c->count < 64) {
        snprintf(c->rcpt[c->count], sizeof(c->rcpt[0]), "%s", e->recipient);
        snprintf(c->reason[c->count], sizeof(c->reason[0]), "%s", e->reason);
    }
    c->count++;
    return c->stop_after && c->count >= c->stop_after;
}

static void append_ok(struct fixture *f, const char *log, int depth, const char *rcpt,
                      const char *reason)
{
    struct status_entry e = entry(rcpt, reason);
    struct strbuf why;

    strbuf_init(&why, 16, 0);
    if (status_log_append(f->dirfd, log, f->qid, depth, &e, &why) != 0)
        fail_msg("append: %s", why.data);
    strbuf_release(&why);
}

static void test_append_read_remove(void **state)
{
    struct fixture *f = *state;
    struct strbuf why, path, expect, got;
    struct collect c;
    struct stat st;
    struct status_entry e;
    int depth;

    strbuf_init(&why, 16, 0);
    strbuf_init(&path, 16, 0);
    strbuf_init(&expect, 16, 0);
    strbuf_init(&got, 16, 0);
    for (depth = 0; depth <= 2; depth += 2) {
        memset(&c, 0, sizeof(c));
        assert_int_equal(status_log_read(f->dirfd, STATUS_LOG_DEFER, f->qid, depth, collect_fn,
                                         &c, &why), 0);
        append_ok(f, STATUS_LOG_DEFER, depth, "one@example.com", "first");
        append_ok(f, STATUS_LOG_DEFER, depth, "two@example.com", "second reason");
        append_ok(f, STATUS_LOG_DEFER, depth, "one@example.com", "third");
        assert_int_equal(status_log_read(f->dirfd, STATUS_LOG_DEFER, f->qid, depth, collect_fn,
                                         &c, &why), 3);
        assert_int_equal(c.count, 3);
        assert_string_equal(c.rcpt[0], "one@example.com");
        assert_string_equal(c.reason[1], "second reason");
        assert_string_equal(c.reason[2], "third");

        /* On disk: the documented path and mode, one formatted line per record. */
        queue_path(&path, STATUS_LOG_DEFER, f->qid, depth);
        assert_int_equal(fstatat(f->dirfd, path.data, &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        strbuf_reset(&expect);
        e = entry("one@example.com", "first");
        status_log_format(&e, &got);
        strbuf_printf(&expect, "%s\n", got.data);
        e = entry("two@example.com", "second reason");
        status_log_format(&e, &got);
        strbuf_printf(&expect, "%s\n", got.data);
        e = entry("one@example.com", "third");
        status_log_format(&e, &got);
        strbuf_printf(&expect, "%s\n", got.data);
        {
            char buf[4096];
            int fd = openat(f->dirfd, path.data, O_RDONLY);
            ssize_t n = read(fd, buf, sizeof(buf));

            close(fd);
            assert_int_equal(n, (ssize_t) expect.len);
            assert_memory_equal(buf, expect.data, expect.len);
        }
        /* Other logs of the same message are separate files. */
        memset(&c, 0, sizeof(c));
        assert_int_equal(status_log_read(f->dirfd, STATUS_LOG_BOUNCE, f->qid, depth, collect_fn,
                                         &c, &why), 0);
        assert_int_equal(status_log_remove(f->dirfd, STATUS_LOG_DEFER, f->qid, depth, &why), 0);
        assert_int_equal(fstatat(f->dirfd, path.data, &st, 0), -1);
        assert_int_equal(errno, ENOENT);
        assert_int_equal(status_log_remove(f->dirfd, STATUS_LOG_DEFER, f->qid, depth, &why), 0);
        memset(&c, 0, sizeof(c));
        assert_int_equal(status_log_read(f->dirfd, STATUS_LOG_DEFER, f->qid, depth, collect_fn,
                                         &c, &why), 0);
    }
    /* Bucket directories take the log directory's mode. */
    queue_path_dir(&path, STATUS_LOG_DEFER, f->qid, 2);
    assert_int_equal(fstatat(f->dirfd, path.data, &st, 0), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    strbuf_release(&why);
    strbuf_release(&path);
    strbuf_release(&expect);
    strbuf_release(&got);
}

static void append_raw(struct fixture *f, const char *log, const char *data, size_t len)
{
    struct strbuf path;
    int fd;

    strbuf_init(&path, 16, 0);
    queue_path(&path, log, f->qid, 0);
    fd = openat(f->dirfd, path.data, O_WRONLY | O_APPEND | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t) len);
    close(fd);
    strbuf_release(&path);
}

static void test_damaged_log(void **state)
{
    struct fixture *f = *state;
    static const char torn[] =
        "time=1 recipient=torn@x offset=2 status=5.1.1 action=failed reason=cut";
    struct strbuf why, big;
    struct collect c;

    msg_use_stderr(0);
    strbuf_init(&why, 16, 0);
    strbuf_init(&big, 16, 0);
    append_ok(f, STATUS_LOG_BOUNCE, 0, "a@x", "one");
    append_raw(f, STATUS_LOG_BOUNCE, "complete garbage\n\n", 18);
    append_ok(f, STATUS_LOG_BOUNCE, 0, "b@x", "two");
    /* A line over the limit, then a good one right after it. */
    strbuf_puts(&big, "time=1 recipient=big@x offset=2 status=5.1.1 action=failed reason=");
    while (big.len < 3 * STATUS_LOG_MAX_LINE)
        strbuf_putc(&big, 'z');
    strbuf_putc(&big, '\n');
    append_raw(f, STATUS_LOG_BOUNCE, big.data, big.len);
    append_ok(f, STATUS_LOG_BOUNCE, 0, "c@x", "three");
    /* The torn last record of a crash. */
    append_raw(f, STATUS_LOG_BOUNCE, torn, strlen(torn));
    memset(&c, 0, sizeof(c));
    assert_int_equal(status_log_read(f->dirfd, STATUS_LOG_BOUNCE, f->qid, 0, collect_fn, &c,
                                     &why), 3);
    assert_int_equal(c.count, 3);
    assert_string_equal(c.rcpt[0], "a@x");
    assert_string_equal(c.rcpt[1], "b@x");
    assert_string_equal(c.rcpt[2], "c@x");
    /* The next append starts on a line of its own, so the torn record does not
     * swallow it; the torn record itself is then a whole line and is read. */
    append_ok(f, STATUS_LOG_BOUNCE, 0, "d@x", "four");
    memset(&c, 0, sizeof(c));
    assert_int_equal(status_log_read(f->dirfd, STATUS_LOG_BOUNCE, f->qid, 0, collect_fn, &c,
                                     &why), 5);
    assert_string_equal(c.rcpt[3], "torn@x");
    assert_string_equal(c.reason[3], "cut");
    assert_string_equal(c.rcpt[4], "d@x");
    assert_string_equal(c.reason[4], "four");
    strbuf_release(&why);
    strbuf_release(&big);
}

static void test_lines_across_read_chunks(void **state)
{
    struct fixture *f = *state;
    struct strbuf why, reason;
    struct collect c;
    int i;

    strbuf_init(&why, 16, 0);
    strbuf_init(&reason, 16, 0);
    /* Varying lengths put line ends on every position around the 64 KiB reads. */
    for (i = 0; i < 300; i++) {
        strbuf_reset(&reason);
        while (reason.len < (size_t) (200 + i * 7))
            strbuf_putc(&reason, 'a' + i % 26);
        append_ok(f, STATUS_LOG_TRACE, 0, "r@x", reason.data);
    }
    memset(&c, 0, sizeof(c));
    assert_int_equal(status_log_read(f->dirfd, STATUS_LOG_TRACE, f->qid, 0, collect_fn, &c,
                                     &why), 300);
    assert_int_equal(c.count, 300);
    /* A walk stops when the callback says so. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 7;
    assert_int_equal(status_log_read(f->dirfd, STATUS_LOG_TRACE, f->qid, 0, collect_fn, &c,
                                     &why), 7);
    assert_int_equal(c.count, 7);
    strbuf_release(&why);
    strbuf_release(&reason);
}

static void test_symlink_refused(void **state)
{
    struct fixture *f = *state;
    struct strbuf why, path;
    struct status_entry e = entry("a@x", "r");
    struct collect c;
    char buf[64];

    strbuf_init(&why, 16, 0);
    strbuf_init(&path, 16, 0);
    queue_path(&path, STATUS_LOG_DEFER, f->qid, 0);
    assert_int_equal(symlinkat("../victim", f->dirfd, path.data), 0);
    assert_int_equal(status_log_append(f->dirfd, STATUS_LOG_DEFER, f->qid, 0, &e, &why), -1);
    assert_true(why.len > 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(status_log_read(f->dirfd, STATUS_LOG_DEFER, f->qid, 0, collect_fn, &c,
                                     &why), -1);
    /* The target was never created. */
    snprintf(buf, sizeof(buf), "victim");
    assert_int_equal(faccessat(f->dirfd, buf, F_OK, 0), -1);
    strbuf_release(&why);
    strbuf_release(&path);
}

static void test_missing_directory_fails(void **state)
{
    struct fixture *f = *state;
    struct strbuf why;
    struct status_entry e = entry("a@x", "r");

    strbuf_init(&why, 16, 0);
    assert_int_equal(unlinkat(f->dirfd, "trace", AT_REMOVEDIR), 0);
    assert_int_equal(status_log_append(f->dirfd, STATUS_LOG_TRACE, f->qid, 1, &e, &why), -1);
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(why.data, "trace"));
    strbuf_release(&why);
}

static void test_unknown_log_panics(void **state)
{
    int status;
    pid_t pid;

    (void) state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);

        dup2(devnull, 2);
        (void) status_log_remove(AT_FDCWD, "active", "4SVLCh0sf88mYg", 0, 0);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bytes_of_a_line),
        cmocka_unit_test(test_control_characters_become_spaces),
        cmocka_unit_test(test_long_reason_is_cut),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test_setup_teardown(test_append_read_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines_across_read_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_directory_fails, setup, teardown),
        cmocka_unit_test(test_unknown_log_panics),
    };

    msg_init("test_status_log");
    return cmocka_run_group_tests(tests, 0, 0);
}
