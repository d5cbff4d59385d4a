/*
 * ipc_bench.c - cost of the IPC codec, and of a frame over a socketpair.
 * Builds a message of 20 attributes and 100 recipients, decodes it and reads
 * every value back, many times over with reused messages (as a daemon does),
 * and prints nanoseconds per message. Not part of the build; compile with:
 *   cc -O2 -std=gnu11 -Iutil -o ipc_bench bench/ipc_bench.c util/attr.c \
 *      util/ipc.c util/msg.c util/strbuf.c util/mymalloc.c
 * (from the source tree, into any directory outside it). Never writes files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "attr.h"
#include "ipc.h"
#include "msg.h"

#define BENCH_RCPTS 100
#define BENCH_ATTRS 20

static char bench_names[BENCH_ATTRS][16];
static char bench_rcpts[BENCH_RCPTS][48];

static double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void bench_build(struct attr_msg *m)
{
    int i;

    attr_msg_reset(m);
    attr_put_str(m, "request", "deliver");
    for (i = 1; i < BENCH_ATTRS; i++) {
        if (i % 2)
            attr_put_str(m, bench_names[i], "some-value.example.com");
        else
            attr_put_i64(m, bench_names[i], 1700000000 + i);
    }
    for (i = 0; i < BENCH_RCPTS; i++)
        attr_add_str(m, "rcpt", bench_rcpts[i]);
}

/* Reads everything back; returns a checksum so nothing is optimized away. */
static size_t bench_read(struct attr_msg *m)
{
    struct attr_iter it;
    const char *s;
    size_t len, sum = 0;
    int64_t v;
    int i;

    if (attr_get_str(m, "request", &s, &len) < 0)
        msg_fatal("bench: %s", attr_msg_reason(m));
    sum += len;
    for (i = 1; i < BENCH_ATTRS; i++) {
        if (i % 2 ? attr_get_str(m, bench_names[i], &s, &len) : attr_get_i64(m, bench_names[i], &v))
            msg_fatal("bench: %s", attr_msg_reason(m));
        sum += len;
    }
    if (attr_iter_init(&it, m, "rcpt") != BENCH_RCPTS)
        msg_fatal("bench: rcpt count");
    while (attr_iter_str(&it, &s, &len) > 0)
        sum += len;
    if (attr_check_consumed(m) < 0)
        msg_fatal("bench: %s", attr_msg_reason(m));
    return sum;
}

int main(int argc, char **argv)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    long n = argc > 1 ? atol(argv[1]) : 200000, k;
    const void *data;
    const int *fds;
    size_t len, nfds, sum = 0;
    double t0, t1, t2;
    int sv[2];

    msg_init("ipc_bench");
    for (k = 0; k < BENCH_ATTRS; k++)
        snprintf(bench_names[k], sizeof(bench_names[k]), "attr_%ld", k);
    for (k = 0; k < BENCH_RCPTS; k++)
        snprintf(bench_rcpts[k], sizeof(bench_rcpts[k]), "recipient%ld@example.org", k);

    t0 = bench_now();
    for (k = 0; k < n; k++)
        bench_build(out);
    t1 = bench_now();
    attr_msg_frame(out, &data, &len, &fds, &nfds);
    for (k = 0; k < n; k++) {
        if (attr_decode(in, data, len) < 0)
            msg_fatal("bench: %s", attr_msg_reason(in));
        sum += bench_read(in);
    }
    t2 = bench_now();
    printf("frame %zu bytes, %d attributes + %d recipients, %ld rounds\n",
           len, BENCH_ATTRS, BENCH_RCPTS, n);
    printf("encode          %8.0f ns/message\n", (t1 - t0) / n);
    printf("decode+read     %8.0f ns/message\n", (t2 - t1) / n);
    printf("encode+decode   %8.0f ns/message\n", (t2 - t0) / n);

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        msg_fatal("socketpair: %m");
    t0 = bench_now();
    for (k = 0; k < n; k++) {
        bench_build(out);
        if (ipc_send(sv[0], out, 1000) < 0 || ipc_recv(sv[1], in, 0, 1000) < 0)
            msg_fatal("bench: send/recv: %m");
        sum += bench_read(in);
    }
    t1 = bench_now();
    printf("socketpair trip %8.0f ns/message (encode, send, receive, decode, read)\n",
           (t1 - t0) / n);
    close(sv[0]);
    close(sv[1]);
    attr_msg_free(&out);
    attr_msg_free(&in);
    return sum == 0;
}
