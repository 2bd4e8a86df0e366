"""The tamper-evident audit log with a real relay: mail received and
delivered through a real STARTTLS server, pause, resume and reload leave a
hash-chained log that `smtpguard audit verify` accepts; a line changed,
deleted or reordered with Python, or a cut tail, is reported with its line
number; with a tiny audit_max_size the chain runs across rotated files."""
import json
import os
import shutil
import smtplib
import unittest

from harness import (APP_PW, UPSTREAM_PW, UPSTREAM_USER, AuthServer, Relay, SmtpguardTestCase,
                     wait_for)


class AuditLogTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_server_cert()

    def start_relay(self, name, monitor=""):
        server = AuthServer(self.tmp, self.cert, self.key, UPSTREAM_USER, UPSTREAM_PW)
        self.peers.append(server)
        relay = Relay(self.tmp, '[upstream.test]\nhost = "localhost"\nport = %d\n'
                      'tls = "starttls"\nca_file = "%s"\ncredential = "ses"\n'
                      'timeout_seconds = 10\n[delivery]\nfirst_retry = "1s"\n'
                      '[monitor]\nlisten = ""\n%s\n' % (server.port, self.ca.cert, monitor),
                      name=name)
        self.provision(relay)
        relay.start()
        self.addCleanup(relay.stop)
        return relay, server

    def send(self, relay, n, subject="audit"):
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
            s.login("shop", APP_PW)
            for i in range(n):
                s.sendmail("a@shop.example.com", ["x%d@example.net" % i],
                           "From: a@shop.example.com\r\nSubject: %s %d\r\n\r\nbody\r\n"
                           % (subject, i))

    def events(self, relay):
        return [e["event"] for e in relay.audit()]

    def series_events(self, relay):
        """Event names from audit.jsonl.N ... audit.jsonl.1, audit.jsonl."""
        names = sorted((n for n in os.listdir(relay.state) if n.startswith("audit.jsonl.")),
                       key=lambda n: -int(n.rsplit(".", 1)[1])) + ["audit.jsonl"]
        out = []
        for name in names:
            try:
                with open(os.path.join(relay.state, name)) as f:
                    out += [json.loads(l)["event"] for l in f if l.endswith("\n")]
            except OSError:  # rotated while we looked: wait_for asks again
                return []
        return out

    def verify(self, relay, *paths):
        return relay.cli("audit", "verify", *paths)

    def copy_lines(self, relay):
        """The relay's audit.jsonl as a list of lines (bytes, no newline)."""
        with open(os.path.join(relay.state, "audit.jsonl"), "rb") as f:
            return f.read().split(b"\n")[:-1]

    def write_copy(self, name, lines, tail=b"\n"):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(b"\n".join(lines) + tail)
        return path

    def test_relay_log_verifies_and_tampering_is_found(self):
        relay, server = self.start_relay("chain")
        self.send(relay, 3)
        self.assertTrue(wait_for(lambda: len(server.messages()) == 3), relay.logs())
        self.assertTrue(wait_for(lambda: self.events(relay).count("delivered") == 3))
        r = relay.cli("pause")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.send(relay, 1, "while paused")
        r = relay.cli("resume")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = relay.cli("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_for(lambda: self.events(relay).count("delivered") == 4),
                        relay.logs())

        events = relay.audit()
        names = [e["event"] for e in events]
        for expected in ("received", "delivered", "paused", "held", "resumed",
                         "config_reloaded"):
            self.assertIn(expected, names)
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)))
        self.assertEqual(events[0]["prev"], "0" * 64)
        procs = {e["event"]: e["proc"] for e in events}
        self.assertEqual(procs["received"], "receiver")
        self.assertEqual(procs["delivered"], "deliverer")
        self.assertEqual(procs["config_reloaded"], "supervisor")
        delivered = [e for e in events if e["event"] == "delivered"]
        self.assertTrue(all(e["upstream_id"] and e["credential"] == "ses" for e in delivered))

        r = self.verify(relay, relay.state)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("OK: %d lines" % len(events), r.stdout)
        r = self.verify(relay, os.path.join(relay.state, "audit.jsonl"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        lines = self.copy_lines(relay)
        # An edited line (a recipient changed, valid JSON still): named by number.
        edited = list(lines)
        record = json.loads(edited[2])
        record["tampered"] = True
        edited[2] = json.dumps(record, separators=(",", ":")).encode()
        r = self.verify(relay, self.write_copy("edited.jsonl", edited))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("line 3: changed", r.stdout)
        # A deleted line.
        r = self.verify(relay, self.write_copy("deleted.jsonl", lines[:4] + lines[5:]))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("line 5: 1 line missing", r.stdout)
        # Two lines swapped.
        swapped = list(lines)
        swapped[3], swapped[4] = swapped[4], swapped[3]
        r = self.verify(relay, self.write_copy("swapped.jsonl", swapped))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("line 4: lines out of order", r.stdout)
        # The last line cut short.
        cut = lines[:-1] + [lines[-1][:len(lines[-1]) // 2]]
        r = self.verify(relay, self.write_copy("cut.jsonl", cut, tail=b""))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("line %d: truncated" % len(lines), r.stdout)
        # Missing file: sysexits EX_NOINPUT.
        r = self.verify(relay, os.path.join(self.tmp, "absent.jsonl"))
        self.assertEqual(r.returncode, 66, r.stderr)
        self.assertTrue(r.stderr.startswith("smtpguard: "), r.stderr)

        # The relay keeps writing after an edit elsewhere; the chain in its
        # own file is still intact, and a CLI line (pause with no relay
        # running) links to it.
        relay.stop()
        r = relay.cli("pause")
        self.assertEqual(r.returncode, 0, r.stderr)
        last = relay.audit()[-1]
        self.assertEqual((last["event"], last["proc"]), ("paused", "cli"))
        r = self.verify(relay, relay.state)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_rotation_keeps_the_chain_across_files(self):
        # 30 messages in a burst are above the rate detector's floor; whether
        # its hold comes before the last delivery is a race, so it only alerts.
        relay, server = self.start_relay(
            "rotate", 'audit_max_size = 4096\naudit_keep = 50\naudit_syslog = true\n'
            '[detect.rate]\naction = "alert"')
        self.send(relay, 30)
        self.assertTrue(wait_for(lambda: len(server.messages()) == 30, 60), relay.logs())
        self.assertTrue(wait_for(lambda: self.series_events(relay).count("delivered") == 30),
                        relay.logs())
        relay.stop()
        rotated = sorted(n for n in os.listdir(relay.state) if n.startswith("audit.jsonl."))
        self.assertGreaterEqual(len(rotated), 3, rotated)
        for name in rotated:
            self.assertLess(os.path.getsize(os.path.join(relay.state, name)), 4096 + 1024)
        with open(os.path.join(relay.state, "audit.jsonl")) as f:
            first = json.loads(f.readline())
        self.assertEqual(first["event"], "audit_rotated")
        r = self.verify(relay, relay.state)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("in %d files" % (len(rotated) + 1), r.stdout)
        # A rotated file in the middle gone: a gap between files.
        files = [os.path.join(relay.state, n)
                 for n in sorted(rotated, key=lambda n: -int(n.rsplit(".", 1)[1]))]
        files.append(os.path.join(relay.state, "audit.jsonl"))
        r = self.verify(relay, *(files[:1] + files[2:]))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("gap between files", r.stdout)

    def test_logrotate_rename_is_followed(self):
        relay, server = self.start_relay("logrotate")
        self.send(relay, 2)
        self.assertTrue(wait_for(lambda: self.events(relay).count("delivered") == 2))
        path = os.path.join(relay.state, "audit.jsonl")
        shutil.move(path, path + ".1")  # as logrotate does (create mode: a new file)
        self.send(relay, 1, "after logrotate")
        self.assertTrue(wait_for(lambda: self.events(relay).count("delivered") == 1),
                        relay.logs())
        self.assertEqual(relay.audit()[0]["event"], "audit_reopened")
        r = self.verify(relay, relay.state)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("in 2 files", r.stdout)


if __name__ == "__main__":
    unittest.main()
