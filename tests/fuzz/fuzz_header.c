/*
 * fuzz_header.c - the header parser and the address-list extractor against
 * arbitrary input.
 * Input layout: byte 0 picks the header size limit (1..256), byte 1 the piece
 * size physical lines are cut into (1..64); the rest is message text.
 * Invariants: every emitted header is at most the limit and, unless flagged
 * truncated (a limit shorter than the name), splits into name and value;
 * every address reported is non-empty, NUL-free and
 * within the address limit; nothing reads outside the input (ASan).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"

#define FUZZ_MAX_ADDR 64

struct fuzz_ctx {
    size_t limit;
};

static int fuzz_addr(void *ctx, const char *addr)
{
    size_t len = strlen(addr);

    if (len == 0 || len > FUZZ_MAX_ADDR)
        abort();
    return 0;
}

static void fuzz_emit(void *ctx, const char *text, size_t len, int truncated)
{
    struct fuzz_ctx *fc = ctx;
    struct header_field f;

    if (len > fc->limit)
        abort();
    if (header_split(text, len, &f) < 0) {
        if (!truncated)
            abort();
        return;
    }
    if (f.value + f.value_len != text + len)
        abort();
    (void) header_lookup(f.name, f.name_len);
    (void) header_addr_list(f.value, f.value_len, 50, FUZZ_MAX_ADDR, fuzz_addr, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_ctx fc;
    struct header_parser *p;
    size_t piece, pos;
    enum header_result r = HEADER_MORE;

    if (size < 2)
        return 0;
    fc.limit = (size_t) data[0] % 256 + 1;
    piece = (size_t) data[1] % 64 + 1;
    data += 2;
    size -= 2;
    p = header_parser_new(fc.limit, fuzz_emit, &fc);
    for (pos = 0; pos < size && r == HEADER_MORE;) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t) (nl - data) : size, at = pos;

        do {
            size_t n = end - at > piece ? piece : end - at;

            r = header_parser_line(p, (const char *) data + at, n, at + n < end);
            at += n;
        } while (at < end && r == HEADER_MORE);
        pos = end + 1;
    }
    header_parser_end(p);
    header_parser_free(&p);
    /* The whole input as one address list, too. */
    (void) header_addr_list((const char *) data, size, 200, FUZZ_MAX_ADDR, fuzz_addr, NULL);
    return 0;
}
