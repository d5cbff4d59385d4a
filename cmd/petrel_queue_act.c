/*
 * petrel_queue_act.c - petrel queue delete | hold | release | requeue | bounce
 * (Postfix's postsuper -d, -h, -H, -r and a bounce on demand).
 *
 * THE RULE THAT MAKES THIS SAFE WHILE QMGR RUNS
 *	Every change is a rename or an unlink of a whole queue file, never an
 *	edit of its contents. qmgr treats an active file that vanished or moved
 *	as taken by an administrator: a delivery in flight finishes on qmgr's
 *	open descriptor (recipient marks land in the same inode wherever it now
 *	lives) and qmgr then leaves the file alone. requeue and bounce first move
 *	the message into hold/, where qmgr never schedules it, do their work
 *	there, and remove the file only after cleanup or bounce reported success;
 *	on failure the message goes back where it was. A crash in between leaves
 *	the message in hold/: visible, never lost.
 *
 * Targets: queue IDs, ALL, or "-" (IDs from standard input, one per line),
 * narrowed by the filters; with filters alone the filters choose. delete, hold
 * and release act on each message as the scan meets it, so memory stays flat
 * over a queue of any size: a deleted file cannot be met again, a released
 * one goes to deferred/, which the scan has passed, and a held one met again
 * in hold/ is left alone. The scan hands each target through a pipe to one
 * of a few child processes that unlink or rename it, chosen by the target's
 * hash bucket (so no two of them work in one directory), so the file system's
 * cost of a removal (the larger part of a filtered delete, mostly waiting for
 * the journal) runs beside the scan and in parallel instead of after it; the
 * pipes bound what is in flight. requeue and bounce collect
 * their targets before the first change, so a message requeued into incoming/
 * is never seen again by the same run (their target list is a queue ID per
 * message). Root drops to mail_owner first, so every file and
 * directory made belongs to the mail system. Each message is logged
 * ("QUEUEID: removed"); the summary ("Deleted: 3 messages") goes to standard
 * error and the log. Exit 0 when every target was handled, 1 otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <signal.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "bounce_client.h"
#include "htable.h"
#include "cleanup_client.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "petrel_queue.h"
#include "qfile.h"
#include "qid.h"
#include "queue_list.h"
#include "queue_path.h"
#include "safe_file.h"
#include "server.h"
#include "status_log.h"
#include "strbuf.h"

#define ACT_STDIN_LINE_MAX  256
#define ACT_RETRIES         3           /* re-locations of a message qmgr moved meanwhile */
#define ACT_CLEANUP_TIMEOUT_MS (60 * 1000)
#define ACT_BOUNCE_TIMEOUT_MS  (120 * 1000)
#define ACT_BOUNCE_REASON   "message bounced by administrator"
#define ACT_PIPE_BATCH      4096        /* bytes of targets per write to a worker */
#define ACT_WORKERS         4           /* worker processes of a streaming action */

enum act_kind { ACT_DELETE, ACT_HOLD, ACT_RELEASE, ACT_REQUEUE, ACT_BOUNCE };

struct act_state {
    enum act_kind kind;
    int qfd;
    int nworkers;               /* 0: targets are handled in this process */
    int worker_fd[ACT_WORKERS]; /* targets to each worker, -1 when it is gone */
    int result_fd[ACT_WORKERS]; /* its counts at the end */
    pid_t worker[ACT_WORKERS];
    struct strbuf pending[ACT_WORKERS];        /* targets not yet written */
    struct queue_target *t;
    size_t n, cap;
    struct htable *seen;
    unsigned long done, skipped, failed;
    struct cleanup_client *cleanup;
};

/* --- Privileges ------------------------------------------------------------ */

/* Root becomes mail_owner; mail_owner stays; anyone else may not change the queue. */
static int act_privileges(void)
{
    struct passwd *pw;

    if ((pw = getpwnam(var_mail_owner)) == NULL) {
        msg_error("mail_owner %s: no such user", var_mail_owner);
        return -1;
    }
    if (geteuid() == 0) {
        if (pw->pw_uid != 0)
            server_drop_privileges(pw->pw_uid, pw->pw_gid, var_mail_owner);
        return 0;
    }
    if (geteuid() != pw->pw_uid) {
        msg_error("only root or the mail_owner (%s) may change the queue", var_mail_owner);
        return -1;
    }
    return 0;
}

/* --- Targets --------------------------------------------------------------- */

static void act_add(struct act_state *s, const char *qid, int queue)
{
    if (htable_find(s->seen, qid))
        return;
    (void) htable_insert(s->seen, qid, (void *) "", NULL);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->t = xreallocarray(s->t, s->cap, sizeof(*s->t));
    }
    snprintf(s->t[s->n].qid, sizeof(s->t[s->n].qid), "%s", qid);
    s->t[s->n].queue = queue;
    s->n++;
}

static int act_collect(const struct queue_msg *m, void *ctx)
{
    act_add(ctx, m->qid, m->queue);
    return 0;
}

static void act_handle(struct act_state *s, const char *qid, int queue);

/* --- The worker process ---------------------------------------------------- */

/* Writes worker w's pending targets; -1 when the worker is gone. */
static int act_worker_flush(struct act_state *s, int w)
{
    struct strbuf *p = &s->pending[w];
    size_t off = 0;
    ssize_t n;

    while (off < p->len && s->worker_fd[w] >= 0) {
        n = write(s->worker_fd[w], p->data + off, p->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            msg_error("queue worker process: write: %m");
            close(s->worker_fd[w]);
            s->worker_fd[w] = -1;
            break;
        }
        off += (size_t) n;
    }
    strbuf_reset(p);
    return s->worker_fd[w] >= 0 ? 0 : -1;
}

/* The worker: targets from fd until end of file, then its counts on out. */
static void act_worker_main(struct act_state *s, int fd, int out)
{
    char line[QID_BUFSIZE + 32], qid[QID_BUFSIZE], *sp, *nl;
    char counts[96];
    FILE *in;
    int queue, len;

    if ((in = fdopen(fd, "r")) == NULL)
        msg_fatal("queue worker process: fdopen: %m");
    while (fgets(line, sizeof(line), in) != NULL) {
        /* Lines come from the parent, written as "%d %s\n"; check anyway. */
        queue = atoi(line);
        sp = strchr(line, ' ');
        nl = sp ? strchr(sp, '\n') : NULL;
        if (nl == NULL || queue < 0 || queue >= QUEUE_LIST_NQUEUES
            || (size_t) (nl - sp - 1) >= sizeof(qid)
            || (memcpy(qid, sp + 1, (size_t) (nl - sp - 1)), qid[nl - sp - 1] = 0,
                !qid_valid(qid))) {
            msg_error("queue worker process: bad target line");
            s->failed++;
            continue;
        }
        act_handle(s, qid, queue);
    }
    fclose(in);
    len = snprintf(counts, sizeof(counts), "%lu %lu %lu\n", s->done, s->skipped, s->failed);
    if (write(out, counts, (size_t) len) != len)
        msg_fatal("queue worker process: write counts: %m");
    close(out);
    _exit(0);
}

/* Starts the workers; when none can be started, targets are handled inline. */
static void act_worker_start(struct act_state *s)
{
    int tp[2], rp[2], w, k;
    pid_t pid;

    (void) signal(SIGPIPE, SIG_IGN);    /* a worker gone is a write error */
    (void) fflush(stdout);      /* nothing buffered is written twice */
    (void) fflush(stderr);
    for (w = 0; w < ACT_WORKERS; w++) {
        if (pipe2(tp, O_CLOEXEC) < 0)
            break;
        if (pipe2(rp, O_CLOEXEC) < 0) {
            close(tp[0]);
            close(tp[1]);
            break;
        }
        if ((pid = fork()) < 0) {
            msg_warn("fork: %m: %d worker process%s", w, w == 1 ? "" : "es");
            close(tp[0]);
            close(tp[1]);
            close(rp[0]);
            close(rp[1]);
            break;
        }
        if (pid == 0) {
            /* Only its own pipes: the others must see end of file when the
             * parent closes them. */
            for (k = 0; k < w; k++) {
                close(s->worker_fd[k]);
                close(s->result_fd[k]);
            }
            s->nworkers = 0;
            close(tp[1]);
            close(rp[0]);
            act_worker_main(s, tp[0], rp[1]);
        }
        close(tp[0]);
        close(rp[1]);
        s->worker[w] = pid;
        s->worker_fd[w] = tp[1];
        s->result_fd[w] = rp[0];
        s->nworkers = w + 1;
    }
}

/* Ends the target streams and adds the workers' counts; -1 when one failed. */
static int act_worker_finish(struct act_state *s)
{
    char buf[96];
    size_t got;
    ssize_t n;
    unsigned long done, skipped, failed;
    int status, rc = 0, w;

    for (w = 0; w < s->nworkers; w++) {
        if (s->worker_fd[w] >= 0 && s->pending[w].len)
            (void) act_worker_flush(s, w);
        if (s->worker_fd[w] >= 0)
            close(s->worker_fd[w]);
        s->worker_fd[w] = -1;
    }
    for (w = 0; w < s->nworkers; w++) {
        got = 0;
        while (got < sizeof(buf) - 1) {
            n = read(s->result_fd[w], buf + got, sizeof(buf) - 1 - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t) n;
        }
        buf[got] = 0;
        close(s->result_fd[w]);
        while (waitpid(s->worker[w], &status, 0) < 0 && errno == EINTR)
            ;
        if (sscanf(buf, "%lu %lu %lu", &done, &skipped, &failed) != 3) {
            msg_error("queue worker process ended early (status %d): "
                      "some messages were not changed", status);
            rc = -1;
        } else {
            s->done += done;
            s->skipped += skipped;
            s->failed += failed;
        }
    }
    s->nworkers = 0;
    return rc;
}

/* Hands a target as "QUEUE QID\n" to the worker of its directory (or handles
 * it here when there are no workers); a pipe blocks when its worker falls
 * behind. */
static int act_stream(const struct queue_msg *m, void *ctx)
{
    struct act_state *s = ctx;
    const char *p, *slash = strrchr(m->path, '/');
    unsigned h = 0;
    int w;

    if (s->nworkers == 0) {
        act_handle(s, m->qid, m->queue);
        return 0;
    }
    for (p = m->path; p < (slash ? slash : m->path); p++)
        h = h * 31 + (unsigned char) *p;
    w = (int) (h % (unsigned) s->nworkers);
    if (s->worker_fd[w] < 0)
        return 1;               /* worker gone: stop, the rest stays as it was */
    strbuf_printf(&s->pending[w], "%d %s\n", (int) m->queue, m->qid);
    if (s->pending[w].len >= ACT_PIPE_BATCH && act_worker_flush(s, w) < 0)
        return 1;
    return 0;
}

/* Whether this action works during the scan instead of after it. */
static int act_streams(const struct act_state *s)
{
    return s->kind == ACT_DELETE || s->kind == ACT_HOLD || s->kind == ACT_RELEASE;
}

/* IDs from standard input: one per line, blank lines and surrounding space ignored. */
static int act_read_stdin(struct queue_opts *o)
{
    char line[ACT_STDIN_LINE_MAX + 2];
    struct strbuf why;
    unsigned long lineno = 0;
    size_t len;
    char *p, *e;
    int rc = 0;

    strbuf_init(&why, 128, 4096);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        lineno++;
        len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            msg_error("standard input line %lu: too long for a queue ID", lineno);
            rc = -1;
            break;
        }
        for (p = line; *p == ' ' || *p == '\t'; p++)
            ;
        for (e = p + strlen(p); e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' '
                                          || e[-1] == '\t'); e--)
            ;
        *e = '\0';
        if (*p == '\0')
            continue;
        strbuf_reset(&why);
        if (queue_filter_add(o->filter, "id", p, &why) < 0) {
            msg_error("standard input line %lu: %s", lineno, why.data);
            rc = -1;
            break;
        }
    }
    strbuf_release(&why);
    return rc;
}

/* Chooses the targets (and, for the streaming actions, handles them); -1 after
 * a usage error message. */
static int act_targets(struct act_state *s, struct queue_opts *o)
{
    struct strbuf why;
    int i, all = 0, ids = 0, rc;

    strbuf_init(&why, 128, 4096);
    for (i = 0; i < o->nargs; i++) {
        if (strcmp(o->args[i], "ALL") == 0) {
            all = 1;
        } else if (strcmp(o->args[i], "-") == 0) {
            if (act_read_stdin(o) < 0) {
                strbuf_release(&why);
                return -1;
            }
            ids = 1;
        } else {
            strbuf_reset(&why);
            if (queue_filter_add(o->filter, "id", o->args[i], &why) < 0) {
                msg_error("%s", why.data);
                strbuf_release(&why);
                return -1;
            }
            ids = 1;
        }
    }
    if (all && ids) {
        msg_error("ALL cannot be combined with queue IDs");
        strbuf_release(&why);
        return -1;
    }
    if (!all && !queue_filter_is_set(o->filter)) {
        if (ids) {              /* "-" with an empty standard input */
            strbuf_release(&why);
            return 0;
        }
        msg_error("name the messages: queue IDs, ALL, - (IDs on standard input) or filters");
        strbuf_release(&why);
        return -1;
    }
    if (act_streams(s))
        act_worker_start(s);
    rc = queue_list_scan_flags(s->qfd, o->filter, act_streams(s) ? act_stream : act_collect, s,
                               NULL, QUEUE_LIST_NO_REASONS, &why);
    if (s->nworkers && act_worker_finish(s) < 0)
        s->failed++;
    if (rc < 0) {
        msg_error("%s", why.data);
        strbuf_release(&why);
        return -1;
    }
    strbuf_release(&why);
    return 0;
}

/* --- Steps ----------------------------------------------------------------- */

static void act_path(struct strbuf *out, int queue, const char *qid)
{
    const char *name = queue_list_queue_name(queue);

    queue_path(out, name, qid, queue_path_depth(name));
}

/* Moves a message between queues (no replace); 0, or -1 with errno. */
static int act_move(struct act_state *s, const char *qid, int from, int to)
{
    struct strbuf src, dst, dir;
    int rc, err = 0;

    strbuf_init(&src, 64, PATH_MAX);
    strbuf_init(&dst, 64, PATH_MAX);
    strbuf_init(&dir, 64, PATH_MAX);
    act_path(&src, from, qid);
    act_path(&dst, to, qid);
    queue_path_dir(&dir, queue_list_queue_name(to), qid,
                   queue_path_depth(queue_list_queue_name(to)));
    rc = renameat2(s->qfd, src.data, s->qfd, dst.data, RENAME_NOREPLACE);
    if (rc < 0 && errno == ENOENT && faccessat(s->qfd, src.data, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        /* The source is there: the bucket directory is missing. */
        if (safe_file_mkdirs(s->qfd, dir.data, 0700, NULL) == 0)
            rc = renameat2(s->qfd, src.data, s->qfd, dst.data, RENAME_NOREPLACE);
    }
    if (rc < 0)
        err = errno;
    else
        (void) safe_file_sync_dir(s->qfd, dir.data);
    strbuf_release(&src);
    strbuf_release(&dst);
    strbuf_release(&dir);
    errno = err;
    return rc;
}

static void act_remove_logs(struct act_state *s, const char *qid)
{
    static const char *const logs[] = {STATUS_LOG_DEFER, STATUS_LOG_BOUNCE, STATUS_LOG_TRACE};
    struct strbuf why;
    size_t i;

    strbuf_init(&why, 128, 4096);
    for (i = 0; i < sizeof(logs) / sizeof(logs[0]); i++) {
        strbuf_reset(&why);
        if (status_log_remove(s->qfd, logs[i], qid, queue_path_depth(logs[i]), &why) < 0)
            msg_warn("%s: remove %s log: %s", qid, logs[i], why.data);
    }
    strbuf_release(&why);
}

static int act_unlink(struct act_state *s, const char *qid, int queue)
{
    struct strbuf path;
    int rc;

    strbuf_init(&path, 64, PATH_MAX);
    act_path(&path, queue, qid);
    rc = unlinkat(s->qfd, path.data, 0);
    strbuf_release(&path);
    return rc;
}

/* The log line goes to the mail log only; summaries also to standard error. */
static void act_log(const char *fmt, const char *qid, const char *arg)
{
    msg_use_stderr(0);
    msg_info(fmt, qid, arg);
    msg_use_stderr(1);
}

/* --- requeue --------------------------------------------------------------- */

/* Sends the envelope of an open queue file to cleanup (pass one: every record
 * but the content, which may have envelope records after it). */
static int act_feed_envelope(struct act_state *s, struct qfile_reader *r, const char *qid,
                             struct strbuf *why)
{
    struct qfile_record rec;
    struct strbuf orcpt;
    const char *eq;
    char name[ATTR_NAME_MAX + 1];
    int status, notify = 0, has_ident = 0;
    unsigned long nrcpt = 0;

    strbuf_init(&orcpt, 64, QFILE_MAX_RECORD + 1);
    while ((status = qfile_next(r, &rec)) > 0) {
        switch (rec.type) {
        case QREC_ATTR:
            eq = strchr(rec.data, '=');
            if (eq == NULL || (size_t) (eq - rec.data) >= sizeof(name))
                break;
            memcpy(name, rec.data, (size_t) (eq - rec.data));
            name[eq - rec.data] = '\0';
            has_ident |= strcmp(name, "log_ident") == 0;
            cleanup_attr(s->cleanup, name, eq + 1);
            break;
        case QREC_SENDER:
            cleanup_sender(s->cleanup, rec.data);
            break;
        case QREC_ORCPT:
            strbuf_set(&orcpt, rec.data);
            break;
        case QREC_NOTIFY:
            notify = atoi(rec.data);
            break;
        case QREC_RCPT:
            cleanup_recipient(s->cleanup, rec.data, orcpt.data, notify);
            nrcpt++;
            /* FALLTHROUGH */
        case QREC_DONE:
            strbuf_reset(&orcpt);
            notify = 0;
            break;
        }
    }
    strbuf_release(&orcpt);
    if (status < 0) {
        strbuf_printf(why, "malformed queue file: %s", qfile_reason(r));
        return -1;
    }
    if (nrcpt == 0) {
        strbuf_set(why, "no recipients left to deliver to");
        return -1;
    }
    if (!has_ident)
        cleanup_attr(s->cleanup, "log_ident", qid);
    return 0;
}

/* Pass two: the content, streamed. */
static int act_feed_content(struct act_state *s, struct qfile_reader *r, struct strbuf *why)
{
    struct qfile_record rec;
    char buf[65536];
    ssize_t n;
    int status;

    while ((status = qfile_next(r, &rec)) > 0 && rec.type != QREC_CONTENT)
        ;
    if (status <= 0) {
        strbuf_printf(why, "malformed queue file: %s", status < 0 ? qfile_reason(r)
                      : "no content");
        return -1;
    }
    while ((n = qfile_content_read(r, buf, sizeof(buf))) > 0)
        cleanup_write(s->cleanup, buf, (size_t) n);
    if (n < 0) {
        strbuf_printf(why, "read content: %s", qfile_reason(r));
        return -1;
    }
    return 0;
}

/* The arrival time of the queue file in fd (its T record, else the time in
 * its queue ID); 0, or -1 when neither can be read. */
static int act_arrival(int fd, const char *qid, struct timeval *tv, struct strbuf *why)
{
    struct qfile_reader *r;
    struct qfile_record rec;
    char *end;
    int status, found = 0;

    if ((r = qfile_reader_fdopen(fd, why)) == NULL)
        return -1;
    while (!found && (status = qfile_next(r, &rec)) > 0 && rec.type != QREC_CONTENT) {
        if (rec.type != QREC_TIME)
            continue;
        tv->tv_sec = (time_t) strtoll(rec.data, &end, 10);
        tv->tv_usec = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
        found = tv->tv_sec > 0 && tv->tv_usec >= 0 && tv->tv_usec < 1000000;
    }
    qfile_close(&r);
    if (!found && qid_time(qid, tv) < 0) {
        strbuf_set(why, "malformed queue file: no arrival time");
        return -1;
    }
    return 0;
}

/* Hands the message in fd to cleanup again, with its arrival time; its new
 * queue ID in newid. */
static int act_feed(struct act_state *s, int fd, const char *qid, int held, struct strbuf *newid,
                    struct strbuf *why)
{
    struct qfile_reader *r;
    struct cleanup_result res;
    struct timeval arrival;
    unsigned qflags;
    int flags = 0, rc = -1;

    memset(&res, 0, sizeof(res));

    if (act_arrival(fd, qid, &arrival, why) < 0)
        return -1;
    if ((r = qfile_reader_fdopen(fd, why)) == NULL)
        return -1;
    qflags = qfile_flags(r);
    if (qflags & QFILE_FLAG_8BIT)
        flags |= CLEANUP_FLAG_8BITMIME;
    if (qflags & QFILE_FLAG_SMTPUTF8)
        flags |= CLEANUP_FLAG_SMTPUTF8;
    if (qflags & QFILE_FLAG_BINARYMIME)
        flags |= CLEANUP_FLAG_BINARYMIME;
    if (held)
        flags |= CLEANUP_FLAG_HOLD;
    /* CLEANUP_FLAG_NO_ALIAS stays off: canonical and virtual alias rewriting is
     * redone, which is the point of a requeue after a table change. */
    if (s->cleanup == NULL
        && (s->cleanup = cleanup_connect(NULL, ACT_CLEANUP_TIMEOUT_MS, why)) == NULL)
        goto out;
    if (cleanup_open_at(s->cleanup, flags, &arrival, why) < 0)
        goto out;
    strbuf_set(newid, cleanup_queue_id(s->cleanup));
    if (act_feed_envelope(s, r, qid, why) < 0) {
        cleanup_abort(s->cleanup);
        goto out;
    }
    qfile_close(&r);
    if ((r = qfile_reader_fdopen(fd, why)) == NULL || act_feed_content(s, r, why) < 0) {
        cleanup_abort(s->cleanup);
        goto out;
    }
    if (cleanup_finish(s->cleanup, &res) < 0 || res.status != CLEANUP_OK) {
        strbuf_printf(why, "cleanup: %s", res.reply[0] ? res.reply : "failed");
        goto out;
    }
    rc = 0;
out:
    qfile_close(&r);
    return rc;
}

/* The file in hold/ (staged there by the caller) goes through cleanup again. */
static int act_requeue_staged(struct act_state *s, const char *qid, int was_held,
                              struct strbuf *newid, struct strbuf *why)
{
    struct strbuf path;
    struct stat sb;
    int fd, rc;

    strbuf_init(&path, 64, PATH_MAX);
    act_path(&path, QUEUE_LIST_HOLD, qid);
    fd = safe_file_open(s->qfd, path.data, O_RDONLY, SAFE_FILE_ANY_OWNER, &sb, why);
    strbuf_release(&path);
    if (fd < 0)
        return -1;
    rc = act_feed(s, fd, qid, was_held, newid, why);
    close(fd);
    return rc;
}

/* --- bounce ---------------------------------------------------------------- */

struct act_bounce_rcpt {
    const char *qid;
    struct act_state *s;
    unsigned long n;
    int failed;
    struct strbuf *why;
};

static int act_bounce_one(const struct queue_msg *m, void *ctx)
{
    struct act_bounce_rcpt *b = ctx;
    struct status_entry e;
    size_t i;

    for (i = 0; i < m->nrcpt && !b->failed; i++) {
        memset(&e, 0, sizeof(e));
        e.time = time(NULL);
        e.recipient = m->rcpt[i].address;
        e.orig_rcpt = "";
        e.dsn_orcpt = "";
        e.offset = m->rcpt[i].offset;
        e.status = "5.0.0";
        e.action = "failed";
        e.relay = "none";
        e.reason = ACT_BOUNCE_REASON;
        if (status_log_append(b->s->qfd, STATUS_LOG_BOUNCE, b->qid,
                              queue_path_depth(STATUS_LOG_BOUNCE), &e, b->why) < 0)
            b->failed = 1;
        else
            b->n++;
    }
    return 1;
}

/* Writes the bounce/ log for the staged message and asks for the DSN. */
static int act_bounce_staged(struct act_state *s, const char *qid, struct strbuf *dsn,
                             struct strbuf *why)
{
    struct queue_filter *f = queue_filter_new();
    struct act_bounce_rcpt b = {qid, s, 0, 0, why};
    struct strbuf path;
    int had_log;

    strbuf_init(&path, 64, PATH_MAX);
    queue_path(&path, STATUS_LOG_BOUNCE, qid, queue_path_depth(STATUS_LOG_BOUNCE));
    had_log = faccessat(s->qfd, path.data, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
    strbuf_release(&path);
    (void) queue_filter_add(f, "id", qid, why);
    (void) queue_filter_add(f, "queue", "hold", why);
    strbuf_reset(why);
    (void) queue_list_scan_flags(s->qfd, f, act_bounce_one, &b, NULL, QUEUE_LIST_NO_REASONS,
                                 why);
    queue_filter_free(&f);
    if (!b.failed && b.n == 0 && why->len == 0)
        strbuf_set(why, "no pending recipients, or not a readable queue file");
    if (b.failed || b.n == 0
        || bounce_request(NULL, BOUNCE_FAILED, "hold", qid, ACT_BOUNCE_TIMEOUT_MS, dsn,
                          why) < 0) {
        /* Nobody was told: take back what was written, unless others wrote too. */
        if (!had_log) {
            struct strbuf w2;

            strbuf_init(&w2, 64, 4096);
            (void) status_log_remove(s->qfd, STATUS_LOG_BOUNCE, qid,
                                     queue_path_depth(STATUS_LOG_BOUNCE), &w2);
            strbuf_release(&w2);
        }
        return -1;
    }
    return 0;
}

/* --- One message ----------------------------------------------------------- */

static const char *act_verb[] = {
    [ACT_DELETE] = "delete", [ACT_HOLD] = "hold", [ACT_RELEASE] = "release",
    [ACT_REQUEUE] = "requeue", [ACT_BOUNCE] = "bounce",
};

/* 1 done, 0 skipped (nothing to do), -1 failed, -2 vanished (look again). */
static int act_one(struct act_state *s, const char *qid, int queue)
{
    struct strbuf newid, why;
    int rc = 1;

    switch (s->kind) {
    case ACT_DELETE:
        if (act_unlink(s, qid, queue) < 0)
            return errno == ENOENT ? -2 : -1;
        act_remove_logs(s, qid);
        act_log("%s: removed%s", qid, "");
        return 1;
    case ACT_HOLD:
        if (queue == QUEUE_LIST_HOLD || queue == QUEUE_LIST_MAILDROP)
            return 0;
        if (act_move(s, qid, queue, QUEUE_LIST_HOLD) < 0)
            return errno == ENOENT ? -2 : -1;
        act_log("%s: placed on hold%s", qid, "");
        return 1;
    case ACT_RELEASE:
        if (queue != QUEUE_LIST_HOLD)
            return 0;
        if (act_move(s, qid, queue, QUEUE_LIST_DEFERRED) < 0)
            return errno == ENOENT ? -2 : -1;
        {
            /* Due at once: qmgr takes deferred files whose time has come. */
            struct strbuf path;

            strbuf_init(&path, 64, PATH_MAX);
            act_path(&path, QUEUE_LIST_DEFERRED, qid);
            (void) utimensat(s->qfd, path.data, NULL, AT_SYMLINK_NOFOLLOW);
            strbuf_release(&path);
        }
        act_log("%s: released from hold%s", qid, "");
        return 1;
    case ACT_REQUEUE:
    case ACT_BOUNCE:
        if (queue == QUEUE_LIST_MAILDROP)
            return 0;           /* pickup has not taken it yet */
        if (queue != QUEUE_LIST_HOLD && act_move(s, qid, queue, QUEUE_LIST_HOLD) < 0)
            return errno == ENOENT ? -2 : -1;
        strbuf_init(&newid, 32, 256);
        strbuf_init(&why, 128, 4096);
        if (s->kind == ACT_REQUEUE
            ? act_requeue_staged(s, qid, queue == QUEUE_LIST_HOLD, &newid, &why) < 0
            : act_bounce_staged(s, qid, &newid, &why) < 0) {
            msg_error("%s: cannot %s: %s", qid, act_verb[s->kind], why.data);
            if (queue != QUEUE_LIST_HOLD && act_move(s, qid, QUEUE_LIST_HOLD, queue) < 0)
                msg_error("%s: left in the hold queue: %m", qid);
            rc = -1;
        } else {
            if (act_unlink(s, qid, QUEUE_LIST_HOLD) < 0)
                msg_warn("%s: remove after %s: %m", qid, act_verb[s->kind]);
            act_remove_logs(s, qid);
            if (s->kind == ACT_REQUEUE)
                act_log("%s: requeued as %s", qid, newid.data);
            else
                act_log("%s: bounced by administrator, sender non-delivery notification: %s",
                        qid, newid.len ? newid.data : "none");
            act_log("%s: removed%s", qid, "");
        }
        strbuf_release(&newid);
        strbuf_release(&why);
        return rc;
    }
    return -1;
}

static const char *const act_summary[] = {
    [ACT_DELETE] = "Deleted", [ACT_HOLD] = "Placed on hold", [ACT_RELEASE] = "Released from hold",
    [ACT_REQUEUE] = "Requeued", [ACT_BOUNCE] = "Bounced",
};

/* One target, followed when qmgr moved it meanwhile, and counted. */
static void act_handle(struct act_state *s, const char *qid, int queue)
{
    char path[PATH_MAX];
    int tries, rc;

    for (tries = 0; (rc = act_one(s, qid, queue)) == -2 && tries < ACT_RETRIES; tries++) {
        /* qmgr moved it meanwhile (incoming -> active -> deferred): follow it. */
        if (!petrel_queue_locate(s->qfd, qid, &queue, path, sizeof(path)))
            break;
    }
    if (rc == 1)
        s->done++;
    else if (rc == 0)
        s->skipped++;
    else if (rc == -2)
        s->skipped++;           /* gone: delivered or removed meanwhile */
    else {
        if (s->kind != ACT_REQUEUE && s->kind != ACT_BOUNCE)
            msg_error("%s: cannot %s: %m", qid, act_verb[s->kind]);
        s->failed++;
    }
}

int petrel_queue_act(const char *action, struct queue_opts *o)
{
    struct act_state s;
    size_t i;

    memset(&s, 0, sizeof(s));
    s.kind = strcmp(action, "delete") == 0 ? ACT_DELETE : strcmp(action, "hold") == 0 ? ACT_HOLD
        : strcmp(action, "release") == 0 ? ACT_RELEASE : strcmp(action, "requeue") == 0
        ? ACT_REQUEUE : ACT_BOUNCE;
    server_log_open(1);
    if (act_privileges() < 0)
        return EX_NOPERM;
    if ((s.qfd = petrel_queue_open_dir()) < 0)
        return EX_NOPERM;
    s.seen = htable_new(256);
    for (i = 0; i < ACT_WORKERS; i++) {
        s.worker_fd[i] = s.result_fd[i] = -1;
        strbuf_init(&s.pending[i], ACT_PIPE_BATCH + 256, STRBUF_UNLIMITED);
    }
    if (act_targets(&s, o) < 0) {
        if (s.done)             /* a streaming action stopped part way */
            msg_info("%s: %lu message%s", act_summary[s.kind], s.done, s.done == 1 ? "" : "s");
        for (i = 0; i < ACT_WORKERS; i++)
            strbuf_release(&s.pending[i]);
        htable_free(&s.seen, NULL);
        close(s.qfd);
        return EX_USAGE;
    }
    for (i = 0; i < s.n; i++)
        act_handle(&s, s.t[i].qid, s.t[i].queue);
    cleanup_disconnect(&s.cleanup);
    msg_info("%s: %lu message%s", act_summary[s.kind], s.done, s.done == 1 ? "" : "s");
    if (s.failed)
        msg_warn("%lu message%s could not be changed", s.failed, s.failed == 1 ? "" : "s");
    free(s.t);
    for (i = 0; i < ACT_WORKERS; i++)
        strbuf_release(&s.pending[i]);
    htable_free(&s.seen, NULL);
    close(s.qfd);
    return s.failed ? 1 : 0;
}
