/*
 * token.c - the destinations in an alias value, a .forward file or an
 * :include: file: "|command", "/file", "~/file", ":include:/file", or an
 * address (local ones are delivered here recursively, others re-injected).
 *
 * A list is split at commas outside double quotes; a destination may be
 * quoted ("|/usr/bin/vacation joe") and may carry a display name
 * ("Joe <joe@example.com>"). Addresses are rewritten and resolved with the
 * same library as smtpd, cleanup and qmgr, so "joe" means joe@$myorigin.
 * Never: lets more than LOCAL_FILE_LINE_MAX bytes of one file line or
 * LOCAL_ACTION_LIMIT destinations through; never runs a command or writes a
 * file that allow_mail_to_commands / allow_mail_to_files forbid for the kind
 * of expansion (5.7.1 bounce instead).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "local.h"
#include "msg.h"
#include "mymalloc.h"
#include "resolve.h"
#include "strbuf.h"

#define TOKEN_INCLUDE ":include:"

/* The internal form of one list element: quotes removed (a backslash inside
 * quotes escapes the next character), "<addr>" taken out of "Name <addr>". */
static void token_internalize(const char *s, size_t len, struct strbuf *out)
{
    const char *lt = NULL, *gt = NULL;
    size_t i;
    int quoted = 0;

    while (len > 0 && strchr(" \t\r\n", *s))
        s++, len--;
    while (len > 0 && strchr(" \t\r\n", s[len - 1]))
        len--;
    if (len > 0 && *s != '|' && *s != '/' && *s != '"') {
        for (i = 0; i < len; i++) {
            if (s[i] == '"')
                quoted = !quoted;
            else if (!quoted && s[i] == '<' && lt == NULL)
                lt = s + i;
            else if (!quoted && s[i] == '>' && lt != NULL)
                gt = s + i;
        }
        if (lt && gt && gt > lt) {
            len = (size_t) (gt - lt - 1);
            s = lt + 1;
        }
    }
    quoted = 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '"') {
            quoted = !quoted;
            continue;
        }
        if (quoted && s[i] == '\\' && i + 1 < len)
            i++;
        (void) strbuf_putc(out, s[i]);
    }
}

/* An address: resolved like qmgr does; ours goes on here, others are forwarded. */
static void token_deliver_address(struct local_state st, const struct local_user *as,
                                  const char *addr)
{
    struct resolve_reply reply;
    struct strbuf canon, rcpt;
    const char *at;

    strbuf_init(&canon, 64, STRBUF_UNLIMITED);
    strbuf_init(&rcpt, 64, STRBUF_UNLIMITED);
    resolve_reply_init(&reply);
    resolve_rewrite(addr[0] == '\\' ? addr + 1 : addr, &canon);
    if (resolve_addr(canon.data, &reply) < 0 || (reply.flags & RESOLVE_FLAG_FAIL)) {
        if (reply.flags & RESOLVE_FLAG_ERROR)
            local_result(&st, DELIVER_BOUNCE, "5.1.3", "bad recipient address syntax: %s",
                         addr);
        else
            local_result(&st, DELIVER_DEFER, "4.3.0", "address resolver failure");
        goto out;
    }
    /* Keep "\user" (no alias expansion) and splice in an unmatched extension. */
    if (addr[0] == '\\')
        strbuf_putc(&rcpt, '\\');
    if (st.unmatched && st.delim && (at = strrchr(reply.recipient.data, '@')) != NULL) {
        strbuf_append(&rcpt, reply.recipient.data, (size_t) (at - reply.recipient.data));
        strbuf_printf(&rcpt, "%c%s%s", st.delim, st.unmatched, at);
    } else if (st.unmatched && st.delim) {
        strbuf_printf(&rcpt, "%s%c%s", reply.recipient.data, st.delim, st.unmatched);
    } else {
        strbuf_puts(&rcpt, reply.recipient.data);
    }
    st.address = rcpt.data;
    if (strcmp(reply.transport.data, st.rq->req->transport) == 0
        && !(reply.flags & (RESOLVE_FLAG_ERROR_TRANSPORT | RESOLVE_FLAG_DISCARD))) {
        recipient_deliver(st, as);
    } else {
        if (addr[0] == '\\')
            st.address = rcpt.data + 1;
        forward_append(st);
    }
  out:
    resolve_reply_free(&reply);
    strbuf_release(&canon);
    strbuf_release(&rcpt);
}

static void token_deliver_one(struct local_state st, const struct local_user *as,
                              const char *tok)
{
    if (tok[0] == '/' || tok[0] == '~') {
        struct strbuf path;

        if ((local_file_mask & st.exp_type) == 0) {
            local_result(&st, DELIVER_BOUNCE, "5.7.1", "mail to file is restricted");
            return;
        }
        if (tok[0] == '/') {
            file_deliver(st, as, tok);
            return;
        }
        /* "~/file": the home of whoever's rights apply; never "~user". */
        if (tok[1] != '/' || privs_effective(as)->home == NULL) {
            msg_warn("%s: bad home directory syntax for: %s", st.rq->req->queue_id, tok);
            local_result(&st, DELIVER_BOUNCE, "5.3.5", "mail system configuration error");
            return;
        }
        strbuf_init(&path, 64, STRBUF_UNLIMITED);
        strbuf_printf(&path, "%s%s", strcmp(privs_effective(as)->home, "/") == 0 ? ""
                      : privs_effective(as)->home, tok + 1);
        file_deliver(st, as, path.data);
        strbuf_release(&path);
    } else if (tok[0] == '|') {
        if ((local_cmd_mask & st.exp_type) == 0) {
            local_result(&st, DELIVER_BOUNCE, "5.7.1", "mail to command is restricted");
            return;
        }
        command_deliver(st, as, tok + 1);
    } else if (strncasecmp(tok, TOKEN_INCLUDE, sizeof(TOKEN_INCLUDE) - 1) == 0) {
        include_deliver(st, as, tok + sizeof(TOKEN_INCLUDE) - 1);
    } else {
        token_deliver_address(st, as, tok);
    }
}

int token_deliver_string(struct local_state st, const struct local_user *as, const char *text)
{
    struct strbuf tok;
    const char *p = text, *start;
    int count = 0, quoted;

    strbuf_init(&tok, 64, STRBUF_UNLIMITED);
    while (*p) {
        start = p;
        for (quoted = 0; *p && (quoted || *p != ','); p++) {
            if (*p == '"')
                quoted = !quoted;
            else if (quoted && *p == '\\' && p[1])
                p++;
        }
        strbuf_reset(&tok);
        token_internalize(start, (size_t) (p - start), &tok);
        if (*p == ',')
            p++;
        if (tok.len == 0)
            continue;
        count++;
        if (!local_count_action(&st))
            break;
        token_deliver_one(st, as, tok.data);
    }
    strbuf_release(&tok);
    return count;
}

int token_deliver_file(struct local_state st, const struct local_user *as, const char *path,
                       const char *buf, size_t len)
{
    size_t pos = 0;
    unsigned long lineno = 0;
    int count = 0;

    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = nl ? (size_t) (nl - (buf + pos)) : len - pos;
        char *line;

        lineno++;
        if (n > LOCAL_FILE_LINE_MAX) {
            msg_warn("%s: %s: line %lu is longer than %d bytes, ignored",
                     st.rq->req->queue_id, path, lineno, LOCAL_FILE_LINE_MAX);
        } else if (n > 0 && buf[pos] != '#') {
            line = xstrndup(buf + pos, n);
            count += token_deliver_string(st, as, line);
            free(line);
        }
        pos += n + 1;
        if (st.rq->actions > LOCAL_ACTION_LIMIT)
            break;
    }
    return count;
}
