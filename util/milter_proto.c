/*
 * milter_proto.c - the milter packet codec (milter_proto.h).
 * Encodes MTA commands into a strbuf and decodes filter replies in place.
 * Every byte from a filter is untrusted: the decoder checks lengths before
 * each read, requires every string to end inside the packet, rejects a
 * packet with bytes left over, and bounds texts; it never reads past len
 * and never allocates. Failure is -1 with a static reason; never a panic.
 */
#include <ctype.h>
#include <string.h>

#include "milter_proto.h"
#include "msg.h"

size_t milter_pkt_begin(struct strbuf *pkt, int cmd)
{
    size_t start = pkt->len;
    unsigned char hdr[5] = {0, 0, 0, 0, (unsigned char) cmd};

    (void) strbuf_append(pkt, hdr, sizeof(hdr));
    return start;
}

void milter_pkt_u32(struct strbuf *pkt, uint32_t v)
{
    unsigned char b[4] = {(unsigned char) (v >> 24), (unsigned char) (v >> 16),
                          (unsigned char) (v >> 8), (unsigned char) v};

    (void) strbuf_append(pkt, b, sizeof(b));
}

void milter_pkt_u16(struct strbuf *pkt, uint16_t v)
{
    unsigned char b[2] = {(unsigned char) (v >> 8), (unsigned char) v};

    (void) strbuf_append(pkt, b, sizeof(b));
}

void milter_pkt_str(struct strbuf *pkt, const char *s)
{
    (void) strbuf_append(pkt, s, strlen(s) + 1);
}

void milter_pkt_bytes(struct strbuf *pkt, const void *data, size_t len)
{
    (void) strbuf_append(pkt, data, len);
}

int milter_pkt_end(struct strbuf *pkt, size_t start)
{
    size_t n;
    unsigned char *p;

    if (pkt->len < start + 5)
        return -1;                      /* the header itself did not fit */
    n = pkt->len - start - 4;
    if (n > 0xffffffffUL)
        return -1;
    p = (unsigned char *) pkt->data + start;
    p[0] = (unsigned char) (n >> 24);
    p[1] = (unsigned char) (n >> 16);
    p[2] = (unsigned char) (n >> 8);
    p[3] = (unsigned char) n;
    return 0;
}

int milter_pkt_length(const unsigned char hdr[4], size_t *len)
{
    uint32_t n = ((uint32_t) hdr[0] << 24) | ((uint32_t) hdr[1] << 16)
        | ((uint32_t) hdr[2] << 8) | hdr[3];

    if (n == 0 || n > MILTER_PKT_MAX)
        return -1;                      /* the command byte is counted: 0 is impossible */
    *len = n;
    return 0;
}

/* A cursor over a payload. */
struct milter_cur {
    char *p;
    size_t left;
};

static int milter_get_u32(struct milter_cur *c, uint32_t *v)
{
    const unsigned char *b = (const unsigned char *) c->p;

    if (c->left < 4)
        return -1;
    *v = ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16) | ((uint32_t) b[2] << 8) | b[3];
    c->p += 4;
    c->left -= 4;
    return 0;
}

/* A NUL-terminated string that must end inside the payload. */
static int milter_get_str(struct milter_cur *c, const char **s)
{
    char *nul = c->left ? memchr(c->p, 0, c->left) : NULL;

    if (nul == NULL)
        return -1;
    *s = c->p;
    c->left -= (size_t) (nul - c->p) + 1;
    c->p = nul + 1;
    return 0;
}

int milter_replycode_valid(const char *text)
{
    const char *line = text;
    char code[4];
    size_t lines = 0;

    if (strlen(text) > MILTER_REPLY_TEXT_MAX)
        return -1;
    if ((text[0] != '4' && text[0] != '5') || !isdigit((unsigned char) text[1])
        || !isdigit((unsigned char) text[2]))
        return -1;
    memcpy(code, text, 3);
    code[3] = 0;
    for (;;) {
        const char *end = strstr(line, "\r\n");

        if (++lines > 100 || strncmp(line, code, 3) != 0)
            return -1;
        if (end == NULL)
            return line[3] == 0 || line[3] == ' ' ? (strpbrk(line, "\r\n") ? -1 : 0) : -1;
        if (line[3] != '-')
            return -1;                  /* only the last line has "code " */
        if (memchr(line, '\r', (size_t) (end - line)) || memchr(line, '\n', (size_t) (end - line)))
            return -1;
        line = end + 2;
    }
}

/* Sendmail's smfi_setreply doubles '%': "%%" is one '%', a lone '%' goes. */
static void milter_undo_percent(char *s)
{
    char *r = s, *w = s;

    while (*r) {
        if (*r == '%') {
            r++;
            if (*r == 0)
                break;
        }
        *w++ = *r++;
    }
    *w = 0;
}

static int milter_done(struct milter_cur *c, const char **why)
{
    if (c->left != 0) {
        *why = "bytes after the end of the reply";
        return -1;
    }
    return 0;
}

int milter_reply_decode(int cmd, char *data, size_t len, struct milter_reply *r,
                        const char **why)
{
    struct milter_cur c = {data, len};

    memset(r, 0, sizeof(*r));
    r->cmd = cmd;
    switch (cmd) {
    case SMFIR_ACCEPT:
    case SMFIR_CONTINUE:
    case SMFIR_DISCARD:
    case SMFIR_REJECT:
    case SMFIR_TEMPFAIL:
    case SMFIR_PROGRESS:
    case SMFIR_SKIP:
    case SMFIR_SHUTDOWN:
    case SMFIR_CONN_FAIL:
        /* libmilter sends no payload; tolerate none. */
        return milter_done(&c, why);
    case SMFIR_REPLYCODE:
        if (milter_get_str(&c, &r->text) < 0) {
            *why = "reply code text without a terminator";
            return -1;
        }
        if (milter_done(&c, why) < 0)
            return -1;
        milter_undo_percent((char *) r->text);
        if (milter_replycode_valid(r->text) < 0) {
            *why = "malformed reply code text";
            return -1;
        }
        return 0;
    case SMFIR_QUARANTINE:
        if (milter_get_str(&c, &r->text) < 0 || strlen(r->text) > MILTER_REPLY_TEXT_MAX) {
            *why = "malformed quarantine reason";
            return -1;
        }
        return milter_done(&c, why);
    case SMFIR_ADDHEADER:
        if (milter_get_str(&c, &r->name) < 0 || milter_get_str(&c, &r->value) < 0) {
            *why = "malformed add header request";
            return -1;
        }
        break;
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER:
        if (milter_get_u32(&c, &r->index) < 0 || milter_get_str(&c, &r->name) < 0
            || milter_get_str(&c, &r->value) < 0) {
            *why = cmd == SMFIR_INSHEADER ? "malformed insert header request"
                : "malformed change header request";
            return -1;
        }
        break;
    case SMFIR_ADDRCPT:
    case SMFIR_DELRCPT:
        if (milter_get_str(&c, &r->name) < 0) {
            *why = "malformed recipient request";
            return -1;
        }
        return milter_done(&c, why);
    case SMFIR_ADDRCPT_PAR:
    case SMFIR_CHGFROM:
        if (milter_get_str(&c, &r->name) < 0) {
            *why = cmd == SMFIR_CHGFROM ? "malformed change sender request"
                : "malformed add recipient request";
            return -1;
        }
        if (c.left > 0 && milter_get_str(&c, &r->value) < 0) {
            *why = "malformed ESMTP arguments";
            return -1;
        }
        return milter_done(&c, why);
    case SMFIR_REPLBODY:
        r->data = data;
        r->len = len;
        return 0;
    default:
        *why = "unknown reply code";
        return -1;
    }
    /* Header requests: a name is a non-empty printable token without ':'. */
    if (*r->name == 0 || strpbrk(r->name, ":\r\n") != NULL) {
        *why = "bad header name";
        return -1;
    }
    {
        const char *p;

        for (p = r->name; *p; p++)
            if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 127) {
                *why = "bad header name";
                return -1;
            }
    }
    return milter_done(&c, why);
}

int milter_optneg_decode(char *data, size_t len, struct milter_optneg *o, const char **why)
{
    struct milter_cur c = {data, len};
    int i;

    memset(o, 0, sizeof(*o));
    if (milter_get_u32(&c, &o->version) < 0 || milter_get_u32(&c, &o->actions) < 0
        || milter_get_u32(&c, &o->protocol) < 0) {
        *why = "short negotiation reply";
        return -1;
    }
    /* Macro lists per stage (SETSYMLIST): u32 stage, string; each stage once. */
    for (i = 0; c.left > 0; i++) {
        uint32_t stage;
        const char *list;

        if (i >= MILTER_STAGE_COUNT || milter_get_u32(&c, &stage) < 0
            || milter_get_str(&c, &list) < 0) {
            *why = "malformed macro list in negotiation reply";
            return -1;
        }
        if (stage >= MILTER_STAGE_COUNT || o->symlist[stage] != NULL
            || strlen(list) > MILTER_SYMLIST_MAX) {
            *why = "bad macro list stage in negotiation reply";
            return -1;
        }
        o->symlist[stage] = list;
    }
    return 0;
}
