/*
 * master.h - the master supervisor's internal state, shared by the master sources only.
 * master keeps one struct master_serv per master.cf service (its listening
 * sockets and accounting) and one struct master_proc per live child.
 * Workers of an older generation (before a reload) have proc->serv == NULL:
 * they count for nothing and are reaped quietly.
 */
#ifndef PETREL_MASTER_H
#define PETREL_MASTER_H

#include <sys/types.h>

#include "events.h"
#include "mastercf.h"
#include "server.h"

#define MASTER_CRASH_LIMIT 10       /* abnormal exits per minute before throttling */
#define MASTER_STOP_WAIT_MS 10000   /* "stop": how long busy workers may finish */
#define MASTER_LISTEN_BACKLOG 128

struct master_serv {
    const struct master_service *def;   /* points into master_cf (current generation) */
    char *key;                      /* listening definition; equal keys keep sockets on reload */
    int fds[SERVER_LISTEN_MAX];
    int nfds;
    char *path;                     /* unix/fifo: the endpoint relative to queue_directory */
    int total;                      /* live workers of this generation */
    int avail;                      /* of those, ready for work */
    int watching;                   /* master polls the sockets for demand */
    int throttled;
    int used;                       /* a worker ran at least once (wakeup "?" form) */
    int limit_warned;
    events_timer_id throttle_timer;
    events_timer_id wakeup_timer;
    time_t crash_window;            /* start of the current one-minute crash count */
    int crashes;
    struct master_serv *next;
};

struct master_proc {
    pid_t pid;
    struct master_serv *serv;       /* NULL: old generation or service removed */
    char *path;                     /* program path, for log messages */
    int avail;
    int ready;                      /* reported at least once */
    struct master_proc *next;
};

/* master.c */
extern struct events *master_events;
extern struct mastercf master_cf;
extern struct master_serv *master_servs;
extern struct master_proc *master_procs;
extern int master_stopping;
extern int master_unprivileged;
extern int master_status_fd[2];

/* master_dirs.c: the queue directory tree and data_directory. */
void master_dirs_create(void);
/* Owner uid/gid for mail_owner files (the running user in unprivileged mode). */
void master_owner_ids(uid_t *uid, gid_t *gid, gid_t *setgid_gid);

/* master_service.c: listening endpoints. */
struct master_serv *master_serv_open(const struct master_service *def, int fatal);
void master_serv_close(struct master_serv *serv);
char *master_serv_key(const struct master_service *def);
void master_serv_watch(struct master_serv *serv);
void master_serv_open_all(void);

/* master_spawn.c: children, status pipe, reaping, throttling, wakeups. */
void master_spawn_init(void);
void master_spawn(struct master_serv *serv);
void master_reap(void);
void master_kill_all(int sig);
void master_wakeup_arm(struct master_serv *serv);
void master_wakeup_first(struct master_serv *serv);
void master_serv_forget(struct master_serv *serv);

/* master_sig.c: SIGHUP, SIGTERM/SIGINT, SIGQUIT, SIGCHLD. */
void master_sig_init(void);
void master_exit(int status);

/* master_reload.c */
void master_reload(void);

#endif
