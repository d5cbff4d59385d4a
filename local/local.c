/*
 * local - the local delivery agent (Postfix's local(8)): delivers mail for
 * the domains in mydestination to aliases, .forward files, mailboxes,
 * commands and files.
 *
 * DESCRIPTION
 *	A SINGLE-mode daemon that keeps root (stay_root). qmgr connects to
 *	private/local and sends one request (util/deliver_request.h); each
 *	recipient goes through the alias_maps, its .forward file, then its
 *	mailbox (home_mailbox, mail_spool_directory, mailbox_command or
 *	mailbox_transport), with unknown users handled by fallback_transport,
 *	luser_relay or a "5.1.1 unknown user" bounce. Aliases and .forward files
 *	expand to further local recipients (delivered here, recursively),
 *	remote addresses (re-injected through cleanup as a new message),
 *	"|command", "/file" and ":include:/file".
 *
 *	Privileges: every access to a user's files (mailbox, .forward,
 *	:include:, /file, commands) happens in a child process that sets its
 *	gid, groups and uid for good before touching anything (privs.c). A
 *	fork per delivery costs a little, but a seteuid() dance inside one
 *	long-lived root process would leave every later delivery one bug away
 *	from root, and a child that has dropped its rights cannot get them
 *	back. Mailbox deliveries use the recipient's rights; alias-file
 *	commands and files use the alias database owner's, or default_privs
 *	when root owns it. Run by an ordinary user (unprivileged mode),
 *	everything runs as that user.
 *
 *	Outcomes: one status per recipient to qmgr, the worst of its parts
 *	(deferral, then bounce, then success). Loop control: a message whose
 *	headers hold "Delivered-To: <recipient>" bounces with 5.4.6.
 *
 * NEVER
 *	Never puts mail data in a command string (commands get it in the
 *	environment and on standard input only), never writes a user's files
 *	with root rights, never writes queue state (qmgr does), never trusts a
 *	table value or a .forward line beyond its length limits.
 *
 * DIAGNOSTICS
 *	A malformed request is logged and dropped (qmgr defers the recipients).
 *	Delivery problems become deferrals or bounces with Postfix's texts;
 *	configuration errors (no default_privs user) are fatal at start.
 *
 * PARAMETERS
 *	alias_maps, allow_mail_to_commands, allow_mail_to_files,
 *	command_time_limit, default_privs, duplicate_filter_limit,
 *	enable_original_recipient, expand_owner_alias, export_environment,
 *	fallback_transport, forward_path, home_mailbox, ipc_timeout,
 *	local_command_shell, luser_relay, mail_spool_directory,
 *	mailbox_command, mailbox_delivery_lock, mailbox_size_limit,
 *	mailbox_transport, owner_request_special, prepend_delivered_header,
 *	recipient_delimiter, require_home_directory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "address.h"
#include "deliver_request.h"
#include "delivered_hdr.h"
#include "htable.h"
#include "local.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "resolve.h"
#include "server.h"
#include "strbuf.h"


int local_cmd_mask;
int local_file_mask;
int local_delivered_mask;
struct local_user local_default_privs;

static int local_root;

int local_is_root(void)
{
    return local_root;
}

/* Decodes a class list such as "alias, forward, include"; fatal on a typo. */
static int local_class_mask(const char *param, const char *value,
                            const char *const names[], const int bits[])
{
    char *copy = xstrdup(value), *save = NULL, *word;
    int mask = 0, i;

    for (word = strtok_r(copy, ", \t\r\n", &save); word; word = strtok_r(NULL, ", \t\r\n", &save)) {
        for (i = 0; names[i]; i++)
            if (strcasecmp(word, names[i]) == 0)
                break;
        if (names[i] == NULL)
            msg_fatal("%s: unknown class \"%s\"", param, word);
        mask |= bits[i];
    }
    free(copy);
    return mask;
}

static void local_pre_init(const struct server_ctx *ctx)
{
    static const char *const exp_names[] = {"alias", "forward", "include", NULL};
    static const int exp_bits[] = {LOCAL_EXP_ALIAS, LOCAL_EXP_FORWARD, LOCAL_EXP_INCLUDE};
    static const char *const hdr_names[] = {"command", "file", "forward", NULL};
    static const int hdr_bits[] = {LOCAL_DELIVERED_COMMAND, LOCAL_DELIVERED_FILE,
                                   LOCAL_DELIVERED_FORWARD};
    struct passwd *pw;

    (void) ctx;
    local_root = geteuid() == 0;
    local_cmd_mask = local_class_mask("allow_mail_to_commands", var_allow_mail_to_commands,
                                      exp_names, exp_bits);
    local_file_mask = local_class_mask("allow_mail_to_files", var_allow_mail_to_files,
                                       exp_names, exp_bits);
    local_delivered_mask = local_class_mask("prepend_delivered_header",
                                            var_prepend_delivered_header, hdr_names, hdr_bits);
    if (local_root) {
        if ((pw = getpwnam(var_default_privs)) == NULL)
            msg_fatal("default_privs: unknown user \"%s\"", var_default_privs);
        if (pw->pw_uid == 0)
            msg_fatal("default_privs: \"%s\" must not be a privileged account",
                      var_default_privs);
        local_default_privs.uid = pw->pw_uid;
        local_default_privs.gid = pw->pw_gid;
        local_default_privs.home = xstrdup(pw->pw_dir);
        local_default_privs.shell = xstrdup(pw->pw_shell);
        local_default_privs.logname = xstrdup(pw->pw_name);
    } else {
        if ((pw = getpwuid(geteuid())) != NULL) {
            local_default_privs.home = xstrdup(pw->pw_dir);
            local_default_privs.shell = xstrdup(pw->pw_shell);
            local_default_privs.logname = xstrdup(pw->pw_name);
        }
        local_default_privs.uid = geteuid();
        local_default_privs.gid = getegid();
    }
    /* Alias tables may be readable by root only: open them before anything else. */
    alias_init();
}

static void local_post_init(const struct server_ctx *ctx)
{
    (void) ctx;
    resolve_init();
}

/* --- outcomes ------------------------------------------------------------- */

static int local_rank(enum deliver_status s)
{
    return s == DELIVER_DEFER ? 2 : s == DELIVER_BOUNCE ? 1 : 0;
}

void local_result(const struct local_state *st, enum deliver_status status, const char *dsn,
                  const char *fmt, ...)
{
    struct local_request *rq = st->rq;
    va_list ap;

    if (rq->have && local_rank(status) <= local_rank(rq->status)) {
        if (msg_verbose) {
            struct strbuf t;

            strbuf_init(&t, 128, LOCAL_TEXT_MAX);
            va_start(ap, fmt);
            (void) strbuf_vprintf(&t, fmt, ap);
            va_end(ap);
            msg_info("%s: <%s>: %s %s", rq->req->queue_id, st->address, dsn, t.data);
            strbuf_release(&t);
        }
        return;
    }
    rq->have = 1;
    rq->status = status;
    snprintf(rq->dsn, sizeof(rq->dsn), "%s", dsn);
    strbuf_reset(&rq->text);
    /* A failing alias member is named, so the sender learns which one failed. */
    if (status != DELIVER_SENT && strcasecmp(st->address, rq->top) != 0) {
        struct strbuf q;

        strbuf_init(&q, 64, STRBUF_UNLIMITED);
        address_quote(st->address, &q);
        (void) strbuf_printf(&rq->text, "<%s>: ", q.data);
        strbuf_release(&q);
    }
    {
        char buf[LOCAL_TEXT_MAX];

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        (void) strbuf_puts(&rq->text, buf);
        if (rq->text.len > LOCAL_TEXT_MAX)
            strbuf_truncate(&rq->text, LOCAL_TEXT_MAX);
    }
}

/* The duplicate filter: 1 when kind+key was seen for this recipient. Past
 * duplicate_filter_limit entries nothing more is remembered (Postfix). */
int local_dup_seen(struct local_request *rq, const char *kind, const char *key)
{
    struct strbuf k;
    int seen;

    strbuf_init(&k, 64, STRBUF_UNLIMITED);
    strbuf_printf(&k, "%s %s", kind, key);
    if (htable_find(rq->dups, k.data) != NULL) {
        seen = 1;
    } else {
        seen = 0;
        if (var_duplicate_filter_limit <= 0
            || (long long) htable_count(rq->dups) < var_duplicate_filter_limit)
            (void) htable_insert(rq->dups, k.data, (void *) "", NULL);
    }
    strbuf_release(&k);
    return seen;
}

/* Counts a delivery or forward; 0 and a bounce once a recipient has too many. */
int local_count_action(const struct local_state *st)
{
    if (++st->rq->actions > LOCAL_ACTION_LIMIT) {
        if (st->rq->actions == LOCAL_ACTION_LIMIT + 1)
            msg_warn("%s: <%s>: more than %d deliveries from one recipient",
                     st->rq->req->queue_id, st->rq->top, LOCAL_ACTION_LIMIT);
        local_result(st, DELIVER_BOUNCE, "5.4.6", "too many deliveries from one recipient");
        return 0;
    }
    return 1;
}

void local_prepend(const struct local_state *st, int return_path, int delivered,
                   struct strbuf *out)
{
    const struct deliver_rcpt *r = &st->rq->req->rcpt[st->rq->rcpt_index];
    struct strbuf lines;

    /* Delivered-To: is frozen at the recipient qmgr asked for (Postfix's
     * frozen_delivered_to); X-Original-To: is the recipient as received. */
    strbuf_init(&lines, 256, STRBUF_UNLIMITED);
    delivered_hdr_prepend(&lines, (return_path ? DELIVERED_HDR_RETURN_PATH : 0)
                          | DELIVERED_HDR_ORIG_TO | (delivered ? DELIVERED_HDR_DELIVERED_TO : 0),
                          st->sender, r->orig_rcpt, st->rq->top);
    strbuf_append(out, lines.data, lines.len);
    strbuf_release(&lines);
}

void local_delivered_header(const struct local_request *rq, struct strbuf *out)
{
    struct strbuf lines;

    strbuf_init(&lines, 128, STRBUF_UNLIMITED);
    delivered_hdr_prepend(&lines, DELIVERED_HDR_DELIVERED_TO, "", "", rq->top);
    strbuf_append(out, lines.data, lines.len);
    strbuf_release(&lines);
}

void local_pass(struct local_state st, const char *spec)
{
    struct local_request *rq = st.rq;
    const char *colon = strchr(spec, ':');

    if (strcasecmp(st.address, rq->top) == 0 && rq->pass_transport == NULL) {
        rq->pass_transport = colon ? xstrndup(spec, (size_t) (colon - spec)) : xstrdup(spec);
        rq->pass_nexthop = xstrdup(colon && colon[1] ? colon + 1 : rq->req->nexthop);
        return;
    }
    forward_append(st);
}

int local_loop_find(const struct local_request *rq, const char *addr)
{
    return rq->loop != NULL && delivered_hdr_find(rq->loop, addr);
}

/* --- the request ------------------------------------------------------------ */

/* Delivers one top-level recipient and reports it; -1 when qmgr went away. */
static int local_deliver_rcpt(struct deliver_request *req, int conn_fd, int idx,
                              const struct delivered_hdr *loop)
{
    struct local_request rq;
    struct local_state st;
    struct local_user nobody = {0, 0, NULL, NULL, NULL};
    int rc = 0;

    memset(&rq, 0, sizeof(rq));
    rq.req = req;
    rq.conn_fd = conn_fd;
    rq.rcpt_index = idx;
    rq.top = req->rcpt[idx].address;
    rq.dups = htable_new(16);
    rq.loop = loop;
    strbuf_init(&rq.text, 128, STRBUF_UNLIMITED);

    memset(&st, 0, sizeof(st));
    st.address = rq.top;
    st.sender = req->sender;
    st.notify = req->rcpt[idx].notify;
    st.orcpt = req->rcpt[idx].dsn_orcpt;
    st.rq = &rq;
    recipient_deliver(st, &nobody);
    forward_finish(&rq);
    if (rq.pass_transport) {
        /* A deferred part means the whole recipient is tried again later;
         * hand it over only when that will not happen. */
        if (!rq.have || rq.status != DELIVER_DEFER) {
            long long ms = var_ipc_timeout * 1000LL;

            if (rq.have && rq.status == DELIVER_BOUNCE)
                msg_warn("%s: <%s>: passed to %s although a part failed: %s",
                         req->queue_id, rq.top, rq.pass_transport, rq.text.data);
            rc = deliver_pass(req, conn_fd, idx, rq.pass_transport, rq.pass_nexthop,
                              ms > 0 && ms < INT_MAX ? (int) ms : INT_MAX);
            rq.reported = 1;
        }
        free(rq.pass_transport);
        free(rq.pass_nexthop);
    }
    if (!rq.reported) {
        if (!rq.have)
            local_result(&st, DELIVER_DEFER, "4.3.0", "no delivery outcome");
        rc = deliver_report(req, conn_fd, idx, rq.status, rq.dsn, "local", rq.text.data);
    }
    htable_free(&rq.dups, NULL);
    strbuf_release(&rq.text);
    return rc;
}

static void local_service(int fd, const struct server_ctx *ctx)
{
    struct deliver_request req;
    struct delivered_hdr *loop;
    struct strbuf why;
    long long ms = var_ipc_timeout * 1000LL;
    int i;

    (void) ctx;
    strbuf_init(&why, 128, STRBUF_UNLIMITED);
    if (deliver_request_read(fd, ms > 0 && ms < INT_MAX ? (int) ms : INT_MAX, &req, &why) < 0) {
        msg_warn("delivery request: %s", why.data);
        strbuf_release(&why);
        return;
    }
    if ((loop = delivered_hdr_read(&req)) == NULL) {
        /* Without the loop information nothing may be delivered. */
        msg_warn("%s: read message headers: %m", req.queue_id);
        for (i = 0; i < req.rcpt_count; i++)
            if (deliver_report(&req, fd, i, DELIVER_DEFER, "4.3.0", "local",
                               "cannot read the queue file") < 0)
                break;
    } else {
        for (i = 0; i < req.rcpt_count; i++)
            if (local_deliver_rcpt(&req, fd, i, loop) < 0)
                break;
        delivered_hdr_free(&loop);
    }
    if (i == req.rcpt_count)
        (void) deliver_done(&req, fd);
    deliver_request_free(&req);
    strbuf_release(&why);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_SINGLE,
        .stay_root = 1,
        .pre_init = local_pre_init,
        .post_init = local_post_init,
        .service = local_service,
    };

    server_main(argc, argv, &ops);
}
