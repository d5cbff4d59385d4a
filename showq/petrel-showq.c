/*
 * petrel-showq - the set-group-ID (setgid_group) helper that lets any user
 * see the queue listing (Postfix's postqueue -p / -j).
 *
 * SUMMARY
 *	petrel-showq [-c config_dir] [-j] [-f name=value]...
 *
 * DESCRIPTION
 *	Connects to public/showq (reachable only with setgid_group) and copies
 *	the listing the showq service sends to standard output: the classic
 *	mailq layout, or with -j one JSON object per message. Each -f passes one
 *	filter (from, to, queue, older-than, reason, id; see petrel-queue(1)).
 *
 * SECURITY
 *	The program is set-gid; the group opens nothing but the public/
 *	directory. It clears its environment first, accepts a configuration
 *	directory other than the default only from root, when nothing is
 *	set-gid, or when the directory and its main.cf belong to root and are not
 *	writable by others (the petrel-drop rule), never opens a queue file and
 *	never writes anywhere but standard output. The service decides what is
 *	shown.
 *
 * DIAGNOSTICS
 *	Messages on standard error; exit status from sysexits.h: EX_USAGE,
 *	EX_NOPERM (configuration not trusted), EX_UNAVAILABLE (the mail system
 *	is not running: no showq service), EX_TEMPFAIL (the service failed).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "showq_client.h"
#include "strbuf.h"
#include "user_acl.h"
#include "setgid_sanitizer.h"

#define PETREL_SHOWQ_TIMEOUT_MS (60 * 1000)

static int showq_root_owned(const char *path, int want_dir)
{
    struct stat st;

    if (lstat(path, &st) < 0 || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return 0;
    return want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

static void showq_load_config(const char *dir)
{
    char path[PATH_MAX];
    int fd;

    if (dir != NULL && strcmp(dir, DEF_CONFIG_DIR) != 0 && getuid() != 0
        && (getegid() != getgid() || geteuid() != getuid())) {
        if (snprintf(path, sizeof(path), "%s/main.cf", dir) >= (int) sizeof(path))
            msg_fatal_status(EX_USAGE, "-c %s: path too long", dir);
        if (!showq_root_owned(dir, 1) || !showq_root_owned(path, 0))
            msg_fatal_status(EX_NOPERM, "-c %s: a configuration directory other than %s must"
                             " belong to root and not be writable by others, like its main.cf",
                             dir, DEF_CONFIG_DIR);
    }
    config_set_dir(dir ? dir : DEF_CONFIG_DIR);
    if (snprintf(path, sizeof(path), "%s/main.cf", config_dir()) >= (int) sizeof(path))
        msg_fatal_status(EX_USAGE, "%s: path too long", config_dir());
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
        msg_fatal_status(EX_UNAVAILABLE, "cannot read %s: %m", path);
    close(fd);
    config_load();
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    char **filters;
    size_t nfilters = 0;
    struct strbuf why;
    int ch, json = 0, fd;

    for (fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
            _exit(EX_OSERR);
    (void) clearenv();
    (void) umask(077);
    signal(SIGPIPE, SIG_IGN);
    msg_init("petrel-showq");
    filters = calloc((size_t) argc + 1, sizeof(*filters));
    if (filters == NULL)
        msg_fatal_status(EX_OSERR, "out of memory");
    while ((ch = getopt(argc, argv, "c:f:jv")) != -1) {
        switch (ch) {
        case 'c':
            dir = optarg;
            break;
        case 'f':
            if (strlen(optarg) > SHOWQ_FILTER_MAX || nfilters >= SHOWQ_MAX_FILTERS)
                msg_fatal_status(EX_USAGE, "too many or too long filters");
            filters[nfilters++] = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'v':
            msg_verbose++;
            break;
        default:
            msg_fatal_status(EX_USAGE, "usage: petrel-showq [-c config_dir] [-j] "
                             "[-f name=value]...");
        }
    }
    if (optind != argc)
        msg_fatal_status(EX_USAGE, "usage: petrel-showq [-c config_dir] [-j] [-f name=value]...");
    showq_load_config(dir);
    strbuf_init(&why, 128, 4096);
    if (!user_acl_is_admin(getuid())
        && !user_acl_allows("authorized_mailq_users", var_authorized_mailq_users, getuid(), &why))
        msg_fatal_status(EX_NOPERM, "User %s(%ld) is not allowed to view the mail queue",
                         why.data, (long) getuid());
    if (showq_client_list(NULL, json, filters, nfilters, 1, PETREL_SHOWQ_TIMEOUT_MS, &why) < 0) {
        int err = errno;

        msg_error("%s%s", why.data, err == ENOENT || err == ECONNREFUSED
                  ? " (is the mail system running?)" : "");
        return err == ENOENT || err == ECONNREFUSED ? EX_UNAVAILABLE
            : err == EACCES ? EX_NOPERM : EX_TEMPFAIL;
    }
    free(filters);
    strbuf_release(&why);
    return 0;
}
