/*
 * attr.h - the one encoding for every message between Petrel processes.
 * A message is a frame of typed, named attributes (docs/ipc.md has the byte
 * layout). This module builds and parses frames in memory and never does I/O;
 * util/ipc.c moves frames and their file descriptors over sockets.
 *
 * Every received byte is untrusted: a frame is checked against per-message
 * limits (frame size, attribute count, name length) before anything is
 * allocated, and any malformed frame is rejected as a whole (-1, errno EPROTO
 * or EMSGSIZE, a reason in attr_msg_reason()). A builder call with a bad value
 * fails and the failure sticks until the frame is finished, so a sender may
 * check once. Passing a name that is not [a-z0-9_]{1,64}, or using a message in
 * the wrong state, is a caller bug and panics.
 *
 * Ownership: pointers returned by getters point into the message and stay
 * valid until attr_msg_reset() or attr_msg_free(). Descriptors received with a
 * frame belong to the message until claimed with attr_get_fd(); unclaimed ones
 * are closed on reset and free. Descriptors added with attr_put_fd() stay the
 * caller's.
 */
#ifndef PETREL_ATTR_H
#define PETREL_ATTR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ATTR_HEADER_SIZE    8
#define ATTR_MAGIC          0xA7
#define ATTR_VERSION        1
#define ATTR_NAME_MAX       64                  /* format limit */
#define ATTR_MAX_FDS        16                  /* descriptors per frame */
#define ATTR_FRAME_DEFAULT  (1024 * 1024)       /* header + payload */
#define ATTR_FRAME_MAX      (64 * 1024 * 1024)  /* no limit may exceed this */
#define ATTR_COUNT_DEFAULT  4096
#define ATTR_COUNT_MAX      (1024 * 1024)

enum attr_type {
    ATTR_TYPE_U32 = 1,
    ATTR_TYPE_I64 = 2,
    ATTR_TYPE_STR = 3,
    ATTR_TYPE_DATA = 4,
    ATTR_TYPE_FD = 5,
};

/* On the wire, marks an element of a repeatable attribute (a list). */
#define ATTR_FLAG_LIST      0x80

struct attr_msg;

/* Per-message limits; a zero field means the default. */
struct attr_limits {
    size_t max_frame;           /* bytes, header included */
    size_t max_attrs;           /* attributes, list elements counted one by one */
    size_t max_name;            /* bytes, at most ATTR_NAME_MAX */
};

/* Walks a list (repeated attribute) in frame order; lives on the caller's stack. */
struct attr_iter {
    struct attr_msg *msg;
    uint32_t next;              /* entry index + 1; 0 at the end */
};

/* What attr_walk() reports about one attribute. */
struct attr_info {
    const char *name;           /* not NUL-terminated */
    size_t name_len;
    enum attr_type type;
    int list;                   /* sent with ATTR_FLAG_LIST */
};

struct attr_msg *attr_msg_new(void);
void attr_msg_free(struct attr_msg **msgp);
/* Empties the message for building or receiving; closes unclaimed received fds. */
void attr_msg_reset(struct attr_msg *msg);
/* Panics when a limit exceeds the hard maximum (a caller bug). */
void attr_msg_set_limits(struct attr_msg *msg, const struct attr_limits *limits);
/* Why the last call failed, for the log; never NULL. */
const char *attr_msg_reason(const struct attr_msg *msg);
/* Number of attributes decoded (list elements count one each). */
size_t attr_msg_count(const struct attr_msg *msg);

/*
 * Building. Each returns 0, or -1 with errno: EINVAL (CR, LF in a string),
 * EMSGSIZE (frame or attribute-count limit), E2BIG (more than ATTR_MAX_FDS).
 * attr_put_* adds a single attribute (its name must not repeat); attr_add_*
 * adds one element of a list, which the receiver reads with an iterator.
 */
int attr_put_u32(struct attr_msg *msg, const char *name, uint32_t value);
int attr_put_i64(struct attr_msg *msg, const char *name, int64_t value);
int attr_put_str(struct attr_msg *msg, const char *name, const char *value);
int attr_put_data(struct attr_msg *msg, const char *name, const void *data, size_t len);
int attr_put_fd(struct attr_msg *msg, const char *name, int fd);
int attr_add_u32(struct attr_msg *msg, const char *name, uint32_t value);
int attr_add_i64(struct attr_msg *msg, const char *name, int64_t value);
int attr_add_str(struct attr_msg *msg, const char *name, const char *value);
int attr_add_data(struct attr_msg *msg, const char *name, const void *data, size_t len);

/*
 * Finishes the frame: data and len get the bytes to send (valid until the
 * next change to msg), fds and nfds the descriptors that travel with them. Returns
 * -1 with the errno of the first builder failure, if any.
 */
int attr_msg_frame(struct attr_msg *msg, const void **data, size_t *len,
                   const int **fds, size_t *nfds);

/*
 * Receiving, incrementally. attr_decoder_space() says where the next bytes go
 * and how many to read: never more than the frame still needs, so no byte of
 * the next frame, and none of its descriptors, is read early;
 * attr_decoder_commit() takes n of them. Both return 1 when the frame is
 * complete and parsed, 0 when more is needed, -1 on a bad frame.
 * attr_decoder_feed() does the same from a caller's buffer and reports in
 * *used how much it took. attr_decoder_add_fd() hands over a descriptor that
 * arrived with the frame (closed at once if it cannot be kept).
 * attr_decoder_eof() turns an end of input into the right error: EPIPE before
 * the first byte of a frame, ECONNRESET inside one.
 */
size_t attr_decoder_space(struct attr_msg *msg, void **buf);
int attr_decoder_commit(struct attr_msg *msg, size_t n);
int attr_decoder_feed(struct attr_msg *msg, const void *data, size_t len, size_t *used);
int attr_decoder_add_fd(struct attr_msg *msg, int fd);
int attr_decoder_eof(struct attr_msg *msg);
/* Lowers (or raises, up to ATTR_FRAME_MAX) the frame limit until the next reset. */
void attr_decoder_set_frame_limit(struct attr_msg *msg, size_t max_frame);
/* Decodes a buffer that must hold exactly one frame (bytes after it: EPROTO). */
int attr_decode(struct attr_msg *msg, const void *data, size_t len);

/*
 * Getters on a decoded message. attr_get_* return 0, or -1 with errno ENOENT
 * (missing) or EPROTO (other type, or a list). attr_opt_* return 1 when
 * found, 0 when absent, -1 (EPROTO) when present with another type.
 * Strings are NUL-terminated and hold no NUL, CR or LF; len may be NULL.
 * attr_get_fd() transfers the descriptor to the caller.
 */
int attr_get_u32(struct attr_msg *msg, const char *name, uint32_t *value);
int attr_get_i64(struct attr_msg *msg, const char *name, int64_t *value);
int attr_get_str(struct attr_msg *msg, const char *name, const char **value, size_t *len);
int attr_get_data(struct attr_msg *msg, const char *name, const void **data, size_t *len);
int attr_get_fd(struct attr_msg *msg, const char *name, int *fd);
int attr_opt_u32(struct attr_msg *msg, const char *name, uint32_t *value);
int attr_opt_i64(struct attr_msg *msg, const char *name, int64_t *value);
int attr_opt_str(struct attr_msg *msg, const char *name, const char **value, size_t *len);
int attr_opt_data(struct attr_msg *msg, const char *name, const void **data, size_t *len);
int attr_opt_fd(struct attr_msg *msg, const char *name, int *fd);

/*
 * Lists. attr_iter_init() returns the number of elements (0 when absent), or
 * -1 (EPROTO) when the name is a single attribute. attr_iter_* return 1 with
 * the next element, 0 at the end, -1 (EPROTO) when the list has another type.
 */
ssize_t attr_iter_init(struct attr_iter *it, struct attr_msg *msg, const char *name);
int attr_iter_u32(struct attr_iter *it, uint32_t *value);
int attr_iter_i64(struct attr_iter *it, int64_t *value);
int attr_iter_str(struct attr_iter *it, const char **value, size_t *len);
int attr_iter_data(struct attr_iter *it, const void **data, size_t *len);

/* Strictness: -1 (EPROTO, reason names it) when any attribute was not read. */
int attr_check_consumed(struct attr_msg *msg);

/* Enumerates attributes in frame order (for logging); 1 per attribute, 0 at the end. */
int attr_walk(const struct attr_msg *msg, size_t *cursor, struct attr_info *info);

#endif
