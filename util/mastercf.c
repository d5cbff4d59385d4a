/*
 * mastercf.c - master.cf: one service per logical line, eight columns, then
 * the command's arguments with "-o name=value" overrides pulled out.
 * Logical lines follow main.cf's rules (leading white space continues, "#"
 * starts a comment); "{ text with spaces }" is one argument, and
 * "-o { name = value }" an override whose value may contain spaces.
 * Never exits and never trusts the file: sizes, service and argument counts are
 * bounded. Every error is one "FILE:LINE: message" line in the caller's buffer;
 * the bad service is skipped and parsing goes on so all errors are reported.
 * Only checks syntax: binding, programs and privileges are master's business.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mastercf.h"
#include "mymalloc.h"
#include "params.h"

struct mastercf_tok {
    char *text;
    int braced;                 /* came from "{ ... }" */
};

struct mastercf_ctx {
    const char *file;
    int line;
    struct strbuf *err;
    int errors;
};

static void mastercf_error(struct mastercf_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void mastercf_error(struct mastercf_ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    ctx->errors++;
    if (ctx->err == NULL)
        return;
    strbuf_printf(ctx->err, "%s:%d: ", ctx->file, ctx->line);
    va_start(ap, fmt);
    strbuf_vprintf(ctx->err, fmt, ap);
    va_end(ap);
    strbuf_putc(ctx->err, '\n');
}

static int mastercf_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static char *mastercf_trimdup(const char *s, size_t len)
{
    while (len > 0 && mastercf_space((unsigned char) *s))
        s++, len--;
    while (len > 0 && mastercf_space((unsigned char) s[len - 1]))
        len--;
    return xstrndup(s, len);
}

static void mastercf_free_toks(struct mastercf_tok *toks, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(toks[i].text);
    free(toks);
}

/* Splits a logical line into words and "{ ... }" groups; NULL on a syntax error. */
static struct mastercf_tok *mastercf_tokenize(struct mastercf_ctx *ctx, const char *s, size_t *np)
{
    struct mastercf_tok *toks = NULL;
    size_t n = 0, cap = 0;

    for (;;) {
        const char *start;
        int braced = 0;

        while (mastercf_space((unsigned char) *s))
            s++;
        if (*s == '\0')
            break;
        if (n >= MASTERCF_MAX_ARGS + 8) {
            mastercf_error(ctx, "more than %d arguments", MASTERCF_MAX_ARGS);
            mastercf_free_toks(toks, n);
            return NULL;
        }
        if (*s == '{') {
            int level = 1;

            start = ++s;
            for (; *s && level > 0; s++)
                level += (*s == '{') - (*s == '}');
            if (level > 0) {
                mastercf_error(ctx, "missing '}' after '{'");
                mastercf_free_toks(toks, n);
                return NULL;
            }
            if (*s && !mastercf_space((unsigned char) *s)) {
                mastercf_error(ctx, "text after '}' must be separated by white space");
                mastercf_free_toks(toks, n);
                return NULL;
            }
            braced = 1;
        } else {
            start = s;
            while (*s && !mastercf_space((unsigned char) *s))
                s++;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            toks = xreallocarray(toks, cap, sizeof(*toks));
        }
        toks[n].braced = braced;
        toks[n].text = braced ? mastercf_trimdup(start, (size_t) (s - 1 - start))
            : xstrndup(start, (size_t) (s - start));
        n++;
    }
    *np = n;
    return toks;
}

static int mastercf_yesno(struct mastercf_ctx *ctx, const char *what, const char *s, int dflt)
{
    if (strcmp(s, "-") == 0)
        return dflt;
    if (strcmp(s, "y") == 0)
        return 1;
    if (strcmp(s, "n") == 0)
        return 0;
    mastercf_error(ctx, "bad %s field \"%.50s\" (use y, n or -)", what, s);
    return -1;
}

/* Non-negative decimal number below INT_MAX, optionally followed by "?". */
static int mastercf_number(const char *s, int allow_q, int *val, int *q)
{
    long long n = 0;

    if (!isdigit((unsigned char) *s))
        return -1;
    for (; isdigit((unsigned char) *s); s++) {
        n = n * 10 + (*s - '0');
        if (n > INT_MAX)
            return -1;
    }
    *q = 0;
    if (allow_q && *s == '?') {
        *q = 1;
        s++;
    }
    if (*s)
        return -1;
    *val = (int) n;
    return 0;
}

static int mastercf_port_ok(const char *port)
{
    static const char *const known[] = {"smtp", "submission", "submissions", "smtps", "lmtp", NULL};
    const char *const *k;
    const char *p;
    long n = 0;

    if (*port == '\0')
        return 0;
    if (isdigit((unsigned char) *port)) {
        for (p = port; *p; p++) {
            if (!isdigit((unsigned char) *p) || (n = n * 10 + (*p - '0')) > 65535)
                return 0;
        }
        return n > 0;
    }
    for (k = known; *k; k++)
        if (strcmp(*k, port) == 0)
            return 1;
    for (p = port; *p; p++)
        if (!isalnum((unsigned char) *p) && *p != '-' && *p != '_')
            return 0;
    return getservbyname(port, "tcp") != NULL;
}

/* inet service names: "port", "host:port", "[ipv6]:port"; the port may be a name. */
static int mastercf_inet_ok(struct mastercf_ctx *ctx, const char *name)
{
    const char *colon, *p;

    if (name[0] == '[') {
        const char *close = strchr(name, ']');

        if (close == NULL || close == name + 1 || close[1] != ':') {
            mastercf_error(ctx, "bad inet service \"%.100s\" (use [ipv6-address]:port)", name);
            return 0;
        }
        for (p = name + 1; p < close; p++) {
            if (!isxdigit((unsigned char) *p) && *p != ':' && *p != '.') {
                mastercf_error(ctx, "bad IPv6 address in inet service \"%.100s\"", name);
                return 0;
            }
        }
        colon = close + 1;
    } else if ((colon = strrchr(name, ':')) != NULL) {
        if (colon == name) {
            mastercf_error(ctx, "missing host before ':' in inet service \"%.100s\"", name);
            return 0;
        }
        for (p = name; p < colon; p++) {
            if (!isalnum((unsigned char) *p) && *p != '.' && *p != '-' && *p != '_') {
                mastercf_error(ctx, "bad host name in inet service \"%.100s\"", name);
                return 0;
            }
        }
    }
    if (!mastercf_port_ok(colon ? colon + 1 : name)) {
        mastercf_error(ctx, "unknown port \"%.100s\" in inet service \"%.100s\"",
                       colon ? colon + 1 : name, name);
        return 0;
    }
    return 1;
}

static int mastercf_type(struct mastercf_ctx *ctx, const char *s, enum master_type *type)
{
    static const struct {
        const char *name;
        enum master_type type;
    } types[] = {
        {"inet", MASTER_INET}, {"unix", MASTER_UNIX}, {"fifo", MASTER_FIFO}, {"pass", MASTER_PASS},
    };
    size_t i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(s, types[i].name) == 0) {
            *type = types[i].type;
            return 0;
        }
    }
    if (strcmp(s, "unix-dgram") == 0)
        mastercf_error(ctx, "unsupported service type \"unix-dgram\"");
    else
        mastercf_error(ctx, "bad service type \"%.50s\" (use inet, unix, fifo or pass)", s);
    return -1;
}

static const char *mastercf_type_name(enum master_type type)
{
    static const char *const names[] = {"inet", "unix", "fifo", "pass"};

    return names[type];
}

static int mastercf_param_name_ok(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char) *s) && *s != '_')
            return 0;
    return 1;
}

/* "-o name=value" or "-o { name = value }". */
static int mastercf_override(struct mastercf_ctx *ctx, struct master_service *sv,
                             const struct mastercf_tok *tok)
{
    const char *eq = strchr(tok->text, '=');
    struct master_override *o;
    char *name;

    if (eq == NULL) {
        mastercf_error(ctx, "missing '=' in \"-o %.100s\" (use -o name=value)", tok->text);
        return -1;
    }
    name = mastercf_trimdup(tok->text, (size_t) (eq - tok->text));
    if (!mastercf_param_name_ok(name) || (!tok->braced && mastercf_space((unsigned char) eq[1]))) {
        mastercf_error(ctx, "bad parameter name in \"-o %.100s\"", tok->text);
        free(name);
        return -1;
    }
    sv->overrides = xreallocarray(sv->overrides, sv->noverrides + 1, sizeof(*sv->overrides));
    o = &sv->overrides[sv->noverrides++];
    o->name = name;
    o->value = mastercf_trimdup(eq + 1, strlen(eq + 1));
    return 0;
}

static void mastercf_service_free(struct master_service *sv)
{
    size_t i;

    free(sv->name);
    for (i = 0; i < sv->argc; i++)
        free(sv->argv[i]);
    free(sv->argv);
    for (i = 0; i < sv->noverrides; i++) {
        free(sv->overrides[i].name);
        free(sv->overrides[i].value);
    }
    free(sv->overrides);
    free(sv->file);
    memset(sv, 0, sizeof(*sv));
}

/* Columns 1 to 7. */
static int mastercf_columns(struct mastercf_ctx *ctx, struct master_service *sv,
                            struct mastercf_tok *t)
{
    int q, i;

    for (i = 0; i < 8; i++) {
        if (t[i].braced) {
            mastercf_error(ctx, "field %d may not be a { } group", i + 1);
            return -1;
        }
    }
    sv->name = xstrdup(t[0].text);
    if (mastercf_type(ctx, t[1].text, &sv->type) < 0)
        return -1;
    if (sv->type == MASTER_INET && !mastercf_inet_ok(ctx, sv->name))
        return -1;
    if (sv->type != MASTER_INET && (strchr(sv->name, '/') || strcmp(sv->name, "..") == 0)) {
        mastercf_error(ctx, "bad service name \"%.100s\" (no '/' allowed)", sv->name);
        return -1;
    }
    if ((sv->private_ = mastercf_yesno(ctx, "private", t[2].text, sv->type != MASTER_INET)) < 0
        || (sv->unpriv = mastercf_yesno(ctx, "unpriv", t[3].text, 1)) < 0
        || (sv->chroot = mastercf_yesno(ctx, "chroot", t[4].text, 0)) < 0)
        return -1;
    if (strcmp(t[5].text, "-") != 0
        && mastercf_number(t[5].text, 1, &sv->wakeup, &sv->wakeup_if_used) < 0) {
        mastercf_error(ctx, "bad wakeup field \"%.50s\" (use seconds, seconds? or -)", t[5].text);
        return -1;
    }
    if (strcmp(t[6].text, "-") == 0) {
        /* Follows default_process_limit once main.cf is loaded. */
        sv->maxproc = var_default_process_limit > 0 && var_default_process_limit <= INT_MAX
            ? (int) var_default_process_limit : 100;
        sv->maxproc_default = 1;
    } else if (mastercf_number(t[6].text, 0, &sv->maxproc, &q) < 0) {
        mastercf_error(ctx, "bad maxproc field \"%.50s\" (use a number or -)", t[6].text);
        return -1;
    }
    return 0;
}

/* Column 8 and the arguments; "-o" pairs go to overrides. */
static int mastercf_command(struct mastercf_ctx *ctx, struct master_service *sv,
                            struct mastercf_tok *t, size_t n)
{
    size_t i;

    if (strchr(t[7].text, '/') || t[7].text[0] == '.') {
        mastercf_error(ctx, "bad command \"%.100s\" (a program name in daemon_directory)", t[7].text);
        return -1;
    }
    sv->argv = xcalloc(n - 7 + 1, sizeof(char *));
    sv->argv[sv->argc++] = xstrdup(t[7].text);
    sv->command = sv->argv[0];
    for (i = 8; i < n; i++) {
        if (!t[i].braced && strcmp(t[i].text, "-o") == 0) {
            if (++i >= n) {
                mastercf_error(ctx, "missing name=value after -o");
                return -1;
            }
            if (mastercf_override(ctx, sv, &t[i]) < 0)
                return -1;
        } else {
            sv->argv[sv->argc++] = xstrdup(t[i].text);
        }
    }
    return 0;
}

static void mastercf_service(struct mastercf_ctx *ctx, struct mastercf *cf, const char *logical)
{
    struct master_service sv;
    struct mastercf_tok *toks;
    const struct master_service *dup;
    size_t n;

    if ((toks = mastercf_tokenize(ctx, logical, &n)) == NULL)
        return;
    memset(&sv, 0, sizeof(sv));
    if (n < 8) {
        mastercf_error(ctx, "expected at least 8 fields (service type private unpriv chroot"
                       " wakeup maxproc command), found %zu", n);
    } else if (cf->count >= MASTERCF_MAX_SERVICES) {
        mastercf_error(ctx, "more than %d services", MASTERCF_MAX_SERVICES);
    } else if (mastercf_columns(ctx, &sv, toks) == 0 && mastercf_command(ctx, &sv, toks, n) == 0) {
        if ((dup = mastercf_find(cf, sv.name, sv.type)) != NULL) {
            mastercf_error(ctx, "duplicate service \"%.100s %s\" (first defined at line %d)",
                           sv.name, mastercf_type_name(sv.type), dup->line);
        } else {
            sv.file = xstrdup(ctx->file);
            sv.line = ctx->line;
            cf->services = xreallocarray(cf->services, cf->count + 1, sizeof(*cf->services));
            cf->services[cf->count++] = sv;
            mastercf_free_toks(toks, n);
            return;
        }
    }
    mastercf_service_free(&sv);
    mastercf_free_toks(toks, n);
}

/* Logical lines: a line starting with white space continues the previous one;
 * comment and blank lines are skipped and do not end it. */
int mastercf_parse_text(const char *name, const char *text, size_t len,
                        struct mastercf *cf, struct strbuf *err)
{
    struct mastercf_ctx ctx = {name, 1, err, 0};
    struct strbuf logical;
    size_t pos = 0;
    int line = 0, start = 0;

    memset(cf, 0, sizeof(*cf));
    if (len > MASTERCF_MAX_SIZE || memchr(text, '\0', len)) {
        mastercf_error(&ctx, len > MASTERCF_MAX_SIZE ? "file is too large" : "NUL character in file");
        return -1;
    }
    strbuf_init(&logical, 256, MASTERCF_MAX_SIZE);
    while (pos <= len) {
        const char *nl = pos < len ? memchr(text + pos, '\n', len - pos) : NULL;
        size_t end = pos < len ? (nl ? (size_t) (nl - text) : len) : len;
        const char *s = text + pos;
        size_t ll = end - pos, i = 0;

        line++;
        while (i < ll && mastercf_space((unsigned char) s[i]))
            i++;
        if (pos < len && (i == ll || s[i] == '#')) {
            pos = end + 1;
            continue;
        }
        if (pos < len && i > 0 && start) {
            strbuf_putc(&logical, ' ');
            strbuf_append(&logical, s, ll);
            pos = end + 1;
            continue;
        }
        if (start) {
            ctx.line = start;
            mastercf_service(&ctx, cf, logical.data);
            start = 0;
        }
        if (pos >= len)
            break;
        if (i > 0) {
            ctx.line = line;
            mastercf_error(&ctx, "line starts with white space but continues no service");
        } else {
            strbuf_reset(&logical);
            strbuf_append(&logical, s, ll);
            start = line;
        }
        pos = end + 1;
    }
    strbuf_release(&logical);
    return ctx.errors ? -1 : 0;
}

int mastercf_parse(const char *path, struct mastercf *cf, struct strbuf *err)
{
    struct strbuf text;
    char buf[8192];
    ssize_t n;
    int fd, res;

    memset(cf, 0, sizeof(*cf));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (err)
            strbuf_printf(err, "%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    strbuf_init(&text, 8192, MASTERCF_MAX_SIZE);
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || strbuf_append(&text, buf, (size_t) n) < 0) {
            if (err)
                strbuf_printf(err, "%s: cannot read: %s\n", path,
                              n < 0 ? strerror(errno) : "file is too large");
            close(fd);
            strbuf_release(&text);
            return -1;
        }
    }
    close(fd);
    res = mastercf_parse_text(path, text.data, text.len, cf, err);
    strbuf_release(&text);
    return res;
}

void mastercf_free(struct mastercf *cf)
{
    size_t i;

    for (i = 0; i < cf->count; i++)
        mastercf_service_free(&cf->services[i]);
    free(cf->services);
    cf->services = NULL;
    cf->count = 0;
}

const struct master_service *mastercf_find(const struct mastercf *cf, const char *name,
                                           enum master_type type)
{
    size_t i;

    for (i = 0; i < cf->count; i++)
        if (cf->services[i].type == type && strcmp(cf->services[i].name, name) == 0)
            return &cf->services[i];
    return NULL;
}
