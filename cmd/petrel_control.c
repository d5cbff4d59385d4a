/*
 * petrel_control.c - petrel start | start-fg | stop | abort | reload | status | flush.
 * Whether master runs is decided by the kernel's lock on master.pid (F_GETLK), never
 * by a pid number in a file, so a stale pid file cannot make us signal a stranger.
 * "start" checks the configuration first and refuses with its messages; it then
 * starts master detached and relays master's startup errors. Every wait is bounded.
 * Must never: start a second master, or signal a process that does not hold the lock.
 * Failure: messages on stderr, exit 1.
 */
#define _GNU_SOURCE                     /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "mastercf.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "petrel.h"
#include "server.h"
#include "strbuf.h"

#define CONTROL_START_WAIT_MS 15000
#define CONTROL_STOP_WAIT_MS 30000     /* master itself gives workers 10 s */
#define CONTROL_POLL_MS 50

static char *control_path(const char *dir, const char *name)
{
    char *path = xmalloc(strlen(dir) + strlen(name) + 2);

    sprintf(path, "%s/%s", dir, name);
    return path;
}

/* Prints every configuration problem; returns the number of errors. */
static int control_check(void)
{
    struct strbuf report;
    int errors;

    strbuf_init(&report, 256, 1 << 20);
    config_checks_register();
    errors = config_check(&report);
    if (report.len)
        fprintf(stderr, "%s%s", report.data, report.data[report.len - 1] == '\n' ? "" : "\n");
    strbuf_release(&report);
    return errors;
}

static long long control_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Copies what master writes to its stderr until it detaches (EOF), bounded. */
static void control_relay(int fd, long long deadline)
{
    char buf[4096];

    while (control_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;

        if (poll(&p, 1, (int) (deadline - control_now_ms())) <= 0)
            return;
        if ((n = read(fd, buf, sizeof(buf))) <= 0)
            return;
        (void) !write(2, buf, (size_t) n);
    }
}

static int control_start(void)
{
    char *master = control_path(var_daemon_directory, "master");
    long long deadline = control_now_ms() + CONTROL_START_WAIT_MS;
    int errpipe[2], status;
    pid_t pid;

    if (pipe2(errpipe, O_CLOEXEC) < 0)
        msg_fatal("pipe: %m");
    if ((pid = fork()) < 0)
        msg_fatal("fork: %m");
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);

        if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(errpipe[1], 2) < 0)
            _exit(1);
        (void) setsid();
        execl(master, "master", "-d", "-c", config_dir(), (char *) NULL);
        dprintf(2, "petrel/petrel: fatal: exec %s: %s\n", master, strerror(errno));
        _exit(1);
    }
    close(errpipe[1]);
    free(master);
    control_relay(errpipe[0], deadline);
    close(errpipe[0]);
    while (control_now_ms() < deadline) {
        if (server_master_pid() > 0) {
            msg_info("the Petrel mail system is running: PID: %ld", (long) server_master_pid());
            return 0;
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            msg_error("master exited with status %d; see the messages above or the mail log",
                      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            return 1;
        }
        usleep(CONTROL_POLL_MS * 1000);
    }
    msg_error("master did not start within %d seconds", CONTROL_START_WAIT_MS / 1000);
    return 1;
}

static int control_start_fg(void)
{
    char *master = control_path(var_daemon_directory, "master");

    execl(master, "master", "-c", config_dir(), (char *) NULL);
    msg_fatal("exec %s: %m", master);
}

/* Signals master and, when wait_exit, waits until its lock is released. */
static int control_signal(int sig, int wait_exit, const char *what)
{
    pid_t pid = server_master_pid();
    long long deadline = control_now_ms() + CONTROL_STOP_WAIT_MS;

    if (pid <= 0) {
        msg_error("the Petrel mail system is not running");
        return 1;
    }
    if (kill(pid, sig) < 0) {
        msg_error("signal master pid %ld: %m", (long) pid);
        return 1;
    }
    msg_info("%s the Petrel mail system", what);
    if (!wait_exit)
        return 0;
    while (control_now_ms() < deadline) {
        if (server_master_pid() <= 0)
            return 0;
        usleep(CONTROL_POLL_MS * 1000);
    }
    msg_error("master pid %ld did not exit within %d seconds", (long) pid,
              CONTROL_STOP_WAIT_MS / 1000);
    return 1;
}

static int control_status(void)
{
    pid_t pid = server_master_pid();

    if (pid > 0) {
        msg_info("the Petrel mail system is running: PID: %ld", (long) pid);
        return 0;
    }
    msg_info("the Petrel mail system is not running");
    return 1;
}

/* Asks qmgr to retry deferred mail: the trigger goes to its public (or private) endpoint. */
static int control_flush(void)
{
    struct mastercf cf = {NULL, 0};
    const struct master_service *qmgr;
    struct strbuf err;
    char *path = control_path(config_dir(), "master.cf"), *endpoint;
    char req[2] = {SERVER_TRIGGER_FLUSH, SERVER_TRIGGER_SCAN};
    int rc = 1;

    strbuf_init(&err, 256, 65536);
    if (mastercf_parse(path, &cf, &err) < 0) {
        fprintf(stderr, "%s", err.data);
    } else if ((qmgr = mastercf_find(&cf, "qmgr", MASTER_UNIX)) == NULL
               && (qmgr = mastercf_find(&cf, "qmgr", MASTER_FIFO)) == NULL) {
        msg_error("flush: no qmgr service in %s: the queue manager is not configured", path);
    } else if (server_master_pid() <= 0) {
        msg_error("flush: the Petrel mail system is not running");
    } else {
        endpoint = xmalloc(strlen(var_queue_directory) + strlen(qmgr->name) + 16);
        sprintf(endpoint, "%s/%s/%s", var_queue_directory,
                qmgr->private_ ? "private" : "public", qmgr->name);
        if (server_trigger_send(endpoint, qmgr->type == MASTER_FIFO, req, sizeof(req)) < 0)
            msg_error("flush: %s: %m", endpoint);
        else
            rc = 0;
        free(endpoint);
    }
    mastercf_free(&cf);
    strbuf_release(&err);
    free(path);
    return rc;
}

int petrel_control_main(int argc, char **argv)
{
    const char *cmd = argv[0];

    if (argc != 1) {
        fprintf(stderr, "usage: petrel [-c config_dir] %s\n", cmd);
        return EX_USAGE;
    }
    if (strcmp(cmd, "start") == 0 || strcmp(cmd, "start-fg") == 0 || strcmp(cmd, "reload") == 0) {
        if (control_check() > 0) {
            msg_error("configuration errors; the mail system was not %s",
                      cmd[0] == 'r' ? "reloaded" : "started");
            return 1;
        }
    }
    config_load();
    if (strcmp(cmd, "status") == 0)
        return control_status();
    if (strcmp(cmd, "stop") == 0)
        return control_signal(SIGTERM, 1, "stopping");
    if (strcmp(cmd, "abort") == 0)
        return control_signal(SIGQUIT, 1, "aborting");
    if (strcmp(cmd, "reload") == 0)
        return control_signal(SIGHUP, 0, "refreshing");
    if (strcmp(cmd, "flush") == 0)
        return control_flush();
    if (server_master_pid() > 0) {
        msg_error("the Petrel mail system is already running: PID: %ld",
                  (long) server_master_pid());
        return 1;
    }
    if (strcmp(cmd, "start") == 0)
        return control_start();
    if (strcmp(cmd, "start-fg") == 0)
        return control_start_fg();
    fprintf(stderr, "petrel: unknown control command \"%s\"\n", cmd);
    return EX_USAGE;
}
