/*
 * dict_pattern.h - the rule-file format shared by regexp: and pcre: tables;
 * for dict_regexp.c and dict_pcre.c only.
 * A file is a list of rules "/pattern/flags result" or "!/pattern/flags result",
 * with "if /pattern/flags" ... "endif" blocks (also "if !/pattern/"). The first
 * matching rule wins; $1..$99, ${n} and $(n) in the result are replaced by the
 * text of capture group n ($0: the whole match), "$$" by "$". A regular
 * expression library plugs in as an engine.
 */
#ifndef PETREL_DICT_PATTERN_H
#define PETREL_DICT_PATTERN_H

#include <stddef.h>

#include "dict.h"
#include "strbuf.h"

#define DICT_PATTERN_MAX_GROUPS 99      /* highest $n */
#define DICT_PATTERN_MAX_DEPTH  100     /* nested if blocks */

struct dict_pattern_span {
    size_t start, end;          /* start == (size_t) -1: the group did not take part */
};

struct dict_pattern_engine {
    const char *type;           /* "regexp" */
    const char *flag_chars;     /* flag letter n toggles bit n of the flags */
    unsigned default_flags;
    /* Returns the compiled pattern or NULL with the message in why. */
    void *(*compile)(const char *pattern, unsigned flags, size_t *ngroups, struct strbuf *why);
    /* 1: match, spans[0 .. nspans-1] set; 0: no match; -1: failed, message in why. */
    int (*match)(void *re, const char *key, struct dict_pattern_span *spans, size_t nspans,
                 struct strbuf *why);
    void (*free)(void *re);
};

struct dict *dict_pattern_parse(const struct dict_pattern_engine *engine, const char *spec,
                                const char *name, const char *buf, size_t len, int flags,
                                struct strbuf *err);

#endif
