"""Control of a running relay through its control socket and signals: the
kill switch (pause/resume, persisting across restarts), status, queue
hold/release/delete/flush, and reload (SIGHUP / `smtpguard reload`) that
keeps client connections and rejects a broken configuration."""
import json
import os
import signal
import smtplib
import time
import unittest

from harness import (APP_PW, UPSTREAM_PW, UPSTREAM_USER, AuthServer, Relay, SmtpguardTestCase,
                     free_port, wait_for)

USER = UPSTREAM_USER


class RelayControlTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_server_cert()

    def upstream_config(self, port, extra=""):
        return ('[upstream.test]\nhost = "localhost"\nport = %d\ntls = "starttls"\n'
                'ca_file = "%s"\ncredential = "ses"\ntimeout_seconds = 5\n%s\n'
                % (port, self.ca.cert, extra))

    def make_relay(self, name, port, extra="", delivery='first_retry = "1s"'):
        relay = Relay(self.tmp, self.upstream_config(port, extra) +
                      "[delivery]\n%s\n" % delivery, name=name)
        self.provision(relay)
        relay.start()
        self.addCleanup(relay.stop)
        return relay

    def server(self, port=0):
        extra = ["--port", str(port)] if port else []
        s = AuthServer(self.tmp, self.cert, self.key, USER, UPSTREAM_PW, extra=extra)
        self.peers.append(s)
        return s

    def send(self, relay, subject, smtp=None):
        msg = "From: a@shop.example.com\r\nSubject: %s\r\n\r\nbody\r\n" % subject
        if smtp is not None:
            smtp.sendmail("a@shop.example.com", ["x@example.net"], msg)
            return
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
            s.login("shop", APP_PW)
            s.sendmail("a@shop.example.com", ["x@example.net"], msg)

    def subjects(self, server):
        out = []
        for m in server.messages():
            for line in m["data"].split("\r\n"):
                if line.startswith("Subject: "):
                    out.append(line[len("Subject: "):])
        return sorted(out)

    def status(self, relay):
        r = relay.cli("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_pause_holds_new_mail_across_a_restart_and_resume_sends_it(self):
        server = self.server()
        relay = self.make_relay("pause", server.port)
        r = relay.cli("pause")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("paused", r.stdout)
        self.send(relay, "one")
        self.send(relay, "two")
        self.assertTrue(wait_for(lambda: len(relay.queue_ids(held=True)) == 2), relay.logs())
        for qid in relay.queue_ids(held=True):
            self.assertEqual(relay.queued_envelope(qid)["rule"], "paused")
        self.assertTrue(self.status(relay)["paused"])
        time.sleep(2)
        self.assertEqual(server.messages(), [])
        # The kill switch survives a restart of the relay.
        relay.stop()
        relay.start()
        self.send(relay, "three")
        self.assertTrue(wait_for(lambda: len(relay.queue_ids(held=True)) == 3), relay.logs())
        self.assertTrue(self.status(relay)["paused"])
        self.assertIn("PAUSED", relay.cli("status").stdout)
        time.sleep(1.5)
        self.assertEqual(server.messages(), [])
        r = relay.cli("resume")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("3 messages held during the pause released", r.stdout)
        self.assertTrue(wait_for(lambda: len(server.messages()) == 3), relay.logs())
        self.assertEqual(self.subjects(server), ["one", "three", "two"])
        events = [e["event"] for e in relay.audit()]
        self.assertIn("paused", events)
        self.assertIn("resumed", events)
        self.assertFalse(self.status(relay)["paused"])

    def test_pause_without_a_running_relay_applies_at_start(self):
        server = self.server()
        relay = self.make_relay("offline", server.port)
        relay.stop()
        r = relay.cli("pause")
        self.assertEqual(r.returncode, 0, r.stderr)
        relay.start()
        self.send(relay, "held")
        self.assertTrue(wait_for(lambda: len(relay.queue_ids(held=True)) == 1), relay.logs())
        self.assertEqual(relay.cli("resume").returncode, 0)
        self.assertTrue(wait_for(lambda: len(server.messages()) == 1), relay.logs())

    def test_status_reports_sessions_deliveries_and_credential_age(self):
        server = self.server()
        relay = self.make_relay("status", server.port, "max_connections = 3\n")
        for n in range(3):
            self.send(relay, "s%d" % n)
        self.assertTrue(wait_for(lambda: len(server.messages()) == 3), relay.logs())
        st = self.status(relay)
        up = st["upstreams"][0]
        self.assertEqual(up["name"], "test")
        self.assertEqual(up["delivered"], 3)
        self.assertEqual(up["max_connections"], 3)
        self.assertGreaterEqual(up["sessions_opened"], 1)
        self.assertEqual(up["credential"], "ses")
        self.assertEqual(up["credential_age_days"], 0)
        self.assertEqual(st["queue"]["queued"], 0)
        self.assertFalse(st["paused"])
        text = relay.cli("status").stdout
        self.assertIn("delivery active", text)
        self.assertIn("credential: ses, 0 days old", text)

    def test_max_send_rate_paces_delivery(self):
        # 5 recipients per second with a burst of 5: 20 one-recipient
        # messages cannot all be upstream in less than (20 - 5) / 5 = 3 s.
        # (A lower bound on the spread only: a slow machine makes it longer.)
        server = self.server()
        relay = self.make_relay("paced", server.port, "max_send_rate = 5\nmax_connections = 4\n")
        relay.cli("pause")
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
            s.login("shop", APP_PW)
            for n in range(20):
                self.send(relay, "p%d" % n, smtp=s)
        start = time.time()
        self.assertEqual(relay.cli("resume").returncode, 0)
        self.assertTrue(wait_for(lambda: len(server.messages()) == 20, 60), relay.logs())
        self.assertGreaterEqual(time.time() - start, 2.8)
        self.assertEqual(len(self.subjects(server)), 20)

    def test_queue_hold_release_delete_and_flush(self):
        port = free_port()  # nothing listens yet: the messages are deferred
        relay = self.make_relay("queue", port, delivery='first_retry = "10m"')
        for n in range(3):
            self.send(relay, "q%d" % n)

        def deferred():
            ids = relay.queue_ids()
            return len(ids) == 3 and all(relay.queued_envelope(i)["recipients"][0]["state"] ==
                                         "deferred" for i in ids)
        self.assertTrue(wait_for(deferred), relay.logs())
        keep, hold, drop = relay.queue_ids()
        r = relay.cli("queue", "hold", hold)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(relay.queue_ids(held=True), [hold])
        r = relay.cli("queue", "delete", drop)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(relay.queue_ids(), [keep])
        r = relay.cli("queue", "delete", drop)
        self.assertEqual(r.returncode, 66, r.stdout + r.stderr)
        r = relay.cli("queue", "hold", "not-an-id")
        self.assertEqual(r.returncode, 64, r.stderr)
        self.assertEqual(relay.cli("queue", "release", hold).returncode, 0)
        self.assertEqual(sorted(relay.queue_ids()), sorted([keep, hold]))
        # The next retry is 10-20 minutes away; flush makes it now.
        server = self.server(port)
        time.sleep(2)
        self.assertEqual(server.messages(), [])
        r = relay.cli("queue", "flush")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_for(lambda: len(server.messages()) == 2), relay.logs())
        self.assertEqual(self.subjects(server), ["q0", "q1"])
        self.assertTrue(wait_for(lambda: relay.queue_ids() == []))
        ops = [(e["event"], e.get("by")) for e in relay.audit() if e.get("by") == "operator"]
        self.assertEqual(ops, [("held", "operator"), ("deleted", "operator"),
                               ("released", "operator")])

    def test_reload_applies_new_config_and_keeps_open_connections(self):
        server = self.server()
        relay = self.make_relay("reload", server.port)
        client = smtplib.SMTP("127.0.0.1", relay.port, timeout=30)
        client.login("shop", APP_PW)
        self.send(relay, "before", smtp=client)
        self.assertTrue(wait_for(lambda: len(server.messages()) == 1), relay.logs())
        with open(relay.config) as f:
            text = f.read()
        with open(relay.config, "w") as f:
            f.write(text.replace('timeout_seconds = 5\n',
                                 'timeout_seconds = 5\nconfiguration_set = "shop-events"\n'))
        r = relay.cli("reload")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The connection opened before the reload still works.
        self.send(relay, "same connection", smtp=client)
        client.quit()
        self.send(relay, "after")
        self.assertTrue(wait_for(lambda: len(server.messages()) == 3), relay.logs())
        tagged = [m for m in server.messages() if "X-SES-CONFIGURATION-SET: shop-events" in m["data"]]
        # The deliverer restarted with the new configuration: both later
        # messages carry the configuration set, with the identity as tag.
        self.assertEqual(len(tagged), 2, [m["data"][:200] for m in server.messages()])
        self.assertTrue(all("X-SES-MESSAGE-TAGS: identity=shop" in m["data"] for m in tagged))

        # A broken configuration: the CLI refuses to signal, and a raw SIGHUP
        # is rejected by the relay, which keeps working on the old one.
        with open(relay.config, "w") as f:
            f.write(text + "\n[upstream.test2]\nport = 'x'\n")
        r = relay.cli("reload")
        self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
        self.assertIn("not reloaded", r.stderr)
        os.kill(relay.proc.pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: any(e["event"] == "config_rejected"
                                             for e in relay.audit())), relay.logs())
        self.send(relay, "still running")
        self.assertTrue(wait_for(lambda: len(server.messages()) == 4), relay.logs())
        self.assertEqual(relay.proc.poll(), None)

    def test_exim_submitter_is_trusted_limited_per_submitter_and_stripped(self):
        server = self.server()
        relay = self.make_relay("exim", server.port)
        for args, pw in ((["client", "add", "exim", "--exim", "--password-stdin",
                           "--allowed-sender", "*@example.com", "--submitter-per-minute", "2"],
                          "exim-pw"),
                         (["client", "add", "app", "--password-stdin",
                           "--allowed-sender", "*@example.com"], "app-pw")):
            r = relay.cli(*args, input=pw + "\n")
            self.assertEqual(r.returncode, 0, r.stderr)

        def submit(login, pw, submitter, subject):
            body = ("From: a@example.com\r\nX-Smtpguard-Submitter: %s\r\nSubject: %s\r\n\r\nx\r\n"
                    % (submitter, subject))
            with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
                s.login(login, pw)
                s.mail("a@example.com")
                s.rcpt("x@example.net")
                return s.data(body.encode())[0]
        # Two messages per minute for each mailbox Exim names: the third of
        # alice's waits, bob's still go.
        self.assertEqual(submit("exim", "exim-pw", "auth:alice@example.com", "a1"), 250)
        self.assertEqual(submit("exim", "exim-pw", "auth:alice@example.com", "a2"), 250)
        self.assertEqual(submit("exim", "exim-pw", "auth:alice@example.com", "a3"), 451)
        self.assertEqual(submit("exim", "exim-pw", "auth:bob@example.com", "b1"), 250)
        # Any other identity's header is not trusted (and not counted).
        self.assertEqual(submit("app", "app-pw", "auth:alice@example.com", "forged"), 250)
        self.assertTrue(wait_for(lambda: len(server.messages()) == 4), relay.logs())
        received = {e["id"]: e for e in relay.audit() if e["event"] == "received"}
        self.assertEqual(sorted(e["submitter"] for e in received.values()),
                         ["", "auth:alice@example.com", "auth:alice@example.com",
                          "auth:bob@example.com"])
        refused = [e for e in relay.audit() if e["event"] == "refused"]
        self.assertTrue(any(e.get("rule") == "submitter_rate.per_minute" for e in refused),
                        refused)
        # The header never goes upstream.
        for m in server.messages():
            self.assertNotIn("X-Smtpguard-Submitter", m["data"])

    def test_reload_without_relay_says_so(self):
        relay = Relay(self.tmp, "", name="none")
        r = relay.cli("reload")
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn("no relay is running", r.stderr)

    def test_second_relay_on_the_same_state_is_refused(self):
        server = self.server()
        relay = self.make_relay("twice", server.port)
        import subprocess
        from harness import SMTPGUARD
        other = subprocess.run([SMTPGUARD, "--config", relay.config, "relay"],
                               capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL)
        self.assertEqual(other.returncode, 75, other.stderr)
        self.assertIn("another smtpguard relay", other.stderr)


if __name__ == "__main__":
    unittest.main()
