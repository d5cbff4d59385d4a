/*
 * cleanup-submit.c - test client of the cleanup service, and a queue file dumper.
 *
 * Submitting (through util/cleanup_client.h, as smtpd and pickup do):
 *   cleanup-submit [options] SOCKET [RECIPIENT ...] < content
 *     -f SENDER     envelope sender (default: empty, "<>")
 *     -a NAME=VALUE envelope attribute (repeatable)
 *     -o ORCPT      DSN ORCPT of the recipients that follow on the command line
 *     -n NOTIFY     DSN NOTIFY bits of the recipients that follow
 *     -F LETTERS    flags: L local submit, T extract recipients, B remove Bcc,
 *                   H hold, D discard, N no alias, 8 8BITMIME
 *     -c BYTES      size of each cleanup_write call (default 1000; every split is legal)
 *     -k COUNT      send the message COUNT times over one connection
 *     -A            abort after the content instead of finishing
 *     -t MS         timeout (default 10000)
 *   For each message prints "queue_id=ID" once open, then
 *   "status=ok|reject|defer held=0|1 discarded=0|1 reply=TEXT".
 *   Exit: 0 all accepted, 1 some rejected or deferred, 2 connection failure, 64 usage.
 *
 * Dumping: cleanup-submit -d FILE prints every record of a queue file as
 *   "TYPE LENGTH\n" followed by LENGTH bytes and "\n" (content included), or
 *   "malformed: REASON" and exit 1. The test reads it without a second parser.
 * Never installed; reads at most 64 MiB of content.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup_client.h"
#include "qfile.h"
#include "strbuf.h"

#define SUBMIT_CONTENT_MAX (64 * 1024 * 1024)

static int submit_dump(const char *path)
{
    struct strbuf why;
    struct qfile_reader *r;
    struct qfile_record rec;
    char buf[65536];
    int n;

    strbuf_init(&why, 128, 0);
    if ((r = qfile_open(AT_FDCWD, path, 0, &why)) == NULL) {
        printf("malformed: %s\n", why.data);
        return 1;
    }
    while ((n = qfile_next(r, &rec)) == 1) {
        printf("%c %zu\n", rec.type, rec.len);
        if (rec.type == QREC_CONTENT) {
            size_t left = rec.len;

            while (left > 0) {
                ssize_t got = qfile_content_read(r, buf, left < sizeof(buf) ? left : sizeof(buf));

                if (got <= 0) {
                    printf("\nmalformed: short content\n");
                    return 1;
                }
                fwrite(buf, 1, (size_t) got, stdout);
                left -= (size_t) got;
            }
        } else {
            fwrite(rec.data, 1, rec.len, stdout);
        }
        putchar('\n');
    }
    if (n < 0) {
        printf("malformed: %s\n", qfile_reason(r));
        return 1;
    }
    printf("E 0\n\n");
    qfile_close(&r);
    strbuf_release(&why);
    return 0;
}

static int submit_flags(const char *letters)
{
    int flags = 0;

    for (; *letters; letters++) {
        switch (*letters) {
        case 'L': flags |= CLEANUP_FLAG_LOCAL_SUBMIT; break;
        case 'T': flags |= CLEANUP_FLAG_EXTRACT_RCPT; break;
        case 'B': flags |= CLEANUP_FLAG_REMOVE_BCC; break;
        case 'H': flags |= CLEANUP_FLAG_HOLD; break;
        case 'D': flags |= CLEANUP_FLAG_DISCARD; break;
        case 'N': flags |= CLEANUP_FLAG_NO_ALIAS; break;
        case '8': flags |= CLEANUP_FLAG_8BITMIME; break;
        default:
            fprintf(stderr, "unknown flag letter %c\n", *letters);
            exit(64);
        }
    }
    return flags;
}

struct submit_rcpt {
    const char *addr, *orcpt;
    int notify;
};

static void usage(void)
{
    fprintf(stderr, "usage: cleanup-submit [-f sender] [-a name=value] [-F flags] [-c bytes] "
            "[-k count] [-A] [-t ms] socket [[-o orcpt] [-n notify] rcpt ...]\n"
            "       cleanup-submit -d queue-file\n");
    exit(64);
}

int main(int argc, char **argv)
{
    const char *sender = "", *attrs[64], *socket_path, *orcpt = NULL;
    struct submit_rcpt rcpts[256];
    size_t nattrs = 0, nrcpt = 0, chunk = 1000, i;
    int flags = 0, count = 1, do_abort = 0, timeout = 10000, notify = 0, failures = 0, k;
    struct strbuf content, why;
    struct cleanup_client *c;
    char buf[65536];
    ssize_t n;
    int opt;

    if (argc == 3 && strcmp(argv[1], "-d") == 0)
        return submit_dump(argv[2]);
    while ((opt = getopt(argc, argv, "+f:a:F:c:k:At:")) != -1) {
        switch (opt) {
        case 'f': sender = optarg; break;
        case 'a':
            if (nattrs == sizeof(attrs) / sizeof(attrs[0]) || strchr(optarg, '=') == NULL)
                usage();
            attrs[nattrs++] = optarg;
            break;
        case 'F': flags = submit_flags(optarg); break;
        case 'c': chunk = strtoul(optarg, NULL, 10); break;
        case 'k': count = atoi(optarg); break;
        case 'A': do_abort = 1; break;
        case 't': timeout = atoi(optarg); break;
        default: usage();
        }
    }
    if (optind >= argc || chunk == 0 || count < 1 || timeout <= 0)
        usage();
    socket_path = argv[optind++];
    /* Recipients, each with the -o/-n options given before it. */
    while (optind < argc) {
        if (strcmp(argv[optind], "-o") == 0 && optind + 1 < argc) {
            orcpt = argv[optind + 1];
            optind += 2;
        } else if (strcmp(argv[optind], "-n") == 0 && optind + 1 < argc) {
            notify = atoi(argv[optind + 1]);
            optind += 2;
        } else {
            if (nrcpt == sizeof(rcpts) / sizeof(rcpts[0]))
                usage();
            rcpts[nrcpt++] = (struct submit_rcpt) {argv[optind++], orcpt, notify};
        }
    }
    strbuf_init(&content, 65536, SUBMIT_CONTENT_MAX);
    while ((n = read(0, buf, sizeof(buf))) > 0)
        if (strbuf_append(&content, buf, (size_t) n) < 0) {
            fprintf(stderr, "content too large\n");
            return 64;
        }
    strbuf_init(&why, 128, 0);
    if ((c = cleanup_connect(socket_path, timeout, &why)) == NULL) {
        printf("connect: %s\n", why.data);
        return 2;
    }
    for (k = 0; k < count; k++) {
        struct cleanup_result res;
        size_t off;

        strbuf_reset(&why);
        if (cleanup_open(c, flags, &why) < 0) {
            printf("status=defer held=0 discarded=0 reply=%s\n", why.data);
            failures++;
            continue;
        }
        printf("queue_id=%s\n", cleanup_queue_id(c));
        fflush(stdout);
        for (i = 0; i < nattrs; i++) {
            char name[128];
            const char *eq = strchr(attrs[i], '=');

            snprintf(name, sizeof(name), "%.*s", (int) (eq - attrs[i]), attrs[i]);
            if (cleanup_attr(c, name, eq + 1) < 0)
                fprintf(stderr, "cleanup_attr %s: %s\n", name, strerror(errno));
        }
        cleanup_sender(c, sender);
        for (i = 0; i < nrcpt; i++)
            cleanup_recipient(c, rcpts[i].addr, rcpts[i].orcpt, rcpts[i].notify);
        for (off = 0; off < content.len; off += chunk)
            cleanup_write(c, content.data + off,
                          content.len - off < chunk ? content.len - off : chunk);
        if (do_abort) {
            cleanup_abort(c);
            printf("aborted\n");
            continue;
        }
        if (cleanup_finish(c, &res) < 0) {
            printf("status=defer held=0 discarded=0 reply=%s\n", res.reply);
            cleanup_disconnect(&c);
            return 2;
        }
        printf("status=%s held=%d discarded=%d reply=%s\n",
               res.status == CLEANUP_OK ? "ok" : res.status == CLEANUP_REJECT ? "reject"
               : "defer", res.held, res.discarded, res.reply);
        fflush(stdout);
        if (res.status != CLEANUP_OK)
            failures++;
    }
    cleanup_disconnect(&c);
    strbuf_release(&content);
    strbuf_release(&why);
    return failures ? 1 : 0;
}
