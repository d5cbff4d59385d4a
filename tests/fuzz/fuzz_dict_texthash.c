/*
 * fuzz_dict_texthash.c - the postmap/texthash source parser (also used by
 * "petrel map build"): logical lines, continuations, key/value split, then
 * lookups of keys taken from the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dict.h"
#include "fuzz_dict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_dict_run(dict_texthash_open_buf, data, size, DICT_FLAG_FOLD_KEY);
    return 0;
}
