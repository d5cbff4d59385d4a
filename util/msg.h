/*
 * msg.h - diagnostics for every Petrel program.
 * Lines have Postfix's shape, "petrel/PROGRAM[PID]: text", so log tools such as
 * pflogsumm keep working; text that concerns a message starts with "QUEUEID: ".
 * msg_fatal is for administrator errors (exit 1), msg_panic for our own bugs
 * (abort, core dump). Never pass network data as the format string.
 */
#ifndef PETREL_MSG_H
#define PETREL_MSG_H

#include <stdarg.h>
#include <stdnoreturn.h>

enum msg_level { MSG_INFO, MSG_WARN, MSG_ERROR, MSG_FATAL, MSG_PANIC };
enum msg_format { MSG_FORMAT_TEXT, MSG_FORMAT_JSON };

extern int msg_verbose;

/* Sets the program name ("smtpd"); output goes to stderr until told otherwise. */
void msg_init(const char *program);
const char *msg_program(void);
/* The "petrel" in "petrel/smtpd"; from syslog_name. */
void msg_set_syslog_name(const char *syslog_name);
/* Sends output to syslog (facility mail), replacing any file output. */
void msg_use_syslog(void);
/* Appends output to a file (maillog_file); returns -1 with errno on failure. */
int msg_use_file(const char *path, enum msg_format format);
/* Keeps (on = 1) or stops a copy of every line on stderr. */
void msg_use_stderr(int on);
/* Runs before exit on msg_fatal; for removing half-made files. */
void msg_set_cleanup(void (*cleanup)(void));

void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void msg_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void msg_fatal_status(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
noreturn void msg_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_vlog(enum msg_level level, const char *fmt, va_list ap);

/* Formats one log record as a JSON object (no newline); for the file backend and tests. */
int msg_format_json(char *buf, size_t size, const char *timestamp, const char *host,
                    const char *ident, long pid, enum msg_level level, const char *text);

#endif
