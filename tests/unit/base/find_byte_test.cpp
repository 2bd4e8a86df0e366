// find_byte against a byte loop: every length across the 16- and 8-byte
// steps, every position of one or two wanted bytes, every start, with bytes
// one off the wanted ones (and high bytes) around them.
#include "base/find_byte.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace {

std::size_t reference(std::string_view s, std::size_t from, std::string_view set) {
  for (std::size_t i = from; i < s.size(); ++i)
    if (set.find(s[i]) != std::string_view::npos) return i;
  return s.size();
}

template <char... Bytes>
void check_against_reference() {
  const std::string set{Bytes...};
  for (std::size_t size = 0; size <= 50; ++size) {
    for (std::size_t at = 0; at <= size; ++at) {
      for (std::size_t second = at; second <= size; second += 5) {
        std::string s(size, '\0');
        for (std::size_t k = 0; k < size; ++k)
          s[k] = k % 4 == 0 ? '\xff' : static_cast<char>(set[k % set.size()] ^ 1);  // near misses
        if (at < size) s[at] = set[at % set.size()];
        if (second < size && second != at) s[second] = set.back();
        for (std::size_t from = 0; from <= size; ++from)
          ASSERT_EQ(sg::find_byte<Bytes...>(s.data(), from, s.size()), reference(s, from, set))
              << "size " << size << " at " << at << " second " << second << " from " << from;
      }
    }
  }
}

TEST(FindByte, OneByteMatchesAByteLoop) {
  check_against_reference<' '>();
}
TEST(FindByte, ThreeBytesMatchAByteLoop) {
  check_against_reference<'\r', '\n', '\0'>();
}
TEST(FindByte, HighByteMatchesAByteLoop) {
  check_against_reference<'\x80', '\xfe'>();
}

}  // namespace
