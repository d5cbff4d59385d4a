/*
 * queue_list.c - the one queue walker behind mailq, showq and "petrel queue"
 * (contract in queue_list.h): directory walk, envelope reading, defer reasons,
 * filters, and the classic and JSON listing formats.
 *
 * Never writes to the queue; never reads message content; never holds more
 * than one message in memory. Vanished files are skipped, malformed ones are
 * counted and skipped, a queue directory that cannot be opened for lack of
 * permission fails the scan (the caller then asks showq).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "htable.h"
#include "mymalloc.h"
#include "params.h"
#include "qfile.h"
#include "qid.h"
#include "queue_list.h"
#include "queue_path.h"
#include "safe_file.h"
#include "status_log.h"

static const struct {
    const char *name;
    char status;
} queue_list_queues[QUEUE_LIST_NQUEUES] = {
    [QUEUE_LIST_MAILDROP] = {"maildrop", ' '},
    [QUEUE_LIST_ACTIVE] = {"active", '*'},
    [QUEUE_LIST_INCOMING] = {"incoming", ' '},
    [QUEUE_LIST_DEFERRED] = {"deferred", ' '},
    [QUEUE_LIST_HOLD] = {"hold", '!'},
};

const char *queue_list_queue_name(enum queue_list_queue q)
{
    if ((unsigned) q >= QUEUE_LIST_NQUEUES)
        return "unknown";
    return queue_list_queues[q].name;
}

int queue_list_queue_find(const char *name)
{
    int i;

    for (i = 0; i < QUEUE_LIST_NQUEUES; i++)
        if (strcmp(queue_list_queues[i].name, name) == 0)
            return i;
    return -1;
}

/* --- Filters --------------------------------------------------------------- */

struct queue_list_strs {
    char **v;
    size_t n;
};

struct queue_filter {
    struct queue_list_strs from, to, ids;
    unsigned queues;            /* bit per enum queue_list_queue; 0: all */
    long long older_than;       /* seconds; -1: off */
    regex_t *reason;
    size_t nreason;
};

static void queue_list_strs_add(struct queue_list_strs *s, const char *value)
{
    s->v = xreallocarray(s->v, s->n + 1, sizeof(*s->v));
    s->v[s->n++] = xstrdup(value);
}

static void queue_list_strs_free(struct queue_list_strs *s)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

struct queue_filter *queue_filter_new(void)
{
    struct queue_filter *f = xcalloc(1, sizeof(*f));

    f->older_than = -1;
    return f;
}

void queue_filter_free(struct queue_filter **fp)
{
    struct queue_filter *f = *fp;
    size_t i;

    if (f == NULL)
        return;
    queue_list_strs_free(&f->from);
    queue_list_strs_free(&f->to);
    queue_list_strs_free(&f->ids);
    for (i = 0; i < f->nreason; i++)
        regfree(&f->reason[i]);
    free(f->reason);
    free(f);
    *fp = NULL;
}

/* "<>" and MAILER-DAEMON name the null sender; "@dom" is the domain "dom". */
static int queue_filter_addr_ok(const char *value, struct strbuf *why)
{
    size_t len = strlen(value);

    if (len == 0 || len > 1024) {
        strbuf_printf(why, "bad address or domain \"%.100s\"", value);
        return 0;
    }
    for (; *value; value++)
        if ((unsigned char) *value < 0x21 || *value == 0x7f) {
            strbuf_printf(why, "address or domain contains a control character or space");
            return 0;
        }
    return 1;
}

int queue_filter_add(struct queue_filter *f, const char *option, const char *value,
                     struct strbuf *why)
{
    long long secs;
    int q, err;

    if (strcmp(option, "from") == 0 || strcmp(option, "to") == 0) {
        if (!queue_filter_addr_ok(value, why))
            return -1;
        queue_list_strs_add(option[0] == 'f' ? &f->from : &f->to, value);
    } else if (strcmp(option, "queue") == 0) {
        if ((q = queue_list_queue_find(value)) < 0) {
            strbuf_printf(why, "unknown queue \"%.100s\"; use maildrop, incoming, active, "
                          "deferred or hold", value);
            return -1;
        }
        f->queues |= 1u << q;
    } else if (strcmp(option, "older-than") == 0) {
        if (config_parse_time(value, 's', &secs) < 0) {
            strbuf_printf(why, "bad duration \"%.100s\"; use a number with an optional s, m,"
                          " h, d or w suffix", value);
            return -1;
        }
        if (f->older_than < 0 || secs > f->older_than)
            f->older_than = secs;
    } else if (strcmp(option, "reason") == 0) {
        f->reason = xreallocarray(f->reason, f->nreason + 1, sizeof(*f->reason));
        if ((err = regcomp(&f->reason[f->nreason], value,
                           REG_EXTENDED | REG_ICASE | REG_NOSUB)) != 0) {
            char buf[256];

            regerror(err, &f->reason[f->nreason], buf, sizeof(buf));
            strbuf_printf(why, "bad regular expression \"%.100s\": %s", value, buf);
            return -1;
        }
        f->nreason++;
    } else if (strcmp(option, "id") == 0) {
        if (!qid_valid(value)) {
            strbuf_printf(why, "bad queue ID \"%.100s\"", value);
            return -1;
        }
        if (f->ids.n >= QUEUE_LIST_IDS_MAX) {
            strbuf_printf(why, "more than %ld queue IDs", (long) QUEUE_LIST_IDS_MAX);
            return -1;
        }
        queue_list_strs_add(&f->ids, value);
    } else {
        strbuf_printf(why, "unknown filter \"%.100s\"", option);
        return -1;
    }
    return 0;
}

int queue_filter_is_set(const struct queue_filter *f)
{
    return f != NULL && (f->from.n || f->to.n || f->ids.n || f->queues || f->older_than >= 0
                         || f->nreason);
}

/* addr matches pattern: the null sender, an address, or a domain by suffix. */
static int queue_filter_addr_match(const char *pattern, const char *addr)
{
    const char *dom;
    size_t plen, dlen;

    if (strcmp(pattern, "<>") == 0 || strcasecmp(pattern, "MAILER-DAEMON") == 0)
        return *addr == '\0';
    if (pattern[0] == '@')
        pattern++;
    else if (strchr(pattern, '@'))
        return strcasecmp(pattern, addr) == 0;
    if ((dom = strrchr(addr, '@')) == NULL)
        return 0;
    dom++;
    plen = strlen(pattern);
    dlen = strlen(dom);
    if (plen > dlen)
        return 0;
    if (strcasecmp(dom + dlen - plen, pattern) != 0)
        return 0;
    return plen == dlen || dom[dlen - plen - 1] == '.' || pattern[0] == '.';
}

static int queue_filter_any(const struct queue_list_strs *s, const char *addr)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (queue_filter_addr_match(s->v[i], addr))
            return 1;
    return 0;
}

/* Everything but the deferral reasons, which cost a defer/ log read each. */
static int queue_filter_match_envelope(const struct queue_filter *f, const struct queue_msg *m,
                                       time_t now)
{
    size_t i;
    int ok;

    if (f == NULL)
        return 1;
    if (f->queues && !(f->queues & (1u << m->queue)))
        return 0;
    if (f->older_than >= 0 && (long long) (now - m->arrival.tv_sec) < f->older_than)
        return 0;
    if (f->ids.n) {
        for (ok = 0, i = 0; i < f->ids.n && !ok; i++)
            ok = strcmp(f->ids.v[i], m->qid) == 0;
        if (!ok)
            return 0;
    }
    if (f->from.n && !queue_filter_any(&f->from, m->sender))
        return 0;
    if (f->to.n) {
        for (ok = 0, i = 0; i < m->nrcpt && !ok; i++)
            ok = queue_filter_any(&f->to, m->rcpt[i].address);
        if (!ok)
            return 0;
    }
    return 1;
}

static int queue_filter_match_reasons(const struct queue_filter *f, const struct queue_msg *m)
{
    size_t i, j;
    int ok;

    if (f == NULL || f->nreason == 0)
        return 1;
    for (ok = 0, i = 0; i < m->nrcpt && !ok; i++)
        for (j = 0; j < f->nreason && !ok && m->rcpt[i].reason; j++)
            ok = regexec(&f->reason[j], m->rcpt[i].reason, 0, NULL, 0) == 0;
    return ok;
}

int queue_filter_match(const struct queue_filter *f, const struct queue_msg *m, time_t now)
{
    return queue_filter_match_envelope(f, m, now) && queue_filter_match_reasons(f, m);
}

/* --- Reading one message --------------------------------------------------- */

struct queue_list_scan {
    int qfd;
    const struct queue_filter *f;
    queue_list_fn fn;
    void *ctx;
    struct queue_scan_stats *st;
    time_t now;
    int defer_depth;
    int reasons_wanted;         /* read defer/ logs: the caller or a filter needs them */
    /* Reused for every message, so memory stays flat. */
    struct strbuf path, sender, why, names, hold_reason;
    struct queue_rcpt *rcpt;
    size_t rcpt_cap;
    size_t *name_off;           /* offsets of the addresses in names */
    struct htable *reasons;     /* "offset" and "@address" -> last reason */
    int stop;
};

static int queue_list_defer_entry(const struct status_entry *e, void *ctx)
{
    struct queue_list_scan *s = ctx;
    char key[32];
    void *old;
    char *reason;

    if (htable_count(s->reasons) >= (size_t) QUEUE_LIST_RCPT_MAX * 2)
        return 1;
    /* The log keeps every deferral; the last one of a recipient wins. */
    snprintf(key, sizeof(key), "%lld", (long long) e->offset);
    reason = xstrdup(e->reason ? e->reason : "");
    if (htable_remove(s->reasons, key, &old) == 1)
        free(old);
    (void) htable_insert(s->reasons, key, reason, NULL);
    if (e->recipient && *e->recipient) {
        struct strbuf akey;

        strbuf_init(&akey, 64, STATUS_LOG_MAX_LINE + 2);
        strbuf_putc(&akey, '@');
        strbuf_puts(&akey, e->recipient);
        if (htable_remove(s->reasons, akey.data, &old) == 1)
            free(old);
        (void) htable_insert(s->reasons, akey.data, xstrdup(reason), NULL);
        strbuf_release(&akey);
    }
    return 0;
}

static void queue_list_reasons_clear(struct queue_list_scan *s)
{
    if (s->reasons && htable_count(s->reasons) > 0) {
        htable_free(&s->reasons, free);
        s->reasons = NULL;
    }
    if (s->reasons == NULL)
        s->reasons = htable_new(16);
}

static const char *queue_list_reason(struct queue_list_scan *s, const struct queue_rcpt *r)
{
    char key[32];
    const char *reason;
    struct strbuf akey;

    if (htable_count(s->reasons) == 0)
        return NULL;
    snprintf(key, sizeof(key), "%lld", (long long) r->offset);
    if ((reason = htable_find(s->reasons, key)) != NULL)
        return reason;
    strbuf_init(&akey, 64, STRBUF_UNLIMITED);
    strbuf_putc(&akey, '@');
    strbuf_puts(&akey, r->address);
    reason = htable_find(s->reasons, akey.data);
    strbuf_release(&akey);
    return reason;
}

/* Reads the envelope of an open queue file into m; 0, or -1 if malformed. */
static int queue_list_read(struct queue_list_scan *s, int fd, struct queue_msg *m)
{
    struct qfile_reader *r;
    struct qfile_record rec;
    size_t n = 0, i;
    int status;

    strbuf_reset(&s->why);
    if ((r = qfile_reader_fdopen(fd, &s->why)) == NULL)
        return -1;
    strbuf_reset(&s->sender);
    strbuf_reset(&s->names);
    strbuf_reset(&s->hold_reason);
    while ((status = qfile_next(r, &rec)) > 0) {
        if (rec.type == QREC_SENDER) {
            strbuf_set(&s->sender, rec.data);
        } else if (rec.type == QREC_ATTR && strncmp(rec.data, "hold_reason=", 12) == 0) {
            strbuf_set(&s->hold_reason, rec.data + 12);
        } else if (rec.type == QREC_TIME) {
            m->arrival.tv_sec = (time_t) strtoll(rec.data, NULL, 10);
            m->arrival.tv_usec = strchr(rec.data, '.') ? strtol(strchr(rec.data, '.') + 1,
                                                                  NULL, 10) : 0;
        } else if (rec.type == QREC_RCPT && n < (size_t) QUEUE_LIST_RCPT_MAX) {
            if (n == s->rcpt_cap) {
                s->rcpt_cap = s->rcpt_cap ? s->rcpt_cap * 2 : 64;
                s->rcpt = xreallocarray(s->rcpt, s->rcpt_cap, sizeof(*s->rcpt));
                s->name_off = xreallocarray(s->name_off, s->rcpt_cap, sizeof(*s->name_off));
            }
            s->name_off[n] = s->names.len;
            s->rcpt[n].offset = rec.offset;
            s->rcpt[n].reason = NULL;
            strbuf_append(&s->names, rec.data, rec.len + 1);    /* with its NUL */
            n++;
        }
    }
    if (status == 0) {
        m->size = qfile_content_length(r);
        for (i = 0; i < n; i++)
            s->rcpt[i].address = s->names.data + s->name_off[i];
    } else {
        strbuf_set(&s->why, qfile_reason(r));
    }
    qfile_close(&r);
    m->sender = s->sender.data;
    m->hold_reason = s->hold_reason.len ? s->hold_reason.data : NULL;
    m->nrcpt = n;
    m->rcpt = s->rcpt;
    return status == 0 ? 0 : -1;
}

/* One directory entry that is a queue ID in queue q: read, filter, report. */
static void queue_list_one(struct queue_list_scan *s, int dfd, const char *qid,
                           enum queue_list_queue q, const char *path)
{
    struct queue_msg m;
    struct stat sb;
    size_t i;
    int fd, ready;

    if ((fd = safe_file_open(dfd, qid, O_RDONLY, SAFE_FILE_ANY_OWNER, &sb, NULL)) < 0) {
        if (errno != ENOENT && errno != EACCES)
            s->st->unreadable++;
        return;                 /* delivered meanwhile, or a submitter's private file */
    }
    ready = q == QUEUE_LIST_MAILDROP ? (sb.st_mode & 07777) == 0444
        : qfile_is_complete(sb.st_mode);
    if (!ready) {
        close(fd);
        return;
    }
    memset(&m, 0, sizeof(m));
    m.queue = q;
    m.queue_name = queue_list_queues[q].name;
    m.status = queue_list_queues[q].status;
    m.qid = qid;
    m.path = path;
    m.owner = sb.st_uid;
    (void) qid_time(qid, &m.arrival);
    s->st->messages++;
    if (queue_list_read(s, fd, &m) < 0) {
        close(fd);
        s->st->unreadable++;
        return;
    }
    close(fd);
    /* The cheap filters first: most messages of a filtered scan stop here,
     * before their defer/ log is looked for. */
    if (!queue_filter_match_envelope(s->f, &m, s->now))
        return;
    if (s->reasons_wanted) {
        queue_list_reasons_clear(s);
        if (q != QUEUE_LIST_MAILDROP && m.nrcpt > 0)
            (void) status_log_read(s->qfd, STATUS_LOG_DEFER, qid, s->defer_depth,
                                   queue_list_defer_entry, s, &s->why);
        for (i = 0; i < m.nrcpt; i++)
            s->rcpt[i].reason = queue_list_reason(s, &s->rcpt[i]);
    }
    if (!queue_filter_match_reasons(s->f, &m))
        return;
    s->st->matched++;
    s->st->matched_bytes += m.size;
    if (s->fn(&m, s->ctx) != 0)
        s->stop = 1;
}

/* Walks one queue directory and its hash buckets (at most QUEUE_PATH_MAX_DEPTH). */
static void queue_list_walk(struct queue_list_scan *s, int dfd, enum queue_list_queue q,
                            int level)
{
    DIR *dir;
    struct dirent *de;
    size_t base = s->path.len;
    int sub;

    if ((dir = fdopendir(dfd)) == NULL) {
        close(dfd);
        return;
    }
    while (!s->stop && (de = readdir(dir)) != NULL) {
        if (s->st->examined++ >= (unsigned long) QUEUE_LIST_ENTRIES_MAX) {
            s->stop = 1;
            break;
        }
        if (de->d_name[0] == '.')
            continue;
        strbuf_truncate(&s->path, base);
        strbuf_putc(&s->path, '/');
        strbuf_puts(&s->path, de->d_name);
        if (qid_valid(de->d_name)) {
            queue_list_one(s, dirfd(dir), de->d_name, q, s->path.data);
        } else if (level < QUEUE_PATH_MAX_DEPTH && de->d_name[1] == '\0'
                   && strchr(qid_alphabet, de->d_name[0])
                   && (sub = openat(dirfd(dir), de->d_name,
                                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
            queue_list_walk(s, sub, q, level + 1);
        }
    }
    strbuf_truncate(&s->path, base);
    closedir(dir);
}

/* With explicit IDs: look each one up where it would be, in every queue. */
static void queue_list_lookup_ids(struct queue_list_scan *s, unsigned queues)
{
    struct strbuf dir;
    size_t i;
    int q, dfd;

    strbuf_init(&dir, 64, PATH_MAX);
    for (i = 0; i < s->f->ids.n && !s->stop; i++) {
        for (q = 0; q < QUEUE_LIST_NQUEUES && !s->stop; q++) {
            if (queues && !(queues & (1u << q)))
                continue;
            queue_path_dir(&dir, queue_list_queues[q].name, s->f->ids.v[i],
                           queue_path_depth(queue_list_queues[q].name));
            queue_path(&s->path, queue_list_queues[q].name, s->f->ids.v[i],
                       queue_path_depth(queue_list_queues[q].name));
            if ((dfd = openat(s->qfd, dir.data,
                              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                continue;
            s->st->examined++;
            queue_list_one(s, dfd, s->f->ids.v[i], q, s->path.data);
            close(dfd);
        }
    }
    strbuf_release(&dir);
}

int queue_list_scan(int queue_dirfd, const struct queue_filter *f, queue_list_fn fn,
                    void *ctx, struct queue_scan_stats *stats, struct strbuf *why)
{
    return queue_list_scan_flags(queue_dirfd, f, fn, ctx, stats, 0, why);
}

int queue_list_scan_flags(int queue_dirfd, const struct queue_filter *f, queue_list_fn fn,
                          void *ctx, struct queue_scan_stats *stats, int flags,
                          struct strbuf *why)
{
    struct queue_list_scan s;
    struct queue_scan_stats dummy;
    unsigned queues = f ? f->queues : 0;
    int q, dfd, rc = 0;

    memset(&s, 0, sizeof(s));
    s.qfd = queue_dirfd;
    s.f = f;
    s.fn = fn;
    s.ctx = ctx;
    s.st = stats ? stats : &dummy;
    memset(s.st, 0, sizeof(*s.st));
    s.now = time(NULL);
    s.defer_depth = queue_path_depth(STATUS_LOG_DEFER);
    s.reasons_wanted = !(flags & QUEUE_LIST_NO_REASONS) || (f && f->nreason);
    strbuf_init(&s.path, 64, PATH_MAX);
    strbuf_init(&s.sender, 64, QFILE_MAX_RECORD + 1);
    strbuf_init(&s.hold_reason, 64, QFILE_MAX_RECORD + 1);
    strbuf_init(&s.why, 128, 4096);
    strbuf_init(&s.names, 256, STRBUF_UNLIMITED);
    s.reasons = htable_new(16);
    if (f && f->ids.n) {
        queue_list_lookup_ids(&s, queues);
    } else {
        for (q = 0; q < QUEUE_LIST_NQUEUES && !s.stop; q++) {
            if (queues && !(queues & (1u << q)))
                continue;
            if ((dfd = openat(queue_dirfd, queue_list_queues[q].name,
                              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                if (errno == ENOENT)
                    continue;
                strbuf_printf(why, "cannot read the %s queue: %s", queue_list_queues[q].name,
                              strerror(errno));
                rc = -1;
                break;
            }
            strbuf_set(&s.path, queue_list_queues[q].name);
            queue_list_walk(&s, dfd, (enum queue_list_queue) q, 0);
        }
    }
    if (rc == 0 && s.stop)
        rc = 1;
    htable_free(&s.reasons, free);
    free(s.rcpt);
    free(s.name_off);
    strbuf_release(&s.path);
    strbuf_release(&s.sender);
    strbuf_release(&s.hold_reason);
    strbuf_release(&s.why);
    strbuf_release(&s.names);
    return rc;
}

static long queue_list_count_dir(int dfd, int level, unsigned long *examined)
{
    DIR *dir;
    struct dirent *de;
    long n = 0;
    int sub;

    if ((dir = fdopendir(dfd)) == NULL) {
        close(dfd);
        return 0;
    }
    while ((de = readdir(dir)) != NULL && (*examined)++ < (unsigned long) QUEUE_LIST_ENTRIES_MAX) {
        if (de->d_name[0] == '.')
            continue;
        if (qid_valid(de->d_name))
            n++;
        else if (level < QUEUE_PATH_MAX_DEPTH && de->d_name[1] == '\0'
                 && strchr(qid_alphabet, de->d_name[0])
                 && (sub = openat(dirfd(dir), de->d_name,
                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0)
            n += queue_list_count_dir(sub, level + 1, examined);
    }
    closedir(dir);
    return n;
}

long queue_list_count(int queue_dirfd, enum queue_list_queue q)
{
    unsigned long examined = 0;
    int dfd;

    if ((unsigned) q >= QUEUE_LIST_NQUEUES)
        return -1;
    if ((dfd = openat(queue_dirfd, queue_list_queues[q].name,
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 0 : -1;
    return queue_list_count_dir(dfd, 0, &examined);
}

/* --- Output ---------------------------------------------------------------- */

/* Postfix's printable(): control and non-ASCII bytes become '?', so a listing can
 * never carry terminal escapes out of an envelope. */
static void queue_format_printable(struct strbuf *out, const char *str)
{
    size_t start = out->len;

    strbuf_puts(out, str);
    for (char *p = out->data + start; *p; p++)
        if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
            *p = '?';
}

void queue_format_heading(struct strbuf *out)
{
    strbuf_printf(out, "%-11s %7s %-20s %s\n", "-Queue ID-", "-Size-", "----Arrival Time----",
                  "-Sender/Recipient-------");
}

void queue_format_classic(const struct queue_msg *m, struct strbuf *out)
{
    time_t when = m->arrival.tv_sec;
    struct tm tm;
    char date[32];
    const char *last = NULL;
    size_t i, len;

    if (localtime_r(&when, &tm) == NULL || strftime(date, sizeof(date), "%a %b %e %H:%M:%S",
                                                    &tm) == 0)
        strcpy(date, "??");
    strbuf_printf(out, "%-10s%c %7llu %-20.20s ", m->qid, m->status,
                  (unsigned long long) m->size, date);
    if (m->queue == QUEUE_LIST_MAILDROP && m->owner != 0 && *m->sender == '\0')
        strbuf_printf(out, "(maildrop queue, sender UID %u)", (unsigned) m->owner);
    else
        queue_format_printable(out, *m->sender ? m->sender : "MAILER-DAEMON");
    strbuf_putc(out, '\n');
    if (m->hold_reason) {
        /* Not in Postfix's listing: a quarantined message says why it is held. */
        len = strlen(m->hold_reason) + strlen("held: ");
        strbuf_printf(out, "%*s(held: ", len < 76 ? (int) (76 - len) : 0, "");
        queue_format_printable(out, m->hold_reason);
        strbuf_puts(out, ")\n");
    }
    for (i = 0; i < m->nrcpt; i++) {
        const char *reason = m->rcpt[i].reason;

        /* Like showq: a reason is printed once for consecutive recipients sharing it,
         * right-aligned to 78 columns. */
        if (reason && (last == NULL || strcmp(last, reason) != 0)) {
            len = strlen(reason);
            strbuf_printf(out, "%*s(", len < 76 ? (int) (76 - len) : 0, "");
            queue_format_printable(out, reason);
            strbuf_puts(out, ")\n");
        }
        last = reason;
        strbuf_printf(out, "%41s", "");
        queue_format_printable(out, m->rcpt[i].address);
        strbuf_putc(out, '\n');
    }
    strbuf_putc(out, '\n');
}

void queue_format_summary(unsigned long count, uint64_t bytes, struct strbuf *out)
{
    if (count == 0)
        strbuf_puts(out, "Mail queue is empty\n");
    else
        strbuf_printf(out, "-- %llu Kbytes in %lu Request%s.\n",
                      (unsigned long long) ((bytes + 1023) / 1024), count,
                      count == 1 ? "" : "s");
}

/* Length of the valid UTF-8 sequence at p, or 0 if it is not one. */
static size_t queue_json_utf8_len(const unsigned char *p)
{
    size_t n, i;
    unsigned cp;

    if (p[0] < 0xc2 || p[0] > 0xf4)
        return 0;
    n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
    cp = p[0] & (0xff >> (n + 1));
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
        || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void queue_json_string(struct strbuf *out, const char *str)
{
    const unsigned char *p = (const unsigned char *) str;
    size_t n;

    strbuf_putc(out, '"');
    while (*p) {
        if (*p == '"' || *p == '\\') {
            strbuf_putc(out, '\\');
            strbuf_putc(out, *p++);
        } else if (*p < 0x20 || *p == 0x7f) {
            strbuf_printf(out, "\\u%04x", *p++);
        } else if (*p < 0x80) {
            strbuf_putc(out, *p++);
        } else if ((n = queue_json_utf8_len(p)) > 0) {
            strbuf_append(out, p, n);
            p += n;
        } else {
            strbuf_puts(out, "\\ufffd");
            p++;
        }
    }
    strbuf_putc(out, '"');
}

void queue_format_json(const struct queue_msg *m, struct strbuf *out)
{
    size_t i;

    strbuf_puts(out, "{\"queue_name\": ");
    queue_json_string(out, m->queue_name);
    strbuf_puts(out, ", \"queue_id\": ");
    queue_json_string(out, m->qid);
    strbuf_printf(out, ", \"arrival_time\": %lld, \"message_size\": %llu, "
                  "\"forced_expire\": %s, \"sender\": ", (long long) m->arrival.tv_sec,
                  (unsigned long long) m->size, m->forced_expire ? "true" : "false");
    queue_json_string(out, m->sender);
    if (m->hold_reason) {
        strbuf_puts(out, ", \"hold_reason\": ");
        queue_json_string(out, m->hold_reason);
    }
    strbuf_puts(out, ", \"recipients\": [");
    for (i = 0; i < m->nrcpt; i++) {
        strbuf_puts(out, i ? ", {\"address\": " : "{\"address\": ");
        queue_json_string(out, m->rcpt[i].address);
        if (m->rcpt[i].reason) {
            strbuf_puts(out, ", \"delay_reason\": ");
            queue_json_string(out, m->rcpt[i].reason);
        }
        strbuf_putc(out, '}');
    }
    strbuf_puts(out, "]}\n");
}

void queue_listing_add(struct queue_listing *l, const struct queue_msg *m)
{
    if (l->json) {
        queue_format_json(m, l->out);
    } else {
        if (l->count == 0)
            queue_format_heading(l->out);
        queue_format_classic(m, l->out);
    }
    l->count++;
    l->bytes += m->size;
}

void queue_listing_end(struct queue_listing *l)
{
    if (!l->json)
        queue_format_summary(l->count, l->bytes, l->out);
}
