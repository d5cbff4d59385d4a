/*
 * smtpd_check.c - the SMTP access restriction engine with Postfix's semantics:
 * smtpd_{client,helo,sender,relay,recipient,data,end_of_data,etrn}_restrictions,
 * smtpd_delay_reject, smtpd_restriction_classes, access(5) table actions,
 * permit/reject/defer and the defer_if_permit / defer_if_reject /
 * warn_if_reject modifiers, relay control and unknown-recipient checks.
 *
 * Lists are parsed and their tables opened by smtpd_check_init (unknown
 * restriction names are administrator errors: fatal with the main.cf
 * location). A table that cannot be opened, or a lookup that fails, answers
 * "451 4.3.0 ... Temporary lookup failure": never a permit. Every rejection is
 * logged as "QUEUEID|NOQUEUE: reject: STAGE from host[addr]: REPLY; from=<..>
 * to=<..> proto=.. helo=<..>". Input from the client (names, addresses,
 * table results) is bounded: replies are cut at 510 bytes, recursion through
 * classes and table results is limited, DNS answers are read into a fixed buffer.
 * Moderately security-sensitive: it decides who may relay.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dict.h"
#include "htable.h"
#include "match_list.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "policy_client.h"
#include "resolve.h"
#include "smtpd_check.h"
#include "stats.h"
#include "strbuf.h"

#define CHECK_DUNNO     0
#define CHECK_OK        1
#define CHECK_REJECT    2

#define CHECK_MAX_RECURSION 100         /* classes and table results inside each other */
#define CHECK_MAX_WORDS     256         /* words in a table result */
#define CHECK_MAX_SLEEP     300         /* seconds for "sleep N" */

#define NAME_CLIENT     "Client host"
#define NAME_HELO       "Helo command"
#define NAME_SENDER     "Sender address"
#define NAME_RECIPIENT  "Recipient address"
#define NAME_ETRN       "Etrn command"
#define NAME_DATA       "Data command"
#define NAME_EOD        "End-of-data"

/* A parsed restriction list. */
struct check_list {
    char **words;
    size_t count;
};

/* A table named by a restriction or a recipient validation parameter. */
struct check_table {
    struct dict_list *list;     /* NULL: could not be opened */
    char *broken;               /* the specs that failed to open, for messages */
};

static struct check_list check_stage_lists[8];
static struct htable *check_classes;    /* class name -> struct check_list */
static struct htable *check_tables;     /* table spec -> struct check_table */
static struct htable *check_policies;   /* check_policy_service spec -> policy_client */
static struct match_list *check_mynetworks;
static struct match_list *check_permit_log;
static struct check_table *check_local_rcpt, *check_virt_alias, *check_virt_mailbox,
    *check_relay_rcpt, *check_sender_login;
static int check_ready;

/* Per-session engine state. */
struct check_defer {
    int active;
    char reply[512];
};

struct check_engine {
    int recursion;
    int warn_if_reject;         /* recursion level at which it was set; 0 off */
    struct check_defer defer_if_permit, defer_if_reject;
    const char *where;          /* "RCPT", "MAIL", ... for the log */
    enum smtpd_check_stage stage;
    int rcpt_maps_checked;
    struct smtpd_check_result *result;
    char policy_instance[64];   /* check_policy_service "instance"; "" until needed */
};

struct check_ctx {
    struct smtpd_check_state *st;
    struct check_engine *e;
};

static const char *const check_stage_params[] = {
    [SMTPD_CHECK_CONNECT] = "smtpd_client_restrictions",
    [SMTPD_CHECK_HELO] = "smtpd_helo_restrictions",
    [SMTPD_CHECK_MAIL] = "smtpd_sender_restrictions",
    [SMTPD_CHECK_RCPT] = "smtpd_recipient_restrictions",
    [SMTPD_CHECK_DATA] = "smtpd_data_restrictions",
    [SMTPD_CHECK_END_OF_DATA] = "smtpd_end_of_data_restrictions",
    [SMTPD_CHECK_ETRN] = "smtpd_etrn_restrictions",
    [SMTPD_CHECK_VRFY] = "smtpd_relay_restrictions",    /* slot reused for the relay list */
};

#define RELAY_LIST (check_stage_lists[SMTPD_CHECK_VRFY])

/*
 * The restriction names: which take an argument, and which are known at all.
 */
enum check_arg { ARG_NONE, ARG_TABLE, ARG_WORD };

static const struct {
    const char *name;
    enum check_arg arg;
} check_names[] = {
    {"permit", ARG_NONE}, {"reject", ARG_NONE}, {"defer", ARG_NONE},
    {"defer_if_permit", ARG_NONE}, {"defer_if_reject", ARG_NONE},
    {"warn_if_reject", ARG_NONE}, {"sleep", ARG_WORD},
    {"permit_mynetworks", ARG_NONE}, {"permit_sasl_authenticated", ARG_NONE},
    {"reject_unauth_pipelining", ARG_NONE}, {"check_policy_service", ARG_WORD},
    {"reject_unknown_client_hostname", ARG_NONE}, {"reject_unknown_client", ARG_NONE},
    {"check_client_access", ARG_TABLE}, {"check_helo_access", ARG_TABLE},
    {"check_sender_access", ARG_TABLE}, {"check_recipient_access", ARG_TABLE},
    {"check_etrn_access", ARG_TABLE},
    {"reject_invalid_helo_hostname", ARG_NONE}, {"reject_invalid_hostname", ARG_NONE},
    {"reject_non_fqdn_helo_hostname", ARG_NONE}, {"reject_non_fqdn_hostname", ARG_NONE},
    {"reject_non_fqdn_sender", ARG_NONE}, {"reject_non_fqdn_recipient", ARG_NONE},
    {"reject_unknown_sender_domain", ARG_NONE}, {"reject_unknown_recipient_domain", ARG_NONE},
    {"reject_unlisted_sender", ARG_NONE}, {"reject_unlisted_recipient", ARG_NONE},
    {"check_recipient_maps", ARG_NONE},
    {"permit_auth_destination", ARG_NONE}, {"reject_unauth_destination", ARG_NONE},
    {"defer_unauth_destination", ARG_NONE}, {"reject_multi_recipient_bounce", ARG_NONE},
    {"reject_sender_login_mismatch", ARG_NONE},
    {"reject_authenticated_sender_login_mismatch", ARG_NONE},
    {"reject_known_sender_login_mismatch", ARG_NONE},
    {"reject_unauthenticated_sender_login_mismatch", ARG_NONE},
};

static int check_name_index(const char *word)
{
    size_t i;

    for (i = 0; i < sizeof(check_names) / sizeof(check_names[0]); i++)
        if (strcasecmp(word, check_names[i].name) == 0)
            return (int) i;
    return -1;
}

/*
 * Initialization.
 */

static noreturn void check_config_fatal(const char *param, const char *fmt, const char *arg)
{
    struct strbuf where;

    strbuf_init(&where, 64, 4096);
    config_location(param, &where);
    msg_fatal("%s: parameter %s: %s%s", where.data, param, fmt, arg);
}

/* Opens a table list leniently: tables that open are used, the others make
 * every lookup that reaches them a temporary failure (see check_maps_find). */
static struct check_table *check_table_open(const char *param, const char *spec)
{
    struct check_table *t;
    struct strbuf good, err, bad;
    char *copy, *cp, *w, type[64];
    int unbalanced;
    size_t n;

    if (check_tables && (t = htable_find(check_tables, spec)) != NULL)
        return t;
    t = xcalloc(1, sizeof(*t));
    strbuf_init(&good, 128, STRBUF_UNLIMITED);
    strbuf_init(&bad, 128, STRBUF_UNLIMITED);
    strbuf_init(&err, 128, 64 * 1024);
    copy = cp = xstrdup(spec);
    while ((w = match_list_next_word(&cp, &unbalanced)) != NULL) {
        struct dict_list *one;

        /* proxy: (proxymap) is transparent here: the lookup happens in smtpd. */
        while (strncmp(w, "proxy:", 6) == 0)
            w += 6;
        n = strcspn(w, ":");
        if (w[n] != ':' || n >= sizeof(type))
            check_config_fatal(param, "bad table name: ", w);
        memcpy(type, w, n);
        type[n] = 0;
        if (!dict_type_known(type))
            check_config_fatal(param, "unsupported dictionary type: ", w);
        strbuf_reset(&err);
        if ((one = dict_list_open(w, DICT_FLAG_FOLD_KEY, &err)) == NULL) {
            msg_warn("%s: table %s is unavailable (%s); its lookups will be deferred", param, w,
                     err.data);
            strbuf_printf(&bad, "%s%s", bad.len ? " " : "", w);
        } else {
            dict_list_close(&one);
            strbuf_printf(&good, "%s%s", good.len ? ", " : "", w);
        }
    }
    if (unbalanced)
        check_config_fatal(param, "unbalanced \"{\" or \"}\" in ", spec);
    free(copy);
    if (good.len) {
        strbuf_reset(&err);
        if ((t->list = dict_list_open(good.data, DICT_FLAG_FOLD_KEY, &err)) == NULL)
            check_config_fatal(param, "", err.data);
    }
    if (bad.len)
        t->broken = strbuf_steal(&bad);
    strbuf_release(&good);
    strbuf_release(&bad);
    strbuf_release(&err);
    if (check_tables == NULL)
        check_tables = htable_new(16);
    (void) htable_insert(check_tables, spec, t, NULL);
    return t;
}

/* The policy client for a check_policy_service argument, made once per spec
 * and kept for the life of the process so its connection is reused. param
 * non-NULL: a bad spec is fatal (startup); NULL: returns NULL after a warning. */
static struct policy_client *check_policy_open(const char *param, const char *spec)
{
    struct policy_client *pc;
    struct strbuf err;

    if (check_policies == NULL)
        check_policies = htable_new(4);
    if ((pc = htable_find(check_policies, spec)) != NULL)
        return pc;
    strbuf_init(&err, 128, 4096);
    if ((pc = policy_client_open(spec, &err)) == NULL) {
        if (param)
            check_config_fatal(param, "check_policy_service: ", err.data);
        msg_warn("check_policy_service %s: %s", spec, err.data);
    } else if (htable_insert(check_policies, spec, pc, NULL) != 0) {
        policy_client_free(&pc);
        msg_warn("check_policy_service %s: too many policy services", spec);
    }
    strbuf_release(&err);
    return pc;
}

static void check_list_parse(const char *param, const char *value, struct check_list *list,
                             int in_class)
{
    char *copy = xstrdup(value ? value : ""), *cp = copy, *w;
    int bad, idx;

    list->words = NULL;
    list->count = 0;
    while ((w = match_list_next_word(&cp, &bad)) != NULL) {
        list->words = xreallocarray(list->words, list->count + 1, sizeof(char *));
        list->words[list->count++] = xstrdup(w);
        if ((idx = check_name_index(w)) >= 0) {
            if (check_names[idx].arg == ARG_NONE)
                continue;
            if ((w = match_list_next_word(&cp, &bad)) == NULL)
                check_config_fatal(param, "missing argument after ", check_names[idx].name);
            if (check_names[idx].arg == ARG_TABLE)
                (void) check_table_open(param, w);
            else if (strcasecmp(check_names[idx].name, "check_policy_service") == 0)
                (void) check_policy_open(param, w);
            list->words = xreallocarray(list->words, list->count + 1, sizeof(char *));
            list->words[list->count++] = xstrdup(w);
        } else if (check_classes == NULL || htable_find(check_classes, w) == NULL) {
            (void) in_class;
            check_config_fatal(param, "unknown restriction: ", w);
        }
    }
    if (bad)
        check_config_fatal(param, "unbalanced \"{\" or \"}\" in ", value);
    free(copy);
}

static void check_classes_init(void)
{
    char *copy = xstrdup(var_smtpd_restriction_classes), *cp = copy, *w;
    int bad;

    check_classes = htable_new(8);
    /* Register every name first, so classes may name each other. */
    while ((w = match_list_next_word(&cp, &bad)) != NULL) {
        struct check_list *l = xcalloc(1, sizeof(*l));

        if (check_name_index(w) >= 0)
            check_config_fatal("smtpd_restriction_classes", "class name is a restriction: ", w);
        if (htable_insert(check_classes, w, l, NULL) != 0)
            free(l);
    }
    free(copy);
    copy = cp = xstrdup(var_smtpd_restriction_classes);
    while ((w = match_list_next_word(&cp, &bad)) != NULL) {
        struct check_list *l = htable_find(check_classes, w);
        const char *value = config_lookup(w);

        if (l->words)
            continue;
        if (value == NULL)
            check_config_fatal("smtpd_restriction_classes", "restriction class is not defined: ",
                               w);
        check_list_parse(w, value, l, 1);
    }
    free(copy);
}

static struct match_list *check_open_match(const char *param, enum match_list_kind kind,
                                           const char *value)
{
    struct match_list *l;
    struct strbuf err;

    strbuf_init(&err, 128, 64 * 1024);
    if ((l = match_list_open(param, kind, value ? value : "", &err)) == NULL)
        check_config_fatal(param, "", err.data);
    strbuf_release(&err);
    return l;
}

static struct check_table *check_maps_init(const char *param, const char *value)
{
    return value && *value ? check_table_open(param, value) : NULL;
}

void smtpd_check_init(void)
{
    int s;

    if (check_ready)
        return;
    resolve_init();
    check_mynetworks = check_open_match("mynetworks", MATCH_LIST_ADDR, var_mynetworks);
    check_permit_log = check_open_match("smtpd_log_access_permit_actions", MATCH_LIST_STRING,
                                        var_smtpd_log_access_permit_actions);
    check_classes_init();
    for (s = SMTPD_CHECK_CONNECT; s <= SMTPD_CHECK_VRFY; s++) {
        const char *param = check_stage_params[s];

        check_list_parse(param, config_lookup(param), &check_stage_lists[s], 0);
    }
    check_local_rcpt = check_maps_init("local_recipient_maps", var_local_recipient_maps);
    check_virt_alias = check_maps_init("virtual_alias_maps", var_virtual_alias_maps);
    check_virt_mailbox = check_maps_init("virtual_mailbox_maps", var_virtual_mailbox_maps);
    check_relay_rcpt = check_maps_init("relay_recipient_maps", var_relay_recipient_maps);
    check_sender_login = check_maps_init("smtpd_sender_login_maps", var_smtpd_sender_login_maps);
    check_ready = 1;
}

void smtpd_check_session_begin(struct smtpd_check_state *state)
{
    if (!check_ready)
        smtpd_check_init();
    state->engine = xcalloc(1, sizeof(struct check_engine));
    state->hold = state->discard = 0;
    state->hold_reason[0] = 0;
}

void smtpd_check_session_end(struct smtpd_check_state *state)
{
    free(state->engine);
    state->engine = NULL;
}

void smtpd_check_reset_transaction(struct smtpd_check_state *state)
{
    struct check_engine *e = state->engine;

    state->hold = state->discard = 0;
    state->hold_reason[0] = 0;
    if (state->prepend)
        strbuf_reset(state->prepend);
    if (e) {
        e->rcpt_maps_checked = 0;
        e->policy_instance[0] = 0;
    }
}

int smtpd_check_is_our_domain(const char *domain)
{
    if (domain == NULL || *domain == 0)
        return 0;
    return resolve_is_our_domain(domain);
}

int smtpd_check_client_in_mynetworks(const char *client_addr)
{
    if (!check_ready)
        smtpd_check_init();
    return match_list_addr(check_mynetworks, client_addr);
}

/*
 * Logging and replies.
 */

/* Copies src into dst[size], cut short when it does not fit. */
static void check_copy(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);

    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static void check_log(struct check_ctx *c, const char *whatsup, const char *text)
{
    const struct smtpd_check_state *st = c->st;
    struct strbuf line;

    strbuf_init(&line, 256, 8192);
    strbuf_printf(&line, "%s: %s: %s from %s[%s]: %s;", st->queue_id ? st->queue_id : "NOQUEUE",
                  whatsup, c->e->where, st->client_name ? st->client_name : "unknown",
                  st->client_addr ? st->client_addr : "unknown", text);
    if (st->sender)
        strbuf_printf(&line, " from=<%s>", st->sender);
    if (st->recipient && (c->e->stage == SMTPD_CHECK_RCPT || c->e->stage == SMTPD_CHECK_VRFY))
        strbuf_printf(&line, " to=<%s>", st->recipient);
    if (st->protocol)
        strbuf_printf(&line, " proto=%s", st->protocol);
    if (st->helo_name)
        strbuf_printf(&line, " helo=<%s>", st->helo_name);
    msg_info("%s", line.data);
    strbuf_release(&line);
    if (strcmp(whatsup, "reject") == 0)
        stats_count_reject(c->e->where);
}

/* Formats "CODE DSN text" into buf (size 512): printable, at most 510 bytes,
 * the DSN class digit equal to the reply code's. */
static void check_format(char *buf, int code, const char *dsn, const char *fmt, va_list ap)
{
    char text[1024];
    size_t i;

    (void) vsnprintf(text, sizeof(text), fmt, ap);
    if (code < 400 || code > 599) {
        msg_warn("SMTP reply code configuration error: %d %s %s", code, dsn, text);
        snprintf(buf, 512, "450 4.7.1 Service unavailable");
        return;
    }
    if (snprintf(buf, 512, "%d %s %s", code, dsn, text) >= 511)
        buf[510] = 0;
    for (i = 0; buf[i]; i++)
        if (!isprint((unsigned char) buf[i]))
            buf[i] = ' ';
    buf[4] = buf[0];
}

/* Rejects (or, with warn_if_reject, only logs) with a formatted reply.
 * soft: whether warn_if_reject may turn it into a warning (not for errors). */
static int check_reject(struct check_ctx *c, int soft, int code, const char *dsn,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int check_reject(struct check_ctx *c, int soft, int code, const char *dsn,
                        const char *fmt, ...)
{
    struct check_engine *e = c->e;
    char reply[512];
    va_list ap;

    va_start(ap, fmt);
    check_format(reply, code, dsn, fmt, ap);
    va_end(ap);
    if (soft && e->warn_if_reject) {
        check_log(c, "reject_warning", reply);
        return CHECK_DUNNO;
    }
    /* An earlier temporary problem might have allowed the mail: defer instead. */
    if (e->defer_if_reject.active && reply[0] == '5') {
        check_copy(reply, sizeof(reply), e->defer_if_reject.reply);
        e->defer_if_reject.active = 0;
    }
    check_log(c, "reject", reply);
    e->result->code = atoi(reply);
    check_copy(e->result->reply, sizeof(e->result->reply), reply);
    return CHECK_REJECT;
}

/* Remembers the first reason for a later change of mind. */
static int check_defer_if(struct check_defer *d, int code, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int check_defer_if(struct check_defer *d, int code, const char *dsn, const char *fmt, ...)
{
    va_list ap;

    if (!d->active) {
        va_start(ap, fmt);
        check_format(d->reply, code, dsn, fmt, ap);
        va_end(ap);
        d->active = 1;
    }
    return CHECK_DUNNO;
}

/* DEFER_IF_PERMIT, except under warn_if_reject where it is logged at once. */
static int check_defer_if_permit(struct check_ctx *c, int code, const char *dsn, const char *text)
{
    if (c->e->warn_if_reject)
        return check_reject(c, 1, code, dsn, "%s", text);
    return check_defer_if(&c->e->defer_if_permit, code, dsn, "%s", text);
}

static int check_dict_retry(struct check_ctx *c, const char *reply_name)
{
    return check_reject(c, 0, 451, "4.3.0", "<%s>: Temporary lookup failure", reply_name);
}

static int check_server_error(struct check_ctx *c)
{
    return check_reject(c, 0, 451, "4.3.5", "Server configuration error");
}

static int check_permit(struct check_ctx *c, const char *action, const char *reply_class,
                        const char *reply_name, const char *extra)
{
    char text[600];

    if (!c->e->defer_if_permit.active && match_list_string(check_permit_log, action) == 1) {
        snprintf(text, sizeof(text), "action=%s for %s=%s%s%s", action, reply_class, reply_name,
                 extra ? " " : "", extra ? extra : "");
        check_log(c, "permit", text);
    }
    return CHECK_OK;
}

/*
 * Access tables.
 */

static int check_list_run(struct check_ctx *c, char **words, size_t count,
                          const char *reply_name, const char *reply_class);

/* "4.7.1 text" -> dsn "4.7.1", rest "text"; else the default and all of text. */
static const char *check_dsn_split(const char *text, const char *def, char *dsn, size_t size)
{
    const char *p = text;
    size_t n;

    if ((p[0] == '4' || p[0] == '5') && p[1] == '.') {
        n = 2 + strspn(p + 2, "0123456789");
        if (n > 2 && n <= 5 && p[n] == '.') {
            size_t m = strspn(p + n + 1, "0123456789");

            if (m > 0 && m <= 3 && (p[n + 1 + m] == ' ' || p[n + 1 + m] == 0)) {
                snprintf(dsn, size, "%.*s", (int) (n + 1 + m), p);
                p += n + 1 + m;
                while (*p == ' ' || *p == '\t')
                    p++;
                return p;
            }
        }
    }
    snprintf(dsn, size, "%s", def);
    return text;
}

/* A "Name: value" header line for PREPEND. */
static int check_is_header(const char *text)
{
    const char *p = text;

    while (*p && *p != ':' && *p > ' ' && *p < 127)
        p++;
    return p > text && *p == ':';
}

/* Acts on one table result (access(5)). */
static int check_table_result(struct check_ctx *c, const char *table, const char *value,
                              const char *reply_name, const char *reply_class)
{
    size_t cmd_len = strcspn(value, " \t");
    const char *text = value + cmd_len;
    char dsn[16];
    char cmd[32];
    int r;

    while (*text == ' ' || *text == '\t')
        text++;
    snprintf(cmd, sizeof(cmd), "%.*s", (int) (cmd_len < sizeof(cmd) ? cmd_len : 0), value);
#define IS(x) (strcasecmp(cmd, (x)) == 0)
    if (IS("DUNNO"))
        return CHECK_DUNNO;
    if (IS("OK") || IS("RELAY"))
        return check_permit(c, cmd, reply_class, reply_name, NULL);
    if (IS("REJECT") || IS("DEFER")) {
        text = check_dsn_split(text, IS("REJECT") ? "5.7.1" : "4.7.1", dsn, sizeof(dsn));
        return check_reject(c, 1, IS("REJECT") ? (int) var_access_map_reject_code
                            : (int) var_access_map_defer_code, dsn, "<%s>: %s rejected: %s",
                            reply_name, reply_class, *text ? text : "Access denied");
    }
    if (IS("DEFER_IF_PERMIT") || IS("DEFER_IF_REJECT")) {
        text = check_dsn_split(text, "4.7.1", dsn, sizeof(dsn));
        if (IS("DEFER_IF_PERMIT")) {
            char t[600];

            snprintf(t, sizeof(t), "<%s>: %s rejected: %s", reply_name, reply_class,
                     *text ? text : "Service is unavailable");
            return check_defer_if_permit(c, (int) var_access_map_defer_code, dsn, t);
        }
        return check_defer_if(&c->e->defer_if_reject, (int) var_access_map_defer_code, dsn,
                              "<%s>: %s rejected: %s", reply_name, reply_class,
                              *text ? text : "Service is unavailable");
    }
    if (IS("WARN") || IS("INFO")) {
        check_log(c, IS("WARN") ? "warn" : "info", text);
        if (c->st->warnings && IS("WARN"))
            strbuf_printf(c->st->warnings, "%s\n", text);
        return CHECK_DUNNO;
    }
    if (IS("HOLD") || IS("DISCARD")) {
        char t[600];

        snprintf(t, sizeof(t), "<%s>: %s %s", reply_name, reply_class,
                 *text ? text : IS("HOLD") ? "triggers HOLD action" : "triggers DISCARD action");
        check_log(c, IS("HOLD") ? "hold" : "discard", t);
        if (IS("HOLD")) {
            c->st->hold = 1;
            check_copy(c->st->hold_reason, sizeof(c->st->hold_reason), t);
            return CHECK_DUNNO;
        }
        c->st->discard = 1;
        return check_permit(c, cmd, reply_class, reply_name, NULL);
    }
    if (IS("PREPEND")) {
        if (c->e->stage == SMTPD_CHECK_END_OF_DATA) {
            msg_warn("access table %s: action PREPEND must be used before "
                     "smtpd_end_of_data_restrictions", table);
        } else if (!check_is_header(text)) {
            msg_warn("access table %s entry \"%s\" requires header: text", table, value);
        } else if (c->st->prepend) {
            strbuf_printf(c->st->prepend, "%s\n", text);
        }
        return CHECK_DUNNO;
    }
    if (value[strspn(value, "0123456789")] == 0 && *value)
        return check_permit(c, "OK", reply_class, reply_name, NULL);
    if (cmd_len == 3 && *text && (value[0] == '4' || value[0] == '5')
        && isdigit((unsigned char) value[1]) && isdigit((unsigned char) value[2])) {
        char def[6] = "5.7.1";

        def[0] = value[0];
        text = check_dsn_split(text, def, dsn, sizeof(dsn));
        return check_reject(c, 1, atoi(value), dsn, "<%s>: %s rejected: %s", reply_name,
                            reply_class, *text ? text : "Access denied");
    }
    if (strchr(value, ':')) {
        msg_warn("access table %s has entry with lookup table: %s", table, value);
        msg_warn("do not specify lookup tables inside SMTPD access maps");
        msg_warn("define a restriction class and specify its name instead.");
        return check_server_error(c);
    }
    /* Anything else is a restriction list, e.g. a restriction class name. */
    {
        char *copy = xstrdup(value), *cp = copy, *w, *words[CHECK_MAX_WORDS];
        size_t n = 0;
        int bad;

        while ((w = match_list_next_word(&cp, &bad)) != NULL && n < CHECK_MAX_WORDS)
            words[n++] = w;
        if (n == 0) {
            msg_warn("access table %s entry has empty value", table);
            r = CHECK_OK;
        } else {
            r = check_list_run(c, words, n, reply_name, reply_class);
        }
        free(copy);
        return r;
    }
#undef IS
}

/* A table's value for key through one of the access lookup orders. */
enum check_lookup { LOOKUP_ADDRESS, LOOKUP_DOMAIN, LOOKUP_EXACT };

static int check_access(struct check_ctx *c, const char *spec, const char *key,
                        enum check_lookup how, const char *reply_name, const char *reply_class,
                        int *found)
{
    struct check_table *t = htable_find(check_tables, spec);
    const char *value = NULL;
    char *copy;
    int parent = match_list_parent_style("smtpd_access_maps");

    *found = 0;
    if (t == NULL) {
        msg_warn("table %s was not opened at startup: name it in a restriction list", spec);
        return check_server_error(c);
    }
    if (t->list) {
        copy = xstrdup(key);
        switch (how) {
        case LOOKUP_ADDRESS:
            value = dict_addr_access_lookup(t->list, copy, var_recipient_delimiter, parent);
            break;
        case LOOKUP_DOMAIN:
            value = dict_addr_domain_lookup(t->list, copy, parent);
            break;
        case LOOKUP_EXACT:
            value = dict_list_get(t->list, copy);
            break;
        }
        free(copy);
        if (value == NULL && dict_list_error(t->list) != DICT_ERR_NONE)
            return check_dict_retry(c, reply_name);
        if (value) {
            char *v = xstrdup(value);
            int r;

            *found = 1;
            r = check_table_result(c, spec, v, reply_name, reply_class);
            free(v);
            return r;
        }
    }
    if (t->broken) {
        msg_warn("table %s is unavailable", t->broken);
        return check_dict_retry(c, reply_name);
    }
    return CHECK_DUNNO;
}

/* Client: host name and parents, then the address and its shorter forms
 * ("1.2.3.4", "1.2.3", "1.2", "1"; IPv6 at each ':'), parents in fixed tables. */
static int check_client_access(struct check_ctx *c, const char *spec, const char *namaddr)
{
    const struct smtpd_check_state *st = c->st;
    struct check_table *t;
    char addr[128];
    char *end;
    int r, found;
    const char *value;

    if (st->client_name && strcmp(st->client_name, "unknown") != 0) {
        r = check_access(c, spec, st->client_name, LOOKUP_DOMAIN, namaddr, NAME_CLIENT, &found);
        if (r != CHECK_DUNNO || found)
            return r;
    }
    if (st->client_addr == NULL)
        return CHECK_DUNNO;
    r = check_access(c, spec, st->client_addr, LOOKUP_EXACT, namaddr, NAME_CLIENT, &found);
    if (r != CHECK_DUNNO || found)
        return r;
    if ((t = htable_find(check_tables, spec)) == NULL || t->list == NULL)
        return CHECK_DUNNO;
    check_copy(addr, sizeof(addr), st->client_addr);
    while ((end = strrchr(addr, strchr(addr, ':') ? ':' : '.')) != NULL && end > addr) {
        *end = 0;
        if ((value = dict_list_get_fixed(t->list, addr)) != NULL) {
            char *v = xstrdup(value);

            r = check_table_result(c, spec, v, namaddr, NAME_CLIENT);
            free(v);
            return r;
        }
        if (dict_list_error(t->list) != DICT_ERR_NONE)
            return check_dict_retry(c, namaddr);
    }
    return CHECK_DUNNO;
}

/*
 * Recipient (and sender) validation: the tables of the address class.
 */

static int check_maps_find(struct check_table *t, const char *addr, int local)
{
    struct strbuf ext;
    const char *v;

    if (t == NULL)
        return 0;
    if (t->list) {
        strbuf_init(&ext, 32, 4096);
        v = dict_addr_lookup(t->list, addr, var_recipient_delimiter, local ? DICT_ADDR_LOCAL : 0,
                             &ext);
        strbuf_release(&ext);
        if (v)
            return 1;
        if (dict_list_error(t->list) != DICT_ERR_NONE)
            return -1;
    }
    return t->broken ? -1 : 0;
}

/* Whether the local part of addr is name (case-insensitive), "name@...". */
static int check_local_is(const char *addr, const char *name)
{
    size_t n = strlen(name);

    return strncasecmp(addr, name, n) == 0 && addr[n] == '@';
}

static int check_addr_maps(struct check_ctx *c, const char *addr, const char *reply_class)
{
    struct resolve_reply r;
    int sender = strcmp(reply_class, NAME_SENDER) == 0, found, ret = CHECK_DUNNO;
    const char *dsn = sender ? "5.1.0" : "5.1.1", *rcpt;

    resolve_reply_init(&r);
    if (resolve_addr(addr, &r) < 0) {
        ret = (r.flags & RESOLVE_FLAG_FAIL) ? check_dict_retry(c, addr) : CHECK_DUNNO;
        goto out;
    }
    rcpt = r.recipient.data;
    if ((found = check_maps_find(check_virt_alias, rcpt, r.cls == RESOLVE_CLASS_LOCAL)) != 0) {
        ret = found < 0 ? check_dict_retry(c, addr) : CHECK_DUNNO;
        goto out;
    }
    if (r.flags & RESOLVE_FLAG_ERROR_TRANSPORT) {
        char d[16];
        const char *text = check_dsn_split(r.nexthop.data, dsn, d, sizeof(d));

        ret = check_reject(c, 1, r.cls == RESOLVE_CLASS_ALIAS
                           ? (int) var_unknown_virtual_alias_reject_code : 550, d,
                           "<%s>: %s rejected: %s", addr, reply_class, text);
        goto out;
    }
    switch (r.cls) {
    case RESOLVE_CLASS_LOCAL:
        if (check_local_rcpt == NULL || check_local_is(rcpt, var_double_bounce_sender)
            || check_local_is(rcpt, "postmaster") || check_local_is(rcpt, "mailer-daemon"))
            break;
        if ((found = check_maps_find(check_local_rcpt, rcpt, 1)) < 0)
            ret = check_dict_retry(c, addr);
        else if (found == 0)
            ret = check_reject(c, 1, (int) var_unknown_local_recipient_reject_code, dsn,
                               "<%s>: %s rejected: User unknown%s", addr, reply_class,
                               var_show_user_unknown_table_name ? " in local recipient table"
                               : "");
        break;
    case RESOLVE_CLASS_VIRTUAL:
        if (check_virt_mailbox == NULL)
            break;
        if ((found = check_maps_find(check_virt_mailbox, rcpt, 0)) < 0)
            ret = check_dict_retry(c, addr);
        else if (found == 0)
            ret = check_reject(c, 1, (int) var_unknown_virtual_mailbox_reject_code, dsn,
                               "<%s>: %s rejected: User unknown%s", addr, reply_class,
                               var_show_user_unknown_table_name ? " in virtual mailbox table"
                               : "");
        break;
    case RESOLVE_CLASS_RELAY:
        if (check_relay_rcpt == NULL)
            break;
        if ((found = check_maps_find(check_relay_rcpt, rcpt, 0)) < 0)
            ret = check_dict_retry(c, addr);
        else if (found == 0)
            ret = check_reject(c, 1, (int) var_unknown_relay_recipient_reject_code, dsn,
                               "<%s>: %s rejected: User unknown%s", addr, reply_class,
                               var_show_user_unknown_table_name ? " in relay recipient table"
                               : "");
        break;
    default:
        break;
    }
out:
    resolve_reply_free(&r);
    return ret;
}

/*
 * SASL login names and sender addresses (smtpd_sender_login_maps).
 */

/* The owners of sender (comma or space separated login names): 1 with the
 * list in owners, 0 when the address has none, -1 when a lookup failed. The key
 * is the resolved address, looked up in the address order of dict_addr.h. */
static int check_sender_owners(const char *sender, struct strbuf *owners)
{
    struct resolve_reply r;
    struct strbuf ext;
    const char *key = sender, *v = NULL;
    int local = 0, ret = 0;

    resolve_reply_init(&r);
    if (resolve_addr(sender, &r) < 0) {
        if (r.flags & RESOLVE_FLAG_FAIL) {
            resolve_reply_free(&r);
            return -1;
        }
    } else {
        key = r.recipient.data;
        local = r.cls == RESOLVE_CLASS_LOCAL;
    }
    if (check_sender_login->list) {
        strbuf_init(&ext, 32, 4096);
        v = dict_addr_lookup(check_sender_login->list, key, var_recipient_delimiter,
                             local ? DICT_ADDR_LOCAL : 0, &ext);
        strbuf_release(&ext);
        if (v)
            ret = strbuf_set(owners, v) < 0 ? -1 : 1;
        else if (dict_list_error(check_sender_login->list) != DICT_ERR_NONE)
            ret = -1;
    }
    if (v == NULL && ret == 0 && check_sender_login->broken)
        ret = -1;
    resolve_reply_free(&r);
    return ret;
}

/* Whether name is one of the owners (case-insensitive, as Postfix). */
static int check_owner_listed(const char *owners, const char *name)
{
    char *copy = xstrdup(owners), *w, *save = NULL;
    int found = 0;

    for (w = strtok_r(copy, ", \t\r\n", &save); w && !found; w = strtok_r(NULL, ", \t\r\n", &save))
        found = strcasecmp(w, name) == 0;
    free(copy);
    return found;
}

/*
 * reject_*_sender_login_mismatch. authenticated: a logged-in client must own
 * the sender (unknown_ok: unless the address has no owner at all, as
 * reject_known_sender_login_mismatch); unauthenticated: a sender that has an
 * owner needs a login. The null sender is never checked.
 */
static int check_login_mismatch(struct check_ctx *c, const char *sender, int authenticated,
                                int unauthenticated, int unknown_ok)
{
    const struct smtpd_check_state *st = c->st;
    int logged_in = st->sasl_username && *st->sasl_username, r, ret = CHECK_DUNNO;
    struct strbuf owners;

    if (check_sender_login == NULL || sender == NULL || *sender == 0
        || (logged_in ? !authenticated : !unauthenticated))
        return CHECK_DUNNO;
    strbuf_init(&owners, 64, DICT_VALUE_MAX);
    if ((r = check_sender_owners(sender, &owners)) < 0)
        ret = check_dict_retry(c, sender);
    else if (logged_in && r == 0 && !unknown_ok)
        ret = check_reject(c, 1, 553, "5.7.1", "<%s>: Sender address rejected: not owned by "
                           "user %s", sender, st->sasl_username);
    else if (logged_in && r == 1 && !check_owner_listed(owners.data, st->sasl_username))
        ret = check_reject(c, 1, 553, "5.7.1", "<%s>: Sender address rejected: not owned by "
                           "user %s", sender, st->sasl_username);
    else if (!logged_in && r == 1)
        ret = check_reject(c, 1, 553, "5.7.1", "<%s>: Sender address rejected: not logged in",
                           sender);
    strbuf_release(&owners);
    return ret;
}

/*
 * Relay control.
 */

static int check_auth_destination(struct check_ctx *c, const char *rcpt, int *status)
{
    struct resolve_reply r;
    int ret = CHECK_DUNNO;

    *status = CHECK_DUNNO;
    resolve_reply_init(&r);
    if (resolve_addr(rcpt, &r) < 0) {
        if (r.flags & RESOLVE_FLAG_FAIL)
            *status = check_dict_retry(c, rcpt);
    } else if (!var_allow_untrusted_routing && (r.flags & RESOLVE_FLAG_ROUTED)) {
        ret = CHECK_DUNNO;
    } else if (r.cls != RESOLVE_CLASS_DEFAULT) {
        ret = CHECK_OK;
    }
    resolve_reply_free(&r);
    return ret;
}

static int check_unauth_destination(struct check_ctx *c, const char *rcpt, int code,
                                    const char *dsn)
{
    int status;

    if (check_auth_destination(c, rcpt, &status) == CHECK_OK)
        return CHECK_DUNNO;
    if (status != CHECK_DUNNO)
        return status;
    return check_reject(c, 1, code, dsn, "<%s>: Relay access denied", rcpt);
}

/*
 * DNS: does a domain have MX, A or AAAA records? 1 yes, 0 no, -1 try later.
 */

static void check_dns_servers(res_state rs)
{
    char *copy, *cp, *w;
    int bad, n = 0;

    if (var_dns_servers == NULL || *var_dns_servers == 0)
        return;
    copy = cp = xstrdup(var_dns_servers);
    while ((w = match_list_next_word(&cp, &bad)) != NULL && n < MAXNS) {
        struct sockaddr_in sin;
        char host[64];
        const char *colon = strrchr(w, ':');
        long port = 53;

        memset(&sin, 0, sizeof(sin));
        snprintf(host, sizeof(host), "%.*s", (int) (colon ? colon - w : (long) strlen(w)), w);
        if (colon)
            port = strtol(colon + 1, NULL, 10);
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 || port <= 0 || port > 65535) {
            msg_warn("dns_servers: ignoring \"%s\": not an IPv4 address with an optional port", w);
            continue;
        }
        sin.sin_family = AF_INET;
        sin.sin_port = htons((unsigned short) port);
        rs->nsaddr_list[n++] = sin;
    }
    if (n > 0)
        rs->nscount = n;
    free(copy);
}

static int check_dns_has(res_state rs, const char *name, int type)
{
    unsigned char answer[4096];
    int len;

    len = res_nquery(rs, name, ns_c_in, type, answer, sizeof(answer));
    if (len >= (int) sizeof(HEADER)) {
        const HEADER *h = (const HEADER *) answer;

        return ntohs(h->ancount) > 0;
    }
    switch (rs->res_h_errno) {
    case HOST_NOT_FOUND:
        return -2;              /* the name does not exist at all */
    case NO_DATA:
        return 0;
    default:
        return -1;
    }
}

static int check_dns_domain(const char *domain)
{
    struct __res_state rs;
    int r, types[] = {ns_t_mx, ns_t_a, ns_t_aaaa};
    size_t i;
    int ret = 0;

    memset(&rs, 0, sizeof(rs));
    if (res_ninit(&rs) != 0)
        return -1;
    check_dns_servers(&rs);
    rs.retrans = 5;
    rs.retry = 2;
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        r = check_dns_has(&rs, domain, types[i]);
        if (r == 1 || r == -1 || r == -2) {
            ret = r == -2 ? 0 : r;
            break;
        }
    }
    res_nclose(&rs);
    return ret;
}

static int check_unknown_domain(struct check_ctx *c, const char *addr, const char *reply_class)
{
    const char *at = strrchr(addr, '@'), *domain;
    int sender = strcmp(reply_class, NAME_SENDER) == 0, cls, r;
    char text[600];

    if (at == NULL || at[1] == 0 || at[1] == '[')
        return CHECK_DUNNO;
    domain = at + 1;
    if ((cls = resolve_domain_class(domain)) < 0)
        return check_dict_retry(c, addr);
    if (cls != RESOLVE_CLASS_DEFAULT)
        return CHECK_DUNNO;
    if ((r = check_dns_domain(domain)) > 0)
        return CHECK_DUNNO;
    if (r == 0)
        return check_reject(c, 1, (int) var_unknown_address_reject_code,
                            sender ? "4.1.8" : "4.1.2", "<%s>: %s rejected: Domain not found",
                            addr, reply_class);
    snprintf(text, sizeof(text), "<%s>: %s rejected: Domain not found", addr, reply_class);
    return check_defer_if_permit(c, 450, sender ? "4.1.8" : "4.1.2", text);
}

/* Postfix's valid_hostname: labels of letters, digits, '-' and '_', 1-63 bytes,
 * no '-' at either end, at most 255 bytes, not all numeric. */
static int check_valid_hostname(const char *name)
{
    size_t label = 0, len = strlen(name);
    int non_numeric = 0;
    const char *p;

    if (len == 0 || len > 255)
        return 0;
    for (p = name; *p; p++) {
        unsigned char ch = (unsigned char) *p;

        if (ch == '.') {
            if (label == 0 || p[-1] == '-' || p[1] == 0)
                return 0;
            label = 0;
        } else if (isalnum(ch) || ch == '-' || ch == '_') {
            if (label == 0 && ch == '-')
                return 0;
            if (++label > 63)
                return 0;
            if (!isdigit(ch))
                non_numeric = 1;
        } else {
            return 0;
        }
    }
    return p[-1] != '-' && non_numeric;
}

static int check_helo_literal(const char *helo)
{
    unsigned char bin[16];
    int fam;
    size_t len = strlen(helo);

    return len > 2 && helo[0] == '[' && helo[len - 1] == ']'
        && match_list_parse_addr(helo, &fam, bin) == 0;
}

static int check_non_fqdn_addr(struct check_ctx *c, const char *addr, const char *reply_class)
{
    const char *at = strrchr(addr, '@');

    if (at && at[1] && (at[1] == '[' || strchr(at + 1, '.')))
        return CHECK_DUNNO;
    return check_reject(c, 1, (int) var_non_fqdn_reject_code, "4.5.2",
                        "<%s>: %s rejected: need fully-qualified address", addr, reply_class);
}

/*
 * Policy delegation (Postfix's SMTPD_POLICY_README): the session's
 * attributes go to the policy service, its action is acted on like an
 * access table result; a service that fails gives its default action.
 */

/* Postfix's "instance": one value for all requests of a mail transaction. */
static const char *check_policy_instance(struct check_engine *e)
{
    static unsigned seqno;
    struct timespec ts;

    if (e->policy_instance[0] == 0) {
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(e->policy_instance, sizeof(e->policy_instance), "%x.%llx.%lx.%x",
                 (unsigned) getpid(), (unsigned long long) ts.tv_sec, ts.tv_nsec / 1000,
                 ++seqno);
    }
    return e->policy_instance;
}

static int check_policy(struct check_ctx *c, const char *spec, const char *reply_name,
                        const char *reply_class)
{
    const struct smtpd_check_state *st = c->st;
    struct check_engine *e = c->e;
    struct policy_client *pc = check_policy_open(NULL, spec);
    int data_stage = e->stage == SMTPD_CHECK_DATA || e->stage == SMTPD_CHECK_END_OF_DATA;
    char port[24], server_port[24], count[24], size[32], keysize[24], table[600];
    struct strbuf action, why;
    int r;

    if (pc == NULL)
        return check_server_error(c);
    snprintf(port, sizeof(port), "%d", st->client_port);
    if (st->server_port > 0)
        snprintf(server_port, sizeof(server_port), "%d", st->server_port);
    else
        server_port[0] = 0;
    snprintf(count, sizeof(count), "%d", data_stage ? st->recipient_count : 0);
    snprintf(size, sizeof(size), "%lld", st->message_size);
    snprintf(keysize, sizeof(keysize), "%d", st->encryption_protocol ? st->encryption_keysize : 0);
    {
        /* The attributes in SMTPD_POLICY_README order. Details that do not exist
         * (certificate fingerprints) are sent as Postfix sends them when it has none. */
        const struct policy_attr attrs[] = {
            {"request", "smtpd_access_policy"},
            {"protocol_state", e->where},
            {"protocol_name", st->protocol},
            {"helo_name", st->helo_name},
            {"queue_id", st->queue_id},
            {"sender", st->sender},
            {"recipient", st->recipient},
            {"recipient_count", count},
            {"client_address", st->client_addr},
            {"client_name", st->client_name},
            {"reverse_client_name", st->reverse_client_name ? st->reverse_client_name
                                                            : st->client_name},
            {"instance", check_policy_instance(e)},
            {"sasl_method", st->sasl_method ? st->sasl_method : ""},
            {"sasl_username", st->sasl_username ? st->sasl_username : ""},
            {"sasl_sender", st->sasl_sender ? st->sasl_sender : ""},
            {"size", size},
            {"ccert_subject", st->ccert_subject ? st->ccert_subject : ""},
            {"ccert_issuer", st->ccert_issuer ? st->ccert_issuer : ""},
            {"ccert_fingerprint", ""},
            {"ccert_pubkey_fingerprint", ""},
            {"encryption_protocol", st->encryption_protocol ? st->encryption_protocol : ""},
            {"encryption_cipher", st->encryption_cipher ? st->encryption_cipher : ""},
            {"encryption_keysize", keysize},
            {"etrn_domain", st->etrn_domain},
            {"stress", ""},
            {"client_port", port},
            {"policy_context", policy_client_context(pc)},
            {"server_address", st->server_addr ? st->server_addr : ""},
            {"server_port", server_port},
            {"compatibility_level", var_compatibility_level},
            {"mail_version", var_mail_version},
        };

        strbuf_init(&action, 256, POLICY_ACTION_MAX + 1);
        strbuf_init(&why, 128, 4096);
        if (policy_client_request(pc, attrs, sizeof(attrs) / sizeof(attrs[0]), &action,
                                  &why) == 0) {
            snprintf(table, sizeof(table), "check_policy_service %s",
                     policy_client_endpoint(pc));
            r = check_table_result(c, table, action.data, reply_name, reply_class);
        } else {
            msg_warn("check_policy_service %s: %s; using default action \"%s\"",
                     policy_client_endpoint(pc), why.data, policy_client_default_action(pc));
            r = check_table_result(c, "smtpd_policy_service_default_action",
                                   policy_client_default_action(pc), reply_name, reply_class);
        }
        strbuf_release(&action);
        strbuf_release(&why);
    }
    return r;
}

/*
 * The restriction list interpreter.
 */

static const char *check_namaddr(const struct smtpd_check_state *st, char *buf, size_t size)
{
    snprintf(buf, size, "%s[%s]", st->client_name ? st->client_name : "unknown",
             st->client_addr ? st->client_addr : "unknown");
    return buf;
}

/* One restriction; *used counts the extra argument word consumed. */
static int check_one(struct check_ctx *c, char **words, size_t count, size_t *i,
                     const char *reply_name, const char *reply_class)
{
    const struct smtpd_check_state *st = c->st;
    const char *name = words[*i], *arg = *i + 1 < count ? words[*i + 1] : NULL;
    const char *sender = st->sender, *rcpt = st->recipient;
    struct check_list *cls;
    char namaddr[600];
    int idx = check_name_index(name), found;

    check_namaddr(st, namaddr, sizeof(namaddr));
    if (idx >= 0 && check_names[idx].arg != ARG_NONE) {
        if (arg == NULL) {
            msg_warn("restriction %s needs an argument", name);
            return check_server_error(c);
        }
        (*i)++;
    }
#define N(x) (strcasecmp(name, (x)) == 0)
    if (idx < 0) {
        if (check_classes && (cls = htable_find(check_classes, name)) != NULL)
            return check_list_run(c, cls->words, cls->count, reply_name, reply_class);
        msg_warn("unknown smtpd restriction: \"%s\"", name);
        return check_server_error(c);
    }
    if (N("permit"))
        return check_permit(c, name, reply_class, reply_name, NULL);
    if (N("reject"))
        return check_reject(c, 1, (int) var_reject_code, "5.7.1", "<%s>: %s rejected: %s",
                            reply_name, reply_class, "Access denied");
    if (N("defer"))
        return check_reject(c, 1, (int) var_defer_code, "4.7.1", "<%s>: %s rejected: %s",
                            reply_name, reply_class, "Try again later");
    if (N("defer_if_permit")) {
        char t[600];

        snprintf(t, sizeof(t), "<%s>: %s rejected: Service is unavailable", reply_name,
                 reply_class);
        return check_defer_if_permit(c, (int) var_defer_code, "4.7.1", t);
    }
    if (N("defer_if_reject"))
        return check_defer_if(&c->e->defer_if_reject, (int) var_defer_code, "4.7.1",
                              "<%s>: %s rejected: Service is unavailable", reply_name,
                              reply_class);
    if (N("warn_if_reject")) {
        if (c->e->warn_if_reject == 0)
            c->e->warn_if_reject = c->e->recursion;
        return CHECK_DUNNO;
    }
    if (N("sleep")) {
        long n = strtol(arg, NULL, 10);

        if (n < 0 || n > CHECK_MAX_SLEEP) {
            msg_warn("sleep %s: not a number of seconds from 0 to %d", arg, CHECK_MAX_SLEEP);
            return check_server_error(c);
        }
        sleep((unsigned) n);
        return CHECK_DUNNO;
    }
    if (N("permit_mynetworks")) {
        int r = match_list_addr(check_mynetworks, st->client_addr);

        if (r < 0)
            return check_dict_retry(c, namaddr);
        return r ? check_permit(c, name, NAME_CLIENT, namaddr, NULL) : CHECK_DUNNO;
    }
    if (N("permit_sasl_authenticated"))
        return st->sasl_username && *st->sasl_username
            ? check_permit(c, name, NAME_CLIENT, namaddr, NULL) : CHECK_DUNNO;
    if (N("reject_unauth_pipelining"))
        return st->pipelining_violation
            ? check_reject(c, 1, 503, "5.5.0",
                           "<%s>: %s rejected: Improper use of SMTP command pipelining",
                           reply_name, reply_class) : CHECK_DUNNO;
    if (N("check_policy_service"))
        return check_policy(c, arg, reply_name, reply_class);
    if (N("reject_unknown_client_hostname") || N("reject_unknown_client"))
        return st->client_name == NULL || strcmp(st->client_name, "unknown") == 0
            ? check_reject(c, 1, (int) var_unknown_client_reject_code, "4.7.25",
                           "Client host rejected: cannot find your hostname, [%s]",
                           st->client_addr ? st->client_addr : "unknown") : CHECK_DUNNO;
    if (N("check_client_access"))
        return check_client_access(c, arg, namaddr);
    if (N("check_helo_access"))
        return st->helo_name ? check_access(c, arg, st->helo_name, LOOKUP_DOMAIN, st->helo_name,
                                            NAME_HELO, &found) : CHECK_DUNNO;
    if (N("check_sender_access")) {
        if (sender == NULL)
            return CHECK_DUNNO;
        if (*sender == 0)
            return check_access(c, arg, var_smtpd_null_access_lookup_key, LOOKUP_EXACT,
                                sender, NAME_SENDER, &found);
        return check_access(c, arg, sender, LOOKUP_ADDRESS, sender, NAME_SENDER, &found);
    }
    if (N("check_recipient_access"))
        return rcpt ? check_access(c, arg, rcpt, LOOKUP_ADDRESS, rcpt, NAME_RECIPIENT, &found)
            : CHECK_DUNNO;
    if (N("check_etrn_access"))
        return st->etrn_domain ? check_access(c, arg, st->etrn_domain, LOOKUP_DOMAIN,
                                              st->etrn_domain, NAME_ETRN, &found) : CHECK_DUNNO;
    if (N("reject_invalid_helo_hostname") || N("reject_invalid_hostname")) {
        if (st->helo_name == NULL || check_helo_literal(st->helo_name)
            || (st->helo_name[0] != '[' && check_valid_hostname(st->helo_name)))
            return CHECK_DUNNO;
        return check_reject(c, 1, (int) var_invalid_hostname_reject_code, "5.5.2",
                            "<%s>: %s rejected: Invalid name", st->helo_name, NAME_HELO);
    }
    if (N("reject_non_fqdn_helo_hostname") || N("reject_non_fqdn_hostname")) {
        if (st->helo_name == NULL || st->helo_name[0] == '[' || strchr(st->helo_name, '.'))
            return CHECK_DUNNO;
        return check_reject(c, 1, (int) var_non_fqdn_reject_code, "5.5.2",
                            "<%s>: %s rejected: need fully-qualified hostname", st->helo_name,
                            NAME_HELO);
    }
    if (N("reject_non_fqdn_sender"))
        return sender && *sender ? check_non_fqdn_addr(c, sender, NAME_SENDER) : CHECK_DUNNO;
    if (N("reject_non_fqdn_recipient"))
        return rcpt && *rcpt ? check_non_fqdn_addr(c, rcpt, NAME_RECIPIENT) : CHECK_DUNNO;
    if (N("reject_unknown_sender_domain"))
        return sender && *sender ? check_unknown_domain(c, sender, NAME_SENDER) : CHECK_DUNNO;
    if (N("reject_unknown_recipient_domain"))
        return rcpt && *rcpt ? check_unknown_domain(c, rcpt, NAME_RECIPIENT) : CHECK_DUNNO;
    if (N("reject_sender_login_mismatch"))
        return check_login_mismatch(c, sender, 1, 1, 0);
    if (N("reject_authenticated_sender_login_mismatch"))
        return check_login_mismatch(c, sender, 1, 0, 0);
    if (N("reject_known_sender_login_mismatch"))
        return check_login_mismatch(c, sender, 1, 1, 1);
    if (N("reject_unauthenticated_sender_login_mismatch"))
        return check_login_mismatch(c, sender, 0, 1, 0);
    if (N("reject_unlisted_sender"))
        return sender && *sender ? check_addr_maps(c, sender, NAME_SENDER) : CHECK_DUNNO;
    if (N("reject_unlisted_recipient") || N("check_recipient_maps")) {
        if (rcpt == NULL || *rcpt == 0)
            return CHECK_DUNNO;
        c->e->rcpt_maps_checked = 1;
        return check_addr_maps(c, rcpt, NAME_RECIPIENT);
    }
    if (N("permit_auth_destination")) {
        int status;

        if (rcpt == NULL)
            return CHECK_DUNNO;
        if (check_auth_destination(c, rcpt, &status) == CHECK_OK)
            return check_permit(c, name, NAME_RECIPIENT, rcpt, NULL);
        return status;
    }
    if (N("reject_unauth_destination"))
        return rcpt ? check_unauth_destination(c, rcpt, (int) var_relay_domains_reject_code,
                                               "5.7.1") : CHECK_DUNNO;
    if (N("defer_unauth_destination"))
        return rcpt ? check_unauth_destination(c, rcpt,
                                               (int) var_relay_domains_reject_code - 100,
                                               "4.7.1") : CHECK_DUNNO;
    if (N("reject_multi_recipient_bounce"))
        return sender && *sender == 0
            && st->recipient_count > (c->e->stage == SMTPD_CHECK_RCPT ? 0 : 1)
            ? check_reject(c, 1, (int) var_multi_recipient_bounce_reject_code, "5.5.3",
                           "<%s>: %s rejected: Multi-recipient bounce", reply_name, reply_class)
            : CHECK_DUNNO;
#undef N
    msg_panic("smtpd_check: restriction \"%s\" is known but not handled", name);
}

static int check_list_run(struct check_ctx *c, char **words, size_t count,
                          const char *reply_name, const char *reply_class)
{
    struct check_engine *e = c->e;
    int status = CHECK_DUNNO;
    size_t i;

    if (e->recursion >= CHECK_MAX_RECURSION) {
        msg_warn("restriction classes or access table results nest more than %d deep",
                 CHECK_MAX_RECURSION);
        return check_server_error(c);
    }
    e->recursion++;
    for (i = 0; i < count; i++) {
        status = check_one(c, words, count, &i, reply_name, reply_class);
        /* warn_if_reject covers the next restriction only. */
        if (e->warn_if_reject >= e->recursion && strcasecmp(words[i], "warn_if_reject") != 0)
            e->warn_if_reject = 0;
        if (status != CHECK_DUNNO)
            break;
        if (e->defer_if_permit.active && e->defer_if_reject.active)
            break;
    }
    if (e->warn_if_reject >= e->recursion)
        e->warn_if_reject = 0;
    e->recursion--;
    return status;
}

static int check_stage_list(struct check_ctx *c, enum smtpd_check_stage list_stage,
                            const char *reply_name, const char *reply_class)
{
    struct check_list *l = &check_stage_lists[list_stage];

    return l->count ? check_list_run(c, l->words, l->count, reply_name, reply_class)
        : CHECK_DUNNO;
}

/* The client, helo and sender lists, at their own stage or (smtpd_delay_reject) at RCPT. */
static int check_early(struct check_ctx *c, int upto)
{
    const struct smtpd_check_state *st = c->st;
    char namaddr[600];
    int r;

    check_namaddr(st, namaddr, sizeof(namaddr));
    if ((r = check_stage_list(c, SMTPD_CHECK_CONNECT, namaddr, NAME_CLIENT)) == CHECK_REJECT
        || upto == SMTPD_CHECK_CONNECT)
        return r;
    if (st->helo_name
        && ((r = check_stage_list(c, SMTPD_CHECK_HELO, st->helo_name, NAME_HELO)) == CHECK_REJECT
            || upto == SMTPD_CHECK_HELO))
        return r;
    if (upto == SMTPD_CHECK_HELO)
        return CHECK_DUNNO;
    if (st->sender)
        r = check_stage_list(c, SMTPD_CHECK_MAIL, st->sender, NAME_SENDER);
    return r == CHECK_REJECT ? r : CHECK_DUNNO;
}

static const char *check_where(const struct smtpd_check_state *st, enum smtpd_check_stage stage)
{
    switch (stage) {
    case SMTPD_CHECK_CONNECT:
        return "CONNECT";
    case SMTPD_CHECK_HELO:
        return st->protocol && strcmp(st->protocol, "SMTP") == 0 ? "HELO" : "EHLO";
    case SMTPD_CHECK_MAIL:
        return "MAIL";
    case SMTPD_CHECK_RCPT:
        return "RCPT";
    case SMTPD_CHECK_DATA:
        return "DATA";
    case SMTPD_CHECK_END_OF_DATA:
        return "END-OF-MESSAGE";
    case SMTPD_CHECK_ETRN:
        return "ETRN";
    case SMTPD_CHECK_VRFY:
        return "VRFY";
    }
    return "UNKNOWN";
}

/* The reply of a pending defer_if_permit when nothing rejected. */
static int check_finish(struct check_ctx *c, int status)
{
    struct check_engine *e = c->e;

    if (status != CHECK_REJECT && e->defer_if_permit.active) {
        check_log(c, "reject", e->defer_if_permit.reply);
        e->result->code = atoi(e->defer_if_permit.reply);
        check_copy(e->result->reply, sizeof(e->result->reply), e->defer_if_permit.reply);
        return CHECK_REJECT;
    }
    return status;
}

int smtpd_check(struct smtpd_check_state *state, enum smtpd_check_stage stage,
                struct smtpd_check_result *result)
{
    struct check_engine *e;
    struct check_ctx c;
    int status = CHECK_DUNNO;

    result->code = 0;
    result->reply[0] = 0;
    if (state->engine == NULL)
        smtpd_check_session_begin(state);
    e = state->engine;
    e->recursion = 0;
    e->warn_if_reject = 0;
    e->defer_if_permit.active = e->defer_if_reject.active = 0;
    e->stage = stage;
    e->where = check_where(state, stage);
    e->result = result;
    c.st = state;
    c.e = e;

    switch (stage) {
    case SMTPD_CHECK_CONNECT:
    case SMTPD_CHECK_HELO:
    case SMTPD_CHECK_MAIL:
        if (var_smtpd_delay_reject)
            return 0;
        if (stage == SMTPD_CHECK_CONNECT)
            status = check_early(&c, SMTPD_CHECK_CONNECT);
        else if (stage == SMTPD_CHECK_HELO)
            status = state->helo_name ? check_stage_list(&c, SMTPD_CHECK_HELO, state->helo_name,
                                                         NAME_HELO) : CHECK_DUNNO;
        else
            status = state->sender ? check_stage_list(&c, SMTPD_CHECK_MAIL, state->sender,
                                                      NAME_SENDER) : CHECK_DUNNO;
        break;
    case SMTPD_CHECK_RCPT:
        if (state->recipient == NULL)
            return 0;
        e->rcpt_maps_checked = 0;
        if (var_smtpd_delay_reject && (status = check_early(&c, SMTPD_CHECK_MAIL)) == CHECK_REJECT)
            break;
        if ((status = RELAY_LIST.count ? check_list_run(&c, RELAY_LIST.words, RELAY_LIST.count,
                                                        state->recipient, NAME_RECIPIENT)
             : CHECK_DUNNO) == CHECK_REJECT)
            break;
        if ((status = check_stage_list(&c, SMTPD_CHECK_RCPT, state->recipient, NAME_RECIPIENT))
            == CHECK_REJECT)
            break;
        if ((status = check_finish(&c, status)) == CHECK_REJECT)
            return 0;
        if (var_smtpd_reject_unlisted_recipient && !e->rcpt_maps_checked && *state->recipient)
            status = check_addr_maps(&c, state->recipient, NAME_RECIPIENT);
        return 0;
    case SMTPD_CHECK_VRFY:
        if (state->recipient == NULL)
            return 0;
        if (var_smtpd_delay_reject && (status = check_early(&c, SMTPD_CHECK_HELO)) == CHECK_REJECT)
            break;
        if (var_smtpd_reject_unlisted_recipient && *state->recipient)
            status = check_addr_maps(&c, state->recipient, NAME_RECIPIENT);
        break;
    case SMTPD_CHECK_DATA:
        status = check_stage_list(&c, SMTPD_CHECK_DATA, "DATA", NAME_DATA);
        break;
    case SMTPD_CHECK_END_OF_DATA:
        status = check_stage_list(&c, SMTPD_CHECK_END_OF_DATA, "END-OF-MESSAGE", NAME_EOD);
        break;
    case SMTPD_CHECK_ETRN:
        if (var_smtpd_delay_reject && (status = check_early(&c, SMTPD_CHECK_HELO)) == CHECK_REJECT)
            break;
        status = state->etrn_domain ? check_stage_list(&c, SMTPD_CHECK_ETRN, state->etrn_domain,
                                                       NAME_ETRN) : CHECK_DUNNO;
        break;
    }
    (void) check_finish(&c, status);
    return 0;
}
