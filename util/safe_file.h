/*
 * safe_file.h - opening, creating and replacing files so that races lose.
 *
 * SUMMARY
 *	Queue files, mailboxes, maps and configuration live in directories that
 *	other users may be able to write to, or that an attacker may have
 *	prepared with symlinks and hard links (Postfix CVE-2008-2936). These
 *	helpers never trust a path: they open with O_NOFOLLOW (and O_NONBLOCK,
 *	so a FIFO planted in place of a file cannot hang the caller), then check
 *	the open descriptor with fstat(): a regular file, exactly one link, and
 *	the expected owner. Files are created only with O_EXCL. Later changes
 *	go through the descriptor, never through the path again.
 *
 *	Every function takes a directory descriptor and a path relative to it
 *	(AT_FDCWD for the current directory, or an absolute path), so callers
 *	that hold a queue or mailbox directory open need not build strings. Only
 *	the last component is protected against symlinks; the caller is
 *	responsible for the directories leading to it (check them at startup).
 *
 * DIAGNOSTICS
 *	Failures return -1 with errno set; where a why argument is given (it may
 *	be NULL) a sentence naming the file and the reason replaces its
 *	contents. Refusals use these errno values: ELOOP (a symlink), EISDIR
 *	(a directory), EINVAL (another non-regular file), EMLINK (more than one
 *	link), EPERM (wrong owner), EFBIG (larger than the caller's limit).
 *
 * NEVER
 *	Never follows a symlink in the last component, never opens an existing
 *	file when asked to create one, never leaves a half-written file in place
 *	of a complete one (safe_file_replace), never reads more than the limit.
 */
#ifndef PETREL_SAFE_FILE_H
#define PETREL_SAFE_FILE_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

struct strbuf;

/* safe_file_open owner argument: accept any owner. */
#define SAFE_FILE_ANY_OWNER ((uid_t) -1)

/*
 * Opens an existing regular file with one link, owned by owner (unless
 * SAFE_FILE_ANY_OWNER). flags are open(2) access flags plus O_APPEND or
 * O_TRUNC (O_CREAT and O_EXCL are refused: use safe_file_create). Stores the
 * file's status in *st when st is not NULL. Returns the descriptor (close on
 * exec, blocking) or -1.
 */
int safe_file_open(int dirfd, const char *path, int flags, uid_t owner,
                   struct stat *st, struct strbuf *why);

/*
 * Creates a new file with O_CREAT | O_EXCL | O_NOFOLLOW and exactly the given
 * permission bits (not reduced by the umask). flags are access flags plus
 * O_APPEND. Returns the descriptor or -1 (EEXIST if the name is taken by
 * anything, a dangling symlink included).
 */
int safe_file_create(int dirfd, const char *path, int flags, mode_t mode,
                     struct strbuf *why);

/* Writes all len bytes, resuming after short writes and EINTR; 0 or -1. */
int safe_file_write_all(int fd, const void *buf, size_t len);

/* fsync(2) of a file, retrying EINTR; 0 or -1. */
int safe_file_sync(int fd);

/*
 * Makes a directory's entries durable (after create, rename or unlink in it):
 * opens path (relative to dirfd; "." for dirfd itself) and fsyncs it.
 */
int safe_file_sync_dir(int dirfd, const char *path);

/*
 * Replaces path atomically with len bytes of data and the given mode: writes
 * a temporary file in the same directory (O_EXCL), fsyncs it, renames it over
 * path and fsyncs the directory. Readers see the old contents or the new,
 * never a mixture; after a crash the file holds one or the other. The
 * temporary file is removed on failure. Returns 0 or -1.
 */
int safe_file_replace(int dirfd, const char *path, const void *data, size_t len,
                      mode_t mode, struct strbuf *why);

/*
 * Creates path and any missing parent directories (mkdir -p). Directories
 * this call creates get exactly mode (not reduced by the umask); existing
 * ones are left as they are but must be directories. Returns 0 or -1.
 */
int safe_file_mkdirs(int dirfd, const char *path, mode_t mode, struct strbuf *why);

/*
 * Appends the rest of fd's contents to out. Fails with EFBIG, out unchanged,
 * if that is more than limit bytes. Returns 0 or -1.
 */
int safe_file_read_fd(int fd, size_t limit, struct strbuf *out);

/*
 * Reads a whole small file: safe_file_open for reading with the owner check,
 * then safe_file_read_fd into out (replacing its contents). Returns 0 or -1.
 */
int safe_file_read(int dirfd, const char *path, uid_t owner, size_t limit,
                   struct strbuf *out, struct strbuf *why);

#endif
