/*
 * fuzz_dict.h - the shared body of the table source fuzz targets: parse the
 * input as a table, then look up the input's lines as keys (bounded length).
 */
#ifndef PETREL_FUZZ_DICT_H
#define PETREL_FUZZ_DICT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dict.h"
#include "msg.h"
#include "strbuf.h"

#define FUZZ_DICT_KEY_MAX 256

typedef struct dict *(*fuzz_dict_open_fn)(const char *, const char *, size_t, int,
                                          struct strbuf *);

static inline void fuzz_dict_run(fuzz_dict_open_fn open_buf, const uint8_t *data, size_t size,
                                 int flags)
{
    struct strbuf err, key;
    struct dict *d;
    const char *p = (const char *) data, *end = p + size, *nl;
    size_t len;

    msg_use_stderr(0);
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    strbuf_init(&key, 0, STRBUF_UNLIMITED);
    d = open_buf("fuzz", p, size, flags, &err);
    if (d != NULL) {
        while (p < end) {
            nl = memchr(p, '\n', (size_t) (end - p));
            len = nl ? (size_t) (nl - p) : (size_t) (end - p);
            strbuf_reset(&key);
            strbuf_append(&key, p, len > FUZZ_DICT_KEY_MAX ? FUZZ_DICT_KEY_MAX : len);
            (void) dict_get(d, key.data);
            (void) dict_error(d);
            p += len + 1;
        }
        dict_close(&d);
    }
    strbuf_release(&err);
    strbuf_release(&key);
}

#endif
