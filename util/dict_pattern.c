/*
 * dict_pattern.c - parsing and evaluating regexp:/pcre: rule files, with the
 * regular expression engine behind a small vtable.
 * Every problem in a rule file (bad delimiter, unknown flag, unbalanced
 * if/endif, $n beyond the pattern's groups, $n after a negated pattern, a
 * pattern the engine refuses) fails the open with "FILE:LINE: message". At
 * lookup time an engine error (such as a PCRE2 match limit) is logged and the
 * rule is taken as not matching, so one pathological key cannot hang a lookup;
 * a result larger than DICT_VALUE_MAX fails the lookup with DICT_ERR_RETRY.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "dict_impl.h"
#include "dict_pattern.h"
#include "msg.h"
#include "mymalloc.h"

enum dict_pattern_kind { RULE_MATCH, RULE_IF, RULE_ENDIF };

struct dict_pattern_rule {
    enum dict_pattern_kind kind;
    int negate;
    void *re;
    size_t ngroups;
    char *result;               /* RULE_MATCH */
    size_t endif;               /* RULE_IF: index of its endif */
    unsigned long lineno;
};

struct dict_pattern {
    struct dict dict;
    const struct dict_pattern_engine *engine;
    struct dict_pattern_rule *rules;
    size_t count;
    struct strbuf value;
    char *file;                 /* for warnings at lookup time */
};

#define DICT_PATTERN_UNSET ((size_t) -1)

/*
 * One scanner for result templates: validates at open (key == NULL: only
 * checks that every $n is within max_group, max_group < 0 forbidding any) and
 * expands at lookup, so the two can never disagree about the syntax.
 */
static int dict_pattern_expand(const char *tmpl, long max_group, const char *key,
                               const struct dict_pattern_span *spans, struct strbuf *out,
                               struct strbuf *why)
{
    const char *p = tmpl, *name, *end;
    size_t namelen, n;
    char close;

    while (*p) {
        if (*p != '$' || (p[1] != '$' && p[1] != '{' && p[1] != '(' && !isalnum((unsigned char) p[1]) && p[1] != '_')) {
            if (out && strbuf_putc(out, *p) < 0)
                goto toolong;
            p++;
            continue;
        }
        if (p[1] == '$') {
            if (out && strbuf_putc(out, '$') < 0)
                goto toolong;
            p += 2;
            continue;
        }
        if (p[1] == '{' || p[1] == '(') {
            close = p[1] == '{' ? '}' : ')';
            name = p + 2;
            if ((end = strchr(name, close)) == NULL) {
                strbuf_printf(why, "missing \"%c\" in \"%s\"", close, tmpl);
                return -1;
            }
            namelen = (size_t) (end - name);
            p = end + 1;
        } else {
            name = p + 1;
            for (end = name; isalnum((unsigned char) *end) || *end == '_'; end++)
                 /* void */ ;
            namelen = (size_t) (end - name);
            p = end;
        }
        if (namelen == 0 || namelen > 2 || strspn(name, "0123456789") < namelen) {
            strbuf_printf(why, "bad substitution \"$%.*s\" in \"%s\": expected $1..$%d",
                          (int) (namelen > 40 ? 40 : namelen), name, tmpl,
                          DICT_PATTERN_MAX_GROUPS);
            return -1;
        }
        n = (size_t) (name[0] - '0');
        if (namelen == 2)
            n = n * 10 + (size_t) (name[1] - '0');
        if (max_group < 0) {
            strbuf_printf(why, "$%zu in the result of a negated pattern", n);
            return -1;
        }
        if (n > (size_t) max_group) {
            strbuf_printf(why, "$%zu out of range: the pattern has %ld group%s", n, max_group,
                          max_group == 1 ? "" : "s");
            return -1;
        }
        if (out && spans[n].start != DICT_PATTERN_UNSET
            && strbuf_append(out, key + spans[n].start, spans[n].end - spans[n].start) < 0)
            goto toolong;
    }
    return 0;

toolong:
    strbuf_printf(why, "result longer than %d bytes", DICT_VALUE_MAX);
    return -1;
}

static const char *dict_pattern_get(struct dict *d, const char *key)
{
    struct dict_pattern *dp = (struct dict_pattern *) d;
    struct dict_pattern_span spans[DICT_PATTERN_MAX_GROUPS + 1];
    struct dict_pattern_rule *rule;
    struct strbuf why;
    size_t i, nspans;
    int m;

    strbuf_init(&why, 0, 1024);
    for (i = 0; i < dp->count; i++) {
        rule = dp->rules + i;
        if (rule->kind == RULE_ENDIF)
            continue;
        nspans = rule->ngroups + 1;
        if (nspans > DICT_PATTERN_MAX_GROUPS + 1)
            nspans = DICT_PATTERN_MAX_GROUPS + 1;
        m = dp->engine->match(rule->re, key, spans, nspans, &why);
        if (m < 0) {
            msg_warn("%s:%lu: %s; the rule is skipped for this lookup", dp->file,
                     rule->lineno, why.data);
            strbuf_reset(&why);
        } else if (rule->negate) {
            m = !m;
        }
        if (rule->kind == RULE_IF) {
            if (m <= 0)
                i = rule->endif;
            continue;
        }
        if (m <= 0)
            continue;
        strbuf_reset(&dp->value);
        if (dict_pattern_expand(rule->result, (long) rule->ngroups, key, spans, &dp->value,
                                &why) < 0) {
            msg_warn("%s:%lu: %s", dp->file, rule->lineno, why.data);
            d->error = DICT_ERR_RETRY;
            strbuf_release(&why);
            return NULL;
        }
        strbuf_release(&why);
        return dp->value.data;
    }
    strbuf_release(&why);
    return NULL;
}

static void dict_pattern_close(struct dict *d)
{
    struct dict_pattern *dp = (struct dict_pattern *) d;
    size_t i;

    for (i = 0; i < dp->count; i++) {
        if (dp->rules[i].re)
            dp->engine->free(dp->rules[i].re);
        free(dp->rules[i].result);
    }
    free(dp->rules);
    free(dp->file);
    strbuf_release(&dp->value);
}

/* A keyword ("if", "endif") at p, not followed by a letter or digit. */
static int dict_pattern_keyword(const char *p, const char *word)
{
    size_t len = strlen(word);

    return strncasecmp(p, word, len) == 0 && !isalnum((unsigned char) p[len]);
}

/* Parses "[!]/pattern/flags" at *pp, compiles it, and advances *pp past it. */
static int dict_pattern_compile(struct dict_pattern *dp, char **pp,
                                struct dict_pattern_rule *rule, struct strbuf *why)
{
    const struct dict_pattern_engine *engine = dp->engine;
    char *p = *pp, *pattern, delim;
    unsigned flags = engine->default_flags;
    const char *f;

    if (*p == '!') {
        rule->negate = 1;
        p = dict_skip_space(p + 1);
    }
    delim = *p;
    if (delim == 0 || isalnum((unsigned char) delim) || isspace((unsigned char) delim)
        || delim == '\\') {
        strbuf_puts(why, "expected /pattern/ at the start of the rule");
        return -1;
    }
    for (pattern = ++p; *p && *p != delim; p++)
        if (*p == '\\' && p[1])
            p++;
    if (*p == 0) {
        strbuf_printf(why, "missing closing \"%c\" after the pattern", delim);
        return -1;
    }
    *p++ = 0;
    for (; *p && !isspace((unsigned char) *p); p++) {
        if ((f = strchr(engine->flag_chars, *p)) == NULL) {
            strbuf_printf(why, "unknown %s flag \"%c\" (known: %s)", engine->type, *p,
                          engine->flag_chars);
            return -1;
        }
        flags ^= 1u << (f - engine->flag_chars);
    }
    if ((rule->re = engine->compile(pattern, flags, &rule->ngroups, why)) == NULL)
        return -1;
    *pp = dict_skip_space(p);
    return 0;
}

/* Parses one logical line into rule; depth is the if-nesting stack. */
static int dict_pattern_parse_rule(struct dict_pattern *dp, char *line,
                                   struct dict_pattern_rule *rule, size_t *stack,
                                   size_t *depth, struct strbuf *why)
{
    char *p = line;

    if (dict_pattern_keyword(p, "endif")) {
        rule->kind = RULE_ENDIF;
        if (*dict_skip_space(p + 5)) {
            strbuf_puts(why, "text after \"endif\"");
            return -1;
        }
        if (*depth == 0) {
            strbuf_puts(why, "\"endif\" without \"if\"");
            return -1;
        }
        dp->rules[stack[--*depth]].endif = dp->count;
        return 0;
    }
    if (dict_pattern_keyword(p, "if")) {
        rule->kind = RULE_IF;
        p = dict_skip_space(p + 2);
        if (*depth >= DICT_PATTERN_MAX_DEPTH) {
            strbuf_printf(why, "\"if\" nested deeper than %d", DICT_PATTERN_MAX_DEPTH);
            return -1;
        }
        if (dict_pattern_compile(dp, &p, rule, why) < 0)
            return -1;
        if (*p) {
            strbuf_puts(why, "text after the \"if\" pattern");
            return -1;
        }
        stack[(*depth)++] = dp->count;
        return 0;
    }
    rule->kind = RULE_MATCH;
    if (dict_pattern_compile(dp, &p, rule, why) < 0)
        return -1;
    if (*p == 0) {
        strbuf_puts(why, "missing result after the pattern");
        return -1;
    }
    if (dict_pattern_expand(p, rule->negate ? -1 : (long) rule->ngroups, NULL, NULL, NULL,
                            why) < 0)
        return -1;
    rule->result = xstrdup(p);
    return 0;
}

struct dict *dict_pattern_parse(const struct dict_pattern_engine *engine, const char *spec,
                                const char *name, const char *buf, size_t len, int flags,
                                struct strbuf *err)
{
    struct dict_pattern *dp;
    struct dict *d;
    struct dict_source src;
    struct strbuf why;
    size_t stack[DICT_PATTERN_MAX_DEPTH], depth = 0;
    int status;

    dp = (struct dict_pattern *) dict_alloc(sizeof(*dp), spec, flags | DICT_FLAG_PATTERN);
    dp->engine = engine;
    dp->file = xstrdup(name);
    strbuf_init(&dp->value, 64, DICT_VALUE_MAX);
    dp->dict.get = dict_pattern_get;
    dp->dict.close = dict_pattern_close;
    d = &dp->dict;
    strbuf_init(&why, 64, STRBUF_UNLIMITED);
    dict_source_init(&src, name, buf, len);
    while ((status = dict_source_next(&src, err)) > 0) {
        dp->rules = xreallocarray(dp->rules, dp->count + 1, sizeof(*dp->rules));
        memset(dp->rules + dp->count, 0, sizeof(*dp->rules));
        dp->rules[dp->count].lineno = src.lineno;
        status = dict_pattern_parse_rule(dp, src.line.data, dp->rules + dp->count, stack,
                                         &depth, &why);
        dp->count++;            /* even when bad: close frees what it holds */
        if (status < 0) {
            dict_source_where(&src, err);
            strbuf_append(err, why.data, why.len);
            break;
        }
    }
    if (status == 0 && depth > 0) {
        strbuf_printf(err, "%s:%lu: \"if\" without \"endif\"", name,
                      dp->rules[stack[depth - 1]].lineno);
        status = -1;
    }
    dict_source_release(&src);
    strbuf_release(&why);
    if (status < 0)
        dict_close(&d);
    return d;
}
