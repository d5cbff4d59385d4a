/*
 * fuzz_maincf.c - main.cf text and $name expansion must never crash, hang or
 * leak: parse arbitrary bytes, edit the result, and expand every value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "maincf.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strbuf err, out;
    struct maincf *cf;
    int errors = 0;
    size_t i;

    strbuf_init(&err, 256, 1024 * 1024);
    strbuf_init(&out, 256, STRBUF_UNLIMITED);
    cf = maincf_parse_text("main.cf", (const char *) data, size, &err, &errors);
    for (i = 0; i < maincf_count(cf) && i < 64; i++) {
        strbuf_reset(&err);
        strbuf_reset(&out);
        config_expand(maincf_get(cf, i)->value, &out, &err);
        (void) param_suggest(maincf_get(cf, i)->name);
    }
    if (maincf_count(cf) > 0) {
        char *name = strdup(maincf_get(cf, 0)->name);

        maincf_set(cf, name, "edited");
        maincf_set(cf, "appended", "value");
        maincf_remove(cf, name);
        free(name);
    }
    strbuf_reset(&out);
    maincf_format(cf, &out);
    maincf_free(&cf);
    strbuf_release(&err);
    strbuf_release(&out);
    return 0;
}
