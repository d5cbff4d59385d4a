/*
 * config.c - loads main.cf into the var_ variables, expands $name, checks.
 * The registry (params.c) says what exists; maincf.c says what the file holds;
 * this file decides the effective value of every parameter: -o override, else
 * the last main.cf setting, else the default, then $name expansion and type check.
 * Never hangs or overflows on hostile input: expansion has a depth limit, a
 * step limit and an output limit, and reference loops are errors naming the
 * parameter. config_load() exits with "FILE:LINE: message" on the first error;
 * config_check() and config_try_load() only report.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "maincf.h"
#include "mastercf.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"

#define CONFIG_EXPAND_DEPTH  32         /* nested $name references */
#define CONFIG_EXPAND_STEPS  100000     /* $name references per value */
#define CONFIG_EXPAND_MAX    (256 * 1024)       /* bytes of one expanded value */
#define CONFIG_NAME_MAX      128
#define CONFIG_MAX_CHECKS    32

struct config_pair {
    char *name;
    char *value;
};

struct config_pairs {
    struct config_pair *v;
    size_t n, cap;
};

/* Settings that survive a reload. */
static char *config_dir_arg;
static struct config_pairs config_overrides;
static int (*config_checks[CONFIG_MAX_CHECKS])(struct strbuf *report);
static size_t config_nchecks;

/* The loaded state; replaced as a whole by each load. */
static struct maincf *config_main;
static char *config_main_path;
static char **config_services;  /* master.cf column 1, for SERVICE_suffix names */
static size_t config_nservices;
static char **config_values;    /* effective value per param_table entry */
static char **config_computed;  /* computed defaults per param_table entry */
static struct config_pairs config_extra;        /* user-defined and pattern names */
static struct config_pairs config_refs;         /* names used as $name somewhere */
static size_t config_nplain;    /* table entries before the patterns */
static const char *config_computing;    /* the computed default being made */

struct config_expand {
    const char *stack[CONFIG_EXPAND_DEPTH + 1];
    int depth;
    long steps;
    int failed;
    struct strbuf *err;         /* first error, no location */
    struct strbuf *undef;       /* "$a $b" used directly but undefined; may be NULL */
};

static void config_expand_text(struct config_expand *cx, const char *s, size_t len,
                               struct strbuf *out);

/* ---------- small helpers ---------- */

static void config_pairs_add(struct config_pairs *ps, const char *name, const char *value)
{
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 16;
        ps->v = xreallocarray(ps->v, ps->cap, sizeof(*ps->v));
    }
    ps->v[ps->n].name = xstrdup(name);
    ps->v[ps->n].value = value ? xstrdup(value) : NULL;
    ps->n++;
}

static struct config_pair *config_pairs_find(const struct config_pairs *ps, const char *name)
{
    size_t i;

    for (i = ps->n; i > 0; i--)
        if (strcmp(ps->v[i - 1].name, name) == 0)
            return &ps->v[i - 1];
    return NULL;
}

static void config_pairs_free(struct config_pairs *ps)
{
    size_t i;

    for (i = 0; i < ps->n; i++) {
        free(ps->v[i].name);
        free(ps->v[i].value);
    }
    free(ps->v);
    memset(ps, 0, sizeof(*ps));
}

static int config_name_char(int c)
{
    return isalnum(c) || c == '_';
}

static size_t config_table_size(void)
{
    static size_t n;

    if (n == 0) {
        while (param_table[n].name)
            n++;
        while (config_nplain < n && param_table[config_nplain].name[0] != '*')
            config_nplain++;
    }
    return n;
}

/* ---------- directory and registry ---------- */

void config_set_dir(const char *dir)
{
    free(config_dir_arg);
    config_dir_arg = dir ? xstrdup(dir) : NULL;
}

const char *config_dir(void)
{
    const char *env;

    if (config_dir_arg)
        return config_dir_arg;
    if ((env = getenv("PETREL_CONFIG_DIR")) != NULL && *env)
        return env;
    return DEF_CONFIG_DIR;
}

const struct param_def *param_find(const char *name)
{
    size_t lo = 0, hi;

    config_table_size();
    hi = config_nplain;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(name, param_table[mid].name);

        if (cmp == 0)
            return &param_table[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const struct param_def *param_find_pattern(const char *name)
{
    size_t i, n = config_table_size(), len = strlen(name), best_len = 0;
    const struct param_def *best = NULL;

    for (i = config_nplain; i < n; i++) {
        const char *suffix = param_table[i].name + 1;
        size_t slen = strlen(suffix);

        if (len > slen && slen > best_len && strcmp(name + len - slen, suffix) == 0) {
            best = &param_table[i];
            best_len = slen;
        }
    }
    return best;
}

/* Edit distance with a cut-off: stops early once every cell exceeds max. */
static size_t config_distance(const char *a, const char *b, size_t max)
{
    size_t la = strlen(a), lb = strlen(b), i, j, row[CONFIG_NAME_MAX + 1];

    if (la > CONFIG_NAME_MAX || lb > CONFIG_NAME_MAX)
        return max + 1;
    if ((la > lb ? la - lb : lb - la) > max)
        return max + 1;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0], low;

        row[0] = i;
        low = row[0];
        for (j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
            if (best < low)
                low = best;
        }
        if (low > max)
            return max + 1;
    }
    return row[lb];
}

const char *param_suggest(const char *name)
{
    size_t len = strlen(name), max, best_d, i;
    const char *best = NULL;

    max = len / 5;
    if (max < 1)
        max = 1;
    if (max > 3)
        max = 3;
    best_d = max + 1;
    config_table_size();
    for (i = 0; i < config_nplain; i++) {
        size_t d = config_distance(name, param_table[i].name, max);

        if (d < best_d) {
            best_d = d;
            best = param_table[i].name;
        }
    }
    return best;
}

/* ---------- value syntax ---------- */

int config_parse_bool(const char *value, int *res)
{
    static const char *const yes[] = {"yes", "true", "1"}, *const no[] = {"no", "false", "0"};
    size_t i;

    for (i = 0; i < 3; i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *res = 1;
            return 0;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *res = 0;
            return 0;
        }
    }
    return -1;
}

static int config_parse_number(const char *s, long long *res, char **end)
{
    errno = 0;
    if (!isdigit((unsigned char) *s) && !((*s == '-' || *s == '+') && isdigit((unsigned char) s[1])))
        return -1;
    *res = strtoll(s, end, 10);
    return errno == ERANGE ? -1 : 0;
}

int config_parse_time(const char *value, int unit, long long *seconds)
{
    long long n, mult;
    char *end;

    if (*value == '-' || *value == '+' || config_parse_number(value, &n, &end) < 0)
        return -1;
    if (*end == '\0')
        end = NULL;
    else if (end[1] != '\0')
        return -1;
    switch (end ? *end : unit) {
    case 's': mult = 1; break;
    case 'm': mult = 60; break;
    case 'h': mult = 3600; break;
    case 'd': mult = 86400; break;
    case 'w': mult = 604800; break;
    default: return -1;
    }
    if (n > LLONG_MAX / mult)
        return -1;
    *seconds = n * mult;
    return 0;
}

/* The unit of a time parameter is the suffix of its default ("5d" counts in days). */
static int config_time_unit(const struct param_def *p)
{
    size_t len = p->defval ? strlen(p->defval) : 0;
    int c = len ? p->defval[len - 1] : 's';

    return strchr("smhdw", c) && c ? c : 's';
}

/* Type check with the name the administrator wrote (a pattern's instance name). */
static int config_check_named(const struct param_def *p, const char *name, const char *value,
                              long long *num, struct strbuf *why)
{
    long long n = 0;
    int b;
    char *end;

    switch (p->type) {
    case PARAM_STR:
    case PARAM_RAW:
        return 0;
    case PARAM_BOOL:
        if (config_parse_bool(value, &b) < 0) {
            strbuf_printf(why, "bad boolean value \"%.100s\" for parameter %s; use yes or no",
                          value, name);
            return -1;
        }
        n = b;
        break;
    case PARAM_INT:
        if (config_parse_number(value, &n, &end) < 0 || *end != '\0') {
            strbuf_printf(why, "bad numerical value \"%.100s\" for parameter %s", value, name);
            return -1;
        }
        break;
    case PARAM_TIME:
        if (config_parse_time(value, config_time_unit(p), &n) < 0) {
            strbuf_printf(why, "bad time value \"%.100s\" for parameter %s; use a number with"
                          " an optional s, m, h, d or w suffix", value, name);
            return -1;
        }
        break;
    }
    if (n < p->min) {
        strbuf_printf(why, "value \"%.100s\" for parameter %s is below the minimum %lld%s",
                      value, name, p->min, p->type == PARAM_TIME ? "s" : "");
        return -1;
    }
    if (p->max != 0 && n > p->max) {
        strbuf_printf(why, "value \"%.100s\" for parameter %s is above the maximum %lld%s",
                      value, name, p->max, p->type == PARAM_TIME ? "s" : "");
        return -1;
    }
    if (num)
        *num = n;
    return 0;
}

int config_check_value(const struct param_def *p, const char *value, long long *num,
                       struct strbuf *why)
{
    return config_check_named(p, p->name, value, num, why);
}

/* ---------- raw values ---------- */

static const char *config_default_lookup(const char *name);

static const char *config_computed_default(size_t idx)
{
    static unsigned char *busy;
    const char *saved = config_computing;

    if (config_computed == NULL)
        config_computed = xcalloc(config_table_size(), sizeof(char *));
    if (busy == NULL)
        busy = xcalloc(config_table_size(), 1);
    if (config_computed[idx] == NULL && !busy[idx]) {
        busy[idx] = 1;
        config_computing = param_table[idx].name;
        config_computed[idx] = params_computed_default(param_table[idx].name, config_default_lookup);
        config_computing = saved;
        busy[idx] = 0;
        if (config_computed[idx] == NULL)
            msg_panic("parameter %s has neither a default nor a computed one", param_table[idx].name);
    }
    return config_computed[idx];
}

const char *config_lookup_raw(const char *name)
{
    const struct config_pair *o = config_pairs_find(&config_overrides, name);
    const struct maincf_entry *e;
    const struct param_def *p;

    if (o)
        return o->value;
    if (config_main && (e = maincf_find(config_main, name)) != NULL)
        return e->value;
    if ((p = param_find(name)) != NULL)
        return p->defval ? p->defval : config_computed_default((size_t) (p - param_table));
    if ((p = param_find_pattern(name)) != NULL)
        return p->defval;
    return NULL;
}

int config_is_set(const char *name)
{
    return config_pairs_find(&config_overrides, name) != NULL
        || (config_main && maincf_find(config_main, name) != NULL);
}

/* ---------- expansion ---------- */

static void config_expand_fail(struct config_expand *cx, const char *fmt, ...)
{
    va_list ap;

    if (cx->failed++)
        return;
    va_start(ap, fmt);
    strbuf_vprintf(cx->err, fmt, ap);
    va_end(ap);
}

static void config_expand_loop(struct config_expand *cx, const char *name)
{
    struct strbuf chain;
    int i;

    strbuf_init(&chain, 64, 4096);
    for (i = 0; i < cx->depth; i++)
        strbuf_printf(&chain, "$%s -> ", cx->stack[i]);
    strbuf_printf(&chain, "$%s", name);
    config_expand_fail(cx, "parameter %s: loop in $name expansion: %s",
                       cx->depth ? cx->stack[0] : name, chain.data);
    strbuf_release(&chain);
}

static void config_expand_name(struct config_expand *cx, const char *name, int quiet,
                               struct strbuf *out)
{
    const struct param_def *p;
    const char *raw;
    int i;

    if (++cx->steps > CONFIG_EXPAND_STEPS) {
        config_expand_fail(cx, "parameter %s: more than %d $name expansions",
                           cx->stack[0], CONFIG_EXPAND_STEPS);
        return;
    }
    for (i = 0; i < cx->depth; i++) {
        if (strcmp(cx->stack[i], name) == 0) {
            config_expand_loop(cx, name);
            return;
        }
    }
    if (cx->depth >= CONFIG_EXPAND_DEPTH) {
        config_expand_fail(cx, "parameter %s: $name references nested deeper than %d",
                           cx->stack[0], CONFIG_EXPAND_DEPTH);
        return;
    }
    if ((raw = config_lookup_raw(name)) == NULL) {
        if (!quiet && cx->undef && cx->depth == 1)
            strbuf_printf(cx->undef, "%s$%s", cx->undef->len ? " " : "", name);
        return;
    }
    if ((p = param_find(name)) != NULL && p->type == PARAM_RAW) {
        if (strbuf_puts(out, raw) < 0)
            config_expand_fail(cx, "parameter %s: value longer than %d bytes after expansion",
                               cx->stack[0], CONFIG_EXPAND_MAX);
        return;
    }
    cx->stack[cx->depth++] = name;
    config_expand_text(cx, raw, strlen(raw), out);
    cx->depth--;
}

/* Handles "${name}", "${name?text}", "${name:text}" (and the "(" forms); s points
 * past the "$", returns the bytes consumed. */
static size_t config_expand_braced(struct config_expand *cx, const char *s, size_t len,
                                   struct strbuf *out)
{
    char open = s[0], close = open == '{' ? '}' : ')';
    char name[CONFIG_NAME_MAX + 1];
    size_t i, nlen = 0, end, level = 1;

    for (end = 1; end < len; end++) {
        if (s[end] == open)
            level++;
        else if (s[end] == close && --level == 0)
            break;
    }
    if (end >= len) {
        config_expand_fail(cx, "parameter %s: missing '%c' after \"$%c\"", cx->stack[0], close, open);
        return len;
    }
    for (i = 1; i < end && config_name_char((unsigned char) s[i]); i++)
        nlen++;
    if (nlen == 0 || nlen > CONFIG_NAME_MAX || (i < end && s[i] != '?' && s[i] != ':')) {
        config_expand_fail(cx, "parameter %s: bad parameter name in \"$%.*s\"", cx->stack[0],
                           (int) (end + 1 > 60 ? 60 : end + 1), s);
        return end + 1;
    }
    memcpy(name, s + 1, nlen);
    name[nlen] = '\0';
    if (i == end) {
        config_expand_name(cx, name, 0, out);
    } else {
        struct strbuf test;
        int nonempty;

        strbuf_init(&test, 64, CONFIG_EXPAND_MAX);
        config_expand_name(cx, name, 1, &test);
        nonempty = test.len > 0;
        strbuf_release(&test);
        if ((s[i] == '?') == nonempty)
            config_expand_text(cx, s + i + 1, end - i - 1, out);
    }
    return end + 1;
}

static void config_expand_text(struct config_expand *cx, const char *s, size_t len,
                               struct strbuf *out)
{
    size_t i = 0;

    while (i < len && !cx->failed) {
        const char *dollar = memchr(s + i, '$', len - i);
        size_t plain = dollar ? (size_t) (dollar - (s + i)) : len - i;

        if (strbuf_append(out, s + i, plain) < 0) {
            config_expand_fail(cx, "parameter %s: value longer than %d bytes after expansion",
                               cx->stack[0], CONFIG_EXPAND_MAX);
            return;
        }
        i += plain;
        if (i >= len)
            break;
        i++;                    /* the "$" */
        if (i < len && s[i] == '$') {
            strbuf_putc(out, '$');
            i++;
        } else if (i < len && (s[i] == '{' || s[i] == '(')) {
            i += config_expand_braced(cx, s + i, len - i, out);
        } else if (i < len && config_name_char((unsigned char) s[i])) {
            char name[CONFIG_NAME_MAX + 1];
            size_t n = 0;

            while (i < len && config_name_char((unsigned char) s[i])) {
                if (n < CONFIG_NAME_MAX)
                    name[n] = s[i];
                n++;
                i++;
            }
            if (n > CONFIG_NAME_MAX) {
                config_expand_fail(cx, "parameter %s: $name longer than %d characters",
                                   cx->stack[0], CONFIG_NAME_MAX);
                return;
            }
            name[n] = '\0';
            config_expand_name(cx, name, 0, out);
        } else {
            strbuf_putc(out, '$');  /* a lone "$" means itself, as in Postfix */
        }
    }
}

/* Expands the value of parameter name (the stack starts with it, so a
 * self-reference is a loop). */
static int config_expand_param(const char *name, const char *raw, struct strbuf *out,
                               struct strbuf *err, struct strbuf *undef)
{
    struct config_expand cx;

    memset(&cx, 0, sizeof(cx));
    cx.err = err;
    cx.undef = undef;
    cx.stack[cx.depth++] = name;
    config_expand_text(&cx, raw, strlen(raw), out);
    return cx.failed ? -1 : 0;
}

int config_expand(const char *text, struct strbuf *out, struct strbuf *err)
{
    struct strbuf tmp;
    int res;

    strbuf_init(&tmp, 64, CONFIG_EXPAND_MAX);
    res = config_expand_param("(text)", text, &tmp, err, NULL);
    if (res == 0 && strbuf_append(out, tmp.data, tmp.len) < 0) {
        strbuf_puts(err, "expanded text is too long");
        res = -1;
    }
    strbuf_release(&tmp);
    return res;
}

/* For computed defaults: the effective value of another parameter, or NULL when
 * that value depends on the one being computed. */
static const char *config_default_lookup(const char *name)
{
    static char *result;
    struct strbuf out, err;
    struct config_expand cx;

    strbuf_init(&out, 64, CONFIG_EXPAND_MAX);
    strbuf_init(&err, 64, 1024);
    memset(&cx, 0, sizeof(cx));
    cx.err = &err;
    cx.stack[cx.depth++] = config_computing ? config_computing : name;
    config_expand_name(&cx, name, 1, &out);
    free(result);
    result = cx.failed ? NULL : strbuf_steal(&out);
    strbuf_release(&out);
    strbuf_release(&err);
    return result;
}

/* ---------- loading ---------- */

struct config_diag {
    struct strbuf *report;
    int errors;
    int warnings;               /* 1: report warnings too (petrel check) */
};

static void config_report(struct config_diag *d, int is_error, const char *where,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void config_report(struct config_diag *d, int is_error, const char *where,
                          const char *fmt, ...)
{
    va_list ap;

    if (is_error)
        d->errors++;
    else if (!d->warnings)
        return;
    strbuf_printf(d->report, "%s: %s", where, is_error ? "" : "warning: ");
    va_start(ap, fmt);
    strbuf_vprintf(d->report, fmt, ap);
    va_end(ap);
    strbuf_putc(d->report, '\n');
}

/* Where a value comes from: "-o name", "FILE:LINE", or just the file for a default. */
void config_location(const char *name, struct strbuf *where)
{
    const struct maincf_entry *e;

    strbuf_reset(where);
    if (config_pairs_find(&config_overrides, name))
        strbuf_printf(where, "-o %s", name);
    else if (config_main && (e = maincf_find(config_main, name)) != NULL)
        strbuf_printf(where, "%s:%d", config_main_path, e->line);
    else
        strbuf_printf(where, "%s", config_main_path);
}

static char *config_path(const char *file)
{
    struct strbuf path;
    char *res;

    strbuf_init(&path, 64, STRBUF_UNLIMITED);
    strbuf_printf(&path, "%s/%s", config_dir(), file);
    res = strbuf_steal(&path);
    strbuf_release(&path);
    return res;
}

static void config_reset(void)
{
    size_t i, n = config_table_size();

    maincf_free(&config_main);
    xfree(&config_main_path);
    for (i = 0; i < config_nservices; i++)
        free(config_services[i]);
    xfree(&config_services);
    config_nservices = 0;
    for (i = 0; i < n; i++) {
        if (config_values)
            free(config_values[i]);
        if (config_computed)
            free(config_computed[i]);
    }
    xfree(&config_values);
    xfree(&config_computed);
    config_pairs_free(&config_extra);
    config_pairs_free(&config_refs);
}

/* Remembers every name that a value uses as $name, ${name...} or $(name...). */
static void config_scan_refs(const char *s)
{
    char name[CONFIG_NAME_MAX + 1];
    size_t n;

    while ((s = strchr(s, '$')) != NULL) {
        s++;
        if (*s == '$') {
            s++;
            continue;
        }
        if (*s == '{' || *s == '(')
            s++;
        for (n = 0; config_name_char((unsigned char) s[n]); n++)
            ;
        if (n > 0 && n <= CONFIG_NAME_MAX) {
            memcpy(name, s, n);
            name[n] = '\0';
            if (!config_pairs_find(&config_refs, name))
                config_pairs_add(&config_refs, name, NULL);
        }
        s += n;
    }
}

/* master.cf service names (for SERVICE_suffix) and the $names its -o values use.
 * Its errors are reported by config_check(), not here. */
static void config_read_services(void)
{
    struct mastercf cf;
    char *path = config_path("master.cf");
    size_t i, j;

    memset(&cf, 0, sizeof(cf));
    mastercf_parse(path, &cf, NULL);
    config_services = xcalloc(cf.count + 1, sizeof(char *));
    for (i = 0; i < cf.count; i++) {
        config_services[config_nservices++] = xstrdup(cf.services[i].name);
        for (j = 0; j < cf.services[i].noverrides; j++)
            config_scan_refs(cf.services[i].overrides[j].value);
    }
    mastercf_free(&cf);
    free(path);
}

static int config_service_known(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < config_nservices; i++)
        if (strlen(config_services[i]) == len && strncmp(config_services[i], name, len) == 0)
            return 1;
    return 0;
}

/* The pattern entry for SERVICE_suffix when SERVICE is in master.cf. */
static const struct param_def *config_service_pattern(const char *name)
{
    const struct param_def *p = param_find_pattern(name);

    if (p && config_service_known(name, strlen(name) - strlen(p->name + 1)))
        return p;
    return NULL;
}

/* Whether name is listed in smtpd_restriction_classes: each listed name is then
 * defined in main.cf as a restriction list of its own (Postfix's restriction
 * classes), so it is not an unknown parameter. */
static int config_restriction_class(const char *name)
{
    const char *cp = config_lookup_raw("smtpd_restriction_classes");
    size_t len = strlen(name), n;

    while (cp && *cp) {
        cp += strspn(cp, ", \t\r\n");
        n = strcspn(cp, ", \t\r\n");
        if (n == len && n > 0 && strncmp(cp, name, n) == 0)
            return 1;
        cp += n;
    }
    return 0;
}

int config_name_allowed(const char *name)
{
    return param_find(name) != NULL || config_service_pattern(name) != NULL
        || config_pairs_find(&config_refs, name) != NULL || config_restriction_class(name);
}

static void config_unknown(struct config_diag *d, const char *where, const char *name)
{
    const char *hint = param_suggest(name);

    if (hint)
        config_report(d, 1, where, "unknown parameter \"%.100s\"; did you mean \"%s\"?", name, hint);
    else
        config_report(d, 1, where, "unknown parameter \"%.100s\"", name);
}

/* Expands and type-checks one value; returns the value to use (malloc'ed). */
static char *config_eval_value(struct config_diag *d, const struct param_def *p, const char *name,
                               long long *num)
{
    struct strbuf out, err, undef, where;
    const char *raw = config_lookup_raw(name);
    int set = config_is_set(name), ok = 1;
    char *value;

    strbuf_init(&out, 64, CONFIG_EXPAND_MAX);
    strbuf_init(&err, 64, 4096);
    strbuf_init(&undef, 64, 4096);
    strbuf_init(&where, 64, 4096);
    config_location(name, &where);
    if (raw == NULL)
        raw = "";
    if (p && p->type == PARAM_RAW) {
        strbuf_puts(&out, raw);
    } else if (config_expand_param(name, raw, &out, &err, set ? &undef : NULL) < 0) {
        if (set || d->errors == 0)
            config_report(d, 1, where.data, "%s", err.data);
        strbuf_set(&out, raw);
        ok = 0;
    }
    if (undef.len)
        config_report(d, 0, where.data, "parameter %s: undefined %s expands to nothing",
                      name, undef.data);
    strbuf_reset(&err);
    if (ok && p && config_check_named(p, name, out.data, num, &err) < 0 && (set || d->errors == 0))
        config_report(d, 1, where.data, "%s", err.data);
    value = strbuf_steal(&out);
    strbuf_release(&out);
    strbuf_release(&err);
    strbuf_release(&undef);
    strbuf_release(&where);
    return value;
}

static void config_eval_param(struct config_diag *d, size_t idx)
{
    const struct param_def *p = &param_table[idx];
    long long num = 0;

    /* A bad value leaves the built-in default's number in place. */
    if (p->defval && p->type != PARAM_STR && p->type != PARAM_RAW) {
        struct strbuf ignore;

        strbuf_init(&ignore, 16, 1024);
        config_check_value(p, p->defval, &num, &ignore);
        strbuf_release(&ignore);
    }
    config_values[idx] = config_eval_value(d, p, p->name, &num);
    switch (p->type) {
    case PARAM_STR:
    case PARAM_RAW:
        *(char **) p->var = config_values[idx];
        break;
    case PARAM_INT:
    case PARAM_TIME:
        *(long long *) p->var = num;
        break;
    case PARAM_BOOL:
        *(int *) p->var = (int) num;
        break;
    }
}

/* A name that is not in the registry: a service pattern instance or a helper. */
static void config_eval_extra(struct config_diag *d, const char *name)
{
    struct strbuf where;
    char *value;

    if (param_find(name) || config_pairs_find(&config_extra, name))
        return;
    if (!config_name_allowed(name)) {
        strbuf_init(&where, 64, 4096);
        config_location(name, &where);
        config_unknown(d, where.data, name);
        strbuf_release(&where);
        return;
    }
    value = config_eval_value(d, config_service_pattern(name), name, NULL);
    config_pairs_add(&config_extra, name, value);
    free(value);
}

static void config_warn_duplicates(struct config_diag *d)
{
    size_t i, n = maincf_count(config_main);
    struct strbuf where;

    strbuf_init(&where, 64, 4096);
    for (i = 0; i < n; i++) {
        const struct maincf_entry *e = maincf_get(config_main, i);
        const struct maincf_entry *last = maincf_find(config_main, e->name);

        if (last != e) {
            strbuf_reset(&where);
            strbuf_printf(&where, "%s:%d", config_main_path, e->line);
            config_report(d, 0, where.data, "parameter %s is set again at line %d;"
                          " this setting is ignored", e->name, last->line);
        }
    }
    strbuf_release(&where);
}

static int config_run(struct strbuf *report, int check)
{
    struct config_diag d = {report, 0, check};
    size_t i, n;

    config_reset();
    config_table_size();
    config_main_path = config_path("main.cf");
    config_main = maincf_read(config_main_path, report, &d.errors);
    if (config_main == NULL) {
        config_report(&d, 1, config_main_path, "cannot read: %s", strerror(errno));
        config_main = maincf_parse_text(config_main_path, "", 0, NULL, NULL);
    }
    config_read_services();
    n = maincf_count(config_main);
    for (i = 0; i < n; i++)
        config_scan_refs(maincf_get(config_main, i)->value);
    for (i = 0; i < config_overrides.n; i++)
        config_scan_refs(config_overrides.v[i].value);
    config_values = xcalloc(config_table_size(), sizeof(char *));
    for (i = 0; i < config_nplain; i++)
        config_eval_param(&d, i);
    for (i = 0; i < n; i++)
        config_eval_extra(&d, maincf_get(config_main, i)->name);
    for (i = 0; i < config_overrides.n; i++)
        config_eval_extra(&d, config_overrides.v[i].name);
    config_warn_duplicates(&d);
    return d.errors;
}

void config_load(void)
{
    struct strbuf report;
    char *nl;

    strbuf_init(&report, 256, 1024 * 1024);
    if (config_run(&report, 0) > 0) {
        if ((nl = strchr(report.data, '\n')) != NULL)
            *nl = '\0';
        msg_fatal("%s", report.data);
    }
    strbuf_release(&report);
}

int config_try_load(struct strbuf *report)
{
    return config_run(report, 0);
}

void config_add_override(const char *name, const char *value)
{
    config_pairs_add(&config_overrides, name, value);
}

void config_add_check(int (*fn)(struct strbuf *report))
{
    size_t i;

    for (i = 0; i < config_nchecks; i++)
        if (config_checks[i] == fn)
            return;
    if (config_nchecks >= CONFIG_MAX_CHECKS)
        msg_panic("config_add_check: more than %d checks", CONFIG_MAX_CHECKS);
    config_checks[config_nchecks++] = fn;
}

/* ---------- checking ---------- */

static int config_count_lines(const char *s)
{
    int n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* -o names and values in master.cf, with the same rules as main.cf. */
static void config_check_override(struct config_diag *d, const struct master_service *sv,
                                  const struct master_override *o)
{
    const struct param_def *p = param_find(o->name);
    struct strbuf where, out, err;

    strbuf_init(&where, 64, 4096);
    strbuf_printf(&where, "%s:%d", sv->file, sv->line);
    if (p == NULL && (p = config_service_pattern(o->name)) == NULL
        && !config_pairs_find(&config_refs, o->name) && !config_is_set(o->name)) {
        const char *hint = param_suggest(o->name);

        config_report(d, 1, where.data, "service %s: unknown parameter \"%.100s\" in -o%s%s%s",
                      sv->name, o->name, hint ? "; did you mean \"" : "", hint ? hint : "",
                      hint ? "\"?" : "");
    } else if (p && p->type != PARAM_STR && p->type != PARAM_RAW) {
        strbuf_init(&out, 64, CONFIG_EXPAND_MAX);
        strbuf_init(&err, 64, 4096);
        if (config_expand_param(o->name, o->value, &out, &err, NULL) < 0
            || config_check_named(p, o->name, out.data, NULL, &err) < 0)
            config_report(d, 1, where.data, "service %s: -o %s", sv->name, err.data);
        strbuf_release(&out);
        strbuf_release(&err);
    }
    strbuf_release(&where);
}

static void config_check_master(struct config_diag *d)
{
    struct mastercf cf;
    struct strbuf err;
    char *path = config_path("master.cf");
    size_t i, j;

    memset(&cf, 0, sizeof(cf));
    strbuf_init(&err, 256, 1024 * 1024);
    mastercf_parse(path, &cf, &err);
    d->errors += config_count_lines(err.data);
    strbuf_append(d->report, err.data, err.len);
    for (i = 0; i < cf.count; i++)
        for (j = 0; j < cf.services[i].noverrides; j++)
            config_check_override(d, &cf.services[i], &cf.services[i].overrides[j]);
    mastercf_free(&cf);
    strbuf_release(&err);
    free(path);
}

int config_check(struct strbuf *report)
{
    struct config_diag d = {report, 0, 1};
    size_t i;

    d.errors = config_run(report, 1);
    config_check_master(&d);
    for (i = 0; i < config_nchecks; i++)
        d.errors += config_checks[i](report);
    return d.errors;
}

/* ---------- lookups ---------- */

const char *config_lookup(const char *name)
{
    const struct param_def *p;
    const struct config_pair *x;
    struct config_diag d;
    struct strbuf ignore;
    char *value;

    if (config_values == NULL)
        return NULL;
    if ((p = param_find(name)) != NULL)
        return config_values[p - param_table];
    if ((x = config_pairs_find(&config_extra, name)) != NULL)
        return x->value;
    if ((p = param_find_pattern(name)) == NULL)
        return NULL;
    /* SERVICE_suffix not in main.cf: the pattern default, computed once per load. */
    strbuf_init(&ignore, 256, 64 * 1024);
    d.report = &ignore;
    d.errors = 0;
    d.warnings = 0;
    value = config_eval_value(&d, p, name, NULL);
    config_pairs_add(&config_extra, name, value);
    free(value);
    strbuf_release(&ignore);
    return config_extra.v[config_extra.n - 1].value;
}

static char *config_service_name(const char *service, const char *suffix)
{
    struct strbuf name;
    char *res;

    while (*suffix == '_')
        suffix++;
    strbuf_init(&name, 64, STRBUF_UNLIMITED);
    strbuf_printf(&name, "%s_%s", service, suffix);
    res = strbuf_steal(&name);
    strbuf_release(&name);
    return res;
}

const char *config_lookup_service(const char *service, const char *suffix)
{
    char *name = config_service_name(service, suffix);
    const char *value = config_lookup(name);

    free(name);
    return value;
}

long long config_lookup_service_int(const char *service, const char *suffix)
{
    char *name = config_service_name(service, suffix);
    const char *value = config_lookup(name);
    const struct param_def *p = param_find(name);
    struct strbuf why;
    long long num = 0;

    if (p == NULL)
        p = param_find_pattern(name);
    if (value == NULL || p == NULL)
        msg_panic("config_lookup_service_int: no parameter %s", name);
    strbuf_init(&why, 64, 4096);
    if (config_check_named(p, name, value, &num, &why) < 0)
        msg_fatal("%s: %s", config_main_path, why.data);
    strbuf_release(&why);
    free(name);
    return num;
}
