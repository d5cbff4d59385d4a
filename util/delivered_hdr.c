/*
 * delivered_hdr.c - prepended delivery headers and Delivered-To: loop
 * detection (contract in delivered_hdr.h).
 *
 * Must never: read past the primary headers or the content, keep more than
 * DELIVERED_HDR_MAX values or a value longer than header_size_limit. A read
 * error is NULL with errno (the agent defers); odd headers are just headers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "delivered_hdr.h"
#include "header.h"
#include "mymalloc.h"
#include "params.h"

#define DELIVERED_HDR_READ  65536       /* content read size */
#define DELIVERED_HDR_PIECE 8192        /* longest line piece given to the parser */

struct delivered_hdr {
    char **value;                       /* lower case, white space trimmed */
    size_t count;
};

static void delivered_hdr_emit(void *ctx, const char *text, size_t len, int truncated)
{
    struct delivered_hdr *dh = ctx;
    struct header_field f;
    const struct header_info *info;
    size_t vlen, i;
    char *v;

    (void) truncated;
    if (dh->count >= DELIVERED_HDR_MAX || header_split(text, len, &f) < 0)
        return;
    if ((info = header_lookup(f.name, f.name_len)) == NULL || info->id != HEADER_DELIVERED_TO)
        return;
    vlen = f.value_len;
    while (vlen > 0 && (f.value[vlen - 1] == ' ' || f.value[vlen - 1] == '\t'
                        || f.value[vlen - 1] == '\n' || f.value[vlen - 1] == '\r'))
        vlen--;
    /* A NUL would make the value compare as its prefix: not an address. */
    if (memchr(f.value, 0, vlen) != NULL)
        return;
    v = xstrndup(f.value, vlen);
    for (i = 0; i < vlen; i++)
        if (v[i] >= 'A' && v[i] <= 'Z')
            v[i] = (char) (v[i] - 'A' + 'a');
    if (dh->count % 16 == 0)
        dh->value = xreallocarray(dh->value, dh->count + 16, sizeof(*dh->value));
    dh->value[dh->count++] = v;
}

/* Feeds one line piece; returns 1 when the headers are over. */
static int delivered_hdr_feed(struct header_parser *hp, struct strbuf *line, int partial)
{
    enum header_result r = header_parser_line(hp, line->data, line->len, partial);

    strbuf_reset(line);
    return r != HEADER_MORE;
}

struct delivered_hdr *delivered_hdr_read(const struct deliver_request *req)
{
    struct delivered_hdr *dh = xcalloc(1, sizeof(*dh));
    size_t limit = var_header_size_limit > 0 ? (size_t) var_header_size_limit : 102400;
    struct header_parser *hp = header_parser_new(limit, delivered_hdr_emit, dh);
    char *buf = xmalloc(DELIVERED_HDR_READ);
    struct strbuf line;
    off_t pos = 0;
    ssize_t n, i;
    int over = 0, err = 0;

    strbuf_init(&line, 256, DELIVERED_HDR_PIECE);
    while (!over && (n = deliver_content_read(req, &pos, buf, DELIVERED_HDR_READ)) != 0) {
        if (n < 0) {
            err = errno ? errno : EIO;
            break;
        }
        for (i = 0; i < n && !over; i++) {
            if (buf[i] == '\n') {
                over = delivered_hdr_feed(hp, &line, 0);
                continue;
            }
            (void) strbuf_putc(&line, buf[i]);
            /* A long line goes to the parser in pieces. */
            if (line.len == DELIVERED_HDR_PIECE)
                over = delivered_hdr_feed(hp, &line, 1);
        }
    }
    if (!over && !err) {
        if (line.len > 0)
            (void) header_parser_line(hp, line.data, line.len, 0);
        header_parser_end(hp);
    }
    header_parser_free(&hp);
    strbuf_release(&line);
    free(buf);
    if (err) {
        delivered_hdr_free(&dh);
        errno = err;
        return NULL;
    }
    return dh;
}

int delivered_hdr_find(const struct delivered_hdr *dh, const char *address)
{
    size_t i;

    for (i = 0; i < dh->count; i++)
        if (strcasecmp(dh->value[i], address) == 0)
            return 1;
    return 0;
}

void delivered_hdr_free(struct delivered_hdr **dhp)
{
    struct delivered_hdr *dh = *dhp;
    size_t i;

    if (dh == NULL)
        return;
    for (i = 0; i < dh->count; i++)
        free(dh->value[i]);
    free(dh->value);
    free(dh);
    *dhp = NULL;
}

void delivered_hdr_prepend(struct strbuf *out, int flags, const char *sender,
                           const char *orig_rcpt, const char *rcpt)
{
    strbuf_reset(out);
    if (flags & DELIVERED_HDR_RETURN_PATH) {
        strbuf_puts(out, "Return-Path: <");
        if (*sender)
            address_quote(sender, out);
        strbuf_puts(out, ">\n");
    }
    if ((flags & DELIVERED_HDR_ORIG_TO) && var_enable_original_recipient) {
        strbuf_puts(out, "X-Original-To: ");
        address_quote(*orig_rcpt ? orig_rcpt : rcpt, out);
        strbuf_putc(out, '\n');
    }
    if (flags & DELIVERED_HDR_DELIVERED_TO) {
        strbuf_puts(out, "Delivered-To: ");
        address_quote(rcpt, out);
        strbuf_putc(out, '\n');
    }
}
