/*
 * queue_path.c - bucket paths of queue files and collision-free creation.
 * The contract is in queue_path.h. A malformed queue name or ID is a caller
 * bug and panics (a path built from one could leave the queue directory);
 * file system failures return -1 with errno and leave no file behind. Must
 * never replace an existing queue file and never follow a symlink to create
 * one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "msg.h"
#include "params.h"
#include "queue_path.h"
#include "safe_file.h"
#include "strbuf.h"

#define QUEUE_NAME_MAX 32
#define QUEUE_PATH_TRIES 1000   /* renames that may meet an existing name */
#define QUEUE_TMP_TRIES 100     /* stale temporary files from dead processes */
#define QUEUE_CLOCK_SPINS 1000000

int queue_path_name_valid(const char *name)
{
    size_t len = strnlen(name, QUEUE_NAME_MAX + 1);

    return len > 0 && len <= QUEUE_NAME_MAX
        && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

static void queue_path_check(const char *queue_name, const char *qid, int depth)
{
    if (!queue_path_name_valid(queue_name))
        msg_panic("queue_path: bad queue name \"%.40s\"", queue_name);
    if (qid && !qid_valid(qid))
        msg_panic("queue_path: bad queue ID \"%.40s\"", qid);
    if (depth < 0 || depth > QUEUE_PATH_MAX_DEPTH)
        msg_panic("queue_path: bad depth %d", depth);
}

const char *queue_path_dir(struct strbuf *out, const char *queue_name, const char *qid,
                           int depth)
{
    int level;

    queue_path_check(queue_name, qid, depth);
    strbuf_reset(out);
    if (strbuf_puts(out, queue_name) < 0)
        msg_panic("queue_path: buffer limit too small");
    for (level = 0; level < depth; level++) {
        char bucket[2] = {'/', qid[QID_TIME_LEN - 1 - level]};

        if (strbuf_append(out, bucket, 2) < 0)
            msg_panic("queue_path: buffer limit too small");
    }
    return out->data;
}

const char *queue_path(struct strbuf *out, const char *queue_name, const char *qid, int depth)
{
    queue_path_dir(out, queue_name, qid, depth);
    if (strbuf_putc(out, '/') < 0 || strbuf_puts(out, qid) < 0)
        msg_panic("queue_path: buffer limit too small");
    return out->data;
}

/* Creates the temporary file; its name is left in tmp. */
static int queue_path_tmp(int dirfd, const char *queue_name, mode_t mode, struct strbuf *tmp)
{
    static unsigned counter;
    int fd = -1, tries;

    for (tries = 0; fd < 0 && tries < QUEUE_TMP_TRIES; tries++) {
        strbuf_reset(tmp);
        if (strbuf_printf(tmp, "%s/.tmp%ld.%u", queue_name, (long) getpid(), counter++) < 0)
            msg_panic("queue_path: buffer limit too small");
        if ((fd = safe_file_create(dirfd, tmp->data, O_RDWR, mode, 0)) < 0 && errno != EEXIST)
            return -1;
    }
    return fd;
}

/* A time later than *last, so a retry cannot form the same ID again. */
static void queue_path_fresh_time(struct timeval *tv, struct timeval *last)
{
    int spins = 0;

    do {
        gettimeofday(tv, 0);
    } while (tv->tv_sec == last->tv_sec && tv->tv_usec == last->tv_usec
             && ++spins < QUEUE_CLOCK_SPINS);
    *last = *tv;
}

/* Gives the temporary file its final name without ever replacing a file. */
static int queue_path_move(int dirfd, const char *from, const char *to)
{
    static int no_renameat2;
    int err;

    if (!no_renameat2) {
        if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno != EINVAL && errno != ENOSYS)
            return -1;
        no_renameat2 = 1;
    }
    if (linkat(dirfd, from, dirfd, to, 0) < 0)
        return -1;
    /* Two names would make the file fail the one-link check: keep exactly one. */
    if (unlinkat(dirfd, from, 0) < 0) {
        err = errno;
        (void) unlinkat(dirfd, to, 0);
        errno = err;
        return -1;
    }
    return 0;
}

/* Creates the bucket directories with the queue directory's own mode. */
static int queue_path_mkbucket(int dirfd, const char *queue_name, const char *qid,
                               int depth, struct strbuf *path)
{
    struct stat st;

    if (fstatat(dirfd, queue_name, &st, 0) < 0)
        return -1;
    return safe_file_mkdirs(dirfd, queue_path_dir(path, queue_name, qid, depth),
                            st.st_mode & 07777, 0);
}

int queue_path_create(int dirfd, const char *queue_name, int depth, mode_t mode,
                      char qid[QID_BUFSIZE])
{
    struct timeval tv, last = {0, 0};
    struct strbuf tmp, path;
    struct stat st;
    int fd, tries, err = 0;

    queue_path_check(queue_name, 0, depth);
    strbuf_init(&tmp, 64, PATH_MAX);
    strbuf_init(&path, 64, PATH_MAX);
    if ((fd = queue_path_tmp(dirfd, queue_name, mode, &tmp)) < 0) {
        err = errno;
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        err = errno;
        goto fail;
    }
    for (tries = 0; tries < QUEUE_PATH_TRIES; tries++) {
        queue_path_fresh_time(&tv, &last);
        if (qid_format(qid, &tv, st.st_ino) < 0) {
            err = errno;
            goto fail;
        }
        if (queue_path_move(dirfd, tmp.data, queue_path(&path, queue_name, qid, depth)) == 0)
            goto out;
        /* A missing bucket is made once per ID; then the same ID is tried again. */
        if (errno == ENOENT && depth > 0) {
            if (queue_path_mkbucket(dirfd, queue_name, qid, depth, &path) < 0) {
                err = errno;
                goto fail;
            }
            if (queue_path_move(dirfd, tmp.data,
                                queue_path(&path, queue_name, qid, depth)) == 0)
                goto out;
        }
        if ((err = errno) != EEXIST)
            goto fail;
    }
fail:
    (void) unlinkat(dirfd, tmp.data, 0);
    (void) close(fd);
    fd = -1;
out:
    strbuf_release(&tmp);
    strbuf_release(&path);
    if (fd < 0)
        errno = err ? err : EEXIST;
    return fd;
}

int queue_path_depth(const char *queue_name)
{
    const char *p = var_hash_queue_names ? var_hash_queue_names : "";
    size_t qlen = strlen(queue_name), n;

    while (*p) {
        p += strspn(p, ", \t\r\n");
        n = strcspn(p, ", \t\r\n");
        if (n == qlen && strncmp(p, queue_name, n) == 0) {
            if (var_hash_queue_depth < 0)
                return 0;
            return var_hash_queue_depth > QUEUE_PATH_MAX_DEPTH ? QUEUE_PATH_MAX_DEPTH
                : (int) var_hash_queue_depth;
        }
        p += n;
    }
    return 0;
}
