/*
 * fuzz_dns.c - the DNS reply parser against arbitrary replies.
 * Byte 0 picks the query type (A, AAAA, MX, CNAME) and the record limit;
 * the rest is the reply, copied into a buffer of exactly its size so any
 * over-read trips the sanitizer.
 * Invariants: the count never exceeds the limit; DNS_OK has at least one
 * record, of the asked type, with a NUL-terminated name within DNS_NAME_MAX
 * holding no dot-adjacent empty label, and the address length its type needs;
 * every other status has a reason and no records.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int types[4] = {DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_MX, DNS_TYPE_CNAME};
    struct dns_rr rr[DNS_RR_MAX];
    struct strbuf why;
    enum dns_status st;
    unsigned char *msg;
    int type, max, n = -1, i;

    if (size < 1)
        return 0;
    type = types[data[0] & 3];
    max = 1 + (data[0] >> 2) % DNS_RR_MAX;
    msg = malloc(size - 1 ? size - 1 : 1);
    memcpy(msg, data + 1, size - 1);
    strbuf_init(&why, 64, 1024);
    st = dns_reply_parse(msg, size - 1, type, rr, max, &n, &why);
    if (n < 0 || n > max)
        abort();
    if (st == DNS_OK) {
        if (n == 0)
            abort();
        for (i = 0; i < n; i++) {
            size_t len = strnlen(rr[i].name, sizeof(rr[i].name));

            if (rr[i].type != type || len > DNS_NAME_MAX)
                abort();
            if (len && (rr[i].name[0] == '.' || rr[i].name[len - 1] == '.'
                        || strstr(rr[i].name, "..")))
                abort();
            if ((type == DNS_TYPE_A && rr[i].addr_len != 4)
                || (type == DNS_TYPE_AAAA && rr[i].addr_len != 16))
                abort();
        }
    } else if (n != 0 || why.len == 0) {
        abort();
    }
    strbuf_release(&why);
    free(msg);
    return 0;
}
