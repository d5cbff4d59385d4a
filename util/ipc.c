/*
 * ipc.c - send and receive attribute frames over Unix-domain stream sockets.
 * One sendmsg() per frame when the socket has room, with the descriptors in
 * the same call, so they attach to the frame's first byte. Receiving reads
 * exactly what the frame still needs: the kernel hands descriptors to the
 * read that takes the bytes they were sent with, so never reading ahead keeps
 * each frame's descriptors with that frame.
 *
 * Every call uses MSG_DONTWAIT and poll(), so the socket's blocking mode does
 * not matter and no wait outlives its deadline; MSG_NOSIGNAL keeps a vanished
 * peer from killing the process; received descriptors get close-on-exec
 * atomically (MSG_CMSG_CLOEXEC). Errors: see ipc.h.
 */
#define _GNU_SOURCE             /* accept4, MSG_CMSG_CLOEXEC */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "attr.h"
#include "ipc.h"
#include "msg.h"

#define IPC_SERVICE_MAX     64
#define IPC_CONNECT_RETRY   10      /* ms between tries while the backlog is full */

/* ---- deadlines ---- */

static int64_t ipc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t ipc_deadline(int timeout_ms)
{
    if (timeout_ms < 0)
        msg_panic("ipc: negative timeout %d", timeout_ms);
    return ipc_now_ms() + timeout_ms;
}

static int ipc_left(int64_t deadline)
{
    int64_t left = deadline - ipc_now_ms();

    return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int) left;
}

/* Waits until fd is ready for events; -1 ETIMEDOUT at the deadline. */
static int ipc_wait(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int n;

    for (;;) {
        n = poll(&pfd, 1, ipc_left(deadline));
        if (n > 0)
            return 0;               /* includes POLLHUP/POLLERR: the I/O call reports them */
        if (n == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR)
            return -1;
    }
}

/* ---- sending ---- */

int ipc_send_nb(int fd, struct attr_msg *msg, size_t *offset)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * ATTR_MAX_FDS)];
    } ctl;
    const void *data;
    const int *fds;
    size_t len, nfds;
    struct iovec iov;
    struct msghdr mh;
    struct cmsghdr *cm;
    ssize_t n;

    if (attr_msg_frame(msg, &data, &len, &fds, &nfds) < 0)
        return -1;
    while (*offset < len) {
        memset(&mh, 0, sizeof(mh));
        iov.iov_base = (char *) data + *offset;
        iov.iov_len = len - *offset;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        if (*offset == 0 && nfds > 0) {
            memset(&ctl, 0, sizeof(ctl));
            mh.msg_control = ctl.buf;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
            cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
            memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
        }
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        *offset += (size_t) n;
    }
    return 1;
}

static int ipc_send_until(int fd, struct attr_msg *msg, int64_t deadline)
{
    size_t offset = 0;
    int res;

    while ((res = ipc_send_nb(fd, msg, &offset)) == 0)
        if (ipc_wait(fd, POLLOUT, deadline) < 0)
            return -1;
    return res < 0 ? -1 : 0;
}

int ipc_send(int fd, struct attr_msg *msg, int timeout_ms)
{
    return ipc_send_until(fd, msg, ipc_deadline(timeout_ms));
}

/* ---- receiving ---- */

/* Hands every descriptor in the control data to msg, which closes what it cannot keep. */
static int ipc_take_fds(struct attr_msg *msg, struct msghdr *mh)
{
    struct cmsghdr *cm;
    size_t i, n;
    int fd, res = 0;

    for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < n; i++) {
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (res < 0)
                (void) close(fd);
            else if (attr_decoder_add_fd(msg, fd) < 0)
                res = -1;
        }
    }
    if (res == 0 && (mh->msg_flags & MSG_CTRUNC)) {
        /* The kernel dropped descriptors that did not fit: more than a frame may carry. */
        errno = EPROTO;
        res = -1;
    }
    return res;
}

int ipc_recv_nb(int fd, struct attr_msg *msg)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * ATTR_MAX_FDS)];
    } ctl;
    struct iovec iov;
    struct msghdr mh;
    ssize_t n;
    int res;

    for (;;) {
        memset(&mh, 0, sizeof(mh));
        iov.iov_len = attr_decoder_space(msg, &iov.iov_base);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        if (ipc_take_fds(msg, &mh) < 0)
            return -1;
        if (n == 0)
            return attr_decoder_eof(msg);
        if ((res = attr_decoder_commit(msg, (size_t) n)) != 0)
            return res;
    }
}

static int ipc_recv_until(int fd, struct attr_msg *msg, size_t max_frame, int64_t deadline)
{
    int res;

    attr_msg_reset(msg);
    if (max_frame)
        attr_decoder_set_frame_limit(msg, max_frame);
    while ((res = ipc_recv_nb(fd, msg)) == 0)
        if (ipc_wait(fd, POLLIN, deadline) < 0)
            return -1;
    return res < 0 ? -1 : 0;
}

int ipc_recv(int fd, struct attr_msg *msg, size_t max_frame, int timeout_ms)
{
    return ipc_recv_until(fd, msg, max_frame, ipc_deadline(timeout_ms));
}

/* ---- connecting and listening ---- */

static int ipc_sockaddr(struct sockaddr_un *sun, const char *path)
{
    size_t len = strlen(path);

    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (len == 0 || len >= sizeof(sun->sun_path)) {
        errno = len ? ENAMETOOLONG : EINVAL;
        return -1;
    }
    memcpy(sun->sun_path, path, len + 1);
    return 0;
}

static int ipc_connect_until(const char *path, int64_t deadline)
{
    struct sockaddr_un sun;
    socklen_t elen = sizeof(int);
    int fd, err, saved;

    if (ipc_sockaddr(&sun, path) < 0)
        return -1;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
        return -1;
    for (;;) {
        if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) == 0 || errno == EISCONN)
            return fd;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            /* The server's backlog is full; a Unix socket does not signal when it frees. */
            if (ipc_left(deadline) == 0) {
                errno = ETIMEDOUT;
                break;
            }
            (void) poll(NULL, 0, ipc_left(deadline) < IPC_CONNECT_RETRY
                        ? ipc_left(deadline) : IPC_CONNECT_RETRY);
            continue;
        }
        if (errno != EINPROGRESS || ipc_wait(fd, POLLOUT, deadline) < 0)
            break;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
            break;
        if (err == 0)
            return fd;
        errno = err;
        break;
    }
    saved = errno;
    (void) close(fd);
    errno = saved;
    return -1;
}

int ipc_connect_path(const char *path, int timeout_ms)
{
    return ipc_connect_until(path, ipc_deadline(timeout_ms));
}

/* Service names come from master.cf; refuse anything that could leave the directory. */
static int ipc_service_path(char *buf, size_t size, const char *class, const char *service)
{
    size_t len = strlen(service), i;

    if (strcmp(class, IPC_CLASS_PRIVATE) != 0 && strcmp(class, IPC_CLASS_PUBLIC) != 0)
        msg_panic("ipc_connect: bad class \"%.40s\"", class);
    if (len == 0 || len > IPC_SERVICE_MAX || service[0] == '.')
        goto bad;
    for (i = 0; i < len; i++)
        if (!(service[i] >= 'a' && service[i] <= 'z') && !(service[i] >= 'A' && service[i] <= 'Z')
            && !(service[i] >= '0' && service[i] <= '9') && !strchr("._-", service[i]))
            goto bad;
    snprintf(buf, size, "%s/%s", class, service);
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

static int ipc_connect_service(const char *class, const char *service, int64_t deadline)
{
    char path[sizeof(((struct sockaddr_un *) 0)->sun_path)];

    if (ipc_service_path(path, sizeof(path), class, service) < 0)
        return -1;
    return ipc_connect_until(path, deadline);
}

int ipc_connect(const char *class, const char *service, int timeout_ms)
{
    return ipc_connect_service(class, service, ipc_deadline(timeout_ms));
}

int ipc_listen(const char *path, int backlog)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, saved;

    if (ipc_sockaddr(&sun, path) < 0)
        return -1;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
        return -1;
    if (bind(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
        /* Only a socket left by a dead server is replaced, never another file. */
        if (errno != EADDRINUSE || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)
            || unlink(path) < 0 || bind(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0)
            goto fail;
    }
    if (listen(fd, backlog) < 0)
        goto fail;
    return fd;
fail:
    saved = errno;
    (void) close(fd);
    errno = saved;
    return -1;
}

int ipc_accept(int listen_fd, int timeout_ms)
{
    int64_t deadline = ipc_deadline(timeout_ms);
    int fd;

    for (;;) {
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0)
            return fd;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (ipc_wait(listen_fd, POLLIN, deadline) < 0)
            return -1;
    }
}

int ipc_call(const char *class, const char *service, struct attr_msg *req,
             struct attr_msg *resp, size_t max_frame, int timeout_ms)
{
    int64_t deadline = ipc_deadline(timeout_ms);
    int fd, res, saved;

    if ((fd = ipc_connect_service(class, service, deadline)) < 0)
        return -1;
    res = ipc_send_until(fd, req, deadline);
    if (res == 0)
        res = ipc_recv_until(fd, resp, max_frame, deadline);
    saved = errno;
    (void) close(fd);
    errno = saved;
    return res;
}
