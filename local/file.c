/*
 * file.c - "/file" destinations in aliases, .forward and :include: files
 * (Postfix's local/file.c): the message is appended in mbox format (or
 * written into a Maildir when the name ends in "/") with the rights of whoever
 * the expansion belongs to (default_privs for root-owned aliases).
 * Never writes with root rights, to an executable file, or twice to one file
 * for one recipient; /dev/null takes the mail and keeps nothing.
 * Failure: the mailbox writer's deferral or bounce.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "local.h"
#include "msg.h"
#include "params.h"
#include "strbuf.h"

void file_deliver(struct local_state st, const struct local_user *as, const char *path)
{
    struct strbuf prepend, text;
    enum deliver_status status;
    struct stat sb;
    char dsn[8];

    if (local_dup_seen(st.rq, "file", path))
        return;
    if (LOCAL_VERIFY(&st)) {
        local_result(&st, DELIVER_SENT, "2.0.0", "delivers to file: %s", path);
        return;
    }
    if (strcmp(path, "/dev/null") == 0) {
        local_result(&st, DELIVER_SENT, "2.0.0", "delivered to file: %s", path);
        return;
    }
    /* Appending mail to a program would let the mail run as code. */
    if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0111)) {
        msg_warn("%s: file %s is executable", st.rq->req->queue_id, path);
        local_result(&st, DELIVER_BOUNCE, "5.7.1", "file is executable: %s", path);
        return;
    }
    strbuf_init(&prepend, 256, STRBUF_UNLIMITED);
    strbuf_init(&text, 128, STRBUF_UNLIMITED);
    local_prepend(&st, 1, (local_delivered_mask & LOCAL_DELIVERED_FILE) != 0, &prepend);
    status = userbox_write_as(&st, as, path, prepend.data, (off_t) var_mailbox_size_limit,
                              dsn, &text);
    if (status == DELIVER_SENT)
        local_result(&st, status, dsn, "delivered to file: %s", path);
    else
        local_result(&st, status, dsn, "cannot append message to file %s: %s", path, text.data);
    strbuf_release(&prepend);
    strbuf_release(&text);
}
