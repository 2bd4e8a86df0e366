// ServerSession STARTTLS (RFC 3207) and where AUTH is offered: state reset
// after TLS, command injection after STARTTLS, AUTH before TLS refused.
#include <gtest/gtest.h>

#include "server_test_driver.hpp"

namespace sg::smtp {
namespace {

using testing::Driver;
using testing::Feed;
using ET = ServerEventType;
using Types = std::vector<ET>;

constexpr std::string_view kEhloBeforeTls =
    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 40000000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250 HELP\r\n";
constexpr std::string_view kEhloAfterTls =
    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 40000000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN\r\n250 HELP\r\n";

ServerOptions network_listener() {
  ServerOptions options;
  options.hostname = "mx.test";
  options.starttls_available = true;
  return options;
}

class ServerTlsTest : public ::testing::TestWithParam<Feed> {
 protected:
  Driver make(ServerOptions options = network_listener()) {
    return Driver(std::move(options), GetParam());
  }
};

INSTANTIATE_TEST_SUITE_P(Feeds, ServerTlsTest,
                         ::testing::Values(Feed::Bytewise, Feed::Lines, Feed::AllAtOnce),
                         testing::feed_name);

TEST_P(ServerTlsTest, StartTlsThenEhloAgainThenAuth) {
  Driver d = make();
  d.start();
  EXPECT_EQ(d.send("EHLO c\r\n"), kEhloBeforeTls);
  EXPECT_EQ(d.send("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
            "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
  EXPECT_EQ(d.send("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(d.event_types(), Types{ET::StartTls});  // the driver "handshakes" at once
  EXPECT_TRUE(d.session().tls_active());
  // The EHLO before TLS is forgotten.
  EXPECT_EQ(d.send("MAIL FROM:<a@x.example>\r\n"), "503 5.5.1 Error: send HELO/EHLO first\r\n");
  EXPECT_EQ(d.send("EHLO c2\r\n"), kEhloAfterTls);
  EXPECT_EQ(d.send("STARTTLS\r\n"), "503 5.5.1 Error: TLS already active\r\n");
  EXPECT_EQ(d.send("AUTH PLAIN AHVzZXIAcGFzcw==\r\nMAIL FROM:<a@x.example>\r\n"),
            "235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n");
  auto events = d.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].helo, "c2");
}

TEST_P(ServerTlsTest, AuthenticationBeforeTlsIsForgotten) {
  ServerOptions options = network_listener();
  options.auth_without_tls = true;
  Driver d = make(options);
  d.start();
  d.send("EHLO c\r\nAUTH PLAIN AHVzZXIAcGFzcw==\r\n");
  EXPECT_TRUE(d.session().authenticated());
  EXPECT_EQ(d.send("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_FALSE(d.session().authenticated());
  EXPECT_EQ(d.session().auth_user(), "");
}

TEST_P(ServerTlsTest, StartTlsSequencing) {
  Driver d = make();
  d.start();
  EXPECT_EQ(d.send("STARTTLS\r\n"), "503 5.5.1 Error: send EHLO first\r\n");
  EXPECT_EQ(d.send("EHLO c\r\nSTARTTLS now\r\nMAIL FROM:<a@x.example>\r\nSTARTTLS\r\n"),
            std::string(kEhloBeforeTls) +
                "501 5.5.4 Syntax: STARTTLS\r\n250 2.1.0 Ok\r\n"
                "503 5.5.1 Error: MAIL transaction in progress\r\n");

  ServerOptions no_tls = network_listener();
  no_tls.starttls_available = false;
  Driver plain = make(no_tls);
  plain.start();
  EXPECT_EQ(plain.send("EHLO c\r\nSTARTTLS\r\nAUTH LOGIN\r\n"),
            "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 40000000\r\n250-8BITMIME\r\n"
            "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 HELP\r\n"
            "502 5.5.1 Error: command not implemented\r\n"
            "503 5.5.1 Error: authentication not enabled\r\n");
}

TEST_P(ServerTlsTest, ImplicitTlsOffersAuthButNoStartTls) {
  ServerOptions options = network_listener();
  options.tls_active = true;
  Driver d = make(options);
  d.start();
  EXPECT_EQ(d.send("EHLO c\r\n"), kEhloAfterTls);
  options.auth_offered = false;
  Driver no_auth = make(options);
  no_auth.start();
  EXPECT_EQ(no_auth.send("EHLO c\r\nAUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
            "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 40000000\r\n250-8BITMIME\r\n"
            "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 HELP\r\n"
            "503 5.5.1 Error: authentication not enabled\r\n");
}

// CVE-2011-0411 class: commands in the same read as STARTTLS would be taken as
// sent over TLS. Only possible with input arriving together, so not per feed.
TEST(ServerTls, CommandsPipelinedAfterStartTlsAreRefused) {
  Driver d(network_listener(), Feed::AllAtOnce);
  d.start();
  EXPECT_EQ(d.send("EHLO c\r\nSTARTTLS\r\nMAIL FROM:<a@x.example>\r\n"),
            std::string(kEhloBeforeTls) + "554 5.5.1 Error: command pipelined after STARTTLS\r\n");
  EXPECT_TRUE(d.session().wants_close());
  EXPECT_FALSE(d.session().tls_active());
  EXPECT_EQ(d.event_types(), Types{});
  // Even a partial line counts.
  Driver partial(network_listener(), Feed::AllAtOnce);
  partial.start();
  EXPECT_EQ(partial.send("EHLO c\r\nSTARTTLS\r\nM"),
            std::string(kEhloBeforeTls) + "554 5.5.1 Error: command pipelined after STARTTLS\r\n");
}

// Plaintext arriving after the 220 but before the handshake finished.
TEST(ServerTls, PlaintextDuringHandshakeCloses) {
  Driver d(network_listener(), Feed::AllAtOnce, [](Driver&, const ServerEvent&) {});
  d.start();
  d.send("EHLO c\r\n");
  EXPECT_EQ(d.send("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(d.send("MAIL FROM:<a@x.example>\r\n"), "");
  EXPECT_TRUE(d.session().wants_close());
  d.session().tls_established();
  EXPECT_FALSE(d.session().tls_active());
}

}  // namespace
}  // namespace sg::smtp
