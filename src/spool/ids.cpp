// Queue ids: time-ordered, unique, safe as file names.
#include <array>

#include "base/random.hpp"
#include "spool/internal.hpp"
#include "spool/spool.hpp"

namespace sg::spool {
namespace {

// Crockford base32, lowercase: digits sort before letters, so ids of equal
// length sort by time.
constexpr std::string_view kAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";
constexpr std::size_t kTimeChars = 11;  // 55 bits of microseconds: until year 3111

int digit_value(char c) {
  auto pos = kAlphabet.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

}  // namespace

bool is_valid_id(std::string_view id) {
  if (id.size() != kIdLength) return false;
  for (char c : id)
    if (digit_value(c) < 0) return false;
  return true;
}

std::string make_id(std::int64_t micros) {
  std::string id(kIdLength, '0');
  auto t = static_cast<std::uint64_t>(micros);
  for (std::size_t i = kTimeChars; i-- > 0;) {
    id[i] = kAlphabet[t & 31];
    t >>= 5;
  }
  std::array<unsigned char, kIdLength - kTimeChars> rnd{};
  random_bytes(rnd.data(), rnd.size());
  for (std::size_t i = 0; i < rnd.size(); ++i) id[kTimeChars + i] = kAlphabet[rnd[i] & 31];
  return id;
}

std::int64_t id_micros(std::string_view id) {
  std::uint64_t t = 0;
  for (std::size_t i = 0; i < kTimeChars; ++i)
    t = (t << 5) | static_cast<std::uint64_t>(digit_value(id[i]));
  return static_cast<std::int64_t>(t);
}

}  // namespace sg::spool
