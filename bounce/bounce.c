/*
 * bounce - the delivery status notification service (Postfix's bounce(8),
 * in the roles of its bounce, defer and trace services).
 *
 * SUMMARY
 *	A SINGLE-mode worker on the daemon skeleton, running as mail_owner in
 *	queue_directory. qmgr connects to private/bounce and sends requests
 *	(docs/ipc.md, "bounce"): "flush" for a failure report from the
 *	message's bounce/ log, "warn" for a delay warning from its defer/ log,
 *	"trace" for a success report from its trace/ log. Each is answered
 *	after the notifications are durable in the queue (bounce_notify.c).
 *	One service does all three, so master.cf needs only the bounce line.
 *
 * NEVER
 *	Never trusts a request: frames are small and strictly checked (unknown
 *	or missing attributes, a bad queue name or ID end the connection with
 *	a warning); never answers OK before cleanup committed the notice.
 *
 * DIAGNOSTICS
 *	Answers DEFER (qmgr keeps the log and asks again) or REJECT with a
 *	reason; protocol errors are logged and close the connection.
 *
 * PARAMETERS
 *	ipc_timeout, ipc_idle, and those of bounce_notify.c.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "attr.h"
#include "bounce.h"
#include "ipc.h"
#include "msg.h"
#include "params.h"
#include "qid.h"
#include "queue_path.h"
#include "server.h"
#include "strbuf.h"

#define BOUNCE_MAX_FRAME    4096        /* a request is three short strings */
#define BOUNCE_MAX_ATTRS    16

static int bounce_ms(long long secs)
{
    return (int) (secs * 1000 > 0x7fffffff ? 0x7fffffff : secs * 1000);
}

static int bounce_kind_of(const char *req, enum bounce_kind *kind)
{
    if (strcmp(req, "flush") == 0)
        *kind = BOUNCE_FAILED;
    else if (strcmp(req, "warn") == 0)
        *kind = BOUNCE_DELAYED;
    else if (strcmp(req, "trace") == 0)
        *kind = BOUNCE_SUCCESS;
    else
        return -1;
    return 0;
}

static int bounce_reply(int fd, struct attr_msg *out, int status, const char *qid,
                        const char *reason)
{
    attr_msg_reset(out);
    if (attr_put_u32(out, "status", (uint32_t) status) < 0
        || attr_put_str(out, "queue_id", qid) < 0
        || (status != IPC_STATUS_OK && attr_put_str(out, "reason", reason) < 0))
        msg_panic("bounce: cannot build a reply: %s", attr_msg_reason(out));
    return ipc_send(fd, out, bounce_ms(var_ipc_timeout));
}

static void bounce_service(int fd, const struct server_ctx *ctx)
{
    static const struct attr_limits limits = {BOUNCE_MAX_FRAME, BOUNCE_MAX_ATTRS, 0};
    struct attr_msg *in = attr_msg_new(), *out = attr_msg_new();
    struct strbuf dsn_qid, why;
    int first = 1;

    (void) ctx;
    attr_msg_set_limits(in, &limits);
    strbuf_init(&dsn_qid, 32, 256);
    strbuf_init(&why, 128, 1024);
    for (;;) {
        const char *req, *queue_name, *qid;
        enum bounce_kind kind;
        int status;

        /* A client waits for the first request; an idle kept connection ends. */
        if (ipc_recv(fd, in, 0, bounce_ms(first ? var_ipc_timeout : var_ipc_idle)) < 0) {
            if (errno != EPIPE && !(errno == ETIMEDOUT && !first))
                msg_warn("bounce client: receive: %s%s%s", strerror(errno),
                         errno == EPROTO ? ": " : "", errno == EPROTO ? attr_msg_reason(in) : "");
            break;
        }
        first = 0;
        if (attr_get_str(in, "request", &req, NULL) < 0 || bounce_kind_of(req, &kind) < 0
            || attr_get_str(in, "queue_name", &queue_name, NULL) < 0
            || attr_get_str(in, "queue_id", &qid, NULL) < 0 || attr_check_consumed(in) < 0) {
            msg_warn("bounce client: protocol error%s%s -- connection closed",
                     errno == EPROTO ? ": " : "", errno == EPROTO ? attr_msg_reason(in) : "");
            break;
        }
        if (!queue_path_name_valid(queue_name) || !qid_valid(qid)) {
            msg_warn("bounce client: bad queue name or queue ID -- connection closed");
            break;
        }
        strbuf_reset(&why);
        status = bounce_notify(kind, queue_name, qid, &dsn_qid, &why);
        if (status != IPC_STATUS_OK && why.len == 0)
            strbuf_set(&why, "notification failed");
        if (bounce_reply(fd, out, status, dsn_qid.data, why.data) < 0) {
            msg_warn("bounce client: send: %s", strerror(errno));
            break;
        }
    }
    strbuf_release(&dsn_qid);
    strbuf_release(&why);
    attr_msg_free(&in);
    attr_msg_free(&out);
}

static void bounce_pre_exit(const struct server_ctx *ctx)
{
    (void) ctx;
    bounce_notify_disconnect();
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_SINGLE,
        .service = bounce_service,
        .pre_exit = bounce_pre_exit,
    };

    server_main(argc, argv, &ops);
}
