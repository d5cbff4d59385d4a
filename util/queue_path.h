/*
 * queue_path.h - where a queue file lives, and how a new one gets its name.
 *
 * BUCKETS
 *	A queue (incoming, active, deferred, ...) may be hashed into
 *	subdirectories so that no directory grows to hundreds of thousands of
 *	entries (Postfix's hash_queue_depth and hash_queue_names; the caller
 *	passes depth 0 for a queue that is not hashed). Each level is one
 *	character of the queue ID, taken from the END of the microsecond digits
 *	(index 9, then 8, ...), because the leading time digits are the same for
 *	all recent mail and would put it all in one bucket:
 *	    queue_path(..., "incoming", "4SVLCh0sf88mYg", 2) -> "incoming/8/f/4SVLCh0sf88mYg"
 *	where the ID's character 9 is '8' and character 8 is 'f'.
 *
 * DIAGNOSTICS
 *	A malformed queue name or queue ID, or a depth outside 0..4, is a bug
 *	in the caller: these functions panic. File system failures in
 *	queue_path_create return -1 with errno.
 */
#ifndef PETREL_QUEUE_PATH_H
#define PETREL_QUEUE_PATH_H

#include <sys/types.h>

#include "qid.h"

struct strbuf;

#define QUEUE_PATH_MAX_DEPTH 4  /* the number of microsecond digits */

/* Replaces out with "queue_name/B1/.../qid"; returns out->data. */
const char *queue_path(struct strbuf *out, const char *queue_name, const char *qid, int depth);
/* Replaces out with the bucket directory "queue_name/B1/..."; returns out->data. */
const char *queue_path_dir(struct strbuf *out, const char *queue_name, const char *qid,
                           int depth);
/* The bucket depth of a queue (or status log) as main.cf says: hash_queue_depth
 * when hash_queue_names lists the name, else 0; clamped to 0..QUEUE_PATH_MAX_DEPTH.
 * The one place that reads those two parameters. */
int queue_path_depth(const char *queue_name);
/* 1 if name can be a queue name: 1..32 characters of [a-z0-9_-]. */
int queue_path_name_valid(const char *name);

/*
 * Creates a new, empty queue file with a unique queue ID and opens it for
 * reading and writing. Paths are relative to queue_dirfd (the queue
 * directory, or AT_FDCWD). Steps: create a temporary file ".tmpPID.N" with
 * O_EXCL in queue_name; fstat it for its inode; form the ID from the current
 * time and the inode; rename it (renameat2 RENAME_NOREPLACE, or link and
 * unlink where the file system lacks it) to its bucket path, creating the
 * bucket directories with the queue directory's mode when missing; on
 * EEXIST retry with a fresh time. The ID goes into qid.
 *
 * Why the ID is unique: while the file exists no other file has its inode,
 * so an existing name with the same ID can only come from a clock that went
 * backwards or a file copied into the queue; the rename never replaces, and
 * the next try takes a new time.
 *
 * The file is NOT yet durable: neither its contents nor its directory entry
 * have been fsynced. The caller writes the file, fsyncs it, and fsyncs the
 * bucket directory (queue_path_dir) before it reports the message as
 * accepted. After a crash a ".tmp" file or an empty or partial queue file
 * may remain; whoever scans the queue must expect both.
 *
 * Returns the descriptor (close on exec), or -1 with errno; on failure
 * nothing is left behind.
 */
int queue_path_create(int queue_dirfd, const char *queue_name, int depth, mode_t mode,
                      char qid[QID_BUFSIZE]);

#endif
