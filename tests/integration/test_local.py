"""test_local.py - the local delivery agent, end to end.

A real instance runs smtpd, cleanup, qmgr and local (and bounce when built);
mail goes in over SMTP or sendmail and the tests look at what a user would:
Maildir and mbox files byte for byte (apart from the headers local adds), the
files a pipe command writes, DSNs in the sender's mailbox and the Postfix log
lines. The tests create their own users (useradd, names unlikely to collide)
with home directories inside the instance, so they run as root only.
"""
import email
import os
import pwd
import random
import shutil
import smtplib
import string
import subprocess
import threading

import pytest

from petrel_instance import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="local delivery tests create users and need root")

BODY = ("Subject: local test\n"
        "From: Sender <sender@example.com>\n"
        "\n"
        "first line\n"
        "From the start of a line\n"
        ".a line starting with a dot\n"
        "last line\n")


def _name():
    return "pt" + "".join(random.choice(string.ascii_lowercase) for _ in range(7))


class Users:
    """Test users with homes under base/home; removed at the end."""

    def __init__(self, base):
        self.base = os.path.join(str(base), "home")
        os.makedirs(self.base, exist_ok=True)
        os.chmod(self.base, 0o755)
        self.names = []

    def add(self):
        name = _name()
        home = os.path.join(self.base, name)
        subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", "-U", name],
                       check=True, timeout=30, capture_output=True)
        self.names.append(name)
        os.makedirs(home)
        pw = pwd.getpwnam(name)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o700)
        return name

    def home(self, name):
        return pwd.getpwnam(name).pw_dir

    def uid(self, name):
        return pwd.getpwnam(name).pw_uid

    def write(self, name, rel, text, mode=0o644):
        path = os.path.join(self.home(name), rel)
        with open(path, "w") as f:
            f.write(text)
        pw = pwd.getpwnam(name)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, mode)
        return path

    def remove_all(self):
        for name in self.names:
            subprocess.run(["userdel", name], timeout=30, capture_output=True)
        self.names = []


@pytest.fixture
def users(tmp_path):
    u = Users(tmp_path)
    try:
        yield u
    finally:
        u.remove_all()


def start(inst, main=None, aliases=""):
    """smtpd, cleanup, qmgr, local (and bounce), with aliases(5) built by newaliases."""
    alias_file = os.path.join(inst.base, "aliases")
    with open(alias_file, "w") as f:
        f.write(aliases)
    params = {"myhostname": "mx.example.com", "mydomain": "example.com",
              "myorigin": "example.com", "mydestination": "localhost, example.com",
              "alias_maps": "hash:" + alias_file,
              "alias_database": "hash:" + alias_file,
              "home_mailbox": "Maildir/",
              # local itself tells unknown users; smtpd accepts every local part.
              "local_recipient_maps": "",
              "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s"}
    params.update(main or {})
    inst.main_cf.update(params)
    inst.write_main_cf()
    r = subprocess.run([os.path.join(inst.build, "sendmail", "sendmail"), "-bi"],
                       env=dict(os.environ, PETREL_CONFIG_DIR=inst.config_dir),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    extra = "qmgr unix n - n 300 1 qmgr\nlocal unix - n n - - local\n"
    if os.path.exists(os.path.join(inst.build, "bounce", "bounce")):
        extra += "bounce unix - - n - 0 bounce\n"
    return inst.start_smtpd(main=params, extra_master=extra)


def send(port, rcpts, body=BODY, sender="sender@example.com"):
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.sendmail(sender, rcpts, body.replace("\n", "\r\n").encode())


def maildir_messages(path):
    new = os.path.join(path, "new")
    if not os.path.isdir(new):
        return []
    out = []
    for name in sorted(os.listdir(new)):
        with open(os.path.join(new, name), "rb") as f:
            out.append(f.read())
    return out


def wait_maildir(path, count=1, timeout=20):
    return wait_for(lambda: len(maildir_messages(path)) >= count, timeout=timeout)


def split_added(msg):
    """The headers local put first (Return-Path, X-Original-To, Delivered-To)
    and the rest, which must be the message as sent."""
    lines = msg.split(b"\n")
    added = []
    while lines and lines[0].split(b":")[0] in (b"Return-Path", b"X-Original-To", b"Delivered-To"):
        added.append(lines.pop(0).decode())
    return added, b"\n".join(lines)


def stored_rest(rest):
    """cleanup adds Received:, Message-ID: and Date: headers; the part after them
    from Subject: on must be the message exactly."""
    i = rest.find(b"Subject: local test\n")
    assert i >= 0, rest
    return rest[i:]


# --- tests ---------------------------------------------------------------------

def test_maildir_delivery_byte_exact(petrel_instance, users):
    inst = petrel_instance
    u = users.add()
    port = start(inst)
    send(port, ["%s@localhost" % u])
    md = os.path.join(users.home(u), "Maildir")
    assert wait_maildir(md), inst.log()
    msgs = maildir_messages(md)
    assert len(msgs) == 1
    added, rest = split_added(msgs[0])
    assert added == ["Return-Path: <sender@example.com>",
                     "X-Original-To: %s@localhost" % u,
                     "Delivered-To: %s@localhost" % u]
    assert stored_rest(rest) == BODY.encode()
    st = os.stat(os.path.join(md, "new", os.listdir(os.path.join(md, "new"))[0]))
    assert st.st_uid == users.uid(u)
    assert inst.wait_log(r"to=<%s@localhost>, relay=local, .*status=sent \(delivered to maildir\)" % u)
    assert inst.wait_log(r": removed")


def mbox_messages(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    parts = data.split(b"\nFrom ")
    return [p if i == 0 else b"From " + p for i, p in enumerate(parts) if p]


def test_mbox_in_mail_spool_directory(petrel_instance, users):
    inst = petrel_instance
    u = users.add()
    spool = os.path.join(inst.base, "spool")
    os.makedirs(spool)
    os.chmod(spool, 0o755)          # root only: local creates the mailbox for the user
    port = start(inst, {"home_mailbox": "", "mail_spool_directory": spool})
    send(port, ["%s@localhost" % u])
    box = os.path.join(spool, u)
    assert wait_for(lambda: len(mbox_messages(box)) == 1, timeout=20), inst.log()
    data = open(box, "rb").read()
    assert data.startswith(b"From sender@example.com  ")
    first, rest = data.split(b"\n", 1)
    added, rest = split_added(rest)
    assert added == ["Return-Path: <sender@example.com>",
                     "X-Original-To: %s@localhost" % u,
                     "Delivered-To: %s@localhost" % u]
    # mbox escaping of the body's "From " line, a blank line at the end.
    assert stored_rest(rest) == BODY.replace("\nFrom the", "\n>From the").encode() + b"\n"
    st = os.stat(box)
    assert st.st_uid == users.uid(u) and st.st_mode & 0o777 == 0o600
    assert inst.wait_log(r"to=<%s@localhost>, .*status=sent \(delivered to mailbox\)" % u)


def test_two_concurrent_deliveries_to_one_mbox(petrel_instance, users):
    inst = petrel_instance
    u = users.add()
    port = start(inst, {"home_mailbox": "mbox"})
    bodies = ["Subject: local test\n\n" + "".join("message %d line %d\n" % (n, i)
                                                   for i in range(2000))
              for n in range(2)]
    threads = [threading.Thread(target=send, args=(port, ["%s@localhost" % u], b))
               for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    box = os.path.join(users.home(u), "mbox")
    # Both deliveries finished (the mbox is read only then: a message still being
    # written would look cut short).
    assert wait_for(lambda: inst.log().count("status=sent") == 2, timeout=20), inst.log()
    assert len(mbox_messages(box)) == 2, inst.log()
    # Each message intact; the blank line that ends the last one is the mbox's.
    got = sorted(stored_rest(split_added(m.split(b"\n", 1)[1])[1]).rstrip(b"\n") + b"\n"
                 for m in mbox_messages(box))
    assert got == sorted(b.encode() for b in bodies)
    assert open(box, "rb").read().endswith(b"\n\n")


def test_alias_fan_out(petrel_instance, users):
    inst = petrel_instance
    a, b, c = users.add(), users.add(), users.add()
    port = start(inst, aliases="team: %s, %s\n  , %s@localhost\n" % (a, b, c))
    send(port, ["team@localhost"])
    for u in (a, b, c):
        md = os.path.join(users.home(u), "Maildir")
        assert wait_maildir(md), (u, inst.log())
        added, rest = split_added(maildir_messages(md)[0])
        assert "Delivered-To: team@localhost" in added
        assert "X-Original-To: team@localhost" in added
        assert stored_rest(rest) == BODY.encode()
    assert inst.wait_log(r"to=<team@localhost>, relay=local, .*status=sent")


def test_include_file(petrel_instance, users):
    inst = petrel_instance
    a, b = users.add(), users.add()
    inc = os.path.join(inst.base, "list.inc")
    with open(inc, "w") as f:
        f.write("# members\n%s\n%s@localhost\n" % (a, b))
    port = start(inst, aliases="ptlist: :include:%s\n" % inc)
    send(port, ["ptlist@localhost"])
    for u in (a, b):
        md = os.path.join(users.home(u), "Maildir")
        assert wait_maildir(md), (u, inst.log())
        assert stored_rest(split_added(maildir_messages(md)[0])[1]) == BODY.encode()
    # A world-writable include file is refused, and the mail bounces.
    os.chmod(inc, 0o666)
    send(port, ["ptlist@localhost"])
    assert inst.wait_log(r":include: file %s is world writable" % inc)
    assert inst.wait_log(r"to=<ptlist@localhost>, .*dsn=5\.3\.5, status=bounced")


def test_dot_forward(petrel_instance, users):
    inst = petrel_instance
    a, b = users.add(), users.add()
    users.write(a, ".forward", "%s, \\%s\n" % (b, a), 0o644)
    port = start(inst)
    send(port, ["%s@localhost" % a])
    for u in (a, b):
        md = os.path.join(users.home(u), "Maildir")
        assert wait_maildir(md), (u, inst.log())
        assert stored_rest(split_added(maildir_messages(md)[0])[1]) == BODY.encode()
    # A group-writable .forward is ignored: the mail goes to the mailbox only.
    os.chmod(os.path.join(users.home(a), ".forward"), 0o664)
    send(port, ["%s@localhost" % a])
    assert wait_maildir(os.path.join(users.home(a), "Maildir"), 2), inst.log()
    assert inst.wait_log(r"\.forward is group writable")
    assert len(maildir_messages(os.path.join(users.home(b), "Maildir"))) == 1


def test_pipe_command_environment(petrel_instance, users):
    inst = petrel_instance
    priv = users.add()
    out = os.path.join(inst.base, "out")
    os.makedirs(out)
    os.chown(out, users.uid(priv), -1)
    script = os.path.join(inst.base, "catch.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nenv > %s/env\ncat > %s/msg\nid -u > %s/uid\n" % (out, out, out))
    os.chmod(script, 0o755)
    port = start(inst, {"default_privs": priv, "recipient_delimiter": "+"},
                 aliases='pipe: "|%s"\n' % script)
    send(port, ["pipe+ext@localhost"])
    assert wait_for(lambda: os.path.exists(os.path.join(out, "uid"))
                    and os.path.getsize(os.path.join(out, "uid")) > 0, timeout=20), inst.log()
    env = dict(line.split("=", 1) for line in open(os.path.join(out, "env")).read().splitlines()
               if "=" in line)
    assert env["SENDER"] == "sender@example.com"
    assert env["RECIPIENT"] == "pipe+ext@localhost"
    assert env["USER"] == "pipe" and env["LOGNAME"] == "pipe"
    assert env["LOCAL"] == "pipe+ext" and env["EXTENSION"] == "ext"
    assert env["DOMAIN"] == "localhost"
    assert env["HOME"] == users.home(priv)
    assert env["PATH"] == "/usr/bin:/bin"
    assert open(os.path.join(out, "uid")).read().strip() == str(users.uid(priv))
    msg = open(os.path.join(out, "msg"), "rb").read()
    first, rest = msg.split(b"\n", 1)
    assert first.startswith(b"From sender@example.com  ")
    added, rest = split_added(rest)
    assert "Delivered-To: pipe+ext@localhost" in added
    assert stored_rest(rest) == BODY.encode()
    assert inst.wait_log(r"to=<pipe\+ext@localhost>, .*status=sent \(delivered to command: %s\)"
                         % script)


def test_command_exit_status(petrel_instance, users):
    inst = petrel_instance
    priv = users.add()
    port = start(inst, {"default_privs": priv},
                 aliases='fail: "|echo no such mailbox here >&2; exit 67"\n'
                         'later: "|exit 75"\n')
    send(port, ["fail@localhost"])
    assert inst.wait_log(r"to=<fail@localhost>, .*dsn=5\.1\.1, status=bounced "
                         r"\(no such mailbox here\)"), inst.log()
    send(port, ["later@localhost"])
    assert inst.wait_log(r"to=<later@localhost>, .*dsn=4\.3\.0, status=deferred"), inst.log()


def test_unwritable_mailbox_defers_then_delivers(petrel_instance, users):
    inst = petrel_instance
    u = users.add()
    home = users.home(u)
    os.chmod(home, 0o500)           # the user cannot create Maildir/
    port = start(inst, {"minimal_backoff_time": "300s", "maximal_backoff_time": "300s"})
    send(port, ["%s@localhost" % u])
    assert inst.wait_log(r"to=<%s@localhost>, .*status=deferred" % u, timeout=20), inst.log()
    assert maildir_messages(os.path.join(home, "Maildir")) == []
    os.chmod(home, 0o700)
    r = inst.petrel("flush")
    assert r.returncode == 0, r.stderr
    md = os.path.join(home, "Maildir")
    assert wait_maildir(md, timeout=20), inst.log()
    assert stored_rest(split_added(maildir_messages(md)[0])[1]) == BODY.encode()


def test_unknown_user_bounces(petrel_instance, users):
    inst = petrel_instance
    s = users.add()
    port = start(inst, {"local_recipient_maps": ""})
    send(port, ["nosuchuser@localhost"], sender="%s@localhost" % s)
    assert inst.wait_log(r'to=<nosuchuser@localhost>, relay=local, .*dsn=5\.1\.1, '
                         r'status=bounced \(unknown user: "nosuchuser"\)'), inst.log()
    if not os.path.exists(os.path.join(inst.build, "bounce", "bounce")):
        return
    md = os.path.join(users.home(s), "Maildir")
    assert wait_maildir(md, timeout=20), inst.log()
    dsn = email.message_from_bytes(split_added(maildir_messages(md)[0])[1])
    assert dsn.get_content_type() == "multipart/report"
    status = [p for p in dsn.walk() if p.get_content_type() == "message/delivery-status"]
    assert status
    text = status[0].as_string()
    assert "Status: 5.1.1" in text and "nosuchuser@localhost" in text


def test_delivered_to_loop_bounces(petrel_instance, users):
    inst = petrel_instance
    u = users.add()
    port = start(inst)
    send(port, ["%s@localhost" % u], body="Delivered-To: %s@localhost\n" % u.upper() + BODY)
    assert inst.wait_log(r"to=<%s@localhost>, .*dsn=5\.4\.6, status=bounced "
                         r"\(mail forwarding loop for %s@localhost\)" % (u, u)), inst.log()
    assert maildir_messages(os.path.join(users.home(u), "Maildir")) == []


def test_alias_loop_and_self_reference(petrel_instance, users):
    inst = petrel_instance
    u, v = users.add(), users.add()
    port = start(inst, aliases="%s: %s, %s\nptloopa: ptloopb\nptloopb: ptloopa\n" % (u, u, v))
    send(port, ["%s@localhost" % u])
    for who in (u, v):
        assert wait_maildir(os.path.join(users.home(who), "Maildir")), inst.log()
    assert inst.wait_log(r"to=<%s@localhost>, .*status=sent" % u)
    # An alias that names itself means the user: one copy, no loop.
    assert len(maildir_messages(os.path.join(users.home(u), "Maildir"))) == 1
    send(port, ["ptloopa@localhost"])
    assert inst.wait_log(r"to=<ptloopa@localhost>, .*dsn=5\.4\.6, status=bounced"), inst.log()


def test_mailbox_size_limit(petrel_instance, users):
    inst = petrel_instance
    u = users.add()
    port = start(inst, {"home_mailbox": "mbox", "mailbox_size_limit": "20000",
                        "message_size_limit": "10000"})
    users.write(u, "mbox", "x" * 19990 + "\n", 0o600)
    send(port, ["%s@localhost" % u])
    assert inst.wait_log(r"to=<%s@localhost>, .*dsn=5\.2\.2, status=bounced" % u), inst.log()
    assert os.path.getsize(os.path.join(users.home(u), "mbox")) == 19991


def test_mailbox_command_runs_as_the_user(petrel_instance, users):
    """mailbox_command replaces the mailbox: it runs as the recipient, in its
    environment, with the message on standard input."""
    inst = petrel_instance
    u = users.add()
    port = start(inst, {"mailbox_command": 'cat > "$HOME/by-command"; id -u >> "$HOME/uid"'})
    send(port, [u + "@localhost"])
    home = users.home(u)
    assert wait_for(lambda: os.path.exists(os.path.join(home, "uid")), timeout=20), inst.log()
    assert open(os.path.join(home, "uid")).read().strip() == str(users.uid(u))
    msg = open(os.path.join(home, "by-command"), "rb").read()
    _first, rest = msg.split(b"\n", 1)
    added, rest = split_added(rest)
    assert "Delivered-To: %s@localhost" % u in added
    assert stored_rest(rest) == BODY.encode()
    assert not os.path.exists(os.path.join(home, "Maildir"))
    assert inst.wait_log(r"to=<%s@localhost>, .*status=sent \(delivered to command: "
                         % u)


def test_mailbox_transport_hands_the_recipient_on(petrel_instance, users):
    """mailbox_transport: the recipient is passed to that transport (here discard),
    which reports the delivery; local writes no mailbox."""
    inst = petrel_instance
    u = users.add()
    port = start(inst, {"mailbox_transport": "discard:handed-on"})
    with open(os.path.join(inst.config_dir, "master.cf"), "a") as f:
        f.write("discard unix - - n - - discard\n")
    assert inst.reload().returncode == 0
    send(port, [u + "@localhost"])
    line = inst.wait_log(r"to=<%s@localhost>, relay=none, [^\n]*status=sent \(handed-on\)" % u,
                         timeout=20)
    assert line, inst.log()
    assert inst.wait_log(r": removed", timeout=20), inst.log()
    assert not os.path.exists(os.path.join(users.home(u), "Maildir"))
