// ServerSession limits: command and text line lengths, bare LF commands,
// recipients per message, message size, path lengths, errors per session.
#include <gtest/gtest.h>

#include "server_test_driver.hpp"

namespace sg::smtp {
namespace {

using namespace std::string_literals;
using testing::Driver;
using testing::Feed;
using testing::kEhloReply;
using ET = ServerEventType;
using Types = std::vector<ET>;

const std::string kStartData =
    "EHLO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n";
const std::string kStartDataReplies = std::string(kEhloReply) +
                                      "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                                      "354 End data with <CR><LF>.<CR><LF>\r\n";

class ServerLimitsTest : public ::testing::TestWithParam<Feed> {
 protected:
  Driver make(ServerOptions options = Driver::loopback()) {
    return Driver(std::move(options), GetParam());
  }
};

INSTANTIATE_TEST_SUITE_P(Feeds, ServerLimitsTest,
                         ::testing::Values(Feed::Bytewise, Feed::Lines, Feed::AllAtOnce),
                         testing::feed_name);

TEST_P(ServerLimitsTest, CommandLinesUpTo512Octets) {
  Driver d = make();
  d.start();
  const std::string longest = "NOOP " + std::string(505, 'x') + "\r\n";
  ASSERT_EQ(longest.size(), 512u);
  const std::string too_long = "NOOP " + std::string(506, 'x') + "\r\n";
  const std::string huge = "MAIL FROM:<" + std::string(100000, 'a') + "@x.example>\r\n";
  // One reply per over-long line, and the next command is in sync.
  EXPECT_EQ(d.send(longest + too_long + huge + "NOOP\r\n"),
            "250 2.0.0 Ok\r\n500 5.5.2 Error: line too long\r\n500 5.5.2 Error: line too long\r\n"
            "250 2.0.0 Ok\r\n");
  EXPECT_EQ(d.event_types(), Types{});
}

TEST_P(ServerLimitsTest, AuthLinesMayBeLonger) {
  Driver d = make(Driver::loopback());
  d.start();
  d.send("EHLO c\r\n");
  // 600 octets of base64: over the command limit, within RFC 4954's 12288.
  const std::string line = "AUTH PLAIN " + std::string(600, 'A') + "\r\n";
  EXPECT_EQ(d.send(line), "501 5.5.2 Error: malformed PLAIN response\r\n");
  EXPECT_EQ(d.send("AUTH PLAIN " + std::string(12300, 'A') + "\r\n"),
            "500 5.5.2 Error: line too long\r\n");
}

TEST_P(ServerLimitsTest, BareLfCrOrNulInCommandsIsRefusedAndTheSessionGoesOn) {
  Driver d = make();
  d.start();
  EXPECT_EQ(d.send("EHLO c\nNOOP\r\nNO\rOP\r\nNO\0OP\r\nEHLO c\r\n"s),
            "500 5.5.1 Error: bare LF received; lines must end with CRLF\r\n250 2.0.0 Ok\r\n"
            "500 5.5.2 Error: bare CR or NUL in command line\r\n"
            "500 5.5.2 Error: bare CR or NUL in command line\r\n" +
                std::string(kEhloReply));
  // DATA ended by a bare LF does not start a DATA phase.
  EXPECT_EQ(d.send("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\n"),
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
            "500 5.5.1 Error: bare LF received; lines must end with CRLF\r\n");
}

TEST_P(ServerLimitsTest, TextLinesUpTo1000Octets) {
  Driver d = make();
  d.start();
  const std::string longest(998, 'a');
  EXPECT_EQ(d.send(kStartData + longest + "\r\n.\r\n"),
            kStartDataReplies + "250 2.0.0 queued as Q1\r\n");
  auto events = d.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].data, longest + "\r\n");
  // 999 octets plus CRLF: the whole message is refused, nothing is queued.
  EXPECT_EQ(d.send(kStartData + "short\r\n" + longest + "b\r\nmore\r\n.\r\n"),
            kStartDataReplies +
                "500 5.5.2 Error: message has a line longer than 1000 octets; message refused\r\n");
  EXPECT_EQ(d.event_types(), (Types{ET::MailFrom, ET::RcptTo, ET::Reset}));
  EXPECT_FALSE(d.session().in_transaction());
}

TEST_P(ServerLimitsTest, RecipientsPerMessage) {
  ServerOptions options = Driver::loopback();
  options.max_recipients = 2;
  Driver d = make(options);
  d.start();
  EXPECT_EQ(d.send("EHLO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<1@y.example>\r\n"
                   "RCPT TO:<2@y.example>\r\nRCPT TO:<3@y.example>\r\n"),
            std::string(kEhloReply) +
                "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                "452 4.5.3 Error: too many recipients\r\n");
  // The limit is per message.
  EXPECT_EQ(d.send("DATA\r\nx\r\n.\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<3@y.example>\r\n"),
            "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 queued as Q1\r\n"
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
}

TEST_P(ServerLimitsTest, MessageSize) {
  ServerOptions options = Driver::loopback();
  options.max_message_size = 100;
  Driver d = make(options);
  d.start();
  const std::string exact = std::string(98, 'a') + "\r\n";  // 100 octets as stored
  const std::string start = "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n";
  const std::string replies =
      "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n";
  d.send("EHLO c\r\n");
  // Dot-stuffing does not count: the stored message has 100 octets.
  EXPECT_EQ(d.send(start + "." + exact + ".\r\n"), replies + "250 2.0.0 queued as Q1\r\n");
  auto events = d.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].data, exact);
  // One more octet: consumed to the end, then 552, and the session goes on.
  EXPECT_EQ(d.send(start + "a" + exact + std::string(5000, 'b') + "\r\n.\r\nNOOP\r\n"),
            replies +
                "552 5.3.4 Error: message size exceeds fixed maximum message size\r\n"
                "250 2.0.0 Ok\r\n");
  EXPECT_EQ(d.event_types(), (Types{ET::MailFrom, ET::RcptTo, ET::Reset}));
}

TEST_P(ServerLimitsTest, PathLengths) {
  Driver d = make();
  d.start();
  d.send("EHLO c\r\nMAIL FROM:<a@x.example>\r\n");
  const std::string local64(64, 'l');
  const std::string label63(63, 'd');
  EXPECT_EQ(
      d.send("RCPT TO:<" + local64 + "@x.example>\r\nRCPT TO:<l" + local64 + "@x.example>\r\n"),
      "250 2.1.5 Ok\r\n501 5.1.3 Local part too long (at most 64 octets)\r\n");
  // 256 octets with the brackets are accepted, 257 are not.
  const std::string domain189 = label63 + "." + label63 + "." + std::string(61, 'd');
  ASSERT_EQ(domain189.size(), 189u);
  EXPECT_EQ(d.send("RCPT TO:<" + local64 + "@" + domain189 + ">\r\nRCPT TO:<" + local64 + "@d" +
                   domain189 + ">\r\n"),
            "250 2.1.5 Ok\r\n501 5.1.3 Path too long (at most 256 octets)\r\n");
  // A label over 63 octets is no DNS name.
  EXPECT_EQ(d.send("RCPT TO:<a@" + std::string(64, 'd') + ".example>\r\n"),
            "501 5.1.3 Bad address syntax: invalid domain\r\n");
}

TEST_P(ServerLimitsTest, TooManyErrorsCloses) {
  ServerOptions options = Driver::loopback();
  options.max_errors = 3;
  Driver d = make(options);
  d.start();
  EXPECT_EQ(d.send("FOO\r\nNOOP\r\nBAR\r\nDATA\r\nNOOP\r\nNOOP\r\n"),
            "500 5.5.2 Error: command not recognized\r\n250 2.0.0 Ok\r\n"
            "500 5.5.2 Error: command not recognized\r\n503 5.5.1 Error: need MAIL command\r\n"
            "421 4.7.0 mx.test Error: too many errors\r\n");
  EXPECT_TRUE(d.session().wants_close());
  EXPECT_EQ(d.send("NOOP\r\n"), "");
}

TEST_P(ServerLimitsTest, FailedLoginsCountAsErrors) {
  ServerOptions options = Driver::loopback();
  options.max_errors = 2;
  Driver d = make(options);
  d.start();
  d.send("EHLO c\r\n");
  EXPECT_EQ(d.send("AUTH PLAIN AHVzZXIAd3Jvbmc=\r\nAUTH PLAIN AHVzZXIAd3Jvbmc=\r\n"
                   "AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
            "535 5.7.8 Authentication credentials invalid\r\n"
            "535 5.7.8 Authentication credentials invalid\r\n"
            "421 4.7.0 mx.test Error: too many errors\r\n");
  EXPECT_EQ(d.event_types(), (Types{ET::Auth, ET::Auth}));
}

TEST(ServerLimits, PipelinedInputWhileDecidingIsBounded) {
  Driver d(Driver::loopback(), Feed::AllAtOnce, [](Driver&, const ServerEvent&) {});
  d.start();
  d.send("EHLO c\r\nMAIL FROM:<a@x.example>\r\n");
  EXPECT_TRUE(d.session().awaiting_decision());
  const std::string noops(100 * 1024, 'x');
  for (int i = 0; i < 10; ++i) EXPECT_EQ(d.send(noops), "");
  EXPECT_FALSE(d.session().wants_close());
  EXPECT_EQ(d.send(noops), "421 4.7.0 Error: too much pipelined input\r\n");
  EXPECT_TRUE(d.session().wants_close());
}

}  // namespace
}  // namespace sg::smtp
