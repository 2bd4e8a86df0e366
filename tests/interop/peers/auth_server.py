#!/usr/bin/python3
"""A real SMTP server for interop tests (aiosmtpd): requires STARTTLS before
AUTH and before any mail, accepts exactly one username/password, and writes
every accepted message as a JSON file into --spool (envelope, login, body).

Prints "PORT <n>" on stdout once listening on 127.0.0.1:<n> (port 0 = free).
Optional --reply-on-rcpt CODE makes RCPT TO answer that code (for failure
tests); --ses-style answers DATA with "250 Ok <id>" like Amazon SES.
"""
import argparse
import asyncio
import json
import os
import ssl
import sys
import uuid

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, spool, rcpt_reply):
        self.spool = spool
        self.rcpt_reply = rcpt_reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg_id = uuid.uuid4().hex
        # One id per SMTP connection: tests count how many sessions carried the mail.
        if not hasattr(session, "sg_connection"):
            session.sg_connection = uuid.uuid4().hex
        record = {
            "connection": session.sg_connection,
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
    args = ap.parse_args()

    with open(args.password_file, "rb") as f:
        password = f.read().rstrip(b"\n")
    username = args.username.encode()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and \
            auth_data.login == username and auth_data.password == password
        # handled=False: aiosmtpd itself answers 535 on failure.
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    handler = Handler(args.spool, args.reply_on_rcpt)

    def factory():
        return SMTP(handler, tls_context=context, require_starttls=True,
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
