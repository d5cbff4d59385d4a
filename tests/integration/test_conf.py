"""test_conf.py - "petrel conf" and "petrel check" as an administrator runs them.

Each test gets its own configuration directory (petrel -c DIR) holding main.cf
and master.cf; nothing is started.
"""
import os
import re
import subprocess

import pytest

BUILD = os.environ.get("PETREL_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.environ.get("PETREL_SRC_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PETREL = os.path.join(BUILD, "cmd", "petrel")

MASTER_CF = """smtp inet n - n - - smtpd
relay unix - - n - - smtp
submission inet n - n - - smtpd
  -o smtpd_client_restrictions=$mua_client_restrictions
"""


def petrel(confdir, *args):
    return subprocess.run([PETREL, "-c", str(confdir)] + list(args), capture_output=True,
                          text=True, timeout=30)


@pytest.fixture
def confdir(tmp_path):
    (tmp_path / "master.cf").write_text(MASTER_CF)
    (tmp_path / "main.cf").write_text("")
    return tmp_path


def test_conf_n_prints_only_settings_sorted(confdir):
    (confdir / "main.cf").write_text("# site\nmyorigin = example.com\nmessage_size_limit = 0\n"
                                     "mua_client_restrictions = permit_sasl_authenticated, reject\n")
    r = petrel(confdir, "conf", "-n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("message_size_limit = 0\nmua_client_restrictions = "
                        "permit_sasl_authenticated, reject\nmyorigin = example.com\n")


def test_conf_d_prints_postfix_defaults(confdir):
    (confdir / "main.cf").write_text("message_size_limit = 5\n")
    r = petrel(confdir, "conf", "-d")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == sorted(lines)
    for want in ("message_size_limit = 10240000",
                 "mydestination = $myhostname, localhost.$mydomain, localhost",
                 "myorigin = $myhostname", "smtpd_banner = $myhostname ESMTP $mail_name",
                 "maximal_queue_lifetime = 5d", "relayhost =",
                 "config_directory = %s" % confdir):
        assert want in lines
    assert len(lines) > 300


def test_conf_names_and_expansion(confdir):
    (confdir / "main.cf").write_text("myhostname = mail.example.org\n")
    r = petrel(confdir, "conf", "mydomain", "smtpd_banner")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "mydomain = example.org\nsmtpd_banner = $myhostname ESMTP $mail_name\n"
    r = petrel(confdir, "conf", "-x", "smtpd_banner")
    assert r.stdout == "smtpd_banner = mail.example.org ESMTP Petrel\n"
    r = petrel(confdir, "conf", "-h", "-x", "mydestination")
    assert r.stdout == "mail.example.org, localhost.example.org, localhost\n"
    r = petrel(confdir, "conf", "relay_destination_recipient_limit")
    assert r.stdout == "relay_destination_recipient_limit = $default_destination_recipient_limit\n"


def test_conf_unknown_name(confdir):
    r = petrel(confdir, "conf", "mesage_size_limit")
    assert r.returncode == 1
    assert r.stdout == ""
    assert ('petrel/conf: warning: mesage_size_limit: unknown parameter; '
            'did you mean "message_size_limit"?') in r.stderr


def test_conf_e_keeps_comments_and_order(confdir):
    main = confdir / "main.cf"
    main.write_text("# top comment\nmyorigin = old\n  # note\n   still.old\n\n"
                    "# about relayhost\nrelayhost = [a]\n")
    r = petrel(confdir, "conf", "-e", "myorigin=new.example", "message_size_limit = 20000000",
               "relayhost=[b]:587")
    assert r.returncode == 0, r.stderr
    assert main.read_text() == ("# top comment\nmyorigin = new.example\n  # note\n\n"
                                "# about relayhost\nrelayhost = [b]:587\n"
                                "message_size_limit = 20000000\n")
    assert not [f for f in os.listdir(confdir) if f.startswith(".main.cf")]
    r = petrel(confdir, "conf", "-X", "relayhost")
    assert r.returncode == 0
    assert "relayhost =" not in main.read_text()
    assert "# about relayhost" in main.read_text()


def test_conf_e_refuses_unknown_and_bad_values(confdir):
    main = confdir / "main.cf"
    main.write_text("myorigin = x\n")
    r = petrel(confdir, "conf", "-e", "mesage_size_limit=5")
    assert r.returncode == 1
    assert 'did you mean "message_size_limit"' in r.stderr
    r = petrel(confdir, "conf", "-e", "message_size_limit=lots")
    assert r.returncode == 1
    assert 'bad numerical value "lots" for parameter message_size_limit' in r.stderr
    assert main.read_text() == "myorigin = x\n"
    # A helper defined together with its user, and a master.cf service pattern.
    r = petrel(confdir, "conf", "-e", "helper=a", "myorigin=$helper",
               "relay_destination_recipient_limit=3")
    assert r.returncode == 0, r.stderr
    assert petrel(confdir, "check").returncode == 0


def test_check_clean_exits_zero(confdir):
    default_main = os.path.join(SRC, "conf", "main.cf")
    (confdir / "main.cf").write_text(open(default_main).read())
    r = petrel(confdir, "check")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_check_reports_every_error_with_file_and_line(confdir):
    (confdir / "main.cf").write_text("# c\nmyorigin = $nothing\nmesage_size_limit = 1\n"
                                     "message_size_limit =\n  abc\na = $b\nb = $a\n"
                                     "no equals sign\n")
    (confdir / "master.cf").write_text(MASTER_CF + "bad tcp n - n - - smtpd\n"
                                       "x unix - - n - - smtpd -o smtpd_timout=1\n")
    r = petrel(confdir, "check")
    assert r.returncode == 1
    main, master = str(confdir / "main.cf"), str(confdir / "master.cf")
    lines = r.stderr.splitlines()
    expect = [
        main + ':3: unknown parameter "mesage_size_limit"; did you mean "message_size_limit"?',
        main + ':4: bad numerical value "abc" for parameter message_size_limit',
        main + ':8: missing \'=\' after parameter name',
        main + ':6: parameter a: loop in $name expansion',
        main + ':2: warning: parameter myorigin: undefined $nothing',
        master + ':5: bad service type "tcp"',
        master + ':6: service x: unknown parameter "smtpd_timout" in -o; did you mean "smtpd_timeout"?',
    ]
    for want in expect:
        assert any(line.startswith("petrel: " + want) for line in lines), (want, lines)
    assert all(line.startswith("petrel: ") for line in lines)


def test_start_refuses_bad_main_cf_with_location(confdir):
    """config_load() is what daemons use; petrel conf -x shares it but only warns."""
    (confdir / "main.cf").write_text("smtpd_timeout = soon\n")
    r = petrel(confdir, "conf", "-x", "smtpd_timeout")
    assert re.search(r"main\.cf:1: bad time value \"soon\" for parameter smtpd_timeout", r.stderr)


def test_man_page_lists_every_parameter(confdir):
    r = petrel(confdir, "conf", "-l")
    assert r.returncode == 0
    names = [line.split("\t")[0] for line in r.stdout.splitlines()]
    assert len(names) > 300 and "*_destination_concurrency_limit" in names
    page = open(os.path.join(SRC, "man", "main.cf.5")).read().replace("\\-", "-")
    listed = set(re.findall(r"^\.B (\S+)$", page, re.M))
    missing = [n for n in names if n not in listed]
    assert not missing, missing

    # The documented default of each parameter is the registry's.
    documented = {}
    for name, default in re.findall(r"^\.B (\S+)\n\([^)]*\) Default: \\fB(.*)\\fR$", page, re.M):
        documented[name] = default.replace("\\e", "\\")
    wrong = []
    for line in r.stdout.splitlines():
        name, _type, default = line.split("\t")[:3]
        want = default if default else "(empty)"
        got = documented.get(name, "")
        if default == "(computed)":
            ok = got.startswith("(computed")
        else:
            ok = got == want
        if not ok:
            wrong.append((name, want, got))
    assert not wrong, wrong
