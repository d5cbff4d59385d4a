/*
 * petrel_queue_shape.c - petrel queue shape: qshape's table of queued mail
 * per domain by age. Columns: T (total), then buckets whose upper bounds are
 * the bucket time (5 minutes), doubling (5 10 20 40 80 160 ... minutes), the
 * last one open ("1280+"); a message of age a minutes counts in the first
 * bucket with a < bound. Rows: TOTAL first, then domains, most mail first.
 * By recipient (the default) each pending recipient counts under its domain;
 * by sender each message counts under its sender's domain.
 * Reads the queue only; memory grows with the number of distinct domains,
 * never with the number of messages.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "htable.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "petrel_queue.h"
#include "queue_list.h"
#include "strbuf.h"

#define SHAPE_BUCKETS_MAX 30
#define SHAPE_DOMAIN_MAX  255

struct shape_row {
    char *domain;
    unsigned long long total;
    unsigned long long count[SHAPE_BUCKETS_MAX];
};

struct shape_state {
    struct htable *rows;
    struct shape_row total;
    struct shape_row **list;    /* for sorting */
    size_t nlist;
    int buckets;
    long long bound[SHAPE_BUCKETS_MAX];   /* seconds; the last is unbounded */
    int by_sender;
    time_t now;
    int full;
};

static int shape_bucket(const struct shape_state *s, time_t arrival)
{
    long long age = (long long) (s->now - arrival);
    int i;

    if (age < 0)
        age = 0;
    for (i = 0; i < s->buckets - 1; i++)
        if (age < s->bound[i])
            return i;
    return s->buckets - 1;
}

static void shape_count(struct shape_state *s, const char *addr, int bucket)
{
    const char *at = strrchr(addr, '@');
    char key[SHAPE_DOMAIN_MAX + 1];
    struct shape_row *row;
    size_t i;

    if (*addr == '\0')
        snprintf(key, sizeof(key), "MAILER-DAEMON");
    else
        snprintf(key, sizeof(key), "%s", at ? at + 1 : addr);
    for (i = 0; key[i]; i++)
        key[i] = (char) tolower((unsigned char) key[i]);
    if ((row = htable_find(s->rows, key)) == NULL) {
        row = xcalloc(1, sizeof(*row));
        row->domain = xstrdup(key);
        if (htable_insert(s->rows, key, row, NULL) < 0) {
            free(row->domain);
            free(row);
            s->full = 1;
            row = NULL;
        }
    }
    if (row) {
        row->total++;
        row->count[bucket]++;
    }
    s->total.total++;
    s->total.count[bucket]++;
}

static int shape_message(const struct queue_msg *m, void *ctx)
{
    struct shape_state *s = ctx;
    int bucket = shape_bucket(s, m->arrival.tv_sec);
    size_t i;

    if (s->by_sender)
        shape_count(s, m->sender, bucket);
    else
        for (i = 0; i < m->nrcpt; i++)
            shape_count(s, m->rcpt[i].address, bucket);
    return 0;
}

static int shape_collect(const char *key, void *value, void *ctx)
{
    struct shape_state *s = ctx;

    (void) key;
    s->list[s->nlist++] = value;
    return 0;
}

static int shape_cmp(const void *a, const void *b)
{
    const struct shape_row *x = *(const struct shape_row *const *) a;
    const struct shape_row *y = *(const struct shape_row *const *) b;

    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return strcmp(x->domain, y->domain);
}

static void shape_label(const struct shape_state *s, int i, char *buf, size_t len)
{
    if (i < s->buckets - 1)
        snprintf(buf, len, "%lld", s->bound[i] / 60);
    else
        snprintf(buf, len, "%lld+", s->buckets > 1 ? s->bound[s->buckets - 2] / 60 : 0);
}

static void shape_print_text(struct shape_state *s)
{
    int width = 6, cw[SHAPE_BUCKETS_MAX + 1], i;
    char label[32];
    size_t r;

    for (r = 0; r < s->nlist; r++)
        if ((int) strlen(s->list[r]->domain) > width)
            width = (int) strlen(s->list[r]->domain);
    if (width > 50)
        width = 50;
    /* Each column as wide as its label or its largest number. */
    snprintf(label, sizeof(label), "%llu", s->total.total);
    cw[0] = (int) strlen(label) > 1 ? (int) strlen(label) : 1;
    for (i = 0; i < s->buckets; i++) {
        shape_label(s, i, label, sizeof(label));
        cw[i + 1] = (int) strlen(label);
        snprintf(label, sizeof(label), "%llu", s->total.count[i]);
        if ((int) strlen(label) > cw[i + 1])
            cw[i + 1] = (int) strlen(label);
    }
    printf("%*s %*s", width, "", cw[0], "T");
    for (i = 0; i < s->buckets; i++) {
        shape_label(s, i, label, sizeof(label));
        printf(" %*s", cw[i + 1], label);
    }
    printf("\n%*s %*llu", width, "TOTAL", cw[0], s->total.total);
    for (i = 0; i < s->buckets; i++)
        printf(" %*llu", cw[i + 1], s->total.count[i]);
    printf("\n");
    for (r = 0; r < s->nlist; r++) {
        printf("%*.*s %*llu", width, width, s->list[r]->domain, cw[0], s->list[r]->total);
        for (i = 0; i < s->buckets; i++)
            printf(" %*llu", cw[i + 1], s->list[r]->count[i]);
        printf("\n");
    }
}

static void shape_json_row(const struct shape_state *s, const struct shape_row *row,
                           struct strbuf *out)
{
    int i;

    strbuf_puts(out, "{\"domain\": ");
    queue_json_string(out, row->domain);
    strbuf_printf(out, ", \"total\": %llu, \"counts\": [", row->total);
    for (i = 0; i < s->buckets; i++)
        strbuf_printf(out, "%s%llu", i ? ", " : "", row->count[i]);
    strbuf_puts(out, "]}");
}

static void shape_print_json(struct shape_state *s)
{
    struct strbuf out;
    char label[32];
    size_t r;
    int i;

    strbuf_init(&out, 4096, STRBUF_UNLIMITED);
    strbuf_printf(&out, "{\"by\": \"%s\", \"buckets\": [", s->by_sender ? "sender" : "recipient");
    for (i = 0; i < s->buckets; i++) {
        shape_label(s, i, label, sizeof(label));
        strbuf_printf(&out, "%s\"%s\"", i ? ", " : "", label);
    }
    strbuf_puts(&out, "], \"total\": ");
    shape_json_row(s, &s->total, &out);
    strbuf_puts(&out, ", \"domains\": [");
    for (r = 0; r < s->nlist; r++) {
        if (r)
            strbuf_puts(&out, ", ");
        shape_json_row(s, s->list[r], &out);
    }
    strbuf_puts(&out, "]}\n");
    fwrite(out.data, 1, out.len, stdout);
    strbuf_release(&out);
}

static void shape_free_row(void *value)
{
    struct shape_row *row = value;

    free(row->domain);
    free(row);
}

int petrel_queue_shape(struct queue_opts *o)
{
    struct shape_state s;
    struct strbuf why;
    int i, qfd, rc;

    memset(&s, 0, sizeof(s));
    strbuf_init(&why, 128, 4096);
    for (i = 0; i < o->nargs; i++) {
        if (strcmp(o->args[i], "maildrop") == 0
            || queue_filter_add(o->filter, "queue", o->args[i], &why) < 0) {
            msg_error("shape: unknown queue \"%.100s\"; use incoming, active, deferred or hold",
                      o->args[i]);
            strbuf_release(&why);
            return EX_USAGE;
        }
    }
    if (o->nargs == 0) {        /* qshape's default */
        (void) queue_filter_add(o->filter, "queue", "incoming", &why);
        (void) queue_filter_add(o->filter, "queue", "active", &why);
    }
    if (o->buckets < 2) {
        msg_error("shape: --buckets must be at least 2");
        strbuf_release(&why);
        return EX_USAGE;
    }
    s.buckets = o->buckets;
    s.by_sender = o->by_sender;
    s.total.domain = "TOTAL";
    for (i = 0; i < s.buckets - 1; i++)
        s.bound[i] = (long long) o->bucket_minutes * 60 << i;
    s.rows = htable_new(256);
    if ((qfd = open(var_queue_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        msg_error("cannot open the queue directory %s: %m", var_queue_directory);
        htable_free(&s.rows, shape_free_row);
        strbuf_release(&why);
        return EX_NOPERM;
    }
    s.now = time(NULL);
    strbuf_reset(&why);
    rc = queue_list_scan_flags(qfd, o->filter, shape_message, &s, NULL, QUEUE_LIST_NO_REASONS,
                               &why);
    close(qfd);
    if (rc < 0) {
        msg_error("%s", why.data);
        htable_free(&s.rows, shape_free_row);
        strbuf_release(&why);
        return EX_NOPERM;
    }
    if (s.full)
        msg_warn("too many domains; the TOTAL row counts them all");
    s.list = xcalloc(htable_count(s.rows) + 1, sizeof(*s.list));
    (void) htable_walk(s.rows, shape_collect, &s);
    qsort(s.list, s.nlist, sizeof(*s.list), shape_cmp);
    if (o->json)
        shape_print_json(&s);
    else
        shape_print_text(&s);
    free(s.list);
    htable_free(&s.rows, shape_free_row);
    strbuf_release(&why);
    return fflush(stdout) == 0 ? 0 : EX_IOERR;
}
