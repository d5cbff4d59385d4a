"""test_restrictions.py - the SMTP restriction engine over real SMTP.

Each test starts a private instance with smtpd on a loopback port and speaks
SMTP to it: relay control from outside and inside mynetworks, access table
actions, unknown local recipients, non-FQDN and invalid HELO checks,
smtpd_delay_reject, restriction classes, and the rejection log lines.
"Outside" is made by a mynetworks that excludes 127.0.0.1. Every read has a
timeout; log lines are awaited with a bounded poll.
"""
import os
import re
import socket

import pytest

from petrel_instance import free_port, wait_for

OUTSIDE = "192.0.2.0/24"        # mynetworks that does not contain 127.0.0.1


class Smtp:
    """A minimal SMTP client: one command, one (possibly multi-line) reply."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise AssertionError("connection closed; got %r" % lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode("utf-8", "replace")
            lines.append(text)
            if len(text) < 4 or text[3] != "-":
                return "\n".join(lines)

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
        except OSError:
            pass
        self.sock.close()


def start(inst, tmp_path, wait=True, **params):
    port = free_port()
    settings = {
        "myhostname": "mx.example.com",
        "mydomain": "example.com",
        "mydestination": "$myhostname, localhost",
        "alias_maps": "",
        "local_recipient_maps": "inline:{ alice=1, bob=1 }",
    }
    settings.update(params)
    inst.write_main_cf(settings)
    inst.write_master_cf("127.0.0.1:%d inet n - n - - smtpd\n"
                         "cleanup unix - - n - 0 cleanup\n" % port)
    inst.start()
    if wait:
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
    s = Smtp(port)
    greeting = s.reply()
    assert greeting.startswith("220"), greeting
    if helo is not None:
        r = s.cmd("EHLO " + helo)
        assert r.startswith("250"), r
    if sender is not None:
        r = s.cmd("MAIL FROM:<%s>" % sender)
        assert r.startswith("250"), r
    return s


def queued_files(inst):
    found = []
    for q in ("incoming", "active", "maildrop"):
        for root, _dirs, files in os.walk(os.path.join(inst.queue_dir, q)):
            found.extend(os.path.join(root, f) for f in files)
    return found


def test_relay_denied_from_outside(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks=OUTSIDE,
                 smtpd_relay_restrictions="permit_mynetworks, permit_sasl_authenticated, "
                                          "reject_unauth_destination")
    s = session(port)
    r = s.cmd("RCPT TO:<victim@elsewhere.example>")
    assert r == "554 5.7.1 <victim@elsewhere.example>: Relay access denied"
    # Mail for our own domain is still accepted.
    assert s.cmd("RCPT TO:<alice@mx.example.com>").startswith("250")
    s.close()
    m = petrel_instance.wait_log(
        r"NOQUEUE: reject: RCPT from [^ ]*\[127\.0\.0\.1\]: 554 5\.7\.1 "
        r"<victim@elsewhere\.example>: Relay access denied; from=<sender@example\.org> "
        r"to=<victim@elsewhere\.example> proto=ESMTP helo=<client\.example\.org>")
    assert m, petrel_instance.log()
    # The half-made queue file of the accepted recipient goes away with QUIT.
    assert wait_for(lambda: queued_files(petrel_instance) == [], timeout=10), \
        queued_files(petrel_instance)


def test_default_relay_restrictions_defer(petrel_instance, tmp_path):
    """The registry default ends in defer_unauth_destination (Postfix): 454."""
    port = start(petrel_instance, tmp_path, mynetworks=OUTSIDE)
    s = session(port)
    r = s.cmd("RCPT TO:<victim@elsewhere.example>")
    assert r == "454 4.7.1 <victim@elsewhere.example>: Relay access denied"
    s.close()


def test_permit_mynetworks_relays(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks="127.0.0.0/8")
    s = session(port)
    assert s.cmd("RCPT TO:<someone@elsewhere.example>").startswith("250")
    s.close()


def test_relay_domains_accepted(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks=OUTSIDE, relay_domains="relay.example")
    s = session(port)
    assert s.cmd("RCPT TO:<x@relay.example>").startswith("250")
    assert s.cmd("RCPT TO:<x@sub.relay.example>").startswith("250")
    assert s.cmd("RCPT TO:<x@notrelay.example>").startswith("454")
    # Source routing through a relay domain is not authorized.
    assert s.cmd("RCPT TO:<x%elsewhere.example@relay.example>").startswith("454")
    s.close()


def test_unlisted_local_recipient(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks=OUTSIDE)
    s = session(port)
    assert s.cmd("RCPT TO:<alice@mx.example.com>").startswith("250")
    assert s.cmd("RCPT TO:<postmaster@mx.example.com>").startswith("250")
    r = s.cmd("RCPT TO:<nobody@mx.example.com>")
    assert r == ("550 5.1.1 <nobody@mx.example.com>: Recipient address rejected: "
                 "User unknown in local recipient table")
    s.close()
    # The accepted recipient opened the queue file: the line names its queue ID.
    assert petrel_instance.wait_log(r"\]: [0-9A-Za-z]{10,}: reject: RCPT from .*: 550 5\.1\.1 "
                                    r"<nobody@mx\.example\.com>: .*to=<nobody@mx\.example\.com>"
                                    ), petrel_instance.log()


def test_unavailable_recipient_table_defers(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks=OUTSIDE,
                 local_recipient_maps="hash:%s/missing" % tmp_path)
    s = session(port)
    r = s.cmd("RCPT TO:<alice@mx.example.com>")
    assert r == "451 4.3.0 <alice@mx.example.com>: Temporary lookup failure"
    s.close()


ACCESS = ("inline:{ ok@example.org=OK, rej@example.org=REJECT, "
          "{txt@example.org=REJECT go away}, def@example.org=DEFER, "
          "{num@example.org=450 4.7.9 later please}, dunno@example.org=DUNNO, "
          "{warn@example.org=WARN looks odd}, hold@example.org=HOLD, "
          "discard@example.org=DISCARD, {prep@example.org=PREPEND X-Tag: yes}, "
          "cls@example.org=defer_unauth_destination, bad.example=REJECT }")


def test_access_actions(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks=OUTSIDE,
                 smtpd_relay_restrictions="",
                 smtpd_recipient_restrictions="check_recipient_access " + ACCESS
                 + ", reject_unauth_destination")
    s = session(port, helo="client.example.org")
    cases = [
        ("ok@example.org", "250"),
        ("rej@example.org", "554 5.7.1 <rej@example.org>: Recipient address rejected: "
                            "Access denied"),
        ("txt@example.org", "554 5.7.1 <txt@example.org>: Recipient address rejected: go away"),
        ("def@example.org", "450 4.7.1 <def@example.org>: Recipient address rejected: "
                            "Access denied"),
        ("num@example.org", "450 4.7.9 <num@example.org>: Recipient address rejected: "
                            "later please"),
        ("dunno@example.org", "554 5.7.1 <dunno@example.org>: Relay access denied"),
        ("warn@example.org", "554 5.7.1 <warn@example.org>: Relay access denied"),
        ("hold@example.org", "554 5.7.1 <hold@example.org>: Relay access denied"),
        ("discard@example.org", "250"),
        ("prep@example.org", "554 5.7.1 <prep@example.org>: Relay access denied"),
        # A restriction list as the table result.
        ("cls@example.org", "454 4.7.1 <cls@example.org>: Relay access denied"),
        ("anyone@sub.bad.example", "554 5.7.1 <anyone@sub.bad.example>: Recipient address "
                                   "rejected: Access denied"),
    ]
    for rcpt, want in cases:
        r = s.cmd("RCPT TO:<%s>" % rcpt)
        assert r.startswith(want), (rcpt, r, want)
    s.close()
    log = petrel_instance.wait_log(r"warn: RCPT from .*\]: looks odd; from=<sender@example\.org>"
                                   r" to=<warn@example\.org>")
    assert log, petrel_instance.log()
    assert petrel_instance.wait_log(r"hold: RCPT from .*<hold@example\.org>: Recipient address "
                                    r"triggers HOLD action")
    assert petrel_instance.wait_log(r"discard: RCPT from .*<discard@example\.org>: Recipient "
                                    r"address triggers DISCARD action")


def test_client_and_sender_access(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks="127.0.0.0/8",
                 smtpd_client_restrictions="check_client_access inline:{ 127.0.0=REJECT }",
                 smtpd_sender_restrictions="check_sender_access "
                                           "inline:{ spammer@example.org=REJECT, <>=OK }")
    s = session(port)
    r = s.cmd("RCPT TO:<alice@mx.example.com>")
    # delay_reject: the client restriction answers at RCPT.
    assert r == ("554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: Access denied") \
        or re.match(r"554 5\.7\.1 <[^>]*\[127\.0\.0\.1\]>: Client host rejected: Access denied",
                    r), r
    s.close()


def test_sender_access_and_null_sender(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks="127.0.0.0/8",
                 smtpd_sender_restrictions="check_sender_access "
                                           "inline:{ spammer@example.org=REJECT, {<>=REJECT no bounces} }")
    s = session(port, sender="spammer@example.org")
    r = s.cmd("RCPT TO:<alice@mx.example.com>")
    assert r == "554 5.7.1 <spammer@example.org>: Sender address rejected: Access denied", r
    s.cmd("RSET")
    assert s.cmd("MAIL FROM:<>").startswith("250")
    r = s.cmd("RCPT TO:<alice@mx.example.com>")
    assert r == "554 5.7.1 <>: Sender address rejected: no bounces", r
    s.close()


def test_delay_reject_off_rejects_at_mail(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks="127.0.0.0/8", smtpd_delay_reject="no",
                 smtpd_sender_restrictions="check_sender_access "
                                           "inline:{ spammer@example.org=REJECT }")
    s = session(port, sender=None)
    r = s.cmd("MAIL FROM:<spammer@example.org>")
    assert r == "554 5.7.1 <spammer@example.org>: Sender address rejected: Access denied", r
    s.close()
    assert petrel_instance.wait_log(r"NOQUEUE: reject: MAIL from .*: 554 5\.7\.1 "
                                    r"<spammer@example\.org>: Sender address rejected")


def test_helo_checks(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks="127.0.0.0/8",
                 smtpd_helo_restrictions="reject_invalid_helo_hostname, "
                                         "reject_non_fqdn_helo_hostname")
    for helo, want in [
        ("bad_host!name", "501 5.5.2 <bad_host!name>: Helo command rejected: Invalid name"),
        ("-dash.example", "501 5.5.2 <-dash.example>: Helo command rejected: Invalid name"),
        ("localhostonly", "504 5.5.2 <localhostonly>: Helo command rejected: "
                          "need fully-qualified hostname"),
        ("[127.0.0.1]", "250"),
        ("good.example.org", "250"),
    ]:
        s = session(port, helo=helo)
        r = s.cmd("RCPT TO:<alice@mx.example.com>")
        assert r.startswith(want), (helo, r)
        s.close()


def test_non_fqdn_sender_and_recipient(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks="127.0.0.0/8",
                 smtpd_recipient_restrictions="reject_non_fqdn_sender, reject_non_fqdn_recipient")
    s = session(port, sender="user@host")
    r = s.cmd("RCPT TO:<alice@mx.example.com>")
    assert r == "504 5.5.2 <user@host>: Sender address rejected: need fully-qualified address", r
    s.cmd("RSET")
    assert s.cmd("MAIL FROM:<user@host.example.org>").startswith("250")
    r = s.cmd("RCPT TO:<alice@localhost>")
    assert r == ("504 5.5.2 <alice@localhost>: Recipient address rejected: "
                 "need fully-qualified address"), r
    s.close()


def test_unknown_sender_domain(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks="127.0.0.0/8",
                 smtpd_sender_restrictions="reject_unknown_sender_domain")
    s = session(port, sender="someone@nonexistent.invalid")
    r = s.cmd("RCPT TO:<alice@mx.example.com>")
    # A resolver that answers says NXDOMAIN (450, Postfix's default code); one that
    # cannot be reached makes it a temporary failure, also 450.
    assert r == ("450 4.1.8 <someone@nonexistent.invalid>: Sender address rejected: "
                 "Domain not found"), r
    s.close()


def test_warn_if_reject_and_defer_if_permit(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks="127.0.0.0/8",
                 smtpd_recipient_restrictions="warn_if_reject, reject_non_fqdn_recipient, "
                                              "check_recipient_access "
                                              "inline:{ later@example.org=DEFER_IF_PERMIT }, "
                                              "permit")
    s = session(port)
    assert s.cmd("RCPT TO:<alice@localhost>").startswith("250")
    r = s.cmd("RCPT TO:<later@example.org>")
    assert r == "450 4.7.1 <later@example.org>: Recipient address rejected: " \
                "Service is unavailable", r
    s.close()
    assert petrel_instance.wait_log(r"reject_warning: RCPT from .*: 504 5\.5\.2 <alice@localhost>")


def test_policy_service_fails_closed(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, mynetworks="127.0.0.0/8",
                 smtpd_recipient_restrictions="check_policy_service inet:127.0.0.1:9, permit")
    s = session(port)
    r = s.cmd("RCPT TO:<alice@mx.example.com>")
    assert r.startswith("451 4.3.5 "), r
    assert "Server configuration problem" in r
    s.close()
    assert petrel_instance.wait_log(r"warning: check_policy_service inet:127\.0\.0\.1:9")


def test_unknown_restriction_is_fatal(petrel_instance, tmp_path):
    port = start(petrel_instance, tmp_path, wait=False,
                 smtpd_recipient_restrictions="reject_everything")
    with pytest.raises((AssertionError, OSError)):
        s = Smtp(port, timeout=3)
        s.reply()
        s.cmd("EHLO x.example")
    assert petrel_instance.wait_log(r"smtpd_recipient_restrictions: unknown restriction: "
                                    r"reject_everything")


def test_restriction_class_defined_in_main_cf(petrel_instance, tmp_path):
    """A name listed in smtpd_restriction_classes is a main.cf setting of its own
    (no "unknown parameter"), and an access table result may name it."""
    access = tmp_path / "rcpt_access"
    access.write_text("strict@example.org strict_checks\n")
    port = start(petrel_instance, tmp_path, mynetworks=OUTSIDE, smtpd_relay_restrictions="",
                 smtpd_restriction_classes="strict_checks",
                 strict_checks="reject_unlisted_sender, reject",
                 smtpd_recipient_restrictions="check_recipient_access texthash:%s, permit"
                 % access)
    assert petrel_instance.petrel("check").returncode == 0
    s = session(port)
    assert s.cmd("RCPT TO:<other@example.org>").startswith("250")
    r = s.cmd("RCPT TO:<strict@example.org>")
    assert r.startswith("554 5.7.1 <strict@example.org>: Recipient address rejected: "
                        "Access denied"), r
    s.close()
