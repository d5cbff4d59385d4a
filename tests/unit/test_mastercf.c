/*
 * test_mastercf.c - master.cf columns, defaults, -o forms, braces, wakeup "?",
 * and that every error names file and line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mastercf.h"
#include "strbuf.h"

static int parse(const char *text, struct mastercf *cf, struct strbuf *err)
{
    strbuf_reset(err);
    return mastercf_parse_text("master.cf", text, strlen(text), cf, err);
}

static void test_columns_and_defaults(void **state)
{
    static const char text[] =
        "# comment\n"
        "smtp      inet  n       -       n       -       -       smtpd\n"
        "127.0.0.1:2587 inet -   -       y       -       5       smtpd\n"
        "  # comment inside\n"
        "  -o smtpd_tls_security_level=encrypt\n"
        "  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }\n"
        "  -v { an argument }\n"
        "qmgr      unix  n       -       n       300?    1       qmgr\n"
        "cleanup   unix  -       n       -       0       0       cleanup\n"
        "[::1]:2525 inet n - n - - smtpd\n"
        "pickup fifo n - n 60 1 pickup\n"
        "smtp unix - - n - - smtp\n"
        "passer pass - - n - - smtpd\n";
    struct strbuf err;
    struct mastercf cf;
    const struct master_service *sv;

    strbuf_init(&err, 64, STRBUF_UNLIMITED);
    assert_int_equal(parse(text, &cf, &err), 0);
    assert_string_equal(err.data, "");
    assert_int_equal(cf.count, 8);
    sv = mastercf_find(&cf, "smtp", MASTER_INET);
    assert_non_null(sv);
    assert_int_equal(sv->private_, 0);
    assert_int_equal(sv->unpriv, 1);
    assert_int_equal(sv->chroot, 0);
    assert_int_equal(sv->wakeup, 0);
    assert_int_equal(sv->maxproc_default, 1);
    assert_int_equal(sv->maxproc, 100);
    assert_string_equal(sv->command, "smtpd");
    assert_int_equal(sv->line, 2);
    assert_string_equal(sv->file, "master.cf");
    sv = mastercf_find(&cf, "127.0.0.1:2587", MASTER_INET);
    assert_non_null(sv);
    assert_int_equal(sv->private_, 0);  /* "-" on inet means n */
    assert_int_equal(sv->chroot, 1);
    assert_int_equal(sv->maxproc, 5);
    assert_int_equal(sv->maxproc_default, 0);
    assert_int_equal(sv->noverrides, 2);
    assert_string_equal(sv->overrides[0].name, "smtpd_tls_security_level");
    assert_string_equal(sv->overrides[0].value, "encrypt");
    assert_string_equal(sv->overrides[1].name, "smtpd_client_restrictions");
    assert_string_equal(sv->overrides[1].value, "permit_sasl_authenticated, reject");
    assert_int_equal(sv->argc, 3);
    assert_string_equal(sv->argv[0], "smtpd");
    assert_string_equal(sv->argv[1], "-v");
    assert_string_equal(sv->argv[2], "an argument");
    assert_null(sv->argv[3]);
    sv = mastercf_find(&cf, "qmgr", MASTER_UNIX);
    assert_int_equal(sv->wakeup, 300);
    assert_int_equal(sv->wakeup_if_used, 1);
    assert_int_equal(sv->private_, 0);
    assert_int_equal(sv->line, 8);
    sv = mastercf_find(&cf, "cleanup", MASTER_UNIX);
    assert_int_equal(sv->private_, 1);  /* "-" on unix means y */
    assert_int_equal(sv->unpriv, 0);
    assert_int_equal(sv->maxproc, 0);
    assert_int_equal(sv->wakeup_if_used, 0);
    assert_non_null(mastercf_find(&cf, "[::1]:2525", MASTER_INET));
    assert_non_null(mastercf_find(&cf, "pickup", MASTER_FIFO));
    assert_non_null(mastercf_find(&cf, "smtp", MASTER_UNIX));
    assert_non_null(mastercf_find(&cf, "passer", MASTER_PASS));
    assert_null(mastercf_find(&cf, "pickup", MASTER_UNIX));
    mastercf_free(&cf);
    assert_int_equal(parse("", &cf, &err), 0);
    assert_int_equal(cf.count, 0);
    mastercf_free(&cf);
    strbuf_release(&err);
}

static void test_errors_name_file_and_line(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"a unix - - n - - x\nbad tcp n - n - - smtpd\n", "master.cf:2: bad service type \"tcp\""},
        {"x unix-dgram - - n - - smtpd\n", "master.cf:1: unsupported service type \"unix-dgram\""},
        {"x unix - - n - -\n", "master.cf:1: expected at least 8 fields"},
        {"# c\n\nx unix - -\n  n\n", "master.cf:3: expected at least 8 fields"},
        {"x unix - - n - - a\nx unix - - n - - b\n",
         "master.cf:2: duplicate service \"x unix\" (first defined at line 1)"},
        {"x unix maybe - n - - a\n", "master.cf:1: bad private field \"maybe\""},
        {"x unix - 1 n - - a\n", "master.cf:1: bad unpriv field \"1\""},
        {"x unix - - Y - - a\n", "master.cf:1: bad chroot field \"Y\""},
        {"x unix - - n -5 - a\n", "master.cf:1: bad wakeup field \"-5\""},
        {"x unix - - n 5?? - a\n", "master.cf:1: bad wakeup field"},
        {"x unix - - n - 9999999999 a\n", "master.cf:1: bad maxproc field"},
        {"x unix - - n - - a -o\n", "master.cf:1: missing name=value after -o"},
        {"x unix - - n - - a -o novalue\n", "master.cf:1: missing '=' in \"-o novalue\""},
        {"x unix - - n - - a -o bad-name=1\n", "master.cf:1: bad parameter name"},
        {"x unix - - n - - a { open\n", "master.cf:1: missing '}'"},
        {"x unix - - n - - a {b}c\n", "master.cf:1: text after '}'"},
        {"x unix - - n - - ../bin/sh\n", "master.cf:1: bad command"},
        {"70000 inet n - n - - smtpd\n", "master.cf:1: unknown port \"70000\""},
        {"host:nosuchservicename inet n - n - - smtpd\n", "master.cf:1: unknown port"},
        {":25 inet n - n - - smtpd\n", "master.cf:1: missing host"},
        {"[::1 inet n - n - - smtpd\n", "master.cf:1: bad inet service"},
        {"[zz]:25 inet n - n - - smtpd\n", "master.cf:1: bad IPv6 address"},
        {"ho$t:25 inet n - n - - smtpd\n", "master.cf:1: bad host name"},
        {"  x unix - - n - - a\n", "master.cf:1: line starts with white space"},
        {"a/b unix - - n - - a\n", "master.cf:1: bad service name"},
    };
    struct strbuf err;
    struct mastercf cf;
    size_t i;

    strbuf_init(&err, 64, STRBUF_UNLIMITED);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int res = parse(cases[i].text, &cf, &err);

        if (res != -1 || strstr(err.data, cases[i].want) == NULL)
            fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, res, err.data, cases[i].want);
        mastercf_free(&cf);
    }
    strbuf_release(&err);
}

static void test_good_service_names(void **state)
{
    static const char *const names[] = {
        "smtp", "submission", "submissions", "25", "127.0.0.1:2525", "[::1]:2525",
        "localhost:smtp", "mail.example.com:587", "0.0.0.0:65535",
    };
    struct strbuf err, text;
    struct mastercf cf;
    size_t i;

    strbuf_init(&err, 64, STRBUF_UNLIMITED);
    strbuf_init(&text, 64, STRBUF_UNLIMITED);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        strbuf_reset(&text);
        strbuf_printf(&text, "%s inet n - n - - smtpd\n", names[i]);
        if (parse(text.data, &cf, &err) != 0)
            fail_msg("%s: %s", names[i], err.data);
        mastercf_free(&cf);
    }
    strbuf_release(&text);
    strbuf_release(&err);
}

static void test_keeps_good_services_after_error(void **state)
{
    struct strbuf err;
    struct mastercf cf;

    strbuf_init(&err, 64, STRBUF_UNLIMITED);
    assert_int_equal(parse("a unix - - n - - a\nb bogus - - n - - b\nc unix - - n - - c\n"
                           "d unix x - n - - d\n", &cf, &err), -1);
    assert_int_equal(cf.count, 2);
    assert_non_null(strstr(err.data, "master.cf:2:"));
    assert_non_null(strstr(err.data, "master.cf:4:"));
    mastercf_free(&cf);
    assert_int_equal(mastercf_parse("/nonexistent/master.cf", &cf, &err), -1);
    assert_non_null(strstr(err.data, "/nonexistent/master.cf: cannot open"));
    mastercf_free(&cf);
    strbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns_and_defaults),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_good_service_names),
        cmocka_unit_test(test_keeps_good_services_after_error),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
