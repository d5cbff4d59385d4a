"""test_sendmail.py - local submission: sendmail (with mailq and newaliases),
petrel-drop and pickup.

What a user can observe: sendmail's exit status and messages, the file that
petrel-drop leaves in maildrop/ (owner, mode, envelope, content bytes), the
queue file pickup and cleanup make in incoming/, log lines, mailq's listing,
the alias table newaliases builds. Submissions as an ordinary user go through
a set-gid copy of petrel-drop made in the test's directory.
"""
import os
import pwd
import grp
import re
import shutil
import stat
import struct
import subprocess

import pytest

from petrel_instance import SETGID_GROUP, build_dir, wait_for

RUNUSER = shutil.which("runuser", path="/usr/sbin:/usr/bin:/sbin:/bin") or "runuser"

# The stock wakeup of 60 s: a submission made while the system was stopped is
# collected by master's first wake-up at start, running ones by petrel-drop's poke.
PICKUP_CLEANUP_CF = (
    "pickup    unix  n       -       n       60      1       pickup\n"
    "cleanup   unix  n       -       n       -       0       cleanup\n"
)


# --- reading queue files (docs/queue-file.md) --------------------------------
def parse_qfile(path):
    """Returns {'sender', 'rcpts', 'attrs', 'notify', 'content', 'time', 'flags'}."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"PQF1", path
    assert data[4:5] == b"S"
    off_content, len_content, nrcpt, flags = struct.unpack(">QQII", data[9:33])
    pos = 33
    out = {"sender": None, "rcpts": [], "attrs": {}, "notify": [], "content": None,
           "time": None, "flags": flags, "done": []}
    notify = None
    while True:
        t = data[pos:pos + 1]
        if t == b"M":
            (n,) = struct.unpack(">Q", data[pos + 1:pos + 9])
            out["content"] = data[pos + 9:pos + 9 + n]
            pos += 9 + n
            continue
        (n,) = struct.unpack(">I", data[pos + 1:pos + 5])
        payload = data[pos + 5:pos + 5 + n].decode("utf-8", "replace")
        pos += 5 + n
        if t == b"E":
            assert pos == len(data)
            break
        if t == b"F":
            out["sender"] = payload
        elif t == b"T":
            out["time"] = payload
        elif t == b"A":
            k, _, v = payload.partition("=")
            out["attrs"][k] = v
        elif t == b"N":
            notify = int(payload)
        elif t == b"R":
            out["rcpts"].append(payload)
            out["notify"].append(notify)
            notify = None
        elif t == b"D":
            out["done"].append(payload)
    assert len(out["rcpts"]) + len(out["done"]) == nrcpt
    assert len(out["content"]) == len_content
    return out


def queue_files(queue_dir, queue):
    """Paths of the queue files in a queue, bucket directories included."""
    found = []
    top = os.path.join(queue_dir, queue)
    for root, _dirs, files in os.walk(top):
        for name in files:
            if not name.startswith("."):
                found.append(os.path.join(root, name))
    return sorted(found)


# --- fixtures ----------------------------------------------------------------
def program(*parts):
    path = os.path.join(build_dir(), *parts)
    if not os.access(path, os.X_OK):
        pytest.skip("%s is not built" % "/".join(parts))
    return path


@pytest.fixture
def inst(petrel_instance):
    """An instance whose queue tree exists (started once and stopped again)."""
    program("sendmail", "sendmail")
    petrel_instance.write_master_cf(PICKUP_CLEANUP_CF)
    bindir = os.path.join(petrel_instance.base, "bin")
    os.makedirs(bindir, exist_ok=True)
    os.chmod(bindir, 0o755)
    os.symlink(petrel_instance.petrel_bin, os.path.join(bindir, "petrel"))
    petrel_instance.main_cf.update({"myhostname": "mail.example.test",
                                    "mydomain": "example.test",
                                    "myorigin": "example.test",
                                    "mydestination": "localhost, $myhostname",
                                    "command_directory": bindir})
    petrel_instance.write_main_cf()
    petrel_instance.start()
    petrel_instance.stop()
    assert wait_for(lambda: petrel_instance.master_pid() is None, timeout=20)
    return petrel_instance


@pytest.fixture
def drop_copy(inst):
    """A set-gid setgid_group copy of petrel-drop that any user may run."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a set-gid program")
    path = os.path.join(inst.base, "bin", "petrel-drop")
    shutil.copy(program("drop", "petrel-drop"), path)
    os.chown(path, 0, grp.getgrnam(SETGID_GROUP).gr_gid)
    os.chmod(path, 0o2755)
    return path


def sendmail(inst, args, data=b"", user=None, drop=None, argv0=None, timeout=60):
    """Runs sendmail (as user when given) with the instance's configuration."""
    exe = program("sendmail", "sendmail")
    if argv0:
        link = os.path.join(inst.base, "bin", argv0)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.lexists(link):
            os.symlink(exe, link)
        exe = link
    env = {"PATH": "/usr/bin:/bin", "PETREL_CONFIG_DIR": inst.config_dir}
    env["PETREL_DROP"] = drop or program("drop", "petrel-drop")
    cmd = [exe] + list(args)
    if user:
        cmd = [RUNUSER, "-u", user, "--", "env"] + ["%s=%s" % kv for kv in env.items()] + cmd
    return subprocess.run(cmd, input=data, capture_output=True, env=env, timeout=timeout)


def maildrop(inst):
    return queue_files(inst.queue_dir, "maildrop")


MSG = b"Subject: test\r\nTo: bob@example.test\r\n\r\nline one\r\n.hidden dot\r\nlast\r\n"


# --- petrel-drop and the stream, with the mail system stopped -----------------
def test_submission_while_stopped_is_picked_up_after_start(inst, drop_copy):
    r = sendmail(inst, ["-f", "alice@example.test", "bob@example.test"], MSG,
                 user="nobody", drop=drop_copy)
    assert r.returncode == 0, r.stderr
    files = maildrop(inst)
    assert len(files) == 1
    st = os.stat(files[0])
    assert st.st_uid == pwd.getpwnam("nobody").pw_uid
    assert stat.S_IMODE(st.st_mode) == 0o444
    q = parse_qfile(files[0])
    assert q["sender"] == "alice@example.test"
    assert q["rcpts"] == ["bob@example.test"]
    # CRLF became LF; nothing was added to the headers.
    assert q["content"] == b"Subject: test\nTo: bob@example.test\n\nline one\n.hidden dot\nlast\n"

    program("pickup", "pickup")
    program("cleanup", "cleanup")
    inst.start()
    assert wait_for(lambda: not maildrop(inst), timeout=10), inst.log()
    assert inst.wait_log(r"uid=%d from=<alice@example.test>" % st.st_uid), inst.log()
    incoming = wait_for(lambda: queue_files(inst.queue_dir, "incoming")
                        + queue_files(inst.queue_dir, "active"), timeout=10)
    assert len(incoming) == 1, inst.log()
    q = parse_qfile(incoming[0])
    assert q["sender"] == "alice@example.test"
    assert q["rcpts"] == ["bob@example.test"]
    assert q["attrs"].get("submit_uid") == str(st.st_uid)
    assert b"line one\n.hidden dot\nlast\n" in q["content"]


def test_lone_dot_ends_input_unless_i(inst):
    body = b"Subject: dots\n\nbefore\n.\nafter\n"
    assert sendmail(inst, ["bob@example.test"], body).returncode == 0
    assert sendmail(inst, ["-i", "bob@example.test"], body).returncode == 0
    assert sendmail(inst, ["-oi", "bob@example.test"], body).returncode == 0
    contents = sorted(parse_qfile(p)["content"] for p in maildrop(inst))
    assert contents == sorted([b"Subject: dots\n\nbefore\n",
                               b"Subject: dots\n\nbefore\n.\nafter\n",
                               b"Subject: dots\n\nbefore\n.\nafter\n"])


def test_long_lines_and_crlf_at_every_split(inst):
    head = b"Subject: long\r\n\r\n"
    long_line = b"a" * (131071 - len(head))
    msg = head + long_line + b"\r\n" + b"b" * 70000 + b"\rx\r\nend\r\n.\r\nnot this\r\n"
    r = sendmail(inst, ["Bob Example <bob@example.test>"], msg)
    assert r.returncode == 0, r.stderr
    (path,) = maildrop(inst)
    q = parse_qfile(path)
    assert q["rcpts"] == ["bob@example.test"]
    assert q["content"] == (b"Subject: long\n\n" + long_line + b"\n" + b"b" * 70000
                            + b"\rx\nend\n")


def test_stream_envelope_options(inst):
    r = sendmail(inst, ["-F", "Alice Example", "-f", "<alice@example.test>", "-N",
                        "success,failure", "-R", "hdrs", "-V", "env-42", "-B", "8BITMIME",
                        "-oem", "-O", "x=y", "-v", "bob@example.test, carol@example.test",
                        "dave@example.test"],
                 b"From nobody Mon Jan  1 00:00:00 2024\nSubject: x\n\n\xe9t\xe9\n")
    assert r.returncode == 0, r.stderr
    assert b"queued as" in r.stderr
    (path,) = maildrop(inst)
    q = parse_qfile(path)
    assert q["sender"] == "alice@example.test"
    assert q["rcpts"] == ["bob@example.test", "carol@example.test", "dave@example.test"]
    assert q["notify"] == [6, 6, 6]
    assert q["attrs"]["full_name"] == "Alice Example"
    assert q["attrs"]["dsn_ret"] == "HDRS"
    assert q["attrs"]["dsn_envid"] == "env-42"
    assert q["flags"] & 1
    # The UNIX From_ line is not part of the message.
    assert q["content"] == b"Subject: x\n\n\xe9t\xe9\n"
    assert re.fullmatch(r"\d+\.\d{6}", q["time"])


def test_default_sender_is_login_name(inst, drop_copy):
    r = sendmail(inst, ["bob@example.test"], b"Subject: x\n\nx\n", user="nobody",
                 drop=drop_copy)
    assert r.returncode == 0, r.stderr
    (path,) = maildrop(inst)
    assert parse_qfile(path)["sender"] == "nobody"


def test_message_size_limit(inst):
    inst.write_main_cf({"message_size_limit": "1000"})
    r = sendmail(inst, ["bob@example.test"], b"Subject: big\n\n" + (b"x" * 99 + b"\n") * 20)
    assert r.returncode == 65
    assert b"message_size_limit" in r.stderr
    assert maildrop(inst) == []
    r = sendmail(inst, ["bob@example.test"], b"Subject: small\n\nok\n")
    assert r.returncode == 0, r.stderr


def test_usage_errors(inst):
    for args in (["-Z", "bob@example.test"], ["-N", "sometimes", "bob"], ["-bz"],
                 ["-R", "all", "bob"], ["-B", "BINARY", "bob"], []):
        r = sendmail(inst, args, b"x\n")
        assert r.returncode == 64, (args, r.stderr)
        assert b"sendmail: fatal:" in r.stderr and b"usage:" in r.stderr
    assert maildrop(inst) == []


def test_bad_config_dir_for_setgid_drop(inst, drop_copy, tmp_path):
    """A user cannot point the set-gid helper at a configuration of their own."""
    own = tmp_path / "own"
    own.mkdir()
    shutil.copy(os.path.join(inst.config_dir, "main.cf"), own / "main.cf")
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(own, nobody, -1)
    os.chown(own / "main.cf", nobody, -1)
    os.chmod(tmp_path, 0o755)
    exe = program("sendmail", "sendmail")
    r = subprocess.run([RUNUSER, "-u", "nobody", "--", "env", "PETREL_DROP=" + drop_copy,
                        exe, "-c", str(own), "bob"],
                       input=b"x\n", capture_output=True, timeout=60)
    assert r.returncode == 77, r.stderr
    assert b"must belong to root" in r.stderr
    assert maildrop(inst) == []


def test_corrupt_maildrop_file_goes_to_corrupt(inst):
    program("pickup", "pickup")
    program("cleanup", "cleanup")
    # A name like a queue ID, ready mode, content that is not a queue file.
    good = sendmail(inst, ["bob@example.test"], b"Subject: ok\n\nok\n")
    assert good.returncode == 0
    (path,) = maildrop(inst)
    name = os.path.basename(path)
    bad = os.path.join(inst.queue_dir, "maildrop", name[:-1] + ("b" if name[-1] != "b" else "c"))
    with open(bad, "wb") as f:
        f.write(b"PQF1garbage that is not a queue file")
    os.chmod(bad, 0o444)
    inst.start()
    moved = os.path.join(inst.queue_dir, "corrupt", os.path.basename(bad))
    assert wait_for(lambda: os.path.exists(moved), timeout=20), inst.log()
    assert inst.wait_log(r"warning: maildrop/%s: .*moved to corrupt/" % os.path.basename(bad))
    # The good file next to it still went through.
    assert wait_for(lambda: not maildrop(inst), timeout=20), inst.log()
    with open(moved, "rb") as f:
        assert f.read() == b"PQF1garbage that is not a queue file"


def test_sendmail_t_extracts_recipients(inst):
    program("pickup", "pickup")
    program("cleanup", "cleanup")
    msg = (b"From: alice@example.test\nTo: Bob <bob@example.test>\n"
           b"Cc: carol@example.test\nBcc: dave@example.test\nSubject: t\n\nbody\n.\nmore\n")
    r = sendmail(inst, ["-t", "-i"], msg)
    assert r.returncode == 0, r.stderr
    (path,) = maildrop(inst)
    q = parse_qfile(path)
    assert q["attrs"]["extract_recipients"] == "1"
    assert q["rcpts"] == []
    inst.start()
    incoming = wait_for(lambda: queue_files(inst.queue_dir, "incoming")
                        + queue_files(inst.queue_dir, "active"), timeout=20)
    assert len(incoming) == 1, inst.log()
    q = parse_qfile(incoming[0])
    assert sorted(q["rcpts"]) == ["bob@example.test", "carol@example.test",
                                  "dave@example.test"]
    assert b"Bcc:" not in q["content"]
    assert b"body\n.\nmore\n" in q["content"]
    assert "extract_recipients" not in q["attrs"]


def test_full_name_in_added_from(inst):
    program("pickup", "pickup")
    program("cleanup", "cleanup")
    r = sendmail(inst, ["-F", "Alice Example", "-f", "alice@example.test",
                        "bob@example.test"], b"Subject: no from\n\nx\n")
    assert r.returncode == 0, r.stderr
    inst.start()
    incoming = wait_for(lambda: queue_files(inst.queue_dir, "incoming")
                        + queue_files(inst.queue_dir, "active"), timeout=20)
    assert incoming, inst.log()
    content = parse_qfile(incoming[0])["content"]
    assert re.search(rb"(?m)^From: .*Alice Example.*alice@example\.test", content), content


# --- the other modes -----------------------------------------------------------
def test_bv_reports_resolution(inst):
    r = sendmail(inst, ["-bv", "user@localhost", "someone@example.com"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert re.search(r"(?m)^user@localhost: local:\S* \(local\)$", out), out
    assert re.search(r"(?m)^someone@example\.com: smtp:example\.com \(default\)$", out), out
    assert maildrop(inst) == []
    assert sendmail(inst, ["-bv"]).returncode == 64


def test_bp_lists_queue(inst):
    r = sendmail(inst, ["-bp"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Mail queue is empty\n"
    assert sendmail(inst, ["-f", "alice@example.test", "bob@example.test",
                           "carol@example.test"], b"Subject: q\n\n" + b"y" * 1500 + b"\n"
                    ).returncode == 0
    (path,) = maildrop(inst)
    qid = os.path.basename(path)
    size = len(parse_qfile(path)["content"])
    for args, argv0 in ((["-bp"], None), ([], "mailq")):
        r = sendmail(inst, args, argv0=argv0)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.decode().splitlines()
        assert lines[0].split() == ["-Queue", "ID-", "-Size-", "----Arrival", "Time----",
                                    "-Sender/Recipient-------"]
        assert re.match(r"^%s\s+%d \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d  alice@example\.test$"
                        % (qid, size), lines[1]), lines
        assert lines[2].strip() == "bob@example.test" and lines[2].startswith(" " * 41)
        assert lines[3].strip() == "carol@example.test"
        assert lines[-1] == "-- 2 Kbytes in 1 Request."


# --- authorized_submit_users, authorized_mailq_users, authorized_flush_users ---

def test_authorized_submit_users(inst, drop_copy):
    inst.write_main_cf({"authorized_submit_users": "!nobody, static:anyone"})
    r = sendmail(inst, ["bob@example.test"], MSG, user="nobody", drop=drop_copy)
    assert r.returncode == 77, r
    assert b"User nobody(%d) is not allowed to submit mail" % pwd.getpwnam("nobody").pw_uid \
        in r.stderr, r.stderr
    # petrel-drop itself refuses too: sendmail is not the only way in.
    r = subprocess.run([RUNUSER, "-u", "nobody", "--", drop_copy, "-c", inst.config_dir],
                       input=b"", capture_output=True, timeout=30)
    assert r.returncode == 77 and b"not allowed to submit mail" in r.stderr, r
    assert maildrop(inst) == []
    # Everyone else still submits.
    r = sendmail(inst, ["bob@example.test"], MSG, drop=drop_copy)
    assert r.returncode == 0, r.stderr
    assert len(maildrop(inst)) == 1


def test_authorized_mailq_and_flush_users(inst):
    inst.write_main_cf({"authorized_mailq_users": "root", "authorized_flush_users": "root"})
    uid = pwd.getpwnam("nobody").pw_uid
    r = sendmail(inst, ["-bp"], user="nobody")
    assert r.returncode == 77
    assert b"User nobody(%d) is not allowed to view the mail queue" % uid in r.stderr, r.stderr
    r = sendmail(inst, ["-q"], user="nobody")
    assert r.returncode == 77
    assert b"User nobody(%d) is not allowed to flush the mail queue" % uid in r.stderr, r.stderr
    # root (and mail_owner) are never subject to these lists, as in Postfix.
    inst.write_main_cf({"authorized_mailq_users": "nobody"})
    r = sendmail(inst, ["-bp"])
    assert r.returncode == 0, r.stderr


def test_bp_refused_for_other_users(inst):
    r = sendmail(inst, ["-bp"], user="nobody")
    assert r.returncode == 77
    assert b"showq" in r.stderr


def test_bi_builds_alias_database(inst):
    aliases = os.path.join(inst.config_dir, "aliases")
    with open(aliases, "w") as f:
        f.write("# aliases\nPostmaster: root\nstaff: alice,\n   bob\n\"Help Desk\": carol\n")
    inst.write_main_cf({"alias_database": "hash:" + aliases})
    for args, argv0 in ((["-bi"], None), ([], "newaliases"), (["-I"], None)):
        if os.path.exists(aliases + ".db"):
            os.unlink(aliases + ".db")
        r = sendmail(inst, args, argv0=argv0)
        assert r.returncode == 0, r.stderr
        q = inst.petrel("map", "query", "postmaster", "hash:" + aliases)
        assert q.returncode == 0 and q.stdout.strip() == "root", q
        q = inst.petrel("map", "query", "staff", "hash:" + aliases)
        assert q.stdout.strip() == "alice,   bob"
        q = inst.petrel("map", "query", "help desk", "hash:" + aliases)
        assert q.stdout.strip() == "carol"
    with open(aliases, "w") as f:
        f.write("root: admin\nno colon here\n")
    r = sendmail(inst, ["-bi"])
    assert r.returncode != 0
    assert re.search(rb"aliases:2: need name:value pair", r.stderr), r.stderr


def test_bs_speaks_smtp_on_stdin(inst):
    program("smtpd", "smtpd")
    dialogue = (b"EHLO client.example\r\nMAIL FROM:<alice@example.test>\r\n"
                b"RCPT TO:<bob@example.test>\r\nDATA\r\nSubject: bs\r\n\r\nhello\r\n.\r\n"
                b"QUIT\r\n")
    r = sendmail(inst, ["-bs"], dialogue)
    out = r.stdout.decode()
    assert out.startswith("220 "), out
    assert re.search(r"(?m)^250 .*queued as ", out), out + r.stderr.decode()
    assert re.search(r"(?m)^221 ", out), out
    (path,) = maildrop(inst)
    q = parse_qfile(path)
    assert q["sender"] == "alice@example.test"
    assert q["rcpts"] == ["bob@example.test"]
    assert q["content"].endswith(b"Subject: bs\n\nhello\n")


def test_q_without_qmgr_reports_it(inst):
    r = sendmail(inst, ["-q"])
    # petrel flush: no qmgr is configured in this master.cf.
    assert r.returncode != 0
    assert b"qmgr" in r.stderr or b"not running" in r.stderr


def test_q_interval_is_accepted_and_ignored(inst):
    """sendmail -q1h (a queue run interval) does nothing and succeeds, as in Postfix."""
    r = sendmail(inst, ["-q1h"])
    assert r.returncode == 0, r.stderr
    assert maildrop(inst) == []


def test_deferred_submission_does_not_hold_up_the_others(inst):
    """A submission cleanup defers (a 4xx header check) stays in maildrop/ for the
    next scan; the ones after it are still collected."""
    checks = os.path.join(inst.config_dir, "header_checks")
    with open(checks, "w") as f:
        f.write("/^Subject: later/ REJECT 4.7.1 try again later\n")
    inst.main_cf["header_checks"] = "regexp:" + checks
    inst.write_main_cf()
    assert sendmail(inst, ["bob@example.test"], b"Subject: later\r\n\r\nfirst\r\n").returncode == 0
    assert sendmail(inst, ["bob@example.test"], b"Subject: now\r\n\r\nsecond\r\n").returncode == 0
    assert len(maildrop(inst)) == 2
    program("pickup", "pickup")
    program("cleanup", "cleanup")
    inst.start()
    assert wait_for(lambda: len(maildrop(inst)) == 1
                    and len(queue_files(inst.queue_dir, "incoming")) == 1, timeout=10), inst.log()
    q = parse_qfile(queue_files(inst.queue_dir, "incoming")[0])
    assert q["content"].endswith(b"\nsecond\n")
    assert inst.wait_log(r"cleanup deferred it: 4\d\d 4\.7\.1 try again later"), inst.log()


def test_rejected_submission_is_returned_to_sender(inst):
    """A local submission cleanup rejects (here header_checks) is not lost in
    corrupt/: the sender gets a non-delivery notification, as with Postfix."""
    checks = os.path.join(inst.config_dir, "header_checks")
    with open(checks, "w") as f:
        f.write("/^Subject: forbidden/ REJECT no such subjects here\n")
    inst.main_cf.update({"header_checks": "regexp:" + checks, "default_transport": "discard"})
    inst.write_main_cf()
    inst.write_master_cf(PICKUP_CLEANUP_CF
                         + "qmgr unix n - n 300 1 qmgr\n"
                         "bounce unix - - n - 0 bounce\n"
                         "discard unix - - n - - discard\n")
    for d in ("pickup", "cleanup", "qmgr", "bounce", "discard"):
        program(d, d)           # skips the test when one is not built
    r = sendmail(inst, ["-f", "alice@elsewhere.test", "bob@elsewhere.test"],
                 b"Subject: forbidden\r\n\r\nbody\r\n")
    assert r.returncode == 0, r.stderr
    inst.start()
    m = inst.wait_log(r"(\w+): sender non-delivery notification: (\w+)", timeout=20)
    assert m, inst.log()
    dsn_qid = m.group(2)
    assert inst.wait_log(r"%s: to=<alice@elsewhere\.test>, .*status=sent" % dsn_qid,
                         timeout=20), inst.log()
    assert re.search(r"rejected: 5\d\d 5\.7\.1 no such subjects here; returning it to the "
                     r"sender", inst.log()), inst.log()
    assert wait_for(lambda: maildrop(inst) == [], timeout=10)
    assert queue_files(inst.queue_dir, "corrupt") == []
    assert inst.wait_log(r"%s: removed" % m.group(1), timeout=10), inst.log()
