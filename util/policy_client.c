/*
 * policy_client.c - Postfix's SMTPD access policy delegation protocol, the
 * client side: endpoint and per-service settings, one reused connection per
 * service, requests with a hard time budget and bounded retries, and a reply
 * parser that trusts nothing the server sends (see policy_client.h).
 *
 * Never: blocks without a clock (connect is non-blocking under poll, the
 * stream carries the request's deadline), grows a buffer past
 * POLICY_REPLY_MAX, sends a control byte inside a value, or reuses a
 * connection that has unread input (a server that closed it, or sent more
 * than one reply).
 * Failure: every problem with the server is returned as -1 with a reason;
 * the connection is then closed, so the next request starts clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "match_list.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "policy_client.h"
#include "stream.h"


struct policy_client {
    char *endpoint;             /* "inet:host:port" or "unix:path" */
    char *default_action;
    char *context;
    long long timeout;          /* seconds */
    long long max_idle;
    long long max_ttl;
    long long request_limit;    /* 0: unlimited */
    long long try_limit;
    long long retry_delay;

    struct stream *stream;      /* NULL: not connected */
    time_t connected;           /* when stream was opened */
    time_t last_used;           /* when the last request ended */
    long long requests;         /* served over this connection */
};

static time_t (*policy_clock)(void);

static time_t policy_now(void)
{
    return policy_clock ? policy_clock() : time(NULL);
}

void policy_client_set_clock(time_t (*now)(void))
{
    policy_clock = now;
}

/*
 * The reply.
 */

int policy_reply_parse(const char *buf, size_t len, size_t *used, struct strbuf *action,
                       struct strbuf *why)
{
    size_t pos = 0, end, vlen;
    const char *line, *eq, *nl;
    int have_action = 0;

    *used = 0;
    strbuf_reset(action);
    while (pos < len) {
        line = buf + pos;
        if ((nl = memchr(line, '\n', len - pos)) == NULL)
            break;
        end = (size_t) (nl - line);
        pos += end + 1;
        if (end > 0 && line[end - 1] == '\r')
            end--;
        if (memchr(line, 0, end) != NULL) {
            strbuf_set(why, "malformed reply: NUL byte in an attribute");
            return -1;
        }
        if (end == 0) {
            if (!have_action) {
                strbuf_set(why, "malformed reply: no action attribute");
                return -1;
            }
            *used = pos;
            return 1;
        }
        if ((eq = memchr(line, '=', end)) == NULL || eq == line) {
            strbuf_reset(why);
            strbuf_printf(why, "malformed reply: attribute without name=value: \"%.*s\"",
                          (int) (end > 64 ? 64 : end), line);
            return -1;
        }
        if ((size_t) (eq - line) != 6 || strncasecmp(line, "action", 6) != 0)
            continue;           /* attributes this client has no use for */
        if (have_action) {
            strbuf_set(why, "malformed reply: more than one action attribute");
            return -1;
        }
        vlen = end - 7;
        if (vlen > POLICY_ACTION_MAX) {
            strbuf_set(why, "malformed reply: action attribute too long");
            return -1;
        }
        if (vlen == 0) {
            strbuf_set(why, "malformed reply: empty action");
            return -1;
        }
        (void) strbuf_append(action, eq + 1, vlen);
        have_action = 1;
    }
    if (len >= POLICY_REPLY_MAX) {
        strbuf_reset(why);
        strbuf_printf(why, "malformed reply: no end within %d bytes", POLICY_REPLY_MAX);
        return -1;
    }
    return 0;
}

/*
 * The specification.
 */

static int policy_endpoint_valid(const char *ep, struct strbuf *err)
{
    const char *rest, *colon;

    if (strncasecmp(ep, "unix:", 5) == 0) {
        rest = ep + 5;
        if (*rest == 0 || strlen(rest) >= sizeof(((struct sockaddr_un *) 0)->sun_path)) {
            strbuf_printf(err, "bad socket path in \"%s\"", ep);
            return -1;
        }
        return 0;
    }
    if (strncasecmp(ep, "inet:", 5) == 0) {
        rest = ep + 5;
        colon = strrchr(rest, ':');
        if (colon == NULL || colon == rest || colon[1] == 0
            || (rest[0] == '[' && colon[-1] != ']')) {
            strbuf_printf(err, "expected inet:host:port, got \"%s\"", ep);
            return -1;
        }
        return 0;
    }
    strbuf_printf(err, "unsupported endpoint \"%s\": use inet:host:port or unix:pathname", ep);
    return -1;
}

static int policy_set_time(long long *dst, const char *name, const char *value,
                           struct strbuf *err)
{
    long long secs;

    if (config_parse_time(value, 's', &secs) < 0 || secs < 1) {
        strbuf_printf(err, "bad %s value \"%s\": want a time of at least 1s", name, value);
        return -1;
    }
    *dst = secs;
    return 0;
}

static int policy_set_int(long long *dst, const char *name, const char *value, long long min,
                          struct strbuf *err)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(value, &end, 10);
    if (errno || end == value || *end || n < min) {
        strbuf_printf(err, "bad %s value \"%s\": want a number of at least %lld", name, value,
                      min);
        return -1;
    }
    *dst = n;
    return 0;
}

/* Trims blanks at both ends in place. */
static char *policy_trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = 0;
    return s;
}

/* One "name=value" setting inside the braces; a "{ name = value }" form may hold blanks. */
static int policy_setting(struct policy_client *pc, char *word, struct strbuf *err)
{
    size_t len = strlen(word);
    char *name, *value, *eq;

    if (word[0] == '{' && len >= 2 && word[len - 1] == '}') {
        word[len - 1] = 0;
        word++;
    }
    if ((eq = strchr(word, '=')) == NULL) {
        strbuf_printf(err, "expected name=value, got \"%s\"", word);
        return -1;
    }
    *eq = 0;
    name = policy_trim(word);
    value = policy_trim(eq + 1);
    if (strcasecmp(name, "timeout") == 0)
        return policy_set_time(&pc->timeout, name, value, err);
    if (strcasecmp(name, "max_idle") == 0)
        return policy_set_time(&pc->max_idle, name, value, err);
    if (strcasecmp(name, "max_ttl") == 0)
        return policy_set_time(&pc->max_ttl, name, value, err);
    if (strcasecmp(name, "retry_delay") == 0)
        return policy_set_time(&pc->retry_delay, name, value, err);
    if (strcasecmp(name, "request_limit") == 0)
        return policy_set_int(&pc->request_limit, name, value, 0, err);
    if (strcasecmp(name, "try_limit") == 0)
        return policy_set_int(&pc->try_limit, name, value, 1, err);
    if (strcasecmp(name, "default_action") == 0) {
        if (*value == 0) {
            strbuf_set(err, "empty default_action");
            return -1;
        }
        free(pc->default_action);
        pc->default_action = xstrdup(value);
        return 0;
    }
    if (strcasecmp(name, "policy_context") == 0) {
        free(pc->context);
        pc->context = xstrdup(value);
        return 0;
    }
    strbuf_printf(err, "unknown policy service setting \"%s\"", name);
    return -1;
}

static int policy_parse_braces(struct policy_client *pc, const char *spec, struct strbuf *err)
{
    size_t len = strlen(spec);
    char *copy, *cp, *w;
    int bad = 0, ret = 0;

    if (len < 2 || spec[len - 1] != '}') {
        strbuf_printf(err, "unbalanced \"{\" in \"%s\"", spec);
        return -1;
    }
    copy = xstrndup(spec + 1, len - 2);
    cp = copy;
    while (ret == 0 && (w = match_list_next_word(&cp, &bad)) != NULL) {
        if (pc->endpoint == NULL) {
            pc->endpoint = xstrdup(w);
            ret = policy_endpoint_valid(w, err);
        } else {
            ret = policy_setting(pc, w, err);
        }
    }
    if (ret == 0 && bad) {
        strbuf_printf(err, "unbalanced \"{\" or \"}\" in \"%s\"", spec);
        ret = -1;
    }
    if (ret == 0 && pc->endpoint == NULL) {
        strbuf_printf(err, "no endpoint in \"%s\"", spec);
        ret = -1;
    }
    free(copy);
    return ret;
}

struct policy_client *policy_client_open(const char *spec, struct strbuf *err)
{
    struct policy_client *pc = xcalloc(1, sizeof(*pc));
    int ret;

    pc->timeout = var_smtpd_policy_service_timeout > 0 ? var_smtpd_policy_service_timeout : 100;
    pc->max_idle = var_smtpd_policy_service_max_idle > 0 ? var_smtpd_policy_service_max_idle
        : 300;
    pc->max_ttl = var_smtpd_policy_service_max_ttl > 0 ? var_smtpd_policy_service_max_ttl : 1000;
    pc->request_limit = var_smtpd_policy_service_request_limit;
    pc->try_limit = var_smtpd_policy_service_try_limit > 0 ? var_smtpd_policy_service_try_limit
        : 2;
    pc->retry_delay = var_smtpd_policy_service_retry_delay > 0
        ? var_smtpd_policy_service_retry_delay : 1;
    pc->default_action = xstrdup(var_smtpd_policy_service_default_action
                                 && *var_smtpd_policy_service_default_action
                                 ? var_smtpd_policy_service_default_action
                                 : "451 4.3.5 Server configuration problem");
    pc->context = xstrdup(var_smtpd_policy_service_policy_context
                          ? var_smtpd_policy_service_policy_context : "");

    spec += strspn(spec, " \t");
    if (*spec == '{') {
        ret = policy_parse_braces(pc, spec, err);
    } else {
        pc->endpoint = xstrdup(spec);
        ret = policy_endpoint_valid(spec, err);
    }
    if (ret < 0)
        policy_client_free(&pc);
    return pc;
}

void policy_client_free(struct policy_client **pcp)
{
    struct policy_client *pc = *pcp;

    if (pc == NULL)
        return;
    (void) stream_close(&pc->stream);
    free(pc->endpoint);
    free(pc->default_action);
    free(pc->context);
    free(pc);
    *pcp = NULL;
}

const char *policy_client_endpoint(const struct policy_client *pc)
{
    return pc->endpoint;
}

const char *policy_client_default_action(const struct policy_client *pc)
{
    return pc->default_action;
}

const char *policy_client_context(const struct policy_client *pc)
{
    return pc->context;
}

/*
 * The connection.
 */

/* The CLOCK_MONOTONIC time in milliseconds. */
static long long policy_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connects fd to sa under the remaining budget. 0, or -1 with errno. */
static int policy_connect_fd(int fd, const struct sockaddr *sa, socklen_t salen,
                             long long deadline_ms)
{
    struct pollfd pfd;
    socklen_t elen = sizeof(int);
    int flags, err = 0, r;
    long long left;

    if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -1;
    if (connect(fd, sa, salen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EAGAIN)
        return -1;
    for (;;) {
        if ((left = deadline_ms - policy_mono_ms()) <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        pfd.fd = fd;
        pfd.events = POLLOUT;
        r = poll(&pfd, 1, left > 60000 ? 60000 : (int) left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r > 0)
            break;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        return -1;
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

static int policy_connect_unix(const char *path, long long deadline_ms)
{
    struct sockaddr_un sun;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    if (policy_connect_fd(fd, (struct sockaddr *) &sun, sizeof(sun), deadline_ms) < 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* host:port, host may be [v6]; tries each address in turn. */
static int policy_connect_inet(const char *hostport, long long deadline_ms, struct strbuf *why)
{
    char *copy = xstrdup(hostport), *host = copy, *port = strrchr(copy, ':');
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, r, saved = 0;

    *port++ = 0;
    if (host[0] == '[') {
        host++;
        host[strlen(host) - 1] = 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
        strbuf_printf(why, "look up %s: %s", hostport, gai_strerror(r));
        free(copy);
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol)) < 0) {
            saved = errno;
            continue;
        }
        if (policy_connect_fd(fd, ai->ai_addr, ai->ai_addrlen, deadline_ms) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
        if (saved == ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    free(copy);
    if (fd < 0)
        strbuf_printf(why, "connect: %s", strerror(saved ? saved : ECONNREFUSED));
    return fd;
}

static void policy_disconnect(struct policy_client *pc)
{
    (void) stream_close(&pc->stream);
    pc->requests = 0;
}

/* Drops a connection that may not serve another request. */
static void policy_expire(struct policy_client *pc)
{
    time_t now = policy_now();

    if (pc->stream == NULL)
        return;
    if (now - pc->last_used >= pc->max_idle || now - pc->connected >= pc->max_ttl
        || (pc->request_limit > 0 && pc->requests >= pc->request_limit)
        || stream_input_ready(pc->stream))
        policy_disconnect(pc);
}

static int policy_connect(struct policy_client *pc, long long deadline_ms, struct strbuf *why)
{
    int fd;

    if (strncasecmp(pc->endpoint, "unix:", 5) == 0) {
        if ((fd = policy_connect_unix(pc->endpoint + 5, deadline_ms)) < 0)
            strbuf_printf(why, "connect: %s", strerror(errno));
    } else {
        fd = policy_connect_inet(pc->endpoint + 5, deadline_ms, why);
    }
    if (fd < 0)
        return -1;
    pc->stream = stream_fdopen(fd, 0);
    pc->connected = pc->last_used = policy_now();
    pc->requests = 0;
    return 0;
}

/* Writes one attribute, with control bytes replaced and the value cut at POLICY_VALUE_MAX. */
static void policy_put_attr(struct stream *s, const struct policy_attr *a)
{
    char value[POLICY_VALUE_MAX + 1];
    const char *v = a->value ? a->value : "";
    size_t i;

    for (i = 0; v[i] && i < POLICY_VALUE_MAX; i++)
        value[i] = (unsigned char) v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
    value[i] = 0;
    (void) stream_printf(s, "%s=%s\n", a->name, value);
}

/*
 * One attempt over a connection (made now or kept). 0, or -1 with why;
 * *stale is set when a kept connection turned out closed by the server
 * (reset, end of file or broken pipe before any reply byte).
 */
static int policy_attempt(struct policy_client *pc, const struct policy_attr *attrs, size_t n,
                          struct strbuf *action, struct strbuf *why, int *stale)
{
    int reused = pc->stream != NULL;
    long long budget = pc->timeout * 1000;
    char *reply;
    size_t len = 0, used;
    ssize_t got;
    size_t i;
    int r = 0;

    long long start = policy_mono_ms();

    if (budget > 24LL * 3600 * 1000)
        budget = 24LL * 3600 * 1000;
    if (pc->stream == NULL && policy_connect(pc, start + budget, why) < 0)
        return -1;
    /* What the connect used is gone from the budget. */
    budget -= policy_mono_ms() - start;
    if (budget < 1)
        budget = 1;
    stream_set_timeout(pc->stream, (int) budget);
    stream_set_deadline(pc->stream, (int) budget, 0);
    for (i = 0; i < n; i++)
        policy_put_attr(pc->stream, &attrs[i]);
    (void) stream_puts(pc->stream, "\n");
    if (stream_flush(pc->stream) < 0) {
        strbuf_printf(why, "write: %s", stream_strerror(pc->stream, STREAM_DIR_WRITE));
        *stale = reused && stream_status(pc->stream, STREAM_DIR_WRITE) == STREAM_ERROR;
        return -1;
    }
    reply = xmalloc(POLICY_REPLY_MAX);
    while ((r = policy_reply_parse(reply, len, &used, action, why)) == 0) {
        if ((got = stream_read(pc->stream, reply + len, POLICY_REPLY_MAX - len)) <= 0) {
            strbuf_printf(why, "read: %s", got == 0 ? "server closed the connection"
                          : stream_strerror(pc->stream, STREAM_DIR_READ));
            *stale = reused && len == 0
                && stream_status(pc->stream, STREAM_DIR_READ) != STREAM_TIMEOUT;
            r = -1;
            break;
        }
        len += (size_t) got;
    }
    free(reply);
    if (r < 0)
        return -1;
    stream_clear_deadline(pc->stream);
    pc->requests++;
    pc->last_used = policy_now();
    /* Bytes after the reply would be read as the next one: start over instead. */
    if (used < len)
        policy_disconnect(pc);
    return 0;
}

int policy_client_request(struct policy_client *pc, const struct policy_attr *attrs, size_t n,
                          struct strbuf *action, struct strbuf *why)
{
    long long attempt;
    int stale = 0, fresh_retry = 0;

    for (attempt = 1;; attempt++) {
        policy_expire(pc);
        strbuf_reset(why);
        if (policy_attempt(pc, attrs, n, action, why, &stale) == 0)
            return 0;
        policy_disconnect(pc);
        /* The server closed a kept connection before we noticed (it may end
         * idle connections sooner than max_idle): once per request, ask again
         * at once over a new one, without counting it as an attempt. */
        if (stale && !fresh_retry) {
            fresh_retry = 1;
            attempt--;
            stale = 0;
            continue;
        }
        msg_warn("problem talking to policy server %s: %s", pc->endpoint, why->data);
        if (attempt >= pc->try_limit)
            break;
        sleep((unsigned) (pc->retry_delay > 3600 ? 3600 : pc->retry_delay));
    }
    strbuf_reset(action);
    return -1;
}
