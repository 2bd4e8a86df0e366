#include "smtp/message_headers.hpp"

#include <gtest/gtest.h>

using sg::smtp::header_values;
using sg::smtp::parse_address_list;
using sg::smtp::remove_header;

TEST(MessageHeaders, UnfoldsAndMatchesCaseInsensitively) {
  std::string msg =
      "to: a@x.example,\r\n\tb@y.example\r\nSubject: s\r\nTO: c@z.example\r\n\r\nTo: body@no\r\n";
  auto v = header_values(msg, "To");
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], "a@x.example, b@y.example");
  EXPECT_EQ(v[1], "c@z.example");
}

TEST(MessageHeaders, StopsAtFirstEmptyLineWithBareLf) {
  std::string msg = "From: a@x\n\nTo: not@header\n";
  EXPECT_TRUE(header_values(msg, "To").empty());
  EXPECT_EQ(header_values(msg, "From").at(0), "a@x");
}

TEST(AddressList, HandlesNamesQuotesCommentsAndGroups) {
  auto a = parse_address_list(
      "Alice <alice@example.net>, \"Bob, Jr.\" <bob@example.org>, carol@example.com (Carol), "
      "team: dave@example.com, eve@example.com;, Undisclosed recipients:;");
  std::vector<std::string> want{"alice@example.net", "bob@example.org", "carol@example.com",
                                "dave@example.com", "eve@example.com"};
  EXPECT_EQ(a, want);
}

TEST(AddressList, IgnoresNamesWithoutAddresses) {
  EXPECT_TRUE(parse_address_list("just a name").empty());
  EXPECT_TRUE(parse_address_list("").empty());
  EXPECT_TRUE(parse_address_list("<>, ,,").empty());
}

TEST(RemoveHeader, DropsFoldedFieldAndKeepsBody) {
  std::string msg = "From: a@x\r\nBcc: hidden@x,\r\n  more@x\r\nSubject: s\r\n\r\nBcc: in body\r\n";
  EXPECT_EQ(remove_header(msg, "bcc"), "From: a@x\r\nSubject: s\r\n\r\nBcc: in body\r\n");
  EXPECT_EQ(remove_header(msg, "X-None"), msg);
}
