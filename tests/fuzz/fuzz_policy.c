/*
 * fuzz_policy.c - the policy reply parser against arbitrary server bytes.
 * The input is the reply, offered the way the client sees it: prefixes of
 * growing length (byte 0 seeds the step), stopping at the first verdict.
 * Invariants: the verdict on a prefix never goes from complete or malformed
 * back to "need more" as bytes are added up to POLICY_REPLY_MAX; a complete
 * reply uses at most the bytes offered and ends in LF; the action is
 * non-empty, at most POLICY_ACTION_MAX bytes, and holds no LF and no NUL;
 * a malformed verdict always has a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy_client.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strbuf action, why;
    const char *buf;
    size_t len, used, step;
    int r = 0;

    if (size < 1)
        return 0;
    step = 1 + data[0] % 64;
    buf = (const char *) data + 1;
    size--;
    if (size > POLICY_REPLY_MAX + 64)
        size = POLICY_REPLY_MAX + 64;
    strbuf_init(&action, 64, POLICY_ACTION_MAX + 1);
    strbuf_init(&why, 64, 4096);
    for (len = 0;; len = len + step > size ? size : len + step) {
        r = policy_reply_parse(buf, len, &used, &action, &why);
        if (r != 0 || len == size)
            break;
    }
    if (r == 1) {
        if (used == 0 || used > len || buf[used - 1] != '\n')
            abort();
        if (action.len == 0 || action.len > POLICY_ACTION_MAX
            || memchr(action.data, '\n', action.len) || memchr(action.data, 0, action.len))
            abort();
        /* The same bytes, offered whole, give the same verdict. */
        if (policy_reply_parse(buf, size, &used, &action, &why) != 1)
            abort();
    } else if (r < 0) {
        if (why.len == 0)
            abort();
        if (policy_reply_parse(buf, size, &used, &action, &why) != -1)
            abort();
    } else if (size >= POLICY_REPLY_MAX) {
        abort();                /* a full buffer must get a verdict */
    }
    strbuf_release(&action);
    strbuf_release(&why);
    return 0;
}
