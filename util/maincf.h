/*
 * maincf.h - the main.cf file as text: logical lines, names, values, line numbers.
 * Parses "name = value" lines with Postfix's continuation and comment rules and
 * keeps every physical line, so "petrel conf -e" can change one setting and
 * leave comments, blank lines and order alone. Knows nothing about parameter
 * types or $name expansion (that is config.c).
 * Syntax errors are appended to an error buffer as "FILE:LINE: message" lines;
 * the parser never exits and never trusts its input (size and line limits).
 */
#ifndef PETREL_MAINCF_H
#define PETREL_MAINCF_H

#include <stddef.h>

#include "strbuf.h"

#define MAINCF_MAX_SIZE     (4 * 1024 * 1024)   /* bytes in one main.cf */
#define MAINCF_MAX_LOGICAL  (256 * 1024)        /* bytes in one logical line */

struct maincf;

struct maincf_entry {
    char *name;
    char *value;                /* continuation lines joined with one space */
    int line;                   /* first physical line of the logical line */
};

/* Parses text; never NULL. Each syntax error adds a line to err and counts in *errors. */
struct maincf *maincf_parse_text(const char *file, const char *text, size_t len,
                                 struct strbuf *err, int *errors);
/* Reads path; a missing file gives an empty main.cf. Returns NULL with errno
 * when the file exists but cannot be read (or is larger than MAINCF_MAX_SIZE: EFBIG). */
struct maincf *maincf_read(const char *path, struct strbuf *err, int *errors);
void maincf_free(struct maincf **cfp);

const char *maincf_file(const struct maincf *cf);
size_t maincf_count(const struct maincf *cf);
const struct maincf_entry *maincf_get(const struct maincf *cf, size_t i);
/* The last setting of name (the one that wins), or NULL. */
const struct maincf_entry *maincf_find(const struct maincf *cf, const char *name);

/* Replaces the last setting of name in place (dropping earlier ones) or appends
 * it at the end. The value must not contain newlines (returns -1). */
int maincf_set(struct maincf *cf, const char *name, const char *value);
/* Removes every setting of name; returns how many there were. */
int maincf_remove(struct maincf *cf, const char *name);
/* The file text after edits. */
void maincf_format(const struct maincf *cf, struct strbuf *out);
/* Replaces path atomically (temporary file in the same directory, fsync, rename).
 * Returns 0, or -1 with errno. */
int maincf_write(const struct maincf *cf, const char *path);

#endif
