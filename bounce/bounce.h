/*
 * bounce.h - the parts of the bounce service (bounce.c serves requests,
 * bounce_notify.c gathers what a notification needs and submits it).
 */
#ifndef PETREL_BOUNCE_BOUNCE_H
#define PETREL_BOUNCE_BOUNCE_H

#include "bounce_client.h"
#include "strbuf.h"

/* Writes and queues the notifications one request asks for. Returns an
 * IPC_STATUS_* for the answer: OK with the notice's queue ID in dsn_qid (empty
 * when nothing had to be sent), else DEFER or REJECT with why. */
int bounce_notify(enum bounce_kind kind, const char *queue_name, const char *qid,
                  struct strbuf *dsn_qid, struct strbuf *why);

/* Drops the connection to cleanup (before exit, or after an error). */
void bounce_notify_disconnect(void);

#endif
