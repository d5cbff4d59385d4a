/*
 * strbuf.c - bounded growable byte strings.
 * Growth doubles capacity but never past limit + 1; every size computation is
 * checked for overflow before it is used. Appends that would break the limit
 * fail without side effects.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "mymalloc.h"
#include "strbuf.h"

void strbuf_init(struct strbuf *sb, size_t initial, size_t limit)
{
    if (limit == 0 || limit == SIZE_MAX)
        limit = SIZE_MAX - 1;
    if (initial > limit)
        initial = limit;
    sb->cap = initial + 1;
    sb->data = xmalloc(sb->cap);
    sb->len = 0;
    sb->limit = limit;
    sb->data[0] = '\0';
}

struct strbuf *strbuf_new(size_t initial, size_t limit)
{
    struct strbuf *sb = xmalloc(sizeof(*sb));

    strbuf_init(sb, initial, limit);
    return sb;
}

/* What a buffer points at after strbuf_steal: empty, and owning no memory
 * (cap 0), so a caller that forgets strbuf_release leaks nothing; the next
 * append allocates afresh. Only a NUL is ever written here (reset, truncate). */
static char strbuf_unowned[1];

void strbuf_release(struct strbuf *sb)
{
    if (sb->cap > 0)
        free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

void strbuf_free(struct strbuf **sbp)
{
    if (*sbp) {
        strbuf_release(*sbp);
        free(*sbp);
        *sbp = NULL;
    }
}

int strbuf_reserve(struct strbuf *sb, size_t more)
{
    size_t need, cap;

    if (more > sb->limit - sb->len)
        return -1;
    need = sb->len + more + 1;
    if (need <= sb->cap)
        return 0;
    cap = sb->cap < 16 ? 16 : sb->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > sb->limit + 1)
        cap = sb->limit + 1;
    if (sb->cap == 0) {
        sb->data = xmalloc(cap);
        sb->data[0] = '\0';
    } else {
        sb->data = xrealloc(sb->data, cap);
    }
    sb->cap = cap;
    return 0;
}

int strbuf_append(struct strbuf *sb, const void *data, size_t len)
{
    if (strbuf_reserve(sb, len) < 0)
        return -1;
    if (len)
        memcpy(sb->data + sb->len, data, len);
    sb->len += len;
    sb->data[sb->len] = '\0';
    return 0;
}

int strbuf_puts(struct strbuf *sb, const char *str)
{
    return strbuf_append(sb, str, strlen(str));
}

int strbuf_putc(struct strbuf *sb, int c)
{
    char ch = (char) c;

    return strbuf_append(sb, &ch, 1);
}

int strbuf_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -1;
    if ((size_t) n >= sb->cap - sb->len) {
        if (strbuf_reserve(sb, (size_t) n) < 0) {
            sb->data[sb->len] = '\0';
            return -1;
        }
        vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
    }
    sb->len += (size_t) n;
    return 0;
}

int strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    int res;

    va_start(ap, fmt);
    res = strbuf_vprintf(sb, fmt, ap);
    va_end(ap);
    return res;
}

int strbuf_set(struct strbuf *sb, const char *str)
{
    size_t len = strlen(str);

    if (len > sb->limit)
        return -1;
    strbuf_reset(sb);
    return strbuf_append(sb, str, len);
}

void strbuf_truncate(struct strbuf *sb, size_t len)
{
    if (len < sb->len) {
        sb->len = len;
        sb->data[len] = '\0';
    }
}

void strbuf_consume(struct strbuf *sb, size_t n)
{
    if (n >= sb->len) {
        strbuf_reset(sb);
        return;
    }
    memmove(sb->data, sb->data + n, sb->len - n);
    sb->len -= n;
    sb->data[sb->len] = '\0';
}

char *strbuf_steal(struct strbuf *sb)
{
    char *res = sb->cap > 0 ? sb->data : NULL;

    sb->data = strbuf_unowned;
    sb->cap = 0;
    sb->len = 0;
    if (res == NULL)
        return xstrdup("");
    return res;
}
