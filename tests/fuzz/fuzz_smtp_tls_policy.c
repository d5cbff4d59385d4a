/*
 * fuzz_smtp_tls_policy.c - the smtp_tls_policy_maps entry parser of the SMTP
 * client (a level, then match=, protocols=, ciphers=, exclude=, servername=,
 * "{ name = value }" groups) against arbitrary table values.
 * Invariants: never reads or writes outside the value or the policy (ASan);
 * an accepted entry has a known level, and match names only from verify up.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../smtp/smtp_tls.c"

/* Defined by smtp.c in the program. */
struct smtp_params smtp_par;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_tls_policy p;
    char *value;

    if (size > 8192)
        return 0;
    value = malloc(size + 1);
    memcpy(value, data, size);
    value[size] = 0;
    memset(&p, 0, sizeof(p));
    if (smtp_tls_entry(&p, value, "fuzz") == 0) {
        if (p.level < SMTP_TLS_NONE || p.level > SMTP_TLS_SECURE)
            abort();
        if (*p.match && p.level < SMTP_TLS_VERIFY)
            abort();
        if (strlen(p.match) >= sizeof(p.match) || strlen(p.protocols) >= sizeof(p.protocols)
            || strlen(p.sni) >= sizeof(p.sni))
            abort();
    }
    free(value);
    return 0;
}
