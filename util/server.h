/*
 * server.h - the daemon skeleton every Petrel worker program links, and the
 * master-to-worker protocol (docs/master.md describes it for readers).
 *
 * A worker's main() is a struct server_ops plus one server_main() call. The
 * skeleton parses the options master passes, loads main.cf (with the master.cf -o
 * overrides on top), opens logging, calls pre_init as root, chroots when told,
 * drops privileges to mail_owner, calls post_init, then serves requests until
 * max_use or max_idle, or until master asks it to go (SIGTERM).
 *
 * Must never: run post_init or a service call with root privileges unless the
 * program asked for that (stay_root), hand a listening socket to its service, or
 * keep serving after master died. Failure: configuration errors are msg_fatal
 * (exit 1, master logs and throttles); a lost master ends the process quietly.
 */
#ifndef PETREL_SERVER_H
#define PETREL_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct events;

/* --- The protocol between master and its workers. ---
 * fd 3: the write end of master's status pipe (shared by all workers).
 * fd 4 .. 4+N-1: the service's listening sockets (or the fifo), N given by "-s N".
 * Every other descriptor is closed or close-on-exec. */
#define SERVER_STATUS_FD 3
#define SERVER_LISTEN_FD 4
#define SERVER_LISTEN_MAX 64        /* inet_interfaces x protocols per service */

/* One status record; smaller than PIPE_BUF, so each write is atomic. */
struct server_status {
    int32_t pid;
    int32_t status;                 /* SERVER_STATUS_* */
};

#define SERVER_STATUS_AVAIL 1       /* ready for (more) work; the first one means "started" */
#define SERVER_STATUS_BUSY  0       /* took a request; master may need another worker */

/* Trigger requests master (wakeup column) and "petrel flush" send; one byte each. */
#define SERVER_TRIGGER_WAKEUP 'W'
#define SERVER_TRIGGER_FLUSH  'F'   /* retry deferred mail now (qmgr) */
#define SERVER_TRIGGER_SCAN   'A'   /* scan all queues (qmgr) */
#define SERVER_TRIGGER_MAX    1024  /* longest trigger request read */

enum server_mode {
    SERVER_SINGLE,                  /* one connection at a time: ops->service(fd) */
    SERVER_TRIGGER,                 /* short wake-up requests: ops->trigger(buf, len) */
    SERVER_EVENT,                   /* the program runs on the events loop */
};

/* What a program's callbacks learn about the service master started it for. */
struct server_ctx {
    const char *service;            /* master.cf column 1, e.g. "smtp" or "127.0.0.1:2525" */
    const char *type;               /* "inet", "unix", "fifo" */
    char **argv;                    /* the command's own arguments after the options */
    int argc;
    struct events *events;          /* SERVER_EVENT only, otherwise NULL */
};

struct server_ops {
    enum server_mode mode;
    int stay_root;                  /* keep root after post_init (local delivery) */
    /* As root, before chroot: open keys, bind privileged things. May be NULL. */
    void (*pre_init)(const struct server_ctx *ctx);
    /* After chroot and privilege drop. May be NULL. */
    void (*post_init)(const struct server_ctx *ctx);
    /* SINGLE: serve one accepted connection; the skeleton closes fd afterwards. */
    void (*service)(int fd, const struct server_ctx *ctx);
    /* TRIGGER (and EVENT when set): one request of len bytes (not NUL-terminated). */
    void (*trigger)(const char *buf, size_t len, const struct server_ctx *ctx);
    /* EVENT without trigger: a listening fd is readable; the program accepts. */
    void (*event_accept)(int listen_fd, const struct server_ctx *ctx);
    /* Before a clean exit (max_use, max_idle, master asked). May be NULL. */
    void (*pre_exit)(const struct server_ctx *ctx);
};

/* Runs the program; never returns. */
_Noreturn void server_main(int argc, char **argv, const struct server_ops *ops);

/* Tells master this worker is busy (1) or available (0) again; SINGLE/TRIGGER do this
 * themselves, an EVENT program may use it around long work. */
void server_set_busy(int busy);

/* Applies mail_owner privileges (or the given uid/gid) for real: setgid, initgroups,
 * setuid, and verifies the change cannot be undone. Fatal on any failure. */
void server_drop_privileges(uid_t uid, gid_t gid, const char *user);

/* Opens logging as main.cf says (maillog_file / maillog_format, else syslog under
 * syslog_name); keep_stderr also copies each line to stderr. */
void server_log_open(int keep_stderr);

/* master's pid file, queue_directory/pid/master.pid (a root-owned directory, so no
 * unprivileged process can replace it), and the pid holding its lock (0: none). */
const char *server_pid_path(void);
pid_t server_master_pid(void);

/* Sends a trigger request (e.g. "W") to a unix socket or fifo without blocking;
 * returns 0, or -1 with errno. */
int server_trigger_send(const char *path, int is_fifo, const char *buf, size_t len);

#endif
