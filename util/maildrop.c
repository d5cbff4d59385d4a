/*
 * maildrop.c - local submission: the stream goes into a memfd that becomes the
 * standard input of the set-gid petrel-drop, which files it in maildrop/.
 * The caller fills the stream with the queue file writer; maildrop_close ends
 * it, runs petrel-drop with a bounded wait, and reports its verdict.
 * Never runs a shell (execv of one path); never lets petrel-drop outlive the
 * call (killed at the deadline); never reads more of its output than a line.
 * Failure: maildrop_open returns NULL with why; maildrop_close returns a
 * sysexits code with why (EX_TEMPFAIL when petrel-drop could not say).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "maildrop.h"
#include "mymalloc.h"
#include "params.h"
#include "qfile.h"
#include "qid.h"

#define MAILDROP_TIMEOUT_MS (300 * 1000)    /* petrel-drop copies and fsyncs one message */
#define MAILDROP_OUTPUT_MAX 2048            /* of stdout and of stderr, each */
#define MAILDROP_EXEC_FAILED 127

struct maildrop {
    int fd;                     /* the memfd */
    struct qfile_writer *w;
    char *path;                 /* petrel-drop */
    unsigned flags;
};

struct maildrop *maildrop_open(const char *path, struct strbuf *why)
{
    struct maildrop *md;
    const char *env;
    int fd;

    md = xcalloc(1, sizeof(*md));
    if (path != NULL)
        md->path = xstrdup(path);
    else if ((env = getenv("PETREL_DROP")) != NULL && *env)
        md->path = xstrdup(env);
    else {
        md->path = xmalloc(strlen(var_command_directory) + sizeof("/petrel-drop"));
        strcpy(md->path, var_command_directory);
        strcat(md->path, "/petrel-drop");
    }
    if (access(md->path, X_OK) < 0) {
        strbuf_printf(why, "cannot execute %s: %s", md->path, strerror(errno));
        goto fail;
    }
    if ((fd = memfd_create("petrel-submission", MFD_CLOEXEC)) < 0) {
        strbuf_printf(why, "memfd_create: %s", strerror(errno));
        goto fail;
    }
    md->fd = fd;
    if ((md->w = qfile_fdopen(fd)) == NULL) {
        strbuf_printf(why, "submission stream: %s", strerror(errno));
        close(fd);
        goto fail;
    }
    return md;

fail:
    free(md->path);
    free(md);
    return NULL;
}

struct qfile_writer *maildrop_writer(struct maildrop *md)
{
    return md->w;
}

void maildrop_set_flags(struct maildrop *md, unsigned qfile_flags)
{
    md->flags = qfile_flags;
}

void maildrop_abort(struct maildrop **mdp)
{
    struct maildrop *md = *mdp;

    if (md == NULL)
        return;
    qfile_writer_free(&md->w);
    close(md->fd);
    free(md->path);
    free(md);
    *mdp = NULL;
}

static long maildrop_ms_left(const struct timespec *deadline)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Collects the child's stdout and stderr (each bounded) until both close or the
 * deadline passes; returns 0, or -1 on timeout. */
static int maildrop_collect(int out_fd, int err_fd, struct strbuf *out, struct strbuf *err)
{
    struct pollfd pfd[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    struct strbuf *dst[2] = {out, err};
    struct timespec deadline;
    char buf[512];
    int open_fds = 2, i, n;
    long left;
    ssize_t got;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += MAILDROP_TIMEOUT_MS / 1000;
    while (open_fds > 0) {
        if ((left = maildrop_ms_left(&deadline)) <= 0)
            return -1;
        if ((n = poll(pfd, 2, (int) left)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (i = 0; i < 2; i++) {
            if (pfd[i].fd < 0 || pfd[i].revents == 0)
                continue;
            got = read(pfd[i].fd, buf, sizeof(buf));
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                pfd[i].fd = -1;
                open_fds--;
                continue;
            }
            /* Beyond the limit the output is drained and dropped. */
            if (dst[i]->len + (size_t) got <= MAILDROP_OUTPUT_MAX)
                strbuf_append(dst[i], buf, (size_t) got);
        }
    }
    return 0;
}

/* The first line of petrel-drop's diagnostics, or a sentence about its status. */
static void maildrop_reason(struct strbuf *why, const struct strbuf *err, const char *path,
                            int status)
{
    size_t len = strcspn(err->data, "\n");

    if (len > 0)
        strbuf_append(why, err->data, len);
    else if (WIFEXITED(status))
        strbuf_printf(why, "%s exited with status %d", path, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        strbuf_printf(why, "%s was killed by signal %d", path, WTERMSIG(status));
}

static _Noreturn void maildrop_child(const struct maildrop *md, int out_fd, int err_fd)
{
    char *argv[5];
    int argc = 0;

    if (dup2(md->fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
        _exit(MAILDROP_EXEC_FAILED);
    signal(SIGPIPE, SIG_DFL);
    argv[argc++] = (char *) "petrel-drop";
    /* The built-in directory goes unnamed: petrel-drop trusts it without checks. */
    if (strcmp(config_dir(), DEF_CONFIG_DIR) != 0) {
        argv[argc++] = (char *) "-c";
        argv[argc++] = (char *) config_dir();
    }
    argv[argc] = NULL;
    execv(md->path, argv);
    dprintf(2, "cannot execute %s: %s\n", md->path, strerror(errno));
    _exit(MAILDROP_EXEC_FAILED);
}

int maildrop_close(struct maildrop **mdp, struct strbuf *queue_id, struct strbuf *why)
{
    struct maildrop *md = *mdp;
    struct strbuf out, err;
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, status = 0, ret = EX_TEMPFAIL;
    pid_t pid, w;

    strbuf_init(&out, 128, STRBUF_UNLIMITED);
    strbuf_init(&err, 128, STRBUF_UNLIMITED);
    if (qfile_commit(md->w, md->flags, why) < 0)
        goto done;
    if (lseek(md->fd, 0, SEEK_SET) < 0 || pipe2(out_pipe, O_CLOEXEC) < 0
        || pipe2(err_pipe, O_CLOEXEC) < 0) {
        strbuf_printf(why, "submission setup: %s", strerror(errno));
        goto done;
    }
    if ((pid = fork()) < 0) {
        strbuf_printf(why, "fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0)
        maildrop_child(md, out_pipe[1], err_pipe[1]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    out_pipe[1] = err_pipe[1] = -1;
    if (maildrop_collect(out_pipe[0], err_pipe[0], &out, &err) < 0) {
        (void) kill(pid, SIGKILL);
        strbuf_printf(why, "%s did not finish in %d seconds", md->path,
                      MAILDROP_TIMEOUT_MS / 1000);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        goto done;
    }
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (w < 0) {
        strbuf_printf(why, "wait for %s: %s", md->path, strerror(errno));
        goto done;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        strbuf_truncate(&out, strcspn(out.data, "\n"));
        if (!qid_valid(out.data)) {
            strbuf_printf(why, "%s printed no queue ID", md->path);
            goto done;
        }
        strbuf_set(queue_id, out.data);
        ret = 0;
        goto done;
    }
    maildrop_reason(why, &err, md->path, status);
    if (WIFEXITED(status) && WEXITSTATUS(status) == MAILDROP_EXEC_FAILED)
        ret = EX_UNAVAILABLE;
    else if (WIFEXITED(status) && WEXITSTATUS(status) >= EX__BASE
             && WEXITSTATUS(status) <= EX__MAX)
        ret = WEXITSTATUS(status);

done:
    for (int i = 0; i < 2; i++) {
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
    }
    strbuf_release(&out);
    strbuf_release(&err);
    maildrop_abort(mdp);
    return ret;
}
