/*
 * fuzz_milter.c - the milter reply decoder against arbitrary filter output.
 * Input layout: byte 0 is the reply command, the rest its payload; the same
 * payload is also decoded as an OPTNEG reply.
 * Invariants: decoding never reads outside the payload (ASan); every string
 * a successful decode returns ends inside the payload; a REPLYCODE text that
 * decodes is a valid 4xx/5xx reply; OPTNEG macro lists are bounded.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter_proto.h"

static void fuzz_inside(const char *s, const char *buf, size_t len)
{
    if (s == NULL)
        return;
    if (s < buf || s > buf + len || memchr(s, 0, (size_t) (buf + len + 1 - s)) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct milter_reply r;
    struct milter_optneg o;
    const char *why;
    char *buf;
    size_t len;
    int i;

    if (size < 1 || size > MILTER_PKT_MAX)
        return 0;
    len = size - 1;
    buf = malloc(len + 1);
    memcpy(buf, data + 1, len);
    buf[len] = 0;
    if (milter_reply_decode(data[0], buf, len, &r, &why) == 0) {
        fuzz_inside(r.name, buf, len);
        fuzz_inside(r.value, buf, len);
        fuzz_inside(r.text, buf, len);
        if (r.cmd == 'y' && milter_replycode_valid(r.text) != 0)
            abort();
        if (r.data && (r.data != buf || r.len != len))
            abort();
    } else if (why == NULL) {
        abort();
    }
    memcpy(buf, data + 1, len);
    if (milter_optneg_decode(buf, len, &o, &why) == 0) {
        for (i = 0; i < MILTER_STAGE_COUNT; i++) {
            fuzz_inside(o.symlist[i], buf, len);
            if (o.symlist[i] && strlen(o.symlist[i]) > MILTER_SYMLIST_MAX)
                abort();
        }
    }
    free(buf);
    return 0;
}
