/*
 * config_checks.c - the checks "petrel check" and "petrel start" run beyond
 * syntax: every lookup table named in main.cf opens, every milter list and
 * policy service endpoint parses as smtpd would parse it, every TLS
 * certificate and key loads (and the key matches), the mail system's users
 * exist, and existing queue directories have the owners master gives them.
 * Never changes anything; never exits. Each problem is one "WHERE: message"
 * line in the report, WHERE being "FILE:LINE" or "-o NAME" (config_location).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "dict.h"
#include "mastercf.h"
#include "milter.h"
#include "params.h"
#include "policy_client.h"
#include "strbuf.h"
#include "tls.h"

/* Parameters holding lookup tables besides the *_maps and *_checks ones. */
static const char *const checks_table_params[] = {
    "mynetworks", "mydestination", "relay_domains", "virtual_alias_domains",
    "virtual_mailbox_domains", "permit_mx_backup_networks", "smtpd_untrusted_strip_headers",
    "smtpd_sasl_exceptions_networks",
    "smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_sender_restrictions",
    "smtpd_relay_restrictions", "smtpd_recipient_restrictions", "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions", "smtpd_etrn_restrictions", NULL,
};

/* Words in restriction lists whose argument is an endpoint, not a table. */
static const char *const checks_endpoint_words[] = {
    "check_policy_service", NULL,
};

static int checks_word_in(const char *word, size_t len, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == len && strncmp(*list, word, len) == 0)
            return 1;
    return 0;
}

static int checks_ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);

    return n >= s && strcmp(name + n - s, suffix) == 0;
}

static int checks_is_table_param(const char *name)
{
    return checks_ends_with(name, "_maps") || checks_ends_with(name, "_checks")
        || checks_word_in(name, strlen(name), checks_table_params);
}

/* While master.cf overrides are checked: "FILE:LINE: service NAME" for the report. */
static const char *checks_override_where;

static void checks_report(struct strbuf *report, const char *name, const char *fmt,
                          const char *arg, const char *detail)
{
    struct strbuf where;

    strbuf_init(&where, 64, 4096);
    if (checks_override_where)
        strbuf_puts(&where, checks_override_where);
    else
        config_location(name, &where);
    /* A "warning: " format is reported as a warning: "WHERE: warning: parameter ...". */
    if (strncmp(fmt, "warning: ", 9) == 0) {
        strbuf_printf(report, "%s: warning: parameter %s: ", where.data, name);
        fmt += 9;
    } else {
        strbuf_printf(report, "%s: parameter %s: ", where.data, name);
    }
    strbuf_printf(report, fmt, arg);
    if (detail && *detail)
        strbuf_printf(report, ": %s", detail);
    strbuf_putc(report, '\n');
    strbuf_release(&where);
}

/* Length of the next list token: "type:{ ... }" kept whole, else up to a separator. */
static size_t checks_token_len(const char *s)
{
    size_t n = 0;
    int depth = 0;

    for (; s[n]; n++) {
        if (s[n] == '{')
            depth++;
        else if (s[n] == '}' && depth > 0)
            depth--;
        else if (depth == 0 && (s[n] == ',' || s[n] == ' ' || s[n] == '\t'))
            break;
    }
    return n;
}

/* A Berkeley DB table whose FILE.db does not exist (yet). */
static int checks_db_unbuilt(const char *type, const char *file)
{
    struct strbuf db;
    struct stat st;
    int missing;

    if (strcmp(type, "hash") != 0 && strcmp(type, "btree") != 0)
        return 0;
    strbuf_init(&db, 256, 64 * 1024);
    strbuf_printf(&db, "%s.db", file);
    missing = stat(db.data, &st) < 0 && errno == ENOENT;
    strbuf_release(&db);
    return missing;
}

/* Opens one "type:name" reference the way a daemon would; 1 on error. */
static int checks_open_table(struct strbuf *report, const char *name, const char *spec,
                             size_t typelen)
{
    char type[32];
    struct strbuf err, types;
    struct dict *d;
    int bad = 0;

    if (typelen >= sizeof(type))
        typelen = sizeof(type) - 1;
    memcpy(type, spec, typelen);
    type[typelen] = '\0';
    strbuf_init(&err, 256, 64 * 1024);
    if (!dict_type_known(type)) {
        strbuf_init(&types, 256, 64 * 1024);
        dict_type_names(&types);
        strbuf_printf(&err, "supported types are %s", types.data);
        checks_report(report, name, "unsupported dictionary type \"%s\"", type, err.data);
        strbuf_release(&types);
        bad = 1;
    } else if (checks_db_unbuilt(type, spec + typelen + 1)) {
        /* Mail still flows (lookups defer) and newaliases or "petrel map build"
         * fixes it, so this must not stop a fresh installation from starting. */
        checks_report(report, name, "warning: table %s is not built yet", spec,
                      "run \"petrel map build\" (or newaliases) on its source file");
    } else if ((d = dict_open(spec, DICT_FLAG_FOLD_KEY, &err)) == NULL) {
        checks_report(report, name, "cannot open table %s", spec, err.data);
        bad = 1;
    } else {
        dict_close(&d);
    }
    strbuf_release(&err);
    return bad;
}

/* A check_policy_service argument, parsed as smtpd parses it (no connection:
 * the policy server may start after the mail system). */
static int checks_policy_endpoint(struct strbuf *report, const char *name, const char *spec)
{
    struct strbuf err;
    struct policy_client *pc;

    strbuf_init(&err, 256, 64 * 1024);
    if ((pc = policy_client_open(spec, &err)) == NULL) {
        checks_report(report, name, "check_policy_service %s", spec, err.data);
        strbuf_release(&err);
        return 1;
    }
    policy_client_free(&pc);
    strbuf_release(&err);
    return 0;
}

/* Every "type:rest" token of a table-list value; a token after a word that
 * names an endpoint (check_policy_service inet:host:port) is checked as one. */
static int checks_one_param(struct strbuf *report, const char *name, const char *value)
{
    struct strbuf spec;
    const char *p = value, *prev = "";
    size_t prevlen = 0, len, typelen;
    int errors = 0;

    strbuf_init(&spec, 256, 64 * 1024);
    for (;; p += len) {
        p += strspn(p, ", \t");
        if ((len = checks_token_len(p)) == 0)
            break;
        typelen = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        if (checks_word_in(prev, prevlen, checks_endpoint_words)) {
            strbuf_reset(&spec);
            if (strbuf_append(&spec, p, len) == 0)
                errors += checks_policy_endpoint(report, name, spec.data);
        } else if (typelen > 0 && typelen < len && p[typelen] == ':') {
            strbuf_reset(&spec);
            if (strbuf_append(&spec, p, len) == 0)
                errors += checks_open_table(report, name, spec.data, typelen);
        }
        prev = p;
        prevlen = len;
    }
    strbuf_release(&spec);
    return errors;
}

/* Only tables the administrator named are opened: a built-in default such as
 * alias_maps = hash:/etc/aliases may legitimately not be built yet. */
static int checks_tables(struct strbuf *report)
{
    const struct param_def *p;
    const char *value;
    int errors = 0;

    for (p = param_table; p->name; p++) {
        if (p->name[0] == '*' || !checks_is_table_param(p->name) || !config_is_set(p->name))
            continue;
        if ((value = config_lookup(p->name)) != NULL)
            errors += checks_one_param(report, p->name, value);
    }
    return errors;
}

/* Restriction classes are main.cf settings named in smtpd_restriction_classes. */
static int checks_restriction_classes(struct strbuf *report)
{
    const char *list = config_lookup("smtpd_restriction_classes"), *value;
    char cls[256];
    int errors = 0;

    while (list && *list) {
        size_t n;

        list += strspn(list, ", \t\r\n");
        if ((n = strcspn(list, ", \t\r\n")) == 0)
            break;
        if (n < sizeof(cls)) {
            memcpy(cls, list, n);
            cls[n] = 0;
            if (!checks_is_table_param(cls) && (value = config_lookup(cls)) != NULL)
                errors += checks_one_param(report, cls, value);
        }
        list += n;
    }
    return errors;
}

static int checks_milter_list(struct strbuf *report, const char *name, const char *value)
{
    struct strbuf why;
    struct milters *ms;
    int errors = 0;

    if (value == NULL || value[strspn(value, ", \t\r\n")] == 0)
        return 0;
    strbuf_init(&why, 256, 64 * 1024);
    if ((ms = milters_create(value, &why)) == NULL) {
        checks_report(report, name, "bad milter list \"%s\"", value, why.data);
        errors++;
    }
    milters_free(&ms);
    strbuf_release(&why);
    return errors;
}

/* The milter settings smtpd and cleanup would refuse at start-up. */
static int checks_milters(struct strbuf *report)
{
    static const char *const lists[] = {"smtpd_milters", "non_smtpd_milters", NULL};
    const char *const *name;
    struct strbuf why;
    int errors = 0, defaults_ok;

    strbuf_init(&why, 256, 64 * 1024);
    if (!milter_default_action_valid(var_milter_default_action)) {
        checks_report(report, "milter_default_action", "bad value \"%s\"",
                      var_milter_default_action, "expected accept, reject, tempfail, "
                      "quarantine or shutdown");
        errors++;
    }
    if (var_milter_protocol[0] < '2' || var_milter_protocol[0] > '6' || var_milter_protocol[1]) {
        checks_report(report, "milter_protocol", "bad value \"%s\"", var_milter_protocol,
                      "expected 2 to 6");
        errors++;
    }
    if (!(defaults_ok = milter_macro_defaults_valid(var_milter_macro_defaults, &why))) {
        checks_report(report, "milter_macro_defaults", "%s", why.data, NULL);
        errors++;
    }
    /* The lists are parsed with the defaults, which must parse first. */
    for (name = lists; defaults_ok && *name; name++)
        errors += checks_milter_list(report, *name, config_lookup(*name));
    strbuf_release(&why);
    return errors;
}

/* The -o overrides in master.cf that smtpd or cleanup would refuse at start-up. */
static int checks_master_overrides(struct strbuf *report)
{
    struct mastercf cf;
    struct strbuf err, where, expanded;
    struct strbuf path;
    size_t i, j;
    int errors = 0;

    memset(&cf, 0, sizeof(cf));
    strbuf_init(&path, 256, 64 * 1024);
    strbuf_printf(&path, "%s/master.cf", config_dir());
    strbuf_init(&err, 256, 1024 * 1024);
    strbuf_init(&where, 256, 4096);
    strbuf_init(&expanded, 256, 1024 * 1024);
    /* Syntax errors are config_check's own report; the services that did
     * parse are still checked. */
    (void) mastercf_parse(path.data, &cf, &err);
    for (i = 0; i < cf.count; i++) {
        const struct master_service *sv = &cf.services[i];

        for (j = 0; j < sv->noverrides; j++) {
            const struct master_override *o = &sv->overrides[j];

            strbuf_reset(&expanded);
            strbuf_reset(&err);
            if (config_expand(o->value, &expanded, &err) < 0)
                continue;                       /* reported by config_check */
            strbuf_reset(&where);
            strbuf_printf(&where, "%s:%d: service %s", sv->file, sv->line, sv->name);
            checks_override_where = where.data;
            if (strcmp(o->name, "smtpd_milters") == 0 || strcmp(o->name, "non_smtpd_milters") == 0)
                errors += checks_milter_list(report, o->name, expanded.data);
            else if (checks_is_table_param(o->name))
                errors += checks_one_param(report, o->name, expanded.data);
            checks_override_where = NULL;
        }
    }
    mastercf_free(&cf);
    strbuf_release(&err);
    strbuf_release(&where);
    strbuf_release(&expanded);
    strbuf_release(&path);
    return errors;
}

static int checks_pem_file(struct strbuf *report, const char *name, int want_key,
                           X509 **certp, EVP_PKEY **keyp)
{
    const char *path = config_lookup(name);
    FILE *fp;
    int bad = 0;

    if (path == NULL || *path == '\0')
        return 0;
    if ((fp = fopen(path, "r")) == NULL) {
        checks_report(report, name, "cannot open %s", path, strerror(errno));
        return 1;
    }
    if (want_key) {
        if ((*keyp = PEM_read_PrivateKey(fp, NULL, NULL, NULL)) == NULL)
            bad = 1;
    } else if ((*certp = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
        bad = 1;
    }
    fclose(fp);
    if (bad) {
        checks_report(report, name, want_key ? "%s holds no usable PEM private key"
                      : "%s holds no usable PEM certificate", path,
                      ERR_reason_error_string(ERR_peek_last_error()));
        ERR_clear_error();
    }
    return bad;
}

/* A certificate/key pair: both load, and the key belongs to the certificate. */
static int checks_cert_pair(struct strbuf *report, const char *cert_param,
                            const char *key_param)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int errors;

    errors = checks_pem_file(report, cert_param, 0, &cert, NULL);
    errors += checks_pem_file(report, key_param, 1, NULL, &key);
    if (cert && key && X509_check_private_key(cert, key) != 1) {
        checks_report(report, key_param, "private key %s does not match the certificate",
                      config_lookup(key_param), config_lookup(cert_param));
        errors++;
        ERR_clear_error();
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return errors;
}

static int checks_word_listed(const char *value, const char *const *words)
{
    for (; *words; words++)
        if (strcasecmp(value, *words) == 0)
            return 1;
    return 0;
}

/* TLS levels, protocols and cipher grades the servers and clients would refuse. */
static int checks_tls_settings(struct strbuf *report)
{
    static const char *const server_levels[] = {"", "none", "may", "encrypt", "fingerprint",
                                                "verify", "secure", "dane", "dane-only", NULL};
    static const char *const client_levels[] = {"", "none", "may", "dane", "encrypt",
                                                "dane-only", "verify", "secure", NULL};
    static const char *const grades[] = {"high", "medium", "low", "export", "null", NULL};
    static const char *const level_params[] = {"smtpd_tls_security_level",
                                               "smtp_tls_security_level",
                                               "lmtp_tls_security_level", NULL};
    static const char *const protocol_params[] = {"smtpd_tls_protocols",
                                                  "smtpd_tls_mandatory_protocols",
                                                  "smtp_tls_protocols",
                                                  "smtp_tls_mandatory_protocols", NULL};
    static const char *const grade_params[] = {"smtpd_tls_ciphers", "smtpd_tls_mandatory_ciphers",
                                               "smtp_tls_ciphers", "smtp_tls_mandatory_ciphers",
                                               NULL};
    const char *const *name;
    struct strbuf why;
    int errors = 0, minv, maxv;

    strbuf_init(&why, 256, 4096);
    for (name = level_params; *name; name++) {
        const char *v = config_lookup(*name);

        if (v && !checks_word_listed(v, name == level_params ? server_levels : client_levels)) {
            checks_report(report, *name, "unknown TLS security level \"%s\"", v,
                          name == level_params ? "expected none, may or encrypt"
                          : "expected none, may, encrypt, verify or secure");
            errors++;
        }
    }
    for (name = protocol_params; *name; name++) {
        const char *v = config_lookup(*name);

        strbuf_reset(&why);
        if (v && tls_protocols_parse(v, &minv, &maxv, &why) < 0) {
            checks_report(report, *name, "bad value \"%s\"", v, why.data);
            errors++;
        }
    }
    for (name = grade_params; *name; name++) {
        const char *v = config_lookup(*name);

        if (v && *v && !checks_word_listed(v, grades)) {
            checks_report(report, *name, "unknown cipher grade \"%s\"", v,
                          "expected high, medium, low, export or null");
            errors++;
        }
    }
    strbuf_release(&why);
    return errors;
}

static int checks_certificates(struct strbuf *report)
{
    X509 *ca = NULL;
    int errors;

    errors = checks_cert_pair(report, "smtpd_tls_cert_file", "smtpd_tls_key_file");
    errors += checks_cert_pair(report, "smtp_tls_cert_file", "smtp_tls_key_file");
    errors += checks_pem_file(report, "smtpd_tls_CAfile", 0, &ca, NULL);
    X509_free(ca);
    ca = NULL;
    errors += checks_pem_file(report, "smtp_tls_CAfile", 0, &ca, NULL);
    X509_free(ca);
    return errors;
}

/* Queue subdirectories master creates for mail_owner (see docs/master.md). */
static const char *const checks_owned_dirs[] = {
    "incoming", "active", "deferred", "hold", "corrupt", "bounce", "defer", "trace",
    "maildrop", "private", "public", NULL,
};

/* As root: the users exist, mail_owner is not root, and existing queue
 * directories belong to mail_owner. Unprivileged mode owns everything itself. */
static int checks_directories(struct strbuf *report)
{
    const char *const *dir;
    struct passwd *owner;
    struct stat st;
    struct strbuf path, detail;
    int errors = 0;

    if (geteuid() != 0)
        return 0;
    if ((owner = getpwnam(var_mail_owner)) == NULL) {
        checks_report(report, "mail_owner", "user \"%s\" does not exist", var_mail_owner,
                      "create it or run make install as root");
        return 1;
    }
    if (owner->pw_uid == 0) {
        checks_report(report, "mail_owner", "\"%s\" has uid 0; mail_owner must be an "
                      "unprivileged user", var_mail_owner, NULL);
        errors++;
    }
    if (getgrnam(var_setgid_group) == NULL) {
        checks_report(report, "setgid_group", "group \"%s\" does not exist",
                      var_setgid_group, "create it or run make install as root");
        errors++;
    }
    strbuf_init(&path, 256, 64 * 1024);
    strbuf_init(&detail, 256, 64 * 1024);
    for (dir = checks_owned_dirs; *dir; dir++) {
        strbuf_reset(&path);
        strbuf_printf(&path, "%s/%s", var_queue_directory, *dir);
        if (stat(path.data, &st) < 0)
            continue;                   /* master creates what is missing */
        if (st.st_uid != owner->pw_uid) {
            strbuf_reset(&detail);
            strbuf_printf(&detail, "owned by uid %ld, expected %s (uid %ld)",
                          (long) st.st_uid, var_mail_owner, (long) owner->pw_uid);
            checks_report(report, "queue_directory", "%s", path.data, detail.data);
            errors++;
        }
    }
    strbuf_release(&path);
    strbuf_release(&detail);
    return errors;
}

void config_checks_register(void)
{
    static int done;

    if (done++)
        return;
    config_add_check(checks_tables);
    config_add_check(checks_restriction_classes);
    config_add_check(checks_milters);
    config_add_check(checks_master_overrides);
    config_add_check(checks_certificates);
    config_add_check(checks_tls_settings);
    config_add_check(checks_directories);
}
