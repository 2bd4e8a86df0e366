"""End to end with real clients: swaks, msmtp, PHPMailer, Python's smtplib,
PHP mail() through the sendmail entry point and `smtpguard sendmail`, each
under its own identity, through the relay to a real upstream (aiosmtpd that
requires STARTTLS and one exact login). What arrives upstream must carry the
client's envelope, the exact bytes the relay accepted and the upstream
credential's login, never the app's. Then the upstream pool: many messages
over few connections, and a new connection after max_messages_per_connection.
"""
import collections
import contextlib
import os
import pwd
import shutil
import signal
import smtplib
import subprocess
import threading
import time
import unittest

from harness import EX_OK, SMTPGUARD, AuthServer, Relay, SmtpguardTestCase, TestCA

USER = "AKIAIOSFODNN7EXAMPLE"  # the upstream credential's username
UPSTREAM_PW = "BMPPgbAHoFVbze1Ud0oA5uNdXRwUXUZ+qOwphGJbl/cS"
ROOT = pwd.getpwuid(os.getuid()).pw_name
WEB_USER = "www-data"  # PHP mail() runs as the web server's user, as on a real host

# Password identities: name -> (password, sender domain). Each client logs in as its own.
APPS = {
    "swaks-app": ("pw-swaks/&+", "swaks.example.com"),
    "msmtp-app": ("pw-msmtp", "msmtp.example.com"),
    "phpmailer-app": ("pw-phpmailer", "phpmailer.example.com"),
    "python-app": ("pw-python", "python.example.com"),
}
# uid identities (the relay's unix socket): name -> (user, sender domain)
UID_APPS = {
    "php-mail-app": (WEB_USER, "www.example.com"),
    "cron-app": (ROOT, "cron.example.com"),
}


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def message(sender, rcpt, subject, body="Hello.\n.leading dot\n..two dots\nend\n"):
    return crlf("From: <%s>\nTo: <%s>\nSubject: %s\nDate: Fri, 27 Nov 2026 10:00:00 +0000\n"
                "Message-ID: <%s@test>\n\n%s" % (sender, rcpt, subject, subject.replace(" ", "-"),
                                                 body))


def wait_for(predicate, seconds=30, step=0.1):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@contextlib.contextmanager
def delivery_frozen(relay):
    """SIGSTOP the deliverer so a submitted message stays in the spool long
    enough to read the relay's own copy of it; SIGCONT on the way out."""
    pid = relay.worker_pid("sg-deliverer")
    if pid is None:
        raise AssertionError("no sg-deliverer child of the relay: %s" % relay.workers())
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


# --- the clients, driven the way test_relay_submission.py drives them -----------------------

def send_swaks(relay, tmp, user, pw, sender, rcpt, data):
    path = os.path.join(tmp, "swaks-%d.eml" % threading.get_ident())
    with open(path, "w", newline="") as f:
        f.write(data[:-2])  # swaks adds the final CRLF before the dot itself
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(relay.port),
                        "--auth", "PLAIN", "--auth-user", user, "--auth-password", pw,
                        "--from", sender, "--to", rcpt, "--data", "@" + path, "--suppress-data"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def send_msmtp(relay, tmp, user, pw, sender, rcpt, data):
    rc = os.path.join(tmp, "msmtprc-%d" % threading.get_ident())
    with open(rc, "w") as f:
        f.write("account default\nhost 127.0.0.1\nport %d\nauth login\nuser %s\npassword %s\n"
                "tls off\nfrom %s\n" % (relay.port, user, pw, sender))
    os.chmod(rc, 0o600)
    r = subprocess.run(["msmtp", "-C", rc, rcpt], input=data.encode(), capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr


def send_smtplib(relay, user, pw, sender, rcpts, data):
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
        s.login(user, pw)
        s.sendmail(sender, rcpts, data.encode())


PHPMAILER = """<?php
require '/usr/share/php/libphp-phpmailer/autoload.php';
$m = new PHPMailer\\PHPMailer\\PHPMailer(true);
$m->isSMTP(); $m->Host = '127.0.0.1'; $m->Port = (int)getenv('PORT'); $m->SMTPAuth = true;
$m->Username = getenv('APP_USER'); $m->Password = getenv('APP_PW');
$m->SMTPSecure = ''; $m->SMTPAutoTLS = false;
$m->setFrom(getenv('FROM')); $m->addAddress(getenv('TO')); $m->addCC(getenv('CC'));
$m->Subject = getenv('SUBJECT'); $m->Body = getenv('BODY');
$m->addCustomHeader('X-Test-Token', getenv('TOKEN'));
$m->send(); echo "sent\\n";
"""


def send_phpmailer(relay, user, pw, sender, to, cc, subject, body, token):
    env = dict(os.environ, PORT=str(relay.port), APP_USER=user, APP_PW=pw, FROM=sender, TO=to,
               CC=cc, SUBJECT=subject, BODY=body, TOKEN=token)
    r = subprocess.run(["php"], input=PHPMAILER, capture_output=True, text=True, timeout=60,
                       env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def send_php_mail(relay, binary, to, subject, body, headers):
    # Run as the web user; `env` hands the values over without PHP quoting.
    r = subprocess.run(["runuser", "-u", WEB_USER, "--", "env", "TO=" + to, "SUBJECT=" + subject,
                        "BODY=" + body, "HEADERS=" + headers, "php", "-d",
                        "sendmail_path=%s --config %s sendmail -t -i" % (binary, relay.config),
                        "-r",
                        "exit(mail(getenv('TO'), getenv('SUBJECT'), getenv('BODY'), "
                        "getenv('HEADERS')) ? 0 : 3);"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def send_sendmail(relay, data):
    r = relay.cli("sendmail", "-t", "-i", input=data)
    assert r.returncode == EX_OK, r.stderr


# --- fixtures -------------------------------------------------------------------------------

class E2ECase(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The web user must reach the relay's socket and config: pass-through only.
        os.chmod(cls.tmp, 0o711)
        # A copy of the binary the web user can run, wherever the build tree is.
        cls.binary = os.path.join(cls.tmp, "smtpguard")
        shutil.copy(shutil.which(SMTPGUARD), cls.binary)
        os.chmod(cls.binary, 0o755)
        cls.ca = TestCA(cls.tmp)
        cls.cert, cls.key = cls.ca.leaf("server", dns=["localhost"], ips=["127.0.0.1"])

    @classmethod
    def upstream(cls):
        server = AuthServer(cls.tmp, cls.cert, cls.key, USER, UPSTREAM_PW)
        cls.peers.append(server)
        return server

    @classmethod
    def make_relay(cls, server, name, upstream_extra=""):
        relay = Relay(cls.tmp, '[delivery]\nfirst_retry = "1s"\nmax_retry_interval = "2s"\n'
                      '[upstream.test]\nhost = "localhost"\nport = %d\ntls = "starttls"\n'
                      'ca_file = "%s"\ncredential = "ses"\ntimeout_seconds = 10\n%s'
                      % (server.port, cls.ca.cert, upstream_extra), name=name)
        os.chmod(relay.config, 0o644)  # no secret in it; `sendmail` as the web user reads it
        steps = [(["vault", "init"], None),
                 (["vault", "set", "ses", "--username", USER], UPSTREAM_PW + "\n")]
        for name_, (pw, domain) in APPS.items():
            steps.append((["client", "add", name_, "--password-stdin", "--allowed-sender",
                           "*@" + domain], pw + "\n"))
        for name_, (user, domain) in UID_APPS.items():
            steps.append((["client", "add", name_, "--uid", user, "--allowed-sender",
                           "*@" + domain], None))
        for args, stdin in steps:
            r = relay.cli(*args, input=stdin)
            assert r.returncode == 0, (args, r.stderr)
        relay.start()
        return relay

    def records_with(self, server, marker):
        return [m for m in server.messages() if marker in m["data"]]


class RealClientsEndToEnd(E2ECase):
    """One relay, one upstream; each client sends one message under its identity."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls.upstream()
        cls.relay = cls.make_relay(cls.server, "clients")

    @classmethod
    def tearDownClass(cls):
        cls.relay.stop()
        super().tearDownClass()

    def deliver(self, send, marker, sender, rcpts, identity):
        """Runs `send` with delivery frozen, reads the relay's spool copy, lets
        the deliverer go and returns (spooled bytes, the upstream record)."""
        with delivery_frozen(self.relay):
            before = set(self.relay.queue_ids())
            send()
            # Every client here returns only after the relay's 250 (after the fsync).
            ids = sorted(set(self.relay.queue_ids()) - before)
            self.assertEqual(len(ids), 1, ids)
            spooled = self.relay.queued_data(ids[0])
            env = self.relay.queued_envelope(ids[0])
        self.assertEqual(env["identity"], identity)
        self.assertTrue(wait_for(lambda: self.records_with(self.server, marker), 30),
                        self.relay.logs())
        self.assertTrue(wait_for(lambda: ids[0] not in self.relay.queue_ids(), 10))
        time.sleep(0.2)  # a duplicate, if the relay made one, would show by now
        found = self.records_with(self.server, marker)
        self.assertEqual(len(found), 1, "delivered more than once")
        rec = found[0]
        self.assertEqual(rec["mail_from"], sender)
        self.assertEqual(sorted(rec["rcpt_tos"]), sorted(rcpts))
        self.assertEqual(rec["login"], USER)  # the upstream credential, never the app's
        self.assertNotEqual(rec["login"], identity)
        self.assertTrue(rec["tls"])
        # The relay passes on exactly what it accepted and spooled.
        self.assertEqual(rec["data"].encode("utf-8", "surrogateescape"), spooled)
        return spooled, rec

    def test_swaks(self):
        data = message("a@swaks.example.com", "x@example.net", "e2e swaks")
        pw = APPS["swaks-app"][0]
        spooled, _ = self.deliver(
            lambda: send_swaks(self.relay, self.tmp, "swaks-app", pw, "a@swaks.example.com",
                               "x@example.net", data),
            "e2e swaks", "a@swaks.example.com", ["x@example.net"], "swaks-app")
        self.assertEqual(spooled, data.encode())

    def test_msmtp(self):
        data = message("b@msmtp.example.com", "y@example.net", "e2e msmtp")
        pw = APPS["msmtp-app"][0]
        spooled, _ = self.deliver(
            lambda: send_msmtp(self.relay, self.tmp, "msmtp-app", pw, "b@msmtp.example.com",
                               "y@example.net", data),
            "e2e msmtp", "b@msmtp.example.com", ["y@example.net"], "msmtp-app")
        self.assertEqual(spooled, data.encode())

    def test_python_smtplib(self):
        data = message("c@python.example.com", "z@example.net", "e2e smtplib")
        rcpts = ["z@example.net", "z2@example.org"]
        pw = APPS["python-app"][0]
        spooled, _ = self.deliver(
            lambda: send_smtplib(self.relay, "python-app", pw, "c@python.example.com", rcpts,
                                 data),
            "e2e smtplib", "c@python.example.com", rcpts, "python-app")
        self.assertEqual(spooled, data.encode())

    def test_phpmailer(self):
        # PHPMailer builds the message itself: check the parts we control.
        body = "body from phpmailer\nsecond line\n.leading dot"
        pw = APPS["phpmailer-app"][0]
        spooled, _ = self.deliver(
            lambda: send_phpmailer(self.relay, "phpmailer-app", pw, "d@phpmailer.example.com",
                                   "w@example.net", "cc@example.org", "e2e phpmailer", body,
                                   "tok-phpmailer-1"),
            "e2e phpmailer", "d@phpmailer.example.com", ["w@example.net", "cc@example.org"],
            "phpmailer-app")
        head, _, text = spooled.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.assertIn(b"Subject: e2e phpmailer", lines)
        self.assertIn(b"X-Test-Token: tok-phpmailer-1", lines)
        self.assertIn(b"From: d@phpmailer.example.com", lines)
        self.assertIn(b"To: w@example.net", lines)
        self.assertIn(b"Cc: cc@example.org", lines)
        # PHPMailer ends the body with an empty line of its own.
        self.assertEqual(text, crlf(body + "\n\n").encode())

    @unittest.skipUnless(os.getuid() == 0, "needs root to run PHP as the web user")
    def test_php_mail_through_sendmail(self):
        body = "body via mail()\nsecond line\n.leading dot"
        spooled, _ = self.deliver(
            lambda: send_php_mail(self.relay, self.binary, "v@example.net", "e2e php mail", body,
                                  "From: app@www.example.com\nX-Test-Token: tok-php-mail-1"),
            "e2e php mail", "app@www.example.com", ["v@example.net"], "php-mail-app")
        head, _, text = spooled.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.assertIn(b"To: v@example.net", lines)
        self.assertIn(b"Subject: e2e php mail", lines)
        self.assertIn(b"From: app@www.example.com", lines)
        self.assertIn(b"X-Test-Token: tok-php-mail-1", lines)
        self.assertEqual(text, crlf(body + "\n").encode())

    def test_smtpguard_sendmail(self):
        data = message("e@cron.example.com", "u@example.net", "e2e sendmail")
        spooled, _ = self.deliver(lambda: send_sendmail(self.relay, data), "e2e sendmail",
                                  "e@cron.example.com", ["u@example.net"], "cron-app")
        self.assertEqual(spooled, data.encode())


class UpstreamConnections(E2ECase):
    """The pool: many messages share few upstream connections."""

    def burst(self, relay, per_client):
        """Submits `per_client` messages from each of four clients at once;
        returns the subjects sent."""
        subjects = []
        errors = []
        lock = threading.Lock()

        def run(client):
            try:
                for n in range(per_client):
                    subject = "burst %s %d" % (client, n)
                    if client == "python":
                        sender = "p@python.example.com"
                        send_smtplib(relay, "python-app", APPS["python-app"][0], sender,
                                     ["r@example.net"], message(sender, "r@example.net", subject))
                    elif client == "swaks":
                        sender = "s@swaks.example.com"
                        send_swaks(relay, self.tmp, "swaks-app", APPS["swaks-app"][0], sender,
                                   "r@example.net", message(sender, "r@example.net", subject))
                    elif client == "msmtp":
                        sender = "m@msmtp.example.com"
                        send_msmtp(relay, self.tmp, "msmtp-app", APPS["msmtp-app"][0], sender,
                                   "r@example.net", message(sender, "r@example.net", subject))
                    else:
                        sender = "c@cron.example.com"
                        send_sendmail(relay, message(sender, "r@example.net", subject))
                    with lock:
                        subjects.append(subject)
            except Exception as e:  # reported by the main thread
                errors.append(repr(e))

        threads = [threading.Thread(target=run, args=(c,))
                   for c in ("python", "swaks", "msmtp", "sendmail")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        return subjects

    def arrived(self, server, subjects, relay):
        want = len(subjects)
        self.assertTrue(wait_for(lambda: len(server.messages()) >= want, 60),
                        "%d of %d arrived\n%s" % (len(server.messages()), want, relay.logs()))
        self.assertTrue(wait_for(lambda: relay.queue_ids() == [], 20))
        msgs = server.messages()
        got = collections.Counter(s for m in msgs for s in subjects
                                  if "Subject: %s\r\n" % s in m["data"])
        self.assertEqual(sorted(got), sorted(subjects))
        self.assertEqual(max(got.values()), 1, "duplicates")
        for m in msgs:
            self.assertEqual(m["login"], USER)
            self.assertTrue(m["tls"])
        return msgs

    def test_many_messages_few_connections(self):
        server = self.upstream()
        relay = self.make_relay(server, "pool", "max_connections = 2\n"
                                "max_messages_per_connection = 100\nidle_timeout_seconds = 30\n")
        self.addCleanup(relay.stop)
        subjects = self.burst(relay, 10)
        self.assertEqual(len(subjects), 40)
        msgs = self.arrived(server, subjects, relay)
        connections = collections.Counter(m["connection"] for m in msgs)
        # Two pooled sessions, kept open between messages (idle 30 s), carry all 40.
        self.assertLessEqual(len(connections), 2, dict(connections))

    def test_max_messages_per_connection(self):
        server = self.upstream()
        relay = self.make_relay(server, "per-conn", "max_connections = 2\n"
                                "max_messages_per_connection = 5\nidle_timeout_seconds = 30\n")
        self.addCleanup(relay.stop)
        subjects = self.burst(relay, 5)
        self.assertEqual(len(subjects), 20)
        msgs = self.arrived(server, subjects, relay)
        connections = collections.Counter(m["connection"] for m in msgs)
        self.assertGreaterEqual(len(connections), 4, dict(connections))
        self.assertLessEqual(max(connections.values()), 5, dict(connections))


if __name__ == "__main__":
    unittest.main()
