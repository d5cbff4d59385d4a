/*
 * test_smtp_cmd.c - the SMTP command parser: verb splitting, MAIL/RCPT paths
 * and every ESMTP parameter, with the exact reply for each error, limits at
 * the edge and one past it, and xtext round trips.
 * Expected values are written out by hand from RFC 3461/1870/6152/6531.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "smtp_cmd.h"
#include "strbuf.h"

#define ALL_EXT (SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME | SMTP_EXT_SMTPUTF8 \
                 | SMTP_EXT_DSN | SMTP_EXT_AUTH | SMTP_EXT_MT_PRIORITY)

static void test_split(void **state)
{
    static const struct {
        const char *line;
        int ok;
        const char *verb, *arg;
    } cases[] = {
        {"MAIL FROM:<a@b>", 0, "MAIL", "FROM:<a@b>"},
        {"mail from:<a@b>  ", 0, "MAIL", "from:<a@b>"},
        {"  noop", 0, "NOOP", ""},
        {"QUIT", 0, "QUIT", ""},
        {"X-FOO1 bar", 0, "X-FOO1", "bar"},
        {"", -1, NULL, NULL},
        {"   ", -1, NULL, NULL},
        {"1234 x", -1, NULL, NULL},
        {"ABCDEFGHIJKLMNOP x", 0, "ABCDEFGHIJKLMNOP", "x"},        /* 16: the limit */
        {"ABCDEFGHIJKLMNOPQ x", -1, NULL, NULL},                   /* 17 */
        {"Subject: hi", -1, NULL, NULL},
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct smtp_cmd cmd;
        int got = smtp_cmd_split(cases[i].line, strlen(cases[i].line), &cmd);

        if (got != cases[i].ok)
            fail_msg("case %zu \"%s\": got %d want %d", i, cases[i].line, got, cases[i].ok);
        if (got == 0) {
            assert_string_equal(cmd.verb, cases[i].verb);
            assert_int_equal(cmd.arg_len, strlen(cases[i].arg));
            assert_memory_equal(cmd.arg, cases[i].arg, cmd.arg_len);
        }
    }
    /* A NUL inside the line is never a command. */
    {
        struct smtp_cmd cmd;

        assert_int_equal(smtp_cmd_split("NOOP\0x", 6, &cmd), -1);
    }
}

struct mail_case {
    const char *arg;
    int flags;
    const char *reply;          /* NULL: success */
    const char *addr;
    long long size;
    enum smtp_body body;
    int smtputf8;
    enum smtp_ret ret;
    const char *envid;
};

static void test_mail(void **state)
{
    static const struct mail_case cases[] = {
        {"FROM:<a@b.example>", ALL_EXT, NULL, "a@b.example", -1, SMTP_BODY_NONE, 0, 0, NULL},
        {"FROM:<>", ALL_EXT, NULL, "", -1, SMTP_BODY_NONE, 0, 0, NULL},
        {"FROM: <a@b.example>", ALL_EXT, NULL, "a@b.example", -1, 0, 0, 0, NULL},
        {"FROM: <a@b.example>", ALL_EXT | SMTP_CMD_F_STRICT,
         "501 5.1.7 Bad sender address syntax", NULL, 0, 0, 0, 0, NULL},
        {"FROM:a@b.example", ALL_EXT, NULL, "a@b.example", -1, 0, 0, 0, NULL},
        {"FROM:a@b.example", ALL_EXT | SMTP_CMD_F_STRICT,
         "501 5.1.7 Bad sender address syntax", NULL, 0, 0, 0, 0, NULL},
        {"TO:<a@b>", ALL_EXT, "501 5.5.4 Syntax: MAIL FROM:<address>", NULL, 0, 0, 0, 0, NULL},
        {"FROM:", ALL_EXT, "501 5.5.4 Syntax: MAIL FROM:<address>", NULL, 0, 0, 0, 0, NULL},
        {"FROM:<a@b>x", ALL_EXT, "501 5.1.7 Bad sender address syntax", NULL, 0, 0, 0, 0, NULL},
        {"FROM:<a@b> SIZE=1000 BODY=8BITMIME", ALL_EXT, NULL, "a@b", 1000,
         SMTP_BODY_8BITMIME, 0, 0, NULL},
        {"FROM:<a@b> size=0 body=7bit", ALL_EXT, NULL, "a@b", 0, SMTP_BODY_7BIT, 0, 0, NULL},
        {"FROM:<a@b> BODY=BINARYMIME", ALL_EXT, NULL, "a@b", -1, SMTP_BODY_BINARYMIME, 0, 0,
         NULL},
        {"FROM:<a@b> BODY=BINARYMIME", ALL_EXT & ~SMTP_EXT_BINARYMIME,
         "501 5.5.4 Unsupported BODY type", NULL, 0, 0, 0, 0, NULL},
        {"FROM:<a@b> BODY=FOO", ALL_EXT, "501 5.5.4 Unsupported BODY type", NULL, 0, 0, 0, 0,
         NULL},
        {"FROM:<a@b> SIZE=x", ALL_EXT, "501 5.5.4 Bad message size syntax", NULL, 0, 0, 0, 0,
         NULL},
        {"FROM:<a@b> SIZE=", ALL_EXT, "501 5.5.4 Bad message size syntax", NULL, 0, 0, 0, 0,
         NULL},
        {"FROM:<a@b> SIZE=99999999999999999999", ALL_EXT, "501 5.5.4 Bad message size syntax",
         NULL, 0, 0, 0, 0, NULL},
        {"FROM:<a@b> SIZE=9223372036854775807", ALL_EXT, NULL, "a@b", 9223372036854775807LL,
         0, 0, 0, NULL},
        {"FROM:<a@b> SIZE=9223372036854775808", ALL_EXT, "501 5.5.4 Bad message size syntax",
         NULL, 0, 0, 0, 0, NULL},
        {"FROM:<a@b> SIZE=1 SIZE=2", ALL_EXT, "501 5.5.4 Error: duplicate SIZE parameter",
         NULL, 0, 0, 0, 0, NULL},
        {"FROM:<a@b> SIZE=1", ALL_EXT & ~SMTP_EXT_SIZE, "555 5.5.4 Unsupported option: SIZE",
         NULL, 0, 0, 0, 0, NULL},
        {"FROM:<a@b> FOO=BAR", ALL_EXT, "555 5.5.4 Unsupported option: FOO", NULL, 0, 0, 0, 0,
         NULL},
        {"FROM:<a@b> SMTPUTF8", ALL_EXT, NULL, "a@b", -1, 0, 1, 0, NULL},
        {"FROM:<a@b> SMTPUTF8=yes", ALL_EXT, "501 5.5.4 Bad SMTPUTF8 parameter syntax", NULL,
         0, 0, 0, 0, NULL},
        {"FROM:<a@b> SMTPUTF8", ALL_EXT & ~SMTP_EXT_SMTPUTF8,
         "555 5.5.4 Unsupported option: SMTPUTF8", NULL, 0, 0, 0, 0, NULL},
        {"FROM:<j\xc3\xb6rg@b> SMTPUTF8", ALL_EXT, NULL, "j\xc3\xb6rg@b", -1, 0, 1, 0, NULL},
        {"FROM:<j\xc3\xb6rg@b>", ALL_EXT,
         "553 5.6.7 Must declare SMTPUTF8 to send unicode address", NULL, 0, 0, 0, 0, NULL},
        {"FROM:<a@b> RET=FULL ENVID=QQ+2B314159", ALL_EXT, NULL, "a@b", -1, 0, 0,
         SMTP_RET_FULL, "QQ+314159"},
        {"FROM:<a@b> RET=hdrs", ALL_EXT, NULL, "a@b", -1, 0, 0, SMTP_RET_HDRS, NULL},
        {"FROM:<a@b> RET=ALL", ALL_EXT, "501 5.5.4 Bad RET parameter syntax", NULL, 0, 0, 0, 0,
         NULL},
        {"FROM:<a@b> ENVID=a+2", ALL_EXT, "501 5.5.4 Bad ENVID parameter syntax", NULL, 0, 0, 0,
         0, NULL},
        {"FROM:<a@b> ENVID=a+2b", ALL_EXT, "501 5.5.4 Bad ENVID parameter syntax", NULL, 0, 0,
         0, 0, NULL},
        {"FROM:<a@b> ENVID=", ALL_EXT, "501 5.5.4 Bad ENVID parameter syntax", NULL, 0, 0, 0, 0,
         NULL},
        {"FROM:<a@b> RET=FULL", ALL_EXT & ~SMTP_EXT_DSN, "555 5.5.4 Unsupported option: RET",
         NULL, 0, 0, 0, 0, NULL},
        {"FROM:<a@b> MT-PRIORITY=-9", ALL_EXT, NULL, "a@b", -1, 0, 0, 0, NULL},
        {"FROM:<a@b> MT-PRIORITY=10", ALL_EXT, "501 5.5.4 Bad MT-PRIORITY parameter syntax",
         NULL, 0, 0, 0, 0, NULL},
        {"FROM:<a@b> AUTH=<>", ALL_EXT, NULL, "a@b", -1, 0, 0, 0, NULL},
        {"FROM:<a@b> AUTH=x", ALL_EXT & ~SMTP_EXT_AUTH, "555 5.5.4 Unsupported option: AUTH",
         NULL, 0, 0, 0, 0, NULL},
        {"FROM:<a@b> =x", ALL_EXT, "501 5.5.4 Error: bad parameter syntax", NULL, 0, 0, 0, 0,
         NULL},
        {"FROM:<a@b> A B C D E F G H I J K L M N O P Q", ALL_EXT,
         "501 5.5.4 Error: too many parameters", NULL, 0, 0, 0, 0, NULL},
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct mail_case *c = &cases[i];
        struct smtp_mail_args a;
        struct strbuf why;
        int got;

        smtp_mail_args_init(&a);
        strbuf_init(&why, 64, 1024);
        got = smtp_cmd_parse_mail(c->arg, strlen(c->arg), c->flags, &a, &why);
        if (c->reply == NULL && got != 0)
            fail_msg("case %zu \"%s\": got error \"%s\"", i, c->arg, why.data);
        if (c->reply != NULL && (got != -1 || strcmp(why.data, c->reply) != 0))
            fail_msg("case %zu \"%s\": got %d \"%s\" want \"%s\"", i, c->arg, got, why.data,
                     c->reply);
        if (c->reply == NULL) {
            assert_string_equal(a.address.data, c->addr);
            assert_int_equal(a.size, c->size);
            assert_int_equal(a.body, c->body);
            assert_int_equal(a.smtputf8, c->smtputf8);
            assert_int_equal(a.ret, c->ret);
            assert_int_equal(a.have_envid, c->envid != NULL);
            if (c->envid)
                assert_string_equal(a.envid.data, c->envid);
        }
        smtp_mail_args_free(&a);
        strbuf_release(&why);
    }
}

static void test_mail_values(void **state)
{
    struct smtp_mail_args a;
    struct strbuf why;
    const char *arg = "FROM:<a@b> MT-PRIORITY=+3 AUTH=joe+2Bx@example.com";

    (void) state;
    smtp_mail_args_init(&a);
    strbuf_init(&why, 64, 1024);
    assert_int_equal(smtp_cmd_parse_mail(arg, strlen(arg), ALL_EXT, &a, &why), 0);
    assert_int_equal(a.have_mt_priority, 1);
    assert_int_equal(a.mt_priority, 3);
    assert_int_equal(a.have_auth, 1);
    assert_string_equal(a.auth.data, "joe+x@example.com");
    smtp_mail_args_free(&a);
    strbuf_release(&why);
}

static void test_rcpt(void **state)
{
    static const struct {
        const char *arg;
        int flags;
        const char *reply;
        const char *addr;
        int notify;
        const char *orcpt;
    } cases[] = {
        {"TO:<u@example.com>", ALL_EXT, NULL, "u@example.com", 0, NULL},
        {"to:<u@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u+40example.com", ALL_EXT,
         NULL, "u@example.com", SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE,
         "rfc822;u@example.com"},
        {"TO:<u@x> NOTIFY=NEVER", ALL_EXT, NULL, "u@x", SMTP_NOTIFY_NEVER, NULL},
        {"TO:<u@x> NOTIFY=DELAY", ALL_EXT, NULL, "u@x", SMTP_NOTIFY_DELAY, NULL},
        {"TO:<u@x> NOTIFY=NEVER,DELAY", ALL_EXT, "501 5.5.4 Error: Bad NOTIFY parameter syntax",
         NULL, 0, NULL},
        {"TO:<u@x> NOTIFY=SUCCESS,SUCCESS", ALL_EXT,
         "501 5.5.4 Error: Bad NOTIFY parameter syntax", NULL, 0, NULL},
        {"TO:<u@x> NOTIFY=", ALL_EXT, "501 5.5.4 Error: Bad NOTIFY parameter syntax", NULL, 0,
         NULL},
        {"TO:<u@x> NOTIFY=SUCCESS,", ALL_EXT, "501 5.5.4 Error: Bad NOTIFY parameter syntax",
         NULL, 0, NULL},
        {"TO:<u@x> ORCPT=u@x", ALL_EXT, "501 5.5.4 Error: Bad ORCPT parameter syntax", NULL, 0,
         NULL},
        {"TO:<u@x> ORCPT=;u@x", ALL_EXT, "501 5.5.4 Error: Bad ORCPT parameter syntax", NULL, 0,
         NULL},
        {"TO:<u@x> ORCPT=rfc822;", ALL_EXT, "501 5.5.4 Error: Bad ORCPT parameter syntax", NULL,
         0, NULL},
        {"TO:<u@x> ORCPT=RFC822;a+ZZ", ALL_EXT, "501 5.5.4 Error: Bad ORCPT parameter syntax",
         NULL, 0, NULL},
        {"TO:<u@x> NOTIFY=NEVER", ALL_EXT & ~SMTP_EXT_DSN, "555 5.5.4 Unsupported option: NOTIFY",
         NULL, 0, NULL},
        {"TO:<u@x> SIZE=10", ALL_EXT, "555 5.5.4 Unsupported option: SIZE", NULL, 0, NULL},
        {"TO:<>", ALL_EXT, "501 5.1.3 Bad recipient address syntax", NULL, 0, NULL},
        {"TO:", ALL_EXT, "501 5.5.4 Syntax: RCPT TO:<address>", NULL, 0, NULL},
        {"FROM:<u@x>", ALL_EXT, "501 5.5.4 Syntax: RCPT TO:<address>", NULL, 0, NULL},
        {"TO:<\xc3\xa9@x>", ALL_EXT & ~SMTP_EXT_SMTPUTF8,
         "553 5.6.7 Must declare SMTPUTF8 to send unicode address", NULL, 0, NULL},
        {"TO:<\xc3\xa9@x>", ALL_EXT, NULL, "\xc3\xa9@x", 0, NULL},
    };
    size_t i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct smtp_rcpt_args a;
        struct strbuf why;
        int got;

        smtp_rcpt_args_init(&a);
        strbuf_init(&why, 64, 1024);
        got = smtp_cmd_parse_rcpt(cases[i].arg, strlen(cases[i].arg), cases[i].flags, &a, &why);
        if (cases[i].reply == NULL && got != 0)
            fail_msg("case %zu \"%s\": got error \"%s\"", i, cases[i].arg, why.data);
        if (cases[i].reply != NULL && (got != -1 || strcmp(why.data, cases[i].reply) != 0))
            fail_msg("case %zu \"%s\": got %d \"%s\" want \"%s\"", i, cases[i].arg, got,
                     why.data, cases[i].reply);
        if (cases[i].reply == NULL) {
            assert_string_equal(a.address.data, cases[i].addr);
            assert_int_equal(a.notify, cases[i].notify);
            assert_int_equal(a.have_orcpt, cases[i].orcpt != NULL);
            if (cases[i].orcpt)
                assert_string_equal(a.orcpt.data, cases[i].orcpt);
        }
        smtp_rcpt_args_free(&a);
        strbuf_release(&why);
    }
}

static void test_xtext(void **state)
{
    struct strbuf out, enc;
    char max[SMTP_CMD_ENVID_MAX + 2];

    (void) state;
    strbuf_init(&out, 16, 1024);
    strbuf_init(&enc, 16, 1024);
    assert_int_equal(smtp_xtext_decode("a+2Bb+3Dc", 9, 100, &out), 0);
    assert_string_equal(out.data, "a+b=c");
    smtp_xtext_encode("a+b=c d", &enc);
    assert_string_equal(enc.data, "a+2Bb+3Dc+20d");
    assert_int_equal(smtp_xtext_decode(enc.data, enc.len, 100, &out), 0);
    assert_string_equal(out.data, "a+b=c d");
    assert_int_equal(smtp_xtext_decode("a=b", 3, 100, &out), -1);
    assert_int_equal(smtp_xtext_decode("a b", 3, 100, &out), -1);
    assert_int_equal(smtp_xtext_decode("+4", 2, 100, &out), -1);
    assert_int_equal(smtp_xtext_decode("+4g", 3, 100, &out), -1);
    assert_int_equal(smtp_xtext_decode("a+0Db", 5, 100, &out), -1);       /* CR */
    assert_int_equal(smtp_xtext_decode("a+00b", 5, 100, &out), -1);       /* NUL */
    assert_int_equal(smtp_xtext_decode("a+7F", 4, 100, &out), -1);
    assert_int_equal(smtp_xtext_decode("+C3+A9", 6, 100, &out), 0);       /* UTF-8 is fine */
    assert_string_equal(out.data, "\xc3\xa9");
    /* The decoded limit, and one past it. */
    memset(max, 'x', sizeof(max));
    assert_int_equal(smtp_xtext_decode(max, SMTP_CMD_ENVID_MAX, SMTP_CMD_ENVID_MAX, &out), 0);
    assert_int_equal(out.len, SMTP_CMD_ENVID_MAX);
    assert_int_equal(smtp_xtext_decode(max, SMTP_CMD_ENVID_MAX + 1, SMTP_CMD_ENVID_MAX, &out),
                     -1);
    strbuf_release(&out);
    strbuf_release(&enc);
}

/* Every prefix of a valid command must parse or fail cleanly (no over-read
 * under the sanitizer build). */
static void test_prefixes(void **state)
{
    const char *arg = "FROM:<a@b.example> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=x+2By SMTPUTF8";
    size_t n;

    (void) state;
    for (n = 0; n <= strlen(arg); n++) {
        struct smtp_mail_args a;
        struct strbuf why;
        char *copy = test_malloc(n + 1);

        memcpy(copy, arg, n);
        copy[n] = 'Z';                  /* not NUL-terminated: the parser must honour n */
        smtp_mail_args_init(&a);
        strbuf_init(&why, 64, 1024);
        (void) smtp_cmd_parse_mail(copy, n, ALL_EXT, &a, &why);
        smtp_mail_args_free(&a);
        strbuf_release(&why);
        test_free(copy);
    }
}

/* RFC 4954 section 4: AUTH mechanism [initial-response]. */
static void test_auth(void **state)
{
    static const struct {
        const char *arg;
        int ok, have_init;
        const char *mech, *init;
    } cases[] = {
        {"PLAIN", 0, 0, "PLAIN", ""},
        {"plain AGFsaWNlAHB3", 0, 1, "PLAIN", "AGFsaWNlAHB3"},
        {"  cram-md5  ", 0, 0, "CRAM-MD5", ""},
        {"PLAIN =", 0, 1, "PLAIN", "="},
        {"SCRAM-SHA-256-PLUS x", 0, 1, "SCRAM-SHA-256-PLUS", "x"},
        {"ABCDEFGHIJKLMNOPQRST", 0, 0, "ABCDEFGHIJKLMNOPQRST", ""},     /* 20: the limit */
        {"ABCDEFGHIJKLMNOPQRSTU", -1, 0, "", ""},                       /* 21 */
        {"", -1, 0, "", ""},
        {"   ", -1, 0, "", ""},
        {"PLAIN a b", -1, 0, "", ""},
        {"PL*AIN", -1, 0, "", ""},
        {"PLAIN a\x01b", -1, 0, "", ""},
        {"PLAIN a\x7f", -1, 0, "", ""},
    };
    char mech[SMTP_CMD_MECH_MAX + 1];
    struct strbuf init;
    size_t i;
    int have;

    (void) state;
    strbuf_init(&init, 16, 1024);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = smtp_cmd_parse_auth(cases[i].arg, strlen(cases[i].arg), mech, &init, &have);

        assert_int_equal(rc, cases[i].ok);
        if (rc == 0) {
            assert_string_equal(mech, cases[i].mech);
            assert_int_equal(have, cases[i].have_init);
            assert_string_equal(init.data, cases[i].init);
        }
    }
    /* Only len bytes count: "PLAIN xyz" cut after "PLAIN". */
    assert_int_equal(smtp_cmd_parse_auth("PLAIN xyz", 5, mech, &init, &have), 0);
    assert_int_equal(have, 0);
    /* An initial response over the buffer's limit is refused, not cut. */
    strbuf_release(&init);
    strbuf_init(&init, 4, 8);
    assert_int_equal(smtp_cmd_parse_auth("PLAIN 123456789", 15, mech, &init, &have), -1);
    strbuf_release(&init);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_mail),
        cmocka_unit_test(test_mail_values),
        cmocka_unit_test(test_rcpt),
        cmocka_unit_test(test_xtext),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_auth),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
