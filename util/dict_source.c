/*
 * dict_source.c - reading lookup table source files: logical lines with their
 * line numbers, and the postmap "key value" format.
 * Parses a buffer, never a stream, so the same code serves files, tests and
 * fuzzing. Never trusts the input: every line is bounded by DICT_LINE_MAX, a
 * file by DICT_FILE_MAX, and NUL bytes are refused. Errors are returned as
 * "NAME:LINE: message" in err; nothing here exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dict.h"
#include "dict_impl.h"
#include "msg.h"

void dict_source_init(struct dict_source *src, const char *name, const char *buf, size_t len)
{
    src->name = name;
    src->buf = buf;
    src->len = len;
    src->pos = 0;
    src->next_lineno = 1;
    src->lineno = 0;
    strbuf_init(&src->line, 128, DICT_LINE_MAX);
}

void dict_source_release(struct dict_source *src)
{
    strbuf_release(&src->line);
}

void dict_source_where(const struct dict_source *src, struct strbuf *err)
{
    strbuf_printf(err, "%s:%lu: ", src->name, src->lineno);
}

static int dict_source_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* The physical line at pos: its start and length without the newline. */
static size_t dict_source_peek(const struct dict_source *src, const char **start)
{
    const char *p = src->buf + src->pos;
    const char *nl = memchr(p, '\n', src->len - src->pos);

    *start = p;
    return nl ? (size_t) (nl - p) : src->len - src->pos;
}

static void dict_source_skip(struct dict_source *src, size_t linelen)
{
    src->pos += linelen;
    if (src->pos < src->len)
        src->pos++;             /* the newline */
    src->next_lineno++;
}

/* Blank or comment: not part of any logical line. */
static int dict_source_ignorable(const char *p, size_t len)
{
    size_t i = 0;

    while (i < len && dict_source_is_space(p[i]))
        i++;
    return i == len || p[i] == '#';
}

int dict_source_next(struct dict_source *src, struct strbuf *err)
{
    const char *p;
    size_t len;
    int have = 0;

    strbuf_reset(&src->line);
    while (src->pos < src->len) {
        len = dict_source_peek(src, &p);
        if (dict_source_ignorable(p, len)) {
            dict_source_skip(src, len);
            continue;
        }
        if (dict_source_is_space(*p)) {
            if (!have) {
                strbuf_printf(err, "%s:%lu: continuation line (it begins with white space) "
                              "without a line before it", src->name, src->next_lineno);
                return -1;
            }
        } else if (have) {
            break;              /* the next logical line starts here */
        } else {
            have = 1;
            src->lineno = src->next_lineno;
        }
        if (memchr(p, 0, len) != NULL) {
            strbuf_printf(err, "%s:%lu: NUL byte in table source", src->name,
                          src->next_lineno);
            return -1;
        }
        if (strbuf_append(&src->line, p, len) < 0) {
            strbuf_printf(err, "%s:%lu: line longer than %d bytes", src->name, src->lineno,
                          DICT_LINE_MAX);
            return -1;
        }
        dict_source_skip(src, len);
    }
    while (src->line.len > 0 && dict_source_is_space(src->line.data[src->line.len - 1]))
        strbuf_truncate(&src->line, src->line.len - 1);
    return have;
}

int dict_source_read_file(const char *path, struct strbuf *buf, struct strbuf *err)
{
    struct stat st;
    ssize_t n;
    int fd;

    /* Non-blocking so that a FIFO named as a table cannot hang the open. */
    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
        strbuf_printf(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        strbuf_printf(err, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if ((unsigned long long) st.st_size > DICT_FILE_MAX) {
        strbuf_printf(err, "%s: larger than %zu bytes", path, DICT_FILE_MAX);
        close(fd);
        return -1;
    }
    strbuf_reset(buf);
    if (strbuf_reserve(buf, (size_t) st.st_size) < 0)
        msg_panic("dict_source_read_file: buffer limit too small");
    for (;;) {
        if (buf->len >= DICT_FILE_MAX) {
            strbuf_printf(err, "%s: larger than %zu bytes", path, DICT_FILE_MAX);
            close(fd);
            return -1;
        }
        if (strbuf_reserve(buf, 65536) < 0)
            msg_panic("dict_source_read_file: buffer limit too small");
        n = read(fd, buf->data + buf->len, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            strbuf_printf(err, "read %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        buf->len += (size_t) n;
        buf->data[buf->len] = 0;
    }
    close(fd);
    return 0;
}

int dict_split_postmap(char *line, char **key, char **value, struct strbuf *why)
{
    char *p = dict_skip_space(line);

    *key = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    if (*p == 0) {
        strbuf_puts(why, "expected format: key whitespace value");
        return -1;
    }
    *p++ = 0;
    *value = dict_skip_space(p);
    return 0;
}

int dict_source_parse_pairs(const char *name, const char *buf, size_t len, dict_split_fn split,
                            int fold, dict_source_pair_fn fn, void *ctx, struct strbuf *err)
{
    struct dict_source src;
    char *key, *value;
    int status, ret = 0;
    struct strbuf why;

    if (split == NULL)
        split = dict_split_postmap;
    strbuf_init(&why, 64, STRBUF_UNLIMITED);
    dict_source_init(&src, name, buf, len);
    while ((status = dict_source_next(&src, err)) > 0) {
        strbuf_reset(&why);
        if (split(src.line.data, &key, &value, &why) < 0) {
            dict_source_where(&src, err);
            strbuf_append(err, why.data, why.len);
            ret = -1;
            break;
        }
        if (fold)
            dict_fold(key);
        if (fn(ctx, &src, key, value, err) < 0) {
            ret = -1;
            break;
        }
    }
    if (status < 0)
        ret = -1;
    dict_source_release(&src);
    strbuf_release(&why);
    return ret;
}

struct dict *dict_source_open_file(const char *spec, const char *name, int flags,
                                   dict_parse_fn parse, struct strbuf *err)
{
    struct strbuf buf;
    struct dict *d = NULL;

    strbuf_init(&buf, 0, STRBUF_UNLIMITED);
    if (dict_source_read_file(name, &buf, err) == 0)
        d = parse(spec, name, buf.data, buf.len, flags, err);
    strbuf_release(&buf);
    return d;
}

struct dict *dict_source_open_buf(const char *type, const char *name, const char *buf,
                                  size_t len, int flags, dict_parse_fn parse,
                                  struct strbuf *err)
{
    struct strbuf spec;
    struct dict *d;

    strbuf_init(&spec, 0, STRBUF_UNLIMITED);
    strbuf_printf(&spec, "%s:%s", type, name);
    d = parse(spec.data, name, buf, len, flags, err);
    strbuf_release(&spec);
    return d;
}
