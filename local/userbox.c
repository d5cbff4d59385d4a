/*
 * userbox.c - delivery to a local user's mailbox (Postfix's local/mailbox.c):
 * mailbox_transport(_maps) hands the recipient to another transport,
 * mailbox_command(_maps) pipes it to a command with the user's rights,
 * otherwise home_mailbox (relative to the home directory) or
 * mail_spool_directory/USER is written, as a Maildir when the name ends in
 * "/", else as an mbox file, with Return-Path:, X-Original-To: and
 * Delivered-To: put first, within mailbox_size_limit.
 *
 * Also the one place that writes a mailbox or a file in a child with a
 * user's rights (userbox_write_as), for file.c as well.
 *
 * Never: writes as root (the child takes the user's uid before opening
 * anything; only a missing mail_spool_directory mailbox is created by root,
 * O_EXCL without following links, and given to the user at once), or
 * delivers one user's mailbox twice for one recipient.
 * Failure: the writer's deferral or bounce (e.g. 5.2.2 mailbox full), or a
 * deferral when the child could not run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dict.h"
#include "local.h"
#include "mailbox.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "strbuf.h"

struct userbox_job {
    const char *path;
    const struct deliver_request *req;
    const char *prepend;
    off_t limit;
    int spool;                  /* in mail_spool_directory */
};

/* mailbox_delivery_lock without "dotlock": in a spool directory the user may
 * not write to, a dot-lock cannot be made and fcntl is what protects the
 * mailbox (Postfix lets the dot-lock fail there, too). */
static void userbox_spool_locks(const char *locks, struct strbuf *out)
{
    const char *p = locks;

    while (*p) {
        size_t n;

        p += strspn(p, ", \t");
        n = strcspn(p, ", \t");
        if (n > 0 && !(n == 7 && strncmp(p, "dotlock", 7) == 0)) {
            if (out->len)
                strbuf_puts(out, ", ");
            strbuf_append(out, p, n);
        }
        p += n;
    }
}

static int userbox_child(void *arg, int fd)
{
    struct userbox_job *j = arg;
    enum deliver_status status;
    struct strbuf why, locks;
    char dsn[8] = "4.3.0", *dir, *slash;

    strbuf_init(&why, 128, STRBUF_UNLIMITED);
    strbuf_init(&locks, 64, STRBUF_UNLIMITED);
    strbuf_puts(&locks, var_mailbox_delivery_lock);
    if (j->spool) {
        dir = strdupa(j->path);
        if ((slash = strrchr(dir, '/')) != NULL && slash > dir) {
            *slash = 0;
            if (access(dir, W_OK) < 0) {
                strbuf_reset(&locks);
                userbox_spool_locks(var_mailbox_delivery_lock, &locks);
            }
        }
    }
    if (mailbox_path_is_maildir(j->path))
        status = mailbox_maildir_deliver(j->path, j->req, j->prepend, j->limit, dsn, &why);
    else
        status = mailbox_mbox_deliver(j->path, j->req, j->prepend, locks.data, j->limit, dsn,
                                      &why);
    (void) privs_put_outcome(fd, status, dsn, why.data);
    strbuf_release(&why);
    strbuf_release(&locks);
    return 0;
}

static enum deliver_status userbox_write(const struct local_state *st,
                                         const struct local_user *as, const char *path,
                                         const char *prepend, off_t limit, int spool,
                                         char dsn[8], struct strbuf *text)
{
    struct userbox_job job = {path, st->rq->req, prepend, limit, spool};
    struct strbuf out, why;
    enum deliver_status status = DELIVER_DEFER;
    int rc;

    strbuf_init(&out, 256, STRBUF_UNLIMITED);
    strbuf_init(&why, 128, STRBUF_UNLIMITED);
    rc = privs_run(as, userbox_child, &job, LOCAL_TEXT_MAX + 16, (int) var_command_time_limit,
                   &out, &why);
    if (rc != 0 || privs_get_outcome(&out, &status, dsn, text) < 0) {
        status = DELIVER_DEFER;
        snprintf(dsn, 8, "4.3.0");
        strbuf_reset(text);
        strbuf_printf(text, "cannot deliver to %s: %s", path,
                      why.len ? why.data : "no answer from the delivery process");
    }
    strbuf_release(&out);
    strbuf_release(&why);
    return status;
}

enum deliver_status userbox_write_as(const struct local_state *st, const struct local_user *as,
                                     const char *path, const char *prepend, off_t limit,
                                     char dsn[8], struct strbuf *text)
{
    return userbox_write(st, as, path, prepend, limit, 0, dsn, text);
}

/* A missing spool mailbox: root creates it for the user, never following a
 * link and never taking an existing name (mail_spool_directory is usually
 * writable by root or group mail only). */
static void userbox_spool_create(const char *path, const struct passwd *pw)
{
    int fd;

    if (!local_is_root())
        return;
    if (mailbox_path_is_maildir(path)) {
        if (mkdir(path, 0700) < 0)
            return;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } else {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return;
    if (fchown(fd, pw->pw_uid, pw->pw_gid) < 0)
        msg_warn("chown %s: %m", path);
    close(fd);
}

/* The per-user value of a _maps parameter, else the parameter itself. */
static const char *userbox_param(const char *maps_name, const char *maps, struct dict_list **lp,
                                 const char *user, const char *dflt, int *failed)
{
    struct strbuf err;
    const char *v;

    *failed = 0;
    if (*maps) {
        if (*lp == NULL) {
            strbuf_init(&err, 128, STRBUF_UNLIMITED);
            if ((*lp = dict_list_open(maps, DICT_FLAG_FOLD_KEY, &err)) == NULL)
                msg_fatal("%s: %s", maps_name, err.data);
            strbuf_release(&err);
        }
        if ((v = dict_list_get(*lp, user)) != NULL)
            return v;
        if (dict_list_error(*lp) != DICT_ERR_NONE) {
            *failed = 1;
            return NULL;
        }
    }
    return *dflt ? dflt : NULL;
}

int userbox_deliver(struct local_state st, const struct passwd *pw)
{
    static struct dict_list *transport_maps, *command_maps;
    struct local_user user;
    struct strbuf path, prepend, text;
    enum deliver_status status;
    const char *v;
    char dsn[8];
    int failed;

    if (pw == NULL)
        return 0;
    if (local_dup_seen(st.rq, "mailbox", st.user))
        return 1;
    privs_user_from_passwd(&user, pw);
    v = userbox_param("mailbox_transport_maps", var_mailbox_transport_maps, &transport_maps,
                      st.user, var_mailbox_transport, &failed);
    if (failed) {
        local_result(&st, DELIVER_DEFER, "4.3.0", "mailbox_transport_maps lookup failure");
        return 1;
    }
    if (v) {
        if (LOCAL_VERIFY(&st))
            local_result(&st, DELIVER_SENT, "2.0.0", "delivers via %s", v);
        else
            local_pass(st, v);
        return 1;
    }
    v = userbox_param("mailbox_command_maps", var_mailbox_command_maps, &command_maps,
                      st.user, var_mailbox_command, &failed);
    if (failed) {
        local_result(&st, DELIVER_DEFER, "4.3.0", "mailbox_command_maps lookup failure");
        return 1;
    }
    if (v) {
        if (LOCAL_VERIFY(&st))
            local_result(&st, DELIVER_SENT, "2.0.0", "delivers to command: %s", v);
        else
            command_deliver(st, &user, v);
        return 1;
    }
    strbuf_init(&path, 128, STRBUF_UNLIMITED);
    strbuf_init(&prepend, 256, STRBUF_UNLIMITED);
    strbuf_init(&text, 128, STRBUF_UNLIMITED);
    if (*var_home_mailbox) {
        strbuf_printf(&path, "%s/%s", strcmp(pw->pw_dir, "/") ? pw->pw_dir : "",
                      var_home_mailbox);
    } else {
        size_t n = strlen(var_mail_spool_directory);

        while (n > 1 && var_mail_spool_directory[n - 1] == '/')
            n--;
        strbuf_printf(&path, "%.*s/%s%s", (int) n, var_mail_spool_directory, st.user,
                      mailbox_path_is_maildir(var_mail_spool_directory) ? "/" : "");
    }
    if (LOCAL_VERIFY(&st)) {
        local_result(&st, DELIVER_SENT, "2.0.0", "delivers to %s", path.data);
        goto out;
    }
    if (*var_home_mailbox == 0)
        userbox_spool_create(path.data, pw);
    local_prepend(&st, 1, 1, &prepend);
    status = userbox_write(&st, &user, path.data, prepend.data, (off_t) var_mailbox_size_limit,
                           *var_home_mailbox == 0, dsn, &text);
    local_result(&st, status, dsn, "%s", text.data);
  out:
    strbuf_release(&path);
    strbuf_release(&prepend);
    strbuf_release(&text);
    return 1;
}
