/*
 * test_attr.c - the IPC attribute codec: exact wire bytes, round trips,
 * every decoder rejection, the limits at N and N+1, splits at every byte,
 * lists, strict consumption, descriptor ownership and caller-bug panics.
 * Malformed frames are written byte by byte here, from docs/ipc.md, not with
 * the encoder under test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "attr.h"

/* ---- a hand-written frame builder, independent of attr.c ---- */

struct raw {
    unsigned char b[8192];
    size_t len;
};

static void raw_bytes(struct raw *r, const void *p, size_t n)
{
    assert_true(r->len + n <= sizeof(r->b));
    memcpy(r->b + r->len, p, n);
    r->len += n;
}

static void raw_u8(struct raw *r, unsigned v)
{
    unsigned char c = (unsigned char) v;

    raw_bytes(r, &c, 1);
}

static void raw_be32(struct raw *r, uint32_t v)
{
    unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};

    raw_bytes(r, b, 4);
}

/* Header with a placeholder length; raw_finish() fills it in. */
static void raw_header(struct raw *r, unsigned nfds)
{
    r->len = 0;
    raw_u8(r, 0xA7);
    raw_u8(r, 1);
    raw_u8(r, nfds);
    raw_u8(r, 0);
    raw_be32(r, 0);
}

static void raw_finish(struct raw *r)
{
    uint32_t n = (uint32_t) (r->len - 8);

    r->b[4] = n >> 24;
    r->b[5] = n >> 16;
    r->b[6] = n >> 8;
    r->b[7] = n;
}

static void raw_name(struct raw *r, unsigned type, const char *name)
{
    raw_u8(r, type);
    raw_u8(r, strlen(name));
    raw_bytes(r, name, strlen(name));
}

static void raw_u32(struct raw *r, const char *name, uint32_t v)
{
    raw_name(r, 1, name);
    raw_be32(r, v);
}

static void raw_str(struct raw *r, unsigned type, const char *name, const char *v, size_t n)
{
    raw_name(r, type, name);
    raw_be32(r, n);
    raw_bytes(r, v, n);
    if ((type & 0x7f) == 3)
        raw_u8(r, 0);
}

static void raw_fd(struct raw *r, const char *name, unsigned idx)
{
    raw_name(r, 5, name);
    raw_u8(r, idx);
}

/* ---- helpers ---- */

static void frame_of(struct attr_msg *m, const void **data, size_t *len)
{
    const int *fds;
    size_t nfds;

    assert_int_equal(attr_msg_frame(m, data, len, &fds, &nfds), 0);
}

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* ---- tests ---- */

static void test_wire_bytes_are_as_documented(void **state)
{
    static const unsigned char want[] = {
        0xA7, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x25,
        0x01, 0x01, 'a', 0x00, 0x00, 0x01, 0x02,
        0x02, 0x01, 'b', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
        0x03, 0x01, 'c', 0x00, 0x00, 0x00, 0x02, 'h', 'i', 0x00,
        0x84, 0x01, 'd', 0x00, 0x00, 0x00, 0x02, 0x00, '\n',
    };
    struct attr_msg *m = attr_msg_new();
    const void *data;
    size_t len;

    assert_int_equal(attr_put_u32(m, "a", 0x102), 0);
    assert_int_equal(attr_put_i64(m, "b", -2), 0);
    assert_int_equal(attr_put_str(m, "c", "hi"), 0);
    assert_int_equal(attr_add_data(m, "d", "\0\n", 2), 0);
    frame_of(m, &data, &len);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(data, want, sizeof(want));
    attr_msg_free(&m);
    assert_null(m);
    attr_msg_free(&m);
}

static void test_round_trip_every_type(void **state)
{
    static const char bin[] = {'\0', '\r', '\n', 'x', (char) 0xff};
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    const void *data, *d;
    const char *s;
    size_t len, n;
    uint32_t u;
    int64_t i;

    attr_put_u32(out, "zero", 0);
    attr_put_u32(out, "max32", UINT32_MAX);
    attr_put_i64(out, "min64", INT64_MIN);
    attr_put_i64(out, "max64", INT64_MAX);
    attr_put_str(out, "empty", "");
    attr_put_str(out, "sender", "user@example.com");
    attr_put_data(out, "bin", bin, sizeof(bin));
    attr_put_data(out, "nodata", "", 0);
    frame_of(out, &data, &len);
    assert_int_equal(attr_decode(in, data, len), 0);
    assert_int_equal(attr_msg_count(in), 8);

    assert_int_equal(attr_get_u32(in, "zero", &u), 0);
    assert_int_equal(u, 0);
    assert_int_equal(attr_get_u32(in, "max32", &u), 0);
    assert_int_equal(u, UINT32_MAX);
    assert_int_equal(attr_get_i64(in, "min64", &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(attr_get_i64(in, "max64", &i), 0);
    assert_true(i == INT64_MAX);
    assert_int_equal(attr_get_str(in, "empty", &s, &n), 0);
    assert_int_equal(n, 0);
    assert_string_equal(s, "");
    assert_int_equal(attr_get_str(in, "sender", &s, NULL), 0);
    assert_string_equal(s, "user@example.com");
    assert_int_equal(attr_get_data(in, "bin", &d, &n), 0);
    assert_int_equal(n, sizeof(bin));
    assert_memory_equal(d, bin, sizeof(bin));
    assert_int_equal(attr_get_data(in, "nodata", &d, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(attr_check_consumed(in), 0);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

static void test_empty_frame(void **state)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    const void *data;
    size_t len;

    frame_of(out, &data, &len);
    assert_int_equal(len, 8);
    assert_int_equal(attr_decode(in, data, len), 0);
    assert_int_equal(attr_msg_count(in), 0);
    assert_int_equal(attr_check_consumed(in), 0);
    /* No bytes at all is not a frame. */
    assert_int_equal(attr_decode(in, "", 0), -1);
    assert_int_equal(errno, EPROTO);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

/* Each case is a frame the decoder must refuse, with the errno it must give. */
enum bad_case {
    BAD_MAGIC, BAD_VERSION, BAD_RESERVED, BAD_TOO_MANY_FDS, BAD_TYPE_0, BAD_TYPE_6,
    BAD_TYPE_HIGH_BITS, BAD_FD_LIST, BAD_NAME_EMPTY, BAD_NAME_65, BAD_NAME_UPPER,
    BAD_NAME_DASH, BAD_NAME_NUL, BAD_TRUNC_HEADER, BAD_TRUNC_NAME, BAD_TRUNC_U32,
    BAD_TRUNC_I64, BAD_TRUNC_STRLEN, BAD_TRUNC_STR, BAD_STR_NO_NUL, BAD_STR_NUL,
    BAD_STR_CR, BAD_STR_LF, BAD_DATA_LEN_HUGE, BAD_DUPLICATE, BAD_DUP_LIST_SINGLE,
    BAD_LIST_MIXED, BAD_FD_NO_FD, BAD_FD_INDEX, BAD_FD_TWICE, BAD_FD_UNNAMED,
    BAD_TRAILING, BAD_CASES
};

static void bad_frame(struct raw *r, enum bad_case c)
{
    raw_header(r, 0);
    switch (c) {
    case BAD_MAGIC: r->b[0] = 0xA6; break;
    case BAD_VERSION: r->b[1] = 2; break;
    case BAD_RESERVED: r->b[3] = 1; break;
    case BAD_TOO_MANY_FDS: r->b[2] = 17; break;
    case BAD_TYPE_0: raw_name(r, 0, "a"); raw_be32(r, 1); break;
    case BAD_TYPE_6: raw_name(r, 6, "a"); raw_be32(r, 1); break;
    case BAD_TYPE_HIGH_BITS: raw_name(r, 0x41, "a"); raw_be32(r, 1); break;
    case BAD_FD_LIST: r->b[2] = 1; raw_name(r, 0x85, "a"); raw_u8(r, 0); break;
    case BAD_NAME_EMPTY: raw_u32(r, "", 1); break;
    case BAD_NAME_65:
        raw_u32(r, "a2345678901234567890123456789012345678901234567890123456789012345", 1);
        break;
    case BAD_NAME_UPPER: raw_u32(r, "Sender", 1); break;
    case BAD_NAME_DASH: raw_u32(r, "a-b", 1); break;
    case BAD_NAME_NUL: raw_u8(r, 1); raw_u8(r, 2); raw_bytes(r, "a\0", 2); raw_be32(r, 1); break;
    case BAD_TRUNC_HEADER: raw_u32(r, "a", 1); raw_u8(r, 1); break;
    case BAD_TRUNC_NAME: raw_u8(r, 1); raw_u8(r, 5); raw_bytes(r, "ab", 2); break;
    case BAD_TRUNC_U32: raw_name(r, 1, "a"); raw_bytes(r, "\0\0\0", 3); break;
    case BAD_TRUNC_I64: raw_name(r, 2, "a"); raw_be32(r, 1); break;
    case BAD_TRUNC_STRLEN: raw_name(r, 3, "a"); raw_bytes(r, "\0\0", 2); break;
    case BAD_TRUNC_STR: raw_name(r, 3, "a"); raw_be32(r, 10); raw_bytes(r, "abc", 3); break;
    case BAD_STR_NO_NUL: raw_name(r, 3, "a"); raw_be32(r, 2); raw_bytes(r, "abc", 3); break;
    case BAD_STR_NUL: raw_str(r, 3, "a", "a\0b", 3); break;
    case BAD_STR_CR: raw_str(r, 3, "a", "a\rb", 3); break;
    case BAD_STR_LF: raw_str(r, 3, "a", "a\n", 2); break;
    case BAD_DATA_LEN_HUGE: raw_name(r, 4, "a"); raw_be32(r, 0xffffffff); raw_u8(r, 0); break;
    case BAD_DUPLICATE: raw_u32(r, "a", 1); raw_u32(r, "a", 2); break;
    case BAD_DUP_LIST_SINGLE: raw_u32(r, "a", 1); raw_name(r, 0x81, "a"); raw_be32(r, 2); break;
    case BAD_LIST_MIXED:
        raw_name(r, 0x81, "a"); raw_be32(r, 2);
        raw_str(r, 0x83, "a", "x", 1);
        break;
    case BAD_FD_NO_FD: raw_fd(r, "fd", 0); break;
    case BAD_FD_INDEX: r->b[2] = 1; raw_fd(r, "fd", 1); break;
    case BAD_FD_TWICE: r->b[2] = 2; raw_fd(r, "a", 0); raw_fd(r, "b", 0); break;
    case BAD_FD_UNNAMED: r->b[2] = 1; raw_u32(r, "a", 1); break;
    case BAD_TRAILING: break;
    case BAD_CASES: break;
    }
    raw_finish(r);
    if (c == BAD_TRAILING)
        raw_u8(r, 0);
}

static void test_decoder_rejects_bad_frames(void **state)
{
    struct attr_msg *in = attr_msg_new();
    struct raw r;
    int c;

    for (c = 0; c < BAD_CASES; c++) {
        bad_frame(&r, (enum bad_case) c);
        errno = 0;
        if (attr_decode(in, r.b, r.len) != -1 || errno != EPROTO)
            fail_msg("case %d: got errno %d (%s), want EPROTO", c, errno, attr_msg_reason(in));
        assert_string_not_equal(attr_msg_reason(in), "no error");
    }
    attr_msg_free(&in);
}

/* A good frame gets through after a bad one: the failure does not stick past reset. */
static void test_reset_after_failure(void **state)
{
    struct attr_msg *in = attr_msg_new();
    struct raw r;
    uint32_t v;

    bad_frame(&r, BAD_DUPLICATE);
    assert_int_equal(attr_decode(in, r.b, r.len), -1);
    raw_header(&r, 0);
    raw_u32(&r, "a", 7);
    raw_finish(&r);
    assert_int_equal(attr_decode(in, r.b, r.len), 0);
    assert_int_equal(attr_get_u32(in, "a", &v), 0);
    assert_int_equal(v, 7);
    attr_msg_free(&in);
}

static void test_frame_limit_exact_and_plus_one(void **state)
{
    struct attr_limits lim = {.max_frame = 100};
    struct attr_msg *in = attr_msg_new();
    char value[128];
    struct raw r;
    size_t used;

    /* 8 header + 2 + 1 name + 4 length + n + 1 NUL = 100 when n = 84 */
    memset(value, 'x', sizeof(value));
    attr_msg_set_limits(in, &lim);
    raw_header(&r, 0);
    raw_str(&r, 3, "s", value, 84);
    raw_finish(&r);
    assert_int_equal(r.len, 100);
    assert_int_equal(attr_decode(in, r.b, r.len), 0);
    raw_header(&r, 0);
    raw_str(&r, 3, "s", value, 85);
    raw_finish(&r);
    assert_int_equal(attr_decode(in, r.b, r.len), -1);
    assert_int_equal(errno, EMSGSIZE);

    /* The length is refused from the header alone, before any payload. */
    attr_msg_reset(in);
    raw_header(&r, 0);
    r.b[4] = 0x7f;
    assert_int_equal(attr_decoder_feed(in, r.b, 8, &used), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(used, 8);

    /* A per-frame limit lowers it until the next reset. */
    attr_msg_reset(in);
    attr_decoder_set_frame_limit(in, 99);
    raw_header(&r, 0);
    raw_str(&r, 3, "s", value, 84);
    raw_finish(&r);
    assert_int_equal(attr_decoder_feed(in, r.b, r.len, &used), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(attr_decode(in, r.b, r.len), 0);
    attr_msg_free(&in);
}

static void test_count_and_name_limits(void **state)
{
    static const char name64[] =
        "a234567890123456789012345678901234567890123456789012345678901234";
    struct attr_limits lim = {.max_attrs = 3, .max_name = 8};
    struct attr_msg *in = attr_msg_new();
    struct raw r;
    int i;

    raw_header(&r, 0);
    raw_u32(&r, name64, 1);
    raw_finish(&r);
    assert_int_equal(attr_decode(in, r.b, r.len), 0);

    attr_msg_set_limits(in, &lim);
    assert_int_equal(attr_decode(in, r.b, r.len), -1);
    assert_int_equal(errno, EPROTO);
    raw_header(&r, 0);
    raw_u32(&r, "abcdefgh", 1);
    raw_finish(&r);
    assert_int_equal(attr_decode(in, r.b, r.len), 0);
    raw_header(&r, 0);
    raw_u32(&r, "abcdefghi", 1);
    raw_finish(&r);
    assert_int_equal(attr_decode(in, r.b, r.len), -1);

    raw_header(&r, 0);
    for (i = 0; i < 3; i++) {
        raw_name(&r, 0x81, "n");
        raw_be32(&r, (uint32_t) i);
    }
    raw_finish(&r);
    assert_int_equal(attr_decode(in, r.b, r.len), 0);
    raw_name(&r, 0x81, "n");
    raw_be32(&r, 3);
    raw_finish(&r);
    assert_int_equal(attr_decode(in, r.b, r.len), -1);
    assert_int_equal(errno, EMSGSIZE);
    attr_msg_free(&in);
}

static void test_builder_refuses_and_sticks(void **state)
{
    struct attr_limits lim = {.max_frame = 64, .max_attrs = 2};
    struct attr_msg *m = attr_msg_new();
    const void *data;
    const int *fds;
    size_t len, nfds;
    char big[80];
    int i;

    assert_int_equal(attr_put_str(m, "a", "bad\r\nline"), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(attr_put_str(m, "b", "fine"), 0);
    assert_int_equal(attr_msg_frame(m, &data, &len, &fds, &nfds), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(attr_add_str(m, "c", "lf\n"), -1);

    attr_msg_reset(m);
    attr_msg_set_limits(m, &lim);
    memset(big, 'x', sizeof(big));
    assert_int_equal(attr_put_data(m, "big", big, sizeof(big)), -1);
    assert_int_equal(errno, EMSGSIZE);
    attr_msg_reset(m);
    /* 8 + (2 + 1 + 4 + 49) = 64: exactly the limit */
    assert_int_equal(attr_put_data(m, "d", big, 49), 0);
    frame_of(m, &data, &len);
    assert_int_equal(len, 64);
    attr_msg_reset(m);
    assert_int_equal(attr_put_data(m, "d", big, 50), -1);

    attr_msg_reset(m);
    assert_int_equal(attr_put_u32(m, "a", 1), 0);
    assert_int_equal(attr_add_u32(m, "b", 1), 0);
    assert_int_equal(attr_add_u32(m, "b", 2), -1);
    assert_int_equal(errno, EMSGSIZE);

    attr_msg_reset(m);
    lim.max_attrs = 100;
    lim.max_frame = 1024;
    attr_msg_set_limits(m, &lim);
    for (i = 0; i < ATTR_MAX_FDS; i++) {
        snprintf(big, sizeof(big), "fd%d", i);
        assert_int_equal(attr_put_fd(m, big, 0), 0);
    }
    assert_int_equal(attr_put_fd(m, "z", 0), -1);
    assert_int_equal(errno, E2BIG);
    attr_msg_free(&m);
}

static void test_getters_report_missing_and_wrong_type(void **state)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    const void *data;
    const char *s = "untouched";
    struct attr_iter it;
    size_t len;
    uint32_t u = 42;
    int64_t i;
    int fd;

    attr_put_u32(out, "num", 5);
    attr_add_str(out, "rcpt", "a@example.com");
    frame_of(out, &data, &len);
    assert_int_equal(attr_decode(in, data, len), 0);

    assert_int_equal(attr_get_u32(in, "missing", &u), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(attr_opt_u32(in, "missing", &u), 0);
    assert_int_equal(u, 42);
    assert_int_equal(attr_get_i64(in, "num", &i), -1);
    assert_int_equal(errno, EPROTO);
    assert_int_equal(attr_opt_str(in, "num", &s, NULL), -1);
    assert_string_equal(s, "untouched");
    assert_int_equal(attr_get_fd(in, "num", &fd), -1);
    /* A list is not a single attribute, even with one element. */
    assert_int_equal(attr_get_str(in, "rcpt", &s, NULL), -1);
    assert_int_equal(errno, EPROTO);
    /* And a single attribute is not a list. */
    assert_int_equal(attr_iter_init(&it, in, "num"), -1);
    assert_int_equal(attr_iter_init(&it, in, "nothing"), 0);
    assert_int_equal(attr_iter_str(&it, &s, NULL), 0);
    assert_int_equal(attr_iter_init(&it, in, "rcpt"), 1);
    assert_int_equal(attr_iter_u32(&it, &u), -1);
    assert_int_equal(attr_iter_str(&it, &s, NULL), 1);
    assert_string_equal(s, "a@example.com");
    assert_int_equal(attr_opt_u32(in, "num", &u), 1);
    assert_int_equal(u, 5);
    assert_int_equal(attr_check_consumed(in), 0);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

static void test_check_consumed_names_the_leftover(void **state)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    struct attr_iter it;
    const void *data;
    const char *s;
    size_t len;

    attr_put_str(out, "request", "notify");
    attr_put_str(out, "queue_id", "ABC");
    attr_add_str(out, "rcpt", "a");
    attr_add_str(out, "rcpt", "b");
    frame_of(out, &data, &len);
    assert_int_equal(attr_decode(in, data, len), 0);
    assert_int_equal(attr_get_str(in, "request", &s, NULL), 0);
    assert_int_equal(attr_check_consumed(in), -1);
    assert_int_equal(errno, EPROTO);
    assert_non_null(strstr(attr_msg_reason(in), "queue_id"));
    assert_int_equal(attr_get_str(in, "queue_id", &s, NULL), 0);
    assert_int_equal(attr_iter_init(&it, in, "rcpt"), 2);
    assert_int_equal(attr_iter_str(&it, &s, NULL), 1);
    assert_int_equal(attr_check_consumed(in), -1);
    assert_non_null(strstr(attr_msg_reason(in), "rcpt"));
    assert_int_equal(attr_iter_str(&it, &s, NULL), 1);
    assert_int_equal(attr_check_consumed(in), 0);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

static void test_5000_recipients(void **state)
{
    struct attr_limits lim = {.max_attrs = 10001};
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    struct attr_iter it, io;
    const void *data;
    const char *s;
    char want[64];
    size_t len;
    int64_t off;
    int i;

    attr_msg_set_limits(out, &lim);
    attr_put_str(out, "sender", "s@example.com");
    for (i = 0; i < 5000; i++) {
        snprintf(want, sizeof(want), "user%d@example.com", i);
        assert_int_equal(attr_add_str(out, "rcpt", want), 0);
        assert_int_equal(attr_add_i64(out, "offset", i * 100), 0);
    }
    frame_of(out, &data, &len);
    /* The default count limit (4096) refuses it; a receiver that expects it raises it. */
    assert_int_equal(attr_decode(in, data, len), -1);
    assert_int_equal(errno, EMSGSIZE);
    attr_msg_set_limits(in, &lim);
    assert_int_equal(attr_decode(in, data, len), 0);
    assert_int_equal(attr_iter_init(&it, in, "rcpt"), 5000);
    assert_int_equal(attr_iter_init(&io, in, "offset"), 5000);
    for (i = 0; i < 5000; i++) {
        snprintf(want, sizeof(want), "user%d@example.com", i);
        assert_int_equal(attr_iter_str(&it, &s, NULL), 1);
        assert_string_equal(s, want);
        assert_int_equal(attr_iter_i64(&io, &off), 1);
        assert_int_equal(off, i * 100);
    }
    assert_int_equal(attr_iter_str(&it, &s, NULL), 0);
    assert_int_equal(attr_get_str(in, "sender", &s, NULL), 0);
    assert_int_equal(attr_check_consumed(in), 0);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

static void check_split_result(struct attr_msg *in)
{
    const char *s;
    uint32_t u;

    assert_int_equal(attr_get_str(in, "request", &s, NULL), 0);
    assert_string_equal(s, "deliver");
    assert_int_equal(attr_get_u32(in, "flags", &u), 0);
    assert_int_equal(u, 0xdeadbeef);
}

/* Splits hide bugs at buffer edges: feed every split in two, and byte by byte. */
static void test_split_at_every_byte(void **state)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    const unsigned char *data;
    size_t len, used, cut, i;

    attr_put_str(out, "request", "deliver");
    attr_put_u32(out, "flags", 0xdeadbeef);
    frame_of(out, (const void **) &data, &len);
    for (cut = 0; cut <= len; cut++) {
        attr_msg_reset(in);
        assert_int_equal(attr_decoder_feed(in, data, cut, &used), cut == len);
        assert_int_equal(used, cut);
        if (cut < len) {
            assert_int_equal(attr_decoder_feed(in, data + cut, len - cut, &used), 1);
            assert_int_equal(used, len - cut);
        }
        check_split_result(in);
    }
    attr_msg_reset(in);
    for (i = 0; i < len; i++) {
        assert_int_equal(attr_decoder_feed(in, data + i, 1, &used), i + 1 == len);
        assert_int_equal(used, 1);
    }
    check_split_result(in);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

/* The decoder stops at the end of a frame and leaves the next one to the caller. */
static void test_two_frames_back_to_back(void **state)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    unsigned char both[256];
    const void *data;
    size_t len1, len2, used;
    uint32_t u;

    attr_put_u32(out, "n", 1);
    frame_of(out, &data, &len1);
    memcpy(both, data, len1);
    attr_msg_reset(out);
    attr_put_u32(out, "n", 2);
    attr_put_u32(out, "m", 3);
    frame_of(out, &data, &len2);
    memcpy(both + len1, data, len2);

    assert_int_equal(attr_decoder_feed(in, both, len1 + len2, &used), 1);
    assert_int_equal(used, len1);
    assert_int_equal(attr_get_u32(in, "n", &u), 0);
    assert_int_equal(u, 1);
    assert_int_equal(attr_opt_u32(in, "m", &u), 0);
    attr_msg_reset(in);
    assert_int_equal(attr_decoder_feed(in, both + len1, len2, &used), 1);
    assert_int_equal(attr_get_u32(in, "n", &u), 0);
    assert_int_equal(u, 2);
    /* Both at once through attr_decode is trailing garbage. */
    assert_int_equal(attr_decode(in, both, len1 + len2), -1);
    assert_int_equal(errno, EPROTO);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

static void test_received_fds_are_owned_until_claimed(void **state)
{
    struct attr_msg *in = attr_msg_new();
    int p1[2], p2[2], fd = -1;
    struct raw r;
    size_t used;

    assert_int_equal(pipe(p1), 0);
    assert_int_equal(pipe(p2), 0);
    raw_header(&r, 2);
    raw_fd(&r, "keep", 1);
    raw_fd(&r, "drop", 0);
    raw_finish(&r);
    assert_int_equal(attr_decoder_add_fd(in, p1[0]), 0);
    assert_int_equal(attr_decoder_add_fd(in, p2[0]), 0);
    assert_int_equal(attr_decoder_feed(in, r.b, r.len, &used), 1);
    assert_int_equal(attr_get_fd(in, "keep", &fd), 0);
    assert_int_equal(fd, p2[0]);
    assert_int_equal(attr_get_fd(in, "keep", &fd), -1);
    assert_int_equal(errno, EBADF);
    attr_msg_reset(in);
    assert_false(fd_is_open(p1[0]));
    assert_true(fd_is_open(p2[0]));
    close(p2[0]);

    /* A descriptor the frame does not declare is refused and closed. */
    assert_int_equal(pipe(p1), 0);
    raw_header(&r, 0);
    raw_u32(&r, "a", 1);
    raw_finish(&r);
    attr_msg_reset(in);
    assert_int_equal(attr_decoder_add_fd(in, p1[0]), 0);
    assert_int_equal(attr_decoder_feed(in, r.b, r.len, &used), -1);
    assert_int_equal(errno, EPROTO);
    attr_msg_reset(in);
    assert_false(fd_is_open(p1[0]));

    /* A declared descriptor that never came is refused too. */
    raw_header(&r, 1);
    raw_fd(&r, "fd", 0);
    raw_finish(&r);
    assert_int_equal(attr_decoder_feed(in, r.b, r.len, &used), -1);
    assert_int_equal(errno, EPROTO);

    /* Unclaimed descriptors are closed by free as well. */
    attr_msg_reset(in);
    assert_int_equal(attr_decoder_add_fd(in, p1[1]), 0);
    assert_int_equal(attr_decoder_feed(in, r.b, r.len, &used), 1);
    attr_msg_free(&in);
    assert_false(fd_is_open(p1[1]));
    close(p2[1]);
}

static void test_walk_lists_every_attribute(void **state)
{
    struct attr_msg *out = attr_msg_new(), *in = attr_msg_new();
    struct attr_info info;
    const void *data;
    size_t len, cursor = 0;

    attr_put_str(out, "request", "x");
    attr_add_u32(out, "n", 1);
    attr_add_u32(out, "n", 2);
    frame_of(out, &data, &len);
    assert_int_equal(attr_decode(in, data, len), 0);
    assert_int_equal(attr_walk(in, &cursor, &info), 1);
    assert_int_equal(info.name_len, 7);
    assert_memory_equal(info.name, "request", 7);
    assert_int_equal(info.type, ATTR_TYPE_STR);
    assert_false(info.list);
    assert_int_equal(attr_walk(in, &cursor, &info), 1);
    assert_int_equal(info.type, ATTR_TYPE_U32);
    assert_true(info.list);
    assert_int_equal(attr_walk(in, &cursor, &info), 1);
    assert_int_equal(attr_walk(in, &cursor, &info), 0);
    attr_msg_free(&out);
    attr_msg_free(&in);
}

/* Runs fn in a child and reports whether it died by abort(): a panic. */
static int panics(void (*fn)(void))
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);

        dup2(devnull, 2);
        fn();
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void put_bad_name(void)
{
    struct attr_msg *m = attr_msg_new();

    attr_put_u32(m, "Bad-Name", 1);
}

static void get_on_unfinished(void)
{
    struct attr_msg *m = attr_msg_new();
    uint32_t u;

    attr_put_u32(m, "a", 1);
    attr_get_u32(m, "a", &u);
}

static void put_good_name(void)
{
    struct attr_msg *m = attr_msg_new();

    attr_put_u32(m, "good_name_9", 1);
    attr_msg_free(&m);
}

static void test_caller_bugs_panic(void **state)
{
    assert_true(panics(put_bad_name));
    assert_true(panics(get_on_unfinished));
    assert_false(panics(put_good_name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_bytes_are_as_documented),
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_empty_frame),
        cmocka_unit_test(test_decoder_rejects_bad_frames),
        cmocka_unit_test(test_reset_after_failure),
        cmocka_unit_test(test_frame_limit_exact_and_plus_one),
        cmocka_unit_test(test_count_and_name_limits),
        cmocka_unit_test(test_builder_refuses_and_sticks),
        cmocka_unit_test(test_getters_report_missing_and_wrong_type),
        cmocka_unit_test(test_check_consumed_names_the_leftover),
        cmocka_unit_test(test_5000_recipients),
        cmocka_unit_test(test_split_at_every_byte),
        cmocka_unit_test(test_two_frames_back_to_back),
        cmocka_unit_test(test_received_fds_are_owned_until_claimed),
        cmocka_unit_test(test_walk_lists_every_attribute),
        cmocka_unit_test(test_caller_bugs_panic),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
