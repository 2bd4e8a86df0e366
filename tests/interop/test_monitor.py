"""Metrics and status page of a running relay: real submissions through
smtplib (accepted, refused by policy, held by a rate limit and by the kill
switch) to a real STARTTLS+AUTH upstream, then /metrics scraped over HTTP
with exact per-identity counters, and the status page loaded in headless
Chromium (Debian's /usr/bin/chromium): DOM assertions and a screenshot."""
import json
import os
import re
import signal
import smtplib
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request

from harness import (APP_PW, UPSTREAM_PW, UPSTREAM_USER, AuthServer, Relay, SmtpguardTestCase,
                     free_port, wait_for)

CHROMIUM = "/usr/bin/chromium"
SAMPLE = re.compile(r'^(smtpguard_[a-z_]+)(\{.*\})? (\S+)$')


def parse_metrics(text):
    """{(name, frozenset(labels)): value} from the text exposition format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "bad sample line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())))


class MonitorTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_server_cert()

    def get(self, path, method="GET"):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.http_port, path),
                                     method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()

    def metrics(self):
        return parse_metrics(self.get("/metrics")[2])

    def wait_metric(self, expected, name, **labels):
        last = []

        def check():
            last[:] = [metric(self.metrics(), name, **labels)]
            return last[0] == expected
        self.assertTrue(wait_for(check, 20), "%s%s = %s, expected %s\n%s"
                        % (name, labels, last, expected, self.relay.logs()))

    def submit(self, login, sender, subject):
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=30) as s:
            s.login(login, APP_PW)
            s.sendmail(sender, ["rcpt@example.net"],
                       "From: %s\r\nTo: rcpt@example.net\r\nSubject: %s\r\n\r\nbody\r\n"
                       % (sender, subject))

    def chromium(self, *args):
        profile = os.path.join(self.tmp, "chromium-profile")
        return subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                               "--no-first-run", "--user-data-dir=" + profile, *args],
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    def test_metrics_and_status_page(self):
        server = AuthServer(self.tmp, self.cert, self.key, UPSTREAM_USER, UPSTREAM_PW)
        self.peers.append(server)
        self.http_port = free_port()
        self.relay = relay = Relay(
            self.tmp,
            '[upstream.test]\nhost = "localhost"\nport = %d\ntls = "starttls"\nca_file = "%s"\n'
            'credential = "ses"\ntimeout_seconds = 10\nmax_send_rate = 14\n'
            # A small audit log: the monitor must follow it across rotations.
            '[monitor]\nlisten = "127.0.0.1:%d"\naudit_max_size = 4096\n'
            % (server.port, self.ca.cert, self.http_port))
        self.provision(relay)
        r = relay.cli("client", "add", "blog", "--password-stdin", "--allowed-sender",
                      "*@blog.example.com", "--per-minute", "1", "--on-limit", "hold",
                      input=APP_PW + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        relay.start()
        self.addCleanup(relay.stop)

        # sg-monitor: a child of the relay, unprivileged, and serving.
        self.assertTrue(wait_for(lambda: relay.worker_pid("sg-monitor") is not None), relay.logs())
        with open("/proc/%d/status" % relay.worker_pid("sg-monitor")) as f:
            uid = re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1)
        self.assertNotEqual(uid, "0")
        st = os.stat(os.path.join(relay.state, "audit.jsonl"))
        self.assertEqual(st.st_mode & 0o777, 0o640)

        def serving():
            try:
                return self.get("/metrics")[0] == 200
            except OSError:
                return False
        self.assertTrue(wait_for(serving), relay.logs())

        for n in range(6):  # also enough audit lines for a rotation (audit_max_size)
            self.submit("shop", "a@shop.example.com", "shop %d" % n)
        with self.assertRaises(smtplib.SMTPException):  # sender not allowed for shop
            self.submit("shop", "a@elsewhere.example", "refused")
        self.submit("blog", "b@blog.example.com", "blog 1")
        self.submit("blog", "b@blog.example.com", "blog 2")  # over 1/minute: held
        self.assertTrue(wait_for(lambda: len(server.messages()) == 7), relay.logs())
        self.wait_metric(6, "smtpguard_recipients_delivered_total", identity="shop",
                         upstream="test")
        self.wait_metric(1, "smtpguard_recipients_delivered_total", identity="blog",
                         upstream="test")
        self.wait_metric(1, "smtpguard_messages_held_total", identity="blog")

        status, ctype, text = self.get("/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        self.assertIn("# TYPE smtpguard_messages_received_total counter\n", text)
        m = parse_metrics(text)
        expected = {
            ("smtpguard_messages_received_total", "shop"): 6,
            ("smtpguard_messages_refused_total", "shop"): 1,
            ("smtpguard_messages_held_total", "shop"): 0,
            ("smtpguard_messages_received_total", "blog"): 1,
            ("smtpguard_messages_refused_total", "blog"): 0,
            ("smtpguard_messages_held_total", "blog"): 1,
        }
        for (name, identity), value in expected.items():
            self.assertEqual(metric(m, name, identity=identity), value, (name, identity, text))
        self.assertEqual(metric(m, "smtpguard_upstream_replies_total", upstream="test",
                                **{"class": "2xx"}), 7)
        self.assertEqual(metric(m, "smtpguard_queue_messages", queue="held"), 1)
        self.assertEqual(metric(m, "smtpguard_queue_messages", queue="ready"), 0)
        self.assertGreater(metric(m, "smtpguard_queue_oldest_age_seconds", queue="held"), -1)
        self.assertEqual(metric(m, "smtpguard_paused"), 0)
        self.assertEqual(metric(m, "smtpguard_upstream_max_send_rate", upstream="test"), 14)
        self.assertAlmostEqual(metric(m, "smtpguard_upstream_send_rate", upstream="test"),
                               7 / 60, delta=0.001)
        self.assertEqual(metric(m, "smtpguard_credential_age_days", credential="ses"), 0)
        self.assertEqual(metric(m, "smtpguard_anomaly_detectors_running"), 1)
        self.assertTrue(os.path.exists(os.path.join(relay.state, "audit.jsonl.1")),
                        "the audit log was not rotated; the test does not cover rotation")

        # The kill switch: gauge 1, and mail accepted meanwhile is held.
        r = relay.cli("pause")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_metric(1, "smtpguard_paused")
        self.submit("shop", "a@shop.example.com", "while paused")
        self.wait_metric(1, "smtpguard_messages_held_total", identity="shop")
        self.wait_metric(2, "smtpguard_queue_messages", queue="held")

        # Only GET / and GET /metrics.
        for path, method in (("/nope", "GET"), ("/", "POST"), ("/metrics/x", "GET")):
            with self.assertRaises(urllib.error.HTTPError) as e:
                self.get(path, method)
            self.assertIn(e.exception.code, (404, 405), (path, method))

        # The status page as a browser renders it.
        url = "http://127.0.0.1:%d/" % self.http_port
        r = self.chromium("--dump-dom", url)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        dom = r.stdout
        self.assertIn('id="paused" data-paused="1"', dom)
        self.assertIn("PAUSED", dom)
        for name, received, held in (("shop", 6, 1), ("blog", 1, 1)):
            row = re.search(r'<tr data-identity="%s">(.*?)</tr>' % name, dom, re.S)
            self.assertIsNotNone(row, dom)
            self.assertIn('<td class="received">%d</td>' % received, row.group(1))
            self.assertIn('<td class="held">%d</td>' % held, row.group(1))
        self.assertIn('<b id="held-count">2</b>', dom)
        self.assertIn('<svg id="rate-chart"', dom)
        points = re.findall(r'<circle class="point"[^>]*data-identity="(\w+)" '
                            r'data-count="(\d+)"', dom)
        self.assertEqual(sum(int(c) for i, c in points if i == "shop"), 7, points)
        self.assertEqual(sum(int(c) for i, c in points if i == "blog"), 2, points)
        self.assertRegex(dom, r'<td class="age">0</td>')

        shot = os.path.join(self.tmp, "status.png")
        r = self.chromium("--screenshot=" + shot, "--window-size=1000,1400", url)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        with open(shot, "rb") as f:
            png = f.read()
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", png[16:24])
        self.assertEqual((width, height), (1000, 1400))
        self.assertGreater(len(png), 20000)  # text, tables and a chart, not a blank page

    def serving(self):
        try:
            return self.get("/metrics")[0] == 200
        except OSError:
            return False

    def test_upstream_sessions_and_last_error(self):
        """The deliverer's sessions reach /metrics and the status page through
        its status file: a burst opens at most max_connections = 2 sessions,
        idle ones stay open for idle_timeout_seconds, and a stopped upstream
        shows as the last error."""
        server = AuthServer(self.tmp, self.cert, self.key, UPSTREAM_USER, UPSTREAM_PW)
        self.peers.append(server)
        self.http_port = free_port()
        self.relay = relay = Relay(
            self.tmp,
            '[delivery]\nfirst_retry = "1s"\nmax_retry_interval = "2s"\n'
            '[upstream.test]\nhost = "localhost"\nport = %d\ntls = "starttls"\nca_file = "%s"\n'
            'credential = "ses"\ntimeout_seconds = 10\nmax_connections = 2\n'
            'idle_timeout_seconds = 15\nmax_send_rate = 0\n'
            '[monitor]\nlisten = "127.0.0.1:%d"\n[detect.rate]\naction = "alert"\n'
            '[detect.recipients]\naction = "alert"\n'
            % (server.port, self.ca.cert, self.http_port), name="sessions")
        self.provision(relay)
        relay.start()
        self.addCleanup(relay.stop)
        self.assertTrue(wait_for(self.serving), relay.logs())

        # The deliverer writes its status at its first tick; nothing is open yet.
        def fresh():
            m = self.metrics()
            age = metric(m, "smtpguard_deliverer_status_age_seconds")
            return age is not None and age < 30 and \
                metric(m, "smtpguard_upstream_max_sessions", upstream="test") == 2
        self.assertTrue(wait_for(fresh, 20), self.get("/metrics")[2] + relay.logs())
        m = self.metrics()
        self.assertEqual(metric(m, "smtpguard_upstream_sessions", upstream="test",
                                state="open"), 0)
        self.assertEqual(metric(m, "smtpguard_upstream_last_error_timestamp_seconds",
                                upstream="test"), 0)
        self.assertEqual(metric(m, "smtpguard_upstream_send_rate_limit", upstream="test"), 0)

        # A burst of 8 concurrent submissions; sessions are sampled meanwhile.
        seen = []
        errors = []

        def send(n):
            try:
                self.submit("shop", "a@shop.example.com", "burst %d" % n)
            except Exception as e:  # reported below
                errors.append(e)
        threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        deadline = time.time() + 30
        while len(server.messages()) < 8 and time.time() < deadline:
            m = self.metrics()
            seen.append(metric(m, "smtpguard_upstream_sessions", upstream="test", state="open"))
            time.sleep(0.2)
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(len(server.messages()), 8, relay.logs())

        def open_sessions():
            return metric(self.metrics(), "smtpguard_upstream_sessions", upstream="test",
                          state="open")
        # Idle sessions stay open for 15 s: the gauge shows them within a second or two.
        self.assertTrue(wait_for(lambda: (open_sessions() or 0) >= 1, 10),
                        self.get("/metrics")[2])
        now_open = open_sessions()
        self.assertLessEqual(now_open, 2)
        self.assertTrue(all(v is None or v <= 2 for v in seen), seen)
        m = self.metrics()
        self.assertEqual(metric(m, "smtpguard_upstream_sessions", upstream="test",
                                state="busy"), 0)
        dom = self.get("/")[2]
        row = re.search(r'<tr data-upstream="test">(.*?)</tr>', dom, re.S)
        self.assertIsNotNone(row, dom)
        self.assertRegex(row.group(1), r'class="sessions" data-open="[12]" data-busy="0">'
                                       r'[12] open, 0 busy of 2<')
        self.assertIn('<td class="last-error">none</td>', row.group(1))

        # The upstream goes away: the next message fails, and the error shows.
        before = time.time()
        server.stop()
        self.submit("shop", "a@shop.example.com", "upstream down")

        def last_error():
            return metric(self.metrics(), "smtpguard_upstream_last_error_timestamp_seconds",
                          upstream="test") or 0
        self.assertTrue(wait_for(lambda: last_error() >= int(before), 20),
                        self.get("/metrics")[2] + relay.logs())
        self.assertLessEqual(last_error(), time.time() + 1)
        # The broken sessions are closed, not counted as open.
        self.assertTrue(wait_for(lambda: open_sessions() == 0, 20), self.get("/metrics")[2])
        row = re.search(r'<tr data-upstream="test">(.*?)</tr>', self.get("/")[2], re.S)
        self.assertRegex(row.group(1), r'<td class="last-error">\d+ s ago: [^<]+</td>')

        # The deliverer gone (kill -STOP keeps the file but stops its writes):
        # after 30 s the gauges go and the age is reported instead. Bounded by
        # stopping only the deliverer, and resuming it in every case.
        deliverer = relay.worker_pid("sg-deliverer")
        self.assertIsNotNone(deliverer)
        os.kill(deliverer, signal.SIGSTOP)
        try:
            status = os.path.join(relay.state, "spool", "deliverer-status.json")
            old = time.time() - 40
            os.utime(status, (old, old))  # as if written 40 s ago
            m = self.metrics()
            self.assertGreaterEqual(metric(m, "smtpguard_deliverer_status_age_seconds"), 39)
            self.assertIsNone(metric(m, "smtpguard_upstream_sessions", upstream="test",
                                     state="open"))
            self.assertIsNone(metric(m, "smtpguard_upstream_max_sessions", upstream="test"))
            self.assertIn('id="deliverer-status">sessions unknown: stale', self.get("/")[2])
        finally:
            os.kill(deliverer, signal.SIGCONT)

    def test_baselines_survive_restart(self):
        """The detectors' learned state is saved at a clean stop and loaded
        at start: audit lines it already holds are skipped, and an identity
        learned before survives a replaced audit log."""
        server = AuthServer(self.tmp, self.cert, self.key, UPSTREAM_USER, UPSTREAM_PW)
        self.peers.append(server)
        self.http_port = free_port()
        relay = Relay(
            self.tmp,
            '[upstream.test]\nhost = "localhost"\nport = %d\ntls = "starttls"\nca_file = "%s"\n'
            'credential = "ses"\ntimeout_seconds = 10\n'
            '[monitor]\nlisten = "127.0.0.1:%d"\n' % (server.port, self.ca.cert, self.http_port),
            name="baselines")
        self.relay = relay
        self.provision(relay)
        r = relay.cli("client", "add", "blog", "--password-stdin", "--allowed-sender",
                      "*@blog.example.com", input=APP_PW + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        state_file = os.path.join(relay.state, "spool", "detector-state.json")

        def baselines():
            m = re.search(r'<p id="baselines" data-loaded="(\d)" data-skipped="(\d+)">',
                          self.get("/")[2])
            self.assertIsNotNone(m)
            return int(m.group(1)), int(m.group(2))

        def saved():
            with open(state_file) as f:
                j = json.load(f)
            self.assertEqual(j["format"], "smtpguard-monitor-state")
            self.assertEqual(j["version"], 1)
            return j, {i["name"]: i for i in j["detectors"]["identities"]}

        # 1. Learn "shop", stop cleanly: the state is saved.
        relay.start()
        self.addCleanup(relay.stop)
        self.assertTrue(wait_for(self.serving), relay.logs())
        self.assertEqual(baselines(), (0, 0))
        for n in range(3):
            self.submit("shop", "a@shop.example.com", "learn %d" % n)
        self.wait_metric(3, "smtpguard_recipients_delivered_total", identity="shop",
                         upstream="test")
        relay.stop()
        self.assertTrue(os.path.exists(state_file), relay.logs())
        self.assertEqual(os.stat(state_file).st_mode & 0o777, 0o600)
        first, ids = saved()
        self.assertIn("shop", ids)
        self.assertEqual(ids["shop"]["senders"], ["a@shop.example.com"])
        shop_first_seen = ids["shop"]["first_seen"]
        last_seq = max(line["seq"] for line in relay.audit())
        self.assertGreater(first["audit"]["seq"], 0)
        self.assertLessEqual(first["audit"]["seq"], last_seq)

        # 2. Start again with the same log: loaded, and what it held is skipped.
        relay.start()
        self.assertTrue(wait_for(self.serving), relay.logs())
        self.assertTrue(wait_for(lambda: baselines()[1] > 0, 10), self.get("/")[2])
        loaded, skipped = baselines()
        self.assertEqual(loaded, 1)
        self.assertGreaterEqual(skipped, 3 + 3)  # at least the 3 received + 3 delivered lines
        self.assertIn("monitor: detector baselines loaded", relay.logs())
        relay.stop()

        # 3. The audit log replaced (rotated away and gone): "shop" is known
        # only from the saved state, and survives the next save.
        for name in os.listdir(relay.state):
            if name.startswith("audit.jsonl"):
                os.unlink(os.path.join(relay.state, name))
        time.sleep(1.1)  # the new log's lines are newer than the saved position
        relay.start()
        self.assertTrue(wait_for(self.serving), relay.logs())
        self.assertTrue(wait_for(lambda: baselines()[0] == 1, 10), self.get("/")[2])
        self.submit("blog", "b@blog.example.com", "new identity")
        self.wait_metric(1, "smtpguard_recipients_delivered_total", identity="blog",
                         upstream="test")
        self.assertEqual(baselines()[1], 0)  # nothing of the new log was skipped
        relay.stop()
        _, ids = saved()
        self.assertEqual(ids["shop"]["first_seen"], shop_first_seen)
        self.assertEqual(ids["shop"]["senders"], ["a@shop.example.com"])
        self.assertIn("blog", ids)
        self.assertGreaterEqual(ids["blog"]["first_seen"], shop_first_seen)

        # 4. A damaged file: one warning, a fresh start, mail goes on.
        with open(state_file, "w") as f:
            f.write('{"format": "smtpguard-monitor-state", "version": 1, "audit": ')
        relay.start()
        self.assertTrue(wait_for(self.serving), relay.logs())
        self.assertEqual(baselines()[0], 0)
        self.assertIn("not loaded, detectors start afresh", relay.logs())
        self.assertIn("started afresh: detector state: not a JSON object", self.get("/")[2])
        self.submit("shop", "a@shop.example.com", "after a damaged state")
        self.wait_metric(1, "smtpguard_recipients_delivered_total", identity="shop",
                         upstream="test")
        relay.stop()
        self.assertTrue(saved()[1])  # replaced by a good file


if __name__ == "__main__":
    import unittest
    unittest.main()
