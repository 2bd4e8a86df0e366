"""`smtpguard alert test` through real sinks.

A webhook receiver (http.server) that records POST bodies, or answers 500;
a program run by the exec sink that writes its stdin to a file; email
through a second upstream (aiosmtpd requiring STARTTLS and one login, with
the login sealed in the vault); syslog through a /dev/log datagram socket
the test owns, inside a private mount namespace (the machine has none).
"""
import http.server
import json
import os
import socket
import subprocess
import threading
import unittest

from harness import (SMTPGUARD, UPSTREAM_PW, UPSTREAM_USER, AuthServer, SmtpguardTestCase,
                     free_port, wait_for)


class Hook(http.server.BaseHTTPRequestHandler):
    bodies = []
    status = 200

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        Hook.bodies.append((self.headers.get("Content-Type"), self.rfile.read(length)))
        self.send_response(Hook.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class AlertTest(SmtpguardTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_server_cert()
        cls.httpd = http.server.HTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()
        cls.hook_url = "http://127.0.0.1:%d/hook" % cls.httpd.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.httpd.shutdown()
        super().tearDownClass()

    def setUp(self):
        Hook.bodies.clear()
        Hook.status = 200

    def config(self, alerts, extra=""):
        state = os.path.join(self.tmp, "state-" + self._testMethodName)
        return self.write_config(self._testMethodName + ".toml",
                                 '[relay]\nstate_dir = "%s"\n%s\n%s\n' % (state, extra, alerts))

    def test_webhook_gets_json_with_text_field(self):
        cfg = self.config('[[alert]]\nwebhook = "%s"\n' % self.hook_url)
        r = self.smtpguard("alert", "test", "--message", "burst from shop", config=cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("webhook %s: sent" % self.hook_url, r.stdout)
        self.assertEqual(len(Hook.bodies), 1)
        ctype, body = Hook.bodies[0]
        self.assertEqual(ctype, "application/json")
        doc = json.loads(body)
        self.assertIn("burst from shop", doc["text"])  # Slack/Teams show "text"
        self.assertEqual(doc["title"], "burst from shop")
        self.assertEqual(doc["key"], "test")

    def test_failing_webhook_is_reported(self):
        Hook.status = 500
        cfg = self.config('[[alert]]\nwebhook = "%s"\n' % self.hook_url)
        r = self.smtpguard("alert", "test", config=cfg)
        self.assertEqual(r.returncode, 69, r.stdout + r.stderr)
        self.assertIn("FAILED: HTTP status 500", r.stdout)
        # Nobody listening at all.
        cfg = self.config('[[alert]]\nwebhook = "http://127.0.0.1:%d/"\n' % free_port())
        r = self.smtpguard("alert", "test", config=cfg)
        self.assertEqual(r.returncode, 69)
        self.assertIn("FAILED", r.stdout)

    def test_exec_gets_the_alert_on_stdin(self):
        out = os.path.join(self.tmp, "exec-out.json")
        script = self.write_config("page-me.sh", "#!/bin/sh\ncat > %s\n" % out)
        os.chmod(script, 0o755)
        cfg = self.config('[[alert]]\nexec = "%s"\n' % script)
        r = self.smtpguard("alert", "test", "--message", "exec works", config=cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(out) as f:
            doc = json.loads(f.read())
        self.assertEqual(doc["title"], "exec works")
        # A program that fails is reported with its status.
        bad = self.write_config("fail.sh", "#!/bin/sh\nexit 3\n")
        os.chmod(bad, 0o755)
        r = self.smtpguard("alert", "test", config=self.config('[[alert]]\nexec = "%s"\n' % bad))
        self.assertEqual(r.returncode, 69)
        self.assertIn("exited with status 3", r.stdout)

    def test_email_through_a_second_upstream(self):
        server = AuthServer(self.tmp, self.cert, self.key, UPSTREAM_USER, UPSTREAM_PW)
        self.peers.append(server)
        port = server.port
        upstream = ('[upstream.mail]\nhost = "localhost"\nport = %d\nca_file = "%s"\n'
                    'credential = "ses"\n[upstream.alerts]\nhost = "localhost"\nport = %d\n'
                    'ca_file = "%s"\ncredential = "alerts"\n' % (port, self.ca.cert, port,
                                                                  self.ca.cert))
        cfg = self.config('[[alert]]\nemail = "ops@example.com"\nemail_upstream = "alerts"\n'
                          'email_from = "guard@shop.example.com"\n', upstream)
        for args, stdin in ((["vault", "init"], None),
                            (["vault", "set", "alerts", "--username", UPSTREAM_USER],
                             UPSTREAM_PW + "\n")):
            r = self.smtpguard(*args, config=cfg, input=stdin)
            self.assertEqual(r.returncode, 0, r.stderr)
        r = self.smtpguard("alert", "test", "--message", "mail works", config=cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        wait_for(lambda: server.messages(), 10)
        m = server.messages()[0]
        self.assertEqual(m["mail_from"], "guard@shop.example.com")
        self.assertEqual(m["rcpt_tos"], ["ops@example.com"])
        self.assertIn("Subject: [smtpguard ", m["data"])
        self.assertIn("mail works", m["data"])

    def test_email_upstream_must_exist(self):
        cfg = self.config('[[alert]]\nemail = "ops@example.com"\nemail_upstream = "nope"\n')
        r = self.smtpguard("alert", "test", config=cfg)
        self.assertEqual(r.returncode, 78)
        self.assertIn("email_upstream", r.stderr)

    def test_syslog(self):
        if os.geteuid() != 0:
            self.skipTest("needs root for a private mount namespace")
        sock_path = os.path.join(self.tmp, "log.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(10)
        cfg = self.config('[[alert]]\nsyslog = true\n')
        olddev = os.path.join(self.tmp, "olddev")
        os.mkdir(olddev)
        # /dev/log -> our socket, only inside the namespace.
        script = ('mount --make-rprivate / && mount --bind /dev %s && mount -t tmpfs tmpfs /dev'
                  ' && for n in null zero urandom random; do touch /dev/$n &&'
                  ' mount --bind %s/$n /dev/$n; done && ln -s %s /dev/log &&'
                  ' exec %s --config %s alert test --message "syslog works"'
                  % (olddev, olddev, sock_path, SMTPGUARD, cfg))
        r = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        record = sock.recv(4096).decode()
        sock.close()
        # <PRI> = LOG_MAIL (2) * 8 + LOG_WARNING (4) = 20
        self.assertTrue(record.startswith("<20>"), record)
        self.assertIn("smtpguard[", record)
        self.assertIn("ALERT syslog works", record)

    def test_no_sink(self):
        r = self.smtpguard("alert", "test", config=self.config(""))
        self.assertEqual(r.returncode, 78)
        self.assertIn("no [[alert]] sink", r.stderr)


if __name__ == "__main__":
    unittest.main()
