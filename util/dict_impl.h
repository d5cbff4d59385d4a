/*
 * dict_impl.h - what a lookup table type implements; for dict_*.c files only.
 * A type embeds struct dict as the first member of its own struct, allocates
 * it with dict_alloc, and fills in the methods. Programs use dict.h instead.
 */
#ifndef PETREL_DICT_IMPL_H
#define PETREL_DICT_IMPL_H

#include "dict.h"
#include "strbuf.h"

struct dict {
    char *spec;                 /* "type:name" as opened */
    const char *name;           /* points into spec, after the colon */
    int flags;                  /* DICT_FLAG_* requested plus the type's properties */
    int error;                  /* DICT_ERR_* of the last lookup */
    /* Returns the value or NULL; on failure sets d->error = DICT_ERR_RETRY. */
    const char *(*get)(struct dict *d, const char *key);
    /* 0 removed, 1 absent, -1 failed (reason in err); NULL: not supported. */
    int (*del)(struct dict *d, const char *key, struct strbuf *err);
    /* Releases the type's own resources, not the struct dict itself. */
    void (*close)(struct dict *d);
    struct strbuf fold;         /* the lowercased key */
    int refcount;               /* > 0: in the shared cache */
    char *cache_key;            /* its key in the shared cache */
};

/* Allocates size bytes (>= sizeof(struct dict)), zeroed, with the base filled in. */
struct dict *dict_alloc(size_t size, const char *spec, int flags);
/* Lowercases ASCII letters in place (keys are compared bytewise otherwise). */
void dict_fold(char *s);

/*
 * Table source files (dict_source.c). A logical line is a non-blank,
 * non-comment line plus every following line that begins with white space;
 * blank and "#" comment lines in between are skipped. Trailing white space is
 * removed. Lines are limited to DICT_LINE_MAX bytes; NUL bytes are errors.
 */
struct dict_source {
    const char *name;           /* for "NAME:LINE: message" */
    const char *buf;
    size_t len;
    size_t pos;
    unsigned long next_lineno;  /* physical line number of buf + pos */
    unsigned long lineno;       /* first physical line of the current logical line */
    struct strbuf line;         /* the current logical line */
};

void dict_source_init(struct dict_source *src, const char *name, const char *buf, size_t len);
/* 1: src->line holds the next logical line; 0: end of input; -1: error in err. */
int dict_source_next(struct dict_source *src, struct strbuf *err);
void dict_source_release(struct dict_source *src);
/* Appends "NAME:LINE: " for the current line to err (then the caller adds the message). */
void dict_source_where(const struct dict_source *src, struct strbuf *err);
/* Reads a whole regular file (at most DICT_FILE_MAX bytes) into buf; -1 with reason. */
int dict_source_read_file(const char *path, struct strbuf *buf, struct strbuf *err);

/*
 * Opening a type whose source is parsed at open: parse gets the whole text.
 * dict_source_open_file reads the file named by name first; open_buf makes
 * the spec "type:name" for a buffer.
 */
typedef struct dict *(*dict_parse_fn)(const char *spec, const char *name, const char *buf,
                                      size_t len, int flags, struct strbuf *err);
struct dict *dict_source_open_file(const char *spec, const char *name, int flags,
                                   dict_parse_fn parse, struct strbuf *err);
struct dict *dict_source_open_buf(const char *type, const char *name, const char *buf,
                                  size_t len, int flags, dict_parse_fn parse,
                                  struct strbuf *err);

/*
 * Parses key/value sources (postmap format or another split function) and
 * calls fn per pair; fn returns 0 to go on or -1 to stop (reason in err, which
 * it fills). Keys are lowercased when fold is set. Returns 0 or -1.
 */
typedef int (*dict_source_pair_fn)(void *ctx, const struct dict_source *src, const char *key,
                                   const char *value, struct strbuf *err);
int dict_source_parse_pairs(const char *name, const char *buf, size_t len, dict_split_fn split,
                            int fold, dict_source_pair_fn fn, void *ctx, struct strbuf *err);

/* Skips white space (bounded by the NUL). */
char *dict_skip_space(char *p);

/* The registered open functions of the built-in types. */
struct dict *dict_db_open(const char *spec, const char *name, int flags, struct strbuf *err);
long dict_db_build(const char *spec, const char *name, int flags, dict_split_fn split,
                   struct strbuf *err);
struct dict *dict_texthash_open(const char *spec, const char *name, int flags,
                                struct strbuf *err);
struct dict *dict_inline_open(const char *spec, const char *name, int flags, struct strbuf *err);
struct dict *dict_static_open(const char *spec, const char *name, int flags, struct strbuf *err);
struct dict *dict_cidr_open(const char *spec, const char *name, int flags, struct strbuf *err);
struct dict *dict_regexp_open(const char *spec, const char *name, int flags, struct strbuf *err);
struct dict *dict_pcre_open(const char *spec, const char *name, int flags, struct strbuf *err);
struct dict *dict_unix_open(const char *spec, const char *name, int flags, struct strbuf *err);

/*
 * Splits the next element off a list separated by any character of sep, in
 * place; "{...}" groups and may hold separators. Returns NULL at the end, or
 * with *bad = 1 when braces do not balance.
 */
#define DICT_LIST_SEP ", \t\r\n"
char *dict_token(char **cpp, const char *sep, int *bad);

/* "{ text }" -> "text" (trimmed) in place; 0 when not braced, 1 done, -1 unbalanced. */
int dict_unbrace(char **text);

#endif
