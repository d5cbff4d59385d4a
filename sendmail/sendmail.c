/*
 * sendmail - the Sendmail-compatible submission command, also run as "mailq"
 * (sendmail -bp) and "newaliases" (sendmail -bi); see INTERFACE.md section 4.
 *
 * SUMMARY
 *	sendmail [options] [recipient ...] < message
 *
 * DESCRIPTION
 *	-bm (the default) reads a message from standard input and queues it
 *	through petrel-drop (util/maildrop.h), so submission works while the mail
 *	system is stopped; pickup collects it. Input lines ending in LF or CRLF are
 *	stored with LF; a line with a lone "." ends the input unless -i / -oi; an
 *	initial UNIX "From " line is dropped. Nothing is added to the headers here:
 *	cleanup adds From:, Date: and Message-ID: for local submissions, using the
 *	-F full name. -t takes recipients from To:, Cc: and Bcc: (cleanup does it;
 *	recipients on the command line are added, as Postfix does).
 *	-bs runs smtpd -S (SMTP on standard input and output); -bp lists the
 *	queue; -bi builds alias_database; -bv prints how each address resolves
 *	(no mail is sent); -q asks the queue manager to retry deferred mail
 *	("petrel flush"). -f/-r sender, -F full name, -N dsn, -R ret, -V envid,
 *	-B type, -v, -c dir and -C file (configuration), -oXXX, -O, and Postfix's
 *	ignored options -G -U -m -n -h -e -L -X are accepted.
 *
 * DIAGNOSTICS
 *	Messages on standard error; exit status from sysexits.h: EX_USAGE for a
 *	bad option, EX_DATAERR for a message over message_size_limit, and
 *	petrel-drop's status when it could not queue the message.
 *
 * NEVER
 *	Never runs a shell; never reads more than message_size_limit of the
 *	message; never adds or changes header lines.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

#include "aliases.h"
#include "cleanup_client.h"
#include "config.h"
#include "maildrop.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qfile.h"
#include "resolve.h"
#include "sendmail.h"
#include "strbuf.h"
#include "user_acl.h"

#define SENDMAIL_ADDR_MAX       512             /* RFC 5321 path */
#define SENDMAIL_RCPT_MAX       100000          /* command-line recipients */
#define SENDMAIL_ENVID_MAX      100             /* RFC 3461 ENVID */
#define SENDMAIL_FULLNAME_MAX   256
#define SENDMAIL_LINE_CHUNK     65536           /* longer lines stream in pieces */
#define SENDMAIL_STDIN_TIMEOUT_MS (3600 * 1000) /* an idle pipe for an hour */

enum sendmail_mode { MODE_ENQUEUE, MODE_SMTP, MODE_MAILQ, MODE_NEWALIASES, MODE_VERIFY,
    MODE_FLUSH };

struct sendmail_opts {
    enum sendmail_mode mode;
    int extract;                /* -t */
    int ignore_dots;            /* -i, -oi */
    const char *sender;         /* -f, -r */
    const char *full_name;      /* -F */
    int notify;                 /* -N, CLEANUP_NOTIFY_* (0: not given) */
    const char *dsn_ret;        /* -R: "FULL" or "HDRS" */
    const char *envid;          /* -V */
    unsigned qflags;            /* -B 8BITMIME */
    int flush;                  /* -q */
    int queue_interval;         /* -q1h: a queue run interval, which we do not keep */
};

static _Noreturn void sendmail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static _Noreturn void sendmail_usage(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_vlog(MSG_FATAL, fmt, ap);
    va_end(ap);
    fprintf(stderr, "usage: %s [-t] [-i] [-f sender] [-F name] [-bm|-bs|-bp|-bi|-bv|-q] "
            "[-N dsn] [-R ret] [-V envid] [-B type] [-v] [-c dir] [recipient ...]\n",
            msg_program());
    exit(EX_USAGE);
}

/* -N never | success,failure,delay (any case, any subset). */
static int sendmail_parse_notify(const char *arg)
{
    char *copy = xstrdup(arg), *cp = copy, *word;
    int bits = 0;

    while ((word = strsep(&cp, ", \t")) != NULL) {
        if (*word == 0)
            continue;
        if (strcasecmp(word, "never") == 0)
            bits |= CLEANUP_NOTIFY_NEVER;
        else if (strcasecmp(word, "success") == 0)
            bits |= CLEANUP_NOTIFY_SUCCESS;
        else if (strcasecmp(word, "failure") == 0)
            bits |= CLEANUP_NOTIFY_FAILURE;
        else if (strcasecmp(word, "delay") == 0)
            bits |= CLEANUP_NOTIFY_DELAY;
        else
            sendmail_usage("-N %s: expected never, or a list of success, failure, delay", arg);
    }
    free(copy);
    if (bits == 0 || ((bits & CLEANUP_NOTIFY_NEVER) && bits != CLEANUP_NOTIFY_NEVER))
        sendmail_usage("-N %s: \"never\" cannot be combined, and the list cannot be empty",
                       arg);
    return bits;
}

static int sendmail_text_ok(const char *s, size_t max)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (i >= max || (unsigned char) s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* "<addr>", " addr " -> "addr"; returns NULL for control characters or length. */
static char *sendmail_clean_addr(const char *in)
{
    const char *start = in, *end;
    char *out;

    while (*start == ' ' || *start == '\t')
        start++;
    end = start + strlen(start);
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    /* "Name <addr>" or "<addr>": the address is what the angle brackets hold. */
    if (end - start >= 2 && end[-1] == '>') {
        const char *lt = memrchr(start, '<', (size_t) (end - start));

        if (lt != NULL) {
            start = lt + 1;
            end--;
        }
    }
    out = xstrndup(start, (size_t) (end - start));
    if (!sendmail_text_ok(out, SENDMAIL_ADDR_MAX)) {
        free(out);
        return NULL;
    }
    return out;
}

/* Splits one command-line argument at commas outside quotes and angle brackets. */
static void sendmail_split_rcpts(const char *arg, char ***list, size_t *count)
{
    const char *p = arg, *start = arg;
    int quoted = 0, angle = 0;
    char *piece, *addr;

    for (;; p++) {
        if (*p == '"' && (p == arg || p[-1] != '\\'))
            quoted = !quoted;
        else if (!quoted && *p == '<')
            angle = 1;
        else if (!quoted && *p == '>')
            angle = 0;
        if (*p && (*p != ',' || quoted || angle))
            continue;
        piece = xstrndup(start, (size_t) (p - start));
        if ((addr = sendmail_clean_addr(piece)) == NULL)
            sendmail_usage("bad recipient address: %.100s", arg);
        free(piece);
        if (*addr == 0) {
            free(addr);
        } else {
            if (*count >= SENDMAIL_RCPT_MAX)
                sendmail_usage("more than %d recipients", SENDMAIL_RCPT_MAX);
            *list = xreallocarray(*list, *count + 1, sizeof(**list));
            (*list)[(*count)++] = addr;
        }
        if (*p == 0)
            break;
        start = p + 1;
    }
}

/* The content reader: LF or CRLF in, LF out; "." ends unless -i; size bounded. */
struct sendmail_body {
    struct qfile_writer *w;
    int ignore_dots;
    int first_line;             /* the next line is the message's first */
    int continued;              /* the current line was partly written already */
    unsigned long long size;
    struct strbuf line;
};

static void sendmail_emit(struct sendmail_body *b, const char *data, size_t len)
{
    if (len == 0)
        return;
    if (var_message_size_limit > 0 && b->size + len > (unsigned long long) var_message_size_limit)
        msg_fatal_status(EX_DATAERR, "message size exceeds message_size_limit (%lld bytes)",
                         var_message_size_limit);
    b->size += len;
    if (qfile_content_write(b->w, data, len) < 0)
        msg_fatal_status(EX_TEMPFAIL, "write the submission: %m");
}

/* A complete line in b->line, LF included. Returns 1 when it ends the input. */
static int sendmail_line_done(struct sendmail_body *b)
{
    struct strbuf *ln = &b->line;

    if (ln->len >= 2 && ln->data[ln->len - 2] == '\r') {
        ln->data[ln->len - 2] = '\n';
        strbuf_truncate(ln, ln->len - 1);
    }
    if (!b->continued) {
        if (!b->ignore_dots && ln->len == 2 && ln->data[0] == '.')
            return 1;
        if (b->first_line && strncmp(ln->data, "From ", 5) == 0) {
            b->first_line = 0;
            strbuf_reset(ln);
            return 0;           /* a UNIX mailbox separator, not a header */
        }
    }
    sendmail_emit(b, ln->data, ln->len);
    b->first_line = 0;
    b->continued = 0;
    strbuf_reset(ln);
    return 0;
}

/* Adds input bytes; returns 1 when a lone "." ended the message. */
static int sendmail_body_add(struct sendmail_body *b, const char *data, size_t len)
{
    const char *nl;
    size_t take, keep;

    while (len > 0) {
        nl = memchr(data, '\n', len);
        take = nl ? (size_t) (nl - data) + 1 : len;
        if (b->line.len + take > SENDMAIL_LINE_CHUNK && nl == NULL) {
            /* A very long line streams on; a CR at the cut may still pair with LF. */
            strbuf_append(&b->line, data, take);
            keep = b->line.data[b->line.len - 1] == '\r';
            sendmail_emit(b, b->line.data, b->line.len - keep);
            b->first_line = 0;
            b->continued = 1;
            strbuf_consume(&b->line, b->line.len - keep);
        } else {
            if (strbuf_append(&b->line, data, take) < 0)
                msg_fatal_status(EX_SOFTWARE, "line buffer limit");
            if (nl && sendmail_line_done(b))
                return 1;
        }
        data += take;
        len -= take;
    }
    return 0;
}

static void sendmail_read_body(struct sendmail_body *b)
{
    struct pollfd pfd = {0, POLLIN, 0};
    char buf[65536];
    ssize_t got;
    int n;

    for (;;) {
        if ((n = poll(&pfd, 1, SENDMAIL_STDIN_TIMEOUT_MS)) == 0)
            msg_fatal_status(EX_TEMPFAIL, "timeout reading the message from standard input");
        if (n < 0 && errno != EINTR)
            msg_fatal_status(EX_IOERR, "poll standard input: %m");
        if (n < 0)
            continue;
        if ((got = read(0, buf, sizeof(buf))) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            msg_fatal_status(EX_IOERR, "read standard input: %m");
        }
        if (got == 0)
            break;
        if (sendmail_body_add(b, buf, (size_t) got))
            return;
    }
    /* An unterminated last line: a lone "." still ends the input; others get LF. */
    if (b->line.len > 0) {
        if (b->line.data[b->line.len - 1] == '\r')
            strbuf_truncate(&b->line, b->line.len - 1);
        if (!b->continued && !b->ignore_dots && b->line.len == 1 && b->line.data[0] == '.')
            return;
        strbuf_putc(&b->line, '\n');
        (void) sendmail_line_done(b);
    }
}

static char *sendmail_default_sender(void)
{
    struct passwd *pw = getpwuid(getuid());

    if (pw == NULL)
        msg_fatal_status(EX_NOUSER, "no login name for uid %ld: use -f sender",
                         (long) getuid());
    return xstrdup(pw->pw_name);
}

static void sendmail_put(struct qfile_writer *w, int type, const char *s)
{
    if (qfile_put_str(w, type, s) < 0)
        msg_fatal_status(EX_TEMPFAIL, "write the submission: %m");
}

static void sendmail_attr(struct qfile_writer *w, const char *name, const char *value)
{
    if (qfile_put_attr(w, name, value) < 0)
        msg_fatal_status(EX_TEMPFAIL, "write the submission: %m");
}

static int sendmail_enqueue(const struct sendmail_opts *o, char **rcpts, size_t nrcpt)
{
    struct strbuf why, qid;
    struct maildrop *md;
    struct qfile_writer *w;
    struct sendmail_body body;
    struct timeval tv;
    char *sender, tbuf[64], nbuf[16];
    size_t i;
    int status;

    if (nrcpt == 0 && !o->extract)
        sendmail_usage("recipient addresses must be given on the command line or with -t");
    strbuf_init(&why, 256, 4096);
    strbuf_init(&qid, 32, 256);
    if ((md = maildrop_open(NULL, &why)) == NULL)
        msg_fatal_status(EX_UNAVAILABLE, "%s", why.data);
    w = maildrop_writer(md);
    maildrop_set_flags(md, o->qflags);
    gettimeofday(&tv, NULL);
    snprintf(tbuf, sizeof(tbuf), "%lld.%06ld", (long long) tv.tv_sec, (long) tv.tv_usec);
    sendmail_put(w, QREC_TIME, tbuf);
    sender = o->sender ? sendmail_clean_addr(o->sender) : sendmail_default_sender();
    if (sender == NULL)
        sendmail_usage("-f: bad sender address");
    sendmail_put(w, QREC_SENDER, sender);
    if (o->full_name)
        sendmail_attr(w, "full_name", o->full_name);
    if (o->envid)
        sendmail_attr(w, "dsn_envid", o->envid);
    if (o->dsn_ret)
        sendmail_attr(w, "dsn_ret", o->dsn_ret);
    if (o->extract)
        sendmail_attr(w, "extract_recipients", "1");
    for (i = 0; i < nrcpt; i++) {
        if (o->notify) {
            snprintf(nbuf, sizeof(nbuf), "%d", o->notify);
            sendmail_put(w, QREC_NOTIFY, nbuf);
        }
        sendmail_put(w, QREC_RCPT, rcpts[i]);
    }
    if (qfile_content_begin(w) < 0)
        msg_fatal_status(EX_TEMPFAIL, "write the submission: %m");
    memset(&body, 0, sizeof(body));
    body.w = w;
    body.ignore_dots = o->ignore_dots;
    body.first_line = 1;
    strbuf_init(&body.line, 256, 2 * SENDMAIL_LINE_CHUNK);
    sendmail_read_body(&body);
    strbuf_release(&body.line);
    if (qfile_content_end(w) < 0)
        msg_fatal_status(EX_TEMPFAIL, "write the submission: %m");
    status = maildrop_close(&md, &qid, &why);
    if (status != 0)
        msg_fatal_status(status, "%s", why.data);
    if (msg_verbose)
        msg_info("queued as %s", qid.data);
    free(sender);
    strbuf_release(&why);
    strbuf_release(&qid);
    return 0;
}

/* -bv: how each address would be delivered; nothing is sent. */
static int sendmail_verify(char **rcpts, size_t nrcpt)
{
    struct resolve_reply reply;
    struct strbuf canon;
    int ret = 0;
    size_t i;

    if (nrcpt == 0)
        sendmail_usage("-bv needs at least one address");
    resolve_init();
    resolve_reply_init(&reply);
    strbuf_init(&canon, 128, 4096);
    for (i = 0; i < nrcpt; i++) {
        strbuf_reset(&canon);
        resolve_rewrite(rcpts[i], &canon);
        if (resolve_addr(canon.data, &reply) < 0) {
            if (reply.flags & RESOLVE_FLAG_FAIL) {
                printf("%s: temporary failure: a lookup table did not answer\n", canon.data);
                ret = EX_TEMPFAIL;
            } else {
                printf("%s: undeliverable: %s\n", canon.data, reply.nexthop.data);
                if (ret == 0)
                    ret = EX_DATAERR;
            }
            continue;
        }
        printf("%s: %s:%s (%s)\n", canon.data, reply.transport.data, reply.nexthop.data,
               resolve_class_name(reply.cls));
    }
    resolve_reply_free(&reply);
    strbuf_release(&canon);
    return fflush(stdout) == 0 ? ret : EX_IOERR;
}

static int sendmail_newaliases(void)
{
    struct strbuf err;
    int n;

    strbuf_init(&err, 256, 65536);
    if ((n = aliases_build_all(var_alias_database, &err)) < 0)
        msg_fatal_status(EX_DATAERR, "%s", err.data);
    if (msg_verbose)
        msg_info("built %d alias table%s", n, n == 1 ? "" : "s");
    strbuf_release(&err);
    return 0;
}

static _Noreturn void sendmail_exec(const char *dir, const char *prog, char **argv)
{
    struct strbuf path;

    strbuf_init(&path, 128, STRBUF_UNLIMITED);
    strbuf_printf(&path, "%s/%s", dir, prog);
    fflush(stdout);
    execv(path.data, argv);
    msg_fatal_status(EX_UNAVAILABLE, "execute %s: %m", path.data);
}

/* -C: the main.cf file or its directory (Postfix 2.3 and later). */
static const char *sendmail_config_arg(const char *arg)
{
    struct stat st;
    char *slash;

    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode))
        return arg;
    if ((slash = strrchr(arg, '/')) == NULL)
        return ".";
    return slash == arg ? "/" : xstrndup(arg, (size_t) (slash - arg));
}

static void sendmail_parse_b(struct sendmail_opts *o, const char *arg)
{
    if (strcmp(arg, "m") == 0)
        o->mode = MODE_ENQUEUE;
    else if (strcmp(arg, "s") == 0)
        o->mode = MODE_SMTP;
    else if (strcmp(arg, "p") == 0)
        o->mode = MODE_MAILQ;
    else if (strcmp(arg, "i") == 0)
        o->mode = MODE_NEWALIASES;
    else if (strcmp(arg, "v") == 0)
        o->mode = MODE_VERIFY;
    else
        sendmail_usage("-b%s: unsupported mode", arg);
}

static void sendmail_parse_options(int argc, char **argv, struct sendmail_opts *o)
{
    int ch;

    /* "+": options end at the first recipient, as in Postfix. */
    while ((ch = getopt(argc, argv, "+B:C:F:GIL:N:O:R:UV:X:b:c:e:f:h:imno:q::r:tv")) != -1) {
        switch (ch) {
        case 'B':
            if (strcasecmp(optarg, "8BITMIME") == 0)
                o->qflags |= QFILE_FLAG_8BIT;
            else if (strcasecmp(optarg, "7BIT") != 0)
                sendmail_usage("-B %s: expected 7BIT or 8BITMIME", optarg);
            break;
        case 'C':
            config_set_dir(sendmail_config_arg(optarg));
            break;
        case 'c':
            config_set_dir(optarg);
            break;
        case 'F':
            if (!sendmail_text_ok(optarg, SENDMAIL_FULLNAME_MAX))
                sendmail_usage("-F: a full name is at most %d printable characters",
                               SENDMAIL_FULLNAME_MAX);
            o->full_name = optarg;
            break;
        case 'I':
            o->mode = MODE_NEWALIASES;
            break;
        case 'N':
            o->notify = sendmail_parse_notify(optarg);
            break;
        case 'R':
            if (strcasecmp(optarg, "full") == 0)
                o->dsn_ret = "FULL";
            else if (strcasecmp(optarg, "hdrs") == 0)
                o->dsn_ret = "HDRS";
            else
                sendmail_usage("-R %s: expected full or hdrs", optarg);
            break;
        case 'V':
            if (!sendmail_text_ok(optarg, SENDMAIL_ENVID_MAX) || *optarg == 0)
                sendmail_usage("-V: an envelope ID is 1 to %d printable characters",
                               SENDMAIL_ENVID_MAX);
            o->envid = optarg;
            break;
        case 'b':
            sendmail_parse_b(o, optarg);
            break;
        case 'f':
        case 'r':
            o->sender = optarg;
            break;
        case 'i':
            o->ignore_dots = 1;
            break;
        case 'o':
            if (optarg[0] == 'i' && optarg[1] == 0)
                o->ignore_dots = 1;
            break;              /* every other -oXXX: accepted and ignored */
        case 'q':
            /* -q flushes; -qR/-qS (per site) flush everything; -q1h (interval) is
             * ignored as in Postfix (queue_run_delay sets it): nothing to do, exit 0. */
            if (optarg == NULL || *optarg == 'R' || *optarg == 'S')
                o->flush = 1;
            else
                o->queue_interval = 1;
            break;
        case 't':
            o->extract = 1;
            break;
        case 'v':
            msg_verbose++;
            break;
        case 'G': case 'L': case 'O': case 'U': case 'X': case 'e': case 'h': case 'm':
        case 'n':
            break;              /* Postfix accepts and ignores these */
        default:
            sendmail_usage("unknown option or missing argument (see above)");
        }
    }
}

/* authorized_submit_users, authorized_mailq_users, authorized_flush_users. */
static void sendmail_check_acl(int mode)
{
    const char *param = NULL, *acl = NULL, *what = NULL;
    struct strbuf who;
    uid_t uid = getuid();

    switch (mode) {
    case MODE_ENQUEUE:
    case MODE_SMTP:
        param = "authorized_submit_users", acl = var_authorized_submit_users;
        what = "submit mail";
        break;
    case MODE_MAILQ:
        param = "authorized_mailq_users", acl = var_authorized_mailq_users;
        what = "view the mail queue";
        break;
    case MODE_FLUSH:
        param = "authorized_flush_users", acl = var_authorized_flush_users;
        what = "flush the mail queue";
        break;
    default:
        return;
    }
    if (mode != MODE_ENQUEUE && mode != MODE_SMTP && user_acl_is_admin(uid))
        return;
    strbuf_init(&who, 64, 4096);
    if (!user_acl_allows(param, acl, uid, &who))
        msg_fatal_status(EX_NOPERM, "User %s(%ld) is not allowed to %s", who.data, (long) uid,
                         what);
    strbuf_release(&who);
}

int main(int argc, char **argv)
{
    struct sendmail_opts o;
    const char *slash = strrchr(argv[0], '/'), *name = slash ? slash + 1 : argv[0];
    char **rcpts = NULL;
    size_t nrcpt = 0;
    int i, status = 0;

    memset(&o, 0, sizeof(o));
    if (strcmp(name, "mailq") == 0)
        o.mode = MODE_MAILQ;
    else if (strcmp(name, "newaliases") == 0)
        o.mode = MODE_NEWALIASES;
    else
        name = "sendmail";
    msg_init(name);
    opterr = 1;
    sendmail_parse_options(argc, argv, &o);
    if (o.queue_interval && !o.flush)
        return EX_OK;
    if (o.flush)
        o.mode = MODE_FLUSH;
    config_load();
    sendmail_check_acl(o.mode);
    for (i = optind; i < argc; i++) {
        if (o.mode == MODE_VERIFY) {
            rcpts = xreallocarray(rcpts, nrcpt + 1, sizeof(*rcpts));
            if ((rcpts[nrcpt++] = sendmail_clean_addr(argv[i])) == NULL)
                sendmail_usage("bad address: %.100s", argv[i]);
        } else {
            sendmail_split_rcpts(argv[i], &rcpts, &nrcpt);
        }
    }

    switch (o.mode) {
    case MODE_SMTP:{
            char *args[] = {(char *) "smtpd", (char *) "-S", (char *) "-c",
                (char *) config_dir(), NULL};

            sendmail_exec(var_daemon_directory, "smtpd", args);
        }
    case MODE_FLUSH:{
            char *args[] = {(char *) "petrel", (char *) "-c", (char *) config_dir(),
                (char *) "flush", NULL};

            sendmail_exec(var_command_directory, "petrel", args);
        }
    case MODE_MAILQ:
        return sendmail_mailq();
    case MODE_NEWALIASES:
        return sendmail_newaliases();
    case MODE_VERIFY:
        status = sendmail_verify(rcpts, nrcpt);
        break;
    case MODE_ENQUEUE:
        status = sendmail_enqueue(&o, rcpts, nrcpt);
        break;
    }
    while (nrcpt > 0)
        free(rcpts[--nrcpt]);
    free(rcpts);
    return status;
}
