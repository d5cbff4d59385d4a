/*
 * mastercf.h - master.cf parsing: Postfix's eight columns plus -o overrides.
 * The parser is shared by master and "petrel check"; it never exits. Errors are
 * returned as "FILE:LINE: message" in err.
 */
#ifndef PETREL_MASTERCF_H
#define PETREL_MASTERCF_H

#include <stddef.h>

#include "strbuf.h"

enum master_type { MASTER_INET, MASTER_UNIX, MASTER_FIFO, MASTER_PASS };

struct master_override {
    char *name;
    char *value;
};

struct master_service {
    char *name;                 /* column 1: "smtp", "127.0.0.1:2525", "cleanup" */
    enum master_type type;      /* column 2 */
    int private_;               /* column 3, "-" = y (n for inet) */
    int unpriv;                 /* column 4, "-" = y */
    int chroot;                 /* column 5, "-" = n */
    int wakeup;                 /* column 6 seconds, 0 = never; "-" = 0 */
    int wakeup_if_used;         /* "60?" form */
    int maxproc;                /* column 7, "-" = default_process_limit; 0 = unlimited */
    int maxproc_default;        /* 1 when column 7 was "-" */
    char *command;              /* column 8: program name in daemon_directory */
    char **argv;                /* command and its arguments, NULL-terminated, -o removed */
    size_t argc;
    struct master_override *overrides;  /* the -o name=value pairs, in order */
    size_t noverrides;
    char *file;
    int line;
};

struct mastercf {
    struct master_service *services;
    size_t count;
};

#define MASTERCF_MAX_SIZE     (1024 * 1024)     /* bytes in one master.cf */
#define MASTERCF_MAX_SERVICES 1000
#define MASTERCF_MAX_ARGS     256               /* arguments of one service */

/* Parses path; returns 0, or -1 with one line per error appended to err (err may
 * be NULL). cf is overwritten: the services that parsed cleanly are kept even on
 * error, and the caller always calls mastercf_free(). */
int mastercf_parse(const char *path, struct mastercf *cf, struct strbuf *err);
/* Parses text already in memory (for tests and fuzzing); name is used in messages. */
int mastercf_parse_text(const char *name, const char *text, size_t len,
                        struct mastercf *cf, struct strbuf *err);
void mastercf_free(struct mastercf *cf);
/* Finds a service by name and type; NULL if absent. */
const struct master_service *mastercf_find(const struct mastercf *cf, const char *name,
                                           enum master_type type);

#endif
