/*
 * ipc.h - attribute frames over Unix-domain stream sockets.
 * Moves one util/attr.h frame at a time, with its file descriptors
 * (SCM_RIGHTS), between Petrel processes. Every wait is bounded: a timeout is
 * a deadline for the whole frame, not per read, so a peer that trickles bytes
 * cannot hold a process. Never raises SIGPIPE, never leaves a descriptor
 * without close-on-exec, never reads past the end of the current frame.
 *
 * Failure: -1 with errno. ETIMEDOUT (deadline passed), EMSGSIZE (frame over
 * the limit), EPROTO (malformed frame; attr_msg_reason() says why),
 * ECONNRESET (peer closed inside a frame), EPIPE (peer closed between frames,
 * or is gone when sending), EINVAL (bad service name or a string the builder
 * refused), or the errno of the failing system call. After any receive error
 * the connection is out of step and must be closed.
 * A negative timeout is a caller bug and panics.
 */
#ifndef PETREL_IPC_H
#define PETREL_IPC_H

#include <stddef.h>

#include "attr.h"

/* The "status" every response carries (docs/ipc.md). */
#define IPC_STATUS_OK       0   /* done */
#define IPC_STATUS_DEFER    1   /* temporary failure; try later */
#define IPC_STATUS_REJECT   2   /* permanent failure */
#define IPC_STATUS_BADREQ   3   /* request not understood; a Petrel bug */

#define IPC_CLASS_PRIVATE   "private"
#define IPC_CLASS_PUBLIC    "public"

/* Sends a finished frame and its descriptors; the message is left unchanged. */
int ipc_send(int fd, struct attr_msg *msg, int timeout_ms);
/*
 * Resets msg and receives one frame into it. max_frame, when not 0, replaces
 * the message's frame limit for this frame.
 */
int ipc_recv(int fd, struct attr_msg *msg, size_t max_frame, int timeout_ms);

/*
 * Event-loop forms: never wait. ipc_send_nb() resumes at *offset (start at 0);
 * ipc_recv_nb() continues the frame msg holds (start with a reset message).
 * Both return 1 when the frame is complete, 0 when the socket would block,
 * -1 on error.
 */
int ipc_send_nb(int fd, struct attr_msg *msg, size_t *offset);
int ipc_recv_nb(int fd, struct attr_msg *msg);

/*
 * Connects to class/service relative to the current directory (daemons run
 * in queue_directory); class is IPC_CLASS_PRIVATE or IPC_CLASS_PUBLIC.
 * ipc_connect_path() takes any socket path. The descriptor returned is
 * non-blocking and close-on-exec.
 */
int ipc_connect(const char *class, const char *service, int timeout_ms);
int ipc_connect_path(const char *path, int timeout_ms);

/*
 * Listens on path (a stale socket there is replaced; any other file is not).
 * ipc_accept() waits up to timeout_ms for one client.
 */
int ipc_listen(const char *path, int backlog);
int ipc_accept(int listen_fd, int timeout_ms);

/* One-shot client: connect, send req, receive resp, close; one deadline for all. */
int ipc_call(const char *class, const char *service, struct attr_msg *req,
             struct attr_msg *resp, size_t max_frame, int timeout_ms);

#endif
