"""test_master.py - master, the daemon skeleton and petrel start/stop/status/reload.

Runs a private instance with the "echo" test worker (tests/helpers/echo.c) on a
loopback port and checks what an administrator would see: exit codes, messages,
log lines, processes and their credentials. Every wait is bounded.
"""
import os
import pwd
import signal
import socket
import subprocess
import threading
import time

import pytest

from petrel_instance import ask, free_port, wait_for, MAIL_OWNER


def echo_line(port, args="", chroot="n", maxproc="-"):
    return "127.0.0.1:%d inet n - %s - %s echo %s\n" % (port, chroot, maxproc, args)


@pytest.fixture
def echo(petrel_instance):
    port = free_port()
    petrel_instance.write_master_cf(echo_line(port))
    petrel_instance.port = port
    return petrel_instance


def test_start_status_stop(echo):
    r = echo.petrel("status")
    assert r.returncode == 1
    assert "not running" in r.stderr
    echo.start()
    pid = echo.master_pid()
    assert pid
    r = echo.petrel("status")
    assert r.returncode == 0
    assert "petrel/petrel: the Petrel mail system is running: PID: %d" % pid in r.stderr
    assert echo.wait_log(r"daemon started -- version \S+, configuration " + echo.config_dir)
    assert ask(echo.port, "hello") == "hello"
    r = echo.stop()
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10)
    assert echo.petrel("status").returncode == 1
    assert not os.path.exists(os.path.join(echo.queue_dir, "pid", "master.pid"))
    assert echo.wait_log(r"terminating on signal 15")


def test_queue_tree_created(echo):
    echo.start()
    for d in ("incoming", "active", "deferred", "hold", "corrupt", "maildrop",
              "private", "public", "bounce", "defer", "trace", "pid"):
        assert os.path.isdir(os.path.join(echo.queue_dir, d)), d
    mode = os.stat(os.path.join(echo.queue_dir, "maildrop")).st_mode & 0o7777
    assert mode == 0o1730
    assert os.stat(os.path.join(echo.queue_dir, "private")).st_mode & 0o777 == 0o700
    assert os.stat(os.path.join(echo.queue_dir, "public")).st_mode & 0o777 == 0o710
    if os.geteuid() == 0:
        owner = pwd.getpwnam(MAIL_OWNER).pw_uid
        assert os.stat(os.path.join(echo.queue_dir, "incoming")).st_uid == owner


def test_double_start_refused(echo):
    echo.start()
    pid = echo.master_pid()
    r = echo.petrel("start")
    assert r.returncode == 1
    assert "already running" in r.stderr
    # The master itself refuses too, even when started behind petrel's back.
    r = subprocess.run([os.path.join(echo.libexec, "master"), "-c", echo.config_dir],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "already running" in r.stderr
    assert echo.master_pid() == pid


def test_many_connections_get_served(echo):
    echo.start()
    results = []

    def client(i):
        results.append(ask(echo.port, "line %d" % i, timeout=10))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == sorted("line %d" % i for i in range(10))


def test_reload_keeps_listening_socket(echo):
    echo.start()
    assert ask(echo.port, "before") == "before"
    errors, answers = [], []
    stop = threading.Event()

    def hammer():
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                answers.append(ask(echo.port, "x", timeout=10))
            except OSError as e:
                errors.append(repr(e))

    t = threading.Thread(target=hammer)
    t.start()
    try:
        for _ in range(3):
            r = echo.reload()
            assert r.returncode == 0, r.stderr
            time.sleep(0.3)
    finally:
        stop.set()
        t.join(30)
    assert errors == []
    assert answers and all(a == "x" for a in answers)
    assert echo.wait_log(r"reload -- version")
    assert ask(echo.port, "after") == "after"


def test_reload_adds_and_removes_services(echo):
    echo.start()
    port2 = free_port()
    echo.write_master_cf(echo_line(port2))
    assert echo.reload().returncode == 0
    assert wait_for(lambda: _answers(port2), 10)
    assert wait_for(lambda: not _accepts(echo.port), 10)


def _answers(port):
    try:
        return ask(port, "ping", timeout=3) == "ping"
    except OSError:
        return False


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def test_worker_killed_is_restarted(echo):
    echo.start()
    pid = int(ask(echo.port, "PID"))
    os.kill(pid, signal.SIGKILL)
    assert echo.wait_log(r"warning: process \S+/echo pid %d killed by signal 9" % pid)
    assert ask(echo.port, "again") == "again"
    new = int(ask(echo.port, "PID"))
    assert new != pid


def test_crashing_worker_is_throttled(petrel_instance):
    inst = petrel_instance
    port = free_port()
    inst.write_main_cf({"service_throttle_time": "2s"})
    inst.write_master_cf(echo_line(port, args="crash"))
    inst.start()
    # Keep clients waiting so master has demand all the time.
    socks = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        except OSError:
            pass
        time.sleep(0.5)
    for s in socks:
        s.close()
    starts = inst.log().count("told to crash on start")
    assert inst.log().count("bad command startup -- throttling") >= 1
    # Throttled for 2 s after each crash: at most ~6 starts in 10 s, never a spin.
    assert 1 <= starts <= 8, starts
    assert inst.master_pid()


def test_bad_main_cf_refused_with_file_and_line(petrel_instance):
    inst = petrel_instance
    inst.write_master_cf(echo_line(free_port()))
    inst.write_main_cf(raw="this line is not a parameter\n")
    r = inst.petrel("start")
    assert r.returncode == 1
    assert "main.cf:" in r.stderr
    lines = len(inst.base_params()) + 1
    assert "main.cf:%d" % lines in r.stderr
    assert inst.master_pid() is None


def test_bad_master_cf_refused_with_file_and_line(petrel_instance):
    inst = petrel_instance
    inst.write_master_cf("# comment\n127.0.0.1:%d bogus n - n - - echo\n" % free_port())
    r = inst.petrel("start")
    assert r.returncode == 1
    assert "master.cf:2" in r.stderr
    assert inst.master_pid() is None


def test_flush_without_qmgr_is_an_error(echo):
    echo.start()
    r = echo.petrel("flush")
    assert r.returncode == 1
    assert "qmgr" in r.stderr


def test_abort_kills_workers(echo):
    echo.start()
    worker = int(ask(echo.port, "PID"))
    r = echo.petrel("abort")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: not os.path.exists("/proc/%d" % worker), 10)
    assert echo.master_pid() is None


def _status_ids(pid):
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid"):
                ids[k] = [int(x) for x in v.split()]
    return ids


@pytest.mark.skipif(os.geteuid() != 0, reason="privilege drop and chroot need root")
def test_worker_runs_as_mail_owner_in_chroot(petrel_instance):
    inst = petrel_instance
    port = free_port()
    inst.write_master_cf(echo_line(port, chroot="y"))
    inst.start()
    pid = int(ask(port, "PID"))
    pw = pwd.getpwnam(MAIL_OWNER)
    ids = _status_ids(pid)
    assert ids["Uid"] == [pw.pw_uid] * 4
    assert ids["Gid"] == [pw.pw_gid] * 4
    assert os.readlink("/proc/%d/root" % pid) == os.path.realpath(inst.queue_dir)
    master_ids = _status_ids(inst.master_pid())
    assert master_ids["Uid"][0] == 0


def test_no_zombies_and_fds_not_leaked(echo):
    echo.start()
    pid = int(ask(echo.port, "PID"))
    fds = sorted(int(x) for x in os.listdir("/proc/%d/fd" % pid))
    # stdin/out/err, the status pipe, the listen socket, the log file; nothing else
    # of master's (epoll, signalfd, pid file) may reach a worker.
    targets = [os.readlink("/proc/%d/fd/%d" % (pid, fd)) for fd in fds]
    assert not any("anon_inode" in t for t in targets), targets
    assert not any(t.endswith("master.pid") for t in targets), targets
    os.kill(pid, signal.SIGKILL)
    assert echo.wait_log(r"pid %d killed by signal 9" % pid)
    mpid = echo.master_pid()

    def zombies():
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open("/proc/%s/stat" % entry) as f:
                        st = f.read()
                except OSError:
                    continue
                fields = st[st.rindex(")") + 2:].split()
                if fields[0] == "Z" and int(fields[1]) == mpid:
                    out.append(entry)
        return out
    assert wait_for(lambda: zombies() == [], 5)


def test_json_log_lines_parse(echo):
    import json
    echo.main_cf["maillog_format"] = "json"
    echo.write_main_cf()
    echo.start()
    ask(echo.port, "hi")
    pid = echo.master_pid()
    echo.stop()
    records = [json.loads(line) for line in echo.log().splitlines() if line.strip()]
    started = [r for r in records if r["message"].startswith("daemon started")]
    assert started and started[0]["program"] == "petrel/master"
    assert started[0]["pid"] == str(pid) and started[0]["severity"] == "info"
    assert any(r["message"] == "terminating on signal 15" for r in records)
    for r in records:
        assert set(("time", "host", "program", "pid", "severity", "message")) <= set(r)
