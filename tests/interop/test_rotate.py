"""`smtpguard rotate`: verify-before-cutover rotation of the upstream
credential under load, refusal of a wrong new secret without touching the
running credential, --rollback (verified too), and the audit line.

The upstream is peers/auth_server.py; during a rotation it accepts both the
old and the new login (--also-accept), as SES does while both IAM keys are
active. Every record it spools names the login that delivered it."""
import base64
import hashlib
import hmac
import json
import os
import smtplib
import threading
import time

from harness import (APP_PW, EX_NOINPUT, EX_NOPERM, UPSTREAM_PW, UPSTREAM_USER, AuthServer,
                     LOAD_TEST_MONITOR, Relay, SmtpguardTestCase, wait_for)

OLD_USER = UPSTREAM_USER
NEW_KEY_ID = "AKIAI44QH8DHBEXAMPLE"  # AWS documentation example
NEW_IAM_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
REGION = "us-east-1"
NEW_SMTP_USER = "mailer-2"
NEW_SMTP_PW = "n3w: p@ss/word & more"


def ses_smtp_password(secret, region):
    """AWS's documented SigV4 derivation of the SES SMTP password (version 4),
    written out here so the test does not trust smtpguard's own."""
    def sign(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()
    sig = ("AWS4" + secret).encode()
    for part in ("11111111", region, "ses", "aws4_request", "SendRawEmail"):
        sig = sign(sig, part)
    return base64.b64encode(bytes([0x04]) + sig).decode()


class RotateTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_server_cert()

    def server(self, also=(), port=0, accept_old=True):
        """An upstream accepting the old login (unless accept_old is False:
        then the first of `also` is its main login) and each (user, pw) of `also`."""
        logins = ([(OLD_USER, UPSTREAM_PW)] if accept_old else []) + list(also)
        extra = ["--port", str(port)] if port else []
        for n, (user, pw) in enumerate(logins[1:]):
            path = os.path.join(self.tmp, "also-%d-%d" % (id(self), n))
            with open(path, "w") as f:
                f.write(pw)
            extra += ["--also-accept", "%s:%s" % (user, path)]
        s = AuthServer(self.tmp, self.cert, self.key, logins[0][0], logins[0][1], extra=extra)
        self.peers.append(s)
        self.addCleanup(s.stop)
        return s

    def make_relay(self, name, port):
        relay = Relay(self.tmp, LOAD_TEST_MONITOR +
                      '[upstream.test]\nhost = "localhost"\nport = %d\ntls = "starttls"\n'
                      'ca_file = "%s"\ncredential = "ses"\ntimeout_seconds = 10\n'
                      'max_connections = 2\nmax_messages_per_connection = 100\n'
                      'idle_timeout_seconds = 5\nmax_send_rate = 0\n'
                      '[delivery]\nfirst_retry = "1s"\nmax_retry_interval = "2s"\n'
                      % (port, self.ca.cert), name=name)
        self.provision(relay)
        relay.start()
        self.addCleanup(relay.stop)
        return relay

    def send(self, relay, subject):
        msg = "From: a@shop.example.com\r\nSubject: %s\r\n\r\nbody\r\n" % subject
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
            s.login("shop", APP_PW)
            s.sendmail("a@shop.example.com", ["x@example.net"], msg)

    @staticmethod
    def subject(record):
        for line in record["data"].split("\r\n"):
            if line.startswith("Subject: "):
                return line[len("Subject: "):]
        return None

    def login_of(self, server, subject):
        """The login that delivered `subject` (None while it has not arrived)."""
        for m in server.messages():
            if self.subject(m) == subject:
                return m["login"]
        return None

    @staticmethod
    def arrivals(server):
        """(record, time it was spooled upstream) for every message."""
        out = []
        for name in os.listdir(server.spool):
            if name.endswith(".json"):
                path = os.path.join(server.spool, name)
                with open(path) as f:
                    out.append((json.load(f), os.path.getmtime(path)))
        return out

    def entries(self, relay):
        r = relay.cli("vault", "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return {e["name"]: e for e in json.loads(r.stdout)}

    def rotations(self, relay):
        return [e for e in relay.audit() if e["event"] == "rotated"]

    def test_rotation_under_load_switches_new_sessions_to_the_new_login(self):
        new_pw = ses_smtp_password(NEW_IAM_SECRET, REGION)
        server = self.server(also=[(NEW_KEY_ID, new_pw)])
        relay = self.make_relay("load", server.port)
        self.send(relay, "warm-up")
        self.assertTrue(wait_for(lambda: self.login_of(server, "warm-up") == OLD_USER),
                        relay.logs())

        # Three clients keep sending (60 messages in all, over several
        # seconds) while rotate runs.
        sent, errors = [], []  # (subject, time sent); list.append is atomic

        def client(k):
            deadline = time.time() + 60
            for n in range(k, 60, 3):
                if time.time() > deadline:
                    break
                try:
                    self.send(relay, "load-%02d" % n)
                    sent.append(("load-%02d" % n, time.time()))
                except (OSError, smtplib.SMTPException) as e:
                    errors.append("load-%02d: %r" % (n, e))
                time.sleep(0.1)
        senders = [threading.Thread(target=client, args=(k,)) for k in range(3)]
        for t in senders:
            t.start()
        time.sleep(2.5)
        started = time.time()
        r = relay.cli("rotate", "test", "--from-iam-secret", "--region", REGION,
                      "--access-key-id", NEW_KEY_ID, input=NEW_IAM_SECRET + "\n")
        finished = time.time()
        for t in senders:
            t.join(90)
            self.assertFalse(t.is_alive())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ok: logged in as " + NEW_KEY_ID, r.stdout)
        self.assertIn("reloaded", r.stdout)
        self.assertIn("aws iam update-access-key --access-key-id " + OLD_USER, r.stdout)
        self.assertEqual(errors, [])
        self.assertEqual(len(sent), 60)

        # Every message arrived, exactly once.
        want = sorted(["warm-up"] + [s for s, _ in sent])
        self.assertTrue(wait_for(lambda: len(server.messages()) >= len(want), 60), relay.logs())
        time.sleep(1)
        records = server.messages()
        self.assertEqual(sorted(self.subject(m) for m in records), want)

        # Upstream sessions in the order they connected: old logins, then
        # new ones, never an old login after the cutover.
        order = []
        with open(os.path.join(server.spool, "events.jsonl")) as f:
            for line in f:
                e = json.loads(line)
                if e["event"] == "connect":
                    order.append(e["connection"])
        login_by_conn = {m["connection"]: m["login"] for m in records}
        logins = [login_by_conn[c] for c in order if c in login_by_conn]
        self.assertIn(NEW_KEY_ID, logins)
        first_new = logins.index(NEW_KEY_ID)
        self.assertEqual(set(logins[:first_new]), {OLD_USER}, logins)
        self.assertEqual(set(logins[first_new:]), {NEW_KEY_ID}, logins)
        # Mail delivered before rotate started went with the old login; mail
        # submitted after it returned, and the last message, with the new one.
        for m, arrived in self.arrivals(server):
            if arrived < started:
                self.assertEqual(m["login"], OLD_USER, self.subject(m))
        after = [s for s, t in sent if t > finished]
        self.assertTrue(after, "no message was sent after the rotation finished")
        for s in after:
            self.assertEqual(self.login_of(server, s), NEW_KEY_ID, s)
        self.assertEqual(self.login_of(server, sent[-1][0]), NEW_KEY_ID)
        old = [m for m in records if m["login"] == OLD_USER]
        self.assertGreaterEqual(len(old), 2, "the rotation came before any load")

        # The vault: the new credential with its rotation time, the old one
        # kept for rollback; the audit line names users, never the secret.
        entries = self.entries(relay)
        self.assertEqual(entries["ses"]["username"], NEW_KEY_ID)
        self.assertLessEqual(abs(entries["ses"]["rotated_at"] - finished), 60)
        self.assertEqual(entries["ses.previous"]["username"], OLD_USER)
        self.assertEqual(entries["ses.previous"]["rotation"], "rollback copy")
        rot = self.rotations(relay)
        self.assertEqual(len(rot), 1)
        self.assertEqual((rot[0]["upstream"], rot[0]["credential"], rot[0]["username"],
                          rot[0]["previous_username"]), ("test", "ses", NEW_KEY_ID, OLD_USER))
        with open(os.path.join(relay.state, "audit.jsonl")) as f:
            audit = f.read()
        for secret in (NEW_IAM_SECRET, new_pw, UPSTREAM_PW):
            self.assertNotIn(secret, audit)
            self.assertNotIn(secret, r.stdout + r.stderr)

    def test_wrong_new_secret_is_refused_and_changes_nothing(self):
        server = self.server()  # knows only the old login
        relay = self.make_relay("wrong", server.port)
        self.send(relay, "before")
        self.assertTrue(wait_for(lambda: self.login_of(server, "before") == OLD_USER),
                        relay.logs())
        before = self.entries(relay)
        with open(relay.config) as f:
            config_before = f.read()
        for args, secret in ((["--username", NEW_SMTP_USER], NEW_SMTP_PW),
                             (["--from-iam-secret", "--region", REGION, "--access-key-id",
                               NEW_KEY_ID], NEW_IAM_SECRET)):
            t0 = time.time()
            r = relay.cli("rotate", "test", *args, "--verify-timeout", "3",
                          "--verify-interval", "1", input=secret + "\n")
            self.assertEqual(r.returncode, EX_NOPERM, r.stdout + r.stderr)
            self.assertIn("nothing changed", r.stderr)
            self.assertIn("attempt 1:", r.stdout)  # it retried before giving up
            self.assertGreaterEqual(time.time() - t0, 2.5)
            self.assertNotIn(secret, r.stdout + r.stderr)
        self.assertEqual(self.entries(relay), before)
        with open(relay.config) as f:
            self.assertEqual(f.read(), config_before)
        self.assertEqual(self.rotations(relay), [])
        self.assertFalse(any(e["event"] == "config_reloaded" for e in relay.audit()))
        # Mail still flows with the old login.
        self.send(relay, "after")
        self.assertTrue(wait_for(lambda: self.login_of(server, "after") == OLD_USER),
                        relay.logs())

    def test_rollback_is_verified_and_restores_the_old_login(self):
        server = self.server(also=[(NEW_SMTP_USER, NEW_SMTP_PW)])
        relay = self.make_relay("rollback", server.port)
        r = relay.cli("rotate", "test", "--rollback")
        self.assertEqual(r.returncode, EX_NOINPUT, r.stdout + r.stderr)
        self.assertIn("ses.previous", r.stderr)
        r = relay.cli("rotate", "test", "--username", NEW_SMTP_USER, input=NEW_SMTP_PW + "\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("revoke the old password", r.stdout)
        self.send(relay, "rotated")
        self.assertTrue(wait_for(lambda: self.login_of(server, "rotated") == NEW_SMTP_USER),
                        relay.logs())
        # The same credential again is no rotation.
        r = relay.cli("rotate", "test", "--username", NEW_SMTP_USER, input=NEW_SMTP_PW + "\n")
        self.assertEqual(r.returncode, 65, r.stdout + r.stderr)

        # The old login was revoked upstream: the rollback is refused.
        port = server.port
        server.stop()
        server = self.server(also=[(NEW_SMTP_USER, NEW_SMTP_PW)], port=port, accept_old=False)
        before = self.entries(relay)
        r = relay.cli("rotate", "test", "--rollback", "--verify-timeout", "1",
                      "--verify-interval", "1")
        self.assertEqual(r.returncode, EX_NOPERM, r.stdout + r.stderr)
        self.assertEqual(self.entries(relay), before)

        # Still accepted: the rollback swaps the entries back.
        server.stop()
        server = self.server(also=[(NEW_SMTP_USER, NEW_SMTP_PW)], port=port)
        r = relay.cli("rotate", "test", "--rollback")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("rolled back", r.stdout)
        entries = self.entries(relay)
        self.assertEqual(entries["ses"]["username"], OLD_USER)
        self.assertEqual(entries["ses.previous"]["username"], NEW_SMTP_USER)
        self.send(relay, "rolled back")
        self.assertTrue(wait_for(lambda: self.login_of(server, "rolled back") == OLD_USER),
                        relay.logs())
        self.assertEqual([e["rollback"] for e in self.rotations(relay)], [False, True])

    def test_rotate_without_a_running_relay(self):
        server = self.server(also=[(NEW_SMTP_USER, NEW_SMTP_PW)])
        relay = self.make_relay("offline", server.port)
        relay.stop()
        r = relay.cli("rotate", "--username", NEW_SMTP_USER, input=NEW_SMTP_PW + "\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("no relay is running", r.stdout)
        relay.start()
        self.send(relay, "next start")
        self.assertTrue(wait_for(lambda: self.login_of(server, "next start") == NEW_SMTP_USER),
                        relay.logs())
        listing = relay.cli("vault", "list").stdout
        self.assertIn("(kept for rollback)", listing)
        self.assertNotIn("rotate soon", listing)
        # Usage errors touch nothing and read no secret.
        for args in ([], ["--username", "u", "--rollback"], ["--from-iam-secret"],
                     ["--from-iam-secret", "--access-key-id", "not-a-key-id"]):
            r = relay.cli("rotate", "test", *args)
            self.assertEqual(r.returncode, 64, (args, r.stderr))


if __name__ == "__main__":
    import unittest
    unittest.main()
