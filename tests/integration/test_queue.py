"""test_queue.py - queue inspection and control: mailq / petrel queue list (classic
and JSON), the filters, show, delete / hold / release / requeue / bounce with IDs,
ALL and "-", shape, the showq service for an ordinary user, and actions racing with
delivery.

A real instance receives mail over SMTP; mail for defer.test goes to the "retry"
service (the error agent, which always defers), so it waits in deferred/ with a
reason in its defer log; example.org is a virtual mailbox domain, where delivered
mail and DSNs can be read back. Everything asserted is what an administrator sees:
command output, exit status, log lines, files in the queue and in mailboxes.
"""
import json
import os
import pwd
import re
import shutil
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from petrel_instance import MAIL_OWNER, SETGID_GROUP, free_port, wait_for

ROOT = os.geteuid() == 0
VUID = 5000 if ROOT else os.getuid()
VGID = 5000 if ROOT else os.getgid()
RUNUSER = shutil.which("runuser", path="/usr/sbin:/usr/bin:/sbin:/bin") or "runuser"
REASON = "Try again later"

HEADING = "-Queue ID-   -Size- ----Arrival Time---- -Sender/Recipient-------"
MSG_LINE = re.compile(r"^(\w{10,22})([ *!])\s+(\d+) (\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d)  (\S+)$")
REASON_LINE = re.compile(r"^ *\((.+)\)$")
RCPT_LINE = re.compile(r"^ {41}(\S+)$")
SUMMARY = re.compile(r"^-- (\d+) Kbytes in (\d+) Requests?\.$")


def prog(*parts):
    path = os.path.join(os.environ["PETREL_BUILD_DIR"], *parts)
    if not os.access(path, os.X_OK):
        pytest.skip("%s is not built" % "/".join(parts))
    return path


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def start(inst, extra=None, aliases=None, transport="", master=""):
    for p in (("qmgr", "qmgr"), ("error", "error"), ("virtual", "virtual"), ("showq", "showq")):
        prog(*p)
    base = os.path.join(inst.base, "vmail")
    os.makedirs(os.path.join(base, "example.org"), exist_ok=True)
    if ROOT:
        for d in (base, os.path.join(base, "example.org")):
            os.chown(d, VUID, VGID)
    maps = os.path.join(inst.base, "vmailbox")
    with open(maps, "w") as f:
        f.write("a@example.org example.org/a/\n")
    tpath = os.path.join(inst.base, "transport")
    with open(tpath, "w") as f:
        f.write("defer.test retry:4.2.0 %s\n.defer.test retry:4.2.0 %s\n" % (REASON, REASON)
                + transport)
    valias = os.path.join(inst.base, "valias")
    with open(valias, "w") as f:
        f.write(aliases or "")
    params = {"myhostname": "mx.example.com", "mydomain": "example.com",
              "myorigin": "example.com", "mydestination": "localhost",
              "virtual_mailbox_domains": "example.org",
              "virtual_mailbox_base": base,
              "virtual_mailbox_maps": "texthash:" + maps,
              "virtual_alias_maps": "texthash:" + valias,
              "virtual_uid_maps": "static:%d" % VUID,
              "virtual_gid_maps": "static:%d" % VGID,
              "virtual_minimum_uid": "1",
              "transport_maps": "texthash:" + tpath,
              "smtpd_reject_unlisted_recipient": "no",
              "relay_domains": "defer.test",
              # Deferred mail stays deferred for the length of a test.
              "minimal_backoff_time": "1h", "maximal_backoff_time": "2h",
              "queue_run_delay": "1h"}
    params.update(extra or {})
    inst.main_cf.update(params)
    inst.write_main_cf()
    port = free_port()
    text = ("127.0.0.1:%d inet n - n - - smtpd\n" % port
            + "cleanup unix n - n - 0 cleanup\n"
            "qmgr unix n - n 300 1 qmgr\n"
            "virtual unix - n n - - virtual\n"
            "error unix - - n - - error\n"
            "retry unix - - n - - error\n"
            "showq unix n - n - - showq\n" + master)
    if os.path.exists(os.path.join(inst.build, "bounce", "bounce")):
        text += "bounce unix - - n - 0 bounce\n"
    inst.write_master_cf(text)
    inst.start()
    inst.smtp_port = port
    return port


def send(inst, sender, rcpts, subject="queue test", body="hello\r\n"):
    msg = "From: <%s>\r\nSubject: %s\r\n\r\n%s" % (sender or "postmaster@example.com",
                                                  subject, body)
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        s.mail(sender)
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = s.data(msg.encode())
        assert code == 250, (code, text)
        return re.search(r"queued as (\w+)", text.decode()).group(1)


def queue_files(inst, queue):
    out = {}
    for root, _dirs, files in os.walk(os.path.join(inst.queue_dir, queue)):
        for f in files:
            if not f.startswith("."):
                out[f] = os.path.join(root, f)
    return out


def wait_deferred(inst, qids, timeout=20):
    ok = wait_for(lambda: set(qids) <= set(queue_files(inst, "deferred")), timeout=timeout)
    assert ok, "not all deferred: %s\n%s" % (qids, inst.log())


def q(inst, *args, input=None, user=None, env=None):
    cmd = [inst.petrel_bin, "-c", inst.config_dir, "queue"] + list(args)
    if user:
        cmd = [RUNUSER, "-u", user, "--", "env"] + ["%s=%s" % kv for kv in (env or {}).items()] \
            + cmd
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)


def listed(inst, *filters):
    r = q(inst, "list", "--json", *filters)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def ids(inst, *filters):
    return sorted(m["queue_id"] for m in listed(inst, *filters))


def parse_classic(text):
    """Parses a classic listing by the line regexes; returns messages and the summary."""
    lines = text.splitlines()
    if lines == ["Mail queue is empty"]:
        return [], None
    assert lines[0] == HEADING, lines[0]
    msgs, cur, i = [], None, 1
    while i < len(lines) - 1:
        line = lines[i]
        m = MSG_LINE.match(line)
        if m:
            cur = {"id": m.group(1), "status": m.group(2), "size": int(m.group(3)),
                   "sender": m.group(5), "rcpts": [], "reasons": []}
            msgs.append(cur)
        elif REASON_LINE.match(line):
            assert len(line) == 78 or len(line) > 78 and line.startswith("("), repr(line)
            cur["reasons"].append(REASON_LINE.match(line).group(1))
        elif RCPT_LINE.match(line):
            cur["rcpts"].append(RCPT_LINE.match(line).group(1))
        else:
            assert line == "", "unexpected line %r" % line
        i += 1
    m = SUMMARY.match(lines[-1])
    assert m, lines[-1]
    return msgs, (int(m.group(1)), int(m.group(2)))


@pytest.fixture
def deferred(petrel_instance):
    """An instance with three deferred messages: (inst, [id1, id2, id3])."""
    inst = petrel_instance
    start(inst)
    q1 = send(inst, "alice@src.test", ["x@defer.test"])
    q2 = send(inst, "bob@src.test", ["y@Sub.Defer.Test", "z@defer.test"])
    q3 = send(inst, "", ["w@defer.test"])
    wait_deferred(inst, [q1, q2, q3])
    # Reasons are in the defer logs once qmgr moved the files.
    assert wait_for(lambda: all(m["recipients"][0].get("delay_reason")
                                for m in listed(inst)), timeout=10), inst.log()
    return inst, [q1, q2, q3]


# --- listing -----------------------------------------------------------------
def test_classic_listing_and_json_match_the_queue(deferred):
    inst, (q1, q2, q3) = deferred
    r = q(inst, "list")
    assert r.returncode == 0, r.stderr
    msgs, summary = parse_classic(r.stdout)
    by_id = {m["id"]: m for m in msgs}
    assert sorted(by_id) == sorted([q1, q2, q3])
    assert summary[1] == 3
    assert summary[0] == (sum(m["size"] for m in msgs) + 1023) // 1024
    assert by_id[q1]["sender"] == "alice@src.test" and by_id[q1]["status"] == " "
    assert by_id[q3]["sender"] == "MAILER-DAEMON"
    assert sorted(by_id[q2]["rcpts"]) == ["y@Sub.Defer.Test", "z@defer.test"]
    # One reason line for consecutive recipients with the same reason.
    assert by_id[q2]["reasons"] == [REASON], r.stdout
    # mailq prints the same listing.
    mq = subprocess.run([prog("sendmail", "sendmail"), "-bp"], capture_output=True, text=True,
                        env={"PETREL_CONFIG_DIR": inst.config_dir, "PATH": "/usr/bin:/bin"},
                        timeout=30)
    assert mq.returncode == 0 and parse_classic(mq.stdout)[1] == summary, mq.stderr

    objs = {m["queue_id"]: m for m in listed(inst)}
    assert sorted(objs) == sorted([q1, q2, q3])
    for qid, m in objs.items():
        assert m["queue_name"] == "deferred" and m["forced_expire"] is False
        assert m["message_size"] == by_id[qid]["size"]
        assert abs(m["arrival_time"] - time.time()) < 120
        path = queue_files(inst, "deferred")[qid]
        assert os.path.getsize(path) > m["message_size"]
        for rc in m["recipients"]:
            assert rc["delay_reason"] == REASON, m
    assert objs[q3]["sender"] == ""
    assert [x["address"] for x in objs[q1]["recipients"]] == ["x@defer.test"]


def test_every_filter(deferred):
    inst, (q1, q2, q3) = deferred
    every = sorted([q1, q2, q3])
    assert ids(inst, "--from", "alice@SRC.test") == [q1]
    assert ids(inst, "--from", "src.test") == sorted([q1, q2])
    assert ids(inst, "--from", "@src.test") == sorted([q1, q2])
    assert ids(inst, "--from", "<>") == [q3]
    assert ids(inst, "--to", "defer.test") == every
    assert ids(inst, "--to", "SUB.defer.test") == [q2]
    assert ids(inst, "--to", "efer.test") == []           # a label boundary, not a substring
    assert ids(inst, "--to", "x@DEFER.TEST") == [q1]
    assert ids(inst, "--queue", "deferred") == every
    assert ids(inst, "--queue", "hold") == []
    assert ids(inst, "--older-than", "0s") == every
    assert ids(inst, "--older-than", "1h") == []
    assert ids(inst, "--reason", "again LATER") == every
    assert ids(inst, "--reason", "^no such reason$") == []
    # Kinds combine with AND, repeats with OR.
    assert ids(inst, "--from", "alice@src.test", "--from", "<>") == sorted([q1, q3])
    assert ids(inst, "--from", "src.test", "--to", "sub.defer.test") == [q2]
    r = q(inst, "list", "--queue", "nonsense")
    assert r.returncode == 64 and "unknown queue" in r.stderr
    r = q(inst, "list", "--older-than", "soon")
    assert r.returncode == 64 and "bad duration" in r.stderr
    r = q(inst, "list", "--to", "defer.test")
    msgs, summary = parse_classic(r.stdout)
    assert summary[1] == 3


# --- actions -----------------------------------------------------------------
def test_hold_release_delete_with_ids_stdin_and_all(deferred):
    inst, (q1, q2, q3) = deferred
    r = q(inst, "hold", q1)
    assert r.returncode == 0, r.stderr
    assert "petrel/queue: Placed on hold: 1 message" in r.stderr, r.stderr
    assert q1 in queue_files(inst, "hold") and q1 not in queue_files(inst, "deferred")
    msgs, _ = parse_classic(q(inst, "list").stdout)
    assert {m["id"]: m["status"] for m in msgs}[q1] == "!"
    assert ids(inst, "--queue", "hold") == [q1]
    assert inst.wait_log(r"petrel/queue\[\d+\]: %s: placed on hold" % q1), inst.log()

    r = q(inst, "release", "-", input="%s\n\n" % q1)
    assert r.returncode == 0, r.stderr
    assert "Released from hold: 1 message" in r.stderr
    assert q1 in queue_files(inst, "deferred") and not queue_files(inst, "hold")
    assert inst.wait_log(r"%s: released from hold" % q1)

    r = q(inst, "delete", "--to", "sub.defer.test")
    assert r.returncode == 0, r.stderr
    assert "petrel/queue: Deleted: 1 message" in r.stderr, r.stderr
    assert q2 not in queue_files(inst, "deferred")
    assert not os.path.exists(os.path.join(inst.queue_dir, "defer", q2))
    assert inst.wait_log(r"petrel/queue\[\d+\]: %s: removed" % q2)

    r = q(inst, "hold")
    assert r.returncode == 64 and "name the messages" in r.stderr
    r = q(inst, "delete", "NOTANID")
    assert r.returncode == 64
    r = q(inst, "delete", "ALL")
    assert r.returncode == 0 and "Deleted: 2 messages" in r.stderr, r.stderr
    assert q(inst, "list").stdout == "Mail queue is empty\n"
    # The defer logs went with the messages.
    assert not [f for _r, _d, fs in os.walk(os.path.join(inst.queue_dir, "defer")) for f in fs]


def test_requeue_redoes_address_rewriting(petrel_instance):
    inst = petrel_instance
    start(inst)
    qid = send(inst, "alice@src.test", ["old@defer.test"], subject="requeued")
    wait_deferred(inst, [qid])
    # The administrator maps the address to a mailbox, then requeues.
    with open(os.path.join(inst.base, "valias"), "w") as f:
        f.write("old@defer.test a@example.org\n")
    # texthash tables are read at process start: reload, and wait for the
    # cleanup processes that read the old table to go.
    old = [p for p in inst.workers() if comm(p) == "cleanup"]
    assert inst.reload().returncode == 0
    assert wait_for(lambda: not set(old) & set(inst.workers()), timeout=20), inst.log()
    r = q(inst, "requeue", qid)
    assert r.returncode == 0, r.stderr + inst.log()
    assert "Requeued: 1 message" in r.stderr
    m = inst.wait_log(r"%s: requeued as (\w+)" % qid)
    assert m, inst.log()
    new = m.group(1)
    assert new != qid
    newdir = os.path.join(inst.base, "vmail", "example.org", "a", "new")
    assert wait_for(lambda: os.path.isdir(newdir) and os.listdir(newdir), timeout=20), inst.log()
    with open(os.path.join(newdir, os.listdir(newdir)[0]), "rb") as f:
        data = f.read()
    assert b"Subject: requeued" in data and b"Delivered-To: a@example.org" in data, data
    assert qid not in queue_files(inst, "deferred") and qid not in queue_files(inst, "hold")
    assert inst.wait_log(r"%s: to=<a@example.org>.*status=sent" % new), inst.log()


def test_requeue_keeps_the_arrival_time(petrel_instance):
    inst = petrel_instance
    fill = prog("tests", "helpers", "queue-fill")
    start(inst)
    # A message that arrived two hours ago, waiting in deferred/.
    arrival = int(time.time()) - 7200
    owner = ["-u", str(pwd.getpwnam(MAIL_OWNER).pw_uid), "-g",
             str(pwd.getpwnam(MAIL_OWNER).pw_gid)] if ROOT else []
    os.makedirs(os.path.join(inst.queue_dir, "deferred"), exist_ok=True)
    subprocess.run([fill, "-d", "1", "-a", str(arrival)] + owner
                   + [inst.queue_dir, "deferred", "1", "old@defer.test"], check=True, timeout=30)
    if ROOT:    # the hash bucket queue-fill made is root's
        pw = pwd.getpwnam(MAIL_OWNER)
        for top, dirs, _files in os.walk(os.path.join(inst.queue_dir, "deferred")):
            for d in dirs:
                os.chown(os.path.join(top, d), pw.pw_uid, pw.pw_gid)
    (old,) = [m["queue_id"] for m in listed(inst)]
    r = q(inst, "requeue", old)
    assert r.returncode == 0, r.stderr + inst.log()
    m = inst.wait_log(r"%s: requeued as (\w+)" % old)
    assert m, inst.log()
    new = m.group(1)
    # Through cleanup and qmgr again, back in deferred/ with the old arrival time.
    wait_deferred(inst, [new])
    (msg,) = listed(inst)
    assert msg["queue_id"] == new and msg["arrival_time"] == arrival, msg
    assert ids(inst, "--older-than", "1h") == [new]
    assert "arrival_time" not in inst.log(), inst.log()      # no "ignored" warning


# A cleanup client in a few lines of the IPC encoding (docs/ipc.md): open with an
# arrival_time, then finish with one recipient and the content; prints the reply.
CLEANUP_CLIENT = r"""
import socket, struct, sys
def attr(t, name, value, lst=False):
    n = name.encode()
    head = bytes([t | (0x80 if lst else 0), len(n)]) + n
    if t == 1:
        return head + struct.pack(">I", value)
    v = value.encode() if isinstance(value, str) else value
    return head + struct.pack(">I", len(v)) + v + (b"\0" if t == 3 else b"")
def frame(*attrs):
    body = b"".join(attrs)
    return bytes([0xA7, 1, 0, 0]) + struct.pack(">I", len(body)) + body
def recv(s):
    head = b""
    while len(head) < 8:
        head += s.recv(8 - len(head))
    n = struct.unpack(">I", head[4:])[0]
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return body
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(frame(attr(3, "request", "open"), attr(1, "flags", 0),
                attr(3, "arrival_time", sys.argv[2])))
print(recv(s))
s.sendall(frame(attr(3, "request", "finish"), attr(3, "sender", "u@src.test"),
                attr(3, "rcpt", sys.argv[3], True), attr(3, "orig_rcpt", "", True),
                attr(1, "dsn_notify", 0, True),
                attr(4, "data", b"Subject: arrival\n\nhi\n", True)))
print(recv(s))
"""


@pytest.mark.skipif(not ROOT, reason="needs root to run as another user")
def test_arrival_time_only_from_trusted_cleanup_clients(petrel_instance):
    inst = petrel_instance
    start(inst)
    sock = os.path.join(inst.queue_dir, "public", "cleanup")
    past = int(time.time()) - 7200
    nobody = pwd.getpwnam("nobody").pw_uid
    gid = __import__("grp").getgrnam(SETGID_GROUP).gr_gid

    def untrusted():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(nobody)

    for who, rcpt, pre in (("trusted", "t@defer.test", None),
                           ("untrusted", "u@defer.test", untrusted)):
        r = subprocess.run(["/usr/bin/python3", "-c", CLEANUP_CLIENT, sock, "%d.000123" % past,
                            rcpt], capture_output=True, timeout=30, preexec_fn=pre)
        assert r.returncode == 0, (who, r.stderr)
    assert wait_for(lambda: len(listed(inst)) == 2 and all(
        m["queue_name"] == "deferred" for m in listed(inst)), timeout=20), inst.log()
    by_rcpt = {m["recipients"][0]["address"]: m for m in listed(inst)}
    assert by_rcpt["t@defer.test"]["arrival_time"] == past
    assert abs(by_rcpt["u@defer.test"]["arrival_time"] - time.time()) < 60
    assert inst.wait_log(r"cleanup\[\d+\]: warning: arrival_time from an untrusted client "
                         r"\(uid %d\) ignored" % nobody), inst.log()


def test_bounce_returns_the_message_with_a_dsn(petrel_instance):
    inst = petrel_instance
    prog("bounce", "bounce")
    start(inst)
    qid = send(inst, "a@example.org", ["x@defer.test"], subject="to be bounced")
    wait_deferred(inst, [qid])
    r = q(inst, "bounce", qid)
    assert r.returncode == 0, r.stderr + inst.log()
    assert "Bounced: 1 message" in r.stderr
    newdir = os.path.join(inst.base, "vmail", "example.org", "a", "new")
    assert wait_for(lambda: os.path.isdir(newdir) and os.listdir(newdir), timeout=20), inst.log()
    with open(os.path.join(newdir, os.listdir(newdir)[0]), "rb") as f:
        dsn = f.read()
    assert b"multipart/report" in dsn and b"x@defer.test" in dsn, dsn[:2000]
    assert b"message bounced by administrator" in dsn
    assert b"Status: 5.0.0" in dsn
    assert b"to be bounced" in dsn
    assert not queue_files(inst, "deferred") and not queue_files(inst, "hold")
    assert inst.wait_log(r"%s: removed" % qid)


def test_actions_racing_with_delivery_lose_nothing(petrel_instance):
    inst = petrel_instance
    start(inst, {"minimal_backoff_time": "1s", "maximal_backoff_time": "1s",
                 "queue_run_delay": "1s"})
    n = 40
    sent = []

    def sender():
        for i in range(n):
            sent.append(send(inst, "s@src.test", ["a@example.org"], subject="race %d" % i))

    t = threading.Thread(target=sender)
    t.start()
    held = 0
    deadline = time.monotonic() + 60
    while t.is_alive() and time.monotonic() < deadline:
        r = q(inst, "hold", "ALL")
        assert r.returncode in (0, 1), r.stderr
        held += 1
    t.join(60)
    assert len(sent) == n
    newdir = os.path.join(inst.base, "vmail", "example.org", "a", "new")

    def delivered():
        return os.listdir(newdir) if os.path.isdir(newdir) else []

    # Everything is either delivered or on hold; release the rest and all arrive once.
    r = q(inst, "release", "ALL")
    assert r.returncode == 0, r.stderr
    inst.petrel("flush")
    assert wait_for(lambda: len(delivered()) >= n and not queue_files(inst, "hold")
                    and not queue_files(inst, "deferred") and not queue_files(inst, "active")
                    and not queue_files(inst, "incoming"), timeout=60), \
        (len(delivered()), inst.log()[-3000:])
    subjects = []
    for f in delivered():
        with open(os.path.join(newdir, f), "rb") as fh:
            subjects.append(re.search(rb"Subject: (race \d+)", fh.read()).group(1))
    assert sorted(subjects) == sorted(("race %d" % i).encode() for i in range(n))


class StallingServer:
    """A loopback SMTP server that holds each connection until released, then
    answers 421: a delivery that stays active as long as the test wants."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self.release = threading.Event()
        self.done = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.connected.set()
            self.release.wait(30)
            try:
                c.sendall(b"421 4.3.2 stalled test server\r\n")
            except OSError:
                pass
            c.close()

    def close(self):
        self.done = True
        self.release.set()
        self.thread.join(5)
        self.sock.close()


def test_delete_during_delivery_leaves_no_defer_log(petrel_instance):
    inst = petrel_instance
    prog("smtp", "smtp")
    sink = StallingServer()
    try:
        start(inst, transport="stall.test smtp:[127.0.0.1]:%d\n" % sink.port,
              master="smtp unix - - n - - smtp\n")
        qid = send(inst, "s@src.test", ["x@stall.test"])
        assert sink.connected.wait(20), inst.log()
        assert qid in queue_files(inst, "active")
        r = q(inst, "delete", qid)
        assert r.returncode == 0 and "Deleted: 1 message" in r.stderr, r.stderr
        sink.release.set()
        # qmgr hears the deferral for a file that is gone: it logs the delivery,
        # then removes what it wrote for it.
        assert inst.wait_log(r"%s: to=<x@stall.test>.*status=deferred" % qid, timeout=20), \
            inst.log()
        assert inst.wait_log(r"%s: deleted by the administrator during delivery" % qid,
                             timeout=20), inst.log()
        for log in ("defer", "bounce", "trace"):
            left = [f for _r, _d, fs in os.walk(os.path.join(inst.queue_dir, log)) for f in fs]
            assert qid not in left, (log, left)
        for queue in ("active", "deferred", "incoming", "hold"):
            assert qid not in queue_files(inst, queue), queue
    finally:
        sink.close()


# --- show --------------------------------------------------------------------
def test_show_decodes_and_refuses_a_corrupt_file(deferred):
    inst, (q1, q2, q3) = deferred
    r = q(inst, "show", q1)
    assert r.returncode == 0, r.stderr
    assert "*** ENVELOPE RECORDS deferred/" in r.stdout
    assert "sender: alice@src.test" in r.stdout and "recipient: x@defer.test" in r.stdout
    assert "Subject: queue test" in r.stdout and "hello" in r.stdout
    assert "*** MESSAGE FILE END" in r.stdout
    r = q(inst, "show", "--headers", q1)
    assert "Subject: queue test" in r.stdout and "hello" not in r.stdout
    assert "sender:" not in r.stdout
    r = q(inst, "show", "--body", q1)
    assert r.stdout == "hello\n", r.stdout
    r = q(inst, "show", "--envelope", q1)
    assert "recipient: x@defer.test" in r.stdout and "Subject:" not in r.stdout

    # A damaged copy in hold/ (never scheduled): cut short in the middle.
    path = queue_files(inst, "deferred")[q2]
    with open(path, "rb") as f:
        data = f.read()
    hold = os.path.join(inst.queue_dir, "hold")
    bad = os.path.join(hold, q2)
    os.unlink(path)
    with open(bad, "wb") as f:
        f.write(data[:len(data) // 2])
    os.chmod(bad, 0o700)
    if ROOT:
        pw = pwd.getpwnam(MAIL_OWNER)
        os.chown(bad, pw.pw_uid, pw.pw_gid)
    r = q(inst, "show", q2)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "malformed queue file" in r.stderr, r.stderr
    absent = q1[:-1] + ("B" if q1[-1] != "B" else "C")
    r = q(inst, "show", absent)
    assert r.returncode == 1 and "no such message" in r.stderr, r.stderr
    r = q(inst, "show", "not-an-id")
    assert r.returncode == 64
    # The listing skips it with a warning and lists the rest.
    r = q(inst, "list")
    assert r.returncode == 0 and q2 not in r.stdout and q1 in r.stdout
    assert "could not be read" in r.stderr


# --- an ordinary user --------------------------------------------------------
@pytest.mark.skipif(not ROOT, reason="needs root to run as another user")
def test_ordinary_user_lists_through_showq_and_cannot_read_content(deferred):
    inst, (q1, q2, q3) = deferred
    helper = os.path.join(inst.base, "bin", "petrel-showq")
    os.makedirs(os.path.dirname(helper), exist_ok=True)
    os.chmod(os.path.dirname(helper), 0o755)
    shutil.copy(prog("showq", "petrel-showq"), helper)
    os.chown(helper, 0, __import__("grp").getgrnam(SETGID_GROUP).gr_gid)
    os.chmod(helper, 0o2755)
    env = {"PETREL_CONFIG_DIR": inst.config_dir, "PETREL_SHOWQ": helper,
           "PATH": "/usr/bin:/bin"}
    exe = prog("sendmail", "sendmail")
    r = subprocess.run([RUNUSER, "-u", "nobody", "--", "env"]
                       + ["%s=%s" % kv for kv in env.items()] + [exe, "-bp"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    msgs, summary = parse_classic(r.stdout)
    assert sorted(m["id"] for m in msgs) == sorted([q1, q2, q3]) and summary[1] == 3
    assert "Subject" not in r.stdout and "hello" not in r.stdout
    r = q(inst, "list", "--json", "--to", "sub.defer.test", user="nobody", env=env)
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["queue_id"] for x in r.stdout.splitlines()] == [q2]
    # Content stays private, and the queue cannot be changed.
    r = q(inst, "show", q1, user="nobody", env=env)
    assert r.returncode != 0 and "hello" not in r.stdout
    r = q(inst, "delete", "ALL", user="nobody", env=env)
    assert r.returncode != 0
    assert len(listed(inst)) == 3


# --- shape -------------------------------------------------------------------
def test_shape_buckets_by_known_arrival_times(petrel_instance, tmp_path):
    inst = petrel_instance
    fill = prog("tests", "helpers", "queue-fill")
    for d in ("deferred", "hold"):
        os.makedirs(os.path.join(inst.queue_dir, d), exist_ok=True)
    now = int(time.time())
    # ages in minutes -> buckets 0-5, 5-10, 10-20, 20-40, 40-80, 80-160, ... 1280+
    for age, rcpt, n in ((1, "u@a.example", 3), (7, "u@a.example", 1), (15, "u@b.example", 2),
                         (30, "v@a.example", 1), (100, "w@c.example", 1), (5000, "x@b.example", 2)):
        subprocess.run([fill, "-a", str(now - age * 60), inst.queue_dir, "deferred", str(n),
                        rcpt], check=True, timeout=30)
    subprocess.run([fill, "-a", str(now), inst.queue_dir, "hold", "4", "h@hold.example"],
                   check=True, timeout=30)
    r = inst.petrel("queue", "shape", "deferred")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()]
    assert rows[0] == ["T", "5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+"]
    table = {row[0]: [int(x) for x in row[1:]] for row in rows[1:]}
    assert list(table)[0] == "TOTAL" and list(table)[1] == "a.example"   # most mail first
    assert table["TOTAL"] == [10, 3, 1, 2, 1, 0, 1, 0, 0, 0, 2]
    assert table["a.example"] == [5, 3, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    assert table["b.example"] == [4, 0, 0, 2, 0, 0, 0, 0, 0, 0, 2]
    assert table["c.example"] == [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert "hold.example" not in table
    r = inst.petrel("queue", "shape", "hold", "deferred", "--by", "sender", "--buckets", "3",
                    "--json")
    assert r.returncode == 0, r.stderr
    shape = json.loads(r.stdout)
    assert shape["buckets"] == ["5", "10", "10+"]
    assert shape["total"]["total"] == 14 and shape["total"]["counts"] == [7, 1, 6]
    assert [d["domain"] for d in shape["domains"]] == ["example.net"]
    r = inst.petrel("queue", "shape", "--to", "b.example", "deferred")
    table = {row.split()[0]: row.split()[1] for row in r.stdout.splitlines()[1:]}
    assert table == {"TOTAL": "4", "b.example": "4"}
