/*
 * test_config.c - main.cf loading: the registry, expansion, loops and limits,
 * unknown names, types and their limits, line numbers, -o overrides, reload.
 * Each test writes main.cf (and master.cf) into a fresh directory and loads it
 * with config_try_load()/config_check(), which report instead of exiting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "params.h"
#include "strbuf.h"

static char test_dir[] = "/tmp/test_config.XXXXXX";

static void write_file(const char *name, const char *text)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* Loads main.cf text; returns the error count and leaves the report in *out. */
static int load(const char *text, struct strbuf *out)
{
    write_file("main.cf", text);
    strbuf_reset(out);
    return config_try_load(out);
}

static int check(const char *text, struct strbuf *out)
{
    write_file("main.cf", text);
    strbuf_reset(out);
    return config_check(out);
}

static int setup(void **state)
{
    static struct strbuf report;

    strbuf_init(&report, 256, STRBUF_UNLIMITED);
    *state = &report;
    return 0;
}

static int teardown(void **state)
{
    strbuf_release(*state);
    return 0;
}

static void test_registry_sorted_and_defaults_valid(void **state)
{
    const struct param_def *p, *prev = NULL;
    struct strbuf why;

    strbuf_init(&why, 64, 4096);
    for (p = param_table; p->name; p++) {
        if (p->name[0] == '*') {
            assert_null(p->var);
            assert_non_null(p->defval);
            continue;
        }
        assert_non_null(p->var);
        assert_non_null(p->doc);
        if (prev && strcmp(prev->name, p->name) >= 0)
            fail_msg("registry not sorted at %s after %s", p->name, prev->name);
        prev = p;
        assert_ptr_equal(param_find(p->name), p);
        if (p->defval && strchr(p->defval, '$') == NULL
            && config_check_value(p, p->defval, NULL, &why) < 0)
            fail_msg("default of %s: %s", p->name, why.data);
    }
    assert_null(param_find("no_such_parameter"));
    assert_null(param_find("*_time_limit"));
    strbuf_release(&why);
}

static void test_defaults_load(void **state)
{
    struct strbuf *r = *state;

    assert_int_equal(load("", r), 0);
    assert_int_equal(var_message_size_limit, 10240000);
    assert_int_equal(var_maximal_queue_lifetime, 5 * 86400);
    assert_int_equal(var_smtpd_timeout, 300);
    assert_int_equal(var_smtpd_delay_reject, 1);
    assert_string_equal(var_mail_name, "Petrel");
    assert_string_equal(var_myorigin, var_myhostname);
    assert_non_null(strchr(var_myhostname, '.'));
    assert_string_equal(var_config_directory, test_dir);
    assert_string_equal(config_lookup_raw("mydestination"), "$myhostname, localhost.$mydomain, localhost");
    assert_string_equal(config_lookup("unix_passwd_nothing") ? "x" : "", "");
}

static void test_continuation_and_comments(void **state)
{
    struct strbuf *r = *state;

    assert_int_equal(load("# comment\n\nmyorigin = a  \n  # inside\n\n\tb,\n   c  \n"
                          "myhostname=host.example.com\n", r), 0);
    assert_string_equal(var_myorigin, "a b, c");
    assert_string_equal(var_myhostname, "host.example.com");
    assert_string_equal(var_mydomain, "example.com");
}

static void test_expansion_forms(void **state)
{
    static const struct {
        const char *expr, *want;
    } cases[] = {
        {"$h1", "one"}, {"${h1}", "one"}, {"$(h1)", "one"},
        {"${h1?yes}", "yes"}, {"${empty?yes}", ""}, {"${nothing_here?yes}", ""},
        {"${h1:no}", ""}, {"${empty:no}", "no"}, {"${nothing_here:no}", "no"},
        {"$$h1", "$h1"}, {"$$", "$"}, {"a$h1.b", "aone.b"}, {"${h1?[$h1]}", "[one]"},
        {"$h2", "one-x"}, {"${h1}${h1}", "oneone"}, {"cost $ 5", "cost $ 5"},
        {"$undefined_name", ""}, {"", ""},
    };
    struct strbuf *r = *state;
    char text[512];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "h1 = one\nempty =\nh2 = $h1-x\nmyorigin = %s\n"
                 "alias_maps = $h2 $empty\n", cases[i].expr);
        if (load(text, r) != 0)
            fail_msg("%s: %s", cases[i].expr, r->data);
        if (strcmp(var_myorigin, cases[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].expr, var_myorigin, cases[i].want);
    }
}

static void test_expansion_errors(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"myorigin = $myorigin\n", "main.cf:1: parameter myorigin: loop in $name expansion"},
        {"a = $b\nb = $a\nmyorigin = $a\n", "main.cf:1: parameter a: loop"},
        {"x = 1\na = $b\nb = $c\nc = $a\nmyorigin = $a\n", "main.cf:4: parameter c: loop"},
        {"myhostname = $mydomain\nmydomain = $myhostname\n", "main.cf:1: parameter myhostname: loop"},
        {"myorigin = ${h1\nh1 = x\n", "main.cf:1: parameter myorigin: missing '}'"},
        {"myorigin = ${h1!x}\nh1 = x\n", "main.cf:1: parameter myorigin: bad parameter name"},
        {"myorigin = ${}\n", "bad parameter name"},
    };
    struct strbuf *r = *state;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (load(cases[i].text, r) == 0 || strstr(r->data, cases[i].want) == NULL)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, r->data, cases[i].want);
    }
}

static void test_expansion_limits(void **state)
{
    struct strbuf *r = *state, text;
    int i, j;

    strbuf_init(&text, 1024, STRBUF_UNLIMITED);
    /* Depth: a chain of 40 references. */
    for (i = 0; i < 40; i++)
        strbuf_printf(&text, "d%d = $d%d\n", i, i + 1);
    strbuf_puts(&text, "d40 = end\nmyorigin = $d0\n");
    assert_true(load(text.data, r) > 0);
    assert_non_null(strstr(r->data, "nested deeper than 32"));
    /* 31 levels are fine. */
    strbuf_reset(&text);
    for (i = 0; i < 30; i++)
        strbuf_printf(&text, "d%d = $d%d\n", i, i + 1);
    strbuf_puts(&text, "d30 = end\nmyorigin = $d0\n");
    assert_int_equal(load(text.data, r), 0);
    assert_string_equal(var_myorigin, "end");
    /* Length: doubling ten times from 1 KB passes 256 KB. */
    strbuf_reset(&text);
    strbuf_puts(&text, "g0 = ");
    for (i = 0; i < 1024; i++)
        strbuf_putc(&text, 'x');
    strbuf_putc(&text, '\n');
    for (i = 1; i <= 10; i++)
        strbuf_printf(&text, "g%d = $g%d$g%d\n", i, i - 1, i - 1);
    strbuf_puts(&text, "myorigin = $g10\n");
    assert_true(load(text.data, r) > 0);
    assert_non_null(strstr(r->data, "longer than 262144 bytes"));
    /* Work: empty values referenced 50 x 50 x 50 times. */
    strbuf_reset(&text);
    strbuf_puts(&text, "w0 =\n");
    for (i = 1; i <= 3; i++) {
        strbuf_printf(&text, "w%d =", i);
        for (j = 0; j < 50; j++)
            strbuf_printf(&text, " $w%d", i - 1);
        strbuf_putc(&text, '\n');
    }
    strbuf_puts(&text, "myorigin = $w3\n");
    assert_true(load(text.data, r) > 0);
    assert_non_null(strstr(r->data, "more than 100000 $name expansions"));
    strbuf_release(&text);
}

static void test_unknown_names(void **state)
{
    struct strbuf *r = *state;

    assert_int_equal(load("myorigin = x\nmesage_size_limit = 5\n", r), 1);
    assert_non_null(strstr(r->data, "/main.cf:2: unknown parameter \"mesage_size_limit\";"
                           " did you mean \"message_size_limit\"?\n"));
    assert_int_equal(load("zzqqxx = 5\n", r), 1);
    assert_non_null(strstr(r->data, "unknown parameter \"zzqqxx\"\n"));
    /* A helper that another value uses is fine, also when used only in master.cf. */
    assert_int_equal(load("helper = a\nmyorigin = $helper\n", r), 0);
    assert_string_equal(config_lookup("helper"), "a");
    write_file("master.cf", "smtp inet n - n - - smtpd\n  -o smtpd_client_restrictions=$mua\n"
               "relay unix - - n - - smtp\n");
    assert_int_equal(load("mua = permit\n", r), 0);
    write_file("master.cf", "");
    assert_string_equal(param_suggest("mesage_size_limit"), "message_size_limit");
    assert_string_equal(param_suggest("smtpd_recipient_restriction"), "smtpd_recipient_restrictions");
    assert_null(param_suggest("qq"));
}

static void test_service_patterns(void **state)
{
    struct strbuf *r = *state;

    write_file("master.cf", "smtp unix - - n - - smtp\nrelay unix - - n - - smtp\n"
               "pipe1 unix - n n - - pipe\n");
    assert_int_equal(load("default_destination_concurrency_limit = 7\n"
                          "relay_destination_recipient_limit = 5\npipe1_time_limit = 2m\n", r), 0);
    assert_int_equal(config_lookup_service_int("relay", "destination_recipient_limit"), 5);
    assert_int_equal(config_lookup_service_int("smtp", "_destination_concurrency_limit"), 7);
    assert_string_equal(config_lookup_service("smtp", "destination_concurrency_limit"), "7");
    assert_int_equal(config_lookup_service_int("pipe1", "time_limit"), 120);
    assert_int_equal(config_lookup_service_int("smtp", "time_limit"), 1000);
    assert_int_equal(config_lookup_service_int("local", "destination_recipient_limit"), 1);
    assert_int_equal(load("nosuch_destination_recipient_limit = 1\n", r), 1);
    assert_non_null(strstr(r->data, "main.cf:1: unknown parameter"));
    assert_int_equal(load("relay_destination_recipient_limit = x\n", r), 1);
    assert_non_null(strstr(r->data, "main.cf:1: bad numerical value \"x\" for parameter"
                           " relay_destination_recipient_limit"));
    write_file("master.cf", "");
}

static void test_types_and_limits(void **state)
{
    static const struct {
        const char *name, *value;
        int ok;
        long long want;
    } cases[] = {
        {"message_size_limit", "0", 1, 0},
        {"message_size_limit", "10240000", 1, 10240000},
        {"message_size_limit", "-1", 0, 0},
        {"message_size_limit", "abc", 0, 0},
        {"message_size_limit", "12k", 0, 0},
        {"message_size_limit", "", 0, 0},
        {"message_size_limit", "99999999999999999999", 0, 0},
        {"hash_queue_depth", "1", 1, 1},
        {"hash_queue_depth", "4", 1, 4},
        {"hash_queue_depth", "5", 0, 0},
        {"hash_queue_depth", "0", 0, 0},
        {"smtpd_delay_reject", "yes", 1, 1},
        {"smtpd_delay_reject", "NO", 1, 0},
        {"smtpd_delay_reject", "true", 1, 1},
        {"smtpd_delay_reject", "0", 1, 0},
        {"smtpd_delay_reject", "maybe", 0, 0},
        {"maximal_queue_lifetime", "5", 1, 5 * 86400},
        {"maximal_queue_lifetime", "5h", 1, 5 * 3600},
        {"maximal_queue_lifetime", "2w", 1, 2 * 604800},
        {"maximal_queue_lifetime", "30s", 1, 30},
        {"maximal_queue_lifetime", "3m", 1, 180},
        {"maximal_queue_lifetime", "5x", 0, 0},
        {"maximal_queue_lifetime", "5dd", 0, 0},
        {"maximal_queue_lifetime", "-5s", 0, 0},
        {"maximal_queue_lifetime", "d", 0, 0},
        {"maximal_queue_lifetime", "99999999999999999w", 0, 0},
        {"smtpd_timeout", "300", 1, 300},
        {"in_flow_delay", "10", 1, 10},
        {"in_flow_delay", "11", 0, 0},
        {"qmgr_fudge_factor", "9", 0, 0},
        {"qmgr_fudge_factor", "100", 1, 100},
        {"qmgr_fudge_factor", "101", 0, 0},
        {"myhostname", "anything at all", 1, 0},
    };
    struct strbuf why;
    size_t i;
    long long num;

    strbuf_init(&why, 64, 4096);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct param_def *p = param_find(cases[i].name);
        int res;

        assert_non_null(p);
        num = 0;
        strbuf_reset(&why);
        res = config_check_value(p, cases[i].value, &num, &why);
        if ((res == 0) != cases[i].ok || (res == 0 && num != cases[i].want))
            fail_msg("%s = %s: got %d/%lld (%s), want ok=%d %lld", cases[i].name, cases[i].value,
                     res, num, why.data, cases[i].ok, cases[i].want);
        if (res < 0 && strstr(why.data, cases[i].name) == NULL)
            fail_msg("%s: message does not name the parameter: %s", cases[i].name, why.data);
    }
    strbuf_release(&why);
}

static void test_bad_values_name_line(void **state)
{
    struct strbuf *r = *state;

    assert_int_equal(load("myorigin = x\n\nmessage_size_limit =\n   abc\n", r), 1);
    assert_non_null(strstr(r->data, "/main.cf:3: bad numerical value \"abc\" for parameter"
                           " message_size_limit\n"));
    assert_int_equal(var_message_size_limit, 10240000);
    assert_int_equal(load("hash_queue_depth = 5\n", r), 1);
    assert_non_null(strstr(r->data, "main.cf:1: value \"5\" for parameter hash_queue_depth is"
                           " above the maximum 4"));
    assert_int_equal(load("n = abc\nmessage_size_limit = $n\n", r), 1);
    assert_non_null(strstr(r->data, "main.cf:2: bad numerical value \"abc\""));
    assert_int_equal(load("# x\nfoo bar\n", r), 1);
    assert_non_null(strstr(r->data, "/main.cf:2: missing '=' after parameter name"));
    assert_int_equal(load("  indented = 1\n", r), 1);
    assert_non_null(strstr(r->data, "/main.cf:1: line starts with white space"));
    assert_int_equal(load("bad-name = 1\n", r), 1);
    assert_non_null(strstr(r->data, "/main.cf:1: bad parameter name \"bad-name\""));
    assert_int_equal(load("smtpd_delay_reject = maybe\n", r), 1);
    assert_non_null(strstr(r->data, "main.cf:1: bad boolean value \"maybe\""));
}

static void test_check_warnings_and_master(void **state)
{
    struct strbuf *r = *state;

    write_file("master.cf", "smtp inet n - n - - smtpd\n");
    assert_int_equal(check("myorigin = $nope\nmyorigin = b $nope2\n", r), 0);
    assert_non_null(strstr(r->data, "main.cf:2: warning: parameter myorigin: undefined $nope2"));
    assert_non_null(strstr(r->data, "main.cf:1: warning: parameter myorigin is set again at line 2"));
    write_file("master.cf", "smtp inet n - n - - smtpd\n  -o smtpd_tls_securty_level=may\n"
               "submission inet n - n - - smtpd -o smtpd_timeout=abc\n"
               "x unix - - n - - smtpd -o mynetworks=$undefined_but_fine\n"
               "bad tcp n - n - - smtpd\n");
    assert_int_equal(check("", r), 3);
    assert_non_null(strstr(r->data, "master.cf:1: service smtp: unknown parameter"
                           " \"smtpd_tls_securty_level\" in -o; did you mean \"smtpd_tls_security_level\"?"));
    assert_non_null(strstr(r->data, "master.cf:3: service submission: -o bad time value \"abc\""));
    assert_non_null(strstr(r->data, "master.cf:5: bad service type \"tcp\""));
    unlink("master.cf");
    write_file("master.cf", "");
}

static int extra_check(struct strbuf *report)
{
    strbuf_puts(report, "tables.cf:1: extra problem\n");
    return 1;
}

static void test_check_hooks(void **state)
{
    struct strbuf *r = *state;

    config_add_check(extra_check);
    config_add_check(extra_check);
    assert_int_equal(check("", r), 1);
    assert_non_null(strstr(r->data, "tables.cf:1: extra problem\n"));
}

static void test_reload_replaces(void **state)
{
    struct strbuf *r = *state;

    assert_int_equal(load("myorigin = first\nmessage_size_limit = 1\n", r), 0);
    assert_string_equal(var_myorigin, "first");
    assert_int_equal(load("myorigin = second\n", r), 0);
    assert_string_equal(var_myorigin, "second");
    assert_int_equal(var_message_size_limit, 10240000);
    assert_false(config_is_set("message_size_limit"));
}

/* Last: overrides cannot be removed again. */
static void test_overrides(void **state)
{
    struct strbuf *r = *state;

    config_add_override("message_size_limit", "123");
    config_add_override("myorigin", "$h");
    assert_int_equal(load("message_size_limit = 5\nmyorigin = x\nh = from-main\n", r), 0);
    assert_int_equal(var_message_size_limit, 123);
    assert_string_equal(var_myorigin, "from-main");
    config_add_override("smtpd_timeout", "bad");
    assert_int_equal(load("", r), 1);
    assert_non_null(strstr(r->data, "-o smtpd_timeout: bad time value \"bad\""));
    config_add_override("smtpd_timeout", "5m");
    config_add_override("no_such_thing", "1");
    assert_int_equal(load("", r), 1);
    assert_non_null(strstr(r->data, "-o no_such_thing: unknown parameter"));
}

static void test_config_dir(void **state)
{
    config_set_dir(NULL);
    setenv("PETREL_CONFIG_DIR", "/from/env", 1);
    assert_string_equal(config_dir(), "/from/env");
    config_set_dir("/from/option");
    assert_string_equal(config_dir(), "/from/option");
    unsetenv("PETREL_CONFIG_DIR");
    config_set_dir(NULL);
    assert_string_equal(config_dir(), DEF_CONFIG_DIR);
    config_set_dir(test_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_sorted_and_defaults_valid),
        cmocka_unit_test(test_config_dir),
        cmocka_unit_test(test_defaults_load),
        cmocka_unit_test(test_continuation_and_comments),
        cmocka_unit_test(test_expansion_forms),
        cmocka_unit_test(test_expansion_errors),
        cmocka_unit_test(test_expansion_limits),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_service_patterns),
        cmocka_unit_test(test_types_and_limits),
        cmocka_unit_test(test_bad_values_name_line),
        cmocka_unit_test(test_check_warnings_and_master),
        cmocka_unit_test(test_check_hooks),
        cmocka_unit_test(test_reload_replaces),
        cmocka_unit_test(test_overrides),
    };
    int res;

    if (mkdtemp(test_dir) == NULL)
        return 1;
    config_set_dir(test_dir);
    write_file("master.cf", "");
    res = cmocka_run_group_tests(tests, setup, teardown);
    {
        char cmd[300];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
        (void) !system(cmd);
    }
    return res;
}
