/*
 * master_reload.c - SIGHUP: reread main.cf and master.cf without dropping sockets.
 * A service whose listening definition (type, private/public, name and, for inet
 * services without a host, inet_interfaces/inet_protocols) is unchanged keeps its
 * sockets, so clients are never refused during a reload; removed services close;
 * changed ones reopen. Every existing worker becomes "old generation" and gets
 * SIGTERM: idle ones exit at once, busy ones after their current request.
 * Must never: leave master without a configuration. A configuration with errors is
 * logged and ignored; master keeps running with the old one.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "master.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "strbuf.h"

/* Logs each report line; returns 0 when the new configuration may be used. */
static int master_reload_check(struct mastercf *cf)
{
    struct strbuf report;
    char *path, *line, *save = NULL;
    int errors;

    strbuf_init(&report, 256, 65536);
    config_checks_register();
    errors = config_check(&report);
    if (errors == 0) {
        path = xmalloc(strlen(config_dir()) + sizeof("/master.cf"));
        strcpy(path, config_dir());
        strcat(path, "/master.cf");
        if (mastercf_parse(path, cf, &report) < 0)
            errors = 1;
        free(path);
    }
    if (errors)
        for (line = strtok_r(report.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            msg_warn("reload: %s", line);
    strbuf_release(&report);
    return errors ? -1 : 0;
}

static struct master_serv *master_reload_take(struct master_serv **list, const char *key)
{
    struct master_serv **pp, *serv;

    for (pp = list; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            serv = *pp;
            *pp = serv->next;
            serv->next = NULL;
            return serv;
        }
    }
    return NULL;
}

void master_reload(void)
{
    struct mastercf cf = {NULL, 0};
    struct master_serv *old = master_servs, **tail = &master_servs, *serv, **kept;
    size_t i;

    if (master_reload_check(&cf) < 0) {
        msg_warn("reload: configuration has errors; keeping the running one");
        mastercf_free(&cf);
        return;
    }
    config_load();
    server_log_open(0);
    msg_info("reload -- version %s, configuration %s", var_mail_version, config_dir());
    /* Keep what is unchanged, close what went away, and only then open new sockets,
     * so a port that moved from one service line to another can be bound again. */
    kept = xcalloc(cf.count + 1, sizeof(*kept));
    for (i = 0; i < cf.count; i++) {
        char *key = master_serv_key(cf.services + i);

        kept[i] = master_reload_take(&old, key);
        free(key);
    }
    while ((serv = old) != NULL) {
        old = serv->next;
        master_serv_close(serv);
    }
    master_servs = NULL;
    for (i = 0; i < cf.count; i++) {
        if ((serv = kept[i]) != NULL) {
            master_serv_forget(serv);
            if (serv->wakeup_timer)
                events_timer_cancel(master_events, serv->wakeup_timer);
            serv->wakeup_timer = 0;
            serv->def = cf.services + i;
            serv->limit_warned = 0;
        } else {
            serv = master_serv_open(cf.services + i, 0);
        }
        *tail = serv;
        tail = &serv->next;
    }
    free(kept);
    mastercf_free(&master_cf);
    master_cf = cf;
    for (serv = master_servs; serv; serv = serv->next) {
        master_wakeup_arm(serv);
        master_serv_watch(serv);
    }
}
