"""`smtpguard integrate postfix` and `smtpguard integrate php` against the
real programs that read what they write.

Postfix cannot be installed on the test machine (it would replace Exim as
the MTA), so its .deb is unpacked, not installed: postconf and postmap from
it read and build the rendered files. The `postfix` command itself cannot
run from an unpacked package (no daemon directory, no postfix user); the
reload and rollback tests put a stand-in `postfix` on PATH whose `check`
runs the real postconf. The local identity the map holds is proven with a
real SMTP login at a running relay, which delivers upstream.

PHP: a temp --php-dir tree with two versions and SAPIs; the real php-cli
must read sendmail_path from the drop-in, and mail() through it must land
in a running relay's spool under the caller's uid identity.
"""
import json
import os
import shutil
import signal
import smtplib
import stat
import subprocess
import tempfile
import unittest

from harness import (EX_NOINPUT, EX_OK, SMTPGUARD, UPSTREAM_PW, UPSTREAM_USER, AuthServer, Relay,
                     SmtpguardTestCase, wait_for)


def build_dir():
    """The build tree holding the binary under test (has CMakeCache.txt), or None."""
    d = os.path.dirname(os.path.realpath(shutil.which(SMTPGUARD) or SMTPGUARD))
    while d != "/":
        if os.path.exists(os.path.join(d, "CMakeCache.txt")):
            return d
        d = os.path.dirname(d)
    return None


def postfix_tools(fallback):
    """Debian's postfix .deb unpacked under BUILD/test-tools (downloaded once)."""
    base = os.environ.get("SMTPGUARD_TEST_TOOLS") or os.path.join(build_dir() or fallback,
                                                                  "test-tools")
    pfx = os.path.join(base, "postfix")
    if not os.access(os.path.join(pfx, "usr/sbin/postconf"), os.X_OK):
        os.makedirs(base, exist_ok=True)
        for f in os.listdir(base):
            if f.startswith("postfix_") and f.endswith(".deb"):
                os.unlink(os.path.join(base, f))
        r = subprocess.run(["apt-get", "download", "postfix"], cwd=base, capture_output=True,
                           text=True, timeout=300)
        debs = [f for f in os.listdir(base) if f.startswith("postfix_") and f.endswith(".deb")]
        if r.returncode != 0 or not debs:
            raise unittest.SkipTest("cannot download Debian's postfix package: " + r.stderr)
        shutil.rmtree(pfx, ignore_errors=True)
        subprocess.run(["dpkg", "-x", os.path.join(base, debs[0]), pfx], check=True, timeout=120)
    return pfx


# An AWS-documented SES setup on Debian, with continued values and comments
# inside them. mail_owner/setgid_group name accounts this machine has (the
# unpacked Postfix has no postfix user); postmap insists on distinct ones.
MAIN_CF = """\
# See /usr/share/postfix/main.cf.dist for a commented, more complete version
mail_owner = mail
setgid_group = news

smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no
compatibility_level = 3.6

myhostname = web1.example.com
alias_maps = hash:/etc/aliases
mydestination = $myhostname, web1.example.com,
    localhost.example.com,
# a comment inside a continued value
    localhost
relayhost = [email-smtp.us-east-1.amazonaws.com]:587
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104
\t[::1]/128
smtp_sasl_auth_enable = yes
smtp_sasl_security_options = noanonymous
smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd
smtp_use_tls = yes
smtp_tls_security_level = encrypt
smtp_tls_note_starttls_offer = yes
"""


def expected_main_cf(port, map_path):
    return (MAIN_CF
            .replace("relayhost = [email-smtp.us-east-1.amazonaws.com]:587",
                     "relayhost = [127.0.0.1]:%d" % port)
            .replace("smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd",
                     "smtp_sasl_password_maps = hash:" + map_path)
            .replace("smtp_tls_security_level = encrypt", "smtp_tls_security_level = may"))


def tree(directory):
    """path -> (bytes, mode, mtime_ns) for every file under `directory`."""
    out = {}
    for root, _, files in os.walk(directory):
        for f in files:
            p = os.path.join(root, f)
            st = os.lstat(p)
            with open(p, "rb") as fh:
                out[p] = (fh.read(), stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    return out


class PostfixCase(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        pfx = postfix_tools(cls.tmp)
        cls.bin = os.path.join(cls.tmp, "postfix-bin")
        os.makedirs(cls.bin)
        for prog in ("postconf", "postmap"):
            os.symlink(os.path.join(pfx, "usr/sbin", prog), os.path.join(cls.bin, prog))
        cls.env = dict(os.environ, PATH=cls.bin + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
                       LD_LIBRARY_PATH=os.path.join(pfx, "usr/lib/postfix"))

    def make_postfix_dir(self, name):
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        with open(os.path.join(d, "main.cf"), "w") as f:
            f.write(MAIN_CF)
        with open(os.path.join(d, "master.cf"), "w") as f:
            f.write("smtp      inet  n       -       y       -       -       smtpd\n")
        return d

    def integrate(self, config, *args, env=None):
        return subprocess.run([SMTPGUARD, "--config", config, "integrate", "postfix", *args],
                              capture_output=True, text=True, timeout=120,
                              env=env or self.env, stdin=subprocess.DEVNULL)

    def postconf(self, d, *args):
        r = subprocess.run(["postconf", "-c", d, *args], capture_output=True, text=True,
                           env=self.env, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def identities(self, config):
        r = self.smtpguard("client", "list", "--json", config=config)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {c["name"]: c for c in json.loads(r.stdout)}


class PostfixIntegration(PostfixCase):
    """The whole cycle on a relay that runs and delivers upstream."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_server_cert()
        cls.server = AuthServer(cls.tmp, cls.cert, cls.key, UPSTREAM_USER, UPSTREAM_PW)
        cls.peers.append(cls.server)
        cls.relay = Relay(cls.tmp, '[delivery]\nfirst_retry = "1s"\nmax_retry_interval = "2s"\n'
                          '[upstream.test]\nhost = "localhost"\nport = %d\ntls = "starttls"\n'
                          'ca_file = "%s"\ncredential = "ses"\ntimeout_seconds = 10\n'
                          % (cls.server.port, cls.ca.cert))
        for args, stdin in ((["vault", "init"], None),
                            (["vault", "set", "ses", "--username", UPSTREAM_USER],
                             UPSTREAM_PW + "\n")):
            r = cls.relay.cli(*args, input=stdin)
            assert r.returncode == 0, r.stderr
        cls.relay.start()

    @classmethod
    def tearDownClass(cls):
        cls.relay.stop()
        super().tearDownClass()

    def login(self, password):
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=30) as s:
            s.login("postfix", password)
            return s

    def test_integrate_check_deliver_idempotent_undo(self):
        d = self.make_postfix_dir("postfix-main")
        cfg = self.relay.config
        map_path = os.path.join(d, "smtpguard_sasl")
        original = tree(d)

        # --dry-run: the diff, and nothing changed anywhere.
        r = self.integrate(cfg, "--config-dir", d, "--dry-run")
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assertIn("-relayhost = [email-smtp.us-east-1.amazonaws.com]:587\n"
                      "+relayhost = [127.0.0.1]:%d\n" % self.relay.port, r.stdout)
        self.assertIn("would create the identity 'postfix'", r.stdout)
        self.assertEqual(tree(d), original)
        self.assertNotIn("postfix", self.identities(cfg))
        self.assertFalse(os.path.exists(os.path.join(self.relay.state, "backups")))

        r = self.integrate(cfg, "--config-dir", d, "--allowed-sender", "*@web1.example.com")
        self.assertEqual(r.returncode, EX_OK, r.stdout + r.stderr)
        self.assertIn("created the identity 'postfix'", r.stdout)
        self.assertIn("hash:/etc/postfix/sasl_passwd) may still hold the upstream secret",
                      r.stdout)
        # main.cf: only the three values changed, every other byte kept.
        with open(os.path.join(d, "main.cf")) as f:
            self.assertEqual(f.read(), expected_main_cf(self.relay.port, map_path))
        # What Postfix itself reads.
        values = dict(line.split(" = ", 1) for line in self.postconf(d, "-n").splitlines())
        self.assertEqual(values["relayhost"], "[127.0.0.1]:%d" % self.relay.port)
        self.assertEqual(values["smtp_sasl_auth_enable"], "yes")
        self.assertEqual(values["smtp_sasl_password_maps"], "hash:" + map_path)
        self.assertEqual(values["smtp_sasl_security_options"], "noanonymous")
        self.assertEqual(values["smtp_tls_security_level"], "may")
        self.assertEqual(values["mydestination"],
                         "$myhostname, web1.example.com, localhost.example.com, localhost")
        self.assertEqual(values["mynetworks"], "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128")
        # The map: only the local identity, root-only, and postmap'd.
        for p in (map_path, map_path + ".db"):
            st = os.stat(p)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, p)
            self.assertEqual((st.st_uid, st.st_gid), (0, 0), p)
        looked_up = self.postconf(d, "-h", "relayhost").strip()
        q = subprocess.run(["postmap", "-c", d, "-q", looked_up, "hash:" + map_path],
                           capture_output=True, text=True, env=self.env, timeout=30)
        self.assertEqual(q.returncode, 0, q.stderr)
        user, password = q.stdout.strip().split(":", 1)
        self.assertEqual(user, "postfix")
        self.assertRegex(password, r"^[A-Za-z0-9]{24,}$")
        for p, (data, _, _) in tree(d).items():
            self.assertNotIn(UPSTREAM_PW.encode(), data, p)
        # The identity works: the login Postfix will make, and mail goes upstream.
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=30) as s:
            s.login("postfix", password)
            s.sendmail("cron@web1.example.com", ["r@example.net"],
                       "From: cron@web1.example.com\r\nTo: r@example.net\r\n"
                       "Subject: via postfix identity\r\n\r\nhello\r\n")
        self.assertTrue(wait_for(lambda: [m for m in self.server.messages()
                                          if "via postfix identity" in m["data"]], 30),
                        self.relay.logs())
        rec = [m for m in self.server.messages() if "via postfix identity" in m["data"]][0]
        self.assertEqual(rec["login"], UPSTREAM_USER)
        self.assertEqual(rec["mail_from"], "cron@web1.example.com")

        # A second run changes nothing, not even mtimes.
        installed = tree(d)
        r = self.integrate(cfg, "--config-dir", d)
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assertIn("nothing changed", r.stdout)
        self.assertEqual(tree(d), installed)

        # --undo: byte-exact main.cf, the map gone, the identity gone.
        r = self.integrate(cfg, "--config-dir", d, "--undo", "--dry-run")
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assertIn("+relayhost = [email-smtp.us-east-1.amazonaws.com]:587", r.stdout)
        self.assertEqual(tree(d), installed)
        r = self.integrate(cfg, "--config-dir", d, "--undo")
        self.assertEqual(r.returncode, EX_OK, r.stdout + r.stderr)
        after = tree(d)
        self.assertEqual(sorted(after), sorted(original))
        for p in original:
            self.assertEqual(after[p][:2], original[p][:2], p)
        self.assertNotIn("postfix", self.identities(cfg))

        def refused():
            try:
                self.login(password)
                return False
            except smtplib.SMTPAuthenticationError:
                return True
        self.assertTrue(wait_for(refused, 20), "the relay still accepts the removed identity")
        r = self.integrate(cfg, "--config-dir", d, "--undo")
        self.assertEqual(r.returncode, EX_NOINPUT, r.stderr)
        self.assertIn("nothing to undo", r.stderr)

    def test_undo_refuses_a_main_cf_changed_since(self):
        d = self.make_postfix_dir("postfix-changed")
        cfg = self.relay.config
        r = self.integrate(cfg, "--config-dir", d, "--allowed-sender", "*@web1.example.com")
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        with open(os.path.join(d, "main.cf"), "a") as f:
            f.write("message_size_limit = 20480000\n")
        r = self.integrate(cfg, "--config-dir", d, "--undo")
        self.assertNotEqual(r.returncode, EX_OK)
        self.assertIn("changed since", r.stderr)
        r = self.integrate(cfg, "--config-dir", d, "--undo", "--force")
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        with open(os.path.join(d, "main.cf")) as f:
            self.assertEqual(f.read(), MAIN_CF)


# A stand-in for the postfix command: logs its arguments; `check` runs the
# real postconf on the directory; FAIL_CHECK / FAIL_RELOAD files make it fail.
FAKE_POSTFIX = """#!/bin/sh
echo "$*" >> "%(dir)s/calls"
case "$3" in
  check)  [ -e "%(dir)s/FAIL_CHECK" ] && { echo "postfix: fatal: test: check refused"; exit 1; }
          exec postconf -c "$2" -n >/dev/null ;;
  status) exit 0 ;;
  reload) [ -e "%(dir)s/FAIL_RELOAD" ] && { echo "postfix: fatal: test: reload refused"; exit 1; }
          exit 0 ;;
esac
exit 2
"""


class PostfixReloadAndRollback(PostfixCase):
    """postfix check and reload, and putting everything back when they fail."""

    def setUp(self):
        self.work = tempfile.mkdtemp(dir=self.tmp)
        self.state = os.path.join(self.work, "state")
        self.config = self.write_config(os.path.basename(self.work) + ".toml",
                                        '[relay]\nlisten = ["127.0.0.1:2799"]\nstate_dir = "%s"\n'
                                        % self.state)
        fake_bin = os.path.join(self.work, "bin")
        os.makedirs(fake_bin)
        with open(os.path.join(fake_bin, "postfix"), "w") as f:
            f.write(FAKE_POSTFIX % {"dir": self.work})
        os.chmod(os.path.join(fake_bin, "postfix"), 0o755)
        self.fake_env = dict(self.env, PATH=fake_bin + ":" + self.env["PATH"])
        self.dir = self.make_postfix_dir(os.path.basename(self.work) + "-postfix")

    def calls(self):
        path = os.path.join(self.work, "calls")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().splitlines()

    def test_checks_and_reloads(self):
        r = self.integrate(self.config, "--config-dir", self.dir, env=self.fake_env)
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assertIn("reloaded Postfix", r.stdout)
        self.assertEqual(self.calls(), ["-c %s check" % self.dir, "-c %s status" % self.dir,
                                        "-c %s reload" % self.dir])
        self.assertIn("note: 'postfix' may not send anything yet", r.stdout)

    def assert_rolled_back(self, original):
        self.assertEqual({p: v[:2] for p, v in tree(self.dir).items()},
                         {p: v[:2] for p, v in original.items()})
        self.assertNotIn("postfix", self.identities(self.config))
        backups = os.path.join(self.state, "backups")
        self.assertEqual(os.listdir(backups) if os.path.isdir(backups) else [], [])

    def test_failed_check_puts_everything_back(self):
        original = tree(self.dir)
        open(os.path.join(self.work, "FAIL_CHECK"), "w").close()
        r = self.integrate(self.config, "--config-dir", self.dir, env=self.fake_env)
        self.assertNotEqual(r.returncode, EX_OK)
        self.assertIn("postfix check failed: postfix: fatal: test: check refused", r.stderr)
        self.assertIn("restored the previous files", r.stderr)
        self.assert_rolled_back(original)

    def test_failed_reload_puts_everything_back(self):
        original = tree(self.dir)
        open(os.path.join(self.work, "FAIL_RELOAD"), "w").close()
        r = self.integrate(self.config, "--config-dir", self.dir, env=self.fake_env)
        self.assertNotEqual(r.returncode, EX_OK)
        self.assertIn("postfix reload failed: postfix: fatal: test: reload refused", r.stderr)
        self.assert_rolled_back(original)
        # ...and it tried to reload the restored files too.
        self.assertEqual(self.calls()[-1], "-c %s reload" % self.dir)

    def test_broken_main_cf_is_refused_untouched(self):
        with open(os.path.join(self.dir, "main.cf"), "a") as f:
            f.write("this line has no equals sign\n")
        original = tree(self.dir)
        r = self.integrate(self.config, "--config-dir", self.dir, env=self.fake_env)
        self.assertNotEqual(r.returncode, EX_OK)
        self.assertIn("main.cf:%d: missing '='" % (len(MAIN_CF.splitlines()) + 1), r.stderr)
        self.assert_rolled_back(original)
        self.assertEqual(self.calls(), [])


class PhpIntegration(SmtpguardTestCase):
    """Drop-ins for two PHP versions and three SAPIs; the real php reads
    them and its mail() reaches the relay."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_server_cert()
        cls.server = AuthServer(cls.tmp, cls.cert, cls.key, UPSTREAM_USER, UPSTREAM_PW)
        cls.peers.append(cls.server)
        cls.relay = Relay(cls.tmp, '[delivery]\nfirst_retry = "1s"\nmax_retry_interval = "2s"\n'
                          '[upstream.test]\nhost = "localhost"\nport = %d\ntls = "starttls"\n'
                          'ca_file = "%s"\ncredential = "ses"\ntimeout_seconds = 10\n'
                          % (cls.server.port, cls.ca.cert))
        for args, stdin in ((["vault", "init"], None),
                            (["vault", "set", "ses", "--username", UPSTREAM_USER],
                             UPSTREAM_PW + "\n"),
                            (["client", "add", "php-root", "--uid", "root", "--allowed-sender",
                              "*@php.example.com"], None)):
            r = cls.relay.cli(*args, input=stdin)
            assert r.returncode == 0, r.stderr
        cls.relay.start()
        cls.php_dir = os.path.join(cls.tmp, "php")
        for v, sapi in (("8.2", "cli"), ("8.2", "fpm"), ("7.4", "cli")):
            os.makedirs(os.path.join(cls.php_dir, v, sapi, "conf.d"))
        os.makedirs(os.path.join(cls.php_dir, "8.2", "mods-available"))  # no conf.d: not a SAPI
        with open(os.path.join(cls.php_dir, "8.2", "cli", "conf.d", "20-existing.ini"), "w") as f:
            f.write("memory_limit = 64M\n")
        cls.dropins = [os.path.join(cls.php_dir, v, s, "conf.d", "99-smtpguard.ini")
                       for v, s in (("7.4", "cli"), ("8.2", "cli"), ("8.2", "fpm"))]
        cls.command = "%s --config %s sendmail -t -i" % (
            os.path.realpath(shutil.which(SMTPGUARD) or SMTPGUARD), cls.relay.config)

    @classmethod
    def tearDownClass(cls):
        cls.relay.stop()
        super().tearDownClass()

    def integrate(self, *args):
        return self.relay.cli("integrate", "php", "--php-dir", self.php_dir, *args)

    def php(self, version_sapi, code):
        return subprocess.run(["php", "-r", code], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, PHP_INI_SCAN_DIR=os.path.join(
                                  self.php_dir, version_sapi, "conf.d")))

    def deliverer_pid(self):
        pid = self.relay.worker_pid("sg-deliverer")
        if pid is None:
            raise AssertionError("no sg-deliverer child")
        return pid

    def test_dropins_php_reads_them_mail_reaches_the_relay_undo(self):
        existing = os.path.join(self.php_dir, "8.2", "cli", "conf.d", "20-existing.ini")
        r = self.integrate("--dry-run")
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assertEqual(r.stdout.count("would write "), 3, r.stdout)
        self.assertFalse(any(os.path.exists(p) for p in self.dropins))

        r = self.integrate()
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assertIn("host 127.0.0.1, port %d" % self.relay.port, r.stdout)
        self.assertIn("smtpguard client add NAME --password-stdin --allowed-sender", r.stdout)
        for p in self.dropins:
            st = os.stat(p)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o644, p)
            with open(p) as f:
                self.assertIn('\nsendmail_path = "%s"\n' % self.command, f.read())
        with open(existing) as f:
            self.assertEqual(f.read(), "memory_limit = 64M\n")
        # The real php-cli takes the value from the drop-in (each tree's file).
        for vs in ("8.2/cli", "7.4/cli", "8.2/fpm"):
            got = self.php(vs, 'echo ini_get("sendmail_path");')
            self.assertEqual(got.returncode, 0, got.stderr)
            self.assertEqual(got.stdout, self.command, vs)
        self.assertEqual(self.php("8.2/cli", 'echo ini_get("memory_limit");').stdout, "64M")

        # mail() goes through it into the relay's spool under the caller's uid identity.
        pid = self.deliverer_pid()
        before = set(self.relay.queue_ids())
        os.kill(pid, signal.SIGSTOP)
        try:
            sent = self.php("8.2/cli", "exit(mail('to@example.net', 'php dropin mail', 'body',"
                                       " 'From: site@php.example.com') ? 0 : 3);")
            self.assertEqual(sent.returncode, 0, sent.stdout + sent.stderr)
            ids = sorted(set(self.relay.queue_ids()) - before)
            self.assertEqual(len(ids), 1, ids)
            env = self.relay.queued_envelope(ids[0])
            self.assertEqual(env["identity"], "php-root")
            self.assertEqual([r["address"] for r in env["recipients"]], ["to@example.net"])
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertTrue(wait_for(lambda: [m for m in self.server.messages()
                                          if "php dropin mail" in m["data"]], 30),
                        self.relay.logs())

        # A second run changes nothing.
        snapshot = {p: os.stat(p).st_mtime_ns for p in self.dropins}
        r = self.integrate()
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assertIn("nothing changed", r.stdout)
        self.assertEqual({p: os.stat(p).st_mtime_ns for p in self.dropins}, snapshot)

        # --undo removes only what smtpguard wrote.
        foreign = self.dropins[0]
        with open(foreign, "w") as f:
            f.write("; the admin's own file\nsendmail_path = /usr/sbin/sendmail -t -i\n")
        r = self.integrate("--undo")
        self.assertEqual(r.returncode, EX_OK, r.stderr)
        self.assertIn("left %s alone" % foreign, r.stdout)
        self.assertTrue(os.path.exists(foreign))
        self.assertFalse(any(os.path.exists(p) for p in self.dropins[1:]))
        self.assertTrue(os.path.exists(existing))
        self.assertEqual(self.php("7.4/cli", 'echo ini_get("sendmail_path");').stdout,
                         "/usr/sbin/sendmail -t -i")

    def test_no_php_tree(self):
        empty = tempfile.mkdtemp(dir=self.tmp)
        r = self.relay.cli("integrate", "php", "--php-dir", empty)
        self.assertEqual(r.returncode, EX_NOINPUT, r.stderr)
        self.assertIn("no PHP configuration under", r.stderr)


if __name__ == "__main__":
    unittest.main()
