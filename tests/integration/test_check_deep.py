"""test_check_deep.py - "petrel check" beyond syntax: tables open, milter lists and
policy service endpoints parse as smtpd parses them, certificates load and match
their keys, and queue directories have the right owners.

Each problem must name the main.cf line that set the parameter; unbuilt Berkeley DB
tables are warnings (mail still flows once they are built), not errors.
"""
import os
import pwd
import subprocess

import pytest

from test_conf import PETREL, confdir, petrel  # noqa: F401  (confdir is a fixture)


def write_main(confdir, text):
    (confdir / "main.cf").write_text(text)


def test_unknown_table_type_names_line_and_types(confdir):
    write_main(confdir, "# x\n\nvirtual_alias_maps = hash:%s/a, nosuch:/x\n" % confdir)
    (confdir / "a").write_text("a b\n")
    subprocess.run([PETREL, "-c", str(confdir), "map", "build", "hash:%s/a" % confdir],
                   check=True, timeout=30)
    r = petrel(confdir, "check")
    assert r.returncode == 1
    assert "main.cf:3: parameter virtual_alias_maps: unsupported dictionary type \"nosuch\"" \
        in r.stderr
    assert "regexp" in r.stderr and "hash" in r.stderr


def test_bad_regexp_table_reports_table_file_line(confdir):
    (confdir / "checks").write_text("/ok/ REJECT\n/unclosed( REJECT\n")
    write_main(confdir, "header_checks = regexp:%s/checks\n" % confdir)
    r = petrel(confdir, "check")
    assert r.returncode == 1
    assert "main.cf:1: parameter header_checks: cannot open table regexp:" in r.stderr
    assert "checks:2" in r.stderr


def test_unbuilt_hash_table_is_a_warning(confdir):
    (confdir / "aliases").write_text("root: admin\n")
    write_main(confdir, "alias_maps = hash:%s/aliases\n" % confdir)
    r = petrel(confdir, "check")
    assert r.returncode == 0, r.stderr
    assert "main.cf:1: warning: parameter alias_maps: table hash:" in r.stderr
    assert "not built yet" in r.stderr


def test_policy_service_endpoint_is_not_a_table(confdir):
    write_main(confdir, "smtpd_recipient_restrictions = permit_mynetworks,\n"
                        "  check_policy_service inet:127.0.0.1:10023, reject_unauth_destination\n")
    r = petrel(confdir, "check")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("line, why", [
    ("check_policy_service tcp:127.0.0.1:10023",
     'check_policy_service tcp:127.0.0.1:10023: unsupported endpoint'),
    ("check_policy_service inet:127.0.0.1", "expected inet:host:port"),
    ("check_policy_service { inet:127.0.0.1:10023, timeout=soon }", 'bad timeout value "soon"'),
    ("check_policy_service { inet:127.0.0.1:10023, colour=red }",
     'unknown policy service setting "colour"'),
])
def test_bad_policy_service_endpoint(confdir, line, why):
    write_main(confdir, "smtpd_recipient_restrictions = permit_mynetworks,\n"
                        "  %s, reject_unauth_destination\n" % line)
    r = petrel(confdir, "check")
    assert r.returncode == 1, r.stderr
    assert "main.cf:1: parameter smtpd_recipient_restrictions: " in r.stderr, r.stderr
    assert why in r.stderr, r.stderr


def test_policy_service_in_a_restriction_class(confdir):
    write_main(confdir, "smtpd_restriction_classes = greylist\n"
                        "greylist = check_policy_service unix:\n"
                        "smtpd_recipient_restrictions = reject_unauth_destination\n")
    r = petrel(confdir, "check")
    assert r.returncode == 1, r.stderr
    assert "main.cf:2: parameter greylist: check_policy_service unix:: bad socket path" \
        in r.stderr, r.stderr


def test_good_milter_settings_pass(confdir):
    write_main(confdir, "smtpd_milters = inet:127.0.0.1:8891, { unix:/run/x.sock, "
                        "default_action=accept, command_timeout=5s }\n"
                        "non_smtpd_milters = $smtpd_milters\n"
                        "milter_macro_defaults = auth_type=none, { site = main office }\n")
    r = petrel(confdir, "check")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("text, where, why", [
    ("smtpd_milters = inet:127.0.0.1:8891, tcp:x:1\n", "main.cf:1: parameter smtpd_milters",
     'bad milter address "tcp:x:1"'),
    ("x = 1\nnon_smtpd_milters = { inet:127.0.0.1:8891, default_action=bounce }\n",
     "main.cf:2: parameter non_smtpd_milters", 'bad default_action "bounce"'),
    ("smtpd_milters = { inet:127.0.0.1:8891, protocol=7 }\n", "main.cf:1: parameter smtpd_milters",
     'bad protocol "7"'),
    ("smtpd_milters = { inet:127.0.0.1:8891\n", "main.cf:1: parameter smtpd_milters",
     "missing '}'"),
    ("milter_default_action = bounce\n", "main.cf:1: parameter milter_default_action",
     'bad value "bounce"'),
    ("milter_protocol = 9\n", "main.cf:1: parameter milter_protocol", "expected 2 to 6"),
    ("milter_macro_defaults = auth_type\n", "main.cf:1: parameter milter_macro_defaults",
     'expected name=value, got "auth_type"'),
])
def test_bad_milter_settings(confdir, text, where, why):
    write_main(confdir, text)
    r = petrel(confdir, "check")
    assert r.returncode == 1, r.stderr
    assert where in r.stderr and why in r.stderr, r.stderr


def test_master_cf_overrides_are_checked_like_main_cf(confdir):
    from test_conf import MASTER_CF
    (confdir / "master.cf").write_text(
        MASTER_CF + "127.0.0.1:2587 inet n - n - - smtpd\n"
        "  -o smtpd_milters=inet:127.0.0.1:8891,tcp:x:1\n"
        "  -o smtpd_client_restrictions=check_policy_service,unix:\n"
        "  -o header_checks=nosuch:/x\n")
    line = MASTER_CF.count("\n") + 1
    r = petrel(confdir, "check")
    assert r.returncode == 1, r.stderr
    where = "master.cf:%d: service 127.0.0.1:2587: parameter " % line
    assert where + 'smtpd_milters: bad milter list' in r.stderr, r.stderr
    assert where + "smtpd_client_restrictions: check_policy_service unix:: bad socket path" \
        in r.stderr, r.stderr
    assert where + 'header_checks: unsupported dictionary type "nosuch"' in r.stderr, r.stderr


def test_tls_settings_are_checked(confdir):
    write_main(confdir, "smtpd_tls_security_level = sometimes\n"
                        "smtp_tls_security_level = verify\n"
                        "smtp_tls_protocols = >=TLSv1.4\n"
                        "smtpd_tls_ciphers = strong\n")
    r = petrel(confdir, "check")
    assert r.returncode == 1, r.stderr
    assert 'main.cf:1: parameter smtpd_tls_security_level: unknown TLS security level ' \
        '"sometimes"' in r.stderr, r.stderr
    assert "smtp_tls_security_level" not in r.stderr
    assert 'main.cf:3: parameter smtp_tls_protocols: bad value ">=TLSv1.4"' in r.stderr
    assert 'main.cf:4: parameter smtpd_tls_ciphers: unknown cipher grade "strong"' in r.stderr


def make_cert(directory, name):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=%s" % name, "-keyout", str(directory / (name + ".key")),
                    "-out", str(directory / (name + ".crt"))],
                   check=True, capture_output=True, timeout=60)


def test_certificates_load_and_match(confdir):
    make_cert(confdir, "one")
    make_cert(confdir, "two")
    write_main(confdir, "smtpd_tls_cert_file = %s/one.crt\nsmtpd_tls_key_file = %s/one.key\n"
               % (confdir, confdir))
    assert petrel(confdir, "check").returncode == 0

    write_main(confdir, "smtpd_tls_cert_file = %s/one.crt\nsmtpd_tls_key_file = %s/two.key\n"
               % (confdir, confdir))
    r = petrel(confdir, "check")
    assert r.returncode == 1
    assert "main.cf:2: parameter smtpd_tls_key_file: private key" in r.stderr
    assert "does not match" in r.stderr

    write_main(confdir, "smtpd_tls_cert_file = %s/one.key\n" % confdir)
    r = petrel(confdir, "check")
    assert r.returncode == 1
    assert "main.cf:1: parameter smtpd_tls_cert_file:" in r.stderr
    assert "no usable PEM certificate" in r.stderr

    write_main(confdir, "smtp_tls_CAfile = %s/missing.pem\n" % confdir)
    r = petrel(confdir, "check")
    assert r.returncode == 1
    assert "main.cf:1: parameter smtp_tls_CAfile: cannot open" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="directory ownership is checked only as root")
def test_queue_directory_owner_is_checked(confdir, tmp_path):
    from petrel_instance import ensure_mail_users
    ensure_mail_users()
    queue = tmp_path / "queue"
    (queue / "incoming").mkdir(parents=True)
    (queue / "active").mkdir()
    owner = pwd.getpwnam("petrel")
    os.chown(queue / "active", owner.pw_uid, owner.pw_gid)
    write_main(confdir, "queue_directory = %s\n" % queue)
    r = petrel(confdir, "check")
    assert r.returncode == 1
    assert "parameter queue_directory: %s/incoming: owned by uid 0, expected petrel" % queue \
        in r.stderr
    assert "/active" not in r.stderr

    write_main(confdir, "queue_directory = %s\nmail_owner = nosuchuser\n" % queue)
    r = petrel(confdir, "check")
    assert r.returncode == 1
    assert "main.cf:2: parameter mail_owner: user \"nosuchuser\" does not exist" in r.stderr
