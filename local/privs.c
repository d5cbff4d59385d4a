/*
 * privs.c - running a piece of delivery work with a user's rights.
 *
 * privs_run forks; the child sets its groups, gid and uid for good (and
 * checks that root cannot be regained) before it calls the work function,
 * which writes its answer into a pipe; the parent collects at most limit
 * bytes within timeout_s seconds and reaps the child. As root, uid 0 in
 * struct local_user means default_privs; not as root, nothing changes hands
 * and the work runs as the invoking user (unprivileged mode). as NULL keeps
 * the agent's own rights (root reading a root-owned alias's :include: file).
 *
 * Never: runs the work with more rights than asked (a failed setuid ends the
 * child before the work starts), waits without a deadline (a child past it is
 * killed), or keeps more than limit bytes of its answer.
 * Failure: -1 with the reason in why; otherwise the child's exit status.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "local.h"
#include "msg.h"
#include "safe_file.h"
#include "strbuf.h"

#define PRIVS_EXIT_SETUID 111     /* the child could not take the rights */

const struct local_user *privs_effective(const struct local_user *as)
{
    if (as->uid == 0 && local_is_root())
        return &local_default_privs;
    if (!local_is_root())
        return as->home ? as : &local_default_privs;
    return as;
}

void privs_user_from_passwd(struct local_user *u, const struct passwd *pw)
{
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    u->home = pw->pw_dir;
    u->shell = pw->pw_shell;
    u->logname = pw->pw_name;
}

int privs_become(const struct local_user *as)
{
    const struct local_user *u = privs_effective(as);

    if (!local_is_root())
        return 0;
    if (u->uid == 0)
        return -1;              /* never deliver as root */
    if ((u->logname ? initgroups(u->logname, u->gid) : setgroups(1, &u->gid)) < 0
        || setgid(u->gid) < 0 || setuid(u->uid) < 0)
        return -1;
    if (setuid(0) == 0 || geteuid() == 0)
        return -1;
    return 0;
}

static long long privs_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int privs_run(const struct local_user *as, int (*fn)(void *arg, int fd), void *arg,
              size_t limit, int timeout_s, struct strbuf *out, struct strbuf *why)
{
    long long deadline = privs_now_ms() + (long long) timeout_s * 1000;
    int pfd[2], status = 0, open = 1, timed_out = 0;
    char buf[8192];
    pid_t pid;

    if (pipe2(pfd, O_CLOEXEC) < 0) {
        strbuf_printf(why, "pipe: %s", strerror(errno));
        return -1;
    }
    if ((pid = fork()) < 0) {
        strbuf_printf(why, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        close(pfd[0]);
        signal(SIGPIPE, SIG_DFL);
        umask(077);
        if (as != NULL && privs_become(as) < 0)
            _exit(PRIVS_EXIT_SETUID);
        _exit(fn(arg, pfd[1]) & 0xff);
    }
    close(pfd[1]);
    while (open) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        long long left = deadline - privs_now_ms();
        ssize_t n;

        if (left <= 0) {
            kill(pid, SIGKILL);
            timed_out = 1;
            break;
        }
        if (poll(&p, 1, (int) (left > 60000 ? 60000 : left)) < 0 && errno != EINTR)
            break;
        if ((n = read(pfd[0], buf, sizeof(buf))) > 0) {
            size_t room = limit > out->len ? limit - out->len : 0;

            (void) strbuf_append(out, buf, (size_t) n < room ? (size_t) n : room);
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            open = 0;
        }
    }
    close(pfd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        continue;
    if (timed_out) {
        strbuf_printf(why, "time limit exceeded");
        return -1;
    }
    if (WIFSIGNALED(status)) {
        strbuf_printf(why, "delivery process killed by signal %d", WTERMSIG(status));
        return -1;
    }
    if (WEXITSTATUS(status) == PRIVS_EXIT_SETUID) {
        strbuf_printf(why, "cannot change to the rights of uid %ld",
                      as ? (long) privs_effective(as)->uid : 0L);
        return -1;
    }
    return WEXITSTATUS(status);
}

int privs_put_outcome(int fd, enum deliver_status status, const char *dsn, const char *text)
{
    struct strbuf msg;
    int rc;

    strbuf_init(&msg, 128, STRBUF_UNLIMITED);
    strbuf_printf(&msg, "%c %.7s %.*s", status == DELIVER_SENT ? 'S'
                  : status == DELIVER_BOUNCE ? 'B' : 'D', dsn, LOCAL_TEXT_MAX, text);
    rc = safe_file_write_all(fd, msg.data, msg.len);
    strbuf_release(&msg);
    return rc;
}

int privs_get_outcome(const struct strbuf *in, enum deliver_status *status, char dsn[8],
                      struct strbuf *text)
{
    const char *sp;
    size_t n;

    if (in->len < 8 || in->data[1] != ' ' || strchr("SBD", in->data[0]) == NULL
        || (sp = strchr(in->data + 2, ' ')) == NULL || (n = (size_t) (sp - in->data - 2)) > 7)
        return -1;
    *status = in->data[0] == 'S' ? DELIVER_SENT : in->data[0] == 'B' ? DELIVER_BOUNCE
        : DELIVER_DEFER;
    memcpy(dsn, in->data + 2, n);
    dsn[n] = 0;
    /* The class must fit the status, or deliver_report would refuse it. */
    if (dsn[0] != (*status == DELIVER_SENT ? '2' : *status == DELIVER_BOUNCE ? '5' : '4'))
        return -1;
    strbuf_set(text, sp + 1);
    return 0;
}
