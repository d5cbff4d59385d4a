/*
 * mailbox.h - writing one message into a Maildir or an mbox file; the one
 * mailbox writer, shared by the local and virtual delivery agents.
 *
 * The caller has already taken the mailbox owner's uid/gid (the writer never
 * changes privileges) and passes the header lines to put first (Return-Path:,
 * Delivered-To:, X-Original-To:, each ending in LF). The content comes from the
 * queue file through deliver_content_read.
 *
 * Maildir: tmp/UNIQUE with O_EXCL, written, fsynced, then link()ed (or renamed)
 * to new/UNIQUE and the directory fsynced; UNIQUE is "SECONDS.MICROSECONDS_P_PID
 * .HOSTNAME" style, never reused; missing tmp/new/cur are created (mode 0700).
 * mbox: opened O_APPEND|O_NOFOLLOW, checked with fstat (regular file, one link,
 * owned by the caller's uid), locked per mailbox_delivery_lock (fcntl and/or a
 * dot-lock with stale_lock_time), a "From SENDER DATE" line, ">From " escaping
 * of body lines, a blank line at the end, fsync; on any error the file is
 * truncated back to its old size so no half message remains.
 * Both honour size_limit (mailbox_size_limit / virtual_mailbox_limit, 0 = none):
 * over it the message bounces with 5.2.2 "mailbox full".
 *
 * Returns DELIVER_SENT, DELIVER_DEFER or DELIVER_BOUNCE (util/deliver_request.h)
 * with the enhanced status code in dsn and the reason in why ("delivered to
 * maildir", "cannot create ...: Permission denied", ...).
 */
#ifndef PETREL_MAILBOX_H
#define PETREL_MAILBOX_H

#include <sys/types.h>

#include "deliver_request.h"
#include "strbuf.h"

enum deliver_status mailbox_maildir_deliver(const char *maildir, const struct deliver_request *req,
                                            const char *prepend, off_t size_limit,
                                            char dsn[8], struct strbuf *why);

enum deliver_status mailbox_mbox_deliver(const char *path, const struct deliver_request *req,
                                         const char *prepend, const char *locks,
                                         off_t size_limit, char dsn[8], struct strbuf *why);

/* Whether a mailbox path names a Maildir (ends in "/"), as Postfix decides. */
int mailbox_path_is_maildir(const char *path);

#endif
