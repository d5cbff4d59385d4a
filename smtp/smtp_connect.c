/*
 * smtp_connect.c - one connection attempt to a server address or a unix
 * socket, bounded by smtp_connect_timeout (lmtp_connect_timeout).
 *
 * The connect is non-blocking and waited for with poll(), so a server that
 * never answers the SYN costs at most the timeout. smtp_bind_address /
 * smtp_bind_address6 choose the source address when set.
 * Must never: wait without a bound. Failure: -1 with the system's reason.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"
#include "params.h"
#include "smtp.h"

static int smtp_bind_source(int fd, int family)
{
    const char *src = family == AF_INET ? var_smtp_bind_address : var_smtp_bind_address6;
    struct sockaddr_storage ss;
    socklen_t len;

    if (src == NULL || *src == 0 || smtp_par.lmtp)
        return 0;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

        sin->sin_family = AF_INET;
        if (inet_pton(AF_INET, src, &sin->sin_addr) != 1)
            msg_fatal("smtp_bind_address: bad IPv4 address \"%s\"", src);
        len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

        sin6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, src, &sin6->sin6_addr) != 1)
            msg_fatal("smtp_bind_address6: bad IPv6 address \"%s\"", src);
        len = sizeof(*sin6);
    }
    return bind(fd, (struct sockaddr *) &ss, len);
}

int smtp_connect(const struct smtp_addr *a, int timeout_ms, struct strbuf *why)
{
    int fd, err = 0;
    socklen_t elen = sizeof(err);
    struct timespec start, now;

    fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        strbuf_set(why, strerror(errno));
        return -1;
    }
    if (a->sa.ss_family != AF_UNIX && smtp_bind_source(fd, a->sa.ss_family) < 0) {
        strbuf_printf(why, "bind source address: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (connect(fd, (const struct sockaddr *) &a->sa, a->salen) == 0)
        return fd;
    if (errno != EINPROGRESS && errno != EAGAIN) {
        strbuf_set(why, strerror(errno));
        close(fd);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd p = {fd, POLLOUT, 0};
        long long spent;
        int n;

        clock_gettime(CLOCK_MONOTONIC, &now);
        spent = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (spent >= timeout_ms) {
            strbuf_set(why, strerror(ETIMEDOUT));
            close(fd);
            return -1;
        }
        n = poll(&p, 1, (int) (timeout_ms - spent));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            strbuf_set(why, strerror(errno));
            close(fd);
            return -1;
        }
        if (n > 0)
            break;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        err = errno;
    if (err != 0) {
        strbuf_set(why, strerror(err));
        close(fd);
        return -1;
    }
    return fd;
}
