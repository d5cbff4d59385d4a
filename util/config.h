/*
 * config.h - the parameter registry and the loading of main.cf.
 * There is exactly one table of parameters (params.c): name, type, default,
 * limits, the var_ variable it fills and a doc line. Every program, "petrel conf",
 * "petrel check", the did-you-mean hint and the main.cf(5) page read that table;
 * nothing else parses a parameter value.
 * Errors in main.cf are the administrator's: config_load() reports them as
 * "FILE:LINE: message" and exits through msg_fatal. Library users that must not
 * exit (petrel check) call config_check() instead.
 */
#ifndef PETREL_CONFIG_H
#define PETREL_CONFIG_H

#include <stddef.h>

#include "strbuf.h"

enum param_type {
    PARAM_STR,                  /* string, $name expanded */
    PARAM_RAW,                  /* string kept verbatim (expanded at use) */
    PARAM_INT,                  /* integer (long long) within [min, max] */
    PARAM_BOOL,                 /* yes / no */
    PARAM_TIME,                 /* duration with s/m/h/d/w suffix; stored in seconds */
};

struct param_def {
    const char *name;           /* "*_suffix" matches SERVICE_suffix for a master.cf service */
    enum param_type type;
    const char *defval;         /* NULL: computed (see params.c) */
    long long min, max;         /* INT and TIME bounds; max 0 means no upper bound */
    void *var;                  /* char **, long long *, int *; NULL for pattern entries */
    const char *doc;            /* one line for main.cf(5) and "petrel conf -h" */
};

/* The registry, terminated by an entry with name == NULL. */
extern const struct param_def param_table[];

/* Chooses the configuration directory: -c, else $PETREL_CONFIG_DIR, else the built-in. */
void config_set_dir(const char *dir);
const char *config_dir(void);

/* Adds a "-o name=value" override; applied on top of main.cf by config_load. */
void config_add_override(const char *name, const char *value);

/* Reads main.cf (a missing file means all defaults) and fills every var_ variable. */
void config_load(void);

/* Validates main.cf (and master.cf) without exiting: appends one "FILE:LINE: message"
 * line per problem to report and returns the number of errors. Warnings (undefined
 * $name, a setting repeated) are lines "FILE:LINE: warning: message", not counted.
 * Then runs every check registered with config_add_check(). */
int config_check(struct strbuf *report);

/* The effective (expanded) value of any parameter, known or user-defined; NULL if unset. */
const char *config_lookup(const char *name);
/* A per-service parameter such as "smtp_destination_concurrency_limit", falling back
 * to the pattern's default ("$default_destination_concurrency_limit"). */
const char *config_lookup_service(const char *service, const char *suffix);
long long config_lookup_service_int(const char *service, const char *suffix);

/* Like config_load() but never exits: appends "FILE:LINE: message" lines to report
 * and returns the number of errors; the var_ variables keep defaults where a value
 * was bad. For "petrel conf", which must work on a broken main.cf. */
int config_try_load(struct strbuf *report);

/* The main.cf or -o value of name before $name expansion, else its default
 * (computed ones included); NULL for unknown names. Valid until the next load. */
const char *config_lookup_raw(const char *name);
/* 1 when name is set in main.cf or by -o. */
int config_is_set(const char *name);

/* Expands $name, ${name}, $(name), ${name?text}, ${name:text} and $$ in text using
 * the loaded configuration. Returns 0, or -1 with a reason in err (loops, depth,
 * length). Undefined names expand to nothing. */
int config_expand(const char *text, struct strbuf *out, struct strbuf *err);

/* Checks a value (already expanded) against a parameter's type and limits; for
 * INT, TIME and BOOL stores the number in *num (may be NULL). Returns 0, or -1
 * with a one-line reason ("bad numerical value ...") in why. */
int config_check_value(const struct param_def *p, const char *value, long long *num,
                       struct strbuf *why);

/* 1 when name may appear in main.cf: a registry name, SERVICE_suffix for a
 * master.cf service and a pattern entry, or a name that another value uses as $name. */
int config_name_allowed(const char *name);
/* The pattern entry ("*_suffix") that name is an instance of, or NULL. */
const struct param_def *param_find_pattern(const char *name);

/* Registers an extra check for "petrel check" (lookup tables, directories, certificates).
 * fn appends "FILE:LINE: message" lines and returns how many were errors. */
void config_add_check(int (*fn)(struct strbuf *report));

/* Where a parameter's value comes from, for messages: "-o NAME", "FILE:LINE", or
 * the main.cf path when the built-in default is in force. */
void config_location(const char *name, struct strbuf *where);

/* Registers the checks of tables, certificates and directories that "petrel check"
 * and "petrel start" run in addition to the syntax checks (config_checks.c). */
void config_checks_register(void);

/* Finds a registry entry by exact name (patterns excluded); NULL if none. */
const struct param_def *param_find(const char *name);
/* The closest registry name for a did-you-mean hint; NULL if nothing is close. */
const char *param_suggest(const char *name);

/* Parses a duration ("30s", "5m", "2d"); unit ('s', 'm', 'h', 'd' or 'w') is used
 * when no suffix is given. Returns 0, or -1 for bad syntax or overflow. */
int config_parse_time(const char *value, int unit, long long *seconds);
/* Parses yes/no/true/false/1/0 (any case). Returns 0, or -1. */
int config_parse_bool(const char *value, int *res);

#endif
