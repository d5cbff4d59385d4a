/*
 * fuzz_dict_regexp.c - the regexp: rule-file parser
 * (logical lines, rules, flags, substitutions), then
 * lookups of keys taken from the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dict.h"
#include "fuzz_dict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_dict_run(dict_regexp_open_buf, data, size, 0);
    return 0;
}
