/*
 * cleanup_message.c - message content in cleanup: cutting it into lines,
 * the primary headers (util/header.h), header_checks and body_checks
 * actions, smtpd_untrusted_strip_headers, hop counting, Bcc:/Return-Path:
 * removal, recipients from headers (sendmail -t), and the headers Postfix adds
 * when they are missing (Message-Id:, Date:, From:, undisclosed recipients).
 *
 * Postfix behaviour kept on purpose: a logical header longer than
 * header_size_limit is truncated (the excess is discarded), not rejected; a
 * line longer than line_length_limit is inspected in pieces of that size; the
 * message is not parsed as MIME, so body_checks see everything after the
 * primary headers (Postfix with disable_mime_input_processing = yes), up to
 * body_checks_size_limit bytes. Content goes to the queue file as it arrives;
 * a rejection only marks the message, which is removed at the end.
 * Never holds more than one header or one line piece in memory.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "address.h"
#include "cleanup.h"
#include "cleanup_client.h"
#include "dict.h"
#include "header.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"

#define CLEANUP_PIECE_MIN   256
#define CLEANUP_PIECE_MAX   (64 * 1024)
#define CLEANUP_XTRACT_MAX  ((size_t) 100000)

static struct dict_list *cleanup_header_checks, *cleanup_body_checks;
static struct dict_list *cleanup_strip_maps;    /* smtpd_untrusted_strip_headers tables */
static char **cleanup_strip_names;              /* ... and plain header names */
static size_t cleanup_strip_count;
static size_t cleanup_piece_max;

static struct dict_list *cleanup_checks_open(const char *name, const char *value)
{
    struct strbuf err;
    struct dict_list *list;

    if (value[strspn(value, ", \t")] == 0)
        return NULL;
    strbuf_init(&err, 128, 4096);
    if ((list = dict_list_open(value, 0, &err)) == NULL)
        msg_fatal("%s = %s: %s", name, value, err.data);
    strbuf_release(&err);
    return list;
}

/* smtpd_untrusted_strip_headers: "type:name" words are tables, others header names. */
static void cleanup_strip_init(void)
{
    const char *p = var_smtpd_untrusted_strip_headers;
    struct strbuf tables;

    strbuf_init(&tables, 64, 0);
    while (*p) {
        size_t n;
        const char *colon;

        p += strspn(p, ", \t\r\n");
        if ((n = strcspn(p, ", \t\r\n")) == 0)
            break;
        colon = memchr(p, ':', n);
        if (colon != NULL && colon > p) {
            char *type = xstrndup(p, (size_t) (colon - p));

            if (!dict_type_known(type))
                msg_fatal("smtpd_untrusted_strip_headers: unknown table type \"%s\"", type);
            free(type);
            /* A table spec may contain "{...}" with spaces (inline:); take it whole. */
            if (colon[1] == '{') {
                const char *close = strchr(colon, '}');

                n = close ? (size_t) (close - p) + 1 : strlen(p);
            }
            strbuf_append(&tables, p, n);
            strbuf_putc(&tables, ' ');
        } else {
            cleanup_strip_names = xreallocarray(cleanup_strip_names, cleanup_strip_count + 1,
                                                sizeof(char *));
            cleanup_strip_names[cleanup_strip_count++] = xstrndup(p, n);
        }
        p += n;
    }
    cleanup_strip_maps = cleanup_checks_open("smtpd_untrusted_strip_headers", tables.data);
    strbuf_release(&tables);
}

void cleanup_message_init(void)
{
    cleanup_header_checks = cleanup_checks_open("header_checks", var_header_checks);
    cleanup_body_checks = cleanup_checks_open("body_checks", var_body_checks);
    cleanup_strip_init();
    cleanup_piece_max = (size_t) var_line_length_limit;
    if (cleanup_piece_max < CLEANUP_PIECE_MIN)
        cleanup_piece_max = CLEANUP_PIECE_MIN;
    if (cleanup_piece_max > CLEANUP_PIECE_MAX)
        cleanup_piece_max = CLEANUP_PIECE_MAX;
}

/* --- Output ---------------------------------------------------------------- */

static int cleanup_content_begin(struct cleanup_state *st)
{
    if (st->content_begun)
        return 0;
    if (!st->have_sender) {
        msg_warn("%s: message content before the sender -- message not accepted", st->qid);
        cleanup_error(st, CLEANUP_STAT_BAD, "451 4.3.0 Error: internal protocol error");
        return -1;
    }
    st->content_begun = 1;
    if (st->milter)
        return 0;                       /* the queue file gets it after the milters */
    if (qfile_content_begin(st->w) < 0) {
        cleanup_write_error(st, errno);
        return -1;
    }
    return 0;
}

static void cleanup_out(struct cleanup_state *st, const char *data, size_t len)
{
    size_t i;

    if (st->errs || cleanup_content_begin(st) < 0)
        return;
    st->content_len += len;
    if (var_message_size_limit > 0 && st->content_len > (unsigned long long) var_message_size_limit) {
        msg_warn("%s: message size exceeds message_size_limit -- message not accepted", st->qid);
        cleanup_error(st, CLEANUP_STAT_SIZE, "552 5.3.4 Error: message file too big");
        return;
    }
    for (i = 0; i < len && !st->eight_bit; i++)
        if ((unsigned char) data[i] & 0x80)
            st->eight_bit = 1;
    if (st->milter)
        cleanup_milter_spool(st, data, len);
    else if (qfile_content_write(st->w, data, len) < 0)
        cleanup_write_error(st, errno);
}

static void cleanup_out_line(struct cleanup_state *st, const char *data, size_t len)
{
    cleanup_out(st, data, len);
    cleanup_out(st, "\n", 1);
}

/* --- Checks ---------------------------------------------------------------- */

/* Postfix's dsn_prepend: keep "X.Y.Z text" as given, else put def in front. */
static void cleanup_dsn_text(struct strbuf *out, const char *def, const char *text)
{
    if (isdigit((unsigned char) text[0]) && text[1] == '.' && strchr(text, ' ') != NULL)
        strbuf_set(out, text);
    else
        strbuf_printf(out, "%s %s", def, text);
}

/* Applies one header_checks/body_checks result; class is "header" or "body". */
enum cleanup_act_result cleanup_act(struct cleanup_state *st, const char *class,
                                           const char *content, size_t len, const char *value)
{
    size_t cmd_len = strcspn(value, " \t");
    const char *text = value + cmd_len;
    struct strbuf reply;

    text += strspn(text, " \t");
#define CMD(s) (cmd_len == strlen(s) && strncasecmp(value, (s), cmd_len) == 0)
    if (CMD("REJECT")) {
        strbuf_init(&reply, 128, 0);
        cleanup_dsn_text(&st->tmp, "5.7.1", *text ? text : "message content rejected");
        if (st->tmp.data[0] != '4' && st->tmp.data[0] != '5')
            st->tmp.data[0] = '4';      /* Postfix: only 4.X.X or 5.X.X */
        cleanup_log_action(st, "reject", class, content, len, st->tmp.data);
        strbuf_printf(&reply, "%s %s", st->tmp.data[0] == '4' ? "451" : "550", st->tmp.data);
        cleanup_error(st, st->tmp.data[0] == '4' ? CLEANUP_STAT_DEFER : CLEANUP_STAT_CONT,
                      reply.data);
        strbuf_release(&reply);
        return CLEANUP_ACT_KEEP;
    }
    if (CMD("WARN")) {
        cleanup_log_action(st, "warning", class, content, len, text);
        return CLEANUP_ACT_KEEP;
    }
    if (CMD("INFO")) {
        cleanup_log_action(st, "info", class, content, len, text);
        return CLEANUP_ACT_KEEP;
    }
    if (CMD("HOLD")) {
        if (!(st->flags & CLEANUP_FLAG_HOLD))
            cleanup_log_action(st, "hold", class, content, len, text);
        st->flags |= CLEANUP_FLAG_HOLD;
        return CLEANUP_ACT_KEEP;
    }
    if (CMD("DISCARD")) {
        cleanup_log_action(st, "discard", class, content, len, text);
        st->flags |= CLEANUP_FLAG_DISCARD;
        return CLEANUP_ACT_KEEP;
    }
    if (CMD("IGNORE"))
        return CLEANUP_ACT_DROP;
    if (CMD("PREPEND") || CMD("REPLACE")) {
        int prepend = CMD("PREPEND");

        if (*text == 0 || (class[0] == 'h' && header_name_len(text, strlen(text)) == 0)) {
            msg_warn("%s: bad %s %s text \"%.100s\" in %s_checks -- ignored", st->qid,
                     prepend ? "PREPEND" : "REPLACE", class, text, class);
            return CLEANUP_ACT_KEEP;
        }
        cleanup_log_action(st, prepend ? "prepend" : "replace", class, content, len, text);
        if (prepend) {
            cleanup_out_line(st, text, strlen(text));
            return CLEANUP_ACT_KEEP;
        }
        strbuf_set(&st->tmp, text);
        return CLEANUP_ACT_REPLACE;
    }
    if (CMD("DUNNO") || CMD("OK"))
        return CLEANUP_ACT_KEEP;
    msg_warn("%s: unsupported %s_checks action \"%.*s\" -- ignored", st->qid, class,
             (int) (cmd_len > 40 ? 40 : cmd_len), value);
    return CLEANUP_ACT_KEEP;
#undef CMD
}

/* Looks text up in a checks table; the result, or NULL (lookup failures defer). */
const char *cleanup_check(struct cleanup_state *st, struct dict_list *maps, const char *name,
                          const char *text)
{
    const char *value;

    if (maps == NULL || st->errs)
        return NULL;
    value = dict_list_get(maps, text);
    if (value == NULL && dict_list_error(maps) != DICT_ERR_NONE) {
        msg_warn("%s: %s map lookup problem -- message not accepted", st->qid, name);
        cleanup_error(st, CLEANUP_STAT_DEFER, "451 4.3.0 Error: temporary lookup failure");
    }
    return value;
}

static int cleanup_strip_match(struct cleanup_state *st, const struct header_field *f,
                               const char *text)
{
    size_t i;

    for (i = 0; i < cleanup_strip_count; i++)
        if (strlen(cleanup_strip_names[i]) == f->name_len
            && strncasecmp(cleanup_strip_names[i], f->name, f->name_len) == 0)
            return 1;
    return cleanup_check(st, cleanup_strip_maps, "smtpd_untrusted_strip_headers", text) != NULL;
}

/* --- Headers --------------------------------------------------------------- */

static void cleanup_xtract_add(struct cleanup_state *st, struct cleanup_late **list,
                               size_t *n, size_t *cap, const char *addr)
{
    if (*n >= CLEANUP_XTRACT_MAX)
        return;
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *list = xreallocarray(*list, *cap, sizeof(**list));
    }
    (*list)[*n].addr = xstrdup(addr);
    (*list)[*n].notify = 0;
    (*list)[*n].bcc = 0;
    (*n)++;
}

static int cleanup_xtract_cb(void *ctx, const char *addr)
{
    struct cleanup_state *st = ctx;

    cleanup_xtract_add(st, &st->xtract, &st->nxtract, &st->xtract_cap, addr);
    return 0;
}

static int cleanup_rxtract_cb(void *ctx, const char *addr)
{
    struct cleanup_state *st = ctx;

    cleanup_xtract_add(st, &st->rxtract, &st->nrxtract, &st->rxtract_cap, addr);
    return 0;
}

/* What Petrel itself does with a (final) header; returns 1 to drop it. */
static int cleanup_header_builtin(struct cleanup_state *st, const char *text, size_t len)
{
    struct header_field f;
    const struct header_info *info;

    if (header_split(text, len, &f) < 0 || (info = header_lookup(f.name, f.name_len)) == NULL)
        return 0;
    st->seen |= 1UL << info->id;
    if (info->flags & HEADER_FLAG_RESENT)
        st->resent = 1;
    if ((st->flags & CLEANUP_FLAG_EXTRACT_RCPT) && (info->flags & HEADER_FLAG_RECIPIENT)
        && info->id != HEADER_APPARENTLY_TO && info->id != HEADER_X_ORIGINAL_TO)
        (void) header_addr_list(f.value, f.value_len, (size_t) var_header_address_token_limit,
                                ADDRESS_MAX_PATH, (info->flags & HEADER_FLAG_RESENT)
                                ? cleanup_rxtract_cb : cleanup_xtract_cb, st);
    switch (info->id) {
    case HEADER_RECEIVED:
    case HEADER_DELIVERED_TO:
        st->hops++;
        return 0;
    case HEADER_MESSAGE_ID:
        msg_info("%s: message-id=%.*s", st->qid, (int) (f.value_len > 250 ? 250 : f.value_len),
                 f.value);
        return 0;
    case HEADER_RESENT_MESSAGE_ID:
        msg_info("%s: resent-message-id=%.*s", st->qid,
                 (int) (f.value_len > 250 ? 250 : f.value_len), f.value);
        return 0;
    case HEADER_RETURN_PATH:
        return 1;                       /* set by the final delivery agent, never kept */
    case HEADER_BCC:
    case HEADER_RESENT_BCC:
        return (st->flags & CLEANUP_FLAG_REMOVE_BCC) != 0;
    default:
        return 0;
    }
}

/* One complete logical header from the parser. */
static void cleanup_header(void *ctx, const char *text, size_t len, int truncated)
{
    struct cleanup_state *st = ctx;
    struct header_field f;
    const char *value;
    char *copy;

    if (st->errs || header_split(text, len, &f) < 0)
        return;
    if (truncated && !st->truncated_logged) {
        msg_info("%s: header %.*s truncated at header_size_limit %lld bytes", st->qid,
                 (int) (f.name_len > 100 ? 100 : f.name_len), f.name, var_header_size_limit);
        st->truncated_logged = 1;
    }
    /* Lookups want a C string; a header with a NUL is seen up to the NUL. */
    copy = xstrndup(text, len);
    if (st->strip_untrusted && cleanup_strip_match(st, &f, copy)) {
        free(copy);
        return;
    }
    if (!(st->flags & CLEANUP_FLAG_BOUNCE)
        && (value = cleanup_check(st, cleanup_header_checks, "header_checks", copy)) != NULL) {
        switch (cleanup_act(st, "header", text, len, value)) {
        case CLEANUP_ACT_DROP:
            free(copy);
            return;
        case CLEANUP_ACT_REPLACE:
            free(copy);
            copy = xstrdup(st->tmp.data);
            text = copy;
            len = strlen(copy);
            break;
        case CLEANUP_ACT_KEEP:
            break;
        }
    }
    if (!cleanup_header_builtin(st, text, len))
        cleanup_out_line(st, text, len);
    free(copy);
}

/* RFC 5322 date in local time, Postfix's mail_date() form. */
static void cleanup_date(struct strbuf *out, time_t t)
{
    char buf[64];
    struct tm tm;

    localtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm);
    strbuf_puts(out, buf);
}

/* The display name as a quoted string when it holds specials (RFC 5322 phrase). */
static void cleanup_phrase(struct strbuf *out, const char *name)
{
    const char *p;

    if (strpbrk(name, "()<>[]:;@\\,.\"") == NULL) {
        strbuf_puts(out, name);
        return;
    }
    strbuf_putc(out, '"');
    for (p = name; *p; p++) {
        if (*p == '"' || *p == '\\')
            strbuf_putc(out, '\\');
        strbuf_putc(out, *p);
    }
    strbuf_putc(out, '"');
}

static int cleanup_seen(const struct cleanup_state *st, enum header_id id)
{
    return (st->seen & (1UL << id)) != 0;
}

/* The end of the primary headers: limits and the headers that are missing. */
static void cleanup_headers_done(struct cleanup_state *st)
{
    const char *resent = st->resent ? "Resent-" : "";
    int add = st->local_context || var_always_add_missing_headers;
    struct strbuf h;
    size_t i;

    st->in_headers = 0;
    if (st->hops >= var_hopcount_limit) {
        msg_warn("%s: message rejected: hopcount exceeded", st->qid);
        cleanup_error(st, CLEANUP_STAT_HOPS, "554 5.4.0 Error: too many hops");
    }
    if (st->errs)
        return;
    strbuf_init(&h, 256, 0);
    if (add && !cleanup_seen(st, st->resent ? HEADER_RESENT_MESSAGE_ID : HEADER_MESSAGE_ID)) {
        char stamp[32];
        struct tm tm;
        time_t t = st->arrival.tv_sec;

        gmtime_r(&t, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
        strbuf_printf(&h, "%sMessage-Id: <%s.%s@%s>", resent, stamp, st->qid, var_myhostname);
        cleanup_out_line(st, h.data, h.len);
        msg_info("%s: %smessage-id=<%s.%s@%s>", st->qid, st->resent ? "resent-" : "", stamp,
                 st->qid, var_myhostname);
        st->seen |= 1UL << (st->resent ? HEADER_RESENT_MESSAGE_ID : HEADER_MESSAGE_ID);
        strbuf_reset(&h);
    }
    if (!cleanup_seen(st, HEADER_MESSAGE_ID))
        msg_info("%s: message-id=<>", st->qid);
    if (add && !cleanup_seen(st, st->resent ? HEADER_RESENT_DATE : HEADER_DATE)) {
        strbuf_printf(&h, "%sDate: ", resent);
        cleanup_date(&h, st->arrival.tv_sec);
        cleanup_out_line(st, h.data, h.len);
        strbuf_reset(&h);
    }
    if (add && !cleanup_seen(st, st->resent ? HEADER_RESENT_FROM : HEADER_FROM)) {
        struct strbuf addr;

        strbuf_init(&addr, 64, 0);
        if (st->sender.len > 0)
            address_quote(st->sender.data, &addr);
        else
            strbuf_set(&addr, "MAILER-DAEMON");
        strbuf_printf(&h, "%sFrom: ", resent);
        if (st->sender.len > 0 && st->full_name.len > 0) {
            cleanup_phrase(&h, st->full_name.data);
            strbuf_printf(&h, " <%s>", addr.data);
        } else {
            strbuf_puts(&h, addr.data);
        }
        cleanup_out_line(st, h.data, h.len);
        strbuf_reset(&h);
        strbuf_release(&addr);
    }
    if (add && !cleanup_seen(st, HEADER_TO) && !cleanup_seen(st, HEADER_CC)
        && !cleanup_seen(st, HEADER_RESENT_TO) && !cleanup_seen(st, HEADER_RESENT_CC)
        && var_undisclosed_recipients_header[0] != 0) {
        const char *u = var_undisclosed_recipients_header;

        if (header_name_len(u, strlen(u)) == 0)
            msg_warn("bad undisclosed_recipients_header text \"%.100s\" -- "
                     "need \"headername: headervalue\"", u);
        else
            cleanup_out_line(st, u, strlen(u));
    }
    strbuf_release(&h);
    /* sendmail -t: Resent- recipients, when there are any, replace the others. */
    if (st->nrxtract > 0)
        for (i = 0; i < st->nrxtract; i++)
            cleanup_addr_late(st, st->rxtract[i].addr, 0, 0);
    else
        for (i = 0; i < st->nxtract; i++)
            cleanup_addr_late(st, st->xtract[i].addr, 0, 0);
}

/* --- Body ------------------------------------------------------------------ */

static void cleanup_body_piece(struct cleanup_state *st, const char *data, size_t len,
                               int eol)
{
    const char *value = NULL;
    enum cleanup_act_result act = CLEANUP_ACT_KEEP;

    if (st->errs)
        return;
    if (cleanup_body_checks && !(st->flags & CLEANUP_FLAG_BOUNCE)
        && st->body_len < (unsigned long long) var_body_checks_size_limit) {
        char *copy = xstrndup(data, len);

        if ((value = cleanup_check(st, cleanup_body_checks, "body_checks", copy)) != NULL)
            act = cleanup_act(st, "body", data, len, value);
        free(copy);
    }
    st->body_len += len + (eol ? 1 : 0);
    switch (act) {
    case CLEANUP_ACT_DROP:
        return;
    case CLEANUP_ACT_REPLACE:
        data = st->tmp.data;
        len = st->tmp.len;
        break;
    case CLEANUP_ACT_KEEP:
        break;
    }
    cleanup_out(st, data, len);
    if (eol)
        cleanup_out(st, "\n", 1);
}

/* One piece of a physical line; partial: more of the same line follows. */
static void cleanup_piece(struct cleanup_state *st, const char *data, size_t len, int partial,
                          int eol)
{
    if (st->in_headers) {
        switch (header_parser_line(st->hp, data, len, partial)) {
        case HEADER_MORE:
            return;
        case HEADER_END:
            cleanup_headers_done(st);
            cleanup_out(st, "\n", 1);
            st->body_seen = 1;
            return;
        case HEADER_BODY:
            /* No empty line after the headers: put one in, so that the headers
             * added above never run into the body (Postfix does the same). */
            cleanup_headers_done(st);
            cleanup_out(st, "\n", 1);
            st->body_seen = 1;
            break;
        }
    }
    cleanup_body_piece(st, data, len, eol && !partial);
}

void cleanup_message_begin(struct cleanup_state *st)
{
    if (st->hp == NULL)
        st->hp = header_parser_new((size_t) var_header_size_limit, cleanup_header, st);
    else
        header_parser_reset(st->hp);
    if (st->line.data == NULL)
        strbuf_init(&st->line, 1024, cleanup_piece_max);
    strbuf_reset(&st->line);
    st->in_headers = 1;
    cleanup_milter_begin(st);
}

void cleanup_message_data(struct cleanup_state *st, const char *data, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t) (nl - data) : len;

        while (take > 0) {
            size_t room = cleanup_piece_max - st->line.len, n = take < room ? take : room;

            if (room == 0) {
                /* The piece is full and the line goes on. */
                cleanup_piece(st, st->line.data, st->line.len, 1, 0);
                strbuf_reset(&st->line);
                continue;
            }
            if (strbuf_append(&st->line, data, n) < 0)
                msg_panic("cleanup_message_data: line buffer arithmetic");
            data += n;
            len -= n;
            take -= n;
        }
        if (nl) {
            cleanup_piece(st, st->line.data, st->line.len, 0, 1);
            strbuf_reset(&st->line);
            data++;
            len--;
        }
    }
}

void cleanup_message_end(struct cleanup_state *st)
{
    if (st->line.len > 0) {
        /* The content ended without a final LF; it stays that way. */
        cleanup_piece(st, st->line.data, st->line.len, 0, 0);
        strbuf_reset(&st->line);
    }
    if (st->in_headers) {
        header_parser_end(st->hp);
        cleanup_headers_done(st);
    }
    if (st->milter) {
        if (!st->errs && cleanup_content_begin(st) == 0 && !st->content_ended)
            cleanup_milter_end(st);
        return;
    }
    if (!st->errs && cleanup_content_begin(st) == 0 && !st->content_ended) {
        st->content_ended = 1;
        if (qfile_content_end(st->w) < 0)
            cleanup_write_error(st, errno);
    }
}

void cleanup_message_free(struct cleanup_state *st)
{
    size_t i;

    for (i = 0; i < st->nxtract; i++)
        free(st->xtract[i].addr);
    for (i = 0; i < st->nrxtract; i++)
        free(st->rxtract[i].addr);
    free(st->xtract);
    free(st->rxtract);
    cleanup_milter_free(st);
    st->xtract = st->rxtract = NULL;
    st->nxtract = st->nrxtract = st->xtract_cap = st->rxtract_cap = 0;
}
