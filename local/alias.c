/*
 * alias.c - alias_maps: aliases(5) lookups and their expansion (Postfix's
 * local/alias.c semantics).
 *
 * Each table of alias_maps is opened once, as root, before the service runs
 * (an alias database may be readable by root only). A lookup uses the folded
 * local part. An alias that names itself is delivered to the user ("root:
 * root, admin"); deeper nesting than LOCAL_NEST_LIMIT bounces as an alias
 * database loop. Commands and files in an alias run with the rights of the
 * table file's owner, or default_privs when root owns it. With
 * owner_request_special, an "owner-NAME" alias becomes the envelope sender of
 * NAME's members (the alias name, or its value with expand_owner_alias), so
 * their problems go to the owner.
 *
 * Never: follows a lookup result it cannot bound (values over
 * LOCAL_TABLE_VALUE_MAX are refused), guesses when a table fails (the
 * recipient is deferred with "alias database unavailable").
 * Failure: a table that does not open is fatal at start (the administrator
 * must fix alias_maps or run newaliases).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cleanup_client.h"
#include "dict.h"
#include "local.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "resolve.h"
#include "strbuf.h"

#define ALIAS_TABLE_MAX DICT_LIST_MAX

struct alias_table {
    char *spec;
    struct dict *dict;
    char *file;                 /* whose owner decides the rights; NULL: trusted */
};

static struct alias_table alias_tables[ALIAS_TABLE_MAX];
static int alias_count;

/* The file whose owner owns the aliases of a table, or NULL for tables that
 * live in main.cf itself (inline:, static:) or in the system (unix:). */
static char *alias_table_file(const char *spec)
{
    const char *colon = strchr(spec, ':');
    size_t tlen;

    if (colon == NULL)
        return NULL;
    tlen = (size_t) (colon - spec);
    if ((tlen == 4 && strncmp(spec, "hash", 4) == 0)
        || (tlen == 5 && strncmp(spec, "btree", 5) == 0)) {
        char *f = xmalloc(strlen(colon + 1) + 4);

        strcpy(f, colon + 1);
        strcat(f, ".db");
        return f;
    }
    if ((tlen == 8 && strncmp(spec, "texthash", 8) == 0)
        || (tlen == 6 && strncmp(spec, "regexp", 6) == 0)
        || (tlen == 4 && strncmp(spec, "pcre", 4) == 0)
        || (tlen == 4 && strncmp(spec, "cidr", 4) == 0))
        return xstrdup(colon + 1);
    return NULL;
}

/* Splits a table list ("hash:/a, inline:{ x=y }") into specs; braces group. */
static void alias_split_list(const char *value)
{
    const char *p = value;

    while (*p) {
        const char *start;
        int depth = 0;

        p += strspn(p, ", \t\r\n");
        if (*p == 0)
            break;
        start = p;
        for (; *p; p++) {
            if (*p == '{')
                depth++;
            else if (*p == '}' && depth > 0)
                depth--;
            else if (depth == 0 && strchr(", \t\r\n", *p))
                break;
        }
        if (alias_count >= ALIAS_TABLE_MAX)
            msg_fatal("alias_maps: more than %d tables", ALIAS_TABLE_MAX);
        alias_tables[alias_count++].spec = xstrndup(start, (size_t) (p - start));
    }
}

void alias_init(void)
{
    struct strbuf err;
    int i;

    strbuf_init(&err, 128, STRBUF_UNLIMITED);
    alias_split_list(var_alias_maps);
    for (i = 0; i < alias_count; i++) {
        struct alias_table *t = &alias_tables[i];

        strbuf_reset(&err);
        if ((t->dict = dict_open(t->spec, DICT_FLAG_FOLD_KEY, &err)) == NULL)
            msg_fatal("alias_maps: %s: %s", t->spec, err.data);
        t->file = alias_table_file(t->spec);
    }
    strbuf_release(&err);
}

/* Looks name up in every table; *table receives the one that matched. The
 * value is a copy the caller frees. NULL with *failed set when a table failed. */
static char *alias_lookup(const char *name, int fixed_only, struct alias_table **table,
                          int *failed)
{
    int i;

    *failed = 0;
    for (i = 0; i < alias_count; i++) {
        struct alias_table *t = &alias_tables[i];
        const char *v;

        if (fixed_only && (dict_flags(t->dict) & DICT_FLAG_PATTERN))
            continue;
        if ((v = dict_get(t->dict, name)) != NULL) {
            if (strlen(v) > LOCAL_TABLE_VALUE_MAX) {
                msg_warn("alias_maps: %s: value for \"%s\" is longer than %d bytes",
                         t->spec, name, LOCAL_TABLE_VALUE_MAX);
                *failed = 1;
                return NULL;
            }
            if (table)
                *table = t;
            return xstrdup(v);
        }
        if (dict_error(t->dict) != DICT_ERR_NONE) {
            msg_warn("alias_maps: %s: lookup of \"%s\" failed", t->spec, name);
            *failed = 1;
            return NULL;
        }
    }
    return NULL;
}

/* The rights for commands and files of an alias from table t; -1 on a
 * problem already reported as the recipient's outcome. */
static int alias_rights(const struct local_state *st, const struct alias_table *t,
                        struct local_user *as, struct strbuf *names)
{
    struct stat sb;
    struct passwd *pw;

    memset(as, 0, sizeof(*as));             /* uid 0: default_privs */
    if (t->file == NULL)
        return 0;
    if (stat(t->file, &sb) < 0) {
        msg_warn("cannot find the owner of alias database %s: %m", t->file);
        local_result(st, DELIVER_DEFER, "4.3.0", "mail system configuration error");
        return -1;
    }
    if (sb.st_uid == 0)
        return 0;
    if ((pw = getpwuid(sb.st_uid)) == NULL) {
        msg_warn("cannot find alias database owner for %s", t->spec);
        local_result(st, DELIVER_DEFER, "4.3.0", "cannot find alias database owner");
        return -1;
    }
    /* The strings must outlive getpwuid's buffer: keep them in names. */
    strbuf_reset(names);
    strbuf_append(names, pw->pw_name, strlen(pw->pw_name) + 1);
    strbuf_append(names, pw->pw_dir, strlen(pw->pw_dir) + 1);
    strbuf_append(names, pw->pw_shell, strlen(pw->pw_shell) + 1);
    as->uid = pw->pw_uid;
    as->gid = pw->pw_gid;
    as->logname = names->data;
    as->home = names->data + strlen(pw->pw_name) + 1;
    as->shell = as->home + strlen(pw->pw_dir) + 1;
    return 0;
}

int alias_deliver(struct local_state st, const struct local_user *as, const char *name)
{
    struct alias_table *t = NULL;
    struct local_user owner_as;
    struct strbuf names, owner_addr;
    char *value, *owner_rhs = NULL;
    int failed, count;

    (void) as;                          /* an alias brings its own rights */
    st.level++;
    /* An alias that lists its own name means the user of that name. */
    if (st.exp_from && strcasecmp(st.exp_from, name) == 0)
        return 0;
    if (st.level > LOCAL_NEST_LIMIT) {
        msg_warn("%s: alias database loop for %s", st.rq->req->queue_id, name);
        local_result(&st, DELIVER_BOUNCE, "5.4.6", "alias database loop for %s", name);
        return 1;
    }
    if ((value = alias_lookup(name, 0, &t, &failed)) == NULL) {
        if (!failed)
            return 0;
        local_result(&st, DELIVER_DEFER, "4.3.0", "alias database unavailable");
        return 1;
    }
    if (LOCAL_VERIFY(&st)) {
        local_result(&st, DELIVER_SENT, "2.0.0", "aliased to %s", value);
        free(value);
        return 1;
    }
    strbuf_init(&names, 64, STRBUF_UNLIMITED);
    strbuf_init(&owner_addr, 64, STRBUF_UNLIMITED);
    if (alias_rights(&st, t, &owner_as, &names) < 0)
        goto out;
    st.exp_type = LOCAL_EXP_ALIAS;
    if (var_owner_request_special) {
        char *owner = xmalloc(strlen(name) + 7);

        strcpy(owner, "owner-");
        strcat(owner, name);
        owner_rhs = alias_lookup(owner, 1, NULL, &failed);
        if (failed) {
            free(owner);
            local_result(&st, DELIVER_DEFER, "4.3.0", "alias database unavailable");
            goto out;
        }
        if (owner_rhs) {
            /* The owner's address: "owner-NAME@$myorigin", or with
             * expand_owner_alias the owner alias's value when it is one address. */
            const char *who = owner;

            if (var_expand_owner_alias && strpbrk(owner_rhs, ",|/:\"") == NULL
                && owner_rhs[strcspn(owner_rhs, " \t")] == 0)
                who = owner_rhs;
            resolve_rewrite(who, &owner_addr);
            st.owner = owner_addr.data;
            st.sender = owner_addr.data;
            /* A mailing list: the DSN parameters of the original do not apply. */
            st.orcpt = "";
        }
        free(owner);
    }
    st.exp_from = name;
    /* Members never inherit NOTIFY=SUCCESS (RFC 3461 section 6.2.7.3). */
    if (st.notify == CLEANUP_NOTIFY_SUCCESS)
        st.notify = CLEANUP_NOTIFY_NEVER;
    else
        st.notify &= ~CLEANUP_NOTIFY_SUCCESS;
    count = token_deliver_string(st, &owner_as, value);
    if (count < 1) {
        msg_warn("%s: no recipient in alias lookup result for %s", st.rq->req->queue_id, name);
        local_result(&st, DELIVER_DEFER, "4.3.0", "alias database unavailable");
    }
  out:
    free(owner_rhs);
    free(value);
    strbuf_release(&names);
    strbuf_release(&owner_addr);
    return 1;
}
