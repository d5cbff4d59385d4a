/*
 * aliases.h - the aliases(5) source format, for "newaliases" / "sendmail -bi".
 * A logical line (continuations already joined by the table source reader) is
 * "name: value, value ...". The name may be a quoted string ("x y": ...), stored
 * unquoted; keys are lowercased by the builder (DICT_FLAG_FOLD_KEY). Comments and
 * continuation lines are the table source reader's job (dict_source.c).
 * Never reads past the NUL of the line; a malformed line is an error with a
 * reason, never a crash.
 */
#ifndef PETREL_ALIASES_H
#define PETREL_ALIASES_H

#include "strbuf.h"

/* A dict_split_fn: splits line in place into *key and *value. Returns 0, or -1
 * with the reason in why (no colon, empty name or value, bad quoting). */
int aliases_split(char *line, char **key, char **value, struct strbuf *why);

/* Builds every indexed table named in the alias_database list (e.g.
 * "hash:/etc/aliases, btree:/etc/other") from its source file. Returns the
 * number of tables built, or -1 with "TABLE: reason" in err at the first failure. */
int aliases_build_all(const char *alias_database, struct strbuf *err);

#endif
