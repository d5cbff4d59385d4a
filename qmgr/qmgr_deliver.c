/*
 * qmgr_deliver.c - transports, destinations and the deliveries in flight.
 *
 * A destination is transport:nexthop. Its entries (batches of one message's
 * recipients, at most <transport>_destination_recipient_limit each) wait on
 * its list, ordered by MT-PRIORITY and then arrival. Destinations with waiting
 * entries take turns on their transport's round-robin queue, so one large
 * destination cannot starve the others. Each destination has a concurrency
 * window that starts at <transport>_initial_destination_concurrency, grows
 * by 1/window per successful delivery up to
 * <transport>_destination_concurrency_limit and shrinks by 1/window per
 * failed one (Postfix's default "1/concurrency" feedback); at window 1, after
 * <transport>_destination_concurrency_failed_cohort_limit failed cohorts, the
 * destination is declared dead for minimal_backoff_time and its mail is
 * deferred ("delivery temporarily suspended"). A transport has at most its
 * master.cf maxproc (default_process_limit for "-") deliveries in flight; one
 * whose agent cannot be reached is suspended for transport_retry_time.
 *
 * A delivery is a non-blocking connection to private/TRANSPORT on the event
 * loop: the request frame goes out with the queue file descriptor, status
 * frames come back. "Failure" for the feedback means the connection broke
 * before every recipient had an outcome, or every recipient was deferred with
 * a 4.4.x (network or routing) status: a site problem, not a mailbox problem.
 *
 * NEVER
 *	Never blocks on an agent (except a bounded local connect()), never
 *	trusts a status frame (unknown or repeated recipients end the
 *	delivery), never loses a recipient: one without an outcome is deferred.
 *
 * PARAMETERS
 *	default_destination_recipient_limit, default_destination_concurrency_limit,
 *	initial_destination_concurrency,
 *	default_destination_concurrency_failed_cohort_limit and their
 *	<transport>_ forms, default_process_limit, minimal_backoff_time,
 *	transport_retry_time, daemon_timeout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "config.h"
#include "deliver_request.h"
#include "events.h"
#include "htable.h"
#include "ipc.h"
#include "mastercf.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qmgr.h"
#include "strbuf.h"

#define QMGR_CONNECT_MS     1000    /* private/TRANSPORT is local: this is plenty */
#define QMGR_UNLIMITED      100000  /* maxproc 0 */

struct qmgr_delivery {
    struct qmgr_entry *entry;
    int fd;
    int sending;
    size_t sent;
    struct attr_msg *out, *in;
    unsigned char *got;         /* per entry recipient: outcome received */
    int reported, deferred, site_deferred;
    char *last_dsn, *last_reason;
    events_timer_id timer;
};

static struct qmgr_transport *qmgr_transports;
static struct htable *qmgr_dests;
static struct htable *qmgr_maxproc;     /* master.cf service name -> maxproc + 1 */
static events_timer_id qmgr_kick_timer;

/* --- master.cf ----------------------------------------------------------- */

void qmgr_deliver_read_mastercf(void)
{
    struct mastercf cf;
    struct strbuf path, err;
    size_t i;

    qmgr_maxproc = htable_new(32);
    strbuf_init(&path, 128, 4096);
    strbuf_init(&err, 128, 4096);
    strbuf_printf(&path, "%s/master.cf", config_dir());
    if (mastercf_parse(path.data, &cf, &err) < 0) {
        msg_warn("%s: %s; using default_process_limit for every transport", path.data,
                 err.data);
    } else {
        for (i = 0; i < cf.count; i++) {
            const struct master_service *s = cf.services + i;
            long v;

            if (s->type != MASTER_UNIX)
                continue;
            v = s->maxproc_default ? var_default_process_limit
                : s->maxproc == 0 ? QMGR_UNLIMITED : s->maxproc;
            (void) htable_insert(qmgr_maxproc, s->name, (void *) (v + 1), NULL);
        }
        mastercf_free(&cf);
    }
    strbuf_release(&path);
    strbuf_release(&err);
}

/* --- transports and destinations ----------------------------------------- */

static int qmgr_clamp(long long v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : (int) v;
}

static struct qmgr_transport *qmgr_transport_get(const char *name)
{
    struct qmgr_transport *tp;
    void *v;
    long long n;

    for (tp = qmgr_transports; tp; tp = tp->next)
        if (strcmp(tp->name, name) == 0)
            return tp;
    tp = xcalloc(1, sizeof(*tp));
    tp->name = xstrdup(name);
    n = config_lookup_service_int(name, "destination_recipient_limit");
    tp->rcpt_limit = n <= 0 ? DELIVER_MAX_RCPT : qmgr_clamp(n, 1, DELIVER_MAX_RCPT);
    n = config_lookup_service_int(name, "destination_concurrency_limit");
    tp->dest_limit = n <= 0 ? 0 : qmgr_clamp(n, 1, QMGR_UNLIMITED);
    tp->initial = qmgr_clamp(config_lookup_service_int(name, "initial_destination_concurrency"),
                             1, QMGR_UNLIMITED);
    tp->cohort_limit = qmgr_clamp(config_lookup_service_int(name,
                                  "destination_concurrency_failed_cohort_limit"),
                                  0, QMGR_UNLIMITED);
    if (qmgr_maxproc && htable_lookup(qmgr_maxproc, name, &v))
        tp->process_limit = qmgr_clamp((long) v - 1, 1, QMGR_UNLIMITED);
    else
        tp->process_limit = qmgr_clamp(var_default_process_limit, 1, QMGR_UNLIMITED);
    tp->next = qmgr_transports;
    qmgr_transports = tp;
    return tp;
}

static int qmgr_dest_limit(const struct qmgr_dest *d)
{
    int w = (int) d->window;

    if (w < 1)
        w = 1;
    if (d->tp->dest_limit > 0 && w > d->tp->dest_limit)
        w = d->tp->dest_limit;
    return w;
}

static struct qmgr_dest *qmgr_dest_get(struct qmgr_transport *tp, const char *nexthop)
{
    struct qmgr_dest *d;
    struct strbuf key;

    strbuf_init(&key, 64, STRBUF_UNLIMITED);
    strbuf_printf(&key, "%s:%s", tp->name, nexthop);
    if ((d = htable_find(qmgr_dests, key.data)) == NULL) {
        d = xcalloc(1, sizeof(*d));
        d->key = xstrdup(key.data);
        d->nexthop = xstrdup(nexthop);
        d->tp = tp;
        d->window = tp->initial;
        if (htable_insert(qmgr_dests, key.data, d, NULL) != 0)
            msg_fatal("too many destinations in the active queue");
    }
    strbuf_release(&key);
    return d;
}

static void qmgr_dest_maybe_free(struct qmgr_dest *d)
{
    if (d->waiting || d->busy || d->queued || d->dead_until > qmgr_now())
        return;
    (void) htable_remove(qmgr_dests, d->key, NULL);
    free(d->key);
    free(d->nexthop);
    free(d->dead_dsn);
    free(d->dead_reason);
    free(d);
}

static void qmgr_dest_enqueue(struct qmgr_dest *d)
{
    struct qmgr_transport *tp = d->tp;

    if (d->queued)
        return;
    d->queued = 1;
    d->rr_next = NULL;
    if (tp->rr_tail)
        tp->rr_tail->rr_next = d;
    else
        tp->rr_head = d;
    tp->rr_tail = d;
}

static struct qmgr_dest *qmgr_dest_dequeue(struct qmgr_transport *tp)
{
    struct qmgr_dest *d = tp->rr_head;

    if (d == NULL)
        return NULL;
    tp->rr_head = d->rr_next;
    if (tp->rr_head == NULL)
        tp->rr_tail = NULL;
    d->rr_next = NULL;
    d->queued = 0;
    return d;
}

static void qmgr_entry_free(struct qmgr_entry *e)
{
    struct qmgr_message *m = e->msg;

    free(e->idx);
    free(e);
    qmgr_message_entry_done(m);
}

/* Every recipient of the entry gets the same outcome from qmgr itself. */
static void qmgr_entry_defer(struct qmgr_entry *e, const char *dsn, const char *reason)
{
    int i;

    for (i = 0; i < e->count; i++)
        qmgr_message_result(e->msg, e->idx[i], DELIVER_DEFER, dsn, "none", reason, 0);
    qmgr_entry_free(e);
}

static struct qmgr_entry *qmgr_dest_pop(struct qmgr_dest *d)
{
    struct qmgr_entry *e = d->head;

    if (e) {
        d->head = e->next;
        if (d->head == NULL)
            d->tail = NULL;
        d->waiting--;
        e->next = NULL;
    }
    return e;
}

static void qmgr_dest_defer_all(struct qmgr_dest *d, const char *dsn, const char *reason)
{
    struct qmgr_entry *e;

    while ((e = qmgr_dest_pop(d)) != NULL)
        qmgr_entry_defer(e, dsn, reason);
}

/* Alive again after its dead time: a fresh window, as Postfix unthrottles. */
static void qmgr_dest_revive(struct qmgr_dest *d)
{
    if (d->dead_until && d->dead_until <= qmgr_now()) {
        d->dead_until = 0;
        d->window = d->tp->initial;
        d->fail_cohorts = 0;
    }
}

static void qmgr_dest_insert(struct qmgr_dest *d, struct qmgr_entry *e)
{
    struct qmgr_entry **pp;
    int prio = e->msg->priority;

    if (d->tail == NULL || d->tail->msg->priority >= prio) {
        if (d->tail)
            d->tail->next = e;
        else
            d->head = e;
        d->tail = e;
    } else {
        /* Higher MT-PRIORITY goes before every entry of lower priority. */
        for (pp = &d->head; *pp && (*pp)->msg->priority >= prio; pp = &(*pp)->next)
            ;
        e->next = *pp;
        *pp = e;
    }
    d->waiting++;
}

void qmgr_deliver_queue(struct qmgr_message *msg, const char *transport, const char *nexthop,
                        const int *idx, int count)
{
    struct qmgr_transport *tp = qmgr_transport_get(transport);
    struct qmgr_dest *d = qmgr_dest_get(tp, nexthop);
    int done = 0;

    qmgr_dest_revive(d);
    while (done < count) {
        struct qmgr_entry *e = xcalloc(1, sizeof(*e));
        int n = count - done < tp->rcpt_limit ? count - done : tp->rcpt_limit;

        e->msg = msg;
        e->dest = d;
        e->count = n;
        e->idx = xmemdup(idx + done, (size_t) n * sizeof(*idx));
        done += n;
        msg->entries++;
        if (tp->dead_until > qmgr_now())
            qmgr_entry_defer(e, "4.3.0", "mail transport unavailable");
        else if (d->dead_until)
            qmgr_entry_defer(e, d->dead_dsn, d->dead_reason);
        else
            qmgr_dest_insert(d, e);
    }
    if (d->waiting)
        qmgr_dest_enqueue(d);
    else
        qmgr_dest_maybe_free(d);
}

/* --- deliveries ---------------------------------------------------------- */

static void qmgr_kick(struct events *ev, void *ctx)
{
    (void) ev;
    (void) ctx;
    qmgr_kick_timer = 0;
    qmgr_deliver_run();
}

/* Runs the scheduler again from the loop (never from inside itself). */
static void qmgr_deliver_kick(void)
{
    if (qmgr_kick_timer == 0)
        qmgr_kick_timer = events_timer_add(qmgr_events, 0, qmgr_kick, NULL);
}

static void qmgr_dest_feedback(struct qmgr_dest *d, int failed, const char *dsn,
                               const char *reason)
{
    struct qmgr_transport *tp = d->tp;

    if (!failed) {
        if (tp->dest_limit == 0 || d->window < tp->dest_limit)
            d->window += 1.0 / d->window;
        d->fail_cohorts = 0;
        return;
    }
    d->fail_cohorts += 1.0 / d->window;
    d->window -= 1.0 / d->window;
    if (d->window < 1)
        d->window = 1;
    if (d->window <= 1 && tp->cohort_limit > 0 && d->fail_cohorts >= tp->cohort_limit) {
        struct strbuf text;

        strbuf_init(&text, 128, 4096);
        strbuf_printf(&text, "delivery temporarily suspended: %s", reason);
        free(d->dead_dsn);
        free(d->dead_reason);
        d->dead_dsn = xstrdup(dsn);
        d->dead_reason = strbuf_steal(&text);
        strbuf_release(&text);
        d->dead_until = qmgr_now() + (time_t) var_minimal_backoff_time;
        msg_info("%s: destination dead for %llds: %s", d->key,
                 (long long) var_minimal_backoff_time, reason);
        qmgr_dest_defer_all(d, d->dead_dsn, d->dead_reason);
    }
}

static void qmgr_delivery_end(struct qmgr_delivery *dl, const char *why)
{
    struct qmgr_entry *e = dl->entry;
    struct qmgr_dest *d = e->dest;
    struct qmgr_transport *tp = d->tp;
    int i, failed;

    events_fd_del(qmgr_events, dl->fd);
    close(dl->fd);
    if (dl->timer)
        (void) events_timer_cancel(qmgr_events, dl->timer);
    if (why)
        msg_warn("%s: delivery via %s: %s", e->msg->qid, d->key, why);
    failed = dl->reported < e->count
        || (dl->site_deferred > 0 && dl->site_deferred == e->count);
    for (i = 0; i < e->count; i++)
        if (!dl->got[i])
            qmgr_message_result(e->msg, e->idx[i], DELIVER_DEFER, "4.3.0", "none",
                                "unknown mail transport error", 0);
    tp->busy--;
    d->busy--;
    qmgr_dest_feedback(d, failed, dl->last_dsn ? dl->last_dsn : "4.3.0",
                       dl->last_reason ? dl->last_reason : "unknown mail transport error");
    attr_msg_free(&dl->out);
    attr_msg_free(&dl->in);
    free(dl->got);
    free(dl->last_dsn);
    free(dl->last_reason);
    free(dl);
    qmgr_entry_free(e);
    if (d->waiting)
        qmgr_dest_enqueue(d);
    else
        qmgr_dest_maybe_free(d);
    qmgr_deliver_kick();
}

/* One status frame; 0, or -1 when the agent is out of step. */
static int qmgr_delivery_status(struct qmgr_delivery *dl, const struct deliver_result *res)
{
    struct qmgr_entry *e = dl->entry;
    int i;

    for (i = 0; i < e->count; i++)
        if (e->msg->rcpt[e->idx[i]].offset == res->offset && !dl->got[i])
            break;
    if (i == e->count)
        return -1;
    dl->got[i] = 1;
    dl->reported++;
    if (res->status == DELIVER_DEFER) {
        dl->deferred++;
        if (strncmp(res->dsn, "4.4.", 4) == 0)
            dl->site_deferred++;
        free(dl->last_dsn);
        free(dl->last_reason);
        dl->last_dsn = xstrdup(res->dsn);
        dl->last_reason = xstrdup(res->text);
    }
    qmgr_message_result(e->msg, e->idx[i], res->status, res->dsn, res->relay, res->text, 1);
    return 0;
}

static void qmgr_delivery_event(struct events *ev, int fd, int mask, void *ctx)
{
    struct qmgr_delivery *dl = ctx;
    struct deliver_result res;
    struct strbuf why;
    int rc, frames;

    (void) mask;
    if (dl->sending) {
        rc = ipc_send_nb(fd, dl->out, &dl->sent);
        if (rc < 0) {
            qmgr_delivery_end(dl, strerror(errno));
            return;
        }
        if (rc == 0)
            return;
        dl->sending = 0;
        attr_msg_reset(dl->in);
        if (events_fd_add(ev, fd, EVENTS_READ, qmgr_delivery_event, dl) < 0) {
            qmgr_delivery_end(dl, "cannot watch the agent connection");
            return;
        }
        return;
    }
    strbuf_init(&why, 128, 4096);
    /* Bounded: an entry has at most count + 1 frames to send us. */
    for (frames = 0; frames <= dl->entry->count; frames++) {
        rc = ipc_recv_nb(fd, dl->in);
        if (rc == 0)
            break;
        if (rc < 0) {
            const char *err = errno == EPIPE ? "lost connection with the delivery agent"
                : strerror(errno);

            strbuf_release(&why);
            qmgr_delivery_end(dl, err);
            return;
        }
        if (deliver_result_decode(dl->in, &res, &why) < 0) {
            qmgr_delivery_end(dl, why.data);
            strbuf_release(&why);
            return;
        }
        if (res.done) {
            strbuf_release(&why);
            qmgr_delivery_end(dl, dl->reported < dl->entry->count
                              ? "the agent ended without reporting every recipient" : NULL);
            return;
        }
        if (qmgr_delivery_status(dl, &res) < 0) {
            strbuf_release(&why);
            qmgr_delivery_end(dl, "status for a recipient not in the request");
            return;
        }
        attr_msg_reset(dl->in);
    }
    strbuf_release(&why);
}

static void qmgr_delivery_timeout(struct events *ev, void *ctx)
{
    struct qmgr_delivery *dl = ctx;

    (void) ev;
    dl->timer = 0;
    qmgr_delivery_end(dl, "the delivery agent did not finish in time");
}

/* Whether the transport could be reached at all. */
static int qmgr_delivery_start(struct qmgr_entry *e)
{
    struct qmgr_dest *d = e->dest;
    struct qmgr_transport *tp = d->tp;
    struct qmgr_message *m = e->msg;
    struct deliver_request req;
    struct qmgr_delivery *dl;
    int i, fd;

    if ((fd = ipc_connect(IPC_CLASS_PRIVATE, tp->name, QMGR_CONNECT_MS)) < 0) {
        msg_warn("connect to transport private/%s: %m", tp->name);
        tp->dead_until = qmgr_now() + (time_t) var_transport_retry_time;
        qmgr_entry_defer(e, "4.3.0", "mail transport unavailable");
        return 0;
    }
    memset(&req, 0, sizeof(req));
    req.fd = m->ro_fd;
    req.queue_name = "active";
    req.queue_id = m->qid;
    req.transport = tp->name;
    req.nexthop = d->nexthop;
    req.sender = m->sender;
    req.dsn_envid = m->dsn_envid;
    req.dsn_ret = m->dsn_ret;
    req.client_name = m->client_name;
    req.client_addr = m->client_addr;
    req.content_offset = m->content_offset;
    req.content_length = m->content_length;
    req.flags = m->flags;
    req.arrival = m->arrival;
    req.active = m->active;
    req.rcpt_count = e->count;
    req.rcpt = xcalloc((size_t) e->count, sizeof(*req.rcpt));
    for (i = 0; i < e->count; i++) {
        const struct qmgr_rcpt *r = m->rcpt + e->idx[i];

        req.rcpt[i].address = r->address;
        req.rcpt[i].orig_rcpt = r->orig_rcpt;
        req.rcpt[i].dsn_orcpt = r->dsn_orcpt;
        req.rcpt[i].notify = r->notify;
        req.rcpt[i].offset = r->offset;
    }
    dl = xcalloc(1, sizeof(*dl));
    dl->entry = e;
    dl->fd = fd;
    dl->sending = 1;
    dl->out = attr_msg_new();
    dl->in = attr_msg_new();
    dl->got = xcalloc((size_t) e->count, 1);
    if (deliver_request_build(dl->out, &req) < 0) {
        msg_warn("%s: cannot build the delivery request: %m", m->qid);
        free(req.rcpt);
        close(fd);
        attr_msg_free(&dl->out);
        attr_msg_free(&dl->in);
        free(dl->got);
        free(dl);
        qmgr_entry_defer(e, "4.3.0", "invalid delivery request");
        return 1;
    }
    free(req.rcpt);
    tp->busy++;
    d->busy++;
    if (events_fd_add(qmgr_events, fd, EVENTS_WRITE, qmgr_delivery_event, dl) < 0) {
        qmgr_delivery_end(dl, "cannot watch the agent connection");
        return 1;
    }
    dl->timer = events_timer_add(qmgr_events, var_daemon_timeout * 1000LL,
                                 qmgr_delivery_timeout, dl);
    return 1;
}

void qmgr_deliver_init(void)
{
    qmgr_dests = htable_new(64);
}

/* Round robin: each turn starts one delivery for the destination at the head. */
static void qmgr_transport_run(struct qmgr_transport *tp)
{
    struct qmgr_dest *d;
    long turns = 0;

    while (tp->busy < tp->process_limit && (d = qmgr_dest_dequeue(tp)) != NULL
           && turns++ < 1000000) {
        struct qmgr_entry *e;

        if (tp->dead_until > qmgr_now()) {
            qmgr_dest_defer_all(d, "4.3.0", "mail transport unavailable");
            qmgr_dest_maybe_free(d);
            continue;
        }
        if (d->waiting == 0 || d->busy >= qmgr_dest_limit(d)) {
            /* Back on the queue when one of its deliveries ends. */
            qmgr_dest_maybe_free(d);
            continue;
        }
        e = qmgr_dest_pop(d);
        if (d->waiting)
            qmgr_dest_enqueue(d);
        if (!qmgr_delivery_start(e)) {
            /* The agent cannot be reached: everything for it waits. */
            struct qmgr_dest *x;

            while ((x = qmgr_dest_dequeue(tp)) != NULL) {
                qmgr_dest_defer_all(x, "4.3.0", "mail transport unavailable");
                if (x != d)
                    qmgr_dest_maybe_free(x);
            }
            qmgr_dest_defer_all(d, "4.3.0", "mail transport unavailable");
            qmgr_dest_maybe_free(d);
            break;
        }
    }
}

void qmgr_deliver_run(void)
{
    struct qmgr_transport *tp;

    if (qmgr_events == NULL)
        return;
    for (tp = qmgr_transports; tp; tp = tp->next)
        qmgr_transport_run(tp);
}
