// Feeds the SMTP reply parser arbitrary bytes in pseudo-random chunks (the
// first input byte seeds the chunking) and checks what it yields.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "smtp/smtp.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::uint32_t state = data[0] | 1u;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  sg::smtp::ReplyParser parser;
  while (!input.empty()) {
    state = state * 1103515245u + 12345u;
    const std::size_t chunk = std::min<std::size_t>(input.size(), 1 + (state >> 16) % 64);
    const auto fed = parser.feed(input.substr(0, chunk));
    input.remove_prefix(chunk);
    while (auto reply = parser.next()) {
      if (reply->code < 200 || reply->code > 599 || reply->lines.empty()) __builtin_trap();
      const std::string line = reply->to_string();
      if (line.size() > sg::smtp::Reply::kMaxDescription) __builtin_trap();
      for (char c : line)
        if (c == '\r' || c == '\n') __builtin_trap();
    }
    if (!fed) {
      if (fed.error().message.empty() || parser.feed("250 ok\r\n").ok()) __builtin_trap();
      break;
    }
  }
  return 0;
}
