/*
 * master_spawn.c - starting workers, listening to their status, reaping them,
 * throttling crash loops and sending wakeup triggers.
 *
 * Accounting: a new worker counts as available from the moment it is forked, so
 * master never starts a second one for the same waiting client; a "busy" record
 * makes it unavailable, an "avail" record available again. Master polls a
 * service's sockets only when no worker is available (master_serv_watch).
 * Crash loops: a worker that exits abnormally before its first status record, or
 * the MASTER_CRASH_LIMIT-th abnormal exit within a minute, throttles its service
 * for service_throttle_time: no new workers, so restarts per minute are bounded.
 * Must never: leave a zombie (every SIGCHLD reaps all), pass a descriptor other
 * than the status pipe and the service's sockets, or block on a worker.
 * Failure: fork/exec failures are logged and count as a crash.
 */
#define _GNU_SOURCE                     /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "master.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"

static const char *const master_type_names[] = {"inet", "unix", "fifo", "pass"};

static char *master_command_path(const char *command)
{
    char *path;

    if (strchr(command, '/'))
        return xstrdup(command);
    path = xmalloc(strlen(var_daemon_directory) + strlen(command) + 2);
    sprintf(path, "%s/%s", var_daemon_directory, command);
    return path;
}

static struct master_proc *master_proc_find(pid_t pid, struct master_proc ***prevp)
{
    struct master_proc **pp;

    for (pp = &master_procs; *pp; pp = &(*pp)->next) {
        if ((*pp)->pid == pid) {
            if (prevp)
                *prevp = pp;
            return *pp;
        }
    }
    return NULL;
}

static const char master_opt_o[] = "-o";

static void master_free_argv(char **argv)
{
    size_t i;

    for (i = 1; argv[i]; i++)
        if (argv[i - 1] == master_opt_o)
            free(argv[i]);
    free(argv);
}

/* The child's argv: master's options first, then the command's own arguments. */
static char **master_build_argv(const struct master_serv *serv, char *countbuf)
{
    const struct master_service *def = serv->def;
    size_t n = 0, i, max = 16 + 2 * def->noverrides + def->argc;
    char **argv = xcalloc(max, sizeof(*argv));

    argv[n++] = def->argv && def->argv[0] ? def->argv[0] : def->command;
    argv[n++] = "-c";
    argv[n++] = (char *) config_dir();
    argv[n++] = "-n";
    argv[n++] = def->name;
    argv[n++] = "-t";
    argv[n++] = (char *) master_type_names[def->type];
    argv[n++] = "-s";
    argv[n++] = countbuf;
    if (def->unpriv)
        argv[n++] = "-u";
    if (def->chroot)
        argv[n++] = "-z";
    if (msg_verbose)
        argv[n++] = "-v";
    for (i = 0; i < def->noverrides; i++) {
        size_t len = strlen(def->overrides[i].name) + strlen(def->overrides[i].value) + 2;
        char *o = xmalloc(len);

        snprintf(o, len, "%s=%s", def->overrides[i].name, def->overrides[i].value);
        argv[n++] = (char *) master_opt_o;
        argv[n++] = o;                  /* freed by master_free_argv */
    }
    for (i = 1; def->argv && i < def->argc && def->argv[i]; i++)
        argv[n++] = def->argv[i];
    argv[n] = NULL;
    return argv;
}

/* In the child: move the status pipe and the sockets to their agreed numbers. */
static void master_child_fds(const struct master_serv *serv)
{
    int tmp[SERVER_LISTEN_MAX + 1], i, n = serv->nfds + 1;

    /* Duplicate high first, so a source fd is never overwritten before it is moved. */
    tmp[0] = fcntl(master_status_fd[1], F_DUPFD_CLOEXEC, 100);
    for (i = 0; i < serv->nfds; i++)
        tmp[i + 1] = fcntl(serv->fds[i], F_DUPFD_CLOEXEC, 100);
    for (i = 0; i < n; i++) {
        if (tmp[i] < 0 || dup2(tmp[i], SERVER_STATUS_FD + i) < 0) {
            dprintf(2, "master: child fd setup: %s\n", strerror(errno));
            _exit(1);
        }
    }
}

void master_spawn(struct master_serv *serv)
{
    struct master_proc *proc;
    char countbuf[16];
    char **argv;
    char *path;
    pid_t pid;

    path = master_command_path(serv->def->command);
    snprintf(countbuf, sizeof(countbuf), "%d", serv->nfds);
    argv = master_build_argv(serv, countbuf);
    pid = fork();
    if (pid < 0) {
        msg_warn("fork: %m");
        free(path);
        master_free_argv(argv);
        return;                         /* still watching: the next readiness retries */
    }
    if (pid == 0) {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &sa, NULL);
        sigaction(SIGCHLD, &sa, NULL);
        events_child_reset();
        master_child_fds(serv);
        execv(path, argv);
        msg_fatal("exec %s: %m", path);
    }
    master_free_argv(argv);
    proc = xcalloc(1, sizeof(*proc));
    proc->pid = pid;
    proc->serv = serv;
    proc->path = path;
    proc->avail = 1;
    proc->next = master_procs;
    master_procs = proc;
    serv->total++;
    serv->avail++;
    serv->used = 1;
    if (msg_verbose)
        msg_info("spawned %s pid %ld for service %s", path, (long) pid, serv->def->name);
    master_serv_watch(serv);
}

static void master_unthrottle(struct events *ev, void *ctx)
{
    struct master_serv *serv = ctx;

    serv->throttle_timer = 0;
    serv->throttled = 0;
    master_serv_watch(serv);
}

static void master_throttle(struct master_serv *serv, const char *path)
{
    long long secs = var_service_throttle_time > 0 ? var_service_throttle_time : 60;

    if (serv->throttled)
        return;
    msg_warn("%s: bad command startup -- throttling", path);
    serv->throttled = 1;
    serv->throttle_timer = events_timer_add(master_events, secs * 1000, master_unthrottle, serv);
    master_serv_watch(serv);
}

/* Logs how a child ended; returns 1 when that was abnormal. */
static int master_log_exit(const struct master_proc *proc, int status)
{
    if (WIFSIGNALED(status)) {
        /* Our own SIGTERM during reload/stop is how we asked it to go. */
        if (WTERMSIG(status) == SIGTERM && (proc->serv == NULL || master_stopping))
            return 0;
        msg_warn("process %s pid %ld killed by signal %d", proc->path, (long) proc->pid,
                 WTERMSIG(status));
        return 1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        msg_warn("process %s pid %ld exit status %d", proc->path, (long) proc->pid,
                 WEXITSTATUS(status));
        return 1;
    }
    return 0;
}

static void master_account_crash(struct master_serv *serv, const struct master_proc *proc)
{
    time_t now = events_now(master_events);

    if (now - serv->crash_window >= 60) {
        serv->crash_window = now;
        serv->crashes = 0;
    }
    if (!proc->ready || ++serv->crashes >= MASTER_CRASH_LIMIT)
        master_throttle(serv, proc->path);
}

void master_reap(void)
{
    struct master_proc *proc, **prev;
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if ((proc = master_proc_find(pid, &prev)) == NULL)
            continue;
        *prev = proc->next;
        if (master_log_exit(proc, status) && proc->serv)
            master_account_crash(proc->serv, proc);
        if (proc->serv) {
            proc->serv->total--;
            if (proc->avail)
                proc->serv->avail--;
            master_serv_watch(proc->serv);
        }
        free(proc->path);
        free(proc);
    }
}

static void master_status_read(struct events *ev, int fd, int mask, void *ctx)
{
    struct server_status recs[64];
    ssize_t n;
    size_t i;

    n = read(fd, recs, sizeof(recs));
    if (n <= 0)
        return;
    for (i = 0; i < (size_t) n / sizeof(recs[0]); i++) {
        struct master_proc *proc = master_proc_find((pid_t) recs[i].pid, NULL);
        struct master_serv *serv;

        if (proc == NULL || (serv = proc->serv) == NULL)
            continue;                   /* gone, or of an older generation */
        proc->ready = 1;
        if (recs[i].status == SERVER_STATUS_AVAIL && !proc->avail) {
            proc->avail = 1;
            serv->avail++;
        } else if (recs[i].status == SERVER_STATUS_BUSY && proc->avail) {
            proc->avail = 0;
            serv->avail--;
        }
        master_serv_watch(serv);
    }
}

void master_spawn_init(void)
{
    if (pipe2(master_status_fd, O_CLOEXEC) < 0)
        msg_fatal("pipe: %m");
    if (fcntl(master_status_fd[0], F_SETFL, O_NONBLOCK) < 0)
        msg_fatal("fcntl: %m");
    if (events_fd_add(master_events, master_status_fd[0], EVENTS_READ, master_status_read,
                      NULL) < 0)
        msg_fatal("watch status pipe: %m");
}

void master_kill_all(int sig)
{
    struct master_proc *proc;

    for (proc = master_procs; proc; proc = proc->next)
        if (kill(proc->pid, sig) < 0 && errno != ESRCH)
            msg_warn("kill %ld: %m", (long) proc->pid);
}

/* Detaches the service's workers (reload, removal): they finish and are reaped quietly. */
void master_serv_forget(struct master_serv *serv)
{
    struct master_proc *proc;

    for (proc = master_procs; proc; proc = proc->next) {
        if (proc->serv == serv) {
            proc->serv = NULL;
            if (kill(proc->pid, SIGTERM) < 0 && errno != ESRCH)
                msg_warn("kill %ld: %m", (long) proc->pid);
        }
    }
    serv->total = serv->avail = 0;
}

static void master_wakeup(struct events *ev, void *ctx)
{
    struct master_serv *serv = ctx;
    char req[1] = {SERVER_TRIGGER_WAKEUP};

    serv->wakeup_timer = 0;
    if (!master_stopping && (!serv->def->wakeup_if_used || serv->used) && serv->path
        && server_trigger_send(serv->path, serv->def->type == MASTER_FIFO, req, 1) < 0
        && errno != EAGAIN)
        msg_warn("wakeup %s: %m", serv->path);
    master_wakeup_arm(serv);
}

static void master_wakeup_after(struct master_serv *serv, long long delay_ms)
{
    if (serv->def->wakeup > 0 && serv->path && !master_stopping)
        serv->wakeup_timer = events_timer_add(master_events, delay_ms, master_wakeup, serv);
}

void master_wakeup_arm(struct master_serv *serv)
{
    master_wakeup_after(serv, serv->def->wakeup * 1000LL);
}

/* At start the first wake-up comes at once, as in Postfix: mail dropped into
 * maildrop/ while the system was down is picked up now, not one interval later. */
void master_wakeup_first(struct master_serv *serv)
{
    master_wakeup_after(serv, 0);
}
