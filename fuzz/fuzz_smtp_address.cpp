// parse_path on arbitrary bytes (first byte: null_allowed, utf8_allowed).
// Checks: accepted paths obey the RFC 5321 limits, are <> only when the null
// path is allowed, and round-trip through Mailbox::str(); refusals carry a
// 501/553 reply with a printable text; path_length stays inside the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "smtp/address.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool null_allowed = (data[0] & 1) != 0;
  const bool utf8_allowed = (data[0] & 2) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  const std::size_t length = sg::smtp::path_length(text);
  if (length != std::string_view::npos && (length > text.size() || text[length - 1] != '>'))
    __builtin_trap();

  const sg::smtp::PathResult result = sg::smtp::parse_path(text, null_allowed, utf8_allowed);
  if (!result) {
    const sg::smtp::PathError& error = result.error();
    if ((error.code != 501 && error.code != 553) || error.enhanced.empty() || error.text.empty())
      __builtin_trap();
    for (char c : error.text)
      if (c < 0x20 || c > 0x7e) __builtin_trap();
    return 0;
  }
  const sg::smtp::Mailbox& mailbox = result.value();
  if (text.size() > sg::smtp::kMaxPath || length != text.size()) __builtin_trap();
  if (mailbox.null()) {
    if (!null_allowed || text != "<>") __builtin_trap();
    return 0;
  }
  if (mailbox.local.size() > sg::smtp::kMaxLocalPart || mailbox.domain.empty() ||
      mailbox.domain.size() > sg::smtp::kMaxDomain || mailbox.domain.find('@') != std::string::npos)
    __builtin_trap();
  // The canonical form is never longer than the input and parses to the same mailbox.
  const std::string again = "<" + mailbox.str() + ">";
  if (again.size() > text.size()) __builtin_trap();
  const sg::smtp::PathResult reparsed = sg::smtp::parse_path(again, false, utf8_allowed);
  if (!reparsed || !(reparsed.value() == mailbox)) __builtin_trap();
  return 0;
}
