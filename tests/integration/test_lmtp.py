"""test_lmtp.py - the LMTP client end to end: SMTP -> smtpd -> cleanup -> qmgr ->
lmtp -> a real Dovecot (dovecot-lmtpd), and to a recording LMTP server.

Dovecot runs as root with a minimal private configuration (passwd-file users,
Maildirs under the test directory, LMTP on a loopback port and a unix socket);
the test skips with a reason when Dovecot is not installed or not root. Checks:
two recipients, one unknown to Dovecot: one Maildir file with the message, one
bounce whose DSN carries Dovecot's own reply; lmtp:unix:/path delivery; LHLO and
one reply per recipient after the end of data (seen at a recording server).
"""
import os
import re
import shutil
import smtplib
import subprocess
import time

import pytest

from petrel_instance import free_port, wait_for
from test_smtp_client import Sink, unstuff

ROOT = os.geteuid() == 0
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
HAVE_LMTPD = os.path.exists("/usr/lib/dovecot/lmtp")
NOBODY = 65534
SENDER = "sender@sender.test"


def start(inst, transport, extra=None):
    tpath = os.path.join(inst.base, "transport")
    with open(tpath, "w") as f:
        f.write(transport)
    params = {"myhostname": "petrel.test", "mydomain": "petrel.test",
              "myorigin": "petrel.test", "mydestination": "localhost",
              "mynetworks": "127.0.0.0/8", "transport_maps": "texthash:" + tpath,
              "lmtp_lhlo_name": "client.petrel.test",
              "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s", "bounce_queue_lifetime": "0"}
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


def send(inst, rcpts, body=b"Hello over LMTP.\r\n.dotted\r\n"):
    msg = (b"From: <sender@sender.test>\r\nSubject: lmtp test\r\n"
           b"Message-ID: <lmtp-test@sender.test>\r\n\r\n" + body)
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        s.mail(SENDER)
        for r in rcpts:
            code, m = s.rcpt(r)
            assert code == 250, (r, code, m)
        code, m = s.data(msg)
        assert code == 250, (code, m)


def status_line(inst, rcpt, status, timeout=20):
    m = inst.wait_log(r"\w+: to=<%s>,[^\n]* status=%s[^\n]*" % (re.escape(rcpt), status),
                      timeout=timeout)
    assert m, "no status=%s line for %s in the log:\n%s" % (status, rcpt, inst.log())
    return m.group(0)


@pytest.fixture
def dovecot(tmp_path):
    """A private Dovecot serving LMTP; yields (port, socket path, mail root)."""
    if not ROOT:
        pytest.skip("Dovecot is started as root with its own users")
    if not os.path.exists(DOVECOT) or not HAVE_LMTPD:
        pytest.skip("dovecot-core and dovecot-lmtpd are not installed")
    base = tmp_path / "dovecot"
    mail = base / "mail"
    for d in (base, mail):
        d.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    os.chown(mail, NOBODY, NOBODY)
    users = base / "users"
    users.write_text("alice@lmtp.test:{PLAIN}x:%d:%d::%s/alice\n" % (NOBODY, NOBODY, mail))
    port = free_port()
    conf = base / "dovecot.conf"
    conf.write_text(f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = lmtp
ssl = no
listen = 127.0.0.1
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
  unix_listener lmtp {{
    mode = 0666
  }}
}}
""")
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    sock = base / "run" / "lmtp"

    def up():
        if proc.poll() is not None:
            return True
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=1):
                return sock.exists()
        except OSError:
            return False

    wait_for(up, timeout=10)
    if proc.poll() is not None:
        pytest.skip("dovecot did not start: %s" % proc.stderr.read().decode(errors="replace"))
    os.chmod(base / "run", 0o755)
    yield port, str(sock), str(mail)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def maildir_new(mail, user):
    d = os.path.join(mail, user, "Maildir", "new")
    return [os.path.join(d, f) for f in os.listdir(d)] if os.path.isdir(d) else []


def test_dovecot_one_delivered_one_bounced_with_its_reply(petrel_instance, dovecot):
    port, _sock, mail = dovecot
    dsn = Sink(name="dsn.sender.test")
    try:
        start(petrel_instance, "lmtp.test lmtp:inet:127.0.0.1:%d\n"
              "sender.test smtp:[127.0.0.1]:%d\n" % (port, dsn.port))
        send(petrel_instance, ["alice@lmtp.test", "nobody-here@lmtp.test"])
        sent = status_line(petrel_instance, "alice@lmtp.test", "sent")
        assert "relay=127.0.0.1[127.0.0.1]:%d" % port in sent
        bounced = status_line(petrel_instance, "nobody-here@lmtp.test", "bounced")
        assert "dsn=5.1.1" in bounced and "(in reply to RCPT TO command)" in bounced
        files = wait_for(lambda: maildir_new(mail, "alice"), timeout=10)
        assert len(files) == 1
        with open(files[0], "rb") as f:
            stored = f.read()
        assert b"Subject: lmtp test" in stored
        assert b"\nHello over LMTP.\n.dotted\n" in stored.replace(b"\r\n", b"\n")
        notice = dsn.wait_messages(1)
        assert len(notice) == 1
        body = unstuff(notice[0]["data"])
        assert b"nobody-here@lmtp.test" in body
        # Dovecot's own words for an unknown user travel into the DSN.
        assert re.search(rb"User doesn'?t exist", body), body[:2000]
    finally:
        dsn.close()


def test_dovecot_over_a_unix_socket(petrel_instance, dovecot):
    _port, sock, mail = dovecot
    start(petrel_instance, "lmtp.test lmtp:unix:%s\n" % sock)
    send(petrel_instance, ["alice@lmtp.test"])
    line = status_line(petrel_instance, "alice@lmtp.test", "sent")
    assert "relay=petrel.test[%s]" % sock in line
    assert len(wait_for(lambda: maildir_new(mail, "alice"), timeout=10)) == 1


def test_lhlo_and_one_reply_per_recipient(petrel_instance):
    sink = Sink(lmtp=True, name="store.test", ext=("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"))
    try:
        start(petrel_instance, "store.test lmtp:inet:127.0.0.1:%d\n" % sink.port)
        send(petrel_instance, ["r1@store.test", "r2@store.test", "r3@store.test"])
        for r in ("r1@store.test", "r2@store.test", "r3@store.test"):
            line = status_line(petrel_instance, r, "sent")
            assert "250 2.0.0 <%s> delivered" % r in line
        t = sink.wait_messages(1)[0]
        assert sink.sessions[0]["helo"] == "LHLO client.petrel.test"
        assert t["accepted"] == ["r1@store.test", "r2@store.test", "r3@store.test"]
    finally:
        sink.close()
