// ServerSession: greeting, EHLO, AUTH, full submissions, decisions in order,
// sequencing errors and the simple commands. Every transcript runs byte by
// byte, line by line and all at once.
#include <gtest/gtest.h>

#include "server_test_driver.hpp"

namespace sg::smtp {
namespace {

using testing::Driver;
using testing::Feed;
using testing::kAuthPlainUserPass;
using testing::kEhloReply;
using testing::kGreeting;
using ET = ServerEventType;
using Types = std::vector<ET>;

class ServerSessionTest : public ::testing::TestWithParam<Feed> {
 protected:
  Driver make(ServerOptions options = Driver::loopback(), Driver::Decide decide = {}) {
    return Driver(std::move(options), GetParam(), std::move(decide));
  }
};

INSTANTIATE_TEST_SUITE_P(Feeds, ServerSessionTest,
                         ::testing::Values(Feed::Bytewise, Feed::Lines, Feed::AllAtOnce),
                         testing::feed_name);

TEST_P(ServerSessionTest, GreetingAndEhloKeywords) {
  Driver d = make();
  EXPECT_EQ(d.start(), kGreeting);
  EXPECT_EQ(d.send("EHLO client.example\r\n"), kEhloReply);
  EXPECT_EQ(d.event_types(), Types{});
  EXPECT_EQ(d.send("HELO client.example\r\n"), "250 mx.test\r\n");
}

TEST_P(ServerSessionTest, EhloOffersStartTlsButNotAuthBeforeTls) {
  ServerOptions options = Driver::loopback();
  options.auth_without_tls = false;
  options.starttls_available = true;
  options.max_message_size = 1000;
  Driver d = make(options);
  d.start();
  EXPECT_EQ(d.send("ehlo client.example\r\n"),
            "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
            "250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250 HELP\r\n");
}

TEST_P(ServerSessionTest, FullSubmissionWithAuthPlainPipelined) {
  Driver d = make();
  d.start();
  const std::string out = d.send("EHLO client.example\r\n" + std::string(kAuthPlainUserPass) +
                                 "MAIL FROM:<app@shop.example> SIZE=40 BODY=8BITMIME\r\n"
                                 "RCPT TO:<a@x.example>\r\nRCPT TO:<\"b c\"@y.example>\r\nDATA\r\n"
                                 "Subject: hi\r\n\r\nhello\r\n..dot\r\n.\r\nQUIT\r\n");
  EXPECT_EQ(out, std::string(kEhloReply) +
                     "235 2.7.0 Authentication successful\r\n"
                     "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                     "354 End data with <CR><LF>.<CR><LF>\r\n"
                     "250 2.0.0 queued as Q1\r\n221 2.0.0 Bye\r\n");
  EXPECT_TRUE(d.session().wants_close());
  EXPECT_TRUE(d.session().authenticated());
  EXPECT_EQ(d.session().auth_user(), "user");
  auto events = d.events();
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].type, ET::Auth);
  EXPECT_EQ(events[0].mechanism, "PLAIN");
  EXPECT_EQ(events[0].username, "user");
  EXPECT_EQ(events[0].password.view(), "pass");
  EXPECT_EQ(events[0].helo, "client.example");
  EXPECT_EQ(events[1].type, ET::MailFrom);
  EXPECT_EQ(events[1].address.str(), "app@shop.example");
  using Params = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(events[1].params, (Params{{"SIZE", "40"}, {"BODY", "8BITMIME"}}));
  EXPECT_EQ(events[2].type, ET::RcptTo);
  EXPECT_EQ(events[2].address.str(), "a@x.example");
  EXPECT_EQ(events[3].address.local, "b c");
  EXPECT_EQ(events[3].address.str(), "\"b c\"@y.example");
  EXPECT_EQ(events[4].type, ET::Message);
  EXPECT_EQ(events[4].data, "Subject: hi\r\n\r\nhello\r\n.dot\r\n");
  EXPECT_EQ(events[5].type, ET::Quit);
  // Nothing is read after QUIT.
  EXPECT_EQ(d.send("NOOP\r\n"), "");
}

TEST_P(ServerSessionTest, AuthPlainWithEmptyChallenge) {
  Driver d = make();
  d.start();
  d.send("EHLO c\r\n");
  EXPECT_EQ(d.send("AUTH PLAIN\r\n"), "334 \r\n");
  EXPECT_FALSE(d.session().awaiting_decision());
  EXPECT_EQ(d.send("AHVzZXIAcGFzcw==\r\n"), "235 2.7.0 Authentication successful\r\n");
  EXPECT_EQ(d.event_types(), Types{ET::Auth});
}

TEST_P(ServerSessionTest, AuthLoginThenSubmission) {
  Driver d = make();
  d.start();
  d.send("EHLO c\r\n");
  EXPECT_EQ(d.send("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(d.send("dXNlcg==\r\n"), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(d.send("cGFzcw==\r\n"), "235 2.7.0 Authentication successful\r\n");
  auto events = d.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].mechanism, "LOGIN");
  EXPECT_EQ(events[0].username, "user");
  EXPECT_EQ(events[0].password.view(), "pass");
  EXPECT_EQ(d.send("MAIL FROM:<>\r\nRCPT TO:<r@x.example>\r\nDATA\r\nbody\r\n.\r\n"),
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
            "250 2.0.0 queued as Q1\r\n");
  events = d.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_TRUE(events[0].address.null());
  EXPECT_EQ(events[2].data, "body\r\n");
}

TEST_P(ServerSessionTest, AuthLoginWithInitialResponse) {
  Driver d = make();
  d.start();
  d.send("EHLO c\r\n");
  EXPECT_EQ(d.send("AUTH LOGIN dXNlcg==\r\n"), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(d.send("cGFzcw==\r\n"), "235 2.7.0 Authentication successful\r\n");
}

TEST_P(ServerSessionTest, AuthFailuresAndRetry) {
  Driver d = make();
  d.start();
  d.send("EHLO c\r\n");
  EXPECT_EQ(d.send("AUTH PLAIN AHVzZXIAd3Jvbmc=\r\n"),
            "535 5.7.8 Authentication credentials invalid\r\n");
  EXPECT_FALSE(d.session().authenticated());
  EXPECT_EQ(d.send("AUTH PLAIN\r\n*\r\n"), "334 \r\n501 5.7.0 Authentication cancelled\r\n");
  EXPECT_EQ(d.send("AUTH LOGIN\r\n*\r\n"),
            "334 VXNlcm5hbWU6\r\n501 5.7.0 Authentication cancelled\r\n");
  EXPECT_EQ(d.send("AUTH PLAIN not*base64\r\n"), "501 5.5.2 Error: invalid base64 data\r\n");
  EXPECT_EQ(d.send("AUTH LOGIN\r\n%%%\r\n"),
            "334 VXNlcm5hbWU6\r\n501 5.5.2 Error: invalid base64 data\r\n");
  EXPECT_EQ(d.send("AUTH CRAM-MD5\r\n"), "504 5.5.4 Error: unrecognized authentication type\r\n");
  // authzid other than the user: refused without asking the driver.
  EXPECT_EQ(d.send("AUTH PLAIN YWRtaW4AdXNlcgBwYXNz\r\n"),
            "535 5.7.8 Error: authorization identity must be empty or the user name\r\n");
  EXPECT_EQ(d.event_types(), Types{ET::Auth});
  EXPECT_EQ(d.send("AUTH PLAIN dXNlcgB1c2VyAHBhc3M=\r\n"),
            "235 2.7.0 Authentication successful\r\n");
  EXPECT_EQ(d.session().error_count(), 7u);
}

TEST_P(ServerSessionTest, SequencingErrors) {
  Driver d = make();
  d.start();
  EXPECT_EQ(d.send("MAIL FROM:<a@x.example>\r\n"), "503 5.5.1 Error: send HELO/EHLO first\r\n");
  EXPECT_EQ(d.send("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"), "503 5.5.1 Error: send EHLO first\r\n");
  EXPECT_EQ(d.send("RCPT TO:<b@x.example>\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
  EXPECT_EQ(d.send("DATA\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
  EXPECT_EQ(d.send("HELO c\r\nAUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
            "250 mx.test\r\n503 5.5.1 Error: send EHLO first\r\n");
  EXPECT_EQ(d.send("EHLO c\r\nMAIL FROM:<a@x.example>\r\nDATA\r\n"),
            std::string(kEhloReply) + "250 2.1.0 Ok\r\n503 5.5.1 Error: need RCPT command\r\n");
  EXPECT_EQ(d.send("MAIL FROM:<a@x.example>\r\n"), "503 5.5.1 Error: nested MAIL command\r\n");
  EXPECT_EQ(d.send(kAuthPlainUserPass), "503 5.5.1 Error: MAIL transaction in progress\r\n");
  EXPECT_EQ(d.send("RSET\r\n" + std::string(kAuthPlainUserPass) + std::string(kAuthPlainUserPass)),
            "250 2.0.0 Ok\r\n235 2.7.0 Authentication successful\r\n"
            "503 5.5.1 Error: already authenticated\r\n");
  EXPECT_EQ(d.event_types(), (Types{ET::MailFrom, ET::Reset, ET::Auth}));
}

TEST_P(ServerSessionTest, SimpleCommands) {
  Driver d = make();
  d.start();
  EXPECT_EQ(d.send("NOOP\r\nnoop anything\r\n"), "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
  EXPECT_EQ(d.send("VRFY someone\r\nVRFY\r\n"),
            "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
            "501 5.5.4 Syntax: VRFY address\r\n");
  EXPECT_EQ(d.send("HELP\r\n"),
            "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT STARTTLS "
            "AUTH\r\n");
  EXPECT_EQ(d.send("EXPN list\r\nBDAT 10\r\nFOO\r\n\r\nRSET x\r\n"),
            "502 5.5.1 Error: command not implemented\r\n"
            "502 5.5.1 Error: command not implemented\r\n"
            "500 5.5.2 Error: command not recognized\r\n"
            "500 5.5.2 Error: command not recognized\r\n501 5.5.4 Syntax: RSET\r\n");
  EXPECT_EQ(d.send("EHLO\r\nHELO\r\n"),
            "501 5.5.4 Syntax: EHLO hostname\r\n501 5.5.4 Syntax: HELO hostname\r\n");
  EXPECT_FALSE(d.session().wants_close());
  EXPECT_EQ(d.send("GET / HTTP/1.1\r\nHost: x\r\n"), "421 4.7.0 Error: this is an SMTP server\r\n");
  EXPECT_TRUE(d.session().wants_close());
}

TEST_P(ServerSessionTest, RsetDropsTheTransaction) {
  Driver d = make();
  d.start();
  EXPECT_EQ(d.send("EHLO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRSET\r\n"
                   "RCPT TO:<b@y.example>\r\nDATA\r\n"),
            std::string(kEhloReply) +
                "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n"
                "503 5.5.1 Error: need MAIL command\r\n503 5.5.1 Error: need MAIL command\r\n");
  EXPECT_EQ(d.event_types(), (Types{ET::MailFrom, ET::RcptTo, ET::Reset}));
  // A new EHLO inside a transaction resets it too.
  d.send("MAIL FROM:<a@x.example>\r\n");
  EXPECT_TRUE(d.session().in_transaction());
  EXPECT_EQ(d.send("EHLO again\r\n"), kEhloReply);
  EXPECT_FALSE(d.session().in_transaction());
  auto events = d.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type, ET::Reset);
  EXPECT_EQ(events[1].helo, "c");  // the transaction belonged to the old EHLO
}

TEST_P(ServerSessionTest, TwoMessagesInOneSession) {
  Driver d = make();
  d.start();
  const std::string transaction =
      "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\nm\r\n.\r\n";
  EXPECT_EQ(d.send("EHLO c\r\n" + transaction + transaction),
            std::string(kEhloReply) +
                "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                "250 2.0.0 queued as Q1\r\n"
                "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                "250 2.0.0 queued as Q2\r\n");
  EXPECT_EQ(d.event_types(),
            (Types{ET::MailFrom, ET::RcptTo, ET::Message, ET::MailFrom, ET::RcptTo, ET::Message}));
}

// The relay refuses the sender of the first transaction and one recipient of
// the second: replies come in command order and a refused MAIL leaves no
// transaction behind.
TEST_P(ServerSessionTest, PipelinedDecisionsAnsweredInOrder) {
  Driver d = make(Driver::loopback(), [](Driver& self, const ServerEvent& event) {
    if (event.type == ET::MailFrom && event.address.local == "bad")
      return self.session().reject(550, "5.7.1", "Sender not allowed");
    if (event.type == ET::RcptTo && event.address.domain == "no.example")
      return self.session().reject(550, "5.7.1", "Relay denied");
    if (event.type == ET::Message)
      return self.session().reject(554, "5.7.1", "Header From not allowed\r\n250 forged");
    self.accept_all(event);
  });
  d.start();
  EXPECT_EQ(d.send("EHLO c\r\nMAIL FROM:<bad@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"
                   "MAIL FROM:<good@x.example>\r\nRCPT TO:<b@no.example>\r\n"
                   "RCPT TO:<c@y.example>\r\nDATA\r\nx\r\n.\r\nRCPT TO:<c@y.example>\r\n"),
            std::string(kEhloReply) +
                "550 5.7.1 Sender not allowed\r\n503 5.5.1 Error: need MAIL command\r\n"
                "503 5.5.1 Error: need MAIL command\r\n"
                "250 2.1.0 Ok\r\n550 5.7.1 Relay denied\r\n250 2.1.5 Ok\r\n"
                "354 End data with <CR><LF>.<CR><LF>\r\n"
                "554 5.7.1 Header From not allowed??250 forged\r\n"
                "503 5.5.1 Error: need MAIL command\r\n");
}

// Decisions left pending: input is only buffered until the driver answers.
TEST(ServerSessionManual, InputWaitsForDecisions) {
  Driver d(Driver::loopback(), Feed::AllAtOnce, [](Driver&, const ServerEvent&) {});
  d.start();
  EXPECT_EQ(d.send("EHLO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nNOOP\r\n"),
            kEhloReply);
  EXPECT_TRUE(d.session().awaiting_decision());
  EXPECT_EQ(d.event_types(), Types{ET::MailFrom});
  d.session().answer_auth(true);  // wrong kind of answer: ignored
  EXPECT_TRUE(d.session().awaiting_decision());
  d.session().accept();
  EXPECT_EQ(d.pump_output(), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(d.event_types(), Types{ET::RcptTo});
  d.session().accept("2.1.5", "Recipient ok");
  EXPECT_EQ(d.pump_output(), "250 2.1.5 Recipient ok\r\n250 2.0.0 Ok\r\n");
  EXPECT_FALSE(d.session().awaiting_decision());
  d.session().accept();  // nothing pending: ignored
  EXPECT_EQ(d.session().take_output(), "");
}

TEST_P(ServerSessionTest, MailParametersAndPaths) {
  ServerOptions options = Driver::loopback();
  options.max_message_size = 1000;
  options.max_errors = 100;
  Driver d = make(options);
  d.start();
  d.send("EHLO c\r\n");
  EXPECT_EQ(d.send("MAIL FROM:<a@x.example> SIZE=1001\r\n"),
            "552 5.3.4 Error: message size exceeds fixed maximum message size\r\n");
  EXPECT_EQ(d.send("MAIL FROM:<a@x.example> SIZE=99999999999999999999999\r\n"),
            "552 5.3.4 Error: message size exceeds fixed maximum message size\r\n");
  EXPECT_EQ(d.send("MAIL FROM:<a@x.example> SIZE=1k\r\n"),
            "501 5.5.4 Error: bad SIZE parameter\r\n");
  EXPECT_EQ(d.send("MAIL FROM:<a@x.example> BODY=BINARYMIME\r\n"),
            "501 5.5.4 Error: BODY must be 7BIT or 8BITMIME\r\n");
  EXPECT_EQ(d.send("MAIL FROM:<a@x.example> RET=FULL\r\n"),
            "555 5.5.4 Error: unsupported MAIL parameter\r\n");
  EXPECT_EQ(d.send("MAIL FROM:<a@x.example> SIZE=1 SIZE=2\r\n"),
            "501 5.5.4 Error: duplicate parameter\r\n");
  EXPECT_EQ(d.send("MAIL FROM:<a@x.example> =x\r\n"), "501 5.5.4 Error: bad parameter syntax\r\n");
  EXPECT_EQ(
      d.send("MAIL FROM:a@x.example\r\nMAIL FROM:<a@x.example>x\r\nMAIL TO:<a@x.example>\r\n"),
      "501 5.5.4 Syntax: MAIL FROM:<address>\r\n501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
      "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
  EXPECT_EQ(d.send("MAIL FROM:<a@b@x.example>\r\n"),
            "501 5.1.7 Bad address syntax: more than one '@' (quote the local part)\r\n");
  EXPECT_EQ(d.send("MAIL FROM:<@relay.example:a@x.example>\r\n"),
            "553 5.1.0 Source routes are not accepted\r\n");
  EXPECT_EQ(d.send("MAIL FROM:<j\xc3\xb6rg@x.example>\r\n"),
            "553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter\r\n");
  EXPECT_EQ(d.event_types(), Types{});

  // Space after the colon (common client habit), SMTPUTF8 and AUTH=<>.
  EXPECT_EQ(d.send("MAIL FROM: <j\xc3\xb6rg@x.example> SMTPUTF8 AUTH=<>\r\n"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(
      d.send(
          "RCPT TO:<\xc3\xa5@y.example>\r\nRCPT TO:<>\r\nRCPT TO:<b@y.example> NOTIFY=NEVER\r\n"),
      "250 2.1.5 Ok\r\n501 5.1.3 Null address not allowed here\r\n"
      "555 5.5.4 Error: unsupported RCPT parameter\r\n");
  auto events = d.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].address.local, "j\xc3\xb6rg");
  EXPECT_EQ(events[1].address.local, "\xc3\xa5");
  // Without SMTPUTF8 on MAIL, recipients must be ASCII too.
  EXPECT_EQ(d.send("RSET\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<\xc3\xa5@y.example>\r\n"),
            "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n"
            "553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter\r\n");
}

TEST_P(ServerSessionTest, HeloClientsGetNoParameters) {
  Driver d = make();
  d.start();
  EXPECT_EQ(d.send("HELO c\r\nMAIL FROM:<a@x.example> SIZE=10\r\nMAIL FROM:<a@x.example>\r\n"),
            "250 mx.test\r\n555 5.5.4 Error: MAIL parameters need EHLO\r\n250 2.1.0 Ok\r\n");
}

TEST_P(ServerSessionTest, TimeoutAndShutdown) {
  Driver d = make();
  d.start();
  d.send("EHLO c\r\n");
  d.session().timeout();
  EXPECT_EQ(d.session().take_output(), "421 4.4.2 mx.test Error: timeout exceeded\r\n");
  EXPECT_TRUE(d.session().wants_close());

  Driver idle = make();
  idle.start();
  idle.session().shutdown();
  EXPECT_EQ(idle.session().take_output(), "421 4.3.2 mx.test Service shutting down\r\n");
  EXPECT_TRUE(idle.session().wants_close());

  // In DATA the shutdown waits for the end of the message and its decision.
  Driver busy = make();
  busy.start();
  busy.send("EHLO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\npart");
  busy.session().shutdown();
  EXPECT_FALSE(busy.session().wants_close());
  EXPECT_EQ(busy.send(" two\r\n.\r\nNOOP\r\n"),
            "250 2.0.0 queued as Q1\r\n421 4.3.2 mx.test Service shutting down\r\n");
  EXPECT_TRUE(busy.session().wants_close());
  auto events = busy.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].data, "part two\r\n");
}

}  // namespace
}  // namespace sg::smtp
