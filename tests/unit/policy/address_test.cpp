// Address parsing and allowed_senders matching, including every envelope
// trick that must not match a pattern it should not.
#include "policy/address.hpp"

#include <gtest/gtest.h>

namespace sg::policy {
namespace {

SenderPattern pattern(std::string_view text) {
  auto p = SenderPattern::parse(text);
  EXPECT_TRUE(p.ok()) << text << ": " << (p.ok() ? "" : p.error().message);
  return p.ok() ? *p : SenderPattern{};
}

TEST(ParseMailbox, SplitsAtLastUnquotedAt) {
  auto m = parse_mailbox("\"a@b\"@Example.COM");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->local, "\"a@b\"");
  EXPECT_EQ(m->domain, "Example.COM");
  EXPECT_TRUE(m->quoted);
  m = parse_mailbox("first.last+tag@sub.example.com");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->local, "first.last+tag");
  EXPECT_FALSE(m->quoted);
}

TEST(ParseMailbox, RefusesMalformedForms) {
  for (std::string_view bad :
       std::initializer_list<std::string_view>{"",
                                               "noat",
                                               "@example.com",
                                               "user@",
                                               "a@b@example.com",
                                               "@a.example:user@example.com",
                                               "user@[192.0.2.1]",
                                               "user@[IPv6:::1]",
                                               "<user@example.com>",
                                               "user@example.com.",
                                               "user@-bad.example",
                                               "us er@example.com",
                                               "user@exa mple.com",
                                               ".user@example.com",
                                               "user.@example.com",
                                               "us..er@example.com",
                                               "\"unterminated@example.com",
                                               "user@example.com\r\nRCPT TO:<x@y>",
                                               std::string_view("a\0b@example.com", 15),
                                               "host!user",
                                               "user@exa_mple.com"}) {
    EXPECT_FALSE(parse_mailbox(bad).ok()) << bad;
  }
  EXPECT_FALSE(parse_mailbox(std::string(65, 'a') + "@example.com").ok());
  EXPECT_FALSE(parse_mailbox("a@" + std::string(250, 'b') + ".com").ok());
}

TEST(SenderPattern, ExactComparesLocalExactlyAndDomainCaseInsensitively) {
  auto p = pattern("info@Shop.Example.com");
  EXPECT_TRUE(p.matches("info@shop.example.com"));
  EXPECT_TRUE(p.matches("info@SHOP.EXAMPLE.COM"));
  EXPECT_FALSE(p.matches("Info@shop.example.com"));
  EXPECT_FALSE(p.matches("info2@shop.example.com"));
  EXPECT_FALSE(p.matches("info@shop.example.com.evil.com"));
  EXPECT_FALSE(p.matches(""));
}

TEST(SenderPattern, DomainWildcardMatchesOnlyThatDomain) {
  auto p = pattern("*@shop.example.com");
  EXPECT_TRUE(p.matches("a@shop.example.com"));
  EXPECT_TRUE(p.matches("A.B-c+d@SHOP.example.COM"));
  EXPECT_FALSE(p.matches("a@sub.shop.example.com"));
  EXPECT_FALSE(p.matches("a@evilshop.example.com"));
  EXPECT_FALSE(p.matches("a@shop.example.com.evil.com"));
  EXPECT_FALSE(p.matches("a@example.com"));
  EXPECT_FALSE(p.matches(""));
}

TEST(SenderPattern, SubdomainWildcardMatchesSubdomainsOnly) {
  auto p = pattern("*@*.example.com");
  EXPECT_TRUE(p.matches("a@shop.example.com"));
  EXPECT_TRUE(p.matches("a@x.y.EXAMPLE.com"));
  EXPECT_FALSE(p.matches("a@example.com"));
  EXPECT_FALSE(p.matches("a@badexample.com"));
  EXPECT_FALSE(p.matches("a@example.com.evil.org"));
}

// Each trick aims at *@shop.example.com from somewhere else, or at getting a
// downstream MTA to route the address elsewhere.
TEST(SenderPattern, EnvelopeTricksNeverMatchTheWildcard) {
  auto p = pattern("*@shop.example.com");
  for (std::string_view trick : {
           "user%evil.com@shop.example.com",      // percent hack
           "user@evil.com%shop.example.com",      // percent hack, other side
           "\"user@evil.com\"@shop.example.com",  // quoted local part with @
           "\"x@shop.example.com\"@evil.com",     // quoted @ hiding the real domain
           "evil.com!user@shop.example.com",      // bang path before @
           "shop.example.com!user",               // bang path, no @
           "@shop.example.com:user@evil.com",     // source route
           "@evil.com:user@shop.example.com",     // source route towards us
           "user@[192.0.2.1]",                    // address literal
           "user@shop.example.com@evil.com",      // double @
           "user@evil.com@shop.example.com",      // double @, our domain last
           "<user@shop.example.com>",             // brackets left in
           "user@shop.example.com ",              // trailing space
           "user@shop.example.com\r\n",           // line injection
           "user@shop.example.com.",              // trailing dot
           "\"user\"@shop.example.com",           // quoted (exact entries only)
       }) {
    EXPECT_FALSE(p.matches(trick)) << trick;
  }
  // An exact entry still matches exactly what it names, quoted or not.
  EXPECT_TRUE(pattern("\"odd user\"@shop.example.com").matches("\"odd user\"@shop.example.com"));
  EXPECT_FALSE(pattern("\"odd user\"@shop.example.com").matches("odd user@shop.example.com"));
}

TEST(SenderPattern, NullSenderOnlyWhenListed) {
  EXPECT_TRUE(pattern("<>").matches(""));
  EXPECT_FALSE(pattern("<>").matches("a@b.example"));
  std::vector<SenderPattern> ps{pattern("*@shop.example.com")};
  EXPECT_FALSE(any_matches(ps, ""));
  ps.push_back(pattern("<>"));
  EXPECT_TRUE(any_matches(ps, ""));
  EXPECT_TRUE(any_matches(ps, "x@shop.example.com"));
  EXPECT_FALSE(any_matches({}, "x@shop.example.com"));
}

TEST(SenderPattern, RefusesPatternsThatCannotMeanWhatTheySay) {
  for (std::string_view bad : {"", "*", "*@*", "a*@example.com", "*@example.*", "*@[192.0.2.1]",
                               "*@", "@example.com", "a@b@example.com", "*@*.", "user"}) {
    auto p = SenderPattern::parse(bad);
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) {
      EXPECT_EQ(p.error().message.find('\n'), std::string::npos);
    }
  }
}

TEST(Printable, ReplacesControlsAndCuts) {
  EXPECT_EQ(printable("a\r\nb\x7f"), "a??b?");
  EXPECT_EQ(printable(std::string(10, 'x'), 4), "xxxx...");
}

}  // namespace
}  // namespace sg::policy
