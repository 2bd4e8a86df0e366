// Helpers shared by the delivery module's sources (not part of its API).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "smtp/reply.hpp"

namespace sg::delivery::detail {

// Untrusted text for a header or log line: printable ASCII only (anything
// else becomes '?'), at most `limit` octets ("..." marks a cut).
inline std::string printable(std::string_view text, std::size_t limit) {
  std::string out;
  const bool cut = text.size() > limit;
  for (char c : text.substr(0, cut ? limit : text.size())) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u >= 0x7f ? '?' : c);
  }
  if (cut) out += "...";
  return out;
}

// The reply code at the start of a stored last_reply ("550 5.1.1 ...").
inline std::optional<int> reply_code_of(std::string_view last_reply) {
  if (last_reply.size() < 3) return std::nullopt;
  int code = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    if (last_reply[i] < '0' || last_reply[i] > '9') return std::nullopt;
    code = code * 10 + (last_reply[i] - '0');
  }
  if (code < 200 || code > 599) return std::nullopt;
  if (last_reply.size() > 3 && last_reply[3] != ' ' && last_reply[3] != '-') return std::nullopt;
  return code;
}

inline bool is_credential_problem(int code) {
  return code == 530 || code == 535;
}

}  // namespace sg::delivery::detail
