/*
 * events.h - the single-threaded event loop every long-running Petrel process uses.
 *
 * One loop per process, built on epoll: callbacks for file descriptor readiness,
 * one-shot timers (millisecond resolution, equal deadlines run in the order they
 * were added), and signals delivered as ordinary events through a signalfd, so a
 * signal handler never runs in the middle of our code. The loop caches "now" once
 * per iteration (events_now) so hot paths do not call clock_gettime.
 *
 * Why not libevent: the daemons need only readiness and timers. Buffering, line
 * reading and the per-stream deadlines are owned by Petrel's own stream layer
 * (stream.h), which must know exactly which bytes arrived and which terminator ended
 * a line (SMTP smuggling); libevent's bufferevents would duplicate that layer and
 * hide it. A few hundred lines on epoll keep one owner for every byte.
 *
 * Callbacks may add or remove any fd or timer, including their own, and may call
 * events_stop. A callback is never called after its fd or timer was removed, even
 * when that happened earlier in the same batch of ready events.
 *
 * Must never: block (except in epoll_wait, bounded by the next timer), leak its own
 * descriptors to children (all are close-on-exec), or run a callback re-entrantly.
 * Failure: system call failures at creation return NULL/-1 with errno; a failing
 * epoll_wait other than EINTR is our bug and panics.
 */
#ifndef PETREL_EVENTS_H
#define PETREL_EVENTS_H

#include <stdint.h>
#include <time.h>

struct events;

#define EVENTS_READ   1
#define EVENTS_WRITE  2
#define EVENTS_ERROR  4             /* reported with READ/WRITE: hang-up or error */

typedef void (*events_fd_fn)(struct events *ev, int fd, int mask, void *ctx);
typedef void (*events_timer_fn)(struct events *ev, void *ctx);
typedef void (*events_signal_fn)(struct events *ev, int signo, void *ctx);

/* A timer handle; 0 is never a valid timer. */
typedef uint64_t events_timer_id;

struct events *events_new(void);
/* Frees the loop, restores the signal mask it changed; the watched fds are not closed. */
void events_free(struct events **evp);

/* Watches fd for mask (EVENTS_READ | EVENTS_WRITE); replaces an existing watch on fd. */
int events_fd_add(struct events *ev, int fd, int mask, events_fd_fn fn, void *ctx);
/* Stops watching fd (call before closing it); unknown fds are ignored. */
void events_fd_del(struct events *ev, int fd);

/* Calls fn once, delay_ms from now; returns the handle. */
events_timer_id events_timer_add(struct events *ev, long long delay_ms,
                                 events_timer_fn fn, void *ctx);
/* Cancels a pending timer; returns 0, or -1 when it already ran or never existed. */
int events_timer_cancel(struct events *ev, events_timer_id id);

/* Delivers signo as an event (it is blocked for normal delivery); one fn per signal. */
int events_signal_add(struct events *ev, int signo, events_signal_fn fn, void *ctx);

/* Runs ready callbacks and due timers, waiting at most max_wait_ms (-1: until the next
 * timer or forever). Returns the number of callbacks run. */
int events_run_once(struct events *ev, int max_wait_ms);
/* Runs until events_stop is called. */
void events_run(struct events *ev);
void events_stop(struct events *ev);

/* The cached clock: monotonic milliseconds and wall-clock seconds of this iteration. */
long long events_now_ms(struct events *ev);
time_t events_now(struct events *ev);

/* For a freshly forked child before exec: unblocks every signal the loops in this
 * process blocked for their signalfd, so the new program starts with a clean mask. */
void events_child_reset(void);

#endif
