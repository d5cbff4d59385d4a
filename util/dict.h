/*
 * dict.h - lookup tables ("type:name"): the one API every Petrel program uses.
 *
 * A table is named by a spec such as "hash:/etc/petrel/access" or
 * "inline:{ a=b, c=d }". Built-in types: hash, btree (Berkeley DB files made by
 * "petrel map build"), texthash, inline, static, cidr, regexp, pcre, unix.
 * Other files add types (ldap, memcache, proxy) with dict_register().
 *
 * Lookups return a value or NULL; after NULL, dict_error() tells "not found"
 * (0) from "the lookup failed, try again later" (DICT_ERR_RETRY), so a caller
 * can defer mail instead of treating a broken LDAP server as "no such user".
 *
 * Opening never exits: a missing file, a syntax error ("FILE:LINE: message")
 * or an unknown type returns NULL with the reason in err. Whether that is fatal
 * is the caller's decision (daemons msg_fatal at startup; petrel check reports).
 *
 * Case: fixed-string tables (hash, btree, texthash, inline, unix) compare keys
 * exactly. "petrel map build" and texthash/inline store keys in lower case, and
 * DICT_FLAG_FOLD_KEY lowercases the lookup key, which is what most Postfix-style
 * maps want. Pattern tables (regexp, pcre, cidr) see the key unchanged and carry
 * DICT_FLAG_PATTERN; regexp and pcre match case-insensitively unless the "i"
 * flag is given.
 */
#ifndef PETREL_DICT_H
#define PETREL_DICT_H

#include <stddef.h>

#include "strbuf.h"

/* Flags given to dict_open (requests). */
#define DICT_FLAG_FOLD_KEY  (1 << 0)    /* lowercase keys before fixed-string lookups */
#define DICT_FLAG_WRITE     (1 << 1)    /* open for dict_delete (hash, btree) */
/* Flags a table reports through dict_flags() (properties of its type). */
#define DICT_FLAG_PATTERN   (1 << 8)    /* keys are matched, not looked up */
#define DICT_FLAG_FIXED     (1 << 9)    /* keys are looked up exactly (or folded) */

/* dict_error() values. */
#define DICT_ERR_NONE   0               /* the last lookup found, or found nothing */
#define DICT_ERR_RETRY  (-1)            /* the last lookup failed; try again later */

/* Limits on what a table may hold or return. */
#define DICT_LINE_MAX   (1024 * 1024)   /* logical source line, after joining continuations */
#define DICT_FILE_MAX   ((size_t) 1 << 30)      /* a source file read into memory */
#define DICT_VALUE_MAX  (1024 * 1024)   /* a result after $n substitution */
#define DICT_LIST_MAX   256             /* tables in one table list */

struct dict;

struct dict *dict_open(const char *spec, int flags, struct strbuf *err);
/* Like dict_open, but returns the handle already open for the same spec and
 * flags (reference counted), so many parameters naming one table share it. */
struct dict *dict_open_shared(const char *spec, int flags, struct strbuf *err);
/* The value is valid until the next call on this dict. */
const char *dict_get(struct dict *d, const char *key);
int dict_error(const struct dict *d);
int dict_flags(const struct dict *d);
const char *dict_spec(const struct dict *d);
/* Removes key from a table opened with DICT_FLAG_WRITE: 0 removed, 1 absent,
 * -1 failed or unsupported (reason in err). */
int dict_delete(struct dict *d, const char *key, struct strbuf *err);
/* Closes (or drops one reference to a shared handle) and clears *dp; NULL is fine. */
void dict_close(struct dict **dp);

/* Is "type" (without the colon) a registered table type? */
int dict_type_known(const char *type);
/* Appends the registered type names, sorted, space separated. */
void dict_type_names(struct strbuf *out);

/*
 * Building an indexed table (hash:, btree:) from its source file FILE into
 * FILE.db, atomically: readers see the old or the new file, never a mix.
 * split turns one logical source line into key and value (NULL: the postmap
 * format "key whitespace value"); the aliases format plugs in here.
 * DICT_FLAG_FOLD_KEY lowercases keys (the default of "petrel map build").
 * Duplicate keys: the first wins, with a "FILE:LINE: duplicate entry" warning.
 * Returns the number of entries stored, or -1 with the reason in err.
 */
typedef int (*dict_split_fn)(char *line, char **key, char **value, struct strbuf *why);
long dict_build(const char *spec, int flags, dict_split_fn split, struct strbuf *err);
/* The postmap source format: key, white space, value (the rest of the line). */
int dict_split_postmap(char *line, char **key, char **value, struct strbuf *why);

/*
 * Adding table types. open receives the full spec, the part after "type:",
 * and the flags; it returns a dict made with dict_alloc (see dict_impl.h) or
 * NULL with the reason in err. build is NULL for types that are read as they are.
 */
typedef struct dict *(*dict_open_fn)(const char *spec, const char *name, int flags,
                                     struct strbuf *err);
typedef long (*dict_build_fn)(const char *spec, const char *name, int flags,
                              dict_split_fn split, struct strbuf *err);
void dict_register(const char *type, dict_open_fn open, dict_build_fn build);

/*
 * Memory-only openers: the same parsers as the file types, over a buffer (tests,
 * fuzzing, tables embedded elsewhere). name is used in "NAME:LINE:" messages.
 */
struct dict *dict_texthash_open_buf(const char *name, const char *buf, size_t len, int flags,
                                    struct strbuf *err);
struct dict *dict_cidr_open_buf(const char *name, const char *buf, size_t len, int flags,
                                struct strbuf *err);
struct dict *dict_regexp_open_buf(const char *name, const char *buf, size_t len, int flags,
                                  struct strbuf *err);
struct dict *dict_pcre_open_buf(const char *name, const char *buf, size_t len, int flags,
                                struct strbuf *err);

/*
 * Table lists: a parameter value such as "hash:/a, regexp:/b, inline:{ x=y }".
 * Tables are separated by commas and/or white space; "{...}" groups. Lookups try
 * each table in order; the first match wins; a retry error stops the search and
 * is reported (the caller must not act on a partial answer).
 */
struct dict_list;

struct dict_list *dict_list_open(const char *value, int flags, struct strbuf *err);
const char *dict_list_get(struct dict_list *list, const char *key);
/* Only the fixed-string tables (DICT_FLAG_FIXED); for partial keys such as
 * "@domain" that pattern tables must not see. */
const char *dict_list_get_fixed(struct dict_list *list, const char *key);
int dict_list_error(const struct dict_list *list);
size_t dict_list_count(const struct dict_list *list);
void dict_list_close(struct dict_list **listp);

/*
 * Address lookups (dict_addr.c) in Postfix's order for virtual(5), canonical(5)
 * and similar tables. For user+ext@domain (ext split at the first of the
 * recipient_delimiter characters in delims; NULL or "" for none):
 *   1. user+ext@domain   every table, pattern tables included (only this once)
 *   2. user@domain       fixed tables; only when there is an extension
 *   3. user+ext, user    fixed tables; only with DICT_ADDR_LOCAL (the domain is
 *                        one of ours) or when the address has no domain
 *   4. @domain           fixed tables
 * The local part is split only when it does not begin with a delimiter and the
 * user part stays non-empty; "owner-" prefixes and "-request" suffixes are not
 * taken as extensions. When the match used the form without extension and ext
 * is not NULL, ext receives the extension with its delimiter ("+foo"), so the
 * caller can propagate it; otherwise ext is left empty.
 * Returns the value or NULL; dict_list_error(list) tells not found from retry.
 */
#define DICT_ADDR_LOCAL         (1 << 0)

const char *dict_addr_lookup(struct dict_list *list, const char *address, const char *delims,
                             int flags, struct strbuf *ext);

/*
 * The access(5) domain walk for "sub.example.com":
 *   parent_style != 0 (parent_domain_matches_subdomains lists the feature):
 *       sub.example.com, example.com, com
 *   parent_style == 0: sub.example.com, .example.com, .com
 * The full name goes to every table; the parent forms only to fixed tables.
 */
const char *dict_addr_domain_lookup(struct dict_list *list, const char *domain, int parent_style);

/*
 * The access(5) order for an address user+ext@domain:
 *   user+ext@domain (every table), user@domain, then the domain walk above
 *   (fixed tables only, the address already went to the pattern tables),
 *   then user+ext@, user@. Without a domain: user+ext (every table), user.
 */
const char *dict_addr_access_lookup(struct dict_list *list, const char *address,
                                    const char *delims, int parent_style);

#endif
