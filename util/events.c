/*
 * events.c - epoll readiness, a timer heap and signalfd signals in one loop.
 * See events.h for the contract. Stale events are filtered with a registration
 * generation carried in the epoll data, so removing (or replacing) a watch inside a
 * callback never lets an event of the old registration reach the new callback.
 * Must never call a callback after its removal, or run timers added during the
 * current timer pass (a zero-delay timer re-adding itself would spin forever).
 * Failure: creation calls return -1/NULL with errno; an impossible epoll state panics.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "msg.h"
#include "mymalloc.h"

#define EVENTS_BATCH 64             /* ready fds taken per epoll_wait */
#define EVENTS_SIG_BATCH 16         /* signal records read per wakeup */

struct events_fd {
    events_fd_fn fn;                /* NULL: not watched */
    void *ctx;
    int mask;
    uint32_t gen;
};

struct events_timer {
    long long when;                 /* monotonic ms */
    events_timer_id id;             /* increasing: ties run in insertion order */
    events_timer_fn fn;
    void *ctx;
};

struct events_sig {
    events_signal_fn fn;
    void *ctx;
};

struct events {
    int epfd;
    int sigfd;                      /* -1 until the first events_signal_add */
    sigset_t sigmask;               /* signals routed to sigfd */
    sigset_t saved_mask;            /* the process mask before we blocked anything */
    struct events_fd *fds;
    size_t nfds;
    uint32_t next_gen;
    struct events_timer *timers;    /* binary min-heap on (when, id) */
    size_t ntimers, timer_cap;
    events_timer_id next_timer;
    struct events_sig sigs[NSIG];
    long long now_ms;
    time_t now;
    int stop;
};

/* Every signal any loop blocked; a child unblocks them before exec. */
static sigset_t events_blocked_all;
static int events_blocked_init;

static void events_update_now(struct events *ev)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        msg_panic("events: clock_gettime: %m");
    ev->now_ms = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    ev->now = time(NULL);
}

struct events *events_new(void)
{
    struct events *ev = xcalloc(1, sizeof(*ev));

    ev->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (ev->epfd < 0) {
        free(ev);
        return NULL;
    }
    ev->sigfd = -1;
    sigemptyset(&ev->sigmask);
    sigprocmask(SIG_BLOCK, NULL, &ev->saved_mask);
    ev->next_gen = 1;
    ev->next_timer = 1;
    events_update_now(ev);
    return ev;
}

void events_free(struct events **evp)
{
    struct events *ev = *evp;

    if (ev == NULL)
        return;
    close(ev->epfd);
    if (ev->sigfd >= 0) {
        close(ev->sigfd);
        sigprocmask(SIG_SETMASK, &ev->saved_mask, NULL);
    }
    free(ev->fds);
    free(ev->timers);
    free(ev);
    *evp = NULL;
}

static uint32_t events_epoll_mask(int mask)
{
    return ((mask & EVENTS_READ) ? EPOLLIN | EPOLLRDHUP : 0) | ((mask & EVENTS_WRITE) ? EPOLLOUT : 0);
}

int events_fd_add(struct events *ev, int fd, int mask, events_fd_fn fn, void *ctx)
{
    struct epoll_event ee;
    struct events_fd *ef;
    int op;

    if (fd < 0 || fn == NULL || (mask & (EVENTS_READ | EVENTS_WRITE)) == 0) {
        errno = EINVAL;
        return -1;
    }
    if ((size_t) fd >= ev->nfds) {
        size_t n = (size_t) fd + 16;

        ev->fds = xreallocarray(ev->fds, n, sizeof(*ev->fds));
        memset(ev->fds + ev->nfds, 0, (n - ev->nfds) * sizeof(*ev->fds));
        ev->nfds = n;
    }
    ef = ev->fds + fd;
    op = ef->fn ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (op == EPOLL_CTL_ADD)
        ef->gen = ev->next_gen++;
    memset(&ee, 0, sizeof(ee));
    ee.events = events_epoll_mask(mask);
    ee.data.u64 = (uint64_t) (unsigned) fd | ((uint64_t) ef->gen << 32);
    if (epoll_ctl(ev->epfd, op, fd, &ee) < 0) {
        if (op == EPOLL_CTL_ADD)
            ef->fn = NULL;
        return -1;
    }
    ef->fn = fn;
    ef->ctx = ctx;
    ef->mask = mask;
    return 0;
}

void events_fd_del(struct events *ev, int fd)
{
    if (fd < 0 || (size_t) fd >= ev->nfds || ev->fds[fd].fn == NULL)
        return;
    /* The fd may already be closed by a careless caller; the kernel then dropped it. */
    (void) epoll_ctl(ev->epfd, EPOLL_CTL_DEL, fd, NULL);
    ev->fds[fd].fn = NULL;
    ev->fds[fd].ctx = NULL;
}

/* Heap order: earlier deadline first, then earlier id. */
static int events_timer_before(const struct events_timer *a, const struct events_timer *b)
{
    return a->when < b->when || (a->when == b->when && a->id < b->id);
}

static void events_timer_swap(struct events *ev, size_t i, size_t j)
{
    struct events_timer t = ev->timers[i];

    ev->timers[i] = ev->timers[j];
    ev->timers[j] = t;
}

static void events_heap_up(struct events *ev, size_t i)
{
    while (i > 0 && events_timer_before(&ev->timers[i], &ev->timers[(i - 1) / 2])) {
        events_timer_swap(ev, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void events_heap_down(struct events *ev, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < ev->ntimers && events_timer_before(&ev->timers[l], &ev->timers[m]))
            m = l;
        if (r < ev->ntimers && events_timer_before(&ev->timers[r], &ev->timers[m]))
            m = r;
        if (m == i)
            return;
        events_timer_swap(ev, i, m);
        i = m;
    }
}

static void events_heap_remove(struct events *ev, size_t i)
{
    ev->ntimers--;
    if (i == ev->ntimers)
        return;
    ev->timers[i] = ev->timers[ev->ntimers];
    events_heap_up(ev, i);
    events_heap_down(ev, i);
}

events_timer_id events_timer_add(struct events *ev, long long delay_ms,
                                 events_timer_fn fn, void *ctx)
{
    struct events_timer *t;

    if (fn == NULL)
        msg_panic("events_timer_add: null callback");
    if (delay_ms < 0)
        delay_ms = 0;
    if (ev->ntimers == ev->timer_cap) {
        ev->timer_cap = ev->timer_cap ? ev->timer_cap * 2 : 16;
        ev->timers = xreallocarray(ev->timers, ev->timer_cap, sizeof(*ev->timers));
    }
    events_update_now(ev);              /* the cache may be stale after a long callback */
    t = ev->timers + ev->ntimers++;
    t->when = ev->now_ms + delay_ms;
    t->id = ev->next_timer++;
    t->fn = fn;
    t->ctx = ctx;
    events_heap_up(ev, ev->ntimers - 1);
    return ev->next_timer - 1;
}

int events_timer_cancel(struct events *ev, events_timer_id id)
{
    size_t i;

    for (i = 0; i < ev->ntimers; i++) {
        if (ev->timers[i].id == id) {
            events_heap_remove(ev, i);
            return 0;
        }
    }
    return -1;
}

static void events_signal_read(struct events *ev, int fd, int mask, void *ctx)
{
    struct signalfd_siginfo si[EVENTS_SIG_BATCH];
    ssize_t n;
    size_t i;

    n = read(fd, si, sizeof(si));
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        msg_panic("events: read signalfd: %m");
    }
    for (i = 0; i < (size_t) n / sizeof(si[0]); i++) {
        int signo = (int) si[i].ssi_signo;

        if (signo > 0 && signo < NSIG && ev->sigs[signo].fn)
            ev->sigs[signo].fn(ev, signo, ev->sigs[signo].ctx);
    }
}

int events_signal_add(struct events *ev, int signo, events_signal_fn fn, void *ctx)
{
    sigset_t one;
    int fd;

    if (signo <= 0 || signo >= NSIG || fn == NULL) {
        errno = EINVAL;
        return -1;
    }
    sigaddset(&ev->sigmask, signo);
    fd = signalfd(ev->sigfd, &ev->sigmask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return -1;
    if (ev->sigfd < 0) {
        ev->sigfd = fd;
        if (events_fd_add(ev, fd, EVENTS_READ, events_signal_read, NULL) < 0)
            return -1;
    }
    sigemptyset(&one);
    sigaddset(&one, signo);
    if (sigprocmask(SIG_BLOCK, &one, NULL) < 0)
        return -1;
    if (!events_blocked_init) {
        sigemptyset(&events_blocked_all);
        events_blocked_init = 1;
    }
    sigaddset(&events_blocked_all, signo);
    ev->sigs[signo].fn = fn;
    ev->sigs[signo].ctx = ctx;
    return 0;
}

void events_child_reset(void)
{
    if (events_blocked_init)
        (void) sigprocmask(SIG_UNBLOCK, &events_blocked_all, NULL);
}

static int events_wait_time(struct events *ev, int max_wait_ms)
{
    long long left;

    if (ev->ntimers == 0)
        return max_wait_ms;
    left = ev->timers[0].when - ev->now_ms;
    if (left < 0)
        left = 0;
    if (max_wait_ms >= 0 && left > max_wait_ms)
        left = max_wait_ms;
    return left > 86400000 ? 86400000 : (int) left;
}

static int events_run_timers(struct events *ev)
{
    events_timer_id limit = ev->next_timer;
    int ran = 0;

    while (ev->ntimers > 0 && ev->timers[0].when <= ev->now_ms && ev->timers[0].id < limit) {
        struct events_timer t = ev->timers[0];

        events_heap_remove(ev, 0);
        t.fn(ev, t.ctx);
        ran++;
    }
    return ran;
}

int events_run_once(struct events *ev, int max_wait_ms)
{
    struct epoll_event ready[EVENTS_BATCH];
    int n, i, ran = 0;

    n = epoll_wait(ev->epfd, ready, EVENTS_BATCH, events_wait_time(ev, max_wait_ms));
    if (n < 0) {
        if (errno != EINTR)
            msg_panic("events: epoll_wait: %m");
        n = 0;
    }
    events_update_now(ev);
    for (i = 0; i < n; i++) {
        int fd = (int) (ready[i].data.u64 & 0xffffffffu);
        uint32_t gen = (uint32_t) (ready[i].data.u64 >> 32);
        uint32_t e = ready[i].events;
        struct events_fd *ef;
        int mask = 0;

        if ((size_t) fd >= ev->nfds)
            continue;
        ef = ev->fds + fd;
        if (ef->fn == NULL || ef->gen != gen)
            continue;                   /* removed or replaced earlier in this batch */
        if (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
            mask |= EVENTS_ERROR | (ef->mask & (EVENTS_READ | EVENTS_WRITE));
        if (e & EPOLLIN)
            mask |= EVENTS_READ;
        if (e & EPOLLOUT)
            mask |= EVENTS_WRITE;
        ef->fn(ev, fd, mask & (ef->mask | EVENTS_ERROR), ef->ctx);
        ran++;
    }
    return ran + events_run_timers(ev);
}

void events_run(struct events *ev)
{
    ev->stop = 0;
    while (!ev->stop)
        events_run_once(ev, -1);
}

void events_stop(struct events *ev)
{
    ev->stop = 1;
}

long long events_now_ms(struct events *ev)
{
    return ev->now_ms;
}

time_t events_now(struct events *ev)
{
    return ev->now;
}
