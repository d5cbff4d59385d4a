/*
 * echo.c - a SINGLE-mode test worker: answers each line with the same line.
 * Used by the integration tests to exercise master and the skeleton. Commands
 * (one per line): "PID" answers the worker's pid, "QUIT" ends the session,
 * anything else is echoed. Arguments in master.cf: "crash" makes the program exit 1
 * before it is ready (to test throttling); "slow" sleeps 2 s before each answer.
 * Must never be installed or listen anywhere master did not open. Reads are
 * bounded: 1024 bytes per line, 30 s per read.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msg.h"
#include "server.h"

#define ECHO_LINE_MAX 1024
#define ECHO_TIMEOUT_MS 30000

static int echo_slow;

static int echo_has_arg(const struct server_ctx *ctx, const char *word)
{
    int i;

    for (i = 0; i < ctx->argc; i++)
        if (strcmp(ctx->argv[i], word) == 0)
            return 1;
    return 0;
}

static void echo_post_init(const struct server_ctx *ctx)
{
    if (echo_has_arg(ctx, "crash"))
        msg_fatal("told to crash on start");
    echo_slow = echo_has_arg(ctx, "slow");
}

/* Reads one line (without its LF) into buf; returns its length or -1 at EOF/timeout. */
static int echo_read_line(int fd, char *buf, size_t size)
{
    size_t len = 0;

    while (len + 1 < size) {
        struct pollfd p = {fd, POLLIN, 0};
        char c;

        if (poll(&p, 1, ECHO_TIMEOUT_MS) <= 0 || read(fd, &c, 1) != 1)
            return -1;
        if (c == '\n')
            break;
        if (c != '\r')
            buf[len++] = c;
    }
    buf[len] = '\0';
    return (int) len;
}

static void echo_service(int fd, const struct server_ctx *ctx)
{
    char line[ECHO_LINE_MAX], out[ECHO_LINE_MAX + 32];
    int n;

    while (echo_read_line(fd, line, sizeof(line)) >= 0) {
        if (strcmp(line, "QUIT") == 0)
            break;
        if (echo_slow)
            sleep(2);
        if (strcmp(line, "PID") == 0)
            n = snprintf(out, sizeof(out), "%ld\n", (long) getpid());
        else
            n = snprintf(out, sizeof(out), "%s\n", line);
        if (write(fd, out, (size_t) n) != n)
            break;
    }
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_SINGLE,
        .post_init = echo_post_init,
        .service = echo_service,
    };

    server_main(argc, argv, &ops);
}
