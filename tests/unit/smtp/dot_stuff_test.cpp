#include <gtest/gtest.h>

#include <string>

#include "smtp/smtp.hpp"

namespace {

using sg::smtp::encode_data;

// Every CR is followed by LF and every LF preceded by CR.
bool only_crlf_line_ends(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return false;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
  }
  return true;
}

// The only end-of-data marker is the one at the very end.
bool single_terminator(std::string_view s) {
  if (s == ".\r\n") return true;
  return s.size() >= 5 && s.find("\r\n.\r\n") == s.size() - 5;
}

TEST(EncodeData, NormalisesLineEndings) {
  EXPECT_EQ(encode_data("a\nb"), "a\r\nb\r\n.\r\n");
  EXPECT_EQ(encode_data("a\r\nb\r\n"), "a\r\nb\r\n.\r\n");
  EXPECT_EQ(encode_data("a\rb\r"), "a\r\nb\r\n.\r\n");
  EXPECT_EQ(encode_data("a\n\r\n\rb"), "a\r\n\r\n\r\nb\r\n.\r\n");
  EXPECT_EQ(encode_data("a\r\r\n"), "a\r\n\r\n.\r\n");
}

TEST(EncodeData, EmptyMessageIsJustTheTerminator) {
  EXPECT_EQ(encode_data(""), ".\r\n");
}

TEST(EncodeData, DotStuffsLinesStartingWithDot) {
  EXPECT_EQ(encode_data(".x\n..y\nz.\n."), "..x\r\n...y\r\nz.\r\n..\r\n.\r\n");
  EXPECT_EQ(encode_data("."), "..\r\n.\r\n");
}

TEST(EncodeData, DropsNulBytes) {
  EXPECT_EQ(encode_data(std::string("a\0b\n", 4)), "ab\r\n.\r\n");
  // A NUL must not hide a leading dot.
  EXPECT_EQ(encode_data(std::string("x\n\0.\n", 5)), "x\r\n..\r\n.\r\n");
}

TEST(EncodeData, SmugglingSequencesBecomeHarmless) {
  const std::string tail =
      "MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n";
  for (const char* ending :
       {"\n.\n", "\r.\r", "\r\n.\r", "\n.\r\n", "\r.\n", "\r\n.\n", "\n.\r", "\r\n.\r\r\n"}) {
    const std::string message = "Subject: hi\r\n\r\nbody" + std::string(ending) + tail;
    const std::string encoded = encode_data(message);
    EXPECT_TRUE(only_crlf_line_ends(encoded)) << testing::PrintToString(ending);
    EXPECT_TRUE(single_terminator(encoded)) << testing::PrintToString(ending);
    EXPECT_NE(encoded.find("\r\n..\r\n"), std::string::npos) << testing::PrintToString(ending);
  }
}

TEST(EncodeData, ArbitraryBytesAlwaysGiveOneTerminator) {
  // Every 4-byte string over the interesting alphabet.
  const char alphabet[] = {'\r', '\n', '.', 'a', '\0'};
  for (int n = 0; n < 5 * 5 * 5 * 5; ++n) {
    std::string input;
    for (int k = n, i = 0; i < 4; ++i, k /= 5) input.push_back(alphabet[k % 5]);
    const std::string encoded = encode_data(input);
    ASSERT_TRUE(only_crlf_line_ends(encoded)) << testing::PrintToString(input);
    ASSERT_TRUE(single_terminator(encoded)) << testing::PrintToString(input);
  }
}

// The vector scan must agree with the obvious loop for every special octet
// at every position relative to the 16-byte blocks, from every start.
TEST(FindLineSpecial, AgreesWithAByteLoopAtEveryPosition) {
  const auto reference = [](std::string_view s, std::size_t from) {
    std::size_t i = from;
    while (i < s.size() && s[i] != '\r' && s[i] != '\n' && s[i] != '\0') ++i;
    return i;
  };
  for (std::size_t size = 0; size <= 70; ++size) {
    for (char special : {'\r', '\n', '\0', 'x'}) {  // 'x': no special at all
      for (std::size_t at = 0; at < std::max<std::size_t>(size, 1); ++at) {
        std::string s(size, '\xff');  // high bytes must not count as specials
        for (std::size_t k = 0; k < size; k += 3) s[k] = static_cast<char>('a' + k % 26);
        if (at < size) s[at] = special;
        for (std::size_t from = 0; from <= size; from += (size > 20 ? 7 : 1))
          ASSERT_EQ(sg::smtp::find_line_special(s.data(), from, s.size()), reference(s, from))
              << "size " << size << " at " << at << " from " << from << " special "
              << static_cast<int>(special);
      }
    }
  }
}

TEST(Has8bit, DetectsHighBytes) {
  EXPECT_FALSE(sg::smtp::has_8bit("plain ascii\r\n"));
  EXPECT_TRUE(sg::smtp::has_8bit("caf\xc3\xa9"));
}

}  // namespace
