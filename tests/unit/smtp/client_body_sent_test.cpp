// ClientSession::body_sent(): the deliverer retries a message at once on a
// fresh session only while body_sent() is false, so it must not turn true
// before the server's 354 has made the client hand out the content, and it
// must turn true as soon as it has (a break after that may have delivered).
// Every case runs with and without PIPELINING, whole and byte by byte.
#include <gtest/gtest.h>

#include <optional>
#include <tuple>

#include "fake_server.hpp"

namespace sg::smtp {
namespace {

using testing::FakeServer;
using testing::make_message;
using ET = EventType;
using Types = std::vector<ET>;

constexpr std::string_view kBody = "Subject: s\r\n\r\nunique body text\r\n";

class BodySent : public ::testing::TestWithParam<std::tuple<bool, bool>> {
 protected:
  bool pipelining() const { return std::get<0>(GetParam()); }
  bool bytewise() const { return std::get<1>(GetParam()); }

  FakeServer& ready() {
    ClientOptions options;
    options.ehlo_name = "client.example";
    server_.emplace(options, bytewise());
    server_->say("220 mx ESMTP\r\n");
    EXPECT_EQ(server_->say(pipelining() ? "250-mx\r\n250 PIPELINING\r\n" : "250 mx\r\n"), "");
    EXPECT_EQ(server_->event_types(), (Types{ET::Greeting, ET::Capabilities, ET::Ready}));
    return *server_;
  }

  ClientSession& session() { return server_->session(); }

  // Submits a message and answers MAIL with 250 and each RCPT with the given
  // reply lines, stopping before any reply to DATA. Returns everything the
  // client wrote; body_sent() must stay false all the way.
  std::string submit_and_answer_envelope(const std::vector<std::string>& rcpt_replies) {
    std::vector<std::string> to;
    for (std::size_t i = 0; i < rcpt_replies.size(); ++i)
      to.push_back("r" + std::to_string(i) + "@y.example");
    session().submit(make_message("a@x.example", to, std::string(kBody)));
    EXPECT_FALSE(session().body_sent()) << "right after submit()";
    std::string written = session().take_output();
    std::vector<std::string> replies{"250 2.1.0 ok\r\n"};
    replies.insert(replies.end(), rcpt_replies.begin(), rcpt_replies.end());
    if (pipelining()) {
      std::string all;
      for (auto& r : replies) all += r;
      written += server_->say(all);
    } else {
      for (auto& r : replies) written += server_->say(r);
    }
    EXPECT_FALSE(session().body_sent()) << "before the reply to DATA";
    return written;
  }

 private:
  std::optional<FakeServer> server_;
};

TEST_P(BodySent, FalseUntil354ThenTrue) {
  FakeServer& server = ready();
  EXPECT_FALSE(session().body_sent()) << "no transaction yet";
  std::string written = submit_and_answer_envelope({"250 2.1.5 ok\r\n"});
  EXPECT_NE(written.find("DATA\r\n"), std::string::npos) << written;
  EXPECT_EQ(written.find("unique body text"), std::string::npos) << "content before 354";

  EXPECT_EQ(server.say("354 go ahead\r\n"), "Subject: s\r\n\r\nunique body text\r\n.\r\n");
  EXPECT_TRUE(session().body_sent());
  EXPECT_EQ(server.say("250 2.0.0 Ok <id-1>\r\n"), "");
  EXPECT_TRUE(session().body_sent()) << "still describes the last transaction";
  auto events = server.events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, ET::Ready);
}

TEST_P(BodySent, TrueWhenAtLeastOneRecipientWasAccepted) {
  FakeServer& server = ready();
  submit_and_answer_envelope(
      {"550 5.1.1 no such user\r\n", "250 2.1.5 ok\r\n", "450 4.2.0 try later\r\n"});
  EXPECT_EQ(server.say("354 go ahead\r\n"), "Subject: s\r\n\r\nunique body text\r\n.\r\n");
  EXPECT_TRUE(session().body_sent());
}

TEST_P(BodySent, FalseWhenEveryRecipientWasRefused) {
  FakeServer& server = ready();
  std::string written =
      submit_and_answer_envelope({"550 5.1.1 no such user\r\n", "452 4.2.2 mailbox full\r\n"});
  if (pipelining()) {
    // DATA went out in the batch; RFC 2920: answer a 354 with the terminator only.
    EXPECT_EQ(server.say("354 go ahead\r\n"), ".\r\n");
    EXPECT_FALSE(session().body_sent());
    EXPECT_EQ(server.say("554 5.5.1 no valid recipients\r\n"), "");
  } else {
    EXPECT_EQ(written.find("DATA"), std::string::npos) << "lock-step: no DATA without recipients";
  }
  EXPECT_FALSE(session().body_sent());
  auto events = server.events();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[events.size() - 2].type, ET::MessageDone);
  EXPECT_FALSE(events[events.size() - 2].accepted);
}

TEST_P(BodySent, FalseWhenDataItselfIsRefused) {
  FakeServer& server = ready();
  submit_and_answer_envelope({"250 2.1.5 ok\r\n"});
  EXPECT_EQ(server.say("451 4.3.0 not now\r\n"), "");
  EXPECT_FALSE(session().body_sent());
}

TEST_P(BodySent, ConnectionLostBeforeAndAfter354) {
  // Before 354: nothing can have been delivered.
  ready();
  submit_and_answer_envelope({"250 2.1.5 ok\r\n"});
  session().connection_lost();
  EXPECT_TRUE(session().finished());
  EXPECT_FALSE(session().body_sent());

  // After 354: the content is out, a retry might duplicate.
  FakeServer& server = ready();
  submit_and_answer_envelope({"250 2.1.5 ok\r\n"});
  server.say("354 go ahead\r\n");
  session().connection_lost();
  EXPECT_TRUE(session().finished());
  EXPECT_TRUE(session().body_sent());
  auto events = server.events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, ET::Failed);
}

TEST_P(BodySent, ResetByTheNextSubmit) {
  FakeServer& server = ready();
  submit_and_answer_envelope({"250 2.1.5 ok\r\n"});
  server.say("354 go ahead\r\n");
  server.say("250 2.0.0 Ok <id-1>\r\n");
  ASSERT_TRUE(session().body_sent());
  server.events();

  // Second message on the same session: false again until its own 354.
  submit_and_answer_envelope({"250 2.1.5 ok\r\n"});
  EXPECT_FALSE(session().body_sent());
  EXPECT_EQ(server.say("354 go ahead\r\n"), "Subject: s\r\n\r\nunique body text\r\n.\r\n");
  EXPECT_TRUE(session().body_sent());
  server.say("250 2.0.0 Ok <id-2>\r\n");

  // Third: every recipient refused, so it ends false though the last one was true.
  submit_and_answer_envelope({"550 5.1.1 no such user\r\n"});
  if (pipelining()) server.say("354 go ahead\r\n554 5.5.1 no valid recipients\r\n");
  EXPECT_FALSE(session().body_sent());
}

// A submit() refused by the local checks sends nothing at all; body_sent()
// must not go on reporting the previous message's content.
TEST_P(BodySent, LocallyRefusedSubmitSentNoBody) {
  FakeServer& server = ready();
  submit_and_answer_envelope({"250 2.1.5 ok\r\n"});
  server.say("354 go ahead\r\n");
  server.say("250 2.0.0 Ok <id-1>\r\n");
  ASSERT_TRUE(session().body_sent());
  server.events();

  session().submit(make_message("a@x.example", {"bad\r\naddress@y"}, "x"));
  EXPECT_EQ(session().take_output(), "");
  auto events = server.events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().type, ET::MessageDone);
  EXPECT_FALSE(events.front().accepted);
  EXPECT_FALSE(session().body_sent());
}

INSTANTIATE_TEST_SUITE_P(PipeliningAndBytewise, BodySent,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "Pipelining" : "LockStep") +
                                  (std::get<1>(info.param) ? "Bytewise" : "Whole");
                         });

}  // namespace
}  // namespace sg::smtp
