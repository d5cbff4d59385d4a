/*
 * petrel_map.c - "petrel map": build, query and delete in lookup tables
 * (postmap's roles).
 *   petrel map build [-f] type:file ...        make file.db from file
 *   petrel map query [-f] KEY type:file        print the value
 *   petrel map query [-f] - type:file          keys from standard input
 *   petrel map delete [-f] KEY type:file       remove KEY from file.db
 * -f keeps the case of keys (by default they are lowercased, as postmap does).
 * Exit status: 0 success/found, 1 not found, 2 the table could not be built,
 * opened or read, 64 usage. Never exits from inside the table code: every
 * failure comes back here as a message and becomes the exit status.
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "dict.h"
#include "msg.h"
#include "petrel.h"
#include "strbuf.h"

#define MAP_FOUND       0
#define MAP_NOT_FOUND   1
#define MAP_FAILED      2

static int map_usage(void)
{
    fprintf(stderr, "usage: petrel map build [-f] type:file ...\n"
            "       petrel map query [-f] KEY|- type:file\n"
            "       petrel map delete [-f] KEY type:file\n");
    return EX_USAGE;
}

static int map_build(int argc, char **argv, int flags)
{
    struct strbuf err;
    long count;
    int i, status = 0;

    if (argc < 1)
        return map_usage();
    strbuf_init(&err, 128, STRBUF_UNLIMITED);
    for (i = 0; i < argc; i++) {
        strbuf_reset(&err);
        if ((count = dict_build(argv[i], flags, NULL, &err)) < 0) {
            msg_error("%s", err.data);
            status = MAP_FAILED;
        } else if (msg_verbose) {
            msg_info("%s: %ld entries", argv[i], count);
        }
    }
    strbuf_release(&err);
    return status;
}

/* Prints the value of one key; returns the exit status for it. */
static int map_query_one(struct dict *d, const char *key, int with_key)
{
    const char *value = dict_get(d, key);

    if (value == NULL) {
        if (dict_error(d) == DICT_ERR_NONE)
            return MAP_NOT_FOUND;
        msg_error("%s: lookup of \"%s\" failed; try again later", dict_spec(d), key);
        return MAP_FAILED;
    }
    if (with_key)
        printf("%s\t%s\n", key, value);
    else
        printf("%s\n", value);
    fflush(stdout);
    return MAP_FOUND;
}

/* "query -": one key per line; found keys are printed as "key<TAB>value". */
static int map_query_stdin(struct dict *d)
{
    struct strbuf line;
    int c, status, result = MAP_NOT_FOUND;

    strbuf_init(&line, 128, DICT_LINE_MAX);
    for (;;) {
        strbuf_reset(&line);
        while ((c = getchar()) != EOF && c != '\n') {
            if (strbuf_putc(&line, c) < 0) {
                msg_error("standard input: key longer than %d bytes", DICT_LINE_MAX);
                strbuf_release(&line);
                return MAP_FAILED;
            }
        }
        if (c == EOF && line.len == 0)
            break;
        if (line.len > 0 && line.data[line.len - 1] == '\r')
            strbuf_truncate(&line, line.len - 1);
        if ((status = map_query_one(d, line.data, 1)) == MAP_FAILED)
            result = MAP_FAILED;
        else if (status == MAP_FOUND && result == MAP_NOT_FOUND)
            result = MAP_FOUND;
    }
    strbuf_release(&line);
    return result;
}

static int map_key_op(const char *op, const char *key, const char *spec, int flags)
{
    struct strbuf err;
    struct dict *d;
    int status;

    strbuf_init(&err, 128, STRBUF_UNLIMITED);
    if (strcmp(op, "delete") == 0)
        flags |= DICT_FLAG_WRITE;
    if ((d = dict_open(spec, flags, &err)) == NULL) {
        msg_error("%s", err.data);
        strbuf_release(&err);
        return MAP_FAILED;
    }
    if (strcmp(op, "delete") == 0) {
        status = dict_delete(d, key, &err);
        if (status < 0)
            msg_error("%s", err.data);
        status = status < 0 ? MAP_FAILED : status == 0 ? MAP_FOUND : MAP_NOT_FOUND;
    } else if (strcmp(key, "-") == 0) {
        status = map_query_stdin(d);
    } else {
        status = map_query_one(d, key, 0);
    }
    dict_close(&d);
    strbuf_release(&err);
    return status;
}

int petrel_map_main(int argc, char **argv)
{
    int ch, flags = DICT_FLAG_FOLD_KEY;
    const char *op;

    msg_init("map");
    if (argc < 2)
        return map_usage();
    op = argv[1];
    argc--;
    argv++;
    optind = 1;
    while ((ch = getopt(argc, argv, "f")) != -1) {
        switch (ch) {
        case 'f':
            flags &= ~DICT_FLAG_FOLD_KEY;
            break;
        default:
            return map_usage();
        }
    }
    argc -= optind;
    argv += optind;
    if (strcmp(op, "build") == 0)
        return map_build(argc, argv, flags);
    if (strcmp(op, "query") == 0 || strcmp(op, "delete") == 0) {
        if (argc != 2)
            return map_usage();
        return map_key_op(op, argv[0], argv[1], flags);
    }
    fprintf(stderr, "petrel map: unknown operation \"%s\"\n", op);
    return map_usage();
}
