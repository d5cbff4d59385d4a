/*
 * pickup - collects local submissions from maildrop/ and hands each to cleanup
 * (Postfix's pickup(8)). A TRIGGER daemon: master wakes it every "wakeup"
 * seconds and petrel-drop pokes it after each submission; every wake-up scans
 * maildrop/ once.
 *
 * DESCRIPTION
 *	Each file is opened without following symlinks and must be a regular file
 *	with one link; one still being written (mode other than 0444) is left for
 *	the next scan. The submitter is the file owner (logged as "uid=N" and
 *	passed to cleanup as submit_uid), never anything in the file. Like
 *	Postfix, the sender the user chose (-f) is kept. Envelope attributes from
 *	users other than root and mail_owner are limited to the few a submitter
 *	may set (full_name, dsn_envid, dsn_ret), so a user cannot pose as an SMTP
 *	client. The file is removed only after cleanup answers OK (the message is
 *	then durable in incoming/).
 *
 * NEVER
 *	Never crashes on a bad file: one that fails the queue file reader is
 *	logged and moved to corrupt/. A message cleanup rejects (header_checks,
 *	a milter) is returned to its sender with a DSN, as Postfix does: it goes
 *	to cleanup again with CLEANUP_FLAG_BOUNCE; only when that fails too is it
 *	moved to corrupt/. Never removes a
 *	submission that cleanup did not accept; a message cleanup defers is
 *	tried again at the next wake-up, and an unreachable cleanup service ends
 *	the scan.
 *
 * PARAMETERS
 *	queue_directory, mail_owner, ipc_timeout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup_client.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qfile.h"
#include "qid.h"
#include "safe_file.h"
#include "server.h"
#include "strbuf.h"

#define PICKUP_SCAN_MAX         10000   /* files per wake-up; the rest wait for the next */
#define PICKUP_CHUNK            65536
#define PICKUP_READY_MODE       0444    /* petrel-drop's "complete" mark */

/* RETRY: the cleanup service is unreachable, so the scan ends; SKIP: cleanup
 * deferred this one message (e.g. a 4xx header check), so the scan goes on. */
enum pickup_result { PICKUP_DONE, PICKUP_CORRUPT, PICKUP_RETRY, PICKUP_SKIP };

static struct cleanup_client *pickup_cleanup;
static uid_t pickup_owner_uid;

/* Attributes any submitter may set; trusted ones (root, mail_owner) may set all. */
static const char *const pickup_user_attrs[] = {"full_name", "dsn_envid", "dsn_ret", NULL};

/* The submission's own directions to pickup, not forwarded as attributes. */
#define PICKUP_ATTR_EXTRACT "extract_recipients"

struct pickup_file {
    const char *name;
    uid_t uid;
    int trusted;
    int flags;                  /* CLEANUP_FLAG_* */
    struct strbuf why;
};

static int pickup_attr_allowed(const struct pickup_file *pf, const char *attr)
{
    size_t n = strcspn(attr, "=");
    const char *const *p;

    if (strncmp(attr, "submit_uid=", 11) == 0)
        return 0;               /* ours to set, from the file owner */
    if (pf->trusted)
        return 1;
    for (p = pickup_user_attrs; *p; p++)
        if (strlen(*p) == n && strncmp(attr, *p, n) == 0)
            return 1;
    return 0;
}

/* First pass: the whole file must read cleanly; learns the cleanup flags. */
static int pickup_examine(int fd, struct pickup_file *pf)
{
    struct qfile_reader *r;
    struct qfile_record rec;
    unsigned qflags;
    int status;

    if ((r = qfile_reader_fdopen(fd, &pf->why)) == NULL)
        return -1;
    pf->flags = CLEANUP_FLAG_LOCAL_SUBMIT;
    qflags = qfile_flags(r);
    if (qflags & QFILE_FLAG_8BIT)
        pf->flags |= CLEANUP_FLAG_8BITMIME;
    if (qflags & QFILE_FLAG_SMTPUTF8)
        pf->flags |= CLEANUP_FLAG_SMTPUTF8;
    if (qflags & QFILE_FLAG_BINARYMIME)
        pf->flags |= CLEANUP_FLAG_BINARYMIME;
    while ((status = qfile_next(r, &rec)) > 0) {
        if (rec.type == QREC_ATTR && strcmp(rec.data, PICKUP_ATTR_EXTRACT "=1") == 0)
            pf->flags |= CLEANUP_FLAG_EXTRACT_RCPT | CLEANUP_FLAG_REMOVE_BCC;
        else if (rec.type == QREC_DONE) {
            strbuf_set(&pf->why, "a submission has no finished recipients");
            status = -2;
            break;
        }
    }
    if (status == -1)
        strbuf_set(&pf->why, qfile_reason(r));
    qfile_close(&r);
    return status < 0 ? -1 : 0;
}

static int pickup_content(struct qfile_reader *r, uint64_t len)
{
    char *buf = xmalloc(PICKUP_CHUNK);
    ssize_t got;
    int ret = 0;

    while (len > 0) {
        got = qfile_content_read(r, buf, len < PICKUP_CHUNK ? (size_t) len : PICKUP_CHUNK);
        if (got <= 0 || cleanup_write(pickup_cleanup, buf, (size_t) got) < 0) {
            ret = -1;
            break;
        }
        len -= (uint64_t) got;
    }
    free(buf);
    return ret;
}

/* Second pass: the envelope and content go to cleanup as they are read. */
static int pickup_send(int fd, struct pickup_file *pf)
{
    struct qfile_reader *r;
    struct qfile_record rec;
    char uidbuf[32], *orcpt = NULL;
    int notify = 0, status, ret = -1;
    const char *qid = cleanup_queue_id(pickup_cleanup);

    if ((r = qfile_reader_fdopen(fd, &pf->why)) == NULL)
        return -1;
    snprintf(uidbuf, sizeof(uidbuf), "%lu", (unsigned long) pf->uid);
    if (cleanup_attr(pickup_cleanup, "submit_uid", uidbuf) < 0)
        goto out;
    while ((status = qfile_next(r, &rec)) > 0) {
        switch (rec.type) {
        case QREC_SENDER:
            msg_info("%s: uid=%lu from=<%s>", qid, (unsigned long) pf->uid, rec.data);
            if (cleanup_sender(pickup_cleanup, rec.data) < 0)
                goto out;
            break;
        case QREC_ATTR:
            if (strncmp(rec.data, PICKUP_ATTR_EXTRACT "=", sizeof(PICKUP_ATTR_EXTRACT)) == 0
                || strncmp(rec.data, "bounce_reason=", 14) == 0
                || !pickup_attr_allowed(pf, rec.data))
                break;
            {
                char *eq = strchr(rec.data, '=');
                char *name = xstrndup(rec.data, (size_t) (eq - rec.data));
                int bad = cleanup_attr(pickup_cleanup, name, eq + 1) < 0;

                free(name);
                if (bad)
                    goto out;
            }
            break;
        case QREC_ORCPT:
            orcpt = xstrdup(rec.data);
            break;
        case QREC_NOTIFY:
            notify = atoi(rec.data);
            break;
        case QREC_RCPT:
            status = cleanup_recipient(pickup_cleanup, rec.data, orcpt, notify);
            xfree(&orcpt);
            notify = 0;
            if (status < 0)
                goto out;
            break;
        case QREC_CONTENT:
            if (pickup_content(r, rec.len) < 0)
                goto out;
            break;
        }
    }
    ret = status < 0 ? -1 : 0;
out:
    free(orcpt);
    qfile_close(&r);
    return ret;
}

/* Moves a bad file aside for the administrator; never overwrites one there. */
static void pickup_corrupt(int dirfd, const char *name, const char *why)
{
    char alt[QID_BUFSIZE + 32];
    int cfd;

    msg_warn("maildrop/%s: %s: moved to corrupt/", name, why);
    if ((cfd = open("corrupt", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        msg_warn("open %s/corrupt: %m; removing maildrop/%s", var_queue_directory, name);
        (void) unlinkat(dirfd, name, 0);
        return;
    }
    if (renameat2(dirfd, name, cfd, name, RENAME_NOREPLACE) < 0) {
        snprintf(alt, sizeof(alt), "%.*s.%ld", QID_MAX_LEN + 8, name, (long) time(NULL));
        if (renameat2(dirfd, name, cfd, alt, RENAME_NOREPLACE) < 0) {
            msg_warn("rename maildrop/%s to corrupt/: %m; removing it", name);
            (void) unlinkat(dirfd, name, 0);
        }
    }
    close(cfd);
}

static int pickup_connect(void)
{
    struct strbuf why;

    if (pickup_cleanup)
        return 0;
    strbuf_init(&why, 128, 4096);
    pickup_cleanup = cleanup_connect(NULL, (int) var_ipc_timeout * 1000, &why);
    if (pickup_cleanup == NULL)
        msg_warn("connect to cleanup: %s", why.data);
    strbuf_release(&why);
    return pickup_cleanup ? 0 : -1;
}

static void pickup_drop_connection(void)
{
    cleanup_disconnect(&pickup_cleanup);
}

/* bounce_reason: NULL, or cleanup's rejection of the first attempt, to have the
 * message returned to its sender instead (CLEANUP_FLAG_BOUNCE), as Postfix's
 * cleanup returns rejected local mail. */
static enum pickup_result pickup_deliver(int dirfd, int fd, struct pickup_file *pf,
                                         const char *bounce_reason)
{
    struct cleanup_result res;
    int flags = pf->flags | (bounce_reason ? CLEANUP_FLAG_BOUNCE : 0);

    if (pickup_connect() < 0)
        return PICKUP_RETRY;
    strbuf_reset(&pf->why);
    if (cleanup_open(pickup_cleanup, flags, &pf->why) < 0) {
        msg_warn("maildrop/%s: cleanup: %s", pf->name, pf->why.data);
        pickup_drop_connection();
        return PICKUP_RETRY;
    }
    if ((bounce_reason && cleanup_attr(pickup_cleanup, "bounce_reason", bounce_reason) < 0)
        || pickup_send(fd, pf) < 0) {
        /* The file read cleanly a moment ago: a fault now is the connection's. */
        msg_warn("maildrop/%s: sending to cleanup failed%s%s", pf->name,
                 pf->why.len ? ": " : "", pf->why.data);
        cleanup_abort(pickup_cleanup);
        pickup_drop_connection();
        return PICKUP_RETRY;
    }
    memset(&res, 0, sizeof(res));
    if (cleanup_finish(pickup_cleanup, &res) < 0) {
        msg_warn("maildrop/%s: no verdict from cleanup", pf->name);
        pickup_drop_connection();
        return PICKUP_RETRY;
    }
    switch (res.status) {
    case CLEANUP_OK:
        if (unlinkat(dirfd, pf->name, 0) < 0 && errno != ENOENT)
            msg_warn("remove maildrop/%s: %m", pf->name);
        return PICKUP_DONE;
    case CLEANUP_REJECT:
        if (bounce_reason == NULL) {
            char reply[sizeof(res.reply)];

            memcpy(reply, res.reply, sizeof(reply));
            msg_info("maildrop/%s: rejected: %s; returning it to the sender", pf->name, reply);
            return pickup_deliver(dirfd, fd, pf, reply);
        }
        strbuf_reset(&pf->why);
        strbuf_printf(&pf->why, "rejected by cleanup: %s", res.reply);
        return PICKUP_CORRUPT;
    default:
        msg_warn("maildrop/%s: cleanup deferred it: %s", pf->name, res.reply);
        return PICKUP_SKIP;
    }
}

static enum pickup_result pickup_one(int dirfd, const char *name)
{
    struct pickup_file pf;
    struct stat st;
    enum pickup_result result = PICKUP_DONE;
    int fd;

    memset(&pf, 0, sizeof(pf));
    pf.name = name;
    strbuf_init(&pf.why, 128, 4096);
    /* EACCES: another user's file still being written (mode 0600); ENOENT: gone. */
    if ((fd = safe_file_open(dirfd, name, O_RDONLY, SAFE_FILE_ANY_OWNER, &st, &pf.why)) < 0) {
        if (errno != ENOENT && errno != EACCES)
            result = PICKUP_CORRUPT;
    } else if ((st.st_mode & 07777) != PICKUP_READY_MODE) {
        if (msg_verbose)
            msg_info("maildrop/%s: not complete yet", name);
    } else {
        pf.uid = st.st_uid;
        pf.trusted = st.st_uid == 0 || st.st_uid == pickup_owner_uid;
        if (pickup_examine(fd, &pf) < 0)
            result = PICKUP_CORRUPT;
        else
            result = pickup_deliver(dirfd, fd, &pf, NULL);
    }
    if (fd >= 0)
        close(fd);
    if (result == PICKUP_CORRUPT)
        pickup_corrupt(dirfd, name, pf.why.data);
    strbuf_release(&pf.why);
    return result;
}

static int pickup_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* One scan of maildrop/, oldest first (queue IDs sort by arrival). */
static void pickup_scan(void)
{
    DIR *dir;
    struct dirent *de;
    char **names;
    size_t n = 0, i;
    int dfd;

    if ((dir = opendir("maildrop")) == NULL) {
        msg_warn("open %s/maildrop: %m", var_queue_directory);
        return;
    }
    names = xcalloc(PICKUP_SCAN_MAX, sizeof(*names));
    while (n < PICKUP_SCAN_MAX && (de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;           /* ".", "..", and petrel-drop's temporary names */
        if (!qid_valid(de->d_name)) {
            pickup_corrupt(dirfd(dir), de->d_name, "not a queue ID");
            continue;
        }
        names[n++] = xstrdup(de->d_name);
    }
    qsort(names, n, sizeof(*names), pickup_name_cmp);
    dfd = dirfd(dir);
    for (i = 0; i < n; i++)
        if (pickup_one(dfd, names[i]) == PICKUP_RETRY)
            break;
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(dir);
}

static void pickup_trigger(const char *buf, size_t len, const struct server_ctx *ctx)
{
    pickup_scan();
}

static void pickup_post_init(const struct server_ctx *ctx)
{
    pickup_owner_uid = geteuid();
}

static void pickup_pre_exit(const struct server_ctx *ctx)
{
    pickup_drop_connection();
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_TRIGGER,
        .post_init = pickup_post_init,
        .trigger = pickup_trigger,
        .pre_exit = pickup_pre_exit,
    };

    server_main(argc, argv, &ops);
}
