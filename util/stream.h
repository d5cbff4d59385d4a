/*
 * stream.h - buffered byte streams with timeouts and deadlines.
 *
 * SUMMARY
 *	One stream type carries every conversation Petrel has with a peer: the
 *	SMTP server and client, LMTP, the milter client, pipes to commands and
 *	plain files. A stream owns a read buffer, a write buffer, a clock, and an
 *	I/O layer (a small table of functions) that moves bytes between the
 *	buffers and the descriptor. The default layer uses read/write (send with
 *	MSG_NOSIGNAL on sockets); TLS replaces it with stream_set_io() without
 *	changing any caller.
 *
 * CLOCK
 *	Every wait for the peer is bounded; no call blocks forever.
 *	- The timeout (stream_set_timeout, milliseconds, default
 *	  STREAM_DEFAULT_TIMEOUT_MS) bounds each single wait for the descriptor to
 *	  become readable or writable. A peer that sends one byte per timeout
 *	  period keeps a line read going indefinitely: that is what the deadline
 *	  is for.
 *	- The deadline (stream_set_deadline) is a time budget shared by all
 *	  operations until it is cleared. It starts at budget_ms from now. Every
 *	  byte moved by the I/O layer, in either direction, earns 1/min_rate
 *	  seconds of extra time, but the deadline never lies more than budget_ms
 *	  ahead of the current time. A peer that keeps at least min_rate bytes per
 *	  second flowing is never cut off; a trickling peer runs out of time. With
 *	  min_rate 0 nothing is earned and the budget is a hard limit. This is
 *	  Postfix's smtpd_per_request_deadline with smtpd_min_data_rate. Each wait
 *	  lasts at most min(timeout, time left before the deadline).
 *	Data already in the read buffer is returned without waiting, even after
 *	the deadline passed; the clock only limits waiting for the peer.
 *
 * ERRORS
 *	Errors are sticky and kept per direction, so a server can still send
 *	"421 timeout" after a read timed out, and a client that half-closes after
 *	QUIT still gets its reply. stream_status() tells:
 *	  STREAM_EOF      the peer closed (read side only);
 *	  STREAM_TIMEOUT  the timeout or the deadline expired while waiting;
 *	  STREAM_ERROR    the I/O layer failed; stream_errno() has the reason.
 *	Once a direction has timed out or failed, every further operation in
 *	that direction returns -1 at once without touching the descriptor, even
 *	if input is still buffered. After EOF, buffered input can still be read.
 *	stream_wait() (for layer handshakes) marks both directions when it
 *	times out.
 *
 * LINES
 *	stream_read_line() returns one line without its terminator and REPORTS
 *	the terminator it saw, because callers must tell CRLF from a bare LF or a
 *	bare CR (SMTP smuggling, CVE-2023-51764: only CRLF.CRLF may end DATA):
 *	  STREAM_EOL_CRLF, STREAM_EOL_LF, STREAM_EOL_CR  a terminated line;
 *	  STREAM_EOL_LIMIT  limit bytes without a terminator: this is one piece
 *	                    of an over-long line, the rest follows in later calls;
 *	  STREAM_EOL_NONE   the input ended (EOF, timeout or error; see
 *	                    stream_status) in the middle of a line: the piece is
 *	                    the last data there is.
 *	A CR is a terminator of its own unless the very next byte is LF (a CR
 *	that is the last byte before EOF or a timeout counts as STREAM_EOL_CR);
 *	a CRLF pair is never split between two pieces. Returned pieces never contain CR
 *	or LF. Concatenating pieces and the terminators they report gives back
 *	the input byte for byte. The returned pointer points into the read
 *	buffer (no copy, no allocation per line) and is valid only until the
 *	next operation on the stream; the bytes are followed by a NUL, but may
 *	also contain NULs, so use the returned length.
 *
 * PIPELINING AND STARTTLS
 *	stream_pending() says how much input is buffered but not yet consumed
 *	(detecting a client that sends ahead without PIPELINING);
 *	stream_discard_input() drops it. After STARTTLS the caller MUST discard
 *	(and may log) anything buffered before the handshake (CVE-2011-0411):
 *	stream_set_io() panics when input is still buffered or output is still
 *	unflushed, so plaintext can never be read as if it came over TLS.
 *
 * DESCRIPTORS
 *	The stream puts the descriptor into non-blocking mode, so that a write
 *	to a peer that stopped reading waits in poll() under the clock instead
 *	of blocking in write(); the original file status flags are restored when
 *	the stream is closed. Works on sockets, pipes, terminals and regular
 *	files. Writes to a pipe whose reader went away fail with EPIPE only when
 *	the process ignores SIGPIPE, which every Petrel daemon does.
 *
 * NEVER
 *	Never grows a buffer because of what the peer sends (a line longer than
 *	the limit comes back in pieces), never waits without a bound, never
 *	hands bytes read through one I/O layer to a caller of another.
 */
#ifndef PETREL_STREAM_H
#define PETREL_STREAM_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct stream;

#define STREAM_DEFAULT_TIMEOUT_MS (300 * 1000)  /* Postfix smtpd_timeout */
#define STREAM_BUFSIZE 8192                     /* initial read and write buffer */
#define STREAM_LINE_MAX (1024 * 1024)           /* largest line limit a caller may ask for */

/* stream_fdopen/stream_open_io flags. */
#define STREAM_F_NOCLOSE 0x1    /* stream_close leaves the descriptor open */

/*
 * An I/O layer. read and write move up to len bytes and return how many
 * (> 0), 0 for end of file (read only), STREAM_IO_WANT_READ or
 * STREAM_IO_WANT_WRITE when the call would block until the descriptor is
 * readable or writable (a TLS read may need to write), or -1 with errno set.
 * They must never block. pending (may be NULL) returns bytes the layer holds
 * that poll() on the descriptor cannot see, e.g. decrypted TLS data. close
 * (may be NULL) tears the layer down; it must not close the descriptor,
 * which the stream owns. ctx is the layer's own state.
 */
#define STREAM_IO_WANT_READ  (-2)
#define STREAM_IO_WANT_WRITE (-3)

struct stream_io {
    ssize_t (*read)(void *ctx, int fd, void *buf, size_t len);
    ssize_t (*write)(void *ctx, int fd, const void *buf, size_t len);
    size_t (*pending)(void *ctx);
    int (*close)(void *ctx, int fd);
};

enum stream_status {
    STREAM_OK = 0,
    STREAM_EOF,                 /* peer closed; read side only */
    STREAM_TIMEOUT,             /* timeout or deadline expired */
    STREAM_ERROR,               /* I/O error; see stream_errno */
};

enum stream_dir {
    STREAM_DIR_READ,
    STREAM_DIR_WRITE,
};

enum stream_eol {
    STREAM_EOL_NONE = 0,        /* input ended mid-line */
    STREAM_EOL_CRLF,
    STREAM_EOL_LF,
    STREAM_EOL_CR,
    STREAM_EOL_LIMIT,           /* limit reached; the line continues */
};

/* Opening and closing. Never fails: a bad descriptor shows at the first I/O. */
struct stream *stream_fdopen(int fd, int flags);
/* As stream_fdopen with a caller's layer; fd may be -1 if the layer never blocks. */
struct stream *stream_open_io(int fd, const struct stream_io *io, void *ctx, int flags);
/*
 * Flushes (bounded by the clock), closes the layer and the descriptor, frees
 * the stream and clears *sp. Returns 0, or -1 with errno when written data
 * may not have reached the peer (the write side failed, now or earlier) or a
 * close failed. Accepts NULL.
 */
int stream_close(struct stream **sp);

int stream_fd(const struct stream *s);
/* Replaces the I/O layer; panics if input is buffered or output unflushed. */
void stream_set_io(struct stream *s, const struct stream_io *io, void *ctx);

/* Clock. timeout_ms must be > 0. */
void stream_set_timeout(struct stream *s, int timeout_ms);
int stream_timeout(const struct stream *s);
void stream_set_deadline(struct stream *s, int budget_ms, unsigned min_rate);
void stream_clear_deadline(struct stream *s);
/*
 * Waits until the descriptor is ready for events (POLLIN and/or POLLOUT)
 * under the stream's clock; for layers that do their own I/O (TLS
 * handshakes). Returns 0, or -1 after marking both directions with
 * STREAM_TIMEOUT or STREAM_ERROR.
 */
int stream_wait(struct stream *s, short events);

/* Status (sticky, per direction). */
enum stream_status stream_status(const struct stream *s, enum stream_dir dir);
int stream_errno(const struct stream *s, enum stream_dir dir);
/* "timeout", "end of file", or the system's text for the error; "" when OK. */
const char *stream_strerror(const struct stream *s, enum stream_dir dir);

/*
 * Reads one line of at most limit bytes (1 <= limit <= STREAM_LINE_MAX) and
 * stores a pointer to it in *linep and its terminator in *eolp (see LINES).
 * Returns the line's length (possibly 0, for an empty line), or -1 when no
 * byte at all could be read (see stream_status).
 */
ssize_t stream_read_line(struct stream *s, const char **linep, size_t limit,
                         enum stream_eol *eolp);
/* Reads between 1 and len bytes: returns how many, 0 at EOF, -1 on error. */
ssize_t stream_read(struct stream *s, void *buf, size_t len);
/* Reads exactly len bytes; 0 on success, -1 when EOF or an error came first. */
int stream_read_exact(struct stream *s, void *buf, size_t len);
/* Bytes read from the peer but not yet consumed by the caller. */
size_t stream_pending(const struct stream *s);
/*
 * 1 if input can be read without waiting: buffered, held by the layer, or
 * already arrived at the descriptor; else 0. Never waits.
 */
int stream_input_ready(struct stream *s);
/* Drops buffered input; returns how many bytes were dropped. */
size_t stream_discard_input(struct stream *s);
/* Copies up to len bytes of buffered input to buf without consuming them
 * (for a log line about input sent too early); returns how many. Never reads. */
size_t stream_peek_input(struct stream *s, char *buf, size_t len);

/*
 * Buffered writes. Data reaches the peer when the buffer fills or at
 * stream_flush. Each returns 0, or -1 when the write side has failed.
 */
int stream_write(struct stream *s, const void *buf, size_t len);
int stream_puts(struct stream *s, const char *str);
int stream_writev(struct stream *s, const struct iovec *iov, int iovcnt);
int stream_printf(struct stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int stream_vprintf(struct stream *s, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Sends everything buffered, waiting under the clock. */
int stream_flush(struct stream *s);
/* Bytes written by the caller but not yet sent. */
size_t stream_unflushed(const struct stream *s);

#endif
