/*
 * fuzz_attr.c - libFuzzer target for the IPC attribute decoder (util/attr.c).
 * The input is one received byte stream. Descriptors are supplied as the
 * frame header's third byte asks (one more than allowed, to reach the
 * overflow path), the stream is fed in two pieces split where the first input
 * byte says, and every decoded attribute is then read back with the getter
 * of its own type and of a wrong one. A leaked descriptor or a read past the
 * frame aborts the run (the descriptor check below, ASan for memory).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"

static void fuzz_read_back(struct attr_msg *msg)
{
    struct attr_info info;
    struct attr_iter it;
    size_t cursor = 0, len;
    char name[ATTR_NAME_MAX + 1];
    const void *data;
    const char *s;
    uint32_t u;
    int64_t i;
    int fd;

    while (attr_walk(msg, &cursor, &info)) {
        memcpy(name, info.name, info.name_len);
        name[info.name_len] = '\0';
        if (info.list) {
            if (attr_iter_init(&it, msg, name) <= 0)
                abort();
            while (attr_iter_u32(&it, &u) > 0 || attr_iter_i64(&it, &i) > 0
                   || attr_iter_str(&it, &s, &len) > 0 || attr_iter_data(&it, &data, &len) > 0)
                ;
            continue;
        }
        switch (info.type) {
        case ATTR_TYPE_STR:
            if (attr_get_str(msg, name, &s, &len) < 0 || strlen(s) != len)
                abort();
            break;
        case ATTR_TYPE_DATA:
            if (attr_get_data(msg, name, &data, &len) < 0)
                abort();
            break;
        case ATTR_TYPE_FD:
            if (attr_get_fd(msg, name, &fd) < 0)
                abort();
            close(fd);
            break;
        default:
            (void) attr_get_u32(msg, name, &u);
            (void) attr_get_i64(msg, name, &i);
            break;
        }
        (void) attr_opt_data(msg, name, &data, &len);
    }
    (void) attr_check_consumed(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct attr_msg *msg;
    static int devnull = -1, lowest = -1;
    size_t used, cut, nfds, k;
    int res, probe;

    if (msg == NULL) {
        msg = attr_msg_new();
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        lowest = dup(devnull);
        close(lowest);
    }
    attr_msg_reset(msg);
    nfds = size > 2 ? data[2] % (ATTR_MAX_FDS + 2) : 0;
    for (k = 0; k < nfds; k++)
        if (attr_decoder_add_fd(msg, dup(devnull)) < 0)
            break;
    cut = size ? data[0] % (size + 1) : 0;
    res = attr_decoder_feed(msg, data, cut, &used);
    if (res == 0 && used == cut)
        res = attr_decoder_feed(msg, data + cut, size - cut, &used);
    if (res > 0)
        fuzz_read_back(msg);
    attr_msg_reset(msg);
    /* Every descriptor handed over must be closed by now: the lowest free slot is back. */
    probe = dup(devnull);
    if (probe != lowest)
        abort();
    close(probe);
    return 0;
}
