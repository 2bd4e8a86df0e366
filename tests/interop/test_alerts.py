"""`smtpguard alert test` through real sinks.

A webhook receiver (http.server) that records POST bodies, or answers 500;
a program run by the exec sink that writes its stdin to a file; email
through a second upstream (aiosmtpd requiring STARTTLS and one login, with
the login sealed in the vault); syslog through a /dev/log datagram socket
the test owns, inside a private mount namespace (the machine has none);
email straight to the recipient's MX, inside private network, mount and PID
namespaces with a real DNS server (dnsmasq) and MX servers (aiosmtpd) on
127.0.0.x:53 and :25 (DirectMxTest below).
"""
import email.parser
import email.policy
import email.utils
import http.server
import json
import os
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import unittest

from aiosmtpd.controller import Controller
from harness import (APP_PW, HERE, PYTHON, SMTPGUARD, UPSTREAM_PW, UPSTREAM_USER, AuthServer, Relay,
                     SmtpguardTestCase, TestCA, free_port, wait_for)


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


# Direct-to-MX email. DirectMxTest (outside) runs each test of DirectMxWorld
# in a fresh `unshare --net --mount --pid`: the world owns 127.0.0.0/8 port
# 53 and 25, /etc/resolv.conf and the CA bundle are bind-mounted only there,
# and the kernel kills dnsmasq and everything else when the test's process
# (PID 1 of the namespace) exits.
WORLD_ENV = "SG_TEST_MX_WORLD"  # the outer mount namespace, so the world can tell it is inside

# The world's MX servers on port 25: name -> (address, certificate for
# STARTTLS: "trusted", "untrusted" or None for no STARTTLS). Nothing listens
# on 127.0.0.5, backup.test's preferred MX: connection refused.
MX_HOSTS = {
    "mx.tls.test": ("127.0.0.1", "trusted"),
    "mx.plain.test": ("127.0.0.2", None),
    "mx.selfsigned.test": ("127.0.0.3", "untrusted"),
    "nomx.test": ("127.0.0.4", "trusted"),  # no MX record: its A record is the MX
}
DNSMASQ_RECORDS = [
    "--mx-host=tls.test,mx.tls.test,10",
    "--mx-host=plain.test,mx.plain.test,10",
    "--mx-host=selfsigned.test,mx.selfsigned.test,10",
    "--mx-host=backup.test,mx-down.backup.test,10",  # preferred, but nobody listens
    "--mx-host=backup.test,mx.plain.test,20",
    "--address=/mx.tls.test/127.0.0.1",
    "--address=/mx.plain.test/127.0.0.2",
    "--address=/mx.selfsigned.test/127.0.0.3",
    "--address=/mx-down.backup.test/127.0.0.5",
    "--host-record=nomx.test,127.0.0.4",  # an A record, NODATA for MX
    "--local=/test/",  # any other name under .test: NXDOMAIN
]  # names outside .test: REFUSED (no upstream server), a DNS failure


class MxHandler:
    """aiosmtpd handler keeping what each MX accepted, with HELO and TLS."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"helo": session.host_name, "tls": session.ssl is not None,
                              "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                              "data": envelope.original_content.decode("utf-8", "replace")})
        return "250 Ok"


@unittest.skipUnless(os.environ.get(WORLD_ENV), "runs inside DirectMxTest's namespaces")
class DirectMxWorld(SmtpguardTestCase):
    @classmethod
    def setUpClass(cls):
        # Only where the mount and network namespaces are private: the bind
        # mounts below would otherwise change the machine's DNS and CAs.
        if os.readlink("/proc/self/ns/mnt") == os.environ[WORLD_ENV]:
            raise RuntimeError("not in a private mount namespace")
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                               check=True).stdout.splitlines()
        if len(links) != 1 or ": lo:" not in links[0]:
            raise RuntimeError("not in a private network namespace: %s" % links)
        super().setUpClass()
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        cls.ca = TestCA(cls.tmp)
        os.mkdir(os.path.join(cls.tmp, "other"))
        other_ca = TestCA(os.path.join(cls.tmp, "other"), "not trusted")
        resolv = cls.write_config("resolv.conf", "nameserver 127.0.0.1\n")
        for source, target in ((resolv, "/etc/resolv.conf"),
                               (cls.ca.cert, "/etc/ssl/certs/ca-certificates.crt")):
            subprocess.run(["mount", "--bind", source, target], check=True)
        cls.dns_log = os.path.join(cls.tmp, "dnsmasq.log")
        cls.dnsmasq = subprocess.Popen(
            ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
             "--user=root", "--no-resolv", "--no-hosts", "--port", "53",
             "--listen-address", "127.0.0.1", "--bind-interfaces", "--log-queries",
             "--log-facility=" + cls.dns_log, *DNSMASQ_RECORDS],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def resolves():
            try:
                return socket.getaddrinfo("mx.tls.test", 25)[0][4][0] == "127.0.0.1"
            except OSError:
                return False
        if not wait_for(resolves, 10):
            raise RuntimeError("dnsmasq did not answer")
        cls.mx = {}
        for name, (address, cert) in MX_HOSTS.items():
            kw = {}
            if cert:
                ca = cls.ca if cert == "trusted" else other_ca
                ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                ctx.load_cert_chain(*ca.leaf(name, dns=[name]))
                kw["tls_context"] = ctx
            handler = MxHandler()
            controller = Controller(handler, hostname=address, port=25, server_hostname=name,
                                    ready_timeout=10, **kw)
            controller.start()
            cls.mx[name] = (controller, handler)

    @classmethod
    def tearDownClass(cls):
        for controller, _ in cls.mx.values():
            controller.stop()
        cls.dnsmasq.kill()
        cls.dnsmasq.wait(10)
        super().tearDownClass()

    def config(self, alerts, extra=""):
        state = os.path.join(self.tmp, "state-" + self._testMethodName)
        return self.write_config(self._testMethodName + ".toml",
                                 '[relay]\nstate_dir = "%s"\n%s\n%s\n' % (state, extra, alerts))

    def alert_test(self, to, message, email_from=None, status=0):
        alert = '[[alert]]\nemail = "%s"\n' % to
        if email_from:
            alert += 'email_from = "%s"\n' % email_from
        r = self.smtpguard("alert", "test", "--message", message, config=self.config(alert))
        self.assertEqual(r.returncode, status, r.stdout + r.stderr + self.dns_queries())
        return r

    def dns_queries(self):
        with open(self.dns_log) as f:
            return "\ndnsmasq:\n" + f.read()[-2000:]

    def received(self, mx, count=1):
        """The messages `mx` accepted, after asserting there are `count`."""
        messages = self.mx[mx][1].messages
        self.assertEqual(len(messages), count, [m["data"][:200] for m in messages])
        return messages

    def assert_alert_message(self, m, sender, to, title):
        self.assertEqual(m["mail_from"], sender)
        self.assertEqual(m["rcpt_tos"], [to])
        # The MX was greeted with this machine's name, which the alert names too.
        host = socket.gethostname()
        self.assertEqual(m["helo"], host)
        msg = email.parser.Parser(policy=email.policy.default).parsestr(m["data"])
        self.assertEqual(msg["From"], sender)
        self.assertEqual(msg["To"], to)
        self.assertEqual(msg["Subject"], "[smtpguard %s] %s" % (host, title))
        self.assertLess(abs(email.utils.parsedate_to_datetime(msg["Date"]).timestamp()
                            - time.time()), 300)
        self.assertRegex(msg["Message-ID"], r"^<\d+\.[0-9a-f]+@%s>$" % host)
        self.assertEqual(msg["Auto-Submitted"], "auto-generated")
        body = msg.get_content().replace("\r\n", "\n")
        self.assertTrue(body.startswith(title + "\n"), body)
        # The same JSON document a webhook gets closes the body.
        doc = json.loads(body[body.index("{"):])
        self.assertEqual(doc["title"], title)
        return doc

    def setUp(self):
        for _, handler in self.mx.values():
            handler.messages.clear()

    def delivered(self, to, title, mx, tls, email_from=None):
        """Sends a test alert to `to`; asserts that `mx` alone got it, over
        TLS or not, as a proper alert message. Returns it and its JSON."""
        r = self.alert_test(to, title, email_from)
        self.assertIn("email %s: sent" % to, r.stdout)
        m = self.received(mx)[0]
        for other in self.mx:
            if other != mx:
                self.received(other, 0)
        self.assertEqual(m["tls"], tls)
        # No email_from: smtpguard@ this host.
        sender = email_from or "smtpguard@" + socket.gethostname()
        return m, self.assert_alert_message(m, sender, to, title)

    def test_verified_starttls_to_the_mx(self):
        m, doc = self.delivered("ops@tls.test", "direct works", "mx.tls.test", True,
                                "guard@shop.example.com")
        self.assertEqual(doc["key"], "test")
        self.assertIn("smtpguard alert test", m["data"])  # the detail

    def test_mx_without_starttls_gets_plain_text(self):
        self.delivered("ops@plain.test", "plain works", "mx.plain.test", False)

    def test_unverifiable_certificate_falls_back_to_plain_text(self):
        # Opportunistic TLS between mail servers: losing the alert over the
        # MX's certificate would be worse than sending it in the clear.
        self.delivered("ops@selfsigned.test", "self-signed MX", "mx.selfsigned.test", False)

    def test_domain_without_mx_gets_mail_at_its_address(self):
        # RFC 5321 5.1: no MX records, so the domain itself is the MX (its A
        # record), and its certificate names the domain: verified TLS.
        self.delivered("ops@nomx.test", "implicit MX", "nomx.test", True)

    def test_next_mx_when_the_preferred_one_is_down(self):
        self.delivered("ops@backup.test", "backup MX", "mx.plain.test", False)

    def test_nxdomain_is_a_clear_failure(self):
        r = self.alert_test("ops@nowhere.test", "lost", status=69)
        self.assertIn("email ops@nowhere.test: FAILED: mail domain nowhere.test does not exist",
                      r.stdout)
        for name in self.mx:
            self.received(name, 0)

    def test_dns_failure_is_not_taken_for_a_missing_mx(self):
        # REFUSED is not "no MX records": no A-record fallback, a DNS error.
        r = self.alert_test("ops@broken.example", "dns down", status=69)
        self.assertIn("email ops@broken.example: FAILED: cannot look up the MX of broken.example",
                      r.stdout)

    def test_detector_alert_reaches_the_mx_and_the_audit_log(self):
        # The auth-failure detector (5 failures block the address) alerts two
        # sinks: one MX that takes the mail and one domain that does not exist.
        relay = Relay(self.tmp, name="detect", extra_config=(
            '[monitor]\nlisten = ""\n[[alert]]\nemail = "ops@tls.test"\n'
            '[[alert]]\nemail = "ops@nowhere.test"\n'))
        r = relay.cli("client", "add", "shop", "--password-stdin", "--allowed-sender",
                      "*@shop.example.com", input=APP_PW + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        relay.start()
        self.addCleanup(relay.stop)
        for _ in range(5):
            try:
                with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
                    with self.assertRaises(smtplib.SMTPAuthenticationError):
                        s.login("shop", "wrong password")
            except smtplib.SMTPConnectError:
                break  # already blocked
        def sent_lines():
            return [e for e in relay.audit() if e["event"] == "alert_sent"]
        self.assertTrue(wait_for(lambda: len(sent_lines()) >= 2, 60),
                        relay.logs() + self.dns_queries())
        by_sink = {e["sink"]: e for e in sent_lines()}
        self.assertTrue(by_sink["email ops@tls.test"]["sent"], by_sink)
        failed = by_sink["email ops@nowhere.test"]
        self.assertFalse(failed["sent"])
        self.assertEqual(failed["error"], "mail domain nowhere.test does not exist (NXDOMAIN)")
        m = self.received("mx.tls.test")[0]
        self.assertTrue(m["tls"])
        msg = email.parser.Parser(policy=email.policy.default).parsestr(m["data"])
        self.assertIn("127.0.0.1", msg["Subject"])  # the blocked address
        self.assertEqual(m["rcpt_tos"], ["ops@tls.test"])


class DirectMxTest(unittest.TestCase):
    """Runs each DirectMxWorld test inside its own private namespaces."""

    def run_inside(self, name):
        if os.geteuid() != 0:
            self.skipTest("needs root for private namespaces")
        env = dict(os.environ, **{WORLD_ENV: os.readlink("/proc/self/ns/mnt"),
                                  "SMTPGUARD": SMTPGUARD, "PYTHONDONTWRITEBYTECODE": "1"})
        r = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child",
                            "--mount-proc", PYTHON, "-m", "unittest", "-v",
                            "test_alerts.DirectMxWorld." + name],
                           cwd=HERE, env=env, capture_output=True, text=True, timeout=180)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r"\nOK\n", r.stderr)  # ran, not skipped


for _name in [n for n in dir(DirectMxWorld) if n.startswith("test_")]:
    setattr(DirectMxTest, _name, lambda self, n=_name: self.run_inside(n))


if __name__ == "__main__":
    unittest.main()
