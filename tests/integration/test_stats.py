"""test_stats.py - petrel stats: counters shared by every smtpd and cleanup process,
moving by exactly what was sent, surviving a restart, in text, JSON and the
Prometheus text exposition format (checked line by line).
"""
import json
import re
import smtplib

from petrel_instance import free_port, wait_for

PROM_LINE = re.compile(r'^([a-z_][a-z0-9_]*)(\{([a-z_]+="(?:[^"\\\n]|\\.)*")'
                       r'(,[a-z_]+="(?:[^"\\\n]|\\.)*")*\})? (\d+)$')


def start(inst):
    port = free_port()
    inst.main_cf.update({"myhostname": "mx.example.com", "mydestination": "localhost",
                         "smtpd_recipient_restrictions": "reject_unauth_destination",
                         "relay_domains": "relay.test",
                         })
    inst.write_main_cf()
    inst.write_master_cf("127.0.0.1:%d inet n - n - - smtpd\n" % port
                         + "cleanup unix n - n - 0 cleanup\n")
    inst.start()
    inst.smtp_port = port


def send(inst, n, rcpts):
    for _ in range(n):
        with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
            s.ehlo("client.example")
            s.mail("a@src.test")
            for r in rcpts:
                code, text = s.rcpt(r)
                assert code == 250, (r, code, text)
            assert s.data(b"Subject: s\r\n\r\nbody\r\n")[0] == 250


def reject(inst):
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
        s.ehlo("client.example")
        s.mail("a@src.test")
        code, _ = s.rcpt("x@not-ours.test")
        assert code == 554, code


def stats(inst):
    r = inst.petrel("stats", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def service(st, name):
    return st["services"].get(name, {"connections": 0, "messages_received": 0,
                                     "recipients_accepted": 0, "bytes_received": 0,
                                     "rejected": {"rcpt": 0}})


def test_counters_move_exactly_and_survive_restart(petrel_instance):
    inst = petrel_instance
    start(inst)
    smtp = "127.0.0.1:%d" % inst.smtp_port
    before = stats(inst)
    send(inst, 3, ["u@relay.test", "v@relay.test"])
    reject(inst)
    reject(inst)

    def moved():
        st = stats(inst)
        return service(st, "cleanup")["messages_received"] \
            - service(before, "cleanup")["messages_received"] == 3 and st

    st = wait_for(moved, timeout=10)
    assert st, stats(inst)
    s0, s1 = service(before, smtp), service(st, smtp)
    assert s1["connections"] - s0["connections"] == 5
    assert s1["messages_received"] - s0["messages_received"] == 3
    assert s1["recipients_accepted"] - s0["recipients_accepted"] == 6
    assert s1["rejected"]["rcpt"] - s0["rejected"]["rcpt"] == 2
    c0, c1 = service(before, "cleanup"), service(st, "cleanup")
    assert c1["recipients_accepted"] - c0["recipients_accepted"] == 6
    assert c1["bytes_received"] > c0["bytes_received"]
    assert st["queues"]["incoming"] + st["queues"]["active"] + st["queues"]["deferred"] \
        + st["queues"]["hold"] + st["queues"]["maildrop"] >= 0

    # A restart keeps everything, and counting goes on from there.
    assert inst.stop().returncode == 0
    assert wait_for(lambda: inst.master_pid() is None, timeout=20)
    again = stats(inst)
    assert service(again, smtp) == s1
    inst.start()
    send(inst, 1, ["u@relay.test"])
    st = wait_for(lambda: service(stats(inst), smtp)["messages_received"]
                  == s1["messages_received"] + 1 and stats(inst), timeout=10)
    assert st

    # Text and Prometheus forms.
    r = inst.petrel("stats")
    assert r.returncode == 0 and ("service %s" % smtp) in r.stdout, r.stdout
    r = inst.petrel("stats", "--prometheus")
    assert r.returncode == 0, r.stderr
    declared, samples = {}, {}
    for line in r.stdout.splitlines():
        if line.startswith("# HELP "):
            name, text = line[7:].split(" ", 1)
            assert text
            continue
        if line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert kind in ("counter", "gauge")
            assert name not in declared, name
            declared[name] = kind
            continue
        m = PROM_LINE.match(line)
        assert m, "not an exposition line: %r" % line
        assert m.group(1) in declared, "sample before TYPE: %r" % line
        assert m.group(1).startswith("petrel_")
        if declared[m.group(1)] == "counter":
            assert m.group(1).endswith("_total")
        samples[(m.group(1), m.group(2) or "")] = int(m.group(5))
    key = ("petrel_service_messages_received_total", '{service="%s"}' % smtp)
    assert samples[key] == s1["messages_received"] + 1
    assert samples[("petrel_service_rejected_total",
                    '{service="%s",class="rcpt"}' % smtp)] == s1["rejected"]["rcpt"]
    assert ("petrel_queue_messages", '{queue="deferred"}') in samples
    assert inst.petrel("stats", "--bogus").returncode == 64


def test_delivery_counters_per_transport(petrel_instance):
    """Every agent reports through deliver_report, which counts per transport:
    discard → delivered, error → bounced, retry → deferred, each exactly once."""
    inst = petrel_instance
    port = free_port()
    transport = inst.base + "/transport"
    with open(transport, "w") as f:
        f.write("gone.test discard:dropped\nbad.test error:5.1.1 no such user\n"
                "later.test retry:4.4.1 try later\n")
    inst.main_cf.update({"myhostname": "mx.example.com", "mydestination": "localhost",
                         "relay_domains": "gone.test, bad.test, later.test",
                         "transport_maps": "texthash:" + transport,
                         "notify_classes": "resource, software",
                         # smtpd would refuse error: recipients at RCPT (Postfix does too)
                         "smtpd_reject_unlisted_recipient": "no",
                         "minimal_backoff_time": "300s"})
    inst.write_main_cf()
    inst.write_master_cf("127.0.0.1:%d inet n - n - - smtpd\n" % port
                         + "cleanup unix n - n - 0 cleanup\n"
                         "qmgr unix n - n 300 1 qmgr\n"
                         "discard unix - - n - - discard\n"
                         "error unix - - n - - error\n"
                         "retry unix - - n - - error\n")
    inst.start()
    inst.smtp_port = port
    send(inst, 2, ["a@gone.test", "b@bad.test", "c@later.test"])

    def transport_counts():
        t = stats(inst).get("transports", {})
        got = (t.get("discard", {}).get("delivered"), t.get("error", {}).get("bounced"),
               t.get("retry", {}).get("deferred"))
        return got if got == (2, 2, 2) else None

    assert wait_for(transport_counts, timeout=15), (stats(inst), inst.log())
    t = stats(inst)["transports"]
    assert t["discard"]["bytes_delivered"] > 0
    assert t["error"]["delivered"] == 0 and t["retry"]["delivered"] == 0
