/*
 * mymalloc.h - memory allocation that succeeds or does not return.
 * Callers never check for NULL: on exhaustion the process logs and exits, so a
 * daemon is restarted by master rather than limping on with a half-built state.
 * Sizes are checked for overflow before any multiplication.
 */
#ifndef PETREL_MYMALLOC_H
#define PETREL_MYMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t count, size_t size);
char *xstrdup(const char *str);
char *xstrndup(const char *str, size_t len);
void *xmemdup(const void *ptr, size_t len);

/* Frees *pp and clears it; accepts NULL. */
#define xfree(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

#endif
