/*
 * discard.c - the discard transport, Postfix's discard(8): every recipient
 * of a request is reported as delivered ("sent") without delivering
 * anything, with the nexthop text (transport_maps "discard:silently") as
 * the reason in the log. A leading enhanced status code in the text is used
 * with its class set to 2 (2.0.0 when there is none).
 *
 * Must never: read or write the message, or report anything but "sent".
 * Failure: a malformed request is logged and dropped (qmgr defers its
 * recipients); a lost qmgr stops the reports.
 */
#include <limits.h>

#include "deliver_request.h"
#include "dsn_split.h"
#include "msg.h"
#include "params.h"
#include "server.h"
#include "strbuf.h"

static void discard_service(int fd, const struct server_ctx *ctx)
{
    struct deliver_request req;
    struct strbuf why;
    char dsn[DSN_SPLIT_SIZE];
    const char *text;
    long long ms = var_ipc_timeout * 1000LL;
    int i;

    (void) ctx;
    strbuf_init(&why, 256, 4096);
    if (deliver_request_read(fd, ms > 0 && ms < INT_MAX ? (int) ms : INT_MAX, &req, &why) < 0) {
        msg_warn("delivery request: %s", why.data);
        strbuf_release(&why);
        return;
    }
    dsn_split(req.nexthop, "2.0.0", dsn, &text);
    dsn[0] = '2';
    if (*text == 0)
        text = req.nexthop;
    for (i = 0; i < req.rcpt_count; i++)
        if (deliver_report(&req, fd, i, DELIVER_SENT, dsn, "none", text) < 0)
            break;
    if (i == req.rcpt_count)
        (void) deliver_done(&req, fd);
    deliver_request_free(&req);
    strbuf_release(&why);
}

static void discard_post_init(const struct server_ctx *ctx)
{
    if (ctx->argc > 0)
        msg_fatal("unexpected command-line argument: %s", ctx->argv[0]);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_SINGLE,
        .post_init = discard_post_init,
        .service = discard_service,
    };

    server_main(argc, argv, &ops);
}
