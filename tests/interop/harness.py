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

EX_OK, EX_USAGE, EX_DATAERR, EX_NOINPUT = 0, 64, 65, 66
EX_UNAVAILABLE, EX_TEMPFAIL, EX_NOPERM, EX_CONFIG = 69, 75, 77, 78


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
        shutil.rmtree(cls.tmp, ignore_errors=True)

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
