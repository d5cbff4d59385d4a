/*
 * test-agent - a delivery agent for the scheduling tests (never installed).
 * Serves the delivery protocol (util/deliver_request.h) on its master.cf
 * service and answers each recipient as a rule file says, so qmgr's
 * scheduling can be watched without real mailboxes.
 *
 * USAGE (master.cf)
 *	sink unix - n n - 10 test-agent RULES RECORD
 *	RULES: lines "NEXTHOP ACTION [DELAY_MS]", first match wins, "*" matches
 *	any nexthop; ACTION is sent (2.0.0), defer (4.2.0, a mailbox problem),
 *	sitedefer (4.4.1, the site is down) or bounce (5.1.1). Without a match:
 *	sent at once. The file is read for every request, so a test may change
 *	it while the instance runs.
 *	RECORD: one line appended per event, "begin NEXTHOP QUEUEID NS from=<S> RCPT..."
 *	and "end NEXTHOP QUEUEID NS", NS from CLOCK_MONOTONIC, so a test can
 *	compute the concurrency per destination from the overlaps.
 *
 * NEVER
 *	Never writes queue state (qmgr does); a malformed request is logged and
 *	the connection closed. Delays are capped at 10 s.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver_request.h"
#include "msg.h"
#include "server.h"
#include "strbuf.h"

#define AGENT_MAX_DELAY_MS 10000
#define AGENT_READ_MS      10000

static const char *agent_rules;
static const char *agent_record;

static long long agent_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void agent_log_event(const char *what, const struct deliver_request *req, int rcpts)
{
    struct strbuf line;
    int fd, i;

    strbuf_init(&line, 256, STRBUF_UNLIMITED);
    strbuf_printf(&line, "%s %s %s %lld", what, req->nexthop, req->queue_id, agent_ns());
    if (rcpts)
        strbuf_printf(&line, " from=<%s>", req->sender);
    for (i = 0; rcpts && i < req->rcpt_count; i++)
        strbuf_printf(&line, " %s", req->rcpt[i].address);
    strbuf_putc(&line, '\n');
    if ((fd = open(agent_record, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666)) >= 0) {
        if (write(fd, line.data, line.len) != (ssize_t) line.len)
            msg_warn("write %s: %m", agent_record);
        close(fd);
    }
    strbuf_release(&line);
}

/* The action for nexthop: 's', 'd', 'x' (site defer) or 'b', and a delay. */
static int agent_rule(const char *nexthop, long *delay_ms)
{
    char buf[512], host[256], action[32];
    int result = 's', lines = 0;
    FILE *fp = fopen(agent_rules, "r");

    *delay_ms = 0;
    if (fp == NULL)
        return result;
    while (fgets(buf, sizeof(buf), fp) && lines++ < 1000) {
        long d = 0;
        int n = sscanf(buf, "%255s %31s %ld", host, action, &d);

        if (n < 2 || host[0] == '#')
            continue;
        if (strcmp(host, "*") != 0 && strcasecmp(host, nexthop) != 0)
            continue;
        result = strcmp(action, "defer") == 0 ? 'd' : strcmp(action, "sitedefer") == 0 ? 'x'
            : strcmp(action, "bounce") == 0 ? 'b' : 's';
        *delay_ms = d < 0 ? 0 : d > AGENT_MAX_DELAY_MS ? AGENT_MAX_DELAY_MS : d;
        break;
    }
    fclose(fp);
    return result;
}

static void agent_service(int fd, const struct server_ctx *ctx)
{
    struct deliver_request req;
    struct strbuf why;
    long delay_ms;
    int action, i;

    (void) ctx;
    strbuf_init(&why, 128, 4096);
    if (deliver_request_read(fd, AGENT_READ_MS, &req, &why) < 0) {
        msg_warn("%s", why.data);
        strbuf_release(&why);
        return;
    }
    agent_log_event("begin", &req, 1);
    action = agent_rule(req.nexthop, &delay_ms);
    if (delay_ms > 0) {
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    for (i = 0; i < req.rcpt_count; i++) {
        int rc = action == 'd' ? deliver_report(&req, fd, i, DELIVER_DEFER, "4.2.0", req.nexthop,
                                                "test defer")
            : action == 'x' ? deliver_report(&req, fd, i, DELIVER_DEFER, "4.4.1", req.nexthop,
                                             "connect to test site: Connection refused")
            : action == 'b' ? deliver_report(&req, fd, i, DELIVER_BOUNCE, "5.1.1", req.nexthop,
                                             "test bounce")
            : deliver_report(&req, fd, i, DELIVER_SENT, "2.0.0", req.nexthop,
                             "delivered to test sink");

        if (rc < 0)
            break;
    }
    agent_log_event("end", &req, 0);
    (void) deliver_done(&req, fd);
    deliver_request_free(&req);
    strbuf_release(&why);
}

static void agent_post_init(const struct server_ctx *ctx)
{
    if (ctx->argc < 2)
        msg_fatal("usage: test-agent RULES RECORD");
    agent_rules = ctx->argv[0];
    agent_record = ctx->argv[1];
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_SINGLE,
        .post_init = agent_post_init,
        .service = agent_service,
    };

    server_main(argc, argv, &ops);
}
