/*
 * fuzz_aliases.c - the aliases(5) split over every logical line of arbitrary
 * input: it must never read outside the line, and a successful split must
 * return a non-empty name and value that lie inside the line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aliases.h"
#include "dict_impl.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dict_source src;
    struct strbuf err, why;
    char *key, *value, *line, *end;

    strbuf_init(&err, 64, 4096);
    strbuf_init(&why, 64, 4096);
    dict_source_init(&src, "fuzz", (const char *) data, size);
    while (dict_source_next(&src, &err) > 0) {
        line = src.line.data;
        end = line + src.line.len;
        strbuf_reset(&why);
        if (aliases_split(line, &key, &value, &why) == 0) {
            if (key < line || key >= end || value < line || value >= end
                || *key == 0 || *value == 0)
                abort();
        } else if (why.len == 0) {
            abort();
        }
    }
    dict_source_release(&src);
    strbuf_release(&why);
    strbuf_release(&err);
    return 0;
}
