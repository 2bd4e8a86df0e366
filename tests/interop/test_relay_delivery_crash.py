"""kill -9 of the deliverer and the receiver, alternately and again and again,
while two clients submit and the relay delivers to a real upstream: every
message that got a 250 arrives upstream at least once, and each deliverer
kill causes at most one duplicate (the spool marks a message in flight
before DATA, so a crash between the upstream's 250 and the spool update
resends it once, never loses it)."""
import collections
import os
import random
import re
import signal
import smtplib
import sys
import threading
import time
import unittest

from harness import LOAD_TEST_MONITOR, AuthServer, Relay, SmtpguardTestCase, TestCA

USER = "AKIAIOSFODNN7EXAMPLE"
UPSTREAM_PW = "BMPPgbAHoFVbze1Ud0oA5uNdXRwUXUZ+qOwphGJbl/cS"
APPS = {"load-a": "pw-load-a", "load-b": "pw-load-b"}
PER_THREAD = 75            # 150 messages in all
PACE = 0.1                 # seconds between two messages of a thread: the load spans the kills
MAX_ATTEMPTS = 30          # per message
LOAD_SECONDS = 60          # the load loop stops by then whatever happens
KILLS_PER_WORKER = 4       # the supervisor allows 5 restarts a minute: stay under it
MIN_WORKER_AGE = 0.5       # never kill a worker that may not have said "ready" yet
DRAIN_SECONDS = 90
TOKEN = re.compile(r"token (t\d+m\d+)-a(\d+)")


def age(pid):
    """Seconds since the process started (from /proc, boot-relative clock)."""
    with open("/proc/%d/stat" % pid) as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def body(msg, attempt):
    # Unique per attempt: tells a relay duplicate from a client's resubmission.
    token = "%s-a%d" % (msg, attempt)
    return ("From: <x@%s.example.com>\r\nTo: <r@example.net>\r\nSubject: token %s\r\n\r\n"
            "token %s\r\n" % (msg[:2], token, token) + "filler line\r\n" * 20)


class RelayDeliveryCrashTest(SmtpguardTestCase):

    def test_kill_workers_under_load(self):
        ca = TestCA(self.tmp)
        cert, key = ca.leaf("server", dns=["localhost"], ips=["127.0.0.1"])
        server = AuthServer(self.tmp, cert, key, USER, UPSTREAM_PW)
        self.peers.append(server)
        # max_connections = 1: at most one message in flight, so one kill, one duplicate at most.
        relay = Relay(self.tmp, LOAD_TEST_MONITOR +
                      '[delivery]\nfirst_retry = "1s"\nmax_retry_interval = "2s"\n'
                      '[upstream.test]\nhost = "localhost"\nport = %d\ntls = "starttls"\n'
                      'ca_file = "%s"\ncredential = "ses"\ntimeout_seconds = 10\n'
                      'max_connections = 1\nidle_timeout_seconds = 5\n' % (server.port, ca.cert))
        steps = [(["vault", "init"], None),
                 (["vault", "set", "ses", "--username", USER], UPSTREAM_PW + "\n")]
        for n, (name, pw) in enumerate(APPS.items()):
            steps.append((["client", "add", name, "--password-stdin", "--allowed-sender",
                           "*@t%d.example.com" % n], pw + "\n"))
        for args, stdin in steps:
            r = relay.cli(*args, input=stdin)
            self.assertEqual(r.returncode, 0, (args, r.stderr))
        relay.start()
        self.addCleanup(relay.stop)

        acked = {}          # message -> the attempt token that got the 250
        attempts = collections.Counter()
        errors = []
        lock = threading.Lock()
        load_done = threading.Event()
        deadline = time.time() + LOAD_SECONDS

        def submit(thread_no, identity, pw):
            s = None
            for n in range(PER_THREAD):
                msg = "t%dm%03d" % (thread_no, n)
                sender = "x@%s.example.com" % msg[:2]
                for attempt in range(1, MAX_ATTEMPTS + 1):
                    if time.time() > deadline:
                        errors.append("load deadline passed at %s" % msg)
                        return
                    with lock:
                        attempts[msg] += 1
                    try:
                        if s is None:
                            s = smtplib.SMTP("127.0.0.1", relay.port, timeout=10)
                            s.login(identity, pw)
                        s.sendmail(sender, ["r@example.net"], body(msg, attempt).encode())
                        with lock:
                            acked[msg] = "%s-a%d" % (msg, attempt)
                        break
                    except smtplib.SMTPRecipientsRefused as e:
                        codes = [c for c, _ in e.recipients.values()]
                        if not all(400 <= c < 500 for c in codes):
                            errors.append("%s refused: %s" % (msg, e.recipients))
                            return
                    except smtplib.SMTPResponseException as e:
                        if not 400 <= e.smtp_code < 500:
                            errors.append("%s refused: %s %s" % (msg, e.smtp_code, e.smtp_error))
                            return
                    except (smtplib.SMTPException, OSError):
                        pass  # the receiver was killed under us: reconnect and resubmit
                    if s is not None:
                        try:
                            s.close()
                        except OSError:
                            pass
                        s = None
                    time.sleep(0.2)
                else:
                    errors.append("%s: no 250 after %d attempts" % (msg, MAX_ATTEMPTS))
                    return
                time.sleep(PACE)
            if s is not None:
                try:
                    s.quit()
                except (smtplib.SMTPException, OSError):
                    pass

        kills = {"sg-deliverer": 0, "sg-receiver": 0}

        def killer():
            rng = random.Random(4242)
            turn = ["sg-deliverer", "sg-receiver"]
            while not load_done.is_set() and sum(kills.values()) < 2 * KILLS_PER_WORKER:
                if load_done.wait(rng.uniform(0.5, 1.5)):
                    return
                comm = turn[sum(kills.values()) % 2]
                if kills[comm] >= KILLS_PER_WORKER:
                    comm = turn[1 - turn.index(comm)]
                for _ in range(50):  # the restarted worker must be up (and ready) first
                    pid = relay.workers().get(comm)
                    try:
                        if pid and age(pid) >= MIN_WORKER_AGE:
                            break
                    except FileNotFoundError:
                        pass
                    time.sleep(0.1)
                else:
                    errors.append("%s did not come back" % comm)
                    return
                if comm == "sg-deliverer":
                    # Aim at the worst moment: the upstream has just stored a
                    # message and the spool does not know yet.
                    seen = len(os.listdir(server.spool))
                    until = time.time() + 1.0
                    while len(os.listdir(server.spool)) == seen and time.time() < until:
                        time.sleep(0.002)
                os.kill(pid, signal.SIGKILL)
                kills[comm] += 1

        threads = [threading.Thread(target=submit, args=(n, name, pw))
                   for n, (name, pw) in enumerate(APPS.items())]
        kill_thread = threading.Thread(target=killer)
        for t in threads:
            t.start()
        kill_thread.start()
        for t in threads:
            t.join(LOAD_SECONDS + 15)
        load_done.set()
        kill_thread.join(10)
        self.assertEqual(errors, [], relay.logs())
        self.assertIsNone(relay.proc.poll(), "the relay gave up:\n" + relay.logs())
        self.assertEqual(len(acked), 2 * PER_THREAD)
        self.assertGreaterEqual(kills["sg-deliverer"], 2, kills)
        self.assertGreaterEqual(kills["sg-receiver"], 2, kills)

        # Drain: everything acknowledged leaves the queue and arrives upstream.
        def arrived():
            return {m.group(1) + "-a" + m.group(2)
                    for rec in server.messages()
                    for m in [TOKEN.search(rec["data"])] if m}
        drained = time.time() + DRAIN_SECONDS
        while time.time() < drained:
            if relay.queue_ids() == [] and set(acked.values()) <= arrived():
                break
            time.sleep(0.5)
        time.sleep(1)  # a late duplicate still on the wire lands now
        records = server.messages()
        per_token = collections.Counter()
        for rec in records:
            m = TOKEN.search(rec["data"])
            self.assertIsNotNone(m, rec["data"][:200])
            per_token["%s-a%s" % (m.group(1), m.group(2))] += 1
            self.assertEqual(rec["login"], USER)
            self.assertTrue(rec["tls"])
        missing = sorted(t for t in acked.values() if t not in per_token)
        duplicates = sum(c - 1 for c in per_token.values() if c > 1)
        # A message resubmitted after a reply lost to a receiver kill may also
        # arrive under its earlier attempt's token: the client's doing, not a relay duplicate.
        resubmitted = sum(1 for msg in acked
                          if sum(1 for t in per_token if t.startswith(msg + "-")) > 1)
        print("duplicates: %d of %d (deliverer kills %d, receiver kills %d, "
              "resubmitted after a lost reply %d, submission attempts %d)"
              % (duplicates, len(acked), kills["sg-deliverer"], kills["sg-receiver"],
                 resubmitted, sum(attempts.values())), file=sys.stderr)
        self.assertEqual(missing, [], "acknowledged but never delivered\n" + relay.logs())
        self.assertEqual(relay.queue_ids(), [], "queue not drained\n" + relay.logs())
        self.assertLessEqual(duplicates, kills["sg-deliverer"], dict(
            (t, c) for t, c in per_token.items() if c > 1))
        self.assertIsNone(relay.proc.poll(), "the relay gave up:\n" + relay.logs())


if __name__ == "__main__":
    unittest.main()
