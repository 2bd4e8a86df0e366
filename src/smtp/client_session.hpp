// Sans-I/O SMTP client session (RFC 5321 with EHLO extensions: STARTTLS,
// AUTH PLAIN/LOGIN, PIPELINING, SIZE, 8BITMIME, SMTPUTF8). The driver feeds
// server bytes and connection events in, writes take_output() to the socket
// and acts on next_event(). Server input is untrusted: anything malformed or
// out of order ends the session with a Failed event, never a throw or abort.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "base/secret.hpp"
#include "smtp/reply.hpp"

namespace sg::smtp {

struct Envelope {
  std::string mail_from;             // without <>; empty = null sender
  std::vector<std::string> rcpt_to;  // without <>
};

struct Message {
  Envelope envelope;
  std::string data;  // RFC 5322 message, any line endings, no terminating "."
};

struct ClientOptions {
  std::string ehlo_name = "localhost";
  bool starttls = false;      // send STARTTLS after the first EHLO; fail if not offered (Errc::tls)
  bool implicit_tls = false;  // informational: connection is already TLS (port 465); no STARTTLS
  std::string username;       // AUTH when non-empty (PLAIN preferred, else LOGIN)
  const Secret* password = nullptr;  // not owned; must outlive the session
  bool require_auth =
      false;  // fail (Errc::auth) if credentials given but server offers no usable AUTH
};

struct Capabilities {
  bool pipelining = false, starttls = false, eightbitmime = false, smtputf8 = false,
       enhanced_status_codes = false, chunking = false, auth_plain = false, auth_login = false;
  std::optional<std::uint64_t>
      size;  // SIZE limit if announced (0 = no limit announced with value 0)
  std::vector<std::string> auth_mechanisms;  // upper case
  std::vector<std::string> keywords;         // raw EHLO lines after the greeting line
};

// Reads the extension lines of a 250 reply to EHLO (unknown keywords are kept
// in `keywords` only; a malformed SIZE value counts as SIZE 0).
Capabilities parse_capabilities(const Reply& ehlo_reply);

enum class EventType {
  Greeting,         // 220 received (reply)
  Capabilities,     // EHLO (or HELO) answered (see capabilities())
  StartTls,         // STARTTLS accepted with 220: do the TLS handshake, then tls_established()
  Authenticated,    // AUTH succeeded (only emitted when AUTH actually happened)
  Ready,            // idle: the driver may submit() a message or quit()
  RecipientResult,  // one per RCPT TO sent; index = recipient index, reply = its reply
  MessageDone,      // transaction finished: reply = final or failing reply; accepted tells success
  Closed,           // QUIT answered, or connection_lost() after QUIT
  Failed,           // the session cannot go on: error says why; driver closes the connection
};

struct Event {
  EventType type;
  Reply reply;                      // reply behind the event, when there is one
  std::size_t index = 0;            // RecipientResult: recipient index in the envelope
  bool accepted = false;            // MessageDone: message accepted for >= 1 recipient
  Error error{Errc::protocol, ""};  // Failed: class + one-line message naming the server reply
};

// Events for a normal session: Greeting, Capabilities, [StartTls,
// Capabilities], [Authenticated], Ready, {RecipientResult..., MessageDone,
// Ready}..., Closed.
//
// Message failures that are detected locally (no recipients, an address with
// CR, LF, NUL, other control characters, '<' or '>', a non-ASCII address when
// the server lacks SMTPUTF8, a message over the announced SIZE) produce a
// MessageDone with accepted = false and a synthetic reply (501, 553, 552)
// without anything being sent. A Failed event ends any transaction in flight;
// no MessageDone follows it. 4xx replies fail with temp_failure, 421 always.
class ClientSession {
 public:
  explicit ClientSession(ClientOptions options);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;
  ClientSession(ClientSession&&) = default;
  ClientSession& operator=(ClientSession&&) = default;

  void receive(std::string_view bytes);  // bytes from the server
  void tls_established();                // driver finished the TLS handshake after StartTls
  void connection_lost();                // peer closed / I/O error
  void submit(Message message);          // only after Ready; starts MAIL/RCPT/DATA
  void quit();  // sends QUIT when idle (else as soon as idle) and expects 221
  // Bytes to write to the server now. They may hold AUTH secrets: then
  // *holds_secret (when given) is set and the driver wipes its copy; a
  // message body alone is not worth a 100 KB wipe per message.
  std::string take_output(bool* holds_secret = nullptr);
  std::optional<Event> next_event();  // events in order
  const Capabilities& capabilities() const { return caps_; }
  bool finished() const { return state_ == State::Closed || state_ == State::Failed; }
  bool tls_active() const { return tls_active_; }
  // Whether the current (or last) transaction's message content was handed
  // to the output: before that, a broken session cannot have delivered it,
  // so the driver may retry at once on a new session without risking a
  // duplicate.
  bool body_sent() const { return body_sent_; }

 private:
  enum class State {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    TlsHandshake,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPassword,
    AuthLoginResult,
    Ready,
    Transaction,
    Quit,
    Closed,
    Failed,
  };
  enum class Expect { Rset, Mail, Rcpt, Data, DataEnd, DataDiscard };
  struct Command {
    std::string line;  // with CRLF
    Expect expect;
    std::size_t index = 0;  // Rcpt: recipient index
  };
  struct Transaction {
    std::string data;  // encoded DATA payload with terminator
    std::size_t recipients = 0, accepted = 0;
    bool mail_ok = false;
    std::optional<Reply> failure;  // first failing MAIL or RCPT reply
  };

  void handle(const Reply& reply);
  void on_greeting(const Reply& reply);
  void on_ehlo(const Reply& reply);
  void on_helo(const Reply& reply);
  void on_starttls(const Reply& reply);
  void on_auth(const Reply& reply);
  void on_transaction(const Reply& reply);
  void after_capabilities();
  void begin_auth();
  void enter_ready();
  void finish_transaction(bool accepted, Reply reply);
  void local_failure(int code, std::string_view text);
  void flush_commands();
  void send(std::string_view line);  // appends line + CRLF
  void send_secret_base64(std::string_view prefix, std::string_view secret);
  void emit(EventType type, Reply reply = {});
  void fail(Errc code, std::string message, Reply reply = {});

  ClientOptions options_;
  State state_ = State::Greeting;
  ReplyParser parser_;
  Capabilities caps_;
  bool tls_active_ = false;
  bool ehlo_succeeded_ = false;  // HELO fallback only for the very first EHLO
  bool need_rset_ = false;
  bool body_sent_ = false;
  bool quit_pending_ = false;
  bool input_follows_ = false;  // receive(): more server bytes after the current line
  std::string output_;
  bool output_holds_secret_ = false;  // AUTH data in output_ since the last take_output
  std::deque<Event> events_;
  std::deque<Command> queued_;    // not yet written
  std::deque<Command> awaiting_;  // written, reply outstanding
  Transaction tx_;
};

}  // namespace sg::smtp
