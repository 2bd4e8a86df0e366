"""`smtpguard integrate exim` against a real Exim 4.96 (exim4-daemon-heavy).

Each test lays out an Exim configuration under a temp --root (Debian split,
Debian unsplit from the installed /etc/exim4, or a cPanel-style
/etc/exim.conf + exim.conf.local), starts a private Exim daemon on a free
port with its own spool, log and pid file, and a real relay delivering to
the STARTTLS+AUTH test server. Exim only keeps root for -C with a config in
/etc/exim4/trusted_configs, so the test adds its paths there and puts the
file back afterwards. Runs as root (as CI does)."""
import grp
import os
import shutil
import smtplib
import subprocess
import unittest

from harness import (EXIM, EXIM_PRIVATE_MAIN, UPSTREAM_PW, UPSTREAM_USER, AuthServer, EximDaemon,
                     Relay, SmtpguardTestCase, exim_log, exim_work_dir, run, wait_for)

TRUSTED = "/etc/exim4/trusted_configs"
SENDERS = ["--allowed-sender", "*@shop.example.com", "--allowed-sender", "<>"]
HEADER = "X-Smtpguard-Submitter"

CPANEL_CONF = EXIM_PRIVATE_MAIN + """exim_user = Debian-exim
exim_group = Debian-exim
trusted_users = root
never_users =
local_interfaces = <; 127.0.0.1
domainlist local_domains = @ : localhost
acl_smtp_rcpt = acl_check_rcpt
auth_advertise_hosts = *

begin acl

acl_check_rcpt:
  accept hosts = 127.0.0.1
  deny   message = relay not permitted

begin routers

local_user:
  driver = accept
  domains = +local_domains
  transport = devnull

begin transports

devnull:
  driver = appendfile
  file = /dev/null
  user = Debian-exim

begin retry

*  *  F,1h,1m

begin rewrite

begin authenticators

# What a cPanel host has for its mailboxes: PLAIN logins (one test user).
mailbox_plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and{{eq{$auth2}{box@shop.example.com}}{eq{$auth3}{box-pw}}}}
  server_set_id = $auth2
"""

CPANEL_LOCAL = """@AUTH@

@BEGINACL@

@CONFIG@

@ROUTERSTART@

@TRANSPORTSTART@

"""


def snapshot(root):
    """{relative path: (bytes, mode, uid, gid)} of every file under root/etc and root/var/lib."""
    out = {}
    for top in ("etc", "var/lib"):
        base = os.path.join(root, top)
        for d, _, files in os.walk(base):
            for f in files:
                p = os.path.join(d, f)
                st = os.lstat(p)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = (fh.read(), st.st_mode, st.st_uid, st.st_gid)
    return out


class EximIntegrationTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not os.path.exists(EXIM):
            raise unittest.SkipTest("needs root and Debian's exim4-daemon-heavy")
        super().setUpClass()
        os.chmod(cls.tmp, 0o711)  # Exim's delivery processes (Debian-exim) read files below
        cls.make_server_cert()
        cls.trusted_orig = None
        if os.path.exists(TRUSTED):
            with open(TRUSTED, "rb") as f:
                cls.trusted_orig = f.read()

    @classmethod
    def tearDownClass(cls):
        if cls.trusted_orig is None:
            if os.path.exists(TRUSTED):
                os.unlink(TRUSTED)
        else:
            with open(TRUSTED, "wb") as f:
                f.write(cls.trusted_orig)
        super().tearDownClass()

    # ---- plumbing ----

    def trust(self, path):
        with open(TRUSTED, "a") as f:
            f.write(path + "\n")
        os.chmod(TRUSTED, 0o644)

    def exim_work(self, name):
        return exim_work_dir(os.path.join(self.tmp, name + "-exim"))

    def start_exim(self, config, work):
        self.trust(config)
        exim = EximDaemon(config, work)
        self.addCleanup(exim.stop)
        return exim.port, exim

    def upstream(self):
        server = AuthServer(self.tmp, self.cert, self.key, UPSTREAM_USER, UPSTREAM_PW)
        self.peers.append(server)
        return server

    def relay_for(self, name, server):
        relay = Relay(self.tmp, '[upstream.test]\nhost = "localhost"\nport = %d\n'
                      'tls = "starttls"\nca_file = "%s"\ncredential = "ses"\n'
                      'timeout_seconds = 10\n[delivery]\nfirst_retry = "1s"\n'
                      'max_retry_interval = "2s"\n' % (server.port, self.ca.cert), name=name)
        self.provision(relay)
        relay.start()
        self.addCleanup(relay.stop)
        return relay

    def integrate(self, relay, *args):
        return relay.cli("integrate", "exim", *args, timeout=120)

    def message(self, subject, extra_headers=""):
        return ("From: a@shop.example.com\r\nTo: x@example.net\r\nSubject: %s\r\n%s\r\nbody\r\n"
                % (subject, extra_headers))

    def submitted(self, server, subject):
        for m in server.messages():
            if "Subject: %s\r\n" % subject in m["data"]:
                return m
        return None

    def assert_delivered_without_header(self, server, relay, work, subject):
        ok = wait_for(lambda: self.submitted(server, subject) is not None, 40)
        self.assertTrue(ok, "not delivered upstream:\nexim:\n%s\nrelay:\n%s"
                        % (exim_log(work), relay.logs()[-3000:]))
        data = self.submitted(server, subject)["data"]
        self.assertNotIn(HEADER, data)
        self.assertNotIn("forged", data)

    def held_submitter(self, relay, subject):
        """The submitter header of the held message with `subject`."""
        for qid in relay.queue_ids(held=True):
            data = relay.queued_data(qid).decode(errors="replace")
            if "Subject: %s\r\n" % subject in data:
                return [line for line in data.split("\r\n") if line.startswith(HEADER + ":")]
        return None

    def check_exim_path(self, root, relay, server, exim_config, work, files_at_start, secret):
        """dry run, integrate, idempotency, SMTP and `exim -t` mail, the
        submitter header, undo: the same for every layout."""
        port, exim = self.start_exim(exim_config, work)
        r = self.integrate(relay, "--root", root, "--dry-run", *SENDERS)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("smtpguard_relay", r.stdout)
        self.assertIn("dry run: nothing was changed", r.stdout)
        self.assertEqual(snapshot(root), files_at_start)
        self.assertNotIn("exim ", relay.cli("client", "list").stdout)

        r = self.integrate(relay, "--root", root, *SENDERS)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("reloaded Exim (SIGHUP to pid", r.stdout)
        # `integrate` returns once the signal is sent, not once Exim listens again.
        self.assertTrue(exim.wait_listening(20), exim_log(work, "stderr"))
        after = snapshot(root)
        for path, (data, mode, uid, gid) in after.items():
            self.assertNotIn(UPSTREAM_PW.encode(), data, path)
        # The local password: a file of its own, or (Debian, whose stock
        # client authenticators take PLAIN and LOGIN) a passwd.client entry.
        data, mode, uid, gid = after[secret]
        self.assertEqual((mode & 0o7777, uid, gid), (0o640, 0, grp.getgrnam("Debian-exim").gr_gid))
        if secret.endswith("passwd.client"):
            self.assertIn(b"\n127.0.0.1:exim:", data)

        r = self.integrate(relay, "--root", root, *SENDERS)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nothing changed", r.stdout)
        self.assertEqual(snapshot(root), after)

        # The relay holds mail while paused, so Exim's header can be read in
        # its spool; then it goes upstream without it.
        self.assertEqual(relay.cli("pause").returncode, 0)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.sendmail("a@shop.example.com", ["x@example.net"],
                       self.message("via-smtp", HEADER + ": auth:forged\r\n"))
        msg = "From: a@shop.example.com\nTo: x@example.net\nSubject: via-exim-t\n\nbody\n"
        subprocess.run([EXIM, "-C", exim_config, "-f", "a@shop.example.com", "-t"], input=msg,
                       text=True, check=True, timeout=30)
        ok = wait_for(lambda: len(relay.queue_ids(held=True)) == 2, 40)
        self.assertTrue(ok, "exim:\n%s\nrelay:\n%s" % (exim_log(work), relay.logs()[-3000:]))
        self.assertEqual(self.held_submitter(relay, "via-exim-t"), [HEADER + ": local:root"])
        smtp_header = self.held_submitter(relay, "via-smtp")
        self.assertEqual(len(smtp_header), 1, smtp_header)
        self.assertEqual(smtp_header, [HEADER + ": host:127.0.0.1"])
        self.assertEqual(relay.cli("resume").returncode, 0)
        self.assert_delivered_without_header(server, relay, work, "via-smtp")
        self.assert_delivered_without_header(server, relay, work, "via-exim-t")

        r = self.integrate(relay, "--root", root, "--undo")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("reloaded Exim", r.stdout)
        self.assertEqual(snapshot(root), files_at_start)
        self.assertNotIn("exim ", relay.cli("client", "list").stdout)
        r = self.integrate(relay, "--root", root, "--undo")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nothing to undo", r.stderr)
        return exim

    def debian_root(self, name, split):
        root = os.path.join(self.tmp, name)
        work = self.exim_work(name)
        shutil.copytree("/etc/exim4", os.path.join(root, "etc/exim4"), symlinks=True)
        for junk in ("trusted_configs", "passwd.client", "exim4.conf"):
            p = os.path.join(root, "etc/exim4", junk)
            if os.path.exists(p):
                os.unlink(p)
        ue4cc = os.path.join(root, "etc/exim4/update-exim4.conf.conf")
        with open(ue4cc, "w") as f:
            f.write("dc_eximconfig_configtype='internet'\ndc_other_hostnames=''\n"
                    "dc_local_interfaces='127.0.0.1'\ndc_relay_nets=''\ndc_relay_domains=''\n"
                    "dc_minimaldns='false'\ndc_smarthost=''\nCFILEMODE='644'\n"
                    "dc_use_split_config='%s'\ndc_hide_mailname=''\ndc_mailname_in_oh='true'\n"
                    "dc_localdelivery='mail_spool'\n" % ("true" if split else "false"))
        # CONFDIR: Debian's files under the test root, as in a chroot.
        # No reverse DNS per connection: the machine's resolver may be slow,
        # and Exim's greeting waits for it.
        main = ("CONFDIR = {root}/etc/exim4\nSPOOLDIR = {work}/spool\nMAIN_HOST_LOOKUP =\n"
                "log_file_path = {work}/log/%slog\npid_file_path = {work}/exim.pid\n"
                ).replace("{work}", work).replace("{root}", root)
        if split:
            with open(os.path.join(root, "etc/exim4/conf.d/main/000_test"), "w") as f:
                f.write(main)
        else:
            tpl = os.path.join(root, "etc/exim4/exim4.conf.template")
            with open(tpl) as f:
                text = f.read()
            with open(tpl, "w") as f:
                f.write(main + text)
        os.makedirs(os.path.join(root, "var/lib/exim4"))
        config = os.path.join(root, "var/lib/exim4/config.autogenerated")
        run(["update-exim4.conf", "-d", os.path.join(root, "etc/exim4"), "-o", config])
        return root, work, config

    # ---- the tests ----

    def test_debian_split_layout(self):
        server = self.upstream()
        relay = self.relay_for("split", server)
        root, work, config = self.debian_root("split", True)
        self.check_exim_path(root, relay, server, config, work, snapshot(root),
                             "etc/exim4/passwd.client")

    def test_debian_unsplit_layout(self):
        server = self.upstream()
        relay = self.relay_for("unsplit", server)
        root, work, config = self.debian_root("unsplit", False)
        self.check_exim_path(root, relay, server, config, work, snapshot(root),
                             "etc/exim4/passwd.client")

    def cpanel_root(self, name):
        root = os.path.join(self.tmp, name)
        work = self.exim_work(name)
        os.makedirs(os.path.join(root, "etc"))
        config = os.path.join(root, "etc/exim.conf")
        with open(config, "w") as f:
            f.write(CPANEL_CONF.replace("{work}", work))
        with open(os.path.join(root, "etc/exim.conf.local"), "w") as f:
            f.write(CPANEL_LOCAL)
        return root, work, config

    def test_cpanel_layout_with_authenticated_and_php_submitters(self):
        server = self.upstream()
        relay = self.relay_for("cpanel", server)
        root, work, config = self.cpanel_root("cpanel")
        start = snapshot(root)
        exim = self.check_exim_path(root, relay, server, config, work, start,
                                    "etc/exim.smtpguard.secret")
        # Again, for the mailbox login and cPanel's X-PHP-Script header.
        r = self.integrate(relay, "--root", root, *SENDERS)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(exim.wait_listening(20), exim_log(work, "stderr"))
        with open(os.path.join(root, "etc/exim.conf.local")) as f:
            local = f.read()
        self.assertIn("@ROUTERSTART@\n# BEGIN smtpguard", local)
        self.assertEqual(relay.cli("pause").returncode, 0)
        with smtplib.SMTP("127.0.0.1", exim.port, timeout=30) as s:
            s.login("box@shop.example.com", "box-pw")
            s.sendmail("a@shop.example.com", ["x@example.net"],
                       self.message("php", "X-PHP-Script: shop.example.com/contact.php for "
                                    "203.0.113.9\r\n" + HEADER + ": local:forged\r\n"))
        self.assertTrue(wait_for(lambda: len(relay.queue_ids(held=True)) == 1, 40),
                        exim_log(work))
        self.assertEqual(self.held_submitter(relay, "php"),
                         [HEADER + ": auth:box@shop.example.com;script="
                          "shop.example.com/contact.php_for_203.0.113.9"])
        self.assertEqual(relay.cli("resume").returncode, 0)
        self.assert_delivered_without_header(server, relay, work, "php")

    def test_a_render_exim_rejects_changes_nothing(self):
        server = self.upstream()
        relay = self.relay_for("broken", server)
        root, work, config = self.cpanel_root("broken")
        # A router of the same name outside smtpguard's block: exim -bV refuses the result.
        with open(config) as f:
            text = f.read()
        with open(config, "w") as f:
            f.write(text.replace("begin routers\n", "begin routers\n\nsmtpguard_relay:\n"
                                 "  driver = accept\n  transport = devnull\n", 1))
        start = snapshot(root)
        r = self.integrate(relay, "--root", root, *SENDERS)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exim -bV rejects the new configuration", r.stderr)
        self.assertIn("nothing was changed", r.stderr)
        self.assertEqual(snapshot(root), start)
        self.assertNotIn("exim ", relay.cli("client", "list").stdout)

    def test_a_failed_reload_puts_the_old_files_back(self):
        server = self.upstream()
        relay = self.relay_for("reload", server)
        root, work, config = self.cpanel_root("reload")
        # The pid file names a process that, unlike Exim, dies on SIGHUP: the
        # "daemon" is gone after the reload, so the install is rolled back.
        victim = subprocess.Popen(["sleep", "60"])
        self.addCleanup(victim.kill)
        with open(os.path.join(work, "exim.pid"), "w") as f:
            f.write("%d\n" % victim.pid)
        start = snapshot(root)
        r = self.integrate(relay, "--root", root, *SENDERS)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("exited after SIGHUP", r.stderr)
        self.assertIn("the previous files were put back", r.stderr)
        self.assertEqual(snapshot(root), start)
        self.assertNotIn("exim ", relay.cli("client", "list").stdout)
        self.assertIn("nothing to undo", self.integrate(relay, "--root", root, "--undo").stderr)

    def passwd_client_run(self, name, password):
        """Exim, integrated in passwd-client mode, logs in to the upstream
        with exactly `password` taken from passwd.client."""
        server = AuthServer(self.tmp, self.cert, self.key, UPSTREAM_USER, password)
        self.peers.append(server)
        relay = Relay(self.tmp, '[upstream.test]\nhost = "localhost"\nport = %d\n'
                      'tls = "starttls"\nca_file = "%s"\ncredential = "ses"\n'
                      % (server.port, self.ca.cert), name=name)
        for args, stdin in ((["vault", "init"], None),
                            (["vault", "set", "ses", "--username", UPSTREAM_USER],
                             password + "\n")):
            r = relay.cli(*args, input=stdin)
            self.assertEqual(r.returncode, 0, r.stderr)
        work = self.exim_work(name)
        confdir = os.path.join(self.tmp, name + "-conf")
        os.makedirs(confdir)
        os.chmod(confdir, 0o755)
        config = os.path.join(confdir, "exim.conf")
        with open(config, "w") as f:
            f.write(CPANEL_CONF.replace("{work}", work))
        # A seed-style plaintext line for the same host, which must be replaced.
        with open(os.path.join(confdir, "passwd.client"), "w") as f:
            f.write("# other hosts stay\nmail.example.org:u:p\nlocalhost:OLD:old-secret\n")
        r = relay.cli("integrate", "exim", "--mode", "passwd-client", "--config-file", config)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        pc = os.path.join(confdir, "passwd.client")
        st = os.stat(pc)
        self.assertEqual((st.st_mode & 0o7777, st.st_uid, st.st_gid),
                         (0o640, 0, grp.getgrnam("Debian-exim").gr_gid))
        with open(pc) as f:
            text = f.read()
        self.assertIn("mail.example.org:u:p\n", text)
        self.assertNotIn("old-secret", text)
        r = relay.cli("integrate", "exim", "--mode", "passwd-client", "--config-file", config)
        self.assertIn("nothing changed", r.stdout)
        port, _ = self.start_exim(config, work)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.sendmail("a@shop.example.com", ["x@example.net"], self.message("direct"))
        self.assertTrue(wait_for(lambda: self.submitted(server, "direct") is not None, 40),
                        exim_log(work))
        return text

    def test_passwd_client_mode_with_every_awkward_character(self):
        text = self.passwd_client_run("pc1", " a/b&c\\d:e#f'g h^i$j{k}")
        self.assertIn("localhost:%s: a/b&c\\d:e#f'g h^i$j{k}\n" % UPSTREAM_USER, text)

    def test_passwd_client_mode_with_a_password_lsearch_cannot_hold_verbatim(self):
        text = self.passwd_client_run("pc2", "ends in a space/&\\:#' ")
        self.assertIn("localhost:%s:{base64}" % UPSTREAM_USER, text)


if __name__ == "__main__":
    unittest.main()
