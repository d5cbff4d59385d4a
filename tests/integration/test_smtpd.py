"""test_smtpd.py - the SMTP server over real loopback sockets.

What a client and an administrator can observe: reply codes and texts, the
EHLO keywords, when the server hangs up, how long it waits, the log lines, and
the queue files on disk (read with tests/helpers/qfile-dump, which uses the
real queue file reader). Tests that need a queued message need the cleanup
daemon; stand-alone mode (smtpd -S, "sendmail -bs") goes through petrel-drop
into maildrop/ and needs no other daemon. Every wait is bounded.
"""
import json
import os
import socket
import stat
import subprocess
import threading
import time

import pytest

from petrel_instance import build_dir, connect, wait_for

HOST = "mx.test.example"
BASE_MAIN = {
    "myhostname": HOST,
    "mydomain": "test.example",
    "local_recipient_maps": "",
    "smtpd_error_sleep_time": "0",
}


def have(prog):
    return os.access(os.path.join(build_dir(), prog), os.X_OK)


need_cleanup = pytest.mark.skipif(not have("cleanup/cleanup"),
                                  reason="the cleanup daemon is not built in this tree")


class Client:
    """A raw SMTP client: sends bytes exactly as given, reads whole replies."""

    def __init__(self, port, timeout=10.0):
        self.sock = connect(port, timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; unread: %r" % self.buf)
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode("utf-8", "replace")

    def reply(self):
        """(code, [text lines]) of one possibly multi-line reply."""
        lines = []
        while True:
            ln = self.line()
            lines.append(ln[4:])
            if len(ln) < 4 or ln[3] != "-":
                return int(ln[:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def greet(port):
    c = Client(port)
    code, text = c.reply()
    assert code == 220, text
    return c


def ehlo(c, name="client.example"):
    code, lines = c.cmd("EHLO " + name)
    assert code == 250, lines
    return lines


@pytest.fixture
def smtpd(petrel_instance):
    petrel_instance.start_smtpd(main=BASE_MAIN)
    return petrel_instance


def start(inst, main=None, opts=""):
    params = dict(BASE_MAIN)
    params.update(main or {})
    return inst.start_smtpd(main=params, smtpd_opts=opts)


def queue_files(inst, queue="incoming"):
    out = []
    for root, _dirs, files in os.walk(os.path.join(inst.queue_dir, queue)):
        out.extend(os.path.join(root, f) for f in files)
    return out


def qdump(path):
    r = subprocess.run([os.path.join(build_dir(), "tests", "helpers", "qfile-dump"), path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    d["content"] = d["content"].encode("latin-1")
    d["attrs"] = dict(v.split("=", 1) for t, v in d["records"] if t == "A")
    d["rcpts"] = [v for t, v in d["records"] if t == "R"]
    d["sender"] = [v for t, v in d["records"] if t == "F"][0]
    return d


def queued_file(inst, qid):
    found = [p for p in queue_files(inst) if os.path.basename(p) == qid]
    assert len(found) == 1, (qid, queue_files(inst))
    return found[0]


def body_of(content):
    """The content after our Received: header (its first lines, up to the first
    line that does not start with a tab)."""
    lines = content.split(b"\n")
    assert lines[0].startswith(b"Received: from "), content[:200]
    i = 1
    while lines[i].startswith(b"\t"):
        i += 1
    return b"\n".join(lines[i:])


# --- greeting, EHLO, simple commands ---------------------------------------------
def test_greeting_ehlo_and_simple_commands(smtpd):
    c = greet(smtpd.smtp_port)
    lines = ehlo(c)
    assert lines[0] == HOST
    for kw in ("PIPELINING", "SIZE 10240000", "ETRN", "ENHANCEDSTATUSCODES", "8BITMIME",
               "BINARYMIME", "DSN", "SMTPUTF8", "CHUNKING", "VRFY"):
        assert kw in lines, (kw, lines)
    assert not any(k.startswith(("STARTTLS", "AUTH")) for k in lines)
    assert c.cmd("NOOP") == (250, ["2.0.0 Ok"])
    assert c.cmd("RSET") == (250, ["2.0.0 Ok"])
    assert c.cmd("RSET x")[0] == 501
    assert c.cmd("HELP")[0] == 214
    assert c.cmd("HELO client.example") == (250, [HOST])
    assert c.cmd("HELO")[0] == 501
    assert c.cmd("EXPN root")[0] == 502
    assert c.cmd("STARTTLS")[0] == 502
    assert c.cmd("FOO bar") == (500, ["5.5.2 Error: command not recognized"])
    assert c.cmd("12 34") == (500, ["5.5.2 Error: bad syntax"])
    assert c.cmd("QUIT") == (221, ["2.0.0 Bye"])
    assert c.closed()
    assert smtpd.wait_log(r"connect from \S+\[127\.0\.0\.1\]")
    assert smtpd.wait_log(r"disconnect from \S+\[127\.0\.0\.1\] helo=1/2 ehlo=1 "
                          r"starttls=0/1 rset=1/2 noop=1 expn=0/1 help=1 quit=1 unknown=0/2 "
                          r"commands=6/12")


def test_bad_sequence_and_arguments(smtpd):
    c = greet(smtpd.smtp_port)
    ehlo(c)
    assert c.cmd("RCPT TO:<a@localhost>") == (503, ["5.5.1 Error: need MAIL command"])
    assert c.cmd("DATA") == (503, ["5.5.1 Error: need MAIL command"])
    assert c.cmd("MAIL FROM:<a@example.com> FOO=1") == (555, ["5.5.4 Unsupported option: FOO"])
    assert c.cmd("MAIL FROM:<a@example.com> SIZE=x")[0] == 501
    assert c.cmd("MAIL TO:<a@example.com>")[0] == 501
    assert c.cmd("MAIL FROM:<a@example.com> BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=e+2B1") \
        == (250, ["2.1.0 Ok"])
    assert c.cmd("MAIL FROM:<b@example.com>") == (503, ["5.5.1 Error: nested MAIL command"])
    assert c.cmd("DATA") == (503, ["5.5.1 Error: need RCPT command"])
    assert c.cmd("RCPT TO:<x@localhost> NOTIFY=NEVER,SUCCESS")[0] == 501
    assert c.cmd("RCPT TO:<>")[0] == 501
    assert c.cmd("ETRN localhost") == (503, ["5.5.1 Error: MAIL transaction in progress"])
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("MAIL FROM:<a@example.com> SIZE=20000000") == \
        (552, ["5.3.4 Message size exceeds fixed limit"])
    c.cmd("QUIT")


def test_helo_required_and_strict_envelopes(petrel_instance):
    port = start(petrel_instance, {"smtpd_helo_required": "yes",
                                   "strict_rfc821_envelopes": "yes"})
    c = greet(port)
    assert c.cmd("MAIL FROM:<a@example.com>") == (503, ["5.5.1 Error: send HELO/EHLO first"])
    ehlo(c)
    assert c.cmd("MAIL FROM:a@example.com") == (501, ["5.1.7 Bad sender address syntax"])
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    c.cmd("QUIT")


def test_vrfy_default_and_disabled(petrel_instance):
    port = start(petrel_instance)
    c = greet(port)
    ehlo(c)
    assert c.cmd("VRFY root@localhost") == (252, ["2.0.0 root@localhost"])
    assert c.cmd("VRFY")[0] == 501
    c.cmd("QUIT")
    petrel_instance.stop()
    port = start(petrel_instance, {"disable_vrfy_command": "yes"})
    c = greet(port)
    assert "VRFY" not in ehlo(c)
    assert c.cmd("VRFY root@localhost") == (502, ["5.5.1 VRFY command is disabled"])
    c.cmd("QUIT")


def test_discard_ehlo_keywords(petrel_instance):
    port = start(petrel_instance, {"smtpd_discard_ehlo_keywords": "chunking, dsn, silent-discard"})
    c = greet(port)
    lines = ehlo(c)
    assert "CHUNKING" not in lines and "DSN" not in lines and "BINARYMIME" not in lines
    assert "PIPELINING" in lines
    # A discarded extension is really off, not just hidden.
    assert c.cmd("BDAT 0 LAST")[0] == 500
    assert c.cmd("MAIL FROM:<a@example.com> RET=FULL") == (555, ["5.5.4 Unsupported option: RET"])
    c.cmd("QUIT")
    petrel_instance.stop()
    port = start(petrel_instance, {"smtpd_discard_ehlo_keywords": "enhancedstatuscodes"})
    c = greet(port)
    assert "ENHANCEDSTATUSCODES" not in ehlo(c)
    assert c.cmd("NOOP") == (250, ["Ok"])
    c.cmd("QUIT")


def test_line_too_long(smtpd):
    c = greet(smtpd.smtp_port)
    ehlo(c)
    assert c.cmd("NOOP " + "x" * 5000) == (500, ["5.5.0 Error: line too long"])
    assert c.cmd("NOOP") == (250, ["2.0.0 Ok"])
    c.cmd("QUIT")


def test_non_smtp_command_hangs_up(smtpd):
    c = greet(smtpd.smtp_port)
    c.send("GET / HTTP/1.0\r\n")
    code, _ = c.reply()
    assert code == 221
    assert c.closed()
    assert smtpd.wait_log(r"warning: non-SMTP command from \S+\[127\.0\.0\.1\]: GET / HTTP/1\.0")


# --- pipelining ----------------------------------------------------------------
def test_early_talker_disconnected(smtpd):
    s = connect(smtpd.smtp_port)
    s.sendall(b"EHLO early.example\r\n")
    data = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"554 5.5.0 Error: SMTP protocol synchronization"), data
    assert smtpd.wait_log(r"improper command pipelining after CONNECT from \S+\[127\.0\.0\.1\]: "
                          r"EHLO early\.example")


def test_pipelining_without_ehlo_disconnected(smtpd):
    c = greet(smtpd.smtp_port)
    assert c.cmd("HELO client.example")[0] == 250
    c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@localhost>\r\n")
    code, text = c.reply()
    assert code == 554 and "synchronization" in text[0]
    assert c.closed()
    assert smtpd.wait_log(r"improper command pipelining after MAIL from")


def test_unauth_pipelining_allowed_when_not_forbidden(petrel_instance):
    port = start(petrel_instance, {"smtpd_forbid_unauth_pipelining": "no"})
    c = greet(port)
    assert c.cmd("HELO client.example")[0] == 250
    c.send("NOOP\r\nNOOP\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    c.cmd("QUIT")
    assert petrel_instance.wait_log(r"improper command pipelining after NOOP from")


# --- limits, errors, timeouts ------------------------------------------------------
def test_hard_error_limit(petrel_instance):
    port = start(petrel_instance, {"smtpd_hard_error_limit": "3",
                                   "smtpd_soft_error_limit": "2"})
    c = greet(port)
    for _ in range(3):
        assert c.cmd("BOGUS")[0] == 500
    # The 421 comes unasked, right after the reply that reached the limit.
    code, text = c.reply()
    assert code == 421 and text == ["4.7.0 %s Error: too many errors" % HOST]
    assert c.closed()
    assert petrel_instance.wait_log(r"too many errors after UNKNOWN from")


def test_tarpit_after_soft_error_limit(petrel_instance):
    port = start(petrel_instance, {"smtpd_soft_error_limit": "2",
                                   "smtpd_hard_error_limit": "10",
                                   "smtpd_error_sleep_time": "1s"})
    c = greet(port)
    times = []
    for _ in range(4):
        t0 = time.monotonic()
        assert c.cmd("BOGUS")[0] == 500
        times.append(time.monotonic() - t0)
    # Errors 1 and 2 are answered at once; from the soft limit on, each waits 1 s.
    assert times[0] < 0.8 and times[1] < 0.8, times
    assert times[2] >= 0.9 and times[3] >= 0.9, times
    # Good replies are not delayed.
    t0 = time.monotonic()
    assert c.cmd("NOOP")[0] == 250
    assert time.monotonic() - t0 < 0.8
    c.cmd("QUIT")


def test_junk_command_limit(petrel_instance):
    port = start(petrel_instance, {"smtpd_junk_command_limit": "2",
                                   "smtpd_hard_error_limit": "2"})
    c = greet(port)
    # Junk commands 4 and 5 count as errors; the second error reaches the limit.
    for _ in range(5):
        assert c.cmd("NOOP")[0] == 250
    code, text = c.reply()
    assert code == 421, text
    assert c.closed()


def test_timeout(petrel_instance):
    port = start(petrel_instance, opts="-o smtpd_timeout=1s")
    c = greet(port)
    ehlo(c)
    t0 = time.monotonic()
    code, text = c.reply()
    assert code == 421 and text == ["4.4.2 %s Error: timeout exceeded" % HOST]
    assert 0.8 <= time.monotonic() - t0 < 5
    assert c.closed()
    assert petrel_instance.wait_log(r"timeout after EHLO from \S+\[127\.0\.0\.1\]")


def test_lost_connection_logged(smtpd):
    c = greet(smtpd.smtp_port)
    ehlo(c)
    c.close()
    assert smtpd.wait_log(r"lost connection after EHLO from \S+\[127\.0\.0\.1\]")
    assert smtpd.wait_log(r"disconnect from \S+\[127\.0\.0\.1\] ehlo=1 commands=1")


def test_master_cf_overrides_reach_each_service(petrel_instance):
    """Two services, one smtpd program: -o on each line changes only that service."""
    from petrel_instance import free_port
    p2 = free_port()
    params = dict(BASE_MAIN)
    params["smtpd_banner"] = "$myhostname ESMTP main-banner"
    extra = "127.0.0.1:%d inet n - n - - smtpd -o smtpd_banner=other-banner " \
            "-o disable_vrfy_command=yes\n" % p2
    p1 = petrel_instance.start_smtpd(main=params, extra_master=extra)
    c1 = Client(p1)
    assert c1.reply() == (220, ["%s ESMTP main-banner" % HOST])
    assert c1.cmd("VRFY root@localhost")[0] == 252
    c1.cmd("QUIT")
    c2 = Client(p2)
    assert c2.reply() == (220, ["other-banner"])
    assert c2.cmd("VRFY root@localhost")[0] == 502
    c2.cmd("QUIT")


# --- ETRN ----------------------------------------------------------------------
def test_etrn(petrel_instance):
    port = start(petrel_instance, {"relay_domains": "relay.example"})
    c = greet(port)
    ehlo(c)
    # No queue manager listening: nothing can be started.
    assert c.cmd("ETRN relay.example") == (458, ["4.3.0 Unable to queue messages"])
    assert c.cmd("ETRN") [0] == 500
    assert c.cmd("ETRN bad..domain")[0] == 501
    assert c.cmd("ETRN elsewhere.example") == \
        (459, ["4.7.1 <elsewhere.example>: service unavailable"])
    # A stand-in queue manager socket receives the wake-up.
    path = os.path.join(petrel_instance.queue_dir, "public", "qmgr")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o666)
    srv.listen(1)
    srv.settimeout(5)
    try:
        assert c.cmd("ETRN @relay.example") == (250, ["2.0.0 Queuing started"])
        conn, _ = srv.accept()
        conn.settimeout(5)
        assert conn.recv(16) == b"F"
        conn.close()
    finally:
        srv.close()
        os.unlink(path)
    c.cmd("QUIT")


# --- stand-alone mode (sendmail -bs) ----------------------------------------------
def run_standalone(inst, data, timeout=30):
    env = dict(os.environ, PETREL_DROP=os.path.join(build_dir(), "drop", "petrel-drop"))
    return subprocess.run([os.path.join(build_dir(), "smtpd", "smtpd"), "-S",
                           "-c", inst.config_dir], input=data, capture_output=True,
                          timeout=timeout, env=env)


@pytest.fixture
def standalone(petrel_instance):
    """A configured instance (queue tree made by one start/stop) for smtpd -S."""
    petrel_instance.main_cf.update(BASE_MAIN)
    petrel_instance.write_main_cf()
    petrel_instance.write_master_cf("")
    petrel_instance.start()
    petrel_instance.stop()
    assert wait_for(lambda: petrel_instance.master_pid() is None, 10)
    return petrel_instance


@pytest.mark.skipif(not have("drop/petrel-drop"), reason="petrel-drop is not built")
def test_standalone_data_and_bdat(standalone):
    body = b"Subject: stand-alone\r\n\r\n..leading dot\r\n...\r\n"
    out = run_standalone(standalone, b"EHLO me\r\nMAIL FROM:<me@example.com>\r\n"
                         b"RCPT TO:<you@example.net>\r\nDATA\r\n" + body + b".\r\n"
                         b"MAIL FROM:<me@example.com> BODY=BINARYMIME\r\nRCPT TO:<you@example.net>\r\n"
                         b"BDAT 14\r\nSubject: b\r\n\r\nBDAT 4 LAST\r\n\x00\xff\r\nQUIT\r\n")
    assert out.returncode == 0, out.stderr
    replies = out.stdout.decode("latin-1").split("\r\n")
    assert replies[0].startswith("220 ")
    queued = [r for r in replies if " queued as " in r]
    assert len(queued) == 2, replies
    assert queued[0].startswith("250 2.0.0 Ok: queued as ")
    assert queued[1].startswith("250 2.0.0 Ok: ") and " bytes queued as " in queued[1]
    files = {os.path.basename(p): p for p in queue_files(standalone, "maildrop")}
    q1 = qdump(files[queued[0].split()[-1]])
    assert q1["sender"] == "me@example.com" and q1["rcpts"] == ["you@example.net"]
    assert q1["attrs"]["protocol"] == "ESMTP" and q1["attrs"]["rewrite_context"] == "local"
    assert q1["content"].startswith(b"Received: from me (localhost [127.0.0.1])\n\tby %s ("
                                    % HOST.encode())
    assert body_of(q1["content"]) == b"Subject: stand-alone\n\n.leading dot\n..\n"
    q2 = qdump(files[queued[1].split()[-1]])
    assert q2["attrs"]["encoding"] == "binary"
    assert body_of(q2["content"]) == b"Subject: b\n\n\x00\xff\n"
    log = standalone.log()
    assert "connect from localhost[127.0.0.1]" in log
    assert "disconnect from localhost[127.0.0.1] ehlo=1 mail=2 rcpt=2 data=1 bdat=2 quit=1 " \
           "commands=9" in log


@pytest.mark.skipif(not have("drop/petrel-drop"), reason="petrel-drop is not built")
def test_standalone_bare_lf_never_ends_data(standalone):
    """Stand-alone mode normalizes bare LF, but only CRLF.CRLF ends the message."""
    out = run_standalone(standalone, b"HELO me\r\nMAIL FROM:<me@example.com>\r\n"
                         b"RCPT TO:<you@example.net>\r\nDATA\r\n"
                         b"Subject: s\r\n\r\nline one\n.\nMAIL FROM:<evil@example.com>\r\n"
                         b"\r\n.\r\nQUIT\r\n")
    replies = out.stdout.decode().split("\r\n")
    queued = [r for r in replies if " queued as " in r]
    assert len(queued) == 1, replies
    files = queue_files(standalone, "maildrop")
    assert len(files) == 1
    q = qdump(files[0])
    assert body_of(q["content"]) == b"Subject: s\n\nline one\n.\nMAIL FROM:<evil@example.com>\n\n"


# --- messages through cleanup --------------------------------------------------------
def send_message(c, rcpts, body, sender="sender@example.com", mail_params=""):
    assert c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params))[0] == 250
    for r in rcpts:
        code, text = c.cmd("RCPT TO:<%s>" % r)
        assert code == 250, (r, text)
    assert c.cmd("DATA")[0] == 354
    c.send(body)
    return c.reply()


@need_cleanup
def test_message_queued_durably_with_received_header(smtpd):
    c = greet(smtpd.smtp_port)
    ehlo(c, "client.example")
    body = (b"Subject: test\r\n\r\n..dot-stuffed\r\n8-bit \xe9\xff\r\nlast\r\n.\r\n")
    code, text = send_message(c, ["user@localhost"], body,
                              mail_params=" BODY=8BITMIME RET=HDRS ENVID=id+2B1")
    assert code == 250 and text[0].startswith("2.0.0 Ok: queued as "), text
    qid = text[0].split()[-1]
    # On disk, complete (0700) and readable the moment 250 arrived.
    path = queued_file(smtpd, qid)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    q = qdump(path)
    assert q["sender"] == "sender@example.com"
    assert q["rcpts"] == ["user@localhost"]
    assert q["attrs"]["client_address"] == "127.0.0.1"
    assert q["attrs"]["helo_name"] == "client.example"
    assert q["attrs"]["protocol"] == "ESMTP"
    assert q["attrs"]["dsn_ret"] == "HDRS" and q["attrs"]["dsn_envid"] == "id+1"
    first = q["content"].split(b"\n")[:3]
    assert first[0].startswith(b"Received: from client.example (")
    assert first[0].endswith(b" [127.0.0.1])")
    assert first[1] == b"\tby %s (Petrel) with ESMTP id %s" % (HOST.encode(), qid.encode())
    assert first[2].startswith(b"\tfor <user@localhost>; ")
    assert b"\n.dot-stuffed\n8-bit \xe9\xff\nlast\n" in q["content"]
    assert smtpd.wait_log(r"%s: client=\S+\[127\.0\.0\.1\]" % qid)
    assert c.cmd("QUIT")[0] == 221
    assert smtpd.wait_log(r"disconnect from \S+\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 "
                          r"quit=1 commands=5")


@need_cleanup
def test_whole_transaction_in_one_write(smtpd):
    c = greet(smtpd.smtp_port)
    ehlo(c)
    c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<x@localhost>\r\nRCPT TO:<y@localhost>\r\n"
           b"DATA\r\n")
    assert [c.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
    c.send(b"Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    code, text = c.reply()
    assert code == 250, text
    assert c.reply()[0] == 221
    q = qdump(queued_file(smtpd, text[0].split()[-1]))
    assert q["rcpts"] == ["x@localhost", "y@localhost"]
    assert b"\tfor <" not in q["content"]          # "for" only with one recipient


@need_cleanup
def test_everything_in_one_write_when_pipelining_is_not_enforced(petrel_instance):
    port = start(petrel_instance, {"smtpd_forbid_unauth_pipelining": "no"})
    c = greet(port)
    c.send(b"EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<x@localhost>\r\nDATA\r\n"
           b"Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    assert c.reply()[0] == 250
    assert [c.reply()[0] for _ in range(5)] == [250, 250, 354, 250, 221]


@need_cleanup
def test_rset_and_rejected_recipient_leave_nothing(smtpd):
    c = greet(smtpd.smtp_port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<x@localhost>")[0] == 250
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("QUIT")[0] == 221
    assert wait_for(lambda: queue_files(smtpd) == [], 5), queue_files(smtpd)


@need_cleanup
def test_size_limit_during_data(petrel_instance):
    port = start(petrel_instance, {"message_size_limit": "2000"})
    c = greet(port)
    assert "SIZE 2000" in ehlo(c)
    code, text = send_message(c, ["x@localhost"], b"Subject: big\r\n\r\n" +
                              (b"y" * 100 + b"\r\n") * 50 + b".\r\n")
    assert (code, text) == (552, ["5.3.4 Message size exceeds fixed limit"])
    # The session goes on, and a small message still fits.
    code, text = send_message(c, ["x@localhost"], b"Subject: small\r\n\r\nok\r\n.\r\n")
    assert code == 250, text
    c.cmd("QUIT")
    assert wait_for(lambda: len(queue_files(petrel_instance)) == 1, 5), queue_files(petrel_instance)


@need_cleanup
def test_total_size_limit(petrel_instance):
    port = start(petrel_instance, {"message_total_size_limit": "3000"})
    c = greet(port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<a@example.com> SIZE=1000")[0] == 250
    for r in ("a", "b", "c"):
        assert c.cmd("RCPT TO:<%s@localhost>" % r)[0] == 250
    code, text = c.cmd("RCPT TO:<d@localhost>")
    assert code == 452 and text[0].startswith("4.5.3 "), text
    c.cmd("RSET")
    # Without SIZE=, the check comes after DATA.
    code, text = send_message(c, ["a@localhost", "b@localhost", "c@localhost"],
                              b"Subject: t\r\n\r\n" + b"z" * 1500 + b"\r\n.\r\n")
    assert code == 552 and text[0].startswith("5.3.4 "), text
    c.cmd("QUIT")
    assert wait_for(lambda: queue_files(petrel_instance) == [], 5), queue_files(petrel_instance)


@need_cleanup
def test_recipient_limit_and_5000_recipients(petrel_instance):
    port = start(petrel_instance, {"smtpd_recipient_limit": "5000"})
    c = greet(port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    # Sent from a thread: the replies must be read while the commands still go out.
    sender = threading.Thread(target=c.send,
                              args=("".join("RCPT TO:<u%d@localhost>\r\n" % i
                                            for i in range(5001)),))
    sender.start()
    codes = [c.reply() for _ in range(5001)]
    sender.join(30)
    assert all(code == 250 for code, _ in codes[:5000])
    assert codes[5000] == (452, ["4.5.3 Error: too many recipients"])
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: many\r\n\r\nhi\r\n.\r\n")
    code, text = c.reply()
    assert code == 250, text
    q = qdump(queued_file(petrel_instance, text[0].split()[-1]))
    assert len(q["rcpts"]) == 5000 and q["rcpts"][4999] == "u4999@localhost"
    c.cmd("QUIT")


SMUGGLING = [b"\n.\n", b"\r.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n"]


@need_cleanup
@pytest.mark.parametrize("payload", SMUGGLING, ids=lambda p: repr(p))
def test_smuggling_rejected(petrel_instance, payload):
    port = start(petrel_instance, {"smtpd_forbid_bare_newline_exclusions": ""})
    c = greet(port)
    ehlo(c)
    code, text = send_message(c, ["x@localhost"], b"Subject: s\r\n\r\nfirst" + payload +
                              b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<y@localhost>\r\n"
                              b"DATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n")
    assert code == 550 and text[0].startswith("5.5.2 Error: bare <"), text
    assert c.closed()
    assert wait_for(lambda: queue_files(petrel_instance) == [], 5), queue_files(petrel_instance)


@need_cleanup
@pytest.mark.parametrize("payload", SMUGGLING, ids=lambda p: repr(p))
def test_smuggling_normalized_is_one_message(smtpd, payload):
    """Default exclusions: loopback is in mynetworks, so bare newlines are normalized,
    yet only CRLF.CRLF ends the data: everything is one message."""
    c = greet(smtpd.smtp_port)
    ehlo(c)
    code, text = send_message(c, ["x@localhost"], b"Subject: s\r\n\r\nfirst" + payload +
                              b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<y@localhost>\r\n"
                              b"DATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n")
    assert code == 250, text
    assert c.cmd("QUIT")[0] == 221
    assert wait_for(lambda: len(queue_files(smtpd)) == 1, 5), queue_files(smtpd)
    q = qdump(queue_files(smtpd)[0])
    assert q["rcpts"] == ["x@localhost"]
    assert b"MAIL FROM:<evil@example.com>\n" in q["content"]


def test_bare_lf_in_command_rejected(petrel_instance):
    port = start(petrel_instance, {"smtpd_forbid_bare_newline_exclusions": ""})
    c = greet(port)
    c.send(b"EHLO x\n")
    code, text = c.reply()
    assert code == 550 and text == ["5.5.2 Error: bare <LF> received"]
    assert c.closed()


@need_cleanup
def test_bdat_chunks_and_binarymime(smtpd):
    c = greet(smtpd.smtp_port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<a@example.com> BODY=BINARYMIME")[0] == 250
    assert c.cmd("RCPT TO:<x@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 503
    part1 = b"Subject: bin\r\n\r\n\x00\x01\r"
    part2 = b"\n.\r\n\xff"
    c.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert c.reply() == (250, ["2.0.0 Ok: %d bytes" % len(part1)])
    c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    code, text = c.reply()
    assert code == 250 and " bytes queued as " in text[0], text
    q = qdump(queued_file(smtpd, text[0].split()[-1]))
    # CRLF becomes LF, also across the chunk boundary; a lone "." is just data.
    assert body_of(q["content"]) == b"Subject: bin\n\n\x00\x01\n.\n\xff\n"
    # BDAT without a transaction: the chunk is read and refused, the session goes on.
    c.send(b"BDAT 5 LAST\r\nhello")
    assert c.reply() == (503, ["5.5.1 Error: need MAIL command"])
    assert c.cmd("NOOP")[0] == 250
    c.cmd("QUIT")


@need_cleanup
def test_bdat_without_pipelining(petrel_instance):
    """A chunk's bytes follow BDAT at once: that is not command pipelining."""
    port = start(petrel_instance, {"smtpd_discard_ehlo_keywords": "pipelining"})
    c = greet(port)
    assert "PIPELINING" not in ehlo(c)
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<x@localhost>")[0] == 250
    chunk = b"Subject: c\r\n\r\nhello\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
    code, text = c.reply()
    assert code == 250, text
    c.cmd("QUIT")
    assert "improper command pipelining" not in petrel_instance.log()


@need_cleanup
def test_bdat_size_limit(petrel_instance):
    port = start(petrel_instance, {"message_size_limit": "1000"})
    c = greet(port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<x@localhost>")[0] == 250
    c.send(b"BDAT 2000\r\n" + b"a" * 2000)
    assert c.reply() == (552, ["5.3.4 Message size exceeds fixed limit"])
    c.send(b"BDAT 10 LAST\r\n" + b"b" * 10)
    assert c.reply()[0] == 554
    assert c.cmd("NOOP")[0] == 250
    c.cmd("QUIT")
    assert wait_for(lambda: queue_files(petrel_instance) == [], 5), queue_files(petrel_instance)


@need_cleanup
def test_data_timeout_loses_nothing_half_made(petrel_instance):
    port = start(petrel_instance, opts="-o smtpd_timeout=1s")
    c = greet(port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<x@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: slow\r\n\r\npartial")
    code, _ = c.reply()
    assert code == 421
    assert petrel_instance.wait_log(r"timeout after DATA \(\d+ bytes\) from")
    assert wait_for(lambda: queue_files(petrel_instance) == [], 5)


def test_relay_denied_from_outside_mynetworks(petrel_instance):
    port = start(petrel_instance, {"mynetworks": "192.0.2.0/24"})
    c = greet(port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    code, text = c.cmd("RCPT TO:<x@elsewhere.example>")
    assert code in (454, 554) and "Relay access denied" in text[0], text
    assert c.cmd("DATA") == (554, ["5.5.1 Error: no valid recipients"])
    c.cmd("QUIT")
    assert wait_for(lambda: queue_files(petrel_instance) == [], 5), queue_files(petrel_instance)


# --- restriction results, header stripping, failures ---------------------------------
@need_cleanup
def test_access_prepend_hold_and_discard(petrel_instance):
    table = os.path.join(petrel_instance.config_dir, "rcpt_access")
    with open(table, "w") as f:
        f.write("held@localhost HOLD\ngone@localhost DISCARD\n"
                "tagged@localhost PREPEND X-Tag: tagged\n")
    port = start(petrel_instance, {
        "smtpd_recipient_restrictions":
            "check_recipient_access texthash:%s, permit_mynetworks, "
            "reject_unauth_destination" % table})
    c = greet(port)
    ehlo(c)
    # PREPEND: the line comes first, before our Received: header.
    code, text = send_message(c, ["tagged@localhost"], b"Subject: p\r\n\r\nx\r\n.\r\n")
    assert code == 250, text
    q = qdump(queued_file(petrel_instance, text[0].split()[-1]))
    assert q["content"].startswith(b"X-Tag: tagged\nReceived: from "), q["content"][:80]
    # HOLD at the second recipient, after the queue file was opened: the message
    # still lands in hold/, with both recipients.
    code, text = send_message(c, ["a@localhost", "held@localhost"], b"Subject: h\r\n\r\nx\r\n.\r\n")
    assert code == 250, text
    qid = text[0].split()[-1]
    held = [p for p in queue_files(petrel_instance, "hold") if os.path.basename(p) == qid]
    assert len(held) == 1, (qid, queue_files(petrel_instance, "hold"), queue_files(petrel_instance))
    assert qdump(held[0])["rcpts"] == ["a@localhost", "held@localhost"]
    # DISCARD: accepted, nothing kept.
    before = set(queue_files(petrel_instance)) | set(queue_files(petrel_instance, "hold"))
    code, text = send_message(c, ["gone@localhost"], b"Subject: d\r\n\r\nx\r\n.\r\n")
    assert code == 250, text
    c.cmd("QUIT")
    assert wait_for(lambda: set(queue_files(petrel_instance))
                    | set(queue_files(petrel_instance, "hold")) == before, 5)


@need_cleanup
def test_hold_at_end_of_data(petrel_instance):
    """A HOLD from smtpd_end_of_data_restrictions, after all content went to
    cleanup, still puts the message in hold/ and nowhere else, with its queue ID."""
    port = start(petrel_instance, {
        "smtpd_end_of_data_restrictions": "check_client_access static:HOLD"})
    c = greet(port)
    ehlo(c)
    code, text = send_message(c, ["a@localhost"], b"Subject: e\r\n\r\nx\r\n.\r\n")
    assert code == 250, text
    qid = text[0].split()[-1]
    held = [p for p in queue_files(petrel_instance, "hold") if os.path.basename(p) == qid]
    assert len(held) == 1, (qid, queue_files(petrel_instance, "hold"))
    assert not [p for p in queue_files(petrel_instance) if os.path.basename(p) == qid]
    c.cmd("QUIT")


@need_cleanup
@pytest.mark.parametrize("trusted", [True, False])
def test_untrusted_headers_stripped(petrel_instance, trusted):
    port = start(petrel_instance, {
        "mynetworks": "127.0.0.0/8" if trusted else "192.0.2.0/24",
        "smtpd_untrusted_strip_headers": "X-Spam-Flag"})
    c = greet(port)
    ehlo(c)
    code, text = send_message(c, ["u@localhost"],
                              b"X-Spam-Flag: NO\r\nSubject: s\r\n\r\nbody\r\n.\r\n")
    assert code == 250, text
    q = qdump(queued_file(petrel_instance, text[0].split()[-1]))
    assert (b"\nX-Spam-Flag: NO\n" in q["content"]) == trusted
    assert b"\nSubject: s\n" in q["content"]
    c.cmd("QUIT")


def cleanup_pids(inst):
    pids = []
    for pid in inst.workers():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except OSError:
            continue
        if argv0.endswith(b"/cleanup") or argv0 == b"cleanup":
            pids.append(pid)
    return pids


@need_cleanup
def test_cleanup_lost_means_451_and_nothing_queued(smtpd):
    c = greet(smtpd.smtp_port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<x@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: doomed\r\n\r\nline\r\n")
    pids = wait_for(lambda: cleanup_pids(smtpd), 5)
    assert pids
    for pid in pids:
        os.kill(pid, 9)
    assert wait_for(lambda: not any(os.path.exists("/proc/%d/status" % p) and
                                    "zombie" not in open("/proc/%d/status" % p).read()
                                    for p in pids), 5)
    c.send(b"more\r\n.\r\n")
    code, text = c.reply()
    assert (code, text) == (451, ["4.3.0 Error: queue file write error"])
    # The session survives and the next message goes through a new cleanup.
    code, text = send_message(c, ["x@localhost"], b"Subject: ok\r\n\r\nfine\r\n.\r\n")
    assert code == 250, text
    c.cmd("QUIT")
    # The killed cleanup leaves its partial file (mode 0600, skipped by every
    # queue scanner); the only complete file is the second message.
    complete = [os.path.basename(p) for p in queue_files(smtpd)
                if stat.S_IMODE(os.stat(p).st_mode) == 0o700]
    assert complete == [text[0].split()[-1]]


@need_cleanup
def test_trickling_client_runs_out_of_deadline(petrel_instance):
    """Each byte comes well within smtpd_timeout, but the DATA deadline earns only
    1/500 s per byte, so a trickle is cut off after about smtpd_timeout."""
    port = start(petrel_instance, opts="-o smtpd_timeout=2s")
    c = greet(port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<x@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    t0 = time.monotonic()
    c.sock.settimeout(0.3)
    got = b""
    while time.monotonic() - t0 < 10 and b"\r\n" not in got:
        try:
            c.sock.sendall(b"x")
            got += c.sock.recv(1024)
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    assert got.startswith(b"421 4.4.2 "), got
    assert 1.5 < time.monotonic() - t0 < 6
    assert petrel_instance.wait_log(r"timeout after DATA \(\d+ bytes\) from")


@need_cleanup
def test_lost_connection_in_data(smtpd):
    c = greet(smtpd.smtp_port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<x@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: cut\r\n\r\nhalf")
    c.close()
    assert smtpd.wait_log(r"lost connection after DATA \(\d+ bytes\) from \S+\[127\.0\.0\.1\]")
    assert wait_for(lambda: queue_files(smtpd) == [], 5)
