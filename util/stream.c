/*
 * stream.c - buffered byte streams with timeouts and deadlines.
 * The contract is in stream.h. Internals worth knowing:
 * - I/O is "try, then poll": the layer is called first and poll() runs only
 *   when it says it would block, so a TLS layer holding decrypted bytes that
 *   poll() cannot see never stalls.
 * - The read buffer holds at least limit + 2 bytes for a line read, enough to
 *   see a line of limit bytes and a CRLF after it, so a terminator is never
 *   split. It grows only when a caller asks for a larger limit, never because
 *   of what the peer sends.
 * - A returned line is NUL-terminated in place. When that NUL covers an
 *   unconsumed byte (a STREAM_EOL_LIMIT piece), the byte is saved and put
 *   back at the start of the next read operation.
 * Must never block without a bound, never allocate per line, never lose the
 * order of bytes. Failures are recorded per direction and returned as -1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "msg.h"
#include "mymalloc.h"
#include "stream.h"

struct stream {
    int fd;
    int flags;                  /* STREAM_F_* */
    int saved_fl;               /* F_GETFL before O_NONBLOCK was set; -1: leave */
    int is_sock;
    const struct stream_io *io;
    void *ctx;
    char *rbuf;                 /* rcap bytes plus one for a NUL */
    size_t rpos;                /* first unconsumed byte */
    size_t rend;                /* end of buffered input */
    size_t rcap;
    int nul_saved;              /* rbuf[nul_pos] holds a NUL over nul_byte */
    size_t nul_pos;
    char nul_byte;
    char *wbuf;
    size_t wlen;
    size_t wcap;
    int timeout_ms;
    int deadline_on;
    int64_t deadline_us;        /* CLOCK_MONOTONIC */
    int64_t budget_us;
    unsigned min_rate;          /* bytes per second; 0: nothing is earned */
    enum stream_status status[2];
    int err[2];
};

/* The plain layer; its context is the stream itself, to know socket from pipe. */
static ssize_t stream_fd_read(void *ctx, int fd, void *buf, size_t len)
{
    ssize_t n = read(fd, buf, len);

    (void) ctx;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return STREAM_IO_WANT_READ;
    return n;
}

static ssize_t stream_fd_write(void *ctx, int fd, const void *buf, size_t len)
{
    const struct stream *s = ctx;
    ssize_t n;

    /* MSG_NOSIGNAL: a vanished peer is an error to report, not a signal. */
    n = s->is_sock ? send(fd, buf, len, MSG_NOSIGNAL) : write(fd, buf, len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return STREAM_IO_WANT_WRITE;
    return n;
}

static const struct stream_io stream_fd_io = {
    .read = stream_fd_read,
    .write = stream_fd_write,
};

static int64_t stream_now_us(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
        msg_panic("clock_gettime(CLOCK_MONOTONIC): %m");
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Returns -1 with errno describing a failed direction. */
static int stream_fail(const struct stream *s, enum stream_dir dir)
{
    switch (s->status[dir]) {
    case STREAM_TIMEOUT:
        errno = ETIMEDOUT;
        break;
    case STREAM_ERROR:
        errno = s->err[dir];
        break;
    default:
        errno = 0;
        break;
    }
    return -1;
}

static int stream_set_status(struct stream *s, enum stream_dir dir,
                             enum stream_status st, int err)
{
    if (s->status[dir] == STREAM_OK || s->status[dir] == STREAM_EOF) {
        s->status[dir] = st;
        s->err[dir] = err;
    }
    return stream_fail(s, dir);
}

/* Moving n bytes earns time (smtpd_min_data_rate), up to the budget. */
static void stream_earn(struct stream *s, size_t n)
{
    int64_t now, gain, cap;

    if (!s->deadline_on || s->min_rate == 0)
        return;
    now = stream_now_us();
    cap = now + s->budget_us;
    /* Divide first so that huge writes cannot overflow; the cap bounds it anyway. */
    if (n / s->min_rate >= (uint64_t) s->budget_us / 1000000 + 1)
        gain = s->budget_us;
    else
        gain = (int64_t) (n / s->min_rate) * 1000000
            + (int64_t) (n % s->min_rate) * 1000000 / s->min_rate;
    s->deadline_us = (s->deadline_us > cap - gain) ? cap : s->deadline_us + gain;
}

/*
 * Waits for events on the descriptor, bounded by the timeout and the
 * deadline; EINTR does not restart the clock. Returns STREAM_OK when ready
 * (or on POLLHUP/POLLERR, which the next I/O call reports), else the reason,
 * with errno in *errp for STREAM_ERROR.
 */
static enum stream_status stream_poll(struct stream *s, short events, int *errp)
{
    int64_t end = stream_now_us() + (int64_t) s->timeout_ms * 1000;
    int64_t left;
    struct pollfd pfd;
    int n;

    if (s->deadline_on && s->deadline_us < end)
        end = s->deadline_us;
    for (;;) {
        left = end - stream_now_us();
        if (left <= 0)
            return STREAM_TIMEOUT;
        pfd.fd = s->fd;
        pfd.events = events;
        pfd.revents = 0;
        if (left > (int64_t) INT32_MAX * 1000 - 999)
            left = (int64_t) INT32_MAX * 1000 - 999;
        n = poll(&pfd, 1, (int) ((left + 999) / 1000));
        if (n > 0)
            return STREAM_OK;
        if (n < 0 && errno != EINTR) {
            *errp = errno;
            return STREAM_ERROR;
        }
    }
}

/* Calls the layer until it moves bytes or fails; waits as it asks. */
static ssize_t stream_io_call(struct stream *s, enum stream_dir dir, void *buf, size_t len)
{
    enum stream_status st;
    ssize_t n;
    int err = 0;

    for (;;) {
        if (dir == STREAM_DIR_READ)
            n = s->io->read(s->ctx, s->fd, buf, len);
        else
            n = s->io->write(s->ctx, s->fd, buf, len);
        if (n > 0) {
            stream_earn(s, (size_t) n);
            return n;
        }
        if (n == 0) {
            if (dir == STREAM_DIR_READ) {
                s->status[dir] = STREAM_EOF;
                return 0;
            }
            /* A write that moves nothing would spin; no sane layer does it. */
            return stream_set_status(s, dir, STREAM_ERROR, EIO);
        }
        if (n == STREAM_IO_WANT_READ || n == STREAM_IO_WANT_WRITE) {
            st = stream_poll(s, n == STREAM_IO_WANT_READ ? POLLIN : POLLOUT, &err);
            if (st != STREAM_OK)
                return stream_set_status(s, dir, st, err);
            continue;
        }
        if (n == -1 && errno == EINTR)
            continue;
        return stream_set_status(s, dir, STREAM_ERROR, n == -1 ? errno : EIO);
    }
}

struct stream *stream_open_io(int fd, const struct stream_io *io, void *ctx, int flags)
{
    struct stream *s = xcalloc(1, sizeof(*s));
    struct stat st;
    int fl;

    if (io == 0 || io->read == 0 || io->write == 0)
        msg_panic("stream_open_io: incomplete I/O layer");
    s->fd = fd;
    s->flags = flags;
    s->saved_fl = -1;
    s->io = io;
    s->ctx = ctx;
    s->rcap = STREAM_BUFSIZE;
    s->rbuf = xmalloc(s->rcap + 1);
    s->wcap = STREAM_BUFSIZE;
    s->wbuf = xmalloc(s->wcap);
    s->timeout_ms = STREAM_DEFAULT_TIMEOUT_MS;
    if (fd >= 0) {
        if ((fl = fcntl(fd, F_GETFL)) >= 0 && !(fl & O_NONBLOCK)
            && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0)
            s->saved_fl = fl;
        s->is_sock = (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode));
    }
    return s;
}

struct stream *stream_fdopen(int fd, int flags)
{
    struct stream *s = stream_open_io(fd, &stream_fd_io, 0, flags);

    s->ctx = s;
    return s;
}

/* Timeouts and errors are final; EOF still lets buffered input be read. */
static int stream_read_failed(const struct stream *s)
{
    return s->status[STREAM_DIR_READ] == STREAM_TIMEOUT
        || s->status[STREAM_DIR_READ] == STREAM_ERROR;
}

/* Puts back the byte hidden under the NUL of the last STREAM_EOL_LIMIT piece. */
static void stream_restore(struct stream *s)
{
    if (s->nul_saved) {
        s->rbuf[s->nul_pos] = s->nul_byte;
        s->nul_saved = 0;
    }
}

int stream_close(struct stream **sp)
{
    struct stream *s = *sp;
    int ret = 0;
    int err = 0;

    if (s == 0)
        return 0;
    if ((s->wlen > 0 && stream_flush(s) < 0)
        || s->status[STREAM_DIR_WRITE] != STREAM_OK) {
        ret = stream_fail(s, STREAM_DIR_WRITE);
        err = errno;
    }
    if (s->io->close && s->io->close(s->ctx, s->fd) < 0 && ret == 0) {
        ret = -1;
        err = errno;
    }
    if (s->fd >= 0 && s->saved_fl >= 0)
        (void) fcntl(s->fd, F_SETFL, s->saved_fl);
    if (s->fd >= 0 && !(s->flags & STREAM_F_NOCLOSE) && close(s->fd) < 0
        && errno != EINTR && ret == 0) {
        ret = -1;
        err = errno;
    }
    free(s->rbuf);
    free(s->wbuf);
    free(s);
    *sp = 0;
    if (ret < 0)
        errno = err;
    return ret;
}

int stream_fd(const struct stream *s)
{
    return s->fd;
}

void stream_set_io(struct stream *s, const struct stream_io *io, void *ctx)
{
    stream_restore(s);
    if (io == 0 || io->read == 0 || io->write == 0)
        msg_panic("stream_set_io: incomplete I/O layer");
    if (s->rend > s->rpos)
        msg_panic("stream_set_io: %zu bytes of input still buffered", s->rend - s->rpos);
    if (s->wlen > 0)
        msg_panic("stream_set_io: %zu bytes of output not flushed", s->wlen);
    s->io = io;
    s->ctx = ctx;
}

void stream_set_timeout(struct stream *s, int timeout_ms)
{
    if (timeout_ms <= 0)
        msg_panic("stream_set_timeout: bad timeout %d", timeout_ms);
    s->timeout_ms = timeout_ms;
}

int stream_timeout(const struct stream *s)
{
    return s->timeout_ms;
}

void stream_set_deadline(struct stream *s, int budget_ms, unsigned min_rate)
{
    if (budget_ms <= 0)
        msg_panic("stream_set_deadline: bad budget %d", budget_ms);
    s->deadline_on = 1;
    s->budget_us = (int64_t) budget_ms * 1000;
    s->deadline_us = stream_now_us() + s->budget_us;
    s->min_rate = min_rate;
}

void stream_clear_deadline(struct stream *s)
{
    s->deadline_on = 0;
}

int stream_wait(struct stream *s, short events)
{
    enum stream_status st;
    int err = 0;

    if (s->status[STREAM_DIR_WRITE] != STREAM_OK)
        return stream_fail(s, STREAM_DIR_WRITE);
    if ((st = stream_poll(s, events, &err)) == STREAM_OK)
        return 0;
    (void) stream_set_status(s, STREAM_DIR_READ, st, err);
    return stream_set_status(s, STREAM_DIR_WRITE, st, err);
}

enum stream_status stream_status(const struct stream *s, enum stream_dir dir)
{
    return s->status[dir];
}

int stream_errno(const struct stream *s, enum stream_dir dir)
{
    return s->status[dir] == STREAM_ERROR ? s->err[dir] : 0;
}

const char *stream_strerror(const struct stream *s, enum stream_dir dir)
{
    switch (s->status[dir]) {
    case STREAM_OK:
        return "";
    case STREAM_EOF:
        return "end of file";
    case STREAM_TIMEOUT:
        return "timeout";
    case STREAM_ERROR:
        return strerror(s->err[dir]);
    }
    return "unknown stream status";
}

/*
 * Makes room for need contiguous bytes from rpos and reads more input.
 * Returns bytes added, 0 at EOF, -1 on failure.
 */
static ssize_t stream_fill(struct stream *s, size_t need)
{
    ssize_t n;

    if (s->status[STREAM_DIR_READ] == STREAM_EOF)
        return 0;
    if (s->status[STREAM_DIR_READ] != STREAM_OK)
        return stream_fail(s, STREAM_DIR_READ);
    if (need > s->rcap) {
        s->rbuf = xrealloc(s->rbuf, need + 1);
        s->rcap = need;
    }
    if (s->rpos == s->rend) {
        s->rpos = s->rend = 0;
    } else if (s->rend == s->rcap || s->rcap - s->rpos < need) {
        memmove(s->rbuf, s->rbuf + s->rpos, s->rend - s->rpos);
        s->rend -= s->rpos;
        s->rpos = 0;
    }
    if (s->rend == s->rcap)
        msg_panic("stream_fill: buffer full");
    n = stream_io_call(s, STREAM_DIR_READ, s->rbuf + s->rend, s->rcap - s->rend);
    if (n > 0)
        s->rend += (size_t) n;
    return n;
}

/* Index of the first CR or LF in p[from..to), or to if there is none. */
static size_t stream_find_eol(const char *p, size_t from, size_t to)
{
    const char *lf, *cr;

    if (from >= to)
        return to;
    lf = memchr(p + from, '\n', to - from);
    cr = memchr(p + from, '\r', (lf ? (size_t) (lf - p) : to) - from);
    if (cr)
        return (size_t) (cr - p);
    return lf ? (size_t) (lf - p) : to;
}

/* Hands out len bytes at rpos as a line and consumes len + skip bytes. */
static ssize_t stream_take_line(struct stream *s, const char **linep, size_t len,
                                size_t skip, enum stream_eol eol, enum stream_eol *eolp)
{
    char *line = s->rbuf + s->rpos;

    if (skip == 0 && s->rpos + len < s->rend) {
        /* The NUL would cover input the caller has not seen yet. */
        s->nul_saved = 1;
        s->nul_pos = s->rpos + len;
        s->nul_byte = line[len];
    }
    line[len] = '\0';
    s->rpos += len + skip;
    *linep = line;
    *eolp = eol;
    return (ssize_t) len;
}

ssize_t stream_read_line(struct stream *s, const char **linep, size_t limit,
                         enum stream_eol *eolp)
{
    size_t scanned = 0;         /* bytes from rpos known to hold no CR or LF */
    size_t avail, window, i;
    ssize_t n;
    const char *p;

    if (limit == 0 || limit > STREAM_LINE_MAX)
        msg_panic("stream_read_line: bad limit %zu", limit);
    stream_restore(s);
    if (stream_read_failed(s))
        return stream_fail(s, STREAM_DIR_READ);
    for (;;) {
        p = s->rbuf + s->rpos;
        avail = s->rend - s->rpos;
        window = avail < limit + 1 ? avail : limit + 1;
        i = stream_find_eol(p, scanned, window);
        if (i < window && p[i] == '\n')
            return stream_take_line(s, linep, i, 1, STREAM_EOL_LF, eolp);
        if (i < window && i + 1 < avail)
            return p[i + 1] == '\n' ?
                stream_take_line(s, linep, i, 2, STREAM_EOL_CRLF, eolp) :
                stream_take_line(s, linep, i, 1, STREAM_EOL_CR, eolp);
        if (i == window && avail > limit)
            return stream_take_line(s, linep, limit, 0, STREAM_EOL_LIMIT, eolp);
        /* Undecided: no terminator yet, or a CR whose next byte is not here. */
        scanned = i;
        if ((n = stream_fill(s, limit + 2)) > 0)
            continue;
        if (i < window)
            return stream_take_line(s, linep, i, 1, STREAM_EOL_CR, eolp);
        if (avail == 0)
            return -1;
        return stream_take_line(s, linep, avail, 0, STREAM_EOL_NONE, eolp);
    }
}

ssize_t stream_read(struct stream *s, void *buf, size_t len)
{
    size_t avail;
    ssize_t n;

    stream_restore(s);
    if (stream_read_failed(s))
        return stream_fail(s, STREAM_DIR_READ);
    if (len == 0)
        return 0;
    if (s->rpos == s->rend && (n = stream_fill(s, 1)) <= 0)
        return n;
    avail = s->rend - s->rpos;
    if (len > avail)
        len = avail;
    memcpy(buf, s->rbuf + s->rpos, len);
    s->rpos += len;
    return (ssize_t) len;
}

int stream_read_exact(struct stream *s, void *buf, size_t len)
{
    char *p = buf;
    ssize_t n;

    while (len > 0) {
        if ((n = stream_read(s, p, len)) <= 0) {
            if (n == 0)
                errno = 0;
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

size_t stream_pending(const struct stream *s)
{
    return s->rend - s->rpos;
}

int stream_input_ready(struct stream *s)
{
    struct pollfd pfd;

    if (s->rend > s->rpos)
        return 1;
    if (s->io->pending && s->io->pending(s->ctx) > 0)
        return 1;
    if (s->fd < 0 || s->status[STREAM_DIR_READ] != STREAM_OK)
        return 0;
    pfd.fd = s->fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    return poll(&pfd, 1, 0) > 0;
}

size_t stream_peek_input(struct stream *s, char *buf, size_t len)
{
    size_t n;

    stream_restore(s);
    n = s->rend - s->rpos;
    if (n > len)
        n = len;
    memcpy(buf, s->rbuf + s->rpos, n);
    return n;
}

size_t stream_discard_input(struct stream *s)
{
    size_t n;

    stream_restore(s);
    n = s->rend - s->rpos;
    s->rpos = s->rend = 0;
    return n;
}

/* Sends len bytes from p, bypassing the buffer. */
static int stream_send(struct stream *s, const char *p, size_t len)
{
    ssize_t n;

    while (len > 0) {
        if ((n = stream_io_call(s, STREAM_DIR_WRITE, (void *) p, len)) < 0)
            return -1;
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

int stream_flush(struct stream *s)
{
    size_t len = s->wlen;

    if (s->status[STREAM_DIR_WRITE] != STREAM_OK)
        return stream_fail(s, STREAM_DIR_WRITE);
    /* Bytes that failed to go out are dropped: the write side is dead anyway. */
    s->wlen = 0;
    return stream_send(s, s->wbuf, len);
}

size_t stream_unflushed(const struct stream *s)
{
    return s->wlen;
}

int stream_write(struct stream *s, const void *buf, size_t len)
{
    if (s->status[STREAM_DIR_WRITE] != STREAM_OK)
        return stream_fail(s, STREAM_DIR_WRITE);
    if (len > s->wcap - s->wlen && stream_flush(s) < 0)
        return -1;
    if (len >= s->wcap)
        return stream_send(s, buf, len);
    memcpy(s->wbuf + s->wlen, buf, len);
    s->wlen += len;
    return 0;
}

int stream_puts(struct stream *s, const char *str)
{
    return stream_write(s, str, strlen(str));
}

int stream_writev(struct stream *s, const struct iovec *iov, int iovcnt)
{
    int i;

    for (i = 0; i < iovcnt; i++)
        if (stream_write(s, iov[i].iov_base, iov[i].iov_len) < 0)
            return -1;
    return 0;
}

int stream_vprintf(struct stream *s, const char *fmt, va_list ap)
{
    va_list ap2;
    char *big;
    int n, ret;

    if (s->status[STREAM_DIR_WRITE] != STREAM_OK)
        return stream_fail(s, STREAM_DIR_WRITE);
    va_copy(ap2, ap);
    n = vsnprintf(s->wbuf + s->wlen, s->wcap - s->wlen, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -1;
    if ((size_t) n < s->wcap - s->wlen) {
        s->wlen += (size_t) n;
        return 0;
    }
    if ((size_t) n < s->wcap) {
        if (stream_flush(s) < 0)
            return -1;
        va_copy(ap2, ap);
        n = vsnprintf(s->wbuf, s->wcap, fmt, ap2);
        va_end(ap2);
        s->wlen = (size_t) n;
        return 0;
    }
    /* Rare: larger than the whole buffer. */
    big = xmalloc((size_t) n + 1);
    va_copy(ap2, ap);
    (void) vsnprintf(big, (size_t) n + 1, fmt, ap2);
    va_end(ap2);
    ret = stream_write(s, big, (size_t) n);
    free(big);
    return ret;
}

int stream_printf(struct stream *s, const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = stream_vprintf(s, fmt, ap);
    va_end(ap);
    return ret;
}
