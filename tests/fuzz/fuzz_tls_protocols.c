/*
 * fuzz_tls_protocols.c - the TLS protocols setting parser (smtpd_tls_protocols
 * and friends) against arbitrary main.cf values.
 * Invariants: never reads outside the value (ASan); a refused value comes with
 * a reason; an accepted one gives a range within SSLv3..TLSv1.3, lowest first.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "strbuf.h"
#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strbuf why;
    char *spec;
    int minv, maxv;

    if (size > 4096)
        return 0;
    spec = malloc(size + 1);
    memcpy(spec, data, size);
    spec[size] = 0;
    strbuf_init(&why, 64, 4096);
    if (tls_protocols_parse(spec, &minv, &maxv, &why) == 0) {
        if (minv < SSL3_VERSION || maxv > TLS1_3_VERSION || minv > maxv)
            abort();
    } else if (why.len == 0) {
        abort();
    }
    strbuf_release(&why);
    free(spec);
    return 0;
}
