/*
 * smtp.c - the SMTP and LMTP delivery agent, Postfix's smtp(8)/lmtp(8).
 *
 * One program: installed as "smtp" it speaks SMTP, as "lmtp" (a link to the
 * same binary; the program name master runs decides) it speaks LMTP with the
 * lmtp_* timeouts and lmtp_lhlo_name. A SINGLE-mode worker: each connection
 * from qmgr carries one delivery request (util/deliver_request.h) for
 * recipients sharing a nexthop; the agent finds the servers (smtp_addr.c),
 * tries them in order within smtp_mx_address_limit addresses and
 * smtp_mx_session_limit sessions, reports each recipient as soon as its
 * outcome is final, and defers the rest with the last reason.
 *
 * Connection cache: the agent process keeps the session of its last
 * successful delivery open after the request is done, keyed by the request's
 * transport and nexthop. The next request for the same destination that this
 * process serves reuses it (no greeting, no EHLO) if it is younger than
 * smtp_connection_reuse_time_limit; a session the server closed meanwhile is
 * noticed at the MAIL reply and replaced by a fresh connection without
 * touching any recipient. A cached session waits at most
 * smtp_connection_cache_time_limit for its next request: then a SIGALRM
 * handler sends QUIT and half-closes it while the process idles in the
 * skeleton. Sessions are cached when smtp_connection_cache_on_demand is on
 * (qmgr gives one destination's mail to the agents in a burst, so a busy
 * destination finds its session warm) or the nexthop is listed in
 * smtp_connection_cache_destinations; otherwise QUIT follows at once. The
 * same parameters apply to LMTP. The cache key holds the request's TLS
 * policy (level, protocols, ciphers, match names, SNI), so a session is
 * reused only under the same TLS requirements; a plain-text retry after a
 * failed handshake is never cached. The expiry handler sends no plain-text
 * QUIT into a TLS session (it only half-closes it).
 *
 * TLS (smtp_tls.c): STARTTLS by smtp_tls_security_level and
 * smtp_tls_policy_maps; at "may" a failed handshake, or a TLS session lost
 * later, is retried on the same server without TLS once the message has
 * waited minimal_backoff_time (Postfix's rule), else the server is skipped.
 *
 * Must never: write queue state, report a recipient twice, or keep a
 * session beyond its limits. Failure: a malformed request is logged and
 * dropped (qmgr defers its recipients); recipients never reported are
 * deferred by deliver_done.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "deliver_request.h"
#include "match_list.h"
#include "msg.h"
#include "params.h"
#include "server.h"
#include "smtp.h"
#include "stream.h"

struct smtp_params smtp_par;

static struct smtp_session smtp_cache;          /* stream == NULL: empty */
static volatile sig_atomic_t smtp_cache_fd = -1;        /* for the alarm handler */
static volatile sig_atomic_t smtp_cache_expired;
static volatile sig_atomic_t smtp_cache_tls;            /* no plain-text QUIT into TLS */
static struct match_list *smtp_cache_dests;

static int smtp_ms(long long sec, int zero_ms)
{
    if (sec <= 0)
        return zero_ms;
    return sec > INT_MAX / 1000 ? INT_MAX : (int) (sec * 1000);
}

/* --- reports --------------------------------------------------------------- */

void smtp_report(struct smtp_state *st, int i, enum deliver_status status, const char *dsn,
                 const char *relay, const char *text)
{
    char fixed[16];
    char cls = status == DELIVER_SENT ? '2' : status == DELIVER_DEFER ? '4' : '5';
    int dots = 0;
    size_t k;

    if (st->done[i])
        return;
    st->done[i] = 1;
    st->pending--;
    /* The class always follows the outcome (a server's odd code is not believed). */
    snprintf(fixed, sizeof(fixed), "%s", dsn && *dsn ? dsn : "0.0.0");
    for (k = 0; fixed[k]; k++)
        dots += fixed[k] == '.';
    if (dots != 2)
        snprintf(fixed, sizeof(fixed), "%c.0.0", cls);
    fixed[0] = cls;
    if (st->qmgr_gone)
        return;
    if (deliver_report(st->req, st->conn_fd, i, status, fixed, relay && *relay ? relay : "none",
                       text) < 0)
        st->qmgr_gone = 1;
}

static void smtp_report_pending(struct smtp_state *st, enum deliver_status status,
                                const char *dsn, const char *relay, const char *text)
{
    int i;

    for (i = 0; i < st->req->rcpt_count; i++)
        if (!st->done[i])
            smtp_report(st, i, status, dsn, relay, text);
}

/* --- the connection cache -------------------------------------------------- */

/* Async-signal-safe: QUIT and half-close; the descriptor is closed later. */
static void smtp_cache_alarm(int sig)
{
    int fd = smtp_cache_fd;

    if (fd >= 0) {
        if (!smtp_cache_tls)
            (void) send(fd, "QUIT\r\n", 6, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void) shutdown(fd, SHUT_WR);
        smtp_cache_fd = -1;
        smtp_cache_expired = 1;
    }
}

/* Called first in each request with SIGALRM blocked: stops the clock and
 * handles an expiry that is pending or has happened. */
static void smtp_cache_stop_clock(void)
{
    sigset_t set, pend;
    struct timespec zero = {0, 0};

    alarm(0);
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    if (sigpending(&pend) == 0 && sigismember(&pend, SIGALRM)) {
        (void) sigtimedwait(&set, NULL, &zero);
        smtp_cache_alarm(SIGALRM);
    }
    if (smtp_cache_expired && smtp_cache.stream) {
        smtp_session_close(&smtp_cache);
    }
    smtp_cache_expired = 0;
    smtp_cache_fd = -1;
}

static void smtp_cache_drop(void)
{
    if (smtp_cache.stream)
        smtp_proto_quit(&smtp_cache);
    smtp_cache_fd = -1;
}

static int smtp_cache_wanted(const char *nexthop)
{
    if (var_smtp_connection_cache_on_demand)
        return 1;
    if (smtp_cache_dests && *nexthop
        && (match_list_string(smtp_cache_dests, nexthop) == 1
            || match_list_domain(smtp_cache_dests, nexthop) == 1))
        return 1;
    return 0;
}

/* Keeps s for the next request or ends it. */
static void smtp_cache_store(struct smtp_session *s, const char *nexthop)
{
    if (!smtp_cache_wanted(nexthop) || s->no_cache
        || time(NULL) - s->opened >= var_smtp_connection_reuse_time_limit) {
        smtp_proto_quit(s);
        return;
    }
    smtp_cache = *s;
    s->stream = NULL;
    smtp_cache_tls = smtp_cache.tls;
    smtp_cache_fd = smtp_cache.fd;
    alarm((unsigned) (var_smtp_connection_cache_time_limit > 0
                      ? var_smtp_connection_cache_time_limit : 1));
}

/* --- one request ----------------------------------------------------------- */

static void smtp_relay_name(struct smtp_session *s, const struct smtp_addr *a)
{
    snprintf(s->host, sizeof(s->host), "%s", a->host);
    snprintf(s->addr, sizeof(s->addr), "%s", a->addr);
    if (a->is_unix)
        snprintf(s->relay, sizeof(s->relay), "%s[%s]", a->host, a->addr);
    else
        snprintf(s->relay, sizeof(s->relay), "%s[%s]:%d", a->host, a->addr,
                 ntohs(a->sa.ss_family == AF_INET
                       ? ((const struct sockaddr_in *) &a->sa)->sin_port
                       : ((const struct sockaddr_in6 *) &a->sa)->sin6_port));
}

/* Ends a session after a transaction according to its result. */
static void smtp_session_end(struct smtp_session *s, enum smtp_sess_result res,
                             const char *key)
{
    if (res == SMTP_SESS_OK)
        smtp_cache_store(s, key);
    else if (res == SMTP_SESS_DONE_CLOSE)
        smtp_proto_quit(s);
    else
        smtp_session_close(s);
}

/* Tries the cached session; 1 when it carried the transaction. */
static int smtp_try_cached(struct smtp_state *st, const char *key)
{
    struct smtp_session s;
    enum smtp_sess_result res;

    if (smtp_cache.stream == NULL)
        return 0;
    if (strcmp(smtp_cache.dest, key) != 0
        || time(NULL) - smtp_cache.opened >= var_smtp_connection_reuse_time_limit) {
        smtp_cache_drop();
        return 0;
    }
    s = smtp_cache;
    smtp_cache.stream = NULL;
    s.reused++;
    deliver_mark_setup_done(st->req);
    res = smtp_proto_mail(st, &s);
    /* No plain-text retry of a reused session: fresh connections follow. */
    st->tls_retry_plain = 0;
    if (res == SMTP_SESS_STALE) {
        smtp_session_close(&s);
        return 0;
    }
    smtp_session_end(&s, res, key);
    return 1;
}

static void smtp_deliver(struct smtp_state *st)
{
    const struct deliver_request *req = st->req;
    struct smtp_addr_list *list = malloc(sizeof(*list));
    struct smtp_fail fail;
    struct strbuf why;
    const char *domain = req->rcpt_count > 0 ? address_domain(req->rcpt[0].address) : NULL;
    char key[sizeof(smtp_cache.dest)], tls_key[2048];
    int i, sessions = 0, setup_marked = 0, plain_next = 0;

    if (list == NULL)
        msg_fatal("out of memory");
    strbuf_init(&fail.text, 256, DELIVER_TEXT_MAX);
    strbuf_init(&why, 256, 1024);
    if (smtp_tls_policy_find(req->nexthop, domain, &st->tls) < 0) {
        smtp_cache_drop();
        smtp_report_pending(st, DELIVER_DEFER, "4.7.5", "none", "client TLS configuration problem");
        goto out;
    }
    /* A cached session serves only requests with the same TLS requirements. */
    smtp_tls_policy_key(&st->tls, tls_key, sizeof(tls_key));
    snprintf(key, sizeof(key), "%s/%s/%s", req->transport, req->nexthop, tls_key);
    if (smtp_addr_resolve(req->nexthop, domain, list, &fail) < 0) {
        smtp_cache_drop();
        smtp_report_pending(st, fail.status, fail.dsn, "none", fail.text.data);
        goto out;
    }
    st->final = list->count <= 1;
    if (smtp_try_cached(st, key)) {
        setup_marked = 1;
        sessions++;
    }
    for (i = 0; i < list->count && st->pending > 0 && !st->qmgr_gone; i++) {
        const struct smtp_addr *a = &list->a[i];
        struct smtp_session s;
        enum smtp_sess_result res;
        int hard;

        if (var_smtp_mx_session_limit > 0 && sessions >= var_smtp_mx_session_limit)
            break;
        st->tls_plain = plain_next;
        plain_next = 0;
        memset(&s, 0, sizeof(s));
        smtp_relay_name(&s, a);
        s.is_unix = a->is_unix;
        s.is_wrapper = !smtp_par.lmtp && var_smtp_tls_wrappermode;
        /* A retry in plain text after a failed handshake is never reused. */
        s.no_cache = st->tls_plain;
        strbuf_reset(&why);
        if ((s.fd = smtp_connect(a, smtp_par.connect_ms, &why)) < 0) {
            strbuf_reset(&st->last_why);
            strbuf_printf(&st->last_why, "connect to %s: %s", s.relay, why.data);
            snprintf(st->last_dsn, sizeof(st->last_dsn), "4.4.1");
            snprintf(st->last_relay, sizeof(st->last_relay), "%s", "none");
            msg_info("%s: %s", req->queue_id, st->last_why.data);
            continue;
        }
        sessions++;
        st->final = i == list->count - 1
            || (var_smtp_mx_session_limit > 0 && sessions >= var_smtp_mx_session_limit);
        s.stream = stream_fdopen(s.fd, 0);
        s.opened = time(NULL);
        snprintf(s.dest, sizeof(s.dest), "%s", key);
        if (smtp_proto_hello(st, &s, &hard) < 0) {
            smtp_session_close(&s);
            if (st->tls_retry_plain) {
                /* Opportunistic TLS failed: the same server again, in plain text. */
                msg_info("%s: %s", req->queue_id, st->last_why.data);
                st->tls_retry_plain = 0;
                plain_next = 1;
                sessions--;
                i--;
                continue;
            }
            if (hard && st->final)
                smtp_report_pending(st, DELIVER_BOUNCE, st->last_dsn, st->last_relay,
                                    st->last_why.data);
            else
                msg_info("%s: %s", req->queue_id, st->last_why.data);
            continue;
        }
        if (!setup_marked) {
            deliver_mark_setup_done(st->req);
            setup_marked = 1;
        }
        res = smtp_proto_mail(st, &s);
        smtp_session_end(&s, res == SMTP_SESS_STALE ? SMTP_SESS_FAIL : res, key);
        if (st->tls_retry_plain) {
            /* The TLS session broke: the same server again, in plain text. */
            st->tls_retry_plain = 0;
            if (st->pending > 0 && !st->qmgr_gone) {
                msg_info("%s: %s", req->queue_id, st->last_why.data);
                plain_next = 1;
                sessions--;
                i--;
            }
        }
    }
    if (st->pending > 0) {
        if (st->last_why.len == 0)
            strbuf_set(&st->last_why, "no server could be reached");
        smtp_report_pending(st, DELIVER_DEFER, st->last_dsn[0] ? st->last_dsn : "4.4.1",
                            st->last_relay[0] ? st->last_relay : "none", st->last_why.data);
    }

out:
    strbuf_release(&fail.text);
    strbuf_release(&why);
    free(list);
}

static void smtp_service(int fd, const struct server_ctx *ctx)
{
    struct deliver_request req;
    struct smtp_state st;
    struct strbuf why;
    sigset_t alrm;

    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    sigprocmask(SIG_BLOCK, &alrm, NULL);
    smtp_cache_stop_clock();
    strbuf_init(&why, 256, 4096);
    if (deliver_request_read(fd, smtp_ms(var_ipc_timeout, INT_MAX), &req, &why) < 0) {
        msg_warn("delivery request: %s", why.data);
        strbuf_release(&why);
        if (smtp_cache.stream) {
            smtp_cache_fd = smtp_cache.fd;
            alarm((unsigned) (var_smtp_connection_cache_time_limit > 0
                              ? var_smtp_connection_cache_time_limit : 1));
        }
        return;
    }
    memset(&st, 0, sizeof(st));
    st.req = &req;
    st.conn_fd = fd;
    st.pending = req.rcpt_count;
    if ((st.done = calloc((size_t) req.rcpt_count + 1, 1)) == NULL)
        msg_fatal("out of memory");
    strbuf_init(&st.last_why, 256, DELIVER_TEXT_MAX);
    smtp_deliver(&st);
    if (!st.qmgr_gone)
        (void) deliver_done(&req, fd);
    free(st.done);
    strbuf_release(&st.last_why);
    deliver_request_free(&req);
    strbuf_release(&why);
}

/* --- start-up -------------------------------------------------------------- */

static void smtp_pre_init(const struct server_ctx *ctx)
{
    smtp_tls_preload(strcmp(msg_program(), "lmtp") == 0);
}

static void smtp_post_init(const struct server_ctx *ctx)
{
    struct sigaction sa;
    struct strbuf err;

    if (ctx->argc > 0)
        msg_fatal("unexpected command-line argument: %s", ctx->argv[0]);
    memset(&smtp_par, 0, sizeof(smtp_par));
    smtp_par.lmtp = strcmp(msg_program(), "lmtp") == 0;
    if (smtp_par.lmtp) {
        smtp_par.proto = "LMTP";
        smtp_par.helo_name = var_lmtp_lhlo_name;
        smtp_par.connect_ms = smtp_ms(var_lmtp_connect_timeout, 120 * 1000);
        smtp_par.helo_ms = smtp_ms(var_lmtp_lhlo_timeout, 1000);
        smtp_par.mail_ms = smtp_ms(var_lmtp_mail_timeout, 1000);
        smtp_par.rcpt_ms = smtp_ms(var_lmtp_rcpt_timeout, 1000);
        smtp_par.data_init_ms = smtp_ms(var_lmtp_data_init_timeout, 1000);
        smtp_par.data_xfer_ms = smtp_ms(var_lmtp_data_xfer_timeout, 1000);
        smtp_par.data_done_ms = smtp_ms(var_lmtp_data_done_timeout, 1000);
        smtp_par.quit_ms = smtp_ms(var_lmtp_quit_timeout, 1000);
        smtp_par.rset_ms = smtp_ms(var_lmtp_rset_timeout, 1000);
        smtp_par.starttls_ms = smtp_ms(var_smtp_starttls_timeout, 1000);
        smtp_par.default_port = var_lmtp_tcp_port;
    } else {
        smtp_par.proto = "SMTP";
        smtp_par.helo_name = var_smtp_helo_name;
        smtp_par.connect_ms = smtp_ms(var_smtp_connect_timeout, 120 * 1000);
        smtp_par.helo_ms = smtp_ms(var_smtp_helo_timeout, 1000);
        smtp_par.mail_ms = smtp_ms(var_smtp_mail_timeout, 1000);
        smtp_par.rcpt_ms = smtp_ms(var_smtp_rcpt_timeout, 1000);
        smtp_par.data_init_ms = smtp_ms(var_smtp_data_init_timeout, 1000);
        smtp_par.data_xfer_ms = smtp_ms(var_smtp_data_xfer_timeout, 1000);
        smtp_par.data_done_ms = smtp_ms(var_smtp_data_done_timeout, 1000);
        smtp_par.quit_ms = smtp_ms(var_smtp_quit_timeout, 1000);
        smtp_par.rset_ms = smtp_ms(var_smtp_rset_timeout, 1000);
        smtp_par.starttls_ms = smtp_ms(var_smtp_starttls_timeout, 1000);
        smtp_par.default_port = var_smtp_tcp_port;
    }
    if (smtp_par.helo_name == NULL || *smtp_par.helo_name == 0)
        smtp_par.helo_name = var_myhostname;
    if (strpbrk(smtp_par.helo_name, " \t\r\n") != NULL)
        msg_fatal("%s: bad host name \"%s\"", smtp_par.lmtp ? "lmtp_lhlo_name" : "smtp_helo_name",
                  smtp_par.helo_name);
    strbuf_init(&err, 128, 1024);
    if (var_smtp_connection_cache_destinations && *var_smtp_connection_cache_destinations
        && (smtp_cache_dests = match_list_open("smtp_connection_cache_destinations",
                                               MATCH_LIST_STRING,
                                               var_smtp_connection_cache_destinations,
                                               &err)) == NULL)
        msg_fatal("%s", err.data);
    strbuf_release(&err);
    smtp_addr_init();
    smtp_tls_init();
    smtp_sasl_init();
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = smtp_cache_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
}

static void smtp_pre_exit(const struct server_ctx *ctx)
{
    alarm(0);
    if (smtp_cache.stream && !smtp_cache_expired)
        smtp_cache_drop();
    else if (smtp_cache.stream)
        smtp_session_close(&smtp_cache);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_SINGLE,
        .pre_init = smtp_pre_init,
        .post_init = smtp_post_init,
        .service = smtp_service,
        .pre_exit = smtp_pre_exit,
    };

    server_main(argc, argv, &ops);
}
