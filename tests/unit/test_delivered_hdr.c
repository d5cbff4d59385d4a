/*
 * test_delivered_hdr.c - the prepended delivery headers (quoting, null
 * sender, original recipient, enable_original_recipient) and Delivered-To:
 * loop detection: found without case, folded and indented values, only in
 * the primary headers, a header line longer than the reader's pieces, and a
 * read error reported as such.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "delivered_hdr.h"
#include "params.h"
#include "strbuf.h"

static void make_request(struct deliver_request *req, const char *content, size_t len)
{
    int fd = memfd_create("queue-file", MFD_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "HEAD", 4), 4);
    assert_int_equal(write(fd, content, len), (ssize_t) len);
    memset(req, 0, sizeof(*req));
    req->fd = fd;
    req->content_offset = 4;
    req->content_length = (off_t) len;
}

static struct delivered_hdr *read_headers(const char *content)
{
    struct deliver_request req;
    struct delivered_hdr *dh;

    make_request(&req, content, strlen(content));
    dh = delivered_hdr_read(&req);
    close(req.fd);
    assert_non_null(dh);
    return dh;
}

static void test_prepend(void **state)
{
    struct strbuf out;

    (void) state;
    strbuf_init(&out, 64, 4096);
    var_enable_original_recipient = 1;
    delivered_hdr_prepend(&out, DELIVERED_HDR_ALL, "s@example.com", "",
                          "user@example.org");
    assert_string_equal(out.data, "Return-Path: <s@example.com>\n"
                        "X-Original-To: user@example.org\n"
                        "Delivered-To: user@example.org\n");
    delivered_hdr_prepend(&out, DELIVERED_HDR_ALL, "", "alias@example.org",
                          "a b@example.org");
    assert_string_equal(out.data, "Return-Path: <>\n"
                        "X-Original-To: alias@example.org\n"
                        "Delivered-To: \"a b\"@example.org\n");
    var_enable_original_recipient = 0;
    delivered_hdr_prepend(&out, DELIVERED_HDR_ALL, "s@example.com", "o@example.org",
                          "user@example.org");
    assert_string_equal(out.data, "Return-Path: <s@example.com>\n"
                        "Delivered-To: user@example.org\n");
    delivered_hdr_prepend(&out, DELIVERED_HDR_DELIVERED_TO, "s@example.com", "",
                          "user@example.org");
    assert_string_equal(out.data, "Delivered-To: user@example.org\n");
    strbuf_release(&out);
}

static void test_find(void **state)
{
    struct delivered_hdr *dh;

    (void) state;
    dh = read_headers("Received: from x\n"
                      "DELIVERED-TO:   User@Example.ORG  \n"
                      "Delivered-To:\n\tfolded@example.org\n"
                      "Subject: test\n"
                      "\n"
                      "Delivered-To: inbody@example.org\n");
    assert_true(delivered_hdr_find(dh, "user@example.org"));
    assert_true(delivered_hdr_find(dh, "USER@example.org"));
    assert_true(delivered_hdr_find(dh, "folded@example.org"));
    assert_false(delivered_hdr_find(dh, "inbody@example.org"));
    assert_false(delivered_hdr_find(dh, "other@example.org"));
    delivered_hdr_free(&dh);
    assert_null(dh);

    /* A body line that is not a header ends the headers too. */
    dh = read_headers("Subject: x\nnot a header line\nDelivered-To: late@example.org\n");
    assert_false(delivered_hdr_find(dh, "late@example.org"));
    delivered_hdr_free(&dh);

    /* A value with a NUL is no address (it would match its prefix). */
    {
        static const char nul[] = "Delivered-To: a@example.org\0x\nSubject: x\n\n";
        struct deliver_request req;

        make_request(&req, nul, sizeof(nul) - 1);
        dh = delivered_hdr_read(&req);
        close(req.fd);
        assert_non_null(dh);
        assert_false(delivered_hdr_find(dh, "a@example.org"));
        delivered_hdr_free(&dh);
    }

    /* No headers at all, and no final newline. */
    dh = read_headers("Delivered-To: last@example.org");
    assert_true(delivered_hdr_find(dh, "last@example.org"));
    delivered_hdr_free(&dh);
    dh = read_headers("");
    assert_false(delivered_hdr_find(dh, ""));
    delivered_hdr_free(&dh);
}

static void test_long_header_line(void **state)
{
    size_t n = 20000;
    char *content = malloc(n + 200);
    struct delivered_hdr *dh;

    (void) state;
    strcpy(content, "X-Long: ");
    memset(content + 8, 'a', n);
    strcpy(content + 8 + n, "\nDelivered-To: after@example.org\n\nbody\n");
    dh = read_headers(content);
    assert_true(delivered_hdr_find(dh, "after@example.org"));
    delivered_hdr_free(&dh);
    free(content);
}

static void test_read_error(void **state)
{
    struct deliver_request req;

    (void) state;
    make_request(&req, "Subject: x\n", 11);
    req.content_length = 1000;          /* more than the file holds */
    errno = 0;
    assert_null(delivered_hdr_read(&req));
    assert_int_equal(errno, EIO);
    close(req.fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prepend),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_long_header_line),
        cmocka_unit_test(test_read_error),
    };

    var_header_size_limit = 102400;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
