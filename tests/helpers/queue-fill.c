/*
 * queue-fill.c - writes valid queue files fast, for the queue listing
 * benchmark (bench/queue-list) and the queue tests: COUNT complete files in
 * one queue, made by the real queue file writer (util/qfile.c), with chosen
 * arrival times, senders, recipients and content size.
 *
 * Usage: queue-fill [-d depth] [-a arrival] [-s spread] [-S sender] [-b bytes]
 *            [-u uid] [-g gid] QUEUE_DIR QUEUE_NAME COUNT RECIPIENT...
 *   -a  arrival time of the first file (seconds since the epoch; default now)
 *   -s  arrival times step back by spread/COUNT seconds per file (default 0)
 *   -S  sender (default "sender@example.net"; "" for the null sender)
 *   -b  body bytes (default 512)
 *   -u/-g  chown each file (root: make them mail_owner's)
 * Recipient "%d" in an address becomes the file number (spread over domains).
 * Prints nothing on success; exits 1 with a message on any error. Test-only:
 * never installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"
#include "qfile.h"
#include "strbuf.h"

static void fill_expand(struct strbuf *out, const char *pattern, long i)
{
    const char *p;

    strbuf_reset(out);
    for (p = pattern; *p; p++) {
        if (p[0] == '%' && p[1] == 'd') {
            strbuf_printf(out, "%ld", i);
            p++;
        } else {
            strbuf_putc(out, *p);
        }
    }
}

int main(int argc, char **argv)
{
    long long arrival = (long long) time(NULL), spread = 0;
    const char *sender = "sender@example.net";
    long count, i, body = 512, uid = -1, gid = -1;
    int depth = 0, ch, j, qfd;
    struct strbuf why, addr, content;
    struct qfile_writer *w;
    char tbuf[64];

    msg_init("queue-fill");
    while ((ch = getopt(argc, argv, "a:b:d:g:s:S:u:")) != -1) {
        switch (ch) {
        case 'a': arrival = atoll(optarg); break;
        case 'b': body = atol(optarg); break;
        case 'd': depth = atoi(optarg); break;
        case 'g': gid = atol(optarg); break;
        case 's': spread = atoll(optarg); break;
        case 'S': sender = optarg; break;
        case 'u': uid = atol(optarg); break;
        default: msg_fatal("bad option");
        }
    }
    if (argc - optind < 4)
        msg_fatal("usage: queue-fill [options] QUEUE_DIR QUEUE_NAME COUNT RECIPIENT...");
    if ((qfd = open(argv[optind], O_RDONLY | O_DIRECTORY)) < 0)
        msg_fatal("open %s: %m", argv[optind]);
    count = atol(argv[optind + 2]);
    strbuf_init(&why, 128, 4096);
    strbuf_init(&addr, 64, 4096);
    strbuf_init(&content, 1024, STRBUF_UNLIMITED);
    for (i = 0; i < count; i++) {
        long long t = arrival - (count > 0 ? spread * i / count : 0);

        if ((w = qfile_create(qfd, argv[optind + 1], depth, &why)) == NULL)
            msg_fatal("create: %s", why.data);
        snprintf(tbuf, sizeof(tbuf), "%lld.%06ld", t, i % 1000000);
        qfile_put_str(w, QREC_TIME, tbuf);
        qfile_put_attr(w, "rewrite_context", "remote");
        qfile_put_str(w, QREC_SENDER, sender);
        for (j = optind + 3; j < argc; j++) {
            fill_expand(&addr, argv[j], i);
            qfile_put_str(w, QREC_RCPT, addr.data);
        }
        strbuf_reset(&content);
        fill_expand(&addr, argv[optind + 3], i);
        strbuf_printf(&content, "From: <%s>\nTo: <%s>\nSubject: queue fill %ld\n\n", sender,
                      addr.data, i);
        while ((long) content.len < body)
            strbuf_puts(&content, "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijkl\n");
        qfile_content_begin(w);
        qfile_content_write(w, content.data, content.len);
        qfile_content_end(w);
        if (uid >= 0 && fchown(qfile_writer_fd(w), (uid_t) uid, (gid_t) gid) < 0)
            msg_fatal("chown: %m");
        if (qfile_commit(w, 0, &why) < 0)
            msg_fatal("commit: %s", why.data);
        qfile_writer_free(&w);
    }
    strbuf_release(&why);
    strbuf_release(&addr);
    strbuf_release(&content);
    close(qfd);
    return 0;
}
