// smtp: sans-I/O SMTP protocol core. Takes bytes and events, returns bytes
// and events; never touches sockets, clocks, files or threads, so tests and
// fuzzers drive it directly.
//  - reply.hpp: Reply, EnhancedStatus and the incremental ReplyParser.
//  - dot_stuff.hpp: encode_data, the DATA-phase encoding (CRLF, dot-stuffing).
//  - client_session.hpp: ClientSession, the submission client state machine
//    (EHLO/HELO, STARTTLS, AUTH PLAIN/LOGIN, PIPELINING, SIZE, 8BITMIME, SMTPUTF8).
//  - address.hpp: parse_path, the RFC 5321 envelope address parser (Mailbox).
//  - server_session.hpp: ServerSession, the submission server state machine;
//    client bytes are untrusted and every problem becomes an SMTP reply.
// Trust: server bytes (client side) and client bytes (server side) are
// untrusted. Malformed or out-of-order input becomes an Errc::protocol error
// (parser), a Failed event (client session) or an SMTP error reply (server
// session, address parser); nothing here throws for bad input (only
// std::bad_alloc) or aborts. Envelope addresses are checked before they reach
// a command line. Secrets appear only in the bytes returned by
// ClientSession::take_output and, as a Secret, in ServerSession's Auth event;
// never in messages, replies or other events.
#pragma once

#include "smtp/address.hpp"
#include "smtp/client_session.hpp"
#include "smtp/dot_stuff.hpp"
#include "smtp/message_headers.hpp"
#include "smtp/reply.hpp"
#include "smtp/server_session.hpp"
