/*
 * showq_client.h - asking the showq service (public/showq) for the queue
 * listing, for callers that may not read the queue themselves (an ordinary
 * user's mailq, sendmail -bp, petrel queue list).
 *
 * Protocol (docs/ipc.md, "showq"): one request frame
 *   request=list, format=classic|json, filter (STR list of "name=value",
 *   names as queue_filter_add)
 * answered by frames holding one DATA attribute "data" (a piece of the listing
 * text, at most SHOWQ_CHUNK bytes), then one frame with "end" U32 1 and
 * "status" U32 (0 done, else "reason" STR). Every receive has a timeout.
 */
#ifndef PETREL_SHOWQ_CLIENT_H
#define PETREL_SHOWQ_CLIENT_H

#include <stddef.h>

#include "strbuf.h"

#define SHOWQ_CHUNK         (64 * 1024)
#define SHOWQ_MAX_FRAME     (SHOWQ_CHUNK + 4096)
#define SHOWQ_MAX_FILTERS   1024
#define SHOWQ_FILTER_MAX    4096        /* bytes of one "name=value" */

/* Connects to path (NULL: "public/<showq_service_name>" under queue_directory),
 * asks for the listing and copies it to out_fd. Returns 0, or -1 with why
 * (errno kept: EACCES or ENOENT when the socket cannot be reached). */
int showq_client_list(const char *path, int json, char *const *filters, size_t nfilters,
                      int out_fd, int timeout_ms, struct strbuf *why);

/* Runs the set-group-ID helper petrel-showq (PETREL_SHOWQ in the environment, else
 * command_directory/petrel-showq) with the same request, passing the
 * configuration directory; returns its exit status, or -1 with why when it could
 * not be run. */
int showq_client_helper(int json, char *const *filters, size_t nfilters, struct strbuf *why);

#endif
