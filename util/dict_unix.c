/*
 * dict_unix.c - unix:passwd.byname and unix:group.byname, the system user and
 * group databases (getpwnam_r, getgrnam_r, so NSS modules apply).
 * Values are the familiar file lines: "name:passwd:uid:gid:gecos:dir:shell"
 * and "name:passwd:gid:member,member". An unknown map name fails the open; a
 * failing name service (not "no such entry") fails the lookup with
 * DICT_ERR_RETRY. Entries larger than DICT_VALUE_MAX are treated as failures.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "dict_impl.h"
#include "msg.h"
#include "mymalloc.h"

struct dict_unix {
    struct dict dict;
    struct strbuf value;
    char *buf;                  /* scratch for the _r functions */
    size_t bufsize;
};

/* Grows the scratch buffer after ERANGE; 0 when it may not grow further. */
static int dict_unix_grow(struct dict_unix *du)
{
    if (du->bufsize >= DICT_VALUE_MAX)
        return 0;
    du->bufsize *= 2;
    du->buf = xrealloc(du->buf, du->bufsize);
    return 1;
}

/* Maps an _r result: 1 found, 0 not found, -1 failed. */
static int dict_unix_status(struct dict_unix *du, int err, const void *result, int *again)
{
    *again = 0;
    if (err == ERANGE && dict_unix_grow(du)) {
        *again = 1;
        return 0;
    }
    if (result != NULL)
        return 1;
    if (err == 0 || err == ENOENT || err == ESRCH || err == EBADF || err == EPERM)
        return 0;
    msg_warn("%s: lookup failed: %s", du->dict.spec, strerror(err));
    return -1;
}

static const char *dict_unix_passwd(struct dict *d, const char *key)
{
    struct dict_unix *du = (struct dict_unix *) d;
    struct passwd pw, *res;
    int status, again;

    do {
        res = NULL;
        status = getpwnam_r(key, &pw, du->buf, du->bufsize, &res);
        status = dict_unix_status(du, status, res, &again);
    } while (again);
    if (status <= 0) {
        if (status < 0)
            d->error = DICT_ERR_RETRY;
        return NULL;
    }
    strbuf_reset(&du->value);
    strbuf_printf(&du->value, "%s:%s:%ld:%ld:%s:%s:%s", pw.pw_name, pw.pw_passwd,
                  (long) pw.pw_uid, (long) pw.pw_gid, pw.pw_gecos ? pw.pw_gecos : "",
                  pw.pw_dir, pw.pw_shell);
    return du->value.data;
}

static const char *dict_unix_group(struct dict *d, const char *key)
{
    struct dict_unix *du = (struct dict_unix *) d;
    struct group gr, *res;
    char **mem;
    int status, again;

    do {
        res = NULL;
        status = getgrnam_r(key, &gr, du->buf, du->bufsize, &res);
        status = dict_unix_status(du, status, res, &again);
    } while (again);
    if (status <= 0) {
        if (status < 0)
            d->error = DICT_ERR_RETRY;
        return NULL;
    }
    strbuf_reset(&du->value);
    strbuf_printf(&du->value, "%s:%s:%ld:", gr.gr_name, gr.gr_passwd, (long) gr.gr_gid);
    for (mem = gr.gr_mem; mem && *mem; mem++)
        strbuf_printf(&du->value, "%s%s", mem == gr.gr_mem ? "" : ",", *mem);
    return du->value.data;
}

static void dict_unix_close(struct dict *d)
{
    struct dict_unix *du = (struct dict_unix *) d;

    strbuf_release(&du->value);
    free(du->buf);
}

struct dict *dict_unix_open(const char *spec, const char *name, int flags, struct strbuf *err)
{
    struct dict_unix *du;
    const char *(*get)(struct dict *, const char *);

    if (strcmp(name, "passwd.byname") == 0) {
        get = dict_unix_passwd;
    } else if (strcmp(name, "group.byname") == 0) {
        get = dict_unix_group;
    } else {
        strbuf_printf(err, "%s: unknown unix map (known: passwd.byname group.byname)", spec);
        return NULL;
    }
    du = (struct dict_unix *) dict_alloc(sizeof(*du), spec, flags | DICT_FLAG_FIXED);
    du->bufsize = 4096;
    du->buf = xmalloc(du->bufsize);
    strbuf_init(&du->value, 128, STRBUF_UNLIMITED);
    du->dict.get = get;
    du->dict.close = dict_unix_close;
    return &du->dict;
}
