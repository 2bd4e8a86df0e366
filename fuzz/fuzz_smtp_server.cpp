// Drives a ServerSession (AUTH without TLS; STARTTLS, implicit TLS, small
// limits and a shutdown chosen by the first byte) with arbitrary client bytes
// in pseudo-random chunks, the driver accepting everything. Checks that every
// reply line is a CRLF-terminated printable line with a valid code, nothing is
// written after the session closed, one DATA yields at most one Message, and
// a Message never holds a bare CR, bare LF, NUL, over-long line or too many octets.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "smtp/smtp.hpp"

namespace {

struct Checker {
  bool data_started = false;  // a 354 since the last Message
  bool closed = false;

  void output(std::string_view out) {
    if (out.empty()) return;
    if (closed || !out.ends_with("\r\n")) __builtin_trap();
    int continued = 0;  // code of an unfinished multi-line reply
    while (!out.empty()) {
      const std::size_t end = out.find("\r\n");
      const std::string_view line = out.substr(0, end);
      out.remove_prefix(end + 2);
      if (line.size() < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
          line[2] < '0' || line[2] > '9')
        __builtin_trap();
      for (char c : line)
        if (c < 0x20 || c > 0x7e) __builtin_trap();
      const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
      if (continued != 0 && code != continued) __builtin_trap();
      if (line.size() > 3 && line[3] != ' ' && line[3] != '-') __builtin_trap();
      continued = line.size() > 3 && line[3] == '-' ? code : 0;
      if (code == 354) data_started = true;
    }
    if (continued != 0) __builtin_trap();
  }

  void message(std::string_view data, std::uint64_t max_size) {
    if (!data_started) __builtin_trap();  // second Message for one DATA
    data_started = false;
    if (data.size() > max_size || (!data.empty() && !data.ends_with("\r\n"))) __builtin_trap();
    std::size_t line = 0;
    for (std::size_t i = 0; i < data.size(); ++i) {
      const char c = data[i];
      if (c == '\0') __builtin_trap();
      if (c == '\r' && (i + 1 == data.size() || data[i + 1] != '\n')) __builtin_trap();
      if (c == '\n' && (i == 0 || data[i - 1] != '\r')) __builtin_trap();
      line = c == '\n' ? 0 : line + 1;
      if (line > 999) __builtin_trap();  // 998 octets + the CR
    }
  }
};

void pump(sg::smtp::ServerSession& session, Checker& checker, std::uint64_t max_size) {
  using sg::smtp::ServerEventType;
  while (true) {
    checker.output(session.take_output());
    checker.closed = checker.closed || session.wants_close();
    std::optional<sg::smtp::ServerEvent> event = session.next_event();
    if (!event) return;
    switch (event->type) {
      case ServerEventType::Auth:
        session.answer_auth(event->username == "user" && event->password.view() == "pass");
        break;
      case ServerEventType::MailFrom:
      case ServerEventType::RcptTo:
        if (event->address.str().size() > 256) __builtin_trap();
        session.accept();
        break;
      case ServerEventType::Message:
        checker.message(event->data, max_size);
        session.accept("2.0.0", "queued as FUZZ");
        break;
      case ServerEventType::StartTls:
        session.tls_established();
        break;
      default:
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  sg::smtp::ServerOptions options;
  options.hostname = "fuzz.example";
  options.auth_without_tls = true;
  options.starttls_available = (flags & 1) != 0;
  options.max_message_size = (flags & 2) != 0 ? 300 : 40'000'000;
  options.max_recipients = (flags & 4) != 0 ? 2 : 100;
  options.max_errors = (flags & 8) != 0 ? 3 : 1000;
  options.tls_active = (flags & 16) != 0;
  sg::smtp::ServerSession session(options);
  Checker checker;
  session.start();
  pump(session, checker, options.max_message_size);

  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t shutdown_at = (flags & 64) != 0 ? input.size() / 2 : input.size() + 1;
  std::size_t fed = 0;
  std::uint32_t state = flags | 1u;
  while (!input.empty() && !session.wants_close()) {
    state = state * 1103515245u + 12345u;
    const std::size_t newline = input.find('\n');
    const std::size_t chunk = (flags & 32) != 0 && newline != std::string_view::npos
                                  ? newline + 1
                                  : std::min<std::size_t>(input.size(), 1 + (state >> 16) % 64);
    session.receive(input.substr(0, chunk));
    input.remove_prefix(chunk);
    fed += chunk;
    pump(session, checker, options.max_message_size);
    if (fed >= shutdown_at) {
      session.shutdown();
      pump(session, checker, options.max_message_size);
    }
  }
  session.timeout();
  pump(session, checker, options.max_message_size);
  if (!session.wants_close()) __builtin_trap();
  return 0;
}
