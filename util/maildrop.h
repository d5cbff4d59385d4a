/*
 * maildrop.h - local submission through petrel-drop, shared by the sendmail
 * command and stand-alone smtpd ("sendmail -bs").
 *
 * A submission is a queue-file-format stream (util/qfile.h, written with
 * qfile_fdopen): sender, recipients, envelope attributes, content. It is
 * written into an anonymous memory file (memfd, seekable, so the writer can patch
 * lengths), which becomes the standard input of $command_directory/petrel-drop,
 * the set-gid helper, which checks the
 * stream with the queue file reader, writes it into maildrop/ (so submission
 * works while the mail system is stopped), fsyncs it, prints the queue ID and
 * exits 0; on failure it exits with a sysexits code (EX_TEMPFAIL, EX_DATAERR,
 * EX_NOPERM, EX_UNAVAILABLE) and a message on stderr. The maildrop file is owned by
 * the submitting user's uid: pickup takes the submitter's identity from the
 * file owner, never from the stream.
 *
 * Never runs a shell; never lets the child outlive the submission.
 */
#ifndef PETREL_MAILDROP_H
#define PETREL_MAILDROP_H

#include <stddef.h>

#include "strbuf.h"

struct qfile_writer;
struct maildrop;

/* Prepares a submission for petrel-drop (path NULL: $command_directory/petrel-drop,
 * overridable by the environment variable PETREL_DROP for tests) and returns a
 * handle whose writer fills the stream; NULL with why on failure. */
struct maildrop *maildrop_open(const char *path, struct strbuf *why);
struct qfile_writer *maildrop_writer(struct maildrop *md);
/* QFILE_FLAG_* bits (8BITMIME, SMTPUTF8, BINARYMIME) for the stream's size record. */
void maildrop_set_flags(struct maildrop *md, unsigned qfile_flags);

/* Ends the stream, runs petrel-drop on it, and returns its exit status (0 = queued,
 * with the queue ID in queue_id), or a sysexits code with the reason in why. */
int maildrop_close(struct maildrop **mdp, struct strbuf *queue_id, struct strbuf *why);

/* Abandons the submission: nothing is stored. */
void maildrop_abort(struct maildrop **mdp);

#endif
