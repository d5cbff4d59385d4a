/*
 * fuzz_dict_inline.c - the inline:{ ... } and static:{ ... } parsers and the
 * table-list splitter, with the input as the text after "inline:".
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dict.h"
#include "msg.h"
#include "mymalloc.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const prefixes[] = {"inline:", "static:", ""};
    struct strbuf spec, err;
    struct dict *d;
    struct dict_list *list;
    size_t i;

    msg_use_stderr(0);
    strbuf_init(&spec, 0, STRBUF_UNLIMITED);
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    for (i = 0; i < 2; i++) {
        strbuf_set(&spec, prefixes[i]);
        strbuf_append(&spec, data, strnlen((const char *) data, size));
        if ((d = dict_open(spec.data, DICT_FLAG_FOLD_KEY, &err)) != NULL) {
            (void) dict_get(d, "key");
            (void) dict_get(d, spec.data);
            dict_close(&d);
        }
    }
    /* The same bytes as a table list of inline/static tables only. */
    strbuf_reset(&spec);
    strbuf_append(&spec, data, strnlen((const char *) data, size));
    if (strstr(spec.data, "inline:") == NULL && strstr(spec.data, "static:") == NULL)
        strbuf_set(&spec, "static:x");
    if (strchr(spec.data, '/') == NULL && strstr(spec.data, "unix:") == NULL
        && (list = dict_list_open(spec.data, 0, &err)) != NULL) {
        (void) dict_list_get(list, "key");
        dict_list_close(&list);
    }
    strbuf_release(&spec);
    strbuf_release(&err);
    return 0;
}
