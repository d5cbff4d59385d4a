/*
 * htable.h - a string-keyed hash table with open addressing.
 * Keys are copied in; values are opaque pointers the caller owns. The hash is
 * seeded per table so that keys chosen by a peer cannot force every insert into
 * one probe chain. Lookups never allocate. The table grows by doubling and
 * never holds more than HTABLE_MAX_ENTRIES entries: an insert past that fails
 * with -1, so a huge input file fails cleanly instead of exhausting memory.
 */
#ifndef PETREL_HTABLE_H
#define PETREL_HTABLE_H

#include <stddef.h>

#define HTABLE_MAX_ENTRIES ((size_t) 1 << 28)

struct htable;

struct htable *htable_new(size_t hint);
/* Frees the table; free_value (may be NULL) is called on each value. */
void htable_free(struct htable **htp, void (*free_value)(void *value));

/* Returns 0 when inserted, 1 when the key is already present (nothing changes;
 * *old, when not NULL, receives the present value), -1 when the table is full. */
int htable_insert(struct htable *ht, const char *key, void *value, void **old);
/* Returns the value, or NULL when absent (store no NULL values to tell apart). */
void *htable_find(const struct htable *ht, const char *key);
/* Like htable_find, but reports presence: 1 found (*value set), 0 absent. */
int htable_lookup(const struct htable *ht, const char *key, void **value);
/* Removes the key; returns its value through *value; 1 removed, 0 absent. */
int htable_remove(struct htable *ht, const char *key, void **value);
size_t htable_count(const struct htable *ht);
/* Calls fn for every entry in no particular order; fn must not change the table.
 * A non-zero return from fn stops the walk and is returned. */
int htable_walk(const struct htable *ht, int (*fn)(const char *key, void *value, void *ctx),
                void *ctx);

#endif
