/*
 * qfile-dump.c - prints a queue file as one JSON object, for the integration
 * tests: {"flags": N, "records": [["A", "name=value"], ...], "content": "..."}.
 * Record data and content are written with every byte outside printable ASCII
 * (and '"', '\\') as \u00XX, so a reader gets the exact bytes back by encoding
 * the decoded string as Latin-1. The content record appears in "records" as
 * ["M", ""] at its place.
 * Usage: qfile-dump FILE. Reads only; never changes the file. A malformed file
 * prints the reader's reason on stderr and exits 1; a usage error exits 2.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "msg.h"
#include "qfile.h"
#include "strbuf.h"

static void dump_bytes(const char *data, size_t len)
{
    size_t i;

    putchar('"');
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) data[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            putchar(c);
        else
            printf("\\u%04x", c);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    struct qfile_reader *r;
    struct qfile_record rec;
    struct strbuf why, content;
    char buf[8192];
    ssize_t n;
    int rc, first = 1;

    msg_init("qfile-dump");
    if (argc != 2) {
        fprintf(stderr, "usage: qfile-dump FILE\n");
        return 2;
    }
    strbuf_init(&why, 128, 4096);
    strbuf_init(&content, 8192, STRBUF_UNLIMITED);
    if ((r = qfile_open(AT_FDCWD, argv[1], O_RDONLY, &why)) == NULL) {
        fprintf(stderr, "qfile-dump: %s: %s\n", argv[1], why.data);
        return 1;
    }
    printf("{\"flags\": %u, \"records\": [", qfile_flags(r));
    while ((rc = qfile_next(r, &rec)) > 0) {
        char type[2] = {(char) rec.type, 0};

        printf("%s[\"%s\", ", first ? "" : ", ", type);
        first = 0;
        if (rec.type == QREC_CONTENT) {
            while ((n = qfile_content_read(r, buf, sizeof(buf))) > 0)
                (void) strbuf_append(&content, buf, (size_t) n);
            if (n < 0) {
                fprintf(stderr, "qfile-dump: %s: content: %s\n", argv[1], qfile_reason(r));
                return 1;
            }
            dump_bytes("", 0);
        } else {
            dump_bytes(rec.data, rec.len);
        }
        putchar(']');
    }
    if (rc < 0) {
        fprintf(stderr, "qfile-dump: %s: %s\n", argv[1], qfile_reason(r));
        return 1;
    }
    printf("], \"content\": ");
    dump_bytes(content.data, content.len);
    printf("}\n");
    qfile_close(&r);
    strbuf_release(&why);
    strbuf_release(&content);
    return 0;
}
