/*
 * fuzz_status_log.c - the status log record parser against arbitrary lines.
 * The input is one line, not NUL-terminated, copied into a buffer of exactly
 * its size so any over-read trips the sanitizer.
 * Invariants: a parsed record has a non-empty recipient, an X.Y.Z status of
 * class 2, 4 or 5, a known action, NOTIFY bits within 0..15, non-negative
 * time and offset, and no value holds a control character (values go into
 * DSN headers); formatting it gives a line within STATUS_LOG_MAX_LINE and
 * without LF that parses to the same record again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "status_log.h"
#include "strbuf.h"

static void fuzz_check_text(const char *s)
{
    const unsigned char *p;

    for (p = (const unsigned char *) s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            abort();
}

static void fuzz_check_same(const struct status_entry *a, const struct status_entry *b)
{
    if (a->time != b->time || a->notify != b->notify || a->offset != b->offset
        || strcmp(a->recipient, b->recipient) != 0 || strcmp(a->orig_rcpt, b->orig_rcpt) != 0
        || strcmp(a->dsn_orcpt, b->dsn_orcpt) != 0 || strcmp(a->status, b->status) != 0
        || strcmp(a->action, b->action) != 0 || strcmp(a->relay, b->relay) != 0)
        abort();
    /* Formatting may cut a long reason, never change what it keeps. */
    if (strncmp(a->reason, b->reason, strlen(b->reason)) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strbuf scratch, scratch2, line;
    struct status_entry e, again;
    char *buf = malloc(size ? size : 1);

    memcpy(buf, data, size);
    strbuf_init(&scratch, 64, 0);
    strbuf_init(&scratch2, 64, 0);
    strbuf_init(&line, 64, 0);
    if (status_log_parse(buf, size, &e, &scratch) == 0) {
        if (*e.recipient == '\0' || e.time < 0 || e.offset < 0 || e.notify < 0
            || e.notify > 15 || strchr("245", e.status[0]) == NULL)
            abort();
        fuzz_check_text(e.recipient);
        fuzz_check_text(e.orig_rcpt);
        fuzz_check_text(e.dsn_orcpt);
        fuzz_check_text(e.status);
        fuzz_check_text(e.action);
        fuzz_check_text(e.relay);
        fuzz_check_text(e.reason);
        status_log_format(&e, &line);
        if (line.len >= STATUS_LOG_MAX_LINE || memchr(line.data, '\n', line.len) != NULL)
            abort();
        if (status_log_parse(line.data, line.len, &again, &scratch2) != 0)
            abort();
        fuzz_check_same(&e, &again);
    }
    strbuf_release(&scratch);
    strbuf_release(&scratch2);
    strbuf_release(&line);
    free(buf);
    return 0;
}
