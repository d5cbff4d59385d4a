/*
 * fuzz_milter_list.c - the milter list parser (smtpd_milters) and the
 * milter_macro_defaults parser against arbitrary main.cf values.
 * Input layout: the list, a NUL byte, then the defaults (none: empty).
 * Invariants: parsing never reads outside the value (ASan) and connects to
 * nothing; a list is either refused with a reason or holds 1 to 16 milters
 * (a value of separators only is the empty list); refused defaults come with
 * a reason, and a list parses only when its defaults do.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter.h"
#include "params.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strbuf why;
    struct milters *ms;
    char *list, *defaults;
    size_t n;
    int defaults_ok;

    if (size > 8192)
        return 0;
    list = malloc(size + 2);
    memcpy(list, data, size);
    list[size] = 0;
    list[size + 1] = 0;
    n = strlen(list);
    defaults = list + n + (n < size);
    var_milter_connect_macros = "j {daemon_name} v";
    var_milter_helo_macros = "";
    var_milter_mail_macros = "i {mail_addr}";
    var_milter_rcpt_macros = "i {rcpt_addr}";
    var_milter_data_macros = "i";
    var_milter_end_of_header_macros = "i";
    var_milter_end_of_data_macros = "i";
    var_milter_unknown_command_macros = "";
    var_milter_default_action = "tempfail";
    var_milter_protocol = "6";
    var_milter_connect_timeout = 5;
    var_milter_command_timeout = 2;
    var_milter_content_timeout = 2;
    var_milter_macro_defaults = defaults;

    strbuf_init(&why, 64, STRBUF_UNLIMITED);
    defaults_ok = milter_macro_defaults_valid(defaults, &why);
    if (!defaults_ok && why.len == 0)
        abort();
    strbuf_reset(&why);
    ms = milters_create(list, &why);
    if (ms != NULL && (!defaults_ok || milters_count(ms) < 1 || milters_count(ms) > 16))
        abort();
    if (ms == NULL && defaults_ok && why.len == 0 && list[strspn(list, ", \t\r\n")] != 0)
        abort();
    milters_free(&ms);
    strbuf_release(&why);
    free(list);
    return 0;
}
