/*
 * sendmail_mailq.c - "mailq" / "sendmail -bp": the classic queue listing,
 * read straight from the queue directories with the queue file reader, in
 * Postfix's format (ID with '*' for active and '!' for held, size, arrival
 * time, sender, then each pending recipient; "-- N Kbytes in M Requests.").
 * Works only for a caller who may read the queue (root, mail_owner); others
 * get a clear error, since the showq service that would serve them is not
 * part of this release.
 * Never changes anything in the queue; skips files that are not complete or
 * that fail the reader (counted in a warning); every directory walk is bounded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qfile.h"
#include "qid.h"
#include "queue_path.h"
#include "safe_file.h"
#include "sendmail.h"
#include "strbuf.h"

#define MAILQ_ENTRIES_MAX   (1 << 22)   /* directory entries examined in one listing */
#define MAILQ_RCPT_SHOWN    100000      /* recipients listed per message */

/* Postfix's order (showq): what is waiting to be collected first. */
static const struct mailq_queue {
    const char *name;
    char status;
    int ready_0444;             /* maildrop files are "ready" at mode 0444 */
} mailq_queues[] = {
    {"maildrop", ' ', 1},
    {"active", '*', 0},
    {"incoming", ' ', 0},
    {"deferred", ' ', 0},
    {"hold", '!', 0},
};

struct mailq_state {
    unsigned long long bytes;
    unsigned long count;
    unsigned long examined;
    unsigned long skipped;
};

static void mailq_header_once(struct mailq_state *st)
{
    if (st->count == 0)
        printf("%-11s %7s %-20s %s\n", "-Queue ID-", "-Size-", "----Arrival Time----",
               "-Sender/Recipient-------");
}

/* Prints one message; 0, or -1 when the file is not (yet) a readable queue file. */
static int mailq_show(int fd, const char *qid, const struct mailq_queue *q,
                      struct mailq_state *st)
{
    struct strbuf why, sender;
    struct qfile_reader *r;
    struct qfile_record rec;
    struct strbuf rcpts;
    struct timeval tv = {0, 0};
    unsigned long shown = 0;
    time_t when;
    char date[32];
    int status;

    strbuf_init(&why, 128, 4096);
    if ((r = qfile_reader_fdopen(fd, &why)) == NULL) {
        strbuf_release(&why);
        return -1;
    }
    strbuf_init(&sender, 64, QFILE_MAX_RECORD);
    strbuf_init(&rcpts, 256, STRBUF_UNLIMITED);
    (void) qid_time(qid, &tv);
    while ((status = qfile_next(r, &rec)) > 0) {
        if (rec.type == QREC_SENDER)
            strbuf_set(&sender, rec.len ? rec.data : "MAILER-DAEMON");
        else if (rec.type == QREC_TIME)
            tv.tv_sec = (time_t) strtoll(rec.data, NULL, 10);
        else if (rec.type == QREC_RCPT && shown++ < MAILQ_RCPT_SHOWN)
            strbuf_printf(&rcpts, "%41s%s\n", "", rec.data);
    }
    if (status == 0) {
        when = tv.tv_sec;
        strftime(date, sizeof(date), "%a %b %e %H:%M:%S", localtime(&when));
        mailq_header_once(st);
        printf("%-10s%c %7llu %-20.20s %s\n%s\n", qid, q->status,
               (unsigned long long) qfile_content_length(r), date, sender.data, rcpts.data);
        st->bytes += qfile_content_length(r);
        st->count++;
    }
    qfile_close(&r);
    strbuf_release(&rcpts);
    strbuf_release(&sender);
    strbuf_release(&why);
    return status == 0 ? 0 : -1;
}

/* Walks one queue directory and its hash buckets (at most QUEUE_PATH_MAX_DEPTH). */
static int mailq_walk(int dfd, const char *label, const struct mailq_queue *q, int depth,
                      struct mailq_state *st)
{
    DIR *dir;
    struct dirent *de;
    struct stat sb;
    int fd, sub;

    if ((dir = fdopendir(dfd)) == NULL) {
        close(dfd);
        return -1;
    }
    while ((de = readdir(dir)) != NULL && st->examined++ < MAILQ_ENTRIES_MAX) {
        if (de->d_name[0] == '.')
            continue;
        if (qid_valid(de->d_name)) {
            fd = safe_file_open(dirfd(dir), de->d_name, O_RDONLY, SAFE_FILE_ANY_OWNER, &sb,
                                NULL);
            if (fd < 0)
                continue;       /* delivered meanwhile, or not ours to read */
            if (q->ready_0444 ? (sb.st_mode & 07777) == 0444 : qfile_is_complete(sb.st_mode))
                if (mailq_show(fd, de->d_name, q, st) < 0)
                    st->skipped++;
            close(fd);
        } else if (depth < QUEUE_PATH_MAX_DEPTH && strlen(de->d_name) == 1
                   && (sub = openat(dirfd(dir), de->d_name,
                                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
            (void) mailq_walk(sub, label, q, depth + 1, st);
        }
    }
    closedir(dir);
    return 0;
}

int sendmail_mailq(void)
{
    struct mailq_state st = {0, 0, 0, 0};
    size_t i;
    int qfd, dfd;

    if ((qfd = open(var_queue_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT) {
            printf("Mail queue is empty\n");
            return 0;
        }
        msg_error("cannot read the queue %s: %m", var_queue_directory);
        return EX_NOPERM;
    }
    for (i = 0; i < sizeof(mailq_queues) / sizeof(mailq_queues[0]); i++) {
        if ((dfd = openat(qfd, mailq_queues[i].name,
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            if (errno == ENOENT)
                continue;
            msg_error("cannot read the queue %s/%s: %m (run mailq as root or %s; a listing "
                      "for other users needs the showq service, not part of this release)",
                      var_queue_directory, mailq_queues[i].name, var_mail_owner);
            close(qfd);
            return EX_NOPERM;
        }
        (void) mailq_walk(dfd, mailq_queues[i].name, &mailq_queues[i], 0, &st);
    }
    close(qfd);
    if (st.skipped)
        msg_warn("%lu queue files could not be read and are not listed", st.skipped);
    if (st.count == 0)
        printf("Mail queue is empty\n");
    else
        printf("-- %llu Kbytes in %lu Request%s.\n", (st.bytes + 1023) / 1024, st.count,
               st.count == 1 ? "" : "s");
    return fflush(stdout) == 0 ? 0 : EX_IOERR;
}
