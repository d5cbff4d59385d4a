/*
 * error.c - the error and retry transports, Postfix's error(8): every
 * recipient of a request fails with the nexthop text as the reason, as
 * transport_maps' "error:5.1.1 text" or the resolver's unknown-user
 * answers ask. The text may start with an enhanced status code: the "error"
 * service bounces (5.0.0 when there is none; a 4.X.Y code defers instead),
 * a service named "retry" defers (4.0.0; the class is always 4).
 *
 * Must never: read or write the message, or report a recipient other than
 * as failed. Failure: a malformed request is logged and dropped (qmgr
 * defers its recipients); a lost qmgr stops the reports.
 */
#include <limits.h>
#include <string.h>

#include "deliver_request.h"
#include "dsn_split.h"
#include "msg.h"
#include "params.h"
#include "server.h"
#include "strbuf.h"

static void error_service(int fd, const struct server_ctx *ctx)
{
    struct deliver_request req;
    struct strbuf why;
    enum deliver_status status;
    char dsn[DSN_SPLIT_SIZE];
    const char *text;
    int retry = strcmp(ctx->service, "retry") == 0, i;
    long long ms = var_ipc_timeout * 1000LL;

    strbuf_init(&why, 256, 4096);
    if (deliver_request_read(fd, ms > 0 && ms < INT_MAX ? (int) ms : INT_MAX, &req, &why) < 0) {
        msg_warn("delivery request: %s", why.data);
        strbuf_release(&why);
        return;
    }
    dsn_split(req.nexthop, retry ? "4.0.0" : "5.0.0", dsn, &text);
    if (retry || dsn[0] == '4') {
        dsn[0] = '4';
        status = DELIVER_DEFER;
    } else {
        dsn[0] = '5';
        status = DELIVER_BOUNCE;
    }
    if (*text == 0)
        text = req.nexthop;
    for (i = 0; i < req.rcpt_count; i++)
        if (deliver_report(&req, fd, i, status, dsn, "none", text) < 0)
            break;
    if (i == req.rcpt_count)
        (void) deliver_done(&req, fd);
    deliver_request_free(&req);
    strbuf_release(&why);
}

static void error_post_init(const struct server_ctx *ctx)
{
    if (ctx->argc > 0)
        msg_fatal("unexpected command-line argument: %s", ctx->argv[0]);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_SINGLE,
        .post_init = error_post_init,
        .service = error_service,
    };

    server_main(argc, argv, &ops);
}
