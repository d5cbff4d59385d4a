/*
 * server.c - the worker skeleton: options, configuration, logging, chroot,
 * privilege drop, and the serve loops for SINGLE, TRIGGER and EVENT programs.
 *
 * SIGTERM (master's "please go": reload, stop) is blocked except while the worker
 * waits for work, so an idle worker exits at once and a busy one finishes its
 * request first. A worker notices a vanished master through the status pipe
 * (POLLERR on the write end) and through PR_SET_PDEATHSIG.
 * Must never: serve a request as root unless ops->stay_root, leave a listening
 * socket in a forked helper's hands (all fds are close-on-exec), or wait unbounded
 * for a trigger client. Failure: administrator errors are msg_fatal (exit 1).
 */
#define _GNU_SOURCE                     /* accept4, ppoll */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "events.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "server.h"

#define SERVER_TRIGGER_TIMEOUT_MS 2000  /* a trigger client writes a byte and closes */

static const struct server_ops *server_ops;
static struct server_ctx server_ctx;
static int server_listen_count = -1;    /* -1: not started by master */
static int server_is_fifo;
static pid_t server_parent;
static volatile sig_atomic_t server_terminating;
static sigset_t server_wait_mask;       /* the mask while waiting: SIGTERM allowed */
static long long server_use_count;

static void server_on_term(int sig)
{
    server_terminating = 1;
}

void server_set_busy(int busy)
{
    struct server_status st;

    if (server_listen_count < 0 || server_ops->mode == SERVER_EVENT)
        return;
    st.pid = (int32_t) getpid();
    st.status = busy ? SERVER_STATUS_BUSY : SERVER_STATUS_AVAIL;
    if (write(SERVER_STATUS_FD, &st, sizeof(st)) != (ssize_t) sizeof(st)) {
        if (errno == EPIPE)
            _exit(0);                   /* master is gone; nobody wants our work */
        msg_warn("status pipe: %m");
    }
}

_Noreturn static void server_exit(void)
{
    if (server_ops->pre_exit)
        server_ops->pre_exit(&server_ctx);
    exit(0);
}

void server_drop_privileges(uid_t uid, gid_t gid, const char *user)
{
    if (setgid(gid) < 0)
        msg_fatal("setgid(%ld): %m", (long) gid);
    if (initgroups(user, gid) < 0)
        msg_fatal("initgroups(%s, %ld): %m", user, (long) gid);
    if (setuid(uid) < 0)
        msg_fatal("setuid(%ld): %m", (long) uid);
    /* A privilege drop that can be undone is no drop at all. */
    if (uid != 0 && (setuid(0) == 0 || geteuid() == 0))
        msg_panic("privileges could be regained after setuid(%ld)", (long) uid);
}

static void server_usage(void)
{
    msg_fatal("usage: %s [-c config_dir] [-n service] [-t type] [-s count] [-u] [-z] [-v] "
              "[-o name=value] ...", msg_program());
}

static void server_add_override(const char *arg)
{
    const char *eq = strchr(arg, '=');
    char *name;

    if (eq == NULL || eq == arg)
        msg_fatal("bad -o option \"%s\": expected name=value", arg);
    name = xstrndup(arg, (size_t) (eq - arg));
    config_add_override(name, eq + 1);
    free(name);
}

struct server_opts {
    int drop;                       /* -u: run as mail_owner */
    int chroot;                     /* -z: chroot to queue_directory */
};

static void server_parse_args(int argc, char **argv, struct server_opts *opts)
{
    int ch;

    server_ctx.service = msg_program();
    server_ctx.type = "unix";
    while ((ch = getopt(argc, argv, "+c:n:o:s:t:uvz")) != -1) {
        switch (ch) {
        case 'c':
            config_set_dir(optarg);
            break;
        case 'n':
            server_ctx.service = optarg;
            break;
        case 'o':
            server_add_override(optarg);
            break;
        case 's':
            server_listen_count = atoi(optarg);
            if (server_listen_count < 1 || server_listen_count > SERVER_LISTEN_MAX)
                msg_fatal("bad listen socket count \"%s\"", optarg);
            break;
        case 't':
            server_ctx.type = optarg;
            break;
        case 'u':
            opts->drop = 1;
            break;
        case 'v':
            msg_verbose++;
            break;
        case 'z':
            opts->chroot = 1;
            break;
        default:
            server_usage();
        }
    }
    server_ctx.argv = argv + optind;
    server_ctx.argc = argc - optind;
    server_is_fifo = strcmp(server_ctx.type, "fifo") == 0;
}

void server_log_open(int keep_stderr)
{
    msg_set_syslog_name(var_syslog_name);
    if (var_maillog_file && *var_maillog_file) {
        enum msg_format fmt = (var_maillog_format && strcmp(var_maillog_format, "json") == 0)
            ? MSG_FORMAT_JSON : MSG_FORMAT_TEXT;

        if (msg_use_file(var_maillog_file, fmt) < 0)
            msg_fatal("open maillog_file %s: %m", var_maillog_file);
    } else {
        msg_use_syslog();
    }
    msg_use_stderr(keep_stderr);
}

/* Root only: pre_init, chroot, privilege drop, in the order the contract promises. */
static void server_enter_jail(const struct server_opts *opts)
{
    struct passwd *pw = NULL;
    int root = geteuid() == 0;

    if (root && opts->drop && !server_ops->stay_root) {
        /* Look the user up before chroot: the jail has no passwd file. */
        if ((pw = getpwnam(var_mail_owner)) == NULL)
            msg_fatal("mail_owner %s: no such user", var_mail_owner);
        if (pw->pw_uid == 0)
            msg_fatal("mail_owner %s must not be a privileged account", var_mail_owner);
    }
    if (chdir(var_queue_directory) < 0)
        msg_fatal("chdir %s: %m", var_queue_directory);
    if (server_ops->pre_init)
        server_ops->pre_init(&server_ctx);
    if (root && opts->chroot) {
        if (chroot(var_queue_directory) < 0 || chdir("/") < 0)
            msg_fatal("chroot %s: %m", var_queue_directory);
    }
    if (pw)
        server_drop_privileges(pw->pw_uid, pw->pw_gid, var_mail_owner);
    /* The death signal is cleared by a credential change, so set it afterwards. */
    if (server_listen_count >= 0) {
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != server_parent)
            exit(0);                    /* master died while we started */
    }
}

static void server_setup_signals(void)
{
    struct sigaction sa;
    sigset_t term;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = server_on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &server_wait_mask);
    sigdelset(&server_wait_mask, SIGTERM);
}

/* Reads one trigger request from a connected client, bounded in size and time. */
static size_t server_read_trigger_conn(int fd, char *buf, size_t size)
{
    struct timespec start, now;
    size_t len = 0;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (len < size) {
        struct pollfd p = {fd, POLLIN, 0};
        long long spent;
        ssize_t n;

        clock_gettime(CLOCK_MONOTONIC, &now);
        spent = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (spent >= SERVER_TRIGGER_TIMEOUT_MS
            || poll(&p, 1, (int) (SERVER_TRIGGER_TIMEOUT_MS - spent)) <= 0)
            break;
        n = read(fd, buf + len, size - len);
        if (n <= 0)
            break;
        len += (size_t) n;
    }
    return len;
}

/* One unit of work on a ready listening fd; returns 0 when nothing was there. */
static int server_handle_one(int lfd)
{
    char buf[SERVER_TRIGGER_MAX];
    ssize_t n;
    int fd;

    if (server_is_fifo) {
        n = read(lfd, buf, sizeof(buf));
        if (n <= 0)
            return 0;
        server_set_busy(1);
        server_ops->trigger(buf, (size_t) n, &server_ctx);
        return 1;
    }
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
            && errno != ECONNABORTED)
            msg_warn("accept: %m");
        return 0;                       /* another worker took it */
    }
    server_set_busy(1);
    if (server_ops->mode == SERVER_SINGLE) {
        server_ops->service(fd, &server_ctx);
    } else {
        size_t len = server_read_trigger_conn(fd, buf, sizeof(buf));

        if (len > 0)
            server_ops->trigger(buf, len, &server_ctx);
    }
    close(fd);
    return 1;
}

/* SINGLE and TRIGGER: wait (SIGTERM allowed), serve, report, until a reason to stop. */
_Noreturn static void server_loop(void)
{
    struct pollfd pfd[SERVER_LISTEN_MAX + 1];
    int nfd = server_listen_count + 1, i;
    time_t idle_since = time(NULL);

    for (i = 0; i < server_listen_count; i++)
        pfd[i] = (struct pollfd) {SERVER_LISTEN_FD + i, POLLIN, 0};
    pfd[server_listen_count] = (struct pollfd) {SERVER_STATUS_FD, 0, 0};
    server_set_busy(0);
    for (;;) {
        struct timespec ts = {0, 0};
        long long left = var_max_idle > 0 ? var_max_idle - (long long) (time(NULL) - idle_since) : 3600;
        int n;

        if (left <= 0 || server_terminating)
            server_exit();
        ts.tv_sec = (time_t) left;
        n = ppoll(pfd, (nfds_t) nfd, &ts, &server_wait_mask);
        if (n < 0) {
            if (errno != EINTR)
                msg_fatal("poll: %m");
            continue;
        }
        if (pfd[server_listen_count].revents)
            exit(0);                    /* master closed the status pipe: it is gone */
        for (i = 0; i < server_listen_count; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            if (!server_handle_one(pfd[i].fd))
                continue;
            server_use_count++;
            if (server_terminating || (var_max_use > 0 && server_use_count >= var_max_use))
                server_exit();
            server_set_busy(0);
            idle_since = time(NULL);
        }
    }
}

/* An EVENT program is never "busy" to master: it multiplexes; report ready once. */
static void server_event_ready(void)
{
    struct server_status st = {(int32_t) getpid(), SERVER_STATUS_AVAIL};

    if (write(SERVER_STATUS_FD, &st, sizeof(st)) != (ssize_t) sizeof(st))
        exit(0);
}

static void server_event_listen(struct events *ev, int fd, int mask, void *ctx)
{
    if (server_ops->trigger)
        (void) server_handle_one(fd);
    else
        server_ops->event_accept(fd, &server_ctx);
}

static void server_event_gone(struct events *ev, int fd, int mask, void *ctx)
{
    exit(0);                            /* the status pipe broke: master is gone */
}

static void server_event_term(struct events *ev, int signo, void *ctx)
{
    server_exit();
}

_Noreturn static void server_event_loop(void)
{
    struct events *ev = events_new();
    int i;

    if (ev == NULL)
        msg_fatal("events_new: %m");
    server_ctx.events = ev;
    if (events_signal_add(ev, SIGTERM, server_event_term, NULL) < 0)
        msg_fatal("signal setup: %m");
    if (server_ops->trigger == NULL && server_ops->event_accept == NULL)
        msg_panic("EVENT program has neither trigger nor event_accept");
    for (i = 0; i < server_listen_count; i++)
        if (events_fd_add(ev, SERVER_LISTEN_FD + i, EVENTS_READ, server_event_listen, NULL) < 0)
            msg_fatal("watch listen socket: %m");
    /* Watching the write end for input reports only an error: the reader closed. */
    if (events_fd_add(ev, SERVER_STATUS_FD, EVENTS_READ, server_event_gone, NULL) < 0)
        msg_fatal("watch status pipe: %m");
    server_event_ready();
    events_run(ev);
    server_exit();
}

_Noreturn void server_main(int argc, char **argv, const struct server_ops *ops)
{
    struct server_opts opts = {0, 0};

    server_ops = ops;
    msg_init(argv[0]);
    server_parent = getppid();
    server_parse_args(argc, argv, &opts);
    if ((ops->mode == SERVER_SINGLE && ops->service == NULL)
        || (ops->mode == SERVER_TRIGGER && ops->trigger == NULL))
        msg_panic("server_main: mode without its callback");
    config_load();
    /* Run by master, stderr is master's: keep it quiet; run by hand, talk to the user. */
    server_log_open(server_listen_count < 0);
    if (server_listen_count >= 0 && fcntl(SERVER_STATUS_FD, F_GETFD) < 0)
        msg_fatal("-s given but no status pipe on fd %d", SERVER_STATUS_FD);
    server_setup_signals();
    server_enter_jail(&opts);
    if (ops->post_init)
        ops->post_init(&server_ctx);
    if (msg_verbose)
        msg_info("service %s type %s started", server_ctx.service, server_ctx.type);
    if (server_listen_count < 0) {
        /* Run by hand: a SINGLE program serves standard input once, for debugging. */
        if (ops->mode != SERVER_SINGLE)
            msg_fatal("this program is run by the master(8) process");
        ops->service(0, &server_ctx);
        server_exit();
    }
    if (server_is_fifo && ops->trigger == NULL)
        msg_fatal("service %s: a fifo service needs a trigger program", server_ctx.service);
    if (ops->mode == SERVER_EVENT)
        server_event_loop();
    server_loop();
}

const char *server_pid_path(void)
{
    static char *path;

    free(path);
    path = xmalloc(strlen(var_queue_directory) + sizeof("/pid/master.pid"));
    strcpy(path, var_queue_directory);
    strcat(path, "/pid/master.pid");
    return path;
}

pid_t server_master_pid(void)
{
    struct flock fl;
    int fd = open(server_pid_path(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return 0;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    /* F_GETLK asks the kernel who holds the lock, so a stale file never lies. */
    if (fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
        fl.l_pid = 0;
    close(fd);
    return fl.l_pid;
}

int server_trigger_send(const char *path, int is_fifo, const char *buf, size_t len)
{
    struct sockaddr_un sun;
    ssize_t n;
    int fd;

    if (is_fifo) {
        fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    } else {
        if (strlen(path) >= sizeof(sun.sun_path)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        strcpy(sun.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
            int saved = errno;

            close(fd);
            errno = saved;
            return -1;
        }
    }
    if (fd < 0)
        return -1;
    n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK)
        n = write(fd, buf, len);
    close(fd);
    return n == (ssize_t) len ? 0 : -1;
}
