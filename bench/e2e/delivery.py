#!/usr/bin/python3
"""End-to-end delivery benchmark: smtp-source -> relay -> sink (docs/benchmarks.md).

Measures what a web application waiting for its mail to leave the host sees:
messages per second from smtp-source's first connect until the SINK has the
last message, for smtpguard relay and Exim 4.96 as a smarthost, side by side
in the same run, plus smtp-source straight into the sink (the tools' ceiling).

Part "plain": upstream is Postfix's smtp-sink (no TLS, no AUTH), counting with
its -c counters (the message count goes up when the final "." of a message
has arrived, right before its 250).
Part "tls": upstream is tls_sink.js (node smtp-server; STARTTLS then AUTH
required, certificate verified by the relay), counting messages, connections,
TLS handshakes and logins: smtpguard pooling (max_messages_per_connection =
100) against one session per message (= 1, msmtp's model), and Exim.

Every run is bounded: count chosen for about TARGET_S seconds (calibrated by
doubling runs, at most MAX_MESSAGES), hard stop after CAP_S seconds.

usage: bench/e2e/delivery.py        (as root: Exim needs its setuid re-exec)
env:   BUILD=build-bench (in the repo)  PARTS="plain tls"  POINTS="1 20 50"
       SIZES="1000 100000"  PLAIN_SERVERS="ceiling exim sg-c4 sg-c8 sg-c16"
       TLS_SERVERS="exim-tls sg-pool sg-single"  TLS_CONNECTIONS=4  GREET_DELAY_MS=0
       TARGET_S=10  CAL_S=2  MAX_MESSAGES=5000  CAP_S=120  COUNT= (fixed count, no
       calibration)  ROUNDS=1  SPOOL_SYNC=  SMTPGUARD= (binary; default BUILD's)
       SKIP_BUILD=1  KEEP=1 (keep the work dir)
"""
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
E2E = os.path.join(SRC, "bench", "e2e")
ENV = os.environ.get
BUILD = os.path.abspath(ENV("BUILD") or os.path.join(SRC, "build-bench"))
PARTS = (ENV("PARTS") or "plain tls").split()
POINTS = [int(x) for x in (ENV("POINTS") or "1 20 50").split()]
SIZES = [int(x) for x in (ENV("SIZES") or "1000 100000").split()]
PLAIN_SERVERS = (ENV("PLAIN_SERVERS") or "ceiling exim sg-c4 sg-c8 sg-c16").split()
TLS_SERVERS = (ENV("TLS_SERVERS") or "exim-tls sg-pool sg-single").split()
TLS_CONNECTIONS = int(ENV("TLS_CONNECTIONS") or 4)
GREET_DELAY_MS = int(ENV("GREET_DELAY_MS") or 0)  # tls_sink.js's pause before each 220
TARGET_S = float(ENV("TARGET_S") or 10)
CAL_S = float(ENV("CAL_S") or 2)
MAX_MESSAGES = int(ENV("MAX_MESSAGES") or 5000)
CAP_S = float(ENV("CAP_S") or 120)
COUNT = int(ENV("COUNT") or 0)
ROUNDS = int(ENV("ROUNDS") or 1)
SPOOL_SYNC = ENV("SPOOL_SYNC") or ""
SMTPGUARD = ENV("SMTPGUARD") or os.path.join(BUILD, "src", "cli", "smtpguard")
TOOLS = os.path.join(BUILD, "bench-tools")
PFX = os.path.join(TOOLS, "postfix")
NODE_DIR = os.path.join(TOOLS, "node")
SENDER = "sender@bench.example"
TRUSTED_LIST = "/etc/exim4/trusted_configs"
T_START = time.monotonic()


def log(msg):
    print("delivery.py [%5.0fs]: %s" % (time.monotonic() - T_START, msg), file=sys.stderr,
          flush=True)


class Fail(Exception):
    pass


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)
    if r.returncode != 0:
        raise Fail("%s: exit %d: %s" % (" ".join(argv[:3]), r.returncode, r.stderr.strip()[-500:]))
    return r.stdout


# --- peers, build ------------------------------------------------------------
def install_peers(need_exim, need_node):
    os.makedirs(TOOLS, exist_ok=True)
    if not os.access(os.path.join(PFX, "usr/sbin/smtp-sink"), os.X_OK):
        # Same as run.sh: the postfix package conflicts with exim4, so it is
        # unpacked, never installed.
        log("extracting smtp-source/smtp-sink from Debian's postfix package")
        for f in os.listdir(TOOLS):
            if f.startswith("postfix_") and f.endswith(".deb"):
                os.unlink(os.path.join(TOOLS, f))
        run(["apt-get", "download", "postfix"], cwd=TOOLS)
        deb = [f for f in os.listdir(TOOLS) if f.startswith("postfix_") and f.endswith(".deb")][0]
        shutil.rmtree(PFX, ignore_errors=True)
        run(["dpkg", "-x", os.path.join(TOOLS, deb), PFX])
    if need_exim and not shutil.which("exim4"):
        raise Fail("exim4 missing: run bench/e2e/run.sh once (it installs exim4-daemon-heavy "
                   "and stops the system daemon) or apt-get install exim4-daemon-heavy")
    if need_exim:
        v = run(["exim4", "-bV"]).splitlines()[0]
        if "version 4.96" not in v:
            log("warning: " + v)
    if need_node and not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "smtp-server")):
        if not shutil.which("npm"):
            raise Fail("npm missing (apt-get install npm) for the TLS sink")
        log("npm install smtp-server into " + NODE_DIR)
        os.makedirs(NODE_DIR, exist_ok=True)
        run(["npm", "install", "--prefix", NODE_DIR, "--no-audit", "--no-fund",
             "--loglevel=error", "smtp-server@3"], timeout=300)


def build():
    if ENV("SKIP_BUILD") == "1" or ENV("SMTPGUARD"):
        return
    if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
        run(["cmake", "-S", SRC, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release"], timeout=600)
    log("building smtpguard in " + BUILD)
    run(["make", "-C", BUILD, "-j2", "smtpguard"], timeout=3600)


# --- processes (every wait bounded) -------------------------------------------
PROCS = []


def start(argv, **kw):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
    PROCS.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            log("pid %d did not stop on SIGTERM; killing" % p.pid)
            p.kill()
            p.wait(5)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, seconds=20):
    import socket
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Fail("%s exited with %d" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise Fail("%s does not listen on %d" % (what, port))


class Sink:
    """A sink process and a thread reading its counter lines ("k=v k=v", ended
    by \\r or \\n); wait_for() returns the monotonic time at which the message
    counter was first seen at or above a target."""

    def __init__(self, name, argv, env=None, port=None):
        self.name = name
        self.values = {"mesg": 0}
        self.port = port
        self.cond = threading.Condition()
        self.target = None
        self.reached_at = None
        self.proc = start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.errors = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        buf = b""
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            buf += chunk
            *lines, buf = re.split(rb"[\r\n]", buf)
            now = time.monotonic()
            for line in lines:
                if line.startswith(b"PORT "):
                    with self.cond:
                        self.port = int(line.split()[1])
                        self.cond.notify_all()
                    continue
                fields = dict(kv.split(b"=", 1) for kv in line.split() if b"=" in kv)
                if not fields:
                    continue
                with self.cond:
                    for k, v in fields.items():
                        self.values[k.decode()] = int(v)
                    if "open" in self.values:
                        self.values["peak_open"] = max(self.values.get("peak_open", 0),
                                                       self.values["open"])
                    if (self.target is not None and self.reached_at is None
                            and self.values["mesg"] >= self.target):
                        self.reached_at = now
                    self.cond.notify_all()

    def _read_err(self):
        for line in self.proc.stderr:
            self.errors.append(line.decode(errors="replace").rstrip())
            del self.errors[:-20]

    def snapshot(self):
        with self.cond:
            return dict(self.values)

    def arm(self, target):
        with self.cond:
            self.target, self.reached_at = target, None
            if "open" in self.values:
                self.values["peak_open"] = self.values["open"]
            if self.values["mesg"] >= target:
                self.reached_at = time.monotonic()

    def wait_for(self, deadline):
        with self.cond:
            while self.reached_at is None and time.monotonic() < deadline:
                self.cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            return self.reached_at

    def wait_port(self, seconds=20):
        with self.cond:
            self.cond.wait_for(lambda: self.port is not None or self.proc.poll() is not None,
                               seconds)
        if self.port is None:
            raise Fail("%s did not start: %s" % (self.name, "\n".join(self.errors)))

    def wait_stable(self, quiet_s=0.5, seconds=30):
        deadline = time.monotonic() + seconds
        last = self.snapshot()["mesg"]
        still_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.snapshot()["mesg"]
            if now != last:
                last, still_since = now, time.monotonic()
            elif time.monotonic() - still_since >= quiet_s:
                return True
        return False


def postfix_env():
    env = dict(os.environ)
    lib = os.path.join(PFX, "usr/lib/postfix")
    env["LD_LIBRARY_PATH"] = lib + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


def start_plain_sink():
    port = free_port()
    s = Sink("smtp-sink", [os.path.join(PFX, "usr/sbin/smtp-sink"), "-c", "-u", "nobody", "-m", "2000",
                           "127.0.0.1:%d" % port, "1024"], env=postfix_env(), port=port)
    wait_port(port, s.proc, "smtp-sink")
    return s


def make_tls_material(work):
    d = os.path.join(work, "tls")
    os.makedirs(d)
    ca, ca_key, cert, key = (os.path.join(d, f) for f in ("ca.pem", "ca.key", "sink.pem", "sink.key"))
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=smtpguard bench CA"])
    with open(os.path.join(d, "sink.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", os.path.join(d, "sink.csr"), "-subj", "/CN=localhost"])
    run(["openssl", "x509", "-req", "-in", os.path.join(d, "sink.csr"), "-CA", ca, "-CAkey", ca_key,
         "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", os.path.join(d, "sink.ext")])
    os.chmod(ca, 0o644)
    password = secrets.token_hex(16)  # [0-9a-f]: safe inside exim.conf and TOML
    pwfile = os.path.join(d, "password")
    with open(pwfile, "w") as f:
        f.write(password)
    return {"ca": ca, "cert": cert, "key": key, "user": "bench-user", "password": password,
            "pwfile": pwfile}


def start_tls_sink(tls):
    env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
    s = Sink("tls_sink.js", ["node", os.path.join(E2E, "tls_sink.js"), "--cert", tls["cert"], "--key",
                             tls["key"], "--user", tls["user"], "--password-file", tls["pwfile"],
                             "--greet-delay-ms", str(GREET_DELAY_MS)],
             env=env)
    s.wait_port()
    return s


class Exim:
    def __init__(self, work, sink_port, tls_port, tls):
        self.work, self.trusted_backup, self.listed = work, None, False
        self.port = free_port()
        d = os.path.join(work, "exim")
        for sub in ("spool", "log"):
            os.makedirs(os.path.join(d, sub))
        run(["chown", "-R", "Debian-exim:Debian-exim", d])
        with open(os.path.join(E2E, "exim-delivery.conf.in")) as f:
            text = f.read()
        for k, v in {"WORK": work, "PORT": self.port, "SINK_PORT": sink_port,
                     "TLS_SINK_PORT": tls_port or 9, "CA_FILE": tls["ca"] if tls else "/dev/null",
                     "TLS_USER": tls["user"] if tls else "none",
                     "TLS_PASSWORD": tls["password"] if tls else "none"}.items():
            text = text.replace("@%s@" % k, str(v))
        self.conf = os.path.join(work, "exim.conf")
        with open(self.conf, "w") as f:
            f.write(text)
        os.chmod(self.conf, 0o644)
        # Debian's Exim keeps root with -C only for configs listed in
        # TRUSTED_CONFIG_LIST (see run.sh); the entry is removed on exit.
        if os.path.exists(TRUSTED_LIST):
            self.trusted_backup = os.path.join(work, "trusted_configs.orig")
            shutil.copy2(TRUSTED_LIST, self.trusted_backup)
        with open(TRUSTED_LIST, "a") as f:
            f.write(self.conf + "\n")
        self.listed = True
        os.chmod(TRUSTED_LIST, 0o644)

    def start(self):
        self.stderr = os.path.join(self.work, "exim", "stderr")
        self.proc = start(["exim4", "-C", self.conf, "-bdf", "-q30m", "-oX", str(self.port)],
                          stdout=open(self.stderr, "w"), stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, "exim")
        with open(self.stderr) as f:
            if "lost privilege" in f.read():
                raise Fail("exim dropped root for -C")

    def queued(self):
        d = os.path.join(self.work, "exim", "spool", "input")
        return sum(1 for _, _, files in os.walk(d) for f in files if f.endswith("-H"))

    def restore_trusted(self):
        if self.trusted_backup:
            shutil.move(self.trusted_backup, TRUSTED_LIST)
        elif self.listed:
            os.unlink(TRUSTED_LIST)
        self.listed = False


class Smtpguard:
    def __init__(self, work, name, upstream, vault_secret=None):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.state = os.path.join(self.dir, "state")
        self.port = free_port()
        self.conf = os.path.join(self.dir, "smtpguard.toml")
        with open(self.conf, "w") as f:
            f.write('[relay]\nlisten = ["127.0.0.1:%d"]\nstate_dir = "%s"\n' % (self.port, self.state))
            if SPOOL_SYNC:
                f.write('spool_sync = "%s"\n' % SPOOL_SYNC)
            # A load generator is not an incident: the detectors only alert here.
            f.write('[monitor]\nlisten = ""\n[detect.rate]\naction = "alert"\n'
                    '[detect.recipients]\naction = "alert"\n')
            f.write("\n" + upstream)
        if vault_secret:
            user, password = vault_secret
            self.cli("vault", "init")
            self.cli("vault", "set", "bench", "--username", user, input=password + "\n")
        self.cli("client", "add", "bench", "--ip", "127.0.0.1/32", "--allowed-sender", "*@bench.example",
                 "--max-recipients", "100")
        self.log = os.path.join(self.dir, "relay.log")
        self.proc = start([SMTPGUARD, "--config", self.conf, "relay"], stdout=open(self.log, "w"),
                          stderr=subprocess.STDOUT)
        try:
            wait_port(self.port, self.proc, "smtpguard relay " + name)
        except Fail as e:
            with open(self.log) as f:
                raise Fail("%s: %s" % (e, f.read()[-1000:]))

    def cli(self, *args, input=None):
        return run([SMTPGUARD, "--config", self.conf, *args], input=input)

    def queued(self):
        n = 0
        for sub in ("queue", "hold"):
            for _, _, files in os.walk(os.path.join(self.state, "spool", sub)):
                n += len(files)
        return n


def upstream_plain(port, connections):
    return ('[upstream.sink]\nhost = "127.0.0.1"\nport = %d\ntls = "none"\ncredential = ""\n'
            'max_connections = %d\nmax_messages_per_connection = 100\nmax_send_rate = 0\n'
            % (port, connections))


def upstream_tls(port, tls, per_connection):
    return ('[upstream.tls]\nhost = "localhost"\nport = %d\ntls = "starttls"\nca_file = "%s"\n'
            'credential = "bench"\ntimeout_seconds = 10\nmax_connections = %d\n'
            'max_messages_per_connection = %d\nmax_send_rate = 0\n'
            % (port, tls["ca"], TLS_CONNECTIONS, per_connection))


# --- measurement --------------------------------------------------------------
class Target:
    """One way into a sink: smtp-source's port, the sink, the recipient, and
    how to tell that nothing is left in the relay's queue."""

    def __init__(self, name, label, port, sink, rcpt, queued=lambda: 0, pid=None):
        self.name, self.label, self.port, self.sink, self.rcpt, self.queued = (
            name, label, port, sink, rcpt, queued)
        # smtpguard's supervisor: the CPU time of its process tree is reported.
        # Not for Exim, whose delivery processes outlive their parents and
        # are reaped by init, out of sight.
        self.pid = pid


CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid):
    """CPU seconds (user + system) used so far by pid and all its descendants,
    the exited ones included once their parent has reaped them (cutime), by
    process name."""
    by, todo = {}, [pid]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%d/stat" % p) as f:
                comm, rest = f.read().split(" (", 1)[1].rsplit(")", 1)
            fields = rest.split()
            ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
            by[comm] = by.get(comm, 0) + ticks / CLK_TCK
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError, IndexError):
            pass  # exited meanwhile: its parent's cutime has it once reaped
    return by


def drain(t, seconds=120):
    """Until the relay's queue is empty and the sink has been quiet for 0.5 s."""
    deadline = time.monotonic() + seconds
    while t.queued() > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    stable = t.sink.wait_stable(seconds=max(1.0, deadline - time.monotonic()))
    left = t.queued()
    if left or not stable:
        log("%s: %d messages still queued after %d s (sink stable: %s)" % (t.name, left, seconds, stable))
    return left == 0 and stable


def measure(t, n, size, count):
    clean = drain(t)
    before = t.sink.snapshot()
    t.sink.arm(before["mesg"] + count)
    argv = [os.path.join(PFX, "usr/sbin/smtp-source"), "-s", str(n), "-m", str(count), "-l", str(size),
            "-f", SENDER, "-t", t.rcpt, "-M", "bench.example", "127.0.0.1:%d" % t.port]
    cpu0 = tree_cpu_s(t.pid) if t.pid else None
    t0 = time.monotonic()
    src = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=postfix_env())
    try:
        out, _ = src.communicate(timeout=CAP_S)
        rc = src.returncode
    except subprocess.TimeoutExpired:
        src.kill()
        out, _ = src.communicate()
        rc = "timeout"
    t_acc = time.monotonic()
    # A failed smtp-source sent fewer messages: do not wait the full cap.
    deadline = t0 + CAP_S if rc == 0 else min(t0 + CAP_S, t_acc + 5)
    t_end = t.sink.wait_for(deadline)
    t.sink.wait_stable(quiet_s=0.3, seconds=5)
    after = t.sink.snapshot()
    cpu1 = tree_cpu_s(t.pid) if t.pid else None
    got = after["mesg"] - before["mesg"]
    elapsed = (t_end or time.monotonic()) - t0
    r = {"server": t.name, "sessions": n, "size": size, "messages": count, "rc": rc,
         "accept_s": round(t_acc - t0, 3), "sink_s": round(elapsed, 3), "at_sink": got,
         "msgs_per_s": round((count if t_end else got) / elapsed, 1), "complete": t_end is not None,
         "clean_start": clean}
    if cpu0 is not None and got > 0:
        per = {k: round((v - cpu0.get(k, 0)) * 1000 / got, 3) for k, v in cpu1.items()}
        r["cpu_ms_per_msg"] = round(sum(per.values()), 3)
        r["cpu_ms_per_msg_by_process"] = per
    for k in ("conn", "tls", "auth"):
        if k in after:
            r[k] = after[k] - before.get(k, 0)
    if "peak_open" in after:
        r["peak_open"] = after["peak_open"]  # most connections open at once during the run
    if rc != 0:
        r["source_output"] = out.decode(errors="replace")[-300:]
    if got > count:
        r["duplicates"] = got - count
    return r


RATES = {}
LABELS = {"ceiling": "smtp-source -> smtp-sink (ceiling)", "exim": "Exim 4.96", "exim-tls": "Exim 4.96",
          "sg-pool": "smtpguard, 100 per connection", "sg-single": "smtpguard, 1 per connection"}
SHORT = {"ceiling": "ceiling", "exim": "Exim", "exim-tls": "Exim", "sg-pool": "sg pool",
         "sg-single": "sg single"}


def choose_count(t, n, size):
    """Messages for about TARGET_S seconds: from an earlier round's rate, or
    by calibration runs (4x more each time) until one lasts CAL_S with at
    least 4 messages per session (fewer is mostly start-up)."""
    lo = max(4 * n, 10)
    if COUNT:
        return max(COUNT, n)
    key = (t.name, n, size)
    if key not in RATES:
        c = max(n, 10)
        while True:
            r = measure(t, n, size, c)
            if not r["complete"]:
                FAILED[t.name] = FAILED.get(t.name, 0) + 1
                log("%s: calibration run incomplete: %s" % (t.name, json.dumps(r)))
                return c
            if (r["sink_s"] >= CAL_S and c >= 4 * n) or c >= MAX_MESSAGES:
                break
            c = min(MAX_MESSAGES, c * 4)
        RATES[key] = c / r["sink_s"]
    return int(min(MAX_MESSAGES, max(lo, RATES[key] * TARGET_S)))


FAILED = {}  # server -> incomplete runs; after 2 its remaining points are skipped


def run_point(t, n, size, results_path):
    if FAILED.get(t.name, 0) >= 2:
        log("%s: skipped (2 incomplete runs already)" % t.label)
        return None
    count = choose_count(t, n, size)
    log("%s: %d sessions, %d-byte bodies, %d messages" % (t.label, n, size, count))
    r = measure(t, n, size, count)
    if r["complete"]:
        RATES[(t.name, n, size)] = r["msgs_per_s"]
    else:
        FAILED[t.name] = FAILED.get(t.name, 0) + 1
        log("%s: INCOMPLETE: %s" % (t.name, json.dumps(r)))
    with open(results_path, "a") as f:
        f.write(json.dumps(r) + "\n")
    return r


# --- report -------------------------------------------------------------------
def median(xs):
    return statistics.median(xs) if xs else None


def fmt(x, digits=1):
    return "-" if x is None else ("%.*f" % (digits, x))


def report(results, labels, machine, elapsed):
    """Per part: a summary (end-to-end msg/s per path, then ratios; medians
    over the rounds) and the details of every path and point."""
    out = []
    w = out.append
    w("Machine: %s. Rounds: %d (medians). Run time %.0f s. Per run: about %g s worth of messages "
      "(at most %d), cap %g s." % (machine, ROUNDS, elapsed, TARGET_S, MAX_MESSAGES, CAP_S))
    by = {}
    for r in results:
        by.setdefault((r["server"], r["sessions"], r["size"]), []).append(r)

    def med(server, n, size, key="msgs_per_s"):
        return median([r[key] for r in by.get((server, n, size), []) if key in r])

    def status(rs):
        bad = sorted({("incomplete %d/%d" % (r["at_sink"], r["messages"])) if not r["complete"] else
                      ("smtp-source rc %s" % r["rc"]) if r["rc"] != 0 else
                      ("%d duplicates" % r["duplicates"]) if r.get("duplicates") else
                      "queue not empty at start" if not r["clean_start"] else "" for r in rs})
        return "; ".join(b for b in bad if b) or "ok"

    for part, servers in (("plain", PLAIN_SERVERS), ("tls", TLS_SERVERS)):
        if part not in PARTS:
            continue
        tls = part == "tls"
        sgs = [s for s in servers if s.startswith("sg")]
        refs = [s for s in servers if not s.startswith("sg")][::-1]  # Exim, then the ceiling
        pairs = [("sg-pool", "sg-single")] if {"sg-pool", "sg-single"} <= set(sgs) else []
        pairs += [(a, b) for b in refs for a in sgs]
        w("")
        w("#### " + ("TLS upstream: STARTTLS + AUTH sink (tls_sink.js)" if tls
                     else "Plain upstream: smtp-sink"))
        w("")
        w("End-to-end msg/s (first connect until the sink has every message) and ratios")
        w("")
        heads = [SHORT[s] for s in servers] + ["%s / %s" % (SHORT[a], SHORT[b]) for a, b in pairs]
        w("| body bytes | sessions | " + " | ".join(heads) + " |")
        w("|---:|---:|" + "---:|" * (len(servers) + len(pairs)))
        for size in SIZES:
            for n in POINTS:
                cells = [fmt(med(s, n, size)) for s in servers]
                for a, b in pairs:
                    x, y = med(a, n, size), med(b, n, size)
                    cells.append(fmt(x / y, 2) if x and y else "-")
                w("| %d | %d | %s |" % (size, n, " | ".join(cells)))
        w("")
        w("Details: messages per run, seconds until smtp-source had every 250 and until the sink had "
          "every message" + ("; connections and logins at the sink, and the most connections open at "
                          "once" if tls else ""))
        w("")
        w("| body bytes | sessions | path | messages | 250s done s | at sink s | msg/s |"
          " server CPU ms/msg |"
          + (" connections | logins | most open at once |" if tls else "") + " status |")
        w("|---:|---:|---|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if tls else "") + "---|")
        for size in SIZES:
            for n in POINTS:
                for s in servers:
                    rs = by.get((s, n, size))
                    if not rs:
                        continue
                    w("| %d | %d | %s | %d | %s | %s | %s |" % (
                        size, n, labels[s], median([r["messages"] for r in rs]),
                        fmt(med(s, n, size, "accept_s"), 2), fmt(med(s, n, size, "sink_s"), 2),
                        fmt(med(s, n, size)))
                      + " %s |" % fmt(med(s, n, size, "cpu_ms_per_msg"), 2)
                      + (" %s | %s | %s |" % (fmt(med(s, n, size, "conn"), 0),
                                              fmt(med(s, n, size, "auth"), 0),
                                              fmt(med(s, n, size, "peak_open"), 0)) if tls else "") + " %s |" % status(rs))
    return "\n".join(out)


# --- main ---------------------------------------------------------------------
def main():
    if os.geteuid() != 0:
        raise Fail("run as root (Exim's -C config must be trusted; apt-get)")
    want = set((PLAIN_SERVERS if "plain" in PARTS else []) + (TLS_SERVERS if "tls" in PARTS else []))
    install_peers(need_exim=bool(want & {"exim", "exim-tls"}), need_node="tls" in PARTS)
    build()
    os.makedirs(os.path.join(BUILD, "bench-e2e"), exist_ok=True)
    work = tempfile.mkdtemp(prefix="delivery.", dir=os.path.join(BUILD, "bench-e2e"))
    os.chmod(work, 0o755)  # Exim's and the relays' unprivileged users traverse it
    exim = None
    try:
        results_path = os.path.join(work, "results.jsonl")
        machine = "nproc %d, load before: %s" % (os.cpu_count(), open("/proc/loadavg").read().split()[0])
        version = run([SMTPGUARD, "--version"]).strip()
        machine += ", %s (%s)" % (version, SMTPGUARD)
        log("work dir %s; smtpguard %s" % (work, SMTPGUARD))
        sink = start_plain_sink()
        tls = tls_sink = None
        if "tls" in PARTS:
            tls = make_tls_material(work)
            tls_sink = start_tls_sink(tls)
        if want & {"exim", "exim-tls"}:
            exim = Exim(work, sink.port, tls_sink.port if tls_sink else None, tls)
            exim.start()
        labels = dict(LABELS)
        targets = {}
        for s in want:
            m = re.fullmatch(r"sg-c(\d+)", s)
            if s == "ceiling":
                targets[s] = Target(s, s, sink.port, sink, "rcpt@example.net")
            elif s == "exim":
                targets[s] = Target(s, s, exim.port, sink, "rcpt@example.net", exim.queued)
            elif s == "exim-tls":
                targets[s] = Target(s, s, exim.port, tls_sink, "rcpt@tls.example", exim.queued)
            elif m:
                g = Smtpguard(work, s, upstream_plain(sink.port, int(m.group(1))))
                labels[s] = "smtpguard, %s connections" % m.group(1)
                SHORT[s] = "sg c%s" % m.group(1)
                targets[s] = Target(s, s, g.port, sink, "rcpt@example.net", g.queued, g.proc.pid)
            elif s in ("sg-pool", "sg-single"):
                g = Smtpguard(work, s, upstream_tls(tls_sink.port, tls, 100 if s == "sg-pool" else 1),
                              vault_secret=(tls["user"], tls["password"]))
                targets[s] = Target(s, s, g.port, tls_sink, "rcpt@tls.example", g.queued, g.proc.pid)
            else:
                raise Fail("unknown server " + s)
        results = []
        for rnd in range(1, ROUNDS + 1):
            for part, servers in (("plain", PLAIN_SERVERS), ("tls", TLS_SERVERS)):
                if part not in PARTS:
                    continue
                for size in SIZES:
                    for n in POINTS:
                        for s in servers:
                            t = targets[s]
                            t.label = "round %d/%d %s" % (rnd, ROUNDS, s)
                            r = run_point(t, n, size, results_path)
                            if r:
                                results.append(r)
        machine += ", load after: %s" % open("/proc/loadavg").read().split()[0]
        shutil.copy(results_path, os.path.join(BUILD, "bench-e2e", "last-delivery.jsonl"))
        print(report(results, labels, machine, time.monotonic() - T_START))
    finally:
        for p in reversed(PROCS):
            stop(p)
        if exim:
            exim.restore_trusted()
        if ENV("KEEP") == "1":
            log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        main()
    except Fail as e:
        log("error: %s" % e)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
