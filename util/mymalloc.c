/*
 * mymalloc.c - allocation wrappers that never return NULL.
 * Must never be used for sizes taken unchecked from the network: callers bound
 * input first; these wrappers only guard against arithmetic overflow.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "mymalloc.h"

void *xmalloc(size_t size)
{
    void *ptr = malloc(size ? size : 1);

    if (ptr == NULL)
        msg_fatal("out of memory allocating %zu bytes", size);
    return ptr;
}

void *xcalloc(size_t count, size_t size)
{
    void *ptr = calloc(count ? count : 1, size ? size : 1);

    if (ptr == NULL)
        msg_fatal("out of memory allocating %zu x %zu bytes", count, size);
    return ptr;
}

void *xrealloc(void *ptr, size_t size)
{
    void *res = realloc(ptr, size ? size : 1);

    if (res == NULL)
        msg_fatal("out of memory reallocating %zu bytes", size);
    return res;
}

void *xreallocarray(void *ptr, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        msg_panic("xreallocarray: %zu x %zu overflows", count, size);
    return xrealloc(ptr, count * size);
}

char *xstrdup(const char *str)
{
    return xmemdup(str, strlen(str) + 1);
}

char *xstrndup(const char *str, size_t len)
{
    size_t n = strnlen(str, len);
    char *res = xmalloc(n + 1);

    memcpy(res, str, n);
    res[n] = '\0';
    return res;
}

void *xmemdup(const void *ptr, size_t len)
{
    void *res = xmalloc(len);

    memcpy(res, ptr, len);
    return res;
}
