/*
 * dsn_split.c - an enhanced status code at the start of a reason text
 * (contract in dsn_split.h). Used by the error and discard transports, whose
 * nexthop is "X.Y.Z text" or just text.
 * Never reads past the NUL, never writes past DSN_SPLIT_SIZE; a bad default
 * code panics (a caller bug).
 */
#include <stdio.h>
#include <string.h>

#include "dsn_split.h"
#include "msg.h"

static int dsn_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

size_t dsn_valid(const char *text)
{
    const char *p = text;
    int part, n;

    if (*p != '2' && *p != '4' && *p != '5')
        return 0;
    p++;
    for (part = 0; part < 2; part++) {
        if (*p++ != '.')
            return 0;
        for (n = 0; *p >= '0' && *p <= '9'; p++)
            if (++n > 3)
                return 0;
        if (n == 0)
            return 0;
    }
    return *p == 0 || dsn_space(*p) ? (size_t) (p - text) : 0;
}

void dsn_split(const char *text, const char *def_dsn, char dsn[DSN_SPLIT_SIZE],
               const char **rest)
{
    size_t len;

    while (dsn_space(*text))
        text++;
    if ((len = dsn_valid(text)) > 0) {
        memcpy(dsn, text, len);
        dsn[len] = 0;
        text += len;
    } else if ((len = dsn_valid(def_dsn)) > 0 && def_dsn[len] == 0) {
        memcpy(dsn, def_dsn, len + 1);
    } else {
        msg_panic("dsn_split: bad default status \"%s\"", def_dsn);
    }
    while (dsn_space(*text))
        text++;
    *rest = text;
}
