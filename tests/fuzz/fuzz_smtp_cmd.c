/*
 * fuzz_smtp_cmd.c - the SMTP command parser against arbitrary lines.
 * Byte 0 picks the extension flags (so every parameter is tried both offered
 * and not); the rest is one command line, not NUL-terminated, copied into a
 * buffer of exactly its size so any over-read trips the sanitizer.
 * Invariants: success leaves bounded values (address within the path limit,
 * ENVID and ORCPT within theirs, SIZE -1 or >= 0); failure leaves a reply that
 * starts with a 5xx code; xtext encode then decode is the identity.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "smtp_cmd.h"
#include "strbuf.h"

static void fuzz_check_reply(int rc, const struct strbuf *why)
{
    if (rc == 0)
        return;
    if (rc != -1 || why->len < 4 || why->data[0] != '5')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_mail_args m;
    struct smtp_rcpt_args r;
    struct smtp_cmd cmd;
    struct strbuf why, enc, dec;
    char *line;
    int flags, rc;

    if (size < 1)
        return 0;
    flags = data[0] & 0x7f;
    if (data[0] & 0x80)
        flags |= SMTP_CMD_F_STRICT;
    size--;
    line = malloc(size ? size : 1);
    memcpy(line, data + 1, size);

    strbuf_init(&why, 64, 1024);
    if (smtp_cmd_split(line, size, &cmd) == 0) {
        if (strlen(cmd.verb) == 0 || strlen(cmd.verb) > SMTP_CMD_VERB_MAX
            || cmd.arg < line || cmd.arg + cmd.arg_len > line + size)
            abort();
    }

    smtp_mail_args_init(&m);
    rc = smtp_cmd_parse_mail(line, size, flags, &m, &why);
    fuzz_check_reply(rc, &why);
    if (rc == 0 && (m.address.len > ADDRESS_MAX_PATH || m.envid.len > SMTP_CMD_ENVID_MAX
                    || m.size < -1))
        abort();
    smtp_mail_args_free(&m);

    strbuf_reset(&why);
    smtp_rcpt_args_init(&r);
    rc = smtp_cmd_parse_rcpt(line, size, flags, &r, &why);
    fuzz_check_reply(rc, &why);
    if (rc == 0 && (r.address.len == 0 || r.address.len > ADDRESS_MAX_PATH))
        abort();
    smtp_rcpt_args_free(&r);

    /* xtext: decode whatever decodes, then encode and decode again. */
    strbuf_init(&dec, 64, 4096);
    strbuf_init(&enc, 64, 16384);
    if (smtp_xtext_decode(line, size, 4096, &dec) == 0) {
        size_t i;

        for (i = 0; i < dec.len; i++)
            if ((unsigned char) dec.data[i] < 0x20 || dec.data[i] == 0x7f)
                abort();                /* never a control character */
    }
    if (smtp_xtext_decode(line, size, 4096, &dec) == 0) {
        struct strbuf again;

        smtp_xtext_encode(dec.data, &enc);
        strbuf_init(&again, 64, 4096);
        if (smtp_xtext_decode(enc.data, enc.len, 4096, &again) != 0 || again.len != dec.len
            || memcmp(again.data, dec.data, dec.len) != 0)
            abort();
        strbuf_release(&again);
    }
    strbuf_release(&dec);
    strbuf_release(&enc);
    strbuf_release(&why);
    free(line);
    return 0;
}
