/*
 * master_sig.c - what master does on signals, all delivered through the event loop.
 * SIGHUP: reload. SIGTERM, SIGINT: stop (stop accepting, let busy workers finish
 * for at most MASTER_STOP_WAIT_MS, then kill the rest). SIGQUIT: abort (kill the
 * workers at once). SIGCHLD: reap. Must never exit with workers it did not wait
 * for, or leave the pid file behind on a clean exit.
 * Failure: signal setup errors are fatal at start.
 */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>

#include "master.h"
#include "msg.h"
#include "server.h"

void master_exit(int status)
{
    (void) unlink(server_pid_path());
    msg_info("daemon stopped");
    exit(status);
}

/* Waits (bounded) for every child after SIGKILL; the kernel guarantees they die. */
static void master_kill_and_exit(void)
{
    int i;

    master_kill_all(SIGKILL);
    for (i = 0; i < 200 && master_procs; i++) {
        master_reap();
        if (master_procs)
            usleep(10000);
    }
    master_exit(0);
}

static void master_stop_timeout(struct events *ev, void *ctx)
{
    msg_warn("stop: workers still busy after %d seconds; killing them",
             MASTER_STOP_WAIT_MS / 1000);
    master_kill_and_exit();
}

static void master_close_all(void)
{
    struct master_serv *serv;

    master_stopping = 1;
    while ((serv = master_servs) != NULL) {
        master_servs = serv->next;
        master_serv_close(serv);        /* SIGTERMs its workers too */
    }
}

static void master_on_stop(struct events *ev, int signo, void *ctx)
{
    if (master_stopping)
        return;
    msg_info("terminating on signal %d", signo);
    master_close_all();
    master_kill_all(SIGTERM);           /* old-generation workers as well */
    if (master_procs == NULL)
        master_exit(0);
    events_timer_add(ev, MASTER_STOP_WAIT_MS, master_stop_timeout, NULL);
}

static void master_on_abort(struct events *ev, int signo, void *ctx)
{
    msg_info("terminating on signal %d", signo);
    master_stopping = 1;
    master_kill_and_exit();
}

static void master_on_child(struct events *ev, int signo, void *ctx)
{
    master_reap();
    if (master_stopping && master_procs == NULL)
        master_exit(0);
}

static void master_on_hup(struct events *ev, int signo, void *ctx)
{
    if (!master_stopping)
        master_reload();
}

void master_sig_init(void)
{
    struct sigaction sa = {0};

    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (events_signal_add(master_events, SIGHUP, master_on_hup, NULL) < 0
        || events_signal_add(master_events, SIGTERM, master_on_stop, NULL) < 0
        || events_signal_add(master_events, SIGINT, master_on_stop, NULL) < 0
        || events_signal_add(master_events, SIGQUIT, master_on_abort, NULL) < 0
        || events_signal_add(master_events, SIGCHLD, master_on_child, NULL) < 0)
        msg_fatal("signal setup: %m");
}
