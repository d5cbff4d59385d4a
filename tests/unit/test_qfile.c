/*
 * test_qfile.c - queue files: records and content survive a round trip byte
 * for byte (8-bit and NUL bytes, content larger than the write buffer); the
 * bytes on disk follow docs/queue-file.md; recipients marked done stay done
 * after reopening; a file cut at any byte, or with any byte changed, is
 * reported as malformed or read to its end without a crash; oversize records
 * are refused by writer and reader; a file is partial (mode 0600, rejected by
 * the reader) until commit; abort leaves nothing behind; symlinks and hard
 * links are refused; a stream written to a memfd reads back; misuse panics.
 * Each test runs in its own fresh queue directory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "qfile.h"
#include "queue_path.h"
#include "safe_file.h"
#include "strbuf.h"

struct fixture {
    char dir[64];
    int dirfd;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    strcpy(f->dir, "test_qfile.XXXXXX");
    if (mkdtemp(f->dir) == 0 || (f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY)) < 0
        || mkdirat(f->dirfd, "incoming", 0700) < 0)
        return -1;
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    close(f->dirfd);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ helpers */

struct rec {
    int type;
    const char *data;
};

/* The envelope every round trip writes, in this order; the content goes after index 7. */
static const struct rec envelope[] = {
    {QREC_TIME, "1700000000.123456"},
    {QREC_ATTR, "client_name=mx.example.org"},
    {QREC_ATTR, "client_address=192.0.2.7"},
    {QREC_SENDER, "sender@example.org"},
    {QREC_ORCPT, "rfc822;First@Example.COM"},
    {QREC_NOTIFY, "6"},
    {QREC_RCPT, "first@example.com"},
    {QREC_RCPT, "second@example.net"},
    /* content here */
    {QREC_ATTR, "rewrite_context=remote"},
    {QREC_RCPT, "late@example.com"},
};
#define ENVELOPE_BEFORE 8
#define ENVELOPE_COUNT (sizeof(envelope) / sizeof(envelope[0]))

static unsigned char *make_content(size_t len)
{
    unsigned char *p = malloc(len ? len : 1);
    uint32_t x = 2463534242u;
    size_t i;

    assert_non_null(p);
    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char) x;       /* every byte value, NUL and 8-bit included */
    }
    return p;
}

/* Writes the standard envelope around content, split into pieces of chunk bytes. */
static void write_message(struct qfile_writer *w, const unsigned char *content, size_t len,
                          size_t chunk)
{
    size_t i, off, n;

    for (i = 0; i < ENVELOPE_BEFORE; i++)
        assert_int_equal(qfile_put_str(w, envelope[i].type, envelope[i].data), 0);
    assert_int_equal(qfile_content_begin(w), 0);
    for (off = 0; off < len; off += n) {
        n = len - off < chunk ? len - off : chunk;
        assert_int_equal(qfile_content_write(w, content + off, n), 0);
    }
    assert_int_equal(qfile_content_end(w), 0);
    for (i = ENVELOPE_BEFORE; i < ENVELOPE_COUNT; i++)
        assert_int_equal(qfile_put_str(w, envelope[i].type, envelope[i].data), 0);
}

static struct qfile_writer *create_message(struct fixture *f, const unsigned char *content,
                                           size_t len, int depth, unsigned flags)
{
    struct strbuf why;
    struct qfile_writer *w;

    strbuf_init(&why, 64, 1024);
    w = qfile_create(f->dirfd, "incoming", depth, &why);
    if (w == 0)
        fail_msg("qfile_create: %s", why.data);
    write_message(w, content, len, 1000);
    if (qfile_commit(w, flags, &why) < 0)
        fail_msg("qfile_commit: %s", why.data);
    strbuf_release(&why);
    return w;
}

/* Reads every record and the content, checking them against what write_message wrote. */
static void read_and_check(struct qfile_reader *r, const unsigned char *content, size_t len,
                           size_t piece)
{
    struct qfile_record rec;
    unsigned char *got = malloc(len + 1);
    size_t i = 0, have = 0;
    ssize_t n;
    int ret, seen_content = 0;

    assert_non_null(got);
    while ((ret = qfile_next(r, &rec)) > 0) {
        if (rec.type == QREC_CONTENT) {
            assert_int_equal(i, ENVELOPE_BEFORE);
            assert_int_equal(rec.len, len);
            assert_int_equal(qfile_content_offset(r), (uint64_t) rec.offset + 9);
            while ((n = qfile_content_read(r, got + have, piece)) > 0)
                have += (size_t) n;
            assert_int_equal(n, 0);
            assert_int_equal(have, len);
            assert_memory_equal(got, content, len);
            seen_content = 1;
            continue;
        }
        assert_true(i < ENVELOPE_COUNT);
        assert_int_equal(rec.type, envelope[i].type);
        assert_string_equal(rec.data, envelope[i].data);
        assert_int_equal(rec.len, strlen(envelope[i].data));
        i++;
    }
    if (ret < 0)
        fail_msg("qfile_next: %s", qfile_reason(r));
    assert_int_equal(i, ENVELOPE_COUNT);
    assert_true(seen_content);
    assert_int_equal(qfile_next(r, &rec), 0);   /* END stays END */
    free(got);
}

static struct qfile_reader *open_message(struct fixture *f, const char *path)
{
    struct strbuf why;
    struct qfile_reader *r;

    strbuf_init(&why, 64, 1024);
    r = qfile_open(f->dirfd, path, O_RDONLY, &why);
    if (r == 0)
        fail_msg("qfile_open %s: %s", path, why.data);
    strbuf_release(&why);
    return r;
}

static void writer_path(const struct qfile_writer *w, int depth, struct strbuf *path)
{
    queue_path(path, "incoming", qfile_writer_id(w), depth);
}

static size_t read_file(struct fixture *f, const char *path, unsigned char **data)
{
    struct strbuf sb;
    int fd = openat(f->dirfd, path, O_RDONLY);

    assert_true(fd >= 0);
    strbuf_init(&sb, 1024, STRBUF_UNLIMITED);
    assert_int_equal(safe_file_read_fd(fd, 1 << 26, &sb), 0);
    close(fd);
    *data = (unsigned char *) sb.data;
    return sb.len;
}

static void write_file(struct fixture *f, const char *path, const void *data, size_t len)
{
    int fd = openat(f->dirfd, path, O_WRONLY | O_CREAT | O_TRUNC, 0700);

    assert_true(fd >= 0);
    assert_int_equal(safe_file_write_all(fd, data, len), 0);
    close(fd);
}

/* Reads a file to its end; returns 1 when it was well formed, 0 when malformed. */
static int read_to_end(struct fixture *f, const char *path)
{
    struct qfile_reader *r;
    struct qfile_record rec;
    char buf[512];
    int ret, guard = 0;

    if ((r = qfile_open(f->dirfd, path, O_RDONLY, 0)) == 0)
        return 0;
    while ((ret = qfile_next(r, &rec)) > 0 && guard++ < 1000) {
        if (rec.type == QREC_CONTENT)
            while (qfile_content_read(r, buf, sizeof(buf)) > 0)
                ;
        else
            assert_int_equal(strlen(rec.data), rec.len);
    }
    assert_true(guard < 1000);
    if (ret < 0)
        assert_string_not_equal(qfile_reason(r), "no error");
    qfile_close(&r);
    return ret == 0;
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;

    while (n-- > 0)
        v = (v << 8) | *p++;
    return v;
}

/* ------------------------------------------------------------ round trips */

static void test_round_trip_sizes(void **state)
{
    static const size_t sizes[] = {0, 1, 4096, 65535, 65536, 65537, 300000};
    static const size_t pieces[] = {1, 7, 4096, 1 << 20};
    struct fixture *f = *state;
    struct strbuf path;
    size_t i;

    strbuf_init(&path, 64, 4096);
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *content = make_content(sizes[i]);
        struct qfile_writer *w = create_message(f, content, sizes[i], 1, QFILE_FLAG_8BIT);
        struct qfile_reader *r;

        writer_path(w, 1, &path);
        qfile_writer_free(&w);
        assert_null(w);
        r = open_message(f, path.data);
        assert_int_equal(qfile_content_length(r), sizes[i]);
        assert_int_equal(qfile_rcpt_count(r), 3);
        assert_int_equal(qfile_flags(r), QFILE_FLAG_8BIT);
        read_and_check(r, content, sizes[i], pieces[i % 4]);
        qfile_close(&r);
        assert_null(r);
        free(content);
    }
    strbuf_release(&path);
}

/* Content the caller does not read is skipped: the trailer still reads right. */
static void test_content_skipped(void **state)
{
    static const size_t sizes[] = {10, 200000};
    struct fixture *f = *state;
    struct qfile_record rec;
    struct strbuf path;
    size_t i, k, n;
    char buf[100];

    strbuf_init(&path, 64, 4096);
    for (i = 0; i < 2; i++) {
        unsigned char *content = make_content(sizes[i]);
        struct qfile_writer *w = create_message(f, content, sizes[i], 1, 0);
        struct qfile_reader *r;

        writer_path(w, 1, &path);
        qfile_writer_free(&w);
        for (k = 0; k < 2; k++) {
            r = open_message(f, path.data);
            for (n = 0; n < ENVELOPE_BEFORE; n++)
                assert_int_equal(qfile_next(r, &rec), 1);
            assert_int_equal(qfile_next(r, &rec), 1);
            assert_int_equal(rec.type, QREC_CONTENT);
            if (k == 1) {           /* read a little, leave the rest */
                assert_int_equal(qfile_content_read(r, buf, sizeof(buf)), sizes[i] < 100
                                 ? (ssize_t) sizes[i] : 100);
                assert_memory_equal(buf, content, sizes[i] < 100 ? sizes[i] : 100);
            }
            for (n = ENVELOPE_BEFORE; n < ENVELOPE_COUNT; n++) {
                assert_int_equal(qfile_next(r, &rec), 1);
                assert_int_equal(rec.type, envelope[n].type);
                assert_string_equal(rec.data, envelope[n].data);
            }
            assert_int_equal(qfile_next(r, &rec), 0);
            qfile_close(&r);
        }
        free(content);
    }
    strbuf_release(&path);
}

static void test_bytes_on_disk(void **state)
{
    struct fixture *f = *state;
    static const unsigned char content[] = "Subject: x\n\n\0\377\200body\n";
    struct qfile_writer *w;
    struct strbuf path, dir;
    unsigned char *data;
    struct stat st;
    size_t len, off;

    strbuf_init(&path, 64, 4096);
    strbuf_init(&dir, 64, 4096);
    w = create_message(f, content, sizeof(content), 2,
                       QFILE_FLAG_SMTPUTF8 | QFILE_FLAG_BINARYMIME);
    writer_path(w, 2, &path);
    queue_path_dir(&dir, "incoming", qfile_writer_id(w), 2);
    assert_int_equal(strncmp(path.data, dir.data, dir.len), 0);
    assert_int_equal(fstatat(f->dirfd, path.data, &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_true(qfile_is_complete(st.st_mode));
    qfile_writer_free(&w);

    len = read_file(f, path.data, &data);
    assert_int_equal(len, (size_t) st.st_size);
    assert_memory_equal(data, "PQF1S\0\0\0\030", 9);
    /* First envelope record right after the size record: 'T', length, text. */
    off = 4 + 5 + 24;
    assert_int_equal(data[off], 'T');
    assert_int_equal(be(data + off + 1, 4), strlen(envelope[0].data));
    assert_memory_equal(data + off + 5, envelope[0].data, strlen(envelope[0].data));
    /* The size record points at the content, whose own length field agrees. */
    off = be(data + 9, 8);
    assert_int_equal(be(data + 17, 8), sizeof(content));
    assert_int_equal(be(data + 25, 4), 3);
    assert_int_equal(be(data + 29, 4), QFILE_FLAG_SMTPUTF8 | QFILE_FLAG_BINARYMIME);
    assert_int_equal(data[off - 9], 'M');
    assert_int_equal(be(data + off - 8, 8), sizeof(content));
    assert_memory_equal(data + off, content, sizeof(content));
    /* END is the last five bytes. */
    assert_memory_equal(data + len - 5, "E\0\0\0\0", 5);
    free(data);
    strbuf_release(&path);
    strbuf_release(&dir);
}

static void test_depth_zero_and_ids_differ(void **state)
{
    struct fixture *f = *state;
    unsigned char c[] = "x\n";
    struct qfile_writer *a = create_message(f, c, 2, 0, 0), *b = create_message(f, c, 2, 0, 0);
    struct strbuf path;
    struct stat st;

    strbuf_init(&path, 64, 4096);
    assert_string_not_equal(qfile_writer_id(a), qfile_writer_id(b));
    writer_path(a, 0, &path);
    assert_int_equal(fstatat(f->dirfd, path.data, &st, 0), 0);
    assert_true(qid_valid(path.data + strlen("incoming/")));
    qfile_writer_free(&a);
    qfile_writer_free(&b);
    strbuf_release(&path);
}

/* ------------------------------------------------------------ mark done */

static void test_mark_done_survives_reopen(void **state)
{
    struct fixture *f = *state;
    unsigned char c[] = "hello\n";
    struct qfile_writer *w = create_message(f, c, sizeof(c) - 1, 1, 0);
    struct qfile_reader *r;
    struct qfile_record rec;
    struct strbuf path, why;
    off_t first = -1, late = -1, sender = -1;
    int fd, ndone = 0, nrcpt = 0;

    strbuf_init(&path, 64, 4096);
    strbuf_init(&why, 64, 1024);
    writer_path(w, 1, &path);
    qfile_writer_free(&w);
    r = qfile_open(f->dirfd, path.data, O_RDWR, &why);
    assert_non_null(r);
    while (qfile_next(r, &rec) > 0) {
        if (rec.type == QREC_RCPT && strcmp(rec.data, "first@example.com") == 0)
            first = rec.offset;
        if (rec.type == QREC_RCPT && strcmp(rec.data, "late@example.com") == 0)
            late = rec.offset;
        if (rec.type == QREC_SENDER)
            sender = rec.offset;
    }
    fd = qfile_reader_fd(r);
    assert_int_equal(qfile_mark_done(fd, first), 0);
    assert_int_equal(qfile_mark_done(fd, late), 0);
    assert_int_equal(qfile_mark_done(fd, late), 0);     /* twice is harmless */
    errno = 0;
    assert_int_equal(qfile_mark_done(fd, sender), -1);  /* not a recipient */
    assert_int_equal(errno, EINVAL);
    assert_int_equal(qfile_mark_done(fd, sender + 1), -1);
    qfile_close(&r);

    r = open_message(f, path.data);
    while (qfile_next(r, &rec) > 0) {
        if (rec.type == QREC_DONE) {
            ndone++;
            assert_true(strcmp(rec.data, "first@example.com") == 0
                        || strcmp(rec.data, "late@example.com") == 0);
        } else if (rec.type == QREC_RCPT) {
            nrcpt++;
            assert_string_equal(rec.data, "second@example.net");
        }
    }
    assert_int_equal(ndone, 2);
    assert_int_equal(nrcpt, 1);
    assert_int_equal(qfile_rcpt_count(r), 3);
    qfile_close(&r);
    strbuf_release(&path);
    strbuf_release(&why);
}

/* ------------------------------------------------------------ damage */

static void test_truncated_at_every_offset(void **state)
{
    struct fixture *f = *state;
    unsigned char c[] = "Subject: t\n\nbody\0\377\n";
    struct qfile_writer *w = create_message(f, c, sizeof(c), 1, 0);
    struct strbuf path;
    unsigned char *data;
    size_t len, cut;

    strbuf_init(&path, 64, 4096);
    writer_path(w, 1, &path);
    qfile_writer_free(&w);
    len = read_file(f, path.data, &data);
    assert_int_equal(read_to_end(f, path.data), 1);
    for (cut = 0; cut < len; cut++) {
        write_file(f, "cut", data, cut);
        if (read_to_end(f, "cut"))
            fail_msg("file cut at %zu of %zu bytes read as well formed", cut, len);
    }
    /* One byte too many is as wrong as one too few. */
    data = realloc(data, len + 1);
    data[len] = 'E';
    write_file(f, "cut", data, len + 1);
    assert_int_equal(read_to_end(f, "cut"), 0);
    free(data);
    strbuf_release(&path);
}

static void test_every_byte_changed_never_crashes(void **state)
{
    static const unsigned char values[] = {0x00, 0xff, 0x7f, 0x80, 'R', 'M', 'E', 'O'};
    struct fixture *f = *state;
    unsigned char c[] = "Subject: t\n\nbody\n";
    struct qfile_writer *w = create_message(f, c, sizeof(c), 1, 0);
    struct strbuf path;
    unsigned char *data, saved;
    size_t len, i, v;
    int bad = 0;

    strbuf_init(&path, 64, 4096);
    writer_path(w, 1, &path);
    qfile_writer_free(&w);
    len = read_file(f, path.data, &data);
    for (i = 0; i < len; i++) {
        saved = data[i];
        for (v = 0; v < sizeof(values); v++) {
            if (values[v] == saved)
                continue;
            data[i] = values[v];
            write_file(f, "bent", data, len);
            bad += !read_to_end(f, "bent");
        }
        data[i] = saved;
    }
    /* Most changes outside the content and the text must be caught. */
    assert_true(bad > (int) len);
    free(data);
    strbuf_release(&path);
}

static void test_oversize_records(void **state)
{
    struct fixture *f = *state;
    struct qfile_writer *w;
    struct qfile_reader *r;
    struct qfile_record rec;
    struct strbuf why, path;
    char *big = malloc(QFILE_MAX_RECORD + 2);
    unsigned char *data;
    size_t len, off;
    int ret;

    strbuf_init(&why, 64, 1024);
    strbuf_init(&path, 64, 4096);
    memset(big, 'a', QFILE_MAX_RECORD + 1);
    big[QFILE_MAX_RECORD + 1] = 0;
    w = qfile_create(f->dirfd, "incoming", 1, &why);
    assert_non_null(w);
    errno = 0;
    assert_int_equal(qfile_put(w, QREC_RCPT, big, QFILE_MAX_RECORD + 1), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(qfile_put_attr(w, "x", big + 2), -1);     /* "x=" + 65535 bytes */
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(qfile_put(w, QREC_RCPT, "a\0b", 3), -1);
    assert_int_equal(errno, EINVAL);
    /* Exactly at the limit is fine, and the refusals above left no trace. */
    assert_int_equal(qfile_put(w, QREC_RCPT, big, QFILE_MAX_RECORD), 0);
    assert_int_equal(qfile_put_str(w, QREC_SENDER, ""), 0);
    assert_int_equal(qfile_content_begin(w), 0);
    assert_int_equal(qfile_content_end(w), 0);
    assert_int_equal(qfile_commit(w, 0, &why), 0);
    writer_path(w, 1, &path);
    qfile_writer_free(&w);
    r = open_message(f, path.data);
    assert_int_equal(qfile_rcpt_count(r), 1);
    assert_int_equal(qfile_next(r, &rec), 1);
    assert_int_equal(rec.type, QREC_RCPT);
    assert_int_equal(rec.len, QFILE_MAX_RECORD);
    assert_int_equal(qfile_next(r, &rec), 1);
    assert_int_equal(rec.type, QREC_SENDER);
    assert_int_equal(rec.len, 0);
    assert_string_equal(rec.data, "");
    assert_int_equal(qfile_next(r, &rec), 1);
    assert_int_equal(rec.type, QREC_CONTENT);
    assert_int_equal(rec.len, 0);
    assert_int_equal(qfile_next(r, &rec), 0);
    qfile_close(&r);

    /* A reader meets a length one over the limit: it says so and reads nothing more. */
    len = read_file(f, path.data, &data);
    off = 4 + 5 + 24;
    assert_int_equal(data[off], 'R');
    data[off + 1] = 0;
    data[off + 2] = 1;          /* 0x00010001: the limit plus one */
    data[off + 3] = 0;
    data[off + 4] = 1;
    write_file(f, "big", data, len);
    r = open_message(f, "big");
    ret = qfile_next(r, &rec);
    assert_int_equal(ret, -1);
    assert_non_null(strstr(qfile_reason(r), "exceeds the limit"));
    assert_int_equal(qfile_next(r, &rec), -1);  /* errors stay errors */
    qfile_close(&r);
    free(data);
    free(big);
    strbuf_release(&why);
    strbuf_release(&path);
}

/* ------------------------------------------------------------ lifecycle */

static int count_files(struct fixture *f, const char *dir)
{
    char path[1024];
    struct dirent *de;
    struct stat st;
    DIR *d;
    int fd, n = 0;

    if ((fd = openat(f->dirfd, dir, O_RDONLY | O_DIRECTORY)) < 0)
        return 0;
    assert_non_null(d = fdopendir(fd));
    while ((de = readdir(d)) != 0) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
            fail_msg("path too long");
        assert_int_equal(fstatat(f->dirfd, path, &st, AT_SYMLINK_NOFOLLOW), 0);
        n += S_ISDIR(st.st_mode) ? count_files(f, path) : 1;
    }
    closedir(d);
    return n;
}

static void test_partial_until_commit(void **state)
{
    struct fixture *f = *state;
    struct qfile_writer *w;
    struct strbuf why, path;
    unsigned char *content = make_content(200000);
    struct stat st;

    strbuf_init(&why, 64, 1024);
    strbuf_init(&path, 64, 4096);
    w = qfile_create(f->dirfd, "incoming", 1, &why);
    assert_non_null(w);
    writer_path(w, 1, &path);
    write_message(w, content, 200000, 65536);
    assert_int_equal(fstatat(f->dirfd, path.data, &st, 0), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_false(qfile_is_complete(st.st_mode));
    assert_true(st.st_size > 0);        /* large content went to disk already */
    assert_null(qfile_open(f->dirfd, path.data, O_RDONLY, &why));
    assert_non_null(strstr(why.data, "incomplete"));
    assert_int_equal(qfile_commit(w, 0, &why), 0);
    assert_int_equal(fstatat(f->dirfd, path.data, &st, 0), 0);
    assert_true(qfile_is_complete(st.st_mode));
    assert_int_equal(read_to_end(f, path.data), 1);
    qfile_writer_free(&w);
    assert_int_equal(count_files(f, "incoming"), 1);
    free(content);
    strbuf_release(&why);
    strbuf_release(&path);
}

static void test_abort_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    unsigned char *content = make_content(150000);
    struct qfile_writer *w;
    struct strbuf why;

    strbuf_init(&why, 64, 1024);
    /* Aborted at each stage, and freed without commit: no file remains. */
    w = qfile_create(f->dirfd, "incoming", 2, &why);
    assert_non_null(w);
    qfile_abort(&w);
    assert_null(w);
    w = qfile_create(f->dirfd, "incoming", 2, &why);
    write_message(w, content, 150000, 4096);
    qfile_abort(&w);
    w = qfile_create(f->dirfd, "incoming", 2, &why);
    write_message(w, content, 10, 4096);
    qfile_writer_free(&w);
    qfile_abort(&w);            /* NULL is accepted */
    assert_int_equal(count_files(f, "incoming"), 0);
    /* A committed file, then aborted (e.g. the reply could not be sent), goes too. */
    w = create_message(f, content, 10, 2, 0);
    assert_int_equal(count_files(f, "incoming"), 1);
    qfile_abort(&w);
    assert_int_equal(count_files(f, "incoming"), 0);
    free(content);
    strbuf_release(&why);
}

static void test_move_before_commit(void **state)
{
    struct fixture *f = *state;
    unsigned char *content = make_content(5000);
    struct qfile_writer *w;
    struct strbuf why, path;
    struct stat st;

    strbuf_init(&why, 64, 1024);
    strbuf_init(&path, 64, 4096);
    w = qfile_create(f->dirfd, "incoming", 1, &why);
    assert_non_null(w);
    write_message(w, content, 5000, 4096);
    /* Never complete in incoming/: moved while partial, completed in hold/. */
    assert_int_equal(qfile_move(w, "hold", 2, &why), 0);
    assert_int_equal(count_files(f, "incoming"), 0);
    assert_int_equal(count_files(f, "hold"), 1);
    queue_path(&path, "hold", qfile_writer_id(w), 2);
    assert_int_equal(fstatat(f->dirfd, path.data, &st, 0), 0);
    assert_false(qfile_is_complete(st.st_mode));
    assert_int_equal(qfile_commit(w, 0, &why), 0);
    assert_int_equal(fstatat(f->dirfd, path.data, &st, 0), 0);
    assert_true(qfile_is_complete(st.st_mode));
    assert_int_equal(read_to_end(f, path.data), 1);
    qfile_writer_free(&w);
    /* An aborted moved file goes from where it moved to. */
    w = qfile_create(f->dirfd, "incoming", 1, &why);
    write_message(w, content, 10, 4096);
    assert_int_equal(qfile_move(w, "hold", 2, &why), 0);
    qfile_abort(&w);
    assert_int_equal(count_files(f, "hold"), 1);
    free(content);
    strbuf_release(&why);
    strbuf_release(&path);
}

static void test_create_failure(void **state)
{
    struct fixture *f = *state;
    struct strbuf why;

    strbuf_init(&why, 64, 1024);
    assert_int_equal(mkdirat(f->dirfd, "ro", 0500), 0);
    if (geteuid() != 0) {
        assert_null(qfile_create(f->dirfd, "ro", 0, &why));
        assert_int_equal(errno, EACCES);
        assert_non_null(strstr(why.data, "ro"));
    }
    assert_null(qfile_create(f->dirfd, "missing", 0, &why));
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(why.data, "missing"));
    strbuf_release(&why);
}

static void test_links_refused(void **state)
{
    struct fixture *f = *state;
    unsigned char c[] = "x\n";
    struct qfile_writer *w = create_message(f, c, 2, 0, 0);
    struct strbuf path, why;

    strbuf_init(&path, 64, 4096);
    strbuf_init(&why, 64, 1024);
    writer_path(w, 0, &path);
    qfile_writer_free(&w);
    assert_int_equal(symlinkat(path.data + strlen("incoming/"), f->dirfd, "incoming/link"), 0);
    errno = 0;
    assert_null(qfile_open(f->dirfd, "incoming/link", O_RDONLY, &why));
    assert_int_equal(errno, ELOOP);
    assert_int_equal(linkat(f->dirfd, path.data, f->dirfd, "incoming/hard", 0), 0);
    errno = 0;
    assert_null(qfile_open(f->dirfd, "incoming/hard", O_RDONLY, &why));
    assert_int_equal(errno, EMLINK);
    assert_null(qfile_open(f->dirfd, "incoming", O_RDONLY, &why));
    strbuf_release(&path);
    strbuf_release(&why);
}

/* ------------------------------------------------------------ streams */

static void test_memfd_stream(void **state)
{
    unsigned char *content = make_content(70000);
    struct qfile_writer *w;
    struct qfile_reader *r;
    struct strbuf why;
    int fd = memfd_create("qfile", MFD_CLOEXEC), pipefd[2];

    (void) state;
    strbuf_init(&why, 64, 1024);
    assert_true(fd >= 0);
    w = qfile_fdopen(fd);
    assert_non_null(w);
    assert_string_equal(qfile_writer_id(w), "");
    assert_int_equal(qfile_writer_fd(w), fd);
    write_message(w, content, 70000, 333);
    assert_int_equal(qfile_commit(w, QFILE_FLAG_8BIT, &why), 0);
    qfile_writer_free(&w);
    /* The writer did not close the descriptor; the reader starts at offset 0. */
    r = qfile_reader_fdopen(fd, &why);
    if (r == 0)
        fail_msg("qfile_reader_fdopen: %s", why.data);
    assert_int_equal(qfile_flags(r), QFILE_FLAG_8BIT);
    read_and_check(r, content, 70000, 5000);
    qfile_close(&r);
    assert_true(fcntl(fd, F_GETFD) >= 0);
    /* A written file is not empty, and a pipe cannot be patched or bounded. */
    errno = 0;
    assert_null(qfile_fdopen(fd));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(pipe(pipefd), 0);
    assert_null(qfile_fdopen(pipefd[1]));
    assert_null(qfile_reader_fdopen(pipefd[0], &why));
    assert_non_null(strstr(why.data, "not a regular file"));
    close(pipefd[0]);
    close(pipefd[1]);
    close(fd);
    free(content);
    strbuf_release(&why);
}

static void test_uncommitted_stream_rejected(void **state)
{
    struct qfile_writer *w;
    struct strbuf why;
    int fd = memfd_create("qfile", MFD_CLOEXEC);

    (void) state;
    strbuf_init(&why, 64, 1024);
    w = qfile_fdopen(fd);
    write_message(w, (const unsigned char *) "x\n", 2, 2);
    qfile_writer_free(&w);
    /* Small enough to have stayed in the buffer: nothing reached the descriptor. */
    assert_null(qfile_reader_fdopen(fd, &why));
    assert_non_null(strstr(why.data, "malformed"));
    close(fd);
    strbuf_release(&why);
}

/* ------------------------------------------------------------ misuse */

enum misuse { MISUSE_NO_CONTENT, MISUSE_TWICE, MISUSE_ORCPT_DANGLING, MISUSE_END_RECORD,
    MISUSE_NO_SENDER, MISUSE_AFTER_COMMIT };

static void misuse(enum misuse how)
{
    struct qfile_writer *w;
    int fd = memfd_create("qfile", MFD_CLOEXEC);

    w = qfile_fdopen(fd);
    switch (how) {
    case MISUSE_NO_CONTENT:
        qfile_put_str(w, QREC_SENDER, "");
        qfile_commit(w, 0, 0);
        break;
    case MISUSE_TWICE:
        qfile_content_begin(w);
        qfile_content_end(w);
        qfile_content_begin(w);
        break;
    case MISUSE_ORCPT_DANGLING:
        qfile_put_str(w, QREC_ORCPT, "rfc822;a@b");
        qfile_put_str(w, QREC_SENDER, "");
        break;
    case MISUSE_END_RECORD:
        qfile_put(w, QREC_END, "", 0);
        break;
    case MISUSE_NO_SENDER:
        qfile_content_begin(w);
        qfile_content_end(w);
        qfile_commit(w, 0, 0);
        break;
    case MISUSE_AFTER_COMMIT:
        qfile_put_str(w, QREC_SENDER, "");
        qfile_content_begin(w);
        qfile_content_end(w);
        if (qfile_commit(w, 0, 0) == 0)
            qfile_put_str(w, QREC_RCPT, "a@b");
        break;
    }
}

static void test_misuse_panics(void **state)
{
    enum misuse how;
    pid_t pid;
    int status;

    (void) state;
    for (how = MISUSE_NO_CONTENT; how <= MISUSE_AFTER_COMMIT; how++) {
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);

            dup2(devnull, 2);
            misuse(how);
            _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
            fail_msg("misuse %d did not panic", (int) how);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_on_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_zero_and_ids_differ, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mark_done_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_at_every_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_byte_changed_never_crashes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_until_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_before_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_refused, setup, teardown),
        cmocka_unit_test(test_memfd_stream),
        cmocka_unit_test(test_uncommitted_stream_rejected),
        cmocka_unit_test(test_misuse_panics),
    };

    return cmocka_run_group_tests(tests, 0, 0);
}
