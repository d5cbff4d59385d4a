/*
 * policy_client.h - the client side of Postfix's SMTPD access policy
 * delegation protocol (SMTPD_POLICY_README).
 *
 * A request is one "name=value\n" line per attribute followed by an empty
 * line; the reply is "action=..." (other attributes are ignored) followed by
 * an empty line. One struct policy_client stands for one policy service as
 * named in a restriction list:
 *	inet:host:port		TCP (host may be [ipv6] or a name)
 *	unix:path		a UNIX-domain socket; a relative path is relative
 *				to queue_directory (private/policy), where every
 *				daemon runs
 *	{ endpoint, name=value, ... }
 *				Postfix 3.0 per-service settings: timeout,
 *				default_action, max_idle, max_ttl, request_limit,
 *				try_limit, retry_delay, policy_context
 * Settings not given in braces come from smtpd_policy_service_*.
 *
 * The connection is kept open between requests of one process and reused,
 * until it has been idle for max_idle, has lived for max_ttl, has served
 * request_limit requests (0: no limit), or the server closes it. Each
 * request (connect, write and read together) has a hard time budget of
 * timeout; a failed attempt is retried after retry_delay, at most try_limit
 * attempts in all.
 *
 * Never: sends a value holding CR, LF or another control byte (each becomes
 * '?'), reads a reply larger than POLICY_REPLY_MAX, waits without a clock.
 * Failure: policy_client_open returns NULL with the reason (an administrator
 * error); policy_client_request returns -1 with the reason, and the caller
 * applies the service's default action.
 */
#ifndef PETREL_POLICY_CLIENT_H
#define PETREL_POLICY_CLIENT_H

#include <stddef.h>
#include <time.h>

#include "strbuf.h"

#define POLICY_REPLY_MAX    16384       /* bytes in one reply, terminator included */
#define POLICY_VALUE_MAX    4096        /* bytes of one request value; longer is cut */
#define POLICY_ACTION_MAX   4096        /* bytes of the action value */

struct policy_client;

/* One request attribute. value NULL is sent as an empty value. */
struct policy_attr {
    const char *name;
    const char *value;
};

/*
 * Parses spec (see above). Returns a client that has not connected yet, or
 * NULL with the reason in err (bad endpoint, unknown setting, bad value).
 */
struct policy_client *policy_client_open(const char *spec, struct strbuf *err);
/* Closes the connection, frees the client and clears *pcp. Accepts NULL. */
void policy_client_free(struct policy_client **pcp);

/* "inet:host:port" or "unix:path", without the braces and settings. */
const char *policy_client_endpoint(const struct policy_client *pc);
/* The action to apply when a request fails. */
const char *policy_client_default_action(const struct policy_client *pc);
/* The policy_context setting ("" unless given). */
const char *policy_client_context(const struct policy_client *pc);

/*
 * Sends one request with n attributes (the caller puts
 * request=smtpd_access_policy first) and reads the reply. On success returns
 * 0 with the action value in *action. On failure (after try_limit attempts)
 * returns -1 with the last reason in why, e.g. "connect: Connection refused",
 * "timeout", "malformed reply: ...".
 */
int policy_client_request(struct policy_client *pc, const struct policy_attr *attrs, size_t n,
                          struct strbuf *action, struct strbuf *why);

/*
 * The reply parser, on the bytes received so far. Returns 1 when buf[0..len)
 * starts with a complete reply (*used bytes, the empty line included) that
 * has an action attribute, copied into *action; 0 when more bytes are needed;
 * -1 when the bytes cannot become a valid reply (reason in why): a line
 * without '=', an empty name, a NUL, a missing, empty or repeated action, an
 * action longer than POLICY_ACTION_MAX, or POLICY_REPLY_MAX bytes without the end.
 * Lines end in LF; a CR before the LF is dropped.
 */
int policy_reply_parse(const char *buf, size_t len, size_t *used, struct strbuf *action,
                       struct strbuf *why);

/* Replaces time(NULL) as the clock for max_idle and max_ttl (tests); NULL restores it. */
void policy_client_set_clock(time_t (*now)(void));

#endif
