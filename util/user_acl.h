/*
 * user_acl.h - authorized_submit_users, authorized_mailq_users and
 * authorized_flush_users: whether the user behind a uid may do something.
 *
 * The list is a string list (match_list.h): login names, "!name", /file and
 * type:table patterns, matched against the login name of the uid, or
 * "unknown" when the uid has no password entry (so "static:anyone" admits
 * everyone and "!unknown" keeps out accounts that do not exist), as Postfix.
 * Never exits; a list that does not parse or a lookup that fails refuses.
 */
#ifndef PETREL_USER_ACL_H
#define PETREL_USER_ACL_H

#include <sys/types.h>

#include "strbuf.h"

/* 1 when allowed; else 0 with the login name (or the reason the list could
 * not be used) in who. param names the list in messages. */
int user_acl_allows(const char *param, const char *acl, uid_t uid, struct strbuf *who);
/* root or mail_owner: never subject to the mailq and flush lists (Postfix). */
int user_acl_is_admin(uid_t uid);

#endif
