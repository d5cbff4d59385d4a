/*
 * include.c - ":include:/file" destinations (Postfix's local/include.c), and
 * reading .forward and :include: files with the rights of whoever the file
 * is read for.
 *
 * The file is opened in a child that has those rights (privs.c), without
 * following a symlink, and must be a regular file with one link that is not
 * world-writable. Its destinations are delivered with the rights of the file
 * owner when the alias had no particular owner (root-owned alias database),
 * so an include file owner never gains the rights of default_privs; members
 * are re-injected as new mail with the include file as their owner.
 * Never reads more than INCLUDE_FILE_MAX bytes or nests past
 * LOCAL_NEST_LIMIT. Failure: a bad or unreadable file bounces 5.3.5
 * "mail system configuration error" with the reason in the log, as Postfix.
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

#include "local.h"
#include "msg.h"
#include "safe_file.h"
#include "strbuf.h"

struct include_read {
    const char *path;
};

/* Child: "O uid mode\n" and the contents, "N\n" for no such file, "E why". */
static int include_read_child(void *arg, int fd)
{
    struct include_read *r = arg;
    struct strbuf why, out;
    struct stat sb;
    int f;

    strbuf_init(&why, 128, STRBUF_UNLIMITED);
    strbuf_init(&out, 4096, STRBUF_UNLIMITED);
    f = safe_file_open(AT_FDCWD, r->path, O_RDONLY, SAFE_FILE_ANY_OWNER, &sb, &why);
    if (f < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            strbuf_puts(&out, "N\n");
        else
            strbuf_printf(&out, "E %s", why.data);
    } else {
        strbuf_printf(&out, "O %ld %lo\n", (long) sb.st_uid, (unsigned long) sb.st_mode);
        if (safe_file_read_fd(f, INCLUDE_FILE_MAX, &out) < 0) {
            strbuf_reset(&out);
            strbuf_printf(&out, "E read %s: %s", r->path,
                          errno == EFBIG ? "file too large" : strerror(errno));
        }
        close(f);
    }
    (void) safe_file_write_all(fd, out.data, out.len);
    return 0;
}

int include_read_as(const struct local_user *as, const char *path, struct strbuf *content,
                    uid_t *owner, mode_t *mode, struct strbuf *why)
{
    struct include_read r = {path};
    struct strbuf out;
    char *nl, *end;
    long uid;
    unsigned long m;
    int rc = -1;

    strbuf_init(&out, 4096, STRBUF_UNLIMITED);
    if (privs_run(as, include_read_child, &r, INCLUDE_FILE_MAX + 64, 60, &out, why) != 0) {
        if (why->len == 0)
            strbuf_printf(why, "cannot read %s", path);
    } else if (out.len >= 2 && out.data[0] == 'N') {
        rc = 0;
    } else if (out.len >= 2 && out.data[0] == 'E') {
        strbuf_set(why, out.data + 2);
    } else if (out.len >= 2 && out.data[0] == 'O' && (nl = memchr(out.data, '\n', out.len))
               && (uid = strtol(out.data + 2, &end, 10)) >= 0 && *end == ' '
               && (m = strtoul(end + 1, &end, 8), end == nl)) {
        *owner = (uid_t) uid;
        *mode = (mode_t) m;
        strbuf_reset(content);
        strbuf_append(content, nl + 1, out.len - (size_t) (nl + 1 - out.data));
        rc = 1;
    } else {
        strbuf_printf(why, "cannot read %s: no answer from the reading process", path);
    }
    strbuf_release(&out);
    return rc;
}

void include_deliver(struct local_state st, const struct local_user *as, const char *path)
{
    struct strbuf content, why, names, key;
    struct local_user file_as = *as;
    uid_t owner;
    mode_t mode;
    int rc;

    st.level++;
    if (st.level > LOCAL_NEST_LIMIT) {
        msg_warn("%s: :include: nesting limit exceeded for %s", st.rq->req->queue_id, path);
        local_result(&st, DELIVER_BOUNCE, "5.4.6", ":include: nesting limit exceeded");
        return;
    }
    strbuf_init(&key, 64, STRBUF_UNLIMITED);
    strbuf_printf(&key, "%ld %s", (long) as->uid, path);
    rc = local_dup_seen(st.rq, "include", key.data);
    strbuf_release(&key);
    if (rc)
        return;
    st.exp_from = st.local;
    if (*path != '/') {
        msg_warn("%s: :include:%s uses a relative path", st.rq->req->queue_id, path);
        local_result(&st, DELIVER_BOUNCE, "5.3.5", "mail system configuration error");
        return;
    }
    strbuf_init(&content, 4096, STRBUF_UNLIMITED);
    strbuf_init(&why, 128, STRBUF_UNLIMITED);
    strbuf_init(&names, 64, STRBUF_UNLIMITED);
    /* Root-owned aliases read their include files as root, as Postfix does. */
    rc = include_read_as(as->uid == 0 && local_is_root() ? NULL : as, path, &content, &owner,
                         &mode, &why);
    if (rc <= 0) {
        msg_warn("%s: cannot open include file %s: %s", st.rq->req->queue_id, path,
                 rc == 0 ? "No such file or directory" : why.data);
        local_result(&st, DELIVER_BOUNCE, "5.3.5", "mail system configuration error");
        goto out;
    }
    if (mode & S_IWOTH) {
        msg_warn("%s: :include: file %s is world writable", st.rq->req->queue_id, path);
        local_result(&st, DELIVER_BOUNCE, "5.3.5", "mail system configuration error");
        goto out;
    }
    st.exp_type = LOCAL_EXP_INCLUDE;
    if (as->uid == 0 && owner != 0 && local_is_root()) {
        struct passwd *pw = getpwuid(owner);

        if (pw == NULL) {
            msg_warn("%s: cannot find username for uid %ld, the owner of :include: file %s",
                     st.rq->req->queue_id, (long) owner, path);
            local_result(&st, DELIVER_DEFER, "4.3.5", "mail system configuration error");
            goto out;
        }
        strbuf_append(&names, pw->pw_name, strlen(pw->pw_name) + 1);
        strbuf_append(&names, pw->pw_dir, strlen(pw->pw_dir) + 1);
        strbuf_append(&names, pw->pw_shell, strlen(pw->pw_shell) + 1);
        file_as.uid = pw->pw_uid;
        file_as.gid = pw->pw_gid;
        file_as.logname = names.data;
        file_as.home = names.data + strlen(pw->pw_name) + 1;
        file_as.shell = file_as.home + strlen(pw->pw_dir) + 1;
    }
    if (st.owner == NULL)
        st.owner = st.address;
    if ((recipient_prop_mask() & RECIPIENT_PROP_INCLUDE) == 0)
        st.unmatched = NULL;
    token_deliver_file(st, &file_as, path, content.data, content.len);
  out:
    strbuf_release(&content);
    strbuf_release(&why);
    strbuf_release(&names);
}
