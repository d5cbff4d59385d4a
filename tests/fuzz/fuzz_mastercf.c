/*
 * fuzz_mastercf.c - master.cf text must never crash, hang or leak the parser.
 */
#include <stddef.h>
#include <stdint.h>

#include "mastercf.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mastercf cf;
    struct strbuf err;

    strbuf_init(&err, 256, 1024 * 1024);
    mastercf_parse_text("master.cf", (const char *) data, size, &cf, &err);
    if (cf.count > 0)
        (void) mastercf_find(&cf, cf.services[0].name, cf.services[0].type);
    mastercf_free(&cf);
    strbuf_release(&err);
    return 0;
}
