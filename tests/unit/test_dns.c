/*
 * test_dns.c - the DNS reply parser and the resolver wrapper: A, AAAA, MX
 * with compressed names, null MX, NXDOMAIN, NODATA, SERVFAIL, CNAME before
 * the answer, the record limit, every truncation of a valid reply, pointer
 * loops, over-long names; MX sorting by preference with shuffling among
 * equals; and real queries over UDP to a forked responder on 127.0.0.1 named
 * by dns_servers with a port (answer, SERVFAIL, nobody listening).
 * Replies are assembled here byte by byte, independently of the parser.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "dns.h"
#include "strbuf.h"

/* --- a small reply builder ------------------------------------------------ */

struct pkt {
    unsigned char b[4096];
    size_t n;
};

static void put8(struct pkt *p, unsigned v)
{
    assert_true(p->n < sizeof(p->b));
    p->b[p->n++] = (unsigned char) v;
}

static void put16(struct pkt *p, unsigned v)
{
    put8(p, v >> 8);
    put8(p, v & 0xff);
}

static void put32(struct pkt *p, unsigned v)
{
    put16(p, v >> 16);
    put16(p, v & 0xffff);
}

static void put_name(struct pkt *p, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t) (dot - name) : strlen(name);

        put8(p, (unsigned) l);
        memcpy(p->b + p->n, name, l);
        p->n += l;
        name += l + (dot ? 1 : 0);
    }
    put8(p, 0);
}

static void header(struct pkt *p, unsigned rcode, unsigned qd, unsigned an)
{
    p->n = 0;
    put16(p, 0x1234);
    put16(p, 0x8180 | rcode);
    put16(p, qd);
    put16(p, an);
    put16(p, 0);
    put16(p, 0);
}

static void question(struct pkt *p, const char *name, unsigned type)
{
    put_name(p, name);
    put16(p, type);
    put16(p, 1);
}

/* Answer whose owner is a pointer to the question name at offset 12. */
static void rr_head(struct pkt *p, unsigned type, unsigned rdlen)
{
    put16(p, 0xc00c);
    put16(p, type);
    put16(p, 1);
    put32(p, 300);
    put16(p, rdlen);
}

static void rr_a(struct pkt *p, const char *ip)
{
    struct in_addr a;

    assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
    rr_head(p, DNS_TYPE_A, 4);
    memcpy(p->b + p->n, &a, 4);
    p->n += 4;
}

static void rr_mx(struct pkt *p, unsigned pref, const char *host)
{
    size_t at;

    rr_head(p, DNS_TYPE_MX, 0);
    at = p->n - 2;
    put16(p, pref);
    put_name(p, host);
    p->b[at] = (unsigned char) ((p->n - at - 2) >> 8);
    p->b[at + 1] = (unsigned char) ((p->n - at - 2) & 0xff);
}

static enum dns_status parse(const struct pkt *p, int type, struct dns_rr *rr, int max,
                             int *count)
{
    struct strbuf why;
    enum dns_status st;
    unsigned char *copy = malloc(p->n ? p->n : 1);

    /* An exact-size copy, so a read past the end shows under the sanitizer. */
    memcpy(copy, p->b, p->n);
    strbuf_init(&why, 64, 1024);
    st = dns_reply_parse(copy, p->n, type, rr, max, count, &why);
    if (st != DNS_OK)
        assert_true(why.len > 0);
    strbuf_release(&why);
    free(copy);
    return st;
}

/* --- parser ---------------------------------------------------------------- */

static void test_a_records(void **state)
{
    struct pkt p;
    struct dns_rr rr[4];
    char buf[64];
    int n;

    header(&p, 0, 1, 2);
    question(&p, "mx1.example.test", DNS_TYPE_A);
    rr_a(&p, "127.0.0.2");
    rr_a(&p, "192.0.2.7");
    assert_int_equal(parse(&p, DNS_TYPE_A, rr, 4, &n), DNS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(dns_addr_str(&rr[0], buf, sizeof(buf)), "127.0.0.2");
    assert_string_equal(dns_addr_str(&rr[1], buf, sizeof(buf)), "192.0.2.7");
    assert_int_equal(rr[0].ttl, 300);
    /* Asked for AAAA, the A records are not kept. */
    assert_int_equal(parse(&p, DNS_TYPE_AAAA, rr, 4, &n), DNS_NODATA);
    assert_int_equal(n, 0);
}

static void test_aaaa_record(void **state)
{
    struct pkt p;
    struct dns_rr rr[1];
    struct in6_addr a;
    char buf[64];
    int n;

    header(&p, 0, 1, 1);
    question(&p, "v6.example.test", DNS_TYPE_AAAA);
    rr_head(&p, DNS_TYPE_AAAA, 16);
    inet_pton(AF_INET6, "2001:db8::25", &a);
    memcpy(p.b + p.n, &a, 16);
    p.n += 16;
    assert_int_equal(parse(&p, DNS_TYPE_AAAA, rr, 1, &n), DNS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(dns_addr_str(&rr[0], buf, sizeof(buf)), "2001:db8::25");
    /* A wrong rdata length is malformed. */
    p.b[p.n - 17] = 15;
    p.n--;
    assert_int_equal(parse(&p, DNS_TYPE_AAAA, rr, 1, &n), DNS_FAIL);
}

static void test_mx_compressed_and_case(void **state)
{
    struct pkt p;
    struct dns_rr rr[4];
    size_t at;
    int n;

    header(&p, 0, 1, 2);
    question(&p, "example.test", DNS_TYPE_MX);
    rr_mx(&p, 20, "MX2.Example.Test");
    /* mx1 + pointer to "example.test" at offset 12. */
    rr_head(&p, DNS_TYPE_MX, 0);
    at = p.n - 2;
    put16(&p, 10);
    put8(&p, 3);
    memcpy(p.b + p.n, "mx1", 3);
    p.n += 3;
    put16(&p, 0xc00c);
    p.b[at + 1] = (unsigned char) (p.n - at - 2);
    assert_int_equal(parse(&p, DNS_TYPE_MX, rr, 4, &n), DNS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rr[0].pref, 20);
    assert_string_equal(rr[0].name, "mx2.example.test");
    assert_int_equal(rr[1].pref, 10);
    assert_string_equal(rr[1].name, "mx1.example.test");
    assert_false(dns_mx_is_null(rr, n));
}

static void test_null_mx(void **state)
{
    struct pkt p;
    struct dns_rr rr[2];
    int n;

    header(&p, 0, 1, 1);
    question(&p, "nullmx.test", DNS_TYPE_MX);
    rr_mx(&p, 0, "");
    assert_int_equal(parse(&p, DNS_TYPE_MX, rr, 2, &n), DNS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rr[0].name, "");
    assert_true(dns_mx_is_null(rr, n));
}

static void test_rcodes(void **state)
{
    struct pkt p;
    struct dns_rr rr[1];
    int n;

    header(&p, 3, 1, 0);
    question(&p, "nx.test", DNS_TYPE_MX);
    assert_int_equal(parse(&p, DNS_TYPE_MX, rr, 1, &n), DNS_NOTFOUND);
    header(&p, 2, 1, 0);
    question(&p, "fail.test", DNS_TYPE_MX);
    assert_int_equal(parse(&p, DNS_TYPE_MX, rr, 1, &n), DNS_RETRY);
    header(&p, 5, 1, 0);
    question(&p, "refused.test", DNS_TYPE_MX);
    assert_int_equal(parse(&p, DNS_TYPE_MX, rr, 1, &n), DNS_RETRY);
    header(&p, 0, 1, 0);
    question(&p, "empty.test", DNS_TYPE_MX);
    assert_int_equal(parse(&p, DNS_TYPE_MX, rr, 1, &n), DNS_NODATA);
    /* A query (QR clear) is not a reply. */
    p.b[2] &= 0x7f;
    assert_int_equal(parse(&p, DNS_TYPE_MX, rr, 1, &n), DNS_FAIL);
    /* Shorter than a header. */
    p.n = 11;
    assert_int_equal(parse(&p, DNS_TYPE_MX, rr, 1, &n), DNS_FAIL);
}

static void test_cname_then_a(void **state)
{
    struct pkt p;
    struct dns_rr rr[2];
    size_t at;
    int n;

    header(&p, 0, 1, 2);
    question(&p, "alias.test", DNS_TYPE_A);
    rr_head(&p, DNS_TYPE_CNAME, 0);
    at = p.n - 2;
    put_name(&p, "real.test");
    p.b[at + 1] = (unsigned char) (p.n - at - 2);
    rr_a(&p, "127.0.0.9");
    assert_int_equal(parse(&p, DNS_TYPE_A, rr, 2, &n), DNS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rr[0].type, DNS_TYPE_A);
}

static void test_record_limit(void **state)
{
    struct pkt p;
    struct dns_rr rr[3];
    int i, n;

    header(&p, 0, 1, 10);
    question(&p, "many.test", DNS_TYPE_A);
    for (i = 0; i < 10; i++) {
        char ip[32];

        snprintf(ip, sizeof(ip), "10.0.0.%d", i);
        rr_a(&p, ip);
    }
    assert_int_equal(parse(&p, DNS_TYPE_A, rr, 3, &n), DNS_OK);
    assert_int_equal(n, 3);
}

/* Every proper prefix of a valid reply is refused or read as fewer records,
 * never read past its end (the sanitizer build checks the last part). */
static void test_every_truncation(void **state)
{
    struct pkt p, cut;
    struct dns_rr rr[4];
    size_t len;
    int n;

    header(&p, 0, 1, 2);
    question(&p, "example.test", DNS_TYPE_MX);
    rr_mx(&p, 10, "mx1.example.test");
    rr_mx(&p, 20, "mx2.example.test");
    for (len = 0; len < p.n; len++) {
        enum dns_status st;

        memcpy(cut.b, p.b, len);
        cut.n = len;
        st = parse(&cut, DNS_TYPE_MX, rr, 4, &n);
        assert_true(st == DNS_FAIL || (st == DNS_OK && n < 2));
        assert_true(n <= 2);
    }
    assert_int_equal(parse(&p, DNS_TYPE_MX, rr, 4, &n), DNS_OK);
    assert_int_equal(n, 2);
}

static void test_pointer_loop_and_long_name(void **state)
{
    struct pkt p;
    struct dns_rr rr[1];
    size_t at;
    int n, i;

    /* The MX exchange points at itself. */
    header(&p, 0, 1, 1);
    question(&p, "loop.test", DNS_TYPE_MX);
    rr_head(&p, DNS_TYPE_MX, 4);
    put16(&p, 10);
    at = p.n;
    put16(&p, 0xc000 | (unsigned) at);
    assert_int_equal(parse(&p, DNS_TYPE_MX, rr, 1, &n), DNS_FAIL);

    /* An exchange of 5 x 63-byte labels is longer than 255 bytes. */
    header(&p, 0, 1, 1);
    question(&p, "long.test", DNS_TYPE_MX);
    rr_head(&p, DNS_TYPE_MX, 2 + 5 * 64 + 1);
    put16(&p, 10);
    for (i = 0; i < 5; i++) {
        put8(&p, 63);
        memset(p.b + p.n, 'a', 63);
        p.n += 63;
    }
    put8(&p, 0);
    assert_int_equal(parse(&p, DNS_TYPE_MX, rr, 1, &n), DNS_FAIL);

    /* A dot inside a label cannot be a host name. */
    header(&p, 0, 1, 1);
    question(&p, "dot.test", DNS_TYPE_MX);
    rr_head(&p, DNS_TYPE_MX, 2 + 5);
    put16(&p, 10);
    put8(&p, 3);
    memcpy(p.b + p.n, "a.b", 3);
    p.n += 3;
    put8(&p, 0);
    assert_int_equal(parse(&p, DNS_TYPE_MX, rr, 1, &n), DNS_FAIL);
}

/* --- sorting --------------------------------------------------------------- */

static void test_mx_sort(void **state)
{
    struct dns_rr rr[5];
    int seen_a_first = 0, seen_b_first = 0, round, i;

    for (round = 0; round < 200; round++) {
        static const unsigned prefs[5] = {30, 10, 20, 10, 5};
        static const char *names[5] = {"e", "a", "d", "b", "z"};

        memset(rr, 0, sizeof(rr));
        for (i = 0; i < 5; i++) {
            rr[i].type = DNS_TYPE_MX;
            rr[i].pref = prefs[i];
            strcpy(rr[i].name, names[i]);
        }
        dns_mx_sort(rr, 5);
        for (i = 1; i < 5; i++)
            assert_true(rr[i - 1].pref <= rr[i].pref);
        assert_string_equal(rr[0].name, "z");
        assert_string_equal(rr[3].name, "d");
        assert_string_equal(rr[4].name, "e");
        if (strcmp(rr[1].name, "a") == 0)
            seen_a_first++;
        else
            seen_b_first++;
    }
    /* Equal preferences come out in both orders (chance of failure 2^-199). */
    assert_true(seen_a_first > 0 && seen_b_first > 0);
}

/* --- real queries to a forked responder ------------------------------------ */

/* Answers every query with rcode, copying its ID and question, plus one A
 * record when rcode is 0. Exits after max queries or 10 s. */
static pid_t responder(int *port, unsigned rcode, int max)
{
    struct sockaddr_in sin = {0};
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    pid_t pid;

    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &sin, &sl), 0);
    *port = ntohs(sin.sin_port);
    if ((pid = fork()) == 0) {
        int i;

        alarm(10);
        for (i = 0; i < max; i++) {
            unsigned char q[512], a[600];
            struct sockaddr_in from;
            socklen_t fl = sizeof(from);
            ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *) &from, &fl);
            size_t len;

            if (n < 12)
                continue;
            memcpy(a, q, (size_t) n);
            a[2] = 0x81;
            a[3] = (unsigned char) (0x80 | rcode);
            a[6] = 0;
            a[7] = rcode == 0;
            a[8] = a[9] = a[10] = a[11] = 0;
            len = (size_t) n;
            if (rcode == 0) {
                static const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c,
                    0, 4, 127, 0, 0, 42};
                memcpy(a + len, rr, sizeof(rr));
                len += sizeof(rr);
            }
            (void) sendto(fd, a, len, 0, (struct sockaddr *) &from, fl);
        }
        _exit(0);
    }
    close(fd);
    return pid;
}

static void reap(pid_t pid)
{
    int st;

    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
}

static void test_lookup_via_dns_servers(void **state)
{
    struct dns_resolver *r;
    struct dns_rr rr[2];
    struct strbuf why;
    char servers[64], buf[64];
    int port, n;
    pid_t pid = responder(&port, 0, 4);

    strbuf_init(&why, 64, 1024);
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
    assert_non_null(r = dns_open(servers, 1, 1, &why));
    assert_int_equal(dns_lookup(r, "host.example.test", DNS_TYPE_A, rr, 2, &n, &why), DNS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(dns_addr_str(&rr[0], buf, sizeof(buf)), "127.0.0.42");
    dns_close(&r);
    assert_null(r);
    reap(pid);

    pid = responder(&port, 2, 8);
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
    assert_non_null(r = dns_open(servers, 1, 1, &why));
    assert_int_equal(dns_lookup(r, "fail.example.test", DNS_TYPE_MX, rr, 2, &n, &why),
                     DNS_RETRY);
    dns_close(&r);
    reap(pid);

    pid = responder(&port, 3, 8);
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
    assert_non_null(r = dns_open(servers, 1, 1, &why));
    assert_int_equal(dns_lookup(r, "nx.example.test", DNS_TYPE_MX, rr, 2, &n, &why),
                     DNS_NOTFOUND);
    dns_close(&r);
    reap(pid);
    strbuf_release(&why);
}

static void test_lookup_nobody_listening(void **state)
{
    struct dns_resolver *r;
    struct dns_rr rr[1];
    struct strbuf why;
    char servers[64];
    int port, n;
    pid_t pid = responder(&port, 0, 0);     /* exits at once: the port is closed */

    reap(pid);
    strbuf_init(&why, 64, 1024);
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
    assert_non_null(r = dns_open(servers, 1, 1, &why));
    assert_int_equal(dns_lookup(r, "x.example.test", DNS_TYPE_A, rr, 1, &n, &why), DNS_RETRY);
    assert_int_equal(n, 0);
    dns_close(&r);
    /* A list without any usable server is refused. */
    assert_null(dns_open("::1 not-an-ip 127.0.0.1:0", 1, 1, &why));
    dns_close(&r);
    strbuf_release(&why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_records),
        cmocka_unit_test(test_aaaa_record),
        cmocka_unit_test(test_mx_compressed_and_case),
        cmocka_unit_test(test_null_mx),
        cmocka_unit_test(test_rcodes),
        cmocka_unit_test(test_cname_then_a),
        cmocka_unit_test(test_record_limit),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_pointer_loop_and_long_name),
        cmocka_unit_test(test_mx_sort),
        cmocka_unit_test(test_lookup_via_dns_servers),
        cmocka_unit_test(test_lookup_nobody_listening),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
