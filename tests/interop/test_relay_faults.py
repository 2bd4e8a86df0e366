"""Upstream faults: the relay delivers through a real SMTP server (aiosmtpd,
peers/auth_server.py) that misbehaves on purpose: it is down at first, drops
the connection in DATA, answers 421 after N messages, throttles like SES,
refuses single recipients for a while or for good, greets too slowly, or
shows a certificate the relay must not trust.

Every test ends with each message delivered exactly once (each carries a
unique token; the server stores a message only when it answered 250) or
failed with a DSN to the sender, except where the fault is ours to fix
(daily quota, an untrusted certificate): then the mail stays queued and
nobody gets a DSN."""
import json
import os
import smtplib
import time
import unittest
import uuid

from harness import (APP_PW, UPSTREAM_PW, UPSTREAM_USER, AuthServer, Relay, SmtpguardTestCase,
                     TestCA, free_port)

USER = UPSTREAM_USER
SENDER = "a@shop.example.com"

# Retries come after 1-2 s (first_retry = 1s, max_retry_interval = 2s), SES
# rate throttling after 5 s: a fault that clears after one or two tries is
# over well within this.
SETTLE = 30


class RelayFaultsTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_server_cert()

    # ------------------------------------------------------------ helpers

    def start_server(self, *faults, port=None, cert=None, key=None):
        extra = list(faults) + (["--port", str(port)] if port else [])
        server = AuthServer(self.tmp, cert or self.cert, key or self.key, USER, UPSTREAM_PW,
                            extra=extra)
        self.addCleanup(server.stop)
        self.server = server
        return server

    def start_relay(self, name, port, timeout=10):
        relay = Relay(self.tmp, '[delivery]\nfirst_retry = "1s"\nmax_retry_interval = "2s"\n'
                      'queue_lifetime = "1h"\nbounces = true\n'
                      '[upstream.test]\nhost = "localhost"\nport = %d\ntls = "starttls"\n'
                      'ca_file = "%s"\ncredential = "ses"\ntimeout_seconds = %d\n'
                      'max_connections = 2\nmax_messages_per_connection = 100\n'
                      'idle_timeout_seconds = 5\nmax_send_rate = 0\n'
                      % (port, self.ca.cert, timeout), name=name)
        self.provision(relay, "--max-recipients", "100")
        relay.start()
        self.addCleanup(relay.stop)
        self.relay = relay
        return relay

    def submit(self, relay, rcpts, count=1):
        """`count` messages in one client session; returns their tokens."""
        tokens = []
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
            s.login("shop", APP_PW)
            for _ in range(count):
                token = "tok-" + uuid.uuid4().hex
                s.sendmail(SENDER, rcpts,
                           "From: %s\r\nTo: %s\r\nSubject: fault test %s\r\n"
                           "Message-ID: <%s@shop.example.com>\r\n\r\nbody %s\r\n"
                           % (SENDER, ", ".join(rcpts), token, token, token))
                tokens.append(token)
        return tokens

    def queue(self):
        r = self.relay.cli("queue", "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def server_events(self):
        path = os.path.join(self.server.spool, "events.jsonl") if hasattr(self, "server") else ""
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def diagnostics(self):
        """What the relay and the server did, for failure messages."""
        parts = ["--- relay log (tail)\n" + self.relay.logs()[-4000:],
                 "--- audit\n" + "\n".join(json.dumps(e) for e in self.relay.audit()),
                 "--- queue\n" + json.dumps(self.queue(), indent=1)]
        if hasattr(self, "server"):
            parts.append("--- server events\n" +
                         "\n".join(json.dumps(e) for e in self.server_events()))
            parts.append("--- server stored\n" + "\n".join(
                "%s <%s> %s" % (m["connection"][:8], m["mail_from"], m["rcpt_tos"])
                for m in self.server.messages()))
        return "\n".join(parts)

    def wait_until(self, predicate, what, seconds=SETTLE):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        self.fail("not within %d s: %s\n%s" % (seconds, what, self.diagnostics()))

    def deliveries(self, token):
        """Recipients that received the message with `token` (once per copy);
        DSNs (null sender), which quote the original headers, do not count."""
        return sorted(r for m in self.server.messages()
                      if m["mail_from"] == SENDER and token in m["data"] for r in m["rcpt_tos"])

    def dsns(self):
        # aiosmtpd records the null sender as "<>".
        return [m for m in self.server.messages() if m["mail_from"] in ("", "<>")]

    def faults_fired(self):
        return [e["fault"] for e in self.server_events() if e["event"] == "fault"]

    def audit_events(self, kind):
        return [e for e in self.relay.audit() if e["event"] == kind]

    def assert_each_once(self, tokens, rcpts):
        """Waits for the queue to empty, then: each message arrived exactly
        once for each recipient, no DSN, nothing bounced."""
        self.wait_until(lambda: all(self.deliveries(t) == sorted(rcpts) for t in tokens),
                        "every message delivered")
        self.wait_until(lambda: self.queue() == [], "queue empty")
        for t in tokens:
            self.assertEqual(self.deliveries(t), sorted(rcpts), self.diagnostics())
        self.assertEqual(self.dsns(), [], self.diagnostics())
        self.assertEqual(self.audit_events("bounced"), [], self.diagnostics())

    def deferred_replies(self):
        return [r["last_reply"] for env in self.queue() for r in env["recipients"]
                if r["state"] == "deferred"]

    # ------------------------------------------------------------ tests

    def test_server_down_at_start_then_up(self):
        port = free_port()  # nothing listens here yet
        relay = self.start_relay("down", port)
        tokens = self.submit(relay, ["x@example.net"], count=2)
        self.wait_until(lambda: len(self.deferred_replies()) == 2, "both messages deferred")
        for reply in self.deferred_replies():
            self.assertIn("connect", reply.lower(), self.diagnostics())
            self.assertIn("refused", reply.lower(), self.diagnostics())
        self.start_server(port=port)
        self.assert_each_once(tokens, ["x@example.net"])
        self.assertTrue(self.audit_events("deferred"), self.diagnostics())

    def test_connection_closed_in_data(self):
        server = self.start_server("--close-in-data", "1")
        relay = self.start_relay("middata", server.port)
        tokens = self.submit(relay, ["x@example.net", "y@example.net"], count=2)
        self.assert_each_once(tokens, ["x@example.net", "y@example.net"])
        self.assertEqual(self.faults_fired(), ["close-in-data"], self.diagnostics())
        self.assertTrue(self.audit_events("deferred"), self.diagnostics())

    def test_421_after_two_messages_opens_new_connections(self):
        server = self.start_server("--421-after", "2")
        relay = self.start_relay("421", server.port)
        tokens = self.submit(relay, ["x@example.net"], count=5)
        self.assert_each_once(tokens, ["x@example.net"])
        self.assertIn("421", self.faults_fired(), self.diagnostics())
        per_connection = {}
        for m in server.messages():
            per_connection[m["connection"]] = per_connection.get(m["connection"], 0) + 1
        self.assertGreaterEqual(len(per_connection), 3, self.diagnostics())
        self.assertLessEqual(max(per_connection.values()), 2, self.diagnostics())

    def test_ses_throttling_is_retried(self):
        # SES answers "454 Throttling failure" at MAIL FROM or after DATA.
        for step in ("mail", "data"):
            with self.subTest(at=step):
                server = self.start_server("--throttle-first", "1", "--throttle-at", step)
                relay = self.start_relay("throttle-" + step, server.port)
                tokens = self.submit(relay, ["x@example.net"])
                self.assert_each_once(tokens, ["x@example.net"])
                self.assertEqual(self.faults_fired(), ["throttle"], self.diagnostics())
                deferred = self.audit_events("deferred")
                self.assertTrue(deferred, self.diagnostics())
                self.assertIn("Maximum sending rate exceeded", deferred[0]["reply"])
                relay.stop()
                server.stop()

    def test_daily_quota_keeps_the_mail_without_bouncing(self):
        # The quota is the account's problem, not the recipient's: the mail
        # waits (retried hourly), no attempt is counted, no DSN goes out.
        server = self.start_server("--quota-first", "1")
        relay = self.start_relay("quota", server.port)
        self.submit(relay, ["x@example.net"])
        self.wait_until(lambda: any("quota" in r.lower() for r in self.deferred_replies()),
                        "deferred with the quota reply")
        time.sleep(6)  # ordinary backoff (1-2 s) would have retried by now
        self.assertEqual(self.faults_fired(), ["quota"], self.diagnostics())
        self.assertEqual(server.messages(), [], self.diagnostics())
        self.assertEqual(self.audit_events("bounced"), [], self.diagnostics())
        [env] = self.queue()
        self.assertEqual([r["attempts"] for r in env["recipients"]], [0], self.diagnostics())

    def test_mixed_recipient_replies(self):
        good, later, gone = "good@example.net", "later@example.net", "gone@example.net"
        server = self.start_server("--rcpt-reply", later + ":2=451 4.3.0 try again later",
                                   "--rcpt-reply", gone + "=550 5.1.1 no such user")
        relay = self.start_relay("mixed", server.port)
        [token] = self.submit(relay, [good, later, gone])
        self.wait_until(lambda: self.deliveries(token) == [good, later],
                        "good and later delivered")
        self.wait_until(lambda: self.queue() == [] and len(self.dsns()) == 1,
                        "queue empty, one DSN delivered")
        self.assertEqual(self.deliveries(token), [good, later], self.diagnostics())
        # The good recipient was never offered again while `later` was retried.
        rcpts = [e["address"] for e in self.server_events() if e["event"] == "rcpt"]
        self.assertEqual(rcpts.count(good), 1, self.diagnostics())
        self.assertEqual(rcpts.count(later), 3, self.diagnostics())
        # The 550 comes back to the sender, about `gone` alone.
        [dsn] = self.dsns()
        self.assertEqual(dsn["rcpt_tos"], [SENDER])
        self.assertIn("Final-Recipient: rfc822; " + gone, dsn["data"])
        self.assertNotIn("Final-Recipient: rfc822; " + later, dsn["data"])
        self.assertNotIn("Final-Recipient: rfc822; " + good, dsn["data"])
        self.assertIn("550", dsn["data"])
        self.assertIn(token, dsn["data"])  # the original headers are quoted
        self.assertEqual([e["recipient"] for e in self.audit_events("bounced")], [gone])
        self.assertEqual(sorted(e["recipient"] for e in self.audit_events("delivered")),
                         sorted([good, later, SENDER]), self.diagnostics())

    def test_greeting_slower_than_timeout_is_retried(self):
        server = self.start_server("--slow-greeting", "4", "--slow-first", "1")
        relay = self.start_relay("slow", server.port, timeout=2)
        tokens = self.submit(relay, ["x@example.net"])
        self.assert_each_once(tokens, ["x@example.net"])
        self.assertEqual(self.faults_fired(), ["slow-greeting"], self.diagnostics())
        deferred = self.audit_events("deferred")
        self.assertTrue(deferred, self.diagnostics())
        self.assertIn("timed out", deferred[0]["reply"])

    def test_untrusted_certificate_delivers_nothing(self):
        other = os.path.join(self.tmp, "other-ca")
        os.mkdir(other)
        cert, key = TestCA(other, name="some other CA").leaf("server", dns=["localhost"],
                                                             ips=["127.0.0.1"])
        server = self.start_server(cert=cert, key=key)
        relay = self.start_relay("badcert", server.port)
        self.submit(relay, ["x@example.net"])

        def retried_with_tls_error():
            q = self.queue()
            return len(q) == 1 and all(
                r["state"] == "deferred" and r["attempts"] >= 2 and
                "certificate verification failed" in r["last_reply"]
                for r in q[0]["recipients"])
        self.wait_until(retried_with_tls_error, "deferred twice with the TLS verification error")
        self.assertEqual(server.messages(), [], self.diagnostics())
        self.assertEqual(self.audit_events("delivered"), [], self.diagnostics())
        self.assertEqual(self.audit_events("bounced"), [], self.diagnostics())
        self.assertEqual([e["mail_from"] for e in self.queue()], [SENDER])  # no DSN queued


if __name__ == "__main__":
    unittest.main()
