"""Metrics and status page of a running relay: real submissions through
smtplib (accepted, refused by policy, held by a rate limit and by the kill
switch) to a real STARTTLS+AUTH upstream, then /metrics scraped over HTTP
with exact per-identity counters, and the status page loaded in headless
Chromium (Debian's /usr/bin/chromium): DOM assertions and a screenshot."""
import os
import re
import smtplib
import struct
import subprocess
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
        def monitor_pid():
            kids = subprocess.run(["pgrep", "-P", str(relay.proc.pid)], capture_output=True,
                                  text=True).stdout.split()
            for pid in kids:
                try:
                    with open("/proc/%s/comm" % pid) as f:
                        if f.read().strip() == "sg-monitor":
                            return int(pid)
                except OSError:
                    pass
            return None
        self.assertTrue(wait_for(lambda: monitor_pid() is not None), relay.logs())
        with open("/proc/%d/status" % monitor_pid()) as f:
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


if __name__ == "__main__":
    import unittest
    unittest.main()
