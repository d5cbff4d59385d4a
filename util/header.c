/*
 * header.c - RFC 5322 message headers: recognising, assembling, naming and
 * taking addresses out of them (see header.h).
 * Input is untrusted message text: every scan is bounded by the length the
 * caller gives, stored headers stop at the size limit (the excess is dropped
 * and flagged, Postfix's header_size_limit semantics), and the address
 * tokenizer counts tokens against header_address_token_limit. Nothing here
 * fails on bad input; argument errors are caller bugs and panic.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "header.h"
#include "msg.h"
#include "mymalloc.h"

static const struct header_info header_table[] = {
    {"Apparently-To", HEADER_APPARENTLY_TO, HEADER_FLAG_RECIPIENT},
    {"Bcc", HEADER_BCC, HEADER_FLAG_RECIPIENT},
    {"Cc", HEADER_CC, HEADER_FLAG_RECIPIENT},
    {"Content-Transfer-Encoding", HEADER_CONTENT_TRANSFER_ENCODING, 0},
    {"Content-Type", HEADER_CONTENT_TYPE, 0},
    {"Date", HEADER_DATE, 0},
    {"Delivered-To", HEADER_DELIVERED_TO, 0},
    {"Errors-To", HEADER_ERRORS_TO, HEADER_FLAG_SENDER},
    {"From", HEADER_FROM, HEADER_FLAG_SENDER},
    {"Message-ID", HEADER_MESSAGE_ID, 0},
    {"MIME-Version", HEADER_MIME_VERSION, 0},
    {"Received", HEADER_RECEIVED, 0},
    {"Reply-To", HEADER_REPLY_TO, HEADER_FLAG_SENDER},
    {"Resent-Bcc", HEADER_RESENT_BCC, HEADER_FLAG_RECIPIENT | HEADER_FLAG_RESENT},
    {"Resent-Cc", HEADER_RESENT_CC, HEADER_FLAG_RECIPIENT | HEADER_FLAG_RESENT},
    {"Resent-Date", HEADER_RESENT_DATE, HEADER_FLAG_RESENT},
    {"Resent-From", HEADER_RESENT_FROM, HEADER_FLAG_SENDER | HEADER_FLAG_RESENT},
    {"Resent-Message-ID", HEADER_RESENT_MESSAGE_ID, HEADER_FLAG_RESENT},
    {"Resent-Sender", HEADER_RESENT_SENDER, HEADER_FLAG_SENDER | HEADER_FLAG_RESENT},
    {"Resent-To", HEADER_RESENT_TO, HEADER_FLAG_RECIPIENT | HEADER_FLAG_RESENT},
    {"Return-Path", HEADER_RETURN_PATH, HEADER_FLAG_SENDER},
    {"Return-Receipt-To", HEADER_RETURN_RECEIPT_TO, HEADER_FLAG_SENDER},
    {"Sender", HEADER_SENDER, HEADER_FLAG_SENDER},
    {"Subject", HEADER_SUBJECT, 0},
    {"To", HEADER_TO, HEADER_FLAG_RECIPIENT},
    {"X-Original-To", HEADER_X_ORIGINAL_TO, HEADER_FLAG_RECIPIENT},
};

#define HEADER_IS_WSP(c) ((c) == ' ' || (c) == '\t')

size_t header_name_len(const char *line, size_t len)
{
    size_t i = 0, name_len;

    /* ftext: printable US-ASCII except the colon (RFC 5322 section 3.6.8). */
    while (i < len && (unsigned char) line[i] >= 33 && (unsigned char) line[i] <= 126
           && line[i] != ':')
        i++;
    if (i == 0)
        return 0;
    name_len = i;
    /* Obsolete syntax (RFC 5322 section 4.5.8) allows white space before the colon. */
    while (i < len && HEADER_IS_WSP(line[i]))
        i++;
    return i < len && line[i] == ':' ? name_len : 0;
}

int header_is_continuation(const char *line, size_t len)
{
    return len > 0 && HEADER_IS_WSP(line[0]);
}

const struct header_info *header_lookup(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(header_table) / sizeof(header_table[0]); i++) {
        const struct header_info *h = &header_table[i];

        if (strlen(h->name) == len && strncasecmp(h->name, name, len) == 0)
            return h;
    }
    return NULL;
}

int header_split(const char *hdr, size_t len, struct header_field *field)
{
    size_t name_len = header_name_len(hdr, len), i;

    if (name_len == 0)
        return -1;
    i = name_len;
    while (i < len && hdr[i] != ':')
        i++;
    i++;                                /* the colon, which header_name_len found */
    while (i < len && (HEADER_IS_WSP(hdr[i]) || hdr[i] == '\n'))
        i++;
    field->name = hdr;
    field->name_len = name_len;
    field->value = hdr + i;
    field->value_len = len - i;
    return 0;
}

/* --- Logical headers ----------------------------------------------------- */

struct header_parser {
    struct strbuf buf;          /* the header being assembled, at most size_limit */
    size_t size_limit;
    header_emit_fn emit;
    void *ctx;
    int have;                   /* buf holds a header */
    int truncated;              /* bytes of it were dropped */
    int in_line;                /* the last call was a partial line of the headers */
    int done;                   /* HEADER_END or HEADER_BODY was returned */
    size_t count;
};

struct header_parser *header_parser_new(size_t size_limit, header_emit_fn emit, void *ctx)
{
    struct header_parser *p;

    if (size_limit == 0 || emit == NULL)
        msg_panic("header_parser_new: bad arguments");
    p = xcalloc(1, sizeof(*p));
    /* The buffer starts small and grows only as header text arrives. */
    strbuf_init(&p->buf, size_limit < 1024 ? size_limit : 1024, size_limit);
    p->size_limit = size_limit;
    p->emit = emit;
    p->ctx = ctx;
    return p;
}

void header_parser_free(struct header_parser **pp)
{
    if (*pp == NULL)
        return;
    strbuf_release(&(*pp)->buf);
    xfree(pp);
}

void header_parser_reset(struct header_parser *p)
{
    strbuf_reset(&p->buf);
    p->have = p->truncated = p->in_line = p->done = 0;
    p->count = 0;
}

/* Appends what fits under the limit; remembers that the rest was dropped. */
static void header_parser_append(struct header_parser *p, const char *text, size_t len)
{
    size_t room = p->size_limit - p->buf.len;

    if (len > room) {
        p->truncated = 1;
        len = room;
    }
    if (len > 0 && strbuf_append(&p->buf, text, len) < 0)
        msg_panic("header_parser_append: limit arithmetic");
}

static void header_parser_flush(struct header_parser *p)
{
    if (!p->have)
        return;
    p->count++;
    p->emit(p->ctx, p->buf.data, p->buf.len, p->truncated);
    strbuf_reset(&p->buf);
    p->have = p->truncated = 0;
}

enum header_result header_parser_line(struct header_parser *p, const char *line, size_t len,
                                      int partial)
{
    if (p->done)
        msg_panic("header_parser_line: called after the end of the headers");
    if (p->in_line) {
        /* The rest of a physical line whose start was already classified. */
        header_parser_append(p, line, len);
        p->in_line = partial != 0;
        return HEADER_MORE;
    }
    if (len == 0 && !partial) {
        header_parser_flush(p);
        p->done = 1;
        return HEADER_END;
    }
    if (header_is_continuation(line, len) && p->have) {
        header_parser_append(p, "\n", 1);
        header_parser_append(p, line, len);
    } else if (header_name_len(line, len) > 0) {
        header_parser_flush(p);
        p->have = 1;
        header_parser_append(p, line, len);
    } else {
        header_parser_flush(p);
        p->done = 1;
        return HEADER_BODY;
    }
    p->in_line = partial != 0;
    return HEADER_MORE;
}

void header_parser_end(struct header_parser *p)
{
    header_parser_flush(p);
    p->in_line = 0;
}

size_t header_parser_count(const struct header_parser *p)
{
    return p->count;
}

/* --- Address lists ------------------------------------------------------- */

enum header_tok {
    TOK_END,
    TOK_ATOM,                   /* dot-atom text, kept */
    TOK_QSTRING,                /* quoted string, unquoted into the token */
    TOK_LITERAL,                /* [domain literal], brackets kept */
    TOK_SPECIAL,                /* one of < > @ , ; : */
};

struct header_lexer {
    const char *text;
    size_t len;
    size_t pos;
    struct strbuf tok;          /* the token's text */
    int special;                /* the TOK_SPECIAL character */
};

#define HEADER_SPECIALS "()<>@,;:\\\"[]"

static int header_lex_is_atom(unsigned char c)
{
    /* '.' and 8-bit bytes (SMTPUTF8) stay inside atoms; controls, white space
     * and the specials separate them. */
    return c > ' ' && c != 127 && strchr(HEADER_SPECIALS, c) == NULL;
}

/* Skips white space, line breaks, NULs and (nested) comments. */
static void header_lex_skip(struct header_lexer *lx)
{
    while (lx->pos < lx->len) {
        unsigned char c = (unsigned char) lx->text[lx->pos];

        if (c == '(') {
            size_t depth = 0;

            /* A counter, not recursion: a deep nest costs nothing but time. */
            while (lx->pos < lx->len) {
                c = (unsigned char) lx->text[lx->pos++];
                if (c == '\\' && lx->pos < lx->len)
                    lx->pos++;
                else if (c == '(')
                    depth++;
                else if (c == ')' && --depth == 0)
                    break;
            }
        } else if (c <= ' ' || c == 127) {
            lx->pos++;
        } else {
            return;
        }
    }
}

/* The next token; its text (bounded by tok's limit, excess dropped) is in lx->tok. */
static enum header_tok header_lex_next(struct header_lexer *lx, int *overflow)
{
    unsigned char c;

    strbuf_reset(&lx->tok);
    header_lex_skip(lx);
    if (lx->pos >= lx->len)
        return TOK_END;
    c = (unsigned char) lx->text[lx->pos];
    if (c == '"') {
        lx->pos++;
        while (lx->pos < lx->len && lx->text[lx->pos] != '"') {
            if (lx->text[lx->pos] == '\\' && lx->pos + 1 < lx->len)
                lx->pos++;
            if (lx->text[lx->pos] != '\n' && strbuf_putc(&lx->tok, lx->text[lx->pos]) < 0)
                *overflow = 1;
            lx->pos++;
        }
        if (lx->pos < lx->len)
            lx->pos++;                  /* the closing quote */
        return TOK_QSTRING;
    }
    if (c == '[') {
        while (lx->pos < lx->len && lx->text[lx->pos] != ']') {
            if (lx->text[lx->pos] > ' ' && strbuf_putc(&lx->tok, lx->text[lx->pos]) < 0)
                *overflow = 1;
            lx->pos++;
        }
        if (strbuf_putc(&lx->tok, ']') < 0)
            *overflow = 1;
        if (lx->pos < lx->len)
            lx->pos++;
        return TOK_LITERAL;
    }
    if (strchr("<>@,;:", c) != NULL && c != 0) {
        lx->special = c;
        lx->pos++;
        return TOK_SPECIAL;
    }
    if (!header_lex_is_atom(c)) {
        /* A stray ')', ']' or backslash: take it as text of its own. */
        lx->pos++;
        if (strbuf_putc(&lx->tok, c) < 0)
            *overflow = 1;
        return TOK_ATOM;
    }
    while (lx->pos < lx->len && header_lex_is_atom((unsigned char) lx->text[lx->pos])) {
        if (strbuf_putc(&lx->tok, lx->text[lx->pos]) < 0)
            *overflow = 1;
        lx->pos++;
    }
    return TOK_ATOM;
}

struct header_addr_state {
    struct strbuf addr;         /* the address being collected */
    int overflow;               /* it grew past max_addr */
    int in_angle;               /* between < and > */
    int angle_done;             /* a <...> was seen: later words are ignored */
    size_t found;
    header_addr_fn fn;
    void *ctx;
    int stop;
};

static void header_addr_clear(struct header_addr_state *st)
{
    strbuf_reset(&st->addr);
    st->overflow = 0;
}

/* Ends one mailbox: reports it unless empty or over the limit. */
static void header_addr_emit(struct header_addr_state *st)
{
    if (st->addr.len > 0 && !st->overflow && memchr(st->addr.data, 0, st->addr.len) == NULL) {
        st->found++;
        if (st->fn(st->ctx, st->addr.data) != 0)
            st->stop = 1;
    }
    header_addr_clear(st);
    st->in_angle = st->angle_done = 0;
}

static void header_addr_add(struct header_addr_state *st, const char *text, size_t len)
{
    if (st->angle_done && !st->in_angle)
        return;                         /* words after <addr>: not part of it */
    if (strbuf_append(&st->addr, text, len) < 0)
        st->overflow = 1;
}

size_t header_addr_list(const char *value, size_t len, size_t token_limit, size_t max_addr,
                        header_addr_fn fn, void *ctx)
{
    struct header_lexer lx = {value, len, 0, {0}, 0};
    struct header_addr_state st;
    size_t tokens = 0;
    enum header_tok t;
    int tok_overflow = 0;

    if (token_limit == 0 || max_addr == 0 || fn == NULL)
        msg_panic("header_addr_list: bad arguments");
    memset(&st, 0, sizeof(st));
    strbuf_init(&lx.tok, 64, max_addr);
    strbuf_init(&st.addr, 64, max_addr);
    st.fn = fn;
    st.ctx = ctx;
    while (!st.stop && (t = header_lex_next(&lx, &tok_overflow)) != TOK_END) {
        if (++tokens > token_limit) {
            header_addr_clear(&st);     /* a cut-off address is not reported */
            break;
        }
        if (tok_overflow) {
            st.overflow = 1;
            tok_overflow = 0;
        }
        if (t != TOK_SPECIAL) {
            header_addr_add(&st, lx.tok.data, lx.tok.len);
            continue;
        }
        switch (lx.special) {
        case '<':
            header_addr_clear(&st);     /* the display name is not the address */
            st.in_angle = st.angle_done = 1;
            break;
        case '>':
            st.in_angle = 0;
            break;
        case '@':
            header_addr_add(&st, "@", 1);
            break;
        case ':':
            /* In <...> this ends a source route (RFC 5322 obs-route); outside,
             * it ends a group's display name. Either way, drop what came before. */
            header_addr_clear(&st);
            if (!st.in_angle)
                st.angle_done = 0;
            break;
        case ',':
            if (!st.in_angle)
                header_addr_emit(&st);
            else
                header_addr_clear(&st); /* obs-route "@a,@b:" */
            break;
        case ';':
            header_addr_emit(&st);      /* the end of a group */
            break;
        }
    }
    if (!st.stop && tokens <= token_limit)
        header_addr_emit(&st);
    strbuf_release(&lx.tok);
    strbuf_release(&st.addr);
    return st.found;
}
