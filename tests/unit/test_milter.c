/*
 * test_milter.c - the milter packet codec and the milter client.
 * Codec: every reply type decoded from hand-written packets, and the same
 * packets one byte short, one byte long, without their NUL; the packet
 * length limit and limit+1; REPLYCODE checks and '%' handling; OPTNEG with
 * macro lists. Client: list syntax with per-milter settings, and sessions
 * against a scripted filter in a child process on a unix socket: the
 * negotiation (a filter asking for more than offered is refused), macros,
 * header leading space, NR_* flags, end-of-message edits, REPLYCODE,
 * a filter that sleeps past its timeout, one that closes, one that sends
 * garbage: each gives its default action.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "ipc.h"
#include "milter.h"
#include "milter_proto.h"
#include "params.h"
#include "strbuf.h"

/* --- Codec ----------------------------------------------------------------- */

static int decode(int cmd, const char *bytes, size_t len, struct milter_reply *r)
{
    static char buf[256];
    const char *why;

    memcpy(buf, bytes, len);
    buf[len] = 0;
    return milter_reply_decode(cmd, buf, len, r, &why);
}

static void test_decode_simple(void **state)
{
    struct milter_reply r;
    const char *simple = "acdrtps4f";
    size_t i;

    for (i = 0; simple[i]; i++) {
        assert_int_equal(decode(simple[i], "", 0, &r), 0);
        assert_int_equal(r.cmd, simple[i]);
        assert_int_equal(decode(simple[i], "x", 1, &r), -1);    /* bytes left over */
    }
    assert_int_equal(decode('Z', "", 0, &r), -1);
    assert_int_equal(decode(0, "", 0, &r), -1);
}

static void test_decode_headers(void **state)
{
    struct milter_reply r;

    assert_int_equal(decode('h', "X-Spam\0yes\0", 11, &r), 0);
    assert_string_equal(r.name, "X-Spam");
    assert_string_equal(r.value, "yes");
    assert_int_equal(decode('h', "X-Spam\0yes", 10, &r), -1);   /* no final NUL */
    assert_int_equal(decode('h', "X-Spam\0yes\0x", 12, &r), -1);
    assert_int_equal(decode('h', "X-Spam", 6, &r), -1);
    assert_int_equal(decode('h', "\0v\0", 3, &r), -1);          /* empty name */
    assert_int_equal(decode('h', "X:S\0v\0", 6, &r), -1);       /* colon in name */
    assert_int_equal(decode('h', "X S\0v\0", 6, &r), -1);       /* space in name */
    assert_int_equal(decode('i', "\0\0\0\2X-A\0v\0", 10, &r), 0);
    assert_int_equal(r.index, 2);
    assert_string_equal(r.name, "X-A");
    assert_int_equal(decode('i', "\0\0\2", 3, &r), -1);
    assert_int_equal(decode('m', "\0\0\0\1Subject\0\0", 13, &r), 0);
    assert_int_equal(r.index, 1);
    assert_string_equal(r.value, "");                           /* delete */
    assert_int_equal(decode('m', "\0\0\0", 3, &r), -1);
}

static void test_decode_envelope(void **state)
{
    struct milter_reply r;

    assert_int_equal(decode('+', "<a@b>\0", 6, &r), 0);
    assert_string_equal(r.name, "<a@b>");
    assert_int_equal(decode('+', "<a@b>", 5, &r), -1);
    assert_int_equal(decode('-', "<a@b>\0\0", 7, &r), -1);
    assert_int_equal(decode('2', "<a@b>\0NOTIFY=NEVER\0", 19, &r), 0);
    assert_string_equal(r.value, "NOTIFY=NEVER");
    assert_int_equal(decode('e', "<s@x>\0", 6, &r), 0);
    assert_null(r.value);
    assert_int_equal(decode('e', "<s@x>\0SIZE=1\0", 13, &r), 0);
    assert_string_equal(r.value, "SIZE=1");
    assert_int_equal(decode('e', "<s@x>\0SIZE=1", 12, &r), -1);
    assert_int_equal(decode('b', "any\0bytes\r\n", 11, &r), 0);
    assert_int_equal(r.len, 11);
    assert_int_equal(decode('q', "spam\0", 5, &r), 0);
    assert_string_equal(r.text, "spam");
    assert_int_equal(decode('q', "spam", 4, &r), -1);
}

static void test_replycode(void **state)
{
    struct milter_reply r;
    static const struct {
        const char *text;
        int ok;
    } cases[] = {
        {"550 5.7.1 go away", 1},
        {"451 4.7.1 later", 1},
        {"550", 1},
        {"250 ok", 0},
        {"55 x", 0},
        {"550x", 0},
        {"550-5.7.1 one\r\n550 5.7.1 two", 1},
        {"550-one\r\n551 two", 0},              /* codes differ */
        {"550 one\r\n550 two", 0},              /* "code " before the last line */
        {"550-one\r\n550-two", 0},              /* last line has '-' */
        {"550 bare\nLF", 0},
        {"550 bare\rCR", 0},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if ((milter_replycode_valid(cases[i].text) == 0) != cases[i].ok)
            fail_msg("%s: want %s", cases[i].text, cases[i].ok ? "valid" : "invalid");
    assert_int_equal(decode('y', "550 5.7.1 100%% sure\0", 21, &r), 0);
    assert_string_equal(r.text, "550 5.7.1 100% sure");
    assert_int_equal(decode('y', "550 5.7.1 a%b\0", 14, &r), 0);
    assert_string_equal(r.text, "550 5.7.1 ab");
    assert_int_equal(decode('y', "250 ok\0", 7, &r), -1);
    assert_int_equal(decode('y', "550 x", 5, &r), -1);
}

static void test_optneg(void **state)
{
    char buf[128];
    struct milter_optneg o;
    const char *why;
    static const char base[12] = {0, 0, 0, 6, 0, 0, 0, 0x21, 0, 0, 0, 0x10};

    memcpy(buf, base, 12);
    assert_int_equal(milter_optneg_decode(buf, 12, &o, &why), 0);
    assert_int_equal(o.version, 6);
    assert_int_equal(o.actions, 0x21);
    assert_int_equal(o.protocol, 0x10);
    assert_int_equal(milter_optneg_decode(buf, 11, &o, &why), -1);
    memcpy(buf + 12, "\0\0\0\2{mail_addr} i\0", 18);
    assert_int_equal(milter_optneg_decode(buf, 30, &o, &why), 0);
    assert_string_equal(o.symlist[MILTER_STAGE_MAIL], "{mail_addr} i");
    assert_int_equal(milter_optneg_decode(buf, 29, &o, &why), -1);      /* no NUL */
    assert_int_equal(milter_optneg_decode(buf, 14, &o, &why), -1);      /* half a stage */
    buf[15] = 7;                                                        /* no such stage */
    assert_int_equal(milter_optneg_decode(buf, 30, &o, &why), -1);
    buf[15] = 2;
    memcpy(buf + 30, buf + 12, 18);                                     /* stage twice */
    assert_int_equal(milter_optneg_decode(buf, 48, &o, &why), -1);
}

static void test_pkt(void **state)
{
    struct strbuf pkt;
    size_t start, len;
    unsigned char hdr[4] = {0, 0, 0, 0};

    strbuf_init(&pkt, 16, STRBUF_UNLIMITED);
    start = milter_pkt_begin(&pkt, 'H');
    milter_pkt_str(&pkt, "mx");
    assert_int_equal(milter_pkt_end(&pkt, start), 0);
    assert_int_equal(pkt.len, 8);
    assert_memory_equal(pkt.data, "\0\0\0\4Hmx\0", 8);
    assert_int_equal(milter_pkt_length(hdr, &len), -1);
    hdr[3] = 1;
    assert_int_equal(milter_pkt_length(hdr, &len), 0);
    assert_int_equal(len, 1);
    hdr[1] = (MILTER_PKT_MAX >> 16) & 0xff;
    hdr[2] = (MILTER_PKT_MAX >> 8) & 0xff;
    hdr[3] = MILTER_PKT_MAX & 0xff;
    assert_int_equal(milter_pkt_length(hdr, &len), 0);
    hdr[3]++;
    assert_int_equal(milter_pkt_length(hdr, &len), -1);
    strbuf_release(&pkt);
}

/* --- List syntax ------------------------------------------------------------ */

static int setup_params(void **state)
{
    var_milter_connect_macros = "j {daemon_name} v";
    var_milter_helo_macros = "{tls_version}";
    var_milter_mail_macros = "i {mail_addr}";
    var_milter_rcpt_macros = "i {rcpt_addr}";
    var_milter_data_macros = "i";
    var_milter_end_of_header_macros = "i";
    var_milter_end_of_data_macros = "i";
    var_milter_unknown_command_macros = "";
    var_milter_default_action = "tempfail";
    var_milter_protocol = "6";
    var_milter_connect_timeout = 5;
    var_milter_command_timeout = 2;
    var_milter_content_timeout = 2;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static void test_list_syntax(void **state)
{
    static const struct {
        const char *spec;
        size_t count;                   /* 0: error */
    } cases[] = {
        {"inet:127.0.0.1:8891", 1},
        {"unix:/run/a.sock, inet6:[::1]:9", 2},
        {"{ inet:127.0.0.1:8891, connect_timeout=5s, default_action=accept }", 1},
        {"{inet:127.0.0.1:1,command_timeout=1m,content_timeout=2m,protocol=2} unix:/x", 2},
        {"{ inet:127.0.0.1:1, default_action=bounce }", 0},
        {"{ inet:127.0.0.1:1, protocol=7 }", 0},
        {"{ inet:127.0.0.1:1, colour=red }", 0},
        {"{ inet:127.0.0.1:1, connect_timeout=x }", 0},
        {"{ inet:127.0.0.1:1", 0},
        {"{ }", 0},
        {"tcp:127.0.0.1:1", 0},
        {"unix:", 0},
        {"", 0},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct strbuf why;
        struct milters *ms;

        strbuf_init(&why, 64, STRBUF_UNLIMITED);
        ms = milters_create(cases[i].spec, &why);
        if (milters_count(ms) != cases[i].count)
            fail_msg("%s: got %zu milters want %zu (%s)", cases[i].spec, milters_count(ms),
                     cases[i].count, why.data);
        if (cases[i].count == 0 && cases[i].spec[0] && why.len == 0)
            fail_msg("%s: no reason given", cases[i].spec);
        milters_free(&ms);
        strbuf_release(&why);
    }
    {
        static const struct {
            const char *spec;
            int ok;
        } defaults[] = {
            {"", 1},
            {"auth_type=none", 1},
            {"{auth_type}=none, {j}=x.example", 1},
            {"{ site = main office } , a=b", 1},
            {"a=", 1},
            {"auth_type", 0},
            {"=x", 0},
            {"{ = x }", 0},
            {"{site=x", 0},
            {"{}=x", 0},
        };
        struct strbuf why;

        strbuf_init(&why, 64, STRBUF_UNLIMITED);
        for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
            strbuf_reset(&why);
            if (milter_macro_defaults_valid(defaults[i].spec, &why) != defaults[i].ok)
                fail_msg("milter_macro_defaults = %s: got %d want %d (%s)", defaults[i].spec,
                         !defaults[i].ok, defaults[i].ok, why.data);
            if (!defaults[i].ok && why.len == 0)
                fail_msg("milter_macro_defaults = %s: no reason", defaults[i].spec);
        }
        strbuf_release(&why);
    }
    assert_true(milter_default_action_valid("quarantine"));
    assert_true(milter_default_action_valid("shutdown"));
    assert_false(milter_default_action_valid("discard"));
}

/* --- A scripted filter ------------------------------------------------------ */

struct script {
    uint32_t actions, protocol;
    const char *symlist;                /* MAIL-stage list, or NULL */
    int reply_cmd;                      /* which command gets the special replies */
    const char *replies;                /* packets, each "\xLL" length-prefixed below */
    size_t replies_len;
    int sleep_secs;                     /* before answering reply_cmd */
    int close_at;                       /* exit instead of answering this command */
};

static char sock_path[108], log_path[128];

static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);

        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

static void send_pkt(int fd, int cmd, const void *data, size_t len)
{
    unsigned char hdr[5] = {(unsigned char) ((len + 1) >> 24), (unsigned char) ((len + 1) >> 16),
                            (unsigned char) ((len + 1) >> 8), (unsigned char) (len + 1),
                            (unsigned char) cmd};

    if (write(fd, hdr, 5) != 5 || (len && write(fd, data, len) != (ssize_t) len))
        _exit(3);
}

static void filter_child(int lfd, const struct script *sc)
{
    FILE *log = fopen(log_path, "w");
    int fd = accept(lfd, NULL, NULL);

    if (fd < 0 || log == NULL)
        _exit(2);
    for (;;) {
        unsigned char hdr[4];
        static char data[2 * 1024 * 1024];
        uint32_t len;

        if (read_all(fd, hdr, 4) < 0)
            break;
        len = ((uint32_t) hdr[0] << 24) | ((uint32_t) hdr[1] << 16) | ((uint32_t) hdr[2] << 8)
            | hdr[3];
        if (len == 0 || len > sizeof(data) || read_all(fd, data, len) < 0)
            break;
        /* Log each packet: command, then the payload with NULs as '|'. */
        {
            uint32_t i;

            fputc(data[0], log);
            fputc(':', log);
            for (i = 1; i < len; i++)
                fputc(data[i] == 0 ? '|' : data[i] == '\r' ? '~' : data[i], log);
            fputc('\n', log);
            fflush(log);
        }
        if (data[0] == SMFIC_OPTNEG) {
            char o[64];
            size_t n = 12;
            uint32_t v[3] = {htonl(6), htonl(sc->actions), htonl(sc->protocol)};

            memcpy(o, v, 12);
            if (sc->symlist) {
                uint32_t st = htonl(MILTER_STAGE_MAIL);

                memcpy(o + 12, &st, 4);
                memcpy(o + 16, sc->symlist, strlen(sc->symlist) + 1);
                n = 16 + strlen(sc->symlist) + 1;
            }
            send_pkt(fd, SMFIC_OPTNEG, o, n);
            continue;
        }
        if (data[0] == SMFIC_MACRO || data[0] == SMFIC_ABORT)
            continue;
        if (data[0] == SMFIC_QUIT)
            break;
        if (data[0] == sc->close_at)
            _exit(0);
        /* NR_* for the stage: no reply. */
        if ((data[0] == SMFIC_HEADER && (sc->protocol & SMFIP_NR_HDR))
            || (data[0] == SMFIC_RCPT && (sc->protocol & SMFIP_NR_RCPT)))
            continue;
        if (data[0] == sc->reply_cmd) {
            size_t off = 0;

            if (sc->sleep_secs)
                sleep((unsigned) sc->sleep_secs);
            while (off < sc->replies_len) {
                /* Each scripted reply: 1 byte length of payload, cmd, payload. */
                size_t plen = (unsigned char) sc->replies[off];
                int cmd = sc->replies[off + 1];

                if (cmd == '!') {               /* raw garbage bytes */
                    if (write(fd, sc->replies + off + 2, plen) < 0)
                        _exit(3);
                } else {
                    send_pkt(fd, cmd, sc->replies + off + 2, plen);
                }
                off += 2 + plen;
            }
            continue;
        }
        send_pkt(fd, SMFIR_CONTINUE, NULL, 0);
    }
    fclose(log);
    _exit(0);
}

static pid_t filter_start(const struct script *sc)
{
    struct sockaddr_un sun;
    int lfd;
    pid_t pid;

    snprintf(sock_path, sizeof(sock_path), "/tmp/test_milter.%ld.sock", (long) getpid());
    snprintf(log_path, sizeof(log_path), "/tmp/test_milter.%ld.log", (long) getpid());
    unlink(sock_path);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, sock_path);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *) &sun, sizeof(sun)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        filter_child(lfd, sc);
    close(lfd);
    return pid;
}

/* Waits for the filter and returns its packet log (caller frees). */
static char *filter_end(pid_t pid)
{
    static char buf[65536];
    FILE *f;
    size_t n;
    int status;

    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    unlink(sock_path);
    f = fopen(log_path, "r");
    n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    unlink(log_path);
    return buf;
}

static const char *macro_fn(void *ctx, const char *name)
{
    if (strcmp(name, "j") == 0)
        return "mx.example";
    if (strcmp(name, "i") == 0)
        return "QID123";
    if (strcmp(name, "{mail_addr}") == 0)
        return "s@example.org";
    return NULL;
}

static struct milters *open_milters(const char *extra)
{
    char spec[256];
    struct strbuf why;
    struct milters *ms;

    snprintf(spec, sizeof(spec), "{ unix:%s %s }", sock_path, extra);
    strbuf_init(&why, 64, STRBUF_UNLIMITED);
    ms = milters_create(spec, &why);
    if (ms == NULL)
        fail_msg("%s: %s", spec, why.data);
    strbuf_release(&why);
    milters_set_macros(ms, macro_fn, NULL);
    return ms;
}

/* Edits recorded as text. */
static char edits[4096];

static int ed_add(void *c, const char *n, const char *v)
{
    snprintf(edits + strlen(edits), sizeof(edits) - strlen(edits), "add %s:%s;", n, v);
    return 0;
}

static int ed_ins(void *c, size_t i, const char *n, const char *v)
{
    snprintf(edits + strlen(edits), sizeof(edits) - strlen(edits), "ins %zu %s:%s;", i, n, v);
    return 0;
}

static int ed_chg(void *c, size_t i, const char *n, const char *v)
{
    snprintf(edits + strlen(edits), sizeof(edits) - strlen(edits), "chg %zu %s:%s;", i, n, v);
    return 0;
}

static int ed_addrcpt(void *c, const char *r, const char *a)
{
    snprintf(edits + strlen(edits), sizeof(edits) - strlen(edits), "rcpt+ %s %s;", r,
             a ? a : "-");
    return 0;
}

static int ed_delrcpt(void *c, const char *r)
{
    snprintf(edits + strlen(edits), sizeof(edits) - strlen(edits), "rcpt- %s;", r);
    return 0;
}

static int ed_from(void *c, const char *s, const char *a)
{
    snprintf(edits + strlen(edits), sizeof(edits) - strlen(edits), "from %s %s;", s,
             a ? a : "-");
    return 0;
}

static int ed_body(void *c, const char *d, size_t len, int first)
{
    snprintf(edits + strlen(edits), sizeof(edits) - strlen(edits), "body%s %.*s;",
             first ? "1" : "", (int) len, d);
    return 0;
}

static const struct milter_edit_ops ops = {ed_add, ed_ins, ed_chg, ed_addrcpt, ed_delrcpt,
                                           ed_from, ed_body};

static const char *run_message(struct milters *ms)
{
    static const char *mail[] = {"<s@example.org>", "SIZE=10", NULL};
    static const char *rcpt[] = {"<r@example.net>", NULL};
    const char *v;

    if ((v = milter_connect_event(ms, "client.example", "192.0.2.1", 4321)) != NULL)
        return v;
    if ((v = milter_helo_event(ms, "client.example")) != NULL)
        return v;
    if ((v = milter_mail_event(ms, mail)) != NULL)
        return v;
    if ((v = milter_rcpt_event(ms, rcpt, 0)) != NULL)
        return v;
    if ((v = milter_data_event(ms)) != NULL)
        return v;
    if ((v = milter_header_event(ms, "Subject", 7, " hi\n there", 10)) != NULL)
        return v;
    if ((v = milter_eoh_event(ms)) != NULL)
        return v;
    if ((v = milter_body_event(ms, "line\n", 5)) != NULL)
        return v;
    edits[0] = 0;
    return milter_eom_event(ms, &ops, NULL);
}

static void test_session_edits(void **state)
{
    static const char replies[] =
        "\x0b" "h" "X-Spam\0yes\0"
        "\x0a" "i" "\0\0\0\1X-B\0v\0"
        "\x0d" "m" "\0\0\0\1Subject\0\0"
        "\x04" "+" "<n>\0"
        "\x04" "-" "<r>\0"
        "\x0b" "e" "<x>\0SIZE=5\0"
        "\x06" "b" "a\r\nb\r\n"
        "\x02" "q" "q\0"
        "\x00" "a";
    struct script sc = {SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT
                        | SMFIF_CHGFROM | SMFIF_CHGBODY | SMFIF_QUARANTINE | SMFIF_SETSYMLIST,
                        0, "{mail_addr}", SMFIC_BODYEOB, replies, sizeof(replies) - 1, 0, 0};
    pid_t pid = filter_start(&sc);
    struct milters *ms = open_milters("");
    const char *v = run_message(ms), *log;

    assert_non_null(v);
    assert_string_equal(v, "H q");
    assert_string_equal(edits, "add X-Spam: yes;ins 1 X-B: v;chg 1 Subject:;rcpt+ <n> -;"
                        "rcpt- <r>;from <x> SIZE=5;body1 a\nb\n;");
    milter_quit_event(ms);
    milters_free(&ms);
    log = filter_end(pid);
    /* What the filter saw, in order. */
    assert_non_null(strstr(log, "C:client.example|4\x10\xe1" "192.0.2.1|\n"));
    assert_non_null(strstr(log, "D:Cj|mx.example|\n"));
    assert_non_null(strstr(log, "D:M{mail_addr}|s@example.org|\nM:<s@example.org>|SIZE=10|\n"));
    assert_non_null(strstr(log, "L:Subject|hi\n there|\n"));
    assert_non_null(strstr(log, "B:line~\n\n"));
    assert_non_null(strstr(log, "D:Ei|QID123|\nE:\n"));
}

static void test_session_leadspc_and_nr(void **state)
{
    static const char replies[] = "\x00" "c";
    struct script sc = {SMFIF_ADDHDRS, SMFIP_HDR_LEADSPC | SMFIP_NR_HDR | SMFIP_NOBODY,
                        NULL, SMFIC_BODYEOB, replies, 1, 0, 0};
    pid_t pid = filter_start(&sc);
    struct milters *ms = open_milters("");
    const char *v = run_message(ms), *log;

    assert_null(v);
    milter_quit_event(ms);
    milters_free(&ms);
    log = filter_end(pid);
    assert_non_null(strstr(log, "L:Subject| hi\n there|\n"));
    assert_null(strstr(log, "\nB:"));               /* NOBODY */
}

static void test_session_replycode(void **state)
{
    static const char replies[] = "\x1d" "y" "550-5.7.1 one\r\n550 5.7.1 two\0";
    struct script sc = {0, 0, NULL, SMFIC_RCPT, replies, sizeof(replies) - 1, 0, 0};
    pid_t pid = filter_start(&sc);
    struct milters *ms = open_milters("");
    const char *v = run_message(ms);

    assert_non_null(v);
    assert_string_equal(v, "550-5.7.1 one\r\n550 5.7.1 two");
    milter_quit_event(ms);
    milters_free(&ms);
    (void) filter_end(pid);
}

static void test_negotiation_refused(void **state)
{
    /* The filter asks for an action bit that was never offered. */
    struct script sc = {0x8000, 0, NULL, 0, "", 0, 0, 0};
    pid_t pid = filter_start(&sc);
    struct milters *ms = open_milters(", default_action=reject");
    const char *v = run_message(ms);

    assert_non_null(v);
    assert_string_equal(v, "550 5.7.1 Command rejected");
    milters_free(&ms);
    (void) filter_end(pid);
}

static void test_timeout_default(void **state)
{
    static const char replies[] = "\x00" "c";
    struct script sc = {0, 0, NULL, SMFIC_MAIL, replies, 1, 3, 0};
    pid_t pid = filter_start(&sc);
    struct milters *ms = open_milters(", command_timeout=1s");
    const char *v = run_message(ms);

    assert_non_null(v);
    assert_string_equal(v, "451 4.7.1 Service unavailable - try again later");
    /* The failed filter keeps its default action for the rest of the session. */
    assert_string_equal(milter_helo_event(ms, "x"),
                        "451 4.7.1 Service unavailable - try again later");
    milters_free(&ms);
    (void) filter_end(pid);
}

static void test_close_and_garbage(void **state)
{
    static const char garbage[] = "\x06" "!" "\xff\xff\xff\xff" "zz";
    struct script sc1 = {0, 0, NULL, 0, "", 0, 0, SMFIC_DATA};
    struct script sc2 = {0, 0, NULL, SMFIC_HEADER, garbage, sizeof(garbage) - 1, 0, 0};
    struct script sc3 = {0, 0, NULL, SMFIC_HEADER, "\x00" "h", 2, 0, 0};     /* edit too early */
    pid_t pid;
    struct milters *ms;

    pid = filter_start(&sc1);
    ms = open_milters(", default_action=accept");
    assert_null(run_message(ms));               /* accept: the filter is left out */
    milters_free(&ms);
    (void) filter_end(pid);

    pid = filter_start(&sc2);
    ms = open_milters(", default_action=quarantine");
    {
        const char *v = run_message(ms);

        assert_non_null(v);
        assert_int_equal(strncmp(v, "H milter unix:", 14), 0);
    }
    milters_free(&ms);
    (void) filter_end(pid);

    pid = filter_start(&sc3);
    ms = open_milters(", default_action=shutdown");
    assert_string_equal(run_message(ms), "421 4.7.0 Server closing connection");
    milters_free(&ms);
    (void) filter_end(pid);
}

static void test_export_import(void **state)
{
    static const char replies[] = "\x0b" "h" "X-Spam\0yes\0" "\x00" "c";
    struct script sc = {SMFIF_ADDHDRS, 0, NULL, SMFIC_BODYEOB, replies, sizeof(replies) - 1, 0, 0};
    static const char *mail[] = {"<s@example.org>", NULL};
    pid_t pid = filter_start(&sc);
    struct milters *ms = open_milters(""), *cms;
    struct attr_msg *msg = attr_msg_new(), *in = attr_msg_new();
    size_t i;
    int sv[2];
    struct strbuf why;

    assert_null(milter_connect_event(ms, "c", "192.0.2.1", 25));
    assert_null(milter_mail_event(ms, mail));
    assert_int_equal(milters_export(ms, msg), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(ipc_send(sv[0], msg, 2000), 0);
    assert_int_equal(ipc_recv(sv[1], in, 0, 2000), 0);
    close(sv[0]);
    close(sv[1]);
    strbuf_init(&why, 64, STRBUF_UNLIMITED);
    cms = milters_import(in, &why);
    assert_non_null(cms);
    assert_int_equal(milters_count(cms), 1);
    assert_null(milter_header_event(cms, "Subject", 7, " x", 2));
    assert_null(milter_eoh_event(cms));
    edits[0] = 0;
    for (i = 0; i < milters_message_count(cms); i++) {
        milters_select(cms, i);
        assert_null(milter_eom_event(cms, &ops, NULL));
    }
    assert_string_equal(edits, "add X-Spam: yes;");
    assert_string_equal(milters_failed_list(cms), "");
    milters_free(&cms);
    milters_mark_failed(ms, "0");
    assert_string_equal(milter_helo_event(ms, "x"), "451 4.7.1 Service unavailable - try again later");
    milters_free(&ms);
    attr_msg_free(&msg);
    attr_msg_free(&in);
    strbuf_release(&why);
    (void) filter_end(pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_simple),
        cmocka_unit_test(test_decode_headers),
        cmocka_unit_test(test_decode_envelope),
        cmocka_unit_test(test_replycode),
        cmocka_unit_test(test_optneg),
        cmocka_unit_test(test_pkt),
        cmocka_unit_test(test_list_syntax),
        cmocka_unit_test(test_session_edits),
        cmocka_unit_test(test_session_leadspc_and_nr),
        cmocka_unit_test(test_session_replycode),
        cmocka_unit_test(test_negotiation_refused),
        cmocka_unit_test(test_timeout_default),
        cmocka_unit_test(test_close_and_garbage),
        cmocka_unit_test(test_export_import),
    };

    return cmocka_run_group_tests(tests, setup_params, NULL);
}
