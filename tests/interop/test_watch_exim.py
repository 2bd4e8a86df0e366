"""`smtpguard watch exim-log` on logs written by a real Exim 4.96
(exim4-daemon-heavy): a private daemon on a free loopback port with its own
spool and log (log_selector +all, so +pid, +millisec and the cwd= lines of
+arguments are there), SMTP AUTH PLAIN submissions, an AUTH failure, a
deferral (a route to a closed port), a bounce, and local `exim -t`
submissions from a script directory. Then --follow across a logrotate-style
rename and a copytruncate while Exim and the test keep appending. Exim keeps
root for -C only with trusted configs; this test needs none of root's
privileges in Exim (deliveries go to /dev/null), so nothing outside its temp
dir changes. Runs as root (as CI does)."""
import json
import os
import shutil
import signal
import smtplib
import subprocess
import threading
import unittest

from harness import (EXIM, EXIM_PRIVATE_MAIN, SMTPGUARD, EximDaemon, SmtpguardTestCase,
                     exim_work_dir, wait_for)

CONF = EXIM_PRIVATE_MAIN + """exim_user = Debian-exim
exim_group = Debian-exim
trusted_users = root
never_users =
local_interfaces = <; 127.0.0.1
domainlist local_domains = @ : localhost : shop.example.com : victim.example
acl_smtp_rcpt = acl_check_rcpt
auth_advertise_hosts = *
log_selector = +all
message_logs = false
keep_environment =

begin acl

acl_check_rcpt:
  accept hosts = 127.0.0.1
  deny   message = relay not permitted

begin routers

bounce_user:
  driver = redirect
  local_parts = nobody
  data = :fail: no such user here
  allow_fail

defer_domain:
  driver = manualroute
  domains = slow.example
  route_list = * 127.0.0.1::1 byname
  transport = remote_smtp
  self = send

local_user:
  driver = accept
  transport = devnull

begin transports

devnull:
  driver = appendfile
  file = /dev/null
  user = Debian-exim

remote_smtp:
  driver = smtp

begin retry

*  *  F,1h,1m

begin authenticators

plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if or{{and{{eq{$auth2}{box@shop.example.com}}{eq{$auth3}{box-pw}}}}\
    {and{{eq{$auth2}{burst@shop.example.com}}{eq{$auth3}{burst-pw}}}}}}
  server_set_id = $auth2
"""


class Follower:
    """`smtpguard watch exim-log --follow --format json` in the background,
    its output lines collected as parsed JSON."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def auth_users(self):
        return [x["user"] for x in self.lines if x["type"] == "auth_failure"]

    def stop(self):
        if self.proc.stdout.closed:
            return self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(5)
        self.stderr = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


class WatchEximLogTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not os.path.exists(EXIM):
            raise unittest.SkipTest("needs root and Debian's exim4-daemon-heavy")
        super().setUpClass()
        os.chmod(cls.tmp, 0o711)  # Exim's delivery processes (Debian-exim) read below
        cls.config = cls.write_config("smtpguard.toml",
                                      '[relay]\nstate_dir = "%s"\n' % os.path.join(cls.tmp, "state"))

    # ---- plumbing ----

    def start_exim(self, name):
        work = exim_work_dir(os.path.join(self.tmp, name))
        conf = os.path.join(work, "exim.conf")
        with open(conf, "w") as f:
            f.write(CONF.replace("{work}", work))
        exim = EximDaemon(conf, work)
        self.addCleanup(exim.stop)
        self.conf, self.port, self.work = conf, exim.port, work
        self.mainlog = os.path.join(work, "log", "mainlog")

    def log_text(self, path=None):
        with open(path or self.mainlog, errors="replace") as f:
            return f.read()

    def wait_log(self, needle, count=1, seconds=30):
        ok = wait_for(lambda: self.log_text().count(needle) >= count, seconds)
        self.assertTrue(ok, "%r not %d times in the Exim log:\n%s"
                        % (needle, count, self.log_text()[-3000:]))

    def smtp_send(self, user, password, rcpts_per_message, subject="m"):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            s.login(user, password)
            for i, rcpts in enumerate(rcpts_per_message):
                s.sendmail(user, rcpts, "Subject: %s %d\r\n\r\nbody\r\n" % (subject, i))

    def auth_failure(self, user):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                s.login(user, "wrong")

    def local_submit(self, cwd, rcpt):
        msg = "From: web@shop.example.com\nTo: %s\nSubject: from a script\n\nbody\n" % rcpt
        subprocess.run([EXIM, "-C", self.conf, "-t"], input=msg, text=True, check=True,
                       timeout=30, cwd=cwd)

    def watch(self, *args):
        return self.smtpguard("watch", "exim-log", *args, config=self.config, timeout=120)

    # ---- the tests ----

    def test_summary_of_a_real_exim_log(self):
        self.start_exim("summary")
        site = os.path.join(self.tmp, "site1", "public_html")
        os.makedirs(site)
        self.smtp_send("box@shop.example.com", "box-pw",
                       [["a@shop.example.com", "b@shop.example.com"], ["x@slow.example"],
                        ["nobody@shop.example.com"]])
        self.auth_failure("box@shop.example.com")
        self.local_submit(site, "c@shop.example.com")
        self.local_submit(site, "d@shop.example.com")
        self.wait_log(" ** nobody@shop.example.com")
        self.wait_log(" == x@slow.example")
        self.wait_log("authenticator failed for")
        self.wait_log(" => d ")

        r = self.watch(self.mainlog, "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = [json.loads(x) for x in r.stdout.splitlines()]
        summary = out[-1]
        self.assertEqual(summary["type"], "summary")
        ids = {x["identity"]: x for x in summary["identities"]}
        box = ids["auth:box@shop.example.com"]
        self.assertEqual((box["messages"], box["recipients"]), (3, 4), box)
        self.assertGreaterEqual(box["deferrals"], 1)
        self.assertEqual((box["bounces"], box["auth_failures"]), (1, 1))
        self.assertEqual(box["deliveries"], 2)
        self.assertEqual((ids["user:root"]["messages"], ids["user:root"]["deliveries"]), (2, 2))
        self.assertEqual(ids["cwd:" + site]["messages"], 2)
        sources = {x["identity"]: x for x in summary["sources"]}
        self.assertEqual(sources["ip:127.0.0.1"]["messages"], 3)
        self.assertEqual(sources["ip:127.0.0.1"]["auth_failures"], 1)
        self.assertEqual((summary["auth_failures"], summary["auth_failure_sources"]), (1, 1))
        # Exim's own bounce (<> R=id U=Debian-exim) is no one's message.
        self.assertNotIn("user:Debian-exim", ids)

        r = self.watch(self.mainlog)
        self.assertEqual(r.returncode, 0, r.stderr)
        row = [x for x in r.stdout.splitlines() if x.startswith("auth:box@shop.example.com ")]
        self.assertEqual(len(row), 1, r.stdout)
        self.assertEqual(row[0].split()[1:], ["3", "4", "2", str(box["deferrals"]), "1", "1"])
        self.assertIn("AUTH failures: 1 from 1 addresses", r.stdout)

    def test_burst_is_reported_by_the_rate_detector(self):
        self.start_exim("burst")
        self.smtp_send("box@shop.example.com", "box-pw", [["a@shop.example.com"]] * 3)
        # 60 messages in a few seconds to distinct recipients: above the
        # default floor of 20 a minute.
        self.smtp_send("burst@shop.example.com", "burst-pw",
                       [["r%d@victim.example" % i] for i in range(60)])
        self.wait_log(" <= burst@shop.example.com", 60)
        r = self.watch(self.mainlog, "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        actions = [json.loads(x) for x in r.stdout.splitlines()]
        actions = [a for a in actions if a["type"] == "action"]
        # The mailbox, and the client address it sends from (127.0.0.1 here).
        rate = {a["subject"]: a for a in actions if a["detector"] == "rate"}
        self.assertEqual(set(rate), {"auth:burst@shop.example.com", "ip:127.0.0.1"}, r.stdout)
        self.assertEqual(rate["auth:burst@shop.example.com"]["action"], "hold")
        self.assertFalse([a for a in actions if "box@" in a["subject"]], actions)
        # The action's time is the log's, not the wall clock's: replaying gives the same.
        again = self.watch(self.mainlog, "--format", "json")
        self.assertEqual(again.stdout.splitlines()[:-1], r.stdout.splitlines()[:-1])

    def test_follow_across_rename_and_copytruncate(self):
        self.start_exim("follow")
        self.auth_failure("first@shop.example.com")
        self.wait_log("set_id=first@")
        f = Follower([os.environ.get("SMTPGUARD", "smtpguard"), "--config", self.config, "watch",
                      "exim-log", self.mainlog, "--follow", "--format", "json",
                      "--poll-ms", "50"])
        self.addCleanup(f.stop)
        self.assertTrue(wait_for(lambda: "first@shop.example.com" in f.auth_users(), 20),
                        f.lines)

        # logrotate without copytruncate: rename, a late line still goes to
        # the old file, Exim's next process creates a new one.
        rotated = self.mainlog + ".1"
        os.rename(self.mainlog, rotated)
        late = [x for x in self.log_text(rotated).splitlines() if "set_id=first@" in x][0]
        with open(rotated, "a") as log:
            log.write(late.replace("first@", "late@") + "\n")
        self.auth_failure("second@shop.example.com")
        self.wait_log("set_id=second@")
        self.assertTrue(wait_for(lambda: "second@shop.example.com" in f.auth_users(), 20),
                        f.lines)
        self.assertIn("late@shop.example.com", f.auth_users())

        # A burst in the new file: the action is printed while following.
        self.smtp_send("burst@shop.example.com", "burst-pw",
                       [["r%d@victim.example" % i] for i in range(40)])
        self.assertTrue(wait_for(lambda: any(x.get("detector") == "rate" for x in f.lines), 30),
                        f.lines)

        # copytruncate: the file shrinks to nothing and is written again.
        shutil.copyfile(self.mainlog, self.mainlog + ".2")
        with open(self.mainlog, "r+") as log:
            log.truncate(0)
        self.auth_failure("third@shop.example.com")
        self.wait_log("set_id=third@")
        self.assertTrue(wait_for(lambda: "third@shop.example.com" in f.auth_users(), 20),
                        f.lines)
        users = f.auth_users()
        self.assertEqual(users.count("first@shop.example.com"), 1, users)
        self.assertEqual(users.count("second@shop.example.com"), 1, users)
        self.assertEqual(f.stop(), 0, f.stderr)

    def test_two_threads_print_what_one_does(self):
        # Without --follow the detectors judge on a second thread when two
        # CPUs are free; pinned to one CPU everything runs on one. A busy
        # generated log (bench/exim_log) must give the same bytes either way.
        if len(os.sched_getaffinity(0)) < 2:
            self.skipTest("needs two CPUs to compare both ways")
        log = os.path.join(self.tmp, "generated-mainlog")
        generator = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "exim_log",
                                 "generate.py")
        subprocess.run(["/usr/bin/python3", generator, log, "--size-mb", "4", "--seed", "7"],
                       check=True, timeout=120)
        for fmt in ("text", "json"):
            two = self.watch(log, "--format", fmt)
            one = subprocess.run(["taskset", "-c", "0", SMTPGUARD, "--config", self.config,
                                  "watch", "exim-log", log, "--format", fmt],
                                 capture_output=True, text=True, timeout=120)
            self.assertEqual((two.returncode, one.returncode), (0, 0), two.stderr + one.stderr)
            lines = two.stdout.splitlines()
            actions = [x for x in lines if x.startswith("20") or '"type":"action"' in x]
            self.assertGreater(len(actions), 30, two.stdout)
            self.assertEqual(two.stdout, one.stdout)

    def test_sigint_stops_a_long_read_with_a_summary(self):
        # A 400 MB log (a generated one, 100 times over); SIGINT once the
        # watcher has read 10 MB of it: it stops, prints the summary of what
        # it read and exits 0.
        part = os.path.join(self.tmp, "part-mainlog")
        generator = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "exim_log",
                                 "generate.py")
        subprocess.run(["/usr/bin/python3", generator, part, "--size-mb", "4", "--seed", "9"],
                       check=True, timeout=120)
        log = os.path.join(self.tmp, "big-mainlog")
        with open(part, "rb") as f:
            chunk = f.read()
        with open(log, "wb") as f:
            for _ in range(100):
                f.write(chunk)
        total = os.path.getsize(log)
        p = subprocess.Popen([SMTPGUARD, "--config", self.config, "watch", "exim-log", log],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def read_bytes():
            try:
                with open("/proc/%d/io" % p.pid) as f:
                    return int(dict(x.split(": ") for x in f.read().splitlines())["rchar"])
            except (OSError, KeyError, ValueError):
                return 0
        self.assertTrue(wait_for(lambda: read_bytes() > (10 << 20) or p.poll() is not None, 60))
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        summary = [x for x in out.splitlines() if " lines (" in x]
        self.assertEqual(len(summary), 1, out)
        read = int(summary[0].split(", ")[1].split()[0])
        self.assertLess(read, total, summary[0])
        self.assertGreater(read, 0)

    def test_usage_and_missing_file(self):
        r = self.watch(os.path.join(self.tmp, "no-such-log"))
        self.assertEqual(r.returncode, 66)
        self.assertTrue(r.stderr.startswith("smtpguard: "), r.stderr)
        r = self.watch(self.tmp, "--format", "yaml")
        self.assertEqual(r.returncode, 64)
        r = self.smtpguard("watch", "exim-log", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("copytruncate", r.stdout)


if __name__ == "__main__":
    unittest.main()
