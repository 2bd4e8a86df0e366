"""The relay end to end: a client submits to the relay under its own identity,
the deliverer (the only process holding the sealed credential) takes it to a
real SMTP server that requires STARTTLS and one exact login; a recipient the
server refuses for good comes back to the sender as a DSN."""
import re
import smtplib
import unittest

from harness import (APP_PW, UPSTREAM_PW, UPSTREAM_USER, AuthServer, Relay, SmtpguardTestCase,
                     wait_for)

USER = UPSTREAM_USER


def memory_contains(pid, needle):
    """Reads every readable mapping of a process through /proc/PID/mem (as
    root) and says whether `needle` occurs in it."""
    found = False
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1]:
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue  # guard pages, vsyscall
            if needle in chunk:
                found = True
    return found


class RelayDeliveryTest(SmtpguardTestCase):

    def start_relay(self, server, name):
        relay = Relay(self.tmp, '[upstream.test]\nhost = "localhost"\nport = %d\n'
                      'tls = "starttls"\nca_file = "%s"\ncredential = "ses"\ntimeout_seconds = 10\n'
                      % (server.port, self.ca.cert), name=name)
        self.provision(relay, "--max-recipients", "100")
        relay.start()
        self.addCleanup(relay.stop)
        return relay

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_server_cert()

    def test_accepted_mail_arrives_upstream_byte_exact(self):
        server = AuthServer(self.tmp, self.cert, self.key, USER, UPSTREAM_PW)
        self.peers.append(server)
        relay = self.start_relay(server, "deliver")
        data = ("From: a@shop.example.com\r\nTo: x@example.net\r\nSubject: end to end\r\n\r\n"
                ".dot line\r\nbody\r\n")
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
            s.login("shop", APP_PW)
            for n in range(3):
                s.sendmail("a@shop.example.com", ["x@example.net", "y@example.net"],
                           data.replace("end to end", "end to end %d" % n))
        self.assertTrue(wait_for(lambda: len(server.messages()) == 3), relay.logs())
        for m in server.messages():
            self.assertEqual(m["login"], USER)
            self.assertTrue(m["tls"])
            self.assertEqual(m["mail_from"], "a@shop.example.com")
            self.assertEqual(sorted(m["rcpt_tos"]), ["x@example.net", "y@example.net"])
            self.assertIn("\r\n.dot line\r\nbody\r\n", m["data"])
        self.assertTrue(wait_for(lambda: relay.queue_ids() == []))
        delivered = [e for e in relay.audit() if e["event"] == "delivered"]
        self.assertEqual(len(delivered), 6)
        self.assertTrue(all(e["upstream_id"] for e in delivered), delivered)
        with open(relay.log_path) as f1, open(relay.state + "/audit.jsonl") as f2:
            log = f1.read() + f2.read()
        self.assertNotIn(UPSTREAM_PW, log)
        # The trust boundary: after relaying, the receiver (which parses client
        # bytes) has never held the upstream password; the deliverer does (the
        # control case that shows the search works).
        pids = re.search(r"receiver pid (\d+), deliverer pid (\d+)", log)
        self.assertIsNotNone(pids, log)
        receiver, deliverer = int(pids.group(1)), int(pids.group(2))
        self.assertFalse(memory_contains(receiver, UPSTREAM_PW.encode()))
        self.assertTrue(memory_contains(deliverer, UPSTREAM_PW.encode()))

    def test_more_than_50_recipients_are_split(self):
        server = AuthServer(self.tmp, self.cert, self.key, USER, UPSTREAM_PW)
        self.peers.append(server)
        relay = self.start_relay(server, "split")
        rcpts = ["r%02d@example.net" % i for i in range(60)]
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
            s.login("shop", APP_PW)
            s.sendmail("a@shop.example.com", rcpts,
                       "From: a@shop.example.com\r\nSubject: many\r\n\r\nx\r\n")
        self.assertTrue(wait_for(lambda: len(server.messages()) == 2), relay.logs())
        sizes = sorted(len(m["rcpt_tos"]) for m in server.messages())
        self.assertEqual(sizes, [10, 50])
        got = sorted(r for m in server.messages() for r in m["rcpt_tos"])
        self.assertEqual(got, rcpts)
        self.assertTrue(wait_for(lambda: relay.queue_ids() == []))

    def test_permanent_refusal_bounces_to_the_sender(self):
        server = AuthServer(self.tmp, self.cert, self.key, USER, UPSTREAM_PW,
                            extra=["--reply-on-rcpt", "550 5.1.1 no such user"])
        self.peers.append(server)
        relay = self.start_relay(server, "bounce")
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
            s.login("shop", APP_PW)
            s.sendmail("a@shop.example.com", ["nobody@example.net"],
                       "From: a@shop.example.com\r\nSubject: will bounce\r\n\r\nx\r\n")
        # The message fails, its DSN (to a@shop.example.com, null sender) is
        # refused by the same server too and, being a bounce, is not bounced.
        self.assertTrue(wait_for(lambda: relay.queue_ids() == []), relay.logs())
        events = relay.audit()
        bounced = [e for e in events if e["event"] == "bounced"]
        self.assertEqual([e["recipient"] for e in bounced], ["nobody@example.net",
                                                             "a@shop.example.com"])
        self.assertIn("550", bounced[0]["reply"])


if __name__ == "__main__":
    unittest.main()
