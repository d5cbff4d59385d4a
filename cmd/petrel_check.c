/*
 * petrel_check.c - "petrel check": validate the whole configuration.
 * Prints each problem as "petrel: FILE:LINE: message" on stderr (warnings as
 * "petrel: FILE:LINE: warning: message") and exits 1 when there was an error,
 * 0 otherwise. Changes nothing; the checks themselves live in config.c and in
 * the functions other parts register with config_add_check().
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "msg.h"
#include "petrel.h"
#include "strbuf.h"

int petrel_check_main(int argc, char **argv)
{
    struct strbuf report;
    const char *line, *nl;
    int errors, ch;

    msg_init("check");
    while ((ch = getopt(argc, argv, "")) != -1) {
        fprintf(stderr, "usage: petrel [-c config_dir] check\n");
        return EX_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "usage: petrel [-c config_dir] check\n");
        return EX_USAGE;
    }
    strbuf_init(&report, 1024, 16 * 1024 * 1024);
    config_checks_register();
    errors = config_check(&report);
    for (line = report.data; *line; line = nl + 1) {
        if ((nl = strchr(line, '\n')) == NULL)
            nl = line + strlen(line) - 1;
        fprintf(stderr, "petrel: %.*s\n", (int) (nl - line + (*nl != '\n')), line);
    }
    strbuf_release(&report);
    return errors > 0 ? 1 : 0;
}
