/*
 * fuzz_address.c - libFuzzer target for the RFC 5321 path parser
 * (util/address.c). The first input byte picks the flags, the rest is the
 * path text, given with its exact length (no NUL, so a read past the end is
 * an ASan error). A parsed path must consume no more than it was given and
 * yield an internal form within the limits; quoted again and parsed again it
 * must give the same internal form, consuming all of the quoted text. The
 * domain helpers run on every internal form.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct strbuf *out, *ext, *back, *why, *base, *extension;
    const char *domain;
    size_t used, used2;
    char *text;
    int flags;

    if (out == NULL) {
        out = strbuf_new(64, 2048);
        ext = strbuf_new(64, 2048);
        back = strbuf_new(64, 2048);
        why = strbuf_new(64, 256);
        base = strbuf_new(64, 2048);
        extension = strbuf_new(64, 2048);
    }
    if (size == 0)
        return 0;
    flags = data[0] & (ADDRESS_FLAG_SMTPUTF8 | ADDRESS_FLAG_EMPTY_OK
                       | ADDRESS_FLAG_NO_BRACKETS_OK);
    text = malloc(size - 1 ? size - 1 : 1);
    memcpy(text, data + 1, size - 1);
    if (address_parse_path(text, size - 1, flags, out, &used, why) == 0) {
        if (used > size - 1 || used > ADDRESS_MAX_PATH || strlen(out->data) != out->len
            || out->len > ADDRESS_MAX_LOCAL + 1 + ADDRESS_MAX_DOMAIN)
            abort();
        if (out->len == 0 && !(flags & ADDRESS_FLAG_EMPTY_OK))
            abort();
        if (!(flags & ADDRESS_FLAG_SMTPUTF8) && address_has_8bit(out->data))
            abort();
        strbuf_set(ext, "<");
        address_quote(out->data, ext);
        strbuf_putc(ext, '>');
        if (address_parse_path(ext->data, ext->len, flags | ADDRESS_FLAG_EMPTY_OK, back,
                               &used2, why) != 0
            || used2 != ext->len || strcmp(back->data, out->data) != 0)
            abort();
        if ((domain = address_domain(out->data)) != 0
            && !address_domain_valid(domain, flags))
            abort();
        if (domain)
            (void) address_domain_fqdn(domain);
        (void) address_split_extension(out->data, "+-", base, extension);
    } else if (why->len == 0) {
        abort();
    }
    free(text);
    return 0;
}
