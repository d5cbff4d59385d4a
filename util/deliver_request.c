/*
 * deliver_request.c - both ends of the delivery protocol (deliver_request.h,
 * docs/ipc.md "delivery"): the agent reads one request frame that carries the
 * queue file descriptor, reports one status frame per recipient and a done
 * frame; qmgr builds requests and decodes the status frames. deliver_pass lets
 * an agent hand one recipient to another transport and report its outcome.
 *
 * Must never: trust a count, length or offset from the peer (the queue file's
 * size bounds every offset), send a string with CR, LF or NUL (reason texts
 * from remote servers are cleaned first), report a recipient twice, or write
 * queue state (qmgr alone does). Failure: a malformed frame or a timeout is -1
 * with a reason; a lost qmgr connection makes deliver_report return -1 so the
 * agent stops; passing a wrong index or a DSN of the wrong class is a caller
 * bug and panics.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "address.h"
#include "attr.h"
#include "deliver_request.h"
#include "dsn_split.h"
#include "ipc.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "stats.h"

_Static_assert(DELIVER_SENT == STATS_STATUS_SENT && DELIVER_DEFER == STATS_STATUS_DEFERRED
               && DELIVER_BOUNCE == STATS_STATUS_BOUNCED, "stats status codes follow deliver_status");
#include "qid.h"

#define DELIVER_FIXED_ATTRS 32  /* single attributes in a request, with room */
#define DELIVER_RCPT_LISTS  5   /* rcpt, orig_rcpt, dsn_orcpt, dsn_notify, offset */
#define DELIVER_STR_MAX     4096        /* any envelope string in a request */
#define DELIVER_KNOWN_FLAGS (DELIVER_FLAG_8BIT | DELIVER_FLAG_SMTPUTF8 \
                             | DELIVER_FLAG_BINARYMIME | DELIVER_FLAG_VERIFY)

/* What the agent side keeps behind req->priv. */
struct deliver_priv {
    struct attr_msg *in;        /* the request; owns every string in req */
    struct attr_msg *out;       /* status frames */
    unsigned char *reported;    /* per recipient: outcome sent */
};

static int deliver_send_timeout(void)
{
    long long ms = var_ipc_timeout * 1000LL;

    return ms > 0 && ms < INT_MAX ? (int) ms : INT_MAX;
}

static long long deliver_tv_usec(const struct timeval *tv)
{
    return (long long) tv->tv_sec * 1000000LL + tv->tv_usec;
}

static void deliver_usec_tv(long long usec, struct timeval *tv)
{
    if (usec < 0)
        usec = 0;
    tv->tv_sec = (time_t) (usec / 1000000LL);
    tv->tv_usec = (suseconds_t) (usec % 1000000LL);
}

/* --- the log line ------------------------------------------------------- */

void deliver_format_delay(struct strbuf *out, long sec, long usec, int max_digits)
{
    long long total, unit = 1000000, rounded;
    int digits = 0, i;
    char num[64];
    size_t len;

    if (sec < 0 || usec < 0)
        sec = usec = 0;
    total = (long long) sec * 1000000LL + usec;
    /* Two significant digits below 10 s, never finer than max_digits decimals. */
    if (sec < 10) {
        long long lim = 10000000;       /* 10 s in usec */

        while (digits < max_digits && digits < 6 && total < lim) {
            digits++;
            lim /= 10;
        }
    }
    for (i = 0; i < digits; i++)
        unit /= 10;
    rounded = (total + unit / 2) / unit;        /* in units of 10^-digits s */
    if (digits == 0) {
        snprintf(num, sizeof(num), "%lld", rounded);
    } else {
        long long scale = 1, frac;
        char fbuf[8];

        for (i = 0; i < digits; i++)
            scale *= 10;
        frac = rounded % scale;
        for (i = digits - 1; i >= 0; i--) {
            fbuf[i] = (char) ('0' + frac % 10);
            frac /= 10;
        }
        fbuf[digits] = 0;
        snprintf(num, sizeof(num), "%lld.%s", rounded / scale, fbuf);
        len = strlen(num);
        while (len > 0 && num[len - 1] == '0')
            num[--len] = 0;
        if (len > 0 && num[len - 1] == '.')
            num[--len] = 0;
    }
    strbuf_puts(out, num);
}

/* x = y - z, clamped at 0 for clocks that went back (as Postfix's DELTA). */
static void deliver_delta(struct timeval *x, const struct timeval *y, const struct timeval *z)
{
    long long d = deliver_tv_usec(y) - deliver_tv_usec(z);

    deliver_usec_tv(d < 0 ? 0 : d, x);
}

static void deliver_put_delay(struct strbuf *out, const char *text, const struct timeval *tv)
{
    strbuf_puts(out, text);
    deliver_format_delay(out, (long) tv->tv_sec, (long) tv->tv_usec,
                         (int) var_delay_logging_resolution_limit);
}

static int deliver_stamped(const struct timeval *tv)
{
    return tv->tv_sec > 0;
}

static const char *deliver_status_word(enum deliver_status status)
{
    switch (status) {
    case DELIVER_SENT:
        return "sent";
    case DELIVER_DEFER:
        return "deferred";
    case DELIVER_BOUNCE:
        return "bounced";
    }
    msg_panic("deliver_status_word: status %d", (int) status);
}

void deliver_log_format(struct strbuf *out, const struct deliver_request *req,
                        int rcpt_index, enum deliver_status status, const char *dsn,
                        const char *relay, const char *text, const struct timeval *now)
{
    const struct deliver_rcpt *rcpt;
    struct timeval delay, pdelay, adelay, sdelay, xdelay;

    if (rcpt_index < 0 || rcpt_index >= req->rcpt_count)
        msg_panic("deliver_log_format: recipient %d of %d", rcpt_index, req->rcpt_count);
    rcpt = req->rcpt + rcpt_index;
    strbuf_reset(out);
    strbuf_printf(out, "%s: to=<", req->queue_id);
    address_quote(rcpt->address, out);
    strbuf_puts(out, ">");
    if (rcpt->orig_rcpt && *rcpt->orig_rcpt && strcasecmp(rcpt->orig_rcpt, rcpt->address) != 0) {
        strbuf_puts(out, ", orig_to=<");
        address_quote(rcpt->orig_rcpt, out);
        strbuf_puts(out, ">");
    }
    strbuf_printf(out, ", relay=%s", relay);

    /* Postfix's log_adhoc: a = before qmgr, b = in qmgr, c = setup, d = transfer. */
    deliver_delta(&delay, now, &req->arrival);
    memset(&adelay, 0, sizeof(adelay));
    sdelay = xdelay = adelay;
    if (deliver_stamped(&req->active)) {
        deliver_delta(&pdelay, &req->active, &req->arrival);
        if (deliver_stamped(&req->received)) {
            deliver_delta(&adelay, &req->received, &req->active);
            if (deliver_stamped(&req->setup_done)) {
                deliver_delta(&sdelay, &req->setup_done, &req->received);
                deliver_delta(&xdelay, now, &req->setup_done);
            } else {
                deliver_delta(&xdelay, now, &req->received);
            }
        } else {
            deliver_delta(&adelay, now, &req->active);
        }
    } else {
        deliver_delta(&pdelay, now, &req->arrival);
    }
    deliver_put_delay(out, ", delay=", &delay);
    deliver_put_delay(out, ", delays=", &pdelay);
    deliver_put_delay(out, "/", &adelay);
    deliver_put_delay(out, "/", &sdelay);
    deliver_put_delay(out, "/", &xdelay);
    strbuf_printf(out, ", dsn=%s, status=%s (%s)", dsn, deliver_status_word(status), text);
}

/* --- validation shared by both sides ------------------------------------ */

/* "X.Y.Z" with X in 2,4,5 and Y, Z of 1..3 digits, and nothing else. */
static int deliver_dsn_valid(const char *dsn)
{
    size_t n = dsn_valid(dsn);

    return n > 0 && dsn[n] == 0;
}

static int deliver_dsn_class(enum deliver_status status)
{
    return status == DELIVER_SENT ? '2' : status == DELIVER_DEFER ? '4' : '5';
}

/* Copies text with every control character as a space, at most max bytes. */
static void deliver_clean_text(struct strbuf *out, const char *text, size_t max)
{
    size_t i;

    strbuf_reset(out);
    for (i = 0; text[i] && i < max; i++) {
        unsigned char c = (unsigned char) text[i];

        strbuf_putc(out, c < 0x20 || c == 0x7f ? ' ' : c);
    }
}

/* --- qmgr side: requests out, results in -------------------------------- */

int deliver_request_build(struct attr_msg *msg, const struct deliver_request *req)
{
    int i;

    if (req->rcpt_count < 1 || req->rcpt_count > DELIVER_MAX_RCPT) {
        errno = E2BIG;
        return -1;
    }
    attr_msg_reset(msg);
    attr_put_str(msg, "request", "deliver");
    attr_put_fd(msg, "queue_file", req->fd);
    attr_put_str(msg, "queue_name", req->queue_name);
    attr_put_str(msg, "queue_id", req->queue_id);
    attr_put_str(msg, "transport", req->transport);
    attr_put_str(msg, "nexthop", req->nexthop);
    attr_put_str(msg, "sender", req->sender);
    attr_put_str(msg, "dsn_envid", req->dsn_envid ? req->dsn_envid : "");
    attr_put_str(msg, "dsn_ret", req->dsn_ret ? req->dsn_ret : "");
    attr_put_str(msg, "client_name", req->client_name ? req->client_name : "");
    attr_put_str(msg, "client_address", req->client_addr ? req->client_addr : "");
    attr_put_i64(msg, "content_offset", (int64_t) req->content_offset);
    attr_put_i64(msg, "content_length", (int64_t) req->content_length);
    attr_put_u32(msg, "flags", req->flags);
    attr_put_i64(msg, "arrival_time", deliver_tv_usec(&req->arrival));
    attr_put_i64(msg, "active_time", deliver_tv_usec(&req->active));
    for (i = 0; i < req->rcpt_count; i++) {
        const struct deliver_rcpt *r = req->rcpt + i;

        attr_add_str(msg, "rcpt", r->address);
        attr_add_str(msg, "orig_rcpt", r->orig_rcpt ? r->orig_rcpt : "");
        attr_add_str(msg, "dsn_orcpt", r->dsn_orcpt ? r->dsn_orcpt : "");
        attr_add_u32(msg, "dsn_notify", (uint32_t) r->notify);
        attr_add_i64(msg, "offset", (int64_t) r->offset);
    }
    /* Builder failures stick; attr_msg_frame reports the first. */
    {
        const void *data;
        size_t len, nfds;
        const int *fds;

        return attr_msg_frame(msg, &data, &len, &fds, &nfds);
    }
}

int deliver_result_decode(struct attr_msg *msg, struct deliver_result *res,
                          struct strbuf *why)
{
    uint32_t done = 0, status;
    int64_t offset;
    int got;

    memset(res, 0, sizeof(*res));
    if ((got = attr_opt_u32(msg, "done", &done)) < 0)
        goto bad;
    if (attr_get_u32(msg, "status", &status) < 0)
        goto bad;
    if (got == 1) {
        if (done != 1 || status != IPC_STATUS_OK)
            goto bad;
        res->done = 1;
        goto consumed;
    }
    if (status > IPC_STATUS_REJECT)
        goto bad;
    res->status = status == IPC_STATUS_OK ? DELIVER_SENT
        : status == IPC_STATUS_DEFER ? DELIVER_DEFER : DELIVER_BOUNCE;
    if (attr_get_i64(msg, "offset", &offset) < 0 || offset <= 0
        || attr_get_str(msg, "dsn", &res->dsn, NULL) < 0
        || attr_get_str(msg, "relay", &res->relay, NULL) < 0
        || attr_get_str(msg, "reason", &res->text, NULL) < 0)
        goto bad;
    res->offset = (off_t) offset;
    if (!deliver_dsn_valid(res->dsn) || res->dsn[0] != deliver_dsn_class(res->status)) {
        strbuf_printf(why, "status frame: bad dsn \"%s\" for its status", res->dsn);
        return -1;
    }
  consumed:
    if (attr_check_consumed(msg) < 0)
        goto bad;
    return 0;
  bad:
    strbuf_printf(why, "malformed status frame: %s", attr_msg_reason(msg));
    return -1;
}

/* --- agent side ---------------------------------------------------------- */

static struct deliver_priv *deliver_priv_new(void)
{
    struct deliver_priv *p = xcalloc(1, sizeof(*p));
    struct attr_limits lim = {DELIVER_REQUEST_MAX_FRAME,
        DELIVER_FIXED_ATTRS + (size_t) DELIVER_RCPT_LISTS * DELIVER_MAX_RCPT, 0};

    p->in = attr_msg_new();
    attr_msg_set_limits(p->in, &lim);
    p->out = attr_msg_new();
    return p;
}

void deliver_request_free(struct deliver_request *req)
{
    struct deliver_priv *p = req->priv;

    if (req->fd >= 0 && p != NULL)
        close(req->fd);
    if (p != NULL) {
        attr_msg_free(&p->in);
        attr_msg_free(&p->out);
        free(p->reported);
        free(p);
    }
    free(req->rcpt);
    memset(req, 0, sizeof(*req));
    req->fd = -1;
}

static int deliver_get_str(struct attr_msg *m, const char *name, const char **val,
                           int nonempty)
{
    size_t len;

    if (attr_get_str(m, name, val, &len) < 0)
        return -1;
    if (len > DELIVER_STR_MAX || (nonempty && len == 0)) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

/* The recipient lists: parallel, each element checked. */
static int deliver_read_rcpts(struct deliver_request *req, struct attr_msg *m, off_t fsize,
                              struct strbuf *why)
{
    struct attr_iter it_r, it_o, it_x, it_n, it_off;
    ssize_t n = attr_iter_init(&it_r, m, "rcpt");
    int i;

    if (n < 1 || n > DELIVER_MAX_RCPT) {
        strbuf_printf(why, "request has %zd recipients", n);
        return -1;
    }
    if (attr_iter_init(&it_o, m, "orig_rcpt") != n || attr_iter_init(&it_x, m, "dsn_orcpt") != n
        || attr_iter_init(&it_n, m, "dsn_notify") != n
        || attr_iter_init(&it_off, m, "offset") != n) {
        strbuf_puts(why, "recipient lists differ in length");
        return -1;
    }
    req->rcpt = xcalloc((size_t) n, sizeof(*req->rcpt));
    req->rcpt_count = (int) n;
    for (i = 0; i < n; i++) {
        struct deliver_rcpt *r = req->rcpt + i;
        uint32_t notify;
        int64_t off;
        size_t len;

        if (attr_iter_str(&it_r, &r->address, &len) != 1 || len == 0 || len > DELIVER_STR_MAX
            || attr_iter_str(&it_o, &r->orig_rcpt, NULL) != 1
            || attr_iter_str(&it_x, &r->dsn_orcpt, NULL) != 1
            || attr_iter_u32(&it_n, &notify) != 1 || notify > 0xff
            || attr_iter_i64(&it_off, &off) != 1 || off <= 0 || off >= fsize) {
            strbuf_printf(why, "recipient %d is malformed", i + 1);
            return -1;
        }
        r->notify = (int) notify;
        r->offset = (off_t) off;
    }
    return 0;
}

static int deliver_decode_request(struct deliver_request *req, struct attr_msg *m,
                                  struct strbuf *why)
{
    const char *request;
    int64_t coff, clen, arrival, active;
    uint32_t flags;
    struct stat st;
    int fd;

    if (attr_get_str(m, "request", &request, NULL) < 0 || strcmp(request, "deliver") != 0) {
        strbuf_puts(why, "not a delivery request");
        return -1;
    }
    if (attr_get_fd(m, "queue_file", &fd) < 0) {
        strbuf_puts(why, "request without a queue file");
        return -1;
    }
    req->fd = fd;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        strbuf_puts(why, "the queue file is not a regular file");
        return -1;
    }
    if (deliver_get_str(m, "queue_name", &req->queue_name, 1) < 0
        || deliver_get_str(m, "queue_id", &req->queue_id, 1) < 0
        || deliver_get_str(m, "transport", &req->transport, 1) < 0
        || deliver_get_str(m, "nexthop", &req->nexthop, 0) < 0
        || deliver_get_str(m, "sender", &req->sender, 0) < 0
        || deliver_get_str(m, "dsn_envid", &req->dsn_envid, 0) < 0
        || deliver_get_str(m, "dsn_ret", &req->dsn_ret, 0) < 0
        || deliver_get_str(m, "client_name", &req->client_name, 0) < 0
        || deliver_get_str(m, "client_address", &req->client_addr, 0) < 0
        || attr_get_i64(m, "content_offset", &coff) < 0
        || attr_get_i64(m, "content_length", &clen) < 0
        || attr_get_u32(m, "flags", &flags) < 0
        || attr_get_i64(m, "arrival_time", &arrival) < 0
        || attr_get_i64(m, "active_time", &active) < 0) {
        strbuf_printf(why, "malformed delivery request: %s", attr_msg_reason(m));
        return -1;
    }
    if (!qid_valid(req->queue_id)) {
        strbuf_puts(why, "request with a malformed queue ID");
        return -1;
    }
    if (coff <= 0 || clen < 0 || coff > st.st_size || clen > st.st_size - coff) {
        strbuf_printf(why, "%s: content %lld+%lld outside the queue file (%lld bytes)",
                      req->queue_id, (long long) coff, (long long) clen,
                      (long long) st.st_size);
        return -1;
    }
    if (flags & ~DELIVER_KNOWN_FLAGS) {
        strbuf_printf(why, "%s: unknown request flags 0x%x", req->queue_id, flags);
        return -1;
    }
    req->content_offset = (off_t) coff;
    req->content_length = (off_t) clen;
    req->flags = flags;
    deliver_usec_tv(arrival, &req->arrival);
    deliver_usec_tv(active, &req->active);
    if (deliver_read_rcpts(req, m, st.st_size, why) < 0)
        return -1;
    if (attr_check_consumed(m) < 0) {
        strbuf_printf(why, "malformed delivery request: %s", attr_msg_reason(m));
        return -1;
    }
    return 0;
}

int deliver_request_read(int fd, int timeout_ms, struct deliver_request *req,
                         struct strbuf *why)
{
    struct deliver_priv *p = deliver_priv_new();

    memset(req, 0, sizeof(*req));
    req->fd = -1;
    req->priv = p;
    if (ipc_recv(fd, p->in, DELIVER_REQUEST_MAX_FRAME, timeout_ms) < 0) {
        if (errno == EPIPE)
            strbuf_puts(why, "the client closed the connection");
        else
            strbuf_printf(why, "read delivery request: %s%s%s", strerror(errno),
                          errno == EPROTO || errno == EMSGSIZE ? ": " : "",
                          errno == EPROTO || errno == EMSGSIZE ? attr_msg_reason(p->in) : "");
        deliver_request_free(req);
        return -1;
    }
    if (deliver_decode_request(req, p->in, why) < 0) {
        deliver_request_free(req);
        return -1;
    }
    p->reported = xcalloc((size_t) req->rcpt_count, 1);
    gettimeofday(&req->received, NULL);
    return 0;
}

void deliver_mark_setup_done(struct deliver_request *req)
{
    gettimeofday(&req->setup_done, NULL);
}

/* Sends one status frame; log says whether this agent writes the log line. */
static int deliver_report_common(struct deliver_request *req, int conn_fd, int rcpt_index,
                                 enum deliver_status status, const char *dsn,
                                 const char *relay, const char *text, int log)
{
    struct deliver_priv *p = req->priv;
    struct strbuf clean, line;
    struct timeval now;
    char soft_dsn[16];
    int rc;

    if (p == NULL || rcpt_index < 0 || rcpt_index >= req->rcpt_count)
        msg_panic("deliver_report: recipient %d of %d", rcpt_index, req->rcpt_count);
    if (p->reported[rcpt_index])
        msg_panic("deliver_report: %s: recipient %d reported twice", req->queue_id, rcpt_index);
    if (!deliver_dsn_valid(dsn) || dsn[0] != deliver_dsn_class(status))
        msg_panic("deliver_report: dsn \"%s\" does not fit status %s", dsn,
                  deliver_status_word(status));
    p->reported[rcpt_index] = 1;
    /* soft_bounce: the safety net keeps in the queue what would bounce (Postfix). */
    if (status == DELIVER_BOUNCE && var_soft_bounce) {
        snprintf(soft_dsn, sizeof(soft_dsn), "4%s", dsn + 1);
        dsn = soft_dsn;
        status = DELIVER_DEFER;
    }
    strbuf_init(&clean, 256, STRBUF_UNLIMITED);
    deliver_clean_text(&clean, text, DELIVER_TEXT_MAX);
    if (log) {
        struct strbuf crelay;

        strbuf_init(&crelay, 64, STRBUF_UNLIMITED);
        deliver_clean_text(&crelay, relay, 256);
        strbuf_init(&line, 512, STRBUF_UNLIMITED);
        gettimeofday(&now, NULL);
        deliver_log_format(&line, req, rcpt_index, status, dsn, crelay.data, clean.data, &now);
        msg_info("%s", line.data);
        /* Counted where it is logged, so a recipient passed on is counted once. */
        stats_count_delivery(req->transport, (int) status, status == DELIVER_SENT
                             ? (uint64_t) req->content_length : 0);
        strbuf_release(&line);
        strbuf_release(&crelay);
    }
    attr_msg_reset(p->out);
    attr_put_u32(p->out, "status", status == DELIVER_SENT ? IPC_STATUS_OK
                 : status == DELIVER_DEFER ? IPC_STATUS_DEFER : IPC_STATUS_REJECT);
    attr_put_i64(p->out, "offset", (int64_t) req->rcpt[rcpt_index].offset);
    attr_put_str(p->out, "dsn", dsn);
    deliver_clean_text(&clean, relay, 256);
    attr_put_str(p->out, "relay", clean.data);
    deliver_clean_text(&clean, text, DELIVER_TEXT_MAX);
    attr_put_str(p->out, "reason", clean.data);
    rc = ipc_send(conn_fd, p->out, deliver_send_timeout());
    if (rc < 0)
        msg_warn("%s: report to qmgr: %s", req->queue_id, strerror(errno));
    strbuf_release(&clean);
    return rc < 0 ? -1 : 0;
}

int deliver_report(struct deliver_request *req, int conn_fd, int rcpt_index,
                   enum deliver_status status, const char *dsn, const char *relay,
                   const char *text)
{
    return deliver_report_common(req, conn_fd, rcpt_index, status, dsn, relay, text, 1);
}

int deliver_done(struct deliver_request *req, int conn_fd)
{
    struct deliver_priv *p = req->priv;
    int i, rc = 0;

    if (p == NULL)
        msg_panic("deliver_done: no request");
    for (i = 0; i < req->rcpt_count && rc == 0; i++)
        if (!p->reported[i])
            rc = deliver_report(req, conn_fd, i, DELIVER_DEFER, "4.3.0", "none",
                                "delivery agent did not report a status");
    if (rc < 0)
        return -1;
    attr_msg_reset(p->out);
    attr_put_u32(p->out, "done", 1);
    attr_put_u32(p->out, "status", IPC_STATUS_OK);
    if (ipc_send(conn_fd, p->out, deliver_send_timeout()) < 0) {
        msg_warn("%s: done to qmgr: %s", req->queue_id, strerror(errno));
        return -1;
    }
    return 0;
}

ssize_t deliver_content_read(const struct deliver_request *req, off_t *pos, void *buf,
                             size_t len)
{
    off_t left;
    ssize_t n;

    if (*pos < 0 || *pos >= req->content_length)
        return 0;
    left = req->content_length - *pos;
    if ((off_t) len > left)
        len = (size_t) left;
    do {
        n = pread(req->fd, buf, len, req->content_offset + *pos);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if (n == 0) {
        errno = EIO;            /* the file is shorter than its size record said */
        return -1;
    }
    *pos += n;
    return n;
}

/* --- handing a recipient to another transport ---------------------------- */

/* Asks transport for one recipient; the outcome in res (strings in resp). 0 or -1. */
static int deliver_pass_call(struct deliver_request *req, int rcpt_index,
                             const char *transport, const char *nexthop, int timeout_ms,
                             struct attr_msg *resp, struct deliver_result *res,
                             struct strbuf *why)
{
    struct deliver_request one = *req;
    struct attr_msg *out = attr_msg_new();
    struct deliver_result tail;
    int fd, rc = -1;

    one.transport = transport;
    one.nexthop = nexthop;
    one.rcpt_count = 1;
    one.rcpt = req->rcpt + rcpt_index;
    if (deliver_request_build(out, &one) < 0) {
        strbuf_printf(why, "build request: %s", strerror(errno));
        attr_msg_free(&out);
        return -1;
    }
    if ((fd = ipc_connect(IPC_CLASS_PRIVATE, transport, timeout_ms)) < 0) {
        strbuf_printf(why, "connect to transport private/%s: %s", transport, strerror(errno));
        attr_msg_free(&out);
        return -1;
    }
    if (ipc_send(fd, out, timeout_ms) < 0) {
        strbuf_printf(why, "send to transport %s: %s", transport, strerror(errno));
        goto out;
    }
    /* Exactly one status frame (into resp, which keeps its strings), then done. */
    if (ipc_recv(fd, resp, DELIVER_RESULT_MAX_FRAME, timeout_ms) < 0) {
        strbuf_printf(why, "read from transport %s: %s", transport, strerror(errno));
        goto out;
    }
    if (deliver_result_decode(resp, res, why) < 0)
        goto out;
    if (res->done || res->offset != req->rcpt[rcpt_index].offset) {
        strbuf_printf(why, "transport %s did not report the recipient", transport);
        goto out;
    }
    /* The outcome is final once reported: a missing done frame must not turn a
     * delivery into a deferral (and so a duplicate), it is only worth a warning. */
    rc = 0;
    if (ipc_recv(fd, out, DELIVER_RESULT_MAX_FRAME, timeout_ms) < 0
        || deliver_result_decode(out, &tail, why) < 0 || !tail.done)
        msg_warn("%s: transport %s: no proper end of the request", req->queue_id, transport);
  out:
    close(fd);
    attr_msg_free(&out);
    return rc;
}

int deliver_pass(struct deliver_request *req, int conn_fd, int rcpt_index,
                 const char *transport, const char *nexthop, int timeout_ms)
{
    struct attr_msg *resp = attr_msg_new();
    struct deliver_result res;
    struct strbuf why, text;
    int rc;

    if (rcpt_index < 0 || rcpt_index >= req->rcpt_count)
        msg_panic("deliver_pass: recipient %d of %d", rcpt_index, req->rcpt_count);
    strbuf_init(&why, 128, STRBUF_UNLIMITED);
    if (deliver_pass_call(req, rcpt_index, transport, nexthop, timeout_ms, resp, &res,
                          &why) == 0) {
        /* The other agent logged the delivery; this one only passes the outcome on. */
        strbuf_init(&text, 128, STRBUF_UNLIMITED);
        strbuf_puts(&text, res.text);   /* res points into resp */
        rc = deliver_report_common(req, conn_fd, rcpt_index, res.status, res.dsn, res.relay,
                                   text.data, 0);
        strbuf_release(&text);
    } else {
        msg_warn("%s: %s", req->queue_id, why.data);
        rc = deliver_report(req, conn_fd, rcpt_index, DELIVER_DEFER, "4.3.0", "none",
                            "mail transport unavailable");
    }
    strbuf_release(&why);
    attr_msg_free(&resp);
    return rc;
}
