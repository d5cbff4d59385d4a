/*
 * bounce_client.c - one request to the bounce service for a delivery status
 * notification (protocol in docs/ipc.md, "bounce").
 *
 * A request is one frame: `request` = "flush" (failures, from the bounce/
 * log), "warn" (delay warning, from the defer/ log) or "trace" (success
 * report, from the trace/ log), with `queue_name` and `queue_id`. The answer
 * is `status` (0: the notification, if any, is queued), `queue_id` (the
 * notification's own queue ID, empty when nothing had to be sent) and, when
 * status is not 0, `reason`.
 *
 * NEVER
 *	Never waits past timeout_ms in all (connect, send and receive share one
 *	deadline); never trusts the answer: a frame with missing or mistyped
 *	attributes, or a queue ID that is not one, is an error.
 *
 * DIAGNOSTICS
 *	-1 with a sentence in why: the service could not be reached, it went
 *	away, it timed out, or it answered with a non-zero status (its reason).
 *	The caller keeps its log and asks again later.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "bounce_client.h"
#include "ipc.h"
#include "msg.h"
#include "qid.h"
#include "queue_path.h"
#include "strbuf.h"

#define BOUNCE_CLIENT_MAX_FRAME 8192    /* an answer is a status, an ID and a reason */

static const char *bounce_request_name(enum bounce_kind kind)
{
    switch (kind) {
    case BOUNCE_FAILED:
        return "flush";
    case BOUNCE_DELAYED:
        return "warn";
    case BOUNCE_SUCCESS:
        return "trace";
    }
    msg_panic("bounce_request: unknown kind %d", (int) kind);
}

static int64_t bounce_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, never negative. */
static int bounce_left(int64_t deadline)
{
    int64_t left = deadline - bounce_now_ms();

    return left > 0 ? (int) left : 0;
}

static int bounce_fail(struct strbuf *why, const char *what, const char *detail)
{
    if (why) {
        strbuf_reset(why);
        (void) strbuf_printf(why, "bounce service: %s%s%s", what, detail ? ": " : "",
                             detail ? detail : "");
    }
    return -1;
}

/* Checks the answer and takes what it says. */
static int bounce_answer(struct attr_msg *resp, struct strbuf *dsn_qid, struct strbuf *why)
{
    const char *qid = "", *reason = "";
    uint32_t status;
    int have;

    if (attr_get_u32(resp, "status", &status) < 0)
        return bounce_fail(why, "malformed answer", "no status");
    if ((have = attr_opt_str(resp, "reason", &reason, 0)) < 0
        || attr_opt_str(resp, "queue_id", &qid, 0) < 0)
        return bounce_fail(why, "malformed answer", attr_msg_reason(resp));
    if (status != IPC_STATUS_OK)
        return bounce_fail(why, status == IPC_STATUS_DEFER ? "deferred"
                           : status == IPC_STATUS_REJECT ? "refused" : "bad request",
                           have ? reason : "no reason given");
    if (*qid != '\0' && !qid_valid(qid))
        return bounce_fail(why, "malformed answer", "not a queue ID");
    if (dsn_qid && strbuf_set(dsn_qid, qid) < 0)
        return bounce_fail(why, "malformed answer", "queue ID too long");
    return 0;
}

int bounce_request(const char *endpoint, enum bounce_kind kind, const char *queue_name,
                   const char *qid, int timeout_ms, struct strbuf *dsn_qid, struct strbuf *why)
{
    struct attr_msg *req, *resp;
    int64_t deadline;
    int fd, ret = -1;

    if (!queue_path_name_valid(queue_name) || !qid_valid(qid))
        msg_panic("bounce_request: bad queue name \"%s\" or ID \"%s\"", queue_name, qid);
    if (timeout_ms < 0)
        msg_panic("bounce_request: negative timeout %d", timeout_ms);
    if (dsn_qid)
        strbuf_reset(dsn_qid);
    deadline = bounce_now_ms() + timeout_ms;
    req = attr_msg_new();
    resp = attr_msg_new();
    if (attr_put_str(req, "request", bounce_request_name(kind)) < 0
        || attr_put_str(req, "queue_name", queue_name) < 0
        || attr_put_str(req, "queue_id", qid) < 0)
        msg_panic("bounce_request: cannot build a request: %s", attr_msg_reason(req));
    fd = endpoint ? ipc_connect_path(endpoint, timeout_ms)
        : ipc_connect(IPC_CLASS_PRIVATE, "bounce", timeout_ms);
    if (fd < 0) {
        bounce_fail(why, "connect", strerror(errno));
    } else if (ipc_send(fd, req, bounce_left(deadline)) < 0) {
        bounce_fail(why, "send", strerror(errno));
    } else if (ipc_recv(fd, resp, BOUNCE_CLIENT_MAX_FRAME, bounce_left(deadline)) < 0) {
        bounce_fail(why, errno == EPIPE ? "closed without an answer" : "receive",
                    errno == EPIPE ? 0 : errno == EPROTO ? attr_msg_reason(resp)
                    : strerror(errno));
    } else {
        ret = bounce_answer(resp, dsn_qid, why);
    }
    if (fd >= 0)
        (void) close(fd);
    attr_msg_free(&req);
    attr_msg_free(&resp);
    return ret;
}
