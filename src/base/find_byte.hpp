// base/find_byte: the first of a few given bytes in a buffer, 16 bytes at a
// time where SSE2 is there (every x86-64), then 8 at a time, then one by
// one. The SMTP DATA copy (CR, LF, NUL) and the Exim log parser (space)
// spend most of their time finding the end of a run of ordinary bytes.
// Header-only; no errors (an index is always returned).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sg {

// Index of the first byte of p[from, n) equal to one of Bytes, or n.
template <char... Bytes>
std::size_t find_byte(const char* p, std::size_t from, std::size_t n) {
  static_assert(sizeof...(Bytes) > 0);
  std::size_t i = from;
#if defined(__SSE2__)
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i hit = _mm_setzero_si128();
    ((hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_set1_epi8(Bytes)))), ...);
    if (const auto mask = static_cast<unsigned>(_mm_movemask_epi8(hit)); mask != 0)
      return i + static_cast<std::size_t>(std::countr_zero(mask));
  }
#endif
  // Eight at a time: a byte equal to b leaves a zero byte in w ^ b, and the
  // lowest flagged byte is the first zero one (borrows only flag above it).
  constexpr std::uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  for (; std::endian::native == std::endian::little && i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    std::uint64_t zero = 0;
    ((zero |= ((w ^ (ones * static_cast<unsigned char>(Bytes))) - ones) &
              ~(w ^ (ones * static_cast<unsigned char>(Bytes))) & high),
     ...);
    if (zero != 0) return i + (static_cast<std::size_t>(std::countr_zero(zero)) >> 3);
  }
  for (; i < n; ++i)
    if (((p[i] == Bytes) || ...)) return i;
  return n;
}

}  // namespace sg
