"""test_milter.py - smtpd_milters and non_smtpd_milters end to end.

Test filters are real libmilter filters (Debian's python3-milter wraps
libmilter) started by the tests on loopback: FILTER below, driven by a JSON
script (what to answer at each stage, which edits to make at the end of the
message) and logging every callback it sees, so a test can check both sides:
what the filter was sent (stages, macros, headers byte for byte) and what a
user observes (SMTP replies, the queue file, the hold queue, log lines).
A filter that sleeps past milter_command_timeout, one that dies mid-message
and one that sends garbage each get their default action, and the next
message flows.
"""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from petrel_instance import free_port, wait_for
from test_smtpd import Client, greet, ehlo, qdump, queue_files, build_dir

try:
    import Milter  # noqa: F401
    HAVE_MILTER = True
except ImportError:
    HAVE_MILTER = False

pytestmark = pytest.mark.skipif(not HAVE_MILTER,
                                reason="python3-milter (libmilter) is not installed")

FILTER = r'''
import json, os, sys, time
import Milter

cfg = json.loads(sys.argv[1])
log = open(cfg["log"], "a", buffering=1)


def rec(*a):
    log.write(json.dumps(a) + "\n")


class F(Milter.Base):
    def negotiate(self, opts):
        rec("negotiate")
        return Milter.Base.negotiate(self, opts)

    def act(self, stage, arg=""):
        a = cfg.get("act", {}).get(stage)
        if a is None or (len(a) > 1 and a[0] == "if" and a[1] not in arg):
            return Milter.CONTINUE
        if a[0] == "if":
            a = a[2:]
        k = a[0]
        if k == "reply":
            self.setreply(*a[1:])
            return Milter.REJECT if a[1][0] == "5" else Milter.TEMPFAIL
        if k == "sleep":
            time.sleep(a[1])
            return Milter.CONTINUE
        if k == "crash":
            os._exit(1)
        return {"reject": Milter.REJECT, "tempfail": Milter.TEMPFAIL, "accept": Milter.ACCEPT,
                "discard": Milter.DISCARD, "continue": Milter.CONTINUE}[k]

    def connect(self, host, family, hostaddr):
        rec("connect", host, hostaddr[0] if hostaddr else None, self.getsymval("j"),
            self.getsymval("{daemon_name}"), self.getsymval("{client_addr}"))
        return self.act("connect")

    def hello(self, h):
        rec("helo", h)
        return self.act("helo")

    def envfrom(self, f, *args):
        rec("mail", f, list(args), self.getsymval("{mail_addr}"))
        if cfg.get("macros"):
            rec("macros", "mail", {n: self.getsymval(n) for n in cfg["macros"]})
        return self.act("mail", f)

    def envrcpt(self, t, *args):
        rec("rcpt", t, list(args), self.getsymval("{rcpt_addr}"))
        return self.act("rcpt", t)

    def data(self):
        rec("data", self.getsymval("i"))
        return self.act("data")

    def header(self, n, v):
        rec("header", n, v)
        return self.act("header", n)

    def eoh(self):
        rec("eoh", self.getsymval("i"))
        return self.act("eoh")

    def body(self, chunk):
        rec("body", chunk.decode("latin-1"))
        return self.act("body")

    def eom(self):
        rec("eom", self.getsymval("i"))
        for e in cfg.get("edits", []):
            op = e[0]
            if op == "add":
                self.addheader(e[1], e[2])
            elif op == "ins":
                self.addheader(e[1], e[2], e[3])
            elif op == "chg":
                self.chgheader(e[1], e[2], e[3])
            elif op == "addrcpt":
                self.addrcpt(*e[1:])
            elif op == "delrcpt":
                self.delrcpt(e[1])
            elif op == "chgfrom":
                self.chgfrom(*e[1:])
            elif op == "body":
                self.replacebody(e[1].encode())
            elif op == "quarantine":
                self.quarantine(e[1])
            elif op == "progress":
                for _ in range(e[1]):
                    time.sleep(0.5)
                    self.progress()
        return self.act("eom")

    def unknown(self, cmd):
        rec("unknown", cmd.decode("latin-1") if isinstance(cmd, bytes) else cmd)
        return self.act("unknown")

    def abort(self):
        rec("abort")
        return Milter.CONTINUE

    def close(self):
        rec("close")
        return Milter.CONTINUE


class G(F):
    """Negotiates NR_HDR and NR_RCPT (no replies), NOEOH, HDR_LEADSPC, RCPT_REJ
    and SKIP (used in the body). (python3-milter's SETSYMLIST fails its own
    negotiation; test_milter.c covers SETSYMLIST with a scripted filter.)"""

    @Milter.noreply
    def header(self, n, v):
        rec("header", n, v)
        return Milter.CONTINUE

    @Milter.noreply
    def envrcpt(self, t, *args):
        rec("rcpt", t, list(args), self.getsymval("{rcpt_mailer}"),
            self.getsymval("{rcpt_host}"), self.getsymval("{rcpt_addr}"))
        return Milter.CONTINUE

    @Milter.nocallback
    def eoh(self):
        return Milter.CONTINUE

    def body(self, chunk):
        rec("body", chunk.decode("latin-1"))
        return Milter.SKIP


class N(F):
    """Skips CONNECT (NOCONNECT)."""

    @Milter.nocallback
    def connect(self, host, family, hostaddr):
        return Milter.CONTINUE


Milter.enable_protocols(G, Milter.P_HDR_LEADSPC | Milter.P_RCPT_REJ)
Milter.factory = {"flags": G, "noconnect": N}.get(cfg.get("variant"), F)
Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.ADDRCPT | Milter.ADDRCPT_PAR
                 | Milter.DELRCPT | Milter.CHGFROM | Milter.CHGBODY | Milter.QUARANTINE)
Milter.runmilter("petrel-test", "inet:%d@127.0.0.1" % cfg["port"], timeout=60)
'''


class Filter:
    def __init__(self, tmp_path, script, name="f", port=None):
        self.port = port or free_port()
        self.log = str(tmp_path / ("%s.log" % name))
        cfg = dict(script, port=self.port, log=self.log)
        path = tmp_path / ("%s.py" % name)
        path.write_text(FILTER)
        self.proc = subprocess.Popen(["/usr/bin/python3", str(path), json.dumps(cfg)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert wait_for(self._listening, timeout=10), self.proc.stderr.read().decode()

    def _listening(self):
        if self.proc.poll() is not None:
            return True
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    @property
    def spec(self):
        return "inet:127.0.0.1:%d" % self.port

    def events(self):
        try:
            with open(self.log) as f:
                return [json.loads(ln) for ln in f if ln.strip()]
        except FileNotFoundError:
            return []

    def stop(self):
        # libmilter's signal thread takes seconds over SIGTERM; nothing to flush.
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)


@pytest.fixture
def filters(tmp_path):
    made = []

    def make(script, name=None, port=None):
        f = Filter(tmp_path, script, name or "f%d" % len(made), port)
        made.append(f)
        return f
    yield make
    for f in made:
        f.stop()


MAIN = {"myhostname": "mx.example.com", "mydomain": "example.com",
        "myorigin": "example.com", "mydestination": "localhost",
        "milter_command_timeout": "2s", "milter_content_timeout": "3s",
        "milter_connect_timeout": "2s"}


def start(inst, milters, **extra):
    params = dict(MAIN, smtpd_milters=milters)
    params.update(extra)
    return inst.start_smtpd(main=params)


MESSAGE = ("From: Sender <sender@example.org>\r\n"
           "To: rcpt@example.net\r\n"
           "Subject: test\r\n"
           " folded\r\n"
           "X-Spam-Flag: YES\r\n"
           "\r\n"
           "Body line one.\r\n"
           "Body line two.\r\n")


def transaction(port, rcpts=("rcpt@example.net",), sender="sender@example.org",
                message=MESSAGE, mail_args=""):
    """Runs one transaction; returns (replies by stage, client)."""
    c = greet(port)
    ehlo(c)
    out = {"mail": c.cmd("MAIL FROM:<%s>%s" % (sender, mail_args))}
    out["rcpt"] = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]
    if out["mail"][0] == 250 and any(r[0] == 250 for r in out["rcpt"]):
        out["data"] = c.cmd("DATA")
        if out["data"][0] == 354:
            c.send(message + ".\r\n")
            out["eom"] = c.reply()
    return out, c


def queued(inst, reply, queue="incoming"):
    code, lines = reply
    assert code == 250, lines
    qid = lines[-1].split()[-1]
    paths = [p for p in queue_files(inst, queue) if os.path.basename(p) == qid]
    assert len(paths) == 1, (qid, queue_files(inst, queue))
    return qdump(paths[0])


def headers_of(content):
    return content.split(b"\n\n", 1)[0].split(b"\n")


# --- envelope stages -----------------------------------------------------------

def test_envelope_stages_macros_and_headers(petrel_instance, filters):
    f = filters({})
    # The client is not in mynetworks, so its X-Spam-Flag is untrusted.
    port = start(petrel_instance, f.spec, smtpd_untrusted_strip_headers="X-Spam-Flag",
                 mynetworks="192.0.2.0/24", local_recipient_maps="")
    out, c = transaction(port, rcpts=("rcpt@localhost",), mail_args=" SIZE=300")
    assert "eom" in out, out
    d = queued(petrel_instance, out["eom"])
    c.cmd("QUIT")
    assert wait_for(lambda: any(e[0] == "close" for e in f.events()), timeout=5)
    ev = f.events()
    kinds = [e[0] for e in ev]
    for k in ("connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body", "eom"):
        assert k in kinds, kinds
    conn = [e for e in ev if e[0] == "connect"][0]
    # milter_connect_macros: j {daemon_name} {daemon_addr} v _ (not {client_addr}).
    assert conn[2] == "127.0.0.1" and conn[3] == "mx.example.com"
    assert conn[4] == "mx.example.com" and conn[5] is None
    mail = [e for e in ev if e[0] == "mail"][0]
    assert mail[1] == "<sender@example.org>" and mail[2] == ["SIZE=300"], mail
    assert mail[3] == "sender@example.org"
    qid = d["path"].rsplit("/", 1)[-1] if "path" in d else None
    eom = [e for e in ev if e[0] == "eom"][0]
    assert eom[1] and (qid is None or eom[1] == qid)
    hdrs = [(e[1], e[2]) for e in ev if e[0] == "header"]
    # Exactly as stored, in order, folding kept; the untrusted header is gone.
    names = [h[0] for h in hdrs]
    assert names[0] == "Received" and names[1:] == ["From", "To", "Subject"], names
    assert ("Subject", "test\n folded") in hdrs
    body = "".join(e[1] for e in ev if e[0] == "body")
    assert body == "Body line one.\r\nBody line two.\r\n"
    assert b"X-Spam-Flag" not in d["content"]


def test_reject_at_rcpt_with_multiline_replycode(petrel_instance, filters):
    f = filters({"act": {"rcpt": ["if", "bad", "reply", "550", "5.7.1", "no such user",
                                  "second line"]}})
    port = start(petrel_instance, f.spec)
    out, c = transaction(port, rcpts=("bad@example.net", "good@example.net"))
    assert out["rcpt"][0] == (550, ["5.7.1 no such user", "5.7.1 second line"])
    assert out["rcpt"][1][0] == 250
    d = queued(petrel_instance, out["eom"])
    assert d["rcpts"] == ["good@example.net"]
    assert petrel_instance.wait_log(r"milter-reject: RCPT from \S+\[127\.0\.0\.1\]: 550-5\.7\.1")
    c.cmd("QUIT")


def test_reject_and_tempfail_at_mail_then_rset(petrel_instance, filters):
    f = filters({"act": {"mail": ["if", "spammer", "reject"]}})
    port = start(petrel_instance, f.spec)
    c = greet(port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<spammer@example.org>")[0] == 550
    assert c.cmd("MAIL FROM:<ok@example.org>")[0] == 250
    assert c.cmd("RSET")[0] == 250
    c.cmd("QUIT")
    assert wait_for(lambda: any(e[0] == "abort" for e in f.events()), timeout=5)


def test_connect_reject_refuses_session(petrel_instance, filters):
    f = filters({"act": {"connect": ["reply", "554", "5.7.1", "go away"]}})
    port = start(petrel_instance, f.spec)
    c = Client(port)
    assert c.reply() == (554, ["5.7.1 go away"])
    assert c.cmd("EHLO x")[0] == 503
    assert c.cmd("QUIT")[0] == 221


# --- end of message -------------------------------------------------------------

def test_eom_modifications(petrel_instance, filters):
    f = filters({"edits": [["add", "X-Milter", "added"],
                           ["ins", "X-First", "top", 0],
                           ["chg", "Subject", 1, "changed"],
                           ["chg", "To", 1, ""],
                           ["addrcpt", "<extra@example.net>"],
                           ["delrcpt", "<rcpt@example.net>"],
                           ["chgfrom", "<new@example.org>"]]})
    port = start(petrel_instance, f.spec)
    out, c = transaction(port)
    d = queued(petrel_instance, out["eom"])
    hdrs = headers_of(d["content"])
    assert hdrs[0] == b"X-First: top"
    assert hdrs[1].startswith(b"Received: from ")
    assert b"Subject: changed" in hdrs
    assert not any(h.startswith(b"To:") for h in hdrs)
    assert hdrs[-1] == b"X-Milter: added"
    assert d["rcpts"] == ["extra@example.net"]
    assert d["sender"] == "new@example.org"
    assert d["content"].endswith(b"\n\nBody line one.\nBody line two.\n")
    c.cmd("QUIT")


def test_replace_body(petrel_instance, filters):
    f = filters({"edits": [["body", "New body.\r\nSecond.\r\n"]]})
    port = start(petrel_instance, f.spec)
    out, c = transaction(port)
    d = queued(petrel_instance, out["eom"])
    assert d["content"].endswith(b"\n\nNew body.\nSecond.\n")
    c.cmd("QUIT")


def test_eom_reject_discard_tempfail(petrel_instance, filters):
    f = filters({"act": {"eom": ["if", "", "reply", "550", "5.7.0", "content refused"]}})
    port = start(petrel_instance, f.spec)
    out, c = transaction(port)
    assert out["eom"] == (550, ["5.7.0 content refused"])
    assert queue_files(petrel_instance) == []
    c.cmd("QUIT")


def test_eom_multiline_reply_reaches_the_client(petrel_instance, filters):
    # The filter's whole reply, line by line, as the answer to the final dot
    # (it travels from cleanup to smtpd intact, "%%" undone as Sendmail does);
    # the log gets it on one line.
    f = filters({"act": {"eom": ["if", "", "reply", "550", "5.7.0", "content refused",
                                 "see https://example.com/policy", "100%% sure"]}})
    port = start(petrel_instance, f.spec)
    out, c = transaction(port)
    assert out["eom"] == (550, ["5.7.0 content refused", "5.7.0 see https://example.com/policy",
                                "5.7.0 100% sure"]), out
    assert queue_files(petrel_instance) == []
    assert petrel_instance.wait_log(r"milter-reject: END-OF-MESSAGE from .*: 5\.7\.0 content "
                                    r"refused see https://example\.com/policy 100% sure$")
    # The session goes on: the next message is taken.
    c.cmd("RSET")
    assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
    c.cmd("QUIT")


def test_eom_multiline_tempfail(petrel_instance, filters):
    f = filters({"act": {"eom": ["if", "", "reply", "451", "4.7.1", "greylisted", "come back"]}})
    port = start(petrel_instance, f.spec)
    out, c = transaction(port)
    assert out["eom"] == (451, ["4.7.1 greylisted", "4.7.1 come back"]), out
    c.cmd("QUIT")


def test_eom_discard(petrel_instance, filters):
    f = filters({"act": {"eom": ["discard"]}})
    port = start(petrel_instance, f.spec)
    out, c = transaction(port)
    assert out["eom"][0] == 250
    assert queue_files(petrel_instance) == []
    assert petrel_instance.wait_log(r"milter-discard: END-OF-MESSAGE")
    c.cmd("QUIT")


def test_quarantine_goes_to_hold(petrel_instance, filters):
    f = filters({"edits": [["quarantine", "looks like spam"]]})
    port = start(petrel_instance, f.spec)
    out, c = transaction(port)
    d = queued(petrel_instance, out["eom"], queue="hold")
    assert d["attrs"].get("hold_reason") == "looks like spam"
    assert petrel_instance.wait_log(r"milter-hold: END-OF-MESSAGE .*: looks like spam")
    c.cmd("QUIT")


def test_two_milters_in_order(petrel_instance, filters):
    f1 = filters({"edits": [["add", "X-One", "1"]]}, name="one")
    f2 = filters({"edits": [["add", "X-Two", "2"]]}, name="two")
    port = start(petrel_instance, "%s, %s" % (f1.spec, f2.spec))
    out, c = transaction(port)
    d = queued(petrel_instance, out["eom"])
    hdrs = headers_of(d["content"])
    assert hdrs[-2:] == [b"X-One: 1", b"X-Two: 2"]
    # The second filter saw the first one's header.
    assert ["header", "X-One", "1"] in f2.events()
    c.cmd("QUIT")


# --- connection reuse (QUIT_NC) --------------------------------------------------

def kinds_of(f):
    return [e[0] for e in f.events()]


def test_quit_nc_reuses_the_connection(petrel_instance, filters):
    f = filters({"edits": [["add", "X-Seen", "yes"]]})
    port = start(petrel_instance, f.spec)
    for i in range(3):
        out, c = transaction(port)
        d = queued(petrel_instance, out["eom"])
        assert b"\nX-Seen: yes\n" in d["content"]
        c.cmd("QUIT")
        c.close()
        assert wait_for(lambda: kinds_of(f).count("close") == i + 1, timeout=5), kinds_of(f)
    kinds = kinds_of(f)
    # One socket and one negotiation; each session a fresh CONNECT ... close.
    assert kinds.count("connect") == 3 and kinds.count("negotiate") == 1, kinds
    assert kept_connections(f.port) == 1
    assert kinds.count("eom") == 3


def test_quit_nc_only_from_rest(petrel_instance, filters):
    # A session that ends before any message leaves the filter where libmilter
    # cannot take QUIT_NC: it gets QUIT and the next session connects anew.
    f = filters({})
    port = start(petrel_instance, f.spec)
    c = greet(port)
    ehlo(c)
    c.cmd("QUIT")
    assert wait_for(lambda: "close" in kinds_of(f), timeout=5)
    out, c = transaction(port)
    queued(petrel_instance, out["eom"])
    c.cmd("QUIT")
    assert wait_for(lambda: kinds_of(f).count("close") == 2, timeout=5), kinds_of(f)
    assert kinds_of(f).count("negotiate") == 2


def test_no_quit_nc_after_accept_at_end_of_message(petrel_instance, filters):
    # libmilter returns to its HELO state after ACCEPT, where it would ignore
    # QUIT_NC and the next CONNECT: Petrel closes instead, and the next session
    # negotiates on a new connection without waiting for any timeout.
    f = filters({"act": {"eom": ["accept"]}})
    port = start(petrel_instance, f.spec)
    t0 = time.time()
    for i in range(2):
        out, c = transaction(port)
        queued(petrel_instance, out["eom"])
        c.cmd("QUIT")
        assert wait_for(lambda: kinds_of(f).count("close") == i + 1, timeout=5)
    assert kinds_of(f).count("negotiate") == 2 and kept_connections(f.port) == 0
    assert time.time() - t0 < 5


def test_no_quit_nc_for_a_filter_without_connect(petrel_instance, filters):
    # A filter that skips CONNECT would never hear that a new session began
    # on a kept connection (python-milter then has no object for the next
    # callback and fails): such filters get QUIT.
    f = filters({"variant": "noconnect", "edits": [["add", "X-Seen", "yes"]]})
    port = start(petrel_instance, f.spec)
    for i in range(2):
        out, c = transaction(port)
        d = queued(petrel_instance, out["eom"])
        assert b"\nX-Seen: yes\n" in d["content"]
        c.cmd("QUIT")
        assert wait_for(lambda: kinds_of(f).count("close") == i + 1, timeout=5), kinds_of(f)
    assert kinds_of(f).count("negotiate") == 2 and kept_connections(f.port) == 0


def test_quit_nc_off(petrel_instance, filters):
    f = filters({})
    port = start(petrel_instance, f.spec, milter_connection_reuse="no")
    for i in range(2):
        out, c = transaction(port)
        queued(petrel_instance, out["eom"])
        c.cmd("QUIT")
        assert wait_for(lambda: kinds_of(f).count("close") == i + 1, timeout=5)
    assert kinds_of(f).count("negotiate") == 2


def test_kept_connection_closed_by_a_restarted_filter(petrel_instance, filters):
    f = filters({"edits": [["add", "X-Gen", "1"]]}, name="gen1")
    port = start(petrel_instance, f.spec)
    out, c = transaction(port)
    queued(petrel_instance, out["eom"])
    c.cmd("QUIT")
    assert wait_for(lambda: "close" in kinds_of(f), timeout=5)
    f.stop()
    f2 = filters({"edits": [["add", "X-Gen", "2"]]}, name="gen2", port=f.port)
    # The kept socket is dead: Petrel notices, connects anew, nothing is lost.
    out, c = transaction(port)
    d = queued(petrel_instance, out["eom"])
    assert b"\nX-Gen: 2\n" in d["content"]
    c.cmd("QUIT")
    assert kinds_of(f2).count("negotiate") == 1
    assert not petrel_instance.wait_log(r"milter inet:.*default_action", timeout=0.5)


# --- failures and default actions ---------------------------------------------

def test_timeout_gets_default_action(petrel_instance, filters):
    f = filters({"act": {"mail": ["sleep", 4]}})
    port = start(petrel_instance, "{ %s, command_timeout=1s }" % f.spec)
    t0 = time.time()
    out, c = transaction(port)
    assert out["mail"][0] == 451, out
    assert time.time() - t0 < 4
    assert petrel_instance.wait_log(r"milter inet:127\.0\.0\.1:%d: mail: read reply: timeout; "
                                    r"default_action=tempfail" % f.port)
    c.cmd("QUIT")


def test_timeout_accept_lets_mail_through(petrel_instance, filters):
    f = filters({"act": {"mail": ["sleep", 4]}})
    port = start(petrel_instance, "{ %s, command_timeout=1s, default_action=accept }" % f.spec)
    out, c = transaction(port)
    queued(petrel_instance, out["eom"])
    c.cmd("QUIT")


def test_crash_mid_message(petrel_instance, filters):
    f = filters({"act": {"body": ["crash"]}})
    port = start(petrel_instance, "{ %s, default_action=tempfail }" % f.spec)
    out, c = transaction(port)
    assert out["eom"][0] == 451, out
    assert petrel_instance.wait_log(r"milter inet:127\.0\.0\.1:%d: body: .*default_action=tempfail"
                                    % f.port)
    assert queue_files(petrel_instance) == []
    c.cmd("QUIT")
    # The next message flows: the filter is gone, the default action is accept.
    petrel_instance.stop()
    petrel_instance.main_cf["smtpd_milters"] = "{ %s, default_action=accept }" % f.spec
    petrel_instance.write_main_cf()
    petrel_instance.start()
    out, c = transaction(port)
    queued(petrel_instance, out["eom"])


def garbage_server(port, stop):
    """Negotiates like a filter, then answers every command with garbage."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(4)
    ls.settimeout(0.2)
    while not stop.is_set():
        try:
            s, _ = ls.accept()
        except socket.timeout:
            continue
        s.settimeout(5)
        try:
            hdr = s.recv(4)
            n = int.from_bytes(hdr, "big")
            s.recv(n)
            s.sendall((13).to_bytes(4, "big") + b"O" + (6).to_bytes(4, "big")
                      + (0).to_bytes(4, "big") + (0).to_bytes(4, "big"))
            s.recv(65536)
            s.sendall(b"\x00\x00\x00\x05zjunk")
            s.recv(65536)
        except OSError:
            pass
        s.close()
    ls.close()


def test_garbage_gets_default_action(petrel_instance):
    port = free_port()
    stop = threading.Event()
    t = threading.Thread(target=garbage_server, args=(port, stop), daemon=True)
    t.start()
    try:
        sport = start(petrel_instance, "{ inet:127.0.0.1:%d, default_action=reject }" % port)
        c = Client(sport)
        code, text = c.reply()
        assert code == 550 or code == 554, text
        assert petrel_instance.wait_log(r"milter inet:127\.0\.0\.1:%d: connect: malformed "
                                        r"reply 'z': unknown reply code; default_action=reject"
                                        % port)
    finally:
        stop.set()
        t.join(5)


def test_unreachable_milter(petrel_instance):
    port = free_port()
    sport = start(petrel_instance, "{ inet:127.0.0.1:%d, default_action=accept }" % port)
    out, c = transaction(sport)
    queued(petrel_instance, out["eom"])
    assert petrel_instance.wait_log(r"milter inet:127\.0\.0\.1:%d: connect: connect: "
                                    r"Connection refused; default_action=accept" % port)


def test_quarantine_listed_and_released(petrel_instance, filters):
    f = filters({"edits": [["quarantine", "held for review"]]})
    port = start(petrel_instance, f.spec)
    out, c = transaction(port)
    qid = out["eom"][1][-1].split()[-1]
    queued(petrel_instance, out["eom"], queue="hold")
    c.cmd("QUIT")
    petrel = [petrel_instance.petrel_bin, "-c", petrel_instance.config_dir, "queue"]
    r = subprocess.run(petrel + ["list", "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    entries = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]
    assert [(e["queue_id"], e["queue_name"]) for e in entries] == [(qid, "hold")], r.stdout
    assert entries[0]["hold_reason"] == "held for review"
    r = subprocess.run(petrel + ["list"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r"(?m)^%s! .*\n +\(held: held for review\)\n" % qid, r.stdout), r.stdout
    r = subprocess.run(petrel + ["release", qid], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert petrel_instance.wait_log(r"%s: released from hold" % qid)
    assert [os.path.basename(p) for p in queue_files(petrel_instance, "hold")] == []
    assert wait_for(lambda: [os.path.basename(p) for q in ("incoming", "active", "deferred")
                             for p in queue_files(petrel_instance, q)] == [qid], timeout=10)


# --- non_smtpd_milters --------------------------------------------------------

def test_non_smtpd_milters_with_sendmail_t(petrel_instance, filters):
    from test_sendmail import PICKUP_CLEANUP_CF, program, sendmail, parse_qfile
    from test_sendmail import queue_files as sm_queue_files
    program("pickup", "pickup")
    f = filters({"edits": [["add", "X-Local-Filter", "seen"],
                           ["delrcpt", "<carol@example.test>"]]})
    inst = petrel_instance
    inst.write_master_cf(PICKUP_CLEANUP_CF)
    bindir = os.path.join(inst.base, "bin")
    os.makedirs(bindir, exist_ok=True)
    os.chmod(bindir, 0o755)
    os.symlink(inst.petrel_bin, os.path.join(bindir, "petrel"))
    inst.main_cf.update({"myhostname": "mail.example.test", "mydomain": "example.test",
                         "myorigin": "example.test", "mydestination": "localhost",
                         "command_directory": bindir, "non_smtpd_milters": f.spec,
                         "milter_command_timeout": "2s", "milter_content_timeout": "3s"})
    inst.write_main_cf()
    inst.start()
    msg = (b"From: alice@example.test\nTo: bob@example.test\nCc: carol@example.test\n"
           b"Subject: local\n\nbody\n")
    r = sendmail(inst, ["-t", "-i"], msg)
    assert r.returncode == 0, r.stderr
    # A queue file is complete (mode 0700) only once committed.
    files = wait_for(lambda: [p for p in sm_queue_files(inst.queue_dir, "incoming")
                              + sm_queue_files(inst.queue_dir, "active")
                              if os.stat(p).st_mode & 0o700 == 0o700], timeout=20)
    assert files and len(files) == 1, inst.log()
    q = parse_qfile(files[0])
    assert q["rcpts"] == ["bob@example.test"]
    assert b"\nX-Local-Filter: seen\n\nbody\n" in q["content"]
    ev = f.events()
    conn = [e for e in ev if e[0] == "connect"][0]
    assert conn[1] == "localhost" and conn[2] == "127.0.0.1"
    assert ["helo", "localhost"] in ev
    rcpts = sorted(e[1] for e in ev if e[0] == "rcpt")
    assert rcpts == ["<bob@example.test>", "<carol@example.test>"]
    # The next submission's faked session starts on the connection cleanup
    # kept (QUIT_NC): a new CONNECT, no new negotiation.
    r = sendmail(inst, ["-t", "-i"], msg.replace(b"Subject: local", b"Subject: again"))
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: [e[0] for e in f.events()].count("eom") == 2, timeout=20), inst.log()
    kinds = [e[0] for e in f.events()]
    assert kinds.count("connect") == 2 and kinds.count("negotiate") == 1, kinds


# --- real filters from Debian ---------------------------------------------------

def _which(prog):
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if os.access(os.path.join(d, prog), os.X_OK):
            return os.path.join(d, prog)
    return None


def _wait_port(port, proc, timeout=15):
    def up():
        if proc.poll() is not None:
            return True
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    return wait_for(up, timeout=timeout) and proc.poll() is None


@pytest.fixture
def opendkim_pair(tmp_path):
    """A signing OpenDKIM and a verifying one that finds the key in a test file."""
    if not (_which("opendkim") and _which("opendkim-genkey")):
        pytest.skip("opendkim and opendkim-tools are not installed")
    d = tmp_path / "dkim"
    d.mkdir()
    subprocess.run([_which("opendkim-genkey"), "-D", str(d), "-d", "example.org", "-s", "sel"],
                   check=True, timeout=60)
    txt = (d / "sel.txt").read_text()
    record = "".join(part for part in txt.split('"')[1::2])
    (d / "keys").write_text("sel._domainkey.example.org %s\n" % record)
    (d / "internal").write_text("192.0.2.1\n")
    procs = []
    ports = []
    for mode in ("s", "v"):
        port = free_port()
        conf = d / ("%s.conf" % mode)
        lines = ["Syslog no", "Mode %s" % mode, "Socket inet:%d@127.0.0.1" % port,
                 "PidFile %s" % (d / ("%s.pid" % mode)), "RequireSafeKeys no",
                 "Canonicalization relaxed/relaxed", "AuthservID mx.example.com"]
        if mode == "s":
            lines += ["Domain example.org", "Selector sel", "KeyFile %s" % (d / "sel.private")]
        else:
            lines += ["TestPublicKeys %s" % (d / "keys"), "InternalHosts %s" % (d / "internal"),
                      "AlwaysAddARHeader yes"]
        conf.write_text("\n".join(lines) + "\n")
        p = subprocess.Popen([_which("opendkim"), "-f", "-x", str(conf)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(p)
        ports.append(port)
        if not _wait_port(port, p):
            err = p.stderr.read().decode() if p.poll() is not None else "no socket"
            for q in procs:
                q.kill()
            pytest.fail("opendkim (mode %s) did not start: %s" % (mode, err))
    yield ports
    for p in procs:
        p.kill()
        p.wait(timeout=5)


def kept_connections(port):
    """Established TCP connections to a filter on 127.0.0.1:port."""
    r = subprocess.run(["ss", "-Htn", "state", "established", "dst", "127.0.0.1:%d" % port],
                       capture_output=True, text=True, timeout=10)
    return len([ln for ln in r.stdout.splitlines() if ln.strip()])


def test_opendkim_signs_and_verifies(petrel_instance, opendkim_pair):
    sign, verify = opendkim_pair
    port = start(petrel_instance, "inet:127.0.0.1:%d inet:127.0.0.1:%d" % (sign, verify),
                 milter_default_action="tempfail")
    # Twice, in two sessions. OpenDKIM answers the end of the message with
    # ACCEPT, after which libmilter cannot take QUIT_NC: each session must end
    # with QUIT and a closed socket (a kept one would hang the next CONNECT).
    for i in range(2):
        message = ("From: Sender <sender@example.org>\r\nTo: rcpt@example.net\r\n"
                   "Subject: signed\r\nDate: Tue, 1 Dec 2026 12:00:00 +0000\r\n"
                   "Message-Id: <dkim-test-%d@example.org>\r\n\r\nHello, DKIM.\r\n" % i)
        out, c = transaction(port, message=message)
        d = queued(petrel_instance, out["eom"])
        hdrs = headers_of(d["content"])
        assert any(h.startswith(b"DKIM-Signature:") for h in hdrs), hdrs
        ar = [h for h in d["content"].split(b"\n\n", 1)[0].replace(b"\n\t", b" ")
              .replace(b"\n ", b" ").split(b"\n") if h.startswith(b"Authentication-Results:")]
        assert ar and b"dkim=pass" in ar[0], ar or hdrs
        c.cmd("QUIT")
        c.close()
        assert wait_for(lambda: kept_connections(sign) == 0 and kept_connections(verify) == 0,
                        timeout=5), (kept_connections(sign), kept_connections(verify))
    assert not petrel_instance.wait_log(r"milter inet:.*default_action", timeout=0.2)


GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@pytest.fixture(scope="module")
def spamd(tmp_path_factory):
    """spamd on loopback, started once for the module (its start-up is slow),
    with network tests off."""
    if not (_which("spamd") and _which("spamass-milter")):
        pytest.skip("spamassassin and spamass-milter are not installed")
    d = tmp_path_factory.mktemp("spamd")
    port = free_port()
    p = subprocess.Popen([_which("spamd"), "-L", "-x", "-i", "127.0.0.1", "-p", str(port),
                          "-A", "127.0.0.1", "-s", "stderr", "-r", str(d / "spamd.pid"),
                          "--max-children", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not _wait_port(port, p, timeout=60):
        p.kill()
        pytest.skip("spamd did not start")
    yield port
    p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()


@pytest.fixture
def spamass(spamd, tmp_path):
    port = free_port()
    p = subprocess.Popen([_which("spamass-milter"), "-p", "inet:%d@127.0.0.1" % port,
                          "-r", "15", "--", "-d", "127.0.0.1", "-p", str(spamd)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not _wait_port(port, p):
        err = p.stderr.read().decode() if p.poll() is not None else "no socket"
        pytest.fail("spamass-milter did not start: %s" % err)
    yield port
    p.kill()
    p.wait(timeout=5)


def test_spamass_milter_rejects_gtube_and_tags_clean_mail(petrel_instance, spamass):
    port = start(petrel_instance, "inet:127.0.0.1:%d" % spamass,
                 milter_content_timeout="60s", milter_command_timeout="30s")
    spam = MESSAGE.replace("Body line one.", GTUBE)
    out, c = transaction(port, message=spam)
    assert out["eom"][0] == 550, out
    out, c2 = transaction(port)
    d = queued(petrel_instance, out["eom"])
    hdrs = headers_of(d["content"])
    assert any(h.startswith(b"X-Spam-Status: No") for h in hdrs), hdrs
    assert any(h.startswith(b"X-Spam-Checker-Version:") for h in hdrs), hdrs
    c.cmd("QUIT")
    c2.cmd("QUIT")
    # A later session, on a connection kept with QUIT_NC: still scanned.
    out, c3 = transaction(port)
    d = queued(petrel_instance, out["eom"])
    assert any(h.startswith(b"X-Spam-Status: No") for h in headers_of(d["content"]))
    c3.cmd("QUIT")
    out, c4 = transaction(port, message=spam)
    assert out["eom"][0] == 550, out
    c4.cmd("QUIT")


def test_negotiated_flags(petrel_instance, filters):
    f = filters({"variant": "flags", "edits": [["add", "X-Lead", "  two spaces"]]})
    port = start(petrel_instance, f.spec, mynetworks="192.0.2.0/24", local_recipient_maps="")
    big = MESSAGE.replace("Body line two.\r\n", "x" * 70 + "\r\n") + ("y" * 70 + "\r\n") * 3000
    out, c = transaction(port, rcpts=("nobody@relay.invalid", "rcpt@localhost"),
                         message=big)
    assert out["rcpt"][0][0] == 554 or out["rcpt"][0][0] == 454, out
    d = queued(petrel_instance, out["eom"])
    c.cmd("QUIT")
    assert wait_for(lambda: any(e[0] == "close" for e in f.events()), timeout=5)
    ev = f.events()
    # HDR_LEADSPC: the value as stored, its leading space included; and the
    # filter's own leading white space kept in what it adds.
    assert ["header", "Subject", " test\n folded"] in ev, ev
    assert b"\nX-Lead:  two spaces\n" in d["content"]
    # NOEOH: no end-of-header stage.
    assert not any(e[0] == "eoh" for e in ev)
    # RCPT_REJ: the recipient Petrel refused reaches the filter as an "error" one.
    rcpts = [e for e in ev if e[0] == "rcpt"]
    assert rcpts[0][1] == "<nobody@relay.invalid>" and rcpts[0][3] == "error", rcpts
    # As Postfix: {rcpt_host} is the status, {rcpt_addr} the text of the refusal.
    code, text = out["rcpt"][0]
    assert rcpts[0][4] == text[0].split()[0] and rcpts[0][5] == text[0].split(" ", 1)[1], rcpts
    assert rcpts[1][1] == "<rcpt@localhost>" and rcpts[1][3] == "smtp", rcpts
    # SKIP after the first body chunk: the rest of the body is not sent, the
    # message is whole.
    assert len([e for e in ev if e[0] == "body"]) == 1
    assert d["content"].count(b"y" * 70) == 3000


def test_progress_keeps_a_slow_filter_alive(petrel_instance, filters):
    # Six PROGRESS replies 0.5 s apart: 3 s in all, past content_timeout=2s,
    # but never 2 s without a packet.
    f = filters({"edits": [["progress", 6], ["add", "X-Slow", "done"]]})
    port = start(petrel_instance, "{ %s, content_timeout=2s }" % f.spec)
    out, c = transaction(port)
    d = queued(petrel_instance, out["eom"])
    assert b"\nX-Slow: done\n" in d["content"]
    c.cmd("QUIT")


def test_unknown_command(petrel_instance, filters):
    f = filters({"act": {"unknown": ["reply", "550", "5.5.1", "not here either"]}})
    port = start(petrel_instance, f.spec)
    c = greet(port)
    ehlo(c)
    assert c.cmd("FROBNICATE now") == (550, ["5.5.1 not here either"])
    assert wait_for(lambda: ["unknown", "FROBNICATE now"] in f.events(), timeout=5)
    assert c.cmd("NOOP")[0] == 250
    c.cmd("QUIT")


def test_milter_header_checks(petrel_instance, filters, tmp_path):
    table = tmp_path / "milter_header_checks"
    table.write_text("/^X-Drop:/ IGNORE\n/^X-Bad: *evil/ REJECT 5.7.1 bad header from filter\n")
    f = filters({"edits": [["add", "X-Drop", "gone"], ["add", "X-Keep", "kept"],
                           ["add", "X-Bad", "fine"]]}, name="ok")
    g = filters({"edits": [["add", "X-Bad", "evil"]]}, name="evil")
    port = start(petrel_instance, f.spec, milter_header_checks="regexp:%s" % table)
    out, c = transaction(port)
    d = queued(petrel_instance, out["eom"])
    hdrs = headers_of(d["content"])
    assert b"X-Keep: kept" in hdrs and b"X-Bad: fine" in hdrs
    assert not any(h.startswith(b"X-Drop") for h in hdrs), hdrs
    c.cmd("QUIT")
    petrel_instance.stop()
    petrel_instance.main_cf["smtpd_milters"] = g.spec
    petrel_instance.write_main_cf()
    petrel_instance.start()
    out, c = transaction(port)
    assert out["eom"] == (550, ["5.7.1 bad header from filter"]), out
    c.cmd("QUIT")


def test_bdat_through_milter(petrel_instance, filters):
    f = filters({"edits": [["add", "X-Chunked", "yes"]]})
    port = start(petrel_instance, f.spec)
    c = greet(port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<r@example.net>")[0] == 250
    part1, part2 = b"Subject: bdat\r\n\r\nfirst ", b"second\r\n"
    c.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert c.reply()[0] == 250
    c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    d = queued(petrel_instance, c.reply())
    assert d["content"].endswith(b"\nX-Chunked: yes\n\nfirst second\n")
    assert any(e[0] == "data" for e in f.events())
    c.cmd("QUIT")


def test_bdat_data_stage_reject(petrel_instance, filters):
    f = filters({"act": {"data": ["reply", "554", "5.7.1", "no data today"]}})
    port = start(petrel_instance, f.spec)
    c = greet(port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<s@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<r@example.net>")[0] == 250
    c.send(b"BDAT 5 LAST\r\nhello")
    assert c.reply() == (554, ["5.7.1 no data today"])
    c.cmd("QUIT")
    # The unfinished queue file goes with the transaction.
    assert wait_for(lambda: queue_files(petrel_instance) == [], timeout=10)


RSPAMD_CONF = """options {
  pidfile = "%(d)s/rspamd.pid";
  dbdir = "%(d)s";
  url_tld = "%(d)s/tlds.dat";
  dns { nameserver = ["127.0.0.1:1"]; timeout = 0.1s; retransmits = 1; }
}
logging { type = "file"; filename = "%(d)s/rspamd.log"; level = "info"; }
actions { reject = 15; add_header = 6; greylist = 4; }
worker "normal" { bind_socket = "127.0.0.1:%(normal)d"; count = 1; }
worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:%(proxy)d";
  milter = yes;
  timeout = 60s;
  count = 1;
  upstream "local" { default = yes; self_scan = yes; }
}
"""


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    """rspamd's milter proxy on loopback with a minimal configuration and no
    network (DNS pointed at a closed port, a short TLD list)."""
    exe = _which("rspamd")
    if exe is None:
        pytest.skip("rspamd is not installed")
    try:
        pwd_ent = __import__("pwd").getpwnam("_rspamd")
    except KeyError:
        pytest.skip("the _rspamd user does not exist")
    d = tmp_path_factory.mktemp("rspamd")
    os.chmod(d, 0o755)
    (d / "tlds.dat").write_text("com\norg\nnet\nexample\ninvalid\n")
    ports = {"d": str(d), "normal": free_port(), "proxy": free_port()}
    (d / "rspamd.conf").write_text(RSPAMD_CONF % ports)
    os.chown(d, pwd_ent.pw_uid, pwd_ent.pw_gid)
    # Its own process group: rspamd's workers would outlive a killed main process.
    p = subprocess.Popen([exe, "-f", "-u", "_rspamd", "-g", "_rspamd", "-c",
                          str(d / "rspamd.conf")], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        # SIGTERM to the main process: it stops and reaps its workers.
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, 9)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)
    if not _wait_port(ports["proxy"], p, timeout=60):
        stop()
        pytest.skip("rspamd did not start without network access")
    yield ports["proxy"]
    stop()


def test_rspamd_milter_rejects_gtube(petrel_instance, rspamd):
    port = start(petrel_instance, "inet:127.0.0.1:%d" % rspamd,
                 milter_content_timeout="60s", milter_command_timeout="30s")
    spam = MESSAGE.replace("Body line one.", GTUBE)
    out, c = transaction(port, message=spam)
    assert out["eom"][0] == 554 or out["eom"][0] == 550, out
    out, c2 = transaction(port)
    queued(petrel_instance, out["eom"])
    c.cmd("QUIT")
    c2.cmd("QUIT")
    # rspamd implements QUIT_NC itself: later sessions on kept connections.
    for _ in range(2):
        out, c3 = transaction(port, message=spam)
        assert out["eom"][0] in (550, 554), out
        c3.cmd("QUIT")
        out, c3 = transaction(port)
        queued(petrel_instance, out["eom"])
        c3.cmd("QUIT")


def test_protocol_version_2(petrel_instance, filters):
    # A version 2 MTA has no DATA or UNKNOWN stage and only the v2 actions.
    f = filters({"edits": [["add", "X-V2", "yes"]]})
    port = start(petrel_instance, "{ %s, protocol=2 }" % f.spec)
    out, c = transaction(port)
    d = queued(petrel_instance, out["eom"])
    assert b"\nX-V2: yes\n" in d["content"]
    c.cmd("QUIT")
    assert wait_for(lambda: any(e[0] == "close" for e in f.events()), timeout=5)
    kinds = [e[0] for e in f.events()]
    assert "eom" in kinds and "data" not in kinds, kinds


def test_macro_defaults_fill_in_missing_values(petrel_instance, filters):
    f = filters({"macros": ["{auth_type}", "{site}", "{unset}", "{mail_addr}"]})
    port = start(petrel_instance, f.spec,
                 milter_mail_macros="i {mail_addr} {auth_type} {site} {unset}",
                 milter_macro_defaults="auth_type=none, { site = main office }, "
                                       "{mail_addr}=default@example.org, {j}=ignored")
    out, c = transaction(port)
    queued(petrel_instance, out["eom"])
    c.cmd("QUIT")
    assert wait_for(lambda: any(e[0] == "macros" for e in f.events()), timeout=5)
    macros = [e for e in f.events() if e[0] == "macros"][0][2]
    # A default is only used when Petrel has no value of its own.
    assert macros == {"{auth_type}": "none", "{site}": "main office", "{unset}": None,
                      "{mail_addr}": "sender@example.org"}, macros
    conn = [e for e in f.events() if e[0] == "connect"][0]
    assert conn[3] == "mx.example.com"


@pytest.mark.parametrize("bad, why", [
    ({"smtpd_milters": "tcp:127.0.0.1:1"}, 'bad milter address "tcp:127.0.0.1:1"'),
    ({"smtpd_milters": "{ inet:127.0.0.1:1, default_action=bounce }"},
     'bad default_action "bounce"'),
    ({"smtpd_milters": "inet:127.0.0.1:1", "milter_default_action": "bounce"},
     "expected accept, reject"),
    ({"smtpd_milters": "inet:127.0.0.1:1", "milter_macro_defaults": "auth_type"},
     'expected name=value, got "auth_type"'),
])
def test_bad_milter_configuration_is_refused_at_start(petrel_instance, bad, why):
    # "petrel start" runs the checks of "petrel check": nothing starts, and
    # the error names the main.cf line.
    with pytest.raises(AssertionError) as e:
        start(petrel_instance, bad.pop("smtpd_milters"), **bad)
    assert why in str(e.value) and "main.cf:" in str(e.value), e.value


@pytest.mark.parametrize("override, why", [
    ("-o smtpd_milters=tcp:127.0.0.1:1", 'bad milter address "tcp:127.0.0.1:1"'),
    ("-o smtpd_milters={inet:127.0.0.1:1,colour=red}", 'unknown setting "colour"'),
])
def test_bad_milter_override_is_refused_at_start(petrel_instance, override, why):
    # A master.cf -o override is checked like main.cf, with its file and line.
    with pytest.raises(AssertionError) as e:
        petrel_instance.start_smtpd(main=dict(MAIN), smtpd_opts=override)
    assert why in str(e.value) and "master.cf:1: service 127.0.0.1:" in str(e.value), e.value


def test_helo_tempfail_holds_for_the_session(petrel_instance, filters):
    f = filters({"act": {"helo": ["tempfail"]}})
    port = start(petrel_instance, f.spec)
    c = greet(port)
    assert c.cmd("EHLO client.example")[0] == 451
    # As Postfix: a filter that refused the session at CONNECT or HELO
    # answers every later command the same way.
    assert c.cmd("HELO client.example") == (451, ["4.7.1 Service unavailable - try again later"])
    assert c.cmd("MAIL FROM:<s@example.org>")[0] in (451, 503)
    assert c.cmd("QUIT")[0] == 221
