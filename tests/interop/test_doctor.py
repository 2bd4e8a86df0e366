"""`smtpguard doctor` (the real binary) on a prepared --root with known
problems: plaintext secrets in an Exim passwd.client (our own vault
credential: "ACTIVE") and a Postfix sasl_passwd, a php.ini whose
sendmail_path is /usr/sbin/sendmail, a world-readable key file, a credential past rotation_max_days (the clock is moved
with the hidden --now, since `vault set` stamps the real time), and a real
listener found through the real /proc (the hidden --smtp-ports names the
test's free port, as 25 cannot be used here). Exact findings, nothing else.
An upstream with tls = "none" to a remote host cannot be tested here: the
configuration loader refuses it (doctor then exits 78 with its message)."""
import json
import os
import socket
import time
import unittest

from harness import (EX_CONFIG, EX_OK, EX_USAGE, UPSTREAM_PW, UPSTREAM_USER, SmtpguardTestCase,
                     free_port)

# A second upstream secret, shaped like an SES v4 password, not our own.
OTHER_USER = "AKIAZ2QWERTY7UIOPASD"
OTHER_PW = "BFq3Zs0PplvQ9xYtKc2mWnE8rT5uJiH7gL1oA4dSfGhJ"
DAY = 86400


def put(root, rel, text, mode=0o644):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class DoctorTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = os.path.join(cls.tmp, "root")
        put(cls.root, "etc/exim4/update-exim4.conf.conf", "dc_use_split_config='true'\n")
        put(cls.root, "etc/exim4/passwd.client",
            "127.0.0.1:exim:LocalRelayPassword123\n"
            "*.amazonaws.com:%s:%s\n" % (UPSTREAM_USER, UPSTREAM_PW), 0o640)
        put(cls.root, "etc/postfix/sasl_passwd",
            "[email-smtp.eu-west-1.amazonaws.com]:587 %s:%s\n" % (OTHER_USER, OTHER_PW), 0o600)
        put(cls.root, "etc/postfix/main.cf", "relayhost = [email-smtp.eu-west-1.amazonaws.com]:587\n")
        put(cls.root, "etc/php/8.2/cli/php.ini",
            "[mail function]\nsendmail_path = /usr/sbin/sendmail -t -i\n")
        cls.config = cls.write_config("bad.toml", (
            '[relay]\nstate_dir = "%s"\n'
            '[vault]\nrotation_warn_days = 10\nrotation_max_days = 20\n'
            '[upstream.ses]\nhost = "email-smtp.eu-west-1.amazonaws.com"\ncredential = "ses"\n'
        ) % cls.state)
        for args, stdin in ((["vault", "init"], None),
                            (["vault", "set", "ses", "--username", UPSTREAM_USER],
                             UPSTREAM_PW + "\n")):
            r = cls.smtpguard(*args, config=cls.config, input=stdin)
            assert r.returncode == 0, r.stderr
        os.chmod(cls.state, 0o751)
        os.chmod(os.path.join(cls.state, "master.key"), 0o644)
        # A real listener on every address, on a port no one else uses.
        cls.port = free_port()
        cls.listener = socket.socket()
        cls.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        cls.listener.bind(("0.0.0.0", cls.port))
        cls.listener.listen(1)

    @classmethod
    def tearDownClass(cls):
        cls.listener.close()
        super().tearDownClass()

    def doctor(self, *args, config=None):
        r = self.smtpguard("doctor", "--root", self.root, "--smtp-ports", str(self.port), *args,
                           config=config or self.config)
        for secret in (UPSTREAM_PW, OTHER_PW, "LocalRelayPassword123"):
            self.assertNotIn(secret, r.stdout + r.stderr)
        return r

    def test_known_problems_exactly(self):
        now = int(time.time()) + 30 * DAY
        r = self.doctor("--json", "--now", str(now))
        self.assertEqual(r.returncode, 1, r.stderr)
        doc = json.loads(r.stdout)
        got = [(f["severity"], f["id"], f["title"]) for f in doc["findings"]]
        root = self.root
        self.assertEqual(got, [
            ("high", "key-file-mode", "the master key file is accessible to every user"),
            ("high", "mta-plaintext-secret",
             "ACTIVE credential exposed in %s/etc/exim4/passwd.client" % root),
            ("high", "mta-plaintext-secret",
             "plaintext upstream secret in %s/etc/postfix/sasl_passwd" % root),
            ("medium", "credential-overdue", "credential ses is overdue for rotation"),
            ("medium", "smtp-port-public", "python3 listens on 0.0.0.0:%d" % self.port),
            ("medium", "php-sendmail-path", "PHP 8.2 cli: PHP mail() does not go through smtpguard"),
            ("low", "egress-no-rule",
             "no egress rule found: any local user can connect to remote SMTP ports"),
        ])
        self.assertEqual(doc["summary"], {"high": 3, "medium": 3, "low": 1, "info": 0})
        by_id = {f["id"]: f for f in doc["findings"]}
        self.assertIn("pid %d" % os.getpid(), by_id["smtp-port-public"]["detail"])
        self.assertIn("30 days ago", by_id["credential-overdue"]["detail"])
        exim = doc["findings"][1]["detail"]
        self.assertIn("line 2:", exim)
        self.assertNotIn("line 1:", exim)  # the relay's own loopback entry
        self.assertIn("ACTIVE credential exposed", exim)
        self.assertIn("0644", by_id["key-file-mode"]["detail"])
        self.assertIn("sendmail_path = /usr/sbin/sendmail -t -i",
                      by_id["php-sendmail-path"]["detail"])
        for f in doc["findings"]:
            self.assertTrue(f["fix"], f["id"])

    def test_today_the_credential_is_young_and_text_output(self):
        r = self.doctor()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertTrue(r.stdout.startswith("smtpguard doctor: 3 high, 2 medium, 1 low, 0 info\n"),
                        r.stdout)
        self.assertNotIn("credential-overdue", r.stdout)
        self.assertIn("\nhigh:\n  [key-file-mode] the master key file is accessible to every user\n",
                      r.stdout)
        self.assertIn("      fix: chown root:root ", r.stdout)
        self.assertIn("\nlow:\n  [egress-no-rule]", r.stdout)

    def test_clean_host_exits_zero(self):
        state = os.path.join(self.tmp, "clean-state")
        config = self.write_config("clean.toml", (
            '[relay]\nstate_dir = "%s"\n'
            '[upstream.ses]\nhost = "email-smtp.eu-west-1.amazonaws.com"\ncredential = "ses"\n'
        ) % state)
        self.assertEqual(self.smtpguard("vault", "init", config=config).returncode, 0)
        os.chmod(state, 0o751)
        empty = os.path.join(self.tmp, "empty-root")
        os.makedirs(empty, exist_ok=True)
        r = self.smtpguard("doctor", "--json", "--root", empty, "--smtp-ports", str(free_port()),
                           config=config)
        self.assertEqual(r.returncode, EX_OK, r.stdout + r.stderr)
        self.assertEqual([f["id"] for f in json.loads(r.stdout)["findings"]], ["egress-no-rule"])

    def test_usage_and_config_errors(self):
        r = self.smtpguard("doctor", "--bogus", config=self.config)
        self.assertEqual(r.returncode, EX_USAGE)
        bad = self.write_config("broken.toml", "[relay]\nlisten = 5\n")
        r = self.smtpguard("doctor", config=bad)
        self.assertEqual(r.returncode, EX_CONFIG)
        self.assertTrue(r.stderr.startswith("smtpguard: "), r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        plain = self.write_config("plain.toml", (
            '[upstream.plain]\nhost = "smtp.example.net"\ntls = "none"\n'))
        r = self.smtpguard("doctor", config=plain)
        self.assertEqual(r.returncode, EX_CONFIG)
        self.assertIn('"none" is allowed only when host is a loopback address', r.stderr)
        r = self.smtpguard("doctor", "--help")
        self.assertEqual(r.returncode, EX_OK)
        self.assertIn("Exit status: 0 nothing of high severity, 1 at least one high finding",
                      r.stdout)
        self.assertNotIn("--smtp-ports", r.stdout)  # test-only options stay hidden


if __name__ == "__main__":
    unittest.main()
