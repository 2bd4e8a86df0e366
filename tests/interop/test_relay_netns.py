"""A listener on a non-loopback address: STARTTLS before AUTH, and
[relay] allow_from. Runs in a private network namespace (ctest starts it
under `unshare --net`) where 192.0.2.1 and 192.0.2.200 are local addresses,
so no traffic can leave the machine."""
import smtplib
import socket
import ssl
import subprocess
import unittest

from harness import Relay, SmtpguardTestCase, TestCA, wait_for
from test_relay_submission import SHOP_PW, RawClient, message

SERVER, OUTSIDER = "192.0.2.1", "192.0.2.200"


def setup_namespace():
    for cmd in (["ip", "link", "set", "lo", "up"],
                ["ip", "addr", "add", SERVER + "/32", "dev", "lo"],
                ["ip", "addr", "add", OUTSIDER + "/32", "dev", "lo"]):
        subprocess.run(cmd, check=True, capture_output=True)


class NonLoopbackListenerTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        setup_namespace()
        cls.ca = TestCA(cls.tmp)
        cert, key = cls.ca.leaf("relay", dns=["localhost"], ips=[SERVER])
        cls.relay = Relay(cls.tmp, 'allow_from = ["%s/32"]\n[relay.tls]\ncert_file = "%s"\n'
                          'key_file = "%s"\n' % (SERVER, cert, key), host=SERVER)
        r = cls.relay.cli("client", "add", "shop", "--password-stdin", "--allowed-sender",
                          "*@shop.example.com", input=SHOP_PW + "\n")
        assert r.returncode == 0, r.stderr
        cls.relay.start()

    @classmethod
    def tearDownClass(cls):
        cls.relay.stop()
        super().tearDownClass()

    def connect(self, source):
        c = RawClient.__new__(RawClient)
        c.s = socket.create_connection((SERVER, self.relay.port), timeout=10,
                                       source_address=(source, 0))
        c.buf = b""
        return c, c.reply()

    def test_auth_needs_tls_first(self):
        c, greeting = self.connect(SERVER)
        self.assertTrue(greeting.startswith("220"), greeting)
        ehlo = c.cmd("EHLO t.test")
        self.assertIn("STARTTLS", ehlo)
        self.assertNotIn("AUTH", ehlo)
        self.assertRegex(c.cmd("AUTH PLAIN AHNob3AAeA=="), "^5")
        c.close()
        ctx = ssl.create_default_context(cafile=self.ca.cert)
        before = self.relay.queue_ids()
        with smtplib.SMTP(SERVER, self.relay.port, timeout=30) as s:
            s.starttls(context=ctx)
            s.login("shop", SHOP_PW)
            s.sendmail("a@shop.example.com", ["x@example.net"],
                       message("a@shop.example.com", "x@example.net", "over tls"))
        self.assertEqual(len([i for i in self.relay.queue_ids() if i not in before]), 1)

    def test_address_outside_allow_from_is_turned_away(self):
        c, greeting = self.connect(OUTSIDER)
        self.assertTrue(greeting.startswith("554 5.7.1"), greeting)
        self.assertEqual(c.reply(), "closed")
        c.close()
        # The receiver's audit lines reach the file through the supervisor.
        def refused():
            return [e for e in self.relay.audit() if e["event"] == "connection_refused"]
        self.assertTrue(wait_for(refused, 10))
        self.assertEqual(refused()[-1]["peer"], OUTSIDER)


if __name__ == "__main__":
    unittest.main()
