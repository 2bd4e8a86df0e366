// Verdicts at MAIL, RCPT and end of DATA.
#include "policy/decision.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sg::policy {
namespace {

using Action = Verdict::Action;
using ::testing::HasSubstr;

constexpr std::int64_t kNow = 1'700'000'000;

Identity shop() {
  Identity id;
  id.name = "shop";
  id.allowed_senders = {"*@shop.example.com", "billing@example.net"};
  for (const auto& s : id.allowed_senders) id.sender_patterns.push_back(*SenderPattern::parse(s));
  id.max_recipients = 3;
  return id;
}

std::string message(std::string_view headers) {
  return std::string(headers) + "Subject: hi\r\n\r\nbody\r\n";
}

TEST(CheckSender, NoIdentityNeedsAuthentication) {
  Verdict v = check_sender(nullptr, "a@shop.example.com");
  EXPECT_EQ(v.action, Action::reject);
  EXPECT_EQ(v.code, 530);
  EXPECT_EQ(v.enhanced, "5.7.0");
  EXPECT_EQ(v.rule, "no_identity");
}

TEST(CheckSender, AllowedAndRefusedSenders) {
  Identity id = shop();
  Verdict ok = check_sender(&id, "a@shop.example.com");
  EXPECT_EQ(ok.action, Action::accept);
  EXPECT_EQ(ok.code, 250);
  EXPECT_TRUE(check_sender(&id, "billing@EXAMPLE.net").accepted());
  Verdict no = check_sender(&id, "x@evil.com");
  EXPECT_EQ(no.action, Action::reject);
  EXPECT_EQ(no.code, 550);
  EXPECT_EQ(no.enhanced, "5.7.1");
  EXPECT_EQ(no.rule, "allowed_senders");
  EXPECT_EQ(no.text, "sender <x@evil.com> not allowed for identity shop");
  EXPECT_EQ(check_sender(&id, "").rule, "allowed_senders");  // no "<>" listed
  // Untrusted text cannot break the reply line.
  EXPECT_EQ(check_sender(&id, "x\r\n250 ok@evil.com").text.find('\n'), std::string::npos);
  Identity none = shop();
  none.sender_patterns.clear();
  none.allowed_senders.clear();
  EXPECT_THAT(check_sender(&none, "a@shop.example.com").text, HasSubstr("may not send"));
}

TEST(CheckRecipient, RelayDeniedAndMaxRecipients) {
  Verdict v = check_recipient(nullptr, 0);
  EXPECT_EQ(v.code, 550);
  EXPECT_EQ(v.enhanced, "5.7.1");
  EXPECT_EQ(v.rule, "no_identity");
  Identity id = shop();
  EXPECT_TRUE(check_recipient(&id, 2).accepted());
  v = check_recipient(&id, 3);
  EXPECT_FALSE(v.accepted());
  EXPECT_EQ(v.code, 452);
  EXPECT_EQ(v.enhanced, "4.5.3");
  EXPECT_EQ(v.rule, "max_recipients");
}

TEST(CheckMessage, HeaderFromMustBeAllowed) {
  Identity id = shop();
  RateCounters rc;
  auto check = [&](std::string_view headers) {
    std::string m = message(headers);
    return check_message(id, "a@shop.example.com", m, m.size(), 1, rc, kNow);
  };
  EXPECT_EQ(check("From: Shop <orders@shop.example.com>\r\n").action, Action::accept);
  EXPECT_EQ(check("From: billing@example.net\r\nSender: a@shop.example.com\r\n").action,
            Action::accept);
  for (std::string_view bad : {
           "From: Shop <orders@evil.com>\r\n",
           "From: \"orders@shop.example.com\" <x@evil.com>\r\n",
           "From: orders@shop.example.com, x@evil.com\r\n",
           "From: <\"x@shop.example.com\"@evil.com>\r\n",
           "From: orders@shop.example.com\r\nFrom: x@evil.com\r\n",
           "To: a@b.example\r\n",  // no From at all
           "From: Shop Orders\r\n",
       }) {
    Verdict v = check(bad);
    EXPECT_EQ(v.action, Action::reject) << bad;
    EXPECT_EQ(v.code, 550) << bad;
    EXPECT_EQ(v.rule, "header_from") << bad;
  }
  Verdict s = check("From: a@shop.example.com\r\nSender: x@evil.com\r\n");
  EXPECT_EQ(s.rule, "header_sender");
  EXPECT_THAT(check("From: Shop <orders@evil.com>\r\n").text,
              HasSubstr("header From: <orders@evil.com> not allowed for identity shop"));
}

TEST(CheckMessage, EnvelopeSizeAndRecipients) {
  Identity id = shop();
  id.max_message_size = 100;
  RateCounters rc;
  std::string m = message("From: a@shop.example.com\r\n");
  Verdict v = check_message(id, "a@shop.example.com", m, 101, 1, rc, kNow);
  EXPECT_EQ(v.code, 552);
  EXPECT_EQ(v.rule, "max_message_size");
  EXPECT_TRUE(check_message(id, "a@shop.example.com", m, 100, 1, rc, kNow).accepted());
  EXPECT_EQ(check_message(id, "a@shop.example.com", m, 100, 4, rc, kNow).rule, "max_recipients");
  EXPECT_EQ(check_message(id, "x@evil.com", m, 100, 1, rc, kNow).rule, "allowed_senders");
}

TEST(CheckMessage, OnLimitActions) {
  std::string m = message("From: a@shop.example.com\r\n");
  for (auto [on_limit, action, code, enhanced] :
       {std::tuple{config::OnLimit::defer, Action::defer, 451, "4.7.1"},
        std::tuple{config::OnLimit::hold, Action::hold, 250, "2.0.0"},
        std::tuple{config::OnLimit::reject, Action::reject, 550, "5.7.1"}}) {
    Identity id = shop();
    id.messages.per_minute = 2;
    id.on_limit = on_limit;
    RateCounters rc;
    auto check = [&](std::int64_t now) {
      return check_message(id, "a@shop.example.com", m, m.size(), 1, rc, now);
    };
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(check(kNow + i).action, Action::accept);
      rc.record("shop", 1, kNow + i);
    }
    Verdict v = check(kNow + 2);
    EXPECT_EQ(v.action, action);
    EXPECT_EQ(v.code, code);
    EXPECT_EQ(v.enhanced, enhanced);
    EXPECT_EQ(v.rule, "rate.per_minute");
    EXPECT_THAT(v.text, HasSubstr("rate limit: 2 messages per minute"));
    EXPECT_EQ(v.accepted(), action == Action::hold);
    EXPECT_EQ(check(kNow + 60).action, Action::accept);  // first one left the window
  }
}

TEST(CheckRate, HourDayAndRecipientLimits) {
  Identity id = shop();
  id.max_recipients = 100;
  id.messages.per_hour = 3;
  id.recipients.per_day = 10;
  RateCounters rc;
  for (int i = 0; i < 3; ++i) rc.record("shop", 3, kNow + i * 120);
  EXPECT_EQ(check_rate(id, 1, rc, kNow + 400).rule, "rate.per_hour");
  id.messages.per_hour = 0;
  EXPECT_TRUE(check_rate(id, 1, rc, kNow + 400).accepted());  // 9 + 1 <= 10
  Verdict v = check_rate(id, 2, rc, kNow + 400);
  EXPECT_EQ(v.rule, "recipient_rate.per_day");
  EXPECT_EQ(v.action, Action::defer);
  // More recipients than the limit allows at all: never worth a retry.
  v = check_rate(id, 11, RateCounters{}, kNow);
  EXPECT_EQ(v.action, Action::reject);
  EXPECT_EQ(v.rule, "recipient_rate.per_day");
  // Other identities' counts do not matter.
  Identity other = id;
  other.name = "other";
  EXPECT_TRUE(check_rate(other, 10, rc, kNow + 400).accepted());
}

}  // namespace
}  // namespace sg::policy
