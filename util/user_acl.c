/*
 * user_acl.c - login-name access lists for local commands (user_acl.h).
 * Must never admit a user because a table was unreachable: a failed lookup
 * or a list that does not parse answers "not allowed".
 */
#include <pwd.h>
#include <string.h>

#include "match_list.h"
#include "params.h"
#include "user_acl.h"

int user_acl_allows(const char *param, const char *acl, uid_t uid, struct strbuf *who)
{
    struct match_list *list;
    struct passwd *pw;
    struct strbuf err;
    const char *name;
    int r;

    strbuf_reset(who);
    /* The common case, without a password lookup (which may hang on NIS/LDAP). */
    if (acl == NULL || strncmp(acl, "static:", 7) == 0)
        return 1;
    name = (pw = getpwuid(uid)) != NULL ? pw->pw_name : "unknown";
    strbuf_init(&err, 128, 4096);
    if ((list = match_list_open(param, MATCH_LIST_STRING, acl, &err)) == NULL) {
        strbuf_printf(who, "%s (%s)", name, err.data);
        strbuf_release(&err);
        return 0;
    }
    strbuf_release(&err);
    r = match_list_string(list, name);
    match_list_free(&list);
    if (r == 1)
        return 1;
    strbuf_puts(who, name);
    if (r < 0)
        strbuf_puts(who, " (table lookup failed)");
    return 0;
}

int user_acl_is_admin(uid_t uid)
{
    struct passwd *pw;

    if (uid == 0)
        return 1;
    return var_mail_owner && (pw = getpwnam(var_mail_owner)) != NULL && pw->pw_uid == uid;
}
