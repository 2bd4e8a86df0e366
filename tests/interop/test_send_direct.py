"""`verify` and `send --direct` against a real SMTP server (aiosmtpd) that
requires STARTTLS before AUTH and accepts exactly one login, with a
certificate from a CA this test makes."""
import os
import unittest

from harness import (EX_CONFIG, EX_NOPERM, EX_OK, EX_UNAVAILABLE, EX_USAGE, AuthServer,
                     SmtpguardTestCase, TestCA)

USER = "AKIAIOSFODNN7EXAMPLE"
PASSWORD = "BMPPgbAHoFVbze1Ud0oA5uNdXRwUXUZ+qOwphGJbl/cS"  # has '/' and '+'

MESSAGE = (
    "From: Shop <shop@example.com>\n"
    "To: Alice <alice@example.net>, \"Bob, Jr.\" <bob@example.org>\n"
    "Bcc: secret@example.org\n"
    "Subject: order 42\n"
    "\n"
    "Hello.\n"
    ".leading dot must survive\n"
    "bare LF above, CRLF below\r\n"
    "end\n")


class SendDirectTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ca = TestCA(cls.tmp)
        cert, key = cls.ca.leaf("server", dns=["localhost"], ips=["127.0.0.1"])
        cls.server = AuthServer(cls.tmp, cert, key, USER, PASSWORD)
        cls.peers.append(cls.server)
        wrong_cert, wrong_key = cls.ca.leaf("wrong", dns=["mail.elsewhere.test"])
        cls.wrong_name_server = AuthServer(cls.tmp, wrong_cert, wrong_key, USER, PASSWORD)
        cls.peers.append(cls.wrong_name_server)
        cls.config = cls.upstream_config("main.toml", cls.server.port, cls.ca.cert, "ses")
        r = cls.smtpguard("vault", "init", config=cls.config)
        assert r.returncode == 0, r.stderr
        r = cls.smtpguard("vault", "set", "ses", "--username", USER, config=cls.config,
                          input=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
        r = cls.smtpguard("vault", "set", "wrong", "--username", USER, config=cls.config,
                          input="not-the-password\n")
        assert r.returncode == 0, r.stderr

    @classmethod
    def upstream_config(cls, name, port, ca_file, credential, host="localhost"):
        ca_line = 'ca_file = "%s"\n' % ca_file if ca_file else ""
        return cls.write_config(name, (
            '[relay]\nstate_dir = "%s"\n\n'
            '[upstream.test]\nhost = "%s"\nport = %d\ntls = "starttls"\n%s'
            'credential = "%s"\ntimeout_seconds = 10\n') % (cls.state, host, port, ca_line,
                                                          credential))

    def setUp(self):
        self.server.clear()

    def test_verify_logs_in_and_sends_nothing(self):
        r = self.smtpguard("verify", "test", config=self.config)
        self.assertEqual(r.returncode, EX_OK, r.stdout + r.stderr)
        self.assertIn("TLS established", r.stdout)
        self.assertIn("logged in as " + USER, r.stdout)
        self.assertNotIn(PASSWORD, r.stdout + r.stderr)
        self.assertEqual(self.server.messages(), [])

    def test_send_direct_delivers_envelope_body_and_login(self):
        r = self.smtpguard("send", "--direct", "-t", config=self.config, input=MESSAGE)
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assertTrue(r.stdout.startswith("250 "), r.stdout)
        msgs = self.server.messages()
        self.assertEqual(len(msgs), 1)
        m = msgs[0]
        self.assertEqual(m["login"], USER)
        self.assertTrue(m["tls"])
        self.assertEqual(m["mail_from"], "shop@example.com")
        self.assertEqual(sorted(m["rcpt_tos"]),
                         ["alice@example.net", "bob@example.org", "secret@example.org"])
        data = m["data"]
        self.assertNotIn("Bcc:", data)
        self.assertNotIn("secret@example.org", data)
        self.assertIn("\r\n.leading dot must survive\r\n", data)  # un-stuffed by the server
        self.assertIn("bare LF above, CRLF below\r\nend\r\n", data)
        self.assertNotIn(PASSWORD, r.stdout + r.stderr)

    def test_explicit_sender_and_recipients(self):
        r = self.smtpguard("send", "--direct", "--upstream", "test", "-f", "bounce@example.com",
                           "carol@example.com", config=self.config, input="Subject: x\n\nhi\n")
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        m = self.server.messages()[0]
        self.assertEqual(m["mail_from"], "bounce@example.com")
        self.assertEqual(m["rcpt_tos"], ["carol@example.com"])

    def test_wrong_password_is_refused_with_noperm(self):
        cfg = self.upstream_config("wrongpw.toml", self.server.port, self.ca.cert, "wrong")
        r = self.smtpguard("send", "--direct", "x@example.com", config=cfg,
                           input="From: a@example.com\n\nhi\n")
        self.assertEqual(r.returncode, EX_NOPERM, r.stderr)
        self.assertIn("535", r.stderr)
        self.assertEqual(self.server.messages(), [])
        r = self.smtpguard("verify", config=cfg)
        self.assertEqual(r.returncode, EX_NOPERM, r.stderr)

    def test_untrusted_certificate_fails_clearly(self):
        cfg = self.upstream_config("untrusted.toml", self.server.port, "", "ses")
        r = self.smtpguard("send", "--direct", "x@example.com", config=cfg,
                           input="From: a@example.com\n\nhi\n")
        self.assertEqual(r.returncode, EX_UNAVAILABLE, r.stderr)
        self.assertIn("certificate verification failed", r.stderr)
        self.assertEqual(self.server.messages(), [])

    def test_wrong_host_name_fails_clearly(self):
        cfg = self.upstream_config("wrongname.toml", self.wrong_name_server.port, self.ca.cert,
                                   "ses")
        r = self.smtpguard("verify", config=cfg)
        self.assertEqual(r.returncode, EX_UNAVAILABLE, r.stderr)
        self.assertIn("does not match the host name", r.stderr)

    def test_missing_sender_or_recipients_is_usage_error(self):
        r = self.smtpguard("send", "--direct", config=self.config, input="From: a@example.com\n\nx\n")
        self.assertEqual(r.returncode, EX_USAGE, r.stderr)
        self.assertIn("no recipients", r.stderr)
        r = self.smtpguard("send", "--direct", "x@example.com", config=self.config,
                           input="Subject: no from\n\nx\n")
        self.assertEqual(r.returncode, EX_USAGE, r.stderr)
        self.assertIn("no sender", r.stderr)

    def test_unknown_upstream_is_config_error(self):
        r = self.smtpguard("verify", "nope", config=self.config)
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        self.assertIn("nope", r.stderr)


if __name__ == "__main__":
    unittest.main()
