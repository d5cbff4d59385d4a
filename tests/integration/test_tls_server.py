"""test_tls_server.py - TLS in the SMTP server: STARTTLS (RFC 3207) and wrapper mode.

Certificates are made here with the openssl command (a CA, a server
certificate for mx.example.com, a client certificate). The peers are Python's
ssl module over the raw Client of test_smtpd.py (so a test sees every byte)
and smtplib. What is checked is what a client and an administrator observe:
EHLO keywords before and after TLS, reply codes, that pipelined plaintext
after STARTTLS is never answered, the handshake time limit, the protocol
floor, the log lines, the Received: header in the queue file, and the TLS
facts that milters and policy servers are sent.
"""
import os
import re
import smtplib
import socket
import ssl
import subprocess
import time
import warnings

import pytest

from petrel_instance import wait_for
from test_smtpd import Client, greet, ehlo, qdump, queued_file, need_cleanup, send_message

HOST = "mx.example.com"
MAIN = {
    "myhostname": HOST,
    "mydomain": "example.com",
    "local_recipient_maps": "",
    "smtpd_error_sleep_time": "0",
}
BODY = b"Subject: over TLS\r\n\r\nhello\r\n.\r\n"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True,
                   timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for mx.example.com and a client certificate."""
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=Petrel Test CA", cwd=d)
    for name, cn in (("server", HOST), ("client", "client.example.com")):
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + cn, cwd=d)
        (d / (name + ".ext")).write_text("subjectAltName=DNS:%s\n" % cn)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2",
                "-extfile", name + ".ext", cwd=d)
    # A certificate signed by nobody the server trusts.
    openssl("req", "-x509", *ec, "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "2",
            "-subj", "/CN=rogue.example.com", cwd=d)
    for f in os.listdir(d):
        os.chmod(d / f, 0o644 if not f.endswith(".key") else 0o600)
    return d


def tls_main(certs, **extra):
    params = dict(MAIN, smtpd_tls_security_level="may",
                  smtpd_tls_cert_file=str(certs / "server.pem"),
                  smtpd_tls_key_file=str(certs / "server.key"),
                  smtpd_tls_loglevel="1")
    params.update(extra)
    return params


def client_ctx(certs, cert=None, **kw):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(certs / (cert + ".pem")), str(certs / (cert + ".key")))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def starttls(c, ctx):
    """STARTTLS on a raw Client, then the handshake; the Client speaks TLS after."""
    assert c.cmd("STARTTLS") == (220, ["2.0.0 Ready to start TLS"])
    assert c.buf == b""
    c.sock = ctx.wrap_socket(c.sock, server_hostname=HOST)
    return c


def vanishing_copy(inst, certs, name):
    """A copy of a certificate file that the test may break once the instance runs
    ("petrel start" refuses a configuration whose files are bad)."""
    path = os.path.join(inst.base, name)
    with open(certs / name, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read())
    return path


def queued(inst, reply):
    code, text = reply
    assert code == 250 and text[0].startswith("2.0.0 Ok: queued as "), text
    return qdump(queued_file(inst, text[0].split()[-1]))


def received_of(content):
    lines = content.split(b"\n")
    out = [lines[0]]
    for ln in lines[1:]:
        if not ln.startswith(b"\t"):
            break
        out.append(ln)
    return b"\n".join(out).decode("latin-1")


# --- levels and EHLO -------------------------------------------------------------------
def test_none_offers_no_starttls(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(certs, smtpd_tls_security_level="none"))
    c = greet(port)
    assert "STARTTLS" not in ehlo(c)
    assert c.cmd("STARTTLS") == (502, ["5.5.1 Error: command not implemented"])
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    c.cmd("QUIT")


@need_cleanup
def test_starttls_at_may_resets_session_and_mail_is_esmtps(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(certs))
    c = greet(port)
    lines = ehlo(c)
    assert "STARTTLS" in lines
    # Before EHLO, with an argument, and a transaction open: refused or reset.
    assert c.cmd("STARTTLS now") == (501, ["5.5.4 Syntax: STARTTLS"])
    assert c.cmd("MAIL FROM:<early@example.com>")[0] == 250
    starttls(c, client_ctx(certs))
    assert c.sock.version() == "TLSv1.3"
    # The session is back at the greeting: no HELO/EHLO, no transaction.
    assert c.cmd("RCPT TO:<user@localhost>") == (503, ["5.5.1 Error: need MAIL command"])
    lines = ehlo(c)
    assert "STARTTLS" not in lines and "PIPELINING" in lines
    assert c.cmd("STARTTLS") == (554, ["5.5.1 Error: TLS already active"])
    q = queued(petrel_instance, send_message(c, ["user@localhost"], BODY))
    assert q["sender"] == "sender@example.com"
    rcvd = received_of(q["content"])
    assert re.search(r"\tby mx\.example\.com \(Petrel\) with ESMTPS id \w+", rcvd), rcvd
    assert "(using " not in rcvd            # smtpd_tls_received_header = no
    assert c.cmd("QUIT")[0] == 221
    assert petrel_instance.wait_log(
        r"Anonymous TLS connection established from \S+\[127\.0\.0\.1\]: TLSv1\.3 with "
        r"cipher TLS_AES_256_GCM_SHA384 \(256/256 bits\)")
    assert petrel_instance.wait_log(r"disconnect from \S+\[127\.0\.0\.1\] ehlo=2 "
                                    r"starttls=1/3 mail=2 rcpt=1/2 data=1 quit=1")


def test_discarded_starttls_keyword(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(
        certs, smtpd_discard_ehlo_keywords="starttls"))
    c = greet(port)
    assert "STARTTLS" not in ehlo(c)
    assert c.cmd("STARTTLS") == (502, ["5.5.1 Error: command not implemented"])
    c.cmd("QUIT")


def test_starttls_needs_ehlo(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(certs))
    c = greet(port)
    assert c.cmd("STARTTLS") == (503, ["5.5.1 Error: send EHLO first"])
    assert c.cmd("HELO client.example")[0] == 250
    assert c.cmd("STARTTLS") == (503, ["5.5.1 Error: send EHLO first"])
    ehlo(c)
    starttls(c, client_ctx(certs))
    ehlo(c)
    c.cmd("QUIT")


@need_cleanup
def test_smtplib_and_received_header_comment(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(certs, smtpd_tls_received_header="yes"))
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("starttls")
        # smtplib names the peer by the address it dialled: check the chain only.
        s.starttls(context=client_ctx(certs, check_hostname=False))
        s.ehlo("client.example")
        assert not s.has_extn("starttls")
        refused = s.sendmail("sender@example.com", ["user@localhost"],
                             b"Subject: smtplib\r\n\r\nhi\r\n")
        assert refused == {}
    assert petrel_instance.wait_log(r"\w+: client=\S+\[127\.0\.0\.1\]")
    files = [os.path.join(r, f) for r, _d, fs in
             os.walk(os.path.join(petrel_instance.queue_dir, "incoming")) for f in fs]
    assert len(files) == 1
    rcvd = received_of(qdump(files[0])["content"])
    assert "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n" \
           "\t(No client certificate requested)\n" in rcvd, rcvd
    assert " with ESMTPS id " in rcvd


# --- encrypt -------------------------------------------------------------------------------
@need_cleanup
def test_encrypt_requires_starttls(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(certs, smtpd_tls_security_level="encrypt",
                                                     smtpd_tls_loglevel="0"))
    c = greet(port)
    assert "STARTTLS" in ehlo(c)
    must = (530, ["5.7.0 Must issue a STARTTLS command first"])
    for cmd in ("MAIL FROM:<a@example.com>", "RCPT TO:<user@localhost>", "DATA", "VRFY root",
                "ETRN example.com", "RSET", "AUTH PLAIN AGFAYg=="):
        assert c.cmd(cmd) == must, cmd
    assert c.cmd("NOOP")[0] == 250
    assert c.cmd("HELP")[0] == 214
    starttls(c, client_ctx(certs))
    ehlo(c)
    q = queued(petrel_instance, send_message(c, ["user@localhost"], BODY))
    assert " with ESMTPS id " in received_of(q["content"])
    c.cmd("QUIT")
    assert petrel_instance.wait_log(r"disconnect from ")
    assert "TLS connection established" not in petrel_instance.log()   # smtpd_tls_loglevel 0


def test_encrypt_with_broken_certificate_answers_454(petrel_instance, certs):
    cert = vanishing_copy(petrel_instance, certs, "server.pem")
    port = petrel_instance.start_smtpd(main=tls_main(certs, smtpd_tls_security_level="encrypt",
                                                     smtpd_tls_cert_file=cert))
    os.unlink(cert)                     # after "petrel start" checked it, before smtpd runs
    c = greet(port)
    assert "STARTTLS" not in ehlo(c)
    assert petrel_instance.wait_log(r"warning: cannot load the certificate chain from "
                                    r"\S*/server\.pem.*: disabling TLS support")
    assert c.cmd("MAIL FROM:<a@example.com>") == \
        (454, ["4.7.0 TLS not available due to local problem"])
    assert c.cmd("STARTTLS") == (454, ["4.7.0 TLS not available due to local problem"])
    c.cmd("QUIT")


def test_bad_certificate_path_at_may_means_no_starttls(petrel_instance, certs):
    key = vanishing_copy(petrel_instance, certs, "server.key")
    port = petrel_instance.start_smtpd(main=tls_main(certs, smtpd_tls_key_file=key))
    with open(key, "w") as f:           # garbage where the key was
        f.write("not a key\n")
    c = greet(port)
    assert "STARTTLS" not in ehlo(c)
    assert petrel_instance.wait_log(r"warning: cannot load the private key from \S*/server\.key"
                                    r".*: disabling TLS support")
    assert c.cmd("STARTTLS") == (454, ["4.7.0 TLS not available due to local problem"])
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250      # mail still flows
    c.cmd("QUIT")


# --- the protocol's edges ----------------------------------------------------------------
def test_pipelined_plaintext_after_starttls_is_discarded(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(certs))
    c = greet(port)
    ehlo(c)
    c.send("STARTTLS\r\nRSET\r\n")          # one write: the server reads both at once
    assert c.reply() == (220, ["2.0.0 Ready to start TLS"])
    assert c.buf == b""
    c.sock = client_ctx(certs).wrap_socket(c.sock, server_hostname=HOST)
    # The first reply over TLS is the one to this NOOP: RSET was never run.
    assert c.cmd("NOOP") == (250, ["2.0.0 Ok"])
    ehlo(c)
    c.cmd("QUIT")
    assert petrel_instance.wait_log(r"improper command pipelining after STARTTLS from "
                                    r"\S+\[127\.0\.0\.1\]: RSET")
    assert petrel_instance.wait_log(r"disconnect from \S+\[127\.0\.0\.1\] ehlo=2 starttls=1 "
                                    r"noop=1 quit=1 commands=5")


def test_client_that_never_handshakes_times_out(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(certs),
                                       smtpd_opts="-o smtpd_starttls_timeout=1s")
    c = greet(port)
    ehlo(c)
    assert c.cmd("STARTTLS")[0] == 220
    t0 = time.monotonic()
    assert c.closed(timeout=10)
    assert time.monotonic() - t0 < 8
    assert c.buf == b""                     # no plaintext reply after 220
    assert petrel_instance.wait_log(r"SSL_accept error from \S+\[127\.0\.0\.1\]: "
                                    r"Connection timed out")
    assert petrel_instance.wait_log(r"lost connection after STARTTLS from \S+\[127\.0\.0\.1\]")


def test_tls11_client_is_refused_by_default_protocols(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(certs))
    c = greet(port)
    ehlo(c)
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():     # the point is to be outdated
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    assert c.cmd("STARTTLS")[0] == 220
    with pytest.raises((ssl.SSLError, ConnectionError)):
        old.wrap_socket(c.sock, server_hostname=HOST)
    assert petrel_instance.wait_log(r"SSL_accept error from \S+\[127\.0\.0\.1\]: .*"
                                    r"(unsupported protocol|version)")
    assert petrel_instance.wait_log(r"lost connection after STARTTLS from ")


def test_tls12_with_a_chosen_cipher(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(certs, smtpd_tls_received_header="yes"))
    c = greet(port)
    ehlo(c)
    ctx = client_ctx(certs, maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    starttls(c, ctx)
    assert c.sock.version() == "TLSv1.2"
    assert c.sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    ehlo(c)
    c.cmd("QUIT")
    assert petrel_instance.wait_log(
        r"Anonymous TLS connection established from \S+\[127\.0\.0\.1\]: TLSv1\.2 with "
        r"cipher ECDHE-ECDSA-AES128-GCM-SHA256 \(128/128 bits\)")


def test_excluded_cipher_is_not_negotiated(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(
        certs, smtpd_tls_exclude_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"))
    c = greet(port)
    ehlo(c)
    ctx = client_ctx(certs, maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    assert c.cmd("STARTTLS")[0] == 220
    with pytest.raises((ssl.SSLError, ConnectionError)):
        ctx.wrap_socket(c.sock, server_hostname=HOST)
    assert petrel_instance.wait_log(r"SSL_accept error from \S+\[127\.0\.0\.1\]: .*"
                                    r"no shared cipher")


# --- wrapper mode ------------------------------------------------------------------------
@need_cleanup
def test_wrapper_mode(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(certs),
                                       smtpd_opts="-o smtpd_tls_wrappermode=yes")
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    c = Client.__new__(Client)
    c.buf = b""
    c.sock = client_ctx(certs).wrap_socket(raw, server_hostname=HOST)
    code, text = c.reply()
    assert code == 220, text
    lines = ehlo(c)
    assert "STARTTLS" not in lines
    assert c.cmd("STARTTLS") == (554, ["5.5.1 Error: TLS already active"])
    q = queued(petrel_instance, send_message(c, ["user@localhost"], BODY))
    assert " with ESMTPS id " in received_of(q["content"])
    c.cmd("QUIT")
    assert petrel_instance.wait_log(r"Anonymous TLS connection established from "
                                    r"\S+\[127\.0\.0\.1\]: TLSv1\.3")
    # A plaintext client gets no greeting.
    p = Client(port)
    p.send("EHLO plain.example\r\n")
    assert p.closed(timeout=10)
    assert not p.buf.startswith(b"220")
    assert petrel_instance.wait_log(r"SSL_accept error from \S+\[127\.0\.0\.1\]: ")
    assert petrel_instance.wait_log(r"lost connection after CONNECT from ")


# --- client certificates, milters, policy --------------------------------------------------
@need_cleanup
def test_client_certificate_trusted_and_untrusted(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(
        certs, smtpd_tls_ask_ccert="yes", smtpd_tls_CAfile=str(certs / "ca.pem"),
        smtpd_tls_received_header="yes", smtpd_tls_loglevel="2"))
    comments = {
        "client": '\t(Client CN "client.example.com", Issuer "Petrel Test CA" (verified OK))',
        "rogue": '\t(Client CN "rogue.example.com", Issuer "rogue.example.com" (not verified))',
        None: "\t(Client did not present a certificate)",
    }
    for cert, kind in (("client", "Trusted"), ("rogue", "Untrusted"), (None, "Anonymous")):
        c = greet(port)
        ehlo(c)
        starttls(c, client_ctx(certs, cert=cert))
        ehlo(c)
        q = queued(petrel_instance, send_message(c, ["user@localhost"], BODY))
        assert comments[cert] + "\n" in received_of(q["content"]), q["content"][:400]
        c.cmd("QUIT")
        assert petrel_instance.wait_log(r"%s TLS connection established from " % kind)
    assert petrel_instance.wait_log(r"setting up TLS connection from \S+\[127\.0\.0\.1\]")
    assert petrel_instance.wait_log(r"\S+\[127\.0\.0\.1\]: subject_CN=client\.example\.com, "
                                    r"issuer=Petrel Test CA")
    assert petrel_instance.wait_log(r"\S+\[127\.0\.0\.1\]: certificate verification failed: ")


def test_req_ccert_at_encrypt(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(
        certs, smtpd_tls_security_level="encrypt", smtpd_tls_req_ccert="yes",
        smtpd_tls_CAfile=str(certs / "ca.pem")))
    c = greet(port)
    ehlo(c)
    starttls(c, client_ctx(certs))
    assert c.cmd("EHLO client.example") == \
        (421, ["4.7.1 %s Error: No client certificate presented" % HOST])
    assert c.closed()
    assert petrel_instance.wait_log(r"NOQUEUE: abort: TLS from \S+\[127\.0\.0\.1\]: "
                                    r"No client certificate presented")
    c = greet(port)
    ehlo(c)
    starttls(c, client_ctx(certs, cert="client"))
    assert "PIPELINING" in ehlo(c)
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    c.cmd("QUIT")


def test_policy_server_sees_tls_attributes(petrel_instance, certs):
    from test_policy import PolicyServer
    pol = PolicyServer()
    try:
        port = petrel_instance.start_smtpd(main=tls_main(
            certs, smtpd_tls_ask_ccert="yes", smtpd_tls_CAfile=str(certs / "ca.pem"),
            smtpd_recipient_restrictions="check_policy_service inet:127.0.0.1:%d, "
                                         "permit_mynetworks, reject" % pol.port,
            mynetworks="127.0.0.0/8"))
        c = greet(port)
        ehlo(c)
        assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
        assert c.cmd("RCPT TO:<dunno@localhost>")[0] == 250
        starttls(c, client_ctx(certs, cert="client"))
        ehlo(c)
        assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
        assert c.cmd("RCPT TO:<dunno@localhost>")[0] == 250
        c.cmd("QUIT")
        assert wait_for(lambda: len(pol.requests) >= 2, timeout=5)
        plain, tls = pol.requests[0][1], pol.requests[1][1]
        assert plain["encryption_protocol"] == "" and plain["encryption_keysize"] == "0"
        assert plain["ccert_subject"] == ""
        assert tls["encryption_protocol"] == "TLSv1.3"
        assert tls["encryption_cipher"] == "TLS_AES_256_GCM_SHA384"
        assert tls["encryption_keysize"] == "256"
        assert tls["ccert_subject"] == "client.example.com"
        assert tls["ccert_issuer"] == "Petrel+20Test+20CA"
    finally:
        pol.close()


def test_milter_sees_tls_macros(petrel_instance, certs, tmp_path):
    pytest.importorskip("Milter")
    from test_milter import Filter
    names = ["{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}"]
    f = Filter(tmp_path, {"macros": names})
    try:
        port = petrel_instance.start_smtpd(main=tls_main(
            certs, smtpd_tls_ask_ccert="yes", smtpd_tls_CAfile=str(certs / "ca.pem"),
            smtpd_milters=f.spec, milter_command_timeout="5s"))
        c = greet(port)
        ehlo(c)
        assert c.cmd("MAIL FROM:<plain@example.com>")[0] == 250
        starttls(c, client_ctx(certs, cert="client"))
        ehlo(c)
        assert c.cmd("MAIL FROM:<tls@example.com>")[0] == 250
        c.cmd("QUIT")
        assert wait_for(lambda: len([e for e in f.events() if e[0] == "macros"]) >= 2, 5)
        plain, tls = [e[2] for e in f.events() if e[0] == "macros"][:2]
        assert plain == {n: None for n in names}
        assert tls == {"{tls_version}": "TLSv1.3", "{cipher}": "TLS_AES_256_GCM_SHA384",
                       "{cipher_bits}": "256", "{cert_subject}": "client.example.com",
                       "{cert_issuer}": "Petrel Test CA"}
    finally:
        f.stop()


def test_unknown_level_is_a_configuration_error(petrel_instance, certs):
    port = petrel_instance.start_smtpd(main=tls_main(certs),
                                       smtpd_opts="-o smtpd_tls_security_level=sometimes")
    c = Client(port)                    # the worker starts for it, and stops at once
    assert petrel_instance.wait_log(r'fatal: Invalid TLS level "sometimes"')
    assert c.buf == b""
    c.close()
