/*
 * mailbox.c - the one mailbox writer (contract in mailbox.h): a message from
 * the queue file into a Maildir (tmp/ -> new/) or an mbox file (From_ line,
 * ">From " escaping, locks, a blank line at the end).
 *
 * Must never: change privileges (the caller already runs as the mailbox
 * owner), follow a symlink to an mbox file or to tmp/ and new/, append to an
 * mbox with more than one link or another owner, overwrite an existing file,
 * leave part of a message in a mailbox (an mbox is truncated back to its old
 * size, a Maildir file is removed), or wait for a lock without a bound
 * (deliver_lock_attempts x deliver_lock_delay).
 *
 * Failure: every problem is a DELIVER_DEFER or DELIVER_BOUNCE with an
 * enhanced status code and a reason, chosen as Postfix's mbox_dsn() does:
 * EAGAIN/ESTALE 4.2.0, ENOSPC 4.3.0, EDQUOT/EFBIG and the size limit 5.2.2,
 * anything else 4.2.0 (the mailbox location belongs to the administrator, so
 * a permission problem is fixed there and the mail is tried again).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "deliver_request.h"
#include "mailbox.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "safe_file.h"
#include "strbuf.h"

#define MAILBOX_BUF         65536       /* output buffer and content read size */
#define MAILBOX_NAME_TRIES  10          /* unique Maildir names tried */
#define MAILBOX_OPEN_TRIES  5           /* open/create races on one mbox path */
#define MAILBOX_LOCK_POLL_MS 100        /* a busy lock is tried this often */

#define MAILBOX_LOCK_FCNTL  (1 << 0)
#define MAILBOX_LOCK_FLOCK  (1 << 1)
#define MAILBOX_LOCK_DOT    (1 << 2)

static const char mailbox_from[] = "From ";

/* --- outcomes ------------------------------------------------------------- */

/* Postfix's mbox_dsn(): the status for an errno, def_dsn for all others. */
static const char *mailbox_dsn(int err, const char *def_dsn)
{
    if (err == EAGAIN || err == ESTALE)
        return "4.2.0";
    if (err == ENOSPC)
        return "4.3.0";
    if (err == EDQUOT || err == EFBIG)
        return "5.2.2";
    return def_dsn;
}

static enum deliver_status mailbox_result(char dsn[8], const char *code, struct strbuf *why,
                                          const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum deliver_status mailbox_result(char dsn[8], const char *code, struct strbuf *why,
                                          const char *fmt, ...)
{
    va_list ap;

    snprintf(dsn, 8, "%s", code);
    strbuf_reset(why);
    va_start(ap, fmt);
    (void) strbuf_vprintf(why, fmt, ap);
    va_end(ap);
    return code[0] == '2' ? DELIVER_SENT : code[0] == '4' ? DELIVER_DEFER : DELIVER_BOUNCE;
}

/* --- output with a size budget --------------------------------------------- */

struct mailbox_out {
    int fd;
    off_t left;                 /* bytes that may still be written; -1: no limit */
    int full;                   /* the size limit was reached */
    int err;                    /* errno of a failed write, 0 if none */
    size_t len;
    char *buf;                  /* MAILBOX_BUF bytes */
};

static void mailbox_out_init(struct mailbox_out *out, int fd, off_t left)
{
    out->fd = fd;
    out->left = left;
    out->full = 0;
    out->err = 0;
    out->len = 0;
    out->buf = xmalloc(MAILBOX_BUF);
}

static int mailbox_out_flush(struct mailbox_out *out)
{
    if (out->err || out->full)
        return -1;
    if (out->len > 0 && safe_file_write_all(out->fd, out->buf, out->len) < 0) {
        out->err = errno ? errno : EIO;
        return -1;
    }
    out->len = 0;
    return 0;
}

static int mailbox_out_put(struct mailbox_out *out, const void *data, size_t len)
{
    const char *p = data;
    size_t n;

    if (out->err || out->full)
        return -1;
    if (out->left >= 0) {
        if ((off_t) len > out->left) {
            out->full = 1;
            return -1;
        }
        out->left -= (off_t) len;
    }
    while (len > 0) {
        if (out->len == MAILBOX_BUF && mailbox_out_flush(out) < 0)
            return -1;
        n = MAILBOX_BUF - out->len;
        if (n > len)
            n = len;
        memcpy(out->buf + out->len, p, n);
        out->len += n;
        p += n;
        len -= n;
    }
    return 0;
}

static void mailbox_out_free(struct mailbox_out *out)
{
    free(out->buf);
    out->buf = NULL;
}

/*
 * Copies the message content to out. With quote, a line that begins with
 * "From " gets a ">" first (Postfix's MAIL_COPY_QUOTE; a line already starting
 * with ">From " is left alone). A last line without LF gets one. Returns 0, or
 * -1: a write problem (in out) or a read error (*read_errno set).
 */
static int mailbox_copy_content(const struct deliver_request *req, struct mailbox_out *out,
                                int quote, int *read_errno)
{
    char *in = xmalloc(MAILBOX_BUF);
    off_t pos = 0;
    ssize_t n;
    size_t i, match = 0, seg;
    int bol = 1, last_nl = 1;
    const char *nl;

    *read_errno = 0;
    while ((n = deliver_content_read(req, &pos, in, MAILBOX_BUF)) > 0) {
        last_nl = in[n - 1] == '\n';
        if (!quote) {
            if (mailbox_out_put(out, in, (size_t) n) < 0)
                goto fail;
            continue;
        }
        for (i = 0; i < (size_t) n; ) {
            if (bol) {
                /* Up to five bytes decide whether this line needs a '>'. */
                if (in[i] == mailbox_from[match]) {
                    i++;
                    if (++match < sizeof(mailbox_from) - 1)
                        continue;
                    if (mailbox_out_put(out, ">", 1) < 0)
                        goto fail;
                }
                if (mailbox_out_put(out, mailbox_from, match) < 0)
                    goto fail;
                match = 0;
                bol = 0;
                continue;
            }
            nl = memchr(in + i, '\n', (size_t) n - i);
            seg = nl ? (size_t) (nl - (in + i)) + 1 : (size_t) n - i;
            if (mailbox_out_put(out, in + i, seg) < 0)
                goto fail;
            i += seg;
            bol = nl != NULL;
        }
    }
    if (n < 0) {
        *read_errno = errno ? errno : EIO;
        goto fail;
    }
    /* A line start that was a prefix of "From " and then the content ended. */
    if (match > 0 && mailbox_out_put(out, mailbox_from, match) < 0)
        goto fail;
    if (!last_nl && mailbox_out_put(out, "\n", 1) < 0)
        goto fail;
    free(in);
    return 0;

  fail:
    free(in);
    return -1;
}

/* The reason for a failed copy, in why, and its status. */
static enum deliver_status mailbox_copy_failed(const struct mailbox_out *out, int read_errno,
                                               off_t size_limit, const char *prefix,
                                               char dsn[8], struct strbuf *why)
{
    if (read_errno)
        return mailbox_result(dsn, "4.3.0", why, "%serror reading message: %s", prefix,
                              strerror(read_errno));
    if (out->full)
        return mailbox_result(dsn, "5.2.2", why, "%smailbox full (size limit %lld bytes)",
                              prefix, (long long) size_limit);
    return mailbox_result(dsn, mailbox_dsn(out->err, "4.2.0"), why,
                          "%serror writing message: %s", prefix, strerror(out->err));
}

/* --- Maildir --------------------------------------------------------------- */

/* gethostname() with '/' and ':' written as \057 and \072 (the Maildir spec). */
static const char *mailbox_hostname(void)
{
    static char safe[4 * 256 + 1];
    char host[256];
    size_t i, o = 0;

    if (safe[0])
        return safe;
    if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = 0;
    for (i = 0; host[i] && o + 5 < sizeof(safe); i++) {
        if (host[i] == '/' || host[i] == ':') {
            o += (size_t) snprintf(safe + o, sizeof(safe) - o, "\\%03o",
                                   (unsigned) (unsigned char) host[i]);
        } else {
            safe[o++] = host[i];
        }
    }
    safe[o] = 0;
    return safe;
}

/* "SECONDS.MmicrosPpidQcount.HOSTNAME": unique per host, never reused. */
static void mailbox_unique_name(struct strbuf *name)
{
    static unsigned long count;
    struct timeval tv;

    gettimeofday(&tv, NULL);
    strbuf_reset(name);
    (void) strbuf_printf(name, "%lld.M%06ldP%ldQ%lu.%s", (long long) tv.tv_sec,
                         (long) tv.tv_usec, (long) getpid(), ++count, mailbox_hostname());
}

/* Opens sub/ of the Maildir, creating it (0700) when missing; never a symlink. */
static int mailbox_maildir_sub(int dirfd, const char *sub)
{
    int fd;

    fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (mkdirat(dirfd, sub, 0700) < 0 && errno != EEXIST)
            return -1;
        fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    return fd;
}

/* Opens the Maildir (path without its trailing slashes), creating what is missing. */
static int mailbox_maildir_open(const char *dir, int *tmpfd, int *newfd, struct strbuf *why)
{
    int fd, curfd, err;

    *tmpfd = *newfd = -1;
    strbuf_reset(why);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (safe_file_mkdirs(AT_FDCWD, dir, 0700, NULL) < 0) {
            err = errno;
            strbuf_printf(why, "create maildir %s: %s", dir, strerror(err));
            errno = err;
            return -1;
        }
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (fd < 0) {
        err = errno;
        strbuf_printf(why, "open maildir %s: %s", dir, strerror(err));
        errno = err;
        return -1;
    }
    if ((*tmpfd = mailbox_maildir_sub(fd, "tmp")) < 0
        || (*newfd = mailbox_maildir_sub(fd, "new")) < 0
        || (curfd = mailbox_maildir_sub(fd, "cur")) < 0) {
        err = errno;
        strbuf_printf(why, "create maildir file %s/%s: %s", dir,
                      *tmpfd < 0 ? "tmp" : *newfd < 0 ? "new" : "cur", strerror(err));
        if (*tmpfd >= 0)
            (void) close(*tmpfd);
        if (*newfd >= 0)
            (void) close(*newfd);
        *tmpfd = *newfd = -1;
        (void) close(fd);
        errno = err;
        return -1;
    }
    (void) close(curfd);
    (void) close(fd);
    return 0;
}

/* tmp/name -> new/name without replacing anything: link(), or a no-replace
 * rename where the file system has no hard links. 0 or -1 with errno. */
static int mailbox_maildir_move(int tmpfd, int newfd, const char *name, int *moved)
{
    *moved = 0;
    if (linkat(tmpfd, name, newfd, name, 0) == 0)
        return 0;
    if (errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS && errno != EMLINK)
        return -1;
    if (renameat2(tmpfd, name, newfd, name, RENAME_NOREPLACE) < 0)
        return -1;
    *moved = 1;
    return 0;
}

enum deliver_status mailbox_maildir_deliver(const char *maildir, const struct deliver_request *req,
                                            const char *prepend, off_t size_limit,
                                            char dsn[8], struct strbuf *why)
{
    static const char prefix[] = "maildir delivery failed: ";
    struct strbuf dir, name, detail;
    struct mailbox_out out;
    enum deliver_status status;
    int tmpfd, newfd, fd = -1, tries, err, read_errno = 0, moved = 0;

    strbuf_init(&dir, 256, PATH_MAX);
    strbuf_init(&name, 128, PATH_MAX);
    strbuf_init(&detail, 256, 2 * PATH_MAX);
    if (strbuf_set(&dir, maildir) < 0 || dir.len == 0) {
        status = mailbox_result(dsn, "4.3.5", why, "%sbad maildir name", prefix);
        goto done;
    }
    while (dir.len > 1 && dir.data[dir.len - 1] == '/')
        strbuf_truncate(&dir, dir.len - 1);

    if (mailbox_maildir_open(dir.data, &tmpfd, &newfd, &detail) < 0) {
        err = errno;
        status = mailbox_result(dsn, mailbox_dsn(err, "4.2.0"), why, "%s%s", prefix,
                                detail.data);
        goto done;
    }
    for (tries = 0; tries < MAILBOX_NAME_TRIES; tries++) {
        mailbox_unique_name(&name);
        if ((fd = safe_file_create(tmpfd, name.data, O_WRONLY, 0600, NULL)) >= 0
            || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        err = errno;
        status = mailbox_result(dsn, mailbox_dsn(err, "4.2.0"), why,
                                "%screate maildir file %s/tmp/%s: %s", prefix, dir.data,
                                name.data, strerror(err));
        goto close_dirs;
    }

    mailbox_out_init(&out, fd, size_limit > 0 ? size_limit : -1);
    if (mailbox_out_put(&out, prepend, strlen(prepend)) < 0
        || mailbox_copy_content(req, &out, 0, &read_errno) < 0
        || mailbox_out_flush(&out) < 0) {
        status = mailbox_copy_failed(&out, read_errno, size_limit, prefix, dsn, why);
        mailbox_out_free(&out);
        goto remove_tmp;
    }
    mailbox_out_free(&out);
    if (safe_file_sync(fd) < 0 || close(fd) < 0) {
        err = errno;
        fd = -1;
        status = mailbox_result(dsn, mailbox_dsn(err, "4.2.0"), why,
                                "%serror writing message: %s", prefix, strerror(err));
        goto remove_tmp;
    }
    fd = -1;
    if (mailbox_maildir_move(tmpfd, newfd, name.data, &moved) < 0) {
        err = errno;
        status = mailbox_result(dsn, mailbox_dsn(err, "4.2.0"), why,
                                "%screate maildir file %s/new/%s: %s", prefix, dir.data,
                                name.data, strerror(err));
        goto remove_tmp;
    }
    if (!moved && unlinkat(tmpfd, name.data, 0) < 0)
        msg_warn("remove %s/tmp/%s: %m", dir.data, name.data);
    moved = 1;
    if (fsync(newfd) < 0) {
        /* Not durable: take it back and try again later rather than risk a
         * message that vanishes in a crash after qmgr was told "sent". */
        err = errno;
        (void) unlinkat(newfd, name.data, 0);
        status = mailbox_result(dsn, mailbox_dsn(err, "4.2.0"), why,
                                "%ssync maildir %s/new: %s", prefix, dir.data, strerror(err));
        goto close_dirs;
    }
    status = mailbox_result(dsn, "2.0.0", why, "delivered to maildir");
    goto close_dirs;

  remove_tmp:
    if (fd >= 0)
        (void) close(fd);
    if (!moved && unlinkat(tmpfd, name.data, 0) < 0 && errno != ENOENT)
        msg_warn("remove %s/tmp/%s: %m", dir.data, name.data);
  close_dirs:
    (void) close(tmpfd);
    (void) close(newfd);
  done:
    strbuf_release(&dir);
    strbuf_release(&name);
    strbuf_release(&detail);
    return status;
}

int mailbox_path_is_maildir(const char *path)
{
    size_t len = strlen(path);

    return len > 0 && path[len - 1] == '/';
}

/* --- mbox: locks ------------------------------------------------------------ */

/* mailbox_delivery_lock / virtual_mailbox_lock: 0 with the mask, or -1. */
static int mailbox_lock_mask(const char *locks, int *mask, struct strbuf *bad)
{
    static const struct {
        const char *name;
        int bit;
    } names[] = {
        {"fcntl", MAILBOX_LOCK_FCNTL}, {"flock", MAILBOX_LOCK_FLOCK},
        {"dotlock", MAILBOX_LOCK_DOT},
    };
    const char *p = locks, *start;
    size_t len, i;

    *mask = 0;
    for (;;) {
        p += strspn(p, ", \t\r\n");
        if (*p == 0)
            return 0;
        start = p;
        len = strcspn(p, ", \t\r\n");
        p += len;
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (strlen(names[i].name) == len && strncmp(names[i].name, start, len) == 0)
                break;
        if (i == sizeof(names) / sizeof(names[0])) {
            strbuf_reset(bad);
            (void) strbuf_append(bad, start, len);
            return -1;
        }
        *mask |= names[i].bit;
    }
}

/* How long a busy lock is waited for: deliver_lock_attempts x deliver_lock_delay. */
static long long mailbox_lock_wait_ms(void)
{
    long long attempts = var_deliver_lock_attempts > 0 ? var_deliver_lock_attempts : 1;
    long long delay = var_deliver_lock_delay > 0 ? var_deliver_lock_delay : 1;

    if (attempts > 1000000 || delay > 1000000)
        return 1000000000LL;
    return attempts * delay * 1000LL;
}

static void mailbox_sleep_ms(int ms)
{
    (void) poll(NULL, 0, ms);
}

/* Creates PATH.lock with O_EXCL, waiting a bounded time while another holds it
 * and removing one older than stale_lock_time. 0, or -1 with why and errno. */
static int mailbox_dotlock(const char *lock, struct strbuf *why)
{
    long long waited = 0, limit = mailbox_lock_wait_ms();
    long long stale = var_stale_lock_time > 0 ? var_stale_lock_time : 1;
    struct stat st;
    int fd, err;

    for (;;) {
        if ((fd = safe_file_create(AT_FDCWD, lock, O_WRONLY, 0600, NULL)) >= 0) {
            (void) close(fd);
            return 0;
        }
        err = errno;
        if (err != EEXIST || waited >= limit)
            break;
        if (fstatat(AT_FDCWD, lock, &st, AT_SYMLINK_NOFOLLOW) == 0
            && time(NULL) > st.st_ctime + stale) {
            if (unlink(lock) == 0) {
                msg_warn("removed stale lock file %s", lock);
                continue;
            }
            if (errno != ENOENT) {
                err = errno;
                break;
            }
        }
        mailbox_sleep_ms(MAILBOX_LOCK_POLL_MS);
        waited += MAILBOX_LOCK_POLL_MS;
    }
    strbuf_reset(why);
    strbuf_printf(why, "unable to create lock file %s: %s", lock, strerror(err));
    errno = err == EEXIST ? EAGAIN : err;
    return -1;
}

/* One non-blocking attempt at the kernel lock: 0, 1 busy, -1 error. */
static int mailbox_kernel_lock_try(int fd, int bit)
{
    struct flock fl;

    if (bit == MAILBOX_LOCK_FLOCK) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        return errno == EWOULDBLOCK || errno == EINTR ? 1 : -1;
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) == 0)
        return 0;
    return errno == EAGAIN || errno == EACCES || errno == EINTR ? 1 : -1;
}

static int mailbox_kernel_lock(int fd, int bit, struct strbuf *why)
{
    long long waited = 0, limit = mailbox_lock_wait_ms();
    int r, err;

    while ((r = mailbox_kernel_lock_try(fd, bit)) == 1 && waited < limit) {
        mailbox_sleep_ms(MAILBOX_LOCK_POLL_MS);
        waited += MAILBOX_LOCK_POLL_MS;
    }
    if (r == 0)
        return 0;
    err = r == 1 ? EAGAIN : errno;
    strbuf_reset(why);
    strbuf_printf(why, "unable to lock for exclusive access: %s", strerror(err));
    errno = err;
    return -1;
}

/* --- mbox: open and write --------------------------------------------------- */

/* Why safe_file refused or failed to open the mbox, without repeating its name. */
static void mailbox_open_reason(int err, const char *op, struct strbuf *why)
{
    strbuf_reset(why);
    switch (err) {
    case ELOOP:
        strbuf_puts(why, "file is a symbolic link");
        break;
    case EMLINK:
        strbuf_puts(why, "file has more than one link");
        break;
    case EISDIR:
        strbuf_puts(why, "file is a directory");
        break;
    case EINVAL:
        strbuf_puts(why, "file is not a regular file");
        break;
    case EPERM:
        strbuf_puts(why, "file is not owned by recipient");
        break;
    default:
        strbuf_printf(why, "%s: %s", op, strerror(err));
        break;
    }
}

/* Opens (or creates, 0600) the mbox: a regular file, one link, our own. */
static int mailbox_mbox_open(const char *path, struct stat *st, struct strbuf *why)
{
    const char *op = "open";
    int fd = -1, tries, err;

    for (tries = 0; tries < MAILBOX_OPEN_TRIES; tries++) {
        op = "open";
        fd = safe_file_open(AT_FDCWD, path, O_WRONLY | O_APPEND, geteuid(), st, NULL);
        if (fd >= 0 || errno != ENOENT)
            break;
        op = "create";
        fd = safe_file_create(AT_FDCWD, path, O_WRONLY | O_APPEND, 0600, NULL);
        if (fd >= 0) {
            if (fstat(fd, st) < 0) {
                err = errno;
                (void) close(fd);
                mailbox_open_reason(err, "fstat", why);
                errno = err;
                return -1;
            }
            break;
        }
        if (errno != EEXIST)
            break;
        /* Someone else created it meanwhile: open theirs, with the checks. */
    }
    if (fd < 0) {
        err = errno;
        mailbox_open_reason(err, op, why);
        errno = err;
    }
    return fd;
}

/* The From_ line: "From SENDER  DATE" as Postfix's mail_copy writes it. */
static void mailbox_from_line(const char *sender, struct strbuf *out)
{
    char date[64];
    struct tm tm;
    time_t now = time(NULL);

    strbuf_reset(out);
    strbuf_puts(out, "From ");
    if (*sender)
        address_quote(sender, out);
    else
        strbuf_puts(out, "MAILER-DAEMON");
    if (localtime_r(&now, &tm) == NULL
        || strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
        snprintf(date, sizeof(date), "Thu Jan  1 00:00:00 1970");
    strbuf_printf(out, "  %s\n", date);
}

/* Writes the message to the locked mbox at old_size; truncates back on error. */
static enum deliver_status mailbox_mbox_write(int fd, const char *path, off_t old_size,
                                              const struct deliver_request *req,
                                              const char *prepend, off_t size_limit,
                                              char dsn[8], struct strbuf *why)
{
    struct mailbox_out out;
    struct strbuf from, prefix;
    enum deliver_status status;
    int read_errno = 0, err;
    off_t left = -1;

    strbuf_init(&from, 128, 4 * 4096);
    strbuf_init(&prefix, 128, PATH_MAX + 64);
    strbuf_printf(&prefix, "delivery failed to mailbox %s: ", path);
    if (size_limit > 0)
        left = size_limit > old_size ? size_limit - old_size : 0;
    mailbox_from_line(req->sender, &from);
    mailbox_out_init(&out, fd, left);
    if (mailbox_out_put(&out, from.data, from.len) < 0
        || mailbox_out_put(&out, prepend, strlen(prepend)) < 0
        || mailbox_copy_content(req, &out, 1, &read_errno) < 0
        || mailbox_out_put(&out, "\n", 1) < 0
        || mailbox_out_flush(&out) < 0) {
        status = mailbox_copy_failed(&out, read_errno, size_limit, prefix.data, dsn, why);
    } else if (safe_file_sync(fd) < 0) {
        err = errno;
        status = mailbox_result(dsn, mailbox_dsn(err, "4.2.0"), why,
                                "%serror writing message: %s", prefix.data, strerror(err));
    } else {
        status = mailbox_result(dsn, "2.0.0", why, "delivered to mailbox");
    }
    mailbox_out_free(&out);
    if (status != DELIVER_SENT) {
        /* No half message may stay behind for the next From_ to follow. */
        if (ftruncate(fd, old_size) < 0 || safe_file_sync(fd) < 0)
            msg_warn("truncate %s back to %lld bytes: %m", path, (long long) old_size);
    }
    strbuf_release(&from);
    strbuf_release(&prefix);
    return status;
}

enum deliver_status mailbox_mbox_deliver(const char *path, const struct deliver_request *req,
                                         const char *prepend, const char *locks,
                                         off_t size_limit, char dsn[8], struct strbuf *why)
{
    static const char *prefix = "delivery failed to mailbox";
    struct strbuf lock, detail;
    struct stat st;
    enum deliver_status status;
    int mask, fd = -1, dotlocked = 0, err;

    strbuf_init(&lock, 256, PATH_MAX);
    strbuf_init(&detail, 256, PATH_MAX + 256);
    if (mailbox_lock_mask(locks, &mask, &detail) < 0) {
        msg_warn("unknown mailbox lock type \"%s\" in \"%s\"", detail.data, locks);
        status = mailbox_result(dsn, "4.3.5", why, "%s %s: mail system configuration error",
                                prefix, path);
        goto done;
    }
    if (*path == 0 || strbuf_printf(&lock, "%s.lock", path) < 0) {
        status = mailbox_result(dsn, "4.3.5", why, "%s %s: bad mailbox file name", prefix,
                                path);
        goto done;
    }
    /* Dot-lock before opening, as Postfix does; never PATH.lock beside a
     * device or a directory. */
    if ((mask & MAILBOX_LOCK_DOT)
        && (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISREG(st.st_mode))) {
        if (mailbox_dotlock(lock.data, &detail) < 0) {
            err = errno;
            status = mailbox_result(dsn, mailbox_dsn(err, "4.2.0"), why, "%s %s: %s", prefix,
                                    path, detail.data);
            goto done;
        }
        dotlocked = 1;
    }
    if ((fd = mailbox_mbox_open(path, &st, &detail)) < 0) {
        err = errno;
        status = mailbox_result(dsn, mailbox_dsn(err, "4.2.0"), why, "%s %s: %s", prefix,
                                path, detail.data);
        goto done;
    }
    if (((mask & MAILBOX_LOCK_FLOCK) && mailbox_kernel_lock(fd, MAILBOX_LOCK_FLOCK, &detail) < 0)
        || ((mask & MAILBOX_LOCK_FCNTL)
            && mailbox_kernel_lock(fd, MAILBOX_LOCK_FCNTL, &detail) < 0)) {
        err = errno;
        status = mailbox_result(dsn, mailbox_dsn(err, "4.2.0"), why, "%s %s: %s", prefix,
                                path, detail.data);
        goto done;
    }
    /* Removed or replaced while we waited for the lock (a POP server that
     * rewrites the mailbox): the one link safe_file_open saw is gone. */
    if (fstat(fd, &st) < 0 || st.st_nlink != 1 || !S_ISREG(st.st_mode)) {
        msg_warn("%s: file status changed unexpectedly", path);
        status = mailbox_result(dsn, "4.2.0", why,
                                "%s %s: target file status changed unexpectedly", prefix,
                                path);
        goto done;
    }
    status = mailbox_mbox_write(fd, path, st.st_size, req, prepend, size_limit, dsn, why);

  done:
    /* Closing drops the fcntl and flock locks; the dot-lock goes last. The
     * message was fsynced, so a failing close changes nothing on disk. */
    if (fd >= 0 && close(fd) < 0)
        msg_warn("close %s: %m", path);
    if (dotlocked && unlink(lock.data) < 0)
        msg_warn("remove lock file %s: %m", lock.data);
    strbuf_release(&lock);
    strbuf_release(&detail);
    return status;
}
