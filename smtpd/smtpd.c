/*
 * smtpd.c - the Petrel SMTP server (Postfix smtpd(8) semantics).
 *
 * SUMMARY
 *	smtpd [skeleton options]	run by master(8), one session per connection
 *	smtpd -S [-c config_dir] [-v]	stand-alone: one session on stdin/stdout
 *
 * DESCRIPTION
 *	A SINGLE-mode program on the daemon skeleton (util/server.h): master
 *	hands it accepted connections; each worker serves max_use sessions. The
 *	session (smtpd_session.c) speaks RFC 5321 with PIPELINING, SIZE,
 *	8BITMIME, BINARYMIME, CHUNKING, DSN, SMTPUTF8, ENHANCEDSTATUSCODES and
 *	ETRN (and AUTH with Cyrus SASL, smtpd_sasl.c), applies the
 *	restrictions of smtpd_check.h at each stage, and hands
 *	each message to cleanup, which answers only after the queue file is
 *	durable.
 *
 *	Stand-alone mode is "sendmail -bs": no master, no access restrictions,
 *	the local client identity, and every message submitted through
 *	petrel-drop (util/maildrop.h), so it works while the mail system is
 *	stopped.
 *
 * SECURITY
 *	Moderately security-sensitive: talks to arbitrary network clients.
 *	Runs as mail_owner after the skeleton drops privileges; every input is
 *	bounded by line_length_limit, message_size_limit, the recipient and
 *	error limits and smtpd_timeout.
 *
 * PARAMETERS
 *	smtpd_banner, myhostname, mail_name, line_length_limit, smtpd_timeout,
 *	smtpd_min_data_rate,
 *	message_size_limit, message_total_size_limit, smtpd_recipient_limit,
 *	smtpd_hard_error_limit, smtpd_soft_error_limit, smtpd_error_sleep_time,
 *	smtpd_junk_command_limit, smtpd_helo_required, disable_vrfy_command,
 *	smtputf8_enable, strict_rfc821_envelopes, smtpd_discard_ehlo_keywords,
 *	smtpd_forbid_bare_newline, smtpd_forbid_bare_newline_exclusions,
 *	smtpd_forbid_unauth_pipelining, smtpd_peername_lookup,
 *	smtpd_client_port_logging, cleanup_service_name, queue_service_name,
 *	the TLS parameters read by smtpd_tls.c (smtpd_tls_security_level,
 *	smtpd_tls_cert_file, smtpd_tls_key_file, smtpd_tls_CAfile,
 *	smtpd_tls_CApath, smtpd_tls_protocols, smtpd_tls_mandatory_protocols,
 *	smtpd_tls_ciphers, smtpd_tls_mandatory_ciphers,
 *	smtpd_tls_exclude_ciphers, smtpd_tls_mandatory_exclude_ciphers,
 *	smtpd_tls_wrappermode, smtpd_starttls_timeout, smtpd_tls_loglevel,
 *	smtpd_tls_received_header, smtpd_tls_ask_ccert, smtpd_tls_req_ccert,
 *	smtpd_tls_ccert_verifydepth),
 *	the smtpd_sasl_* parameters with cyrus_sasl_config_path,
 *	smtpd_tls_auth_only and broken_sasl_auth_clients (smtpd_sasl.c),
 *	and the restriction lists read by smtpd_check.c.
 *
 * DIAGNOSTICS
 *	Postfix's log lines: "connect from", "QUEUEID: client=", "disconnect from
 *	... commands=N", "lost connection after X", "timeout after X",
 *	"improper command pipelining after X", "SSL_accept error from X: why",
 *	"Anonymous TLS connection established from X: ..." (smtpd_tls_loglevel 1). Configuration errors are fatal at
 *	start (exit 1: master throttles the service).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "match_list.h"
#include "msg.h"
#include "params.h"
#include "server.h"
#include "smtpd.h"
#include "stream.h"

static struct match_list *smtpd_bare_exclusions;
static int smtpd_bare_reject;           /* smtpd_forbid_bare_newline = reject */

static void smtpd_bare_init(void)
{
    const char *v = var_smtpd_forbid_bare_newline ? var_smtpd_forbid_bare_newline : "";
    struct strbuf err;

    if (strcasecmp(v, "reject") == 0)
        smtpd_bare_reject = 1;
    else if (strcasecmp(v, "normalize") == 0 || strcasecmp(v, "yes") == 0
             || strcasecmp(v, "no") == 0)
        /* "no" keeps Postfix's old leniency for line ends only: a bare LF still
         * never ends DATA (INTERFACE.md section 7). */
        smtpd_bare_reject = 0;
    else
        msg_fatal("smtpd_forbid_bare_newline: unknown value \"%s\": "
                  "use reject, normalize or no", v);
    if (!smtpd_bare_reject || var_smtpd_forbid_bare_newline_exclusions == NULL
        || *var_smtpd_forbid_bare_newline_exclusions == '\0')
        return;
    strbuf_init(&err, 128, 1024);
    smtpd_bare_exclusions = match_list_open("smtpd_forbid_bare_newline_exclusions",
                                            MATCH_LIST_NAMADR,
                                            var_smtpd_forbid_bare_newline_exclusions, &err);
    if (smtpd_bare_exclusions == NULL)
        msg_fatal("%s", err.data);
    strbuf_release(&err);
}

static enum smtpd_bare_mode smtpd_bare_mode_for(const struct smtpd_session *s)
{
    if (!smtpd_bare_reject)
        return SMTPD_BARE_NORMALIZE;
    /* A table failure keeps the strict setting: rejecting is the safe side. */
    if (smtpd_bare_exclusions && match_list_host(smtpd_bare_exclusions, s->name, s->addr) == 1)
        return SMTPD_BARE_NORMALIZE;
    return SMTPD_BARE_REJECT;
}

/* As root, before chroot: the TLS key may be readable by root only. */
static void smtpd_pre_init(const struct server_ctx *ctx)
{
    (void) ctx;
    smtpd_tls_init();
}

static void smtpd_post_init(const struct server_ctx *ctx)
{
    (void) ctx;
    smtpd_peer_init();
    smtpd_milter_init();
    smtpd_bare_init();
    smtpd_check_init();
    smtpd_sasl_init();
}

/*
 * Closes gracefully: a client that still had commands in flight (an early
 * talker, a pipelining violation) would otherwise get a TCP reset that can
 * destroy our last reply before it reads it. Bounded: 64 reads, 200 ms each.
 */
static void smtpd_linger(int fd)
{
    char buf[4096];
    int i;

    (void) shutdown(fd, SHUT_WR);
    for (i = 0; i < 64; i++) {
        struct pollfd p = {fd, POLLIN, 0};

        if (poll(&p, 1, 200) <= 0 || recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
            break;
    }
}

static void smtpd_service(int fd, const struct server_ctx *ctx)
{
    struct smtpd_session s;
    struct stream *client = stream_fdopen(fd, STREAM_F_NOCLOSE);

    smtpd_session_init(&s, client, 0, ctx->service);
    smtpd_peer_lookup(&s, fd);
    s.bare_mode = smtpd_bare_mode_for(&s);
    s.ext_offered = smtpd_ehlo_offered();
    smtpd_session_run(&s);
    smtpd_session_free(&s);
    (void) stream_close(&client);
    smtpd_linger(fd);
}

/* --- stand-alone mode ------------------------------------------------------ */

/* Reads standard input, writes standard output: one stream over two descriptors. */
static ssize_t smtpd_stdio_read(void *ctx, int fd, void *buf, size_t len)
{
    ssize_t n;

    (void) ctx;
    n = read(fd, buf, len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return STREAM_IO_WANT_READ;
    return n;
}

static ssize_t smtpd_stdio_write(void *ctx, int fd, const void *buf, size_t len)
{
    ssize_t n;

    (void) ctx;
    (void) fd;
    n = write(STDOUT_FILENO, buf, len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return STREAM_IO_WANT_WRITE;
    return n;
}

static const struct stream_io smtpd_stdio = {smtpd_stdio_read, smtpd_stdio_write, NULL, NULL};

_Noreturn static void smtpd_standalone(int argc, char **argv)
{
    struct smtpd_session s;
    struct stream *client;
    struct sigaction sa;
    int ch;

    msg_init("smtpd");
    optind = 1;
    while ((ch = getopt(argc, argv, "c:Sv")) != -1) {
        switch (ch) {
        case 'c':
            config_set_dir(optarg);
            break;
        case 'S':
            break;
        case 'v':
            msg_verbose++;
            break;
        default:
            msg_fatal("usage: smtpd -S [-c config_dir] [-v]");
        }
    }
    config_load();
    server_log_open(0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    client = stream_open_io(STDIN_FILENO, &smtpd_stdio, NULL, STREAM_F_NOCLOSE);
    smtpd_session_init(&s, client, 1, "sendmail");
    smtpd_peer_local(&s);
    s.bare_mode = SMTPD_BARE_NORMALIZE;         /* a local user's own client */
    s.ext_offered = smtpd_ehlo_offered();
    smtpd_session_run(&s);
    smtpd_session_free(&s);
    (void) stream_close(&client);
    exit(0);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .mode = SERVER_SINGLE,
        .pre_init = smtpd_pre_init,
        .post_init = smtpd_post_init,
        .service = smtpd_service,
    };
    int i;

    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "-S") == 0)
            smtpd_standalone(argc, argv);
    server_main(argc, argv, &ops);
}
