// The submitter an Exim identity names, and per-submitter rate limits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "policy/decision.hpp"

namespace sg::policy {
namespace {

using Action = Verdict::Action;
constexpr std::int64_t kNow = 1'700'000'000;

Identity exim() {
  Identity id;
  id.name = "exim";
  id.exim = true;
  id.allowed_senders = {"*@example.com"};
  id.sender_patterns.push_back(*SenderPattern::parse("*@example.com"));
  id.max_recipients = 10;
  return id;
}

std::string message(std::string_view submitter_header) {
  return "From: a@example.com\r\n" + std::string(submitter_header) + "Subject: s\r\n\r\nbody\r\n";
}

TEST(TrustedSubmitter, OnlyFromAnEximIdentity) {
  Identity id = exim();
  std::string m = message("X-Smtpguard-Submitter: auth:info@example.com\r\n");
  EXPECT_EQ(trusted_submitter(id, m), "auth:info@example.com");
  id.exim = false;
  EXPECT_EQ(trusted_submitter(id, m), "");
}

TEST(TrustedSubmitter, FirstHeaderUnfoldedTrimmedAndSanitised) {
  Identity id = exim();
  EXPECT_EQ(trusted_submitter(id, message("x-smtpguard-submitter:   local:www-data\r\n"
                                          " ;script=/var/www/a.php \r\n"
                                          "X-Smtpguard-Submitter: second\r\n")),
            "local:www-data ;script=/var/www/a.php");
  EXPECT_EQ(trusted_submitter(id, message("X-Smtpguard-Submitter: a\x01\xc3\xa9z\r\n")), "a???z");
  EXPECT_EQ(trusted_submitter(id, message("")), "");
  std::string longer(300, 'x');
  EXPECT_EQ(trusted_submitter(id, message("X-Smtpguard-Submitter: " + longer + "\r\n")).size(),
            200u);
  // Only the header section counts.
  EXPECT_EQ(trusted_submitter(id, "From: a@example.com\r\n\r\nX-Smtpguard-Submitter: body\r\n"),
            "");
}

TEST(SubmitterRate, EachSubmitterHasItsOwnBudget) {
  Identity id = exim();
  id.submitter_messages.per_minute = 2;
  RateCounters counters;
  std::string alice = message("X-Smtpguard-Submitter: auth:alice\r\n");
  std::string bob = message("X-Smtpguard-Submitter: auth:bob\r\n");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(check_message(id, "a@example.com", alice, alice.size(), 1, counters, kNow).action,
              Action::accept);
    counters.record(id.name, 1, kNow);
    counters.record(submitter_key(id, "auth:alice"), 1, kNow);
  }
  Verdict third = check_message(id, "a@example.com", alice, alice.size(), 1, counters, kNow);
  EXPECT_EQ(third.action, Action::defer);
  EXPECT_EQ(third.rule, "submitter_rate.per_minute");
  EXPECT_THAT(third.text, ::testing::HasSubstr("submitter auth:alice"));
  // Bob is not affected by Alice's burst, and a message without a
  // submitter is limited only by the identity's own rate.
  EXPECT_EQ(check_message(id, "a@example.com", bob, bob.size(), 1, counters, kNow).action,
            Action::accept);
  std::string none = message("");
  EXPECT_EQ(check_message(id, "a@example.com", none, none.size(), 1, counters, kNow).action,
            Action::accept);
  // A minute later Alice may send again.
  EXPECT_EQ(check_message(id, "a@example.com", alice, alice.size(), 1, counters, kNow + 61).action,
            Action::accept);
}

TEST(SubmitterRate, HoldFollowsOnLimit) {
  Identity id = exim();
  id.submitter_messages.per_hour = 1;
  id.on_limit = config::OnLimit::hold;
  RateCounters counters;
  counters.record(submitter_key(id, "local:www-data"), 1, kNow);
  std::string m = message("X-Smtpguard-Submitter: local:www-data\r\n");
  Verdict v = check_message(id, "a@example.com", m, m.size(), 1, counters, kNow);
  EXPECT_EQ(v.action, Action::hold);
  EXPECT_EQ(v.rule, "submitter_rate.per_hour");
}

}  // namespace
}  // namespace sg::policy
