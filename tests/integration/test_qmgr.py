"""test_qmgr.py - the queue manager's scheduling, end to end.

A real instance runs cleanup, qmgr and tests/helpers/test-agent as the "sink"
transport (default_transport = sink, so every remote domain is a destination
sink:DOMAIN). The agent answers per destination from a rule file and records
each delivery's begin and end, so the tests observe what a user could: the
deliveries and their concurrency at the agent, the Postfix log lines, and the
queue files (incoming, active, deferred, hold, corrupt) on disk.
"""
import os
import signal
import socket
import subprocess
import time

from petrel_instance import wait_for

SENDER = "sender@example.com"


def helper(inst, name):
    return os.path.join(inst.build, "tests", "helpers", name)


def paths(inst):
    return (os.path.join(inst.base, "rules"), os.path.join(inst.base, "record"))


def set_rules(inst, text):
    with open(paths(inst)[0], "w") as f:
        f.write(text)


def start(inst, rules="", extra=None):
    rules_path, record_path = paths(inst)
    set_rules(inst, rules)
    params = {"myhostname": "mx.example.com", "mydomain": "example.com",
              "myorigin": "example.com", "mydestination": "localhost",
              "default_transport": "sink", "minimal_backoff_time": "1s",
              "maximal_backoff_time": "4s", "queue_run_delay": "1s"}
    params.update(extra or {})
    inst.write_main_cf(params)
    text = ("cleanup unix n - n - 0 cleanup\n"
            "qmgr unix n - n 300 1 qmgr\n"
            "sink unix - n n - 10 test-agent %s %s\n" % (rules_path, record_path))
    if os.path.exists(os.path.join(inst.build, "bounce", "bounce")):
        text += "bounce unix - - n - 0 bounce\n"
    inst.write_master_cf(text)
    inst.start()
    assert wait_for(lambda: os.path.exists(os.path.join(inst.queue_dir, "public", "cleanup")),
                    timeout=10), inst.log()


def submit(inst, rcpts, flags="", attrs=(), body="Subject: test\n\nhello\n"):
    args = [helper(inst, "cleanup-submit"), "-f", SENDER]
    for a in attrs:
        args += ["-a", a]
    if flags:
        args += ["-F", flags]
    args.append(os.path.join(inst.queue_dir, "public", "cleanup"))
    args += list(rcpts)
    r = subprocess.run(args, input=body.encode(), capture_output=True, timeout=30)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    for line in out.splitlines():
        if line.startswith("queue_id="):
            return line.split("=", 1)[1]
    raise AssertionError(out)


def records(inst):
    try:
        with open(paths(inst)[1]) as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def begins(inst, nexthop=None):
    return [r for r in records(inst) if r[0] == "begin" and (nexthop is None or r[1] == nexthop)]


def delivered_rcpts(inst, after_ns=0):
    out = []
    for r in begins(inst):
        if int(r[3]) >= after_ns:
            out += r[5:]
    return out


def max_overlap(inst, nexthop):
    events = []
    for r in records(inst):
        if r[1] != nexthop:
            continue
        events.append((int(r[3]), 1 if r[0] == "begin" else -1))
    events.sort(key=lambda e: (e[0], e[1]))
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def queue_files(inst, queue):
    found = {}
    for root, _, files in os.walk(os.path.join(inst.queue_dir, queue)):
        for name in files:
            found[name] = os.path.join(root, name)
    return found


def trigger(inst, req=b"W"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(os.path.join(inst.queue_dir, "public", "qmgr"))
    s.sendall(req)
    s.close()


def dump_records(inst, path):
    """The queue file's records as (type, payload) through the one reader."""
    r = subprocess.run([helper(inst, "cleanup-submit"), "-d", path], capture_output=True,
                       timeout=10)
    data, out = r.stdout, []
    while data:
        head, _, rest = data.partition(b"\n")
        typ, length = head.split()
        n = int(length)
        out.append((typ.decode(), rest[:n].decode(errors="replace")))
        data = rest[n + 1:]
    return out


def test_delivery_and_removal(petrel_instance):
    inst = petrel_instance
    start(inst)
    qid = submit(inst, ["a@fast.test", "b@fast.test", "c@other.test"])
    assert inst.wait_log(r"%s: removed" % qid, timeout=15), inst.log()
    log = inst.log()
    assert "%s: from=<%s>, size=" % (qid, SENDER) in log
    assert "%s: from=<%s>, size=21, nrcpt=3 (queue active)" % (qid, SENDER) in log
    for rcpt, relay in (("a@fast.test", "fast.test"), ("c@other.test", "other.test")):
        assert inst.wait_log(r"%s: to=<%s>, relay=%s, delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/"
                             r"[0-9.]+/[0-9.]+, dsn=2\.0\.0, status=sent \(delivered to test "
                             r"sink\)" % (qid, rcpt, relay), timeout=1), log
    # One delivery per destination (default_destination_recipient_limit 50).
    fast = begins(inst, "fast.test")
    assert len(fast) == 1 and sorted(fast[0][5:]) == ["a@fast.test", "b@fast.test"]
    assert fast[0][4] == "from=<%s>" % SENDER
    assert len(begins(inst, "other.test")) == 1
    for q in ("incoming", "active", "deferred"):
        assert qid not in queue_files(inst, q)


def test_recipient_limit_and_concurrency(petrel_instance):
    inst = petrel_instance
    start(inst, "slow.test sent 600\n",
          {"sink_destination_recipient_limit": "1",
           "sink_destination_concurrency_limit": "2"})
    rcpts = ["r%d@slow.test" % i for i in range(6)]
    qid = submit(inst, rcpts)
    assert inst.wait_log(r"%s: removed" % qid, timeout=30), inst.log()
    got = begins(inst, "slow.test")
    assert len(got) == 6 and all(len(r) == 6 for r in got)
    assert sorted(delivered_rcpts(inst)) == sorted(rcpts)
    # Observed at the agent: never more than the limit, and the limit is used.
    assert max_overlap(inst, "slow.test") == 2


def test_deferring_destination_does_not_delay_others(petrel_instance):
    inst = petrel_instance
    start(inst, "down.test sitedefer 200\n", {"minimal_backoff_time": "60s",
                                             "maximal_backoff_time": "120s"})
    down = [submit(inst, ["u%d@down.test" % i]) for i in range(4)]
    t0 = time.time()
    good = submit(inst, ["user@up.test"])
    assert inst.wait_log(r"%s: removed" % good, timeout=10), inst.log()
    assert time.time() - t0 < 5
    for qid in down:
        assert wait_for(lambda: qid in queue_files(inst, "deferred"), timeout=10), inst.log()
    log = inst.log()
    assert "status=deferred (connect to test site: Connection refused)" in log
    # The retry time is the file's mtime: at least minimal_backoff_time ahead.
    path = queue_files(inst, "deferred")[down[0]]
    assert os.stat(path).st_mtime > time.time() + 50
    assert os.path.exists(os.path.join(inst.queue_dir, "defer")) and queue_files(inst, "defer")


def test_backoff_and_flush(petrel_instance):
    inst = petrel_instance
    start(inst, "later.test defer\n", {"minimal_backoff_time": "30s",
                                      "maximal_backoff_time": "60s"})
    qid = submit(inst, ["x@later.test"])
    assert wait_for(lambda: qid in queue_files(inst, "deferred"), timeout=10), inst.log()
    ahead = os.stat(queue_files(inst, "deferred")[qid]).st_mtime - time.time()
    assert 25 < ahead <= 31, ahead
    assert "dsn=4.2.0, status=deferred (test defer)" in inst.log()
    set_rules(inst, "")
    r = inst.petrel("flush")
    assert r.returncode == 0, r.stderr
    assert inst.wait_log(r"%s: removed" % qid, timeout=10), inst.log()
    assert len(begins(inst, "later.test")) == 2


def test_retry_with_backoff(petrel_instance):
    inst = petrel_instance
    start(inst, "retry.test defer\n")
    qid = submit(inst, ["x@retry.test"])
    assert wait_for(lambda: qid in queue_files(inst, "deferred"), timeout=10), inst.log()
    set_rules(inst, "")
    # queue_run_delay 1s and minimal_backoff_time 1s: retried on its own.
    assert inst.wait_log(r"%s: removed" % qid, timeout=15), inst.log()


def test_expiry(petrel_instance):
    inst = petrel_instance
    start(inst, "never.test defer\n", {"maximal_queue_lifetime": "2s"})
    qid = submit(inst, ["x@never.test"])
    assert inst.wait_log(r"%s: from=<%s>, status=expired, returned to sender"
                         % (qid, SENDER), timeout=20), inst.log()
    # The recipient is done: it is never tried again.
    n = len(begins(inst, "never.test"))
    trigger(inst, b"F")
    qid2 = submit(inst, ["y@fine.test"])
    assert inst.wait_log(r"%s: removed" % qid2, timeout=10)
    assert len(begins(inst, "never.test")) == n
    files = queue_files(inst, "deferred")
    if qid in files:
        # No bounce service yet: the bounce record waits with the file.
        assert queue_files(inst, "bounce").get(qid)
        assert [t for t, _ in dump_records(inst, files[qid]) if t in ("R", "D")] == ["D"]


def test_soft_bounce_keeps_expired_mail(petrel_instance):
    """soft_bounce = yes: past maximal_queue_lifetime nothing is returned; the mail
    stays queued and is tried again."""
    inst = petrel_instance
    start(inst, "never.test defer\n", {"maximal_queue_lifetime": "1s", "soft_bounce": "yes"})
    qid = submit(inst, ["x@never.test"])
    assert wait_for(lambda: len(begins(inst, "never.test")) >= 3, timeout=20), inst.log()
    assert "status=expired" not in inst.log()
    assert "status=bounced" not in inst.log()
    assert qid in queue_files(inst, "deferred") or qid in queue_files(inst, "active")


def test_hold_untouched_and_corrupt(petrel_instance):
    inst = petrel_instance
    start(inst)
    held = submit(inst, ["h@fast.test"], flags="H")
    assert held in queue_files(inst, "hold")
    trigger(inst, b"A")
    trigger(inst, b"F")
    qid = submit(inst, ["n@fast.test"])
    assert inst.wait_log(r"%s: removed" % qid, timeout=10), inst.log()
    assert held in queue_files(inst, "hold")
    assert "h@fast.test" not in delivered_rcpts(inst)

    # A complete-looking but truncated file in incoming/ goes to corrupt/.
    with open(queue_files(inst, "hold")[held], "rb") as f:
        data = f.read()
    incoming = os.path.join(inst.queue_dir, "incoming")
    bad = os.path.join(incoming, held)
    with open(bad, "wb") as f:
        f.write(data[:len(data) // 2])
    os.chmod(bad, 0o700)
    trigger(inst)
    assert wait_for(lambda: held in queue_files(inst, "corrupt"), timeout=10), inst.log()
    assert inst.wait_log(r"%s: .*corrupt queue file" % held, timeout=5)
    assert held not in queue_files(inst, "incoming")
    # qmgr keeps working.
    qid = submit(inst, ["m@fast.test"])
    assert inst.wait_log(r"%s: removed" % qid, timeout=10), inst.log()


def test_restart_after_kill9(petrel_instance):
    inst = petrel_instance
    start(inst, "slow.test sent 700\n",
          {"sink_destination_recipient_limit": "1",
           "sink_destination_concurrency_limit": "2",
           "sink_initial_destination_concurrency": "1"})
    rcpts = ["k%d@slow.test" % i for i in range(5)]
    qid = submit(inst, rcpts)
    assert wait_for(lambda: len([r for r in records(inst) if r[0] == "end"]) >= 2,
                    timeout=15), inst.log()
    qmgrs = [p for p in inst.workers()
             if open("/proc/%d/cmdline" % p, "rb").read().split(b"\0")[0].endswith(b"qmgr")]
    assert len(qmgrs) == 1
    os.kill(qmgrs[0], signal.SIGKILL)
    killed_at = time.monotonic_ns()
    active = queue_files(inst, "active")
    assert qid in active
    done = [p for t, p in dump_records(inst, active[qid]) if t == "D"]
    assert done
    # The next trigger starts a new qmgr, which takes the file from active/.
    time.sleep(0.2)  # let master notice the death before the trigger
    assert wait_for(lambda: inst.petrel("flush").returncode == 0, timeout=10)
    assert inst.wait_log(r"%s: removed" % qid, timeout=30), inst.log()
    again = delivered_rcpts(inst, after_ns=killed_at)
    assert not set(done) & set(again), (done, again)
    assert set(delivered_rcpts(inst)) == set(rcpts)


def test_priority_orders_waiting_mail(petrel_instance):
    inst = petrel_instance
    start(inst, "prio.test sent 400\n", {"sink_destination_concurrency_limit": "1"})
    # The first message keeps the only slot busy while the others wait in one batch.
    first = submit(inst, ["busy@prio.test"])
    assert wait_for(lambda: begins(inst, "prio.test"), timeout=10)
    low = submit(inst, ["low@prio.test"], attrs=["mt_priority=-5"])
    high = submit(inst, ["high@prio.test"], attrs=["mt_priority=7"])
    for q in (first, low, high):
        assert inst.wait_log(r"%s: removed" % q, timeout=15), inst.log()
    # One at a time: the later, higher MT-PRIORITY message goes first.
    order = [r[5] for r in begins(inst, "prio.test")]
    assert order == ["busy@prio.test", "high@prio.test", "low@prio.test"], order
