/*
 * smtp_cmd.h - parsing one SMTP command line: the verb, its argument, and the
 * MAIL FROM / RCPT TO paths with their ESMTP parameters (RFC 5321, 1870 SIZE,
 * 6152 8BITMIME, 3030 BINARYMIME, 6531 SMTPUTF8, 3461 DSN, 4954 AUTH, 6710
 * MT-PRIORITY).
 * The input is a client's line without its terminator; nothing is trusted:
 * every length is bounded before copying, xtext is decoded with its own limit,
 * a parameter may appear once. Never allocates beyond the bounded strbufs the
 * caller passes.
 * Failure: -1 with the complete SMTP reply for the client in why
 * ("501 5.5.4 Bad SIZE parameter syntax", "555 5.5.4 Unsupported option: X").
 */
#ifndef PETREL_SMTP_CMD_H
#define PETREL_SMTP_CMD_H

#include <stddef.h>

#include "strbuf.h"

#define SMTP_CMD_VERB_MAX       16      /* longer first words are not commands */
#define SMTP_CMD_ENVID_MAX      100     /* RFC 3461 section 4.4, decoded */
#define SMTP_CMD_ORCPT_MAX      500     /* RFC 3461 section 4.2, decoded */
#define SMTP_CMD_AUTH_MAX       512     /* RFC 4954 section 5: a mailbox, decoded */
#define SMTP_CMD_PARAMS_MAX     16      /* ESMTP parameters per command */

/* Which extensions the server offered: parameters of others are "unsupported". */
#define SMTP_EXT_SIZE           (1 << 0)
#define SMTP_EXT_8BITMIME       (1 << 1)
#define SMTP_EXT_BINARYMIME     (1 << 2)
#define SMTP_EXT_SMTPUTF8       (1 << 3)
#define SMTP_EXT_DSN            (1 << 4)
#define SMTP_EXT_AUTH           (1 << 5)
#define SMTP_EXT_MT_PRIORITY    (1 << 6)
/* Parser behaviour, in the same flags word. */
#define SMTP_CMD_F_STRICT       (1 << 16)       /* strict_rfc821_envelopes: <> required */

enum smtp_body {
    SMTP_BODY_NONE,             /* no BODY= */
    SMTP_BODY_7BIT,
    SMTP_BODY_8BITMIME,
    SMTP_BODY_BINARYMIME,
};

enum smtp_ret {
    SMTP_RET_NONE,
    SMTP_RET_FULL,
    SMTP_RET_HDRS,
};

/* NOTIFY bits; the same values as CLEANUP_NOTIFY_* in cleanup_client.h. */
#define SMTP_NOTIFY_NEVER       (1 << 0)
#define SMTP_NOTIFY_SUCCESS     (1 << 1)
#define SMTP_NOTIFY_FAILURE     (1 << 2)
#define SMTP_NOTIFY_DELAY       (1 << 3)

/* A split command line. verb is upper-cased and NUL-terminated; arg points into
 * the caller's line (valid as long as the line) and has no surrounding blanks. */
struct smtp_cmd {
    char verb[SMTP_CMD_VERB_MAX + 1];
    const char *arg;
    size_t arg_len;
};

struct smtp_mail_args {
    struct strbuf address;      /* internal form; "" for <> */
    long long size;             /* SIZE=, -1 when absent */
    enum smtp_body body;
    int smtputf8;
    enum smtp_ret ret;
    int have_envid;
    struct strbuf envid;        /* decoded ENVID */
    int have_auth;
    struct strbuf auth;         /* decoded AUTH= mailbox; "" for AUTH=<> */
    int have_mt_priority;
    int mt_priority;            /* -9 .. 9 */
};

struct smtp_rcpt_args {
    struct strbuf address;      /* internal form */
    int notify;                 /* SMTP_NOTIFY_* bits; 0 when absent */
    int have_orcpt;
    struct strbuf orcpt;        /* "addr-type;decoded address", e.g. "rfc822;a@b" */
};

/* Splits line[0..len) into verb and argument. Returns 0, or -1 when the line is
 * empty, holds a NUL, or its first word is not 1..SMTP_CMD_VERB_MAX letters. */
int smtp_cmd_split(const char *line, size_t len, struct smtp_cmd *cmd);

void smtp_mail_args_init(struct smtp_mail_args *a);
void smtp_mail_args_free(struct smtp_mail_args *a);
void smtp_rcpt_args_init(struct smtp_rcpt_args *a);
void smtp_rcpt_args_free(struct smtp_rcpt_args *a);

/* Parses the argument of MAIL ("FROM:<path> PARAM=VALUE ...") under the SMTP_EXT_*
 * and SMTP_CMD_F_* flags; 0, or -1 with the reply in why. */
int smtp_cmd_parse_mail(const char *arg, size_t len, int flags, struct smtp_mail_args *out,
                        struct strbuf *why);
/* Parses the argument of RCPT ("TO:<path> PARAM=VALUE ..."). Here SMTP_EXT_SMTPUTF8
 * means that the transaction's MAIL command declared SMTPUTF8. */
int smtp_cmd_parse_rcpt(const char *arg, size_t len, int flags, struct smtp_rcpt_args *out,
                        struct strbuf *why);

/* Parses the argument of AUTH (RFC 4954 section 4): "mechanism [initial-response]".
 * The mechanism (1..SMTP_CMD_MECH_MAX of A-Z 0-9 - _, any case) goes to mech in
 * upper case; the initial response, if any, to init (*have_init 1; "=" is kept
 * as sent). 0, or -1 for a syntax error (501 5.5.4 Syntax: AUTH mechanism). */
#define SMTP_CMD_MECH_MAX       20      /* RFC 4422 section 3.1 */
int smtp_cmd_parse_auth(const char *arg, size_t len, char mech[SMTP_CMD_MECH_MAX + 1],
                        struct strbuf *init, int *have_init);

/* Decodes RFC 3461 xtext at text[0..len) into out (replacing its contents);
 * 0, or -1 for a bad "+XX" escape, a character outside '!'..'~', '=', an
 * escape that decodes to a control character, or a result longer than max. */
int smtp_xtext_decode(const char *text, size_t len, size_t max, struct strbuf *out);
/* Appends the xtext encoding of str. */
void smtp_xtext_encode(const char *str, struct strbuf *out);

#endif
