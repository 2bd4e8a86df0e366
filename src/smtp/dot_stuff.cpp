#include "smtp/dot_stuff.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sg::smtp {

std::size_t find_line_special(const char* p, std::size_t from, std::size_t n) {
  std::size_t i = from;
#if defined(__SSE2__)
  const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n'), nul = _mm_setzero_si128();
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
                                     _mm_cmpeq_epi8(v, nul));
    if (const int mask = _mm_movemask_epi8(hit); mask != 0)
      return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  while (i < n && p[i] != '\r' && p[i] != '\n' && p[i] != '\0') ++i;
  return i;
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
