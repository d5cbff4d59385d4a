/*
 * qid.c - queue IDs: base-52 time and inode number (format in qid.h).
 * Parsing is strict and canonical (no leading zeros in the inode part, no
 * microseconds >= 10^6, no overflow), so that one message has exactly one
 * possible name and a file name that is not a queue ID (a temporary file,
 * an editor's backup) is never mistaken for one. Must never read past the
 * end of its input; fails by returning -1 or 0, never by aborting.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "qid.h"

#define QID_BASE 52
#define QID_SEC_LEN 6
#define QID_USEC_LEN 4
#define QID_SEC_LIMIT INT64_C(19770609664)      /* 52^6 */

const char qid_alphabet[] = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";

/* Value of one digit, or -1. */
static int qid_digit(int c)
{
    const char *p;

    if (c == '\0' || (p = memchr(qid_alphabet, c, QID_BASE)) == 0)
        return -1;
    return (int) (p - qid_alphabet);
}

/* Writes value as exactly width digits (it must fit). */
static void qid_put_fixed(char *out, uint64_t value, int width)
{
    while (width-- > 0) {
        out[width] = qid_alphabet[value % QID_BASE];
        value /= QID_BASE;
    }
}

/* Decodes len digits; -1 on a bad digit or on overflow of 64 bits. */
static int qid_get(const char *in, size_t len, uint64_t *value)
{
    uint64_t v = 0;
    size_t i;
    int d;

    for (i = 0; i < len; i++) {
        if ((d = qid_digit((unsigned char) in[i])) < 0)
            return -1;
        if (v > (UINT64_MAX - (uint64_t) d) / QID_BASE)
            return -1;
        v = v * QID_BASE + (uint64_t) d;
    }
    *value = v;
    return 0;
}

int qid_format(char buf[QID_BUFSIZE], const struct timeval *tv, ino_t ino)
{
    char rev[QID_INODE_MAX_LEN];
    uint64_t v = (uint64_t) ino;
    int n = 0, i;

    if (tv->tv_sec < 0 || (int64_t) tv->tv_sec >= QID_SEC_LIMIT
        || tv->tv_usec < 0 || tv->tv_usec >= 1000000) {
        errno = ERANGE;
        return -1;
    }
    qid_put_fixed(buf, (uint64_t) tv->tv_sec, QID_SEC_LEN);
    qid_put_fixed(buf + QID_SEC_LEN, (uint64_t) tv->tv_usec, QID_USEC_LEN);
    do {
        rev[n++] = qid_alphabet[v % QID_BASE];
        v /= QID_BASE;
    } while (v > 0);
    for (i = 0; i < n; i++)
        buf[QID_TIME_LEN + i] = rev[n - 1 - i];
    buf[QID_TIME_LEN + n] = '\0';
    return QID_TIME_LEN + n;
}

/* Splits a canonical ID into its three numbers; 0 or -1. */
static int qid_parse(const char *str, uint64_t *sec, uint64_t *usec, uint64_t *ino)
{
    size_t len = strnlen(str, QID_MAX_LEN + 1);
    size_t ino_len = len - QID_TIME_LEN;

    if (len <= QID_TIME_LEN || len > QID_MAX_LEN)
        return -1;
    if (qid_get(str, QID_SEC_LEN, sec) < 0
        || qid_get(str + QID_SEC_LEN, QID_USEC_LEN, usec) < 0 || *usec >= 1000000)
        return -1;
    if (ino_len > 1 && str[QID_TIME_LEN] == '0')
        return -1;
    if (qid_get(str + QID_TIME_LEN, ino_len, ino) < 0 || *ino > (uint64_t) (ino_t) -1)
        return -1;
    return 0;
}

int qid_valid(const char *str)
{
    uint64_t sec, usec, ino;

    return qid_parse(str, &sec, &usec, &ino) == 0;
}

int qid_time(const char *str, struct timeval *tv)
{
    uint64_t sec, usec, ino;

    if (qid_parse(str, &sec, &usec, &ino) < 0)
        return -1;
    tv->tv_sec = (time_t) sec;
    tv->tv_usec = (suseconds_t) usec;
    return 0;
}

int qid_inode(const char *str, ino_t *inop)
{
    uint64_t sec, usec, ino;

    if (qid_parse(str, &sec, &usec, &ino) < 0)
        return -1;
    *inop = (ino_t) ino;
    return 0;
}
