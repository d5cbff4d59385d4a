/*
 * dsn_split.h - an optional RFC 3463 enhanced status code at the start of a
 * reason text, as in "5.1.1 User unknown" (the nexthop of an error: or
 * discard: transport, Postfix's dsn_split()).
 *
 * Never reads past the terminating NUL and never writes more than
 * DSN_SPLIT_SIZE bytes to dsn. Nothing here fails: text without a valid code
 * gets the caller's default. An invalid default is a caller bug and panics.
 */
#ifndef PETREL_DSN_SPLIT_H
#define PETREL_DSN_SPLIT_H

#include <stddef.h>

#define DSN_SPLIT_SIZE 10               /* "X.YYY.ZZZ" and its NUL */

/* Length of a valid code "C.S.D" at text (class 2, 4 or 5, subject and detail of
 * 1..3 digits) followed by white space or the end, else 0. */
size_t dsn_valid(const char *text);

/*
 * Skips leading white space in text; when a valid code follows, copies it to
 * dsn, else copies def_dsn. *rest receives the free text after the code and its
 * white space (possibly "").
 */
void dsn_split(const char *text, const char *def_dsn, char dsn[DSN_SPLIT_SIZE],
               const char **rest);

#endif
