/*
 * qfile.h - queue files: the one writer and the one reader of Petrel's queue
 * file format (docs/queue-file.md). A queue file is a magic string followed by
 * typed, length-prefixed records: envelope, recipients, the message content as
 * one record, trailing envelope records, an end marker.
 * The writer creates files through queue_path_create (O_EXCL, inode-based queue
 * ID) or writes the same format to any descriptor (maildrop submissions). A file
 * is visible to qmgr only after qfile_commit: mode made "complete", file and
 * directory fsynced. The reader trusts nothing: every length is checked against
 * the file size and hard limits; a malformed file is reported, never crashes.
 */
#ifndef PETREL_QFILE_H
#define PETREL_QFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "strbuf.h"

#define QFILE_MAGIC "PQF1"
#define QFILE_MAGIC_LEN 4

/* Record types (one byte). The recipient types differ in one byte so that
 * marking a recipient done is a single in-place write. */
#define QREC_SIZE       'S'     /* first record; fixed 24-byte payload, see below */
#define QREC_TIME       'T'     /* arrival "SECONDS.MICROSECONDS" */
#define QREC_ATTR       'A'     /* "name=value" envelope attribute */
#define QREC_SENDER     'F'     /* envelope sender; empty for <> */
#define QREC_ORCPT      'O'     /* DSN ORCPT / original recipient of the next R/D record */
#define QREC_NOTIFY     'N'     /* DSN NOTIFY flags of the next R/D record, decimal */
#define QREC_RCPT       'R'     /* recipient still to be delivered */
#define QREC_DONE       'D'     /* recipient done (delivered, bounced or dropped) */
#define QREC_CONTENT    'M'     /* message content: headers and body, LF line ends */
#define QREC_END        'E'     /* end of file; nothing may follow */

/* QREC_SIZE payload: content offset, content length and recipient count as
 * big-endian u64, u64, u32, then u32 flags (QFILE_FLAG_*). */
#define QFILE_SIZE_PAYLOAD 24
#define QFILE_FLAG_8BIT         (1u << 0)       /* BODY=8BITMIME or 8-bit seen */
#define QFILE_FLAG_SMTPUTF8     (1u << 1)
#define QFILE_FLAG_BINARYMIME   (1u << 2)

/* Limits every reader enforces. */
#define QFILE_MAX_RECORD        (64 * 1024)     /* any record but the content */
#define QFILE_MAX_RECORDS       (1 << 20)

struct qfile_writer;

/* Creates a new file in queue_name (e.g. "incoming") under queue_dirfd, with
 * hash_queue_depth levels of buckets; mode 0600 until committed. */
struct qfile_writer *qfile_create(int queue_dirfd, const char *queue_name, int depth,
                                  struct strbuf *why);
/* Writes the same format to an existing descriptor (not committed, not owned). */
struct qfile_writer *qfile_fdopen(int fd);
const char *qfile_writer_id(const struct qfile_writer *w);      /* "" for qfile_fdopen */
int qfile_writer_fd(const struct qfile_writer *w);

/* Appends one envelope record; -1 with errno on I/O error or a record over the limit. */
int qfile_put(struct qfile_writer *w, int type, const void *data, size_t len);
int qfile_put_str(struct qfile_writer *w, int type, const char *str);
int qfile_put_attr(struct qfile_writer *w, const char *name, const char *value);
/* The content record: begin, any number of writes, end (patches its length). */
int qfile_content_begin(struct qfile_writer *w);
int qfile_content_write(struct qfile_writer *w, const void *data, size_t len);
int qfile_content_end(struct qfile_writer *w);
/* Writes QREC_END, the size record, makes the file complete (mode 0700) and
 * fsyncs file and directory. Only after this may anyone hear "250". */
int qfile_commit(struct qfile_writer *w, unsigned flags, struct strbuf *why);
/* Moves an uncommitted file into another queue (e.g. "hold" after a HOLD action),
 * so that it becomes complete only where it belongs and no scanner of the first
 * queue ever sees it complete; qfile_commit then fsyncs the new directory. */
int qfile_move(struct qfile_writer *w, const char *queue_name, int depth, struct strbuf *why);
/* Removes an uncommitted file (RSET, reject, error) and frees the writer. */
void qfile_abort(struct qfile_writer **wp);
/* Frees a committed writer (closes the descriptor). */
void qfile_writer_free(struct qfile_writer **wp);

/* Reader. */
struct qfile_record {
    int type;
    off_t offset;               /* of the type byte, for in-place updates */
    const char *data;           /* valid until the next qfile_next; NUL-terminated */
    size_t len;
};

struct qfile_reader;

/* Opens a queue file (O_NOFOLLOW, regular file, one link) or reads from fd. */
struct qfile_reader *qfile_open(int dirfd, const char *path, int flags, struct strbuf *why);
struct qfile_reader *qfile_reader_fdopen(int fd, struct strbuf *why);
/* Next record: 1, 0 at QREC_END, -1 on a malformed file (reason in qfile_reason).
 * The content record is returned without data (len = content length); use
 * qfile_content_read to stream it. */
int qfile_next(struct qfile_reader *r, struct qfile_record *rec);
ssize_t qfile_content_read(struct qfile_reader *r, void *buf, size_t len);
const char *qfile_reason(const struct qfile_reader *r);
int qfile_reader_fd(const struct qfile_reader *r);
/* Size record values, valid after qfile_open. */
uint64_t qfile_content_offset(const struct qfile_reader *r);
uint64_t qfile_content_length(const struct qfile_reader *r);
uint32_t qfile_rcpt_count(const struct qfile_reader *r);
unsigned qfile_flags(const struct qfile_reader *r);
void qfile_close(struct qfile_reader **rp);

/* Marks the recipient record at offset done (R -> D) and fsyncs. */
int qfile_mark_done(int fd, off_t offset);

/* Whether a queue file is complete (committed); partial files are skipped by scanners. */
int qfile_is_complete(mode_t mode);

#endif
