#!/usr/bin/python3
"""Writes a large, realistic Exim 4.96 main log (cPanel-style log_selector:
authenticated submissions with A=dovecot_login:USER, PHP mail() with the
cwd= line of +arguments and U=, inbound mail from remote MXs, remote
deliveries with C="250 ...", deferrals, bounces, AUTH failures, SMTP
connection chatter). Deterministic: the same --seed and --size-mb give the
same bytes.

    generate.py OUT [--size-mb 1024] [--seed 42] [--style cpanel|debian]
"""
import argparse
import random
import time

DOMAINS = ["shop.example.com", "blog.example.org", "clinic.example.net", "law.example.com",
           "bakery.example.org", "garage.example.net", "hotel.example.com", "school.example.org"]
REMOTE = ["gmail.example", "outlook.example", "yahoo.example", "gmx.example", "web.example",
          "orange.example", "icloud.example", "proton.example"]
SUBJECTS = ["Your order #{n} has shipped", "Re: meeting on Thursday", "Invoice {n}",
            "Password reset", "New comment on \\\"Summer sale\\\"", "Newsletter week {n}",
            "Booking confirmation {n}", "Fwd: contract draft v{n}", "Contact form: question"]
TLS = "X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no"
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def b62(n, width):
    s = []
    for _ in range(width):
        s.append(B62[n % 62])
        n //= 62
    return "".join(reversed(s))


class Gen:
    def __init__(self, seed, style):
        self.r = random.Random(seed)
        self.style = style
        self.t = 1_793_491_200.0  # 2026-11-01 00:00:00 (the log's wall clock)
        self.seq = 0
        self.cached = (0, "")
        self.mailboxes = ["%s@%s" % (u, d) for d in DOMAINS
                          for u in ("info", "sales", "office", "admin", "anna", "ben")]
        self.users = ["shop", "blog", "clinic", "law", "bakery", "garage", "hotel", "school"]
        self.ips = ["198.51.100.%d" % i for i in range(1, 200)] + \
                   ["203.0.113.%d" % i for i in range(1, 200)]
        self.attackers = ["192.0.2.%d" % i for i in range(1, 60)]

    def stamp(self):
        self.t += self.r.expovariate(8.0)  # ~8 lines a second
        whole = int(self.t)
        if whole != self.cached[0]:  # gmtime once per second of log time
            self.cached = (whole, "%04d-%02d-%02d %02d:%02d:%02d" % time.gmtime(whole)[:6])
        s = self.cached[1]
        if self.style == "debian":
            s += ".%03d" % int((self.t - whole) * 1000)
        return s

    def msgid(self):
        self.seq += 1
        return "%s-%s-%s" % (b62(int(self.t), 6), b62(self.seq * 7919 % 62**6, 6),
                             b62(self.seq % 3844, 2))

    def rcpts(self, n):
        r = self.r
        return ["%s%d@%s" % (r.choice("abcdefghijklmnop"), r.randrange(1, 5000), r.choice(REMOTE))
                for _ in range(n)]

    def delivery_lines(self, mid, rcpts, sender):
        r, out = self.r, []
        for a in rcpts:
            ip = "192.0.2.%d" % r.randrange(200, 255)
            host = "mx%d.%s" % (r.randrange(1, 4), a.split("@")[1])
            roll = r.random()
            if roll < 0.90:
                out.append("%s %s => %s R=dkim_lookuphost T=dkim_remote_smtp H=%s [%s] %s K "
                           "C=\"250 2.0.0 OK  %d - gsmtp\" QT=%.3fs DT=%.3fs"
                           % (self.stamp(), mid, a, host, ip, TLS.replace("CV=no", "CV=yes"),
                              r.randrange(10**9, 10**10), r.random() * 2, r.random()))
            elif roll < 0.96:
                out.append("%s %s == %s R=dkim_lookuphost T=dkim_remote_smtp defer (-44) H=%s "
                           "[%s]: SMTP error from remote mail server after RCPT TO:<%s>: 451 "
                           "4.7.1 Greylisted, please try again later" %
                           (self.stamp(), mid, a, host, ip, a))
            else:
                out.append("%s %s ** %s R=dkim_lookuphost T=dkim_remote_smtp H=%s [%s]: SMTP "
                           "error from remote mail server after RCPT TO:<%s>: 550 5.1.1 <%s>: "
                           "Recipient address rejected: User unknown" %
                           (self.stamp(), mid, a, host, ip, a, a))
        out.append("%s %s Completed QT=%.3fs" % (self.stamp(), mid, r.random() * 3))
        return out

    def subject(self):
        return self.r.choice(SUBJECTS).format(n=self.r.randrange(1000, 99999))

    def authenticated(self):
        r = self.r
        box = r.choice(self.mailboxes)
        ip, port = r.choice(self.ips), r.randrange(1024, 65535)
        mid = self.msgid()
        rc = self.rcpts(1 if r.random() < 0.8 else r.randrange(2, 6))
        lines = ["%s SMTP connection from [%s]:%d (TCP/IP connection count = %d)"
                 % (self.stamp(), ip, port, r.randrange(1, 9)),
                 "%s %s <= %s H=(%s) [%s]:%d P=esmtpsa %s A=dovecot_login:%s S=%d id=%s.%d@%s "
                 "T=\"%s\" for %s" % (self.stamp(), mid, box, "DESKTOP-%d" % r.randrange(100, 999),
                                      ip, port, TLS, box, r.randrange(900, 90000), mid,
                                      r.randrange(10**6), box.split("@")[1], self.subject(),
                                      " ".join(rc))]
        lines += self.delivery_lines(mid, rc, box)
        lines.append("%s SMTP connection from (DESKTOP) [%s]:%d closed by QUIT"
                     % (self.stamp(), ip, port))
        return lines

    def php(self):
        r = self.r
        user = r.choice(self.users)
        mid = self.msgid()
        rc = self.rcpts(1)
        where = "/home/%s/public_html%s" % (user, r.choice(["", "/wp-admin", "/shop/cart"]))
        return ["%s cwd=%s 3 args: /usr/sbin/sendmail -t -i" % (self.stamp(), where),
                "%s %s <= %s@server.example.net U=%s P=local S=%d T=\"%s\" for %s"
                % (self.stamp(), mid, user, user, r.randrange(700, 20000), self.subject(), rc[0])
                ] + self.delivery_lines(mid, rc, user)

    def inbound(self):
        r = self.r
        mid = self.msgid()
        dom = r.choice(DOMAINS)
        ip = "192.0.2.%d" % r.randrange(1, 200)
        sender = self.rcpts(1)[0]
        to = "%s@%s" % (r.choice(("info", "sales", "office")), dom)
        return ["%s %s <= %s H=mail.%s [%s]:%d P=esmtps %s S=%d id=%d@%s T=\"%s\" for %s"
                % (self.stamp(), mid, sender, sender.split("@")[1], ip, r.randrange(1024, 65535),
                   TLS, r.randrange(2000, 200000), r.randrange(10**9), sender.split("@")[1],
                   self.subject(), to),
                "%s %s => %s <%s> R=virtual_user T=dovecot_virtual_delivery C=\"250 2.0.0 <%s> "
                "saved\" QT=0.%03ds DT=0.%03ds" % (self.stamp(), mid, to.split("@")[0], to, to,
                                                   r.randrange(999), r.randrange(999)),
                "%s %s Completed QT=0.%03ds" % (self.stamp(), mid, r.randrange(999))]

    def auth_failure(self):
        r = self.r
        ip = r.choice(self.attackers)
        who = r.choice(self.mailboxes + ["test@%s" % r.choice(DOMAINS), "admin"])
        port = r.randrange(1024, 65535)
        return ["%s dovecot_login authenticator failed for (User) [%s]:%d: 535 Incorrect "
                "authentication data (set_id=%s)" % (self.stamp(), ip, port, who)]

    def chatter(self):
        r = self.r
        ip = "192.0.2.%d" % r.randrange(1, 255)
        return [r.choice([
            "%s H=(%s) [%s]:%d F=<spam%d@%s> rejected RCPT <nobody@%s>: Unrouteable address"
            % (self.stamp(), "ylmf-pc", ip, r.randrange(1024, 65535), r.randrange(999),
               r.choice(REMOTE), r.choice(DOMAINS)),
            "%s no MAIL in SMTP connection from (User) [%s]:%d D=%ds C=EHLO,AUTH,QUIT"
            % (self.stamp(), ip, r.randrange(1024, 65535), r.randrange(1, 30)),
            "%s Start queue run: pid=%d" % (self.stamp(), r.randrange(1000, 99999)),
            "%s End queue run: pid=%d" % (self.stamp(), r.randrange(1000, 99999)),
        ])]

    def block(self):
        roll = self.r.random()
        if roll < 0.35:
            return self.authenticated()
        if roll < 0.55:
            return self.php()
        if roll < 0.80:
            return self.inbound()
        if roll < 0.90:
            return self.auth_failure()
        return self.chatter()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--style", choices=("cpanel", "debian"), default="cpanel")
    a = ap.parse_args()
    g = Gen(a.seed, a.style)
    target = a.size_mb << 20
    written = 0
    with open(a.out, "w", encoding="ascii", newline="\n") as f:
        while written < target:
            chunk = []
            for _ in range(2000):
                chunk.extend(g.block())
            text = "\n".join(chunk) + "\n"
            f.write(text)
            written += len(text)


if __name__ == "__main__":
    main()
