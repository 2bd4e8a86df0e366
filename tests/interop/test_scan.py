"""`smtpguard scan` on a corpus generated here (deterministically): planted
secrets of every rule in PHP/JS/HTML/config/SQL/.env files, placeholders
that must stay silent, base64/URL/AUTH-encoded copies of the vault's own
credentials, binary and oversized files, symlink loops and links out of the
tree, odd names and a 30 MB log with a secret at its end. The exact set of
findings is asserted, then golden text/JSON output, SARIF validated against
the vendored 2.1.0 schema, baselines, --git on a real repository, --verify
against AuthServer, and a run as uid 65534 for unreadable files.

SMTPGUARD_UPDATE_GOLDEN=1 rewrites the golden files (review the diff)."""
import base64
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from harness import (HERE, SMTPGUARD, UPSTREAM_PW, UPSTREAM_USER, AuthServer,
                     SmtpguardTestCase)

GOLDEN = os.path.join(HERE, "scan_golden")
SCHEMA = os.path.join(HERE, "sarif", "sarif-schema-2.1.0.json")

OLD_USER = "AKIAI44QH8DHBEXAMPLE"
OLD_PW = "legacy-relay-pass-7Hq2"  # sealed as ses.previous


def token(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class Secrets:
    """Every planted value, from a fixed seed."""

    def __init__(self):
        rng = random.Random(20240501)
        self.key_ids = ["AKIA" + token(rng, B32, 16) for _ in range(4)]
        self.ses_v4 = ["B" + rng.choice("ABCDEFGHIJKLMNOP") + token(rng, B64, 42)
                       for _ in range(3)]
        self.ses_v2 = "A" + rng.choice("ghijklmnopqrstuv") + token(rng, B64, 42)
        self.aws_secret = token(rng, B64, 40)
        self.words = [token(rng, ALNUM, 14) for _ in range(12)]

    def all(self):
        return self.key_ids + self.ses_v4 + [self.ses_v2, self.aws_secret] + self.words + \
            [UPSTREAM_PW, OLD_PW]


S = Secrets()
W = S.words
SMTP_HOST = "email-smtp.us-east-1.amazonaws.com"


def php_serialized(value):
    return 's:%d:\\"%s\\";' % (len(value), value)


def corpus_files():
    """{relative path: [(line, expected rules on that line), ...]}"""
    fluent = ('a:1:{s:17:\\"provider_settings\\";a:4:{' + php_serialized("host") +
              php_serialized(SMTP_HOST) + php_serialized("username") +
              php_serialized("mailer@shop.example.com") + php_serialized("password") +
              php_serialized(W[6]) + '}}')
    auth_plain = base64.b64encode(b"\0" + UPSTREAM_USER.encode() + b"\0" +
                                  UPSTREAM_PW.encode()).decode()
    return {
        "www/shop/.env": [
            ("APP_NAME=Shop", ()),
            ("MAIL_MAILER=smtp", ()),
            ("MAIL_HOST=smtp.mailgun.org", ()),
            ("MAIL_PORT=587", ()),
            ("MAIL_USERNAME=postmaster@shop.example.com", ()),
            ("MAIL_PASSWORD=" + W[0], ("laravel-mail-password",)),
            ("MAIL_ENCRYPTION=tls", ()),
        ],
        "www/shop/.env.example": [
            ("MAIL_USERNAME=null", ()),
            ("MAIL_PASSWORD=your_smtp_password", ()),
            ("MAIL_PASSWORD=", ()),
            ("MAIL_PASSWORD=${SMTP_PASSWORD}", ()),
            ("MAIL_PASSWORD=null", ()),
        ],
        "www/shop/config/mail.php": [
            ("<?php", ()),
            ("$mail = new PHPMailer(true);", ()),
            ("$mail->isSMTP();", ()),
            ("$mail->Host = 'smtp.office365.com';", ()),
            ("$mail->Username = 'orders@shop.example.com';", ()),
            ("$mail->Password = '%s';" % W[1], ("phpmailer-password",)),
            ("$mail->Port = 587;", ()),
        ],
        "www/shop/config/mail-template.php": [
            ("<?php", ()),
            ("$mail->Password = 'changeme';", ()),
            ("$mail->Password = getenv('SMTP_PASSWORD');", ()),
            ("$mail->Password = '';", ()),
        ],
        # Own credential, base64 and URL-encoded, and an AUTH PLAIN trace.
        "www/shop/config/legacy.php": [
            ("<?php", ()),
            ("$relay_secret = base64_decode('%s');" % base64.b64encode(
                UPSTREAM_PW.encode()).decode(), ("own-credential",)),
        ],
        "www/shop/storage/smtp-trace.log": [
            ("C: EHLO shop", ()),
            ("C: AUTH PLAIN " + auth_plain, ("own-credential",)),
        ],
        "www/symfony/.env.local": [
            ("MAILER_DSN=smtp://mailer%%40example.com:%s%%2Fx@smtp.example.com:465" % W[2],
             ("smtp-url-credentials",)),
            ("MAILER_DSN=smtp://localhost:25", ()),
            ("MAILER_DSN=smtp://user:${MAILER_PASSWORD}@smtp.example.com", ()),
        ],
        "www/blog/wp-config.php": [
            ("<?php", ()),
            ("define( 'WPMS_SMTP_PASS', '%s' );" % W[3], ("wp-mail-smtp-password",)),
            ("define('WPMS_SMTP_PASS', '');", ()),
        ],
        "www/app/assets/js/mailer.js": [
            ("import nodemailer from 'nodemailer';", ()),
            ('const SMTP_PASSWORD = "%s";' % W[4], ("generic-smtp-password",)),
            ("const smtp_password = process.env.SMTP_PASSWORD;", ()),
        ],
        "www/static/contact.html": [
            ("<html><body>", ()),
            ("<!-- old relay login %s %s -->" % (S.key_ids[0], S.ses_v4[0]),
             ("aws-access-key-id", "ses-smtp-password-v4")),
            ("</body></html>", ()),
        ],
        "www/legacy/config.inc.php": [
            ("<?php", ()),
            ("$smtp_host = '%s';" % SMTP_HOST, ()),
            ("$smtp_pass = '%s';" % S.ses_v2, ("ses-smtp-password-v2",)),
        ],
        "backup/db.sql": [
            ("-- MySQL dump", ()),
            ("INSERT INTO `wp_options` VALUES (412,'fluentmail-settings','%s','yes');" % fluent,
             ("smtp-plugin-option-sql",)),
        ],
        # Our own credential in plain text, and the previous one.
        "backup/notes.txt": [
            ("relay password (do not share): " + UPSTREAM_PW, ("own-credential",)),
            ("old one: " + OLD_PW, ("own-credential",)),
            ("url-encoded: " + urllib.parse.quote(UPSTREAM_PW, safe=""), ("own-credential",)),
        ],
        "etc/msmtprc": [
            ("account default", ()),
            ("host smtp.example.com", ()),
            ("auth on", ()),
            ("user alerts@example.com", ()),
            ("password " + W[5], ("msmtprc-password",)),
        ],
        "etc/postfix/sasl_passwd": [
            ("[smtp.sendgrid.net]:587 apikey:" + W[7], ("postfix-sasl-passwd",)),
        ],
        "etc/exim4/passwd.client": [
            ("smtp.example.net:relayuser:" + W[8], ("exim-passwd-client",)),
            ("*.amazonaws.com:%s:%s" % (S.key_ids[1], S.ses_v4[1]),
             ("aws-access-key-id", "ses-smtp-password-v4")),
        ],
        "etc/exim4/exim4.conf.template": [
            ("login_auth:", ()),
            ("  driver = plaintext", ()),
            ("  public_name = LOGIN", ()),
            ("  client_send = : relayuser : " + W[9], ("exim-client-send",)),
        ],
        "etc/app/aws.ini": [
            ("[default]", ()),
            ("aws_access_key_id = " + S.key_ids[2], ("aws-access-key-id",)),
            ("aws_secret_access_key = " + S.aws_secret, ("aws-secret-access-key",)),
        ],
        "etc/app/placeholders.conf": [
            ("smtp_password = changeme", ()),
            ('smtp_pass = "your_smtp_password"', ()),
            ("mail_password = ${MAIL_PASSWORD}", ()),
            ("smtp_password =", ()),
            ("smtp_password = <password>", ()),
        ],
        # Odd names are scanned (and warned about).
        b"www/odd/weird\nname.env": [
            ("MAIL_PASSWORD=" + W[10], ("laravel-mail-password",)),
        ],
        b"www/odd/caf\xe9.env": [
            ("MAIL_PASSWORD=" + W[11], ("laravel-mail-password",)),
        ],
    }


LOG_PATH = "www/shop/storage/logs/laravel.log"
LOG_SIZE = 30 * 1000 * 1000
LOG_SECRET_LINE = ("[2024-05-01 12:00:00] production.ERROR: Connection could not be established "
                   "with host \"smtp://%s:%s@%s:587\"" % (S.key_ids[3], S.ses_v4[2], SMTP_HOST))


def display(path):
    """How smtpguard shows a path: escapes for control bytes and non-UTF-8."""
    if isinstance(path, str):
        return path
    out = ""
    for ch in path.decode("utf-8", "surrogateescape"):
        if ch == "\n":
            out += "\\n"
        elif "\udc80" <= ch <= "\udcff":
            out += "\\x%02x" % (ord(ch) - 0xdc00)
        else:
            out += ch
    return out


def build_corpus(root, outside):
    """Writes the corpus; returns the expected {(path, line, rule)}."""
    expected = set()
    for rel, lines in corpus_files().items():
        full = os.path.join(root.encode(), rel if isinstance(rel, bytes) else rel.encode())
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write("".join(text + "\n" for text, _ in lines))
        for n, (_, rules) in enumerate(lines, 1):
            expected |= {(display(rel), n, rule) for rule in rules}
    # A 30 MB log, the secret on its last line.
    log = os.path.join(root, LOG_PATH)
    os.makedirs(os.path.dirname(log))
    filler = "[2024-05-01 11:59:59] production.INFO: GET /shop/cart 200 12ms\n"
    count = LOG_SIZE // len(filler)
    with open(log, "w") as f:
        f.write(filler * count)
        f.write(LOG_SECRET_LINE + "\n")
    # The SES-shaped password in the URL is named by the more specific rule.
    expected |= {(LOG_PATH, count + 1, "aws-access-key-id"),
                 (LOG_PATH, count + 1, "ses-smtp-password-v4")}
    # Binary: a PNG header, then a secret that must not be read.
    with open(os.path.join(root, "www/static/logo.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + ("MAIL_PASSWORD=" + W[0]).encode())
    # Over the default 256 MiB limit (sparse, so it costs nothing).
    os.makedirs(os.path.join(root, "backup"), exist_ok=True)
    with open(os.path.join(root, "backup/huge.sql"), "wb") as f:
        f.truncate(300 << 20)
    # Symlinks: a loop through a directory, a self-loop, one out of the tree,
    # one to a file inside it (scanned once, under its real name).
    os.symlink("..", os.path.join(root, "www/shop/up"))
    os.symlink("self", os.path.join(root, "www/self"))
    os.symlink(outside, os.path.join(root, "www/outside"))
    os.symlink("../shop/.env", os.path.join(root, "www/static/env-link"))
    os.makedirs(outside, exist_ok=True)
    with open(os.path.join(outside, ".env"), "w") as f:
        f.write("MAIL_PASSWORD=outsideTheTree99\n")
    return expected


EXPECTED_WARNINGS = {
    ("backup/huge.sql", "skipped: larger than the size limit (314572800 bytes)"),
    ("www/odd/caf\\xe9.env", "odd name: not valid UTF-8"),
    ("www/odd/weird\\nname.env", "odd name: control characters (newline, tab, ...)"),
    ("www/outside", "skipped: symlink out of the tree (--follow-symlinks)"),
    ("www/self", "skipped: symlink loop"),
}


class ScanTest(SmtpguardTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.config = cls.write_config("scan.toml", '[relay]\nstate_dir = "%s"\n' % cls.state)
        for args, stdin in ((["vault", "init"], None),
                            (["vault", "set", "ses", "--username", UPSTREAM_USER],
                             UPSTREAM_PW + "\n"),
                            (["vault", "set", "ses.previous", "--username", OLD_USER],
                             OLD_PW + "\n")):
            r = cls.smtpguard(*args, config=cls.config, input=stdin)
            assert r.returncode == 0, r.stderr
        cls.corpus = os.path.join(cls.tmp, "corpus")
        os.makedirs(cls.corpus)
        cls.expected = build_corpus(cls.corpus, os.path.join(cls.tmp, "outside"))

    def scan(self, *args, cwd=None, config=True, env=None, timeout=120):
        argv = [SMTPGUARD] + (["--config", self.config] if config else []) + ["scan", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              cwd=cwd or self.corpus, stdin=subprocess.DEVNULL,
                              env=env, errors="surrogateescape")

    def assert_no_secret(self, *texts):
        """No planted secret in `texts` (access key ids are identifiers, shown as usernames)."""
        for text in texts:
            for secret in set(S.all()) - set(S.key_ids):
                self.assertNotIn(secret, text)

    def test_corpus_exact_findings(self):
        r = self.scan("--format", "json", "www", "etc", "backup")
        self.assertEqual(r.returncode, 1, r.stderr)
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        got = {(f["path"], f["line"], f["rule"]) for f in rows}
        self.assertEqual(len(got), len(rows), "a finding reported twice")
        self.assertEqual(sorted(got - self.expected), [], "unexpected findings")
        self.assertEqual(sorted(self.expected - got), [], "missed findings")
        own = [f for f in rows if f["rule"] == "own-credential"]
        for f in own:
            self.assertEqual(f["severity"], "critical")
            self.assertIn("ACTIVE credential exposed", f["message"])
        self.assertTrue(any("ses (previous)" in f["message"] for f in own), own)
        warnings = set()
        for line in r.stderr.splitlines():
            w = json.loads(line)
            if "warning" in w:
                warnings.add((w["path"], w["warning"]))
            else:
                self.assertEqual(w, {"skipped_binary": 1})
        self.assertEqual(warnings, EXPECTED_WARNINGS)
        self.assert_no_secret(r.stdout, r.stderr)

    def golden(self, name, text):
        path = os.path.join(GOLDEN, name)
        if os.environ.get("SMTPGUARD_UPDATE_GOLDEN"):
            os.makedirs(GOLDEN, exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        with open(path) as f:
            self.assertEqual(text, f.read(), "differs from " + path)

    def test_text_and_json_golden(self):
        r = self.scan("www", "etc", "backup", "--jobs", "2")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.golden("corpus.txt", r.stdout)
        self.assertIn("smtpguard: warning: www/self: skipped: symlink loop", r.stderr)
        self.assert_no_secret(r.stdout, r.stderr)
        r = self.scan("--format", "json", "--jobs", "1", "www", "etc", "backup")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.golden("corpus.jsonl", r.stdout)

    def test_sarif_is_valid_2_1_0(self):
        import jsonschema
        r = self.scan("--format", "sarif", "www", "etc", "backup")
        self.assertEqual(r.returncode, 1, r.stderr)
        log = json.loads(r.stdout)
        with open(SCHEMA) as f:
            schema = json.load(f)
        jsonschema.validators.validator_for(schema)(schema).validate(log)
        run = log["runs"][0]
        rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
        self.assertIn("own-credential", rule_ids)
        got = set()
        for res in run["results"]:
            self.assertEqual(rule_ids[res["ruleIndex"]], res["ruleId"])
            self.assertIn(res["level"], ("error", "warning", "note"))
            self.assertTrue(res["partialFingerprints"]["smtpguard/v1"])
            loc = res["locations"][0]["physicalLocation"]
            path = urllib.parse.unquote(loc["artifactLocation"]["uri"], errors="surrogateescape")
            got.add((display(path.encode("utf-8", "surrogateescape")),
                     loc["region"]["startLine"], res["ruleId"]))
        self.assertEqual(got, self.expected)
        self.assert_no_secret(r.stdout)

    def test_baseline_round_trip(self):
        baseline = os.path.join(self.tmp, "baseline.json")
        r = self.scan("--write-baseline", baseline, "www", "etc", "backup")
        self.assertEqual(r.returncode, 1, r.stderr)
        with open(baseline) as f:
            text = f.read()
        self.assert_no_secret(text)
        self.assertEqual(len(json.loads(text)["findings"]), len(self.expected))
        r = self.scan("--baseline", baseline, "www", "etc", "backup")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("%d suppressed by the baseline" % len(self.expected), r.stdout)
        # A new leak is still reported, and only it.
        extra = os.path.join(self.corpus, "www/new.env")
        with open(extra, "w") as f:
            f.write("MAIL_PASSWORD=brandNewLeak42x\n")
        try:
            r = self.scan("--format", "json", "--baseline", baseline, "www", "etc", "backup")
        finally:
            os.unlink(extra)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual([(f["path"], f["rule"]) for f in map(json.loads, r.stdout.splitlines())],
                         [("www/new.env", "laravel-mail-password")])

    def test_options_and_usage_errors(self):
        r = self.scan("--help", config=False)
        self.assertEqual(r.returncode, 0)
        for word in ("--max-file-size", "Exit status", "own-credential", "usage errors"):
            self.assertIn(word, r.stdout)
        for bad in (["--format", "xml", "www"], ["--jobs", "0", "www"], [],
                    ["--max-file-size", "lots", "www"], ["no-such-dir"], ["--bogus", "www"]):
            r = self.scan(*bad)
            self.assertEqual(r.returncode, 2, (bad, r.stdout, r.stderr))
            self.assertTrue(r.stderr.startswith("smtpguard: "), r.stderr)
        # A clean tree exits 0; --max-file-size skips the large log.
        r = self.scan("--no-vault", "--max-file-size", "1MB", "www/shop/storage/logs")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("www/shop/storage/logs/laravel.log: skipped: larger than", r.stderr)
        self.assertIn("0 findings in 0 files", r.stdout)
        # --no-vault: the own copies are no longer recognised as ours.
        r = self.scan("--no-vault", "--format", "json", "backup/notes.txt")
        self.assertNotIn("own-credential", r.stdout)
        # --follow-symlinks: the link out of the tree is read, loops still end.
        r = self.scan("--follow-symlinks", "--format", "json", "www/static", "www/outside")
        paths = {json.loads(line)["path"] for line in r.stdout.splitlines()}
        self.assertIn("www/outside/.env", paths)

    def test_git_history(self):
        repo = os.path.join(self.tmp, "gitsite")
        os.makedirs(os.path.join(repo, "config"))
        git = ["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"]
        subprocess.run(["git", "init", "-q", repo], check=True)
        with open(os.path.join(repo, "config", "mail.php"), "w") as f:
            f.write("<?php\n$mail->Password = 'committedThenGone77';\n")
        with open(os.path.join(repo, "index.php"), "w") as f:
            f.write("<?php echo 'hi';\n")
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-qm", "add mail"], check=True)
        first = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True,
                               text=True).stdout.strip()
        os.unlink(os.path.join(repo, "config", "mail.php"))
        subprocess.run(git + ["commit", "-qam", "remove the password"], check=True)
        subprocess.run(git + ["gc", "-q"], check=True)  # packed objects
        r = self.scan("--no-vault", "gitsite", cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.scan("--no-vault", "--git", "--format", "json", "gitsite", cwd=self.tmp)
        self.assertEqual(r.returncode, 1, r.stderr)
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([(f["path"], f["line"], f["rule"]) for f in rows],
                         [("gitsite/.git:%s:config/mail.php" % first[:12], 2,
                           "phpmailer-password")])
        self.assertNotIn("committedThenGone77", r.stdout + r.stderr)

    def test_verify_live_dead_and_never_sends(self):
        self.make_server_cert()
        user, password = "relay-user", "Live-Pa55word!x"
        server = AuthServer(self.tmp, self.cert, self.key, user, password)
        self.peers.append(server)
        tree = os.path.join(self.tmp, "verify-tree")
        os.makedirs(tree)
        dsn = "MAILER_DSN=smtp://%s:%s@localhost:%d\n"
        for name, pw in (("live.env", urllib.parse.quote(password, safe="")),
                         ("dead.env", "Wrong-Pa55word"),
                         ("live-copy.env", urllib.parse.quote(password, safe=""))):
            with open(os.path.join(tree, name), "w") as f:
                f.write(dsn % (user, pw, server.port))
        env = dict(os.environ, SSL_CERT_FILE=self.ca.cert)
        start = time.monotonic()
        r = self.scan("--no-vault", "--verify", "--format", "json", tree, env=env)
        elapsed = time.monotonic() - start
        self.assertEqual(r.returncode, 1, r.stderr)
        verdicts = {os.path.basename(f["path"]): f["verify"]["state"]
                    for f in map(json.loads, r.stdout.splitlines())}
        self.assertEqual(verdicts, {"live.env": "live", "dead.env": "dead",
                                    "live-copy.env": "live"})
        with open(os.path.join(server.spool, "events.jsonl")) as f:
            connections = [e for e in map(json.loads, f) if e["event"] == "connect"]
        self.assertEqual(len(connections), 2)  # the copy was not tried again
        self.assertGreaterEqual(elapsed, 1.0)  # at most one attempt a second
        self.assertEqual(server.messages(), [])  # never sends mail
        self.assertNotIn(password, r.stdout + r.stderr)
        r = self.scan("--no-vault", "--verify", tree, env=env)
        self.assertIn("[verify: live", r.stdout)

    def test_unreadable_files_as_nobody(self):
        # Root reads everything, so this run drops to uid 65534.
        tree = tempfile.mkdtemp(prefix="sg-scan-nobody-")
        self.addCleanup(shutil.rmtree, tree, True)
        os.chmod(tree, 0o755)
        for name, mode in (("open.env", 0o644), ("closed.env", 0o600)):
            path = os.path.join(tree, name)
            with open(path, "w") as f:
                f.write("MAIL_PASSWORD=" + W[0] + "\n")
            os.chmod(path, mode)
        os.makedirs(os.path.join(tree, "private"), mode=0o700)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            SMTPGUARD, "--config", self.config, "scan", "--format", "json",
                            tree], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual([json.loads(line)["path"] for line in r.stdout.splitlines()],
                         [tree + "/open.env"])
        lines = r.stderr.splitlines()
        self.assertTrue(lines[0].startswith("smtpguard: warning: own credentials not checked"),
                        r.stderr)
        warnings = {(w["path"], w["warning"]) for w in map(json.loads, lines[1:])}
        self.assertEqual(warnings, {(tree + "/closed.env", "unreadable: Permission denied"),
                                    (tree + "/private", "unreadable: Permission denied")})


if __name__ == "__main__":
    unittest.main()
