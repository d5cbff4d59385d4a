/*
 * test_resolve.c - address rewriting and resolution: every class, the
 * transport_maps order (address, address without extension, domain, parent
 * forms, "*"), transport(5) rules for empty fields, error: and discard:,
 * relayhost, routed addresses, the null address, malformed domains, and a
 * failing table (which must defer, never guess). Table-driven.
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
#include "dict.h"
#include "dict_impl.h"
#include "params.h"
#include "resolve.h"
#include "strbuf.h"

static char test_dir[] = "/tmp/test_resolve.XXXXXX";

/* "knob:" answers "*" with knob_star (when set) and fails everything when knob_fail. */
static const char *knob_star;
static int knob_fail;

static const char *knob_get(struct dict *d, const char *key)
{
    if (knob_fail) {
        d->error = DICT_ERR_RETRY;
        return NULL;
    }
    return strcmp(key, "*") == 0 ? knob_star : NULL;
}

static struct dict *knob_open(const char *spec, const char *name, int flags, struct strbuf *err)
{
    struct dict *d;

    (void) name;
    (void) err;
    d = dict_alloc(sizeof(*d), spec, flags | DICT_FLAG_FIXED);
    d->get = knob_get;
    return d;
}

static const char main_cf[] =
    "myhostname = mx.example.com\n"
    "mydomain = example.com\n"
    "myorigin = $mydomain\n"
    "mydestination = $myhostname, localhost.$mydomain, localhost, $mydomain\n"
    "inet_interfaces = 127.0.0.1\n"
    "proxy_interfaces = 192.0.2.99\n"
    "virtual_alias_domains = alias.example\n"
    "virtual_mailbox_domains = vmail.example\n"
    "relay_domains = relay.example\n"
    "relayhost = [smarthost.example]:587\n"
    "recipient_delimiter = +\n"
    "append_dot_mydomain = yes\n"
    "transport_maps = inline:{ special@example.net=lmtp:unix:/run/lmtp,\n"
    "    example.org=smtp:[10.0.0.1], .sub.example.org=relay:, err.example=error:nope,\n"
    "    junk.example=discard:gone, override.example=:[192.0.2.7], same.example=smtp:,\n"
    "    colon.example=: }, knob:x\n";

static int setup(void **state)
{
    char path[256];
    FILE *fp;

    (void) state;
    assert_non_null(mkdtemp(test_dir));
    snprintf(path, sizeof(path), "%s/main.cf", test_dir);
    assert_non_null(fp = fopen(path, "w"));
    fputs(main_cf, fp);
    fclose(fp);
    config_set_dir(test_dir);
    config_load();
    dict_register("knob", knob_open, NULL);
    resolve_init();
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void) state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", test_dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

struct resolve_case {
    const char *addr;
    int ret;
    enum resolve_class cls;
    int flags;
    const char *transport, *nexthop, *recipient;
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define ROUTED RESOLVE_FLAG_ROUTED
#define RELAYHOST "[smarthost.example]:587"

static void run_resolve(const struct resolve_case *cases, size_t n)
{
    struct resolve_reply r;
    size_t i;

    resolve_reply_init(&r);
    for (i = 0; i < n; i++) {
        const struct resolve_case *c = cases + i;
        int ret = resolve_addr(c->addr, &r);

        if (ret != c->ret || r.flags != c->flags
            || (ret == 0 && (r.cls != c->cls || strcmp(r.transport.data, c->transport)
                             || strcmp(r.nexthop.data, c->nexthop)
                             || strcmp(r.recipient.data, c->recipient))))
            fail_msg("\"%s\": got %d %s flags=%#x %s:%s -> %s; want %d %s flags=%#x %s:%s -> %s",
                     c->addr, ret, resolve_class_name(r.cls), (unsigned) r.flags,
                     r.transport.data, r.nexthop.data, r.recipient.data, c->ret,
                     resolve_class_name(c->cls), (unsigned) c->flags,
                     c->transport ? c->transport : "", c->nexthop ? c->nexthop : "",
                     c->recipient ? c->recipient : "");
    }
    resolve_reply_free(&r);
}

static void test_classes(void **state)
{
    static const struct resolve_case cases[] = {
        {"user@mx.example.com", 0, RESOLVE_CLASS_LOCAL, 0, "local", "mx.example.com",
         "user@mx.example.com"},
        {"User@EXAMPLE.COM.", 0, RESOLVE_CLASS_LOCAL, 0, "local", "mx.example.com",
         "User@EXAMPLE.COM"},
        {"user", 0, RESOLVE_CLASS_LOCAL, 0, "local", "mx.example.com", "user@mx.example.com"},
        {"user@", 0, RESOLVE_CLASS_LOCAL, 0, "local", "mx.example.com", "user@mx.example.com"},
        {"", 0, RESOLVE_CLASS_LOCAL, 0, "local", "mx.example.com", "MAILER-DAEMON@mx.example.com"},
        {"user@[127.0.0.1]", 0, RESOLVE_CLASS_LOCAL, 0, "local", "mx.example.com",
         "user@[127.0.0.1]"},
        {"user@[192.0.2.99]", 0, RESOLVE_CLASS_LOCAL, 0, "local", "mx.example.com",
         "user@[192.0.2.99]"},
        {"user@[192.0.2.98]", 0, RESOLVE_CLASS_DEFAULT, 0, "smtp", RELAYHOST,
         "user@[192.0.2.98]"},
        {"a@alias.example", 0, RESOLVE_CLASS_ALIAS, RESOLVE_FLAG_ERROR_TRANSPORT, "error",
         "5.1.1 User unknown in virtual alias table", "a@alias.example"},
        {"a@vmail.example", 0, RESOLVE_CLASS_VIRTUAL, 0, "virtual", "mx.example.com",
         "a@vmail.example"},
        {"a@relay.example", 0, RESOLVE_CLASS_RELAY, 0, "relay", RELAYHOST, "a@relay.example"},
        {"a@sub.relay.example", 0, RESOLVE_CLASS_RELAY, 0, "relay", RELAYHOST,
         "a@sub.relay.example"},
        {"a@elsewhere.example", 0, RESOLVE_CLASS_DEFAULT, 0, "smtp", RELAYHOST,
         "a@elsewhere.example"},
    };

    (void) state;
    run_resolve(cases, N(cases));
    assert_int_equal(resolve_domain_class("mx.example.com"), RESOLVE_CLASS_LOCAL);
    assert_int_equal(resolve_domain_class("ALIAS.example"), RESOLVE_CLASS_ALIAS);
    assert_int_equal(resolve_domain_class("vmail.example"), RESOLVE_CLASS_VIRTUAL);
    assert_int_equal(resolve_domain_class("relay.example"), RESOLVE_CLASS_RELAY);
    assert_int_equal(resolve_domain_class("example.org"), RESOLVE_CLASS_DEFAULT);
    assert_int_equal(resolve_is_our_domain("relay.example"), 1);
    assert_int_equal(resolve_is_our_domain("vmail.example"), 1);
    assert_int_equal(resolve_is_our_domain("example.org"), 0);
    assert_string_equal(resolve_class_name(RESOLVE_CLASS_ALIAS), "alias");
}

static void test_transport_maps(void **state)
{
    static const struct resolve_case cases[] = {
        /* The domain entry; "smtp:[10.0.0.1]" sets both fields. */
        {"x@example.org", 0, RESOLVE_CLASS_DEFAULT, 0, "smtp", "[10.0.0.1]", "x@example.org"},
        /* No parent-domain match for transport_maps by default... */
        {"x@a.example.org", 0, RESOLVE_CLASS_DEFAULT, 0, "smtp", RELAYHOST, "x@a.example.org"},
        /* ...but ".domain" names the subdomains; another transport without a next
         * hop delivers to the recipient domain. */
        {"x@a.sub.example.org", 0, RESOLVE_CLASS_DEFAULT, 0, "relay", "a.sub.example.org",
         "x@a.sub.example.org"},
        {"x@sub.example.org", 0, RESOLVE_CLASS_DEFAULT, 0, "smtp", RELAYHOST,
         "x@sub.example.org"},
        /* The full address, also without its extension. */
        {"special@example.net", 0, RESOLVE_CLASS_DEFAULT, 0, "lmtp", "unix:/run/lmtp",
         "special@example.net"},
        {"special+list@example.net", 0, RESOLVE_CLASS_DEFAULT, 0, "lmtp", "unix:/run/lmtp",
         "special+list@example.net"},
        {"other@example.net", 0, RESOLVE_CLASS_DEFAULT, 0, "smtp", RELAYHOST,
         "other@example.net"},
        /* error: and discard: */
        {"x@err.example", 0, RESOLVE_CLASS_DEFAULT, RESOLVE_FLAG_ERROR_TRANSPORT, "error", "nope",
         "x@err.example"},
        {"x@junk.example", 0, RESOLVE_CLASS_DEFAULT, RESOLVE_FLAG_DISCARD, "discard", "gone",
         "x@junk.example"},
        /* ":nexthop" keeps the transport; the same transport with no next hop and ":"
         * keep everything. */
        {"x@override.example", 0, RESOLVE_CLASS_DEFAULT, 0, "smtp", "[192.0.2.7]",
         "x@override.example"},
        {"x@same.example", 0, RESOLVE_CLASS_DEFAULT, 0, "smtp", RELAYHOST, "x@same.example"},
        {"x@colon.example", 0, RESOLVE_CLASS_DEFAULT, 0, "smtp", RELAYHOST, "x@colon.example"},
    };
    static const struct resolve_case star[] = {
        {"x@elsewhere.example", 0, RESOLVE_CLASS_DEFAULT, 0, "smtp", "[fallback.example]",
         "x@elsewhere.example"},
        /* More specific keys still win over "*". */
        {"x@example.org", 0, RESOLVE_CLASS_DEFAULT, 0, "smtp", "[10.0.0.1]", "x@example.org"},
        /* "*" routes local mail too, as in Postfix. */
        {"u@mx.example.com", 0, RESOLVE_CLASS_LOCAL, 0, "smtp", "[fallback.example]",
         "u@mx.example.com"},
    };
    static const struct resolve_case failing[] = {
        {"x@elsewhere.example", -1, RESOLVE_CLASS_DEFAULT, RESOLVE_FLAG_FAIL, NULL, NULL, NULL},
        {"x@mx.example.com", -1, RESOLVE_CLASS_DEFAULT, RESOLVE_FLAG_FAIL, NULL, NULL, NULL},
    };

    (void) state;
    run_resolve(cases, N(cases));
    knob_star = "smtp:[fallback.example]";
    run_resolve(star, N(star));
    knob_star = NULL;
    knob_fail = 1;
    run_resolve(failing, N(failing));
    knob_fail = 0;
}

static void test_routing_and_errors(void **state)
{
    static const struct resolve_case cases[] = {
        {"user%other.example@mx.example.com", 0, RESOLVE_CLASS_DEFAULT, ROUTED, "smtp",
         RELAYHOST, "user@other.example"},
        {"user@other.example@mx.example.com", 0, RESOLVE_CLASS_DEFAULT, ROUTED, "smtp",
         RELAYHOST, "user@other.example"},
        {"user%vmail.example@example.com", 0, RESOLVE_CLASS_VIRTUAL, ROUTED, "virtual",
         "mx.example.com", "user@vmail.example"},
        {"user%localhost@example.com", 0, RESOLVE_CLASS_LOCAL, ROUTED, "local", "mx.example.com",
         "user@localhost"},
        {"a!b@relay.example", 0, RESOLVE_CLASS_RELAY, ROUTED, "relay", RELAYHOST,
         "a!b@relay.example"},
        {"a%b@example.org", 0, RESOLVE_CLASS_DEFAULT, ROUTED, "smtp", "[10.0.0.1]",
         "a%b@example.org"},
        {"x@bad..domain", -1, RESOLVE_CLASS_DEFAULT, RESOLVE_FLAG_ERROR, NULL, NULL, NULL},
        {"x@.bad", -1, RESOLVE_CLASS_DEFAULT, RESOLVE_FLAG_ERROR, NULL, NULL, NULL},
        {"x@bad domain", -1, RESOLVE_CLASS_DEFAULT, RESOLVE_FLAG_ERROR, NULL, NULL, NULL},
        {"x@[300.1.1.1]", -1, RESOLVE_CLASS_DEFAULT, RESOLVE_FLAG_ERROR, NULL, NULL, NULL},
        /* Only the last domain counts when it is not ours. */
        {"a@b@c@mx.example.com", 0, RESOLVE_CLASS_DEFAULT, ROUTED, "smtp", RELAYHOST, "a@b@c"},
        /* Routing through our own domains stops after a bounded number of rounds. */
        {"u@localhost@localhost@localhost@localhost@localhost@localhost@localhost"
         "@localhost@localhost@localhost@localhost", -1, RESOLVE_CLASS_DEFAULT,
         RESOLVE_FLAG_ERROR | ROUTED, NULL, NULL, NULL},
    };
    struct resolve_reply r;
    char big[5000];

    (void) state;
    run_resolve(cases, N(cases));
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    resolve_reply_init(&r);
    assert_int_equal(resolve_addr(big, &r), -1);
    assert_true(r.flags & RESOLVE_FLAG_ERROR);
    resolve_reply_free(&r);
}

static void test_rewrite(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"user", "user@example.com"},
        {"user@host", "user@host.example.com"},
        {"user@host.example.net", "user@host.example.net"},
        {"user@[192.0.2.1]", "user@[192.0.2.1]"},
        {"user@example.com.", "user@example.com"},
        {"host!user", "user@host.example.com"},
        {"a.example!b!user", "b!user@a.example"},
        {"!user", "!user@example.com"},
        {"user%other.org", "user@other.org"},
        {"user%other.org@mx.example.com", "user@other.org"},
        {"user%other.org@remote.org", "user%other.org@remote.org"},
        {"", ""},
    };
    struct strbuf out;
    size_t i;

    (void) state;
    strbuf_init(&out, 64, STRBUF_UNLIMITED);
    for (i = 0; i < N(cases); i++) {
        resolve_rewrite(cases[i].in, &out);
        if (strcmp(out.data, cases[i].want) != 0)
            fail_msg("rewrite \"%s\": got \"%s\", want \"%s\"", cases[i].in, out.data,
                     cases[i].want);
    }
    strbuf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_transport_maps),
        cmocka_unit_test(test_routing_and_errors),
        cmocka_unit_test(test_rewrite),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
