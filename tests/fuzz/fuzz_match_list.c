/*
 * fuzz_match_list.c - the match list pattern parser (names, addresses,
 * networks, negation, inline tables) and matching against a few names and
 * addresses. Inputs that could name a file ("/..." or "type:/...") are
 * dropped: the target must not read the fuzzing host's files.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "match_list.h"
#include "msg.h"
#include "strbuf.h"

/* Whether a word of text starts with "/" or a table names a file. */
static int names_a_file(const char *text)
{
    const char *p;

    for (p = text; *p; p++)
        if (*p == '/' && (p == text || strchr(" \t\r\n,!:{", p[-1])))
            return 1;
    return strstr(text, "unix:") != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum match_list_kind kinds[] = {
        MATCH_LIST_DOMAIN, MATCH_LIST_NAMADR, MATCH_LIST_ADDR, MATCH_LIST_STRING,
    };
    static const char *const names[] = {"example.com", "a.b.example.com", "[192.0.2.1]", "x", ""};
    static const char *const addrs[] = {"192.0.2.1", "::1", "2001:db8::5", "::ffff:10.0.0.1"};
    struct strbuf text, err;
    struct match_list *l;
    unsigned char bin[16];
    int family;
    size_t k, i;

    msg_use_stderr(0);
    if (size == 0)
        return 0;
    strbuf_init(&text, 0, STRBUF_UNLIMITED);
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    strbuf_append(&text, data + 1, strnlen((const char *) data + 1, size - 1));
    (void) match_list_parse_addr(text.data, &family, bin);
    if (!names_a_file(text.data)) {
        k = data[0] % (sizeof(kinds) / sizeof(kinds[0]));
        if ((l = match_list_open(data[0] & 0x80 ? "relay_domains" : "mydestination", kinds[k],
                                 text.data, &err)) != NULL) {
            for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                (void) match_list_domain(l, names[i]);
                (void) match_list_string(l, names[i]);
                (void) match_list_host(l, names[i], addrs[i % 4]);
            }
            for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
                (void) match_list_addr(l, addrs[i]);
            match_list_free(&l);
        }
    }
    strbuf_release(&text);
    strbuf_release(&err);
    return 0;
}
