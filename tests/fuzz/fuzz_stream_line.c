/*
 * fuzz_stream_line.c - the stream line reader against arbitrary input.
 * Input layout: byte 0 picks the line limit (1..200, or up to 28000 to pass
 * the initial buffer size), byte 1 seeds the sizes of the reads the memory
 * source hands out (so terminators fall on every kind of boundary), byte 2
 * mixes in raw stream_read calls between lines; the rest is the data.
 * Invariants: every piece is at most limit bytes, a STREAM_EOL_LIMIT piece
 * is exactly limit bytes, no piece holds CR or LF, each piece is followed by
 * a NUL, and pieces plus their terminators (plus raw reads) rebuild the
 * input byte for byte, ending with EOF.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

struct fuzz_src {
    const uint8_t *data;
    size_t len;
    size_t pos;
    uint32_t rng;
    unsigned max_chunk;
};

static ssize_t fuzz_read(void *ctx, int fd, void *buf, size_t len)
{
    struct fuzz_src *m = ctx;
    size_t n = m->len - m->pos;
    size_t chunk;

    (void) fd;
    m->rng = m->rng * 1103515245u + 12345u;
    chunk = 1 + (m->rng >> 16) % m->max_chunk;
    if (n > chunk)
        n = chunk;
    if (n > len)
        n = len;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (ssize_t) n;
}

static ssize_t fuzz_write(void *ctx, int fd, const void *buf, size_t len)
{
    (void) ctx;
    (void) fd;
    (void) buf;
    (void) len;
    return -1;
}

static const struct stream_io fuzz_io = {.read = fuzz_read, .write = fuzz_write};

static const char *const eol_bytes[] = {
    [STREAM_EOL_NONE] = "", [STREAM_EOL_CRLF] = "\r\n", [STREAM_EOL_LF] = "\n",
    [STREAM_EOL_CR] = "\r", [STREAM_EOL_LIMIT] = "",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_src src;
    struct stream *s;
    const char *line;
    enum stream_eol eol;
    size_t limit, out_len = 0, ops = 0, raw_len, tlen;
    unsigned mix;
    char *out, raw[16];
    ssize_t n;

    if (size < 3)
        return 0;
    limit = data[0] < 200 ? (size_t) data[0] + 1 : (size_t) (data[0] - 199) * 500;
    src = (struct fuzz_src) {data + 3, size - 3, 0, data[1], 1 + data[1] % 64u};
    mix = data[2];
    out = malloc(src.len + 1);
    s = stream_open_io(-1, &fuzz_io, &src, 0);
    for (;;) {
        if (++ops > src.len + 2)
            abort();            /* every call must consume input */
        if (mix && ops % (mix % 7 + 1) == 0) {
            raw_len = mix % 13 + 1;
            if ((n = stream_read(s, raw, raw_len)) <= 0)
                break;
            if ((size_t) n > raw_len || out_len + (size_t) n > src.len)
                abort();
            memcpy(out + out_len, raw, (size_t) n);
            out_len += (size_t) n;
            continue;
        }
        if ((n = stream_read_line(s, &line, limit, &eol)) < 0)
            break;
        if ((size_t) n > limit || (eol == STREAM_EOL_LIMIT && (size_t) n != limit)
            || memchr(line, '\r', (size_t) n) || memchr(line, '\n', (size_t) n)
            || line[n] != '\0' || eol > STREAM_EOL_LIMIT)
            abort();
        tlen = strlen(eol_bytes[eol]);
        if (out_len + (size_t) n + tlen > src.len)
            abort();
        memcpy(out + out_len, line, (size_t) n);
        memcpy(out + out_len + (size_t) n, eol_bytes[eol], tlen);
        out_len += (size_t) n + tlen;
        if (n == 0 && tlen == 0)
            abort();            /* an empty piece must carry a terminator */
    }
    if (stream_status(s, STREAM_DIR_READ) != STREAM_EOF || out_len != src.len
        || memcmp(out, src.data, src.len) != 0)
        abort();
    stream_close(&s);
    free(out);
    return 0;
}
