/*
 * master_dirs.c - creates the queue directory tree and data_directory at start.
 * Missing directories are made with Postfix's owners and modes; existing ones are
 * left as the administrator made them (a wrong owner is reported, not "fixed",
 * because chown on a path an unprivileged user controls is a classic race).
 * Must never follow a symlink when setting ownership. Failure: msg_fatal naming the path.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "master.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "strbuf.h"

enum dir_owner { OWNER_ROOT, OWNER_MAIL };

static const struct master_dir {
    const char *name;
    enum dir_owner owner;
    int setgid_group;               /* group is setgid_group (the submission helper's) */
    mode_t mode;
} master_dirs[] = {
    {"incoming", OWNER_MAIL, 0, 0700},
    {"active", OWNER_MAIL, 0, 0700},
    {"deferred", OWNER_MAIL, 0, 0700},
    {"hold", OWNER_MAIL, 0, 0700},
    {"corrupt", OWNER_MAIL, 0, 0700},
    {"bounce", OWNER_MAIL, 0, 0700},
    {"defer", OWNER_MAIL, 0, 0700},
    {"trace", OWNER_MAIL, 0, 0700},
    {"flush", OWNER_MAIL, 0, 0700},
    {"saved", OWNER_MAIL, 0, 0700},
    {"private", OWNER_MAIL, 0, 0700},
    {"maildrop", OWNER_MAIL, 1, 01730},
    {"public", OWNER_MAIL, 1, 0710},
    {"pid", OWNER_ROOT, 0, 0755},
};

void master_owner_ids(uid_t *uid, gid_t *gid, gid_t *setgid_gid)
{
    struct passwd *pw;
    struct group *gr;

    if (master_unprivileged) {
        *uid = getuid();
        *gid = *setgid_gid = getgid();
        return;
    }
    if ((pw = getpwnam(var_mail_owner)) == NULL)
        msg_fatal("mail_owner %s: no such user (create it, or set mail_owner in main.cf)",
                  var_mail_owner);
    if ((gr = getgrnam(var_setgid_group)) == NULL)
        msg_fatal("setgid_group %s: no such group (create it, or set setgid_group in main.cf)",
                  var_setgid_group);
    if (pw->pw_uid == 0)
        msg_fatal("mail_owner %s must not be a privileged account", var_mail_owner);
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    *setgid_gid = gr->gr_gid;
}

/* mkdir -p for the parents of an absolute path; the last component gets mode. */
static void master_mkdir_p(const char *path, mode_t mode)
{
    char *copy = xstrdup(path), *p;

    for (p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) < 0 && errno != EEXIST)
            msg_fatal("mkdir %s: %m", copy);
        *p = '/';
    }
    if (mkdir(copy, mode) < 0 && errno != EEXIST)
        msg_fatal("mkdir %s: %m", copy);
    free(copy);
}

/* Makes dir (relative to dirfd) when missing and gives it owner, group and mode. */
static void master_make_dir(int dirfd, const char *label, const char *name, uid_t uid,
                            gid_t gid, mode_t mode)
{
    struct stat st;

    if (mkdirat(dirfd, name, 0700) < 0) {
        if (errno != EEXIST)
            msg_fatal("mkdir %s/%s: %m", label, name);
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            msg_fatal("stat %s/%s: %m", label, name);
        if (!S_ISDIR(st.st_mode))
            msg_fatal("%s/%s is not a directory", label, name);
        if (!master_unprivileged && st.st_uid != uid)
            msg_warn("%s/%s: owner is uid %ld, expected %ld", label, name,
                     (long) st.st_uid, (long) uid);
        return;
    }
    if (!master_unprivileged && fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
        msg_fatal("chown %s/%s: %m", label, name);
    /* mkdir's mode is cut by umask and cannot carry the sticky bit: set it explicitly. */
    if (fchmodat(dirfd, name, mode, 0) < 0)
        msg_fatal("chmod %s/%s: %m", label, name);
}

void master_dirs_create(void)
{
    uid_t uid;
    gid_t gid, sgid;
    size_t i;
    int qfd;

    master_owner_ids(&uid, &gid, &sgid);
    master_mkdir_p(var_queue_directory, 0755);
    master_mkdir_p(var_data_directory, 0700);
    qfd = open(var_queue_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (qfd < 0)
        msg_fatal("open %s: %m", var_queue_directory);
    for (i = 0; i < sizeof(master_dirs) / sizeof(master_dirs[0]); i++) {
        const struct master_dir *d = master_dirs + i;
        uid_t u = d->owner == OWNER_MAIL ? uid : geteuid();
        gid_t g = d->setgid_group ? sgid : (d->owner == OWNER_MAIL ? gid : getegid());

        master_make_dir(qfd, var_queue_directory, d->name, u, g, d->mode);
    }
    close(qfd);
    /* data_directory holds state the workers write (caches, locks): mail_owner's. */
    if (!master_unprivileged) {
        struct stat st;

        if (lstat(var_data_directory, &st) == 0 && st.st_uid == geteuid()
            && st.st_uid != uid && lchown(var_data_directory, uid, gid) < 0)
            msg_fatal("chown %s: %m", var_data_directory);
    }
}
