/*
 * petrel_conf.c - "petrel conf": print or edit main.cf parameters (postconf's job).
 *   petrel conf [-n | -d] [-x] [-h] [NAME ...]   print name = value, sorted by name
 *   petrel conf -e NAME=VALUE ...                 set, keeping comments and order
 *   petrel conf -X NAME ...                       remove
 *   petrel conf -l                                the registry: name, type, default, doc
 * Values print as written (unexpanded) unless -x. Unknown names are refused with
 * a did-you-mean hint and exit status 1. Edits replace main.cf atomically
 * (temporary file, fsync, rename); a failed edit leaves the old file in place.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "maincf.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "petrel.h"

#define CONF_SET      (1 << 0)  /* -n */
#define CONF_DEFAULT  (1 << 1)  /* -d */
#define CONF_EXPAND   (1 << 2)  /* -x */
#define CONF_VALUES   (1 << 3)  /* -h */

static void conf_usage(void)
{
    fprintf(stderr, "usage: petrel conf [-n | -d] [-x] [-h] [NAME ...]\n"
            "       petrel conf -e NAME=VALUE ...\n"
            "       petrel conf -X NAME ...\n"
            "       petrel conf -l\n");
}

static char *conf_main_path(void)
{
    size_t len = strlen(config_dir()) + sizeof("/main.cf");
    char *path = xmalloc(len);

    snprintf(path, len, "%s/main.cf", config_dir());
    return path;
}

static void conf_warn_unknown(const char *name)
{
    const char *hint = param_suggest(name);

    if (hint)
        msg_warn("%s: unknown parameter; did you mean \"%s\"?", name, hint);
    else
        msg_warn("%s: unknown parameter", name);
}

static const char *conf_default(const char *name, char **computed)
{
    const struct param_def *p = param_find(name);

    if (p == NULL)
        p = param_find_pattern(name);
    if (p == NULL)
        return NULL;
    if (p->defval)
        return p->defval;
    *computed = params_computed_default(name, NULL);
    return *computed;
}

/* Prints one parameter; returns -1 when it is unknown. */
static int conf_print(const char *name, int flags)
{
    char *computed = NULL;
    const char *value;

    if ((flags & CONF_SET) && !config_is_set(name))
        return 0;
    if (flags & CONF_DEFAULT)
        value = conf_default(name, &computed);
    else if (flags & CONF_EXPAND)
        value = config_lookup(name);
    else
        value = config_lookup_raw(name);
    if (value == NULL && !(flags & CONF_DEFAULT) && config_is_set(name))
        value = "";
    if (value == NULL)
        return -1;
    if (flags & CONF_VALUES)
        printf("%s\n", value);
    else
        printf("%s =%s%s\n", name, *value ? " " : "", value);
    free(computed);
    return 0;
}

static int conf_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Every name set in main.cf (known or not), sorted and unique. */
static int conf_print_set(int flags)
{
    char *path = conf_main_path();
    struct maincf *cf = maincf_read(path, NULL, NULL);
    const char **names;
    size_t i, n, k = 0;

    if (cf == NULL)
        msg_fatal("%s: cannot read: %m", path);
    n = maincf_count(cf);
    names = xcalloc(n + 1, sizeof(*names));
    for (i = 0; i < n; i++)
        names[k++] = maincf_get(cf, i)->name;
    qsort(names, k, sizeof(*names), conf_cmp);
    for (i = 0; i < k; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
            conf_print(names[i], flags);
    free(names);
    maincf_free(&cf);
    free(path);
    return 0;
}

static int conf_show(int argc, char **argv, int flags)
{
    struct strbuf report;
    int i, status = 0;

    strbuf_init(&report, 256, 1024 * 1024);
    if (config_try_load(&report) > 0 && !(flags & CONF_DEFAULT)) {
        char *line = report.data, *nl;

        for (; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
            *nl = '\0';
            msg_warn("%s", line);
        }
    }
    strbuf_release(&report);
    if (argc == 0 && (flags & CONF_SET))
        return conf_print_set(flags);
    if (argc == 0) {
        for (i = 0; param_table[i].name && param_table[i].name[0] != '*'; i++)
            conf_print(param_table[i].name, flags);
        return 0;
    }
    for (i = 0; i < argc; i++) {
        if (conf_print(argv[i], flags) < 0) {
            conf_warn_unknown(argv[i]);
            status = 1;
        }
    }
    return status;
}

static int conf_list(void)
{
    static const char *const types[] = {"string", "raw", "integer", "boolean", "time"};
    const struct param_def *p;

    for (p = param_table; p->name; p++)
        printf("%s\t%s\t%s\t%s\n", p->name, types[p->type], p->defval ? p->defval : "(computed)",
               p->doc);
    return 0;
}

/* 1 when another NAME=VALUE of the same command uses name as $name. */
static int conf_used_by(const char *name, int argc, char **argv)
{
    size_t len = strlen(name);
    int i;

    for (i = 0; i < argc; i++) {
        const char *s = strchr(argv[i], '=');

        while (s && (s = strchr(s, '$')) != NULL) {
            s++;
            if (*s == '{' || *s == '(')
                s++;
            if (strncmp(s, name, len) == 0 && !(s[len] == '_' || (s[len] >= '0' && s[len] <= '9')
                                                 || ((s[len] | 0x20) >= 'a' && (s[len] | 0x20) <= 'z')))
                return 1;
        }
    }
    return 0;
}

/* Refuses unknown names and literal values of the wrong type. */
static int conf_edit_ok(const char *name, const char *value, int argc, char **argv)
{
    const struct param_def *p = param_find(name);
    struct strbuf why;
    int ok = 1;

    if (p == NULL && !config_name_allowed(name) && !conf_used_by(name, argc, argv)) {
        conf_warn_unknown(name);
        return 0;
    }
    if (p == NULL)
        p = param_find_pattern(name);
    strbuf_init(&why, 64, 4096);
    if (p && strchr(value, '$') == NULL && config_check_value(p, value, NULL, &why) < 0) {
        msg_warn("%s", why.data);
        ok = 0;
    }
    strbuf_release(&why);
    return ok;
}

static int conf_edit(int argc, char **argv, int remove)
{
    char *path = conf_main_path();
    struct strbuf report;
    struct maincf *cf;
    int i, status = 0;

    strbuf_init(&report, 256, 1024 * 1024);
    config_try_load(&report);           /* for master.cf services and $name users */
    strbuf_release(&report);
    if ((cf = maincf_read(path, NULL, NULL)) == NULL)
        msg_fatal("%s: cannot read: %m", path);
    for (i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '='), *name, *value;
        size_t nlen;

        if (remove) {
            maincf_remove(cf, argv[i]);
            continue;
        }
        if (eq == NULL || eq == argv[i]) {
            msg_warn("%s: expected NAME=VALUE", argv[i]);
            status = 1;
            continue;
        }
        for (nlen = (size_t) (eq - argv[i]); nlen > 0 && (argv[i][nlen - 1] == ' ' || argv[i][nlen - 1] == '\t');)
            nlen--;
        name = xstrndup(argv[i], nlen);
        for (value = eq + 1; *value == ' ' || *value == '\t'; value++)
            ;
        if (!conf_edit_ok(name, value, argc, argv) || maincf_set(cf, name, value) < 0) {
            if (strpbrk(value, "\r\n"))
                msg_warn("%s: the value may not contain a newline", name);
            status = 1;
        }
        free(name);
    }
    if (status == 0 && maincf_write(cf, path) < 0)
        msg_fatal("%s: cannot update: %m", path);
    maincf_free(&cf);
    free(path);
    return status;
}

int petrel_conf_main(int argc, char **argv)
{
    int ch, flags = 0, edit = 0, remove = 0, list = 0;

    msg_init("conf");
    while ((ch = getopt(argc, argv, "dehlnxX")) != -1) {
        switch (ch) {
        case 'd': flags |= CONF_DEFAULT; break;
        case 'n': flags |= CONF_SET; break;
        case 'x': flags |= CONF_EXPAND; break;
        case 'h': flags |= CONF_VALUES; break;
        case 'e': edit = 1; break;
        case 'X': remove = 1; break;
        case 'l': list = 1; break;
        default:
            conf_usage();
            return EX_USAGE;
        }
    }
    argc -= optind;
    argv += optind;
    if (edit + remove + list > 1 || ((flags & CONF_SET) && (flags & CONF_DEFAULT))
        || ((edit || remove) && argc == 0)) {
        conf_usage();
        return EX_USAGE;
    }
    if (list)
        return conf_list();
    if (edit || remove)
        return conf_edit(argc, argv, remove);
    return conf_show(argc, argv, flags);
}
