/*
 * status_log.c - the defer/, bounce/ and trace/ logs of recipient outcomes
 * (util/status_log.h has the record format).
 *
 * SUMMARY
 *	One file per message and log, named by the queue ID in the hashed
 *	buckets of util/queue_path.h, holding one line per record. qmgr appends
 *	(status_log_append); the bounce service and the queue listing read
 *	(status_log_read); qmgr removes a log once it has been acted upon.
 *
 * NEVER
 *	Never follows a symlink or opens a file with more than one link (all
 *	opens go through util/safe_file.h); never writes a line longer than
 *	STATUS_LOG_MAX_LINE or one that a value could break: values are xtext,
 *	and control characters in them are written as spaces, because a decoded
 *	value goes into DSN headers and must never hold CR or LF. Never trusts
 *	what it reads: a line that is too long, cut short by a crash, or
 *	malformed in any way (bad xtext, a control character, a repeated field,
 *	a bad number, status or action) is skipped with a warning.
 *
 * DIAGNOSTICS
 *	I/O errors return -1 with errno and a sentence in why naming the file.
 *
 * DURABILITY
 *	A record is one write() on an O_APPEND descriptor and an fdatasync; a
 *	new log's bucket directory is fsynced too, so a record that qmgr has
 *	written before it marks a recipient done survives a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg.h"
#include "mymalloc.h"
#include "queue_path.h"
#include "safe_file.h"
#include "smtp_cmd.h"
#include "status_log.h"
#include "strbuf.h"

#define STATUS_LOG_READ_CHUNK   65536
#define STATUS_LOG_NOTIFY_MAX   15      /* all four CLEANUP_NOTIFY_* bits */

/* Field indexes; the order is the order written. */
enum status_field {
    SL_TIME, SL_RECIPIENT, SL_ORIG_RCPT, SL_DSN_ORCPT, SL_NOTIFY, SL_OFFSET,
    SL_STATUS, SL_ACTION, SL_RELAY, SL_REASON, SL_COUNT
};

static const char *const status_log_names[SL_COUNT] = {
    "time", "recipient", "orig_rcpt", "dsn_orcpt", "notify", "offset",
    "status", "action", "relay", "reason",
};

/* A record without one of these is not one we wrote whole: skip it. The
 * reason is last, so a record cut before it (see status_log_format) is
 * refused rather than read with a truncated relay or status. */
static const int status_log_required[] = {SL_TIME, SL_RECIPIENT, SL_OFFSET, SL_STATUS,
    SL_ACTION, SL_REASON};

static const char *const status_log_actions[] = {
    "failed", "delayed", "delivered", "relayed", "expanded", NULL,
};

/* --- Encoding ----------------------------------------------------------- */

/* Appends " name=xtext(value)", control characters turned into spaces. */
static void status_log_put(struct strbuf *line, const char *name, const char *value,
                           struct strbuf *tmp)
{
    const unsigned char *p;

    strbuf_reset(tmp);
    for (p = (const unsigned char *) (value ? value : ""); *p; p++)
        (void) strbuf_putc(tmp, *p < 0x20 || *p == 0x7f ? ' ' : *p);
    if (line->len > 0)
        (void) strbuf_putc(line, ' ');
    (void) strbuf_printf(line, "%s=", name);
    smtp_xtext_encode(tmp->data, line);
}

/* Shortens line to at most max bytes without splitting a "+HH" escape
 * (in xtext a "+" only ever starts an escape). */
static void status_log_cut(struct strbuf *line, size_t max)
{
    size_t cut = max;

    if (line->len <= max)
        return;
    if (cut >= 1 && line->data[cut - 1] == '+')
        cut -= 1;
    else if (cut >= 2 && line->data[cut - 2] == '+')
        cut -= 2;
    strbuf_truncate(line, cut);
}

void status_log_format(const struct status_entry *e, struct strbuf *line)
{
    struct strbuf tmp;

    strbuf_init(&tmp, 128, 0);
    strbuf_reset(line);
    (void) strbuf_printf(line, "time=%lld", (long long) e->time);
    status_log_put(line, "recipient", e->recipient, &tmp);
    status_log_put(line, "orig_rcpt", e->orig_rcpt, &tmp);
    status_log_put(line, "dsn_orcpt", e->dsn_orcpt, &tmp);
    (void) strbuf_printf(line, " notify=%d offset=%lld", e->notify, (long long) e->offset);
    status_log_put(line, "status", e->status, &tmp);
    status_log_put(line, "action", e->action, &tmp);
    status_log_put(line, "relay", e->relay, &tmp);
    status_log_put(line, "reason", e->reason, &tmp);
    strbuf_release(&tmp);
    /* The reason is last and is the only field that can be long, so a cut
     * shortens the reason; the LF makes STATUS_LOG_MAX_LINE. */
    status_log_cut(line, STATUS_LOG_MAX_LINE - 1);
}

/* --- Parsing ------------------------------------------------------------ */

static int status_log_number(const char *s, size_t len, long long min, long long max,
                             long long *out)
{
    long long v = 0;
    size_t i;

    if (len == 0 || len > 19)
        return -1;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (LLONG_MAX - (s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* "X.Y.Z": class 2, 4 or 5, then one to three digits twice (RFC 3463). */
static int status_log_status_ok(const char *s)
{
    int part, n;

    if (s[0] != '2' && s[0] != '4' && s[0] != '5')
        return 0;
    s++;
    for (part = 0; part < 2; part++) {
        if (*s++ != '.')
            return 0;
        for (n = 0; *s >= '0' && *s <= '9'; s++)
            n++;
        if (n < 1 || n > 3)
            return 0;
    }
    return *s == '\0';
}

static int status_log_action_ok(const char *s)
{
    const char *const *p;

    for (p = status_log_actions; *p; p++)
        if (strcmp(s, *p) == 0)
            return 1;
    return 0;
}

static int status_log_field(const char *name, size_t len)
{
    int i;

    for (i = 0; i < SL_COUNT; i++)
        if (strlen(status_log_names[i]) == len && memcmp(status_log_names[i], name, len) == 0)
            return i;
    return -1;
}

int status_log_parse(const char *line, size_t len, struct status_entry *e,
                     struct strbuf *scratch)
{
    size_t off[SL_COUNT], i = 0, tok, eq;
    int seen[SL_COUNT] = {0}, f;
    long long num[SL_COUNT] = {0};
    struct strbuf val;
    const char *p;
    unsigned k;
    int ret = -1;

    if (len >= STATUS_LOG_MAX_LINE)
        return -1;
    strbuf_init(&val, 64, STATUS_LOG_MAX_LINE);
    strbuf_reset(scratch);
    while (i < len) {
        if (line[i] == ' ') {
            i++;
            continue;
        }
        for (tok = i; i < len && line[i] != ' '; i++)
            ;
        if ((p = memchr(line + tok, '=', i - tok)) == NULL || p == line + tok)
            goto out;
        eq = (size_t) (p - line);
        if ((f = status_log_field(line + tok, eq - tok)) < 0)
            continue;                   /* a field from a newer writer */
        if (seen[f]++)
            goto out;                   /* a second value would be a forgery */
        if (f == SL_TIME || f == SL_NOTIFY || f == SL_OFFSET) {
            long long max = f == SL_NOTIFY ? STATUS_LOG_NOTIFY_MAX : LLONG_MAX;

            if (status_log_number(line + eq + 1, i - eq - 1, 0, max, &num[f]) < 0)
                goto out;
            continue;
        }
        if (smtp_xtext_decode(line + eq + 1, i - eq - 1, STATUS_LOG_MAX_LINE, &val) < 0
            || memchr(val.data, '\0', val.len) != NULL)
            goto out;
        off[f] = scratch->len;
        if (strbuf_append(scratch, val.data, val.len + 1) < 0)
            goto out;
    }
    for (k = 0; k < sizeof(status_log_required) / sizeof(status_log_required[0]); k++)
        if (!seen[status_log_required[k]])
            goto out;
    /* Pointers are taken only now: scratch may have moved while it grew. */
#define SL_STR(f) (seen[f] ? scratch->data + off[f] : "")
    memset(e, 0, sizeof(*e));
    e->time = (time_t) num[SL_TIME];
    e->recipient = SL_STR(SL_RECIPIENT);
    e->orig_rcpt = SL_STR(SL_ORIG_RCPT);
    e->dsn_orcpt = SL_STR(SL_DSN_ORCPT);
    e->notify = (int) num[SL_NOTIFY];
    e->offset = (off_t) num[SL_OFFSET];
    e->status = SL_STR(SL_STATUS);
    e->action = SL_STR(SL_ACTION);
    e->relay = SL_STR(SL_RELAY);
    e->reason = SL_STR(SL_REASON);
#undef SL_STR
    if (*e->recipient == '\0' || !status_log_status_ok(e->status)
        || !status_log_action_ok(e->action))
        goto out;
    ret = 0;
out:
    strbuf_release(&val);
    return ret;
}

/* --- Files -------------------------------------------------------------- */

static void status_log_check(const char *log)
{
    if (strcmp(log, STATUS_LOG_DEFER) != 0 && strcmp(log, STATUS_LOG_BOUNCE) != 0
        && strcmp(log, STATUS_LOG_TRACE) != 0)
        msg_panic("status_log: unknown log \"%s\"", log);
}

static int status_log_fail(struct strbuf *why, int err, const char *fmt, const char *path)
{
    if (why) {
        strbuf_reset(why);
        (void) strbuf_printf(why, fmt, path, strerror(err));
    }
    errno = err;
    return -1;
}

/* Creates a log that does not exist yet: bucket directories with the log
 * directory's own mode, the file with O_EXCL, then a directory fsync so the
 * name survives a crash along with the first record. */
static int status_log_create(int dirfd, const char *log, const char *qid, int depth,
                             const char *path, struct strbuf *why)
{
    struct strbuf dir;
    struct stat st;
    int fd, err;

    strbuf_init(&dir, 64, PATH_MAX);
    queue_path_dir(&dir, log, qid, depth);
    if (fstatat(dirfd, log, &st, 0) < 0) {
        err = errno;
        strbuf_release(&dir);
        return status_log_fail(why, err, "%s: %s", log);
    }
    if (depth > 0 && safe_file_mkdirs(dirfd, dir.data, st.st_mode & 07777, why) < 0) {
        strbuf_release(&dir);
        return -1;
    }
    fd = safe_file_create(dirfd, path, O_RDWR | O_APPEND, 0600, why);
    if (fd >= 0 && safe_file_sync_dir(dirfd, dir.data) < 0) {
        err = errno;
        (void) close(fd);
        fd = status_log_fail(why, err, "fsync %s: %s", dir.data);
    }
    strbuf_release(&dir);
    return fd;
}

static int status_log_open_append(int dirfd, const char *log, const char *qid, int depth,
                                  const char *path, struct strbuf *why)
{
    int tries, fd;

    /* Two tries: a log made between our open and our create is opened again. */
    for (tries = 0; tries < 2; tries++) {
        fd = safe_file_open(dirfd, path, O_RDWR | O_APPEND, geteuid(), NULL, why);
        if (fd >= 0 || errno != ENOENT)
            return fd;
        fd = status_log_create(dirfd, log, qid, depth, path, why);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* 1 when the log does not end in LF: a crash cut its last record short. */
static int status_log_torn(int fd)
{
    struct stat st;
    char last;

    return fstat(fd, &st) == 0 && st.st_size > 0
        && pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n';
}

int status_log_append(int dirfd, const char *log, const char *qid, int depth,
                      const struct status_entry *entry, struct strbuf *why)
{
    struct strbuf path, line, rec;
    int fd, ret = -1, err = 0;
    ssize_t n;

    status_log_check(log);
    strbuf_init(&path, 64, PATH_MAX);
    strbuf_init(&line, 256, 0);
    strbuf_init(&rec, 256, 0);
    queue_path(&path, log, qid, depth);
    if ((fd = status_log_open_append(dirfd, log, qid, depth, path.data, why)) < 0)
        goto out;
    /* After a torn record ours starts on a line of its own, so the damage
     * stays one skipped line and never swallows a good record. */
    if (status_log_torn(fd))
        (void) strbuf_putc(&line, '\n');
    status_log_format(entry, &rec);
    (void) strbuf_append(&line, rec.data, rec.len);
    (void) strbuf_putc(&line, '\n');
    /* One write: O_APPEND puts it at the end in one piece, never interleaved. */
    do
        n = write(fd, line.data, line.len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        err = errno;
    else if ((size_t) n != line.len)
        err = ENOSPC;                   /* a short write to a regular file: the disk */
    else if (fdatasync(fd) < 0)
        err = errno;
    if (err) {
        /* A partial line is skipped by readers; the next append ends it. */
        status_log_fail(why, err, "write %s: %s", path.data);
    } else
        ret = 0;
    (void) close(fd);
out:
    strbuf_release(&path);
    strbuf_release(&line);
    strbuf_release(&rec);
    return ret;
}

struct status_log_reader {
    const char *path;
    long lineno;
    long count;
    status_log_fn fn;
    void *ctx;
    struct strbuf scratch;
};

/* One complete line (without its LF); 1 when fn asked to stop. */
static int status_log_line(struct status_log_reader *rd, const char *line, size_t len)
{
    struct status_entry e;

    rd->lineno++;
    if (len == 0)
        return 0;
    if (len >= STATUS_LOG_MAX_LINE || status_log_parse(line, len, &e, &rd->scratch) < 0) {
        msg_warn("%s: line %ld: malformed record skipped", rd->path, rd->lineno);
        return 0;
    }
    rd->count++;
    return rd->fn(&e, rd->ctx) != 0;
}

long status_log_read(int dirfd, const char *log, const char *qid, int depth,
                     status_log_fn fn, void *ctx, struct strbuf *why)
{
    struct status_log_reader rd;
    struct strbuf path, pending;
    struct stat st;
    char *buf = 0;
    off_t left;
    int fd, skipping = 0, stop = 0, err = 0;
    ssize_t n;

    status_log_check(log);
    strbuf_init(&path, 64, PATH_MAX);
    queue_path(&path, log, qid, depth);
    if ((fd = safe_file_open(dirfd, path.data, O_RDONLY, SAFE_FILE_ANY_OWNER, &st, why)) < 0) {
        err = errno;
        strbuf_release(&path);
        if (err == ENOENT)
            return 0;
        errno = err;
        return -1;
    }
    memset(&rd, 0, sizeof(rd));
    rd.path = path.data;
    rd.fn = fn;
    rd.ctx = ctx;
    strbuf_init(&rd.scratch, 256, 0);
    strbuf_init(&pending, 256, STATUS_LOG_MAX_LINE);
    buf = xmalloc(STATUS_LOG_READ_CHUNK);
    /* Only the bytes there at open: the walk ends even if the log grows. */
    for (left = st.st_size; left > 0 && !stop; left -= n) {
        size_t want = left < STATUS_LOG_READ_CHUNK ? (size_t) left : STATUS_LOG_READ_CHUNK;
        size_t i = 0;

        if ((n = read(fd, buf, want)) < 0) {
            if (errno == EINTR) {
                n = 0;
                continue;
            }
            err = errno;
            break;
        }
        if (n == 0)
            break;                      /* truncated under us: what we have is all */
        while (i < (size_t) n && !stop) {
            char *nl = memchr(buf + i, '\n', (size_t) n - i);
            size_t seg = nl ? (size_t) (nl - (buf + i)) : (size_t) n - i;

            if (!skipping && strbuf_append(&pending, buf + i, seg) < 0) {
                /* Over STATUS_LOG_MAX_LINE: drop the rest of this line. */
                skipping = 1;
                strbuf_reset(&pending);
            }
            i += seg;
            if (nl == NULL)
                break;
            i++;
            if (skipping) {
                rd.lineno++;
                msg_warn("%s: line %ld: over %d bytes, skipped", rd.path, rd.lineno,
                         STATUS_LOG_MAX_LINE);
                skipping = 0;
            } else
                stop = status_log_line(&rd, pending.data, pending.len);
            strbuf_reset(&pending);
        }
    }
    if (!err && !stop && (pending.len > 0 || skipping))
        msg_warn("%s: line %ld: incomplete last record skipped", rd.path, rd.lineno + 1);
    free(buf);
    strbuf_release(&pending);
    strbuf_release(&rd.scratch);
    (void) close(fd);
    if (err) {
        status_log_fail(why, err, "read %s: %s", path.data);
        strbuf_release(&path);
        return -1;
    }
    strbuf_release(&path);
    return rd.count;
}

int status_log_remove(int dirfd, const char *log, const char *qid, int depth,
                      struct strbuf *why)
{
    struct strbuf path;
    int ret = 0;

    status_log_check(log);
    strbuf_init(&path, 64, PATH_MAX);
    queue_path(&path, log, qid, depth);
    /* No directory fsync: a log that comes back after a crash at worst
     * repeats a notice, and qmgr removes it again. */
    if (unlinkat(dirfd, path.data, 0) < 0 && errno != ENOENT)
        ret = status_log_fail(why, errno, "remove %s: %s", path.data);
    strbuf_release(&path);
    return ret;
}
