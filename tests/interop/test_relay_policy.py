"""Rate limits and their actions through the running relay: counters that
survive a restart, the hold queue, and sendmail -bs on the unix socket."""
import os
import pwd
import smtplib
import subprocess
import unittest

from harness import EX_OK, Relay, SmtpguardTestCase

ME = pwd.getpwuid(os.getuid()).pw_name


def msg(sender, n):
    return ("From: %s\r\nTo: x@example.net\r\nSubject: %d\r\n\r\nbody %d\r\n" % (sender, n, n)).encode()


class RelayPolicyTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Other users (the sendmail test runs as nobody) must reach the
        # config file and the socket, as a web server's PHP user would.
        os.chmod(cls.tmp, 0o711)
        cls.relay = Relay(cls.tmp)
        os.chmod(cls.relay.config, 0o644)
        for name, action in (("limited", "defer"), ("holder", "hold")):
            r = cls.relay.cli("client", "add", name, "--password-stdin", "--allowed-sender",
                              "*@%s.example.com" % name, "--per-minute", "2" if name == "limited"
                              else "1", "--on-limit", action, input="pw-" + name + "\n")
            assert r.returncode == 0, r.stderr
        r = cls.relay.cli("client", "add", "local", "--uid", ME, "--allowed-sender",
                          "*@local.example.com")
        assert r.returncode == 0, r.stderr
        cls.relay.start()

    @classmethod
    def tearDownClass(cls):
        cls.relay.stop()
        super().tearDownClass()

    def send(self, name, n):
        sender = "a@%s.example.com" % name
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=30) as s:
            s.login(name, "pw-" + name)
            s.mail(sender)
            s.rcpt("x@example.net")
            return s.data(msg(sender, n))

    def test_rate_limit_defers_and_survives_restart(self):
        self.assertEqual(self.send("limited", 1)[0], 250)
        self.assertEqual(self.send("limited", 2)[0], 250)
        code, text = self.send("limited", 3)
        self.assertEqual(code, 451, text)
        self.assertIn(b"4.7.1", text)
        self.relay.stop()
        self.relay.start()
        code, text = self.send("limited", 4)
        self.assertEqual(code, 451, "counters were lost across the restart: %r" % text)
        refused = [e for e in self.relay.audit()
                   if e["event"] == "refused" and e.get("identity") == "limited"]
        self.assertGreaterEqual(len(refused), 2)
        self.assertTrue(all(e["rule"].startswith("rate") for e in refused), refused)

    def test_hold_action_accepts_into_the_hold_queue(self):
        held_before = self.relay.queue_ids(held=True)
        self.assertEqual(self.send("holder", 1)[0], 250)
        code, text = self.send("holder", 2)
        self.assertEqual(code, 250, text)
        qid = text.decode().rsplit(" ", 1)[-1]
        held = [i for i in self.relay.queue_ids(held=True) if i not in held_before]
        self.assertEqual(held, [qid])
        self.assertNotIn(qid, self.relay.queue_ids())
        self.assertTrue(any(e["event"] == "held" and e["id"] == qid for e in self.relay.audit()))

    def test_sendmail_bs_speaks_smtp_on_stdio(self):
        before = self.relay.queue_ids()
        script = ("EHLO me\r\nMAIL FROM:<s@local.example.com>\r\nRCPT TO:<x@example.net>\r\n"
                  "DATA\r\nFrom: s@local.example.com\r\nSubject: bs\r\n\r\nvia -bs\r\n.\r\n"
                  "QUIT\r\n")
        r = subprocess.run([os.environ["SMTPGUARD"], "--config", self.relay.config, "sendmail",
                            "-bs"], input=script.encode(), capture_output=True, timeout=30)
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        out = r.stdout.decode()
        self.assertIn("250 2.0.0 queued as", out)
        self.assertTrue(out.rstrip().endswith("221 2.0.0 Bye") or "221" in out, out)
        new = [i for i in self.relay.queue_ids() if i not in before]
        self.assertEqual(len(new), 1)
        self.assertEqual(self.relay.queued_envelope(new[0])["identity"], "local")

    def test_called_as_sendmail_by_argv0(self):
        link = os.path.join(self.tmp, "sendmail")
        if not os.path.exists(link):
            os.symlink(os.environ["SMTPGUARD"], link)
        before = self.relay.queue_ids()
        r = subprocess.run([link, "-oi", "-odb", "-fargv0@local.example.com", "x@example.net"],
                           input=b"Subject: argv0\n\nvia a link named sendmail\n",
                           capture_output=True, timeout=30,
                           env=dict(os.environ, SMTPGUARD_CONFIG=self.relay.config))
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        new = [i for i in self.relay.queue_ids() if i not in before]
        self.assertEqual(len(new), 1)
        env = self.relay.queued_envelope(new[0])
        self.assertEqual(env["mail_from"], "argv0@local.example.com")
        data = self.relay.queued_data(new[0])
        # The MSA adds what the message lacks, with CRLF line ends on the wire.
        self.assertIn(b"From: <argv0@local.example.com>\r\n", data)
        self.assertIn(b"\r\nMessage-ID: <", data)
        self.assertTrue(data.endswith(b"via a link named sendmail\r\n"), data)

    def test_sendmail_without_identity_is_refused_with_noperm(self):
        r = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                            os.environ["SMTPGUARD"], "--config", self.relay.config, "sendmail",
                            "-t", "-i"], input=b"From: n@nobody.example\r\nTo: x@example.net\r\n\r\nhi\r\n",
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn(b"530", r.stderr)


if __name__ == "__main__":
    unittest.main()
