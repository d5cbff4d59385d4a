/*
 * virtual.c - the virtual delivery agent, Postfix's virtual(8): mail for
 * virtual_mailbox_domains into Maildirs and mbox files under
 * virtual_mailbox_base, one mailbox per recipient from virtual_mailbox_maps
 * (a result ending in "/" is a Maildir), written as the owner that
 * virtual_uid_maps and virtual_gid_maps name.
 *
 * SECURITY
 *	Runs as root (master.cf unpriv "n", stay_root) so that it can write as
 *	each mailbox owner: between deliveries its effective ids are
 *	mail_owner's, during one they are the mailbox owner's, never root's. A
 *	uid below virtual_minimum_uid, gid 0 or a mailbox path with "/../" is
 *	refused. Started by an ordinary user it writes as that user. There is
 *	no shell, no .forward, no program or file delivery.
 *
 * PARAMETERS
 *	virtual_mailbox_base, virtual_mailbox_maps, virtual_uid_maps,
 *	virtual_gid_maps, virtual_minimum_uid, virtual_mailbox_limit,
 *	virtual_mailbox_lock, recipient_delimiter, enable_original_recipient,
 *	deliver_lock_attempts, deliver_lock_delay, stale_lock_time, ipc_timeout.
 *
 * DIAGNOSTICS
 *	Per recipient, reported to qmgr and logged with relay=virtual: an
 *	unknown recipient bounces (5.1.1 unknown user), a Delivered-To: header
 *	naming the recipient bounces (5.4.6 mail forwarding loop), a full
 *	mailbox bounces (5.2.2); a failed table lookup or a bad uid, gid or path
 *	defers (4.3.5 mail system configuration error, with a warning saying
 *	what is wrong), as does every mailbox write problem that an
 *	administrator can fix. A relative virtual_mailbox_base or a table that
 *	does not open is fatal at start.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivered_hdr.h"
#include "deliver_request.h"
#include "dict.h"
#include "mailbox.h"
#include "msg.h"
#include "params.h"
#include "server.h"
#include "strbuf.h"

#define VIRTUAL_PATH_MAX PATH_MAX

static struct dict_list *virtual_mailbox_maps;
static struct dict_list *virtual_uid_maps;
static struct dict_list *virtual_gid_maps;
static int virtual_privileged;          /* root: switch ids per delivery */
static uid_t virtual_owner_uid;         /* mail_owner, between deliveries */
static gid_t virtual_owner_gid;

/* One recipient's outcome before it is reported. */
struct virtual_outcome {
    enum deliver_status status;
    char dsn[8];
    struct strbuf why;
};

static void virtual_set_outcome(struct virtual_outcome *o, enum deliver_status status,
                                const char *dsn, const char *text)
{
    o->status = status;
    snprintf(o->dsn, sizeof(o->dsn), "%s", dsn);
    strbuf_set(&o->why, text);
}

/* Effective ids for the next file operations (Postfix's set_eugid). */
static void virtual_set_eugid(uid_t uid, gid_t gid)
{
    if (geteuid() != 0 && seteuid(0) < 0)
        msg_fatal("seteuid 0: %m");
    if (setegid(gid) < 0)
        msg_fatal("setegid %ld: %m", (long) gid);
    if (setgroups(1, &gid) < 0)
        msg_fatal("setgroups %ld: %m", (long) gid);
    if (uid != 0 && seteuid(uid) < 0)
        msg_fatal("seteuid %ld: %m", (long) uid);
}

static struct dict_list *virtual_open_maps(const char *name, const char *value)
{
    struct strbuf err;
    struct dict_list *list;

    if (value == NULL || *value == 0)
        return NULL;
    strbuf_init(&err, 128, 4096);
    if ((list = dict_list_open(value, DICT_FLAG_FOLD_KEY, &err)) == NULL)
        msg_fatal("%s: %s", name, err.data);
    strbuf_release(&err);
    return list;
}

/*
 * Looks the recipient up in Postfix's address order (full address, then
 * without extension, then @domain). Returns the value, or NULL with *failed
 * set when the table could not answer.
 */
static const char *virtual_lookup(struct dict_list *maps, const char *rcpt, int *failed)
{
    const char *value;

    *failed = 0;
    if (maps == NULL)
        return NULL;
    value = dict_addr_lookup(maps, rcpt, var_recipient_delimiter, 0, NULL);
    if (value == NULL && dict_list_error(maps) != DICT_ERR_NONE)
        *failed = 1;
    return value;
}

/* A decimal id as a whole string; -1 when it is not one. */
static long long virtual_parse_id(const char *text)
{
    char *end;
    unsigned long long n;

    if (*text < '0' || *text > '9')
        return -1;
    errno = 0;
    n = strtoull(text, &end, 10);
    if (errno != 0 || *end != 0 || n >= (unsigned long long) (uid_t) -1)
        return -1;
    return (long long) n;
}

/* The owner of the recipient's mailbox; 0, or -1 with the outcome set. */
static int virtual_owner(const char *rcpt, uid_t *uid, gid_t *gid, struct virtual_outcome *o)
{
    const char *res;
    long long n;
    int failed;

    if (!virtual_privileged && virtual_uid_maps == NULL && virtual_gid_maps == NULL) {
        *uid = geteuid();
        *gid = getegid();
        return 0;
    }
    res = virtual_lookup(virtual_uid_maps, rcpt, &failed);
    if (res == NULL) {
        msg_warn("recipient %s: %s in virtual_uid_maps", rcpt,
                 failed ? "lookup failed" : "not found");
        goto config_error;
    }
    if ((n = virtual_parse_id(res)) < 0 || n < var_virtual_minimum_uid) {
        msg_warn("recipient %s: bad uid %s in virtual_uid_maps (virtual_minimum_uid = %lld)",
                 rcpt, res, var_virtual_minimum_uid);
        goto config_error;
    }
    *uid = (uid_t) n;
    res = virtual_lookup(virtual_gid_maps, rcpt, &failed);
    if (res == NULL) {
        msg_warn("recipient %s: %s in virtual_gid_maps", rcpt,
                 failed ? "lookup failed" : "not found");
        goto config_error;
    }
    if ((n = virtual_parse_id(res)) <= 0) {
        msg_warn("recipient %s: bad gid %s in virtual_gid_maps", rcpt, res);
        goto config_error;
    }
    *gid = (gid_t) n;
    if (!virtual_privileged) {
        /* Unprivileged mode: the files belong to whoever runs the mail system. */
        *uid = geteuid();
        *gid = getegid();
    }
    return 0;

  config_error:
    virtual_set_outcome(o, DELIVER_DEFER, "4.3.5", "mail system configuration error");
    return -1;
}

/* The mailbox path for the recipient; 0, 1 unknown user, or -1 deferred. */
static int virtual_mailbox(const char *rcpt, struct strbuf *path, struct virtual_outcome *o)
{
    const char *res, *rel;
    size_t len;
    int failed;

    res = virtual_lookup(virtual_mailbox_maps, rcpt, &failed);
    if (res == NULL) {
        if (!failed)
            return 1;
        msg_warn("recipient %s: lookup failed in virtual_mailbox_maps", rcpt);
        virtual_set_outcome(o, DELIVER_DEFER, "4.3.5", "mail system configuration error");
        return -1;
    }
    strbuf_reset(path);
    if (strbuf_printf(path, "%s/%s", var_virtual_mailbox_base, res) < 0) {
        msg_warn("recipient %s: mailbox path too long in virtual_mailbox_maps", rcpt);
        virtual_set_outcome(o, DELIVER_DEFER, "4.3.5", "mail system configuration error");
        return -1;
    }
    /* Nothing may climb out of virtual_mailbox_base. */
    rel = path->data + strlen(var_virtual_mailbox_base);
    len = strlen(rel);
    if (strstr(rel, "/../") != NULL || (len >= 3 && strcmp(rel + len - 3, "/..") == 0)
        || strcmp(rel, "/") == 0) {
        msg_warn("recipient %s: bad mailbox path %s in virtual_mailbox_maps", rcpt, res);
        virtual_set_outcome(o, DELIVER_DEFER, "4.3.5", "mail system configuration error");
        return -1;
    }
    return 0;
}

/* Delivers to one recipient; the outcome goes into o. */
static void virtual_deliver_one(const struct deliver_request *req, int rcpt_index,
                                const struct delivered_hdr *dh, struct virtual_outcome *o)
{
    const struct deliver_rcpt *rcpt = &req->rcpt[rcpt_index];
    struct strbuf path, prepend;
    uid_t uid;
    gid_t gid;
    int r;

    strbuf_init(&path, 256, VIRTUAL_PATH_MAX);
    strbuf_init(&prepend, 256, 4 * 4096);
    if (delivered_hdr_find(dh, rcpt->address)) {
        strbuf_reset(&o->why);
        strbuf_printf(&o->why, "mail forwarding loop for %s", rcpt->address);
        o->status = DELIVER_BOUNCE;
        snprintf(o->dsn, sizeof(o->dsn), "5.4.6");
        goto done;
    }
    if ((r = virtual_mailbox(rcpt->address, &path, o)) != 0) {
        if (r > 0) {
            strbuf_reset(&o->why);
            strbuf_printf(&o->why, "unknown user: \"%s\"", rcpt->address);
            o->status = DELIVER_BOUNCE;
            snprintf(o->dsn, sizeof(o->dsn), "5.1.1");
        }
        goto done;
    }
    if (virtual_owner(rcpt->address, &uid, &gid, o) < 0)
        goto done;
    if (req->flags & DELIVER_FLAG_VERIFY) {
        virtual_set_outcome(o, DELIVER_SENT, "2.0.0", mailbox_path_is_maildir(path.data)
                        ? "delivers to maildir" : "delivers to mailbox");
        goto done;
    }
    delivered_hdr_prepend(&prepend, DELIVERED_HDR_ALL, req->sender, rcpt->orig_rcpt,
                          rcpt->address);
    if (virtual_privileged)
        virtual_set_eugid(uid, gid);
    if (mailbox_path_is_maildir(path.data))
        o->status = mailbox_maildir_deliver(path.data, req, prepend.data,
                                            (off_t) var_virtual_mailbox_limit, o->dsn, &o->why);
    else
        o->status = mailbox_mbox_deliver(path.data, req, prepend.data, var_virtual_mailbox_lock,
                                         (off_t) var_virtual_mailbox_limit, o->dsn, &o->why);
    if (virtual_privileged)
        virtual_set_eugid(virtual_owner_uid, virtual_owner_gid);
    if (o->status == DELIVER_DEFER)
        msg_warn("%s: recipient %s: mailbox %s as uid %ld gid %ld: %s", req->queue_id,
                 rcpt->address, path.data, (long) uid, (long) gid, o->why.data);

  done:
    strbuf_release(&path);
    strbuf_release(&prepend);
}

static int virtual_timeout_ms(void)
{
    long long ms = var_ipc_timeout * 1000LL;

    return ms > 0 && ms < INT_MAX ? (int) ms : INT_MAX;
}

static void virtual_service(int fd, const struct server_ctx *ctx)
{
    struct deliver_request req;
    struct delivered_hdr *dh;
    struct virtual_outcome o;
    struct strbuf why;
    int i, err;

    strbuf_init(&why, 256, 4096);
    if (deliver_request_read(fd, virtual_timeout_ms(), &req, &why) < 0) {
        msg_warn("delivery request: %s", why.data);
        strbuf_release(&why);
        return;
    }
    strbuf_init(&o.why, 256, 4096);
    if ((dh = delivered_hdr_read(&req)) == NULL) {
        err = errno;
        strbuf_reset(&o.why);
        strbuf_printf(&o.why, "error reading message: %s", strerror(err));
        msg_warn("%s: %s", req.queue_id, o.why.data);
        for (i = 0; i < req.rcpt_count; i++)
            if (deliver_report(&req, fd, i, DELIVER_DEFER, "4.3.0", ctx->service,
                               o.why.data) < 0)
                break;
    } else {
        for (i = 0; i < req.rcpt_count; i++) {
            virtual_deliver_one(&req, i, dh, &o);
            if (deliver_report(&req, fd, i, o.status, o.dsn, ctx->service, o.why.data) < 0)
                break;          /* qmgr went away: it defers the rest itself */
        }
        delivered_hdr_free(&dh);
    }
    if (i == req.rcpt_count)
        (void) deliver_done(&req, fd);
    deliver_request_free(&req);
    strbuf_release(&o.why);
    strbuf_release(&why);
}

static void virtual_post_init(const struct server_ctx *ctx)
{
    struct passwd *pw;

    if (ctx->argc > 0)
        msg_fatal("unexpected command-line argument: %s", ctx->argv[0]);
    if (var_virtual_mailbox_base[0] != '/')
        msg_fatal("do not specify relative pathname: virtual_mailbox_base = %s",
                  var_virtual_mailbox_base);
    virtual_mailbox_maps = virtual_open_maps("virtual_mailbox_maps", var_virtual_mailbox_maps);
    virtual_uid_maps = virtual_open_maps("virtual_uid_maps", var_virtual_uid_maps);
    virtual_gid_maps = virtual_open_maps("virtual_gid_maps", var_virtual_gid_maps);
    virtual_privileged = geteuid() == 0;
    if (virtual_privileged) {
        if ((pw = getpwnam(var_mail_owner)) == NULL)
            msg_fatal("mail_owner %s: no such user", var_mail_owner);
        if (pw->pw_uid == 0)
            msg_fatal("mail_owner %s must not be a privileged account", var_mail_owner);
        virtual_owner_uid = pw->pw_uid;
        virtual_owner_gid = pw->pw_gid;
        virtual_set_eugid(virtual_owner_uid, virtual_owner_gid);
    }
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_SINGLE,
        .stay_root = 1,
        .post_init = virtual_post_init,
        .service = virtual_service,
    };

    server_main(argc, argv, &ops);
}
