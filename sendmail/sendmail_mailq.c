/*
 * sendmail_mailq.c - "mailq" / "sendmail -bp": the classic queue listing in
 * Postfix's format (ID with '*' for active and '!' for held, size, arrival
 * time, sender, then each pending recipient with its last deferral reason;
 * "-- N Kbytes in M Requests.").
 * A caller who may read the queue (root, mail_owner) gets the listing straight
 * from util/queue_list.c; anyone else asks the showq service, directly when
 * public/ is reachable (setgid_group members) or through the set-gid
 * petrel-showq helper. One implementation, so the output is the same.
 * Never changes anything in the queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "msg.h"
#include "params.h"
#include "queue_list.h"
#include "safe_file.h"
#include "sendmail.h"
#include "showq_client.h"
#include "strbuf.h"

#define MAILQ_SHOWQ_TIMEOUT_MS  (60 * 1000)

struct mailq_out {
    struct queue_listing listing;
    struct strbuf buf;
    int failed;
};

static int mailq_drain(struct mailq_out *o)
{
    if (!o->failed && o->buf.len && safe_file_write_all(1, o->buf.data, o->buf.len) < 0)
        o->failed = 1;
    strbuf_reset(&o->buf);
    return o->failed ? -1 : 0;
}

static int mailq_message(const struct queue_msg *m, void *ctx)
{
    struct mailq_out *o = ctx;

    queue_listing_add(&o->listing, m);
    if (o->buf.len >= 65536)
        return mailq_drain(o) < 0;
    return 0;
}

/* The direct listing; 0, 1 when the queue is not readable by this caller,
 * or EX_IOERR. */
static int mailq_direct(int qfd)
{
    struct mailq_out o;
    struct queue_scan_stats st;
    struct strbuf why;
    int rc;

    memset(&o, 0, sizeof(o));
    strbuf_init(&o.buf, 65536 + 8192, STRBUF_UNLIMITED);
    strbuf_init(&why, 128, 4096);
    o.listing.out = &o.buf;
    rc = queue_list_scan(qfd, NULL, mailq_message, &o, &st, &why);
    if (rc < 0 && o.listing.count == 0) {
        strbuf_release(&o.buf);
        strbuf_release(&why);
        return 1;
    }
    if (rc < 0)
        msg_warn("%s", why.data);
    queue_listing_end(&o.listing);
    (void) mailq_drain(&o);
    if (st.unreadable)
        msg_warn("%lu queue files could not be read and are not listed", st.unreadable);
    strbuf_release(&o.buf);
    strbuf_release(&why);
    return o.failed ? EX_IOERR : 0;
}

int sendmail_mailq(void)
{
    struct strbuf why;
    int qfd, rc;

    if ((qfd = open(var_queue_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0
        && errno == ENOENT) {
        printf("Mail queue is empty\n");
        return 0;
    }
    if (qfd >= 0) {
        rc = mailq_direct(qfd);
        close(qfd);
        if (rc != 1)
            return rc;
    }
    strbuf_init(&why, 128, 4096);
    fflush(stdout);
    if (showq_client_list(NULL, 0, NULL, 0, 1, MAILQ_SHOWQ_TIMEOUT_MS, &why) == 0) {
        rc = 0;
    } else if (errno == EACCES) {
        strbuf_reset(&why);
        if ((rc = showq_client_helper(0, NULL, 0, &why)) < 0) {
            msg_error("cannot read the queue %s, and %s (the showq service is reached "
                      "through petrel-showq)", var_queue_directory, why.data);
            rc = EX_NOPERM;
        }
    } else {
        msg_error("%s%s", why.data, errno == ENOENT || errno == ECONNREFUSED
                  ? " (is the mail system running?)" : "");
        rc = EX_UNAVAILABLE;
    }
    strbuf_release(&why);
    return rc;
}
