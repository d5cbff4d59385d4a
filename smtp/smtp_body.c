/*
 * smtp_body.c - the message content as an SMTP/LMTP DATA stream.
 *
 * The queue file holds the content with LF line ends, dot-unstuffed. Out go
 * CRLF line ends only: a LF, a lone CR or a CRLF each become one CRLF, so the
 * client never sends a bare CR or LF (SMTP smuggling, CVE-2023-51764). A line
 * that starts with "." gets another; a line longer than smtp_line_length_limit
 * is broken, in headers with CRLF SPACE (a continuation), in the body with
 * CRLF, as Postfix does.
 *
 * With downgrade (8-bit mail, a server without 8BITMIME), the MIME structure
 * is followed (multipart boundaries up to SMTP_MIME_DEPTH levels, message/rfc822
 * bodies as nested entities) and every leaf part whose encoding is 7bit, 8bit
 * or absent is re-encoded as quoted-printable (RFC 2045 section 6.7) with its
 * Content-Transfer-Encoding header replaced; composite parts declared 8bit
 * become 7bit. Headers themselves are sent as they are. Entity headers beyond
 * SMTP_MIME_HDR_MAX bytes are passed through unconverted.
 *
 * Must never: send a bare CR or LF, or read past the content. Failure: -1
 * with why when reading the queue file or writing to the server fails.
 */
#define _GNU_SOURCE                     /* strcasestr */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver_request.h"
#include "params.h"
#include "smtp.h"
#include "stream.h"

#define SMTP_BODY_CHUNK     65536
#define SMTP_MIME_DEPTH     20
#define SMTP_MIME_HDR_MAX   (256 * 1024)
#define SMTP_MIME_LINE_MAX  (64 * 1024)
#define SMTP_BOUNDARY_MAX   200
#define SMTP_QP_LINE        76

/* --- output of one logical line ------------------------------------------- */

struct smtp_out {
    struct stream *s;
    size_t limit;                       /* smtp_line_length_limit, 0 = none */
};

/* Writes data (no CR or LF inside) as one line plus CRLF: dot-stuffed, broken
 * at the limit (with a continuation space in headers). */
static int smtp_out_line(struct smtp_out *o, const char *data, size_t len, int header)
{
    size_t col = 0;

    if (len > 0 && data[0] == '.' && stream_write(o->s, ".", 1) < 0)
        return -1;
    while (o->limit > 0 && len > o->limit - col) {
        size_t n = o->limit - col;

        if (stream_write(o->s, data, n) < 0 || stream_write(o->s, header ? "\r\n " : "\r\n",
                                                            header ? 3 : 2) < 0)
            return -1;
        data += n;
        len -= n;
        col = header ? 1 : 0;
    }
    if (stream_write(o->s, data, len) < 0 || stream_write(o->s, "\r\n", 2) < 0)
        return -1;
    return 0;
}

/* --- the fast path: no MIME conversion ------------------------------------ */

struct smtp_plain {
    int bol;                            /* at the start of a line */
    int header;                         /* still in the message headers */
    int skip_lf;                        /* the last byte was a CR: a LF now ends nothing */
    size_t col;
};

/* One chunk of content; lines may continue from the previous chunk. */
static int smtp_plain_chunk(struct smtp_out *o, struct smtp_plain *p, const char *buf, size_t n)
{
    size_t pos = 0;

    while (pos < n) {
        const char *start, *lf, *cr;
        size_t seg, avail;
        int term;

        if (p->skip_lf) {
            p->skip_lf = 0;
            if (buf[pos] == '\n') {
                pos++;
                continue;
            }
        }
        start = buf + pos;
        avail = n - pos;
        lf = memchr(start, '\n', avail);
        seg = lf ? (size_t) (lf - start) : avail;
        if ((cr = memchr(start, '\r', seg)) != NULL)
            seg = (size_t) (cr - start);
        term = seg < avail;             /* start[seg] is a LF or CR */
        if (p->bol) {
            if (seg == 0 && term)
                p->header = 0;          /* the empty line after the headers */
            else if (seg > 0 && start[0] == '.' && stream_write(o->s, ".", 1) < 0)
                return -1;
        }
        while (o->limit > 0 && seg > o->limit - p->col) {
            size_t k = o->limit - p->col;

            if (stream_write(o->s, start, k) < 0
                || stream_write(o->s, p->header ? "\r\n " : "\r\n", p->header ? 3 : 2) < 0)
                return -1;
            start += k;
            seg -= k;
            pos += k;
            p->col = p->header ? 1 : 0;
            p->bol = 0;
        }
        if (seg > 0) {
            if (stream_write(o->s, start, seg) < 0)
                return -1;
            p->bol = 0;
        }
        pos += seg;
        p->col += seg;
        if (term) {
            if (buf[pos] == '\r')
                p->skip_lf = 1;
            pos++;
            if (stream_write(o->s, "\r\n", 2) < 0)
                return -1;
            p->col = 0;
            p->bol = 1;
        }
    }
    return 0;
}

/* --- the downgrade path: MIME-aware, line by line -------------------------- */

enum smtp_mime_state { MIME_HEADER, MIME_BODY };

struct smtp_mime {
    struct smtp_out *o;
    enum smtp_mime_state state;
    int top;                            /* the current entity is the message itself */
    int qp;                             /* the current leaf body is being encoded */
    int raw;                            /* entity headers overflowed: no conversion */
    int depth;
    char bound[SMTP_MIME_DEPTH][SMTP_BOUNDARY_MAX + 1];
    size_t blen[SMTP_MIME_DEPTH];
    struct strbuf hdrs;                 /* entity header lines, each ended by "\n" */
    struct strbuf qpline;
};

/* The value of a logical header named name (unfolded into out), 1 found. */
static int smtp_mime_header(const struct strbuf *hdrs, const char *name, struct strbuf *out)
{
    const char *p = hdrs->data, *end = hdrs->data + hdrs->len;
    size_t nl = strlen(name);

    strbuf_reset(out);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t) (end - p));

        if (eol == NULL)
            eol = end;
        if ((size_t) (eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;

            for (;;) {
                (void) strbuf_append(out, v, (size_t) (eol - v));
                if (eol >= end || eol + 1 >= end || (eol[1] != ' ' && eol[1] != '\t'))
                    break;
                v = eol + 1;
                if ((eol = memchr(v, '\n', (size_t) (end - v))) == NULL)
                    eol = end;
            }
            return 1;
        }
        p = eol + 1;
    }
    return 0;
}

/* The first token of a header value, lower case, into buf. */
static void smtp_mime_token(const char *v, char *buf, size_t size)
{
    size_t n = 0;

    while (*v == ' ' || *v == '\t')
        v++;
    while (*v && *v != ';' && *v != ' ' && *v != '\t' && *v != '(' && n + 1 < size)
        buf[n++] = (char) tolower((unsigned char) *v++);
    buf[n] = 0;
}

/* The boundary parameter of a Content-Type value, 1 found. */
static int smtp_mime_boundary(const char *v, char *buf, size_t size)
{
    const char *p = v;
    size_t n = 0;

    while ((p = strcasestr(p, "boundary")) != NULL) {
        const char *q = p + 8;

        if (p > v && (isalnum((unsigned char) p[-1]) || p[-1] == '-' || p[-1] == '_')) {
            p = q;
            continue;
        }
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q != '=') {
            p = q;
            continue;
        }
        q++;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '"') {
            q++;
            while (*q && *q != '"' && n + 1 < size)
                buf[n++] = *q++;
        } else {
            while (*q && *q != ';' && *q != ' ' && *q != '\t' && n + 1 < size)
                buf[n++] = *q++;
        }
        buf[n] = 0;
        return n > 0;
    }
    return 0;
}

/* Emits the collected headers, replacing Content-Transfer-Encoding by cte when
 * cte is set (added when absent), and adding MIME-Version when add_mv. */
static int smtp_mime_flush_headers(struct smtp_mime *m, const char *cte, int add_mv)
{
    const char *p = m->hdrs.data, *end = m->hdrs.data + m->hdrs.len;
    int in_cte = 0, had_cte = 0;
    char line[64];

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t) (end - p));
        size_t len;

        if (eol == NULL)
            eol = end;
        len = (size_t) (eol - p);
        if (len > 0 && (p[0] == ' ' || p[0] == '\t')) {
            if (!in_cte && smtp_out_line(m->o, p, len, 1) < 0)
                return -1;
        } else {
            in_cte = cte && len > 26 && strncasecmp(p, "Content-Transfer-Encoding:", 26) == 0;
            if (in_cte && !had_cte) {
                had_cte = 1;
                snprintf(line, sizeof(line), "Content-Transfer-Encoding: %s", cte);
                if (smtp_out_line(m->o, line, strlen(line), 1) < 0)
                    return -1;
            } else if (!in_cte && smtp_out_line(m->o, p, len, 1) < 0) {
                return -1;
            }
        }
        p = eol + 1;
    }
    if (add_mv && smtp_out_line(m->o, "MIME-Version: 1.0", 17, 1) < 0)
        return -1;
    if (cte && !had_cte) {
        snprintf(line, sizeof(line), "Content-Transfer-Encoding: %s", cte);
        if (smtp_out_line(m->o, line, strlen(line), 1) < 0)
            return -1;
    }
    strbuf_reset(&m->hdrs);
    return 0;
}

/* End of an entity's headers: decide how its body goes out. */
static int smtp_mime_end_headers(struct smtp_mime *m)
{
    struct strbuf v;
    char type[128], enc[64], b[SMTP_BOUNDARY_MAX + 1];
    int rc, add_mv = 0, composite_8bit;

    strbuf_init(&v, 256, SMTP_MIME_HDR_MAX);
    type[0] = enc[0] = 0;
    if (smtp_mime_header(&m->hdrs, "Content-Type", &v))
        smtp_mime_token(v.data, type, sizeof(type));
    if (smtp_mime_header(&m->hdrs, "Content-Transfer-Encoding", &v)) {
        smtp_mime_token(v.data, enc, sizeof(enc));
    }
    composite_8bit = strcmp(enc, "8bit") == 0 || strcmp(enc, "binary") == 0;
    m->qp = 0;
    if (m->raw) {
        rc = smtp_mime_flush_headers(m, NULL, 0);
        m->state = MIME_BODY;
    } else if (strncmp(type, "multipart/", 10) == 0
               && (smtp_mime_header(&m->hdrs, "Content-Type", &v), 1)
               && smtp_mime_boundary(v.data, b, sizeof(b)) && m->depth < SMTP_MIME_DEPTH) {
        snprintf(m->bound[m->depth], sizeof(m->bound[0]), "%s", b);
        m->blen[m->depth] = strlen(b);
        m->depth++;
        rc = smtp_mime_flush_headers(m, composite_8bit ? "7bit" : NULL, 0);
        m->state = MIME_BODY;
    } else if (strcmp(type, "message/rfc822") == 0) {
        rc = smtp_mime_flush_headers(m, composite_8bit ? "7bit" : NULL, 0);
        m->state = MIME_HEADER;         /* the body is a message: its headers follow */
        m->top = 0;
        if (rc == 0)
            rc = smtp_out_line(m->o, "", 0, 1);
        strbuf_release(&v);
        return rc;
    } else if (enc[0] == 0 || strcmp(enc, "7bit") == 0 || strcmp(enc, "8bit") == 0) {
        if (m->top && !smtp_mime_header(&m->hdrs, "MIME-Version", &v))
            add_mv = 1;
        rc = smtp_mime_flush_headers(m, "quoted-printable", add_mv);
        m->qp = 1;
        m->state = MIME_BODY;
    } else {
        rc = smtp_mime_flush_headers(m, NULL, 0);
        m->state = MIME_BODY;
    }
    m->top = 0;
    strbuf_release(&v);
    if (rc == 0)
        rc = smtp_out_line(m->o, "", 0, 1);
    return rc;
}

/* Quoted-printable encoding of one line, soft breaks at 76 columns. */
static int smtp_mime_qp_line(struct smtp_mime *m, const char *data, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    strbuf_reset(&m->qpline);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) data[i];
        char tok[3];
        size_t tl;

        if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && i + 1 < len)) {
            tok[0] = (char) c;
            tl = 1;
        } else {
            tok[0] = '=';
            tok[1] = hex[c >> 4];
            tok[2] = hex[c & 15];
            tl = 3;
        }
        if (m->qpline.len + tl > SMTP_QP_LINE - 1) {
            (void) strbuf_putc(&m->qpline, '=');
            if (smtp_out_line(m->o, m->qpline.data, m->qpline.len, 0) < 0)
                return -1;
            strbuf_reset(&m->qpline);
        }
        (void) strbuf_append(&m->qpline, tok, tl);
    }
    return smtp_out_line(m->o, m->qpline.data, m->qpline.len, 0);
}

/* Is line a boundary of the stack? Returns the level + 1, negative when it
 * closes that level, 0 when it is no boundary. */
static int smtp_mime_is_boundary(const struct smtp_mime *m, const char *line, size_t len)
{
    int i;

    if (len < 3 || line[0] != '-' || line[1] != '-')
        return 0;
    for (i = m->depth - 1; i >= 0; i--) {
        size_t bl = m->blen[i], k;

        if (len < 2 + bl || memcmp(line + 2, m->bound[i], bl) != 0)
            continue;
        k = 2 + bl;
        if (len >= k + 2 && line[k] == '-' && line[k + 1] == '-')
            return -(i + 1);
        while (k < len && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k == len)
            return i + 1;
    }
    return 0;
}

static int smtp_mime_line(struct smtp_mime *m, const char *line, size_t len)
{
    int b = m->depth ? smtp_mime_is_boundary(m, line, len) : 0;

    if (b != 0) {
        if (m->state == MIME_HEADER && smtp_mime_end_headers(m) < 0)
            return -1;
        m->qp = 0;
        m->raw = 0;
        if (b > 0) {
            m->depth = b;
            m->state = MIME_HEADER;
        } else {
            m->depth = -b - 1;
            m->state = MIME_BODY;       /* the parent's epilogue */
        }
        return smtp_out_line(m->o, line, len, 0);
    }
    if (m->state == MIME_HEADER) {
        if (len == 0)
            return smtp_mime_end_headers(m);
        if (!m->raw && (strbuf_append(&m->hdrs, line, len) < 0 || strbuf_putc(&m->hdrs, '\n') < 0)) {
            /* Too many header bytes for one entity: send them as they are. */
            m->raw = 1;
        }
        if (m->raw) {
            if (m->hdrs.len && smtp_mime_flush_headers(m, NULL, 0) < 0)
                return -1;
            return smtp_out_line(m->o, line, len, 1);
        }
        return 0;
    }
    if (m->qp)
        return smtp_mime_qp_line(m, line, len);
    return smtp_out_line(m->o, line, len, 0);
}

/* --- the driver ------------------------------------------------------------ */

int smtp_body_send(struct stream *out, const struct deliver_request *req, int downgrade,
                   struct strbuf *why)
{
    struct smtp_out o = {out, var_smtp_line_length_limit > 0
                         ? (size_t) var_smtp_line_length_limit : 0};
    struct smtp_plain p = {1, 1, 0, 0};
    struct smtp_mime *m = NULL;
    struct strbuf line;
    char *buf = malloc(SMTP_BODY_CHUNK);
    off_t pos = 0;
    ssize_t n;
    int rc = 0, skip_lf = 0, in_line = 0;

    if (buf == NULL) {
        strbuf_set(why, "out of memory");
        return -1;
    }
    strbuf_init(&line, 1024, SMTP_MIME_LINE_MAX);
    if (downgrade) {
        m = calloc(1, sizeof(*m));
        if (m == NULL) {
            free(buf);
            strbuf_release(&line);
            strbuf_set(why, "out of memory");
            return -1;
        }
        m->o = &o;
        m->state = MIME_HEADER;
        m->top = 1;
        strbuf_init(&m->hdrs, 4096, SMTP_MIME_HDR_MAX);
        strbuf_init(&m->qpline, 128, 1024);
    }
    while (rc == 0 && (n = deliver_content_read(req, &pos, buf, SMTP_BODY_CHUNK)) > 0) {
        size_t i = 0;

        if (m == NULL) {
            rc = smtp_plain_chunk(&o, &p, buf, (size_t) n);
            continue;
        }
        /* Line assembly for the MIME path: LF, CR or CRLF ends a line. */
        while (rc == 0 && i < (size_t) n) {
            char c = buf[i++];

            if (skip_lf) {
                skip_lf = 0;
                if (c == '\n')
                    continue;
            }
            if (c == '\n' || c == '\r') {
                skip_lf = c == '\r';
                rc = smtp_mime_line(m, line.data, line.len);
                strbuf_reset(&line);
                in_line = 0;
            } else if (strbuf_putc(&line, c) < 0) {
                /* An over-long line: this piece goes out as a line of its own. */
                rc = smtp_mime_line(m, line.data, line.len);
                strbuf_reset(&line);
                (void) strbuf_putc(&line, c);
                in_line = 1;
            } else {
                in_line = 1;
            }
        }
    }
    if (rc == 0 && n < 0) {
        strbuf_printf(why, "error reading the queue file: %s", strerror(errno));
        rc = -2;
    }
    if (rc == 0) {
        if (m && in_line)
            rc = smtp_mime_line(m, line.data, line.len);
        else if (m && m->state == MIME_HEADER && m->hdrs.len)
            rc = smtp_mime_flush_headers(m, NULL, 0);
        else if (!m && !p.bol)
            rc = stream_write(out, "\r\n", 2);
    }
    if (rc == -1)
        strbuf_set(why, stream_strerror(out, STREAM_DIR_WRITE));
    if (m) {
        strbuf_release(&m->hdrs);
        strbuf_release(&m->qpline);
        free(m);
    }
    strbuf_release(&line);
    free(buf);
    return rc < 0 ? -1 : 0;
}
