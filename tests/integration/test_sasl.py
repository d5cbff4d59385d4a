"""test_sasl.py - SMTP AUTH with real Cyrus SASL, server (smtpd) and client (smtp).

Each test makes a sasldb in its own directory with saslpasswd2 (Debian's
sasl2-bin) and an smtpd.conf next to it (auxprop/sasldb, mech_list PLAIN LOGIN
CRAM-MD5), and points cyrus_sasl_config_path there; smtpd runs as mail_owner,
so both files are made readable to it. Clients: Python's smtplib and the raw
Client of test_smtpd.py. The client tests run Petrel's smtp with relayhost
[127.0.0.1]:PORT against a second Petrel instance whose smtpd has SASL on, with
smtp_sasl_password_maps = texthash:FILE. Every wait is bounded.
"""
import base64
import os
import re
import shutil
import smtplib
import socket
import subprocess

import pytest

from petrel_instance import PetrelInstance, connect, free_port, wait_for
from test_smtpd import Client, greet, ehlo, queue_files, qdump
from test_policy import PolicyServer
from test_milter import Filter, HAVE_MILTER
from test_smtp_client import Sink

SASLPASSWD2 = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
pytestmark = pytest.mark.skipif(not os.path.exists(SASLPASSWD2),
                                reason="saslpasswd2 (sasl2-bin) is not installed")

HOST = "mx.sasl.test"
USERS = {"alice": "wonder land", "bob": "b0b-secret"}


def make_sasl_dir(base, users=USERS, mechs="PLAIN LOGIN CRAM-MD5"):
    d = os.path.join(base, "sasl")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    db = os.path.join(d, "sasldb2")
    for user, password in users.items():
        subprocess.run([SASLPASSWD2, "-c", "-p", "-f", db, "-u", HOST, user],
                       input=password.encode(), check=True, timeout=30)
    os.chmod(db, 0o644)
    with open(os.path.join(d, "smtpd.conf"), "w") as f:
        f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                "sasldb_path: %s\nmech_list: %s\n" % (db, mechs))
    os.chmod(os.path.join(d, "smtpd.conf"), 0o644)
    return d


def sasl_main(inst, **extra):
    main = {
        "myhostname": HOST,
        "mydomain": "sasl.test",
        "mydestination": "localhost",
        "mynetworks": "192.0.2.0/24",       # not the test client: relaying needs AUTH
        "local_recipient_maps": "",
        "smtpd_error_sleep_time": "0",
        "smtpd_sasl_auth_enable": "yes",
        "cyrus_sasl_config_path": make_sasl_dir(inst.base),
    }
    main.update(extra)
    return main


@pytest.fixture
def server(petrel_instance):
    """Starts smtpd with SASL; returns a function to (re)start with extra params."""
    def start(**extra):
        petrel_instance.start_smtpd(main=sasl_main(petrel_instance, **extra))
        return petrel_instance
    return start


def smtp(inst):
    s = smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10)
    s.ehlo("client.example")
    return s


def b64(text):
    return base64.b64encode(text.encode()).decode()


def auth_lines(lines):
    return [ln for ln in lines if ln.startswith("AUTH")]


# --- EHLO ---------------------------------------------------------------------------

def test_auth_offered_with_the_configured_mechanisms(server):
    inst = server()
    c = greet(inst.smtp_port)
    lines = auth_lines(ehlo(c))
    assert len(lines) == 1, lines
    assert sorted(lines[0].split()[1:]) == ["CRAM-MD5", "LOGIN", "PLAIN"], lines
    c.close()


def test_broken_clients_also_get_the_old_form(server):
    inst = server(broken_sasl_auth_clients="yes")
    c = greet(inst.smtp_port)
    lines = auth_lines(ehlo(c))
    assert len(lines) == 2 and lines[1].startswith("AUTH=") and lines[0][5:] == lines[1][5:]


def test_auth_not_offered_when_disabled(petrel_instance):
    main = sasl_main(petrel_instance, smtpd_sasl_auth_enable="no")
    petrel_instance.start_smtpd(main=main)
    c = greet(petrel_instance.smtp_port)
    assert auth_lines(ehlo(c)) == []
    assert c.cmd("AUTH PLAIN " + b64("\0alice\0wonder land")) == \
        (503, ["5.5.1 Error: authentication not enabled"])
    # Without AUTH, the MAIL FROM AUTH= parameter is not known either.
    code, _ = c.cmd("MAIL FROM:<a@b.example> AUTH=<>")
    assert code == 555


def test_tls_auth_only_without_tls(server):
    inst = server(smtpd_tls_auth_only="yes")
    c = greet(inst.smtp_port)
    assert auth_lines(ehlo(c)) == []
    assert c.cmd("AUTH PLAIN " + b64("\0alice\0wonder land")) == \
        (504, ["5.5.4 Encryption required for requested authentication mechanism"])


def test_exceptions_networks_hide_auth(server):
    inst = server(smtpd_sasl_exceptions_networks="127.0.0.0/8")
    c = greet(inst.smtp_port)
    assert auth_lines(ehlo(c)) == []


def test_security_options_filter_mechanisms(server):
    inst = server(smtpd_sasl_security_options="noanonymous, noplaintext")
    c = greet(inst.smtp_port)
    assert auth_lines(ehlo(c)) == ["AUTH CRAM-MD5"]
    code, lines = c.cmd("AUTH PLAIN " + b64("\0alice\0wonder land"))
    assert (code, lines) == (504, ["5.5.4 Unrecognized authentication type"])


def test_discard_ehlo_keywords_auth(server):
    inst = server(smtpd_discard_ehlo_keywords="auth")
    c = greet(inst.smtp_port)
    assert auth_lines(ehlo(c)) == []
    assert c.cmd("AUTH PLAIN " + b64("\0alice\0wonder land"))[0] == 503


# --- AUTH ---------------------------------------------------------------------------

def test_plain_login_and_cram_md5_succeed(server):
    inst = server()
    for mech in ("PLAIN", "LOGIN", "CRAM-MD5"):
        s = smtp(inst)
        s.user, s.password = "alice", USERS["alice"]
        code, text = s.auth(mech, getattr(s, "auth_" + mech.lower().replace("-", "_")),
                            initial_response_ok=(mech == "PLAIN"))
        assert (code, text) == (235, b"2.7.0 Authentication successful"), mech
        s.quit()


def test_plain_with_334_and_login_with_initial_response(server):
    inst = server()
    c = greet(inst.smtp_port)
    ehlo(c)
    assert c.cmd("AUTH PLAIN") == (334, [""])
    assert c.cmd(b64("\0bob\0b0b-secret")) == (235, ["2.7.0 Authentication successful"])
    c.close()
    c = greet(inst.smtp_port)
    ehlo(c)
    code, lines = c.cmd("AUTH LOGIN " + b64("alice"))
    assert code == 334 and base64.b64decode(lines[0]).startswith(b"Password")
    assert c.cmd(b64(USERS["alice"])) == (235, ["2.7.0 Authentication successful"])


def test_wrong_password_gets_535_and_is_logged(server):
    inst = server()
    s = smtp(inst)
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.user, s.password = "alice", "wrong"
        s.auth("PLAIN", s.auth_plain)
    assert e.value.smtp_code == 535
    assert e.value.smtp_error.startswith(b"5.7.8 Error: authentication failed:")
    assert inst.wait_log(r"warning: \S+\[127\.0\.0\.1\]: SASL PLAIN authentication "
                         r"failed: [^\n]+, sasl_username=")
    # A failure does not prevent a second try on the same session.
    s.user, s.password = "alice", USERS["alice"]
    assert s.auth("PLAIN", s.auth_plain)[0] == 235
    s.quit()
    assert inst.wait_log(r"disconnect from [^\n]* auth=1/2")


def test_cancel_bad_base64_twice_and_transaction(server):
    inst = server()
    c = greet(inst.smtp_port)
    ehlo(c)
    assert c.cmd("AUTH LOGIN") == (334, [b64("Username:")])
    assert c.cmd("*") == (501, ["5.7.0 Authentication aborted"])
    assert inst.wait_log(r"warning: \S+\[127\.0\.0\.1\]: SASL LOGIN authentication aborted")
    assert c.cmd("AUTH PLAIN !!!notbase64") == (501, ["5.5.2 Cannot decode response"])
    assert c.cmd("AUTH PLAIN") == (334, [""])
    assert c.cmd("@@@@") == (501, ["5.5.2 Cannot decode response"])
    assert c.cmd("AUTH") == (501, ["5.5.4 Syntax: AUTH mechanism"])
    assert c.cmd("AUTH PLAIN a b") == (501, ["5.5.4 Syntax: AUTH mechanism"])
    assert c.cmd("AUTH X-NONE") == (504, ["5.5.4 Unrecognized authentication type"])
    assert c.cmd("MAIL FROM:<a@b.example>")[0] == 250
    assert c.cmd("AUTH PLAIN " + b64("\0alice\0wonder land")) == \
        (503, ["5.5.1 Error: MAIL transaction in progress"])
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("AUTH PLAIN " + b64("\0alice\0wonder land"))[0] == 235
    assert c.cmd("AUTH PLAIN " + b64("\0alice\0wonder land")) == \
        (503, ["5.5.1 Error: already authenticated"])
    c.close()


def test_response_limit(server):
    inst = server(smtpd_sasl_response_limit="100")
    c = greet(inst.smtp_port)
    ehlo(c)
    assert c.cmd("AUTH PLAIN") == (334, [""])
    assert c.cmd("A" * 5000) == (500, ["5.5.6 SASL response limit exceeded"])
    assert c.cmd("NOOP")[0] == 250


def test_auth_errors_count_toward_the_hard_limit(server):
    inst = server(smtpd_hard_error_limit="3")
    c = greet(inst.smtp_port)
    ehlo(c)
    for _ in range(3):
        assert c.cmd("AUTH PLAIN " + b64("\0alice\0nope"))[0] == 535
    assert c.cmd("NOOP")[0] == 421


# --- what authentication changes ---------------------------------------------------

def test_authenticated_client_may_relay(server):
    inst = server(smtpd_sasl_authenticated_header="yes")
    s = smtp(inst)
    code, text = s.docmd("MAIL FROM:<alice@sasl.test>")
    assert code == 250
    code, text = s.docmd("RCPT TO:<someone@elsewhere.example>")
    assert code in (454, 554) and b"Relay access denied" in text
    s.rset()
    s.login("alice", USERS["alice"])
    assert s.docmd("MAIL FROM:<alice@sasl.test> AUTH=alice@sasl.test")[0] == 250
    assert s.docmd("RCPT TO:<someone@elsewhere.example>")[0] == 250
    code, text = s.data(b"Subject: relayed\r\n\r\nhi\r\n")
    assert code == 250, text
    qid = text.decode().split()[-1]
    s.quit()
    m = inst.wait_log(r"%s: client=\S+\[127\.0\.0\.1\](:\d+)?, sasl_method=\S+, "
                      r"sasl_username=alice, sasl_sender=alice@sasl\.test\n" % qid)
    assert m, inst.log()
    assert wait_for(lambda: [p for p in queue_files(inst) if os.path.basename(p) == qid]), \
        queue_files(inst)
    q = qdump([p for p in queue_files(inst) if os.path.basename(p) == qid][0])
    head = q["content"].split(b"\n\n")[0]
    assert b"\n\t(Authenticated sender: alice)\n" in head, head
    assert re.search(rb"\n\tby mx\.sasl\.test \([^)]*\) with ESMTPA id ", head), head
    assert q["attrs"].get("sasl_username") == "alice"
    assert q["attrs"].get("sasl_sender") == "alice@sasl.test"


def test_unauthenticated_received_is_esmtp(server):
    inst = server(smtpd_relay_restrictions="permit")
    s = smtp(inst)
    assert s.docmd("MAIL FROM:<x@sasl.test>")[0] == 250
    assert s.docmd("RCPT TO:<y@elsewhere.example>")[0] == 250
    code, text = s.data(b"Subject: plain\r\n\r\nhi\r\n")
    qid = text.decode().split()[-1]
    s.quit()
    assert wait_for(lambda: [p for p in queue_files(inst) if os.path.basename(p) == qid])
    q = qdump([p for p in queue_files(inst) if os.path.basename(p) == qid][0])
    head = q["content"].split(b"\n\n")[0]
    assert b"Authenticated sender" not in head
    assert re.search(rb"\n\tby mx\.sasl\.test \([^)]*\) with ESMTP id ", head), head
    assert inst.wait_log(r"%s: client=\S+\[127\.0\.0\.1\](:\d+)?\n" % qid)


def test_policy_sees_the_login(server):
    srv = PolicyServer(answer=lambda req: "DUNNO")
    try:
        inst = server(smtpd_recipient_restrictions="check_policy_service inet:127.0.0.1:%d, "
                      "permit_sasl_authenticated, reject" % srv.port)
        s = smtp(inst)
        s.login("bob", USERS["bob"])
        assert s.docmd("MAIL FROM:<bob@sasl.test> AUTH=bob+2Bx@sasl.test")[0] == 250
        assert s.docmd("RCPT TO:<r@elsewhere.example>")[0] == 250
        s.quit()
        assert wait_for(lambda: srv.requests, timeout=5)
        req = srv.requests[-1][1]
        assert req["sasl_username"] == "bob"
        assert req["sasl_method"] in ("CRAM-MD5", "PLAIN", "LOGIN")
        # As in Postfix, the value stays xtext ("+" is "+2B").
        assert req["sasl_sender"] == "bob+2Bx@sasl.test"
    finally:
        srv.close()


@pytest.mark.skipif(not HAVE_MILTER, reason="python3-milter (libmilter) is not installed")
def test_milter_sees_auth_macros(server, tmp_path):
    f = Filter(tmp_path, {"macros": ["{auth_type}", "{auth_authen}", "{auth_author}"]})
    try:
        inst = server(smtpd_milters=f.spec,
                      milter_mail_macros="i {auth_type} {auth_authen} {auth_author}")
        s = smtp(inst)
        s.login("alice", USERS["alice"])
        assert s.docmd("MAIL FROM:<alice@sasl.test> AUTH=boss@sasl.test")[0] == 250
        s.quit()
        assert wait_for(lambda: any(e[0] == "macros" for e in f.events()), timeout=5)
        macros = [e for e in f.events() if e[0] == "macros"][0][2]
        assert macros["{auth_authen}"] == "alice"
        assert macros["{auth_author}"] == "boss@sasl.test"
        assert macros["{auth_type}"] in ("CRAM-MD5", "PLAIN", "LOGIN")
    finally:
        f.stop()


def test_auth_param_ignored_without_login(server):
    inst = server()
    c = greet(inst.smtp_port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<x@sasl.test> AUTH=x@sasl.test")[0] == 250
    assert c.cmd("RCPT TO:<y@elsewhere.example>")[0] in (454, 554)
    c.close()


def test_bad_smtpd_sasl_type_is_fatal(petrel_instance):
    main = sasl_main(petrel_instance, smtpd_sasl_type="dovecot")
    petrel_instance.start_smtpd(main=main)
    # The worker that would serve this connection stops at start-up: no greeting.
    with connect(petrel_instance.smtp_port, timeout=3) as sock:
        try:
            assert sock.recv(100) == b""
        except (socket.timeout, ConnectionResetError):
            pass
    assert petrel_instance.wait_log(r"fatal: smtpd_sasl_type: unsupported SASL server "
                                    r"implementation \"dovecot\""), petrel_instance.log()


def login_maps(inst):
    path = os.path.join(inst.base, "login_maps")
    with open(path, "w") as f:
        f.write("alice@sasl.test alice\nshared@sasl.test alice, BOB\n@team.test bob\n")
    os.chmod(path, 0o644)
    return "texthash:" + path


@pytest.mark.parametrize("restriction, cases", [
    ("reject_sender_login_mismatch", [
        (None, "alice@sasl.test", "553 5.7.1 <alice@sasl.test>: Sender address rejected: "
                                  "not logged in"),
        (None, "nobody@sasl.test", None),
        (None, "", None),
        ("alice", "alice@sasl.test", None),
        ("alice", "shared@sasl.test", None),
        ("bob", "shared@sasl.test", None),
        ("bob", "x+tag@team.test", None),
        ("bob", "alice@sasl.test", "553 5.7.1 <alice@sasl.test>: Sender address rejected: "
                                   "not owned by user bob"),
        ("bob", "nobody@sasl.test", "553 5.7.1 <nobody@sasl.test>: Sender address rejected: "
                                    "not owned by user bob"),
        ("bob", "", None),
    ]),
    ("reject_known_sender_login_mismatch", [
        ("bob", "nobody@sasl.test", None),
        ("bob", "alice@sasl.test", "553 5.7.1 <alice@sasl.test>: Sender address rejected: "
                                   "not owned by user bob"),
        (None, "alice@sasl.test", "553 5.7.1 <alice@sasl.test>: Sender address rejected: "
                                  "not logged in"),
    ]),
    ("reject_authenticated_sender_login_mismatch", [
        (None, "alice@sasl.test", None),
        ("bob", "alice@sasl.test", "553 5.7.1 <alice@sasl.test>: Sender address rejected: "
                                   "not owned by user bob"),
    ]),
    ("reject_unauthenticated_sender_login_mismatch", [
        (None, "alice@sasl.test", "553 5.7.1 <alice@sasl.test>: Sender address rejected: "
                                  "not logged in"),
        ("bob", "alice@sasl.test", None),
    ]),
])
def test_sender_login_mismatch(petrel_instance, restriction, cases):
    main = sasl_main(petrel_instance, smtpd_delay_reject="no",
                     smtpd_sender_restrictions=restriction)
    main["smtpd_sender_login_maps"] = login_maps(petrel_instance)
    petrel_instance.start_smtpd(main=main)
    for user, sender, reply in cases:
        c = greet(petrel_instance.smtp_port)
        ehlo(c)
        if user:
            assert c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, USERS[user])))[0] == 235
        code, lines = c.cmd("MAIL FROM:<%s>" % sender)
        if reply is None:
            assert code == 250, (user, sender, code, lines)
        else:
            assert "%d %s" % (code, lines[0]) == reply, (user, sender)
        c.close()
    if any(r for _u, _s, r in cases):
        assert petrel_instance.wait_log(r"NOQUEUE: reject: MAIL from \S+: 553 5\.7\.1 ")


# --- the client: smtp -> second instance's smtpd with SASL -------------------------

def start_receiver(base, **extra):
    """A second instance: smtpd with SASL and cleanup; mail stays in its queue."""
    rcv = PetrelInstance(os.path.join(base, "receiver"))
    rcv.start_smtpd(main=sasl_main(rcv, **extra))
    return rcv


def start_sender(inst, relay_port, passwd, **extra):
    path = os.path.join(inst.base, "sasl_passwd")
    with open(path, "w") as f:
        f.write(passwd)
    params = {"myhostname": "client.sasl.test", "mydomain": "sasl.test",
              "myorigin": "sasl.test", "mydestination": "localhost",
              "mynetworks": "127.0.0.0/8",
              "relayhost": "[127.0.0.1]:%d" % relay_port,
              "smtp_sasl_auth_enable": "yes",
              "smtp_sasl_password_maps": "texthash:" + path,
              "smtp_connect_timeout": "2s", "smtp_helo_timeout": "5s",
              "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s", "bounce_queue_lifetime": "0"}
    params.update(extra)
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


def submit(inst, rcpt="far@elsewhere.example"):
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
        s.sendmail("me@sasl.test", [rcpt], b"Subject: via sasl\r\n\r\nhello\r\n")


@pytest.fixture
def receiver(tmp_path):
    made = []

    def make(**extra):
        r = start_receiver(str(tmp_path), **extra)
        made.append(r)
        return r
    yield make
    for r in made:
        r.teardown()


@pytest.mark.parametrize("key", ["[127.0.0.1]:PORT", "127.0.0.1"])
def test_client_authenticates_and_delivers(petrel_instance, receiver, key):
    rcv = receiver()
    key = key.replace("PORT", str(rcv.smtp_port))
    start_sender(petrel_instance, rcv.smtp_port, "%s alice:%s\n" % (key, USERS["alice"]))
    submit(petrel_instance)
    line = petrel_instance.wait_log(r"to=<far@elsewhere\.example>,[^\n]* status=sent[^\n]*",
                                    timeout=20)
    assert line, petrel_instance.log()
    assert rcv.wait_log(r"client=localhost\[127\.0\.0\.1\][^\n]*, sasl_method=CRAM-MD5, "
                        r"sasl_username=alice") or \
        rcv.wait_log(r"sasl_method=\S+, sasl_username=alice"), rcv.log()


def test_client_plain_when_plaintext_allowed(petrel_instance, receiver):
    rcv = receiver()
    start_sender(petrel_instance, rcv.smtp_port,
                 "[127.0.0.1]:%d bob:%s\n" % (rcv.smtp_port, USERS["bob"]),
                 smtp_sasl_security_options="noanonymous", smtp_sasl_mechanism_filter="plain")
    submit(petrel_instance)
    assert petrel_instance.wait_log(r"to=<far@elsewhere\.example>,[^\n]* status=sent",
                                    timeout=20), petrel_instance.log()
    assert rcv.wait_log(r"sasl_method=PLAIN, sasl_username=bob"), rcv.log()


def test_client_wrong_password_defers(petrel_instance, receiver):
    rcv = receiver()
    start_sender(petrel_instance, rcv.smtp_port,
                 "[127.0.0.1]:%d alice:not-the-password\n" % rcv.smtp_port)
    submit(petrel_instance)
    m = petrel_instance.wait_log(r"to=<far@elsewhere\.example>,[^\n]* status=deferred "
                                 r"\(SASL authentication failed; server \S+\[127\.0\.0\.1\] "
                                 r"said: 535 5\.7\.8 Error: authentication failed:[^\n]*",
                                 timeout=20)
    assert m, petrel_instance.log()
    # A 535 defers (Postfix smtp_sasl_auth_soft_bounce): the mail waits for a fixed password.
    assert "dsn=4.7.8" in m.group(0), m.group(0)
    assert rcv.wait_log(r"warning: \S+\[127\.0\.0\.1\]: SASL CRAM-MD5 authentication failed")


def test_client_wrong_password_bounces_without_soft_bounce(petrel_instance, receiver):
    rcv = receiver()
    start_sender(petrel_instance, rcv.smtp_port,
                 "[127.0.0.1]:%d alice:not-the-password\n" % rcv.smtp_port,
                 smtp_sasl_auth_soft_bounce="no")
    submit(petrel_instance)
    m = petrel_instance.wait_log(r"to=<far@elsewhere\.example>,[^\n]* dsn=5\.7\.8, "
                                 r"status=bounced \(SASL authentication failed; server "
                                 r"\S+\[127\.0\.0\.1\] said: 535 ", timeout=20)
    assert m, petrel_instance.log()


def test_client_without_password_entry_sends_unauthenticated(petrel_instance, receiver):
    rcv = receiver()
    start_sender(petrel_instance, rcv.smtp_port, "other.example alice:x\n")
    submit(petrel_instance)
    # The receiver refuses to relay for a stranger: 454 (defer_unauth_destination).
    m = petrel_instance.wait_log(r"to=<far@elsewhere\.example>,[^\n]* status=deferred[^\n]*"
                                 r"Relay access denied", timeout=20)
    assert m, petrel_instance.log()
    assert rcv.wait_log(r"disconnect from \S+ ehlo=1 mail=1 rcpt=0/1"), rcv.log()
    assert "auth=" not in rcv.log()


# --- LMTP: the same client under its lmtp_sasl_* names ------------------------------

class AuthSink(Sink):
    """The test_smtp_client Sink (here speaking LMTP) with AUTH PLAIN: checks the
    credentials against users and records them per session."""

    def __init__(self, users, **kw):
        kw.setdefault("ext", ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "AUTH PLAIN"))
        super().__init__(**kw)
        self.users = users

    def _dialogue(self, conn, f, session):
        sink = self

        class Reader:
            def readline(self, limit):
                while True:
                    line = f.readline(limit)
                    if line[:5].upper() != b"AUTH ":
                        return line
                    sink._auth(conn, f, session, line[:-2].decode().split(" "))

        super()._dialogue(conn, Reader(), session)

    def _auth(self, conn, f, session, words):
        if len(words) == 2:
            conn.sendall(b"334 \r\n")
            words.append(f.readline(4096)[:-2].decode())
        try:
            _authz, user, password = base64.b64decode(words[2]).decode().split("\0")
        except ValueError:
            conn.sendall(b"501 5.5.2 Cannot decode response\r\n")
            return
        session["auth"] = (words[1].upper(), user)
        if self.users.get(user) == password:
            conn.sendall(b"235 2.7.0 Authentication successful\r\n")
        else:
            conn.sendall(b"535 5.7.8 Error: authentication failed: authentication failure\r\n")


def start_lmtp_sender(inst, sink, passwd):
    path = os.path.join(inst.base, "lmtp_passwd")
    with open(path, "w") as f:
        f.write(passwd)
    tpath = os.path.join(inst.base, "transport")
    with open(tpath, "w") as f:
        f.write("store.test lmtp:inet:127.0.0.1:%d\n" % sink.port)
    inst.write_main_cf({
        "myhostname": "client.sasl.test", "mydomain": "sasl.test", "myorigin": "sasl.test",
        "mydestination": "localhost", "mynetworks": "127.0.0.0/8",
        "transport_maps": "texthash:" + tpath,
        "lmtp_sasl_auth_enable": "yes", "lmtp_sasl_password_maps": "texthash:" + path,
        "lmtp_sasl_security_options": "noanonymous",
        # The smtp_ names do not apply to LMTP.
        "smtp_sasl_auth_enable": "no", "smtp_sasl_security_options": "noplaintext",
        "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
        "queue_run_delay": "1s", "bounce_queue_lifetime": "0"})
    port = free_port()
    inst.write_master_cf(
        "127.0.0.1:%d inet n - n - - smtpd\n" % port
        + "cleanup unix n - n - 0 cleanup\n"
        "qmgr unix n - n 300 1 qmgr\n"
        "lmtp unix - - n - - lmtp\n"
        "bounce unix - - n - 0 bounce\n")
    inst.start()
    inst.smtp_port = port


def test_lmtp_client_authenticates(petrel_instance):
    sink = AuthSink({"carol": "lmtp pass"}, lmtp=True, name="store.test")
    try:
        start_lmtp_sender(petrel_instance, sink, "127.0.0.1 carol:lmtp pass\n")
        submit(petrel_instance, "r@store.test")
        assert petrel_instance.wait_log(r"to=<r@store\.test>,[^\n]* status=sent", timeout=20), \
            petrel_instance.log()
        assert sink.wait_messages(1)
        assert sink.sessions[0]["helo"].startswith("LHLO ")
        assert sink.sessions[0]["auth"] == ("PLAIN", "carol")
    finally:
        sink.close()


def test_lmtp_client_wrong_password_defers(petrel_instance):
    sink = AuthSink({"carol": "lmtp pass"}, lmtp=True, name="store.test")
    try:
        start_lmtp_sender(petrel_instance, sink, "127.0.0.1 carol:guess\n")
        submit(petrel_instance, "r@store.test")
        m = petrel_instance.wait_log(r"to=<r@store\.test>,[^\n]* dsn=4\.7\.8, status=deferred "
                                     r"\(SASL authentication failed; server \S+ said: 535 [^\n]*",
                                     timeout=20)
        assert m, petrel_instance.log()
        assert sink.messages() == []
    finally:
        sink.close()

