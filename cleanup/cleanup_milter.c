/*
 * cleanup_milter.c - milters in cleanup: the content stages (HEADER, EOH,
 * BODY, EOM) and every modification, applied once, where the queue file is
 * written, before anyone hears 250 (Postfix does the same in its cleanup).
 *
 * SUMMARY
 *	A message opened with CLEANUP_FLAG_MILTER (smtpd has smtpd_milters)
 *	or submitted locally while non_smtpd_milters is set is "spooled":
 *	its content, after Petrel's own header processing (and so after
 *	smtpd_untrusted_strip_headers, which runs before any milter sees the
 *	message), goes to a private memfd instead of the queue file, and its
 *	sender and recipients wait in memory. At the end of the message each
 *	milter in turn gets the headers exactly as stored (folding kept), the
 *	end of headers, the body in chunks and the end of message, so each
 *	one sees the previous one's changes. Its modifications (add, insert,
 *	change and delete header, add and delete recipient, change sender,
 *	replace body, quarantine) rebuild the spool; then the envelope and the
 *	final content are written to the queue file. smtpd's milters arrive
 *	with the finish request (their sockets as descriptors, util/milter.h);
 *	for non_smtpd_milters cleanup connects itself and plays an ESMTP
 *	session from localhost [127.0.0.1] first (CONNECT, HELO, MAIL, RCPT,
 *	DATA), as Postfix does.
 *
 * NEVER
 *	Never touches the queue file before the milters are done; never
 *	trusts a filter (util/milter.c bounds and checks every reply); a
 *	message without milters takes none of this path (the streaming path
 *	in cleanup_message.c is unchanged).
 *
 * FAILURE
 *	A spool write error is a queue file write error (451). A filter's
 *	reject or tempfail becomes the finish verdict with its text; discard
 *	and quarantine become CLEANUP_FLAG_DISCARD and CLEANUP_FLAG_HOLD, the
 *	quarantine reason stored as the "hold_reason" attribute. Milters that
 *	failed here are reported to smtpd ("milter_failed" in the reply) so it
 *	stops using their out-of-step connections.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memfd_create */
#endif
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attr.h"
#include "cleanup.h"
#include "cleanup_client.h"
#include "dict.h"
#include "milter.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"

#define CLEANUP_MILTER_HDRS_MAX  10000          /* headers per message */
#define CLEANUP_MILTER_RCPT_MAX  10000
#define CLEANUP_MILTER_CHUNK     (64 * 1024)

struct cleanup_mrcpt {
    char *addr, *orcpt;
    int notify;
    int deleted;
};

struct cleanup_mhdr {
    const char *text;           /* "Name: value" without the final LF */
    size_t len;
    char *own;                  /* allocated text, when not in the spool */
    int deleted;
};

struct cleanup_milter {
    struct milters *ms;
    int own;                    /* non_smtpd_milters: connected here */
    int spool;                  /* memfd */
    int spool_error;
    char *sender;
    int have_sender;
    struct cleanup_mrcpt *rcpt;
    size_t nrcpt;
    /* One filter's pass. */
    const char *map;
    size_t map_len;
    struct cleanup_mhdr *hdr;
    size_t nhdr;
    size_t body_off;
    int new_body;               /* memfd of a replacement body, or -1 */
    int edited;
    struct cleanup_state *st;
};

static char cleanup_milter_failed_buf[64];
static char cleanup_milter_at_rest_buf[64];
static struct dict_list *cleanup_milter_hbc;    /* milter_header_checks */
static int cleanup_milter_hbc_opened;

/* milter_header_checks on a header a filter adds or changes: 1 to keep it
 * (*textp may be replaced), 0 to drop it. */
static int cleanup_milter_header_checks(struct cleanup_milter *cm, char **textp, size_t *lenp)
{
    struct cleanup_state *st = cm->st;
    const char *value;
    size_t n;

    if (!cleanup_milter_hbc_opened) {
        cleanup_milter_hbc_opened = 1;
        if (var_milter_header_checks && var_milter_header_checks[strspn(var_milter_header_checks,
                                                                        ", \t")]) {
            struct strbuf err;

            strbuf_init(&err, 128, 4096);
            if ((cleanup_milter_hbc = dict_list_open(var_milter_header_checks, 0, &err)) == NULL)
                msg_fatal("milter_header_checks = %s: %s", var_milter_header_checks, err.data);
            strbuf_release(&err);
        }
    }
    if (cleanup_milter_hbc == NULL
        || (value = cleanup_check(st, cleanup_milter_hbc, "milter_header_checks", *textp)) == NULL)
        return 1;
    n = strcspn(value, " \t");
    if (n == 7 && strncasecmp(value, "PREPEND", 7) == 0) {
        /* Postfix neither: the line would land outside the headers here. */
        msg_warn("%s: PREPEND in milter_header_checks is not supported -- ignored", st->qid);
        return 1;
    }
    switch (cleanup_act(st, "header", *textp, *lenp, value)) {
    case CLEANUP_ACT_DROP:
        return 0;
    case CLEANUP_ACT_REPLACE:
        free(*textp);
        *textp = xstrdup(st->tmp.data);
        *lenp = st->tmp.len;
        return 1;
    case CLEANUP_ACT_KEEP:
        break;
    }
    return 1;
}

/* --- Spooling --------------------------------------------------------------- */

void cleanup_milter_begin(struct cleanup_state *st)
{
    struct cleanup_milter *cm;
    int non_smtpd = (st->flags & CLEANUP_FLAG_LOCAL_SUBMIT) && var_non_smtpd_milters
        && var_non_smtpd_milters[strspn(var_non_smtpd_milters, ", \t\r\n")] != 0;

    cleanup_milter_failed_buf[0] = 0;
    cleanup_milter_at_rest_buf[0] = 0;
    st->milter = NULL;
    if ((!(st->flags & CLEANUP_FLAG_MILTER) && !non_smtpd) || (st->flags & CLEANUP_FLAG_BOUNCE))
        return;
    cm = xcalloc(1, sizeof(*cm));
    cm->new_body = -1;
    cm->st = st;
    if ((cm->spool = memfd_create("cleanup-milter", MFD_CLOEXEC)) < 0) {
        msg_warn("%s: create milter spool: %s", st->qid, strerror(errno));
        cleanup_write_error(st, errno);
    }
    if (non_smtpd && !(st->flags & CLEANUP_FLAG_MILTER)) {
        struct strbuf why;

        strbuf_init(&why, 128, 4096);
        if ((cm->ms = milters_create(var_non_smtpd_milters, &why)) == NULL)
            msg_fatal("non_smtpd_milters = %s: %s", var_non_smtpd_milters, why.data);
        strbuf_release(&why);
        cm->own = 1;
    }
    st->milter = cm;
}

int cleanup_milter_sender(struct cleanup_state *st, const char *sender)
{
    struct cleanup_milter *cm = st->milter;

    if (cm == NULL)
        return 0;
    free(cm->sender);
    cm->sender = xstrdup(sender);
    cm->have_sender = 1;
    /* For log lines and an added From: until the milters are done. */
    strbuf_set(&st->sender, sender);
    st->have_sender = 1;
    return 1;
}

int cleanup_milter_rcpt(struct cleanup_state *st, const char *addr, const char *orcpt,
                        int notify)
{
    struct cleanup_milter *cm = st->milter;

    if (cm == NULL)
        return 0;
    if (cm->nrcpt >= CLEANUP_MILTER_RCPT_MAX) {
        cleanup_error(st, CLEANUP_STAT_DEFER, "452 4.5.3 Error: too many recipients");
        return 1;
    }
    cm->rcpt = xreallocarray(cm->rcpt, cm->nrcpt + 1, sizeof(*cm->rcpt));
    cm->rcpt[cm->nrcpt].addr = xstrdup(addr);
    cm->rcpt[cm->nrcpt].orcpt = xstrdup(orcpt ? orcpt : "");
    cm->rcpt[cm->nrcpt].notify = notify;
    cm->rcpt[cm->nrcpt].deleted = 0;
    cm->nrcpt++;
    if (st->first_rcpt.len == 0)
        strbuf_set(&st->first_rcpt, addr);
    return 1;
}

int cleanup_milter_import(struct cleanup_state *st, struct attr_msg *m)
{
    struct cleanup_milter *cm = st->milter;
    struct strbuf why;
    struct milters *ms;
    ssize_t n;
    struct attr_iter it;

    if ((n = attr_iter_init(&it, m, "milter")) <= 0)
        return n < 0 ? -1 : 0;
    strbuf_init(&why, 128, 1024);
    ms = milters_import(m, &why);
    if (ms == NULL) {
        msg_warn("%s: milters from the client: %s", st->qid, why.data);
        strbuf_release(&why);
        return -1;
    }
    strbuf_release(&why);
    if (cm == NULL || cm->own || cm->ms != NULL) {
        milters_free(&ms);
        return -1;                      /* milters without CLEANUP_FLAG_MILTER: a client bug */
    }
    cm->ms = ms;
    return 0;
}

/* From cleanup_out: content goes to the spool. */
void cleanup_milter_spool(struct cleanup_state *st, const char *data, size_t len)
{
    struct cleanup_milter *cm = st->milter;

    while (len > 0 && cm->spool >= 0 && !cm->spool_error) {
        ssize_t n = write(cm->spool, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            cm->spool_error = 1;
            cleanup_write_error(st, n < 0 ? errno : EIO);
            return;
        }
        data += n;
        len -= (size_t) n;
    }
}

/* --- One filter's pass ------------------------------------------------------ */

static int cleanup_milter_map(struct cleanup_milter *cm)
{
    struct stat sb;

    cm->map = NULL;
    cm->map_len = 0;
    if (fstat(cm->spool, &sb) < 0)
        return -1;
    cm->map_len = (size_t) sb.st_size;
    if (cm->map_len == 0)
        return 0;
    cm->map = mmap(NULL, cm->map_len, PROT_READ, MAP_PRIVATE, cm->spool, 0);
    if (cm->map == MAP_FAILED) {
        cm->map = NULL;
        return -1;
    }
    return 0;
}

static void cleanup_milter_unmap(struct cleanup_milter *cm)
{
    if (cm->map)
        (void) munmap((void *) cm->map, cm->map_len);
    cm->map = NULL;
    cm->map_len = 0;
}

static void cleanup_milter_hdr_add(struct cleanup_milter *cm, size_t at, const char *text,
                                   size_t len, char *own)
{
    cm->hdr = xreallocarray(cm->hdr, cm->nhdr + 1, sizeof(*cm->hdr));
    if (at > cm->nhdr)
        at = cm->nhdr;
    memmove(cm->hdr + at + 1, cm->hdr + at, (cm->nhdr - at) * sizeof(*cm->hdr));
    cm->hdr[at].text = text;
    cm->hdr[at].len = len;
    cm->hdr[at].own = own;
    cm->hdr[at].deleted = 0;
    cm->nhdr++;
}

static void cleanup_milter_hdr_free(struct cleanup_milter *cm)
{
    size_t i;

    for (i = 0; i < cm->nhdr; i++)
        free(cm->hdr[i].own);
    free(cm->hdr);
    cm->hdr = NULL;
    cm->nhdr = 0;
}

/* Cuts the spool into logical headers and finds the body. */
static void cleanup_milter_parse(struct cleanup_milter *cm)
{
    const char *p = cm->map, *end = cm->map + cm->map_len, *start = NULL, *hend = NULL;

    cleanup_milter_hdr_free(cm);
    cm->body_off = cm->map_len;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t) (end - p)), *eol = nl ? nl : end;

        if (eol == p || (*p != ' ' && *p != '\t')) {
            if (start)
                cleanup_milter_hdr_add(cm, cm->nhdr, start, (size_t) (hend - start), NULL);
            start = NULL;
            if (eol == p) {             /* the empty line: the body follows */
                cm->body_off = (size_t) ((nl ? nl + 1 : end) - cm->map);
                return;
            }
            if (cm->nhdr >= CLEANUP_MILTER_HDRS_MAX) {
                cm->body_off = (size_t) (p - cm->map);
                return;
            }
            start = p;
        }
        hend = eol;
        p = nl ? nl + 1 : end;
    }
    if (start)
        cleanup_milter_hdr_add(cm, cm->nhdr, start, (size_t) (hend - start), NULL);
}

static int cleanup_milter_name_is(const struct cleanup_mhdr *h, const char *name)
{
    size_t n = strlen(name);

    return h->len > n && h->text[n] == ':' && strncasecmp(h->text, name, n) == 0;
}

static char *cleanup_milter_hdr_text(const char *name, const char *value, size_t *len)
{
    struct strbuf b;

    strbuf_init(&b, 128, STRBUF_UNLIMITED);
    strbuf_printf(&b, "%s:%s", name, value);
    /* A filter's folding comes with CRLF or LF; the queue file has LF only. */
    {
        size_t i, j = 0;

        for (i = 0; i < b.len; i++)
            if (!(b.data[i] == '\r' && i + 1 < b.len && b.data[i + 1] == '\n'))
                b.data[j++] = b.data[i] == '\r' ? ' ' : b.data[i];
        b.len = j;
        b.data[j] = 0;
    }
    *len = b.len;
    return strbuf_steal(&b);
}

static int cleanup_milter_add_header(void *ctx, const char *name, const char *value)
{
    struct cleanup_milter *cm = ctx;
    size_t len;
    char *t;

    if (cm->nhdr >= CLEANUP_MILTER_HDRS_MAX)
        return -1;
    t = cleanup_milter_hdr_text(name, value, &len);
    if (!cleanup_milter_header_checks(cm, &t, &len)) {
        free(t);
        return 0;
    }
    cleanup_milter_hdr_add(cm, cm->nhdr, t, len, t);
    cm->edited = 1;
    return 0;
}

static int cleanup_milter_ins_header(void *ctx, size_t index, const char *name,
                                     const char *value)
{
    struct cleanup_milter *cm = ctx;
    size_t len, i, at = 0, seen = 0;
    char *t;

    if (cm->nhdr >= CLEANUP_MILTER_HDRS_MAX)
        return -1;
    /* index counts the headers that are still there; 0 is the top. */
    for (i = 0; i < cm->nhdr && seen < index; i++)
        if (!cm->hdr[i].deleted)
            seen++;
    at = i;
    t = cleanup_milter_hdr_text(name, value, &len);
    if (!cleanup_milter_header_checks(cm, &t, &len)) {
        free(t);
        return 0;
    }
    cleanup_milter_hdr_add(cm, at, t, len, t);
    cm->edited = 1;
    return 0;
}

static int cleanup_milter_chg_header(void *ctx, size_t index, const char *name,
                                     const char *value)
{
    struct cleanup_milter *cm = ctx;
    size_t i, seen = 0;

    if (index == 0)
        index = 1;                      /* Sendmail treats 0 as 1 */
    for (i = 0; i < cm->nhdr; i++) {
        struct cleanup_mhdr *h = &cm->hdr[i];

        if (h->deleted || !cleanup_milter_name_is(h, name) || ++seen != index)
            continue;
        cm->edited = 1;
        if (*value == 0) {
            h->deleted = 1;
            return 0;
        }
        free(h->own);
        h->own = cleanup_milter_hdr_text(name, value, &h->len);
        h->text = h->own;
        if (!cleanup_milter_header_checks(cm, &h->own, &h->len))
            h->deleted = 1;
        h->text = h->own;
        return 0;
    }
    /* No such header: Sendmail adds it (libmilter's smfi_chgheader). */
    return *value ? cleanup_milter_add_header(ctx, name, value) : 0;
}

/* "<addr>" or "addr" as the internal form. */
static char *cleanup_milter_addr(const char *a)
{
    size_t n = strlen(a);

    while (*a == ' ')
        a++, n--;
    if (n >= 2 && a[0] == '<' && a[n - 1] == '>')
        return xstrndup(a + 1, n - 2);
    return xstrdup(a);
}

static int cleanup_milter_add_rcpt(void *ctx, const char *rcpt, const char *args)
{
    struct cleanup_milter *cm = ctx;
    char *addr = cleanup_milter_addr(rcpt);
    int notify = 0;

    if (args && strncasecmp(args, "NOTIFY=NEVER", 12) == 0)
        notify = CLEANUP_NOTIFY_NEVER;
    msg_info("%s: milter-add-rcpt: <%s>", cm->st->qid, addr);
    (void) cleanup_milter_rcpt(cm->st, addr, "", notify);
    free(addr);
    return 0;
}

static int cleanup_milter_del_rcpt(void *ctx, const char *rcpt)
{
    struct cleanup_milter *cm = ctx;
    char *addr = cleanup_milter_addr(rcpt);
    size_t i;

    for (i = 0; i < cm->nrcpt; i++)
        if (!cm->rcpt[i].deleted && strcasecmp(cm->rcpt[i].addr, addr) == 0) {
            cm->rcpt[i].deleted = 1;
            msg_info("%s: milter-delete-rcpt: <%s>", cm->st->qid, addr);
        }
    /* Recipients from headers (sendmail -t) wait in the late list. */
    for (i = 0; i < cm->st->nlate; ) {
        struct cleanup_late *l = &cm->st->late[i];

        if (strcasecmp(l->addr, addr) == 0) {
            msg_info("%s: milter-delete-rcpt: <%s>", cm->st->qid, addr);
            free(l->addr);
            memmove(l, l + 1, (cm->st->nlate - i - 1) * sizeof(*l));
            cm->st->nlate--;
            continue;
        }
        i++;
    }
    free(addr);
    return 0;
}

static int cleanup_milter_chg_from(void *ctx, const char *sender, const char *args)
{
    struct cleanup_milter *cm = ctx;

    free(cm->sender);
    cm->sender = cleanup_milter_addr(sender);
    msg_info("%s: milter-change-sender: <%s>%s%s", cm->st->qid, cm->sender, args ? " " : "",
             args ? args : "");
    strbuf_set(&cm->st->sender, cm->sender);
    return 0;
}

static int cleanup_milter_repl_body(void *ctx, const char *data, size_t len, int first)
{
    struct cleanup_milter *cm = ctx;

    if (first) {
        if (cm->new_body >= 0)
            (void) close(cm->new_body);
        if ((cm->new_body = memfd_create("cleanup-milter-body", MFD_CLOEXEC)) < 0)
            return -1;
    }
    while (len > 0) {
        ssize_t n = write(cm->new_body, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t) n;
    }
    cm->edited = 1;
    return 0;
}

static const struct milter_edit_ops cleanup_milter_ops = {
    cleanup_milter_add_header, cleanup_milter_ins_header, cleanup_milter_chg_header,
    cleanup_milter_add_rcpt, cleanup_milter_del_rcpt, cleanup_milter_chg_from,
    cleanup_milter_repl_body,
};

static int cleanup_milter_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

/* Writes the edited message into a new spool, which replaces the old one. */
static int cleanup_milter_rebuild(struct cleanup_milter *cm)
{
    int fd = memfd_create("cleanup-milter", MFD_CLOEXEC);
    size_t i;
    int r = 0;

    if (fd < 0)
        return -1;
    for (i = 0; i < cm->nhdr && r == 0; i++)
        if (!cm->hdr[i].deleted)
            r = cleanup_milter_write_all(fd, cm->hdr[i].text, cm->hdr[i].len) < 0
                || cleanup_milter_write_all(fd, "\n", 1) < 0 ? -1 : 0;
    if (r == 0)
        r = cleanup_milter_write_all(fd, "\n", 1);
    if (r == 0 && cm->new_body >= 0) {
        char buf[CLEANUP_MILTER_CHUNK];
        ssize_t n;
        off_t off = 0;

        while (r == 0 && (n = pread(cm->new_body, buf, sizeof(buf), off)) > 0) {
            off += n;
            r = cleanup_milter_write_all(fd, buf, (size_t) n);
        }
    } else if (r == 0 && cm->body_off < cm->map_len) {
        r = cleanup_milter_write_all(fd, cm->map + cm->body_off, cm->map_len - cm->body_off);
    }
    if (r < 0) {
        (void) close(fd);
        return -1;
    }
    cleanup_milter_hdr_free(cm);
    cleanup_milter_unmap(cm);
    (void) close(cm->spool);
    cm->spool = fd;
    if (cm->new_body >= 0)
        (void) close(cm->new_body);
    cm->new_body = -1;
    return 0;
}

/* Headers, end of headers, body and end of message to filter i. */
static const char *cleanup_milter_pass(struct cleanup_milter *cm, size_t i)
{
    const char *v = NULL;
    size_t h, off;

    milters_select(cm->ms, i);
    if (cleanup_milter_map(cm) < 0) {
        cleanup_write_error(cm->st, errno);
        return NULL;
    }
    cleanup_milter_parse(cm);
    cm->edited = 0;
    for (h = 0; h < cm->nhdr && v == NULL; h++) {
        const char *t = cm->hdr[h].text, *colon = memchr(t, ':', cm->hdr[h].len);
        size_t nlen;

        if (colon == NULL)
            continue;
        nlen = (size_t) (colon - t);
        while (nlen > 0 && (t[nlen - 1] == ' ' || t[nlen - 1] == '\t'))
            nlen--;
        v = milter_header_event(cm->ms, t, nlen, colon + 1, cm->hdr[h].len - (size_t) (colon + 1 - t));
    }
    if (v == NULL)
        v = milter_eoh_event(cm->ms);
    for (off = cm->body_off; v == NULL && off < cm->map_len; ) {
        size_t n = cm->map_len - off < CLEANUP_MILTER_CHUNK ? cm->map_len - off
            : CLEANUP_MILTER_CHUNK;

        v = milter_body_event(cm->ms, cm->map + off, n);
        off += n;
    }
    if (v == NULL)
        v = milter_eom_event(cm->ms, &cleanup_milter_ops, cm);
    if (cm->edited && cleanup_milter_rebuild(cm) < 0) {
        msg_warn("%s: rewrite milter spool: %s", cm->st->qid, strerror(errno));
        cleanup_write_error(cm->st, errno);
    }
    cleanup_milter_hdr_free(cm);
    cleanup_milter_unmap(cm);
    milters_select(cm->ms, (size_t) -1);
    return v;
}

/* Applies a verdict; returns 1 when the milters are done with the message. */
static int cleanup_milter_verdict(struct cleanup_state *st, const char *v, const char *stage)
{
    struct strbuf text;

    if (v == NULL)
        return 0;
    if (v[0] == 'D') {
        msg_info("%s: milter-discard: %s from %s; from=<%s> to=<%s>", st->qid, stage,
                 st->client.data, st->sender.data, st->first_rcpt.data);
        st->flags |= CLEANUP_FLAG_DISCARD;
        return 1;
    }
    if (v[0] == 'H') {
        const char *reason = v[1] ? v + 2 : "milter triggers HOLD action";

        msg_info("%s: milter-hold: %s from %s; from=<%s> to=<%s>: %s", st->qid, stage,
                 st->client.data, st->sender.data, st->first_rcpt.data, reason);
        st->flags |= CLEANUP_FLAG_HOLD;
        strbuf_init(&text, 128, 4096);
        cleanup_one_line(reason, &text);
        if (qfile_put_attr(st->w, "hold_reason", text.data) < 0)
            cleanup_write_error(st, errno);
        strbuf_release(&text);
        return 0;
    }
    strbuf_init(&text, 128, 8192);
    cleanup_one_line(v, &text);
    msg_info("%s: milter-reject: %s from %s; from=<%s> to=<%s>: %s", st->qid, stage,
             st->client.data, st->sender.data, st->first_rcpt.data,
             text.len > 4 ? text.data + 4 : text.data);
    /* The client gets every line of the filter's reply (cleanup_reply). */
    cleanup_error(st, v[0] == '5' ? CLEANUP_STAT_CONT : CLEANUP_STAT_DEFER, v);
    strbuf_release(&text);
    return 1;
}

static const char *cleanup_milter_macro(void *ctx, const char *name)
{
    struct cleanup_milter *cm = ctx;

    if (strcmp(name, "i") == 0)
        return cm->st->qid;
    if (!cm->own)
        return NULL;                    /* smtpd sent the rest */
    if (strcmp(name, "j") == 0)
        return var_myhostname;
    if (strcmp(name, "{daemon_name}") == 0)
        return var_milter_macro_daemon_name;
    if (strcmp(name, "v") == 0)
        return var_milter_macro_v;
    if (strcmp(name, "_") == 0)
        return "localhost [127.0.0.1]";
    if (strcmp(name, "{client_addr}") == 0)
        return "127.0.0.1";
    if (strcmp(name, "{client_name}") == 0 || strcmp(name, "{client_ptr}") == 0)
        return "localhost";
    if (strcmp(name, "{mail_addr}") == 0)
        return cm->sender;
    return NULL;
}

/* non_smtpd_milters: the ESMTP session Postfix fakes for local mail. */
static const char *cleanup_milter_envelope(struct cleanup_milter *cm)
{
    struct strbuf path;
    const char *v, *argv[2] = {NULL, NULL};
    size_t i;

    if ((v = milter_connect_event(cm->ms, "localhost", "127.0.0.1", 0)) != NULL
        || (v = milter_helo_event(cm->ms, "localhost")) != NULL)
        return v;
    strbuf_init(&path, 64, STRBUF_UNLIMITED);
    strbuf_printf(&path, "<%s>", cm->sender ? cm->sender : "");
    argv[0] = path.data;
    v = milter_mail_event(cm->ms, argv);
    for (i = 0; v == NULL && i < cm->nrcpt + cm->st->nlate; i++) {
        strbuf_reset(&path);
        strbuf_printf(&path, "<%s>", i < cm->nrcpt ? cm->rcpt[i].addr
                      : cm->st->late[i - cm->nrcpt].addr);
        argv[0] = path.data;
        v = milter_rcpt_event(cm->ms, argv, 0);
    }
    strbuf_release(&path);
    if (v == NULL)
        v = milter_data_event(cm->ms);
    return v;
}

/* The queue file: sender, recipients, content. */
static void cleanup_milter_commit_content(struct cleanup_state *st, struct cleanup_milter *cm)
{
    char buf[CLEANUP_MILTER_CHUNK];
    off_t off = 0;
    ssize_t n;
    size_t i;

    cleanup_addr_sender(st, cm->sender ? cm->sender : "");
    for (i = 0; i < cm->nrcpt && !st->errs; i++)
        if (!cm->rcpt[i].deleted)
            cleanup_addr_recipient(st, cm->rcpt[i].addr, cm->rcpt[i].orcpt, cm->rcpt[i].notify);
    if (st->errs)
        return;
    if (qfile_content_begin(st->w) < 0) {
        cleanup_write_error(st, errno);
        return;
    }
    st->content_len = 0;
    while ((n = pread(cm->spool, buf, sizeof(buf), off)) > 0) {
        off += n;
        st->content_len += (unsigned long long) n;
        if (qfile_content_write(st->w, buf, (size_t) n) < 0) {
            cleanup_write_error(st, errno);
            return;
        }
    }
    if (n < 0) {
        cleanup_write_error(st, errno);
        return;
    }
    st->content_ended = 1;
    if (qfile_content_end(st->w) < 0)
        cleanup_write_error(st, errno);
}

/* From cleanup_message_end: the milters, then the queue file. */
void cleanup_milter_end(struct cleanup_state *st)
{
    struct cleanup_milter *cm = st->milter;
    const char *v = NULL;
    size_t i;
    int done = 0;

    if (st->errs || cm->spool < 0)
        return;
    if (cm->ms) {
        milters_set_macros(cm->ms, cleanup_milter_macro, cm);
        milters_set_log_id(cm->ms, st->qid);
        if (cm->own)
            done = cleanup_milter_verdict(st, cleanup_milter_envelope(cm), "END-OF-MESSAGE");
        for (i = 0; !done && !st->errs && i < milters_message_count(cm->ms); i++) {
            v = cleanup_milter_pass(cm, i);
            done = cleanup_milter_verdict(st, v, "END-OF-MESSAGE");
        }
        snprintf(cleanup_milter_failed_buf, sizeof(cleanup_milter_failed_buf), "%s",
                 cm->own ? "" : milters_failed_list(cm->ms));
        snprintf(cleanup_milter_at_rest_buf, sizeof(cleanup_milter_at_rest_buf), "%s",
                 cm->own ? "" : milters_at_rest_list(cm->ms));
        if (cm->own)
            milter_quit_event(cm->ms);
    }
    if (!st->errs && !(st->flags & CLEANUP_FLAG_DISCARD))
        cleanup_milter_commit_content(st, cm);
    else if (!st->errs)
        cleanup_addr_sender(st, cm->sender ? cm->sender : "");
}

int cleanup_milter_reply(struct attr_msg *out)
{
    int r = 0;

    if (cleanup_milter_failed_buf[0])
        r = attr_put_str(out, "milter_failed", cleanup_milter_failed_buf);
    if (cleanup_milter_at_rest_buf[0])
        r |= attr_put_str(out, "milter_at_rest", cleanup_milter_at_rest_buf);
    cleanup_milter_failed_buf[0] = 0;
    cleanup_milter_at_rest_buf[0] = 0;
    return r;
}

void cleanup_milter_free(struct cleanup_state *st)
{
    struct cleanup_milter *cm = st->milter;
    size_t i;

    if (cm == NULL)
        return;
    cleanup_milter_hdr_free(cm);
    cleanup_milter_unmap(cm);
    if (cm->spool >= 0)
        (void) close(cm->spool);
    if (cm->new_body >= 0)
        (void) close(cm->new_body);
    milters_free(&cm->ms);
    for (i = 0; i < cm->nrcpt; i++) {
        free(cm->rcpt[i].addr);
        free(cm->rcpt[i].orcpt);
    }
    free(cm->rcpt);
    free(cm->sender);
    free(cm);
    st->milter = NULL;
}
