/*
 * command.c - delivery to a command: "|command" in aliases, .forward and
 * :include: files, and mailbox_command (Postfix's local/command.c and
 * pipe_command.c).
 *
 * The command text is the administrator's or the user's, never mail data:
 * it runs as local_command_shell (split at white space, the command text
 * added as the last argument) or "/bin/sh -c TEXT", with execve. Mail data
 * goes only into the environment (SENDER, RECIPIENT, USER, LOGNAME, LOCAL,
 * DOMAIN, EXTENSION, HOME, SHELL, ORIGINAL_RECIPIENT, ENVID, CLIENT_ADDRESS,
 * CLIENT_HOSTNAME, PATH, plus export_environment) and onto standard input:
 * a From_ line, Return-Path:, X-Original-To:, Delivered-To: (with
 * prepend_delivered_header "command") and the message. The command runs in
 * its own session with the rights given (default_privs for root), in its
 * home directory (else "/"), stdout and stderr captured.
 *
 * Never: waits past command_time_limit (the process group is killed and the
 * mail deferred), keeps more than COMMAND_OUTPUT_MAX bytes of output, passes
 * a descriptor of ours to the command.
 * Outcome by exit status (sysexits.h, Postfix's sys_exits table): 0 sent,
 * EX_TEMPFAIL, EX_OSERR and signals deferred, everything else bounced with
 * the command's output as the reason.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "local.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "strbuf.h"

#define COMMAND_OUTPUT_MAX      2048    /* output kept for the reason text */
#define COMMAND_REASON_MAX      400     /* of which the reason shows this much */
#define COMMAND_ENV_MAX         64
#define COMMAND_ARGV_MAX        32
#define COMMAND_PATH            "PATH=/usr/bin:/bin"

static const struct command_exit {
    int status;
    const char *dsn;
    const char *text;
} command_exits[] = {
    {EX_USAGE, "5.3.0", "command line usage error"},
    {EX_DATAERR, "5.6.0", "data format error"},
    {EX_NOINPUT, "5.3.0", "cannot open input"},
    {EX_NOUSER, "5.1.1", "user unknown"},
    {EX_NOHOST, "5.1.2", "host name unknown"},
    {EX_UNAVAILABLE, "5.3.0", "service unavailable"},
    {EX_SOFTWARE, "5.3.0", "internal software error"},
    {EX_OSERR, "4.3.0", "system resource problem"},
    {EX_OSFILE, "5.3.0", "critical OS file missing"},
    {EX_CANTCREAT, "5.2.0", "can't create user output file"},
    {EX_IOERR, "5.3.0", "input/output error"},
    {EX_TEMPFAIL, "4.3.0", "temporary failure"},
    {EX_PROTOCOL, "5.5.0", "remote error in protocol"},
    {EX_NOPERM, "5.7.0", "permission denied"},
    {EX_CONFIG, "5.3.5", "local configuration error"},
    {0, NULL, NULL},
};

struct command_env {
    char *vars[COMMAND_ENV_MAX + 1];
    int count;
};

static void command_env_add(struct command_env *env, const char *name, const char *value)
{
    size_t n;

    if (value == NULL || env->count >= COMMAND_ENV_MAX)
        return;
    n = strlen(name) + strlen(value) + 2;
    env->vars[env->count] = xmalloc(n);
    snprintf(env->vars[env->count], n, "%s=%s", name, value);
    env->count++;
}

/* export_environment: "NAME" copies our value, "NAME=value" sets one. */
static void command_env_export(struct command_env *env)
{
    char *copy = xstrdup(var_export_environment), *save = NULL, *w;

    for (w = strtok_r(copy, ", \t\r\n", &save); w; w = strtok_r(NULL, ", \t\r\n", &save)) {
        char *eq = strchr(w, '=');

        if (eq) {
            *eq = 0;
            command_env_add(env, w, eq + 1);
        } else {
            command_env_add(env, w, getenv(w));
        }
    }
    free(copy);
}

static void command_env_build(const struct local_state *st, const struct local_user *as,
                              struct command_env *env)
{
    const struct deliver_request *req = st->rq->req;
    const struct deliver_rcpt *r = &req->rcpt[st->rq->rcpt_index];

    env->count = 0;
    command_env_export(env);
    env->vars[env->count++] = xstrdup(COMMAND_PATH);
    command_env_add(env, "HOME", as->home);
    command_env_add(env, "LOGNAME", st->user);
    command_env_add(env, "USER", st->user);
    command_env_add(env, "SENDER", st->sender);
    command_env_add(env, "RECIPIENT", st->address);
    command_env_add(env, "LOCAL", st->local);
    command_env_add(env, "SHELL", as->shell);
    command_env_add(env, "DOMAIN", st->domain);
    command_env_add(env, "EXTENSION", st->extension);
    if (r->orig_rcpt[0])
        command_env_add(env, "ORIGINAL_RECIPIENT", r->orig_rcpt);
    if (req->dsn_envid[0])
        command_env_add(env, "ENVID", req->dsn_envid);
    if (req->client_name && req->client_name[0])
        command_env_add(env, "CLIENT_HOSTNAME", req->client_name);
    if (req->client_addr && req->client_addr[0])
        command_env_add(env, "CLIENT_ADDRESS", req->client_addr);
    env->vars[env->count] = NULL;
}

static void command_env_free(struct command_env *env)
{
    int i;

    for (i = 0; i < env->count; i++)
        free(env->vars[i]);
    env->count = 0;
}

/* argv: local_command_shell words plus the text, or /bin/sh -c text. */
static int command_argv(const char *command, char *words, char *argv[COMMAND_ARGV_MAX + 1])
{
    char *save = NULL, *w;
    int n = 0;

    if (*var_local_command_shell) {
        strcpy(words, var_local_command_shell);
        for (w = strtok_r(words, " \t", &save); w && n < COMMAND_ARGV_MAX - 1;
             w = strtok_r(NULL, " \t", &save))
            argv[n++] = w;
    }
    if (n == 0) {
        argv[n++] = (char *) "/bin/sh";
        argv[n++] = (char *) "-c";
    }
    argv[n++] = (char *) command;
    argv[n] = NULL;
    return n;
}

static long long command_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The child: rights, session, directory, descriptors, exec. Never returns. */
_Noreturn static void command_child(const struct local_user *as, int in, int out,
                                    char *argv[], char *envp[])
{
    const struct local_user *u = privs_effective(as);

    signal(SIGPIPE, SIG_DFL);
    (void) setsid();
    if (privs_become(as) < 0)
        _exit(EX_TEMPFAIL);
    if (u->home == NULL || chdir(u->home) < 0)
        (void) chdir("/");
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(EX_OSERR);
    closefrom(3);
    umask(077);
    execve(argv[0], argv, envp);
    fprintf(stderr, "execve %s: %s\n", argv[0], strerror(errno));
    _exit(EX_OSERR);
}

/* Feeds stdin and reads the output until the command exits or time is up.
 * Returns the wait status, or -1 when the time limit was hit. */
static int command_talk(pid_t pid, int in, int out, const struct deliver_request *req,
                        const struct strbuf *head, struct strbuf *output)
{
    long long deadline = command_now_ms() + var_command_time_limit * 1000LL;
    char buf[65536];
    size_t head_pos = 0, chunk_len = 0, chunk_pos = 0;
    off_t pos = 0;
    int status = 0, in_open = 1, out_open = 1, eof = 0;

    fcntl(in, F_SETFL, O_NONBLOCK);
    while (out_open || in_open) {
        struct pollfd p[2];
        long long left = deadline - command_now_ms();
        int np = 0, iout = -1, iin = -1;

        if (left <= 0)
            goto timeout;
        if (out_open) {
            p[np] = (struct pollfd) {out, POLLIN, 0};
            iout = np++;
        }
        if (in_open) {
            p[np] = (struct pollfd) {in, POLLOUT, 0};
            iin = np++;
        }
        if (poll(p, (nfds_t) np, (int) (left > 1000 ? 1000 : left)) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (iout >= 0 && p[iout].revents) {
            char obuf[4096];
            ssize_t n = read(out, obuf, sizeof(obuf));

            if (n > 0) {
                size_t room = COMMAND_OUTPUT_MAX > output->len ? COMMAND_OUTPUT_MAX - output->len : 0;

                (void) strbuf_append(output, obuf, (size_t) n < room ? (size_t) n : room);
            } else if (n == 0 || errno != EINTR) {
                out_open = 0;
            }
        }
        if (iin >= 0 && p[iin].revents) {
            const char *data;
            size_t len;
            ssize_t n;

            if (head_pos < head->len) {
                data = head->data + head_pos;
                len = head->len - head_pos;
            } else {
                if (chunk_pos == chunk_len && !eof) {
                    ssize_t got = deliver_content_read(req, &pos, buf, sizeof(buf));

                    chunk_pos = 0;
                    chunk_len = got > 0 ? (size_t) got : 0;
                    eof = got <= 0;
                }
                data = buf + chunk_pos;
                len = chunk_len - chunk_pos;
            }
            if (len == 0) {
                close(in);
                in_open = 0;
                continue;
            }
            n = write(in, data, len);
            if (n > 0) {
                if (head_pos < head->len)
                    head_pos += (size_t) n;
                else
                    chunk_pos += (size_t) n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                /* The command stopped reading (EPIPE): its exit status decides. */
                close(in);
                in_open = 0;
            }
        }
    }
    if (in_open) {
        close(in);
        in_open = 0;
    }
    /* Output closed: wait for the exit, still within the time limit. */
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);

        if (w == pid)
            return status;
        if (w < 0 && errno != EINTR)
            return status;
        if (command_now_ms() >= deadline)
            goto timeout;
        poll(NULL, 0, 10);
    }
  timeout:
    if (in_open)
        close(in);
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        continue;
    return -1;
}

/* Output as a one-line reason: control characters become spaces. */
static void command_reason(const struct strbuf *output, struct strbuf *out)
{
    size_t i, n = output->len;
    int space = 0;

    while (n > 0 && (output->data[n - 1] == '\n' || output->data[n - 1] == ' '))
        n--;
    for (i = 0; i < n && out->len < COMMAND_REASON_MAX; i++) {
        unsigned char c = (unsigned char) output->data[i];

        if (c < 0x20 || c == 0x7f) {
            if (!space)
                (void) strbuf_putc(out, ' ');
            space = 1;
            continue;
        }
        space = 0;
        (void) strbuf_putc(out, (char) c);
    }
}

static void command_outcome(const struct local_state *st, const char *command, int status,
                            const struct strbuf *output)
{
    const struct command_exit *e;
    struct strbuf reason;

    if (status < 0) {
        local_result(st, DELIVER_DEFER, "4.3.0", "Command time limit exceeded: \"%s\"", command);
        return;
    }
    if (WIFSIGNALED(status)) {
        local_result(st, DELIVER_DEFER, "4.3.0", "Command died with signal %d: \"%s\"",
                     WTERMSIG(status), command);
        return;
    }
    if (WEXITSTATUS(status) == 0) {
        local_result(st, DELIVER_SENT, "2.0.0", "delivered to command: %s", command);
        return;
    }
    strbuf_init(&reason, 128, STRBUF_UNLIMITED);
    command_reason(output, &reason);
    for (e = command_exits; e->dsn; e++)
        if (e->status == WEXITSTATUS(status))
            break;
    if (reason.len == 0)
        strbuf_puts(&reason, e->dsn ? e->text : "unknown mail system error");
    if (e->dsn && e->dsn[0] == '4')
        local_result(st, DELIVER_DEFER, e->dsn, "%s", reason.data);
    else
        local_result(st, DELIVER_BOUNCE, e->dsn ? e->dsn : "5.3.0", "%s", reason.data);
    strbuf_release(&reason);
}

void command_deliver(struct local_state st, const struct local_user *as, const char *command)
{
    const struct local_user *u = privs_effective(as);
    char *argv[COMMAND_ARGV_MAX + 1], *words;
    struct command_env env;
    struct strbuf head, output, key, q;
    int in[2], out[2], status;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    pid_t pid;

    strbuf_init(&key, 64, STRBUF_UNLIMITED);
    strbuf_printf(&key, "%ld %s", (long) u->uid, command);
    status = local_dup_seen(st.rq, "command", key.data);
    strbuf_release(&key);
    if (status)
        return;
    if (LOCAL_VERIFY(&st)) {
        local_result(&st, DELIVER_SENT, "2.0.0", "delivers to command: %s", command);
        return;
    }
    if (local_is_root() && u->uid == 0) {
        local_result(&st, DELIVER_DEFER, "4.3.0", "mail system configuration error");
        return;
    }
    /* Standard input starts like an mbox message, as Postfix's pipe does. */
    strbuf_init(&head, 512, STRBUF_UNLIMITED);
    strbuf_init(&q, 64, STRBUF_UNLIMITED);
    address_quote(st.sender[0] ? st.sender : "MAILER-DAEMON", &q);
    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
    strbuf_printf(&head, "From %s  %s\n", q.data, date);
    strbuf_release(&q);
    local_prepend(&st, 1, (local_delivered_mask & LOCAL_DELIVERED_COMMAND) != 0, &head);
    strbuf_init(&output, 256, STRBUF_UNLIMITED);
    command_env_build(&st, u, &env);
    words = xmalloc(strlen(var_local_command_shell) + 1);
    command_argv(command, words, argv);
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
        local_result(&st, DELIVER_DEFER, "4.3.0", "cannot run command: %s", strerror(errno));
        goto out;
    }
    if ((pid = fork()) < 0) {
        local_result(&st, DELIVER_DEFER, "4.3.0", "cannot run command: %s", strerror(errno));
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        goto out;
    }
    if (pid == 0)
        command_child(as, in[0], out[1], argv, env.vars);
    close(in[0]);
    close(out[1]);
    status = command_talk(pid, in[1], out[0], st.rq->req, &head, &output);
    close(out[0]);
    command_outcome(&st, command, status, &output);
  out:
    free(words);
    command_env_free(&env);
    strbuf_release(&head);
    strbuf_release(&output);
}
