/*
 * dict_db.c - hash:FILE and btree:FILE, Berkeley DB tables in FILE.db built
 * from the source FILE by "petrel map build".
 *
 * Storage format (Petrel's own; no compatibility with Postfix files is
 * promised): keys and values are stored without a trailing NUL. Keys are
 * lowercased by the builder unless the caller asks otherwise.
 *
 * A build never changes FILE.db in place: it writes FILE.db.tmp.PID in the
 * same directory, syncs it, fsyncs it, renames it over FILE.db and fsyncs the
 * directory, so a reader sees the old or the new table, never half of one,
 * and a process that opened the old file keeps reading it. The new file gets
 * owner read/write plus the group/other read bits of the source, so a secret
 * source (sasl_passwd) does not become a world-readable table.
 * Lookups open FILE.db read-only and warn when it is older than FILE.
 * Failures: open/build return NULL/-1 with the reason; a failed lookup sets
 * DICT_ERR_RETRY; a failed build removes its temporary file.
 */
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dict.h"
#include "dict_impl.h"
#include "msg.h"
#include "mymalloc.h"

#define DICT_DB_CACHE (16 * 1024 * 1024)

struct dict_db {
    struct dict dict;
    DB *db;
    struct strbuf value;
};

static DBTYPE dict_db_type(const char *spec)
{
    return strncmp(spec, "btree:", 6) == 0 ? DB_BTREE : DB_HASH;
}

static char *dict_db_path(const char *name)
{
    size_t len = strlen(name);
    char *path = xmalloc(len + 4);

    memcpy(path, name, len);
    memcpy(path + len, ".db", 4);
    return path;
}

static const char *dict_db_get(struct dict *d, const char *key)
{
    struct dict_db *dd = (struct dict_db *) d;
    DBT k, v;
    int ret;

    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    k.data = (void *) key;
    k.size = (u_int32_t) strlen(key);
    if ((ret = dd->db->get(dd->db, NULL, &k, &v, 0)) == DB_NOTFOUND)
        return NULL;
    if (ret != 0) {
        msg_warn("%s: lookup failed: %s", d->spec, db_strerror(ret));
        d->error = DICT_ERR_RETRY;
        return NULL;
    }
    strbuf_reset(&dd->value);
    if (strbuf_append(&dd->value, v.data, v.size) < 0) {
        msg_warn("%s: value of \"%s\" larger than %d bytes", d->spec, key, DICT_VALUE_MAX);
        d->error = DICT_ERR_RETRY;
        return NULL;
    }
    return dd->value.data;
}

static int dict_db_del(struct dict *d, const char *key, struct strbuf *err)
{
    struct dict_db *dd = (struct dict_db *) d;
    DBT k;
    int ret, fd;

    memset(&k, 0, sizeof(k));
    k.data = (void *) key;
    k.size = (u_int32_t) strlen(key);
    /* Two concurrent deletes must not interleave their page writes. */
    if (dd->db->fd(dd->db, &fd) != 0 || flock(fd, LOCK_EX) < 0) {
        strbuf_printf(err, "%s: cannot lock the database: %s", d->spec, strerror(errno));
        return -1;
    }
    ret = dd->db->del(dd->db, NULL, &k, 0);
    if (ret == 0)
        ret = dd->db->sync(dd->db, 0);
    (void) flock(fd, LOCK_UN);
    if (ret == DB_NOTFOUND)
        return 1;
    if (ret != 0) {
        strbuf_printf(err, "%s: delete failed: %s", d->spec, db_strerror(ret));
        return -1;
    }
    return 0;
}

static void dict_db_close(struct dict *d)
{
    struct dict_db *dd = (struct dict_db *) d;

    if (dd->db)
        (void) dd->db->close(dd->db, 0);
    strbuf_release(&dd->value);
}

static void dict_db_check_age(const char *name, const char *path)
{
    struct stat src, db;

    if (stat(name, &src) == 0 && stat(path, &db) == 0 && db.st_mtime < src.st_mtime)
        msg_warn("database %s is older than source file %s", path, name);
}

struct dict *dict_db_open(const char *spec, const char *name, int flags, struct strbuf *err)
{
    struct dict_db *dd;
    struct dict *d;
    char *path = dict_db_path(name);
    int ret;

    dd = (struct dict_db *) dict_alloc(sizeof(*dd), spec, flags | DICT_FLAG_FIXED);
    strbuf_init(&dd->value, 128, DICT_VALUE_MAX);
    dd->dict.get = dict_db_get;
    dd->dict.del = dict_db_del;
    dd->dict.close = dict_db_close;
    d = &dd->dict;
    if ((ret = db_create(&dd->db, NULL, 0)) != 0) {
        strbuf_printf(err, "%s: db_create: %s", spec, db_strerror(ret));
        dd->db = NULL;
    } else if ((ret = dd->db->open(dd->db, NULL, path, NULL, dict_db_type(spec),
                                   (flags & DICT_FLAG_WRITE) ? 0 : DB_RDONLY, 0)) != 0) {
        strbuf_printf(err, "open database %s: %s", path, db_strerror(ret));
        (void) dd->db->close(dd->db, 0);
        dd->db = NULL;
    } else {
        dict_db_check_age(name, path);
    }
    if (dd->db == NULL)
        dict_close(&d);
    free(path);
    return d;
}

/*
 * Building.
 */
struct dict_db_builder {
    DB *db;
    const char *spec;
    long count;
};

static int dict_db_put(void *ctx, const struct dict_source *src, const char *key,
                       const char *value, struct strbuf *err)
{
    struct dict_db_builder *b = ctx;
    DBT k, v;
    int ret;

    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    k.data = (void *) key;
    k.size = (u_int32_t) strlen(key);
    v.data = (void *) value;
    v.size = (u_int32_t) strlen(value);
    ret = b->db->put(b->db, NULL, &k, &v, DB_NOOVERWRITE);
    if (ret == DB_KEYEXIST) {
        msg_warn("%s:%lu: duplicate entry: \"%s\"", src->name, src->lineno, key);
        return 0;
    }
    if (ret != 0) {
        dict_source_where(src, err);
        strbuf_printf(err, "%s: write failed: %s", b->spec, db_strerror(ret));
        return -1;
    }
    b->count++;
    return 0;
}

/* Makes the renamed file durable: the directory entry lives in the directory. */
static int dict_db_sync_dir(const char *path, struct strbuf *err)
{
    char *dir = xstrdup(path), *slash = strrchr(dir, '/');
    int fd, ret = 0;

    if (slash == dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(fd) < 0) {
        strbuf_printf(err, "fsync directory %s: %s", dir, strerror(errno));
        ret = -1;
    }
    if (fd >= 0)
        close(fd);
    free(dir);
    return ret;
}

/* Flushes the finished temporary file to disk with the final permissions. */
static int dict_db_sync_file(const char *tmp, mode_t mode, struct strbuf *err)
{
    int fd, ret = 0;

    if ((fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0
        || fchmod(fd, mode) < 0 || fsync(fd) < 0) {
        strbuf_printf(err, "sync %s: %s", tmp, strerror(errno));
        ret = -1;
    }
    if (fd >= 0)
        close(fd);
    return ret;
}

long dict_db_build(const char *spec, const char *name, int flags, dict_split_fn split,
                   struct strbuf *err)
{
    struct dict_db_builder b = {NULL, spec, 0};
    char *path = dict_db_path(name);
    struct strbuf tmp, src;
    struct stat st;
    int ret;
    long result = -1;

    strbuf_init(&tmp, 0, STRBUF_UNLIMITED);
    strbuf_init(&src, 0, STRBUF_UNLIMITED);
    strbuf_printf(&tmp, "%s.tmp.%ld", path, (long) getpid());
    if (dict_source_read_file(name, &src, err) < 0 || stat(name, &st) < 0)
        goto out;
    if (unlink(tmp.data) < 0 && errno != ENOENT) {
        strbuf_printf(err, "remove %s: %s", tmp.data, strerror(errno));
        goto out;
    }
    if ((ret = db_create(&b.db, NULL, 0)) != 0) {
        strbuf_printf(err, "%s: db_create: %s", spec, db_strerror(ret));
        b.db = NULL;
        goto out;
    }
    (void) b.db->set_cachesize(b.db, 0, DICT_DB_CACHE, 1);
    if ((ret = b.db->open(b.db, NULL, tmp.data, NULL, dict_db_type(spec),
                          DB_CREATE | DB_EXCL, 0600)) != 0) {
        strbuf_printf(err, "create database %s: %s", tmp.data, db_strerror(ret));
        (void) b.db->close(b.db, 0);
        b.db = NULL;
        goto out;
    }
    if (dict_source_parse_pairs(name, src.data, src.len, split,
                                (flags & DICT_FLAG_FOLD_KEY) != 0, dict_db_put, &b, err) < 0)
        goto fail;
    ret = b.db->close(b.db, 0);
    b.db = NULL;
    if (ret != 0) {
        strbuf_printf(err, "write database %s: %s", tmp.data, db_strerror(ret));
        goto fail;
    }
    if (dict_db_sync_file(tmp.data, S_IRUSR | S_IWUSR | (st.st_mode & (S_IRGRP | S_IROTH)),
                          err) < 0)
        goto fail;
    if (rename(tmp.data, path) < 0) {
        strbuf_printf(err, "rename %s to %s: %s", tmp.data, path, strerror(errno));
        goto fail;
    }
    if (dict_db_sync_dir(path, err) < 0)
        goto out;
    result = b.count;
    goto out;

fail:
    if (b.db)
        (void) b.db->close(b.db, 0);
    (void) unlink(tmp.data);
out:
    strbuf_release(&tmp);
    strbuf_release(&src);
    free(path);
    return result;
}
