// ClientSession connection phase: greeting, EHLO/HELO, STARTTLS, AUTH, QUIT.
#include <gtest/gtest.h>

#include "fake_server.hpp"

namespace sg::smtp {
namespace {

using testing::FakeServer;
using ET = EventType;
using Types = std::vector<ET>;

ClientOptions plain_options() {
  ClientOptions options;
  options.ehlo_name = "client.example";
  return options;
}

class Session : public ::testing::TestWithParam<bool> {
 protected:
  bool bytewise() const { return GetParam(); }
};

TEST_P(Session, PlainSessionSendsOneMessageAndQuits) {
  FakeServer server(plain_options(), bytewise());
  EXPECT_EQ(server.say("220 mx.example ESMTP\r\n"), "EHLO client.example\r\n");
  EXPECT_EQ(server.say("250-mx.example\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n"), "");
  EXPECT_EQ(server.event_types(), (Types{ET::Greeting, ET::Capabilities, ET::Ready}));
  EXPECT_EQ(server.session().capabilities().size, 1000000u);
  EXPECT_FALSE(server.session().capabilities().pipelining);

  server.session().submit(
      testing::make_message("a@x.example", {"b@y.example"}, "Subject: hi\n\nhello\n.dot\n"));
  // 29 = size of the encoded message without the final "." line.
  EXPECT_EQ(server.session().take_output(), "MAIL FROM:<a@x.example> SIZE=29\r\n");
  EXPECT_EQ(server.say("250 2.1.0 Ok\r\n"), "RCPT TO:<b@y.example>\r\n");
  EXPECT_EQ(server.say("250 2.1.5 Ok\r\n"), "DATA\r\n");
  EXPECT_EQ(server.say("354 End data with <CR><LF>.<CR><LF>\r\n"),
            "Subject: hi\r\n\r\nhello\r\n..dot\r\n.\r\n");
  EXPECT_EQ(server.say("250 2.0.0 Ok: queued as 4F2A\r\n"), "");
  auto events = server.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, ET::RecipientResult);
  EXPECT_EQ(events[0].index, 0u);
  EXPECT_EQ(events[0].reply.code, 250);
  EXPECT_EQ(events[1].type, ET::MessageDone);
  EXPECT_TRUE(events[1].accepted);
  EXPECT_EQ(events[1].reply.to_string(), "250 2.0.0 Ok: queued as 4F2A");
  EXPECT_EQ(events[2].type, ET::Ready);

  server.session().quit();
  EXPECT_EQ(server.session().take_output(), "QUIT\r\n");
  EXPECT_FALSE(server.session().finished());
  EXPECT_EQ(server.say("221 2.0.0 Bye\r\n"), "");
  EXPECT_EQ(server.event_types(), Types{ET::Closed});
  EXPECT_TRUE(server.session().finished());
}

TEST_P(Session, StartTlsThenAuthPlain) {
  const Secret password = Secret::copy_of("pass");
  ClientOptions options = plain_options();
  options.starttls = true;
  options.username = "user";
  options.password = &password;
  FakeServer server(options, bytewise());
  EXPECT_EQ(server.say("220 mx ESMTP\r\n"), "EHLO client.example\r\n");
  // AUTH offered in clear text must be forgotten after TLS.
  EXPECT_EQ(server.say("250-mx\r\n250-STARTTLS\r\n250 AUTH LOGIN\r\n"), "STARTTLS\r\n");
  EXPECT_EQ(server.say("220 2.0.0 Ready to start TLS\r\n"), "");
  EXPECT_EQ(server.event_types(), (Types{ET::Greeting, ET::Capabilities, ET::StartTls}));
  EXPECT_FALSE(server.session().tls_active());

  server.session().tls_established();
  EXPECT_TRUE(server.session().tls_active());
  EXPECT_TRUE(server.session().capabilities().auth_mechanisms.empty());
  EXPECT_EQ(server.session().take_output(), "EHLO client.example\r\n");
  EXPECT_EQ(server.say("250-mx\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n"),
            "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
  EXPECT_EQ(server.event_types(), Types{ET::Capabilities});
  EXPECT_EQ(server.say("235 2.7.0 Authentication successful\r\n"), "");
  EXPECT_EQ(server.event_types(), (Types{ET::Authenticated, ET::Ready}));
  EXPECT_TRUE(server.session().capabilities().pipelining);
  EXPECT_FALSE(server.session().capabilities().starttls);
}

TEST_P(Session, AuthLoginAnswersBothChallenges) {
  const Secret password = Secret::copy_of("pass");
  ClientOptions options = plain_options();
  options.implicit_tls = true;
  options.username = "user";
  options.password = &password;
  FakeServer server(options, bytewise());
  EXPECT_EQ(server.say("220 mx ESMTP\r\n"), "EHLO client.example\r\n");
  EXPECT_EQ(server.say("250-mx\r\n250 AUTH=LOGIN\r\n"), "AUTH LOGIN\r\n");
  EXPECT_EQ(server.say("334 VXNlcm5hbWU6\r\n"), "dXNlcg==\r\n");
  EXPECT_EQ(server.say("334 UGFzc3dvcmQ6\r\n"), "cGFzcw==\r\n");
  EXPECT_EQ(server.say("235 2.7.0 Accepted\r\n"), "");
  EXPECT_EQ(server.event_types(),
            (Types{ET::Greeting, ET::Capabilities, ET::Authenticated, ET::Ready}));
}

// The driver wipes what it wrote only when it held AUTH data: a body
// (100 KB and more) is not wiped on every message.
TEST_P(Session, OutputSaysWhenItHoldsAuthData) {
  const Secret password = Secret::copy_of("pass");
  ClientOptions options = plain_options();
  options.implicit_tls = true;
  options.username = "user";
  options.password = &password;
  FakeServer server(options, bytewise());
  EXPECT_EQ(server.say("220 mx ESMTP\r\n"), "EHLO client.example\r\n");
  EXPECT_FALSE(server.last_held_secret());
  EXPECT_EQ(server.say("250-mx\r\n250 AUTH=LOGIN\r\n"), "AUTH LOGIN\r\n");
  EXPECT_FALSE(server.last_held_secret());
  EXPECT_EQ(server.say("334 VXNlcm5hbWU6\r\n"), "dXNlcg==\r\n");
  EXPECT_TRUE(server.last_held_secret());
  EXPECT_EQ(server.say("334 UGFzc3dvcmQ6\r\n"), "cGFzcw==\r\n");
  EXPECT_TRUE(server.last_held_secret());
  EXPECT_EQ(server.say("235 2.7.0 Accepted\r\n"), "");
  EXPECT_FALSE(server.last_held_secret());
  server.session().submit(testing::make_message("a@x.example", {"b@y.example"}, "hello\n"));
  bool held = true;
  EXPECT_EQ(server.session().take_output(&held), "MAIL FROM:<a@x.example>\r\n");
  EXPECT_FALSE(held);
  EXPECT_EQ(server.say("250 Ok\r\n"), "RCPT TO:<b@y.example>\r\n");
  EXPECT_EQ(server.say("250 Ok\r\n"), "DATA\r\n");
  EXPECT_EQ(server.say("354 go\r\n"), "hello\r\n.\r\n");
  EXPECT_FALSE(server.last_held_secret());
}

TEST_P(Session, AuthFailureNamesServerReplyButNotSecret) {
  const Secret password = Secret::copy_of("s3cr3t-pw");
  ClientOptions options = plain_options();
  options.username = "user";
  options.password = &password;
  FakeServer server(options, bytewise());
  server.say("220 mx\r\n");
  EXPECT_EQ(server.say("250-mx\r\n250 AUTH PLAIN\r\n").substr(0, 11), "AUTH PLAIN ");
  EXPECT_EQ(server.say("535 5.7.8 Authentication credentials invalid\r\n"), "");
  const auto events = server.events();
  ASSERT_FALSE(events.empty());
  const Event& failed = events.back();
  EXPECT_EQ(failed.type, ET::Failed);
  EXPECT_EQ(failed.error.code, Errc::auth);
  EXPECT_NE(failed.error.message.find("535 5.7.8 Authentication credentials invalid"),
            std::string::npos);
  EXPECT_EQ(failed.error.message.find("s3cr3t"), std::string::npos);
  EXPECT_TRUE(server.session().finished());
}

TEST_P(Session, TemporaryAuthFailureIsTransient) {
  const Secret password = Secret::copy_of("pw");
  ClientOptions options = plain_options();
  options.username = "user";
  options.password = &password;
  FakeServer server(options, bytewise());
  server.say("220 mx\r\n");
  server.say("250-mx\r\n250 AUTH LOGIN\r\n");
  server.say("334 VXNlcm5hbWU6\r\n");
  server.say("334 UGFzc3dvcmQ6\r\n");
  server.say("454 4.7.0 Temporary authentication failure\r\n");
  const auto events = server.events();
  EXPECT_EQ(events.back().type, ET::Failed);
  EXPECT_EQ(events.back().error.code, Errc::temp_failure);
}

TEST_P(Session, RequiredAuthFailsWhenNoMechanismIsUsable) {
  const Secret password = Secret::copy_of("pw");
  ClientOptions options = plain_options();
  options.username = "user";
  options.password = &password;
  options.require_auth = true;
  FakeServer server(options, bytewise());
  server.say("220 mx\r\n");
  EXPECT_EQ(server.say("250-mx\r\n250 AUTH CRAM-MD5 XOAUTH2\r\n"), "");
  const auto events = server.events();
  EXPECT_EQ(events.back().type, ET::Failed);
  EXPECT_EQ(events.back().error.code, Errc::auth);
  EXPECT_NE(events.back().error.message.find("CRAM-MD5 XOAUTH2"), std::string::npos);
}

TEST_P(Session, OptionalAuthIsSkippedWhenNotOffered) {
  const Secret password = Secret::copy_of("pw");
  ClientOptions options = plain_options();
  options.username = "user";
  options.password = &password;
  FakeServer server(options, bytewise());
  server.say("220 mx\r\n");
  EXPECT_EQ(server.say("250 mx\r\n"), "");
  EXPECT_EQ(server.event_types(), (Types{ET::Greeting, ET::Capabilities, ET::Ready}));
}

TEST_P(Session, InjectedBytesAfterStartTlsReplyFailWithTlsError) {
  ClientOptions options = plain_options();
  options.starttls = true;
  FakeServer server(options, bytewise());
  server.say("220 mx\r\n");
  EXPECT_EQ(server.say("250-mx\r\n250 STARTTLS\r\n"), "STARTTLS\r\n");
  // CVE-2011-0411: a man in the middle appends plaintext replies that a naive
  // client would read as coming over TLS.
  EXPECT_EQ(server.say("220 go ahead\r\n250-mx\r\n250 AUTH PLAIN\r\n"), "");
  const auto events = server.events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, ET::Failed);
  EXPECT_EQ(events.back().error.code, Errc::tls);
  EXPECT_TRUE(server.session().finished());
  server.session().tls_established();  // a driver racing with the failure changes nothing
  EXPECT_EQ(server.session().take_output(), "");
  EXPECT_FALSE(server.session().next_event().has_value());
}

TEST_P(Session, StartTlsRequiredButNotOffered) {
  ClientOptions options = plain_options();
  options.starttls = true;
  FakeServer server(options, bytewise());
  server.say("220 mx\r\n");
  EXPECT_EQ(server.say("250-mx\r\n250 AUTH PLAIN\r\n"), "");
  const auto events = server.events();
  EXPECT_EQ(events.back().type, ET::Failed);
  EXPECT_EQ(events.back().error.code, Errc::tls);
}

TEST_P(Session, StartTlsRefused) {
  ClientOptions options = plain_options();
  options.starttls = true;
  FakeServer server(options, bytewise());
  server.say("220 mx\r\n");
  server.say("250-mx\r\n250 STARTTLS\r\n");
  server.say("454 4.7.0 TLS not available\r\n");
  const auto events = server.events();
  EXPECT_EQ(events.back().type, ET::Failed);
  EXPECT_EQ(events.back().error.code, Errc::tls);
  EXPECT_NE(events.back().error.message.find("454 4.7.0"), std::string::npos);
}

TEST_P(Session, FallsBackToHeloWithoutExtensions) {
  FakeServer server(plain_options(), bytewise());
  EXPECT_EQ(server.say("220 old.example SMTP\r\n"), "EHLO client.example\r\n");
  EXPECT_EQ(server.say("502 5.5.1 Command not recognized\r\n"), "HELO client.example\r\n");
  EXPECT_EQ(server.say("250 old.example\r\n"), "");
  EXPECT_EQ(server.event_types(), (Types{ET::Greeting, ET::Capabilities, ET::Ready}));
  EXPECT_TRUE(server.session().capabilities().keywords.empty());
  server.session().submit(testing::make_message("", {"b@y"}, "x"));
  EXPECT_EQ(server.session().take_output(), "MAIL FROM:<>\r\n");
}

TEST_P(Session, HeloFallbackStillEnforcesStartTls) {
  ClientOptions options = plain_options();
  options.starttls = true;
  FakeServer server(options, bytewise());
  server.say("220 old\r\n");
  server.say("500 what?\r\n");
  server.say("250 old\r\n");
  const auto events = server.events();
  EXPECT_EQ(events.back().type, ET::Failed);
  EXPECT_EQ(events.back().error.code, Errc::tls);
}

TEST_P(Session, RefusedGreetingAndShutdown) {
  FakeServer refused(plain_options(), bytewise());
  EXPECT_EQ(refused.say("554 5.7.1 no service for you\r\n"), "");
  EXPECT_EQ(refused.events().back().error.code, Errc::perm_failure);
  FakeServer busy(plain_options(), bytewise());
  EXPECT_EQ(busy.say("421 4.3.2 too busy\r\n"), "");
  EXPECT_EQ(busy.events().back().error.code, Errc::temp_failure);
}

TEST_P(Session, MalformedOrUnexpectedRepliesFailWithProtocolError) {
  FakeServer garbage(plain_options(), bytewise());
  garbage.say("HTTP/1.1 400 Bad Request\r\n");
  EXPECT_EQ(garbage.events().back().error.code, Errc::protocol);
  FakeServer chatty(plain_options(), bytewise());
  chatty.say("220 mx\r\n");
  chatty.say("250 mx\r\n");
  chatty.say("250 unsolicited\r\n");
  const auto events = chatty.events();
  EXPECT_EQ(events.back().type, ET::Failed);
  EXPECT_EQ(events.back().error.code, Errc::protocol);
}

TEST_P(Session, QuitBeforeReadyIsSentOnceIdle) {
  FakeServer server(plain_options(), bytewise());
  server.session().quit();
  EXPECT_EQ(server.session().take_output(), "");
  server.say("220 mx\r\n");
  EXPECT_EQ(server.say("250 mx\r\n"), "QUIT\r\n");
  server.session().connection_lost();
  EXPECT_EQ(server.event_types(), (Types{ET::Greeting, ET::Capabilities, ET::Closed}));
}

TEST_P(Session, ConnectionLostBeforeQuitFails) {
  FakeServer server(plain_options(), bytewise());
  server.say("220 mx\r\n");
  server.session().connection_lost();
  EXPECT_EQ(server.events().back().error.code, Errc::temp_failure);
  EXPECT_TRUE(server.session().finished());
}

TEST_P(Session, InvalidEhloNameIsRefusedBeforeSending) {
  ClientOptions options = plain_options();
  options.ehlo_name = "host\r\nMAIL FROM:<x>";
  FakeServer server(options, bytewise());
  EXPECT_EQ(server.say("220 mx\r\n"), "");
  EXPECT_EQ(server.events().back().error.code, Errc::invalid_input);
}

INSTANTIATE_TEST_SUITE_P(WholeAndBytewise, Session, ::testing::Bool());

TEST(Capabilities, ParsesKeywordsSizeAndAuth) {
  Reply reply;
  reply.code = 250;
  reply.lines = {
      "mx greets you",       "pipelining", "SIZE",     "AUTH=LOGIN", "AUTH plain LOGIN  cram-md5",
      "ENHANCEDSTATUSCODES", "SMTPUTF8",   "CHUNKING", "X-UNKNOWN 1"};
  const Capabilities caps = parse_capabilities(reply);
  EXPECT_TRUE(caps.pipelining);
  EXPECT_EQ(caps.size, 0u);
  EXPECT_TRUE(caps.auth_plain);
  EXPECT_TRUE(caps.auth_login);
  EXPECT_EQ(caps.auth_mechanisms, (std::vector<std::string>{"LOGIN", "PLAIN", "CRAM-MD5"}));
  EXPECT_TRUE(caps.enhanced_status_codes && caps.smtputf8 && caps.chunking);
  EXPECT_FALSE(caps.starttls || caps.eightbitmime);
  EXPECT_EQ(caps.keywords.size(), 8u);
  EXPECT_EQ(caps.keywords.back(), "X-UNKNOWN 1");

  reply.lines = {"mx", "SIZE 99999999999999999999999"};
  EXPECT_EQ(parse_capabilities(reply).size, 0u);
  reply.lines = {"mx", "SIZE 52428800"};
  EXPECT_EQ(parse_capabilities(reply).size, 52428800u);
  reply.lines = {"mx"};
  EXPECT_FALSE(parse_capabilities(reply).size.has_value());
}

}  // namespace
}  // namespace sg::smtp
