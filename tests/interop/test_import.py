"""`smtpguard import` on sample files of every kind (samples/import/): the
passwords it seals are the ones the real programs read (PHP and bash decode
the same files; vault fingerprints compare them), --scrub leaves files that
php -l, bash and the parsers accept, backups are 0600, and no password
ever reaches stdout or stderr."""
import json
import os
import pty
import shutil
import stat
import subprocess
import unittest

from harness import (EX_DATAERR, EX_NOINPUT, EX_OK, EX_USAGE, HERE, SMTPGUARD, AuthServer,
                     SmtpguardTestCase)

SAMPLES = os.path.join(HERE, "samples", "import")
EX_CANTCREAT = 73

# What each sample holds: file -> (username, password as the program reads it).
EXPECTED = {
    "passwd.client": ("AKIAPASSWDCLIENT001", "Pc/Sample+Pw1:with:colons#hash&amp"),
    "exim.conf": ("AKIAEXIMCONFIG00002", "Ex\\im:Sample\"Quote'Pw2"),
    "sasl_passwd": ("AKIASASLPASSWD00003", "Sasl:Pw3 with space/&x"),
    "msmtprc": ("AKIAMSMTPRC00000004", "  Msmtp Pw#4 with spaces  "),
    ".env": ("AKIADOTENV000000005", "Env\"Pw5 \\ $HOME #not-comment"),
    "wp-config.php": ("AKIAWPCONFIG0000006", "Wp'Pw6 \\ \"dq\" $notvar"),
    "mailer.php": ("AKIAPHPMAILER000007", "Pm\"Pw7\\$xAA"),
}
ORDER = ["passwd.client", "exim.conf", "sasl_passwd", "msmtprc", ".env", "wp-config.php",
         "mailer.php"]
SECRET_WORDS = ["colons#hash", "Sample\"Quote", "Quote'Pw2", "Pw3 with", "Msmtp Pw#4", "Pw5",
                "Pw6", "Pw7", "an-old-commented", "db-secret"]


def slurp(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


class ImportTest(SmtpguardTestCase):

    def setUp(self):
        """A fresh copy of the samples and a fresh vault for each test."""
        self.dir = os.path.join(self.tmp, self.id().rsplit(".", 1)[-1])
        self.files = os.path.join(self.dir, "files")
        shutil.copytree(SAMPLES, self.files)
        self.state_dir = os.path.join(self.dir, "state")
        self.config = self.write_config(self.id().rsplit(".", 1)[-1] + ".toml",
                                        '[relay]\nstate_dir = "%s"\n' % self.state_dir)
        self.assertEqual(self.sg("vault", "init").returncode, 0)

    def sg(self, *args, input=None):
        r = self.smtpguard(*args, config=self.config, input=input)
        for word in SECRET_WORDS:  # the plaintext never reaches the terminal
            self.assertNotIn(word, r.stdout + r.stderr)
        for _, pw in EXPECTED.values():
            self.assertNotIn(pw.strip(), r.stdout + r.stderr)
        return r

    def paths(self, names=ORDER):
        return [os.path.join(self.files, n) for n in names]

    def vault(self):
        r = self.sg("vault", "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return {e["name"]: e for e in json.loads(r.stdout)}

    def fingerprint_of(self, password):
        """The vault's keyed fingerprint of `password`, via a scratch entry."""
        r = self.sg("vault", "set", "scratch", "--username", "x", input=password + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        fp = self.vault()["scratch"]["fingerprint"]
        self.assertEqual(self.sg("vault", "rm", "scratch").returncode, 0)
        return fp

    def test_programs_read_what_the_samples_say(self):
        # The expectations above are checked against PHP and bash themselves.
        php = subprocess.run(["php", "-n", "-r", 'include "wp-config.php"; echo WPMS_SMTP_PASS;'],
                             cwd=self.files, capture_output=True, text=True)
        self.assertEqual(php.stdout, EXPECTED["wp-config.php"][1])
        php = subprocess.run(["php", "-n", "-r", 'include "mailer.php"; echo $mail->Password;'],
                             cwd=self.files, capture_output=True, text=True)
        self.assertEqual(php.stdout, EXPECTED["mailer.php"][1])
        sh = subprocess.run(["bash", "-c", 'set -a; . ./.env; printf %s "$MAIL_PASSWORD"'],
                            cwd=self.files, capture_output=True, text=True)
        self.assertEqual(sh.stdout, EXPECTED[".env"][1])

    def test_msmtp_logs_in_with_the_password_import_reads(self):
        # msmtp itself, against a real STARTTLS+AUTH server expecting EXPECTED["msmtprc"].
        if not hasattr(type(self), "ca"):
            type(self).make_server_cert()
        user, pw = EXPECTED["msmtprc"]
        server = AuthServer(self.dir, self.cert, self.key, user, pw)
        self.peers.append(server)
        rc = os.path.join(self.dir, "msmtprc-local")
        text = slurp(os.path.join(self.files, "msmtprc"))
        text = text.replace("/etc/ssl/certs/ca-certificates.crt", self.ca.cert)
        text = text.replace("host email-smtp.us-west-2.amazonaws.com",
                            "host localhost\n  port %d" % server.port).replace("  port 587\n", "")
        with open(rc, "w") as f:
            f.write(text)
        os.chmod(rc, 0o600)
        r = subprocess.run(["msmtp", "-C", rc, "-a", "ses", "rcpt@example.net"],
                           input="Subject: t\n\nhello\n", capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(server.messages()), 1)

    def test_exim_accepts_the_config_before_and_after_scrub(self):
        conf = os.path.join(self.files, "exim.conf")
        self.assertEqual(subprocess.run(["exim", "-C", conf, "-bV"],
                                        capture_output=True).returncode, 0)
        r = self.sg("import", "--yes", "--scrub", conf)
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        check = subprocess.run(["exim", "-C", conf, "-bV"], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout[-500:] + check.stderr)
        self.assertNotIn("client_send = :", slurp(conf))

    def test_terminal_prompts(self):
        # With a terminal: asks which to seal, then asks before scrubbing.
        env = os.path.join(self.files, ".env")
        master, slave = pty.openpty()
        try:
            os.write(master, b"1\ny\n")
            p = subprocess.run([SMTPGUARD, "--config", self.config, "import", "--scrub", env],
                               stdin=slave, capture_output=True, text=True, timeout=30)
        finally:
            os.close(slave)
            os.close(master)
        self.assertEqual(p.returncode, EX_OK, p.stderr)
        self.assertIn("Seal which", p.stderr)
        self.assertIn("Replace the plaintext", p.stderr)
        self.assertNotIn("Pw5", p.stdout + p.stderr)
        self.assertEqual(list(self.vault()), ["ses"])
        self.assertIn("MAIL_PASSWORD=\n", slurp(env))

    def test_lists_without_sealing_when_nobody_can_answer(self):
        r = self.sg("import", *self.paths())
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        for name in ORDER:
            self.assertIn(name + ":", r.stdout)
        self.assertIn("Pc\u2026mp", r.stdout)  # redacted: first two, last two
        self.assertIn("passwordeval", r.stdout)
        self.assertIn("--select", r.stdout)
        self.assertEqual(self.vault(), {})
        r = self.sg("import", "--json", *self.paths())
        found = json.loads(r.stdout)["findings"]
        self.assertEqual(len(found), 8)  # 7 credentials + msmtp's passwordeval
        self.assertEqual([f["username"] for f in found if f["importable"]],
                         [EXPECTED[n][0] for n in ORDER])
        self.assertFalse(found[4]["importable"])

    def test_import_all_and_scrub(self):
        os.chmod(os.path.join(self.files, "wp-config.php"), 0o640)
        originals = {n: slurp(p, "rb") for n, p in zip(ORDER, self.paths())}
        r = self.sg("import", "--yes", "--scrub", "--json", *self.paths())
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        out = json.loads(r.stdout)
        entries = {f["file"].rsplit("/", 1)[-1]: f["entry"] for f in out["findings"]
                   if f.get("entry")}
        self.assertEqual(entries["passwd.client"], "ses")  # the first one is "ses"
        vault = self.vault()
        for name in ORDER:  # each sealed password is exactly the one the program used
            user, pw = EXPECTED[name]
            entry = vault[entries[name]]
            self.assertEqual(entry["username"], user)
            self.assertEqual(entry["fingerprint"], self.fingerprint_of(pw), name)
        self.assertEqual(vault["import-2"]["upstream_host"], "email-smtp.eu-central-1.amazonaws.com")

        # No plaintext left; every file still valid for its program.
        for name, path in zip(ORDER, self.paths()):
            text = slurp(path)
            self.assertNotIn(EXPECTED[name][1].strip(), text)
            self.assertIn("smtpguard", text)
        for php in ("wp-config.php", "mailer.php"):
            lint = subprocess.run(["php", "-l", os.path.join(self.files, php)],
                                  capture_output=True, text=True)
            self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        php = subprocess.run(["php", "-n", "-r", 'include "wp-config.php"; '
                              'echo WPMS_SMTP_USER, "|", WPMS_SMTP_PASS, "|";'],
                             cwd=self.files, capture_output=True, text=True)
        self.assertEqual(php.stdout, EXPECTED["wp-config.php"][0] + "||")
        sh = subprocess.run(["bash", "-c", 'set -eu; set -a; . ./.env; '
                             'printf "%s|%s|" "$MAIL_USERNAME" "$MAIL_PASSWORD"'],
                            cwd=self.files, capture_output=True, text=True)
        self.assertEqual(sh.stdout, EXPECTED[".env"][0] + "||", sh.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.files, "wp-config.php")).st_mode),
                         0o640)
        for line in slurp(os.path.join(self.files, "passwd.client")).splitlines():
            self.assertTrue(line.startswith("#") or line.startswith("*.example.org"), line)

        # Backups: root-only, byte-exact.
        self.assertEqual(len(out["scrubbed"]), len(ORDER))
        for s in out["scrubbed"]:
            st = os.stat(s["backup"])
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
            self.assertEqual(st.st_uid, 0)
            self.assertTrue(s["backup"].startswith(os.path.join(self.state_dir, "backups")))
            self.assertEqual(slurp(s["backup"], "rb"),
                             originals[s["file"].rsplit("/", 1)[-1]])
            if s["file"].endswith(".php"):
                self.assertTrue(s["php_lint"])

        # A second run finds nothing left to import.
        r = self.sg("import", "--json", *self.paths())
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assertEqual([f for f in json.loads(r.stdout)["findings"] if f["importable"]], [])

    def test_select_name_duplicates_and_existing_entries(self):
        # The same credential in two files is sealed once.
        dup = os.path.join(self.files, "copy.env")
        shutil.copy(os.path.join(self.files, ".env"), dup)
        r = self.sg("import", "--select", "1,2", "--name", "shop-ses",
                    os.path.join(self.files, ".env"), dup)
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assertEqual(list(self.vault()), ["shop-ses"])
        # Existing names are not overwritten without --force, and nothing changes.
        r = self.sg("import", "--select", "1", "--name", "shop-ses",
                    os.path.join(self.files, "wp-config.php"))
        self.assertEqual(r.returncode, EX_CANTCREAT, r.stderr)
        self.assertIn("--force", r.stderr)
        self.assertEqual(list(self.vault()), ["shop-ses"])
        r = self.sg("import", "--select", "1", "--name", "shop-ses", "--force",
                    os.path.join(self.files, "wp-config.php"))
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assertEqual(self.vault()["shop-ses"]["username"], EXPECTED["wp-config.php"][0])
        # passwordeval cannot be selected.
        r = self.sg("import", "--select", "2", os.path.join(self.files, "msmtprc"))
        self.assertEqual(r.returncode, EX_USAGE)
        self.assertIn("passwordeval", r.stderr)

    def test_errors(self):
        r = self.sg("import", os.path.join(self.files, "missing.env"))
        self.assertEqual(r.returncode, EX_NOINPUT)
        self.assertTrue(r.stderr.startswith("smtpguard: ") and r.stderr.count("\n") == 1, r.stderr)
        notes = self.write_config("notes.txt", "just some notes\n")
        self.assertEqual(self.sg("import", notes).returncode, EX_DATAERR)
        with open(os.path.join(self.dir, "blob.env"), "wb") as f:
            f.write(b"MAIL_PASSWORD=x\0y\n")
        self.assertEqual(self.sg("import", os.path.join(self.dir, "blob.env")).returncode,
                         EX_DATAERR)
        self.assertEqual(self.sg("import", self.files).returncode, EX_DATAERR)  # a directory
        # --scrub needs a confirmation; without a terminal that is --yes.
        before = slurp(os.path.join(self.files, ".env"))
        r = self.sg("import", "--scrub", "--select", "1", os.path.join(self.files, ".env"))
        self.assertEqual(r.returncode, EX_USAGE)
        self.assertEqual(slurp(os.path.join(self.files, ".env")), before)
        self.assertEqual(self.vault(), {})

    def test_usual_places_under_root(self):
        root = os.path.join(self.dir, "root")
        for rel, sample in (("etc/exim4/passwd.client", "passwd.client"),
                            ("etc/postfix/sasl_passwd", "sasl_passwd"),
                            ("home/alice/.msmtprc", "msmtprc"),
                            ("etc/exim4/conf.d/auth/30_ses", "exim.conf")):
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            shutil.copy(os.path.join(self.files, sample), os.path.join(root, rel))
        r = self.sg("import", "--root", root, "--json")
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        users = {f["username"] for f in json.loads(r.stdout)["findings"]}
        for sample in ("passwd.client", "sasl_passwd", "msmtprc", "exim.conf"):
            self.assertIn(EXPECTED[sample][0], users)
        empty = os.path.join(self.dir, "empty-root")
        os.makedirs(empty)
        r = self.sg("import", "--root", empty)
        self.assertEqual(r.returncode, EX_OK)
        self.assertIn("nothing found", r.stdout)


if __name__ == "__main__":
    unittest.main()
