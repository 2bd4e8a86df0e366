// Fuzzes the header reader used by `send -t` / sendmail -t: arbitrary
// messages must never crash it, and removing a header must not grow the text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "smtp/message_headers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view msg(reinterpret_cast<const char*>(data), size);
  for (const auto& v : sg::smtp::header_values(msg, "To"))
    for (const auto& a : sg::smtp::parse_address_list(v))
      if (a.find('@') == std::string::npos) std::abort();
  sg::smtp::parse_address_list(msg);
  if (sg::smtp::remove_header(msg, "Bcc").size() > msg.size()) std::abort();
  return 0;
}
