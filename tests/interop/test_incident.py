"""The classic incident, end to end, with the default detectors.

An identity sends at its usual pace, then bursts at about 200 messages a
minute to distinct recipients. The monitor must hold its mail (new and
queued) with at most 50 messages delivered upstream, an alert must reach
a local webhook within 60 seconds of the burst, the audit log must say
what happened, and another identity must keep sending meanwhile.
`queue release --identity` lifts the hold and the held mail goes out.
Repeated AUTH failures from one address block it with a 421.
"""
import base64
import http.server
import json
import os
import smtplib
import threading
import time

from harness import (APP_PW, UPSTREAM_PW, UPSTREAM_USER, AuthServer, Relay, SmtpguardTestCase,
                     wait_for)


class Hook(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        Hook.bodies.append((time.time(), json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class IncidentTest(SmtpguardTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_server_cert()
        cls.httpd = http.server.HTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.httpd.shutdown()
        super().tearDownClass()

    def setUp(self):
        Hook.bodies.clear()

    def start(self, name):
        server = AuthServer(self.tmp, self.cert, self.key, UPSTREAM_USER, UPSTREAM_PW)
        self.peers.append(server)
        relay = Relay(self.tmp, name=name, extra_config=(
            '[monitor]\nlisten = ""\n'
            '[[alert]]\nwebhook = "http://127.0.0.1:%d/hook"\n'
            '[delivery]\nfirst_retry = "1s"\nmax_retry_interval = "2s"\n'
            '[upstream.ses]\nhost = "localhost"\nport = %d\nca_file = "%s"\ncredential = "ses"\n'
            'max_send_rate = 0\nmax_connections = 2\n'
            % (self.httpd.server_address[1], server.port, self.ca.cert)))
        self.provision(relay)
        r = relay.cli("client", "add", "blog", "--password-stdin", "--allowed-sender",
                      "*@blog.example.com", input=APP_PW + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        relay.start()
        self.addCleanup(relay.stop)
        return server, relay

    def audit(self, relay):
        return relay.audit()  # waits for lines still on their way to the file

    def send(self, relay, user, sender, rcpts, count, pause):
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
            s.login(user, APP_PW)
            for i in range(count):
                rcpt = rcpts(i)
                s.sendmail(sender, [rcpt], "From: %s\r\nTo: %s\r\nSubject: m%d\r\n\r\nbody %d\r\n"
                           % (sender, rcpt, i, i))
                time.sleep(pause)

    def test_burst_is_held_and_alerted(self):
        server, relay = self.start("burst")
        # The usual pace: a few messages to the same customers.
        self.send(relay, "shop", "orders@shop.example.com",
                  lambda i: "customer%d@example.net" % (i % 2), 3, 1.0)
        self.assertTrue(wait_for(lambda: len(server.messages()) == 3, 20))
        # The burst: ~200 a minute to distinct recipients, bounded to 70 messages.
        burst_start = time.time()
        self.send(relay, "shop", "orders@shop.example.com",
                  lambda i: "victim%03d@example.org" % i, 70, 0.3)
        # Another identity keeps sending while shop is held.
        self.send(relay, "blog", "news@blog.example.com", lambda i: "reader@example.net", 2, 0)
        self.assertTrue(wait_for(lambda: any("reader@example.net" in m["rcpt_tos"]
                                             for m in server.messages()), 20))
        time.sleep(3)  # let anything still queued go out (or be held)
        shop_upstream = [m for m in server.messages() if m["mail_from"].endswith("@shop.example.com")]
        burst_upstream = len(shop_upstream) - 3
        self.assertLessEqual(burst_upstream, 50, "delivered during the burst: %d" % burst_upstream)
        held = relay.queue_ids(held=True)
        self.assertEqual(burst_upstream + len(held), 70,
                         "every burst message is either upstream or held")
        self.assertGreaterEqual(len(held), 20)
        # An alert reached the webhook within 60 s of the burst.
        self.assertTrue(wait_for(lambda: Hook.bodies, 30))
        when, body = Hook.bodies[0]
        self.assertLess(when - burst_start, 60)
        self.assertIn("shop", body["text"])
        # The audit log says what the monitor did.
        alerts = [a for a in self.audit(relay) if a["event"] == "alert"
                  and a.get("subject") == "shop"]
        self.assertTrue(alerts, "no alert line for shop")
        self.assertTrue(alerts[0]["carried_out"], alerts[0])
        self.assertEqual(alerts[0]["action"], "hold")
        held_lines = [a for a in self.audit(relay) if a["event"] == "held"
                      and a.get("rule") == "detector"]
        self.assertTrue(held_lines)
        # The operator releases: the hold is lifted and the held mail goes out.
        r = relay.cli("queue", "release", "--identity", "shop")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("hold lifted", r.stdout)
        self.assertTrue(wait_for(lambda: len([m for m in server.messages()
                                              if m["mail_from"].endswith("@shop.example.com")])
                                 == 73, 60), "held mail was not delivered after release")
        self.assertEqual(relay.queue_ids(held=True), [])

    def test_auth_failures_block_the_address(self):
        server, relay = self.start("authfail")
        bad = base64.b64encode(b"\0shop\0wrong password").decode()

        def fail_once():
            # One AUTH per connection: smtplib's login() would try every
            # advertised mechanism and so fail twice per call.
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
                s.ehlo()
                code, _ = s.docmd("AUTH", "PLAIN " + bad)
                self.assertEqual(code, 535)

        # Five failures within ten minutes block (the default); four do not.
        for _ in range(4):
            fail_once()
        time.sleep(2)  # longer than the monitor takes to act
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
            self.assertEqual(s.noop()[0], 250, "blocked after four failures")
        fail_once()

        def refused():
            try:
                with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
                    s.noop()
                return False
            except smtplib.SMTPConnectError as e:
                return e.smtp_code == 421
            except smtplib.SMTPServerDisconnected:
                return False
        self.assertTrue(wait_for(refused, 15), "the address was not blocked")
        blocks = [a for a in self.audit(relay) if a["event"] == "alert"
                  and a.get("detector") == "auth"]
        self.assertTrue(blocks and blocks[0]["carried_out"], blocks)
        self.assertEqual(blocks[0]["action"], "block")


if __name__ == "__main__":
    import unittest
    unittest.main()
