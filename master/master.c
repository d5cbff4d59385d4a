/*
 * master.c - the Petrel master supervisor: main().
 *
 * Reads main.cf and master.cf, creates the queue tree, takes the pid-file lock
 * (queue_directory/pid/master.pid, fcntl: one master per queue), opens every
 * service's sockets, then runs the event loop: spawn workers on demand, reap them,
 * reload on SIGHUP, stop on SIGTERM. As root master stays root and workers drop
 * privileges themselves (server.c); started by an ordinary user, everything runs as
 * that user without chroot ("unprivileged mode", logged once).
 * Options: -c config_dir, -d (detach from the terminal's stdio once running; what
 * "petrel start" uses), -v (verbose, passed on to workers).
 * Must never: run two masters on one queue, or let a configuration error be found
 * after the sockets are open. Failure: administrator errors exit 1 with "fatal:".
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "master.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "strbuf.h"

struct events *master_events;
struct mastercf master_cf;
struct master_serv *master_servs;
struct master_proc *master_procs;
int master_stopping;
int master_unprivileged;
int master_status_fd[2] = {-1, -1};

static int master_pid_fd = -1;

static void master_usage(void)
{
    fprintf(stderr, "usage: master [-c config_dir] [-d] [-v]\n");
    exit(1);
}

static void master_read_mastercf(void)
{
    struct strbuf err;
    char *path = xmalloc(strlen(config_dir()) + sizeof("/master.cf"));

    strcpy(path, config_dir());
    strcat(path, "/master.cf");
    strbuf_init(&err, 256, 65536);
    if (mastercf_parse(path, &master_cf, &err) < 0) {
        strbuf_truncate(&err, err.len && err.data[err.len - 1] == '\n' ? err.len - 1 : err.len);
        msg_fatal("%s", err.data);
    }
    strbuf_release(&err);
    free(path);
}

static void master_pid_cleanup(void)
{
    if (master_pid_fd >= 0)
        (void) unlink(server_pid_path());
}

/* Takes the lock that makes this the only master of the queue, and writes our pid. */
static void master_pid_lock(void)
{
    const char *path = server_pid_path();
    struct flock fl;
    char buf[32];
    int fd, len;

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        msg_fatal("open %s: %m", path);
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) < 0) {
        if (errno == EAGAIN || errno == EACCES) {
            pid_t other = server_master_pid();

            msg_fatal("the Petrel mail system is already running (PID: %ld)", (long) other);
        }
        msg_fatal("lock %s: %m", path);
    }
    len = snprintf(buf, sizeof(buf), "%10ld\n", (long) getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t) len) != len)
        msg_fatal("write %s: %m", path);
    master_pid_fd = fd;                 /* stays open: closing any fd drops the lock */
    msg_set_cleanup(master_pid_cleanup);
}

static void master_detach(void)
{
    int fd = open("/dev/null", O_RDWR);

    if (fd < 0)
        msg_fatal("open /dev/null: %m");
    if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        msg_fatal("dup2: %m");
    if (fd > 2)
        close(fd);
}

int main(int argc, char **argv)
{
    int ch, detach = 0;

    msg_init("master");
    umask(022);
    while ((ch = getopt(argc, argv, "c:dv")) != -1) {
        switch (ch) {
        case 'c':
            config_set_dir(optarg);
            break;
        case 'd':
            detach = 1;
            break;
        case 'v':
            msg_verbose++;
            break;
        default:
            master_usage();
        }
    }
    if (optind != argc)
        master_usage();
    config_load();
    master_read_mastercf();
    server_log_open(1);
    master_unprivileged = geteuid() != 0;
    if (master_unprivileged) {
        struct passwd *pw = getpwuid(getuid());

        msg_warn("running in unprivileged mode as user %s: no chroot, all processes "
                 "run as that user", pw ? pw->pw_name : "(unknown)");
    }
    master_dirs_create();
    if (chdir(var_queue_directory) < 0)
        msg_fatal("chdir %s: %m", var_queue_directory);
    master_pid_lock();
    if ((master_events = events_new()) == NULL)
        msg_fatal("events_new: %m");
    master_sig_init();
    master_spawn_init();
    master_serv_open_all();
    msg_info("daemon started -- version %s, configuration %s", var_mail_version, config_dir());
    /* From here on the log is the only channel: release the starter's terminal. */
    if (detach)
        master_detach();
    msg_use_stderr(!detach && !(var_maillog_file && *var_maillog_file));
    events_run(master_events);
    master_exit(0);
}
