/*
 * petrel.c - the petrel command: dispatches "petrel [-c dir] SUBCOMMAND ...".
 * Only parses the global options and picks the subcommand; each subcommand
 * lives in its own file. Unknown subcommands exit 64 (EX_USAGE).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "msg.h"
#include "petrel.h"

static const struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} subcommands[] = {
    {"start", petrel_control_main, "start the mail system in the background"},
    {"start-fg", petrel_control_main, "run the master in the foreground"},
    {"stop", petrel_control_main, "finish in-flight work and stop"},
    {"abort", petrel_control_main, "stop at once"},
    {"reload", petrel_control_main, "reread the configuration"},
    {"status", petrel_control_main, "exit 0 when the mail system runs"},
    {"flush", petrel_control_main, "retry all deferred mail now"},
    {"check", petrel_check_main, "validate the whole configuration"},
    {"conf", petrel_conf_main, "print or edit parameters (-n, -d, -e NAME=VALUE)"},
    {"map", petrel_map_main, "build, query or delete in a lookup table"},
    {"queue", petrel_queue_main, "list, show, delete, hold, release, requeue, bounce, shape"},
    {"stats", petrel_stats_main, "message and delivery counters (--json, --prometheus)"},
    {NULL, NULL, NULL},
};

static void usage(FILE *fp)
{
    const struct subcommand *sc;

    fprintf(fp, "usage: petrel [-c config_dir] [-v] COMMAND [ARGS...]\n\ncommands:\n");
    for (sc = subcommands; sc->name; sc++)
        fprintf(fp, "  %-10s %s\n", sc->name, sc->usage);
}

int main(int argc, char **argv)
{
    const struct subcommand *sc;
    int ch;

    msg_init("petrel");
    while ((ch = getopt(argc, argv, "+c:hv")) != -1) {
        switch (ch) {
        case 'c':
            config_set_dir(optarg);
            break;
        case 'v':
            msg_verbose++;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EX_USAGE;
    }
    for (sc = subcommands; sc->name; sc++) {
        if (strcmp(sc->name, argv[optind]) == 0) {
            char **sub_argv = argv + optind;
            int sub_argc = argc - optind;

            optind = 1;             /* the subcommand parses its own options */
            return sc->run(sub_argc, sub_argv);
        }
    }
    fprintf(stderr, "petrel: unknown command \"%s\"\n", argv[optind]);
    usage(stderr);
    return EX_USAGE;
}
