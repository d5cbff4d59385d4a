/*
 * dict_pcre.c - pcre:FILE, Perl-compatible regular expression rules (PCRE2).
 * Flags as in Postfix, each a toggle: i (case-insensitive; on by default),
 * m (PCRE2_MULTILINE), s (PCRE2_DOTALL), x (PCRE2_EXTENDED), A
 * (PCRE2_ANCHORED), E (PCRE2_DOLLAR_ENDONLY), U (PCRE2_UNGREEDY), X (accepted
 * for compatibility: PCRE2 always rejects unknown escapes, which is what
 * PCRE_EXTRA did). Keys are matched as bytes (no UTF mode).
 * Every match runs under DICT_PCRE_MATCH_LIMIT and DICT_PCRE_DEPTH_LIMIT, so
 * catastrophic backtracking ends in an error (the rule is skipped with a
 * warning, see dict_pattern.c) instead of a hung lookup.
 */
#include <pcre2.h>
#include <stdlib.h>

#include "dict.h"
#include "dict_impl.h"
#include "dict_pattern.h"
#include "msg.h"
#include "mymalloc.h"

#define DICT_PCRE_MATCH_LIMIT   1000000
#define DICT_PCRE_DEPTH_LIMIT   10000
#define DICT_PCRE_HEAP_LIMIT    (20 * 1024)     /* KiB */

struct dict_pcre_re {
    pcre2_code *code;
    pcre2_match_data *data;
};

/* The option for flag letter n of "imsxAEUX". */
static const uint32_t dict_pcre_options[] = {
    PCRE2_CASELESS, PCRE2_MULTILINE, PCRE2_DOTALL, PCRE2_EXTENDED,
    PCRE2_ANCHORED, PCRE2_DOLLAR_ENDONLY, PCRE2_UNGREEDY, 0,
};

static pcre2_match_context *dict_pcre_context(void)
{
    static pcre2_match_context *ctx;

    if (ctx == NULL) {
        if ((ctx = pcre2_match_context_create(NULL)) == NULL)
            msg_fatal("pcre2_match_context_create: out of memory");
        pcre2_set_match_limit(ctx, DICT_PCRE_MATCH_LIMIT);
        pcre2_set_depth_limit(ctx, DICT_PCRE_DEPTH_LIMIT);
        pcre2_set_heap_limit(ctx, DICT_PCRE_HEAP_LIMIT);
    }
    return ctx;
}

static void *dict_pcre_compile(const char *pattern, unsigned flags, size_t *ngroups,
                               struct strbuf *why)
{
    struct dict_pcre_re *re;
    uint32_t options = 0, count;
    PCRE2_SIZE erroff;
    PCRE2_UCHAR msg[256];
    pcre2_code *code;
    size_t i;
    int errcode;

    for (i = 0; i < sizeof(dict_pcre_options) / sizeof(dict_pcre_options[0]); i++)
        if (flags & (1u << i))
            options |= dict_pcre_options[i];
    code = pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, options, &errcode,
                         &erroff, NULL);
    if (code == NULL) {
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        strbuf_printf(why, "bad regular expression \"%s\" at offset %zu: %s", pattern,
                      (size_t) erroff, (const char *) msg);
        return NULL;
    }
    if (pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &count) != 0)
        count = 0;
    re = xmalloc(sizeof(*re));
    re->code = code;
    if ((re->data = pcre2_match_data_create_from_pattern(code, NULL)) == NULL)
        msg_fatal("pcre2_match_data_create: out of memory");
    *ngroups = count;
    return re;
}

static int dict_pcre_match(void *vre, const char *key, struct dict_pattern_span *spans,
                           size_t nspans, struct strbuf *why)
{
    struct dict_pcre_re *re = vre;
    PCRE2_UCHAR msg[256];
    PCRE2_SIZE *ov;
    uint32_t npairs;
    size_t i;
    int rc;

    rc = pcre2_match(re->code, (PCRE2_SPTR) key, PCRE2_ZERO_TERMINATED, 0, 0, re->data,
                     dict_pcre_context());
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0) {
        pcre2_get_error_message(rc, msg, sizeof(msg));
        strbuf_printf(why, "pcre2_match: %s", (const char *) msg);
        return -1;
    }
    ov = pcre2_get_ovector_pointer(re->data);
    npairs = pcre2_get_ovector_count(re->data);
    for (i = 0; i < nspans; i++) {
        if (i < npairs && ov[2 * i] != PCRE2_UNSET) {
            spans[i].start = ov[2 * i];
            spans[i].end = ov[2 * i + 1];
        } else {
            spans[i].start = spans[i].end = (size_t) -1;
        }
    }
    return 1;
}

static void dict_pcre_free(void *vre)
{
    struct dict_pcre_re *re = vre;

    pcre2_match_data_free(re->data);
    pcre2_code_free(re->code);
    free(re);
}

static const struct dict_pattern_engine dict_pcre_engine = {
    "pcre", "imsxAEUX", 1u << 0,
    dict_pcre_compile, dict_pcre_match, dict_pcre_free,
};

static struct dict *dict_pcre_parse(const char *spec, const char *name, const char *buf,
                                    size_t len, int flags, struct strbuf *err)
{
    return dict_pattern_parse(&dict_pcre_engine, spec, name, buf, len, flags, err);
}

struct dict *dict_pcre_open(const char *spec, const char *name, int flags, struct strbuf *err)
{
    return dict_source_open_file(spec, name, flags, dict_pcre_parse, err);
}

struct dict *dict_pcre_open_buf(const char *name, const char *buf, size_t len, int flags,
                                struct strbuf *err)
{
    return dict_source_open_buf("pcre", name, buf, len, flags, dict_pcre_parse, err);
}
