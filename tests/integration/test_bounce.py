"""test_bounce.py - delivery status notifications end to end: SMTP -> smtpd ->
cleanup -> qmgr -> virtual/error/retry -> bounce -> cleanup -> qmgr -> virtual.

A real instance serves virtual_mailbox_domains = example.org; the senders of the
test messages have virtual mailboxes too, so every notification lands in a Maildir
where the test reads it. What is asserted is what a user sees: the report parses
with Python's email package as multipart/report; report-type=delivery-status with
a text/plain part, a message/delivery-status part (per-message and per-recipient
fields as RFC 3464 names them) and the returned message or its headers; the
notification's envelope sender is <> (Return-Path: <>); the Postfix-style log
lines ("QUEUEID: sender non-delivery notification: NEWID", ...); the queue
emptying; and, for NOTIFY=NEVER and for failed notifications, that no report is
sent to anyone but postmaster, and never to <>.
"""
import email
import email.policy
import os
import re
import smtplib

from petrel_instance import free_port, wait_for

ROOT = os.geteuid() == 0
VUID = 5000 if ROOT else os.getuid()
VGID = 5000 if ROOT else os.getgid()
SENDER = "sender@example.org"

MESSAGE = (
    "From: Sender <sender@example.org>\r\n"
    "To: someone@example.org\r\n"
    "Subject: bounce test\r\n"
    "Message-ID: <bounce-test@example.org>\r\n"
    "\r\n"
    "The body of the returned message.\r\n")

MAILBOXES = {"sender@example.org": "example.org/sender/",
             "a@example.org": "example.org/a/",
             "postmaster@example.org": "example.org/postmaster/"}

TRANSPORT = ("later@example.org retry:4.3.2 Try again tomorrow\n"
             "closed@example.org error:5.7.1 Mailbox closed by policy\n")


def start(inst, extra=None):
    base = os.path.join(inst.base, "vmail")
    os.makedirs(os.path.join(base, "example.org"), exist_ok=True)
    if ROOT:
        for d in (base, os.path.join(base, "example.org")):
            os.chown(d, VUID, VGID)
    maps = os.path.join(inst.base, "vmailbox")
    with open(maps, "w") as f:
        for addr, path in MAILBOXES.items():
            f.write("%s %s\n" % (addr, path))
    tpath = os.path.join(inst.base, "transport")
    with open(tpath, "w") as f:
        f.write(TRANSPORT)
    params = {"myhostname": "mx.example.com", "mydomain": "example.com",
              "myorigin": "example.com", "mydestination": "localhost",
              "virtual_mailbox_domains": "example.org",
              "virtual_mailbox_base": base,
              "virtual_mailbox_maps": "texthash:" + maps,
              "virtual_uid_maps": "static:%d" % VUID,
              "virtual_gid_maps": "static:%d" % VGID,
              "virtual_minimum_uid": "1",
              "transport_maps": "texthash:" + tpath,
              "smtpd_reject_unlisted_recipient": "no",
              "minimal_backoff_time": "1s", "maximal_backoff_time": "1s",
              "queue_run_delay": "1s"}
    params.update(extra or {})
    inst.write_main_cf(params)
    port = free_port()
    inst.write_master_cf(
        "127.0.0.1:%d inet n - n - - smtpd\n" % port
        + "cleanup unix n - n - 0 cleanup\n"
        "qmgr unix n - n 300 1 qmgr\n"
        "virtual unix - n n - - virtual\n"
        "error unix - - n - - error\n"
        "retry unix - - n - - error\n"
        "bounce unix - - n - 0 bounce\n")
    inst.start()
    inst.smtp_port = port
    return port


def send(inst, rcpts, sender=SENDER, message=MESSAGE, mail_options=(), rcpt_options=None):
    """One message over SMTP; rcpts get 250; returns the queue ID."""
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        code, msg = s.mail(sender, list(mail_options))
        assert code == 250, (code, msg)
        for r in rcpts:
            code, msg = s.rcpt(r, list((rcpt_options or {}).get(r, ())))
            assert code == 250, (r, code, msg)
        code, msg = s.data(message.encode())
        assert code == 250, (code, msg)
        return re.search(r"queued as (\w+)", msg.decode()).group(1)


def mailbox(inst, user):
    return os.path.join(inst.base, "vmail", "example.org", user, "new")


def messages(inst, user):
    d = mailbox(inst, user)
    if not os.path.isdir(d):
        return []
    out = []
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            out.append(email.message_from_bytes(f.read(), policy=email.policy.compat32))
    return out


def wait_reports(inst, user, count=1, timeout=20):
    got = wait_for(lambda: len(messages(inst, user)) >= count, timeout=timeout)
    assert got, "no report in %s's mailbox; log:\n%s" % (user, inst.log())
    return messages(inst, user)


def queue_empty(inst):
    for q in ("incoming", "active", "deferred"):
        for _root, _dirs, files in os.walk(os.path.join(inst.queue_dir, q)):
            if [f for f in files if not f.startswith(".")]:
                return False
    return True


def parts(report):
    """The three parts of a DSN, checked for the RFC 3464 structure."""
    assert report.get_content_type() == "multipart/report", report.get_content_type()
    assert report.get_param("report-type") == "delivery-status"
    p = report.get_payload()
    assert len(p) == 3, [x.get_content_type() for x in p]
    assert p[0].get_content_type() == "text/plain"
    assert p[1].get_content_type() == "message/delivery-status"
    # email parses a delivery-status body as a list of field blocks: the
    # per-message fields, then one block per recipient.
    blocks = p[1].get_payload()
    assert len(blocks) >= 2
    return p[0].get_payload(), blocks[0], blocks[1:], p[2]


def test_unknown_recipient_bounces_with_a_dsn(petrel_instance):
    inst = petrel_instance
    start(inst)
    qid = send(inst, ["nobody@example.org", "a@example.org"],
               rcpt_options={"nobody@example.org": ["ORCPT=rfc822;Nobody@example.org"]})
    m = inst.wait_log(r"%s: sender non-delivery notification: (\w+)" % qid, timeout=20)
    assert m, inst.log()
    new_qid = m.group(1)
    reports = wait_reports(inst, "sender")
    assert len(reports) == 1
    r = reports[0]
    # The notification came from <>, to the sender, answering the message.
    assert r["Return-Path"] == "<>"
    assert r["Subject"] == "Undelivered Mail Returned to Sender"
    assert r["From"] == "Mail Delivery System <MAILER-DAEMON@mx.example.com>"
    assert r["To"] == SENDER
    assert r["Auto-Submitted"] == "auto-replied"
    assert r["In-Reply-To"] == "<bounce-test@example.org>"
    assert new_qid in r["Message-ID"]
    human, per_msg, per_rcpt, original = parts(r)
    assert "This is the mail system at host mx.example.com." in human
    assert "<nobody@example.org>:" in human
    assert "a@example.org" not in human         # delivered: not in the failure report
    assert per_msg["Reporting-MTA"] == "dns; mx.example.com"
    assert per_msg["X-Petrel-Queue-ID"] == qid
    assert per_msg["X-Petrel-Sender"] == "rfc822; " + SENDER
    assert per_msg["Arrival-Date"]
    assert len(per_rcpt) == 1
    f = per_rcpt[0]
    assert f["Final-Recipient"] == "rfc822; nobody@example.org"
    assert f["Original-Recipient"] == "rfc822;Nobody@example.org"
    assert f["Action"] == "failed"
    assert re.fullmatch(r"5\.\d+\.\d+", f["Status"]), f["Status"]
    assert f["Diagnostic-Code"].startswith("X-Petrel; ")
    assert f["Last-Attempt-Date"]
    # The whole message comes back.
    assert original.get_content_type() == "message/rfc822"
    inner = original.get_payload()[0]
    assert inner["Subject"] == "bounce test"
    assert "The body of the returned message." in inner.get_payload()
    assert len(messages(inst, "a")) == 1
    assert wait_for(lambda: queue_empty(inst), timeout=15), inst.log()


def test_notify_never_and_ret_hdrs(petrel_instance):
    inst = petrel_instance
    start(inst)
    # NOTIFY=NEVER: bounced, removed, and nobody hears of it.
    never = send(inst, ["nobody@example.org"],
                 rcpt_options={"nobody@example.org": ["NOTIFY=NEVER"]})
    assert inst.wait_log(r"%s: removed" % never, timeout=20), inst.log()
    assert not re.search(r"%s: \w+ non-delivery notification" % never, inst.log())
    # RET=HDRS: only the headers come back; the NOTIFY=FAILURE recipient is listed.
    hdrs = send(inst, ["closed@example.org"], mail_options=["RET=HDRS", "ENVID=env-42"],
                rcpt_options={"closed@example.org": ["NOTIFY=FAILURE"]})
    assert inst.wait_log(r"%s: sender non-delivery notification: \w+" % hdrs, timeout=20)
    reports = wait_reports(inst, "sender")
    assert len(reports) == 1
    human, per_msg, per_rcpt, original = parts(reports[0])
    assert per_msg["Original-Envelope-Id"] == "env-42"
    assert per_rcpt[0]["Final-Recipient"] == "rfc822; closed@example.org"
    assert per_rcpt[0]["Status"] == "5.7.1"
    assert "Mailbox closed by policy" in per_rcpt[0]["Diagnostic-Code"]
    assert original.get_content_type() == "text/rfc822-headers"
    assert "Subject: bounce test" in original.get_payload()
    assert "The body of the returned message." not in original.get_payload()


def test_expiry_returns_the_message(petrel_instance):
    inst = petrel_instance
    start(inst, {"maximal_queue_lifetime": "2s", "bounce_queue_lifetime": "2s"})
    qid = send(inst, ["later@example.org"])
    assert inst.wait_log(r"%s: from=<%s>, status=expired, returned to sender"
                         % (qid, SENDER), timeout=25), inst.log()
    assert inst.wait_log(r"%s: sender non-delivery notification: \w+" % qid, timeout=20)
    r = wait_reports(inst, "sender")[0]
    assert r["Subject"] == "Undelivered Mail Returned to Sender"
    _human, _per_msg, per_rcpt, original = parts(r)
    assert per_rcpt[0]["Final-Recipient"] == "rfc822; later@example.org"
    assert per_rcpt[0]["Action"] == "failed"
    assert per_rcpt[0]["Status"].startswith("5.")
    assert "Try again tomorrow" in per_rcpt[0]["Diagnostic-Code"]
    assert original.get_content_type() == "message/rfc822"
    assert wait_for(lambda: queue_empty(inst), timeout=15), inst.log()


def test_delay_warning(petrel_instance):
    inst = petrel_instance
    start(inst, {"delay_warning_time": "1s", "maximal_queue_lifetime": "1h"})
    qid = send(inst, ["later@example.org"])
    assert inst.wait_log(r"%s: sender delay notification: \w+" % qid, timeout=25), inst.log()
    r = wait_reports(inst, "sender")[0]
    assert r["Subject"] == "Delayed Mail (still being retried)"
    human, _per_msg, per_rcpt, original = parts(r)
    assert "could not be delivered for more than 1 second(s)" in human
    assert "retried until it is 1 hour(s) old" in human
    f = per_rcpt[0]
    assert f["Final-Recipient"] == "rfc822; later@example.org"
    assert f["Action"] == "delayed"
    assert f["Status"] == "4.3.2"
    assert f["Will-Retry-Until"]
    assert original.get_content_type() == "text/rfc822-headers"
    # One warning only: the message stays queued and is not warned about again.
    assert inst.wait_log(r"%s: to=<later@example.org>.*status=deferred(?s:.*)"
                         r"%s: to=<later@example.org>.*status=deferred(?s:.*)"
                         r"%s: to=<later@example.org>.*status=deferred" % (qid, qid, qid),
                         timeout=20), inst.log()
    assert len(re.findall(r"%s: sender delay notification" % qid, inst.log())) == 1
    assert len(messages(inst, "sender")) == 1


def test_notify_success_report(petrel_instance):
    inst = petrel_instance
    start(inst)
    qid = send(inst, ["a@example.org"],
               rcpt_options={"a@example.org": ["NOTIFY=SUCCESS"]})
    assert inst.wait_log(r"%s: sender delivery status notification: \w+" % qid,
                         timeout=20), inst.log()
    r = wait_reports(inst, "sender")[0]
    assert r["Subject"] == "Successful Mail Delivery Report"
    human, _per_msg, per_rcpt, _original = parts(r)
    assert "<a@example.org>: delivery via virtual:" in human
    assert per_rcpt[0]["Final-Recipient"] == "rfc822; a@example.org"
    assert per_rcpt[0]["Action"] == "delivered"
    assert per_rcpt[0]["Status"].startswith("2.")
    assert len(messages(inst, "a")) == 1
    assert wait_for(lambda: queue_empty(inst), timeout=15), inst.log()


def test_double_bounce_goes_to_postmaster(petrel_instance):
    """With the default notify_classes (which, unlike Postfix's, has 2bounce)."""
    inst = petrel_instance
    start(inst, {"2bounce_notice_recipient": "postmaster@example.org"})
    qid = send(inst, ["nobody@example.org"], sender="")
    m = inst.wait_log(r"%s: postmaster non-delivery notification: (\w+)" % qid, timeout=20)
    assert m, inst.log()
    reports = wait_reports(inst, "postmaster")
    assert len(reports) == 1
    r = reports[0]
    assert r["Subject"] == "Postmaster Copy: Undelivered Mail"
    assert r["Auto-Submitted"] == "auto-generated"
    # From the double-bounce address, so that its own failure cannot loop.
    assert r["Return-Path"] == "<double-bounce@mx.example.com>"
    _human, per_msg, per_rcpt, original = parts(r)
    assert "X-Petrel-Sender" not in per_msg
    assert per_rcpt[0]["Final-Recipient"] == "rfc822; nobody@example.org"
    assert original.get_content_type() == "message/rfc822"
    assert not re.search(r"%s: sender non-delivery notification" % qid, inst.log())
    assert wait_for(lambda: queue_empty(inst), timeout=15), inst.log()
    assert messages(inst, "sender") == []


def test_failed_notification_is_dropped_without_2bounce(petrel_instance):
    inst = petrel_instance
    start(inst, {"notify_classes": "resource, software"})
    # notify_classes without 2bounce (Postfix's default): never a notice to <>,
    # and no double bounce either; the message leaves the queue.
    qid = send(inst, ["nobody@example.org"], sender="")
    assert inst.wait_log(r"%s: undeliverable notification discarded" % qid, timeout=20), \
        inst.log()
    assert inst.wait_log(r"%s: removed" % qid, timeout=15), inst.log()
    assert not re.search(r"%s: \w+ non-delivery notification" % qid, inst.log())
    assert messages(inst, "postmaster") == [] and messages(inst, "sender") == []
