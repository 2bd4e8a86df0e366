#include "smtp/dot_stuff.hpp"

#include "base/find_byte.hpp"

namespace sg::smtp {

std::size_t find_line_special(const char* p, std::size_t from, std::size_t n) {
  return find_byte<'\r', '\n', '\0'>(p, from, n);
}

std::string encode_data(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 32 + 8);
  const char* p = message.data();
  const std::size_t n = message.size();
  bool line_start = true;
  std::size_t i = 0;
  // Runs of ordinary bytes are copied whole: this is the deliverer's hot
  // loop for large messages.
  while (i < n) {
    if (line_start && p[i] == '.') out.push_back('.');
    std::size_t j = find_line_special(p, i, n);
    if (j > i) {
      out.append(p + i, j - i);
      line_start = false;
    }
    if (j == n) break;
    if (p[j] == '\0') {  // dropped; the line goes on
      i = j + 1;
      continue;
    }
    // CRLF is one line ending; a lone CR or LF is one too.
    if (p[j] == '\r' && j + 1 < n && p[j + 1] == '\n') ++j;
    out += "\r\n";
    line_start = true;
    i = j + 1;
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

bool has_8bit(std::string_view bytes) {
  // No early exit, so the compiler can vectorise it.
  unsigned char seen = 0;
  for (char c : bytes) seen |= static_cast<unsigned char>(c);
  return (seen & 0x80) != 0;
}

}  // namespace sg::smtp
