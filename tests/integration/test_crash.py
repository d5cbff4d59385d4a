"""test_crash.py - no accepted mail is lost and no finished recipient is delivered
again while qmgr, the delivery agents and master are killed with SIGKILL.

Ten client threads send 300 messages over SMTP (30 each), every message to two
virtual mailboxes (and, as root, to a local user's ~/Maildir/), each with a
Message-ID of its own (a message that did not get 250 is sent again under a new
Message-ID, so its first attempt, which may or may not have been queued, is never
confused with the retry). While they run, the test kills, at fixed points of
progress (every 30 accepted messages from 30) and in an order shuffled by a
seeded random generator: qmgr twice, the virtual delivery agent twice, local
twice (as root) and master twice (after which it waits for master's workers to
go and starts it again). Right after each kill it records which recipients are
marked done: every message whose "removed" line is in the log and the D records
of a few files in active/ (read with the qfile-dump helper), together with how
many copies of each such (message, recipient) the Maildirs hold at that moment.

At the end, once the queue is empty, it asserts:
  1. every message that got 250 is in every recipient's Maildir at least once;
  2. no recipient that was marked done got another copy afterwards: its count in
     the Maildir equals the count recorded when it was seen done (duplicates of
     finished recipients: 0);
  3. every kind of process was killed at least once while live (a worker that is
     not running at its kill point, e.g. an agent with nothing to deliver just then,
     is looked for again for a bounded time, then that one kill is skipped).
Duplicates of recipients that were not yet marked done when a process died are
allowed (at-least-once delivery, as in Postfix) and reported in the output.
"""
import email.parser
import json
import os
import pwd
import random
import re
import signal
import smtplib
import string
import subprocess
import threading

from petrel_instance import free_port, process_children, wait_for

ROOT = os.geteuid() == 0
VUID = 5000 if ROOT else os.getuid()
VGID = 5000 if ROOT else os.getgid()
CLIENTS = 10
PER_CLIENT = 30
VIRTUAL_RCPTS = ("r1@example.org", "r2@example.org")
KILL_EVERY = 30                 # accepted messages between kills
SNAPSHOT_FILES = 3              # queue files read per snapshot
ATTEMPTS = 200                  # per message, so a broken server cannot hang a client


def add_local_user(inst):
    """As root: a user with a home inside the instance, for local delivery."""
    name = "pc" + "".join(random.choice(string.ascii_lowercase) for _ in range(7))
    home = os.path.join(inst.base, "home", name)
    os.makedirs(os.path.dirname(home), mode=0o755, exist_ok=True)
    subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", "-U", name],
                   check=True, timeout=30, capture_output=True)
    os.makedirs(home)
    pw = pwd.getpwnam(name)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    os.chmod(home, 0o700)
    return name, home


def start(inst, local_rcpt):
    base = os.path.join(inst.base, "vmail")
    os.makedirs(os.path.join(base, "example.org"), exist_ok=True)
    if ROOT:
        for d in (base, os.path.join(base, "example.org")):
            os.chown(d, VUID, VGID)
    maps = os.path.join(inst.base, "vmailbox")
    with open(maps, "w") as f:
        for r in VIRTUAL_RCPTS:
            f.write("%s example.org/%s/\n" % (r, r.split("@")[0]))
    inst.write_main_cf({
        "myhostname": "mx.example.com", "mydomain": "example.com",
        "myorigin": "example.com", "mydestination": "localhost, example.com",
        "alias_maps": "", "local_recipient_maps": "", "home_mailbox": "Maildir/",
        "virtual_mailbox_domains": "example.org",
        "virtual_mailbox_base": base,
        "virtual_mailbox_maps": "texthash:" + maps,
        "virtual_uid_maps": "static:%d" % VUID,
        "virtual_gid_maps": "static:%d" % VGID,
        "virtual_minimum_uid": "1",
        "minimal_backoff_time": "1s", "maximal_backoff_time": "1s",
        "queue_run_delay": "1s",
        # A process killed before it told master it is ready counts as a bad
        # startup and throttles its service; keep that pause short.
        "service_throttle_time": "2s"})
    port = free_port()
    inst.write_master_cf(
        "127.0.0.1:%d inet n - n - - smtpd\n" % port
        + "cleanup unix n - n - 0 cleanup\n"
        "qmgr unix n - n 300 1 qmgr\n"
        "virtual unix - n n - - virtual\n"
        "bounce unix - - n - 0 bounce\n"
        + ("local unix - n n - - local\n" if local_rcpt else ""))
    inst.start()
    inst.smtp_port = port


def program_of(pid):
    try:
        return os.path.basename(os.readlink("/proc/%d/exe" % pid))
    except OSError:
        return None


class Clients:
    """The sending side: which Message-IDs got 250."""

    def __init__(self, port, rcpts):
        self.port = port
        self.rcpts = rcpts
        self.lock = threading.Lock()
        self.accepted = []
        self.unconfirmed = 0
        self.errors = []

    def send_one(self, msgid):
        body = ("From: crash@client.test\r\nTo: %s\r\n"
                "Subject: crash test\r\nMessage-ID: <%s>\r\n\r\nbody of %s\r\n"
                % (", ".join(self.rcpts), msgid, msgid))
        with smtplib.SMTP("127.0.0.1", self.port, timeout=15) as s:
            s.ehlo("client.test")
            if s.mail("crash@client.test")[0] != 250:
                return False
            for r in self.rcpts:
                if s.rcpt(r)[0] != 250:
                    return False
            code, _ = s.data(body.encode())
            return code == 250

    def run(self, n):
        for i in range(PER_CLIENT):
            for attempt in range(ATTEMPTS):
                msgid = "c%d.m%d.a%d@client.test" % (n, i, attempt)
                try:
                    ok = self.send_one(msgid)
                except (OSError, smtplib.SMTPException):
                    ok = False
                if ok:
                    with self.lock:
                        self.accepted.append(msgid)
                    break
                with self.lock:
                    self.unconfirmed += 1
                # Master may be down: wait until something listens again.
                wait_for(lambda: self.listening(), timeout=5, interval=0.1)
            else:
                with self.lock:
                    self.errors.append("client %d message %d never accepted" % (n, i))

    def listening(self):
        try:
            smtplib.socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def count(self):
        with self.lock:
            return len(self.accepted)


def maildir_counts(maildirs):
    """{(message-id, recipient): copies} over every Maildir (new/ and cur/)."""
    parser = email.parser.BytesHeaderParser()
    counts = {}
    for r, top in maildirs.items():
        for sub in ("new", "cur"):
            d = os.path.join(top, sub)
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                try:
                    with open(os.path.join(d, name), "rb") as f:
                        head = parser.parsebytes(f.read(8192))
                except OSError:
                    continue
                mid = (head.get("Message-ID") or "").strip().strip("<>")
                counts[(mid, r)] = counts.get((mid, r), 0) + 1
    return counts


def done_marks(inst):
    """(queue ID, recipient) pairs marked done in active/ (where qmgr marks them;
    any subset of the done recipients will do), and queue IDs removed."""
    dump = os.path.join(inst.build, "tests", "helpers", "qfile-dump")
    marks = set()
    paths = []
    for root, _dirs, files in os.walk(os.path.join(inst.queue_dir, "active")):
        paths += [os.path.join(root, n) for n in files if not n.startswith(".")]
    # A bounded sample keeps the snapshot short, so the kills land while the
    # clients are still sending.
    for path in sorted(paths)[:SNAPSHOT_FILES]:
        try:
            out = subprocess.run([dump, path], capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            continue
        if out.returncode != 0:
            continue            # moved or removed while being read
        for typ, data in json.loads(out.stdout.decode("latin-1"))["records"]:
            if typ == "D":
                marks.add((os.path.basename(path), data))
    removed = set(re.findall(r"(\w+): removed\b", inst.log()))
    return marks, removed


def message_ids(inst):
    """{queue ID: Message-ID} from cleanup's log lines."""
    return {q: m for q, m in re.findall(r"(\w+): message-id=<([^>\n]*)>", inst.log())}


def kill_one(inst, victim):
    """SIGKILLs one live process of the kind; True when one was there to kill."""
    master = inst.master_pid()
    if master is None:
        return False
    if victim == "master":
        kids = process_children(master)
        os.kill(master, signal.SIGKILL)
        assert wait_for(lambda: inst.master_pid() is None, timeout=10)
        # Workers notice that master is gone and exit; then master starts again.
        gone = wait_for(lambda: not [p for p in kids if os.path.exists("/proc/%d" % p)
                                     and program_of(p)], timeout=30)
        assert gone, "workers outlived master: %s" % [(p, program_of(p)) for p in kids]
        inst.start()
        return True
    def live():
        return [p for p in process_children(master) if program_of(p) == victim]

    pids = wait_for(live, timeout=10)
    for _ in range(4):
        if pids:
            break
        # A killed qmgr comes back at the next trigger (new mail, a flush, the
        # wakeup timer), after master's throttle when it died young; an agent
        # when qmgr has work for it. Ask for a run, a bounded number of times.
        inst.petrel("flush")
        pids = wait_for(live, timeout=10)
    for p in pids or []:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return bool(pids)


def test_crash_loses_nothing(petrel_instance):
    inst = petrel_instance
    local_user = add_local_user(inst) if ROOT else None
    try:
        run_crash_test(inst, local_user)
    finally:
        if local_user:
            subprocess.run(["userdel", local_user[0]], timeout=30, capture_output=True)


def run_crash_test(inst, local_user):
    rcpts = list(VIRTUAL_RCPTS)
    maildirs = {r: os.path.join(inst.base, "vmail", "example.org", r.split("@")[0])
                for r in VIRTUAL_RCPTS}
    victims = ["qmgr", "qmgr", "virtual", "virtual", "master", "master"]
    if local_user:
        rcpts.append(local_user[0] + "@example.com")
        maildirs[rcpts[-1]] = os.path.join(local_user[1], "Maildir")
        victims += ["local", "local"]
    start(inst, local_user)
    random.Random(4).shuffle(victims)
    clients = Clients(inst.smtp_port, rcpts)
    threads = [threading.Thread(target=clients.run, args=(n,), daemon=True)
               for n in range(CLIENTS)]
    for t in threads:
        t.start()

    snapshots = []              # (marks, removed, Maildir counts) after each kill
    hits = []
    for k, victim in enumerate(victims):
        target = 30 + k * KILL_EVERY
        reached = wait_for(lambda: clients.count() >= target, timeout=120, interval=0.05)
        assert reached, "only %d messages accepted; log:\n%s" % (clients.count(),
                                                                 inst.log()[-5000:])
        hits.append((victim, kill_one(inst, victim)))
        # Done marks seen at any moment are final, so the snapshot may follow
        # the kill; it stays short so the next kill still meets traffic.
        marks, removed = done_marks(inst)
        snapshots.append((marks, removed, maildir_counts(maildirs)))

    for t in threads:
        t.join(timeout=300)
    assert not [t for t in threads if t.is_alive()], "clients did not finish"
    assert not clients.errors, clients.errors
    assert len(clients.accepted) == CLIENTS * PER_CLIENT

    if inst.master_pid() is None:
        inst.start()
    inst.petrel("flush")

    def missing():
        counts = maildir_counts(maildirs)
        return [(m, r) for m in clients.accepted for r in rcpts if counts.get((m, r), 0) < 1]

    wait_for(lambda: not missing(), timeout=120, interval=0.5)
    lost = missing()
    assert not lost, "%d accepted deliveries missing, e.g. %s; log tail:\n%s" % (
        len(lost), lost[:5], inst.log()[-5000:])

    # Once delivered, the queue drains (files of recipients done are removed).
    def queue_empty():
        for q in ("incoming", "active", "deferred"):
            for _root, _dirs, files in os.walk(os.path.join(inst.queue_dir, q)):
                if [f for f in files if not f.startswith(".")]:
                    return False
        return True

    assert wait_for(queue_empty, timeout=60, interval=0.5), inst.log()[-5000:]

    ids = message_ids(inst)
    counts = maildir_counts(maildirs)
    redelivered = []
    checked = 0
    for marks, removed, before in snapshots:
        done = set(marks)
        for qid in removed:
            for r in rcpts:
                done.add((qid, r))
        for qid, rcpt in done:
            mid = ids.get(qid)
            if mid is None or (mid, rcpt) not in before:
                continue
            checked += 1
            if counts.get((mid, rcpt), 0) != before[(mid, rcpt)]:
                redelivered.append((qid, mid, rcpt, before[(mid, rcpt)],
                                    counts.get((mid, rcpt), 0)))
    dups = sum(n - 1 for n in counts.values() if n > 1)
    print("crash test: %d accepted, %d unconfirmed attempts, %d duplicate copies of "
          "recipients not yet done, %d done recipients checked, kills %s"
          % (len(clients.accepted), clients.unconfirmed, dups, checked, hits))
    assert checked > 0
    assert not redelivered, "recipients delivered again after being marked done: %s" % (
        redelivered[:10])
    assert {v for v, _hit in hits} == {v for v, hit in hits if hit}, (hits, "\n".join(
        line for line in inst.log().splitlines() if "warning" in line or "fatal" in line))
