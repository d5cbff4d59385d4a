/*
 * petrel_queue.h - the parts of "petrel queue" shared by its files:
 * petrel_queue.c (options, list, show, target selection), petrel_queue_act.c
 * (delete, hold, release, requeue, bounce) and petrel_queue_shape.c (shape).
 */
#ifndef PETREL_CMD_QUEUE_H
#define PETREL_CMD_QUEUE_H

#include <stddef.h>

#include "queue_list.h"

struct queue_opts {
    struct queue_filter *filter;
    char **filter_args;         /* the same filters as "name=value", for showq */
    size_t nfilter_args;
    int json;
    int envelope, headers, body;        /* show */
    int by_sender;              /* shape */
    int buckets;                /* shape */
    int bucket_minutes;         /* shape */
    char **args;                /* what follows the options */
    int nargs;
};

/* One message chosen for an action. */
struct queue_target {
    char qid[32];
    int queue;                  /* enum queue_list_queue */
};

/* Opens the queue directory and changes into it (endpoints are relative to it);
 * the descriptor, or -1 after an error message. */
int petrel_queue_open_dir(void);
/* Finds a message by ID; 1 found (queue and path set), 0 not found. */
int petrel_queue_locate(int qfd, const char *qid, int *queue, char *path, size_t pathlen);

int petrel_queue_act(const char *action, struct queue_opts *o);
int petrel_queue_shape(struct queue_opts *o);

#endif
