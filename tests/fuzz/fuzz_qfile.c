/*
 * fuzz_qfile.c - libFuzzer target for the queue file reader (util/qfile.c).
 * The input is a whole file, put into a memfd and read with
 * qfile_reader_fdopen: every record, the content in pieces whose size the
 * first input byte picks. A well-formed file must then survive marking every
 * recipient done: read again, it is still well formed, with the same records
 * and D where R was. A read past the input, a leak or a broken invariant
 * aborts the run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "qfile.h"
#include "safe_file.h"
#include "strbuf.h"

#define FUZZ_MAX_RCPT 64

/* Reads the whole file; returns 1 well formed, 0 malformed. Records R offsets. */
static int fuzz_read(int fd, size_t piece, off_t *rcpts, size_t *nrcpt, size_t *nrecords,
                     int want_done)
{
    struct strbuf why;
    struct qfile_reader *r;
    struct qfile_record rec;
    static char buf[70000];
    uint64_t content = 0;
    ssize_t n;
    int ret;

    strbuf_init(&why, 64, 1024);
    r = qfile_reader_fdopen(fd, &why);
    strbuf_release(&why);
    if (r == 0)
        return 0;
    *nrcpt = *nrecords = 0;
    while ((ret = qfile_next(r, &rec)) > 0) {
        ++*nrecords;
        if (rec.type == QREC_CONTENT) {
            if (rec.len != qfile_content_length(r))
                abort();
            while ((n = qfile_content_read(r, buf, piece)) > 0)
                content += (uint64_t) n;
            if (n == 0 && content != qfile_content_length(r))
                abort();
            continue;
        }
        if (strlen(rec.data) != rec.len)
            abort();
        if (want_done && rec.type == QREC_RCPT)
            abort();
        if ((rec.type == QREC_RCPT || rec.type == QREC_DONE) && *nrcpt < FUZZ_MAX_RCPT)
            rcpts[(*nrcpt)++] = rec.offset;
    }
    /* A well-formed file has at least its sender and content records. */
    if (ret == 0 && (strcmp(qfile_reason(r), "no error") != 0 || *nrecords < 2))
        abort();
    qfile_close(&r);
    return ret == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    off_t rcpts[FUZZ_MAX_RCPT];
    size_t nrcpt, nrecords, nrcpt2, nrecords2, k, piece;
    int fd;

    piece = size ? (size_t) data[0] * 37 + 1 : 1;
    if ((fd = memfd_create("fuzz_qfile", MFD_CLOEXEC)) < 0)
        abort();
    if (safe_file_write_all(fd, data, size) < 0)
        abort();
    if (fuzz_read(fd, piece, rcpts, &nrcpt, &nrecords, 0)) {
        for (k = 0; k < nrcpt; k++)
            if (qfile_mark_done(fd, rcpts[k]) < 0)
                abort();
        if (nrcpt < FUZZ_MAX_RCPT) {
            if (!fuzz_read(fd, piece, rcpts, &nrcpt2, &nrecords2, 1)
                || nrcpt2 != nrcpt || nrecords2 != nrecords)
                abort();
        }
    }
    close(fd);
    return 0;
}
