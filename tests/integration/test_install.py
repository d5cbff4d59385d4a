"""test_install.py - ./configure && make && make install as a new user would run them.

An ordinary user builds into a prefix of their own, installs without any ownership
changes, and runs that installation in unprivileged mode; as root, make install
creates the mail_owner user and setgid_group group. Both need the source tree and a
root test runner (to act as an ordinary user); otherwise they are skipped.
"""
import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile

import pytest

from petrel_instance import free_port, wait_for

SRC = os.environ.get("PETREL_SRC_DIR")
BUILD = os.environ.get("PETREL_BUILD_DIR")
ORDINARY_USER = "nobody"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root")


def _asan_build():
    try:
        with open(os.path.join(BUILD or "", "config.status")) as f:
            return "--enable-asan" in f.read()
    except OSError:
        return False


# These tests build the tree from source without sanitizers, whatever build runs
# the suite: under the sanitizer build they would only repeat the plain run.
pytestmark = pytest.mark.skipif(_asan_build(), reason="same plain build as the non-ASan run")


def as_user(cmd, cwd, timeout):
    return subprocess.run(["runuser", "-u", ORDINARY_USER, "--", "sh", "-c", cmd], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def user_home():
    home = tempfile.mkdtemp(prefix="petrel-user-")
    pw = pwd.getpwnam(ORDINARY_USER)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    try:
        yield home
    finally:
        subprocess.run(["pkill", "-KILL", "-u", ORDINARY_USER, "-f", home], timeout=10)
        shutil.rmtree(home, ignore_errors=True)


def smtp_greeting(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.settimeout(5)
            return c.recv(512)
    except OSError:
        return None


@needs_root
def test_ordinary_user_builds_installs_and_runs(user_home):
    prefix = os.path.join(user_home, "petrel")
    build = os.path.join(user_home, "build")
    os.mkdir(build)
    os.chown(build, pwd.getpwnam(ORDINARY_USER).pw_uid, -1)
    r = as_user("%s/configure -q --prefix=%s && make -s -j2 && make -s install"
                % (SRC, prefix), cwd=build, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr

    for path in ("sbin/petrel", "sbin/sendmail", "sbin/petrel-drop", "bin/mailq",
                 "bin/newaliases", "libexec/petrel/master", "libexec/petrel/smtpd",
                 "libexec/petrel/cleanup", "libexec/petrel/pickup", "etc/petrel/main.cf",
                 "etc/petrel/master.cf", "share/man/man1/petrel.1", "share/man/man8/master.8",
                 "share/man/man5/main.cf.5", "share/man/man5/master.cf.5"):
        assert os.path.exists(os.path.join(prefix, path)), path
    st = os.stat(os.path.join(prefix, "sbin/petrel"))
    assert st.st_uid == pwd.getpwnam(ORDINARY_USER).pw_uid

    # The configured prefix is compiled in: no -c needed to find the configuration.
    petrel = os.path.join(prefix, "sbin/petrel")
    r = as_user("%s conf -h queue_directory config_directory" % petrel, cwd=user_home,
                timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [prefix + "/var/spool/petrel", prefix + "/etc/petrel"]

    with open(os.path.join(prefix, "etc/petrel/main.cf"), "a") as f:
        f.write("maillog_file = %s/maillog\n" % user_home)
    # An ordinary user cannot bind port 25: the stock services move to loopback ports,
    # as the sandbox does.
    smtp_port, submission_port = free_port(), free_port()
    master_cf = os.path.join(prefix, "etc/petrel/master.cf")
    with open(master_cf) as f:
        text = f.read()
    text = re.sub(r"(?m)^smtp(\s+inet)", r"127.0.0.1:%d\1" % smtp_port, text)
    text = re.sub(r"(?m)^submission(\s+inet)", r"127.0.0.1:%d\1" % submission_port, text)
    with open(master_cf, "w") as f:
        f.write(text)
    r = as_user("%s check && %s start" % (petrel, petrel), cwd=user_home, timeout=60)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert as_user("%s status" % petrel, cwd=user_home, timeout=30).returncode == 0
        greeting = wait_for(lambda: smtp_greeting(smtp_port), timeout=10)
        assert greeting and greeting.startswith(b"220 "), greeting
        log = os.path.join(user_home, "maillog")
        assert wait_for(lambda: os.path.exists(log) and "unprivileged" in open(log).read())
        queue = os.path.join(prefix, "var/spool/petrel")
        assert os.stat(queue).st_uid == pwd.getpwnam(ORDINARY_USER).pw_uid
    finally:
        r = as_user("%s stop" % petrel, cwd=user_home, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert as_user("%s status" % petrel, cwd=user_home, timeout=30).returncode != 0


@needs_root
def test_root_install_creates_mail_users(tmp_path):
    r = subprocess.run(["make", "-s", "install", "prefix=%s" % tmp_path], cwd=BUILD,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.exists(tmp_path / "sbin/petrel")
    owner = pwd.getpwnam("petrel")
    assert grp.getgrgid(owner.pw_gid).gr_name == "petrel"
    grp.getgrnam("petreldrop")
