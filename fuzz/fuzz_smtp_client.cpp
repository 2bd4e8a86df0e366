// Drives a ClientSession (STARTTLS, credentials, one message, then QUIT) with
// arbitrary server bytes in pseudo-random chunks, and checks that everything
// the client writes is CRLF-clean and that it never leaks the password.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "smtp/smtp.hpp"

namespace {

bool crlf_clean(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return false;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const sg::Secret password = sg::Secret::copy_of("fuzz-password");
  if (size == 0) return 0;
  sg::smtp::ClientOptions options;
  options.ehlo_name = "client.example";
  options.starttls = (data[0] & 1) != 0;
  options.username = "user";
  options.password = &password;
  options.require_auth = (data[0] & 2) != 0;
  sg::smtp::ClientSession session(options);

  std::uint32_t state = data[0] | 1u;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  // Error messages may quote the server; only our own copy would be a leak.
  const bool server_sent_password = input.find(password.view()) != std::string_view::npos;
  int messages = 0;
  while (!input.empty() && !session.finished()) {
    state = state * 1103515245u + 12345u;
    // Flag 4: one line per read, so a STARTTLS 220 can be followed by TLS.
    const std::size_t newline = input.find('\n');
    const std::size_t chunk = (data[0] & 4) != 0 && newline != std::string_view::npos
                                  ? newline + 1
                                  : std::min<std::size_t>(input.size(), 1 + (state >> 16) % 48);
    session.receive(input.substr(0, chunk));
    input.remove_prefix(chunk);
    while (auto event = session.next_event()) {
      using sg::smtp::EventType;
      if (event->type == EventType::StartTls) session.tls_established();
      if (event->type == EventType::Ready) {
        if (messages++ < 2) {
          sg::smtp::Message message;
          message.envelope.mail_from = "a@x.example";
          message.envelope.rcpt_to = {"b@y.example", "c@y.example"};
          message.data = "Subject: x\n\n.\nbody\r.\r\n";
          session.submit(std::move(message));
        } else {
          session.quit();
        }
      }
      if (event->type == EventType::Failed &&
          (event->error.message.empty() ||
           (!server_sent_password &&
            event->error.message.find(password.view()) != std::string::npos)))
        __builtin_trap();
    }
    const std::string out = session.take_output();
    if (!crlf_clean(out) || (!out.empty() && !out.ends_with("\r\n"))) __builtin_trap();
  }
  session.connection_lost();
  if (!session.finished()) __builtin_trap();
  return 0;
}
