/*
 * dict_regexp.c - regexp:FILE, POSIX regular expression rules (regcomp).
 * Flags as in Postfix: i toggles case-insensitive matching (on by default),
 * x toggles extended syntax (on by default; off gives basic regular
 * expressions), m toggles multi-line mode (REG_NEWLINE). The rule-file format
 * and its failure modes are dict_pattern.c's.
 * glibc's regcomp copies the operand of "+" and "{n,m}" once per repetition,
 * so nested repetitions grow exponentially ("((a{99}){99}){99}" or thirty
 * stacked "+" exhaust memory). Patterns whose estimated size exceeds
 * DICT_REGEXP_MAX_NODES are refused at open, before regcomp sees them.
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

#define DICT_REGEXP_MAX_NODES   100000.0

/* Skips a bracket expression starting at p ("["); returns the character after it. */
static const char *dict_regexp_skip_bracket(const char *p)
{
    p++;
    if (*p == '^')
        p++;
    if (*p == ']')
        p++;
    while (*p && *p != ']') {
        if (*p == '[' && (p[1] == ':' || p[1] == '=' || p[1] == '.')) {
            char close = p[1];

            for (p += 2; *p && !(*p == close && p[1] == ']'); p++)
                 /* void */ ;
            if (*p)
                p += 2;
        } else {
            p++;
        }
    }
    return *p ? p + 1 : p;
}

/* Multiplies size by the repetition operators at *pp (several may follow).
 * More than two in a row (POSIX leaves even two undefined; "+?" is a common
 * slip from Perl syntax) count as too complex: glibc's epsilon closure over
 * "a*++++++++" takes minutes, whatever the size estimate says. */
#define DICT_REGEXP_MAX_STACKED 2

static double dict_regexp_repeat(const char **pp, double size, int ere)
{
    const char *p = *pp;
    unsigned long lo, hi;
    char *end;
    int stacked;

    for (stacked = 0;; stacked++) {
        if (stacked > DICT_REGEXP_MAX_STACKED)
            size = DICT_REGEXP_MAX_NODES * 2;
        if (*p == '*' || (ere && *p == '?')) {
            p++;
        } else if (ere && *p == '+') {
            size *= 2;
            p++;
        } else if ((ere && *p == '{') || (!ere && p[0] == '\\' && p[1] == '{')) {
            p += ere ? 1 : 2;
            lo = strtoul(p, &end, 10);
            hi = lo;
            if (*end == ',') {
                hi = strtoul(end + 1, &end, 10);
                if (hi < lo)
                    hi = lo + 1;
            }
            size *= (double) (hi > 0 ? hi : 1) + 1;
            while (*p && *p != '}')
                p++;
            if (*p)
                p++;
        } else {
            break;
        }
    }
    *pp = p;
    return size;
}

/* An upper estimate of the nodes regcomp builds; groups nest via a stack. */
static double dict_regexp_size(const char *p, int ere)
{
    double stack[64], sum = 0, atom;
    size_t depth = 0;

    while (*p) {
        int open = ere ? *p == '(' : (p[0] == '\\' && p[1] == '(');
        int close = ere ? *p == ')' : (p[0] == '\\' && p[1] == ')');

        if (open) {
            if (depth >= sizeof(stack) / sizeof(stack[0]))
                return DICT_REGEXP_MAX_NODES + 1;
            stack[depth++] = sum;
            sum = 0;
            p += ere ? 1 : 2;
            continue;
        }
        if (close && depth > 0) {
            p += ere ? 1 : 2;
            atom = sum + 1;
            sum = stack[--depth];
        } else if (*p == '[') {
            p = dict_regexp_skip_bracket(p);
            atom = 1;
        } else {
            p += (*p == '\\' && p[1]) ? 2 : 1;
            atom = 1;
        }
        sum += dict_regexp_repeat(&p, atom, ere);
        if (sum > DICT_REGEXP_MAX_NODES)
            return sum;
    }
    while (depth > 0)
        sum += stack[--depth];
    return sum;
}

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
    if (dict_regexp_size(pattern, (cflags & REG_EXTENDED) != 0) > DICT_REGEXP_MAX_NODES) {
        strbuf_printf(why, "regular expression \"%s\" too complex: nested or stacked "
                      "repetitions expand beyond %.0f elements", pattern,
                      DICT_REGEXP_MAX_NODES);
        free(re);
        return NULL;
    }
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
