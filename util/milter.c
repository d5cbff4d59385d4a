/*
 * milter.c - the milter client (milter.h): list parsing, sockets,
 * negotiation, events, replies, default actions, and the hand-over of the
 * connections between smtpd and cleanup.
 *
 * NEVER
 *	Never waits without a bound: connect under connect_timeout, envelope
 *	commands under command_timeout, content under content_timeout, each a
 *	deadline for the whole reply (PROGRESS restarts it). Never trusts a
 *	byte from a filter (milter_proto.c decodes; packets are bounded before
 *	they are read). Never raises SIGPIPE (MSG_NOSIGNAL), never changes the
 *	socket's file status flags (MSG_DONTWAIT), because the same open socket
 *	is shared by smtpd and cleanup.
 *
 * FAILURE
 *	A filter that cannot be reached, refuses the negotiation, asks for
 *	more than was offered, times out, closes, or sends a malformed or
 *	unexpected reply is logged ("milter NAME: STAGE: reason"), closed, and
 *	gives its default_action for this and every later event of the
 *	session (accept: it is left out).
 */
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#include "milter.h"
#include "milter_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"

#define MILTER_MAX           16         /* ATTR_MAX_FDS: every one must travel to cleanup */
#define MILTER_NAME_MAX      512
#define MILTER_ARGS_MAX      64         /* ESMTP parameters in MAIL/RCPT */
#define MILTER_MACRO_VAL_MAX 4096
#define MILTER_EDITS_MAX     10000      /* modification requests per message */

enum milter_defact {
    MILTER_DEF_ACCEPT,
    MILTER_DEF_REJECT,
    MILTER_DEF_TEMPFAIL,
    MILTER_DEF_QUARANTINE,
    MILTER_DEF_SHUTDOWN,
};

enum milter_state {
    MILTER_S_NEW,               /* not connected yet */
    MILTER_S_READY,
    MILTER_S_ACCEPT_CONN,       /* accepted the session: left out to the end */
    MILTER_S_ACCEPT_MSG,        /* accepted this message */
    MILTER_S_REJECT_CONN,       /* rejected the session: every command gets the reply */
    MILTER_S_FAILED,            /* default action from now on */
    MILTER_S_CLOSED,
};

/* Extra macro list slot after the SMFIM stages. */
#define MILTER_MACROS_UNKNOWN MILTER_STAGE_COUNT

struct milter {
    char *name;
    int fd;
    long long conn_to, cmd_to, msg_to;  /* seconds */
    enum milter_defact defact;
    int version;                /* configured (2..6), then negotiated */
    uint32_t actions, protocol; /* negotiated */
    size_t chunk;               /* body chunk size */
    char *macros[MILTER_STAGE_COUNT + 1];
    enum milter_state state;
    char *reject;               /* REJECT_CONN reply */
    int skip_body;
    int offered;                /* the configured version, offered at negotiation */
    int at_rest;                /* its last command was end of message (or UNKNOWN)
                                 * answered "continue": where libmilter takes
                                 * QUIT_NC and then a new CONNECT */
};

/*
 * Connections kept open across sessions: at the end of a session a filter
 * at rest gets QUIT_NC ("quit, new connection follows") instead of QUIT, and
 * the next session of this process starts on the same socket with a CONNECT,
 * without a new connect() and negotiation. At most one per milter name.
 */
static struct milter *milter_pool[MILTER_MAX];
static size_t milter_pool_n;

struct milters {
    struct milter *m[MILTER_MAX];
    size_t n;
    size_t sel;                 /* (size_t) -1: all */
    milter_macro_fn macro_fn;
    void *macro_ctx;
    char **imp;                 /* imported "name=value" macros */
    size_t nimp;
    char **defaults;            /* milter_macro_defaults: "{name}=value" */
    size_t ndefaults;
    char *log_id;
    struct strbuf pkt, in, verdict, failed, canon, rest;
    char *quarantine;           /* QUARANTINE reason of this filter's pass */
    size_t edits;
};

static const char *milter_stage_macro_param(int stage)
{
    switch (stage) {
    case MILTER_STAGE_CONNECT: return var_milter_connect_macros;
    case MILTER_STAGE_HELO: return var_milter_helo_macros;
    case MILTER_STAGE_MAIL: return var_milter_mail_macros;
    case MILTER_STAGE_RCPT: return var_milter_rcpt_macros;
    case MILTER_STAGE_DATA: return var_milter_data_macros;
    case MILTER_STAGE_EOM: return var_milter_end_of_data_macros;
    case MILTER_STAGE_EOH: return var_milter_end_of_header_macros;
    default: return var_milter_unknown_command_macros;
    }
}

/* A macro list with its words separated by single spaces. */
static char *milter_macro_list(const char *list)
{
    struct strbuf out;

    strbuf_init(&out, 64, STRBUF_UNLIMITED);
    while (list && *list) {
        size_t n;

        list += strspn(list, ", \t\r\n");
        if ((n = strcspn(list, ", \t\r\n")) == 0)
            break;
        if (out.len)
            strbuf_putc(&out, ' ');
        strbuf_append(&out, list, n);
        list += n;
    }
    return strbuf_steal(&out);
}

/* --- milter_macro_defaults ------------------------------------------------------ */

/* "{name}" for "name" or "{name}": the form default entries are matched in. */
static void milter_macro_canon(struct strbuf *out, const char *name, size_t len)
{
    strbuf_reset(out);
    if (len > 0 && name[0] == '{')
        strbuf_append(out, name, len);
    else {
        strbuf_putc(out, '{');
        strbuf_append(out, name, len);
        strbuf_putc(out, '}');
    }
}

static size_t milter_trim(const char **s, size_t len)
{
    while (len > 0 && (**s == ' ' || **s == '\t'))
        (*s)++, len--;
    while (len > 0 && ((*s)[len - 1] == ' ' || (*s)[len - 1] == '\t'))
        len--;
    return len;
}

/*
 * Parses milter_macro_defaults: "name=value" or "{name}=value" words
 * separated by commas or spaces, or "{ name = value }" groups (spaces kept
 * inside the value). Each entry becomes "{name}=value" in *out (may be
 * NULL to only check); the first of several entries for a name wins.
 */
static int milter_defaults_parse(const char *spec, char ***out, size_t *nout, struct strbuf *why)
{
    struct strbuf canon, entry;
    const char *p = spec;
    int r = 0;

    strbuf_init(&canon, 64, 4096);
    strbuf_init(&entry, 128, MILTER_MACRO_VAL_MAX + 256);
    while (p && *p && r == 0) {
        const char *tok, *eq, *name, *value;
        size_t len, nlen, vlen, i;

        p += strspn(p, ", \t\r\n");
        if (*p == 0)
            break;
        tok = p;
        if (*p == '{' && p[strcspn(p, "}")] == '}' && p[strcspn(p, "}") + 1] != '=') {
            /* { name = value } */
            len = strcspn(p, "}");
            tok = p + 1;
            p += len + 1;
            len--;
        } else {
            len = 0;
            while (p[len] && p[len] != ',' && p[len] != ' ' && p[len] != '\t'
                   && p[len] != '\r' && p[len] != '\n') {
                if (p[len] == '{')      /* a {name} before the = */
                    while (p[len] && p[len] != '}')
                        len++;
                if (p[len])
                    len++;
            }
            p += len;
        }
        if ((eq = memchr(tok, '=', len)) == NULL) {
            strbuf_printf(why, "milter_macro_defaults: expected name=value, got \"%.*s\"",
                          (int) (len > 100 ? 100 : len), tok);
            r = -1;
            break;
        }
        name = tok;
        nlen = milter_trim(&name, (size_t) (eq - tok));
        value = eq + 1;
        vlen = milter_trim(&value, len - (size_t) (eq - tok) - 1);
        if (nlen == 0 || (name[0] == '{' && (nlen < 3 || name[nlen - 1] != '}'))
            || memchr(name, '=', nlen) || nlen > 100 || vlen > MILTER_MACRO_VAL_MAX) {
            strbuf_printf(why, "milter_macro_defaults: bad entry \"%.*s\"",
                          (int) (len > 100 ? 100 : len), tok);
            r = -1;
            break;
        }
        milter_macro_canon(&canon, name, nlen);
        if (out == NULL)
            continue;
        for (i = 0; i < *nout; i++)
            if (strncmp((*out)[i], canon.data, canon.len) == 0 && (*out)[i][canon.len] == '=')
                break;
        if (i < *nout)
            continue;
        strbuf_reset(&entry);
        strbuf_printf(&entry, "%s=%.*s", canon.data, (int) vlen, value);
        *out = xreallocarray(*out, *nout + 1, sizeof(char *));
        (*out)[(*nout)++] = xstrdup(entry.data);
    }
    strbuf_release(&canon);
    strbuf_release(&entry);
    return r;
}

int milter_macro_defaults_valid(const char *spec, struct strbuf *why)
{
    return milter_defaults_parse(spec, NULL, NULL, why) == 0;
}

static int milter_parse_defact(const char *v, enum milter_defact *a)
{
    static const char *names[] = {"accept", "reject", "tempfail", "quarantine", "shutdown"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(v, names[i]) == 0) {
            *a = (enum milter_defact) i;
            return 0;
        }
    return -1;
}

int milter_default_action_valid(const char *name)
{
    enum milter_defact a;

    return milter_parse_defact(name, &a) == 0;
}

static int milter_parse_version(const char *v, int *version)
{
    if (v[0] < '2' || v[0] > '6' || v[1] != 0)
        return -1;
    *version = v[0] - '0';
    return 0;
}

static void milter_free_one(struct milter **mp)
{
    struct milter *m = *mp;
    int i;

    if (m == NULL)
        return;
    if (m->fd >= 0)
        (void) close(m->fd);
    for (i = 0; i <= MILTER_STAGE_COUNT; i++)
        free(m->macros[i]);
    free(m->name);
    free(m->reject);
    free(m);
    *mp = NULL;
}

static struct milter *milter_new(const char *name, size_t len)
{
    struct milter *m = xcalloc(1, sizeof(*m));
    int i;

    m->name = xstrndup(name, len);
    m->fd = -1;
    m->conn_to = var_milter_connect_timeout;
    m->cmd_to = var_milter_command_timeout;
    m->msg_to = var_milter_content_timeout;
    if (milter_parse_defact(var_milter_default_action, &m->defact) < 0)
        m->defact = MILTER_DEF_TEMPFAIL;
    if (milter_parse_version(var_milter_protocol, &m->version) < 0)
        m->version = 6;
    m->offered = m->version;
    for (i = 0; i <= MILTER_STAGE_COUNT; i++)
        m->macros[i] = milter_macro_list(milter_stage_macro_param(i));
    m->chunk = MILTER_CHUNK_SIZE;
    return m;
}

static int milter_name_ok(const char *name, size_t len)
{
    return len > 0 && len <= MILTER_NAME_MAX
        && ((len > 5 && strncmp(name, "unix:", 5) == 0)
            || (len > 5 && strncmp(name, "inet:", 5) == 0)
            || (len > 6 && strncmp(name, "inet6:", 6) == 0));
}

/* "key=value" inside braces. */
static int milter_setting(struct milter *m, const char *kv, size_t len, struct strbuf *why)
{
    const char *eq = memchr(kv, '=', len);
    char *key, *value;
    long long secs;
    int r = 0;

    if (eq == NULL) {
        strbuf_printf(why, "milter %s: expected name=value, got \"%.*s\"", m->name,
                      (int) (len > 100 ? 100 : len), kv);
        return -1;
    }
    key = xstrndup(kv, (size_t) (eq - kv));
    value = xstrndup(eq + 1, len - (size_t) (eq - kv) - 1);
    if (strcmp(key, "connect_timeout") == 0 || strcmp(key, "command_timeout") == 0
        || strcmp(key, "content_timeout") == 0) {
        if (config_parse_time(value, 's', &secs) < 0 || secs <= 0) {
            strbuf_printf(why, "milter %s: bad %s value \"%s\"", m->name, key, value);
            r = -1;
        } else if (key[1] == 'o' && key[2] == 'n' && key[3] == 'n') {
            m->conn_to = secs;
        } else if (key[2] == 'm') {
            m->cmd_to = secs;
        } else {
            m->msg_to = secs;
        }
    } else if (strcmp(key, "default_action") == 0) {
        if (milter_parse_defact(value, &m->defact) < 0) {
            strbuf_printf(why, "milter %s: bad default_action \"%s\"", m->name, value);
            r = -1;
        }
    } else if (strcmp(key, "protocol") == 0) {
        if (milter_parse_version(value, &m->version) < 0) {
            strbuf_printf(why, "milter %s: bad protocol \"%s\" (2 to 6)", m->name, value);
            r = -1;
        }
        m->offered = m->version;
    } else {
        strbuf_printf(why, "milter %s: unknown setting \"%s\"", m->name, key);
        r = -1;
    }
    free(key);
    free(value);
    return r;
}

struct milters *milters_create(const char *spec, struct strbuf *why)
{
    struct milters *ms = xcalloc(1, sizeof(*ms));
    const char *p = spec;

    ms->sel = (size_t) -1;
    strbuf_init(&ms->pkt, 1024, STRBUF_UNLIMITED);
    strbuf_init(&ms->in, 1024, MILTER_PKT_MAX + 1);
    strbuf_init(&ms->verdict, 128, STRBUF_UNLIMITED);
    strbuf_init(&ms->failed, 16, STRBUF_UNLIMITED);
    strbuf_init(&ms->canon, 64, 4096);
    strbuf_init(&ms->rest, 16, STRBUF_UNLIMITED);
    if (milter_defaults_parse(var_milter_macro_defaults, &ms->defaults, &ms->ndefaults, why) < 0)
        goto bad;
    while (p && *p) {
        size_t n;
        struct milter *m;

        p += strspn(p, ", \t\r\n");
        if (*p == 0)
            break;
        if (ms->n >= MILTER_MAX) {
            strbuf_printf(why, "more than %d milters", MILTER_MAX);
            goto bad;
        }
        if (*p == '{') {
            const char *close = strchr(p, '}'), *q = p + 1;
            int first = 1;

            if (close == NULL) {
                strbuf_printf(why, "missing '}' in \"%s\"", p);
                goto bad;
            }
            m = NULL;
            while (q < close) {
                q += strspn(q, ", \t\r\n");
                if (q >= close)
                    break;
                n = strcspn(q, ", \t\r\n}");
                if (q + n > close)
                    n = (size_t) (close - q);
                if (first) {
                    if (!milter_name_ok(q, n)) {
                        strbuf_printf(why, "bad milter address \"%.*s\"",
                                      (int) (n > 100 ? 100 : n), q);
                        goto bad;
                    }
                    m = ms->m[ms->n++] = milter_new(q, n);
                    first = 0;
                } else if (milter_setting(m, q, n, why) < 0) {
                    goto bad;
                }
                q += n;
            }
            if (m == NULL) {
                strbuf_set(why, "empty milter group \"{}\"");
                goto bad;
            }
            p = close + 1;
            continue;
        }
        n = strcspn(p, ", \t\r\n");
        if (!milter_name_ok(p, n)) {
            strbuf_printf(why, "bad milter address \"%.*s\"", (int) (n > 100 ? 100 : n),
                          p);
            goto bad;
        }
        ms->m[ms->n++] = milter_new(p, n);
        p += n;
    }
    if (ms->n == 0)
        goto bad;
    return ms;
bad:
    milters_free(&ms);
    return NULL;
}

void milters_free(struct milters **msp)
{
    struct milters *ms = *msp;
    size_t i;

    if (ms == NULL)
        return;
    for (i = 0; i < ms->n; i++)
        milter_free_one(&ms->m[i]);
    for (i = 0; i < ms->nimp; i++)
        free(ms->imp[i]);
    free(ms->imp);
    for (i = 0; i < ms->ndefaults; i++)
        free(ms->defaults[i]);
    free(ms->defaults);
    free(ms->log_id);
    free(ms->quarantine);
    strbuf_release(&ms->pkt);
    strbuf_release(&ms->in);
    strbuf_release(&ms->verdict);
    strbuf_release(&ms->failed);
    strbuf_release(&ms->canon);
    strbuf_release(&ms->rest);
    free(ms);
    *msp = NULL;
}

void milters_set_macros(struct milters *ms, milter_macro_fn fn, void *ctx)
{
    ms->macro_fn = fn;
    ms->macro_ctx = ctx;
}

void milters_set_log_id(struct milters *ms, const char *id)
{
    free(ms->log_id);
    ms->log_id = id ? xstrdup(id) : NULL;
}

size_t milters_count(const struct milters *ms)
{
    return ms ? ms->n : 0;
}

size_t milters_message_count(const struct milters *ms)
{
    return milters_count(ms);
}

void milters_select(struct milters *ms, size_t i)
{
    ms->sel = i;
}

/* --- I/O ------------------------------------------------------------------- */

static long long milter_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int milter_wait(int fd, short ev, long long deadline)
{
    for (;;) {
        struct pollfd pfd = {fd, ev, 0};
        long long left = deadline - milter_now_ms();
        int r;

        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        r = poll(&pfd, 1, left > 0x7fffffff ? 0x7fffffff : (int) left);
        if (r > 0)
            return 0;
        if (r == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR)
            return -1;
    }
}

static int milter_write(int fd, const char *buf, size_t len, long long deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n > 0) {
            buf += n;
            len -= (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (milter_wait(fd, POLLOUT, deadline) < 0)
                return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

static int milter_read(int fd, char *buf, size_t len, long long deadline)
{
    while (len > 0) {
        ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);

        if (n > 0) {
            buf += n;
            len -= (size_t) n;
            continue;
        }
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (milter_wait(fd, POLLIN, deadline) < 0)
                return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

/* Connects to unix:/path, inet:host:port or inet6:host:port. */
static int milter_open_socket(struct milter *m, struct strbuf *why)
{
    long long deadline = milter_now_ms() + m->conn_to * 1000;
    int fd = -1, err;
    socklen_t elen = sizeof(err);

    if (strncmp(m->name, "unix:", 5) == 0) {
        struct sockaddr_un sun;
        const char *path = m->name + 5;

        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        if (strlen(path) >= sizeof(sun.sun_path)) {
            strbuf_set(why, "socket path too long");
            return -1;
        }
        strcpy(sun.sun_path, path);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
            goto syserr;
        if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0 && errno != EINPROGRESS
            && errno != EAGAIN)
            goto syserr;
    } else {
        int v6 = strncmp(m->name, "inet6:", 6) == 0;
        const char *hp = m->name + (v6 ? 6 : 5), *colon = strrchr(hp, ':');
        struct addrinfo hints, *res = NULL;
        char *host;
        int r;

        if (colon == NULL || colon == hp || colon[1] == 0) {
            strbuf_set(why, "expected host:port");
            return -1;
        }
        host = xstrndup(hp, (size_t) (colon - hp));
        if (host[0] == '[' && host[strlen(host) - 1] == ']') {
            memmove(host, host + 1, strlen(host));
            host[strlen(host) - 1] = 0;
        }
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = v6 ? AF_INET6 : AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        r = getaddrinfo(host, colon + 1, &hints, &res);
        free(host);
        if (r != 0) {
            strbuf_printf(why, "look up address: %s", gai_strerror(r));
            return -1;
        }
        fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || (connect(fd, res->ai_addr, res->ai_addrlen) < 0 && errno != EINPROGRESS)) {
            freeaddrinfo(res);
            goto syserr;
        }
        freeaddrinfo(res);
        /* Commands without a reply (ABORT, QUIT_NC) are followed by one that
         * waits for a reply: Nagle would hold that one until the filter's
         * delayed ACK of the first, 40 ms on Linux. */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int) {1}, sizeof(int));
    }
    if (milter_wait(fd, POLLOUT, deadline) < 0)
        goto syserr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        goto syserr;
    if (err != 0) {
        errno = err;
        goto syserr;
    }
    /* The socket stays non-blocking for good: smtpd and cleanup share it,
     * and every call below uses MSG_DONTWAIT anyway. */
    m->fd = fd;
    return 0;
syserr:
    strbuf_printf(why, "connect: %s", strerror(errno));
    if (fd >= 0)
        (void) close(fd);
    return -1;
}

/* --- Failure and verdicts --------------------------------------------------- */

static const char *milter_def_reply(struct milters *ms, struct milter *m)
{
    switch (m->defact) {
    case MILTER_DEF_ACCEPT:
        return NULL;
    case MILTER_DEF_REJECT:
        return "550 5.7.1 Command rejected";
    case MILTER_DEF_TEMPFAIL:
        return "451 4.7.1 Service unavailable - try again later";
    case MILTER_DEF_QUARANTINE:
        strbuf_reset(&ms->verdict);
        strbuf_printf(&ms->verdict, "H milter %s is unavailable", m->name);
        return ms->verdict.data;
    case MILTER_DEF_SHUTDOWN:
        return "421 4.7.0 Server closing connection";
    }
    return NULL;
}

static void milter_close(struct milter *m)
{
    if (m->fd >= 0)
        (void) close(m->fd);
    m->fd = -1;
}

static const char *milter_fail(struct milters *ms, struct milter *m, const char *stage,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static const char *milter_fail(struct milters *ms, struct milter *m, const char *stage,
                               const char *fmt, ...)
{
    static const char *acts[] = {"accept", "reject", "tempfail", "quarantine", "shutdown"};
    struct strbuf text;
    va_list ap;

    strbuf_init(&text, 128, 4096);
    va_start(ap, fmt);
    strbuf_vprintf(&text, fmt, ap);
    va_end(ap);
    msg_warn("%s%smilter %s: %s: %s; default_action=%s", ms->log_id ? ms->log_id : "",
             ms->log_id ? ": " : "", m->name, stage, text.data, acts[m->defact]);
    strbuf_release(&text);
    milter_close(m);
    m->state = MILTER_S_FAILED;
    return milter_def_reply(ms, m);
}

/* --- Sending ----------------------------------------------------------------- */

static const char *milter_macro_value(struct milters *ms, const char *name)
{
    const char *v = ms->macro_fn ? ms->macro_fn(ms->macro_ctx, name) : NULL;
    size_t i, n = strlen(name);

    if (v != NULL)
        return v;
    for (i = 0; i < ms->nimp; i++)
        if (strncmp(ms->imp[i], name, n) == 0 && ms->imp[i][n] == '=')
            return ms->imp[i] + n + 1;
    if (ms->ndefaults == 0)
        return NULL;
    milter_macro_canon(&ms->canon, name, n);
    for (i = 0; i < ms->ndefaults; i++)
        if (strncmp(ms->defaults[i], ms->canon.data, ms->canon.len) == 0
            && ms->defaults[i][ms->canon.len] == '=')
            return ms->defaults[i] + ms->canon.len + 1;
    return NULL;
}

/* Appends a SMFIC_MACRO packet for the list to ms->pkt (nothing when empty). */
static void milter_put_macros(struct milters *ms, int cmd, const char *list)
{
    size_t start = 0;
    int any = 0;

    while (list && *list) {
        size_t n = strcspn(list, " ");
        char name[128];
        const char *v;

        if (n > 0 && n < sizeof(name)) {
            memcpy(name, list, n);
            name[n] = 0;
            if ((v = milter_macro_value(ms, name)) != NULL) {
                if (!any) {
                    start = milter_pkt_begin(&ms->pkt, SMFIC_MACRO);
                    milter_pkt_bytes(&ms->pkt, &(char) {(char) cmd}, 1);
                    any = 1;
                }
                milter_pkt_str(&ms->pkt, name);
                milter_pkt_bytes(&ms->pkt, v, strnlen(v, MILTER_MACRO_VAL_MAX));
                milter_pkt_bytes(&ms->pkt, "", 1);
            }
        }
        list += n;
        list += strspn(list, " ");
    }
    if (any)
        (void) milter_pkt_end(&ms->pkt, start);
}

/* Reads one reply packet into ms->in; returns the command or -1 (reason in why). */
static int milter_read_reply(struct milters *ms, struct milter *m, long long deadline,
                             const char **why)
{
    unsigned char hdr[4];
    size_t len;

    if (milter_read(m->fd, (char *) hdr, 4, deadline) < 0) {
        *why = errno == ETIMEDOUT ? "timeout" : errno == ECONNRESET ? "connection closed"
            : strerror(errno);
        return -1;
    }
    if (milter_pkt_length(hdr, &len) < 0) {
        *why = "bad packet length";
        return -1;
    }
    strbuf_reset(&ms->in);
    if (strbuf_reserve(&ms->in, len) < 0) {
        *why = "packet too large";
        return -1;
    }
    if (milter_read(m->fd, ms->in.data, len, deadline) < 0) {
        *why = errno == ETIMEDOUT ? "timeout" : errno == ECONNRESET ? "connection closed"
            : strerror(errno);
        return -1;
    }
    ms->in.len = len;
    ms->in.data[len] = 0;
    return (unsigned char) ms->in.data[0];
}

/* CRLF -> LF for a replacement body chunk, into out. */
static void milter_crlf_to_lf(struct strbuf *out, const char *p, size_t len)
{
    size_t i;

    strbuf_reset(out);
    for (i = 0; i < len; i++) {
        if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
            continue;
        strbuf_putc(out, p[i]);
    }
}

struct milter_call {
    const char *stage;          /* for the log */
    int no_reply;
    long long timeout;          /* seconds */
    int envelope;               /* connect/helo: ACCEPT accepts the session */
    int eom;
    int body;
    int content;                /* content_timeout applies */
    int unknown;                /* the UNKNOWN stage */
    const struct milter_edit_ops *ops;
    void *ctx;
};

/* An edit request at end of message; NULL when it was applied, else the verdict. */
static const char *milter_edit(struct milters *ms, struct milter *m, const struct milter_call *c,
                               const struct milter_reply *r, int *body_first)
{
    uint32_t need = 0;
    int res = -1;
    struct strbuf tmp;

    switch (r->cmd) {
    case SMFIR_ADDHEADER: need = SMFIF_ADDHDRS; break;
    case SMFIR_INSHEADER: need = SMFIF_ADDHDRS; break;
    case SMFIR_CHGHEADER: need = SMFIF_CHGHDRS; break;
    case SMFIR_ADDRCPT: need = SMFIF_ADDRCPT; break;
    case SMFIR_ADDRCPT_PAR: need = SMFIF_ADDRCPT_PAR; break;
    case SMFIR_DELRCPT: need = SMFIF_DELRCPT; break;
    case SMFIR_CHGFROM: need = SMFIF_CHGFROM; break;
    case SMFIR_REPLBODY: need = SMFIF_CHGBODY; break;
    case SMFIR_QUARANTINE: need = SMFIF_QUARANTINE; break;
    }
    if (!c->eom)
        return milter_fail(ms, m, c->stage, "modification request '%c' outside end of message",
                           r->cmd);
    if ((m->actions & need) == 0)
        return milter_fail(ms, m, c->stage, "modification request '%c' was not negotiated",
                           r->cmd);
    if (++ms->edits > MILTER_EDITS_MAX)
        return milter_fail(ms, m, c->stage, "more than %d modification requests",
                           MILTER_EDITS_MAX);
    if (c->ops == NULL)
        return milter_fail(ms, m, c->stage, "modifications are not possible here");
    strbuf_init(&tmp, 256, STRBUF_UNLIMITED);
    switch (r->cmd) {
    case SMFIR_ADDHEADER:
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER: {
        /* Without HDR_LEADSPC the value comes without the space after the colon. */
        const char *v = r->value;

        if (!(m->protocol & SMFIP_HDR_LEADSPC) && *v != 0) {
            strbuf_printf(&tmp, " %s", v);
            v = tmp.data;
        }
        if (r->cmd == SMFIR_ADDHEADER)
            res = c->ops->add_header(c->ctx, r->name, v);
        else if (r->cmd == SMFIR_INSHEADER)
            res = c->ops->ins_header(c->ctx, r->index, r->name, v);
        else
            res = c->ops->chg_header(c->ctx, r->index, r->name, r->value[0] ? v : "");
        break;
    }
    case SMFIR_ADDRCPT:
    case SMFIR_ADDRCPT_PAR:
        res = c->ops->add_rcpt(c->ctx, r->name, r->value);
        break;
    case SMFIR_DELRCPT:
        res = c->ops->del_rcpt(c->ctx, r->name);
        break;
    case SMFIR_CHGFROM:
        res = c->ops->chg_from(c->ctx, r->name, r->value);
        break;
    case SMFIR_REPLBODY:
        milter_crlf_to_lf(&tmp, r->data, r->len);
        res = c->ops->repl_body(c->ctx, tmp.data, tmp.len, *body_first);
        *body_first = 0;
        break;
    case SMFIR_QUARANTINE:
        free(ms->quarantine);
        ms->quarantine = xstrdup(r->text);
        res = 0;
        break;
    }
    strbuf_release(&tmp);
    if (res < 0)
        return milter_fail(ms, m, c->stage, "modification request '%c' failed", r->cmd);
    return NULL;
}

/*
 * Sends ms->pkt (macros and the command) to one milter and reads its
 * answer. Returns NULL to continue, else a verdict.
 */
static const char *milter_call(struct milters *ms, struct milter *m, const struct milter_call *c)
{
    long long deadline = milter_now_ms() + c->timeout * 1000;
    int body_first = 1;
    const char *why;

    m->at_rest = 0;
    if (milter_write(m->fd, ms->pkt.data, ms->pkt.len, deadline) < 0)
        return milter_fail(ms, m, c->stage, "write: %s",
                           errno == ETIMEDOUT ? "timeout" : strerror(errno));
    if (c->no_reply)
        return NULL;
    for (;;) {
        struct milter_reply r;
        int cmd = milter_read_reply(ms, m, deadline, &why);
        const char *v;

        if (cmd < 0)
            return milter_fail(ms, m, c->stage, "read reply: %s", why);
        if (milter_reply_decode(cmd, ms->in.data + 1, ms->in.len - 1, &r, &why) < 0)
            return milter_fail(ms, m, c->stage, "malformed reply '%c': %s",
                               cmd >= ' ' && cmd < 127 ? cmd : '?', why);
        if (msg_verbose)
            msg_info("milter %s: %s: reply '%c'", m->name, c->stage, cmd);
        switch (cmd) {
        case SMFIR_PROGRESS:
            deadline = milter_now_ms() + c->timeout * 1000;
            continue;
        case SMFIR_CONTINUE:
            return NULL;
        case SMFIR_ACCEPT:
            m->state = c->envelope ? MILTER_S_ACCEPT_CONN : MILTER_S_ACCEPT_MSG;
            return NULL;
        case SMFIR_REJECT:
            if (c->envelope) {
                m->state = MILTER_S_REJECT_CONN;
                free(m->reject);
                m->reject = xstrdup("550 5.7.1 Command rejected");
                return m->reject;
            }
            return c->eom ? "550 5.7.1 Message content rejected" : "550 5.7.1 Command rejected";
        case SMFIR_TEMPFAIL:
            if (c->envelope) {
                m->state = MILTER_S_REJECT_CONN;
                free(m->reject);
                m->reject = xstrdup("451 4.7.1 Service unavailable - try again later");
                return m->reject;
            }
            return "451 4.7.1 Service unavailable - try again later";
        case SMFIR_REPLYCODE:
            strbuf_set(&ms->verdict, r.text);
            if (c->envelope && strncmp(r.text, "421", 3) != 0) {
                m->state = MILTER_S_REJECT_CONN;
                free(m->reject);
                m->reject = xstrdup(r.text);
                return m->reject;
            }
            return ms->verdict.data;
        case SMFIR_DISCARD:
            if (c->envelope)
                return milter_fail(ms, m, c->stage, "DISCARD is not allowed here");
            m->state = MILTER_S_ACCEPT_MSG;
            return "D";
        case SMFIR_SHUTDOWN:
            milter_close(m);
            m->state = MILTER_S_CLOSED;
            return "421 4.7.0 Server closing connection";
        case SMFIR_CONN_FAIL:
            milter_close(m);
            m->state = MILTER_S_CLOSED;
            return "421 4.7.0 Server closing connection";
        case SMFIR_SKIP:
            if (!c->body || !(m->protocol & SMFIP_SKIP))
                return milter_fail(ms, m, c->stage, "SKIP is not allowed here");
            m->skip_body = 1;
            return NULL;
        default:
            if ((v = milter_edit(ms, m, c, &r, &body_first)) != NULL || m->state == MILTER_S_FAILED)
                return v;
            continue;
        }
    }
}

/* --- Negotiation -------------------------------------------------------------- */

static uint32_t milter_offer_actions(int version)
{
    return version >= 6 ? MILTER_V6_ACTS : version >= 4 ? MILTER_V4_ACTS : MILTER_V2_ACTS;
}

static uint32_t milter_offer_protocol(int version)
{
    return version >= 6 ? MILTER_V6_PROTO : version >= 4 ? MILTER_V4_PROTO
        : version == 3 ? MILTER_V3_PROTO : MILTER_V2_PROTO;
}

/* Moves the connection and what was negotiated on it from src to dst. */
static void milter_move_connection(struct milter *dst, struct milter *src)
{
    int j;

    dst->fd = src->fd;
    src->fd = -1;
    dst->version = src->version;
    dst->actions = src->actions;
    dst->protocol = src->protocol;
    dst->chunk = src->chunk;
    for (j = 0; j <= MILTER_STAGE_COUNT; j++) {
        free(dst->macros[j]);
        dst->macros[j] = src->macros[j];
        src->macros[j] = NULL;
    }
}

/* Takes over a kept connection to the same filter, if one is still open. */
static int milter_pool_take(struct milter *m)
{
    size_t i;

    for (i = 0; i < milter_pool_n; i++) {
        struct milter *p = milter_pool[i];
        struct pollfd pfd = {p->fd, POLLIN, 0};

        if (strcmp(p->name, m->name) != 0 || p->offered != m->offered)
            continue;
        milter_pool[i] = milter_pool[--milter_pool_n];
        /* A kept connection has nothing to say: readable means the filter
         * closed it (or is out of step); then connect anew. */
        if (poll(&pfd, 1, 0) != 0) {
            if (msg_verbose)
                msg_info("milter %s: kept connection was closed", p->name);
            milter_free_one(&p);
            return 0;
        }
        milter_move_connection(m, p);
        m->state = MILTER_S_READY;
        milter_free_one(&p);
        if (msg_verbose)
            msg_info("milter %s: reusing the connection (QUIT_NC)", m->name);
        return 1;
    }
    return 0;
}

/* Keeps m's connection for the next session after QUIT_NC; 0 when it cannot. */
static int milter_pool_put(struct milters *ms, struct milter *m)
{
    struct milter *p;
    size_t start;

    /* The next session is announced by its CONNECT: a filter that skips
     * CONNECT would not know one began (python-milter, for one, then has no
     * session object for the next callback). */
    if (!var_milter_connection_reuse || !m->at_rest || m->version < 6
        || (m->protocol & SMFIP_NOCONNECT) || m->state != MILTER_S_READY
        || milter_pool_n >= MILTER_MAX)
        return 0;
    strbuf_reset(&ms->pkt);
    start = milter_pkt_begin(&ms->pkt, SMFIC_QUIT_NC);
    (void) milter_pkt_end(&ms->pkt, start);
    if (milter_write(m->fd, ms->pkt.data, ms->pkt.len, milter_now_ms() + m->cmd_to * 1000) < 0)
        return 0;
    p = xcalloc(1, sizeof(*p));
    p->name = xstrdup(m->name);
    p->offered = m->offered;
    milter_move_connection(p, m);
    milter_pool[milter_pool_n++] = p;
    return 1;
}

static const char *milter_negotiate(struct milters *ms, struct milter *m)
{
    struct milter_optneg o;
    struct strbuf why;
    const char *reason;
    long long deadline;
    size_t start;
    uint32_t acts = milter_offer_actions(m->version), proto = milter_offer_protocol(m->version);
    int cmd, i;

    if (milter_pool_take(m))
        return NULL;
    strbuf_init(&why, 128, 1024);
    if (milter_open_socket(m, &why) < 0) {
        const char *v = milter_fail(ms, m, "connect", "%s", why.data);

        strbuf_release(&why);
        return v;
    }
    strbuf_release(&why);
    strbuf_reset(&ms->pkt);
    start = milter_pkt_begin(&ms->pkt, SMFIC_OPTNEG);
    milter_pkt_u32(&ms->pkt, (uint32_t) m->version);
    milter_pkt_u32(&ms->pkt, acts);
    milter_pkt_u32(&ms->pkt, proto);
    (void) milter_pkt_end(&ms->pkt, start);
    deadline = milter_now_ms() + m->cmd_to * 1000;
    if (milter_write(m->fd, ms->pkt.data, ms->pkt.len, deadline) < 0)
        return milter_fail(ms, m, "negotiate", "write: %s", strerror(errno));
    if ((cmd = milter_read_reply(ms, m, deadline, &reason)) < 0)
        return milter_fail(ms, m, "negotiate", "read reply: %s", reason);
    if (cmd != SMFIC_OPTNEG)
        return milter_fail(ms, m, "negotiate", "unexpected reply '%c'",
                           cmd >= ' ' && cmd < 127 ? cmd : '?');
    if (milter_optneg_decode(ms->in.data + 1, ms->in.len - 1, &o, &reason) < 0)
        return milter_fail(ms, m, "negotiate", "%s", reason);
    if (o.version < 2)
        return milter_fail(ms, m, "negotiate", "unsupported protocol version %u", o.version);
    if (o.actions & ~acts)
        return milter_fail(ms, m, "negotiate", "requested action mask 0x%x but only 0x%x is "
                           "allowed", o.actions, acts);
    if (o.protocol & ~proto)
        return milter_fail(ms, m, "negotiate", "requested protocol mask 0x%x but only 0x%x "
                           "is allowed", o.protocol, proto);
    if (o.version < (uint32_t) m->version)
        m->version = (int) o.version;
    m->actions = o.actions;
    m->protocol = o.protocol;
    m->chunk = (o.protocol & SMFIP_MDS_1M) ? 1024 * 1024 : (o.protocol & SMFIP_MDS_256K)
        ? 256 * 1024 : MILTER_CHUNK_SIZE;
    for (i = 0; i < MILTER_STAGE_COUNT; i++)
        if (o.symlist[i] != NULL) {
            if (!(o.actions & SMFIF_SETSYMLIST))
                return milter_fail(ms, m, "negotiate", "macro list without SETSYMLIST");
            free(m->macros[i]);
            m->macros[i] = milter_macro_list(o.symlist[i]);
        }
    m->state = MILTER_S_READY;
    if (msg_verbose)
        msg_info("milter %s: version %d actions 0x%x protocol 0x%x", m->name, m->version,
                 m->actions, m->protocol);
    return NULL;
}

/* --- Events -------------------------------------------------------------------- */

/* Whether milter m takes part in an event; *verdict gets a sticky verdict. */
static int milter_active(struct milters *ms, struct milter *m, int message, const char **verdict)
{
    *verdict = NULL;
    switch (m->state) {
    case MILTER_S_READY:
        return 1;
    case MILTER_S_ACCEPT_MSG:
        return !message;
    case MILTER_S_REJECT_CONN:
        *verdict = m->reject;
        return 0;
    case MILTER_S_FAILED:
        *verdict = milter_def_reply(ms, m);
        return 0;
    default:
        return 0;
    }
}

typedef void (*milter_build_fn)(struct milters *ms, struct milter *m, const void *arg);

/*
 * Runs one event over the milters (or the selected one): skip_flag and
 * nr_flag are the SMFIP_NO* and SMFIP_NR_* bits of the stage; stage is the
 * macro list (-1: none) and mcmd its macro command.
 */
static const char *milter_event(struct milters *ms, uint32_t skip_flag, uint32_t nr_flag,
                                int stage, int mcmd, int min_version, milter_build_fn build,
                                const void *arg, struct milter_call *c, int message)
{
    size_t i;

    if (ms == NULL)
        return NULL;
    for (i = 0; i < ms->n; i++) {
        struct milter *m = ms->m[i];
        const char *v;

        if (ms->sel != (size_t) -1 && ms->sel != i)
            continue;
        if (!milter_active(ms, m, message, &v)) {
            if (v != NULL)
                return v;
            continue;
        }
        if ((m->protocol & skip_flag) || m->version < min_version)
            continue;
        strbuf_reset(&ms->pkt);
        if (stage >= 0)
            milter_put_macros(ms, mcmd, m->macros[stage]);
        build(ms, m, arg);
        c->no_reply = (m->protocol & nr_flag) != 0;
        c->timeout = c->content ? m->msg_to : m->cmd_to;
        v = milter_call(ms, m, c);
        /* libmilter's state table: QUIT_NC is taken after end of message
         * answered with "continue" (an accept or a verdict returns it to
         * the HELO state) and after UNKNOWN (answered anything but accept). */
        if (m->state == MILTER_S_READY && (c->eom ? v == NULL : c->unknown))
            m->at_rest = 1;
        if (v != NULL)
            return v;
    }
    return NULL;
}

struct milter_conn_arg {
    const char *name, *addr;
    int port;
};

static void milter_build_connect(struct milters *ms, struct milter *m, const void *arg)
{
    const struct milter_conn_arg *a = arg;
    size_t start = milter_pkt_begin(&ms->pkt, SMFIC_CONNECT);

    milter_pkt_str(&ms->pkt, a->name);
    if (a->addr == NULL || *a->addr == 0) {
        milter_pkt_bytes(&ms->pkt, &(char) {SMFIA_UNKNOWN}, 1);
    } else {
        milter_pkt_bytes(&ms->pkt, &(char) {strchr(a->addr, ':') ? SMFIA_INET6 : SMFIA_INET}, 1);
        milter_pkt_u16(&ms->pkt, (uint16_t) a->port);
        milter_pkt_str(&ms->pkt, a->addr);
    }
    (void) milter_pkt_end(&ms->pkt, start);
}

const char *milter_connect_event(struct milters *ms, const char *client_name,
                                 const char *client_addr, int port)
{
    struct milter_conn_arg a = {client_name, client_addr, port};
    struct milter_call c = {.stage = "connect", .envelope = 1};
    size_t i;
    const char *v;

    if (ms == NULL)
        return NULL;
    for (i = 0; i < ms->n; i++)
        if (ms->m[i]->state == MILTER_S_NEW && (v = milter_negotiate(ms, ms->m[i])) != NULL)
            return v;
    return milter_event(ms, SMFIP_NOCONNECT, SMFIP_NR_CONN, MILTER_STAGE_CONNECT, SMFIC_CONNECT,
                        2, milter_build_connect, &a, &c, 0);
}

static void milter_build_str(struct milters *ms, struct milter *m, const void *arg)
{
    const char *const *a = arg;         /* a[0] = command char as string, a[1] = text */
    size_t start = milter_pkt_begin(&ms->pkt, a[0][0]);

    if (a[1])
        milter_pkt_str(&ms->pkt, a[1]);
    (void) milter_pkt_end(&ms->pkt, start);
}

const char *milter_helo_event(struct milters *ms, const char *helo)
{
    const char *a[2] = {"H", helo};
    struct milter_call c = {.stage = "helo", .envelope = 1};

    return milter_event(ms, SMFIP_NOHELO, SMFIP_NR_HELO, MILTER_STAGE_HELO, SMFIC_HELO, 2,
                        milter_build_str, a, &c, 0);
}

struct milter_argv_arg {
    int cmd;
    const char *const *argv;
};

static void milter_build_argv(struct milters *ms, struct milter *m, const void *arg)
{
    const struct milter_argv_arg *a = arg;
    size_t start = milter_pkt_begin(&ms->pkt, a->cmd), i;

    for (i = 0; a->argv[i] && i < MILTER_ARGS_MAX; i++)
        milter_pkt_str(&ms->pkt, a->argv[i]);
    (void) milter_pkt_end(&ms->pkt, start);
}

static void milter_message_reset(struct milters *ms)
{
    size_t i;

    for (i = 0; ms && i < ms->n; i++) {
        if (ms->m[i]->state == MILTER_S_ACCEPT_MSG)
            ms->m[i]->state = MILTER_S_READY;
        ms->m[i]->skip_body = 0;
    }
}

const char *milter_mail_event(struct milters *ms, const char *const *argv)
{
    struct milter_argv_arg a = {SMFIC_MAIL, argv};
    struct milter_call c = {.stage = "mail"};

    milter_message_reset(ms);
    return milter_event(ms, SMFIP_NOMAIL, SMFIP_NR_MAIL, MILTER_STAGE_MAIL, SMFIC_MAIL, 2,
                        milter_build_argv, &a, &c, 1);
}

const char *milter_rcpt_event(struct milters *ms, const char *const *argv, int rejected)
{
    struct milter_argv_arg a = {SMFIC_RCPT, argv};
    struct milter_call c = {.stage = "rcpt"};
    size_t i;

    if (!rejected)
        return milter_event(ms, SMFIP_NORCPT, SMFIP_NR_RCPT, MILTER_STAGE_RCPT, SMFIC_RCPT, 2,
                            milter_build_argv, &a, &c, 1);
    /* A recipient Petrel refused: only filters that asked to see those. */
    for (i = 0; ms && i < ms->n; i++) {
        if (!(ms->m[i]->protocol & SMFIP_RCPT_REJ) || ms->m[i]->state != MILTER_S_READY)
            continue;
        ms->sel = i;
        (void) milter_event(ms, SMFIP_NORCPT, SMFIP_NR_RCPT, MILTER_STAGE_RCPT, SMFIC_RCPT, 2,
                            milter_build_argv, &a, &c, 1);
        ms->sel = (size_t) -1;
    }
    return NULL;
}

const char *milter_data_event(struct milters *ms)
{
    const char *a[2] = {"T", NULL};
    struct milter_call c = {.stage = "data"};

    return milter_event(ms, SMFIP_NODATA, SMFIP_NR_DATA, MILTER_STAGE_DATA, SMFIC_DATA, 4,
                        milter_build_str, a, &c, 1);
}

const char *milter_unknown_event(struct milters *ms, const char *command)
{
    const char *a[2] = {"U", command};
    struct milter_call c = {.stage = "unknown", .unknown = 1};

    return milter_event(ms, SMFIP_NOUNKNOWN, SMFIP_NR_UNKN, MILTER_MACROS_UNKNOWN, SMFIC_UNKNOWN,
                        3, milter_build_str, a, &c, 0);
}

struct milter_hdr_arg {
    const char *name, *value;
    size_t name_len, value_len;
};

static void milter_build_header(struct milters *ms, struct milter *m, const void *arg)
{
    const struct milter_hdr_arg *a = arg;
    size_t start = milter_pkt_begin(&ms->pkt, SMFIC_HEADER), vlen = a->value_len;
    const char *v = a->value;

    /* Sendmail drops the space after the colon unless the filter asked for it. */
    if (!(m->protocol & SMFIP_HDR_LEADSPC))
        while (vlen > 0 && (*v == ' ' || *v == '\t'))
            v++, vlen--;
    milter_pkt_bytes(&ms->pkt, a->name, a->name_len);
    milter_pkt_bytes(&ms->pkt, "", 1);
    milter_pkt_bytes(&ms->pkt, v, vlen);
    milter_pkt_bytes(&ms->pkt, "", 1);
    (void) milter_pkt_end(&ms->pkt, start);
}

const char *milter_header_event(struct milters *ms, const char *name, size_t name_len,
                                const char *value, size_t value_len)
{
    struct milter_hdr_arg a = {name, value, name_len, value_len};
    struct milter_call c = {.stage = "header", .content = 1};

    return milter_event(ms, SMFIP_NOHDRS, SMFIP_NR_HDR, -1, 0, 2, milter_build_header, &a, &c, 1);
}

const char *milter_eoh_event(struct milters *ms)
{
    const char *a[2] = {"N", NULL};
    struct milter_call c = {.stage = "end-of-header", .content = 1};

    return milter_event(ms, SMFIP_NOEOH, SMFIP_NR_EOH, MILTER_STAGE_EOH, SMFIC_EOH, 2,
                        milter_build_str, a, &c, 1);
}

struct milter_body_arg {
    const char *data;
    size_t len;
};

static void milter_build_body(struct milters *ms, struct milter *m, const void *arg)
{
    const struct milter_body_arg *a = arg;
    size_t start = milter_pkt_begin(&ms->pkt, SMFIC_BODY), i;

    for (i = 0; i < a->len; i++) {
        if (a->data[i] == '\n')
            milter_pkt_bytes(&ms->pkt, "\r", 1);
        milter_pkt_bytes(&ms->pkt, a->data + i, 1);
    }
    (void) milter_pkt_end(&ms->pkt, start);
}

const char *milter_body_event(struct milters *ms, const char *data, size_t len)
{
    struct milter_call c = {.stage = "body", .body = 1, .content = 1};
    size_t i;

    if (ms == NULL)
        return NULL;
    /* Chunks of at most chunk/2 bytes, so that CRLF never exceeds the size. */
    for (i = 0; i < ms->n; i++) {
        struct milter *m = ms->m[i];
        size_t off = 0, piece = m->chunk / 2;
        size_t save = ms->sel;
        const char *v = NULL;

        if (ms->sel != (size_t) -1 && ms->sel != i)
            continue;
        ms->sel = i;
        while (off < len && !m->skip_body && m->state == MILTER_S_READY) {
            struct milter_body_arg a = {data + off, len - off < piece ? len - off : piece};

            off += a.len;
            if ((v = milter_event(ms, SMFIP_NOBODY, SMFIP_NR_BODY, -1, 0, 2, milter_build_body,
                                  &a, &c, 1)) != NULL)
                break;
        }
        if (v == NULL && m->state != MILTER_S_READY)
            (void) milter_active(ms, m, 1, &v);
        ms->sel = save;
        if (v != NULL)
            return v;
    }
    return NULL;
}

const char *milter_eom_event(struct milters *ms, const struct milter_edit_ops *ops, void *ctx)
{
    const char *a[2] = {"E", NULL};
    struct milter_call c = {.stage = "end-of-message", .eom = 1, .content = 1, .ops = ops,
        .ctx = ctx};
    const char *v;

    if (ms == NULL)
        return NULL;
    free(ms->quarantine);
    ms->quarantine = NULL;
    ms->edits = 0;
    v = milter_event(ms, 0, 0, MILTER_STAGE_EOM, SMFIC_BODYEOB, 2, milter_build_str, a, &c, 1);
    if (v == NULL && ms->quarantine != NULL) {
        strbuf_reset(&ms->verdict);
        strbuf_printf(&ms->verdict, "H %s", ms->quarantine);
        v = ms->verdict.data;
    }
    return v;
}

int milters_want_content(const struct milters *ms)
{
    size_t i;

    for (i = 0; ms && i < ms->n; i++)
        if (ms->m[i]->state == MILTER_S_READY || ms->m[i]->state == MILTER_S_FAILED)
            return 1;
    return 0;
}

static void milter_build_empty(struct milters *ms, struct milter *m, const void *arg)
{
    size_t start = milter_pkt_begin(&ms->pkt, *(const int *) arg);

    (void) milter_pkt_end(&ms->pkt, start);
}

void milter_abort_event(struct milters *ms)
{
    int cmd = SMFIC_ABORT;
    struct milter_call c = {.stage = "abort", .no_reply = 1};
    size_t i;

    for (i = 0; ms && i < ms->n; i++) {
        struct milter *m = ms->m[i];

        if (m->state != MILTER_S_READY && m->state != MILTER_S_ACCEPT_MSG)
            continue;
        m->state = MILTER_S_READY;
        strbuf_reset(&ms->pkt);
        milter_build_empty(ms, m, &cmd);
        c.timeout = m->cmd_to;
        (void) milter_call(ms, m, &c);
    }
    milter_message_reset(ms);
}

void milter_quit_event(struct milters *ms)
{
    int cmd = SMFIC_QUIT;
    size_t i;

    for (i = 0; ms && i < ms->n; i++) {
        struct milter *m = ms->m[i];

        if (m->fd < 0)
            continue;
        if (milter_pool_put(ms, m)) {
            if (msg_verbose)
                msg_info("milter %s: QUIT_NC, connection kept", m->name);
            m->state = MILTER_S_CLOSED;
            continue;
        }
        if (msg_verbose)
            msg_info("milter %s: QUIT (%s)", m->name, !var_milter_connection_reuse ? "no reuse"
                     : m->version < 6 ? "protocol < 6" : !m->at_rest ? "not at rest"
                     : (m->protocol & SMFIP_NOCONNECT) ? "no CONNECT stage" : "pool full");
        strbuf_reset(&ms->pkt);
        milter_build_empty(ms, m, &cmd);
        (void) milter_write(m->fd, ms->pkt.data, ms->pkt.len,
                            milter_now_ms() + m->cmd_to * 1000);
        milter_close(m);
        m->state = MILTER_S_CLOSED;
    }
}

/* --- Hand-over between processes ----------------------------------------------- */

int milters_export(struct milters *ms, struct attr_msg *msg)
{
    struct strbuf line, names;
    size_t i;
    int r = 0;

    if (ms == NULL || ms->n == 0)
        return 0;
    strbuf_init(&line, 256, STRBUF_UNLIMITED);
    strbuf_init(&names, 256, STRBUF_UNLIMITED);
    for (i = 0; i < ms->n; i++) {
        struct milter *m = ms->m[i];
        char fdname[32];

        strbuf_reset(&line);
        strbuf_printf(&line, "%s\t%d\t%u\t%u\t%lld\t%lld\t%d\t%d\t%s\t%s", m->name, m->version,
                      m->actions, m->protocol, m->cmd_to, m->msg_to, (int) m->defact,
                      (int) m->state, m->macros[MILTER_STAGE_EOH], m->macros[MILTER_STAGE_EOM]);
        r |= attr_add_str(msg, "milter", line.data);
        if (m->fd >= 0) {
            snprintf(fdname, sizeof(fdname), "milter_fd_%zu", i);
            r |= attr_put_fd(msg, fdname, m->fd);
        }
        if (names.len)
            strbuf_putc(&names, ' ');
        strbuf_printf(&names, "%s %s", m->macros[MILTER_STAGE_EOH], m->macros[MILTER_STAGE_EOM]);
    }
    /* The values of the content-stage macros as this process knows them. */
    {
        const char *p = names.data;

        while (*p) {
            size_t n = strcspn(p, " ");
            char name[128];
            const char *v;

            if (n > 0 && n < sizeof(name)) {
                memcpy(name, p, n);
                name[n] = 0;
                if ((v = milter_macro_value(ms, name)) != NULL && strpbrk(v, "\r\n") == NULL
                    && strlen(v) <= MILTER_MACRO_VAL_MAX) {
                    strbuf_reset(&line);
                    strbuf_printf(&line, "%s=%s", name, v);
                    r |= attr_add_str(msg, "milter_macro", line.data);
                }
            }
            p += n;
            p += strspn(p, " ");
        }
    }
    strbuf_release(&line);
    strbuf_release(&names);
    return r ? -1 : 0;
}

/* Splits s at tabs into at most max fields; returns the count. */
static size_t milter_fields(char *s, char **f, size_t max)
{
    size_t n = 0;

    while (n < max) {
        f[n++] = s;
        if ((s = strchr(s, '\t')) == NULL)
            break;
        *s++ = 0;
    }
    return n;
}

static int milter_num(const char *s, long long lo, long long hi, long long *v)
{
    char *end;

    errno = 0;
    *v = strtoll(s, &end, 10);
    return *s && *end == 0 && errno == 0 && *v >= lo && *v <= hi ? 0 : -1;
}

struct milters *milters_import(struct attr_msg *msg, struct strbuf *why)
{
    struct attr_iter it;
    struct milters *ms;
    const char *s;
    size_t len;
    ssize_t n;
    int r;

    if ((n = attr_iter_init(&it, msg, "milter")) <= 0) {
        if (n < 0)
            strbuf_set(why, "malformed milter list");
        return NULL;
    }
    if (n > MILTER_MAX) {
        strbuf_set(why, "too many milters");
        return NULL;
    }
    ms = xcalloc(1, sizeof(*ms));
    ms->sel = (size_t) -1;
    strbuf_init(&ms->pkt, 1024, STRBUF_UNLIMITED);
    strbuf_init(&ms->in, 1024, MILTER_PKT_MAX + 1);
    strbuf_init(&ms->verdict, 128, STRBUF_UNLIMITED);
    strbuf_init(&ms->failed, 16, STRBUF_UNLIMITED);
    strbuf_init(&ms->canon, 64, 4096);
    strbuf_init(&ms->rest, 16, STRBUF_UNLIMITED);
    /* Checked when the exporter started: a bad value here just gives none. */
    if (milter_defaults_parse(var_milter_macro_defaults, &ms->defaults, &ms->ndefaults, why) < 0)
        strbuf_reset(why);
    while ((r = attr_iter_str(&it, &s, &len)) == 1) {
        char *copy = xstrndup(s, len), *f[10], fdname[32];
        struct milter *m;
        long long v[7];
        int fd, i;

        if (milter_fields(copy, f, 10) != 10 || !milter_name_ok(f[0], strlen(f[0]))
            || milter_num(f[1], 2, 6, &v[0]) < 0 || milter_num(f[2], 0, MILTER_V6_ACTS, &v[1]) < 0
            || milter_num(f[3], 0, 0xffffffffLL, &v[2]) < 0
            || milter_num(f[4], 1, 1LL << 31, &v[3]) < 0
            || milter_num(f[5], 1, 1LL << 31, &v[4]) < 0
            || milter_num(f[6], MILTER_DEF_ACCEPT, MILTER_DEF_SHUTDOWN, &v[5]) < 0
            || milter_num(f[7], MILTER_S_NEW, MILTER_S_CLOSED, &v[6]) < 0) {
            free(copy);
            strbuf_set(why, "malformed milter description");
            milters_free(&ms);
            return NULL;
        }
        m = ms->m[ms->n] = xcalloc(1, sizeof(*m));
        m->name = xstrdup(f[0]);
        m->version = (int) v[0];
        m->actions = (uint32_t) v[1];
        m->protocol = (uint32_t) v[2];
        m->cmd_to = v[3];
        m->msg_to = v[4];
        m->defact = (enum milter_defact) v[5];
        m->state = (enum milter_state) v[6];
        m->chunk = (m->protocol & SMFIP_MDS_1M) ? 1024 * 1024 : (m->protocol & SMFIP_MDS_256K)
            ? 256 * 1024 : MILTER_CHUNK_SIZE;
        for (i = 0; i <= MILTER_STAGE_COUNT; i++)
            m->macros[i] = xstrdup("");
        free(m->macros[MILTER_STAGE_EOH]);
        free(m->macros[MILTER_STAGE_EOM]);
        m->macros[MILTER_STAGE_EOH] = milter_macro_list(f[8]);
        m->macros[MILTER_STAGE_EOM] = milter_macro_list(f[9]);
        snprintf(fdname, sizeof(fdname), "milter_fd_%zu", ms->n);
        if (attr_opt_fd(msg, fdname, &fd) == 1)
            m->fd = fd;
        else {
            m->fd = -1;
            if (m->state == MILTER_S_READY || m->state == MILTER_S_ACCEPT_MSG)
                m->state = MILTER_S_FAILED;
        }
        ms->n++;
        free(copy);
    }
    if (r < 0 || attr_iter_init(&it, msg, "milter_macro") < 0) {
        strbuf_set(why, "malformed milter macros");
        milters_free(&ms);
        return NULL;
    }
    while ((r = attr_iter_str(&it, &s, &len)) == 1 && ms->nimp < 1000) {
        ms->imp = xreallocarray(ms->imp, ms->nimp + 1, sizeof(char *));
        ms->imp[ms->nimp++] = xstrndup(s, len);
    }
    return ms;
}

/* --- Index lists ("0,2") between exporter and importer -------------------------- */

static int milter_is_failed(const struct milter *m)
{
    return m->state == MILTER_S_FAILED || m->state == MILTER_S_CLOSED;
}

static int milter_is_at_rest(const struct milter *m)
{
    return m->at_rest && m->state == MILTER_S_READY;
}

static const char *milters_index_list(struct milters *ms, struct strbuf *out,
                                      int (*pick)(const struct milter *))
{
    size_t i;

    strbuf_reset(out);
    for (i = 0; i < ms->n; i++)
        if (pick(ms->m[i]))
            strbuf_printf(out, "%s%zu", out->len ? "," : "", i);
    return out->data;
}

static void milters_for_index_list(struct milters *ms, const char *list,
                                   void (*mark)(struct milter *))
{
    while (ms && list && *list) {
        char *end;
        unsigned long i = strtoul(list, &end, 10);

        if (end == list)
            break;
        if (i < ms->n)
            mark(ms->m[i]);
        list = *end == ',' ? end + 1 : end;
    }
}

static void milter_mark_failed(struct milter *m)
{
    if (m->state != MILTER_S_FAILED) {
        milter_close(m);
        m->state = MILTER_S_FAILED;
    }
}

static void milter_mark_at_rest(struct milter *m)
{
    if (m->state == MILTER_S_READY)
        m->at_rest = 1;
}

const char *milters_failed_list(struct milters *ms)
{
    return milters_index_list(ms, &ms->failed, milter_is_failed);
}

const char *milters_at_rest_list(struct milters *ms)
{
    return milters_index_list(ms, &ms->rest, milter_is_at_rest);
}

void milters_mark_failed(struct milters *ms, const char *list)
{
    milters_for_index_list(ms, list, milter_mark_failed);
}

void milters_mark_at_rest(struct milters *ms, const char *list)
{
    milters_for_index_list(ms, list, milter_mark_at_rest);
}
