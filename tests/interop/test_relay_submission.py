"""The relay's receiving side against real clients: swaks, msmtp, PHPMailer,
Python's smtplib, PHP mail() and sendmail through the unix socket. Each
authenticates as its own identity and each message must land in the spool
byte-exact; the policy refusals, open-relay tricks and smuggling sequences
must not get anything through."""
import os
import pwd
import smtplib
import socket
import subprocess
import time
import unittest

from harness import EX_OK, Relay, SmtpguardTestCase

SHOP_PW = "s3cret/with&odd+chars"
ME = pwd.getpwuid(os.getuid()).pw_name


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def message(sender, rcpt, subject, body="Hello.\n.leading dot\nend\n"):
    return crlf("From: <%s>\nTo: <%s>\nSubject: %s\nDate: Fri, 27 Nov 2026 10:00:00 +0000\n"
                "Message-ID: <%s@test>\n\n%s" % (sender, rcpt, subject, subject.replace(" ", "-"),
                                                 body))


class RawClient:
    """A hand-driven SMTP client for the cases real clients refuse to send."""

    def __init__(self, port, source="127.0.0.1"):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                          source_address=(source, 0))
        self.buf = b""
        self.reply()

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    return "".join(lines) or "closed"
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode("utf-8", "replace")
            lines.append(text + "\n")
            if len(text) < 4 or text[3] != "-":
                return "".join(lines)

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\r\n")
        return self.reply()

    def send_raw(self, data):
        self.s.sendall(data)

    def login(self, user, password):
        import base64
        self.cmd("EHLO raw.test")
        token = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        return self.cmd("AUTH PLAIN " + token)

    def close(self):
        self.s.close()


class RelaySubmissionTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.relay = Relay(cls.tmp, 'max_message_size = "200KB"\n')
        r = cls.relay.cli("client", "add", "shop", "--password-stdin", "--allowed-sender",
                          "*@shop.example.com", "--max-recipients", "5", input=SHOP_PW + "\n")
        assert r.returncode == 0, r.stderr
        r = cls.relay.cli("client", "add", "phpapp", "--uid", ME, "--allowed-sender",
                          "*@php.example.com")
        assert r.returncode == 0, r.stderr
        r = cls.relay.cli("client", "add", "legacy", "--ip", "127.0.0.3/32", "--allowed-sender",
                          "app@legacy.example.com")
        assert r.returncode == 0, r.stderr
        cls.relay.start()

    @classmethod
    def tearDownClass(cls):
        cls.relay.stop()
        super().tearDownClass()

    def new_ids(self, before, wait=5.0):
        deadline = time.time() + wait
        while True:
            ids = [i for i in self.relay.queue_ids() if i not in before]
            if ids or time.time() > deadline:
                return ids
            time.sleep(0.05)

    def assert_one_exact(self, before, data, sender, rcpts, identity):
        ids = self.new_ids(before)
        self.assertEqual(len(ids), 1, ids)
        self.assertEqual(self.relay.queued_data(ids[0]), data.encode())
        env = self.relay.queued_envelope(ids[0])
        self.assertEqual(env["mail_from"], sender)
        self.assertEqual([r["address"] for r in env["recipients"]], rcpts)
        self.assertEqual(env["identity"], identity)
        return ids[0]

    # --- real clients, each with its own identity -------------------------------------------

    def test_swaks_auth_plain(self):
        before = self.relay.queue_ids()
        data = message("a@shop.example.com", "x@example.net", "swaks test")
        path = os.path.join(self.tmp, "swaks.eml")
        with open(path, "w", newline="") as f:
            f.write(data[:-2])  # swaks adds the final CRLF before the dot itself
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.relay.port),
                            "--auth", "PLAIN", "--auth-user", "shop", "--auth-password", SHOP_PW,
                            "--from", "a@shop.example.com", "--to", "x@example.net",
                            "--data", "@" + path, "--suppress-data"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_one_exact(before, data, "a@shop.example.com", ["x@example.net"], "shop")

    def test_msmtp_auth_login(self):
        before = self.relay.queue_ids()
        data = message("b@shop.example.com", "y@example.net", "msmtp test")
        rc = os.path.join(self.tmp, "msmtprc")
        with open(rc, "w") as f:
            f.write("account default\nhost 127.0.0.1\nport %d\nauth login\nuser shop\n"
                    "password %s\ntls off\nfrom b@shop.example.com\n" % (self.relay.port, SHOP_PW))
        os.chmod(rc, 0o600)
        r = subprocess.run(["msmtp", "-C", rc, "y@example.net"], input=data.encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_one_exact(before, data, "b@shop.example.com", ["y@example.net"], "shop")

    def test_python_smtplib(self):
        before = self.relay.queue_ids()
        data = message("c@shop.example.com", "z@example.net", "smtplib test")
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=30) as s:
            s.login("shop", SHOP_PW)
            s.sendmail("c@shop.example.com", ["z@example.net"], data.encode())
        self.assert_one_exact(before, data, "c@shop.example.com", ["z@example.net"], "shop")

    def test_phpmailer(self):
        before = self.relay.queue_ids()
        script = """<?php
require '/usr/share/php/libphp-phpmailer/autoload.php';
$m = new PHPMailer\\PHPMailer\\PHPMailer(true);
$m->isSMTP(); $m->Host = '127.0.0.1'; $m->Port = %d; $m->SMTPAuth = true;
$m->Username = 'shop'; $m->Password = getenv('SHOP_PW');
$m->SMTPSecure = ''; $m->SMTPAutoTLS = false;
$m->setFrom('d@shop.example.com'); $m->addAddress('w@example.net');
$m->Subject = 'phpmailer test'; $m->Body = "body from phpmailer";
$m->send(); echo "sent\\n";
""" % self.relay.port
        r = subprocess.run(["php"], input=script, capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, SHOP_PW=SHOP_PW))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ids = self.new_ids(before)
        self.assertEqual(len(ids), 1)
        env = self.relay.queued_envelope(ids[0])
        self.assertEqual(env["identity"], "shop")
        self.assertEqual(env["mail_from"], "d@shop.example.com")
        data = self.relay.queued_data(ids[0])
        self.assertIn(b"Subject: phpmailer test\r\n", data)
        self.assertIn(b"body from phpmailer", data)

    def test_php_mail_through_sendmail(self):
        before = self.relay.queue_ids()
        path = "%s --config %s sendmail -t -i" % (os.environ.get("SMTPGUARD"), self.relay.config)
        r = subprocess.run(["php", "-d", "sendmail_path=" + path, "-r",
                            'exit(mail("v@example.net", "php mail test", "body via mail()", '
                            '"From: app@php.example.com") ? 0 : 3);'],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ids = self.new_ids(before)
        self.assertEqual(len(ids), 1)
        env = self.relay.queued_envelope(ids[0])
        self.assertEqual(env["identity"], "phpapp")
        self.assertEqual(env["mail_from"], "app@php.example.com")
        self.assertEqual([x["address"] for x in env["recipients"]], ["v@example.net"])
        self.assertIn(b"Subject: php mail test", self.relay.queued_data(ids[0]))

    def test_sendmail_is_byte_exact(self):
        before = self.relay.queue_ids()
        data = message("e@php.example.com", "u@example.net", "sendmail test")
        r = self.relay.cli("sendmail", "-t", "-i", input=data)
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assert_one_exact(before, data, "e@php.example.com", ["u@example.net"], "phpapp")

    def test_address_identity(self):
        before = self.relay.queue_ids()
        c = RawClient(self.relay.port, source="127.0.0.3")
        c.cmd("EHLO legacy.test")
        self.assertTrue(c.cmd("MAIL FROM:<app@legacy.example.com>").startswith("250"))
        self.assertTrue(c.cmd("RCPT TO:<t@example.net>").startswith("250"))
        self.assertTrue(c.cmd("DATA").startswith("354"))
        data = message("app@legacy.example.com", "t@example.net", "legacy")
        stuffed = data.replace("\r\n.", "\r\n..")
        c.send_raw(stuffed.encode() + b".\r\n")
        self.assertTrue(c.reply().startswith("250"))
        c.close()
        self.assert_one_exact(before, data, "app@legacy.example.com", ["t@example.net"],
                              "legacy")

    # --- refusals -------------------------------------------------------------------------

    def test_no_identity_relays_nothing_whatever_the_address(self):
        before = self.relay.queue_ids()
        tricks = ["a@shop.example.com", "a%x@shop.example.com", "\"a@shop.example.com\"@evil.test",
                  "@shop.example.com:a@evil.test", "evil.test!a@shop.example.com",
                  "a@[127.0.0.1]", "a@shop.example.com@evil.test", "", "postmaster"]
        for sender in tricks:
            c = RawClient(self.relay.port)
            c.cmd("EHLO anon.test")
            r = c.cmd("MAIL FROM:<%s>" % sender)
            self.assertFalse(r.startswith("250"), (sender, r))
            self.assertFalse(c.cmd("RCPT TO:<x@example.net>").startswith("250"), sender)
            c.close()
        self.assertEqual(self.new_ids(before, wait=0.2), [])

    def test_policy_refusals_name_the_rule(self):
        c = RawClient(self.relay.port)
        self.assertTrue(c.login("shop", SHOP_PW).startswith("235"))
        r = c.cmd("MAIL FROM:<someone@evil.test>")
        self.assertTrue(r.startswith("550 5.7.1"), r)
        for sender in ["a@shop.example.com@evil.test", "@shop.example.com:a@evil.test",
                       "\"a@shop.example.com\"@evil.test", "a@[10.0.0.1]"]:
            r = c.cmd("MAIL FROM:<%s>" % sender)
            self.assertRegex(r, "^5", sender)
        self.assertTrue(c.cmd("MAIL FROM:<ok@shop.example.com>").startswith("250"))
        for i in range(5):
            self.assertTrue(c.cmd("RCPT TO:<r%d@example.net>" % i).startswith("250"))
        self.assertTrue(c.cmd("RCPT TO:<r6@example.net>").startswith("452"))
        self.assertTrue(c.cmd("RSET").startswith("250"))
        # Header From outside the allowed senders: refused after DATA.
        c.cmd("MAIL FROM:<ok@shop.example.com>")
        c.cmd("RCPT TO:<x@example.net>")
        c.cmd("DATA")
        c.send_raw(crlf("From: ceo@bank.example\nSubject: x\n\nhi\n.\n").encode())
        r = c.reply()
        self.assertTrue(r.startswith("550"), r)
        c.close()
        rules = [e.get("rule") for e in self.relay.audit() if e["event"] == "refused"]
        self.assertTrue(any(rules), rules)
        self.assertNotIn(SHOP_PW, open(os.path.join(self.relay.state, "audit.jsonl")).read())

    def test_wrong_password(self):
        c = RawClient(self.relay.port)
        self.assertTrue(c.login("shop", "wrong").startswith("535"))
        self.assertTrue(c.cmd("MAIL FROM:<a@shop.example.com>").startswith("530"))
        c.close()

    def test_oversized_and_overlong(self):
        before = self.relay.queue_ids()
        c = RawClient(self.relay.port)
        c.login("shop", SHOP_PW)
        self.assertTrue(c.cmd("MAIL FROM:<a@shop.example.com> SIZE=999999999").startswith("552"))
        c.cmd("MAIL FROM:<a@shop.example.com>")
        c.cmd("RCPT TO:<x@example.net>")
        c.cmd("DATA")
        c.send_raw(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 300 + b".\r\n")
        self.assertTrue(c.reply().startswith("552"))
        c.cmd("MAIL FROM:<a@shop.example.com>")
        c.cmd("RCPT TO:<x@example.net>")
        c.cmd("DATA")
        c.send_raw(b"Subject: long line\r\n\r\n" + b"y" * 1200 + b"\r\n.\r\n")
        self.assertRegex(c.reply(), "^5")
        self.assertRegex(c.cmd("NOOP " + "z" * 600), "^5")
        self.assertTrue(c.cmd("NOOP").startswith("250"))
        c.close()
        self.assertEqual(self.new_ids(before, wait=0.2), [])

    def test_smuggling_never_makes_two_messages(self):
        sequences = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r\n\x00.\r\n", b"\r.\r\n",
                     b"\r\n.\n"]
        for seq in sequences:
            before = self.relay.queue_ids()
            c = RawClient(self.relay.port)
            c.login("shop", SHOP_PW)
            c.cmd("MAIL FROM:<a@shop.example.com>")
            c.cmd("RCPT TO:<x@example.net>")
            c.cmd("DATA")
            smuggled = (b"From: a@shop.example.com\r\n\r\nfirst" + seq +
                        b"MAIL FROM:<a@shop.example.com>\r\nRCPT TO:<victim@example.net>\r\n"
                        b"DATA\r\nFrom: a@shop.example.com\r\n\r\nsmuggled\r\n.\r\n")
            c.send_raw(smuggled)
            replies = c.reply()
            time.sleep(0.1)
            c.close()
            ids = self.new_ids(before, wait=0.3)
            self.assertLessEqual(len(ids), 1, (seq, replies))
            for i in ids:
                env = self.relay.queued_envelope(i)
                self.assertEqual([r["address"] for r in env["recipients"]], ["x@example.net"])

    def test_identities_change_without_restart(self):
        c = RawClient(self.relay.port)  # an open connection must survive the change
        c.cmd("EHLO keep.test")
        r = self.relay.cli("client", "add", "newapp", "--password-stdin", "--allowed-sender",
                           "*@new.example.com", input="pw-new-app\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=30) as s:
            s.login("newapp", "pw-new-app")
            s.sendmail("n@new.example.com", ["x@example.net"],
                       message("n@new.example.com", "x@example.net", "new app"))
        r = self.relay.cli("client", "rm", "newapp")
        self.assertEqual(r.returncode, 0, r.stderr)
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=30) as s:
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                s.login("newapp", "pw-new-app")
        self.assertTrue(c.cmd("NOOP").startswith("250"))
        c.close()


if __name__ == "__main__":
    unittest.main()
