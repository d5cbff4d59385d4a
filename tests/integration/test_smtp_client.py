"""test_smtp_client.py - the SMTP client end to end: SMTP -> smtpd -> cleanup ->
qmgr -> smtp -> test servers, with a real DNS server.

dnsmasq (Debian's dnsmasq-base) is started by the module on 127.0.0.1 and a free
port, and the instance's dns_servers points at it. It serves MX and A records for
test domains whose servers are sinks on 127.0.0.x port 25 (so these tests need
root; they skip otherwise), a null MX, an MX pointing back at the instance's own
address, and a zone forwarded to a responder that answers SERVFAIL. The sinks are
small SMTP servers written here (Sink); the tests assert what an operator sees:
which server got the mail and its bytes on the wire, the delivery log lines
(relay=, dsn=, status=), how many sessions carried how many messages.
"""
import os
import re
import shutil
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from petrel_instance import free_port, wait_for

ROOT = os.geteuid() == 0
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
pytestmark = [
    pytest.mark.skipif(not ROOT, reason="sinks listen on 127.0.0.x port 25: needs root"),
    pytest.mark.skipif(not os.path.exists(DNSMASQ), reason="dnsmasq is not installed"),
]
SENDER = "sender@sender.test"

# --- the test servers ------------------------------------------------------------
# Sink: an SMTP (or LMTP) server on (host, port) that records every session: the
# EHLO/LHLO line, each transaction's MAIL and RCPT lines and the raw DATA bytes as
# they came over the wire. Tests steer it while it runs: ext (EHLO keywords),
# rcpt_reply(address) -> reply or None for 250, mail_reply, hang_after ("MAIL" or
# "DATA-END": stop answering there). Every socket has a timeout, every read a bound.

MAX_LINE = 4096
MAX_DATA = 20 * 1024 * 1024


class Sink:
    def __init__(self, host="127.0.0.1", port=0, lmtp=False, name="sink.test",
                 ext=("PIPELINING", "SIZE 10240000", "8BITMIME", "ENHANCEDSTATUSCODES",
                      "DSN", "SMTPUTF8")):
        self.lmtp = lmtp
        self.name = name
        self.ext = list(ext)
        self.rcpt_reply = None
        self.mail_reply = None
        self.hang_after = None
        self.sessions = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.host, self.port = self.sock.getsockname()
        self.stopping = False
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    # --- observation --------------------------------------------------------
    def messages(self):
        with self.lock:
            return [t for s in self.sessions for t in s["txns"] if t.get("data") is not None]

    def connections(self):
        with self.lock:
            return len(self.sessions)

    def wait_messages(self, n, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages()) >= n:
                return self.messages()
            time.sleep(0.05)
        return self.messages()

    def close(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)

    # --- serving --------------------------------------------------------------
    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn):
        session = {"helo": None, "txns": [], "quit": False}
        with self.lock:
            self.sessions.append(session)
        conn.settimeout(15)
        f = conn.makefile("rb")
        try:
            self._dialogue(conn, f, session)
        except (OSError, ValueError):
            pass
        finally:
            try:
                f.close()
                conn.close()
            except OSError:
                pass

    def _hang(self):
        deadline = time.monotonic() + 15
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.05)

    def _dialogue(self, conn, f, session):
        send = lambda line: conn.sendall(line.encode() + b"\r\n")
        send("220 %s ESMTP sink" % self.name)
        txn = None
        while not self.stopping:
            line = f.readline(MAX_LINE)
            if not line:
                return
            if not line.endswith(b"\r\n"):
                raise ValueError("line without CRLF: %r" % line)
            cmd = line[:-2].decode("utf-8", "replace")
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "LHLO"):
                session["helo"] = cmd
                lines = [self.name] + self.ext
                for i, l in enumerate(lines):
                    send("250%s%s" % ("-" if i < len(lines) - 1 else " ", l))
            elif verb == "HELO":
                session["helo"] = cmd
                send("250 %s" % self.name)
            elif verb == "MAIL":
                txn = {"mail": cmd, "rcpts": [], "accepted": [], "data": None}
                session["txns"].append(txn)
                if self.hang_after == "MAIL":
                    self._hang()
                    return
                send(self.mail_reply or "250 2.1.0 Ok")
            elif verb == "RCPT":
                m = re.match(r"RCPT TO:<([^>]*)>", cmd, re.I)
                addr = m.group(1) if m else ""
                txn["rcpts"].append(cmd)
                reply = self.rcpt_reply(addr) if self.rcpt_reply else None
                if reply is None:
                    txn["accepted"].append(addr)
                send(reply or "250 2.1.5 Ok")
            elif verb == "DATA":
                if not txn or not txn["accepted"]:
                    send("554 5.5.1 Error: no valid recipients")
                    continue
                send("354 End data with <CR><LF>.<CR><LF>")
                data = b""
                while True:
                    l = f.readline(MAX_LINE)
                    if not l:
                        return
                    if l == b".\r\n":
                        break
                    data += l
                    if len(data) > MAX_DATA:
                        raise ValueError("message too large")
                if self.hang_after == "DATA-END":
                    self._hang()
                    return
                txn["data"] = data
                if self.lmtp:
                    for a in txn["accepted"]:
                        send("250 2.0.0 <%s> delivered" % a)
                else:
                    send("250 2.0.0 Ok: queued as SINK%d" % len(self.messages()))
            elif verb == "RSET":
                txn = None
                send("250 2.0.0 Ok")
            elif verb == "NOOP":
                send("250 2.0.0 Ok")
            elif verb == "QUIT":
                session["quit"] = True
                send("221 2.0.0 Bye")
                return
            else:
                send("502 5.5.2 Error: command not recognized")



def unstuff(data):
    """The message as the sender meant it: dot-unstuffed, LF line ends."""
    out = []
    for line in data.split(b"\r\n"):
        out.append(line[1:] if line.startswith(b"..") else line)
    return b"\n".join(out)


# --- DNS -----------------------------------------------------------------------

def servfail_responder():
    """A UDP responder answering every query with SERVFAIL; returns (port, stop)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            try:
                q, peer = s.recvfrom(512)
            except (socket.timeout, OSError):
                continue
            if len(q) >= 12:
                s.sendto(q[:2] + bytes([0x81, 0x82]) + q[4:6] + b"\0\0\0\0\0\0" + q[12:], peer)
        s.close()

    threading.Thread(target=run, daemon=True).start()
    return s.getsockname()[1], stop


ZONE = [
    "--local=/test/",                   # answer NXDOMAIN / NODATA for .test, never forward
    "--mx-host=good.test,mx1.good.test,10", "--mx-host=good.test,mx2.good.test,20",
    "--host-record=mx1.good.test,127.0.0.2", "--host-record=mx2.good.test,127.0.0.3",
    "--mx-host=fallback.test,dead.fallback.test,10", "--mx-host=fallback.test,mx2.good.test,20",
    "--host-record=dead.fallback.test,127.0.0.4",
    "--dns-rr=nullmx.test,15,000000", "--host-record=nullmx.test,127.0.0.2",
    "--mx-host=loop.test,self.loop.test,10", "--host-record=self.loop.test,127.0.0.1",
    "--host-record=plain.test,127.0.0.6",
    "--mx-host=slow.test,slow.slow.test,10", "--host-record=slow.slow.test,127.0.0.5",
    "--mx-host=sender.test,dsn.sender.test,10", "--host-record=dsn.sender.test,127.0.0.9",
]


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    """dnsmasq on 127.0.0.1:PORT; yields "127.0.0.1:PORT" for dns_servers."""
    fail_port, stop = servfail_responder()
    port = None
    proc = None
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [DNSMASQ, "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
             "--pid-file=", "--listen-address=127.0.0.1", "--bind-interfaces",
             "--port=%d" % port, "--log-facility=-", "--user=root",
             "--server=/fail.test/127.0.0.1#%d" % fail_port] + ZONE,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)
        if proc.poll() is None:
            break
    assert proc.poll() is None, proc.stderr.read().decode()
    yield "127.0.0.1:%d" % port
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
    stop.set()


# --- the instance --------------------------------------------------------------

def start(inst, dns, extra=None, transport=None):
    params = {"myhostname": "petrel.test", "mydomain": "petrel.test",
              "myorigin": "petrel.test", "mydestination": "localhost",
              "mynetworks": "127.0.0.0/8", "dns_servers": dns,
              "smtp_helo_name": "client.petrel.test",
              "smtp_connect_timeout": "2s", "smtp_helo_timeout": "3s",
              "smtp_mail_timeout": "2s", "smtp_rcpt_timeout": "2s",
              "smtp_data_done_timeout": "2s",
              "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s", "bounce_queue_lifetime": "0"}
    if transport:
        tpath = os.path.join(inst.base, "transport")
        with open(tpath, "w") as f:
            f.write(transport)
        params["transport_maps"] = "texthash:" + tpath
    params.update(extra or {})
    inst.write_main_cf(params)
    port = free_port()
    inst.write_master_cf(
        "127.0.0.1:%d inet n - n - - smtpd\n" % port
        + "cleanup unix n - n - 0 cleanup\n"
        "qmgr unix n - n 300 1 qmgr\n"
        "smtp unix - - n - - smtp\n"
        "bounce unix - - n - 0 bounce\n")
    inst.start()
    inst.smtp_port = port
    return port


def send(inst, rcpts, message=None, sender=SENDER, mail_options=()):
    message = message or (b"From: <sender@sender.test>\r\nSubject: client test\r\n"
                          b"Message-ID: <client-test@sender.test>\r\n\r\nHello.\r\n"
                          b".leading dot\r\nlast line\r\n")
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        code, msg = s.mail(sender, list(mail_options))
        assert code == 250, (code, msg)
        for r in rcpts:
            code, msg = s.rcpt(r)
            assert code == 250, (r, code, msg)
        code, msg = s.data(message)
        assert code == 250, (code, msg)


def status_line(inst, rcpt, status, timeout=20):
    m = inst.wait_log(r"\w+: to=<%s>,[^\n]* status=%s[^\n]*" % (re.escape(rcpt), status),
                      timeout=timeout)
    assert m, "no status=%s line for %s in the log:\n%s" % (status, rcpt, inst.log())
    return m.group(0)


@pytest.fixture
def sinks():
    made = []

    def make(host, **kw):
        s = Sink(host=host, port=25, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


# --- DNS routing -----------------------------------------------------------------

def test_preferred_mx_gets_the_mail(petrel_instance, dns, sinks):
    mx1, mx2 = sinks("127.0.0.2", name="mx1.good.test"), sinks("127.0.0.3", name="mx2.good.test")
    start(petrel_instance, dns)
    send(petrel_instance, ["alice@good.test"])
    line = status_line(petrel_instance, "alice@good.test", "sent")
    assert "relay=mx1.good.test[127.0.0.2]:25" in line
    assert "dsn=2.0.0" in line and "250 2.0.0 Ok: queued as SINK" in line
    assert re.search(r"delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+", line)
    msgs = mx1.wait_messages(1)
    assert len(msgs) == 1 and mx2.connections() == 0
    t = msgs[0]
    assert t["mail"].startswith("MAIL FROM:<sender@sender.test>")
    assert t["rcpts"] == ["RCPT TO:<alice@good.test>"]
    # On the wire: CRLF only, the leading dot doubled, the content intact.
    assert b"\r\n..leading dot\r\n" in t["data"]
    assert re.search(rb"(?<!\r)\n", t["data"]) is None
    assert unstuff(t["data"]).endswith(b"\nHello.\n.leading dot\nlast line\n")
    assert mx1.sessions[0]["helo"] == "EHLO client.petrel.test"


def test_refused_first_mx_falls_back_to_the_second(petrel_instance, dns, sinks):
    mx2 = sinks("127.0.0.3", name="mx2.good.test")
    start(petrel_instance, dns)
    send(petrel_instance, ["bob@fallback.test"])
    line = status_line(petrel_instance, "bob@fallback.test", "sent")
    assert "relay=mx2.good.test[127.0.0.3]:25" in line
    assert len(mx2.wait_messages(1)) == 1
    assert re.search(r"connect to dead\.fallback\.test\[127\.0\.0\.4\]:25: Connection refused",
                     petrel_instance.log())


def test_domain_without_mx_uses_its_address(petrel_instance, dns, sinks):
    plain = sinks("127.0.0.6", name="plain.test")
    start(petrel_instance, dns)
    send(petrel_instance, ["carol@plain.test"])
    line = status_line(petrel_instance, "carol@plain.test", "sent")
    assert "relay=plain.test[127.0.0.6]:25" in line
    assert len(plain.wait_messages(1)) == 1


def test_null_mx_bounces_without_connecting(petrel_instance, dns, sinks):
    host = sinks("127.0.0.2", name="nullmx.test")
    start(petrel_instance, dns)
    send(petrel_instance, ["dave@nullmx.test"], sender="")
    line = status_line(petrel_instance, "dave@nullmx.test", "bounced")
    assert "dsn=5.1.10" in line and "relay=none" in line
    assert "does not accept mail (nullMX)" in line
    assert host.connections() == 0


def test_servfail_defers(petrel_instance, dns):
    start(petrel_instance, dns)
    send(petrel_instance, ["erin@fail.test"], sender="")
    line = status_line(petrel_instance, "erin@fail.test", "deferred")
    assert "dsn=4.4.3" in line and "type=MX" in line


def test_mx_pointing_at_ourselves_bounces(petrel_instance, dns):
    start(petrel_instance, dns)
    send(petrel_instance, ["frank@loop.test"], sender="")
    line = status_line(petrel_instance, "frank@loop.test", "bounced")
    assert "dsn=5.4.6" in line and "mail for loop.test loops back to myself" in line


# --- sink scenarios ----------------------------------------------------------------

def test_451_defers_then_delivers_after_flush(petrel_instance, dns, sinks):
    mx1 = sinks("127.0.0.6", name="plain.test")
    mx1.rcpt_reply = lambda a: "451 4.3.0 <%s>: try again later" % a
    start(petrel_instance, dns, {"minimal_backoff_time": "300s",
                                 "maximal_backoff_time": "600s"})
    send(petrel_instance, ["gina@plain.test"])
    line = status_line(petrel_instance, "gina@plain.test", "deferred")
    assert "dsn=4.3.0" in line
    assert ("host plain.test[127.0.0.6] said: 451 4.3.0 <gina@plain.test>: try again later "
            "(in reply to RCPT TO command)") in line
    assert mx1.messages() == []
    mx1.rcpt_reply = None
    r = petrel_instance.petrel("flush")
    assert r.returncode == 0, r.stderr
    status_line(petrel_instance, "gina@plain.test", "sent")
    assert len(mx1.wait_messages(1)) == 1


def test_550_on_one_of_three_recipients(petrel_instance, dns, sinks):
    mx1 = sinks("127.0.0.2", name="mx1.good.test")
    dsn = sinks("127.0.0.9", name="dsn.sender.test")
    mx1.rcpt_reply = lambda a: ("550 5.1.1 <%s>: Recipient address rejected: User unknown" % a
                                if a.startswith("bad") else None)
    start(petrel_instance, dns)
    send(petrel_instance, ["h1@good.test", "bad@good.test", "h3@good.test"])
    bounced = status_line(petrel_instance, "bad@good.test", "bounced")
    assert "dsn=5.1.1" in bounced and "(in reply to RCPT TO command)" in bounced
    status_line(petrel_instance, "h1@good.test", "sent")
    status_line(petrel_instance, "h3@good.test", "sent")
    msgs = mx1.wait_messages(1)
    assert len(msgs) == 1 and msgs[0]["accepted"] == ["h1@good.test", "h3@good.test"]
    # The sender hears of the one failure, with the server's reply in the DSN.
    notice = dsn.wait_messages(1)
    assert len(notice) == 1
    body = unstuff(notice[0]["data"])
    assert b"bad@good.test" in body and b"User unknown" in body
    assert re.search(rb"Final-Recipient: rfc822; ?bad@good.test", body)
    assert not re.search(rb"Final-Recipient: rfc822; ?h[13]@good.test", body)


def test_connect_timeout_defers(petrel_instance, dns):
    # A listener whose backlog is full drops the SYN: the connect can only time out.
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.5", 25))
    lst.listen(0)
    filler = socket.create_connection(("127.0.0.5", 25), timeout=2)
    try:
        start(petrel_instance, dns)
        t0 = time.monotonic()
        send(petrel_instance, ["ivan@slow.test"], sender="")
        line = status_line(petrel_instance, "ivan@slow.test", "deferred")
        assert "dsn=4.4.1" in line
        assert "connect to slow.slow.test[127.0.0.5]:25: Connection timed out" in line
        assert time.monotonic() - t0 < 15
    finally:
        filler.close()
        lst.close()


def test_timeout_after_mail_defers(petrel_instance, dns, sinks):
    mx1 = sinks("127.0.0.2", name="mx1.good.test")
    mx1.hang_after = "MAIL"
    start(petrel_instance, dns, {"smtp_mx_address_limit": "1"})
    send(petrel_instance, ["judy@good.test"], sender="")
    line = status_line(petrel_instance, "judy@good.test", "deferred")
    assert "dsn=4.4.2" in line
    assert "conversation with mx1.good.test[127.0.0.2] timed out while sending MAIL FROM" in line


def test_timeout_during_data_defers(petrel_instance, dns, sinks):
    mx1 = sinks("127.0.0.2", name="mx1.good.test")
    mx1.hang_after = "DATA-END"
    start(petrel_instance, dns, {"smtp_mx_address_limit": "1"})
    send(petrel_instance, ["kim@good.test"], sender="")
    line = status_line(petrel_instance, "kim@good.test", "deferred")
    assert "dsn=4.4.2" in line
    assert "conversation with mx1.good.test[127.0.0.2] timed out while sending end of data" in line


QP_MESSAGE = ("From: <sender@sender.test>\r\nSubject: 8bit\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: 8bit\r\n\r\n"
              "Gr\u00fc\u00dfe aus M\u00fcnchen = 100%\r\n"
              + "\u00e9" * 60 + "\r\n"
              "trailing space \r\n"
              ".dot line \u00e0\r\n").encode("utf-8")


def test_8bit_downgraded_to_quoted_printable(petrel_instance, dns, sinks):
    import email
    import email.policy
    mx1 = sinks("127.0.0.2", name="mx1.good.test",
                ext=("PIPELINING", "SIZE 10240000", "ENHANCEDSTATUSCODES"))
    start(petrel_instance, dns)
    send(petrel_instance, ["lena@good.test"], message=QP_MESSAGE, mail_options=["BODY=8BITMIME"])
    status_line(petrel_instance, "lena@good.test", "sent")
    t = mx1.wait_messages(1)[0]
    assert "BODY=8BITMIME" not in t["mail"]
    wire = t["data"]
    assert all(b < 128 for b in wire), "8-bit byte sent to a server without 8BITMIME"
    for l in wire.split(b"\r\n"):
        assert len(l) <= 78
    msg = email.message_from_bytes(unstuff(wire), policy=email.policy.default)
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert len(msg.get_all("Content-Transfer-Encoding")) == 1
    original = email.message_from_bytes(QP_MESSAGE.replace(b"\r\n", b"\n"),
                                         policy=email.policy.default)
    assert msg.get_content() == original.get_content()


def test_8bit_passthrough_with_8bitmime(petrel_instance, dns, sinks):
    mx1 = sinks("127.0.0.2", name="mx1.good.test")
    start(petrel_instance, dns)
    send(petrel_instance, ["mia@good.test"], message=QP_MESSAGE, mail_options=["BODY=8BITMIME"])
    status_line(petrel_instance, "mia@good.test", "sent")
    t = mx1.wait_messages(1)[0]
    assert "BODY=8BITMIME" in t["mail"]
    assert "Gr\u00fc\u00dfe".encode() in t["data"]


def test_smtputf8_needs_a_server_that_offers_it(petrel_instance, dns, sinks):
    mx1 = sinks("127.0.0.2", name="mx1.good.test", ext=("PIPELINING", "8BITMIME"))
    start(petrel_instance, dns)
    with smtplib.SMTP("127.0.0.1", petrel_instance.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        code, _ = s.mail("", ["SMTPUTF8"])
        assert code == 250
        code, _ = s.rcpt("j\u00fcrgen@good.test")
        assert code == 250
        code, _ = s.data(b"Subject: utf8\r\n\r\nhi\r\n")
        assert code == 250
    line = status_line(petrel_instance, "j\u00fcrgen@good.test", "bounced")
    assert "dsn=5.6.7" in line and "SMTPUTF8 is required" in line
    assert mx1.messages() == []


def test_size_limit_of_the_server_bounces(petrel_instance, dns, sinks):
    mx1 = sinks("127.0.0.2", name="mx1.good.test", ext=("PIPELINING", "SIZE 1000"))
    start(petrel_instance, dns)
    send(petrel_instance, ["nick@good.test"], sender="",
         message=b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 40)
    line = status_line(petrel_instance, "nick@good.test", "bounced")
    assert "dsn=5.3.4" in line and "exceeds size limit 1000 of server" in line
    assert all("MAIL" not in str(t) for t in mx1.messages())


def test_connection_reuse_for_a_burst(petrel_instance, dns, sinks):
    mx1 = sinks("127.0.0.2", name="mx1.good.test")
    start(petrel_instance, dns, {"smtp_connection_cache_time_limit": "5s"})
    n = 6
    for i in range(n):
        send(petrel_instance, ["reuse%d@good.test" % i])
    for i in range(n):
        status_line(petrel_instance, "reuse%d@good.test" % i, "sent")
    assert len(mx1.wait_messages(n)) == n
    per_session = [len(s["txns"]) for s in mx1.sessions]
    assert max(per_session) >= 2, per_session
    assert mx1.connections() < n
    # Idle past the cache time limit: QUIT is sent, the session ends.
    assert wait_for(lambda: all(s["quit"] for s in mx1.sessions), timeout=15), mx1.sessions


def test_no_cache_sends_quit_at_once(petrel_instance, dns, sinks):
    mx1 = sinks("127.0.0.2", name="mx1.good.test")
    start(petrel_instance, dns, {"smtp_connection_cache_on_demand": "no"})
    for i in range(2):
        send(petrel_instance, ["once%d@good.test" % i])
        status_line(petrel_instance, "once%d@good.test" % i, "sent")
    assert wait_for(lambda: len(mx1.sessions) == 2 and all(s["quit"] for s in mx1.sessions),
                    timeout=5), mx1.sessions
    assert [len(s["txns"]) for s in mx1.sessions] == [1, 1]


def test_bracketed_nexthop_and_port_without_mx(petrel_instance, dns):
    sink = Sink(host="127.0.0.1", port=0, name="literal.test",
                ext=("ENHANCEDSTATUSCODES",))   # no PIPELINING: one command at a time
    try:
        start(petrel_instance, dns,
              transport="literal.test smtp:[127.0.0.1]:%d\n" % sink.port)
        send(petrel_instance, ["o1@literal.test", "o2@literal.test"])
        line = status_line(petrel_instance, "o1@literal.test", "sent")
        assert "relay=127.0.0.1[127.0.0.1]:%d" % sink.port in line
        status_line(petrel_instance, "o2@literal.test", "sent")
        t = sink.wait_messages(1)[0]
        assert t["accepted"] == ["o1@literal.test", "o2@literal.test"]
    finally:
        sink.close()
