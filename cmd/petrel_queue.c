/*
 * petrel_queue.c - "petrel queue list | show | delete | hold | release |
 * requeue | bounce | shape": queue inspection and control (petrel-queue(1)).
 * This file parses the options shared by every action (the filters), lists
 * the queue and shows one message; the actions are in petrel_queue_act.c and
 * the age table in petrel_queue_shape.c.
 *
 * list reads the queue directly when the caller may (root, mail_owner) and
 * otherwise asks the showq service, so its output is the same for everyone.
 * show decodes a queue file record by record like postcat; a corrupt file
 * prints what could be read, then an error, and exits 1. Nothing here writes to
 * the queue. Usage errors exit 64 (EX_USAGE).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "petrel.h"
#include "petrel_queue.h"
#include "qfile.h"
#include "qid.h"
#include "queue_list.h"
#include "queue_path.h"
#include "safe_file.h"
#include "showq_client.h"
#include "strbuf.h"

#define QUEUE_SHOWQ_TIMEOUT_MS  (60 * 1000)

static void queue_usage(FILE *fp)
{
    fprintf(fp,
            "usage: petrel [-c config_dir] queue list [--json] [FILTERS]\n"
            "       petrel [-c config_dir] queue show [--envelope] [--headers] [--body] ID\n"
            "       petrel [-c config_dir] queue delete|hold|release|requeue|bounce [FILTERS]"
            " ID...|ALL|-\n"
            "       petrel [-c config_dir] queue shape [incoming|active|deferred|hold]"
            " [--by recipient|sender] [--buckets N] [--json] [FILTERS]\n"
            "FILTERS: --from ADDR|DOMAIN --to ADDR|DOMAIN --queue NAME --older-than DURATION"
            " --reason REGEX\n");
}

int petrel_queue_open_dir(void)
{
    int qfd;

    if ((qfd = open(var_queue_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        msg_error("cannot open the queue directory %s: %m", var_queue_directory);
        return -1;
    }
    if (fchdir(qfd) < 0) {
        msg_error("cannot change to the queue directory %s: %m", var_queue_directory);
        close(qfd);
        return -1;
    }
    return qfd;
}

struct queue_locate {
    int queue;
    char *path;
    size_t pathlen;
    int found;
};

static int queue_locate_one(const struct queue_msg *m, void *ctx)
{
    struct queue_locate *l = ctx;

    l->queue = m->queue;
    snprintf(l->path, l->pathlen, "%s", m->path);
    l->found = 1;
    return 1;
}

int petrel_queue_locate(int qfd, const char *qid, int *queue, char *path, size_t pathlen)
{
    struct queue_filter *f = queue_filter_new();
    struct queue_locate l = {0, path, pathlen, 0};
    struct strbuf why;

    strbuf_init(&why, 64, 4096);
    if (queue_filter_add(f, "id", qid, &why) == 0)
        (void) queue_list_scan_flags(qfd, f, queue_locate_one, &l, NULL, QUEUE_LIST_NO_REASONS,
                                     &why);
    queue_filter_free(&f);
    strbuf_release(&why);
    if (l.found)
        *queue = l.queue;
    return l.found;
}

/* --- Options --------------------------------------------------------------- */

enum {
    OPT_FROM = 256, OPT_TO, OPT_QUEUE, OPT_OLDER, OPT_REASON, OPT_JSON, OPT_ENVELOPE,
    OPT_HEADERS, OPT_BODY, OPT_BY, OPT_BUCKETS, OPT_BUCKET_TIME,
};

static const struct option queue_longopts[] = {
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"queue", required_argument, NULL, OPT_QUEUE},
    {"older-than", required_argument, NULL, OPT_OLDER},
    {"reason", required_argument, NULL, OPT_REASON},
    {"json", no_argument, NULL, OPT_JSON},
    {"envelope", no_argument, NULL, OPT_ENVELOPE},
    {"headers", no_argument, NULL, OPT_HEADERS},
    {"body", no_argument, NULL, OPT_BODY},
    {"by", required_argument, NULL, OPT_BY},
    {"buckets", required_argument, NULL, OPT_BUCKETS},
    {"bucket-time", required_argument, NULL, OPT_BUCKET_TIME},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int queue_add_filter(struct queue_opts *o, const char *name, const char *value)
{
    struct strbuf why;
    size_t len = strlen(name) + strlen(value) + 2;

    strbuf_init(&why, 128, 4096);
    if (queue_filter_add(o->filter, name, value, &why) < 0) {
        msg_error("--%s: %s", name, why.data);
        strbuf_release(&why);
        return -1;
    }
    strbuf_release(&why);
    o->filter_args = xreallocarray(o->filter_args, o->nfilter_args + 1, sizeof(char *));
    o->filter_args[o->nfilter_args] = xmalloc(len);
    snprintf(o->filter_args[o->nfilter_args++], len, "%s=%s", name, value);
    return 0;
}

static int queue_parse_int(const char *opt, const char *value, int min, int max, int *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(value, &end, 10);
    if (errno || end == value || *end || n < min || n > max) {
        msg_error("--%s: expected a number from %d to %d, not \"%.100s\"", opt, min, max, value);
        return -1;
    }
    *out = (int) n;
    return 0;
}

/* Parses argv (argv[0] is the action); 0, or EX_USAGE after a message. */
static int queue_parse(int argc, char **argv, struct queue_opts *o)
{
    int ch, rc = 0;

    o->filter = queue_filter_new();
    o->buckets = 10;
    o->bucket_minutes = 5;
    optind = 0;                 /* GNU getopt: forget petrel.c's "+" (options after operands) */
    while (rc == 0 && (ch = getopt_long(argc, argv, "h", queue_longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_FROM:
            rc = queue_add_filter(o, "from", optarg);
            break;
        case OPT_TO:
            rc = queue_add_filter(o, "to", optarg);
            break;
        case OPT_QUEUE:
            rc = queue_add_filter(o, "queue", optarg);
            break;
        case OPT_OLDER:
            rc = queue_add_filter(o, "older-than", optarg);
            break;
        case OPT_REASON:
            rc = queue_add_filter(o, "reason", optarg);
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        case OPT_ENVELOPE:
            o->envelope = 1;
            break;
        case OPT_HEADERS:
            o->headers = 1;
            break;
        case OPT_BODY:
            o->body = 1;
            break;
        case OPT_BY:
            if (strcmp(optarg, "sender") == 0)
                o->by_sender = 1;
            else if (strcmp(optarg, "recipient") == 0)
                o->by_sender = 0;
            else {
                msg_error("--by: expected recipient or sender, not \"%.100s\"", optarg);
                rc = -1;
            }
            break;
        case OPT_BUCKETS:
            rc = queue_parse_int("buckets", optarg, 1, 30, &o->buckets);
            break;
        case OPT_BUCKET_TIME:
            rc = queue_parse_int("bucket-time", optarg, 1, 100000, &o->bucket_minutes);
            break;
        case 'h':
            queue_usage(stdout);
            exit(0);
        default:
            rc = -1;
        }
    }
    if (rc != 0) {
        queue_usage(stderr);
        return EX_USAGE;
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    return 0;
}

static void queue_opts_free(struct queue_opts *o)
{
    size_t i;

    queue_filter_free(&o->filter);
    for (i = 0; i < o->nfilter_args; i++)
        free(o->filter_args[i]);
    free(o->filter_args);
}

/* --- list ------------------------------------------------------------------ */

struct queue_list_out {
    struct queue_listing listing;
    struct strbuf buf;
    int failed;
};

static int queue_list_drain(struct queue_list_out *o)
{
    if (!o->failed && o->buf.len && safe_file_write_all(1, o->buf.data, o->buf.len) < 0) {
        msg_error("write: %m");
        o->failed = 1;
    }
    strbuf_reset(&o->buf);
    return o->failed ? -1 : 0;
}

static int queue_list_message(const struct queue_msg *m, void *ctx)
{
    struct queue_list_out *o = ctx;

    queue_listing_add(&o->listing, m);
    if (o->buf.len >= 65536)
        return queue_list_drain(o) < 0;
    return 0;
}

static int queue_list(struct queue_opts *o)
{
    struct queue_list_out out;
    struct queue_scan_stats st;
    struct strbuf why;
    int qfd, rc;

    if (o->nargs != 0) {
        queue_usage(stderr);
        return EX_USAGE;
    }
    memset(&out, 0, sizeof(out));
    strbuf_init(&why, 128, 4096);
    if ((qfd = open(var_queue_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        strbuf_init(&out.buf, 65536 + 8192, STRBUF_UNLIMITED);
        out.listing.json = o->json;
        out.listing.out = &out.buf;
        rc = queue_list_scan(qfd, o->filter, queue_list_message, &out, &st, &why);
        close(qfd);
        if (rc >= 0 || out.listing.count > 0) {
            if (rc < 0)
                msg_warn("%s", why.data);
            queue_listing_end(&out.listing);
            (void) queue_list_drain(&out);
            if (st.unreadable)
                msg_warn("%lu queue files could not be read and are not listed",
                         st.unreadable);
            strbuf_release(&out.buf);
            strbuf_release(&why);
            return out.failed ? EX_IOERR : 0;
        }
        strbuf_release(&out.buf);
    } else if (errno == ENOENT) {
        if (!o->json)
            printf("Mail queue is empty\n");
        strbuf_release(&why);
        return 0;
    }
    /* Not ours to read: the showq service lists it. */
    strbuf_reset(&why);
    fflush(stdout);
    if (showq_client_list(NULL, o->json, o->filter_args, o->nfilter_args, 1,
                          QUEUE_SHOWQ_TIMEOUT_MS, &why) == 0) {
        rc = 0;
    } else if (errno == EACCES) {
        strbuf_reset(&why);
        if ((rc = showq_client_helper(o->json, o->filter_args, o->nfilter_args, &why)) < 0) {
            msg_error("cannot read the queue, and %s", why.data);
            rc = EX_NOPERM;
        }
    } else {
        msg_error("%s%s", why.data, errno == ENOENT || errno == ECONNREFUSED
                  ? " (is the mail system running?)" : "");
        rc = EX_UNAVAILABLE;
    }
    strbuf_release(&why);
    return rc;
}

/* --- show ------------------------------------------------------------------ */

static void queue_show_text(const char *label, const char *text)
{
    const unsigned char *p;

    fputs(label, stdout);
    for (p = (const unsigned char *) text; *p; p++)
        putchar(*p < 0x20 && *p != '\t' ? '?' : *p);
    putchar('\n');
}

/* Streams the content; headers, body or both (split at the first empty line). */
static int queue_show_content(struct qfile_reader *r, int headers, int body)
{
    char buf[65536];
    ssize_t n;
    int in_headers = 1, prev_nl = 1;

    while ((n = qfile_content_read(r, buf, sizeof(buf))) > 0) {
        ssize_t i, start = 0;

        for (i = 0; i < n && in_headers; i++) {
            if (buf[i] == '\n') {
                if (prev_nl) {
                    if (headers)
                        fwrite(buf + start, 1, (size_t) (i - start), stdout);
                    in_headers = 0;
                    start = i + 1;
                    if (headers && body)
                        fputs("\n", stdout);
                    break;
                }
                prev_nl = 1;
            } else {
                prev_nl = 0;
            }
        }
        if (in_headers) {
            if (headers)
                fwrite(buf + start, 1, (size_t) (n - start), stdout);
        } else if (body && start < n) {
            fwrite(buf + start, 1, (size_t) (n - start), stdout);
        }
    }
    return n < 0 ? -1 : 0;
}

static int queue_show(struct queue_opts *o)
{
    char path[PATH_MAX];
    struct strbuf why;
    struct qfile_reader *r;
    struct qfile_record rec;
    struct stat sb;
    int qfd, queue, fd, status, all, rc = 1;
    time_t t;
    char date[64];

    if (o->nargs != 1) {
        queue_usage(stderr);
        return EX_USAGE;
    }
    if (!qid_valid(o->args[0])) {
        msg_error("bad queue ID \"%.100s\"", o->args[0]);
        return EX_USAGE;
    }
    all = !o->envelope && !o->headers && !o->body;
    if ((qfd = petrel_queue_open_dir()) < 0)
        return EX_NOPERM;
    strbuf_init(&why, 128, 4096);
    if (!petrel_queue_locate(qfd, o->args[0], &queue, path, sizeof(path))) {
        /* Not readable as a queue file: find the path to say why. */
        static const char *const qs[] = {"maildrop", "active", "incoming", "deferred", "hold"};
        size_t i;

        for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
            struct strbuf p;

            strbuf_init(&p, 64, PATH_MAX);
            queue_path(&p, qs[i], o->args[0], queue_path_depth(qs[i]));
            snprintf(path, sizeof(path), "%s", p.data);
            strbuf_release(&p);
            if (fstatat(qfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0)
                break;
        }
        if (i == sizeof(qs) / sizeof(qs[0])) {
            msg_error("%s: no such message in the queue", o->args[0]);
            close(qfd);
            strbuf_release(&why);
            return 1;
        }
    }
    if ((fd = safe_file_open(qfd, path, O_RDONLY, SAFE_FILE_ANY_OWNER, &sb, &why)) < 0) {
        msg_error("%s: %s", path, why.data);
        goto out;
    }
    if ((r = qfile_reader_fdopen(fd, &why)) == NULL) {
        msg_error("%s: malformed queue file: %s", path, why.data);
        close(fd);
        goto out;
    }
    if (all || o->envelope) {
        printf("*** ENVELOPE RECORDS %s ***\n", path);
        printf("message_size: %llu %llu %u %u\n",
               (unsigned long long) qfile_content_length(r),
               (unsigned long long) qfile_content_offset(r), (unsigned) qfile_rcpt_count(r),
               qfile_flags(r));
    }
    while ((status = qfile_next(r, &rec)) > 0) {
        if (rec.type == QREC_CONTENT) {
            if (all || o->headers || o->body) {
                if (all)
                    printf("*** MESSAGE CONTENTS %s ***\n", path);
                fflush(stdout);
                if (queue_show_content(r, all || o->headers, all || o->body) < 0) {
                    fflush(stdout);
                    msg_error("%s: cannot read the message content: %s", path, qfile_reason(r));
                    qfile_close(&r);
                    close(fd);
                    goto out;
                }
                fflush(stdout);
                if (all)
                    printf("*** HEADER EXTRACTED %s ***\n", path);
            }
            continue;
        }
        if (!(all || o->envelope))
            continue;
        switch (rec.type) {
        case QREC_TIME:
            t = (time_t) strtoll(rec.data, NULL, 10);
            strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", localtime(&t));
            printf("message_arrival_time: %s\n", date);
            break;
        case QREC_ATTR:
            queue_show_text("named_attribute: ", rec.data);
            break;
        case QREC_SENDER:
            queue_show_text("sender: ", rec.data);
            break;
        case QREC_ORCPT:
            queue_show_text("original_recipient: ", rec.data);
            break;
        case QREC_NOTIFY:
            queue_show_text("notify_flags: ", rec.data);
            break;
        case QREC_RCPT:
            queue_show_text("recipient: ", rec.data);
            break;
        case QREC_DONE:
            queue_show_text("done_recipient: ", rec.data);
            break;
        }
    }
    fflush(stdout);
    if (status < 0) {
        msg_error("%s: malformed queue file: %s", path, qfile_reason(r));
    } else {
        if (all)
            printf("*** MESSAGE FILE END %s ***\n", path);
        rc = 0;
    }
    qfile_close(&r);
    close(fd);
out:
    close(qfd);
    strbuf_release(&why);
    return rc;
}

/* --- dispatch -------------------------------------------------------------- */

int petrel_queue_main(int argc, char **argv)
{
    struct queue_opts o;
    const char *action;
    int rc;

    msg_init("queue");
    if (argc < 2) {
        queue_usage(stderr);
        return EX_USAGE;
    }
    action = argv[1];
    if (strcmp(action, "-h") == 0 || strcmp(action, "--help") == 0 || strcmp(action, "help") == 0) {
        queue_usage(stdout);
        return 0;
    }
    memset(&o, 0, sizeof(o));
    if ((rc = queue_parse(argc - 1, argv + 1, &o)) != 0) {
        queue_opts_free(&o);
        return rc;
    }
    config_load();
    msg_set_syslog_name(var_syslog_name);
    if (strcmp(action, "list") == 0)
        rc = queue_list(&o);
    else if (strcmp(action, "show") == 0)
        rc = queue_show(&o);
    else if (strcmp(action, "shape") == 0)
        rc = petrel_queue_shape(&o);
    else if (strcmp(action, "delete") == 0 || strcmp(action, "hold") == 0
             || strcmp(action, "release") == 0 || strcmp(action, "requeue") == 0
             || strcmp(action, "bounce") == 0)
        rc = petrel_queue_act(action, &o);
    else {
        msg_error("unknown queue action \"%.100s\"", action);
        queue_usage(stderr);
        rc = EX_USAGE;
    }
    queue_opts_free(&o);
    return rc;
}
