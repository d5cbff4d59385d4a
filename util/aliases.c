/*
 * aliases.c - the aliases(5) source format and building alias_database.
 * The split function works in place on one logical line of at most
 * DICT_LINE_MAX bytes; it never scans outside the string it is given. Values
 * are stored as written (trailing white space removed); expansion of ":include:",
 * "|command" and "/file" is the local delivery agent's job, not the builder's.
 * Errors: -1 with a reason; nothing here exits.
 */
#include <stdlib.h>
#include <string.h>

#include "aliases.h"
#include "dict.h"
#include "mymalloc.h"

static int aliases_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A quoted name: unquotes in place (backslash escapes one character) and leaves
 * *pp after the closing quote. Returns the end of the unquoted name or NULL. */
static char *aliases_unquote(char **pp, struct strbuf *why)
{
    char *in = *pp + 1, *out = *pp;

    while (*in != '"') {
        if (*in == 0) {
            strbuf_puts(why, "unterminated quoted alias name");
            return NULL;
        }
        if (*in == '\\') {
            in++;
            if (*in == 0) {
                strbuf_puts(why, "backslash at the end of an alias name");
                return NULL;
            }
        }
        *out++ = *in++;
    }
    *pp = in + 1;
    return out;
}

int aliases_split(char *line, char **key, char **value, struct strbuf *why)
{
    char *p = line, *end, *v;

    while (aliases_is_space(*p))
        p++;
    *key = p;
    if (*p == '"') {
        if ((end = aliases_unquote(&p, why)) == NULL)
            return -1;
        while (aliases_is_space(*p))
            p++;
        if (*p != ':') {
            strbuf_puts(why, "need name:value pair (no colon after the quoted name)");
            return -1;
        }
    } else {
        while (*p && *p != ':' && !aliases_is_space(*p))
            p++;
        end = p;
        while (aliases_is_space(*p))
            p++;
        if (*p != ':') {
            strbuf_puts(why, *p ? "need name:value pair (white space in the name; quote it)"
                        : "need name:value pair (no colon)");
            return -1;
        }
    }
    if (end == *key) {
        strbuf_puts(why, "empty alias name");
        return -1;
    }
    *end = 0;
    v = p + 1;
    while (aliases_is_space(*v))
        v++;
    end = v + strlen(v);
    while (end > v && aliases_is_space(end[-1]))
        *--end = 0;
    if (*v == 0) {
        strbuf_puts(why, "need name:value pair (empty value)");
        return -1;
    }
    *value = v;
    return 0;
}

int aliases_build_all(const char *alias_database, struct strbuf *err)
{
    char *copy = xstrdup(alias_database), *cp = copy, *spec;
    int built = 0;
    long n;

    while ((spec = strsep(&cp, ", \t\r\n")) != NULL) {
        if (*spec == 0)
            continue;
        if (strchr(spec, ':') == NULL) {
            strbuf_printf(err, "%s: alias_database entries are type:name", spec);
            built = -1;
            break;
        }
        if ((n = dict_build(spec, DICT_FLAG_FOLD_KEY, aliases_split, err)) < 0) {
            if (err->len == 0)
                strbuf_printf(err, "%s: cannot build the table", spec);
            built = -1;
            break;
        }
        built++;
    }
    free(copy);
    return built;
}
