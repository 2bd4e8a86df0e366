// parse_path: RFC 5321 paths and the address tricks an open-relay probe uses.
#include "smtp/address.hpp"

#include <gtest/gtest.h>

namespace sg::smtp {
namespace {

Mailbox parsed(std::string_view text, bool utf8 = false) {
  PathResult result = parse_path(text, true, utf8);
  EXPECT_TRUE(result.ok()) << text << ": " << (result.ok() ? "" : result.error().text);
  return result.ok() ? std::move(result).value() : Mailbox{};
}

std::string refusal(std::string_view text, bool null_allowed = true, bool utf8 = false) {
  PathResult result = parse_path(text, null_allowed, utf8);
  if (result.ok()) return "accepted as " + result.value().str();
  const PathError& error = result.error();
  return std::to_string(error.code) + " " + error.enhanced;
}

TEST(Address, PlainAddress) {
  const Mailbox box = parsed("<John.Doe@Example.COM>");
  EXPECT_EQ(box.local, "John.Doe");  // local parts keep their case
  EXPECT_EQ(box.domain, "Example.COM");
  EXPECT_EQ(box.domain_lower(), "example.com");
  EXPECT_EQ(box.str(), "John.Doe@Example.COM");
  EXPECT_FALSE(box.null());
  EXPECT_FALSE(box.address_literal());
}

TEST(Address, NullPath) {
  EXPECT_TRUE(parsed("<>").null());
  EXPECT_EQ(parsed("<>").str(), "");
  EXPECT_EQ(refusal("<>", false), "501 5.1.3");
  EXPECT_EQ(refusal("< >"), "501 5.1.3");
  EXPECT_EQ(refusal(""), "501 5.1.3");
  EXPECT_EQ(refusal("<"), "501 5.1.3");
}

TEST(Address, QuotedLocalPartWithAtSign) {
  const Mailbox box = parsed("<\"victim@other.example\"@shop.example>");
  EXPECT_EQ(box.local, "victim@other.example");
  EXPECT_EQ(box.domain, "shop.example");  // the domain is the one after the quotes
  EXPECT_EQ(box.str(), "\"victim@other.example\"@shop.example");
  // Quoting that is not needed is dropped; escapes survive a round trip.
  EXPECT_EQ(parsed("<\"plain\"@x.example>").str(), "plain@x.example");
  const Mailbox escaped = parsed("<\"a\\\"b\\\\c d\"@x.example>");
  EXPECT_EQ(escaped.local, "a\"b\\c d");
  EXPECT_EQ(escaped.str(), "\"a\\\"b\\\\c d\"@x.example");
  EXPECT_EQ(parse_path("<" + escaped.str() + ">", false, false).value(), escaped);
  EXPECT_EQ(parsed("<\"\"@x.example>").str(), "\"\"@x.example");
  EXPECT_EQ(refusal("<\"unterminated@x.example>"), "501 5.1.3");
  EXPECT_EQ(refusal("<\"a\"b@x.example>"), "501 5.1.3");
  EXPECT_EQ(refusal("<\"a\tb\"@x.example>"), "501 5.1.3");
}

TEST(Address, PercentHackAndBangPathsStayLocalParts) {
  const Mailbox percent = parsed("<victim%other.example@shop.example>");
  EXPECT_EQ(percent.local, "victim%other.example");
  EXPECT_EQ(percent.domain, "shop.example");
  const Mailbox bang = parsed("<other.example!victim@shop.example>");
  EXPECT_EQ(bang.local, "other.example!victim");
  EXPECT_EQ(bang.domain, "shop.example");
}

TEST(Address, DoubleAtIsRefused) {
  EXPECT_EQ(refusal("<a@b.example@c.example>"), "501 5.1.3");
  EXPECT_EQ(refusal("<a@@c.example>"), "501 5.1.3");
  EXPECT_EQ(refusal("<@c.example>"), "553 5.1.0");  // looks like a source route
}

TEST(Address, SourceRoutesAreRefused) {
  EXPECT_EQ(refusal("<@relay.example:user@victim.example>"), "553 5.1.0");
  EXPECT_EQ(refusal("<@a.example,@b.example:user@victim.example>"), "553 5.1.0");
}

TEST(Address, AddressLiterals) {
  const Mailbox v4 = parsed("<user@[192.0.2.1]>");
  EXPECT_EQ(v4.domain, "[192.0.2.1]");
  EXPECT_TRUE(v4.address_literal());
  EXPECT_EQ(parsed("<user@[IPv6:2001:db8::1]>").domain, "[IPv6:2001:db8::1]");
  EXPECT_EQ(parsed("<user@[ipv6:::ffff:192.0.2.1]>").domain, "[ipv6:::ffff:192.0.2.1]");
  EXPECT_EQ(parsed("<user@[x-tag:some-thing]>").domain, "[x-tag:some-thing]");
  EXPECT_EQ(refusal("<user@[256.0.0.1]>"), "501 5.1.3");
  EXPECT_EQ(refusal("<user@[1.2.3]>"), "501 5.1.3");
  EXPECT_EQ(refusal("<user@[1.2.3.4.5]>"), "501 5.1.3");
  EXPECT_EQ(refusal("<user@[IPv6:2001:db8::g]>"), "501 5.1.3");
  EXPECT_EQ(refusal(std::string("<u@[IPv6:::1\0]>", 15)), "501 5.1.3");
  EXPECT_EQ(refusal("<user@[127.0.0.1>"), "501 5.1.3");
  EXPECT_EQ(refusal("<user@[]>"), "501 5.1.3");
  EXPECT_EQ(refusal("<user@[tag:a]b]>"), "501 5.1.3");
  EXPECT_EQ(refusal("<user@[tag:a>b]>"), "501 5.1.3");  // '>' would end the path early
}

TEST(Address, DomainSyntax) {
  EXPECT_EQ(parsed("<a@x-y.example>").domain, "x-y.example");
  EXPECT_EQ(parsed("<a@localhost>").domain, "localhost");
  for (const char* bad :
       {"<a@-x.example>", "<a@x-.example>", "<a@x..example>", "<a@.example>", "<a@example.>",
        "<a@x_y.example>", "<a@x example>", "<a@>", "<a>", "<postmaster>"})
    EXPECT_EQ(refusal(bad), "501 5.1.3") << bad;
}

TEST(Address, LocalPartSyntax) {
  EXPECT_EQ(parsed("<!#$%&'*+-/=?^_`{|}~@x.example>").local, "!#$%&'*+-/=?^_`{|}~");
  for (const char* bad : {"<.a@x.example>", "<a.@x.example>", "<a..b@x.example>", "<a b@x.example>",
                          "<a(b)@x.example>", "<a,b@x.example>", "<a\\b@x.example>",
                          "<a\r\nb@x.example>", "<a:b@x.example>"})
    EXPECT_EQ(refusal(bad), "501 5.1.3") << bad;
  EXPECT_EQ(refusal(std::string("<a\0b@x.example>", 16)), "501 5.1.3");
}

TEST(Address, Limits) {
  EXPECT_EQ(parsed("<" + std::string(64, 'a') + "@x.example>").local.size(), 64u);
  EXPECT_EQ(refusal("<" + std::string(65, 'a') + "@x.example>"), "501 5.1.3");
  // The quotes count towards the 64 octets.
  EXPECT_EQ(refusal("<\"" + std::string(63, 'a') + "\"@x.example>"), "501 5.1.3");
  EXPECT_EQ(refusal("<a@" + std::string(64, 'd') + ".example>"), "501 5.1.3");
  const std::string label(63, 'd');
  const std::string path =
      "<a@" + label + "." + label + "." + label + "." + std::string(60, 'd') + ">";
  ASSERT_EQ(path.size(), 256u);
  EXPECT_TRUE(parse_path(path, false, false).ok());
  EXPECT_EQ(refusal("<a@d" + path.substr(3)), "501 5.1.3");
}

TEST(Address, Utf8OnlyWithSmtpUtf8) {
  const std::string address =
      "<j\xc3\xb6rg@b\xc3\xbc"
      "cher.example>";
  EXPECT_EQ(refusal(address, true, false), "553 5.6.7");
  const Mailbox box = parsed(address, true);
  EXPECT_EQ(box.local, "j\xc3\xb6rg");
  EXPECT_EQ(box.domain,
            "b\xc3\xbc"
            "cher.example");
  EXPECT_EQ(parsed("<\"\xe2\x82\xac x\"@x.example>", true).local, "\xe2\x82\xac x");
  // Malformed UTF-8 is refused even with SMTPUTF8: overlong, surrogate, truncated, stray.
  for (const char* bad : {"<\xc0\xaf@x.example>", "<\xed\xa0\x80@x.example>", "<a\xc3@x.example>",
                          "<\x80@x.example>", "<\xf4\x90\x80\x80@x.example>"})
    EXPECT_EQ(refusal(bad, true, true), "501 5.1.3");
}

TEST(Address, PathLength) {
  EXPECT_EQ(path_length("<a@b> SIZE=1"), 5u);
  EXPECT_EQ(path_length("<\"a>b\"@c>"), 9u);
  EXPECT_EQ(path_length("<\"a\\\">\"@c> X"), 10u);
  EXPECT_EQ(path_length("<>"), 2u);
  EXPECT_EQ(path_length("<a@b"), std::string_view::npos);
  EXPECT_EQ(path_length("a@b>"), std::string_view::npos);
  EXPECT_EQ(path_length("<\"a>@b"), std::string_view::npos);
  // Quotes elsewhere (here in a general address literal) do not hide a '>'.
  EXPECT_EQ(path_length("<u@[1:\".2]> SIZE=\">\""), 11u);
  EXPECT_EQ(parsed("<u@[1:\".2]>").domain, "[1:\".2]");
}

}  // namespace
}  // namespace sg::smtp
