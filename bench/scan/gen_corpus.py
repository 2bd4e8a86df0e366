#!/usr/bin/python3
"""Deterministic web-root corpus for the leak scanner benchmark.

    gen_corpus.py OUT [--size-mb 1024] [--seed 1]

writes OUT/webroot/site-NN/ (WordPress-like and Laravel-like trees with
vendor/ and node_modules/, PHP/JS/CSS/HTML/SQL/JSON/log files of realistic
sizes) and OUT/manifest.json: every planted secret (rule, path relative to
OUT/webroot, 1-based line) and the sites making up the ~50 MB subset used for
secretlint. Same arguments, same bytes. The filler text never matches a rule
(no AKIA/ASIA words, no base64 runs of 44, no password assignments), so
anything found beyond the manifest is a false positive.

Planted secrets are made-up values of the right shape (they are not keys).
"""
import argparse
import json
import os
import random
import string

B64 = string.ascii_letters + string.digits + "+/"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

WORDS = ("user post order item cart price total view model cache query route field value "
         "index list page theme style block header footer menu image upload option meta "
         "config request response session token render format filter action hook event "
         "widget plugin admin public static return function class array string number").split()


def chunk_php(rng):
    w = lambda: rng.choice(WORDS)
    forms = [
        lambda: "    $%s = $this->%s->get('%s');" % (w(), w(), w()),
        lambda: "    if (!empty($%s['%s'])) { return $%s; }" % (w(), w(), w()),
        lambda: "    public function %s%s($%s, array $%s = []) {" % (w(), w().title(), w(), w()),
        lambda: "        // %s the %s before the %s is %s" % (w(), w(), w(), w()),
        lambda: "        $%s[] = sprintf('%%s-%%d', $%s, %d);" % (w(), w(), rng.randint(0, 999)),
        lambda: "    }",
        lambda: "        add_action('%s_%s', [$this, '%s']);" % (w(), w(), w()),
        lambda: "use App\\%s\\%s%s;" % (w().title(), w().title(), w().title()),
    ]
    return rng.choice(forms)()


def chunk_js(rng):
    w = lambda: rng.choice(WORDS)
    forms = [
        lambda: "  const %s = %s.%s(%s, %d);" % (w(), w(), w(), w(), rng.randint(0, 99)),
        lambda: "  if (%s && %s.%s) { %s.push(%s); }" % (w(), w(), w(), w(), w()),
        lambda: "export function %s%s(%s) {" % (w(), w().title(), w()),
        lambda: "  return %s.map((%s) => %s.%s);" % (w(), w()[0], w()[0], w()),
        lambda: "}",
        lambda: "  // %s %s %s" % (w(), w(), w()),
        lambda: "  this.%s = { %s: %d, %s: '%s' };" % (w(), w(), rng.randint(0, 9), w(), w()),
    ]
    return rng.choice(forms)()


def chunk_css(rng):
    w = lambda: rng.choice(WORDS)
    return ".%s-%s .%s { margin: %dpx %dpx; color: #%06x; }" % (
        w(), w(), w(), rng.randint(0, 40), rng.randint(0, 40), rng.randint(0, 0xffffff))


def chunk_html(rng):
    w = lambda: rng.choice(WORDS)
    return '<div class="%s %s"><a href="/%s/%s">%s %s</a></div>' % (w(), w(), w(), w(), w(), w())


def chunk_sql(rng):
    w = lambda: rng.choice(WORDS)
    return ("INSERT INTO `wp_posts` VALUES (%d,1,'2023-01-0%d 10:00:00','%s %s %s','%s',"
            "'publish','open','%s-%s');" % (rng.randint(1, 10 ** 6), rng.randint(1, 9), w(), w(),
                                            w(), w(), w(), w()))


def chunk_json(rng):
    w = lambda: rng.choice(WORDS)
    return '  "%s-%s": "^%d.%d.%d",' % (w(), w(), rng.randint(0, 9), rng.randint(0, 30),
                                         rng.randint(0, 9))


def chunk_log(rng):
    w = lambda: rng.choice(WORDS)
    return ("[2024-0%d-1%d 12:%02d:%02d] production.INFO: %s %s %s {\"%s\":%d}" % (
        rng.randint(1, 9), rng.randint(0, 9), rng.randint(0, 59), rng.randint(0, 59), w(), w(),
        w(), w(), rng.randint(0, 10 ** 5)))


CHUNKS = {"php": chunk_php, "js": chunk_js, "css": chunk_css, "html": chunk_html,
          "sql": chunk_sql, "json": chunk_json, "log": chunk_log}


class Filler:
    """A 4 MB block of lines per file type; files are line-aligned slices."""

    def __init__(self, rng):
        self.blocks = {}
        for kind, make in CHUNKS.items():
            lines, size = [], 0
            while size < 4 << 20:
                line = make(rng)
                lines.append(line)
                size += len(line) + 1
            self.blocks[kind] = "\n".join(lines) + "\n"

    def text(self, rng, kind, size):
        block = self.blocks[kind]
        out, need = [], size
        while need > 0:
            start = block.find("\n", rng.randrange(len(block) - 1)) + 1
            piece = block[start:start + min(need, len(block) - start)]
            cut = piece.rfind("\n") + 1 or len(piece)
            piece = piece[:cut]
            if not piece:
                continue
            out.append(piece)
            need -= len(piece)
        text = "".join(out)
        return text if not text or text.endswith("\n") else text + "\n"


def lognormal_size(rng, median, sigma, lo, hi):
    return int(min(hi, max(lo, rng.lognormvariate(0, sigma) * median)))


def secret(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def ses_v4(rng):
    return "B" + rng.choice("ABCDEFGHIJKLMNOP") + secret(rng, B64, 42)


def key_id(rng):
    return "AKIA" + secret(rng, B32, 16)


def pw(rng):
    return secret(rng, string.ascii_letters + string.digits, 10) + "!x" + secret(
        rng, string.digits, 4)


# rule -> (relative path inside a site, text before, the secret line(s), kind)
def plants(rng):
    kid, kid2 = key_id(rng), key_id(rng)
    host = "email-smtp.eu-west-1.amazonaws.com"
    return [
        ("aws-access-key-id", "config/services.php",
         ["    'ses' => ['key' => '%s', 'region' => 'eu-west-1']," % kid]),
        ("ses-smtp-password-v4", "resources/js/mailer.config.js",
         ["  smtpSecret: '%s'," % ses_v4(rng)]),
        ("ses-smtp-password-v2", "storage/app/old-mail.ini",
         ["secret = %s" % ("A" + rng.choice("ghijklmnopqrstuv") + secret(rng, B64, 42))]),
        ("aws-secret-access-key", "backup/aws/credentials",
         ["[default]", "aws_access_key_id = %s" % kid2,
          "aws_secret_access_key = %s" % secret(rng, B64, 40)]),
        ("phpmailer-password", "public/contact/send.php",
         ["$mail->Host = '%s';" % host, "$mail->Username = '%s';" % key_id(rng),
          "$mail->Password = '%s';" % pw(rng)]),
        ("smtp-url-credentials", "config/packages/mailer.yaml",
         ["    dsn: 'smtp://%s:%s@%s:587'" % (key_id(rng), pw(rng), host)]),
        ("laravel-mail-password", ".env",
         ["MAIL_HOST=%s" % host, "MAIL_USERNAME=%s" % key_id(rng),
          "MAIL_PASSWORD=%s" % pw(rng)]),
        ("wp-mail-smtp-password", "wp-config.php",
         ["define( 'WPMS_ON', true );", "define( 'WPMS_SMTP_HOST', '%s' );" % host,
          "define( 'WPMS_SMTP_PASS', '%s' );" % pw(rng)]),
        ("smtp-plugin-option-sql", "database/backup.sql",
         ["INSERT INTO `wp_options` VALUES (901,'wp_mail_smtp','a:1:{s:4:\\\"smtp\\\";a:4:"
          "{s:4:\\\"host\\\";s:%d:\\\"%s\\\";s:4:\\\"port\\\";i:587;s:4:\\\"user\\\";s:20:"
          "\\\"%s\\\";s:4:\\\"pass\\\";s:16:\\\"%s\\\";}}','yes');" % (
              len(host), host, key_id(rng), pw(rng))]),
        ("msmtprc-password", "backup/home/deploy/.msmtprc",
         ["account ses", "host %s" % host, "port 587", "user %s" % key_id(rng),
          "password %s" % pw(rng)]),
        ("postfix-sasl-passwd", "backup/etc/postfix/sasl_passwd",
         ["[%s]:587 %s:%s" % (host, key_id(rng), pw(rng))]),
        ("exim-passwd-client", "backup/etc/exim4/passwd.client",
         ["*.amazonaws.com:%s:%s" % (key_id(rng), pw(rng))]),
        ("exim-client-send", "backup/etc/exim.conf",
         ["ses_login:", "  driver = plaintext", "  public_name = LOGIN",
          "  client_send = : %s : %s" % (key_id(rng), pw(rng))]),
        ("generic-smtp-password", "app/Legacy/mail_settings.php",
         ["$smtp_password = \"%s\";" % pw(rng)]),
    ]


def kind_of(path):
    """Filler kind around a planted secret; None for small config files."""
    ext = os.path.splitext(path)[1].lstrip(".")
    return ext if ext in ("php", "js", "sql") else None


def site_files(rng, wordpress):
    """(relative path, kind, size) for one site's tree."""
    files = []
    def many(prefix, count, kind, median, sigma, lo, hi, ext=None):
        for i in range(count):
            d = "%s/%s" % (prefix, rng.choice(WORDS)) if rng.random() < 0.7 else prefix
            files.append(("%s/%s-%d.%s" % (d, rng.choice(WORDS), i, ext or kind), kind,
                          lognormal_size(rng, median, sigma, lo, hi)))
    if wordpress:
        many("wp-includes", 220, "php", 12000, 1.0, 300, 400000)
        many("wp-admin", 120, "php", 9000, 1.0, 300, 200000)
        many("wp-includes/js", 60, "js", 15000, 1.2, 300, 900000)
        many("wp-admin/css", 40, "css", 12000, 1.0, 300, 300000)
        for p in range(6):
            plug = "wp-content/plugins/%s-%s" % (rng.choice(WORDS), p)
            many(plug, 40, "php", 8000, 1.0, 200, 200000)
            many(plug + "/assets", 8, "js", 30000, 1.3, 500, 1500000)
            many(plug + "/vendor", 30, "php", 7000, 1.0, 200, 150000)
        many("wp-content/themes/site", 30, "php", 6000, 1.0, 200, 100000)
        many("wp-content/themes/site", 10, "html", 8000, 1.0, 200, 100000)
        many("wp-content/uploads/logs", 2, "log", 6 << 20, 0.6, 1 << 20, 40 << 20)
        files.append(("wp-content/uploads/db-backup.sql", "sql",
                      lognormal_size(rng, 12 << 20, 0.5, 2 << 20, 40 << 20)))
    else:
        many("app", 80, "php", 4000, 0.9, 200, 60000)
        many("config", 20, "php", 3000, 0.8, 200, 30000)
        many("resources/views", 40, "html", 5000, 1.0, 200, 80000, "blade.php")
        for v in range(25):
            many("vendor/%s/%s/src" % (rng.choice(WORDS), rng.choice(WORDS)), 18, "php", 6000,
                 1.0, 200, 200000)
        for n in range(30):
            mod = "node_modules/%s-%s" % (rng.choice(WORDS), n)
            many(mod + "/dist", 4, "js", 25000, 1.4, 300, 2000000)
            files.append((mod + "/package.json", "json", lognormal_size(rng, 1500, 0.5, 200, 8000)))
        many("public/css", 10, "css", 20000, 1.0, 500, 400000)
        many("storage/logs", 1, "log", 10 << 20, 0.6, 1 << 20, 60 << 20)
        files.append(("composer.lock", "json", lognormal_size(rng, 250000, 0.3, 50000, 600000)))
        files.append(("database/dump.sql", "sql", lognormal_size(rng, 8 << 20, 0.5, 1 << 20,
                                                                 30 << 20)))
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--subset-mb", type=int, default=50)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    filler = Filler(rng)
    webroot = os.path.join(args.out, "webroot")
    manifest = {"plants": [], "subset": [], "bytes": 0, "files": 0}
    total, site = 0, 0
    budget = args.size_mb << 20
    while total < budget:
        name = "site-%02d" % site
        wordpress = site % 2 == 0
        files = site_files(rng, wordpress)
        site_bytes = 0
        for rel, kind, size in files:
            path = os.path.join(webroot, name, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(filler.text(rng, kind, size))
            site_bytes += size
            manifest["files"] += 1
        # Every rule once per site, at a line after some filler.
        for rule, rel, lines in plants(rng):
            path = os.path.join(webroot, name, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            kind = kind_of(rel)
            before = filler.text(rng, kind, rng.randint(0, 3000)) if kind else ""
            mode = "a" if os.path.exists(path) else "w"
            with open(path, mode) as f:
                start = 0
                if mode == "a":
                    with open(path) as g:
                        start = g.read().count("\n")
                f.write(before)
                first = start + before.count("\n") + 1
                f.write("\n".join(lines) + "\n")
                f.write(filler.text(rng, kind, rng.randint(0, 2000)) if kind else "")
            # The secret is on the last line; the lines before it (host, key id)
            # may be reported too and are not false positives.
            manifest["plants"].append({"rule": rule, "path": "%s/%s" % (name, rel),
                                       "first": first, "line": first + len(lines) - 1})
            site_bytes += len(before) + sum(len(l) + 1 for l in lines)
        if not manifest["subset"] or (sum(s["bytes"] for s in manifest["subset"]) + site_bytes
                                      <= args.subset_mb << 20):
            manifest["subset"].append({"site": name, "bytes": site_bytes})
        total += site_bytes
        site += 1
    manifest["bytes"] = total
    manifest["sites"] = site
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print("%d sites, %d files, %.1f MB, %d planted secrets" % (
        site, manifest["files"], total / 1e6, len(manifest["plants"])))


if __name__ == "__main__":
    main()
