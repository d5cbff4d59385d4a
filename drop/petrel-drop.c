/*
 * petrel-drop - the set-group-ID (setgid_group) helper that files a local
 * submission in queue_directory/maildrop, so that sendmail works for every
 * user and while the mail system is stopped (Postfix's postdrop).
 *
 * SUMMARY
 *	petrel-drop [-c config_dir] [-v] < stream
 *
 * DESCRIPTION
 *	Standard input is a queue-file-format stream (util/qfile.h). It is copied,
 *	bounded by message_size_limit plus envelope slack, into a new file
 *	maildrop/QUEUEID (O_EXCL, mode 0600 while written), checked completely
 *	with the queue file reader, made ready (mode 0444), fsynced with its
 *	directory, and only then is the queue ID printed on standard output. The
 *	file belongs to the invoking user: pickup takes the submitter's identity
 *	from the file owner, never from the stream. Then pickup is poked through
 *	public/pickup; when the mail system is down it finds the file later.
 *
 * SECURITY
 *	The program is set-gid: it trusts neither its environment (cleared before
 *	anything else), nor its arguments (a non-default configuration directory
 *	is accepted only from root, when nothing is set-gid, or when the directory
 *	and its main.cf belong to root and are not writable by others), nor its
 *	input (every record is checked before the file is made ready). Terminal
 *	signals remove the partial file. Nothing is executed, nothing but the one
 *	file in maildrop/ is created.
 *
 * DIAGNOSTICS
 *	Messages on standard error; exit status from sysexits.h: EX_USAGE,
 *	EX_NOPERM (configuration not trusted, maildrop not writable),
 *	EX_UNAVAILABLE (configuration unreadable, no maildrop directory),
 *	EX_DATAERR (malformed or oversized stream, nothing stored),
 *	EX_TEMPFAIL (I/O error, timeout, signal; nothing stored).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "msg.h"
#include "params.h"
#include "qfile.h"
#include "queue_path.h"
#include "safe_file.h"
#include "server.h"
#include "strbuf.h"
#include "user_acl.h"
#include "setgid_sanitizer.h"

#define DROP_ENVELOPE_SLACK     (8LL * 1024 * 1024)     /* recipients and attributes */
#define DROP_READ_TIMEOUT_MS    (300 * 1000)            /* per read from a pipe or tty */
#define DROP_ATTR_NAME_MAX      64

/* The file being written, for removal on a signal or a fatal error. */
static int drop_qfd = -1;
static char drop_path[sizeof("maildrop/") + QID_BUFSIZE];

static void drop_remove(void)
{
    if (drop_path[0] && drop_qfd >= 0)
        (void) unlinkat(drop_qfd, drop_path, 0);
}

static void drop_signal(int sig)
{
    (void) sig;
    drop_remove();
    _exit(EX_TEMPFAIL);
}

static _Noreturn void drop_fail(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static _Noreturn void drop_fail(int status, const char *fmt, ...)
{
    va_list ap;
    int saved_errno = errno;

    drop_remove();
    errno = saved_errno;
    va_start(ap, fmt);
    msg_vlog(MSG_FATAL, fmt, ap);
    va_end(ap);
    exit(status);
}

/* Descriptors 0-2 must exist, or a file we open could become "standard error". */
static void drop_sanitize_process(void)
{
    static const int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    struct sigaction sa;
    int fd;
    size_t i;

    for (fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
            _exit(EX_OSERR);
    (void) clearenv();
    (void) umask(077);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    (void) sigaction(SIGPIPE, &sa, NULL);
    (void) sigaction(SIGXFSZ, &sa, NULL);   /* an over-large file fails with EFBIG */
    sa.sa_handler = drop_signal;
    sigfillset(&sa.sa_mask);
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        (void) sigaction(sigs[i], &sa, NULL);
}

/* A directory or file an administrator made: root's, not writable by others. */
static int drop_root_owned(const char *path, int want_dir)
{
    struct stat st;

    if (lstat(path, &st) < 0 || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return 0;
    return want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

static void drop_check_config_dir(const char *dir)
{
    char path[PATH_MAX];

    /* Without set-gid privileges there is nothing to abuse. */
    if (getuid() == 0 || (getegid() == getgid() && geteuid() == getuid()))
        return;
    if (snprintf(path, sizeof(path), "%s/main.cf", dir) >= (int) sizeof(path))
        drop_fail(EX_USAGE, "-c %s: path too long", dir);
    if (!drop_root_owned(dir, 1) || !drop_root_owned(path, 0))
        drop_fail(EX_NOPERM, "-c %s: a configuration directory other than %s must belong "
                  "to root and not be writable by others, like its main.cf", dir,
                  DEF_CONFIG_DIR);
}

static void drop_load_config(const char *dir)
{
    char path[PATH_MAX];
    int fd;

    if (dir != NULL && strcmp(dir, DEF_CONFIG_DIR) != 0)
        drop_check_config_dir(dir);
    config_set_dir(dir ? dir : DEF_CONFIG_DIR);
    if (snprintf(path, sizeof(path), "%s/main.cf", config_dir()) >= (int) sizeof(path))
        drop_fail(EX_USAGE, "%s: path too long", config_dir());
    /* A set-gid program never runs on built-in guesses: main.cf must be readable. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
        drop_fail(EX_UNAVAILABLE, "cannot read %s: %m", path);
    close(fd);
    config_load();
}

/* Copies standard input into fd, at most limit bytes (0: no limit). */
static void drop_copy(int fd, long long limit)
{
    struct pollfd pfd = {0, POLLIN, 0};
    char buf[65536];
    long long total = 0;
    ssize_t got;
    int n;

    for (;;) {
        if ((n = poll(&pfd, 1, DROP_READ_TIMEOUT_MS)) < 0 && errno != EINTR)
            drop_fail(EX_TEMPFAIL, "poll standard input: %m");
        if (n == 0)
            drop_fail(EX_TEMPFAIL, "timeout reading standard input");
        if (n < 0)
            continue;
        if ((got = read(0, buf, sizeof(buf))) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            drop_fail(EX_TEMPFAIL, "read standard input: %m");
        }
        if (got == 0)
            return;
        total += got;
        if (limit > 0 && total > limit)
            drop_fail(EX_DATAERR, "submission larger than message_size_limit (%lld bytes) "
                      "allows", var_message_size_limit);
        if (safe_file_write_all(fd, buf, (size_t) got) < 0)
            drop_fail(EX_TEMPFAIL, "write %s: %m", drop_path);
    }
}

/* Addresses and attributes reach logs and headers: no control characters. */
static int drop_text_ok(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int drop_attr_ok(const char *s, size_t len)
{
    size_t n = strcspn(s, "=");

    if (n == 0 || n > DROP_ATTR_NAME_MAX || n >= len)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n && drop_text_ok(s, len);
}

/* Reads the whole stream back with the queue file reader; any fault is fatal. */
static void drop_validate(int fd)
{
    struct strbuf why;
    struct qfile_reader *r;
    struct qfile_record rec;
    int status;

    strbuf_init(&why, 128, 4096);
    if ((r = qfile_reader_fdopen(fd, &why)) == NULL)
        drop_fail(EX_DATAERR, "%s", why.data);
    if (var_message_size_limit > 0
        && qfile_content_length(r) > (unsigned long long) var_message_size_limit)
        drop_fail(EX_DATAERR, "message size %llu exceeds message_size_limit %lld",
                  (unsigned long long) qfile_content_length(r), var_message_size_limit);
    while ((status = qfile_next(r, &rec)) > 0) {
        switch (rec.type) {
        case QREC_SENDER:
        case QREC_RCPT:
        case QREC_ORCPT:
            if (!drop_text_ok(rec.data, rec.len))
                drop_fail(EX_DATAERR, "control character in an address");
            break;
        case QREC_ATTR:
            if (!drop_attr_ok(rec.data, rec.len))
                drop_fail(EX_DATAERR, "malformed attribute record");
            break;
        case QREC_DONE:
            drop_fail(EX_DATAERR, "a submission has no finished recipients");
        }
    }
    if (status < 0)
        drop_fail(EX_DATAERR, "malformed submission: %s", qfile_reason(r));
    qfile_close(&r);
    strbuf_release(&why);
}

static void drop_poke_pickup(void)
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof(path), "%s/public/pickup", var_queue_directory)
        >= (int) sizeof(path))
        return;
    /* The mail system may be down, or pickup a fifo: either way pickup scans later. */
    if (server_trigger_send(path, 0, "W", 1) < 0)
        (void) server_trigger_send(path, 1, "W", 1);
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    char qid[QID_BUFSIZE];
    int ch, fd;

    drop_sanitize_process();
    msg_init("petrel-drop");
    while ((ch = getopt(argc, argv, "c:v")) != -1) {
        switch (ch) {
        case 'c':
            dir = optarg;
            break;
        case 'v':
            msg_verbose++;
            break;
        default:
            drop_fail(EX_USAGE, "usage: petrel-drop [-c config_dir] [-v] < submission");
        }
    }
    if (optind != argc)
        drop_fail(EX_USAGE, "usage: petrel-drop [-c config_dir] [-v] < submission");
    drop_load_config(dir);
    {
        struct strbuf who;

        strbuf_init(&who, 64, 4096);
        if (!user_acl_allows("authorized_submit_users", var_authorized_submit_users, getuid(),
                             &who))
            drop_fail(EX_NOPERM, "User %s(%ld) is not allowed to submit mail", who.data,
                      (long) getuid());
        strbuf_release(&who);
    }
    msg_set_cleanup(drop_remove);

    if ((drop_qfd = open(var_queue_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        drop_fail(errno == ENOENT ? EX_UNAVAILABLE : EX_NOPERM, "open %s: %m",
                  var_queue_directory);
    if ((fd = queue_path_create(drop_qfd, "maildrop", 0, 0600, qid)) < 0)
        drop_fail(errno == ENOENT ? EX_UNAVAILABLE : errno == EACCES ? EX_NOPERM : EX_TEMPFAIL,
                  "create a file in %s/maildrop: %m%s", var_queue_directory,
                  errno == ENOENT ? " (the mail system creates it when it starts)" : "");
    snprintf(drop_path, sizeof(drop_path), "maildrop/%s", qid);

    drop_copy(fd, var_message_size_limit > 0 ? var_message_size_limit + DROP_ENVELOPE_SLACK
              : 0);
    drop_validate(fd);
    /* Ready mode first, then one fsync makes contents and mode durable together. */
    if (fchmod(fd, 0444) < 0 || safe_file_sync(fd) < 0)
        drop_fail(EX_TEMPFAIL, "sync %s: %m", drop_path);
    /*
     * The directory entry: maildrop is 1730, so an ordinary user (even with our
     * group) cannot open it to fsync it; syncfs makes the same guarantee.
     */
    if (safe_file_sync_dir(drop_qfd, "maildrop") < 0
        && (errno != EACCES || syncfs(fd) < 0))
        drop_fail(EX_TEMPFAIL, "sync %s/maildrop: %m", var_queue_directory);
    if (close(fd) < 0)
        drop_fail(EX_TEMPFAIL, "close %s: %m", drop_path);
    drop_path[0] = 0;           /* from here on the file is the mail system's */
    if (printf("%s\n", qid) < 0 || fflush(stdout) != 0)
        msg_warn("cannot print the queue ID %s: %m", qid);
    drop_poke_pickup();
    return 0;
}
