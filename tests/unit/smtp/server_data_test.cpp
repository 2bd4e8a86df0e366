// ServerSession DATA phase: transparency, exact message bytes, and the SMTP
// smuggling sequences: a bare CR, bare LF or NUL refuses the message, only
// <CRLF>.<CRLF> ends it, and one DATA never yields two messages.
#include <gtest/gtest.h>

#include <algorithm>

#include "server_test_driver.hpp"

namespace sg::smtp {
namespace {

using namespace std::string_literals;
using testing::Driver;
using testing::Feed;
using testing::kEhloReply;
using ET = ServerEventType;
using Types = std::vector<ET>;

const std::string kTransaction = "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n";
const std::string kTransactionReplies =
    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n";
const std::string kBareRefused =
    "550 5.5.2 Error: bare CR, bare LF or NUL in message data; message refused\r\n";

class ServerDataTest : public ::testing::TestWithParam<Feed> {
 protected:
  Driver make() {
    Driver d(Driver::loopback(), GetParam());
    d.start();
    d.send("EHLO c\r\n");
    return d;
  }
};

INSTANTIATE_TEST_SUITE_P(Feeds, ServerDataTest,
                         ::testing::Values(Feed::Bytewise, Feed::Lines, Feed::AllAtOnce),
                         testing::feed_name);

std::vector<std::string> messages(std::vector<ServerEvent> events) {
  std::vector<std::string> out;
  for (ServerEvent& event : events)
    if (event.type == ET::Message) out.push_back(std::move(event.data));
  return out;
}

TEST_P(ServerDataTest, MessageBytesAreKeptExactly) {
  Driver d = make();
  const std::string body =
      "From: a@x.example\r\nSubject: t\r\n\r\n..leading dot\r\n...\r\n. \r\nend.\r\n"
      "\t tabs and 8bit \xc3\xa9\r\n\r\n";
  EXPECT_EQ(d.send(kTransaction + body + ".\r\n"),
            kTransactionReplies + "250 2.0.0 queued as Q1\r\n");
  EXPECT_EQ(messages(d.events()),
            std::vector<std::string>{"From: a@x.example\r\nSubject: t\r\n\r\n.leading dot\r\n..\r\n"
                                     " \r\nend.\r\n\t tabs and 8bit \xc3\xa9\r\n\r\n"});
}

TEST_P(ServerDataTest, EmptyMessageAndMessageWithoutFinalNewline) {
  Driver d = make();
  EXPECT_EQ(d.send(kTransaction + ".\r\n"), kTransactionReplies + "250 2.0.0 queued as Q1\r\n");
  // "x.\r\n" is not an end: the '.' is not at the start of a line.
  EXPECT_EQ(d.send(kTransaction + "x.\r\n.\r\n"),
            kTransactionReplies + "250 2.0.0 queued as Q2\r\n");
  EXPECT_EQ(messages(d.events()), (std::vector<std::string>{"", "x.\r\n"}));
}

// Each sequence is put after the body of a first transaction and followed by
// a complete second, "smuggled" transaction and QUIT. The sequence must not
// end the first message, so everything up to the real <CRLF>.<CRLF> after the
// smuggled body is one message, and it is refused for its bare CR/LF/NUL.
TEST_P(ServerDataTest, SmugglingSequencesNeverSplitAMessage) {
  const std::vector<std::string> sequences = {
      "\n.\n",       "\n.\r\n",   "\r.\r",        "\r\n.\r",      "\r.\r\n",
      "\r\n.\n",     "\n.\r",     "\r\n\0.\r\n"s, "\r\n.\0\r\n"s, "\r\n.\r\r\n",
      "\r\n\r.\r\n", "\n\n.\n\n", "\r\n.\n\r\n",
  };
  for (const std::string& sequence : sequences) {
    SCOPED_TRACE(::testing::PrintToString(sequence));
    Driver d = make();
    const std::string input = kTransaction + "Subject: one\r\n\r\nbody" + sequence +
                              "MAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@y.example>\r\n"
                              "DATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\nQUIT\r\n";
    EXPECT_EQ(d.send(input), kTransactionReplies + kBareRefused + "221 2.0.0 Bye\r\n");
    EXPECT_EQ(d.event_types(), (Types{ET::MailFrom, ET::RcptTo, ET::Reset, ET::Quit}));
  }
}

// The control case: a real <CRLF>.<CRLF> does end the message, so the same
// input with it yields two transactions (and shows the test above can fail).
TEST_P(ServerDataTest, RealEndOfDataStartsTheNextTransaction) {
  Driver d = make();
  const std::string input = kTransaction + "Subject: one\r\n\r\nbody\r\n.\r\n" +
                            "MAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@y.example>\r\n"
                            "DATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\nQUIT\r\n";
  EXPECT_EQ(d.send(input), kTransactionReplies + "250 2.0.0 queued as Q1\r\n" +
                               kTransactionReplies + "250 2.0.0 queued as Q2\r\n221 2.0.0 Bye\r\n");
  EXPECT_EQ(messages(d.events()), (std::vector<std::string>{"Subject: one\r\n\r\nbody\r\n",
                                                            "Subject: smuggled\r\n\r\nx\r\n"}));
}

// "\r\r\n.\r\n" holds a genuine <CRLF>.<CRLF>: the first message ends there
// (refused for its bare CR) and what follows is the client's next
// transaction: still never two messages from one DATA.
TEST_P(ServerDataTest, GenuineEndAfterBareCrEndsTheRefusedMessage) {
  Driver d = make();
  const std::string input = kTransaction + "body\r\r\n.\r\n" + kTransaction + "x\r\n.\r\n";
  EXPECT_EQ(d.send(input), kTransactionReplies + kBareRefused + kTransactionReplies +
                               "250 2.0.0 queued as Q1\r\n");
  EXPECT_EQ(messages(d.events()), std::vector<std::string>{"x\r\n"});
}

TEST_P(ServerDataTest, BareNewlineOrNulRefusedThenNextTransactionWorks) {
  for (const std::string& bad : {"a\nb\r\n"s, "a\rb\r\n"s, "a\0b\r\n"s, "a\r"s + "\r\n"}) {
    SCOPED_TRACE(::testing::PrintToString(bad));
    Driver d = make();
    EXPECT_EQ(d.send(kTransaction + "line\r\n" + bad + "more\r\n.\r\n"),
              kTransactionReplies + kBareRefused);
    EXPECT_FALSE(d.session().in_transaction());
    EXPECT_EQ(d.send("RCPT TO:<b@y.example>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
    EXPECT_EQ(d.send(kTransaction + "good\r\n.\r\n"),
              kTransactionReplies + "250 2.0.0 queued as Q1\r\n");
    auto events = d.events();
    EXPECT_EQ(events.size(), 6u);
    EXPECT_EQ(messages(std::move(events)), std::vector<std::string>{"good\r\n"});
  }
}

TEST_P(ServerDataTest, TrailingCrAtChunkEndIsNotMistakenForBareCr) {
  Driver d = make();
  // Split exactly between CR and LF, and between the final CRLF and ".".
  EXPECT_EQ(d.send(kTransaction + "a\r"), kTransactionReplies);
  EXPECT_EQ(d.send("\nb\r\n"), "");
  EXPECT_EQ(d.send(".\r"), "");
  EXPECT_EQ(d.send("\n"), "250 2.0.0 queued as Q1\r\n");
  EXPECT_EQ(messages(d.events()), std::vector<std::string>{"a\r\nb\r\n"});
}

TEST_P(ServerDataTest, DriverRejectionEndsTheTransaction) {
  Driver d(Driver::loopback(), GetParam(), [](Driver& self, const ServerEvent& event) {
    if (event.type == ET::Message) return self.session().reject(451, "4.3.1", "Spool full");
    self.accept_all(event);
  });
  d.start();
  EXPECT_EQ(d.send("EHLO c\r\n" + kTransaction + "x\r\n.\r\nDATA\r\n"),
            std::string(kEhloReply) + kTransactionReplies +
                "451 4.3.1 Spool full\r\n503 5.5.1 Error: need MAIL command\r\n");
}

}  // namespace
}  // namespace sg::smtp
