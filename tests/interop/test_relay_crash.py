"""kill -9 of the whole relay while clients submit: after a restart every
message that got a 250 is in the spool, intact."""
import smtplib
import threading
import time
import unittest

from harness import Relay, SmtpguardTestCase

PW = "crash-test-pw"
SUBMITTERS = 6
MAX_PER_SUBMITTER = 400
RUN_SECONDS = 2.0


def body(n, k):
    return ("From: a@shop.example.com\r\nTo: x@example.net\r\nSubject: %d-%d\r\n\r\n" % (n, k) +
            ("line %d of message %d-%d\r\n" % (0, n, k)) * 20).encode()


class RelayCrashTest(SmtpguardTestCase):

    def test_kill_9_loses_nothing_acknowledged(self):
        relay = Relay(self.tmp)
        r = relay.cli("client", "add", "shop", "--password-stdin", "--allowed-sender",
                      "*@shop.example.com", "--max-recipients", "5", input=PW + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        relay.start()
        acked = {}  # queue id -> data
        lock = threading.Lock()
        stop = threading.Event()

        def submit(n):
            try:
                with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
                    s.login("shop", PW)
                    for k in range(MAX_PER_SUBMITTER):
                        if stop.is_set():
                            return
                        data = body(n, k)
                        s.mail("a@shop.example.com")
                        s.rcpt("x@example.net")
                        code, reply = s.data(data)
                        if code == 250:
                            qid = reply.decode().rsplit(" ", 1)[-1]
                            with lock:
                                acked[qid] = data
            except (smtplib.SMTPException, OSError):
                return  # the relay died under us: expected

        threads = [threading.Thread(target=submit, args=(n,)) for n in range(SUBMITTERS)]
        for t in threads:
            t.start()
        time.sleep(RUN_SECONDS)
        relay.kill_all()
        stop.set()
        for t in threads:
            t.join(30)
        self.assertGreater(len(acked), 0, relay.logs())

        relay.start()
        try:
            # Mail the detectors held is still acknowledged mail, in hold/.
            present = set(relay.queue_ids()) | set(relay.queue_ids(held=True))
            missing = [q for q in acked if q not in present]
            self.assertEqual(missing, [], "acknowledged but lost")
            for qid, data in list(acked.items())[:: max(1, len(acked) // 50)]:
                self.assertEqual(relay.queued_data(qid), data)
        finally:
            relay.stop()


if __name__ == "__main__":
    unittest.main()
