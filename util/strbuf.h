/*
 * strbuf.h - bounded, growable byte strings.
 * The contents are always NUL-terminated (data[len] == 0) but may hold NULs.
 * A buffer never grows past its limit: appends that would exceed it fail with
 * -1 and leave the contents unchanged, so input read from the network cannot
 * exhaust memory. The struct is public for speed; change it only via these calls.
 */
#ifndef PETREL_STRBUF_H
#define PETREL_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
    char *data;
    size_t len;
    size_t cap;                 /* allocated bytes, including the NUL */
    size_t limit;               /* maximum len; SIZE_MAX when unbounded */
};

#define STRBUF_UNLIMITED ((size_t) -1)

void strbuf_init(struct strbuf *sb, size_t initial, size_t limit);
struct strbuf *strbuf_new(size_t initial, size_t limit);
void strbuf_free(struct strbuf **sbp);
void strbuf_release(struct strbuf *sb);

static inline void strbuf_reset(struct strbuf *sb)
{
    sb->len = 0;
    sb->data[0] = '\0';
}

int strbuf_reserve(struct strbuf *sb, size_t more);
int strbuf_append(struct strbuf *sb, const void *data, size_t len);
int strbuf_puts(struct strbuf *sb, const char *str);
int strbuf_putc(struct strbuf *sb, int c);
int strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int strbuf_vprintf(struct strbuf *sb, const char *fmt, va_list ap);
int strbuf_set(struct strbuf *sb, const char *str);
void strbuf_truncate(struct strbuf *sb, size_t len);
/* Removes the first n bytes (consumed input). */
void strbuf_consume(struct strbuf *sb, size_t n);
/* Returns the contents as a malloc'ed string and leaves sb empty and owning no
 * memory: it may be used again at once, and releasing it is harmless but not
 * needed (a forgotten release after a steal leaks nothing). */
char *strbuf_steal(struct strbuf *sb);

#endif
