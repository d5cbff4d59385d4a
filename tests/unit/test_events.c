/*
 * test_events.c - the event loop: timer order, fd readiness, removal inside
 * callbacks, signals as events. Every wait is bounded by events_run_once's timeout.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "events.h"

#define LOG_MAX 32

struct log {
    int seen[LOG_MAX];
    int n;
};

struct tctx {
    struct log *log;
    int tag;
};

static void log_add(struct log *log, int tag)
{
    assert_true(log->n < LOG_MAX);
    log->seen[log->n++] = tag;
}

static void timer_log(struct events *ev, void *ctx)
{
    struct tctx *t = ctx;

    log_add(t->log, t->tag);
}

/* Runs the loop until want callbacks were logged, at most ~2 s. */
static void run_until(struct events *ev, struct log *log, int want)
{
    int i;

    for (i = 0; i < 200 && log->n < want; i++)
        events_run_once(ev, 10);
}

static void test_timers_fire_in_deadline_then_insertion_order(void **state)
{
    static const struct {
        long long delay;
        int tag;
    } table[] = {{30, 3}, {0, 1}, {10, 2}, {30, 4}, {0, 5}};
    static const int want[] = {1, 5, 2, 3, 4};
    struct events *ev = events_new();
    struct tctx ctx[5];
    struct log log = {{0}, 0};
    size_t i;

    assert_non_null(ev);
    for (i = 0; i < 5; i++) {
        ctx[i].log = &log;
        ctx[i].tag = table[i].tag;
        assert_true(events_timer_add(ev, table[i].delay, timer_log, &ctx[i]) != 0);
    }
    run_until(ev, &log, 5);
    assert_int_equal(log.n, 5);
    for (i = 0; i < 5; i++)
        assert_int_equal(log.seen[i], want[i]);
    events_free(&ev);
    assert_null(ev);
}

static void test_timer_does_not_fire_early(void **state)
{
    struct events *ev = events_new();
    struct log log = {{0}, 0};
    struct tctx t = {&log, 7};
    long long start = events_now_ms(ev);

    events_timer_add(ev, 50, timer_log, &t);
    run_until(ev, &log, 1);
    assert_int_equal(log.n, 1);
    assert_true(events_now_ms(ev) - start >= 50);
    events_free(&ev);
}

static void test_timer_cancel(void **state)
{
    struct events *ev = events_new();
    struct log log = {{0}, 0};
    struct tctx a = {&log, 1}, b = {&log, 2};
    events_timer_id ida;

    ida = events_timer_add(ev, 0, timer_log, &a);
    events_timer_add(ev, 5, timer_log, &b);
    assert_int_equal(events_timer_cancel(ev, ida), 0);
    assert_int_equal(events_timer_cancel(ev, ida), -1);
    assert_int_equal(events_timer_cancel(ev, 0), -1);
    run_until(ev, &log, 1);
    events_run_once(ev, 20);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.seen[0], 2);
    events_free(&ev);
}

/* A zero-delay timer that re-adds itself runs once per pass, never spins inside one. */
static void timer_readd(struct events *ev, void *ctx)
{
    struct tctx *t = ctx;

    log_add(t->log, t->tag);
    if (t->log->n < 3)
        events_timer_add(ev, 0, timer_readd, ctx);
}

static void test_timer_added_in_callback_waits_for_next_pass(void **state)
{
    struct events *ev = events_new();
    struct log log = {{0}, 0};
    struct tctx t = {&log, 9};

    events_timer_add(ev, 0, timer_readd, &t);
    events_run_once(ev, 0);
    assert_int_equal(log.n, 1);
    events_run_once(ev, 0);
    assert_int_equal(log.n, 2);
    events_free(&ev);
}

static void fd_log(struct events *ev, int fd, int mask, void *ctx)
{
    struct tctx *t = ctx;
    char buf[16];

    log_add(t->log, t->tag * 10 + mask);
    if (mask & EVENTS_READ)
        (void) !read(fd, buf, sizeof(buf));
}

static void test_fd_readiness_read_and_write(void **state)
{
    struct events *ev = events_new();
    struct log log = {{0}, 0};
    struct tctx r = {&log, 1}, w = {&log, 2};
    int p[2];

    assert_int_equal(pipe(p), 0);
    assert_int_equal(events_fd_add(ev, p[0], EVENTS_READ, fd_log, &r), 0);
    events_run_once(ev, 20);
    assert_int_equal(log.n, 0);                /* nothing written: not readable */
    assert_int_equal(events_fd_add(ev, p[1], EVENTS_WRITE, fd_log, &w), 0);
    events_run_once(ev, 20);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.seen[0], 2 * 10 + EVENTS_WRITE);
    events_fd_del(ev, p[1]);
    assert_int_equal(write(p[1], "x", 1), 1);
    events_run_once(ev, 20);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.seen[1], 1 * 10 + EVENTS_READ);
    close(p[1]);                               /* hang-up is reported with READ */
    events_run_once(ev, 20);
    assert_int_equal(log.n, 3);
    assert_true(log.seen[2] & EVENTS_ERROR);
    events_fd_del(ev, p[0]);
    close(p[0]);
    assert_int_equal(events_fd_add(ev, -1, EVENTS_READ, fd_log, &r), -1);
    events_free(&ev);
}

/* Two ready fds; the first callback removes the second: it must not be called. */
struct pair {
    struct log *log;
    int other;
};

static void fd_remove_other(struct events *ev, int fd, int mask, void *ctx)
{
    struct pair *p = ctx;
    char buf[4];

    (void) !read(fd, buf, sizeof(buf));
    log_add(p->log, fd);
    events_fd_del(ev, p->other);
    events_fd_del(ev, fd);
}

static void test_removal_inside_callback(void **state)
{
    struct events *ev = events_new();
    struct log log = {{0}, 0};
    struct pair pa, pb;
    int a[2], b[2];

    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    pa.log = pb.log = &log;
    pa.other = b[0];
    pb.other = a[0];
    events_fd_add(ev, a[0], EVENTS_READ, fd_remove_other, &pa);
    events_fd_add(ev, b[0], EVENTS_READ, fd_remove_other, &pb);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    events_run_once(ev, 50);
    assert_int_equal(log.n, 1);
    events_run_once(ev, 20);
    assert_int_equal(log.n, 1);
    close(a[0]); close(a[1]); close(b[0]); close(b[1]);
    events_free(&ev);
}

/* Replacing a watch inside a callback: the new callback sees only new events. */
struct repl {
    struct log *log;
    int other;
    struct tctx newctx;
};

static void fd_replace(struct events *ev, int fd, int mask, void *ctx)
{
    struct repl *r = ctx;
    char buf[4];

    if (fd != r->other)                         /* b keeps its byte for the next pass */
        (void) !read(fd, buf, sizeof(buf));
    log_add(r->log, 100);
    events_fd_del(ev, r->other);
    events_fd_add(ev, r->other, EVENTS_READ, fd_log, &r->newctx);
}

static void test_replace_inside_callback_filters_stale_event(void **state)
{
    struct events *ev = events_new();
    struct log log = {{0}, 0};
    struct repl r;
    int a[2], b[2];

    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    r.log = &log;
    r.other = b[0];
    r.newctx.log = &log;
    r.newctx.tag = 5;
    events_fd_add(ev, a[0], EVENTS_READ, fd_replace, &r);
    events_fd_add(ev, b[0], EVENTS_READ, fd_replace, &r);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    events_run_once(ev, 50);
    /* Whichever ran first replaced b's watch; b's pending event belonged to the old
     * registration, so the new callback (fd_log) must not see it in this pass. */
    assert_true(log.n >= 1 && log.n <= 2);
    assert_int_equal(log.seen[0], 100);
    if (log.n == 2)
        assert_int_equal(log.seen[1], 100);
    events_run_once(ev, 50);                   /* b still readable: new callback now */
    assert_int_equal(log.seen[log.n - 1], 5 * 10 + EVENTS_READ);
    close(a[0]); close(a[1]); close(b[0]); close(b[1]);
    events_free(&ev);
}

static void sig_log(struct events *ev, int signo, void *ctx)
{
    log_add(ctx, signo);
    events_stop(ev);
}

static void test_signal_is_an_event(void **state)
{
    struct events *ev = events_new();
    struct log log = {{0}, 0};
    sigset_t cur;

    assert_int_equal(events_signal_add(ev, SIGUSR1, sig_log, &log), 0);
    assert_int_equal(events_signal_add(ev, 0, sig_log, &log), -1);
    raise(SIGUSR1);
    run_until(ev, &log, 1);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.seen[0], SIGUSR1);
    events_free(&ev);
    sigprocmask(SIG_BLOCK, NULL, &cur);
    assert_false(sigismember(&cur, SIGUSR1));  /* mask restored */
}

static void test_stop_ends_run(void **state)
{
    struct events *ev = events_new();
    struct log log = {{0}, 0};

    assert_int_equal(events_signal_add(ev, SIGUSR2, sig_log, &log), 0);
    kill(getpid(), SIGUSR2);
    events_run(ev);                             /* returns through events_stop */
    assert_int_equal(log.n, 1);
    events_free(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_fire_in_deadline_then_insertion_order),
        cmocka_unit_test(test_timer_does_not_fire_early),
        cmocka_unit_test(test_timer_cancel),
        cmocka_unit_test(test_timer_added_in_callback_waits_for_next_pass),
        cmocka_unit_test(test_fd_readiness_read_and_write),
        cmocka_unit_test(test_removal_inside_callback),
        cmocka_unit_test(test_replace_inside_callback_filters_stale_event),
        cmocka_unit_test(test_signal_is_an_event),
        cmocka_unit_test(test_stop_ends_run),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
