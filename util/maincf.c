/*
 * maincf.c - main.cf as a list of physical lines plus the settings they hold.
 * Rules (Postfix's): a line whose first non-blank character is "#" is a
 * comment, blank lines are ignored, a line starting with white space continues
 * the previous setting (comments in between do not end it), and a setting is
 * "name = value" with white space around "=" and at the end trimmed.
 * Never exits, never reads past len, never keeps more than MAINCF_MAX_SIZE.
 * Errors go to the caller's buffer as "FILE:LINE: message".
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maincf.h"
#include "mymalloc.h"

enum maincf_kind { MAINCF_OTHER, MAINCF_START, MAINCF_CONT };

struct maincf_line {
    char *text;                 /* without the newline */
    enum maincf_kind kind;
    int deleted;                /* dropped by an edit */
};

struct maincf_item {
    struct maincf_entry entry;
    size_t first, last;         /* physical lines [first, last] of the setting */
};

struct maincf {
    char *file;
    struct maincf_line *lines;
    size_t nlines, lines_cap;
    struct maincf_item *items;
    size_t nitems, items_cap;
};

static int maincf_is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int maincf_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static void maincf_error(struct maincf *cf, struct strbuf *err, int *errors, int line,
                         const char *fmt, const char *arg)
{
    (*errors)++;
    if (err == NULL)
        return;
    strbuf_printf(err, "%s:%d: ", cf->file, line);
    strbuf_printf(err, fmt, arg);
    strbuf_putc(err, '\n');
}

static void maincf_add_line(struct maincf *cf, const char *text, size_t len, enum maincf_kind kind)
{
    struct maincf_line *ln;

    if (cf->nlines == cf->lines_cap) {
        cf->lines_cap = cf->lines_cap ? cf->lines_cap * 2 : 32;
        cf->lines = xreallocarray(cf->lines, cf->lines_cap, sizeof(*cf->lines));
    }
    ln = &cf->lines[cf->nlines++];
    ln->text = xstrndup(text, len);
    ln->kind = kind;
    ln->deleted = 0;
}

static struct maincf_item *maincf_add_item(struct maincf *cf)
{
    struct maincf_item *it;

    if (cf->nitems == cf->items_cap) {
        cf->items_cap = cf->items_cap ? cf->items_cap * 2 : 32;
        cf->items = xreallocarray(cf->items, cf->items_cap, sizeof(*cf->items));
    }
    it = &cf->items[cf->nitems++];
    memset(it, 0, sizeof(*it));
    return it;
}

static enum maincf_kind maincf_classify(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len && maincf_is_blank((unsigned char) s[i]))
        i++;
    if (i == len || s[i] == '#')
        return MAINCF_OTHER;
    return i > 0 ? MAINCF_CONT : MAINCF_START;
}

/* Appends a physical line's text to a logical line: one space between parts. */
static int maincf_join(struct strbuf *logical, const char *s)
{
    size_t len;

    while (maincf_is_blank((unsigned char) *s))
        s++;
    len = strlen(s);
    while (len > 0 && maincf_is_blank((unsigned char) s[len - 1]))
        len--;
    if (logical->len > 0 && strbuf_putc(logical, ' ') < 0)
        return -1;
    return strbuf_append(logical, s, len);
}

/* Splits one logical line into name and value, or reports why it cannot. */
static void maincf_finish(struct maincf *cf, struct maincf_item *it, struct strbuf *logical,
                          struct strbuf *err, int *errors)
{
    char *eq = strchr(logical->data, '=');
    char *name_end, *val;
    size_t vlen;
    const char *p;

    if (eq == NULL) {
        maincf_error(cf, err, errors, it->entry.line,
                     "missing '=' after parameter name in \"%.100s\"", logical->data);
        cf->nitems--;
        return;
    }
    name_end = eq;
    while (name_end > logical->data && maincf_is_blank((unsigned char) name_end[-1]))
        name_end--;
    if (name_end == logical->data) {
        maincf_error(cf, err, errors, it->entry.line, "missing parameter name before '='%s", "");
        cf->nitems--;
        return;
    }
    for (p = logical->data; p < name_end; p++) {
        if (!maincf_name_char((unsigned char) *p)) {
            *name_end = '\0';
            maincf_error(cf, err, errors, it->entry.line,
                         "bad parameter name \"%.100s\" (use letters, digits and _)", logical->data);
            cf->nitems--;
            return;
        }
    }
    val = eq + 1;
    while (maincf_is_blank((unsigned char) *val))
        val++;
    vlen = strlen(val);
    while (vlen > 0 && maincf_is_blank((unsigned char) val[vlen - 1]))
        vlen--;
    it->entry.name = xstrndup(logical->data, (size_t) (name_end - logical->data));
    it->entry.value = xstrndup(val, vlen);
}

static void maincf_split(struct maincf *cf, const char *text, size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t) (nl - text) : len;
        size_t ll = end - pos;

        if (ll > 0 && text[pos + ll - 1] == '\r')
            ll--;
        maincf_add_line(cf, text + pos, ll, maincf_classify(text + pos, ll));
        pos = end + 1;
    }
}

/* Groups physical lines into settings. */
static void maincf_group(struct maincf *cf, struct strbuf *err, int *errors)
{
    struct strbuf logical;
    struct maincf_item *cur = NULL;
    int too_long = 0;
    size_t i;

    strbuf_init(&logical, 128, MAINCF_MAX_LOGICAL);
    for (i = 0; i <= cf->nlines; i++) {
        struct maincf_line *ln = i < cf->nlines ? &cf->lines[i] : NULL;

        if (ln && ln->kind == MAINCF_OTHER)
            continue;
        if (ln && ln->kind == MAINCF_CONT && cur) {
            if (!too_long && maincf_join(&logical, ln->text) < 0)
                too_long = 1;
            cur->last = i;
            continue;
        }
        if (cur) {
            if (too_long) {
                maincf_error(cf, err, errors, cur->entry.line, "line longer than %s bytes", "262144");
                cf->nitems--;
            } else {
                maincf_finish(cf, cur, &logical, err, errors);
            }
            cur = NULL;
        }
        if (ln == NULL)
            break;
        if (ln->kind == MAINCF_CONT) {
            maincf_error(cf, err, errors, (int) i + 1,
                         "line starts with white space but continues no parameter setting%s", "");
            continue;
        }
        cur = maincf_add_item(cf);
        cur->entry.line = (int) i + 1;
        cur->first = cur->last = i;
        strbuf_reset(&logical);
        too_long = maincf_join(&logical, ln->text) < 0;
    }
    strbuf_release(&logical);
}

struct maincf *maincf_parse_text(const char *file, const char *text, size_t len,
                                 struct strbuf *err, int *errors)
{
    struct maincf *cf = xcalloc(1, sizeof(*cf));
    int dummy = 0;

    if (errors == NULL)
        errors = &dummy;
    cf->file = xstrdup(file);
    if (len > MAINCF_MAX_SIZE) {
        maincf_error(cf, err, errors, 1, "file is larger than %s bytes", "4194304");
        return cf;
    }
    if (memchr(text, '\0', len)) {
        size_t off = (size_t) ((const char *) memchr(text, '\0', len) - text), line = 1, i;

        for (i = 0; i < off; i++)
            line += text[i] == '\n';
        maincf_error(cf, err, errors, line > INT_MAX ? INT_MAX : (int) line,
                     "NUL character in file%s", "");
        return cf;
    }
    maincf_split(cf, text, len);
    maincf_group(cf, err, errors);
    return cf;
}

struct maincf *maincf_read(const char *path, struct strbuf *err, int *errors)
{
    struct strbuf text;
    struct maincf *cf;
    char buf[8192];
    ssize_t n;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            return maincf_parse_text(path, "", 0, err, errors);
        return NULL;
    }
    strbuf_init(&text, 4096, MAINCF_MAX_SIZE);
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || strbuf_append(&text, buf, (size_t) n) < 0) {
            int saved = n < 0 ? errno : EFBIG;

            close(fd);
            strbuf_release(&text);
            errno = saved;
            return NULL;
        }
    }
    close(fd);
    cf = maincf_parse_text(path, text.data, text.len, err, errors);
    strbuf_release(&text);
    return cf;
}

void maincf_free(struct maincf **cfp)
{
    struct maincf *cf = *cfp;
    size_t i;

    if (cf == NULL)
        return;
    for (i = 0; i < cf->nlines; i++)
        free(cf->lines[i].text);
    for (i = 0; i < cf->nitems; i++) {
        free(cf->items[i].entry.name);
        free(cf->items[i].entry.value);
    }
    free(cf->lines);
    free(cf->items);
    free(cf->file);
    free(cf);
    *cfp = NULL;
}

const char *maincf_file(const struct maincf *cf)
{
    return cf->file;
}

size_t maincf_count(const struct maincf *cf)
{
    return cf->nitems;
}

const struct maincf_entry *maincf_get(const struct maincf *cf, size_t i)
{
    return i < cf->nitems ? &cf->items[i].entry : NULL;
}

static long maincf_index(const struct maincf *cf, const char *name)
{
    size_t i;

    for (i = cf->nitems; i > 0; i--)
        if (strcmp(cf->items[i - 1].entry.name, name) == 0)
            return (long) i - 1;
    return -1;
}

const struct maincf_entry *maincf_find(const struct maincf *cf, const char *name)
{
    long i = maincf_index(cf, name);

    return i < 0 ? NULL : &cf->items[i].entry;
}

static void maincf_drop(struct maincf *cf, size_t idx)
{
    struct maincf_item *it = &cf->items[idx];
    size_t i;

    for (i = it->first; i <= it->last; i++)
        if (cf->lines[i].kind != MAINCF_OTHER)
            cf->lines[i].deleted = 1;
    free(it->entry.name);
    free(it->entry.value);
    memmove(it, it + 1, (cf->nitems - idx - 1) * sizeof(*it));
    cf->nitems--;
}

int maincf_remove(struct maincf *cf, const char *name)
{
    long i;
    int n = 0;

    while ((i = maincf_index(cf, name)) >= 0) {
        maincf_drop(cf, (size_t) i);
        n++;
    }
    return n;
}

int maincf_set(struct maincf *cf, const char *name, const char *value)
{
    struct strbuf text;
    struct maincf_item *it;
    long idx;
    size_t i;

    if (strpbrk(value, "\r\n") || strpbrk(name, "\r\n"))
        return -1;
    strbuf_init(&text, 64, STRBUF_UNLIMITED);
    strbuf_printf(&text, "%s = %s", name, value);
    idx = maincf_index(cf, name);
    if (idx >= 0) {
        /* Earlier duplicates would be dead text that misleads the reader. */
        for (i = 0; i < (size_t) idx;) {
            if (strcmp(cf->items[i].entry.name, name) == 0) {
                maincf_drop(cf, i);
                idx--;
            } else {
                i++;
            }
        }
        it = &cf->items[idx];
        for (i = it->first + 1; i <= it->last; i++)
            if (cf->lines[i].kind != MAINCF_OTHER)
                cf->lines[i].deleted = 1;
        free(cf->lines[it->first].text);
        cf->lines[it->first].text = strbuf_steal(&text);
        free(it->entry.value);
        it->entry.value = xstrdup(value);
    } else {
        maincf_add_line(cf, text.data, text.len, MAINCF_START);
        it = maincf_add_item(cf);
        it->entry.name = xstrdup(name);
        it->entry.value = xstrdup(value);
        it->entry.line = (int) cf->nlines;
        it->first = it->last = cf->nlines - 1;
    }
    strbuf_release(&text);
    return 0;
}

void maincf_format(const struct maincf *cf, struct strbuf *out)
{
    size_t i;

    for (i = 0; i < cf->nlines; i++) {
        if (cf->lines[i].deleted)
            continue;
        strbuf_puts(out, cf->lines[i].text);
        strbuf_putc(out, '\n');
    }
}

static int maincf_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

static int maincf_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int res;

    if (fd < 0)
        return -1;
    res = fsync(fd);
    close(fd);
    return res;
}

int maincf_write(const struct maincf *cf, const char *path)
{
    struct strbuf text, tmp;
    const char *slash = strrchr(path, '/');
    struct stat st;
    mode_t mode = 0644;
    int fd, saved = 0;

    if (stat(path, &st) == 0)
        mode = st.st_mode & 07777;
    strbuf_init(&tmp, 64, STRBUF_UNLIMITED);
    if (slash)
        strbuf_printf(&tmp, "%.*s/.%s.XXXXXX", (int) (slash - path), path, slash + 1);
    else
        strbuf_printf(&tmp, ".%s.XXXXXX", path);
    if ((fd = mkstemp(tmp.data)) < 0) {
        saved = errno;
        strbuf_release(&tmp);
        errno = saved;
        return -1;
    }
    strbuf_init(&text, 4096, STRBUF_UNLIMITED);
    maincf_format(cf, &text);
    if (fchmod(fd, mode) < 0 || maincf_write_all(fd, text.data, text.len) < 0 || fsync(fd) < 0) {
        saved = errno;
        close(fd);
        fd = -1;
    }
    if (fd >= 0 && (close(fd) < 0 || rename(tmp.data, path) < 0)) {
        saved = errno;
        fd = -1;
    }
    if (fd < 0) {
        unlink(tmp.data);
        strbuf_release(&tmp);
        strbuf_release(&text);
        errno = saved;
        return -1;
    }
    strbuf_truncate(&tmp, slash ? (size_t) (slash - path) : 0);
    maincf_sync_dir(slash ? (slash == path ? "/" : tmp.data) : ".");
    strbuf_release(&tmp);
    strbuf_release(&text);
    return 0;
}
