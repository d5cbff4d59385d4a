/*
 * safe_file.c - opening, creating and replacing files so that races lose.
 * The contract is in safe_file.h. Checks are made with fstat() on the open
 * descriptor, never with a second lookup of the path, so a file swapped in
 * between check and use cannot pass. O_TRUNC is applied only after the
 * checks, so a hard link to someone else's file is refused, not emptied.
 * Must never follow a symlink in the last component, never create without
 * O_EXCL, never leave a temporary file behind on failure. Failures return -1
 * with errno and, when asked, a sentence in a strbuf.
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
#include "safe_file.h"
#include "strbuf.h"

#define SAFE_FILE_CHUNK 8192
#define SAFE_FILE_TMP_TRIES 100

/* Sets errno to err, explains in why (if any), returns -1. */
static int safe_file_fail(struct strbuf *why, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int safe_file_fail(struct strbuf *why, int err, const char *fmt, ...)
{
    va_list ap;

    if (why) {
        strbuf_reset(why);
        va_start(ap, fmt);
        (void) strbuf_vprintf(why, fmt, ap);
        va_end(ap);
    }
    errno = err;
    return -1;
}

/* Closes fd, then fails with err, saying what could not be done to path. */
static int safe_file_close_fail(int fd, struct strbuf *why, int err, const char *what,
                                const char *path)
{
    (void) close(fd);
    return safe_file_fail(why, err, "%s %s: %s", what, path, strerror(err));
}

/* The fstat checks: regular, one link, owner. Returns 0 or an errno value. */
static int safe_file_check(const struct stat *st, uid_t owner, const char **reason)
{
    if (S_ISDIR(st->st_mode)) {
        *reason = "is a directory";
        return EISDIR;
    }
    if (!S_ISREG(st->st_mode)) {
        *reason = "is not a regular file";
        return EINVAL;
    }
    if (st->st_nlink != 1) {
        *reason = st->st_nlink == 0 ? "has been removed" : "has more than one link";
        return st->st_nlink == 0 ? ENOENT : EMLINK;
    }
    if (owner != SAFE_FILE_ANY_OWNER && st->st_uid != owner) {
        *reason = "has an unexpected owner";
        return EPERM;
    }
    return 0;
}

int safe_file_open(int dirfd, const char *path, int flags, uid_t owner,
                   struct stat *stp, struct strbuf *why)
{
    struct stat st;
    const char *reason;
    int fd, fl, err;

    if (flags & (O_CREAT | O_EXCL))
        msg_panic("safe_file_open %s: O_CREAT/O_EXCL requested", path);
    fd = openat(dirfd, path, (flags & ~O_TRUNC) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY
                | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        if (err == ELOOP)
            return safe_file_fail(why, err, "%s: is a symbolic link", path);
        return safe_file_fail(why, err, "open %s: %s", path, strerror(err));
    }
    if (fstat(fd, &st) < 0)
        return safe_file_close_fail(fd, why, errno, "fstat", path);
    if ((err = safe_file_check(&st, owner, &reason)) != 0) {
        (void) close(fd);
        return safe_file_fail(why, err, "%s: %s", path, reason);
    }
    /* O_NONBLOCK only guarded the open against a FIFO; regular I/O may block. */
    if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        return safe_file_close_fail(fd, why, errno, "fcntl", path);
    if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY && ftruncate(fd, 0) < 0)
        return safe_file_close_fail(fd, why, errno, "truncate", path);
    if (stp)
        *stp = st;
    return fd;
}

int safe_file_create(int dirfd, const char *path, int flags, mode_t mode,
                     struct strbuf *why)
{
    int fd, err;

    fd = openat(dirfd, path, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
                mode & 07777);
    if (fd < 0) {
        err = errno;
        return safe_file_fail(why, err, "create %s: %s", path, strerror(err));
    }
    /* The umask must not decide who may read a queue file or a mailbox. */
    if (fchmod(fd, mode & 07777) < 0) {
        err = errno;
        (void) close(fd);
        (void) unlinkat(dirfd, path, 0);
        return safe_file_fail(why, err, "chmod %s: %s", path, strerror(err));
    }
    return fd;
}

int safe_file_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    ssize_t n;

    while (len > 0) {
        n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

int safe_file_sync(int fd)
{
    while (fsync(fd) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

int safe_file_sync_dir(int dirfd, const char *path)
{
    int fd, err;

    if ((fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    if (safe_file_sync(fd) < 0) {
        err = errno;
        (void) close(fd);
        errno = err;
        return -1;
    }
    return close(fd);
}

/* Writes data to a fresh temporary file named tmp; returns its descriptor. */
static int safe_file_write_tmp(int dirfd, struct strbuf *tmp, size_t prefix_len,
                               const char *base, const void *data, size_t len,
                               mode_t mode, struct strbuf *why)
{
    static unsigned counter;
    int fd = -1, err, tries;

    for (tries = 0; fd < 0 && tries < SAFE_FILE_TMP_TRIES; tries++) {
        strbuf_truncate(tmp, prefix_len);
        if (strbuf_printf(tmp, ".%s.tmp%ld.%u", base, (long) getpid(), counter++) < 0)
            return safe_file_fail(why, ENAMETOOLONG, "%s: name too long", base);
        if ((fd = safe_file_create(dirfd, tmp->data, O_WRONLY, mode, why)) < 0
            && errno != EEXIST)
            return -1;
    }
    if (fd < 0)
        return -1;
    if (safe_file_write_all(fd, data, len) < 0 || safe_file_sync(fd) < 0) {
        err = errno;
        (void) close(fd);
        (void) unlinkat(dirfd, tmp->data, 0);
        return safe_file_fail(why, err, "write %s: %s", tmp->data, strerror(err));
    }
    return fd;
}

int safe_file_replace(int dirfd, const char *path, const void *data, size_t len,
                      mode_t mode, struct strbuf *why)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t prefix_len = (size_t) (base - path);
    struct strbuf tmp, dir;
    int fd, err, ret = -1;

    if (*base == '\0')
        return safe_file_fail(why, EISDIR, "%s: not a file name", path);
    strbuf_init(&tmp, 0, PATH_MAX);
    strbuf_init(&dir, 0, PATH_MAX);
    if (strbuf_append(&tmp, path, prefix_len) < 0
        || (prefix_len ? strbuf_append(&dir, path, prefix_len) : strbuf_puts(&dir, ".")) < 0) {
        ret = safe_file_fail(why, ENAMETOOLONG, "%s: name too long", path);
        goto out;
    }
    if ((fd = safe_file_write_tmp(dirfd, &tmp, prefix_len, base, data, len, mode, why)) < 0)
        goto out;
    if (close(fd) < 0 || renameat(dirfd, tmp.data, dirfd, path) < 0) {
        err = errno;
        (void) unlinkat(dirfd, tmp.data, 0);
        ret = safe_file_fail(why, err, "replace %s: %s", path, strerror(err));
        goto out;
    }
    if (safe_file_sync_dir(dirfd, dir.data) < 0) {
        err = errno;
        ret = safe_file_fail(why, err, "fsync directory of %s: %s", path, strerror(err));
        goto out;
    }
    ret = 0;
out:
    strbuf_release(&tmp);
    strbuf_release(&dir);
    return ret;
}

/* Makes one directory (the path prefix in buf) exist; sets its mode if new. */
static int safe_file_mkdir_one(int dirfd, const char *buf, mode_t mode, struct strbuf *why)
{
    struct stat st;
    int fd, err;

    if (mkdirat(dirfd, buf, mode & 07777) == 0) {
        if ((fd = openat(dirfd, buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0
            || fchmod(fd, mode & 07777) < 0) {
            err = errno;
            if (fd >= 0)
                (void) close(fd);
            return safe_file_fail(why, err, "chmod %s: %s", buf, strerror(err));
        }
        return close(fd);
    }
    err = errno;
    if (err != EEXIST)
        return safe_file_fail(why, err, "mkdir %s: %s", buf, strerror(err));
    if (fstatat(dirfd, buf, &st, 0) < 0) {
        err = errno;
        return safe_file_fail(why, err, "stat %s: %s", buf, strerror(err));
    }
    if (!S_ISDIR(st.st_mode))
        return safe_file_fail(why, ENOTDIR, "%s: exists and is not a directory", buf);
    return 0;
}

int safe_file_mkdirs(int dirfd, const char *path, mode_t mode, struct strbuf *why)
{
    size_t len = strlen(path), i;
    char *buf;
    int ret = 0;

    if (len == 0)
        return safe_file_fail(why, ENOENT, "mkdir: empty path");
    if (len >= PATH_MAX)
        return safe_file_fail(why, ENAMETOOLONG, "%s: name too long", path);
    buf = xmemdup(path, len + 1);
    /* Each slash ends a prefix to create; "/" itself and doubled slashes are not. */
    for (i = 1; ret == 0 && i <= len; i++) {
        if (i < len && (buf[i] != '/' || buf[i - 1] == '/'))
            continue;
        if (i == len && buf[i - 1] == '/')
            break;
        buf[i] = '\0';
        ret = safe_file_mkdir_one(dirfd, buf, mode, why);
        buf[i] = path[i];
    }
    free(buf);
    return ret;
}

int safe_file_read_fd(int fd, size_t limit, struct strbuf *out)
{
    size_t start = out->len, chunk;
    ssize_t n;

    for (;;) {
        /* Ask for one byte past the limit, to see that it is exceeded. */
        chunk = limit - (out->len - start);
        chunk = chunk >= SAFE_FILE_CHUNK ? SAFE_FILE_CHUNK : chunk + 1;
        if (strbuf_reserve(out, chunk) < 0) {
            strbuf_truncate(out, start);
            errno = EFBIG;
            return -1;
        }
        n = read(fd, out->data + out->len, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            strbuf_truncate(out, start);
            return -1;
        }
        if (n == 0)
            break;
        out->len += (size_t) n;
        out->data[out->len] = '\0';
        if (out->len - start > limit) {
            strbuf_truncate(out, start);
            errno = EFBIG;
            return -1;
        }
    }
    out->data[out->len] = '\0';
    return 0;
}

int safe_file_read(int dirfd, const char *path, uid_t owner, size_t limit,
                   struct strbuf *out, struct strbuf *why)
{
    int fd, err;

    if ((fd = safe_file_open(dirfd, path, O_RDONLY, owner, 0, why)) < 0)
        return -1;
    strbuf_reset(out);
    if (safe_file_read_fd(fd, limit, out) < 0) {
        err = errno;
        (void) close(fd);
        if (err == EFBIG)
            return safe_file_fail(why, err, "%s: larger than %zu bytes", path, limit);
        return safe_file_fail(why, err, "read %s: %s", path, strerror(err));
    }
    (void) close(fd);
    return 0;
}
