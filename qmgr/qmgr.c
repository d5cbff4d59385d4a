/*
 * qmgr - the queue manager (Postfix's qmgr(8)). A long-running EVENT daemon:
 * it moves complete queue files from incoming/ to active/, retries deferred/
 * mail whose time has come, hands each message's recipients to delivery agents
 * per destination (qmgr_deliver.c), records their outcomes in the queue file
 * and the status logs, and removes, defers or bounces the message
 * (qmgr_message.c).
 *
 * DESCRIPTION
 *	Triggers on public/qmgr: 'W' (cleanup's poke, master's wakeup) scans
 *	incoming/; 'F' (petrel flush, sendmail -q, ETRN) takes every deferred
 *	message now; 'A' scans incoming/ and all of deferred/. deferred/ is also
 *	scanned every queue_run_delay for files whose retry time (their mtime,
 *	as in Postfix) has come. hold/ is never scanned. At the first trigger
 *	every file left in active/ (by a crash or kill -9) is taken again; its
 *	done recipients are D records and are never delivered twice.
 *	The active queue is bounded by qmgr_message_active_limit and
 *	qmgr_message_recipient_limit: files beyond stay where they are and are
 *	taken when room frees.
 *
 * NEVER
 *	Never crashes on a queue file: one that fails to parse goes to corrupt/
 *	with a log line; one that vanished is dropped quietly. Never blocks on
 *	an agent: deliveries run on the event loop.
 *
 * PARAMETERS
 *	queue_run_delay, qmgr_message_active_limit,
 *	qmgr_message_recipient_limit, hash_queue_depth, hash_queue_names, and
 *	those of qmgr_message.c and qmgr_deliver.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "events.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qfile.h"
#include "qid.h"
#include "qmgr.h"
#include "queue_path.h"
#include "resolve.h"
#include "server.h"
#include "strbuf.h"

#define QMGR_SCAN_MAX_DIRS  100000  /* directory entries looked at per scan */

struct events *qmgr_events;
int qmgr_active_count;
long qmgr_rcpt_count;

static int qmgr_started;
static int qmgr_more_incoming;          /* a scan stopped for lack of room */
static int qmgr_more_deferred;
static int qmgr_more_deferred_all;
static events_timer_id qmgr_deferred_timer;

enum qmgr_scan_mode {
    QMGR_SCAN_ALL,              /* every complete file (incoming, active) */
    QMGR_SCAN_DUE,              /* deferred files whose retry time has come */
};

time_t qmgr_now(void)
{
    return qmgr_events ? events_now(qmgr_events) : time(NULL);
}

static int qmgr_full(void)
{
    return qmgr_active_count >= var_qmgr_message_active_limit
        || (qmgr_active_count > 0 && qmgr_rcpt_count >= var_qmgr_message_recipient_limit);
}

/*
 * Walks queue/ down to its hash depth; every queue ID found is offered to
 * qmgr_message_activate. Returns 1 when the walk stopped because the active
 * queue is full (so there may be more), else 0.
 */
static int qmgr_scan_dir(const char *queue, const char *dir, int levels,
                         enum qmgr_scan_mode mode, long *budget)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    struct strbuf sub;
    int full = 0;

    if (d == NULL) {
        if (errno != ENOENT)
            msg_warn("open %s: %m", dir);
        return 0;
    }
    strbuf_init(&sub, 64, 4096);
    while (!full && (de = readdir(d)) != NULL && (*budget)-- > 0) {
        if (de->d_name[0] == '.')
            continue;
        if (levels > 0) {
            if (strlen(de->d_name) != 1)
                continue;
            strbuf_reset(&sub);
            strbuf_printf(&sub, "%s/%s", dir, de->d_name);
            full = qmgr_scan_dir(queue, sub.data, levels - 1, mode, budget);
            continue;
        }
        if (!qid_valid(de->d_name))
            continue;           /* ".tmp" files of writers, strangers */
        if (mode == QMGR_SCAN_DUE) {
            struct stat st;

            if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0
                || st.st_mtime > qmgr_now())
                continue;
        }
        if (qmgr_full()) {
            full = 1;
            break;
        }
        (void) qmgr_message_activate(queue, de->d_name);
    }
    strbuf_release(&sub);
    closedir(d);
    return full;
}

static int qmgr_scan(const char *queue, enum qmgr_scan_mode mode)
{
    long budget = QMGR_SCAN_MAX_DIRS;

    return qmgr_scan_dir(queue, queue, queue_path_depth(queue), mode, &budget);
}

static void qmgr_scan_incoming(void)
{
    qmgr_more_incoming = qmgr_scan("incoming", QMGR_SCAN_ALL);
}

static void qmgr_scan_deferred(int all)
{
    int more = qmgr_scan("deferred", all ? QMGR_SCAN_ALL : QMGR_SCAN_DUE);

    qmgr_more_deferred = more;
    qmgr_more_deferred_all = more && all;
}

static void qmgr_deferred_tick(struct events *ev, void *ctx)
{
    (void) ctx;
    qmgr_deferred_timer = events_timer_add(ev, var_queue_run_delay * 1000LL,
                                           qmgr_deferred_tick, NULL);
    qmgr_scan_deferred(0);
    qmgr_deliver_run();
}

static events_timer_id qmgr_refill_timer;

static void qmgr_refill(struct events *ev, void *ctx)
{
    (void) ev;
    (void) ctx;
    qmgr_refill_timer = 0;
    /* Incoming mail first, as Postfix does: it has waited least. */
    if (qmgr_more_incoming && !qmgr_full())
        qmgr_scan_incoming();
    if (qmgr_more_deferred && !qmgr_full())
        qmgr_scan_deferred(qmgr_more_deferred_all);
    qmgr_deliver_run();
}

/* Called from deep inside result handling: the scan runs from the loop, later. */
void qmgr_room_freed(void)
{
    if ((qmgr_more_incoming || qmgr_more_deferred) && qmgr_refill_timer == 0 && qmgr_events)
        qmgr_refill_timer = events_timer_add(qmgr_events, 0, qmgr_refill, NULL);
}

/* The first trigger: the event loop exists now. Take over what a previous qmgr left. */
static void qmgr_start(const struct server_ctx *ctx)
{
    qmgr_events = ctx->events;
    qmgr_started = 1;
    qmgr_deliver_init();
    (void) qmgr_scan("active", QMGR_SCAN_ALL);
    qmgr_scan_deferred(0);
    qmgr_deferred_timer = events_timer_add(qmgr_events, var_queue_run_delay * 1000LL,
                                           qmgr_deferred_tick, NULL);
}

static void qmgr_trigger(const char *buf, size_t len, const struct server_ctx *ctx)
{
    int incoming = 0, deferred = 0, all = 0;
    size_t i;

    if (!qmgr_started)
        qmgr_start(ctx);
    for (i = 0; i < len; i++) {
        switch (buf[i]) {
        case SERVER_TRIGGER_WAKEUP:
            incoming = 1;
            break;
        case SERVER_TRIGGER_FLUSH:
            deferred = all = 1;
            break;
        case SERVER_TRIGGER_SCAN:
            incoming = deferred = all = 1;
            break;
        default:
            break;              /* unknown requests are ignored, as Postfix does */
        }
    }
    if (incoming)
        qmgr_scan_incoming();
    if (deferred)
        qmgr_scan_deferred(all);
    qmgr_deliver_run();
}

static void qmgr_pre_init(const struct server_ctx *ctx)
{
    (void) ctx;
    /* master.cf is read before any chroot, for the per-transport process limits. */
    qmgr_deliver_read_mastercf();
}

static void qmgr_post_init(const struct server_ctx *ctx)
{
    (void) ctx;
    resolve_init();
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_EVENT,
        .pre_init = qmgr_pre_init,
        .post_init = qmgr_post_init,
        .trigger = qmgr_trigger,
    };

    server_main(argc, argv, &ops);
}
