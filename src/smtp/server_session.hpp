// Sans-I/O SMTP submission server session (RFC 5321, ESMTP with PIPELINING,
// SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS, AUTH PLAIN/LOGIN).
// The driver feeds client bytes in, writes take_output() to the socket, acts
// on next_event() and answers the events that need a decision. Time and TLS
// are the driver's: it reports timeouts and finished handshakes.
//
// Client bytes are untrusted. Bad input becomes an SMTP error reply (and after
// max_errors of them 421 and close), never a throw or an abort. End of data is
// <CRLF>.<CRLF> and nothing else; a bare CR, bare LF or NUL anywhere in DATA
// rejects the whole message (the real end is still found), so no smuggling
// sequence can split one submission into two. Passwords are decoded straight
// into a Secret and the input bytes that carried them are wiped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/secret.hpp"
#include "smtp/address.hpp"

namespace sg::smtp {

struct ServerOptions {
  std::string hostname = "localhost";           // greeting and EHLO
  std::uint64_t max_message_size = 40'000'000;  // SIZE=; actual size checked at DATA -> 552 5.3.4
  std::size_t max_recipients = 100;             // -> 452 4.5.3 "Too many recipients"
  std::size_t max_errors = 10;                  // after this many error replies: 421 4.7.0, close
  bool starttls_available = false;              // offer STARTTLS (not once TLS is active)
  bool tls_active = false;                      // implicit TLS or after tls_established()
  bool auth_without_tls = false;                // loopback / unix socket: AUTH without TLS
  bool auth_offered = true;
};

enum class ServerEventType {
  Auth,      // AUTH PLAIN/LOGIN decoded: username + password. Driver: answer_auth(ok)
  MailFrom,  // driver: accept() or reject(code, enhanced, text)
  RcptTo,    // driver: accept() or reject(...)
  Message,   // end of DATA (see ServerEvent::data). Driver: accept("2.0.0", "queued as ID") or
             // reject(...)
  StartTls,  // 220 sent; driver does the TLS handshake, then calls tls_established()
  Reset,     // RSET, EHLO/HELO during a transaction, or DATA refused by the session itself:
             // the driver drops its transaction state
  Quit,      // 221 sent; driver closes after writing output
};

struct ServerEvent {
  ServerEventType type;
  std::string helo;       // last EHLO/HELO argument
  std::string mechanism;  // Auth: "PLAIN" or "LOGIN"
  std::string username;   // Auth (a PLAIN authzid must be empty or equal to it)
  Secret password;        // Auth
  Mailbox address;        // MailFrom / RcptTo
  std::vector<std::pair<std::string, std::string>> params;  // MAIL/RCPT parameters: KEYWORD
                                                            // (upper case), value as sent
  std::string data;  // Message: as received, dot-unstuffed, CRLF line ends, without ".\r\n"
};

// Replies carry enhanced status codes (RFC 3463) except the greeting, EHLO/HELO,
// 354 and 334. While an Auth/MailFrom/RcptTo/Message decision is pending, input
// is only buffered (up to kMaxPendingInput; the driver should stop reading), so
// pipelined commands are answered in order. Answers given when nothing of that
// kind is pending are ignored.
class ServerSession {
 public:
  static constexpr std::size_t kMaxCommandLine = 512;  // octets with CRLF (RFC 5321 4.5.3.1.4)
  static constexpr std::size_t kMaxAuthLine = 12288;   // AUTH lines (RFC 4954 section 4)
  static constexpr std::size_t kMaxTextLine = 1000;    // DATA lines with CRLF (4.5.3.1.6)
  static constexpr std::size_t kMaxPendingInput = 1 << 20;

  explicit ServerSession(ServerOptions options);
  ~ServerSession();
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;
  ServerSession(ServerSession&&) = default;
  ServerSession& operator=(ServerSession&&) = default;

  void start();                          // queue the 220 greeting
  void receive(std::string_view bytes);  // client bytes; buffered while a decision is pending
  std::optional<ServerEvent> next_event();
  bool awaiting_decision() const { return pending_ != Pending::None; }
  void answer_auth(bool ok);  // 235 2.7.0 or 535 5.7.8
  // MailFrom/RcptTo/Message: "250 <enhanced> <text>".
  void accept(std::string_view enhanced = "2.1.0", std::string_view text = "Ok");
  // Code outside 400..599 becomes 554; 421 also closes the session.
  void reject(int code, std::string_view enhanced, std::string_view text);
  void tls_established();
  void timeout();   // 421 4.4.2 and close
  void shutdown();  // 421 4.3.2 at the next command boundary, then close
  std::string take_output();
  bool wants_close() const { return phase_ == Phase::Closed; }  // close after writing output
  bool authenticated() const { return authenticated_; }
  const std::string& auth_user() const { return auth_user_; }
  bool tls_active() const { return tls_active_; }
  bool in_transaction() const { return mail_; }  // MAIL accepted, message not finished
  std::size_t error_count() const { return errors_; }

 private:
  enum class Phase {
    NotStarted,
    Command,
    Data,
    AuthPlain,          // "334 " sent, waiting for the PLAIN response
    AuthLoginUser,      // "334 VXNlcm5hbWU6" sent
    AuthLoginPassword,  // "334 UGFzc3dvcmQ6" sent
    TlsHandshake,
    Closed,
  };
  enum class Pending { None, Auth, MailFrom, RcptTo, Message };
  // Streaming DATA reader state; see read_data().
  struct DataState {
    std::string message;
    std::size_t line_length = 0;  // octets of the current line so far, excluding a pending CR
    bool line_dot = false;        // current line started with '.' (dropped: unstuffing)
    bool cr = false;              // last octet was a CR not yet known to be part of CRLF
    bool after_crlf = true;       // current line follows a CRLF (or the 354)
    bool bare = false, too_long = false, too_big = false;
  };
  struct Line {
    std::size_t offset = 0, length = 0;  // in input_, with the line ending
    std::string_view text;               // without the line ending
    bool too_long = false, bare_lf = false;
  };

  void process();
  void append_input(std::string_view bytes);
  std::optional<Line> next_line();
  void handle_line(const Line& line);
  void command(std::string_view line);
  void auth_continuation(std::string_view line);
  bool read_data();  // true when the end of data was reached
  void end_of_data();

  // server_commands.cpp
  void on_helo(std::string_view argument, bool extended);
  void on_mail(std::string_view argument);
  void on_rcpt(std::string_view argument);
  void on_data(std::string_view argument);
  void on_starttls(std::string_view argument);
  void on_auth(std::string_view argument);
  void auth_plain(std::string_view base64);
  void auth_login_user(std::string_view base64);
  void auth_login_password(std::string_view base64);
  bool parse_params(std::string_view text, std::vector<std::pair<std::string, std::string>>& out);

  void reply(int code, std::string_view enhanced, std::string_view text);
  void reply_raw(std::string_view line);  // one complete line without CRLF
  void error(int code, std::string_view enhanced, std::string_view text);  // counted
  void close_with(int code, std::string_view enhanced, std::string_view text);
  void emit(ServerEventType type);
  void emit(ServerEvent event);
  void end_transaction(bool notify);
  void reset_connection_state();

  ServerOptions options_;
  Phase phase_ = Phase::NotStarted;
  Pending pending_ = Pending::None;
  std::string input_;
  std::size_t consumed_ = 0;  // octets of input_ already handled
  bool discarding_ = false;   // inside an over-long line: drop up to the next LF
  bool shutdown_requested_ = false;
  std::string output_;
  std::deque<ServerEvent> events_;
  std::size_t errors_ = 0;

  bool tls_active_ = false;
  std::string helo_;  // empty: no EHLO/HELO yet
  bool esmtp_ = false;
  bool authenticated_ = false;
  std::string auth_user_;
  std::string pending_user_;  // Auth decision or LOGIN between its two steps

  bool mail_ = false;  // transaction open
  bool smtputf8_ = false;
  bool pending_smtputf8_ = false;
  std::size_t recipients_ = 0;
  DataState data_;
};

}  // namespace sg::smtp
