/*
 * qfile.c - the one writer and the one reader of queue files.
 *
 * DESCRIPTION
 *	The format is in docs/queue-file.md: "PQF1", the fixed size record,
 *	then records of one type byte and a big-endian length (4 bytes; 8 for
 *	the content record), the END record last. The writer buffers records
 *	in memory and writes with pwrite at offsets it tracks, so a small
 *	message costs one write, one fchmod, one fsync of the file and one of
 *	its bucket directory; lengths are patched in the buffer while they are
 *	still there and with one pwrite when they are not. The reader uses
 *	pread on a regular file only (a read can then never block on a peer),
 *	takes the file size once, and checks every length against it and
 *	against QFILE_MAX_* before it reads or allocates.
 *
 * NEVER
 *	Never follows a symlink or opens a file with more than one link; never
 *	makes a file complete (mode 0700) before all of it is written; never
 *	reads past the file size or a record limit; never trusts a length.
 *
 * DIAGNOSTICS
 *	I/O errors return -1 with errno (sticky in the writer: once a write
 *	failed every later call fails with the same errno, so the caller sees
 *	it at commit at the latest). A malformed file makes the reader return
 *	-1 with a reason naming the offset. Misuse of the writer (records in
 *	the wrong order, content written twice, commit without content) is a
 *	bug in the caller and panics.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "msg.h"
#include "mymalloc.h"
#include "qfile.h"
#include "queue_path.h"
#include "safe_file.h"
#include "strbuf.h"

#define QFILE_HDR_LEN           5       /* type byte, u32 length */
#define QFILE_CONTENT_HDR_LEN   9       /* type byte, u64 length */
#define QFILE_SIZE_OFFSET       QFILE_MAGIC_LEN
#define QFILE_PREAMBLE_LEN      (QFILE_MAGIC_LEN + QFILE_HDR_LEN + QFILE_SIZE_PAYLOAD)
#define QFILE_FLAGS_KNOWN       (QFILE_FLAG_8BIT | QFILE_FLAG_SMTPUTF8 | QFILE_FLAG_BINARYMIME)
#define QFILE_MODE_PARTIAL      0600
#define QFILE_MODE_COMPLETE     0700

#define QFILE_WBUF_SIZE         (64 * 1024)
#define QFILE_RBUF_SIZE         (2 * QFILE_MAX_RECORD)
#define QFILE_IO_RETRIES        1000    /* EINTR and short transfers per call */

/* ------------------------------------------------------------------ */
/* Big-endian integers                                                 */

static void qfile_be_put(unsigned char *p, uint64_t v, int n)
{
    while (n-- > 0) {
        p[n] = (unsigned char) (v & 0xff);
        v >>= 8;
    }
}

static uint64_t qfile_be_get(const unsigned char *p, int n)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Writes all of len bytes at offset; 0 or -1 with errno. */
static int qfile_pwrite_all(int fd, const void *data, size_t len, uint64_t off)
{
    const char *p = data;
    ssize_t n;
    int tries = 0;

    while (len > 0) {
        if (off > (uint64_t) LLONG_MAX - len) {
            errno = EFBIG;
            return -1;
        }
        n = pwrite(fd, p, len, (off_t) off);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0) {
            p += n;
            len -= (size_t) n;
            off += (uint64_t) n;
        } else if (++tries > QFILE_IO_RETRIES) {
            errno = EIO;
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Writer                                                              */

enum qfile_wstate {
    QFILE_W_ENVELOPE,           /* before the content */
    QFILE_W_CONTENT,            /* between content_begin and content_end */
    QFILE_W_TRAILER,            /* after the content */
    QFILE_W_COMMITTED,
};

struct qfile_writer {
    int fd;
    int created;                /* by qfile_create: owned, removable, to be made complete */
    int dirfd;                  /* queue_dirfd of qfile_create (not owned) */
    char qid[QID_BUFSIZE];
    struct strbuf path;         /* relative to dirfd */
    struct strbuf dir;          /* the bucket directory */
    unsigned char *buf;
    size_t buf_len;
    uint64_t buf_off;           /* file offset of buf[0] */
    int error;                  /* sticky errno of a failed write */
    enum qfile_wstate state;
    int pending_orcpt, pending_notify;
    int have_sender;
    uint32_t rcpt_count;
    uint32_t records;
    uint64_t content_hdr_off;   /* of the content record's type byte */
    uint64_t content_off;       /* of the first content byte */
    uint64_t content_len;
};

static struct qfile_writer *qfile_writer_alloc(int fd)
{
    struct qfile_writer *w = xcalloc(1, sizeof(*w));
    unsigned char *p;

    w->fd = fd;
    w->dirfd = AT_FDCWD;
    strbuf_init(&w->path, 64, PATH_MAX);
    strbuf_init(&w->dir, 64, PATH_MAX);
    w->buf = xmalloc(QFILE_WBUF_SIZE);
    /* The magic and a size record of zeros, which no reader accepts, until commit. */
    p = w->buf;
    memcpy(p, QFILE_MAGIC, QFILE_MAGIC_LEN);
    p[QFILE_MAGIC_LEN] = QREC_SIZE;
    qfile_be_put(p + QFILE_MAGIC_LEN + 1, QFILE_SIZE_PAYLOAD, 4);
    memset(p + QFILE_MAGIC_LEN + QFILE_HDR_LEN, 0, QFILE_SIZE_PAYLOAD);
    w->buf_len = QFILE_PREAMBLE_LEN;
    w->records = 1;
    return w;
}

struct qfile_writer *qfile_create(int queue_dirfd, const char *queue_name, int depth,
                                  struct strbuf *why)
{
    struct qfile_writer *w;
    char qid[QID_BUFSIZE];
    int fd;

    if ((fd = queue_path_create(queue_dirfd, queue_name, depth, QFILE_MODE_PARTIAL, qid)) < 0) {
        if (why) {
            int err = errno;

            strbuf_reset(why);
            strbuf_printf(why, "cannot create a queue file in %s: %s", queue_name,
                          strerror(err));
            errno = err;
        }
        return 0;
    }
    w = qfile_writer_alloc(fd);
    w->created = 1;
    w->dirfd = queue_dirfd;
    memcpy(w->qid, qid, sizeof(w->qid));
    queue_path(&w->path, queue_name, qid, depth);
    queue_path_dir(&w->dir, queue_name, qid, depth);
    return w;
}

struct qfile_writer *qfile_fdopen(int fd)
{
    struct stat st;

    /* pwrite patches lengths in place, so this must be a seekable, empty file (a memfd). */
    if (fstat(fd, &st) < 0)
        return 0;
    if (!S_ISREG(st.st_mode) || st.st_size != 0) {
        errno = EINVAL;
        return 0;
    }
    return qfile_writer_alloc(fd);
}

const char *qfile_writer_id(const struct qfile_writer *w)
{
    return w->qid;
}

int qfile_writer_fd(const struct qfile_writer *w)
{
    return w->fd;
}

static int qfile_fail(struct qfile_writer *w, int err)
{
    if (!w->error)
        w->error = err;
    errno = w->error;
    return -1;
}

static int qfile_flush(struct qfile_writer *w)
{
    if (w->error)
        return qfile_fail(w, w->error);
    if (w->buf_len == 0)
        return 0;
    if (qfile_pwrite_all(w->fd, w->buf, w->buf_len, w->buf_off) < 0)
        return qfile_fail(w, errno);
    w->buf_off += w->buf_len;
    w->buf_len = 0;
    return 0;
}

/* Appends bytes through the buffer; a large piece goes straight to the file. */
static int qfile_emit(struct qfile_writer *w, const void *data, size_t len)
{
    if (w->error)
        return qfile_fail(w, w->error);
    if (len > QFILE_WBUF_SIZE - w->buf_len) {
        if (qfile_flush(w) < 0)
            return -1;
        if (len >= QFILE_WBUF_SIZE) {
            if (qfile_pwrite_all(w->fd, data, len, w->buf_off) < 0)
                return qfile_fail(w, errno);
            w->buf_off += len;
            return 0;
        }
    }
    if (len > 0)
        memcpy(w->buf + w->buf_len, data, len);
    w->buf_len += len;
    return 0;
}

/* Overwrites bytes already emitted: in the buffer when still there, else in the file. */
static int qfile_patch(struct qfile_writer *w, uint64_t off, const void *data, size_t len)
{
    if (w->error)
        return qfile_fail(w, w->error);
    if (off >= w->buf_off) {
        memcpy(w->buf + (off - w->buf_off), data, len);
        return 0;
    }
    if (off + len > w->buf_off)
        msg_panic("qfile_patch: a patch across the buffer start");
    if (qfile_pwrite_all(w->fd, data, len, off) < 0)
        return qfile_fail(w, errno);
    return 0;
}

static uint64_t qfile_tell(const struct qfile_writer *w)
{
    return w->buf_off + w->buf_len;
}

static const char *qfile_type_name(int type)
{
    static char buf[8];

    if (type > 32 && type < 127)
        snprintf(buf, sizeof(buf), "'%c'", type);
    else
        snprintf(buf, sizeof(buf), "%d", type);
    return buf;
}

/* The order rules of docs/queue-file.md, for the writer (a violation is our bug). */
static void qfile_check_order(struct qfile_writer *w, int type)
{
    if (w->state == QFILE_W_CONTENT || w->state == QFILE_W_COMMITTED)
        msg_panic("qfile_put: record %s %s", qfile_type_name(type),
                  w->state == QFILE_W_CONTENT ? "inside the content" : "after commit");
    switch (type) {
    case QREC_TIME:
    case QREC_ATTR:
    case QREC_SENDER:
        if (w->pending_orcpt || w->pending_notify)
            msg_panic("qfile_put: record %s between ORCPT/NOTIFY and its recipient",
                      qfile_type_name(type));
        if (type == QREC_SENDER && w->have_sender++)
            msg_panic("qfile_put: a second sender record");
        break;
    case QREC_ORCPT:
        if (w->pending_orcpt++)
            msg_panic("qfile_put: two ORCPT records for one recipient");
        break;
    case QREC_NOTIFY:
        if (w->pending_notify++)
            msg_panic("qfile_put: two NOTIFY records for one recipient");
        break;
    case QREC_RCPT:
    case QREC_DONE:
        w->pending_orcpt = w->pending_notify = 0;
        break;
    default:
        msg_panic("qfile_put: record type %s is not an envelope record", qfile_type_name(type));
    }
}

int qfile_put(struct qfile_writer *w, int type, const void *data, size_t len)
{
    unsigned char hdr[QFILE_HDR_LEN];
    uint32_t reserve;

    if (w->error)
        return qfile_fail(w, w->error);
    /* Refused before the order bookkeeping, so the caller may skip the record. */
    reserve = w->state == QFILE_W_ENVELOPE ? 2 : 1;        /* content, END */
    if (len > QFILE_MAX_RECORD || w->records + 1 + reserve > QFILE_MAX_RECORDS) {
        errno = EMSGSIZE;
        return -1;
    }
    if (len > 0 && memchr(data, '\0', len)) {
        errno = EINVAL;
        return -1;
    }
    qfile_check_order(w, type);
    hdr[0] = (unsigned char) type;
    qfile_be_put(hdr + 1, len, 4);
    if (qfile_emit(w, hdr, sizeof(hdr)) < 0 || qfile_emit(w, data, len) < 0)
        return -1;
    w->records++;
    if (type == QREC_RCPT || type == QREC_DONE)
        w->rcpt_count++;
    return 0;
}

int qfile_put_str(struct qfile_writer *w, int type, const char *str)
{
    return qfile_put(w, type, str, strlen(str));
}

int qfile_put_attr(struct qfile_writer *w, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    char small[512], *p;
    int ret;

    if (nlen == 0 || memchr(name, '=', nlen))
        msg_panic("qfile_put_attr: bad attribute name \"%.40s\"", name);
    if (nlen + 1 + vlen > QFILE_MAX_RECORD) {
        errno = EMSGSIZE;
        return -1;
    }
    p = nlen + 1 + vlen <= sizeof(small) ? small : xmalloc(nlen + 1 + vlen);
    memcpy(p, name, nlen);
    p[nlen] = '=';
    memcpy(p + nlen + 1, value, vlen);
    ret = qfile_put(w, QREC_ATTR, p, nlen + 1 + vlen);
    if (p != small) {
        int err = errno;

        free(p);
        errno = err;
    }
    return ret;
}

int qfile_content_begin(struct qfile_writer *w)
{
    unsigned char hdr[QFILE_CONTENT_HDR_LEN] = {QREC_CONTENT};

    if (w->state != QFILE_W_ENVELOPE)
        msg_panic("qfile_content_begin: content was already written");
    if (w->pending_orcpt || w->pending_notify)
        msg_panic("qfile_content_begin: ORCPT/NOTIFY without a recipient");
    if (w->error)
        return qfile_fail(w, w->error);
    w->content_hdr_off = qfile_tell(w);
    if (qfile_emit(w, hdr, sizeof(hdr)) < 0)
        return -1;
    w->content_off = qfile_tell(w);
    w->content_len = 0;
    w->records++;
    w->state = QFILE_W_CONTENT;
    return 0;
}

int qfile_content_write(struct qfile_writer *w, const void *data, size_t len)
{
    if (w->state != QFILE_W_CONTENT)
        msg_panic("qfile_content_write: not inside the content record");
    if (qfile_emit(w, data, len) < 0)
        return -1;
    w->content_len += len;
    return 0;
}

int qfile_content_end(struct qfile_writer *w)
{
    unsigned char len[8];

    if (w->state != QFILE_W_CONTENT)
        msg_panic("qfile_content_end: not inside the content record");
    w->state = QFILE_W_TRAILER;
    qfile_be_put(len, w->content_len, 8);
    return qfile_patch(w, w->content_hdr_off + 1, len, sizeof(len));
}

static int qfile_why(struct strbuf *why, const struct qfile_writer *w, const char *what)
{
    int err = errno;

    if (why) {
        strbuf_reset(why);
        strbuf_printf(why, "queue file %s: %s: %s", w->created ? w->qid : "stream", what,
                      strerror(err));
    }
    errno = err;
    return -1;
}

int qfile_commit(struct qfile_writer *w, unsigned flags, struct strbuf *why)
{
    unsigned char end[QFILE_HDR_LEN] = {QREC_END, 0, 0, 0, 0};
    unsigned char size[QFILE_SIZE_PAYLOAD];

    if (w->state != QFILE_W_TRAILER)
        msg_panic("qfile_commit: %s", w->state == QFILE_W_COMMITTED ? "committed twice"
                  : "no complete content record");
    if (w->pending_orcpt || w->pending_notify)
        msg_panic("qfile_commit: ORCPT/NOTIFY without a recipient");
    if (!w->have_sender)
        msg_panic("qfile_commit: no sender record");
    if (flags & ~QFILE_FLAGS_KNOWN)
        msg_panic("qfile_commit: unknown flags 0x%x", flags);
    qfile_be_put(size, w->content_off, 8);
    qfile_be_put(size + 8, w->content_len, 8);
    qfile_be_put(size + 16, w->rcpt_count, 4);
    qfile_be_put(size + 20, flags, 4);
    if (qfile_emit(w, end, sizeof(end)) < 0
        || qfile_patch(w, QFILE_SIZE_OFFSET + QFILE_HDR_LEN, size, sizeof(size)) < 0
        || qfile_flush(w) < 0)
        return qfile_why(why, w, "write");
    /*
     * The mode changes before the fsync so that one fsync makes both durable:
     * after a crash a complete-looking file either holds everything or fails
     * the reader's checks; no file that was acknowledged can look partial.
     */
    if (w->created) {
        if (fchmod(w->fd, QFILE_MODE_COMPLETE) < 0)
            return qfile_why(why, w, "fchmod");
        if (safe_file_sync(w->fd) < 0)
            return qfile_why(why, w, "fsync");
        if (safe_file_sync_dir(w->dirfd, w->dir.data) < 0)
            return qfile_why(why, w, "fsync directory");
    } else if (safe_file_sync(w->fd) < 0 && errno != EINVAL && errno != EROFS) {
        return qfile_why(why, w, "fsync");
    }
    w->state = QFILE_W_COMMITTED;
    return 0;
}

int qfile_move(struct qfile_writer *w, const char *queue_name, int depth, struct strbuf *why)
{
    struct strbuf path, dir;
    int err;

    if (!w->created || w->state == QFILE_W_COMMITTED)
        msg_panic("qfile_move: %s", w->created ? "already committed" : "not a created file");
    strbuf_init(&path, 64, PATH_MAX);
    strbuf_init(&dir, 64, PATH_MAX);
    queue_path(&path, queue_name, w->qid, depth);
    queue_path_dir(&dir, queue_name, w->qid, depth);
    if (safe_file_mkdirs(w->dirfd, dir.data, 0700, NULL) < 0
        || renameat(w->dirfd, w->path.data, w->dirfd, path.data) < 0) {
        err = errno;
        strbuf_release(&path);
        strbuf_release(&dir);
        if (why) {
            strbuf_reset(why);
            strbuf_printf(why, "cannot move %s to %s: %s", w->qid, queue_name, strerror(err));
        }
        errno = err;
        return -1;
    }
    strbuf_set(&w->path, path.data);
    strbuf_set(&w->dir, dir.data);
    strbuf_release(&path);
    strbuf_release(&dir);
    return 0;
}

static void qfile_writer_destroy(struct qfile_writer *w, int remove)
{
    if (w->created) {
        if (remove && unlinkat(w->dirfd, w->path.data, 0) < 0 && errno != ENOENT)
            msg_warn("%s: remove %s: %s", w->qid, w->path.data, strerror(errno));
        (void) close(w->fd);
    }
    strbuf_release(&w->path);
    strbuf_release(&w->dir);
    free(w->buf);
    free(w);
}

void qfile_abort(struct qfile_writer **wp)
{
    if (*wp)
        qfile_writer_destroy(*wp, 1);
    *wp = 0;
}

void qfile_writer_free(struct qfile_writer **wp)
{
    /* An uncommitted file of ours must not stay behind as a partial queue file. */
    if (*wp)
        qfile_writer_destroy(*wp, (*wp)->state != QFILE_W_COMMITTED);
    *wp = 0;
}

/* ------------------------------------------------------------------ */
/* Reader                                                              */

struct qfile_reader {
    int fd;
    int owned;
    uint64_t size;              /* file size at open */
    unsigned char *buf;         /* buf[0] is at file offset buf_off */
    size_t buf_len, buf_pos;
    uint64_t buf_off;
    struct strbuf rec;          /* the current record's data, NUL-terminated */
    uint64_t content_off, content_len;
    uint32_t rcpt_count;
    unsigned flags;
    /* Order state (docs/queue-file.md, "Order"). */
    int done;                   /* 1 after END, -1 after an error */
    int seen_time, seen_sender, seen_content;
    int pending_orcpt, pending_notify;
    uint32_t rcpts, records;
    uint64_t content_left;      /* unread content bytes */
    uint64_t content_at;        /* file offset of the next content byte */
    int io_error;               /* errno of a failed read; 0 for a malformed file */
    char reason[160];
};

static uint64_t qfile_rpos(const struct qfile_reader *r)
{
    return r->buf_off + r->buf_pos;
}

static int qfile_bad(struct qfile_reader *r, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int qfile_bad(struct qfile_reader *r, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    int n;

    n = snprintf(r->reason, sizeof(r->reason), "offset %llu: ", (unsigned long long) off);
    if (n < 0 || (size_t) n >= sizeof(r->reason))
        n = 0;
    va_start(ap, fmt);
    vsnprintf(r->reason + n, sizeof(r->reason) - (size_t) n, fmt, ap);
    va_end(ap);
    r->done = -1;
    errno = EINVAL;
    return -1;
}

static int qfile_io_error(struct qfile_reader *r)
{
    r->io_error = errno;
    snprintf(r->reason, sizeof(r->reason), "read error: %s", strerror(r->io_error));
    r->done = -1;
    errno = r->io_error;
    return -1;
}

/* Makes n bytes from the current position available in the buffer (n <= its size). */
static int qfile_fill(struct qfile_reader *r, size_t n)
{
    size_t avail = r->buf_len - r->buf_pos;
    int tries = 0;
    ssize_t got;

    if (avail >= n)
        return 0;
    if (qfile_rpos(r) + n > r->size)
        return qfile_bad(r, qfile_rpos(r), "file truncated");
    memmove(r->buf, r->buf + r->buf_pos, avail);
    r->buf_off += r->buf_pos;
    r->buf_pos = 0;
    r->buf_len = avail;
    while (r->buf_len < n) {
        uint64_t want = r->size - (r->buf_off + r->buf_len);

        if (want > QFILE_RBUF_SIZE - r->buf_len)
            want = QFILE_RBUF_SIZE - r->buf_len;
        got = pread(r->fd, r->buf + r->buf_len, (size_t) want,
                    (off_t) (r->buf_off + r->buf_len));
        if (got > 0) {
            r->buf_len += (size_t) got;
        } else if (got == 0) {
            return qfile_bad(r, r->buf_off + r->buf_len, "file truncated while reading");
        } else if (errno != EINTR || ++tries > QFILE_IO_RETRIES) {
            return qfile_io_error(r);
        }
    }
    return 0;
}

/* Moves the position n bytes on (n may reach past the buffer). */
static void qfile_skip(struct qfile_reader *r, uint64_t n)
{
    if (n <= r->buf_len - r->buf_pos) {
        r->buf_pos += (size_t) n;
    } else {
        r->buf_off = qfile_rpos(r) + n;
        r->buf_pos = r->buf_len = 0;
    }
}

static int qfile_read_preamble(struct qfile_reader *r)
{
    const unsigned char *p;
    uint64_t min_off = QFILE_PREAMBLE_LEN + QFILE_CONTENT_HDR_LEN;

    if (r->size < QFILE_PREAMBLE_LEN)
        return qfile_bad(r, 0, "file shorter than its size record");
    if (qfile_fill(r, QFILE_PREAMBLE_LEN) < 0)
        return -1;
    p = r->buf + r->buf_pos;
    if (memcmp(p, QFILE_MAGIC, QFILE_MAGIC_LEN) != 0)
        return qfile_bad(r, 0, "not a queue file (bad magic)");
    p += QFILE_MAGIC_LEN;
    if (p[0] != QREC_SIZE || qfile_be_get(p + 1, 4) != QFILE_SIZE_PAYLOAD)
        return qfile_bad(r, QFILE_MAGIC_LEN, "no size record");
    p += QFILE_HDR_LEN;
    r->content_off = qfile_be_get(p, 8);
    r->content_len = qfile_be_get(p + 8, 8);
    r->rcpt_count = (uint32_t) qfile_be_get(p + 16, 4);
    r->flags = (unsigned) qfile_be_get(p + 20, 4);
    if (r->content_off == 0)
        return qfile_bad(r, QFILE_MAGIC_LEN, "incomplete file (size record not written)");
    /* The content, the END record and at least a sender record must fit. */
    if (r->content_off < min_off || r->content_off > r->size
        || r->content_len > r->size - r->content_off
        || r->size - r->content_off - r->content_len < QFILE_HDR_LEN)
        return qfile_bad(r, QFILE_MAGIC_LEN, "size record does not fit the file size %llu",
                         (unsigned long long) r->size);
    if (r->rcpt_count > QFILE_MAX_RECORDS)
        return qfile_bad(r, QFILE_MAGIC_LEN, "size record recipient count %lu too large",
                         (unsigned long) r->rcpt_count);
    if (r->flags & ~QFILE_FLAGS_KNOWN)
        return qfile_bad(r, QFILE_MAGIC_LEN, "unknown flags 0x%x", r->flags);
    qfile_skip(r, QFILE_PREAMBLE_LEN);
    r->records = 1;
    return 0;
}

static struct qfile_reader *qfile_reader_start(int fd, int owned, const char *name,
                                               struct strbuf *why)
{
    struct qfile_reader *r;
    struct stat st;

    int err = fstat(fd, &st) < 0 ? errno : S_ISREG(st.st_mode) ? 0 : EINVAL;

    if (err) {

        if (why) {
            strbuf_reset(why);
            strbuf_printf(why, "%s: %s", name, err == EINVAL ? "not a regular file"
                          : strerror(err));
        }
        if (owned)
            (void) close(fd);
        errno = err;
        return 0;
    }
    r = xcalloc(1, sizeof(*r));
    r->fd = fd;
    r->owned = owned;
    r->size = (uint64_t) st.st_size;
    r->buf = xmalloc(QFILE_RBUF_SIZE);
    strbuf_init(&r->rec, 256, QFILE_MAX_RECORD);
    if (qfile_read_preamble(r) < 0) {
        err = r->io_error ? r->io_error : EINVAL;
        if (why) {
            strbuf_reset(why);
            strbuf_printf(why, "%s: %s%s", name, r->io_error ? "" : "malformed queue file: ",
                          r->reason);
        }
        qfile_close(&r);
        errno = err;
        return 0;
    }
    return r;
}

struct qfile_reader *qfile_open(int dirfd, const char *path, int flags, struct strbuf *why)
{
    int fd;

    if ((fd = safe_file_open(dirfd, path, flags, SAFE_FILE_ANY_OWNER, 0, why)) < 0)
        return 0;
    return qfile_reader_start(fd, 1, path, why);
}

struct qfile_reader *qfile_reader_fdopen(int fd, struct strbuf *why)
{
    return qfile_reader_start(fd, 0, "queue file stream", why);
}

static int qfile_digits(const char *s, size_t len)
{
    return len > 0 && strspn(s, "0123456789") == len;
}

/* Payload checks for the records whose syntax the format itself defines. */
static int qfile_check_payload(struct qfile_reader *r, int type, uint64_t off)
{
    const char *s = r->rec.data, *dot;
    size_t len = r->rec.len;

    if (memchr(s, '\0', len))
        return qfile_bad(r, off, "NUL byte in a %s record", qfile_type_name(type));
    switch (type) {
    case QREC_TIME:
        dot = memchr(s, '.', len);
        if (!dot || !qfile_digits(s, (size_t) (dot - s)) || dot - s > 20
            || !qfile_digits(dot + 1, len - (size_t) (dot - s) - 1) || s + len - dot - 1 != 6)
            return qfile_bad(r, off, "bad arrival time record");
        break;
    case QREC_ATTR:
        if (len == 0 || s[0] == '=' || !memchr(s, '=', len))
            return qfile_bad(r, off, "attribute record without name=value");
        break;
    case QREC_NOTIFY:
        if (!qfile_digits(s, len) || len > 10)
            return qfile_bad(r, off, "bad NOTIFY record");
        break;
    }
    return 0;
}

/* The order rules of docs/queue-file.md, for the reader (a violation is a bad file). */
static int qfile_check_rorder(struct qfile_reader *r, int type, uint64_t off)
{
    int pending = r->pending_orcpt || r->pending_notify;

    switch (type) {
    case QREC_TIME:
        if (r->seen_time++)
            return qfile_bad(r, off, "second arrival time record");
        break;
    case QREC_SENDER:
        if (r->seen_sender++)
            return qfile_bad(r, off, "second sender record");
        break;
    case QREC_ORCPT:
        if (r->pending_orcpt++)
            return qfile_bad(r, off, "two ORCPT records for one recipient");
        return 0;
    case QREC_NOTIFY:
        if (r->pending_notify++)
            return qfile_bad(r, off, "two NOTIFY records for one recipient");
        return 0;
    case QREC_RCPT:
    case QREC_DONE:
        if (++r->rcpts > r->rcpt_count)
            return qfile_bad(r, off, "more recipients than the size record says");
        r->pending_orcpt = r->pending_notify = 0;
        return 0;
    case QREC_CONTENT:
        if (r->seen_content++)
            return qfile_bad(r, off, "second content record");
        break;
    case QREC_END:
        if (!r->seen_content)
            return qfile_bad(r, off, "no content record");
        if (!r->seen_sender)
            return qfile_bad(r, off, "no sender record");
        if (r->rcpts != r->rcpt_count)
            return qfile_bad(r, off, "%lu recipients, the size record says %lu",
                             (unsigned long) r->rcpts, (unsigned long) r->rcpt_count);
        if (off + QFILE_HDR_LEN != r->size)
            return qfile_bad(r, off, "data after the end record");
        break;
    case QREC_ATTR:
        break;
    default:
        return qfile_bad(r, off, "unknown record type %s", qfile_type_name(type));
    }
    if (pending)
        return qfile_bad(r, off, "record %s between ORCPT/NOTIFY and its recipient",
                         qfile_type_name(type));
    return 0;
}

static int qfile_next_content(struct qfile_reader *r, struct qfile_record *rec, uint64_t off)
{
    uint64_t len;

    if (qfile_fill(r, QFILE_CONTENT_HDR_LEN) < 0)
        return -1;
    len = qfile_be_get(r->buf + r->buf_pos + 1, 8);
    if (off + QFILE_CONTENT_HDR_LEN != r->content_off || len != r->content_len)
        return qfile_bad(r, off, "content record disagrees with the size record");
    qfile_skip(r, QFILE_CONTENT_HDR_LEN);
    r->content_at = qfile_rpos(r);
    r->content_left = len;
    strbuf_reset(&r->rec);
    rec->type = QREC_CONTENT;
    rec->offset = (off_t) off;
    rec->data = r->rec.data;
    rec->len = (size_t) len;
    return 1;
}

int qfile_next(struct qfile_reader *r, struct qfile_record *rec)
{
    uint64_t off, len;
    int type;

    if (r->done)
        return r->done > 0 ? 0 : -1;
    /* Skip what the caller did not read of the content. */
    if (r->content_left) {
        qfile_skip(r, r->content_at + r->content_left - qfile_rpos(r));
        r->content_left = 0;
    }
    off = qfile_rpos(r);
    if (++r->records > QFILE_MAX_RECORDS)
        return qfile_bad(r, off, "more than %d records", QFILE_MAX_RECORDS);
    if (qfile_fill(r, 1) < 0)
        return -1;
    type = r->buf[r->buf_pos];
    if (qfile_check_rorder(r, type, off) < 0)
        return -1;
    if (type == QREC_CONTENT)
        return qfile_next_content(r, rec, off);
    if (qfile_fill(r, QFILE_HDR_LEN) < 0)
        return -1;
    len = qfile_be_get(r->buf + r->buf_pos + 1, 4);
    if (len > QFILE_MAX_RECORD)
        return qfile_bad(r, off, "record length %llu exceeds the limit",
                         (unsigned long long) len);
    if (!r->seen_content && off + QFILE_HDR_LEN + len > r->content_off - QFILE_CONTENT_HDR_LEN)
        return qfile_bad(r, off, "record overlaps the content");
    qfile_skip(r, QFILE_HDR_LEN);
    if (qfile_fill(r, (size_t) len) < 0)
        return -1;
    strbuf_reset(&r->rec);
    if (strbuf_append(&r->rec, r->buf + r->buf_pos, (size_t) len) < 0)
        return qfile_bad(r, off, "record too long");
    qfile_skip(r, len);
    if (qfile_check_payload(r, type, off) < 0)
        return -1;
    rec->type = type;
    rec->offset = (off_t) off;
    rec->data = r->rec.data;
    rec->len = r->rec.len;
    if (type == QREC_END) {
        r->done = 1;
        return 0;
    }
    return 1;
}

ssize_t qfile_content_read(struct qfile_reader *r, void *buf, size_t len)
{
    size_t avail, n;
    ssize_t got;
    int tries = 0;

    if (r->done < 0)
        return -1;
    if (len > r->content_left)
        len = (size_t) r->content_left;
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    if (len == 0)
        return 0;
    avail = r->buf_len - r->buf_pos;
    /* Small reads go through the buffer, so reading in small pieces stays cheap. */
    if (avail == 0 && len < QFILE_RBUF_SIZE / 2) {
        if (qfile_fill(r, (size_t) (r->content_left < QFILE_RBUF_SIZE
                                    ? r->content_left : QFILE_RBUF_SIZE)) < 0)
            return -1;
        avail = r->buf_len - r->buf_pos;
    }
    if (avail > 0) {
        n = len < avail ? len : avail;
        memcpy(buf, r->buf + r->buf_pos, n);
        r->buf_pos += n;
    } else {
        /* The buffer is used up: read straight into the caller's buffer. */
        r->buf_off = r->content_at;
        r->buf_pos = r->buf_len = 0;
        for (;;) {
            got = pread(r->fd, buf, len, (off_t) r->content_at);
            if (got > 0)
                break;
            if (got == 0) {
                qfile_bad(r, r->content_at, "file truncated inside the content");
                return -1;
            }
            if (errno != EINTR || ++tries > QFILE_IO_RETRIES)
                return qfile_io_error(r);
        }
        n = (size_t) got;
        r->buf_off += n;
    }
    r->content_at += n;
    r->content_left -= n;
    return (ssize_t) n;
}

const char *qfile_reason(const struct qfile_reader *r)
{
    return r->reason[0] ? r->reason : "no error";
}

int qfile_reader_fd(const struct qfile_reader *r)
{
    return r->fd;
}

uint64_t qfile_content_offset(const struct qfile_reader *r)
{
    return r->content_off;
}

uint64_t qfile_content_length(const struct qfile_reader *r)
{
    return r->content_len;
}

uint32_t qfile_rcpt_count(const struct qfile_reader *r)
{
    return r->rcpt_count;
}

unsigned qfile_flags(const struct qfile_reader *r)
{
    return r->flags;
}

void qfile_close(struct qfile_reader **rp)
{
    struct qfile_reader *r = *rp;

    if (r) {
        if (r->owned)
            (void) close(r->fd);
        strbuf_release(&r->rec);
        free(r->buf);
        free(r);
    }
    *rp = 0;
}

/* ------------------------------------------------------------------ */
/* In-place updates                                                    */

int qfile_mark_done(int fd, off_t offset)
{
    char type = 0;
    ssize_t n;

    /* Only a recipient record may change; anything else is a stale or wrong offset. */
    do {
        n = pread(fd, &type, 1, offset);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if (n == 0 || (type != QREC_RCPT && type != QREC_DONE)) {
        errno = EINVAL;
        return -1;
    }
    if (type == QREC_DONE)
        return 0;
    type = QREC_DONE;
    do {
        n = pwrite(fd, &type, 1, offset);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
        if (n == 0)
            errno = EIO;
        return -1;
    }
    while (fdatasync(fd) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

int qfile_is_complete(mode_t mode)
{
    return (mode & S_IXUSR) != 0;
}
