"""Shared plumbing for interop tests: a throw-away state directory, a test CA
made with the openssl CLI, real SMTP peers on free loopback ports, and a way
to run the smtpguard binary (path in $SMTPGUARD) with a config file."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SMTPGUARD = os.environ.get("SMTPGUARD", "smtpguard")
PYTHON = "/usr/bin/python3"  # Debian's, which has python3-aiosmtpd

# The upstream credential the tests seal (an AWS documentation example key
# id and a made-up SES-style password) and the local app's password.
UPSTREAM_USER = "AKIAIOSFODNN7EXAMPLE"
UPSTREAM_PW = "BMPPgbAHoFVbze1Ud0oA5uNdXRwUXUZ+qOwphGJbl/cS"
APP_PW = "app-password"

EX_OK, EX_USAGE, EX_DATAERR, EX_NOINPUT = 0, 64, 65, 66
EX_UNAVAILABLE, EX_TEMPFAIL, EX_NOPERM, EX_CONFIG = 69, 75, 77, 78


# Load and crash tests send far faster than a new identity normally does; the
# default detectors would hold that mail (test_incident tests them). Here
# they only alert, and the metrics listener stays off.
LOAD_TEST_MONITOR = ('[monitor]\nlisten = ""\n[detect.rate]\naction = "alert"\n'
                     '[detect.recipients]\naction = "alert"\n')


def wait_for(predicate, seconds=20, step=0.1):
    """Polls `predicate` until it is true (True) or `seconds` pass (False)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


class TestCA:
    """A CA and leaf certificates signed by it (or self-signed, untrusted)."""

    def __init__(self, directory, name="smtpguard test CA"):
        self.dir = directory
        self.key = os.path.join(directory, "ca.key")
        self.cert = os.path.join(directory, "ca.pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2",
             "-subj", "/CN=" + name])

    def leaf(self, name, dns=(), ips=()):
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        sans = ["DNS:" + d for d in dns] + ["IP:" + i for i in ips]
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(sans) + "\n")
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=" + (list(dns) + list(ips))[0]])
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
             "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext])
        return cert, key


class Peer:
    """A server process that prints 'PORT n' once it listens."""

    def __init__(self, argv, timeout=20):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        deadline = time.time() + timeout
        self.port = None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("PORT "):
                self.port = int(line.split()[1])
                return
        self.stop()
        raise RuntimeError("peer did not start: %s\n%s" % (argv, self.proc.stderr.read()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class AuthServer(Peer):
    """aiosmtpd requiring STARTTLS and exactly one login; spools JSON records."""

    def __init__(self, workdir, cert, key, username, password, extra=()):
        self.spool = tempfile.mkdtemp(dir=workdir, prefix="spool-")
        pwfile = os.path.join(workdir, "server-password")
        with open(pwfile, "w") as f:
            f.write(password)
        super().__init__([PYTHON, os.path.join(HERE, "peers", "auth_server.py"), "--cert", cert,
                          "--key", key, "--username", username, "--password-file", pwfile,
                          "--spool", self.spool, *extra])

    def messages(self):
        out = []
        for name in sorted(os.listdir(self.spool)):
            if name.endswith(".json"):
                with open(os.path.join(self.spool, name)) as f:
                    out.append(json.load(f))
        return out

    def clear(self):
        for name in os.listdir(self.spool):
            os.unlink(os.path.join(self.spool, name))


class SmtpguardTestCase(unittest.TestCase):
    """Gives each test class a temp dir and helpers to run smtpguard."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sg-interop-")
        os.chmod(cls.tmp, 0o700)
        cls.state = os.path.join(cls.tmp, "state")
        cls.peers = []

    @classmethod
    def tearDownClass(cls):
        for p in cls.peers:
            p.stop()
        if os.environ.get("SMTPGUARD_KEEP_TEST_DIRS"):
            print("kept", cls.tmp)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def make_server_cert(cls):
        """A test CA and a certificate for localhost/127.0.0.1 (cls.ca, cls.cert, cls.key)."""
        cls.ca = TestCA(cls.tmp)
        cls.cert, cls.key = cls.ca.leaf("server", dns=["localhost"], ips=["127.0.0.1"])

    def provision(self, relay, *client_args):
        """Seals UPSTREAM_PW as vault entry "ses" and adds the identity "shop"
        (password APP_PW, senders *@shop.example.com, extra `client_args`)."""
        for args, stdin in ((["vault", "init"], None),
                            (["vault", "set", "ses", "--username", UPSTREAM_USER],
                             UPSTREAM_PW + "\n"),
                            (["client", "add", "shop", "--password-stdin", "--allowed-sender",
                              "*@shop.example.com", *client_args], APP_PW + "\n")):
            r = relay.cli(*args, input=stdin)
            self.assertEqual(r.returncode, 0, r.stderr)

    @classmethod
    def write_config(cls, name, text):
        path = os.path.join(cls.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    @classmethod
    def smtpguard(cls, *args, config=None, input=None, timeout=60):
        argv = [SMTPGUARD]
        if config:
            argv += ["--config", config]
        argv += list(args)
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """`smtpguard relay` on a free loopback port with its own state dir."""

    def __init__(self, workdir, extra_config="", name="relay", host="127.0.0.1"):
        self.workdir = workdir
        self.host = host
        self.state = os.path.join(workdir, name + "-state")
        self.port = free_port()
        self.socket = os.path.join(self.state, "submit.sock")
        self.config = os.path.join(workdir, name + ".toml")
        with open(self.config, "w") as f:
            f.write('[relay]\nlisten = ["%s:%d"]\nstate_dir = "%s"\n%s\n'
                    % (host, self.port, self.state, extra_config))
        self.proc = None
        self.log_path = os.path.join(workdir, name + ".log")

    def cli(self, *args, input=None, timeout=60):
        return subprocess.run([SMTPGUARD, "--config", self.config, *args], input=input,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def start(self, timeout=20):
        import socket
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([SMTPGUARD, "--config", self.config, "relay"],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("relay exited: " + self.logs())
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    s.recv(100)
                if os.path.exists(self.socket):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("relay did not start: " + self.logs())

    def stop(self, sig=None):
        import signal
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig or signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def kill_all(self):
        """kill -9 the supervisor and its children (crash test)."""
        import signal
        children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        os.kill(self.proc.pid, signal.SIGKILL)
        for c in children:
            try:
                os.kill(int(c), signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.log.close()
        self.log = None

    def workers(self):
        """{comm: pid} of this relay's children ("sg-receiver", "sg-deliverer",
        "sg-monitor")."""
        out = {}
        kids = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                              text=True).stdout.split()
        for pid in kids:
            try:
                with open("/proc/%s/comm" % pid) as f:
                    out[f.read().strip()] = int(pid)
            except FileNotFoundError:
                pass
        return out

    def worker_pid(self, comm):
        """The pid of the child named `comm`, or None while there is none."""
        return self.workers().get(comm)

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    def queue_ids(self, held=False):
        r = self.cli("queue", "list", "--held" if held else "--ready", "--ids")
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    def queued_data(self, qid):
        r = subprocess.run([SMTPGUARD, "--config", self.config, "queue", "show", qid, "--data"],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def queued_envelope(self, qid):
        r = self.cli("queue", "show", qid, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def audit(self, settle=0.25, limit=5.0):
        """The audit log's lines. Workers hand their lines to the supervisor
        without waiting for it, so a line lands a few ms after the SMTP reply
        it records: read once the file has not changed for `settle` seconds
        (at most `limit` seconds)."""
        path = os.path.join(self.state, "audit.jsonl")
        deadline = time.monotonic() + limit
        last, since = object(), time.monotonic()
        while True:
            try:
                st = os.stat(path)
                key = (st.st_ino, st.st_size)
            except FileNotFoundError:
                key = None
            now = time.monotonic()
            if key != last:
                last, since = key, now
            elif now - since >= settle or now >= deadline:
                break
            time.sleep(0.02)
        if key is None:
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]


# A private Exim (exim4-daemon-heavy) for the Exim tests: its own spool, log
# and pid file under a work dir, on a free loopback port, nothing of the
# machine's Exim touched. Exim keeps root for -C only with a config listed
# in /etc/exim4/trusted_configs; whether that matters is the test's business.
EXIM = shutil.which("exim4") or "/usr/sbin/exim4"

# The main options every private Exim config starts with ({work}: its work
# dir); no DNS or ident lookups and no TLS.
EXIM_PRIVATE_MAIN = """primary_hostname = exim.test
spool_directory = {work}/spool
log_file_path = {work}/log/%slog
pid_file_path = {work}/exim.pid
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
"""


def exim_work_dir(path):
    """Makes `path` a private Exim's work dir (spool/ and log/ owned by
    Debian-exim, whose delivery processes write there) and returns it."""
    for d in ("spool", "log"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    run(["chown", "-R", "Debian-exim:Debian-exim", path])
    os.chmod(path, 0o755)
    return path


def exim_log(work, name="mainlog"):
    """The last 3000 characters of log/<name> in `work`, or of its "stderr"."""
    p = os.path.join(work, name if name == "stderr" else "log/" + name)
    if not os.path.exists(p):
        return ""
    with open(p, errors="replace") as f:
        return f.read()[-3000:]


class EximDaemon:
    """`exim -C config -bdf` on a free loopback port (self.port), its stderr
    in work/stderr; RuntimeError when it is not listening within `timeout`."""

    def __init__(self, config, work, timeout=20):
        self.port = free_port()
        self.errlog = open(os.path.join(work, "stderr"), "w")
        self.proc = subprocess.Popen([EXIM, "-C", config, "-bdf", "-q30m", "-oX", str(self.port),
                                      "-oP", os.path.join(work, "exim.pid")],
                                     stdout=self.errlog, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        if not (self.wait_listening(timeout) and self.proc.poll() is None
                and wait_for(lambda: os.path.exists(os.path.join(work, "exim.pid")), 10)):
            self.stop()
            raise RuntimeError("exim did not start: " + exim_log(work, "stderr"))

    def wait_listening(self, timeout=20):
        """True once the daemon greets on its port (it re-executes itself on
        SIGHUP, with its port closed meanwhile); False after `timeout` s."""
        import smtplib

        def greets():
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=2):
                    return True
            except OSError:
                return False
        return wait_for(greets, timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errlog.close()
