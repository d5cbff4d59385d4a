/*
 * showq_client.c - the client side of the showq service (contract in
 * showq_client.h): one request, the listing streamed back in pieces.
 *
 * Never trusts the service's frames beyond their limits (frame size, one DATA
 * piece or the end frame); never waits without a timeout; never runs a shell
 * (the helper is run with execv of one path).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attr.h"
#include "config.h"
#include "ipc.h"
#include "mymalloc.h"
#include "params.h"
#include "safe_file.h"
#include "showq_client.h"

#define SHOWQ_MAX_PIECES    (1L << 26)      /* 4 TiB of listing: a runaway server */

int showq_client_list(const char *path, int json, char *const *filters, size_t nfilters,
                      int out_fd, int timeout_ms, struct strbuf *why)
{
    struct attr_msg *m = attr_msg_new();
    struct strbuf sock;
    const void *data;
    size_t len, i;
    uint32_t end = 0, status = 0;
    const char *reason;
    long pieces;
    int fd, err, rc = -1;

    strbuf_init(&sock, 64, PATH_MAX);
    if (path)
        strbuf_set(&sock, path);
    else
        strbuf_printf(&sock, "%s/%s/%s", var_queue_directory, IPC_CLASS_PUBLIC,
                      var_showq_service_name);
    if ((fd = ipc_connect_path(sock.data, timeout_ms)) < 0) {
        err = errno;
        strbuf_printf(why, "cannot connect to the showq service %s: %s", sock.data,
                      strerror(err));
        attr_msg_free(&m);
        strbuf_release(&sock);
        errno = err;
        return -1;
    }
    attr_put_str(m, "request", "list");
    attr_put_str(m, "format", json ? "json" : "classic");
    for (i = 0; i < nfilters; i++)
        attr_add_str(m, "filter", filters[i]);
    if (ipc_send(fd, m, timeout_ms) < 0) {
        err = errno;
        strbuf_printf(why, "showq service %s: send: %s", sock.data, strerror(err));
        goto out;
    }
    for (pieces = 0; pieces < SHOWQ_MAX_PIECES; pieces++) {
        attr_msg_reset(m);
        if (ipc_recv(fd, m, SHOWQ_MAX_FRAME, timeout_ms) < 0) {
            err = errno ? errno : EPIPE;
            strbuf_printf(why, "showq service %s: %s", sock.data,
                          err == ETIMEDOUT ? "timed out" : strerror(err));
            goto out;
        }
        if (attr_opt_data(m, "data", &data, &len) == 1) {
            if (attr_check_consumed(m) < 0 || len > SHOWQ_CHUNK)
                break;
            if (safe_file_write_all(out_fd, data, len) < 0) {
                err = errno;
                strbuf_printf(why, "write listing: %s", strerror(err));
                goto out;
            }
            continue;
        }
        if (attr_get_u32(m, "end", &end) < 0 || end != 1
            || attr_get_u32(m, "status", &status) < 0)
            break;
        if (status != IPC_STATUS_OK) {
            if (attr_opt_str(m, "reason", &reason, &len) != 1)
                reason = "unknown error";
            strbuf_printf(why, "showq service: %.512s", reason);
            err = EIO;
            goto out;
        }
        rc = 0;
        err = 0;
        goto out;
    }
    strbuf_printf(why, "showq service %s: malformed reply", sock.data);
    err = EPROTO;
out:
    close(fd);
    attr_msg_free(&m);
    strbuf_release(&sock);
    errno = err;
    return rc;
}

int showq_client_helper(int json, char *const *filters, size_t nfilters, struct strbuf *why)
{
    const char *env = getenv("PETREL_SHOWQ");
    char *path, **argv;
    size_t n = 0, i;
    pid_t pid;
    int status;

    if (env && *env)
        path = xstrdup(env);
    else {
        path = xmalloc(strlen(var_command_directory) + sizeof("/petrel-showq"));
        strcpy(path, var_command_directory);
        strcat(path, "/petrel-showq");
    }
    if (access(path, X_OK) < 0) {
        strbuf_printf(why, "cannot execute %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    argv = xcalloc(nfilters * 2 + 6, sizeof(*argv));
    argv[n++] = path;
    argv[n++] = "-c";
    argv[n++] = (char *) config_dir();
    if (json)
        argv[n++] = "-j";
    for (i = 0; i < nfilters; i++) {
        argv[n++] = "-f";
        argv[n++] = filters[i];
    }
    argv[n] = NULL;
    fflush(stdout);
    if ((pid = fork()) < 0) {
        strbuf_printf(why, "fork: %s", strerror(errno));
        free(argv);
        free(path);
        return -1;
    }
    if (pid == 0) {
        execv(path, argv);
        dprintf(2, "cannot execute %s: %s\n", path, strerror(errno));
        _exit(69);
    }
    free(argv);
    free(path);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            strbuf_printf(why, "waitpid: %s", strerror(errno));
            return -1;
        }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 75;
}
