/*
 * master_service.c - the listening endpoints of master.cf services.
 * inet: "host:port", "[v6addr]:port", "port" or a service name ("smtp"); without a
 * host, one socket per inet_interfaces address ("all", "loopback-only" or a list)
 * and inet_protocols family. unix: queue_directory/private/NAME (mode 0600) or
 * public/NAME (0666, the directory restricts it to setgid_group). fifo: the same
 * places, modes 0600 / 0622. Everything is owned by mail_owner.
 * Every socket is close-on-exec and non-blocking (workers share it; a loser of an
 * accept race must get EAGAIN, not block).
 * Must never bind outside what master.cf and inet_interfaces name. Failure: at start
 * an unusable endpoint is fatal (administrator error); at reload it is a warning and
 * the service stays down until the next reload.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "master.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "strbuf.h"

struct master_err {
    int fatal;
    int failed;
};

static void master_serv_fail(struct master_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void master_serv_fail(struct master_err *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_vlog(err->fatal ? MSG_FATAL : MSG_WARN, fmt, ap);
    va_end(ap);
    if (err->fatal)
        exit(1);
    err->failed = 1;
}

/* Splits an inet service name into host (NULL: use inet_interfaces) and port. */
static int master_inet_split(const char *name, char **host, char **port)
{
    const char *colon;

    *host = *port = NULL;
    if (name[0] == '[') {
        const char *end = strchr(name, ']');

        if (end == NULL || end[1] != ':' || end[2] == '\0')
            return -1;
        *host = xstrndup(name + 1, (size_t) (end - name - 1));
        *port = xstrdup(end + 2);
        return 0;
    }
    colon = strrchr(name, ':');
    if (colon) {
        if (colon == name || colon[1] == '\0')
            return -1;
        *host = xstrndup(name, (size_t) (colon - name));
        *port = xstrdup(colon + 1);
        return 0;
    }
    *port = xstrdup(name);
    return 0;
}

char *master_serv_key(const struct master_service *def)
{
    struct strbuf sb;
    char *key;
    static const char *const types[] = {"inet", "unix", "fifo", "pass"};

    strbuf_init(&sb, 64, STRBUF_UNLIMITED);
    strbuf_printf(&sb, "%s %s %s", types[def->type], def->private_ ? "private" : "public",
                  def->name);
    /* Without an explicit host the addresses come from main.cf: part of the key. */
    if (def->type == MASTER_INET && strchr(def->name, ':') == NULL)
        strbuf_printf(&sb, " %s|%s", var_inet_interfaces, var_inet_protocols);
    key = strbuf_steal(&sb);
    strbuf_release(&sb);        /* steal leaves a fresh empty buffer behind */
    return key;
}

static int master_listen_fd(struct master_serv *serv, int fd, struct master_err *err)
{
    if (serv->nfds >= SERVER_LISTEN_MAX) {
        close(fd);
        master_serv_fail(err, "service %s: more than %d listening addresses",
                         serv->def->name, SERVER_LISTEN_MAX);
        return -1;
    }
    serv->fds[serv->nfds++] = fd;
    return 0;
}

static void master_inet_bind(struct master_serv *serv, const char *host, const char *port,
                             int family, struct master_err *err)
{
    struct addrinfo hints, *res, *ai;
    int rc, fd, on = 1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_ADDRCONFIG;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        master_serv_fail(err, "service %s: address %s port %s: %s", serv->def->name,
                         host ? host : "*", port, gai_strerror(rc));
        return;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        char hbuf[NI_MAXHOST] = "?";

        getnameinfo(ai->ai_addr, ai->ai_addrlen, hbuf, sizeof(hbuf), NULL, 0, NI_NUMERICHOST);
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            master_serv_fail(err, "socket for %s: %m", hbuf);
            continue;
        }
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        /* One socket per family, so "::" must not also claim the IPv4 port. */
        if (ai->ai_family == AF_INET6)
            (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
            master_serv_fail(err, "service %s: bind %s port %s: %m", serv->def->name, hbuf, port);
            close(fd);
            continue;
        }
        if (master_listen_fd(serv, fd, err) < 0)
            break;
    }
    freeaddrinfo(res);
}

/* The families inet_protocols allows: AF_INET and/or AF_INET6. */
static void master_inet_families(int *v4, int *v6)
{
    const char *p = var_inet_protocols;

    *v4 = *v6 = 0;
    if (strstr(p, "all")) {
        *v4 = *v6 = 1;
        return;
    }
    *v4 = strstr(p, "ipv4") != NULL;
    *v6 = strstr(p, "ipv6") != NULL;
}

static void master_inet_open(struct master_serv *serv, struct master_err *err)
{
    char *host, *port, *list, *save = NULL, *tok;
    int v4, v6;

    if (master_inet_split(serv->def->name, &host, &port) < 0) {
        master_serv_fail(err, "%s:%d: bad inet service name \"%s\"", serv->def->file,
                         serv->def->line, serv->def->name);
        return;
    }
    master_inet_families(&v4, &v6);
    if (host) {
        master_inet_bind(serv, *host ? host : NULL, port, AF_UNSPEC, err);
    } else if (strcmp(var_inet_interfaces, "all") == 0) {
        if (v4)
            master_inet_bind(serv, "0.0.0.0", port, AF_INET, err);
        if (v6)
            master_inet_bind(serv, "::", port, AF_INET6, err);
    } else if (strcmp(var_inet_interfaces, "loopback-only") == 0) {
        if (v4)
            master_inet_bind(serv, "127.0.0.1", port, AF_INET, err);
        if (v6)
            master_inet_bind(serv, "::1", port, AF_INET6, err);
    } else {
        list = xstrdup(var_inet_interfaces);
        for (tok = strtok_r(list, ", \t\r\n", &save); tok; tok = strtok_r(NULL, ", \t\r\n", &save)) {
            size_t n = strlen(tok);

            if (tok[0] == '[' && n > 2 && tok[n - 1] == ']') {
                tok[n - 1] = '\0';
                tok++;
            }
            master_inet_bind(serv, tok, port, v4 && !v6 ? AF_INET : v6 && !v4 ? AF_INET6
                             : AF_UNSPEC, err);
        }
        free(list);
    }
    free(host);
    free(port);
}

static void master_local_open(struct master_serv *serv, struct master_err *err)
{
    const struct master_service *def = serv->def;
    struct sockaddr_un sun;
    uid_t uid;
    gid_t gid, sgid;
    mode_t mode;
    int fd;

    serv->path = xmalloc(strlen(def->name) + sizeof("private/"));
    strcpy(serv->path, def->private_ ? "private/" : "public/");
    strcat(serv->path, def->name);
    if (strchr(def->name, '/') || strlen(serv->path) >= sizeof(sun.sun_path)) {
        master_serv_fail(err, "%s:%d: bad %s service name \"%s\"", def->file, def->line,
                         def->type == MASTER_FIFO ? "fifo" : "unix", def->name);
        return;
    }
    master_owner_ids(&uid, &gid, &sgid);
    if (unlink(serv->path) < 0 && errno != ENOENT) {
        master_serv_fail(err, "remove %s: %m", serv->path);
        return;
    }
    if (def->type == MASTER_FIFO) {
        mode = def->private_ ? 0600 : 0622;
        /* O_RDWR: the fifo never reports EOF to the readers while master holds it. */
        if (mkfifo(serv->path, mode) < 0
            || (fd = open(serv->path, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
            master_serv_fail(err, "fifo %s: %m", serv->path);
            return;
        }
    } else {
        mode = def->private_ ? 0600 : 0666;
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        strcpy(sun.sun_path, serv->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0
            || listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
            master_serv_fail(err, "unix socket %s: %m", serv->path);
            if (fd >= 0)
                close(fd);
            return;
        }
    }
    if (fchmodat(AT_FDCWD, serv->path, mode, 0) < 0
        || (!master_unprivileged && lchown(serv->path, uid, gid) < 0)) {
        master_serv_fail(err, "set owner/mode of %s: %m", serv->path);
        close(fd);
        return;
    }
    (void) master_listen_fd(serv, fd, err);
}

struct master_serv *master_serv_open(const struct master_service *def, int fatal)
{
    struct master_serv *serv = xcalloc(1, sizeof(*serv));
    struct master_err err = {fatal, 0};

    serv->def = def;
    serv->key = master_serv_key(def);
    switch (def->type) {
    case MASTER_INET:
        master_inet_open(serv, &err);
        break;
    case MASTER_UNIX:
    case MASTER_FIFO:
        master_local_open(serv, &err);
        break;
    case MASTER_PASS:
        msg_warn("%s:%d: service %s: type \"pass\" is not supported yet; skipped",
                 def->file, def->line, def->name);
        break;
    }
    if (def->type == MASTER_INET && serv->nfds == 0 && !err.failed)
        master_serv_fail(&err, "service %s: no address to listen on", def->name);
    return serv;
}

void master_serv_close(struct master_serv *serv)
{
    int i;

    for (i = 0; i < serv->nfds; i++) {
        events_fd_del(master_events, serv->fds[i]);
        close(serv->fds[i]);
    }
    serv->nfds = 0;
    serv->watching = 0;
    if (serv->throttle_timer)
        events_timer_cancel(master_events, serv->throttle_timer);
    if (serv->wakeup_timer)
        events_timer_cancel(master_events, serv->wakeup_timer);
    master_serv_forget(serv);
    free(serv->key);
    free(serv->path);
    free(serv);
}

static void master_serv_demand(struct events *ev, int fd, int mask, void *ctx)
{
    master_spawn(ctx);
}

/* Polls the sockets exactly when a client could be waiting with nobody to serve it. */
void master_serv_watch(struct master_serv *serv)
{
    const struct master_service *def = serv->def;
    int limit = def->maxproc_default ? (int) var_default_process_limit : def->maxproc;
    int want, i;

    want = !master_stopping && serv->nfds > 0 && serv->avail == 0 && !serv->throttled
        && (limit == 0 || serv->total < limit);
    if (!master_stopping && serv->avail == 0 && limit > 0 && serv->total >= limit
        && serv->nfds > 0 && !serv->limit_warned) {
        msg_warn("service \"%s\" (%s) has reached its process limit \"%d\": "
                 "new clients may experience noticeable delays", def->name,
                 def->command, limit);
        serv->limit_warned = 1;
    }
    if (want == serv->watching)
        return;
    for (i = 0; i < serv->nfds; i++) {
        if (want) {
            if (events_fd_add(master_events, serv->fds[i], EVENTS_READ, master_serv_demand,
                              serv) < 0)
                msg_fatal("watch service %s: %m", def->name);
        } else {
            events_fd_del(master_events, serv->fds[i]);
        }
    }
    serv->watching = want;
}

void master_serv_open_all(void)
{
    struct master_serv **tail = &master_servs;
    size_t i;

    for (i = 0; i < master_cf.count; i++) {
        struct master_serv *serv = master_serv_open(master_cf.services + i, 1);

        *tail = serv;
        tail = &serv->next;
        master_wakeup_first(serv);
        master_serv_watch(serv);
    }
}
