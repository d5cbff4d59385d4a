/*
 * dotforward.c - a user's .forward file (Postfix's local/dotforward.c): the
 * first file of forward_path that exists is read with the user's rights and
 * its destinations are delivered with the user's rights.
 *
 * The file must be a regular file with one link, owned by the user or root,
 * and writable by nobody else (not group- or world-writable); a file that
 * fails these checks is logged and ignored, so the mail goes to the mailbox.
 * A user who lists herself ("joe" or "\joe") gets a copy in her mailbox; an
 * empty file also means the mailbox. Other local users named in a .forward
 * are re-injected as new mail with the user as owner.
 * Never: follows a symlink, reads more than INCLUDE_FILE_MAX bytes, or
 * reads a .forward twice for one recipient.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cleanup_client.h"
#include "local.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "strbuf.h"

int dotforward_deliver(struct local_state st, const struct local_user *as,
                       const struct passwd *pw)
{
    struct local_user user;
    struct strbuf path, content, why;
    char *paths, *save = NULL, *entry;
    uid_t owner = 0;
    mode_t mode = 0;
    int found = 0, flags = 0, count;

    (void) as;                          /* a .forward carries its user's rights */
    if (*var_forward_path == 0 || pw == NULL)
        return 0;
    st.level++;
    privs_user_from_passwd(&user, pw);
    st.exp_type = LOCAL_EXP_FORWARD;
    /* Local users named in the file are new mail owned by this user. */
    st.owner = st.user;

    strbuf_init(&path, 128, 4096);
    strbuf_init(&content, 4096, STRBUF_UNLIMITED);
    strbuf_init(&why, 128, STRBUF_UNLIMITED);
    paths = xstrdup(var_forward_path);
    for (entry = strtok_r(paths, ", \t\r\n", &save); entry; entry = strtok_r(NULL, ", \t\r\n", &save)) {
        int rc;

        if ((flags = expand_local(entry, &st, &user, var_command_expansion_filter, &path)) < 0)
            continue;
        strbuf_reset(&why);
        rc = include_read_as(&user, path.data, &content, &owner, &mode, &why);
        if (rc == 0)
            continue;
        if (rc < 0) {
            msg_warn("%s: %s", st.rq->req->queue_id, why.data);
            goto out;                   /* present but unusable: the mailbox */
        }
        found = 1;
        break;
    }
    if (!found)
        goto out;
    if ((flags & EXPAND_EXTENSION_USED) || (recipient_prop_mask() & RECIPIENT_PROP_FORWARD) == 0)
        st.unmatched = NULL;
    if (LOCAL_VERIFY(&st)) {
        local_result(&st, DELIVER_SENT, "2.0.0", "forward via file: %s", path.data);
        goto out;
    }
    /* Read once per recipient: the second time round the user means herself. */
    if (local_dup_seen(st.rq, "forward", path.data)) {
        found = 0;
        goto out;
    }
    if (owner != 0 && owner != pw->pw_uid) {
        msg_warn("%s: file %s has bad owner uid %ld", st.rq->req->queue_id, path.data,
                 (long) owner);
        found = 0;
        goto out;
    }
    if (mode & (S_IWGRP | S_IWOTH)) {
        msg_warn("%s: file %s is %s writable", st.rq->req->queue_id, path.data,
                 (mode & S_IWOTH) ? "world" : "group");
        found = 0;
        goto out;
    }
    st.exp_from = st.local;
    if (st.notify == CLEANUP_NOTIFY_SUCCESS)
        st.notify = CLEANUP_NOTIFY_NEVER;
    else
        st.notify &= ~CLEANUP_NOTIFY_SUCCESS;
    count = token_deliver_file(st, &user, path.data, content.data, content.len);
    if (count == 0)
        found = 0;                      /* an empty .forward: the mailbox */
  out:
    free(paths);
    strbuf_release(&path);
    strbuf_release(&content);
    strbuf_release(&why);
    return found;
}
