/*
 * msg.c - log line formatting and output (stderr, syslog, maillog_file, JSON).
 * Each line is written with a single write() on an O_APPEND descriptor, so lines
 * from many processes sharing one maillog_file never interleave; no log daemon
 * hop is needed. Must never allocate on the fatal or panic path, never recurse
 * into itself, and never let a log failure stop mail processing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <sys/time.h>
#include <unistd.h>

#include "msg.h"

#define MSG_LINE_MAX 8192

int msg_verbose;

static char msg_prog[64] = "petrel";
static char msg_syslog_name[64] = "petrel";
static char msg_ident[160] = "petrel";
static int msg_to_stderr = 1;
static int msg_to_syslog;
static int msg_file_fd = -1;
static enum msg_format msg_file_format = MSG_FORMAT_TEXT;
static void (*msg_cleanup)(void);
static int msg_depth;

static const char *const msg_level_prefix[] = {"", "warning: ", "error: ", "fatal: ", "panic: "};
static const char *const msg_level_name[] = {"info", "warning", "error", "fatal", "panic"};
static const int msg_level_syslog[] = {LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT, LOG_CRIT};

static void msg_update_ident(void)
{
    snprintf(msg_ident, sizeof(msg_ident), "%s/%s", msg_syslog_name, msg_prog);
    if (msg_to_syslog) {
        closelog();
        openlog(msg_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
    }
}

void msg_init(const char *program)
{
    const char *slash = strrchr(program, '/');

    snprintf(msg_prog, sizeof(msg_prog), "%s", slash ? slash + 1 : program);
    msg_update_ident();
}

const char *msg_program(void)
{
    return msg_prog;
}

void msg_set_syslog_name(const char *syslog_name)
{
    snprintf(msg_syslog_name, sizeof(msg_syslog_name), "%s", syslog_name);
    msg_update_ident();
}

void msg_use_syslog(void)
{
    if (msg_file_fd >= 0) {
        close(msg_file_fd);
        msg_file_fd = -1;
    }
    msg_to_syslog = 1;
    msg_update_ident();
}

int msg_use_file(const char *path, enum msg_format format)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    if (fd < 0)
        return -1;
    if (msg_file_fd >= 0)
        close(msg_file_fd);
    if (msg_to_syslog) {
        closelog();
        msg_to_syslog = 0;
    }
    msg_file_fd = fd;
    msg_file_format = format;
    return 0;
}

void msg_use_stderr(int on)
{
    msg_to_stderr = on;
}

void msg_set_cleanup(void (*cleanup)(void))
{
    msg_cleanup = cleanup;
}

/* Appends src to buf as JSON string content; returns the new length or -1 when full. */
static int json_escape(char *buf, size_t size, size_t len, const char *src, size_t srclen)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < srclen; i++) {
        unsigned char c = (unsigned char) src[i];
        char esc[7];
        size_t n = 0;

        if (c == '"' || c == '\\') {
            esc[n++] = '\\';
            esc[n++] = (char) c;
        } else if (c < 0x20 || c == 0x7f) {
            esc[n++] = '\\';
            esc[n++] = 'u';
            esc[n++] = '0';
            esc[n++] = '0';
            esc[n++] = hex[c >> 4];
            esc[n++] = hex[c & 15];
        } else {
            esc[n++] = (char) c;
        }
        if (len + n >= size)
            return -1;
        memcpy(buf + len, esc, n);
        len += n;
    }
    buf[len] = '\0';
    return (int) len;
}

static int json_add(char *buf, size_t size, int len, const char *key, const char *val,
                    size_t vallen)
{
    if (len < 0)
        return -1;
    if ((size_t) len + 2 >= size)
        return -1;
    buf[len++] = ',';
    buf[len++] = '"';
    len = json_escape(buf, size, (size_t) len, key, strlen(key));
    if (len < 0 || (size_t) len + 3 >= size)
        return -1;
    memcpy(buf + len, "\":\"", 3);
    len += 3;
    len = json_escape(buf, size, (size_t) len, val, vallen);
    if (len < 0 || (size_t) len + 1 >= size)
        return -1;
    buf[len++] = '"';
    buf[len] = '\0';
    return len;
}

/* Queue IDs use this alphabet (see qid.h): no vowels, so no word passes as one. */
#define MSG_QID_CHARS "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"
#define MSG_QID_MIN_LEN 11

/* Length of a "key=" at text, or 0. Keys are lowercase words as in Postfix logs. */
static size_t json_key_len(const char *text)
{
    size_t n = 0;

    while ((text[n] >= 'a' && text[n] <= 'z') || text[n] == '_' || text[n] == '-'
           || (n > 0 && text[n] >= '0' && text[n] <= '9'))
        n++;
    return (n > 0 && text[n] == '=') ? n : 0;
}

/* Length of a value: <...>, (...) or [...] balanced, else up to ", " or end. */
static size_t json_value_len(const char *text)
{
    const char *open = "<([", *close = ">)]";
    const char *p = strchr(open, text[0]);
    size_t n = 0;

    if (text[0] && p) {
        char o = *p, c = close[p - open];
        int depth = 0;

        for (n = 0; text[n]; n++) {
            if (text[n] == o)
                depth++;
            else if (text[n] == c && --depth == 0)
                return n + 1;
        }
        return n;
    }
    while (text[n] && text[n] != ',' && text[n] != ' ')
        n++;
    return n;
}

int msg_format_json(char *buf, size_t size, const char *timestamp, const char *host,
                    const char *ident, long pid, enum msg_level level, const char *text)
{
    char pidbuf[32];
    const char *p = text;
    size_t n;
    int len;

    if (size < 2)
        return -1;
    snprintf(pidbuf, sizeof(pidbuf), "%ld", pid);
    strcpy(buf, "{\"time\":\"");
    len = json_escape(buf, size, strlen(buf), timestamp, strlen(timestamp));
    if (len < 0 || (size_t) len + 1 >= size)
        return -1;
    buf[len++] = '"';
    buf[len] = '\0';
    len = json_add(buf, size, len, "host", host, strlen(host));
    len = json_add(buf, size, len, "program", ident, strlen(ident));
    len = json_add(buf, size, len, "pid", pidbuf, strlen(pidbuf));
    len = json_add(buf, size, len, "severity", msg_level_name[level],
                   strlen(msg_level_name[level]));

    /* "QUEUEID: rest" or "NOQUEUE: rest" names the message the line is about. */
    n = strspn(p, MSG_QID_CHARS);
    if (n >= MSG_QID_MIN_LEN && p[n] == ':' && p[n + 1] == ' ') {
        len = json_add(buf, size, len, "queue_id", p, n);
        p += n + 2;
    } else if (strncmp(p, "NOQUEUE: ", 9) == 0) {
        len = json_add(buf, size, len, "queue_id", "NOQUEUE", 7);
        p += 9;
    }
    len = json_add(buf, size, len, "message", p, strlen(p));

    /* Each "key=value" becomes a field; a "(...)" right after a value is its detail. */
    while (*p && len >= 0) {
        size_t klen = json_key_len(p);

        if (klen == 0) {
            p++;
            continue;
        }
        {
            char key[64];
            const char *val = p + klen + 1;
            size_t vlen = json_value_len(val);

            snprintf(key, sizeof(key), "%.*s", (int) (klen < 48 ? klen : 48), p);
            if (vlen >= 2 && ((val[0] == '<' && val[vlen - 1] == '>')
                              || (val[0] == '(' && val[vlen - 1] == ')')))
                len = json_add(buf, size, len, key, val + 1, vlen - 2);
            else
                len = json_add(buf, size, len, key, val, vlen);
            p = val + vlen;
            if (p[0] == ' ' && p[1] == '(') {
                size_t dlen = json_value_len(p + 1);

                if (dlen >= 2 && p[dlen] == ')') {
                    char dkey[80];

                    snprintf(dkey, sizeof(dkey), "%s_detail", key);
                    len = json_add(buf, size, len, dkey, p + 2, dlen - 2);
                }
                p += 1 + dlen;
            }
        }
    }
    if (len < 0 || (size_t) len + 2 >= size)
        return -1;
    buf[len++] = '}';
    buf[len] = '\0';
    return len;
}

static void msg_write_file(enum msg_level level, const char *text)
{
    static char line[MSG_LINE_MAX * 2 + 1024];
    char host[256] = "localhost", stamp[64];
    struct timeval tv;
    struct tm tm;
    int len;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    if (msg_file_format == MSG_FORMAT_JSON) {
        char iso[40];

        strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(stamp, sizeof(stamp), "%s.%06ld", iso, (long) tv.tv_usec);
        len = msg_format_json(line, sizeof(line) - 1, stamp, host, msg_ident,
                              (long) getpid(), level, text);
        if (len < 0)
            return;
    } else {
        strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
        len = snprintf(line, sizeof(line) - 1, "%s %s %s[%ld]: %s%s", stamp, host,
                       msg_ident, (long) getpid(), msg_level_prefix[level], text);
        if (len < 0)
            return;
        if ((size_t) len > sizeof(line) - 2)
            len = (int) sizeof(line) - 2;
    }
    line[len++] = '\n';
    (void) !write(msg_file_fd, line, (size_t) len);
}

void msg_vlog(enum msg_level level, const char *fmt, va_list ap)
{
    char text[MSG_LINE_MAX];
    int saved_errno = errno;
    size_t i;

    if (msg_depth > 0)
        return;
    msg_depth++;
    errno = saved_errno;
    vsnprintf(text, sizeof(text), fmt, ap);
    /* A log line never carries a raw control character: CR/LF would forge lines. */
    for (i = 0; text[i]; i++)
        if ((unsigned char) text[i] < 0x20 && text[i] != '\t')
            text[i] = '?';
    if (msg_to_stderr)
        dprintf(2, "%s: %s%s\n", msg_ident, msg_level_prefix[level], text);
    if (msg_to_syslog)
        syslog(msg_level_syslog[level], "%s%s", msg_level_prefix[level], text);
    if (msg_file_fd >= 0)
        msg_write_file(level, text);
    msg_depth--;
    errno = saved_errno;
}

#define MSG_FORWARD(level) do { va_list ap; va_start(ap, fmt); \
        msg_vlog(level, fmt, ap); va_end(ap); } while (0)

void msg_info(const char *fmt, ...)
{
    MSG_FORWARD(MSG_INFO);
}

void msg_warn(const char *fmt, ...)
{
    MSG_FORWARD(MSG_WARN);
}

void msg_error(const char *fmt, ...)
{
    MSG_FORWARD(MSG_ERROR);
}

noreturn void msg_fatal_status(int status, const char *fmt, ...)
{
    static int dying;

    MSG_FORWARD(MSG_FATAL);
    if (!dying++ && msg_cleanup)
        msg_cleanup();
    exit(status);
}

noreturn void msg_fatal(const char *fmt, ...)
{
    static int dying;

    MSG_FORWARD(MSG_FATAL);
    if (!dying++ && msg_cleanup)
        msg_cleanup();
    exit(1);
}

noreturn void msg_panic(const char *fmt, ...)
{
    MSG_FORWARD(MSG_PANIC);
    abort();
}
