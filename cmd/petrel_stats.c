/*
 * petrel_stats.c - "petrel stats [--json | --prometheus]": the counters of
 * util/stats.h (per service and per transport, kept in data_directory/stats
 * across processes and restarts) and the queue sizes, counted now.
 *
 * Text is for people; --json is one object; --prometheus follows the text
 * exposition format (HELP and TYPE lines, petrel_ metric names, escaped label
 * values), so a node-exporter textfile collector or a scrape wrapper can
 * serve it. Never creates or changes the statistics file; a missing file means
 * nothing was counted yet (all zero). Exit 1 when the file or the queue cannot
 * be read, 64 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "msg.h"
#include "params.h"
#include "petrel.h"
#include "queue_list.h"
#include "stats.h"
#include "strbuf.h"

enum stats_format { FMT_TEXT, FMT_JSON, FMT_PROMETHEUS };

static const char *const stats_service_help[STATS_REJECT_FIRST] = {
    "Client connections accepted.",
    "Messages accepted (smtpd: 250 after DATA; cleanup: queue files committed).",
    "Recipients accepted (smtpd: 250 to RCPT; cleanup: recipients written).",
    "Message content bytes queued.",
    "Messages put on hold.",
    "Messages accepted and discarded.",
    "Messages refused by content checks or limits.",
};

static const char *const stats_transport_help[STATS_TRANSPORT_COUNTERS] = {
    "Recipients delivered.",
    "Recipient delivery attempts deferred.",
    "Recipients bounced.",
    "Message content bytes of delivered recipients.",
    "Deliveries over an already open connection.",
};

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void stats_prom_label(struct strbuf *out, const char *value)
{
    for (; *value; value++) {
        if (*value == '\\' || *value == '"')
            strbuf_putc(out, '\\');
        if (*value == '\n') {
            strbuf_puts(out, "\\n");
            continue;
        }
        strbuf_putc(out, *value);
    }
}

static void stats_prometheus(const struct stats_slot_view *v, int n, const long *queues,
                             struct strbuf *out)
{
    int c, i, cls;

    for (c = 0; c < STATS_REJECT_FIRST; c++) {
        strbuf_printf(out, "# HELP petrel_service_%s_total %s\n# TYPE petrel_service_%s_total "
                      "counter\n", stats_service_counter_name(c), stats_service_help[c],
                      stats_service_counter_name(c));
        for (i = 0; i < n; i++) {
            if (v[i].kind != STATS_KIND_SERVICE)
                continue;
            strbuf_printf(out, "petrel_service_%s_total{service=\"", stats_service_counter_name(c));
            stats_prom_label(out, v[i].name);
            strbuf_printf(out, "\"} %llu\n", (unsigned long long) v[i].counter[c]);
        }
    }
    strbuf_puts(out, "# HELP petrel_service_rejected_total SMTP requests rejected, by the "
                "stage whose restrictions rejected them.\n"
                "# TYPE petrel_service_rejected_total counter\n");
    for (i = 0; i < n; i++) {
        if (v[i].kind != STATS_KIND_SERVICE)
            continue;
        for (cls = 0; cls < STATS_REJECT_CLASSES; cls++) {
            strbuf_puts(out, "petrel_service_rejected_total{service=\"");
            stats_prom_label(out, v[i].name);
            strbuf_printf(out, "\",class=\"%s\"} %llu\n", stats_reject_class_name(cls),
                          (unsigned long long) v[i].counter[STATS_REJECT_FIRST + cls]);
        }
    }
    for (c = 0; c < STATS_TRANSPORT_COUNTERS; c++) {
        strbuf_printf(out, "# HELP petrel_transport_%s_total %s\n# TYPE petrel_transport_%s_total"
                      " counter\n", stats_transport_counter_name(c), stats_transport_help[c],
                      stats_transport_counter_name(c));
        for (i = 0; i < n; i++) {
            if (v[i].kind != STATS_KIND_TRANSPORT)
                continue;
            strbuf_printf(out, "petrel_transport_%s_total{transport=\"",
                          stats_transport_counter_name(c));
            stats_prom_label(out, v[i].name);
            strbuf_printf(out, "\"} %llu\n", (unsigned long long) v[i].counter[c]);
        }
    }
    strbuf_puts(out, "# HELP petrel_queue_messages Messages in each queue now.\n"
                "# TYPE petrel_queue_messages gauge\n");
    for (i = 0; i < QUEUE_LIST_NQUEUES; i++)
        strbuf_printf(out, "petrel_queue_messages{queue=\"%s\"} %ld\n", queue_list_queue_name(i),
                      queues[i]);
}

static void stats_json(const struct stats_slot_view *v, int n, const long *queues,
                       struct strbuf *out)
{
    int c, i, cls, first;
    int kinds[2] = {STATS_KIND_SERVICE, STATS_KIND_TRANSPORT}, k;

    strbuf_putc(out, '{');
    for (k = 0; k < 2; k++) {
        strbuf_puts(out, k ? ", \"transports\": {" : "\"services\": {");
        for (first = 1, i = 0; i < n; i++) {
            if ((int) v[i].kind != kinds[k])
                continue;
            if (!first)
                strbuf_puts(out, ", ");
            first = 0;
            queue_json_string(out, v[i].name);
            strbuf_puts(out, ": {");
            if (kinds[k] == STATS_KIND_SERVICE) {
                for (c = 0; c < STATS_REJECT_FIRST; c++)
                    strbuf_printf(out, "%s\"%s\": %llu", c ? ", " : "",
                                  stats_service_counter_name(c),
                                  (unsigned long long) v[i].counter[c]);
                strbuf_puts(out, ", \"rejected\": {");
                for (cls = 0; cls < STATS_REJECT_CLASSES; cls++)
                    strbuf_printf(out, "%s\"%s\": %llu", cls ? ", " : "",
                                  stats_reject_class_name(cls),
                                  (unsigned long long) v[i].counter[STATS_REJECT_FIRST + cls]);
                strbuf_putc(out, '}');
            } else {
                for (c = 0; c < STATS_TRANSPORT_COUNTERS; c++)
                    strbuf_printf(out, "%s\"%s\": %llu", c ? ", " : "",
                                  stats_transport_counter_name(c),
                                  (unsigned long long) v[i].counter[c]);
            }
            strbuf_putc(out, '}');
        }
        strbuf_putc(out, '}');
    }
    strbuf_puts(out, ", \"queues\": {");
    for (i = 0; i < QUEUE_LIST_NQUEUES; i++)
        strbuf_printf(out, "%s\"%s\": %ld", i ? ", " : "", queue_list_queue_name(i), queues[i]);
    strbuf_puts(out, "}}\n");
}

static void stats_text(const struct stats_slot_view *v, int n, const long *queues,
                       struct strbuf *out)
{
    int c, i, cls;

    for (i = 0; i < n; i++) {
        if (v[i].kind == STATS_KIND_SERVICE) {
            strbuf_printf(out, "service %s\n", v[i].name);
            for (c = 0; c < STATS_REJECT_FIRST; c++)
                strbuf_printf(out, "  %-22s %llu\n", stats_service_counter_name(c),
                              (unsigned long long) v[i].counter[c]);
            for (cls = 0; cls < STATS_REJECT_CLASSES; cls++)
                strbuf_printf(out, "  rejected %-13s %llu\n", stats_reject_class_name(cls),
                              (unsigned long long) v[i].counter[STATS_REJECT_FIRST + cls]);
        }
    }
    for (i = 0; i < n; i++) {
        if (v[i].kind == STATS_KIND_TRANSPORT) {
            strbuf_printf(out, "transport %s\n", v[i].name);
            for (c = 0; c < STATS_TRANSPORT_COUNTERS; c++)
                strbuf_printf(out, "  %-22s %llu\n", stats_transport_counter_name(c),
                              (unsigned long long) v[i].counter[c]);
        }
    }
    strbuf_puts(out, "queue\n");
    for (i = 0; i < QUEUE_LIST_NQUEUES; i++)
        strbuf_printf(out, "  %-22s %ld\n", queue_list_queue_name(i), queues[i]);
}

int petrel_stats_main(int argc, char **argv)
{
    static struct stats_slot_view views[STATS_SLOTS];
    enum stats_format fmt = FMT_TEXT;
    char path[PATH_MAX];
    long queues[QUEUE_LIST_NQUEUES];
    struct strbuf out;
    int i, n, qfd, rc = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            fmt = FMT_JSON;
        else if (strcmp(argv[i], "--prometheus") == 0)
            fmt = FMT_PROMETHEUS;
        else {
            fprintf(stderr, "usage: petrel [-c config_dir] stats [--json | --prometheus]\n");
            return EX_USAGE;
        }
    }
    msg_init("stats");
    config_load();
    snprintf(path, sizeof(path), "%s/%s", var_data_directory, STATS_FILE);
    if ((n = stats_read(path, views, STATS_SLOTS)) < 0) {
        msg_error("cannot read the statistics file %s: %m", path);
        return 1;
    }
    if ((qfd = open(var_queue_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0
        && errno != ENOENT) {
        msg_error("cannot read the queue directory %s: %m", var_queue_directory);
        return 1;
    }
    for (i = 0; i < QUEUE_LIST_NQUEUES; i++) {
        queues[i] = qfd < 0 ? 0 : queue_list_count(qfd, i);
        if (queues[i] < 0) {
            msg_error("cannot count the %s queue: %m", queue_list_queue_name(i));
            queues[i] = 0;
            rc = 1;
        }
    }
    if (qfd >= 0)
        close(qfd);
    strbuf_init(&out, 8192, STRBUF_UNLIMITED);
    if (fmt == FMT_PROMETHEUS)
        stats_prometheus(views, n, queues, &out);
    else if (fmt == FMT_JSON)
        stats_json(views, n, queues, &out);
    else
        stats_text(views, n, queues, &out);
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0)
        rc = EX_IOERR;
    strbuf_release(&out);
    return rc;
}
