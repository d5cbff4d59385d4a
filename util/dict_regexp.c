/*
 * dict_regexp.c - regexp:FILE, POSIX regular expression rules (regcomp).
 * Flags as in Postfix: i toggles case-insensitive matching (on by default),
 * x toggles extended syntax (on by default; off gives basic regular
 * expressions), m toggles multi-line mode (REG_NEWLINE). The rule-file format
 * and its failure modes are dict_pattern.c's.
 */
#include <regex.h>
#include <stdlib.h>
#include <sys/types.h>

#include "dict.h"
#include "dict_impl.h"
#include "dict_pattern.h"
#include "mymalloc.h"

#define DICT_REGEXP_FLAG_I  (1u << 0)
#define DICT_REGEXP_FLAG_X  (1u << 1)
#define DICT_REGEXP_FLAG_M  (1u << 2)

static void *dict_regexp_compile(const char *pattern, unsigned flags, size_t *ngroups,
                                 struct strbuf *why)
{
    regex_t *re = xmalloc(sizeof(*re));
    int cflags = 0, status;
    char buf[256];

    if (flags & DICT_REGEXP_FLAG_I)
        cflags |= REG_ICASE;
    if (flags & DICT_REGEXP_FLAG_X)
        cflags |= REG_EXTENDED;
    if (flags & DICT_REGEXP_FLAG_M)
        cflags |= REG_NEWLINE;
    if ((status = regcomp(re, pattern, cflags)) != 0) {
        regerror(status, re, buf, sizeof(buf));
        strbuf_printf(why, "bad regular expression \"%s\": %s", pattern, buf);
        free(re);
        return NULL;
    }
    *ngroups = re->re_nsub;
    return re;
}

static int dict_regexp_match(void *re, const char *key, struct dict_pattern_span *spans,
                             size_t nspans, struct strbuf *why)
{
    regmatch_t pm[DICT_PATTERN_MAX_GROUPS + 1];
    char buf[256];
    size_t i;
    int status;

    if (nspans > DICT_PATTERN_MAX_GROUPS + 1)
        nspans = DICT_PATTERN_MAX_GROUPS + 1;
    status = regexec(re, key, nspans, pm, 0);
    if (status == REG_NOMATCH)
        return 0;
    if (status != 0) {
        regerror(status, re, buf, sizeof(buf));
        strbuf_printf(why, "regexec: %s", buf);
        return -1;
    }
    for (i = 0; i < nspans; i++) {
        spans[i].start = pm[i].rm_so < 0 ? (size_t) -1 : (size_t) pm[i].rm_so;
        spans[i].end = pm[i].rm_eo < 0 ? (size_t) -1 : (size_t) pm[i].rm_eo;
    }
    return 1;
}

static void dict_regexp_free(void *re)
{
    regfree(re);
    free(re);
}

static const struct dict_pattern_engine dict_regexp_engine = {
    "regexp", "ixm", DICT_REGEXP_FLAG_I | DICT_REGEXP_FLAG_X,
    dict_regexp_compile, dict_regexp_match, dict_regexp_free,
};

static struct dict *dict_regexp_parse(const char *spec, const char *name, const char *buf,
                                      size_t len, int flags, struct strbuf *err)
{
    return dict_pattern_parse(&dict_regexp_engine, spec, name, buf, len, flags, err);
}

struct dict *dict_regexp_open(const char *spec, const char *name, int flags, struct strbuf *err)
{
    return dict_source_open_file(spec, name, flags, dict_regexp_parse, err);
}

struct dict *dict_regexp_open_buf(const char *name, const char *buf, size_t len, int flags,
                                  struct strbuf *err)
{
    return dict_source_open_buf("regexp", name, buf, len, flags, dict_regexp_parse, err);
}
