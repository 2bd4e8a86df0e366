#!/usr/bin/python3
"""A real SMTP server for interop tests (aiosmtpd): requires STARTTLS before
AUTH and before any mail, accepts exactly one username/password, and writes
every accepted message as a JSON file into --spool (envelope, login, body).

Prints "PORT <n>" on stdout once listening on 127.0.0.1:<n> (port 0 = free).
Optional --reply-on-rcpt CODE makes RCPT TO answer that code (for failure
tests). DATA is answered "250 Ok <id>" like Amazon SES.

Fault options for the relay's retry tests. Counters are shared by all
connections of this process ("the first N" counts across connections). A
message is stored only when DATA is answered 250, so a test can count exact
deliveries; a recipient is in a record only if its RCPT got 250.
  --close-in-data N       for the first N DATA commands: answer 354, read one
                          line of the message, then abort the connection
  --421-after N           after N accepted messages on one connection answer
                          the next MAIL with "421 4.4.2 too many messages"
                          and close the connection
  --throttle-first N      the first N MAIL (or DATA, --throttle-at data) get
                          "454 Throttling failure: Maximum sending rate exceeded."
  --quota-first N         the same with "... Daily message quota exceeded."
  --rcpt-reply ADDR[:N]=REPLY   (repeatable) RCPT TO:<ADDR> gets REPLY (the
                          first N times only, when :N is given)
  --slow-greeting S       delay the 220 greeting by S seconds...
  --slow-first N          ...for the first N connections only (default: all)
  --also-accept USER:PASSWORDFILE   (repeatable) a further accepted login, as
                          during a credential rotation; records keep "login"
Besides the messages, the spool gets events.jsonl (one line per connection,
fault and RCPT reply; for assertions and failure messages) and server.log
(aiosmtpd's own log). Neither ends in .json.
"""
import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import uuid

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

THROTTLE = "454 Throttling failure: Maximum sending rate exceeded."
QUOTA = "454 Throttling failure: Daily message quota exceeded."


class Faults:
    """Fault state of the whole server process (shared by every connection)."""

    def __init__(self, args, spool):
        self.spool = spool
        self.remaining = {"close_in_data": args.close_in_data,
                          "throttle": args.throttle_first, "quota": args.quota_first}
        self.throttle_at = args.throttle_at
        self.after_421 = args.after_421
        self.slow_greeting = args.slow_greeting
        self.slow_first = args.slow_first
        self.connections = 0
        # address (lower case) -> [reply, times left or None for always]
        self.rcpt = {}
        for spec in args.rcpt_reply:
            target, sep, reply = spec.partition("=")
            if not sep or not reply[:3].isdigit():
                raise SystemExit("--rcpt-reply wants ADDR[:N]=REPLY, got %r" % spec)
            addr, _, times = target.partition(":")
            self.rcpt[addr.lower()] = [reply, int(times) if times else None]

    def take(self, name):
        """True (and one fewer left) while fault `name` still fires."""
        if self.remaining[name] > 0:
            self.remaining[name] -= 1
            return True
        return False

    def rcpt_reply(self, address):
        rule = self.rcpt.get(address.lower())
        if rule is None or rule[1] == 0:
            return None
        if rule[1] is not None:
            rule[1] -= 1
        return rule[0]

    def event(self, **fields):
        with open(os.path.join(self.spool, "events.jsonl"), "a") as f:
            f.write(json.dumps(fields) + "\n")


class FaultySMTP(SMTP):
    """aiosmtpd's SMTP with the connection-level faults. One instance per
    connection (the session object is replaced after STARTTLS, this is not)."""

    def __init__(self, handler, faults, **kw):
        super().__init__(handler, **kw)
        self.faults = faults
        self.sg_connection = uuid.uuid4().hex
        self.sg_accepted = 0  # messages answered 250 on this connection

    async def _handle_client(self):
        f = self.faults
        f.connections += 1
        f.event(event="connect", connection=self.sg_connection, number=f.connections)
        if f.slow_greeting and (f.slow_first is None or f.connections <= f.slow_first):
            f.event(event="fault", fault="slow-greeting", connection=self.sg_connection)
            # Cancelled by connection_lost if the client gives up first.
            await asyncio.sleep(f.slow_greeting)
        await super()._handle_client()

    async def until_closed(self):
        """Reads no more commands: connection_lost cancels this wait (the
        loop would otherwise answer lines still buffered)."""
        await asyncio.sleep(60)

    async def smtp_MAIL(self, arg):
        f = self.faults
        if f.after_421 and self.sg_accepted >= f.after_421 and self.session.authenticated:
            f.event(event="fault", fault="421", connection=self.sg_connection)
            await self.push("421 4.4.2 too many messages")
            self.transport.close()
            await self.until_closed()
            return
        await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg):
        if self.envelope.rcpt_tos and not arg and self.faults.take("close_in_data"):
            self.faults.event(event="fault", fault="close-in-data",
                              connection=self.sg_connection)
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")  # the client is sending the message
            self.transport.abort()
            await self.until_closed()
            return
        await super().smtp_DATA(arg)


class Handler:
    def __init__(self, spool, rcpt_reply, faults):
        self.spool = spool
        self.rcpt_reply = rcpt_reply
        self.faults = faults

    def throttled(self, step, server):
        for name, reply in (("throttle", THROTTLE), ("quota", QUOTA)):
            if self.faults.throttle_at == step and self.faults.take(name):
                self.faults.event(event="fault", fault=name, at=step,
                                  connection=server.sg_connection)
                return reply
        return None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self.throttled("mail", server)
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        reply = self.faults.rcpt_reply(address)
        self.faults.event(event="rcpt", address=address, reply=reply or "250 OK",
                          connection=server.sg_connection)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self.throttled("data", server)
        if reply:
            return reply
        msg_id = uuid.uuid4().hex
        record = {
            # One id per SMTP connection: tests count how many sessions carried the mail.
            "connection": server.sg_connection,
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "login": session.auth_data.login.decode() if session.auth_data else None,
            "tls": session.ssl is not None,
            "data": envelope.original_content.decode("utf-8", "surrogateescape"),
        }
        tmp = os.path.join(self.spool, msg_id + ".tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.spool, msg_id + ".json"))
        server.sg_accepted += 1
        return "250 Ok " + msg_id


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--username", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--spool", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--reply-on-rcpt", default="")
    ap.add_argument("--close-in-data", type=int, default=0, metavar="N")
    ap.add_argument("--421-after", dest="after_421", type=int, default=0, metavar="N")
    ap.add_argument("--throttle-first", type=int, default=0, metavar="N")
    ap.add_argument("--quota-first", type=int, default=0, metavar="N")
    ap.add_argument("--throttle-at", choices=("mail", "data"), default="mail")
    ap.add_argument("--rcpt-reply", action="append", default=[], metavar="ADDR[:N]=REPLY")
    ap.add_argument("--slow-greeting", type=float, default=0, metavar="S")
    ap.add_argument("--slow-first", type=int, default=None, metavar="N")
    ap.add_argument("--also-accept", action="append", default=[], metavar="USER:PASSWORDFILE")
    args = ap.parse_args()

    # aiosmtpd logs to a file: nobody reads this process's stderr pipe, and a
    # full pipe would block the server.
    logging.basicConfig(filename=os.path.join(args.spool, "server.log"), level=logging.WARNING)

    def read_password(path):
        with open(path, "rb") as f:
            return f.read().rstrip(b"\n")

    logins = {(args.username.encode(), read_password(args.password_file))}
    for spec in args.also_accept:
        user, sep, path = spec.partition(":")
        if not sep or not user or not path:
            raise SystemExit("--also-accept wants USER:PASSWORDFILE, got %r" % spec)
        logins.add((user.encode(), read_password(path)))

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and \
            (auth_data.login, auth_data.password) in logins
        # handled=False: aiosmtpd itself answers 535 on failure.
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    faults = Faults(args, args.spool)
    handler = Handler(args.spool, args.reply_on_rcpt, faults)

    def factory():
        return FaultySMTP(handler, faults, tls_context=context, require_starttls=True,
                          auth_required=True, auth_require_tls=True,
                          authenticator=authenticator, hostname="mx.test")

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(factory, "127.0.0.1", args.port))
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
