"""test_cleanup.py - the cleanup daemon end to end.

Starts a real instance whose master.cf runs `cleanup unix n - n - 0 cleanup`,
submits messages with tests/helpers/cleanup-submit (util/cleanup_client.c, as
smtpd and pickup do) and checks what a user can observe: the verdict and reply
text, the queue file on disk (decoded with `cleanup-submit -d`, which uses the
one queue file reader), the hold queue, and Postfix-style log lines.
"""
import os
import re
import shutil
import subprocess

import pytest

from petrel_instance import wait_for

MASTER_CF = "cleanup unix n - n - 0 cleanup\n"


def helper(inst):
    return os.path.join(inst.build, "tests", "helpers", "cleanup-submit")


def socket_path(inst):
    return os.path.join(inst.queue_dir, "public", "cleanup")


def start(inst, extra=None, raw=""):
    params = {"myhostname": "mx.example.com", "mydomain": "example.com",
              "myorigin": "example.com", "mydestination": "localhost, example.com"}
    params.update(extra or {})
    inst.write_main_cf(params, raw)
    inst.write_master_cf(MASTER_CF)
    inst.start()
    assert wait_for(lambda: os.path.exists(socket_path(inst)), timeout=10), inst.log()


def submit(inst, content, rcpts=("rcpt@example.com",), sender="sender@example.com",
           flags="", attrs=(), chunk=None, extra_args=(), timeout=30):
    args = [helper(inst), "-f", sender]
    for a in attrs:
        args += ["-a", a]
    if flags:
        args += ["-F", flags]
    if chunk:
        args += ["-c", str(chunk)]
    args += list(extra_args)
    args.append(socket_path(inst))
    args += list(rcpts)
    if isinstance(content, str):
        content = content.encode()
    r = subprocess.run(args, input=content, capture_output=True, timeout=timeout)
    out = r.stdout.decode(errors="replace")
    results = []
    qid = None
    for line in out.splitlines():
        if line.startswith("queue_id="):
            qid = line.split("=", 1)[1]
        m = re.match(r"status=(\w+) held=(\d) discarded=(\d) reply=(.*)", line)
        if m:
            results.append({"qid": qid, "status": m.group(1), "held": m.group(2) == "1",
                            "discarded": m.group(3) == "1", "reply": m.group(4)})
    return r.returncode, results, out + r.stderr.decode(errors="replace")


def find_queue_file(inst, queue, qid):
    base = os.path.join(inst.queue_dir, queue)
    for root, _dirs, files in os.walk(base):
        if qid in files:
            return os.path.join(root, qid)
    return None


def all_queue_files(inst, queue):
    names = []
    for _root, _dirs, files in os.walk(os.path.join(inst.queue_dir, queue)):
        names += [f for f in files if not f.startswith(".")]
    return names


def dump(inst, path):
    """Records of a queue file as a list of (type, bytes)."""
    r = subprocess.run([helper(inst), "-d", path], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout
    data = r.stdout
    recs = []
    pos = 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        t, n = data[pos:nl].decode().split(" ")
        n = int(n)
        recs.append((t, data[nl + 1:nl + 1 + n]))
        pos = nl + 1 + n + 1
        if t == "E":
            break
    return recs


class Message:
    def __init__(self, recs):
        self.recs = recs
        self.rcpts = [v.decode() for t, v in recs if t == "R"]
        self.sender = [v.decode() for t, v in recs if t == "F"]
        self.attrs = dict(v.decode().split("=", 1) for t, v in recs if t == "A")
        content = [v for t, v in recs if t == "M"]
        assert len(content) == 1
        self.content = content[0]
        head, _sep, self.body = self.content.partition(b"\n\n")
        self.headers = head.decode(errors="replace").split("\n")

    def header(self, name):
        return [h for h in self.headers if h.lower().startswith(name.lower() + ":")]


def queued(inst, qid, queue="incoming"):
    path = find_queue_file(inst, queue, qid)
    assert path, "no %s/%s; log:\n%s" % (queue, qid, inst.log())
    st = os.stat(path)
    assert st.st_mode & 0o100, "queue file not marked complete"
    return Message(dump(inst, path))


def one_ok(inst, content, **kw):
    rc, res, out = submit(inst, content, **kw)
    assert rc == 0 and len(res) == 1 and res[0]["status"] == "ok", out + inst.log()
    return res[0]


def one_fail(inst, content, **kw):
    rc, res, out = submit(inst, content, **kw)
    assert rc == 1 and len(res) == 1 and res[0]["status"] != "ok", out + inst.log()
    return res[0]


SIMPLE = "From: a@example.com\nTo: b@example.com\nSubject: hello\n\nbody line\n"


def test_basic_message_is_durable_and_exact(petrel_instance):
    inst = petrel_instance
    start(inst)
    body = "Subject: x\nFrom: f@example.com\nTo: t@example.com\nDate: now\nMessage-ID: <m1@x>\n\n" \
           + "".join("line %d \x80\xff\n" % i for i in range(3000))
    res = one_ok(inst, body.encode("latin-1"), chunk=777,
                 attrs=("client_name=c.example", "client_address=192.0.2.1", "protocol=ESMTP"))
    assert res["reply"] == "250 2.0.0 Ok: queued as %s" % res["qid"]
    msg = queued(inst, res["qid"])
    assert msg.content == body.encode("latin-1")
    assert msg.sender == ["sender@example.com"]
    assert msg.rcpts == ["rcpt@example.com"]
    assert msg.attrs["client_address"] == "192.0.2.1"
    assert inst.wait_log(r"%s: message-id=<m1@x>" % res["qid"])


def test_many_messages_one_connection_and_abort(petrel_instance):
    inst = petrel_instance
    start(inst)
    rc, res, out = submit(inst, SIMPLE, extra_args=["-k", "5"])
    assert rc == 0 and len(res) == 5 and len({r["qid"] for r in res}) == 5, out
    for r in res:
        queued(inst, r["qid"])
    rc, _res, out = submit(inst, SIMPLE, extra_args=["-A"])
    qid = re.search(r"queue_id=(\S+)", out).group(1)
    assert wait_for(lambda: find_queue_file(inst, "incoming", qid) is None, timeout=5)


def test_missing_headers_for_local_submission(petrel_instance):
    inst = petrel_instance
    start(inst, {"undisclosed_recipients_header": "To: undisclosed-recipients:;"})
    res = one_ok(inst, "Subject: no headers\n\nbody\n", flags="L",
                 attrs=("full_name=Joe Q. User",), sender="joe@example.com")
    msg = queued(inst, res["qid"])
    mid = msg.header("Message-Id")
    assert len(mid) == 1 and re.match(r"Message-Id: <\d{14}\.%s@mx\.example\.com>" % res["qid"],
                                      mid[0]), msg.headers
    assert len(msg.header("Date")) == 1
    assert msg.header("From") == ['From: "Joe Q. User" <joe@example.com>']
    assert msg.header("To") == ["To: undisclosed-recipients:;"]
    assert msg.body == b"body\n"
    assert inst.wait_log(r"%s: message-id=<\d{14}\.%s@mx\.example\.com>" % (res["qid"], res["qid"]))
    # Mail from a remote client keeps its headers as they are (Postfix default).
    res = one_ok(inst, "Subject: remote\n\nbody\n")
    msg = queued(inst, res["qid"])
    assert msg.header("Message-Id") == [] and msg.header("Date") == []
    assert inst.wait_log(r"%s: message-id=<>" % res["qid"])


def test_body_without_empty_line_and_headers_kept_apart(petrel_instance):
    inst = petrel_instance
    start(inst, {"always_add_missing_headers": "yes"})
    res = one_ok(inst, "Subject: s\nthis is body\n", sender="")
    msg = queued(inst, res["qid"])
    assert msg.header("From") == ["From: MAILER-DAEMON"]
    assert msg.body == b"this is body\n"


def test_bcc_removed_return_path_removed_and_extract(petrel_instance):
    inst = petrel_instance
    start(inst)
    content = ("Return-Path: <forged@example.net>\nFrom: a@example.com\n"
               "To: \"Doe, J\" <to1@example.com>, to2@example.com\n"
               "Cc: Group: cc1@example.com;\nBcc: hidden@example.com\n\nbody\n")
    res = one_ok(inst, content, rcpts=(), flags="TB")
    msg = queued(inst, res["qid"])
    assert sorted(msg.rcpts) == ["cc1@example.com", "hidden@example.com",
                                 "to1@example.com", "to2@example.com"]
    assert msg.header("Bcc") == [] and msg.header("Return-Path") == []
    assert len(msg.header("To")) == 1
    # Without REMOVE_BCC the header stays.
    res = one_ok(inst, "Bcc: x@example.com\n\nb\n")
    assert queued(inst, res["qid"]).header("Bcc") == ["Bcc: x@example.com"]


def test_no_recipients_rejected(petrel_instance):
    inst = petrel_instance
    start(inst)
    res = one_fail(inst, "Subject: x\n\nb\n", rcpts=(), flags="T")
    assert res["reply"].startswith("550 5.1.0"), res
    assert all_queue_files(inst, "incoming") == []


def test_header_checks_actions(petrel_instance, tmp_path):
    inst = petrel_instance
    rules = tmp_path / "header_checks"
    rules.write_text(
        "/^Subject: reject me/ REJECT spam is not welcome\n"
        "/^Subject: defer me/ REJECT 4.7.1 try later\n"
        "/^Subject: warn me/ WARN looks odd\n"
        "/^X-Drop:/ IGNORE\n"
        "/^Subject: hold me/ HOLD held for review\n"
        "/^Subject: discard me/ DISCARD dropped\n"
        "/^Subject: prepend me/ PREPEND X-Tag: tagged\n"
        "/^Subject: replace me/ REPLACE Subject: replaced\n"
        "/^Subject: dunno/ DUNNO\n")
    os.chmod(str(tmp_path), 0o755)
    start(inst, {"header_checks": "regexp:%s" % rules})
    attrs = ("client_name=c.example", "client_address=192.0.2.9", "protocol=ESMTP",
             "helo_name=h.example")

    res = one_fail(inst, "Subject: reject me\n\nb\n", attrs=attrs)
    assert res["status"] == "reject" and res["reply"] == "550 5.7.1 spam is not welcome"
    assert inst.wait_log(r"%s: reject: header Subject: reject me from c\.example\[192\.0\.2\.9\]; "
                         r"from=<sender@example\.com> to=<rcpt@example\.com> proto=ESMTP "
                         r"helo=<h\.example>: 5\.7\.1 spam is not welcome" % res["qid"]), inst.log()
    assert find_queue_file(inst, "incoming", res["qid"]) is None

    res = one_fail(inst, "Subject: defer me\n\nb\n")
    assert res["status"] == "defer" and res["reply"] == "451 4.7.1 try later"

    res = one_ok(inst, "Subject: warn me\nX-Drop: yes\n\nb\n")
    msg = queued(inst, res["qid"])
    assert msg.header("X-Drop") == []
    assert inst.wait_log(r"%s: warning: header Subject: warn me from local; .*: looks odd"
                         % res["qid"])

    res = one_ok(inst, "Subject: hold me\n\nb\n")
    assert res["held"]
    queued(inst, res["qid"], "hold")
    assert find_queue_file(inst, "incoming", res["qid"]) is None
    assert inst.wait_log(r"%s: hold: header Subject: hold me from local; .*: held for review"
                         % res["qid"])

    res = one_ok(inst, "Subject: discard me\n\nb\n")
    assert res["discarded"]
    assert find_queue_file(inst, "incoming", res["qid"]) is None
    assert inst.wait_log(r"%s: discard: header Subject: discard me" % res["qid"])

    res = one_ok(inst, "From: a@b\nSubject: prepend me\n\nb\n")
    assert queued(inst, res["qid"]).headers[:3] == ["From: a@b", "X-Tag: tagged",
                                                     "Subject: prepend me"]

    res = one_ok(inst, "Subject: replace me\n\nb\n")
    assert queued(inst, res["qid"]).header("Subject") == ["Subject: replaced"]

    res = one_ok(inst, "Subject: dunno\n\nb\n")
    assert queued(inst, res["qid"]).header("Subject") == ["Subject: dunno"]


def test_body_checks_and_size_limit(petrel_instance, tmp_path):
    inst = petrel_instance
    rules = tmp_path / "body_checks"
    rules.write_text("/^bad body/ REJECT\n/^drop this/ IGNORE\n/^fix this/ REPLACE fixed\n")
    os.chmod(str(tmp_path), 0o755)
    start(inst, {"body_checks": "regexp:%s" % rules, "body_checks_size_limit": "200"})
    res = one_fail(inst, "Subject: x\n\nok\nbad body here\n")
    assert res["reply"] == "550 5.7.1 message content rejected"
    assert inst.wait_log(r"%s: reject: body bad body here from local;" % res["qid"])
    res = one_ok(inst, "Subject: x\n\nkeep\ndrop this\nfix this\n")
    assert queued(inst, res["qid"]).body == b"keep\nfixed\n"
    # Past body_checks_size_limit the body is not inspected.
    res = one_ok(inst, "Subject: x\n\n" + "x" * 300 + "\nbad body late\n")
    assert queued(inst, res["qid"]).body.endswith(b"bad body late\n")


def test_hopcount_and_header_size_limit(petrel_instance):
    inst = petrel_instance
    start(inst, {"hopcount_limit": "5", "header_size_limit": "100"})
    res = one_fail(inst, "Received: x\n" * 3 + "Delivered-To: y\n" * 2 + "\nb\n")
    assert res["reply"] == "554 5.4.0 Error: too many hops"
    res = one_ok(inst, "Received: x\n" * 4 + "\nb\n")
    # A header over header_size_limit is truncated, as Postfix does.
    res = one_ok(inst, "Subject: " + "y" * 150 + "\n\tmore\nX: 1\n\nb\n")
    msg = queued(inst, res["qid"])
    assert msg.header("Subject") == ["Subject: " + "y" * 91]
    assert msg.header("X") == ["X: 1"]
    assert inst.wait_log(r"%s: header Subject truncated" % res["qid"])


def test_untrusted_strip_headers(petrel_instance, tmp_path):
    inst = petrel_instance
    rules = tmp_path / "strip"
    rules.write_text("/^X-Spam-/ strip\n")
    os.chmod(str(tmp_path), 0o755)
    start(inst, {"smtpd_untrusted_strip_headers": "X-Verdict, regexp:%s" % rules})
    content = "X-Verdict: clean\nX-Spam-Status: No\nSubject: s\n\nb\n"
    res = one_ok(inst, content, attrs=("strip_untrusted=1",))
    msg = queued(inst, res["qid"])
    assert msg.headers == ["Subject: s"]
    assert "strip_untrusted" not in msg.attrs
    res = one_ok(inst, content)
    assert len(queued(inst, res["qid"]).headers) == 3


def write_map(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    os.chmod(str(tmp_path), 0o755)
    return "texthash:%s" % p


def test_canonical_and_virtual_alias(petrel_instance, tmp_path):
    inst = petrel_instance
    canon = write_map(tmp_path, "canon", "old@example.com new@example.com\n")
    scanon = write_map(tmp_path, "scanon", "sender@example.com Sender.Rewritten@example.com\n")
    virt = write_map(tmp_path, "virtual",
                     "list@example.com a@example.com, b@example.com, a@example.com\n"
                     "self@example.com self@example.com, copy@example.com\n"
                     "loop1@example.com loop2@example.com\n"
                     "loop2@example.com loop1@example.com\n"
                     "big@example.com " + ", ".join("m%d@example.com" % i for i in range(8)) + "\n"
                     "@virt.example catchall@example.com\n")
    start(inst, {"canonical_maps": canon, "sender_canonical_maps": scanon,
                 "virtual_alias_maps": virt, "virtual_alias_expansion_limit": "5",
                 "virtual_alias_recursion_limit": "10"})
    res = one_ok(inst, SIMPLE, rcpts=("old@example.com", "list@example.com", "b@example.com",
                                      "self@example.com", "x@virt.example", "local"))
    msg = queued(inst, res["qid"])
    assert msg.sender == ["Sender.Rewritten@example.com"]
    assert msg.rcpts == ["new@example.com", "a@example.com", "b@example.com",
                         "self@example.com", "copy@example.com", "catchall@example.com",
                         "local@example.com"]
    # The original address is kept for DSN and logs when rewriting changed it.
    origs = [v.decode() for t, v in msg.recs if t == "O"]
    assert "rfc822;old@example.com" in origs
    res = one_fail(inst, SIMPLE, rcpts=("loop1@example.com",))
    assert res["status"] == "defer" and res["reply"].startswith("451 4.3.0"), res
    assert inst.wait_log(r"%s: unreasonable virtual_alias_maps map nesting for loop1@example\.com"
                         % res["qid"])
    res = one_fail(inst, SIMPLE, rcpts=("big@example.com",))
    assert res["status"] == "defer"
    assert inst.wait_log(r"%s: unreasonable virtual_alias_maps map expansion size" % res["qid"])
    assert find_queue_file(inst, "incoming", res["qid"]) is None


def test_bcc_maps(petrel_instance, tmp_path):
    inst = petrel_instance
    sbcc = write_map(tmp_path, "sbcc", "sender@example.com sarchive@example.com\n")
    rbcc = write_map(tmp_path, "rbcc", "rcpt@example.com rarchive@example.com\n")
    start(inst, {"always_bcc": "all@example.com", "sender_bcc_maps": sbcc,
                 "recipient_bcc_maps": rbcc})
    res = one_ok(inst, SIMPLE, rcpts=("rcpt@example.com", "other@example.com"))
    msg = queued(inst, res["qid"])
    assert msg.rcpts == ["rcpt@example.com", "other@example.com", "rarchive@example.com",
                         "all@example.com", "sarchive@example.com"]
    # BCC copies never ask for DSN: NOTIFY=NEVER (1) precedes each of them.
    recs = [(t, v) for t, v in msg.recs if t in "NR"]
    for i, (t, v) in enumerate(recs):
        if t == "R" and v.decode().endswith("archive@example.com"):
            assert recs[i - 1] == ("N", b"1")


def test_hold_flag_and_dsn_fields(petrel_instance):
    inst = petrel_instance
    start(inst)
    res = one_ok(inst, SIMPLE, flags="H", rcpts=("-o", "rfc822;Orig@Example.com", "-n", "6",
                                                 "rcpt@example.com"))
    assert res["held"]
    msg = queued(inst, res["qid"], "hold")
    recs = [(t, v) for t, v in msg.recs if t in "ONR"]
    assert recs == [("O", b"rfc822;Orig@Example.com"), ("N", b"6"), ("R", b"rcpt@example.com")]
    assert inst.wait_log(r"%s: hold: " % res["qid"])
    res = one_ok(inst, SIMPLE, flags="D")
    assert res["discarded"] and find_queue_file(inst, "incoming", res["qid"]) is None


def test_queue_minfree_refuses_at_open(petrel_instance):
    inst = petrel_instance
    start(inst, {"queue_minfree": str(1 << 62)})
    rc, res, out = submit(inst, SIMPLE)
    assert rc == 1 and res and res[0]["reply"] == "452 4.3.1 Insufficient system storage", out
    assert all_queue_files(inst, "incoming") == []


def test_announced_size_checked_against_free_space(petrel_instance):
    inst = petrel_instance
    start(inst)
    res = one_fail(inst, SIMPLE, attrs=("size=%d" % (1 << 62),))
    assert res["reply"] == "452 4.3.1 Insufficient system storage"
    assert all_queue_files(inst, "incoming") == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_disk_full_gives_452_and_keeps_running(petrel_instance, tmp_path):
    inst = petrel_instance
    os.makedirs(inst.queue_dir, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", inst.queue_dir],
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        pytest.skip("cannot mount tmpfs: %s" % r.stderr.decode(errors="replace"))
    try:
        start(inst)
        big = "Subject: big\n\n" + ("z" * 999 + "\n") * 4000    # 4 MB > 2 MB
        res = one_fail(inst, big)
        assert res["reply"] == "452 4.3.1 Insufficient system storage", res
        assert all_queue_files(inst, "incoming") == []
        # The daemon keeps serving, and small mail still fits.
        one_ok(inst, SIMPLE)
    finally:
        inst.teardown()
        subprocess.run(["umount", "-l", inst.queue_dir], timeout=30)


def frame(attrs):
    """One IPC frame (docs/ipc.md) of (type, name, value) attributes."""
    import struct
    payload = b""
    for t, name, value in attrs:
        payload += bytes([t, len(name)]) + name.encode()
        if t == 1:
            payload += struct.pack(">I", value)
        else:
            payload += struct.pack(">I", len(value)) + value.encode() + b"\0"
    return bytes([0xA7, 1, 0, 0]) + struct.pack(">I", len(payload)) + payload


def test_lost_client_and_garbage_leave_nothing(petrel_instance):
    import socket as socketmod
    inst = petrel_instance
    start(inst)
    # A client that goes away after "open": its file must not stay in incoming/.
    s = socketmod.socket(socketmod.AF_UNIX, socketmod.SOCK_STREAM)
    s.settimeout(10)
    s.connect(socket_path(inst))
    s.sendall(frame([(3, "request", "open"), (1, "flags", 0)]))
    reply = s.recv(4096)
    qid = re.search(rb"queue_id....([0-9A-Za-z]+)\x00", reply, re.S)
    assert qid, reply
    qid = qid.group(1).decode()
    assert find_queue_file(inst, "incoming", qid)
    s.close()
    assert wait_for(lambda: find_queue_file(inst, "incoming", qid) is None, timeout=10)
    # Garbage ends the connection and is logged; the service goes on.
    s = socketmod.socket(socketmod.AF_UNIX, socketmod.SOCK_STREAM)
    s.settimeout(10)
    s.connect(socket_path(inst))
    s.sendall(b"HELO this is not a frame\r\n")
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass                            # closed with our bytes unread: also a close
    s.close()
    assert inst.wait_log(r"cleanup client: (receive|protocol)")
    one_ok(inst, SIMPLE)
