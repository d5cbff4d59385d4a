"""test_virtual.py - virtual mailbox delivery and the error and discard transports,
end to end: SMTP -> smtpd -> cleanup -> qmgr -> virtual (or error, retry, discard).

A real instance serves virtual_mailbox_domains = example.org with a texthash:
virtual_mailbox_maps under a private virtual_mailbox_base. The tests check what a
user can observe: the Maildir and mbox files byte for byte (the prepended
Return-Path:, X-Original-To: and Delivered-To: lines, the Received: header smtpd
adds, then exactly the message sent), their owner when run as root, the Postfix
delivery log lines (relay=, dsn=, status=), and the queue emptying.
"""
import os
import re
import smtplib
import stat

import pytest

from petrel_instance import free_port, wait_for

ROOT = os.geteuid() == 0
VUID = 5000 if ROOT else os.getuid()
VGID = 5000 if ROOT else os.getgid()
SENDER = "sender@sender.test"

MESSAGE = (
    "From: Sender <sender@sender.test>\r\n"
    "To: a@example.org, b@example.org\r\n"
    "Subject: virtual delivery\r\n"
    "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
    "Message-ID: <virtual-test@sender.test>\r\n"
    "\r\n"
    "First line.\r\n"
    "From the start of a line.\r\n"
    ">From already quoted.\r\n"
    ".leading dot\r\n"
    "\r\n"
    "last line\r\n")


def base_dir(inst):
    return os.path.join(inst.base, "vmail")


def start(inst, extra=None, mailboxes=None, transport=None):
    """Starts smtpd, cleanup, qmgr, virtual, error, retry and discard."""
    base = base_dir(inst)
    os.makedirs(os.path.join(base, "example.org"), exist_ok=True)
    if ROOT:
        for d in (base, os.path.join(base, "example.org")):
            os.chown(d, VUID, VGID)
    maps = os.path.join(inst.base, "vmailbox")
    with open(maps, "w") as f:
        for addr, path in (mailboxes or {"a@example.org": "example.org/a/",
                                         "b@example.org": "example.org/b"}).items():
            f.write("%s %s\n" % (addr, path))
    params = {"myhostname": "mx.example.com", "mydomain": "example.com",
              "myorigin": "example.com", "mydestination": "localhost",
              "virtual_mailbox_domains": "example.org",
              "virtual_mailbox_base": base,
              "virtual_mailbox_maps": "texthash:" + maps,
              "virtual_uid_maps": "static:%d" % VUID,
              "virtual_gid_maps": "static:%d" % VGID,
              "virtual_minimum_uid": "1",
              "smtpd_reject_unlisted_recipient": "no",
              "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s"}
    if transport:
        tpath = os.path.join(inst.base, "transport")
        with open(tpath, "w") as f:
            f.write(transport)
        params["transport_maps"] = "texthash:" + tpath
    params.update(extra or {})
    inst.write_main_cf(params)
    port = free_port()
    text = ("127.0.0.1:%d inet n - n - - smtpd\n" % port
            + "cleanup unix n - n - 0 cleanup\n"
            "qmgr unix n - n 300 1 qmgr\n"
            "virtual unix - n n - - virtual\n"
            "error unix - - n - - error\n"
            "retry unix - - n - - error\n"
            "discard unix - - n - - discard\n")
    if os.path.exists(os.path.join(inst.build, "bounce", "bounce")):
        text += "bounce unix - - n - 0 bounce\n"
    inst.write_master_cf(text)
    inst.start()
    inst.smtp_port = port
    return port


def send(inst, rcpts, message=MESSAGE, sender=SENDER):
    """Sends one message over SMTP; every recipient must get 250."""
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        s.mail(sender)
        for r in rcpts:
            code, msg = s.rcpt(r)
            assert code == 250, (r, code, msg)
        code, msg = s.data(message.encode() if isinstance(message, str) else message)
        assert code == 250, (code, msg)
        m = re.search(r"queued as (\w+)", msg.decode())
        return m.group(1) if m else None


def delivery_line(inst, rcpt, status, timeout=15):
    """Waits for the delivery log line of rcpt with the given status."""
    m = inst.wait_log(r"(\w+): to=<%s>,[^\n]* status=%s[^\n]*" % (re.escape(rcpt), status),
                      timeout=timeout)
    assert m, "no status=%s line for %s in the log:\n%s" % (status, rcpt, inst.log())
    return m.group(0)


def queue_empty(inst):
    for q in ("incoming", "active", "deferred"):
        for _root, _dirs, files in os.walk(os.path.join(inst.queue_dir, q)):
            if [f for f in files if not f.startswith(".")]:
                return False
    return True


def maildir_files(path, sub="new"):
    d = os.path.join(path, sub)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def split_received(data):
    """The Received: header (with continuation lines) at the start of data, and the rest."""
    lines = data.split(b"\n")
    assert lines[0].startswith(b"Received: "), data[:200]
    i = 1
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
        i += 1
    return b"\n".join(lines[:i]) + b"\n", b"\n".join(lines[i:])


def expected_body(message):
    return message.replace("\r\n", "\n").replace("\n..", "\n.").encode()


def prepend(rcpt, sender=SENDER):
    return ("Return-Path: <%s>\nX-Original-To: %s\nDelivered-To: %s\n"
            % (sender, rcpt, rcpt)).encode()


FROM_LINE = re.compile(rb"From (\S+)  (Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
                       rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\d "
                       rb"\d\d:\d\d:\d\d \d{4}\n")


def test_maildir_and_mbox_byte_exact(petrel_instance):
    inst = petrel_instance
    start(inst)
    send(inst, ["a@example.org", "b@example.org"])
    for rcpt, kind in (("a@example.org", "maildir"), ("b@example.org", "mailbox")):
        line = delivery_line(inst, rcpt, "sent")
        assert "relay=virtual" in line and "dsn=2.0.0" in line, line
        assert "(delivered to %s)" % kind in line, line
    assert wait_for(lambda: queue_empty(inst), timeout=10), inst.log()
    assert re.search(r"\w+: removed", inst.log()), inst.log()

    md = os.path.join(base_dir(inst), "example.org", "a")
    files = maildir_files(md)
    assert len(files) == 1, files
    assert maildir_files(md, "tmp") == [] and os.path.isdir(os.path.join(md, "cur"))
    with open(os.path.join(md, "new", files[0]), "rb") as f:
        data = f.read()
    head = prepend("a@example.org")
    assert data.startswith(head), data[:300]
    received, rest = split_received(data[len(head):])
    assert b"mx.example.com" in received
    assert rest == expected_body(MESSAGE)       # no From_ line, no escaping

    with open(os.path.join(base_dir(inst), "example.org", "b"), "rb") as f:
        data = f.read()
    m = FROM_LINE.match(data)
    assert m and m.group(1) == SENDER.encode(), data[:200]
    data = data[m.end():]
    head = prepend("b@example.org")
    assert data.startswith(head), data[:300]
    received, rest = split_received(data[len(head):])
    want = expected_body(MESSAGE).replace(b"\nFrom the start", b"\n>From the start") + b"\n"
    assert rest == want


@pytest.mark.skipif(not ROOT, reason="file ownership needs root")
def test_files_belong_to_the_mapped_owner(petrel_instance):
    inst = petrel_instance
    start(inst)
    send(inst, ["a@example.org", "b@example.org"])
    delivery_line(inst, "a@example.org", "sent")
    delivery_line(inst, "b@example.org", "sent")
    md = os.path.join(base_dir(inst), "example.org", "a")
    paths = [md, os.path.join(md, "new"), os.path.join(md, "tmp"), os.path.join(md, "cur"),
             os.path.join(md, "new", maildir_files(md)[0]),
             os.path.join(base_dir(inst), "example.org", "b")]
    for p in paths:
        st = os.stat(p)
        assert (st.st_uid, st.st_gid) == (VUID, VGID), (p, st.st_uid, st.st_gid)
    assert stat.S_IMODE(os.stat(paths[-1]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(paths[-2]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(md).st_mode) == 0o700


def test_extension_and_domain_catchall(petrel_instance):
    inst = petrel_instance
    start(inst, extra={"recipient_delimiter": "+"},
          mailboxes={"a@example.org": "example.org/a/", "@example.org": "example.org/all/"})
    send(inst, ["a+tag@example.org", "someone@example.org"])
    delivery_line(inst, "a+tag@example.org", "sent")
    delivery_line(inst, "someone@example.org", "sent")
    a = os.path.join(base_dir(inst), "example.org", "a")
    catchall = os.path.join(base_dir(inst), "example.org", "all")
    assert len(maildir_files(a)) == 1 and len(maildir_files(catchall)) == 1
    with open(os.path.join(a, "new", maildir_files(a)[0]), "rb") as f:
        assert b"Delivered-To: a+tag@example.org\n" in f.read(400)


def test_unknown_recipient_bounces(petrel_instance):
    inst = petrel_instance
    # From <>: the failure would go to the postmaster as a double bounce, which
    # has no mailbox here; this test is about virtual, so no postmaster notices.
    start(inst, extra={"notify_classes": "resource, software"})
    send(inst, ["nobody@example.org", "a@example.org"], sender="")
    line = delivery_line(inst, "nobody@example.org", "bounced")
    assert "relay=virtual" in line and "dsn=5.1.1" in line, line
    assert '(unknown user: "nobody@example.org")' in line, line
    delivery_line(inst, "a@example.org", "sent")
    assert wait_for(lambda: queue_empty(inst), timeout=10), inst.log()
    assert not os.path.exists(os.path.join(base_dir(inst), "example.org", "nobody"))


def test_soft_bounce_keeps_mail_queued(petrel_instance):
    """soft_bounce = yes: what would bounce is deferred with a 4.X.Y code and stays queued."""
    inst = petrel_instance
    start(inst, extra={"soft_bounce": "yes"})
    send(inst, ["nobody@example.org"])
    line = delivery_line(inst, "nobody@example.org", "deferred")
    assert "dsn=4.1.1" in line and '(unknown user: "nobody@example.org")' in line, line
    assert "status=bounced" not in inst.log()
    assert not queue_empty(inst)


def test_delivered_to_loop_bounces(petrel_instance):
    inst = petrel_instance
    start(inst)
    looped = "Delivered-To: a@example.org\r\n" + MESSAGE
    send(inst, ["a@example.org"], message=looped, sender="")
    line = delivery_line(inst, "a@example.org", "bounced")
    assert "dsn=5.4.6" in line and "(mail forwarding loop for a@example.org)" in line, line
    assert maildir_files(os.path.join(base_dir(inst), "example.org", "a")) == []


def test_over_limit_bounces_and_mbox_is_untouched(petrel_instance):
    inst = petrel_instance
    mbox = os.path.join(base_dir(inst), "example.org", "b")
    os.makedirs(os.path.dirname(mbox), exist_ok=True)
    old = b"From x  Thu Jan  1 00:00:00 1970\n" + b"x" * 19000 + b"\n\n"
    with open(mbox, "wb") as f:
        f.write(old)
    os.chmod(mbox, 0o600)
    if ROOT:
        os.chown(mbox, VUID, VGID)
    start(inst, extra={"virtual_mailbox_limit": "20000", "message_size_limit": "20000"})
    big = MESSAGE + "y" * 3000 + "\r\n"
    send(inst, ["b@example.org", "a@example.org"], message=big, sender="")
    line = delivery_line(inst, "b@example.org", "bounced")
    assert "dsn=5.2.2" in line and "mailbox full" in line, line
    delivery_line(inst, "a@example.org", "sent")    # a Maildir file under the limit
    with open(mbox, "rb") as f:
        assert f.read() == old


def test_unwritable_mailbox_defers_then_delivers(petrel_instance):
    inst = petrel_instance
    mbox = os.path.join(base_dir(inst), "example.org", "b")
    os.makedirs(os.path.dirname(mbox), exist_ok=True)
    # A hard link the writer must refuse: deferred, nothing written.
    other = os.path.join(inst.base, "other-file")
    with open(other, "wb") as f:
        f.write(b"not a mailbox\n")
    if ROOT:
        os.chown(other, VUID, VGID)
    os.link(other, mbox)
    start(inst)
    send(inst, ["b@example.org"], sender="")
    line = delivery_line(inst, "b@example.org", "deferred")
    assert "dsn=4.2.0" in line and "relay=virtual" in line, line
    assert "(delivery failed to mailbox %s: file has more than one link)" % mbox in line, line
    with open(other, "rb") as f:
        assert f.read() == b"not a mailbox\n"
    assert not queue_empty(inst)
    # Fixed by the administrator: the next retry delivers.
    os.unlink(mbox)
    r = inst.petrel("flush")
    assert r.returncode == 0, r.stdout + r.stderr
    delivery_line(inst, "b@example.org", "sent", timeout=20)
    assert wait_for(lambda: queue_empty(inst), timeout=10), inst.log()
    with open(mbox, "rb") as f:
        assert FROM_LINE.match(f.read())


TRANSPORT = ("err@example.org error:5.7.1 Mailbox closed by policy\n"
             "later@example.org retry:4.3.2 Try again tomorrow\n"
             "hard@example.org retry:5.1.1 Retry never bounces\n"
             "soft@example.org error:4.4.0 Temporarily closed\n"
             "gone@example.org discard:silently\n"
             "plain@example.org error:\n")


def test_error_retry_and_discard_transports(petrel_instance):
    inst = petrel_instance
    start(inst, transport=TRANSPORT)
    send(inst, ["err@example.org", "later@example.org", "hard@example.org", "soft@example.org",
                "gone@example.org", "plain@example.org"], sender="")
    line = delivery_line(inst, "err@example.org", "bounced")
    assert "relay=none" in line and "dsn=5.7.1" in line, line
    assert "(Mailbox closed by policy)" in line, line
    line = delivery_line(inst, "later@example.org", "deferred")
    assert "dsn=4.3.2" in line and "(Try again tomorrow)" in line, line
    # The retry service always defers: its class is 4 whatever the text says.
    line = delivery_line(inst, "hard@example.org", "deferred")
    assert "dsn=4.1.1" in line and "(Retry never bounces)" in line, line
    line = delivery_line(inst, "soft@example.org", "deferred")
    assert "dsn=4.4.0" in line and "(Temporarily closed)" in line, line
    line = delivery_line(inst, "gone@example.org", "sent")
    assert "relay=none" in line and "dsn=2.0.0" in line and "(silently)" in line, line
    # "error:" without a nexthop is the recipient domain, bounced with 5.0.0.
    line = delivery_line(inst, "plain@example.org", "bounced")
    assert "dsn=5.0.0" in line and "(example.org)" in line, line
    for name in ("err", "later", "hard", "soft", "gone", "plain"):
        assert not os.path.exists(os.path.join(base_dir(inst), "example.org", name))


def test_discard_only_message_leaves_the_queue(petrel_instance):
    inst = petrel_instance
    start(inst, transport="gone@example.org discard:dropped by rule\n")
    send(inst, ["gone@example.org"])
    line = delivery_line(inst, "gone@example.org", "sent")
    assert "(dropped by rule)" in line, line
    assert wait_for(lambda: queue_empty(inst), timeout=10), inst.log()
