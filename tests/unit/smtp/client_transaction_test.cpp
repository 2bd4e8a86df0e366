// ClientSession transaction phase: MAIL/RCPT/DATA, PIPELINING, RSET, SIZE,
// 8BITMIME, SMTPUTF8, address checks, 421 mid-transaction.
#include <gtest/gtest.h>

#include "fake_server.hpp"

namespace sg::smtp {
namespace {

using testing::FakeServer;
using testing::make_message;
using ET = EventType;
using Types = std::vector<ET>;

class Transaction : public ::testing::TestWithParam<bool> {
 protected:
  // A session that is Ready after an EHLO answered with `extensions`.
  FakeServer& ready_server(const std::string& extensions) {
    ClientOptions options;
    options.ehlo_name = "client.example";
    server_.emplace(options, GetParam());
    server_->say("220 mx ESMTP\r\n");
    EXPECT_EQ(server_->say("250-mx\r\n" + extensions), "");
    EXPECT_EQ(server_->event_types(), (Types{ET::Greeting, ET::Capabilities, ET::Ready}));
    return *server_;
  }

 private:
  std::optional<FakeServer> server_;
};

TEST_P(Transaction, PipeliningSendsOneBatchAndMatchesRepliesInOrder) {
  FakeServer& server = ready_server("250 PIPELINING\r\n");
  server.session().submit(make_message("a@x", {"b@y", "bad@y", "c@y"}, "hello"));
  EXPECT_EQ(server.session().take_output(),
            "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<bad@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n");
  EXPECT_EQ(server.say("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n"
                       "250 2.1.5 ok\r\n354 go\r\n"),
            "hello\r\n.\r\n");
  EXPECT_EQ(server.say("250 2.0.0 queued\r\n"), "");
  const auto events = server.events();
  ASSERT_EQ(events.size(), 5u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(events[i].type, ET::RecipientResult);
    EXPECT_EQ(events[i].index, i);
  }
  EXPECT_EQ(events[1].reply.code, 550);
  EXPECT_EQ(events[1].reply.enhanced, (EnhancedStatus{5, 1, 1}));
  EXPECT_EQ(events[3].type, ET::MessageDone);
  EXPECT_TRUE(events[3].accepted);
  EXPECT_EQ(events[4].type, ET::Ready);
}

TEST_P(Transaction, PipeliningWithAllRecipientsRejectedSendsOnlyTerminator) {
  FakeServer& server = ready_server("250 PIPELINING\r\n");
  server.session().submit(make_message("a@x", {"b@y"}, "secret body"));
  server.session().take_output();
  EXPECT_EQ(server.say("250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n"), ".\r\n");
  EXPECT_EQ(server.say("554 5.5.1 no valid recipients\r\n"), "");
  const auto events = server.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].type, ET::MessageDone);
  EXPECT_FALSE(events[1].accepted);
  EXPECT_EQ(events[1].reply.code, 550);  // the reason, not the aftermath
  // The failed transaction is reset before the next one, in the same batch.
  server.session().submit(make_message("a@x", {"c@y"}, "again"));
  EXPECT_EQ(server.session().take_output(), "RSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<c@y>\r\nDATA\r\n");
}

TEST_P(Transaction, PipeliningWithSenderRejectedReportsSenderReply) {
  FakeServer& server = ready_server("250 PIPELINING\r\n");
  server.session().submit(make_message("a@x", {"b@y"}, "body"));
  server.session().take_output();
  EXPECT_EQ(server.say("553 5.7.1 sender not allowed\r\n503 5.5.1 need MAIL\r\n"
                       "503 5.5.1 need RCPT\r\n"),
            "");
  const auto events = server.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, ET::RecipientResult);
  EXPECT_EQ(events[1].type, ET::MessageDone);
  EXPECT_EQ(events[1].reply.code, 553);
  EXPECT_FALSE(events[1].accepted);
}

TEST_P(Transaction, WithoutPipeliningStopsAtFirstFatalReply) {
  FakeServer& server = ready_server("250 8BITMIME\r\n");
  server.session().submit(make_message("a@x", {"b@y", "c@y"}, "body"));
  EXPECT_EQ(server.session().take_output(), "MAIL FROM:<a@x>\r\n");
  EXPECT_EQ(server.say("250 ok\r\n"), "RCPT TO:<b@y>\r\n");
  EXPECT_EQ(server.say("450 4.2.0 try later\r\n"), "RCPT TO:<c@y>\r\n");
  EXPECT_EQ(server.say("550 5.1.1 unknown\r\n"), "");  // nobody left: no DATA
  auto events = server.events();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2].type, ET::MessageDone);
  EXPECT_FALSE(events[2].accepted);
  EXPECT_EQ(events[2].reply.code, 450);
  EXPECT_TRUE(events[2].reply.transient());

  server.session().submit(make_message("a@x", {"b@y"}, "body"));
  EXPECT_EQ(server.session().take_output(), "RSET\r\n");
  EXPECT_EQ(server.say("250 2.0.0 flushed\r\n"), "MAIL FROM:<a@x>\r\n");
  EXPECT_EQ(server.say("550 5.7.1 sender rejected\r\n"), "");
  events = server.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, ET::MessageDone);
  EXPECT_EQ(events[0].reply.code, 550);
}

TEST_P(Transaction, TwoMessagesInOneSessionWithRsetAfterFailure) {
  FakeServer& server = ready_server("250 SIZE\r\n");
  server.session().submit(make_message("a@x", {"b@y"}, "one"));
  EXPECT_EQ(server.session().take_output(), "MAIL FROM:<a@x> SIZE=5\r\n");
  EXPECT_EQ(server.say("250 ok\r\n"), "RCPT TO:<b@y>\r\n");
  EXPECT_EQ(server.say("250 ok\r\n"), "DATA\r\n");
  EXPECT_EQ(server.say("354 go\r\n"), "one\r\n.\r\n");
  EXPECT_EQ(server.say("554 5.6.0 content rejected\r\n"), "");
  EXPECT_EQ(server.event_types(), (Types{ET::RecipientResult, ET::MessageDone, ET::Ready}));

  server.session().submit(make_message("a@x", {"b@y"}, "two\r\n"));
  EXPECT_EQ(server.session().take_output(), "RSET\r\n");
  EXPECT_EQ(server.say("250 ok\r\n"), "MAIL FROM:<a@x> SIZE=5\r\n");
  EXPECT_EQ(server.say("250 ok\r\n"), "RCPT TO:<b@y>\r\n");
  EXPECT_EQ(server.say("250 ok\r\n"), "DATA\r\n");
  EXPECT_EQ(server.say("354 go\r\n"), "two\r\n.\r\n");
  EXPECT_EQ(server.say("250 ok\r\n"), "");
  const auto events = server.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_TRUE(events[1].accepted);

  // After a success no RSET is needed.
  server.session().submit(make_message("a@x", {"b@y"}, "three"));
  EXPECT_EQ(server.session().take_output(), "MAIL FROM:<a@x> SIZE=7\r\n");
}

TEST_P(Transaction, MessageOverAnnouncedSizeFailsLocally) {
  FakeServer& server = ready_server("250 SIZE 10\r\n");
  server.session().submit(make_message("a@x", {"b@y"}, "0123456789ABCDEF"));
  EXPECT_EQ(server.session().take_output(), "");
  auto events = server.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, ET::MessageDone);
  EXPECT_FALSE(events[0].accepted);
  EXPECT_EQ(events[0].reply.code, 552);
  EXPECT_EQ(events[0].reply.enhanced, (EnhancedStatus{5, 3, 4}));
  EXPECT_EQ(events[1].type, ET::Ready);
  // 8 octets with CRLF fit under 10, and nothing was sent so no RSET either.
  server.session().submit(make_message("a@x", {"b@y"}, "012345"));
  EXPECT_EQ(server.session().take_output(), "MAIL FROM:<a@x> SIZE=8\r\n");
}

TEST_P(Transaction, ServerShutdownMidTransactionFailsTemporarily) {
  FakeServer& server = ready_server("250 PIPELINING\r\n");
  server.session().submit(make_message("a@x", {"b@y"}, "body"));
  server.session().take_output();
  EXPECT_EQ(server.say("250 ok\r\n421 4.3.2 shutting down\r\n"), "");
  const auto events = server.events();
  EXPECT_EQ(events.back().type, ET::Failed);
  EXPECT_EQ(events.back().error.code, Errc::temp_failure);
  EXPECT_NE(events.back().error.message.find("421 4.3.2 shutting down"), std::string::npos);
  for (const Event& event : events) EXPECT_NE(event.type, ET::MessageDone);
  EXPECT_TRUE(server.session().finished());
}

TEST_P(Transaction, UnexpectedReplyCodeIsProtocolError) {
  FakeServer& server = ready_server("250 8BITMIME\r\n");
  server.session().submit(make_message("a@x", {"b@y"}, "body"));
  server.session().take_output();
  server.say("250 ok\r\n");
  server.say("250 ok\r\n");
  server.say("250 DATA should get 354\r\n");
  const auto events = server.events();
  EXPECT_EQ(events.back().type, ET::Failed);
  EXPECT_EQ(events.back().error.code, Errc::protocol);
}

TEST_P(Transaction, AddressesThatCouldInjectCommandsAreRefusedLocally) {
  FakeServer& server = ready_server("250 SMTPUTF8\r\n");
  const std::vector<Envelope> bad = {
      {"a@x>", {"b@y"}},
      {"a@x", {"b@y> NOTIFY=NEVER"}},
      {"a@x", {"b@y\r\nRCPT TO:<evil@z"}},
      {"a@x\n", {"b@y"}},
      {std::string("a@x\0", 4), {"b@y"}},
      {"<a@x", {"b@y"}},
      {"a@x", {""}},
      {"a@x", {}},
  };
  for (const Envelope& envelope : bad) {
    Message message;
    message.envelope = envelope;
    message.data = "body";
    server.session().submit(message);
    EXPECT_EQ(server.session().take_output(), "") << envelope.mail_from;
    const auto events = server.events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].type, ET::MessageDone);
    EXPECT_FALSE(events[0].accepted);
    EXPECT_EQ(events[0].reply.code, 501);
    EXPECT_EQ(events[1].type, ET::Ready);
  }
}

TEST_P(Transaction, SmtpUtf8AndEightBitMimeParameters) {
  FakeServer& server = ready_server("250-8BITMIME\r\n250 SMTPUTF8\r\n");
  server.session().submit(make_message("j\xc3\xb6rg@x", {"b@y"}, "caf\xc3\xa9"));
  EXPECT_EQ(server.session().take_output(), "MAIL FROM:<j\xc3\xb6rg@x> BODY=8BITMIME SMTPUTF8\r\n");
  server.say("250 ok\r\n");
  server.say("250 ok\r\n");
  server.say("354 go\r\n");
  server.say("250 ok\r\n");
  server.events();
  server.session().submit(make_message("a@x", {"b@y"}, "plain"));
  EXPECT_EQ(server.session().take_output(), "MAIL FROM:<a@x>\r\n");
}

TEST_P(Transaction, NonAsciiAddressWithoutSmtpUtf8FailsPermanently) {
  FakeServer& server = ready_server("250 8BITMIME\r\n");
  server.session().submit(make_message("a@x", {"m\xc3\xbcller@y"}, "body"));
  EXPECT_EQ(server.session().take_output(), "");
  const auto events = server.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].reply.code, 553);
  EXPECT_TRUE(events[0].reply.permanent());
}

TEST_P(Transaction, QuitDuringTransactionWaitsForItsEnd) {
  FakeServer& server = ready_server("250 PIPELINING\r\n");
  server.session().submit(make_message("a@x", {"b@y"}, "body"));
  server.session().take_output();
  server.session().quit();
  EXPECT_EQ(server.say("250 ok\r\n250 ok\r\n354 go\r\n"), "body\r\n.\r\n");
  EXPECT_EQ(server.say("250 ok\r\n"), "QUIT\r\n");
  EXPECT_EQ(server.say("221 bye\r\n"), "");
  EXPECT_EQ(server.event_types(), (Types{ET::RecipientResult, ET::MessageDone, ET::Closed}));
}

TEST_P(Transaction, ConnectionLostMidTransactionFails) {
  FakeServer& server = ready_server("250 PIPELINING\r\n");
  server.session().submit(make_message("a@x", {"b@y"}, "body"));
  server.session().connection_lost();
  const auto events = server.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].error.code, Errc::temp_failure);
}

INSTANTIATE_TEST_SUITE_P(WholeAndBytewise, Transaction, ::testing::Bool());

}  // namespace
}  // namespace sg::smtp
