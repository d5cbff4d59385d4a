"""test_tls_client.py - TLS in the SMTP client end to end: SMTP -> smtpd -> cleanup
-> qmgr -> smtp -> a TLS-capable test server written here.

Certificates are made by the module with the openssl command: a CA, server
certificates for mx.example.test and other.example.test signed by it, a
self-signed one for mx.example.test, and a client certificate. dnsmasq on
127.0.0.1 serves mx.example.test (A 127.0.0.1) and example.test (MX
mxb.example.test, A 127.0.0.2: an MX on the instance's own 127.0.0.1 would be
a mail loop), so nexthops such as "[mx.example.test]:PORT" and
"example.test:PORT" reach the test server on its free port. The server
(TlsSink) offers STARTTLS or not, speaks TLS from the first byte in wrapper
mode, can break the handshake, and records per session whether the mail came
under TLS, the SNI name and the client certificate. The tests assert what an
operator sees: the TLS log line, the status= line with its text and dsn=.
"""
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from petrel_instance import free_port, wait_for
from test_smtp_client import send, status_line

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
pytestmark = [
    pytest.mark.skipif(not os.path.exists(DNSMASQ), reason="dnsmasq is not installed"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed"),
]

MAX_LINE = 4096

# --- certificates ----------------------------------------------------------------


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True,
                   timeout=60)


def _signed(d, name, cn, san):
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
             name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-out", name + ".crt", "-extfile", name + ".ext",
             cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tlscerts"))
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", "-days", "2", "-subj", "/CN=Petrel Test CA", cwd=d)
    _signed(d, "mx", "mx.example.test", "DNS:mx.example.test")
    _signed(d, "other", "other.example.test", "DNS:other.example.test")
    _signed(d, "mxb", "mxb.example.test", "DNS:mxb.example.test")
    _signed(d, "client", "client.petrel.test", "DNS:client.petrel.test")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "self.key", "-out",
             "self.crt", "-days", "2", "-subj", "/CN=mx.example.test", "-addext",
             "subjectAltName=DNS:mx.example.test", cwd=d)
    # Workers run as mail_owner: the files and the path to them must be readable.
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    path = d
    while path not in ("/", "/tmp", ""):
        os.chmod(path, os.stat(path).st_mode | 0o711)
        path = os.path.dirname(path)
    return {n: os.path.join(d, n) for n in os.listdir(d)}


# --- DNS -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dns():
    proc = None
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [DNSMASQ, "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
             "--pid-file=", "--listen-address=127.0.0.1", "--bind-interfaces",
             "--port=%d" % port, "--log-facility=-", "--user=root", "--local=/test/",
             "--host-record=mx.example.test,127.0.0.1",
             "--host-record=other.example.test,127.0.0.1",
             "--host-record=mxb.example.test,127.0.0.2",
             "--mx-host=example.test,mxb.example.test,10"],
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


# --- the instance ------------------------------------------------------------------

def start(inst, dns, extra=None, transport=None):
    """As test_smtp_client.start, with an lmtp service too."""
    params = {"myhostname": "petrel.test", "mydomain": "petrel.test",
              "myorigin": "petrel.test", "mydestination": "localhost",
              "mynetworks": "127.0.0.0/8", "dns_servers": dns,
              "smtp_helo_name": "client.petrel.test", "lmtp_lhlo_name": "client.petrel.test",
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
        "lmtp unix - - n - - lmtp\n"
        "bounce unix - - n - 0 bounce\n")
    inst.start()
    inst.smtp_port = port
    return port


# --- the test server -------------------------------------------------------------------
# TlsSink: an SMTP server on 127.0.0.1 and a free port. starttls: offer STARTTLS;
# wrapper: TLS at accept; broken: answer STARTTLS with 220 and then send bytes that
# are not TLS. cert/key: its certificate; tls13_only: refuse anything below TLS 1.3;
# ca: ask the client for a certificate signed by it; starttls_reply: the reply to
# STARTTLS instead of 220; lmtp: speak LMTP; drop_under_tls: close the connection
# at the first MAIL under TLS. Each session records how it ended
# ("quit", "eof", or "error" for anything that was not SMTP or not TLS).
# Every socket has a timeout.

class TlsSink:
    def __init__(self, cert, key, starttls=True, wrapper=False, broken=False,
                 tls13_only=False, ca=None, host="127.0.0.1", starttls_reply=None,
                 lmtp=False, drop_under_tls=False):
        self.starttls, self.wrapper, self.broken = starttls, wrapper, broken
        self.starttls_reply, self.lmtp = starttls_reply, lmtp
        self.drop_under_tls = drop_under_tls
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        if tls13_only:
            self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        if ca:
            self.ctx.load_verify_locations(ca)
            self.ctx.verify_mode = ssl.CERT_OPTIONAL
        self.sessions = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def messages(self):
        with self.lock:
            return [m for s in self.sessions for m in s["messages"]]

    def wait_messages(self, n, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages()) < n:
            time.sleep(0.05)
        return self.messages()

    def close(self):
        self.stopping = True
        self.sock.close()
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)

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
        session = {"tls": False, "starttls": False, "sni": None, "version": None,
                   "client_cert": None, "messages": [], "helos": [], "end": None}
        with self.lock:
            self.sessions.append(session)
        conn.settimeout(10)
        try:
            if self.wrapper:
                conn = self._handshake(conn, session)
            self._dialogue(conn, session)
        except EOFError:
            session["end"] = "eof"
        except (OSError, ValueError, ssl.SSLError) as e:
            session["end"] = "error: %s" % e
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _handshake(self, conn, session):
        def sni_cb(sslobj, name, ctx):
            session["sni"] = name
        self.ctx.sni_callback = sni_cb
        tconn = self.ctx.wrap_socket(conn, server_side=True)
        session["tls"] = True
        session["version"] = tconn.version()
        session["client_cert"] = tconn.getpeercert()
        return tconn

    def _dialogue(self, conn, session):
        buf = b""

        def readline():
            nonlocal buf
            while b"\r\n" not in buf:
                data = conn.recv(4096)
                if not data:
                    raise EOFError()
                buf += data
                if len(buf) > MAX_LINE:
                    raise ValueError("line too long")
            line, buf = buf.split(b"\r\n", 1)
            return line.decode("utf-8", "replace")

        send = lambda line: conn.sendall(line.encode() + b"\r\n")
        send("220 mx.example.test ESMTP tls sink")
        mail = None
        while not self.stopping:
            cmd = readline()
            verb = cmd.split(" ", 1)[0].upper()
            if verb == ("LHLO" if self.lmtp else "EHLO"):
                session["helos"].append(cmd)
                ext = ["mx.example.test", "PIPELINING", "8BITMIME"]
                if self.starttls and not session["tls"]:
                    ext.append("STARTTLS")
                for i, l in enumerate(ext):
                    send("250%s%s" % ("-" if i < len(ext) - 1 else " ", l))
            elif verb == "STARTTLS":
                session["starttls"] = True
                if buf:
                    raise ValueError("pipelined after STARTTLS")
                if self.starttls_reply:
                    send(self.starttls_reply)
                    continue
                send("220 2.0.0 Ready to start TLS")
                if self.broken:
                    conn.sendall(b"this is not a TLS server hello\r\n" * 4)
                    return
                conn = self._handshake(conn, session)
            elif verb == "MAIL" and self.drop_under_tls and session["tls"]:
                session["end"] = "dropped"
                return
            elif verb == "MAIL":
                mail = {"mail": cmd, "rcpts": [], "data": None}
                send("250 2.1.0 Ok")
            elif verb == "RCPT":
                mail["rcpts"].append(cmd)
                send("250 2.1.5 Ok")
            elif verb == "DATA":
                send("354 End data with <CR><LF>.<CR><LF>")
                data = []
                while True:
                    l = readline()
                    if l == ".":
                        break
                    data.append(l)
                mail["data"] = "\n".join(data)
                mail["tls"] = session["tls"]
                with self.lock:
                    session["messages"].append(mail)
                if self.lmtp:
                    for _ in mail["rcpts"]:
                        send("250 2.0.0 delivered")
                else:
                    send("250 2.0.0 Ok: queued as TLS%d" % len(self.messages()))
            elif verb == "RSET":
                send("250 2.0.0 Ok")
            elif verb == "QUIT":
                session["end"] = "quit"
                send("221 2.0.0 Bye")
                return
            else:
                session["end"] = "error: unknown command %r" % cmd
                send("502 5.5.2 Error: command not recognized")


@pytest.fixture
def servers():
    made = []

    def make(*args, **kw):
        s = TlsSink(*args, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def run(inst, dns, server, level, extra=None, nexthop=None, rcpt="alice@example.test"):
    params = {"smtp_tls_security_level": level, "smtp_tls_loglevel": "1",
              "smtp_starttls_timeout": "5s"}
    params.update(extra or {})
    nexthop = nexthop or "[mx.example.test]:%d" % server.port
    start(inst, dns, params, transport="example.test smtp:%s\n" % nexthop)
    send(inst, [rcpt])


def established(inst, kind, port, relay="mx.example.test[127.0.0.1]"):
    m = inst.wait_log(r"%s TLS connection established to %s:%d: "
                      r"(TLSv1\.[23]) with cipher (\S+) \((\d+)/(\d+) bits\)"
                      % (kind, re.escape(relay), port))
    assert m, inst.log()
    return m


# --- may -----------------------------------------------------------------------------

def test_may_delivers_over_tls(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"])
    run(petrel_instance, dns, srv, "may", {"smtp_tls_servername": "hostname"})
    line = status_line(petrel_instance, "alice@example.test", "sent")
    assert "relay=mx.example.test[127.0.0.1]:%d" % srv.port in line
    assert "250 2.0.0 Ok: queued as TLS1" in line
    msgs = srv.wait_messages(1)
    assert len(msgs) == 1 and msgs[0]["tls"]
    assert "Subject: client test" in msgs[0]["data"]
    s = srv.sessions[0]
    assert s["starttls"] and s["version"] == "TLSv1.3"
    assert s["sni"] == "mx.example.test"
    # EHLO again after the handshake.
    assert s["helos"] == ["EHLO client.petrel.test"] * 2
    # No CA file: the chain is not trusted, at "may" that does not matter.
    m = established(petrel_instance, "Untrusted", srv.port)
    assert m.group(1) == "TLSv1.3" and m.group(2).startswith("TLS_")
    assert int(m.group(3)) >= 128


def test_may_without_starttls_goes_in_plain_text(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"], starttls=False)
    run(petrel_instance, dns, srv, "may")
    status_line(petrel_instance, "alice@example.test", "sent")
    msgs = srv.wait_messages(1)
    assert len(msgs) == 1 and not msgs[0]["tls"]
    assert "TLS connection established" not in petrel_instance.log()


def test_may_failed_handshake_defers_fresh_mail(petrel_instance, dns, certs, servers):
    # Postfix's rule: the plain-text retry is only for mail that has waited
    # minimal_backoff_time; fresh mail is deferred.
    srv = servers(certs["mx.crt"], certs["mx.key"], broken=True)
    run(petrel_instance, dns, srv, "may", {"minimal_backoff_time": "300s",
                                           "maximal_backoff_time": "600s"})
    line = status_line(petrel_instance, "alice@example.test", "deferred")
    assert "dsn=4.7.5" in line and "Cannot start TLS: handshake failure" in line
    assert re.search(r"SSL_connect error to mx\.example\.test\[127\.0\.0\.1\]:%d" % srv.port,
                     petrel_instance.log())
    assert srv.messages() == []


def test_may_failed_handshake_retries_in_plain_text(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"], broken=True)
    run(petrel_instance, dns, srv, "may")
    line = status_line(petrel_instance, "alice@example.test", "sent", timeout=30)
    assert "relay=mx.example.test[127.0.0.1]:%d" % srv.port in line
    msgs = srv.wait_messages(1)
    assert len(msgs) == 1 and not msgs[0]["tls"]
    # The session that carried the mail sent no STARTTLS; an earlier one tried.
    carrier = [s for s in srv.sessions if s["messages"]][0]
    assert not carrier["starttls"]
    assert any(s["starttls"] for s in srv.sessions)


def test_may_broken_tls_session_defers_fresh_mail(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"], drop_under_tls=True)
    run(petrel_instance, dns, srv, "may", {"minimal_backoff_time": "300s",
                                           "maximal_backoff_time": "600s"})
    line = status_line(petrel_instance, "alice@example.test", "deferred")
    assert "dsn=4.4.2" in line
    assert "lost connection with mx.example.test[127.0.0.1] while sending MAIL FROM" in line
    assert srv.messages() == [] and len(srv.sessions) == 1


def test_may_broken_tls_session_retries_in_plain_text(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"], drop_under_tls=True)
    run(petrel_instance, dns, srv, "may")
    status_line(petrel_instance, "alice@example.test", "sent", timeout=30)
    msgs = srv.wait_messages(1)
    assert len(msgs) == 1 and not msgs[0]["tls"]
    assert any(s["tls"] and s["end"] == "dropped" for s in srv.sessions)
    carrier = [s for s in srv.sessions if s["messages"]][0]
    assert not carrier["starttls"]


def test_note_starttls_offer_at_level_none(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"])
    run(petrel_instance, dns, srv, "none", {"smtp_tls_note_starttls_offer": "yes"})
    status_line(petrel_instance, "alice@example.test", "sent")
    assert not srv.wait_messages(1)[0]["tls"]
    assert "Host offered STARTTLS: [mx.example.test]" in petrel_instance.log()


# --- encrypt ---------------------------------------------------------------------------

def test_encrypt_without_starttls_defers(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"], starttls=False)
    run(petrel_instance, dns, srv, "encrypt")
    line = status_line(petrel_instance, "alice@example.test", "deferred")
    assert "dsn=4.7.4" in line
    assert "TLS is required, but was not offered by host mx.example.test[127.0.0.1]" in line
    assert srv.messages() == []


def test_encrypt_with_self_signed_certificate_delivers(petrel_instance, dns, certs, servers):
    srv = servers(certs["self.crt"], certs["self.key"])
    run(petrel_instance, dns, srv, "encrypt", {"smtp_tls_CAfile": certs["ca.crt"]})
    status_line(petrel_instance, "alice@example.test", "sent")
    assert srv.wait_messages(1)[0]["tls"]
    established(petrel_instance, "Untrusted", srv.port)


def test_mandatory_protocols_refuse_a_tls13_only_server(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"], tls13_only=True)
    run(petrel_instance, dns, srv, "encrypt", {"smtp_tls_mandatory_protocols": "<=TLSv1.2"})
    line = status_line(petrel_instance, "alice@example.test", "deferred")
    assert "dsn=4.7.5" in line and "Cannot start TLS: handshake failure" in line
    assert srv.messages() == []


def test_wrapper_mode(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"], wrapper=True, starttls=False)
    run(petrel_instance, dns, srv, "encrypt", {"smtp_tls_wrappermode": "yes"})
    status_line(petrel_instance, "alice@example.test", "sent")
    msgs = srv.wait_messages(1)
    assert msgs[0]["tls"] and not srv.sessions[0]["starttls"]
    established(petrel_instance, "Untrusted", srv.port)


# --- verify and secure ----------------------------------------------------------------

def test_verify_with_the_ca_and_the_name_delivers(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"], ca=certs["ca.crt"])
    run(petrel_instance, dns, srv, "verify",
        {"smtp_tls_CAfile": certs["ca.crt"], "smtp_tls_cert_file": certs["client.crt"],
         "smtp_tls_key_file": certs["client.key"]})
    line = status_line(petrel_instance, "alice@example.test", "sent")
    assert "dsn=2.0.0" in line
    assert srv.wait_messages(1)[0]["tls"]
    established(petrel_instance, "Verified", srv.port)
    # The client certificate went to the server.
    cc = srv.sessions[0]["client_cert"]
    assert cc and ("commonName", "client.petrel.test") in [x[0] for x in cc["subject"]]


def test_verify_with_the_wrong_name_defers(petrel_instance, dns, certs, servers):
    srv = servers(certs["other.crt"], certs["other.key"])
    run(petrel_instance, dns, srv, "verify", {"smtp_tls_CAfile": certs["ca.crt"]})
    line = status_line(petrel_instance, "alice@example.test", "deferred")
    assert "dsn=4.7.5" in line and "Server certificate not verified" in line
    established(petrel_instance, "Trusted", srv.port)
    assert "Server hostname does not match certificate" in petrel_instance.log()
    assert srv.messages() == []


def test_verify_with_an_unknown_ca_defers(petrel_instance, dns, certs, servers):
    srv = servers(certs["self.crt"], certs["self.key"])
    run(petrel_instance, dns, srv, "verify", {"smtp_tls_CAfile": certs["ca.crt"]})
    line = status_line(petrel_instance, "alice@example.test", "deferred")
    assert "dsn=4.7.5" in line and "Server certificate not trusted" in line
    assert re.search(r"server certificate verification failed for "
                     r"mx\.example\.test\[127\.0\.0\.1\]:%d: self.signed certificate" % srv.port,
                     petrel_instance.log())
    assert srv.messages() == []


def test_secure_matches_the_nexthop_domain(petrel_instance, dns, certs, servers):
    # nexthop example.test:PORT: MX -> mxb.example.test, which dot-nexthop matches.
    srv = servers(certs["mxb.crt"], certs["mxb.key"], host="127.0.0.2")
    run(petrel_instance, dns, srv, "secure", {"smtp_tls_CAfile": certs["ca.crt"]},
        nexthop="example.test:%d" % srv.port)
    status_line(petrel_instance, "alice@example.test", "sent")
    assert srv.wait_messages(1)[0]["tls"]
    established(petrel_instance, "Verified", srv.port, relay="mxb.example.test[127.0.0.2]")


def test_secure_bracketed_nexthop_is_the_name_to_match(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"])
    run(petrel_instance, dns, srv, "secure", {"smtp_tls_CAfile": certs["ca.crt"],
                                              "smtp_tls_secure_cert_match": "nexthop"})
    status_line(petrel_instance, "alice@example.test", "sent")
    assert srv.wait_messages(1)[0]["tls"]
    established(petrel_instance, "Verified", srv.port)


def test_secure_nexthop_only_refuses_a_subdomain_name(petrel_instance, dns, certs, servers):
    srv = servers(certs["mxb.crt"], certs["mxb.key"], host="127.0.0.2")
    run(petrel_instance, dns, srv, "secure", {"smtp_tls_CAfile": certs["ca.crt"],
                                              "smtp_tls_secure_cert_match": "nexthop"},
        nexthop="example.test:%d" % srv.port)
    line = status_line(petrel_instance, "alice@example.test", "deferred")
    assert "Server certificate not verified" in line
    assert srv.messages() == []


# --- smtp_tls_policy_maps ---------------------------------------------------------------

def test_policy_maps_override_the_level_per_destination(petrel_instance, dns, certs, servers):
    tls_srv = servers(certs["mx.crt"], certs["mx.key"])
    plain_srv = servers(certs["mx.crt"], certs["mx.key"])
    req_srv = servers(certs["mx.crt"], certs["mx.key"], starttls=False)
    policy = os.path.join(petrel_instance.base, "tls_policy")
    with open(policy, "w") as f:
        f.write("[mx.example.test]:%d verify match=mx.example.test:nothing.test\n"
                "  protocols=>=TLSv1.2\n" % tls_srv.port)
        f.write("[mx.example.test]:%d encrypt\n" % req_srv.port)
    transport = ("a.test smtp:[mx.example.test]:%d\nb.test smtp:[mx.example.test]:%d\n"
                 "c.test smtp:[mx.example.test]:%d\n"
                 % (tls_srv.port, plain_srv.port, req_srv.port))
    start(petrel_instance, dns, {"smtp_tls_security_level": "none", "smtp_tls_loglevel": "1",
                                 "smtp_tls_CAfile": certs["ca.crt"],
                                 "smtp_tls_policy_maps": "texthash:" + policy},
          transport=transport)
    send(petrel_instance, ["alice@a.test"])
    send(petrel_instance, ["bob@b.test"])
    send(petrel_instance, ["carol@c.test"])
    status_line(petrel_instance, "alice@a.test", "sent")
    status_line(petrel_instance, "bob@b.test", "sent")
    line = status_line(petrel_instance, "carol@c.test", "deferred")
    assert "TLS is required, but was not offered by host" in line
    assert tls_srv.wait_messages(1)[0]["tls"]
    established(petrel_instance, "Verified", tls_srv.port)
    # Level none for b.test: STARTTLS offered but never sent.
    assert not plain_srv.wait_messages(1)[0]["tls"]
    assert not plain_srv.sessions[0]["starttls"]


def test_policy_attribute_in_braces(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"])
    policy = os.path.join(petrel_instance.base, "tls_policy")
    with open(policy, "w") as f:
        f.write("[MX.example.test]:%d secure { match = nothing.test mx.example.test }\n"
                % srv.port)
    run(petrel_instance, dns, srv, "may", {"smtp_tls_policy_maps": "texthash:" + policy,
                                           "smtp_tls_CAfile": certs["ca.crt"]})
    status_line(petrel_instance, "alice@example.test", "sent")
    assert srv.wait_messages(1)[0]["tls"]
    established(petrel_instance, "Verified", srv.port)


def test_invalid_policy_entry_defers(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"])
    policy = os.path.join(petrel_instance.base, "tls_policy")
    with open(policy, "w") as f:
        f.write("[mx.example.test]:%d encrypt match=mx.example.test\n" % srv.port)
    run(petrel_instance, dns, srv, "may", {"smtp_tls_policy_maps": "texthash:" + policy})
    line = status_line(petrel_instance, "alice@example.test", "deferred")
    assert "dsn=4.7.5" in line and "client TLS configuration problem" in line
    assert 'attribute "match" invalid at security level "encrypt"' in petrel_instance.log()
    assert srv.messages() == []


def test_encrypt_starttls_refused_defers(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"], starttls_reply="454 4.7.0 TLS not available")
    run(petrel_instance, dns, srv, "encrypt")
    line = status_line(petrel_instance, "alice@example.test", "deferred")
    assert "dsn=4.7.0" in line
    assert ("TLS is required, but host mx.example.test[127.0.0.1] refused to start TLS: "
            "454 4.7.0 TLS not available") in line
    assert srv.messages() == []


def test_may_starttls_refused_goes_in_plain_text(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"], starttls_reply="454 4.7.0 TLS not available")
    run(petrel_instance, dns, srv, "may")
    status_line(petrel_instance, "alice@example.test", "sent")
    msgs = srv.wait_messages(1)
    assert not msgs[0]["tls"] and srv.sessions[0]["starttls"]


# --- the connection cache ------------------------------------------------------------

def test_tls_session_reused_for_a_burst_and_closed_cleanly(petrel_instance, dns, certs,
                                                           servers):
    srv = servers(certs["mx.crt"], certs["mx.key"])
    start(petrel_instance, dns, {"smtp_tls_security_level": "encrypt",
                                 "smtp_connection_cache_time_limit": "2s"},
          transport="example.test smtp:[mx.example.test]:%d\n" % srv.port)
    n = 6
    for i in range(n):
        send(petrel_instance, ["reuse%d@example.test" % i])
    for i in range(n):
        status_line(petrel_instance, "reuse%d@example.test" % i, "sent")
    msgs = srv.wait_messages(n)
    assert len(msgs) == n and all(m["tls"] for m in msgs)
    per_session = [len(s["messages"]) for s in srv.sessions]
    assert max(per_session) >= 2, per_session
    # Expiry of a cached TLS session: no plain-text QUIT inside TLS, only a close.
    assert wait_for(lambda: all(s["end"] for s in srv.sessions), timeout=15), srv.sessions
    assert all(s["end"] in ("quit", "eof") for s in srv.sessions), srv.sessions


# --- LMTP ------------------------------------------------------------------------------

def test_lmtp_uses_lmtp_tls_security_level(petrel_instance, dns, certs, servers):
    srv = servers(certs["mx.crt"], certs["mx.key"], lmtp=True)
    start(petrel_instance, dns, {"lmtp_tls_security_level": "verify",
                                 "smtp_tls_CAfile": certs["ca.crt"], "smtp_tls_loglevel": "1"},
          transport="example.test lmtp:inet:mx.example.test:%d\n" % srv.port)
    send(petrel_instance, ["alice@example.test"])
    line = status_line(petrel_instance, "alice@example.test", "sent")
    assert "relay=mx.example.test[127.0.0.1]:%d" % srv.port in line
    assert srv.wait_messages(1)[0]["tls"]
    assert srv.sessions[0]["helos"] == ["LHLO client.petrel.test"] * 2
    established(petrel_instance, "Verified", srv.port)
