"""test_policy.py - check_policy_service: SMTPD access policy delegation.

A policy server written here (threads, 127.0.0.1 only, every socket with a
timeout) records each request and answers with an action chosen by the
recipient's local part, so one SMTP session exercises the access actions:
OK, REJECT text, DEFER_IF_PERMIT, NNN text, DUNNO, a restriction class name,
HOLD, PREPEND, WARN. The tests check the attributes the server receives,
that one connection carries every request of a session (and that
smtpd_policy_service_request_limit ends it), that a server that does not
answer or cannot be reached gives smtpd_policy_service_default_action or the
per-service default_action in braces, and greylisting by the real postgrey:
450 first, 250 after --delay.
"""
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from petrel_instance import free_port, wait_for

from test_restrictions import Smtp

ATTRS = ["request", "protocol_state", "protocol_name", "helo_name", "queue_id", "sender",
         "recipient", "recipient_count", "client_address", "client_name",
         "reverse_client_name", "instance", "sasl_method", "sasl_username", "sasl_sender",
         "size", "ccert_subject", "ccert_issuer", "ccert_fingerprint",
         "ccert_pubkey_fingerprint", "encryption_protocol", "encryption_cipher",
         "encryption_keysize", "etrn_domain", "stress", "client_port", "policy_context",
         "server_address", "server_port", "compatibility_level", "mail_version"]

ACTIONS = {
    "ok": "OK",
    "reject": "REJECT go away",
    "rejectdsn": "REJECT 5.7.9 not here",
    "defer": "DEFER_IF_PERMIT come back later",
    "code": "550 5.7.2 policy says no",
    "dunno": "DUNNO",
    "cls": "policy_class",
    "hold": "HOLD quarantined by policy",
    "prepend": "PREPEND X-Policy: seen",
    "warn": "WARN looked odd",
}


class PolicyServer:
    """A policy server on 127.0.0.1: records requests and connections."""

    def __init__(self, answer=None, stall=(), path=None):
        if path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(path)
            os.chmod(path, 0o666)       # smtpd runs as mail_owner
            self.port = None
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.requests = []          # (connection number, dict)
        self.connections = 0
        self.answer = answer or self.by_recipient
        self.stall = stall          # local parts that get no answer
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.accept_loop, daemon=True)]
        self.threads[0].start()

    @staticmethod
    def by_recipient(req):
        local = req.get("recipient", "").split("@")[0]
        return ACTIONS.get(local, "DUNNO")

    def accept_loop(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            t = threading.Thread(target=self.serve, args=(conn, number), daemon=True)
            self.threads.append(t)
            t.start()

    def serve(self, conn, number):
        conn.settimeout(0.2)
        buf = b""
        with conn:
            while not self.stop.is_set() and len(buf) < 65536:
                try:
                    chunk = conn.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\n\n" in buf:
                    head, buf = buf.split(b"\n\n", 1)
                    req = dict(line.split("=", 1) for line in head.decode().split("\n"))
                    with self.lock:
                        self.requests.append((number, req))
                    if req.get("recipient", "").split("@")[0] in self.stall:
                        continue
                    conn.sendall(("action=%s\n\n" % self.answer(req)).encode())

    def close(self):
        self.stop.set()
        self.sock.close()
        for t in self.threads:
            t.join(timeout=5)


@pytest.fixture
def policy():
    servers = []

    def make(**kw):
        s = PolicyServer(**kw)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.close()


def start(inst, restrictions, **params):
    settings = {
        "myhostname": "mx.example.com",
        "mydomain": "example.com",
        "mydestination": "$myhostname, localhost",
        "alias_maps": "",
        "local_recipient_maps": "",
        "smtpd_restriction_classes": "policy_class",
        "policy_class": "reject",
        "smtpd_recipient_restrictions": restrictions,
    }
    settings.update(params)
    port = inst.start_smtpd(main=settings)
    assert wait_for(lambda: _listening(port), timeout=10), inst.log()
    return port


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.settimeout(5)
            return s.recv(512).startswith(b"220")
    except OSError:
        return False


def session(port, helo="client.example.org", sender="sender@example.org"):
    c = Smtp(port)
    assert c.reply().startswith("220")
    assert c.cmd("EHLO " + helo).startswith("250")
    assert c.cmd("MAIL FROM:<%s>" % sender).startswith("250")
    return c


def test_actions_and_attributes(petrel_instance, policy):
    srv = policy()
    port = start(petrel_instance, "check_policy_service inet:127.0.0.1:%d, permit" % srv.port,
                 smtpd_policy_service_policy_context="from-main-cf")
    c = session(port)
    client_port = str(c.sock.getsockname()[1])
    got = {local: c.cmd("RCPT TO:<%s@mx.example.com>" % local) for local in ACTIONS}
    assert got["ok"].startswith("250"), got
    assert got["reject"] == ("554 5.7.1 <reject@mx.example.com>: Recipient address rejected: "
                             "go away"), got
    assert got["rejectdsn"].startswith("554 5.7.9 <rejectdsn@mx.example.com>: Recipient "
                                       "address rejected: not here"), got
    assert got["defer"] == ("450 4.7.1 <defer@mx.example.com>: Recipient address rejected: "
                            "come back later"), got
    assert got["code"] == ("550 5.7.2 <code@mx.example.com>: Recipient address rejected: "
                           "policy says no"), got
    assert got["dunno"].startswith("250"), got       # on to "permit"
    assert got["cls"].startswith("554 5.7.1 <cls@mx.example.com>"), got
    assert got["hold"].startswith("250"), got
    assert got["prepend"].startswith("250"), got
    assert got["warn"].startswith("250"), got
    assert c.cmd("DATA").startswith("354")
    assert c.cmd("Subject: policy\r\n\r\nbody\r\n.").startswith("250")
    c.close()
    # HOLD sent the message to the hold queue, with the PREPEND header in it.
    held = os.path.join(petrel_instance.queue_dir, "hold")

    def held_files():
        return [os.path.join(d, f) for d, _, fs in os.walk(held) for f in fs]
    assert wait_for(held_files, timeout=10), petrel_instance.log()
    with open(held_files()[0], "rb") as f:
        assert b"X-Policy: seen" in f.read()
    assert petrel_instance.wait_log(r"warn: RCPT from \S+\[127\.0\.0\.1\]: looked odd")
    assert petrel_instance.wait_log(r"reject: RCPT from \S+\[127\.0\.0\.1\]: 554 5\.7\.1 "
                                    r"<reject@mx\.example\.com>: Recipient address rejected: "
                                    r"go away; from=<sender@example\.org> "
                                    r"to=<reject@mx\.example\.com>")

    reqs = [r for _, r in srv.requests]
    assert len(reqs) == len(ACTIONS)
    for r in reqs:
        assert sorted(r) == sorted(ATTRS), sorted(set(ATTRS) ^ set(r))
        assert r["request"] == "smtpd_access_policy"
        assert r["protocol_state"] == "RCPT"
        assert r["protocol_name"] == "ESMTP"
        assert r["helo_name"] == "client.example.org"
        assert r["sender"] == "sender@example.org"
        assert r["client_address"] == "127.0.0.1"
        assert r["recipient_count"] == "0"
        assert r["mail_version"] and r["compatibility_level"]
        assert r["client_port"] == client_port
        assert r["client_name"] and r["size"] == "0"
        assert r["server_address"] == "127.0.0.1" and r["server_port"] == str(port)
        assert r["reverse_client_name"] == r["client_name"]     # 127.0.0.1 is localhost
        assert r["policy_context"] == "from-main-cf"
    assert [r["recipient"] for r in reqs] == ["%s@mx.example.com" % k for k in ACTIONS]
    assert len({r["instance"] for r in reqs}) == 1
    # The queue file is opened by the first accepted recipient, as in Postfix.
    assert reqs[0]["queue_id"] == ""
    assert len({r["queue_id"] for r in reqs[1:]}) == 1 and reqs[1]["queue_id"]


def test_connection_reused_and_request_limit(petrel_instance, policy):
    srv = policy()
    port = start(petrel_instance, "check_policy_service inet:127.0.0.1:%d, permit" % srv.port)
    c = session(port)
    for i in range(5):
        assert c.cmd("RCPT TO:<ok%d@mx.example.com>" % i).startswith("250")
    # A new transaction is a new instance, on the same connection.
    assert c.cmd("RSET").startswith("250")
    assert c.cmd("MAIL FROM:<other@example.org>").startswith("250")
    assert c.cmd("RCPT TO:<ok@mx.example.com>").startswith("250")
    c.close()
    assert len(srv.requests) == 6
    assert {n for n, _ in srv.requests} == {1}, srv.requests
    assert srv.connections == 1
    assert len({r["instance"] for _, r in srv.requests[:5]}) == 1
    assert srv.requests[5][1]["instance"] != srv.requests[0][1]["instance"]

    srv2 = policy()
    petrel_instance.stop()
    port = start(petrel_instance, "check_policy_service { inet:127.0.0.1:%d, request_limit=2 }"
                 ", permit" % srv2.port)
    c = session(port)
    for i in range(4):
        assert c.cmd("RCPT TO:<ok%d@mx.example.com>" % i).startswith("250")
    c.close()
    assert [n for n, _ in srv2.requests] == [1, 1, 2, 2]


def test_unix_socket_and_sessions(petrel_instance, policy):
    """unix:private/policy is relative to queue_directory; a later SMTP session
    served by the same smtpd process reuses the connection."""
    port = start(petrel_instance, "check_policy_service unix:private/policy, permit")
    srv = policy(path=os.path.join(petrel_instance.queue_dir, "private", "policy"))
    for _ in range(3):
        c = session(port)
        assert c.cmd("RCPT TO:<reject@mx.example.com>").startswith("554 5.7.1 "
                                                                   "<reject@mx.example.com>")
        assert c.cmd("RCPT TO:<ok@mx.example.com>").startswith("250")
        c.close()
        pids = set(re.findall(r"smtpd\[(\d+)\]: connect from", petrel_instance.log()))
    assert len(srv.requests) == 6
    # One connection per smtpd process that served the sessions.
    assert srv.connections == len(pids), (srv.connections, pids)


def test_data_and_end_of_data_stages(petrel_instance, policy):
    srv = policy(answer=lambda req: "OK")
    spec = "check_policy_service { inet:127.0.0.1:%d, policy_context=eod }" % srv.port
    port = start(petrel_instance, "permit_mynetworks, reject_unauth_destination",
                 smtpd_data_restrictions=spec, smtpd_end_of_data_restrictions=spec)
    c = session(port)
    assert c.cmd("RCPT TO:<alice@mx.example.com>").startswith("250")
    assert c.cmd("DATA").startswith("354")
    body = "Subject: t\r\n\r\nhello\r\n"
    assert c.cmd(body + ".").startswith("250")
    c.close()
    states = [r["protocol_state"] for _, r in srv.requests]
    assert states == ["DATA", "END-OF-MESSAGE"], states
    data, eod = srv.requests[0][1], srv.requests[1][1]
    assert data["recipient_count"] == "1" and eod["recipient_count"] == "1"
    assert int(eod["size"]) >= len(body)
    assert eod["queue_id"]
    assert eod["policy_context"] == "eod"
    assert data["instance"] == eod["instance"]


def test_size_from_mail_command(petrel_instance, policy):
    """size= is the MAIL SIZE= value before DATA (0 without one), as in Postfix."""
    srv = policy(answer=lambda req: "DUNNO")
    port = start(petrel_instance, "check_policy_service inet:127.0.0.1:%d, "
                 "permit_mynetworks, reject_unauth_destination" % srv.port)
    c = Smtp(port)
    assert c.reply().startswith("220")
    assert c.cmd("EHLO client.example.org").startswith("250")
    assert c.cmd("MAIL FROM:<sender@example.org> SIZE=12345").startswith("250")
    assert c.cmd("RCPT TO:<alice@mx.example.com>").startswith("250")
    c.close()
    assert [r["size"] for _, r in srv.requests] == ["12345"]


def test_unanswered_and_unreachable_server(petrel_instance, policy):
    srv = policy(stall=("slow",))
    dead = free_port()
    port = start(petrel_instance,
                 "check_recipient_access inline:{ dunno@mx.example.com=policy_dunno }, "
                 "check_policy_service inet:127.0.0.1:%d, permit" % srv.port,
                 smtpd_restriction_classes="policy_class, policy_dunno",
                 policy_dunno="check_policy_service { inet:127.0.0.1:%d, default_action=DUNNO }"
                 % dead,
                 smtpd_policy_service_timeout="1s", smtpd_policy_service_try_limit="1")
    check = petrel_instance.petrel("check")
    assert check.returncode == 0, check.stdout + check.stderr
    c = session(port)
    t0 = time.monotonic()
    r = c.cmd("RCPT TO:<slow@mx.example.com>")
    assert r == ("451 4.3.5 <slow@mx.example.com>: Recipient address rejected: "
                 "Server configuration problem"), r
    assert time.monotonic() - t0 < 5
    # The stalled connection was closed; the next request gets a fresh one.
    assert c.cmd("RCPT TO:<ok@mx.example.com>").startswith("250")
    assert srv.connections == 2
    # Nothing listens there: the per-service default_action applies, then "permit".
    r = c.cmd("RCPT TO:<dunno@mx.example.com>")
    assert r.startswith("250"), r
    c.close()
    assert petrel_instance.wait_log(r"check_policy_service inet:127\.0\.0\.1:%d: read: timeout; "
                                    r"using default action \"451 4\.3\.5 Server configuration "
                                    r"problem\"" % srv.port)
    assert petrel_instance.wait_log(r"problem talking to policy server inet:127\.0\.0\.1:%d: "
                                    r"connect: Connection refused" % dead)


def test_bad_policy_spec_is_refused_at_start(petrel_instance):
    settings = {"smtpd_recipient_restrictions": "check_policy_service tcp:127.0.0.1:1, permit"}
    with pytest.raises(AssertionError) as e:
        petrel_instance.start_smtpd(main=settings)
    assert re.search(r"main\.cf:\d+: parameter smtpd_recipient_restrictions: check_policy_service "
                     r"tcp:127\.0\.0\.1:1: unsupported endpoint", str(e.value)), e.value


def test_bad_policy_spec_in_an_override_is_refused(petrel_instance):
    with pytest.raises(AssertionError) as e:
        petrel_instance.start_smtpd(
            smtpd_opts="-o smtpd_recipient_restrictions=check_policy_service,tcp:127.0.0.1:1")
    assert re.search(r"master\.cf:1: service 127\.0\.0\.1:\d+: parameter "
                     r"smtpd_recipient_restrictions: check_policy_service tcp:127\.0\.0\.1:1: "
                     r"unsupported endpoint", str(e.value)), e.value


def _postgrey_ok():
    return shutil.which("postgrey") or os.path.exists("/usr/sbin/postgrey")


@pytest.mark.skipif(os.geteuid() != 0, reason="postgrey drops privileges to a user: needs root")
@pytest.mark.skipif(not _postgrey_ok(), reason="postgrey is not installed (Debian package "
                    "postgrey)")
def test_postgrey_greylisting(petrel_instance, tmp_path):
    pg_port = free_port()
    dbdir = tmp_path / "postgrey"
    dbdir.mkdir()
    user = "postgrey"
    try:
        import pwd
        pwd.getpwnam(user)
    except KeyError:
        user = "nobody"
    shutil.chown(dbdir, user=user)
    wl = tmp_path / "empty_whitelist"
    wl.write_text("")
    pg = subprocess.Popen(
        ["/usr/sbin/postgrey", "--inet=127.0.0.1:%d" % pg_port, "--dbdir=%s" % dbdir,
         "--delay=3", "--user=%s" % user, "--whitelist-clients=%s" % wl,
         "--whitelist-recipients=%s" % wl, "--auto-whitelist-clients=0",
         "--pidfile=%s" % (tmp_path / "postgrey.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up():
            try:
                socket.create_connection(("127.0.0.1", pg_port), timeout=1).close()
                return True
            except OSError:
                return pg.poll() is None and False
        if not wait_for(lambda: up() or pg.poll() is not None, timeout=20) or pg.poll() is not None:
            pytest.skip("postgrey did not start: %s" % pg.stderr.read().decode(errors="replace"))
        port = start(petrel_instance, "check_policy_service inet:127.0.0.1:%d, permit" % pg_port)

        def attempt():
            c = session(port, sender="someone@example.org")
            r = c.cmd("RCPT TO:<alice@mx.example.com>")
            c.close()
            return r

        t0 = time.monotonic()
        first = attempt()
        assert first.startswith("450 4.") and "<alice@mx.example.com>: Recipient address " \
            "rejected: Greylisted" in first, first
        # Retry (bounded poll) until accepted: never before the delay has passed.
        replies = []

        def retried():
            replies.append((time.monotonic() - t0, attempt()))
            return replies[-1][1].startswith("250")
        assert wait_for(retried, timeout=20, interval=0.5), replies
        # postgrey counts whole seconds: it may accept up to 1s early.
        early = [r for t, r in replies if t < 1.5]
        assert early and all(r.startswith("450") for r in early), replies
        assert replies[-1][0] >= 2, replies
        assert petrel_instance.wait_log(r"reject: RCPT from \S+\[127\.0\.0\.1\]: 450 4\.\S+ "
                                        r"<alice@mx\.example\.com>: Recipient address rejected: "
                                        r"Greylisted")
    finally:
        pg.terminate()
        try:
            pg.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pg.kill()
            pg.wait(timeout=5)
