/*
 * test_dict_pattern.c - regexp: and pcre: tables: first match, default case
 * insensitivity and the i flag, negation, if/endif, $n substitution, flags,
 * every rule error with its line number, the PCRE2 match limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "dict.h"
#include "dict_test.h"

typedef struct dict *(*open_buf_fn)(const char *, const char *, size_t, int, struct strbuf *);

static const struct engine {
    const char *type;
    open_buf_fn open;
} engines[] = {
    {"regexp", dict_regexp_open_buf},
    {"pcre", dict_pcre_open_buf},
};

/* Rules both engines read the same way. */
static const char common_rules[] =
    "# header checks\n"
    "/^Subject: (.*)viagra/     REJECT spam about $1\n"
    "/^From: (.*)@(example\\.com)$/  OK ${2} user=$(1) $$5\n"
    "/^To: CaseSensitive/i      sensitive\n"
    "!/@/                       no at sign\n"
    "if /^X-/\n"
    "/^X-Inner: (a)|(b)/        inner $1-$2\n"
    "if !/secret/\n"
    "/^X-Deep/                  deep\n"
    "endif\n"
    "ENDIF\n"
    "/^X-/                      outer\n"
    "/^(a+)b/ first\n"
    "/^a+b/ second\n"
    "/./ any\n";

static void test_common_rules(void **state)
{
    static const struct {
        const char *key;
        const char *want;
    } cases[] = {
        {"Subject: cheap VIAGRA@", "REJECT spam about cheap "},
        {"From: Joe@example.com", "OK example.com user=Joe $5"},
        {"To: CaseSensitive@", "sensitive"},
        {"To: casesensitive@", "any"},
        {"no at sign here", "no at sign"},
        {"X-Inner: b@", "inner -b"},
        {"X-Inner: a@", "inner a-"},
        {"X-Deep@", "deep"},
        {"X-Deep secret@", "outer"},
        {"aaab@", "first"},
        {"@", "any"},
        {"", "no at sign"},
    };
    struct strbuf err;
    struct dict *d;
    const char *got;
    size_t e, i;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    for (e = 0; e < 2; e++) {
        d = engines[e].open("rules", common_rules, strlen(common_rules), DICT_FLAG_FOLD_KEY,
                            &err);
        if (d == NULL)
            fail_msg("%s: %s", engines[e].type, err.data);
        assert_true(dict_flags(d) & DICT_FLAG_PATTERN);
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            got = dict_get(d, cases[i].key);
            if (got == NULL || strcmp(got, cases[i].want) != 0)
                fail_msg("%s: key \"%s\": got \"%s\", want \"%s\"", engines[e].type,
                         cases[i].key, got ? got : "(none)", cases[i].want);
        }
        dict_close(&d);
    }
    strbuf_release(&err);
}

static void test_rule_errors(void **state)
{
    static const struct {
        const char *text;
        const char *err;        /* after "TYPE " is stripped: the same for both */
    } cases[] = {
        {"/a/ x\nendif\n", "r:2: \"endif\" without \"if\""},
        {"if /a/\n/b/ c\n", "r:1: \"if\" without \"endif\""},
        {"if /a/\nif /b/\nendif\n", "r:1: \"if\" without \"endif\""},
        {"/a/\n", "r:1: missing result after the pattern"},
        {"\n/a b\n", "r:2: missing closing \"/\" after the pattern"},
        {"abc x\n", "r:1: expected /pattern/ at the start of the rule"},
        {"/(a)/ $2\n", "r:1: $2 out of range: the pattern has 1 group"},
        {"/a/ $1\n", "r:1: $1 out of range: the pattern has 0 groups"},
        {"!/(a)/ $1\n", "r:1: $1 in the result of a negated pattern"},
        {"/(a)/ $1x\n", "r:1: bad substitution \"$1x\" in \"$1x\": expected $1..$99"},
        {"/(a)/ ${1\n", "r:1: missing \"}\" in \"${1\""},
        {"/(a)/ ${}\n", "r:1: bad substitution \"$\" in \"${}\": expected $1..$99"},
        {"/(a)/ $100\n", "r:1: bad substitution \"$100\" in \"$100\": expected $1..$99"},
        {"if /a/ extra\nendif\n", "r:1: text after the \"if\" pattern"},
        {"if /a/\nendif junk\n", "r:2: text after \"endif\""},
    };
    struct strbuf err;
    size_t e, i;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    for (e = 0; e < 2; e++) {
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            strbuf_reset(&err);
            if (engines[e].open("r", cases[i].text, strlen(cases[i].text), 0, &err) != NULL)
                fail_msg("%s: rules \"%s\" accepted", engines[e].type, cases[i].text);
            if (strcmp(err.data, cases[i].err) != 0)
                fail_msg("%s: got \"%s\", want \"%s\"", engines[e].type, err.data,
                         cases[i].err);
        }
        /* Flags are checked per engine. */
        strbuf_reset(&err);
        assert_null(engines[e].open("r", "/a/q x\n", 7, 0, &err));
        assert_non_null(strstr(err.data, "r:1: unknown"));
        assert_non_null(strstr(err.data, "flag \"q\""));
        strbuf_reset(&err);
        assert_null(engines[e].open("r", "k v\n/(/ x\n", 10, 0, &err));
        assert_true(strncmp(err.data, "r:1: ", 5) == 0);
        strbuf_reset(&err);
        assert_null(engines[e].open("r", "/a/ x\n/(/ x\n", 12, 0, &err));
        assert_true(strncmp(err.data, "r:2: bad regular expression \"(\"", 31) == 0);
    }
    strbuf_release(&err);
}

static void test_nesting_limit_and_empty(void **state)
{
    struct strbuf text, err;
    struct dict *d;
    size_t e;
    int i;

    strbuf_init(&text, 0, STRBUF_UNLIMITED);
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    for (e = 0; e < 2; e++) {
        /* Depth 100 is the limit: accepted; 101 is refused on line 101. */
        strbuf_reset(&text);
        for (i = 0; i < 100; i++)
            strbuf_puts(&text, "if /a/\n");
        strbuf_puts(&text, "/a/ deep\n");
        for (i = 0; i < 100; i++)
            strbuf_puts(&text, "endif\n");
        d = engines[e].open("n", text.data, text.len, 0, &err);
        assert_non_null(d);
        assert_string_equal(dict_get(d, "a"), "deep");
        assert_null(dict_get(d, "b"));
        dict_close(&d);
        strbuf_reset(&text);
        for (i = 0; i < 101; i++)
            strbuf_puts(&text, "if /a/\n");
        strbuf_reset(&err);
        assert_null(engines[e].open("n", text.data, text.len, 0, &err));
        assert_string_equal(err.data, "n:101: \"if\" nested deeper than 100");
        d = engines[e].open("empty", "", 0, 0, &err);
        assert_non_null(d);
        assert_null(dict_get(d, "x"));
        assert_int_equal(dict_error(d), DICT_ERR_NONE);
        dict_close(&d);
    }
    strbuf_release(&text);
    strbuf_release(&err);
}

static void test_engine_flags(void **state)
{
    struct strbuf err;
    struct dict *d;
    const char *text;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    /* regexp: x toggles extended syntax off, so "+" is literal in basic syntax. */
    text = "/a+b/x basic\n/^line2$/m multi\n";
    d = dict_regexp_open_buf("r", text, strlen(text), 0, &err);
    assert_non_null(d);
    assert_string_equal(dict_get(d, "xa+b"), "basic");
    assert_null(dict_get(d, "aab"));
    assert_string_equal(dict_get(d, "line1\nline2"), "multi");
    dict_close(&d);
    /* pcre: s, U, A, E, X. */
    text = "/^a.b$/s dotall\n/<(.+)>/U ungreedy $1\n/b/A anchored\n/c$/E endonly\n/d/X x\n";
    d = dict_pcre_open_buf("p", text, strlen(text), 0, &err);
    assert_non_null(d);
    assert_string_equal(dict_get(d, "a\nb"), "dotall");
    assert_string_equal(dict_get(d, "<x><y>"), "ungreedy x");
    assert_null(dict_get(d, "ab"));
    assert_string_equal(dict_get(d, "bz"), "anchored");
    assert_null(dict_get(d, "zc\n"));
    assert_string_equal(dict_get(d, "zc"), "endonly");
    assert_string_equal(dict_get(d, "d"), "x");
    dict_close(&d);
    strbuf_release(&err);
}

static void test_pcre_match_limit(void **state)
{
    struct strbuf err, key;
    struct dict *d;
    const char *text = "/^(a+)+$/ catastrophic\n/./ fallback\n";
    clock_t start;
    int i;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    strbuf_init(&key, 0, STRBUF_UNLIMITED);
    for (i = 0; i < 40; i++)
        strbuf_putc(&key, 'a');
    strbuf_putc(&key, 'b');
    d = dict_pcre_open_buf("p", text, strlen(text), 0, &err);
    assert_non_null(d);
    start = clock();
    /* The runaway rule is skipped (with a warning); the next rule answers. */
    assert_string_equal(dict_get(d, key.data), "fallback");
    assert_true(clock() - start < 5 * CLOCKS_PER_SEC);
    assert_int_equal(dict_error(d), DICT_ERR_NONE);
    dict_close(&d);
    strbuf_release(&err);
    strbuf_release(&key);
}

static void test_result_limit(void **state)
{
    struct strbuf text, err, key;
    struct dict *d;
    int i;

    strbuf_init(&text, 0, STRBUF_UNLIMITED);
    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    strbuf_init(&key, 0, STRBUF_UNLIMITED);
    strbuf_puts(&text, "/(.*)/ ");
    for (i = 0; i < 16; i++)
        strbuf_puts(&text, "$1");
    strbuf_puts(&text, "\n");
    d = dict_regexp_open_buf("r", text.data, text.len, 0, &err);
    assert_non_null(d);
    /* 16 * 65536 = DICT_VALUE_MAX exactly: fine; one byte more: a retry error. */
    for (i = 0; i < 65536; i++)
        strbuf_putc(&key, 'k');
    assert_non_null(dict_get(d, key.data));
    strbuf_putc(&key, 'k');
    assert_null(dict_get(d, key.data));
    assert_int_equal(dict_error(d), DICT_ERR_RETRY);
    dict_close(&d);
    strbuf_release(&text);
    strbuf_release(&err);
    strbuf_release(&key);
}

static void test_regexp_complexity(void **state)
{
    static const struct {
        const char *rule;
        int ok;
    } cases[] = {
        {"/(a{99}){99}/ x\n", 1},
        {"/^[[:alpha:]]+(-[a-z]{1,63})*$/ x\n", 1},
        {"/((a{99}){99}){99}/ x\n", 0},
        {"/e+++++++++++++++++++++++++++++++/ x\n", 0},
        {"/\\(a\\{99\\}\\)\\{99\\}\\{99\\}/x x\n", 0},
        /* Stacked operators: two pass (a Perl habit), three are refused (glibc's
         * closure over "R*++++++++" takes minutes: found by fuzzing). */
        {"/a+?/ x\n", 1},
        {"/|^R*++++++++/i x\n", 0},
        {"/a*+?/ x\n", 0},
    };
    struct strbuf err;
    struct dict *d;
    size_t i;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strbuf_reset(&err);
        d = dict_regexp_open_buf("r", cases[i].rule, strlen(cases[i].rule), 0, &err);
        if ((d != NULL) != cases[i].ok)
            fail_msg("%s: got %s", cases[i].rule, d ? "accepted" : err.data);
        if (d == NULL)
            assert_non_null(strstr(err.data, "too complex"));
        dict_close(&d);
    }
    strbuf_release(&err);
}

static void test_files(void **state)
{
    struct strbuf err;
    struct dict *d;

    strbuf_init(&err, 0, STRBUF_UNLIMITED);
    dict_test_write("checks", "/^(.*)@example\\.com$/ local:$1\n");
    d = dict_open("regexp:checks", 0, &err);
    assert_string_equal(dict_get(d, "Bob@EXAMPLE.com"), "local:Bob");
    dict_close(&d);
    d = dict_open("pcre:checks", 0, &err);
    assert_string_equal(dict_get(d, "Bob@EXAMPLE.com"), "local:Bob");
    dict_close(&d);
    assert_null(dict_open("pcre:/nonexistent", 0, &err));
    assert_string_equal(err.data, "open /nonexistent: No such file or directory");
    strbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_rules),
        cmocka_unit_test(test_rule_errors),
        cmocka_unit_test(test_nesting_limit_and_empty),
        cmocka_unit_test(test_engine_flags),
        cmocka_unit_test(test_pcre_match_limit),
        cmocka_unit_test(test_result_limit),
        cmocka_unit_test(test_regexp_complexity),
        cmocka_unit_test(test_files),
    };

    dict_test_chdir_scratch();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
