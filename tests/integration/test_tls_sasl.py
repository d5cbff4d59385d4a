"""test_tls_sasl.py - STARTTLS and SMTP AUTH together, on both sides.

smtpd: with smtpd_tls_auth_only AUTH appears only after STARTTLS, a login made
before STARTTLS is forgotten by it (RFC 3207 section 4.2), and authenticated
mail over TLS is received "with ESMTPSA". The smtp client: STARTTLS first, then
AUTH inside the TLS session (smtp_sasl_tls_security_options, which here allows
the plaintext mechanisms that smtp_sasl_security_options forbids).
Real OpenSSL (certificates made by the openssl command), real Cyrus SASL.
"""
import os
import re
import smtplib
import ssl

from petrel_instance import wait_for
from test_sasl import USERS, sasl_main, start_receiver, start_sender, submit
from test_smtpd import queue_files, qdump
from test_tls_server import certs  # noqa: F401  (fixture)


def tls_params(certs, **extra):
    params = dict(smtpd_tls_security_level="may",
                  smtpd_tls_cert_file=str(certs / "server.pem"),
                  smtpd_tls_key_file=str(certs / "server.key"))
    params.update(extra)
    return params


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def test_auth_only_after_starttls_and_esmtpsa(petrel_instance, certs):
    inst = petrel_instance
    inst.start_smtpd(main=sasl_main(inst, smtpd_tls_auth_only="yes", **tls_params(certs)))
    s = smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10)
    s.ehlo("client.example")
    assert s.has_extn("starttls") and not s.has_extn("auth")
    assert s.docmd("AUTH PLAIN")[0] == 504
    s.starttls(context=ctx())
    s.ehlo("client.example")
    assert s.has_extn("auth") and not s.has_extn("starttls")
    s.login("alice", USERS["alice"])
    assert s.docmd("MAIL FROM:<alice@sasl.test>")[0] == 250
    assert s.docmd("RCPT TO:<someone@elsewhere.example>")[0] == 250
    code, text = s.data(b"Subject: tls and auth\r\n\r\nhi\r\n")
    assert code == 250, text
    qid = text.decode().split()[-1]
    s.quit()
    assert wait_for(lambda: [p for p in queue_files(inst) if os.path.basename(p) == qid])
    q = qdump([p for p in queue_files(inst) if os.path.basename(p) == qid][0])
    head = q["content"].split(b"\n\n")[0]
    assert re.search(rb"\n\tby mx\.sasl\.test \([^)]*\) with ESMTPSA id ", head), head


def test_starttls_forgets_an_earlier_login(petrel_instance, certs):
    inst = petrel_instance
    inst.start_smtpd(main=sasl_main(inst, **tls_params(certs)))
    s = smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10)
    s.ehlo("client.example")
    s.login("alice", USERS["alice"])
    s.starttls(context=ctx())
    s.ehlo("client.example")
    # The login is gone: relaying is refused again until AUTH is repeated.
    assert s.docmd("MAIL FROM:<alice@sasl.test>")[0] == 250
    code, text = s.docmd("RCPT TO:<someone@elsewhere.example>")
    assert code in (454, 554) and b"Relay access denied" in text, (code, text)
    s.rset()
    s.login("alice", USERS["alice"])
    assert s.docmd("MAIL FROM:<alice@sasl.test>")[0] == 250
    assert s.docmd("RCPT TO:<someone@elsewhere.example>")[0] == 250
    s.quit()


def test_client_authenticates_inside_tls(petrel_instance, tmp_path, certs):
    receiver = start_receiver(str(tmp_path / "rx"), smtpd_tls_auth_only="yes",
                              **tls_params(certs))
    try:
        passwd = "[127.0.0.1]:%d alice:%s\n" % (receiver.smtp_port, USERS["alice"])
        start_sender(petrel_instance, receiver.smtp_port, passwd,
                     smtp_tls_security_level="encrypt",
                     smtp_sasl_security_options="noanonymous, noplaintext",
                     smtp_sasl_tls_security_options="noanonymous",
                     smtp_sasl_mechanism_filter="plain")
        submit(petrel_instance)
        assert petrel_instance.wait_log(r"status=sent", timeout=30), petrel_instance.log()
        assert receiver.wait_log(r"sasl_method=PLAIN, sasl_username=alice"), receiver.log()
    finally:
        receiver.teardown()
