/*
 * recipient.c - one recipient at one expansion level: nesting limit,
 * duplicate filter, Delivered-To: loop control, the local part split into
 * user and extension, then aliases, .forward, mailbox and the unknown-user
 * rules in Postfix's order.
 * Never delivers the same address twice at one level; never recurses past
 * LOCAL_NEST_LIMIT (bounces 5.4.6 instead). Failures become the recipient's
 * outcome through local_result.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "local.h"
#include "msg.h"
#include "params.h"
#include "strbuf.h"

int recipient_prop_mask(void)
{
    static int mask = -1;
    const char *p = var_propagate_unmatched_extensions;

    if (mask >= 0)
        return mask;
    mask = 0;
    while (*p) {
        size_t n;

        p += strspn(p, ", \t\r\n");
        n = strcspn(p, ", \t\r\n");
        if (n == 5 && strncasecmp(p, "alias", 5) == 0)
            mask |= RECIPIENT_PROP_ALIAS;
        else if (n == 7 && strncasecmp(p, "forward", 7) == 0)
            mask |= RECIPIENT_PROP_FORWARD;
        else if (n == 7 && strncasecmp(p, "include", 7) == 0)
            mask |= RECIPIENT_PROP_INCLUDE;
        p += n;
    }
    return mask;
}

/* Splits user+ext at the first recipient_delimiter character, as Postfix's
 * split_addr: never an empty user, and with owner_request_special never
 * owner-NAME or NAME-request. Returns the extension (in user's buffer) or NULL. */
static char *recipient_split(char *user, char *delim)
{
    size_t len = strlen(user), n;

    *delim = 0;
    if (*var_recipient_delimiter == 0 || len == 0)
        return NULL;
    if (var_owner_request_special
        && (strncmp(user, "owner-", 6) == 0
            || (len > 8 && strcmp(user + len - 8, "-request") == 0)))
        return NULL;
    n = strcspn(user, var_recipient_delimiter);
    if (n == 0 || n == len)
        return NULL;
    *delim = user[n];
    user[n] = 0;
    return user + n + 1;
}

static void recipient_switch(struct local_state st, const struct local_user *as)
{
    struct passwd *pw, pwcopy;
    struct stat sb;
    int direct = 0;

    if (st.local[0] == '\\') {
        /* "\user" in an alias or .forward: straight to the mailbox. */
        st.address++, st.local++, st.user++;
        direct = 1;
    }
    if (!direct) {
        st.unmatched = NULL;
        if (alias_deliver(st, as, st.local))
            return;
        if (st.extension) {
            if (recipient_prop_mask() & RECIPIENT_PROP_ALIAS)
                st.unmatched = st.extension;
            if (alias_deliver(st, as, st.user))
                return;
        }
        st.unmatched = st.extension;
        /* Members of an owned list or an include file are delivered as new
         * mail, so that their problems go to the owner, not the sender. */
        if ((st.owner && strcasecmp(st.owner, st.user) != 0)
            || st.exp_type == LOCAL_EXP_INCLUDE) {
            forward_append(st);
            return;
        }
    }
    errno = 0;
    if ((pw = getpwnam(st.user)) == NULL && errno != 0 && errno != ENOENT && errno != ESRCH) {
        msg_warn("error looking up passwd info for %s: %m", st.user);
        local_result(&st, DELIVER_DEFER, "4.0.0", "user lookup error");
        return;
    }
    if (pw) {
        /* getpwnam's buffer is overwritten by later lookups: keep a copy. */
        pwcopy = *pw;
        pwcopy.pw_name = strdupa(pw->pw_name);
        pwcopy.pw_dir = strdupa(pw->pw_dir);
        pwcopy.pw_shell = strdupa(pw->pw_shell ? pw->pw_shell : "");
        pw = &pwcopy;
        if (var_require_home_directory && stat(pw->pw_dir, &sb) < 0) {
            local_result(&st, DELIVER_DEFER, "4.3.0", "cannot access home directory %s: %s",
                         pw->pw_dir, strerror(errno));
            return;
        }
    }
    if (!direct && dotforward_deliver(st, as, pw))
        return;
    if (userbox_deliver(st, pw))
        return;
    unknown_deliver(st, as);
}

void recipient_deliver(struct local_state st, const struct local_user *as)
{
    char level[16];
    char *folded, *at, *ext;
    size_t i;

    st.level++;
    if (st.level > LOCAL_NEST_LIMIT) {
        msg_warn("%s: recipient nesting limit exceeded for %s", st.rq->req->queue_id,
                 st.address);
        local_result(&st, DELIVER_BOUNCE, "5.4.6", "recipient nesting limit exceeded");
        return;
    }
    snprintf(level, sizeof(level), "%d", st.level);
    if (local_dup_seen(st.rq, level, st.address))
        return;
    if (local_loop_find(st.rq, st.address)) {
        local_result(&st, DELIVER_BOUNCE, "5.4.6", "mail forwarding loop for %s", st.address);
        return;
    }
    folded = strdupa(st.address);
    for (i = 0; folded[i]; i++)
        folded[i] = (char) tolower((unsigned char) folded[i]);
    if ((at = strrchr(folded, '@')) != NULL) {
        *at = 0;
        st.domain = at + 1;
    } else {
        st.domain = NULL;
    }
    st.local = folded;
    st.user = strdupa(folded);
    ext = recipient_split((char *) st.user, &st.delim);
    if (ext && strchr(ext, '/')) {
        msg_warn("%s: address with illegal extension: %s", st.rq->req->queue_id, st.local);
        ext = NULL;
        st.user = st.local;
    }
    st.extension = ext;
    st.unmatched = ext;
    if (st.user[0] == 0 || (st.user[0] == '\\' && st.user[1] == 0)) {
        local_result(&st, DELIVER_BOUNCE, "5.1.3", "null username in \"%s\"", st.address);
        return;
    }
    recipient_switch(st, as);
}
