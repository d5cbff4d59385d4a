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
    """smtpd, cleanup, qmgr, local (and bounce) with aliases in a texthash table."""
    alias_file = os.path.join(inst.base, "aliases")
    with open(alias_file, "w") as f:
        f.write(aliases)
    params = {"myhostname": "mx.example.com", "mydomain": "example.com",
              "myorigin": "example.com", "mydestination": "localhost, example.com",
              "alias_maps": "texthash:" + alias_file,
              "home_mailbox": "Maildir/",
              "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s"}
    params.update(main or {})
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
